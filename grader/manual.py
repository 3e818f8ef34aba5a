"""Manual scores: the instructor's scores file (``--manual``, by default ``OUT/manual.toml``), merged into
the results.

"Manual" means scored by a person: the written work (``grader.written``), which is worth points on its own
scale beside the automatic score, and any check that defers to a person (quiz q3 when its rubric is unsure),
which keeps its points inside the 100. The same file settles both.

The scores file is TOML, one table per student, one key per item (or check name), a number or a table::

    [alice]
    "theory.rope" = 4
    "quiz.q3" = { score = 6, comment = "Says the variance grows with d_k, in other words." }

Any automatic check may be overridden this way (a regrade); the feedback then says a person scored it.
``dump_scores`` writes the same format (the review page's export), and ``parse_scores`` reads it from text with
the checks ``load_scores`` makes (the review page's import), so a file written by one is read by the other.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import UsageError
from .names import closest
from .results import CheckResult, StudentResult
from .scoring import points_table
from .written import WRITTEN, WRITTEN_POINTS

Scores = dict[str, dict[str, tuple[float, str]]]
NEAR = 0.8  # difflib's ratio for suggesting a key: "theory.ropee" -> "theory.rope", not "theory.colour" -> "theory.moe"


def _entry(student: str, key: str, value: Any, source: Path) -> tuple[float, str]:
    """One score: a number, or ``{score = ..., comment = "..."}``."""
    comment = ""
    if isinstance(value, dict):
        comment = value.get("comment", "")
        if not isinstance(comment, str):
            raise UsageError(f"{source}: [{student}] {key!r}: comment must be a string.")
        value = value.get("score")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise UsageError(f"{source}: [{student}] {key!r} must be a score >= 0 or {{ score = ..., comment = ... }}.")
    return float(value), comment


def load_scores(path: Path) -> Scores:
    """Read the instructor's scores file; UsageError naming the file and entry on any mistake."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the manual scores file {path}: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML: {exc}.") from None
    return parse_scores(text, path)


def parse_scores(text: str, source: Path) -> Scores:
    """The scores of a scores file's text (``source`` names it in messages); UsageError on any mistake."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source} is not valid TOML: {exc}.") from None
    scores: Scores = {}
    for student, table in data.items():
        if not isinstance(table, dict):
            raise UsageError(f"{source}: {student!r} should be a table [{student}] of item = score lines.")
        scores[student] = {key: _entry(student, key, value, source) for key, value in table.items()}
    check_scores(scores, source)
    return scores


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and every control character TOML forbids bare are escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04X}", escaped) + '"'


def toml_number(score: float) -> str:
    """``4`` for a whole score, else the float exactly (``repr``: ``2.5``, ``0.1``), so it reads back equal."""
    return str(int(score)) if float(score).is_integer() else repr(float(score))


def dump_scores(scores: Scores, header: str = "") -> str:
    """The scores file of ``scores``, sorted by student and item; ``header`` becomes its first comment lines."""
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for student in sorted(scores):
        name = student if re.fullmatch(r"[A-Za-z0-9_-]+", student) else toml_string(student)
        lines += [""] if lines else []
        lines.append(f"[{name}]")
        for key, (score, comment) in sorted(scores[student].items()):
            value = toml_number(score)
            if comment:
                value = f"{{ score = {value}, comment = {toml_string(comment)} }}"
            lines.append(f"{toml_string(key)} = {value}")
    return "\n".join(lines) + "\n"


def unknown_key(source: Path, student: str, key: str, known: list[str]) -> UsageError:
    """The error for a key that names no item or check: the closest known name first, when one is close (the
    keys share their section's prefix, "theory.", so only a near-exact name is suggested)."""
    guess = closest(key, known, cutoff=NEAR)
    hint = f'did you mean "{guess}"? The items and checks: ' if guess else "use one of "
    return UsageError(f"{source}: [{student}] {key!r} is not an item or check; {hint}{', '.join(known)}.")


def check_scores(scores: Scores, source: Path) -> None:
    """Every key names a written item or a check, and no score exceeds its points: checked before grading."""
    worth = {key: WRITTEN_POINTS for key in WRITTEN} | {row["name"]: row["points"] for row in points_table()}
    for student, entries in scores.items():
        for key, (score, _) in entries.items():
            if key not in worth:
                raise unknown_key(source, student, key, sorted(worth))
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
            raise unknown_key(source, result.student, key, sorted(set(items) | set(checks)))
    result.score = sum(check.score for check in result.checks)
