"""The sandboxed runs: which probe function each calls, what it needs, and the schema of what comes back.

The experiments are grouped into runs so that a hang or crash costs only the checks that depend on that
run: counting parameters, running the model forward, RMSNorm alone, one decoder layer, the MLA stub.
Every run is a separate call of ``Sandbox.run`` on the allow-listed files; its JSON is validated here,
experiment by experiment, before the checks see it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .draws import LESSON_FIELDS, Draws
from .observations import (
    Bool,
    Choice,
    Int,
    ListOf,
    ObservationError,
    Optional,
    Record,
    Shape,
    Spec,
    Str,
    TensorSpec,
)
from .results import RunSummary
from .sandbox import Outcome, Sandbox
from .submission import Submission

PROBE_SOURCE = (Path(__file__).parent / "sandbox" / "inside" / "probe.py").read_text(encoding="utf-8")

SHAPE_RESULT = Record({"shape": Shape(), "finite": Bool()})
FIELD_VALUE = Choice(
    {
        "int": Record({"value": Int()}),
        "missing": Record({}),
        "other": Record({"type": Str(), "repr": Str()}),
    }
)


@dataclass(frozen=True)
class RunSpec:
    """One sandboxed run: the probe function, the file it needs, and each experiment's schema."""

    name: str
    title: str
    call: str
    needs: str
    experiments: dict[str, Spec]


def run_specs(draws: Draws) -> list[RunSpec]:
    """The runs for one student (list lengths in the schemas follow that student's draws)."""
    return [
        RunSpec(
            "config",
            "Config and parameter counting",
            "config_run",
            "model.py",
            {
                "defaults": Record({"fields": Record({f: FIELD_VALUE for f in LESSON_FIELDS})}),
                "lesson_count": Record({"count": Int()}),
                "contract_counts": Record({"counts": ListOf(Int(), length=len(draws.contract_configs))}),
            },
        ),
        RunSpec(
            "forward",
            "SimpleKimiK2 forward",
            "forward_run",
            "model.py",
            {
                "example": SHAPE_RESULT,
                "batches": Record({"results": ListOf(SHAPE_RESULT, length=len(draws.batches))}),
                "causal": Record({"logits": ListOf(TensorSpec(), length=2)}),
                "context": Record({"logits": ListOf(TensorSpec(), length=2)}),
            },
        ),
        RunSpec(
            "rmsnorm",
            "RMSNorm",
            "rmsnorm_run",
            "model.py",
            {
                "rmsnorm": Record(
                    {
                        "params": ListOf(Record({"name": Str(), "shape": Shape()}), max_length=16),
                        "scale": Optional(Str()),
                        "output": TensorSpec(),
                    }
                )
            },
        ),
        RunSpec(
            "layer",
            "DecoderLayer",
            "layer_run",
            "model.py",
            {
                "layer": Record(
                    {
                        "output": TensorSpec(),
                        "zeroed_output": TensorSpec(),
                        "zeroed_first_norm_input": Optional(TensorSpec()),
                        "norm_calls": ListOf(
                            Record({"module": Str(), "input": TensorSpec(), "output": TensorSpec()}), max_length=6
                        ),
                        "n_norm_calls": Int(),
                        "norm_modules": ListOf(Str(), max_length=16),
                    }
                )
            },
        ),
        RunSpec(
            "mla",
            "MLA stub",
            "mla_run",
            "mla.py",
            {"mla": Record({"output_shape": Shape(), "cache_shape": Shape(), "finite": Bool()})},
        ),
    ]


@dataclass
class RunResult:
    """A run's outcome and its validated experiments (each a dict, or an ``Unobserved`` reason)."""

    spec: RunSpec
    outcome: Outcome | None
    skipped: str = ""
    experiments: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> RunSummary:
        """The diagnostics line of this run for the reports."""
        if self.outcome is None:
            return RunSummary(self.spec.name, "skipped", 0.0, self.skipped, "")
        o = self.outcome
        return RunSummary(self.spec.name, o.status, round(o.seconds, 3), o.message, o.stderr_tail)


@dataclass(frozen=True)
class Unobserved:
    """Why an experiment has no observation: ``stage`` is import, build, run, sandbox or invalid."""

    stage: str
    text: str


def validate_experiment(spec: Spec, raw: Any, where: str) -> dict[str, Any] | Unobserved:
    """One experiment's JSON: the learner's error as reported, or the validated data."""
    if not isinstance(raw, dict) or not isinstance(raw.get("ok"), bool):
        return Unobserved("invalid", f"{where} is not an experiment record")
    if not raw["ok"]:
        error = raw.get("error")
        if not isinstance(error, str):
            return Unobserved("invalid", f"{where} failed without an error message")
        stage = raw.get("stage") if raw.get("stage") in ("import", "build") else "run"
        return Unobserved(stage, error[:2000])
    try:
        return spec.check(raw, where)
    except ObservationError as exc:
        return Unobserved("invalid", str(exc))


def execute(spec: RunSpec, sub: Submission, args: dict[str, Any], sandbox: Sandbox) -> RunResult:
    """Run one group of experiments in the sandbox, or record why it could not run."""
    if spec.needs in sub.code_errors:
        return RunResult(spec, None, sub.code_errors[spec.needs])
    if spec.needs not in sub.code:
        return RunResult(spec, None, f"{spec.needs} is missing from submissions/{sub.student}/")
    outcome = sandbox.run(dict(sub.code), PROBE_SOURCE, spec.call, args)
    result = RunResult(spec, outcome)
    for name, schema in spec.experiments.items():
        if outcome.status != "ok" or outcome.result is None:
            result.experiments[name] = Unobserved("sandbox", outcome.message)
        elif name not in outcome.result:
            result.experiments[name] = Unobserved("invalid", f"the run returned no {name!r} observation")
        else:
            result.experiments[name] = validate_experiment(schema, outcome.result[name], name)
    return result


def run_all(sub: Submission, draws: Draws, sandbox: Sandbox) -> dict[str, RunResult]:
    """Every run for one submission, one after the other (submissions run in parallel, not their runs)."""
    args = draws.run_args()
    return {spec.name: execute(spec, sub, args[spec.name], sandbox) for spec in run_specs(draws)}
