"""What grading produces: one result per check, one per student, and the work left to a person.

The automatic checks are worth 100 points (``CheckResult``); the written work (theory texts, the
advanced task's text and the diagram) is scored by an instructor on a separate scale, so that an
automatic run never pretends to have judged prose. Everything a person scores is a ``ManualItem``: each
piece of written work, and each check that deferred to a person (its points stay inside the 100).
``StudentResult.total`` adds the automatic score and the written work's once the instructor's manual
scores are merged; ``StudentResult.final`` is that total after a late penalty (``Penalty``, from
``grader.late``), when a late policy applies.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CheckResult:
    """One automatic check for one student.

    status: "passed" (all points), "failed" (some or none) or "manual" (the points wait for a person).
    message: the feedback the learner reads: what was expected, what was observed, where the docs explain it.
    """

    name: str
    number: str
    score: float
    max_score: float
    status: str
    message: str


@dataclass
class ManualItem:
    """A piece of work a person scores: its key in answers.toml (or the diagram), rubric and recorded score.

    score is None until an instructor records it in the manual-scores file (see ``grader.manual``).
    check: the number of the automatic check this item settles (quiz q3 when its rubric is unsure), else "".
    """

    key: str
    title: str
    max_score: float
    rubric: str
    answer: str
    score: float | None = None
    comment: str = ""
    check: str = ""


@dataclass
class RunSummary:
    """How one sandboxed run went, for the instructor's diagnostics (status as in ``grader.sandbox.Outcome``)."""

    name: str
    status: str
    seconds: float
    message: str
    stderr_tail: str


@dataclass
class Penalty:
    """A late policy's verdict on one submission (``grader.late.LatePolicy.assess`` makes it).

    status: "on time", "late", "no credit", or "unknown" (no submission time is known: the submission is
    not called on time, its score is left as it is and every report says so).
    percent: the share of the raw score deducted, 0..100 (100 for no credit, 0 when on time or unknown).
    due: the student's due date, extension applied; submitted_at: when it was submitted ("" if unknown);
    both ISO 8601 UTC. source: where the submission time came from. late_seconds: submitted_at - due
    (negative when early, 0 when unknown). rule: one line for a person: how the percent was reached.
    """

    status: str
    percent: float
    due: str
    submitted_at: str
    source: str
    late_seconds: float
    rule: str

    def final(self, raw: float) -> float:
        """``raw`` after the penalty: raw x (1 - percent / 100); 0 for no credit."""
        return raw * (1.0 - self.percent / 100.0)


@dataclass
class StudentResult:
    """Everything the grader knows about one submission after a run."""

    student: str
    score: float
    max_score: float
    checks: list[CheckResult]
    isolation: str
    manual_review: list[ManualItem] = field(default_factory=list)
    runs: list[RunSummary] = field(default_factory=list)
    seed: int = 0
    seconds: float = 0.0
    grader_errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # names found but not read (misspelled keys, files)
    run_seed: int = 0  # the run's --seed (``seed`` is this student's own draw seed, derived from it)
    graded_at: str = ""  # when that run graded it, ISO 8601 UTC
    submitted_at: str = ""  # when the submission was handed in, ISO 8601 UTC ("" if no source knows)
    submitted_source: str = ""  # where that time came from (a Gradescope file, a git commit, a CSV column)
    late: Penalty | None = None  # the late policy's verdict, when a policy was applied

    @property
    def written_score(self) -> float:
        """Points an instructor has recorded for the written work (items that settle a check count there)."""
        return sum(item.score or 0.0 for item in self.manual_review if not item.check)

    @property
    def written_max(self) -> float:
        """Points the written work is worth."""
        return sum(item.max_score for item in self.manual_review if not item.check)

    @property
    def pending(self) -> list[ManualItem]:
        """Items still waiting for a person: written work, and checks sent to one (a quiz 3 answer)."""
        return [item for item in self.manual_review if item.score is None]

    @property
    def written_pending(self) -> list[ManualItem]:
        """The written work still waiting for a person. A check sent to one is not written work: it is shown, or
        withheld until the due date, with the checks (the student kit's stand-ins among them)."""
        return [item for item in self.pending if not item.check]

    @property
    def total(self) -> float:
        """Automatic score plus the written work's recorded points."""
        return self.score + self.written_score

    @property
    def final(self) -> float:
        """The total after the late penalty (the total itself when no late policy applies)."""
        return self.late.final(self.total) if self.late is not None else self.total
