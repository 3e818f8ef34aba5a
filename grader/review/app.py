"""The review page as a Flask application: its routes, its guard (token, Host, origin) and its headers.

Every route lives under ``/<token>/``; ``guard`` refuses (403) a request for any other path, a Host header
that is not 127.0.0.1 or localhost (DNS rebinding), and a cross-site request, before any route runs. A POST
needs the token as much as a GET, and a cross-site page cannot learn it: the token is the page's CSRF
protection too. Every response carries ``HEADERS``: a Content-Security-Policy that lets the page run only
its own script file (no inline script, nothing from elsewhere), nosniff, no framing, no referrer, no caching.

Learners' text (answers, comments, file names) reaches the page only through Jinja's escaping, or through
the script's ``textContent``; it is never markup. A diagram is served by itself, as ``image/png`` (checked to
be one) or ``image/svg+xml`` under a CSP of its own that runs nothing (``FILE_CSP``), and the page shows it in
an ``<img>``, where an SVG runs no script and loads nothing.

One connection to the gradebook serves every request, behind a lock; its busy timeout is short
(``BUSY_SECONDS``) so that an entry made while a grader holds the database is answered in seconds: the page
keeps the entry and tries again.
"""

from __future__ import annotations

import hmac
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, Response, abort, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from ..errors import UsageError
from ..reports import FILENAME, Gradebook, export
from ..reports.database import ManualEntry, StaleEntry
from ..submission import DIAGRAM_MAX_BYTES, ID_PATTERN, read_capped
from . import store
from .store import Answer, EntryRefused

BUSY_SECONDS = 5.0
MAX_REQUEST_BYTES = 16 * 2**20  # an imported scores file of a large class is well under a megabyte
ALLOWED_HOSTS = ("127.0.0.1", "localhost")
STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"review.js": "text/javascript", "review.css": "text/css", "favicon.svg": "image/svg+xml"}
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
# A file shown by itself (an SVG diagram, the similarity report): no script at all, a unique origin (sandbox).
FILE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; sandbox"
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REFUSED = "Forbidden: open the review page at the address python -m grader review printed (it holds the page's token)."


def points(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def when(stamp: str) -> str:
    """``2025-03-14 12:03 UTC`` from an ISO 8601 UTC time."""
    try:
        return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp


def state_line(answer: Answer) -> str:
    """What the card says of the answer's score: who gave it, or that it waits."""
    most = points(answer.max_score)
    if answer.entry is not None:
        e = answer.entry
        return f"{points(e.score)} / {most}, entered by {e.entered_by} at {when(e.entered_at)} ({e.source})"
    if answer.auto_score is not None:
        return f"{points(answer.auto_score)} / {most} from the grader (no person has scored it)"
    return "awaiting review"


def entry_json(answer: Answer) -> dict[str, Any]:
    e = answer.entry
    return {
        "version": answer.version,
        "score": answer.score,
        "comment": answer.comment,
        "entered_by": e.entered_by if e else "",
        "entered_at": when(e.entered_at) if e else "",
        "source": e.source if e else "",
        "state": state_line(answer),
    }


@dataclass
class Flagged:
    """The similarity report's flagged pairs, as the review list shows them (read again when the file changes)."""

    pairs: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    shown_code: int = 0  # the report shows the code of its first ``shown_code`` flagged pairs (#pair-N anchors)
    stamp: tuple[float, int] | None = None


class Review:
    """The state behind the page: the gradebook (one connection, behind a lock), the folders, who enters."""

    def __init__(self, out: Path, submissions: Path, reviewer: str, busy_seconds: float = BUSY_SECONDS) -> None:
        self.out, self.submissions, self.reviewer = out, submissions, reviewer
        self.path = out / FILENAME
        self.book = Gradebook.open(self.path, create=False)
        self.book.conn.execute(f"PRAGMA busy_timeout = {int(busy_seconds * 1000)}")
        self.inode = os.stat(self.path).st_ino
        self.lock = threading.Lock()
        self.unexported = 0  # entries made since the report files were last written
        self.flagged = Flagged()

    def close(self) -> None:
        self.book.close()

    def locked(self, work: Callable[[], Any]) -> Any:
        """Run ``work`` with the connection to itself; EntryRefused if the gradebook file was replaced."""
        with self.lock:
            try:
                same = os.stat(self.path).st_ino == self.inode
            except FileNotFoundError:
                same = False
            if not same:
                raise EntryRefused(
                    409,
                    f"{self.path} was moved or replaced after this page opened it (python -m grader --fresh?). "
                    "Nothing was saved: stop this page (Ctrl-C) and start python -m grader review again.",
                )
            return work()

    def answers(self) -> list[Answer]:
        return self.locked(lambda: store.load_answers(self.book))

    def similarity(self) -> Flagged:
        """The flagged pairs of ``OUT/similarity.json``, if there is one (read again when it changes)."""
        from ..similarity import JSON_FILE, flagged_pairs, load_report  # reads JSON; no copydetect
        from ..similarity.page import CODE_SHOWN

        path = self.out / JSON_FILE
        try:
            stat = path.stat()
        except FileNotFoundError:
            self.flagged = Flagged()
            return self.flagged
        stamp = (stat.st_mtime, stat.st_size)
        if self.flagged.stamp != stamp:
            try:
                self.flagged = Flagged(flagged_pairs(load_report(path)), "", CODE_SHOWN, stamp)
            except UsageError as exc:
                self.flagged = Flagged([], f"{exc} Until then the review list cannot show its pairs.", 0, stamp)
        return self.flagged

    def save(self, data: Any) -> dict[str, Any]:
        """Check and enter one score; the answer's new state and the progress. EntryRefused, StaleEntry or
        sqlite3.OperationalError (busy) otherwise, with nothing written."""
        if not isinstance(data, dict):
            raise EntryRefused(400, "Send the entry as JSON: {student, item, score, comment, seen}.")
        seen = data.get("seen", "")
        if not isinstance(seen, str):
            raise EntryRefused(400, "seen must be the version of the entry the page showed (text).")
        comment = data.get("comment", "")
        comment = comment.strip() if isinstance(comment, str) else comment

        def enter() -> dict[str, Any]:
            answers = store.load_answers(self.book)
            answer = store.check_entry(self.book, answers, data.get("student"), data.get("item"), data.get("score"),
                                       comment)  # fmt: skip
            changed, entry = self.book.enter_seen(
                answer.student,
                answer.key,
                float(data["score"]),
                comment,
                seen=seen,
                entered_by=self.reviewer,
                source=store.SOURCE,
            )
            self.unexported += changed
            answer.entry = entry
            return {"saved": changed, "entry": entry_json(answer), "progress": progress_json(answers, answer)}

        return self.locked(enter)

    def import_scores(self, text: str, name: str) -> store.Imported:
        """Enter a scores file's scores (``store.import_scores``: checked as ``--manual`` is, all or none)."""

        def enter() -> store.Imported:
            done = store.import_scores(self.book, text, name, self.reviewer)
            self.unexported += done.changed
            return done

        return self.locked(enter)

    def write_reports(self) -> dict[str, Any]:
        """Write every report file from the gradebook (``grader.reports.export``), feedback included, keeping
        the choice of the last export about checks withheld until the due date (``--publish``)."""

        def write() -> dict[str, Any]:
            publish = False
            try:
                publish = bool(json.loads((self.out / "gradebook.json").read_text(encoding="utf-8")).get("publish"))
            except (OSError, ValueError, AttributeError):
                pass  # no earlier export (or an unreadable one): the default, checks withheld until published
            results = export(self.book, self.out, publish=publish)
            self.unexported = 0
            return {"students": len(results), "publish": publish, "out": str(self.out)}

        return self.locked(write)


def progress_json(answers: list[Answer], answer: Answer) -> dict[str, Any]:
    """The counts the page shows: the whole class, the answer's item and its student."""
    return {
        "all": store.progress(answers).json(),
        "item": store.progress([a for a in answers if a.key == answer.key]).json(),
        "student": store.progress([a for a in answers if a.student == answer.student]).json(),
    }


def refuse(status: int, message: str) -> Response:
    return Response(message + "\n", status=status, mimetype="text/plain")


def failed(status: int, message: str, **more: Any) -> Response:
    return Response(json.dumps({"error": message, **more}), status=status, mimetype="application/json")


def hostname(host: str) -> str:
    """The name of a Host header (``127.0.0.1:8000`` -> ``127.0.0.1``)."""
    return host.rsplit(":", 1)[0] if not host.endswith("]") and ":" in host else host


def create_app(
    out: Path,
    *,
    token: str,
    submissions: Path = Path("submissions"),
    reviewer: str = "instructor",
    busy_seconds: float = BUSY_SECONDS,
) -> Flask:
    """The review page of ``out``'s gradebook (UsageError if there is none), served under ``/<token>/``."""
    review = Review(out, submissions, reviewer, busy_seconds)
    app = Flask(__name__, static_folder=None, template_folder="templates")
    app.config["review"] = review
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.jinja_env.filters["points"] = points
    base = f"/{token}/"

    def route(rule: str, **options: Any) -> Callable:
        return app.route(base + rule.lstrip("/"), **options)

    @app.before_request
    def guard() -> Response | None:
        if hostname(request.host) not in ALLOWED_HOSTS:
            return refuse(403, f"Forbidden: the review page answers to {' or '.join(ALLOWED_HOSTS)} only.")
        first = request.path.lstrip("/").partition("/")[0]
        if not hmac.compare_digest(first.encode(), token.encode()):
            return refuse(403, REFUSED)
        if request.headers.get("Sec-Fetch-Site", "none") not in ("none", "same-origin"):
            return refuse(403, "Forbidden: the review page answers to itself only, not to other sites.")
        origin = request.headers.get("Origin")
        if request.method not in ("GET", "HEAD") and origin is not None:
            if hostname(origin.partition("://")[2]) not in ALLOWED_HOSTS:
                return refuse(403, "Forbidden: the review page takes entries from itself only.")
        return None

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        for name, value in HEADERS.items():
            response.headers[name] = value
        return response

    @app.errorhandler(EntryRefused)
    def entry_refused(exc: EntryRefused) -> Response:
        if request.path.startswith(base + "api/"):
            return failed(exc.status, exc.message)
        return Response(render_template("error.html", base=base, message=exc.message), status=exc.status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if request.path.startswith(base + "api/"):
            return failed(exc.code or 500, exc.description or exc.name)
        return refuse(exc.code or 500, f"{exc.code} {exc.name}: {exc.description}")

    def page(template: str, answers: list[Answer], **values: Any) -> str:
        return render_template(
            template,
            base=base,
            review=review,
            everything=store.progress(answers),
            items=store.item_order(answers),
            manual_file=(out / "manual.toml").is_file(),
            **values,
        )

    @route("/")
    def index() -> str:
        answers = review.answers()
        by_item = {key: store.progress([a for a in answers if a.key == key]) for key, _ in store.item_order(answers)}
        students: dict[str, list[Answer]] = {}
        for a in answers:
            students.setdefault(a.student, []).append(a)
        by_student = {s: store.progress(mine) for s, mine in students.items()}
        worth = {a.key: a.max_score for a in answers}
        return page("index.html", answers, view="index", by_item=by_item, by_student=by_student, worth=worth,
                    flagged=review.similarity())  # fmt: skip

    def cards(answers: list[Answer], shown: list[Answer], view: str, name: str, title: str, neighbours: list) -> str:
        at = neighbours.index(name)
        earlier = neighbours[at - 1] if at > 0 else None
        later = neighbours[at + 1] if at + 1 < len(neighbours) else None
        on_disk = {a.anchor: diagram_sources(review, a) for a in shown}
        return page("answers.html", answers, view=view, name=name, title=title, shown=shown, on_disk=on_disk,
                    here=store.progress(shown), earlier=earlier, later=later, state_line=state_line,
                    pairs=pairs_of(review.similarity()))  # fmt: skip

    @route("/item/<key>")
    def by_item(key: str) -> str:
        answers = review.answers()
        order = store.item_order(answers)
        titles = dict(order)
        if key not in titles:
            abort(404, f"{key} is no item of this gradebook; the items are {', '.join(titles)}.")
        shown = [a for a in answers if a.key == key]
        return cards(answers, shown, "item", key, f"{titles[key]} ({key})", [k for k, _ in order])

    @route("/student/<student>")
    def by_student(student: str) -> str:
        answers = review.answers()
        shown = [a for a in answers if a.student == student]
        if not shown:
            abort(404, f"{student} is not in the gradebook {review.path}: grade their submission first.")
        order = [key for key, _ in store.item_order(answers)]
        shown.sort(key=lambda a: order.index(a.key))
        students = sorted({a.student for a in answers})
        return cards(answers, shown, "student", student, student, students)

    @route("/diagram/<student>/<name>")
    def diagram(student: str, name: str) -> Response:
        answer = next((a for a in review.answers() if a.student == student and a.key == "diagram"), None)
        if answer is None or name not in answer.diagram_files() or not ID_PATTERN.match(student):
            abort(404, f"{student} handed in no diagram named {name}.")
        kind = Path(name).suffix.lower()
        if kind not in store.IMAGE_KINDS:
            abort(404, f"{name} is not an image (png or svg).")
        try:
            data = read_capped(review.submissions / student / name, DIAGRAM_MAX_BYTES)
        except OSError as exc:
            abort(404, f"{review.submissions / student / name}: {exc}")
        if kind == ".png":
            if not data.startswith(PNG_SIGNATURE):
                abort(415, f"{name} is not a PNG file (it does not start with PNG's signature).")
            return Response(data, mimetype="image/png")
        response = Response(data, mimetype="image/svg+xml")
        response.headers["Content-Security-Policy"] = FILE_CSP
        return response

    @route("/static/<name>")
    def static_file(name: str) -> Response:
        if name not in STATIC_FILES:
            abort(404)
        return Response((STATIC / name).read_bytes(), mimetype=STATIC_FILES[name])

    @route("/similarity.html")
    def similarity_html() -> Response:
        from ..similarity import HTML_FILE

        try:
            data = read_capped(out / HTML_FILE, 64 * 2**20)
        except OSError as exc:
            abort(404, f"{out / HTML_FILE}: {exc}; run python -m grader similarity --out {out} to write it.")
        response = Response(data, mimetype="text/html")
        response.headers["Content-Security-Policy"] = FILE_CSP
        return response

    @route("/manual.toml")
    def manual_toml() -> Response:
        text = review.locked(lambda: store.export_scores(review.book))
        response = Response(text, mimetype="application/toml")
        response.headers["Content-Disposition"] = f'attachment; filename="{store.export_name()}"'
        return response

    @route("/api/entry", methods=["POST"])
    def api_entry() -> Response:
        data = request.get_json(silent=True)
        try:
            return Response(json.dumps(review.save(data)), mimetype="application/json")
        except StaleEntry as exc:
            answers = review.answers()
            theirs = next(a for a in answers if a.student == exc.latest.student and a.key == exc.latest.item)
            return failed(409, conflict_message(theirs, exc.latest, data.get("score")), latest=entry_json(theirs))
        except sqlite3.OperationalError as exc:
            which = f" ({data.get('student')} {data.get('item')})" if isinstance(data, dict) else ""
            kept = "it is kept on this page and sent again in a few seconds (press s to retry now)."
            return failed(503, busy_message(review, exc, f"Your entry{which} was not saved; {kept}"))
        except UsageError as exc:
            return failed(409, str(exc))

    @route("/api/import", methods=["POST"])
    def api_import() -> Response:
        data = request.get_json(silent=True)
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            return failed(400, "Send the scores file as JSON: {name, text}.")
        name = data.get("name") if isinstance(data.get("name"), str) and data.get("name") else "the imported file"
        try:
            done = review.import_scores(data["text"], name)
        except UsageError as exc:
            return failed(400, str(exc))
        except sqlite3.OperationalError as exc:
            return failed(503, busy_message(review, exc, f"Nothing of {name} was imported; import it again shortly."))
        message = (
            f"Imported {name}: {done.entries} score(s) for {done.students} student(s), {done.changed} of them new "
            "or changed (the others were entered already)."
        )
        return Response(json.dumps({"message": message, "changed": done.changed}), mimetype="application/json")

    @route("/api/reports", methods=["POST"])
    def api_reports() -> Response:
        try:
            done = review.write_reports()
        except sqlite3.OperationalError as exc:
            return failed(503, busy_message(review, exc, "The reports were not written; press W again in a moment."))
        except OSError as exc:
            return failed(500, f"The reports could not be written to {out}: {exc}. Every entry is in the gradebook.")
        withheld = "" if done["publish"] else " (checks shown after the due date stay withheld, as in the last run)"
        message = f"Wrote the reports in {out}/: feedback.md and results.json, {done['students']} student(s){withheld}."
        return Response(json.dumps({"message": message}), mimetype="application/json")

    return app


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without its line per request (the console keeps the page's address in view)."""

    def log_request(self, *_: Any) -> None:
        pass


def serve_on(app: Flask, port: int = 0) -> BaseWSGIServer:
    """A threaded server of ``app`` on 127.0.0.1 only (``port`` 0: a free one); OSError if the port is taken."""
    return make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)


def diagram_sources(review: Review, answer: Answer) -> list[dict[str, str]]:
    """The diagram files a card shows: each an image (served by ``/diagram``), a text read from the folder, or
    why it cannot be shown here."""
    shown = []
    for name in answer.diagram_files():
        kind = Path(name).suffix.lower()
        path = review.submissions / answer.student / name
        if kind not in store.IMAGE_KINDS + store.TEXT_KINDS:
            shown.append({"name": name, "missing": f"{name} is neither an image (png, svg) nor text (md, txt)."})
        elif kind in store.TEXT_KINDS and name == answer.answer.split("\n", 1)[0]:
            continue  # the gradebook holds its text
        elif not path.is_file():
            shown.append({"name": name, "missing": f"{name} is not in {path.parent}/ on this machine: start the page "
                          "with --submissions DIR, the folder the class was graded from."})  # fmt: skip
        elif kind in store.TEXT_KINDS:
            try:
                text = read_capped(path, DIAGRAM_MAX_BYTES).decode("utf-8", "replace")
            except OSError as exc:
                shown.append({"name": name, "missing": str(exc)})
            else:
                shown.append({"name": name, "text": text})
        else:
            shown.append({"name": name, "image": f"diagram/{answer.student}/{name}"})
    return shown


def pairs_of(flagged: Flagged) -> dict[str, list[tuple[int, dict[str, Any]]]]:
    """Each student's flagged pairs (with the pair's number in similarity.html)."""
    mine: dict[str, list[tuple[int, dict[str, Any]]]] = {}
    for n, pair in enumerate(flagged.pairs, start=1):
        for student in (pair["a"], pair["b"]):
            mine.setdefault(student, []).append((n, pair))
    return mine


def conflict_message(theirs: Answer, latest: ManualEntry, mine: Any) -> str:
    said = f' ("{latest.comment}")' if latest.comment else ""
    yours = f"Your entry ({mine:g})" if isinstance(mine, (int, float)) and not isinstance(mine, bool) else "Your entry"
    return (
        f"{latest.entered_by} entered {points(latest.score)} / {points(theirs.max_score)}{said} for {latest.student} "
        f"{latest.item} at {when(latest.entered_at)} ({latest.source}), after this page showed the item. "
        f"{yours} is not saved; it is kept here. Press o to save yours over it, or r to take theirs."
    )


def busy_message(review: Review, exc: sqlite3.OperationalError, consequence: str) -> str:
    """Why a write did not happen (the database locked past the busy timeout, or another SQLite error)."""
    if "locked" in str(exc) or "busy" in str(exc):
        return f"The gradebook {review.path} is busy: another program (a grader run?) is writing it. {consequence}"
    return f"The gradebook {review.path} could not be written ({exc}). {consequence}"
