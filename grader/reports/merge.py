"""``python -m grader merge DB... [--out DIR]``: combine gradebook databases (one per shard, or per machine)
into ``DIR/gradebook.sqlite`` and write the class's report files from it.

Every row of each database is copied once (rows carry ids unique across machines), so merging the shards
of a class gives the gradebook a single run with the same seed would have given (each student's draws come
from the run's seed and the student id alone), and merging a database twice changes nothing. A student
graded in several databases keeps every attempt; the latest counts. Each DB may be a ``gradebook.sqlite``
file or a folder holding one. Every database is checked before anything is written.

Exit status: 0 when merged; 2 for a usage error (a missing, foreign, newer or damaged database).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import EXIT_USAGE, UsageError
from .database import FILENAME, Gradebook
from .gradebook import export, open_class


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m grader merge",
        description="Merge gradebook databases (e.g. one per shard) into one class gradebook and write its reports.",
    )
    p.add_argument("databases", nargs="+", type=Path, metavar="DB", help="gradebook.sqlite files, or folders with one")
    p.add_argument("--out", type=Path, default=Path("reports"), help="the class's report folder (default: reports/)")
    return p


def database_path(path: Path) -> Path:
    """``path`` itself, or the gradebook inside it when it is a folder; UsageError when there is none."""
    found = path / FILENAME if path.is_dir() else path
    if not found.is_file():
        where = f"{path} holds no {FILENAME}" if path.is_dir() else f"{path} does not exist"
        raise UsageError(f"{where}: give gradebook databases (a shard's --out folder, or its {FILENAME}).")
    return found


def merge(sources: list[Path], out: Path) -> list[tuple[Path, dict[str, int]]]:
    """Merge ``sources`` into ``out``'s gradebook and export the class; returns the rows each one added."""
    paths = [database_path(source) for source in sources]
    target = (out / FILENAME).resolve()
    books = []
    try:
        for path in paths:  # all checked before anything is written
            if path.resolve() != target:
                books.append(Gradebook.open(path, create=False))
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out {out} is a file; give a folder for the class's reports.")
        book, _ = open_class(out)
        try:
            added = [(source.path, book.merge_from(source)) for source in books]
            export(book, out)
        finally:
            book.close()
    finally:
        for source in books:
            source.close()
    return added


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        added = merge(args.databases, args.out)
    except UsageError as exc:
        print(f"grader merge: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for path, rows in added:
        new = rows["attempts"]
        print(
            f"{path}: {new} new attempt(s), {rows['runs']} new run(s), {rows['manual_scores']} new manual score(s)"
            + ("" if new or rows["runs"] else " (merged before: nothing new)")
        )
    skipped = len(args.databases) - len(added)
    if skipped:
        print(f"{skipped} of the databases given is {args.out / FILENAME} itself: nothing to merge from it.")
    with Gradebook.open(args.out / FILENAME, create=False) as book:
        latest = [result for _, result in book.latest_results()]
    seeds = sorted({result.run_seed for result in latest})
    print(f"Class gradebook: {len(latest)} student(s) in {args.out / FILENAME}; reports written to {args.out}/")
    if len(seeds) > 1:
        print(
            f"note: the class was graded with {len(seeds)} seeds ({', '.join(map(str, seeds))}); shards of one run "
            "share one --seed (each student's seed is in scores.csv).",
            file=sys.stderr,
        )
    return 0
