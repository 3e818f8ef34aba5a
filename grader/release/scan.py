"""The answer scan: every answer this repository holds, searched for in every file of a folder.

What counts as an answer (``answers``), each found in the repository's own sources, independently of the code
that leaves them out of the student kit:

- every line of every solution region of the lesson (``BEGIN SOLUTION`` ... ``END SOLUTION``, in the gallery
  pages and the Markdown pages);
- the answer keys: every line and every string of the key modules (the quiz's checks, the rubrics);
- the code of every check learners do not get (``visibility`` other than "visible");
- the example and full-marks submissions (``submissions/*`` but the template, the full-marks fixture);
- the lesson parameter total, ``count_parameters(Config.lesson())``, in every way a page might print it
  (``numbers``): its digits bare or grouped by threes with any separator, and rounded to three or more
  significant digits in billions or millions with a unit (``B``, ``billion``, ``G``, ``e+09``, ``M`` ...).

Only *distinctive* lines count: at least ``MIN_LENGTH`` letters and digits once squashed (lower case, nothing
but letters and digits, so that wrapping, markup, HTML tags and syntax highlighting cannot hide a match), and
found nowhere in what legitimately ships (the lesson outside its answers, ``reference/``, the grader outside
its keys and withheld checks, the template). ``return x`` is not an answer; a line of the quiz's key is.

``scan`` reads every file of a folder: text files as they are, HTML without its tags, notebooks cell by
cell, Sphinx inventories decompressed, zip archives member by member (recursively). Binary files (images,
fonts) cannot be searched and are counted in the report. A hit names the answer, where it comes from and
the file it was found in.
"""

from __future__ import annotations

import ast
import html
import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .learner import KEY_MODULES, is_left_out, stand_in, stand_in_rubrics, stand_ins, withheld_checks

MIN_LENGTH = 20
KIT_FILES = Path(__file__).with_name("files") / "kit"  # the kit's own README, noxfile and workflow
BEGIN = {".py": re.compile(r"^\s*#\s*(\.\.\s+)?BEGIN SOLUTION\s*$"), ".md": re.compile(r"^\s*%\s*BEGIN SOLUTION\s*$")}
END = {".py": re.compile(r"^\s*#\s*(\.\.\s+)?END SOLUTION\s*$"), ".md": re.compile(r"^\s*%\s*END SOLUTION\s*$")}
_NOT_ALNUM = re.compile(r"[^a-z0-9]")
_TAG = re.compile(r"<[^>]+>")
#: Submissions that are someone's answers (the template is no answer).
EXAMPLES = ("submissions/*/", "tests/fixtures/submissions/full/")
#: Between the groups of three digits of a printed count: nothing, a comma, a point, an underscore, a space, an
#: apostrophe, a no-break or thin space.
_GROUP = r"[,._ '\u00a0\u2009\u202f]?"
_UNITS = {1e9: ("B", "bn", "billion", "G", "e9", "e+9", "e+09", "E9", "E+09"), 1e6: ("M", "million", "e6", "e+06")}


def squash(text: str) -> str:
    """Lower case, letters and digits only."""
    return _NOT_ALNUM.sub("", text.lower())


@dataclass(frozen=True)
class Answer:
    """One thing that must not ship: its kind, where it comes from, and its squashed text."""

    kind: str
    where: str
    text: str


@dataclass
class Answers:
    """Every answer of a repository, and the patterns of the lesson total."""

    answers: list[Answer]
    numbers: list[re.Pattern[str]]
    sources: dict[str, int] = field(default_factory=dict)  # where -> how many distinctive answers it gave

    def without_answers(self) -> list[str]:
        """Sources that gave no distinctive answer: the scan cannot see them, so it could not catch them."""
        return [where for where, count in self.sources.items() if count == 0]


def regions(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(first line, lines) of each solution region of a lesson or Markdown page, marker lines excluded."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = None
    for number, line in enumerate(lines):
        if BEGIN[path.suffix].match(line):
            start = number
        elif END[path.suffix].match(line) and start is not None:
            yield start + 1, lines[start + 1 : number]
            start = None


def outside_regions(path: Path) -> list[str]:
    """The lines of a page that are not in a solution region."""
    inside, kept = False, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if BEGIN[path.suffix].match(line):
            inside = True
        elif END[path.suffix].match(line):
            inside = False
        elif not inside:
            kept.append(line)
    return kept


def pages(repo: Path) -> list[Path]:
    """The lesson's gallery pages and Markdown pages (what the site is built from)."""
    docs = repo / "docs"
    generated = ("_build", "auto_examples", "generated")
    found = [*docs.glob("lessons/*.py"), *docs.rglob("*.md")]
    return sorted(p for p in found if not set(p.relative_to(docs).parts) & set(generated))


def strings(path: Path) -> list[str]:
    """Every string constant of a Python file (a rubric spread over several source lines is one string)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return [part for text in found for part in re.split(r"(?<=[.;:])\s+", text)]


def legitimate(repo: Path) -> str:
    """Squashed text of what ships: the pages outside their answers, reference/, the learner edition of the grader
    (outside its keys and withheld checks), the template, the kit's own files. An answer line found here is not
    distinctive."""
    kept = [line for page in pages(repo) for line in outside_regions(page)]
    for path in sorted((repo / "reference").rglob("*.py")):
        kept += path.read_text(encoding="utf-8").splitlines() + signatures(path)
    grader = repo / "grader"
    cut = {}
    for module, definition in withheld_checks(grader):
        cut.setdefault(module, set()).update(range(definition.first, definition.last + 1))
        if definition.spec.visibility == "after_due_date":  # its stand-in ships: number, name, points, page
            kept += stand_in(definition).splitlines()
    kept += stand_in_rubrics(grader, grader / "rubrics.py").splitlines()
    kept += [line for key in KEY_MODULES if key.startswith("checks/") for line in stand_ins(grader / key).splitlines()]
    for path in sorted(grader.rglob("*")):
        relative = path.relative_to(grader).as_posix()
        if not path.is_file() or relative in KEY_MODULES or is_left_out(path.relative_to(grader)):
            continue
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept += [line for number, line in enumerate(lines, start=1) if number not in cut.get(path, ())]
    for path in [*(repo / "submissions" / "_template").rglob("*"), *KIT_FILES.glob("*")]:
        if path.is_file():
            kept += readable(path)
    return "".join(squash(line) for line in kept)


def signatures(path: Path) -> list[str]:
    """``name=default`` of every field and argument with a default in a Python file, as the API pages show them
    (``Config(vocab_size=102400, ...)``): shipped text, though the source spells it ``vocab_size: int = 102400``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.AnnAssign) and node.value is not None and isinstance(node.target, ast.Name):
            found.append(f"{node.target.id}={ast.unparse(node.value)}")
        elif isinstance(node, ast.arguments):
            named = [*node.posonlyargs, *node.args]
            pairs = zip(named[len(named) - len(node.defaults) :], node.defaults, strict=True)
            found += [f"{a.arg}={ast.unparse(d)}" for a, d in pairs]
    return found


def numbers(total: int) -> list[re.Pattern[str]]:
    """Patterns of ``total`` as a page might print it: its digits in groups of three with any separator, and
    rounded to 3 to 10 significant digits in billions or millions with a unit (B, billion, G, e9, M, ...).
    Two significant digits (6.2B) are left out: too many other figures round to them."""
    digits = f"{total:,}".split(",")
    found = [re.compile(r"(?<![\d])" + _GROUP.join(digits) + r"(?![\d])")]
    for scale, units in _UNITS.items():
        value = total / scale
        whole = len(str(int(value)))
        mantissas = {f"{value:.{max(0, sig - whole)}f}" for sig in range(3, 11)}
        for mantissa in sorted(mantissas):
            head, _, tail = mantissa.partition(".")
            head = _GROUP.join(f"{int(head):,}".split(","))
            body = head + (r"\." + tail if tail else "")
            unit = "|".join(re.escape(u) for u in sorted(units, key=len, reverse=True))
            found.append(re.compile(rf"(?<![\d.,]){body}(?![\d])\s*(?:{unit})(?![a-zA-Z])"))
    return found


def answers(repo: Path, total: int) -> Answers:
    """Every distinctive answer of the repository at ``repo``, and the patterns of the lesson total ``total``."""
    allowed = legitimate(repo)
    result = Answers([], numbers(total))

    def add(kind: str, where: str, texts: list[str]) -> None:
        marks = {squash(text) for text in texts}
        found = sorted(m for m in marks if len(m) >= MIN_LENGTH and m not in allowed)
        result.answers += [Answer(kind, where, m) for m in found]
        result.sources[where] = len(found)

    for page in pages(repo):
        for first, lines in regions(page):
            add("solution", f"{page.relative_to(repo)}:{first}", lines)
    grader = repo / "grader"
    for key in KEY_MODULES:
        path = grader / key
        add("answer key", f"grader/{key}", path.read_text(encoding="utf-8").splitlines() + strings(path))
    for module, definition in withheld_checks(grader):
        lines = definition.lines(module.read_text(encoding="utf-8"))
        add(f"{definition.spec.visibility} check", f"check {definition.spec.number} {definition.spec.name}", lines)
    for pattern in EXAMPLES:
        for folder in sorted(repo.glob(pattern)):
            if folder.name.startswith("_"):
                continue
            texts = [line for path in sorted(folder.glob("*")) if path.is_file() for line in readable(path)]
            add("example submission", f"{folder.relative_to(repo)}/", texts)
    return result


def readable(path: Path) -> list[str]:
    """The lines of a text file, none of a binary one."""
    data = path.read_bytes()
    return [] if b"\0" in data else data.decode("utf-8", "replace").splitlines()


def texts(name: str, data: bytes) -> Iterator[tuple[str, str]]:
    """(where, text) of one file: archives member by member, HTML without tags, notebooks cell by cell,
    Sphinx inventories decompressed; nothing for a binary file."""
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from texts(f"{name}!{member}", archive.read(member))
        return
    if name.endswith(".inv") and data.startswith(b"# Sphinx inventory"):
        header = data.split(b"\n", 4)
        data = b"\n".join(header[:4]) + b"\n" + zlib.decompress(header[4])
    if b"\0" in data:
        return
    text = data.decode("utf-8", "replace")
    if name.endswith(".ipynb"):
        cells = json.loads(text).get("cells", [])
        parts = ["".join(c.get("source", [])) for c in cells]
        parts += ["".join(o.get("text", [])) for c in cells for o in c.get("outputs", [])]
        text = "\n".join(parts)
    elif name.endswith((".html", ".htm")):
        text = html.unescape(_TAG.sub("", text))
    yield name, text


@dataclass
class Report:
    """What a scan found: hits (one line each), and how many files it read and could not read."""

    hits: list[str]
    files: int
    binary: list[str]


def scan(root: Path, found: Answers) -> Report:
    """Search every file under ``root`` for every answer; one hit per answer and file."""
    report = Report([], 0, [])
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        relative = path.relative_to(root).as_posix()
        report.files += 1
        read = list(texts(relative, path.read_bytes()))
        if not read:
            report.binary.append(relative)
        for where, text in read:
            flat = squash(text)
            for answer in found.answers:
                if answer.text in flat:
                    report.hits.append(f"{where}: {answer.kind} from {answer.where}: {answer.text[:60]!r}")
            for pattern in found.numbers:
                match = pattern.search(text)
                if match:
                    report.hits.append(f"{where}: the lesson parameter total, as {match.group(0)!r}")
    return report
