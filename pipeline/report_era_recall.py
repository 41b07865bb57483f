"""Recall by era beside every trend: how much of each category the lexicon finds in each era.

The lexicon finds older wording less well than current wording (issue 13): lexicon 2.3.0
finds 0.48 of the hand-coded expressions before 1992 and 0.74 in 1992-2012. A rate over
the years mixes how often a theme is spoken of with how much of its wording the lexicon
finds in each era, so part of a rise across eras can be vocabulary change. This module
puts each category's held-out recall per era, from the measurement card of the run's
lexicon (``lexicons/<stem>.card.json``, schema ``mobilize.card/1``, the card the methods
appendix shows: ``pipeline.recall.card_for_run``), beside the report's trends, and warns
where it differs between eras the run spans.

- ``era_estimates`` (``read_era_estimates`` from a file): the per-era recall of every
  category from a card (its ``estimates``), with n, the count found and the 95% Wilson
  interval;
- ``era_recall_table``: the long table ``tables/era_recall.csv`` (one row per category and
  era), with the run's documents per era, whether the era's recall is estimable and the
  warnings (``MIN_EXPRESSIONS``, ``MAX_GAP``: the issue's own threshold);
- ``era_recall_parts``: what the report shows (prose, the table beside each trend, a line
  for each category's timeline), or the one sentence that says the era recall is unknown
  when no card matches the run's lexicon.

Pure functions over the card (as ``read_card`` read it for the methods appendix), the run's
documents and its trends table. The rule and the wording are documented in docs/report.md.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.errors import MobilizeError

if TYPE_CHECKING:
    from pipeline.recall import CardNote

#: The report's part (anchor ``#era-recall``) and its title.
KEY = "era-recall"
TITLE = "各时期召回率 Recall by era beside each trend"
#: An era's recall is estimable for a category from this many coded expressions on.
MIN_EXPRESSIONS = 10
#: A warning when a category's recall differs by more than this between two eras.
MAX_GAP = 0.10
#: The pooled row (all categories) of the table, as the card calls it.
POOLED = "all"

ERA_COLUMNS = ["dimension", "category", "era", "first_year", "last_year", "documents",
               "recall", "low", "high", "n", "found", "estimable", "warning"]

_DIMENSIONS = ("feature", "pathway", "challenge", "domain", "frame")


@dataclass(frozen=True)
class EraEstimate:
    """One category's recall in one era, as the card gives it."""

    dimension: str
    category: str
    era: str
    recall: float | None
    low: float | None
    high: float | None
    n: int
    found: int | None

    @property
    def estimable(self) -> bool:
        return self.recall is not None and self.n >= MIN_EXPRESSIONS


@dataclass(frozen=True)
class CardEras:
    """The per-era recall of a card: its eras in order, and one estimate per category and
    era (the pooled ``all`` row last)."""

    eras: tuple[str, ...]
    estimates: tuple[EraEstimate, ...]


def era_years(name: str) -> tuple[int | None, int | None] | None:
    """The years of an era named as the coding sheets name them (``pipeline.recall.
    eras_from_breaks``): ``pre-1992`` -> (None, 1991), ``1992-2012`` -> (1992, 2012),
    ``2013-`` -> (2013, None); None for a name that says no years."""
    if m := re.fullmatch(r"pre-(\d{4})", name):
        return None, int(m[1]) - 1
    if m := re.fullmatch(r"(\d{4})-(\d{4})", name):
        return int(m[1]), int(m[2])
    if m := re.fullmatch(r"(\d{4})-", name):
        return int(m[1]), None
    return None


def era_phrase(name: str) -> str:
    """``pre-1992`` -> "before 1992", ``1992-2012`` -> "in 1992-2012", ``2013-`` -> "from
    2013" (an era whose name says no years: "in <name>")."""
    span = era_years(name)
    if span is None:
        return f"in {name}"
    start, end = span
    if start is None:
        return f"before {end + 1}"  # type: ignore[operator]
    if end is None:
        return f"from {start}"
    return f"in {start}-{end}"


_FIX = "Write it again with mobilize lexicon card ... --json (see docs/validation.md)"


def read_era_estimates(path: Path) -> CardEras:
    """The per-era recall of the card file at ``path`` (``era_estimates``); a MobilizeError
    naming the file when it is not a readable JSON card."""
    path = Path(path)
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MobilizeError(f"is not a readable JSON card ({exc})", path=path, fix=_FIX) from exc
    if not isinstance(doc, dict):
        raise MobilizeError("card has no readable recall per era: not a JSON object",
                            path=path, fix=_FIX)
    return era_estimates(doc.get("eras"), doc.get("estimates"), path)


def era_estimates(eras: Any, est: Any, path: Path) -> CardEras:
    """The per-era recall of a card (its ``eras`` and ``estimates``, as ``pipeline.recall.
    read_card`` keeps them: ``estimates.categories[*].recall_by_era`` and
    ``estimates.overall_recall_by_era``); a MobilizeError naming the card file ``path`` when
    the card does not hold them as ``mobilize lexicon card --json`` writes them."""
    path = Path(path)

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise MobilizeError(f"card has no readable recall per era: {what}", path=path,
                                fix=_FIX)

    need(isinstance(eras, list) and bool(eras) and all(isinstance(e, str) for e in eras)
         and len(set(eras)) == len(eras), "eras is not a list of era names")
    need(isinstance(est, dict) and isinstance(est.get("categories"), list),
         "estimates.categories is missing")

    def number(v: Any, what: str) -> float | None:
        if v is None:
            return None
        need(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v),
             f"{what} is not a number")
        return float(v)

    def count(v: Any, what: str, optional: bool = False) -> int | None:
        if v is None and optional:
            return None
        need(isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"{what} is not a count")
        return int(v)

    def per_era(dim: str, cat: str, by_era: Any) -> list[EraEstimate]:
        need(isinstance(by_era, dict), f"recall_by_era of {cat} is not a mapping")
        out = []
        for era in eras:
            e = by_era.get(era)
            if e is None:  # (an era without coded expressions of the category)
                out.append(EraEstimate(dim, cat, era, None, None, None, 0, None))
                continue
            need(isinstance(e, dict), f"recall of {cat} in {era} is not a mapping")
            what = f"recall of {cat} in {era}"
            out.append(EraEstimate(dim, cat, era, number(e.get("value"), what),
                                   number(e.get("low"), what), number(e.get("high"), what),
                                   count(e.get("n"), what) or 0,
                                   count(e.get("count"), what, optional=True)))
        return out

    rows: list[EraEstimate] = []
    seen: set[str] = set()
    for c in est["categories"]:
        need(isinstance(c, dict) and isinstance(c.get("category"), str)
             and isinstance(c.get("dimension", ""), str), "a category has no id")
        need(c["category"] not in seen, f"category {c['category']} is listed twice")
        seen.add(c["category"])
        rows += per_era(str(c.get("dimension", "")), c["category"], c.get("recall_by_era"))
    rank = {d: i for i, d in enumerate(_DIMENSIONS)}
    order = {e: i for i, e in enumerate(eras)}
    rows.sort(key=lambda r: (rank.get(r.dimension, len(rank)), r.dimension, r.category,
                             order[r.era]))
    if est.get("overall_recall_by_era") is not None:
        rows += per_era("", POOLED, est["overall_recall_by_era"])
    return CardEras(tuple(eras), tuple(rows))


def documents_by_era(documents: pd.DataFrame, eras: Sequence[str]) -> dict[str, int | None]:
    """The run's dated documents in each era (None for an era whose name says no years)."""
    years = pd.to_numeric(documents["year"], errors="coerce").dropna().astype(int) \
        if "year" in documents.columns else pd.Series([], dtype=int)
    out: dict[str, int | None] = {}
    for era in eras:
        span = era_years(era)
        if span is None:
            out[era] = None
            continue
        lo, hi = span
        keep = pd.Series(True, index=years.index)
        if lo is not None:
            keep &= years >= lo
        if hi is not None:
            keep &= years <= hi
        out[era] = int(keep.sum())
    return out


def _num(x: float | None) -> str:
    return f"{x:.2f}" if x is not None else "n/a"


def warning_text(earlier: EraEstimate, later: EraEstimate) -> str:
    """The plain-language warning for two eras of one category whose recall differs."""
    said = (f"recall {era_phrase(earlier.era)} was {_num(earlier.recall)} (n = {earlier.n}) "
            f"against {_num(later.recall)} (n = {later.n}) {era_phrase(later.era)}")
    if (earlier.recall or 0.0) < (later.recall or 0.0):
        return (f"{said}: the lexicon finds more of this category's later wording, so part of "
                "a rise between these eras may be vocabulary change (and a fall is "
                "understated)")
    return (f"{said}: the lexicon finds more of this category's earlier wording, so part of a "
            "fall between these eras may be vocabulary change (and a rise is understated)")


def category_warnings(estimates: Sequence[EraEstimate], documents: Mapping[str, int | None]
                      ) -> list[tuple[EraEstimate, EraEstimate, str]]:
    """The warnings of one category: for every two eras (in card order) that both hold
    documents of the run and both have an estimable recall (``MIN_EXPRESSIONS``), when the
    recall differs by more than ``MAX_GAP``."""
    out = []
    usable = [e for e in estimates if e.estimable and (documents.get(e.era) or 0) > 0]
    for i, a in enumerate(usable):
        for b in usable[i + 1:]:
            # (rounded to the card's 4 decimals: 0.8 - 0.7 is not "more than 0.10")
            if round(abs(a.recall - b.recall), 4) > MAX_GAP:  # type: ignore[operator]
                out.append((a, b, warning_text(a, b)))
    return out


def era_recall_table(card: CardEras, documents: pd.DataFrame) -> pd.DataFrame:
    """``tables/era_recall.csv``: one row per category and era of the card (the card's
    category order: dimension, then id; eras in time order; the pooled ``all`` row last),
    columns ``ERA_COLUMNS``: the era's years, the run's dated documents in it, the card's
    recall with its interval, n and count found, ``estimable`` (n >= ``MIN_EXPRESSIONS``)
    and the warnings this era takes part in (joined by " | "; the pooled row gets none)."""
    docs = documents_by_era(documents, card.eras)
    rows = []
    by_cat: dict[str, list[EraEstimate]] = {}
    for e in card.estimates:
        by_cat.setdefault(e.category, []).append(e)
    for cat, ests in by_cat.items():
        warns = category_warnings(ests, docs) if cat != POOLED else []
        for e in ests:
            span = era_years(e.era) or (None, None)
            rows.append({
                "dimension": e.dimension, "category": cat, "era": e.era,
                "first_year": span[0], "last_year": span[1], "documents": docs[e.era],
                "recall": e.recall, "low": e.low, "high": e.high, "n": e.n, "found": e.found,
                "estimable": e.estimable,
                "warning": " | ".join(w for a, b, w in warns if e.era in (a.era, b.era))})
    out = pd.DataFrame(rows, columns=ERA_COLUMNS)
    for c in ("first_year", "last_year", "documents", "found"):
        out[c] = out[c].astype("Int64")
    for c in ("recall", "low", "high"):
        out[c] = out[c].astype(float)
    out["n"] = out["n"].astype(int)
    out["estimable"] = out["estimable"].astype(bool)
    out["warning"] = out["warning"].astype(str)
    return out


def era_cell(e: EraEstimate) -> str:
    """``0.48 [0.37, 0.59] (n = 77)``, or ``not estimable (n = 4, fewer than 10)``."""
    if not e.estimable:
        return f"not estimable (n = {e.n}, fewer than {MIN_EXPRESSIONS})"
    ci = f" [{e.low:.2f}, {e.high:.2f}]" if e.low is not None and e.high is not None else ""
    return f"{e.recall:.2f}{ci} (n = {e.n})"


def _trend_cell(row: Mapping[str, Any] | None) -> str:
    if row is None:
        return ""
    trend = str(row.get("trend") or "")
    rr, lo, hi = (row.get(k) for k in ("rate_ratio_per_decade", "rr_ci_low", "rr_ci_high"))
    if all(isinstance(v, float | int) and math.isfinite(v) for v in (rr, lo, hi)):
        return f"{trend} (rate ratio per decade {rr:.2f} [{lo:.2f}, {hi:.2f}])".strip()
    return trend or str(row.get("note") or "")


@dataclass
class EraRecallParts:
    """What the report shows: ``trend_text`` (under the trends: the pointer, or the one
    sentence that says the era recall is unknown), ``time_text`` (under the rates per year,
    when there is a card: the pointer), the part beside the trends (``text``,
    ``tables``; none when there is no card), ``lines`` (category -> the line shown beside
    its timeline) and ``files`` (``era_recall`` when there is a card)."""

    trend_text: list[str] = field(default_factory=list)
    time_text: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    lines: dict[str, str] = field(default_factory=dict)
    files: dict[str, pd.DataFrame] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def unknown_text(note: str, why: str = "no measurement card matches this run's lexicon") -> str:
    """The one sentence of a report whose era recall is unknown (``why``; ``note``: the
    methods appendix's note on the card, or what is wrong with it)."""
    return (f"Recall by era of these trends is unknown: {why}, so the report cannot say how "
            "much of each category's wording the lexicon finds in each era, nor whether part "
            f"of a rise or fall over the years is vocabulary change. ({note.strip()})")


def era_recall_parts(note: CardNote | None, card_file: Path | None, documents: pd.DataFrame,
                     trends: pd.DataFrame | None = None,
                     labels: Mapping[str, str] | None = None, *,
                     scores: pd.DataFrame | None = None, seed: int = 0) -> EraRecallParts:
    """The report's era recall for a run: from the card at ``card_file`` when ``note`` (the
    methods appendix's ``card_for_run``) found it matching the run's lexicon hash; otherwise
    one sentence saying that the era recall of the trends is unknown, and why. Never raises
    for a bad card (the sentence says what is wrong). With ``scores`` (the run's scores.csv)
    also the sensitivity view ``adjusted_rates`` (seeded with ``seed``)."""
    out = EraRecallParts()
    if note is None or note.card is None or card_file is None:
        why = note.note if note is not None and note.note else \
            "No measurement card was looked for (no lexicon file for this run)."
        out.trend_text.append(unknown_text(why))
        return out
    c = note.card
    try:
        card = era_estimates(c.eras, c.estimates, card_file)  # (the card read once)
        table = era_recall_table(card, documents)
    except MobilizeError as exc:
        out.trend_text.append(unknown_text(
            f"The measurement card {card_file.name}: {exc.problem.rstrip('.')}.",
            why="the measurement card of this lexicon holds no readable recall per era"))
        return out
    labels = labels or {}
    docs = documents_by_era(documents, card.eras)
    out.files["era_recall"] = table
    spanned = [e for e in card.eras if (docs[e] or 0) > 0]

    def lab(cat: str) -> str:
        return labels.get(cat, cat)

    by_cat: dict[str, list[EraEstimate]] = {}
    for e in card.estimates:
        by_cat.setdefault(e.category, []).append(e)
    trend_rows = ({str(r["category"]): r for r in trends.to_dict("records")}
                  if trends is not None and "category" in trends.columns else {})
    display = []
    for cat, ests in by_cat.items():
        warns = [w for _a, _b, w in category_warnings(ests, docs)] if cat != POOLED else []
        out.warnings += [f"{lab(cat)}: {w}." for w in warns]
        row = {"category": lab(cat) if cat != POOLED else "all categories (pooled)",
               "trend": _trend_cell(trend_rows.get(cat))}
        for e in ests:
            n_docs = docs[e.era]
            row[f"recall {e.era} (run documents: {n_docs if n_docs is not None else '?'})"] = \
                era_cell(e)
        row["warning"] = "; ".join(warns)
        display.append(row)
        if cat != POOLED:
            line = ("Held-out recall of this category by era (measurement card of "
                    f"{c.name} {c.version}): "
                    + "; ".join(f"{e.era} {era_cell(e)}" for e in ests) + ".")
            line += (" Warning: " + "; ".join(warns) + ".") if warns else ""
            out.lines[cat] = line
    version = f"{c.name} {c.version}"
    runs = ", ".join(f"{e} {docs[e] if docs[e] is not None else '?'}" for e in card.eras)
    out.text += [
        f"How much of each category's wording the lexicon finds, per era: held-out recall from "
        f"the measurement card of lexicon {version} (hash {c.hash[:16]}, {c.date}; "
        f"{c.passages_coded} hand-coded passages of {', '.join(c.corpora) or 'no corpus'}; "
        "estimate [95% Wilson interval] (n = coded expressions), as in the methods appendix). "
        "A rate over the years counts the theme and the lexicon's reach together: where a "
        "category's recall differs between eras, part of its rise or fall across them is "
        "vocabulary change, not more or less of the theme.",
        f"Rule: a warning where a category's recall differs by more than {MAX_GAP:.2f} "
        f"between two eras that both have at least {MIN_EXPRESSIONS} coded expressions and "
        "both hold documents of this run (issue 13's target). An era with fewer than "
        f"{MIN_EXPRESSIONS} coded expressions of the category is not estimable: shown, "
        "never compared. This run's dated documents per era: " + runs + ".",
    ]
    if len(spanned) < 2:
        out.text.append("This run's documents fall in "
                        + (f"one era ({spanned[0]})" if spanned else "no era of the card")
                        + ": recall differences between eras do not bear on its trends, so "
                          "no warning is given.")
    elif out.warnings:
        out.text.append(f"Warnings ({len(out.warnings)}):")
        out.text += out.warnings
    else:
        out.text.append("No category's recall differs by more than "
                        f"{MAX_GAP:.2f} between the eras this run spans (where both are "
                        "estimable).")
    out.text.append("Table: tables/era_recall.csv (one row per category and era).")
    out.tables.append(("recall by era beside each category's trend",
                       pd.DataFrame(display)))
    if scores is not None and len(spanned):
        adj = adjusted_rates(documents, scores, card, seed=seed)
        out.files["era_recall_adjusted"] = adj
        out.text.append(
            "Sensitivity only, never the counted rates: each era's pooled rate over the whole "
            "text divided by the category's recall in that era (what the rate would be if the "
            "lexicon found every expression, were the card's recall that of this corpus), "
            "with a 95% interval from a seeded parametric bootstrap (the era's documents "
            "resampled, the recall drawn from its Jeffreys posterior Beta(found + 1/2, n - "
            "found + 1/2)); only where the recall is estimable. The counted rates and their "
            "trends above are the results; table: tables/era_recall_adjusted.csv.")
        shown = adj[adj["adjusted_rate_per_10k"].notna()]
        out.tables.append(("SENSITIVITY, not the counted rates: rate per 10k divided by the "
                           "era's recall", shown[["category", "era", "documents", "count",
                                                  "rate_per_10k", "ci_low", "ci_high",
                                                  "recall", "recall_n",
                                                  "adjusted_rate_per_10k", "adjusted_low",
                                                  "adjusted_high"]].reset_index(drop=True)))
    out.trend_text.append(
        f"Beside each trend: the category's held-out recall per era (below: {TITLE}); "
        + (f"{len(out.warnings)} categor{'y' if len(out.warnings) == 1 else 'ies'} "
           "whose recall differs by more than "
           f"{MAX_GAP:.2f} between eras this run spans: part of their change over time may be "
           "vocabulary change." if out.warnings else
           "no category's recall differs by more than "
           f"{MAX_GAP:.2f} between eras this run spans."))
    out.time_text.append("Each category's held-out recall per era stands beside its trend "
                         f"(Trends: {TITLE}): read a rise or fall across eras with it.")
    return out


def annotate_timelines(parts: Any, era: EraRecallParts) -> None:
    """Add each category's era-recall line to its part of the term timelines
    (``pipeline.report_timelines.TimelineParts``), after the part's own prose."""
    if parts is None:
        return
    for part in parts.categories:
        line = era.lines.get(part.category)
        if line:
            part.text.append(line)


__all__ = ["ADJUSTED_COLUMNS", "CardEras", "ERA_COLUMNS", "adjusted_rates", "EraEstimate", "EraRecallParts", "KEY", "MAX_GAP",
           "MIN_EXPRESSIONS", "POOLED", "TITLE", "annotate_timelines", "category_warnings",
           "documents_by_era", "era_cell", "era_phrase", "era_recall_parts", "era_recall_table",
           "era_estimates", "era_years", "read_era_estimates", "unknown_text", "warning_text"]


# --------------------------------------------------------------------------- sensitivity

ADJUSTED_COLUMNS = ["dimension", "category", "era", "documents", "count", "tokens",
                    "rate_per_10k", "ci_low", "ci_high", "recall", "recall_n",
                    "adjusted_rate_per_10k", "adjusted_low", "adjusted_high", "note"]


def adjusted_rates(documents: pd.DataFrame, scores: pd.DataFrame, card: CardEras, *,
                   seed: int, n_boot: int = 1000) -> pd.DataFrame:
    """A sensitivity view, never the counted rates: per category and era the run spans,
    the pooled rate over the whole text divided by the category's recall in that era.

    The interval propagates both uncertainties by a seeded parametric bootstrap: each of
    ``n_boot`` replicates pairs a resample of the era's documents
    (``compare.bootstrap_rates``, documents only) with a draw of the recall from its
    Jeffreys posterior Beta(found + 1/2, n - found + 1/2); the interval is the 2.5th-97.5th
    percentile of rate / recall. Eras whose recall is not estimable (fewer than
    ``MIN_EXPRESSIONS`` coded expressions) get no adjusted rate (``note`` says so). Rows in
    the card's category order, eras in time order."""
    from pipeline import compare

    counts, tokens = compare.doc_matrix(documents, scores, "all")
    years = pd.to_numeric(documents["year"], errors="coerce").to_numpy(dtype=float,
                                                                       na_value=float("nan"))
    est = {(e.category, e.era): e for e in card.estimates}
    cols = list(counts.columns)
    rows = []
    for k, era in enumerate(card.eras):
        span = era_years(era)
        if span is None:
            continue
        lo, hi = span
        mask = ~pd.isna(years)
        if lo is not None:
            mask &= years >= lo
        if hi is not None:
            mask &= years <= hi
        if not mask.any():
            continue
        c, t = counts.to_numpy()[mask], tokens.to_numpy()[mask]
        total = float(t.sum())
        rate = c.sum(axis=0) / total * 10_000 if total > 0 else [float("nan")] * len(cols)
        reps = compare.bootstrap_rates(c, t, n_boot=n_boot, rng=np.random.default_rng([seed, k]))
        for j, (dim, cat) in enumerate(cols):
            e = est.get((cat, era))
            r_lo, r_hi = (np.nanpercentile(reps[:, j], [2.5, 97.5]) if np.isfinite(reps[:, j]).any()
                          else (float("nan"), float("nan")))
            row = {"dimension": dim, "category": cat, "era": era, "documents": int(mask.sum()),
                   "count": int(c[:, j].sum()), "tokens": int(total),
                   "rate_per_10k": float(rate[j]), "ci_low": float(r_lo), "ci_high": float(r_hi),
                   "recall": e.recall if e is not None else float("nan"),
                   "recall_n": e.n if e is not None else 0,
                   "adjusted_rate_per_10k": float("nan"), "adjusted_low": float("nan"),
                   "adjusted_high": float("nan"), "note": ""}
            if e is None or not e.estimable or not e.recall:
                row["note"] = ("no card estimate" if e is None else
                               f"recall not estimable (n = {e.n}): no adjusted rate"
                               if not e.estimable else "recall 0: no adjusted rate")
            else:
                found = e.found if e.found is not None else round(e.recall * e.n)
                draws = np.random.default_rng([seed, k, j, 1]).beta(
                    found + 0.5, e.n - found + 0.5, size=n_boot)
                adj = reps[:, j] / draws
                a_lo, a_hi = np.nanpercentile(adj, [2.5, 97.5])
                row.update(adjusted_rate_per_10k=float(rate[j]) / e.recall,
                           adjusted_low=float(a_lo), adjusted_high=float(a_hi))
            rows.append(row)
    out = pd.DataFrame(rows, columns=ADJUSTED_COLUMNS)
    rank = {d: i for i, d in enumerate(_DIMENSIONS)}
    order = {e: i for i, e in enumerate(card.eras)}
    if len(out):
        out = out.sort_values(["dimension", "category", "era"], key=lambda s: (
            s.map(rank).fillna(len(rank)) if s.name == "dimension" else
            s.map(order) if s.name == "era" else s), kind="mergesort").reset_index(drop=True)
    return out
