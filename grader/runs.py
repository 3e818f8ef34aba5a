"""The sandboxed runs, each declared once: its probe function, its arguments, its result schema and its caps.

The experiments are grouped into runs so that a hang or crash costs only the checks that depend on that
run: counting parameters, running the model forward, RMSNorm alone, one decoder layer, the MLA stub. A run
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

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .draws import Draws, lesson_fields
from .observations import Bool, Choice, Int, ListOf, Optional, Record, Shape, Spec, Str, TensorSpec
from .submission import CODE_FILES

PROBE_SOURCE = (Path(__file__).parent / "sandbox" / "inside" / "probe.py").read_text(encoding="utf-8")


@dataclass(frozen=True)
class Caps:
    """Limits on what a probe sends back: the probe cuts what it observes to them, the schemas accept no more."""

    tensor_numbers: int = 8192  # a tensor with more numbers comes back as its shape alone
    norm_calls: int = 6  # normalisation calls of a decoder layer recorded with their inputs and outputs
    names: int = 16  # parameter and module names listed
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


def run_specs(d: Draws, caps: Caps = CAPS) -> list[RunSpec]:
    """The runs for one student: arguments from its draws d, schemas from ``caps`` (list lengths from d)."""
    run = functools.partial(RunSpec, caps=caps)
    tensor = TensorSpec(max_numbers=caps.tensor_numbers)
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
        run(  # the advanced task's MLA stub
            "mla",
            "mla_run",
            "mla.py",
            dict(d.mla),
            {"mla": Record({"output_shape": Shape(), "cache_shape": Shape(), "finite": Bool()})},
        ),
    ]
