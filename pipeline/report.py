"""Report: the comparative report a researcher reads (report.html, report.md, figures, tables).

``write_report(run_dir, settings)`` is called by the engine at the end of every
run (and by ``mobilize report``). It reads the run's tables, computes the
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

import base64
import functools
import hashlib
import html
import io
import logging
import math
import os
import platform
import re
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline import compare
from pipeline.config import Settings
from pipeline.errors import MobilizeError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from pipeline.lexicon import Lexicon

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
#: The CJK font the install brings (the ``mplfonts`` package), never a system font.
FONT_FILE = "NotoSansCJKsc-Regular.otf"
#: KWIC lines shown per category.
KWIC_PER_CATEGORY = 3
KWIC_WIDTH = 24
#: A category is "dominated by one term" when that term holds more than this share of its
#: hits (the same threshold as ``pipeline.validation.DOMINANCE``).
DOMINANCE_SHARE = 0.5
#: Rows of a table shown in report.html / report.md (the CSV and XLSX tables are complete).
TABLE_ROWS = 80
#: Metadata columns compared within one run when they have between 2 and this many values.
MAX_GROUPS = 40
DIMENSIONS = ("feature", "pathway", "challenge", "domain", "frame")
_DIM_ZH = {"feature": "特征 feature", "pathway": "路径 pathway", "challenge": "挑战 challenge",
           "domain": "领域 domain", "frame": "框架 frame"}

#: The discovery section when discovery is off (the default: it costs tens of seconds).
DISCOVERY_OFF = ("Discovery (unsupervised topics beside the dictionary rates, and drift words "
                 "as candidate gaps) is off for this report: it trains Word2Vec and NMF models "
                 "and takes tens of seconds. Turn it on with `mobilize run --discover` or "
                 "`mobilize report --discover` (or `discover = true` in the [run] section of "
                 "config.toml); see docs/discovery.md.")

# How each statistic is computed: printed in the methods appendix of both reports.
METHODS = [
    ("Rates (每万词出现率)",
     "A group's rate is the sum of its documents' counts divided by the sum of their tokens, "
     "times 10,000 (tokens are the exposure; this is not the mean of document rates). "
     "Tokens are the segmenter's tokens containing a letter or digit. Scope `all` is the "
     "whole text; `domain_sentences` only the sentences mentioning a D_social_security term."),
    ("Confidence intervals",
     "Percentile bootstrap over documents: the group's documents are resampled with "
     "replacement ({n_boot} replicates, seed {seed}) and the pooled rate recomputed; the "
     "interval is the 2.5th to 97.5th percentile. Differences between two groups resample "
     "each group independently. A group of one document has a zero-width interval."),
    ("Trends",
     "Mann-Kendall test (two-sided, normal approximation with tie correction) on each "
     "category's yearly pooled rates, over the years that have documents; Theil-Sen slope "
     "in rate per 10k tokens per year; p-values adjusted across categories with "
     "Benjamini-Hochberg; a trend is reported where the adjusted p is below 0.05. Series "
     "with fewer than {min_points} years get no test. Change points: PELT (exact optimal "
     "segmentation, L2 cost, penalty 3, minimum segment 3 years) on the standardised yearly "
     "rates."),
    ("Keyness",
     "Weighted log-odds ratio with an informative Dirichlet prior (Monroe, Colaresi and "
     "Quinn 2008): for each term, delta = log-odds in group A minus log-odds in group B, "
     "each group's words being its tokens, with prior alpha_w = alpha0 x the term's pooled "
     "frequency (both groups' counts over both groups' tokens), alpha0 = {alpha0:g} x the "
     "two groups' tokens (so alpha_w is that share of the term's pooled count); "
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
     "Terms of the lexicon that never match in the corpus; categories in which one term holds "
     "more than {dominance:.0%} of the hits (the category then measures one word)."),
]


# --------------------------------------------------------------------------- data


@dataclass
class Section:
    """One titled part of the report: prose, tables and figures."""

    key: str
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, table)
    figures: list[str] = field(default_factory=list)  # figure names (figures/<name>.png)


@dataclass
class Analysis:
    """Everything the report shows, computed from the run's tables (no I/O)."""

    tables: dict[str, pd.DataFrame]
    notes: dict[str, str]
    labels: dict[str, str]  # category id -> "id 中文名"
    periods: list[compare.Period]


def analyse(run: compare.RunTables, periods: Sequence[compare.Period], *, seed: int,
            n_boot: int = compare.DEFAULT_BOOT, alpha0: float | None = None,
            labels: dict[str, str] | None = None) -> Analysis:
    """The report's tables from a run's tables. Pure; deterministic for a seed."""
    docs = compare.with_periods(run.documents, periods)
    scores, tc = run.scores, run.term_counts
    tables: dict[str, pd.DataFrame] = {}
    notes: dict[str, str] = {}
    # Every rates table groups the same documents: their count matrix is built once per scope.
    matrices = {scope: compare.doc_matrix(docs, scores, scope)
                for scope in ("all", "domain_sentences")}

    def rates(by: str | None, scope: str = "all") -> pd.DataFrame:
        return compare.pooled_rates(docs, scores, by, scope=scope, seed=seed, n_boot=n_boot,
                                    matrix=matrices[scope])

    overall = []
    for scope in ("all", "domain_sentences"):
        r = rates(None, scope)
        r.insert(0, "scope", scope)
        overall.append(r)
    tables["rates_overall"] = pd.concat(overall, ignore_index=True)
    yearly = rates("year")
    tables["rates_by_year"] = yearly
    tables["rates_by_year_domain"] = rates("year", "domain_sentences")
    tr = compare.trends(yearly)
    cp = compare.change_points(yearly)
    tables["trends"] = tr.merge(cp, on=["dimension", "category"], how="left")
    if periods and docs["period"].notna().any():
        tables["rates_by_period"] = rates("period")
        tables["cooccurrence_by_period"] = compare.cooccurrence_by(
            docs, run.cooccurrence, "period", unit="sentence", dimension_b="pathway")
        tables["cooccurrence_challenge_by_period"] = compare.cooccurrence_by(
            docs, run.cooccurrence, "period", unit="sentence", dimension_b="challenge")
    for col in ("corpus", "level", "doc_type", "region"):
        if col in docs.columns:
            values = docs[col].replace("", np.nan).dropna().unique()
            if 2 <= len(values) <= MAX_GROUPS:
                tables[f"rates_by_{col}"] = rates(col)
    tables["terms_by_year"] = compare.term_counts_by(docs, tc, "year")
    if "rates_by_period" in tables:
        tables["terms_by_period"] = compare.term_counts_by(docs, tc, "period")
    # Keyness for the latest change: the last two periods with documents, or else
    # the last two years.
    change = _latest_change(docs)
    if change is not None:
        by, a, b = change
        key = compare.keyness(docs, tc, by, a, b, alpha0=alpha0)
        tables["keyness_change"] = key
        notes["keyness_change"] = f"{by}: A = {a}, B = {b}"
    tables["category_dominance"] = compare.category_dominance(tc)
    return Analysis(tables, notes, labels or {}, list(periods))


def _latest_change(docs: pd.DataFrame) -> tuple[str, str, str] | None:
    if "period" in docs.columns:
        present = [p for p in docs["period"].cat.categories if (docs["period"] == p).any()]
        if len(present) >= 2:
            return "period", str(present[-1]), str(present[-2])
    years = sorted(int(y) for y in docs["year"].dropna().unique())
    if len(years) >= 2:
        return "year", str(years[-1]), str(years[-2])
    return None


# --------------------------------------------------------------------------- figures


_FONT_NAME: str | None = None


def _font_path() -> Path:
    """The Noto Sans CJK SC file of the ``mplfonts`` package, found without importing it
    (its import pulls in matplotlib's font manager)."""
    from importlib.util import find_spec

    spec = find_spec("mplfonts")
    if spec is None or spec.origin is None:  # pragma: no cover - a broken install
        raise FileNotFoundError("the mplfonts package is not installed (pip install mplfonts)")
    return Path(spec.origin).resolve().parent / "fonts" / FONT_FILE


def cjk_font() -> str:
    """Register the CJK font shipped by ``mplfonts`` with matplotlib; return its family name."""
    global _FONT_NAME
    if _FONT_NAME is None:
        from matplotlib import font_manager

        path = _font_path()
        if not path.is_file():  # pragma: no cover - a broken install
            raise FileNotFoundError(f"{path}: the CJK font of the mplfonts package is missing; "
                                    "reinstall it (pip install --force-reinstall mplfonts)")
        font_manager.fontManager.addfont(str(path))
        _FONT_NAME = font_manager.FontProperties(fname=str(path)).get_name()
    return _FONT_NAME


@contextmanager
def _style() -> Iterator[None]:
    import matplotlib

    rc: dict[str, Any] = {"font.family": [cjk_font(), "DejaVu Sans"], "axes.unicode_minus": False,
          "svg.hashsalt": "mobilize", "svg.fonttype": "path", "figure.dpi": 100,
          "savefig.dpi": 100, "font.size": 9, "axes.titlesize": 10,
          "path.simplify": True}
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]
        yield


def new_figure(width: float, height: float) -> Figure:
    """A matplotlib Figure on the Agg canvas (no pyplot, no global state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, folder: Path, name: str) -> tuple[list[Path], bytes]:
    """Write ``name``.png and ``name``.svg (deterministic metadata); return paths and PNG bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    # Two draws in all: the PNG's draw runs the layout engine (constrained layout) once,
    # then the layout is frozen so the SVG's draw reuses it (no separate layout pass).
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    if fig.get_layout_engine() is not None:
        fig.set_layout_engine("none")
    png = buf.getvalue()
    (folder / f"{name}.png").write_bytes(png)
    fig.savefig(folder / f"{name}.svg", format="svg",
                metadata={"Date": None, "Creator": None})
    return [folder / f"{name}.png", folder / f"{name}.svg"], png


#: Bump to drop every cached figure (the cache key also holds this file's code).
FIGURE_CACHE_VERSION = 1


@functools.cache
def _version(dist: str) -> str:
    """``importlib.metadata.version``, remembered: the figure and workbook keys and the
    methods appendix ask for the same few, and each answer parses the package's metadata.
    (A package that is not installed raises every time, as there.)"""
    from importlib.metadata import version

    return version(dist)


def _figure_key(name: str, inputs: Sequence[Any]) -> str:
    """The figure cache key: this module's source (the figure code and style), the
    matplotlib version, the CJK font file, the figure's name and its inputs (tables as
    CSV with their dtypes). Same key = same PNG and SVG bytes (drawing is deterministic)."""
    import json

    h = hashlib.sha256()
    for part in (f"mobilize-figure-{FIGURE_CACHE_VERSION}", _version("matplotlib"),
                 _version("mplfonts"), name):
        h.update(part.encode() + b"\0")
    h.update(Path(__file__).read_bytes())
    for value in inputs:
        if isinstance(value, pd.DataFrame):
            # dtypes by repr: a categorical's categories and order are part of the key.
            h.update(repr([(str(c), repr(d)) for c, d in value.dtypes.items()]).encode())
            h.update(value.to_csv(index=True, lineterminator="\n").encode())
        elif isinstance(value, dict):
            h.update(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode())
        else:
            h.update(json.dumps(value, ensure_ascii=False, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _figure_cache(cache: Path | None, key: str) -> Path | None:
    return cache / "report-figures" / key[:40] if cache is not None else None


def _cached_figure(cache: Path | None, key: str) -> tuple[bytes, bytes] | None:
    """(PNG, SVG) bytes of a figure drawn before with the same key, or None."""
    base = _figure_cache(cache, key)
    if base is None:
        return None
    try:
        return base.with_suffix(".png").read_bytes(), base.with_suffix(".svg").read_bytes()
    except OSError:
        return None


def _put_figure(folder: Path, name: str, png: bytes, svg: bytes) -> tuple[list[Path], bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.png").write_bytes(png)
    (folder / f"{name}.svg").write_bytes(svg)
    return [folder / f"{name}.png", folder / f"{name}.svg"], png


def _cache_figure(cache: Path | None, key: str, paths: Sequence[Path]) -> None:
    """Keep a drawn figure's PNG and SVG in ``<cache>/report-figures/`` (atomic writes; the
    SVG last, so a PNG without its SVG is never taken for a hit)."""
    base = _figure_cache(cache, key)
    if base is None:
        return
    for src in sorted(paths, key=lambda p: p.suffix != ".png"):  # .png first
        if not _cache_store(base.with_suffix(src.suffix), src.read_bytes(), "figure"):
            return


def _cache_store(dst: Path, data: bytes, what: str) -> bool:
    """Keep ``data`` as the report cache's file ``dst`` (written to a temporary name, then
    renamed, so a reader never sees half a file); False when the cache cannot be written,
    which only costs time."""
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, dst)
    except OSError as exc:
        log.info("report: cannot cache the %s %s: %s", what, dst, exc)
        return False
    return True


def _label(labels: dict[str, str], cat: str) -> str:
    return labels.get(cat, cat)


def _line_figure(table: pd.DataFrame, x: str, labels: dict[str, str], title: str) -> Figure:
    dims = [d for d in DIMENSIONS if d in set(table["dimension"])]
    fig = new_figure(10, 2.6 * max(1, len(dims)))
    # One shared year axis: tick labels only under the last panel (fewer texts to lay out
    # and draw twice, PNG and SVG).
    axes = fig.subplots(max(1, len(dims)), 1, squeeze=False, sharex=True)[:, 0]
    for ax, dim in zip(axes, dims):
        sub = table[table["dimension"] == dim]
        for cat, g in sub.groupby("category", sort=True):
            g = g[g["tokens"] > 0].sort_values(x)
            # Years without documents stay gaps: the line does not bridge them.
            g = g.set_index(g[x].astype(int)).reindex(
                range(int(g[x].min()), int(g[x].max()) + 1)) if len(g) else g
            xs = g.index.to_numpy(dtype=float)
            ax.plot(xs, g["rate_per_10k"].astype(float), marker="o", markersize=2.5,
                    linewidth=1.2, label=_label(labels, str(cat)))
            ax.fill_between(xs, g["ci_low"].astype(float), g["ci_high"].astype(float),
                            alpha=0.15, linewidth=0)
        ax.set_title(f"{_DIM_ZH.get(dim, dim)}：{title}")
        ax.set_ylabel("每万词 per 10k tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", frameon=False, ncols=2)
    axes[-1].set_xlabel("年份 year（空缺 = 该年无文件 gap = no document that year）")
    return fig


def _heatmap(ax: Any, matrix: pd.DataFrame, title: str, fmt: str = "{:.1f}",
             vmax: float | None = None, ylabels: bool = True) -> Any:
    data = matrix.to_numpy(dtype=float)
    top = vmax if vmax is not None else (
        float(np.nanmax(data)) if data.size and not np.all(np.isnan(data)) else 0.0)
    im = ax.imshow(np.nan_to_num(data), aspect="auto", cmap="YlOrRd", vmin=0,
                   vmax=top if top > 0 else 1)
    ax.set_xticks(range(matrix.shape[1]), [str(c) for c in matrix.columns], rotation=35,
                  ha="right", fontsize=7)
    ax.set_yticks(range(matrix.shape[0]), [str(i) for i in matrix.index] if ylabels else [],
                  fontsize=7)
    for (i, j), v in np.ndenumerate(data):
        if not math.isnan(v) and v != 0:
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=6,
                    color="white" if top and v > top * 0.6 else "black")
    ax.set_title(title)
    return im


def _category_order(cats: Sequence[str], dims: dict[str, str]) -> list[str]:
    rank = {d: i for i, d in enumerate(DIMENSIONS)}
    return sorted(cats, key=lambda c: (rank.get(dims.get(c, ""), 99), c))


def _group_heatmap(table: pd.DataFrame, by: str, labels: dict[str, str], title: str) -> Figure:
    t = table[table["dimension"] != "domain"]
    dims = dict(zip(t["category"], t["dimension"]))
    cats = _category_order(list(dict.fromkeys(t["category"])), dims)
    order = list(dict.fromkeys(t[by]))
    matrix = (t.pivot_table(index="category", columns=by, values="rate_per_10k",
                            aggfunc="first", sort=False, observed=True)
              .reindex(index=cats, columns=order))
    matrix.index = [_label(labels, c) for c in matrix.index]
    fig = new_figure(max(6.0, 3.0 + 0.55 * len(order)), 0.32 * len(matrix) + 2.4)
    ax = fig.subplots()
    im = _heatmap(ax, matrix, title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="每万词 per 10k tokens")
    return fig


def _bind_heatmap(table: pd.DataFrame, col: str,
                  labels: dict[str, str]) -> Callable[[], Figure | None]:
    return lambda: _group_heatmap(table, col, labels, f"按 {col} 每万词出现率")


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


def _short(cat: str) -> str:
    """``F1_population`` -> ``F1``: the code the codebook uses."""
    return cat.split("_", 1)[0]


def _cooccurrence_figure(table: pd.DataFrame, periods: Sequence[str],
                         labels: dict[str, str]) -> Figure:
    present = [p for p in periods if (table["period"] == p).any()]
    cols = min(3, max(1, len(present)))
    rows = max(1, math.ceil(len(present) / cols))
    fig = new_figure(3.6 * cols + 0.8, 2.9 * rows + 1.6)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    feats = sorted(set(table["category_a"]))
    paths = sorted(set(table["category_b"]))
    vmax = float(table["per_1k_units"].max()) if len(table) else 1.0
    im = None
    for k, (ax, p) in enumerate(zip(axes, present)):
        sub = table[table["period"] == p]
        m = (sub.pivot_table(index="category_a", columns="category_b", values="per_1k_units",
                             aggfunc="sum", observed=True)
             .reindex(index=feats, columns=paths))
        m.index = [_short(c) for c in m.index]
        m.columns = [_short(c) for c in m.columns]
        im = _heatmap(ax, m, str(p), fmt="{:.2f}", vmax=vmax, ylabels=k % cols == 0)
        ax.title.set_fontsize(8)
    for ax in axes[len(present):]:
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.6, label="每千句 per 1,000 sentences")
    key = "；".join(f"{_short(c)} = {_label(labels, c)}" for c in feats + paths)
    fig.suptitle("特征 × 路径 共现（每千句）feature × pathway co-occurrence per 1,000 sentences")
    fig.supxlabel(_wrap(key, 110), fontsize=6)
    return fig


def _wrap(text: str, width: int) -> str:
    lines, line = [], ""
    for part in text.split("；"):
        if line and len(line) + len(part) > width:
            lines.append(line)
            line = part
        else:
            line = f"{line}；{part}" if line else part
    return "\n".join(lines + [line])


def _topic_figure(prev: pd.DataFrame, names: dict[str, str] | None = None) -> Figure | None:
    xcol = next((c for c in ("year", "period") if c in prev.columns), None)
    ycol = next((c for c in ("prevalence", "share", "weight") if c in prev.columns), None)
    tcol = next((c for c in ("topic", "topic_id", "label") if c in prev.columns), None)
    if not (xcol and ycol and tcol):
        return None
    fig = new_figure(10, 3.2)
    ax = fig.subplots()
    for topic, g in prev.groupby(tcol, sort=True):
        g = g.sort_values(xcol)
        ax.plot(g[xcol].astype(str) if xcol == "period" else g[xcol], g[ycol], linewidth=1.2,
                label=(names or {}).get(str(topic), str(topic))[:30])
    ax.set_title("主题比重 topic prevalence")
    ax.legend(fontsize=6, ncols=3, frameon=False)
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- KWIC, coverage


def _kwic_and_coverage(run: compare.RunTables, lexicon: Lexicon | None, settings: Settings,
                       ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """KWIC examples per category (``pipeline.validation.kwic``) and coverage diagnostics
    (``pipeline.validation.coverage``) over the corpus re-read from run.json's root.

    Returns (kwic, coverage per term, note); a table is None, and the note says why,
    when the corpus or the lexicon cannot be read.
    """
    if lexicon is None:
        return None, None, "the lexicon could not be loaded"
    corpus = _part(run.manifest, "corpus")
    root = Path(str(corpus["root"])) if corpus.get("root") else None
    if root is None or not root.is_dir():
        return None, None, f"the corpus folder {root} is not available"
    from pipeline import validation
    from pipeline.ingest import load_corpus
    from pipeline.match import Matcher

    params = _part(run.manifest, "parameters")
    simplified = bool(params.get("to_simplified", settings.to_simplified))
    # (warn=False: the run's own scan has warned; the report says when years are missing)
    loaded = load_corpus(root, name=str(corpus.get("name") or root.name),
                         to_simplified=simplified, warn=False).documents
    docs = {d.doc_id: d for d in loaded}
    ids = [i for i in run.documents["doc_id"] if i in docs]
    matcher = Matcher(lexicon)
    cov = validation.coverage([docs[i] for i in ids], lexicon, matcher)
    terms = pd.DataFrame([asdict(t) for t in cov.terms],
                         columns=["dimension", "category", "term", "pattern", "hits", "documents"])
    titles = dict(zip(run.documents["doc_id"], run.documents.get("title", run.documents["doc_id"])))
    years = dict(zip(run.documents["doc_id"], run.documents["year"]))
    tc = run.term_counts
    picked = []
    for cat in sorted(lexicon.categories, key=lambda c: (c.dimension, c.id)):
        with_hits = sorted(set(tc.loc[tc["category"] == cat.id, "doc_id"]) & set(ids),
                           key=lambda i: (_year_key(years.get(i)), i))
        n = len(with_hits)
        # Spread the examples over the corpus: evenly spaced documents (by year), the
        # first counted hit in each.
        chosen = sorted({round(k * (n - 1) / max(1, KWIC_PER_CATEGORY - 1))
                         for k in range(min(KWIC_PER_CATEGORY, n))})
        for k in chosen:
            doc = docs[with_hits[k]]
            for line in validation.kwic([doc], matcher, category=cat.id, width=KWIC_WIDTH,
                                        limit=1):
                picked.append({"dimension": line.dimension, "category": line.category,
                               "doc_id": line.doc_id, "year": years.get(line.doc_id),
                               "title": str(titles.get(line.doc_id, "")), "left": line.left,
                               "term": line.match, "right": line.right,
                               "lexicon_term": line.term})
    kwic = pd.DataFrame(picked, columns=["dimension", "category", "doc_id", "year", "title",
                                         "left", "term", "right", "lexicon_term"])
    return kwic, terms, ""


def _part(manifest: dict[str, Any], key: str) -> dict[str, Any]:
    """One section of run.json as a dict ({} when absent or not a mapping)."""
    value = manifest.get(key)
    return value if isinstance(value, dict) else {}


def _year_key(year: Any) -> int:
    try:
        return int(year)
    except (TypeError, ValueError):
        return 10**6


def _load_lexicon(run: compare.RunTables, settings: Settings,
                  loaded: Lexicon | None = None) -> Lexicon | None:
    """The run's lexicon: ``loaded`` when it is the one run.json names (the engine passes
    the lexicon it ran with, so a run parses the file once), else read from its path."""
    from pipeline.lexicon import load_lexicon

    lex = _part(run.manifest, "lexicon")
    if loaded is not None and lex.get("hash") == loaded.hash:
        return loaded
    candidates = []
    if lex and lex.get("path"):
        candidates.append(Path(str(lex["path"])))
    candidates.append(settings.lexicon)
    for path in candidates:
        if path.is_file():
            try:
                loaded = load_lexicon(path)
            except Exception as exc:  # noqa: BLE001 - the report still renders without it
                log.warning("report: cannot load the lexicon %s: %s", path, exc)
                continue
            if lex.get("hash") and loaded.hash != lex["hash"] and \
                    not str(lex["hash"]).startswith(loaded.short_hash):
                log.warning("report: the lexicon at %s has changed since the run", path)
            return loaded
    return None


# --------------------------------------------------------------------------- writing


def _fmt(value: Any) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float | np.floating):
        value = float(value)
        if math.isnan(value):
            return ""
        if value != 0 and abs(value) < 0.001:
            return f"{value:.2e}"
        return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
    return str(value)


def _rows(df: pd.DataFrame, limit: int | None = None) -> list[list[str]]:
    part = df if limit is None else df.head(limit)
    return [[_fmt(v) for v in row] for row in part.itertuples(index=False, name=None)]


def _md_cell(text: str) -> str:
    return html.escape(text, quote=False).replace("|", "\\|").replace("\n", " ")


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
        write_csv(df, path)
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
    try:
        cached = stored.read_bytes() if stored is not None else None
    except OSError:  # not cached yet (or unreadable): built below
        cached = None
    if cached is not None:
        path.write_bytes(cached)
        return
    _build_xlsx(sheets, path)
    if stored is not None:
        _cache_store(stored, path.read_bytes(), "workbook")


def _xlsx_rows(df: pd.DataFrame) -> list[list[Any]]:
    """A table as the workbook's cells: the column names, then each row's values."""
    return [[str(c) for c in df.columns]] + [[_xlsx_value(v) for v in row]
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
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@"):
        return "'" + v  # never a formula: cells hold text from the corpus
    return v if isinstance(v, int | str | bool) else str(v)


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


def _labels(lexicon: Lexicon | None) -> dict[str, str]:
    if lexicon is None:
        return {}
    return {c.id: f"{c.id} {c.name_zh}".strip() for c in lexicon.categories}


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
        else:
            rows.append((name, str(value)))
    return rows


def write_report(run_dir: Path, settings: Settings, *,
                 lexicon: Lexicon | None = None) -> list[Path]:
    """Write the report files for the tables in ``run_dir`` into ``run_dir``; return them.

    Called by the engine inside the temporary run folder, before the atomic swap, with the
    ``lexicon`` the run used (otherwise it is read from the path run.json gives).
    """
    run_dir = Path(run_dir)
    clock = _Clock()
    run = compare.read_run(run_dir)
    periods = _periods(settings)
    lexicon = _load_lexicon(run, settings, lexicon)
    clock.lap("read")
    analysis = analyse(run, periods, seed=settings.seed, labels=_labels(lexicon))
    clock.lap("analysis")
    kwic, term_coverage, kwic_note = _kwic_and_coverage(run, lexicon, settings)
    clock.lap("kwic and coverage")
    discovery = _discovery(run_dir, settings) if settings.discover else {"off": DISCOVERY_OFF}
    clock.lap("discovery")
    try:
        return render(run_dir, run, analysis, settings, kwic=kwic, term_coverage=term_coverage,
                      kwic_note=kwic_note, discovery=discovery)
    finally:
        clock.lap("figures, tables, html, md")


def _periods(settings: Settings) -> list[compare.Period]:
    """The periods of ``settings.periods``; none (with a warning) when the default file is
    not installed. A periods file the user named must exist."""
    from pipeline.config import DEFAULT_PERIODS

    if settings.periods is None:
        return []
    if Path(settings.periods) == DEFAULT_PERIODS and not DEFAULT_PERIODS.is_file():
        log.warning("report: no periods file at %s: the report has no per-period sections",
                    DEFAULT_PERIODS)
        return []
    return compare.load_periods(settings.periods)


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


def _discovery(run_dir: Path, settings: Settings) -> dict[str, Any]:
    from pipeline import discover

    try:
        return dict(discover.discovery_tables(run_dir, settings))
    except Exception as exc:  # noqa: BLE001 - shown in the report, not hidden
        log.warning("report: discovery tables failed: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}


def render(run_dir: Path, run: compare.RunTables, analysis: Analysis, settings: Settings, *,
           kwic: pd.DataFrame | None, term_coverage: pd.DataFrame | None, kwic_note: str,
           discovery: dict[str, Any]) -> list[Path]:
    """Write figures, tables, report.html and report.md into ``run_dir``."""
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
    s.text.append("Pooled rate per 10,000 tokens for each category, over the whole text and "
                  "inside social-security sentences only (sentences mentioning a "
                  "D_social_security term), with 95% bootstrap intervals over documents.")
    ov = t["rates_overall"].copy()
    ov.insert(2, "label", [_label(labels, c) for c in ov["category"]])
    s.tables.append(("rates_overall", ov.drop(columns=["category"])))
    sections.append(s)

    # What the scores mean (pipeline/report_meaning.py) ---------------------------------------
    from pipeline import report_meaning

    mp = report_meaning.meaning_parts(compare.with_periods(docs, analysis.periods), run.scores,
                                      run.term_counts, seed=settings.seed)
    sections.append(Section(report_meaning.KEY, report_meaning.TITLE, mp.text, mp.tables))
    t.update(mp.files)

    # Time --------------------------------------------------------------------
    s = Section("time", "时间 Over time: rates per year")
    if len(years) >= 2:
        f = figure("rates_by_year", lambda: _line_figure(t["rates_by_year"], "year", labels,
                                                         "每万词出现率（全文）"),
                   t["rates_by_year"], labels)
        s.figures += [f] if f else []
        dom = t["rates_by_year_domain"]
        if dom.loc[dom["tokens"] > 0, "year"].nunique() >= 2:
            f = figure("rates_by_year_domain", lambda: _line_figure(
                dom, "year", labels, "社会保障语句内的出现率"), dom, labels)
            s.figures += [f] if f else []
    elif not len(docs):
        s.text.append("The corpus has no documents: no time series.")
    elif not years:  # (not "one year only": that misled readers of corpora without dates)
        s.text.append("No document has a year (no 4-digit year in the file names and no dates "
                      "from a metadata.csv): no time series. Add a metadata.csv with a date "
                      "column.")
    else:
        s.text.append("The corpus has documents from one year only: no time series.")
    undated = int(docs["year"].isna().sum())
    if years and undated:
        s.text.append(f"{undated} document(s) without a year are left out of the rates per "
                      "year (and of trends and periods); give them a date in metadata.csv.")
    s.tables.append(("rate per 10k tokens by year (with documents and tokens; intervals "
                     "in tables/rates_by_year.csv)", _wide(t["rates_by_year"], "year")))
    sections.append(s)

    s = Section("trends", "趋势 Trends: Mann-Kendall and Theil-Sen per category")
    tr = t["trends"]
    if (tr["note"] != "").all() and (len(tr) or len(years) < compare.MIN_TREND_POINTS):
        s.text.append(f"Too few years with documents ({len(years)}, fewer than "
                      f"{compare.MIN_TREND_POINTS}) for a trend test: no test is printed. "
                      "Compare the years or periods below instead.")
        s.tables.append(("trends", tr[["dimension", "category", "years", "note"]]))
    else:
        s.text.append("Increasing / decreasing where the Benjamini-Hochberg adjusted p is "
                      "below 0.05; slope in rate per 10k tokens per year (Theil-Sen); "
                      "change years from PELT.")
        s.tables.append(("trends", tr))
    sections.append(s)

    if "rates_by_period" in t:
        s = Section("periods", "时期 Periods")
        s.text.append("Periods from " + str(settings.periods) + ": " + "; ".join(
            f"{p.name} ({p.start}–{p.end if p.end is not None else ''})"
            for p in analysis.periods) + ".")
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
        s.text.append(f"Lexicon terms that never match in this corpus: {len(never)} of "
                      f"{len(term_coverage)} (full list with hits and documents per term: "
                      "tables/term_coverage.csv).")
        s.tables.append(("terms that never match", never))
    else:
        s.text.append(f"No per-term coverage: {kwic_note}.")
    sections.append(s)

    # Methods ------------------------------------------------------------------
    methods = [(title, body.format(n_boot=compare.DEFAULT_BOOT, seed=settings.seed,
                                   min_points=compare.MIN_TREND_POINTS,
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
        "periods_file": str(settings.periods) if settings.periods else "",
        "limit": TABLE_ROWS,
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
    md_path.write_text(_markdown(summary, sections, methods, manifest_rows, doc_table, rows),
                       encoding="utf-8")
    written.append(md_path)
    return sorted(written)


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
    key = hashlib.sha256(f"{FONT_FILE}:{path.stat().st_size}:{chars}".encode()).hexdigest()
    cached = cache / "report-fonts" / f"{key[:32]}.otf" if cache is not None else None
    if cached is not None and cached.is_file():
        return base64.b64encode(cached.read_bytes()).decode("ascii")
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


def _markdown(summary: dict[str, Any], sections: list[Section],
              methods: list[tuple[str, str]], manifest_rows: list[tuple[str, str]],
              doc_table: pd.DataFrame,
              rows: Callable[[pd.DataFrame, int | None], list[list[str]]] = _rows) -> str:
    out = [f"# mobilize report: {_md_cell(summary['corpus'])}", ""]
    out += [f"- **{k}**: {_md_cell(str(v))}" for k, v in summary.items()]
    for s in sections:
        out += ["", f"## {s.title}", ""]
        out += [_md_cell(p) + "\n" for p in s.text]
        for name in s.figures:
            out += [f"![{name}](figures/{name}.png)", ""]
        for caption, df in s.tables:
            out += [f"**{_md_cell(caption)}**", "", _md_table(df, TABLE_ROWS, rows), ""]
    out += ["", "## 方法 Methods appendix", ""]
    for title, body in methods:
        out += [f"**{title}.** {_md_cell(body)}", ""]
    out += ["### Run manifest (run.json)", "", "| key | value |", "|---|---|"]
    out += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in manifest_rows]
    out += ["", "### Documents and content hashes", "", _md_table(doc_table, None, rows), ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- comparisons


def load_runs(corpora: Sequence[Path], runs: Sequence[Path], settings: Settings,
              progress: Callable[[str], None] | None = None,
              names: Sequence[str] | None = None) -> compare.RunTables:
    """The run tables to compare: existing run folders (``runs``), and for each corpus
    folder a local engine run (cached, no report) into ``<settings.out>/compare/runs/<name>``
    (``names``: the corpus names, as ``registry.resolve_corpus`` gives them; default the
    folder names). Several runs are combined (doc ids prefixed with the corpus name)."""
    from pipeline import engine

    tables = [compare.read_run(Path(r)) for r in runs]
    for i, root in enumerate(corpora):
        root = Path(root).resolve()
        name = names[i] if names is not None else root.name
        if progress:
            progress(name)
        s = settings.with_(corpus=root, corpus_name=name, out=Path(settings.out) / "compare"
                           / "runs", engine="local", report=False)
        result = engine.run_local(s)
        tables.append(compare.read_run(result.run_dir))
    if not tables:
        raise MobilizeError("nothing to compare", fix="Give --corpus PATH or --run DIR "
                                                              "(once for a split by a column, "
                                                              "twice for two corpora).")
    return compare.combine_runs(tables)


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


def _forest_figure(cmp: compare.Comparison) -> Figure:
    d = cmp.differences[cmp.differences["dimension"] != "domain"]
    dims = dict(zip(d["category"], d["dimension"]))
    order = _category_order(list(d["category"]), dims)[::-1]
    d = d.set_index("category").loc[order]
    fig = new_figure(7.5, 0.3 * len(d) + 1.6)
    ax = fig.subplots()
    y = np.arange(len(d))
    lo = (d["difference"] - d["ci_low"]).clip(lower=0).to_numpy()
    hi = (d["ci_high"] - d["difference"]).clip(lower=0).to_numpy()
    ax.errorbar(d["difference"], y, xerr=np.nan_to_num(np.vstack([lo, hi])), fmt="o",
                markersize=4, capsize=2, color="#b22222")
    ax.axvline(0, color="#666", linewidth=0.8)
    ax.set_yticks(y, list(d.index), fontsize=7)
    ax.set_xlabel(f"每万词差值 A − B (per 10k tokens), 95% CI；A = {cmp.a}, B = {cmp.b}")
    ax.set_title(f"比较 comparison by {cmp.by}")
    ax.grid(alpha=0.3, axis="x")
    return fig


def _within_extremes(keyness: pd.DataFrame, n: int) -> pd.DataFrame:
    per = keyness[keyness["within"] != "all"]
    parts = [pd.concat([g.head(n), g.tail(n)]).drop_duplicates()
             for _, g in per.groupby("within", sort=True)]
    return pd.concat(parts, ignore_index=True) if parts else per


def _comparison_md(cmp: compare.Comparison, path: Path, top: int) -> Path:
    d = cmp.differences.copy()
    d["ci_excludes_0"] = (d["ci_low"] > 0) | (d["ci_high"] < 0)
    overall = cmp.keyness[cmp.keyness["within"] == "all"]
    lines = [f"# Comparison by {_md_cell(cmp.by)}: A = {_md_cell(cmp.a)}, "
             f"B = {_md_cell(cmp.b)} (scope {cmp.scope})", "",
             "Rates are pooled (sum of counts / sum of tokens x 10,000); intervals are 95% "
             "percentile bootstrap over documents, each group resampled independently. Keyness: "
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


__all__ = ["Analysis", "Section", "analyse", "cjk_font", "load_runs", "new_figure", "render",
           "save_figure", "write_comparison", "write_report"]
