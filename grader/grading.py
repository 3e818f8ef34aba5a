"""Grading, step by step: read every submission, draw its inputs, run it in the sandbox, score it, report.

``grade`` is the grader's one entry point (``python -m grader`` calls it too). Student code never runs in
this process: each submission is read here (``grader.submission``), gets draws of its own
(``grader.draws``), is run in sandboxed children (``grader.experiments``, ``grader.sandbox``), and is
scored over the validated observations by the pytest checks (``grader.scoring``, ``grader.checks``);
the written work waits for a person (``grader.written``, ``grader.manual``). Reports: ``grader.reports``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import UTC, datetime
from pathlib import Path

from .draws import draw, student_seed
from .errors import UsageError
from .evidence import Evidence
from .experiments import RunResult, run_all
from .manual import load_scores, merge
from .reports import earlier_results, merge_class, write_all
from .results import StudentResult
from .sandbox import Sandbox
from .scoring import points_table, score
from .submission import Submission, check_folder, read_submission
from .written import written_items

Progress = Callable[[int, int, str, float, dict[str, RunResult]], None]


def _observe(sub: Submission, seed: int, sandbox: Sandbox) -> tuple[Evidence, float]:
    """Run one submission's experiments; returns the evidence and the seconds it took."""
    start = time.monotonic()
    draws = draw(student_seed(seed, sub.student))
    runs = run_all(sub, draws, sandbox)
    return Evidence(sub, draws, runs), time.monotonic() - start


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

    Returns:
        One StudentResult per path, in the order given.
    """
    folders = [(Path(p), check_folder(Path(p))) for p in paths]
    seen: dict[str, Path] = {}
    for path, student in folders:
        if student in seen:
            raise UsageError(f"{path} and {seen[student]} are the same student id {student!r}; give each once.")
        seen[student] = path
    scores = load_scores(manual) if manual is not None else {}
    earlier = earlier_results(out) if out is not None and not fresh else []
    # Every submission is read before any student code runs, so no run can change what another one reads.
    submissions = [read_submission(path, student) for path, student in folders]
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
    ordered = [evidence[student][0] for _, student in folders]
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
        write_all(merge_class(earlier, results), out, meta, graded=results)
    return results
