"""The two editions of the lesson site, and the command that builds them.

The instructor edition is built from ``docs/`` as it is. The student edition is built
from a copy of ``docs/`` in which every answer has been cut out *before* Sphinx sees
it, so no answer can reach the HTML, the downloadable ``.py``/``.ipynb``/zip files
or the search index: hiding text in the HTML (toggles, ``only`` directives) would
leave it in those downloads.

Answers are marked in the sources, the nbgrader/otter way:

* gallery pages (``docs/lessons/*.py``): a line ``# BEGIN SOLUTION`` ... ``# END SOLUTION``
  around code, or ``# .. BEGIN SOLUTION`` ... ``# .. END SOLUTION`` inside a text
  block (a reST comment there, so the instructor edition does not show the marker);
* Markdown pages: ``% BEGIN SOLUTION`` ... ``% END SOLUTION`` (MyST comments).

Pages listed in :data:`INSTRUCTOR_ONLY` are left out of the student copy altogether.

Lesson pages show the reference's own functions with ``literalinclude`` and a path relative to the
page, ``../../reference/<module>.py``. The student copy sits two folders below ``docs/``, so the
same path leads there to :data:`REFERENCE_MIRROR`, a copy of ``reference/*.py`` refreshed before
every student build (the reference is no answer: both editions document it in full).

Command line (what ``nox -s docs``, the benchmark and CI run)::

    python docs/_ext/lesson_editions.py instructor|student [--fresh]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent
BUILD = DOCS / "_build"
STUDENT_SRC = BUILD / "student-src"
REFERENCE = DOCS.parent / "reference"
#: Where ``../../reference/`` leads from ``student-src/auto_examples/<page>`` (see the module docstring).
REFERENCE_MIRROR = STUDENT_SRC.parent / "reference"
#: Written into the student copy; ``conf.py`` reads the edition from its presence.
STUDENT_MARKER = "STUDENT_EDITION"
#: Files and folders (relative to ``docs/``) that only the instructor edition has.
INSTRUCTOR_ONLY = ("instructors", "threat-model.md", "api/grader.md")
#: What a build writes into its source folder: never copied, never deleted by the sync.
GENERATED = ("_build", "auto_examples", "generated", "sg_execution_times.rst", "__pycache__")

_MARKER = {
    ".py": re.compile(r"^(?P<indent>[ \t]*)#[ \t]*(?P<rest>\.\.[ \t]+)?(?P<kind>BEGIN|END) SOLUTION[ \t]*$"),
    ".md": re.compile(r"^(?P<indent>[ \t]*)%[ \t]*(?P<rest>)(?P<kind>BEGIN|END) SOLUTION[ \t]*$"),
}
# A line that looks like a marker but is not exactly one (typo, lower case, plural):
# refusing it beats silently leaking the answer it was meant to fence.
_NEAR_MISS = {
    suffix: re.compile(rf"^\s*{comment}.*\b(begin|end)\b.*\bsolutions?\b", re.IGNORECASE)
    for suffix, comment in ((".py", "#"), (".md", "%"))
}

_PLACEHOLDER = {
    (".py", True): "{indent}# .. note:: Your answer goes here. The worked answer is in the instructor edition.",
    (".py", False): "{indent}# Your code goes here. The worked solution is in the instructor edition.",
    (".md", False): "{indent}% (answer removed: student edition)",
}


class MarkerError(ValueError):
    """A SOLUTION marker is unbalanced, nested or malformed."""


def solution_regions(text: str, suffix: str, where: str) -> list[tuple[int, int]]:
    """The ``(begin, end)`` line indices (0-based, both marker lines) of every answer.

    Raises :class:`MarkerError` naming the file and line for an END without BEGIN, a
    BEGIN without END, a nested BEGIN, or a line that resembles a marker but is not one.
    """
    pattern = _MARKER[suffix]
    regions: list[tuple[int, int]] = []
    start: int | None = None
    for number, line in enumerate(text.splitlines()):
        match = pattern.match(line)
        if match is None:
            if _NEAR_MISS[suffix].match(line):
                raise MarkerError(
                    f"{where}:{number + 1}: {line.strip()!r} looks like a SOLUTION marker but is not one; "
                    f"write exactly '# BEGIN SOLUTION' / '# END SOLUTION' (or '# .. BEGIN SOLUTION' in a "
                    f"text block, '% BEGIN SOLUTION' in Markdown)."
                )
            continue
        if match["kind"] == "BEGIN":
            if start is not None:
                raise MarkerError(f"{where}:{number + 1}: BEGIN SOLUTION inside the one opened at line {start + 1}")
            start = number
        else:
            if start is None:
                raise MarkerError(f"{where}:{number + 1}: END SOLUTION without a BEGIN SOLUTION before it")
            regions.append((start, number))
            start = None
    if start is not None:
        raise MarkerError(f"{where}:{start + 1}: BEGIN SOLUTION is never closed by an END SOLUTION")
    return regions


def strip_solutions(text: str, suffix: str, where: str) -> str:
    """``text`` with every answer region replaced by a one-line placeholder of the same indentation."""
    lines = text.splitlines()
    regions = solution_regions(text, suffix, where)
    for begin, end in reversed(regions):
        match = _MARKER[suffix].match(lines[begin])
        assert match is not None  # solution_regions matched this very line
        in_text_block = bool(match["rest"])
        template = _PLACEHOLDER[(suffix, in_text_block and suffix == ".py")]
        lines[begin : end + 1] = [template.format(indent=match["indent"])]
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def check_markers(docs: Path = DOCS) -> int:
    """Validate the markers of every source page; return how many answer regions there are."""
    return sum(
        len(solution_regions(path.read_text(encoding="utf-8"), path.suffix, str(path)))
        for path in _marked_sources(docs)
    )


def _marked_sources(docs: Path) -> list[Path]:
    """Pages that may carry answers: the gallery sources and the Markdown prose."""
    return sorted(path for path in [*docs.glob("lessons/*.py"), *docs.rglob("*.md")] if not _is_generated(path, docs))


def _is_generated(path: Path, docs: Path) -> bool:
    return any(part in GENERATED for part in path.relative_to(docs).parts)


def _is_instructor_only(relative: Path) -> bool:
    return any(relative == Path(p) or Path(p) in relative.parents for p in INSTRUCTOR_ONLY)


def make_student_tree(docs: Path = DOCS, target: Path = STUDENT_SRC) -> Path:
    """Mirror ``docs`` into ``target`` without answers and instructor-only pages.

    A file is rewritten only when its content changes, so Sphinx and sphinx-gallery
    (whose cache is keyed on file content and time) see an unchanged tree as unchanged,
    and a rebuild with nothing changed stays fast. Files that disappeared from ``docs``
    are removed from ``target``; what the build generated there is kept.
    """
    target.mkdir(parents=True, exist_ok=True)
    wanted: set[Path] = set()
    for path in sorted(docs.rglob("*")):
        relative = path.relative_to(docs)
        if path.is_dir() or _is_generated(path, docs) or _is_instructor_only(relative):
            continue
        if path.suffix in _MARKER and (relative.parts[0] == "lessons" or path.suffix == ".md"):
            data = strip_solutions(path.read_text(encoding="utf-8"), path.suffix, str(path)).encode()
        else:
            data = path.read_bytes()
        _write_if_changed(target / relative, data)
        wanted.add(relative)
    _write_if_changed(target / STUDENT_MARKER, b"Built by docs/_ext/lesson_editions.py: do not edit.\n")
    wanted.add(Path(STUDENT_MARKER))
    for path in sorted(target.rglob("*"), reverse=True):
        relative = path.relative_to(target)
        if _is_generated(path, target):
            continue
        if path.is_file() and relative not in wanted:
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    return target


def mirror_reference(source: Path = REFERENCE, target: Path = REFERENCE_MIRROR) -> Path:
    """Copy ``source/*.py`` into ``target`` (changed files only) and remove files gone from ``source``."""
    target.mkdir(parents=True, exist_ok=True)
    wanted = {path.name for path in source.glob("*.py")}
    for name in sorted(wanted):
        _write_if_changed(target / name, (source / name).read_bytes())
    for path in target.iterdir():
        if path.is_file() and path.name not in wanted:
            path.unlink()
    return target


def _write_if_changed(path: Path, data: bytes) -> None:
    if path.is_file() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def build(edition: str, *, fresh: bool = False, extra: list[str] | None = None) -> int:
    """Build one edition into ``docs/_build/html/<edition>`` with warnings as errors.

    ``fresh`` removes the previous output, doctrees and executed gallery first, so every
    page runs again (what the benchmark's full build measures).
    """
    source = DOCS if edition == "instructor" else STUDENT_SRC
    out, doctrees = BUILD / "html" / edition, BUILD / "doctrees" / edition
    if fresh:
        for path in (out, doctrees, source / "auto_examples", source / "sg_execution_times.rst"):
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    if edition == "student":
        make_student_tree(DOCS, STUDENT_SRC)
        mirror_reference()
    else:
        check_markers(DOCS)
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-d", str(doctrees)]
    return subprocess.call([*command, *(extra or []), str(source), str(out)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build one edition of the lesson site.")
    parser.add_argument("edition", choices=("instructor", "student"))
    parser.add_argument("--fresh", action="store_true", help="discard the previous build and re-run every page")
    args, extra = parser.parse_known_args(argv)
    try:
        return build(args.edition, fresh=args.fresh, extra=extra)
    except MarkerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
