"""The model with weights the grader sets: position reaches attention, every parameter learns, and with the
reference's weights the logits are the reference's.

Random weights of unit scale replace the learner's own initialisation for the first two checks, so that a
zero-initialised projection cannot hide a path and attention scores are large enough to show order. For
the third, the reference's weights are paired with the learner's parameters in the sandbox (by name, else
by structure) and ``grader.matching`` runs ``reference`` on the same weights under each common convention.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from grader.checks.check_params import hint
from grader.draws import reference_config, reference_weights
from grader.evidence import Evidence
from grader.feedback import config_call, max_diff, number, shape
from grader.matching import THETAS, TOLERANCE_TEXT, Comparison, compare
from grader.observations import Observed
from grader.scoring import ManualReview, check
from reference import count_parameters

DIFFERENT = 1e-4  # logits this far apart (relative to their size) count as changed
LISTED = 8  # names shown in a message before "and N more"
REFERENCE_POINTS = 12
REFERENCE_RUBRIC = (
    "model.matches_reference: the grader could not compare this model with the reference on the same weights. "
    "Read model.py beside reference/model.py (the lesson architecture: embedding; pre-norm decoder layers with "
    "RMSNorm, causal grouped-query attention with RoPE on q and k and the 1/sqrt(head_dim) scale, a SwiGLU MLP; "
    "a final RMSNorm; an untied LM head; no biases). Full points if it computes that function under a layout "
    "the grader does not know (fused or transposed weights, another RoPE or head layout); none if any part "
    "computes something else."
)


def listed(names: list[str], limit: int = LISTED) -> str:
    """``a, b, c and 4 more``."""
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


def last_position(observed: Observed, ids: list[list[int]], doing: str) -> torch.Tensor:
    """The logits at the last position, flattened, or AssertionError naming what is wrong with them."""
    assert observed.nonfinite == 0, f"{doing} gave logits with {observed.nonfinite} NaN or inf entries."
    logits = observed.tensor()
    expected = (1, len(ids[0]))
    assert logits.dim() >= 2 and tuple(logits.shape[:2]) == expected, (
        f"{doing} gave logits of shape {shape(logits.shape)}; expected {shape(expected)} followed by the "
        "vocabulary dimension (see 4.2)."
    )
    return logits[0, -1].reshape(-1)


@check(
    "4.9",
    "model.position",
    6,
    "Attention knows where tokens are: in a one-layer model, swapping two earlier tokens changes the logits "
    "at the last position (RoPE)",
    "auto_examples/02_rope.html",
)
def check_position(evidence: Evidence) -> str:
    p = evidence.draws.position
    (base,), (swapped,), (changed,) = p["ids"]
    i, j = p["swap"]
    model = f"SimpleKimiK2({config_call(p['config'])}) with random weights"
    observed = evidence.observe("weights", "position", f"{model}, on token ids {base}, {swapped} and {changed}")
    a, b, c = (last_position(t, ids, model) for t, ids in zip(observed["logits"], p["ids"], strict=True))
    scale = 1.0 + float(a.abs().max())
    assert max_diff(a, c) > DIFFERENT * scale, (
        f"In {model}, changing the token at position {i} of {base} ({base[i]} to {changed[i]}) left the logits "
        "at the last position unchanged: the last position does not look at earlier tokens yet (see 4.5), so "
        "whether attention knows their order cannot be tested. Implement attention first."
    )
    assert max_diff(a, b) > DIFFERENT * scale, (
        f"In {model}, swapping the tokens at positions {i} and {j} ({base} and {swapped}) left the logits at the "
        f"last position unchanged (largest difference {max_diff(a, b):.3g}), though changing one of them changes "
        "them: "
        "attention sees the earlier tokens as a set, without their order. In one causal layer only positional "
        "information can tell the two apart: rotate q and k by RoPE (their positions' angles) before the scores."
    )
    return "model.position: swapping two earlier tokens changes the last position's logits: attention knows order."


@check(
    "4.10",
    "model.gradients",
    4,
    "One backward pass gives every parameter a finite, non-zero gradient (nothing is cut off from the loss)",
    "auto_examples/07_skeleton.html",
)
def check_gradients(evidence: Evidence) -> str:
    g = evidence.draws.gradients
    doing = f"One backward pass through SimpleKimiK2({config_call(g['config'])}) with random weights"
    observed = evidence.observe("weights", "gradients", doing)
    params = observed["parameters"]
    assert any(p["in_layer"] for p in params), (
        f"{doing}: its DecoderLayer modules hold no parameters yet (the model has only "
        f"{listed([p['name'] for p in params]) or 'none'}), so training could not reach attention or the MLP. "
        "Build the norms, attention and MLP inside DecoderLayer."
    )
    problems = {
        "none": "got no gradient (cut off from the loss: a .detach(), a torch.no_grad() block, or a module "
        "the forward pass never uses)",
        "zero": "got a gradient of exactly zero (their output never reaches the logits)",
        "nonfinite": "got NaN or inf gradients",
    }
    found = []
    for status, what in problems.items():
        names = [p["name"] for p in params if p["status"] == status]
        if names:
            found.append(f"{listed(names)} {what}")
    more = (
        f" ({len(params)} of the {observed['count']} parameters were checked)"
        if len(params) < observed["count"]
        else ""
    )
    assert not found, f"{doing}: " + "; ".join(found) + f"{more}. These parameters would never learn."
    return f"model.gradients: all {observed['count']} parameters get a finite, non-zero gradient."


def shapes(rows: list[tuple[str, list[int]]], limit: int = LISTED) -> str:
    """``embed_tokens.weight (27, 32), ...`` (the first ``limit``)."""
    return listed([f"{name} {shape(dims)}" for name, dims in rows], limit)


def pairing(observed: dict[str, Any], pairs: bool = False) -> str:
    """How the weights were paired: by name, or by structure (with ``pairs``: those outside the layers and in the
    first one, ``wte.weight = embed_tokens.weight``)."""
    mapping = observed["mapping"]
    if mapping["method"] == "names":
        return "loaded by name"
    if not pairs:
        return "paired by structure"
    first = [
        f"{pair['parameter']} = {' + '.join(pair['weights'])}"
        for pair in mapping["pairs"]
        if all(not w.startswith("layers.") or w.startswith("layers.0.") for w in pair["weights"])
        and pair["weights"] != [pair["parameter"]]
    ]
    return f"paired by structure (by shape and call order: {', '.join(first)}; the other layers alike)"


def hyperparameters(observed: dict[str, Any], result: Comparison) -> str:
    """`` rope_theta 10000 from Config.rope_theta; rms_norm_eps 1e-06 assumed (the reference's).``"""
    said = []
    for key, value in observed["hyperparameters"].items():
        if value["value"] is not None:
            said.append(f"{key} {value['value']:g} from {value['where']}")
    said += [f"{text}, as your code declares none the grader could read" for text in result.assumed]
    return " Hyperparameters: " + "; ".join(said) + "." if said else ""


@check(
    "4.11",
    "model.matches_reference",
    REFERENCE_POINTS,
    f"With the reference's weights, the logits equal the lesson architecture's within {TOLERANCE_TEXT} "
    "(any common RoPE layout or head grouping)",
    "auto_examples/07_skeleton.html",
)
def check_matches_reference(evidence: Evidence) -> str:
    r = evidence.draws.reference
    model = f"SimpleKimiK2({config_call(r['config'])})"
    observed = evidence.observe("weights", "reference", f"{model} with the reference's weights")
    if observed["mapping"]["method"] == "none":
        weights = reference_weights(tuple(r["config"].items()), r["seed"])
        expected = [(name, list(t.shape)) for name, t in weights.items() if not name.startswith("layers.1.")]
        found = [(p["name"], p["shape"]) for p in observed["parameters"]]
        names = (
            "Expected (the reference's names, which the template uses; the other layers alike): "
            f"{shapes(expected, len(expected))}. Found: {shapes(found)}."
        )
        total = count_parameters(reference_config(r["config"]))
        assert observed["count"] == total, (
            f"{model} has {number(observed['count'])} parameters, the lesson architecture {number(total)} "
            f"({observed['count'] - total:+,}; see 3.3), so the reference's weights cannot be loaded into it and "
            f"its logits cannot be compared.{hint(observed['count'], reference_config(r['config']))} {names}"
        )
        raise ManualReview(
            f"The grader could not pair the reference's weights with the parameters of {model}: "
            f"{observed['mapping']['reason']}. Your model has the lesson architecture's {number(total)} "
            "parameters, so it may be right under a layout the grader does not know: a person will compare it "
            f"with the reference ({REFERENCE_POINTS} points pending). With the template's names (embed_tokens, "
            "layers.N.self_attn.q_proj, layers.N.mlp.gate_proj, ...) and nn.Linear modules, the grader compares "
            "directly.",
            REFERENCE_RUBRIC,
            names,
        )
    result = compare(observed, evidence.draws)
    if result.matched:
        return (
            f"model.matches_reference: with the reference's weights {pairing(observed)}, your logits equal the "
            f"reference's (largest difference {result.difference:.2g}), with {result.convention.describe()}."
            + hyperparameters(observed, result)
        )
    bases = (
        "the RoPE base your code declares"
        if observed["hyperparameters"]["rope_theta"]["value"] is not None
        else ("the bases " + ", ".join(f"{t:g}" for t in THETAS))
    )
    if math.isinf(result.difference):  # the wrong shape, or NaN/inf: no number to compare, no convention to try
        message = (
            f"With the reference's weights {pairing(observed, pairs=True)}, the logits of {model} on token ids "
            f"{r['ids']} cannot be compared with the reference's: {result.detail}." + hyperparameters(observed, result)
        )
    else:
        message = (
            f"With the reference's weights {pairing(observed, pairs=True)}, the logits of {model} on token ids "
            f"{r['ids']} differ from the "
            f"reference's by up to {result.difference:.3g} (allowed {result.allowed:.2g})"
            + (f"; they first diverge at {result.stage}: {result.detail}." if result.stage else f"; {result.detail}.")
            + f" Tried: RoPE on adjacent pairs or on halves, query heads in contiguous or strided groups, {bases}."
            + hyperparameters(observed, result)
        )
    fused = any(len(pair["weights"]) > 1 for pair in observed["mapping"]["pairs"])
    if fused and not result.slip:
        raise ManualReview(
            message + " Some of your weights hold several of the reference's stacked in one matrix, and the "
            f"grader may have guessed their layout wrong, so a person will check ({REFERENCE_POINTS} points pending).",
            REFERENCE_RUBRIC,
            message,
        )
    raise AssertionError(message)
