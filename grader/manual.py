"""Work scored by a person: the review list, and merging an instructor's scores file into the results.

Automatic checks are worth 100 points. The written work (theory texts, the advanced task's summary, the
diagram) is worth ``WRITTEN_POINTS`` each on a separate scale, reported beside the automatic score; an empty
answer is scored 0 at once instead of being queued. A check that defers to a person (quiz q3 when its rubric
is unsure) keeps its points inside the 100 and is settled by the same file.

The scores file is TOML, one table per student, one key per item (or check name), a number or a table::

    [alice]
    "theory.rope" = 4
    "quiz.q3" = { score = 6, comment = "Says the variance grows with d_k, in other words." }

Any automatic check may be overridden this way (a regrade); the feedback then says a person scored it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import UsageError
from .feedback import toml_type
from .names import diagram_hint, misnamed_answer
from .results import CheckResult, ManualItem, StudentResult
from .rubrics import WRITTEN, WRITTEN_POINTS, is_placeholder
from .scoring import points_table
from .submission import Submission

Scores = dict[str, dict[str, tuple[float, str]]]


def written_items(sub: Submission) -> list[ManualItem]:
    """The written work of one submission, each with its rubric; unanswered items are scored 0 right away."""
    items = []
    for key, (title, rubric) in WRITTEN.items():
        item = ManualItem(key, title, WRITTEN_POINTS, rubric, "")
        if key == "diagram":
            item.answer = f"{sub.diagram[0]}\n{sub.diagram[1]}".strip() if sub.diagram else ""
            why = "No diagram file (diagram.png, .svg, .md or .txt) was submitted."
            if not sub.diagram and sub.strays:
                item.answer = "\n".join(sub.strays)
                item.comment = f"Sent to a person: {diagram_hint(sub.strays[0])}."
        elif sub.answers is None:
            why = "Not scored: answers.toml could not be read (see the quiz checks)."
        else:
            section, name = key.split(".")
            table = sub.answers.get(section)
            value = table.get(name) if isinstance(table, dict) else None
            item.answer = value if isinstance(value, str) else ""
            why = "No answer was submitted."
            if value is not None and not isinstance(value, str):
                why = f"{key} should be text in quotes; found {toml_type(value)}."
            misnamed = misnamed_answer(sub.answers, section, name) if value is None else None
            if misnamed is not None and isinstance(misnamed[1], str) and not is_placeholder(misnamed[1]):
                item.answer = misnamed[1]
                item.comment = (
                    f"Sent to a person: the answer was found under {misnamed[0]}; name it `{name}` in [{section}]."
                )
        if is_placeholder(item.answer):
            item.score, item.comment = 0.0, why
        items.append(item)
    return items


def _entry(student: str, key: str, value: Any, source: Path) -> tuple[float, str]:
    """One score: a number, or ``{score = ..., comment = "..."}``."""
    comment = ""
    if isinstance(value, dict):
        comment = value.get("comment", "")
        if not isinstance(comment, str):
            raise UsageError(f"{source}: [{student}] {key!r}: comment must be a string.")
        value = value.get("score")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UsageError(f"{source}: [{student}] {key!r} must be a score >= 0 or {{ score = ..., comment = ... }}.")
    return float(value), comment


def load_scores(path: Path) -> Scores:
    """Read the instructor's scores file; UsageError naming the file and entry on any mistake."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the manual scores file {path}: {exc.strerror}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}.") from None
    scores: Scores = {}
    for student, table in data.items():
        if not isinstance(table, dict):
            raise UsageError(f"{path}: {student!r} should be a table [{student}] of item = score lines.")
        scores[student] = {key: _entry(student, key, value, path) for key, value in table.items()}
    check_scores(scores, path)
    return scores


def check_scores(scores: Scores, source: Path) -> None:
    """Every key names a written item or a check, and no score exceeds its points: checked before grading."""
    worth = {key: WRITTEN_POINTS for key in WRITTEN} | {row["name"]: row["points"] for row in points_table()}
    for student, entries in scores.items():
        for key, (score, _) in entries.items():
            if key not in worth:
                known = ", ".join(sorted(worth))
                raise UsageError(f"{source}: [{student}] {key!r} is not an item or check; use one of {known}.")
            if score > worth[key]:
                raise UsageError(f"{source}: [{student}] {key} is worth {worth[key]:g} points, not {score:g}.")


def _apply_to_check(check: CheckResult, score: float, comment: str, source: Path) -> None:
    if score > check.max_score:
        raise UsageError(f"{source}: {check.name} is worth {check.max_score:g} points, not {score:g}.")
    check.score = score
    check.status = "passed" if score == check.max_score else "failed"
    note = f" Scored by your instructor: {score:g}/{check.max_score:g}."
    check.message = check.message + note + (f" {comment}" if comment else "")


def merge(result: StudentResult, entries: dict[str, tuple[float, str]], source: Path) -> None:
    """Apply one student's recorded scores to its results; UsageError for unknown keys or too many points."""
    items = {item.key: item for item in result.manual_review}
    checks = {check.name: check for check in result.checks}
    for key, (score, comment) in entries.items():
        if key in checks:
            _apply_to_check(checks[key], score, comment, source)
            if key in items:
                items[key].score, items[key].comment = score, comment
        elif key in items:
            if score > items[key].max_score:
                raise UsageError(f"{source}: [{result.student}] {key} is worth {items[key].max_score:g} points.")
            items[key].score, items[key].comment = score, comment
        else:
            known = ", ".join(sorted(set(items) | set(checks)))
            raise UsageError(f"{source}: [{result.student}] {key!r} is not an item or check; use one of {known}.")
    result.score = sum(check.score for check in result.checks)
