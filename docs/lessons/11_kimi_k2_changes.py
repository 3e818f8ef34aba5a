r"""
From DeepSeek-V3 to Kimi-K2: what changed, and why
===================================================

.. admonition:: Beyond the task sheet
   :class: hint

   The sheet calls Kimi-K2 "DeepSeek-V3's architecture". This page says exactly where the two
   differ, gives Moonshot's reasons where a primary source states them and says so where none
   does, and explains three things the published checkpoints hold that the rest of the lesson
   only mentions: DeepSeek-V3's multi-token-prediction layer, the FP8 weights, and the expert
   groups of DeepSeek-V3's routing.

Kimi-K2's ``config.json`` names the same model class as DeepSeek-V3's
(``"architectures": ["DeepseekV3ForCausalLM"]``), and Moonshot's technical report (*Kimi K2:
Open Agentic Intelligence*, arXiv 2507.20534) says the architecture follows DeepSeek-V3's. Every
field of the reference's two presets, compared (they are the published ``config.json`` values;
see :doc:`08_configs`):
"""

import math
from dataclasses import fields

import matplotlib.pyplot as plt
import torch

from reference import (
    Config,
    DecoderLayer,
    Router,
    SimpleKimiK2,
    YaRN,
    count_activated_parameters,
    count_parameters,
    flops_per_token,
    inverse_frequencies,
    kv_cache_bytes_per_token,
    yarn_correction_range,
)
from reference.counting import attention_parameters
from reference.loading import dequantize_fp8, hf_to_reference

torch.manual_seed(0)
v3, k2 = Config.deepseek_v3(), Config.kimi_k2()


def shown(value: object) -> str:
    """A config value for the table; YaRN settings in short."""
    if isinstance(value, YaRN):
        return f"YaRN x{value.factor:g}, beta {value.beta_fast:g}/{value.beta_slow:g}"
    return f"{value:,}" if isinstance(value, int) else str(value)


changed = [f.name for f in fields(Config) if f.compare and getattr(v3, f.name) != getattr(k2, f.name)]
print(f"{'field':>24} {'DeepSeek-V3':>22} {'Kimi-K2':>22}")
for name in changed:
    print(f"{name:>24} {shown(getattr(v3, name)):>22} {shown(getattr(k2, name)):>22}")
for cfg in (v3, k2):
    print(
        f"{cfg.name}: {count_parameters(cfg):,} parameters, {count_activated_parameters(cfg):,} activated per token"
    )

# %%
# ``num_kv_heads`` only repeats ``num_heads`` (MLA has no separate K/V heads). One more
# difference is not a field of the reference's config, because the reference does not build it:
# DeepSeek-V3's ``config.json`` sets ``num_nextn_predict_layers`` to 1, Kimi-K2's to 0 (the
# multi-token-prediction module, below). The sections that follow take the changes one at a
# time.
#
# 64 attention heads instead of 128
# ---------------------------------
# **Moonshot's reason** (Kimi K2 report, section on the model architecture): DeepSeek-V3 set its
# number of heads to about twice its number of layers, to use memory bandwidth better; but the
# heads' cost at inference grows with the context, and long contexts are what the agentic use
# Kimi-K2 was built for needs. In Moonshot's controlled runs, twice as many heads as layers lowered the
# validation loss by only 0.5% to 1.2% against as many heads as layers, which they judged not
# worth the inference cost, so Kimi-K2 has 64.
#
# What the heads cost, computed with :func:`reference.flops_per_token` for Kimi-K2 and for the
# same model with 128 heads (attention over the whole context included):

k2_128 = k2.with_(name="Kimi-K2, 128 heads", num_heads=128, num_kv_heads=128)
contexts = [0, 4096, 16384, 32768, 65536, 131072]
print(f"attention weights per layer: {attention_parameters(k2):,} (64 heads), {attention_parameters(k2_128):,} (128)")
print(f"KV cache per token: {kv_cache_bytes_per_token(k2, 'mla'):,} bytes either way (the latent has no heads)")
print(f"{'context':>8} {'GFLOPs/token, 64 heads':>24} {'128 heads':>10} {'extra':>7}")
extra = []
for context in contexts:
    a, b = flops_per_token(k2, context), flops_per_token(k2_128, context)
    extra.append(100 * (b / a - 1))
    print(f"{context:>8,} {a / 1e9:>24.1f} {b / 1e9:>10.1f} {extra[-1]:>6.0f}%")

fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(contexts[1:], extra[1:], "o-")
ax.set_xscale("log", base=2)
ax.set_xlabel("tokens of context attended to")
ax.set_ylabel("extra FLOPs per token (%)")
ax.set_title("Kimi-K2 with 128 heads instead of 64")
fig.tight_layout()

# %%
# Each head's queries, keys and values over the whole context cost compute per generated token
# in proportion to the context, so the difference grows with it, while MLA's cache, shared by all
# heads, does not change at all. (The report gives its own figure for a 128K context; the one
# above is this lesson's count, with naive MLA's cost per cached key.)
#
# 384 experts: sparsity 48
# ------------------------
# **Moonshot's reason**: a *sparsity scaling law* fitted in their own experiments. With the
# number of *activated* parameters fixed, so the same compute per token, more experts in total
# lowered both training and validation loss. More experts also make training and serving more
# complex, and Moonshot settled on a sparsity (total routed experts over experts used per token)
# of 48:

for cfg in (v3, k2):
    print(
        f"{cfg.name}: {cfg.n_routed_experts} routed experts, {cfg.num_experts_per_tok} per token: "
        f"sparsity {cfg.n_routed_experts // cfg.num_experts_per_tok}; "
        f"{count_parameters(cfg) / count_activated_parameters(cfg):.1f} times more parameters held than used"
    )

# %%
# One dense layer instead of three
# --------------------------------
# DeepSeek-V3 keeps a dense SwiGLU MLP in its first three layers, Kimi-K2 in its first only
# (``first_k_dense_replace``). **No primary source this lesson found gives a reason**, neither
# Moonshot's report and model card for the change nor DeepSeek's report for the three. What the
# change does, computed:

three = k2.with_(first_k_dense_replace=3)
for label, cfg in (("Kimi-K2 as published", k2), ("Kimi-K2 with 3 dense layers", three)):
    print(f"{label:>28}: {count_parameters(cfg):,} parameters, {count_activated_parameters(cfg):,} activated")

# %%
# A dense layer holds about as many weights as one token uses in a MoE layer (one MLP of width
# ``intermediate_size``, against eight experts and the shared one), so trading two dense layers
# for MoE layers adds two layers of experts held and leaves the compute per token almost where it
# was.
#
# No expert groups: group-limited routing was node-limited routing
# ----------------------------------------------------------------
# DeepSeek-V3's router (:doc:`05_moe`) first picks groups: its 256 routed experts form
# ``n_group`` groups, each group is scored by the sum of its two best (biased) affinities, and a
# token may only choose experts in its ``topk_group`` best groups. The V3 report calls this
# *node-limited routing*: in training its experts were spread over 8 nodes (64-way expert
# parallelism across 8 nodes), so the 8 groups are the 8 nodes, and ``topk_group = 4`` sends each
# token to at most 4 of them, which bounds the traffic between machines and let DeepSeek overlap
# that communication with computation. (The group score sums the best
# ``num_experts_per_tok / topk_group`` = 2 affinities of a group, the report's rule.)
#
# Kimi-K2 sets ``n_group = topk_group = 1``: no limit. **No primary source this lesson found says
# why.** What the limit does, on the reference's :class:`~reference.Router` with random
# (untrained) weights: for 2,048 random tokens, how many of 8 nodes do a token's 8 experts sit on
# (for Kimi-K2, with its 384 experts laid out on 8 nodes of 48, to compare)?


def nodes_per_token(cfg: Config, nodes: int = 8, tokens: int = 2048) -> torch.Tensor:
    """How many of ``nodes`` equal blocks of experts each token's chosen experts fall in, ``(tokens,)``."""
    generator = torch.Generator().manual_seed(0)
    router = Router(cfg)
    with torch.no_grad():
        router.weight.normal_(0.0, 0.02, generator=generator)
        _, chosen = router(torch.randn(tokens, cfg.hidden_size, generator=generator))  # (N, k)
    node = chosen // (cfg.n_routed_experts // nodes)  # (N, k)
    return torch.tensor([len(set(row.tolist())) for row in node])


spread = {cfg.name: nodes_per_token(cfg) for cfg in (v3, k2)}
for name, counts in spread.items():
    histogram = torch.bincount(counts, minlength=9)[1:].tolist()
    print(f"{name:>12}: tokens on 1..8 nodes {histogram}; most {int(counts.max())}, mean {counts.float().mean():.2f}")

fig, ax = plt.subplots(figsize=(6, 3.2))
for shift, (name, counts) in zip((-0.2, 0.2), spread.items(), strict=True):
    ax.bar(torch.arange(1, 9) + shift, torch.bincount(counts, minlength=9)[1:], 0.4, label=name)
ax.set_xlabel("nodes a token's experts sit on (of 8)")
ax.set_ylabel("tokens")
ax.set_title("Node-limited routing (DeepSeek-V3) and none (Kimi-K2)")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
# A larger vocabulary, another RoPE base, another YaRN setting
# ------------------------------------------------------------
# Kimi-K2 has its own tokenizer, with a larger vocabulary, and a different ``rope_theta`` and
# YaRN setting. **No primary source this lesson found gives the reasons** for the vocabulary size
# or the RoPE base. What they change, computed:

for cfg in (v3, k2):
    plain = inverse_frequencies(cfg.with_(rope_scaling=None))  # (pairs,) RoPE before YaRN
    original = cfg.rope_scaling.original_max_position_embeddings
    turns = plain * original / (2 * math.pi)  # (pairs,) turns over the pre-training context
    low, high = yarn_correction_range(cfg)
    print(
        f"{cfg.name}: vocabulary {cfg.vocab_size:,}, so embedding + LM head hold "
        f"{2 * cfg.vocab_size * cfg.hidden_size:,} parameters"
    )
    print(
        f"{'':>{len(cfg.name)}}  rope_theta {cfg.rope_theta:,.0f}: slowest pair's wavelength "
        f"{2 * math.pi / float(plain[-1]):,.0f} tokens; {int((turns < 1).sum())} of {len(plain)} pairs turn less "
        f"than once in {original:,} tokens; YaRN factor {cfg.rope_scaling.factor:g}, pairs {low}..{high} blended"
    )

# %%
# A larger base slows every rotary pair but the first, so more of them never complete a turn
# over the pre-training context: YaRN divides those by its factor (:doc:`02_rope`).
#
# Trained with Muon, and QK-Clip
# ------------------------------
# Not a field of the config, but a change Moonshot does explain: DeepSeek-V3 was trained with
# AdamW, Kimi-K2 with the Muon optimiser, and at scale Muon let the attention logits of some
# heads grow without bound. Moonshot's fix, **QK-Clip**, rescales such a head's query and key
# weights after each optimiser step. It is explained, with a demonstration on the reference's
# attention, beside the task sheet's "training stability" hint: the last section of
# :doc:`01_components`.
#
# .. admonition:: Check your understanding
#    :class: hint
#
#    1. Kimi-K2 halves the heads. Why is its KV cache per token exactly as large as DeepSeek-V3's?
#    2. With DeepSeek-V3's groups, how many groups can one token's experts come from?
#    3. Why does Kimi-K2 have fewer activated parameters than DeepSeek-V3, although it holds more
#       experts?
#
# .. BEGIN SOLUTION
#
# .. admonition:: Check your understanding: answers
#    :class: answer
#
#    * *Kimi-K2 halves the heads. Why is its KV cache per token exactly as large as
#      DeepSeek-V3's?* MLA caches one latent of width ``kv_lora_rank`` and one rotary key of width
#      ``qk_rope_head_dim`` per token and layer, shared by all heads; the heads are rebuilt from
#      the latent (or absorbed into the query), so their number does not enter the cache.
#    * *With DeepSeek-V3's groups, how many groups can one token's 8 experts come from?* From 1
#      (each group holds 32 experts) to ``topk_group`` = 4, never more: the histogram above never
#      goes past 4 for DeepSeek-V3.
#    * *Why does Kimi-K2 have fewer activated parameters than DeepSeek-V3 although it holds
#      more experts?* A token uses as many experts in both (``num_experts_per_tok``), so the
#      extra experts are held, not used; and half the heads shrink every layer's attention weights
#      (printed above), which every token uses. The larger vocabulary adds a little back, and the
#      dense layers change almost nothing (printed above).
#
# .. END SOLUTION
#
# The multi-token-prediction layer, ``model.layers.61``
# -----------------------------------------------------
# DeepSeek-V3 was trained to predict, at each position, the next token *and* the one after it.
# The second prediction comes from a small *multi-token-prediction* (MTP) module stacked on the
# main model (V3 report, section 2.2). For position :math:`i`, the module takes the main model's
# last hidden state :math:`h_i` and the embedding of the true next token :math:`t_{i+1}`,
# normalises each, concatenates them and projects back to the model width with a matrix
# :math:`M \in \mathbb{R}^{d \times 2d}`:
#
# .. math::
#
#    h'_i = M \big[\mathrm{RMSNorm}(h_i);\ \mathrm{RMSNorm}(\mathrm{Emb}(t_{i+1}))\big],
#
# then runs one more decoder layer and the main model's output head on :math:`h'_i` to predict
# :math:`t_{i+2}`. The embedding and the output head are shared with the main model. The MTP
# loss is added to the main loss with a weight :math:`\lambda` (0.3 for V3's first 10T tokens,
# 0.1 for the last 4.8T); the report credits it with better main-model quality.
#
# The checkpoint keeps the module as one extra layer after the 61 of the main model: its
# ``README_WEIGHTS.md`` lists ``model.layers.61`` with ``enorm`` and ``hnorm`` (the two norms),
# ``eh_proj`` (:math:`M`), a full decoder layer (``self_attn``, ``mlp``, ...) and
# ``embed_tokens`` and ``shared_head`` (the shared embedding and head, stored again). Its size,
# counted from the reference (one more DeepSeek-V3 MoE decoder layer, built on the meta device):

hidden = v3.hidden_size
with torch.device("meta"):
    mtp_layer = DecoderLayer(v3, v3.num_layers)
mtp_unique = sum(p.numel() for p in mtp_layer.parameters()) + 2 * hidden * hidden + 2 * hidden  # + eh_proj, norms
stored_again = 2 * v3.vocab_size * hidden  # layer 61's copies of the embedding and the head
print(f"MTP module, its own parameters: {mtp_unique / 1e9:.2f} B (decoder layer, eh_proj, enorm, hnorm)")
print(f"with the stored copies of embedding and head: {(mtp_unique + stored_again) / 1e9:.2f} B")
print(f"whole checkpoint: {(count_parameters(v3) + mtp_unique + stored_again) / 1e9:.1f} B parameters")

# %%
# DeepSeek's README gives 685B for the checkpoint on Hugging Face, 671B of main model and 14B of
# MTP module, and ``README_WEIGHTS.md`` 11.5B "unique parameters" for the module: the counts above
# agree up to their rounding.
#
# **Why the reference skips it.** After training the module is not needed: the main model alone
# predicts the next token, and the V3 report says the MTP module can be discarded at inference.
# DeepSeek's own ``inference/convert.py`` skips every tensor of ``model.layers.61``, and so does
# :func:`reference.loading.hf_to_reference`, which returns their names (``from_pretrained`` warns
# that it ignored them). On the small config, with a fake MTP layer added after its 3 layers:

tiny = Config.tiny()
ours_named = SimpleKimiK2(tiny).state_dict()
state = {name if name.startswith("lm_head") else f"model.{name}": tensor for name, tensor in ours_named.items()}
mtp_names = ("enorm.weight", "hnorm.weight", "eh_proj.weight", "self_attn.kv_b_proj.weight")
state |= {f"model.layers.{tiny.num_layers}.{name}": torch.zeros(1) for name in mtp_names}
ours, ignored = hf_to_reference(state, tiny.num_layers, num_mtp_layers=1)
print("ignored:", ignored)
print("the rest loads into the reference model:", SimpleKimiK2(tiny).load_state_dict(ours, strict=True))

# %%
# **How MTP serves speculative decoding.** The module can also *draft* a token. At a decoding
# step the main model emits token :math:`t_{i+1}` from :math:`h_i`; the MTP module, fed
# :math:`h_i` and :math:`t_{i+1}`, drafts :math:`t_{i+2}` at the cost of one layer. The next
# step feeds the main model both :math:`t_{i+1}` and the draft in one forward pass: if the main
# model's own prediction after :math:`t_{i+1}` equals the draft, the draft is accepted and the
# step has produced two tokens; if not, the draft is dropped and the main model's prediction is
# used. With greedy decoding the output is exactly what the main model alone would produce
# (sampling uses an acceptance rule that keeps the main model's distribution); only the number
# of forward passes changes. With a draft accepted with probability :math:`p`, a step
# yields :math:`1 + p` tokens on average. The V3 report measured an acceptance rate of 85% to 90%
# for the second token and 1.8 times the tokens per second:

for p in (0.85, 0.90):
    print(f"acceptance {p:.0%}: {1 + p:.2f} tokens per main-model step")

# %%
# The measured 1.8 is below :math:`1 + p`: a step that verifies a draft costs more than a plain
# one (it processes two positions and runs the MTP layer). Kimi-K2's checkpoint has no MTP layer
# (``num_nextn_predict_layers`` 0), and the sources this lesson found do not say whether MTP
# was used in its training.
#
# FP8 weights, and why the reference dequantises them
# ---------------------------------------------------
# Both checkpoints store their large weight matrices in **FP8**: ``float8_e4m3fn``, 1 sign bit,
# 4 exponent bits and 3 mantissa bits, one byte per weight (DeepSeek-V3's
# ``README_WEIGHTS.md``; Kimi-K2's README says its checkpoints are "block-fp8" too). DeepSeek-V3
# was trained with FP8 matrix products (V3 report, section 3.3), which is why DeepSeek ships only
# FP8 weights. Three mantissa bits are coarse and e4m3 reaches only a few hundred, so each
# weight matrix is cut into **128 x 128 blocks** and every block gets its own scale: the
# checkpoint stores the FP8 values and, next to each weight ``W``, a float32 tensor
# ``W_scale_inv`` with one number per block, and
#
# .. math::
#
#    W_{rc} = W^{\mathrm{fp8}}_{rc} \cdot s_{\lfloor r/128 \rfloor, \lfloor c/128 \rfloor} .
#
# The reference applies it when it loads a checkpoint (included from ``reference/loading.py``):
#
# .. literalinclude:: ../../reference/loading.py
#    :pyobject: dequantize_fp8
#    :caption: reference/loading.py, dequantize_fp8
#
# Why per block: one scale has to fit the largest value it covers, and e4m3 spans only a limited
# range below its largest number before values lose their precision (below the smallest normal
# number) or become zero. A weight matrix whose 128 x 128 blocks differ in magnitude (made up
# here: the blocks' typical sizes spread over five orders of magnitude), quantised both ways
# and dequantised with the reference's :func:`~reference.loading.dequantize_fp8`:

e4m3 = torch.finfo(torch.float8_e4m3fn)
print(f"float8_e4m3fn: largest {e4m3.max:g}, smallest normal {e4m3.smallest_normal:g}, spacing above 1: {e4m3.eps:g}")
generator = torch.Generator().manual_seed(0)
magnitude = 10.0 ** -torch.randint(0, 6, (4, 4), generator=generator).float()  # (4, 4): one size per block
weight = torch.randn(512, 512, generator=generator) * magnitude.repeat_interleave(128, 0).repeat_interleave(128, 1)


def quantise(w: torch.Tensor, block: int) -> tuple[torch.Tensor, torch.Tensor]:
    """FP8 values and one float32 scale per ``block x block`` tile, its largest value mapped to e4m3's max."""
    tiles = w.unflatten(0, (-1, block)).unflatten(2, (-1, block))  # (R/b, b, C/b, b)
    scale = tiles.abs().amax(dim=(1, 3)) / e4m3.max  # (R/b, C/b)
    values = (tiles / scale[:, None, :, None]).flatten(2).flatten(0, 1).to(torch.float8_e4m3fn)
    return values, scale


print(f"{'typical size of the block':>34}" + "".join(f"{m:>9.0e}" for m in sorted(set(magnitude.flatten().tolist()))))
for label, block in (("one scale per 128 x 128 block", 128), ("one scale for the whole matrix", 512)):
    values, scale = quantise(weight, block)
    back = dequantize_fp8({"w": values, "w_scale_inv": scale}, (block, block))["w"]
    relative = ((back - weight).abs() / weight.abs()).unflatten(0, (4, 128)).unflatten(2, (4, 128)).mean(dim=(1, 3))
    errors = [float(relative[magnitude == m].mean()) for m in sorted(set(magnitude.flatten().tolist()))]
    print(f"{label:>34}" + "".join(f"{100 * e:>8.1f}%" for e in errors))

# %%
# With one scale for the whole matrix the small blocks fall below e4m3's normal range and lose
# most of their digits, or all of them; with one scale per block every block keeps e4m3's few
# percent. (DeepSeek's code quantises the *activations* too, on the fly, with one scale per token
# and 128 channels.)
#
# **Why** :mod:`reference.loading` **dequantises**: the FP8 numbers are not the weights until
# each is multiplied by its block's scale, and a plain PyTorch product knows nothing of the
# scales. DeepSeek's own ``inference/model.py`` has the same choice in its ``linear``: either
# dequantise the weight and run a bf16 product, or quantise the activations and call
# ``fp8_gemm``, a Triton GPU kernel that multiplies in FP8, applies both sets of block scales and
# accumulates in float32. The reference is plain PyTorch, meant to be read and to run on a CPU,
# so it dequantises once, at loading, and every product afterwards is an ordinary one. What plain
# products do with FP8 tensors, on the machine that built this page:

x = torch.randn(4, 512)
values, scale = quantise(weight, 128)
try:
    torch.nn.functional.linear(x, values)
except RuntimeError as error:
    print("float32 activations times FP8 weights:", str(error).splitlines()[0])
product = x.to(torch.float8_e4m3fn) @ values.T
print("FP8 times FP8 gives", product.dtype, "(every output rounded to e4m3, and none scaled)")
print(
    "all of Kimi-K2's parameters at 1, 2 and 4 bytes each (FP8, bf16, float32): "
    + ", ".join(f"{count_parameters(k2) * size / 1e12:.2f} TB" for size in (1, 2, 4))
)
