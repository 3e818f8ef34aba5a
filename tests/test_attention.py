"""The causal mask, scaled dot-product attention, RMSNorm and RoPE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from reference import (
    Config,
    RMSNorm,
    apply_rope,
    causal_mask,
    inverse_frequencies,
    precompute_freqs_cis,
    scaled_dot_product_attention,
    softmax_scale,
    yarn_correction_range,
)

INF = float("inf")


def test_four_by_four_mask_keeps_the_diagonal_in_both_conventions() -> None:
    additive = causal_mask(4)
    expected = torch.tensor([[0, -INF, -INF, -INF], [0, 0, -INF, -INF], [0, 0, 0, -INF], [0, 0, 0, 0]])
    assert torch.equal(additive, expected)
    assert torch.equal(causal_mask(4, kind="bool"), torch.tril(torch.ones(4, 4, dtype=torch.bool)))


def test_mask_for_new_queries_after_a_cache() -> None:
    # Two new tokens after three cached ones: positions 3 and 4 see keys 0..3 and 0..4.
    assert causal_mask(2, 5, kind="bool").tolist() == [[True] * 4 + [False], [True] * 5]


def test_written_out_attention_equals_torch_sdpa() -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 4)
    ours = scaled_dot_product_attention(q, k, v, causal_mask(5), 8**-0.5)
    assert torch.allclose(ours, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-6)


def test_rmsnorm_matches_its_formula_and_keeps_dtype() -> None:
    torch.manual_seed(0)
    norm = RMSNorm(16, eps=1e-5)
    with torch.no_grad():
        norm.weight.copy_(torch.randn(16))
    x = torch.randn(3, 4, 16) * 5 + 2
    expected = x / torch.sqrt((x**2).mean(-1, keepdim=True) + 1e-5) * norm.weight
    assert torch.allclose(norm(x), expected, atol=1e-5)
    assert not torch.allclose(norm(x), F.layer_norm(x, (16,), norm.weight, eps=1e-5), atol=1e-2)  # no re-centring
    assert norm.to(torch.bfloat16)(x.bfloat16()).dtype == torch.bfloat16  # computed in float32, cast back


@pytest.mark.parametrize(
    "cfg", [Config.lesson().with_(hidden_size=256, num_heads=4, num_kv_heads=4), Config.tiny()], ids=["rope", "yarn"]
)
def test_rope_scores_depend_only_on_the_offset(cfg: Config) -> None:
    torch.manual_seed(0)
    d = cfg.rope_dim
    q, k = torch.randn(1, 1, 1, d), torch.randn(1, 1, 1, d)
    freqs = precompute_freqs_cis(cfg, 64)  # (64, d/2)

    def score(m: int, n: int) -> float:
        return (apply_rope(q, freqs[m : m + 1]) * apply_rope(k, freqs[n : n + 1])).sum().item()

    for offset in (0, 3, 17):
        scores = [score(n + offset, n) for n in (0, 5, 30)]
        assert max(scores) - min(scores) < 1e-4, f"offset {offset}: {scores}"
    assert abs(score(10, 0) - score(11, 0)) > 1e-3  # and it does depend on the offset


def test_rope_rotates_adjacent_pairs() -> None:
    # DeepSeek's layout: channels (0, 1) form one complex number, rotated by m * theta_0 = m.
    cfg = Config.lesson().with_(hidden_size=128, num_heads=32)  # head_dim 4, 8 KV heads
    x = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 1, 4)
    rotated = apply_rope(x, precompute_freqs_cis(cfg, 1, start=1))
    assert torch.allclose(rotated.flatten(), torch.tensor([math.cos(1), math.sin(1), 0, 0]), atol=1e-6)


def test_yarn_matches_published_figures() -> None:
    v3, k2 = Config.deepseek_v3(), Config.kimi_k2()
    assert yarn_correction_range(v3) == (10, 23)
    assert yarn_correction_range(k2) == (19, 20)
    assert round(softmax_scale(v3), 6) == 0.135234
    assert round(softmax_scale(k2), 6) == 0.130861
    plain = 1.0 / (v3.rope_theta ** (torch.arange(0, 64, 2) / 64))
    freqs = inverse_frequencies(v3)
    assert torch.allclose(freqs[:10], plain[:10])  # fast pairs kept
    assert torch.allclose(freqs[23:], plain[23:] / 40)  # slow pairs interpolated
