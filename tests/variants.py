"""Fixture submissions made from ``submissions/alice`` (full marks) with one change each, for the grader's tests.

``WRONG`` are models that look right and are not: each must lose the points of its mistake, and only those.
``FAIR`` are correct models written under another common convention: each must keep full marks. Every change
is a text edit of alice's files, written out here so that a reader sees what the case is; ``make`` checks that
each edit applies, so a change to alice cannot silently turn a case into a copy of her.
"""

from __future__ import annotations

import io
import shutil
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

ALICE = Path(__file__).resolve().parents[1] / "submissions" / "alice"

ROTATE_HALF = '''def rope(x: torch.Tensor, theta: float) -> torch.Tensor:
    """Rotate each channel i of x (B, heads, T, D) with channel i + D/2 (the rotate_half layout)."""
    _, _, seq, dim = x.shape
    freqs = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)  # (D/2,)
    angles = torch.outer(torch.arange(seq, dtype=torch.float32), freqs).repeat(1, 2)  # (T, D)
    first, second = x.chunk(2, dim=-1)
    return x * angles.cos() + torch.cat((-second, first), dim=-1) * angles.sin()
'''

MLA_STUB = '''import torch
from torch import nn


class MultiHeadLatentAttention(nn.Module):
    """The right shapes and no computation: zeros out, one zero per token cached."""

    def __init__(self, hidden_size, num_heads, head_dim, kv_lora_rank):
        super().__init__()

    def forward(self, x):
        return torch.zeros_like(x), torch.zeros(x.shape[0], x.shape[1], 1)
'''

# alice's q, k and v projections fused into one, split after it.
FUSED_QKV = (
    (
        "        self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)\n"
        "        self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)\n",
        "",
    ),
    (
        "self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=False)",
        "self.qkv_proj = nn.Linear(\n"
        "            config.hidden_size, (self.heads + 2 * self.kv_heads) * self.head_dim, bias=False\n"
        "        )",
    ),
    (
        "        q = self.q_proj(x).view(",
        "        sizes = [self.heads * self.head_dim] + [self.kv_heads * self.head_dim] * 2\n"
        "        q, k, v = self.qkv_proj(x).split(sizes, dim=-1)\n"
        "        q = q.view(",
    ),
    ("k = self.k_proj(x).view(", "k = k.view("),
    ("v = self.v_proj(x).view(", "v = v.view("),
)
# RoPE's frequencies theta^(-i/d) for pair i instead of theta^(-2i/d): rotations still, at the wrong speeds.
SLOW_ROPE = (
    "freqs = theta ** (-torch.arange(0, dim, 2, dtype=torch.float32) / dim)",
    "freqs = theta ** (-torch.arange(dim // 2, dtype=torch.float32) / dim)",
)

# Meta's Llama names for the same modules (tok_embeddings, attention.wq, feed_forward.w1, ...).
LLAMA_NAMES = {
    "embed_tokens": "tok_embeddings",
    "layers": "blocks",
    "self_attn": "attention",
    "q_proj": "wq",
    "k_proj": "wk",
    "v_proj": "wv",
    "o_proj": "wo",
    "mlp": "feed_forward",
    "gate_proj": "w1",
    "up_proj": "w3",
    "down_proj": "w2",
    "input_layernorm": "attention_norm",
    "post_attention_layernorm": "ffn_norm",
    "norm": "final_norm",
    "lm_head": "output",
    "weight": "gain",
}


@dataclass(frozen=True)
class Variant:
    """alice with ``edits`` ((old, new) per file, each old text present exactly once), then ``names`` renamed."""

    what: str
    edits: dict[str, tuple[tuple[str, str], ...]]
    names: dict[str, str] = field(default_factory=dict)


WRONG = {
    "no_rope": Variant(
        "RoPE forgotten; causal attention otherwise right",
        {"model.py": (("        q, k = rope(q, self.theta), rope(k, self.theta)\n", ""),)},
    ),
    "no_scale": Variant(
        "no 1/sqrt(d_k) softmax scale",
        {
            "model.py": (
                ("scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)", "scores = q @ k.transpose(-2, -1)"),
            )
        },
    ),
    "detached": Variant(
        "sublayers cut off from the gradient: the same forward pass, but attention and MLP never learn",
        {
            "model.py": (
                (
                    "self.self_attn(self.input_layernorm(hidden))",
                    "self.self_attn(self.input_layernorm(hidden)).detach()",
                ),
                (
                    "self.mlp(self.post_attention_layernorm(hidden))",
                    "self.mlp(self.post_attention_layernorm(hidden)).detach()",
                ),
            )
        },
    ),
    "mla_stub": Variant("an MLA stub of the right shapes that computes nothing", {"mla.py": ((None, MLA_STUB),)}),
    "short_logits": Variant(
        "logits one vocabulary entry short: the wrong shape, which no weight or convention can fix",
        {"model.py": (("return self.lm_head(self.norm(hidden))", "return self.lm_head(self.norm(hidden))[..., :-1]"),)},
    ),
    "rope_frequencies": Variant(
        "RoPE's frequencies off by the factor 2 in the exponent: position still reaches attention, wrongly",
        {"model.py": (SLOW_ROPE,)},
    ),
    "fused_rope_frequencies": Variant(
        "the same with a fused q/k/v projection, whose layout the grader guessed: a person decides",
        {"model.py": (*FUSED_QKV, SLOW_ROPE)},
    ),
    "unmappable": Variant(
        "K and V kept as raw (in, out) matrices used as x @ W: the right count, but no layout the grader knows",
        {
            "model.py": (
                (
                    "self.k_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)",
                    "self.k_proj = nn.Parameter(torch.randn(config.hidden_size, self.kv_heads * self.head_dim))",
                ),
                (
                    "self.v_proj = nn.Linear(config.hidden_size, self.kv_heads * self.head_dim, bias=False)",
                    "self.v_proj = nn.Parameter(torch.randn(config.hidden_size, self.kv_heads * self.head_dim))",
                ),
                ("k = self.k_proj(x).view(", "k = (x @ self.k_proj).view("),
                ("v = self.v_proj(x).view(", "v = (x @ self.v_proj).view("),
            )
        },
    ),
}

FAIR = {
    "other_names": Variant(
        "Llama's module names, and modules registered in another order than they are called",
        {
            "model.py": (
                (
                    "        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=False)\n",
                    "",
                ),
                (
                    "        self.o_proj = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=False)\n",
                    "        self.o_proj = nn.Linear(self.heads * self.head_dim, config.hidden_size, bias=False)\n"
                    "        self.q_proj = nn.Linear(config.hidden_size, self.heads * self.head_dim, bias=False)\n",
                ),
                (
                    "        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)\n",
                    "",
                ),
                (
                    "        self.mlp = MLP(config)\n",
                    "        self.mlp = MLP(config)\n"
                    "        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)\n",
                ),
                (
                    "        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)\n",
                    "",
                ),
                (
                    "        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)\n",
                    "        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)\n"
                    "        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)\n",
                ),
            )
        },
        LLAMA_NAMES,
    ),
    "sheet_scale": Variant(
        "the task sheet's RMSNorm, whose gain is named scale, not weight",
        {},
        {"weight": "scale"},
    ),
    "fused_qkv": Variant("q, k and v from one fused projection, split after it", {"model.py": FUSED_QKV}),
    "rotate_half": Variant(
        "RoPE on the two halves of each head (rotate_half) instead of adjacent pairs",
        {"model.py": (("SPLIT rope", ROTATE_HALF),)},
    ),
    "strided": Variant(
        "query head h reads KV head h % num_kv_heads (k.repeat) instead of contiguous groups",
        {
            "model.py": (
                (
                    "k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)",
                    "k = k.repeat(1, self.heads // self.kv_heads, 1, 1)",
                ),
                (
                    "v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)",
                    "v = v.repeat(1, self.heads // self.kv_heads, 1, 1)",
                ),
            )
        },
    ),
}

VARIANTS = {**WRONG, **FAIR}


def rename(source: str, names: dict[str, str]) -> str:
    """``source`` with each name token in ``names`` replaced (strings and comments untouched)."""
    tokens = [
        t._replace(string=names[t.string]) if t.type == tokenize.NAME and t.string in names else t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
    ]
    return tokenize.untokenize(tokens)


def function_source(source: str, name: str) -> str:
    """The text of the top-level function ``name`` in ``source``, from its ``def`` to the next blank lines."""
    start = source.index(f"def {name}(")
    return source[start : source.index("\n\n\n", start) + 1]


def make(kind: str, folder: Path) -> Path:
    """Write the fixture submission ``kind`` (a key of VARIANTS) into ``folder``: alice's files, edited."""
    variant = VARIANTS[kind]
    shutil.copytree(ALICE, folder)
    for name, edits in variant.edits.items():
        path = folder / name
        text = path.read_text(encoding="utf-8")
        for old, new in edits:
            if old is None:  # the whole file
                text = new
                continue
            if old.startswith("SPLIT "):  # a whole top-level function
                old = function_source(text, old.removeprefix("SPLIT "))
            assert text.count(old) == 1, f"{kind}: {old!r} is not in {name} exactly once"
            text = text.replace(old, new)
        path.write_text(rename(text, variant.names) if variant.names else text, encoding="utf-8")
    return folder
