"""Closed-form counts against the model built on the meta device, and the published figures."""

from __future__ import annotations

import pytest
import torch

from reference import (
    Config,
    SimpleKimiK2,
    count_activated_parameters,
    count_parameters,
    flops_per_token,
    kv_cache_bytes_per_token,
    kv_cache_numbers_per_token,
    parameter_breakdown,
)

PRESETS = [Config.lesson(), Config.tiny(), Config.deepseek_v3(), Config.kimi_k2()]


@pytest.mark.parametrize("cfg", PRESETS, ids=lambda c: c.name)
def test_closed_form_equals_meta_device_count(cfg: Config) -> None:
    with torch.device("meta"):
        model = SimpleKimiK2(cfg)
    assert count_parameters(cfg) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("cfg", "variant"),
    [
        (Config.tiny(), {"q_lora_rank": None}),
        (Config.tiny(), {"tie_word_embeddings": True}),
        (Config.tiny(), {"n_shared_experts": 2, "first_k_dense_replace": 0}),
        (Config.lesson(), {"num_kv_heads": 32, "head_dim": 64}),
    ],
)
def test_closed_form_follows_every_field(cfg: Config, variant: dict) -> None:
    cfg = cfg.with_(**variant)
    with torch.device("meta"):
        model = SimpleKimiK2(cfg)
    assert count_parameters(cfg) == sum(p.numel() for p in model.parameters())


def test_published_totals_and_activated_counts() -> None:
    # transformers' DeepseekV3ForCausalLM on the meta device (MTP module excluded, router bias a buffer).
    assert count_parameters(Config.deepseek_v3()) == 671_026_404_352
    assert count_parameters(Config.kimi_k2()) == 1_026_408_209_408
    assert count_activated_parameters(Config.deepseek_v3()) == 37_552_282_624
    assert count_activated_parameters(Config.kimi_k2()) == 32_861_477_888


def test_router_bias_is_a_buffer_not_a_parameter() -> None:
    model = SimpleKimiK2(Config.tiny())
    names = {name for name, _ in model.named_parameters()}
    assert not any("e_score_correction_bias" in name for name in names)
    assert any("e_score_correction_bias" in name for name, _ in model.named_buffers())


def test_activated_counts_only_the_chosen_experts() -> None:
    cfg = Config.tiny()
    total, active = parameter_breakdown(cfg), parameter_breakdown(cfg, activated=True)
    assert total["routed_experts"] * cfg.num_experts_per_tok == active["routed_experts"] * cfg.n_routed_experts
    assert {k: v for k, v in total.items() if k != "routed_experts"} == {
        k: v for k, v in active.items() if k != "routed_experts"
    }


def test_dense_model_activates_everything() -> None:
    assert count_activated_parameters(Config.lesson()) == count_parameters(Config.lesson())


def test_kv_cache_sizes_match_the_deepseek_v2_table() -> None:
    v3, k2, lesson = Config.deepseek_v3(), Config.kimi_k2(), Config.lesson()
    assert kv_cache_numbers_per_token(v3, "mla") == kv_cache_numbers_per_token(k2, "mla") == 512 + 64
    assert kv_cache_bytes_per_token(v3, "mla") == kv_cache_bytes_per_token(k2, "mla") == 576 * 61 * 2
    assert kv_cache_numbers_per_token(v3, "mla-expanded") == 128 * (192 + 128)
    assert kv_cache_numbers_per_token(lesson, "gqa") == 2 * 8 * 128
    assert kv_cache_numbers_per_token(lesson, "mha") == 4 * kv_cache_numbers_per_token(lesson, "gqa")
    assert kv_cache_numbers_per_token(lesson, "mqa") == 2 * 128
    with pytest.raises(ValueError, match="uses GQA attention: it has no MLA latent"):
        kv_cache_numbers_per_token(lesson, "mla")


def test_flops_are_two_per_activated_weight_plus_attention() -> None:
    cfg = Config.kimi_k2()
    matmul = 2 * (count_activated_parameters(cfg) - cfg.vocab_size * cfg.hidden_size)
    assert flops_per_token(cfg) == matmul
    assert flops_per_token(cfg, context=1000) - matmul == 2 * 61 * 64 * (192 + 128) * 1000
