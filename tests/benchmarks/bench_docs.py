"""Build times of the lesson site, against the targets of the docs issue.

Run: ``python tests/benchmarks/bench_docs.py`` (or ``nox -s bench``). Measured, in this order, for
each edition (``--edition`` picks one):

* a full build: previous output, doctrees and executed gallery discarded, every page runs
  (target: 180 s);
* a rebuild with nothing changed (target: 20 s);
* a rebuild after ``reference`` "changed": the recorded digest of ``reference`` is overwritten, so
  the pages that import it run again, as they would after an edit (no target; for reading).

Each build is the real command (``docs/_ext/lesson_editions.py``, warnings as errors) in a fresh
process. Printed: seconds and the ratio to the target (at most 1.0 meets it). Nothing is asserted.
It rewrites ``docs/_build``; run it when no other build is using that folder.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
TARGETS = {"full build": 180.0, "no-change rebuild": 20.0}


def timed_build(edition: str, *, fresh: bool = False) -> float:
    command = [sys.executable, str(DOCS / "_ext" / "lesson_editions.py"), edition, "-q"]
    if fresh:
        command.append("--fresh")
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode:
        sys.exit(f"the {edition} build failed (exit {result.returncode}):\n{result.stderr[-4000:]}")
    return seconds


def stamp(edition: str) -> Path:
    source = DOCS if edition == "instructor" else DOCS / "_build" / "student-src"
    return source / "auto_examples" / ".reference.sha256"


def report(edition: str, name: str, seconds: float) -> None:
    target = TARGETS.get(name)
    against = f"   ratio to the {target:.0f} s target: {seconds / target:.2f}" if target else ""
    print(f"{edition:>10}  {name:<30} {seconds:7.1f} s{against}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edition", choices=("instructor", "student"), action="append")
    args = parser.parse_args()
    for edition in args.edition or ["instructor", "student"]:
        report(edition, "full build", timed_build(edition, fresh=True))
        report(edition, "no-change rebuild", timed_build(edition))
        stamp(edition).write_text("a digest of an older reference")
        report(edition, "rebuild after reference changed", timed_build(edition))


if __name__ == "__main__":
    main()
