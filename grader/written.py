"""The written work: the pieces a person scores, each worth ``WRITTEN_POINTS`` beside the 100 automatic points.

The theory texts and the advanced task's summary (answers.toml ``[theory]``, ``[advanced] mla``) and the
diagram file are not checked automatically: each becomes a review item with its rubric
(``grader.rubrics``), scored later from the instructor's manual scores (``grader.manual``). An empty answer
(the template's "..." or a TODO) is scored 0 at once instead of being queued; an answer found only under a
misspelled name goes to the person with a note, instead of scoring 0.
"""

from __future__ import annotations

import re

from .feedback import toml_type
from .names import diagram_hint, misnamed_answer
from .results import ManualItem
from .rubrics import WRITTEN_RUBRICS
from .submission import Submission

WRITTEN_POINTS = 5.0
PLACEHOLDERS = re.compile(r"\s*(\.\.\.|…|todo\b.*|tbd|n/?a|-)?\s*", re.I)

WRITTEN = {
    "theory.components": "Theory 1: the components",
    "theory.rmsnorm": "Theory 1: RMSNorm against LayerNorm",
    "theory.rope": "Theory 2: RoPE",
    "theory.gqa": "Theory 2: GQA",
    "theory.moe": "Theory 2: MoE against dense",
    "theory.attention_formula": "Mathematical task: the attention formula",
    "advanced.mla": "Advanced task: MLA against GQA",
    "diagram": "Code Task 2: the diagram",
}


def is_placeholder(text: str) -> bool:
    """An empty answer, or the template's "..." / TODO."""
    return PLACEHOLDERS.fullmatch(text) is not None


def unreadable(error: str) -> str:
    """What is wrong with answers.toml, the first clause of its message (``answers.toml is not valid TOML``):
    the written items say it themselves, since the checks that give the whole message may be withheld (the
    quiz's, until the due date)."""
    return re.split(r": |; ", error, maxsplit=1)[0].removesuffix(".")


def written_table() -> list[dict[str, object]]:
    """The written work a person scores (key, title, points), beside the 100 automatic points, for the docs."""
    return [{"key": key, "title": title, "points": WRITTEN_POINTS} for key, title in WRITTEN.items()]


def written_items(sub: Submission) -> list[ManualItem]:
    """The written work of one submission, each with its rubric; unanswered items are scored 0 right away."""
    items = []
    for key, title in WRITTEN.items():
        item = ManualItem(key, title, WRITTEN_POINTS, WRITTEN_RUBRICS[key], "")
        if key == "diagram":
            item.answer = f"{sub.diagram[0]}\n{sub.diagram[1]}".strip() if sub.diagram else ""
            why = "No diagram file (diagram.png, .svg, .md or .txt) was submitted."
            if not sub.diagram and sub.strays:
                item.answer = "\n".join(sub.strays)
                item.comment = f"Sent to a person: {diagram_hint(sub.strays[0])}."
        elif sub.answers is None:
            why = f"Not scored: {unreadable(sub.answers_error or '')}; fix it and grade again."
        else:
            section, name = key.split(".")
            table = sub.answers.get(section)
            value = table.get(name) if isinstance(table, dict) else None
            item.answer = value if isinstance(value, str) else ""
            why = "No answer was submitted."
            if value is not None and not isinstance(value, str):
                why = f"{key} should be text in quotes; found {toml_type(value)}."
            misnamed = misnamed_answer(sub.answers, section, name) if value is None else None
            if misnamed is not None and isinstance(misnamed[1], str) and not is_placeholder(misnamed[1]):
                item.answer = misnamed[1]
                item.comment = (
                    f"Sent to a person: the answer was found under {misnamed[0]}; name it `{name}` in [{section}]."
                )
        if is_placeholder(item.answer):
            item.score, item.comment = 0.0, why
        items.append(item)
    return items
