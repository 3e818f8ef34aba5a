"""The built lesson pages: every one ran, computed its figures, and offers its downloads."""

from __future__ import annotations

import ast
import re
from html import unescape
from pathlib import Path

from docs_site import DOCS, lesson_sources
from lesson_editions import strip_solutions
from lesson_offline import REMOTE_RESOURCE

import grader
from reference import Config, count_activated_parameters, count_parameters

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp"}
_RUN_TIME = re.compile(r"Total running time of the script:\s*</strong>\s*\((\d+) minutes ([\d.]+) seconds\)")


def page(site: Path, source: Path) -> str:
    return (site / "auto_examples" / f"{source.stem}.html").read_text(encoding="utf-8")


def runs_code(source: Path, edition: str) -> bool:
    """Whether the edition's copy of ``source`` does more than import. The student copy of 06_diagram is imports
    and placeholders (its code is all answer): it runs in well under the footer's millisecond, so its
    "0 minutes 0.000 seconds" says nothing about whether it ran."""
    text = source.read_text(encoding="utf-8")
    if edition == "student":
        text = strip_solutions(text, source.suffix, str(source))
    body = ast.parse(text).body
    return any(
        not isinstance(node, ast.Import | ast.ImportFrom)
        and not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in body
    )


def test_every_lesson_page_ran(site: Path) -> None:
    """pytorch/tutorials' check: a page that never ran reports 0 minutes 0.000 seconds."""
    assert len(lesson_sources()) == 12, "the task sheet's ten pages, Kimi-K2's changes and the training page"
    assert all(runs_code(source, "instructor") for source in lesson_sources()), "every page computes something"
    for source in lesson_sources():
        html = page(site, source)
        times = _RUN_TIME.findall(html)
        assert times, f"{source.name}: no running time on the built page (did sphinx-gallery run it?)"
        if runs_code(source, site.name):
            assert "0 minutes 0.000 seconds" not in html, f"{source.name} reports 0 minutes 0.000 seconds: never ran"
            assert float(times[0][1]) > 0 or int(times[0][0]) > 0


def test_every_figure_is_computed_at_build_time(site: Path) -> None:
    """The sources hold no image at all; every image on a lesson page is one sphinx-gallery rendered."""
    stored = [
        p
        for p in DOCS.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and "_build" not in p.parts and "auto_examples" not in p.parts
    ]
    assert not stored, f"images stored in the docs sources instead of computed: {stored}"
    figures = 0
    for source in lesson_sources():
        for src in re.findall(r'<img[^>]+src="([^"]+)"', page(site, source)):
            assert Path(src).name.startswith("sphx_glr_"), f"{source.name} shows an image not drawn by its code: {src}"
            assert (site / "auto_examples" / src).resolve().is_file(), f"{source.name}: {src} is missing"
            figures += 1
    least = {"instructor": 10, "student": 6}[site.name]  # the student edition lacks the answers' figures
    assert figures >= least, f"expected at least {least} figures in the {site.name} edition, found {figures}"


def test_every_page_offers_script_and_notebook(site: Path) -> None:
    for source in lesson_sources():
        html = page(site, source)
        for suffix in (".py", ".ipynb", ".zip"):
            links = re.findall(rf'href="([^"]+{re.escape(source.stem)}{re.escape(suffix)})"', html)
            assert links, f"{source.name}: no {suffix} download link"
            assert (site / "auto_examples" / links[0]).resolve().is_file(), f"{source.name}: {links[0]} missing"


def test_code_task_1_shape_printed_at_build_time(instructor_site: Path) -> None:
    html = page(instructor_site, DOCS / "lessons" / "07_skeleton.py")
    vocab = Config.lesson().vocab_size
    assert f"skeleton, lesson config (meta): (1, 3, {vocab})" in html
    assert f"reference model, lesson config: (1, 3, {vocab})" in html


def test_sheet_corrections_are_visible(instructor_site: Path, student_site: Path) -> None:
    """Where the task sheet is wrong the page says so; corrections of a question's premise reach students too."""
    for name in ("01_components", "03_attention", "04_gqa_vs_mla", "08_configs"):
        assert "The task sheet says" in page(instructor_site, DOCS / "lessons" / f"{name}.py"), name
    for name in ("04_gqa_vs_mla", "08_configs"):
        assert "The task sheet says" in page(student_site, DOCS / "lessons" / f"{name}.py"), name


def test_points_table_matches_the_grader(site: Path) -> None:
    html = (site / "learners" / "submit.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="[^"]*points-table.*?</table>', html, re.DOTALL)
    assert table, "the learners' page has no points table"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.DOTALL)
    student = site.name == "student"
    expected = [row for row in grader.points_table() if not (student and row["visibility"] == "hidden")]
    assert len(rows) == 1 + len(expected) + 1, "header, one row per check (the student edition: none hidden), total"
    for row, check in zip(rows[1:], expected, strict=False):
        cells = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
        assert cells[0] == check["number"] and cells[1] == check["name"] and cells[-1] == f"{check['points']:g}"
        assert 'href="../auto_examples/' in row, f"{check['name']}: no link to its lesson page"
    total = re.sub(r"<[^>]+>", "", rows[-1]).split()[-1]
    assert float(total) == sum(check["points"] for check in expected)


def test_written_work_table_matches_the_grader(site: Path) -> None:
    html = (site / "learners" / "submit.html").read_text(encoding="utf-8")
    table = re.search(r'<table class="[^"]*written-table.*?</table>', html, re.DOTALL)
    assert table, "the learners' page has no table of the written work"
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0), re.DOTALL)
    expected = grader.written_table()
    assert len(rows) == 1 + len(expected) + 1, "header, one row per item, total"
    for row, item in zip(rows[1:], expected, strict=False):
        assert item["key"] in row and item["title"] in row
    total = re.sub(r"<[^>]+>", "", rows[-1]).split()[-1]
    assert float(total) == sum(item["points"] for item in expected)


def test_no_cell_marker_is_shown_as_text(site: Path) -> None:
    """A ``# %%`` right after a text block, with no code between, does not start a block: sphinx-gallery reads it
    as one more comment line of the text before it, and the page shows "%%" (02_rope did, above an answer)."""
    shown = [
        f"{source.name}: {match.group(0)!r}"
        for source in lesson_sources()
        for match in re.finditer(r"<p>\s*%%[^<]{0,40}", page(site, source))
    ]
    assert not shown, "write the two text blocks as one, or put code between them:\n" + "\n".join(shown)


def test_no_page_loads_scripts_or_styles_from_the_network(site: Path) -> None:
    """sphinx-gallery's timing pages load jQuery and DataTables from CDNs; docs/_ext/lesson_offline.py drops that."""
    remote = [
        f"{path.relative_to(site)}: {match.group(0)}"
        for path in sorted(site.rglob("*.html"))
        for match in REMOTE_RESOURCE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not remote, "pages that load a script or stylesheet from the network:\n" + "\n".join(remote)


def test_timing_pages_keep_their_table(site: Path) -> None:
    for timing in ("sg_execution_times.html", "auto_examples/sg_execution_times.html"):
        html = (site / timing).read_text(encoding="utf-8")
        assert "sg-datatable" in html, f"{timing}: the table of running times is gone"
        for source in lesson_sources():
            assert f"{source.stem}.html" in html, f"{timing}: no row for {source.name}"


def test_index_numbers_are_computed_by_reference(site: Path) -> None:
    html = (site / "index.html").read_text(encoding="utf-8")
    for count in (count_parameters(Config.kimi_k2()), count_activated_parameters(Config.kimi_k2())):
        assert f"{count:,}" in html, f"index.html does not show {count:,}, computed by reference"


def printed_outputs(html: str) -> list[str]:
    """The text each code block of a gallery page printed, in page order."""
    return re.findall(r'<div class="sphx-glr-script-out[^"]*"><div class="highlight"><pre>(.*?)</pre>', html, re.DOTALL)


def test_training_page_is_reproducible(instructor_site: Path, student_site: Path) -> None:
    """The two editions train the page's models in two separate runs: seeded and single-threaded, they print alike."""
    source = DOCS / "lessons" / "12_training.py"
    instructor, student = printed_outputs(page(instructor_site, source)), printed_outputs(page(student_site, source))
    assert len(instructor) >= 6, "the training page printed less than its six printing sections do"
    assert instructor == student, "the training page printed different numbers in the two editions: not deterministic"
    text = "\n".join(instructor)
    for verdict in ("Without balancing, routing", "With the bias update", "With the auxiliary loss", "Post-norm"):
        assert verdict in text, f"the training page never printed its sentence starting {verdict!r}"
    # Its findings are sentences: printed on one line each, they ran off the output block, behind a sideways scroll.
    long = [line for line in unescape(re.sub(r"<[^>]+>", "", text)).splitlines() if len(line) > 88]
    assert not long, "lines wider than an output block (print them with say()):\n" + "\n".join(long)
