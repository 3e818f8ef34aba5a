"""Grading throughput: 40 copies of the full-marks example, with 1 and with 2 workers.

Run: ``python tests/benchmarks/bench_grader.py [--copies N]`` (or ``nox -s bench``). Measured in this one
run, so that the figures share the machine's state:

- baseline: a bare ``python -c "import torch"`` (the start-up every grader that runs student code in a
  fresh Python pays per submission; median of 3);
- ``grader.grade`` on N copies of ``submissions/alice`` with 1 and with 2 workers, end to end: sandbox
  start-up, every sandboxed run, scoring with pytest, all reports written.

Printed for each: wall time, seconds per submission, throughput, the median and slowest per-submission
latency (read, draw, sandboxed runs), and the cost per submission beyond the bare ``import torch``
(target: at most 0.5 s), and whether the class of 40 took at most 60 s with 2 workers. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grader

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "submissions" / "alice"
TARGET_BEYOND_IMPORT = 0.5
TARGET_CLASS_SECONDS = 60.0


def bare_import_torch(repeats: int = 3) -> float:
    """Median seconds of ``python -c "import torch"`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def grade_class(paths: list[Path], jobs: int, out: Path) -> tuple[float, list[float], float]:
    """Wall seconds, per-submission latencies and the lowest score of one graded class."""
    start = time.perf_counter()
    results = grader.grade(paths, jobs=jobs, out=out, seed=1)
    wall = time.perf_counter() - start
    return wall, [r.seconds for r in results], min(r.score for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=40, help="copies of the full-marks example to grade")
    args, others = parser.parse_known_args()
    if others:
        print(f"bench_grader: options for the other benchmarks, not used here: {' '.join(others)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths = []
        for i in range(args.copies):
            paths.append(root / "class" / f"student-{i:03d}")
            shutil.copytree(EXAMPLE, paths[-1])
        bare = bare_import_torch()
        print(f"grading {args.copies} copies of {EXAMPLE.relative_to(REPO)}")
        print(f'baseline: python -c "import torch"                 {bare:6.2f} s')
        print(f"{'workers':>8} {'wall s':>8} {'s/sub':>7} {'subs/s':>7} {'median s':>9} {'max s':>7} {'beyond':>8}")
        walls = {}
        for jobs in (1, 2):
            wall, latencies, lowest = grade_class(paths, jobs, root / f"reports-{jobs}")
            walls[jobs] = wall
            per_sub = wall / len(paths)
            print(
                f"{jobs:>8} {wall:8.2f} {per_sub:7.3f} {len(paths) / wall:7.2f} {statistics.median(latencies):9.3f} "
                f"{max(latencies):7.3f} {per_sub - bare:+8.3f}" + ("" if lowest == 100 else f"  (lowest {lowest:g})")
            )
        per_sub = walls[1] / len(paths)
        verdict = "met" if per_sub - bare <= TARGET_BEYOND_IMPORT else "MISSED"
        print(
            f"1 worker: {per_sub:.3f} s per submission, {per_sub - bare:+.3f} s beyond a bare import torch "
            f"(target at most +{TARGET_BEYOND_IMPORT} s): {verdict}"
        )
        scaled = walls[2] * 40 / len(paths)
        print(
            f"2 workers: 40 submissions in {scaled:.1f} s (target at most {TARGET_CLASS_SECONDS:g} s): "
            f"{'met' if scaled <= TARGET_CLASS_SECONDS else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
