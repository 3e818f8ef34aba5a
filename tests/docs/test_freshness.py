"""A change to ``reference`` re-runs the lesson pages that import it (docs/_ext/lesson_freshness.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lesson_freshness as freshness


def fake_app(srcdir: Path) -> SimpleNamespace:
    conf = {"examples_dirs": "lessons", "gallery_dirs": "auto_examples"}
    return SimpleNamespace(srcdir=srcdir, config=SimpleNamespace(sphinx_gallery_conf=conf))


def test_changed_reference_invalidates_exactly_the_pages_that_import_it(tmp_path: Path) -> None:
    (tmp_path / "lessons").mkdir()
    out = tmp_path / "auto_examples"
    out.mkdir()
    (tmp_path / "lessons" / "01_uses.py").write_text("import torch\n\nfrom reference import Config\n")
    (tmp_path / "lessons" / "02_plain.py").write_text("import math\n")
    for name in ("01_uses.py", "02_plain.py"):
        (out / f"{name}.md5").write_text("cached")
    (out / freshness.STAMP).write_text("digest of an older reference")

    freshness._invalidate(fake_app(tmp_path))
    assert not (out / "01_uses.py.md5").exists(), "the page importing reference was not re-run"
    assert (out / "02_plain.py.md5").exists(), "a page that does not import reference was re-run"
    assert (out / freshness.STAMP).read_text() == freshness.reference_digest()

    (out / "01_uses.py.md5").write_text("cached")
    freshness._invalidate(fake_app(tmp_path))
    assert (out / "01_uses.py.md5").exists(), "an unchanged reference re-ran the page"


def test_digest_covers_every_reference_module() -> None:
    import reference

    root = Path(reference.__file__).parent
    assert len(list(root.glob("*.py"))) > 5
    assert len(freshness.reference_digest()) == 64
