"""Grading throughput and the cost of the records: N copies of the full-marks example (default 200), with 1 and
with 2 workers, interleaved and repeated.

Run: ``python tests/benchmarks/bench_grader.py [--copies N] [--repeats R]`` (or ``nox -s bench``). Measured in
this one run, so that the figures share the machine's state:

- baseline: a bare ``python -c "import torch"`` (the start-up every grader that runs student code in a
  fresh Python pays per submission; median of 3);
- ``grader.grade`` on N copies of ``submissions/alice`` into a gradebook, with 1 and with 2 workers, end to end:
  sandbox start-up, every sandboxed run, scoring with pytest, each submission committed to the database, the
  reports exported. The passes alternate (1, 2, then 2, 1, ...) so that a change in the machine's load falls on
  both; the ratio is the median 1-worker wall over the median 2-worker wall.

Printed for each pass: wall time, seconds per submission, the median and slowest per-submission latency, how
many of the machine's cores the grader kept busy (its own CPU plus its sandboxes', over the wall time: on a
2-core machine 2 workers can reach 2 only when nothing else runs), and the CPU split between the grader's
process and the sandboxes per submission. Then the records: milliseconds per submission spent committing to
the database (target: under 20 ms) and exporting the reports; the cost per submission beyond the bare
``import torch`` (target: at most 0.5 s) and whether 40 submissions take at most 60 s with 2 workers; the
speed-up of 2 workers over 1 (target: 1.6x), and the most the machine allows: the speed-up is the cores kept
busy with 2 over those with 1, times the CPU a submission costs alone over what it costs beside another; the
ceiling puts every core in the first. The grader's imports are paid before any pass is timed (``grader.grade``
loads torch, ``reference`` and pytest on first use). Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grader
import grader.reports.gradebook
from grader.reports import Gradebook
from grader.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "submissions" / "alice"
TARGET_BEYOND_IMPORT = 0.5
TARGET_CLASS_SECONDS = 60.0
TARGET_RECORD_MS = 20.0
TARGET_SPEEDUP = 1.6
TICK = os.sysconf("SC_CLK_TCK")


def bare_import_torch(repeats: int = 3) -> float:
    """Median seconds of ``python -c "import torch"`` in a fresh interpreter."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tree_cpu(pid: int) -> float:
    """CPU seconds of a live process and everything it started and reaped (utime, stime, cutime, cstime)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += sum(int(x) for x in fields[11:15]) / TICK
        for task in os.listdir(f"/proc/{pid}/task"):
            for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
                total += tree_cpu(int(child))
    except OSError:  # gone meanwhile, or no /proc (then the split is not shown)
        pass
    return total


class Timed:
    """Seconds and calls of a function, wrapped in place for the duration of a pass."""

    def __init__(self, owner: object, name: str) -> None:
        self.owner, self.name, self.original = owner, name, getattr(owner, name)
        self.seconds, self.calls = 0.0, 0

    def __enter__(self) -> Timed:
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return self.original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        setattr(self.owner, self.name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(self.owner, self.name, self.original)


def grade_class(paths: list[Path], jobs: int, out: Path) -> dict[str, float]:
    """One pass: wall, latencies, CPU split, records and export time of grading the class into ``out``."""
    grader.grade  # noqa: B018  the grader's imports (torch, reference, pytest) load on first use: not timed here
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with Timed(Gradebook, "record") as record, Timed(grader.reports.gradebook, "write_all") as export:
        box = Sandbox(jobs=jobs)
        try:
            results = grader.grade(paths, jobs=jobs, out=out, seed=1, sandbox=box)
            sandbox_cpu = sum(tree_cpu(worker.proc.pid) for worker in box._workers if worker.proc is not None)
        finally:
            box.close()
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    own = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    n = len(paths)
    latencies = [r.seconds for r in results]
    return {
        "wall": wall,
        "median": statistics.median(latencies),
        "max": max(latencies),
        "lowest": min(r.score for r in results),
        "busy": (own + sandbox_cpu) / wall,
        "own_ms": own / n * 1000,
        "sandbox_ms": sandbox_cpu / n * 1000,
        "record_ms": record.seconds / max(1, record.calls) * 1000,
        "export_ms": export.seconds / n * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200, help="copies of the full-marks example to grade")
    parser.add_argument("--repeats", type=int, default=2, help="passes per number of workers (interleaved)")
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
        print(f"grading {args.copies} copies of {EXAMPLE.relative_to(REPO)}, {args.repeats} passes per worker count")
        print(f'baseline: python -c "import torch"                 {bare:6.2f} s')
        print(
            f"{'workers':>8} {'wall s':>8} {'s/sub':>7} {'median s':>9} {'max s':>7} {'cores':>6} "
            f"{'grader ms':>10} {'sandbox ms':>11} {'record ms':>10} {'export ms':>10}"
        )
        passes: dict[int, list[dict[str, float]]] = {1: [], 2: []}
        for repeat in range(args.repeats):
            for jobs in (1, 2) if repeat % 2 == 0 else (2, 1):
                p = grade_class(paths, jobs, root / f"reports-{jobs}-{repeat}")
                passes[jobs].append(p)
                print(
                    f"{jobs:>8} {p['wall']:8.2f} {p['wall'] / len(paths):7.3f} {p['median']:9.3f} {p['max']:7.3f} "
                    f"{p['busy']:6.2f} {p['own_ms']:10.1f} {p['sandbox_ms']:11.1f} {p['record_ms']:10.2f} "
                    f"{p['export_ms']:10.2f}" + ("" if p["lowest"] == 100 else f"  (lowest {p['lowest']:g})"),
                    flush=True,
                )
        walls = {jobs: statistics.median(p["wall"] for p in runs) for jobs, runs in passes.items()}
        record = statistics.median(p["record_ms"] for runs in passes.values() for p in runs)
        export = statistics.median(p["export_ms"] for runs in passes.values() for p in runs)
        print(
            f"records: {record:.2f} ms per submission committed to the gradebook (target under {TARGET_RECORD_MS:g} "
            f"ms): {'met' if record < TARGET_RECORD_MS else 'MISSED'}; reports exported: {export:.2f} ms per submission"
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
        speedup = walls[1] / walls[2]
        print(
            f"2 workers against 1 on {len(paths)} submissions: {speedup:.2f}x (median wall {walls[1]:.1f} s against "
            f"{walls[2]:.1f} s; target {TARGET_SPEEDUP:g}x): {'met' if speedup >= TARGET_SPEEDUP else 'MISSED'}; "
            f"cores kept busy: {statistics.median(p['busy'] for p in passes[2]):.2f} of {os.cpu_count()}"
        )
        busy = {jobs: statistics.median(p["busy"] for p in runs) for jobs, runs in passes.items()}
        cpu = {jobs: statistics.median(p["own_ms"] + p["sandbox_ms"] for p in runs) for jobs, runs in passes.items()}
        print(
            f"why: 1 worker already keeps {busy[1]:.2f} cores busy (scoring in the grader overlaps the sandbox), "
            f"and a submission's CPU rises from {cpu[1]:.0f} to {cpu[2]:.0f} ms with 2 at once, so {os.cpu_count()} "
            f"cores allow at most {os.cpu_count() / busy[1] * cpu[1] / cpu[2]:.2f}x here"
        )


if __name__ == "__main__":
    main()
