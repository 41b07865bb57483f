"""The explorer (explore.html) on gwr-national-zh in headless Chromium: its size, first render
and the time of each interaction (prints figures; asserts nothing).

    python bench/bench_explore.py [--corpus PATH] [--repeat N] [--libraries DIR] [--page FILE]

Runs the local engine on the corpus (cached after the first time) with the report, which
writes explore.html, then opens the page from file:// in the system's Chromium (Playwright
for Python; no browser download, no network: every request but the page is aborted and
counted) and times, inside the page (performance.now()), each interaction from the event to
the second animation frame after it (so the chart's drawing is included):

- first render: navigation start to the page's charts drawn;
- pick another category; change the grouping; click a group (its documents listed); open
  the longest document (passages highlighted); search a string; change the two-group pair;
  click a term of the plot (its lines in both groups).

Targets (issue 15): first render <= 2 s, each interaction <= 200 ms. The machine is shared:
the load average is printed before and after.

With ``--libraries DIR`` (a folder holding ``npm pack`` of echarts, vega, vega-lite and
vega-embed, unpacked as ``<name>-<version>/package``), it also times a minimal page per
library drawing the same chart (60 yearly points with an interval band) offline: the
measurement behind choosing ECharts (README, "Dependencies"; docs/explore.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpora"

INTERACTIONS = {
    "pick another category": """() => { const s = document.getElementById('category');
        s.value = String((+s.value + 1) % s.options.length); s.dispatchEvent(new Event('change')); }""",
    "change the grouping (period)": """() => { const s = document.getElementById('grouping');
        s.value = 'period'; s.dispatchEvent(new Event('change')); }""",
    "change the grouping (year)": """() => { const s = document.getElementById('grouping');
        s.value = 'year'; s.dispatchEvent(new Event('change')); }""",
    "click a year (list its documents)": """() => document.querySelector(
        '#rates-table button.group-button:last-of-type').click()""",
    "open a document (passages highlighted)": """() => document.querySelector(
        '#docs-table button.doc-button').click()""",
    "open the longest document": """() => { const D = JSON.parse(document.getElementById(
        'explore-data').textContent); let best = 0; D.documents.forEach((d, i) => {
        if (d.text.length && d.text[0][1].length > D.documents[best].text[0][1].length) best = i; });
        const s = document.getElementById('grouping'); s.value = 'overall';
        s.dispatchEvent(new Event('change'));
        document.querySelector('#rates-table button.group-button').click();
        document.querySelector('#docs-table button.doc-button[data-doc="' + best + '"]').click(); }""",
    "search 社会保障": """() => { document.getElementById('search-input').value = '社会保障';
        document.getElementById('search-button').click(); }""",
    "search 的 (most frequent character)": """() => { document.getElementById('search-input').value = '的';
        document.getElementById('search-button').click(); }""",
    "change the two-group pair": """() => { const s = document.getElementById('k-b');
        s.value = String(Math.max(0, +s.value - 1)); s.dispatchEvent(new Event('change')); }""",
    "click a term of the plot (its lines)": """() => document.querySelector(
        '#k-top-a button.term-button, #k-top-b button.term-button').click()""",
}

def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise SystemExit("no Chromium installed (Debian: apt-get install chromium)")


ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _open(p, page_path: Path, blocked: list[str]):
    browser = p.chromium.launch(executable_path=_chromium(), args=ARGS)
    context = browser.new_context(viewport={"width": 1280, "height": 900})

    def route(r):
        if r.request.url == page_path.as_uri():
            r.continue_()
        else:
            blocked.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    return browser, context


def bench_page(page_path: Path, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    blocked: list[str] = []
    firsts: list[float] = []
    times: dict[str, list[float]] = {k: [] for k in INTERACTIONS}
    with sync_playwright() as p:
        browser, context = _open(p, page_path, blocked)
        try:
            for _ in range(repeat):
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(page_path.as_uri(), wait_until="load")
                page.wait_for_function("window.__explorerReady === true", timeout=60_000)
                first = page.evaluate("""async () => { await new Promise(r =>
                    requestAnimationFrame(() => requestAnimationFrame(r)));
                    return performance.now(); }""")
                firsts.append(first)
                for name, action in INTERACTIONS.items():
                    ms = page.evaluate(f"""async () => {{
                        const f = {action};
                        const t0 = performance.now();
                        f();
                        await new Promise(r => requestAnimationFrame(() =>
                            requestAnimationFrame(r)));
                        return performance.now() - t0; }}""")
                    times[name].append(ms)
                if errors:
                    print("page errors:", errors)
                page.close()
        finally:
            browser.close()
    print(f"first render: median {statistics.median(firsts):.0f} ms "
          f"(runs: {', '.join(f'{x:.0f}' for x in firsts)}; target <= 2000 ms)")
    for name, xs in times.items():
        print(f"  {name:42s} median {statistics.median(xs):6.0f} ms  max {max(xs):6.0f} ms"
              f"  (target <= 200 ms)")
    print(f"network requests blocked: {len(blocked)}")


def _library_page(kind: str, libs: Path) -> str:
    years = list(range(1954, 2014))
    rows = [{"year": y, "rate": 5 + (y % 7), "lo": 3 + (y % 7), "hi": 7 + (y % 7)} for y in years]
    data = json.dumps(rows)
    if kind == "echarts":
        src = (next(libs.glob("echarts-*/package")) / "dist" / "echarts.min.js").read_text()
        app = f"""const rows = {data};
const c = echarts.init(document.getElementById('c'), null, {{renderer: 'canvas'}});
c.setOption({{animation: false, xAxis: {{type: 'category', data: rows.map(r => r.year)}},
  yAxis: {{type: 'value'}}, series: [
  {{type: 'line', data: rows.map(r => r.lo), stack: 'ci', symbol: 'none', lineStyle: {{opacity: 0}}}},
  {{type: 'line', data: rows.map(r => r.hi - r.lo), stack: 'ci', symbol: 'none', lineStyle: {{opacity: 0}}, areaStyle: {{}}}},
  {{type: 'line', data: rows.map(r => r.rate)}}]}});
requestAnimationFrame(() => requestAnimationFrame(() => {{ window.__done = performance.now(); }}));"""
        return f"<!DOCTYPE html><div id=c style='width:1000px;height:340px'></div><script>{src}</script><script>{app}</script>"
    vega = (next(libs.glob("vega-6*/package")) / "build" / "vega.min.js").read_text()
    vl = (next(libs.glob("vega-lite-*/package")) / "build" / "vega-lite.min.js").read_text()
    embed = (next(libs.glob("vega-embed-*/package")) / "build" / "vega-embed.min.js").read_text()
    spec = {"$schema": "https://vega.github.io/schema/vega-lite/v6.json", "width": 1000,
            "height": 300, "data": {"values": rows}, "layer": [
                {"mark": "area", "encoding": {"x": {"field": "year", "type": "ordinal"},
                                              "y": {"field": "lo", "type": "quantitative"},
                                              "y2": {"field": "hi"}}},
                {"mark": "line", "encoding": {"x": {"field": "year", "type": "ordinal"},
                                              "y": {"field": "rate", "type": "quantitative"}}}]}
    app = f"""vegaEmbed('#c', {json.dumps(spec)}, {{actions: false, renderer: 'canvas'}}).then(() =>
requestAnimationFrame(() => requestAnimationFrame(() => {{ window.__done = performance.now(); }})));"""
    return (f"<!DOCTYPE html><div id=c></div><script>{vega}</script><script>{vl}</script>"
            f"<script>{embed}</script><script>{app}</script>")


def bench_libraries(libs: Path, repeat: int) -> None:
    from playwright.sync_api import sync_playwright

    tmp = Path(tempfile.mkdtemp(prefix="mobilize-bench-explore-"))
    try:
        for kind in ("echarts", "vega-lite"):
            path = tmp / f"{kind}.html"
            path.write_text(_library_page(kind, libs), encoding="utf-8")
            blocked: list[str] = []
            done = []
            with sync_playwright() as p:
                browser, context = _open(p, path, blocked)
                try:
                    for _ in range(repeat):
                        page = context.new_page()
                        page.goto(path.as_uri(), wait_until="load")
                        page.wait_for_function("window.__done !== undefined", timeout=30_000)
                        done.append(page.evaluate("window.__done"))
                        page.close()
                finally:
                    browser.close()
            print(f"{kind:10s} page {path.stat().st_size / 1e6:5.2f} MB, first chart drawn: "
                  f"median {statistics.median(done):.0f} ms (runs: "
                  f"{', '.join(f'{x:.0f}' for x in done)}); blocked requests {len(blocked)}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=SHARED / "gwr-national-zh")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder for the run (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=3, help="page loads to time")
    parser.add_argument("--page", type=Path, default=None,
                        help="time this explore.html instead of running the corpus")
    parser.add_argument("--libraries", type=Path, default=None,
                        help="folder of unpacked npm packs (echarts, vega, vega-lite, "
                             "vega-embed) to compare the two libraries")
    args = parser.parse_args()
    print(f"load average before: {_load()} ({os.cpu_count()} cores)")
    if args.libraries is not None:
        bench_libraries(args.libraries, args.repeat)
    if args.page is not None:
        print(f"{args.page}: {args.page.stat().st_size / 1e6:.1f} MB (target <= 15 MB)")
        bench_page(args.page.resolve(), args.repeat)
        print(f"load average after: {_load()}")
        return
    from pipeline import engine
    from pipeline.config import Settings

    out = args.out or Path(tempfile.mkdtemp(prefix="mobilize-bench-explore-"))
    s = Settings(corpus=args.corpus.resolve(), corpus_name=args.corpus.name, out=out,
                 engine="local", segmenter="jieba-rs", workers=1, progress=False)
    t0 = time.perf_counter()
    result = engine.run_local(s)
    run_s = time.perf_counter() - t0
    page = result.run_dir / "explore.html"
    print(f"{args.corpus.name}: run with report {run_s:.1f} s (report "
          f"{result.stats.seconds.get('report', 0):.1f} s); explore.html "
          f"{page.stat().st_size / 1e6:.1f} MB (target <= 15 MB)")
    bench_page(page, args.repeat)
    print(f"load average after: {_load()}")
    if args.out is None:
        shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
