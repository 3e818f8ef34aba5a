r"""Multi-head latent attention (MLA, DeepSeek-V2), the attention of DeepSeek-V3 and Kimi-K2.

Keys and values are compressed through a low-rank latent ``c`` of width ``kv_lora_rank``
(512), normalised, and expanded back per head by ``kv_b_proj``:

.. math::  c_t = \mathrm{RMSNorm}(W^{DKV} h_t), \quad
           [k^{C}_{t,h}; v_{t,h}] = W^{UKV}_h c_t

RoPE cannot pass through that compression (a rotation between ``q`` and ``W^{UK}`` would tie
the weights to positions), so position travels in a separate, *decoupled* key of width
``qk_rope_head_dim`` (64), computed once from ``h_t`` and shared by all heads:

.. math::  q_{t,h} = [q^{C}_{t,h}; \mathrm{RoPE}(q^{R}_{t,h})], \quad
           k_{t,h} = [k^{C}_{t,h}; \mathrm{RoPE}(W^{KR} h_t)]

Queries get their own low-rank path (``q_lora_rank``, 1536) to save activation memory in training.

The *absorbed* path (DeepSeek's ``attn_impl="absorb"``) never expands keys or values: since
``q^C \cdot k^C = q^C \cdot W^{UK} c = (W^{UK\top} q^C) \cdot c``, the query is mapped into the
latent space once, scores are taken against the cached latents, and ``W^{UV}`` is applied after
the weighted sum. Its cache holds ``kv_lora_rank + qk_rope_head_dim`` numbers per token per layer
(576), against ``num_heads * (qk_head_dim + v_head_dim)`` (40,960 for DeepSeek-V3) expanded.
"""

from __future__ import annotations

import torch
from torch import nn

from .attention import scaled_dot_product_attention
from .cache import append
from .config import Config
from .norm import RMSNorm
from .rope import apply_rope, softmax_scale


class MultiHeadLatentAttention(nn.Module):
    """MLA with a naive path (expand K and V) and an absorbed path (attend in latent space).

    Args:
        cfg: uses ``hidden_size``, ``num_heads``, ``q_lora_rank``, ``kv_lora_rank``,
            ``qk_nope_head_dim``, ``qk_rope_head_dim``, ``v_head_dim``, ``rms_norm_eps`` and the RoPE fields.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.num_heads = cfg.num_heads
        self.nope_dim, self.rope_dim, self.v_dim = cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.q_lora_rank, self.kv_lora_rank = cfg.q_lora_rank, cfg.kv_lora_rank
        self.scale = softmax_scale(cfg)  # 1/sqrt(qk_head_dim), times YaRN's mscale**2
        q_out = self.num_heads * cfg.qk_head_dim
        if cfg.q_lora_rank is None:
            self.q_proj = nn.Linear(cfg.hidden_size, q_out, bias=False)
        else:
            self.q_a_proj = nn.Linear(cfg.hidden_size, cfg.q_lora_rank, bias=False)  # W^{DQ}
            self.q_a_layernorm = RMSNorm(cfg.q_lora_rank)  # eps 1e-6 (see kv_a_layernorm)
            self.q_b_proj = nn.Linear(cfg.q_lora_rank, q_out, bias=False)  # W^{UQ} and W^{QR}
        # W^{DKV} and W^{KR} in one matrix: the latent and the shared rope key.
        self.kv_a_proj_with_mqa = nn.Linear(cfg.hidden_size, self.kv_lora_rank + self.rope_dim, bias=False)
        # The latent norms keep RMSNorm's default eps 1e-6 whatever cfg.rms_norm_eps says, as DeepSeek's
        # official code, its remote modeling_deepseek.py and transformers all do.
        self.kv_a_layernorm = RMSNorm(self.kv_lora_rank)
        self.kv_b_proj = nn.Linear(self.kv_lora_rank, self.num_heads * (self.nope_dim + self.v_dim), bias=False)
        self.o_proj = nn.Linear(self.num_heads * self.v_dim, cfg.hidden_size, bias=False)
        # The path forward takes when not told: None is absorbed with a cache, naive without. Set it
        # to False to decode a whole model on the naive path (lesson 04 times both).
        self.absorb: bool | None = None

    def queries(self, x: torch.Tensor, freqs_cis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-head queries split into the position-free part and the rotated part."""
        B, T, _ = x.shape
        q = self.q_proj(x) if self.q_lora_rank is None else self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q = q.view(B, T, self.num_heads, self.nope_dim + self.rope_dim)  # (B, T, H, nope + rope)
        q_nope, q_rope = q.split([self.nope_dim, self.rope_dim], dim=-1)
        return q_nope, apply_rope(q_rope, freqs_cis)

    def latents(self, x: torch.Tensor, freqs_cis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised KV latent ``(B, T, kv_lora_rank)`` and the rotated shared key ``(B, T, rope)``."""
        latent, k_rope = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, self.rope_dim], dim=-1)
        k_rope = apply_rope(k_rope.unsqueeze(2), freqs_cis).squeeze(2)  # one rope key for all heads
        return self.kv_a_layernorm(latent), k_rope

    def forward(
        self,
        x: torch.Tensor,
        freqs_cis: torch.Tensor,
        mask: torch.Tensor | None,
        cache: dict[str, torch.Tensor] | None = None,
        absorb: bool | None = None,
    ) -> torch.Tensor:
        """``x``: ``(B, T, hidden)``; ``mask``: additive ``(T, S)``; returns ``(B, T, hidden)``.

        ``absorb`` picks the path; by default :attr:`absorb`'s, and if that is ``None`` the absorbed
        one when decoding with a cache. Either way the cache holds only the latent and the rope key.
        """
        B, T, _ = x.shape
        q_nope, q_rope = self.queries(x, freqs_cis)  # (B, T, H, nope), (B, T, H, rope)
        latent, k_rope = self.latents(x, freqs_cis)  # (B, T, C), (B, T, rope)
        if cache is not None:
            latent, k_rope = append(cache, latent=latent, k_rope=k_rope)  # (B, S, C), (B, S, rope)
        if absorb is None:
            absorb = self.absorb if self.absorb is not None else cache is not None
        attend = self._absorbed if absorb else self._naive
        out = attend(q_nope, q_rope, latent, k_rope, mask)  # (B, T, H, v)
        return self.o_proj(out.reshape(B, T, self.num_heads * self.v_dim))

    def _naive(self, q_nope, q_rope, latent, k_rope, mask) -> torch.Tensor:
        """Expand every cached latent into full per-head keys and values, then attend as usual."""
        B, S, _ = latent.shape
        kv = self.kv_b_proj(latent).view(B, S, self.num_heads, self.nope_dim + self.v_dim)
        k_nope, v = kv.split([self.nope_dim, self.v_dim], dim=-1)  # (B, S, H, nope), (B, S, H, v)
        k = torch.cat([k_nope, k_rope[:, :, None, :].expand(-1, -1, self.num_heads, -1)], dim=-1)
        q = torch.cat([q_nope, q_rope], dim=-1)  # (B, T, H, nope + rope)
        out = scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), mask, self.scale
        )  # (B, H, T, v)
        return out.transpose(1, 2)

    def _absorbed(self, q_nope, q_rope, latent, k_rope, mask) -> torch.Tensor:
        """Attend in latent space: fold W^{UK} into the query and W^{UV} into the output.

        Every head scores the same cached latents and rope keys, so the heads fold into the query
        axis: one ``(T*H, C) @ (C, S)`` product per sequence reads the cache once for all heads, and
        nothing is copied or expanded per head (absorbed MLA is multi-query attention in latent space).
        """
        B, T, H, _ = q_nope.shape
        w = self.kv_b_proj.weight.view(H, self.nope_dim + self.v_dim, self.kv_lora_rank)
        w_uk, w_uv = w[:, : self.nope_dim], w[:, self.nope_dim :]  # (H, nope, C), (H, v, C)
        q_latent = torch.bmm(q_nope.reshape(B * T, H, -1).transpose(0, 1), w_uk)  # (H, B*T, C): W^{UK}_h^T q^C per head
        q_latent = q_latent.transpose(0, 1).reshape(B, T * H, -1)  # (B, T*H, C)
        scores = (
            torch.bmm(q_latent, latent.transpose(1, 2))  # content: q^C . k^C without expanding k, (B, T*H, S)
            + torch.bmm(q_rope.reshape(B, T * H, -1), k_rope.transpose(1, 2))  # position: the shared rope key
        ).view(B, T, H, -1) * self.scale  # (B, T, H, S)
        if mask is not None:
            scores = scores + mask[:, None, :]  # (T, 1, S)
        weights = torch.softmax(scores.float(), dim=-1).to(q_nope.dtype)
        context = torch.bmm(weights.view(B, T * H, -1), latent)  # (B, T*H, C): the weighted sum of latents
        out = torch.bmm(context.view(B * T, H, -1).transpose(0, 1), w_uv.transpose(1, 2))  # (H, B*T, v): W^{UV}_h, once
        return out.transpose(0, 1).reshape(B, T, H, -1)  # (B, T, H, v)
