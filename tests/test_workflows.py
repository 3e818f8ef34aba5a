"""The class-grading workflow's shell steps, run here as GitHub Actions runs them: plan, submission times from
git, one grader per shard, the merge; and the workflow files wired to those scripts as the scripts expect.

The class lives in a throw-away git repository whose commits carry chosen dates; the grader runs as
``python -m grader`` (the scripts' GRADER) instead of through nox.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from grader.late import read_times

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci"
WORKFLOWS = ROOT / ".github" / "workflows"
SEED = "31337"
CLASS = {
    "ada": ROOT / "tests" / "fixtures" / "submissions" / "full",
    "bo": ROOT / "submissions" / "bob",
    "cy": ROOT / "tests" / "fixtures" / "submissions" / "partial",
}


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "GITHUB_STEP_SUMMARY"} | env
    environment |= {"PYTHONPATH": str(ROOT), "GRADER": f"{sys.executable} -m grader"}
    return subprocess.run(args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=600)


def git(repo: Path, *args: str, when: str = "2025-03-10T12:00:00+00:00") -> None:
    env = {"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}  # fmt: skip
    subprocess.run(["git", *args], cwd=repo, env=os.environ | env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course repository: the template, three students committed on three dates, a late policy."""
    repo = tmp_path_factory.mktemp("course")
    git(repo, "init", "-q", "-b", "main")
    shutil.copytree(ROOT / "submissions" / "_template", repo / "submissions" / "_template")
    (repo / ".github").mkdir()
    (repo / ".github" / "late-policy.toml").write_text("due = 2025-03-14T22:59:00Z\npercent_per_day = 10\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "course", when="2025-03-01T09:00:00+00:00")
    for student, day in zip(CLASS, ("2025-03-12T10:00:00+01:00", "2025-03-15T08:00:00Z", "2025-03-13T00:00:00Z"),
                            strict=True):  # fmt: skip
        shutil.copytree(CLASS[student], repo / "submissions" / student)
        git(repo, "add", ".")
        git(repo, "commit", "-qm", student, when=day)
    (repo / "submissions" / "bad name").mkdir()
    (repo / "submissions" / "bad name" / "answers.toml").write_text("")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a folder the grader refuses", when="2025-03-16T00:00:00Z")
    shutil.copytree(CI, repo / ".ci")  # the scripts as the workflow's checkout has them
    return repo


def test_the_plan_gives_the_matrix_and_one_seed_for_every_shard(tmp_path) -> None:
    planned = run(["bash", str(CI / "class-plan"), "3", "77"], tmp_path)
    assert (planned.returncode, planned.stdout) == (0, "shards=[1,2,3]\nseed=77\n")
    fresh = run(["bash", str(CI / "class-plan"), "1"], tmp_path)
    lines = fresh.stdout.splitlines()
    assert lines[0] == "shards=[1]" and lines[1].startswith("seed=") and lines[1][5:].isdigit()
    for args, error in (
        (["0"], "shards must be a whole number from 1 to 64, not '0'"),
        (["65"], "not '65'"),
        (["four"], "not 'four'"),
        (["2", "-1"], "seed must be a whole number (or empty for a fresh one), not '-1'"),
    ):
        refused = run(["bash", str(CI / "class-plan"), *args], tmp_path)
        assert refused.returncode == 1
        assert refused.stderr.startswith("::error::") and error in refused.stderr


def test_submission_times_are_the_last_commit_changing_each_folder(course, tmp_path) -> None:
    listed = run(["bash", ".ci/submission-times", "HEAD"], course)
    assert listed.returncode == 0, listed.stderr
    times = tmp_path / "times.csv"
    times.write_text(listed.stdout)
    read = read_times(times)
    assert sorted(read) == ["ada", "bo", "cy"]  # not the template, not the folder that is no valid id
    assert read["ada"].at == datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
    assert read["bo"].at == datetime(2025, 3, 15, 8, 0, tzinfo=UTC)
    assert read["ada"].source.startswith("git committer time of ")
    assert read["ada"].source.endswith(" (the last commit changing submissions/ada/ in HEAD)")
    one = run(["bash", ".ci/submission-times", "HEAD~1", "submissions/cy/", "submissions/zed"], course)
    rows = list(csv.DictReader(one.stdout.splitlines()))
    assert [(r["student"], r["submitted_at"]) for r in rows] == [("cy", "2025-03-13T00:00:00+00:00"), ("zed", "")]
    assert rows[1]["source"] == "git: no commit of HEAD~1 changes submissions/zed/"


def test_shards_graded_then_merged_give_the_class_of_one_run(course, tmp_path) -> None:
    shards = tmp_path / "shards"
    for k in ("1", "2"):
        graded = run(["bash", ".ci/grade-shard", k, "2", SEED, str(tmp_path / f"shard-{k}")], course)
        assert graded.returncode == 0, graded.stderr
        assert f"Shard {k}/2:" in graded.stdout
        assert "grader: skipped submissions/bad name: 'bad name' is not a valid student id" in graded.stderr
        (shards / f"gradebook-shard-{k}").mkdir(parents=True)  # as actions/download-artifact lays them out
        shutil.copy(tmp_path / f"shard-{k}" / "gradebook.sqlite", shards / f"gradebook-shard-{k}")
    summary = tmp_path / "summary.md"
    merged = run(["bash", ".ci/merge-shards", str(shards), "2", str(tmp_path / "class")], course,
                 GITHUB_STEP_SUMMARY=str(summary))  # fmt: skip
    assert merged.returncode == 0, merged.stderr
    assert summary.read_text().startswith("## Grading summary\n\n3 submission(s) graded; seed 31337;")

    times = tmp_path / "times.csv"
    times.write_text(run(["bash", ".ci/submission-times", "HEAD"], course).stdout)
    single = run([sys.executable, "-m", "grader", "--seed", SEED, "--out", str(tmp_path / "single"), "--submitted-at",
                  str(times), "--late-policy", ".github/late-policy.toml"], course)  # fmt: skip
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "class" / "gradebook.csv").read_bytes() == (tmp_path / "single" / "gradebook.csv").read_bytes()

    def scores(folder: str) -> list[dict[str, str]]:
        with (tmp_path / folder / "scores.csv").open() as handle:
            return [{k: v for k, v in row.items() if k != "graded_at"} for row in csv.DictReader(handle)]

    assert scores("class") == scores("single")
    assert [(r["student"], r["late_status"], r["final"]) for r in scores("class")] == [
        ("ada", "on time", "100"),
        ("bo", "late", "41.4"),  # 46, one started day late
        ("cy", "on time", "32"),
    ]


def test_a_missing_shard_is_named_and_fails_the_merge_after_merging_the_others(course, tmp_path) -> None:
    shards = tmp_path / "shards"
    graded = run(["bash", ".ci/grade-shard", "1", "3", SEED, str(tmp_path / "shard-1")], course)
    assert graded.returncode == 0, graded.stderr
    (shards / "gradebook-shard-1").mkdir(parents=True)
    shutil.copy(tmp_path / "shard-1" / "gradebook.sqlite", shards / "gradebook-shard-1")
    summary = tmp_path / "summary.md"
    merged = run(["bash", ".ci/merge-shards", str(shards), "3", str(tmp_path / "class")], course,
                 GITHUB_STEP_SUMMARY=str(summary))  # fmt: skip
    assert merged.returncode == 1
    assert "::error::shard(s) 2 3 of 3 did not deliver a gradebook: their students are not in this class" in (
        merged.stderr
    )
    assert "**Incomplete:** shard(s) 2 3 of 3" in summary.read_text()
    assert (tmp_path / "class" / "gradebook.csv").is_file()
    empty = run(["bash", ".ci/merge-shards", str(tmp_path / "nothing"), "2", str(tmp_path / "none")], course)
    assert empty.returncode == 1
    assert "no shard gradebook under" in empty.stderr


def steps(workflow: str) -> dict[str, list[dict]]:
    """Each job's steps of a workflow file."""
    data = yaml.safe_load((WORKFLOWS / workflow).read_text())
    return {name: job["steps"] for name, job in data["jobs"].items()}


def test_the_class_workflow_runs_these_scripts_with_the_artifacts_they_expect() -> None:
    data = yaml.safe_load((WORKFLOWS / "grade-class.yml").read_text())
    assert list(data[True]) == ["workflow_dispatch"]  # YAML reads the key `on` as True
    jobs = steps("grade-class.yml")
    scripts = [s["run"] for job in jobs.values() for s in job if "run" in s and ".ci/" in s["run"]]
    assert scripts == [
        'bash .ci/class-plan "$SHARDS" "$SEED" | tee -a "$GITHUB_OUTPUT"',
        'echo "PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu" >> "$GITHUB_ENV"\nbash .ci/setup\n'
        "# Ubuntu 24.04's AppArmor forbids unprivileged user namespaces, which bubblewrap needs.\n"
        "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0\n",
        'bash .ci/grade-shard "$SHARD" "$SHARDS" "$SEED" "shard-$SHARD" --require-isolation',
        'bash .ci/merge-shards shards "$SHARDS" reports',
    ]
    upload = next(s for s in jobs["grade"] if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["name"] == "gradebook-shard-${{ matrix.shard }}"  # what .ci/merge-shards looks for
    assert upload["with"]["path"] == "shard-${{ matrix.shard }}/gradebook.sqlite*"
    download = next(s for s in jobs["merge"] if s.get("uses", "").startswith("actions/download-artifact"))
    assert download["with"] == {"pattern": "gradebook-shard-*", "path": "shards"}
    checkout = next(s for s in jobs["grade"] if s.get("uses", "").startswith("actions/checkout"))
    assert checkout["with"]["fetch-depth"] == 0  # every folder's last commit, for its submission time


def test_the_pull_request_workflow_passes_each_submissions_time() -> None:
    jobs = steps("grade.yml")["grade"]
    changed = next(s for s in jobs if s.get("id") == "changed")["run"]
    assert 'bash .ci/submission-times "$HEAD_SHA" $folders > "$RUNNER_TEMP/submission-times.csv"' in changed
    grade = next(s for s in jobs if s.get("name") == "Grade")["run"]
    assert '--submitted-at "$RUNNER_TEMP/submission-times.csv"' in grade
    assert "--late-policy .github/late-policy.toml" in grade
