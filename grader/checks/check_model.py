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


def model_call(sub: Evidence, ids: list[list[int]]) -> str:
    """``SimpleKimiK2(Config(...))(torch.tensor([[1, 2, 3]]))`` for messages."""
    return f"SimpleKimiK2({config_call(sub.draws.forward_config)})(torch.tensor({ids}))"


def finite_logits(observed: Observed, doing: str) -> torch.Tensor:
    """The logits as a tensor, or AssertionError if the child saw NaN or inf."""
    assert observed.nonfinite == 0, f"{doing} gave logits with {observed.nonfinite} NaN or inf entries."
    return observed.tensor()


def pair(sub: Evidence, experiment: str, doing: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The two logits tensors of a causal/context experiment, shape-checked."""
    first, second = sub.observe("forward", experiment, doing)["logits"]
    a, b = finite_logits(first, doing), finite_logits(second, doing)
    length = len(getattr(sub.draws, experiment)[0][0])
    expected = (1, length, sub.draws.forward_config["vocab_size"])
    assert tuple(a.shape) == expected and tuple(b.shape) == expected, (
        f"{doing} gave logits of shape {shape(a.shape)}; expected {shape(expected)} (batch, seq, vocab_size)."
    )
    return a, b


@check("4.1", "model.config_defaults", 6, "Config() defaults are the lesson config", "auto_examples/08_configs.html")
def check_config_defaults(sub: Evidence) -> str:
    fields: dict[str, Any] = sub.observe("config", "defaults", "Config()")["fields"]
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
    6,
    "SimpleKimiK2(config)(torch.tensor([[1, 2, 3]])) gives logits of shape (1, 3, vocab_size)",
    "auto_examples/07_skeleton.html",
)
def check_logits_shape(sub: Evidence) -> str:
    ids = sub.draws.example
    doing = model_call(sub, ids)
    observed = sub.observe("forward", "example", doing)
    expected = (1, 3, sub.draws.forward_config["vocab_size"])
    assert tuple(observed["shape"]) == expected, (
        f"{doing} returned logits of shape {shape(observed['shape'])}; expected {shape(expected)}: "
        "(batch, seq, vocab_size)."
    )
    assert observed["finite"], f"{doing} returned logits with NaN or inf entries."
    return f"model.logits_shape: {shape(expected)}."


@check(
    "4.3",
    "model.logits_shape_batches",
    6,
    "Logits have shape (batch, seq, vocab_size) for other batch sizes and lengths",
    "auto_examples/07_skeleton.html",
)
def check_logits_shape_batches(sub: Evidence) -> str:
    batches = sub.draws.batches
    vocab = sub.draws.forward_config["vocab_size"]
    doing = f"SimpleKimiK2({config_call(sub.draws.forward_config)}) on token ids of shape " + " and ".join(
        shape((len(b), len(b[0]))) for b in batches
    )
    results = sub.observe("forward", "batches", doing)["results"]
    for ids, result in zip(batches, results, strict=True):
        expected = (len(ids), len(ids[0]), vocab)
        assert tuple(result["shape"]) == expected, (
            f"For input ids of shape {shape(expected[:2])}, SimpleKimiK2({config_call(sub.draws.forward_config)}) "
            f"returned logits of shape {shape(result['shape'])}; expected {shape(expected)}: (batch, seq, vocab_size)."
        )
        assert result["finite"], f"For input ids of shape {shape(expected[:2])}, the logits hold NaN or inf."
    return "model.logits_shape_batches: right for every batch size and length tried."


@check(
    "4.4",
    "model.causal",
    8,
    "Changing later tokens leaves the logits of earlier positions unchanged (causal mask)",
    "auto_examples/03_attention.html",
)
def check_causal(sub: Evidence) -> str:
    split = sub.draws.causal_split
    (base,), (changed,) = sub.draws.causal
    doing = f"Comparing logits for {base} and {changed}"
    a, b = pair(sub, "causal", doing)
    scale = 1.0 + float(a.abs().max())
    per_position = (a - b).abs().amax(dim=-1)[0]  # (T,)
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
    6,
    "Changing the first token changes the logits at later positions (attention mixes positions)",
    "auto_examples/03_attention.html",
)
def check_uses_context(sub: Evidence) -> str:
    (base,), (changed,) = sub.draws.context
    doing = f"Comparing logits for {base} and {changed}"
    a, b = pair(sub, "context", doing)
    scale = 1.0 + float(a.abs().max())
    per_position = (a - b).abs().amax(dim=-1)[0]  # (T,)
    unchanged = [t for t in range(1, len(base)) if per_position[t] <= DIFFERENT * scale]
    assert not unchanged, (
        f"Tokens {base} and {changed} differ only at position 0, yet the logits at later positions {unchanged} "
        f"did not change (max difference {max_diff(a[0, 1:], b[0, 1:]):.3g}): those positions do not look at "
        "earlier tokens. Attention is still a stub, or its output never reaches the residual stream."
    )
    return "model.uses_context: later positions depend on earlier tokens."
