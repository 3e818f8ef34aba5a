"""The gradebook database keeps every finished grade: through a SIGKILL, two graders at once, shards and their
merge, a resumed run, and files that are not a gradebook of this grader.

The graders here are real: ``python -m grader`` in a subprocess for the kill and the concurrent writers,
``grader.grade`` with one shared sandbox for the rest. No wall-clock time is asserted.
"""

from __future__ import annotations

import csv
import json
import os
import pickle
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

import grader
from grader.__main__ import main
from grader.grading import SCORE_BATCH
from grader.reports import Gradebook, RunInfo, class_results
from grader.reports.database import APPLICATION_ID, SCHEMA_VERSION, TABLES
from grader.reports.merge import merge
from grader.sandbox import Sandbox
from grader.submission import select_folders, shard_of

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
ALICE = ROOT / "submissions" / "alice"
SEED = 4242
CLASS = {
    "ada": FIXTURES / "full",
    "bo": ROOT / "submissions" / "bob",
    "cy": FIXTURES / "partial",
    "di": FIXTURES / "syntax_error",
    "ed": FIXTURES / "missing_model",
    "fa": FIXTURES / "wrong_types",
}


def copy_class(root: Path, members: dict[str, Path]) -> list[Path]:
    """Each member's submission copied to ``root/<id>``; the folders, in the order given."""
    paths = []
    for student, source in members.items():
        shutil.copytree(source, root / student)
        paths.append(root / student)
    return paths


def query(db: Path, sql: str) -> list[tuple]:
    """The rows of one query on a gradebook file, the connection closed again."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def attempts(db: Path) -> dict[str, int]:
    """Attempts per student in a gradebook file."""
    return dict(query(db, "SELECT student, COUNT(*) FROM attempts GROUP BY student"))


def counts(db: Path) -> list[int]:
    """Rows per table."""
    return [query(db, f"SELECT COUNT(*) FROM {table}")[0][0] for table in TABLES]


def reports(folder: Path) -> dict[str, bytes]:
    """Every report file of a folder (the database and its journal left out), by name."""
    return {
        p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith("gradebook.sqlite")
    }


def grader_process(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-m", "grader", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(jobs=2) as box:
        yield box


@pytest.fixture(scope="module")
def single_run(tmp_path_factory, sandbox) -> tuple[list[Path], Path]:
    """The class graded in one run with SEED: its folders and its output folder."""
    root = tmp_path_factory.mktemp("class")
    paths = copy_class(root / "submissions", CLASS)
    grader.grade(paths, jobs=2, out=root / "single", seed=SEED, sandbox=sandbox)
    return paths, root / "single"


def test_a_killed_grader_keeps_every_submission_it_finished_and_a_rerun_grades_only_the_rest(tmp_path) -> None:
    total = 2 * SCORE_BATCH - 8  # more than one scoring batch, so that the kill comes between two
    paths = copy_class(tmp_path / "submissions", {f"s{i:02d}": ALICE for i in range(total)})
    out = tmp_path / "reports"
    args = [*map(str, paths), "--out", str(out), "--seed", str(SEED), "--jobs", "1"]
    proc = grader_process(args, tmp_path)
    finished = []
    assert proc.stdout is not None
    for line in proc.stdout:  # "[ 3/24] s02  0.21 s  all runs finished": printed once committed
        if line.startswith("["):
            finished.append(line.split("]")[1].split()[0])
        if len(finished) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    graded = attempts(out / "gradebook.sqlite")
    assert set(finished) <= set(graded), "a submission reported as recorded is missing after the kill"
    assert len(graded) < total, "the grader finished before it was killed: nothing was tested"
    db = out / "gradebook.sqlite"
    assert query(db, "PRAGMA integrity_check") == [("ok",)]
    assert query(db, "SELECT ended_at FROM runs") == [(None,)]  # the run never finished
    rows = query(db, "SELECT COUNT(*) FROM check_results GROUP BY attempt_id")
    assert rows == [(len(grader.points_table()),)] * len(graded)  # each attempt whole, none half-written

    again = grader_process(args, tmp_path)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr
    assert f"Skipped {len(graded)} submission(s) already graded with the same files, seed and grader" in stdout
    assert f"Grading {total - len(graded)} submission(s)" in stdout
    assert attempts(out / "gradebook.sqlite") == {f"s{i:02d}": 1 for i in range(total)}
    with (out / "scores.csv").open() as handle:
        assert [row["total"] for row in csv.DictReader(handle)] == ["100"] * total


def test_two_graders_writing_one_gradebook_at_once_keep_every_student(tmp_path) -> None:
    paths = copy_class(tmp_path / "submissions", {f"s{i}": ALICE for i in range(8)})
    out = tmp_path / "reports"
    procs = [
        grader_process([*map(str, half), "--out", str(out), "--seed", str(SEED), "--jobs", "1"], tmp_path)
        for half in (paths[:4], paths[4:])
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
    assert attempts(out / "gradebook.sqlite") == {f"s{i}": 1 for i in range(8)}
    with (out / "gradebook.csv").open() as handle:  # the export that ran last saw both graders' commits
        assert {row["student"] for row in csv.DictReader(handle)} == {f"s{i}" for i in range(8)}


def test_a_reader_that_stops_early_stops_no_grading(tmp_path) -> None:
    """``python -m grader | head -1``: the pipe closes after the first line; every submission is still graded."""
    paths = copy_class(tmp_path / "submissions", {f"s{i}": ALICE for i in range(3)})
    out = tmp_path / "reports"
    proc = grader_process([*map(str, paths), "--out", str(out), "--seed", str(SEED), "--jobs", "1"], tmp_path)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("Grading 3 submission(s)")
    proc.stdout.close()  # what head does once it has its line
    stderr = proc.stderr.read()
    assert proc.wait(timeout=600) == 0, stderr
    assert "BrokenPipeError" not in stderr and "Traceback" not in stderr, stderr
    assert attempts(out / "gradebook.sqlite") == {f"s{i}": 1 for i in range(3)}
    assert (out / "summary.md").is_file()


def test_many_writers_at_once_lose_no_row(tmp_path, single_run) -> None:
    """Processes committing attempts and manual scores to one file as fast as they can, all at the same time."""
    _, out = single_run
    with Gradebook.open(out / "gradebook.sqlite", create=False) as book:
        result = class_results(book)[0]
    db = tmp_path / "gradebook.sqlite"
    Gradebook.open(db).close()
    blob = tmp_path / "result.pickle"
    blob.write_bytes(pickle.dumps(result))
    script = (
        "import sys, copy, pickle, pathlib\n"
        "from grader.reports import Gradebook, RunInfo\n"
        "result, me = pickle.loads(pathlib.Path(sys.argv[1]).read_bytes()), sys.argv[2]\n"
        "with Gradebook.open(sys.argv[3]) as book:\n"
        "    run = book.start_run(RunInfo(1, 'v', 'd', 'test', me))\n"
        "    for i in range(40):\n"
        "        r = copy.deepcopy(result); r.student = f'{me}-{i}'\n"
        "        book.record(run, r, 'hash')\n"
        "        book.enter_manual(r.student, 'theory.rope', 1.0, '', entered_by=me, source='test')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(blob), f"w{n}", str(db)], env=env, stderr=subprocess.PIPE)
        for n in range(4)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=300)
        assert writer.returncode == 0, err.decode()
    assert len(attempts(db)) == 160
    assert query(db, "SELECT COUNT(*) FROM manual_scores") == [(160,)]
    assert query(db, "SELECT COUNT(*) FROM check_results") == [(160 * len(result.checks),)]


def test_shards_merged_give_the_single_runs_gradebook_and_merging_twice_changes_nothing(
    tmp_path, single_run, sandbox
) -> None:
    paths, single = single_run
    shards = []
    for k in (1, 2, 3):
        shards.append(tmp_path / f"shard-{k}")
        grader.grade(paths, jobs=2, out=shards[-1], seed=SEED, sandbox=sandbox, shard=(k, 3))
    assert sum(len(attempts(s / "gradebook.sqlite")) for s in shards) == len(CLASS)
    merged = tmp_path / "class"
    merge(shards, merged)
    assert (merged / "gradebook.csv").read_bytes() == (single / "gradebook.csv").read_bytes()

    def without_times(folder: Path) -> list[dict]:
        with (folder / "scores.csv").open() as handle:
            return [{k: v for k, v in row.items() if k != "graded_at"} for row in csv.DictReader(handle)]

    def students(folder: Path) -> list[dict]:
        book = json.loads((folder / "gradebook.json").read_text())["students"]
        for s in book:
            s.pop("seconds"), s.pop("graded_at")
            for run in s["runs"]:
                run.pop("seconds")
        return book

    assert without_times(merged) == without_times(single)
    assert students(merged) == students(single)
    for student in CLASS:
        single_feedback = (single / student / "feedback.md").read_text()
        assert (merged / student / "feedback.md").read_text() == single_feedback
    before, rows = reports(merged), counts(merged / "gradebook.sqlite")
    assert merge(shards, merged) == [(s / "gradebook.sqlite", dict.fromkeys(TABLES, 0)) for s in shards]
    assert counts(merged / "gradebook.sqlite") == rows
    assert reports(merged) == before


def test_a_shard_is_chosen_by_student_id_alone(tmp_path) -> None:
    paths = copy_class(tmp_path, {f"learner-{i}": ALICE for i in range(30)})
    chosen = {k: [f.student for f in select_folders(paths, shard=(k, 4))[0]] for k in (1, 2, 3, 4)}
    backwards = {k: [f.student for f in select_folders(paths[::-1], shard=(k, 4))[0]] for k in (1, 2, 3, 4)}
    assert {k: sorted(v) for k, v in chosen.items()} == {k: sorted(v) for k, v in backwards.items()}
    every = [student for shard in chosen.values() for student in shard]
    assert sorted(every) == sorted(p.name for p in paths)  # each student in exactly one shard
    assert all(chosen.values()), "30 students left a shard of 4 empty: the split is not spread"
    assert {shard_of(f"learner-{i}", 4) for i in range(30)} == {1, 2, 3, 4}


def test_a_resumed_run_skips_what_is_graded_and_grades_what_changed(tmp_path, sandbox, capsys, monkeypatch) -> None:
    paths = copy_class(tmp_path / "submissions", {"ada": FIXTURES / "full", "bo": ROOT / "submissions" / "bob"})
    out = tmp_path / "reports"
    monkeypatch.setattr(grader.grading, "Sandbox", lambda **_: sandbox)
    monkeypatch.setattr(sandbox, "close", lambda: None)
    assert main([*map(str, paths), "--out", str(out), "--seed", str(SEED)]) == 0
    capsys.readouterr()
    assert main([*map(str, paths), "--out", str(out)]) == 0  # no --seed: the gradebook's, so the rerun resumes
    text = capsys.readouterr().out
    assert f"Seed {SEED}: the seed of the latest run in {out / 'gradebook.sqlite'}" in text
    assert "Skipped 2 submission(s) already graded with the same files, seed and grader (ada, bo); --regrade" in text
    assert "Grading 0 submission(s)" in text
    (paths[1] / "answers.toml").write_text((paths[1] / "answers.toml").read_text() + "\n# changed\n")
    assert main([*map(str, paths), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Skipped 1 submission(s) already graded with the same files, seed and grader (ada)" in text
    assert attempts(out / "gradebook.sqlite") == {"ada": 1, "bo": 2}
    assert main([*map(str, paths), "--out", str(out), "--regrade"]) == 0
    assert "Grading 2 submission(s)" in capsys.readouterr().out
    with Gradebook.open(out / "gradebook.sqlite", create=False) as book:
        history = book.history("bo")
    assert [h["run_seed"] for h in history] == [str(SEED)] * 3
    assert len({h["files_hash"] for h in history}) == 2  # the edit made a new hash; the regrade kept it


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p.write_text("student,score\nalice,3\n"), "is not an SQLite database (it starts with b'student,sco"),
        (lambda p: _sqlite(p, "CREATE TABLE grades (x)", app=0), "is an SQLite database of another program (no "),
        (lambda p: _sqlite(p, "CREATE TABLE t (x)", app=0x1234), "of another program (application_id 0x1234"),
        (lambda p: _sqlite(p, "", app=APPLICATION_ID, version=SCHEMA_VERSION + 1), "was written by a newer grader"),
        (lambda p: _sqlite(p, "CREATE TABLE t (x)", app=APPLICATION_ID, version=0), "was written by an older grader"),
        (lambda p: _damaged(p), "is damaged and cannot be read as a gradebook"),
    ],
    ids=["text", "foreign-sqlite", "other-app", "newer", "older", "damaged"],
)
def test_a_file_that_is_not_this_graders_gradebook_is_refused_by_name_and_left_as_it_is(
    tmp_path, make, says, capsys, monkeypatch
) -> None:
    out = tmp_path / "reports"
    out.mkdir()
    db = out / "gradebook.sqlite"
    make(db)
    before = db.read_bytes()
    with pytest.raises(grader.UsageError, match="^" + re.escape(f"{db} ")):
        Gradebook.open(db)
    monkeypatch.chdir(ROOT)
    assert main(["submissions/bob", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"grader: error: {db} ")
    assert says in captured.err
    assert captured.err.endswith("choose another --out.\n")
    assert "Grading" not in captured.out
    assert db.read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == ["gradebook.sqlite"]
    assert main(["merge", str(db), "--out", str(tmp_path / "merged")]) == 2
    err = capsys.readouterr().err  # a database merged from is only read: its own --out is no remedy
    assert err.startswith(f"grader merge: error: {db} ") and err.endswith("give another gradebook.\n"), err


def _sqlite(path: Path, sql: str, *, app: int, version: int = 0) -> None:
    with sqlite3.connect(path) as conn:
        if sql:
            conn.execute(sql)
        conn.execute(f"PRAGMA application_id = {app}")
        conn.execute(f"PRAGMA user_version = {version}")
    conn.close()


def _damaged(path: Path) -> None:
    """A real gradebook with its pages past the first overwritten by noise."""
    with Gradebook.open(path) as book:
        book.start_run(RunInfo(1, "v", "d", "test", "host"))
    data = bytearray(path.read_bytes())
    data[4096:] = bytes((i * 37 + 11) % 256 for i in range(len(data) - 4096))
    path.write_bytes(bytes(data))


def test_an_earlier_graders_json_gradebook_is_migrated_with_a_backup(tmp_path, single_run, sandbox) -> None:
    paths, single = single_run
    out = tmp_path / "reports"
    out.mkdir()
    legacy = (single / "gradebook.json").read_bytes()
    (out / "gradebook.json").write_bytes(legacy)
    grader.grade(paths[:1], out=out, seed=SEED + 1, sandbox=sandbox)
    assert (out / "gradebook.pre-sqlite.json").read_bytes() == legacy
    assert attempts(out / "gradebook.sqlite") == {**dict.fromkeys(CLASS, 1), "ada": 2}
    notes = [row[0] for row in query(out / "gradebook.sqlite", "SELECT note FROM runs ORDER BY started_at")]
    assert notes[0].startswith(f"imported from {out / 'gradebook.json'}")
    kept = {s["student"]: s for s in json.loads(legacy)["students"]}
    now = {s["student"]: s for s in json.loads((out / "gradebook.json").read_text())["students"]}
    assert all(now[s] == kept[s] for s in CLASS if s != "ada")
    assert now["ada"]["run_seed"] == SEED + 1


def test_manual_scores_are_rows_with_who_and_when_and_the_class_view_matches_scores_csv(
    tmp_path, single_run, sandbox
) -> None:
    paths, single = single_run
    out = tmp_path / "reports"
    shutil.copytree(single, out)
    manual = tmp_path / "manual.toml"
    manual.write_text('[cy]\n"quiz.q3" = { score = 4, comment = "Vague." }\n"theory.rope" = 3\n')
    grader.grade(paths, out=out, manual=manual, sandbox=sandbox)  # every student skipped: only the scores change
    grader.grade(paths, out=out, manual=manual, sandbox=sandbox)  # the same file again adds nothing
    manual.write_text('[cy]\n"quiz.q3" = { score = 4, comment = "Vague." }\n"theory.rope" = 5\n')
    with Gradebook.open(out / "gradebook.sqlite", create=False) as book:
        book.enter_manual("bo", "diagram", 2.0, "Layers only.", entered_by="ta@example.edu", source="review page")
    grader.grade(paths, out=out, manual=manual, sandbox=sandbox)
    db = out / "gradebook.sqlite"
    entered = query(db, "SELECT student, item, score, entered_by, source FROM manual_scores ORDER BY entered_at")
    view = {row[0]: row[1:] for row in query(db, "SELECT student, auto_score, written_score, total FROM class_scores")}
    assert [e[:3] for e in entered] == [
        ("cy", "quiz.q3", 4.0),
        ("cy", "theory.rope", 3.0),
        ("bo", "diagram", 2.0),
        ("cy", "theory.rope", 5.0),
    ]
    assert entered[2][3:] == ("ta@example.edu", "review page")
    assert entered[0][4] == f"--manual {manual}"
    with (out / "scores.csv").open() as handle:
        table = {row["student"]: row for row in csv.DictReader(handle)}
    assert (table["cy"]["auto_score"], table["cy"]["written_score"], table["bo"]["written_score"]) == ("36", "5", "2")
    assert {s: (float(r["auto_score"]), float(r["written_score"]), float(r["total"])) for s, r in table.items()} == view
    # quiz.q3 is shown after the due date: Gradescope's results.json carries it (Gradescope withholds it until
    # then), and the learner's feedback.md leaves it out until the instructor publishes with --publish.
    tests = json.loads((out / "cy" / "results.json").read_text())["tests"]
    (q3,) = [t for t in tests if t["name"] == "quiz.q3"]
    assert (q3["score"], q3["visibility"]) == (4, "after_due_date")
    assert "Scored by your instructor: 4/6. Vague." in q3["output"]
    assert "Vague." not in (out / "cy" / "feedback.md").read_text()
    grader.grade(paths, out=out, manual=manual, sandbox=sandbox, publish=True)
    assert "Scored by your instructor: 4/6. Vague." in (out / "cy" / "feedback.md").read_text()


def test_the_queries_of_the_records_page_run_on_a_real_gradebook(single_run) -> None:
    """Every ``sql`` block of docs/instructors/records.md, run on the graded class: none fails, and the class
    distribution counts every student once."""
    page = (ROOT / "docs" / "instructors" / "records.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 6
    db = single_run[1] / "gradebook.sqlite"
    results = [query(db, block.replace("'alice'", "'bo'")) for block in blocks]
    history, distribution, costly, waiting, entered, unfinished = results
    assert len(history) == 1 and history[0][1] == str(SEED)
    assert sum(students for _, students in distribution) == len(CLASS)
    assert {row[1] for row in costly} == {row["name"] for row in grader.points_table()}
    assert {row[0] for row in waiting} <= set(CLASS) and waiting
    assert (entered, unfinished) == ([], [])


def test_fresh_moves_the_gradebook_aside_and_never_over_an_earlier_backup(tmp_path, monkeypatch) -> None:
    import grader.reports.gradebook as gradebook

    class Frozen(datetime):  # both --fresh runs fall in the same second
        @classmethod
        def now(cls, tz=None):
            return datetime(2025, 3, 14, 12, 0, tzinfo=tz)

    monkeypatch.setattr(gradebook, "datetime", Frozen)
    open_class = gradebook.open_class
    out = tmp_path / "reports"
    for seed in (1, 2):
        book, _ = open_class(out)
        book.start_run(RunInfo(seed, "v", "d", "test", "host"))
        book.close()
        book, notes = open_class(out, fresh=True)  # twice within one second: two backups, neither replaced
        book.close()
        assert notes[0].startswith(f"--fresh: the earlier gradebook {out / 'gradebook.sqlite'} was moved to ")
    backups = sorted(p.name for p in out.glob("gradebook-*.sqlite"))
    assert backups == ["gradebook-20250314T120000Z-2.sqlite", "gradebook-20250314T120000Z.sqlite"]
    assert [query(out / b, "SELECT seed FROM runs") for b in backups] == [[("2",)], [("1",)]]
    assert query(out / "gradebook.sqlite", "SELECT COUNT(*) FROM runs") == [(0,)]
