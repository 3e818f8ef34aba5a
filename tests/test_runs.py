"""Each sandboxed run's contract, as ``grader.runs`` declares it, against what the probe really does.

Every probe function is a declared run, taking exactly the arguments it is sent. Each run is made on the
full-marks fixture in the real sandbox, and its real output is validated against the declared schema,
strictly: every experiment observed, no key the schema does not declare, every tensor with its numbers. The
negative cases drift a cap or a schema on one side only and show that the same validation then fails.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from grader.draws import Draws, draw, student_seed
from grader.observations import Choice, Int, ListOf, ObservationError, Optional, Record, Spec, TensorSpec
from grader.runs import CAPS, PROBE_SOURCE, Caps, RunSpec, run_specs
from grader.sandbox import Sandbox, SandboxUnavailable
from grader.submission import read_submission

FULL = Path(__file__).resolve().parent / "fixtures" / "submissions" / "full"
SEED = 20251129

Results = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def sandbox():
    try:
        box = Sandbox(jobs=1, require_isolation=True)
    except SandboxUnavailable as exc:
        pytest.fail(f"{exc}\nThese tests need a working bubblewrap: run `bash .ci/setup`.")
    with box:
        yield box


def draws() -> Draws:
    return draw(student_seed(SEED, "full"))


def run_full(sandbox: Sandbox, specs: list[RunSpec]) -> Results:
    """Each run's JSON result on the full-marks fixture, straight from the sandbox."""
    code = read_submission(FULL, "full").code
    results = {}
    for spec in specs:
        outcome = sandbox.run(dict(code), PROBE_SOURCE, spec.call, spec.kwargs)
        assert outcome.status == "ok", f"{spec.name}: {outcome.message}\n{outcome.stderr_tail}"
        results[spec.name] = outcome.result
    return results


@pytest.fixture(scope="module")
def observed(sandbox) -> Results:
    return run_full(sandbox, run_specs(draws()))


def undeclared(spec: Spec, value: Any, where: str) -> None:
    """ObservationError for what a valid value holds beyond its schema: keys it does not declare, and
    tensors sent back without their numbers (too large for the probe's cap, so useless to the checks)."""
    if isinstance(spec, Optional) and value is not None:
        undeclared(spec.inner, value, where)
    elif isinstance(spec, Record):
        extra = sorted(set(value) - set(spec.fields))
        if extra:
            raise ObservationError(f"{where} holds {', '.join(extra)}, which its schema does not declare")
        for key, inner in spec.fields.items():
            undeclared(inner, value[key], f"{where}.{key}")
    elif isinstance(spec, Choice):
        undeclared(spec.kinds[value["kind"]], {k: v for k, v in value.items() if k != "kind"}, where)
    elif isinstance(spec, ListOf):
        for i, item in enumerate(value):
            undeclared(spec.item, item, f"{where}[{i}]")
    elif isinstance(spec, TensorSpec) and value["data"] is None:
        raise ObservationError(f"{where} came back without its numbers")


def conform(specs: list[RunSpec], results: Results) -> None:
    """Validate every run's result strictly against its declared experiments; ObservationError if one differs."""
    for spec in specs:
        result = results[spec.name]
        if set(result) != set(spec.experiments):
            raise ObservationError(f"{spec.name} observed {sorted(result)}, declared {sorted(spec.experiments)}")
        for name, schema in spec.experiments.items():
            where = f"{spec.name}.{name}"
            raw = result[name]
            if raw.get("ok") is not True:
                raise ObservationError(f"{where} was not observed: {raw.get('error')}")
            schema.check(raw, where)
            undeclared(schema, {k: v for k, v in raw.items() if k != "ok"}, where)


def probe_functions() -> dict[str, ast.FunctionDef]:
    tree = ast.parse(PROBE_SOURCE)
    return {node.name: node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def test_every_probe_function_is_one_declared_run_taking_the_arguments_it_is_sent() -> None:
    found = probe_functions()
    specs = run_specs(draws())
    assert sorted(name for name in found if name.endswith("_run")) == sorted(spec.call for spec in specs)
    assert len({spec.name for spec in specs}) == len(specs)
    for spec in specs:
        assert [a.arg for a in found[spec.call].args.args] == list(spec.kwargs), spec.name
    init = next(f for f in found["Observer"].body if isinstance(f, ast.FunctionDef) and f.name == "__init__")
    assert sorted(a.arg for a in init.args.kwonlyargs) == sorted(f.name for f in dataclasses.fields(Caps))


def test_each_run_on_the_full_marks_fixture_sends_what_its_schema_declares(observed: Results) -> None:
    conform(run_specs(draws()), observed)


def replace_experiment(run: str, name: str, schema: Callable[[Spec], Spec]) -> Callable[[Draws], list[RunSpec]]:
    """The declared runs, with one experiment's schema changed as ``schema`` says."""

    def specs(d: Draws) -> list[RunSpec]:
        return [
            dataclasses.replace(s, experiments={**s.experiments, name: schema(s.experiments[name])})
            if s.name == run
            else s
            for s in run_specs(d)
        ]

    return specs


def without_field(field: str) -> Callable[[Spec], Spec]:
    def drop(record: Spec) -> Spec:
        assert isinstance(record, Record)
        return Record({k: v for k, v in record.fields.items() if k != field})

    return drop


SCHEMA_DRIFTS = {
    "tensor cap lower in the schemas": (
        lambda d: run_specs(d, Caps(tensor_numbers=16)),
        r"^forward\.causal\.logits\[0\]\.data does not hold the \d+ numbers of shape \[1, \d+, \d+\]$",
    ),
    "norm-call cap lower in the schemas": (
        lambda d: run_specs(d, Caps(norm_calls=1)),
        r"layer\.layer\.norm_calls has 2 items, more than 1",
    ),
    "name cap lower in the schemas": (
        lambda d: run_specs(d, Caps(names=1)),
        r"layer\.layer\.norm_modules has 2 items, more than 1",
    ),
    "parameter cap lower in the schemas": (
        lambda d: run_specs(d, Caps(parameters=1)),
        r"^weights\.gradients\.parameters has \d+ items, more than 1$",
    ),
    "a field the probe does not send": (
        replace_experiment("mla", "mla", lambda r: Record({**r.fields, "latent": Int()})),
        r"^mla\.mla lacks latent$",
    ),
    "a field the schema does not declare": (
        replace_experiment("layer", "layer", without_field("n_norm_calls")),
        r"^layer\.layer holds n_norm_calls, which its schema does not declare$",
    ),
    "a field of another type": (
        replace_experiment("config", "lesson_count", lambda r: Record({"count": Record({})})),
        r"^config\.lesson_count\.count should be an object, got int",
    ),
    "an experiment the probe does not make": (
        lambda d: [
            dataclasses.replace(s, experiments={**s.experiments, "extra": Record({})}) if s.name == "rmsnorm" else s
            for s in run_specs(d)
        ],
        r"^rmsnorm observed \['rmsnorm'\], declared \['extra', 'rmsnorm'\]$",
    ),
}


@pytest.mark.parametrize(("specs", "error"), SCHEMA_DRIFTS.values(), ids=SCHEMA_DRIFTS.keys())
def test_a_schema_that_drifts_from_the_probe_fails_validation(observed: Results, specs, error: str) -> None:
    with pytest.raises(ObservationError, match=error):
        conform(specs(draws()), observed)


def test_a_probe_cap_that_drifts_from_the_schemas_fails_validation(sandbox) -> None:
    """Tensors cut by a smaller cap in the probe alone come back without their numbers, and are caught."""
    drifted = run_full(sandbox, run_specs(draws(), Caps(tensor_numbers=16)))
    with pytest.raises(ObservationError, match=r"^forward\.causal\.logits\[0\] came back without its numbers$"):
        conform(run_specs(draws(), CAPS), drifted)
