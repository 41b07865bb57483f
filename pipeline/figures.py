"""The report's figures: matplotlib on the Agg canvas, the CJK font, the figure cache.
Moved out of ``pipeline.report``, which keeps the public entry points."""

from __future__ import annotations

import functools
import hashlib
import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline import cache as _cache
from pipeline import compare, sanitize

if TYPE_CHECKING:
    from matplotlib.figure import Figure


#: The CJK font the install brings (the ``mplfonts`` package), never a system font.
FONT_FILE = "NotoSansCJKsc-Regular.otf"


DIMENSIONS = ("feature", "pathway", "challenge", "domain", "frame")


_DIM_ZH = {"feature": "特征 feature", "pathway": "路径 pathway", "challenge": "挑战 challenge",
           "domain": "领域 domain", "frame": "框架 frame"}


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
          "path.simplify": True,
          "text.parse_math": False}  # ($ in a region or title is drawn as it is, not as TeX)
    with matplotlib.rc_context(rc):  # type: ignore[arg-type]
        yield


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A matplotlib Figure on the Agg canvas (no pyplot, no global state); ``layout=None``
    for a figure that places its axes itself."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
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
    svg = io.BytesIO()
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    (folder / f"{name}.svg").write_bytes(sanitize.xml_bytes(svg.getvalue()))  # valid XML
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
    png, svg = _cache.read(base.with_suffix(".png")), _cache.read(base.with_suffix(".svg"))
    return (png, svg) if png is not None and svg is not None else None


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
    """Keep ``data`` as the report cache's entry ``dst`` (``pipeline.cache``: checksummed,
    written atomically); False when the cache cannot be written, which only costs time."""
    return _cache.write(dst, data)


def _label(labels: dict[str, str], cat: str) -> str:
    return labels.get(cat, cat)


def _line_figure(table: pd.DataFrame, x: str, labels: dict[str, str], title: str,
                 breaks: Sequence[int] = ()) -> Figure:
    """Rates per year, one panel per dimension. Years without documents are gaps, and at each
    year of ``breaks`` (the set of units changes) the line stops and a dashed line marks it."""
    from matplotlib.ticker import MaxNLocator

    dims = [d for d in DIMENSIONS if d in set(table["dimension"])]
    fig = new_figure(10, 2.6 * max(1, len(dims)) + 0.3)
    # One shared year axis: tick labels only under the last panel (fewer texts to lay out
    # and draw twice, PNG and SVG).
    axes = fig.subplots(max(1, len(dims)), 1, squeeze=False, sharex=True)[:, 0]
    cuts = sorted(int(b) for b in breaks)
    for ax, dim in zip(axes, dims):
        sub = table[table["dimension"] == dim]
        for k, (cat, g) in enumerate(sub.groupby("category", sort=True)):
            g = g[g["tokens"] > 0].sort_values(x)
            # Years without documents stay gaps: the line does not bridge them.
            g = g.set_index(g[x].astype(int)).reindex(
                range(int(g[x].min()), int(g[x].max()) + 1)) if len(g) else g
            xs = g.index.to_numpy(dtype=float)
            segment = np.searchsorted(cuts, xs, side="right")  # (a new piece at each cut)
            color = f"C{k % 10}"
            for j, seg in enumerate(np.unique(segment)):
                part = g[segment == seg]
                px = part.index.to_numpy(dtype=float)
                ax.plot(px, part["rate_per_10k"].astype(float), marker="o", markersize=2.5,
                        linewidth=1.2, color=color,
                        label=_label(labels, str(cat)) if j == 0 else None)
                ax.fill_between(px, part["ci_low"].astype(float),
                                part["ci_high"].astype(float), alpha=0.15, linewidth=0,
                                color=color)
        for c in cuts:
            ax.axvline(c - 0.5, color="#555", linestyle="--", linewidth=0.9)
        ax.set_title(f"{_DIM_ZH.get(dim, dim)}：{title}")
        ax.set_ylabel("每万词 per 10k tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", frameon=False, ncols=2)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if cuts:
        axes[0].annotate("虚线 = 文件组成变化 dashed = the set of units changes (the line breaks)",
                         xy=(0.99, 1.02), xycoords="axes fraction", ha="right", va="bottom",
                         fontsize=7, color="#555")
    axes[-1].set_xlabel("年份 year（空缺 = 该年无文件 gap = no document that year）")
    return fig


def _heatmap(ax: Any, matrix: pd.DataFrame, title: str, fmt: str = "{:.1f}",
             vmax: float | None = None, ylabels: bool = True,
             counts: np.ndarray | None = None) -> Any:
    """``matrix`` as a heatmap with each cell's value (and, with ``counts``, its count in
    brackets: a rate of 2.5 from 1 sentence reads differently from one of 40)."""
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
        if counts is not None:
            text = f"{fmt.format(0 if math.isnan(v) else v)}\n({int(counts[i, j])})"
        elif not math.isnan(v) and v != 0:
            text = fmt.format(v)
        else:
            continue
        ax.text(j, i, text, ha="center", va="center", fontsize=6 if counts is None else 5.5,
                color="white" if top and v > top * 0.6 else "black")
    ax.set_title(title)
    return im


def _category_order(cats: Sequence[str], dims: dict[str, str]) -> list[str]:
    rank = {d: i for i, d in enumerate(DIMENSIONS)}
    return sorted(cats, key=lambda c: (rank.get(dims.get(c, ""), 99), c))


def _group_heatmap(table: pd.DataFrame, by: str, labels: dict[str, str], title: str) -> Figure:
    """Rates per group and category. Up to 12 groups: groups as columns, in their order.
    More (regions): groups as rows, sorted by their mean rate over the categories shown
    (highest first), categories as columns by code, so the page width holds it."""
    t = table[table["dimension"] != "domain"]
    dims = dict(zip(t["category"], t["dimension"]))
    cats = _category_order(list(dict.fromkeys(t["category"])), dims)
    order = list(dict.fromkeys(t[by]))
    matrix = (t.pivot_table(index="category", columns=by, values="rate_per_10k",
                            aggfunc="first", sort=False, observed=True)
              .reindex(index=cats, columns=order))
    n = t.groupby(by, sort=False, observed=True)["documents"].first()
    if len(order) > 12:
        wide = matrix.T
        wide = wide.loc[wide.mean(axis=1).sort_values(ascending=False, kind="mergesort").index]
        wide.index = [f"{v} (n={int(n.get(v, 0))})" for v in wide.index]
        wide.columns = [_short(c) for c in wide.columns]
        fig = new_figure(7.5, 0.24 * len(wide) + 2.2)
        ax = fig.subplots()
        im = _heatmap(ax, wide, title + "（按平均出现率排序 sorted by mean rate）")
        fig.colorbar(im, ax=ax, shrink=0.6, label="每万词 per 10k tokens")
        key = "；".join(f"{_short(c)} = {_label(labels, c)}" for c in cats)
        fig.supxlabel(_wrap(key, 90), fontsize=6)
        return fig
    matrix.index = [_label(labels, c) for c in matrix.index]
    matrix.columns = [f"{v}\n(n={int(n.get(v, 0))})" for v in order]
    fig = new_figure(max(6.0, 3.0 + 0.55 * len(order)), 0.32 * len(matrix) + 2.6)
    ax = fig.subplots()
    im = _heatmap(ax, matrix, title)
    fig.colorbar(im, ax=ax, shrink=0.8, label="每万词 per 10k tokens")
    return fig


def _bind_heatmap(table: pd.DataFrame, col: str,
                  labels: dict[str, str]) -> Callable[[], Figure | None]:
    return lambda: _group_heatmap(table, col, labels, f"按 {col} 每万词出现率")


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
        n = (sub.pivot_table(index="category_a", columns="category_b", values="count",
                             aggfunc="sum", observed=True)
             .reindex(index=feats, columns=paths).fillna(0))
        m.index = [_short(c) for c in m.index]
        m.columns = [_short(c) for c in m.columns]
        units = int(sub["units"].max()) if len(sub) and sub["units"].notna().any() else 0
        im = _heatmap(ax, m, f"{p}\n({units:,} sentences)", fmt="{:.2f}", vmax=vmax,
                      ylabels=k % cols == 0, counts=n.to_numpy(dtype=float))
        ax.title.set_fontsize(8)
    for ax in axes[len(present):]:
        ax.set_axis_off()
    if im is not None:
        fig.colorbar(im, ax=list(axes), shrink=0.6, label="每千句 per 1,000 sentences")
    key = "；".join(f"{_short(c)} = {_label(labels, c)}" for c in feats + paths)
    fig.suptitle("特征 × 路径 共现（每千句，括号内为句数）\nfeature × pathway co-occurrence per "
                 "1,000 sentences (sentences in brackets)")
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
    from matplotlib.ticker import MaxNLocator

    fig = new_figure(10, 3.4)
    ax = fig.subplots()
    for topic, g in prev.groupby(tcol, sort=True):
        g = g.sort_values(xcol)
        if xcol == "year" and len(g):  # years without documents stay gaps
            g = g.set_index(g[xcol].astype(int)).reindex(
                range(int(g[xcol].min()), int(g[xcol].max()) + 1))
            xs: Any = g.index.to_numpy(dtype=float)
        else:
            xs = g[xcol].astype(str)
        ax.plot(xs, g[ycol].astype(float), linewidth=1.2, marker="o", markersize=2,
                label=(names or {}).get(str(topic), str(topic))[:30])
    if xcol == "year":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("主题比重 topic prevalence")
    ax.legend(fontsize=6, ncols=3, frameon=False)
    ax.grid(alpha=0.3)
    return fig


def _timeline_figure(matrix: pd.DataFrame, title: str) -> Figure | None:
    """A category's top terms by year (``report_timelines.top_terms_by_year``): one row per
    term, one column per year on a true time axis, colour = rate per 10k tokens (white: no
    hit; grey: no document that year). No numbers in the cells: a heatmap of 12 x 70 cells
    reads by colour, and the table beside it gives the years. Fixed margins instead of the
    layout engine (the left one from the longest term label): the report draws one such
    figure per category, and the layout engine's passes were most of each draw."""
    if matrix is None or matrix.empty:
        return None
    import matplotlib as mpl
    from matplotlib.colors import Normalize

    data = matrix.to_numpy(dtype=float)
    years = [int(y) for y in matrix.columns]
    labels = [str(i) for i in matrix.index]
    width, height = 8.0, 0.2 * len(matrix) + 1.25
    fig = new_figure(width, height, layout=None)
    # a CJK character at 7 pt is about 7/72 inch wide, a Latin one about half of that
    longest = max(sum(1.0 if ord(ch) > 0x2E80 else 0.55 for ch in label) for label in labels)
    left = min(0.5, (longest * 7 / 72 + 0.15) / width)
    fig.subplots_adjust(left=left, right=0.9, top=1 - 0.35 / height, bottom=0.5 / height)
    ax = fig.add_subplot()
    cax = fig.add_axes((0.915, 0.5 / height, 0.015, 1 - 0.85 / height))
    cmap = mpl.colormaps["YlOrRd"].with_extremes(bad="#d0d0d0", under="white")
    positive = data[np.isfinite(data) & (data > 0)]
    top = float(positive.max()) if positive.size else 1.0
    low = float(positive.min()) / 2 if positive.size else 0.5
    im = ax.imshow(np.ma.masked_invalid(data), aspect="auto", cmap=cmap,
                   norm=Normalize(vmin=low, vmax=top), interpolation="nearest")
    step = 5 if len(years) <= 40 else 10
    ticks = [k for k, y in enumerate(years) if y % step == 0]
    ax.set_xticks(ticks, [str(years[k]) for k in ticks], fontsize=7)
    ax.set_yticks(range(len(matrix)), labels, fontsize=7)
    ax.set_title(title, fontsize=8.5)
    ax.set_xlabel("年份 year（灰 = 该年无文件 grey = no document that year；白 = 未出现 white = "
                  "no hit）", fontsize=7)
    bar = fig.colorbar(im, cax=cax)
    bar.ax.tick_params(labelsize=6)
    bar.set_label("每万词 per 10k", fontsize=7)
    return fig


def _group_sizes(cmp: compare.Comparison) -> str:
    """``A = x (n documents, t tokens); B = ...`` for titles and captions."""
    d = cmp.differences
    if not len(d):
        return f"A = {cmp.a}; B = {cmp.b}"
    r = d.iloc[0]

    def size(n: int, tokens: int) -> str:
        return f"{n} document{'' if n == 1 else 's'}, {tokens:,} tokens"

    return (f"A = {cmp.a} ({size(int(r['docs_a']), int(r['tokens_a']))}); "
            f"B = {cmp.b} ({size(int(r['docs_b']), int(r['tokens_b']))})")


def _forest_figure(cmp: compare.Comparison) -> Figure:
    d = cmp.differences[cmp.differences["dimension"] != "domain"]
    dims = dict(zip(d["category"], d["dimension"]))
    order = _category_order(list(d["category"]), dims)[::-1]
    d = d.set_index("category").loc[order]
    fig = new_figure(7.5, 0.3 * len(d) + 1.9)
    ax = fig.subplots()
    y = np.arange(len(d))
    lo = (d["difference"] - d["ci_low"]).clip(lower=0).to_numpy()
    hi = (d["ci_high"] - d["difference"]).clip(lower=0).to_numpy()
    descriptive = bool(len(d)) and bool(d["inference"].iloc[0])
    if descriptive:  # no interval to draw: the points only
        ax.plot(d["difference"], y, "o", markersize=4, color="#777777")
    else:
        ax.errorbar(d["difference"], y, xerr=np.nan_to_num(np.vstack([lo, hi])), fmt="o",
                    markersize=4, capsize=2, color="#b22222")
    ax.axvline(0, color="#666", linewidth=0.8)
    ax.set_yticks(y, list(d.index), fontsize=7)
    ax.set_xlabel("每万词差值 A − B (per 10k tokens)"
                  + ("" if descriptive else ", 95% CI") + "\n" + _group_sizes(cmp),
                  fontsize=7)
    ax.set_title(f"比较 comparison by {cmp.by}" + (
        "\n仅描述 descriptive only (a group has fewer than "
        f"{compare.MIN_GROUP_DOCS} documents)" if descriptive else ""))
    ax.grid(alpha=0.3, axis="x")
    return fig
