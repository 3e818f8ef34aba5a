"""A simulated Gradescope container, for tests/test_gradescope.py and tests/benchmarks/bench_gradescope.py.

A temporary folder stands in for ``/autograder`` (world-traversable, like the real one): ``source/`` (the
autograder zip unpacked, modes kept), ``run_autograder`` copied beside it as Gradescope copies it,
``submission/`` (the upload), ``submission_metadata.json``, ``results/``, and ``control.txt``, a file anyone may
read. ``run_autograder`` runs as root, as Gradescope runs it (directly, or through password-less sudo), with
an interpreter that has torch and pytest but not the grader, as setup.sh's environment has them; a ``bwrap``
that cannot start stands first on the PATH unless bubblewrap is wanted (Gradescope's containers usually
refuse namespaces).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

METADATA = {
    "id": 4242,
    "created_at": "2025-03-14T22:10:00.000000+00:00",
    "assignment": {"due_date": "2025-03-14T23:59:00.000000+00:00", "late_due_date": None, "title": "Lesson 1.2"},
    "users": [{"email": "ada@example.com", "id": 7, "name": "Ada Lovelace"}],
    "previous_submissions": [],
}
REFUSING_BWRAP = "#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n"


def interpreter(venv: Path) -> Path:
    """setup.sh's environment, in effect: a venv whose packages are this interpreter's torch, pytest and numpy
    (through a .pth file), without the grader. AssertionError if the grader can be imported from it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--clear", str(venv)], check=True)
    site = next(Path(venv, "lib").glob("python3*/site-packages"))
    packages = Path(__import__("torch").__file__).parents[1]
    (site / "test-packages.pth").write_text(f"{packages}\n")
    python = venv / "bin" / "python"
    probe = "import torch, pytest, importlib.util; print(importlib.util.find_spec('grader'))"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, cwd="/", check=True)
    assert found.stdout.strip() == "None", "the simulated environment must not hold the grader"
    return python


def container(archive: Path, upload: dict[str, bytes], metadata: dict | None = METADATA) -> Path:
    """A simulated /autograder after Gradescope built the image and downloaded one upload (remove it after)."""
    root = Path(tempfile.mkdtemp(prefix="gradescope-root-"))
    root.chmod(0o755)
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(root / "source")
        for info in zipped.infolist():  # zipfile drops the modes; Gradescope's unzip keeps them
            (root / "source" / info.filename).chmod(info.external_attr >> 16 & 0o777)
    shutil.copy2(root / "source" / "run_autograder", root / "run_autograder")
    (root / "submission").mkdir()
    for name, data in upload.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_bytes(data)
    if metadata is not None:
        (root / "submission_metadata.json").write_text(json.dumps(metadata))
    (root / "results").mkdir(mode=0o755)
    (root / "control.txt").write_text("control: anyone may read this\n")
    (root / "control.txt").chmod(0o644)
    return root


def remove(root: Path) -> None:
    """A simulated root and what the runs left beside it."""
    for path in (root, root.parent / f"{root.name}-bin", root.parent / f"{root.name}-smuggled"):
        shutil.rmtree(path, ignore_errors=True)


def as_root() -> list[str]:
    """Gradescope runs the autograder as root; so does the simulation (directly, or through password-less sudo)."""
    if os.geteuid() == 0:
        return []
    sudo = subprocess.run(["sudo", "-n", "true"], capture_output=True, check=False)
    assert sudo.returncode == 0, "run_autograder runs as root, as on Gradescope: run this as root or with sudo"
    return ["sudo", "-n", "--preserve-env=AUTOGRADER_ROOT,AUTOGRADER_PYTHON,PATH"]


def run_autograder(root: Path, python: Path | str, bwrap: bool = False) -> subprocess.CompletedProcess[str]:
    """``bash run_autograder`` in ``root`` as Gradescope runs it (as root, in /autograder)."""
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=str(python))
    if not bwrap:
        fake = root.parent / f"{root.name}-bin"
        fake.mkdir(exist_ok=True)
        (fake / "bwrap").write_text(REFUSING_BWRAP)
        (fake / "bwrap").chmod(0o755)
        env["PATH"] = f"{fake}:{env['PATH']}"
    command = [*as_root(), "bash", str(root / "run_autograder")]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=600)


def files(folder: Path, prefix: str = "") -> dict[str, bytes]:
    """A folder's files as an upload (under ``prefix``, for an upload with a top folder)."""
    return {f"{prefix}{p.name}": p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
