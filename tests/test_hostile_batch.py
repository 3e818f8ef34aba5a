"""A class with every hostile submission mixed in: the other students' grades, the grader and the reports survive.

The class is graded twice with the same seed and the same sandbox: the ordinary students alone, then
mixed with every fixture of tests/fixtures/hostile/ (and answers.toml files too large, too deep, not
UTF-8). Every ordinary student must get exactly the same checks, scores and messages both times; the
hostile submissions whose harm should have no effect must score exactly what the full-marks
submission they are built on scores; the grader's files, the answer keys and the submissions must be
byte-for-byte unchanged; every report must be written and readable. The limits are small so that
the hostile runs stop in seconds; no wall-clock time is asserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

import grader
import grader.submission
from grader.sandbox import Limits, Sandbox, SandboxUnavailable

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
HOSTILE = FIXTURES / "hostile"
FULL = FIXTURES / "submissions" / "full"
ORDINARY = {
    "n-full": FULL,
    "n-partial": FIXTURES / "submissions" / "partial",
    "n-import-error": FIXTURES / "submissions" / "import_error",
    "n-wrong-types": FIXTURES / "submissions" / "wrong_types",
    "n-alice": REPO / "submissions" / "alice",
    "n-bob": REPO / "submissions" / "bob",
}
# Harm that must change nothing: these score exactly what the full-marks submission they extend scores
# (the reading, writing and network fixtures act only when called; here they ride along unused).
NO_EFFECT = (
    "rewrite_answers",
    "forged_stdout",
    "shadow_files",
    "orphan",
    "read_outside",
    "write_outside",
    "network",
    "hidden_memory",
)
LIMITS = Limits(wall_seconds=8.0, cpu_seconds=5.0, memory_bytes=512 * 2**20, processes=32, output_bytes=256 * 2**10)
SEED = 20260417


def tree_digest(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (links by their target text), caches left out."""
    digest = {}
    for root in roots:
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts or (path.is_dir() and not path.is_symlink()):
                continue
            data = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
            digest[str(path)] = hashlib.sha256(data).hexdigest()
    return digest


def composed(name: str, folder: Path) -> Path:
    """The full-marks submission with a hostile fixture's model code appended and its other files added."""
    shutil.copytree(FULL, folder)
    for extra in (HOSTILE / name).iterdir():
        if extra.name == "model.py":
            code = (FULL / "model.py").read_text() + "\n\n" + extra.read_text()
            (folder / "model.py").write_text(code)
        else:
            shutil.copy(extra, folder / extra.name)
    return folder


def linked(folder: Path) -> Path:
    """The symlinks fixture, its links made absolute so that they resolve from the copy (to full marks)."""
    folder.mkdir()
    for link in (HOSTILE / "symlinks").iterdir():
        os.symlink((link.parent / os.readlink(link)).resolve(), folder / link.name)
    return folder


def bad_answers(folder: Path, answers: bytes) -> Path:
    shutil.copytree(FULL, folder)
    (folder / "answers.toml").write_bytes(answers)
    return folder


def build_class(root: Path) -> tuple[list[Path], list[Path]]:
    """(ordinary students, hostile students) as folders under ``root``."""
    ordinary = [shutil.copytree(src, root / name) for name, src in ORDINARY.items()]
    hostile = []
    for fixture in sorted(p for p in HOSTILE.iterdir() if p.is_dir()):
        target = root / f"h-{fixture.name.replace('_', '-')}"
        hostile.append(linked(target) if fixture.name == "symlinks" else composed(fixture.name, target))
    huge = b'[quiz]\nq1 = "b"\nq3 = "' + b"x" * (50 * 2**20) + b'"\n'
    deep = b"[math]\ncausal_mask = " + b"[" * 5000 + b"]" * 5000 + b"\n"
    latin1 = (FULL / "answers.toml").read_bytes().replace(b"[quiz]", b"# r\xe9ponses\n[quiz]")
    hostile += [
        bad_answers(root / "h-answers-50mb", huge),
        bad_answers(root / "h-answers-deep", deep),
        bad_answers(root / "h-answers-latin1", latin1),
    ]
    return ordinary, hostile


def summary(result: grader.StudentResult) -> list[tuple]:
    return [(c.number, c.name, c.score, c.max_score, c.status, c.message) for c in result.checks]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the ordinary class alone, then mixed; digests of everything that must not change."""
    root = tmp_path_factory.mktemp("class")
    ordinary, hostile = build_class(root / "submissions")
    guarded = (REPO / "grader", FIXTURES, REPO / "submissions", root / "submissions")
    before = tree_digest(*guarded)
    try:
        box = Sandbox(jobs=2, limits=LIMITS, require_isolation=True)
    except SandboxUnavailable as exc:
        pytest.fail(f"{exc}\nThis test needs a working bubblewrap: run `bash .ci/setup`.")
    with box:
        alone = grader.grade(ordinary, seed=SEED, sandbox=box, out=root / "reports-alone")
        # Ordinary students spread among the hostile ones, so that they run on workers a hostile run used.
        step = len(hostile) // len(ordinary)
        mixed_paths = [*hostile]
        for i, path in enumerate(ordinary):
            mixed_paths.insert(i * (step + 1) + 1, path)
        mixed = grader.grade(mixed_paths, seed=SEED, sandbox=box, out=root / "reports")
    after = tree_digest(*guarded)
    return {
        "alone": {r.student: r for r in alone},
        "mixed": {r.student: r for r in mixed},
        "before": before,
        "after": after,
        "reports": root / "reports",
        "hostile": [p.name for p in hostile],
        "ordinary": [p.name for p in ordinary],
    }


def test_every_ordinary_student_gets_exactly_the_same_grade(graded):
    for student in graded["ordinary"]:
        alone, mixed = graded["alone"][student], graded["mixed"][student]
        assert mixed.score == alone.score, student
        assert summary(mixed) == summary(alone), student
    assert graded["alone"]["n-full"].score == graded["alone"]["n-full"].max_score == 100


def test_harm_that_should_change_nothing_changes_nothing(graded):
    full = [(c.name, c.score, c.status) for c in graded["mixed"]["n-full"].checks]
    for name in NO_EFFECT:
        result = graded["mixed"][f"h-{name.replace('_', '-')}"]
        assert [(c.name, c.score, c.status) for c in result.checks] == full, name


def test_every_hostile_submission_is_graded_and_none_reaches_full_marks(graded):
    for student in graded["hostile"]:
        result = graded["mixed"][student]
        assert result.checks, student
        if student.removeprefix("h-").replace("-", "_") not in NO_EFFECT:
            assert result.score < result.max_score, student


def test_runs_stop_at_the_limits_and_say_which(graded):
    statuses = {
        student: {run.status for run in graded["mixed"][student].runs}
        for student in ("h-loop-at-import", "h-memory-bomb", "h-fork-bomb", "h-stdout-flood", "h-loop-in-forward")
    }
    # The runs that import model.py stop at the limit; the one on mla.py alone (and the config run of the
    # forward loop) still succeed: a limit costs only the checks that depend on that run.
    assert statuses["h-loop-at-import"] in ({"cpu-limit", "ok"}, {"cpu-limit", "timeout", "ok"})
    assert statuses["h-memory-bomb"] == {"memory-limit", "ok"}
    assert statuses["h-fork-bomb"] == {"process-limit", "ok"}
    assert statuses["h-stdout-flood"] == {"output-limit", "ok"}
    assert statuses["h-loop-in-forward"] == {"timeout", "ok"}
    for result in graded["mixed"].values():
        for run in result.runs:
            assert run.seconds <= LIMITS.wall_seconds + 2.0, (result.student, run.name, run.status)


def expected_messages() -> dict[str, str]:
    """What the learner reads for each hostile submission that loses points: a phrase of one check's message."""
    cap = f"{grader.submission.ANSWERS_MAX_BYTES:,}"
    return {
        "h-loop-at-import": "stopped at the CPU-time limit of 5 s",
        "h-loop-in-forward": "stopped after the wall-time limit of 8 s",
        "h-memory-bomb": "stopped at the memory limit of 512 MiB",
        "h-fork-bomb": "stopped at the limit of 32 processes and threads",
        "h-stdout-flood": "stopped: the code printed more than 256 KiB to stdout/stderr",
        "h-sys-exit": "model.py could not be imported: SystemExit: 0",
        "h-os-exit": "the process exited with status 0 before it returned a result",
        "h-kill-self": "the process was killed by signal SIGKILL",
        "h-kill-all": "the process was killed by signal SIGKILL",
        "h-forged-channel": "the process exited with status 0 before it returned a result",
        "h-nan-inf": "returned logits with NaN or inf entries",
        "h-lying-tensor": "returned logits of shape (1, 3, 1); expected (1, 3, ",
        "h-symlinks": "answers.toml is a symbolic link; submit the file itself",
        "h-answers-50mb": f"answers.toml is larger than the {cap} bytes the grader reads",
        "h-answers-deep": "answers.toml is nested too deeply",
        "h-answers-latin1": "answers.toml is not UTF-8 text",
        # It looks for the Gradescope autograder's keys (tests/test_gradescope.py), finds none, and says so.
        "h-key-thief": 'model.py could not be imported: RuntimeError: THIEF {"/autograder/control.txt": "FileNotFo',
    }


def test_each_hostile_submission_is_told_what_went_wrong(graded):
    expected = expected_messages()
    assert set(expected) | {f"h-{n.replace('_', '-')}" for n in NO_EFFECT} | {"h-memory-tree"} == set(graded["hostile"])
    for student, phrase in expected.items():
        messages = [c.message for c in graded["mixed"][student].checks if c.status == "failed"]
        assert any(phrase in m for m in messages), (student, phrase, messages[:3])


def test_links_out_of_the_submission_are_never_followed(graded):
    result = graded["mixed"]["h-symlinks"]
    assert result.score == 0
    messages = " ".join(c.message for c in result.checks)
    assert "symbolic link" in messages


def test_the_grader_the_keys_and_the_submissions_are_unchanged(graded):
    assert graded["after"] == graded["before"]


def test_no_process_of_any_submission_is_left(graded):
    names = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    assert "grader-orphan" not in names


def test_every_report_is_written_and_readable(graded):
    reports = graded["reports"]
    book = json.loads((reports / "gradebook.json").read_text(encoding="utf-8"))
    listed = json.dumps(book)
    for student in graded["mixed"]:
        assert student in listed
        results = json.loads((reports / student / "results.json").read_text(encoding="utf-8"))
        assert results["score"] == graded["mixed"][student].score
        assert (reports / student / "feedback.md").read_text(encoding="utf-8").strip()
    for name in ("gradebook.csv", "scores.csv", "junit.xml", "summary.md"):
        assert (reports / name).stat().st_size > 0
