"""The student kit as a learner gets it: copied to a fresh folder, its README's two commands run as written.

The commands are nox sessions, so each makes a fresh virtual environment (pip's wheel cache is reused, as on a
learner's machine after a first install). The first builds the lesson: the built site is searched for every answer
of this repository. The second grades the template's copy and a full-marks submission with the kit's grader,
and every check that learners see must score exactly as the instructor's grader scores it (same seed, same
student ids, same message); the checks shown after the due date are stand-ins that say so. The time each step
took is printed (``pytest -s``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import pytest

import grader
from grader.__main__ import main
from grader.release.scan import answers, scan
from reference import Config, count_parameters

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "tests" / "fixtures" / "gradescope-results.schema.json").read_text())
STUDENTS = {"ada": REPO / "submissions" / "_template", "full-marks": REPO / "tests" / "fixtures/submissions/full"}
VISIBLE = {row["number"] for row in grader.points_table() if row["visibility"] == "visible"}


def readme_commands(readme: Path) -> list[str]:
    """The commands of the README's first bash block, without their comments."""
    block = readme.read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def run(command: str, cwd: Path) -> float:
    """One README command, run with this test run's nox (``nox`` becomes ``python -m nox``); its seconds."""
    words = command.split()
    assert words[0] == "nox", command
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NOX", "VIRTUAL_ENV", "PYTEST"))}
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", *words], cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{command}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return time.monotonic() - start


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """The kit in a fresh folder, after a learner ran its README's commands: (the folder, seconds per step)."""
    out = tmp_path_factory.mktemp("dist")
    seconds = {}
    start = time.monotonic()
    assert main(["release", "--out", str(out)]) == 0
    seconds["release"] = time.monotonic() - start
    folder = tmp_path_factory.mktemp("learner") / "kimi-k2-kit"
    shutil.copytree(out / "student-kit", folder)
    for student, source in STUDENTS.items():
        shutil.copytree(source, folder / "submissions" / student)
    build_docs, grade = readme_commands(folder / "README.md")
    seconds["docs (fresh venv, every page run)"] = run(build_docs, folder)
    for number, student in enumerate(STUDENTS):
        label = "grade, fresh venv" if number == 0 else "grade, venv reused"
        seconds[f"{label} ({student})"] = run(grade.replace("<your-id>", student), folder)
    print("\nstudent kit, seconds:", json.dumps({k: round(v, 1) for k, v in seconds.items()}), flush=True)
    return folder, seconds


def test_the_readme_opens_with_the_two_commands(learner) -> None:
    assert readme_commands(learner[0] / "README.md") == ["nox -s docs", "nox -s grade -- submissions/<your-id>"]


def test_the_site_it_builds_is_the_student_edition_and_holds_no_answer(learner) -> None:
    site = learner[0] / "docs" / "_build" / "html"
    assert "Student edition:" in (site / "index.html").read_text()
    assert not (site / "instructors").exists() and not (site / "threat-model.html").exists()
    assert (site / "auto_examples" / "09_quiz.html").is_file()
    report = scan(site, answers(REPO, count_parameters(Config.lesson())))
    assert report.hits == []
    assert report.files > 100


@pytest.mark.parametrize("student", list(STUDENTS))
def test_the_kit_grades_the_visible_checks_as_the_instructors_grader_does(learner, student: str) -> None:
    folder = learner[0]
    book = json.loads((folder / "reports" / "gradebook.json").read_text())
    mine = next(s for s in book["students"] if s["student"] == student)
    (course,) = grader.grade([folder / "submissions" / student], seed=mine["run_seed"])
    theirs = {c.number: (c.score, c.status, c.message) for c in course.checks}
    ours = {c["number"]: (c["score"], c["status"], c["message"]) for c in mine["checks"]}
    assert set(ours) == set(theirs)
    assert {n: ours[n] for n in VISIBLE} == {n: theirs[n] for n in VISIBLE}
    later = {n: ours[n] for n in ours if n not in VISIBLE}
    assert all(score == 0 and status == "manual" for score, status, _ in later.values())
    assert all("scored by your course's grader" in message for *_, message in later.values())
    shown = sum(ours[n][0] for n in VISIBLE)
    assert shown == (76 if student == "full-marks" else 14)
    data = json.loads((folder / "reports" / student / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    assert data["output"].startswith(f"Automatic checks: {shown:g} / 76 shown now (24 more points later).")
    feedback = (folder / "reports" / student / "feedback.md").read_text()
    assert "| 1.1 | quiz.q1 | – / 4 | shown after the due date |" in feedback
