"""Similarity report of a class of 200: every pair compared, the reports written (target: under 60 s here).

Run: ``python tests/benchmarks/bench_similarity.py [--size N] [--copies N]`` (or ``nox -s bench``). The class is
generated (tests/similarity_corpus.py): rewrites of four independent solutions of the repository (names changed,
idioms respelled, type hints dropped, statements added and reordered) and a few planted copies, each one another
submission of the class disguised (renamed and reordered). Rewrites of one solution stay alike, so this class
flags far more pairs than a real one would: the heavier case for the report. Measured in this one run:

- baseline 1: reading the files (``grader.similarity.texts.gather``: every model.py and mla.py, capped, decoded);
- baseline 2: copydetect's own default pipeline on the same folders (``CopyDetector`` with the template as
  boilerplate, ``run()`` then ``generate_html_report()``), which compares every file with every other;
- ``grader.similarity.report``: reading, fingerprinting, all pairs, the three reports written.

Printed: each time, the report's time against both baselines, whether it stayed under the target, how many of
the planted copies were flagged, and the sizes of the reports. Nothing asserts a time.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from copydetect import CopyDetector

from grader.similarity import report
from grader.similarity.texts import gather

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
from similarity_corpus import make_class  # noqa: E402 -- a helper of the tests, found once tests/ is on the path

TEMPLATE = REPO / "submissions" / "_template"
TARGET_SECONDS = 60.0


def timed(run):
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="submissions in the class")
    parser.add_argument("--copies", type=int, default=6, help="planted disguised copies among them")
    args, others = parser.parse_known_args()
    if others:
        print(f"bench_similarity: options for the other benchmarks, not used here: {' '.join(others)}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "class"
        planted = make_class(root, args.size, args.copies, seed=0)
        folders = sorted(root.iterdir())
        read_s, corpus = timed(lambda: gather(folders, TEMPLATE))
        detector = CopyDetector(
            test_dirs=[str(f) for f in folders],
            boilerplate_dirs=[str(TEMPLATE)],
            extensions=["py"],
            autoopen=False,
            silent=True,
            out_file=str(Path(tmp) / "copydetect.html"),
        )
        copydetect_s, _ = timed(lambda: (detector.run(), detector.generate_html_report()))
        ours_s, (comparison, paths) = timed(lambda: report(folders, out=Path(tmp) / "reports", template=TEMPLATE))
        flagged = {(p.a, p.b) for p in comparison.flagged}
        found = sum(tuple(sorted(pair)) in flagged for pair in planted)
        files = sum(len(d.files) for d in corpus.documents)
        print(f"similarity: {len(folders)} submissions, {files} files, {len(comparison.pairs):,} pairs")
        print(f"baseline 1: reading the files                     {read_s:7.2f} s")
        pipeline = f"baseline 2: copydetect's default pipeline          {copydetect_s:7.2f} s"
        print(f"{pipeline}  ({len(detector.test_files)} files, each compared with every other)")
        print(f"grader.similarity.report, end to end               {ours_s:7.2f} s")
        print(
            f"  {ours_s / copydetect_s:.2f}x copydetect's pipeline, {ours_s / read_s:.0f}x reading; "
            f"target {TARGET_SECONDS:.0f} s for 200: {'met' if ours_s <= TARGET_SECONDS else 'NOT met'}"
        )
        print(
            f"  planted copies flagged: {found} of {len(planted)}; pairs flagged in all: {len(flagged):,} "
            "(rewrites of one solution stay alike)"
        )
        sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths.values())
        print(f"  reports: {sizes}")


if __name__ == "__main__":
    main()
