"""The class gradebook of one output folder: its database, opened once per run, and the class as it stands.

``OUT/gradebook.sqlite`` (``grader.reports.database``) keeps every attempt of every run. The class is each
student's latest attempt with the scores a person entered applied (``class_results``); a run that grades
some students adds their attempts, and every other student keeps theirs, with the seed and time of the
run that graded them (``run_seed``, ``graded_at``).

``open_class`` opens the folder's gradebook before any grading:

- an output folder that holds only ``gradebook.json``, the record of an earlier grader, has it migrated
  into a new database (the JSON file is copied to ``gradebook.pre-sqlite.json`` first);
- ``fresh`` moves the database there aside (``gradebook-<UTC time>.sqlite``, with its journal) and starts
  a new one; nothing is deleted.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import socket
from dataclasses import fields
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..manual import merge
from ..results import CheckResult, ManualItem, Penalty, RunSummary, StudentResult
from ..scoring import points_table
from .database import FILENAME, Gradebook, RunInfo
from .files import export_lock, write_all

GRADEBOOK_JSON = "gradebook.json"
JSON_BACKUP = "gradebook.pre-sqlite.json"
PACKAGE = "kimi-k2-lesson"
SOURCES = (Path(__file__).resolve().parents[1], Path(__file__).resolve().parents[2] / "reference")


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
    result.late = Penalty(**_known(Penalty, data["late"])) if data.get("late") else None
    return result


@functools.cache
def grader_identity() -> tuple[str, str]:
    """The grader's version and a digest of its source and of ``reference`` (a changed check changes it):
    an attempt is graded again when the grader that graded it differs."""
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    digest = hashlib.sha256()
    for root in SOURCES:
        for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".toml") and "__pycache__" not in p.parts):
            digest.update(str(path.relative_to(root.parent)).encode() + b"\0" + path.read_bytes() + b"\0")
    return version, digest.hexdigest()[:16]


def _read_legacy(path: Path) -> dict[str, Any]:
    """An earlier grader's ``gradebook.json``, checked; UsageError naming it if it cannot be read."""
    try:
        book = json.loads(path.read_text(encoding="utf-8"))
        book["results"] = [result_from_json(student) for student in book["students"]]
        return book
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(
            f"{path} cannot be read as an earlier gradebook ({type(exc).__name__}: {exc}); pass --fresh to start "
            "a new gradebook there, or choose another --out."
        ) from None


def unused(path: Path) -> Path:
    """``path``, or ``name-2.ext``, ``name-3.ext``, ... if it exists: a backup never replaces another."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate


def _move_aside(database: Path) -> Path:
    """Rename the database and its journal files to ``gradebook-<UTC time>.sqlite``; returns the new name."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = unused(database.with_name(f"{database.stem}-{stamp}{database.suffix}"))
    for suffix in ("", "-wal", "-shm"):
        part = Path(f"{database}{suffix}")
        if part.exists():
            os.replace(part, f"{target}{suffix}")
    return target


def open_class(out: Path, *, fresh: bool = False) -> tuple[Gradebook, list[str]]:
    """Open ``out``'s gradebook database (see the module docstring); returns it and what was done, in lines
    for the console. UsageError, naming the file, for a gradebook that cannot be read."""
    database, legacy = out / FILENAME, out / GRADEBOOK_JSON
    notes = []
    earlier = None
    if fresh and database.exists():
        notes.append(f"--fresh: the earlier gradebook {database} was moved to {_move_aside(database)}.")
    elif fresh and legacy.is_file():
        backup = unused(out / JSON_BACKUP)
        shutil.copyfile(legacy, backup)
        notes.append(f"--fresh: the earlier {legacy} was copied to {backup} before a new gradebook.")
    elif not database.exists() and legacy.is_file():
        earlier = _read_legacy(legacy)  # read and checked before the database file is made
    out.mkdir(parents=True, exist_ok=True)
    book = Gradebook.open(database)
    if earlier is not None:
        backup = unused(out / JSON_BACKUP)
        shutil.copyfile(legacy, backup)
        version, _ = grader_identity()
        run = RunInfo(
            seed=int(earlier.get("seed", 0)),
            grader_version=f"an earlier grader (imported by {version})",
            grader_digest="",
            isolation=str(earlier.get("isolation", "")),
            host=socket.gethostname(),
            ended_at=datetime.now(UTC).isoformat(timespec="microseconds"),
            note=f"imported from {legacy} (kept as {backup})",
        )
        if book.import_class(run, earlier["results"]):
            notes.append(
                f"migrated {legacy} ({len(earlier['results'])} student(s)) into {database}; "
                f"the JSON file is kept as {backup}."
            )
    return book, notes


def class_results(book: Gradebook) -> list[StudentResult]:
    """Each student's latest attempt, sorted by student, with the latest score a person entered for each item
    applied (``grader.manual.merge``: the check's message then says a person scored it)."""
    entries = book.manual_entries()
    results = []
    for _, result in book.latest_results():
        mine = entries.get(result.student, {})
        known = {item.key for item in result.manual_review} | {check.name for check in result.checks}
        if mine:
            merge(result, {key: value for key, value in mine.items() if key in known}, book.path)
        results.append(result)
    return results


def export(
    book: Gradebook,
    out: Path,
    *,
    seed: int | None = None,
    isolation: str = "",
    manual_file: str = "",
    students: list[str] | None = None,
    publish: bool = False,
) -> list[StudentResult]:
    """Write the report files of the whole class from the gradebook; returns ``students``' results from it.

    ``students`` (default: the whole class) also get their ``<id>/`` folder. ``seed`` and ``isolation`` are
    the run's; by default, the class's own (the seed of the latest attempt, every isolation named).
    ``publish``: the learners' feedback shows the checks that wait for the due date (``grader.reports.files``).
    """
    with export_lock(out):
        results = class_results(book)
        by_student = {r.student: r for r in results}
        mine = results if students is None else [by_student[student] for student in students]
        latest = max(results, key=lambda r: r.graded_at, default=None)
        meta = {
            "seed": seed if seed is not None else latest.run_seed if latest is not None else 0,
            "isolation": isolation or "; ".join(sorted({r.isolation for r in mine or results})),
            "points": points_table(),
            "manual_file": manual_file,
            "publish": publish,
        }
        write_all(results, out, meta, graded=mine)
    return mine
