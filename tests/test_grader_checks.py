"""The grader's checks on answers alone, its validation of observations, and reading submissions.

These call the check functions directly with an ``Evidence`` that has answers but no runs, so every
accepted or rejected form of an answer is pinned down without starting a sandbox.
"""

from __future__ import annotations

import codecs
import json
import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import grader
from grader.__main__ import show_detail
from grader.checks.check_mask import check_causal_mask
from grader.checks.check_model import check_causal, check_uses_context
from grader.checks.check_params import check_lesson_total_reference
from grader.checks.check_quiz import check_q1, check_q2, check_q3
from grader.draws import draw, reference_weights, student_seed
from grader.evidence import Evidence
from grader.experiments import RunResult, Unobserved
from grader.feedback import shape
from grader.names import unknown_names
from grader.observations import Int, ListOf, ObservationError, Observed, Record, TensorSpec
from grader.reports.files import feedback_md
from grader.rubrics import Q3_RUBRIC
from grader.runs import run_specs
from grader.sandbox import Limits
from grader.sandbox.verdict import judge
from grader.scoring import CheckSpec, ManualReview, Partial, ScoringPlugin, with_docs
from grader.submission import (
    ANSWERS_MAX_DEPTH,
    Submission,
    UsageError,
    check_folder,
    discover,
    parse_answers,
    read_capped,
    read_submission,
)
from grader.written import written_items
from reference import Config, causal_mask, count_parameters

NEG = -math.inf
ADDITIVE = causal_mask(4, kind="additive").tolist()
KEEP = causal_mask(4, kind="bool").int().tolist()


def evidence(**sections: dict) -> Evidence:
    """A submission with these answers.toml tables and no runs."""
    return Evidence(Submission("learner", Path("learner"), dict(sections), None), draw(0), {})


def mask_sub(rows: object) -> Evidence:
    return evidence(math={"causal_mask": rows})


@pytest.mark.parametrize(
    "rows",
    [
        ADDITIVE,
        [["-inf" if x == NEG else 0 for x in row] for row in ADDITIVE],
        [[" −INF " if x == NEG else "0" for x in row] for row in ADDITIVE],
        [[NEG if x == NEG else 1 for x in row] for row in ADDITIVE],  # the sheet's 1s and -inf
        [[NEG if x == NEG else i for x in row] for i, row in enumerate(ADDITIVE)],  # any constant per row
        KEEP,
        [[bool(x) for x in row] for row in KEEP],
        [[1 - x for x in row] for row in KEEP],  # PyTorch's convention: True marks what is masked
    ],
    ids=["additive", "strings", "unicode-minus", "sheet-ones", "row-constants", "keep", "bool", "masked-true"],
)
def test_every_faithful_mask_convention_earns_full_marks(rows: object) -> None:
    assert check_causal_mask(mask_sub(rows)).startswith("math.causal_mask: right")


def test_a_mask_with_the_diagonal_masked_earns_half() -> None:
    rows = [[0 if j < i else "-inf" for j in range(4)] for i in range(4)]
    with pytest.raises(Partial) as caught:
        check_causal_mask(mask_sub(rows))
    assert caught.value.points == 3
    assert caught.value.message == (
        "math.causal_mask [[-inf, -inf, -inf, -inf], [0, -inf, -inf, -inf], [0, 0, -inf, -inf], [0, 0, 0, -inf]] "
        'masks the diagonal too. Each token attends to itself: the sheet\'s "1s below the diagonal" means on and '
        "below. With the diagonal masked, row 0 masks everything and its softmax is NaN. Expected "
        "[[0, -inf, -inf, -inf], [0, 0, -inf, -inf], [0, 0, 0, -inf], [0, 0, 0, 0]] (or 1 on and below the "
        "diagonal as a boolean keep-mask)."
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("lower", "math.causal_mask should be an array of 4 rows; found a string."),
        ([], "math.causal_mask is empty: write the 4x4 mask as 4 rows of 4 entries."),
        ([[0, 0]] * 4, "math.causal_mask row 0 should be an array of 4 entries; found [0, 0]."),
        ([[0] * 4] * 3, "math.causal_mask should have 4 rows (a sequence of length 4); found 3."),
        ([[0, "x", 0, 0]] + [[0] * 4] * 3, 'math.causal_mask[0][1] = "x" is neither a number nor "-inf".'),
        ([[math.nan] * 4] * 4, 'math.causal_mask[0][0] = nan is neither a number nor "-inf".'),
        (
            [[0] * 4] * 4,
            "math.causal_mask [[0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]] is not a causal mask. "
            "Expected [[0, -inf, -inf, -inf], [0, 0, -inf, -inf], [0, 0, 0, -inf], [0, 0, 0, 0]]: 0 where query i "
            "may attend to key j (j <= i), -inf above the diagonal; or as booleans, 1 on and below the diagonal "
            "and 0 above.",
        ),
    ],
)
def test_a_wrong_mask_fails_saying_what_is_wrong(rows: object, message: str) -> None:
    with pytest.raises(AssertionError) as caught:
        check_causal_mask(mask_sub(rows))
    assert str(caught.value) == message


@pytest.mark.parametrize("answer", ["b", "B", " (b) ", "b)", "b. ", "b) Decoder layers", "Decoder layers"])
def test_q1_accepts_the_letter_or_the_option_in_any_case(answer: str) -> None:
    assert check_q1(evidence(quiz={"q1": answer})) == "quiz.q1: right, the decoder layers come after the embeddings."


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            "c",
            "quiz.q1: you chose c) final norm. After the embeddings come the decoder layers (b); the final norm "
            "and then the LM head come after the last layer.",
        ),
        (
            "LM head",
            "quiz.q1: you chose a) LM head. After the embeddings come the decoder layers (b); the final norm "
            "and then the LM head come after the last layer.",
        ),
        ("d", 'quiz.q1 = "d" is not one of "a", "b", "c".'),
        ("", 'quiz.q1 has no answer yet: write "a", "b" or "c".'),
        (2, 'quiz.q1 should be a letter in quotes, e.g. q1 = "a"; found an integer.'),
    ],
)
def test_q1_wrong_answers(answer: object, message: str) -> None:
    with pytest.raises(AssertionError) as caught:
        check_q1(evidence(quiz={"q1": answer}))
    assert str(caught.value) == message


@pytest.mark.parametrize("answer", [False, "false", "False.", " no ", "F"])
def test_q2_accepts_false_as_boolean_or_word(answer: object) -> None:
    assert check_q2(evidence(quiz={"q2": answer})).startswith("quiz.q2: right")


def test_q2_true_is_wrong_with_kimi_k2s_numbers() -> None:
    kimi = Config.kimi_k2()
    with pytest.raises(AssertionError) as caught:
        check_q2(evidence(quiz={"q2": "yes"}))
    assert str(caught.value) == (
        f"quiz.q2: MoE does not activate every expert. Each token goes to its top {kimi.num_experts_per_tok} of "
        f"{kimi.n_routed_experts} routed experts in Kimi-K2, plus the always-on shared expert; that is why only a "
        "fraction of the parameters run per token. The answer is false."
    )


def test_q3_with_every_idea_passes() -> None:
    answer = "Dot products have variance d_k; dividing by sqrt(d_k) keeps it near 1 so softmax does not saturate."
    assert check_q3(evidence(quiz={"q3": answer})).startswith("quiz.q3: all three ideas")


def test_q3_with_some_ideas_earns_their_points() -> None:
    with pytest.raises(Partial) as caught:
        check_q3(evidence(quiz={"q3": "Dividing by sqrt(d_k) keeps the scores from getting too large."}))
    assert caught.value.points == 4
    assert caught.value.message == (
        "quiz.q3: your answer states 2 of the 3 ideas; it does not say that large scores saturate the softmax "
        "(nearly one-hot), so gradients vanish and training is unstable."
    )


def test_q3_the_rubric_cannot_confirm_goes_to_a_person() -> None:
    answer = "It makes the attention layer behave much better in practice."
    with pytest.raises(ManualReview) as caught:
        check_q3(evidence(quiz={"q3": answer}))
    assert caught.value.message == (
        "quiz.q3: the rubric could not confirm its ideas in your answer, so a person will read it (6 points pending)."
    )
    assert (caught.value.rubric, caught.value.answer) == (Q3_RUBRIC, answer)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (
            "The scale does NOT control the variance of the scores; softmax never saturates and gradients never "
            "vanish.",
            'puts a negation near one of the rubric\'s ideas ("NOT control the variance"), which keyword matching '
            "cannot read reliably",
        ),
        (
            "Softmax never saturates here, whatever the size of the head dimension is.",
            'puts a negation near one of the rubric\'s ideas ("Softmax never saturates"), which keyword matching '
            "cannot read reliably",
        ),
        (
            "sqrt d_k variance softmax saturates gradients vanish",
            "(7 words) does not read as a sentence, and keywords alone do not show the ideas",
        ),
    ],
    ids=["negated", "never", "keyword-soup"],
)
def test_q3_negated_or_keyword_answers_wait_for_a_person(answer: str, why: str) -> None:
    with pytest.raises(ManualReview) as caught:
        check_q3(evidence(quiz={"q3": answer}))
    assert caught.value.message.startswith(f"quiz.q3: your answer {why}, so a person will read it (6 points pending).")
    assert (caught.value.rubric, caught.value.answer) == (Q3_RUBRIC, answer)


def test_q3_a_wrong_idea_alone_earns_nothing_automatically() -> None:
    with pytest.raises(ManualReview) as caught:
        check_q3(evidence(quiz={"q3": "It normalises the attention weights so that they sum to one."}))
    assert caught.value.message.startswith("quiz.q3: the rubric could not confirm its ideas in your answer")


@pytest.mark.parametrize(
    ("answer", "points"),
    [
        ("Without it the dot products grow with d_k and the softmax saturates, so gradients vanish.", None),
        ("The 1/sqrt(d_k) factor stops the scores from growing with the dimension, so gradients do not vanish.", None),
        ("It keeps the variance of the scores near one for any head size.", 2.0),
    ],
)
def test_q3_a_negated_problem_in_a_result_clause_still_counts(answer: str, points: float | None) -> None:
    if points is None:
        assert check_q3(evidence(quiz={"q3": answer})).startswith("quiz.q3: all three ideas")
        return
    with pytest.raises(Partial) as caught:
        check_q3(evidence(quiz={"q3": answer}))
    assert caught.value.points == points


@pytest.mark.parametrize("answer", ["", "...", " TODO: later", "n/a"])
def test_q3_placeholder_is_no_answer(answer: str) -> None:
    with pytest.raises(AssertionError) as caught:
        check_q3(evidence(quiz={"q3": answer}))
    assert str(caught.value) == "quiz.q3 has no answer yet: explain in a sentence or two what the scale is for."


@pytest.mark.parametrize("written", [6155390976, "6,155,390,976", "6_155_390_976", 6155390976.0])
def test_lesson_total_accepts_integers_written_several_ways(written: object) -> None:
    # The spellings above are typed as a learner types them; this pins them to the reference's count.
    assert count_parameters(Config.lesson()) == 6155390976
    assert check_lesson_total_reference(evidence(params={"lesson_total": written})).startswith("params.lesson_total")


def test_missing_keys_and_tables_are_named() -> None:
    with pytest.raises(AssertionError) as caught:
        check_q1(evidence(math={}))
    assert str(caught.value) == (
        "answers.toml has no [quiz] table; add it with its keys as in submissions/_template/answers.toml."
    )
    with pytest.raises(AssertionError) as caught:
        check_q1(evidence(quiz={}))
    assert str(caught.value) == (
        "answers.toml has no `q1` in its [quiz] table; add it as in submissions/_template/answers.toml."
    )


@pytest.mark.parametrize(
    ("spec", "value", "message"),
    [
        (Int(), True, "x should be a non-negative integer, got bool True"),
        (Int(), -1, "x should be a non-negative integer, got int -1"),
        (ListOf(Int(), length=2), [1], "x should have 2 items, got 1"),
        (Record({"a": Int()}), {"b": 1}, "x lacks a"),
        (TensorSpec(), {"shape": [2], "data": [1.0]}, "x.data does not hold the 2 numbers of shape [2]"),
        (TensorSpec(), {"shape": [2], "data": [1.0, math.nan]}, "x.data[1] is not a finite number"),
        (TensorSpec(), {"shape": [1], "data": [True]}, "x.data[0] is not a finite number"),
        (TensorSpec(), {"shape": [-1], "data": []}, "x.shape[0] should be a non-negative integer, got int -1"),
    ],
)
def test_observations_that_do_not_match_their_schema_are_rejected(spec, value, message) -> None:
    with pytest.raises(ObservationError) as caught:
        spec.check(value, "x")
    assert str(caught.value) == message


def test_a_tensor_observation_keeps_the_count_of_nan_and_inf() -> None:
    observed = TensorSpec().check({"shape": [1, 2], "data": [None, 2.0]}, "x")
    assert (observed.shape, observed.nonfinite) == ((1, 2), 1)


def test_answers_toml_problems_become_messages() -> None:
    with pytest.raises(ValueError) as caught:
        parse_answers(b'q1 = "b"\n\xff')
    assert str(caught.value) == (
        "answers.toml is not UTF-8 text (line 2 holds the byte b'\\xff', written in another encoding, such as "
        "Windows' ANSI); save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)."
    )
    with pytest.raises(ValueError, match=r"^answers.toml is not valid TOML: Invalid value \(at line 1, column 6\)"):
        parse_answers(b"q1 = b")
    nested = b"x = " + b"[" * 50 + b"]" * 50
    with pytest.raises(ValueError, match=f"nested too deeply \\(more than {ANSWERS_MAX_DEPTH} levels\\)"):
        parse_answers(nested)


def test_a_toml_error_quotes_the_line_it_names() -> None:
    """An unclosed string is reported at the end of its line ("Illegal character '\\n'"): the line itself shows
    the missing quote. A line too long to quote whole is cut; an error at the end of the file quotes nothing."""
    with pytest.raises(ValueError) as caught:
        parse_answers(codecs.BOM_UTF8 + b'[quiz]\r\nq1 = "b\r\nq2 = false\r\n')
    assert str(caught.value).startswith(
        "answers.toml is not valid TOML: Illegal character '\\n' (at line 2, column 8), in the line `q1 = \"b`. "
    )
    with pytest.raises(ValueError) as caught:
        parse_answers(b"[theory]\nrope = " + b"x" * 200)
    assert f"in the line `rope = {'x' * 70}...`. Compare" in str(caught.value)
    with pytest.raises(ValueError) as caught:
        parse_answers(b'[theory]\nrope = """never closed')
    assert "in the line" not in str(caught.value)


def test_answers_saved_by_windows_editors_read_as_written() -> None:
    """Notepad's UTF-8 byte-order mark and CRLF line ends are TOML like any other; UTF-16 is named."""
    text = '[quiz]\r\nq1 = "b"\r\nq3 = """Two\r\nlines."""\r\n'
    assert parse_answers(codecs.BOM_UTF8 + text.encode()) == {"quiz": {"q1": "b", "q3": "Two\nlines."}}
    with pytest.raises(ValueError) as caught:
        parse_answers(text.encode("utf-16"))
    assert str(caught.value) == (
        "answers.toml is saved as UTF-16 (Unicode); save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)."
    )


def test_a_folder_where_a_file_belongs_is_named_plainly(tmp_path: Path) -> None:
    (tmp_path / "model.py").mkdir()
    (tmp_path / "model.py" / "model.py").write_text("x = 1\n")
    (tmp_path / "answers.toml").mkdir()
    sub = read_submission(tmp_path, "learner")
    folder = "is a folder, not a file: replace it with the file {0} itself (the grader does not look inside folders)"
    assert sub.code_errors == {"model.py": "model.py " + folder.format("model.py")}
    assert sub.answers_error == "answers.toml " + folder.format("answers.toml") + "."
    spec = next(s for s in run_specs(draw(0)) if s.name == "config")
    ev = Evidence(sub, draw(0), {"config": RunResult(spec, None, sub.code_errors["model.py"])})
    with pytest.raises(AssertionError) as caught:
        ev.observe("config", "defaults", "Config()")
    assert str(caught.value) == (
        "model.py " + folder.format("model.py") + ". The checks on model.py cannot run until it can be read."
    )


def test_run_failures_read_as_sentences_with_what_to_do() -> None:
    """A name missing from model.py points to the template; an empty MemoryError and output ending in ":" join
    the message without a stray colon."""
    d, sub = draw(0), Submission("learner", Path("learner"), {}, None)
    spec = next(s for s in run_specs(d) if s.name == "config")
    missing = Unobserved("run", "AttributeError: module 'model' has no attribute 'Config'")
    ev = Evidence(sub, d, {"config": RunResult(spec, SimpleNamespace(), experiments={"defaults": missing})})
    with pytest.raises(AssertionError) as caught:
        ev.observe("config", "defaults", "Config()")
    assert str(caught.value) == (
        "Config() failed: AttributeError: module 'model' has no attribute 'Config'. model.py defines no Config: "
        "keep the names of submissions/_template/model.py"
    )
    envelope = {"nonce": "n", "kind": "memory", "error": "MemoryError: "}
    outcome = judge({"result": json.dumps(envelope), "tail": "Traceback (most recent call last):\n"}, "n", Limits())
    assert outcome.message.endswith("keeps growing?) (MemoryError)")
    run = RunResult(spec, outcome, experiments={"defaults": Unobserved("sandbox", outcome.message)})
    ev = Evidence(sub, d, {"config": run})
    with pytest.raises(AssertionError) as caught:
        ev.observe("config", "defaults", "Config()")
    assert str(caught.value).endswith('(MemoryError). Its last output: "Traceback (most recent call last):"')


def test_files_are_read_without_following_links_and_within_their_cap(tmp_path: Path) -> None:
    (tmp_path / "real.py").write_text("x = 1\n")
    os.symlink(tmp_path / "real.py", tmp_path / "model.py")
    with pytest.raises(OSError) as caught:
        read_capped(tmp_path / "model.py", 100)
    assert str(caught.value) == "model.py is a symbolic link; submit the file itself"
    with pytest.raises(OSError) as caught:
        read_capped(tmp_path / "real.py", 3)
    assert str(caught.value) == "real.py is larger than the 3 bytes the grader reads"


def test_folders_that_are_not_submissions_are_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "bad id").mkdir()
    (tmp_path / "bad id" / "model.py").write_text("")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("")
    (tmp_path / "work.zip").write_bytes(b"PK")
    for folder in ("unzipped/ada", "class/ada", "class/bo"):  # an upload's top folder; a folder of several
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "answers.toml").write_text("")
    cases = {
        tmp_path / "nowhere": f"{tmp_path / 'nowhere'} does not exist.",
        tmp_path / "file.txt": f"{tmp_path / 'file.txt'} is a file; give its folder, submissions/<student-id>/.",
        tmp_path / "bad id": f"{tmp_path / 'bad id'}: 'bad id' is not a valid student id (letters, digits, '-' "
        "and '_' only); rename the folder.",
        tmp_path / "empty": f"{tmp_path / 'empty'} is not a submission folder: it holds none of answers.toml, "
        "model.py, mla.py (see submissions/README.md).",
        tmp_path / "work.zip": f"{tmp_path / 'work.zip'} is a zip file: unzip it, then give the submission folder "
        "it holds.",
        tmp_path / "unzipped": f"{tmp_path / 'unzipped'} holds one submission folder, ada: give "
        f"{tmp_path / 'unzipped' / 'ada'} instead.",
        tmp_path / "class": f"{tmp_path / 'class'} holds 2 submission folders: give them ({tmp_path / 'class'}/* "
        "gives them all), or one of them.",
    }
    for path, message in cases.items():
        with pytest.raises(UsageError) as caught:
            check_folder(path)
        assert str(caught.value) == message


def test_discovery_skips_the_template_hidden_folders_and_files(tmp_path: Path) -> None:
    for name in ("_template", ".git", "zoe", "amy"):
        (tmp_path / name).mkdir()
    (tmp_path / "README.md").write_text("")
    assert [p.name for p in discover(tmp_path)] == ["amy", "zoe"]


def test_the_points_table_adds_up_to_100_with_unique_numbered_checks() -> None:
    table = grader.points_table()
    assert sum(row["points"] for row in table) == 100
    assert len({row["number"] for row in table}) == len({row["name"] for row in table}) == len(table) == 21
    assert [row["number"] for row in table] == sorted(
        (row["number"] for row in table), key=lambda n: [int(x) for x in n.split(".")]
    )
    assert all(row["docs"].startswith("auto_examples/") and row["what"] for row in table)
    written = grader.written_table()
    assert [row["key"] for row in written][-2:] == ["advanced.mla", "diagram"]
    assert sum(row["points"] for row in written) == 40


def test_a_check_that_breaks_is_reported_as_a_grader_error_not_as_the_learners_fault() -> None:
    sub = evidence(quiz={})
    plugin = ScoringPlugin([sub])
    spec = CheckSpec("9.9", "demo.check", 3, "a demo", "auto_examples/09_quiz.html")
    result = plugin.judge(sub, spec, "node", SimpleNamespace(value=KeyError("oops")))
    assert (result.score, result.status) == (0.0, "failed")
    assert result.message == (
        "The grader could not score this check (internal error KeyError); it is not your fault: your instructor "
        "has been told."
    )
    assert plugin.errors["learner"] == ["demo.check: KeyError: 'oops'"]


def test_draws_are_fresh_per_seed_and_per_student_and_replayable() -> None:
    assert draw(7) == draw(7)
    assert draw(7).forward_config != draw(8).forward_config or draw(7).contract_configs != draw(8).contract_configs
    assert student_seed(7, "alice") != student_seed(7, "bob") != student_seed(8, "bob")
    for seed in range(50):
        d = draw(seed)
        for cfg in (d.forward_config, d.layer_config, *d.contract_configs):
            reference = Config.lesson().with_(**cfg)  # a valid config of the lesson architecture
            assert reference.gqa_head_dim % 2 == 0 and cfg["vocab_size"] > 3
        assert d.causal[0][0][: d.causal_split] == d.causal[1][0][: d.causal_split]
        assert all(
            a != b for a, b in zip(d.causal[0][0][d.causal_split :], d.causal[1][0][d.causal_split :], strict=True)
        )
        assert d.context[0][0][0] != d.context[1][0][0] and d.context[0][0][1:] == d.context[1][0][1:]
        (base,), (swapped,), (changed,) = d.position["ids"]
        i, j = d.position["swap"]
        assert d.position["config"]["num_layers"] == 1 and 0 <= i < j <= len(base) - 3 and base[i] != base[j]
        assert swapped == [base[j] if t == i else base[i] if t == j else x for t, x in enumerate(base)]
        assert changed[i] != base[i] and changed[:i] + changed[i + 1 :] == base[:i] + base[i + 1 :]
        r = d.reference["config"]
        h, kv, i = r["hidden_size"], r["num_kv_heads"] * r["hidden_size"] // r["num_heads"], r["intermediate_size"]
        weights = reference_weights(tuple(r.items()), d.reference["seed"])
        assert {t.shape[0] for t in weights.values() if t.dim() == 2} == {h, kv, i, r["vocab_size"]}
        rows = [h, kv, i, r["vocab_size"], 2 * kv, h + 2 * kv, 2 * i]  # every kind of weight, fused or not
        assert len(set(rows)) == len(rows) and r["num_heads"] // r["num_kv_heads"] > 2  # the groupings differ
        m, b = d.mla, d.mla_behaviour
        (x,), (later,), (first,) = m["x"], b["later"], b["first"]
        assert later[: b["split"]] == x[: b["split"]] and all(
            a != c for a, c in zip(later[b["split"] :], x[b["split"] :], strict=True)
        )
        assert first[0] != x[0] and first[1:] == x[1:]


MISNAMED = """
[quizz]
q1 = "b"

[theory]
ropee = "Rotates query and key pairs by an angle that grows with the position."
components = "..."

[theroy]
gqa = "Query heads share key/value heads in groups."
"""


def misnamed_submission(tmp_path: Path) -> Submission:
    folder = tmp_path / "learner"
    folder.mkdir()
    (folder / "answers.toml").write_text(MISNAMED, encoding="utf-8")
    (folder / "Diagram.md").write_text("Embedding -> layers -> norm -> head\n", encoding="utf-8")
    (folder / "diagram.pdf").write_bytes(b"%PDF-1.4")
    (folder / "notes.md").write_text("not a diagram\n", encoding="utf-8")
    return read_submission(folder, "learner")


def test_unknown_tables_keys_and_diagram_files_are_named_with_the_closest_known_name(tmp_path: Path) -> None:
    sub = misnamed_submission(tmp_path)
    assert sub.notices == [
        "unknown table [quizz] in answers.toml: did you mean [quiz]?",
        "unknown key `ropee` in [theory]: did you mean `rope`?",
        "unknown table [theroy] in answers.toml: did you mean [theory]?",
        "found Diagram.md: name it diagram.md (png, svg, md or txt)",
        "found diagram.pdf: save it as diagram.png (png, svg, md or txt)",
    ]
    with pytest.raises(AssertionError) as caught:
        Evidence(sub, draw(0), {}).answer("quiz", "q1")
    assert str(caught.value) == (
        "answers.toml has no [quiz] table; add it with its keys as in submissions/_template/answers.toml. "
        "Found unknown table [quizz] in answers.toml: did you mean [quiz]?"
    )


def test_an_unknown_key_in_a_known_table_is_named_where_a_key_is_missing() -> None:
    answers = {"quiz": {"q01": "b", "q2": False}}
    sub = Submission("learner", Path("learner"), answers, None, unknown=unknown_names(answers))
    with pytest.raises(AssertionError) as caught:
        Evidence(sub, draw(0), {}).answer("quiz", "q1")
    assert str(caught.value) == (
        "answers.toml has no `q1` in its [quiz] table; add it as in submissions/_template/answers.toml. "
        "Found unknown key `q01` in [quiz]: did you mean `q1`?"
    )


def test_a_misnamed_written_answer_or_diagram_goes_to_a_person_not_to_zero(tmp_path: Path) -> None:
    items = {item.key: item for item in written_items(misnamed_submission(tmp_path))}
    rope, gqa, diagram = items["theory.rope"], items["theory.gqa"], items["diagram"]
    assert (rope.score, rope.answer) == (None, MISNAMED.split('"')[3])
    assert (
        rope.comment == "Sent to a person: the answer was found under `ropee` in [theory]; name it `rope` in [theory]."
    )
    assert (gqa.score, gqa.answer) == (None, "Query heads share key/value heads in groups.")
    assert gqa.comment == "Sent to a person: the answer was found under `gqa` in [theroy]; name it `gqa` in [theory]."
    assert (diagram.score, diagram.answer) == (None, "Diagram.md\ndiagram.pdf")
    assert diagram.comment == "Sent to a person: found Diagram.md: name it diagram.md (png, svg, md or txt)."
    assert (items["theory.components"].score, items["theory.moe"].score) == (0.0, 0.0)
    assert items["theory.moe"].comment == "No answer was submitted."


def test_notices_reach_the_feedback_and_the_console(tmp_path: Path, capsys) -> None:
    sub = misnamed_submission(tmp_path)
    result = grader.StudentResult("learner", 0, 100, [], "test", notices=sub.notices)
    feedback = feedback_md(result, 0)
    assert (
        "## Names the grader does not read\n\n- unknown table [quizz] in answers.toml: did you mean [quiz]?\n"
        in feedback
    )
    show_detail(result)
    assert "  note: unknown key `ropee` in [theory]: did you mean `rope`?\n" in capsys.readouterr().out


def forward_evidence(causal: tuple[torch.Tensor, torch.Tensor], context: tuple[torch.Tensor, torch.Tensor]) -> Evidence:
    """A submission whose forward run returned these two pairs of outputs (a model making them, in effect)."""
    d = draw(0)
    spec = next(s for s in run_specs(d) if s.name == "forward")

    def observed(pair: tuple[torch.Tensor, torch.Tensor]) -> dict:
        return {"logits": [Observed(tuple(t.shape), tuple(t.reshape(-1).tolist())) for t in pair]}

    run = RunResult(spec, SimpleNamespace(), experiments={"causal": observed(causal), "context": observed(context)})
    return Evidence(Submission("learner", Path("learner"), {}, None), d, {"forward": run})


def test_a_wrong_vocabulary_size_costs_the_shape_checks_only_not_causality_or_context() -> None:
    d = draw(0)
    vocab = d.forward_config["vocab_size"] + 8
    torch.manual_seed(0)
    length, split = len(d.causal[0][0]), d.causal_split
    base = torch.randn(1, length, vocab)
    later = base.clone()
    later[:, split:] += 1.0  # a causal model: only positions from the split on change
    everywhere = base + 1.0  # and token 0 reaches every later position
    sub = forward_evidence((base, later), (base, everywhere))
    assert check_causal(sub) == "model.causal: earlier positions do not see later tokens."
    assert check_uses_context(sub) == "model.uses_context: later positions depend on earlier tokens."


def test_causality_cannot_be_shown_for_a_model_that_looks_at_no_other_position() -> None:
    d = draw(0)
    base = torch.randn(1, len(d.causal[0][0]), d.forward_config["vocab_size"])
    only_first = base.clone()
    only_first[:, 0] += 1.0
    with pytest.raises(AssertionError) as caught:
        check_causal(forward_evidence((base, base.clone()), (base, only_first)))
    assert str(caught.value).startswith(
        "Your model does not yet look at other positions (its logits at position t depend only on token t: "
        f"changing token 0 of {d.context[0][0]} changed no later position), so causality cannot be shown"
    )


def test_a_wrong_sequence_dimension_is_named() -> None:
    d = draw(0)
    length = len(d.context[0][0])
    short = torch.randn(1, length - 1, 5)
    with pytest.raises(AssertionError) as caught:
        check_uses_context(forward_evidence((short, short), (short, short)))
    assert str(caught.value).endswith(
        f"gave logits of shape {shape(short.shape)}; expected {shape((1, length))} followed by the vocabulary "
        "dimension (batch, seq, vocab_size), to compare position by position."
    )


def test_feedback_links_the_published_site_when_its_address_is_given() -> None:
    spec = CheckSpec(number="2.1", name="math.causal_mask", points=8, what="the 4x4 mask", docs="a/03.html")
    assert with_docs("Row 2 is wrong", spec) == "Row 2 is wrong. See a/03.html in the lesson docs."
    linked = with_docs("Row 2 is wrong.", spec, "https://course.example/kimi-k2/")
    assert linked == "Row 2 is wrong. See https://course.example/kimi-k2/a/03.html."
    assert grader.__main__.parser().parse_args(["--docs-url", "https://x.example/"]).docs_url == "https://x.example/"
