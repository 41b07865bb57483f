"""The report's term timelines (issue 15, point 1): when each term of each category arrives
in the corpus and when it leaves it.

Pure: from the run's documents and term counts, the lexicon and the corpus's normalised texts
it builds the section's tables; ``pipeline.render`` draws the figures, wraps the tables in
``Section`` parts (whose template and Markdown writer escape every cell) and writes the
tables to ``tables/``. For every category:

- its top terms by year (``top_terms_by_year``: rate per 10,000 tokens, a heatmap);
- every term's first and last year, twice: as **counted** by the lexicon (``term_counts``:
  after the category's leftmost-longest resolution, sense guards and pattern narrowing) and
  as a **raw** substring of the normalised text (``str.count``, what any reader of the text
  finds). Where they differ the row says why (``note``);
- the terms new in each period of the run's periods (``new_by_period``).

What a lexicon entry is searched as in the raw text (``search_text``; docs/report.md):

- a literal term: its text;
- a term with sense guards (compiled to a pattern): its literal text, so the guard's
  exclusions show as a difference;
- a pattern: its **literal core**, the one literal every match contains
  (``pipeline.match.literal_core``), when the pattern's label begins with it and it holds at
  least ``MIN_CORE`` characters: 互联网+ for 互联网+政务服务, 大数据 for 大数据(监管/治理).
  A pattern can never occur before its core, so the raw years bound it from outside. Other
  patterns (a core of one character, a core inside the label such as 覆盖 in 社会保险覆盖面,
  or several possible literals) and gap phrases are marked ``pattern`` / ``gap`` and get no
  raw years: their most general literal (节, 差距, 数据) would date another word;
- an excluded entry (considered and left out, e.g. the narrowed seeds 互联网+ and 大数据):
  searched like the above, never counted; its row is marked ``excluded``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline import compare

if TYPE_CHECKING:
    from pipeline.lexicon import Lexicon, Term

KEY = "timelines"
TITLE = "时间线 Term timelines: when each term arrives, top terms by year, new terms by period"

#: Terms drawn per category in the top-terms heatmap (by count over the dated documents).
TOP_TERMS = 12

#: The fewest characters of a pattern's literal core for it to stand for the pattern.
MIN_CORE = 2

#: The columns of ``term_timelines.csv``.
COLUMNS = ["dimension", "category", "term", "kind", "searched_as", "first_year", "last_year",
           "years_with_hits", "count", "documents", "raw_first_year", "raw_last_year",
           "raw_years", "raw_count", "raw_documents", "first_period", "raw_first_period",
           "note"]

_INT_COLUMNS = ["first_year", "last_year", "years_with_hits", "count", "documents",
                "raw_first_year", "raw_last_year", "raw_years", "raw_count", "raw_documents"]

#: A category id usable in an HTML id and a file name as it is.
_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class CategoryTimeline:
    """One category's part of the section."""

    dimension: str
    category: str
    anchor: str  # a safe HTML id / file name part
    table: pd.DataFrame  # the first/last-year table shown (one row per term)
    new_terms: pd.DataFrame | None  # new terms per period (None: no periods)
    top: pd.DataFrame  # top terms (rows) x years (columns): rate per 10k; NaN: no documents
    text: list[str] = field(default_factory=list)


@dataclass
class TimelineParts:
    text: list[str] = field(default_factory=list)
    categories: list[CategoryTimeline] = field(default_factory=list)
    files: dict[str, pd.DataFrame] = field(default_factory=dict)  # tables/<name>.csv


def search_text(term: Term) -> str | None:
    """What ``term``'s raw years are searched as in the normalised text (module docstring):
    its text, its guarded literal, its literal core, or None (a pattern without a usable core,
    a gap phrase)."""
    if term.pattern is None:
        return term.text
    if term.guarded_literal is not None:
        return term.guarded_literal
    if any(key == "gap" for key, _value in term.spec):
        return None
    from pipeline.match import literal_core

    core = literal_core(term.pattern)
    if core is not None and len(core) >= MIN_CORE and term.text.startswith(core):
        return core
    return None


def kind(term: Term) -> str:
    """``literal``, ``guarded`` (a term with sense guards), ``gap`` or ``pattern``."""
    if term.pattern is None:
        return "literal"
    if term.guarded_literal is not None:
        return "guarded"
    return "gap" if any(key == "gap" for key, _value in term.spec) else "pattern"


def lexicon_entries(lexicon: Lexicon) -> pd.DataFrame:
    """Every entry of every category, counted and excluded: ``dimension, category, term,
    kind, searched_as`` (``kind`` of an excluded entry is ``excluded``; ``searched_as`` is
    "" when the entry has no raw search)."""
    rows = []
    for cat in lexicon.categories:
        for excluded, terms in ((False, cat.terms), (True, cat.excluded)):
            for t in terms:
                rows.append({"dimension": cat.dimension, "category": cat.id, "term": t.text,
                             "kind": "excluded" if excluded else kind(t),
                             "shape": kind(t), "searched_as": search_text(t) or ""})
    return pd.DataFrame(rows, columns=["dimension", "category", "term", "kind", "shape",
                                       "searched_as"])


def raw_years(texts: Mapping[str, str], years: Mapping[str, int | None],
              needles: Iterable[str]) -> pd.DataFrame:
    """Each needle's raw occurrences in ``texts`` (doc id -> normalised text), counted as
    ``str.count`` counts them (non-overlapping, left to right) per document.
    ``raw_first_year``/``raw_last_year``/``raw_years`` over the documents with a year;
    ``raw_count``/``raw_documents`` over all of them. One Aho-Corasick pass per document finds
    every needle (``str.count`` per needle and document took a second on the national
    corpus)."""
    import ahocorasick

    wanted = sorted(set(n for n in needles if n))
    counts: dict[str, dict[str, int]] = {n: {} for n in wanted}
    if wanted:
        auto = ahocorasick.Automaton()
        for k, n in enumerate(wanted):
            auto.add_word(n, k)
        auto.make_automaton()
        for doc_id in sorted(texts):
            free = [0] * len(wanted)  # where the needle's next occurrence may start
            found = [0] * len(wanted)
            for end, k in auto.iter(texts[doc_id]):  # (ends ascending: starts ascending)
                start = end - len(wanted[k]) + 1
                if start >= free[k]:
                    found[k] += 1
                    free[k] = end + 1
            for k, n in enumerate(found):
                if n:
                    counts[wanted[k]][doc_id] = n
    rows = []
    for needle in wanted:
        per_doc = counts[needle]
        dated = sorted({int(y) for i in per_doc
                        if (y := years.get(i)) is not None and not pd.isna(y)})
        rows.append({"searched_as": needle,
                     "raw_first_year": dated[0] if dated else pd.NA,
                     "raw_last_year": dated[-1] if dated else pd.NA,
                     "raw_years": len(dated), "raw_count": sum(per_doc.values()),
                     "raw_documents": len(per_doc)})
    return pd.DataFrame(rows, columns=["searched_as", "raw_first_year", "raw_last_year",
                                       "raw_years", "raw_count", "raw_documents"])


def counted_years(documents: pd.DataFrame, term_counts: pd.DataFrame) -> pd.DataFrame:
    """Each counted term's first and last year with a hit (``term_counts``, dated documents),
    its years with hits, and its count and documents over all the run's documents."""
    keys = ["dimension", "category", "term"]
    tc = term_counts[term_counts["count"] > 0]
    tc = tc[tc["doc_id"].isin(set(documents["doc_id"]))]
    total = (tc.groupby(keys, sort=True).agg(count=("count", "sum"),
                                             documents=("doc_id", "nunique")).reset_index())
    year = documents[["doc_id", "year"]].dropna()
    dated = tc.merge(year, on="doc_id", how="inner")
    span = (dated.groupby(keys, sort=True)
            .agg(first_year=("year", "min"), last_year=("year", "max"),
                 years_with_hits=("year", "nunique")).reset_index())
    out = total.merge(span, on=keys, how="left")
    out["years_with_hits"] = out["years_with_hits"].fillna(0)
    return out


def term_timelines(documents: pd.DataFrame, term_counts: pd.DataFrame,
                   lexicon: Lexicon | None = None, texts: Mapping[str, str] | None = None,
                   periods: Sequence[compare.Period] = ()) -> pd.DataFrame:
    """One row per (category, term): every lexicon entry (counted and excluded) and every
    counted term the lexicon no longer holds, with its counted and raw years (``COLUMNS``).

    ``texts`` are the documents' normalised texts (doc id -> text); without them (or without
    the lexicon) the raw columns are empty. Rows sorted by dimension, category, term, kind."""
    keys = ["dimension", "category", "term"]
    counted = counted_years(documents, term_counts)
    if lexicon is not None:
        entries = lexicon_entries(lexicon)
        excluded = entries["kind"] == "excluded"
        # (an excluded entry is never counted, even where a counted entry has its text, as
        # 信息共享 excluded and counted again with a sense guard)
        rows = pd.concat([entries[~excluded].merge(counted, on=keys, how="outer"),
                          entries[excluded]], ignore_index=True)
        gone = rows["kind"].isna()  # counted by the run, not in this lexicon
        rows.loc[gone, ["kind", "shape", "searched_as"]] = ["counted", "counted", ""]
    else:
        rows = counted.assign(kind="counted", shape="counted", searched_as="")
    years = dict(zip(documents["doc_id"], documents["year"]))
    if texts is not None:
        run_texts = {i: texts[i] for i in documents["doc_id"] if i in texts}
        raw = raw_years(run_texts, years, rows["searched_as"])
        rows = rows.merge(raw, on="searched_as", how="left")
    else:
        for c in ("raw_first_year", "raw_last_year", "raw_years", "raw_count", "raw_documents"):
            rows[c] = pd.NA
    for c in ("count", "documents", "years_with_hits"):
        rows[c] = rows[c].fillna(0)
    for c in _INT_COLUMNS:
        rows[c] = pd.array(pd.to_numeric(rows[c], errors="coerce"), dtype="Int64")
    rows["first_period"] = [_period(y, periods) for y in rows["first_year"]]
    rows["raw_first_period"] = [_period(y, periods) for y in rows["raw_first_year"]]
    rows["note"] = [_note(r, texts is not None, lexicon is not None) for r in rows.itertuples()]
    rows["searched_as"] = rows["searched_as"].fillna("")
    out = rows.sort_values(["dimension", "category", "term", "kind"], kind="mergesort")
    return out[COLUMNS].reset_index(drop=True)


def _period(year: object, periods: Sequence[compare.Period]) -> str:
    return compare.period_of(year, periods) or ""  # type: ignore[arg-type]


def _note(r: object, have_texts: bool, have_lexicon: bool) -> str:
    """Why the counted and raw columns differ (or why there are no raw columns)."""
    def get(name: str) -> object:
        return getattr(r, name)

    k, shape, needle = str(get("kind")), str(get("shape")), str(get("searched_as") or "")
    if k == "counted":  # (a term of the run that the lexicon read by the report lacks)
        return "not in the report's lexicon: no raw search" if have_lexicon else ""
    if not have_texts:
        return "excluded: not counted" if k == "excluded" else ""
    if not needle:
        what = "gap phrase" if shape == "gap" else "pattern without a literal core"
        return ("excluded: not counted; " if k == "excluded" else "") + f"{what}: no raw search"
    parts = ["excluded: not counted"] if k == "excluded" else []
    if shape in ("pattern", "gap"):
        parts.append(f"raw: its literal core {needle}")
    elif k != "excluded":
        raw, count = get("raw_count"), get("count")
        if raw is not pd.NA and count is not pd.NA and int(raw) > int(count):
            why = ("its sense guard or a longer match of the category" if shape == "guarded"
                   else "inside a longer match of the category")
            parts.append(f"{int(raw) - int(count)} of {int(raw)} occurrences not counted: {why}")
    return "; ".join(parts)


#: The columns of each category's table in the report (``term`` first, then the counted
#: first and last year, so a row reads ``| 新常态 | 2015 | 2018 | ...``).
SHOWN = {"term": "term", "first_year": "first", "last_year": "last",
         "raw_first_year": "raw first", "raw_last_year": "raw last", "count": "count",
         "raw_count": "raw count", "kind": "kind", "note": "note"}


def shown_table(timelines: pd.DataFrame) -> pd.DataFrame:
    """Rows as the report shows them (``category`` then the ``SHOWN`` columns), category by
    category: in order of arrival (the
    earliest of the raw and counted first years; terms never seen last), then by term."""
    t = timelines
    earliest = t["raw_first_year"].fillna(t["first_year"])
    order = pd.DataFrame({"category": t["category"], "missing": earliest.isna(),
                          "earliest": earliest.fillna(0).astype(int),
                          "first": t["first_year"].fillna(10**6).astype(int),
                          "term": t["term"], "kind": t["kind"]})
    idx = order.sort_values(["category", "missing", "earliest", "first", "term", "kind"],
                            kind="mergesort").index
    return t.loc[idx, ["category", *SHOWN]].rename(columns=SHOWN).reset_index(drop=True)


def new_by_period(timelines: pd.DataFrame, periods: Sequence[compare.Period]) -> pd.DataFrame:
    """The long table of new terms: ``dimension, category, period, basis, term, kind, year``.
    ``basis`` ``counted``: the term's first counted year falls in the period; ``raw``: its
    first raw appearance does, and it is counted later or never (excluded, narrowed,
    absorbed). Sorted by dimension, category, period order, basis, year, term."""
    order = {p.name: i for i, p in enumerate(periods)}
    counted = set(zip(timelines.loc[timelines["kind"] != "excluded", "category"],
                      timelines.loc[timelines["kind"] != "excluded", "term"]))
    rows = []
    for r in timelines.itertuples():
        if r.kind == "excluded" and (r.category, r.term) in counted:
            continue  # (its text is counted under a counted entry: that row dates it)
        if r.first_period:
            rows.append((r.dimension, r.category, r.first_period, "counted", r.term, r.kind,
                         int(r.first_year)))
        if r.raw_first_period and (pd.isna(r.first_year) or
                                   int(r.raw_first_year) < int(r.first_year)):
            rows.append((r.dimension, r.category, r.raw_first_period, "raw", r.term, r.kind,
                         int(r.raw_first_year)))
    out = pd.DataFrame(rows, columns=["dimension", "category", "period", "basis", "term", "kind",
                                      "year"])
    out["_p"] = out["period"].map(order)
    out = out.sort_values(["dimension", "category", "_p", "basis", "year", "term", "kind"],
                          kind="mergesort")
    return out.drop(columns="_p").reset_index(drop=True)


def new_terms_table(new: pd.DataFrame, category: str,
                    periods: Sequence[compare.Period]) -> pd.DataFrame:
    """One category's new terms, one row per period: the terms first counted in it, and the
    terms whose raw first appearance is in it but which are counted later or never."""
    listed: dict[tuple[str, str], list[str]] = {}
    sub = new[new["category"] == category]
    for period, basis, term, year in zip(sub["period"], sub["basis"], sub["term"], sub["year"]):
        listed.setdefault((period, basis), []).append(f"{term} {year}")
    rows = [{"period": p.name, "new counted": len(listed.get((p.name, "counted"), [])),
             "new terms (first counted year)": " · ".join(listed.get((p.name, "counted"), [])),
             "first in the raw text, counted later or never":
                 " · ".join(listed.get((p.name, "raw"), []))}
            for p in periods]
    return pd.DataFrame(rows, columns=["period", "new counted", "new terms (first counted year)",
                                       "first in the raw text, counted later or never"])


def top_terms_by_year(documents: pd.DataFrame, term_counts: pd.DataFrame, category: str,
                      top: int = TOP_TERMS) -> pd.DataFrame:
    """The category's ``top`` terms (by count over the dated documents; ties by term) x every
    year from the first to the last dated document: rate per 10,000 tokens of the year (0: no
    hit; NaN: no document that year). Rows labelled ``term (count)``."""
    return _top_terms(_dated_counts(documents, term_counts), category, top)


def _dated_counts(documents: pd.DataFrame, term_counts: pd.DataFrame
                  ) -> tuple[dict[str, dict[str, dict[int, int]]], pd.Series]:
    """category -> term -> year -> count over the dated documents, and the tokens per year
    (every year from the first to the last dated document; NaN: no document)."""
    dated = documents[["doc_id", "year", "tokens"]].dropna(subset=["year"])
    if not len(dated):
        return {}, pd.Series(dtype=float)
    tc = term_counts[term_counts["count"] > 0].merge(dated[["doc_id", "year"]], on="doc_id",
                                                     how="inner")
    sums = tc.groupby(["category", "term", "year"], sort=True)["count"].sum()
    out: dict[str, dict[str, dict[int, int]]] = {}
    for (cat, term, year), n in sums.items():
        out.setdefault(str(cat), {}).setdefault(str(term), {})[int(year)] = int(n)
    first, last = int(dated["year"].min()), int(dated["year"].max())
    tokens = dated.groupby("year")["tokens"].sum().astype(float)
    tokens.index = tokens.index.astype(int)
    return out, tokens.reindex(range(first, last + 1))


def _top_terms(dated: tuple[dict[str, dict[str, dict[int, int]]], pd.Series], category: str,
               top: int = TOP_TERMS) -> pd.DataFrame:
    counts, tokens = dated
    terms = counts.get(category, {})
    if not terms or not len(tokens):
        return pd.DataFrame()
    ranked = sorted(((t, sum(by.values())) for t, by in terms.items()),
                    key=lambda kv: (-kv[1], kv[0]))[:top]
    cols = [int(y) for y in tokens.index]
    per = tokens.to_numpy(dtype=float)
    per = np.where(per > 0, per, np.nan)
    rate = np.array([[terms[t].get(y, 0) for y in cols] for t, _n in ranked],
                    dtype=float) / per * 10_000
    return pd.DataFrame(rate, index=[f"{t} ({n})" for t, n in ranked], columns=cols)


def anchor(category: str, index: int) -> str:
    """The HTML id of a category's part (``timelines-F1_population``); an id that is not a
    plain identifier (a run folder's CSV can hold anything) gets its position instead."""
    return f"{KEY}-{category}" if _SAFE_ID.fullmatch(category) else f"{KEY}-{index + 1}"


def timeline_parts(documents: pd.DataFrame, term_counts: pd.DataFrame, *,
                   lexicon: Lexicon | None, texts: Mapping[str, str] | None,
                   periods: Sequence[compare.Period], texts_note: str = "",
                   dimension_order: Sequence[str] = ()) -> TimelineParts:
    """The section's prose, per-category parts and table files."""
    out = TimelineParts()
    tl = term_timelines(documents, term_counts, lexicon, texts, periods)
    out.files["term_timelines"] = tl
    out.text.append(
        "For every category: its most frequent terms by year (rate per 10,000 tokens; grey: "
        "no document that year), then every term with its first and last year as counted by "
        "the lexicon (first, last: after the category's longest-match rule, sense guards and "
        "pattern narrowing) and as a raw substring of the normalised text (raw first, raw "
        "last: every occurrence, counted or not). Where they differ, the note says why. A "
        "pattern is searched raw as its literal core when its label begins with one (互联网+ "
        "for 互联网+政务服务); other patterns and gap phrases have no raw years. Excluded "
        "entries (considered and left out, such as the narrowed seeds 互联网+ and 大数据) are "
        "listed with their raw years and never counted. Full table: "
        "tables/term_timelines.csv.")
    if texts is None:
        out.text.append("No raw years: " + (texts_note or "the corpus texts are not "
                                            "available") + ".")
    if periods:
        new = new_by_period(tl, periods)
        out.files["term_new_by_period"] = new
    else:
        new = None
        out.text.append("No periods file: no new terms by period.")
    rank = {d: i for i, d in enumerate(dimension_order)}
    cats = (tl[["dimension", "category"]].drop_duplicates()
            .assign(_r=lambda d: d["dimension"].map(rank).fillna(99))
            .sort_values(["_r", "category"], kind="mergesort"))
    dated = _dated_counts(documents, term_counts)
    shown = shown_table(tl)
    shown_of = {str(c): g.drop(columns="category").reset_index(drop=True)
                for c, g in shown.groupby("category", sort=False)}
    for i, (dim, cat) in enumerate(zip(cats["dimension"], cats["category"])):
        rows = tl[tl["category"] == cat]
        part = CategoryTimeline(dim, cat, anchor(cat, i), shown_of[cat],
                                new_terms_table(new, cat, periods) if new is not None else None,
                                _top_terms(dated, cat))
        n_counted = int((rows["first_year"].notna()).sum())
        n_raw_only = int((rows["raw_first_year"].notna() & rows["first_year"].isna()).sum())
        part.text.append(f"{len(rows)} entries: {n_counted} counted in dated documents; "
                         f"{n_raw_only} present in the raw text but never counted.")
        out.categories.append(part)
    return out


__all__ = ["KEY", "TITLE", "TOP_TERMS", "MIN_CORE", "COLUMNS", "CategoryTimeline",
           "TimelineParts", "search_text", "kind", "lexicon_entries", "raw_years",
           "counted_years", "term_timelines", "shown_table", "new_by_period",
           "new_terms_table", "top_terms_by_year", "anchor", "timeline_parts"]
