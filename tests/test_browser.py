"""report.html in headless Chromium: renders offline, shows its charts, and cannot be injected.

Uses Playwright for Python driving the system's Chromium (``/usr/bin/chromium``, installed by
``.ci/run`` from Debian's packages; no browser is downloaded). Skips, saying why, when no
Chromium or no Playwright is installed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from test_report import engine_run, hostile_corpus

from pipeline import report
from pipeline.config import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-default-apps", "--disable-extensions"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run does this)")


@pytest.fixture(scope="module")
def report_html(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser")
    run_dir = engine_run(hostile_corpus(tmp), tmp / "out")
    mp = pytest.MonkeyPatch()
    mp.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    try:
        report.write_report(run_dir, Settings())
    finally:
        mp.undo()
    return run_dir / "report.html"


@pytest.fixture(scope="module")
def page_result(report_html: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is not installed "
                                          "(pip install playwright; never `playwright install`)")
    shot = tmp_path_factory.mktemp("shot") / "report.png"
    requests: list[str] = []
    blocked: list[str] = []
    console: list[tuple[str, str]] = []
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                          offline=True)
            page = context.new_page()

            def route(r: object) -> None:
                url = r.request.url  # type: ignore[attr-defined]
                requests.append(url)
                if url.startswith(("file://", "data:")):
                    r.continue_()  # type: ignore[attr-defined]
                else:
                    blocked.append(url)
                    r.abort()  # type: ignore[attr-defined]

            context.route("**/*", route)
            page.on("console", lambda m: console.append((m.type, m.text)))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(report_html.as_uri(), wait_until="load")
            images = page.evaluate(
                "Array.from(document.images).map(i => ({alt: i.alt, w: i.naturalWidth, "
                "h: i.naturalHeight, complete: i.complete}))")
            pwned = page.evaluate("window.__pwned === undefined ? null : window.__pwned")
            scripts = page.evaluate("document.scripts.length")
            bold = page.evaluate("Array.from(document.querySelectorAll('b')).length")
            text = page.evaluate("document.body.innerText")
            # Sorting a table by clicking its header is the report's own script at work.
            first_header = page.locator("table.sortable th").first
            first_header.click()
            sorted_flag = first_header.get_attribute("data-sort")
            page.locator('img[alt="rates_by_year"]').scroll_into_view_if_needed()
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    return {"requests": requests, "blocked": blocked, "console": console, "errors": errors,
            "images": images, "pwned": pwned, "scripts": scripts, "bold": bold, "text": text,
            "sorted": sorted_flag, "shot": shot}


def test_report_renders_without_console_errors(page_result: dict) -> None:
    assert page_result["errors"] == []
    assert [m for m in page_result["console"] if m[0] in ("error", "warning")] == []
    assert page_result["sorted"] == "asc"


def test_report_requests_nothing_but_itself(page_result: dict, report_html: Path) -> None:
    assert page_result["blocked"] == []
    assert all(u.startswith(("file://", "data:")) for u in page_result["requests"])
    assert page_result["requests"][0] == report_html.as_uri()


def test_charts_are_decoded_images_with_a_size(page_result: dict) -> None:
    images = page_result["images"]
    names = {i["alt"] for i in images}
    assert {"rates_by_year", "rates_by_period"} <= names
    for img in images:
        assert img["complete"] and img["w"] > 200 and img["h"] > 100, img


def test_screenshot_shows_a_chart_not_a_blank_page(page_result: dict) -> None:
    from PIL import Image

    shot = Image.open(page_result["shot"]).convert("RGB")
    assert shot.size == (1280, 1000)
    colours = shot.getcolors(maxcolors=1_000_000) or []
    white = next((n for n, c in colours if c == (255, 255, 255)), 0)
    # A blank page is all white; the chart's lines, bands, grid and CJK labels are not.
    assert len(colours) > 150
    assert 1 - white / (1280 * 1000) > 0.03


def test_document_html_and_scripts_are_shown_as_text_not_run(page_result: dict) -> None:
    assert page_result["pwned"] is None
    assert page_result["scripts"] == 1  # the report's own table-sorting script
    assert page_result["bold"] == 0  # the document's <b> did not become an element
    assert "<script>window.__pwned = 1</script>" in page_result["text"]
    assert "恶意标题<script>" in page_result["text"]
