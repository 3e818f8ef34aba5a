"""The grader's random draws: fresh configs and inputs for every run, so no result can be hard-coded.

Everything a check compares against is either computed by the parent from these draws (RMSNorm's output,
parameter counts from ``reference``) or is a relation between observations made on them (causality).
Each student gets its own stream, derived from the run's seed and the student id, so a student's draws do
not depend on who else is graded or in what order; the seed goes into the reports, so a run can be replayed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from dataclasses import dataclass
from typing import Any

from reference import Config

LESSON_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")


def lesson_fields() -> dict[str, int]:
    """The six lesson-config fields a submission's ``Config`` accepts, from ``reference.Config.lesson()``."""
    lesson = Config.lesson()
    return {name: getattr(lesson, name) for name in LESSON_FIELDS}


def reference_config(fields: dict[str, int]) -> Config:
    """The lesson architecture (GQA, dense SwiGLU, RMSNorm, untied head) with these six fields."""
    return dataclasses.replace(Config.lesson(), **fields)


def student_seed(seed: int, student: str) -> int:
    """A per-student seed: the same for a student whatever else is graded."""
    digest = hashlib.sha256(f"{seed}:{student}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def small_config(rng: random.Random, *, max_layers: int = 2) -> dict[str, int]:
    """A small GQA config: heads a multiple of KV heads, an even head size (RoPE pairs), a few layers."""
    kv_heads = rng.choice([1, 2])
    heads = kv_heads * rng.choice([1, 2, 4])
    head_dim = rng.choice([4, 8])
    hidden = heads * head_dim
    return {
        "vocab_size": rng.randint(24, 64),
        "hidden_size": hidden,
        "num_layers": rng.randint(1, max_layers),
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "intermediate_size": rng.randint(hidden + 1, 3 * hidden),
    }


def counting_config(rng: random.Random) -> dict[str, int]:
    """A mid-sized config for the parameter-count contract (counted on the meta device, so size is free)."""
    kv_heads = rng.choice([1, 2, 4])
    heads = kv_heads * rng.choice([1, 2, 3, 4])
    head_dim = rng.choice([8, 16, 32])
    hidden = heads * head_dim
    return {
        "vocab_size": rng.randint(100, 5000),
        "hidden_size": hidden,
        "num_layers": rng.randint(1, 6),
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "intermediate_size": rng.randint(hidden, 4 * hidden),
    }


def tokens(rng: random.Random, vocab: int, length: int) -> list[int]:
    """Random token ids below ``vocab``."""
    return [rng.randrange(vocab) for _ in range(length)]


def matrix(rng: random.Random, rows: int, cols: int, *, offset: float = 0.0, spread: float = 1.0) -> list[list[float]]:
    """Gaussian numbers, rounded to 6 significant digits (the child holds them as float32)."""
    return [[float(f"{rng.gauss(offset, spread):.6g}") for _ in range(cols)] for _ in range(rows)]


@dataclass(frozen=True)
class Draws:
    """One student's draws: what the sandboxed runs are given (``grader.runs``) and the checks judge them by."""

    seed: int
    forward_config: dict[str, int]
    model_seed: int
    example: list[list[int]]
    batches: list[list[list[int]]]
    causal: list[list[list[int]]]
    causal_split: int
    context: list[list[list[int]]]
    contract_configs: list[dict[str, int]]
    rms_dim: int
    rms_x: list[list[list[float]]]
    rms_weight: list[float]
    layer_config: dict[str, int]
    layer_x: list[list[list[float]]]
    mla: dict[str, Any]


def draw(seed: int) -> Draws:
    """Draw everything for one student from its seed."""
    rng = random.Random(seed)
    forward = small_config(rng)
    vocab = forward["vocab_size"]
    batches = []
    for _ in range(2):
        batch, length = rng.randint(2, 4), rng.randint(1, 9)
        batches.append([tokens(rng, vocab, length) for _ in range(batch)])
    length = rng.randint(5, 8)
    split = rng.randint(2, length - 1)
    base = tokens(rng, vocab, length)
    changed = base[:split] + [(t + rng.randint(1, vocab - 1)) % vocab for t in base[split:]]
    first = [(base[0] + rng.randint(1, vocab - 1)) % vocab, *base[1:]]
    rms_dim = rng.choice([16, 24, 32])
    rms_x = [matrix(rng, 3, rms_dim, offset=rng.choice([-3.0, 2.0, 4.0])) for _ in range(2)]
    layer = small_config(rng, max_layers=1)
    mla_heads, mla_head_dim = rng.choice([2, 4]), rng.choice([8, 16])
    mla_hidden = mla_heads * mla_head_dim
    return Draws(
        seed=seed,
        forward_config=forward,
        model_seed=rng.randrange(2**31),
        example=[[1, 2, 3]],
        batches=batches,
        causal=[[base], [changed]],
        causal_split=split,
        context=[[base], [first]],
        contract_configs=[counting_config(rng) for _ in range(2)],
        rms_dim=rms_dim,
        rms_x=rms_x,
        rms_weight=[round(rng.uniform(0.5, 2.0), 4) for _ in range(rms_dim)],
        layer_config=layer,
        layer_x=[matrix(rng, rng.randint(3, 6), layer["hidden_size"], offset=0.5)],
        mla={
            "hidden_size": mla_hidden,
            "num_heads": mla_heads,
            "head_dim": mla_head_dim,
            "kv_lora_rank": rng.choice([4, 8, 12]),
            "seed": rng.randrange(2**31),
            "x": [matrix(rng, rng.randint(2, 6), mla_hidden)],
        },
    )
