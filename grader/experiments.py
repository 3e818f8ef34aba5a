"""Running the sandboxed runs of one submission and validating what comes back, experiment by experiment.

The runs themselves (probe function, arguments, schemas, caps) are declared in ``grader.runs``. Each is a
separate call of ``Sandbox.run`` on the allow-listed files, one after the other; its JSON is validated here
against the run's schemas before the checks see it. An experiment that could not be observed (a missing
file, an import error, a crash or a limit, an observation that fails its schema) becomes an ``Unobserved``
reason, which the checks that need it turn into feedback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .draws import Draws
from .observations import MAX_STR, ObservationError, Spec
from .results import RunSummary
from .runs import PROBE_SOURCE, RunSpec, run_specs
from .sandbox import Outcome, Sandbox
from .submission import Submission


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
        return Unobserved(stage, error[:MAX_STR])
    try:
        return spec.check(raw, where)
    except ObservationError as exc:
        return Unobserved("invalid", str(exc))


def execute(spec: RunSpec, sub: Submission, sandbox: Sandbox) -> RunResult:
    """Run one group of experiments in the sandbox, or record why it could not run."""
    if spec.needs in sub.code_errors:
        return RunResult(spec, None, sub.code_errors[spec.needs])
    if spec.needs not in sub.code:
        return RunResult(spec, None, f"{spec.needs} is missing from submissions/{sub.student}/")
    outcome = sandbox.run(dict(sub.code), PROBE_SOURCE, spec.call, spec.kwargs)
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
    return {spec.name: execute(spec, sub, sandbox) for spec in run_specs(draws)}
