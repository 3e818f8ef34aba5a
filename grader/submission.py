"""Finding submissions and reading them, in the grader's own process, without running any of their code.

A submission is a folder ``submissions/<student-id>/``. The parent reads ``answers.toml`` itself (size and
nesting capped, UTF-8 required, with or without the byte-order mark Windows editors write; CRLF line ends
are TOML too) and the allow-listed code files as plain bytes: no symbolic link is followed, nothing over its
size cap is read, and only ``model.py`` and ``mla.py`` are ever sent to the sandbox (Python reads them
with a byte-order mark or CRLF line ends as well).
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UsageError
from .names import Unknown, diagram_hint, stray_diagrams, unknown_names

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]+\Z")
CODE_FILES: dict[str, int] = {"model.py": 512 * 1024, "mla.py": 256 * 1024}
ANSWERS_FILE = "answers.toml"
ANSWERS_MAX_BYTES = 256 * 1024
ANSWERS_MAX_DEPTH = 6
DIAGRAM_FILES = ("diagram.png", "diagram.svg", "diagram.md", "diagram.txt")
DIAGRAM_MAX_BYTES = 4 * 2**20
KNOWN_FILES = (ANSWERS_FILE, *CODE_FILES, *DIAGRAM_FILES)


@dataclass
class Submission:
    """What the parent read from one submission folder.

    answers: the parsed answers.toml, or None with answers_error saying why (missing, not UTF-8, bad TOML).
    code: allow-listed source files to send to the sandbox; code_errors: why one could not be read.
    diagram: (file name, text for .md/.txt or "" for images) of the first diagram file present, or None.
    unknown: tables and keys of answers.toml the grader does not read (misspellings, with a suggestion).
    strays: files that look meant as the diagram under another name (``Diagram.md``, ``diagram.jpg``).
    digest: SHA-256 of every file the grader read, by name (and of the stray names): the same digest, seed
    and grader give the same grade, so a resumed run skips it.
    """

    student: str
    path: Path
    answers: dict[str, Any] | None
    answers_error: str | None
    code: dict[str, bytes] = field(default_factory=dict)
    code_errors: dict[str, str] = field(default_factory=dict)
    diagram: tuple[str, str] | None = None
    unknown: list[Unknown] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    digest: str = ""

    @property
    def notices(self) -> list[str]:
        """What the grader found but does not read, each with what to do: for the feedback and the console."""
        return [u.describe() for u in self.unknown] + [diagram_hint(name) for name in self.strays]


def parse_shard(text: str) -> tuple[int, int]:
    """``--shard K/N`` as (K, N), 1 <= K <= N; UsageError otherwise."""
    k, _, n = text.partition("/")
    if not (k.isdigit() and n.isdigit()) or not 1 <= int(k) <= int(n):
        raise UsageError(f"--shard {text}: give K/N with 1 <= K <= N, e.g. --shard 2/4 (the 2nd of 4 shards).")
    return int(k), int(n)


def shard_of(student: str, shards: int) -> int:
    """Which of ``shards`` shards (1..N) grades ``student``: from the id alone, so it does not depend on the
    other folders or their order, and every student falls in exactly one shard."""
    return int.from_bytes(hashlib.sha256(student.encode()).digest()[:8], "big") % shards + 1


def discover(root: Path) -> list[Path]:
    """Every submission folder under ``root``: sub-folders not starting with ``_`` (the template) or ``.``."""
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder: give submission folders, or run from the repository root.")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


@dataclass(frozen=True)
class Folder:
    """A submission folder given to the grader, checked (``check_folder``): its path and its student id."""

    path: Path
    student: str


def select_folders(
    paths: list[Path], *, skip_unusable: bool = False, shard: tuple[int, int] | None = None
) -> tuple[list[Folder], list[str]]:
    """The submission folders to grade, each checked, and why any was skipped.

    A path that is not a gradable submission folder is a UsageError; with ``skip_unusable`` (every folder
    of submissions/, where one bad folder must not stop a whole class: a symbolic link, a name with a
    space, a stray folder with no submission files) it is skipped instead, with its reason. Two paths of
    one student id are a UsageError. With ``shard`` (K, N), only the students of shard K are kept
    (``shard_of``); every folder is checked all the same, so each shard reports the same mistakes.
    """
    folders: list[Folder] = []
    skipped: list[str] = []
    for path in map(Path, paths):
        try:
            folders.append(Folder(path, check_folder(path)))
        except UsageError as exc:
            if not skip_unusable:
                raise
            skipped.append(str(exc))
    seen: dict[str, Path] = {}
    for folder in folders:
        if folder.student in seen:
            raise UsageError(
                f"{folder.path} and {seen[folder.student]} are the same student id {folder.student!r}; give each once."
            )
        seen[folder.student] = folder.path
    if shard is not None:
        folders = [folder for folder in folders if shard_of(folder.student, shard[1]) == shard[0]]
    return folders, skipped


def check_folder(path: Path) -> str:
    """Validate a path given on the command line; return the student id (the folder's name)."""
    if path.is_symlink():
        raise UsageError(f"{path} is a symbolic link; give the submission folder itself.")
    if not path.exists():
        guess = Path("submissions") / path
        hint = f"; did you mean {guess}?" if not path.is_absolute() and guess.is_dir() else "."
        raise UsageError(f"{path} does not exist{hint}")
    if not path.is_dir():
        if path.suffix.lower() == ".zip":
            raise UsageError(f"{path} is a zip file: unzip it, then give the submission folder it holds.")
        raise UsageError(f"{path} is a file; give its folder, submissions/<student-id>/.")
    if not holds_submission_files(path):
        inner = [child for child in sorted(path.iterdir()) if child.is_dir() and holds_submission_files(child)]
        if path.resolve() == Path("submissions").resolve():
            raise UsageError(
                f"{path} is the folder of all submissions: run without paths to grade them all, or give {path}/<id>."
            )
        if len(inner) > 1:
            raise UsageError(
                f"{path} holds {len(inner)} submission folders: give them ({path}/* gives them all), or one of them."
            )
        if inner:  # an unzipped upload with a top folder, a student's folder inside a folder of their own
            raise UsageError(f"{path} holds one submission folder, {inner[0].name}: give {inner[0]} instead.")
    student = path.resolve().name
    if not ID_PATTERN.match(student):
        raise UsageError(
            f"{path}: {student!r} is not a valid student id (letters, digits, '-' and '_' only); rename the folder."
        )
    if not holds_submission_files(path):
        raise UsageError(
            f"{path} is not a submission folder: it holds none of {', '.join(KNOWN_FILES[:3])} "
            "(see submissions/README.md)."
        )
    return student


def holds_submission_files(path: Path) -> list[str]:
    """The names of ``KNOWN_FILES`` that ``path`` holds (a symbolic link counts: it is refused with a reason)."""
    return [name for name in KNOWN_FILES if (path / name).exists() or (path / name).is_symlink()]


def read_capped(path: Path, limit: int) -> bytes:
    """Read a regular file without following a symbolic link; OSError with a readable reason otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise OSError(f"{path.name} is a symbolic link; submit the file itself") from None
        if exc.errno == errno.ENOENT:
            raise FileNotFoundError(f"{path.name} is missing") from None
        raise OSError(f"{path.name} cannot be read ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise OSError(
                f"{path.name} is a folder, not a file: replace it with the file {path.name} itself "
                "(the grader does not look inside folders)"
            )
        raise OSError(f"{path.name} is not a regular file (a pipe or a device); submit a plain file")
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise OSError(f"{path.name} is larger than the {limit:,} bytes the grader reads")
    return data


def _depth(value: Any) -> int:
    """Nesting depth of parsed TOML data (a scalar is 0)."""
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def quoted_line(text: str, error: str, most: int = 80) -> str:
    """``, in the line `q1 = "b`` for a TOML error that names its line (cut to ``most`` characters); "" otherwise.

    tomllib names the line and column, and the column of an unclosed string is the line's end: the line itself
    shows a learner what is wrong faster than the numbers do."""
    match = re.search(r"\(at line (\d+), column \d+\)", error)
    lines = text.splitlines()
    if match is None or not 1 <= int(match[1]) <= len(lines) or not lines[int(match[1]) - 1].strip():
        return ""
    line = lines[int(match[1]) - 1].strip()
    return f", in the line `{line if len(line) <= most else line[: most - 3] + '...'}`"


def parse_answers(raw: bytes) -> dict[str, Any]:
    """Parse answers.toml; ValueError with a message for the learner (where, what, how to fix).

    A UTF-8 byte-order mark (Windows Notepad writes one) is skipped; a UTF-16 file is named as such.
    """
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ValueError(
            "answers.toml is saved as UTF-16 (Unicode); save it as UTF-8 (in Notepad: Save as, Encoding: UTF-8)."
        )
    raw = raw.removeprefix(codecs.BOM_UTF8)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"answers.toml is not UTF-8 text (line {line} holds the byte {raw[exc.start : exc.start + 1]!r}, "
            "written in another encoding, such as Windows' ANSI); save it as UTF-8 (in Notepad: Save as, "
            "Encoding: UTF-8)."
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(
            f"answers.toml is not valid TOML: {exc}{quoted_line(text, str(exc))}. Compare it with "
            'submissions/_template/answers.toml; strings need quotes, e.g. q1 = "b".'
        ) from None
    except RecursionError:
        raise ValueError(f"answers.toml is nested too deeply (more than {ANSWERS_MAX_DEPTH} levels).") from None
    if _depth(data) > ANSWERS_MAX_DEPTH:
        raise ValueError(f"answers.toml is nested too deeply (more than {ANSWERS_MAX_DEPTH} levels).")
    return data


def read_submission(path: Path, student: str) -> Submission:
    """Read everything the parent needs from one folder; problems become messages, never exceptions."""
    answers: dict[str, Any] | None = None
    answers_error: str | None = None
    digest = hashlib.sha256()

    def read(name: str, limit: int) -> bytes:
        data = read_capped(path / name, limit)
        digest.update(f"{name}\0{len(data)}\0".encode() + data)
        return data

    try:
        answers = parse_answers(read(ANSWERS_FILE, ANSWERS_MAX_BYTES))
    except FileNotFoundError:
        answers_error = (
            f"answers.toml is missing from submissions/{student}/: copy submissions/_template/answers.toml "
            "and fill it in."
        )
    except (OSError, ValueError) as exc:
        answers_error = str(exc) if isinstance(exc, ValueError) else f"{exc}."
    sub = Submission(student, path, answers, answers_error)
    sub.unknown = unknown_names(answers) if answers is not None else []
    sub.strays = stray_diagrams(path)
    for name, limit in CODE_FILES.items():
        try:
            sub.code[name] = read(name, limit)
        except FileNotFoundError:
            continue
        except OSError as exc:
            sub.code_errors[name] = str(exc)
    for name in DIAGRAM_FILES:
        if (path / name).is_file() and not (path / name).is_symlink():
            try:
                data = read(name, DIAGRAM_MAX_BYTES)
            except OSError:
                data = b""
            sub.diagram = (name, data.decode("utf-8", "replace") if name.endswith((".md", ".txt")) else "")
            break
    digest.update("\0".join(["strays", *sub.strays]).encode())
    sub.digest = digest.hexdigest()
    return sub
