"""A class's gradebook made through the ``Gradebook`` API, for the review page's tests and benchmark.

Each student gets the attempt a grading run would record: the quiz check q3, sent to a person for every third
student, and the eight written items with the rubrics of ``grader.rubrics``, each holding an answer of a few
sentences (one empty answer in seven is scored 0 at once, as ``grader.written`` scores it). Where grading
itself is not under test this is much faster than grading the class, and it gives any class size.
"""

from __future__ import annotations

import random
from pathlib import Path

from grader.reports import FILENAME, Gradebook, RunInfo
from grader.results import CheckResult, ManualItem, StudentResult
from grader.rubrics import Q3_RUBRIC, WRITTEN_RUBRICS
from grader.written import WRITTEN, WRITTEN_POINTS

WORDS = (
    "attention rotates the query and key pairs so the score depends on distance; the cache holds one latent per "
    "token and the router sends each token to its top experts while the norm rescales by the root mean square"
).split()
Q3_POINTS = 6.0
Q3_NUMBER, Q3_NAME = "1.3", "quiz.q3"


def answer(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90))).capitalize() + "."


def student_result(student: str, rng: random.Random, texts: dict[str, str] | None = None) -> StudentResult:
    """One graded attempt; ``texts`` sets some answers (item key -> text; "diagram" -> "diagram.svg" and the like)."""
    texts = texts or {}
    deferred = rng.random() < 1 / 3
    q3 = CheckResult(Q3_NAME, Q3_NUMBER, 0.0 if deferred else Q3_POINTS, Q3_POINTS, "manual" if deferred else "passed",
                     "quiz.q3: the rubric could not confirm its ideas in your answer, so a person will read it."
                     if deferred else "quiz.q3: all three ideas are there.")  # fmt: skip
    items = []
    if deferred:
        items.append(ManualItem(Q3_NAME, "Quiz 3: the purpose of the scale", Q3_POINTS, Q3_RUBRIC, answer(rng),
                                check=Q3_NUMBER))  # fmt: skip
    for key, title in WRITTEN.items():
        text = texts.get(key, "diagram.md\n" + answer(rng) if key == "diagram" else answer(rng))
        item = ManualItem(key, title, WRITTEN_POINTS, WRITTEN_RUBRICS[key], text)
        if key not in texts and rng.random() < 1 / 7:
            item.answer, item.score, item.comment = "", 0.0, "No answer was submitted."
        items.append(item)
    return StudentResult(student, q3.score, Q3_POINTS, [q3], "test", manual_review=items, run_seed=1,
                         graded_at="2025-03-14T12:00:00+00:00")  # fmt: skip


def make_gradebook(out: Path, students: list[str], *, seed: int = 0, texts: dict | None = None) -> Path:
    """Record one attempt per student in ``out``'s gradebook (``texts``: student -> item -> text); its path."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    with Gradebook.open(out / FILENAME) as book:
        run = book.start_run(RunInfo(1, "test", "digest", "test", "host"))
        for student in students:
            book.record(run, student_result(student, rng, (texts or {}).get(student)), f"hash-{student}")
        book.end_run(run)
    return out / FILENAME
