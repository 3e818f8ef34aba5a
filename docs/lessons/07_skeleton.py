r"""
The model skeleton, from token ids to logits
============================================

.. admonition:: Code task 1: model skeleton implementation
   :class: hint

   *Extend the* ``SimpleKimiK2`` *class from teaching.md. Add a placeholder* ``DecoderLayer``
   *class with pre-norm, attention stub, MLP stub, residuals. Forward pass: Embed → loop layers →
   norm → lm_head. Test:* ``input_ids = torch.tensor([[1,2,3]])``, *print logits.shape (should
   be (1,3,vocab_size)).*

   The starter code of the sheet::

       class RMSNorm(nn.Module):  # Stub
           def __init__(self, dim): super().__init__(); self.scale = nn.Parameter(torch.ones(dim))
           def forward(self, x): return x * self.scale  # Simplified

       class DecoderLayer(nn.Module):  # Your impl
           def __init__(self, config): ...
           def forward(self, hidden): ...

.. note::

   The starter ``RMSNorm`` is marked as a stub, and it is one: it multiplies by a gain and never
   normalises. A real RMSNorm divides by the root mean square first (see :doc:`01_components`
   and :class:`reference.RMSNorm`). Hand in the real one: the grader checks its numbers.

The shape test needs no weights at all: PyTorch's *meta* device builds a model that records
shapes and allocates nothing, so even the full-size lesson config runs on a laptop.
Here is the reference model built that way:
"""

import torch
from torch import nn

from reference import Config, SimpleKimiK2

input_ids = torch.tensor([[1, 2, 3]])  # (B=1, T=3)
lesson = Config.lesson()
with torch.device("meta"):
    reference_model = SimpleKimiK2(lesson)
    print("reference model, lesson config:", tuple(reference_model(input_ids.to("meta")).shape))
print("vocab_size of the lesson config:", lesson.vocab_size)

# %%
# A skeleton
# ----------
# The skeleton has the real data flow and placeholder sublayers: the attention and the MLP are
# stubs, and the norm, the residuals and the order of operations are real.

# BEGIN SOLUTION


class RMSNorm(nn.Module):
    """x / sqrt(mean(x^2) + eps) * g: the real thing, not the sheet's stub."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., dim)
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class AttentionStub(nn.Module):
    """Placeholder: one linear map per position. Real attention mixes positions (page 3)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, hidden)
        return self.proj(x)


class MLPStub(nn.Module):
    """Placeholder for the SwiGLU MLP (or the MoE): up, non-linearity, down."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.up = nn.Linear(hidden, intermediate, bias=False)
        self.down = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, hidden)
        return self.down(torch.nn.functional.silu(self.up(x)))


class DecoderLayer(nn.Module):
    """Pre-norm block: h + attn(norm(h)), then h + mlp(norm(h))."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = AttentionStub(config.hidden_size)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = MLPStub(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (B, T, hidden)
        hidden = hidden + self.self_attn(self.input_layernorm(hidden))  # residual 1
        return hidden + self.mlp(self.post_attention_layernorm(hidden))  # residual 2


class Skeleton(nn.Module):
    """Embed -> loop layers -> norm -> lm_head."""

    def __init__(self, config: Config, layer: type[nn.Module] = DecoderLayer) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(layer(config) for _ in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, vocab)
        hidden = self.embed_tokens(input_ids)  # (B, T, hidden)
        for layer in self.layers:
            hidden = layer(hidden)
        return self.lm_head(self.norm(hidden))  # (B, T, vocab)


# END SOLUTION

# %%
# The test of the task sheet
# --------------------------
# First with the lesson config on the meta device, then, with real numbers, on a small config of
# the same shape family (real weights of the lesson config would take many gigabytes).

# BEGIN SOLUTION
with torch.device("meta"):
    logits = Skeleton(lesson)(input_ids.to("meta"))
print("skeleton, lesson config (meta):", tuple(logits.shape))

small = lesson.with_(hidden_size=64, num_layers=2, num_heads=4, num_kv_heads=2, intermediate_size=128, vocab_size=1000)
torch.manual_seed(0)
with torch.no_grad():
    logits = Skeleton(small)(input_ids)
print("skeleton, small config:", tuple(logits.shape))
print("next-token distribution of position 2 sums to", float(logits[0, 2].softmax(-1).sum()))
# END SOLUTION

# %%
# Filling in the stubs
# --------------------
# The skeleton passes the shape test, but its "attention" never looks at other positions. The
# grader also checks that a model is causal (later tokens do not change earlier logits) and that
# it uses its context (an earlier token does change later logits). Both need real attention:
# GQA with RoPE and the causal mask (pages 2 to 4), and the SwiGLU MLP.

# BEGIN SOLUTION


def rotate_pairs(x: torch.Tensor, theta: float) -> torch.Tensor:
    """RoPE on ``x`` (B, heads, T, D): rotate each adjacent channel pair by position * frequency."""
    _, _, seq, dim = x.shape
    freqs = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (D/2,)
    angles = torch.outer(torch.arange(seq, dtype=torch.float32), freqs)  # (T, D/2)
    cos, sin = angles.cos(), angles.sin()
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1).flatten(-2)


class GroupedQueryAttention(nn.Module):
    """softmax(q k^T / sqrt(d) + causal mask) v, with num_kv_heads K/V heads shared by groups of query heads."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.heads, self.kv_heads = config.num_heads, config.num_kv_heads
        self.head_dim, self.theta = config.hidden_size // config.num_heads, config.rope_theta
        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, hidden)
        batch, seq, _ = x.shape
        q = self.q_proj(x).view(batch, seq, self.heads, self.head_dim).transpose(1, 2)  # (B, H, T, D)
        k = self.k_proj(x).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, G, T, D)
        v = self.v_proj(x).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, G, T, D)
        q, k = rotate_pairs(q, self.theta), rotate_pairs(k, self.theta)
        k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)  # (B, H, T, D)
        v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        mask = torch.full((seq, seq), float("-inf"), device=x.device).triu(1)  # 0 on and below the diagonal
        weights = torch.softmax(q @ k.transpose(-2, -1) / self.head_dim**0.5 + mask, dim=-1)  # (B, H, T, T)
        return self.o_proj((weights @ v).transpose(1, 2).reshape(batch, seq, -1))


class SwiGLU(nn.Module):
    """down(silu(gate(x)) * up(x))."""

    def __init__(self, hidden: int, intermediate: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class FullDecoderLayer(DecoderLayer):
    """The skeleton's layer, same forward, with the stubs replaced by the real sublayers."""

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.self_attn = GroupedQueryAttention(config)
        self.mlp = SwiGLU(config.hidden_size, config.intermediate_size)


torch.manual_seed(0)
full = Skeleton(small, FullDecoderLayer).eval()
a, b = torch.tensor([[5, 6, 7, 8]]), torch.tensor([[5, 6, 7, 9]])  # differ in the last token only
c = torch.tensor([[4, 6, 7, 8]])  # differs in the first token only
with torch.no_grad():
    la, lb, lc = full(a), full(b), full(c)
print("causal: positions 0-2 unchanged by the last token:", torch.allclose(la[:, :3], lb[:, :3]))
print("uses context: the first token changes the last logits:", not torch.allclose(la[:, 3], lc[:, 3]))
stub = Skeleton(small).eval()
with torch.no_grad():
    stub_sees_context = not torch.allclose(stub(a)[:, 3], stub(c)[:, 3])
print("the stub skeleton, for contrast: the first token changes the last logits:", stub_sees_context)
# END SOLUTION

# %%
# What the stubs become in the reference
# --------------------------------------
# The reference's :class:`~reference.DecoderLayer` has the same two lines; its sublayers are
# GQA or MLA attention with RoPE and the causal mask, and SwiGLU or MoE. It computes the RoPE
# rotations and the mask once per forward pass, in :meth:`reference.SimpleKimiK2.forward`, and
# hands them to every layer:

print(SimpleKimiK2(Config.tiny()))
