"""Validating what a sandboxed run sends back, before any check looks at it.

The child runs the learner's code, so its JSON is untrusted: every observation is checked against a small
schema (types, lengths, shapes, finite numbers) and turned into plain Python values. Anything else becomes
an ``ObservationError`` whose text says what was wrong; the checks that needed it fail with that text.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch

MAX_LIST = 64
MAX_DIMS = 6
MAX_STR = 2000


class ObservationError(ValueError):
    """An observation does not match its schema."""


@dataclass(frozen=True)
class Observed:
    """A tensor as the child reported it: its shape and numbers (None where the child had NaN or inf)."""

    shape: tuple[int, ...]
    values: tuple[float | None, ...] | None

    @property
    def nonfinite(self) -> int:
        """How many entries were NaN or inf in the child."""
        return sum(v is None for v in self.values or ())

    def tensor(self) -> torch.Tensor:
        """The numbers as a float64 tensor of the reported shape (callers check ``nonfinite`` first)."""
        if self.values is None:
            raise ObservationError(f"a tensor of shape {list(self.shape)} was too large to send back")
        return torch.tensor([math.nan if v is None else v for v in self.values], dtype=torch.float64).reshape(
            self.shape
        )


class Spec(ABC):
    """A schema node: ``check(value, where)`` returns the validated value or raises ObservationError."""

    @abstractmethod
    def check(self, value: Any, where: str) -> Any:
        """The validated value, or ObservationError saying what is wrong and where."""


class Int(Spec):
    """A non-negative integer (never a bool)."""

    def check(self, value: Any, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ObservationError(f"{where} should be a non-negative integer, got {_kind(value)}")
        return value


class Float(Spec):
    """A finite number (an int is taken as a float; a bool is not a number)."""

    def check(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ObservationError(f"{where} should be a finite number, got {_kind(value)}")
        return float(value)


class Bool(Spec):
    """true or false."""

    def check(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise ObservationError(f"{where} should be true or false, got {_kind(value)}")
        return value


class Str(Spec):
    """A string, cut to a readable length."""

    def check(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise ObservationError(f"{where} should be a string, got {_kind(value)}")
        return value[:MAX_STR]


class Optional(Spec):
    """null or the inner spec."""

    def __init__(self, inner: Spec) -> None:
        self.inner = inner

    def check(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.check(value, where)


class ListOf(Spec):
    """A list of items of one spec, of an exact length when ``length`` is given."""

    def __init__(self, item: Spec, length: int | None = None, max_length: int = MAX_LIST) -> None:
        self.item, self.length, self.max_length = item, length, max_length

    def check(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise ObservationError(f"{where} should be a list, got {_kind(value)}")
        if self.length is not None and len(value) != self.length:
            raise ObservationError(f"{where} should have {self.length} items, got {len(value)}")
        if len(value) > self.max_length:
            raise ObservationError(f"{where} has {len(value)} items, more than {self.max_length}")
        return [self.item.check(v, f"{where}[{i}]") for i, v in enumerate(value)]


class Record(Spec):
    """A JSON object with these keys (others are ignored)."""

    def __init__(self, fields: dict[str, Spec]) -> None:
        self.fields = fields

    def check(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ObservationError(f"{where} should be an object, got {_kind(value)}")
        missing = [k for k in self.fields if k not in value]
        if missing:
            raise ObservationError(f"{where} lacks {', '.join(missing)}")
        return {k: spec.check(value[k], f"{where}.{k}") for k, spec in self.fields.items()}


class Choice(Spec):
    """An object whose ``kind`` picks the spec of the rest."""

    def __init__(self, kinds: dict[str, Record]) -> None:
        self.kinds = kinds

    def check(self, value: Any, where: str) -> dict[str, Any]:
        kind = value.get("kind") if isinstance(value, dict) else None
        if kind not in self.kinds:
            raise ObservationError(f"{where}.kind should be one of {', '.join(self.kinds)}")
        return {"kind": kind, **self.kinds[kind].check(value, where)}


class Shape(Spec):
    """A tensor shape: up to MAX_DIMS non-negative integers."""

    def check(self, value: Any, where: str) -> tuple[int, ...]:
        return tuple(ListOf(Int(), max_length=MAX_DIMS).check(value, where))


class TensorSpec(Spec):
    """``{"shape": [...], "data": [...] | null}``: data as long as the shape says, numbers finite or null."""

    def __init__(self, max_numbers: int = 8192) -> None:
        self.max_numbers = max_numbers

    def check(self, value: Any, where: str) -> Observed:
        if not isinstance(value, dict) or "shape" not in value or "data" not in value:
            raise ObservationError(f"{where} should be a tensor record with shape and data")
        shape = Shape().check(value["shape"], f"{where}.shape")
        data = value["data"]
        if data is None:
            return Observed(shape, None)
        numel = math.prod(shape)
        if not isinstance(data, list) or len(data) != numel or numel > self.max_numbers:
            raise ObservationError(f"{where}.data does not hold the {numel} numbers of shape {list(shape)}")
        for i, x in enumerate(data):
            if x is None:
                continue
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ObservationError(f"{where}.data[{i}] is not a finite number")
        return Observed(shape, tuple(float(x) if x is not None else None for x in data))


def _kind(value: Any) -> str:
    """A short description of an unexpected value."""
    return f"{type(value).__name__} {value!r}"[:80]
