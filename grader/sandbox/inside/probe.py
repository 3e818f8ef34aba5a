"""Sent as source into the sandbox, never imported: run one group of experiments on a submission, return JSON.

This file runs inside the sandbox, next to the learner's ``model.py`` (and ``mla.py``), never in the grader's
process; standard library and torch only. Each ``*_run`` function is one run declared in ``grader/runs.py``,
which builds its arguments and validates what it returns. It holds no answer keys: it builds what the
parent asks for with the inputs the parent drew, and reports what it observes (shapes, parameter counts,
output values). The parent validates every observation and decides what is right.

Each experiment is guarded on its own, so one that raises costs only the checks that need it; tensors
travel as ``{"shape": [...], "data": [...]}`` with NaN and inf sent as ``null``. What is sent back is
bounded by the ``caps`` argument of every run (``grader.runs.Caps``: tensor size, list lengths, the
learner's file names), the same caps the parent's schemas are built from.
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

Experiment = Callable[[Any], dict[str, Any]]


class Observer:
    """How this run reports what it observes, within the caps the grader sent (``grader.runs.Caps``)."""

    def __init__(
        self, *, tensor_numbers: int, norm_calls: int, names: int, error_chars: int, student_files: list[str]
    ) -> None:
        self.tensor_numbers, self.norm_calls, self.names = tensor_numbers, norm_calls, names
        self.error_chars, self.student_files = error_chars, tuple(student_files)

    def describe(self, exc: BaseException) -> str:
        """``TypeError: message (model.py, line 12, in forward)``: the error and the learner's last frame."""
        if isinstance(exc, SyntaxError):
            return f"{type(exc).__name__}: {exc}"[: self.error_chars]
        frames = [
            f for f in traceback.extract_tb(exc.__traceback__) if os.path.basename(f.filename) in self.student_files
        ]
        where = ""
        if frames:
            last = frames[-1]
            where = f" ({os.path.basename(last.filename)}, line {last.lineno}, in {last.name})"
        return f"{type(exc).__name__}: {exc}{where}"[: self.error_chars]

    def guard(self, experiment: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run one experiment: ``{"ok": True, ...}``, or ``{"ok": False, "error": ...}`` if the code raised."""
        try:
            return {"ok": True, **experiment()}
        except MemoryError:
            raise  # the run ends at once with the sandbox's memory-limit verdict, instead of retrying
        except (Exception, SystemExit) as exc:
            return {"ok": False, "error": self.describe(exc)}

    def encode(self, value: Any) -> dict[str, Any]:
        """A tensor as JSON: its real shape (a subclass cannot override it here) and its numbers, NaN/inf as null."""
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(value).__name__}")
        plain = torch.Tensor.as_subclass(value, torch.Tensor).detach()
        shape = [int(n) for n in plain.shape]
        if plain.numel() > self.tensor_numbers:
            return {"shape": shape, "data": None}
        numbers = plain.to("cpu", torch.float64).reshape(-1).tolist()
        return {"shape": shape, "data": [x if math.isfinite(x) else None for x in numbers]}

    def observe(
        self, module: str, experiments: dict[str, Experiment], build: Callable[[Any], Any] | None = None
    ) -> dict[str, Any]:
        """Import the learner's ``module``, ``build`` from it what the experiments share (when given), then run
        each experiment on that, guarded.

        An import or build that fails gives every experiment the same error, with its stage. A MemoryError is
        raised again, so the run ends with the sandbox's verdict, which names the memory limit, instead of a
        bare "MemoryError" reported as an import or build failure.
        """
        stage = "import"
        try:
            target = importlib.import_module(module)
            stage = "build"
            if build is not None:
                target = build(target)
        except (Exception, SystemExit) as exc:
            if isinstance(exc, MemoryError):
                raise
            return {name: {"ok": False, "stage": stage, "error": self.describe(exc)} for name in experiments}
        return {name: self.guard(lambda run=run: run(target)) for name, run in experiments.items()}


def first_tensor(output: Any, what: str) -> torch.Tensor:
    """The tensor a forward returned: itself, the first item of a tuple, or a ``.logits`` attribute."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(getattr(output, "logits", None), torch.Tensor):
        return output.logits
    raise TypeError(f"{what} returned {type(output).__name__}, expected a torch.Tensor")


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


def config_run(caps: dict[str, Any], lesson: dict[str, int], configs: list[dict[str, int]]) -> dict[str, Any]:
    """Config defaults (the fields of ``lesson``), the lesson model's parameter count (meta device) and counts
    for the parent's configs."""

    def defaults(model: Any) -> dict[str, Any]:
        config = model.Config()
        return {
            "fields": {
                f: describe_value(getattr(config, f)) if hasattr(config, f) else {"kind": "missing"} for f in lesson
            }
        }

    def contract(model: Any) -> dict[str, Any]:
        counts = []
        for config in configs:
            try:
                counts.append(count_parameters(model, config, "meta"))
            except (Exception, SystemExit):
                counts.append(count_parameters(model, config, "cpu"))
        return {"counts": counts}

    return Observer(**caps).observe(
        "model",
        {
            "defaults": defaults,
            "lesson_count": lambda model: {"count": count_parameters(model, lesson, "meta")},
            "contract_counts": contract,
        },
    )


def forward_run(
    caps: dict[str, Any],
    config: dict[str, int],
    seed: int,
    example: list[list[int]],
    batches: list[list[list[int]]],
    causal: list[list[list[int]]],
    context: list[list[list[int]]],
) -> dict[str, Any]:
    """Logits of ``SimpleKimiK2(Config(**config))`` for the parent's token ids (shapes, and pairs to compare)."""
    observer = Observer(**caps)

    def build(model: Any) -> nn.Module:
        torch.manual_seed(seed)
        net = model.SimpleKimiK2(model.Config(**config))
        net.eval()
        return net

    def logits(net: nn.Module, ids: list[list[int]]) -> torch.Tensor:
        with torch.no_grad():
            return first_tensor(net(torch.tensor(ids, dtype=torch.long)), "SimpleKimiK2.forward")

    def shape_of(net: nn.Module, ids: list[list[int]]) -> dict[str, Any]:
        plain = torch.Tensor.as_subclass(logits(net, ids), torch.Tensor)
        return {"shape": [int(n) for n in plain.shape], "finite": bool(torch.isfinite(plain).all())}

    return observer.observe(
        "model",
        {
            "example": lambda net: shape_of(net, example),
            "batches": lambda net: {"results": [shape_of(net, ids) for ids in batches]},
            "causal": lambda net: {"logits": [observer.encode(logits(net, ids)) for ids in causal]},
            "context": lambda net: {"logits": [observer.encode(logits(net, ids)) for ids in context]},
        },
        build,
    )


def rmsnorm_run(caps: dict[str, Any], dim: int, x: list[list[list[float]]], weight: list[float]) -> dict[str, Any]:
    """``RMSNorm(dim)`` applied to the parent's input, with its (dim,)-shaped scale set to the parent's weight."""
    observer = Observer(**caps)

    def run(model: Any) -> dict[str, Any]:
        norm = model.RMSNorm(dim)
        params = list(norm.named_parameters())
        scale = [name for name, p in params if tuple(p.shape) == (dim,) and "bias" not in name.lower()]
        if scale:
            with torch.no_grad():
                dict(params)[scale[0]].copy_(torch.tensor(weight))
        with torch.no_grad():
            out = first_tensor(norm(torch.tensor(x)), "RMSNorm.forward")
        return {
            "params": [{"name": name, "shape": [int(n) for n in p.shape]} for name, p in params][: observer.names],
            "scale": scale[0] if scale else None,
            "output": observer.encode(out),
        }

    return observer.observe("model", {"rmsnorm": run})


def is_norm(module: nn.Module) -> bool:
    """A normalisation module, recognised by its class name (RMSNorm, LayerNorm, nn.RMSNorm, ...)."""
    return "norm" in type(module).__name__.lower()


def make_layer(model: Any, config: Any) -> nn.Module:
    """``DecoderLayer(config)``, or ``DecoderLayer(config, 0)`` for layers that take their index."""
    try:
        return model.DecoderLayer(config)
    except TypeError:
        return model.DecoderLayer(config, 0)


def layer_run(caps: dict[str, Any], config: dict[str, int], seed: int, x: list[list[list[float]]]) -> dict[str, Any]:
    """One ``DecoderLayer``: its output, the inputs and outputs of its norms in call order, and its output
    (and first norm's input) again with every parameter outside the norms set to zero, so that attention
    and MLP add nothing."""
    observer = Observer(**caps)
    encode = observer.encode

    def run(model: Any) -> dict[str, Any]:
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
            for name, i, o in calls[: observer.norm_calls]
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
            "norm_modules": [n for n, _ in outer][: observer.names],
        }

    return observer.observe("model", {"layer": run})


def mla_run(
    caps: dict[str, Any],
    hidden_size: int,
    num_heads: int,
    head_dim: int,
    kv_lora_rank: int,
    seed: int,
    x: list[list[list[float]]],
) -> dict[str, Any]:
    """The advanced stub: ``MultiHeadLatentAttention(...)(x)`` must return ``(output, latent_cache)``."""

    def run(mla: Any) -> dict[str, Any]:
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

    return Observer(**caps).observe("mla", {"mla": run})
