"""Parameter counts, activated parameters, FLOPs and KV-cache sizes, in closed form.

Every figure the docs show about model size comes from here, and the tests check each
closed form against ``sum(p.numel() for p in model.parameters())`` of the model built on the
meta device. Conventions: the router's correction bias is a buffer, not a parameter (as in
transformers); "activated" counts what one token uses, embedding and LM head included.
"""

from __future__ import annotations

from typing import Literal

from .config import Config

Scheme = Literal["mha", "gqa", "mqa", "mla", "mla-expanded"]


def attention_parameters(cfg: Config) -> int:
    """Weights of one attention block (projections and, for MLA, its two latent norms)."""
    H = cfg.hidden_size
    if cfg.attention == "gqa":
        d, nh, nkv = cfg.gqa_head_dim, cfg.num_heads, cfg.num_kv_heads
        return H * nh * d + 2 * H * nkv * d + nh * d * H  # q, k and v, o
    nh, q_out = cfg.num_heads, cfg.num_heads * cfg.qk_head_dim
    if cfg.q_lora_rank is None:
        q = H * q_out
    else:
        q = H * cfg.q_lora_rank + cfg.q_lora_rank + cfg.q_lora_rank * q_out  # q_a, its norm, q_b
    kv = (
        H * (cfg.kv_lora_rank + cfg.qk_rope_head_dim)  # kv_a: latent and shared rope key
        + cfg.kv_lora_rank  # kv_a_layernorm
        + cfg.kv_lora_rank * nh * (cfg.qk_nope_head_dim + cfg.v_head_dim)  # kv_b
    )
    return q + kv + nh * cfg.v_head_dim * H  # ... + o_proj


def parameter_breakdown(cfg: Config, activated: bool = False) -> dict[str, int]:
    """Parameters per component, summed over layers.

    With ``activated=True``, routed experts count only the ``num_experts_per_tok`` a token uses.
    """
    H, L = cfg.hidden_size, cfg.num_layers
    n_moe = sum(cfg.is_moe_layer(i) for i in range(L))
    expert = 3 * H * cfg.moe_intermediate_size  # one SwiGLU expert
    routed_per_layer = cfg.num_experts_per_tok if activated else cfg.n_routed_experts
    return {
        "embedding": cfg.vocab_size * H,
        "attention": L * attention_parameters(cfg),
        "norms": L * 2 * H + H,  # two per layer, one final
        "dense_mlp": (L - n_moe) * 3 * H * cfg.intermediate_size,
        "router": n_moe * cfg.n_routed_experts * H,
        "routed_experts": n_moe * routed_per_layer * expert,
        "shared_experts": n_moe * cfg.n_shared_experts * expert,
        "lm_head": 0 if cfg.tie_word_embeddings else cfg.vocab_size * H,
    }


def count_parameters(cfg: Config) -> int:
    """Total parameters, equal to ``sum(p.numel() for p in SimpleKimiK2(cfg).parameters())``."""
    return sum(parameter_breakdown(cfg).values())


def count_activated_parameters(cfg: Config) -> int:
    """Parameters one token passes through (embedding and LM head included)."""
    return sum(parameter_breakdown(cfg, activated=True).values())


def flops_per_token(cfg: Config, context: int = 0) -> int:
    """Forward FLOPs for one token: 2 per activated weight of a matrix product, plus attention scores.

    The embedding is a lookup, not a product, so it is left out. ``context`` is the number of
    earlier tokens attended to; attention then costs ``2 * heads * (d_qk + d_v)`` per key per layer
    (naive MLA, as in training).
    """
    weights = count_activated_parameters(cfg) - cfg.vocab_size * cfg.hidden_size
    if cfg.attention == "gqa":
        per_key = cfg.num_heads * 2 * cfg.gqa_head_dim
    else:
        per_key = cfg.num_heads * (cfg.qk_head_dim + cfg.v_head_dim)
    return 2 * weights + 2 * cfg.num_layers * per_key * context


def kv_cache_numbers_per_token(cfg: Config, scheme: Scheme) -> int:
    """Numbers cached per token per layer (DeepSeek-V2 report, Table 1).

    ``mha`` ``2 n_h d_h``; ``gqa`` ``2 n_g d_h``; ``mqa`` ``2 d_h``; ``mla`` ``d_c + d_h^R`` (the
    absorbed cache); ``mla-expanded`` ``n_h (d_qk + d_v)``, what an implementation that expands
    keys and values before caching keeps (transformers did until a change within its
    5.x releases). For MLA models ``d_h`` is the per-head key width without RoPE
    (``qk_nope_head_dim``).
    """
    d_h = cfg.gqa_head_dim if cfg.attention == "gqa" else cfg.qk_nope_head_dim
    if scheme == "mha":
        return 2 * cfg.num_heads * d_h
    if scheme == "gqa":
        return 2 * cfg.num_kv_heads * d_h
    if scheme == "mqa":
        return 2 * d_h
    if scheme in ("mla", "mla-expanded") and cfg.attention != "mla":
        raise ValueError(f"{cfg.name} uses GQA attention: it has no MLA latent to cache")
    if scheme == "mla":
        return cfg.kv_lora_rank + cfg.qk_rope_head_dim
    if scheme == "mla-expanded":
        return cfg.num_heads * (cfg.qk_head_dim + cfg.v_head_dim)
    raise ValueError(f"unknown KV-cache scheme {scheme!r}: use mha, gqa, mqa, mla or mla-expanded")


def kv_cache_bytes_per_token(cfg: Config, scheme: Scheme, bytes_per_number: int = 2) -> int:
    """Bytes cached per token over all layers (``bytes_per_number`` 2 for bf16)."""
    return kv_cache_numbers_per_token(cfg, scheme) * cfg.num_layers * bytes_per_number
