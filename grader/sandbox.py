"""Run untrusted submission code in a child process, with limits, and bring back JSON.

First implementation (plain child process): every ``run`` starts ``python -I`` in a fresh
private scratch directory holding only the given files, with resource limits, and kills
the whole process group at the wall-time limit. The probe's result comes back over a
dedicated pipe (never stdout), size-capped and parsed as JSON. Isolation proper
(bubblewrap, namespaces, a pre-imported zygote) replaces the process start-up later
without changing this interface.
"""

from __future__ import annotations

import json
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_CHILD_SOURCE = (Path(__file__).with_name("sandbox_child.py")).read_text(encoding="utf-8")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run; a run that reaches one is killed and reported."""

    wall_seconds: float = 20.0
    cpu_seconds: float = 20.0
    memory_bytes: int = 2 * 2**30
    processes: int = 64
    file_bytes: int = 16 * 2**20
    output_bytes: int = 1 * 2**20  # cap on captured stdout+stderr, and on the result JSON


@dataclass
class Outcome:
    """What one run produced: a status, the probe's JSON result when ok, and a message for the learner."""

    status: str
    result: dict | None
    message: str
    stderr_tail: str
    seconds: float


class SandboxUnavailable(RuntimeError):
    """Raised when isolation is required but cannot be provided."""


class Sandbox:
    """Runs probe calls on submission files in child processes (see module docstring)."""

    def __init__(self, *, jobs: int = 1, limits: Limits = Limits(), require_isolation: bool = False) -> None:
        if require_isolation:
            raise SandboxUnavailable(
                "isolation was required but this sandbox build has no bubblewrap support yet; "
                "run without --require-isolation"
            )
        self.jobs = jobs
        self.limits = limits
        self.isolated = False
        self.isolation = "REDUCED: plain child process with resource limits only (no bubblewrap)"
        self._slots = threading.BoundedSemaphore(jobs)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the workers (nothing is held by the plain implementation)."""

    def run(
        self,
        files: dict[str, bytes],
        probe_source: str,
        call: str,
        args: dict,
        limits: Limits | None = None,
    ) -> Outcome:
        """Run ``probe.<call>(**args)`` next to ``files`` in a fresh child; never raises for child faults."""
        lim = limits or self.limits
        for name in files:
            if not _NAME.fullmatch(name) or name in (".", ".."):
                return Outcome("refused", None, f"file name {name!r} is not allowed", "", 0.0)
        with self._slots:
            return _run_plain(files, probe_source, call, args, lim)


def _limit_child(lim: Limits) -> None:
    """preexec: resource limits of the child (RLIMIT_NPROC does not bind root; see the threat model)."""
    cpu = max(1, int(lim.cpu_seconds + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim.file_bytes, lim.file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (lim.processes, lim.processes))
    base = 1536 * 2**20  # address space python + torch map before any user allocation
    resource.setrlimit(resource.RLIMIT_AS, (base + lim.memory_bytes, base + lim.memory_bytes))


def _run_plain(files: dict[str, bytes], probe_source: str, call: str, args: dict, lim: Limits) -> Outcome:
    start = time.monotonic()
    scratch = tempfile.mkdtemp(prefix="grader-scratch-")
    try:
        for name, data in files.items():
            Path(scratch, name).write_bytes(data)
        nonce = secrets.token_hex(16)
        request = json.dumps({"probe": probe_source, "call": call, "args": args, "nonce": nonce})
        res_r, res_w = os.pipe()
        req_r, req_w = os.pipe()
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": scratch, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _CHILD_SOURCE, str(req_r), str(res_w), scratch],
            cwd=scratch,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            pass_fds=(req_r, res_w),
            start_new_session=True,
            preexec_fn=lambda: _limit_child(lim),
        )
        os.close(req_r)
        os.close(res_w)
        writer = threading.Thread(target=_write_all, args=(req_w, request.encode()), daemon=True)
        writer.start()
        out = _Reader(proc.stdout.fileno(), lim.output_bytes)
        res = _Reader(res_r, lim.output_bytes)
        deadline = start + lim.wall_seconds
        killed = ""
        while proc.poll() is None:
            if time.monotonic() > deadline:
                killed = "timeout"
            elif out.over:
                killed = "output-limit"
            if killed:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        code = proc.wait()
        _kill_group(proc.pid)
        out.join(1.0)
        res.join(1.0)
        os.close(res_r)
        proc.stdout.close()
        tail = _tail(out.data)
        return _judge(killed, code, res.data, res.over, nonce, tail, lim, time.monotonic() - start)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _write_all(fd: int, data: bytes) -> None:
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError:
        pass


class _Reader(threading.Thread):
    """Drain a pipe, keeping at most ``cap`` bytes; ``over`` tells whether more came."""

    def __init__(self, fd: int, cap: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.cap, self.data, self.over = fd, cap, b"", False
        self.start()

    def run(self) -> None:
        chunks, size = [], 0
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            if size < self.cap:
                chunks.append(chunk[: self.cap - size])
            size += len(chunk)
            if size > self.cap:
                self.over = True
            self.data = b"".join(chunks)


def _tail(data: bytes, lines: int = 30, chars: int = 4000) -> str:
    text = data.decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])[-chars:]


def _judge(
    killed: str, code: int, raw: bytes, too_big: bool, nonce: str, tail: str, lim: Limits, seconds: float
) -> Outcome:
    """Turn how the child ended and what it sent into an Outcome."""
    if killed == "timeout":
        msg = (
            f"stopped after the wall-time limit of {lim.wall_seconds:g} s: the code never finished "
            "(an endless loop, or far too much work?)"
        )
        return Outcome("timeout", None, msg, tail, seconds)
    if killed == "output-limit":
        msg = f"stopped: printed more than {lim.output_bytes} bytes; remove the prints from your code"
        return Outcome("output-limit", None, msg, tail, seconds)
    if too_big:
        msg = f"the result was larger than {lim.output_bytes} bytes"
        return Outcome("bad-result", None, msg, tail, seconds)
    envelope = None
    if raw:
        try:
            envelope = json.loads(raw)
        except (ValueError, RecursionError):
            envelope = None
    if not isinstance(envelope, dict) or envelope.get("nonce") != nonce:
        if code < 0:
            sig = signal.Signals(-code).name
            if -code == signal.SIGXCPU:
                return Outcome(
                    "cpu-limit",
                    None,
                    f"stopped at the CPU-time limit of {lim.cpu_seconds:g} s",
                    tail,
                    seconds,
                )
            return Outcome("crashed", None, f"the process was killed by signal {sig}", tail, seconds)
        return Outcome(
            "exited",
            None,
            f"the process exited with status {code} before returning a result; "
            "does your code call sys.exit(), exit() or os._exit()?",
            tail,
            seconds,
        )
    kind = envelope.get("kind")
    if kind == "ok" and isinstance(envelope.get("result"), dict):
        return Outcome("ok", envelope["result"], "", tail, seconds)
    error = str(envelope.get("error", ""))[:2000]
    if kind == "exit":
        return Outcome("exited", None, f"the code called {error}; a submission must not exit", tail, seconds)
    if kind == "memory":
        msg = f"stopped at the memory limit of {lim.memory_bytes // 2**20} MiB ({error})"
        return Outcome("memory-limit", None, msg, tail, seconds)
    if kind == "file":
        msg = f"stopped at the file-size limit of {lim.file_bytes} bytes ({error})"
        return Outcome("file-limit", None, msg, tail, seconds)
    return Outcome("bad-result", None, f"the probe failed: {error}", tail, seconds)
