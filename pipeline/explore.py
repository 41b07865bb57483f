"""The explorer: ``explore.html``, one offline page to click from rates to documents to passages.

Written beside ``report.html`` by every run (inside the temporary run folder, before the
atomic swap) and by ``mobilize compare``; ``mobilize explore --run DIR`` prints its path.

This module builds the page's data from a run's tables, the documents' normalised texts
and the lexicon, with pure functions (``explorer_data``); the page only displays it:

- rates per 10k tokens with their intervals and n, per category or single term, per scope
  (``all``, or ``domain_window``: the social-security passages of scores.csv) and grouping,
  computed with ``pipeline.compare.pooled_rates`` exactly as the report computes them (same
  seed, same resampling: documents then paragraphs for categories over the whole text;
  documents for the social-security scope and for single terms, which units.csv does not
  break down);
- each document's counts (scores.csv, term_counts.csv), its text once, and its hits as
  integer offset arrays from ``pipeline.match.Matcher`` re-run on the normalised text, plus
  the occurrences that were not counted: absorbed by a longer match of the same category,
  stopped by a sense guard, or a word the category lists under ``excluded``;
- for every pair of values of a grouping, the log-odds z of each lexicon term with an
  informative Dirichlet prior (Monroe, Colaresi & Quinn 2008), as ``compare.keyness`` gives
  it for ``within == "all"``.

The page (``templates/explore.html.j2``) embeds the data as JSON in a
``<script type="application/json">`` block (``<``, ``>``, ``&``, U+2028/9 escaped) and Apache
ECharts (vendored in ``pipeline/vendor/``, Apache-2.0) inline; its Content-Security-Policy
allows no network request and runs only the two inline scripts, by their sha256 hashes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline import compare

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.lexicon import Lexicon

log = logging.getLogger(__name__)

#: The groupings the page offers (those with a column in documents.csv).
GROUPINGS = ("year", "period", "region", "level", "doc_type", "corpus")
#: The scopes: the whole text, and the social-security passages of scores.csv.
SCOPES = ("all", compare.SS_SCOPE)
#: Characters of document text embedded whole; above it, only the paragraphs holding a
#: match (and their neighbours) are kept (docs/explore.md, "Big corpora").
TEXT_BUDGET = 6_000_000
#: Pairs of values per grouping for which the two-group plot is precomputed; a grouping with
#: more pairs keeps the pairs of values at most ``PAIR_SPAN`` apart (e.g. years 10 apart).
MAX_PAIRS = 1_000
PAIR_SPAN = 10
#: Kinds of an uncounted occurrence (``marks``).
ABSORBED, GUARDED, EXCLUDED = 0, 1, 2
#: Decimals kept for rates, intervals and z in the page (the tables keep full precision).
DIGITS = 6
FILE = "explore.html"
VENDOR = Path(__file__).parent / "vendor"
ECHARTS = VENDOR / "echarts.min.js"


@dataclass(frozen=True)
class Raw:
    """The lexicon's words as one-word categories, to find every occurrence whether counted
    or not: (original category id, term text, kind) per category of ``matcher``."""

    matcher: Any
    owners: tuple[tuple[str, str, int], ...]


def raw_matcher(lexicon: Lexicon) -> Raw:
    """A matcher with one category per literal word of ``lexicon``: each literal term, the
    literal of each sense-guarded term, and each literal word listed under ``excluded``.
    Each finds its word as ``str.count`` does (non-overlapping, left to right)."""
    from pipeline.lexicon import Category, Term, build_lexicon
    from pipeline.match import Matcher

    cats = []
    owners: list[tuple[str, str, int]] = []
    seen: set[tuple[str, str]] = set()
    for c in lexicon.categories:
        words: list[tuple[str, str, int]] = []
        for t in c.terms:
            if t.pattern is None:
                words.append((t.text, t.text, ABSORBED))
            elif t.guarded_literal:
                words.append((str(t.guarded_literal), t.text, GUARDED))
        for t in c.excluded:
            if t.pattern is None:
                words.append((t.text, t.text, EXCLUDED))
        for literal, label, kind in words:
            if (c.id, literal) in seen:
                continue
            seen.add((c.id, literal))
            i = len(owners)
            owners.append((c.id, label, kind))
            cats.append(Category(f"w{i}", "raw", literal, literal, "",
                                 (Term(literal, f"w{i}", "raw"),), ()))
    lex = build_lexicon(name="raw", version="0", categories=tuple(cats))
    return Raw(Matcher(lex), tuple(owners))


def sentence_spans(text: str) -> list[tuple[int, int, int]]:
    """(start, end, paragraph) of each sentence of normalised ``text``, as the scorer cuts
    them: paragraphs are lines, sentences ``normalize.sentences`` of each non-empty line."""
    from pipeline import normalize

    out: list[tuple[int, int, int]] = []
    pos, para = 0, 0
    for line in text.split("\n"):
        if line:
            at = pos
            for s in normalize.sentences(line):
                out.append((at, at + len(s), para))
                at += len(s)
            para += 1
        pos += len(line) + 1
    return out


def window_ranges(text: str, domain_starts: Sequence[int]) -> list[tuple[int, int]]:
    """The ``domain_window`` scope of ``text`` as (start, end) character ranges: the sentences
    holding a domain hit (starting at ``domain_starts``), each with its neighbours in the
    same paragraph (``score.window_sentences``); adjacent sentences merged."""
    from bisect import bisect_right

    from pipeline.score import window_sentences

    spans = sentence_spans(text)
    if not spans:
        return []
    starts = [s for s, _e, _p in spans]
    domain = sorted({max(bisect_right(starts, h) - 1, 0) for h in domain_starts})
    keep = sorted(window_sentences(domain, [p for _s, _e, p in spans]))
    out: list[tuple[int, int]] = []
    for i in keep:
        s, e, _p = spans[i]
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


@dataclass(frozen=True)
class DocMatches:
    """One document's matches: counted hits as (start, end, category, term), uncounted
    occurrences as (start, end, category, term, kind), social-security ranges."""

    hits: list[tuple[int, int, str, str]]
    marks: list[tuple[int, int, str, str, int]]
    window: list[tuple[int, int]]


def document_matches(text: str, matcher: Any, raw: Raw, domain: str) -> DocMatches:
    """Every hit of ``matcher`` in ``text`` and every occurrence of a lexicon word that was
    not counted (kind ``ABSORBED``: a longer or earlier match of its category took it;
    ``GUARDED``: a sense guard stopped it; ``EXCLUDED``: a word its category excludes)."""
    from bisect import bisect_left

    hits = [(h.start, h.end, h.category, h.term) for h in matcher.find(text)]
    counted = {(c, s, t) for s, _e, c, t in hits}
    # a category's hits never overlap: sorted by start, their ends are sorted too
    starts: dict[str, list[int]] = {}
    ends: dict[str, list[int]] = {}
    for s, e, c, _t in hits:
        starts.setdefault(c, []).append(s)
        ends.setdefault(c, []).append(e)

    def overlapped(cat: str, start: int, end: int) -> bool:
        """Whether a counted hit of ``cat`` overlaps [start, end)."""
        k = bisect_left(ends.get(cat, []), start + 1)  # the first hit ending after start
        return k < len(ends.get(cat, [])) and starts[cat][k] < end

    marks = []
    for h in raw.matcher.find(text):
        cat, label, kind = raw.owners[int(h.category[1:])]
        if kind != EXCLUDED and (cat, h.start, label) in counted:
            continue
        over = overlapped(cat, h.start, h.end)
        if kind == GUARDED and over:
            kind = ABSORBED  # (a longer term of its category took it before its guard mattered)
        if kind == ABSORBED and not over:
            continue  # (cannot happen for a literal; kept safe)
        marks.append((h.start, h.end, cat, label, kind))
    marks.sort()
    window = window_ranges(text, [s for s, _e, c, _t in hits if c == domain])
    return DocMatches(hits, marks, window)


def log_odds_z(counts_a: np.ndarray, counts_b: np.ndarray, n_a: float, n_b: float,
               alpha: np.ndarray, alpha0: float) -> np.ndarray:
    """The z of ``compare.log_odds_dirichlet`` on arrays (same formula, same order of
    operations): delta / sqrt(1/(y_a+a) + 1/(y_b+a))."""
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (np.log((counts_a + alpha) / (n_a + alpha0 - counts_a - alpha))
                 - np.log((counts_b + alpha) / (n_b + alpha0 - counts_b - alpha)))
        var = 1 / (counts_a + alpha) + 1 / (counts_b + alpha)
        return delta / np.sqrt(var)


def pair_keyness(group_counts: np.ndarray, group_tokens: np.ndarray, i: int, j: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Log-odds z of each term between groups ``i`` (A) and ``j`` (B), as ``compare.keyness``
    computes its ``within == "all"`` rows: prior alpha_w = alpha0 x pooled count / pooled
    tokens, alpha0 = ``PRIOR_SHARE`` x the smaller group's tokens. Returns (the terms with a
    pooled count > 0, their z)."""
    ya, yb = group_counts[i].astype(float), group_counts[j].astype(float)
    na, nb = float(group_tokens[i]), float(group_tokens[j])
    keep = np.flatnonzero(ya + yb > 0)
    ya, yb = ya[keep], yb[keep]
    n_pool = na + nb
    alpha0 = compare.PRIOR_SHARE * min(na, nb)
    pooled = ya + yb
    alpha = alpha0 * pooled / n_pool if n_pool > 0 else pooled * 0.0
    return keep, log_odds_z(ya, yb, na, nb, alpha, alpha0)


def _pairs(n: int) -> list[tuple[int, int]]:
    pairs = [(i, j) for i in range(n) for j in range(n) if i < j]
    if len(pairs) > MAX_PAIRS:
        pairs = [(i, j) for i, j in pairs if j - i <= PAIR_SPAN]
    return pairs


def _num(x: Any) -> float | None:
    """A number for the page: rounded, None for NaN."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return None
    return round(float(x), DIGITS)


def _group_value(v: Any) -> str:
    return str(int(v)) if isinstance(v, (int, np.integer)) else str(v)


def _rate_rows(table: pd.DataFrame, by: str | None, groups: list[str], index: Mapping[str, int],
               ) -> list[list[Any]]:
    """``pooled_rates`` rows as [subject, group, documents, count, tokens, rate, low, high]."""
    gi = {g: k for k, g in enumerate(groups)}
    gs = ([gi[_group_value(v)] for v in table[by]] if by is not None else [0] * len(table))
    cols = [table[c].tolist() for c in ("category", "documents", "count", "tokens")]
    # rounded as _num does, all at once: NaN (no interval) becomes None
    nums = [[None if v != v else round(v, DIGITS) for v in table[c].to_numpy(
        dtype=float).tolist()] for c in ("rate_per_10k", "ci_low", "ci_high")]
    return [[index[str(c)], g, int(n), int(k), int(t), r, lo, hi]
            for g, c, n, k, t, r, lo, hi in zip(gs, *cols, *nums)]


def explorer_data(run: compare.RunTables, lexicon: Lexicon | None, texts: Mapping[str, str],
                  periods: Sequence[compare.Period] = (), *, seed: int,
                  n_boot: int = compare.DEFAULT_BOOT, text_budget: int = TEXT_BUDGET,
                  labels: Mapping[str, str] | None = None,
                  computed: Mapping[tuple[str, str], pd.DataFrame] | None = None
                  ) -> dict[str, Any]:
    """Everything the page shows, from a run's tables, the documents' normalised ``texts``
    (doc_id -> text; a document without text has no passages) and the lexicon (None: no
    highlighting). Pure; deterministic for a seed.

    ``computed`` maps (scope, grouping) to a category rates table the caller already has
    from ``compare.pooled_rates`` with the same documents, seed and replicates (the report's
    ``rates_by_year``, ...): used as it is instead of being computed again."""
    computed = dict(computed or {})
    # (in documents.csv's order, as the report: the bootstrap draws depend on it)
    docs = compare.with_periods(run.documents, periods)
    scores, tc = run.scores, run.term_counts
    cats = compare._categories(scores)  # the report's order of categories
    cat_ids = [str(c) for c in cats["category"]]
    cat_index = {c: i for i, c in enumerate(cat_ids)}
    dim_of = dict(zip(cats["category"], cats["dimension"]))
    labels = dict(labels or {})
    ids = [str(d) for d in docs["doc_id"]]
    doc_pos = {d: i for i, d in enumerate(ids)}
    groupings = [g for g in GROUPINGS if g in docs.columns and docs[g].notna().any()
                 and (docs[g].astype(str) != "").any()]

    # --- the documents' matches (the matcher re-run on the normalised text)
    matches: dict[str, DocMatches] = {}
    domain = "D_social_security"
    if lexicon is not None:
        from pipeline.match import Matcher

        matcher = Matcher(lexicon)
        raw = raw_matcher(lexicon)
        domain = next((c.id for c in lexicon.categories if c.dimension == "domain"), domain)
        for d in ids:
            if d in texts:
                matches[d] = document_matches(texts[d], matcher, raw, domain)

    # --- terms: every (category, term) of term_counts, then those only the text shows
    term_keys: dict[tuple[str, str], int] = {}
    for c, t in sorted(set(zip(tc["category"].astype(str), tc["term"].astype(str))),
                       key=lambda ct: (cat_index.get(ct[0], 10**6), ct[1])):
        term_keys[(c, t)] = len(term_keys)
    for m in matches.values():
        for _s, _e, c, t in m.hits:
            term_keys.setdefault((c, t), len(term_keys))
        for _s, _e, c, t, _k in m.marks:
            term_keys.setdefault((c, t), len(term_keys))
    terms = list(term_keys)

    # --- per document: counts per category and scope (scores.csv), per term (term_counts
    # for the whole text; the social-security scope from the hits inside its ranges)
    doc_cat = {}
    for scope in SCOPES:
        counts, tokens = compare.doc_matrix(docs, scores, scope) if scope in set(
            scores["scope"]) else (None, None)
        doc_cat[scope] = (counts, tokens)
    tc_doc = tc[tc["doc_id"].isin(doc_pos)]
    term_all = np.zeros((len(ids), len(terms)), dtype=np.int64)
    for d, c, t, n in zip(tc_doc["doc_id"], tc_doc["category"], tc_doc["term"], tc_doc["count"]):
        term_all[doc_pos[str(d)], term_keys[(str(c), str(t))]] += int(n)
    term_ss = np.zeros_like(term_all)
    for d, m in matches.items():
        if not m.window:
            continue
        from bisect import bisect_right

        wstarts = [s for s, _e in m.window]
        for s, _e, c, t in m.hits:
            k = bisect_right(wstarts, s) - 1
            if k >= 0 and s < m.window[k][1]:
                term_ss[doc_pos[d], term_keys[(c, t)]] += 1

    # --- rates per subject, scope and grouping (compare.pooled_rates, as the report)
    rates: dict[str, Any] = {"category": {}, "term": {}}
    group_values: dict[str, list[str]] = {}
    group_docs: dict[str, list[list[int]]] = {}
    for by in groupings:
        keys = compare._group_keys(docs, by)
        group_values[by] = [_group_value(k) for k, _idx in keys]
        group_docs[by] = [list(idx) for _k, idx in keys]
    term_cols = pd.MultiIndex.from_arrays([["term"] * len(terms), [str(i) for i in
                                                                   range(len(terms))]],
                                          names=["dimension", "category"])
    term_index = {str(i): i for i in range(len(terms))}
    for scope in SCOPES:
        counts, tokens = doc_cat[scope]
        if counts is None:
            continue
        paragraphs = (compare.paragraph_matrix(docs, run.units, scores, scope)
                      if scope == "all" else None)
        tmat = (pd.DataFrame((term_all if scope == "all" else term_ss).astype(float),
                             index=pd.Index(docs["doc_id"]), columns=term_cols), tokens)
        rates["category"][scope] = {}
        rates["term"][scope] = {}
        for by in [None, *groupings]:
            name = by or "overall"
            groups = group_values.get(by, ["all documents"]) if by else ["all documents"]
            if by is not None and len(group_docs[by]) == 1 and len(group_docs[by][0]) == len(
                    docs) and (scope, name) not in computed:
                # one value held by every document: the whole corpus, whose rows (the same
                # documents in the same order, the same generator) are already there
                rates["category"][scope][name] = rates["category"][scope]["overall"]
                if terms:
                    rates["term"][scope][name] = rates["term"][scope]["overall"]
                continue
            cr = computed.get((scope, name))
            if cr is None:
                cr = compare.pooled_rates(docs, scores, by, scope=scope, seed=seed,
                                          n_boot=n_boot, matrix=(counts, tokens),
                                          paragraphs=paragraphs)
            rates["category"][scope][name] = _rate_rows(cr, by, groups, cat_index)
            if terms:
                tr = compare.pooled_rates(docs, scores, by, scope=scope, seed=seed,
                                          n_boot=n_boot, matrix=tmat)
                rows = _rate_rows(tr, by, groups, term_index)
                # a term's rows where it has a count, or where the group has documents with
                # tokens (zeros kept: a rate of 0 with its interval is information)
                rates["term"][scope][name] = [r for r in rows if r[3] > 0 or r[4] > 0]
    # ci basis per scope: what was resampled
    basis = {"category": {"all": "documents, then paragraphs within them"
                          if run.units is not None else "documents",
                          compare.SS_SCOPE: "documents"},
             "term": {"all": "documents", compare.SS_SCOPE: "documents"}}

    # --- two groups: log-odds z of each term (text), for every pair of values
    term_texts = sorted({t for _c, t in terms})
    text_index = {t: i for i, t in enumerate(term_texts)}
    # compare.keyness counts a term once per document even when two categories hold it
    tc_once = tc_doc.drop_duplicates(["doc_id", "term"])
    doc_text_counts = np.zeros((len(ids), len(term_texts)), dtype=np.int64)
    for d, t, n in zip(tc_once["doc_id"], tc_once["term"], tc_once["count"]):
        doc_text_counts[doc_pos[str(d)], text_index[str(t)]] += int(n)
    doc_tokens = docs["tokens"].to_numpy(dtype=float)
    keyness: dict[str, Any] = {}
    for by in groupings:
        members = group_docs[by]
        if len(members) < 2:
            continue
        gc = np.vstack([doc_text_counts[m].sum(axis=0) for m in members])
        gt = np.array([doc_tokens[m].sum() for m in members])
        pairs = {}
        for i, j in _pairs(len(members)):
            keep, z = pair_keyness(gc, gt, i, j)
            pairs[f"{i}|{j}"] = [keep.tolist(), [_num(v) for v in z]]
        keyness[by] = {"counts": gc.tolist(), "tokens": [int(t) for t in gt], "pairs": pairs,
                       "all_pairs": len(pairs) == len(members) * (len(members) - 1) // 2}

    # --- texts: whole, or above the budget only the paragraphs near a match
    total = sum(len(texts.get(d, "")) for d in ids)
    whole = total <= text_budget
    pieces = []
    for d in ids:
        text = texts.get(d)
        if text is None:
            pieces.append([])
        elif whole:
            pieces.append([[0, text]])
        else:
            pieces.append(_passages_near(text, matches.get(d)))

    def flat(rows: Sequence[Sequence[Any]], cols: int) -> list[int]:
        return [int(v) for r in rows for v in r[:cols]]

    doc_rows = []
    for i, d in enumerate(ids):
        row = docs.iloc[i]
        m = matches.get(d)
        doc_rows.append({
            "id": d, "title": str(row.get("title", "") or ""),
            "meta": {g: (_group_value(row[g]) if row[g] is not None and not (
                isinstance(row[g], float) and math.isnan(row[g])) and row[g] is not pd.NA
                else "") for g in groupings},
            "tokens": int(row["tokens"]),
            "tokens_ss": int(doc_cat[compare.SS_SCOPE][1].iloc[i])
            if doc_cat.get(compare.SS_SCOPE, (None, None))[1] is not None else 0,
            "cat": {scope: [int(v) for v in doc_cat[scope][0].iloc[i].to_numpy()]
                    for scope in SCOPES if doc_cat[scope][0] is not None},
            "terms": {str(k): [int(term_all[i, k]), int(term_ss[i, k])]
                      for k in np.flatnonzero(term_all[i] + term_ss[i])},
            "hits": flat([(s, e - s, cat_index.get(c, -1), term_keys[(c, t)])
                          for s, e, c, t in m.hits], 4) if m else [],
            "marks": flat([(s, e - s, cat_index.get(c, -1), term_keys[(c, t)], k)
                           for s, e, c, t, k in m.marks], 5) if m else [],
            "window": flat([(s, e - s) for s, e in m.window], 2) if m else [],
            "text": pieces[i],
        })
    return {
        "schema": "mobilize.explore/1",
        "corpus": _corpus_label(run),
        "lexicon": _lexicon_label(run, lexicon),
        "seed": seed, "n_boot": n_boot,
        "categories": [{"id": c, "dimension": str(dim_of[c]), "label": labels.get(c, c)}
                       for c in cat_ids],
        "terms": [[cat_index.get(c, -1), t] for c, t in terms],
        "term_texts": term_texts,
        "groupings": groupings,
        "groups": {by: {"values": group_values[by], "docs": group_docs[by]} for by in groupings},
        "documents": doc_rows,
        "rates": rates, "basis": basis,
        "keyness": keyness, "prior_share": compare.PRIOR_SHARE,
        "text_whole": whole, "text_chars": total, "text_budget": text_budget,
        "kinds": ["absorbed by a longer match of its category",
                  "not counted: a sense guard excludes this use",
                  "not counted: a sense its category excludes"],
    }


def report_rates(tables: Mapping[str, pd.DataFrame]) -> dict[tuple[str, str], pd.DataFrame]:
    """The report's whole-text rates tables (``report_analysis.analyse``) by (scope, grouping),
    for ``explorer_data(computed=...)``: the explorer then shows the report's own numbers."""
    out: dict[tuple[str, str], pd.DataFrame] = {}
    for by in GROUPINGS:
        if f"rates_by_{by}" in tables:
            out[("all", by)] = tables[f"rates_by_{by}"]
    overall = tables.get("rates_overall")
    if overall is not None and "scope" in overall.columns:
        out[("all", "overall")] = overall[overall["scope"] == "all"].drop(columns="scope")
    return out


def _passages_near(text: str, m: DocMatches | None) -> list[list[Any]]:
    """The paragraphs of ``text`` holding a hit or mark, with the paragraph before and after
    each, as [offset, text] pieces (offsets into the whole text, so hits stay exact)."""
    if m is None:
        return []
    paras = []
    pos = 0
    for line in text.split("\n"):
        paras.append((pos, pos + len(line)))
        pos += len(line) + 1
    starts = [s for s, _e in paras]
    from bisect import bisect_right

    hit_paras = {bisect_right(starts, s) - 1 for s, *_ in m.hits} | \
        {bisect_right(starts, s) - 1 for s, *_ in m.marks}
    keep = sorted({k for p in hit_paras for k in (p - 1, p, p + 1) if 0 <= k < len(paras)})
    return [[paras[k][0], text[paras[k][0]:paras[k][1]]] for k in keep if paras[k][1] > paras[k][0]]


def _corpus_label(run: compare.RunTables) -> str:
    names = list(dict.fromkeys(str(c) for c in run.documents.get("corpus", [])))
    return " + ".join(names) if names else ""


def _lexicon_label(run: compare.RunTables, lexicon: Lexicon | None) -> str:
    if lexicon is not None:
        return f"{lexicon.name} {lexicon.version} ({lexicon.short_hash})"
    lex = run.manifest.get("lexicon") if isinstance(run.manifest, dict) else None
    return f"{lex.get('name', '')} {lex.get('version', '')}" if isinstance(lex, dict) else ""


# --------------------------------------------------------------------------- the page


def json_for_html(data: Any) -> str:
    """``data`` as JSON safe inside a ``<script type="application/json">`` element: ``<``,
    ``>``, ``&`` and U+2028/U+2029 escaped, so no text can close the element or start markup."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _sha256(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode()


def render_page(data: Mapping[str, Any], *, cache: Path | None = None,
                font: bool = True) -> str:
    """The page: the template with ECharts, the app script and the data inlined, and a
    Content-Security-Policy allowing exactly those scripts and styles (by hash), no network.
    With ``font``, Noto Sans CJK SC cut down to the page's characters is embedded (as in
    report.html: the page reads the same on a machine without a CJK font)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
                             autoescape=True, keep_trailing_newline=True)
    echarts = ECHARTS.read_text(encoding="utf-8")
    app = (Path(__file__).parent / "templates" / "explore.js").read_text(encoding="utf-8")
    style = (Path(__file__).parent / "templates" / "explore.css").read_text(encoding="utf-8")
    # (a script holding "</script" would end its element early; neither does)
    for name, src in (("echarts", echarts), ("explore.js", app)):
        if "</script" in src.lower():
            raise ValueError(f"{name} holds </script")
    payload = json_for_html(data)
    face = ""
    if font:
        from pipeline.render import _font_face

        # (the characters of the data, as JSON keeps them: only \u escapes of <, >, &)
        face = _font_face(payload + "·×–—“”", cache)
    font_css = (f'@font-face {{ font-family: "mobilize-cjk"; src: url(data:font/otf;base64,'
                f'{face}) format("opentype"); }}') if face else ""
    csp = ("default-src 'none'; "
           f"script-src '{_sha256(echarts)}' '{_sha256(app)}'; "
           f"style-src '{_sha256(style)}' '{_sha256(font_css)}'; "
           "img-src data:; font-src data:; connect-src 'none'; form-action 'none'; "
           "base-uri 'none'")
    page = env.get_template("explore.html.j2").render(
        csp=_markup(csp), title=f"mobilize explorer: {data.get('corpus', '')}",
        style=_markup(style), font_css=_markup(font_css),
        echarts=_markup(echarts), app=_markup(app), data=_markup(payload))
    return page


def _markup(s: str) -> Any:
    from markupsafe import Markup

    return Markup(s)


def load_texts(run: compare.RunTables, settings: Settings) -> dict[str, str]:
    """The normalised texts of a run's documents (doc_id -> text), re-read from the corpus
    folder(s) run.json names, as the report's KWIC does; {} when no folder is there. For
    combined runs (``mobilize compare``) the ids are ``<corpus>/<doc_id>``."""
    from pipeline.ingest import load_corpus

    manifests = run.manifest.get("combined") if isinstance(run.manifest.get("combined"),
                                                           list) else [run.manifest]
    prefix = "combined" in run.manifest
    out: dict[str, str] = {}
    for man in manifests:
        corpus = man.get("corpus") if isinstance(man, dict) else None
        if not isinstance(corpus, dict) or not corpus.get("root"):
            continue
        root = Path(str(corpus["root"]))
        if not root.is_dir():
            log.warning("explore: the corpus folder %s is not available: no passages", root.name)
            continue
        params = man.get("parameters") if isinstance(man.get("parameters"), dict) else {}
        name = str(corpus.get("name") or root.name)
        loaded = load_corpus(root, name=name,
                             to_simplified=bool(params.get("to_simplified",
                                                           settings.to_simplified)),
                             warn=False).documents
        for d in loaded:
            out[f"{name}/{d.doc_id}" if prefix else d.doc_id] = d.text
    return out


def write_explorer(folder: Path, settings: Settings, *, run: compare.RunTables | None = None,
                   lexicon: Lexicon | None = None,
                   computed: Mapping[tuple[str, str], pd.DataFrame] | None = None,
                   texts: Mapping[str, str] | None = None,
                   era_recall: Mapping[str, str] | None = None) -> Path:
    """Write ``explore.html`` into ``folder`` (a run folder, or a comparison folder with the
    combined ``run`` tables given); return its path. ``computed``: see ``explorer_data``.
    ``texts``: the documents' normalised texts (doc_id -> text, as ``load_texts`` gives them)
    when the caller has read the corpus already (the report does); else they are read.
    ``era_recall``: category id -> the line on its recall per era that the report shows
    (``pipeline.report_era_recall``), shown under the rates chart of that category; for a run
    folder read here, the report's own lines (``report.era_recall_lines``)."""
    from pipeline.report_analysis import _labels, _load_lexicon, _periods

    folder = Path(folder)
    rebuild = run is None  # (a run folder on its own, as `mobilize explore --rebuild`)
    if run is None:
        run = compare.read_run(folder)
    lexicon = _load_lexicon(run, settings, lexicon)
    if era_recall is None and rebuild:  # the lines the report gives its explorer
        from pipeline.report import era_recall_lines

        era_recall = era_recall_lines(run, lexicon)
    if texts is None:
        texts = load_texts(run, settings)
    data = explorer_data(run, lexicon, texts, _periods(settings), seed=settings.seed,
                         labels=_labels(lexicon), computed=computed)
    data["era_recall"] = {str(k): str(v) for k, v in sorted((era_recall or {}).items())}
    path = folder / FILE
    path.write_text(render_page(data, cache=settings.cache), encoding="utf-8")
    return path


__all__ = ["FILE", "explorer_data", "json_for_html", "log_odds_z", "pair_keyness",
           "render_page", "raw_matcher", "document_matches", "sentence_spans", "window_ranges",
           "write_explorer", "load_texts"]
