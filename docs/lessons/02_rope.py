r"""
RoPE: position as a rotation
============================

.. admonition:: Theory exercise 2, first part
   :class: hint

   *Explain RoPE: How does rotation encode relative positions? Contrast with absolute positional
   embeddings.*

Attention compares a query with keys by a dot product, and a dot product alone does not know
where the tokens are. Rotary position embeddings (RoPE, Su et al., 2021) put the position into
the query and the key themselves, by rotating them, in a way that makes their dot product depend
only on how far apart they are.
"""

import math

import matplotlib.pyplot as plt
import torch

from reference import (
    Config,
    apply_rope,
    inverse_frequencies,
    precompute_freqs_cis,
    softmax_scale,
    yarn_correction_range,
    yarn_get_mscale,
)

torch.manual_seed(0)

# %%
# The construction
# ----------------
# Split a query or key of width :math:`d` into :math:`d/2` adjacent pairs
# :math:`(x_{2i}, x_{2i+1})` and read each pair as a complex number
# :math:`x_i = x_{2i} + \mathrm{i}\,x_{2i+1}`. At position :math:`m`, rotate pair :math:`i` by the
# angle :math:`m\theta_i`, with one frequency per pair:
#
# .. math::
#
#    \tilde{x}^{(m)}_i = x_i\, e^{\mathrm{i} m \theta_i}, \qquad \theta_i = b^{-2i/d},
#
# where :math:`b` is ``rope_theta`` (printed for each model below). Early pairs turn
# fast (:math:`\theta_0 = 1` radian per token), late pairs turn slowly. These are the frequencies
# of the lesson config, computed by :func:`reference.inverse_frequencies`:

lesson = Config.lesson()
theta = inverse_frequencies(lesson)  # (d/2,)
print(f"{len(theta)} pairs; theta_0 = {theta[0]:.4g} rad/token, theta_last = {theta[-1]:.3g} rad/token")
print(f"wavelengths from {2 * math.pi / theta[0]:.3g} to {2 * math.pi / theta[-1]:,.0f} tokens")

# %%
# The reference computes the rotations once per forward pass and applies them to a query or key
# as complex multiplications, exactly the formula above (both functions included from
# ``reference/rope.py``):
#
# .. literalinclude:: ../../reference/rope.py
#    :pyobject: precompute_freqs_cis
#    :caption: reference/rope.py, precompute_freqs_cis
#
# .. literalinclude:: ../../reference/rope.py
#    :pyobject: apply_rope
#    :caption: reference/rope.py, apply_rope
#
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: why the score depends only on the offset
#    :class: answer
#
#    The real dot product of two vectors written as complex pairs is
#    :math:`q \cdot k = \mathrm{Re}\sum_i q_i \overline{k_i}`. Rotate the query at position
#    :math:`m` and the key at position :math:`n`:
#
#    .. math::
#
#       \tilde{q}^{(m)} \cdot \tilde{k}^{(n)}
#       = \mathrm{Re}\sum_i q_i e^{\mathrm{i} m\theta_i}\, \overline{k_i e^{\mathrm{i} n\theta_i}}
#       = \mathrm{Re}\sum_i q_i \overline{k_i}\, e^{\mathrm{i}(m-n)\theta_i} .
#
#    The absolute positions cancel: only :math:`m - n` is left. Each pair contributes its
#    content term :math:`q_i\overline{k_i}` turned by the offset times its frequency, so the fast
#    pairs resolve nearby offsets and the slow pairs far ones. Rotations also keep norms, so RoPE
#    changes no vector's length, only the angles between queries and keys.
#
#    **Against absolute position embeddings** (the original Transformer's sinusoids, GPT-2's
#    learned table): a vector :math:`p_m` is *added* to the token embedding once, at the input.
#    The score then contains cross terms such as :math:`x_m^\top W_Q^\top W_K p_n` that depend on
#    the absolute positions, so the model must *learn* to extract relative distance from them, and
#    a learned table has no entry beyond the longest training position. RoPE acts in every
#    attention layer, on queries and keys only (values carry no position), and makes relative
#    position exact by construction. What lets YaRN stretch it to longer contexts is not that it
#    has a formula for every position (the sinusoids have one too) but its per-frequency
#    structure: the score is a sum of one term per channel pair, each turned by the offset times
#    that pair's own frequency, so the frequencies can be changed pair by pair (the slow ones
#    interpolated, the fast ones kept, below) and every score is still a function of the offset
#    alone.
#
# .. END SOLUTION
#
# A numerical check
# -----------------
# Take one query and one key. Place them at many pairs of positions with the same offset and
# compare the scores, using the reference's :func:`~reference.apply_rope` (DeepSeek's
# adjacent-pair layout).

head_dim = lesson.rope_dim
q = torch.randn(1, 1, 1, head_dim)  # (B, T, H, D)
k = torch.randn(1, 1, 1, head_dim)
positions = 2048
freqs = precompute_freqs_cis(lesson, positions)  # (T, D/2) complex rotations


def rotated(x: torch.Tensor, position: int) -> torch.Tensor:
    """``x`` as it would be at ``position``: one rotation per channel pair."""
    return apply_rope(x, freqs[position : position + 1])


def score(m: int, n: int) -> float:
    """The dot product of the query at position ``m`` and the key at position ``n``."""
    return float((rotated(q, m) * rotated(k, n)).sum())


for offset in (0, 1, 7, 100):
    scores = [score(n + offset, n) for n in (0, 13, 500, 1900)]
    spread = max(scores) - min(scores)
    print(f"offset {offset:>3}: scores at four absolute positions {[f'{s:+.5f}' for s in scores]}, spread {spread:.1e}")
print("norm kept by the rotation:", torch.allclose(rotated(q, 1234).norm(), q.norm()))

# %%
# The four scores for each offset agree to float32 rounding, wherever the pair sits. Now the same
# query and key with an *added* absolute sinusoidal embedding instead (the original
# Transformer's): the score depends on where the pair is, not only on the offset.


def sinusoid(position: int, dim: int) -> torch.Tensor:
    """The original Transformer's absolute position vector for ``position``."""
    i = torch.arange(0, dim, 2, dtype=torch.float32)
    angles = position / 10000 ** (i / dim)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten()  # (dim,)


def absolute_score(m: int, n: int) -> float:
    return float(((q.flatten() + sinusoid(m, head_dim)) * (k.flatten() + sinusoid(n, head_dim))).sum())


offsets = range(0, 64)
fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), sharey=False)
for start in (0, 300, 1500):
    left.plot(offsets, [score(start + o, start) for o in offsets], label=f"query at {start} + offset")
    right.plot(offsets, [absolute_score(start + o, start) for o in offsets], label=f"query at {start} + offset")
left.set_title("RoPE: curves coincide")
right.set_title("added absolute embedding: they do not")
for axis in (left, right):
    axis.set_xlabel("offset m - n")
    axis.legend(fontsize=7)
left.set_ylabel("q . k")
fig.tight_layout()

# %%
# With RoPE the three curves lie exactly on top of each other: the score is a function of the
# offset alone. With the added embedding they differ.
#
# Two layouts of the same rotation
# --------------------------------
# Which channels form a pair is a convention. DeepSeek's code and checkpoints pair *adjacent*
# channels :math:`(x_{2i}, x_{2i+1})`, as above. Many implementations, transformers' among them,
# pair channel :math:`i` with channel :math:`i + d/2` and write the rotation with
# ``rotate_half``:
#
# .. math::
#
#    \mathrm{RoPE}(x) = x \odot [\cos m\theta; \cos m\theta]
#    + \mathrm{rotate\_half}(x) \odot [\sin m\theta; \sin m\theta],
#
#    \mathrm{rotate\_half}([x_1; x_2]) = [-x_2; x_1] .
#
# The two agree once the channels are reordered, evens first, then odds. For DeepSeek-V3
# checkpoints transformers uses ``apply_rotary_pos_emb_interleave``, which computes exactly that:
# it rotates the even and odd channels as pairs and returns them evens first, then odds (queries
# and keys alike, so the scores are unchanged). Applied to adjacent-pair weights without the
# reordering, ``rotate_half`` rotates the
# wrong pairs at the wrong frequencies: the scores still depend only on the offset, but they are
# not the scores the model was trained with.


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """transformers' helper: ``[x1; x2] -> [-x2; x1]`` over the last dimension."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


def rope_half_split(x: torch.Tensor, position: int) -> torch.Tensor:
    """RoPE in the half-split layout: channel ``i`` pairs with channel ``i + d/2``."""
    angles = position * torch.cat((theta, theta))  # (D,)
    return x * angles.cos() + rotate_half(x) * angles.sin()


deinterleave = torch.cat((torch.arange(0, head_dim, 2), torch.arange(1, head_dim, 2)))  # evens, then odds
same_vectors = torch.allclose(rope_half_split(q[..., deinterleave], 700), rotated(q, 700)[..., deinterleave], atol=1e-5)
print("half-split RoPE on reordered channels == adjacent-pair RoPE, reordered:", same_vectors)
for m, n in ((5, 0), (700, 695), (1900, 1000)):
    adjacent = score(m, n)
    reordered = float((rope_half_split(q[..., deinterleave], m) * rope_half_split(k[..., deinterleave], n)).sum())
    not_reordered = float((rope_half_split(q, m) * rope_half_split(k, n)).sum())
    print(
        f"score({m}, {n}): adjacent pairs {adjacent:+.5f}, rotate_half after reordering {reordered:+.5f}, "
        f"rotate_half on adjacent-pair channels {not_reordered:+.5f}"
    )

# %%
# YaRN: the same rotations, stretched
# -----------------------------------
# DeepSeek-V3 and Kimi-K2 were pre-trained with a short context
# (``original_max_position_embeddings``, printed below) and then extended with YaRN (Peng et al.,
# 2023). YaRN divides the frequencies of the slow pairs (whose wavelength is
# longer than the original context, so they never completed a turn in training) by the extension
# ``factor``, leaves the fast pairs alone, and blends linearly over a *correction range* of pair
# indices between them. The range is computed over the rotated width (``qk_rope_head_dim``) and
# the **original** context length. In MLA only the ``qk_rope_head_dim`` channels of each head are
# rotated; the other ``qk_nope_head_dim`` carry no position (see :doc:`04_gqa_vs_mla`).
#
# In YaRN's terms a pair that completes :math:`r` turns over the original context :math:`L` has
# :math:`L \theta_i / 2\pi = r`; solving :math:`\theta_i = b^{-2i/d}` for :math:`i` gives the
# pair index of a given :math:`r`, and ``beta_fast`` and ``beta_slow`` are the two values of
# :math:`r` that bound the ramp. The reference, included from ``reference/rope.py``:
#
# .. literalinclude:: ../../reference/rope.py
#    :pyobject: yarn_find_correction_dim
#    :caption: reference/rope.py, yarn_find_correction_dim
#
# .. literalinclude:: ../../reference/rope.py
#    :pyobject: yarn_correction_range
#    :caption: reference/rope.py, yarn_correction_range
#
# .. literalinclude:: ../../reference/rope.py
#    :pyobject: inverse_frequencies
#    :caption: reference/rope.py, inverse_frequencies

for cfg in (Config.deepseek_v3(), Config.kimi_k2()):
    yarn = cfg.rope_scaling
    low, high = yarn_correction_range(cfg)
    mscale = yarn_get_mscale(yarn.factor, yarn.mscale_all_dim)
    print(
        f"{cfg.name:>12}: rope_theta {cfg.rope_theta:>8,.0f}, "
        f"pre-trained context {yarn.original_max_position_embeddings:,}, "
        f"factor {yarn.factor:g}, beta_fast {yarn.beta_fast:g}, "
        f"beta_slow {yarn.beta_slow:g} -> correction range {low}..{high} of {cfg.rope_dim // 2} pairs; "
        f"mscale {mscale:.6f}; softmax scale {softmax_scale(cfg):.6f} "
        f"(plain 1/sqrt({cfg.qk_head_dim}) = {cfg.qk_head_dim**-0.5:.6f})"
    )

fig, ax = plt.subplots(figsize=(6.5, 3.6))
for cfg, style in ((Config.deepseek_v3(), "-"), (Config.kimi_k2(), "--")):
    plain = inverse_frequencies(cfg.with_(rope_scaling=None))
    ratio = inverse_frequencies(cfg) / plain
    ax.plot(range(len(ratio)), ratio, style, marker=".", label=f"{cfg.name} (factor {cfg.rope_scaling.factor:g})")
    low, high = yarn_correction_range(cfg)
    ax.axvspan(low, high, alpha=0.12, color="C0" if style == "-" else "C1")
ax.set_yscale("log")
ax.set_xlabel("rotary pair index i (0 = fastest)")
ax.set_ylabel("YaRN frequency / RoPE frequency")
ax.set_title("YaRN keeps fast pairs, divides slow ones by the factor")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The shaded bands are the correction ranges. Kimi-K2's ``beta_fast = beta_slow = 1`` collapses
# the ramp to a step: a pair is either kept or fully interpolated. YaRN also sharpens the
# softmax: the attention scale :math:`1/\sqrt{d_{qk}}` is multiplied by ``mscale`` squared,
# printed above (see :doc:`03_attention` for what the scale does):
#
# .. literalinclude:: ../../reference/rope.py
#    :pyobject: softmax_scale
#    :caption: reference/rope.py, softmax_scale

