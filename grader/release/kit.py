"""The student kit: a folder ready to become the learners' repository, built from this one by rules.

What each top-level part of the repository becomes (anything added inside one follows its rule):

- ``docs/``: the student edition's sources, as ``docs/_ext/lesson_editions.py`` makes them (every answer region cut
  out before Sphinx sees it, the instructor pages left out), with ``STUDENT_EDITION`` in it, so that a plain
  Sphinx build of ``docs/`` is the student edition;
- ``reference/``: as it is (the lesson documents it in full in both editions);
- ``grader/``: the learner edition (``grader.release.learner``: no key, no rubric, no withheld check);
- ``submissions/``: the template and ``README.md`` without its instructor regions (``<!-- BEGIN INSTRUCTOR -->``
  ... ``<!-- END INSTRUCTOR -->``); every other folder there is someone's work (the examples) and stays;
- ``LICENSE``, ``.gitignore`` and ``.ci/setup`` as they are (the kit's workflow runs ``.ci/setup --grading``);
- the kit's own ``README.md``, ``noxfile.py`` (``docs`` and ``grade``, with this repository's torch pin),
  ``pyproject.toml`` (this one's, with only the extras those sessions install) and
  ``.github/workflows/grade.yml`` (self-grading on push), from ``grader/release/files/kit/``.

Left out: ``tests/`` (its fixtures include full marks), the instructor's workflows, ``.ci/run`` and the instructor's
README and noxfile. Caches (``__pycache__``) never ship.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ..errors import UsageError
from ..scoring import CheckSpec, number_key
from ..written import written_table
from .learner import build_learner_grader, check_definitions

FILES = Path(__file__).with_name("files")
#: The optional dependencies the kit's nox sessions install (``files/kit/noxfile.py``).
KIT_EXTRAS = ("docs", "grade")
COPIED = ("LICENSE", ".gitignore", ".ci/setup")
CACHES = ("__pycache__",)
_INSTRUCTOR = re.compile(r"^\s*<!--\s*(BEGIN|END) INSTRUCTOR\b.*-->\s*$")
_PLACEHOLDER = re.compile(r"@[A-Z_]+@")


def fill(template: str, values: dict[str, str]) -> str:
    """``template`` with each ``@NAME@`` replaced by ``values[NAME]``; every placeholder must be known and used."""
    unknown = sorted({m[1:-1] for m in _PLACEHOLDER.findall(template)} - set(values))
    unused = sorted(set(values) - {m[1:-1] for m in _PLACEHOLDER.findall(template)})
    if unknown or unused:
        raise ValueError(f"template placeholders: unknown {unknown}, unused {unused}")
    return _PLACEHOLDER.sub(lambda m: values[m[0][1:-1]], template)


def torch_pin(repo: Path) -> str:
    """The ``TORCH`` pin of the repository's noxfile (the one place it is declared)."""
    for node in ast.parse((repo / "noxfile.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "TORCH" for t in node.targets):
            return ast.literal_eval(node.value)
    raise UsageError(f"{repo / 'noxfile.py'} declares no TORCH pin")


def python_minimum(repo: Path) -> str:
    """``3.11`` from the repository's ``requires-python = ">=3.11"``."""
    wanted = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    found = re.fullmatch(r">=\s*(\d+\.\d+)", wanted.strip())
    if found is None:
        raise UsageError(f"pyproject.toml: requires-python {wanted!r} is not of the form '>=X.Y'")
    return found[1]


def without_instructor_regions(text: str, where: str) -> str:
    """Markdown without its ``<!-- BEGIN INSTRUCTOR -->`` ... ``<!-- END INSTRUCTOR -->`` regions (markers included)."""
    kept, inside = [], None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _INSTRUCTOR.match(line)
        if match and match[1] == "BEGIN":
            if inside is not None:
                raise UsageError(f"{where}:{number}: BEGIN INSTRUCTOR inside the one opened at line {inside}")
            inside = number
        elif match:
            if inside is None:
                raise UsageError(f"{where}:{number}: END INSTRUCTOR without a BEGIN INSTRUCTOR")
            inside = None
        elif inside is None:
            kept.append(line)
    if inside is not None:
        raise UsageError(f"{where}:{inside}: BEGIN INSTRUCTOR is never closed by an END INSTRUCTOR")
    return "\n".join(kept).rstrip() + "\n"


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


def toml_text(data: dict[str, Any], path: tuple[str, ...] = ()) -> str:
    """TOML for plain data (tables, strings, numbers, dates, lists): each table as a ``[section]``."""

    def key(name: str) -> str:
        return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)

    lines = []
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict)}
    if scalars:
        lines += [f"[{'.'.join(map(key, path))}]"] if path else []
        lines += [f"{key(k)} = {toml_value(v)}" for k, v in scalars.items()]
        lines.append("")
    lines += [toml_text(v, (*path, k)) for k, v in data.items() if isinstance(v, dict)]
    return "\n".join(lines)


def kit_pyproject(repo: Path) -> str:
    """The repository's pyproject.toml for the kit: the same package, only the extras its sessions install,
    and no tool settings for tests or lint it does not have."""
    data = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    project["optional-dependencies"] = {k: v for k, v in project["optional-dependencies"].items() if k in KIT_EXTRAS}
    missing = sorted(set(KIT_EXTRAS) - set(project["optional-dependencies"]))
    if missing:
        raise UsageError(f"{repo / 'pyproject.toml'} lacks the extras the kit's sessions install: {missing}")
    data["tool"] = {"setuptools": data.get("tool", {}).get("setuptools", {})}
    return toml_text(data).strip() + "\n"


def commit(repo: Path) -> str:
    """The repository's commit, short, with ``+changes`` when the work tree differs from it; ``unknown`` outside git."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True, text=True)
    except OSError:
        return "unknown"
    if head.returncode != 0:
        return "unknown"
    return head.stdout.strip() + ("+changes" if status.stdout.strip() else "")


def copy_tree(source: Path, target: Path) -> None:
    """``source`` into ``target``, caches left out."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*CACHES, "*.py[cod]"))


def student_docs(repo: Path, target: Path) -> None:
    """The student edition's sources, made by the lesson's own edition tool (answers cut before Sphinx)."""
    spec = importlib.util.spec_from_file_location("lesson_editions_release", repo / "docs/_ext/lesson_editions.py")
    if spec is None or spec.loader is None:
        raise UsageError(f"{repo / 'docs/_ext/lesson_editions.py'} cannot be loaded")
    editions = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(editions)
    try:
        editions.make_student_tree(repo / "docs", target)
    except editions.MarkerError as error:
        raise UsageError(str(error)) from None


def shares(repo: Path) -> tuple[list[CheckSpec], list[CheckSpec]]:
    """The checks as learners get them: (visible, shown after the due date); hidden ones are not theirs to know."""
    found = [d.spec for path in sorted((repo / "grader/checks").glob("check_*.py")) for d in check_definitions(path)]
    specs = sorted(found, key=lambda s: number_key(s.number))
    return [s for s in specs if s.visibility == "visible"], [s for s in specs if s.visibility == "after_due_date"]


def kit_readme(repo: Path) -> str:
    """The kit's README: the two commands first, then what the self-grade covers, with the grader's own counts."""
    visible, later = shares(repo)
    sentence = ""
    if later:
        named = ", ".join(f"{s.number} `{s.name}`" for s in later)
        sentence = (
            f"The other {len(later)} ({named}; {sum(s.points for s in later):g} points) are scored by your course's "
            "grader, which holds what they compare against. This grader lists each of them as 'shown after the due "
            "date' and scores none of them; your course shows their results after the due date."
        )
    values = {
        "VISIBLE_COUNT": str(len(visible)),
        "CHECK_COUNT": str(len(visible) + len(later)),
        "VISIBLE_POINTS": f"{sum(s.points for s in visible):g}",
        "TOTAL_POINTS": f"{sum(s.points for s in visible + later):g}",
        "LATER_SENTENCE": sentence,
        "WRITTEN_POINTS": f"{sum(float(str(row['points'])) for row in written_table()):g}",
        "COMMIT": commit(repo),
        "PYTHON_MIN": python_minimum(repo),
    }
    return fill((FILES / "kit" / "README.md").read_text(encoding="utf-8"), values)


def build_kit(repo: Path, kit: Path) -> list[str]:
    """Write the student kit of ``repo`` to ``kit`` (which must not exist); returns what was left out, and why."""
    notes = []
    kit.mkdir(parents=True)
    student_docs(repo, kit / "docs")
    copy_tree(repo / "reference", kit / "reference")
    notes += build_learner_grader(repo / "grader", kit / "grader")
    submissions = repo / "submissions"
    copy_tree(submissions / "_template", kit / "submissions" / "_template")
    readme = submissions / "README.md"
    (kit / "submissions" / "README.md").write_text(
        without_instructor_regions(readme.read_text(encoding="utf-8"), str(readme)), encoding="utf-8"
    )
    for folder in sorted(p for p in submissions.iterdir() if p.is_dir() and p.name != "_template"):
        notes.append(f"submissions/{folder.name}/: left out (someone's answers)")
    for name in COPIED:
        (kit / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, kit / name)
    (kit / "README.md").write_text(kit_readme(repo), encoding="utf-8")
    noxfile = fill((FILES / "kit" / "noxfile.py").read_text(encoding="utf-8"), {"TORCH": torch_pin(repo)})
    (kit / "noxfile.py").write_text(noxfile, encoding="utf-8")
    (kit / "pyproject.toml").write_text(kit_pyproject(repo), encoding="utf-8")
    workflows = kit / ".github" / "workflows"
    workflows.mkdir(parents=True)
    shutil.copy2(FILES / "kit" / "grade.yml", workflows / "grade.yml")
    notes += [f"{name}: left out (the instructor's)" for name in ("tests/", ".github/workflows/*", ".ci/run")]
    return notes


def learner_points_table(kit: Path) -> list[dict[str, Any]]:
    """The kit's grader imported in a fresh interpreter (as a learner's would be): its points table. UsageError,
    with the error, if the learner edition does not import."""
    code = "import json, grader; print(json.dumps(grader.points_table()))"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env |= {"PYTHONPATH": str(kit), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=kit, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise UsageError(f"the learner edition of the grader does not import:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout)
