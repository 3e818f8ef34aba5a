"""``python -m grader export``: Canvas's gradebook import columns, a roster-joined CSV, and every roster
mismatch named on the console (nobody dropped without a word)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from grader.__main__ import main
from grader.reports import Gradebook, RunInfo
from grader.results import CheckResult, ManualItem, Penalty, StudentResult

# Canvas's own gradebook export, as the instructor downloads it (Grades > Export), with a grader_id column added.
ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section,Lesson 1.1 (7781),grader_id
    Points Possible,,,,,10,
"Lovelace, Ada",101,S001,ada@uni.example,Lab A,9,ada
"Hopper, Grace",102,S002,grace@uni.example,Lab A,8,grace
"Student, Test",103,,,Lab A,,
"Turing, Alan",104,S004,alan@uni.example,Lab B,7,alan
"""


def result(student: str, auto: float, written: float | None, late: Penalty | None = None) -> StudentResult:
    checks = [CheckResult("quiz.q1", "1.1", auto, 100.0, "passed" if auto == 100 else "failed", "")]
    items = [ManualItem("theory.rope", "Theory 2: RoPE", 40.0, "rubric", "answer", written)]
    return StudentResult(student, auto, 100.0, checks, "test", manual_review=items, run_seed=1, late=late)


@pytest.fixture
def gradebook(tmp_path) -> Path:
    """A gradebook of three students: ada (on time), grace (late, written work pending), zoe (not on the roster)."""
    late = Penalty("late", 25.0, "2025-03-14T22:59:00+00:00", "2025-03-16T10:00:00+00:00", "git", 126060.0, "2 days")
    db = tmp_path / "reports" / "gradebook.sqlite"
    db.parent.mkdir()
    with Gradebook.open(db) as book:
        run = book.start_run(RunInfo(1, "v", "d", "test", "host"))
        book.record(run, result("ada", 90, 30), "h1")
        book.record(run, result("grace", 80, None, late), "h2")
        book.record(run, result("zoe", 50, 10), "h3")
    return db


def write_roster(tmp_path: Path) -> Path:
    roster = tmp_path / "roster.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    return roster


def test_the_canvas_file_has_canvas_import_columns_and_names_every_mismatch(tmp_path, gradebook, capsys) -> None:
    out = tmp_path / "canvas.csv"
    args = [
        "export",
        "canvas",
        "--roster",
        str(write_roster(tmp_path)),
        "--out",
        str(out),
        "--gradebook",
        str(gradebook),
    ]
    assert main([*args, "--assignment", "Kimi-K2 lesson (8812)"]) == 1  # zoe is graded but not on the roster
    with out.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Kimi-K2 lesson (8812)"],
        ["Points Possible", "", "", "", "", "140"],
        ["Lovelace, Ada", "101", "S001", "ada@uni.example", "Lab A", "120"],
        ["Hopper, Grace", "102", "S002", "grace@uni.example", "Lab A", "60"],  # 80 raw, 25 % late
        ["Student, Test", "103", "", "", "Lab A", ""],
        ["Turing, Alan", "104", "S004", "alan@uni.example", "Lab B", ""],  # not graded: Canvas keeps what it has
    ]
    err = capsys.readouterr().err
    assert "note: on the roster but not graded: line 5 (Student, Test, no grader_id), alan (their cell is empty" in err
    assert "note: 1 student(s) have written work awaiting review (grace)" in err
    assert (
        "grader export: 1 graded student(s) are not on the roster (zoe): left out of the Canvas file; add them" in err
    )


def test_the_generic_csv_joins_the_roster_and_lists_the_unlisted(tmp_path, gradebook, capsys) -> None:
    out = tmp_path / "grades.csv"
    roster = write_roster(tmp_path)
    assert main(["export", "csv", "--roster", str(roster), "--out", str(out), "--gradebook", str(gradebook)]) == 1
    with out.open(newline="") as handle:
        rows = {(r["grader_id"] or r["Student"]): r for r in csv.DictReader(handle)}
    assert list(rows) == ["ada", "grace", "Student, Test", "alan", "zoe"]
    assert {
        k: rows["grace"][k] for k in ("grader_status", "total", "late_status", "late_penalty_percent", "final")
    } == {
        "grader_status": "graded",
        "total": "80",
        "late_status": "late",
        "late_penalty_percent": "25",
        "final": "60",
    }
    assert rows["grace"]["Lesson 1.1 (7781)"] == "8"  # the roster's own columns are kept
    assert (rows["alan"]["grader_status"], rows["alan"]["total"]) == ("not graded", "")
    assert (rows["zoe"]["grader_status"], rows["zoe"]["final"], rows["zoe"]["Student"]) == ("not on roster", "60", "")


@pytest.mark.parametrize(
    ("roster", "extra", "error"),
    [
        ("Name,login\nAda,ada\n", [], "has no 'grader_id' column (its columns: Name, login); add one"),
        ("Name,login\nAda,ada\n", ["--id-column", "login"], "lacks Canvas's column(s) Student, ID, SIS User ID"),
        ("Student,grader_id\nA,ada\nB,ada\n", [], "lists 'ada' twice (grader_id, lines 2 and 3)"),
    ],
)
def test_a_roster_canvas_cannot_read_is_a_usage_error(tmp_path, gradebook, capsys, roster, extra, error) -> None:
    path = tmp_path / "roster.csv"
    path.write_text(roster)
    out = tmp_path / "canvas.csv"
    args = ["export", "canvas", "--roster", str(path), "--out", str(out), "--gradebook", str(gradebook), *extra]
    assert main(args) == 2
    assert error in capsys.readouterr().err
    assert not out.exists()


def test_export_without_a_gradebook_says_to_grade_first(tmp_path, capsys) -> None:
    args = ["export", "csv", "--roster", str(write_roster(tmp_path)), "--out", str(tmp_path / "x.csv")]
    assert main([*args, "--gradebook", str(tmp_path / "none.sqlite")]) == 2
    assert f"there is no gradebook at {tmp_path / 'none.sqlite'}: grade first" in capsys.readouterr().err
