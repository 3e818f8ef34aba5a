r"""
GQA and MLA: two ways to shrink the KV cache
============================================

.. admonition:: Theory exercise 2, second part
   :class: hint

   *Describe GQA: Why compress KV with low-rank? Benefits for memory/inference.*

.. admonition:: The task sheet says ...
   :class: warning

   *"Describe GQA: Why compress KV with low-rank?"*

   In fact GQA (grouped-query attention) does **not** compress anything with a low rank: it
   *shares* each key/value head among a group of query heads. Low-rank compression of keys and
   values is **MLA** (multi-head latent attention, DeepSeek-V2), and MLA is what DeepSeek-V3 and
   Kimi-K2 use. Kimi-K2 has no GQA at all. This page treats both, since the task sheet's skeleton
   (``Config.lesson()``) uses GQA.

When a model generates text, every new token attends to all earlier ones. Recomputing their keys
and values at every step would cost a forward pass over the whole prefix, so they are kept: the
**KV cache**. Its size per token, times the context length, times the number of sequences served
at once, is what fills accelerator memory during inference, and every decoding step reads it all
back. A step also reads the weights it uses; at small batch, reading the weights dominates for a
large mixture of experts, and the cache's share grows with the context and the number of
sequences. Both GQA and MLA attack the cache's size.
"""

import statistics
import time

import matplotlib.pyplot as plt
import torch

from reference import (
    Config,
    KVCache,
    MultiHeadLatentAttention,
    SimpleKimiK2,
    count_activated_parameters,
    count_parameters,
    kv_cache_bytes_per_token,
    kv_cache_numbers_per_token,
    precompute_freqs_cis,
)

torch.manual_seed(0)

# %%
# Grouped-query attention
# -----------------------
# Multi-head attention (MHA) gives every one of the :math:`n_h` query heads its own key and value
# head. GQA keeps :math:`n_h` query heads but only :math:`n_g` key/value heads; query head
# :math:`h` reads key/value head :math:`\lfloor h / (n_h / n_g) \rfloor`. With :math:`n_g = 1` it
# is multi-query attention (MQA). The cache per token and layer shrinks from
# :math:`2 n_h d_h` numbers to :math:`2 n_g d_h`, with every matrix still full rank.
# The lesson config:

lesson = Config.lesson()
group = lesson.num_heads // lesson.num_kv_heads
print(f"{lesson.num_heads} query heads, {lesson.num_kv_heads} K/V heads: each K/V head serves {group} query heads")
for h in range(0, lesson.num_heads, group):
    print(f"  K/V head {h // group}: query heads {h}..{h + group - 1}")

# %%
# Multi-head latent attention
# ---------------------------
# MLA compresses instead of sharing. Each token's hidden state :math:`h_t` is projected *down*
# to a latent :math:`c_t` of width :math:`d_c` (``kv_lora_rank``), normalised, and projected back
# *up* to per-head keys and values:
#
# .. math::
#
#    c_t = \mathrm{RMSNorm}(W^{DKV} h_t), \qquad
#    k^{C}_{t,i} = W^{UK}_i c_t, \qquad v_{t,i} = W^{UV}_i c_t .
#
# Every head's key and value is a linear function of the same small :math:`c_t`: the stacked
# key/value matrix has rank at most :math:`d_c`. That is the low-rank compression.
#
# RoPE cannot go through it: the rotation depends on the position, and it would sit between
# :math:`W^{UK}` and the query, so the two could no longer be merged (see *the absorbed path*
# below). MLA therefore adds a small *decoupled* key :math:`k^R_t = \mathrm{RoPE}(W^{KR} h_t)` of
# width :math:`d^R_h` (``qk_rope_head_dim``), computed once and **shared by all heads**, and
# queries get a matching rotated part. Each head's score is the sum of a content part and a
# position part:
#
# .. math::
#
#    s_{t,j,i} = \frac{q^{C}_{t,i} \cdot k^{C}_{j,i} + q^{R}_{t,i} \cdot k^{R}_{j}}{\sqrt{d_h + d^R_h}} .
#
# The cache holds :math:`c_t` and :math:`k^R_t` only. The widths of DeepSeek-V3 and Kimi-K2:

for cfg in (Config.deepseek_v3(), Config.kimi_k2()):
    print(
        f"{cfg.name:>12}: d_c (kv_lora_rank) {cfg.kv_lora_rank}, d_h^R (qk_rope_head_dim) {cfg.qk_rope_head_dim}, "
        f"per-head key without RoPE {cfg.qk_nope_head_dim}, value {cfg.v_head_dim}, heads {cfg.num_heads}"
    )

# %%
# The KV cache, computed
# ----------------------
# Numbers cached per token and layer, in the formulas of the DeepSeek-V2 report (Table 1), and
# bytes per token over all layers in bf16 (2 bytes a number), from
# :func:`reference.kv_cache_numbers_per_token` and :func:`reference.kv_cache_bytes_per_token`.
# ``mla-expanded`` is what an implementation caches when it expands the latent into full per-head
# keys and values before caching (DeepSeek-V2's original Hugging Face code did this, and so did
# transformers until a change within its 5.x releases), a reminder that MLA saves memory only if
# the cache holds the latent. transformers 5.24, the oldest release this lesson's tests accept,
# caches the latent but expands every cached latent through ``kv_b_proj`` again at each
# decoding step (no absorption): the memory of MLA, at a compute cost per cached token and layer
# of about :math:`2\, d_c\, n_h (d_h + d_v)` FLOPs for that expansion alone, hundreds of times
# MHA's :math:`2\, n_h (d_{qk} + d_v)` for scoring a cached key and weighting its value. MLA does
# not apply to the GQA lesson config. DeepSeek-V3's and Kimi-K2's configs list as many K/V heads
# as query heads, so their ``gqa`` column equals ``mha``: it is what their attention would cache
# without the latent.

schemes = ("mha", "gqa", "mqa", "mla", "mla-expanded")
configs = (Config.lesson(), Config.deepseek_v3(), Config.kimi_k2())
print(f"{'bytes per token (bf16)':>24}" + "".join(f"{s:>14}" for s in schemes))
table = {}
for cfg in configs:
    row = []
    for scheme in schemes:
        try:
            row.append(kv_cache_bytes_per_token(cfg, scheme))
        except ValueError:
            row.append(None)  # MLA schemes of a GQA model
    table[cfg.name] = row
    print(f"{cfg.name:>24}" + "".join(f"{b:>14,}" if b is not None else f"{'-':>14}" for b in row))

for cfg in configs[1:]:
    mha, mla = kv_cache_bytes_per_token(cfg, "mha"), kv_cache_bytes_per_token(cfg, "mla")
    print(f"{cfg.name}: the MLA cache is {mha / mla:.1f} times smaller than MHA's")

kimi = Config.kimi_k2()
context = 128 * 1024
for scheme in ("mha", "mla-expanded", "mla"):
    gib = kv_cache_bytes_per_token(kimi, scheme) * context / 2**30
    print(f"Kimi-K2, one {context:,}-token sequence, {scheme:>12}: {gib:7.2f} GiB of cache")

# %%
# Plotted per layer (numbers per token), on a log scale:

fig, ax = plt.subplots(figsize=(7, 3.6))
width = 0.25
for index, cfg in enumerate(configs):
    values = [
        kv_cache_numbers_per_token(cfg, s) if table[cfg.name][k] is not None else 0 for k, s in enumerate(schemes)
    ]
    bars = ax.bar([k + (index - 1) * width for k in range(len(schemes))], values, width, label=cfg.name)
    ax.bar_label(bars, labels=[f"{v:,}" if v else "" for v in values], fontsize=6, rotation=90, padding=2)
ax.set_xticks(range(len(schemes)), schemes)
ax.set_yscale("log")
ax.set_ylim(top=2e5)
ax.set_ylabel("numbers per token per layer")
ax.set_title("What each layer caches per token")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The absorbed decode path
# ------------------------
# If keys were expanded from the latent at every step, MLA would cost more compute than it saves
# memory. DeepSeek's inference code instead *absorbs* the up-projections into the query and the
# output. For the content part of head :math:`i`,
#
# .. math::
#
#    q^{C}_{t,i} \cdot k^{C}_{j,i} = q^{C}_{t,i} \cdot W^{UK}_i c_j = \big(W^{UK\top}_i q^{C}_{t,i}\big) \cdot c_j ,
#
# so the query is mapped into the latent space once per step and scored directly against the
# cached latents. Likewise the weighted sum of values
# :math:`\sum_j p_{j} W^{UV}_i c_j = W^{UV}_i \sum_j p_j c_j` applies :math:`W^{UV}_i` once, after
# the sum. Nothing per-head is ever materialised for past tokens. The reference implements both
# paths in :class:`reference.MultiHeadLatentAttention`. The absorbed one, included from
# ``reference/mla.py``, is the two equations above, one ``einsum`` each:
#
# .. literalinclude:: ../../reference/mla.py
#    :pyobject: MultiHeadLatentAttention._absorbed
#    :caption: reference/mla.py, MultiHeadLatentAttention._absorbed
#    :dedent:
#
# The naive one expands keys and values first:
#
# .. literalinclude:: ../../reference/mla.py
#    :pyobject: MultiHeadLatentAttention._naive
#    :caption: reference/mla.py, MultiHeadLatentAttention._naive
#    :dedent:
#
# They agree:

cfg = Config.tiny()
attention = MultiHeadLatentAttention(cfg)
x = torch.randn(2, 10, cfg.hidden_size)  # (B, T, hidden)
freqs = precompute_freqs_cis(cfg, 10)
mask = torch.full((10, 10), float("-inf")).triu(1)
with torch.no_grad():
    naive = attention(x, freqs, mask, absorb=False)
    absorbed = attention(x, freqs, mask, absorb=True)
print("naive and absorbed outputs agree:", torch.allclose(naive, absorbed, atol=1e-5))
print("largest difference:", float((naive - absorbed).abs().max()))

# %%
# And the cache of a real generation holds exactly the latent and the rope key, per layer:

model = SimpleKimiK2(cfg).eval()
cache = KVCache(cfg.num_layers)
with torch.no_grad():
    model(torch.tensor([[1, 2, 3, 4]]), cache)
layer0 = cache.layers[0]
print({name: tuple(t.shape) for name, t in layer0.items()}, "(B, T, width)")
print(
    f"numbers per token, all layers: {cache.numbers_per_token()} "
    f"= {cfg.num_layers} x {kv_cache_numbers_per_token(cfg, 'mla')} (kv_lora_rank + qk_rope_head_dim)"
)

# %%
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: GQA, MLA, and what they buy at inference
#    :class: answer
#
#    **GQA** shares each key/value head among a group of query heads. The cache per token and
#    layer falls from :math:`2 n_h d_h` to :math:`2 n_g d_h` numbers (by the group size printed
#    above for the lesson config), the K/V projections shrink by the same factor, and the queries keep all their
#    heads. The cost is some quality: heads in a group can no longer look at different keys.
#
#    **MLA** (the low-rank compression the sheet means) caches one latent of width :math:`d_c`
#    plus one shared rope key of width :math:`d^R_h` per token and layer, independent of the
#    number of heads, and every head still has its own keys and values (expanded from the
#    latent, or absorbed into the query). For DeepSeek-V3 and Kimi-K2 that is a few hundred
#    numbers instead of tens of thousands (the table and the ratios above), with quality that the
#    DeepSeek-V2 report found *better* than MHA's.
#
#    **Benefits for memory and inference**: a smaller cache per token means longer contexts and
#    larger batches fit in memory; decoding one token is bound by reading the cache and the
#    weights, so a smaller cache also means faster steps. The absorbed path keeps MLA's compute
#    per step reasonable by scoring against the latents directly. In training there is no cache;
#    MLA's low-rank query path there mainly saves activation memory.
#
# .. END SOLUTION

# %%
# Decoding, measured
# ------------------
# The cache sizes above are arithmetic; what a decoding step costs has to be measured. Three
# small models of about the same size, each two layers with dense MLPs (so that they differ
# only in their attention), generate tokens after contexts of 256 to 8,192 tokens:
#
# * **MLA, absorbed**: the reference's default when decoding, scoring the query against the
#   cached latents directly;
# * **MLA, naive**: the same model and weights with ``absorb = False`` on every attention, so
#   each step expands every cached latent into per-head keys and values through ``kv_b_proj``,
#   as transformers does (checked in 5.24);
# * **GQA**: the task sheet's attention with 2 K/V heads for 8 query heads.
#
# A step's work depends on how much the cache holds, not on what it holds, so instead of
# prefilling thousands of tokens each layer's cache is filled with random numbers of the shapes
# its attention caches (the latents' scale: an RMS-normalised latent has entries of about 1).
# Each figure is the median CPU time of a few steps on one thread, measured while this page was
# built on a machine that may have been busy with other work: expect tens of percent of noise.

decode_mla = Config.tiny().with_(
    name="MLA", vocab_size=256, hidden_size=256, num_layers=2, num_heads=8, intermediate_size=512,
    q_lora_rank=96, kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32,
    n_routed_experts=0, rope_scaling=None,
)  # fmt: skip
decode_gqa = Config.lesson().with_(
    name="GQA", vocab_size=256, hidden_size=256, num_layers=2, num_heads=8, num_kv_heads=2, head_dim=32,
    intermediate_size=512,
)  # fmt: skip
torch.manual_seed(0)
decoders = {
    "MLA, absorbed": SimpleKimiK2(decode_mla).eval(),
    "MLA, naive": SimpleKimiK2(decode_mla).eval(),
    "GQA": SimpleKimiK2(decode_gqa).eval(),
}
for layer in decoders["MLA, naive"].layers:
    layer.self_attn.absorb = False
decode_configs = {"MLA, absorbed": decode_mla, "MLA, naive": decode_mla, "GQA": decode_gqa}
cache_bytes = {  # float32, 4 bytes a number, all layers
    name: kv_cache_bytes_per_token(c, "mla" if c.attention == "mla" else "gqa", bytes_per_number=4)
    for name, c in decode_configs.items()
}
expanded_bytes = kv_cache_bytes_per_token(decode_mla, "mla-expanded", bytes_per_number=4)
for name, c in decode_configs.items():
    print(f"{name:>14}: {count_parameters(c):,} parameters, cache {cache_bytes[name]:,} bytes per token")
print(f"{'':>14}  the naive path also builds {expanded_bytes:,} bytes per cached token at every step")

# %%
# The clock: a cache made to look like ``context`` tokens, then the median of a few greedy steps.


def filled_cache(model: SimpleKimiK2, context: int) -> KVCache:
    """A cache that looks like ``context`` tokens: one real token shows the shapes, random numbers fill them."""
    cache = KVCache(model.config.num_layers)
    model(torch.zeros(1, 1, dtype=torch.long), cache)
    numbers = torch.Generator().manual_seed(context)
    for store in cache.layers:
        for key, tensor in store.items():
            store[key] = torch.randn(1, context, *tensor.shape[2:], generator=numbers)  # (B, S, ...)
    cache.length = context
    return cache


@torch.no_grad()
def ms_per_token(model: SimpleKimiK2, context: int, steps: int = 7) -> float:
    """Median CPU time of one greedy step after ``context`` cached tokens, after one warm-up step."""
    cache = filled_cache(model, context)
    token = torch.zeros(1, 1, dtype=torch.long)
    times = []
    for step in range(steps + 1):
        start = time.process_time()  # this process's CPU time: other processes barely disturb it
        token = model(token, cache)[:, -1].argmax(dim=-1, keepdim=True)
        if step:
            times.append(time.process_time() - start)
    return 1000 * statistics.median(times)


# %%
# The three models take turns at each context length, so that whatever else the machine was
# doing hit all three alike:

decode_threads = torch.get_num_threads()
torch.set_num_threads(1)
contexts = [256, 512, 1024, 2048, 4096, 8192]
timings = {name: [] for name in decoders}
for context in contexts:
    for name, model in decoders.items():  # interleaved, so that machine noise hits all three alike
        timings[name].append(ms_per_token(model, context))
torch.set_num_threads(decode_threads)

print(f"{'ms per token':>14}" + "".join(f"{c:>7,}" for c in contexts) + f"{'cache bytes/token':>19}")
for name in decoders:
    print(f"{name:>14}" + "".join(f"{t:>7.2f}" for t in timings[name]) + f"{cache_bytes[name]:>19,}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
for name in decoders:
    ax.plot(contexts, timings[name], "o-", label=f"{name} ({cache_bytes[name]:,} cache bytes per token)")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xticks(contexts, [f"{c:,}" for c in contexts])
ax.set_xlabel("context length (tokens already cached)")
ax.set_ylabel("ms per generated token")
ax.set_title("One decoding step, two-layer models, one CPU thread")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# The same numbers as multiples of the absorbed path's step:

print(f"{'x absorbed':>14}" + "".join(f"{c:>7,}" for c in contexts))
for name, t in timings.items():
    print(f"{name:>14}" + "".join(f"{v / a:>7.1f}" for v, a in zip(t, timings["MLA, absorbed"], strict=True)))
for index in (0, len(contexts) - 1):
    fastest = min(timings, key=lambda name: timings[name][index])
    print(f"fastest at {contexts[index]:,} cached tokens: {fastest}")

# %%
# What a step costs has two parts. One does not grow with the context: the projections, the
# MLPs and the LM head, whose weights are read once per token. The other grows with every cached
# token, and there the three attentions differ. The naive path multiplies each cached latent by
# ``kv_b_proj`` again at every step, a matrix product per cached token per layer
# (:math:`2 \cdot d_c \cdot n_h (d_h + d_v)` FLOPs; 2·64·512 here, 2·512·32,768 for DeepSeek-V3).
# GQA reads its two K/V heads and repeats them for the eight query heads. The absorbed path reads
# each latent once for all heads, with :math:`2 n_h (d_c + d^R_h)` FLOPs per cached token for
# the scores and :math:`2 n_h d_c` for the weighted sum. On a CPU, copying the growing cache at
# each step (the reference appends with ``torch.cat``) and allocating memory add to every path.
#
# On an accelerator, where reading memory rather than arithmetic bounds a decoding step, what
# counts is bytes read per step: the cache, and the weights. At a batch of one the weights are
# read once per generated token too, and for a large model they weigh more than the cache until
# the context is long. For Kimi-K2 in bf16 (from :func:`reference.count_activated_parameters`
# and :func:`reference.kv_cache_bytes_per_token`), the bytes of weights one step reads and the
# context at which one sequence's cache would weigh as much:

weight_bytes = 2 * (count_activated_parameters(kimi) - kimi.vocab_size * kimi.hidden_size)  # the embedding: one row
print(f"weights read per generated token: {weight_bytes / 1e9:.1f} GB")
for scheme in ("mla", "mha"):
    per_token = kv_cache_bytes_per_token(kimi, scheme)
    print(f"{scheme} cache: {per_token:,} bytes per token, {weight_bytes / per_token:,.0f} tokens to match the weights")
