r"""
A tiny Kimi-K2, trained while you read
======================================

The other pages take the model apart. This one trains it. While the site was being built, a
Kimi-K2 small enough for a laptop's CPU (multi-head latent attention with both latents, a dense
first layer, then mixture-of-experts layers with a sigmoid router, a shared expert and the
correction bias) learned to predict text. It is the reference's own code, the same classes that
describe the 1T-parameter model, only with smaller numbers in its :class:`~reference.Config`.

Three questions get a measured answer:

1. Does it learn at all? The loss curve.
2. What happens to the experts' load without balancing, with DeepSeek-V3's bias update, and
   with an auxiliary loss instead? On the MoE page (:doc:`05_moe`) a router with frozen weights
   was simulated; here the router trains with the rest of the model.
3. Does the place of the norm matter, before each sublayer (pre-norm, as in Kimi-K2) or after
   each residual addition (post-norm, as in the original Transformer), in a deeper stack?

Every number in the text below was computed by this run. The run is seeded and uses one CPU
thread, so every build of the site trains exactly the same models and prints the same numbers.
"""

import math
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import reference
from reference import (
    Config,
    DecoderLayer,
    MoE,
    SimpleKimiK2,
    balance_loss,
    count_activated_parameters,
    count_parameters,
    update_correction_bias,
)

threads = torch.get_num_threads()
torch.set_num_threads(1)  # one thread: the same arithmetic, in the same order, on every build


def say(sentence: str, indent: int = 0) -> None:
    """Print a sentence of the page's findings, wrapped to the width of an output block (one long line would run
    off the page, behind a sideways scroll); the lines after the first are indented by ``indent``."""
    print(textwrap.fill(sentence, width=84, subsequent_indent=" " * indent))

# %%
# The text
# --------
# Nothing may be downloaded while the site builds, so the model reads the one text that surely
# ships with the lesson: the source code of ``reference`` itself, as bytes. A byte-level model
# needs no tokenizer: its vocabulary is the 256 byte values. The last tenth of the text is held
# out to measure what the model learned beyond the batches it saw.

sources = sorted(Path(reference.__file__).parent.glob("*.py"))
text = b"".join(path.read_bytes() for path in sources)
data = torch.tensor(list(text), dtype=torch.long)  # (n_bytes,)
held_out = len(data) // 10
train_data, val_data = data[:-held_out], data[-held_out:]

counts = torch.bincount(train_data, minlength=256).float()
p = counts[counts > 0] / counts.sum()
unigram = float(-(p * p.log()).sum())  # nats per byte of a model that knows only byte frequencies
print(f"{len(sources)} files, {len(data):,} bytes: {len(train_data):,} to train on, {len(val_data):,} held out")
print(f"{int((counts > 0).sum())} distinct byte values; byte frequencies alone give {unigram:.3f} nats per byte")

# %%
# The loss we report is the cross-entropy of the next byte in nats (natural log). Guessing
# uniformly among 256 values scores :math:`\ln 256 = 5.545`; knowing only how often each byte
# occurs scores the entropy just printed. Anything lower needs context.
#
# Batches are drawn from a seeded generator, and every model on this page sees the same
# batches in the same order, so two runs differ only in what we chose to change.

SEQ, BATCH = 64, 8
batch_starts = torch.Generator().manual_seed(1)
STEPS = 160
starts = torch.randint(0, len(train_data) - SEQ - 1, (STEPS, BATCH), generator=batch_starts)
val_starts = torch.arange(0, len(val_data) - SEQ - 1, (len(val_data) - SEQ - 1) // 16)[:16]


def windows(source: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs and next-byte targets, each ``(len(offsets), SEQ)``."""
    rows = torch.stack([source[o : o + SEQ + 1] for o in offsets.tolist()])  # (B, SEQ + 1)
    return rows[:, :-1], rows[:, 1:]


def cross_entropy(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = model(inputs)  # (B, T, 256)
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten())


@torch.no_grad()
def validation_loss(model: nn.Module) -> float:
    model.eval()
    loss = cross_entropy(model, *windows(val_data, val_starts))
    model.train()
    return float(loss)


# %%
# The model
# ---------
# ``Config.tiny()`` has Kimi-K2's shape: both MLA latents, one dense layer before the MoE layers,
# one shared expert, a routed scaling factor. We make three of its choices Kimi-K2's own: one
# expert group (``n_group = 1``: Kimi-K2 routes over all its experts), more routed experts than
# the tiny default, and plain RoPE without YaRN (YaRN stretches a trained model's context; it
# plays no part in pre-training).

cfg = Config.tiny().with_(
    name="tiny Kimi-K2", n_routed_experts=16, num_experts_per_tok=2, n_group=1, topk_group=1, rope_scaling=None
)
print(
    f"{cfg.num_layers} layers (the first dense), hidden size {cfg.hidden_size}, {cfg.num_heads} heads, "
    f"kv latent {cfg.kv_lora_rank}, q latent {cfg.q_lora_rank}"
)
print(
    f"{cfg.n_routed_experts} routed experts, {cfg.num_experts_per_tok} per token, {cfg.n_shared_experts} shared; "
    f"{count_parameters(cfg):,} parameters, {count_activated_parameters(cfg):,} used per token"
)

# %%
# The training loop
# -----------------
# AdamW at a constant learning rate, no warm-up, no schedule: the simplest loop that trains.
# After every optimiser step, each MoE layer's correction bias takes DeepSeek-V3's update,
# :math:`b_i \leftarrow b_i + \gamma_b\, \mathrm{sign}(\bar{\ell} - \ell_i)`, with the load
# :math:`\ell` the layer's router just produced (:func:`reference.update_correction_bias`). No
# gradient reaches the bias. V3 used :math:`\gamma_b = 0.001` over a long pre-training; a run of
# a few hundred steps needs a larger step, so :math:`\gamma_b = 0.01` here.
#
# The same function trains every model on this page. ``balancing`` chooses how the experts are
# kept busy: ``"bias"`` (the update above), ``"none"``, or ``"aux"``: an auxiliary loss added to
# the language-modelling loss instead, :func:`reference.balance_loss`
# (:math:`\alpha \sum_i f_i P_i`, with :math:`f_i` the share of routed slots expert :math:`i`
# received, scaled so that even routing gives 1, and :math:`P_i` its mean normalised affinity),
# computed over the whole batch as Switch Transformer computes its balancing loss, with Switch's
# :math:`\alpha = 0.01`.

LR, GAMMA, ALPHA = 3e-3, 0.01, 0.01


def train(model: SimpleKimiK2, balancing: str = "bias", lr: float = LR, steps: int = STEPS) -> dict:
    """Train ``model`` on the shared batches; return its losses, validation losses and expert loads."""
    moe_layers = [layer.mlp for layer in model.layers if isinstance(layer.mlp, MoE)]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    history = {"loss": [], "val": [], "load": []}
    model.train()
    for step in range(steps):
        inputs, targets = windows(train_data, starts[step])
        loss = cross_entropy(model, inputs, targets)
        history["loss"].append(loss.item())  # the language-modelling loss alone, in every variant
        if balancing == "aux":
            for moe in moe_layers:  # the whole batch as one sequence: the expert-level loss
                loss = loss + balance_loss(moe.gate.last_scores[None], cfg.num_experts_per_tok, ALPHA)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if moe_layers:
            loads = torch.stack([moe.last_expert_load for moe in moe_layers])  # (MoE layers, E) tokens per expert
            history["load"].append(loads.float() / loads.sum(dim=-1, keepdim=True))  # share of the routed slots
        if balancing == "bias":
            for moe in moe_layers:
                update_correction_bias(moe.gate.e_score_correction_bias, moe.last_expert_load, GAMMA)
        if step % 20 == 19 or step == 0:
            history["val"].append((step + 1, validation_loss(model)))
    if moe_layers:
        history["load"] = torch.stack(history["load"])  # (steps, MoE layers, E)
    return history


def smooth(values: list[float], width: int = 10) -> list[float]:
    """Running mean over the last ``width`` values, for plotting noisy per-batch losses."""
    return [sum(values[max(0, i - width + 1) : i + 1]) / (i + 1 - max(0, i - width + 1)) for i in range(len(values))]


torch.manual_seed(0)
initial = SimpleKimiK2(cfg).state_dict()  # every MoE run starts from these very weights


def fresh_model() -> SimpleKimiK2:
    model = SimpleKimiK2(cfg)
    model.load_state_dict(initial)
    return model


runs = {"bias": train(fresh_model(), "bias")}

# %%
# Does it learn?
# --------------

bias_run = runs["bias"]
first_val, last_val = bias_run["val"][0][1], bias_run["val"][-1][1]
print(f"validation loss after step 1: {first_val:.3f}; after step {STEPS}: {last_val:.3f} nats per byte")
print(f"byte frequencies alone: {unigram:.3f}; uniform guessing: {math.log(256):.3f}")

fig, ax = plt.subplots(figsize=(7, 3.6))
ax.plot(range(1, STEPS + 1), bias_run["loss"], color="C0", alpha=0.25, lw=0.8)
ax.plot(range(1, STEPS + 1), smooth(bias_run["loss"]), color="C0", label="training batches (mean of 10)")
ax.plot(*zip(*bias_run["val"], strict=True), "o-", color="C1", ms=4, label="held-out text")
ax.axhline(unigram, color="grey", ls="--", lw=0.8, label="byte frequencies alone")
ax.axhline(math.log(256), color="grey", ls=":", lw=0.8, label="uniform guess")
ax.set_xlabel("step")
ax.set_ylabel("cross-entropy (nats per byte)")
ax.set_title(f"{cfg.name}, {count_parameters(cfg):,} parameters, bias balancing")
ax.legend(fontsize=8)
fig.tight_layout()

# %%
seen = STEPS * BATCH * SEQ
if last_val < unigram:
    say(
        f"After {STEPS} steps of {BATCH} x {SEQ} bytes ({seen:,} bytes, {seen / len(train_data):.1f} passes over "
        f"the training text) the held-out loss is {unigram - last_val:.3f} nats per byte below what byte "
        "frequencies alone achieve: the model uses context, which bytes follow which."
    )
else:
    say(
        f"After {STEPS} steps of {BATCH} x {SEQ} bytes the held-out loss is still not below what byte frequencies "
        f"alone achieve ({last_val:.3f} against {unigram:.3f}): this run is too short to learn from context."
    )

# %%
# A few hundred steps on one CPU thread buy no more than that; a byte-level model needs far
# longer to learn words, let alone code.
#
# The experts' load, three ways
# -----------------------------
# Two more runs from the same initial weights on the same batches: one with no balancing at
# all, one with the auxiliary loss instead of the bias. For each, the share of the routed slots
# each expert of the first MoE layer received, step by step. Even routing gives every one of the
# 16 experts a share of 1/16; an expert in *every* token's top-2 has a share of 1/2, and then the
# busiest expert's load is 8 times the mean, the most it can be.

runs["none"] = train(fresh_model(), "none")
runs["aux"] = train(fresh_model(), "aux")
labels = {"none": "no balancing", "bias": f"bias update, γ = {GAMMA}", "aux": f"auxiliary loss, α = {ALPHA}"}


def imbalance(load: torch.Tensor) -> torch.Tensor:
    """Busiest expert's load over the mean load, per step and layer: 1 is perfectly even."""
    return load.max(dim=-1).values / load.mean(dim=-1)


fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1, 1, 1, 1.2]})
for ax, name in zip(axes[:3], ("none", "bias", "aux"), strict=True):
    share = runs[name]["load"][:, 0]  # (steps, E), first MoE layer
    ax.stackplot(range(1, STEPS + 1), share.T.numpy(), colors=plt.cm.tab20.colors[: cfg.n_routed_experts], lw=0)
    ax.set_title(labels[name], fontsize=9)
    ax.set_xlabel("step")
    ax.set_ylim(0, 1)
axes[0].set_ylabel("share of the routed slots\n(one colour per expert)")
for name in ("none", "bias", "aux"):
    axes[3].plot(range(1, STEPS + 1), imbalance(runs[name]["load"][:, 0]), label=labels[name])
axes[3].axhline(1.0, color="grey", lw=0.8, ls=":")
axes[3].set_ylabel("busiest / mean load")
axes[3].set_xlabel("step")
axes[3].set_title("Imbalance, first MoE layer", fontsize=9)
axes[3].legend(fontsize=7)
fig.tight_layout()

# %%
# The same, in numbers: the imbalance averaged over the last 20 steps, for each MoE layer, the
# experts that received nothing in those 20 steps, and the held-out loss at the end.

LAST = 20
print(f"{'':>24} {'busiest/mean, per MoE layer':>30} {'idle experts':>13} {'held-out loss':>14}")
summary = {}
for name in ("none", "bias", "aux"):
    load = runs[name]["load"][-LAST:]  # (LAST, MoE layers, E)
    late = imbalance(load).mean(dim=0)  # (MoE layers,)
    idle = int((load.sum(dim=0) == 0).sum())  # (layer, expert) pairs with no token in LAST steps
    summary[name] = {"imbalance": late, "idle": idle, "val": runs[name]["val"][-1][1]}
    layers = ", ".join(f"{v:.2f}" for v in late.tolist())
    print(f"{labels[name]:>24} {layers:>30} {idle:>13} {summary[name]['val']:>14.3f}")


def paired(a: list[float], b: list[float], last: int = 40) -> tuple[float, float]:
    """Mean and standard error of ``b - a`` over the last steps; both runs saw the same batches."""
    d = torch.tensor(b[-last:]) - torch.tensor(a[-last:])
    return float(d.mean()), float(d.std() / len(d) ** 0.5)


def verdict(a_name: str, b_name: str, diff: float, error: float) -> str:
    """A sentence on ``b - a``, saying so when the difference is within two standard errors."""
    if abs(diff) <= 2 * error:
        return (
            f"{b_name.capitalize()} and {a_name} end with the same training loss within this run's noise "
            f"(difference {diff:+.3f} ± {error:.3f} nats per byte over the last 40 steps)"
        )
    word = "higher" if diff > 0 else "lower"
    sentence = f"{b_name.capitalize()} ends {abs(diff):.3f} ± {error:.3f} nats per byte {word} than {a_name}"
    return sentence + " (last 40 steps)"


ceiling = cfg.n_routed_experts / cfg.num_experts_per_tok


def idle_experts(count: int) -> str:
    """How many experts of the model received no token over the last steps, as a clause."""
    layers = sum(cfg.is_moe_layer(i) for i in range(cfg.num_layers))
    total = f"the {layers * cfg.n_routed_experts} experts of its {layers} MoE layers"
    return f"every one of {total} still received tokens" if count == 0 else f"{count} of {total} received none"


worst = {name: max(summary[name]["imbalance"].tolist()) for name in summary}
collapsed = worst["none"] > ceiling / 2
say(
    ("Without balancing, routing collapsed" if collapsed else "Without balancing, routing did not collapse in this run")
    + f": over the last {LAST} steps the busiest expert of a layer had {worst['none']:.2f} times the mean load "
    f"(the ceiling is {ceiling:.0f}); {idle_experts(summary['none']['idle'])}."
)
for name in ("bias", "aux"):
    cured = worst[name] < worst["none"] / 2
    say(
        f"With the {labels[name]}: at most {worst[name]:.2f} times the mean, "
        + ("less than half the unbalanced figure." if cured else "not even halving the unbalanced figure.")
    )
say(verdict("the bias run", "the run without balancing", *paired(runs["bias"]["loss"], runs["none"]["loss"])) + ".")
say(verdict("the bias run", "the auxiliary-loss run", *paired(runs["bias"]["loss"], runs["aux"]["loss"])) + ".")

# %%
# Why routing collapses, where it does: the router's weights start near zero, every affinity
# near :math:`\sigma(0) = 0.5`, and small early differences grow, since the experts that are
# chosen get trained, become useful, and are chosen more. Experts that receive no tokens get no
# gradient and stay as they were: parameters paid for and never used. In a real deployment the
# busiest expert's device would also set the pace for all the others.
#
# The bias works without touching the loss: each step it lowers the bias of every expert above
# the mean load and raises it for every expert below, so the router's *choices* spread out. The
# gate weights still come from the unbiased affinities, but which experts are chosen (and so the
# sum that normalises the weights) changes. The auxiliary loss works through the gradient, by
# pulling the affinities of busy experts down; it is a term of the objective, and its
# :math:`\alpha` trades balance against language modelling. Whether either cost
# language-modelling loss at this scale is what the last two sentences above measure. In
# DeepSeek-V3's own ablations, on smaller MoE models, the bias did better on most benchmarks
# than an auxiliary loss (V3 report, §4.5.2); V3 still keeps a tiny sequence-wise balance loss
# (:math:`\alpha = 0.0001`) beside it.
#
# .. admonition:: Question: two cures, two mechanisms
#    :class: hint
#
#    Both cures spread the load. Which one changes the function the optimiser minimises, and
#    which one changes only what the forward pass computes? What does that mean for choosing
#    :math:`\alpha` or :math:`\gamma_b`, and for comparing the runs' language-modelling losses?
#
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: the loss changes the objective, the bias changes the routing
#    :class: answer
#
#    The auxiliary loss is a term of the objective: its gradient, through :math:`P_i`, moves the
#    router's weights and, through the hidden states the router reads, every layer below. The
#    optimiser then minimises a mixture of language modelling and balance, and :math:`\alpha`
#    sets the mixture: too small and the load stays uneven, too large and language modelling
#    pays. That is why the auxiliary-loss run's language-modelling loss is the fair thing to
#    compare (the page records it without the auxiliary term).
#
#    The bias is a buffer that no gradient touches. The objective stays the language-modelling
#    loss; what changes is which experts the forward pass chooses, and with them which experts
#    get trained and the sum that normalises the gate weights. :math:`\gamma_b` sets how fast
#    the choices react, not what is optimised: too large a step makes the load oscillate, too
#    small a step balances slowly (V3 used 0.001 over trillions of tokens). DeepSeek-V3's report
#    gives this reason for the bias: too large an auxiliary loss impairs the model's performance
#    (§2.1.2).
#
# .. END SOLUTION
#
# Pre-norm against post-norm
# --------------------------
# Kimi-K2, like DeepSeek-V3 and most recent language models, normalises the *input* of each
# sublayer and adds the sublayer's output to an un-normalised residual stream (pre-norm). The
# original Transformer normalised *after* each residual addition (post-norm):
#
# .. math::
#
#    \text{pre-norm:}\quad h \leftarrow h + F(\mathrm{Norm}(h)) \qquad\qquad
#    \text{post-norm:}\quad h \leftarrow \mathrm{Norm}(h + F(h))
#
# The reference has no post-norm switch, and gets none: Kimi-K2 never takes that path. The
# post-norm layer is built here from the reference's own :class:`~reference.DecoderLayer`, the
# same attention, MLP and norms, wired the other way:


class PostNormLayer(DecoderLayer):
    """The reference's decoder layer with its two norms moved after the residual additions."""

    def forward(self, h, freqs_cis, mask, cache=None):  # (B, T, hidden) -> (B, T, hidden)
        h = self.input_layernorm(h + self.self_attn(h, freqs_cis, mask, cache))  # norm after residual 1
        return self.post_attention_layernorm(h + self.mlp(h))  # norm after residual 2


# %%
# A deeper stack: eight layers, dense MLPs (no experts, so the comparison is about the norms
# alone), built twice from the same initial weights, pre-norm and post-norm, and trained on the
# same batches at one learning rate, 0.01, without warm-up: a high rate for this model, the
# regime where the comparison is said to matter. Xiong et al. (2020) traced post-norm's need for
# a learning-rate warm-up to large gradients near the output at initialisation, and showed
# pre-norm training comparably without one; DeepSeek-V3 still warms up, for its first 2K steps.
# Both stacks keep the model's final norm before the LM head.

deep = Config.tiny().with_(name="8-layer dense", num_layers=8, n_routed_experts=0, rope_scaling=None)
DEEP_LR, DEEP_STEPS = 1e-2, 120
torch.manual_seed(0)
pre_norm = SimpleKimiK2(deep)
post_norm = SimpleKimiK2(deep)
post_norm.layers = nn.ModuleList(PostNormLayer(deep, i) for i in range(deep.num_layers))
post_norm.load_state_dict(pre_norm.state_dict())  # the same weights: only the norms' place differs


def gradient_norms(model: SimpleKimiK2) -> list[float]:
    """The gradient norm of each layer's weights for the first batch, before any step."""
    model.zero_grad()
    cross_entropy(model, *windows(train_data, starts[0])).backward()
    norms = [float(torch.cat([p.grad.flatten() for p in layer.parameters()]).norm()) for layer in model.layers]
    model.zero_grad()
    return norms


grads = {"pre-norm": gradient_norms(pre_norm), "post-norm": gradient_norms(post_norm)}
deep_runs = {
    "pre-norm": train(pre_norm, lr=DEEP_LR, steps=DEEP_STEPS),
    "post-norm": train(post_norm, lr=DEEP_LR, steps=DEEP_STEPS),
}

fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
for name, norms in grads.items():
    left.plot(range(deep.num_layers), norms, "o-", label=name)
left.set_yscale("log")
left.set_xlabel("layer")
left.set_ylabel("gradient norm at the first batch")
left.set_title("Gradients at initialisation")
left.legend(fontsize=8)
for name, run in deep_runs.items():
    right.plot(range(1, DEEP_STEPS + 1), smooth(run["loss"]), label=f"{name} (training, mean of 10)")
    right.plot(*zip(*run["val"], strict=True), "o", ms=3, color=right.lines[-1].get_color(), label=f"{name} (held-out)")
right.axhline(unigram, color="grey", ls="--", lw=0.8, label="byte frequencies alone")
right.set_xlabel("step")
right.set_ylabel("cross-entropy (nats per byte)")
right.set_title(f"{deep.name}, learning rate {DEEP_LR}, no warm-up", fontsize=10)
right.legend(fontsize=8)
fig.tight_layout()

# %%
for name, norms in grads.items():
    say(f"{name:>9}: gradient norm per layer at the first batch, " + ", ".join(f"{v:.3f}" for v in norms), 11)
    print(f"{'':>9}  largest / smallest across the layers: {max(norms) / min(norms):.1f}")
for name, run in deep_runs.items():
    final = run["val"][-1][1]
    side = "below" if final < unigram else "above"
    say(
        f"{name:>9}: held-out loss after {DEEP_STEPS} steps {final:.3f}, {abs(final - unigram):.3f} {side} "
        "what byte frequencies alone achieve",
        11,
    )
say(verdict("pre-norm", "post-norm", *paired(deep_runs["pre-norm"]["loss"], deep_runs["post-norm"]["loss"])) + ".")

# %%
# Read the numbers above, not a slogan. They are one seed, one learning rate and a hundred-odd
# steps of a small model: enough to see whether the two wirings behave differently *here*, not
# to rank them in general; at a gentler learning rate or with a warm-up the gap may shrink or
# turn around. The left panel shows how the two wirings differ before any training. In a
# pre-norm stack the residual stream is never normalised, so the gradient reaches every layer
# through the identity paths; in a post-norm stack every residual addition is normalised again,
# and each norm rescales the gradient that passes back through it, so the layers' gradients need
# not be alike (compare the two "largest / smallest" ratios).
#
# Try it yourself
# ---------------
# Download this page (links below) and change one thing at a time: ``GAMMA`` (how fast does
# the bias balance, and does it oscillate when large?), ``ALPHA`` (when does the auxiliary loss
# start to cost language-modelling loss?), ``DEEP_LR`` (at what rate does the post-norm stack
# catch up, or fall apart?), or ``num_experts_per_tok``.

torch.set_num_threads(threads)
