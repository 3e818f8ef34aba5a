"""The cost of isolation: the grader's real runs on one submission, with and without the sandbox.

Run: ``python tests/benchmarks/bench_sandbox.py [--repeats N] [--submission DIR]`` (or ``nox -s bench``).
All paths are measured in this one run, interleaved submission by submission so that machine noise
hits them alike; each figure is the median over the repeats. Every repeat is one submission: all
the probe calls the grader makes for it (``grader.runs.run_specs``) with that repeat's draws.

- baseline, ``in-process``: the probe executed in this very process (no child, no isolation: what an
  unsandboxed grader such as Otter or nbgrader does), the cost of the experiments themselves;
- ``plain child``: the sandbox's zygote without bubblewrap (forked children with resource limits);
- ``bubblewrap``: the sandbox as graded (namespaces, tmpfs scratch, dropped uid and capabilities);
- an empty run on each sandbox path: what one run costs when the code does nothing.

Printed: seconds per submission and per run for each, the sandbox's cost per submission against the
baseline (target: under 0.1 s), the part of it due to isolation (bubblewrap against plain), the
one-off start of a worker (Python + ``import torch`` under bubblewrap) beside a bare
``python -c "import torch"``, and the throughput of 40 submissions with 2 workers. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from unittest import mock

import torch

from grader.draws import draw, student_seed
from grader.runs import PROBE_SOURCE, run_specs
from grader.sandbox import Sandbox, bwrap
from grader.submission import read_submission

REPO = Path(__file__).resolve().parents[2]


def calls(sub_dir: Path, seed: int) -> list[tuple[dict[str, bytes], str, dict]]:
    """(files, probe function, arguments) of every run the grader makes for one submission."""
    sub = read_submission(sub_dir, sub_dir.name)
    draws = draw(student_seed(seed, sub.student))
    return [(dict(sub.code), spec.call, spec.kwargs) for spec in run_specs(draws) if spec.needs in sub.code]


def in_process(files: dict[str, bytes], call: str, args: dict) -> dict:
    """The unsandboxed baseline: the probe and the learner's modules run in this process."""
    with tempfile.TemporaryDirectory() as scratch:
        for name, data in files.items():
            Path(scratch, name).write_bytes(data)
        sys.path.insert(0, scratch)
        try:
            probe = types.ModuleType("probe")
            exec(compile(PROBE_SOURCE, "<grader probe>", "exec"), probe.__dict__)
            result = getattr(probe, call)(**args)
            json.dumps(result)
            return result
        finally:
            sys.path.remove(scratch)
            for name in files:
                sys.modules.pop(name.removesuffix(".py"), None)


def sandboxed(box: Sandbox) -> callable:
    def run(files: dict[str, bytes], call: str, args: dict) -> dict:
        out = box.run(files, PROBE_SOURCE, call, args)
        if out.status != "ok":
            raise RuntimeError(f"{call}: {out.status}: {out.message}\n{out.stderr_tail}")
        return out.result

    return run


def timed(fn, runs: list[tuple[dict[str, bytes], str, dict]]) -> float:
    start = time.perf_counter()
    for files, call, args in runs:
        fn(files, call, args)
    return time.perf_counter() - start


def started(isolated: bool) -> tuple[Sandbox, float]:
    """A one-worker sandbox, bubblewrap or plain, and the seconds until its worker served a first run."""
    start = time.perf_counter()
    if isolated:
        box = Sandbox(jobs=1, require_isolation=True)
    else:
        with mock.patch.object(bwrap.shutil, "which", lambda name: None):
            box = Sandbox(jobs=1)
    box.run({}, "def ping():\n    return {}\n", "ping", {})
    return box, time.perf_counter() - start


def empty_run(box: Sandbox, repeats: int = 30) -> float:
    """Median seconds of a run that does nothing: the sandbox's own cost per run (fork, namespaces, limits)."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        box.run({"model.py": b""}, "def ping():\n    return {}\n", "ping", {})
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--submission", type=Path, default=REPO / "submissions" / "alice")
    opts = parser.parse_args()
    torch.set_num_threads(1)  # as in the sandbox's runs, so that the baseline does the same work

    bare = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True)
    bare = time.perf_counter() - bare
    plain, plain_start = started(isolated=False)
    bwrap, bwrap_start = started(isolated=True)
    paths = {"in-process": in_process, "plain child": sandboxed(plain), "bubblewrap": sandboxed(bwrap)}
    times: dict[str, list[float]] = {name: [] for name in paths}
    n_runs = 0
    for repeat in range(opts.repeats + 1):  # the first round warms caches and is not counted
        runs = calls(opts.submission, seed=repeat)
        n_runs = len(runs)
        for name, fn in paths.items():
            seconds = timed(fn, runs)
            if repeat:
                times[name].append(seconds)
    empty = {name: empty_run(box) for name, box in (("plain child", plain), ("bubblewrap", bwrap))}
    plain.close()

    med = {name: statistics.median(ts) for name, ts in times.items()}
    base = med["in-process"]
    print(f"bench_sandbox: {opts.submission.name}, {n_runs} runs per submission, median of {opts.repeats}")
    print(f"  {'path':<14} {'s/submission':>13} {'s/run':>8} {'vs baseline':>12}")
    for name, m in med.items():
        print(f"  {name:<14} {m:>13.3f} {m / n_runs:>8.3f} {m / base:>11.2f}x")
    print(f"  sandbox cost per submission (bubblewrap - in-process): {med['bubblewrap'] - base:.3f} s (target < 0.1 s)")
    print(f"  isolation cost per submission (bubblewrap - plain child): {med['bubblewrap'] - med['plain child']:.3f} s")
    print(
        f"  an empty run (no learner code, no torch work): plain child {1000 * empty['plain child']:.1f} ms, ", end=""
    )
    print(f"bubblewrap {1000 * empty['bubblewrap']:.1f} ms")
    print(f"  worker start, once per job slot: bubblewrap {bwrap_start:.2f} s, plain {plain_start:.2f} s; ", end="")
    print(f"bare `python -c 'import torch'` {bare:.2f} s")
    bwrap.close()

    with Sandbox(jobs=2, require_isolation=True) as box:
        run = sandboxed(box)
        batch = [calls(opts.submission, seed=1000 + i) for i in range(40)]
        start = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda runs: timed(run, runs), batch))
        total = time.perf_counter() - start
    print(f"  40 submissions, 2 workers, sandbox runs only: {total:.1f} s ({40 / total:.1f} submissions/s)")


if __name__ == "__main__":
    main()
