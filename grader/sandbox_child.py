"""The child side of a sandbox run: execute the probe next to the submission, send back JSON.

Runs as ``python -I -c <this source> REQ_FD RES_FD SCRATCH`` in the scratch directory. It
reads the request (probe source, call name, arguments, nonce) from REQ_FD, puts SCRATCH
first on ``sys.path``, executes the probe as module ``probe``, calls ``probe.<call>(**args)``
and writes one JSON envelope to RES_FD. Standard library only: nothing of the grader is
importable here.
"""

import json
import os
import sys
import traceback
import types


def _send(fd: int, envelope: dict) -> None:
    """Write the envelope and close the channel, so nothing later can append to it."""
    data = json.dumps(envelope).encode()
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def main() -> None:
    req_fd, res_fd, scratch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    with os.fdopen(req_fd, "rb") as f:
        request = json.loads(f.read())
    nonce = request["nonce"]
    sys.argv = ["probe"]
    sys.path.insert(0, scratch)
    probe = types.ModuleType("probe")
    sys.modules["probe"] = probe
    try:
        exec(compile(request["probe"], "<grader probe>", "exec"), probe.__dict__)
        result = getattr(probe, request["call"])(**request["args"])
        envelope = {"nonce": nonce, "kind": "ok", "result": result}
        json.dumps(envelope)
    except SystemExit as exc:
        envelope = {"nonce": nonce, "kind": "exit", "error": f"sys.exit({exc.code!r})"}
    except MemoryError:
        envelope = {"nonce": nonce, "kind": "memory", "error": "MemoryError"}
    except BaseException as exc:
        kind = "file" if isinstance(exc, OSError) and exc.errno == 27 else "error"
        if "can't allocate memory" in str(exc) or "DefaultCPUAllocator" in str(exc):
            kind = "memory"
        traceback.print_exc()
        envelope = {"nonce": nonce, "kind": kind, "error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.flush()
    sys.stderr.flush()
    _send(res_fd, envelope)


main()
