"""dist/autograder.zip run as Gradescope runs it, in a temporary folder standing in for /autograder.

Each submission gets a fresh root, as each gets a fresh container on Gradescope (``tests/gradescope_sim.py``:
``source/``, ``run_autograder``, ``submission/``, ``submission_metadata.json``, ``results/``), and
``run_autograder`` runs as root. Unless a test wants bubblewrap, a ``bwrap`` that cannot start comes first on
the PATH: Gradescope's containers usually refuse namespaces, and the grader then runs the code as a uid of its
own.

Every results.json is validated against tests/fixtures/gradescope-results.schema.json. The key thief (a fixture
that reads, lists, walks, writes and forges under the root, then smuggles what it got through stdout, stderr
and its error message) must get nothing but a control file the test makes world-readable.
"""

from __future__ import annotations

import hashlib
import json
import re
import stat
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from gradescope_sim import METADATA, files, interpreter, remove
from gradescope_sim import container as simulated
from gradescope_sim import run_autograder as run

from grader.release import gradescope
from grader.release.autograder import build_autograder
from grader.release.scan import answers, scan
from reference import Config, count_parameters

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
SCHEMA = json.loads((FIXTURES / "gradescope-results.schema.json").read_text())


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("release") / "autograder.zip"
    build_autograder(REPO, path, {"docs_url": "https://course.example/kimi-k2/"})
    return path


@pytest.fixture(scope="module")
def python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return interpreter(tmp_path_factory.mktemp("gradescope-venv"))


@pytest.fixture
def roots() -> Iterator[list[Path]]:
    """Fresh simulated /autograder folders, removed afterwards."""
    made: list[Path] = []
    yield made
    for root in made:
        remove(root)


def container(roots: list[Path], archive: Path, upload: dict[str, bytes], metadata: dict | None = METADATA) -> Path:
    roots.append(simulated(archive, upload, metadata))
    return roots[-1]


def run_autograder(root: Path, python: Path | str, bwrap: bool = False) -> dict:
    """run_autograder as Gradescope runs it; its results.json, validated against Gradescope's schema."""
    done = run(root, python, bwrap)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    jsonschema.validate(data, SCHEMA)
    return data


def thief(root: Path) -> dict[str, bytes]:
    """The key thief aimed at ``root``, with the template's answers."""
    code = (FIXTURES / "hostile" / "key_thief" / "model.py").read_text()
    code = code.replace('ROOT = "/autograder"', f'ROOT = "{root}"')
    return {"model.py": code.encode(), "answers.toml": (REPO / "submissions/_template/answers.toml").read_bytes()}


def stolen(data: dict) -> dict[str, object]:
    """What the thief reported, from the error message the grader showed for its model."""
    for test in data["tests"]:
        output = test.get("output", "")
        if "THIEF {" in output:
            start = output.index("THIEF {") + len("THIEF ")
            try:
                return json.JSONDecoder().raw_decode(output, start)[0]
            except ValueError:
                raise AssertionError(f"the thief's report was cut short: {output[start : start + 800]}") from None
    raise AssertionError("the thief's report is in no test's output: it did not run, or its message was lost")


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` but Python's bytecode caches (the grader writes them as it runs)."""
    found = (p for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts)
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in found}


def test_the_archive_holds_what_gradescope_runs_and_is_reproducible(archive: Path, tmp_path: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        modes = {i.filename: i.external_attr >> 16 for i in zipped.infolist()}
        names = set(modes)
        scripts = {name: zipped.read(name).decode() for name in ("setup.sh", "run_autograder")}
        requirements = zipped.read("requirements.txt").decode().splitlines()
        config = zipped.read("gradescope.toml").decode()
    assert {name for name in names if "/" not in name} == {
        "setup.sh",
        "run_autograder",
        "requirements.txt",
        "gradescope.toml",
    }
    assert stat.S_ISREG(modes["setup.sh"]) and modes["setup.sh"] & 0o777 == 0o755
    assert modes["run_autograder"] & 0o777 == 0o755
    assert {"grader/checks/check_quiz.py", "grader/rubrics.py", "grader/release/gradescope.py"} <= names
    assert "reference/counting.py" in names
    assert not [
        n for n in names if n.startswith(("grader/similarity/", "grader/review/", "tests/", "submissions/", "docs/"))
    ]
    assert not [n for n in names if "__pycache__" in n]
    for name, text in scripts.items():
        assert not re.search(r"@[A-Z_]+@", text), f"{name} has a placeholder left"
        assert subprocess.run(["bash", "-n"], input=text, text=True, check=False).returncode == 0, name
    assert 'VENV="${AUTOGRADER_VENV:-/opt/kimi-k2-grader}"' in scripts["setup.sh"]
    assert '--index-url "$TORCH_INDEX" "torch==2.13.0"' in scripts["setup.sh"]
    assert requirements[1:] == ["torch>=2.1", "pytest>=8", "numpy>=1.26"]
    assert config == 'docs_url = "https://course.example/kimi-k2/"\n'
    again = tmp_path / "again.zip"
    build_autograder(REPO, again, {"docs_url": "https://course.example/kimi-k2/"})
    assert again.read_bytes() == archive.read_bytes()


def test_a_full_marks_upload_in_a_top_folder_is_found_and_graded(archive, python, roots) -> None:
    root = container(roots, archive, files(FIXTURES / "submissions" / "full", "my-work/"))
    data = run_autograder(root, python)
    assert data["score"] == 100  # the automatic checks; the written work waits for the instructor
    assert data["output"].startswith(
        "Graded for Ada Lovelace. Graded the files of my-work/ in your upload. Automatic checks: 76 / 76 shown now "
        "(24 more points later)."
    )
    assert "Isolation" not in data["output"]  # what the sandbox lets code do is for staff (extra_data) only
    assert "REDUCED: bubblewrap failed" in data["extra_data"]["isolation"]
    assert "world-readable files, as a uid of its own," in data["extra_data"]["isolation"]
    assert data["extra_data"] | {"isolation": ""} == {
        "student": "Ada-Lovelace",
        "seed": 4242,  # Gradescope's submission id: a regrade draws the same inputs
        "isolation": "",
        "auto_score": 100,
        "gradescope_submission": 4242,
        "names": ["Ada Lovelace"],
    }
    checks = {t["number"]: t for t in data["tests"] if not t["number"].startswith("9.")}
    assert {n for n, t in checks.items() if t["visibility"] == "after_due_date"} == {"1.1", "1.2", "1.3", "2.1", "3.2"}
    assert all(t["score"] == t["max_score"] for t in checks.values())
    assert 0 < data["execution_time"] < 600


def test_a_broken_submission_gets_its_feedback(archive, python, roots) -> None:
    root = container(roots, archive, files(FIXTURES / "submissions" / "syntax_error"))
    data = run_autograder(root, python)
    outputs = {t["number"]: t["output"] for t in data["tests"]}
    assert outputs["3.1"].startswith("model.py could not be imported: SyntaxError")
    assert outputs["4.2"] == (
        "model.py could not be imported (SyntaxError; the error is shown in 3.1). "
        "See https://course.example/kimi-k2/auto_examples/07_skeleton.html."
    )
    assert data["score"] < 100
    assert data["extra_data"]["student"] == "Ada-Lovelace"


@pytest.mark.parametrize("bwrap", [False, True], ids=["as-a-uid-of-its-own", "under-bubblewrap"])
def test_the_key_thief_finds_nothing(archive, python, roots, bwrap: bool) -> None:
    root = container(roots, archive, {})
    for name, data in thief(root).items():
        (root / "submission" / name).write_bytes(data)
    source = digest(root / "source")
    data = run_autograder(root, python, bwrap=bwrap)
    report = stolen(data)
    refused = "FileNotFoundError" if bwrap else "PermissionError"  # under bubblewrap the root is not there at all
    keys = [k for k in report if k.startswith(str(root)) and not k.endswith("control.txt")]
    assert len(keys) == 5
    assert {report[k] for k in keys} == {refused}
    assert {report[k] for k in report if k.startswith("list ")} == {refused}
    assert report["forge results.json"] == report["plant a check"] == refused
    if bwrap:
        assert report[f"{root}/control.txt"] == "FileNotFoundError" and report["walk"] == []
    else:  # it could read what anyone may read, so each refusal above is the modes at work
        assert report[f"{root}/control.txt"] == "READ control: anyone may read this\n"
        assert report["walk"] == [], "os.walk of the root must see no file: it cannot list it"
    assert data["score"] != 1000 and "forged" not in data["output"]
    assert digest(root / "source") == source
    keys_and_rubrics = answers(REPO, count_parameters(Config.lesson()))
    keys_and_rubrics.answers = [a for a in keys_and_rubrics.answers if a.kind == "answer key"]
    keys_and_rubrics.numbers = []
    smuggled = root.parent / f"{root.name}-smuggled"  # removed with the root
    smuggled.mkdir()
    (smuggled / "report.json").write_text(json.dumps(report))
    assert scan(smuggled, keys_and_rubrics).hits == []
    assert len(keys_and_rubrics.answers) > 100  # the scan knows the keys it looked for


def test_a_grader_that_cannot_start_still_leaves_a_results_json(archive, roots) -> None:
    root = container(roots, archive, files(FIXTURES / "submissions" / "full"))
    data = run_autograder(root, "/nonexistent/python")
    assert data["score"] == 0
    assert data["output"].startswith(
        "The autograder failed before it could grade this submission (exit status 127). This is not your grade"
    )


def test_a_grader_that_fails_inside_says_so_in_results_json(archive, roots, tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)  # no torch in it
    root = container(roots, archive, files(FIXTURES / "submissions" / "full"))
    data = run_autograder(root, bare / "bin" / "python")
    assert data["score"] == 0
    assert data["output"] == (
        "The autograder failed while grading this submission (ModuleNotFoundError). This is not your grade: your "
        "instructor has the log and will regrade it."
    )
    assert data["extra_data"] == {"error": "ModuleNotFoundError"}


def test_an_upload_without_a_submission_is_told_what_to_upload(archive, python, roots) -> None:
    root = container(roots, archive, {"notes/readme.txt": b"hello", "__MACOSX/model.py": b""})
    data = run_autograder(root, python)
    assert data["score"] == 0
    assert data["output"] == (
        "Your upload holds none of answers.toml, model.py, mla.py (it holds: __MACOSX/model.py, notes/readme.txt). "
        "Upload the files of your submissions/<your-id>/ folder, or a zip of that folder."
    )


def test_names_ids_and_missing_metadata(tmp_path: Path) -> None:
    assert gradescope.student_id(["Ada Lovelace"]) == "Ada-Lovelace"
    assert gradescope.student_id(["Zoë Ôlafsdóttir", "Bob O'Neil"]) == "Zoe-Olafsdottir_Bob-O-Neil"
    assert gradescope.student_id(["", "---"]) == "submission"
    meta = gradescope.read_metadata(tmp_path / "absent.json")
    assert (meta.names, meta.submission_id, meta.due) == ([], None, None)
    assert meta.problem == "absent.json could not be read (FileNotFoundError)"
    (tmp_path / "m.json").write_text(json.dumps(METADATA | {"users": [{"email": "grace@example.com"}]}))
    assert gradescope.read_metadata(tmp_path / "m.json").names == ["grace"]
    two = tmp_path / "upload"
    for name in ("a", "b"):
        (two / name).mkdir(parents=True)
        (two / name / "model.py").write_text("")
    with pytest.raises(gradescope.UploadError, match=r"several submission folders \(a/, b/\): upload one"):
        gradescope.locate(two)
    kit = tmp_path / "repository"  # the student kit, zipped whole or submitted from GitHub
    for name in ("reference/mla.py", "submissions/_template/model.py", "submissions/ada/model.py", ".git/x/model.py"):
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        (kit / name).write_text("")
    assert gradescope.locate(kit) == kit / "submissions" / "ada"
    (kit / "submissions" / "ada" / "model.py").unlink()
    with pytest.raises(gradescope.UploadError, match=r"upload's submissions/ holds no submission: copy submissions/_t"):
        gradescope.locate(kit)


def test_the_late_policy_takes_gradescope_s_dates_and_submission_time(tmp_path: Path) -> None:
    """The instructor's rule with Gradescope's due date, late due date (no credit after it) and ``created_at``,
    assessed by grader.late itself: two started days late at 10% a day is -20%."""
    meta_path = tmp_path / "submission_metadata.json"
    late = {"due_date": "2025-03-14T23:59:00.000000+00:00", "late_due_date": "2025-03-21T23:59:00.000000+00:00"}
    meta_path.write_text(
        json.dumps(METADATA | {"created_at": "2025-03-16T22:10:00+00:00", "assignment": METADATA["assignment"] | late})
    )
    meta = gradescope.read_metadata(meta_path)
    settings = {"due": "ignored", "grace_minutes": 15, "percent_per_day": 10, "max_percent": 50}
    assert gradescope.late_policy(None, meta, "Ada-Lovelace", tmp_path) == {}
    extra = gradescope.late_policy(settings, meta, "Ada-Lovelace", tmp_path)
    assert set(extra) == {"late_policy", "submitted"}
    when = extra["submitted"]["Ada-Lovelace"]
    assert when.source.startswith("Gradescope submission metadata")
    penalty = extra["late_policy"].assess("Ada-Lovelace", when)
    assert (penalty.status, penalty.percent, penalty.final(100)) == ("late", 20, 80)
    assert (tmp_path / "late-policy.toml").read_text() == textwrap.dedent(
        """\
        grace_minutes = 15
        percent_per_day = 10
        max_percent = 50
        due = 2025-03-14T23:59:00.000000+00:00
        no_credit_after = 2025-03-21T23:59:00.000000+00:00
        """
    )
    after = json.loads(meta_path.read_text()) | {"created_at": "2025-03-22T00:00:00+00:00"}
    meta_path.write_text(json.dumps(after))
    extra = gradescope.late_policy(settings, gradescope.read_metadata(meta_path), "Ada-Lovelace", tmp_path)
    assert extra["late_policy"].assess("Ada-Lovelace", extra["submitted"]["Ada-Lovelace"]).status == "no credit"


def test_a_failure_result_follows_the_schema() -> None:
    jsonschema.validate(gradescope.failure("it broke", "Boom"), SCHEMA)
