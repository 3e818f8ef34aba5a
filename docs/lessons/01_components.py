r"""
The components, and RMSNorm against LayerNorm
==============================================

.. admonition:: Theory exercise 1: component breakdown
   :class: hint

   *List and explain the role of each major component in Kimi-K2 (embeddings, attention,
   MoE/MLP, norms, LM head). Why use RMSNorm instead of LayerNorm? (Hint: training stability,
   compute.)*

A language model of this family turns a sequence of token ids into, for every position, a score
for every possible next token. Five kinds of parts do that. We look at them in a small model of
exactly Kimi-K2's shape (``Config.tiny()``: the same parts, millisecond-sized), then take the
norm apart.
"""

import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from reference import (
    Config,
    MultiHeadLatentAttention,
    RMSNorm,
    SimpleKimiK2,
    causal_mask,
    parameter_breakdown,
    precompute_freqs_cis,
)

torch.manual_seed(0)
cfg = Config.tiny()
model = SimpleKimiK2(cfg)

# %%
# The parts, as the reference names them
# --------------------------------------
# The module tree below is printed from the model itself. The names are the ones Hugging Face
# uses for DeepSeek-V3 and Kimi-K2 checkpoints, so a published ``model.safetensors`` index
# reads the same way.

for name, module in model.named_children():
    if isinstance(module, nn.ModuleList):
        print(f"{name}: {len(module)} x {type(module[0]).__name__}")
        for index in (0, len(module) - 1):
            layer = module[index]
            print(f"  [{index}]", ", ".join(f"{n}={type(m).__name__}" for n, m in layer.named_children()))
    else:
        print(f"{name}: {type(module).__name__}")

# %%
# Layer 0 has a dense ``SwiGLU`` MLP and the later layers a mixture of experts (``MoE``), because
# ``first_k_dense_replace`` keeps the first layer(s) dense, as in Kimi-K2. Where the parameters
# sit, for the real Kimi-K2 (computed in closed form by :func:`reference.parameter_breakdown`,
# which the tests check against the model built on PyTorch's meta device):

kimi = Config.kimi_k2()
breakdown = parameter_breakdown(kimi)
total = sum(breakdown.values())
for part, count in breakdown.items():
    print(f"{part:>15} {count:>17,} {100 * count / total:6.2f} %")
print(f"{'total':>15} {total:>17,}")

# %%
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: the role of each component
#    :class: answer
#
#    **Embeddings** (``embed_tokens``): a lookup table with one learned vector of width
#    ``hidden_size`` per token id. They turn discrete ids into the continuous *residual stream*
#    that every later block reads from and adds to.
#
#    **Attention** (``self_attn``): the only place where positions exchange information. Each
#    position builds a query, compares it with the keys of itself and all earlier positions
#    (causal mask), and takes a weighted average of their values. RoPE inside attention makes the
#    comparison depend on relative position. Kimi-K2 uses multi-head *latent* attention (MLA),
#    which caches a small latent per token instead of full keys and values.
#
#    **MLP / MoE** (``mlp``): applied to each position on its own; it is where most of the
#    parameters, and most of the model's stored knowledge, live. The first layer is a dense
#    SwiGLU MLP; every other layer is a mixture of experts: a router sends each token to a few
#    of its hundreds of small SwiGLU experts, and one shared expert sees every token. So the parameters grow
#    with the number of experts while the compute per token does not.
#
#    **Norms** (``input_layernorm``, ``post_attention_layernorm``, final ``norm``, and inside
#    MLA ``q_a_layernorm`` and ``kv_a_layernorm`` on the query and key/value latents; all
#    RMSNorm): rescale the input of each sublayer to a fixed root-mean-square so the sublayer sees
#    inputs of a stable size whatever the depth. They sit *before* each sublayer (pre-norm); the
#    residual stream itself is never normalised until the final norm.
#
#    **LM head** (``lm_head``): a linear map from the final hidden state to one score (logit)
#    per vocabulary entry; a softmax over them gives the next-token distribution. Kimi-K2 does
#    not tie it to the embedding matrix.
#
# .. END SOLUTION
#
# LayerNorm and RMSNorm
# ---------------------
# For a vector :math:`x \in \mathbb{R}^d`, LayerNorm re-centres and rescales, then applies a
# gain :math:`g` and a bias :math:`b`:
#
# .. math::
#
#    \mathrm{LayerNorm}(x) = \frac{x - \mu}{\sqrt{\sigma^2 + \epsilon}} \odot g + b,
#    \qquad \mu = \frac{1}{d}\sum_i x_i, \quad \sigma^2 = \frac{1}{d}\sum_i (x_i - \mu)^2 .
#
# RMSNorm (Zhang and Sennrich, 2019) drops the mean and the bias and divides by the root mean
# square:
#
# .. math::
#
#    \mathrm{RMSNorm}(x) = \frac{x}{\sqrt{\frac{1}{d}\sum_i x_i^2 + \epsilon}} \odot g .
#
# When the mean of :math:`x` is zero the two agree (up to the bias). A numerical check with the
# reference :class:`~reference.RMSNorm`:

x = torch.randn(4, 4096)
rms = RMSNorm(4096, eps=1e-6)
layer_norm = nn.LayerNorm(4096, eps=1e-6, elementwise_affine=False)
centred = x - x.mean(-1, keepdim=True)
print("same output on zero-mean input:", torch.allclose(rms(centred), layer_norm(centred), atol=1e-5))
print("same output on shifted input:  ", torch.allclose(rms(x + 3.0), layer_norm(x + 3.0), atol=1e-5))

# %%
# The reference's ``forward``, included here from ``reference/norm.py``:
#
# .. literalinclude:: ../../reference/norm.py
#    :pyobject: RMSNorm.forward
#    :caption: reference/norm.py, RMSNorm.forward
#    :dedent:
#
# It takes the mean of squares in float32 whatever the input's type. The reason is not overflow:
# bfloat16 (bf16), the type these models run in, has float32's exponent range. It is precision:
# bf16 keeps an 8-bit significand, so once a running sum is large, adding one more small square
# changes nothing. Summing the squares of one token of Kimi-K2's width one by one, rounding to
# bf16 after each addition as a bf16 accumulator would:

print(f"largest bf16 {torch.finfo(torch.bfloat16).max:.4g}, largest float32 {torch.finfo(torch.float32).max:.4g}")
print(f"bf16 spacing just above 1: {torch.finfo(torch.bfloat16).eps} (float32: {torch.finfo(torch.float32).eps:.3g})")
token = torch.randn(Config.kimi_k2().hidden_size)
running = torch.zeros((), dtype=torch.bfloat16)
for square in token.pow(2).bfloat16():
    running = running + square  # bf16 + bf16: rounded to bf16
print(
    f"mean of {token.numel():,} squares: float64 {token.double().pow(2).mean():.4f}, "
    f"accumulated in bf16 {float(running) / token.numel():.4f}"
)
activations = token.bfloat16()[None]  # (1, hidden): one bf16 activation
exact = activations.double() * torch.rsqrt(activations.double().pow(2).mean(-1, keepdim=True) + 1e-6)
best = exact.bfloat16()  # the float64 result, rounded once to bf16: the best a bf16 output can be
for name, output in (
    ("reference RMSNorm", RMSNorm(token.numel())(activations)),
    ("F.rms_norm on the bf16 tensor", F.rms_norm(activations, (token.numel(),), eps=1e-6)),
):
    print(f"{name}: {100 * float((output.bfloat16() == best).float().mean()):.1f}% of outputs equal the best bf16")

# %%
# The bf16 sum stops growing once each new square is smaller than half the spacing of bf16
# numbers near the sum. The reference therefore casts up and back, as transformers'
# ``DeepseekV3RMSNorm`` does. DeepSeek's own ``inference/model.py`` hands the bf16 tensor to
# ``F.rms_norm`` as it is; the last two lines show that PyTorch's kernel, on the machine that
# built this page, accumulates in higher precision itself: both outputs are the correctly
# rounded result.
#
# What RMSNorm drops is one reduction (the mean) and one parameter vector (the bias). To compare
# the algorithms and not two implementations, we time each one twice: written out in plain
# tensor operations (the same style for both), and through PyTorch's own kernels
# (``F.layer_norm`` and ``F.rms_norm``). Activations have Kimi-K2's width; the times were
# measured on the machine that built this page, on one thread, best of several repeats, float32.


def layer_norm_written_out(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """LayerNorm without gain and bias: two reductions (mean, then variance)."""
    centred = x - x.mean(-1, keepdim=True)  # (N, d)
    return centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + eps)


def rms_norm_written_out(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm without gain: one reduction (mean of squares)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def best_time(function, argument: torch.Tensor, repeats: int = 25) -> float:
    """The fastest of ``repeats`` calls, in milliseconds (the least disturbed by other work)."""
    function(argument)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


width = kimi.hidden_size
candidates = {
    "LayerNorm, written out": layer_norm_written_out,
    "RMSNorm, written out": rms_norm_written_out,
    "LayerNorm, F.layer_norm": lambda x: F.layer_norm(x, (width,), eps=1e-6),
    "RMSNorm, F.rms_norm": lambda x: F.rms_norm(x, (width,), eps=1e-6),
}
token_counts = [16, 64, 256]
threads = torch.get_num_threads()
torch.set_num_threads(1)  # one thread: steadier timings when other work shares the machine
with torch.no_grad():
    inputs = {n: torch.randn(n, width) for n in token_counts}
    timings = {name: [best_time(f, inputs[n]) for n in token_counts] for name, f in candidates.items()}
torch.set_num_threads(threads)

print(f"{'milliseconds':>24}" + "".join(f"{n:>9} tok" for n in token_counts))
for name, row in timings.items():
    print(f"{name:>24}" + "".join(f"{t:13.3f}" for t in row))
for kind in ("written out", "F.*_norm"):
    ln = timings["LayerNorm, written out" if kind == "written out" else "LayerNorm, F.layer_norm"]
    rn = timings["RMSNorm, written out" if kind == "written out" else "RMSNorm, F.rms_norm"]
    print(f"RMSNorm time / LayerNorm time, {kind}: " + ", ".join(f"{r / l:.2f}" for r, l in zip(rn, ln, strict=True)))

fig, ax = plt.subplots(figsize=(6, 3.5))
for (name, row), style in zip(timings.items(), ["o--", "o-", "s--", "s-"], strict=True):
    ax.plot(token_counts, row, style, label=name)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("tokens")
ax.set_ylabel("milliseconds (log)")
ax.set_title(f"Normalising {width}-wide activations on the build machine")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# Written out the same way, RMSNorm does less work: no subtraction and one reduction fewer, and
# the first ratio printed above shows it. The fused kernels do each in one pass over memory, so
# their difference is smaller, and on a CPU shared with other work a single measurement can even
# invert it: these are the numbers of one build, not a law. The RMSNorm paper measured 7% to 64%
# speed-ups in training on GPUs. What matters at Kimi-K2's scale is that every token passes
# through a norm several times per layer, and nothing is lost by dropping the mean. Counted on the
# reference model (the small one built at the top has Kimi-K2's layer structure):

norms = [name for name, module in model.layers[-1].named_modules() if isinstance(module, RMSNorm)]
print(f"RMSNorms in one MLA + MoE layer: {len(norms)}: {', '.join(norms)}")
print(f"Kimi-K2: {kimi.num_layers} layers x {len(norms)} + the final norm = {kimi.num_layers * len(norms) + 1}")

# %%
# .. BEGIN SOLUTION
#
# .. admonition:: The task sheet says ...
#    :class: warning
#
#    *"Why use RMSNorm instead of LayerNorm? (Hint: training stability, compute.)"*
#
#    In fact the RMSNorm paper's case is **compute**: dropping the re-centring saves one
#    reduction over the hidden dimension and the bias, with quality matching LayerNorm in its
#    experiments. It does not claim that RMSNorm trains more stably than LayerNorm. What the
#    literature ties to training **stability** is *where* the norm sits: pre-norm (normalise the
#    sublayer's input, add its output to an un-normalised residual stream) against the original
#    post-norm (normalise after the residual addition), which Xiong et al. (2020) analyse for
#    LayerNorm; their argument rests on where the norm sits and on its output having a fixed
#    scale, which RMSNorm's output has too. And neither choice makes a
#    large model train stably by itself: Kimi-K2, pre-norm with RMSNorm, still needed QK-Clip
#    against exploding attention logits (last section of this page).
#
# .. admonition:: Answer: why RMSNorm
#    :class: answer
#
#    * **Compute**: RMSNorm needs one statistic (the mean of squares) instead of two (mean, then
#      variance) and has no bias, so it is cheaper per call and has fewer parameters, for the same
#      quality in practice. Every token passes through several norms per layer (counted
#      above), so the saving adds up.
#    * **Why re-centring is not needed**: the useful effect of LayerNorm is the *rescaling*
#      invariance (inputs and weights can grow without changing the output); RMSNorm keeps it.
#    * **Stability** has more to do with the pre-norm placement than with the choice of norm:
#      with ``h = h + f(norm(h))`` the residual path is an identity from the embeddings to the
#      final norm, so gradients reach early layers through it, and each sublayer still sees
#      well-scaled inputs. Xiong et al. (2020) found such pre-norm models trained without a
#      learning-rate warm-up comparable to post-norm ones trained with one (DeepSeek-V3 still
#      warms up, over its first 2,000 steps). The numerical detail is precision: RMSNorm's mean
#      of squares is taken in float32 (the reference casts up and back), because bf16 has an
#      8-bit significand and loses the small terms of a long sum (nothing overflows: bf16 has
#      float32's exponent range).
#
# .. END SOLUTION
#
# Pre-norm: what the placement does for the gradients
# ---------------------------------------------------
# The reference's decoder layer (:class:`reference.DecoderLayer`) is *pre-norm*:
#
# .. math::
#
#    h_{l+1} = h_l + F_l(\mathrm{RMSNorm}(h_l)),
#    \qquad\text{so}\qquad
#    \frac{\partial h_L}{\partial h_l} = I + \sum_{k=l}^{L-1} \frac{\partial F_k(\mathrm{RMSNorm}(h_k))}{\partial h_l} .
#
# The identity term carries the gradient from the loss to every layer unchanged, however deep the
# stack. The original Transformer was *post-norm*, :math:`h_{l+1} = \mathrm{Norm}(h_l + F_l(h_l))`:
# there the gradient to layer :math:`l` must pass through every later norm's Jacobian, with no
# identity path around them. Xiong et al. (2020, *On Layer Normalization in the Transformer
# Architecture*) showed with mean-field theory that at initialisation a post-norm model's
# expected gradients near the output are large, so a large learning rate makes its training
# unstable and a learning-rate warm-up is practically helpful; a pre-norm model's gradients are
# well-behaved, and their pre-norm models trained without a warm-up reached results comparable to
# the warmed-up baselines. Their analysis is of the *placement*: it is written for LayerNorm, and
# rests on where the norm sits and on its output having a fixed scale, which RMSNorm's output has
# too. In practice warm-up stayed: DeepSeek-V3, pre-norm, raises its learning rate linearly over
# its first 2,000 steps.
#
# The code of the block is two lines, one per residual connection (included from
# ``reference/model.py``):
#
# .. literalinclude:: ../../reference/model.py
#    :pyobject: DecoderLayer.forward
#    :caption: reference/model.py, DecoderLayer.forward
#    :dedent:


# %%
# Kimi-K2's stability fix: QK-Clip
# --------------------------------
# Pre-norm does not make a trillion-parameter model train stably on its own. Kimi-K2 was trained
# with Muon, an optimiser that orthogonalises the update of each weight matrix, and the Kimi K2
# technical report (arXiv 2507.20534, section 2.1) describes what went wrong when Muon was scaled
# up: the attention *logits*, the scaled scores :math:`q \cdot k / \sqrt{d}` that enter the
# softmax, kept growing in some heads. Logits that large saturate the softmax (see
# :doc:`03_attention`) and can make the loss spike. The report's fix, **QK-Clip** (with Muon it
# forms *MuonClip*), leaves the model unchanged and acts on the weights after each optimiser step:
# for every head :math:`h`, take the largest logit :math:`S^h_{\max}` of the step's batch and, if
# it exceeds a threshold :math:`\tau`, shrink that head's query and key weights by
#
# .. math::
#
#    \gamma_h = \min\!\left(1, \frac{\tau}{S^h_{\max}}\right).
#
# In MLA a head's logit has a content part and a position part,
# :math:`q^C_h \cdot k^C_h + q^R_h \cdot k^R` (see :doc:`04_gqa_vs_mla`). The clip multiplies the
# head's content query and content key by :math:`\sqrt{\gamma_h}` each and its rotary query by
# :math:`\gamma_h`, and leaves the rotary key :math:`k^R` alone, because every head shares it:
# both parts, hence every logit of the head, shrink by exactly :math:`\gamma_h`. The report sets
# :math:`\tau = 100` for Kimi-K2 and says that QK-Norm, the usual remedy, does not fit MLA,
# whose keys are never materialised at inference (the absorbed path of :doc:`04_gqa_vs_mla`;
# later work, arXiv 2606.16310, argues that it can be made to fit).
#
# A demonstration on the reference's :class:`~reference.MultiHeadLatentAttention`, in the small
# config. Muon is not run here: two heads' query and key weights are scaled up by hand, to stand
# for the growth the report describes; then the clip is applied to the reference's own weights,
# ``q_b_proj`` (per head: content rows, then rotary rows) and ``kv_b_proj`` (per head: content-key
# rows, then value rows).

TAU = 100.0
small = Config.tiny()
heads, nope, rope_dim, v_dim = small.num_heads, small.qk_nope_head_dim, small.qk_rope_head_dim, small.v_head_dim
attention = MultiHeadLatentAttention(small)
seq = 32
batch = torch.randn(4, seq, small.hidden_size)  # (B, T, hidden)
rotations, mask = precompute_freqs_cis(small, seq), causal_mask(seq)


def head_logits(attention: MultiHeadLatentAttention, x: torch.Tensor) -> torch.Tensor:
    """Every head's masked logits ``(B, H, T, S)``, from the reference's own query and latent code."""
    q_content, q_rotary = attention.queries(x, rotations)  # (B, T, H, nope), (B, T, H, rope)
    latent, k_rotary = attention.latents(x, rotations)  # (B, S, C), (B, S, rope): what the cache holds
    k_content = attention.kv_b_proj(latent).view(*latent.shape[:2], heads, nope + v_dim)[..., :nope]
    content = torch.einsum("bthd,bshd->bhts", q_content, k_content)
    position = torch.einsum("bthr,bsr->bhts", q_rotary, k_rotary)  # one rotary key for all heads
    return (content + position) * attention.scale + mask


def max_logits(attention: MultiHeadLatentAttention, x: torch.Tensor) -> torch.Tensor:
    """The largest logit of every head, S^h_max, ``(H,)``."""
    return head_logits(attention, x).amax(dim=(0, 2, 3))


@torch.no_grad()
def qk_clip(attention: MultiHeadLatentAttention, s_max: torch.Tensor, tau: float) -> torch.Tensor:
    """QK-Clip for MLA, in place: returns gamma ``(H,)``; the shared rotary key is not touched."""
    gamma = (tau / s_max).clamp(max=1.0)  # (H,)
    q_rows = attention.q_b_proj.weight.view(heads, nope + rope_dim, -1)  # (H, nope + rope, q_lora_rank)
    kv_rows = attention.kv_b_proj.weight.view(heads, nope + v_dim, -1)  # (H, nope + v, kv_lora_rank)
    q_rows[:, :nope] *= gamma.sqrt()[:, None, None]  # content query
    q_rows[:, nope:] *= gamma[:, None, None]  # rotary query
    kv_rows[:, :nope] *= gamma.sqrt()[:, None, None]  # content key (the value rows stay)
    return gamma


with torch.no_grad():
    at_init = max_logits(attention, batch)
    grown = {0: 60.0, 2: 30.0}  # head -> factor on its query and key weights
    for head, factor in grown.items():
        attention.q_b_proj.weight.view(heads, nope + rope_dim, -1)[head] *= factor
        attention.kv_b_proj.weight.view(heads, nope + v_dim, -1)[head, :nope] *= factor
    before = max_logits(attention, batch)
    peak_before = head_logits(attention, batch).softmax(-1).amax(-1).mean(dim=(0, 2))  # (H,)
    gamma = qk_clip(attention, before, TAU)
    after = max_logits(attention, batch)
    peak_after = head_logits(attention, batch).softmax(-1).amax(-1).mean(dim=(0, 2))
print("largest logit per head: at init, grown, gamma, after the clip; mean top attention weight: grown -> clipped")
for head in range(heads):
    print(
        f"head {head}: {at_init[head]:6.2f} {before[head]:8.1f} {gamma[head]:7.4f} {after[head]:7.2f};"
        f"   {peak_before[head]:.3f} -> {peak_after[head]:.3f}"
    )

fig, ax = plt.subplots(figsize=(6, 3.4))
positions = torch.arange(heads)
ax.bar(positions - 0.2, before, 0.4, label="grown (before the clip)")
ax.bar(positions + 0.2, after, 0.4, label="after QK-Clip")
ax.axhline(TAU, color="grey", ls=":", label=f"tau = {TAU:g}")
ax.set_yscale("log")
ax.set_xticks(positions, [f"head {h}" for h in range(heads)])
ax.set_ylabel("largest logit of the head")
ax.set_title("QK-Clip on the reference's MLA: clipped heads land on tau")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The two grown heads end exactly at :math:`\tau`; the others, below it, are not touched. The
# clipped heads' attention stays sharp (a logit of 100 still dominates a softmax), but bounded: in
# training, a step that pushes a head past :math:`\tau` is followed by a clip back to it. No
# other weight of the layer changes: not the value rows, not the shared rotary key. With Muon and
# QK-Clip, the report says, Kimi-K2 was pre-trained on 15.5 trillion tokens without a single loss
# spike.
