"""Advanced task (optional): a multi-head latent attention stub.

Keep the name and signature: MultiHeadLatentAttention(hidden_size=, num_heads=, head_dim=, kv_lora_rank=),
forward(x) with x of shape (B, T, hidden_size) returning (output, latent_cache): the output shaped like x,
the cache (B, T, ...) holding what MLA keeps per token, fewer numbers than full keys and values.
"""

from __future__ import annotations

import torch
from torch import nn


class MultiHeadLatentAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, kv_lora_rank: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, head_dim  # TODO: down- and up-projections

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, seq, _ = x.shape
        full_kv = torch.zeros(batch, seq, 2 * self.num_heads * self.head_dim)  # TODO: cache the latent instead
        return torch.zeros_like(x), full_kv  # TODO: attention over keys and values rebuilt from the latent
