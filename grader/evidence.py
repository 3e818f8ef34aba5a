"""What a check sees, its ``evidence`` argument: one student's answers, the grader's draws, the validated
observations.

Checks ask for what they need through ``answer`` and ``observe``; when it is not there (a missing file,
malformed TOML, a run that crashed or hung, an observation that failed validation) these raise an
``AssertionError`` whose text is the learner's feedback, so that check fails with a clear reason and the
others go on. An import error is shown in full once, by the first check that meets it; the later ones name
the error's kind and refer to that check, so the feedback does not repeat one traceback line ten times.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .draws import Draws
from .experiments import RunResult, Unobserved
from .names import unknown_in
from .submission import Submission

TAIL_LINES = 3
MISSING_NAME = re.compile(r"AttributeError: module '(?P<module>\w+)' has no attribute '(?P<name>\w+)'")


@dataclass
class Evidence:
    """One submission, ready to be scored: what was read from it (``submission``), its draws and its runs."""

    submission: Submission
    draws: Draws
    runs: dict[str, RunResult]
    check: str = ""  # the number of the check now asking (set by the scoring plugin)
    import_errors: dict[tuple[str, str], str] = field(default_factory=dict)  # (file, error) -> check told first

    @property
    def student(self) -> str:
        return self.submission.student

    def answer(self, section: str, key: str) -> Any:
        """``answers.toml``'s ``[section] key``, or AssertionError saying why it cannot be read."""
        submission = self.submission
        if submission.answers is None:
            raise AssertionError(submission.answers_error)
        table = submission.answers.get(section)
        found = "".join(f" Found {sentence(u.describe())}" for u in unknown_in(submission.unknown, section))
        if not isinstance(table, dict):
            raise AssertionError(
                f"answers.toml has no [{section}] table; add it with its keys as in submissions/_template/answers.toml."
                + found
            )
        if key not in table:
            raise AssertionError(
                f"answers.toml has no `{key}` in its [{section}] table; "
                "add it as in submissions/_template/answers.toml." + found
            )
        return table[key]

    def has(self, name: str) -> bool:
        """Whether the submission holds a readable code file of this name."""
        return name in self.submission.code

    def observe(self, run: str, experiment: str, doing: str) -> dict[str, Any]:
        """A validated observation, or AssertionError: what failed while ``doing`` this, and why."""
        result = self.runs[run]
        if result.outcome is None:
            if result.spec.needs in self.submission.code_errors:  # there, but unreadable: say why, and what it costs
                raise AssertionError(
                    f"{sentence(result.skipped)} The checks on {result.spec.needs} cannot run until it can be read."
                )
            raise AssertionError(
                f"{result.skipped}: this check needs it (start from submissions/_template/{result.spec.needs})."
            )
        observed = result.experiments[experiment]
        if not isinstance(observed, Unobserved):
            return observed
        needs = result.spec.needs
        if observed.stage == "import":
            first = self.import_errors.setdefault((needs, observed.text), self.check)
            if first != self.check:
                kind = observed.text.split(":", 1)[0]
                raise AssertionError(f"{needs} could not be imported ({kind}; the error is shown in {first}).")
            hint = ""
            if observed.text.startswith("ModuleNotFoundError"):
                hint = f". The grader runs {needs} with only PyTorch, the standard library and your model.py/mla.py"
            raise AssertionError(f"{needs} could not be imported: {observed.text}{hint}")
        if observed.stage == "sandbox":
            _raise_sandbox(doing, observed.text, result)
        if observed.stage == "invalid":
            raise AssertionError(f"{doing} sent back an observation the grader cannot use: {observed.text}.")
        missing = MISSING_NAME.match(observed.text)
        hint = ""
        if missing and f"{missing['module']}.py" == needs:
            hint = f". {needs} defines no {missing['name']}: keep the names of submissions/_template/{needs}"
        raise AssertionError(f"{doing} failed: {observed.text}{hint}")


def sentence(text: str) -> str:
    """``text`` ending with a full stop unless it ends with a question mark already."""
    return text if text.endswith(("?", ".")) else text + "."


def _raise_sandbox(doing: str, text: str, result: RunResult) -> NoReturn:
    """A run that crashed, hung or hit a limit: its message and the last lines it printed."""
    message = f"{doing} did not finish: {text}."
    tail = [line for line in (result.outcome.stderr_tail if result.outcome else "").splitlines() if line.strip()]
    if tail:
        message += ' Its last output: "' + " | ".join(tail[-TAIL_LINES:]) + '"'  # quoted: it may end in ":"
    raise AssertionError(message)
