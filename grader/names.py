"""The names the grader reads (answers.toml's tables and keys, the diagram file) and the ones it does not know.

Nothing a learner writes is dropped in silence: a table or key the grader does not know (``[theroy]``,
``ropee``) and a file that looks like the diagram under another name (``Diagram.md``, ``diagram.jpg``) are
named in the feedback with the closest known name (``difflib.get_close_matches``), and an answer that
was only misnamed goes to a person instead of scoring 0.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ANSWER_KEYS: dict[str, tuple[str, ...]] = {
    "quiz": ("q1", "q2", "q3"),
    "math": ("causal_mask",),
    "params": ("lesson_total",),
    "theory": ("components", "rmsnorm", "rope", "gqa", "moe", "attention_formula"),
    "advanced": ("mla",),
}
DIAGRAM_STEM = "diagram"
DIAGRAM_KINDS = ("png", "svg", "md", "txt")
CUTOFF = 0.6  # difflib's similarity ratio for "did you mean"


def closest(name: str, known: list[str] | tuple[str, ...], cutoff: float = CUTOFF) -> str | None:
    """The known name most like ``name`` (case ignored), or None if none is close."""
    lowered = {k.lower(): k for k in known}
    match = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[match[0]] if match else None


@dataclass(frozen=True)
class Unknown:
    """A table (``section`` is None) or a key of a known table that the grader does not read."""

    name: str
    section: str | None
    suggestion: str | None

    def describe(self) -> str:
        """``unknown key `ropee` in [theory]: did you mean `rope`?``"""
        if self.section is None:
            hint = f": did you mean [{self.suggestion}]?" if self.suggestion else f" (known: {known_tables()})"
            return f"unknown table [{self.name}] in answers.toml{hint}"
        if self.section == "":
            where = f"[{self.suggestion}]" if self.suggestion else "its table"
            return f"unknown key `{self.name}` at the top of answers.toml: put it under {where}"
        keys = ANSWER_KEYS[self.section]
        hint = f": did you mean `{self.suggestion}`?" if self.suggestion else f" (known: {', '.join(keys)})"
        return f"unknown key `{self.name}` in [{self.section}]{hint}"


def known_tables() -> str:
    return ", ".join(f"[{t}]" for t in ANSWER_KEYS)


def unknown_names(answers: dict[str, Any]) -> list[Unknown]:
    """Every table and key of answers.toml that the grader does not read, in file order."""
    found = []
    for name, value in answers.items():
        if name in ANSWER_KEYS and isinstance(value, dict):
            keys = ANSWER_KEYS[name]
            found += [Unknown(key, name, closest(key, keys)) for key in value if key not in keys]
        elif isinstance(value, dict):
            found.append(Unknown(name, None, closest(name, tuple(ANSWER_KEYS))))
        else:
            owner = next((t for t, keys in ANSWER_KEYS.items() if closest(name, keys)), None)
            found.append(Unknown(name, "", owner))
    return found


def unknown_in(unknown: list[Unknown], section: str) -> list[Unknown]:
    """The unknown names that may have been meant for ``[section]``: its unknown keys, or a table like it."""
    return [u for u in unknown if u.section == section or (u.section is None and u.suggestion == section)]


def misnamed_answer(answers: dict[str, Any], section: str, key: str) -> tuple[str, Any] | None:
    """Where an answer for ``[section] key`` was written under a misspelled name: (where, value), or None."""
    for name, value in answers.items():
        if not isinstance(value, dict):
            continue
        if name == section:
            keys = [k for k in value if k not in ANSWER_KEYS[section] and closest(k, ANSWER_KEYS[section]) == key]
            if keys:
                return f"`{keys[0]}` in [{section}]", value[keys[0]]
        elif name not in ANSWER_KEYS and closest(name, tuple(ANSWER_KEYS)) == section:
            keys = [k for k in value if k == key or closest(k, ANSWER_KEYS[section]) == key]
            if keys:
                return f"`{keys[0]}` in [{name}]", value[keys[0]]
    return None


def stray_diagrams(folder: Path) -> list[str]:
    """Files that look meant as the diagram but are not named ``diagram.png/.svg/.md/.txt`` (sorted)."""
    exact = {f"{DIAGRAM_STEM}.{kind}" for kind in DIAGRAM_KINDS}
    found = []
    for path in folder.iterdir():
        if path.name in exact or path.is_symlink() or not path.is_file():
            continue
        stem = path.name.split(".")[0].lower()
        if difflib.SequenceMatcher(None, stem, DIAGRAM_STEM).ratio() >= 0.8:
            found.append(path.name)
    return sorted(found)


def diagram_hint(name: str) -> str:
    """``found Diagram.md: name it diagram.md (png, svg, md or txt)``."""
    kind = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    target = f"{DIAGRAM_STEM}.{kind}" if kind in DIAGRAM_KINDS else f"{DIAGRAM_STEM}.png"
    how = "name it" if kind in DIAGRAM_KINDS else "save it as"
    return f"found {name}: {how} {target} (png, svg, md or txt)"
