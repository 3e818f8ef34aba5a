"""Grading, step by step: check what to grade, then read, draw, run, validate, score and record.

``grade`` is the grader's entry point from Python. It checks everything it is given before any work
(``select_folders``, then ``prepare``: the folders, the manual scores, the late policy, the gradebook in
the output folder; any mistake is a ``UsageError``), then grades the batch (``grade_batch``). The command
line (``grader.__main__``) calls the same steps one by one, to print between them, so that nothing is
validated twice.

Student code never runs in this process: each submission is read here (``grader.submission``), gets draws
of its own (``grader.draws``), is run in sandboxed children (``grader.experiments``, ``grader.sandbox``),
and is scored over the validated observations by the pytest checks (``grader.scoring``,
``grader.checks``); the written work waits for a person (``grader.written``, ``grader.manual``).

Records (``grader.reports``): with an output folder, each submission is committed to the gradebook database
as soon as it is scored, so a killed run loses no finished grade. Scoring runs in this thread while the
sandbox workers go on with the next submissions, in small batches (``SCORE_BATCH`` submissions, or what is
ready after ``SCORE_WAIT`` seconds): one pytest session costs about 20 ms, a submission in it about 5 ms.
A student whose latest attempt had the same files, seed and grader is not graded again (``regrade`` forces
it); the report files are exported from the database at the end.
"""

from __future__ import annotations

import getpass
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .draws import draw, student_seed
from .evidence import Evidence
from .experiments import run_all
from .late import NO_TIME, LatePolicy, SubmissionTime, iso
from .manual import Scores, load_scores, merge
from .reports import Gradebook, RunInfo, export, grader_identity, open_class
from .results import RunSummary, StudentResult
from .sandbox import Sandbox
from .scoring import score
from .submission import Folder, Submission, read_submission, select_folders
from .written import written_items

Progress = Callable[[int, int, str, float, list[RunSummary]], None]
SCORE_BATCH = 16  # submissions scored in one pytest session at most...
SCORE_WAIT = 1.0  # ...or those ready once the first of them has waited this long (seconds)


def _observe(sub: Submission, seed: int, sandbox: Sandbox) -> tuple[Evidence, float]:
    """Run one submission's experiments; returns the evidence and the seconds it took."""
    start = time.monotonic()
    draws = draw(student_seed(seed, sub.student))
    runs = run_all(sub, draws, sandbox)
    return Evidence(sub, draws, runs), time.monotonic() - start


@dataclass
class Batch:
    """Submission folders ready to grade: each folder read, the manual scores, the late policy and the
    gradebook checked, no student code run yet (``prepare`` makes one, ``grade_batch`` grades it).

    ``todo`` are the submissions to grade; ``done`` the students skipped because their latest attempt in the
    gradebook had the same files, seed and grader. ``seed`` is the run's seed (None: drawn at random), and
    ``seed_from`` says where it came from. ``notes`` say what opening the gradebook did (a migration).
    """

    folders: list[Folder]
    out: Path | None
    manual: Path | None
    scores: Scores  # the manual scores file's, by student ({} without one)
    book: Gradebook | None  # the output folder's gradebook database (None without an output folder)
    todo: list[Submission] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    seed: int | None = None
    seed_from: str = ""
    late_policy: LatePolicy | None = None
    times: dict[str, SubmissionTime] = field(default_factory=dict)
    shard: str = ""
    notes: list[str] = field(default_factory=list)
    earlier: list[str] = field(default_factory=list)  # students with an attempt in the gradebook before this run

    def kept(self, results: list[StudentResult]) -> list[str]:
        """The students of the earlier gradebook not graded in ``results``: they keep their rows (sorted)."""
        return sorted(set(self.earlier) - {r.student for r in results})

    def unscored(self, results: list[StudentResult]) -> list[str]:
        """The students the manual scores file scores who are neither graded in ``results`` nor in the gradebook."""
        return self.strangers(self.scores, results)

    def strangers(self, students: Iterable[str], results: list[StudentResult]) -> list[str]:
        """Of ``students`` (those a file names: scores, extensions, submission times), the ones neither graded in
        ``results`` nor in the gradebook: most likely a misspelt id, whose entry would otherwise apply to nobody."""
        return sorted(set(students) - {r.student for r in results} - set(self.earlier))

    def close(self) -> None:
        """Close the gradebook database (``grade_batch`` does, when it has finished)."""
        if self.book is not None:
            self.book.close()
            self.book = None


def prepare(
    folders: list[Folder],
    *,
    out: Path | None = None,
    manual: Path | None = None,
    fresh: bool = False,
    seed: int | None = None,
    regrade: bool = False,
    late_policy: LatePolicy | None = None,
    submitted: dict[str, SubmissionTime] | None = None,
    shard: tuple[int, int] | None = None,
) -> Batch:
    """Read every folder, check the manual scores file and open the gradebook in ``out`` (UsageError if
    either is bad), and find what is graded already.

    ``folders`` come from ``select_folders``. ``fresh`` moves the earlier gradebook aside (a new one
    starts). Without ``seed``, a gradebook's runs give it (so that a rerun resumes), else it is random.
    """
    scores = load_scores(manual) if manual is not None else {}
    book, notes = open_class(out, fresh=fresh) if out is not None else (None, [])
    batch = Batch(folders, out, manual, scores, book, notes=notes, late_policy=late_policy, times=submitted or {})
    batch.shard = f"{shard[0]}/{shard[1]}" if shard else ""
    latest = book.latest_keys() if book is not None else {}
    batch.earlier = sorted(latest)
    batch.seed, batch.seed_from = seed, "--seed" if seed is not None else "drawn at random"
    if seed is None and book is not None and (earlier_seed := book.latest_seed()) is not None:
        batch.seed, batch.seed_from = earlier_seed, f"the seed of the latest run in {book.path}"
    _, digest = grader_identity()
    # Every submission is read before any student code runs, so no run can change what another one reads.
    for folder in folders:
        sub = read_submission(folder.path, folder.student)
        key = latest.get(sub.student)
        same = key is not None and key[1:] == (sub.digest, batch.seed, digest)
        if same and not regrade:
            batch.done.append(sub.student)
        else:
            batch.todo.append(sub)
    return batch


def grade(
    paths: list[Path],
    *,
    jobs: int = 1,
    out: Path | None = None,
    seed: int | None = None,
    sandbox: Sandbox | None = None,
    manual: Path | None = None,
    require_isolation: bool = False,
    progress: Progress | None = None,
    fresh: bool = False,
    docs_url: str | None = None,
    publish: bool = False,
    regrade: bool = False,
    late_policy: LatePolicy | None = None,
    submitted: dict[str, SubmissionTime] | None = None,
    shard: tuple[int, int] | None = None,
) -> list[StudentResult]:
    """Grade submission folders; record them in ``out``'s gradebook and write its reports, when given.

    Args:
        paths: submission folders (``submissions/<student-id>/``); UsageError for anything else.
        jobs: submissions graded at a time (each run is a sandboxed child).
        out: report folder, holding the gradebook database ``gradebook.sqlite``; None records nothing.
        seed: seed of the random draws (by default the seed of the gradebook's latest run, so that a rerun
            resumes, else random; reports record it so a run can be replayed).
        sandbox: a Sandbox to use (its pool size wins over ``jobs``); by default one is made and closed.
        manual: an instructor's scores file (see ``grader.manual``); its scores are entered in the gradebook.
        require_isolation: refuse to grade without full isolation (only when the grader makes the sandbox).
        progress: called as each submission is scored and recorded: (done, total, student, seconds, runs).
        fresh: move the gradebook in ``out`` aside and start a new one; by default the students graded now
            add attempts to the one there, and the others keep theirs (see ``grader.reports.gradebook``).
        docs_url: where the lesson site is published; feedback then links each check's page in full.
        publish: feedback.md shows every check; by default it withholds the checks that are not "visible"
            (``grader.scoring.VISIBILITY``) until the instructor publishes the grades.
        regrade: grade again the students whose latest attempt had the same files, seed and grader.
        late_policy: the course's late policy (``grader.late.load_policy``); None applies none.
        submitted: each student's submission time (``grader.late``); a student missing here has none known.
        shard: (K, N): grade only the K-th of N shards of the folders (``grader.submission.shard_of``).

    Returns:
        One StudentResult per folder of the shard, in the order given (those skipped as already graded come
        from the gradebook).
    """
    folders, _ = select_folders(paths, shard=shard)
    batch = prepare(
        folders,
        out=out,
        manual=manual,
        fresh=fresh,
        seed=seed,
        regrade=regrade,
        late_policy=late_policy,
        submitted=submitted,
        shard=shard,
    )
    return grade_batch(
        batch,
        jobs=jobs,
        sandbox=sandbox,
        require_isolation=require_isolation,
        progress=progress,
        docs_url=docs_url,
        publish=publish,
    )


def grade_batch(
    batch: Batch,
    *,
    jobs: int = 1,
    sandbox: Sandbox | None = None,
    require_isolation: bool = False,
    progress: Progress | None = None,
    docs_url: str | None = None,
    publish: bool = False,
) -> list[StudentResult]:
    """Grade a prepared batch (the arguments as for ``grade``); one StudentResult per folder, in its order.

    Closes the batch's gradebook when done. Each submission is committed as soon as it is scored.
    """
    try:
        if batch.seed is None:
            batch.seed = secrets.randbelow(2**32)
        if batch.book is not None:  # before any grading, so that a killed run keeps them too
            _enter_manual(batch)
            _assess_late(batch)
        graded, isolation = _grade_todo(batch, jobs, sandbox, require_isolation, progress, docs_url)
        if batch.book is None:
            return [graded[folder.student] for folder in batch.folders]
        return _export(batch, isolation, publish)
    finally:
        batch.close()


def _grade_todo(
    batch: Batch,
    jobs: int,
    sandbox: Sandbox | None,
    require_isolation: bool,
    progress: Progress | None,
    docs_url: str | None,
) -> tuple[dict[str, StudentResult], str]:
    """Run, score and record every submission of ``batch.todo``; returns them by student, and the isolation."""
    if not batch.todo:
        return {}, ""
    book, base_seed = batch.book, batch.seed
    assert base_seed is not None
    own = sandbox is None
    box = sandbox if sandbox is not None else Sandbox(jobs=max(1, jobs), require_isolation=require_isolation)
    graded: dict[str, StudentResult] = {}
    try:
        run_id = ""
        if book is not None:
            version, digest = grader_identity()
            info = RunInfo(base_seed, version, digest, box.isolation, socket.gethostname(), batch.shard)
            run_id = book.start_run(info)
        total = len(batch.todo)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            pending: set[Future] = {pool.submit(_observe, sub, base_seed, box) for sub in batch.todo}
            ready: list[Future] = []
            first_ready = 0.0
            while pending or ready:
                if pending:
                    timeout = max(0.0, first_ready + SCORE_WAIT - time.monotonic()) if ready else None
                    finished, pending = wait(pending, timeout=timeout, return_when=FIRST_COMPLETED)
                    if finished and not ready:
                        first_ready = time.monotonic()
                    ready += finished
                due = len(ready) >= SCORE_BATCH or not pending or time.monotonic() >= first_ready + SCORE_WAIT
                if ready and due:
                    for result in _score_and_record(batch, [f.result() for f in ready], run_id, box, docs_url):
                        graded[result.student] = result
                        if progress is not None:
                            progress(len(graded), total, result.student, result.seconds, result.runs)
                    ready = []
        if book is not None:
            book.end_run(run_id)
        return graded, box.isolation
    finally:
        if own:
            box.close()


def _score_and_record(
    batch: Batch, observed: list[tuple[Evidence, float]], run_id: str, box: Sandbox, docs_url: str | None
) -> list[StudentResult]:
    """Score a few submissions in one pytest session and commit each to the gradebook; returns them."""
    base_seed = batch.seed
    plugin = score([ev for ev, _ in observed], docs_url)
    graded_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = []
    for ev, seconds in observed:
        checks = plugin.results[ev.student]
        when = batch.times.get(ev.student, NO_TIME)
        result = StudentResult(
            student=ev.student,
            score=sum(c.score for c in checks),
            max_score=sum(c.max_score for c in checks),
            checks=checks,
            isolation=box.isolation,
            manual_review=plugin.manual[ev.student] + written_items(ev.submission),
            runs=[run.summary() for run in ev.runs.values()],
            seed=ev.draws.seed,
            seconds=seconds,
            grader_errors=plugin.errors[ev.student],
            notices=ev.submission.notices,
            run_seed=base_seed,
            graded_at=graded_at,
            submitted_at=iso(when.at) if when.at else "",
            submitted_source=when.source,
        )
        if batch.late_policy is not None:
            result.late = batch.late_policy.assess(ev.student, when)
        if batch.book is not None:
            batch.book.record(run_id, result, ev.submission.digest, batch.late_policy.source if result.late else "")
        elif ev.student in batch.scores and batch.manual is not None:
            merge(result, batch.scores[ev.student], batch.manual)
        results.append(result)
    return results


def _enter_manual(batch: Batch) -> None:
    """Enter the manual scores file's scores in the gradebook (a score already entered is not repeated)."""
    assert batch.book is not None
    who = getpass.getuser()
    for student, entries in batch.scores.items():
        for item, (points, comment) in entries.items():
            batch.book.enter_manual(student, item, points, comment, entered_by=who, source=f"--manual {batch.manual}")


def _export(batch: Batch, isolation: str, publish: bool) -> list[StudentResult]:
    """Write the report files from the gradebook (the whole class); returns this batch's students from it."""
    assert batch.book is not None and batch.out is not None
    students = [folder.student for folder in batch.folders]
    manual = str(batch.manual or "")
    return export(
        batch.book,
        batch.out,
        seed=batch.seed,
        isolation=isolation,
        manual_file=manual,
        students=students,
        publish=publish,
    )


def _assess_late(batch: Batch) -> None:
    """Under a late policy, assess the students skipped as already graded whose penalty it would change."""
    book, policy = batch.book, batch.late_policy
    if book is None or policy is None:
        return
    latest = dict(book.latest_results())
    attempts = {result.student: (attempt, result) for attempt, result in latest.items()}
    for student in batch.done:
        attempt, result = attempts[student]
        when = batch.times.get(student)
        if when is None:
            when = SubmissionTime(datetime.fromisoformat(result.submitted_at), result.submitted_source) if (
                result.submitted_at) else NO_TIME  # fmt: skip
        penalty = policy.assess(student, when)
        if penalty != result.late:
            book.record_penalty(attempt, penalty, policy.source)
