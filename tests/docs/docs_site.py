"""Where the built lesson site is, for the tests of tests/docs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
BUILD = Path(os.environ.get("LESSON_DOCS_BUILD", DOCS / "_build"))
EDITIONS = ("instructor", "student")

sys.path.insert(0, str(DOCS / "_ext"))  # lesson_editions, lesson_freshness: the build's own tools


def built(edition: str) -> Path:
    """The HTML output of ``edition``; fails with the command to run when it is missing."""
    site = BUILD / "html" / edition
    if not (site / "index.html").is_file():
        pytest.fail(
            f"no built {edition} edition at {site}: run `nox -s docs` (or "
            f"`python docs/_ext/lesson_editions.py {edition}`) first; set LESSON_DOCS_BUILD to test another build",
            pytrace=False,
        )
    return site


def lesson_sources() -> list[Path]:
    """The gallery pages, ``docs/lessons/NN_*.py``."""
    return sorted(DOCS.glob("lessons/[0-9][0-9]_*.py"))


def reference_modules() -> list[Path]:
    """The modules of ``reference`` (``__init__`` aside): each has a highlighted source page, ``_modules/``."""
    return sorted(p for p in (ROOT / "reference").glob("*.py") if p.stem != "__init__")
