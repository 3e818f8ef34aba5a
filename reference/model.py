r"""The whole model: embeddings, pre-norm decoder layers, final norm, LM head.

.. code-block:: text

    input_ids (B, T)
      -> embed_tokens                          (B, T, hidden)
      -> num_layers x DecoderLayer:
             h = h + attention(RMSNorm(h))      residual 1; RoPE inside attention, on q and k
             h = h + mlp_or_moe(RMSNorm(h))     residual 2
      -> norm (final RMSNorm)
      -> lm_head                               (B, T, vocab_size) logits

The norms sit *before* each sublayer (pre-norm), so the residual stream itself is never
normalised until the final norm: every layer's output reaches the loss, and the loss's gradient
reaches every layer, through an identity path. Xiong et al. (2020) show that this keeps the
gradients well-behaved at initialisation, where post-norm's are large near the output, and that
pre-norm models trained without a learning-rate warm-up reach results comparable to post-norm
ones trained with it (DeepSeek-V3 still warms up, for its first 2,000 steps).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .attention import causal_mask
from .cache import KVCache
from .config import Config
from .gqa import GroupedQueryAttention
from .mla import MultiHeadLatentAttention
from .mlp import SwiGLU
from .moe import Experts, MoE, Router
from .norm import RMSNorm
from .rope import precompute_freqs_cis


class DecoderLayer(nn.Module):
    """One pre-norm block: attention then MLP (or MoE), each wrapped in a residual connection.

    Args:
        cfg: the model config.
        layer_idx: position in the stack; layers before ``cfg.first_k_dense_replace`` stay dense.
    """

    def __init__(self, cfg: Config, layer_idx: int) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = MultiHeadLatentAttention(cfg) if cfg.attention == "mla" else GroupedQueryAttention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MoE(cfg) if cfg.is_moe_layer(layer_idx) else SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(
        self,
        h: torch.Tensor,
        freqs_cis: torch.Tensor,
        mask: torch.Tensor | None,
        cache: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:  # (B, T, hidden) -> (B, T, hidden)
        h = h + self.self_attn(self.input_layernorm(h), freqs_cis, mask, cache)  # residual 1
        return h + self.mlp(self.post_attention_layernorm(h))  # residual 2


class SimpleKimiK2(nn.Module):
    """A decoder-only language model of the Kimi-K2 / DeepSeek-V3 family.

    Args:
        config: a :class:`~reference.config.Config`; ``Config.lesson()`` gives the task sheet's
            GQA skeleton, ``Config.kimi_k2()`` the real model (build that one on the meta device).
    """

    def __init__(self, config: Config) -> None:
        super().__init__()
        self.config = config
        # Filled by _init_weights; passing the tensor skips nn.Embedding's own init, whose first
        # call on the meta device costs torch a second and a half of imports.
        self.embed_tokens = nn.Embedding(
            config.vocab_size, config.hidden_size, _weight=torch.empty(config.vocab_size, config.hidden_size)
        )
        self.layers = nn.ModuleList(DecoderLayer(config, i) for i in range(config.num_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.apply(_init_weights)
        self._freqs_cis: torch.Tensor | None = None  # RoPE rotations of positions 0.., see rotations()

    def rotations(self, start: int, T: int, device: torch.device) -> torch.Tensor:
        """RoPE's rotations for positions ``start .. start + T - 1``, ``(T, rope_dim/2)``, complex.

        Computed once for a range of positions and sliced, as DeepSeek's own code precomputes
        ``freqs_cis``: a decoding step then costs one slice instead of recomputing YaRN's frequencies.
        The range doubles whenever a longer sequence comes, so nothing is computed for positions never used.
        """
        end = start + T
        cached = self._freqs_cis
        if cached is None or len(cached) < end or cached.device != device:
            size = max(end, 2 * len(cached)) if cached is not None else end
            self._freqs_cis = cached = precompute_freqs_cis(self.config, size).to(device)  # (size, rope_dim/2)
        return cached[start:end]

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """``input_ids``: ``(B, T)`` token ids. Returns logits ``(B, T, vocab_size)``.

        With a ``cache``, the tokens continue the cached sequence and are appended to it.
        """
        T = input_ids.shape[1]
        start = cache.length if cache is not None else 0
        freqs_cis = self.rotations(start, T, input_ids.device)  # (T, rope_dim/2)
        # One new token may see everything before it: no mask needed.
        mask = causal_mask(T, start + T, device=input_ids.device) if T > 1 else None  # (T, S)
        h = self.embed_tokens(input_ids)  # (B, T, hidden)
        for i, layer in enumerate(self.layers):
            h = layer(h, freqs_cis, mask, cache.layers[i] if cache is not None else None)
        if cache is not None:
            cache.length += T
        return self.lm_head(self.norm(h))  # (B, T, vocab)

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, max_new_tokens: int, use_cache: bool = True) -> torch.Tensor:
        """Greedy decoding: append ``max_new_tokens`` argmax tokens to ``input_ids`` ``(B, T)``.

        With ``use_cache`` the prompt is processed once and each step feeds one token;
        without it every step recomputes the whole sequence (same result, quadratic cost).
        """
        cache = KVCache(self.config.num_layers) if use_cache else None
        tokens, step_input = input_ids, input_ids
        for _ in range(max_new_tokens):
            logits = self(step_input, cache)  # (B, T_step, vocab)
            next_token = logits[:, -1].argmax(dim=-1, keepdim=True)  # (B, 1)
            tokens = torch.cat([tokens, next_token], dim=1)
            step_input = next_token if use_cache else tokens
        return tokens

    @classmethod
    def from_pretrained(cls, folder: str | Path, dtype: torch.dtype = torch.float32) -> SimpleKimiK2:
        """Load a local Hugging Face folder (``config.json`` and safetensors) of a DeepSeek-V3-type model.

        Nothing is downloaded. A missing, unexpected or mis-shaped tensor raises an error naming it.
        """
        from .loading import checkpoint_folder, load_hf_state_dict

        config = Config.from_hf(checkpoint_folder(folder))
        with torch.device("meta"):
            model = cls(config)
        state = load_hf_state_dict(folder, model)
        model.load_state_dict({name: t.to(dtype) for name, t in state.items()}, strict=True, assign=True)
        if config.tie_word_embeddings:  # assign=True gave the head its own Parameter: tie it again
            model.lm_head.weight = model.embed_tokens.weight
        for router in (m for m in model.modules() if isinstance(m, Router)):
            router.e_score_correction_bias = router.e_score_correction_bias.float()
        return model.eval()


def _init_weights(module: nn.Module) -> None:
    """Normal(0, 0.02) weights, as DeepSeek-V3's ``initializer_range``; norms start at 1.

    Tensors on the meta device have no values to fill, so they are left alone (this keeps
    building the 1T-parameter Kimi-K2 for counting well under a second).
    """
    if any(p.is_meta for p in module.parameters(recurse=False)):
        return
    if isinstance(module, (nn.Linear, nn.Embedding, Router)):
        nn.init.normal_(module.weight, std=0.02)
    elif isinstance(module, Experts):
        for weight in (module.gate_proj, module.up_proj, module.down_proj):
            nn.init.normal_(weight, std=0.02)
