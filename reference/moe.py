r"""DeepSeek-MoE: many small routed experts, top-k routing by a sigmoid gate, shared experts.

For a token ``u``, each routed expert ``i`` gets an affinity ``s_i = sigmoid(u \cdot e_i)``.
The experts are *chosen* by ``s_i + b_i``, where ``b`` is a per-expert correction bias, but
*weighted* by the unbiased ``s_i``, normalised over the chosen ones and scaled:

.. math::  y = u + \sum_{j=1}^{N_s} \mathrm{FFN}^{(s)}_j(u)
              + \gamma \sum_{i \in \mathrm{TopK}(s + b)} \frac{s_i}{\sum_{k \in \mathrm{TopK}} s_k}\, \mathrm{FFN}_i(u)

with ``gamma = routed_scaling_factor`` (the residual ``u +`` lives in the decoder layer).
Each token runs ``num_experts_per_tok`` routed experts plus the shared ones, so the compute per
token is a small fraction of the parameters. With ``n_group > 1`` routing is group-limited:
groups are ranked by the sum of their two best biased scores, only ``topk_group`` groups stay
(the others are masked with ``-inf``), and the top-k experts are picked among those. This is
DeepSeek-V3's node-limited routing: its 8 groups stand for the 8 nodes the experts were spread
over in training, and ``topk_group = 4`` sends each token to at most 4 of them, which bounds the
traffic between nodes (V3 report, section 2.1.2). Kimi-K2 sets ``n_group = 1``: no limit.

The bias is DeepSeek-V3's "auxiliary-loss-free" balancing, on which V3 *mainly* relies: it is not
trained by gradient; after each step, ``b_i += gamma_b * sign(mean load - load_i)``
(:func:`update_correction_bias`) lowers the bias of every overloaded expert and raises that of
every under-loaded one. V3 keeps a complementary sequence-wise balance loss besides, with a very
small weight (``alpha = 0.0001``, V3 report sections 2.1.2 and 4.2), against extreme imbalance
within one sequence; it is a training term, which this forward-pass reference leaves out.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config
from .mlp import SwiGLU


class Router(nn.Module):
    """Sigmoid gate with a selection-only correction bias and group-limited top-k.

    Args:
        cfg: uses ``hidden_size``, ``n_routed_experts``, ``num_experts_per_tok``, ``n_group``,
            ``topk_group``, ``norm_topk_prob`` and ``routed_scaling_factor``.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.top_k, self.n_group, self.topk_group = cfg.num_experts_per_tok, cfg.n_group, cfg.topk_group
        self.norm_topk_prob, self.scaling = cfg.norm_topk_prob, cfg.routed_scaling_factor
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))  # one centroid e_i each
        # A buffer, not a parameter: no gradient moves it, update_correction_bias does.
        self.register_buffer("e_score_correction_bias", torch.zeros(cfg.n_routed_experts))
        # The affinities s of the last call, (N, E), kept for an auxiliary loss (see balance_loss).
        self.last_scores: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: ``(N, hidden)`` tokens. Returns ``weights`` ``(N, k)`` and expert ``indices`` ``(N, k)``."""
        N = x.shape[0]
        scores = torch.sigmoid(F.linear(x.float(), self.weight.float()))  # (N, E) affinities s_i
        self.last_scores = scores
        biased = scores + self.e_score_correction_bias  # (N, E) used only to choose
        if self.n_group > 1:
            grouped = biased.view(N, self.n_group, -1)  # (N, G, E/G)
            group_scores = grouped.topk(2, dim=-1).values.sum(dim=-1)  # (N, G): sum of the best two
            kept = group_scores.topk(self.topk_group, dim=-1).indices  # (N, topk_group)
            dropped = torch.ones_like(group_scores, dtype=torch.bool).scatter(1, kept, False)
            biased = grouped.masked_fill(dropped[..., None], float("-inf")).flatten(1)  # never chosen
        indices = biased.topk(self.top_k, dim=-1).indices  # (N, k)
        weights = scores.gather(1, indices)  # (N, k) unbiased s_i of the chosen experts
        if self.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return (weights * self.scaling).to(x.dtype), indices


class Experts(nn.Module):
    """``n_routed_experts`` SwiGLU experts stored as stacked weights, run only where tokens use them.

    Stacking (one ``(E, I, H)`` tensor per projection) keeps a 384-expert layer three parameters
    instead of 1,152 modules. transformers 5 stacks its experts too, but fuses the gate and up
    projections into one ``gate_up_proj`` ``(E, 2I, H)`` beside ``down_proj`` ``(E, H, I)``;
    :mod:`reference.loading` reads both layouts.

    Args:
        cfg: uses ``n_routed_experts``, ``hidden_size`` and ``moe_intermediate_size``.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        E, H, I = cfg.n_routed_experts, cfg.hidden_size, cfg.moe_intermediate_size
        self.gate_proj = nn.Parameter(torch.empty(E, I, H))
        self.up_proj = nn.Parameter(torch.empty(E, I, H))
        self.down_proj = nn.Parameter(torch.empty(E, H, I))

    def forward(self, x: torch.Tensor, weights: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        """``x``: ``(N, H)``; ``weights``, ``indices``: ``(N, k)``. Returns ``sum_k weight * expert(x)``, ``(N, H)``."""
        N, k = indices.shape
        flat = indices.flatten()  # (N*k,) expert of each (token, slot)
        order = flat.argsort(stable=True)  # (token, slot) pairs grouped by expert
        counts = torch.bincount(flat, minlength=self.gate_proj.shape[0]).tolist()
        # index_select/index_copy rather than x[...] / y[...]: their backward passes are a plain
        # scatter-add and gather, where fancy indexing's backward sorts again.
        grouped = x.index_select(0, order // k)  # (N*k, H) each token once per chosen expert, grouped by expert
        # Under autograd, unbind and split, not gate_proj[e] and grouped[a:b]: their backward passes
        # assemble each gradient once, where every slice's backward would fill a zero tensor of the
        # full size. Without autograd (decoding) indexing the few chosen experts beats making E views.
        stacks = (self.gate_proj, self.up_proj, self.down_proj)
        gate, up, down = (w.unbind(0) for w in stacks) if torch.is_grad_enabled() else stacks
        active = [expert for expert, count in enumerate(counts) if count]  # an expert no token chose costs nothing
        outputs = []
        for expert, h in zip(active, grouped.split([counts[e] for e in active]), strict=True):  # h: (count, H)
            outputs.append(F.linear(F.silu(F.linear(h, gate[expert])) * F.linear(h, up[expert]), down[expert]))
        y = torch.cat(outputs) * weights.flatten().index_select(0, order)[:, None]  # (N*k, H), weighted, grouped
        unsorted = torch.empty_like(y).index_copy(0, order, y)  # back to (token, slot) order
        return unsorted.view(N, k, -1).sum(dim=1)  # summed over each token's k experts


class MoE(nn.Module):
    """Router, routed experts and always-on shared experts.

    Args:
        cfg: the MoE fields; the shared experts form one SwiGLU of width
            ``n_shared_experts * moe_intermediate_size``.
    """

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.gate = Router(cfg)
        self.experts = Experts(cfg)
        self.shared_experts = SwiGLU(cfg.hidden_size, cfg.n_shared_experts * cfg.moe_intermediate_size)
        self.last_expert_load: torch.Tensor | None = None  # tokens per expert in the last call

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H) -> (B, T, H)
        tokens = x.reshape(-1, x.shape[-1])  # (N, H)
        weights, indices = self.gate(tokens)  # (N, k), (N, k)
        self.last_expert_load = torch.bincount(indices.flatten(), minlength=self.experts.gate_proj.shape[0])
        routed = self.experts(tokens, weights, indices)
        return (routed + self.shared_experts(tokens)).view_as(x)  # shared experts: unweighted, always on


@torch.no_grad()
def update_correction_bias(bias: torch.Tensor, expert_load: torch.Tensor, gamma: float = 1e-3) -> torch.Tensor:
    """DeepSeek-V3's auxiliary-loss-free balancing step, in place: ``b_i += gamma * sign(mean - load_i)``.

    Args:
        bias: ``(E,)`` the router's ``e_score_correction_bias``.
        expert_load: ``(E,)`` tokens routed to each expert in the last step.
        gamma: the bias update speed (0.001 in DeepSeek-V3's training).
    """
    load = expert_load.float()
    bias += gamma * torch.sign(load.mean() - load)
    return bias


def balance_loss(scores: torch.Tensor, top_k: int, alpha: float) -> torch.Tensor:
    r"""The auxiliary balance loss in the form of DeepSeek-V3's report (eqs. 17 to 20), averaged over sequences.

    .. math::  \mathcal{L}_{\mathrm{Bal}} = \alpha \sum_{i=1}^{N_r} f_i P_i, \quad
               f_i = \frac{N_r}{K_r T} \sum_{t=1}^{T} \mathbb{1}\big(s_{i,t} \in \mathrm{TopK}(s_{:,t}, K_r)\big),
               \quad P_i = \frac{1}{T} \sum_{t=1}^{T} \frac{s_{i,t}}{\sum_j s_{j,t}}

    ``f_i`` is expert ``i``'s share of the routed slots, scaled so that even routing gives 1 (a
    count: no gradient flows through it); ``P_i`` is its mean normalised affinity, through which the
    gradient lowers the affinities of the busy experts. With even load every ``f_i`` is 1 and the
    loss is ``alpha``; the more the tokens' top-K agree on a few experts, the larger it grows. As
    eq. 18 writes it, ``f_i`` counts the top-K of the unbiased affinities, which is the routing
    itself while the correction bias is zero.

    DeepSeek-V3 computes it per sequence, with a tiny ``alpha`` (0.0001), as a complement to the
    bias. Over a whole batch (pass it as one sequence, ``B = 1``) it takes the form of Switch
    Transformer's load-balancing loss, there the main remedy, with ``alpha = 0.01``.

    Args:
        scores: ``(B, T, E)`` router affinities ``s`` (the sigmoid scores of :attr:`Router.last_scores`,
            viewed per sequence).
        top_k: experts chosen per token, ``K_r``.
        alpha: the balance factor.
    """
    T, E = scores.shape[1:]
    chosen = torch.zeros_like(scores).scatter(-1, scores.topk(top_k, dim=-1).indices, 1.0)  # (B, T, E), 1 if chosen
    f = chosen.sum(dim=1) * E / (top_k * T)  # (B, E)
    P = (scores / scores.sum(dim=-1, keepdim=True)).mean(dim=1)  # (B, E)
    return alpha * (f * P).sum(dim=-1).mean()
