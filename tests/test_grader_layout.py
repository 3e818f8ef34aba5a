"""The grader's layout keeps its promises: the trust boundary drawn by the folders holds in the code.

``grader/sandbox/`` is the host side of the sandbox and imports nothing else of the grader, so it loads
without pytest, torch or ``reference``. ``grader/sandbox/inside/`` holds the files sent as source text into
the sandbox: nothing imports them, they import only the standard library and torch, and reading one as a
module runs nothing.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
INSIDE = REPO / "grader" / "sandbox" / "inside"
SHIPPED = sorted(INSIDE.glob("*.py"))


def test_the_sandbox_imports_and_runs_without_pytest_torch_or_reference() -> None:
    """In a fresh interpreter where those three cannot be imported, the sandbox still loads and runs a probe."""
    script = textwrap.dedent(
        """
        import json, sys
        BLOCKED = ("pytest", "_pytest", "torch", "reference")
        for name in BLOCKED:
            sys.modules[name] = None  # `import name` fails; importlib.util.find_spec(name) finds nothing
        from grader.sandbox import Limits, Sandbox
        probe = "import model\\n\\ndef hello():\\n    return {'x': model.X + 1}\\n"
        with Sandbox(jobs=1, limits=Limits(wall_seconds=60)) as box:
            out = box.run({"model.py": b"X = 41\\n"}, probe, "hello", {})
        loaded = sorted(m for m, module in sys.modules.items() if module is not None and m.split(".")[0] in
                        ("grader", *BLOCKED))
        print(json.dumps({"loaded": loaded, "status": out.status, "result": out.result, "message": out.message}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["loaded"] == [
        "grader",
        "grader.sandbox",
        "grader.sandbox.bwrap",
        "grader.sandbox.limits",
        "grader.sandbox.pool",
        "grader.sandbox.verdict",
    ]
    assert (report["status"], report["result"], report["message"]) == ("ok", {"x": 42}, "")


def imported(path: Path) -> set[str]:
    """Every module an ``import`` statement of ``path`` names, relative imports resolved (``a.b`` and ``a.b.c``
    for ``from a.b import c``)."""
    package = ".".join(path.relative_to(REPO).parent.parts)
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], node.module or ""])
            module = (base if node.level else node.module or "").strip(".")
            names |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_nothing_imports_the_files_shipped_into_the_sandbox() -> None:
    assert [path.name for path in SHIPPED] == ["probe.py", "zygote.py"]
    assert not (INSIDE / "__init__.py").exists()  # not a package: the folder says it is not imported
    code = [
        REPO / "noxfile.py",
        *(path for top in ("grader", "reference", "tests", "docs") for path in (REPO / top).rglob("*.py")),
    ]
    skip = (INSIDE, REPO / "tests" / "fixtures", REPO / "docs" / "_build", REPO / "docs" / "auto_examples")
    sources = [path for path in code if not any(path.is_relative_to(s) for s in skip)]
    assert len(sources) > 50
    offenders = {
        str(path.relative_to(REPO)): sorted(name for name in imported(path) if name.startswith("grader.sandbox.inside"))
        for path in sources
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_a_shipped_file_imports_only_the_standard_library_and_torch() -> None:
    for path in SHIPPED:
        outside = {name.split(".")[0] for name in imported(path)} - set(sys.stdlib_module_names) - {"torch"}
        assert outside == set(), path.name


def test_reading_a_shipped_file_as_a_module_runs_nothing() -> None:
    """The zygote starts only as ``__main__`` (``python -c``): run as any other module, no file calls main()."""
    for path in SHIPPED:
        script = f"import runpy; runpy.run_path({str(path)!r}, run_name='shipped')"
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
        )
        assert (done.returncode, done.stdout, done.stderr) == (0, "", ""), path.name
