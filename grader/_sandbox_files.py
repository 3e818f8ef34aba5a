"""Read a submission's allow-listed files safely, in the grader's own process.

Only regular files are read, never through a symbolic link (a link in a submission could point at
the answer keys or another student's work), and never more than ``max_bytes`` each. The checks are
made on the open descriptor (``O_NOFOLLOW``, then ``fstat``), so swapping a file for a link between
check and read changes nothing. A FIFO or device cannot block the grader: it is opened non-blocking
and refused for not being a regular file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


def read_submission_files(
    folder: Path, allowed: list[str] | tuple[str, ...], max_bytes: int
) -> tuple[dict[str, bytes], list[str]]:
    """The contents of the ``allowed`` files present in ``folder``, and one message per file refused.

    A file that is absent is simply not in the result (the caller decides whether it was required).
    """
    files: dict[str, bytes] = {}
    problems: list[str] = []
    if folder.is_symlink():
        return files, [f"{folder.name}: the submission folder is a symbolic link; nothing in it was read"]
    for name in allowed:
        path = folder / name
        if not os.path.lexists(path):
            continue
        if path.is_symlink():
            problems.append(
                f"{name} is a symbolic link (to {os.readlink(path)!r}); it was not read: "
                "submit the file itself, not a link to it"
            )
            continue
        data, problem = _read_regular(path, max_bytes)
        if problem:
            problems.append(f"{name} {problem}")
        else:
            files[name] = data
    return files, problems


def _read_regular(path: Path, max_bytes: int) -> tuple[bytes, str]:
    """Read a regular file without following links; ('', why) when it is not one or too large."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        return b"", f"could not be read ({exc.strerror}); it was not graded"
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return b"", "is not a regular file; it was not read"
        if info.st_size > max_bytes:
            return b"", f"is {info.st_size} bytes, more than the limit of {max_bytes}; it was not read"
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        return b"", f"is more than the limit of {max_bytes} bytes; it was not read"
    return data, ""
