"""The report's analysis: what it shows, computed from a run's tables (no drawing, no
writing). Moved out of ``pipeline.report``, which keeps the public entry points."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline import compare
from pipeline.config import Settings

if TYPE_CHECKING:
    from pipeline.ingest import Document
    from pipeline.lexicon import Lexicon

log = logging.getLogger(__name__)


#: KWIC lines shown per category.
KWIC_PER_CATEGORY = 3


KWIC_WIDTH = 24


#: Metadata columns compared within one run when they have between 2 and this many values.
MAX_GROUPS = 40


#: The discovery section when discovery is off (the default: it costs tens of seconds).
DISCOVERY_OFF = ("Discovery (unsupervised topics beside the dictionary rates, and drift words "
                 "as candidate gaps) is off for this report: it trains Word2Vec and NMF models "
                 "and takes tens of seconds. Turn it on with `mobilize run --discover` or "
                 "`mobilize report --discover` (or `discover = true` in the [run] section of "
                 "config.toml); see docs/discovery.md.")


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
    # The social-security view beside the whole text: domain_window (docs/engine.md), or
    # domain_sentences for a run of an older mobilize that has no domain_window scope.
    ss = ss_scope(scores)
    # Every rates table groups the same documents: their count matrix is built once per scope.
    matrices = {scope: compare.doc_matrix(docs, scores, scope) for scope in ("all", ss)}
    paragraphs = {scope: compare.paragraph_matrix(docs, run.units, scores, scope)
                  for scope in ("all", ss)}

    def rates(by: str | None, scope: str = "all") -> pd.DataFrame:
        return compare.pooled_rates(docs, scores, by, scope=scope, seed=seed, n_boot=n_boot,
                                    matrix=matrices[scope], paragraphs=paragraphs[scope])

    overall = []
    for scope in ("all", ss):
        r = rates(None, scope)
        r.insert(0, "scope", scope)
        overall.append(r)
    tables["rates_overall"] = pd.concat(overall, ignore_index=True)
    yearly = rates("year")
    tables["rates_by_year"] = yearly
    tables["rates_by_year_domain"] = rates("year", ss)
    trends = trend_table(docs, scores, yearly, matrix=matrices["all"])
    trends.insert(2, "panel", "all documents")
    comp = compare.composition_by_year(docs)
    tables["composition_by_year"] = comp
    if comp["change"].any():
        # The balanced panel: only the units present in every year with documents.
        keep = compare.balanced_units(docs)
        units = compare.unit_key(docs)
        sub = docs[units.isin(keep).to_numpy()].reset_index(drop=True)
        if keep and sub["year"].nunique() >= 2:
            tables["rates_by_year_balanced"] = compare.pooled_rates(
                sub, scores, "year", seed=seed, n_boot=n_boot,
                paragraphs=compare.paragraph_matrix(sub, run.units, scores, "all"))
            notes["balanced_units"] = ", ".join(keep)
            # A trend across a change of units measures the change of population: the
            # trends are those of the balanced panel when it has the years for a model.
            if sub["year"].nunique() >= 3:
                trends = trend_table(sub, scores, tables["rates_by_year_balanced"])
                trends.insert(2, "panel", "balanced: " + ", ".join(keep))
        if trends["panel"].iloc[0] == "all documents" if len(trends) else False:
            trends["panel"] = "all documents (the units change: read with care)"
    tables["trends"] = trends
    if periods and docs["period"].notna().any():
        tables["rates_by_period"] = rates("period")
        tables["cooccurrence_by_period"] = compare.cooccurrence_by(
            docs, run.cooccurrence, "period", unit="sentence", dimension_b="pathway",
            scores=scores)
        tables["cooccurrence_challenge_by_period"] = compare.cooccurrence_by(
            docs, run.cooccurrence, "period", unit="sentence", dimension_b="challenge",
            scores=scores)
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


def ss_scope(scores: pd.DataFrame) -> str:
    """The scope of the report's social-security views: ``compare.SS_SCOPE``
    (``domain_window``: a D sentence and its neighbours), or ``domain_sentences`` when the
    run predates that scope (scorer version 1)."""
    return (compare.SS_SCOPE if compare.SS_SCOPE in set(scores["scope"])
            else "domain_sentences")


#: Mann-Kendall / Theil-Sen columns kept beside the count model, as secondary evidence.
_MK_COLUMNS = {"tau": "mk_tau", "p_value": "mk_p_value", "p_adjusted": "mk_p_adjusted",
               "slope_per_year": "theil_sen_per_year", "trend": "mk_trend"}


def trend_table(docs: pd.DataFrame, scores: pd.DataFrame, yearly: pd.DataFrame, *,
                matrix: tuple[pd.DataFrame, pd.Series] | None = None) -> pd.DataFrame:
    """The trends table: the count model per category (``compare.count_trends``), then
    Mann-Kendall and Theil-Sen on the yearly rates (secondary, ``mk_*`` columns), then the
    change years (``compare.change_points``)."""
    keys = ["dimension", "category"]
    glm = compare.count_trends(docs, scores, matrix=matrix)
    mk = compare.trends(yearly).rename(columns=_MK_COLUMNS)[keys + list(_MK_COLUMNS.values())]
    cp = compare.change_points(yearly)
    return glm.merge(mk, on=keys, how="left").merge(cp, on=keys, how="left")


def _latest_change(docs: pd.DataFrame) -> tuple[str, str, str] | None:
    if "period" in docs.columns:
        present = [p for p in docs["period"].cat.categories if (docs["period"] == p).any()]
        if len(present) >= 2:
            return "period", str(present[-1]), str(present[-2])
    years = sorted(int(y) for y in docs["year"].dropna().unique())
    if len(years) >= 2:
        return "year", str(years[-1]), str(years[-2])
    return None


def corpus_documents(run: compare.RunTables, settings: Settings
                     ) -> tuple[dict[str, Document] | None, str]:
    """The run's documents re-read from its corpus folder (run.json's root), normalised as
    the run read them: doc id -> Document, or None and the reason when the folder is gone."""
    corpus = _part(run.manifest, "corpus")
    root = Path(str(corpus["root"])) if corpus.get("root") else None
    if root is None or not root.is_dir():
        return None, (f"the corpus folder {_display_path(root)} is not available"
                      if root is not None else "the corpus folder None is not available")
    from pipeline.ingest import load_corpus

    params = _part(run.manifest, "parameters")
    simplified = bool(params.get("to_simplified", settings.to_simplified))
    # (warn=False: the run's own scan has warned; the report says when years are missing)
    loaded = load_corpus(root, name=str(corpus.get("name") or root.name),
                         to_simplified=simplified, warn=False).documents
    return {d.doc_id: d for d in loaded}, ""


def _kwic_and_coverage(run: compare.RunTables, lexicon: Lexicon | None, settings: Settings,
                       documents: tuple[dict[str, Document] | None, str] | None = None,
                       ) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """KWIC examples per category (``pipeline.validation.kwic``) and coverage diagnostics
    (``pipeline.validation.coverage``) over the corpus re-read from run.json's root
    (``documents``: ``corpus_documents``'s answer, when the caller has read it already).

    Returns (kwic, coverage per term, note); a table is None, and the note says why,
    when the corpus or the lexicon cannot be read.
    """
    if lexicon is None:
        return None, None, "the lexicon could not be loaded"
    docs, note = documents if documents is not None else corpus_documents(run, settings)
    if docs is None:
        return None, None, note
    from pipeline import validation
    from pipeline.match import Matcher

    ids = [i for i in run.documents["doc_id"] if i in docs]
    matcher = Matcher(lexicon)
    cov = validation.coverage([docs[i] for i in ids], lexicon, matcher)
    terms = pd.DataFrame([asdict(t) for t in cov.terms],
                         columns=["dimension", "category", "term", "pattern", "hits", "documents",
                                  "occurrences"])
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


#: The longest part of a corpus's NOTES.md caveats shown in the report (characters).
CAVEATS_MAX = 3000


def corpus_caveats(run: compare.RunTables) -> list[str]:
    """What the corpus's own notes say a reader must know: the "Caveats" section of
    ``NOTES.md`` in the corpus folder (run.json's root), one item per bullet, and the
    documents whose ``doc_type`` differs from the most common one. [] when there is none."""
    out: list[str] = []
    docs = run.documents
    if "doc_type" in docs.columns:
        types = docs["doc_type"].astype(str).replace({"nan": ""})
        types = types[types != ""]
        if types.nunique() > 1:
            common = types.value_counts().index[0]
            odd = docs.loc[types[types != common].index]
            out.append(f"{len(odd)} document(s) are not of the corpus's usual type ({common}): "
                       + ", ".join(f"{d} ({t})" for d, t in zip(odd["doc_id"],
                                                                 odd["doc_type"])) + ".")
    corpus = _part(run.manifest, "corpus")
    root = Path(str(corpus["root"])) if corpus.get("root") else None
    notes = root / "NOTES.md" if root is not None else None
    if notes is None or not notes.is_file():
        return out
    try:
        text = notes.read_text(encoding="utf-8")[:200_000]
    except (OSError, UnicodeDecodeError):
        return out
    section: list[str] = []
    inside = False
    for line in text.splitlines():
        if line.startswith("#"):
            if inside:
                break
            inside = "caveat" in line.lower()
            continue
        if inside:
            section.append(line)
    items: list[str] = []
    for line in section:
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(("- ", "* ")) and not line.startswith((" ", "\t")):
            items.append(stripped[2:])
        elif items:
            items[-1] += " " + stripped.lstrip("-* ")
        else:
            items.append(stripped)
    shown, size = [], 0
    for item in items:
        size += len(item)
        if size > CAVEATS_MAX:
            shown.append("… (more in the corpus's NOTES.md)")
            break
        shown.append(item.replace("**", ""))
    return out + [f"From the corpus's NOTES.md: {i}" for i in shown]


def _display_path(path: Path | str | None) -> str:
    """A path as the report prints it: relative to the project (the folder holding
    ``pipeline/``) or the working folder when it is inside one of them, else its last two
    parts (``<corpus>/<file>``): never an absolute local path."""
    if path is None:
        return "None"
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = p.resolve()
    for base in (Path(__file__).resolve().parent.parent, Path.cwd().resolve()):
        try:
            return p.relative_to(base).as_posix()
        except ValueError:
            continue
    return "/".join(p.parts[-2:]) if len(p.parts) > 2 else p.name


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


def _labels(lexicon: Lexicon | None) -> dict[str, str]:
    if lexicon is None:
        return {}
    return {c.id: f"{c.id} {c.name_zh}".strip() for c in lexicon.categories}


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


def _discovery(run_dir: Path, settings: Settings) -> dict[str, Any]:
    from pipeline import discover

    try:
        return dict(discover.discovery_tables(run_dir, settings))
    except Exception as exc:  # noqa: BLE001 - shown in the report, not hidden
        log.warning("report: discovery tables failed: %s", exc)
        return {"error": f"{type(exc).__name__}: {exc}"}
