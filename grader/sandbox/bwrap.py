"""The bubblewrap command line of a sandbox worker: what the sandbox can see, and nothing more.

Visible inside, read-only: the system (``/usr`` and its ``/bin``, ``/lib`` links, the dynamic linker's
``/etc`` files) and the Python installation that runs the grader (its prefixes and the directory
torch comes from). Everything else of the host, the repository included, is simply absent: the
answer keys, ``grader/``, other submissions, ``/work``, ``$HOME``. A private ``/tmp`` and ``/scratch``
(replaced by fresh tmpfs on every run), a minimal ``/dev``, a fresh ``/proc``; no network (an empty
network namespace), its own IPC, UTS and PID namespaces, a new session (no terminal injection),
a clean environment, and the whole tree dies with the grader (``--die-with-parent``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

SCRATCH = "/scratch"  # a run's working directory: a fresh tmpfs holding only its files
ENV = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": SCRATCH,
    "TMPDIR": "/tmp",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
SYSTEM_LINKS = ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime")
# Capabilities the trusted zygote keeps inside the sandbox (as real root only): mounts and namespaces for
# each run, switching to the run's uid, and killing that uid's processes. The run itself drops them all.
ROOT_CAPS = "CAP_SYS_ADMIN,CAP_SETUID,CAP_SETGID,CAP_KILL,CAP_CHOWN"


def python_roots() -> list[Path]:
    """Directories the interpreter and torch load from; mounted read-only, nothing else of the host."""
    roots = {Path(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix, sys.base_exec_prefix)}
    spec = importlib.util.find_spec("torch")
    if spec and spec.submodule_search_locations:
        torch_dir = Path(next(iter(spec.submodule_search_locations))).parent
        if not any(torch_dir.is_relative_to(r) for r in roots):
            roots.add(torch_dir)
    roots = {r.resolve() for r in roots} | roots
    return sorted(r for r in roots if not any(r != o and r.is_relative_to(o) for o in roots))


def masked(roots: list[Path]) -> list[Path]:
    """Grader directories that happen to lie inside a mounted root (an installed, non-editable copy)."""
    grader_dir = Path(__file__).resolve().parents[1]
    hidden = [grader_dir, grader_dir.parent / "submissions", grader_dir.parent / "tests"]
    return [h for h in hidden if h.is_dir() and any(h.is_relative_to(r) for r in roots)]


def _dirs(path: Path) -> list[str]:
    """``--dir`` for every ancestor of ``path``, world-traversable (bubblewrap would copy 0700 from /root)."""
    args: list[str] = []
    for parent in reversed(path.parents):
        if str(parent) != "/":
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def command(python: str, as_root: bool) -> list[str]:
    """The bwrap argument list that starts a worker with ``python`` (arguments to python follow)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise FileNotFoundError("bwrap")
    args = [bwrap, "--die-with-parent", "--new-session", "--clearenv"]
    args += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    args += ["--cap-add", ROOT_CAPS] if as_root else ["--unshare-user", "--cap-add", "ALL"]
    args += ["--ro-bind", "/usr", "/usr"]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            args += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            args += ["--ro-bind", link, link]
    args += ["--perms", "0755", "--dir", "/etc"]
    for etc in ETC_FILES:
        args += ["--ro-bind-try", etc, etc]
    args += ["--tmpfs", "/tmp", "--dev", "/dev", "--proc", "/proc", "--perms", "0755", "--dir", SCRATCH]
    roots = python_roots()
    for root in roots:
        if not str(root).startswith("/usr/"):
            args += [*_dirs(root), "--ro-bind", str(root), str(root)]
    for hidden in masked(roots):
        args += ["--tmpfs", str(hidden)]
    for key, value in ENV.items():
        args += ["--setenv", key, value]
    return [*args, "--chdir", "/", python]


# What every run needs inside the sandbox: a pid and a mount namespace of its own, and a tmpfs. An
# AppArmor policy (Ubuntu 23.10+) may let bwrap start yet deny these; better to know before grading.
CAN_RUN = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
for what, ret in (("unshare", lambda: libc.unshare(0x00020000 | 0x20000000)),
                  ("mount", lambda: libc.mount(b"tmpfs", b"/scratch", b"tmpfs", 6, b"size=65536"))):
    if ret() != 0:
        sys.exit(f"{what} inside the sandbox: {os.strerror(ctypes.get_errno())}")
"""


def probe_error(as_root: bool) -> str:
    """Why bubblewrap cannot run a worker here ('' when it can): tried once, with this very command line."""
    try:
        cmd = command(sys.executable, as_root)
    except FileNotFoundError:
        return "bubblewrap (bwrap) is not installed"
    try:
        done = subprocess.run([*cmd, "-I", "-c", CAN_RUN], capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap could not start: {exc}"
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip()[-300:]
        return f"bubblewrap failed (exit {done.returncode}): {why}"
    return ""
