"""The ``lesson-number`` role: a number in prose, computed by ``reference`` while the site builds.

The gallery pages print what they compute; a Markdown page has no code to run, so its numbers
come from this role instead: ``{lesson-number}`kimi_k2.total``` becomes the parameter count of
``Config.kimi_k2()`` (:func:`reference.count_parameters`, with thousands separators) at build time. The names a page may
use are the keys of :data:`NUMBERS`; an unknown name fails the build (``-W``) and the message lists
the known ones. Pages that use the role are rebuilt whenever a file of ``reference`` changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxRole

import reference
from reference import Config, count_activated_parameters, count_parameters


def _billions(count: int) -> str:
    return f"{count / 1e9:.1f} billion"


def _trillions(count: int) -> str:
    return f"{count / 1e12:.2f} trillion"


#: name -> the function that computes its text.
NUMBERS: dict[str, Callable[[], str]] = {
    "kimi_k2.total": lambda: f"{count_parameters(Config.kimi_k2()):,}",
    "kimi_k2.total_rounded": lambda: _trillions(count_parameters(Config.kimi_k2())),
    "kimi_k2.activated": lambda: f"{count_activated_parameters(Config.kimi_k2()):,}",
    "kimi_k2.activated_rounded": lambda: _billions(count_activated_parameters(Config.kimi_k2())),
}


class LessonNumber(SphinxRole):
    """``{lesson-number}`name```: the text of ``NUMBERS[name]()``."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        for path in sorted(Path(reference.__file__).resolve().parent.glob("*.py")):
            self.env.note_dependency(str(path))
        name = self.text.strip()
        if name not in NUMBERS:
            message = self.inliner.reporter.error(
                f"lesson-number: unknown name {name!r}; known: {', '.join(sorted(NUMBERS))} "
                "(add a new one to NUMBERS in docs/_ext/lesson_numbers.py)",
                line=self.lineno,
            )
            return [self.inliner.problematic(self.rawtext, self.rawtext, message)], [message]
        return [nodes.inline(self.rawtext, NUMBERS[name](), classes=["lesson-number"])], []


def setup(app: Sphinx) -> dict[str, object]:
    app.add_role("lesson-number", LessonNumber())
    return {"parallel_read_safe": True, "parallel_write_safe": True}
