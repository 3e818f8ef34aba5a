"""Re-run the gallery pages that import ``reference`` whenever ``reference`` changes.

sphinx-gallery decides whether to execute a page from the md5 of the page's own file
(stored next to the copy in the gallery folder as ``<page>.py.md5``); a change to the
package the page imports goes unnoticed and the old figures and numbers stay. This
extension hashes every ``.py`` file of ``reference`` and, when the hash differs from the
one recorded at the previous build, deletes the md5 files of the pages that import
``reference``, so exactly those pages run again. It runs before sphinx-gallery's own
``builder-inited`` handler.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

_IMPORTS_REFERENCE = re.compile(r"^\s*(from\s+reference[\s.]|import\s+reference\b)", re.MULTILINE)
STAMP = ".reference.sha256"


def reference_digest() -> str:
    """sha256 over the names and contents of ``reference/**/*.py``, in a stable order."""
    import reference

    root = Path(reference.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _invalidate(app: Sphinx) -> None:
    conf = app.config.sphinx_gallery_conf
    src_dirs, out_dirs = conf["examples_dirs"], conf["gallery_dirs"]
    src_dirs = [src_dirs] if isinstance(src_dirs, str) else src_dirs
    out_dirs = [out_dirs] if isinstance(out_dirs, str) else out_dirs
    digest = reference_digest()
    for src_name, out_name in zip(src_dirs, out_dirs, strict=True):
        src, out = Path(app.srcdir, src_name), Path(app.srcdir, out_name)
        stamp = out / STAMP
        if stamp.is_file() and stamp.read_text() == digest:
            continue
        stale = [
            page.name
            for page in sorted(src.glob("*.py"))
            if _IMPORTS_REFERENCE.search(page.read_text(encoding="utf-8")) and (out / f"{page.name}.md5").exists()
        ]
        for name in stale:
            (out / f"{name}.md5").unlink()
        if stale:
            logger.info(f"reference changed: re-running {', '.join(stale)}")
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest)


def setup(app: Sphinx) -> dict[str, object]:
    # sphinx-gallery generates its pages on builder-inited at the default priority (500).
    app.connect("builder-inited", _invalidate, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
