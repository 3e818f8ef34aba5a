"""Advanced task: a multi-head latent attention stub (DeepSeek-V2/V3).

Keys and values are rebuilt from one small latent per token, c = W_dkv x (kv_lora_rank numbers), which is
all the KV cache has to hold; GQA instead caches full keys and values for its num_kv_heads heads.
(The real MLA also caches a small RoPE key shared by all heads; this stub leaves RoPE out.)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MultiHeadLatentAttention(nn.Module):
    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, kv_lora_rank: int) -> None:
        super().__init__()
        self.heads, self.head_dim = num_heads, head_dim
        self.q_proj = nn.Linear(hidden_size, num_heads * head_dim, bias=False)
        self.kv_a_proj = nn.Linear(hidden_size, kv_lora_rank, bias=False)  # down-projection to the latent
        self.kv_b_proj = nn.Linear(kv_lora_rank, 2 * num_heads * head_dim, bias=False)  # latent -> K and V
        self.o_proj = nn.Linear(num_heads * head_dim, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, seq, _ = x.shape
        latent = self.kv_a_proj(x)  # (B, T, kv_lora_rank): the cache
        k, v = self.kv_b_proj(latent).view(batch, seq, 2, self.heads, self.head_dim).unbind(2)  # (B, T, H, D)
        q = self.q_proj(x).view(batch, seq, self.heads, self.head_dim)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)
        mask = torch.full((seq, seq), float("-inf")).triu(1)
        out = F.softmax(scores + mask, dim=-1) @ v  # (B, H, T, D)
        return self.o_proj(out.transpose(1, 2).reshape(batch, seq, -1)), latent
