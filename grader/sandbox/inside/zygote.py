"""Sent as source into the sandbox, never imported: the worker, a zygote that imports torch once and forks one
run per request.

Started by ``grader.sandbox.pool`` as ``python -I -c <this source> MODE CTL_IN CTL_OUT RUN_UID KEEP`` (under
bubblewrap, or as a plain child when bubblewrap is missing). Standard library (ctypes for the system calls) and torch
only: nothing of the grader is visible here. In ``ns`` mode each request builds, in a fresh pid namespace::

    zygote (this loop; trusted; torch imported; watchdog)
      ├─ pid 1: /usr/bin/sleep, spawned without copying the zygote (posix_spawn); the namespace's anchor
      └─ pid 2: the runner, forked: its own mount namespace (tmpfs /scratch, /tmp, /dev/shm, a fresh /proc),
                the files, limits, then an unprivileged uid and no capabilities, then probe.<call>(**args)
                (the request's probe source, run as the module it names)

The zygote polls the run every 20 ms: wall time, threads and private memory of every process in the
namespace; at a limit, or when the runner is done, it kills pid 1, and the kernel kills whatever else
is left in the namespace, so nothing of one run survives into the next. In plain mode (no namespaces)
the run is a session and, when we are root, a dedicated uid, and those are swept instead.
"""

import base64
import ctypes
import gc
import json
import os
import resource
import selectors
import shutil
import signal
import struct
import sys
import threading
import time
import traceback
import types
from collections.abc import Callable

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWPID = 0x00020000, 0x08000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 38, 36
POLL_SECONDS = 0.02
TAIL_BYTES = 16384
MAX_FILES = 4096  # per tmpfs of a run
ANCHOR = ["/usr/bin/sleep", "100000"]
LINUX = sys.platform.startswith("linux")


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount_tmpfs(path: str, size: int, mode: str) -> None:
    """A fresh tmpfs at ``path`` in this run's mount namespace: no setuid, no devices, its bytes capped,
    and its number of files too (inodes cost kernel memory that the size cap does not count)."""
    opts = f"size={size},nr_inodes={MAX_FILES},mode={mode}".encode()
    _check(LIBC.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), f"mount {path}")


def _fresh_tmp(size: int, keep: list[str]) -> None:
    """An empty tmpfs on /tmp for this run, keeping the read-only mounts under it (a virtualenv in /tmp).

    Each kept mount is held by an O_PATH descriptor before /tmp is covered, then bound back through
    ``/proc/self/fd`` and made read-only again.
    """
    held = {path: os.open(path, os.O_PATH) for path in keep}
    _mount_tmpfs("/tmp", size, "1777")
    for path, fd in held.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        src = f"/proc/self/fd/{fd}".encode()
        _check(LIBC.mount(src, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        _check(LIBC.mount(None, path.encode(), None, flags, None), f"read-only {path}")
        os.close(fd)


def _private_mounts(req: dict, keep: list[str]) -> None:
    """The runner's own mount and IPC namespaces (no System V memory survives the run): fresh /scratch,
    /proc (this pid namespace), /tmp and /dev/shm."""
    lim = req["limits"]
    _check(LIBC.unshare(CLONE_NEWNS | CLONE_NEWIPC), "unshare mount and IPC namespaces")
    _check(LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    room = sum(len(v) for v in req["files"].values()) + lim["file_bytes"] + (1 << 20)
    _mount_tmpfs(req["scratch"], room, "0755")
    _check(LIBC.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
    _fresh_tmp(lim["file_bytes"] + (1 << 20), keep)
    _mount_tmpfs("/dev/shm", lim["file_bytes"] + (1 << 20), "1777")


# Syscalls a run never needs that would hold memory the watchdog cannot see (memfd, io_uring,
# userfaultfd, keyrings) or escape the run's namespaces (a new user namespace brings capabilities
# and unlimited tmpfs back). Numbers per architecture; clone3 gets ENOSYS so that libc falls back to
# clone, whose flags the filter can read (threads and fork stay allowed, namespace flags do not).
SECCOMP_ARCHES = {  # machine: (AUDIT_ARCH_*, denied syscalls, clone, clone3)
    "x86_64": (0xC000003E, (319, 447, 323, 425, 272, 308, 250, 248, 249), 56, 435),
    "aarch64": (0xC00000B7, (279, 447, 282, 425, 97, 268, 219, 217, 218), 220, 435),
}
CLONE_NEW_ANY = 0x7E020080  # CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWTIME


def _seccomp_filter() -> None:
    """Install the deny-list above (classic BPF) for this process and all it starts; EPERM for each."""
    machine = os.uname().machine
    if machine not in SECCOMP_ARCHES:
        return
    arch, denied, clone, clone3 = SECCOMP_ARCHES[machine]
    allow, eperm, enosys = 0x7FFF0000, 0x00050000 | 1, 0x00050000 | 38
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06  # BPF_LD|W|ABS, JMP|JEQ|K, JSET, JGE, BPF_RET|K
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, eperm), (ld, 0, 0, 0)]
    prog += [(jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # x32 system calls on x86_64
    prog += [(jeq, 0, 1, clone3), (ret, 0, 0, enosys)]
    prog += [(jeq, 0, 3, clone), (ld, 0, 0, 16), (jset, 0, 1, CLONE_NEW_ANY), (ret, 0, 0, eperm)]
    prog += [(ld, 0, 0, 0)]
    for nr in denied:
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(ret, 0, 0, allow)]
    filters = b"".join(struct.pack("HBBI", *insn) for insn in prog)
    buf = ctypes.create_string_buffer(filters)
    fprog = struct.pack("HxxxxxxP", len(prog), ctypes.addressof(buf))
    _check(LIBC.prctl(22, 2, ctypes.c_char_p(fprog), 0, 0), "seccomp")  # PR_SET_SECCOMP, MODE_FILTER


def _drop_privileges(uid: int) -> None:
    """Become ``uid`` (when root) and give up every capability; no later exec can regain any."""
    if uid >= 0 and os.getuid() == 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    header = struct.pack("II", 0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = bytes(24)  # effective, permitted, inheritable = 0 for both 32-bit words
    _check(LIBC.capset(header, data), "capset")
    _check(LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
    _seccomp_filter()


def _status(pid: int | str) -> dict[str, list[str]]:
    """``/proc/<pid>/status`` as {field: values}; empty when the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return {k: v.split() for k, _, v in (line.partition(":") for line in f)}
    except OSError:
        return {}


def _set_limits(lim: dict, nproc_margin: int) -> None:
    """Per-process limits of the runner; the zygote's watchdog adds limits over the whole tree."""
    cpu = max(1, int(lim["cpu_seconds"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_bytes"], lim["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    if LINUX:  # elsewhere RLIMIT_AS is not enforced (macOS) and there is no /proc to size it from
        # The address space already holds the interpreter and torch; the limit is what comes on top.
        space = int(_status("self")["VmSize"][0]) * 1024 + lim["memory_bytes"]
        resource.setrlimit(resource.RLIMIT_AS, (space, space))
    if nproc_margin >= 0:
        # A backstop above the watchdog's count, which kills the run with a clear verdict first. The
        # margin covers the sandbox's own processes where they count too (one user namespace, no uid switch).
        nproc = lim["processes"] + nproc_margin
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _runner(req: dict, ns: bool, uid: int, keep: list[str], margin: int, out_w: int, res_w: int) -> None:
    """Prepare the run's private world, then run the probe call as its untrusted tenant.

    Writes exactly one JSON envelope to ``res_w``: the probe's result, or why there is none.
    """
    try:
        _prepare(req, ns, uid, keep, margin, out_w, res_w)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        with os.fdopen(res_w, "wb") as f:
            f.write(json.dumps({"nonce": req["nonce"], "kind": "sandbox-error", "error": error}).encode())
        return
    nonce = req["nonce"]
    probe = types.ModuleType(req["module"])
    sys.modules[req["module"]] = probe
    try:
        exec(req["code"], probe.__dict__)
        result = getattr(probe, req["call"])(**req["args"])
    except SystemExit as exc:
        text = json.dumps({"nonce": nonce, "kind": "exit", "error": f"sys.exit({exc.code!r})"})
    except BaseException as exc:
        traceback.print_exc()
        text = json.dumps({"nonce": nonce, "kind": _error_kind(exc), "error": f"{type(exc).__name__}: {exc}"})
    else:
        try:
            text = json.dumps({"nonce": nonce, "kind": "ok", "result": result})
        except (TypeError, ValueError, RecursionError) as exc:
            text = json.dumps({"nonce": nonce, "kind": "unserializable", "error": f"{type(exc).__name__}: {exc}"})
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError, AttributeError):  # closed or replaced by the code: its output is lost
            continue
    with os.fdopen(res_w, "wb") as f:
        f.write(text.encode())


def _prepare(req: dict, ns: bool, uid: int, keep: list[str], margin: int, out_w: int, res_w: int) -> None:
    """Everything before the untrusted code: mounts, files, descriptors, limits, then giving up privileges."""
    os.setsid()
    scratch = req["scratch"]
    if ns:
        _private_mounts(req, keep)
    else:
        os.makedirs(scratch, mode=0o755)
    for name, data in req["files"].items():
        with open(os.path.join(scratch, name), "wb") as f:
            f.write(base64.b64decode(data))
    if uid >= 0 and os.getuid() == 0:
        for path in [scratch, *(os.path.join(scratch, n) for n in req["files"])]:
            os.chown(path, uid, uid)
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
    os.closerange(3, res_w)
    os.closerange(res_w + 1, 1 << 16)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    os.chdir(scratch)
    _set_limits(req["limits"], margin)
    if LINUX:
        _drop_privileges(uid)
    sys.path.insert(0, scratch)
    sys.dont_write_bytecode = True
    sys.argv = [req["module"]]


def _error_kind(exc: BaseException) -> str:
    """Name the limit behind an exception, when one is: MemoryError, torch's allocator failure, EFBIG."""
    if isinstance(exc, MemoryError) or "DefaultCPUAllocator" in str(exc):
        return "memory"
    # EFBIG: RLIMIT_FSIZE (Python ignores SIGXFSZ); ENOSPC: a tmpfs of the run is full (bytes or files).
    if isinstance(exc, OSError) and exc.errno in (27, 28):
        return "file"
    return "error"


class Run:
    """One run seen from the zygote: which processes are its, how much they use, how to kill them all."""

    def __init__(self, ns: bool, anchor: int, runner: int, uid: int, baseline: int) -> None:
        self.ns, self.anchor, self.runner, self.uid, self.baseline = ns, anchor, runner, uid, baseline

    def members(self) -> list[tuple[int, dict[str, list[str]]]]:
        """Every live process of the run but the anchor, with its status (none known without /proc)."""
        found = []
        if not LINUX:
            return found
        for name in os.listdir("/proc"):
            if not name.isdigit() or int(name) in (os.getpid(), self.anchor):
                continue
            if not self.ns and not self._in_session_or_uid(name):
                continue
            st = _status(name)
            if st.get("State", ["Z"])[0] in ("Z", "X"):  # gone, or dead and waiting to be reaped
                continue
            if self.ns and len(st.get("NSpid", ())) < 2:  # the run's namespace is the only one nested in ours
                continue
            found.append((int(name), st))
        return found

    def _in_session_or_uid(self, pid: str) -> bool:
        """Plain mode: the runner's session, or (as root) the uid dedicated to this job slot."""
        try:
            if self.uid >= 0 and os.stat(f"/proc/{pid}").st_uid == self.uid:
                return True
            with open(f"/proc/{pid}/stat", "rb") as f:
                return int(f.read().rsplit(b")", 1)[1].split()[3]) == self.runner
        except (OSError, IndexError, ValueError):
            return False

    def usage(self) -> tuple[int, int]:
        """Threads of the run (RLIMIT_NPROC counts threads too) and the anonymous memory it added:
        each process's RssAnon beyond what the zygote already had (forked pages start shared)."""
        tasks, added = 0, 0
        for _, st in self.members():
            try:
                tasks += int(st["Threads"][0])
                added += max(0, int(st["RssAnon"][0]) * 1024 - self.baseline)
            except (KeyError, IndexError, ValueError):
                continue
        return tasks, added

    def kill(self) -> None:
        """SIGKILL all of the run: its pid 1 takes the namespace along; else the session and the uid."""
        if self.ns:
            os.kill(self.anchor, signal.SIGKILL)
            return
        if not LINUX:  # no /proc to find strays: the runner's session (its process group) is what we know
            try:
                os.killpg(self.runner, signal.SIGKILL)
            except OSError:
                pass
            return
        for _ in range(100):  # processes may fork while we kill; stop when none is left
            pids = [pid for pid, _ in self.members()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    continue


def _serve(req: dict, ctx: dict) -> dict:
    """Start one run, watch it, collect its output, result and verdict facts for the parent to judge."""
    lim, ns = req["limits"], ctx["ns"]
    _reap(block=True)
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    start = time.monotonic()
    # Compiled here once per probe text (compiling runs nothing); every run then inherits the code object.
    req["code"] = ctx["compiled"].get(req["probe"]) or compile(req["probe"], "<grader probe>", "exec")
    ctx["compiled"][req["probe"]] = req["code"]

    def fork_runner() -> int:
        pid = os.fork()
        if pid == 0:
            try:
                os.close(out_r)
                os.close(res_r)
                _runner(req, ns, ctx["uid"], ctx["keep"], ctx["margin"], out_w, res_w)
            except BaseException:
                traceback.print_exc()
                os._exit(70)
            os._exit(0)
        return pid

    anchor, pid = _in_new_pid_namespace(fork_runner) if ns else (-1, fork_runner())
    os.close(out_w)
    os.close(res_w)
    run = Run(ns, anchor, pid, ctx["uid"], ctx["baseline"])
    pidfd = os.pidfd_open(pid) if LINUX else None
    facts = _watch(run, lim, out_r, res_r, pidfd, start, req["nonce"])
    for fd in (out_r, res_r):
        os.close(fd)
    _reap(block=False)
    if not ns:
        shutil.rmtree(req["scratch"], ignore_errors=True)
    facts["seconds"] = time.monotonic() - start
    return facts


def _in_new_pid_namespace(fork_runner: Callable[[], int]) -> tuple[int, int]:
    """Start the anchor (pid 1) and the runner (pid 2) in a fresh pid namespace; return their pids.

    unshare(CLONE_NEWPID) changes where the *caller's* next children go, and only once per task; so
    it is done by a short-lived thread, which then starts both children and ends, leaving the zygote's
    own namespace settings untouched for the next run (no setns, which a user namespace may forbid).
    """
    box: dict = {}

    def spawn() -> None:
        try:
            _check(LIBC.unshare(CLONE_NEWPID), "unshare pid namespace")
            box["anchor"] = os.posix_spawn(ANCHOR[0], ANCHOR, {})
            box["runner"] = fork_runner()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=spawn)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["anchor"], box["runner"]


def _watch(run: Run, lim: dict, out_r: int, res_r: int, pidfd: int | None, start: float, nonce: str) -> dict:
    """Read the run's output and result, check the limits every poll, until the runner ends or a limit."""
    buffers = {out_r: bytearray(), res_r: bytearray()}
    sizes = dict.fromkeys(buffers, 0)
    reason, status, cpu, peak_tasks, peak_memory, answered = "", None, 0.0, 0, 0, False
    sel = selectors.DefaultSelector()
    for fd in (out_r, res_r, pidfd):
        if fd is not None:  # without a pidfd (not Linux), the runner's end is polled below
            sel.register(fd, selectors.EVENT_READ)
    while status is None and not reason and not answered:
        for key, _ in sel.select(POLL_SECONDS):
            if key.fd == pidfd:
                _, status, usage = os.wait4(run.runner, 0)
                cpu = usage.ru_utime + usage.ru_stime
                sel.unregister(pidfd)
                continue
            chunk = os.read(key.fd, 65536)
            sizes[key.fd] += len(chunk)
            buffers[key.fd] += chunk
            if not chunk:
                sel.unregister(key.fd)
                answered = key.fd == res_r and _carries(buffers[res_r], nonce)
            elif key.fd == out_r:
                del buffers[out_r][:-TAIL_BYTES]
                if sizes[out_r] > lim["output_bytes"]:
                    reason = "output-limit"
            elif sizes[res_r] > lim["output_bytes"]:
                reason = "result-limit"
        if pidfd is None and status is None:
            pid, polled, usage = os.wait4(run.runner, os.WNOHANG)
            if pid:
                status, cpu = polled, usage.ru_utime + usage.ru_stime
        if status is not None or reason or answered:
            break
        tasks, added = run.usage()
        peak_tasks, peak_memory = max(peak_tasks, tasks), max(peak_memory, added)
        if time.monotonic() - start > lim["wall_seconds"]:
            reason = "timeout"
        elif tasks >= lim["processes"]:
            reason = "process-limit"
        elif added > lim["memory_bytes"]:
            reason = "memory-limit"
    run.kill()  # at a limit, or whatever the runner left behind (it may hold the pipes open)
    if answered:
        # The result is in: reply now, and let the kernel tear the run down while the grader judges it;
        # the next run starts only after every process of this one has been reaped.
        os.set_blocking(out_r, False)
        _drain(out_r, buffers[out_r], sizes, lim["output_bytes"])
    elif status is None:  # stopped at a limit: collect the runner's status
        _, status, usage = os.wait4(run.runner, 0)
        cpu = usage.ru_utime + usage.ru_stime
    if not answered and reason not in ("output-limit", "result-limit"):
        for fd in list(sel.get_map()):
            if fd != pidfd:
                _drain(fd, buffers[fd], sizes, lim["output_bytes"])
    sel.close()
    if pidfd is not None:
        os.close(pidfd)
    return {
        "reason": reason,
        "exit": os.waitstatus_to_exitcode(status) if status is not None else 0,
        "cpu": cpu,
        "peak_processes": peak_tasks,
        "peak_memory": peak_memory,
        "result": buffers[res_r].decode("utf-8", "replace") if sizes[res_r] <= lim["output_bytes"] else "",
        "tail": buffers[out_r][-TAIL_BYTES:].decode("utf-8", "replace"),
        "output_bytes": sizes[out_r],
    }


def _carries(raw: bytearray, nonce: str) -> bool:
    """Whether the result channel holds a complete envelope of this run (then the run has answered)."""
    try:
        envelope = json.loads(raw)
    except (ValueError, RecursionError):
        return False
    return isinstance(envelope, dict) and envelope.get("nonce") == nonce


def _drain(fd: int, buf: bytearray, sizes: dict, cap: int) -> None:
    """Read what is left in a pipe, up to ``cap`` bytes: until its writers are dead, or (non-blocking) empty."""
    while sizes[fd] <= cap:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            return
        if not chunk:
            return
        sizes[fd] += len(chunk)
        buf += chunk


def _reap(block: bool) -> None:
    """Collect finished children (the runner, the anchor, strays reparented to us as subreaper);
    with ``block``, wait until none is left, so that nothing of a previous run still exists."""
    while True:
        try:
            if os.waitpid(-1, 0 if block else os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _read_msg(fd: int) -> dict | None:
    head = _read_exact(fd, 4)
    if head is None:
        return None
    body = _read_exact(fd, struct.unpack("!I", head)[0])
    return None if body is None else json.loads(body)


def _read_exact(fd: int, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _send_msg(fd: int, msg: dict) -> None:
    body = json.dumps(msg).encode()
    os.write(fd, struct.pack("!I", len(body)) + body)


def _warm_up(torch: types.ModuleType) -> None:
    """Pay torch's first-use costs once, here, instead of in every forked run: building a module on
    the meta device imports torch._dynamo (seconds), and the first CPU kernels set themselves up.
    Single-threaded and on tiny tensors, so no thread pool exists when the zygote forks."""
    with torch.no_grad():
        torch.nn.Embedding(8, 4, device="meta")
        x = torch.randn(1, 1, 3, 4)
        torch.nn.functional.scaled_dot_product_attention(x, x, x, is_causal=True)
        torch.rsqrt(torch.nn.Linear(4, 4)(x).pow(2).mean(-1)).softmax(-1)


HUGE = 2 << 20  # a transparent huge page (x86-64, arm64 with 4 KiB pages)
MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLLAPSE = 14, 15, 25
HUGE_AFTER_RUNS = 25  # collapsing costs about 0.5 s once and saves about 6 ms a run: worth it for a class only


def _huge_pages() -> None:
    """Back the zygote's own anonymous memory (the heap torch and Python built) with huge pages, once.

    Each run forks the zygote and exits: the kernel copies a page-table entry for every page mapped on fork
    and tears them down on exit, some 55,000 for the 210 MiB that torch and Python hold, and with two workers
    both zygotes' forks and exits compete for that kernel work. Mapped as 2 MiB pages (about two thirds of it
    can be), that memory needs 512 times fewer entries; a run that writes to a page still copies only that
    4 KiB page. MADV_COLLAPSE (Linux 6.1+) makes them now; then MADV_NOHUGEPAGE, so that what a run allocates
    on top stays in small pages, measured as before. Where the kernel has no huge pages, or refuses, nothing
    changes.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    libc.malloc_trim(0)
    with open("/proc/self/maps") as maps:
        lines = maps.read().splitlines()
    for line in lines:
        fields = line.split()
        low, high = (int(x, 16) for x in fields[0].split("-"))
        if not fields[1].startswith("rw") or (len(fields) > 5 and fields[5] != "[heap]"):
            continue  # files, stacks and the vDSO stay as they are
        start, end = (low + HUGE - 1) & ~(HUGE - 1), high & ~(HUGE - 1)
        if end > start:
            libc.madvise(start, end - start, MADV_HUGEPAGE)
            libc.madvise(start, end - start, MADV_COLLAPSE)
            libc.madvise(start, end - start, MADV_NOHUGEPAGE)


def main() -> None:
    mode, ctl_in, ctl_out, uid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    ns = mode == "ns"
    if mode == "portable":  # no Linux facilities (prctl, pidfd, /proc, capabilities, seccomp): limits only
        globals()["LINUX"] = False
    for fd in (ctl_in, ctl_out):
        os.set_inheritable(fd, False)
    if LINUX:
        _check(LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
    try:
        if not LINUX:  # forking after macOS frameworks are loaded is unsafe: each run imports torch itself
            raise ImportError("no zygote import off Linux")
        import torch  # the point of the zygote: every run starts with torch already imported

        torch.set_num_threads(1)
        _warm_up(torch)
        version = torch.__version__
    except ImportError:
        version = ""
    # RLIMIT_NPROC counts per user (per user namespace under bubblewrap) and never binds real root:
    # it holds when the run has a uid of its own or its own user namespace, not for a plain non-root child
    # (margin -1: not set). In a user namespace the zygote's threads and bwrap's init count too.
    own_uid = uid >= 0 and os.getuid() == 0
    ctx = {
        "ns": ns,
        "uid": uid,
        "keep": json.loads(sys.argv[5]),
        "margin": 4 if own_uid else len(os.listdir("/proc/self/task")) + 8 if ns else -1,
        "baseline": int(_status("self")["RssAnon"][0]) * 1024 if LINUX else 0,
        "compiled": {},
    }
    # Keep the collector off everything imported so far: a collection in a run would otherwise touch
    # every object and copy the whole forked heap page by page.
    gc.freeze()
    _send_msg(ctl_out, {"ready": True, "torch": version, "pid": os.getpid()})
    served = 0
    while (req := _read_msg(ctl_in)) is not None:
        if served == HUGE_AFTER_RUNS and LINUX and version:
            _reap(block=True)
            _huge_pages()
            ctx["baseline"] = int(_status("self")["RssAnon"][0]) * 1024  # a run's memory is measured from here
        _send_msg(ctl_out, _serve(req, ctx))
        served += 1
    _reap(block=True)  # the sandbox closes: nothing of the last run may outlive it


if __name__ == "__main__":  # python -c runs it as __main__; read as a file, it only defines
    main()
