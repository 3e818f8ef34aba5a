"""What the review page reads from the gradebook and writes into it, without the web around it.

The page scores every piece of work a person scores: each student's review items in the gradebook
(``grader.reports.database``, table ``review_items`` of the latest attempt), that is the written work
(``grader.written``) and the checks that sent an answer to a person (quiz q3 when its rubric is unsure). An
``Answer`` is one of them with the latest score a person entered for it; its ``version`` is that entry's id,
so that a save from a tab that saw an older entry is refused with the newer one (``Gradebook.enter_seen``).

Every entry is checked here before it reaches the database (``check_entry``: the student is in the gradebook,
the item is on their list, the score is a number from 0 to the item's points, the comment is short), and
scores files are read with the same checks as ``python -m grader --manual`` (``grader.manual.parse_scores``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..manual import Scores, dump_scores, parse_scores
from ..reports.database import Gradebook, ManualEntry
from ..scoring import number_key
from ..submission import DIAGRAM_FILES
from ..written import WRITTEN

SOURCE = "review page"
COMMENT_MAX = 1000  # characters: a comment is a line or two for the learner, not an essay
IMAGE_KINDS = (".png", ".svg")
TEXT_KINDS = (".md", ".txt")

QUERY = """
SELECT a.student, r.key, r.title, r.max_score, r.rubric, r.answer, r.score, r.comment, r.check_number,
    COALESCE(c.message, ''),
    m.id, m.student, m.item, m.score, m.comment, m.entered_by, m.entered_at, m.source
FROM latest_attempts AS a
JOIN review_items AS r ON r.attempt_id = a.id
LEFT JOIN check_results AS c ON c.attempt_id = a.id AND c.number = r.check_number AND r.check_number != ''
LEFT JOIN latest_manual_scores AS m ON m.student = a.student AND m.item = r.key
ORDER BY a.student, r.position
"""


@dataclass
class Answer:
    """One student's piece of work for a person to score, as the gradebook holds it.

    auto_score: the grader's own score (0 for an empty answer), None while it waits for a person; note: why
    (the grader's comment on the item, or the message of the check that sent it to a person); check: the
    number of the check it settles ("" for written work); entry: the latest score a person entered, if any.
    """

    student: str
    key: str
    title: str
    max_score: float
    rubric: str
    answer: str
    auto_score: float | None
    note: str
    check: str
    entry: ManualEntry | None

    @property
    def score(self) -> float | None:
        return self.entry.score if self.entry is not None else self.auto_score

    @property
    def comment(self) -> str:
        return self.entry.comment if self.entry is not None else ""

    @property
    def scored(self) -> bool:
        return self.score is not None

    @property
    def version(self) -> str:
        """The id of the latest entry ("" for none): a tab sends it back with its entry."""
        return self.entry.id if self.entry is not None else ""

    @property
    def anchor(self) -> str:
        return f"{self.student}--{self.key}"

    def diagram_files(self) -> list[str]:
        """The diagram (or the files that look meant as it) this answer names, for the diagram item."""
        if self.key != "diagram" or not self.answer:
            return []
        lines = self.answer.splitlines()
        if lines[0] in DIAGRAM_FILES:
            return [lines[0]]
        return [line for line in lines if safe_name(line)]  # the strays, one a line (grader.written)

    def text(self) -> str:
        """The learner's text: the answer, or a text diagram less the file name on its first line."""
        if self.key == "diagram" and self.answer.split("\n", 1)[0] in DIAGRAM_FILES:
            return self.answer.partition("\n")[2]
        if self.key == "diagram" and self.diagram_files():
            return ""
        return self.answer


@dataclass(frozen=True)
class Progress:
    """How many answers are scored, of how many."""

    scored: int
    total: int

    @property
    def left(self) -> int:
        return self.total - self.scored

    def json(self) -> dict[str, int]:
        return {"scored": self.scored, "total": self.total, "left": self.left}


def safe_name(name: str) -> bool:
    """A plain file name (no folder, not hidden): the only diagram names the page reads from a submission."""
    return bool(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name)) and ".." not in name


def load_answers(book: Gradebook) -> list[Answer]:
    """Every answer of every student's latest attempt, by student, in the order of the student's items."""
    answers = []
    for row in book.conn.execute(QUERY):
        entry = ManualEntry(*row[10:]) if row[10] is not None else None
        student, key, title, most, rubric, answer, auto, comment, check, message = row[:10]
        note = message if check else comment
        answers.append(Answer(student, key, title, most, rubric, answer, auto, note, check, entry))
    return answers


def item_order(answers: list[Answer]) -> list[tuple[str, str]]:
    """The items (key, title) the answers hold: the written work in ``grader.written``'s order, then the checks
    a person settles by number."""
    titles: dict[str, str] = {}
    numbers: dict[str, str] = {}
    for a in answers:
        titles.setdefault(a.key, a.title)
        numbers.setdefault(a.key, a.check)
    written = [key for key in WRITTEN if key in titles]
    checks = sorted((key for key in titles if key not in WRITTEN), key=lambda k: (number_key(numbers[k] or "99"), k))
    return [(key, titles[key]) for key in written + checks]


def progress(answers: list[Answer]) -> Progress:
    return Progress(sum(a.scored for a in answers), len(answers))


class EntryRefused(Exception):
    """An entry the page cannot save as it is: ``status`` is the HTTP status, the message says what to do."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def check_entry(book: Gradebook, answers: list[Answer], student: Any, item: Any, score: Any, comment: Any) -> Answer:
    """The answer an entry scores, once the entry is checked; EntryRefused saying what is wrong otherwise."""
    if not isinstance(student, str) or not isinstance(item, str):
        raise EntryRefused(400, "An entry names a student and an item (both text).")
    mine = [a for a in answers if a.student == student]
    if not mine:
        raise EntryRefused(
            404,
            f"{student!r} is not in the gradebook {book.path}: grade their submission first "
            f"(python -m grader submissions/{student} --out {book.path.parent}), then reload the page.",
        )
    answer = next((a for a in mine if a.key == item), None)
    if answer is None:
        listed = ", ".join(a.key for a in mine)
        raise EntryRefused(
            404,
            f"{item!r} is not on {student}'s review list ({listed}). The page scores the written work and the "
            "checks sent to a person; another check is overridden with a scores file (python -m grader --manual).",
        )
    most = f"{answer.max_score:g}"
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise EntryRefused(400, f"{student} {item}: the score must be a number from 0 to {most}; got {score!r}.")
    if score < 0:
        raise EntryRefused(400, f"{student} {item}: {score:g} is negative; give a score from 0 to {most}.")
    if score > answer.max_score:
        raise EntryRefused(
            400, f"{student} {item}: {score:g} is more than the item is worth; give a score from 0 to {most}."
        )
    if not isinstance(comment, str):
        raise EntryRefused(400, f"{student} {item}: the comment must be text.")
    if len(comment) > COMMENT_MAX:
        raise EntryRefused(
            400,
            f"{student} {item}: the comment has {len(comment):,} characters; keep it to {COMMENT_MAX:,} (a line or "
            "two for the learner). It is kept in the page, not saved.",
        )
    return answer


def export_scores(book: Gradebook) -> str:
    """Every score a person entered (the latest per student and item) as a scores file for ``--manual``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"The scores entered in {book.path} (the latest per student and item), exported {stamp}.\n"
        "Read back with the review page's Import, or: python -m grader --manual FILE.\n"
        "Keep it out of the report folder's manual.toml: a grading run enters that file again, over newer scores."
    )
    return dump_scores(book.manual_entries(), header)


def export_name() -> str:
    """``manual-scores-20250314T120000Z.toml``: never the report folder's ``manual.toml`` (see export_scores)."""
    return f"manual-scores-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.toml"


@dataclass(frozen=True)
class Imported:
    """What an import did: the entries read, how many changed a score, the students they cover."""

    entries: int
    changed: int
    students: int


def import_scores(book: Gradebook, text: str, name: str, entered_by: str, *, source: str = SOURCE) -> Imported:
    """Enter a scores file's scores (checked as ``--manual`` checks them) in one transaction: all or none.
    UsageError, naming the file, for a bad file or a student who is not in the gradebook."""
    scores: Scores = parse_scores(text, Path(name))
    known = set(book.latest_keys())
    unknown = sorted(set(scores) - known)
    if unknown:
        raise UsageError(
            f"{name} scores {len(unknown)} student(s) who are not in the gradebook {book.path}: "
            f"{', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}. Nothing was imported; grade them "
            "first, or remove their tables from the file."
        )
    changed = book.enter_all(scores, entered_by=entered_by, source=f"{source}: import of {name}")
    return Imported(sum(map(len, scores.values())), changed, len(scores))
