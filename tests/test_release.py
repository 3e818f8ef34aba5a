"""``python -m grader release``: the student kit holds what learners need and no answer; the rules follow new files.

The kit is built once by the command line. The answer scan (``grader.release.scan``) searches every file of it
for every answer of this repository, and is shown to catch each kind of answer when one is planted, in each
form a file may hide it: as it is, in HTML split by tags, in a notebook, in a zip. Builds from copies of the
repository show that the rules, not a list of files, decide: a new module ships, a new hidden check does not,
a leak planted in a shipped file fails the build, and a key module with a visible check is refused.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import html
import io
import json
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

import grader
from grader.__main__ import main
from grader.errors import UsageError
from grader.release import build
from grader.release.kit import learner_points_table, torch_pin, without_instructor_regions
from grader.release.learner import check_definitions
from grader.release.scan import answers, regions, scan, squash
from grader.rubrics import WRITTEN_RUBRICS
from reference import Config, count_parameters

REPO = Path(__file__).resolve().parents[1]
TOTAL = count_parameters(Config.lesson())
LESSON_TOTAL_FORMS = [f"{TOTAL:,}", str(TOTAL), f"{TOTAL:_}", f"{TOTAL:,}".replace(",", " "), "6.16B"]
LESSON_TOTAL_FORMS += [f"{TOTAL / 1e9:.3f} billion", f"{TOTAL:.3e}", f"{TOTAL / 1e6:,.1f}M"]
HIDDEN_CHECK = """

@check("6.1", "model.secret_probe", 1, "A hidden check", "auto_examples/07_skeleton.html", visibility="hidden")
def check_secret_probe(evidence: Evidence) -> str:
    assert evidence.has("model.py"), "the hidden probe looked for the distinctive marker zanzibar-quokka-17"
    return "model.secret_probe: passed."
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The release, built by the command line: (the kit, what the command printed)."""
    out = tmp_path_factory.mktemp("dist")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["release", "--out", str(out)]) == 0
    return out / "student-kit", printed.getvalue()


@pytest.fixture(scope="module")
def found() -> object:
    return answers(REPO, TOTAL)


def tracked_copy(target: Path) -> Path:
    """A copy of the repository's files (tracked, and untracked but not ignored), as a checkout would have them."""
    listed = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True, check=True
    )
    for name in listed.stdout.splitlines():
        source = REPO / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


def test_the_kit_holds_what_learners_need_and_nothing_of_the_instructors(kit) -> None:
    folder, printed = kit
    present = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    for wanted in (
        "README.md",
        "LICENSE",
        ".gitignore",
        "noxfile.py",
        "pyproject.toml",
        ".ci/setup",
        ".github/workflows/grade.yml",
        "docs/STUDENT_EDITION",
        "docs/conf.py",
        "docs/lessons/09_quiz.py",
        "docs/learners/submit.md",
        "grader/checks/check_quiz.py",
        "grader/sandbox/inside/probe.py",
        "submissions/README.md",
        "submissions/_template/model.py",
    ):
        assert wanted in present, wanted
    assert {p for p in present if p.startswith("reference/")} == {
        f"reference/{p.name}" for p in (REPO / "reference").glob("*.py")
    }
    unwanted_folders = ("tests/", "submissions/alice/", "submissions/bob/", "docs/instructors/", "grader/similarity/")
    for unwanted in (*unwanted_folders, "grader/review/"):
        assert not [p for p in present if p.startswith(unwanted)], unwanted
    for unwanted in ("docs/threat-model.md", "docs/api/grader.md", ".ci/run", ".github/workflows/ci.yml"):
        assert unwanted not in present
    assert not [p for p in present if "__pycache__" in p or p.startswith("grader/release")]
    assert "The worked solution is in the instructor edition" in (folder / "docs/lessons/07_skeleton.py").read_text()
    assert "## The examples" not in (folder / "submissions/README.md").read_text()
    assert "## The template" in (folder / "submissions/README.md").read_text()
    assert "submissions/alice/: left out (someone's answers)" in printed
    assert "no answer found in it" in printed


def test_the_kit_readme_starts_with_its_two_commands_and_counts_from_the_grader(kit) -> None:
    readme = (kit[0] / "README.md").read_text()
    block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.splitlines()]
    assert commands == ["nox -s docs", "nox -s grade -- submissions/<your-id>"]
    visible = [r for r in learner_points_table(kit[0]) if r["visibility"] == "visible"]
    course = grader.points_table()
    shown = sum(r["points"] for r in course if r["visibility"] == "visible")
    assert f"runs {len(visible)} of the course's {len(course)} automatic checks, worth {shown:g} of their 100" in readme
    assert (
        "(1.1 `quiz.q1`, 1.2 `quiz.q2`, 1.3 `quiz.q3`, 2.1 `math.causal_mask`, 3.2 `params.lesson_total_refer" in readme
    )
    # What the learner's console prints for them, so that the README's words are the ones on the screen:
    assert "This grader lists each of them as 'shown after the due date' and scores none of them" in readme


def test_the_kit_is_its_own_package_with_the_repositorys_pins(kit) -> None:
    project = tomllib.loads((kit[0] / "pyproject.toml").read_text())
    ours = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert set(project["project"]["optional-dependencies"]) == {"docs", "grade"}
    for extra in ("docs", "grade"):
        assert project["project"]["optional-dependencies"][extra] == ours["project"]["optional-dependencies"][extra]
    assert project["project"]["dependencies"] == ours["project"]["dependencies"]
    assert project["tool"] == {"setuptools": ours["tool"]["setuptools"]}
    assert f'TORCH = "{torch_pin(REPO)}"' in (kit[0] / "noxfile.py").read_text()


def test_the_learner_grader_has_the_visible_checks_and_stand_ins_only(kit) -> None:
    table = {r["number"]: r for r in learner_points_table(kit[0])}
    import grader

    ours = {r["number"]: r for r in grader.points_table()}
    assert table == {n: r for n, r in ours.items() if r["visibility"] != "hidden"}
    quiz = (kit[0] / "grader/checks/check_quiz.py").read_text()
    assert "raise ManualReview(" in quiz and "q1_choice" not in quiz and "read_q3" not in quiz
    assert "Q3_IDEAS" not in (kit[0] / "grader/rubrics.py").read_text()
    entry = ast.parse((kit[0] / "grader/__main__.py").read_text())
    assigned = [n for n in entry.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "COMMANDS"]
    commands = ast.literal_eval(assigned[0].value)
    assert commands == {}, "no instructor's tool: similarity, review, release, merge and export stay with instructors"
    for module in ("similarity/__init__.py", "review/__init__.py", "release/__init__.py", "reports/merge.py"):
        assert not (kit[0] / "grader" / module).exists(), module


def test_no_answer_is_in_the_kit_and_the_scan_knows_every_source_of_one(kit, found) -> None:
    report = scan(kit[0], found)
    assert report.hits == []
    assert report.files > 80 and report.binary == []
    assert found.without_answers() == []  # every region, key module, withheld check and example gave some
    kinds = {a.kind for a in found.answers}
    assert kinds == {"solution", "answer key", "after_due_date check", "example submission"}
    assert len(found.answers) > 500


def planted_lines(kind: str) -> list[str]:
    """Real lines of each kind of answer, as they stand in the repository (not squashed)."""
    if kind == "solution":
        _, lines = next(regions(REPO / "docs/lessons/09_quiz.py"))
        return [line for line in lines if len(squash(line)) > 40][:2]
    if kind == "answer key":
        return [
            line for line in (REPO / "grader/checks/check_quiz.py").read_text().splitlines() if "Q1_OPTIONS =" in line
        ]
    if kind == "rubric":
        return [WRITTEN_RUBRICS["theory.rope"]]
    if kind == "withheld check":
        return [
            line
            for line in (REPO / "grader/checks/check_mask.py").read_text().splitlines()
            if "masks the diagonal" in line
        ]
    return [
        line for line in (REPO / "submissions/alice/answers.toml").read_text().splitlines() if line.startswith("rope")
    ]


def planted(text: str, form: str) -> tuple[str, bytes]:
    """``text`` as a file of the given form would hold it."""
    if form == "html":
        spans = " ".join(f'<span class="n">{html.escape(word)}</span>' for word in text.split())
        return "page.html", f"<html><body><pre>{spans}</pre></body></html>".encode()
    if form == "notebook":
        return "page.ipynb", json.dumps({"cells": [{"source": [text[:30], text[30:]], "outputs": []}]}).encode()
    if form == "zip":
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as archive:
            archive.writestr("inner/page.py", "# wrapped\n" + text.replace(" ", "\n#  "))
        return "download.zip", data.getvalue()
    return "plain.py", text.encode()


@pytest.mark.parametrize("form", ["plain", "html", "notebook", "zip"])
@pytest.mark.parametrize("kind", ["solution", "answer key", "rubric", "withheld check", "example submission"])
def test_the_scan_catches_each_kind_of_answer_planted_in_each_form(kind, form, found, tmp_path: Path) -> None:
    lines = planted_lines(kind)
    assert lines, f"no line of kind {kind} to plant"
    name, data = planted("\n".join(lines), form)
    (tmp_path / name).write_bytes(data)
    hits = scan(tmp_path, found).hits
    assert hits, f"a planted {kind} in a {form} file went unseen"
    assert all(hit.startswith(name) for hit in hits)


@pytest.mark.parametrize("printed", LESSON_TOTAL_FORMS)
@pytest.mark.parametrize("form", ["plain", "html"])
def test_the_scan_catches_the_lesson_total_however_it_is_printed(printed, form, found, tmp_path: Path) -> None:
    name, data = planted(f"The lesson config has {printed} parameters.", form)
    (tmp_path / name).write_bytes(data)
    assert [hit for hit in scan(tmp_path, found).hits if "the lesson parameter total" in hit]


@pytest.mark.parametrize("harmless", ["return x", "6,155,391 tokens", "61553909760", "6.2B", "v6.155.390", "16.16B"])
def test_the_scan_does_not_flag_common_lines_or_other_numbers(harmless, found, tmp_path: Path) -> None:
    (tmp_path / "page.py").write_text(f"def f(x):\n    {harmless}\n")
    assert scan(tmp_path, found).hits == []


def test_the_rules_follow_new_files_and_a_leak_fails_the_build(tmp_path: Path) -> None:
    repo = tracked_copy(tmp_path / "repo")
    (repo / "grader" / "ledger.py").write_text('"""A module another issue adds: it ships."""\n')
    (repo / "grader" / "similarity" / "review.py").write_text('"""An instructor page: it does not ship."""\n')
    model_checks = repo / "grader" / "checks" / "check_model.py"
    model_checks.write_text(model_checks.read_text() + HIDDEN_CHECK)
    notes, _ = build(repo, tmp_path / "dist", {})
    kit = tmp_path / "dist" / "student-kit"
    assert (kit / "grader" / "ledger.py").is_file()
    assert not (kit / "grader" / "similarity").exists()
    assert "zanzibar" not in (kit / "grader/checks/check_model.py").read_text()
    assert "check 6.1 model.secret_probe: left out (hidden)" in notes
    assert "6.1" not in {r["number"] for r in learner_points_table(kit)}
    hidden = [a for a in answers(repo, TOTAL).answers if a.where == "check 6.1 model.secret_probe"]
    assert hidden, "the scan must know the hidden check's code"
    config = repo / "reference" / "config.py"
    config.write_text(config.read_text() + f"\n# The lesson config has {TOTAL:,} parameters.\n")
    with pytest.raises(UsageError, match=r"failed its checks and was removed:\n  reference/config\.py: the lesson"):
        build(repo, tmp_path / "dist", {})
    assert not kit.exists()


def test_a_key_module_with_a_visible_check_is_refused(tmp_path: Path) -> None:
    repo = tracked_copy(tmp_path / "repo")
    quiz = repo / "grader" / "checks" / "check_quiz.py"
    quiz.write_text(quiz.read_text().replace('visibility="after_due_date",', "", 1))
    with pytest.raises(UsageError, match=r"holds answer keys, yet its check\(s\) 1\.1 are visible"):
        build(repo, tmp_path / "dist", {})


def test_instructor_regions_of_markdown_are_cut_and_must_balance() -> None:
    text = "keep\n<!-- BEGIN INSTRUCTOR: why -->\ndrop\n<!-- END INSTRUCTOR -->\nkeep too\n"
    assert without_instructor_regions(text, "f.md") == "keep\nkeep too\n"
    with pytest.raises(UsageError, match=r"f\.md:2: BEGIN INSTRUCTOR is never closed"):
        without_instructor_regions("a\n<!-- BEGIN INSTRUCTOR -->\nb\n", "f.md")
    with pytest.raises(UsageError, match=r"f\.md:1: END INSTRUCTOR without a BEGIN INSTRUCTOR"):
        without_instructor_regions("<!-- END INSTRUCTOR -->\n", "f.md")


def test_check_arguments_are_read_from_the_source_names_included(tmp_path: Path) -> None:
    """The release never imports the checks: names bound to literals (here or in the grader module they come
    from) and f-strings of them are read from the source; anything computed is refused with its place."""
    checks = tmp_path / "grader" / "checks"
    checks.mkdir(parents=True)
    (tmp_path / "grader" / "limits.py").write_text('TOLERANCE = "1e-4"\n')
    module = checks / "check_demo.py"
    head = 'from grader.limits import TOLERANCE\n\nPOINTS = 3\n\n\n@check("6.1", "demo.named", POINTS, '
    body = "\ndef check_a(evidence):\n  ...\n"
    module.write_text(head + 'f"within {TOLERANCE}", "auto_examples/07_skeleton.html")' + body)
    (spec,) = [d.spec for d in check_definitions(module)]
    assert (spec.points, spec.what, spec.visibility) == (3, "within 1e-4", "visible")
    module.write_text(head.replace("POINTS = 3", "POINTS = len('abc')") + '"x", "y")' + body)
    with pytest.raises(UsageError, match=r"check_demo\.py:6: @check\(\.\.\.\) of check_a must be made of literals"):
        check_definitions(module)


@pytest.mark.parametrize(
    ("policy", "error"),
    [
        ("percent_per_days = 10\n", "unknown key(s) percent_per_days; a late policy has due, "),
        ("percent_per_day = 10\nmax_percent = 150\n", "max_percent is at most 100, not 150."),
        ("percent_per_day = 10\nmax_percent = \n", "is not valid TOML: "),
    ],
)
def test_a_late_policy_is_read_at_the_release_as_gradescope_will_read_it(tmp_path: Path, policy: str, error: str):
    """Each Gradescope run completes the policy with Gradescope's due dates and reads it: a mistake found there
    would fail every learner's run, so the release reads it first (without a due date: Gradescope gives one)."""
    path = tmp_path / "late.toml"
    path.write_text(policy)
    out = tmp_path / "dist"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["release", "--out", str(out), "--late-policy", str(path)]) == 2
    assert err.getvalue().startswith(f"grader release: error: --late-policy {path}")
    assert error in err.getvalue()
    assert not out.exists(), "nothing is built from a policy the runs could not read"
    path.write_text("percent_per_day = 10\n")
    assert grader.release.settings(argparse.Namespace(docs_url=None, late_policy=path)) == {
        "late": {"percent_per_day": 10}
    }
