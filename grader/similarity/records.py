"""The similarity records: ``similarity.json`` for programs, ``similarity.md`` for people (and ``page`` for the HTML).

``similarity.json`` holds every pair with both shares, the tokens in common and whether it is flagged, with the
threshold and the rest of the settings, for programs such as a review list of the flagged pairs
(``load_report``, ``flagged_pairs``). ``similarity.md`` is the section that ``summary_markdown`` returns, for
the grader's ``summary.md``. Nothing here needs copydetect: a review page can read the JSON without it.
No report changes a score.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UsageError
from ..submission import CODE_FILES
from .page import CAUTION, RULE, html_report, pct
from .settings import FORMAT_VERSION, HTML_FILE, JSON_FILE, MARKDOWN_FILE, WINDOW

if TYPE_CHECKING:
    from .winnowing import Comparison, Pair


def pair_json(p: Pair) -> dict[str, Any]:
    return {
        "a": p.a,
        "b": p.b,
        "similarity_a": round(p.similarity_a, 4),
        "similarity_b": round(p.similarity_b, 4),
        "token_overlap": p.token_overlap,
        "flagged": p.flagged,
    }


def to_json(c: Comparison) -> dict[str, Any]:
    """The machine-readable report: settings, submissions, folders not compared, every pair (most similar first).

    ``similarity_a`` is the share of a's compared tokens (its code less the boilerplate) also found in b;
    ``token_overlap`` the tokens of a in the shared regions.
    """
    return {
        "format": FORMAT_VERSION,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "engine": c.engine,
        "threshold": c.threshold,
        "min_overlap": c.min_overlap,
        "noise_tokens": c.noise,
        "window": WINDOW,
        "rule": RULE,
        "files": list(CODE_FILES),
        "boilerplate": list(c.corpus.boilerplate),
        "submissions": [
            {
                "student": d.student,
                "path": str(d.path),
                "files": list(d.files),
                "tokens": c.tokens[d.student],
                "notices": list(d.notices),
            }
            for d in sorted(c.corpus.documents, key=lambda d: d.student)
        ],
        "skipped": [{"folder": s.folder, "reason": s.reason} for s in c.corpus.skipped],
        "flagged": sum(p.flagged for p in c.pairs),
        "pairs": [pair_json(p) for p in c.pairs],
    }


def load_report(path: Path) -> dict[str, Any]:
    """Read a ``similarity.json`` (or the folder holding one); UsageError saying what is wrong and what to do."""
    file = path / JSON_FILE if path.is_dir() else path
    rerun = "run python -m grader similarity again to write it"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{file} does not exist: {rerun}.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{file} cannot be read as a similarity report ({exc}): {rerun}.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION or not isinstance(data.get("pairs"), list):
        raise UsageError(f"{file} is not a similarity report of format {FORMAT_VERSION}: {rerun}.")
    return data


def flagged_pairs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The flagged pairs of a loaded report, most similar first: what goes on the instructors' review list."""
    return [p for p in data["pairs"] if p["flagged"]]


def summary_markdown(data: dict[str, Any]) -> str:
    """The section for ``summary.md``: how many were compared and the table of flagged pairs (from the JSON)."""
    flagged = flagged_pairs(data)
    n = len(data["submissions"])
    lines = [
        "## Code similarity",
        "",
        f"{n} submissions compared ({' and '.join(data['files'])}, the template not counted), "
        f"{len(data['pairs'])} pairs: {len(flagged)} flagged, where at least {pct(data['threshold'])} of one "
        f"submission's code is also in the other and they share at least {data['min_overlap']} tokens. "
        f"{CAUTION} The shared code is highlighted in {HTML_FILE}.",
        "",
    ]
    if flagged:
        lines += [
            "| First | Second | First's code found in second | Second's code found in first | Tokens in common |",
            "|---|---|---|---|---|",
        ]
        for p in flagged:
            lines.append(
                f"| {p['a']} | {p['b']} | {pct(p['similarity_a'])} | {pct(p['similarity_b'])} "
                f"| {p['token_overlap']:,} |"
            )
    else:
        top = data["pairs"][0]
        lines.append(
            f"No pair reaches the threshold; the most similar is {top['a']} and {top['b']} at "
            f"{pct(max(top['similarity_a'], top['similarity_b']))}."
        )
    not_compared = [f"{s['folder']} ({s['reason']})" for s in data["skipped"]]
    notices = [f"{s['student']}: {note}" for s in data["submissions"] for note in s["notices"]]
    if not_compared or notices:
        lines += ["", *(f"- Not compared: {x}" for x in not_compared), *(f"- Note: {x}" for x in notices)]
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    """Write through a temporary file and a rename: a crash leaves the old report or the new one, never half."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(c: Comparison, out: Path) -> dict[str, Path]:
    """Write similarity.json, similarity.md and similarity.html under ``out``; return their paths by kind."""
    out.mkdir(parents=True, exist_ok=True)
    data = to_json(c)
    paths = {"json": out / JSON_FILE, "markdown": out / MARKDOWN_FILE, "html": out / HTML_FILE}
    _write(paths["json"], json.dumps(data, indent=1) + "\n")
    _write(paths["markdown"], summary_markdown(data))
    _write(paths["html"], html_report(c))
    return paths
