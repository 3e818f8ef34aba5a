"""The SOLUTION markers and the student copy of docs/ (docs/_ext/lesson_editions.py)."""

from __future__ import annotations

import os
from pathlib import Path

import lesson_editions as editions
import pytest
from docs_site import DOCS

PAGE = """\
r'''Title'''

import torch

# %%
# .. BEGIN SOLUTION
#
# .. admonition:: Answer
#
#    The secret text.
#
# .. END SOLUTION

    # BEGIN SOLUTION
    answer = 42
    # END SOLUTION
print("kept")
"""


def test_regions_are_found_with_their_lines() -> None:
    assert editions.solution_regions(PAGE, ".py", "page.py") == [(5, 11), (13, 15)]


def test_strip_replaces_each_region_by_one_placeholder_line() -> None:
    stripped = editions.strip_solutions(PAGE, ".py", "page.py")
    assert "secret" not in stripped and "42" not in stripped and "SOLUTION" not in stripped
    assert "# .. note:: Your answer goes here." in stripped  # a text block keeps a reST note
    assert "\n    # Your code goes here." in stripped  # code keeps its indentation
    assert stripped.endswith('print("kept")\n')
    compile(stripped, "page.py", "exec")


def test_markdown_markers() -> None:
    text = "a\n% BEGIN SOLUTION\nhidden\n% END SOLUTION\nb\n"
    assert editions.strip_solutions(text, ".md", "page.md") == "a\n% (answer removed: student edition)\nb\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("# BEGIN SOLUTION\nx = 1\n", "page.py:1: BEGIN SOLUTION is never closed"),
        ("x = 1\n# END SOLUTION\n", "page.py:2: END SOLUTION without a BEGIN"),
        (
            "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
            "page.py:2: BEGIN SOLUTION inside the one opened at line 1",
        ),
        ("# Begin solution\nx = 1\n# END SOLUTION\n", "page.py:1: '# Begin solution' looks like a SOLUTION marker"),
        ("# BEGIN SOLUTIONS\n", "page.py:1: '# BEGIN SOLUTIONS' looks like a SOLUTION marker"),
    ],
)
def test_bad_markers_stop_the_build_with_the_place(text: str, message: str) -> None:
    with pytest.raises(editions.MarkerError, match=message.replace("(", r"\(")):
        editions.strip_solutions(text, ".py", "page.py")


def test_the_lesson_sources_have_valid_markers() -> None:
    assert editions.check_markers(DOCS) >= 15


def test_student_tree_leaves_out_answers_and_instructor_pages(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "lessons").mkdir(parents=True)
    (docs / "instructors").mkdir()
    (docs / "lessons" / "01_x.py").write_text(PAGE)
    (docs / "index.md").write_text("# Home\n% BEGIN SOLUTION\ninstructors/grading\n% END SOLUTION\n")
    (docs / "instructors" / "grading.md").write_text("# Grading\n")
    (docs / "threat-model.md").write_text("# Threats\n")
    (docs / "auto_examples").mkdir()
    (docs / "auto_examples" / "generated.rst").write_text("generated\n")
    target = tmp_path / "student"
    editions.make_student_tree(docs, target)
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == ["STUDENT_EDITION", "index.md", "lessons/01_x.py"]
    assert "secret" not in (target / "lessons" / "01_x.py").read_text()
    assert "instructors/grading" not in (target / "index.md").read_text()


def test_student_tree_sync_rewrites_only_what_changed(tmp_path: Path) -> None:
    docs, target = tmp_path / "docs", tmp_path / "student"
    (docs / "lessons").mkdir(parents=True)
    (docs / "lessons" / "01_x.py").write_text(PAGE)
    (docs / "page.md").write_text("# Page\n")
    editions.make_student_tree(docs, target)
    os.utime(target / "lessons" / "01_x.py", (1, 1))
    (docs / "page.md").write_text("# Page, edited\n")
    (docs / "gone.md").write_text("# Gone\n")
    editions.make_student_tree(docs, target)
    assert (target / "lessons" / "01_x.py").stat().st_mtime == 1, "an unchanged page was rewritten"
    assert (target / "page.md").read_text() == "# Page, edited\n"
    (docs / "gone.md").unlink()
    editions.make_student_tree(docs, target)
    assert not (target / "gone.md").exists()
