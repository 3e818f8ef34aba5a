"""The grader's random draws: fresh configs and inputs for every run, so no result can be hard-coded.

Everything a check compares against is either computed by the parent from these draws (RMSNorm's output,
parameter counts and the logits of ``reference`` with weights drawn here) or is a relation between
observations made on them (causality, position, the MLA cache).
Each student gets its own stream, derived from the run's seed and the student id, so a student's draws do
not depend on who else is graded or in what order; the seed goes into the reports, so a run can be replayed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import reference
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


def matching_config(rng: random.Random) -> dict[str, int]:
    """A config for comparing with the reference: two layers, 2 KV heads serving 3 or 4 query heads each (so the
    two ways of grouping query heads differ), and sizes chosen so that weights of different kinds never share
    a shape, fused or not (q and o are the only square ones): structure then tells every weight apart."""
    heads, head_dim = rng.choice([(6, 4), (8, 4), (6, 8)])
    kv_heads = 2
    hidden, kv = heads * head_dim, kv_heads * head_dim
    taken = {hidden, kv, 2 * kv, hidden + 2 * kv}
    intermediate = rng.choice([n for n in range(hidden + 2, 2 * hidden + 1) if not {n, 2 * n} & taken])
    vocab = rng.choice([n for n in range(24, 49) if n not in taken | {intermediate, 2 * intermediate}])
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "num_layers": 2,
        "num_heads": heads,
        "num_kv_heads": kv_heads,
        "intermediate_size": intermediate,
    }


@functools.lru_cache(maxsize=8)
def reference_weights(fields: tuple[tuple[str, int], ...], seed: int) -> dict[str, torch.Tensor]:
    """Weights for the reference lesson model with these fields, {state-dict name: float32 tensor}, in its order.

    Of unit scale, so that hidden states and attention scores are of order 1: the embedding N(0, 1), every
    projection N(0, 1/fan_in), the norms' gains uniform in [0.5, 1.5]. At that scale the norms' epsilon
    (1e-5 or 1e-6) moves the logits by far less than the comparison's tolerance. Cached: callers copy.
    """
    with torch.device("meta"):
        model = reference.SimpleKimiK2(reference_config(dict(fields)))
    embeddings = {f"{name}.weight" for name, m in model.named_modules() if isinstance(m, nn.Embedding)}
    generator = torch.Generator().manual_seed(seed)
    weights = {}
    for name, p in model.state_dict().items():
        if p.dim() == 1:
            weights[name] = torch.rand(p.shape, generator=generator) + 0.5
        else:
            scale = 1.0 if name in embeddings else p.shape[-1] ** -0.5
            weights[name] = torch.randn(p.shape, generator=generator) * scale
    return weights


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
    position: dict[str, Any]
    gradients: dict[str, Any]
    reference: dict[str, Any]
    mla_behaviour: dict[str, Any]


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
    earlier = dict(
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
    # Drawn after everything above, so that a seed keeps its earlier draws.
    return Draws(
        **earlier,
        position=position_draws(rng),
        gradients=gradient_draws(rng),
        reference=reference_draws(rng),
        mla_behaviour=mla_behaviour_draws(rng, earlier["mla"]),
    )


def position_draws(rng: random.Random) -> dict[str, Any]:
    """A one-layer model and three token sequences: ``base``, ``base`` with tokens ``swap`` exchanged, and
    ``base`` with the first of them changed; both swapped positions lie before the last two."""
    config = small_config(rng, max_layers=1)
    vocab, length = config["vocab_size"], rng.randint(6, 8)
    i, j = sorted(rng.sample(range(length - 2), 2))
    base = tokens(rng, vocab, length)
    if base[j] == base[i]:
        base[j] = (base[i] + rng.randint(1, vocab - 1)) % vocab
    swapped = list(base)
    swapped[i], swapped[j] = base[j], base[i]
    changed = list(base)
    changed[i] = (base[i] + rng.randint(1, vocab - 1)) % vocab
    return {"config": config, "seed": rng.randrange(2**31), "ids": [[base], [swapped], [changed]], "swap": [i, j]}


def gradient_draws(rng: random.Random) -> dict[str, Any]:
    """A two-layer model and a batch of token ids for one backward pass."""
    config = {**small_config(rng), "num_layers": 2}
    return {
        "config": config,
        "seed": rng.randrange(2**31),
        "ids": [tokens(rng, config["vocab_size"], 5) for _ in range(2)],
    }


def reference_draws(rng: random.Random) -> dict[str, Any]:
    """A config for the comparison with the reference (``matching_config``), its weights' seed and token ids."""
    config = matching_config(rng)
    return {
        "config": config,
        "seed": rng.randrange(2**31),
        "ids": [tokens(rng, config["vocab_size"], rng.randint(6, 8))],
    }


def mla_behaviour_draws(rng: random.Random, mla: dict[str, Any]) -> dict[str, Any]:
    """For the MLA stub's ``x``: a seed for random weights, ``x`` with its rows from ``split`` on redrawn
    (``later``) and ``x`` with its first row redrawn (``first``)."""
    (x,) = mla["x"]
    split = rng.randint(1, len(x) - 1)
    width = len(x[0])
    later = [*x[:split], *matrix(rng, len(x) - split, width)]
    first = [*matrix(rng, 1, width), *x[1:]]
    return {"seed": rng.randrange(2**31), "split": split, "later": [later], "first": [first]}
