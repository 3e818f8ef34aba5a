"""The gradebook database: the record of truth, ``OUT/gradebook.sqlite`` (SQLite, the standard library's sqlite3).

Every attempt is kept and none is ever changed: a regrade, a late submission or a second machine adds rows;
the views pick each student's latest attempt, and a student's history is one query away. Each submission's
result is one short transaction (``BEGIN IMMEDIATE``, committed as soon as it is scored), so a grader killed
mid-run keeps every grade it finished, and two graders writing one file at once wait for each other's
commit (WAL journal, a busy timeout) instead of losing one's update.

Tables (``SCHEMA`` below holds the exact columns)::

    runs            one row per grading run: seed (text, as every seed here), grader version and
                    digest, isolation, host, shard, started_at, ended_at (NULL while running, or
                    when the run was killed)
    attempts        one row per graded submission: student, files_hash, seeds, submitted_at and its
                    source, graded_at, seconds, the automatic score, isolation, notices, grader errors
    check_results   one row per attempt and check: number, name, score, max_score, status, message
    review_items    one row per attempt and piece of work a person scores: rubric, answer, score
    run_outcomes    one row per attempt and sandboxed run: status, seconds, message, stderr tail
    manual_scores   one row per score a person entered: student, item, score, comment, who, when, from where
    late_penalties  one row per assessment of an attempt under a late policy: status, percent, due, rule

Views: ``latest_attempts``, ``latest_manual_scores``, ``latest_penalties`` and ``class_scores`` (one row
per student: automatic, written, total, penalty, final; the numbers of ``scores.csv``).

The file says what it is: SQLite's ``application_id`` is ``APPLICATION_ID`` and its ``user_version`` the
schema version. A file that is not SQLite, an SQLite file of another program, a gradebook of a newer or
older schema, and a corrupted file are each refused with a ``UsageError`` that names the file; nothing is
overwritten. Rows carry random ids (uuid4), so merging databases (``merge_from``) copies what is new and
merging the same file twice changes nothing.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import asdict, astuple, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ..errors import UsageError
from ..results import CheckResult, ManualItem, Penalty, RunSummary, StudentResult

FILENAME = "gradebook.sqlite"
APPLICATION_ID = 0x4B324742  # "K2GB": a Kimi-K2 lesson gradebook
SCHEMA_VERSION = 1
BUSY_SECONDS = 60.0  # how long a writer waits for another grader's transaction before giving up
SQLITE_HEADER = b"SQLite format 3\x00"
T = TypeVar("T")

SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    seed TEXT NOT NULL,
    grader_version TEXT NOT NULL,
    grader_digest TEXT NOT NULL,
    isolation TEXT NOT NULL,
    host TEXT NOT NULL,
    shard TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    note TEXT NOT NULL
);
CREATE TABLE attempts (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id),
    student TEXT NOT NULL,
    files_hash TEXT NOT NULL,
    seed TEXT NOT NULL,
    run_seed TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    submitted_source TEXT NOT NULL,
    graded_at TEXT NOT NULL,
    committed_at TEXT NOT NULL,
    seconds REAL NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    isolation TEXT NOT NULL,
    notices TEXT NOT NULL,
    grader_errors TEXT NOT NULL
);
CREATE INDEX attempts_by_student ON attempts (student, committed_at);
CREATE TABLE check_results (
    attempt_id TEXT NOT NULL REFERENCES attempts(id),
    position INTEGER NOT NULL,
    number TEXT NOT NULL,
    name TEXT NOT NULL,
    score REAL NOT NULL,
    max_score REAL NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (attempt_id, position)
);
CREATE TABLE review_items (
    attempt_id TEXT NOT NULL REFERENCES attempts(id),
    position INTEGER NOT NULL,
    key TEXT NOT NULL,
    title TEXT NOT NULL,
    max_score REAL NOT NULL,
    rubric TEXT NOT NULL,
    answer TEXT NOT NULL,
    score REAL,
    comment TEXT NOT NULL,
    check_number TEXT NOT NULL,
    PRIMARY KEY (attempt_id, position)
);
CREATE TABLE run_outcomes (
    attempt_id TEXT NOT NULL REFERENCES attempts(id),
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    seconds REAL NOT NULL,
    message TEXT NOT NULL,
    stderr_tail TEXT NOT NULL,
    PRIMARY KEY (attempt_id, position)
);
CREATE TABLE manual_scores (
    id TEXT PRIMARY KEY,
    student TEXT NOT NULL,
    item TEXT NOT NULL,
    score REAL NOT NULL,
    comment TEXT NOT NULL,
    entered_by TEXT NOT NULL,
    entered_at TEXT NOT NULL,
    source TEXT NOT NULL
);
CREATE INDEX manual_scores_by_item ON manual_scores (student, item, entered_at);
CREATE TABLE late_penalties (
    id TEXT PRIMARY KEY,
    attempt_id TEXT NOT NULL REFERENCES attempts(id),
    status TEXT NOT NULL,
    percent REAL NOT NULL,
    due TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    source TEXT NOT NULL,
    late_seconds REAL NOT NULL,
    rule TEXT NOT NULL,
    policy TEXT NOT NULL,
    assessed_at TEXT NOT NULL
);
CREATE INDEX late_penalties_by_attempt ON late_penalties (attempt_id, assessed_at);
CREATE VIEW latest_attempts AS
    SELECT * FROM attempts AS a WHERE a.id = (
        SELECT b.id FROM attempts AS b WHERE b.student = a.student ORDER BY b.committed_at DESC, b.id DESC LIMIT 1);
CREATE VIEW latest_manual_scores AS
    SELECT * FROM manual_scores AS m WHERE m.id = (
        SELECT n.id FROM manual_scores AS n WHERE n.student = m.student AND n.item = m.item
        ORDER BY n.entered_at DESC, n.id DESC LIMIT 1);
CREATE VIEW latest_penalties AS
    SELECT * FROM late_penalties AS p WHERE p.id = (
        SELECT q.id FROM late_penalties AS q WHERE q.attempt_id = p.attempt_id
        ORDER BY q.assessed_at DESC, q.id DESC LIMIT 1);
CREATE VIEW class_scores AS
    SELECT s.*, s.auto_score + s.written_score AS total,
        CASE WHEN s.late_percent IS NULL THEN s.auto_score + s.written_score
             ELSE (s.auto_score + s.written_score) * (1 - s.late_percent / 100.0) END AS final
    FROM (
        SELECT a.student, a.id AS attempt_id, a.run_seed, a.graded_at, a.submitted_at, a.submitted_source,
            (SELECT TOTAL(COALESCE(m.score, c.score)) FROM check_results AS c
                LEFT JOIN latest_manual_scores AS m ON m.student = a.student AND m.item = c.name
                WHERE c.attempt_id = a.id) AS auto_score,
            a.max_score AS auto_max,
            (SELECT TOTAL(COALESCE(m.score, r.score, 0)) FROM review_items AS r
                LEFT JOIN latest_manual_scores AS m ON m.student = a.student AND m.item = r.key
                WHERE r.attempt_id = a.id AND r.check_number = '') AS written_score,
            (SELECT TOTAL(r.max_score) FROM review_items AS r
                WHERE r.attempt_id = a.id AND r.check_number = '') AS written_max,
            (SELECT COUNT(*) FROM review_items AS r
                LEFT JOIN latest_manual_scores AS m ON m.student = a.student AND m.item = r.key
                WHERE r.attempt_id = a.id AND COALESCE(m.score, r.score) IS NULL) AS pending,
            p.status AS late_status, p.percent AS late_percent
        FROM latest_attempts AS a LEFT JOIN latest_penalties AS p ON p.attempt_id = a.id
    ) AS s;
"""
# The tables in the order a merge copies them (a row's references come first), with their columns.
TABLES = ("runs", "attempts", "check_results", "review_items", "run_outcomes", "manual_scores", "late_penalties")


@dataclass
class RunInfo:
    """A grading run as the ``runs`` table holds it (``ended_at`` stays None until the run finishes)."""

    seed: int
    grader_version: str
    grader_digest: str
    isolation: str
    host: str
    shard: str = ""
    started_at: str = field(default_factory=lambda: now())
    ended_at: str | None = None
    note: str = ""


@dataclass(frozen=True)
class ManualEntry:
    """One row of ``manual_scores``: a score a person entered. ``id`` doubles as the entry's version: a review
    page sends the id it saw with its next entry, so that an entry made meanwhile is never overwritten unseen."""

    id: str
    student: str
    item: str
    score: float
    comment: str
    entered_by: str
    entered_at: str
    source: str


class StaleEntry(Exception):
    """Someone entered another score for the item since the caller read it: ``latest`` is that entry."""

    def __init__(self, latest: ManualEntry) -> None:
        super().__init__(f"{latest.student} {latest.item}: {latest.entered_by} entered {latest.score:g} meanwhile")
        self.latest = latest


def now() -> str:
    """The current moment, ISO 8601 UTC to the microsecond: orders attempts and entries."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def new_id() -> str:
    """A random row id, unique across machines, so that merged databases never collide."""
    return uuid.uuid4().hex


class Gradebook:
    """An open gradebook database. ``Gradebook.open(path)`` checks what the file is before anything else."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path, self.conn = path, conn

    # -- opening -------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, create: bool = True) -> Gradebook:
        """Open (or, with ``create``, make) the gradebook at ``path``; UsageError naming it if it is not one."""
        path = Path(path)
        if path.exists() and not path.is_file():
            raise UsageError(f"{path} is a folder, not a gradebook database file.")
        if not path.exists() and not create:
            raise UsageError(f"there is no gradebook at {path}: grade first (python -m grader --out {path.parent}).")
        instead = "choose another --out" if create else "give another gradebook"  # what to do about a bad file
        _refuse_foreign(path, f"move it away or {instead}" if create else instead)
        try:
            conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise UsageError(f"cannot open the gradebook {path}: {exc}.") from None
        book = cls(path, conn)
        try:
            book._check_or_create(instead)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise UsageError(
                f"{path} is damaged and cannot be read as a gradebook ({exc}). It was left as it is; restore it "
                f"from a backup (a merge of the shard databases rebuilds a class), or {instead}."
            ) from None
        except UsageError:
            conn.close()
            raise
        return book

    def _check_or_create(self, instead: str) -> None:
        """Make an empty file a gradebook, or check that it is one this grader reads; ``instead`` says what to
        do about one it cannot read (choose another --out, or give another gradebook to read)."""
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_SECONDS * 1000)}")
        app, version, tables = self._identity()
        if (app, version, tables) == (0, 0, []):
            conn.execute("BEGIN IMMEDIATE")
            try:
                app, version, tables = self._identity()  # another grader may have made it meanwhile
                if (app, version, tables) == (0, 0, []):
                    for statement in _statements(SCHEMA):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                    app, version = APPLICATION_ID, SCHEMA_VERSION
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        if app != APPLICATION_ID:
            owner = f"application_id {app:#x}" if app else "no application id"
            listed = ", ".join(tables[:6]) + (", ..." if len(tables) > 6 else "")
            raise UsageError(
                f"{self.path} is an SQLite database of another program ({owner}; tables: {listed or 'none'}), "
                f"not a gradebook of this grader. It was left as it is; {instead}."
            )
        if version > SCHEMA_VERSION:
            raise UsageError(
                f"{self.path} was written by a newer grader (gradebook schema {version}; this grader reads schema "
                f"{SCHEMA_VERSION}). It was left as it is: upgrade the grader to read it, or {instead}."
            )
        if version < SCHEMA_VERSION:
            raise UsageError(
                f"{self.path} was written by an older grader (gradebook schema {version}), which this grader cannot "
                f"migrate to schema {SCHEMA_VERSION}. It was left as it is; grade with that grader, or {instead}."
            )
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(check)
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")

    def _identity(self) -> tuple[int, int, list[str]]:
        conn = self.conn
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return app, version, tables

    def close(self) -> None:
        """Close the connection; the last one to close folds the write-ahead log into the file and removes it,
        so that the file alone is the whole record (SQLite does so by itself; a busy file keeps its log)."""
        self.conn.close()

    def __enter__(self) -> Gradebook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _write(self, statements: list[tuple[str, Any]]) -> None:
        """One short write transaction: each (sql, rows) pair is executemany'd; all or nothing."""
        self._entering(lambda: [self.conn.executemany(sql, rows) for sql, rows in statements])

    def _entering(self, work: Callable[[], T]) -> T:
        """Run ``work()`` in one write transaction (BEGIN IMMEDIATE): all or nothing."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = work()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return done

    # -- writing ---------------------------------------------------------------------------------------

    def start_run(self, run: RunInfo) -> str:
        """Record the start of a grading run; returns its id."""
        run_id = new_id()
        self._write([("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [_run_row(run_id, run)])])
        return run_id

    def end_run(self, run_id: str) -> None:
        """Record that a run finished (a run without an end was killed, crashed, or is still going)."""
        self._write([("UPDATE runs SET ended_at = ? WHERE id = ?", [(now(), run_id)])])

    def record(self, run_id: str, result: StudentResult, files_hash: str, policy: str = "") -> str:
        """Commit one graded submission (its checks, review items, runs and the penalty under ``policy``, the
        late policy's file) in one transaction."""
        attempt = new_id()
        self._write(_attempt_rows(attempt, run_id, result, files_hash, now(), policy))
        return attempt

    def import_class(self, run: RunInfo, results: list[StudentResult]) -> bool:
        """Import the class of an earlier grader's gradebook as one run, in one transaction, unless this
        gradebook holds a run already (another grader imported it first); returns whether it imported."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]:
                conn.execute("ROLLBACK")
                return False
            run_id = new_id()
            conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _run_row(run_id, run))
            for r in results:
                for sql, rows in _attempt_rows(new_id(), run_id, r, "", r.graded_at or now(), ""):
                    conn.executemany(sql, rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return True

    def record_penalty(self, attempt_id: str, penalty: Penalty, policy: str) -> None:
        """Record one assessment of an attempt under a late policy (the latest assessment counts)."""
        self._write([_penalty_rows(attempt_id, penalty, policy)])

    def enter_manual(
        self, student: str, item: str, score: float, comment: str, *, entered_by: str, source: str
    ) -> bool:
        """Record a score a person gave (a written item, or a check they settle); False if it changes nothing.

        The caller checks the item and the points (``grader.manual.check_scores``). In one transaction, so
        that a review page can enter single scores while a grader writes the same file.
        """
        return self._entering(lambda: self._enter(student, item, score, comment, entered_by, source, None)[0])

    def enter_seen(
        self, student: str, item: str, score: float, comment: str, *, seen: str, entered_by: str, source: str
    ) -> tuple[bool, ManualEntry]:
        """``enter_manual`` for a page that shows the entries: ``seen`` is the id of the latest entry the page
        showed ("" for none). If another entry was made since, and it differs from this one, StaleEntry is
        raised with it and nothing is written. Returns whether a row was added, and the latest entry after."""
        return self._entering(lambda: self._enter(student, item, score, comment, entered_by, source, seen))

    def enter_all(self, scores: dict[str, dict[str, tuple[float, str]]], *, entered_by: str, source: str) -> int:
        """``enter_manual`` for every score of a scores file ({student: {item: (score, comment)}}), in one
        transaction (all or none); returns how many changed something."""

        def enter() -> int:
            return sum(
                self._enter(student, item, score, comment, entered_by, source, None)[0]
                for student, entries in scores.items()
                for item, (score, comment) in entries.items()
            )

        return self._entering(enter)

    def _enter(
        self, student: str, item: str, score: float, comment: str, entered_by: str, source: str, seen: str | None
    ) -> tuple[bool, ManualEntry]:
        """Inside a transaction: add the entry unless it changes nothing (see ``enter_seen`` for ``seen``)."""
        latest = self.manual_entry(student, item)
        changed = latest is None or (latest.score, latest.comment) != (score, comment)
        if changed and seen is not None and (latest.id if latest else "") != seen:
            if latest is None:
                raise UsageError(
                    f"{self.path} holds no entry for {student} {item}, though the page showed one: the gradebook "
                    "was replaced since the page read it; reload the page."
                )
            raise StaleEntry(latest)
        if changed:
            row = (new_id(), student, item, score, comment, entered_by, now(), source)
            self.conn.execute("INSERT INTO manual_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)", row)
            latest = self.manual_entry(student, item)  # this one, unless a machine whose clock is ahead wrote later
        assert latest is not None
        return changed, latest

    def merge_from(self, source: Gradebook) -> dict[str, int]:
        """Copy every row of ``source`` this gradebook lacks; returns the new rows per table. Idempotent."""
        conn = self.conn
        conn.execute("ATTACH DATABASE ? AS source", (str(source.path),))
        try:
            added = {}
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in TABLES:
                    before = conn.total_changes
                    conn.execute(f"INSERT OR IGNORE INTO main.{table} SELECT * FROM source.{table}")
                    added[table] = conn.total_changes - before
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.execute("DETACH DATABASE source")
        return added

    # -- reading ---------------------------------------------------------------------------------------

    def latest_seed(self) -> int | None:
        """The seed of the most recent run that graded anyone (None for an empty gradebook)."""
        row = self.conn.execute("SELECT run_seed FROM attempts ORDER BY committed_at DESC, id DESC LIMIT 1").fetchone()
        return None if row is None else int(row[0])

    def has_penalties(self) -> bool:
        """Whether any student's latest attempt was assessed under a late policy."""
        return self.conn.execute("SELECT 1 FROM latest_penalties LIMIT 1").fetchone() is not None

    def latest_keys(self) -> dict[str, tuple[str, str, int, str]]:
        """Each student's latest attempt: (attempt id, files hash, run seed, grader digest), what a resume compares."""
        rows = self.conn.execute(
            "SELECT a.student, a.id, a.files_hash, a.run_seed, r.grader_digest FROM latest_attempts AS a "
            "JOIN runs AS r ON r.id = a.run_id"
        )
        return {student: (attempt, digest, int(seed), grader) for student, attempt, digest, seed, grader in rows}

    def manual_entry(self, student: str, item: str) -> ManualEntry | None:
        """The latest score a person entered for ``student``'s ``item``, or None."""
        row = self.conn.execute(
            "SELECT id, student, item, score, comment, entered_by, entered_at, source FROM latest_manual_scores "
            "WHERE student = ? AND item = ?",
            (student, item),
        ).fetchone()
        return None if row is None else ManualEntry(*row)

    def manual_entries(self) -> dict[str, dict[str, tuple[float, str]]]:
        """The latest score a person entered per student and item: {student: {item: (score, comment)}}."""
        entries: dict[str, dict[str, tuple[float, str]]] = {}
        for student, item, score, comment in self.conn.execute(
            "SELECT student, item, score, comment FROM latest_manual_scores ORDER BY student, item"
        ):
            entries.setdefault(student, {})[item] = (score, comment)
        return entries

    def latest_results(self) -> list[tuple[str, StudentResult]]:
        """Each student's latest attempt as (attempt id, StudentResult), sorted by student; manual scores not
        applied (``grader.reports.gradebook.class_results`` applies them)."""
        conn = self.conn
        children: dict[str, dict[str, list]] = {}
        for table in ("check_results", "review_items", "run_outcomes"):
            rows = conn.execute(
                f"SELECT t.* FROM {table} AS t JOIN latest_attempts AS a ON a.id = t.attempt_id "
                "ORDER BY t.attempt_id, t.position"
            )
            for row in rows:
                children.setdefault(row[0], {}).setdefault(table, []).append(row[2:])
        penalties = {
            row[1]: Penalty(*row[2:9])
            for row in conn.execute(
                "SELECT p.* FROM latest_penalties AS p JOIN latest_attempts AS a ON a.id = p.attempt_id"
            )
        }
        found = []
        for row in conn.execute("SELECT * FROM latest_attempts ORDER BY student"):
            (attempt, _, student, _, seed, run_seed, submitted_at, source, graded_at, _, seconds, score, max_score,
             isolation, notices, errors) = row  # fmt: skip
            parts = children.get(attempt, {})
            result = StudentResult(
                student=student,
                score=score,
                max_score=max_score,
                checks=[
                    CheckResult(name, number, s, m, status, msg)
                    for number, name, s, m, status, msg in parts.get("check_results", [])
                ],
                isolation=isolation,
                manual_review=[
                    ManualItem(key, title, m, rubric, answer, s, comment, check)
                    for key, title, m, rubric, answer, s, comment, check in parts.get("review_items", [])
                ],
                runs=[RunSummary(*outcome) for outcome in parts.get("run_outcomes", [])],
                seed=int(seed),
                seconds=seconds,
                grader_errors=json.loads(errors),
                notices=json.loads(notices),
                run_seed=int(run_seed),
                graded_at=graded_at,
                submitted_at=submitted_at,
                submitted_source=source,
                late=penalties.get(attempt),
            )
            found.append((attempt, result))
        return found

    def history(self, student: str) -> list[dict[str, Any]]:
        """Every attempt of one student, oldest first, with its run's seed and the automatic score."""
        rows = self.conn.execute(
            "SELECT a.id, a.graded_at, a.run_seed, a.files_hash, a.score, a.max_score, a.submitted_at, r.host, r.shard "
            "FROM attempts AS a JOIN runs AS r ON r.id = a.run_id WHERE a.student = ? ORDER BY a.committed_at, a.id",
            (student,),
        )
        names = [d[0] for d in rows.description]
        return [dict(zip(names, row, strict=True)) for row in rows]


def _run_row(run_id: str, run: RunInfo) -> tuple:
    """A ``runs`` row (seeds are stored as text: a 64-bit seed does not fit SQLite's signed integers)."""
    row = astuple(run)
    return (run_id, str(row[0]), *row[1:])


def _attempt_rows(attempt: str, run_id: str, r: StudentResult, files_hash: str, committed_at: str, policy: str) -> list:
    """The INSERT statements of one attempt and its children, as (sql, rows) pairs."""
    row = (
        attempt, run_id, r.student, files_hash, str(r.seed), str(r.run_seed), r.submitted_at, r.submitted_source,
        r.graded_at, committed_at, r.seconds, r.score, r.max_score, r.isolation,
        json.dumps(r.notices), json.dumps(r.grader_errors),
    )  # fmt: skip
    checks = [(attempt, i, c.number, c.name, c.score, c.max_score, c.status, c.message) for i, c in enumerate(r.checks)]
    items = [
        (attempt, i, m.key, m.title, m.max_score, m.rubric, m.answer, m.score, m.comment, m.check)
        for i, m in enumerate(r.manual_review)
    ]
    runs = [(attempt, i, s.name, s.status, s.seconds, s.message, s.stderr_tail) for i, s in enumerate(r.runs)]
    statements = [
        (f"INSERT INTO attempts VALUES ({', '.join('?' * len(row))})", [row]),
        ("INSERT INTO check_results VALUES (?, ?, ?, ?, ?, ?, ?, ?)", checks),
        ("INSERT INTO review_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", items),
        ("INSERT INTO run_outcomes VALUES (?, ?, ?, ?, ?, ?, ?)", runs),
    ]
    if r.late is not None:
        statements.append(_penalty_rows(attempt, r.late, policy))
    return statements


def _penalty_rows(attempt_id: str, penalty: Penalty, policy: str) -> tuple[str, list[tuple]]:
    row = (new_id(), attempt_id, *asdict(penalty).values(), policy, now())
    return f"INSERT INTO late_penalties VALUES ({', '.join('?' * len(row))})", [row]


def _statements(script: str) -> list[str]:
    """The statements of ``SCHEMA``, one by one (executescript would commit the open transaction)."""
    return [s.strip() for s in script.split(";\n") if s.strip()]


def _refuse_foreign(path: Path, remedy: str) -> None:
    """A file that does not start with SQLite's header is not a gradebook: refuse it before SQLite touches it,
    saying what to do (``remedy``: move it away, or choose another --out; give another, for a file only read)."""
    if not path.is_file():
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise UsageError(f"cannot read the gradebook {path}: {exc.strerror}.") from None
    if head and head != SQLITE_HEADER:
        raise UsageError(
            f"{path} is not an SQLite database (it starts with {head[:12]!r}), so it is not a gradebook of this "
            f"grader. It was left as it is; {remedy}."
        )
