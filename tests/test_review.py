"""``python -m grader review``: the page where an instructor scores the written work, in a real headless Chromium.

A small class is graded once by the real grader (alice and bob, the repository's examples; mallory, whose answers
and SVG diagram hold script; pat, alice's code with a PNG diagram, so the similarity report flags the pair). Each
test works on its own copy of the report folder. The browser tests score by keyboard, reload, export the scores
file and import it into the class's gradebook as it was before the entries; screenshots land in
docs/_build/screenshots/review/, beside the docs' own. The bad input (scores out of range, unknown students,
two tabs, a busy or missing gradebook) and the guard (token, Host, origin) are tested through Flask's client,
where no browser is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path

import pytest
from review_class import make_gradebook
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

import grader
from grader.__main__ import main
from grader.manual import dump_scores, load_scores, parse_scores
from grader.reports import FILENAME, Gradebook, class_results
from grader.review.app import FILE_CSP, PAGE_CSP, create_app, serve_on
from grader.review.store import COMMENT_MAX
from grader.similarity import load_report, report, summary_markdown

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "submissions"
SHOTS = REPO / "docs" / "_build" / "screenshots" / "review"
sys.path.insert(0, str(REPO / "tests" / "docs"))
from chromium import chrome, requested_urls  # noqa: E402 -- the docs' browser tests' launcher, found once tests/docs is on the path

SEED = 20251129
TOKEN = "test-token-0123456789abcdefghij"
HOST = {"Host": "127.0.0.1:8000"}
SCRIPT_ANSWER = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">RoPE rotates pairs.'
SCRIPT_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="240" height="80" onload="window.__xss = 3">'
    "<script>window.__xss = 4; fetch('/steal')</script>"
    '<rect width="240" height="80" fill="#3a7"/><text x="12" y="45" fill="#fff">Embedding</text></svg>'
)


def png(width: int = 6, height: int = 4) -> bytes:
    """A small valid PNG (8-bit RGB)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x20\x60\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The class graded once: ``root/submissions/<id>/``, ``root/reports/`` and ``root/pristine.sqlite`` (the
    gradebook as grading left it), with a similarity report in reports/."""
    root = tmp_path_factory.mktemp("review")
    subs = root / "submissions"
    for name in ("alice", "bob"):
        shutil.copytree(REPO / "submissions" / name, subs / name)
    shutil.copytree(FIXTURES / "full", subs / "mallory")
    (subs / "mallory" / "diagram.txt").unlink()
    (subs / "mallory" / "diagram.svg").write_text(SCRIPT_SVG)
    answers = (subs / "mallory" / "answers.toml").read_text()
    answers = answers.replace('rope = "Rotations by position; dot products depend on relative offsets."',
                              f"rope = {json.dumps(SCRIPT_ANSWER)}")  # fmt: skip
    answers = answers.replace(answers.split("\n")[3], 'q3 = "softmax variance sqrt"')  # keywords: sent to a person
    (subs / "mallory" / "answers.toml").write_text(answers)
    (subs / "pat").mkdir()
    for name in ("model.py", "mla.py"):
        shutil.copy(REPO / "submissions" / "alice" / name, subs / "pat" / name)
    shutil.copy(FIXTURES / "full" / "answers.toml", subs / "pat" / "answers.toml")
    (subs / "pat" / "diagram.png").write_bytes(png())
    folders = [subs / name for name in ("alice", "bob", "mallory", "pat")]
    grader.grade(folders, jobs=2, out=root / "reports", seed=SEED)
    shutil.copy(root / "reports" / FILENAME, root / "pristine.sqlite")
    report(folders, out=root / "reports", template=REPO / "submissions" / "_template")
    return root


@pytest.fixture
def out(graded: Path, tmp_path: Path) -> Path:
    """A copy of the graded class's report folder, this test's own."""
    shutil.copytree(graded / "reports", tmp_path / "reports")
    return tmp_path / "reports"


@pytest.fixture
def client(out: Path, graded: Path):
    app = create_app(out, token=TOKEN, submissions=graded / "submissions", reviewer="ta", busy_seconds=0.2)
    yield app.test_client()
    app.config["review"].close()


@contextmanager
def serving(out: Path, submissions: Path, **options) -> Iterator[str]:
    """The review page of ``out`` on a free port of 127.0.0.1, served from a thread; its address."""
    app = create_app(out, token=TOKEN, submissions=submissions, reviewer="ta", **options)
    server = serve_on(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/{TOKEN}/"
    finally:
        server.shutdown()
        server.server_close()
        app.config["review"].close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chrome(("browser", "performance"))
    yield driver
    driver.quit()


def shot(browser: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SHOTS / f"{name}.png"))


def press(browser: webdriver.Chrome, *keys: str) -> None:
    ActionChains(browser).send_keys(*keys).perform()


def card(browser: webdriver.Chrome, student: str, item: str):
    return browser.find_element(By.ID, f"{student}--{item}")


def state(browser: webdriver.Chrome, student: str, item: str) -> str:
    return card(browser, student, item).find_element(By.CSS_SELECTOR, ".state").text


def wait_for(browser: webdriver.Chrome, condition, message: str, seconds: float = 15):
    return WebDriverWait(browser, seconds).until(lambda _: condition(), message)


def current(browser: webdriver.Chrome) -> str:
    return browser.find_element(By.CSS_SELECTOR, "article.card.current").get_attribute("id")


def console_errors(browser: webdriver.Chrome) -> list[str]:
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def entries(db: Path) -> dict[str, dict[str, tuple[float, str]]]:
    with Gradebook.open(db, create=False) as book:
        return book.manual_entries()


def totals(db: Path) -> dict[str, tuple[float, float, int]]:
    with Gradebook.open(db, create=False) as book:
        return {r.student: (r.score, r.written_score, len(r.pending)) for r in class_results(book)}


# -- in the browser --------------------------------------------------------------------------------------------


def test_scoring_by_keyboard_is_kept_across_a_reload_and_the_scores_file_rebuilds_the_same_gradebook(
    browser, out, graded, tmp_path
) -> None:
    with serving(out, graded / "submissions") as url:
        browser.get_log("browser")
        requested_urls(browser)
        browser.get(url)
        assert "Written work to score" in browser.page_source
        assert browser.find_element(By.CSS_SELECTOR, "#flagged").text.count("alice and pat") == 1
        shot(browser, "index")

        browser.get(url + "item/theory.rope")
        order = [c.get_attribute("data-student") for c in browser.find_elements(By.CSS_SELECTOR, "article.card")]
        assert order == ["alice", "bob", "mallory", "pat"]
        assert current(browser) == "alice--theory.rope", "the page starts at the first answer awaiting review"
        press(browser, "4")
        wait_for(browser, lambda: state(browser, "alice", "theory.rope").startswith("4 / 5, entered by ta"), "saved")
        press(browser, "c")
        press(browser, "Names the rotation; no contrast with absolute positions.", "\n")
        wait_for(browser, lambda: entries(out / FILENAME).get("alice", {}).get("theory.rope", (0, ""))[1] != "",
                 "the comment is saved on Enter")  # fmt: skip
        press(browser, "n")
        assert current(browser) == "bob--theory.rope"
        press(browser, "3", "j")
        assert current(browser) == "mallory--theory.rope"
        press(browser, "9")  # more than the item is worth: refused in the page, nothing sent
        assert "worth 5 points at most" in browser.find_element(By.ID, "flash").text
        press(browser, "2", "j", "k", "j", "5")
        wait_for(browser, lambda: len(entries(out / FILENAME)) == 4, "four students scored")
        left = browser.find_element(By.CSS_SELECTOR, '[data-progress="item-left"]')
        wait_for(browser, lambda: left.text == "0", "the progress counts every entry")
        shot(browser, "item-theory.rope")

        browser.refresh()
        kept = {s: card(browser, s, "theory.rope").find_element(By.CSS_SELECTOR, "input.score").get_attribute("value")
                for s in order}  # fmt: skip
        assert kept == {"alice": "4", "bob": "3", "mallory": "2", "pat": "5"}
        comment = card(browser, "alice", "theory.rope").find_element(By.CSS_SELECTOR, "input.comment")
        assert comment.get_attribute("value") == "Names the rotation; no contrast with absolute positions."
        assert "entered by ta" in state(browser, "pat", "theory.rope")

        press(browser, "]")  # the next item: the GQA answers
        wait_for(browser, lambda: "item/theory.gqa" in browser.current_url, "] goes to the next item")
        press(browser, "1")
        wait_for(browser, lambda: "theory.gqa" in entries(out / FILENAME).get("alice", {}), "scored on the next item")

        browser.get(url + "item/quiz.q3")  # the quiz answer q3's rubric sent to a person
        assert [c.get_attribute("data-student") for c in browser.find_elements(By.CSS_SELECTOR, "article.card")] == [
            "mallory"
        ]
        assert "does not read as a sentence" in card(browser, "mallory", "quiz.q3").text
        press(browser, "6")
        wait_for(browser, lambda: entries(out / FILENAME)["mallory"].get("quiz.q3") == (6.0, ""), "q3 scored")

        browser.get(url + "student/pat")
        shot(browser, "student-pat")
        width = "return document.querySelector('img.diagram').naturalWidth"
        wait_for(browser, lambda: browser.execute_script(width) == 6, "the PNG diagram is shown as an image")
        assert "flagged with alice" in browser.find_element(By.CSS_SELECTOR, ".here").text

        exported = browser.execute_async_script(
            "const done = arguments[0];"
            "fetch(document.body.dataset.base + 'manual.toml').then(r => r.text()).then(done);"
        )
        assert not console_errors(browser)
        asked = requested_urls(browser)
        assert asked and all(address.startswith(url) for address in asked), "nothing from elsewhere, all with the token"

    scores_file = tmp_path / "exported.toml"
    scores_file.write_text(exported)
    assert load_scores(scores_file) == entries(out / FILENAME), "the export reads back as --manual reads it"
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(graded / "pristine.sqlite", other / FILENAME)
    with serving(other, graded / "submissions") as url:
        browser.get(url)
        browser.find_element(By.CSS_SELECTOR, 'input[data-action="import"]').send_keys(str(scores_file))
        wait_for(browser, lambda: "Imported exported.toml" in browser.find_element(By.ID, "flash").text, "imported")
        shot(browser, "imported")
    assert entries(other / FILENAME) == entries(out / FILENAME)
    assert totals(other / FILENAME) == totals(out / FILENAME)
    assert totals(other / FILENAME) != totals(graded / "pristine.sqlite")


def test_learners_script_and_svg_are_inert_on_the_page_and_in_a_tab_of_their_own(browser, out, graded) -> None:
    with serving(out, graded / "submissions") as url:
        browser.get_log("browser")
        for path in ("item/theory.rope", "item/diagram", "item/quiz.q3", "student/mallory"):
            browser.get(url + path)
            assert browser.execute_script("return window.__xss") is None, path
            scripts = browser.execute_script("return Array.from(document.scripts).map(s => s.src)")
            assert scripts == [url + "static/review.js"], path
        shot(browser, "student-mallory")
        rope = card(browser, "mallory", "theory.rope").find_element(By.CSS_SELECTOR, "pre.text").text
        assert rope == SCRIPT_ANSWER, "the answer is shown as the text it is"
        image = browser.find_element(By.CSS_SELECTOR, "img.diagram")
        wait_for(browser, lambda: browser.execute_script("return arguments[0].naturalWidth", image) == 240,
                 "the SVG is shown as an image")  # fmt: skip
        assert not console_errors(browser)
        source = image.get_attribute("src")
        browser.get(source)  # the SVG alone, in a tab: sandboxed, no script runs
        assert browser.execute_script("return window.__xss") is None
        with urllib.request.urlopen(source) as response:
            assert response.headers["Content-Type"] == "image/svg+xml; charset=utf-8"
            assert response.headers["Content-Security-Policy"] == FILE_CSP
            assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_a_second_tab_is_told_what_the_first_entered_and_overwrites_it_only_when_asked(browser, out, graded) -> None:
    with serving(out, graded / "submissions") as url:
        browser.get(url + "item/theory.moe")
        first = browser.current_window_handle
        browser.switch_to.new_window("tab")
        browser.get(url + "item/theory.moe")
        second = browser.current_window_handle
        browser.switch_to.window(first)
        press(browser, "4")
        wait_for(browser, lambda: "alice" in entries(out / FILENAME), "the first tab saved")
        browser.switch_to.window(second)
        press(browser, "2")
        problem = card(browser, "alice", "theory.moe").find_element(By.CSS_SELECTOR, ".problem")
        wait_for(browser, problem.is_displayed, "the second tab is told")
        assert "ta entered 4 / 5 for alice theory.moe" in problem.text
        assert "Your entry (2) is not saved" in problem.text
        assert entries(out / FILENAME)["alice"]["theory.moe"] == (4.0, "")
        shot(browser, "two-tabs")
        press(browser, "o")
        wait_for(browser, lambda: entries(out / FILENAME)["alice"]["theory.moe"] == (2.0, ""), "overwritten")
        browser.close()
        browser.switch_to.window(first)
    with Gradebook.open(out / FILENAME, create=False) as book:
        rows = book.conn.execute("SELECT score FROM manual_scores WHERE item = 'theory.moe' ORDER BY entered_at")
        assert [r[0] for r in rows] == [4.0, 2.0], "both entries are kept in the history"


def test_an_entry_made_while_a_grader_holds_the_gradebook_is_kept_in_the_page_and_sent_again(
    browser, out, graded
) -> None:
    with serving(out, graded / "submissions", busy_seconds=0.3) as url:
        browser.get(url + "item/theory.gqa")
        holder = sqlite3.connect(out / FILENAME, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # what a grader does while it commits a submission
        try:
            press(browser, "3")
            problem = card(browser, "alice", "theory.gqa").find_element(By.CSS_SELECTOR, ".problem")
            wait_for(browser, problem.is_displayed, "told the gradebook is busy")
            assert "is busy: another program (a grader run?) is writing it" in problem.text
            assert "kept on this page and sent again" in problem.text
            shot(browser, "busy")
            assert "alice" not in entries(out / FILENAME)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        wait_for(browser, lambda: entries(out / FILENAME).get("alice", {}).get("theory.gqa") == (3.0, ""),
                 "sent again once the gradebook is free", seconds=20)  # fmt: skip
        wait_for(browser, lambda: not problem.is_displayed(), "the problem is cleared")


# -- the guard and the headers -----------------------------------------------------------------------------------


def test_every_request_without_the_token_or_from_elsewhere_is_refused(client, out) -> None:
    entry = {"student": "alice", "item": "theory.rope", "score": 4, "comment": "", "seen": ""}
    refused = [
        client.get("/", headers=HOST),
        client.get(f"/?token={TOKEN}", headers=HOST),
        client.get("/not-the-token/", headers=HOST),
        client.get(f"/{TOKEN[:-1]}/", headers=HOST),
        client.get("/static/review.js", headers=HOST),
        client.get("/not-the-token/static/review.js", headers=HOST),
        client.get("/not-the-token/manual.toml", headers=HOST),
        client.post("/api/entry", json=entry, headers=HOST),
        client.post("/not-the-token/api/entry", json=entry, headers=HOST),
        client.post("/not-the-token/api/import", json={"name": "x", "text": ""}, headers=HOST),
        client.get(f"/{TOKEN}/", headers={"Host": "attacker.example:8000"}),  # DNS rebinding
        client.post(f"/{TOKEN}/api/entry", json=entry, headers={"Host": "attacker.example"}),
        client.post(f"/{TOKEN}/api/entry", json=entry, headers=HOST | {"Origin": "http://attacker.example"}),
        client.post(f"/{TOKEN}/api/entry", json=entry, headers=HOST | {"Sec-Fetch-Site": "cross-site"}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "python -m grader review printed" in refused[0].text
    assert all(r.headers["Content-Security-Policy"] == PAGE_CSP for r in refused)
    assert entries(out / FILENAME) == {}, "no refused request entered anything"
    page = client.get(f"/{TOKEN}/", headers=HOST)
    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == PAGE_CSP
    assert "script-src 'self';" in PAGE_CSP and "unsafe-inline" not in PAGE_CSP
    for name, value in {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                        "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}.items():  # fmt: skip
        assert page.headers[name] == value
    assert client.get(f"/{TOKEN}/", headers={"Host": "localhost:5000"}).status_code == 200
    assert client.post(f"/{TOKEN}/api/entry", json=entry, headers=HOST).status_code == 200


class Tags(HTMLParser):
    """Every start tag of a page with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


@pytest.mark.parametrize("path", ["", "item/theory.rope", "item/diagram", "student/mallory", "student/pat"])
def test_the_page_loads_nothing_from_elsewhere_and_runs_only_its_own_script_file(client, path) -> None:
    parser = Tags()
    parser.feed(client.get(f"/{TOKEN}/{path}", headers=HOST).text)
    assert [attrs for tag, attrs in parser.tags if tag == "script"] == [
        {"src": f"/{TOKEN}/static/review.js", "defer": None}
    ]
    attributes = [name for _, attrs in parser.tags for name in attrs]
    assert not [name for name in attributes if name.startswith("on") or name == "style"], "no inline script or style"
    links = [attrs.get(name) or "" for _, attrs in parser.tags for name in ("src", "href") if name in attrs]
    assert links and all(link.startswith(f"/{TOKEN}/") for link in links), links


def test_the_script_is_served_as_a_file_and_sets_only_text(client) -> None:
    script = client.get(f"/{TOKEN}/static/review.js", headers=HOST)
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert "innerHTML" not in script.text and "eval(" not in script.text
    assert client.get(f"/{TOKEN}/static/../app.py", headers=HOST).status_code == 404


# -- bad input ----------------------------------------------------------------------------------------------------


def post(client, path: str, body) -> tuple[int, dict]:
    response = client.post(f"/{TOKEN}/{path}", json=body, headers=HOST)
    return response.status_code, response.get_json()


@pytest.mark.parametrize(
    ("score", "message"),
    [
        (6, "alice theory.rope: 6 is more than the item is worth; give a score from 0 to 5."),
        (5.5, "alice theory.rope: 5.5 is more than the item is worth; give a score from 0 to 5."),
        (-1, "alice theory.rope: -1 is negative; give a score from 0 to 5."),
        ("4", "alice theory.rope: the score must be a number from 0 to 5; got '4'."),
        (True, "alice theory.rope: the score must be a number from 0 to 5; got True."),
        (None, "alice theory.rope: the score must be a number from 0 to 5; got None."),
    ],
)
def test_a_score_out_of_range_is_refused_with_what_to_give_and_nothing_is_entered(client, out, score, message) -> None:
    status, data = post(client, "api/entry", {"student": "alice", "item": "theory.rope", "score": score, "seen": ""})
    assert (status, data["error"]) == (400, message)
    assert entries(out / FILENAME) == {}


def test_a_score_that_is_not_a_finite_number_is_refused(client, out) -> None:
    response = client.post(f"/{TOKEN}/api/entry", headers=HOST | {"Content-Type": "application/json"},
                           data='{"student": "alice", "item": "theory.rope", "score": NaN, "seen": ""}')  # fmt: skip
    assert response.status_code == 400 and "must be a number from 0 to 5; got nan" in response.get_json()["error"]
    status, data = post(client, "api/entry", "not an entry")
    assert status == 400 and "Send the entry as JSON" in data["error"]
    long = {"student": "alice", "item": "theory.rope", "score": 1, "comment": "x" * (COMMENT_MAX + 1), "seen": ""}
    status, data = post(client, "api/entry", long)
    assert status == 400 and f"keep it to {COMMENT_MAX:,}" in data["error"] and "kept in the page" in data["error"]
    assert entries(out / FILENAME) == {}


def test_a_student_not_in_the_gradebook_or_an_item_not_on_their_list_is_named(client, out) -> None:
    status, data = post(client, "api/entry", {"student": "zoe", "item": "theory.rope", "score": 1, "seen": ""})
    assert status == 404
    assert data["error"] == (
        f"'zoe' is not in the gradebook {out / FILENAME}: grade their submission first "
        f"(python -m grader submissions/zoe --out {out}), then reload the page."
    )
    status, data = post(client, "api/entry", {"student": "alice", "item": "quiz.q3", "score": 1, "seen": ""})
    assert status == 404 and "'quiz.q3' is not on alice's review list" in data["error"]
    assert "python -m grader --manual" in data["error"]
    assert client.get(f"/{TOKEN}/student/zoe", headers=HOST).status_code == 404
    assert entries(out / FILENAME) == {}


def test_two_tabs_the_second_save_gets_the_first_entry_and_overwrites_only_with_its_version(client, out) -> None:
    tab1 = {"student": "bob", "item": "theory.rope", "score": 4, "comment": "Good.", "seen": ""}
    status, first = post(client, "api/entry", tab1)
    assert status == 200 and first["saved"] and first["entry"]["version"]
    status, data = post(client, "api/entry", tab1 | {"score": 2, "comment": ""})  # tab 2 saw no entry
    assert status == 409
    assert data["error"].startswith('ta entered 4 / 5 ("Good.") for bob theory.rope at ')
    assert data["latest"]["version"] == first["entry"]["version"] and data["latest"]["score"] == 4
    assert entries(out / FILENAME)["bob"]["theory.rope"] == (4.0, "Good.")
    same = post(client, "api/entry", tab1 | {"seen": ""})  # the same entry from a stale tab is no conflict
    assert same[0] == 200 and not same[1]["saved"]
    status, data = post(client, "api/entry", tab1 | {"score": 2, "comment": "", "seen": first["entry"]["version"]})
    assert status == 200 and data["saved"]
    assert entries(out / FILENAME)["bob"]["theory.rope"] == (2.0, "")
    assert data["progress"]["student"] == {"scored": 4, "total": 8, "left": 4}  # and 3 scored 0 for no answer


def test_a_busy_gradebook_is_said_with_a_retry_and_the_entry_goes_in_once_it_is_free(client, out) -> None:
    entry = {"student": "alice", "item": "diagram", "score": 5, "comment": "All there.", "seen": ""}
    holder = sqlite3.connect(out / FILENAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        status, data = post(client, "api/entry", entry)
        assert status == 503
        assert data["error"] == (
            f"The gradebook {out / FILENAME} is busy: another program (a grader run?) is writing it. Your entry "
            "(alice diagram) was not saved; it is kept on this page and sent again in a few seconds (press s to "
            "retry now)."
        )
        assert post(client, "api/import", {"name": "x.toml", "text": "[bob]\ndiagram = 1\n"})[0] == 503
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert post(client, "api/entry", entry)[0] == 200
    assert entries(out / FILENAME) == {"alice": {"diagram": (5.0, "All there.")}}


def test_a_missing_gradebook_says_to_grade_first(tmp_path, capsys) -> None:
    assert main(["review", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (
        f"review: error: there is no gradebook in {tmp_path}/ ({tmp_path / FILENAME}): grade the class first "
        f"(python -m grader --out {tmp_path}), then start the review page.\n"
    )
    assert not (tmp_path / FILENAME).exists(), "nothing is created"
    assert main(["review", "--out", str(tmp_path), "--export", str(tmp_path / "x.toml")]) == 2


def test_a_gradebook_moved_aside_after_the_page_opened_it_takes_no_entry(client, out) -> None:
    for suffix in ("", "-wal", "-shm"):  # as --fresh moves it aside
        if Path(f"{out / FILENAME}{suffix}").exists():
            os.replace(f"{out / FILENAME}{suffix}", f"{out / 'gradebook-aside.sqlite'}{suffix}")
    make_gradebook(out, ["alice"])
    status, data = post(client, "api/entry", {"student": "alice", "item": "theory.rope", "score": 1, "seen": ""})
    assert status == 409 and "was moved or replaced after this page opened it" in data["error"]
    assert entries(out / FILENAME) == {} and entries(out / "gradebook-aside.sqlite") == {}


# -- the scores file -------------------------------------------------------------------------------------------


def test_an_import_is_checked_as_manual_is_and_enters_all_or_nothing(client, out, tmp_path) -> None:
    bad = '[alice]\n"theory.rope" = 3\n"theory.gqa" = 7\n'
    status, data = post(client, "api/import", {"name": "scores.toml", "text": bad})
    (tmp_path / "scores.toml").write_text(bad)
    with pytest.raises(grader.UsageError) as by_manual:
        load_scores(tmp_path / "scores.toml")
    assert status == 400 and data["error"] == str(by_manual.value).replace(str(tmp_path / "scores.toml"), "scores.toml")
    assert data["error"] == "scores.toml: [alice] theory.gqa is worth 5 points, not 7."
    status, data = post(client, "api/import", {"name": "x.toml", "text": '[alice]\n"theory.rope" = nan\n'})
    assert status == 400 and "must be a score >= 0" in data["error"]
    unknown = '[alice]\n"theory.rope" = 3\n[zoe]\ndiagram = 1\n'
    status, data = post(client, "api/import", {"name": "x.toml", "text": unknown})
    assert status == 400
    assert data["error"] == (
        f"x.toml scores 1 student(s) who are not in the gradebook {out / FILENAME}: zoe. Nothing was imported; "
        "grade them first, or remove their tables from the file."
    )
    assert post(client, "api/import", {"name": "x.toml", "text": "[alice\n"})[0] == 400
    assert entries(out / FILENAME) == {}
    good = '[alice]\n"theory.rope" = { score = 3, comment = "Fine." }\n[bob]\ndiagram = 1\n'
    status, data = post(client, "api/import", {"name": "good.toml", "text": good})
    assert status == 200 and data["message"].startswith("Imported good.toml: 2 score(s) for 2 student(s), 2 of them")
    assert entries(out / FILENAME) == {"alice": {"theory.rope": (3.0, "Fine.")}, "bob": {"diagram": (1.0, "")}}


def test_the_command_line_exports_and_imports_the_scores_file(out, graded, tmp_path, capsys) -> None:
    with Gradebook.open(out / FILENAME, create=False) as book:
        book.enter_manual("alice", "theory.rope", 4.5, 'Says "rotation"\n twice \\', entered_by="ta", source="test")
        book.enter_manual("bob", "quiz.q3", 3, "", entered_by="ta", source="test")  # an override of a check
    exported = tmp_path / "scores.toml"
    assert main(["review", "--out", str(out), "--export", str(exported)]) == 0
    assert load_scores(exported) == entries(out / FILENAME)
    assert main(["review", "--out", str(out), "--export", str(out / "manual.toml")]) == 2
    assert "which every grading run enters again" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(graded / "pristine.sqlite", other / FILENAME)
    assert main(["review", "--out", str(other), "--import", str(exported), "--reviewer", "prof"]) == 0
    assert "2 score(s) for 2 student(s), 2 new or changed" in capsys.readouterr().out
    assert entries(other / FILENAME) == entries(out / FILENAME)
    assert totals(other / FILENAME) == totals(out / FILENAME)
    assert main(["review", "--out", str(other), "--import", str(exported)]) == 0
    assert "0 new or changed" in capsys.readouterr().out, "importing twice enters nothing more"


def test_the_scores_file_format_reads_back_exactly() -> None:
    scores = {
        "alice": {"theory.rope": (4.0, ""), "quiz.q3": (2.5, 'He wrote "x" \\ \n\t\x7f é')},
        "b-b": {"diagram": (0.1, ""), "advanced.mla": (5.0, "#not a comment")},
    }
    text = dump_scores(scores, "first line\nsecond")
    assert text.startswith("# first line\n# second\n\n[alice]\n")
    assert parse_scores(text, Path("x")) == scores


# -- the learners' feedback and the summary ----------------------------------------------------------------------


def test_written_scores_reach_the_feedback_when_the_reports_are_written(client, out) -> None:
    feedback = (out / "alice" / "feedback.md").read_text()
    assert "- Theory 2: RoPE (theory.rope): awaiting review" in feedback
    entry = {"student": "alice", "item": "theory.rope", "score": 4, "comment": "No contrast with absolute.", "seen": ""}
    assert post(client, "api/entry", entry)[0] == 200
    assert (out / "alice" / "feedback.md").read_text() == feedback, "an entry alone writes no report"
    status, data = post(client, "api/reports", {})
    assert status == 200 and data["message"].startswith(f"Wrote the reports in {out}/: feedback.md and results.json")
    feedback = (out / "alice" / "feedback.md").read_text()
    assert "- Theory 2: RoPE (theory.rope): 4 / 5: No contrast with absolute." in feedback
    tests = json.loads((out / "alice" / "results.json").read_text())["tests"]
    rope = next(t for t in tests if t["name"] == "theory.rope")
    assert (rope["score"], rope["output"]) == (4.0, "Theory 2: RoPE: 4 / 5. No contrast with absolute.")
    assert "| alice |" in (out / "summary.md").read_text()


def test_stopping_the_page_writes_the_reports_of_the_entries_made(out, graded) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "review", "--out", str(out), "--submissions", str(graded / "submissions")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        lines = []
        while not any("http://127.0.0.1:" in line for line in lines):
            line = process.stdout.readline()
            assert line, f"the page did not start: {process.stderr.read()}"
            lines.append(line)
        url = next(line.strip() for line in lines if "http://127.0.0.1:" in line)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url.rsplit("/", 2)[0] + "/")
        assert refused.value.code == 403
        body = json.dumps({"student": "bob", "item": "diagram", "score": 1, "comment": "Late.", "seen": ""}).encode()
        request = urllib.request.Request(url + "api/entry", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request) as response:
            assert json.load(response)["saved"]
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert "Stopped. Wrote the reports" in stdout
    assert "- Code Task 2: the diagram (diagram): 1 / 5: Late." in (out / "bob" / "feedback.md").read_text()


def test_summary_md_gains_the_similarity_table_and_the_review_list_links_the_report(client, out) -> None:
    assert post(client, "api/reports", {})[0] == 200
    summary = (out / "summary.md").read_text()
    section = summary_markdown(load_report(out))
    assert summary.endswith("\n" + section) and "| alice | pat |" in section
    index = client.get(f"/{TOKEN}/", headers=HOST).text
    assert f'<a href="/{TOKEN}/similarity.html#pair-1">the code, side by side</a>' in index
    shown = client.get(f"/{TOKEN}/similarity.html", headers=HOST)
    assert shown.status_code == 200 and shown.headers["Content-Security-Policy"] == FILE_CSP
    (out / "similarity.json").write_text("{}")
    assert post(client, "api/reports", {})[0] == 200
    assert "is not a similarity report of format" in (out / "summary.md").read_text()
    assert "is not a similarity report of format" in client.get(f"/{TOKEN}/", headers=HOST).text
