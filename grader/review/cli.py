"""Command line: ``python -m grader review [--out DIR] [--submissions DIR] [--port N] [--reviewer NAME]``
serves the review page; ``--export FILE`` and ``--import FILE`` move the entered scores to and from a scores
file (the ``manual.toml`` format) without serving anything.

Exit status: 0 when the page was served and stopped (Ctrl-C), or the file was exported or imported; 2 for a
usage error (no gradebook in DIR: grade first; a bad scores file; a student the gradebook does not hold);
3 when Flask is not installed, the port is taken, or a file cannot be written.
"""

from __future__ import annotations

import argparse
import getpass
import secrets
import signal
import sqlite3
import sys
from pathlib import Path
from typing import Any

from ..errors import EXIT_FAILED, EXIT_USAGE, UsageError
from ..reports import FILENAME, Gradebook

PROG = "python -m grader review"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Score the written work (and the quiz answers sent to a person) on a local page: each entry is saved "
            "in the gradebook at once. The page answers on 127.0.0.1 only, at an address with a random token."
        ),
    )
    p.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                   help="the report folder that holds the gradebook (default: reports/)")  # fmt: skip
    p.add_argument(
        "--submissions",
        type=Path,
        default=Path("submissions"),
        metavar="DIR",
        help="the folder of the submissions graded, where image diagrams are read from (default: submissions/)",
    )
    p.add_argument("--port", type=int, default=0, metavar="N", help="the port on 127.0.0.1 (default: a free one)")
    p.add_argument(
        "--reviewer",
        default=getpass.getuser(),
        metavar="NAME",
        help="who the entries are recorded as entered by (default: your login name)",
    )
    files = p.add_mutually_exclusive_group()
    files.add_argument("--export", type=Path, metavar="FILE", help="write the entered scores to FILE and stop")
    files.add_argument(
        "--import", dest="import_", type=Path, metavar="FILE", help="enter FILE's scores (checked as --manual) and stop"
    )
    return p


def open_book(out: Path) -> Gradebook:
    """The gradebook of ``out``; UsageError saying to grade first when there is none."""
    if not (out / FILENAME).is_file():
        raise UsageError(
            f"there is no gradebook in {out}/ ({out / FILENAME}): grade the class first "
            f"(python -m grader --out {out}), then start the review page."
        )
    return Gradebook.open(out / FILENAME, create=False)


def export_file(args: argparse.Namespace) -> int:
    from .store import export_scores

    if args.export.resolve() == (args.out / "manual.toml").resolve():
        raise UsageError(
            f"--export {args.export} is the report folder's manual.toml, which every grading run enters again (over "
            "newer scores from the page): export to another file."
        )
    with open_book(args.out) as book:
        text = export_scores(book)
        entries = sum(map(len, book.manual_entries().values()))
    args.export.write_text(text, encoding="utf-8")
    print(f"Wrote {entries} entered score(s) to {args.export} (read back with --import, or --manual).")
    return 0


def import_file(args: argparse.Namespace) -> int:
    from .store import import_scores

    try:
        text = args.import_.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read the scores file {args.import_}: {exc}.") from None
    with open_book(args.out) as book:
        done = import_scores(book, text, str(args.import_), args.reviewer, source=PROG)
    print(
        f"Imported {args.import_}: {done.entries} score(s) for {done.students} student(s), {done.changed} new or "
        f"changed. The report files show them after the next grading run or the page's Write the reports."
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    try:
        from .app import create_app, serve_on
    except ModuleNotFoundError as exc:
        if exc.name not in ("flask", "werkzeug"):
            raise
        print(
            f"review: failed: the review page needs Flask: pip install -e '.[review]' (or nox -s review -- --out "
            f"{args.out}).",
            file=sys.stderr,
        )
        return EXIT_FAILED

    open_book(args.out).close()  # the usage errors first, before a port is taken
    token = secrets.token_urlsafe(24)
    app = create_app(args.out, token=token, submissions=args.submissions, reviewer=args.reviewer)
    review = app.config["review"]
    try:
        server = serve_on(app, args.port)
    except OSError as exc:
        review.close()
        print(f"review: failed: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}; try --port N.", file=sys.stderr)
        return EXIT_FAILED
    url = f"http://127.0.0.1:{server.server_port}/{token}/"
    print(f"Review page for {review.path}, entries recorded as entered by {args.reviewer}:\n\n    {url}\n")
    print("Open it in a browser on this machine (the address is the password: keep it to yourself). Ctrl-C stops.")
    print("Every entry is saved in the gradebook at once; closing the tab loses nothing.", flush=True)
    for stop in (signal.SIGTERM, signal.SIGHUP):  # a kill, or the terminal closed, stops it as Ctrl-C does
        signal.signal(stop, interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return stopped(review)


def interrupt(*_: Any) -> None:
    raise KeyboardInterrupt


def stopped(review: Any) -> int:
    """When the page stops: write the report files if entries were made since they were last written."""
    try:
        if review.unexported:
            done = review.write_reports()
            entries = f"with the new entries ({done['students']} student(s))"
            print(f"\nStopped. Wrote the reports in {done['out']}/ {entries}.", flush=True)
        else:
            print("\nStopped. Every entry is in the gradebook; the report files were already up to date.")
    except (OSError, sqlite3.Error) as exc:
        print(
            f"\nreview: the reports could not be written ({exc}); every entry is in {review.path}: the next "
            "grading run writes them.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        review.close()
    return 0


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if args.out.exists() and not args.out.is_dir():
            raise UsageError(f"--out {args.out} is a file; give the report folder that holds the gradebook.")
        if args.export is not None:
            return export_file(args)
        if args.import_ is not None:
            return import_file(args)
        return serve(args)
    except UsageError as exc:
        print(f"review: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except sqlite3.OperationalError as exc:
        print(f"review: failed: the gradebook in {args.out} is busy or cannot be written ({exc}); retry.",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAILED
    except OSError as exc:
        print(f"review: failed: {exc}", file=sys.stderr)
        return EXIT_FAILED
