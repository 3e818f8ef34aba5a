"""``python -m grader export {canvas,csv} --roster ROSTER --out FILE``: the class's scores for an LMS.

The roster is a CSV that maps each student's id in this grader (their ``submissions/<id>/`` folder; the
column ``grader_id``, or the one ``--id-column`` names) to their identity in the LMS. For Canvas, start
from Canvas's own gradebook export (Grades > Export), which holds the columns Canvas matches on, and add
the grader_id column.

- ``canvas``: Canvas's gradebook import format: ``Student, ID, SIS User ID, SIS Login ID, Section``, then
  one column named as the assignment is in Canvas (``--assignment``; ``Name (1234)`` with Canvas's
  assignment id updates that assignment, a new name creates one), and a ``Points Possible`` row. A student
  on the roster but not graded gets an empty cell, which Canvas leaves as it is.
- ``csv``: the roster's own columns with the grader's columns joined on (status, automatic, written,
  pending, total, late penalty, final, submission time and its source), for Moodle, Blackboard or a sheet.

The score is the final one (total after the late penalty; ``--score`` chooses the automatic or the total
score instead). Nobody is dropped without a word: students on the roster who were not graded, and students
graded but missing from the roster, are named on the console; the generic CSV lists the latter too.

Exit status: 0 when every graded student is on the roster; 1 when the file was written but some graded
students are not on the roster; 2 for a usage error (no gradebook, a roster without the columns needed).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from ..errors import EXIT_USAGE, UsageError
from ..results import StudentResult
from .database import FILENAME, Gradebook
from .files import csv_text, fmt, replace
from .gradebook import class_results

EXIT_MISSING = 1
CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
GRADER_COLUMNS = [
    "grader_status",
    "auto_score",
    "auto_max",
    "written_score",
    "written_max",
    "pending",
    "total",
    "late_status",
    "late_penalty_percent",
    "final",
    "submitted_at",
    "submitted_source",
    "graded_at",
]
SCORES = {
    "final": (lambda r: r.final, lambda r: r.max_score + r.written_max),
    "total": (lambda r: r.total, lambda r: r.max_score + r.written_max),
    "auto": (lambda r: r.score, lambda r: r.max_score),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m grader export",
        description="Export the class's scores for an LMS: Canvas's gradebook import, or a roster-joined CSV.",
    )
    p.add_argument("format", choices=["canvas", "csv"], help="canvas: Canvas's import CSV; csv: the roster joined")
    p.add_argument("--roster", type=Path, required=True, metavar="FILE", help="CSV mapping grader ids to the LMS")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="the CSV file to write")
    p.add_argument(
        "--gradebook",
        type=Path,
        default=Path("reports") / FILENAME,
        metavar="DB",
        help=f"the gradebook database (default: reports/{FILENAME})",
    )
    p.add_argument(
        "--id-column",
        default="grader_id",
        metavar="COL",
        help="roster column with the grader's ids (default: grader_id)",
    )
    p.add_argument(
        "--assignment",
        default="Lesson 1.2",
        metavar="NAME",
        help="the assignment's column in Canvas (default: Lesson 1.2)",
    )
    p.add_argument(
        "--score",
        choices=sorted(SCORES),
        default="final",
        help="final: the total after any late penalty (default); total: automatic plus written points recorded; "
        "auto: the automatic checks alone, out of 100",
    )
    return p


def roster_id(row: dict[str, str], column: str) -> str:
    """A roster row's grader id ("" when the cell is empty)."""
    return (row[column] or "").strip()


Rows = list[tuple[int, dict[str, str]]]  # (line in the file, cells by column)


def read_roster(path: Path, id_column: str) -> tuple[list[str], Rows]:
    """The roster's columns and rows with their line numbers (a Canvas export's ``Points Possible`` row left
    out); UsageError on mistakes."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            rows, header = list(reader), list(reader.fieldnames or [])
    except OSError as exc:
        raise UsageError(f"cannot read the roster {path}: {exc.strerror}.") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"the roster {path} is not a UTF-8 CSV file: {exc}.") from None
    if id_column not in header:
        raise UsageError(
            f"the roster {path} has no {id_column!r} column (its columns: {', '.join(header) or 'none'}); add one "
            "with each student's grader id (their submissions/<id>/ folder name), or name it with --id-column."
        )
    numbered = [
        (line, row) for line, row in enumerate(rows, start=2) if "Points Possible" not in (row[header[0]] or "")
    ]
    seen: dict[str, int] = {}
    for line, row in numbered:
        key = roster_id(row, id_column)
        if key and key in seen:
            raise UsageError(f"the roster {path} lists {key!r} twice ({id_column}, lines {seen[key]} and {line}).")
        seen[key] = line
    return header, numbered


def canvas_csv(header: list[str], rows: Rows, by_id: dict[str, StudentResult], args: argparse.Namespace) -> str:
    """Canvas's gradebook import: its five student columns, the assignment, a Points Possible row."""
    missing = [column for column in CANVAS_COLUMNS if column not in header]
    if missing:
        raise UsageError(
            f"the roster {args.roster} lacks Canvas's column(s) {', '.join(missing)}: start from Canvas's gradebook "
            f"export (Grades > Export), which has {', '.join(CANVAS_COLUMNS)}, and add a {args.id_column} column."
        )
    value, most = SCORES[args.score]
    possible = max((most(r) for r in by_id.values()), default=0.0)
    table = [["Points Possible", "", "", "", "", fmt(possible)]]
    for _, row in rows:
        result = by_id.get(roster_id(row, args.id_column))
        cell = fmt(round(value(result), 2)) if result is not None else ""
        table.append([row[column] for column in CANVAS_COLUMNS] + [cell])
    return csv_text([*CANVAS_COLUMNS, args.assignment], table)


def grader_cells(result: StudentResult | None, status: str) -> list[str]:
    """The grader's columns of the generic CSV for one student (empty but the status when not graded)."""
    if result is None:
        return [status] + [""] * (len(GRADER_COLUMNS) - 1)
    late = result.late
    numbers = (result.score, result.max_score, result.written_score, result.written_max, len(result.pending))
    return [
        status,
        *map(fmt, numbers),
        fmt(result.total),
        late.status if late else "",
        fmt(late.percent) if late else "",
        fmt(round(result.final, 4)),
        result.submitted_at,
        result.submitted_source,
        result.graded_at,
    ]


def generic_csv(
    header: list[str], rows: Rows, by_id: dict[str, StudentResult], unlisted: list[str], id_column: str
) -> str:
    """The roster with the grader's columns joined on; graded students not on the roster at the end."""
    table = []
    for _, row in rows:
        result = by_id.get(roster_id(row, id_column))
        table.append([row[c] for c in header] + grader_cells(result, "graded" if result else "not graded"))
    for student in unlisted:
        table.append(
            [student if c == id_column else "" for c in header] + grader_cells(by_id[student], "not on roster")
        )
    return csv_text(header + GRADER_COLUMNS, table)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        header, rows = read_roster(args.roster, args.id_column)
        with Gradebook.open(args.gradebook, create=False) as book:
            results = class_results(book)
        by_id = {r.student: r for r in results}
        listed = {roster_id(row, args.id_column) for _, row in rows}
        unlisted = sorted(set(by_id) - listed)
        if args.format == "canvas":
            text = canvas_csv(header, rows, by_id, args)
        else:
            text = generic_csv(header, rows, by_id, unlisted, args.id_column)
        replace(args.out, text)
    except UsageError as exc:
        print(f"grader export: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"grader export: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ungraded = [
        roster_id(row, args.id_column) or f"line {line} ({row[header[0]]}, no {args.id_column})"
        for line, row in rows
        if roster_id(row, args.id_column) not in by_id
    ]
    waiting = sorted(r.student for r in results if r.pending)
    print(
        f"Wrote {args.out}: {len(rows) - len(ungraded)} of {len(rows)} roster student(s) graded ({args.score} score)."
    )
    if ungraded:
        cell = "their cell is empty, so Canvas keeps what it has" if args.format == "canvas" else "status not graded"
        print(f"note: on the roster but not graded: {', '.join(ungraded)} ({cell}).", file=sys.stderr)
    if waiting:
        print(
            f"note: {len(waiting)} student(s) have written work awaiting review ({', '.join(waiting)}): their score "
            "counts only the points recorded so far.",
            file=sys.stderr,
        )
    if unlisted:
        where = "left out of the Canvas file" if args.format == "canvas" else "listed at the end, status not on roster"
        print(
            f"grader export: {len(unlisted)} graded student(s) are not on the roster ({', '.join(unlisted)}): {where}; "
            f"add them to {args.roster} (column {args.id_column}).",
            file=sys.stderr,
        )
        return EXIT_MISSING
    return 0
