"""Report: the comparative report a researcher reads (report.html, report.md, figures, tables).

``write_report(run_dir, settings)`` is called by the engine at the end of every
run (and by ``mobilize report``). The report never runs the engine: ``mobilize compare``
runs it first (``pipeline.cli.report_cmd``) and hands the tables over. It reads the run's tables, computes the
analysis with ``pipeline.compare`` (pure), and writes into ``run_dir``:

- ``report.html``: self-contained (styles inline, figures as base64 PNG, no
  script or font fetched from anywhere); all document text is escaped by
  Jinja2's autoescape;
- ``report.md``: the same sections as Markdown (document text escaped);
- ``figures/*.png`` and ``figures/*.svg``: Chinese labels in Noto Sans CJK SC,
  the font the ``mplfonts`` package installs (no system font is used);
- ``tables/*.csv`` and ``tables/report.xlsx`` (one sheet per table).

Same run folder, same periods file, same seed: byte-identical files (the date
printed is the run's, from run.json; SVG ids are salted with a fixed string).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline import compare
from pipeline.config import Settings
from pipeline.report_analysis import (  # noqa: F401 - re-exported
    KWIC_PER_CATEGORY,
    KWIC_WIDTH,
    MAX_GROUPS,
    DISCOVERY_OFF,
    Analysis,
    analyse,
    _MK_COLUMNS,
    trend_table,
    _latest_change,
    _kwic_and_coverage,
    corpus_documents,
    CAVEATS_MAX,
    corpus_caveats,
    _display_path,
    _part,
    _year_key,
    _load_lexicon,
    _labels,
    _periods,
    _discovery,
)
from pipeline.figures import (  # noqa: F401 - re-exported
    FONT_FILE,
    DIMENSIONS,
    _DIM_ZH,
    _FONT_NAME,
    _font_path,
    cjk_font,
    _style,
    new_figure,
    save_figure,
    FIGURE_CACHE_VERSION,
    _version,
    _figure_key,
    _figure_cache,
    _cached_figure,
    _put_figure,
    _cache_figure,
    _cache_store,
    _label,
    _line_figure,
    _heatmap,
    _category_order,
    _group_heatmap,
    _bind_heatmap,
    _short,
    _cooccurrence_figure,
    _wrap,
    _timeline_figure,
    _topic_figure,
    _group_sizes,
    _forest_figure,
)
from pipeline.render import (  # noqa: F401 - re-exported
    TEMPLATES,
    DOMINANCE_SHARE,
    TABLE_ROWS,
    METHODS,
    Section,
    _wide,
    _fmt,
    _column_formats,
    _rows,
    _md_cell,
    _remembered_rows,
    _md_table,
    _is_p_column,
    _p_values_as_text,
    _write_tables,
    XLSX_CACHE_VERSION,
    Sheet,
    _write_xlsx,
    _xlsx_rows,
    _build_xlsx,
    _xlsx_key,
    _xlsx_cache,
    _xlsx_value,
    _fix_zip_dates,
    _report_versions,
    _manifest_rows,
    render,
    _FONT_MARKER,
    _font_face,
    _markdown,
    write_comparison,
    _within_extremes,
    _comparison_md,
)

if TYPE_CHECKING:
    from pipeline.lexicon import Lexicon
    from pipeline.recall import CardNote
    from pipeline.report_era_recall import EraRecallParts


log = logging.getLogger(__name__)

#: What ``write_report`` writes into a run folder (and nothing else): ``mobilize report``
#: rewrites these in a copy of the folder and swaps it in (``store.rewrite_dir``).
REPORT_OUTPUTS = ("report.html", "report.md", "figures", "tables", "explore.html")


def write_report(run_dir: Path, settings: Settings, *,
                 lexicon: Lexicon | None = None,
                 phase: Callable[[str], None] | None = None) -> list[Path]:
    """Write the report files for the tables in ``run_dir`` into ``run_dir``; return them.

    Called by the engine inside the temporary run folder, before the atomic swap, with the
    ``lexicon`` the run used (otherwise it is read from the path run.json gives).
    ``phase(step)`` is told each step as it starts (for a progress display).
    """
    say = phase or (lambda _step: None)
    run_dir = Path(run_dir)
    clock = _Clock()
    say("reading the tables")
    run = compare.read_run(run_dir)
    periods = _periods(settings)
    lexicon = _load_lexicon(run, settings, lexicon)
    clock.lap("read")
    say("statistics")
    analysis = analyse(run, periods, seed=settings.seed, labels=_labels(lexicon))
    clock.lap("analysis")
    say("keywords in context, coverage")
    # The corpus is read once, for the KWIC and coverage and for the terms' raw years.
    documents = corpus_documents(run, settings) if lexicon is not None else \
        (None, "the lexicon could not be loaded")
    kwic, term_coverage, kwic_note = _kwic_and_coverage(run, lexicon, settings, documents)
    clock.lap("kwic and coverage")
    say("term timelines")
    from pipeline import report_timelines

    texts = {i: d.text for i, d in documents[0].items()} if documents[0] is not None else None
    timelines = report_timelines.timeline_parts(
        run.documents, run.term_counts, lexicon=lexicon, texts=texts, periods=analysis.periods,
        texts_note=documents[1], dimension_order=DIMENSIONS)
    clock.lap("term timelines")
    if settings.discover:
        say("discovery (topics, drift)")
    discovery = _discovery(run_dir, settings) if settings.discover else {"off": DISCOVERY_OFF}
    clock.lap("discovery")
    card = _measurement_card(run, lexicon)
    era_recall = _era_recall(run, lexicon, card, analysis, settings.seed)
    from pipeline.report_era_recall import annotate_timelines

    annotate_timelines(timelines, era_recall)
    say("figures, tables, report.html")
    try:
        written = render(run_dir, run, analysis, settings, kwic=kwic,
                         term_coverage=term_coverage, kwic_note=kwic_note, discovery=discovery,
                         timelines=timelines, card=card, era_recall=era_recall)
    finally:
        clock.lap("figures, tables, html, md")
    for stale in ("era_recall", "era_recall_adjusted"):  # (a report rebuilt without a card)
        if stale not in era_recall.files:
            (run_dir / "tables" / f"{stale}.csv").unlink(missing_ok=True)
    say("explorer (explore.html)")
    from pipeline.explore import report_rates, write_explorer

    # the texts read above (None when the corpus was not read: the explorer tries itself)
    written = sorted([*written, write_explorer(run_dir, settings, run=run, lexicon=lexicon,
                                               computed=report_rates(analysis.tables),
                                               texts=texts, era_recall=era_recall.lines)])
    clock.lap("explorer")
    return written


def _measurement_card(run: compare.RunTables, lexicon: Lexicon | None) -> CardNote:
    """The measurement card of the run's lexicon for the methods appendix: the
    ``<stem>.card.json`` beside the lexicon file when its hash is the run's (see
    ``pipeline.recall.card_for_run``); a malformed card is a note, logged at --verbose."""
    from pipeline.recall import card_for_run, card_path

    lex = _part(run.manifest, "lexicon")
    run_hash = str(lex.get("hash") or (lexicon.hash if lexicon is not None else ""))
    path = _lexicon_file(run, lexicon)
    note = card_for_run(path, run_hash, name=str(lex.get("name") or ""),
                        version=str(lex.get("version") or ""),
                        shown_path=_display_path(card_path(path)) if path else "")
    if note.warning:
        log.info("report: measurement card not shown: %s", note.warning)
    return note


def _lexicon_file(run: compare.RunTables, lexicon: Lexicon | None) -> Path | None:
    """The run's lexicon file: the loaded lexicon's, else the path run.json records."""
    if lexicon is not None and lexicon.path:
        return Path(lexicon.path)
    recorded = _part(run.manifest, "lexicon").get("path")
    return Path(str(recorded)) if recorded else None


def _card_file(run: compare.RunTables, lexicon: Lexicon | None) -> Path | None:
    """The card file beside the run's lexicon (as ``_measurement_card`` looks for it)."""
    from pipeline.recall import card_path

    path = _lexicon_file(run, lexicon)
    return card_path(path) if path is not None else None


def era_recall_lines(run: compare.RunTables, lexicon: Lexicon | None) -> dict[str, str]:
    """Each category's line on its held-out recall per era, as the report gives it to its
    explorer (``mobilize explore --rebuild`` writes the same page); {} without a card."""
    from pipeline.report_era_recall import era_recall_parts

    return era_recall_parts(_measurement_card(run, lexicon), _card_file(run, lexicon),
                            run.documents).lines


def _era_recall(run: compare.RunTables, lexicon: Lexicon | None, card: CardNote,
                analysis: Analysis, seed: int) -> EraRecallParts:
    """Each category's held-out recall per era beside its trend, from the card of the run's
    lexicon (``pipeline.report_era_recall``); the era recall is unknown without one."""
    from pipeline.report_era_recall import era_recall_parts

    return era_recall_parts(card, _card_file(run, lexicon), run.documents,
                            analysis.tables.get("trends"), analysis.labels, scores=run.scores,
                            seed=seed)


class _Clock:
    """Timings of the report's steps, logged at INFO (``--verbose``)."""

    def __init__(self) -> None:
        import time

        self._now = time.perf_counter
        self._t = self._now()

    def lap(self, what: str) -> None:
        t = self._now()
        log.info("report: %s %.1f s", what, t - self._t)
        self._t = t


__all__ = ["REPORT_OUTPUTS", "Analysis", "Section", "analyse", "era_recall_lines", "trend_table", "cjk_font", "new_figure", "render",
           "save_figure", "write_comparison", "write_report"]
