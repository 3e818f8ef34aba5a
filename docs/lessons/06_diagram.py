r"""
The architecture, drawn by code
===============================

.. admonition:: Code task 2: diagram reproduction
   :class: hint

   *In code or drawing tool, recreate the ASCII diagram. Add labels for residual connections and
   where RoPE is applied.*

The worked answer draws the diagrams with matplotlib from a :class:`~reference.Config`: the layer
counts, widths and expert numbers in the boxes are read from the config, so the same function
draws the task sheet's skeleton and the real Kimi-K2. Data flows from the bottom (token ids) to
the top (logits), as in the reference's :mod:`reference.model` docstring.
"""

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from reference import Config

# BEGIN SOLUTION
COLOURS = {
    "io": "#eeeeee",
    "embed": "#cfe2f3",
    "norm": "#fff2cc",
    "attn": "#f4cccc",
    "mlp": "#d9ead3",
    "head": "#d9d2e9",
}


def box(ax, x: float, y: float, text: str, kind: str, width: float = 4.3, height: float = 0.62) -> None:
    """A rounded box centred on (x, y)."""
    patch = FancyBboxPatch(
        (x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.04", fc=COLOURS[kind], ec="#444444", lw=1
    )
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=7.5)


def arrow(ax, start: tuple[float, float], end: tuple[float, float], color: str = "#333333") -> None:
    """A straight arrow from ``start`` to ``end``."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, lw=1, color=color))


def residual(ax, x: float, y_from: float, y_to: float, label: str) -> None:
    """A residual connection: leaves the stream at ``y_from``, rejoins it at the sum at ``y_to``."""
    right = x + 2.7
    ax.plot([x, right, right], [y_from, y_from, y_to], color="#1f5fbf", lw=1.4)
    arrow(ax, (right, y_to), (x + 0.22, y_to), color="#1f5fbf")
    ax.text(right + 0.08, (y_from + y_to) / 2, label, fontsize=7, color="#1f5fbf", va="center", rotation=90)


def add(ax, x: float, y: float) -> None:
    """The sum node where a residual rejoins the stream."""
    ax.add_patch(plt.Circle((x, y), 0.2, fc="white", ec="#1f5fbf", lw=1.4))
    ax.text(x, y, "+", ha="center", va="center", fontsize=10, color="#1f5fbf")


def rope_marker(ax, x: float, y: float, text: str) -> None:
    """Where RoPE is applied: an orange tag pointing at the attention box."""
    ax.annotate(
        text,
        xy=(x - 2.15, y),
        xytext=(x - 4.6, y),
        fontsize=7,
        color="#b45f06",
        ha="center",
        va="center",
        bbox={"boxstyle": "round", "fc": "#fce5cd", "ec": "#b45f06"},
        arrowprops={"arrowstyle": "-|>", "color": "#b45f06"},
    )


def draw(ax, cfg: Config) -> None:
    """The data flow of ``cfg``'s model, embeddings to logits, with residuals and RoPE marked."""
    x = 0.0
    H, V, L = cfg.hidden_size, cfg.vocab_size, cfg.num_layers
    if cfg.attention == "mla":
        attention = (
            f"self_attn: MLA, {cfg.num_heads} heads\n"
            f"q: {H} -> {cfg.q_lora_rank} -> heads x ({cfg.qk_nope_head_dim} + {cfg.qk_rope_head_dim} rope)\n"
            f"kv: {H} -> latent {cfg.kv_lora_rank} (+ shared rope key {cfg.qk_rope_head_dim})"
        )
        rope = f"RoPE: on q's {cfg.qk_rope_head_dim} rope\nchannels per head and\non the one shared rope key"
    else:
        heads = f"{cfg.num_heads} query heads,\n{cfg.num_kv_heads} K/V heads of width {cfg.gqa_head_dim}"
        attention = f"self_attn: GQA, {heads}, causal mask"
        rope = "RoPE: on q and k\n(after the projections,\nbefore the scores)"
    if cfg.n_routed_experts:
        dense = cfg.first_k_dense_replace
        mlp = (
            f"mlp, layers {dense}..{L - 1}: MoE\n"
            f"router (sigmoid, top {cfg.num_experts_per_tok} of {cfg.n_routed_experts})"
            f"\n+ {cfg.n_shared_experts} shared expert, always on\n"
            f"layer{'s 0..' + str(dense - 1) if dense > 1 else ' 0'}: dense SwiGLU {H} -> {cfg.intermediate_size}"
        )
    else:
        mlp = f"mlp: dense SwiGLU\n{H} -> {cfg.intermediate_size} -> {H}"
    steps = [
        (0.0, "input_ids (B, T)", "io"),
        (1.0, f"embed_tokens: {V:,} x {H}\n-> hidden states h (B, T, {H})", "embed"),
        (2.6, "input_layernorm (RMSNorm)", "norm"),
        (3.75, attention, "attn"),
        (5.4, "post_attention_layernorm (RMSNorm)", "norm"),
        (6.55, mlp, "mlp"),
        (8.6, "norm (final RMSNorm)", "norm"),
        (9.6, f"lm_head: {H} -> {V:,}", "head"),
        (10.6, f"logits (B, T, {V:,})", "io"),
    ]
    for y, text, kind in steps:
        tall = text.count("\n") + 1
        box(ax, x, y, text, kind, height=0.3 + 0.24 * tall)
    # the residual stream: a straight line through the layer, with the two sums on it
    for y_from, y_to in (
        (0.3, 0.6),
        (1.4, 2.3),
        (2.9, 3.3),
        (4.2, 4.55),
        (4.95, 5.15),
        (5.65, 6.05),
        (7.1, 7.6),
        (8.0, 8.35),
        (8.85, 9.35),
        (9.85, 10.35),
    ):
        arrow(ax, (x, y_from), (x, y_to))
    add(ax, x, 4.75)
    add(ax, x, 7.8)
    residual(ax, x, 1.9, 4.75, "residual 1: h + attn(norm(h))")
    residual(ax, x, 5.0, 7.8, "residual 2: h + mlp(norm(h))")
    rope_marker(ax, x, 3.75, rope)
    # the decoder layer, repeated num_layers times
    frame = FancyBboxPatch((x - 2.6, 1.75), 5.9, 6.35, boxstyle="round,pad=0.05", fc="none", ec="#888888", ls="--")
    ax.add_patch(frame)
    ax.text(x - 4.6, 6.6, f"DecoderLayer x {L}\n(dashed frame,\npre-norm)", fontsize=8, ha="center", style="italic")
    ax.set_xlim(-6.4, 3.9)
    ax.set_ylim(-0.5, 11.1)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(cfg.name, fontsize=10)


# END SOLUTION

# %%
# The task sheet's skeleton
# -------------------------
# ``Config.lesson()``: GQA attention and a dense SwiGLU MLP in every layer.

# BEGIN SOLUTION
fig, ax = plt.subplots(figsize=(7.5, 8.2))
draw(ax, Config.lesson())
fig.tight_layout()
# END SOLUTION

# %%
# Kimi-K2
# -------
# The same skeleton with multi-head latent attention, and a mixture of experts in every layer
# but the first (``first_k_dense_replace``). RoPE acts on a part of each query head and on one
# key shared by all heads; the rest of the query and key carries no position (see
# :doc:`04_gqa_vs_mla`).

# BEGIN SOLUTION
fig, ax = plt.subplots(figsize=(7.5, 8.2))
draw(ax, Config.kimi_k2())
fig.tight_layout()
# END SOLUTION

# %%
# What to notice
# --------------
#
# .. BEGIN SOLUTION
#
# * Two residual connections per layer, both around a *normalised* sublayer: the stream itself
#   (the vertical line) is normalised only once, by the final norm before the LM head.
# * RoPE sits inside attention, on queries and keys, after their projections. It never touches
#   the embeddings, the values or the MLP.
# * Everything but attention works on each position separately.
#
# .. END SOLUTION
