"""What one sandboxed run produced (``Outcome``), judged from its facts: which limit was hit, what to tell the learner.

The facts come from the trusted zygote (how the run ended, what its watchdog measured) and from
the result channel, which the untrusted code shares and may have written itself: an envelope counts
only when it parses, carries this run's nonce and has the expected shape; its content is still only
an observation that the grader checks against inputs it drew afresh.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass

from .limits import Limits

TAIL_LINES, TAIL_CHARS = 40, 4000


@dataclass
class Outcome:
    """What one run produced: a status, the probe's JSON result (only when ok), and the learner's message."""

    status: str  # ok | timeout | cpu-limit | memory-limit | process-limit | output-limit | file-limit
    #             | crashed | exited | bad-result | refused
    result: dict | None
    message: str
    stderr_tail: str
    seconds: float


def tail(text: str) -> str:
    """The last lines of the captured output, size-capped."""
    return "\n".join(text.splitlines()[-TAIL_LINES:])[-TAIL_CHARS:]


def _size(n: int) -> str:
    """Bytes in the unit a person reads best: ``2 GiB``, ``64 KiB``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def limit_message(status: str, lim: Limits, detail: str = "") -> str:
    """The learner's message for a run stopped at a limit."""
    messages = {
        "timeout": f"stopped after the wall-time limit of {lim.wall_seconds:g} s: the code never finished "
        "(an endless loop, a blocking call, or far too much work?)",
        "cpu-limit": f"stopped at the CPU-time limit of {lim.cpu_seconds:g} s: the code computes far too much "
        "(an endless loop, or a model much larger than asked?)",
        "memory-limit": f"stopped at the memory limit of {_size(lim.memory_bytes)}: the code allocates far too "
        "much (a huge tensor, or a list that keeps growing?)",
        "process-limit": f"stopped at the limit of {lim.processes} processes and threads: the code starts "
        "processes or threads (os.fork, multiprocessing, subprocess?), which a submission must not do",
        "output-limit": f"stopped: the code printed more than {_size(lim.output_bytes)} to stdout/stderr; "
        "remove the prints from your model code",
        "file-limit": f"stopped at the file-size limit of {_size(lim.file_bytes)}: the code writes large "
        "or many files, which a submission must not do",
    }
    return messages[status] + (f" ({detail})" if detail else "")


def judge(reply: dict, nonce: str, lim: Limits) -> Outcome:
    """The Outcome of one run, from the zygote's ``reply`` (see ``inside/zygote.py``)."""
    out = tail(reply.get("tail", ""))
    seconds = float(reply.get("seconds", 0.0))
    reason = reply.get("reason", "")
    if reason == "result-limit":
        msg = f"the observations were larger than {_size(lim.output_bytes)}; nothing of them was used"
        return Outcome("bad-result", None, msg, out, seconds)
    if reason:
        return Outcome(reason, None, limit_message(reason, lim), out, seconds)
    envelope = _envelope(reply.get("result", ""), nonce)
    if envelope is None:
        return _no_result(int(reply.get("exit", 0)), float(reply.get("cpu", 0.0)), lim, out, seconds)
    return _from_envelope(envelope, lim, out, seconds)


def _envelope(text: str, nonce: str) -> dict | None:
    """The runner's envelope, if the channel holds exactly one that carries this run's nonce."""
    if not text:
        return None
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(envelope, dict) or envelope.get("nonce") != nonce or not isinstance(envelope.get("kind"), str):
        return None
    return envelope


def _no_result(code: int, cpu: float, lim: Limits, out: str, seconds: float) -> Outcome:
    """The run ended without an envelope: a signal, or an exit before the probe could answer."""
    if code < 0:
        sig = -code
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= lim.cpu_seconds):
            return Outcome("cpu-limit", None, limit_message("cpu-limit", lim), out, seconds)
        if sig == signal.SIGXFSZ:
            return Outcome("file-limit", None, limit_message("file-limit", lim), out, seconds)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        msg = (
            f"the process was killed by signal {name} before it returned a result "
            "(does the code kill itself, or crash inside native code?)"
        )
        return Outcome("crashed", None, msg, out, seconds)
    msg = (
        f"the process exited with status {code} before it returned a result: does the code call "
        "sys.exit(), exit(), quit() or os._exit() (at import, perhaps)? A submission must not exit"
    )
    return Outcome("exited", None, msg, out, seconds)


def _from_envelope(envelope: dict, lim: Limits, out: str, seconds: float) -> Outcome:
    """The run answered: a result, or the reason the probe call did not finish."""
    kind, error = envelope["kind"], str(envelope.get("error", ""))[:1000].rstrip().removesuffix(":")  # "MemoryError: "
    if kind == "ok":
        result = envelope.get("result")
        if isinstance(result, dict):
            return Outcome("ok", result, "", out, seconds)
        msg = f"the probe returned {type(result).__name__}, not a JSON object; nothing of it was used"
        return Outcome("bad-result", None, msg, out, seconds)
    if kind == "exit":
        msg = f"the code called {error} before it returned a result; a submission must not exit"
        return Outcome("exited", None, msg, out, seconds)
    if kind == "memory":
        return Outcome("memory-limit", None, limit_message("memory-limit", lim, error), out, seconds)
    if kind == "file":
        return Outcome("file-limit", None, limit_message("file-limit", lim, error), out, seconds)
    if kind == "sandbox-error":
        msg = f"the sandbox could not prepare this run ({error}): a fault of the grader, not of your code"
        return Outcome("crashed", None, msg, out, seconds)
    if kind == "unserializable":
        msg = f"the observations could not be sent back as JSON ({error}); nothing of them was used"
        return Outcome("bad-result", None, msg, out, seconds)
    msg = f"the code raised {error} (the traceback is below)"
    return Outcome("crashed", None, msg, out, seconds)
