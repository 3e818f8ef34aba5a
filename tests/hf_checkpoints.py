"""Small transformers ``DeepseekV3ForCausalLM`` models and hand-made safetensors files for the tests.

Everything is made at test time in temporary folders; nothing is downloaded or committed.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import torch
from transformers import DeepseekV3Config, DeepseekV3ForCausalLM
from transformers.models.deepseek_v3.modeling_deepseek_v3 import DeepseekV3TopkRouter


def yarn(
    theta: float,
    factor: float,
    original: int,
    beta_fast: float,
    beta_slow: float,
    mscale: float = 1.0,
    mscale_all_dim: float = 1.0,
) -> dict:
    """transformers 5's ``rope_parameters`` for YaRN."""
    return dict(
        rope_type="yarn",
        rope_theta=theta,
        factor=factor,
        original_max_position_embeddings=original,
        beta_fast=beta_fast,
        beta_slow=beta_slow,
        mscale=mscale,
        mscale_all_dim=mscale_all_dim,
    )


# Small configs in transformers' own terms. Each keeps max_position_embeddings = factor *
# original_max_position_embeddings, which transformers checks.
BASE = dict(
    vocab_size=128,
    hidden_size=64,
    intermediate_size=96,
    moe_intermediate_size=32,
    num_attention_heads=4,
    num_key_value_heads=4,
    kv_lora_rank=32,
    q_lora_rank=48,
    qk_nope_head_dim=16,
    qk_rope_head_dim=16,
    v_head_dim=16,
    rms_norm_eps=1e-6,
    bos_token_id=None,
    eos_token_id=None,  # so that transformers' generate never stops early
    pad_token_id=None,
    tie_word_embeddings=False,
)
HF_CONFIGS = {
    # DeepSeek-V3-shaped: 8 groups of experts become 4 here, top-2 groups; YaRN with
    # mscale != mscale_all_dim, so the cos/sin amplitude is not 1; rms_norm_eps far from 1e-6,
    # so that the latent norms' fixed eps 1e-6 shows in the logits.
    "deepseek-v3-shaped": dict(
        BASE,
        rms_norm_eps=1e-4,
        num_hidden_layers=4,
        first_k_dense_replace=2,
        n_routed_experts=16,
        n_shared_experts=1,
        num_experts_per_tok=4,
        n_group=4,
        topk_group=2,
        routed_scaling_factor=2.5,
        max_position_embeddings=256,
        rope_parameters=yarn(10000.0, 4.0, 64, 32.0, 1.0, mscale=0.9, mscale_all_dim=0.7),
    ),
    # Kimi-K2-shaped: one group, one dense layer, beta_fast = beta_slow = 1, rope_theta 50000.
    "kimi-k2-shaped": dict(
        BASE,
        num_hidden_layers=3,
        first_k_dense_replace=1,
        n_routed_experts=12,
        n_shared_experts=1,
        num_experts_per_tok=3,
        n_group=1,
        topk_group=1,
        routed_scaling_factor=2.827,
        max_position_embeddings=256,
        rope_parameters=yarn(50000.0, 8.0, 32, 1.0, 1.0),
    ),
    # Queries projected directly (q_lora_rank None, as DeepSeek-V2-Lite), two shared experts.
    "no-q-lora": dict(
        BASE,
        q_lora_rank=None,
        num_hidden_layers=4,
        first_k_dense_replace=2,
        n_routed_experts=8,
        n_shared_experts=2,
        num_experts_per_tok=2,
        n_group=2,
        topk_group=1,
        routed_scaling_factor=1.5,
        max_position_embeddings=512,
        rope_parameters=yarn(10000.0, 16.0, 32, 32.0, 1.0),
    ),
    # Plain RoPE (no YaRN) and top-k weights left unnormalised (norm_topk_prob False).
    "plain-rope": dict(
        BASE,
        num_hidden_layers=3,
        first_k_dense_replace=1,
        n_routed_experts=8,
        n_shared_experts=1,
        num_experts_per_tok=2,
        n_group=4,
        topk_group=2,
        norm_topk_prob=False,
        routed_scaling_factor=1.0,
        max_position_embeddings=512,
        rope_parameters=dict(rope_type="default", rope_theta=10000.0),
    ),
}


def random_hf_model(name: str, seed: int = 0, **changes: object) -> DeepseekV3ForCausalLM:
    """A transformers model whose every weight, norm gain and correction bias is random.

    ``changes`` override fields of the named config (``tie_word_embeddings=True``, ...).

    Weights get a larger spread than transformers' init (std 0.02) so that logits differ clearly
    and greedy decoding is not decided by rounding; the bias is wide enough that some biased
    router scores go negative.
    """
    torch.manual_seed(seed)
    model = DeepseekV3ForCausalLM(DeepseekV3Config(**{**HF_CONFIGS[name], **changes})).eval()
    with torch.no_grad():
        for param_name, param in model.named_parameters():
            if param_name.endswith("norm.weight"):
                param.copy_(1 + 0.2 * torch.randn_like(param))
            else:
                param.normal_(0.0, 0.1)
        for module in model.modules():
            if isinstance(module, DeepseekV3TopkRouter):
                module.e_score_correction_bias.copy_(0.5 * torch.randn_like(module.e_score_correction_bias))
    return model


def write_safetensors(path: Path, entries: dict[str, tuple[str, list[int], bytes]], pad_to: int = 8) -> None:
    """Write a safetensors file by hand: ``{name: (dtype name, shape, raw bytes)}``, in the given order.

    Unlike the ``safetensors`` package this neither sorts nor aligns the tensors, and it accepts
    any dtype name, so the tests can make misaligned, unusual and broken files.
    """
    header, offset = {}, 0
    for name, (dtype, shape, data) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % pad_to)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(data for _, _, data in entries.values()))
