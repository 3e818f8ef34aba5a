r"""
Advanced task: multi-head latent attention
==========================================

.. admonition:: Advanced task
   :class: hint

   *Research DeepSeek V3 paper: Summarize one unique feature (e.g., MLA - Multi-head Latent
   Attention) and how it differs from standard GQA. Propose a simple code stub for it.*

Hand in the summary as ``[advanced] mla`` in ``answers.toml`` and the stub as ``mla.py``:
``MultiHeadLatentAttention(hidden_size=..., num_heads=..., head_dim=..., kv_lora_rank=...)``,
whose ``forward(x)`` returns ``(output, latent_cache)`` (see :doc:`../learners/submit`).

Reference material: :doc:`04_gqa_vs_mla` derives MLA and its cache, and
:class:`reference.MultiHeadLatentAttention` is the full implementation (decoupled RoPE, query
compression, naive and absorbed paths). The weights of the full MLA for Kimi-K2:
"""

import torch
from torch import nn

from reference import Config, MultiHeadLatentAttention, kv_cache_numbers_per_token

kimi = Config.kimi_k2()
with torch.device("meta"):
    attention = MultiHeadLatentAttention(kimi)
for name, parameter in attention.named_parameters():
    print(f"{name:>26} {tuple(parameter.shape)}")
print(f"cached per token and layer: {kv_cache_numbers_per_token(kimi, 'mla')} numbers")
gqa_group = 2 * kimi.qk_nope_head_dim  # GQA caches a key and a value of width d_h per K/V head
print(
    f"as many as GQA with {kv_cache_numbers_per_token(kimi, 'mla') / gqa_group:g} K/V heads of width "
    f"d_h = {kimi.qk_nope_head_dim}: (d_c + d_h^R) / (2 d_h)"
)

# %%
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: MLA in a paragraph, and how it differs from GQA
#    :class: answer
#
#    **Multi-head latent attention** (introduced in DeepSeek-V2, used unchanged by DeepSeek-V3
#    and Kimi-K2) compresses each token's keys and values into one small latent vector
#    :math:`c_t = W^{DKV} h_t`, normalised. The KV cache stores only that latent plus one small
#    rotated key shared by all heads (RoPE cannot pass through the compression, so position
#    travels in this *decoupled* key). Each head's keys and values are linear functions of the
#    latent, :math:`k_{t,i} = W^{UK}_i c_t` and :math:`v_{t,i} = W^{UV}_i c_t`, and at inference
#    those up-projections are absorbed into the query and the output projection, so full keys and
#    values are never built.
#
#    **Against GQA**: GQA shrinks the cache by *sharing* key/value heads among groups of query
#    heads, so heads in a group see identical keys and values. MLA keeps distinct keys and values
#    for every head but makes them all functions of one low-rank latent: a cache independent of
#    the number of heads, as small as GQA's with only 2.25 groups (the DeepSeek-V2 report, Table
#    1, and the ratio printed above), so GQA with one or two groups still caches less. In
#    DeepSeek-V2's experiments MLA's quality was at least that of full multi-head attention,
#    where GQA and MQA fell short of it. The cost is extra projections, and care with RoPE.
#
# .. END SOLUTION
#
# A code stub
# -----------
# The interface the grader expects: a module built from four sizes whose ``forward(x)`` returns
# the output and what the cache would hold.

# BEGIN SOLUTION


class LatentAttentionStub(nn.Module):
    """MLA without RoPE and without query compression: keys and values rebuilt from one latent per token."""

    def __init__(self, hidden_size: int, num_heads: int, head_dim: int, kv_lora_rank: int) -> None:
        super().__init__()
        self.heads, self.head_dim = num_heads, head_dim
        self.q_proj = nn.Linear(hidden_size, num_heads * head_dim, bias=False)
        self.kv_a_proj = nn.Linear(hidden_size, kv_lora_rank, bias=False)  # W^{DKV}: down to the latent
        self.kv_norm = nn.RMSNorm(kv_lora_rank, eps=1e-6)
        self.kv_b_proj = nn.Linear(kv_lora_rank, 2 * num_heads * head_dim, bias=False)  # W^{UK}, W^{UV}
        self.o_proj = nn.Linear(num_heads * head_dim, hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # x: (B, T, hidden)
        batch, seq, _ = x.shape
        latent = self.kv_norm(self.kv_a_proj(x))  # (B, T, kv_lora_rank): all the cache holds
        k, v = self.kv_b_proj(latent).view(batch, seq, 2, self.heads, self.head_dim).unbind(2)  # (B, T, H, D)
        q = self.q_proj(x).view(batch, seq, self.heads, self.head_dim)  # (B, T, H, D)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        mask = torch.full((seq, seq), float("-inf"), device=x.device).triu(1)
        weights = torch.softmax(q @ k.transpose(-2, -1) / self.head_dim**0.5 + mask, dim=-1)  # (B, H, T, T)
        out = (weights @ v).transpose(1, 2).reshape(batch, seq, -1)  # (B, T, H * D)
        return self.o_proj(out), latent


torch.manual_seed(0)
stub = LatentAttentionStub(hidden_size=256, num_heads=8, head_dim=32, kv_lora_rank=64)
x = torch.randn(2, 5, 256)
with torch.no_grad():
    out, cache = stub(x)
full_kv = 2 * 8 * 32
print(f"output {tuple(out.shape)}, cache {tuple(cache.shape)}")
print(f"cached per token: {cache.shape[-1]} numbers, against {full_kv} for full multi-head K/V")
# END SOLUTION

# %%
# What the stub leaves out, and the reference has: the decoupled RoPE key (without it the stub
# knows no positions at all), the low-rank query path (``q_a_proj``, ``q_a_layernorm``,
# ``q_b_proj``), the separate widths of the position-free and rotated key channels, YaRN's
# softmax scale, and the absorbed decode path. :class:`reference.MultiHeadLatentAttention` shows
# each.
