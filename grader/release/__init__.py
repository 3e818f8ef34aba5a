"""``python -m grader release --out dist/``: what a real class needs, built from this repository.

- ``dist/student-kit/``: a folder ready to become the learners' repository (``grader.release.kit``): the lesson's
  student edition sources, ``reference/``, the template, the learner edition of the grader (no answer key, no
  rubric, no withheld check: ``grader.release.learner``) and a workflow that self-grades on push;
- ``dist/autograder.zip``: a Gradescope autograder (``grader.release.autograder``, run there by
  ``grader.release.gradescope``).

Before it finishes, the build imports the kit's grader in a fresh interpreter and checks its points table against
the checks' declarations, and searches every file of the kit for every answer of this repository
(``grader.release.scan``); a hit, or a learner edition that does not import, fails the build and removes the kit.
The instructors' page *Running a class* says which of the three ways of running a class each part serves.

Exit status: 0 when both were built; 2 for a usage error or a kit that failed its checks.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from ..errors import UsageError

REPO = Path(__file__).resolve().parents[2]
KIT, ZIP = "student-kit", "autograder.zip"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m grader release",
        description="Build what a class needs from this repository: OUT/student-kit/, the learners' repository (no "
        "answer in it), and OUT/autograder.zip, a Gradescope autograder.",
    )
    p.add_argument("--out", type=Path, default=Path("dist"), metavar="DIR", help="where to build (default: dist/)")
    p.add_argument("--docs-url", metavar="URL", help="where the lesson is published: Gradescope feedback links it")
    p.add_argument(
        "--late-policy",
        type=Path,
        metavar="FILE",
        help="late policy for Gradescope (grader.late's TOML; Gradescope's own due dates replace its dates)",
    )
    return p


def settings(args: argparse.Namespace) -> dict[str, Any]:
    """The autograder's ``gradescope.toml``: the docs address and the late policy's settings."""
    found: dict[str, Any] = {}
    if args.docs_url:
        found["docs_url"] = args.docs_url
    if args.late_policy is not None:
        try:
            found["late"] = tomllib.loads(args.late_policy.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read the late policy {args.late_policy}: {exc.strerror}.") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UsageError(f"--late-policy {args.late_policy} is not valid TOML: {exc}.") from None
        check_policy(found["late"], args.late_policy)
    return found


def check_policy(settings: dict[str, Any], source: Path) -> None:
    """Read the policy as every Gradescope run will (Gradescope's due dates in place of its own), with a stand-in
    due date: a mistake in it (a misspelt key, a bad cap) then stops the release, not every learner's grading."""
    from ..late import load_policy
    from .gradescope import write_policy

    with tempfile.TemporaryDirectory() as folder:
        trial = write_policy(settings, {"due": "2025-01-01T00:00:00Z"}, Path(folder) / "late-policy.toml")
        try:
            load_policy(trial)
        except UsageError as exc:
            raise UsageError(str(exc).replace(str(trial), f"--late-policy {source}")) from None


def check_kit(repo: Path, kit: Path) -> list[str]:
    """What is wrong with a built kit ([] when nothing): its grader must import, with exactly the checks learners get
    (the visible ones and stand-ins for those shown after the due date), and no file may hold an answer."""
    from reference import Config, count_parameters

    from .kit import learner_points_table, shares
    from .scan import answers, scan

    problems = []
    visible, later = shares(repo)
    expected = [(s.number, s.name, s.points, s.visibility) for s in visible + later]
    table = [(r["number"], r["name"], r["points"], r["visibility"]) for r in learner_points_table(kit)]
    if sorted(table) != sorted(expected):
        problems.append(f"the kit's grader has the checks {table}, not {expected}")
    report = scan(kit, answers(repo, count_parameters(Config.lesson())))
    return problems + report.hits


def build(repo: Path, out: Path, config: dict[str, Any]) -> tuple[list[str], int]:
    """Build both into ``out``; returns the kit's notes and the zip's size. UsageError when the kit fails its checks."""
    from .autograder import build_autograder
    from .kit import build_kit

    kit, archive = out / KIT, out / ZIP
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder.")
    if kit.exists():
        shutil.rmtree(kit)
    notes = build_kit(repo, kit)
    problems = check_kit(repo, kit)
    if problems:
        shutil.rmtree(kit)
        raise UsageError("the student kit failed its checks and was removed:\n  " + "\n  ".join(problems[:40]))
    return notes, build_autograder(repo, archive, config)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if not (REPO / "docs" / "_ext" / "lesson_editions.py").is_file():
            raise UsageError(f"{REPO} is not the course's repository: run the release from a checkout of it.")
        notes, size = build(REPO, args.out, settings(args))
    except UsageError as exc:
        print(f"grader release: error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"  {note}")
    print(f"Built {args.out / KIT}/ (its grader imports; no answer found in it) and {args.out / ZIP} ({size:,} bytes).")
    return 0
