"""Command line: ``python -m grader [PATH ...] [--jobs N] [--out DIR] [--fail-under N] [--require-isolation]
[--seed N] [--manual FILE] [--fresh] [--regrade] [--shard K/N] [--late-policy FILE] [--publish] ...`` grades;
``python -m grader COMMAND ...`` runs one of ``COMMANDS`` (``python -m grader merge --help``). A submission
folder named like a command is given as ``./NAME``.

Exit status: 0 when grading finished (whatever the scores); 1 when ``--fail-under`` is not met; 2 for a usage
error (bad path, not a submission folder, bad id, bad manual-scores file); 3 when the grader itself failed
or isolation was required but is not available.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sqlite3
import sys
import textwrap
from pathlib import Path
from typing import Any, TextIO

from .errors import EXIT_FAILED, EXIT_USAGE, GraderError, SandboxUnavailable, UsageError
from .grading import Batch, grade_batch, prepare
from .late import SubmissionTime, gradescope_time, load_policy, read_times
from .reports.files import shown_line, visibilities, withheld
from .results import RunSummary, StudentResult
from .scoring import points_table
from .submission import discover, parse_shard, select_folders

EXIT_FAIL_UNDER = 1
# The instructor's other commands: name -> the module whose ``main(argv) -> int`` runs it.
COMMANDS = {
    "similarity": "grader.similarity",
    "release": "grader.release",
    "merge": "grader.reports.merge",
    "export": "grader.reports.lms",
    "review": "grader.review",
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m grader",
        description="Grade Lesson 1.2 submissions (default: every submissions/<id>/ except _template).",
        epilog=("Other commands: " + ", ".join(f"python -m grader {name} --help" for name in COMMANDS) + ".")
        if COMMANDS
        else None,
    )
    p.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="submission folders, submissions/<id>/")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="submissions graded at a time")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="report folder, with the gradebook database (default: reports/)",
    )
    p.add_argument("--fail-under", type=float, metavar="N", help="exit 1 if a submission scores under N of 100")
    p.add_argument("--require-isolation", action="store_true", help="refuse to grade without bubblewrap")
    p.add_argument(
        "--seed", type=int, help="seed of the random draws, to replay a run (default: the gradebook's latest, or new)"
    )
    p.add_argument("--manual", type=Path, help="instructor's scores file (default: OUT/manual.toml if present)")
    p.add_argument(
        "--fresh", action="store_true", help="move OUT's gradebook aside and start a new one instead of adding to it"
    )
    p.add_argument(
        "--regrade",
        action="store_true",
        help="grade again the submissions already graded with the same files, seed and grader (default: skip them)",
    )
    p.add_argument("--shard", metavar="K/N", help="grade only the K-th of N shards of the submissions (by student id)")
    p.add_argument("--late-policy", type=Path, metavar="FILE", help="late policy (TOML: due date, grace, penalty)")
    p.add_argument("--extensions", type=Path, metavar="FILE", help="per-student extensions (TOML), with --late-policy")
    p.add_argument(
        "--submitted-at", type=Path, metavar="FILE", help="submission times (CSV: student,submitted_at[,source])"
    )
    p.add_argument(
        "--gradescope-metadata",
        type=Path,
        metavar="FILE",
        help="Gradescope's submission_metadata.json: the submission time of the one folder graded",
    )
    p.add_argument(
        "--docs-url",
        metavar="URL",
        help="where the lesson site is published (e.g. https://course.example/kimi-k2/): feedback links each page",
    )
    p.add_argument(
        "--publish",
        action="store_true",
        help="show every check in the feedback; by default checks shown after the due date, or hidden, are withheld",
    )
    return p


def show_progress(done: int, total: int, student: str, seconds: float, runs: list[RunSummary]) -> None:
    """One line per submission recorded in the gradebook: which runs did not finish, if any."""
    problems = [f"{r.name}: {r.status}" for r in runs if r.status not in ("ok", "skipped")]
    state = "; ".join(problems) if problems else "all runs finished"
    print(f"[{done:>{len(str(total))}}/{total}] {student:<24} {seconds:6.2f} s  {state}", flush=True)


def show_detail(r: StudentResult, publish: bool = False) -> None:
    """Every check of a single submission, with the message of each one not passed; before ``publish``, a check
    the learner may not see yet shows only its name and points (a CI log is the learner's to read)."""
    visibility = visibilities()
    held = withheld(r, visibility, publish)
    later = {c.number for c in held}
    print(f"\n{r.student}: {r.isolation}")
    for notice in r.notices:
        print(f"  note: {notice}")
    for c in r.checks:
        if c.number in later:
            if visibility.get(c.number) == "after_due_date":
                print(f"  {c.number:<4} {c.name:<34}    - / {c.max_score:<3g} shown after the due date (--publish)")
            continue
        print(f"  {c.number:<4} {c.name:<34} {c.score:>4g} / {c.max_score:<3g} {c.status}")
        if c.status != "passed":
            print(textwrap.fill(c.message, width=100, initial_indent="         ", subsequent_indent="         "))
    pending = len(r.written_pending)
    print(f"\n  {shown_line(r, held)}")
    print(f"  Written work: {r.written_score:g} / {r.written_max:g} recorded, {pending} awaiting review")


def show_summary(results: list[StudentResult]) -> None:
    """Scores of several submissions and the counts."""
    width = max(len(r.student) for r in results)
    print()
    for r in results:
        missed = sum(c.status != "passed" for c in r.checks)
        print(f"  {r.student:<{width}}  {r.score:>5g} / {r.max_score:g}   {missed} check(s) not passed")
        for notice in r.notices:
            print(f"  {'':<{width}}  note: {notice}")
    full = sum(r.score == r.max_score for r in results)
    pending = sum(len(r.written_pending) for r in results)
    mean = sum(r.score for r in results) / len(results)
    print(
        f"\nGraded {len(results)} submissions: mean {mean:.1f}, {full} with full marks, "
        f"{pending} written item(s) awaiting review."
    )


def submission_times(args: argparse.Namespace, students: list[str]) -> dict[str, SubmissionTime]:
    """The submission times the options give; UsageError for a Gradescope file with several folders."""
    times = read_times(args.submitted_at) if args.submitted_at is not None else {}
    if args.gradescope_metadata is not None:
        if len(students) != 1:
            raise UsageError(
                f"--gradescope-metadata {args.gradescope_metadata} gives the time of one submission; "
                f"{len(students)} folders are graded here. Use --submitted-at FILE for several."
            )
        times[students[0]] = gradescope_time(args.gradescope_metadata)
    return times


def show_batch(batch: Batch, args: argparse.Namespace) -> None:
    """What this run will do: the gradebook's notes, the seed, what is skipped as already graded."""
    for note in batch.notes:
        print(f"grader: {note}")
    if args.seed is None and batch.book is not None and batch.seed is not None:
        print(f"Seed {batch.seed}: {batch.seed_from} (--seed N to choose another).")
    if batch.done:
        named = ", ".join(batch.done[:10]) + (f" and {len(batch.done) - 10} more" if len(batch.done) > 10 else "")
        print(
            f"Skipped {len(batch.done)} submission(s) already graded with the same files, seed and grader "
            f"({named}); --regrade grades them again."
        )
    if batch.late_policy is None and batch.todo and batch.book is not None and batch.book.has_penalties():
        print(
            f"note: {batch.book.path} holds late penalties, but no --late-policy was given: the submissions graded "
            "now get none (give the same --late-policy to assess them).",
            file=sys.stderr,
        )
    if batch.late_policy is not None:
        print(f"Late policy ({batch.late_policy.source}): {batch.late_policy.describe()}.")
        unknown = [f.student for f in batch.folders if f.student not in batch.times]
        if unknown:
            print(
                f"note: no submission time for {', '.join(unknown)}: their lateness is not assessed (reported as "
                "unknown, never as on time); give --submitted-at FILE.",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in COMMANDS:
        return importlib.import_module(COMMANDS[argv[0]]).main(argv[1:])
    args = parser().parse_args(argv)
    try:
        if args.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {args.jobs}.")
        most = sum(row["points"] for row in points_table())
        if args.fail_under is not None and not 0 <= args.fail_under <= most:
            raise UsageError(
                f"--fail-under {args.fail_under:g} is outside 0..{most:g}: the automatic score is out of {most:g}."
            )
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out} is a file; give a folder for the reports.")
        if args.extensions is not None and args.late_policy is None:
            raise UsageError(f"--extensions {args.extensions} extends a due date: give the --late-policy FILE too.")
        shard = parse_shard(args.shard) if args.shard is not None else None
        if shard is not None and args.seed is None:
            raise UsageError(
                f"--shard {args.shard} needs --seed N: every shard must draw with the same seed, so that the "
                "merged class is the class one run would grade (e.g. --seed 20251129 on every shard)."
            )
        if args.paths:
            folders, skipped = select_folders(args.paths, shard=shard)
        else:  # one bad folder must not stop the class: it is named and skipped
            folders, skipped = select_folders(discover(Path("submissions")), skip_unusable=True, shard=shard)
        for reason in skipped:
            print(f"grader: skipped {reason}", file=sys.stderr)
        if not folders and shard is None:
            raise UsageError("no submission folders to grade in submissions/ (folders starting with _ are skipped).")
        manual = args.manual
        if manual is None and (args.out / "manual.toml").is_file():
            manual = args.out / "manual.toml"
        if manual is not None and not manual.is_file():
            raise UsageError(f"--manual {manual}: no such file.")
        policy = load_policy(args.late_policy, args.extensions) if args.late_policy is not None else None
        times = submission_times(args, [f.student for f in folders])
        # Every usage error (folders, manual scores, late policy, the gradebook) comes before any work.
        batch = prepare(
            folders,
            out=args.out,
            manual=manual,
            fresh=args.fresh,
            seed=args.seed,
            regrade=args.regrade,
            late_policy=policy,
            submitted=times,
            shard=shard,
        )
        if shard is not None:
            print(f"Shard {args.shard}: {len(folders)} submission(s) of this shard.", flush=True)
        show_batch(batch, args)
        print(f"Grading {len(batch.todo)} submission(s) with {args.jobs} worker(s)...", flush=True)
        results = grade_batch(
            batch,
            jobs=args.jobs,
            require_isolation=args.require_isolation,
            progress=show_progress if len(batch.todo) > 1 else None,
            docs_url=args.docs_url,
            publish=args.publish,
        )
    except UsageError as exc:
        print(f"grader: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (GraderError, SandboxUnavailable) as exc:
        print(f"grader: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as exc:
        print(f"grader: failed: cannot write the reports to {args.out}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except sqlite3.Error as exc:  # locked past the busy timeout, a full disk: what was committed stays
        print(f"grader: failed: the gradebook in {args.out} could not be written ({exc}); every submission "
              "committed before is kept, and a rerun grades the rest.", file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    if len(results) == 1:
        show_detail(results[0], args.publish)
    elif results:
        show_summary(results)
    print(f"Reports written to {args.out}/" + (f" (manual scores merged from {manual})" if manual else ""))
    kept = batch.kept(results)
    if kept:
        print(
            f"kept {len(kept)} student(s) from the earlier gradebook in {args.out}/ ({', '.join(kept)}); "
            "--fresh starts a new one."
        )
    if skipped:
        print(f"grader: {len(skipped)} folder(s) in submissions/ were not graded (see above).", file=sys.stderr)
    unscored = batch.unscored(results)
    if unscored:
        print(f"note: {manual} also scores {', '.join(unscored)}, not graded in this run.", file=sys.stderr)
    if shard is None:  # a shard grades a part of the class: the others' entries are expected to match nobody here
        named = [(args.submitted_at, "gives a submission time for", times)]
        if policy is not None:
            named.append((args.extensions, "grants an extension to", policy.extensions))
        for source, grants, students in named:
            if strangers := batch.strangers(students, results):
                print(
                    f"note: {source} {grants} {', '.join(strangers)}, neither graded in this run nor in the "
                    "gradebook: a misspelt id? It applies to nobody.",
                    file=sys.stderr,
                )
    errors = [f"{r.student}: {e}" for r in results for e in r.grader_errors]
    if errors:
        print("grader: failed: internal errors while scoring:\n  " + "\n  ".join(errors), file=sys.stderr)
        return EXIT_FAILED
    if args.fail_under is not None:
        low = [r for r in results if r.score < args.fail_under]
        if low:
            names = ", ".join(f"{r.student} ({r.score:g})" for r in low)
            print(f"grader: {len(low)} submission(s) under --fail-under {args.fail_under:g}: {names}", file=sys.stderr)
            return EXIT_FAIL_UNDER
    return 0


class OutlivesReader:
    """A text stream that survives its reader: once ``| head`` has read its fill and closed the pipe, what is
    written goes to ``/dev/null`` and grading goes on, so every submission is still graded and recorded
    (instead of a ``BrokenPipeError`` traceback halfway through the class)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._to_null()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._to_null()

    def _to_null(self) -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, self._stream.fileno())  # the buffered rest, and Python's flush at exit, go nowhere
        os.close(null)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


if __name__ == "__main__":
    sys.stdout, sys.stderr = OutlivesReader(sys.stdout), OutlivesReader(sys.stderr)
    sys.exit(main())
