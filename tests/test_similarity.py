"""The similarity report (grader.similarity): what it flags, what it does not, and how it treats bad input.

Each class is built in a temporary folder from the repository's submissions: a copy of alice's full-marks
solution disguised as a copier would (every defined name renamed, the functions and classes reordered; see
tests/similarity_corpus.py), a correct solution written independently from the template
(tests/fixtures/similarity/independent/), bob's, and template-only submissions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from similarity_corpus import disguise, make_class, read, write

import grader
from grader.similarity import (
    THRESHOLD,
    flagged_pairs,
    load_report,
    main,
    report,
    summary_markdown,
)
from grader.similarity.settings import NOISE_TOKENS
from grader.similarity.winnowing import fingerprint
from grader.submission import UsageError

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "submissions" / "_template"
ALICE = ROOT / "submissions" / "alice"
BOB = ROOT / "submissions" / "bob"
INDEPENDENT = ROOT / "tests" / "fixtures" / "similarity" / "independent"


@pytest.fixture(autouse=True)
def at_the_root(monkeypatch) -> None:
    """The command's defaults (submissions/, submissions/_template/) are relative to the repository root."""
    monkeypatch.chdir(ROOT)


def copy_of(folder: Path, to: Path) -> Path:
    return write(to, read(folder))


def pair(comparison, a: str, b: str):
    (found,) = [p for p in comparison.pairs if {p.a, p.b} == {a, b}]
    return found


@pytest.fixture
def klass(tmp_path: Path) -> Path:
    """alice, carol (alice disguised), bob and dana (the independent solution) in one folder of submissions."""
    root = tmp_path / "class"
    copy_of(ALICE, root / "alice")
    write(root / "carol", {name: disguise(text) for name, text in read(ALICE).items()})
    copy_of(BOB, root / "bob")
    copy_of(INDEPENDENT, root / "dana")
    return root


def test_the_disguise_renames_and_reorders(klass: Path) -> None:
    """The copy in the next test really is disguised: no helper name of alice's is left, and the order changed."""
    alice, carol = (klass / "alice" / "model.py").read_text(), (klass / "carol" / "model.py").read_text()
    for name in ("q_proj", "rope", "Attention", "gate_proj", "input_layernorm", "theta"):
        assert re.search(rf"\b{name}\b", alice) and not re.search(rf"\b{name}\b", carol), name
    assert alice.index("class RMSNorm") < alice.index("class SimpleKimiK2")
    assert carol.index("class SimpleKimiK2") < carol.index("class RMSNorm")


def test_a_disguised_copy_is_flagged_and_independent_work_is_not(klass: Path, tmp_path: Path) -> None:
    comparison, paths = report([klass], out=tmp_path / "reports", template=TEMPLATE)
    copy = pair(comparison, "alice", "carol")
    assert copy.flagged, copy
    assert min(copy.similarity_a, copy.similarity_b) > 0.9, copy
    assert [(p.a, p.b) for p in comparison.flagged] == [("alice", "carol")], comparison.flagged
    independent = pair(comparison, "alice", "dana")
    assert not independent.flagged and independent.top < THRESHOLD, independent
    data = json.loads(paths["json"].read_text())
    assert data["threshold"] == THRESHOLD and data["flagged"] == 1
    assert {(p["a"], p["b"]) for p in flagged_pairs(data)} == {("alice", "carol")}
    assert len(data["pairs"]) == 6 and all(
        set(p) == {"a", "b", "similarity_a", "similarity_b", "token_overlap", "flagged"} for p in data["pairs"]
    )
    assert "| alice | carol |" in paths["markdown"].read_text()
    assert 'id="pair-1"' in paths["html"].read_text()


def test_a_copy_with_a_fifth_rewritten_is_still_flagged(klass: Path) -> None:
    """The margin of the threshold: carol also rewrites her MLP and takes dana's MLA, and is still flagged."""
    model = (klass / "carol" / "model.py").read_text()
    start, end = model.index("class my_mlp_"), model.index("class my_attention_")
    name = model[start:].split("(", 1)[0].removeprefix("class ")
    rewritten = (
        f"class {name}(nn.Module):\n"
        "    def __init__(self, config):\n"
        "        super().__init__()\n"
        "        self.both = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)\n"
        "        self.back = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)\n\n"
        "    def forward(self, x):\n"
        "        gate, up = self.both(x).chunk(2, dim=-1)\n"
        "        return self.back(nn.functional.silu(gate) * up)\n\n\n"
    )
    (klass / "carol" / "model.py").write_text(model[:start] + rewritten + model[end:])
    shutil.copy(INDEPENDENT / "mla.py", klass / "carol" / "mla.py")
    copy = pair(report([klass], template=TEMPLATE)[0], "alice", "carol")
    assert copy.flagged and copy.top < 0.95, copy


def test_independent_submissions_that_share_only_the_template_are_not_flagged(tmp_path: Path) -> None:
    """dana kept the template's docstrings, Config and SimpleKimiK2, as alice kept most of them."""
    dana = (INDEPENDENT / "model.py").read_text()
    starter = (TEMPLATE / "model.py").read_text()
    shared = starter[starter.index("class SimpleKimiK2") : starter.index('if __name__ == "__main__"')]
    assert shared in dana and starter[: starter.index("class RMSNorm")] in dana
    root = tmp_path / "class"
    copy_of(ALICE, root / "alice")
    copy_of(INDEPENDENT, root / "dana")
    copy_of(BOB, root / "bob")
    comparison, _ = report([root], template=TEMPLATE)
    assert comparison.flagged == [], comparison.flagged
    assert pair(comparison, "alice", "dana").top < THRESHOLD


def test_the_template_is_discounted(tmp_path: Path) -> None:
    """Two submissions that are the template unchanged share nothing once it is discounted, and everything if not."""
    root = tmp_path / "class"
    copy_of(TEMPLATE, root / "erin")
    copy_of(TEMPLATE, root / "finn")
    copy_of(ALICE, root / "alice")
    comparison, _ = report([root], template=TEMPLATE)
    both = pair(comparison, "erin", "finn")
    assert not both.flagged and both.token_overlap == 0 and both.top == 0, both
    assert comparison.tokens["erin"] == 0
    unrelated = write(tmp_path / "unrelated", {"model.py": "import os\n\nprint(os.getcwd())\n"})
    undiscounted = pair(report([root], template=unrelated)[0], "erin", "finn")
    assert undiscounted.flagged and undiscounted.top == 1.0, undiscounted


def test_more_boilerplate_is_discounted_too(klass: Path) -> None:
    """--boilerplate: code a class was given (here alice's own, as if it were a worked skeleton) does not count."""
    comparison, _ = report([klass], template=TEMPLATE, boilerplate=[ALICE / "model.py", ALICE / "mla.py"])
    assert comparison.flagged == [] and pair(comparison, "alice", "carol").token_overlap < 100


def test_a_repeated_line_counts_once_per_occurrence() -> None:
    """Why the boilerplate is subtracted here: copydetect 0.5.0's own subtraction also drops repeats of a line
    the template does not hold (numpy.intersect1d with assume_unique on a list with repeats)."""
    text = "def f(x):\n" + "    y = torch.cat([x.view(2, -1), x.view(-1, 2).t()], dim=0).sum()\n" * 3
    unrelated = fingerprint("import os\nprint(os.getcwd(), os.sep, os.pathsep)\n", NOISE_TOKENS).hashes
    plain = fingerprint(text, NOISE_TOKENS)
    discounted = fingerprint(text, NOISE_TOKENS, frozenset(unrelated))
    assert discounted.token_coverage == plain.token_coverage > 0
    assert sum(map(len, discounted.hash_idx.values())) == sum(map(len, plain.hash_idx.values()))


def test_student_code_is_read_never_run(tmp_path: Path) -> None:
    """A model.py that would write a file and exit when imported: the report runs, and nothing of it happened."""
    trap = tmp_path / "ran"
    hostile = f"import pathlib\npathlib.Path({str(trap)!r}).write_text('ran')\nraise SystemExit(7)\n"
    root = tmp_path / "class"
    write(root / "mallory", {"model.py": hostile + read(ALICE)["model.py"]})
    copy_of(ALICE, root / "alice")
    comparison, _ = report([root], template=TEMPLATE)
    assert not trap.exists() and "model" not in sys.modules
    assert pair(comparison, "alice", "mallory").flagged


class Tags(HTMLParser):
    """Every tag and attribute of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))


def test_the_html_report_is_self_contained_and_escapes_student_code(klass: Path, tmp_path: Path) -> None:
    page = report([klass], out=tmp_path / "plain", template=TEMPLATE)[1]["html"].read_text()
    for outside in ("http:", "https:", "://", "@import", "url(", "<script", "<link", "<img", "<iframe"):
        assert outside not in page, outside
    # A copier whose code holds markup and addresses: it shows as text, and the page still loads nothing.
    hostile = '# </code></pre><script src="https://cdn.example/x.js"></script><img src=//x.example/p.png>\n'
    for name in ("alice", "carol"):
        model = klass / name / "model.py"
        model.write_text(hostile + model.read_text())
    page = report([klass], out=tmp_path / "hostile", template=TEMPLATE)[1]["html"].read_text()
    assert "&lt;script src=&quot;https://cdn.example/x.js&quot;&gt;" in page
    parser = Tags()
    parser.feed(page)
    assert {tag for tag, _ in parser.tags} <= {
        *("html", "head", "meta", "title", "style", "body", "main", "h1", "h2", "h3", "p", "strong", "em"),
        *("table", "tr", "th", "td", "a", "span", "div", "pre", "code", "mark", "ul", "li", "dl", "dt", "dd"),
    }
    links = [value for _, attrs in parser.tags for key, value in attrs if key in ("href", "src")]
    assert links and all(value.startswith("#pair-") for value in links), links


def test_the_json_report_round_trips_to_the_summary(klass: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    report([klass], out=out, template=TEMPLATE)
    data = load_report(out)
    assert summary_markdown(data) == (out / "similarity.md").read_text()
    assert [s["student"] for s in data["submissions"]] == ["alice", "bob", "carol", "dana"]
    assert all(
        s["tokens"] > 0 and s["files"] == ["model.py", "mla.py"] for s in data["submissions"] if s["student"] != "bob"
    )
    (out / "similarity.json").write_text('{"pairs": 3}')
    with pytest.raises(UsageError, match="is not a similarity report"):
        load_report(out)
    with pytest.raises(UsageError, match="does not exist"):
        load_report(tmp_path / "nowhere.json")


def test_the_figures_are_the_same_on_every_run(klass: Path, tmp_path: Path) -> None:
    """copydetect hashes with Python's per-process salted hash(): two processes with different salts agree."""
    runs = []
    for salt in ("1", "2"):
        out = tmp_path / f"run{salt}"
        env = os.environ | {"PYTHONHASHSEED": salt}
        cmd = [sys.executable, "-m", "grader", "similarity", str(klass), "--out", str(out), "--template", str(TEMPLATE)]
        subprocess.run(cmd, check=True, env=env, capture_output=True, cwd=ROOT)
        runs.append(json.loads((out / "similarity.json").read_text())["pairs"])
    assert runs[0] == runs[1]


def test_the_default_compares_submissions_in_the_repository(tmp_path: Path, capsys) -> None:
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Compared 2 submissions (1 pair)" in out and "0 pairs flagged" in out
    assert {(p["a"], p["b"]) for p in load_report(tmp_path)["pairs"]} == {("alice", "bob")}


def run_main(args: list[str], capsys) -> tuple[int, str]:
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda t: write(t / "notes", {"notes.txt": "hello\n"}), "is not a submission folder"),
        (lambda t: t / "nobody", "does not exist"),
        (lambda t: write(t / "class" / "_template", {"model.py": "x = 1\n"}).parent, "holds no submission folder"),
        (lambda t: (t / "empty").mkdir() or t / "empty", "is an empty folder"),
        (lambda t: (t / "model.py").write_text("x\n") and t / "model.py", "is a file"),
    ],
    ids=["not-a-submission", "missing", "only-the-template", "empty-folder", "a-file"],
)
def test_bad_paths_are_usage_errors(make, message: str, tmp_path: Path, capsys) -> None:
    path = make(tmp_path)
    status, err = run_main([str(path), str(ALICE), "--out", str(tmp_path / "out")], capsys)
    assert status == 2 and message in err, err
    assert not (tmp_path / "out").exists()


def test_fewer_than_two_submissions_is_a_usage_error(tmp_path: Path, capsys) -> None:
    status, err = run_main([str(ALICE), "--out", str(tmp_path)], capsys)
    assert status == 2 and "needs at least two submissions with code" in err and "with code: alice." in err
    write(tmp_path / "class" / "gina", {"answers.toml": ""})
    copy_of(ALICE, tmp_path / "class" / "alice")
    status, err = run_main([str(tmp_path / "class"), "--out", str(tmp_path)], capsys)
    assert status == 2 and "gina: nothing to compare: it holds neither model.py nor mla.py" in err, err


def test_the_same_student_twice_is_a_usage_error(tmp_path: Path, capsys) -> None:
    other = copy_of(ALICE, tmp_path / "elsewhere" / "alice")
    status, err = run_main([str(ALICE), str(other), str(BOB)], capsys)
    assert status == 2 and "are the same student id 'alice'" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threshold", "70"], "--threshold 70 is outside (0, 1]"),
        (["--min-overlap", "-1"], "--min-overlap -1 is negative"),
        (["--template", "nowhere"], "the template nowhere/ is not a folder"),
        (["--boilerplate", "nowhere.py"], "boilerplate nowhere.py: nowhere.py is missing"),
    ],
)
def test_bad_options_are_usage_errors(args: list[str], message: str, capsys) -> None:
    status, err = run_main([str(ALICE), str(BOB), *args], capsys)
    assert status == 2 and message in err, err


def test_without_copydetect_the_command_says_how_to_install_it(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "copydetect", None)  # makes `import copydetect` fail as if not installed
    monkeypatch.delitem(sys.modules, "grader.similarity.winnowing")
    status, err = run_main([str(ALICE), str(BOB)], capsys)
    assert status == 3 and "needs copydetect: pip install -e '.[similarity]'" in err, err


def test_out_that_is_a_file_is_a_usage_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "reports").write_text("")
    status, err = run_main([str(ALICE), str(BOB), "--out", str(tmp_path / "reports")], capsys)
    assert status == 2 and "is a file; give a folder" in err


def test_files_that_cannot_be_read_as_given_are_named(tmp_path: Path, capsys) -> None:
    """Not UTF-8: compared, with a note naming the line and byte. A link or a file over the cap: not read."""
    root = tmp_path / "class"
    copy_of(ALICE, root / "alice")
    latin = read(ALICE)["model.py"].replace("# (B, H, T, D)", "# (B, H, T, D) \N{LATIN SMALL LETTER E WITH ACUTE}")
    (root / "hana").mkdir()
    (root / "hana" / "model.py").write_bytes(latin.encode("latin-1"))
    (root / "hana" / "mla.py").symlink_to(ALICE / "mla.py")
    copy_of(BOB, root / "ivan")
    (root / "ivan" / "mla.py").write_text("#" * (256 * 1024 + 1))
    status, err = run_main([str(root), "--out", str(tmp_path / "out"), "--template", str(TEMPLATE)], capsys)
    assert status == 0, err
    line = latin.splitlines().index(next(x for x in latin.splitlines() if "\N{LATIN SMALL LETTER E WITH ACUTE}" in x))
    assert f"hana: model.py is not UTF-8 text (line {line + 1} holds the byte b'\\xe9')" in err, err
    assert "hana: mla.py is a symbolic link; submit the file itself: not compared." in err
    assert "ivan: mla.py is larger than the 262,144 bytes the grader reads: not compared." in err
    data = load_report(tmp_path / "out")
    hana = next(s for s in data["submissions"] if s["student"] == "hana")
    assert hana["files"] == ["model.py"] and len(hana["notices"]) == 2
    assert next(p for p in data["pairs"] if (p["a"], p["b"]) == ("alice", "hana"))["flagged"]
    assert "Note: hana: model.py is not UTF-8" in (tmp_path / "out" / "similarity.md").read_text()


def test_a_class_of_generated_submissions_finds_its_planted_copies(tmp_path: Path) -> None:
    """The benchmark's generator, small: every planted copy is flagged with its original."""
    planted = make_class(tmp_path / "class", size=12, copies=2, seed=5)
    comparison, _ = report([tmp_path / "class"], template=TEMPLATE)
    flagged = {(p.a, p.b) for p in comparison.flagged}
    assert all(tuple(sorted(p)) in flagged for p in planted), (planted, flagged)


def test_the_independent_fixture_is_a_full_marks_solution(tmp_path: Path) -> None:
    """dana's code is a correct solution (so the not-flagged test compares two right answers)."""
    folder = copy_of(INDEPENDENT, tmp_path / "dana")
    shutil.copy(ALICE / "answers.toml", folder / "answers.toml")
    (result,) = grader.grade([folder], seed=11)
    assert result.score == result.max_score, [c for c in result.checks if c.status != "passed"]
