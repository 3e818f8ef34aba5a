"""The learner's sessions: ``nox -s docs`` builds the lesson, ``nox -s grade -- submissions/<id>`` grades it.

Each session makes its own virtual environment (reused between runs) and installs the pinned CPU build of
PyTorch first: a looser pin would let pip fetch a CUDA build of several GB. Where that wheel is not on PyPI,
set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu.
"""

from __future__ import annotations

import nox

TORCH = "@TORCH@"

nox.options.sessions = ["docs"]
nox.options.reuse_venv = "yes"


def install(session: nox.Session, *extras: str) -> None:
    """The pinned torch first, then this kit (``reference`` and ``grader``) with the given extras."""
    session.install(TORCH)
    session.install("-e", f".[{','.join(extras)}]")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the lesson into docs/_build/html (warnings are errors; every page runs)."""
    install(session, "docs", "grade")  # the pages' points table comes from the grader
    build = ["-b", "html", "-d", "docs/_build/doctrees", "docs", "docs/_build/html"]
    session.run("python", "-m", "sphinx", "-W", "--keep-going", *build, *session.posargs)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade submissions: ``nox -s grade -- submissions/<id>``; without a path, every folder but the template."""
    install(session, "grade")
    session.run("python", "-m", "grader", *session.posargs)
