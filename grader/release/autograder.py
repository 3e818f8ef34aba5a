"""The Gradescope autograder: ``autograder.zip``, which Gradescope unpacks into ``/autograder/source``.

Its root holds what Gradescope looks for (gradescope/autograder_samples, ``docs/specs.md``):

- ``setup.sh``: run once when Gradescope builds the image; installs bubblewrap, a Python of at least the
  version ``pyproject.toml`` requires, and a virtual environment with the pinned CPU torch (``noxfile.py``'s
  pin) and ``requirements.txt``, then makes this folder root's alone;
- ``run_autograder``: run for each submission; grades it with ``grader.release.gradescope`` and writes
  ``results/results.json`` whatever happens;
- ``requirements.txt``: the package's dependencies and its ``grade`` extra (``pyproject.toml``);
- ``gradescope.toml``: the instructor's settings: the published lesson's address, the late policy;
- ``grader/`` (all of it but the similarity report and the review page: this is the instructor's grader, with its
  keys) and ``reference/``.

The archive is reproducible: its entries are sorted, dated 1980-01-01 and carry only their modes.
"""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path
from typing import Any

from .kit import FILES, fill, python_minimum, toml_text, torch_pin

VENV = "/opt/kimi-k2-grader"  # setup.sh makes it, run_autograder uses it (outside source/: readable by the runs)
TORCH_INDEX = "https://download.pytorch.org/whl/cpu"
# grader/similarity/ and grader/review/: instructors' tools that grading never imports.
LEFT_OUT = ("similarity", "review", "__pycache__")
EXTRA = "grade"
EPOCH = (1980, 1, 1, 0, 0, 0)


def requirements(repo: Path) -> str:
    """The packages grading needs, from ``pyproject.toml``: the dependencies and the ``grade`` extra."""
    project = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project.get("dependencies", []), *project["optional-dependencies"][EXTRA]]
    return "".join(f"{line}\n" for line in [f"# {EXTRA} extra and dependencies of pyproject.toml", *wanted])


def contents(repo: Path, settings: dict[str, Any]) -> dict[str, tuple[bytes, int]]:
    """Every entry of the archive: path -> (bytes, mode)."""
    values = {"TORCH": torch_pin(repo), "VENV": VENV, "TORCH_INDEX": TORCH_INDEX, "PYTHON_MIN": python_minimum(repo)}
    scripts = {
        "setup.sh": fill((FILES / "autograder" / "setup.sh").read_text(encoding="utf-8"), values),
        "run_autograder": fill((FILES / "autograder" / "run_autograder").read_text(encoding="utf-8"), {"VENV": VENV}),
    }
    entries = {name: (text.encode(), 0o755) for name, text in scripts.items()}
    entries["requirements.txt"] = (requirements(repo).encode(), 0o644)
    entries["gradescope.toml"] = (toml_text(settings).encode(), 0o644)
    for top in ("grader", "reference"):
        for path in sorted((repo / top).rglob("*")):
            relative = path.relative_to(repo)
            if path.is_file() and not set(relative.parts) & set(LEFT_OUT) and path.suffix != ".pyc":
                entries[relative.as_posix()] = (path.read_bytes(), 0o755 if path.stat().st_mode & 0o100 else 0o644)
    return entries


def build_autograder(repo: Path, target: Path, settings: dict[str, Any]) -> int:
    """Write ``autograder.zip`` for ``repo`` to ``target``; returns its size in bytes."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, (data, mode) in sorted(contents(repo, settings).items()):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = (0o100000 | mode) << 16  # a regular file with its mode, as unzip restores it
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return target.stat().st_size
