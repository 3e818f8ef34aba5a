"""Finding the submissions to compare and reading their code as text: never imported, never run.

Each submission becomes one document, its ``model.py`` then its ``mla.py`` (the grader's allow-listed code files,
``grader.submission.CODE_FILES``), each under a banner comment naming the file; comments are no tokens, so the
banners never count. One document per submission is what MOSS does with a folder (``-d``): code moved from one
file to the other is still found. Files are read like the grader reads them (``read_capped``: no symbolic link
followed, nothing over its size cap); a file that is not UTF-8 is compared with the bad bytes replaced, and the
report says so. Nothing is dropped in silence: a file that cannot be read and a submission with no code are
named in every report, with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
from ..submission import CODE_FILES, KNOWN_FILES, check_folder, discover, read_capped
from .settings import DEFAULT_ROOT

BOILERPLATE_MAX_BYTES = max(CODE_FILES.values())


@dataclass(frozen=True)
class Document:
    """One submission's code as the comparison sees it.

    text: the code files one after the other, each under a ``# ===== name =====`` banner.
    files: the files it holds; notices: what the report must say about it (a file not read, not UTF-8).
    """

    student: str
    path: Path
    text: str
    files: tuple[str, ...]
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Skipped:
    """A folder that is not compared, and why (named in every report)."""

    folder: str
    reason: str


@dataclass
class Corpus:
    """What is compared: the submissions with code, the folders left out (and why), the boilerplate by label."""

    documents: list[Document]
    skipped: list[Skipped] = field(default_factory=list)
    boilerplate: dict[str, str] = field(default_factory=dict)


def banner(name: str) -> str:
    return f"# ===== {name} =====\n"


def decode(raw: bytes, name: str) -> tuple[str, str | None]:
    """UTF-8 text, and a notice when bytes had to be replaced (naming the line and the first bad byte)."""
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        byte = raw[exc.start : exc.start + 1]
        notice = (
            f"{name} is not UTF-8 text (line {line} holds the byte {byte!r}); it was compared with each bad byte "
            "replaced by U+FFFD. Ask the learner to save it as UTF-8; Python would not import it either."
        )
        return raw.decode("utf-8", "replace"), notice


def read_document(path: Path, student: str) -> Document | str:
    """The submission's code as one Document, or the reason there is nothing of it to compare."""
    parts, files, notices = [], [], []
    for name, limit in CODE_FILES.items():
        try:
            raw = read_capped(path / name, limit)
        except FileNotFoundError:
            continue
        except OSError as exc:
            notices.append(f"{exc}: not compared.")
            continue
        text, notice = decode(raw, name)
        if notice:
            notices.append(notice)
        if not text.strip():
            notices.append(f"{name} is empty.")
        parts.append(banner(name) + text + ("" if text.endswith("\n") else "\n"))
        files.append(name)
    if not files:
        reasons = " ".join(notices) or f"it holds neither {' nor '.join(CODE_FILES)}."
        return f"nothing to compare: {reasons}"
    return Document(student, path, "\n".join(parts), tuple(files), tuple(notices))


def is_class_folder(path: Path) -> bool:
    """A folder of submission folders (``submissions/``) rather than one submission."""
    if path.is_symlink() or not path.is_dir() or any((path / n).exists() for n in KNOWN_FILES):
        return False
    return any(child.is_dir() and any((child / n).exists() for n in KNOWN_FILES) for child in path.iterdir())


def submission_folders(paths: Sequence[Path], default_root: Path) -> tuple[list[tuple[Path, str]], list[Skipped]]:
    """(folder, student id) of every submission named, and the folders left out of a folder of submissions.

    A folder of submissions (``submissions/``, the default) is expanded, leaving out ``_*`` (the template); a
    folder in it that is not a submission (a symbolic link, a bad id, no submission file) is skipped with the
    reason, as the grader does. A path given by name must be a submission folder. UsageError for a bad path,
    a folder with no submission in it, and the same id given twice.
    """
    folders: list[Path] = []
    skipped: list[Skipped] = []
    if not paths and not default_root.is_dir():
        raise UsageError(
            f"{default_root}/ is not here: give the submission folders to compare, or run from the repository root."
        )
    for path in paths or [default_root]:
        if is_class_folder(path):
            found = discover(path)
            if not found:
                raise UsageError(f"{path} holds no submission folder (folders starting with _ are the template).")
            for folder in found:
                try:
                    check_folder(folder)
                except UsageError as exc:
                    skipped.append(Skipped(str(folder), str(exc)))
                else:
                    folders.append(folder)
        elif path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            raise UsageError(f"{path} is an empty folder: give submission folders, submissions/<student-id>/.")
        else:
            folders.append(path)
    seen: dict[str, Path] = {}
    named = []
    for folder in folders:
        student = check_folder(folder)
        if student in seen:
            raise UsageError(f"{folder} and {seen[student]} are the same student id {student!r}; give each once.")
        seen[student] = folder
        named.append((folder, student))
    return named, skipped


def read_boilerplate(template: Path, extra: Sequence[Path]) -> dict[str, str]:
    """Code not to count, by label: the template as a submission would hold it, each of its files, and ``extra``.

    ``extra`` may name files or folders (every ``*.py`` inside). UsageError when the
    template is missing or holds no code file, or an extra path cannot be read.
    """
    if template.is_symlink() or not template.is_dir():
        raise UsageError(
            f"the template {template}/ is not a folder: run from the repository root or give --template DIR, "
            f"the starter code whose {' and '.join(CODE_FILES)} are not counted."
        )
    starter = read_document(template, template.name)
    if isinstance(starter, str):
        raise UsageError(f"the template {template}/ has {starter}")
    texts = {f"{template}/ (as a submission holds it)": starter.text}
    for name in starter.files:
        texts[str(template / name)] = read_text(template / name)
    for path in extra:
        files = sorted(path.rglob("*.py")) if path.is_dir() and not path.is_symlink() else [path]
        if not files:
            raise UsageError(f"--boilerplate {path}: no *.py file in that folder.")
        for file in files:
            texts[str(file)] = read_text(file)
    return texts


def read_text(path: Path) -> str:
    """A boilerplate file as text; UsageError naming it when it cannot be read."""
    try:
        return decode(read_capped(path, BOILERPLATE_MAX_BYTES), path.name)[0]
    except OSError as exc:
        raise UsageError(f"boilerplate {path}: {exc}.") from None


def gather(paths: Sequence[Path], template: Path, boilerplate: Sequence[Path] = (), root: Path | None = None) -> Corpus:
    """Everything to compare: UsageError for bad paths and for fewer than two submissions with code."""
    folders, skipped = submission_folders(paths, root or Path(DEFAULT_ROOT))
    corpus = Corpus(documents=[], skipped=skipped, boilerplate=read_boilerplate(template, boilerplate))
    for folder, student in folders:
        doc = read_document(folder, student)
        if isinstance(doc, str):
            corpus.skipped.append(Skipped(str(folder), doc))
        else:
            corpus.documents.append(doc)
    if len(corpus.documents) < 2:
        found = ", ".join(d.student for d in corpus.documents) or "none"
        why = "".join(f" {s.folder}: {s.reason}" for s in corpus.skipped)
        raise UsageError(
            f"a similarity report needs at least two submissions with code to compare; {len(folders)} "
            f"submission folder(s), with code: {found}.{why}"
        )
    return corpus
