"""The grader's layout keeps its promises: the trust boundary drawn by the folders holds in the code.

``grader/sandbox/`` is the host side of the sandbox and imports nothing else of the grader, so it loads
without pytest, torch or ``reference``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


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
