"""The ``points-table`` directive: the grader's checks and their points, as the grader reports them.

The table is generated at build time from :func:`grader.points_table`, so the page can
never disagree with what ``nox -s grade`` awards. The page is re-read whenever a file of
the ``grader`` package changes.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

COLUMNS = (
    ("number", "#", 6),
    ("name", "Check", 24),
    ("what", "What it checks", 46),
    ("docs", "Read", 16),
    ("points", "Points", 8),
)


def _format_points(value: float) -> str:
    return f"{value:g}"


class PointsTable(SphinxDirective):
    """Render ``grader.points_table()`` as a table with a total row."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        try:
            import grader
        except ImportError as error:
            raise ExtensionError(
                f"points-table needs the grader package ({error}); install the project "
                "(`pip install -e .`) or build through `nox -s docs`."
            ) from error
        rows = grader.points_table()
        for index, row in enumerate(rows):
            missing = {key for key, *_ in COLUMNS} - set(row)
            if missing:
                raise ExtensionError(f"grader.points_table() row {index} lacks {sorted(missing)}: {row!r}")
        for path in sorted(Path(grader.__file__).resolve().parent.glob("*")):
            if path.is_file():
                self.env.note_dependency(str(path))

        table = nodes.table(classes=["points-table"])
        group = nodes.tgroup(cols=len(COLUMNS))
        table += group
        for *_, width in COLUMNS:
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += self._row([title for _, title, _ in COLUMNS])
        group += head
        body = nodes.tbody()
        for row in rows:
            cells = [str(row["number"]), str(row["name"]), str(row["what"]), self._page(row["docs"])]
            body += self._row([*cells, _format_points(row["points"])])
        total = sum(float(row["points"]) for row in rows)
        body += self._row(["", "Total", "", "", _format_points(total)], strong=True)
        group += body
        return [table]

    def _page(self, html_path: str) -> nodes.Node:
        """A cross-reference to the page the grader names (``auto_examples/05_moe.html``).

        A resolved ``doc`` reference, so a page the grader names but the site lacks fails the
        ``-W`` build instead of shipping a dead link.
        """
        target = "/" + html_path.removesuffix(".html")
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

    @staticmethod
    def _row(cells: list[str | nodes.Node], *, strong: bool = False) -> nodes.row:
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


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("points-table", PointsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
