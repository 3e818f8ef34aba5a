"""Keep every page of the site working offline: no script or stylesheet is loaded from the network.

sphinx-gallery writes its ``sg_execution_times.rst`` pages (the running time of every lesson page)
with a raw HTML block that loads jQuery, DataTables and Bootstrap from CDNs, to make the table
sortable. Opened from disk or on a machine without internet those requests fail and the console
shows errors. This extension drops such a block from any page as Sphinx reads it, so the table
stays, as a plain table in the theme's style. A raw HTML block without remote scripts or
stylesheets is left alone.
"""

from __future__ import annotations

import re

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: A ``<script src=...>`` or ``<link href=...>`` that points off the machine.
REMOTE_RESOURCE = re.compile(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.IGNORECASE)
_RAW_HTML = re.compile(r"^(?P<indent>[ \t]*)\.\. raw::[ \t]+html[ \t]*$")


def strip_remote_raw_html(text: str) -> tuple[str, int]:
    """``text`` without the ``.. raw:: html`` blocks that load remote resources, and how many were dropped.

    A block is the directive line and every following line that is blank or indented deeper.
    """
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    dropped = 0
    i = 0
    while i < len(lines):
        match = _RAW_HTML.match(lines[i].rstrip("\n"))
        if match is None:
            kept.append(lines[i])
            i += 1
            continue
        indent = len(match["indent"].expandtabs())
        end = i + 1
        while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
            end += 1
        block = "".join(lines[i:end])
        if REMOTE_RESOURCE.search(block):
            dropped += 1
        else:
            kept.extend(lines[i:end])
        i = end
    return "".join(kept), dropped


def _source_read(app: Sphinx, docname: str, source: list[str]) -> None:
    source[0], dropped = strip_remote_raw_html(source[0])
    if dropped:
        logger.info(f"{docname}: dropped {dropped} raw HTML block(s) that load scripts or styles from the network")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
