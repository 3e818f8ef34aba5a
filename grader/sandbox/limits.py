"""The resource limits of one sandboxed run, sent to the zygote with every request (``asdict``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    """Resource limits of one run; a run that reaches one is killed, with all its processes, and reported."""

    wall_seconds: float = 20.0
    cpu_seconds: float = 20.0
    memory_bytes: int = 2 * 2**30
    processes: int = 64
    file_bytes: int = 16 * 2**20
    output_bytes: int = 1 * 2**20  # cap on captured stdout+stderr, and on the result JSON
