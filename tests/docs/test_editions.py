"""The student edition holds no answer: not in its pages, downloads, notebooks, zips or search index.

The answers are found in the sources independently of the build's own stripping code: every
region between SOLUTION markers, in every lesson page and Markdown page. A line of a region is
*distinctive* when it is long enough and appears nowhere outside the answer regions; each region
must have such a line that the instructor edition shows (so this test can see answers at all),
and none of them may appear anywhere in the student edition.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from docs_corpus import site_corpus, squash
from docs_site import DOCS, ROOT, lesson_sources

from grader.release.scan import outside_regions
from reference import Config, count_parameters

# Markers: '# BEGIN SOLUTION' (or '# .. BEGIN SOLUTION') in lesson pages, '% BEGIN SOLUTION' in Markdown.
BEGIN = {".py": re.compile(r"^\s*#\s*(\.\.\s+)?BEGIN SOLUTION\s*$"), ".md": re.compile(r"^\s*%\s*BEGIN SOLUTION\s*$")}
END = {".py": re.compile(r"^\s*#\s*(\.\.\s+)?END SOLUTION\s*$"), ".md": re.compile(r"^\s*%\s*END SOLUTION\s*$")}
# Syntax that the rendered page does not show verbatim: comment leaders, reST directive heads.
_COMMENT = re.compile(r"^\s*#\s?")
_MARKUP = re.compile(r"^\s*\.\. [a-z-]+::|^\s*:[a-z-]+:|:[a-z]+:`~?|[`*]")


def plain(line: str) -> str:
    """A source line as a reader sees it: squashed, without comment leaders and reST markup."""
    return squash(_MARKUP.sub("", _COMMENT.sub("", line)))


MIN_LENGTH = 20
INSTRUCTOR_ONLY = (
    "instructors/class.html",
    "instructors/grading.html",
    "instructors/records.html",
    "instructors/integrity.html",
    "instructors/ci.html",
    "threat-model.html",
    "api/grader.html",
)


def answer_regions() -> list[tuple[str, list[str]]]:
    """(where, lines) of every SOLUTION region of the sources, marker lines excluded."""
    regions = []
    sources = [*lesson_sources(), *sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)]
    for path in sources:
        lines = path.read_text(encoding="utf-8").splitlines()
        start = None
        for number, line in enumerate(lines):
            if BEGIN[path.suffix].match(line):
                start = number
            elif END[path.suffix].match(line):
                assert start is not None, f"{path}:{number + 1}: END SOLUTION without BEGIN"
                regions.append((f"{path.relative_to(DOCS)}:{start + 1}", lines[start + 1 : number]))
                start = None
    return regions


def outside_answers() -> str:
    """Squashed text that is not an answer: the sources with their answer regions cut out, and the
    ``reference`` package (its docstrings are the API pages). Joined without separators, so a
    phrase that wraps differently in two places still matches."""
    kept = []
    for path in [*lesson_sources(), *DOCS.rglob("*.md")]:
        if "_build" in path.parts:
            continue
        kept.extend(plain(line) for line in outside_regions(path))
    for path in sorted((ROOT / "reference").glob("*.py")):
        kept.extend(plain(line) for line in path.read_text(encoding="utf-8").splitlines())
    return "".join(kept)


def distinctive(lines: list[str], elsewhere: str) -> list[str]:
    candidates = (plain(line) for line in lines)
    return [c for c in candidates if len(c) >= MIN_LENGTH and c not in elsewhere]


@pytest.fixture(scope="module")
def corpora(instructor_site: Path, student_site: Path) -> tuple[dict[str, str], dict[str, str]]:
    return site_corpus(instructor_site), site_corpus(student_site)


def test_sources_have_answer_regions() -> None:
    regions = answer_regions()
    assert len(regions) >= 15, f"expected answers on every lesson page, found {len(regions)} regions"
    pages = {where.split(":")[0] for where, _ in regions}
    for path in lesson_sources():
        assert any(p.endswith(path.name) for p in pages), f"{path.name} has no SOLUTION region"


def test_no_answer_text_in_the_student_edition(corpora: tuple[dict[str, str], dict[str, str]]) -> None:
    instructor, student = corpora
    elsewhere = outside_answers()
    instructor_text, leaks, unseen = "\n".join(instructor.values()), [], []
    for where, lines in answer_regions():
        marks = distinctive(lines, elsewhere)
        if where.startswith("lessons/") and not any(mark in instructor_text for mark in marks):
            unseen.append(where)  # a lesson answer this test cannot see is an answer it cannot check
        for mark in marks:
            leaks.extend(f"{where}: {mark!r} in {file}" for file, text in student.items() if mark in text)
    assert not unseen, f"answer regions with no distinctive line visible in the instructor edition: {unseen}"
    assert not leaks, "answer text reached the student edition:\n" + "\n".join(leaks[:20])


def test_the_graded_numbers_are_only_in_the_instructor_edition(
    corpora: tuple[dict[str, str], dict[str, str]],
) -> None:
    instructor, student = corpora
    lesson_total = str(count_parameters(Config.lesson()))  # Code Task 3's answer, graded as lesson_total
    assert any(lesson_total in text for text in instructor.values()), "the instructor edition lacks Code Task 3's count"
    assert not [f for f, text in student.items() if lesson_total in text], (
        "the student edition shows Code Task 3's count"
    )


def test_student_edition_has_placeholders_and_no_sources(student_site: Path) -> None:
    page = (student_site / "auto_examples" / "09_quiz.html").read_text(encoding="utf-8")
    assert "The worked answer is in the instructor edition" in page
    copied = (
        [p for p in (student_site / "_sources").rglob("*") if p.is_file()]
        if (student_site / "_sources").exists()
        else []
    )
    assert not copied, f"the student edition ships its sources: {copied[:5]}"


@pytest.mark.parametrize("page", INSTRUCTOR_ONLY)
def test_instructor_pages_only_in_the_instructor_edition(instructor_site: Path, student_site: Path, page: str) -> None:
    assert (instructor_site / page).is_file(), f"{page} missing from the instructor edition"
    assert not (student_site / page).exists(), f"{page} is in the student edition"


def test_student_edition_documents_no_grader_code(student_site: Path) -> None:
    assert not (student_site / "_modules" / "grader").exists()
    assert "grader.sandbox" not in (student_site / "searchindex.js").read_text(encoding="utf-8")
