"""The late policy at its edges (the grace period, the day boundaries, the cap, extensions, the no-credit date,
an unknown time), the files it is read from, and a graded class under it: raw score, penalty and final side by
side, and the source of every submission time."""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import grader
from grader.__main__ import main
from grader.late import (
    NO_TIME,
    Extension,
    LatePolicy,
    SubmissionTime,
    gradescope_time,
    load_policy,
    parse_time,
    read_times,
)

DUE = datetime(2025, 3, 14, 22, 59, tzinfo=UTC)
POLICY = LatePolicy(due=DUE, grace=timedelta(minutes=15), percent_per_day=10, max_percent=50,
                    no_credit_after=DUE + timedelta(days=7))  # fmt: skip
ROOT = Path(__file__).resolve().parent.parent


def at(delta: timedelta, policy: LatePolicy = POLICY, student: str = "ada"):
    return policy.assess(student, SubmissionTime(DUE + delta, "test"))


@pytest.mark.parametrize(
    ("delta", "status", "percent"),
    [
        (-timedelta(days=1), "on time", 0),
        (timedelta(0), "on time", 0),
        (timedelta(minutes=15), "on time", 0),  # the last second of the grace period
        (timedelta(minutes=15, seconds=1), "late", 10),  # past the grace: a started day, counted from the due date
        (timedelta(days=1), "late", 10),  # exactly 24 h late: still the first day
        (timedelta(days=1, seconds=1), "late", 20),
        (timedelta(days=4, hours=23), "late", 50),  # 5 started days: 50 %, the cap itself
        (timedelta(days=6), "late", 50),  # 6 days would be 60 %: capped
        (timedelta(days=7), "late", 50),  # at the no-credit date itself: still credit
        (timedelta(days=7, seconds=1), "no credit", 100),
    ],
)
def test_penalty_at_the_edges(delta: timedelta, status: str, percent: float) -> None:
    penalty = at(delta)
    assert (penalty.status, penalty.percent) == (status, percent)
    assert penalty.late_seconds == delta.total_seconds()
    assert penalty.final(80) == pytest.approx(80 * (1 - percent / 100))


def test_the_rule_says_how_the_penalty_was_reached() -> None:
    assert at(timedelta(days=1, seconds=1)).rule == (
        "2 days late (1 d 1 s after 2025-03-14 22:59 UTC): 10% per started day: -20%"
    )
    assert (
        at(timedelta(days=6)).rule
        == "6 days late (6 d after 2025-03-14 22:59 UTC): 10% per started day, capped at 50%: -50%"
    )
    assert at(timedelta(minutes=5)).rule == "on time: 5 min after the due date, within the grace (2025-03-14 22:59 UTC)"


def test_an_extension_moves_the_due_date_and_the_no_credit_date_by_as_much() -> None:
    policy = LatePolicy(**{**POLICY.__dict__, "extensions": {"ada": Extension(DUE + timedelta(days=2), "illness")}})
    assert at(timedelta(days=2), policy).status == "on time"
    assert at(timedelta(days=2, minutes=16), policy).percent == 10
    assert at(timedelta(days=9), policy).status == "late"  # past everyone else's no-credit date
    assert at(timedelta(days=9, seconds=1), policy).status == "no credit"
    assert at(timedelta(days=2), policy, student="bo").percent == 20  # the others keep the class dates
    assert at(timedelta(days=2), policy).rule.endswith("(extension to 2025-03-16 22:59 UTC: illness)")


def test_an_unknown_submission_time_is_never_called_on_time() -> None:
    penalty = POLICY.assess("ada", NO_TIME)
    assert (penalty.status, penalty.percent, penalty.submitted_at) == ("unknown", 0.0, "")
    assert penalty.source == NO_TIME.source
    assert "not assessed" in penalty.rule


def test_policy_and_extension_files(tmp_path) -> None:
    policy = tmp_path / "late.toml"
    policy.write_text(
        "due = 2025-03-14T23:59:00+01:00\ngrace_minutes = 15\npercent_per_day = 10\nmax_percent = 50\n"
        "no_credit_after = 2025-03-21T23:59:00+01:00\n"
    )
    extensions = tmp_path / "extensions.toml"
    extensions.write_text('ada = 2025-03-16T23:59:00Z\nbo = { days = 2, reason = "illness" }\n')
    loaded = load_policy(policy, extensions)
    assert (loaded.due, loaded.grace, loaded.percent_per_day, loaded.max_percent) == (
        DUE,
        timedelta(minutes=15),
        10,
        50,
    )
    assert loaded.extensions == {
        "ada": Extension(datetime(2025, 3, 16, 23, 59, tzinfo=UTC), ""),
        "bo": Extension(DUE + timedelta(days=2), "illness"),
    }
    assert loaded.source == f"{policy} with {extensions}"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("due = 2025-03-14T23:59:00\n", "has no UTC offset, so its time zone is unknown"),
        ("due = 2025-03-14\n", "is a date without a time"),
        ('due = "soon"\n', "'soon' is not a date and time"),
        ("percent_per_day = 10\n", "the due date is missing"),
        ("due = 2025-03-14T23:59:00Z\npenalty = 10\n", "unknown key(s) penalty; a late policy has due, grace_minutes"),
        ("due = 2025-03-14T23:59:00Z\nmax_percent = 120\n", "max_percent is at most 100, not 120"),
        ("due = 2025-03-14T23:59:00Z\nno_credit_after = 2025-03-01T00:00:00Z\n", "is before the due date"),
    ],
)
def test_a_bad_policy_file_is_a_usage_error_naming_it(tmp_path, text: str, error: str) -> None:
    path = tmp_path / "late.toml"
    path.write_text(text)
    with pytest.raises(grader.UsageError, match=str(path)) as caught:
        load_policy(path)
    assert error in str(caught.value)


def test_submission_times_from_a_csv_and_from_gradescope(tmp_path) -> None:
    times = tmp_path / "times.csv"
    rows = [
        "student,submitted_at,source",
        "ada,2025-03-14T23:05:00+01:00,git commit 3f2c1a9",
        "bo,,",
        "cy,2025-03-15T00:00Z,",
    ]
    times.write_text("\n".join(rows) + "\n")
    read = read_times(times)
    assert read["ada"] == SubmissionTime(datetime(2025, 3, 14, 22, 5, tzinfo=UTC), "git commit 3f2c1a9")
    assert read["bo"] == SubmissionTime(None, f"submitted_at column of {times}: empty, so unknown")
    assert read["cy"].source == f"submitted_at column of {times}"
    times.write_text("student,submitted_at\nada,2025-03-14 23:05\n")
    with pytest.raises(grader.UsageError, match=r"times\.csv, line 2: 2025-03-14 23:05 has no UTC offset"):
        read_times(times)
    metadata = tmp_path / "submission_metadata.json"
    metadata.write_text(json.dumps({"id": 1, "created_at": "2018-07-01T14:22:32.365935-07:00", "users": []}))
    assert gradescope_time(metadata) == SubmissionTime(
        parse_time("2018-07-01T21:22:32.365935Z", "x"), f"Gradescope submission metadata ({metadata}: created_at)"
    )
    metadata.write_text("{}")
    with pytest.raises(grader.UsageError, match=r"has no created_at: it is not Gradescope's submission_metadata\.json"):
        gradescope_time(metadata)


def test_a_class_graded_under_the_policy_shows_raw_penalty_and_final_and_where_each_time_came_from(
    tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    policy = tmp_path / "late.toml"
    policy.write_text("due = 2025-03-14T22:59:00Z\npercent_per_day = 10\n")
    times = tmp_path / "times.csv"
    times.write_text("student,submitted_at,source\nalice,2025-03-16T10:00:00Z,git commit time of abc1234\n")
    out = tmp_path / "reports"
    args = ["submissions/alice", "submissions/bob", "--out", str(out), "--seed", "3", "--late-policy", str(policy)]
    assert main([*args, "--submitted-at", str(times)]) == 0
    captured = capsys.readouterr()
    assert "note: no submission time for bob: their lateness is not assessed (reported as unknown, never as on " in (
        captured.err
    )
    with (out / "scores.csv").open() as handle:
        table = {row["student"]: row for row in csv.DictReader(handle)}
    assert {k: table["alice"][k] for k in ("total", "late_status", "late_penalty_percent", "final")} == {
        "total": "100",
        "late_status": "late",
        "late_penalty_percent": "20",
        "final": "80",
    }
    assert table["alice"]["submitted_source"] == "git commit time of abc1234"
    assert (table["bob"]["late_status"], table["bob"]["final"], table["bob"]["submitted_at"]) == ("unknown", "46", "")
    summary = (out / "summary.md").read_text()
    assert "| Raw total | Late | Final | Submission time from |" in summary
    assert "| 100 | late, -20% | 80 | git commit time of abc1234 |" in summary
    assert "| 46 | unknown: not assessed | 46 | none: no submission time was given for this folder |" in summary
    results = json.loads((out / "alice" / "results.json").read_text())
    assert results["score"] == 80
    assert "Late policy: late. 2 days late" in results["output"]
    assert (
        "penalty 20%, final 80. Submission time from: git commit time of abc1234."
        in (out / "alice" / "feedback.md").read_text()
    )

    # An extension granted later changes the penalty of the recorded attempt without grading it again.
    extensions = tmp_path / "extensions.toml"
    extensions.write_text("alice = { days = 2 }\nalcie = { days = 9 }\n")
    times.write_text(times.read_text() + "bbo,2025-03-14T20:00:00Z,by hand\n")
    assert main([*args, "--submitted-at", str(times), "--extensions", str(extensions)]) == 0
    captured = capsys.readouterr()
    assert "Skipped 2 submission(s) already graded" in captured.out
    # An entry for an id graded nowhere is a misspelling until shown otherwise: it applies to nobody, and is said.
    assert (
        f"note: {times} gives a submission time for bbo, neither graded in this run nor in the gradebook: a "
        "misspelt id? It applies to nobody.\n"
    ) in captured.err
    assert f"note: {extensions} grants an extension to alcie, neither graded in this run nor in the gradebook" in (
        captured.err
    )
    with (out / "scores.csv").open() as handle:
        table = {row["student"]: row for row in csv.DictReader(handle)}
    assert (table["alice"]["late_status"], table["alice"]["final"]) == ("on time", "100")

    # Graded again without the policy: said, not silently dropped.
    assert main(["submissions/alice", "--out", str(out), "--regrade"]) == 0
    assert "holds late penalties, but no --late-policy was given: the submissions graded now get none" in (
        capsys.readouterr().err
    )


def test_gradescope_metadata_is_for_one_folder(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    metadata = tmp_path / "submission_metadata.json"
    metadata.write_text(json.dumps({"created_at": "2025-03-14T20:00:00Z"}))
    assert main(["submissions/alice", "submissions/bob", "--gradescope-metadata", str(metadata)]) == 2
    assert "gives the time of one submission; 2 folders are graded here" in capsys.readouterr().err
