"""The sandboxed runs, each declared once: its probe function, its arguments, its result schema and its caps.

The experiments are grouped into runs so that a hang or crash costs only the checks that depend on that
run: counting parameters, running the model forward, RMSNorm alone, one decoder layer, the model with
weights the grader sets (position, gradients, the reference's weights), the MLA stub. A run
is one call ``probe.<call>(caps=..., **args)`` in the sandbox, beside the learner's files; the probe is
``grader/sandbox/inside/probe.py``, sent as source text. For each run this module declares, in one place:

- ``call``: the probe function, and ``needs``: the learner's file it imports;
- ``args``: its keyword arguments, built from the student's draws (``grader.draws``);
- ``experiments``: the schema of each observation it sends back (``grader.observations``), which
  ``grader.experiments`` validates before any check sees it;
- ``caps``: the limits on what the probe sends back (``Caps``). They travel to the probe in its ``caps``
  argument, and the schemas are built from the same ``Caps``, so no limit is typed on both sides of the
  sandbox.

Adding a run: its probe function in ``probe.py``, its ``RunSpec`` in ``run_specs`` below (and any new draws
in ``grader.draws``), then the checks that ``observe`` it.
"""

from __future__ import annotations

import base64
import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from .draws import Draws, lesson_fields, reference_weights
from .matching import FUSIONS, HYPERPARAMETERS
from .observations import Bool, Choice, Float, Int, ListOf, Optional, Record, Shape, Spec, Str, TensorSpec
from .submission import CODE_FILES

PROBE_SOURCE = (Path(__file__).parent / "sandbox" / "inside" / "probe.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Caps:
    """Limits on what a probe sends back: the probe cuts what it observes to them, the schemas accept no more."""

    tensor_numbers: int = 8192  # a tensor with more numbers comes back as its shape alone
    norm_calls: int = 6  # normalisation calls of a decoder layer recorded with their inputs and outputs
    names: int = 16  # names listed: RMSNorm's parameters, a layer's norm modules
    parameters: int = 64  # parameters listed with their shapes (and gradients), and weights paired with them
    error_chars: int = 1200  # the learner's error message
    student_files: tuple[str, ...] = tuple(CODE_FILES)  # the learner's files: an error names its last frame there


CAPS = Caps()


@dataclass(frozen=True)
class RunSpec:
    """One sandboxed run for one student: the probe function, the file it needs, its arguments and schemas."""

    name: str
    call: str
    needs: str
    args: dict[str, Any]
    experiments: dict[str, Spec]
    caps: Caps = CAPS

    @property
    def kwargs(self) -> dict[str, Any]:
        """The probe function's keyword arguments: the caps, then the run's own."""
        return {"caps": asdict(self.caps), **self.args}


FIELD_VALUE = Choice(
    {
        "int": Record({"value": Int()}),
        "missing": Record({}),
        "other": Record({"type": Str(), "repr": Str()}),
    }
)
SHAPE_RESULT = Record({"shape": Shape(), "finite": Bool()})


def weights_arg(d: Draws) -> dict[str, Any]:
    """The reference's weights for the comparison run: each one's name, shape, layer (-1: outside the layers)
    and role (its module's name in reference/model.py), and all their float32 bytes, base64, in that order."""
    weights = reference_weights(tuple(d.reference["config"].items()), d.reference["seed"])
    entries = []
    for name, tensor in weights.items():
        parts = name.split(".")
        layer = int(parts[1]) if parts[0] == "layers" else -1
        entries.append({"name": name, "shape": list(tensor.shape), "layer": layer, "role": parts[-2]})
    data = torch.cat([t.reshape(-1) for t in weights.values()]).numpy().tobytes()
    return {"entries": entries, "data": base64.b64encode(data).decode("ascii")}


def run_specs(d: Draws, caps: Caps = CAPS) -> list[RunSpec]:
    """The runs for one student: arguments from its draws d, schemas from ``caps`` (list lengths from d)."""
    run = functools.partial(RunSpec, caps=caps)
    tensor = TensorSpec(max_numbers=caps.tensor_numbers)
    norm_call = {"input": tensor, "output": tensor}
    lesson = lesson_fields()
    return [
        run(  # Config's defaults and parameter counting, on the meta device
            "config",
            "config_run",
            "model.py",
            {"lesson": lesson, "configs": d.contract_configs},
            {
                "defaults": Record({"fields": Record(dict.fromkeys(lesson, FIELD_VALUE))}),
                "lesson_count": Record({"count": Int()}),
                "contract_counts": Record({"counts": ListOf(Int(), length=len(d.contract_configs))}),
            },
        ),
        run(  # SimpleKimiK2's forward: logits shapes, and pairs of logits to compare
            "forward",
            "forward_run",
            "model.py",
            {
                "config": d.forward_config,
                "seed": d.model_seed,
                "example": d.example,
                "batches": d.batches,
                "causal": d.causal,
                "context": d.context,
            },
            {
                "example": SHAPE_RESULT,
                "batches": Record({"results": ListOf(SHAPE_RESULT, length=len(d.batches))}),
                "causal": Record({"logits": ListOf(tensor, length=len(d.causal))}),
                "context": Record({"logits": ListOf(tensor, length=len(d.context))}),
            },
        ),
        run(  # RMSNorm alone, its scale set to drawn values
            "rmsnorm",
            "rmsnorm_run",
            "model.py",
            {"dim": d.rms_dim, "x": d.rms_x, "weight": d.rms_weight},
            {
                "rmsnorm": Record(
                    {
                        "params": ListOf(Record({"name": Str(), "shape": Shape()}), max_length=caps.names),
                        "scale": Optional(Str()),
                        "output": tensor,
                    }
                )
            },
        ),
        run(  # one DecoderLayer: its output, its norms' inputs and outputs, and its output with zeroed weights
            "layer",
            "layer_run",
            "model.py",
            {"config": d.layer_config, "seed": d.model_seed, "x": d.layer_x},
            {
                "layer": Record(
                    {
                        "output": tensor,
                        "zeroed_output": tensor,
                        "zeroed_first_norm_input": Optional(tensor),
                        "norm_calls": ListOf(
                            Record({"module": Str(), "input": tensor, "output": tensor}), max_length=caps.norm_calls
                        ),
                        "n_norm_calls": Int(),
                        "norm_modules": ListOf(Str(), max_length=caps.names),
                    }
                )
            },
        ),
        run(  # the model with weights the grader sets: position, gradients, the reference's weights
            "weights",
            "weights_run",
            "model.py",
            {
                "position": {k: d.position[k] for k in ("config", "seed", "ids")},
                "gradients": d.gradients,
                "reference": {
                    **d.reference,
                    "weights": weights_arg(d),
                    "fusions": [list(f) for f in FUSIONS],
                    "hyperparameters": {k: list(v) for k, v in HYPERPARAMETERS.items()},
                },
            },
            {
                "position": Record({"logits": ListOf(tensor, length=len(d.position["ids"]))}),
                "gradients": Record(
                    {
                        "parameters": ListOf(
                            Record({"name": Str(), "shape": Shape(), "status": Str(), "in_layer": Bool()}),
                            max_length=caps.parameters,
                        ),
                        "count": Int(),
                    }
                ),
                "reference": Record(
                    {
                        "parameters": ListOf(Record({"name": Str(), "shape": Shape()}), max_length=caps.parameters),
                        "count": Int(),
                        "hyperparameters": Record(
                            dict.fromkeys(HYPERPARAMETERS, Record({"value": Optional(Float()), "where": Str()}))
                        ),
                        "mapping": Record(
                            {
                                "method": Str(),
                                "reason": Str(),
                                "pairs": ListOf(
                                    Record({"parameter": Str(), "weights": ListOf(Str(), max_length=3)}),
                                    max_length=caps.parameters,
                                ),
                            }
                        ),
                        "logits": Optional(tensor),
                        "layers": Optional(
                            ListOf(
                                Record(
                                    {
                                        "input": Optional(tensor),
                                        "output": Optional(tensor),
                                        "norms": ListOf(Record(norm_call), max_length=caps.norm_calls),
                                    }
                                ),
                                max_length=d.reference["config"]["num_layers"],
                            )
                        ),
                        "final_norm": Optional(Record(norm_call)),
                    }
                ),
            },
        ),
        run(  # the advanced task's MLA stub: shapes with its own weights, behaviour with random ones
            "mla",
            "mla_run",
            "mla.py",
            {**d.mla, "behaviour": {k: d.mla_behaviour[k] for k in ("seed", "later", "first")}},
            {
                "mla": Record({"output_shape": Shape(), "cache_shape": Shape(), "finite": Bool()}),
                "behaviour": Record(
                    dict.fromkeys(("base", "later", "first"), Record({"output": tensor, "cache": tensor}))
                ),
            },
        ),
    ]
