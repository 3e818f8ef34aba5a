"""Sessions for the Kimi-K2 lesson kit.

``nox`` runs the default sessions (lint, tests, docs): the whole test suite.
``nox -s grade`` grades ``submissions/`` (or the folders given after ``--``).

Every session installs the CPU build of torch 2.13.0 that lies on this machine's
disk (pip finds it through its find-links); a looser pin would pull a CUDA build
of several GB. Virtual environments are reused between runs.
"""

from __future__ import annotations

import nox

TORCH = "torch==2.13.0"

nox.options.sessions = ["lint", "tests", "docs"]
nox.options.reuse_venv = "yes"
nox.options.error_on_missing_interpreters = True


def install(session: nox.Session, *extras: str) -> None:
    """Install the pinned torch first, then this project with the given extras."""
    session.install(TORCH)
    spec = f".[{','.join(extras)}]" if extras else "."
    session.install("-e", spec)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: style and common bugs."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", "reference", "grader", "tests", "noxfile.py")


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite (pass pytest options after ``--``)."""
    install(session, "test", "similarity", "review")
    # tests/docs checks a built site: the docs session runs it after building both editions.
    session.run("pytest", "--ignore=tests/docs", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the lesson site, both editions, warnings as errors, then test the built pages.

    Output: docs/_build/html/{instructor,student}, browser screenshots in docs/_build/screenshots.
    ``nox -s docs -- --student`` (or ``--instructor``) builds only that edition and skips the tests.
    """
    install(session, "docs", "test", "similarity")
    chosen = [arg.removeprefix("--") for arg in session.posargs]
    unknown = sorted(set(chosen) - {"instructor", "student"})
    if unknown:
        session.error(f"unknown option(s) {unknown}: use --student or --instructor, or nothing for both")
    for edition in chosen or ["instructor", "student"]:
        session.run("python", "docs/_ext/lesson_editions.py", edition)
    if not chosen:
        session.run("pytest", "tests/docs")


@nox.session
def grade(session: nox.Session) -> None:
    """Grade submissions: ``nox -s grade`` grades submissions/; ``-- PATH ...`` grades those."""
    install(session, "grade")
    session.run("python", "-m", "grader", *session.posargs)


@nox.session
def similarity(session: nox.Session) -> None:
    """Similarity report of submissions' code: ``nox -s similarity`` compares submissions/; ``-- PATH ...`` those."""
    install(session, "grade", "similarity")
    session.run("python", "-m", "grader", "similarity", *session.posargs)


@nox.session
def review(session: nox.Session) -> None:
    """The review page, to score the written work: ``nox -s review`` serves reports/'s gradebook; ``-- --out DIR``."""
    install(session, "review")
    session.run("python", "-m", "grader", "review", *session.posargs)


@nox.session
def release(session: nox.Session) -> None:
    """The class release: ``dist/student-kit/`` (the learners' repository) and ``dist/autograder.zip`` (Gradescope)."""
    install(session, "grade")
    session.run("python", "-m", "grader", "release", "--out", "dist", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: each prints ratios measured in one run against a named baseline."""
    install(session, "test", "docs", "similarity", "review")
    benchmarks = ("bench_model", "bench_decode", "bench_grader", "bench_sandbox", "bench_docs", "bench_similarity")
    benchmarks += ("bench_review",)
    for script in (*benchmarks, "bench_gradescope"):
        session.run("python", f"tests/benchmarks/{script}.py", *session.posargs)
