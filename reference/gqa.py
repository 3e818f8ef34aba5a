r"""Grouped-query attention (GQA, Ainslie et al., 2023): the task sheet's attention.

``num_heads`` query heads share ``num_kv_heads`` key/value heads, each K/V head serving a group
of ``num_heads / num_kv_heads`` query heads. Nothing is low-rank: the cache shrinks because
there are fewer K/V heads, ``2 * num_kv_heads * head_dim`` numbers per token per layer instead
of multi-head attention's ``2 * num_heads * head_dim``. (``num_kv_heads = num_heads`` is MHA;
``num_kv_heads = 1`` is multi-query attention.) Low-rank compression of K/V is MLA, in ``mla.py``.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import scaled_dot_product_attention
from .cache import append
from .config import Config
from .rope import apply_rope, softmax_scale


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with RoPE and shared K/V heads.

    Args:
        cfg: uses ``hidden_size``, ``num_heads``, ``num_kv_heads``, ``gqa_head_dim`` and the RoPE fields.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, cfg.gqa_head_dim
        self.scale = softmax_scale(cfg)  # 1 / sqrt(head_dim)
        self.q_proj = nn.Linear(cfg.hidden_size, self.num_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(cfg.hidden_size, self.num_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.head_dim, cfg.hidden_size, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        freqs_cis: torch.Tensor,
        mask: torch.Tensor | None,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``x``: ``(B, T, hidden)`` normalised input; ``mask``: additive ``(T, S)``; returns ``(B, T, hidden)``."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.num_heads, self.head_dim)  # (B, T, H, D)
        k = self.k_proj(x).view(B, T, self.num_kv_heads, self.head_dim)  # (B, T, G, D)
        v = self.v_proj(x).view(B, T, self.num_kv_heads, self.head_dim)  # (B, T, G, D)
        q, k = apply_rope(q, freqs_cis), apply_rope(k, freqs_cis)  # position enters q and k only
        if cache is not None:
            k, v = append(cache, k=k, v=v)  # (B, S, G, D): the cache holds the G K/V heads
        group = self.num_heads // self.num_kv_heads
        k = k.repeat_interleave(group, dim=2)  # (B, S, H, D): K/V head g serves query heads g*group ...
        v = v.repeat_interleave(group, dim=2)
        out = scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, self.scale
        )  # (B, H, T, D)
        return self.o_proj(out.transpose(1, 2).reshape(B, T, self.num_heads * self.head_dim))
