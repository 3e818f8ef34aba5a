"""Hostile submissions against the sandbox: one fixture per behaviour (tests/fixtures/hostile/), each
asserting the verdict and the learner's message. Limits are small so that each test stops in seconds;
no test asserts a wall-clock time.
"""

from __future__ import annotations

import hashlib
import os
import socket
import sys
import threading
from pathlib import Path

import pytest

from grader.sandbox import Limits, Sandbox, SandboxUnavailable

REPO = Path(__file__).resolve().parents[1]
HOSTILE = REPO / "tests" / "fixtures" / "hostile"
SMALL = Limits(
    wall_seconds=30.0,
    cpu_seconds=10.0,
    memory_bytes=256 * 2**20,
    processes=16,
    file_bytes=2**20,
    output_bytes=64 * 2**10,
)
# The probe of these tests: import the learner's module, then call one of its functions.
PROBE = """
import importlib

def load(call=None, kwargs=None):
    model = importlib.import_module("model")
    value = getattr(model, call)(**(kwargs or {})) if call else None
    return {"loaded": True, "value": value}
"""


def hostile(name: str) -> dict[str, bytes]:
    return {"model.py": (HOSTILE / name / "model.py").read_bytes()}


@pytest.fixture(scope="module")
def sandbox():
    try:
        box = Sandbox(jobs=2, limits=SMALL, require_isolation=True)
    except SandboxUnavailable as exc:
        pytest.fail(f"{exc}\nThese tests need a working bubblewrap: run `bash .ci/setup`.")
    with box:
        yield box


def test_busy_loop_at_import_stops_at_the_cpu_limit(sandbox):
    out = sandbox.run(hostile("loop_at_import"), PROBE, "load", {}, Limits(cpu_seconds=1, wall_seconds=60))
    assert out.status == "cpu-limit"
    assert out.result is None
    assert out.message.startswith("stopped at the CPU-time limit of 1 s")


def test_endless_forward_stops_at_the_wall_limit(sandbox):
    out = sandbox.run(hostile("loop_in_forward"), PROBE, "load", {"call": "forward"}, Limits(wall_seconds=1))
    assert out.status == "timeout"
    assert out.message.startswith("stopped after the wall-time limit of 1 s: the code never finished")


def test_memory_bomb_stops_at_the_memory_limit(sandbox):
    out = sandbox.run(hostile("memory_bomb"), PROBE, "load", {})
    assert out.status == "memory-limit"
    assert out.message.startswith("stopped at the memory limit of 256 MiB")


def test_memory_spread_over_processes_counts_as_a_whole(sandbox):
    out = sandbox.run(hostile("memory_tree"), PROBE, "load", {})
    assert out.status == "memory-limit"
    assert out.message.startswith("stopped at the memory limit of 256 MiB")


def test_fork_bomb_stops_at_the_process_limit(sandbox):
    out = sandbox.run(hostile("fork_bomb"), PROBE, "load", {})
    assert out.status == "process-limit"
    assert out.message.startswith("stopped at the limit of 16 processes and threads")


def test_gigabytes_on_stdout_stop_at_the_output_limit(sandbox):
    out = sandbox.run(hostile("stdout_flood"), PROBE, "load", {})
    assert out.status == "output-limit"
    assert out.message.startswith("stopped: the code printed more than 64 KiB to stdout/stderr")
    assert 0 < len(out.stderr_tail) <= 4000


def test_sys_exit_at_import_is_not_success(sandbox):
    out = sandbox.run(hostile("sys_exit"), PROBE, "load", {})
    assert out.status == "exited"
    assert out.message == "the code called sys.exit(0) before it returned a result; a submission must not exit"


def test_os_exit_at_import_is_not_success(sandbox):
    out = sandbox.run(hostile("os_exit"), PROBE, "load", {})
    assert out.status == "exited"
    assert out.message.startswith("the process exited with status 0 before it returned a result")
    assert "os._exit()" in out.message


def test_a_process_that_kills_itself_is_a_crash(sandbox):
    out = sandbox.run(hostile("kill_self"), PROBE, "load", {})
    assert out.status == "crashed"
    assert out.message.startswith("the process was killed by signal SIGKILL before it returned a result")


def test_killing_every_reachable_process_harms_only_the_run(sandbox):
    out = sandbox.run(hostile("kill_all"), PROBE, "load", {})
    assert out.status == "crashed"
    assert "SIGKILL" in out.message
    for _ in range(3):  # both workers still serve
        assert sandbox.run({"model.py": b"X = 1\n"}, PROBE, "load", {}).status == "ok"


def test_grader_files_keys_and_other_submissions_are_not_found(sandbox):
    wanted = [*sorted(REPO.glob("grader/**/*.py")), *sorted(REPO.glob("grader/**/*.toml"))]
    wanted += [*sorted(HOSTILE.glob("*/model.py")), REPO / "pyproject.toml", REPO / "README.md"]
    wanted += [p for p in (Path("/etc/shadow"), Path("/etc/hostname"), Path.home() / ".bashrc") if p.exists()]
    assert len(wanted) > 10
    paths = [str(p) for p in wanted]
    out = sandbox.run(hostile("read_outside"), PROBE, "load", {"call": "steal", "kwargs": {"paths": paths}})
    assert out.status == "ok", out.message
    assert out.result["value"] == dict.fromkeys(paths, "FileNotFoundError")


def test_nothing_of_the_repository_is_visible(sandbox):
    out = sandbox.run(hostile("read_outside"), PROBE, "load", {"call": "scan"})
    assert out.status == "ok", out.message
    seen = out.result["value"]
    assert "/scratch/model.py" in seen
    # Only the Python installation is mounted; under nox it is a virtualenv inside the repository.
    leaked = [p for p in seen if p.startswith(str(REPO)) and not p.startswith(sys.prefix)]
    assert leaked == []
    assert [p for p in seen if p.startswith("/scratch/")] == ["/scratch/model.py"]
    assert not [p for p in seen if p.endswith(".toml") and not p.startswith(sys.prefix)]


def test_writes_outside_scratch_are_refused_and_nothing_persists(sandbox):
    target = REPO / "grader" / "sandbox" / "pool.py"
    before = hashlib.sha256(target.read_bytes()).hexdigest()
    outside = [str(target), str(REPO / "owned.txt"), "/usr/owned", "/owned", "/etc/owned", f"{sys.prefix}/owned"]
    out = sandbox.run(hostile("write_outside"), PROBE, "load", {"call": "write", "kwargs": {"paths": outside}})
    assert out.status == "ok", out.message
    assert "WROTE" not in out.result["value"].values()
    assert set(out.result["value"].values()) <= {"FileNotFoundError", "OSError", "PermissionError"}
    assert hashlib.sha256(target.read_bytes()).hexdigest() == before
    assert not (REPO / "owned.txt").exists()
    private = ["/scratch/mark", "/tmp/mark", "/dev/shm/mark"]
    out = sandbox.run(hostile("write_outside"), PROBE, "load", {"call": "write", "kwargs": {"paths": private}})
    assert out.result["value"] == dict.fromkeys(private, "WROTE")
    for _ in range(2):  # whichever worker serves the next run, nothing of this one is left
        out = sandbox.run(hostile("write_outside"), PROBE, "load", {"call": "exists", "kwargs": {"paths": private}})
        assert out.result["value"] == dict.fromkeys(private, False)


def test_network_connections_are_refused(sandbox):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        expected = {  # the sandbox's own empty loopback, and no route anywhere else
            ("127.0.0.1", server.getsockname()[1]): "ConnectionRefusedError: [Errno 111] Connection refused",
            ("1.1.1.1", 80): "OSError: [Errno 101] Network is unreachable",
        }
        for (host, port), error in expected.items():
            args = {"call": "connect", "kwargs": {"host": host, "port": port}}
            out = sandbox.run(hostile("network"), PROBE, "load", args)
            assert out.status == "crashed"
            assert out.message == f"the code raised {error} (the traceback is below)"
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached the grader's own listening socket


def test_memory_hidden_from_the_watchdog_is_refused_and_none_survives(sandbox):
    files = hostile("hidden_memory")
    out = sandbox.run(files, PROBE, "load", {"call": "memfd"})
    assert out.result["value"] == "PermissionError: Operation not permitted"
    out = sandbox.run(files, PROBE, "load", {"call": "user_namespace"})
    assert out.result["value"] == "Operation not permitted"
    out = sandbox.run(files, PROBE, "load", {"call": "sysv_segment"})
    seg = out.result["value"]
    assert isinstance(seg, int)
    for _ in range(2):  # each worker: the segment died with the run's IPC namespace
        out = sandbox.run(files, PROBE, "load", {"call": "sysv_exists", "kwargs": {"seg": seg}})
        assert out.result["value"] is False


def test_forged_json_on_stdout_changes_nothing(sandbox):
    out = sandbox.run(hostile("forged_stdout"), PROBE, "load", {})
    assert out.status == "ok"
    assert out.result == {"loaded": True, "value": None}
    assert '"score": 100' in out.stderr_tail  # it was printed, and only shown as output


def test_a_forged_envelope_on_the_result_channel_is_rejected(sandbox):
    out = sandbox.run(hostile("forged_channel"), PROBE, "load", {})
    assert out.status == "exited"
    assert out.result is None


def test_no_process_outlives_its_run(sandbox):
    out = sandbox.run(hostile("orphan"), PROBE, "load", {})
    assert out.status == "ok"
    # A worker replies as soon as the result is in and kills the run; it reaps every process of it
    # before it starts its next run. Workers serve in turn, so after one run per worker all are reaped.
    for _ in range(2):
        assert sandbox.run({"model.py": b"X = 1\n"}, PROBE, "load", {}).status == "ok"
    names = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            names.append(Path(f"/proc/{pid}/comm").read_text().strip())
        except OSError:
            continue
    assert "grader-orphan" not in names


@pytest.mark.parametrize("name", ["torch.py", "sitecustomize.py", "conftest.py", "json.py", "probe.py"])
def test_files_that_would_shadow_modules_are_refused(sandbox, name):
    out = sandbox.run({"model.py": b"", name: b"raise SystemExit(3)\n"}, PROBE, "load", {})
    assert out.status == "refused"
    assert out.message == f"the file name {name!r} would shadow the module {name[:-3]!r}; rename it"


@pytest.mark.parametrize("name", ["../model.py", ".hidden", "sub/model.py", ""])
def test_file_names_with_paths_are_refused(sandbox, name):
    out = sandbox.run({name: b"X = 1\n"}, PROBE, "load", {})
    assert out.status == "refused"
    assert out.message.startswith(f"the file name {name!r} is not allowed")


def test_concurrent_runs_cannot_see_each_other(sandbox):
    holder = "import time\nopen('/scratch/secret', 'w').write('mine')\ndef wait():\n    time.sleep(2)\n"
    snoop = (
        "import os\n"
        "def look():\n"
        "    pids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        "    return {'pids': pids, 'scratch': sorted(os.listdir('/scratch'))}\n"
    )
    held = []
    thread = threading.Thread(
        target=lambda: held.append(sandbox.run({"model.py": holder.encode()}, PROBE, "load", {"call": "wait"}))
    )
    thread.start()
    out = sandbox.run({"model.py": snoop.encode()}, PROBE, "load", {"call": "look"})
    thread.join()
    assert held[0].status == "ok"
    assert out.status == "ok", out.message
    assert out.result["value"] == {"pids": [1, 2], "scratch": ["model.py"]}
