"""The Kimi-K2 / DeepSeek-V3 architecture in readable PyTorch, one concept per module.

============  ==========================================================
module        concept
============  ==========================================================
config        :class:`Config` and the presets (lesson, tiny, DeepSeek-V3, Kimi-K2)
norm          :class:`RMSNorm`
rope          RoPE, YaRN's frequency correction and softmax scale
attention     the causal mask and scaled dot-product attention, written out
gqa           grouped-query attention (the task sheet's skeleton)
mla           multi-head latent attention, naive and absorbed
mlp           the SwiGLU feed-forward block
moe           sigmoid router, experts, shared experts, load balancing
cache         the KV cache
model         :class:`DecoderLayer` and :class:`SimpleKimiK2`
counting      parameter counts, FLOPs, KV-cache sizes in closed form
loading       reading a local Hugging Face checkpoint
============  ==========================================================
"""

from .attention import causal_mask, scaled_dot_product_attention
from .cache import KVCache
from .config import Config, YaRN
from .counting import (
    count_activated_parameters,
    count_parameters,
    flops_per_token,
    kv_cache_bytes_per_token,
    kv_cache_numbers_per_token,
    parameter_breakdown,
)
from .gqa import GroupedQueryAttention
from .mla import MultiHeadLatentAttention
from .mlp import SwiGLU
from .model import DecoderLayer, SimpleKimiK2
from .moe import Experts, MoE, Router, balance_loss, update_correction_bias
from .norm import RMSNorm
from .rope import (
    apply_rope,
    inverse_frequencies,
    precompute_freqs_cis,
    softmax_scale,
    yarn_correction_range,
    yarn_get_mscale,
)

__all__ = [
    "Config",
    "DecoderLayer",
    "Experts",
    "GroupedQueryAttention",
    "KVCache",
    "MoE",
    "MultiHeadLatentAttention",
    "RMSNorm",
    "Router",
    "SimpleKimiK2",
    "SwiGLU",
    "YaRN",
    "apply_rope",
    "balance_loss",
    "causal_mask",
    "count_activated_parameters",
    "count_parameters",
    "flops_per_token",
    "inverse_frequencies",
    "kv_cache_bytes_per_token",
    "kv_cache_numbers_per_token",
    "parameter_breakdown",
    "precompute_freqs_cis",
    "scaled_dot_product_attention",
    "softmax_scale",
    "update_correction_bias",
    "yarn_correction_range",
    "yarn_get_mscale",
]
