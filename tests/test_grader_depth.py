"""Grading depth: a correct model always passes and a wrong one cannot.

The fixture submissions of ``variants`` (alice with one change each: a mistake that looks right, or a correct
model under another convention) are graded through the sandbox, with the independent solution of the
similarity tests and two of alice's copies as editors and file managers leave them: saved by Windows
Notepad (a byte-order mark, CRLF line ends) and with a folder where ``model.py`` belongs. Each gets its exact
score and the messages of the checks it fails; messages that quote the grader's draws are rebuilt from them.
The fair and the wrong ones are graded again on configs drawn from other seeds.
"""

from __future__ import annotations

import codecs
import re
import shutil
from pathlib import Path

import pytest
from test_grader import NUMBER, POINTS, docs, draws, expect, full, message, order_unseen, scores
from variants import FAIR, WRONG, make

import grader
from grader.feedback import config_call, shape
from grader.sandbox import Sandbox

ROOT = Path(__file__).resolve().parent.parent
INDEPENDENT = ROOT / "tests" / "fixtures" / "similarity" / "independent"
SEED = 20251129
LOST = {  # what each wrong model must lose, and nothing else
    "no_rope": ("4.9", "4.11"),
    "no_scale": ("4.11",),
    "detached": ("4.10",),
    "mla_stub": ("5.2", "5.3"),
    "short_logits": ("4.2", "4.3", "4.11"),
    "rope_frequencies": ("4.11",),
    "fused_rope_frequencies": ("4.11",),
    "unmappable": ("4.11",),
}
MANUAL = ("fused_rope_frequencies", "unmappable")  # where 4.11 goes to a person
FAIR_KINDS = [*FAIR, "independent", "windows"]
DECLARED = "Hyperparameters: rope_theta 10000 from Config.rope_theta; rms_norm_eps 1e-06 from Config.rms_norm_eps."


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(jobs=2) as box:
        yield box


@pytest.fixture(scope="module")
def klass(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Every fixture submission of this module, written into one class folder."""
    root = tmp_path_factory.mktemp("depth")
    paths = [make(kind, root / kind) for kind in [*WRONG, *FAIR]]
    shutil.copytree(INDEPENDENT, root / "independent")
    shutil.copy(ROOT / "submissions" / "alice" / "answers.toml", root / "independent")
    shutil.copytree(ROOT / "submissions" / "alice", root / "windows")
    for path in (root / "windows").iterdir():
        text = path.read_text(encoding="utf-8").replace("\n", "\r\n")
        path.write_bytes(codecs.BOM_UTF8 + text.encode("utf-8"))
    (root / "model_folder" / "model.py").mkdir(parents=True)
    shutil.copy(ROOT / "submissions" / "alice" / "model.py", root / "model_folder" / "model.py")
    for name in ("answers.toml", "mla.py"):
        shutil.copy(ROOT / "submissions" / "alice" / name, root / "model_folder")
    return [*paths, root / "independent", root / "windows", root / "model_folder"]


@pytest.fixture(scope="module")
def graded(klass: list[Path], sandbox: Sandbox) -> dict[str, grader.StudentResult]:
    return {r.student: r for r in grader.grade(klass, seed=SEED, sandbox=sandbox)}


def test_each_wrong_model_loses_the_points_of_its_mistake_and_nothing_else(graded) -> None:
    for kind, lost in LOST.items():
        result = graded[kind]
        assert result.score == 100 - sum(POINTS[c] for c in lost), kind
        manual = ("4.11",) if kind in MANUAL else ()
        assert scores(result) == expect(full(*(c for c in POINTS if c not in lost)), manual=manual), kind
        assert result.grader_errors == [], kind


def reference_text(student: str, how: str, stage: str, detail: str, ending: str = "") -> str:
    """The pattern of a failed 4.11 message: ``detail`` a pattern, each difference NUMBER, the rest as written."""
    r = draws(student).reference
    return (
        re.escape(
            f"With the reference's weights {how}, the logits of SimpleKimiK2({config_call(r['config'])}) on token ids "
            f"{r['ids']} differ from the reference's by up to "
        )
        + NUMBER
        + re.escape(" (allowed ")
        + NUMBER
        + re.escape(f"); they first diverge at {stage}: ")
        + detail
        + re.escape(
            ". Tried: RoPE on adjacent pairs or on halves, query heads in contiguous or strided groups, the RoPE "
            f"base your code declares. {DECLARED}{ending}" + docs("4.11")
        )
    )


def test_no_rope_fails_position_and_the_reference_at_the_attention_scores(graded) -> None:
    result = graded["no_rope"]
    assert re.fullmatch(order_unseen("no_rope"), message(result, "4.9"))
    detail = (
        "q and k are not rotated by RoPE, so attention does not know where tokens are: rotate both by their "
        "positions before the scores"
    )
    pattern = reference_text("no_rope", "loaded by name", "layer 0's attention scores", re.escape(detail))
    assert re.fullmatch(pattern, message(result, "4.11"))


def test_no_softmax_scale_is_named_where_the_logits_part(graded) -> None:
    detail = (
        "they are the dot products of q and k without the 1/sqrt(d_k) scale: multiply the scores by "
        "1/sqrt(head_dim) before the softmax"
    )
    pattern = reference_text("no_scale", "loaded by name", "layer 0's attention scores", re.escape(detail))
    assert re.fullmatch(pattern, message(graded["no_scale"], "4.11"))


SCORES_DIFFER = (
    re.escape(
        "at position 0, which can only attend to token 0 itself, your attention output matches; from position 1 on "
        "it does not (largest difference "
    )
    + NUMBER
    + re.escape("): the scores (q, k, RoPE, the scale or the mask) differ from the reference's")
)


def test_a_slip_the_grader_does_not_know_is_placed_at_the_attention_scores(graded) -> None:
    pattern = reference_text("rope_frequencies", "loaded by name", "layer 0's attention scores", SCORES_DIFFER)
    assert re.fullmatch(pattern, message(graded["rope_frequencies"], "4.11"))


def test_fused_weights_that_do_not_match_go_to_a_person_in_case_the_layout_was_guessed_wrong(graded) -> None:
    result = graded["fused_rope_frequencies"]
    layer = "layers.0.self_attn"
    how = (
        f"paired by structure (by shape and call order: {layer}.qkv_proj.weight = {layer}.q_proj.weight + "
        f"{layer}.k_proj.weight + {layer}.v_proj.weight; the other layers alike)"
    )
    ending = (
        " Some of your weights hold several of the reference's stacked in one matrix, and the grader may have "
        "guessed their layout wrong, so a person will check (12 points pending)."
    )
    pattern = reference_text("fused_rope_frequencies", how, "layer 0's attention scores", SCORES_DIFFER, ending)
    assert re.fullmatch(pattern, message(result, "4.11"))
    (item,) = [i for i in result.manual_review if i.check]
    assert (item.check, item.score) == ("4.11", None)
    assert item.answer.endswith(DECLARED) and message(result, "4.11").startswith(item.answer)  # the diagnosis


def test_logits_of_the_wrong_shape_are_not_compared_number_by_number(graded) -> None:
    """No difference "up to inf", and no list of conventions tried: none could make the shapes agree."""
    r = draws("short_logits").reference
    vocab, length = r["config"]["vocab_size"], len(r["ids"][0])
    assert message(graded["short_logits"], "4.11") == (
        f"With the reference's weights loaded by name, the logits of SimpleKimiK2({config_call(r['config'])}) on "
        f"token ids {r['ids']} cannot be compared with the reference's: the logits have shape "
        f"(1, {length}, {vocab - 1}), expected finite logits of shape (1, {length}, {vocab}). {DECLARED}" + docs("4.11")
    )


def test_sublayers_cut_off_from_the_gradient_are_named(graded) -> None:
    g = draws("detached").gradients
    layer = [
        f"layers.{i}.{name}.weight"
        for i in range(2)
        for name in (
            "input_layernorm",
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "post_attention_layernorm",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
        )
    ]
    assert message(graded["detached"], "4.10") == (
        f"One backward pass through SimpleKimiK2({config_call(g['config'])}) with random weights: "
        f"{', '.join(layer[:8])} and {len(layer) - 8} more got no gradient (cut off from the loss: a .detach(), a "
        "torch.no_grad() block, or a module the forward pass never uses). These parameters would never learn."
        + docs("4.10")
    )
    assert message(graded["windows"], "4.10") == ("model.gradients: all 21 parameters get a finite, non-zero gradient.")


def test_an_mla_stub_that_computes_nothing_earns_only_the_shape_points(graded) -> None:
    result = graded["mla_stub"]
    m = draws("mla_stub").mla
    call = (
        f"MultiHeadLatentAttention(hidden_size={m['hidden_size']}, num_heads={m['num_heads']}, "
        f"head_dim={m['head_dim']}, kv_lora_rank={m['kv_lora_rank']}) on x of shape "
        f"{shape((1, len(m['x'][0]), m['hidden_size']))}, with random weights: "
    )
    assert message(result, "5.1") == "advanced.mla_shapes: output and latent cache have the right shapes."
    assert message(result, "5.2") == (
        call + "changing the first token's input left its cache entry unchanged, so the cache holds nothing "
        "computed from the input (a constant?). Cache the latent c = W_dkv x of each token." + docs("5.2")
    )
    assert message(result, "5.3") == (
        call + "changing the input left the output unchanged, so it does not depend on the input (zeros?). Compute "
        "attention: queries from x, keys and values rebuilt from the latent." + docs("5.3")
    )
    assert message(graded["windows"], "5.2").startswith("advanced.mla_cache: one latent per token, ")


def test_a_model_the_grader_cannot_pair_with_the_reference_goes_to_a_person(graded) -> None:
    result = graded["unmappable"]
    r = draws("unmappable").reference["config"]
    h, kv = r["hidden_size"], r["num_kv_heads"] * r["hidden_size"] // r["num_heads"]
    text = message(result, "4.11")
    assert text.startswith(
        f"The grader could not pair the reference's weights with the parameters of SimpleKimiK2({config_call(r)}): "
        f"in layers.0, its parameters (layers.0.input_layernorm.weight ({h},), layers.0.self_attn.k_proj ({h}, "
        f"{kv}), layers.0.self_attn.v_proj ({h}, {kv}), layers.0.self_attn.q_proj.weight ({h}, {h}),"
    )
    assert f"do not match the reference's (input_layernorm ({h},), q_proj ({h}, {h}), k_proj ({kv}, {h})," in text
    assert text.endswith(
        "so it may be right under a layout the grader does not know: a person will compare it with the reference "
        "(12 points pending). With the template's names (embed_tokens, layers.N.self_attn.q_proj, "
        "layers.N.mlp.gate_proj, ...) and nn.Linear modules, the grader compares directly." + docs("4.11")
    )
    (item,) = [i for i in result.manual_review if i.check]
    assert (item.key, item.check, item.max_score, item.score) == ("model.matches_reference", "4.11", 12, None)
    assert item.answer.startswith("Expected (the reference's names, which the template uses; the other layers")
    assert f"Found: embed_tokens.weight ({r['vocab_size']}, {h}), layers.0.input_layernorm.weight" in item.answer


CONVENTIONS = {  # how each fair model was paired with the reference, and the convention named
    "sheet_scale": ("loaded by name", "adjacent", "contiguous"),
    "other_names": ("paired by structure", "adjacent", "contiguous"),
    "fused_qkv": ("paired by structure", "adjacent", "contiguous"),
    "rotate_half": ("loaded by name", "halves", "contiguous"),
    "strided": ("loaded by name", "adjacent", "strided"),
    "independent": ("paired by structure", "halves", "contiguous"),
    "windows": ("loaded by name", "adjacent", "contiguous"),
}
PAIRS = {
    "adjacent": "RoPE on adjacent channel pairs (as the reference)",
    "halves": "RoPE on the two halves of each head (rotate_half)",
}
GROUPING = {
    "contiguous": "query heads sharing a KV head in contiguous groups (as the reference)",
    "strided": "query heads assigned to KV heads in strided order (head h reads KV head h % num_kv_heads)",
}


def test_each_fair_model_keeps_full_marks_and_hears_which_convention_matched(graded) -> None:
    for kind in FAIR_KINDS:
        result = graded[kind]
        assert (result.score, result.grader_errors) == (100, []), (kind, [c for c in result.checks if c.score < 1])
        how, pairs, grouping = CONVENTIONS[kind]
        hyper = (
            "Hyperparameters: rms_norm_eps 1e-06 (the reference's), as your code declares none the grader could "
            "read; rope_theta 10000 (your model behaves as that base), as your code declares none the grader "
            "could read."
            if kind == "independent"
            else DECLARED
        )
        prefix = f"model.matches_reference: with the reference's weights {how}, your logits equal the reference's "
        suffix = f"), with {PAIRS[pairs]}, {GROUPING[grouping]}. {hyper}"
        pattern = re.escape(prefix + "(largest difference ") + NUMBER + re.escape(suffix)
        assert re.fullmatch(pattern, message(result, "4.11")), (kind, message(result, "4.11"))


def test_files_saved_by_windows_notepad_are_read_as_written(klass) -> None:
    windows = next(p for p in klass if p.name == "windows")
    assert (windows / "answers.toml").read_bytes().startswith(codecs.BOM_UTF8 + b"# ")
    assert b"\r\n" in (windows / "model.py").read_bytes()


def test_a_model_py_that_is_a_folder_gets_a_plain_message(graded) -> None:
    result = graded["model_folder"]
    text = (
        "model.py is a folder, not a file: replace it with the file model.py itself (the grader does not look "
        "inside folders). The checks on model.py cannot run until it can be read."
    )
    for check in ("3.1", "3.3", "4.1", "4.9", "4.10", "4.11"):
        assert message(result, check) == text + docs(check)
    assert scores(result) == expect(full("1.1", "1.2", "1.3", "2.1", "3.2", "5.1", "5.2", "5.3"))


@pytest.mark.parametrize("seed", [1, 2])
def test_configs_drawn_afresh_keep_every_verdict(klass: list[Path], sandbox: Sandbox, seed: int) -> None:
    wanted = {**{kind: 100 - sum(POINTS[c] for c in lost) for kind, lost in LOST.items()}}
    wanted |= dict.fromkeys(FAIR_KINDS, 100)
    paths = [p for p in klass if p.name in wanted]
    results = {r.student: r.score for r in grader.grade(paths, seed=seed, sandbox=sandbox)}
    assert results == wanted


def test_a_seed_replays_the_checks_on_weights_the_grader_sets(graded, klass: list[Path], sandbox: Sandbox) -> None:
    again = grader.grade([p for p in klass if p.name in ("no_scale", "strided")], seed=SEED, sandbox=sandbox)
    for result in again:
        assert result.checks == graded[result.student].checks
