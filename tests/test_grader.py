"""The grader end to end: fixture submissions of every kind graded through the sandbox, with the exact
score and message of each check, the reports (Gradescope results.json against its schema), manual scores
and the command line.

One class (the fixtures, the template and the two examples) is graded once per module with a fixed seed;
messages that quote the grader's random draws are rebuilt here from the same draws.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

import grader
from grader.__main__ import main
from grader.draws import draw, lesson_fields, student_seed
from grader.feedback import config_call, number, shape
from grader.manual import merge
from grader.results import StudentResult
from grader.runs import PROBE_SOURCE, run_specs
from grader.sandbox import Limits, Sandbox
from reference import Config, count_parameters, parameter_breakdown

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
SCHEMA = json.loads((ROOT / "tests" / "fixtures" / "gradescope-results.schema.json").read_text())
SEED = 20251129
KINDS = ["full", "partial", "syntax_error", "import_error", "missing_model", "missing_answers", "malformed_toml"]
KINDS.append("wrong_types")
EXAMPLES = ["_template", "alice", "bob"]
POINTS = {row["number"]: row["points"] for row in grader.points_table()}
MODEL_CHECKS = ["3.3", "4.1", "4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8", "4.9", "4.10", "4.11"]
PAGES = {row["number"]: row["docs"] for row in grader.points_table()}
VISIBLE = {row["number"]: row["visibility"] for row in grader.points_table()}
LATER = sum(POINTS[n] for n, v in VISIBLE.items() if v != "visible")
NUMBER = r"[0-9.e+-]+"


def docs(check: str) -> str:
    return f" See {PAGES[check]} in the lesson docs."


def draws(student: str):
    return draw(student_seed(SEED, student))


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, StudentResult], Path, Path]:
    """Grade the class once, from a directory whose pytest.ini and conftest.py would break any pytest run
    they reached, with PYTEST_ADDOPTS set to stop at the first failure: the scoring must ignore all three."""
    work = tmp_path_factory.mktemp("cwd")
    (work / "pytest.ini").write_text("[pytest]\naddopts = --maxfail=1 -p no:python\n")
    (work / "conftest.py").write_text("raise SystemExit('a conftest.py outside the grader was imported')\n")
    out, summary = work / "reports", work / "step-summary.md"
    summary.write_text("earlier steps\n")
    paths = [FIXTURES / kind for kind in KINDS] + [ROOT / "submissions" / name for name in EXAMPLES]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        mp.setenv("PYTEST_ADDOPTS", "--maxfail=1 -x")
        mp.setenv("GITHUB_STEP_SUMMARY", str(summary))
        results = grader.grade(paths, jobs=2, out=out, seed=SEED)
    return {r.student: r for r in results}, out, summary


def layer_call(d) -> str:
    """How messages name the decoder layer the grader built from draws ``d``."""
    dims = (1, len(d.layer_x[0]), d.layer_config["hidden_size"])
    return f"DecoderLayer({config_call(d.layer_config)}) on hidden states of shape {shape(dims)}"


def scores(result: StudentResult) -> dict[str, tuple[float, str]]:
    return {c.number: (c.score, c.status) for c in result.checks}


def expect(earned: dict[str, float], manual: tuple[str, ...] = ()) -> dict[str, tuple[float, str]]:
    """Every check's (score, status): all points where listed in full, else those given, else 0."""
    table = {}
    for check, points in POINTS.items():
        score = earned.get(check, 0.0)
        status = "manual" if check in manual else ("passed" if score == points else "failed")
        table[check] = (score, status)
    return table


def message(result: StudentResult, check: str) -> str:
    return next(c.message for c in result.checks if c.number == check)


def full(*checks: str) -> dict[str, float]:
    return {c: POINTS[c] for c in checks}


def test_full_marks_in_every_accepted_form(graded) -> None:
    for student in ("full", "alice"):
        result = graded[0][student]
        assert (result.score, result.max_score) == (100, 100)
        assert scores(result) == expect(full(*POINTS))
        assert result.grader_errors == []
        assert all(run.status == "ok" for run in result.runs)
    assert message(graded[0]["full"], "2.1") == (
        "math.causal_mask: right (boolean keep-mask: 1 where a query may attend)."
    )


def test_the_template_runs_and_earns_partial_credit(graded) -> None:
    result = graded[0]["_template"]
    assert result.score == 14
    assert scores(result) == expect(full("4.1", "4.2", "4.3", "5.1"))
    d = draws("_template")
    b = parameter_breakdown(Config.lesson())
    own = b["embedding"] + b["lm_head"] + Config.lesson().hidden_size  # embedding, head, final norm only
    assert message(result, "1.1") == 'quiz.q1 has no answer yet: write "a", "b" or "c".' + docs("1.1")
    assert message(result, "3.1") == (
        f"params.lesson_total = 0, but your SimpleKimiK2({config_call(lesson_fields())}) has {number(own)} "
        "parameters (sum(p.numel() for p in model.parameters()), counted on the meta device)." + docs("3.1")
    )
    (base,), (changed,) = d.context
    assert message(result, "4.4") == (
        "Your model does not yet look at other positions (its logits at position t depend only on token t: "
        f"changing token 0 of {base} changed no later position), so causality cannot be shown; implement "
        "attention, then this check changes later tokens and verifies that earlier positions do not see them."
        + docs("4.4")
    )
    assert message(result, "4.5") == (
        f"Tokens {base} and {changed} differ only at position 0, yet the logits at later positions "
        f"{list(range(1, len(base)))} did not change (max difference 0): those positions do not look at earlier "
        "tokens. Attention is still a stub, or its output never reaches the residual stream." + docs("4.5")
    )
    rms = f"RMSNorm({d.rms_dim}) on an input of shape {shape((2, 3, d.rms_dim))}"
    assert re.fullmatch(
        re.escape(f"{rms} (scale set to random values) differs from x / sqrt(mean(x**2) + eps) * g by up to ")
        + NUMBER
        + re.escape(". It is still the starter stub x * scale: divide by the root mean square first." + docs("4.6")),
        message(result, "4.6"),
    )
    layer = layer_call(d)
    assert message(result, "4.7") == (
        f"{layer} returned its input unchanged: the residual stream is there, but attention and the MLP add "
        "nothing. Replace the stubs with real sublayers." + docs("4.7")
    )
    assert message(result, "4.8") == (
        f"{layer} called 0 normalisation module(s) (modules whose class name contains 'Norm': none found); a "
        "pre-norm layer calls one before attention and one before the MLP: h = x + attn(norm1(x)), out = h + "
        "mlp(norm2(h))." + docs("4.8")
    )
    m = d.mla
    full_kv = 2 * m["num_heads"] * m["head_dim"]
    assert message(result, "5.2") == (
        f"MultiHeadLatentAttention(hidden_size={m['hidden_size']}, num_heads={m['num_heads']}, "
        f"head_dim={m['head_dim']}, kv_lora_rank={m['kv_lora_rank']}) on x of shape "
        f"{shape((1, len(m['x'][0]), m['hidden_size']))} caches {full_kv} numbers per token; full multi-head K/V "
        f"would be {full_kv} (2 x {m['num_heads']} heads x {m['head_dim']}). The point of MLA is to cache only "
        f"the kv_lora_rank = {m['kv_lora_rank']} latent (plus a small shared RoPE key) and rebuild K and V from "
        "it." + docs("5.2")
    )
    p, (base,) = d.position, d.position["ids"][0]
    i, changed = p["swap"][0], p["ids"][2][0]
    assert message(result, "4.9") == (
        f"In SimpleKimiK2({config_call(p['config'])}) with random weights, changing the token at position {i} of "
        f"{base} ({base[i]} to {changed[i]}) left the logits at the last position unchanged: the last position "
        "does not look at earlier tokens yet (see 4.5), so whether attention knows their order cannot be tested. "
        "Implement attention first." + docs("4.9")
    )
    assert message(result, "4.10") == (
        f"One backward pass through SimpleKimiK2({config_call(d.gradients['config'])}) with random weights: its "
        "DecoderLayer modules hold no parameters yet (the model has only embed_tokens.weight, norm.scale, "
        "lm_head.weight), so training could not reach attention or the MLP. Build the norms, attention and MLP "
        "inside DecoderLayer." + docs("4.10")
    )
    r = d.reference["config"]
    lesson = Config.lesson().with_(**r)
    own = r["vocab_size"] * r["hidden_size"] * 2 + r["hidden_size"]
    assert message(result, "4.11").startswith(
        f"SimpleKimiK2({config_call(r)}) has {number(own)} parameters, the lesson architecture "
        f"{number(count_parameters(lesson))} ({own - count_parameters(lesson):+,}; see 3.3), so the reference's "
        "weights cannot be loaded into it and its logits cannot be compared. Expected (the reference's names, which "
        f"the template uses; the other layers alike): embed_tokens.weight ({r['vocab_size']}, {r['hidden_size']}), "
        f"layers.0.input_layernorm.weight ({r['hidden_size']},), layers.0.self_attn.q_proj.weight"
    )
    assert message(result, "4.11").endswith(
        f"lm_head.weight ({r['vocab_size']}, {r['hidden_size']}). Found: embed_tokens.weight ({r['vocab_size']}, "
        f"{r['hidden_size']}), norm.scale ({r['hidden_size']},), lm_head.weight ({r['vocab_size']}, "
        f"{r['hidden_size']})." + docs("4.11")
    )
    assert message(result, "5.3") == (
        f"MultiHeadLatentAttention(hidden_size={m['hidden_size']}, num_heads={m['num_heads']}, "
        f"head_dim={m['head_dim']}, kv_lora_rank={m['kv_lora_rank']}) on x of shape "
        f"{shape((1, len(m['x'][0]), m['hidden_size']))}, with random weights: changing the input left the output "
        "unchanged, so it does not depend on the input (zeros?). Compute attention: queries from x, keys and values "
        "rebuilt from the latent." + docs("5.3")
    )


def order_unseen(student: str) -> str:
    """The pattern of 4.9's message for a model whose attention does not see the order of tokens."""
    p = draws(student).position
    (base,), (swapped,) = p["ids"][:2]
    i, j = p["swap"]
    return (
        re.escape(
            f"In SimpleKimiK2({config_call(p['config'])}) with random weights, swapping the tokens at positions {i} "
            f"and {j} ({base} and {swapped}) left the logits at the last position unchanged (largest difference "
        )
        + NUMBER
        + re.escape(
            "), though changing one of them changes them: attention sees the earlier tokens as a set, without their "
            "order. In one causal layer only positional information can tell the two apart: rotate q and k by RoPE "
            "(their positions' angles) before the scores." + docs("4.9")
        )
    )


def test_typical_mistakes_are_each_named(graded) -> None:
    result = graded[0]["bob"]
    assert result.score == 46
    assert scores(result) == expect(
        {**full("1.1", "1.2", "2.1", "3.1", "4.1", "4.2", "4.3", "4.5", "4.7", "4.10"), "1.3": 4.0}
    )
    d = draws("bob")
    lesson = Config.lesson()
    tied = count_parameters(lesson.with_(tie_word_embeddings=True))
    assert message(result, "3.2") == (
        f"params.lesson_total = {number(tied)}; the lesson architecture (GQA attention (q, k, v, o projections, "
        "K/V with num_kv_heads heads), a SwiGLU MLP (gate, up, down), two RMSNorms per layer and a final one, an "
        f"untied LM head, no biases) with {config_call(lesson_fields())} has {number(count_parameters(lesson))} "
        f"parameters ({tied - count_parameters(lesson):+,} off). It equals the count with tied embeddings (lm_head "
        "sharing the embedding matrix)." + docs("3.2")
    )
    (base,), (changed,) = d.causal
    assert re.fullmatch(
        re.escape(
            f"Tokens {base} and {changed} differ only from position {d.causal_split} on, yet the logits at "
            f"earlier positions {list(range(d.causal_split))} changed (by up to "
        )
        + NUMBER
        + re.escape(
            "): position t sees tokens after t. Add the causal mask (-inf above the diagonal) to the attention "
            "scores before the softmax." + docs("4.4")
        ),
        message(result, "4.4"),
    )
    assert message(result, "4.6").endswith(
        "It subtracts the mean (that is LayerNorm): RMSNorm only divides by the root mean square, "
        "x / sqrt(mean(x**2) + eps) * g." + docs("4.6")
    )
    assert message(result, "4.7") == (
        "model.residual: the residual connections are there (around post-norm sublayers; see 4.8)."
    )
    layer = layer_call(d)
    assert message(result, "4.8") == (
        f"In {layer}, the first norm (norm1) did not receive the layer's input: the layer normalises after the "
        "sublayer (post-norm, norm(x + attn(x))). Pre-norm applies the norm first: x + attn(norm1(x))." + docs("4.8")
    )
    assert message(result, "5.1") == (
        "mla.py is not in your submission (it is optional): the advanced task's code stub earns these points."
        + docs("5.1")
    )
    assert re.fullmatch(order_unseen("bob"), message(result, "4.9"))
    r = d.reference["config"]
    untied = count_parameters(Config.lesson().with_(**r))
    tied = untied - r["vocab_size"] * r["hidden_size"]
    assert message(result, "4.11").startswith(
        f"SimpleKimiK2({config_call(r)}) has {number(tied)} parameters, the lesson architecture {number(untied)} "
        f"({tied - untied:+,}; see 3.3), so the reference's weights cannot be loaded into it"
    )
    assert f"Found: embed.weight ({r['vocab_size']}, {r['hidden_size']}), layers.0.attn.wq.weight" in message(
        result, "4.11"
    )


def test_partial_work_earns_partial_credit_and_an_unsure_rubric_waits_for_a_person(graded) -> None:
    result = graded[0]["partial"]
    assert result.score == 32
    assert scores(result) == expect(full("4.2", "4.3", "4.4", "4.5", "4.6", "4.7", "4.8"), manual=("1.3",))
    pending = [item for item in result.manual_review if item.check]
    assert [(i.key, i.check, i.max_score, i.score) for i in pending] == [("quiz.q3", "1.3", 6, None)]
    assert message(result, "2.1").startswith("math.causal_mask [[0, 0, 0, 0], [-inf, 0, 0, 0],")
    assert "is transposed: row i is query i" in message(result, "2.1")
    d = draws("partial")
    wrong = []
    for fields in d.contract_configs:
        wrong.append(
            re.escape(f"SimpleKimiK2({config_call(fields)}) has ")
            + "[0-9,]+"
            + re.escape(f" parameters, expected {number(count_parameters(Config.lesson().with_(**fields)))} (")
            + "[-+][0-9,]+"
            + re.escape(").")
        )
    assert re.fullmatch(" ".join(wrong) + re.escape(" The lesson architecture: ") + ".*", message(result, "3.3"))
    assert message(result, "4.1") == (
        f"Config().intermediate_size is 14336, expected {Config.lesson().intermediate_size}. The lesson config is "
        f"{config_call(lesson_fields())}." + docs("4.1")
    )
    written = {item.key: (item.score, item.comment) for item in result.manual_review if not item.check}
    assert written["theory.rmsnorm"] == (0.0, "No answer was submitted.")
    assert written["theory.gqa"] == (0.0, "No answer was submitted.")
    assert written["diagram"] == (0.0, "No diagram file (diagram.png, .svg, .md or .txt) was submitted.")
    assert written["theory.components"] == (None, "")


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("syntax_error", "model.py could not be imported: SyntaxError: expected ':' (model.py, line 7)."),
        (
            "import_error",
            "model.py could not be imported: ModuleNotFoundError: No module named 'reference' (model.py, line 1, "
            "in <module>). The grader runs model.py with only PyTorch, the standard library and your "
            "model.py/mla.py.",
        ),
        (
            "missing_answers",
            "model.py could not be imported: SystemExit: model.py: this fixture only has to exist (model.py, "
            "line 1, in <module>).",
        ),
        (
            "missing_model",
            "model.py is missing from submissions/missing_model/: this check needs it (start from "
            "submissions/_template/model.py).",
        ),
    ],
)
def test_code_that_cannot_be_imported_costs_only_the_model_checks(graded, kind: str, error: str) -> None:
    """The first check that meets an import error shows it in full; the others name it and refer there."""
    result = graded[0][kind]
    checks = MODEL_CHECKS if kind in ("missing_answers", "missing_model") else ["3.1", *MODEL_CHECKS]
    first, *later = checks
    assert message(result, first) == error + docs(first)
    for check in later:
        if kind == "missing_model":
            assert message(result, check) == error + docs(check)
        else:
            kind_of = error.split(": ", 1)[1].split(":", 1)[0]
            refer = f"model.py could not be imported ({kind_of}; the error is shown in {first})."
            assert message(result, check) == refer + docs(check)
    if kind in ("syntax_error", "import_error"):
        assert result.score == 24
        assert scores(result) == expect(full("1.1", "1.2", "1.3", "2.1", "3.2"))


def test_missing_or_malformed_answers_cost_only_the_answer_checks(graded) -> None:
    results = graded[0]
    assert results["missing_model"].score == 10
    assert scores(results["missing_model"]) == expect({**full("1.1", "1.2"), "1.3": 2.0})
    assert message(results["missing_model"], "2.1") == (
        "answers.toml has no [math] table; add it with its keys as in submissions/_template/answers.toml." + docs("2.1")
    )
    missing = (
        "answers.toml is missing from submissions/missing_answers/: copy submissions/_template/answers.toml and "
        "fill it in."
    )
    malformed = (
        "answers.toml is not valid TOML: Invalid value (at line 2, column 6), in the line `q1 = b`. Compare it with "
        'submissions/_template/answers.toml; strings need quotes, e.g. q1 = "b".'
    )
    for kind, text in (("missing_answers", missing), ("malformed_toml", malformed)):
        assert results[kind].score == 0
        for check in ("1.1", "1.2", "1.3", "2.1", "3.1", "3.2"):
            assert message(results[kind], check) == text + docs(check)
    written = {item.key: item.comment for item in results["malformed_toml"].manual_review}
    assert written["theory.rope"] == "Not scored: answers.toml is not valid TOML; fix it and grade again."


def test_wrong_types_are_named_with_what_was_expected(graded) -> None:
    result = graded[0]["wrong_types"]
    assert result.score == 0
    expected = {
        "1.1": 'quiz.q1 should be a letter in quotes, e.g. q1 = "a"; found an integer.',
        "1.2": 'quiz.q2 should be true or false (no quotes needed); found "maybe".',
        "1.3": 'quiz.q3 should be a sentence in quotes, q3 = "..."; found an integer.',
        "2.1": "math.causal_mask should be an array of 4 rows; found a string.",
        "3.1": 'params.lesson_total should be a whole number; found "about six billion".',
        "4.1": "Config().vocab_size is '102400' (a str), expected the int 102400; Config().hidden_size is 4096.0 "
        "(a float), expected the int 4096; Config() has no field intermediate_size (expected 11,008). The lesson "
        f"config is {config_call(lesson_fields())}.",
        "4.2": f"SimpleKimiK2({config_call(draws('wrong_types').forward_config)})(torch.tensor([[1, 2, 3]])) failed: "
        "TypeError: SimpleKimiK2.forward returned dict, expected a torch.Tensor.",
        "4.6": f"RMSNorm({draws('wrong_types').rms_dim}) has no learnable scale of shape "
        f"({draws('wrong_types').rms_dim},): its parameters are none. Give it nn.Parameter(torch.ones(dim)).",
    }
    for check, text in expected.items():
        assert message(result, check) == text + docs(check)
    written = {item.key: item.comment for item in result.manual_review}
    assert written["theory.components"] == "theory.components should be text in quotes; found an integer."


def test_every_report_is_written_and_results_json_follows_gradescopes_schema(graded) -> None:
    results, out, summary = graded
    students = KINDS + EXAMPLES
    for student in students:
        data = json.loads((out / student / "results.json").read_text())
        jsonschema.validate(data, SCHEMA)
        assert data["score"] == results[student].total
        assert len(data["tests"]) == len(POINTS) + 8
        feedback = (out / student / "feedback.md").read_text()
        later = [c for c in results[student].checks if VISIBLE[c.number] != "visible"]  # the quiz: after the due date
        shown = results[student].score - sum(c.score for c in later)
        assert feedback.startswith(
            f"# Feedback for {student}\n\n**Automatic checks: {shown:g} / {100 - LATER:g} shown now "
            f"({LATER:g} more points later)**"
        )
    with (out / "gradebook.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(students) * (len(POINTS) + 8)
    assert {r["status"] for r in rows} == {"passed", "failed", "manual", "pending", "reviewed"}
    assert {r["score"] for r in rows if r["status"] == "pending"} == {""}
    assert all(r["score"] for r in rows if r["status"] != "pending")
    with (out / "scores.csv").open() as handle:
        table = {row["student"]: row for row in csv.DictReader(handle)}
    assert table["bob"] == {
        "student": "bob",
        "auto_score": "46",
        "auto_max": "100",
        "written_score": "0",
        "written_max": "40",
        "pending": "5",
        "total": "46",
        "seed": str(SEED),
        "graded_at": table["bob"]["graded_at"],
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", table["bob"]["graded_at"])
    book = json.loads((out / "gradebook.json").read_text())
    assert (book["seed"], [s["student"] for s in book["students"]]) == (SEED, sorted(students))  # by student id
    suites = {s.get("name"): s for s in ET.parse(out / "junit.xml").getroot().findall("testsuite")}
    assert list(suites) == sorted(students)
    assert [(int(suites[s].get("failures")), int(suites[s].get("skipped"))) for s in ("full", "partial")] == [
        (0, 0),
        (13, 1),
    ]
    text = summary.read_text()
    assert text.startswith("earlier steps\n## Grading summary\n")
    assert "| bob | 46 / 100 | 0 / 40 | 5 | 1.3, 3.2, 3.3, 4.4, 4.6, 4.8, 4.9, 4.11, 5.1, 5.2, 5.3 |" in text
    assert "quiz.q3 (6 points)" in (out / "manual-review.md").read_text()
    assert (
        '# "theory.components" = { score = 0, comment = "" }  # out of 5' in (out / "manual-template.toml").read_text()
    )


def test_manual_scores_settle_pending_checks_and_the_written_work(graded, tmp_path: Path) -> None:
    result = copy.deepcopy(graded[0]["partial"])
    manual = tmp_path / "manual.toml"
    manual.write_text('[partial]\n"quiz.q3" = { score = 4, comment = "Vague." }\n"theory.components" = 3\n')
    merge(result, grader.manual.load_scores(manual)["partial"], manual)
    q3 = next(c for c in result.checks if c.number == "1.3")
    assert (q3.score, q3.status) == (4, "failed")
    assert q3.message.endswith(docs("1.3") + " Scored by your instructor: 4/6. Vague.")
    assert (result.score, result.written_score, result.total) == (36, 3, 39)
    manual.write_text('[partial]\n"theory.components" = 6\n')
    with pytest.raises(grader.UsageError, match=r"\[partial\] theory.components is worth 5 points"):
        merge(copy.deepcopy(graded[0]["partial"]), grader.manual.load_scores(manual)["partial"], manual)
    manual.write_text('[partial]\n"theory.colour" = 1\n')
    with pytest.raises(grader.UsageError, match=r"'theory.colour' is not an item or check; use one of "):
        merge(copy.deepcopy(graded[0]["partial"]), grader.manual.load_scores(manual)["partial"], manual)
    manual.write_text('[partial]\n"theory.ropee" = 1\n')  # a typo is named with the key it most resembles
    with pytest.raises(
        grader.UsageError, match=r"'theory.ropee' is not an item or check; did you mean \"theory.rope\"\? "
    ):
        grader.manual.load_scores(manual)


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["nowhere"], "grader: error: nowhere does not exist.\n"),
        (["alice"], "grader: error: alice does not exist; did you mean submissions/alice?\n"),
        (
            ["submissions"],
            "grader: error: submissions is the folder of all submissions: run without paths to grade them all, "
            "or give submissions/<id>.\n",
        ),
        (
            ["--fail-under", "150", "submissions/alice"],
            "grader: error: --fail-under 150 is outside 0..100: the automatic score is out of 100.\n",
        ),
        (
            ["--fail-under", "-1", "submissions/alice"],
            "grader: error: --fail-under -1 is outside 0..100: the automatic score is out of 100.\n",
        ),
        (["--jobs", "0", "submissions/alice"], "grader: error: --jobs must be at least 1, got 0.\n"),
        (
            ["submissions/alice", str(ROOT / "submissions" / "alice")],
            f"grader: error: {ROOT / 'submissions' / 'alice'} and submissions/alice are the same student id "
            "'alice'; give each once.\n",
        ),
        (["--manual", "no-such.toml", "submissions/alice"], "grader: error: --manual no-such.toml: no such file.\n"),
        (
            ["--out", "README.md", "submissions/alice"],
            "grader: error: --out README.md is a file; give a folder for the reports.\n",
        ),
    ],
)
def test_usage_errors_exit_2_with_a_message(args: list[str], error: str, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    assert main(args) == 2
    assert capsys.readouterr().err == error


@pytest.mark.parametrize(
    ("scores", "error"),
    [
        ('"theory.colour" = 1', "'theory.colour' is not an item or check; use one of "),
        ('"theory.rope" = 6', "theory.rope is worth 5 points, not 6."),
        ('"quiz.q3" = 7', "quiz.q3 is worth 6 points, not 7."),
    ],
)
def test_a_bad_manual_scores_file_is_a_usage_error_before_grading_starts(
    scores: str, error: str, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(ROOT)
    manual = tmp_path / "manual.toml"
    manual.write_text(f"[someone]\n{scores}\n")
    assert main(["--manual", str(manual), "submissions/alice"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"grader: error: {manual}: [someone] {error}")


def test_the_command_line_grades_one_submission_in_detail_and_gates_on_fail_under(graded, tmp_path, capsys) -> None:
    out = tmp_path / "reports"
    code = main([str(ROOT / "submissions" / "bob"), "--jobs", "1", "--seed", str(SEED), "--out", str(out),
                 "--fail-under", "60", "--publish"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == "grader: 1 submission(s) under --fail-under 60: bob (46)\n"
    assert "  4.4  model.causal                          0 / 6   failed\n" in captured.out
    assert "  Automatic checks: 46 / 100\n" in captured.out
    alone = json.loads((out / "gradebook.json").read_text())["students"][0]["checks"]
    assert alone == [vars(c) for c in graded[0]["bob"].checks]  # one worker or two, alone or in a class


def test_without_paths_the_command_line_grades_every_submission_but_the_template(tmp_path, capsys, monkeypatch):
    classroom = tmp_path / "course"
    (classroom / "submissions" / "_template").mkdir(parents=True)
    (classroom / "submissions" / "README.md").write_text("")
    (classroom / "submissions" / "solo").mkdir()
    (classroom / "submissions" / "solo" / "answers.toml").write_text('[quiz]\nq1 = "b"\n')
    (classroom / "reports").mkdir()
    (classroom / "reports" / "manual.toml").write_text('[solo]\n"theory.rope" = 2\n[ghost]\n"theory.rope" = 1\n')
    monkeypatch.chdir(classroom)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["--seed", "1"]) == 0
    assert json.loads((classroom / "reports" / "solo" / "results.json").read_text())["score"] == 4 + 2
    captured = capsys.readouterr()
    assert "Grading 1 submission(s)" in captured.out
    assert "(manual scores merged from reports/manual.toml)" in captured.out
    assert captured.err == "note: reports/manual.toml also scores ghost, not graded in this run.\n"
    assert sorted(os.listdir(classroom / "reports")) == [
        ".gradebook.lock",  # held while the reports are exported
        "gradebook.csv",
        "gradebook.json",
        "gradebook.sqlite",  # the record of truth, its write-ahead log folded in: no -wal, no -shm left
        "junit.xml",
        "manual-review.md",
        "manual-template.toml",
        "manual.toml",
        "scores.csv",
        "solo",
        "summary.md",
    ]


def test_one_bad_folder_in_the_class_is_named_and_skipped_not_fatal(tmp_path, capsys, monkeypatch):
    submissions = tmp_path / "course" / "submissions"
    (submissions / "solo").mkdir(parents=True)
    (submissions / "solo" / "answers.toml").write_text('[quiz]\nq1 = "b"\n')
    (submissions / "evil").symlink_to("/etc")
    (submissions / "bad name").mkdir()
    (submissions / "bad name" / "answers.toml").write_text("")
    (submissions / "notes").mkdir()
    monkeypatch.chdir(submissions.parent)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert main(["--seed", "1", "--jobs", "1"]) == 0
    assert json.loads((submissions.parent / "reports" / "solo" / "results.json").read_text())["score"] == 4
    err = capsys.readouterr().err.splitlines()
    assert err == [
        "grader: skipped submissions/bad name: 'bad name' is not a valid student id (letters, digits, '-' and '_' "
        "only); rename the folder.",
        "grader: skipped submissions/evil is a symbolic link; give the submission folder itself.",
        "grader: skipped submissions/notes is not a submission folder: it holds none of answers.toml, model.py, "
        "mla.py (see submissions/README.md).",
        "grader: 3 folder(s) in submissions/ were not graded (see above).",
    ]


def test_memory_exhausted_at_import_reports_the_memory_limit_not_an_import_error() -> None:
    """The probe's import guard lets a MemoryError through, so the sandbox's verdict names the limit."""
    bomb = {"model.py": (ROOT / "tests" / "fixtures" / "hostile" / "memory_bomb" / "model.py").read_bytes()}
    limits = Limits(memory_bytes=256 * 2**20)
    config = next(spec for spec in run_specs(draw(0)) if spec.name == "config")
    with Sandbox(jobs=1, limits=limits) as box:
        out = box.run(bomb, PROBE_SOURCE, config.call, config.kwargs)
    assert out.status == "memory-limit"
    assert out.message.startswith("stopped at the memory limit of 256 MiB: the code allocates far too much")


def test_grading_a_subset_merges_into_the_gradebook_already_in_out(graded, tmp_path, capsys, monkeypatch) -> None:
    out = graded[1]
    monkeypatch.chdir(ROOT)
    mine = tmp_path / "reports"
    mine.mkdir()
    (mine / "gradebook.json").write_text((out / "gradebook.json").read_text())
    assert main(["submissions/bob", "--jobs", "1", "--seed", "7", "--out", str(mine)]) == 0
    others = [s for s in KINDS + EXAMPLES if s != "bob"]
    assert f"kept {len(others)} student(s) from the earlier gradebook in {mine}/ ({', '.join(sorted(others))}); " \
        "--fresh starts a new one.\n" in capsys.readouterr().out  # fmt: skip
    book = json.loads((mine / "gradebook.json").read_text())
    assert [s["student"] for s in book["students"]] == sorted(KINDS + EXAMPLES)
    seeds = {s["student"]: s["run_seed"] for s in book["students"]}
    assert seeds == {**{s: SEED for s in others}, "bob": 7}
    earlier = {s["student"]: s for s in json.loads((out / "gradebook.json").read_text())["students"]}
    assert all(s == earlier[s["student"]] for s in book["students"] if s["student"] != "bob")
    with (mine / "scores.csv").open() as handle:
        assert [row["student"] for row in csv.DictReader(handle)] == sorted(KINDS + EXAMPLES)
    assert f"{len(KINDS + EXAMPLES)} submission(s) graded; seed 7;" in (mine / "summary.md").read_text()
    assert sorted(p.name for p in mine.iterdir() if p.is_dir()) == ["bob"]  # feedback only for who was graded
    assert main(["submissions/bob", "--jobs", "1", "--seed", "7", "--out", str(mine), "--fresh"]) == 0
    assert "kept" not in capsys.readouterr().out
    assert [s["student"] for s in json.loads((mine / "gradebook.json").read_text())["students"]] == ["bob"]


def test_an_unreadable_earlier_gradebook_is_a_usage_error_before_grading(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    (tmp_path / "gradebook.json").write_text("{not json")
    assert main(["submissions/bob", "--out", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"grader: error: {tmp_path / 'gradebook.json'} cannot be read as an earlier ")
    assert captured.err.endswith("pass --fresh to start a new gradebook there, or choose another --out.\n")
