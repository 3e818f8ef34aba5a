"""The presets and the Hugging Face config reader."""

from __future__ import annotations

import json
import re

import pytest

from reference import Config, YaRN


def test_published_presets_differ_exactly_where_kimi_differs() -> None:
    v3, k2 = Config.deepseek_v3(), Config.kimi_k2()
    changed = {name for name in v3.__dataclass_fields__ if getattr(v3, name) != getattr(k2, name)}
    assert changed == {
        "name", "vocab_size", "num_heads", "num_kv_heads", "max_position_embeddings", "n_routed_experts",
        "n_group", "topk_group", "routed_scaling_factor", "first_k_dense_replace", "rope_theta", "rope_scaling",
    }  # fmt: skip
    assert k2.rope_scaling == YaRN(factor=32.0, beta_fast=1.0, beta_slow=1.0)
    assert (k2.num_heads, k2.n_routed_experts, k2.first_k_dense_replace, k2.vocab_size) == (64, 384, 1, 163840)


def test_lesson_preset_is_the_sheet_skeleton() -> None:
    cfg = Config.lesson()
    assert (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.num_kv_heads) == (4096, 30, 32, 8)
    assert cfg.attention == "gqa" and cfg.n_routed_experts == 0 and cfg.gqa_head_dim == 128
    assert Config() == cfg  # the defaults are the lesson config


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"num_kv_heads": 5}, "num_heads (32) must be a multiple of num_kv_heads (5)"),
        ({"hidden_size": 100}, "hidden_size (100) must be a multiple of num_heads (32)"),
        ({"attention": "sliding"}, "attention must be 'gqa' or 'mla', got 'sliding'"),
        ({"n_routed_experts": 8, "n_group": 3, "num_experts_per_tok": 2}, "must be a multiple of n_group (3)"),
        ({"n_routed_experts": 8, "n_group": 4, "topk_group": 1, "num_experts_per_tok": 3}, "must lie in 1..2"),
    ],
)
def test_invalid_configs_say_what_is_wrong(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Config.lesson().with_(**changes)


def hf_dict(cfg: Config, rope_key: str) -> dict:
    """A Hugging Face config.json of ``cfg``, with YaRN under ``rope_key``."""
    yarn = cfg.rope_scaling
    rope = {"type": "yarn", "factor": yarn.factor, "beta_fast": yarn.beta_fast, "beta_slow": yarn.beta_slow,
            "mscale": yarn.mscale, "mscale_all_dim": yarn.mscale_all_dim,
            "original_max_position_embeddings": yarn.original_max_position_embeddings}  # fmt: skip
    hf = {
        "model_type": "kimi_k2", "vocab_size": cfg.vocab_size, "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers, "num_attention_heads": cfg.num_heads,
        "num_key_value_heads": cfg.num_kv_heads, "intermediate_size": cfg.intermediate_size,
        "moe_intermediate_size": cfg.moe_intermediate_size, "n_routed_experts": cfg.n_routed_experts,
        "n_shared_experts": cfg.n_shared_experts, "num_experts_per_tok": cfg.num_experts_per_tok,
        "n_group": cfg.n_group, "topk_group": cfg.topk_group, "routed_scaling_factor": cfg.routed_scaling_factor,
        "first_k_dense_replace": cfg.first_k_dense_replace, "q_lora_rank": cfg.q_lora_rank,
        "kv_lora_rank": cfg.kv_lora_rank, "qk_nope_head_dim": cfg.qk_nope_head_dim,
        "qk_rope_head_dim": cfg.qk_rope_head_dim, "v_head_dim": cfg.v_head_dim, "rms_norm_eps": cfg.rms_norm_eps,
        "max_position_embeddings": cfg.max_position_embeddings, "scoring_func": "sigmoid",
        "norm_topk_prob": True, "tie_word_embeddings": False,
    }  # fmt: skip
    if rope_key == "rope_parameters":
        hf["rope_parameters"] = {**rope, "rope_type": rope.pop("type"), "rope_theta": cfg.rope_theta}
    else:
        hf["rope_scaling"], hf["rope_theta"] = rope, cfg.rope_theta
    return hf


@pytest.mark.parametrize("rope_key", ["rope_scaling", "rope_parameters"])
def test_from_hf_reads_both_rope_layouts(rope_key: str, tmp_path) -> None:
    (tmp_path / "config.json").write_text(json.dumps(hf_dict(Config.kimi_k2(), rope_key)))
    assert Config.from_hf(tmp_path) == Config.kimi_k2()
    assert Config.from_hf(tmp_path / "config.json") == Config.kimi_k2()


def test_from_hf_refuses_other_models_by_name(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"model_type is 'llama'; this reference reads 'deepseek_v3' or 'kimi_k2'"):
        Config.from_hf({"model_type": "llama"})
    with pytest.raises(FileNotFoundError, match=r"no config\.json at"):
        Config.from_hf(tmp_path)
