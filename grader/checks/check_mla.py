"""The advanced task's stub, ``mla.py`` (optional): a latent cache smaller than the full K/V.

The contract (submissions/README.md): ``MultiHeadLatentAttention(hidden_size=, num_heads=, head_dim=,
kv_lora_rank=)`` whose ``forward(x)`` maps ``(B, T, hidden_size)`` to ``(output, latent_cache)`` with the
output shaped like ``x`` and the cache holding per token fewer numbers than MHA's keys and values.
"""

from __future__ import annotations

import dataclasses
import math

from grader.evidence import Evidence
from grader.feedback import shape
from grader.scoring import check
from reference import Config, kv_cache_numbers_per_token

ABSENT = "mla.py is not in your submission (it is optional): the advanced task's code stub earns these points."


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
    assert evidence.has("mla.py") or "mla.py" in evidence.submission.code_errors, ABSENT
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


@check(
    "5.2",
    "advanced.mla_cache",
    4,
    "mla.py: the latent cache holds fewer numbers per token than full multi-head K/V",
    "auto_examples/10_advanced_mla.html",
)
def check_mla_cache(evidence: Evidence) -> str:
    assert evidence.has("mla.py") or "mla.py" in evidence.submission.code_errors, ABSENT
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
    return f"advanced.mla_cache: {per_token} numbers per token against {full} for full K/V."
