"""The advanced task's stub, ``mla.py`` (optional): attention through a latent cache smaller than full K/V.

The contract (submissions/README.md): ``MultiHeadLatentAttention(hidden_size=, num_heads=, head_dim=,
kv_lora_rank=)`` whose ``forward(x)`` maps ``(B, T, hidden_size)`` to ``(output, latent_cache)`` with the
output shaped like ``x`` and the cache holding per token fewer numbers than MHA's keys and values. Beyond
the shapes, the stub must compute: with random weights, the grader changes the input's later rows, then
its first row, and watches what moves. The cache holds one latent per token, computed from that token
alone (``c_t = W_dkv x_t``), so only its own entry moves; the output is causal attention, so a change
reaches every later position and no earlier one. Zeros of the right shapes earn the shape points only.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from grader.evidence import Evidence
from grader.feedback import shape
from grader.observations import Observed
from grader.scoring import check
from reference import Config, kv_cache_numbers_per_token

SAME, DIFFERENT = 1e-5, 1e-4  # relative to the numbers' size: unchanged below SAME, changed above DIFFERENT

ABSENT = "mla.py is not in your submission (it is optional): the advanced task's code stub earns these points."


def submitted(evidence: Evidence) -> None:
    """AssertionError (ABSENT) unless the submission holds an mla.py, readable or not."""
    assert evidence.has("mla.py") or "mla.py" in evidence.submission.code_errors, ABSENT


def doing(evidence: Evidence) -> str:
    """``MultiHeadLatentAttention(...)`` on an input of its shape, for messages."""
    m = evidence.draws.mla
    args = ", ".join(f"{k}={m[k]}" for k in ("hidden_size", "num_heads", "head_dim", "kv_lora_rank"))
    return f"MultiHeadLatentAttention({args}) on x of shape {shape((1, len(m['x'][0]), m['hidden_size']))}"


@check(
    "5.1",
    "advanced.mla_shapes",
    2,
    "mla.py: forward(x) returns (output shaped like x, latent cache of shape (B, T, ...))",
    "auto_examples/10_advanced_mla.html",
)
def check_mla_shapes(evidence: Evidence) -> str:
    submitted(evidence)
    observed = evidence.observe("mla", "mla", doing(evidence))
    x_shape = (1, len(evidence.draws.mla["x"][0]), evidence.draws.mla["hidden_size"])
    assert tuple(observed["output_shape"]) == x_shape, (
        f"{doing(evidence)} returned an output of shape {shape(observed['output_shape'])}; expected {shape(x_shape)}."
    )
    assert tuple(observed["cache_shape"][:2]) == x_shape[:2] and len(observed["cache_shape"]) >= 3, (
        f"{doing(evidence)} returned a latent cache of shape {shape(observed['cache_shape'])}; expected "
        f"(batch, seq, ...) = {shape((*x_shape[:2], evidence.draws.mla['kv_lora_rank']))}, one latent per token."
    )
    assert observed["finite"], f"{doing(evidence)} returned an output with NaN or inf entries."
    return "advanced.mla_shapes: output and latent cache have the right shapes."


def behaviour(evidence: Evidence, what: str) -> tuple[list[torch.Tensor], int]:
    """``what`` ("output" or "cache") for the base input, the later rows changed and the first row changed,
    each as (T, N) with random weights; and the row from which ``later`` differs."""
    m, b = evidence.draws.mla, evidence.draws.mla_behaviour
    length = len(m["x"][0])
    observed = evidence.observe("mla", "behaviour", f"{doing(evidence)}, with random weights")
    found = []
    for key in ("base", "later", "first"):
        t: Observed = observed[key][what]
        assert t.values is not None, f"{doing(evidence)} returned a {what} too large to compare ({shape(t.shape)})."
        assert t.nonfinite == 0, f"{doing(evidence)}, with random weights, returned a {what} with NaN or inf entries."
        values = t.tensor()
        assert values.dim() >= 2 and tuple(values.shape[:2]) == (1, length), (
            f"{doing(evidence)} returned a {what} of shape {shape(values.shape)}; expected (1, {length}, ...)."
        )
        found.append(values.reshape(length, -1))
    return found, b["split"]


def moved(a: torch.Tensor, b: torch.Tensor) -> tuple[list[int], list[int]]:
    """The rows of two (T, N) tensors that changed, and those that stayed the same."""
    per_row = (a - b).abs().amax(dim=-1) if a.numel() else torch.zeros(a.shape[0])
    scale = 1.0 + float(a.abs().max()) if a.numel() else 1.0
    return [t for t, d in enumerate(per_row.tolist()) if d > DIFFERENT * scale], [
        t for t, d in enumerate(per_row.tolist()) if d <= SAME * scale
    ]


@check(
    "5.2",
    "advanced.mla_cache",
    3,
    "mla.py: the cache holds one latent per token, computed from that token only, fewer numbers than full K/V",
    "auto_examples/10_advanced_mla.html",
)
def check_mla_cache(evidence: Evidence) -> str:
    submitted(evidence)
    m = evidence.draws.mla
    observed = evidence.observe("mla", "mla", doing(evidence))
    cache_shape = observed["cache_shape"]
    assert len(cache_shape) >= 3, (
        f"{doing(evidence)} returned a latent cache of shape {shape(cache_shape)}, not (B, T, ...)."
    )
    per_token = math.prod(cache_shape[2:])
    mha = dataclasses.replace(
        Config.lesson(),
        hidden_size=m["hidden_size"],
        num_heads=m["num_heads"],
        num_kv_heads=m["num_heads"],
        head_dim=m["head_dim"],
    )
    full = kv_cache_numbers_per_token(mha, "mha")
    assert per_token < full, (
        f"{doing(evidence)} caches {per_token} numbers per token; full multi-head K/V would be {full} "
        f"(2 x {m['num_heads']} heads x {m['head_dim']}). The point of MLA is to cache only the "
        f"kv_lora_rank = {m['kv_lora_rank']} latent (plus a small shared RoPE key) and rebuild K and V from it."
    )
    (base, later, first), split = behaviour(evidence, "cache")
    length = base.shape[0]
    changed, kept = moved(base, first)
    assert 0 in changed, (
        f"{doing(evidence)}, with random weights: changing the first token's input left its cache entry "
        "unchanged, so the cache holds nothing computed from the input (a constant?). Cache the latent "
        "c = W_dkv x of each token."
    )
    assert kept == list(range(1, length)), (
        f"{doing(evidence)}, with random weights: changing only the first token's input also changed the cache "
        f"at positions {[t for t in range(1, length) if t not in kept]}: each token's latent is computed from "
        "that token alone, c_t = W_dkv x_t, so that it can be cached once and reused."
    )
    changed, kept = moved(base, later)
    assert kept == list(range(split)) and changed == list(range(split, length)), (
        f"{doing(evidence)}, with random weights: changing the input from position {split} on changed the cache "
        f"at positions {changed}; only positions {list(range(split, length))} should change, each from its "
        "own token."
    )
    return f"advanced.mla_cache: one latent per token, {per_token} numbers against {full} for full K/V."


@check(
    "5.3",
    "advanced.mla_attention",
    3,
    "mla.py: the output is causal attention: it depends on the input, reaches later positions, never earlier",
    "auto_examples/10_advanced_mla.html",
)
def check_mla_attention(evidence: Evidence) -> str:
    submitted(evidence)
    (base, later, first), split = behaviour(evidence, "output")
    length = base.shape[0]
    changed, _ = moved(base, first)
    assert changed, (
        f"{doing(evidence)}, with random weights: changing the input left the output unchanged, so it does not "
        "depend on the input (zeros?). Compute attention: queries from x, keys and values rebuilt from the latent."
    )
    assert changed == list(range(length)), (
        f"{doing(evidence)}, with random weights: changing the first token's input changed the output only at "
        f"positions {changed}, not at every later one: each position should attend to the tokens before it."
    )
    changed, _ = moved(base, later)
    leaked = [t for t in changed if t < split]
    assert not leaked, (
        f"{doing(evidence)}, with random weights: changing the input from position {split} on changed the output "
        f"at earlier positions {leaked}: add the causal mask, so that no position attends to later tokens."
    )
    return "advanced.mla_attention: the output is causal attention over the input."
