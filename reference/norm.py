r"""RMSNorm (Zhang & Sennrich, 2019): LayerNorm without the re-centring.

.. math::  \mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\tfrac{1}{d}\sum_i x_i^2 + \epsilon}} \odot g

LayerNorm subtracts the mean and divides by the standard deviation, then adds a bias.
RMSNorm keeps only the division by the root mean square and the gain ``g``: one reduction
instead of two and no bias, for the same quality in the paper's experiments.
"""

from __future__ import annotations

import torch
from torch import nn


class RMSNorm(nn.Module):
    """Root-mean-square normalisation with a learned gain, computed in float32.

    Args:
        dim: size of the last dimension, the one normalised.
        eps: added under the square root so an all-zero vector does not divide by zero.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))  # g, one gain per channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., dim) -> (..., dim)
        dtype = x.dtype
        # bf16 has float32's exponent range, so nothing overflows, but only an 8-bit significand:
        # the mean of thousands of squares is taken in float32, as transformers does. (DeepSeek's
        # inference/model.py hands the bf16 tensor to F.rms_norm as it is.)
        x = x.float()
        rms_inv = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)  # (..., 1)
        return self.weight * (x * rms_inv).to(dtype)
