"""Grade one Gradescope submission: the autograder's ``run_autograder`` runs ``python -m grader.release.gradescope``.

Gradescope's layout (gradescope/autograder_samples, ``docs/specs.md`` and ``docs/submission_metadata.md``) under
the root, ``/autograder`` (``--root`` moves it: the tests simulate Gradescope in a temporary folder):
``source/`` (the autograder zip: this grader), ``submission/`` (the learner's upload),
``submission_metadata.json`` (who, when, the due dates) and ``results/results.json``, written here, always.

1. **who and when**: the learners' names give the student id, the submission's id the seed (a regrade draws
   the same inputs), ``created_at`` and the due dates the late policy (``late_policy``);
2. **stage**: the upload's submission folder is the upload itself or the one folder in it that holds the
   submission files (learners often upload a zip with a top folder); its files are copied under the student's
   id, links as links (the grader refuses to follow them, and says so);
3. **grade** with ``grader.grade``, which runs the code in the sandbox (here, without user namespaces, as
   a uid of its own that cannot read ``source/``: see ``run_autograder`` and the threat model);
4. **report**: Gradescope's ``results.json`` (``grader.reports.files.results_json``), each check with its
   visibility. Whatever fails on the way becomes a results.json that says what went wrong and that it is not
   the learner's grade; the details go to stdout, which only the instructor sees.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import tomllib
import traceback
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG = "gradescope.toml"  # in source/: written by ``python -m grader release`` (docs address, late policy)
MAX_STAGED_BYTES = 16 * 2**20  # a file of the upload bigger than this is not staged (the grader reads less)
SEARCH_DEPTH = 3  # how deep in the upload a submission folder is looked for
SKIPPED = ("__MACOSX",)  # what archivers add beside the files


class UploadError(Exception):
    """The upload holds no submission the grader can find; the message tells the learner what to upload."""


@dataclass
class Metadata:
    """What ``submission_metadata.json`` says of this submission (each part may be missing)."""

    path: Path
    names: list[str] = field(default_factory=list)
    submission_id: int | None = None
    created_at: str | None = None
    due: str | None = None
    late_due: str | None = None
    problem: str = ""  # why the file could not be read, if it could not


def read_metadata(path: Path) -> Metadata:
    """The submission's metadata; a missing or broken file is noted, not fatal (the work can still be graded)."""
    meta = Metadata(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        meta.problem = f"{path.name} could not be read ({type(exc).__name__})"
        return meta
    users = [u for u in data.get("users") or [] if isinstance(u, dict)]
    meta.names = [str(u.get("name") or str(u.get("email") or "").split("@")[0]) for u in users]
    meta.names = [n for n in meta.names if n]
    meta.submission_id = data.get("id") if isinstance(data.get("id"), int) else None
    meta.created_at = data.get("created_at")
    assignment = data.get("assignment") or {}
    # A learner's own extension, where Gradescope gives one, wins over the assignment's dates.
    own = next((u.get("assignment") for u in users if isinstance(u.get("assignment"), dict)), {})
    meta.due = own.get("due_date") or assignment.get("due_date")
    meta.late_due = own.get("late_due_date") or assignment.get("late_due_date")
    return meta


def student_id(names: list[str]) -> str:
    """A grader id (letters, digits, ``-``, ``_``) from the learners' names: "Ada Lovelace" -> "Ada-Lovelace"."""
    parts = []
    for name in names:
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
        parts.append(re.sub(r"[^A-Za-z0-9]+", "-", ascii_name).strip("-"))
    return "_".join(p for p in parts if p)[:64].strip("-_") or "submission"


def folders(path: Path) -> list[Path]:
    """The sub-folders of ``path`` a submission may be in: no link, nothing hidden, no template, no archiver's."""
    return [
        child
        for child in sorted(path.iterdir())
        if child.is_dir() and not child.is_symlink() and not child.name.startswith((".", "_", *SKIPPED))
    ]


def locate(upload: Path) -> Path:
    """The upload's submission folder: the upload itself when it holds a submission file; in a whole repository
    (the student kit, zipped or submitted from GitHub) its one ``submissions/<id>/``; else the shallowest folder
    that holds one. UploadError when there is none, or more than one."""
    from ..submission import KNOWN_FILES

    def holds(folder: Path) -> bool:
        return any((folder / name).is_file() or (folder / name).is_symlink() for name in KNOWN_FILES)

    if holds(upload):
        return upload
    for top in [upload, *folders(upload)]:
        if (top / "submissions").is_dir() and not (top / "submissions").is_symlink():
            mine = [folder for folder in folders(top / "submissions") if holds(folder)]
            if len(mine) == 1:
                return mine[0]
            where = (top / "submissions").relative_to(upload)
            if mine:
                names = ", ".join(f"{folder.name}/" for folder in mine)
                raise UploadError(f"Your upload's {where}/ holds several submissions ({names}): keep only yours.")
            raise UploadError(
                f"Your upload's {where}/ holds no submission: copy submissions/_template/ to "
                "submissions/<your-id>/ and work there."
            )
    level = folders(upload)
    for _ in range(SEARCH_DEPTH):
        found = [folder for folder in level if holds(folder)]
        if len(found) == 1:
            return found[0]
        if found:
            names = ", ".join(f"{folder.relative_to(upload)}/" for folder in found)
            raise UploadError(f"Your upload holds several submission folders ({names}): upload one.")
        level = [child for folder in level for child in folders(folder)]
    held = sorted(p.relative_to(upload).as_posix() for p in upload.rglob("*") if p.is_file())[:12]
    raise UploadError(
        f"Your upload holds none of {', '.join(KNOWN_FILES[:3])} (it holds: {', '.join(held) or 'nothing'}). "
        "Upload the files of your submissions/<your-id>/ folder, or a zip of that folder."
    )


def stage(folder: Path, target: Path) -> list[str]:
    """Copy the folder's files (not its sub-folders) to ``target``; links stay links. Returns what was not copied."""
    target.mkdir(parents=True)
    notes = []
    for path in sorted(folder.iterdir()):
        if path.is_symlink():
            os.symlink(os.readlink(path), target / path.name)
        elif path.is_file() and path.stat().st_size <= MAX_STAGED_BYTES:
            shutil.copyfile(path, target / path.name)
        elif path.is_file():
            notes.append(f"{path.name} ({path.stat().st_size:,} bytes) is too big to grade and was left out")
    return notes


def late_policy(settings: dict[str, Any] | None, meta: Metadata, student: str, work: Path) -> dict[str, Any]:
    """``grader.grade``'s late-policy arguments for this submission (none when the autograder has no policy, or
    Gradescope no due date): the instructor's settings with Gradescope's due date (and late due date, after which
    nothing is credited), and the submission time from ``created_at`` (``grader.late``)."""
    if not settings or not meta.due:
        return {}
    from ..late import gradescope_time, load_policy  # issue 10's late policy: grader/late.py

    dates = {"due": meta.due} | ({"no_credit_after": meta.late_due} if meta.late_due else {})
    policy = write_policy(settings, dates, work / "late-policy.toml")
    return {"late_policy": load_policy(policy), "submitted": {student: gradescope_time(meta.path)}}


def write_policy(settings: dict[str, Any], dates: dict[str, str], path: Path) -> Path:
    """The instructor's rule with these due dates (Gradescope's: they replace the rule's own), as the TOML file
    ``grader.late.load_policy`` reads; ``python -m grader release`` reads one so before it builds."""
    from .kit import toml_text

    text = toml_text({k: v for k, v in settings.items() if k not in ("due", "no_credit_after")})
    path.write_text(text + "".join(f"{k} = {v}\n" for k, v in dates.items()), encoding="utf-8")
    return path


def grade_upload(root: Path, config: dict[str, Any], work: Path) -> dict[str, Any]:
    """Stage, grade and report one submission: Gradescope's results.json as a dict."""
    from ..grading import grade
    from ..reports.files import results_json

    meta = read_metadata(root / "submission_metadata.json")
    student = student_id(meta.names)
    folder = locate(root / "submission")
    staged = work / "submissions" / student
    notes = stage(folder, staged)
    print(f"gradescope: grading {folder} as {student!r} (seed {meta.submission_id})", flush=True)
    extra = late_policy(config.get("late"), meta, student, work)
    (result,) = grade([staged], seed=meta.submission_id, docs_url=config.get("docs_url"), **extra)
    data = results_json(result, result.run_seed, show_isolation=False)
    print(f"gradescope: isolation: {result.isolation}", flush=True)  # stdout: instructors only
    said = [f"Graded for {', '.join(meta.names)}." if meta.names else ""]
    if folder != root / "submission":
        said.append(f"Graded the files of {folder.relative_to(root / 'submission')}/ in your upload.")
    said += [f"Note: {note}." for note in notes]
    if meta.problem:
        said.append(f"Note: {meta.problem}; graded without its names and dates.")
    data["output"] = " ".join([*filter(None, said), data["output"]])
    data["extra_data"] |= {"gradescope_submission": meta.submission_id, "names": meta.names}
    return data


def failure(what: str, detail: str, score: float = 0.0) -> dict[str, Any]:
    """A results.json for a submission that could not be graded: what went wrong, for the learner to read."""
    return {
        "score": score,
        "output": what,
        "output_format": "text",
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": [],
        "extra_data": {"error": detail},
    }


class OutOfTime(Exception):
    """Gradescope stopped the autograder (SIGTERM) before it finished."""


def _stopped(signum: int, frame: object) -> None:
    raise OutOfTime(f"signal {signum}")


def write_results(path: Path, data: dict[str, Any]) -> None:
    """results.json, whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".results-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.release.gradescope", description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=Path("/autograder"), help="Gradescope's root (/autograder)")
    args = parser.parse_args(argv)
    start = time.monotonic()
    signal.signal(signal.SIGTERM, _stopped)
    results = args.root / "results" / "results.json"
    config_path = Path(__file__).resolve().parents[2] / CONFIG
    work = Path(tempfile.mkdtemp(prefix="gradescope-"))  # 0700: root's alone
    try:
        config = tomllib.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        data = grade_upload(args.root, config, work)
    except UploadError as exc:
        data = failure(str(exc), "upload: no submission folder found")
    except OutOfTime as exc:
        data = failure(
            "The autograder ran out of time before it finished grading. This is not your grade: your instructor "
            "will regrade it.",
            f"stopped: {exc}",
        )
    except Exception as exc:
        traceback.print_exc()
        data = failure(
            f"The autograder failed while grading this submission ({type(exc).__name__}). This is not your grade: "
            "your instructor has the log and will regrade it.",
            type(exc).__name__,  # the message and the traceback are in stdout, which only the instructor sees
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    data["execution_time"] = round(time.monotonic() - start, 3)
    write_results(results, data)
    print(f"gradescope: wrote {results} (score {data['score']:g}) in {data['execution_time']:.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
