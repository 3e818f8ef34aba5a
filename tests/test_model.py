"""Behaviour of the whole model: shapes, causality, routing, MLA paths, caching, training."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from reference import (
    Config,
    KVCache,
    MoE,
    SimpleKimiK2,
    balance_loss,
    kv_cache_numbers_per_token,
    update_correction_bias,
)
from reference.attention import causal_mask
from reference.mla import MultiHeadLatentAttention
from reference.rope import precompute_freqs_cis


def test_task_sheet_shape(model: SimpleKimiK2) -> None:
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, model.config.vocab_size)
    assert model(torch.randint(0, 50, (4, 7))).shape == (4, 7, model.config.vocab_size)


def test_lesson_config_shape_on_the_meta_device() -> None:
    with torch.device("meta"):
        model = SimpleKimiK2(Config.lesson())
        logits = model(torch.tensor([[1, 2, 3]]))
    assert logits.shape == (1, 3, 102400)


def test_causality(model: SimpleKimiK2) -> None:
    ids = torch.randint(0, 50, (2, 8))
    changed = ids.clone()
    changed[:, 5] = (changed[:, 5] + 1) % 50
    before, after = model(ids), model(changed)
    # Earlier positions are untouched (up to float rounding: expert batches change size).
    assert torch.allclose(before[:, :5], after[:, :5], atol=1e-6, rtol=0)
    assert not torch.allclose(before[:, 5:], after[:, 5:])  # later ones do see the change


def test_each_token_reaches_top_k_experts_in_its_top_groups() -> None:
    torch.manual_seed(0)
    cfg = Config.tiny().with_(n_routed_experts=16, n_group=4, topk_group=2, num_experts_per_tok=3)
    moe = MoE(cfg)
    torch.nn.init.normal_(moe.gate.weight)
    moe.gate.e_score_correction_bias.normal_()
    tokens = torch.randn(50, cfg.hidden_size)
    weights, indices = moe.gate(tokens)
    assert all(len(set(row)) == 3 for row in indices.tolist())  # exactly k distinct experts
    assert all(len({e // 4 for e in row}) <= 2 for row in indices.tolist())  # within topk_group groups
    assert torch.allclose(weights.sum(-1), torch.full((50,), cfg.routed_scaling_factor))

    for w in (moe.experts.gate_proj, moe.experts.up_proj, moe.experts.down_proj):
        torch.nn.init.normal_(w, std=0.1)
    expected = moe.shared_experts(tokens)
    for t in range(50):
        for w, e in zip(weights[t], indices[t], strict=True):
            h = tokens[t]
            expert = F.silu(moe.experts.gate_proj[e] @ h) * (moe.experts.up_proj[e] @ h)
            expected[t] += w * (moe.experts.down_proj[e] @ expert)
    assert torch.allclose(moe(tokens[None]).squeeze(0), expected, atol=1e-5)
    assert moe.last_expert_load.sum() == 50 * 3


def test_dropped_groups_are_masked_with_minus_infinity() -> None:
    # Biased scores below zero: filling dropped groups with 0.0 (not -inf) would pick them.
    cfg = Config.tiny().with_(hidden_size=4, n_routed_experts=4, n_group=2, topk_group=1, num_experts_per_tok=2)
    moe = MoE(cfg)
    with torch.no_grad():
        moe.gate.weight.zero_()  # every sigmoid score is 0.5
        moe.gate.e_score_correction_bias.copy_(torch.tensor([-0.9, -0.8, -2.0, -2.0]))
    _, indices = moe.gate(torch.zeros(1, 4))
    assert sorted(indices[0].tolist()) == [0, 1]  # group 0 wins (-0.7 vs -3.0); both its experts chosen


def test_absorbed_mla_equals_naive_path() -> None:
    torch.manual_seed(0)
    cfg = Config.tiny()
    mla = MultiHeadLatentAttention(cfg)
    for p in mla.parameters():
        torch.nn.init.normal_(p, std=0.1)
    x = torch.randn(2, 6, cfg.hidden_size)
    freqs, mask = precompute_freqs_cis(cfg, 6), causal_mask(6)
    naive = mla(x, freqs, mask, absorb=False)
    assert torch.allclose(mla(x, freqs, mask, absorb=True), naive, atol=1e-5)
    cache: dict = {}
    prefill = mla(x[:, :4], freqs[:4], causal_mask(4), cache=cache)
    steps = [mla(x[:, t : t + 1], freqs[t : t + 1], None, cache=cache) for t in (4, 5)]
    assert torch.allclose(torch.cat([prefill, *steps], dim=1), naive, atol=1e-5)
    assert cache["latent"].shape[-1] + cache["k_rope"].shape[-1] == kv_cache_numbers_per_token(cfg, "mla")


def test_cached_generation_equals_full_recomputation(model: SimpleKimiK2) -> None:
    prompt = torch.randint(0, 50, (2, 5))
    assert torch.equal(model.generate(prompt, 6, use_cache=True), model.generate(prompt, 6, use_cache=False))
    cache = KVCache(model.config.num_layers)
    full = model(prompt)
    stepwise = torch.cat([model(prompt[:, :3], cache), model(prompt[:, 3:4], cache), model(prompt[:, 4:], cache)], 1)
    assert torch.allclose(stepwise, full, atol=1e-5)
    scheme = "mla" if model.config.attention == "mla" else "gqa"
    assert cache.numbers_per_token() == kv_cache_numbers_per_token(model.config, scheme) * model.config.num_layers


def test_one_optimizer_step_lowers_the_loss(model: SimpleKimiK2) -> None:
    model.train()
    batch = torch.randint(0, 50, (4, 12))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        logits = model(batch[:, :-1])
        return F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())

    before = loss()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        assert loss() < before


def test_bias_update_moves_expert_load_toward_balance() -> None:
    torch.manual_seed(0)
    cfg = Config.tiny().with_(n_group=1, topk_group=1)
    moe = MoE(cfg)
    with torch.no_grad():
        moe.gate.weight.normal_()
        moe.gate.weight[0] += 3.0  # expert 0 is everybody's favourite
    tokens = torch.randn(256, cfg.hidden_size) + 1.0

    def load() -> torch.Tensor:
        moe(tokens[None])
        return moe.last_expert_load.float()

    start = load()
    for _ in range(100):
        update_correction_bias(moe.gate.e_score_correction_bias, load(), gamma=0.03)
    end = load()
    assert end.std() < 0.5 * start.std(), (start.tolist(), end.tolist())
    assert end.max() < start.max()


@pytest.mark.parametrize("cfg", [Config.tiny(), Config.tiny().with_(q_lora_rank=None)], ids=["q-lora", "q-proj"])
def test_state_dict_names_follow_hugging_face(cfg: Config) -> None:
    names = set(SimpleKimiK2(cfg).state_dict())
    attn = "layers.0.self_attn."
    q = {"q_proj.weight"} if cfg.q_lora_rank is None else {"q_a_proj.weight", "q_a_layernorm.weight", "q_b_proj.weight"}
    assert {n[len(attn) :] for n in names if n.startswith(attn)} == q | {
        "kv_a_proj_with_mqa.weight", "kv_a_layernorm.weight", "kv_b_proj.weight", "o_proj.weight",
    }  # fmt: skip
    assert {n for n in names if n.startswith("layers.1.mlp.")} == {
        "layers.1.mlp.gate.weight", "layers.1.mlp.gate.e_score_correction_bias",
        "layers.1.mlp.experts.gate_proj", "layers.1.mlp.experts.up_proj", "layers.1.mlp.experts.down_proj",
        "layers.1.mlp.shared_experts.gate_proj.weight", "layers.1.mlp.shared_experts.up_proj.weight",
        "layers.1.mlp.shared_experts.down_proj.weight",
    }  # fmt: skip


def test_experts_agree_with_and_without_autograd() -> None:
    """Training (unbound expert weights) and decoding (indexed ones) take two paths to one result."""
    torch.manual_seed(0)
    cfg = Config.tiny().with_(n_group=1, topk_group=1)
    moe = MoE(cfg)
    for w in (moe.gate.weight, moe.experts.gate_proj, moe.experts.up_proj, moe.experts.down_proj):
        torch.nn.init.normal_(w, std=0.1)
    tokens = torch.randn(1, 40, cfg.hidden_size)
    with_grad = moe(tokens)
    assert with_grad.requires_grad
    with torch.no_grad():
        assert torch.equal(moe(tokens), with_grad.detach())


def test_rotations_are_precomputed_frequencies_sliced() -> None:
    """The model's cached RoPE rotations equal a fresh computation for every range, however it grew."""
    model = SimpleKimiK2(Config.tiny())
    for start, length in ((0, 3), (3, 1), (4, 20), (0, 200), (150, 7)):
        got = model.rotations(start, length, torch.device("cpu"))
        assert torch.equal(got, precompute_freqs_cis(model.config, length, start)), (start, length)


def test_balance_loss_is_alpha_for_even_load_and_grows_as_routing_collapses() -> None:
    E, K, T, alpha = 8, 2, 8, 0.01
    hi, lo = torch.sigmoid(torch.tensor(2.0)).item(), torch.sigmoid(torch.tensor(-2.0)).item()
    even = torch.full((T, E), lo)
    for t in range(T):  # token t prefers experts t and t+1: every expert chosen twice, f_i = 1
        even[t, t] = even[t, (t + 1) % E] = hi
    collapsed = torch.full((T, E), lo)
    collapsed[:, :2] = hi  # every token prefers experts 0 and 1: f_0 = f_1 = E / K, the others 0
    by_hand = alpha * 2 * (E / K) * hi / (2 * hi + (E - 2) * lo)
    assert balance_loss(even[None], K, alpha).item() == pytest.approx(alpha)
    assert balance_loss(collapsed[None], K, alpha).item() == pytest.approx(by_hand)
    assert by_hand > 2 * alpha
    both = torch.stack([even, collapsed])  # (B=2, T, E): the loss is the mean over the sequences
    assert balance_loss(both, K, alpha).item() == pytest.approx((alpha + by_hand) / 2)

    logits = torch.logit(collapsed).requires_grad_()
    balance_loss(torch.sigmoid(logits)[None], K, alpha).backward()
    assert (logits.grad[:, :2] > 0).all() and (logits.grad[:, 2:] < 0).all()  # descent: busy experts down


def test_router_keeps_the_affinities_of_its_last_call() -> None:
    torch.manual_seed(0)
    cfg = Config.tiny()
    moe = MoE(cfg)
    torch.nn.init.normal_(moe.gate.weight)
    tokens = torch.randn(1, 5, cfg.hidden_size)
    moe(tokens)
    scores = moe.gate.last_scores  # (N, E)
    assert torch.allclose(scores, torch.sigmoid(tokens[0] @ moe.gate.weight.T))
    assert scores.requires_grad  # an auxiliary loss on it trains the router


def test_a_whole_model_decodes_on_either_mla_path() -> None:
    """Setting ``absorb = False`` on every attention decodes the naive way, to the same logits."""
    torch.manual_seed(0)
    model = SimpleKimiK2(Config.tiny()).eval()
    prompt = torch.randint(0, 50, (1, 6))

    def decode() -> torch.Tensor:
        cache = KVCache(model.config.num_layers)
        return torch.cat([model(prompt[:, :4], cache), model(prompt[:, 4:5], cache), model(prompt[:, 5:], cache)], 1)

    with torch.no_grad():
        absorbed = decode()
        for layer in model.layers:
            layer.self_attn.absorb = False
        naive = decode()
    assert torch.allclose(naive, absorbed, atol=1e-5)
    assert not torch.equal(naive, absorbed)  # two different computations, not one path run twice
