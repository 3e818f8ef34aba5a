"""The review page: an instructor scores the written work, and the quiz answers sent to a person, in a browser.

Trusted host code, for instructors only (the student kit and the Gradescope autograder leave it out). It
reads the gradebook database (``grader.reports.database``) and enters each score there as it is given, in
one short transaction, so that closing the tab loses nothing and a grader may run meanwhile. The modules:

- ``store``: the answers to score, read from the gradebook, the checks every entry passes, the scores file's
  export and import (the ``manual.toml`` format of ``grader.manual``);
- ``app``: the Flask application: its routes, the guard that refuses any request without the token, and the
  headers (a strict Content-Security-Policy) that keep the learners' text inert;
- ``cli``: ``main(argv)``, ``python -m grader review``, which serves it on 127.0.0.1.

Flask is an optional dependency (``pip install -e '.[review]'``); only ``app`` and serving need it.
docs/instructors/review.md is the instructors' page.
"""

from __future__ import annotations

from .cli import main

__all__ = ["main"]
