r"""The SwiGLU feed-forward block (Shazeer, 2020), used by dense layers and by every expert.

.. math::  \mathrm{FFN}(x) = W_{down}\,\big(\mathrm{SiLU}(W_{gate}\,x) \odot W_{up}\,x\big)

A gated linear unit: ``up`` carries the signal, ``SiLU(gate)`` decides how much of each of the
``intermediate_size`` channels passes. Three matrices instead of two, hence widths near 8/3 of
the hidden size where a plain MLP would use 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SwiGLU(nn.Module):
    """Gated MLP without biases.

    Args:
        dim: input and output width (the hidden size).
        hidden: intermediate width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., dim) -> (..., dim)
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))
