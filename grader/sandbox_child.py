"""The sandbox's worker, run inside the sandbox: a zygote that imports torch once and forks one run per request.

Started by ``grader.sandbox`` as ``python -I -c <this source> MODE CTL_IN CTL_OUT RUN_UID KEEP`` (under
bubblewrap, or as a plain child when bubblewrap is missing). Standard library and ctypes only:
nothing of the grader is visible here. Each request builds this process tree::

    zygote (this loop; trusted; torch imported)
      └─ C1 (ns mode only): unshare(mount, pid), fork, exit      → the next fork is pid 1 of a fresh pid namespace
           └─ supervisor (pid 1; trusted): tmpfs /scratch, /tmp, /dev/shm, fresh /proc; watchdog
                └─ runner: files, limits, drop to RUN_UID and all capabilities, probe.<call>(**args)

The supervisor polls the run every 20 ms: wall time, number of processes and their private memory;
at a limit it kills every process of the run (``kill(-1)`` from pid 1 reaches the whole namespace) and
says which limit. When the supervisor exits, the kernel kills whatever is left in its pid namespace,
so nothing of one run survives into the next. In plain mode (no namespaces) the run is a process
group and, when we are root, a dedicated uid; both are swept at the end.
"""

import base64
import ctypes
import json
import os
import resource
import selectors
import shutil
import signal
import struct
import sys
import time
import traceback
import types

LIBC = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS, CLONE_NEWPID = 0x00020000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE = 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 38, 36
POLL_SECONDS = 0.02
TAIL_BYTES = 16384
CONTROL_FDS: list[int] = []
KEEP_UNDER_TMP: list[str] = []


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount_tmpfs(path: str, size: int, mode: str) -> None:
    """A fresh size-capped tmpfs at ``path`` (no setuid, no devices) in this run's mount namespace."""
    opts = f"size={size},mode={mode}".encode()
    _check(LIBC.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts), f"mount {path}")


def _fresh_tmp(size: int) -> None:
    """An empty tmpfs on /tmp for this run, keeping the read-only mounts under it (a virtualenv in /tmp).

    Each kept mount is held by an O_PATH descriptor before /tmp is covered, then bound back through
    ``/proc/self/fd`` and made read-only again.
    """
    held = {path: os.open(path, os.O_PATH) for path in KEEP_UNDER_TMP}
    _mount_tmpfs("/tmp", size, "1777")
    for path, fd in held.items():
        os.makedirs(path, mode=0o755, exist_ok=True)
        src = f"/proc/self/fd/{fd}".encode()
        _check(LIBC.mount(src, path.encode(), None, MS_BIND | MS_REC, None), f"bind {path}")
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV
        _check(LIBC.mount(None, path.encode(), None, flags, None), f"read-only {path}")
        os.close(fd)


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


def _vm_size() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _set_limits(lim: dict) -> None:
    """Per-process limits of the runner; the supervisor's watchdog adds limits over the whole tree."""
    cpu = max(1, int(lim["cpu_seconds"] + 0.999))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (lim["file_bytes"], lim["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
    # The address space already holds the interpreter and torch; the limit is what comes on top.
    space = _vm_size() + lim["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (space, space))
    if lim["nproc_margin"] >= 0:
        # A backstop above the watchdog's count, which kills the run with a clear verdict first. The
        # margin covers the sandbox's own processes where they count too (one user namespace, no uid switch).
        nproc = lim["processes"] + lim["nproc_margin"]
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def _runner(req: dict, scratch: str, out_w: int, res_w: int, uid: int) -> None:
    """Run the probe call as the untrusted tenant of this sandbox; write one JSON envelope to ``res_w``."""
    nonce = req["nonce"]
    os.dup2(out_w, 1)
    os.dup2(out_w, 2)
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)
    os.closerange(3, res_w)
    os.closerange(res_w + 1, 1 << 16)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    os.chdir(scratch)
    _set_limits(req["limits"])
    _drop_privileges(uid)
    sys.path.insert(0, scratch)
    sys.dont_write_bytecode = True
    sys.argv = ["probe"]
    probe = types.ModuleType("probe")
    sys.modules["probe"] = probe
    try:
        exec(compile(req["probe"], "<grader probe>", "exec"), probe.__dict__)
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
    sys.stdout.flush()
    sys.stderr.flush()
    with os.fdopen(res_w, "wb") as f:
        f.write(text.encode())


def _error_kind(exc: BaseException) -> str:
    """Name the limit behind an exception, when one is: MemoryError, torch's allocator failure, EFBIG."""
    if isinstance(exc, MemoryError) or "DefaultCPUAllocator" in str(exc):
        return "memory"
    if isinstance(exc, OSError) and exc.errno == 27:  # EFBIG: RLIMIT_FSIZE (Python ignores SIGXFSZ)
        return "file"
    return "error"


def _tree(ns: bool, pgid: int, uid: int) -> list[int]:
    """The processes of this run but the supervisor: all in our pid namespace, else its session group (or uid)."""
    pids = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        if ns:
            pids.append(int(name))
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            if int(fields[2]) == pgid or (uid >= 0 and os.stat(f"/proc/{name}").st_uid == uid):
                pids.append(int(name))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def _usage(pids: list[int], baseline: int) -> tuple[int, int]:
    """Threads of the run (RLIMIT_NPROC counts threads too) and the anonymous memory it added:
    each process's RssAnon beyond what the zygote already had (forked pages start shared)."""
    tasks, added = 0, 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        added += max(0, int(line.split()[1]) * 1024 - baseline)
                    elif line.startswith("Threads:"):
                        tasks += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return tasks, added


def _kill_all(ns: bool, pgid: int, uid: int) -> None:
    """SIGKILL every process of the run (pid 1's kill(-1) spares only itself)."""
    if ns:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:  # nothing left to kill
            pass
        return
    for pid in _tree(False, pgid, uid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue


def _supervise(req: dict, ns: bool, out_w: int, res_w: int, rep_w: int, uid: int, baseline: int) -> None:
    """Pid 1 of the run: prepare the scratch space, start the runner, enforce the tree-wide limits, report."""
    lim = req["limits"]
    files = {name: base64.b64decode(data) for name, data in req["files"].items()}
    scratch = req["scratch"]
    if ns:
        _check(LIBC.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
        room = sum(map(len, files.values())) + lim["file_bytes"] + (1 << 20)
        _mount_tmpfs(scratch, room, "0755")
        _check(LIBC.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount /proc")
        _fresh_tmp(lim["file_bytes"] + (1 << 20))
        _mount_tmpfs("/dev/shm", lim["file_bytes"] + (1 << 20), "1777")
    else:
        os.makedirs(scratch, mode=0o755)
    for name, data in files.items():
        with open(os.path.join(scratch, name), "wb") as f:
            f.write(data)
    if uid >= 0 and os.getuid() == 0:
        for path in [scratch, *(os.path.join(scratch, n) for n in files)]:
            os.chown(path, uid, uid)
    group = os.setsid()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(rep_w)
            _runner(req, scratch, out_w, res_w, uid)
        finally:
            os._exit(0)
    os.close(out_w)
    os.close(res_w)
    reason, status, peak_procs, peak_mem = "", 0, 0, 0
    pidfd = os.pidfd_open(pid)
    sel = selectors.DefaultSelector()
    sel.register(pidfd, selectors.EVENT_READ)
    while True:
        if sel.select(POLL_SECONDS):
            status = os.waitpid(pid, 0)[1]
            break
        pids = _tree(ns, group, uid)
        tasks, added = _usage(pids, baseline)
        peak_procs, peak_mem = max(peak_procs, tasks), max(peak_mem, added)
        if time.monotonic() - start > lim["wall_seconds"]:
            reason = "timeout"
        elif tasks >= lim["processes"]:
            reason = "process-limit"
        elif peak_mem > lim["memory_bytes"]:
            reason = "memory-limit"
        if reason:
            _kill_all(ns, group, uid)
            status = os.waitpid(pid, 0)[1]
            break
    _kill_all(ns, group, uid)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "reason": reason,
        "exit": os.waitstatus_to_exitcode(status),
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak_processes": peak_procs,
        "peak_memory": peak_mem,
    }
    with os.fdopen(rep_w, "wb") as f:
        f.write(json.dumps(report).encode())


def _serve(req: dict, ns: bool, uid: int, baseline: int) -> dict:
    """Fork one run, collect its output, result and report; return the facts for the parent to judge."""
    lim = req["limits"]
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    rep_r, rep_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            for fd in (out_r, res_r, rep_r, *CONTROL_FDS):
                os.close(fd)
            if ns:
                _check(LIBC.unshare(CLONE_NEWNS | CLONE_NEWPID), "unshare")
                if os.fork() != 0:
                    os._exit(0)
            _supervise(req, ns, out_w, res_w, rep_w, uid, baseline)
        except BaseException:
            traceback.print_exc()
            os._exit(70)
        os._exit(0)
    for fd in (out_w, res_w, rep_w):
        os.close(fd)
    if ns:
        os.waitpid(pid, 0)  # C1 is gone at once; the supervisor is now our child (we are a subreaper)
    streams = {out_r: bytearray(), res_r: bytearray(), rep_r: bytearray()}
    sizes = dict.fromkeys(streams, 0)
    caps = {out_r: lim["output_bytes"], res_r: lim["output_bytes"] + 1, rep_r: 65536}
    sel = selectors.DefaultSelector()
    for fd in streams:
        sel.register(fd, selectors.EVENT_READ)
    killed = ""
    backstop = start + lim["wall_seconds"] + 5.0
    while sel.get_map():
        events = sel.select(max(0.0, backstop - time.monotonic()))
        if not events:
            killed = "timeout"
            break
        for key, _ in events:
            chunk = os.read(key.fd, 65536)
            if not chunk:
                sel.unregister(key.fd)
                continue
            sizes[key.fd] += len(chunk)
            buf = streams[key.fd]
            buf += chunk
            if key.fd == out_r:
                del buf[:-TAIL_BYTES]
            if sizes[key.fd] > caps[key.fd]:
                killed = "output-limit" if key.fd == out_r else "result-limit"
        if killed:
            break
    if killed:
        _kill_supervisor(pid, ns, uid)
    sel.close()
    for fd in streams:
        os.close(fd)
    _reap(pid, ns)
    if not ns:
        shutil.rmtree(req["scratch"], ignore_errors=True)
    return {
        "killed": killed,
        "report": streams[rep_r].decode("utf-8", "replace"),
        "result": streams[res_r].decode("utf-8", "replace") if killed != "result-limit" else "",
        "tail": streams[out_r].decode("utf-8", "replace"),
        "output_bytes": sizes[out_r],
        "seconds": time.monotonic() - start,
    }


def _kill_supervisor(pid: int, ns: bool, uid: int) -> None:
    """Kill a run from outside: in ns mode its pid 1 (the namespace dies with it); else its group and uid."""
    try:
        os.kill(pid, signal.SIGKILL)
    except OSError:
        pass
    if not ns:
        _sweep(pid, uid)


def _sweep(pgid: int, uid: int) -> None:
    """Plain mode: kill the run's session group and, when a uid was dedicated to it, all of that uid."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    if uid >= 0 and os.getuid() == 0:
        helper = os.fork()
        if helper == 0:
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)
            os._exit(0)
        os.waitpid(helper, 0)


def _reap(pid: int, ns: bool) -> None:
    """Wait for the supervisor (ns mode: it was reparented to us) and any other stray child."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break


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


def _rss_anon() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    mode, ctl_in, ctl_out, uid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    KEEP_UNDER_TMP.extend(json.loads(sys.argv[5]))
    ns = mode == "ns"
    CONTROL_FDS.extend((ctl_in, ctl_out))
    # RLIMIT_NPROC counts per user (per user namespace under bubblewrap) and never binds real root:
    # it holds when the run has a uid of its own or its own user namespace, not for a plain non-root child
    # (margin -1: not set). In a user namespace the zygote's threads, bwrap's init and the supervisor count.
    _check(LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "subreaper")
    try:
        import torch  # the point of the zygote: every run starts with torch already imported

        torch.set_num_threads(1)
        with torch.device("meta"):  # the first init on meta imports torch._dynamo (~3 s): pay it once, here
            torch.nn.Embedding(2, 2)
        version = torch.__version__
    except ImportError:
        version = ""
    own_uid = uid >= 0 and os.getuid() == 0
    margin = 4 if own_uid else len(os.listdir("/proc/self/task")) + 8 if ns else -1
    baseline = _rss_anon()
    _send_msg(ctl_out, {"ready": True, "torch": version, "pid": os.getpid()})
    while (req := _read_msg(ctl_in)) is not None:
        req["limits"]["nproc_margin"] = margin
        _send_msg(ctl_out, _serve(req, ns, uid, baseline))


main()
