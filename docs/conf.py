"""Sphinx configuration of the lesson site (both editions).

Build through ``nox -s docs`` (both editions, then the tests of the built site) or
``python docs/_ext/lesson_editions.py instructor|student``. The student edition is
built from a stripped copy of this folder that holds a ``STUDENT_EDITION`` file; see
``docs/_ext/lesson_editions.py``.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

STUDENT = (HERE / "STUDENT_EDITION").exists()
EDITION = "student" if STUDENT else "instructor"
if STUDENT:
    tags.add("student")  # noqa: F821 -- Sphinx injects ``tags`` into this namespace

project = "Lesson 1.2: the Kimi-K2 architecture"
author = "The course team"
copyright = "2026, the course team"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinx-mathjax-offline",  # MathJax 3 copied into _static: the math renders from file:// with no network
    "sphinx_copybutton",
    "sphinx_gallery.gen_gallery",
    "lesson_freshness",
    "lesson_points",
    "lesson_numbers",
    "lesson_offline",
    "lesson_similarity",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "_ext", "lessons", "STUDENT_EDITION", "**/__pycache__"]

myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

html_theme = "furo"
html_title = f"Kimi-K2 lesson ({EDITION} edition)"
html_static_path = ["_static"]
html_css_files = ["lesson.css"]
html_theme_options = {
    "announcement": (
        "Student edition: the questions and the reference material, without the answers."
        if STUDENT
        else "Instructor edition: every answer is shown. Give learners the student edition."
    ),
}
# The student edition must not ship its sources: _sources/ would be one more place for text to hide.
html_copy_source = not STUDENT
html_show_sourcelink = not STUDENT

copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True

# Every value is a string or a tuple of strings: a function object here makes Sphinx 9
# warn that the config cannot be cached, which fails a -W build.
sphinx_gallery_conf = {
    "examples_dirs": "lessons",
    "gallery_dirs": "auto_examples",
    # Every page runs (not just plot_*): the pages are numbered 01_..., 02_... and sorted by name.
    "filename_pattern": re.escape(os.sep) + r"\d\d_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": True,
    "remove_config_comments": True,
    "abort_on_example_error": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "capture_repr": (),
    "show_memory": False,
    "min_reported_time": 0,
    "write_computation_times": True,
}
