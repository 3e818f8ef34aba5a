"""The host side of the sandbox: run untrusted code away from the grader, within limits, and bring back JSON.

Trusted code, and the only way student code is ever run. It imports nothing of the rest of the grader
(nor pytest, torch or ``reference``): what it knows of a run is the files, a probe's source text, the name
of the probe function and its JSON arguments.

- ``pool``: ``Sandbox``, a pool of long-lived workers, one per job slot, each a *zygote* that imports torch
  once and forks a fresh process per ``run``; ``SandboxUnavailable`` when isolation is required and missing.
- ``bwrap``: the bubblewrap command line of a worker (no network, read-only system, none of the repository).
- ``limits``: ``Limits``, the resource limits of one run.
- ``verdict``: ``Outcome``, what one run produced, judged from the zygote's facts.
- ``inside/``: the files sent as source text into the sandbox and run there, never imported by the
  grader: ``zygote.py`` (the worker) and ``probe.py`` (the experiments on a submission). Standard library
  and torch only.

Without bubblewrap the same zygote runs as a plain child process with resource limits only, and
``Sandbox.isolation`` says so plainly; ``require_isolation=True`` refuses to run that way. The threat
model, what this protects and what it does not, is in ``docs/threat-model.md``.
"""

from __future__ import annotations

from .limits import Limits
from .pool import Sandbox, SandboxUnavailable
from .verdict import Outcome

__all__ = ["Limits", "Outcome", "Sandbox", "SandboxUnavailable"]
