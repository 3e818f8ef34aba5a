"""The report files under the output folder, exports of the gradebook database: gradebooks, Gradescope
``results.json``, feedback, JUnit XML, summaries (the layout is in ``grader.reports``).

The class-wide files cover the whole class, each student's latest attempt (``grader.reports.gradebook``);
the per-student folders are written for the students of this run. Each file is replaced in one step (written
beside it, then renamed), and ``export_lock`` keeps two graders of one folder from interleaving their exports:
the one that exports last read the database last, so the files always show every committed grade.

Visibility (``grader.scoring.VISIBILITY``, declared with each check): ``results.json`` carries each check's, and
Gradescope shows or hides the test by it. ``feedback.md`` is the learner's: until the instructor publishes the
grades (``publish``, the command line's ``--publish``), it leaves out the score and the message of every check
that is not "visible", and hidden checks altogether. The gradebooks, the summary and the JUnit XML are the
instructor's and hold everything.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..results import CheckResult, Penalty, StudentResult


def fmt(points: float) -> str:
    """Points without trailing zeros."""
    return f"{points:g}"


def csv_cell(value: Any) -> Any:
    """Numbers as ``fmt`` writes them (``20``, ``4.5``), so a column never mixes ``20`` and ``20.0``."""
    return fmt(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def visibilities(given: dict[str, str] | None = None) -> dict[str, str]:
    """Check number -> visibility: ``given``, else the checks' own declarations (``grader.points_table``)."""
    if given is not None:
        return given
    from ..scoring import points_table

    return {row["number"]: row["visibility"] for row in points_table()}


def withheld(r: StudentResult, visibility: dict[str, str], publish: bool) -> list[CheckResult]:
    """The checks whose results the learner does not see yet (a check unknown to ``visibility`` among them)."""
    return [] if publish else [c for c in r.checks if visibility.get(c.number, "hidden") != "visible"]


def shown_line(r: StudentResult, held: list[CheckResult]) -> str:
    """``Automatic checks: 58 / 86 shown now (14 more points later)``, or the plain total."""
    if not held:
        return f"Automatic checks: {fmt(r.score)} / {fmt(r.max_score)}"
    score = r.score - sum(c.score for c in held)
    most = r.max_score - sum(c.max_score for c in held)
    return f"Automatic checks: {fmt(score)} / {fmt(most)} shown now ({fmt(r.max_score - most)} more points later)"


def written_line(r: StudentResult) -> str:
    """``Written work: 10 / 40 recorded, 3 items awaiting review`` (items of written work, not checks)."""
    pending = len(r.written_pending)
    waiting = f", {pending} item{'s' if pending != 1 else ''} awaiting review" if pending else ""
    return f"Written work: {fmt(r.written_score)} / {fmt(r.written_max)} recorded{waiting}"


def late_line(r: StudentResult) -> str:
    """``Late: 1 day late (...): -10%. Score 80 -> final 72. Submission time: git commit time of ...``."""
    p = r.late
    assert p is not None
    return (
        f"Late policy: {p.status}. {p.rule}. Raw score {fmt(r.total)}, penalty {fmt(p.percent)}%, "
        f"final {fmt(round(r.final, 2))}. Submission time from: {p.source}."
    )


def feedback_md(r: StudentResult, seed: int, visibility: dict[str, str] | None = None, publish: bool = False) -> str:
    """The learner's feedback: the score, every check with its points, what to fix, the written work.

    Before ``publish``, checks that are not "visible" show no score and no message, and hidden ones no row.
    """
    visibility = visibilities(visibility)
    held = withheld(r, visibility, publish)
    later = {c.number for c in held}
    lines = [
        f"# Feedback for {r.student}",
        "",
        f"**{shown_line(r, held)}** · {written_line(r)}",
        "",
        *([late_line(r), ""] if r.late is not None else []),
        f"Isolation: {r.isolation}. Graded with seed {seed} (`python -m grader --seed {seed}` replays the run).",
        "",
        "| # | Check | Points | Status |",
        "|---|---|---|---|",
    ]
    for c in r.checks:
        if c.number not in later:
            lines.append(f"| {c.number} | {c.name} | {fmt(c.score)} / {fmt(c.max_score)} | {c.status} |")
        elif visibility.get(c.number) == "after_due_date":
            lines.append(f"| {c.number} | {c.name} | – / {fmt(c.max_score)} | shown after the due date |")
    if r.notices:
        lines += ["", "## Names the grader does not read", ""]
        lines += [f"- {notice}" for notice in r.notices]
    todo = [c for c in r.checks if c.status != "passed" and c.number not in later]
    if todo:
        lines += ["", "## What to look at", ""]
        for c in todo:
            lines += [f"### {c.number} {c.name}: {fmt(c.score)} / {fmt(c.max_score)}", "", c.message, ""]
    lines += ["", "## Written work (scored by a person)", ""]
    for item in (i for i in r.manual_review if i.check not in later):
        state = "awaiting review" if item.score is None else f"{fmt(item.score)} / {fmt(item.max_score)}"
        comment = f": {item.comment}" if item.comment else ""
        lines.append(f"- {item.title} ({item.key}): {state}{comment}")
    bad = [run for run in r.runs if run.status not in ("ok", "skipped")]
    if bad:
        lines += ["", "## Runs that did not finish", ""]
        for run in bad:
            lines.append(f"- `{run.name}`: {run.status}, {run.message}")
            if run.stderr_tail.strip():
                lines += ["", "  ```", *("  " + s for s in run.stderr_tail.splitlines()[-10:]), "  ```"]
    return "\n".join(lines).rstrip() + "\n"


def results_json(
    r: StudentResult, seed: int, visibility: dict[str, str] | None = None, show_isolation: bool = True
) -> dict[str, Any]:
    """Gradescope's results.json: the total as ``score``, one test per check (with its visibility, which
    Gradescope enforces) and per written item; the overall output counts only the checks shown at once.
    ``show_isolation=False`` leaves the sandbox's isolation out of the output a learner reads (it stays in
    ``extra_data``, which only staff see): where the sandbox is weaker would tell a learner what to try."""
    visibility = visibilities(visibility)
    tests: list[dict[str, Any]] = []
    for c in r.checks:
        test = {"name": c.name, "number": c.number, "max_score": c.max_score, "output": c.message}
        if c.status != "manual":
            test |= {"score": c.score, "status": c.status}
        shown = visibility.get(c.number, "hidden")
        tests.append(test | {"output_format": "text", "visibility": shown, "tags": [c.name.split(".")[0]]})
    for n, item in enumerate((i for i in r.manual_review if not i.check), start=1):
        test = {"name": item.key, "number": f"9.{n}", "max_score": item.max_score}
        if item.score is None:
            test["output"] = f"{item.title}: awaiting review by your instructor ({fmt(item.max_score)} points)."
        else:
            test |= {"score": item.score, "status": "passed" if item.score == item.max_score else "failed"}
            test["output"] = f"{item.title}: {fmt(item.score)} / {fmt(item.max_score)}. {item.comment}".strip()
        tests.append(test | {"output_format": "text", "visibility": "visible", "tags": ["written"]})
    late = f" {late_line(r)}" if r.late is not None else ""
    return {
        "score": round(r.final, 4) if r.late is not None else r.total,
        "execution_time": round(r.seconds, 3),
        "output": (
            f"{shown_line(r, withheld(r, visibility, False))}. {written_line(r)}.{late}"
            + (f" Isolation: {r.isolation}." if show_isolation else "")
        ),
        "output_format": "md",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
        "extra_data": {"student": r.student, "seed": seed, "isolation": r.isolation, "auto_score": r.score},
    }


def gradebook_rows(results: list[StudentResult]) -> list[dict[str, Any]]:
    """One row per student and check or written item."""
    rows = []
    for r in results:
        for c in r.checks:
            rows.append({"student": r.student, **asdict(c)})
        for item in r.manual_review:
            if item.check:
                continue
            status = "pending" if item.score is None else "reviewed"
            rows.append(
                {
                    "student": r.student,
                    "name": item.key,
                    "number": "written",
                    "score": "" if item.score is None else item.score,
                    "max_score": item.max_score,
                    "status": status,
                    "message": item.comment or item.title,
                }
            )
    return rows


def gradebook_json(results: list[StudentResult], meta: dict[str, Any]) -> dict[str, Any]:
    """Everything, nested by student."""
    students = []
    for r in results:
        data = asdict(r)
        # The file keeps its names for the written work's points (manual_score, manual_max) for its readers.
        data |= {"manual_score": r.written_score, "manual_max": r.written_max, "total": r.total}
        students.append(data)
    return {**meta, "students": students}


def junit_xml(results: list[StudentResult]) -> bytes:
    """JUnit XML: a suite per student; failed checks as failures, checks awaiting a person as skipped."""
    root = ET.Element("testsuites", name="kimi-k2-grader")
    for r in results:
        failures = sum(c.status == "failed" for c in r.checks)
        skipped = sum(c.status == "manual" for c in r.checks)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=r.student,
            tests=str(len(r.checks)),
            failures=str(failures),
            skipped=str(skipped),
            errors="0",
            time=f"{r.seconds:.3f}",
        )
        props = ET.SubElement(suite, "properties")
        for key, value in (("score", r.score), ("max_score", r.max_score), ("isolation", r.isolation)):
            ET.SubElement(props, "property", name=key, value=str(value))
        for c in r.checks:
            case = ET.SubElement(suite, "testcase", classname=f"grader.{r.student}", name=f"{c.number} {c.name}")
            case.set("time", "0")
            if c.status == "failed":
                node = ET.SubElement(case, "failure", message=f"{fmt(c.score)}/{fmt(c.max_score)} points")
                node.text = c.message
            elif c.status == "manual":
                ET.SubElement(case, "skipped", message=c.message)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def penalty_cell(p: Penalty) -> str:
    """``late, -20%``, ``on time``, ``unknown: not assessed``: a penalty in a table cell."""
    if p.status == "unknown":
        return "unknown: not assessed"
    return f"{p.status}, -{fmt(p.percent)}%" if p.percent else p.status


def summary_md(results: list[StudentResult], meta: dict[str, Any]) -> str:
    """The class at a glance, for the terminal's report folder and the CI job summary; with a late policy, the
    raw total, the penalty and the final score side by side, and where each submission time came from."""
    late = any(r.late is not None for r in results)
    lines = [
        "## Grading summary",
        "",
        f"{len(results)} submission(s) graded; seed {meta['seed']}; isolation: {meta['isolation']}."
        + (
            f" {meta['kept']} of them kept from earlier runs (their seeds and times are in scores.csv)."
            if meta.get("kept")
            else ""
        ),
        "",
        "| Student | Automatic | Written (recorded) | Awaiting review | Checks not passed |"
        + (" Raw total | Late | Final | Submission time from |" if late else ""),
        "|---|---|---|---|---|" + ("---|---|---|---|" if late else ""),
    ]
    for r in results:
        missed = ", ".join(c.number for c in r.checks if c.status != "passed") or "none"
        row = (
            f"| {r.student} | {fmt(r.score)} / {fmt(r.max_score)} | {fmt(r.written_score)} / {fmt(r.written_max)} "
            f"| {len(r.pending)} | {missed} |"
        )
        if late:
            p = r.late
            penalty = "no policy applied" if p is None else penalty_cell(p)
            source = "" if p is None else p.source.replace("|", "/")
            row += f" {fmt(r.total)} | {penalty} | {fmt(round(r.final, 2))} | {source} |"
        lines.append(row)
    return "\n".join(lines) + "\n"


def similarity_md(out: Path) -> str:
    """The similarity report's section for ``summary.md`` when ``python -m grader similarity`` wrote one into
    ``out`` (its table of flagged pairs), else ""; a report that cannot be read is said, not skipped."""
    try:
        from ..similarity.records import load_report, summary_markdown
        from ..similarity.settings import JSON_FILE
    except ModuleNotFoundError:  # the student kit and the Gradescope autograder ship no similarity report
        return ""
    if not (out / JSON_FILE).is_file():
        return ""
    try:
        return summary_markdown(load_report(out))
    except UsageError as exc:
        return f"## Code similarity\n\n{exc}\n"


def manual_review_md(results: list[StudentResult]) -> str:
    """Every item waiting for a person: the rubric and the learner's answer."""
    lines = [
        "# Manual review",
        "",
        "Record scores in a TOML file (see manual-template.toml) and pass it with --manual.",
        "",
    ]
    for r in results:
        if not r.pending:
            continue
        lines += [f"## {r.student}", ""]
        for item in r.pending:
            lines += [
                f"### {item.key} ({fmt(item.max_score)} points): {item.title}",
                "",
                f"Rubric: {item.rubric}",
                "",
                *("> " + line for line in (item.answer or "(no text)").splitlines()),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def manual_template_toml(results: list[StudentResult]) -> str:
    """A scores file with one commented line per pending item, ready to fill in."""
    lines = ["# Fill in the scores and pass this file back: python -m grader --manual FILE", ""]
    for r in results:
        if not r.pending:
            continue
        lines.append(f"[{r.student}]")
        for item in r.pending:
            lines.append(f'# "{item.key}" = {{ score = 0, comment = "" }}  # out of {fmt(item.max_score)}')
        lines.append("")
    return "\n".join(lines)


SCORES_COLUMNS = ["student", "auto_score", "auto_max", "written_score", "written_max", "pending", "total", "seed",
                  "graded_at"]  # fmt: skip
LATE_COLUMNS = ["submitted_at", "submitted_source", "late_status", "late_penalty_percent", "final"]
GRADEBOOK_COLUMNS = ["student", "number", "name", "score", "max_score", "status", "message"]
LOCK = ".gradebook.lock"


@contextmanager
def export_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.gradebook.lock`` while reading the database and writing the reports: one export at a time."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def replace(path: Path, data: str | bytes) -> None:
    """Write ``path`` in one step: a reader sees the old file or the new one, never half of one."""
    part = path.with_name(f".{path.name}.{os.getpid()}.part")
    part.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    os.replace(part, path)


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    """CSV as the csv module writes it (``\\r\\n`` line ends)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def scores_rows(results: list[StudentResult]) -> tuple[list[str], list[list[Any]]]:
    """``scores.csv``: one row per student; the late columns only when a late policy has been applied."""
    late = any(r.late is not None for r in results)
    rows = []
    for r in results:
        numbers = (r.score, r.max_score, r.written_score, r.written_max, len(r.pending), r.total)
        row = [r.student, *map(fmt, numbers), r.run_seed, r.graded_at]
        if late:
            p = r.late
            row += [r.submitted_at, r.submitted_source]
            row += ["", "", fmt(r.total)] if p is None else [p.status, fmt(p.percent), fmt(round(r.final, 4))]
        rows.append(row)
    return SCORES_COLUMNS + (LATE_COLUMNS if late else []), rows


def write_all(
    results: list[StudentResult], out: Path, meta: dict[str, Any], graded: list[StudentResult] | None = None
) -> None:
    """Write every report under ``out``; append the summary to $GITHUB_STEP_SUMMARY when it is set.

    ``results`` is the class (the gradebooks, summaries and review lists cover it); ``graded``, the students
    of this run (default: all of them), also get their ``<id>/`` feedback and results.json. Callers hold
    ``export_lock`` from reading the database to here.
    """
    graded = results if graded is None else graded
    meta = meta | {"kept": len(results) - len(graded)}
    visibility = {row["number"]: row["visibility"] for row in meta["points"]}
    out.mkdir(parents=True, exist_ok=True)
    book = [[csv_cell(row[k]) for k in GRADEBOOK_COLUMNS] for row in gradebook_rows(results)]
    replace(out / "gradebook.csv", csv_text(GRADEBOOK_COLUMNS, book))
    replace(out / "scores.csv", csv_text(*scores_rows(results)))
    replace(out / "gradebook.json", json.dumps(gradebook_json(results, meta), indent=2) + "\n")
    replace(out / "junit.xml", junit_xml(results))
    similarity = similarity_md(out)
    summary = summary_md(results, meta) + (f"\n{similarity}" if similarity else "")
    replace(out / "summary.md", summary)
    replace(out / "manual-review.md", manual_review_md(results))
    replace(out / "manual-template.toml", manual_template_toml(results))
    for r in graded:
        folder = out / r.student
        folder.mkdir(exist_ok=True)
        replace(folder / "results.json", json.dumps(results_json(r, meta["seed"], visibility), indent=2) + "\n")
        replace(folder / "feedback.md", feedback_md(r, meta["seed"], visibility, meta.get("publish", False)))
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        with open(step_summary, "a", encoding="utf-8") as handle:
            handle.write(summary)
