"""The Gradescope autograder: the time from ``run_autograder``'s start to results.json for one submission, and the
size of ``autograder.zip``.

Run: ``python tests/benchmarks/bench_gradescope.py [--repeats N]`` (or ``nox -s bench``), as root or with
password-less sudo (Gradescope runs the autograder as root). Measured in this one run, so that the figures share
the machine's state, each the median of N runs (default 3) on the full-marks fixture in a fresh simulated
``/autograder`` (``tests/gradescope_sim.py``):

- baseline: a bare ``python -c "import torch"``, and the grader's own command line on the same submission
  (``python -m grader FOLDER``: start-up, sandbox, runs, scoring, reports);
- ``run_autograder`` with bubblewrap refused (as in most Gradescope containers: the runs are a uid of their
  own) and with bubblewrap, from its start until it has written results.json (it exits right after).

Printed: each time, and its ratio to both baselines; the zip's size and number of entries. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from gradescope_sim import container, files, interpreter, remove, run_autograder

from grader.release.autograder import build_autograder

REPO = Path(__file__).resolve().parents[2]
FULL = REPO / "tests" / "fixtures" / "submissions" / "full"


def median_seconds(action: Callable[[], None], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement (the median is shown)")
    args, others = parser.parse_known_args()
    if others:
        print(f"bench_gradescope: options for the other benchmarks, not used here: {' '.join(others)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        archive = work / "autograder.zip"
        size = build_autograder(REPO, archive, {})
        with zipfile.ZipFile(archive) as zipped:
            entries = len(zipped.namelist())
        python = interpreter(work / "venv")
        torch = median_seconds(lambda: subprocess.run([sys.executable, "-c", "import torch"], check=True), args.repeats)
        folder = work / "submissions" / "full"
        folder.parent.mkdir()
        folder.mkdir()
        for name, data in files(FULL).items():
            (folder / name).write_bytes(data)

        def cli() -> None:
            command = [sys.executable, "-m", "grader", str(folder), "--out", str(work / "reports"), "--seed", "1"]
            subprocess.run(command, check=True, capture_output=True)

        def autograder(bwrap: bool) -> Callable[[], None]:
            def once() -> None:
                root = container(archive, files(FULL))
                try:
                    done = run_autograder(root, python, bwrap=bwrap)
                    assert done.returncode == 0 and (root / "results" / "results.json").is_file(), done.stderr
                finally:
                    remove(root)

            return once

        grader_cli = median_seconds(cli, args.repeats)
        measured = {
            "run_autograder, bubblewrap refused (a uid of its own)": median_seconds(autograder(False), args.repeats),
            "run_autograder, under bubblewrap": median_seconds(autograder(True), args.repeats),
        }
    print(f"autograder.zip: {size:,} bytes ({size / 2**10:.0f} KiB), {entries} entries")
    print(f"baseline: python -c 'import torch': {torch:.2f} s; python -m grader FOLDER: {grader_cli:.2f} s")
    for label, seconds in measured.items():
        print(
            f"{label}: {seconds:.2f} s from start to results.json, {seconds / grader_cli:.2f}x the grader's command "
            f"line, {seconds / torch:.1f}x a bare import torch"
        )


if __name__ == "__main__":
    main()
