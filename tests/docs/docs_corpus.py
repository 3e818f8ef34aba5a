"""Every piece of text a built site holds, flattened so that answers can be searched for.

HTML loses its tags (syntax highlighting splits code into spans), notebooks are read cell by
cell, zip archives member by member, and all text is *squashed* (lower case, letters and digits
only) so that wrapping, highlighting and escaping cannot hide a match.
"""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
import zlib
from pathlib import Path

TEXT_SUFFIXES = {".html", ".js", ".py", ".txt", ".rst", ".md", ".json", ".css", ".ipynb", ".inv"}
_TAG = re.compile(r"<[^>]+>")
_SQUASH = re.compile(r"[^a-z0-9]")


def squash(text: str) -> str:
    return _SQUASH.sub("", text.lower())


def _decode(name: str, data: bytes) -> str:
    if name.endswith(".inv"):  # Sphinx inventory: four header lines, then zlib
        header_end = 0
        for _ in range(4):
            header_end = data.index(b"\n", header_end) + 1
        return zlib.decompress(data[header_end:]).decode("utf-8", "replace")
    text = data.decode("utf-8", "replace")
    if name.endswith(".ipynb"):
        cells = json.loads(text)["cells"]
        parts = []
        for cell in cells:
            parts.append("".join(cell.get("source", [])))
            for output in cell.get("outputs", []):
                parts.append("".join(output.get("text", [])))
        return "\n".join(parts)
    if name.endswith(".html"):
        return html.unescape(_TAG.sub(" ", text))
    return text


def _texts(name: str, data: bytes) -> list[tuple[str, str]]:
    """(where, text) for one file; zip archives are opened and read member by member."""
    if name.endswith(".zip"):
        found = []
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                found.extend(_texts(f"{name}!{member}", archive.read(member)))
        return found
    if Path(name).suffix in TEXT_SUFFIXES:
        return [(name, _decode(name, data))]
    return []


def site_corpus(site: Path) -> dict[str, str]:
    """Squashed text of every text file of ``site`` (and of every file inside its zips), by path.

    MathJax's own files (third-party, 24 MB) are left out: no text of ours reaches them.
    """
    corpus = {}
    for path in sorted(site.rglob("*")):
        relative = path.relative_to(site).as_posix()
        if not path.is_file() or relative.startswith("_static/mathjax/"):
            continue
        for where, text in _texts(relative, path.read_bytes()):
            corpus[where] = squash(text)
    return corpus
