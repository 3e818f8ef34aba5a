"""The sandbox's contract: results, probe failures, worker recovery, and the fallback without bubblewrap."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from grader.sandbox import Limits, Sandbox, SandboxUnavailable
from grader.sandbox import bwrap as _sandbox_bwrap
from grader.sandbox import pool as sandbox_module

HOSTILE = Path(__file__).resolve().parent / "fixtures" / "hostile"
SMALL = Limits(wall_seconds=30.0, cpu_seconds=10.0, memory_bytes=256 * 2**20, processes=16, output_bytes=64 * 2**10)
PROBE = """
import importlib
import torch

def load(call=None, kwargs=None):
    model = importlib.import_module("model")
    value = getattr(model, call)(**(kwargs or {})) if call else None
    return {"loaded": True, "value": value, "torch": torch.__file__}

def fail():
    raise ValueError("boom")

def not_a_dict():
    return [1, 2]

def not_json():
    return {"tensor": torch.zeros(2)}

def huge():
    return {"text": "x" * 2**20}
"""
MODEL = {"model.py": b"X = 41\n\ndef add(a):\n    return X + a\n"}


@pytest.fixture(scope="module")
def sandbox():
    try:
        box = Sandbox(jobs=1, limits=SMALL, require_isolation=True)
    except SandboxUnavailable as exc:
        pytest.fail(f"{exc}\nThese tests need a working bubblewrap: run `bash .ci/setup`.")
    with box:
        yield box


def test_isolation_is_bubblewrap(sandbox):
    assert sandbox.isolated is True
    assert sandbox.isolation.startswith("bubblewrap: no network, read-only system, none of the repository visible")


def test_a_run_returns_the_probe_result_with_the_real_torch(sandbox):
    out = sandbox.run(MODEL, PROBE, "load", {"call": "add", "kwargs": {"a": 1}})
    assert out.status == "ok", out.message
    assert out.message == ""
    assert out.result["value"] == 42
    assert out.result["torch"].endswith("torch/__init__.py")
    assert out.seconds > 0


def test_an_exception_escaping_the_probe_is_a_crash_with_its_traceback(sandbox):
    out = sandbox.run(MODEL, PROBE, "fail", {})
    assert out.status == "crashed"
    assert out.message == "the code raised ValueError: boom (the traceback is below)"
    assert "Traceback (most recent call last)" in out.stderr_tail


@pytest.mark.parametrize(
    ("call", "message"),
    [
        ("not_a_dict", "the probe returned list, not a JSON object; nothing of it was used"),
        (
            "not_json",
            "the observations could not be sent back as JSON (TypeError: Object of type Tensor is not JSON "
            "serializable); nothing of them was used",
        ),
        ("huge", "the observations were larger than 64 KiB; nothing of them was used"),
    ],
)
def test_results_that_are_not_a_small_json_object_are_bad(sandbox, call, message):
    out = sandbox.run(MODEL, PROBE, call, {})
    assert out.status == "bad-result"
    assert out.result is None
    assert out.message == message


def test_a_file_over_the_size_limit_is_refused(sandbox):
    out = sandbox.run({"model.py": b"#" * (SMALL.file_bytes + 1)}, PROBE, "load", {})
    assert out.status == "refused"
    assert (
        out.message == f"the file model.py is {SMALL.file_bytes + 1} bytes, more than the limit of {SMALL.file_bytes}"
    )


def test_writing_a_file_over_the_size_limit_stops_the_run(sandbox):
    writer = {"model.py": b"open('big', 'wb').write(b'0' * (2 * 2**20))\n"}
    out = sandbox.run(writer, PROBE, "load", {}, Limits(file_bytes=2**20))
    assert out.status == "file-limit"
    assert out.message.startswith("stopped at the file-size limit of 1 MiB")


def test_creating_files_without_end_stops_at_the_file_limit(sandbox):
    creator = {"model.py": b"for i in range(10**6):\n    open(f'f{i}', 'w').close()\n"}
    out = sandbox.run(creator, PROBE, "load", {})
    assert out.status == "file-limit"
    assert out.message.endswith(
        "(OSError: [Errno 28] No space left on device: 'f4094')"
    )  # 4096 inodes: /scratch, model.py, f0..f4093


def test_a_worker_killed_from_outside_is_replaced(sandbox):
    worker = sandbox._workers[0]
    assert sandbox.run(MODEL, PROBE, "load", {}).status == "ok"
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    out = sandbox.run(MODEL, PROBE, "load", {})
    assert out.status == "ok", out.message


def test_without_bubblewrap_isolation_is_reduced_and_says_so(monkeypatch):
    monkeypatch.setattr(_sandbox_bwrap.shutil, "which", lambda name: None)
    with Sandbox(jobs=1, limits=SMALL) as box:
        assert box.isolated is False
        assert box.isolation.startswith(
            "REDUCED: bubblewrap (bwrap) is not installed; plain child process with resource limits only"
        )
        out = box.run(MODEL, PROBE, "load", {"call": "add", "kwargs": {"a": 1}})
        assert out.status == "ok", out.message
        assert out.result["value"] == 42
        hang = {"model.py": (HOSTILE / "loop_in_forward" / "model.py").read_bytes()}
        out = box.run(hang, PROBE, "load", {"call": "forward"}, Limits(wall_seconds=1))
        assert out.status == "timeout"
        assert box.run(MODEL, PROBE, "load", {}).status == "ok"


def test_without_linux_facilities_a_plain_child_still_grades(monkeypatch):
    """The path a learner's Mac takes (no bwrap, no /proc, no prctl, pidfd or seccomp), exercised here."""
    monkeypatch.setattr(_sandbox_bwrap.shutil, "which", lambda name: None)
    monkeypatch.setattr(sandbox_module, "_LINUX", False)
    with Sandbox(jobs=1, limits=SMALL) as box:
        assert "plain child process with wall-time, CPU and file-size limits only" in box.isolation
        out = box.run(MODEL, PROBE, "load", {"call": "add", "kwargs": {"a": 1}})
        assert out.status == "ok", out.message
        assert out.result["value"] == 42
        hang = {"model.py": (HOSTILE / "loop_in_forward" / "model.py").read_bytes()}
        assert box.run(hang, PROBE, "load", {"call": "forward"}, Limits(wall_seconds=1)).status == "timeout"
        leave = {"model.py": (HOSTILE / "os_exit" / "model.py").read_bytes()}
        assert box.run(leave, PROBE, "load", {}).status == "exited"
        flood = {"model.py": (HOSTILE / "stdout_flood" / "model.py").read_bytes()}
        assert box.run(flood, PROBE, "load", {}).status == "output-limit"
        assert box.run(MODEL, PROBE, "load", {}).status == "ok"


def test_required_isolation_refuses_to_run_without_bubblewrap(monkeypatch):
    monkeypatch.setattr(_sandbox_bwrap.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match=r"isolation is required but bubblewrap \(bwrap\) is not installed"):
        Sandbox(require_isolation=True)


def test_required_isolation_refuses_a_bubblewrap_that_fails(monkeypatch):
    monkeypatch.setattr(_sandbox_bwrap, "command", lambda python, as_root: ["/bin/false", "--"])
    with pytest.raises(SandboxUnavailable, match=r"bubblewrap failed \(exit 1\).*`bash \.ci/setup`"):
        Sandbox(require_isolation=True)
