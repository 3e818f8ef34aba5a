"""The learner edition of ``grader/``: the same grader, without what would give an answer away.

Built by rules from the instructor's ``grader/``, so that a file added there ships unless a rule leaves it out:

- the instructor's own tools are left out (``INSTRUCTOR_ONLY``: the similarity report, the review page, this release
  builder, the merging of shard gradebooks and the LMS export);
- the answer keys (``KEY_MODULES``) are replaced whole: ``rubrics.py`` by the names other modules import from
  it, each rubric said to be the course's; ``checks/check_quiz.py`` by stand-ins for its checks;
- in every other check module, each check that is not "visible" is cut out, decorator and body: a hidden one
  vanishes, and one shown after the due date leaves a stand-in (same number, name, points and page) that says
  the course's grader scores it, so the learner's points table and totals are the course's;
- ``__main__.COMMANDS`` keeps only the commands whose module ships.

Everything else is copied byte for byte. Checks are read statically (``ast``): the ``@check(...)`` arguments must
be literals, f-strings of them, or names bound to such at the top of the check module or of the grader module it
imports them from (``constants``); the repository being released is never imported, so a copy of it can be built
too.
"""

from __future__ import annotations

import ast
import inspect
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..scoring import CheckSpec, check

#: Folders and files of grader/ that only instructors run; the student kit has none of them.
INSTRUCTOR_ONLY = ("similarity", "release", "review", "reports/merge.py", "reports/lms.py")
#: Modules that hold answer keys: never shipped; each is replaced by a stand-in (``stand_in_rubrics``, ``stand_ins``).
KEY_MODULES = ("rubrics.py", "checks/check_quiz.py")
#: What a stand-in for a withheld check tells the learner; its points wait for the course's grader.
RELEASED_LATER = (
    "{name}: scored by your course's grader, which holds what this check compares against (this kit does not); "
    "its {points:g} points count in the grade your instructor gives, and its feedback is released after the "
    "due date."
)
RUBRIC_PLACEHOLDER = "Scored with the course's rubric, which is not in the student kit."
CACHES = ("__pycache__",)


@dataclass(frozen=True)
class CheckDef:
    """A ``@check``-decorated function of a check module, read from its source: its spec and its line span."""

    function: str
    spec: CheckSpec
    first: int  # 1-based, the decorator's first line
    last: int  # 1-based, the function's last line

    def lines(self, source: str) -> list[str]:
        return source.splitlines()[self.first - 1 : self.last]


def constants(path: Path, depth: int = 1) -> dict[str, object]:
    """The names a module binds to literals at its top level, and (``depth`` modules deep) the ones it imports
    by name from another module of the same ``grader/`` folder; read from the source, nothing is imported."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    grader = next(p for p in path.parents if p.name == "grader")
    found: dict[str, object] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and depth > 0 and node.module:
            module = node.module.removeprefix("grader.") if node.level == 0 else node.module
            source = grader / Path(*module.split(".")).with_suffix(".py")
            if (node.level or node.module.startswith("grader.")) and source.is_file():
                there = constants(source, depth - 1)
                found |= {a.asname or a.name: there[a.name] for a in node.names if a.name in there}
        elif isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = evaluate(node.value, found)
            except ValueError:
                continue
    return found


def evaluate(node: ast.expr, names: dict[str, object]) -> object:
    """A literal, a name bound to one in ``names``, or an f-string of those; ValueError for anything else."""
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                if value.conversion != -1 or value.format_spec is not None:
                    raise ValueError("a formatted value with a conversion or a format")
                parts.append(str(evaluate(value.value, names)))
            else:
                parts.append(str(evaluate(value, names)))
        return "".join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):  # implicit concatenation spans lines
        return evaluate(node.left, names) + evaluate(node.right, names)  # type: ignore[operator]
    return ast.literal_eval(node)


def check_definitions(path: Path) -> list[CheckDef]:
    """Every check of a check module, in source order; UsageError if a ``@check(...)`` is not made of literals
    (or of names and f-strings of them, see ``constants``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    signature = inspect.signature(check)
    names = constants(path)
    found = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "check"):
                continue
            try:
                args = [evaluate(a, names) for a in decorator.args]
                kwargs = {k.arg: evaluate(k.value, names) for k in decorator.keywords if k.arg}
            except ValueError:
                raise UsageError(
                    f"{path}:{decorator.lineno}: @check(...) of {node.name} must be made of literals (or of names "
                    "bound to literals at the top of a grader module), so that the release can tell its visibility "
                    "without running it"
                ) from None
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            first = min(d.lineno for d in node.decorator_list)
            found.append(CheckDef(node.name, CheckSpec(**bound.arguments), first, node.end_lineno or node.lineno))
    return found


def stand_in(definition: CheckDef) -> str:
    """The source of a stand-in for a check shown after the due date: its spec, and a ManualReview saying so."""
    s = definition.spec
    message = RELEASED_LATER.format(name=s.name, points=s.points)
    return (
        f"@check({s.number!r}, {s.name!r}, {s.points!r}, {s.what!r}, {s.docs!r}, visibility={s.visibility!r})\n"
        f"def {definition.function}(evidence) -> str:\n"
        f"    raise ManualReview(\n        {message!r},\n        {RUBRIC_PLACEHOLDER!r},\n        '',\n    )\n"
    )


def stand_ins(path: Path) -> str:
    """A key module's replacement: stand-ins for its checks, all of which must be withheld from learners."""
    definitions = check_definitions(path)
    shown = [d.spec.number for d in definitions if d.spec.visibility == "visible"]
    if shown:
        raise UsageError(
            f"{path} holds answer keys, yet its check(s) {', '.join(shown)} are visible: the student kit cannot "
            "ship them. Declare them visibility='after_due_date' (or 'hidden'), or move them out of that module."
        )
    later = [stand_in(d) for d in definitions if d.spec.visibility == "after_due_date"]
    header = (
        f'"""Stand-ins for the checks of {path.name}: the course\'s grader holds their answer keys, this kit does '
        'not."""\n\nfrom __future__ import annotations\n\nfrom grader.scoring import ManualReview, check'
    )
    return "\n\n\n".join([header, *(s.rstrip() for s in later)]) + "\n"


def learner_module(path: Path) -> str:
    """A check module without its withheld checks: hidden ones cut out, those shown after the due date replaced
    by stand-ins at its end (with ``ManualReview`` imported for them)."""
    source = path.read_text(encoding="utf-8")
    definitions = [d for d in check_definitions(path) if d.spec.visibility != "visible"]
    if not definitions:
        return source
    lines = source.splitlines()
    edits: list[tuple[int, int, list[str]]] = [(d.first - 1, d.last, []) for d in definitions]  # [start, end) -> new
    later = [stand_in(d) for d in definitions if d.spec.visibility == "after_due_date"]
    imports = [n for n in ast.parse(source).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    if later and not any(alias.name == "ManualReview" for n in imports for alias in n.names):
        end = max((n.end_lineno or n.lineno for n in imports), default=0)
        edits.append((end, end, ["from grader.scoring import ManualReview"]))
    for start, stop, new in sorted(edits, reverse=True):
        lines[start:stop] = new
    return "\n\n\n".join(["\n".join(lines).rstrip(), *(s.rstrip() for s in later)]) + "\n"


def stand_in_rubrics(grader: Path, path: Path) -> str:
    """``rubrics.py`` for learners: the names the shipped modules import from it, with no rubric in them."""
    wanted = set()
    for module in shipped_python(grader):
        if module.relative_to(grader).as_posix() in KEY_MODULES:
            continue
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("rubrics"):
                wanted |= {alias.name for alias in node.names}
    unknown = sorted(wanted - {"WRITTEN_RUBRICS"})
    if unknown:
        raise UsageError(
            f"modules that ship to learners import {', '.join(unknown)} from {path}, which holds answer keys; "
            "move what they need out of it (only WRITTEN_RUBRICS has a stand-in)"
        )
    keys = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "WRITTEN_RUBRICS" for t in node.targets):
            keys = list(ast.literal_eval(node.value))
    body = "".join(f"    {key!r}: {RUBRIC_PLACEHOLDER!r},\n" for key in keys)
    return (
        '"""The student kit holds no rubric: your instructor scores the written work with the course\'s own."""\n\n'
        "from __future__ import annotations\n\n"
        f"# The written items grader.written names (its review list shows these instead of the rubrics).\n"
        f"WRITTEN_RUBRICS = {{\n{body}}}\n"
    )


def is_left_out(relative: Path) -> bool:
    """An instructor's tool (``grader/similarity/``, or a module ``grader/similarity.py``) or a cache."""
    top = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    return top in INSTRUCTOR_ONLY or relative.as_posix() in INSTRUCTOR_ONLY or bool(set(relative.parts) & set(CACHES))


def shipped_python(grader: Path) -> list[Path]:
    """The ``.py`` files of ``grader`` that the learner edition takes (before its keys are replaced)."""
    return sorted(p for p in grader.rglob("*.py") if not is_left_out(p.relative_to(grader)))


def filtered_commands(source: str, kept: set[str]) -> str:
    """``__main__.py`` with ``COMMANDS`` narrowed to the commands whose module is in ``kept``."""
    lines = source.splitlines()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "COMMANDS" for t in node.targets):
            commands = {k: v for k, v in ast.literal_eval(node.value).items() if v in kept}
            lines[node.lineno - 1 : node.end_lineno] = [f"COMMANDS = {commands!r}"]
    return "\n".join(lines) + "\n"


def build_learner_grader(grader: Path, target: Path) -> list[str]:
    """Write the learner edition of ``grader`` to ``target``; returns what was left out or replaced, and why."""
    notes = []
    kept_modules = {
        ".".join(("grader", *p.relative_to(grader).with_suffix("").parts)).removesuffix(".__init__")
        for p in shipped_python(grader)
    }
    for path in sorted(grader.rglob("*")):
        relative = path.relative_to(grader)
        if is_left_out(relative):
            if len(relative.parts) == 1 and relative.name not in CACHES:
                notes.append(f"grader/{relative}: left out (an instructor's tool)")
            continue
        if path.is_dir():
            continue
        out = target / relative
        out.parent.mkdir(parents=True, exist_ok=True)
        key = relative.as_posix()
        if key == "rubrics.py":
            out.write_text(stand_in_rubrics(grader, path), encoding="utf-8")
            notes.append(f"grader/{key}: replaced (answer keys): no rubric, only the written items' names")
        elif key in KEY_MODULES:
            out.write_text(stand_ins(path), encoding="utf-8")
            notes.append(f"grader/{key}: replaced (answer keys) by stand-ins for its checks")
        elif relative.parts[0] == "checks" and path.suffix == ".py":
            out.write_text(learner_module(path), encoding="utf-8")
            for d in check_definitions(path):
                if d.spec.visibility != "visible":
                    how = "left out" if d.spec.visibility == "hidden" else "replaced by a stand-in"
                    notes.append(f"check {d.spec.number} {d.spec.name}: {how} ({d.spec.visibility})")
        elif key == "__main__.py":
            out.write_text(filtered_commands(path.read_text(encoding="utf-8"), kept_modules), encoding="utf-8")
        else:
            shutil.copy2(path, out)
    return notes


def withheld_checks(grader: Path) -> list[tuple[Path, CheckDef]]:
    """Every check of ``grader/checks`` that learners do not get (not visible), with its module."""
    return [
        (path, d)
        for path in sorted((grader / "checks").glob("check_*.py"))
        for d in check_definitions(path)
        if d.spec.visibility != "visible"
    ]
