"""``similarity-calibration``: the similarity report's defaults and what it finds on the kit's own examples.

A table of every pair of the repository's independently written submissions (the two examples and two fixtures),
computed by :func:`grader.similarity.report` when the site builds, with the threshold in force, so the page that
explains the threshold cannot disagree with the tool. Re-read whenever a file of ``grader.similarity`` changes.
"""

from __future__ import annotations

from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util.docutils import SphinxDirective

EXAMPLES = (
    "submissions/alice",
    "submissions/bob",
    "tests/fixtures/submissions/full",
    "tests/fixtures/similarity/independent",
)
HEADINGS = ("Pair (first and second)", "First's code found in second", "Second's code found in first", "In common")


def _row(cells: list[str], *, head: bool = False) -> nodes.row:
    row = nodes.row()
    for text in cells:
        entry = nodes.entry()
        entry += nodes.paragraph("", "", nodes.strong(text=text) if head else nodes.Text(text))
        row += entry
    return row


class SimilarityCalibration(SphinxDirective):
    """The pairs of the kit's examples, their shares, and the rule in force."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        try:
            import grader.similarity as similarity
            from grader.similarity import settings
        except ImportError as error:
            raise ExtensionError(
                f"similarity-calibration needs the grader with its similarity extra ({error}); "
                "build through `nox -s docs`."
            ) from error
        repo = Path(similarity.__file__).resolve().parents[2]
        folders = [repo / example for example in EXAMPLES]
        comparison, _ = similarity.report(folders, template=repo / settings.DEFAULT_TEMPLATE)
        for path in sorted(Path(similarity.__file__).parent.glob("*.py")):
            self.env.note_dependency(str(path))
        where = nodes.paragraph(text="The submissions: " + "; ".join(f"{Path(e).name} is {e}/" for e in EXAMPLES) + ".")
        table = nodes.table(classes=["similarity-calibration"])
        group = nodes.tgroup(cols=len(HEADINGS))
        table += group
        for width in (34, 22, 22, 14):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += _row(list(HEADINGS), head=True)
        group += head
        body = nodes.tbody()
        for p in comparison.pairs:
            if p.flagged:
                raise ExtensionError(f"similarity-calibration: independent examples {p.a} and {p.b} are flagged.")
            shares = [f"{p.similarity_a:.0%}", f"{p.similarity_b:.0%}", f"{p.token_overlap:,} tokens"]
            body += _row([f"{p.a} and {p.b}", *shares])
        group += body
        rule = nodes.paragraph(
            text=(
                f"Threshold in force: a pair is flagged when at least {comparison.threshold:.0%} of either one's code "
                f"is found in the other and they share at least {comparison.min_overlap} tokens; matches shorter "
                f"than {comparison.noise} tokens do not count. The largest share between these independent "
                f"solutions is {comparison.pairs[0].top:.0%}."
            )
        )
        return [where, table, rule]


def setup(app: Sphinx) -> dict[str, object]:
    app.add_directive("similarity-calibration", SimilarityCalibration)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
