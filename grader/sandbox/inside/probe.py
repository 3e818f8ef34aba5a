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

import base64
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
        self,
        *,
        tensor_numbers: int,
        norm_calls: int,
        names: int,
        parameters: int,
        error_chars: int,
        student_files: list[str],
    ) -> None:
        self.tensor_numbers, self.norm_calls, self.names = tensor_numbers, norm_calls, names
        self.parameters, self.error_chars, self.student_files = parameters, error_chars, tuple(student_files)

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


def logits(net: nn.Module, ids: list[list[int]]) -> torch.Tensor:
    """The logits of ``net`` for the parent's token ids, without autograd."""
    with torch.no_grad():
        return first_tensor(net(torch.tensor(ids, dtype=torch.long)), "SimpleKimiK2.forward")


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


def randomise(net: nn.Module, seed: int) -> None:
    """Give every parameter random values of unit scale, whatever the learner's own initialisation: matrices
    N(0, 1/fan_in) (fan_in: the last dimension), vectors (norm gains, biases) uniform in [0.5, 1.5]. Then
    attention scores are of order 1, so what a check looks for shows clearly, and no zero-initialised
    weight hides a path."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=generator) * p.shape[-1] ** -0.5)
            else:
                p.copy_(torch.rand(p.shape, generator=generator) + 0.5)


def build_model(model: Any, config: dict[str, int], seed: int) -> nn.Module:
    """``SimpleKimiK2(Config(**config))`` with the parent's seed, its weights randomised (``randomise``)."""
    torch.manual_seed(seed)
    net = model.SimpleKimiK2(model.Config(**config))
    randomise(net, seed)
    return net


def first_arg(args: tuple, kwargs: dict) -> Any:
    """The first tensor a module was called with, positional or keyword."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def decoder_layers(model: Any, net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The learner's ``DecoderLayer`` modules inside ``net``, by name, in registration order."""
    layer_class = getattr(model, "DecoderLayer", None)
    if not isinstance(layer_class, type):
        return []
    return [(name, m) for name, m in net.named_modules() if name and isinstance(m, layer_class)]


def outer_norms(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """Normalisation modules (``is_norm``) not inside another one, by name."""
    norms = [(name, m) for name, m in net.named_modules() if name and is_norm(m)]
    return [(n, m) for n, m in norms if not any(n.startswith(o + ".") for o, _ in norms)]


def call_order(net: nn.Module, ids: torch.Tensor) -> dict[str, int]:
    """The order in which ``net``'s modules are first called in one forward pass: {module name: index}."""
    order: dict[str, int] = {}

    def called(name: str) -> Callable[..., None]:
        def hook(module: nn.Module, args: tuple) -> None:  # returns None: the inputs stay as they are
            order.setdefault(name, len(order))

        return hook

    handles = [m.register_forward_pre_hook(called(name)) for name, m in net.named_modules()]
    try:
        with torch.no_grad():
            net(ids)
    finally:
        for handle in handles:
            handle.remove()
    return order


def decode_weights(weights: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The parent's weights, {reference name: float32 tensor}, from their base64 bytes and shapes."""
    flat = torch.frombuffer(bytearray(base64.b64decode(weights["data"])), dtype=torch.float32)
    tensors, start = {}, 0
    for entry in weights["entries"]:
        size = math.prod(entry["shape"])
        tensors[entry["name"]] = flat[start : start + size].reshape(entry["shape"])
        start += size
    return tensors


def map_by_name(net: nn.Module, entries: list[dict[str, Any]]) -> list[tuple[str, list[str]]] | None:
    """Each reference weight to the learner's parameter of the same name and shape (a module of the same name
    holding one parameter of that shape will do, so a norm's ``scale`` takes the reference's ``weight``);
    None unless every parameter of both sides is paired."""
    named = dict(net.named_parameters())
    modules = dict(net.named_modules())
    pairs: list[tuple[str, list[str]]] = []
    for entry in entries:
        name, shape = entry["name"], tuple(entry["shape"])
        found = name if name in named and tuple(named[name].shape) == shape else None
        owner = name.rpartition(".")[0]
        if found is None and owner in modules:
            own = list(modules[owner].named_parameters(recurse=False))
            if len(own) == 1 and tuple(own[0][1].shape) == shape:
                found = f"{owner}.{own[0][0]}"
        if found is None or any(found == p for p, _ in pairs):
            return None
        pairs.append((found, [name]))
    return pairs if {p for p, _ in pairs} == set(named) else None


def fit(params: list[tuple[str, tuple[int, ...]]], entries: list[dict[str, Any]], fusions: list[list[str]]):
    """Place the learner's parameters (in call order) on the reference's weights of one layer (in the
    reference's order): each parameter takes one weight of its shape, or a fusion of weights stacked along
    the rows (``fusions``, e.g. K and V in one matrix); among weights of one shape the earlier goes to the
    earlier parameter. Returns [(parameter, [reference names])], or None when no placement covers both."""
    roles = {e["role"]: e for e in entries}
    rank = {e["role"]: i for i, e in enumerate(entries)}
    units = [(e["role"],) for e in entries] + [tuple(f) for f in fusions if all(r in roles for r in f)]
    units.sort(key=lambda unit: (rank[unit[0]], len(unit)))

    def shape_of(unit: tuple[str, ...]) -> tuple[int, ...] | None:
        shapes = [tuple(roles[r]["shape"]) for r in unit]
        if len(shapes) == 1:
            return shapes[0]
        if any(len(s) != 2 for s in shapes) or len({s[1] for s in shapes}) != 1:
            return None
        return (sum(s[0] for s in shapes), shapes[0][1])

    if len(params) > len(entries) or sum(math.prod(s) for _, s in params) != sum(
        math.prod(e["shape"]) for e in entries
    ):
        return None
    placed: list[tuple[str, list[str]]] = []

    def search(k: int, used: frozenset) -> bool:
        if k == len(params):
            return used == frozenset(roles)
        name, shape = params[k]
        for unit in units:
            if shape_of(unit) == shape and not used & set(unit):
                placed.append((name, [roles[r]["name"] for r in unit]))
                if search(k + 1, used | set(unit)):
                    return True
                placed.pop()
        return False

    return placed if search(0, frozenset()) else None


def dims(shape: Any) -> str:
    """``(16, 48)``, ``(48,)``: a shape as the parent's messages write it."""
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def map_by_structure(
    net: nn.Module,
    layers: list[tuple[str, nn.Module]],
    entries: list[dict[str, Any]],
    fusions: list[list[str]],
    order: dict[str, int],
) -> tuple[list[tuple[str, list[str]]] | None, str]:
    """Pair parameters by structure: layer by layer (and those outside the layers), by shape and call order
    (``fit``). Returns the pairs and "", or None and where no pairing was found."""
    n_layers = 1 + max(e["layer"] for e in entries)
    if len(layers) != n_layers:
        return None, f"it holds {len(layers)} DecoderLayer module(s) for num_layers={n_layers}"
    prefixes = [name + "." for name, _ in layers]
    groups: dict[int, list[tuple[int, int, str, tuple[int, ...]]]] = {i: [] for i in range(-1, n_layers)}
    for index, (name, p) in enumerate(net.named_parameters()):
        layer = next((i for i, prefix in enumerate(prefixes) if name.startswith(prefix)), -1)
        groups[layer].append((order.get(name.rpartition(".")[0], len(order)), index, name, tuple(p.shape)))
    pairs: list[tuple[str, list[str]]] = []
    for layer in range(-1, n_layers):
        params = [(name, shape) for *_, name, shape in sorted(groups[layer])]
        mine = [e for e in entries if e["layer"] == layer]
        placed = fit(params, mine, fusions)
        if placed is None:
            where = f"in {layers[layer][0]}" if layer >= 0 else "outside the decoder layers"
            found = ", ".join(f"{n} {dims(s)}" for n, s in params) or "none"
            wanted = ", ".join(f"{e['role']} {dims(e['shape'])}" for e in mine)
            return None, f"{where}, its parameters ({found}) do not match the reference's ({wanted})"
        pairs += placed
    return pairs, ""


def hyperparameters(config: Any, net: nn.Module, names: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """The learner's value of each free hyperparameter: the first of its ``names`` that the Config, or else one
    of the modules, holds as a positive number; {"value": None} when none does."""
    holders = [("Config", config), *((name or "SimpleKimiK2", m) for name, m in net.named_modules())]
    found = {}
    for key, candidates in names.items():
        found[key] = {"value": None, "where": ""}
        hits = ((place, attr, attribute(holder, attr)) for place, holder in holders for attr in candidates)
        for place, attr, value in hits:
            if is_number(value):
                found[key] = {"value": float(value), "where": f"{place}.{attr}"}
                break
    return found


def attribute(holder: Any, name: str) -> Any:
    """``holder.name``, or None when reading it fails in any way (a property of the learner's may raise)."""
    try:
        return getattr(holder, name, None)
    except Exception:
        return None


def is_number(value: Any) -> bool:
    """A finite positive int or float (not a bool)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def watch(
    net: nn.Module, layers: list[tuple[str, nn.Module]], ids: list[list[int]]
) -> tuple[torch.Tensor, list[dict[str, Any]], list[tuple[torch.Tensor, torch.Tensor]]]:
    """The logits of ``net`` for ``ids``, with what each decoder layer received and returned (its first call)
    and the (input, output) of each norm called inside it, in call order; and the norms called outside them."""
    seen: list[dict[str, Any]] = [{"input": None, "output": None, "norms": []} for _ in layers]
    finals: list[tuple[torch.Tensor, torch.Tensor]] = []
    current: list[int] = []
    handles = []
    for i, (_, layer) in enumerate(layers):

        def enter(m: nn.Module, args: tuple, kwargs: dict, i: int = i) -> None:
            current.append(i)
            if seen[i]["input"] is None:
                seen[i]["input"] = first_arg(args, kwargs)

        def leave(m: nn.Module, args: tuple, out: Any, i: int = i) -> None:
            current.pop()
            if seen[i]["output"] is None:
                seen[i]["output"] = first_tensor(out, "DecoderLayer.forward")

        handles.append(layer.register_forward_pre_hook(enter, with_kwargs=True))
        handles.append(layer.register_forward_hook(leave))
    for name, norm in outer_norms(net):

        def called(m: nn.Module, args: tuple, kwargs: dict, out: Any, name: str = name) -> None:
            call = (first_tensor(first_arg(args, kwargs), f"{name}'s input"), first_tensor(out, name))
            (seen[current[-1]]["norms"] if current else finals).append(call)

        handles.append(norm.register_forward_hook(called, with_kwargs=True))
    try:
        out = logits(net, ids)
    finally:
        for handle in handles:
            handle.remove()
    return out, seen, finals


def weights_run(
    caps: dict[str, Any], position: dict[str, Any], gradients: dict[str, Any], reference: dict[str, Any]
) -> dict[str, Any]:
    """The model with weights the grader sets: random ones for ``position`` (a one-layer model's logits for
    token ids that differ by a swap or a change) and ``gradients`` (one backward pass: which parameters got
    a gradient), the reference's for ``reference`` (its logits and what each decoder layer, norm and the
    final norm saw and gave, after the weights were paired with the learner's parameters)."""
    observer = Observer(**caps)
    encode = observer.encode

    def position_experiment(model: Any) -> dict[str, Any]:
        net = build_model(model, position["config"], position["seed"]).eval()
        return {"logits": [encode(logits(net, ids)) for ids in position["ids"]]}

    def gradients_experiment(model: Any) -> dict[str, Any]:
        net = build_model(model, gradients["config"], gradients["seed"]).train()
        out = torch.Tensor.as_subclass(
            first_tensor(net(torch.tensor(gradients["ids"], dtype=torch.long)), "SimpleKimiK2.forward"), torch.Tensor
        )
        if not out.requires_grad:
            raise RuntimeError(
                "the logits do not require grad: the forward pass runs under torch.no_grad() or detaches its "
                "output, so no parameter can learn"
            )
        weights = torch.randn(out.shape, generator=torch.Generator().manual_seed(gradients["seed"]))
        (out.float() * weights).sum().backward()
        inside = {id(p) for _, layer in decoder_layers(model, net) for p in layer.parameters()}
        found = []
        for name, p in net.named_parameters():
            grad = p.grad
            if grad is None:
                status = "none"
            elif not bool(torch.isfinite(grad).all()):
                status = "nonfinite"
            else:
                status = "ok" if bool(grad.any()) else "zero"
            found.append(
                {"name": name, "shape": [int(n) for n in p.shape], "status": status, "in_layer": id(p) in inside}
            )
        return {"parameters": found[: observer.parameters], "count": len(found)}

    def reference_experiment(model: Any) -> dict[str, Any]:
        torch.manual_seed(reference["seed"])
        config = model.Config(**reference["config"])
        net = model.SimpleKimiK2(config).eval()
        ids = torch.tensor(reference["ids"], dtype=torch.long)
        entries = reference["weights"]["entries"]
        layers = decoder_layers(model, net)
        method, pairs, reason = "names", map_by_name(net, entries), ""
        if pairs is None:
            method = "structure"
            pairs, reason = map_by_structure(net, layers, entries, reference["fusions"], call_order(net, ids))
        params = [{"name": n, "shape": [int(k) for k in p.shape]} for n, p in net.named_parameters()]
        result = {
            "parameters": params[: observer.parameters],
            "count": sum(math.prod(p["shape"]) for p in params),
            "hyperparameters": hyperparameters(config, net, reference["hyperparameters"]),
            "mapping": {
                "method": method if pairs is not None else "none",
                "reason": reason[: observer.error_chars],
                "pairs": [{"parameter": n, "weights": w} for n, w in (pairs or [])][: observer.parameters],
            },
            "logits": None,
            "layers": None,
            "final_norm": None,
        }
        if pairs is None:
            return result
        tensors, named = decode_weights(reference["weights"]), dict(net.named_parameters())
        with torch.no_grad():
            for name, refs in pairs:
                named[name].copy_(torch.cat([tensors[r] for r in refs]) if len(refs) > 1 else tensors[refs[0]])
        out, seen, finals = watch(net, layers, reference["ids"])

        def pair(call: tuple[Any, Any]) -> dict[str, Any]:
            return {"input": encode(call[0]), "output": encode(call[1])}

        result["logits"] = encode(out)
        result["layers"] = [
            {
                "input": encode(layer["input"]) if layer["input"] is not None else None,
                "output": encode(layer["output"]) if layer["output"] is not None else None,
                "norms": [pair(call) for call in layer["norms"][: observer.norm_calls]],
            }
            for layer in seen[: reference["config"]["num_layers"]]
        ]
        result["final_norm"] = pair(finals[-1]) if finals else None
        return result

    return observer.observe(
        "model",
        {"position": position_experiment, "gradients": gradients_experiment, "reference": reference_experiment},
    )


def mla_run(
    caps: dict[str, Any],
    hidden_size: int,
    num_heads: int,
    head_dim: int,
    kv_lora_rank: int,
    seed: int,
    x: list[list[list[float]]],
    behaviour: dict[str, Any],
) -> dict[str, Any]:
    """The advanced stub: ``MultiHeadLatentAttention(...)(x)`` must return ``(output, latent_cache)``. ``mla``:
    the shapes with the learner's own weights; ``behaviour``: with random weights (``randomise``), the output
    and cache for ``x``, for ``x`` with its later rows changed, and for ``x`` with its first row changed."""
    observer = Observer(**caps)

    def make(mla: Any) -> nn.Module:
        torch.manual_seed(seed)
        return mla.MultiHeadLatentAttention(
            hidden_size=hidden_size, num_heads=num_heads, head_dim=head_dim, kv_lora_rank=kv_lora_rank
        )

    def call(attn: nn.Module, inputs: list[list[list[float]]]) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            result = attn(torch.tensor(inputs))
        if not (isinstance(result, (tuple, list)) and len(result) == 2):
            raise TypeError(
                f"MultiHeadLatentAttention.forward returned {type(result).__name__}, expected (output, latent_cache)"
            )
        out, cache = (torch.Tensor.as_subclass(first_tensor(t, "forward"), torch.Tensor) for t in result)
        return out, cache

    def shapes(mla: Any) -> dict[str, Any]:
        out, cache = call(make(mla), x)
        return {
            "output_shape": [int(n) for n in out.shape],
            "cache_shape": [int(n) for n in cache.shape],
            "finite": bool(torch.isfinite(out).all()),
        }

    def behave(mla: Any) -> dict[str, Any]:
        attn = make(mla)
        randomise(attn, behaviour["seed"])
        found = {}
        for key in ("base", "later", "first"):
            out, cache = call(attn, x if key == "base" else behaviour[key])
            found[key] = {"output": observer.encode(out), "cache": observer.encode(cache)}
        return found

    return observer.observe("mla", {"mla": shapes, "behaviour": behave})
