"""Checks as pytest tests: the ``check`` decorator, partial credit, and running pytest over the check modules.

Each check is a function ``check_*(evidence)`` in ``grader/checks/check_*.py`` with a ``@check(...)`` decorator
that gives its number, name, points, a one-line description, its docs page and who sees it when
(``visibility``, Gradescope's terms: see ``VISIBILITY``). ``pytest.main`` runs them in
the grader's own process (student code never runs here; ``evidence`` is an ``Evidence`` of one student's
answers and validated observations), with every student as one parameter of ``evidence``, each student's
checks in number order. The plugin turns each outcome into a ``CheckResult``:

- returns normally: all points (a returned string is kept as the message);
- ``assert cond, message`` fails: no points, the message is the feedback (``--assert=plain`` keeps it verbatim);
- ``raise Partial(points, message)``: some points;
- ``raise ManualReview(message, rubric)``: points wait for a person (the item joins the manual-review list).

pytest runs with its own config (``grader/pytest-checks.toml``), its own rootdir, no cache, no plugin
autoloading and no ``PYTEST_ADDOPTS``, so nothing in ``submissions/`` or the environment can change it. The
plugin uses pytest's public API only: the parameter reaches the check through the plugin's own ``evidence``
fixture (``request.param``), which keeps it in the item's ``stash`` for the hooks.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .errors import GraderError
from .evidence import Evidence
from .results import CheckResult, ManualItem

CHECKS_DIR = Path(__file__).with_name("checks")
PYTEST_CONFIG = Path(__file__).with_name("pytest-checks.toml")
DOCS_ROOT = "the lesson docs"
EVIDENCE = pytest.StashKey[Evidence]()  # each check item's student, kept there by the ``evidence`` fixture
# When a learner sees a check's result, in Gradescope's words (its results.json carries the value per test):
# feedback.md withholds what is not "visible" until the instructor publishes (``--publish``); the student kit's
# grader runs the visible checks, stands in for the after_due_date ones, and holds no hidden check at all.
VISIBILITY = {
    "visible": "always",
    "after_due_date": "after the due date: a check whose message would state an answer (the quiz, the mask, a count)",
    "hidden": "never on Gradescope; in feedback.md once the instructor publishes the grades",
}


@dataclass(frozen=True)
class CheckSpec:
    """A check's identity: ``number`` orders the table ("1.2"), ``docs`` is the page that explains it,
    ``visibility`` says when a learner sees its result (a key of ``VISIBILITY``)."""

    number: str
    name: str
    points: float
    what: str
    docs: str
    visibility: str = "visible"


def check(
    number: str, name: str, points: float, what: str, docs: str, visibility: str = "visible"
) -> Callable[[Callable], Callable]:
    """Mark a pytest function in grader/checks as a graded check; it takes one argument, ``evidence``."""
    if visibility not in VISIBILITY:
        raise ValueError(f"check {number} {name}: visibility {visibility!r} is not one of {', '.join(VISIBILITY)}")

    def mark(function: Callable) -> Callable:
        if list(inspect.signature(function).parameters) != ["evidence"]:
            raise TypeError(f"{function.__name__}: a check takes one argument, evidence (an Evidence)")
        function.check_spec = CheckSpec(number, name, points, what, docs, visibility)
        return function

    return mark


class Partial(Exception):
    """Award ``points`` (fewer than the check's maximum), with ``message`` saying what was missing."""

    def __init__(self, points: float, message: str) -> None:
        super().__init__(message)
        self.points, self.message = points, message


class ManualReview(Exception):
    """The check cannot decide: the points wait for a person, who scores the answer with ``rubric``."""

    def __init__(self, message: str, rubric: str, answer: str) -> None:
        super().__init__(message)
        self.message, self.rubric, self.answer = message, rubric, answer


def with_docs(message: str, spec: CheckSpec, docs_url: str | None = None) -> str:
    """Feedback ends with the docs page that explains the check: a full link when the site's address is known."""
    text = message.rstrip()
    where = f"{docs_url.rstrip('/')}/{spec.docs}" if docs_url else f"{spec.docs} in {DOCS_ROOT}"
    return f"{text}{'' if text.endswith(('.', '?', '!')) else '.'} See {where}."


def number_key(number: str) -> tuple[int, ...]:
    """Sort "1.10" after "1.9"."""
    return tuple(int(part) for part in number.split("."))


class ScoringPlugin:
    """Parametrises every check over the students and records each outcome as a CheckResult."""

    def __init__(self, evidence: list[Evidence], docs_url: str | None = None) -> None:
        self.class_evidence = evidence  # every student's, in the order given
        self.docs_url = docs_url
        self.results: dict[str, list[CheckResult]] = {e.student: [] for e in evidence}
        self.manual: dict[str, list[ManualItem]] = {e.student: [] for e in evidence}
        self.errors: dict[str, list[str]] = {e.student: [] for e in evidence}
        self.collection_errors: list[str] = []
        self.returned: dict[str, Any] = {}

    def pytest_generate_tests(self, metafunc: pytest.Metafunc) -> None:
        if "evidence" in metafunc.fixturenames:
            ids = [e.student for e in self.class_evidence]
            metafunc.parametrize("evidence", self.class_evidence, ids=ids, indirect=True)

    @pytest.fixture
    def evidence(self, request: pytest.FixtureRequest) -> Evidence:
        """One student's evidence, the parameter of this check item; kept in its stash for the hooks."""
        request.node.stash[EVIDENCE] = request.param
        return request.param

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        """Check-number order (a stable sort: the students in their order within each check)."""
        items.sort(key=lambda it: number_key(spec_of(it).number))

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid}: {report.longreprtext}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_pyfunc_call(self, pyfuncitem: pytest.Function) -> bool:
        """Call the check and keep what it returned (a message for a passed check)."""
        evidence = pyfuncitem.stash[EVIDENCE]
        evidence.check = spec_of(pyfuncitem).number
        self.returned[pyfuncitem.nodeid] = pyfuncitem.obj(evidence)
        return True

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
        yield
        evidence = item.stash.get(EVIDENCE, None)
        if evidence is None:  # its setup failed before the evidence fixture ran: a fault of the grader
            self.collection_errors.append(f"{item.nodeid} {call.when}: {call.excinfo}")
        elif call.when != "call":
            if call.excinfo is not None:
                self.errors[evidence.student].append(f"{item.nodeid} {call.when}: {call.excinfo}")
        else:
            self.results[evidence.student].append(self.judge(evidence, spec_of(item), item.nodeid, call.excinfo))

    def judge(self, evidence: Evidence, spec: CheckSpec, nodeid: str, excinfo: Any) -> CheckResult:
        """One outcome as a CheckResult (and a manual-review item when the check defers to a person)."""

        def result(score: float, status: str, message: str) -> CheckResult:
            return CheckResult(spec.name, spec.number, score, spec.points, status, message)

        if excinfo is None:
            returned = self.returned.get(nodeid)
            return result(spec.points, "passed", returned if isinstance(returned, str) else spec.what + ": passed.")
        error = excinfo.value
        if isinstance(error, AssertionError):
            return result(0.0, "failed", with_docs(str(error), spec, self.docs_url))
        if isinstance(error, Partial):
            if not 0 <= error.points < spec.points:
                self.errors[evidence.student].append(f"{spec.name}: Partial({error.points}) outside 0..{spec.points}")
            return result(
                min(max(error.points, 0.0), spec.points), "failed", with_docs(error.message, spec, self.docs_url)
            )
        if isinstance(error, ManualReview):
            self.manual[evidence.student].append(
                ManualItem(spec.name, spec.what, spec.points, error.rubric, error.answer, check=spec.number)
            )
            return result(0.0, "manual", with_docs(error.message, spec, self.docs_url))
        self.errors[evidence.student].append(f"{spec.name}: {type(error).__name__}: {error}")
        return result(
            0.0,
            "failed",
            f"The grader could not score this check (internal error {type(error).__name__}); "
            "it is not your fault: your instructor has been told.",
        )


def spec_of(item: pytest.Item) -> CheckSpec:
    """The check's metadata; a test function without ``@check`` in grader/checks is a grader bug."""
    spec = getattr(getattr(item, "function", None), "check_spec", None)
    if spec is None:
        raise GraderError(f"{item.nodeid} has no @check decorator")
    return spec


@contextmanager
def clean_pytest_environment() -> Iterator[None]:
    """No PYTEST_ADDOPTS/PYTEST_PLUGINS from the caller, no third-party plugin autoloading, while scoring."""
    saved = {k: os.environ.get(k) for k in ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_DISABLE_PLUGIN_AUTOLOAD")}
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_PLUGINS", None)
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def score(evidence: list[Evidence], docs_url: str | None = None) -> ScoringPlugin:
    """Run every check for every student in one pytest session; GraderError if pytest itself failed."""
    plugin = ScoringPlugin(evidence, docs_url)
    if not evidence:
        return plugin
    args = [
        "-c",
        str(PYTEST_CONFIG),
        "--rootdir",
        str(CHECKS_DIR),
        "-p",
        "no:cacheprovider",
        "-p",
        "no:terminal",
        "-p",
        "no:stepwise",
        "-p",
        "no:unraisableexception",
        "-p",
        "no:threadexception",
        "-p",
        "no:faulthandler",
        "-p",
        "no:logging",
        "-p",
        "no:warnings",
        "--capture=no",
        "--assert=plain",
        "--import-mode=importlib",
        str(CHECKS_DIR),
    ]
    with clean_pytest_environment():
        code = pytest.main(args, plugins=[plugin])
    if plugin.collection_errors:
        raise GraderError("the grader's checks could not be collected:\n" + "\n".join(plugin.collection_errors))
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        raise GraderError(f"pytest could not run the grader's checks (exit code {int(code)})")
    expected = len(points_table())
    for student, results in plugin.results.items():
        if len(results) != expected:
            raise GraderError(f"{student}: {len(results)} checks ran, expected {expected}")
    return plugin


def check_functions() -> list[Callable]:
    """Every decorated check, imported from grader.checks, in number order."""
    from . import checks

    found = [
        obj
        for module in checks.MODULES
        for obj in vars(module).values()
        if callable(obj) and hasattr(obj, "check_spec")
    ]
    return sorted(found, key=lambda f: number_key(f.check_spec.number))


def points_table() -> list[dict[str, Any]]:
    """The checks as rows (number, name, points, what, docs, visibility), for the docs and the reports."""
    return [
        {
            "number": s.number,
            "name": s.name,
            "points": s.points,
            "what": s.what,
            "docs": s.docs,
            "visibility": s.visibility,
        }
        for s in (f.check_spec for f in check_functions())
    ]
