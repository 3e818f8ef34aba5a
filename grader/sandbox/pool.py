"""A pool of sandbox workers: each a zygote under bubblewrap that forks one fresh process per run.

A ``Sandbox`` keeps one long-lived worker per job slot. Each worker is a *zygote*: a Python process
that starts inside bubblewrap (no network, read-only system, none of the repository visible; see
``grader/sandbox/bwrap.py``), imports torch once, and then forks a fresh process per ``run``
with its own pid and mount namespaces, an empty tmpfs scratch directory holding only the files
given, an unprivileged uid and no capabilities (``grader/sandbox/inside/zygote.py``, sent to it as
source text). So a run costs one fork, not a Python start and a torch import, and nothing of one run
(files, processes) reaches the next. Without bubblewrap the same zygote runs as a plain child process
with resource limits only.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import re
import secrets
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from . import bwrap
from .limits import Limits
from .verdict import Outcome, judge

_ZYGOTE_SOURCE = (Path(__file__).parent / "inside" / "zygote.py").read_text(encoding="utf-8")
PROBE_MODULE = "probe"  # the name the probe's source runs under inside the sandbox (sent with each request)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# A submitted file must not shadow a module the probe or the runtime imports by name.
_RESERVED = set(sys.stdlib_module_names) | {"torch", PROBE_MODULE, "sitecustomize", "usercustomize", "conftest"}
_START_SECONDS = 120.0  # a worker's start-up (bubblewrap, Python, import torch) on a slow machine
_GRACE_SECONDS = 10.0  # the zygote's own reply after a run's wall-time limit
_STOP_SECONDS = 5.0  # an idle zygote's reaping of its last run when the sandbox closes
_UID_BASE = 200_000  # runs drop to uid _UID_BASE + 64 * (pid mod 10000) + slot when we are root
_LINUX = sys.platform.startswith("linux")  # elsewhere (macOS) a plain child has time, CPU and file limits only
DEFAULT_LIMITS = Limits()


class SandboxUnavailable(RuntimeError):
    """Isolation was required (``require_isolation=True``) but bubblewrap is missing or does not work here."""


class _Worker:
    """One zygote process and the two pipes that talk to it (length-prefixed JSON both ways)."""

    def __init__(self, isolated: bool, uid: int) -> None:
        self.isolated, self.uid = isolated, uid
        self.proc: subprocess.Popen | None = None
        self.ready = False
        self.workdir = ""

    def start(self) -> None:
        """Start the zygote; it imports torch in the background while the grader does other work."""
        req_r, self.req_w = os.pipe()
        self.rep_r, rep_w = os.pipe()
        keep = [str(r) for r in bwrap.python_roots() if Path(r).is_relative_to("/tmp")]
        mode = "ns" if self.isolated else "plain" if _LINUX else "portable"
        argv = ["-I", "-c", _ZYGOTE_SOURCE, mode, str(req_r), str(rep_w)]
        argv += [str(self.uid), json.dumps(keep)]
        self.log = tempfile.TemporaryFile()
        if self.isolated:
            cmd, env, cwd, pre = bwrap.command(sys.executable, os.geteuid() == 0), {}, "/", None
        else:
            self.workdir = tempfile.mkdtemp(prefix="grader-sandbox-")
            os.chmod(self.workdir, 0o711)  # the run's uid must reach its scratch directory below
            pre = _die_with_parent if _LINUX else None
            cmd, env, cwd = [sys.executable], dict(bwrap.ENV), self.workdir
            env["HOME"] = self.workdir
        self.proc = subprocess.Popen(
            [*cmd, *argv],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            pass_fds=(req_r, rep_w),
            start_new_session=True,
            env=env,
            cwd=cwd,
            preexec_fn=pre,
        )
        os.close(req_r)
        os.close(rep_w)
        self.ready = False
        self.runs = 0

    def call(self, request: dict, timeout: float) -> dict | None:
        """Send one request and wait for its reply; None if the worker died or went silent."""
        if self.proc is not None and self.proc.poll() is not None:
            self.stop()  # it died between runs (killed from outside): start a fresh one, lose nothing
        if self.proc is None:
            self.start()
        if not self.ready:
            hello = self._read(_START_SECONDS)
            if hello is None or not hello.get("ready"):
                return None
            self.ready = True
        self.runs += 1
        if not self.isolated:
            request["scratch"] = os.path.join(self.workdir, f"run-{self.runs}")
        body = json.dumps(request).encode()
        try:
            os.write(self.req_w, struct.pack("!I", len(body)) + body)
        except OSError:
            return None
        return self._read(timeout)

    def _read(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        buf = bytearray()
        need = 4
        with selectors.DefaultSelector() as sel:
            sel.register(self.rep_r, selectors.EVENT_READ)
            while len(buf) < need:
                if not sel.select(max(0.0, deadline - time.monotonic())):
                    return None
                chunk = os.read(self.rep_r, need - len(buf))
                if not chunk:
                    return None
                buf += chunk
                if need == 4 and len(buf) == 4:
                    need += struct.unpack("!I", buf)[0]
        return json.loads(buf[4:])

    def log_tail(self) -> str:
        """The worker's own stderr (its start-up errors), for a message when it fails."""
        self.log.seek(0)
        return self.log.read()[-2000:].decode("utf-8", "replace")

    def stop(self, graceful: bool = False) -> None:
        """End the worker and everything it started. ``graceful``: let an idle zygote reap its last run and
        exit on its own first (a short wait); then, or at once, kill its session (bubblewrap takes the
        namespaces along)."""
        if self.proc is not None:
            os.close(self.req_w)  # end of requests: an idle zygote reaps what is left and exits
            try:
                self.proc.wait(timeout=_STOP_SECONDS if graceful and self.ready else 0)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            os.close(self.rep_r)
            self.log.close()
            self.proc = None
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = ""


def _die_with_parent() -> None:
    """preexec for a plain worker: die when the grader dies (bubblewrap's --die-with-parent otherwise)."""
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Sandbox:
    """A pool of ``jobs`` sandbox workers; ``run`` is thread-safe and blocks while all workers are busy."""

    def __init__(self, *, jobs: int = 1, limits: Limits = DEFAULT_LIMITS, require_isolation: bool = False) -> None:
        if not 1 <= jobs <= 64:
            raise ValueError(f"jobs must be between 1 and 64, not {jobs}")
        self.limits = limits
        as_root = os.geteuid() == 0 and _LINUX
        problem = bwrap.probe_error(as_root)
        self.isolated = not problem
        if self.isolated:
            self.isolation = (
                "bubblewrap: no network, read-only system, none of the repository visible, private /tmp and "
                "scratch per run holding only the submitted files, own pid and mount namespaces per run, "
                + ("an unprivileged uid, " if as_root else "an unprivileged user namespace, ")
                + "no capabilities; limits on wall time, CPU, memory, processes, file size and output"
            )
        elif require_isolation:
            raise SandboxUnavailable(
                f"isolation is required but {problem}. Install bubblewrap (on Debian/Ubuntu: `bash .ci/setup`, "
                "or `apt-get install bubblewrap`), or grade without --require-isolation"
            )
        else:
            limits_kept = "resource limits only" if _LINUX else "wall-time, CPU and file-size limits only"
            # As root each run still becomes a uid of its own: it can read only what anyone may read.
            readable = (
                "world-readable files, as a uid of its own," if as_root else "files readable by the grader's user"
            )
            self.isolation = (
                f"REDUCED: {problem}; plain child process with {limits_kept}: the code could read "
                f"{readable} and use the network. Install bubblewrap (`bash .ci/setup`)"
            )
        uid_base = _UID_BASE + 64 * (os.getpid() % 10_000) if as_root else -1
        self._workers = [_Worker(self.isolated, uid_base + i if as_root else -1) for i in range(jobs)]
        self._idle: queue.SimpleQueue[_Worker] = queue.SimpleQueue()
        for worker in self._workers:
            worker.start()
            self._idle.put(worker)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker. The sandbox cannot be used afterwards."""
        for worker in self._workers:
            worker.stop(graceful=True)

    def run(
        self,
        files: dict[str, bytes],
        probe_source: str,
        call: str,
        args: dict,
        limits: Limits | None = None,
    ) -> Outcome:
        """Run ``probe.<call>(**args)`` in a fresh child beside ``files``; child faults give an Outcome, not raise."""
        lim = limits or self.limits
        refused = _refusal(files, lim)
        if refused:
            return Outcome("refused", None, refused, "", 0.0)
        nonce = secrets.token_hex(16)
        request = {
            "files": {name: base64.b64encode(data).decode() for name, data in files.items()},
            "probe": probe_source,
            "module": PROBE_MODULE,
            "call": call,
            "args": args,
            "limits": asdict(lim),
            "nonce": nonce,
            "scratch": bwrap.SCRATCH,
        }
        worker = self._idle.get()
        try:
            start = time.monotonic()
            reply = worker.call(request, lim.wall_seconds + _GRACE_SECONDS)
            if reply is None:
                log = worker.log_tail() if worker.proc is not None else ""
                worker.stop()
                msg = "the sandbox worker stopped answering; this run was abandoned (tell your instructor)"
                return Outcome("crashed", None, msg, log, time.monotonic() - start)
            return judge(reply, nonce, lim)
        finally:
            self._idle.put(worker)


def _refusal(files: dict[str, bytes], lim: Limits) -> str:
    """Why ``files`` cannot be run at all ('' when they can): names, shadowed modules, sizes."""
    for name, data in files.items():
        if not _NAME.fullmatch(name):
            return f"the file name {name!r} is not allowed (letters, digits, '_', '.', '-'; no leading dot)"
        if name.removesuffix(".py") in _RESERVED:
            return f"the file name {name!r} would shadow the module {name.removesuffix('.py')!r}; rename it"
        if len(data) > lim.file_bytes:
            return f"the file {name} is {len(data)} bytes, more than the limit of {lim.file_bytes}"
    return ""
