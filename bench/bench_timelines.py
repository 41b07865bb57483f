"""The report's term timelines on a run folder (prints figures; asserts nothing).

    python bench/bench_timelines.py RUN_DIR [--repeat N]

e.g. after ``mobilize run --engine local --corpus ../shared/corpora/gwr-national-zh --out
/tmp/runs``: ``python bench/bench_timelines.py /tmp/runs/gwr-national-zh``.

Reads the run's tables and its corpus (run.json's root, normalised as the run read it), then
times, best of N, wall and CPU: the raw search (``report_timelines.raw_years``: one
Aho-Corasick pass per document, counted as ``str.count`` counts), the same raw counts with
``str.count`` per term and document (what it replaced), the whole section's tables
(``timeline_parts``), and drawing one category's heatmap (PNG + SVG, as the report does on a
figure-cache miss). CPU time is the steadier figure on a shared machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pipeline import compare, report_timelines as rt
from pipeline.config import Settings
from pipeline.figures import DIMENSIONS, _style, _timeline_figure, save_figure
from pipeline.report_analysis import _load_lexicon, corpus_documents


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    run = compare.read_run(args.run_dir)
    lexicon = _load_lexicon(run, settings)
    docs, note = corpus_documents(run, settings)
    if docs is None or lexicon is None:
        raise SystemExit(f"cannot read the corpus or the lexicon: {note}")
    texts = {i: d.text for i, d in docs.items()}
    years = dict(zip(run.documents["doc_id"], run.documents["year"]))
    needles = sorted({n for n in rt.lexicon_entries(lexicon)["searched_as"] if n})
    periods = compare.load_periods(settings.periods) if settings.periods else []
    print(f"{len(texts)} documents, {sum(len(t) for t in texts.values()):,} characters; "
          f"{len(needles)} raw search strings")

    def by_count() -> None:
        for n in needles:
            for t in texts.values():
                t.count(n)

    rows = [("raw search, Aho-Corasick", lambda: rt.raw_years(texts, years, needles)),
            ("raw search, str.count per term and document", by_count),
            ("the section's tables (timeline_parts)", lambda: rt.timeline_parts(
                run.documents, run.term_counts, lexicon=lexicon, texts=texts, periods=periods,
                dimension_order=DIMENSIONS))]
    for label, fn in rows:
        wall, cpu = best(fn, args.repeat)
        print(f"{label:48s} wall {wall:6.3f} s  cpu {cpu:6.3f} s")
    parts = rt.timeline_parts(run.documents, run.term_counts, lexicon=lexicon, texts=texts,
                              periods=periods, dimension_order=DIMENSIONS)
    top = max(parts.categories, key=lambda p: len(p.top)).top
    with tempfile.TemporaryDirectory() as tmp, _style():
        wall, cpu = best(lambda: save_figure(_timeline_figure(top, "timeline"), Path(tmp), "t"),
                         max(1, args.repeat // 2))
    print(f"{'one category heatmap, PNG + SVG':48s} wall {wall:6.3f} s  cpu {cpu:6.3f} s  "
          f"(x {len(parts.categories)} categories on a figure-cache miss)")


if __name__ == "__main__":
    main()
