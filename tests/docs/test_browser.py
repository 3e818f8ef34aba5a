"""Open every built page of both editions from disk in a real headless Chromium with the network off.

Every ``.html`` file of each edition is opened (``_static/`` aside: MathJax's and the theme's own
files), and the pages an edition must have are added to the list, so a missing one fails too. For
each page: MathJax (the copy shipped with the site) typeset every formula without error, every
image loaded, every font loaded, no table is wider than the page, the console shows no error, and
nothing but local files was requested. A screenshot of each page lands in
docs/_build/screenshots/<edition>/ as an artifact.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import chrome, requested_urls
from docs_site import BUILD, EDITIONS, built, lesson_sources, reference_modules
from selenium import webdriver

# Pages each edition must have; every other HTML page the build wrote is opened too (highlighted
# sources under _modules/, the indexes, the timing pages), so a page added later is checked unasked.
REQUIRED = [
    "index.html",
    "learners/submit.html",
    "learners/building.html",
    "api/reference.html",
    "auto_examples/index.html",
    "auto_examples/sg_execution_times.html",
    "sg_execution_times.html",
    "search.html",
    "genindex.html",
    "_modules/index.html",
    *(f"_modules/reference/{module.stem}.html" for module in reference_modules()),
    *(f"auto_examples/{source.stem}.html" for source in lesson_sources()),
]
INSTRUCTOR_REQUIRED = ["instructors/grading.html", "instructors/ci.html", "threat-model.html", "api/grader.html"]
PAGES_WITH_MATH = {"auto_examples/01_components.html", "auto_examples/02_rope.html", "auto_examples/03_attention.html"}
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const ready = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
    ? MathJax.startup.promise.then(() => done(true), (e) => done(String(e)))
    : done(window.MathJax ? 'MathJax loaded but never started' : 'absent');
if (document.readyState === 'complete') { ready(); } else { window.addEventListener('load', ready); }
"""
INSPECT = """
const maths = Array.from(document.querySelectorAll('.math'));
return {
  maths: maths.length,
  untypeset: maths.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
  texErrors: Array.from(document.querySelectorAll('mjx-merror')).map(m => m.textContent.slice(0, 60)),
  images: Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0]),
  fonts: Array.from(document.fonts).filter(f => f.status === 'error').map(f => f.family),
  wide: Array.from(document.querySelectorAll('.table-wrapper')).filter(w => w.scrollWidth > w.clientWidth + 1)
    .map(w => `${(w.querySelector('table') || w).className}: ${w.scrollWidth} px in ${w.clientWidth}`),
};
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    driver = chrome(("browser", "performance"))
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd(
        "Network.emulateNetworkConditions",
        {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    yield driver
    driver.quit()


def pages(edition: str) -> list[str]:
    """The required pages of ``edition`` and every HTML page its build holds, as paths in the site."""
    site = BUILD / "html" / edition
    found = {
        path.relative_to(site).as_posix()
        for path in site.rglob("*.html")
        if path.relative_to(site).parts[0] != "_static"
    }
    required = {*REQUIRED, *(INSTRUCTOR_REQUIRED if edition == "instructor" else ())}
    return sorted(found | required)


@pytest.mark.parametrize(("edition", "path"), [pytest.param(e, p, id=f"{e}/{p}") for e in EDITIONS for p in pages(e)])
def test_page_renders_offline(browser: webdriver.Chrome, edition: str, path: str) -> None:
    site = built(edition)
    assert (site / path).is_file(), f"{edition}/{path} is missing from the built site"
    check_page(browser, site, path)


def check_page(browser: webdriver.Chrome, site: Path, path: str) -> None:
    """Open ``site/path`` and assert that it rendered completely from local files."""
    edition = site.name
    browser.get_log("browser")  # drop what earlier pages left
    browser.get_log("performance")
    browser.get((site / path).resolve().as_uri())
    mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
    report = browser.execute_script(INSPECT)
    shots = BUILD / "screenshots" / edition
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / (path.replace("/", "__").removesuffix(".html") + ".png")))

    # Sphinx loads MathJax only on pages with math; there it must have started and finished.
    assert mathjax is True or (mathjax == "absent" and report["maths"] == 0), f"{edition}/{path}: MathJax: {mathjax}"

    assert not report["untypeset"], f"{edition}/{path}: formulas left as raw TeX: {report['untypeset']}"
    assert not report["texErrors"], f"{edition}/{path}: TeX errors: {report['texErrors']}"
    if path in PAGES_WITH_MATH:
        assert report["maths"] > 0, f"{edition}/{path}: expected typeset math"
    broken = [src for src, loaded in report["images"] if not loaded]
    assert not broken, f"{edition}/{path}: images that did not load: {broken}"
    assert not report["fonts"], f"{edition}/{path}: fonts that failed to load: {report['fonts']}"
    # A table wider than the page scrolls sideways, and its last columns (the points) are out of sight.
    assert not report["wide"], f"{edition}/{path}: tables wider than the page at 1280 px: {report['wide']}"
    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{edition}/{path}: console errors: {errors}"
    remote = [url for url in requested_urls(browser) if not url.startswith(LOCAL_SCHEMES)]
    assert not remote, f"{edition}/{path}: requests beyond the local files: {remote}"
