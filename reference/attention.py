r"""Scaled, causally masked dot-product attention, written out.

.. math::  \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V

The causal mask ``M`` lets position ``i`` attend to positions ``j <= i``: the diagonal is kept
(a token sees itself). Two equivalent conventions are in use:

* additive: ``M[i, j] = 0`` for ``j <= i`` and ``-inf`` for ``j > i``, added to the scores;
* boolean keep-mask: ``True`` (1) for ``j <= i``, ``False`` (0) above the diagonal, used to select.

The ``1/sqrt(d_k)`` scale keeps the scores' variance near 1: a dot product of two vectors with
unit-variance entries has variance ``d_k``, and unscaled scores that large saturate the softmax
into a one-hot whose gradients vanish.
"""

from __future__ import annotations

from typing import Literal

import torch


def causal_mask(
    q_len: int,
    kv_len: int | None = None,
    *,
    kind: Literal["additive", "bool"] = "additive",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The causal mask for ``q_len`` queries that come last among ``kv_len`` keys.

    With a KV cache the queries are the newest ``q_len`` positions, so query ``i`` sits at
    position ``kv_len - q_len + i`` and sees keys ``0 .. kv_len - q_len + i``.

    Returns:
        ``(q_len, kv_len)``: float 0 / -inf for ``kind="additive"``, bool keep-mask for ``kind="bool"``.
    """
    kv_len = q_len if kv_len is None else kv_len
    query_pos = torch.arange(kv_len - q_len, kv_len, device=device)[:, None]  # (q_len, 1)
    key_pos = torch.arange(kv_len, device=device)[None, :]  # (1, kv_len)
    keep = key_pos <= query_pos  # (q_len, kv_len)
    if kind == "bool":
        return keep
    if kind == "additive":
        zeros = torch.zeros(q_len, kv_len, device=device)
        return zeros.masked_fill(~keep, float("-inf"))
    raise ValueError(f"kind must be 'additive' or 'bool', got {kind!r}")


def scaled_dot_product_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, scale: float
) -> torch.Tensor:
    """``softmax(q k^T * scale + mask) v``, equal to ``torch.nn.functional.scaled_dot_product_attention``.

    Args:
        q: ``(B, H, T, D_k)`` queries.
        k: ``(B, H, S, D_k)`` keys.
        v: ``(B, H, S, D_v)`` values.
        mask: additive ``(T, S)`` mask (0 / -inf), or ``None`` for full attention.
        scale: multiplies the scores; ``1/sqrt(D_k)`` in plain attention.
    """
    scores = torch.matmul(q, k.transpose(-2, -1)) * scale  # (B, H, T, S)
    if mask is not None:
        scores = scores + mask
    weights = torch.softmax(scores.float(), dim=-1).to(q.dtype)  # each row sums to 1
    return torch.matmul(weights, v)  # (B, H, T, D_v)
