"""Two directives that show the grader's points as the grader itself reports them.

``points-table``: the automatic checks, from :func:`grader.points_table` (number, name, what it
checks, the lesson page that explains it, when a learner sees its result, points; the student edition
leaves out the hidden checks). ``written-table``: the written work a person
scores, from :func:`grader.written_table` (answers key, title, points). Both end with a total row,
are generated at build time, so the site cannot disagree with ``nox -s grade``, and are re-read
whenever a file of the ``grader`` package changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

Cell = str | nodes.Node


def _format_points(value: float) -> str:
    return f"{value:g}"


class GraderTable(SphinxDirective):
    """A table of rows returned by a function of the ``grader`` package."""

    has_content = False
    source = ""  # name of the grader function
    columns: tuple[tuple[str, str, int], ...] = ()  # (key, heading, relative width)

    def run(self) -> list[nodes.Node]:
        try:
            import grader
        except ImportError as error:
            raise ExtensionError(
                f"{self.name} needs the grader package ({error}); install the project "
                "(`pip install -e .`) or build through `nox -s docs`."
            ) from error
        rows = [row for row in getattr(grader, self.source)() if self.shown(row)]
        for index, row in enumerate(rows):
            missing = {key for key, *_ in self.columns} - set(row)
            if missing:
                raise ExtensionError(f"grader.{self.source}() row {index} lacks {sorted(missing)}: {row!r}")
        for path in sorted(Path(grader.__file__).resolve().parent.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                self.env.note_dependency(str(path))

        # colwidths-given: Sphinx then writes the relative widths below, which lesson.css's fixed layout keeps
        table = nodes.table(classes=["points-table", self.name, "colwidths-given"])
        group = nodes.tgroup(cols=len(self.columns))
        table += group
        for *_, width in self.columns:
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += self._row([heading for _, heading, _ in self.columns])
        group += head
        body = nodes.tbody()
        for row in rows:
            body += self._row([self.cell(key, row[key]) for key, _, _ in self.columns])
        total = sum(float(row["points"]) for row in rows)
        body += self._row(["Total", *[""] * (len(self.columns) - 2), _format_points(total)], strong=True)
        group += body
        return [table]

    def cell(self, key: str, value: Any) -> Cell:
        return _format_points(value) if key == "points" else str(value)

    def shown(self, row: dict[str, Any]) -> bool:
        """Whether this edition lists the row: the student edition has no hidden check."""
        student = (Path(self.env.srcdir) / "STUDENT_EDITION").exists()  # as conf.py tells the editions apart
        return not (row.get("visibility") == "hidden" and student)

    @staticmethod
    def _row(cells: list[Cell], *, strong: bool = False) -> nodes.row:
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            paragraph = nodes.paragraph()
            if isinstance(cell, nodes.Node):
                paragraph += cell
            else:
                paragraph += nodes.strong(text=cell) if strong else nodes.Text(cell)
            entry += paragraph
            row += entry
        return row


class PointsTable(GraderTable):
    """``grader.points_table()``: the automatic checks."""

    source = "points_table"
    columns = (
        ("number", "#", 6),
        ("name", "Check", 26),
        ("what", "What it checks", 32),
        ("docs", "Read", 16),
        ("visibility", "Result shown", 11),
        ("points", "Points", 9),
    )
    when: ClassVar[dict[str, str]] = {"visible": "at once", "after_due_date": "after the due date", "hidden": "never"}

    def cell(self, key: str, value: Any) -> Cell:
        """The ``docs`` column becomes a cross-reference to the lesson page the grader names.

        A resolved ``doc`` reference: a page the grader names but the site lacks fails the ``-W``
        build instead of shipping a dead link.
        """
        if key == "visibility":
            return self.when[value]
        if key != "docs":
            return super().cell(key, value)
        target = "/" + str(value).removesuffix(".html")
        xref = pending_xref(
            "",
            refdomain="std",
            reftype="doc",
            reftarget=target,
            refexplicit=False,
            refdoc=self.env.docname,
            refwarn=True,
        )
        xref += nodes.inline(text=target, classes=["xref", "std", "std-doc"])
        return xref


class WrittenTable(GraderTable):
    """``grader.written_table()``: the written work a person scores."""

    source = "written_table"
    columns = (("key", "Key in answers.toml (or file)", 30), ("title", "Work", 50), ("points", "Points", 8))


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("points-table", PointsTable)
    app.add_directive("written-table", WrittenTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
