"""The similarity report: every pair of submissions' code compared, for an instructor's integrity review.

Trusted host code. It reads students' ``model.py`` and ``mla.py`` as text only (``grader.submission.read_capped``:
no symbolic link followed, size capped), never imports or runs them, and never changes a score: flagged pairs
go to a person. The modules, in the order the data flows:

- ``texts``: find the submissions and read each one's code as one document; the template and other
  boilerplate too.
- ``winnowing``: fingerprint each document with copydetect (MOSS-style winnowing), less the boilerplate, and
  compare every pair. ``settings`` holds the defaults and says why.
- ``records``: ``similarity.json`` (every pair, for the review list) and ``similarity.md`` (the section for
  ``summary.md``); ``page``: ``similarity.html`` (the flagged pairs side by side, offline).
- ``cli``: ``main(argv)``, the command line.

From Python: ``report([Path("submissions")], out=Path("reports"))``. copydetect is an optional dependency
(``pip install -e '.[similarity]'``) that only ``report`` and the command line use, so the package, and
``load_report``, ``flagged_pairs`` and ``summary_markdown`` that read a written ``similarity.json``, import
without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .cli import main
from .records import flagged_pairs, load_report, summary_markdown, write_reports
from .settings import DEFAULT_TEMPLATE, HTML_FILE, JSON_FILE, MARKDOWN_FILE, MIN_OVERLAP, THRESHOLD
from .texts import gather

if TYPE_CHECKING:
    from .winnowing import Comparison

__all__ = [
    "HTML_FILE",
    "JSON_FILE",
    "MARKDOWN_FILE",
    "MIN_OVERLAP",
    "THRESHOLD",
    "flagged_pairs",
    "load_report",
    "main",
    "report",
    "summary_markdown",
]


def report(
    paths: Sequence[Path],
    *,
    out: Path | None = None,
    template: Path = Path(DEFAULT_TEMPLATE),
    boilerplate: Sequence[Path] = (),
    threshold: float = THRESHOLD,
    min_overlap: int = MIN_OVERLAP,
) -> tuple[Comparison, dict[str, Path]]:
    """Compare every pair of the submissions in ``paths``; write the reports to ``out`` when given.

    Args:
        paths: submission folders, or folders of them (``submissions/``); UsageError for anything else, and
            for fewer than two submissions with code.
        out: report folder (similarity.json, similarity.md, similarity.html); None writes nothing.
        template: the starter code, not counted; boilerplate: more files or folders of code not to count.
        threshold, min_overlap: a pair is flagged when at least ``threshold`` of either one's code is in the
            other and they share at least ``min_overlap`` tokens (see ``grader.similarity.settings``).

    Returns:
        The comparison (every pair, most similar first) and the paths written by kind ("json", "markdown",
        "html"; none when ``out`` is None).
    """
    from .winnowing import compare  # copydetect, the optional dependency: imported only when comparing

    comparison = compare(gather(paths, template, boilerplate), threshold=threshold, min_overlap=min_overlap)
    return comparison, (write_reports(comparison, out) if out is not None else {})
