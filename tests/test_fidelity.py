"""Fidelity: the reference computes what transformers' ``DeepseekV3ForCausalLM`` computes.

A small, randomly initialised transformers model (MLA with YaRN, dense and MoE layers, grouped
routing, a non-zero correction bias, float32) is saved with ``save_pretrained``, loaded through
``SimpleKimiK2.from_pretrained``, and must give the same logits (max abs difference <= 1e-4) and the
same greedy continuation. transformers is only a test dependency: the independent implementation
we compare against.

Where transformers departs from DeepSeek's official inference code the reference follows the
official code, and that case is tested against a hand-computed expectation instead
(dropped expert groups masked with -inf, not 0.0: transformers issue #45440; the transformers 5.24
we test against already masks with -inf, so only the hand computation can catch a 0.0 fill).

Other departures of transformers 5.24 from the official code leave float32 logits unchanged for
these configs: it rotates the same adjacent pairs but writes them de-interleaved (the same
permutation of q and k, so the same scores); it scales cos/sin by
``get_mscale(factor, mscale) / get_mscale(factor, mscale_all_dim)`` and the softmax by
``get_mscale(factor, mscale_all_dim)**2`` where the official code uses its one ``mscale`` in the
softmax only (the same numbers whenever ``mscale == mscale_all_dim``, as published; the reference
follows transformers here, and the DeepSeek-V3-shaped case below sets them apart to test it); it
renormalises top-k weights only when ``norm_topk_prob`` and adds 1e-20 to the denominator.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from hf_checkpoints import HF_CONFIGS, random_hf_model
from transformers import DeepseekV3Config

from reference import Config, KVCache, Router, SimpleKimiK2, YaRN

TOLERANCE = 1e-4  # max abs logit difference allowed, float32


@pytest.fixture(scope="module", params=list(HF_CONFIGS))
def pair(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """(transformers model, our model loaded from its save_pretrained folder, the folder)."""
    hf = random_hf_model(request.param)
    folder = tmp_path_factory.mktemp(request.param)
    hf.save_pretrained(folder)
    return hf, SimpleKimiK2.from_pretrained(folder).eval(), folder


def test_save_pretrained_writes_the_published_layout(pair) -> None:
    """transformers 5.24 saves per-expert tensors and rope_parameters: the loader's input is the real one."""
    hf, _, folder = pair
    saved = json.loads((folder / "config.json").read_text())
    assert "rope_parameters" in saved and "rope_scaling" not in saved
    header_len = int.from_bytes((folder / "model.safetensors").read_bytes()[:8], "little")
    header = json.loads((folder / "model.safetensors").read_bytes()[8 : 8 + header_len])
    first_moe = hf.config.first_k_dense_replace
    assert f"model.layers.{first_moe}.mlp.experts.0.gate_proj.weight" in header
    assert f"model.layers.{first_moe}.mlp.experts.gate_up_proj" not in header


def test_config_from_saved_folder(pair) -> None:
    """Config.from_hf reads every architectural field of the saved config.json."""
    hf, ours, _ = pair
    c, rope = hf.config, hf.config.rope_parameters
    yarn = None
    if rope["rope_type"] == "yarn":
        yarn = YaRN(
            factor=rope["factor"],
            original_max_position_embeddings=rope["original_max_position_embeddings"],
            beta_fast=rope["beta_fast"],
            beta_slow=rope["beta_slow"],
            mscale=rope["mscale"],
            mscale_all_dim=rope["mscale_all_dim"],
        )
    assert ours.config == Config(
        vocab_size=c.vocab_size,
        hidden_size=c.hidden_size,
        num_layers=c.num_hidden_layers,
        num_heads=c.num_attention_heads,
        num_kv_heads=c.num_key_value_heads,
        intermediate_size=c.intermediate_size,
        rms_norm_eps=c.rms_norm_eps,
        rope_theta=rope["rope_theta"],
        max_position_embeddings=c.max_position_embeddings,
        attention="mla",
        q_lora_rank=c.q_lora_rank,
        kv_lora_rank=c.kv_lora_rank,
        qk_nope_head_dim=c.qk_nope_head_dim,
        qk_rope_head_dim=c.qk_rope_head_dim,
        v_head_dim=c.v_head_dim,
        n_routed_experts=c.n_routed_experts,
        n_shared_experts=c.n_shared_experts,
        num_experts_per_tok=c.num_experts_per_tok,
        moe_intermediate_size=c.moe_intermediate_size,
        n_group=c.n_group,
        topk_group=c.topk_group,
        routed_scaling_factor=c.routed_scaling_factor,
        first_k_dense_replace=c.first_k_dense_replace,
        norm_topk_prob=c.norm_topk_prob,
        rope_scaling=yarn,
        tie_word_embeddings=c.tie_word_embeddings,
    )


def test_every_weight_lands_in_its_place(pair) -> None:
    """Each of our tensors equals the transformers tensor it came from (experts: stacked, gate rows first)."""
    hf, ours, _ = pair
    theirs = {name.removeprefix("model."): t for name, t in hf.state_dict().items()}
    mine = ours.state_dict()
    for name in list(theirs):
        if name.endswith("mlp.experts.gate_up_proj"):
            gate, up = theirs.pop(name).chunk(2, dim=1)  # (E, I, H) each
            theirs[name.replace("gate_up_proj", "gate_proj")] = gate
            theirs[name.replace("gate_up_proj", "up_proj")] = up
    assert sorted(mine) == sorted(theirs)
    for name, tensor in mine.items():
        assert torch.equal(tensor, theirs[name]), name
    assert any(not torch.equal(b, torch.zeros_like(b)) for n, b in mine.items() if "correction_bias" in n)


def test_logits_match(pair) -> None:
    """Same logits for a batch of random sequences longer than YaRN's original context, max abs difference <= 1e-4."""
    hf, ours, _ = pair
    ids = torch.randint(0, hf.config.vocab_size, (2, 100), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = hf(ids).logits
        got = ours(ids)
    assert got.shape == expected.shape
    assert (got - expected).abs().max().item() <= TOLERANCE


def test_greedy_continuation_matches(pair) -> None:
    """Our cached greedy ``generate`` continues a prompt exactly as transformers' greedy search does."""
    hf, ours, _ = pair
    prompt = torch.randint(0, hf.config.vocab_size, (1, 9), generator=torch.Generator().manual_seed(2))
    expected = hf.generate(prompt, max_new_tokens=24, do_sample=False, attention_mask=torch.ones_like(prompt))
    got = ours.generate(prompt, max_new_tokens=24)
    assert got.tolist() == expected.tolist()


def test_cached_decoding_logits_match(pair) -> None:
    """Prefill then one token at a time through our cache (the absorbed MLA path) gives transformers' logits."""
    hf, ours, _ = pair
    ids = torch.randint(0, hf.config.vocab_size, (2, 30), generator=torch.Generator().manual_seed(3))
    cache = KVCache(ours.config.num_layers)
    with torch.no_grad():
        expected = hf(ids).logits  # (2, 30, vocab), no cache
        steps = [ours(ids[:, :10], cache)] + [ours(ids[:, t : t + 1], cache) for t in range(10, 30)]
    got = torch.cat(steps, dim=1)
    assert (got - expected).abs().max().item() <= TOLERANCE


def test_dropped_groups_are_masked_with_minus_infinity() -> None:
    """Group-limited routing when every biased score is negative: experts of dropped groups never win.

    Filling dropped groups with 0.0 (transformers issue #45440; the remote ``modeling_deepseek.py``
    that came with the checkpoints did so too) would pick them, since 0.0 beats every negative
    score of the kept groups. DeepSeek's official code masks them with -inf.
    """
    cfg = Config.tiny().with_(
        hidden_size=4, n_routed_experts=8, n_group=4, topk_group=2, num_experts_per_tok=3, routed_scaling_factor=2.5
    )
    router = Router(cfg)
    logits = [0.4, -0.3, 0.1, 0.8, 1.5, 1.2, 2.0, 1.0]  # per expert; groups (0,1) (2,3) (4,5) (6,7)
    bias = [-0.7, -0.5, -0.8, -0.7, -1.9, -1.9, -2.5, -1.9]
    with torch.no_grad():
        router.weight.zero_()
        router.weight[:, 0] = torch.tensor(logits)  # token e_0 gets exactly these router logits
        router.e_score_correction_bias.copy_(torch.tensor(bias))
    weights, indices = router(torch.tensor([[1.0, 0.0, 0.0, 0.0]]))

    # By hand. Unbiased scores s = sigmoid(logit); biased = s + bias, all negative here.
    s = [1 / (1 + math.exp(-x)) for x in logits]
    biased = [si + bi for si, bi in zip(s, bias, strict=True)]
    assert max(biased) < 0
    group_score = [sum(sorted(biased[2 * g : 2 * g + 2])[-2:]) for g in range(4)]
    kept_groups = sorted(range(4), key=lambda g: -group_score[g])[:2]
    assert kept_groups == [0, 1]  # groups 2 and 3 hold the largest raw logits but are dropped
    candidates = [e for e in range(8) if e // 2 in kept_groups]
    chosen = sorted(candidates, key=lambda e: -biased[e])[:3]
    expected_weights = [2.5 * s[e] / sum(s[j] for j in chosen) for e in chosen]

    assert sorted(indices[0].tolist()) == sorted(chosen) == [0, 1, 3]
    got = dict(zip(indices[0].tolist(), weights[0].tolist(), strict=True))
    assert [got[e] for e in chosen] == pytest.approx(expected_weights, rel=1e-6)


# The published config.json files of the two models (values as in the Hugging Face repositories
# moonshotai/Kimi-K2-Instruct, July 2025, and deepseek-ai/DeepSeek-V3; auto_map and
# quantization_config left out since they do not describe the architecture).
PUBLISHED_KIMI_K2 = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "bos_token_id": 163584,
    "eos_token_id": 163585,
    "ep_size": 1,
    "first_k_dense_replace": 1,
    "hidden_act": "silu",
    "hidden_size": 7168,
    "initializer_range": 0.02,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 131072,
    "model_type": "kimi_k2",
    "moe_intermediate_size": 2048,
    "moe_layer_freq": 1,
    "n_group": 1,
    "n_routed_experts": 384,
    "n_shared_experts": 1,
    "norm_topk_prob": True,
    "num_attention_heads": 64,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 64,
    "num_nextn_predict_layers": 0,
    "pretraining_tp": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "rms_norm_eps": 1e-06,
    "rope_scaling": {
        "beta_fast": 1.0,
        "beta_slow": 1.0,
        "factor": 32.0,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
        "original_max_position_embeddings": 4096,
        "type": "yarn",
    },
    "rope_theta": 50000.0,
    "routed_scaling_factor": 2.827,
    "scoring_func": "sigmoid",
    "seq_aux": True,
    "tie_word_embeddings": False,
    "topk_group": 1,
    "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.48.3",
    "use_cache": True,
    "v_head_dim": 128,
    "vocab_size": 163840,
}
PUBLISHED_DEEPSEEK_V3 = {
    "architectures": ["DeepseekV3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "aux_loss_alpha": 0.001,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "ep_size": 1,
    "first_k_dense_replace": 3,
    "hidden_act": "silu",
    "hidden_size": 7168,
    "initializer_range": 0.02,
    "intermediate_size": 18432,
    "kv_lora_rank": 512,
    "max_position_embeddings": 163840,
    "model_type": "deepseek_v3",
    "moe_intermediate_size": 2048,
    "moe_layer_freq": 1,
    "n_group": 8,
    "n_routed_experts": 256,
    "n_shared_experts": 1,
    "norm_topk_prob": True,
    "num_attention_heads": 128,
    "num_experts_per_tok": 8,
    "num_hidden_layers": 61,
    "num_key_value_heads": 128,
    "num_nextn_predict_layers": 1,
    "pretraining_tp": 1,
    "q_lora_rank": 1536,
    "qk_nope_head_dim": 128,
    "qk_rope_head_dim": 64,
    "rms_norm_eps": 1e-06,
    "rope_scaling": {
        "beta_fast": 32,
        "beta_slow": 1,
        "factor": 40,
        "mscale": 1.0,
        "mscale_all_dim": 1.0,
        "original_max_position_embeddings": 4096,
        "type": "yarn",
    },
    "rope_theta": 10000,
    "routed_scaling_factor": 2.5,
    "scoring_func": "sigmoid",
    "seq_aux": True,
    "tie_word_embeddings": False,
    "topk_group": 4,
    "topk_method": "noaux_tc",
    "torch_dtype": "bfloat16",
    "transformers_version": "4.33.1",
    "use_cache": True,
    "v_head_dim": 128,
    "vocab_size": 129280,
}


@pytest.mark.parametrize(
    ("published", "preset"),
    [(PUBLISHED_KIMI_K2, Config.kimi_k2()), (PUBLISHED_DEEPSEEK_V3, Config.deepseek_v3())],
    ids=["kimi-k2", "deepseek-v3"],
)
def test_from_hf_reads_published_configs(published: dict, preset: Config, tmp_path: Path) -> None:
    """The published config.json (rope_scaling) and transformers 5's rewrite of it (rope_parameters)
    both give the preset, field for field."""
    assert Config.from_hf(published) == preset
    DeepseekV3Config(**published).save_pretrained(tmp_path)
    rewritten = json.loads((tmp_path / "config.json").read_text())
    assert "rope_parameters" in rewritten and "rope_scaling" not in rewritten
    assert Config.from_hf(tmp_path / "config.json") == preset
