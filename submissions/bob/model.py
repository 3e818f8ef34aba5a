"""SimpleKimiK2, bob's version (an example submission with typical mistakes; see submissions/README.md)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Config:
    vocab_size: int = 102400
    hidden_size: int = 4096
    num_layers: int = 30
    num_heads: int = 32
    num_kv_heads: int = 8
    intermediate_size: int = 11008


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        x = x - x.mean(-1, keepdim=True)  # mistake: re-centring is LayerNorm's, not RMSNorm's
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class GQA(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.n_heads, self.n_kv = config.num_heads, config.num_kv_heads
        self.d = config.hidden_size // config.num_heads
        self.wq = nn.Linear(config.hidden_size, self.n_heads * self.d, bias=False)
        self.wk = nn.Linear(config.hidden_size, self.n_kv * self.d, bias=False)
        self.wv = nn.Linear(config.hidden_size, self.n_kv * self.d, bias=False)
        self.wo = nn.Linear(self.n_heads * self.d, config.hidden_size, bias=False)

    def forward(self, x):
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.d).transpose(1, 2)
        k = self.wk(x).view(b, t, self.n_kv, self.d).transpose(1, 2)
        v = self.wv(x).view(b, t, self.n_kv, self.d).transpose(1, 2)  # mistake: no RoPE on q and k
        k = k.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        v = v.repeat_interleave(self.n_heads // self.n_kv, dim=1)
        out = F.scaled_dot_product_attention(q, k, v)  # mistake: no causal mask (is_causal=True)
        return self.wo(out.transpose(1, 2).reshape(b, t, -1))


class FFN(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.w1 = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.w3 = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.w2 = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class DecoderLayer(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.attn, self.ffn = GQA(config), FFN(config)
        self.norm1, self.norm2 = RMSNorm(config.hidden_size), RMSNorm(config.hidden_size)

    def forward(self, hidden):
        hidden = self.norm1(hidden + self.attn(hidden))  # mistake: post-norm, as in the 2017 Transformer
        return self.norm2(hidden + self.ffn(hidden))


class SimpleKimiK2(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.embed = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([DecoderLayer(config) for _ in range(config.num_layers)])
        self.norm = RMSNorm(config.hidden_size)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.lm_head.weight = self.embed.weight  # mistake for this lesson: Kimi-K2's head is untied

    def forward(self, input_ids):
        h = self.embed(input_ids)
        for layer in self.layers:
            h = layer(h)
        return self.lm_head(self.norm(h))


if __name__ == "__main__":
    print(SimpleKimiK2(Config(100, 64, 2, 4, 2, 128))(torch.tensor([[1, 2, 3]])).shape)
    with torch.device("meta"):
        print(sum(p.numel() for p in SimpleKimiK2(Config()).parameters()))
