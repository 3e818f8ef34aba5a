"""Submissions made from others, for the similarity tests and benchmark: disguised copies and class variants.

``disguise`` is what a learner who copies does to hide it: rename the variables, attributes, functions and
helper classes (``tokenize``, so strings and comments are untouched) and put the top-level functions and
classes in another order (``ast`` finds where each one starts and ends; nothing is run). ``variant`` makes a
plausible independent-looking rewrite of a solution for the benchmark's class of 200: a disguise plus random
equivalent rewrites of common idioms and dropped type hints, each chosen per occurrence.
"""

from __future__ import annotations

import ast
import io
import random
import re
import tokenize
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CODE = ("model.py", "mla.py")
# Independent solutions in the repository: the full-marks example, the full-marks fixture written unlike it,
# the fixture written from the template as a learner would, and the example with typical mistakes.
SOURCES = (
    REPO / "submissions" / "alice",
    REPO / "tests" / "fixtures" / "submissions" / "full",
    REPO / "tests" / "fixtures" / "similarity" / "independent",
    REPO / "submissions" / "bob",
)
# Names the grader requires (and library names): a copier keeps these.
KEPT = {
    "Config",
    "RMSNorm",
    "DecoderLayer",
    "SimpleKimiK2",
    "MultiHeadLatentAttention",
    "forward",
    "config",
    "self",
    "super",
    "torch",
    "nn",
    "F",
    "math",
    "dataclass",
    "dataclasses",
    "annotations",
    "__future__",
    "__init__",
    "__name__",
}
KEPT |= {"vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "intermediate_size"}
KEPT |= {"head_dim", "kv_lora_rank", "input_ids", "dim"}  # keyword arguments the grader passes


def rename(source: str, names: dict[str, str]) -> str:
    """``source`` with each NAME token in ``names`` replaced (strings and comments untouched)."""
    tokens = [
        t._replace(string=names[t.string]) if t.type == tokenize.NAME and t.string in names else t
        for t in tokenize.generate_tokens(io.StringIO(source).readline)
    ]
    return tokenize.untokenize(tokens)


def defined_names(source: str) -> list[str]:
    """Names the file defines (assigned, attributes set on self, arguments, functions, classes), in order."""
    found: dict[str, None] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found[node.id] = None
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            found[node.attr] = None
        elif isinstance(node, ast.arg):
            found[node.arg] = None
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            found[node.name] = None
    return [name for name in found if name not in KEPT and not name.startswith("__")]


def reorder(source: str, rng: random.Random | None = None) -> str:
    """The top-level functions and classes in another order (reversed, or shuffled with ``rng``)."""
    lines = source.splitlines(keepends=True)
    defs = [n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    if len(defs) < 2:
        return source
    starts = [(n.decorator_list[0].lineno if n.decorator_list else n.lineno) - 1 for n in defs]
    blocks = ["".join(lines[start : n.end_lineno]).rstrip() + "\n" for start, n in zip(starts, defs, strict=True)]
    order = list(reversed(blocks))
    if rng is not None:
        while order == blocks:
            rng.shuffle(order)
    return "".join(lines[: starts[0]]) + "\n\n".join(order) + "".join(lines[defs[-1].end_lineno :])


def disguise(source: str, tag: str = "my") -> str:
    """A copy with every defined name renamed (``hidden`` -> ``my_hidden_1``) and the definitions reversed."""
    names = {name: f"{tag}_{name.lower()}_{i}" for i, name in enumerate(defined_names(source))}
    return reorder(rename(source, names))


# Equivalent spellings of idioms, applied per occurrence at random by ``variant``.
REWRITES = (
    (r"\.transpose\(1, 2\)", ".permute(0, 2, 1, 3)"),
    (r"\.view\(", ".reshape("),
    (r"F\.silu\(", "torch.nn.functional.silu("),
    (r"math\.sqrt\(([\w.]+)\)", r"(\1 ** 0.5)"),
    (r", bias=False\)", ", False)"),
    (r"\.pow\(2\)", ".square()"),
    (r"\.mean\(-1, keepdim=True\)", ".mean(dim=-1, keepdim=True)"),
    (r"\.softmax\(dim=-1\)", ".softmax(-1)"),
    (r"nn\.ModuleList\((.+)\)$", r"nn.ModuleList(list(\1))"),
)
HINT = re.compile(r"(: [\w.\[\], |]+?)(?=[,)=])|( -> [\w.\[\], |]+?)(?=:$)")
# Statements a learner's version may hold where another's has none: each one breaks the k-grams across it.
FILLERS = ("pass", "assert True", "_ = None", "...", "assert 1", "_ = 0", "_ = []", "_ = {}")
FILL_RATE = 1.0


def statement_starts(source: str) -> list[tuple[int, int]]:
    """(line, column) of each statement in a block's body, where another statement may go before it."""
    starts = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.For | ast.While | ast.With | ast.If):
            for stmt in node.body:
                decorated = isinstance(stmt, ast.FunctionDef | ast.ClassDef) and stmt.decorator_list
                starts.append(((stmt.decorator_list[0] if decorated else stmt).lineno, stmt.col_offset))
    return sorted(starts)


def shuffle_fields(source: str, rng: random.Random) -> str:
    """Each run of one-line ``self.name = ...`` statements in another order (their order does not matter)."""
    lines = source.splitlines(keepends=True)
    runs: list[list[int]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef):
            run: list[int] = []
            for stmt in [*node.body, None]:
                simple = (
                    isinstance(stmt, ast.Assign)
                    and stmt.lineno == stmt.end_lineno
                    and all(isinstance(t, ast.Attribute) for t in stmt.targets)
                )
                if simple:
                    run.append(stmt.lineno - 1)
                else:
                    if len(run) > 1:
                        runs.append(run)
                    run = []
    for run in runs:
        texts = [lines[i] for i in run]
        rng.shuffle(texts)
        for i, text in zip(run, texts, strict=True):
            lines[i] = text
    return "".join(lines)


def fill(source: str, rng: random.Random, rate: float) -> str:
    """``source`` with a filler statement before each statement of a body with probability ``rate``."""
    lines = source.splitlines(keepends=True)
    for line, col in reversed(statement_starts(source)):
        if rng.random() < rate:
            lines.insert(line - 1, " " * col + rng.choice(FILLERS) + "\n")
    return "".join(lines)


def variant(source: str, rng: random.Random, tag: str) -> str:
    """A rewrite of ``source`` that a different learner might have produced from the same idea."""
    text = disguise(source, tag)
    for pattern, repl in REWRITES:
        text = re.sub(pattern, lambda m, r=repl: m.expand(r) if rng.random() < 0.5 else m.group(0), text, flags=re.M)
    lines = [
        HINT.sub("", line) if line.lstrip().startswith("def ") and rng.random() < 0.5 else line
        for line in text.splitlines(keepends=True)
    ]
    return reorder(fill(shuffle_fields("".join(lines), rng), rng, FILL_RATE), rng)


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def read(folder: Path) -> dict[str, str]:
    return {name: (folder / name).read_text(encoding="utf-8") for name in CODE if (folder / name).is_file()}


def make_class(root: Path, size: int, copies: int, seed: int = 0) -> list[tuple[str, str]]:
    """Write ``size`` submissions under ``root``: variants of SOURCES, of which ``copies`` are disguised copies of
    another submission of the class. Returns the planted (original, copy) pairs of ids."""
    rng = random.Random(seed)
    made: dict[str, dict[str, str]] = {}
    for i in range(size - copies):
        source = read(SOURCES[i % len(SOURCES)])
        made[f"s{i:03d}"] = {name: variant(text, rng, f"v{i}") for name, text in source.items()}
    planted = []
    for j, original in enumerate(rng.sample(sorted(made), copies)):
        copy = f"c{j:03d}"
        made[copy] = {name: disguise(text, f"c{j}") for name, text in made[original].items()}
        planted.append((original, copy))
    for student, files in made.items():
        write(root / student, files)
    return planted
