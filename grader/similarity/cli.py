"""Command line: ``python -m grader similarity [PATH ...] [--out DIR] [--template DIR] [--boilerplate PATH]
[--threshold F] [--min-overlap N]``.

Exit status: 0 when the reports were written (whatever was flagged); 2 for a usage error (a path that is not a
submission folder, an empty folder, fewer than two submissions with code, a bad option); 3 when copydetect is
not installed or the reports cannot be written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from ..errors import EXIT_FAILED, EXIT_USAGE, UsageError
from ..submission import CODE_FILES
from .records import write_reports
from .settings import DEFAULT_ROOT, DEFAULT_TEMPLATE, MIN_OVERLAP, NOISE_TOKENS, THRESHOLD
from .texts import gather

PROG = "python -m grader similarity"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            f"Compare the code ({', '.join(CODE_FILES)}) of every pair of submissions with MOSS-style winnowing "
            "(copydetect), the template not counted; report the pairs that share the most. No score is changed."
        ),
    )
    p.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help=f"submission folders, or folders of them (default: {DEFAULT_ROOT}/)",
    )
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR", help="report folder (default: reports/)")
    p.add_argument(
        "--template",
        type=Path,
        default=Path(DEFAULT_TEMPLATE),
        metavar="DIR",
        help=f"the starter code, not counted (default: {DEFAULT_TEMPLATE}/)",
    )
    p.add_argument(
        "--boilerplate",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="more code not to count, a file or a folder of *.py (e.g. a worked skeleton given in class); repeatable",
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=THRESHOLD,
        metavar="F",
        help=f"flag a pair when this share of either one's code is in the other (default: {THRESHOLD:g})",
    )
    p.add_argument(
        "--min-overlap",
        type=int,
        default=MIN_OVERLAP,
        metavar="N",
        help=f"and they share at least N tokens (default: {MIN_OVERLAP})",
    )
    return p


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def main(argv: list[str]) -> int:
    """Run the similarity report; print where it went and what was flagged. Returns the exit status."""
    args = parser().parse_args(argv)
    try:
        from .winnowing import compare  # copydetect, the optional dependency: a clear message when it is missing
    except ModuleNotFoundError as exc:
        if exc.name != "copydetect":
            raise
        print(
            "similarity: failed: the similarity report needs copydetect: pip install -e '.[similarity]' "
            "(or run it through nox -s similarity).",
            file=sys.stderr,
        )
        return EXIT_FAILED
    start = time.perf_counter()
    try:
        if not 0 < args.threshold <= 1:
            raise UsageError(f"--threshold {args.threshold:g} is outside (0, 1]: it is a share, e.g. 0.7 for 70%.")
        if args.min_overlap < 0:
            raise UsageError(f"--min-overlap {args.min_overlap} is negative: give a number of tokens, e.g. 200.")
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out} is a file; give a folder for the reports.")
        corpus = gather(args.paths, args.template, args.boilerplate)
    except UsageError as exc:
        print(f"similarity: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for skipped in corpus.skipped:
        print(f"similarity: not compared: {skipped.folder}: {skipped.reason}", file=sys.stderr)
    for doc in corpus.documents:
        for notice in doc.notices:
            print(f"similarity: note: {doc.student}: {notice}", file=sys.stderr)
    result = compare(corpus, threshold=args.threshold, min_overlap=args.min_overlap, noise=NOISE_TOKENS)
    try:
        paths = write_reports(result, args.out)
    except OSError as exc:
        print(f"similarity: failed: cannot write the reports to {args.out}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    seconds = time.perf_counter() - start
    print(
        f"Compared {len(corpus.documents)} submissions ({plural(len(result.pairs), 'pair')}) in {seconds:.1f} s: "
        f"{plural(len(result.flagged), 'pair')} flagged (at least {args.threshold:.0%} of one's code in the other, "
        f"{args.min_overlap}+ tokens in common)."
    )
    for p in result.flagged:
        print(f"  {p.a} and {p.b}: {p.similarity_a:.0%} / {p.similarity_b:.0%}, {p.token_overlap:,} tokens")
    print(f"Reports: {paths['html']}, {paths['json']}, {paths['markdown']} (no score was changed).")
    return 0
