"""The model configuration: one dataclass, four presets, and a reader for Hugging Face ``config.json``.

Field names follow the task sheet where it names them (``hidden_size``, ``num_layers``,
``num_heads``, ``num_kv_heads``, ...) and Hugging Face's ``DeepseekV3Config`` for the rest
(``q_lora_rank``, ``n_routed_experts``, ...), so a learner can hold the sheet, this file and
a published ``config.json`` side by side.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal


@dataclass(frozen=True)
class YaRN:
    """YaRN context extension of RoPE (Peng et al., 2023), as the published configs set it.

    Args:
        factor: how many times longer than ``original_max_position_embeddings`` the context becomes.
        original_max_position_embeddings: the context length the model was pre-trained at (4096).
        beta_fast: rotations over the original context above which a frequency is left alone.
        beta_slow: rotations below which a frequency is fully interpolated (divided by ``factor``).
        mscale: amplitude scale of cos/sin, ``0.1 * mscale * ln(factor) + 1`` (divided by the next).
        mscale_all_dim: scale applied to the softmax (squared), ``0.1 * mscale_all_dim * ln(factor) + 1``.
    """

    factor: float
    original_max_position_embeddings: int = 4096
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0
    mscale_all_dim: float = 1.0


@dataclass(frozen=True)
class Config:
    """Every number that defines a model of this family.

    The same class describes the task sheet's GQA skeleton (``attention="gqa"``, no experts)
    and the real Kimi-K2 / DeepSeek-V3 (``attention="mla"``, mixture of experts).

    Args:
        vocab_size: number of token ids; rows of the embedding and of the LM head.
        hidden_size: width of the residual stream.
        num_layers: number of decoder layers.
        num_heads: query heads.
        num_kv_heads: key/value heads of GQA (``num_heads`` means MHA, 1 means MQA). Unused by MLA.
        intermediate_size: hidden width of the dense SwiGLU MLP.
        rms_norm_eps: epsilon inside RMSNorm's square root.
        rope_theta: RoPE base; frequencies are ``rope_theta ** (-2i / d)``.
        max_position_embeddings: longest context the model serves.
        attention: ``"gqa"`` (grouped-query) or ``"mla"`` (multi-head latent attention).
        head_dim: GQA head width; ``None`` means ``hidden_size // num_heads``.
        q_lora_rank: MLA query latent width; ``None`` projects queries directly (DeepSeek-V2-Lite).
        kv_lora_rank: MLA key/value latent width, the number cached per token (with the rope key).
        qk_nope_head_dim: per-head query/key channels that carry no position.
        qk_rope_head_dim: per-head query/key channels rotated by RoPE (the key's are shared by all heads).
        v_head_dim: per-head value width.
        n_routed_experts: routed experts per MoE layer; 0 makes every layer dense.
        n_shared_experts: always-on experts per MoE layer.
        num_experts_per_tok: routed experts each token uses (top-k).
        moe_intermediate_size: hidden width of one expert.
        n_group: expert groups for group-limited routing.
        topk_group: groups a token may route into.
        routed_scaling_factor: multiplies the normalised routing weights.
        first_k_dense_replace: the first this-many layers keep a dense MLP.
        norm_topk_prob: normalise the top-k routing weights to sum to 1.
        rope_scaling: YaRN parameters, or ``None`` for plain RoPE.
        tie_word_embeddings: share the embedding matrix with the LM head.
        name: a label for tables and messages.
    """

    vocab_size: int = 102400
    hidden_size: int = 4096
    num_layers: int = 30
    num_heads: int = 32
    num_kv_heads: int = 8
    intermediate_size: int = 11008
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 4096
    attention: Literal["gqa", "mla"] = "gqa"
    head_dim: int | None = None
    q_lora_rank: int | None = None
    kv_lora_rank: int = 512
    qk_nope_head_dim: int = 128
    qk_rope_head_dim: int = 64
    v_head_dim: int = 128
    n_routed_experts: int = 0
    n_shared_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    n_group: int = 1
    topk_group: int = 1
    routed_scaling_factor: float = 1.0
    first_k_dense_replace: int = 0
    norm_topk_prob: bool = True
    rope_scaling: YaRN | None = None
    tie_word_embeddings: bool = False
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        problems = []
        if self.attention not in ("gqa", "mla"):
            problems.append(f"attention must be 'gqa' or 'mla', got {self.attention!r}")
        if self.attention == "gqa":
            if self.num_heads % self.num_kv_heads:
                problems.append(
                    f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads ({self.num_kv_heads})"
                )
            if self.head_dim is None and self.hidden_size % self.num_heads:
                problems.append(f"hidden_size ({self.hidden_size}) must be a multiple of num_heads ({self.num_heads})")
            if self.gqa_head_dim % 2:
                problems.append(f"the head dimension ({self.gqa_head_dim}) must be even for RoPE")
        elif self.qk_rope_head_dim % 2:
            problems.append(f"qk_rope_head_dim ({self.qk_rope_head_dim}) must be even for RoPE")
        if self.n_routed_experts:
            if self.n_routed_experts % self.n_group:
                problems.append(
                    f"n_routed_experts ({self.n_routed_experts}) must be a multiple of n_group ({self.n_group})"
                )
            if not 1 <= self.topk_group <= self.n_group:
                problems.append(f"topk_group ({self.topk_group}) must lie in 1..n_group ({self.n_group})")
            experts_reachable = self.topk_group * self.n_routed_experts // self.n_group
            if not 1 <= self.num_experts_per_tok <= experts_reachable:
                problems.append(
                    f"num_experts_per_tok ({self.num_experts_per_tok}) must lie in 1..{experts_reachable}, "
                    "the experts of the top groups"
                )
        if problems:
            raise ValueError("invalid Config: " + "; ".join(problems))

    @property
    def gqa_head_dim(self) -> int:
        """Head width of GQA attention."""
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_heads

    @property
    def qk_head_dim(self) -> int:
        """Per-head query/key width of MLA: the position-free part plus the rotated part."""
        return self.qk_nope_head_dim + self.qk_rope_head_dim

    @property
    def rope_dim(self) -> int:
        """Channels of each query/key head that RoPE rotates."""
        return self.qk_rope_head_dim if self.attention == "mla" else self.gqa_head_dim

    def is_moe_layer(self, layer_idx: int) -> bool:
        """Whether layer ``layer_idx`` uses the mixture of experts (else the dense MLP)."""
        return self.n_routed_experts > 0 and layer_idx >= self.first_k_dense_replace

    def with_(self, **changes: Any) -> Config:
        """A copy with some fields changed."""
        return replace(self, **changes)

    @classmethod
    def lesson(cls) -> Config:
        """The task sheet's skeleton (Code Task 3): GQA attention and a dense SwiGLU MLP.

        The sheet gives hidden_size 4096, 30 layers, 32 heads and 8 KV heads and calls them
        DeepSeek-V3's; they are not. 4096 / 30 / 32 are DeepSeek-LLM-7B's, so the two numbers
        the sheet leaves open come from that model too: its vocabulary (102,400 tokens) and its
        SwiGLU width (11,008). The 8 KV heads (GQA) are borrowed from DeepSeek-LLM-67B (64 query heads
        sharing 8 key/value heads: the DeepSeek-LLM paper, Table 2).
        """
        return cls(name="lesson (task sheet)")

    @classmethod
    def tiny(cls) -> Config:
        """A Kimi-K2-shaped model small enough for a CPU forward pass in milliseconds.

        MLA with both latents, a dense first layer, MoE layers with 2 groups, a shared expert,
        and YaRN switched on, so every code path of the real model runs in tests and docs.
        """
        return cls(
            name="tiny",
            vocab_size=256,
            hidden_size=64,
            num_layers=3,
            num_heads=4,
            num_kv_heads=4,
            intermediate_size=128,
            attention="mla",
            q_lora_rank=32,
            kv_lora_rank=16,
            qk_nope_head_dim=16,
            qk_rope_head_dim=8,
            v_head_dim=16,
            n_routed_experts=8,
            n_shared_experts=1,
            num_experts_per_tok=2,
            moe_intermediate_size=32,
            n_group=2,
            topk_group=1,
            routed_scaling_factor=2.5,
            first_k_dense_replace=1,
            max_position_embeddings=512,
            rope_scaling=YaRN(factor=4.0, original_max_position_embeddings=128, beta_fast=32.0, beta_slow=1.0),
        )

    @classmethod
    def deepseek_v3(cls) -> Config:
        """DeepSeek-V3 (671B), from ``deepseek-ai/DeepSeek-V3``'s ``config.json``, without its MTP module."""
        return cls(
            name="DeepSeek-V3",
            vocab_size=129280,
            hidden_size=7168,
            num_layers=61,
            num_heads=128,
            num_kv_heads=128,
            intermediate_size=18432,
            rms_norm_eps=1e-6,
            rope_theta=10000.0,
            max_position_embeddings=163840,
            attention="mla",
            q_lora_rank=1536,
            kv_lora_rank=512,
            qk_nope_head_dim=128,
            qk_rope_head_dim=64,
            v_head_dim=128,
            n_routed_experts=256,
            n_shared_experts=1,
            num_experts_per_tok=8,
            moe_intermediate_size=2048,
            n_group=8,
            topk_group=4,
            routed_scaling_factor=2.5,
            first_k_dense_replace=3,
            rope_scaling=YaRN(factor=40.0, original_max_position_embeddings=4096, beta_fast=32.0, beta_slow=1.0),
        )

    @classmethod
    def kimi_k2(cls) -> Config:
        """Kimi-K2 (1T), from ``moonshotai/Kimi-K2-Instruct``'s ``config.json`` (July 2025 release).

        The DeepSeek-V3 architecture with half the heads, 384 experts in one group, one dense
        layer, a larger vocabulary, and a different RoPE base and YaRN setting.
        """
        return cls.deepseek_v3().with_(
            name="Kimi-K2",
            vocab_size=163840,
            num_heads=64,
            num_kv_heads=64,
            max_position_embeddings=131072,
            n_routed_experts=384,
            n_group=1,
            topk_group=1,
            routed_scaling_factor=2.827,
            first_k_dense_replace=1,
            rope_theta=50000.0,
            rope_scaling=YaRN(factor=32.0, original_max_position_embeddings=4096, beta_fast=1.0, beta_slow=1.0),
        )

    @classmethod
    def from_hf(cls, source: str | Path | dict[str, Any]) -> Config:
        """Read a Hugging Face ``config.json`` of a DeepSeek-V3-architecture model.

        ``source`` is the file, the folder holding it, or the parsed dictionary. Published
        checkpoints keep YaRN under ``rope_scaling``; transformers 5 writes ``rope_parameters``
        (with ``rope_theta`` inside): both are read.
        """
        if isinstance(source, dict):
            hf, where = source, "the config dictionary"
        else:
            path = Path(source)
            path = path / "config.json" if path.is_dir() else path
            if not path.is_file():
                raise FileNotFoundError(f"no config.json at {path}: expected a Hugging Face model folder")
            hf, where = json.loads(path.read_text(encoding="utf-8")), str(path)

        model_type = hf.get("model_type")
        if model_type not in ("deepseek_v3", "kimi_k2"):
            raise ValueError(f"{where}: model_type is {model_type!r}; this reference reads 'deepseek_v3' or 'kimi_k2'")
        if hf.get("scoring_func", "sigmoid") != "sigmoid":
            raise ValueError(f"{where}: scoring_func {hf['scoring_func']!r} is not supported (only 'sigmoid')")

        rope = dict(hf.get("rope_parameters") or hf.get("rope_scaling") or {})
        rope_theta = float(rope.get("rope_theta", hf.get("rope_theta", 10000.0)))
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type == "yarn":
            if "original_max_position_embeddings" not in rope:
                # transformers falls back to max_position_embeddings, which puts YaRN's correction
                # range in the wrong place (the long context instead of the pre-training one).
                raise ValueError(
                    f"{where}: the YaRN settings lack original_max_position_embeddings, the pre-training "
                    "context length that YaRN's correction range is computed over; add it (4096 for "
                    "DeepSeek-V3 and Kimi-K2)"
                )
            yarn = YaRN(
                factor=float(rope["factor"]),
                original_max_position_embeddings=int(rope["original_max_position_embeddings"]),
                beta_fast=float(rope.get("beta_fast", 32.0)),
                beta_slow=float(rope.get("beta_slow", 1.0)),
                mscale=float(rope.get("mscale", 1.0)),
                mscale_all_dim=float(rope.get("mscale_all_dim", 0.0)),
            )
        elif rope_type == "default":
            yarn = None
        else:
            raise ValueError(f"{where}: rope type {rope_type!r} is not supported (only 'yarn' or none)")

        num_heads = int(hf["num_attention_heads"])
        names = {f.name for f in fields(cls)}
        direct = {
            key: hf[key]
            for key in (
                "vocab_size", "hidden_size", "intermediate_size", "rms_norm_eps", "max_position_embeddings",
                "q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim",
                "n_routed_experts", "n_shared_experts", "num_experts_per_tok", "moe_intermediate_size",
                "n_group", "topk_group", "routed_scaling_factor", "first_k_dense_replace", "norm_topk_prob",
                "tie_word_embeddings",
            )
            if key in hf and key in names
        }  # fmt: skip
        return cls(
            name=str(hf.get("_name_or_path") or model_type),
            num_layers=int(hf["num_hidden_layers"]),
            num_heads=num_heads,
            num_kv_heads=int(hf.get("num_key_value_heads") or num_heads),
            attention="mla",
            rope_theta=rope_theta,
            rope_scaling=yarn,
            **direct,
        )
