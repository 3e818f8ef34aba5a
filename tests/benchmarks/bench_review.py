"""The review page on a class of 200: how long it takes to open, and to save one entry (target: open under 1 s).

Run: ``python tests/benchmarks/bench_review.py [--size N] [--entries N]`` (or ``nox -s bench``). The gradebook is
made through the ``Gradebook`` API (tests/review_class.py: eight written items per student, quiz 3 sent to a
person for a third of them, answers of 30 to 90 words), with a similarity report of every pair beside it (the
review list reads it), and the page is served as ``python -m grader review`` serves it, on 127.0.0.1. Measured
in this one run:

- baseline 1: ``class_results`` on the same gradebook: reading the class as every export of the reports does;
- the first load of the page, cold (a new server): the first page, then the item view with every student's
  answer (the largest page: 200 answers with their rubrics), each with its script and style sheet, over HTTP;
  and, where Chromium is installed, the item view opened in headless Chromium until its load event;
- baseline 2: ``Gradebook.enter_manual`` alone, one score committed;
- one entry through the page: the POST of a score, checked, committed and answered with the new progress
  (median of ``--entries``), and writing every report file from the gradebook (the page's W).

Printed: each time, the ratios to the baselines, and whether opening the page met the target. Nothing asserts a
time.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from grader.reports import FILENAME, Gradebook, class_results
from grader.review.app import create_app, serve_on
from grader.similarity.settings import FORMAT_VERSION, JSON_FILE

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "docs"))
from review_class import make_gradebook  # noqa: E402 -- helpers of the tests, found once tests/ is on the path

TARGET_SECONDS = 1.0
TOKEN = "bench-token"


def timed(run):
    start = time.perf_counter()
    value = run()
    return time.perf_counter() - start, value


def row(label: str, seconds: float, extra: str = "") -> None:
    print(f"{label:<54} {seconds * 1000:7.1f} ms{extra}")


def similarity_json(students: list[str], out: Path) -> None:
    """A similarity report of every pair, a few flagged, in the format ``python -m grader similarity`` writes."""
    rng = random.Random(0)
    pairs = []
    for i, a in enumerate(students):
        for b in students[i + 1 :]:
            share = rng.random() * 0.6
            pairs.append({"a": a, "b": b, "similarity_a": share, "similarity_b": share, "token_overlap": 300,
                          "flagged": False})  # fmt: skip
    for pair in pairs[:: len(pairs) // 5]:
        pair.update(similarity_a=0.95, similarity_b=0.93, flagged=True)
    data = {
        "format": FORMAT_VERSION,
        "threshold": 0.7,
        "min_overlap": 200,
        "files": ["model.py", "mla.py"],
        "submissions": [{"student": s, "notices": []} for s in students],
        "skipped": [],
        "pairs": pairs,
    }
    (out / JSON_FILE).write_text(json.dumps(data))


def fetch(url: str, body: dict | None = None) -> bytes:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request) as response:
        return response.read()


def open_page(base: str, path: str) -> int:
    """GET a page and the files it loads, as a browser's first visit does; the bytes received."""
    return sum(len(fetch(base + part)) for part in (path, "static/review.js", "static/review.css"))


def browser_load(url: str) -> float | None:
    """Seconds from navigation to the load event of ``url`` in headless Chromium (None without Chromium)."""
    try:
        from chromium import CHROMEDRIVER, CHROMIUM, chrome
    except ImportError:
        return None
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return None
    driver = chrome()
    try:
        driver.get(url)
        timing = driver.execute_script(
            "const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;"
        )
        return timing / 1000
    finally:
        driver.quit()


class Served:
    """The review page of ``out`` on a free port of 127.0.0.1, served from a thread (as the command line does)."""

    def __init__(self, out: Path) -> None:
        self.app = create_app(out, token=TOKEN, submissions=out / "submissions")
        self.server = serve_on(self.app)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.base = f"http://127.0.0.1:{self.server.server_port}/{TOKEN}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.app.config["review"].close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=200, help="students in the class")
    parser.add_argument("--entries", type=int, default=20, help="entries timed through the page")
    args, others = parser.parse_known_args()
    if others:
        print(f"bench_review: options for the other benchmarks, not used here: {' '.join(others)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reports"
        students = [f"student{i:03d}" for i in range(args.size)]
        make_gradebook(out, students)
        similarity_json(students, out)
        with Gradebook.open(out / FILENAME, create=False) as book:
            read_s, results = timed(lambda: class_results(book))
            answers = sum(len(r.manual_review) for r in results)
        served = Served(out)
        try:
            index_s, index_bytes = timed(lambda: open_page(served.base, ""))
            item_s, item_bytes = timed(lambda: open_page(served.base, "item/theory.rope"))
        finally:
            served.close()
        served = Served(out)
        try:
            chromium_s = browser_load(served.base + "item/theory.rope")
            entry_times = []
            for student in students[: args.entries]:
                body = {"student": student, "item": "theory.gqa", "score": 3, "comment": "Timed.", "seen": ""}
                entry_times.append(timed(lambda body=body: fetch(served.base + "api/entry", body))[0])
            reports_s, _ = timed(lambda: fetch(served.base + "api/reports", {}))
        finally:
            served.close()
        copy = Path(tmp) / "copy.sqlite"
        shutil.copy(out / FILENAME, copy)
        with Gradebook.open(copy, create=False) as book:
            enter_s, _ = timed(lambda: book.enter_manual(students[-1], "theory.moe", 2, "", entered_by="b", source="b"))
    entry_s = statistics.median(entry_times)
    opened = item_s if chromium_s is None else max(item_s, chromium_s)
    print(f"review page: {args.size} students, {answers:,} answers to score, a similarity report of "
          f"{args.size * (args.size - 1) // 2:,} pairs beside them")  # fmt: skip
    row("baseline 1: class_results (what every export reads)", read_s)
    row("first page, cold server, with its script and styles", index_s, f"  ({index_bytes / 1e3:.0f} kB)")
    row(f"item view of {args.size} answers, likewise", item_s, f"  ({item_bytes / 1e3:.0f} kB)")
    if chromium_s is None:
        print(f"{'item view in headless Chromium':<54} not measured: no Chromium here")
    else:
        row("item view in headless Chromium, to its load event", chromium_s)
    row("baseline 2: Gradebook.enter_manual alone", enter_s)
    row(f"one entry through the page (median of {len(entry_times)})", entry_s)
    row("writing every report file (the page's W)", reports_s)
    print(
        f"  item view {item_s / read_s:.1f}x class_results; an entry {entry_s / enter_s:.1f}x enter_manual; "
        f"target {TARGET_SECONDS:g} s to open the page: {'met' if opened <= TARGET_SECONDS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
