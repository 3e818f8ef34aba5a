"""One output folder's gradebook across runs: grading some students again keeps the rest of the class.

``gradebook.json`` in the output folder is the class record. A run that grades a subset (one late
submission, one regrade) merges into it: the students graded now replace their earlier rows, every other
student keeps the row of the run that graded them, with that run's seed and time (``run_seed``,
``graded_at``). ``--fresh`` starts a new gradebook instead.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results import CheckResult, ManualItem, RunSummary, StudentResult

GRADEBOOK = "gradebook.json"


def _known(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``data`` that are fields of the dataclass ``cls`` (totals and the like are derived)."""
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names}


def result_from_json(data: dict[str, Any]) -> StudentResult:
    """A StudentResult as ``gradebook.json`` stores it (``dataclasses.asdict`` plus derived totals)."""
    result = StudentResult(**_known(StudentResult, data))
    result.checks = [CheckResult(**_known(CheckResult, c)) for c in data["checks"]]
    result.manual_review = [ManualItem(**_known(ManualItem, m)) for m in data.get("manual_review", [])]
    result.runs = [RunSummary(**_known(RunSummary, r)) for r in data.get("runs", [])]
    return result


def earlier_results(out: Path) -> list[StudentResult]:
    """The students of the gradebook already in ``out`` ([] if there is none); UsageError if unreadable."""
    path = out / GRADEBOOK
    if not path.is_file():
        return []
    try:
        book = json.loads(path.read_text(encoding="utf-8"))
        return [result_from_json(student) for student in book["students"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path} cannot be read as an earlier gradebook ({type(exc).__name__}: {exc}); pass --fresh to start "
            "a new gradebook there, or choose another --out."
        ) from None


def merge_class(earlier: list[StudentResult], now: list[StudentResult]) -> list[StudentResult]:
    """The class: earlier students in their order, each replaced by this run's result if graded now; new ones
    after them."""
    graded = {r.student: r for r in now}
    merged = [graded.pop(r.student, r) for r in earlier]
    return merged + [r for r in now if r.student in graded]
