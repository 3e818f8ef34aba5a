"""The grader's errors, in one place: each is a way a run of the grader ends early, with its exit status.

- ``UsageError``: a mistake in how the grader was called: a path that is not a submission folder, a bad
  id, a bad manual-scores file, an earlier gradebook it cannot read (``python -m grader`` exits 2).
- ``GraderError``: the grader itself failed: a check raised something unexpected, or pytest could not run
  (exit 3).
- ``SandboxUnavailable``: isolation was required but bubblewrap is missing or does not work here (exit 3).
  It is defined by ``grader.sandbox``, which imports nothing of the rest of the grader, and re-exported here.
"""

from __future__ import annotations

from .sandbox import SandboxUnavailable

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "GraderError", "SandboxUnavailable", "UsageError"]

# The exit statuses every ``python -m grader`` command shares (a command's own 1, such as ``--fail-under``
# not met, is its own): a ``UsageError`` ends in EXIT_USAGE, a ``GraderError`` or ``SandboxUnavailable`` in
# EXIT_FAILED.
EXIT_USAGE, EXIT_FAILED = 2, 3


class UsageError(Exception):
    """A mistake in how the grader was called; the message says what was wrong, where, and what to do."""


class GraderError(RuntimeError):
    """The grader itself failed (a check raised something unexpected, or pytest could not run)."""
