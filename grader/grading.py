"""Grading, step by step: check what to grade, then read, draw, run, validate, score and report.

``grade`` is the grader's entry point from Python. It checks everything it is given before any work
(``select_folders``, then ``prepare``: the folders, the manual scores, the earlier gradebook; any mistake
is a ``UsageError``), then grades the batch (``grade_batch``). The command line (``grader.__main__``) calls
the same steps one by one, to print between them, so that nothing is validated twice.

Student code never runs in this process: each submission is read here (``grader.submission``), gets draws
of its own (``grader.draws``), is run in sandboxed children (``grader.experiments``, ``grader.sandbox``),
and is scored over the validated observations by the pytest checks (``grader.scoring``,
``grader.checks``); the written work waits for a person (``grader.written``, ``grader.manual``). Reports:
``grader.reports``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .draws import draw, student_seed
from .evidence import Evidence
from .experiments import RunResult, run_all
from .manual import Scores, load_scores, merge
from .reports import earlier_results, merge_class, write_all
from .results import StudentResult
from .sandbox import Sandbox
from .scoring import points_table, score
from .submission import Folder, Submission, read_submission, select_folders
from .written import written_items

Progress = Callable[[int, int, str, float, dict[str, RunResult]], None]


def _observe(sub: Submission, seed: int, sandbox: Sandbox) -> tuple[Evidence, float]:
    """Run one submission's experiments; returns the evidence and the seconds it took."""
    start = time.monotonic()
    draws = draw(student_seed(seed, sub.student))
    runs = run_all(sub, draws, sandbox)
    return Evidence(sub, draws, runs), time.monotonic() - start


@dataclass
class Batch:
    """Submission folders ready to grade: each folder, the manual scores and the earlier gradebook checked and
    read, no student code run yet (``prepare`` makes one, ``grade_batch`` grades it)."""

    folders: list[Folder]
    out: Path | None
    manual: Path | None
    scores: Scores  # the manual scores file's, by student ({} without one)
    earlier: list[StudentResult]  # the gradebook already in ``out`` ([] without one, or when fresh)

    def kept(self, results: list[StudentResult]) -> list[str]:
        """The students of the earlier gradebook not graded in ``results``: they keep their rows (sorted)."""
        return sorted({r.student for r in self.earlier} - {r.student for r in results})

    def unscored(self, results: list[StudentResult]) -> list[str]:
        """The students the manual scores file scores who are not graded in ``results`` (sorted)."""
        return sorted(set(self.scores) - {r.student for r in results})


def prepare(
    folders: list[Folder], *, out: Path | None = None, manual: Path | None = None, fresh: bool = False
) -> Batch:
    """Read and check the manual scores file and the gradebook already in ``out``; UsageError if either is bad.

    ``folders`` come from ``select_folders``. ``fresh`` leaves the earlier gradebook out (a new one starts).
    """
    scores = load_scores(manual) if manual is not None else {}
    earlier = earlier_results(out) if out is not None and not fresh else []
    return Batch(folders, out, manual, scores, earlier)


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
) -> list[StudentResult]:
    """Grade submission folders; write the reports to ``out`` when given.

    Args:
        paths: submission folders (``submissions/<student-id>/``); UsageError for anything else.
        jobs: submissions graded at a time (each run is a sandboxed child).
        out: report folder; None writes nothing.
        seed: seed of the random draws (random when None; reports record it so a run can be replayed).
        sandbox: a Sandbox to use (its pool size wins over ``jobs``); by default one is made and closed.
        manual: an instructor's scores file to merge (see ``grader.manual``).
        require_isolation: refuse to grade without full isolation (only when the grader makes the sandbox).
        progress: called as each submission's runs finish: (done, total, student, seconds, runs).
        fresh: start a new gradebook in ``out``; by default the students graded now are merged into the one
            there, and the others keep their earlier rows (see ``grader.reports.gradebook``).
        docs_url: where the lesson site is published; feedback then links each check's page in full.
        publish: feedback.md shows every check; by default it withholds the checks that are not "visible"
            (``grader.scoring.VISIBILITY``) until the instructor publishes the grades.

    Returns:
        One StudentResult per path, in the order given.
    """
    folders, _ = select_folders(paths)
    batch = prepare(folders, out=out, manual=manual, fresh=fresh)
    return grade_batch(
        batch,
        jobs=jobs,
        seed=seed,
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
    seed: int | None = None,
    sandbox: Sandbox | None = None,
    require_isolation: bool = False,
    progress: Progress | None = None,
    docs_url: str | None = None,
    publish: bool = False,
) -> list[StudentResult]:
    """Grade a prepared batch (the arguments as for ``grade``); one StudentResult per folder, in its order."""
    folders, out, manual, scores = batch.folders, batch.out, batch.manual, batch.scores
    # Every submission is read before any student code runs, so no run can change what another one reads.
    submissions = [read_submission(folder.path, folder.student) for folder in folders]
    base_seed = secrets.randbelow(2**32) if seed is None else seed
    own = sandbox is None
    box = sandbox if sandbox is not None else Sandbox(jobs=max(1, jobs), require_isolation=require_isolation)
    try:
        evidence: dict[str, tuple[Evidence, float]] = {}
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            futures = {pool.submit(_observe, sub, base_seed, box): sub.student for sub in submissions}
            for done, future in enumerate(as_completed(futures), start=1):
                student = futures[future]
                evidence[student] = future.result()
                if progress is not None:
                    ev, seconds = evidence[student]
                    progress(done, len(folders), student, seconds, ev.runs)
        isolation = box.isolation
    finally:
        if own:
            box.close()
    ordered = [evidence[folder.student][0] for folder in folders]
    plugin = score(ordered, docs_url)
    graded_at = datetime.now(UTC).isoformat(timespec="seconds")
    results = []
    for ev in ordered:
        checks = plugin.results[ev.student]
        result = StudentResult(
            student=ev.student,
            score=sum(c.score for c in checks),
            max_score=sum(c.max_score for c in checks),
            checks=checks,
            isolation=isolation,
            manual_review=plugin.manual[ev.student] + written_items(ev.submission),
            runs=[run.summary() for run in ev.runs.values()],
            seed=ev.draws.seed,
            seconds=evidence[ev.student][1],
            grader_errors=plugin.errors[ev.student],
            notices=ev.submission.notices,
            run_seed=base_seed,
            graded_at=graded_at,
        )
        if ev.student in scores and manual is not None:
            merge(result, scores[ev.student], manual)
        results.append(result)
    if out is not None:
        meta = {"seed": base_seed, "isolation": isolation, "points": points_table(), "manual_file": str(manual or "")}
        meta["publish"] = publish
        write_all(merge_class(batch.earlier, results), out, meta, graded=results)
    return results
