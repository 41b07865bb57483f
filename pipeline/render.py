"""The report's pages and tables: report.html, report.md, CSV and XLSX tables, and the
comparison folder. Moved out of ``pipeline.report``, which keeps the public entry points."""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import platform
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline import cache as _cache
from pipeline import compare, sanitize
from pipeline.config import Settings
from pipeline.report_analysis import (
    Analysis,
    KWIC_PER_CATEGORY,
    _display_path,
    _part,
    corpus_caveats,
    ss_scope,
)
from pipeline.figures import (
    FONT_FILE,
    _bind_heatmap,
    _cache_figure,
    _cache_store,
    _cached_figure,
    _category_order,
    _cooccurrence_figure,
    _figure_key,
    _font_path,
    _forest_figure,
    _group_heatmap,
    _group_sizes,
    _label,
    _line_figure,
    _put_figure,
    _short,
    _style,
    _timeline_figure,
    _topic_figure,
    _version,
    save_figure,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from pipeline.lexicon import Lexicon
    from pipeline.recall import CardNote
    from pipeline.report_era_recall import EraRecallParts
    from pipeline.report_timelines import TimelineParts


TEMPLATES = Path(__file__).resolve().parent / "templates"


#: A category is "dominated by one term" when that term holds more than this share of its
#: hits (the same threshold as ``pipeline.validation.DOMINANCE``).
DOMINANCE_SHARE = 0.5


#: Rows of a table shown in report.html / report.md (the CSV and XLSX tables are complete).
TABLE_ROWS = 80


# How each statistic is computed: printed in the methods appendix of both reports.
METHODS = [
    ("Rates (每万词出现率)",
     "A group's rate is the sum of its documents' counts divided by the sum of their tokens, "
     "times 10,000 (tokens are the exposure; this is not the mean of document rates). "
     "Tokens are the segmenter's tokens containing a letter or digit. Scope `all` is the "
     "whole text; `domain_window` the social-security passages: each sentence mentioning a "
     "D_social_security term with the sentence before and after it in the same paragraph "
     "(a run of an older mobilize without it shows `domain_sentences`, the D sentences "
     "only)."),
    ("Confidence intervals",
     "Two-stage percentile bootstrap: each replicate draws the group's documents with "
     "replacement, then the blocks of each drawn document with replacement (a block is a "
     "paragraph, or at most 10 sentences of a longer one: a block bootstrap of the text "
     "within documents; Davison and Hinkley 1997, section 3.8), and "
     "recomputes the pooled rate ({n_boot} replicates, seed {seed}); the interval is the "
     "2.5th to 97.5th percentile. A year with one document gets the uncertainty of its own "
     "text; only a document of a single block has a zero-width interval. "
     "Differences between two groups resample each group independently. The column "
     "ci_basis says what was resampled."),
    ("Trends",
     "Per category, a generalised linear model of each document's count on its actual year "
     "(in decades; uneven years stay uneven) with log(tokens) as offset (statsmodels GLM, "
     "log link). The Poisson fit's Pearson dispersion (chi2 / residual df) chooses the "
     "model: below {nb_dispersion:g} quasi-Poisson (standard errors scaled by the "
     "dispersion; McCullagh and Nelder 1989), from it on negative binomial (NB2, alpha by "
     "the moment estimator; Cameron and Trivedi 2013). The rate ratio per decade is exp(coef) "
     "with its 95% Wald interval; p-values are adjusted across categories with "
     "Benjamini-Hochberg (1995), and a trend is called increasing or decreasing only where "
     "the adjusted p is below 0.05. A category with hits in fewer than {min_nonzero} years "
     "is too sparse to test. Secondary: Mann-Kendall (two-sided, tie-corrected) and the "
     "Theil-Sen slope (scipy) on the yearly rates, over years with documents, when there "
     "are at least {min_points}. Change points: PELT (Killick et al. 2012; L2 cost, minimum "
     "segment 3 years) on the yearly rates divided by a robust noise scale (MAD of first "
     "differences), penalty c x log(n) with c calibrated on simulated series without change "
     "so that about 95% of them get none."),
    ("Keyness",
     "Weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi and "
     "Quinn 2008): for each term, delta = log-odds in group A minus log-odds in group B, "
     "each group's words being its tokens, with prior alpha_w = alpha0 x the term's pooled "
     "frequency (both groups' counts over both groups' tokens), alpha0 = {alpha0:g} x the "
     "smaller group's tokens (so the prior never outweighs the smaller group's data); "
     "z = delta / sqrt(1/(y_a+alpha_w) + 1/(y_b+alpha_w)). |z| > 1.96 is the usual reading. "
     "Ranked over all terms and within each category."),
    ("Co-occurrence",
     "The number of sentences in which a feature category and a pathway category both "
     "occur, per 1,000 sentences of the period."),
    ("Frame",
     "A lexicon's `frame` dimension (the paper's own frame, 中国式现代化) is counted and rated "
     "like any category, so its arrival shows in every table and figure; it is none of the "
     "features, pathways or challenges, so no co-occurrence pair includes it."),
    ("Coverage",
     "Terms of the lexicon that never match in the corpus, split into those that never occur "
     "and those that occur only inside a longer term or pattern of their category (which "
     "takes the hit); categories in which one term holds "
     "more than {dominance:.0%} of the hits (the category then measures one word)."),
]


@dataclass
class Section:
    """One titled part of the report: prose, tables and figures."""

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, table)
    figures: list[str] = field(default_factory=list)  # figure names (figures/<name>.png)
    #: sub-sections (h3 in the page, with their own anchors in the table of contents)
    parts: list[Section] = field(default_factory=list)
    #: rows of each table shown (None: all; the term timelines list every term)
    limit: int | None = TABLE_ROWS


def _wide(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """A rates table for reading: one row per group, one column per category (its code)."""
    dims = dict(zip(table["category"], table["dimension"], strict=False))
    cats = _category_order(list(dict.fromkeys(table["category"])), dims)
    wide = table.pivot_table(index=by, columns="category", values="rate_per_10k",
                             aggfunc="first", sort=False, observed=True).reindex(columns=cats)
    wide.columns = [_short(c) for c in wide.columns]
    size = table.groupby(by, sort=False, observed=True)[["documents", "tokens"]].first()
    out = size.join(wide).reset_index()
    return out.astype({by: str}) if by != "year" else out


def _fmt(value: Any, spec: str | None = None) -> str:
    """One cell as text; ``spec`` is its column's format (``_column_formats``)."""
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return ""
        if spec is not None:
            return format(value, spec)
        if value != 0 and abs(value) < 0.001:
            return f"{value:.2e}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _column_formats(df: pd.DataFrame) -> list[str | None]:
    """One format per column, so a column's numbers have the same decimals: p-values in
    scientific notation; other float columns with 1 decimal where the column reaches 100,
    else 2 (rates per 10k, ratios)."""
    specs: list[str | None] = []
    for c in df.columns:
        col = df[c]
        if not pd.api.types.is_float_dtype(col) or isinstance(col.dtype, pd.CategoricalDtype):
            specs.append(None)
        elif _is_p_column(c):
            specs.append(".2e")
        else:
            top = float(np.nanmax(np.abs(col.to_numpy(dtype=float)))) if col.notna().any() \
                else 0.0
            specs.append(".1f" if top >= 100 else ".2f")
    return specs


def _rows(df: pd.DataFrame, limit: int | None = None) -> list[list[str]]:
    part = df if limit is None else df.head(limit)
    specs = _column_formats(df)
    return [[_fmt(v, f) for v, f in zip(row, specs)]
            for row in part.itertuples(index=False, name=None)]


def _md_cell(text: str) -> str:
    return sanitize.markdown(text)


def _remembered_rows() -> Callable[[pd.DataFrame, int | None], list[list[str]]]:
    """``_rows`` that formats each table once: report.html and report.md show the same
    tables. (Each frame is held with its rows, so its id cannot be reused meanwhile.)"""
    done: dict[tuple[int, int | None], tuple[pd.DataFrame, list[list[str]]]] = {}

    def rows(df: pd.DataFrame, limit: int | None = None) -> list[list[str]]:
        key = (id(df), limit)
        if key not in done:
            done[key] = (df, _rows(df, limit))
        return done[key][1]

    return rows


def _md_table(df: pd.DataFrame, limit: int | None = None,
              rows: Callable[[pd.DataFrame, int | None], list[list[str]]] = _rows) -> str:
    head = "| " + " | ".join(_md_cell(str(c)) for c in df.columns) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows(df, limit)]
    more = [f"\n*… {len(df) - limit} more rows in the CSV table.*"] \
        if limit is not None and len(df) > limit else []
    return "\n".join([head, sep, *body, *more])


def _is_p_column(name: object) -> bool:
    return str(name) in ("p_value", "p_adjusted") or str(name).endswith(("_p_value",
                                                                         "_p_adjusted"))


def _p_values_as_text(df: pd.DataFrame) -> pd.DataFrame:
    """p-value columns in scientific notation (``1.234e-07``): the CSV's fixed 6 decimals
    printed small p-values as 0.000000."""
    cols = [c for c in df.columns if _is_p_column(c) and pd.api.types.is_float_dtype(df[c])]
    if not cols:
        return df
    df = df.copy()
    for c in cols:
        df[c] = pd.array(["" if math.isnan(v) else f"{v:.3e}" for v in df[c].astype(float)],
                         dtype="string")
    return df


def _write_tables(tables: dict[str, pd.DataFrame], folder: Path,
                  cache: Path | None = None) -> list[Path]:
    from pipeline.store import write_csv

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(tables):
        path = folder / f"{name}.csv"
        df = tables[name].copy()
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(str)
        write_csv(_p_values_as_text(df), path)
        written.append(path)
    xlsx = folder / "report.xlsx"
    _write_xlsx(tables, xlsx, cache)
    written.append(xlsx)
    return written


#: Bump to drop every cached workbook (the cache key also holds this file's code).
XLSX_CACHE_VERSION = 1


#: A sheet of the workbook: its title and its rows of cell values (the header first).
Sheet = tuple[str, list[list[Any]]]


def _write_xlsx(tables: dict[str, pd.DataFrame], path: Path, cache: Path | None = None) -> None:
    """One sheet per table; fixed workbook properties so the file is reproducible.

    With a ``cache`` folder the workbook is kept in ``<cache>/report-xlsx/``, keyed by its
    cells (``_xlsx_key``): a report whose tables did not change copies the same bytes
    instead of importing openpyxl and building the workbook again (most of the tables'
    time on a warm run)."""
    sheets = [(name[:31], _xlsx_rows(tables[name])) for name in sorted(tables)]
    stored = _xlsx_cache(cache, _xlsx_key(sheets))
    cached = _cache.read(stored) if stored is not None else None  # (None: built below)
    if cached is not None:
        path.write_bytes(cached)
        return
    _build_xlsx(sheets, path)
    if stored is not None:
        _cache_store(stored, path.read_bytes(), "workbook")


def _xlsx_rows(df: pd.DataFrame) -> list[list[Any]]:
    """A table as the workbook's cells: the column names, then each row's values."""
    return [[sanitize.xlsx(str(c)) for c in df.columns]] + [[_xlsx_value(v) for v in row]
                                            for row in df.itertuples(index=False, name=None)]


def _build_xlsx(sheets: Sequence[Sheet], path: Path) -> None:
    import datetime as _dt

    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    fixed = _dt.datetime(2000, 1, 1)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "mobilize"
    for title, rows in sheets:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    _fix_zip_dates(path)


def _xlsx_key(sheets: Sequence[Sheet]) -> str:
    """The workbook cache key: this module's source (the workbook code), what writes the
    bytes (Python, zlib, openpyxl and the XML libraries it uses, found without importing
    it) and every sheet's title and cells with their types. Same key = same xlsx bytes."""
    from importlib.metadata import PackageNotFoundError

    h = hashlib.sha256()
    parts = [f"mobilize-xlsx-{XLSX_CACHE_VERSION}", platform.python_version(),
             zlib.ZLIB_RUNTIME_VERSION, os.environ.get("OPENPYXL_LXML", "True")]
    for dist in ("openpyxl", "et-xmlfile", "lxml"):
        try:
            parts.append(f"{dist} {_version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} -")
    for part in parts:
        h.update(part.encode() + b"\0")
    h.update(Path(__file__).read_bytes())
    for title, rows in sheets:
        h.update(repr(title).encode() + b"\0")
        for row in rows:  # (a bool and an int, or 1 and 1.0, are different cells)
            h.update(repr([(type(v).__name__, v) for v in row]).encode() + b"\n")
    return h.hexdigest()


def _xlsx_cache(cache: Path | None, key: str) -> Path | None:
    return cache / "report-xlsx" / f"{key[:40]}.xlsx" if cache is not None else None


def _xlsx_value(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else float(v)
    if isinstance(v, str):
        return sanitize.xlsx(v)  # never a formula, no control character openpyxl refuses
    return v if isinstance(v, int | bool) else sanitize.xlsx(str(v))


def _fix_zip_dates(path: Path) -> None:
    """Rewrite the xlsx zip with a fixed timestamp on every member (reproducible bytes)."""
    import zipfile

    data = path.read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in sorted(src.infolist(), key=lambda i: i.filename):
            fixed = zipfile.ZipInfo(info.filename, date_time=(2000, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o644 << 16
            content = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl stamps the save time here
                content = re.sub(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*",
                                 rb"\g<1>2000-01-01T00:00:00Z", content)
            dst.writestr(fixed, content)
    path.write_bytes(out.getvalue())


def _report_versions() -> list[tuple[str, str]]:
    """Versions of the libraries the report itself uses (run.json has the engine's)."""
    from importlib.metadata import PackageNotFoundError

    rows = []
    for dist in ("numpy", "pandas", "matplotlib", "mplfonts", "fonttools",
                 "jinja2", "openpyxl"):
        try:
            rows.append((f"report.versions.{dist}", _version(dist)))
        except PackageNotFoundError:
            rows.append((f"report.versions.{dist}", "not installed"))
    return rows


def _manifest_rows(manifest: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in sorted(manifest):
        value = manifest[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _manifest_rows(value, name + ".")
        elif isinstance(value, list):
            if all(isinstance(v, dict) for v in value):
                for i, v in enumerate(value):
                    rows += _manifest_rows(v, f"{name}[{i}].")
            else:
                rows.append((name, ", ".join(str(v) for v in value)))
        elif key in ("root", "path") and isinstance(value, str) and value:
            rows.append((name, _display_path(value)))  # (no absolute local path in the report)
        else:
            rows.append((name, str(value)))
    return rows


def render(run_dir: Path, run: compare.RunTables, analysis: Analysis, settings: Settings, *,
           kwic: pd.DataFrame | None, term_coverage: pd.DataFrame | None, kwic_note: str,
           discovery: dict[str, Any], card: CardNote | None = None,
           timelines: TimelineParts | None = None,
           era_recall: EraRecallParts | None = None) -> list[Path]:
    """Write figures, tables, report.html and report.md into ``run_dir``; ``card``: the
    measurement card of the run's lexicon (or the note why there is none) for the methods
    appendix. ``timelines``: the term timelines section (``pipeline.report_timelines``),
    when it was computed. ``era_recall``: each category's recall per era beside the trends
    (``pipeline.report_era_recall``)."""
    figures_dir, tables_dir = run_dir / "figures", run_dir / "tables"
    written: list[Path] = []
    images: dict[str, str] = {}
    t = analysis.tables
    labels = analysis.labels
    sections: list[Section] = []

    def figure(name: str, make: Callable[[], Figure | None], *inputs: Any) -> str | None:
        """Draw (or take from the figure cache) ``name``.png/.svg; ``inputs`` are everything
        ``make`` draws from (tables, labels, orders): they, the code and the versions are the
        cache key."""
        key = _figure_key(name, inputs)
        hit = _cached_figure(settings.cache, key)
        if hit is not None:
            paths, png = _put_figure(figures_dir, name, *hit)
        else:
            with _style():
                fig = make()
                if fig is None:
                    return None
                paths, png = save_figure(fig, figures_dir, name)
            _cache_figure(settings.cache, key, paths)
        written.extend(paths)
        images[name] = base64.b64encode(png).decode("ascii")
        return name

    docs = run.documents
    years = sorted(int(y) for y in docs["year"].dropna().unique())
    manifest = run.manifest
    corpus = _part(manifest, "corpus")
    lex = _part(manifest, "lexicon")
    name = str(corpus.get("name") or (docs["corpus"].iloc[0] if len(docs) else run_dir.name))
    summary = {
        "corpus": name, "documents": len(docs),
        "years": f"{years[0]}–{years[-1]} ({len(years)} years with documents)" if years else "—",
        "tokens": f"{int(docs['tokens'].sum()):,}",
        "lexicon": f"{lex.get('name', '')} {lex.get('version', '')} "
                   f"({str(lex.get('hash', ''))[:16]})".strip(),
        "date": str(manifest.get("finished") or manifest.get("date") or ""),
    }

    # Overview ----------------------------------------------------------------
    s = Section("overview", "总览 Overview: rates over the whole corpus")
    ss = ss_scope(run.scores)
    s.text.append("Pooled rate per 10,000 tokens for each category, over the whole text and "
                  + ("inside social-security passages (scope domain_window: each sentence "
                     "mentioning a D_social_security term and its neighbours in the "
                     "paragraph)" if ss == compare.SS_SCOPE else
                     "inside social-security sentences only (scope domain_sentences: this run "
                     "predates the domain_window scope)")
                  + ", with 95% bootstrap intervals (documents, then paragraphs within them). "
                  "D_social_security inside its own passages is circular: read its row of "
                  "that scope as a count of the passages, not as a finding.")
    ov = t["rates_overall"].copy()
    ov.insert(2, "label", [_label(labels, c) for c in ov["category"]])
    s.tables.append(("rates_overall", ov.drop(columns=["category"])))
    sections.append(s)
    caveats = corpus_caveats(run)
    if caveats:
        s = Section("caveats", "注意 Corpus caveats: read before the series")
        s.text += caveats
        sections.append(s)

    # What the scores mean (pipeline/report_meaning.py) ---------------------------------------
    from pipeline import report_meaning

    mp = report_meaning.meaning_parts(compare.with_periods(docs, analysis.periods), run.scores,
                                      run.term_counts, seed=settings.seed)
    sections.append(Section(report_meaning.KEY, report_meaning.TITLE, mp.text, mp.tables))
    t.update(mp.files)

    # Time --------------------------------------------------------------------
    s = Section("time", "时间 Over time: rates per year")
    comp = t.get("composition_by_year")
    breaks = ([int(y) for y in comp.loc[comp["change"], "year"]]
              if comp is not None and len(comp) else [])
    if len(years) >= 2:
        f = figure("rates_by_year", lambda: _line_figure(t["rates_by_year"], "year", labels,
                                                         "每万词出现率（全文）", breaks),
                   t["rates_by_year"], labels, breaks)
        s.figures += [f] if f else []
        dom = t["rates_by_year_domain"]
        if dom.loc[dom["tokens"] > 0, "year"].nunique() >= 2:
            f = figure("rates_by_year_domain", lambda: _line_figure(
                dom, "year", labels, "社会保障语句及其前后句内的出现率" if ss == compare.SS_SCOPE
                else "社会保障语句内的出现率", breaks), dom, labels, breaks)
            s.figures += [f] if f else []
    elif not len(docs):
        s.text.append("The corpus has no documents: no time series.")
    elif not years:  # (not "one year only": that misled readers of corpora without dates)
        s.text.append("No document has a year (no 4-digit year in the file names and no dates "
                      "from a metadata.csv): no time series. Add a metadata.csv with a date "
                      "column.")
    else:
        s.text.append("The corpus has documents from one year only: no time series.")
    if breaks:
        s.text.append(
            "The set of units (level and region) changes in "
            + ", ".join(str(b) for b in breaks)
            + ": the lines break there, since a rate across the break compares different "
              "populations, not the same ones over time (units per year: "
            + "; ".join(f"{r.year}: {r.units}" for r in comp.itertuples()) + "; "
              "tables/composition_by_year.csv).")
        bal = t.get("rates_by_year_balanced")
        if bal is not None:
            s.text.append("Balanced panel: only the units present in every year ("
                          + analysis.notes.get("balanced_units", "") + ").")
            f = figure("rates_by_year_balanced", lambda: _line_figure(
                bal, "year", labels, "平衡面板 balanced panel（每年都有的单位）"), bal, labels)
            s.figures += [f] if f else []
            s.tables.append(("balanced panel: rate per 10k tokens by year",
                             _wide(bal, "year")))
    undated = int(docs["year"].isna().sum())
    if years and undated:
        s.text.append(f"{undated} document(s) without a year are left out of the rates per "
                      "year (and of trends and periods); give them a date in metadata.csv.")
    s.tables.append(("rate per 10k tokens by year (with documents and tokens; intervals "
                     "in tables/rates_by_year.csv)", _wide(t["rates_by_year"], "year")))
    if era_recall is not None and len(years) >= 2:
        s.text += era_recall.time_text
    sections.append(s)

    s = Section("trends", "趋势 Trends: count models per category")
    tr = t["trends"]
    if len(years) < 3:
        s.text.append(f"Too few years with documents ({len(years)}, fewer than 3) for a trend "
                      "test: no test is printed. Compare the years or periods below instead.")
        s.tables.append(("trends", tr[["dimension", "category", "years", "note"]]))
    else:
        s.text.append("Per category, a count model of the documents' counts on the actual "
                      "year with log(tokens) as offset (quasi-Poisson, or negative binomial "
                      "where the counts are overdispersed): rate_ratio_per_decade with its "
                      "95% interval. Increasing / decreasing only where the Benjamini-Hochberg "
                      f"adjusted p is below 0.05; fewer than {compare.MIN_NONZERO_YEARS} years "
                      "with hits: too sparse to test. Mann-Kendall and Theil-Sen on the yearly "
                      "rates are kept as secondary columns (mk_*); change years from PELT with "
                      "a penalty calibrated to find none in a series without change.")
        panel = str(tr["panel"].iloc[0]) if "panel" in tr.columns and len(tr) else ""
        if panel.startswith("balanced"):
            s.text.append("The units change over the years, so the trends are those of the "
                          f"balanced panel ({panel[len('balanced: '):]}): a trend across the "
                          "change would measure the change of population, not of the texts.")
        elif "read with care" in panel:
            s.text.append("The units change over the years and no unit is present in every "
                          "year: these trends mix populations; read them with care.")
        s.tables.append(("trends", tr))
    if era_recall is not None:  # (pipeline/report_era_recall.py)
        _add_era_recall(s, era_recall, t)
    sections.append(s)

    if "rates_by_period" in t:
        s = Section("periods", "时期 Periods")
        s.text.append("Periods from " + _display_path(settings.periods) + ": " + "; ".join(
            f"{p.name} ({p.start}–{p.end if p.end is not None else ''})"
            for p in analysis.periods) + ".")
        pdocs = compare.with_periods(docs, analysis.periods)
        for p in analysis.periods:
            w = compare.mixed_composition(pdocs, (pdocs["period"] == p.name).to_numpy(),
                                          f"period {p.name}")
            if w:
                s.text.append("Caution: " + w.replace("--years", "the balanced panel") + ".")
        f = figure("rates_by_period", lambda: _group_heatmap(
            t["rates_by_period"], "period", labels, "各时期每万词出现率 rate per 10k tokens"),
                   t["rates_by_period"], labels)
        s.figures += [f] if f else []
        s.tables.append(("rate per 10k tokens by period (intervals in "
                         "tables/rates_by_period.csv)", _wide(t["rates_by_period"], "period")))
        co = t.get("cooccurrence_by_period")
        if co is not None and len(co):
            order = [p.name for p in analysis.periods]
            f = figure("cooccurrence_by_period", lambda: _cooccurrence_figure(co, order, labels),
                       co, order, labels)
            s.figures += [f] if f else []
            s.tables.append(("cooccurrence_by_period (feature × pathway, sentences)", co))
        else:
            s.text.append("No sentence has both a feature and a pathway term.")
        sections.append(s)

    if "keyness_change" in t:
        s = Section("keyness", "关键词 What drives the change: keyness of terms")
        s.text.append(f"Compared: {analysis.notes['keyness_change']}. Positive z: the term is "
                      "more typical of A. Top terms overall, then the top and bottom term "
                      "within each category (full table: tables/keyness_change.csv).")
        k = t["keyness_change"]
        overall = k[k["within"] == "all"]
        s.tables.append(("keyness overall, A-typical", overall.head(15)))
        s.tables.append(("keyness overall, B-typical", overall.tail(15).iloc[::-1]))
        per = k[k["within"] != "all"]
        firsts = pd.concat([per.groupby("within", sort=True).head(1),
                            per.groupby("within", sort=True).tail(1)]).drop_duplicates()
        s.tables.append(("keyness within each category (top and bottom term)",
                         firsts.sort_values(["within", "z"], ascending=[True, False])))
        sections.append(s)

    # Term timelines (pipeline/report_timelines.py) ----------------------------------------
    if timelines is not None:
        sections.append(_timelines_section(timelines, labels, figure))
        t.update(timelines.files)

    for col in ("corpus", "level", "doc_type", "region"):
        key = f"rates_by_{col}"
        if key in t:
            s = Section(key, f"分组 Groups: rates by {col}")
            f = figure(key, _bind_heatmap(t[key], col, labels), t[key], col, labels)
            s.figures += [f] if f else []
            s.tables.append((f"rate per 10k tokens by {col} (intervals in tables/{key}.csv)",
                             _wide(t[key], col)))
            sections.append(s)

    # Discovery ----------------------------------------------------------------
    if discovery:
        s = Section("discovery", "发现 Discovery: topics and candidate gaps")
        if "off" in discovery:
            s.text.append(str(discovery["off"]))
        if "error" in discovery:
            s.text.append(f"The discovery step failed: {discovery['error']}")
        for key in ("topics", "topic_prevalence", "drift"):
            df = discovery.get(key)
            if isinstance(df, pd.DataFrame) and df.empty and df.attrs.get("reason"):
                s.text.append(f"{key}: not computed ({df.attrs['reason']}).")
        topics = discovery.get("topics")
        names: dict[str, str] = {}
        if isinstance(topics, pd.DataFrame) and len(topics):
            t["topics"] = topics
            if {"topic", "label"} <= set(topics.columns):
                names = {str(k): f"{k} {v}" for k, v in zip(topics["topic"], topics["label"],
                                                            strict=False)}
        prev = discovery.get("topic_prevalence")
        if isinstance(prev, pd.DataFrame) and len(prev):
            f = figure("topic_prevalence", lambda: _topic_figure(prev, names), prev, names)
            s.figures += [f] if f else []
            t["topic_prevalence"] = prev
            s.text.append("Topic prevalence over time (unsupervised topics, beside the "
                          "dictionary rates above; table: tables/topic_prevalence.csv).")
        if "topics" in t:
            s.tables.append(("topics", t["topics"]))
        drift = discovery.get("drift")
        if isinstance(drift, pd.DataFrame) and len(drift):
            t["drift"] = drift
            s.text.append("Candidate gaps: words whose use drifts and that the lexicon does "
                          "not hold. Read their KWIC before adding them.")
            s.tables.append(("candidate gaps (drift)", drift))
        if s.text or s.tables:
            sections.append(s)

    # KWIC and coverage -------------------------------------------------------------
    s = Section("kwic", "语境 KWIC: examples of what was counted")
    if kwic is not None:
        t["kwic"] = kwic
        s.text.append(f"Up to {KWIC_PER_CATEGORY} occurrences per category, spread over the "
                      "corpus (document order), so a reader can see what each category counts.")
        s.tables.append(("kwic", kwic[["category", "doc_id", "year", "title", "left", "term",
                                       "right"]]))
    else:
        s.text.append(f"No KWIC examples: {kwic_note}.")
    sections.append(s)

    s = Section("coverage", "覆盖 Coverage diagnostics")
    dom = t["category_dominance"].copy()
    flagged = dom[dom["top_share"] > DOMINANCE_SHARE]
    s.text.append(f"Categories in which one term holds more than {DOMINANCE_SHARE:.0%} of the "
                  f"hits: {len(flagged)}"
                  + (" (" + ", ".join(f"{r.category}: {r.top_term} {r.top_share:.0%}"
                                      for r in flagged.itertuples()) + ")" if len(flagged) else "")
                  + ".")
    s.tables.append(("category_dominance", dom))
    if term_coverage is not None:
        t["term_coverage"] = term_coverage
        never = term_coverage[term_coverage["hits"] == 0]
        absent = never[never["occurrences"] == 0]
        shadowed = never[never["occurrences"] > 0]
        s.text.append(f"Lexicon terms that never match in this corpus: {len(never)} of "
                      f"{len(term_coverage)}: {len(absent)} never occur, and {len(shadowed)} "
                      "occur but always inside a longer term or pattern of their category, "
                      "which takes the hit (occurrences: how often the term's text is there) "
                      "(full list with hits and documents per term: tables/term_coverage.csv).")
        s.tables.append(("terms that never occur", absent.drop(columns=["occurrences"])))
        s.tables.append(("terms always inside a longer match", shadowed))
    else:
        s.text.append(f"No per-term coverage: {kwic_note}.")
    sections.append(s)

    # Methods ------------------------------------------------------------------
    methods = [(title, body.format(n_boot=compare.DEFAULT_BOOT, seed=settings.seed,
                                   min_points=compare.MIN_TREND_POINTS,
                                   min_nonzero=compare.MIN_NONZERO_YEARS,
                                   nb_dispersion=compare.NB_DISPERSION,
                                   alpha0=compare.PRIOR_SHARE, dominance=DOMINANCE_SHARE))
               for title, body in METHODS]
    manifest_rows = _manifest_rows(manifest) + _report_versions()
    doc_cols = [c for c in ("doc_id", "title", "year", "level", "region", "tokens", "sha256")
                if c in docs.columns]
    doc_table = docs[doc_cols].sort_values("doc_id").reset_index(drop=True)
    t["documents"] = doc_table

    written += _write_tables(t, tables_dir, settings.cache)

    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=True,
                      undefined=StrictUndefined, keep_trailing_newline=True)
    rows = _remembered_rows()  # shared by report.html and report.md
    context = {
        "summary": summary, "sections": sections, "images": images, "methods": methods,
        "manifest_rows": manifest_rows, "doc_table": doc_table, "rows": rows,
        "periods_file": _display_path(settings.periods) if settings.periods else "",
        "limit": TABLE_ROWS, "card": _card_context(card), "card_legend": CARD_LEGEND,
    }
    html_path = run_dir / "report.html"
    template = env.get_template("report.html.j2")
    # The page's own CJK text needs a CJK font on the reader's machine; embed the
    # subset of Noto Sans CJK SC that the page uses, so it shows everywhere offline.
    # One render: the page is drawn with an ASCII marker for the font (it adds no CJK
    # character), and the marker is then replaced by the subset's base64 (which
    # autoescape would leave as it is).
    page = template.render(font_face=_FONT_MARKER, **context)
    face = _font_face(page, settings.cache)
    if face:
        start = page.index("<style>")
        page = page[:start] + page[start:].replace(_FONT_MARKER, face, 1)
    else:  # no CJK character at all: no @font-face rule
        page = template.render(font_face="", **context)
    html_path.write_text(page, encoding="utf-8")
    written.append(html_path)
    md_path = run_dir / "report.md"
    md_path.write_text(_markdown(summary, sections, methods, manifest_rows, doc_table, rows,
                                 card=context["card"]),
                       encoding="utf-8")
    written.append(md_path)
    return sorted(written)


def _add_era_recall(trends: Section, era: EraRecallParts, tables: dict[str, pd.DataFrame]
                    ) -> None:
    """Recall by era beside the trends: the pointer (or the one sentence saying it is
    unknown) under the trends, and its part (``#era-recall``) with the table of every
    category's trend and recall per era; ``tables/era_recall.csv``."""
    from pipeline import report_era_recall as rer

    trends.text += era.trend_text
    if era.tables:
        trends.parts.append(Section(rer.KEY, rer.TITLE, list(era.text), list(era.tables),
                                    limit=None))
    tables.update(era.files)


def _timelines_section(parts: TimelineParts, labels: dict[str, str],
                       figure: Callable[..., str | None]) -> Section:
    """The term timelines: one part per category (its anchor in the table of contents), with
    its top-terms heatmap, its first/last-year table (every term: no row limit) and its new
    terms by period."""
    from pipeline import report_timelines as rtl

    s = Section(rtl.KEY, rtl.TITLE, list(parts.text), limit=None)
    for part in parts.categories:
        label = _label(labels, part.category)
        sub = Section(part.anchor, f"{label} ({part.dimension})", list(part.text), limit=None)
        title = f"{label}：最常见的词（每年每万词）top {len(part.top)} terms by year"

        def make(top: pd.DataFrame = part.top, title: str = title) -> Figure | None:
            return _timeline_figure(top, title)

        f = figure("timeline_" + part.anchor[len(rtl.KEY) + 1:], make, part.top, title)
        sub.figures += [f] if f else []
        sub.tables.append((f"{label}: first and last year of every term, counted and as a raw "
                           "substring", part.table))
        if part.new_terms is not None:
            sub.tables.append((f"{label}: new terms by period", part.new_terms))
        s.parts.append(sub)
    return s


#: Stands for the font's base64 in the page's first (and only) render.
_FONT_MARKER = "mobilize-cjk-font-subset"


def _font_face(page: str, cache: Path | None = None) -> str:
    """Base64 of Noto Sans CJK SC (from mplfonts) cut down to the characters of ``page``
    (OpenType/CFF; a few hundred kB for a report). Deterministic: no timestamps. The
    subset is kept in ``<cache>/report-fonts/`` keyed by the characters (it takes seconds)."""
    path = _font_path()
    chars = "".join(sorted(ch for ch in set(page) if ord(ch) > 0x2000))  # (set: in C)
    if not chars:
        return ""
    # ("cache-1": entries with a checksum header; older code must never find them by key)
    key = hashlib.sha256(f"cache-1:{FONT_FILE}:{path.stat().st_size}:{chars}".encode()).hexdigest()
    cached = cache / "report-fonts" / f"{key[:32]}.otf" if cache is not None else None
    hit = _cache.read(cached) if cached is not None else None
    if hit is not None:
        return base64.b64encode(hit).decode("ascii")
    from fontTools import subset  # only on a cache miss: its import alone takes 0.1-0.3 s
    from fontTools.ttLib import TTFont

    opts = subset.Options()
    opts.hinting = False
    opts.name_IDs = [0, 1, 2, 3, 4, 5, 6]
    font = TTFont(str(path), lazy=True, recalcTimestamp=False)
    sub = subset.Subsetter(opts)
    sub.populate(text=chars)
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    data = buf.getvalue()
    if cached is not None:
        _cache_store(cached, data, "font subset")
    return base64.b64encode(data).decode("ascii")


def _card_context(note: CardNote | None) -> dict[str, Any]:
    """The methods appendix's measurement card: ``facts`` (label, text) and ``table`` (a
    DataFrame of the card's rows) when there is a card for the run's lexicon, else ``note``."""
    if note is None:
        return {"note": "No measurement card was looked for (no lexicon file for this run).",
                "facts": [], "table": None}
    c = note.card
    if c is None:
        return {"note": note.note, "facts": [], "table": None}
    both = f"; coded by both coders: {c.passages_coded_by_both}" if len(c.coders) == 2 else ""
    facts = [("Lexicon", f"{c.name} {c.version}, hash {c.hash[:16]}"),
             ("Date", c.date),
             ("Corpora coded", ", ".join(c.corpora) or "none"),
             ("Passages coded", f"{c.passages_coded} of {c.passages}{both}"),
             ("Coders", ", ".join(c.coders)),
             ("KWIC lines judged for precision", str(c.kwic_lines) + _precision_kappa(c))]
    facts += [(f"Source: {k}", ", ".join(v) or "none") for k, v in c.sources.items()]
    table = pd.DataFrame([list(r.values()) for r in c.rows], columns=list(c.columns))
    return {"note": "", "facts": facts, "table": table}


def _precision_kappa(c: Any) -> str:
    """"; coded by two coders: N, Cohen's kappa K [LOW, HIGH] (n=N)" for a card whose KWIC
    lines two coders judged (``mobilize lexicon card`` with both coders' sheets), else "".
    The kappa reads as the card's table gives it (``recall.kappa_cell``)."""
    from pipeline.recall import Estimate, kappa_cell

    pk = (c.estimates or {}).get("precision_kappa") if isinstance(c.estimates, dict) else None
    if not c.kwic_lines_coded_by_both or not isinstance(pk, dict):
        return ""

    def num(x: Any) -> float | None:
        return float(x) if isinstance(x, int | float) and not isinstance(x, bool) else None

    n, count = pk.get("n"), pk.get("count")
    est = Estimate(num(pk.get("value")), n if isinstance(n, int) else 0, num(pk.get("low")),
                   num(pk.get("high")), count if isinstance(count, int) else None)
    if est.value is None and est.count is None:
        return ""
    return f"; coded by two coders: {c.kwic_lines_coded_by_both}, Cohen's kappa {kappa_cell(est)}"


#: Says how to read the card's cells (HTML and Markdown).
CARD_LEGEND = ("Each cell: estimate [95% interval] (n). Precision: the relevant share of "
               "judged KWIC lines (Wilson interval). Recall: the share of hand-coded "
               "expressions that a lexicon match of the same category overlaps, from the "
               "first coder's codes (Wilson), overall and per era. F1: 2PR/(P+R). Kappa: "
               "Cohen's kappa of the two coders on whether a passage holds an expression of "
               "the category (no interval where they never disagree: its width is then 0 "
               "whatever n is; n/a where a coder used one label throughout). See "
               "docs/validation.md.")


def _markdown(summary: dict[str, Any], sections: list[Section],
              methods: list[tuple[str, str]], manifest_rows: list[tuple[str, str]],
              doc_table: pd.DataFrame,
              rows: Callable[[pd.DataFrame, int | None], list[list[str]]] = _rows, *,
              card: dict[str, Any] | None = None) -> str:
    out = [f"# mobilize report: {_md_cell(summary['corpus'])}", ""]
    out += [f"- **{k}**: {_md_cell(str(v))}" for k, v in summary.items()]
    # Contents: each section (and part) has an explicit anchor, so the links work in any
    # Markdown viewer. (Keys are the code's own identifiers or plain category ids.)
    out += ["", "**Contents**", ""]
    for s in sections:
        out.append(f"- [{_md_cell(s.title)}](#{s.key})")
        out += [f"  - [{_md_cell(p.title)}](#{p.key})" for p in s.parts]
    out.append("- [方法 Methods appendix](#methods)")

    def block(s: Section, level: str) -> list[str]:
        lines = ["", f'<a id="{s.key}"></a>', "", f"{level} {_md_cell(s.title)}", ""]
        lines += [_md_cell(p) + "\n" for p in s.text]
        for name in s.figures:
            lines += [f"![{name}](figures/{name}.png)", ""]
        for caption, df in s.tables:
            lines += [f"**{_md_cell(caption)}**", "", _md_table(df, s.limit, rows), ""]
        return lines

    for s in sections:
        out += block(s, "##")
        for p in s.parts:
            out += block(p, "###")
    out += ["", '<a id="methods"></a>', "", "## 方法 Methods appendix", ""]
    for title, body in methods:
        out += [f"**{title}.** {_md_cell(body)}", ""]
    if card is not None:
        out += ["### Measurement card of the lexicon", ""]
        if card["table"] is None:
            out += [_md_cell(card["note"]), ""]
        else:
            out += [f"- **{_md_cell(k)}**: {_md_cell(v)}" for k, v in card["facts"]]
            out += ["", _md_cell(CARD_LEGEND), "", _md_table(card["table"], None, rows), ""]
    out += ["### Run manifest (run.json)", "", "| key | value |", "|---|---|"]
    out += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in manifest_rows]
    out += ["", "### Documents and content hashes", "", _md_table(doc_table, None, rows), ""]
    return "\n".join(out)


def write_comparison(cmp: compare.Comparison, folder: Path, *, top: int = 15) -> list[Path]:
    """``rates.csv``, ``differences.csv``, ``keyness.csv``, ``comparison.xlsx``,
    ``comparison.md`` and a forest plot (``differences.png``/``.svg``) into ``folder``."""
    from pipeline.store import write_csv

    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    tables = {"rates": cmp.rates, "differences": cmp.differences, "keyness": cmp.keyness}
    for name, df in tables.items():
        df = df.copy()
        for c in df.columns:
            if isinstance(df[c].dtype, pd.CategoricalDtype):
                df[c] = df[c].astype(str)
        write_csv(df, folder / f"{name}.csv")
        written.append(folder / f"{name}.csv")
    _write_xlsx(tables, folder / "comparison.xlsx")
    written.append(folder / "comparison.xlsx")
    with _style():
        paths, _ = save_figure(_forest_figure(cmp), folder, "differences")
    written += paths
    written.append(_comparison_md(cmp, folder / "comparison.md", top))
    return sorted(written)


def _within_extremes(keyness: pd.DataFrame, n: int) -> pd.DataFrame:
    per = keyness[keyness["within"] != "all"]
    parts = [pd.concat([g.head(n), g.tail(n)]).drop_duplicates()
             for _, g in per.groupby("within", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else per


def _comparison_md(cmp: compare.Comparison, path: Path, top: int) -> Path:
    d = cmp.differences.copy()
    overall = cmp.keyness[cmp.keyness["within"] == "all"]
    note = str(d["inference"].iloc[0]) if len(d) else ""
    lines = [f"# Comparison by {_md_cell(cmp.by)}: A = {_md_cell(cmp.a)}, "
             f"B = {_md_cell(cmp.b)} (scope {cmp.scope})", "",
             f"Groups: {_md_cell(_group_sizes(cmp))}.", "",
             *([f"**{_md_cell(note[:1].upper() + note[1:])}**: the rates and differences describe these "
                "documents; no interval, p-value or star is given.", ""] if note else []),
             "Rates are pooled (sum of counts / sum of tokens x 10,000); difference intervals "
             "are 95% percentile bootstrap (documents, then paragraphs within them), each group "
             "resampled independently; the rate ratio's interval and p come from a count model "
             "(quasi-Poisson or negative binomial, offset log(tokens)), p adjusted across "
             "categories with Benjamini-Hochberg. Keyness: "
             "log-odds ratio with an informative Dirichlet prior (Monroe et al. 2008); positive "
             "z = typical of A.", "", "![differences](differences.png)", "",
             "## Rate differences", "", _md_table(d), "",
             f"## Terms typical of A ({_md_cell(cmp.a)})", "", _md_table(overall.head(top)), "",
             f"## Terms typical of B ({_md_cell(cmp.b)})", "",
             _md_table(overall.tail(top).iloc[::-1]), "",
             "## Within each category: the three terms most typical of A and of B", "",
             _md_table(_within_extremes(cmp.keyness, 3), None), ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path
