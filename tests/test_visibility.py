"""Check visibility: declared with each check, carried by results.json, and honoured by the learner's feedback.

Gradescope's terms (``grader.scoring.VISIBILITY``): a check is "visible", shown "after_due_date", or "hidden".
results.json gives each test its check's value, and Gradescope enforces it; feedback.md and the console (a CI
log is the learner's to read) withhold the checks that are not visible until the instructor publishes.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

import grader
from grader.__main__ import parser, show_detail
from grader.reports.files import feedback_md, results_json, written_line
from grader.results import CheckResult, ManualItem, StudentResult
from grader.scoring import VISIBILITY, check

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "gradescope-results.schema.json").read_text())
SHOWN = {"1.1": "visible", "1.2": "after_due_date", "1.3": "hidden"}


def learner() -> StudentResult:
    """One check of each visibility, each failed with a message of its own, and a manual item for the hidden one."""
    checks = [
        CheckResult("quiz.open", "1.1", 1, 4, "failed", "MESSAGE-OPEN"),
        CheckResult("quiz.later", "1.2", 0, 4, "failed", "MESSAGE-LATER"),
        CheckResult("quiz.secret", "1.3", 0, 6, "manual", "MESSAGE-SECRET"),
    ]
    items = [
        ManualItem("quiz.secret", "The secret check", 6, "RUBRIC", "answer", check="1.3"),
        ManualItem("theory.rope", "Theory 2: RoPE", 5, "RUBRIC", "answer"),
    ]
    return StudentResult("learner", 1, 14, checks, "test", manual_review=items)


def test_every_check_declares_a_known_visibility_and_answers_wait_for_the_due_date() -> None:
    """The checks whose failure message states the answer (the quiz, the mask, the lesson total) are shown after the
    due date; the checks of the learner's code, whose messages say what the code did, are visible."""
    table = grader.points_table()
    assert {row["visibility"] for row in table} <= set(VISIBILITY)
    later = {row["name"] for row in table if row["visibility"] == "after_due_date"}
    assert later == {"quiz.q1", "quiz.q2", "quiz.q3", "math.causal_mask", "params.lesson_total_reference"}
    assert sum(row["points"] for row in table if row["visibility"] == "visible") == 76


def test_a_check_with_an_unknown_visibility_is_refused() -> None:
    with pytest.raises(ValueError, match=r"check 9\.9 x\.y: visibility 'secret' is not one of visible, after_due"):
        check("9.9", "x.y", 1, "what", "page.html", visibility="secret")


def test_results_json_carries_each_checks_visibility_and_counts_only_the_visible_ones() -> None:
    data = results_json(learner(), 7, SHOWN)
    jsonschema.validate(data, SCHEMA)
    assert [t["visibility"] for t in data["tests"][:3]] == ["visible", "after_due_date", "hidden"]
    assert [t["output"] for t in data["tests"][:3]] == ["MESSAGE-OPEN", "MESSAGE-LATER", "MESSAGE-SECRET"]
    assert data["output"].startswith("Automatic checks: 1 / 4 shown now (10 more points later). Written work: ")
    unknown = results_json(learner(), 7, {"1.1": "visible"})  # a check the table does not know: never shown
    assert [t["visibility"] for t in unknown["tests"][:3]] == ["visible", "hidden", "hidden"]


def test_feedback_withholds_the_checks_not_visible_until_the_grades_are_published() -> None:
    held = feedback_md(learner(), 7, SHOWN)
    assert held.startswith("# Feedback for learner\n\n**Automatic checks: 1 / 4 shown now (10 more points later)**")
    assert "| 1.1 | quiz.open | 1 / 4 | failed |" in held
    assert "| 1.2 | quiz.later | – / 4 | shown after the due date |" in held
    assert "MESSAGE-OPEN" in held
    assert not [word for word in ("MESSAGE-LATER", "MESSAGE-SECRET", "quiz.secret", "secret check") if word in held]
    assert "- Theory 2: RoPE (theory.rope): awaiting review" in held
    published = feedback_md(learner(), 7, SHOWN, publish=True)
    assert published.startswith("# Feedback for learner\n\n**Automatic checks: 1 / 14** · Written work")
    assert all(word in published for word in ("MESSAGE-LATER", "MESSAGE-SECRET", "| 1.3 | quiz.secret | 0 / 6 |"))


def test_the_console_withholds_them_too_and_publish_is_an_option(capsys, monkeypatch) -> None:
    monkeypatch.setattr(grader.__main__, "visibilities", lambda: SHOWN)
    show_detail(learner())
    out = capsys.readouterr().out
    assert "  1.2  quiz.later                            - / 4   shown after the due date (--publish)\n" in out
    assert "MESSAGE-OPEN" in out
    assert not [word for word in ("MESSAGE-LATER", "MESSAGE-SECRET", "quiz.secret") if word in out]
    assert "  Automatic checks: 1 / 4 shown now (10 more points later)\n" in out
    show_detail(learner(), publish=True)
    assert "MESSAGE-SECRET" in capsys.readouterr().out
    assert parser().parse_args(["--publish"]).publish
    assert not parser().parse_args([]).publish


def test_a_check_waiting_for_a_person_is_not_counted_as_written_work(capsys, monkeypatch) -> None:
    """The written line counts the written items only: a check sent to a person (the hidden one here, the kit's
    stand-ins for the quiz) is shown, or withheld, with the checks, so it never adds to "awaiting review"."""
    monkeypatch.setattr(grader.__main__, "visibilities", lambda: SHOWN)
    assert written_line(learner()) == "Written work: 0 / 5 recorded, 1 item awaiting review"
    assert "· Written work: 0 / 5 recorded, 1 item awaiting review\n" in feedback_md(learner(), 7, SHOWN)
    show_detail(learner())
    assert "  Written work: 0 / 5 recorded, 1 awaiting review\n" in capsys.readouterr().out
