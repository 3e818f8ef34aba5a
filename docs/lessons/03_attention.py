r"""
Attention: the formula, the causal mask, the scale
==================================================

.. admonition:: Theory exercise 3: mathematical task
   :class: hint

   *Write the attention formula with scaling and causal mask. For a sequence of length 4, sketch
   the mask matrix (1s below diagonal, -inf above).*

.. caution::

   The task sheet's description of the mask in parentheses contains an error. Part of this
   exercise is to find it: think about what the token at position 2 may look at.

Attention lets each position gather information from other positions. A decoder-only language
model predicts the next token, so position :math:`i` may use positions :math:`j \le i` and never
the future: that is the causal mask.
"""

import matplotlib.pyplot as plt
import torch

from reference import causal_mask, scaled_dot_product_attention

torch.manual_seed(0)

# %%
# The pieces
# ----------
# Queries :math:`Q \in \mathbb{R}^{T \times d_k}`, keys :math:`K \in \mathbb{R}^{S \times d_k}`
# and values :math:`V \in \mathbb{R}^{S \times d_v}` are linear projections of the (normalised)
# hidden states, one set per head. The reference writes attention out in
# :func:`reference.scaled_dot_product_attention`; it matches PyTorch's fused kernel:

q, k, v = torch.randn(1, 2, 4, 16), torch.randn(1, 2, 4, 16), torch.randn(1, 2, 4, 16)  # (B, H, T, D)
mask = causal_mask(4)
ours = scaled_dot_product_attention(q, k, v, mask, scale=16**-0.5)
fused = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
print("reference == torch's fused kernel:", torch.allclose(ours, fused, atol=1e-6))

# %%
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: the formula
#    :class: answer
#
#    .. math::
#
#       \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V,
#       \qquad
#       M_{ij} = \begin{cases} 0 & j \le i \\ -\infty & j > i \end{cases}
#
#    The softmax is taken over each row (over the keys :math:`j`). Since
#    :math:`e^{-\infty} = 0`, the masked entries get exactly zero weight, and each row of weights
#    still sums to 1 over the allowed positions. With several heads, each head computes this with
#    its own projections and the outputs are concatenated and projected by :math:`W_O`.
#
# .. admonition:: The task sheet says ...
#    :class: warning
#
#    *"Sketch the mask matrix (1s below diagonal, -inf above)."*
#
#    In fact **the diagonal is kept**: a token attends to itself (without it, position 0 would
#    have nothing to attend to at all, and its softmax row would be all :math:`-\infty`). The mask
#    has two conventions, and the sheet mixes them:
#
#    * **additive** (added to the scores): :math:`0` on and below the diagonal, :math:`-\infty`
#      strictly above;
#    * **boolean keep-mask** (selects the scores to keep): 1 (True) on and below the diagonal,
#      0 (False) above.
#
#    Read literally, "1s below, -inf above" is an additive mask with 1 instead of 0. That would
#    still work: adding the same constant to every kept score of a row does not change the softmax
#    (:math:`e^{s+1} / \sum e^{s'+1} = e^{s} / \sum e^{s'}`), as long as the diagonal gets the
#    same value as the entries below it.
#
# .. END SOLUTION
#
# The 4 x 4 mask, printed from :func:`reference.causal_mask` in both conventions. Rows are
# queries (positions 0 to 3), columns are keys.

# BEGIN SOLUTION
print("additive mask (added to the scores):")
print(causal_mask(4, kind="additive"))
print("boolean keep-mask (1 = may attend):")
print(causal_mask(4, kind="bool").int())

keep = causal_mask(4, kind="bool")  # (4, 4)
additive = causal_mask(4)  # (4, 4)
panels = (
    ("keep-mask: 1 on and below the diagonal", [[str(int(x)) for x in row] for row in keep]),
    ("additive: 0 kept, -inf masked", [["0" if x == 0 else "-inf" for x in row] for row in additive]),
)
fig, axes = plt.subplots(1, 2, figsize=(7, 3.2))
for axis, (title, labels) in zip(axes, panels, strict=True):
    axis.imshow(keep.float(), cmap="Greens", vmin=0, vmax=1.4)  # green: may attend
    for i in range(4):
        for j in range(4):
            axis.text(j, i, labels[i][j], ha="center", va="center", fontsize=11)
    axis.set_xticks(range(4), [f"key {j}" for j in range(4)], fontsize=7)
    axis.set_yticks(range(4), [f"query {i}" for i in range(4)], fontsize=7)
    axis.set_title(title, fontsize=9)
fig.tight_layout()
# END SOLUTION

# %%
# .. BEGIN SOLUTION
#
# The mask in action: the rows of attention weights for random scores. Masked entries get weight
# exactly 0 and every row sums to 1.
#
# .. END SOLUTION

# BEGIN SOLUTION
scores = torch.randn(4, 4)
weights = torch.softmax(scores + causal_mask(4), dim=-1)
print(weights)
print("row sums:", weights.sum(-1))
# END SOLUTION

# %%
# Why divide by :math:`\sqrt{d_k}`
# --------------------------------
# If the entries of a query and a key are independent with mean 0 and variance 1, their dot
# product :math:`q \cdot k = \sum_{i=1}^{d_k} q_i k_i` has mean 0 and variance :math:`d_k`. Its
# typical size grows like :math:`\sqrt{d_k}`. Fed to a softmax, scores that large make it
# *saturate*: almost all the weight goes to the largest score, and the gradient of the softmax,
# :math:`\partial p_i / \partial s_j = p_i(\delta_{ij} - p_j)`, vanishes. Dividing by
# :math:`\sqrt{d_k}` brings the variance back to 1 whatever the head width. Measured over
# random queries and keys:

head_dims = [16, 64, 128, 192, 512, 2048]
keys = 64
max_weight = {"unscaled": [], "scaled by 1/sqrt(d_k)": []}
gradient = {"unscaled": [], "scaled by 1/sqrt(d_k)": []}
for d in head_dims:
    q = torch.randn(256, d)
    k = torch.randn(keys, d)
    raw = q @ k.T  # (256, keys) scores
    for name, s in (("unscaled", raw), ("scaled by 1/sqrt(d_k)", raw / d**0.5)):
        p = torch.softmax(s, dim=-1)
        max_weight[name].append(float(p.max(-1).values.mean()))
        # Size of the softmax Jacobian diag(p) - p p^T, averaged over queries: how much signal
        # flows back to the scores.
        jac = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
        gradient[name].append(float(jac.norm(dim=(-2, -1)).mean()))
    print(f"d_k = {d:>4}: std of unscaled scores {raw.std():6.2f}, of scaled scores {(raw / d**0.5).std():.2f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
for name in max_weight:
    left.plot(head_dims, max_weight[name], "o-", label=name)
    right.plot(head_dims, gradient[name], "o-", label=name)
left.set_title(f"largest softmax weight (of {keys} keys)")
right.set_title("size of the softmax Jacobian")
for axis in (left, right):
    axis.set_xscale("log", base=2)
    axis.set_xlabel("head width d_k")
    axis.legend(fontsize=8)
right.set_yscale("log")
fig.tight_layout()

# %%
# Unscaled, the largest weight climbs towards 1 (one key takes everything) and the Jacobian,
# the signal that trains the queries and keys, collapses by orders of magnitude. Scaled, both
# stay flat. DeepSeek-V3 and Kimi-K2 attend with
# :math:`d_k` = ``qk_nope_head_dim + qk_rope_head_dim`` per head (channels without and with
# RoPE), and their YaRN setting multiplies the scale by a further factor: see
# :doc:`02_rope`.
