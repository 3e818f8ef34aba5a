"""Small formatting helpers for feedback messages: numbers, configs, matrices, tensors."""

from __future__ import annotations

import math
from typing import Any

import torch


def number(n: float) -> str:
    """1234567 -> '1,234,567' (integers), else a short float."""
    if isinstance(n, int) or float(n).is_integer():
        return f"{int(n):,}"
    return f"{n:.6g}"


def config_call(fields: dict[str, int]) -> str:
    """``Config(vocab_size=37, hidden_size=16, ...)``."""
    return "Config(" + ", ".join(f"{k}={v}" for k, v in fields.items()) + ")"


def shown(value: Any, limit: int = 60) -> str:
    """A learner's value as TOML-ish text, cut to ``limit`` characters."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace('"', '\\"') + '"'
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def toml_type(value: Any) -> str:
    """The TOML name of a value's type."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def entry(x: float) -> str:
    """A mask entry: 0, 1, -inf."""
    if math.isinf(x):
        return "-inf" if x < 0 else "inf"
    return f"{x:g}"


def matrix(rows: list[list[float]]) -> str:
    """``[[0, -inf], [0, 0]]``."""
    return "[" + ", ".join("[" + ", ".join(entry(x) for x in row) + "]" for row in rows) + "]"


def shape(dims: tuple[int, ...] | list[int]) -> str:
    """``(1, 3, 37)``."""
    dims = tuple(dims)
    return "(" + ", ".join(str(d) for d in dims) + ("," if len(dims) == 1 else "") + ")"


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference of two same-shaped tensors."""
    return float((a - b).abs().max()) if a.numel() else 0.0
