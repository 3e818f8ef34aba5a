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

import inspect
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from reference import Config, DecoderLayer, RMSNorm, SimpleKimiK2, parameter_breakdown

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
#    **Norms** (``input_layernorm``, ``post_attention_layernorm``, final ``norm``; all RMSNorm):
#    rescale the input of each sublayer to a fixed root-mean-square so the sublayer sees inputs
#    of a stable size whatever the depth. They sit *before* each sublayer (pre-norm); the
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
# speed-ups in training on GPUs. What matters at Kimi-K2's scale is that normalisation runs twice
# per layer on every token, and nothing is lost by dropping the mean.
#
# .. BEGIN SOLUTION
#
# .. admonition:: The task sheet says ...
#    :class: warning
#
#    *"Why use RMSNorm instead of LayerNorm? (Hint: training stability, compute.)"*
#
#    In fact the RMSNorm paper's case is **compute**: dropping the re-centring saves one
#    reduction over the hidden dimension and the bias, with quality matching LayerNorm in its
#    experiments. Training **stability** in deep transformers comes mostly from *where* the norm
#    sits, not from which norm it is: pre-norm (normalise the sublayer's input, add its output to
#    an un-normalised residual stream) against the original post-norm (normalise after the
#    residual addition). A pre-norm LayerNorm model is as stable as a pre-norm RMSNorm model.
#
# .. admonition:: Answer: why RMSNorm
#    :class: answer
#
#    * **Compute**: RMSNorm needs one statistic (the mean of squares) instead of two (mean, then
#      variance) and has no bias, so it is cheaper per call and has fewer parameters, for the same
#      quality in practice. Normalisation runs twice per layer on every token, so the saving adds
#      up.
#    * **Why re-centring is not needed**: the useful effect of LayerNorm is the *rescaling*
#      invariance (inputs and weights can grow without changing the output); RMSNorm keeps it.
#    * **Stability** is mostly the pre-norm placement: with ``h = h + f(norm(h))`` the residual
#      path is an identity from the embeddings to the final norm, so gradients reach early layers
#      undiminished, and each sublayer still sees well-scaled inputs. RMSNorm is computed in
#      float32 (the reference casts up and back) because squares of bf16 activations lose
#      precision: that detail, not the choice of RMSNorm over LayerNorm, is the numerical-stability
#      point.
#
# .. END SOLUTION
#
# Pre-norm: where stability comes from
# ------------------------------------
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
# Architecture*) showed that post-norm models have large gradients near the output at
# initialisation and need a learning-rate warm-up to train at all, while pre-norm models train
# without one. That is a property of the *placement*; it holds for LayerNorm and RMSNorm alike.
#
# The code of the block is two lines, one per residual connection:

print(inspect.getsource(DecoderLayer.forward))
