"""Code Tasks 1 and 3 on the whole model: Config's defaults, logits shapes, causality, use of context.

The model is built from small configs the grader draws each run; the causality checks compare logits of
token sequences that differ only after (or only at) a position the grader chose.
"""

from __future__ import annotations

from typing import Any

import torch

from grader.draws import lesson_fields
from grader.evidence import Evidence
from grader.feedback import config_call, max_diff, number, shape
from grader.observations import Observed
from grader.scoring import check

SAME = 1e-5  # logits this close (relative to their size) count as unchanged
DIFFERENT = 1e-4  # and this far apart as changed


def model_call(evidence: Evidence, ids: list[list[int]]) -> str:
    """``SimpleKimiK2(Config(...))(torch.tensor([[1, 2, 3]]))`` for messages."""
    return f"SimpleKimiK2({config_call(evidence.draws.forward_config)})(torch.tensor({ids}))"


def finite_logits(observed: Observed, doing: str) -> torch.Tensor:
    """The logits as a tensor, or AssertionError if the child saw NaN or inf."""
    assert observed.nonfinite == 0, f"{doing} gave logits with {observed.nonfinite} NaN or inf entries."
    return observed.tensor()


def pair(evidence: Evidence, experiment: str, doing: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two outputs of a causal/context experiment as (T, N) tensors: position by everything else.

    Only the batch and sequence dimensions are checked: these checks compare two runs position by position,
    so a wrong vocabulary size or an extra dimension costs the shape checks (4.2, 4.3) and nothing here.
    """
    first, second = evidence.observe("forward", experiment, doing)["logits"]
    a, b = finite_logits(first, doing), finite_logits(second, doing)
    expected = (1, len(getattr(evidence.draws, experiment)[0][0]))
    assert a.dim() >= 2 and tuple(a.shape[:2]) == expected and a.shape == b.shape and a.numel(), (
        f"{doing} gave logits of shape {shape(a.shape)}; expected {shape(expected)} followed by the vocabulary "
        "dimension (batch, seq, vocab_size), to compare position by position."
    )
    return a.reshape(expected[1], -1), b.reshape(expected[1], -1)  # (T, N)


def changed_per_position(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, float]:
    """How much each position's outputs differ, (T,), and the scale differences are judged against."""
    return (a - b).abs().amax(dim=-1), 1.0 + float(a.abs().max())


def unchanged_positions(evidence: Evidence, doing: str) -> tuple[list[int], torch.Tensor, torch.Tensor]:
    """Later positions whose outputs did not change when only token 0 changed, and the two (T, N) outputs."""
    (base,), _ = evidence.draws.context
    a, b = pair(evidence, "context", doing)
    per_position, scale = changed_per_position(a, b)
    return [t for t in range(1, len(base)) if per_position[t] <= DIFFERENT * scale], a, b


@check("4.1", "model.config_defaults", 4, "Config() defaults are the lesson config", "auto_examples/08_configs.html")
def check_config_defaults(evidence: Evidence) -> str:
    fields: dict[str, Any] = evidence.observe("config", "defaults", "Config()")["fields"]
    wrong = []
    for name, expected in lesson_fields().items():
        value = fields[name]
        if value["kind"] == "missing":
            wrong.append(f"Config() has no field {name} (expected {number(expected)})")
        elif value["kind"] == "other":
            wrong.append(f"Config().{name} is {value['repr']} (a {value['type']}), expected the int {expected}")
        elif value["value"] != expected:
            wrong.append(f"Config().{name} is {value['value']}, expected {expected}")
    assert not wrong, "; ".join(wrong) + f". The lesson config is {config_call(lesson_fields())}."
    return "model.config_defaults: Config() is the lesson config."


@check(
    "4.2",
    "model.logits_shape",
    4,
    "SimpleKimiK2(config)(torch.tensor([[1, 2, 3]])) gives logits of shape (1, 3, vocab_size)",
    "auto_examples/07_skeleton.html",
)
def check_logits_shape(evidence: Evidence) -> str:
    ids = evidence.draws.example
    doing = model_call(evidence, ids)
    observed = evidence.observe("forward", "example", doing)
    expected = (1, 3, evidence.draws.forward_config["vocab_size"])
    assert tuple(observed["shape"]) == expected, (
        f"{doing} returned logits of shape {shape(observed['shape'])}; expected {shape(expected)}: "
        "(batch, seq, vocab_size)."
    )
    assert observed["finite"], f"{doing} returned logits with NaN or inf entries."
    return f"model.logits_shape: {shape(expected)}."


@check(
    "4.3",
    "model.logits_shape_batches",
    4,
    "Logits have shape (batch, seq, vocab_size) for other batch sizes and lengths",
    "auto_examples/07_skeleton.html",
)
def check_logits_shape_batches(evidence: Evidence) -> str:
    batches = evidence.draws.batches
    vocab = evidence.draws.forward_config["vocab_size"]
    doing = f"SimpleKimiK2({config_call(evidence.draws.forward_config)}) on token ids of shape " + " and ".join(
        shape((len(b), len(b[0]))) for b in batches
    )
    results = evidence.observe("forward", "batches", doing)["results"]
    for ids, result in zip(batches, results, strict=True):
        expected = (len(ids), len(ids[0]), vocab)
        assert tuple(result["shape"]) == expected, (
            f"For input ids of shape {shape(expected[:2])}, SimpleKimiK2({config_call(evidence.draws.forward_config)}) "
            f"returned logits of shape {shape(result['shape'])}; expected {shape(expected)}: (batch, seq, vocab_size)."
        )
        assert result["finite"], f"For input ids of shape {shape(expected[:2])}, the logits hold NaN or inf."
    return "model.logits_shape_batches: right for every batch size and length tried."


@check(
    "4.4",
    "model.causal",
    6,
    "Changing later tokens leaves the logits of earlier positions unchanged (causal mask)",
    "auto_examples/03_attention.html",
)
def check_causal(evidence: Evidence) -> str:
    split = evidence.draws.causal_split
    (base,), (changed,) = evidence.draws.causal
    (first,), (other,) = evidence.draws.context
    unchanged, _, _ = unchanged_positions(evidence, f"Comparing logits for {first} and {other}")
    assert len(unchanged) < len(first) - 1, (
        f"Your model does not yet look at other positions (its logits at position t depend only on token t: "
        f"changing token 0 of {first} changed no later position), so causality cannot be shown; implement "
        "attention, then this check changes later tokens and verifies that earlier positions do not see them."
    )
    doing = f"Comparing logits for {base} and {changed}"
    a, b = pair(evidence, "causal", doing)
    per_position, scale = changed_per_position(a, b)
    leaked = [t for t in range(split) if per_position[t] > SAME * scale]
    assert not leaked, (
        f"Tokens {base} and {changed} differ only from position {split} on, yet the logits at earlier positions "
        f"{leaked} changed (by up to {float(per_position[:split].max()):.3g}): position t sees tokens after t. "
        "Add the causal mask (-inf above the diagonal) to the attention scores before the softmax."
    )
    return "model.causal: earlier positions do not see later tokens."


@check(
    "4.5",
    "model.uses_context",
    4,
    "Changing the first token changes the logits at later positions (attention mixes positions)",
    "auto_examples/03_attention.html",
)
def check_uses_context(evidence: Evidence) -> str:
    (base,), (changed,) = evidence.draws.context
    unchanged, a, b = unchanged_positions(evidence, f"Comparing logits for {base} and {changed}")
    assert not unchanged, (
        f"Tokens {base} and {changed} differ only at position 0, yet the logits at later positions {unchanged} "
        f"did not change (max difference {max_diff(a[1:], b[1:]):.3g}): those positions do not look at "
        "earlier tokens. Attention is still a stub, or its output never reaches the residual stream."
    )
    return "model.uses_context: later positions depend on earlier tokens."
