"""The autograder of Lesson 1.2: pytest checks over observations that student code makes in a sandbox.

Which code is trusted, by folder:

- ``grader/`` and its ``checks/`` and ``reports/``: trusted, run in the grader's own process. A submission's
  files are only read here (as bytes and TOML); its code never runs here.
- ``grader/sandbox/``: the host side of the sandbox, trusted too: it starts the workers and judges how each
  run ended. Standard library only; it imports nothing else of the grader.
- ``grader/sandbox/inside/``: shipped as source text into the sandbox and run there, beside the student's
  code: the zygote (the worker) and the probe (the experiments). Never imported; standard library and
  torch only; no answer keys.

How the data flows, for each submission (``grading.grade`` drives it):

1. **read** its folder: ``answers.toml`` and the code files, as bytes (``submission``, ``names``);
2. **draw** fresh configs, seeds and inputs for this student (``draws``);
3. **run** each group of experiments in the sandbox (``runs`` declares each run once: probe function,
   arguments, result schema, caps; ``experiments`` makes them);
4. **validate** every observation against its schema (``observations``), into the ``evidence``;
5. **score** the evidence with the pytest checks (``scoring``, ``checks``; the keys are in ``checks`` and
   ``rubrics``, the comparison with the reference model in ``matching``); the ``written`` work waits for a
   person, scored from the instructor's ``manual`` scores;
6. **record**: each submission committed to the gradebook database under ``--out`` as soon as it is scored,
   then the report files exported from it (``reports``); ``late`` assesses late work.

Errors: ``errors``. From Python: ``grader.grade([Path("submissions/alice")], out=Path("reports"))``; from a
shell: ``python -m grader submissions/alice`` (``grader.__main__``; ``python -m grader merge`` and
``python -m grader export`` combine shards and export to an LMS). The names below are imported on first use,
so that ``import grader.sandbox`` loads neither pytest, torch nor ``reference``.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "grade": "grading",
    "points_table": "scoring",
    "written_table": "written",
    "CheckResult": "results",
    "ManualItem": "results",
    "RunSummary": "results",
    "StudentResult": "results",
    "GraderError": "errors",
    "SandboxUnavailable": "errors",
    "UsageError": "errors",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """``grader.grade`` and the rest of the public API, from the module that defines it, on first use."""
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_PUBLIC[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))
