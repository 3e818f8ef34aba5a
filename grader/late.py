"""Late work: when each submission was handed in, and what the course's late policy makes of it.

A submission's time comes from one of three sources, and the reports always name the one used:

- the git commit time of what was submitted (the grading workflows pass it; the committer's own clock sets it);
- Gradescope's ``/autograder/submission_metadata.json`` (its ``created_at``), ``gradescope_time``;
- an explicit ``submitted_at`` column, for folders collected by hand, ``read_times``.

A submission with no known time is never called on time: its penalty says "unknown" and its score stands.

The policy (``load_policy``) is a TOML file with a due date, a grace period, a penalty per started day
late, a cap, and a date after which nothing earns credit; a second TOML file grants extensions. With
``late = submitted_at - due``::

    late <= grace                     on time, 0 %
    otherwise                         days = ceil(late / 24 h), percent = min(days x percent_per_day, max_percent)
    submitted_at > no_credit_after    no credit, 100 %

The days count from the due date itself: the grace period forgives a few minutes, it does not move the
deadline. An extension gives a student a due date of their own and moves their no-credit date by as much.
The penalty is a percentage of the raw score (automatic plus written), applied when the reports are
written, so that written work scored later is penalised the same way.
"""

from __future__ import annotations

import csv
import json
import math
import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from .errors import UsageError
from .results import Penalty

__all__ = [
    "LatePolicy",
    "Penalty",
    "SubmissionTime",
    "gradescope_time",
    "load_policy",
    "parse_time",
    "read_times",
]

ON_TIME, LATE, NO_CREDIT, UNKNOWN = "on time", "late", "no credit", "unknown"
DAY = timedelta(days=1)
POLICY_KEYS = ("due", "grace_minutes", "percent_per_day", "max_percent", "no_credit_after")
EXAMPLE_TIME = "2025-03-14T23:59:00+01:00 (or ...Z for UTC)"


@dataclass(frozen=True)
class SubmissionTime:
    """When a submission was handed in (an aware datetime, or None when unknown) and where that came from."""

    at: datetime | None
    source: str


NO_TIME = SubmissionTime(None, "none: no submission time was given for this folder")


def iso(moment: datetime) -> str:
    """``2025-03-14T22:59:00+00:00``: UTC, to the second, as the reports write every time."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def shown(moment: datetime) -> str:
    """``2025-03-14 22:59 UTC``, for a sentence."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_time(value: Any, where: str) -> datetime:
    """A moment with its UTC offset, from TOML (a datetime) or text (ISO 8601, ``Z`` allowed), in UTC.

    A time without an offset is refused: guessing its time zone could call late work on time.
    """
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise UsageError(f"{where}: {value!r} is not a date and time; write it as {EXAMPLE_TIME}.") from None
    if isinstance(moment, date) and not isinstance(moment, datetime):
        raise UsageError(f"{where}: {value} is a date without a time; write it as {EXAMPLE_TIME}.")
    if not isinstance(moment, datetime):
        raise UsageError(f"{where}: expected a date and time such as {EXAMPLE_TIME}, found {value!r}.")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise UsageError(
            f"{where}: {value} has no UTC offset, so its time zone is unknown; write it as {EXAMPLE_TIME}."
        )
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class Extension:
    """A student's own due date, and why."""

    due: datetime
    reason: str


@dataclass(frozen=True)
class LatePolicy:
    """The course's late policy (see the module docstring for the arithmetic); ``load_policy`` reads one."""

    due: datetime
    grace: timedelta = timedelta(0)
    percent_per_day: float = 0.0
    max_percent: float = 100.0
    no_credit_after: datetime | None = None
    extensions: dict[str, Extension] = field(default_factory=dict)
    source: str = ""  # the file(s) it was read from, for the reports

    def dates_for(self, student: str) -> tuple[datetime, datetime | None, str]:
        """The student's due date, no-credit date, and a note on their extension ('' without one)."""
        extension = self.extensions.get(student)
        if extension is None:
            return self.due, self.no_credit_after, ""
        shift = extension.due - self.due
        last = self.no_credit_after + shift if self.no_credit_after is not None else None
        reason = f": {extension.reason}" if extension.reason else ""
        return extension.due, last, f" (extension to {shown(extension.due)}{reason})"

    def assess(self, student: str, time: SubmissionTime) -> Penalty:
        """The penalty of one submission handed in at ``time``."""
        due, last, extended = self.dates_for(student)
        if time.at is None:
            return Penalty(
                UNKNOWN,
                0.0,
                iso(due),
                "",
                time.source,
                0.0,
                f"no submission time is known ({time.source}): lateness not assessed, score left as it is{extended}",
            )
        late = time.at - due
        facts = (iso(due), iso(time.at), time.source, late.total_seconds())
        if last is not None and time.at > last:
            rule = f"submitted {shown(time.at)}, after {shown(last)}, the last time for any credit: no credit{extended}"
            return Penalty(NO_CREDIT, 100.0, *facts, rule)
        if late <= self.grace:
            when = (
                "before the due date" if late <= timedelta(0) else f"{span(late)} after the due date, within the grace"
            )
            return Penalty(ON_TIME, 0.0, *facts, f"on time: {when} ({shown(due)}){extended}")
        days = math.ceil(late / DAY)
        percent = float(min(days * self.percent_per_day, self.max_percent))
        capped = f", capped at {self.max_percent:g}%" if days * self.percent_per_day > self.max_percent else ""
        rule = (
            f"{days} day{'s' if days != 1 else ''} late ({span(late)} after {shown(due)}): "
            f"{self.percent_per_day:g}% per started day{capped}: -{percent:g}%{extended}"
        )
        return Penalty(LATE, percent, *facts, rule)

    def describe(self) -> str:
        """The policy in one line, for the console and the summary."""
        parts = [f"due {shown(self.due)}"]
        if self.grace:
            parts.append(f"grace {span(self.grace)}")
        parts.append(f"{self.percent_per_day:g}% per started day late, at most {self.max_percent:g}%")
        if self.no_credit_after is not None:
            parts.append(f"no credit after {shown(self.no_credit_after)}")
        if self.extensions:
            parts.append(f"{len(self.extensions)} extension(s)")
        return "; ".join(parts)


def span(delta: timedelta) -> str:
    """``1 d 3 h 5 min``, ``15 min 1 s``, ``40 s``: a duration for a sentence, to the second."""
    seconds = int(abs(delta).total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min"), (secs, "s")) if n]
    return " ".join(parts) or "0 s"


def _number(data: dict, key: str, default: float, where: Path, most: float | None = None) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise UsageError(f"{where}: {key} must be a number >= 0, not {value!r}.")
    if most is not None and value > most:
        raise UsageError(f"{where}: {key} is at most {most:g}, not {value:g}.")
    return float(value)


def _toml(path: Path, what: str) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read the {what} {path}: {exc.strerror}.") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} (the {what}) is not valid TOML: {exc}.") from None


def load_policy(policy: Path, extensions: Path | None = None) -> LatePolicy:
    """Read a late policy and, optionally, its extensions; UsageError naming the file and key on any mistake."""
    data = _toml(policy, "late policy")
    unknown = sorted(set(data) - set(POLICY_KEYS))
    if unknown:
        raise UsageError(f"{policy}: unknown key(s) {', '.join(unknown)}; a late policy has {', '.join(POLICY_KEYS)}.")
    if "due" not in data:
        raise UsageError(f"{policy}: the due date is missing; add due = {EXAMPLE_TIME.split(' ')[0]}.")
    due = parse_time(data["due"], f"{policy}: due")
    last = parse_time(data["no_credit_after"], f"{policy}: no_credit_after") if "no_credit_after" in data else None
    if last is not None and last < due:
        raise UsageError(f"{policy}: no_credit_after ({shown(last)}) is before the due date ({shown(due)}).")
    granted = read_extensions(extensions, due) if extensions is not None else {}
    return LatePolicy(
        due=due,
        grace=timedelta(minutes=_number(data, "grace_minutes", 0.0, policy)),
        percent_per_day=_number(data, "percent_per_day", 0.0, policy, most=100.0),
        max_percent=_number(data, "max_percent", 100.0, policy, most=100.0),
        no_credit_after=last,
        extensions=granted,
        source=str(policy) + (f" with {extensions}" if extensions is not None else ""),
    )


def read_extensions(path: Path, due: datetime) -> dict[str, Extension]:
    """``alice = 2025-03-16T23:59:00+01:00`` (a new due date) or ``bob = { days = 2, reason = "..." }``."""
    granted = {}
    for student, value in _toml(path, "extensions file").items():
        where = f"{path}: {student}"
        reason = ""
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"days", "due", "reason"})
            if unknown or ("days" in value) == ("due" in value):
                raise UsageError(f"{where}: give either days = N or due = {EXAMPLE_TIME.split(' ')[0]}, and a reason.")
            reason = value.get("reason", "")
            if not isinstance(reason, str):
                raise UsageError(f"{where}: reason must be text in quotes.")
            if "days" in value:
                days = value["days"]
                if isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0:
                    raise UsageError(f"{where}: days must be a number of days > 0, not {days!r}.")
                granted[student] = Extension(due + timedelta(days=days), reason)
                continue
            value = value["due"]
        granted[student] = Extension(parse_time(value, where), reason)
    return granted


def read_times(path: Path) -> dict[str, SubmissionTime]:
    """Submission times from a CSV with the columns ``student`` and ``submitted_at`` (and ``source``, optional).

    An empty ``submitted_at`` means unknown. UsageError naming the file and line on any mistake.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            rows, header = list(reader), reader.fieldnames or []
    except OSError as exc:
        raise UsageError(f"cannot read the submission times {path}: {exc.strerror}.") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UsageError(f"{path} is not a UTF-8 CSV file: {exc}.") from None
    if not {"student", "submitted_at"} <= set(header):
        raise UsageError(f"{path}: the header needs the columns student and submitted_at (found {', '.join(header)}).")
    times: dict[str, SubmissionTime] = {}
    first: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        student = (row["student"] or "").strip()
        if student in first:
            raise UsageError(
                f"{path}, line {line}: {student!r} already has a submission time, on line {first[student]}."
            )
        first[student] = line
        text = (row["submitted_at"] or "").strip()
        source = (row.get("source") or "").strip() or f"submitted_at column of {path}"
        at = parse_time(text, f"{path}, line {line}") if text else None
        times[student] = SubmissionTime(at, source if at else f"{source}: empty, so unknown")
    return times


def gradescope_time(path: Path) -> SubmissionTime:
    """The submission time in Gradescope's ``submission_metadata.json`` (its ``created_at``)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read Gradescope's submission metadata {path}: {exc.strerror}.") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path} is not Gradescope's submission metadata (not JSON: {exc}).") from None
    created = data.get("created_at") if isinstance(data, dict) else None
    if created is None:
        raise UsageError(f"{path} has no created_at: it is not Gradescope's submission_metadata.json.")
    return SubmissionTime(
        parse_time(created, f"{path}: created_at"), f"Gradescope submission metadata ({path}: created_at)"
    )
