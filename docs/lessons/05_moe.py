r"""
Mixture of experts against a dense MLP
======================================

.. admonition:: Theory exercise 2, third part
   :class: hint

   *MoE vs Dense: How does routing to top-k experts reduce compute? What is load balancing in
   MoE?*

A dense layer applies all its weights to every token. A mixture-of-experts (MoE) layer holds many
small feed-forward networks, the *experts*, and a *router* that sends each token to a few of
them. The model can then hold far more parameters than one token pays for.
"""

import matplotlib.pyplot as plt
import torch
from torch import nn

from reference import (
    Config,
    MoE,
    Router,
    count_activated_parameters,
    count_parameters,
    flops_per_token,
    update_correction_bias,
)

torch.manual_seed(0)

# %%
# Routing in DeepSeek-V3 and Kimi-K2
# ----------------------------------
# For a token with hidden state :math:`u`, expert :math:`i` has a learned centroid :math:`e_i` and
# an affinity :math:`s_i = \sigma(u \cdot e_i)` (a sigmoid, not a softmax). The router picks the
# :math:`K` experts with the highest :math:`s_i + b_i`, where :math:`b` is a *correction bias*
# used only for choosing (more on it below), and weights their outputs by the unbiased
# affinities, normalised over the chosen ones and scaled by :math:`\gamma`
# (``routed_scaling_factor``). One *shared* expert sees every token:
#
# .. math::
#
#    \mathrm{MoE}(u) = \mathrm{FFN}^{(s)}(u)
#    + \gamma \sum_{i \in \mathrm{TopK}(s + b)} \frac{s_i}{\sum_{k \in \mathrm{TopK}} s_k}\, \mathrm{FFN}_i(u) .
#
# The router of the reference, :meth:`reference.Router.forward`, included from ``reference/moe.py``
# (the ``n_group`` branch is DeepSeek-V3's group-limited routing, explained in
# :doc:`11_kimi_k2_changes`; Kimi-K2 has one group, so it skips it):
#
# .. literalinclude:: ../../reference/moe.py
#    :pyobject: Router.forward
#    :caption: reference/moe.py, Router.forward
#    :dedent:
#
# The reference's :class:`~reference.MoE` in a small model: which experts did each token use?

cfg = Config.tiny()
moe = MoE(cfg)
for parameter in moe.parameters():
    nn.init.normal_(parameter, std=0.5)
tokens = torch.randn(1, 6, cfg.hidden_size)  # (B, T, hidden)
with torch.no_grad():
    out = moe(tokens)
    weights, indices = moe.gate(tokens.view(-1, cfg.hidden_size))
for t in range(6):
    chosen = ", ".join(f"expert {int(i)} x {float(w):.3f}" for i, w in zip(indices[t], weights[t], strict=True))
    print(f"token {t}: {chosen}")
print(
    f"{cfg.num_experts_per_tok} of {cfg.n_routed_experts} routed experts per token, plus {cfg.n_shared_experts} shared"
)
print("tokens per expert in this call:", moe.last_expert_load.tolist())

# %%
# Only the chosen experts run: the reference's :class:`~reference.Experts` loops over the experts
# that received tokens and skips the others. So the compute per token follows the *activated*
# parameters, not the total.
#
# Total against activated, for the published models
# -------------------------------------------------
# Parameters from :func:`reference.count_parameters` and
# :func:`reference.count_activated_parameters` (embedding and LM head included in both), and
# forward FLOPs per token from :func:`reference.flops_per_token` (two per multiply-add of every
# activated weight, the embedding lookup excluded, attention over the context not included).
# The last column is what a *dense* model of the same total size would spend per token. (The
# task sheet's lesson config is dense: for it, every parameter is activated.)

print(f"{'model':>20} {'total':>19} {'activated':>17} {'share':>7} {'GFLOPs/token':>13} {'dense, same total':>18}")
for model_cfg in (Config.deepseek_v3(), Config.kimi_k2()):
    total, active = count_parameters(model_cfg), count_activated_parameters(model_cfg)
    flops = flops_per_token(model_cfg)
    dense_flops = 2 * (total - model_cfg.vocab_size * model_cfg.hidden_size)
    print(
        f"{model_cfg.name:>20} {total:>19,} {active:>17,} {100 * active / total:6.2f}% "
        f"{flops / 1e9:>13.1f} {dense_flops / 1e9:>18.1f}"
    )
    print(f"{'':>20} {total / active:.1f} times more parameters held than used per token")

# %%
# Had every token gone through every expert, each token of Kimi-K2 would cost as much compute as
# a dense model of its full size: the last column.
#
# Load balancing
# --------------
# Routing is learned, and nothing in the language-modelling loss stops the router from sending
# most tokens to a few favourite experts. Then those experts are overloaded (in training and
# serving they sit on different devices, so the busiest one sets the pace), the idle experts
# stop learning, and the capacity the parameters paid for is wasted. Two remedies:
#
# * **An auxiliary balancing loss** (GShard, Switch Transformer, DeepSeek-V2). Switch
#   Transformer adds :math:`\alpha N \sum_{i=1}^{N} f_i P_i` to the loss, where :math:`N` is the
#   number of experts, :math:`f_i` the fraction of tokens routed to expert :math:`i` and
#   :math:`P_i` the mean routing probability it receives. With top-:math:`K` routing the fraction
#   is rescaled instead: DeepSeek-V3's sequence-wise balance loss (V3 report, equations 17 to 20)
#   is
#
#   .. math::
#
#      \mathcal{L}_{\mathrm{Bal}} = \alpha \sum_{i=1}^{N_r} f_i P_i, \qquad
#      f_i = \frac{N_r}{K_r T} \sum_{t=1}^{T} \mathbb{1}\big(i \in \mathrm{TopK}_t\big), \qquad
#      P_i = \frac{1}{T} \sum_{t=1}^{T} \frac{s_{i,t}}{\sum_{j} s_{j,t}},
#
#   over the :math:`T` tokens of one sequence, with :math:`N_r` routed experts and :math:`K_r` of
#   them chosen per token. Either way the loss equals :math:`\alpha` when the load is uniform and
#   grows as it concentrates. Its gradient pushes the router towards uniform load, but it also
#   pulls against the language-modelling objective: too small an :math:`\alpha` does not
#   balance, too large a one costs quality.
# * **Auxiliary-loss-free balancing** (DeepSeek-V3): the bias :math:`b_i` above. It is not
#   trained by gradient. After each step, every expert's bias moves by a fixed amount
#   :math:`\gamma_b` against its load:
#
#   .. math::
#
#      b_i \leftarrow b_i + \gamma_b\, \mathrm{sign}(\bar{\ell} - \ell_i),
#
#   with :math:`\ell_i` the tokens expert :math:`i` received and :math:`\bar{\ell}` the mean:
#   the bias of every overloaded expert falls, and that of every under-loaded one (not only the
#   idle ones) rises. DeepSeek-V3 used :math:`\gamma_b = 0.001` for its first 14.3T training
#   tokens and 0 for the last 500B. The bias only *chooses*: a chosen expert's gate is its
#   unbiased affinity :math:`s_i`, normalised over the chosen ones. It still moves the gates
#   indirectly, by changing which experts are chosen and so the sum that normalises them (measured
#   below). V3 relies *mainly* on the bias, not only on it: it keeps the sequence-wise loss above
#   with a very small :math:`\alpha = 0.0001`, against extreme imbalance within one sequence (V3
#   report, sections 2.1.2 and 4.2).
#
#   Kimi-K2 balances the same way, as far as its published files show: its ``config.json`` sets
#   ``topk_method`` to ``"noaux_tc"``, the name DeepSeek-V3's code gives to routing with the
#   correction bias. That is read from the config; the Kimi K2 report, as far as this lesson
#   found, does not describe how K2's experts were balanced.
#
# The bias update of the reference, :func:`reference.update_correction_bias`:
#
# .. literalinclude:: ../../reference/moe.py
#    :pyobject: update_correction_bias
#    :caption: reference/moe.py, update_correction_bias
#
# A simulation
# ------------
# A router with a few dozen experts sees batches of tokens whose hidden states share a
# common direction, so a few experts score high for almost every token. We route a few hundred batches
# with the reference :class:`~reference.Router`, once leaving the bias at zero and once applying
# :func:`reference.update_correction_bias` after every batch. The router's weights stay fixed:
# this isolates the effect of the bias. (DeepSeek-V3's :math:`\gamma_b = 0.001` acted over many
# thousands of steps; a short simulation needs a larger step.)

sim = Config.tiny().with_(
    hidden_size=64, n_routed_experts=32, num_experts_per_tok=4, n_group=1, topk_group=1, routed_scaling_factor=1.0
)
generator = torch.Generator().manual_seed(0)
centroids = torch.randn(sim.n_routed_experts, sim.hidden_size, generator=generator) / sim.hidden_size**0.5
common = torch.randn(sim.hidden_size, generator=generator)  # shared by all tokens: the source of imbalance
batches = [
    common + 0.7 * torch.randn(512, sim.hidden_size, generator=generator)  # (N, hidden)
    for _ in range(200)
]


def simulate(gamma: float | None) -> tuple[list[float], torch.Tensor, Router]:
    """Route every batch; return max load / mean load per batch, the load of the last batch, the router."""
    router = Router(sim)
    with torch.no_grad():
        router.weight.copy_(centroids)
    imbalance = []
    for batch in batches:
        with torch.no_grad():
            _, chosen = router(batch)  # (N, k)
        load = torch.bincount(chosen.flatten(), minlength=sim.n_routed_experts)
        imbalance.append(float(load.max() / load.float().mean()))
        if gamma is not None:
            update_correction_bias(router.e_score_correction_bias, load, gamma)
    return imbalance, load, router


without, load_without, router_without = simulate(None)
with_bias, load_with, router_with = simulate(gamma=0.002)
print(f"max / mean load, first batch: {without[0]:.2f}")
print(f"max / mean load, last batch: without the bias update {without[-1]:.2f}, with it {with_bias[-1]:.2f}")
print(f"idle experts in the last batch: without {int((load_without == 0).sum())}, with {int((load_with == 0).sum())}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
left.plot(without, label="bias fixed at 0")
left.plot(with_bias, label="bias updated each batch")
left.axhline(1.0, color="grey", lw=0.8, ls=":")
left.set_xlabel("batch")
left.set_ylabel("busiest expert's load / mean load")
left.set_title("Imbalance over the simulation")
left.legend(fontsize=8)
order = torch.argsort(load_without, descending=True)
right.bar(range(sim.n_routed_experts), load_without[order], alpha=0.6, label="bias fixed at 0")
right.bar(range(sim.n_routed_experts), load_with[order], alpha=0.6, label="bias updated")
right.axhline(float(load_with.float().mean()), color="grey", lw=0.8, ls=":", label="mean load")
right.set_xlabel("expert (sorted by load without the bias)")
right.set_ylabel("tokens in the last batch")
right.set_title("Load per expert, last batch")
right.legend(fontsize=8)
fig.tight_layout()

# %%
# Without the bias the same few experts take most of the tokens on every batch, and some never
# receive any. With the update, the bias of the overloaded experts falls and that of the
# under-loaded ones rises until the load is nearly flat, without any gradient touching the router.
#
# Did the bias change the gates? Route the last batch through the balanced router twice: with
# its learned bias, and with the bias set to zero (the same centroids, so the same affinities
# :math:`s_i`):

last = batches[-1]
bias = router_with.e_score_correction_bias
with torch.no_grad():
    gates_biased, chosen_biased = router_with(last)  # (N, k) each
    learned = bias.clone()
    bias.zero_()
    gates_plain, chosen_plain = router_with(last)
    bias.copy_(learned)
    affinities = torch.sigmoid(last @ centroids.T)  # (N, E): the s_i, which the bias never touches
same_set = (chosen_biased.sort(-1).values == chosen_plain.sort(-1).values).all(-1)  # (N,)
print(f"tokens whose chosen experts the bias changed: {int((~same_set).sum())} of {len(same_set)}")
token = int((~same_set).nonzero()[0])
for label, gates, chosen in (("with the bias", gates_biased, chosen_biased), ("without it", gates_plain, chosen_plain)):
    listed = ", ".join(
        f"{int(e)}: s={float(affinities[token, e]):.3f} gate={float(g):.3f}"
        for g, e in sorted(zip(gates[token], chosen[token], strict=True), key=lambda pair: int(pair[1]))
    )
    print(f"token {token}, {label:>13}: {listed}")

# %%
# An expert chosen both times has the same affinity :math:`s_i` both times, yet a different gate:
# its affinity is divided by the sum over a different chosen set. The bias enters no gate
# directly, and changes them all the same.
#
# .. BEGIN SOLUTION
#
# .. admonition:: Answer: how routing cuts compute, and what load balancing is
#    :class: answer
#
#    **Compute**: an MoE layer replaces one large feed-forward network by many small experts
#    and a router that sends each token to its top-:math:`K` of them. A token's compute is that
#    of :math:`K` small experts (plus the shared expert and the router), while the layer's
#    capacity is that of all experts together. Kimi-K2 routes each token to a few of its hundreds
#    of experts, so only a few percent of its parameters are active per token (the table above):
#    the FLOPs per token of a dense model some thirty times smaller. The price is memory (all experts
#    must be stored) and communication (tokens travel to the devices holding their experts).
#
#    **Load balancing** keeps the tokens spread evenly over the experts. Without it, routing
#    collapses onto a few experts: they become a bottleneck, the others are wasted and stop
#    learning. The classic fix is an auxiliary loss that penalises uneven load, at some cost in
#    quality because it fights the main loss. DeepSeek-V3 instead relies mainly on a per-expert
#    bias added to the routing scores, used only to choose experts and adjusted after each step
#    by :math:`\pm\gamma_b` against the expert's load (no gradient, so no term in the loss),
#    and keeps only a very small sequence-wise balance loss (:math:`\alpha = 0.0001`) besides.
#    Kimi-K2's config selects the same bias-based routing.
#
# .. END SOLUTION
