"""The HTML similarity report: the flagged pairs side by side, the shared regions highlighted.

One self-contained file: inline CSS, no script, no font, no link to anything outside it, so it opens offline
(copydetect's own report loads Bootstrap from a CDN, which is why this one is written here). Every character of
student code is escaped (``html.escape``), so a submission cannot put markup or script into the page.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..submission import CODE_FILES
from .settings import WINDOW

if TYPE_CHECKING:
    import numpy as np

    from .texts import Document
    from .winnowing import Comparison, Pair

CAUTION = (
    "A flag is a reason to read both submissions, not proof of copying: learners who start from the same template, "
    "follow the lesson's worked skeleton or write the usual idioms share code honestly. No score was changed."
)
RULE = "flagged when max(similarity_a, similarity_b) >= threshold and token_overlap >= min_overlap"
CLOSEST_SHOWN = 10
# Code views in the page: the most similar flagged pairs. Far more flags than this means the threshold does not
# suit the class, or a shared skeleton should be given as --boilerplate; every flagged pair is still listed.
CODE_SHOWN = 50


def pct(share: float) -> str:
    return f"{share:.0%}"


def _word(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def highlighted(text: str, slices: np.ndarray | None, css: str) -> str:
    """``text`` escaped for HTML, with each shared region (slices: (2, N) starts and ends) in a ``<mark>``.

    copydetect maps regions of the filtered code back to the text to within a few characters; each region is
    widened to whole words, so a mark never starts or ends inside a name.
    """
    regions = sorted(zip(*slices, strict=True)) if slices is not None and slices.size else []
    out, at = [], 0
    for start, end in ((int(s), int(e)) for s, e in regions):
        start, end = max(start, at), min(end, len(text))
        while 0 < start < len(text) and _word(text[start - 1]) and _word(text[start]):
            start -= 1
        while 0 < end < len(text) and _word(text[end - 1]) and _word(text[end]):
            end += 1
        start = max(start, at)
        if end <= start:
            continue
        out += [html.escape(text[at:start]), f'<mark class="{css}">', html.escape(text[start:end]), "</mark>"]
        at = end
    out.append(html.escape(text[at:]))
    return "".join(out)


STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1d1d1f; margin: 0; background: #fafafa; }
main { max-width: 1400px; margin: 0 auto; padding: 1.5em 2em 4em; }
h1 { margin-bottom: .2em; } h2 { margin-top: 2em; border-bottom: 1px solid #ddd; }
.caution { background: #fff6d6; border-left: 4px solid #d9a400; padding: .8em 1em; margin: 1em 0; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #ddd; padding: .3em .7em; }
th { background: #f0f0f0; text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: inline-block; height: .8em; background: #6b8fd6; vertical-align: middle; }
.code { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.code > div { min-width: 0; }
pre { background: #fff; border: 1px solid #ddd; padding: .7em; overflow-x: auto; font-size: 12.5px; }
mark.a { background: #f6c4c4; } mark.b { background: #bfe8c0; }
dt { font-weight: 600; } dd { margin: 0 0 .5em 1.5em; }
"""


def _rows(cells: Iterable[Iterable[str]]) -> str:
    return "".join("<tr>" + "".join(row) + "</tr>" for row in cells)


def _pair_row(p: Pair, link: str | None) -> list[str]:
    names = f"{html.escape(p.a)} and {html.escape(p.b)}"
    who = f'<a href="#{link}">{names}</a>' if link else names
    return [
        f"<td>{who}</td>",
        f'<td class="n">{pct(p.similarity_a)}</td>',
        f'<td class="n">{pct(p.similarity_b)}</td>',
        f'<td class="n">{p.token_overlap:,}</td>',
    ]


PAIR_HEAD = (
    "<tr><th>Pair (first and second)</th><th>First's code found in second</th>"
    "<th>Second's code found in first</th><th>Tokens in common</th></tr>"
)


def _histogram(pairs: list[Pair], threshold: float) -> str:
    counts = [0] * 10
    for p in pairs:
        counts[min(int(p.top * 10), 9)] += 1
    most = max(counts) or 1
    rows = []
    for i, n in enumerate(counts):
        mark = " (threshold)" if i / 10 <= threshold < (i + 1) / 10 else ""
        width = f"{100 * n / most:.1f}" if n else "0"
        rows.append(
            [
                f"<td>{i * 10}% to {(i + 1) * 10}%{mark}</td>",
                f'<td class="n">{n:,}</td>',
                f'<td style="width: 30em"><span class="bar" style="width: {width}%"></span></td>',
            ]
        )
    return "<table><tr><th>Larger share</th><th>Pairs</th><th></th></tr>" + _rows(rows) + "</table>"


def _side(doc: Document, slices: np.ndarray | None, css: str, share: float, other: str) -> str:
    title = f"{html.escape(doc.student)}: {pct(share)} of its code is also in {html.escape(other)}'s"
    return f"<div><h3>{title}</h3><pre><code>{highlighted(doc.text, slices, css)}</code></pre></div>"


def html_report(c: Comparison) -> str:
    """The self-contained HTML report (see the module docstring)."""
    docs = {d.student: d for d in c.corpus.documents}
    flagged = c.flagged
    head = (
        f"{len(docs)} submissions compared ({' and '.join(CODE_FILES)}, the template not counted), "
        f"{len(c.pairs):,} pairs: <strong>{len(flagged)} flagged</strong>, where at least {pct(c.threshold)} of one "
        f"submission's code is also in the other and they share at least {c.min_overlap} tokens."
    )
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Code similarity report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        "<h1>Code similarity report</h1>",
        f"<p>{head}</p>",
        f'<p class="caution"><strong>What this shows.</strong> Two submissions share long runs of code once names, '
        f"strings, comments and layout are set aside. {html.escape(CAUTION)} The instructors' guide, page "
        "<em>Academic integrity</em>, says what a high similarity does and does not prove.</p>",
        "<h2>Flagged pairs</h2>",
    ]
    if flagged:
        rows = [_pair_row(p, f"pair-{i}" if i <= CODE_SHOWN else None) for i, p in enumerate(flagged, start=1)]
        parts.append("<table>" + PAIR_HEAD + _rows(rows) + "</table>")
        if len(flagged) > CODE_SHOWN:
            parts.append(
                f"<p>The code of the {CODE_SHOWN} most similar pairs is shown below. To see another pair's, compare "
                "the two on their own: <code>nox -s similarity -- submissions/ID1 submissions/ID2 --out DIR"
                "</code>. So many flags usually mean the threshold does not suit this class, or that a skeleton "
                "many learners followed should be given with <code>--boilerplate</code>.</p>"
            )
    else:
        parts.append("<p>No pair reaches the threshold.</p>")
    below = [p for p in c.pairs if not p.flagged][:CLOSEST_SHOWN]
    if below:
        parts += [
            f"<h2>The {len(below)} most similar pairs not flagged</h2>",
            "<table>" + PAIR_HEAD + _rows(_pair_row(p, None) for p in below) + "</table>",
        ]
    parts += ["<h2>All pairs</h2>", _histogram(c.pairs, c.threshold)]
    notes = [(s.folder, s.reason) for s in c.corpus.skipped]
    notes += [(d.student, note) for d in docs.values() for note in d.notices]
    if notes:
        items = "".join(f"<li><strong>{html.escape(who)}</strong>: {html.escape(what)}</li>" for who, what in notes)
        parts += ["<h2>Not compared, and notes</h2>", f"<ul>{items}</ul>"]
    for i, p in enumerate(flagged[:CODE_SHOWN], start=1):
        parts += [
            f'<h2 id="pair-{i}">{i}. {html.escape(p.a)} and {html.escape(p.b)}</h2>',
            f"<p>{p.token_overlap:,} tokens in common; the shared regions are highlighted.</p>",
            '<div class="code">',
            _side(docs[p.a], p.slices_a, "a", p.similarity_a, p.b),
            _side(docs[p.b], p.slices_b, "b", p.similarity_b, p.a),
            "</div>",
        ]
    settings = {
        "Engine": f"{c.engine}: MOSS-style winnowing, k-grams of {c.noise} tokens, window {WINDOW}",
        "Rule": RULE.replace("threshold", f"threshold ({c.threshold:g})", 1).replace(
            "min_overlap", f"min_overlap ({c.min_overlap})"
        ),
        "Not counted (boilerplate)": "; ".join(c.corpus.boilerplate),
        "Tokens": "characters of the filtered code: names become V, F or O, strings S; comments and spaces dropped",
    }
    items = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in settings.items())
    parts += ["<h2>Settings</h2>", f"<dl>{items}</dl>", "</main>\n</body>\n</html>\n"]
    return "\n".join(parts)
