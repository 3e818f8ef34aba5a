r"""Rotary position embeddings (RoPE, Su et al., 2021) with YaRN's context extension.

RoPE treats each adjacent pair of channels ``(x[2i], x[2i+1])`` of a query or key as a complex
number and rotates it by the angle ``m * theta_i`` at position ``m``:

.. math::  \tilde{x}^{(m)}_i = x_i \, e^{\mathrm{i}\, m \theta_i}, \qquad \theta_i = b^{-2i/d}

so that the score of a query at position ``m`` and a key at position ``n`` is

.. math::  \mathrm{Re}\sum_i q_i \overline{k_i}\, e^{\mathrm{i}(m-n)\theta_i},

a function of the offset ``m - n`` alone. DeepSeek's checkpoints store the rotated channels as
adjacent pairs (``view_as_complex``); implementations that use ``rotate_half`` must de-interleave
first, or the scores come out wrong.

YaRN stretches a model trained on ``original_max_position_embeddings`` tokens to ``factor`` times
more: low frequencies (wavelengths longer than the original context) are divided by ``factor``,
high frequencies are kept, and a linear ramp blends the pairs in between. It also sharpens the
softmax by ``mscale**2`` (see :func:`softmax_scale`).
"""

from __future__ import annotations

import math

import torch

from .config import Config


def yarn_find_correction_dim(num_rotations: float, dim: int, base: float, max_position: int) -> float:
    """The (fractional) pair index whose wavelength fits ``num_rotations`` times into ``max_position``.

    Solves ``max_position / (2 pi base^(2i/dim)) = num_rotations`` for ``i``.
    """
    return dim * math.log(max_position / (num_rotations * 2 * math.pi)) / (2 * math.log(base))


def yarn_correction_range(cfg: Config) -> tuple[int, int]:
    """Pair indices ``(low, high)`` between which YaRN's ramp blends the two frequency regimes.

    Computed over the rotated head width (``cfg.rope_dim``) and the *original* context length;
    using ``max_position_embeddings`` here instead is a known bug of other implementations.
    """
    yarn = cfg.rope_scaling
    if yarn is None:
        raise ValueError(f"{cfg.name}: this config has no YaRN rope_scaling")
    dim, base, original = cfg.rope_dim, cfg.rope_theta, yarn.original_max_position_embeddings
    low = math.floor(yarn_find_correction_dim(yarn.beta_fast, dim, base, original))
    high = math.ceil(yarn_find_correction_dim(yarn.beta_slow, dim, base, original))
    return max(low, 0), min(high, dim - 1)


def yarn_get_mscale(factor: float, mscale: float = 1.0) -> float:
    """YaRN's magnitude correction ``0.1 * mscale * ln(factor) + 1`` (1 when not extending)."""
    return 1.0 if factor <= 1 else 0.1 * mscale * math.log(factor) + 1.0


def inverse_frequencies(cfg: Config) -> torch.Tensor:
    """``theta_i`` for each rotated pair, with YaRN's interpolation applied when configured.

    Returns:
        Tensor of shape ``(rope_dim // 2,)``, float32.
    """
    dim = cfg.rope_dim
    freqs = 1.0 / (cfg.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))  # (dim/2,)
    if cfg.rope_scaling is not None:
        low, high = yarn_correction_range(cfg)
        ramp = (torch.arange(dim // 2, dtype=torch.float32) - low) / max(high - low, 1e-3)
        keep = 1 - ramp.clamp(0, 1)  # 1: high frequency, kept; 0: low frequency, interpolated
        freqs = freqs / cfg.rope_scaling.factor * (1 - keep) + freqs * keep
    return freqs


def rope_amplitude(cfg: Config) -> float:
    """YaRN's scale of cos and sin (``attention_factor`` in transformers); 1 for the published configs."""
    yarn = cfg.rope_scaling
    if yarn is None:
        return 1.0
    if yarn.mscale and yarn.mscale_all_dim:
        return yarn_get_mscale(yarn.factor, yarn.mscale) / yarn_get_mscale(yarn.factor, yarn.mscale_all_dim)
    return yarn_get_mscale(yarn.factor)


def softmax_scale(cfg: Config) -> float:
    r"""The factor multiplying ``q @ k.T`` before the softmax.

    ``1 / sqrt(d_k)`` keeps the scores' variance near 1 whatever the head width; with YaRN, MLA
    multiplies it by ``mscale**2`` where ``mscale = 0.1 * mscale_all_dim * ln(factor) + 1``.
    """
    if cfg.attention == "gqa":
        return cfg.gqa_head_dim**-0.5
    scale = cfg.qk_head_dim**-0.5
    yarn = cfg.rope_scaling
    if yarn is not None and yarn.mscale_all_dim:
        scale *= yarn_get_mscale(yarn.factor, yarn.mscale_all_dim) ** 2
    return scale


def precompute_freqs_cis(cfg: Config, seq_len: int, start: int = 0) -> torch.Tensor:
    """The unit rotations ``A * e^{i m theta_j}`` for positions ``start .. start + seq_len - 1``.

    Returns:
        Complex64 tensor of shape ``(seq_len, rope_dim // 2)``.
    """
    positions = torch.arange(start, start + seq_len, dtype=torch.float32)  # (T,)
    angles = torch.outer(positions, inverse_frequencies(cfg))  # (T, dim/2)
    return torch.polar(torch.full_like(angles, rope_amplitude(cfg)), angles)


def apply_rope(x: torch.Tensor, freqs_cis: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent channel pairs of ``x`` by ``freqs_cis``.

    Args:
        x: ``(B, T, H, D)`` queries or keys, ``D`` even; pairs are ``(x[..., 2i], x[..., 2i+1])``.
        freqs_cis: ``(T, D // 2)`` from :func:`precompute_freqs_cis`.
    """
    dtype = x.dtype
    pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # (B, T, H, D/2)
    rotated = pairs * freqs_cis[None, :, None, :]  # broadcast over batch and heads
    return torch.view_as_real(rotated).flatten(-2).to(dtype)  # (B, T, H, D)
