"""Sent as source into the sandbox, never imported: run one group of experiments on a submission, return JSON.

This file runs inside the sandbox, next to the learner's ``model.py`` (and ``mla.py``), never in the grader's
process. It holds no answer keys: it builds what the parent asks for with the inputs the parent drew, and
reports what it observes (shapes, parameter counts, output values). The parent validates every observation
and decides what is right. Each experiment is guarded on its own, so one that raises costs only the checks
that need it; tensors travel as ``{"shape": [...], "data": [...]}`` with NaN and inf sent as ``null``.
"""

from __future__ import annotations

import importlib
import math
import os
import traceback
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

STUDENT_FILES = ("model.py", "mla.py")
MAX_ERROR_CHARS = 1200
MAX_TENSOR_NUMBERS = 8192
MAX_NORM_CALLS = 6
LESSON_FIELDS = ("vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size")


def describe(exc: BaseException) -> str:
    """``TypeError: message (model.py, line 12, in forward)``: the error and the learner's last frame."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.basename(f.filename) in STUDENT_FILES]
    where = ""
    if frames:
        last = frames[-1]
        where = f" ({os.path.basename(last.filename)}, line {last.lineno}, in {last.name})"
    return f"{type(exc).__name__}: {exc}{where}"[:MAX_ERROR_CHARS]


def guard(experiment: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one experiment: ``{"ok": True, ...}`` or ``{"ok": False, "error": ...}`` if the learner's code raised."""
    try:
        return {"ok": True, **experiment()}
    except MemoryError:
        raise  # the run ends at once with the sandbox's memory-limit verdict, instead of retrying
    except (Exception, SystemExit) as exc:
        return {"ok": False, "error": describe(exc)}


def encode(value: Any) -> dict[str, Any]:
    """A tensor as JSON: its real shape (a subclass cannot override it here) and its numbers, NaN/inf as null."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(value).__name__}")
    plain = torch.Tensor.as_subclass(value, torch.Tensor).detach()
    shape = [int(n) for n in plain.shape]
    if plain.numel() > MAX_TENSOR_NUMBERS:
        return {"shape": shape, "data": None}
    numbers = plain.to("cpu", torch.float64).reshape(-1).tolist()
    return {"shape": shape, "data": [x if math.isfinite(x) else None for x in numbers]}


def first_tensor(output: Any, what: str) -> torch.Tensor:
    """The tensor a forward returned: itself, the first item of a tuple, or a ``.logits`` attribute."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    raise TypeError(f"{what} returned {type(output).__name__}, expected a torch.Tensor")


def load(name: str) -> Any:
    """Import one of the learner's modules (``model`` or ``mla``) from the scratch directory."""
    return importlib.import_module(name)


def failed_all(names: list[str], exc: BaseException, stage: str) -> dict[str, Any]:
    """The same error for every experiment of a run: the module could not be imported or the model built.

    A MemoryError is raised again, so the run ends with the sandbox's verdict, which names the memory limit,
    instead of a bare "MemoryError" reported as an import or build failure.
    """
    if isinstance(exc, MemoryError):
        raise exc
    return {name: {"ok": False, "stage": stage, "error": describe(exc)} for name in names}


def count_parameters(model: Any, config: dict[str, int], device: str) -> int:
    """Parameters of the learner's ``SimpleKimiK2(Config(**config))``, built on ``device`` (meta costs no memory)."""
    with torch.device(device):
        net = model.SimpleKimiK2(model.Config(**config))
    return int(sum(p.numel() for p in net.parameters()))


def describe_value(value: Any) -> dict[str, Any]:
    """A config field's value: an int as is, anything else by type and repr."""
    if isinstance(value, int) and not isinstance(value, bool):
        return {"kind": "int", "value": value}
    return {"kind": "other", "type": type(value).__name__, "repr": repr(value)[:80]}


def config_run(lesson: dict[str, int], configs: list[dict[str, int]]) -> dict[str, Any]:
    """Config defaults, the lesson model's parameter count (meta device) and counts for the parent's configs."""
    names = ["defaults", "lesson_count", "contract_counts"]
    try:
        model = load("model")
    except (Exception, SystemExit) as exc:
        return failed_all(names, exc, "import")

    def defaults() -> dict[str, Any]:
        config = model.Config()
        return {
            "fields": {
                f: describe_value(getattr(config, f)) if hasattr(config, f) else {"kind": "missing"}
                for f in LESSON_FIELDS
            }
        }

    def contract() -> dict[str, Any]:
        counts = []
        for config in configs:
            try:
                counts.append(count_parameters(model, config, "meta"))
            except (Exception, SystemExit):
                counts.append(count_parameters(model, config, "cpu"))
        return {"counts": counts}

    return {
        "defaults": guard(defaults),
        "lesson_count": guard(lambda: {"count": count_parameters(model, lesson, "meta")}),
        "contract_counts": guard(contract),
    }


def forward_run(
    config: dict[str, int],
    seed: int,
    example: list[list[int]],
    batches: list[list[list[int]]],
    causal: list[list[list[int]]],
    context: list[list[list[int]]],
) -> dict[str, Any]:
    """Logits of ``SimpleKimiK2(Config(**config))`` for the parent's token ids (shapes, and pairs to compare)."""
    names = ["example", "batches", "causal", "context"]
    try:
        model = load("model")
    except (Exception, SystemExit) as exc:
        return failed_all(names, exc, "import")
    try:
        torch.manual_seed(seed)
        net = model.SimpleKimiK2(model.Config(**config))
        net.eval()
    except (Exception, SystemExit) as exc:
        return failed_all(names, exc, "build")

    def logits(ids: list[list[int]]) -> torch.Tensor:
        with torch.no_grad():
            return first_tensor(net(torch.tensor(ids, dtype=torch.long)), "SimpleKimiK2.forward")

    def shape_of(ids: list[list[int]]) -> dict[str, Any]:
        out = logits(ids)
        plain = torch.Tensor.as_subclass(out, torch.Tensor)
        return {"shape": [int(n) for n in plain.shape], "finite": bool(torch.isfinite(plain).all())}

    return {
        "example": guard(lambda: shape_of(example)),
        "batches": guard(lambda: {"results": [shape_of(ids) for ids in batches]}),
        "causal": guard(lambda: {"logits": [encode(logits(ids)) for ids in causal]}),
        "context": guard(lambda: {"logits": [encode(logits(ids)) for ids in context]}),
    }


def rmsnorm_run(dim: int, x: list[list[list[float]]], weight: list[float]) -> dict[str, Any]:
    """``RMSNorm(dim)`` applied to the parent's input, with its (dim,)-shaped scale set to the parent's weight."""
    try:
        model = load("model")
    except (Exception, SystemExit) as exc:
        return failed_all(["rmsnorm"], exc, "import")

    def run() -> dict[str, Any]:
        norm = model.RMSNorm(dim)
        params = list(norm.named_parameters())
        scale = [name for name, p in params if tuple(p.shape) == (dim,) and "bias" not in name.lower()]
        if scale:
            with torch.no_grad():
                dict(params)[scale[0]].copy_(torch.tensor(weight))
        with torch.no_grad():
            out = first_tensor(norm(torch.tensor(x)), "RMSNorm.forward")
        return {
            "params": [{"name": name, "shape": [int(n) for n in p.shape]} for name, p in params][:16],
            "scale": scale[0] if scale else None,
            "output": encode(out),
        }

    return {"rmsnorm": guard(run)}


def is_norm(module: nn.Module) -> bool:
    """A normalisation module, recognised by its class name (RMSNorm, LayerNorm, nn.RMSNorm, ...)."""
    return "norm" in type(module).__name__.lower()


def make_layer(model: Any, config: Any) -> nn.Module:
    """``DecoderLayer(config)``, or ``DecoderLayer(config, 0)`` for layers that take their index."""
    try:
        return model.DecoderLayer(config)
    except TypeError:
        return model.DecoderLayer(config, 0)


def layer_run(config: dict[str, int], seed: int, x: list[list[list[float]]]) -> dict[str, Any]:
    """One ``DecoderLayer``: its output, the inputs and outputs of its norms in call order, and its output
    (and first norm's input) again with every parameter outside the norms set to zero, so that attention
    and MLP add nothing."""
    try:
        model = load("model")
    except (Exception, SystemExit) as exc:
        return failed_all(["layer"], exc, "import")

    def run() -> dict[str, Any]:
        torch.manual_seed(seed)
        layer = make_layer(model, model.Config(**config))
        layer.eval()
        norms = [(name, m) for name, m in layer.named_modules() if name and is_norm(m)]
        outer = [(n, m) for n, m in norms if not any(n.startswith(o + ".") for o, _ in norms)]
        calls: list[tuple[str, torch.Tensor, Any]] = []
        for name, module in outer:
            module.register_forward_hook(
                lambda m, args, out, name=name: calls.append((name, args[0] if args else None, out))
            )
        hidden = torch.tensor(x)
        with torch.no_grad():
            out = first_tensor(layer(hidden), "DecoderLayer.forward")
        seen = [
            {"module": name, "input": encode(first_tensor(i, "norm input")), "output": encode(first_tensor(o, name))}
            for name, i, o in calls[:MAX_NORM_CALLS]
        ]
        n_calls = len(calls)
        inside = tuple(n + "." for n, _ in outer)
        calls.clear()
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if not name.startswith(inside):
                    p.zero_()
            zeroed = first_tensor(layer(hidden), "DecoderLayer.forward")
        return {
            "output": encode(out),
            "zeroed_output": encode(zeroed),
            "zeroed_first_norm_input": encode(first_tensor(calls[0][1], "norm input")) if calls else None,
            "norm_calls": seen,
            "n_norm_calls": n_calls,
            "norm_modules": [n for n, _ in outer][:16],
        }

    return {"layer": guard(run)}


def mla_run(
    hidden_size: int, num_heads: int, head_dim: int, kv_lora_rank: int, seed: int, x: list[list[list[float]]]
) -> dict[str, Any]:
    """The advanced stub: ``MultiHeadLatentAttention(...)(x)`` must return ``(output, latent_cache)``."""
    try:
        mla = load("mla")
    except (Exception, SystemExit) as exc:
        return failed_all(["mla"], exc, "import")

    def run() -> dict[str, Any]:
        torch.manual_seed(seed)
        attn = mla.MultiHeadLatentAttention(
            hidden_size=hidden_size, num_heads=num_heads, head_dim=head_dim, kv_lora_rank=kv_lora_rank
        )
        with torch.no_grad():
            result = attn(torch.tensor(x))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"MultiHeadLatentAttention.forward returned {type(result).__name__}, expected (output, latent_cache)"
            )
        out, cache = (torch.Tensor.as_subclass(first_tensor(t, "forward"), torch.Tensor) for t in result)
        return {
            "output_shape": [int(n) for n in out.shape],
            "cache_shape": [int(n) for n in cache.shape],
            "finite": bool(torch.isfinite(out).all()),
        }

    return {"mla": guard(run)}
