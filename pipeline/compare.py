"""Compare: aggregation over time and groups, and the statistics a reviewer expects.

Pure functions on the run's tables (see docs/architecture.md, "A run's output
folder"); ``read_run`` and ``load_periods`` are the only I/O. Every function
returns rows in a fixed, sorted order, and every random draw comes from a
``numpy.random.Generator`` seeded by the caller (``Settings.seed``), so the same
inputs give byte-identical tables.

The statistics, in one place (the report's methods appendix repeats them):

- **Pooled rate** of a group (a year, a period, a region, a corpus): the sum of
  the counts over the sum of the tokens of its documents, x 10,000. Tokens are
  the exposure, so a long report weighs more than a short one; this is *not*
  the mean of the documents' rates.
- **Bootstrap CI**: two-stage: resample the group's documents with replacement, then
  the paragraphs of each drawn document (``units.csv``), recompute the pooled rate,
  take the percentile interval. Differences resample each group independently.
- **Trend**: a count model per category (``count_trends``: GLM with offset
  log(tokens) on the actual year, quasi-Poisson or negative binomial by the measured
  dispersion), rate ratio per decade, Benjamini-Hochberg across categories; "too
  sparse to test" below ``MIN_NONZERO_YEARS`` years with hits. Mann-Kendall and
  Theil-Sen (``trends``) stay as secondary evidence. Change points: PELT with a
  penalty calibrated on null series (``change_penalty``).
- **Group comparisons**: the same count model on a group indicator gives the rate
  ratio's interval and p-value, adjusted across categories; a group of fewer than
  ``MIN_GROUP_DOCS`` documents is descriptive only (no p, no interval, no star).
- **Keyness**: weighted log-odds ratio with an informative Dirichlet prior
  (Monroe, Colaresi and Quinn 2008, eq. 22) of each term between two groups,
  with the group's tokens as the number of words; the prior is the pooled
  term frequency (counts of both groups over their tokens) times ``alpha0``, and
  ``alpha0`` is ``PRIOR_SHARE`` (10%) of the smaller group's tokens, so the prior never
  outweighs the smaller group's own data.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline.errors import MobilizeError
from pipeline.score import SCOPES

#: Scopes of scores.csv (see docs/architecture.md).
#: Metadata columns a group comparison may use, besides ``year``, ``period`` and ``corpus``.
GROUP_COLUMNS = ("corpus", "level", "region", "doc_type", "issuer", "year", "period")
DEFAULT_BOOT = 1000
#: The keyness prior's total weight as a share of the two groups' tokens.
PRIOR_SHARE = 0.1
MIN_TREND_POINTS = 8
_RATE_COLUMNS = ["dimension", "category", "documents", "count", "tokens", "rate_per_10k",
                 "ci_low", "ci_high", "ci_basis"]


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """A named span of years, inclusive; ``end`` None means open-ended."""

    name: str
    start: int
    end: int | None = None

    def contains(self, year: int) -> bool:
        return year >= self.start and (self.end is None or year <= self.end)


def load_periods(path: Path) -> list[Period]:
    """Read a periods file: a YAML list of {name, start, end} (or {periods: [...]}).

    Raises MobilizeError naming the file, the line and the fix for anything else.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MobilizeError(f"cannot read the periods file ({exc.strerror})", path=path,
                            fix="Give a YAML file listing {name, start, end}, e.g. "
                                "lexicons/periods.yaml.") from exc
    except UnicodeDecodeError as exc:  # e.g. saved as GBK by an editor: say where, not a traceback
        raise MobilizeError(f"not UTF-8 (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})",
                            path=path, line=exc.object[:exc.start].count(b"\n") + 1,
                            fix="Save the periods file as UTF-8.") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise MobilizeError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=path,
                            line=mark.line + 1 if mark else None,
                            fix="Fix the YAML syntax (a list of {name, start, end}).") from exc
    items_node: Any = root
    if isinstance(root, yaml.MappingNode):
        items_node = next((v for k, v in root.value if k.value == "periods"), None)
    if not isinstance(items_node, yaml.SequenceNode) or not items_node.value:
        raise MobilizeError("no list of periods found", path=path,
                            line=(root.start_mark.line + 1) if root is not None else None,
                            fix="Write `periods:` followed by items like "
                                "`- {name: reform, start: 1978, end: 1992}`.")
    periods: list[Period] = []
    for node in items_node.value:
        line = node.start_mark.line + 1
        item = yaml.safe_load(yaml.serialize(node)) if node is not None else None
        if not isinstance(item, dict) or "name" not in item or "start" not in item:
            raise MobilizeError("a period needs `name` and `start` (and `end`, or null)",
                                path=path, line=line,
                                fix="Write it as `- {name: reform, start: 1978, end: 1992}`.")
        name, start, end = str(item["name"]).strip(), item["start"], item.get("end")
        if (not isinstance(start, int) or isinstance(start, bool)
                or (end is not None and (not isinstance(end, int) or isinstance(end, bool)))):
            raise MobilizeError(f"period {name!r}: start and end must be years (integers)",
                                path=path, line=line, fix="Write e.g. `start: 1978, end: 1992`.")
        if end is not None and end < start:
            raise MobilizeError(f"period {name!r} ends ({end}) before it starts ({start})",
                                path=path, line=line, fix="Swap start and end.")
        if not name:
            raise MobilizeError("a period has an empty name", path=path, line=line,
                                fix="Give every period a name.")
        for other in periods:
            if other.name == name:
                raise MobilizeError(f"period name {name!r} is used twice", path=path,
                                    line=line, fix="Give every period its own name.")
            lo, hi = max(start, other.start), min(end if end is not None else 10**6,
                                                  other.end if other.end is not None else 10**6)
            if lo <= hi:
                raise MobilizeError(f"period {name!r} overlaps {other.name!r} (year {lo})",
                                    path=path, line=line,
                                    fix="Make the periods disjoint (years are inclusive).")
        periods.append(Period(name, start, end))
    return sorted(periods, key=lambda p: p.start)


def period_of(year: float | None, periods: Sequence[Period]) -> str | None:
    """The name of the period holding ``year``, or None (also for a missing year: None, NaN
    or ``pd.NA``, as documents.csv gives a year that no file name or metadata supplied)."""
    if year is None or year is pd.NA or (isinstance(year, float) and math.isnan(year)):
        return None
    for p in periods:
        if p.contains(int(year)):
            return p.name
    return None


def with_periods(documents: pd.DataFrame, periods: Sequence[Period]) -> pd.DataFrame:
    """``documents`` with a ``period`` column (None for years outside every period)."""
    out = documents.copy()
    out["period"] = [period_of(y, periods) for y in out["year"]]
    order = [p.name for p in periods]
    out["period"] = pd.Categorical(out["period"], categories=order, ordered=True)
    return out


# --------------------------------------------------------------------------- run tables


@dataclass(frozen=True)
class RunTables:
    """The tables of one run folder (or of several, combined)."""

    documents: pd.DataFrame
    term_counts: pd.DataFrame
    scores: pd.DataFrame
    cooccurrence: pd.DataFrame
    manifest: dict[str, Any]
    run_dir: Path | None = None
    #: units.csv (per-paragraph counts and tokens); None for a run folder written before it
    #: existed: intervals then resample documents only.
    units: pd.DataFrame | None = None


_TABLE_DTYPES: dict[str, dict[str, Any]] = {
    "documents": {"doc_id": str, "title": str, "date": str, "issuer": str, "level": str,
                  "region": str, "doc_type": str, "language": str, "path": str},
    "term_counts": {"doc_id": str, "dimension": str, "category": str, "term": str},
    "scores": {"doc_id": str, "scope": str, "dimension": str, "category": str},
    "cooccurrence": {"doc_id": str, "unit": str, "dimension_a": str, "category_a": str,
                     "dimension_b": str, "category_b": str},
}
_UNIT_DTYPES: dict[str, Any] = {"doc_id": str, "scope": str, "category": str}
_REQUIRED = {
    "documents": ("doc_id", "year", "tokens"),
    "term_counts": ("doc_id", "dimension", "category", "term", "count"),
    "scores": ("doc_id", "scope", "dimension", "category", "count", "tokens"),
    "cooccurrence": ("doc_id", "unit", "dimension_a", "category_a", "dimension_b",
                     "category_b", "count"),
}


def read_run(run_dir: Path) -> RunTables:
    """Read a run folder written by ``mobilize run`` (CSV tables and run.json)."""
    run_dir = Path(run_dir)
    if not (run_dir / "documents.csv").is_file():
        raise MobilizeError("not a run folder (no documents.csv)", path=run_dir,
                            fix="Run `mobilize run --corpus PATH --out DIR` first, and give "
                                "the folder <DIR>/<corpus name>.")
    tables: dict[str, pd.DataFrame] = {}
    for name, dtypes in _TABLE_DTYPES.items():
        path = run_dir / f"{name}.csv"
        if not path.is_file():
            raise MobilizeError(f"the run folder has no {name}.csv", path=run_dir,
                                fix="Re-run `mobilize run` for this corpus.")
        df = pd.read_csv(path, dtype=dtypes, keep_default_na=False, na_values={"year": [""]})
        missing = [c for c in _REQUIRED[name] if c not in df.columns]
        if missing:
            raise MobilizeError(f"{name}.csv lacks the columns {', '.join(missing)}",
                                path=path, line=1,
                                fix="Re-run `mobilize run` with this version of mobilize.")
        tables[name] = df
    units = None
    if (run_dir / "units.csv").is_file():
        units = pd.read_csv(run_dir / "units.csv", dtype=_UNIT_DTYPES, keep_default_na=False)
    manifest: dict[str, Any] = {}
    if (run_dir / "run.json").is_file():
        manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    docs = tables["documents"]
    docs["year"] = pd.to_numeric(docs["year"], errors="coerce").astype("Int64")
    if "corpus" not in docs.columns:
        corpus = manifest.get("corpus", {})
        docs["corpus"] = str(corpus.get("name", run_dir.name)) if isinstance(corpus, dict) \
            else str(corpus or run_dir.name)
    return RunTables(docs, tables["term_counts"], tables["scores"], tables["cooccurrence"],
                     manifest, run_dir, units)


def combine_runs(runs: Sequence[RunTables]) -> RunTables:
    """Several runs as one: doc ids become ``<corpus>/<doc_id>`` so they cannot collide."""
    if len(runs) == 1:
        return runs[0]
    names = [str(r.documents["corpus"].iloc[0]) if len(r.documents) else "" for r in runs]
    if len(set(names)) != len(names):
        raise MobilizeError(f"two of the runs have the same corpus name ({', '.join(names)})",
                            fix="Compare different corpora, or register one under another "
                                "name.")

    def prefixed(df: pd.DataFrame, name: str) -> pd.DataFrame:
        df = df.copy()
        df["doc_id"] = name + "/" + df["doc_id"].astype(str)
        return df

    parts = {k: [prefixed(getattr(r, k), n) for r, n in zip(runs, names)]
             for k in ("documents", "term_counts", "scores", "cooccurrence")}
    manifest = {"combined": [r.manifest for r in runs]}
    joined = {k: pd.concat(v, ignore_index=True) for k, v in parts.items()}
    units = None
    if all(r.units is not None for r in runs):  # (else documents only, for every run alike)
        units = pd.concat([prefixed(r.units, n) for r, n in zip(runs, names)  # type: ignore[arg-type]
                           ], ignore_index=True)
    return RunTables(joined["documents"], joined["term_counts"], joined["scores"],
                     joined["cooccurrence"], manifest=manifest, units=units)


# --------------------------------------------------------------------------- rates


#: The codebook's order of dimensions; tables list categories in this order (``frame``, the
#: paper's own frame tracked as no feature, pathway or challenge, last).
DIMENSION_ORDER = ("feature", "pathway", "challenge", "domain", "frame")


def _categories(scores: pd.DataFrame) -> pd.DataFrame:
    cats = scores[["dimension", "category"]].drop_duplicates()
    rank = {d: i for i, d in enumerate(DIMENSION_ORDER)}
    keys = sorted(zip(cats["dimension"], cats["category"]),
                  key=lambda dc: (rank.get(dc[0], len(rank)), dc[0], dc[1]))
    return pd.DataFrame(keys, columns=["dimension", "category"])


def doc_matrix(documents: pd.DataFrame, scores: pd.DataFrame, scope: str
               ) -> tuple[pd.DataFrame, pd.Series]:
    """Counts as a documents x (dimension, category) matrix, and each document's tokens.

    For scope ``all`` the tokens are documents.csv's; for a domain scope they are
    the tokens of that scope as scores.csv gives them (0 where it has no row). It depends
    only on the documents' ids (in order), the scores and the scope, not on any grouping:
    a caller rating the same documents by several columns builds it once per scope and
    passes it to ``pooled_rates(matrix=...)``.
    """
    if scope not in SCOPES:
        raise MobilizeError(f"unknown scope {scope!r}", fix=f"Use one of {', '.join(SCOPES)}.")
    sc = scores[scores["scope"] == scope]
    columns = pd.MultiIndex.from_frame(_categories(scores))
    # The counts summed into a zero matrix by (document, category) position: what a
    # pivot_table (sum, missing as 0) reindexed to these rows and columns gives, without
    # its grouping machinery. Integer counts: the float sums are exact.
    ids, id_order = pd.factorize(sc["doc_id"])  # (doc ids may repeat in ``documents``)
    row_of_id = pd.Index(id_order).get_indexer(documents["doc_id"])
    col = columns.get_indexer(pd.MultiIndex.from_arrays([sc["dimension"], sc["category"]]))
    keep = (ids >= 0) & (col >= 0)
    by_id = np.zeros((len(id_order) + 1, len(columns)))  # (the last row: ids with no scores)
    np.add.at(by_id, (ids[keep], col[keep]),
              sc["count"].to_numpy(dtype=float, na_value=0.0)[keep])
    counts = pd.DataFrame(by_id[row_of_id], index=pd.Index(documents["doc_id"]),
                          columns=columns)
    if scope == "all":
        tokens = documents.set_index("doc_id")["tokens"].astype(float)
    else:
        tokens = (sc.groupby("doc_id")["tokens"].max()
                  .reindex(documents["doc_id"], fill_value=0).astype(float))
    return counts, tokens


def _bootstrap_weights(n: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """How often each of n documents is drawn in each replicate: (n_boot, n)."""
    if n == 0:
        return np.zeros((n_boot, 0))
    return rng.multinomial(n, np.full(n, 1.0 / n), size=n_boot).astype(float)


def bootstrap_rates(counts: np.ndarray, tokens: np.ndarray, *, n_boot: int,
                    rng: np.random.Generator) -> np.ndarray:
    """Pooled rates (per 10k) of ``n_boot`` resamples of the documents: (n_boot, categories).

    ``counts`` is documents x categories, ``tokens`` the documents' tokens. A
    replicate with no tokens gives NaN.
    """
    w = _bootstrap_weights(counts.shape[0], n_boot, rng)
    num = w @ counts
    den = w @ tokens
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den[:, None] > 0, num / den[:, None] * 10_000, np.nan)


@dataclass(frozen=True)
class ParagraphMatrix:
    """The blocks of a run's documents (units.csv: paragraphs, long ones cut into runs of
    at most 10 sentences) for one scope: counts as blocks x categories (the columns of
    ``doc_matrix``), each block's tokens, and the position of its document in the
    ``documents`` the matrix was built for."""

    counts: np.ndarray
    tokens: np.ndarray
    doc_pos: np.ndarray


def paragraph_matrix(documents: pd.DataFrame, units: pd.DataFrame | None, scores: pd.DataFrame,
                     scope: str) -> ParagraphMatrix | None:
    """``units.csv`` as a ``ParagraphMatrix`` for ``scope``; None when the run has no units
    table or it does not cover this scope (intervals then resample documents only)."""
    if units is None or scope not in set(units["scope"]):
        return None
    u = units[units["scope"] == scope]
    u = u[u["doc_id"].isin(set(documents["doc_id"]))]
    u = u.sort_values(["doc_id", "block"], kind="mergesort")
    key = u["doc_id"].astype(str) + "\x1f" + u["block"].astype(str)
    pid, uniq = pd.factorize(key)
    first = np.unique(pid, return_index=True)[1]
    cats = _categories(scores)
    col_of = {c: i for i, c in enumerate(cats["category"])}
    col = np.array([col_of.get(c, -1) for c in u["category"]], dtype=int)
    counts = np.zeros((len(uniq), len(cats)))
    keep = col >= 0
    np.add.at(counts, (pid[keep], col[keep]), u["count"].to_numpy(dtype=float)[keep])
    tokens = u["tokens"].to_numpy(dtype=float)[first]
    doc_ids = u["doc_id"].to_numpy()[first]
    doc_pos = pd.Index(documents["doc_id"]).get_indexer(doc_ids)
    return ParagraphMatrix(counts, tokens, doc_pos)


#: Replicates drawn at once by the nested bootstrap (bounds its memory).
_BOOT_CHUNK = 250


def nested_bootstrap_rates(para_counts: np.ndarray, para_tokens: np.ndarray,
                           para_doc: np.ndarray, n_docs: int, *, n_boot: int,
                           rng: np.random.Generator) -> np.ndarray:
    """Pooled rates (per 10k) of ``n_boot`` two-stage resamples: (n_boot, categories).

    Stage 1 draws the group's ``n_docs`` documents with replacement (a group of one
    document keeps it); stage 2 resamples the paragraphs of each drawn copy of a document
    with replacement, as Poisson(1) weights per paragraph and copy (a document drawn k times
    gives each of its paragraphs a Poisson(k) weight: the sum of k independent draws).
    ``para_doc`` gives each paragraph's document (0..n_docs-1). A paragraph is a block of
    consecutive sentences, so this is a block bootstrap of the text within documents."""
    if n_docs == 0 or len(para_tokens) == 0:
        return np.full((n_boot, para_counts.shape[1]), np.nan)
    w = (_bootstrap_weights(n_docs, n_boot, rng) if n_docs > 1
         else np.ones((n_boot, 1)))
    out = np.empty((n_boot, para_counts.shape[1]))
    for lo in range(0, n_boot, _BOOT_CHUNK):
        hi = min(lo + _BOOT_CHUNK, n_boot)
        pw = rng.poisson(w[lo:hi][:, para_doc]).astype(float)
        num, den = pw @ para_counts, pw @ para_tokens
        with np.errstate(divide="ignore", invalid="ignore"):
            out[lo:hi] = np.where(den[:, None] > 0, num / den[:, None] * 10_000, np.nan)
    return out


def _group_replicates(c: np.ndarray, t: np.ndarray, idx: Sequence[int],
                      paragraphs: ParagraphMatrix | None, *, n_boot: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """The bootstrap replicates of one group of documents (rows ``idx``) and how they were
    drawn: ``documents+paragraphs``, ``paragraphs`` (one document) or ``documents`` (no
    units table)."""
    if paragraphs is None:
        return bootstrap_rates(c, t, n_boot=n_boot, rng=rng), "documents"
    local = {pos: k for k, pos in enumerate(idx)}
    sel = np.isin(paragraphs.doc_pos, np.asarray(list(idx), dtype=int))
    para_doc = np.array([local[p] for p in paragraphs.doc_pos[sel]], dtype=int)
    reps = nested_bootstrap_rates(paragraphs.counts[sel], paragraphs.tokens[sel], para_doc,
                                  len(idx), n_boot=n_boot, rng=rng)
    return reps, ("documents+paragraphs" if len(idx) > 1 else "paragraphs")


def _percentile_ci(reps: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The percentile interval of each column of ``reps``, NaN (replicates without tokens)
    left out."""
    lo_q, hi_q = (1 - level) / 2 * 100, (1 + level) / 2 * 100
    if reps.shape[0] == 0 or np.all(np.isnan(reps)):
        nan = np.full(reps.shape[1], np.nan)
        return nan, nan
    missing = np.isnan(reps)
    rows = missing.any(axis=1)
    if np.array_equal(rows, missing.all(axis=1)):
        # NaN only as whole replicates (a draw with no tokens): without those rows
        # ``percentile`` gives ``nanpercentile``'s numbers, bit for bit, without its slow
        # column-by-column path (the bootstrap's largest cost).
        lo, hi = np.percentile(reps[~rows], [lo_q, hi_q], axis=0)
        return lo, hi
    with np.errstate(all="ignore"):
        return np.nanpercentile(reps, lo_q, axis=0), np.nanpercentile(reps, hi_q, axis=0)


def pooled_rates(documents: pd.DataFrame, scores: pd.DataFrame, by: str | None, *,
                 scope: str = "all", seed: int, n_boot: int = DEFAULT_BOOT,
                 level: float = 0.95,
                 matrix: tuple[pd.DataFrame, pd.Series] | None = None,
                 paragraphs: ParagraphMatrix | None = None) -> pd.DataFrame:
    """Pooled rate per group of ``by`` (None: the whole corpus) and category, with bootstrap CI.

    Columns: ``<by>, dimension, category, documents, count, tokens, rate_per_10k,
    ci_low, ci_high, ci_basis``; rows sorted by group, dimension, category. Groups with a
    missing value of ``by`` are left out. ``matrix`` is ``doc_matrix(documents, scores,
    scope)`` when the caller already has it (same documents in the same order).
    ``paragraphs`` (``paragraph_matrix`` of the same documents) makes the interval a
    two-stage bootstrap, documents then paragraphs within them (``nested_bootstrap_rates``);
    without it only documents are resampled, and a one-document group has a point interval.
    ``ci_basis`` says which.
    """
    if matrix is None:
        matrix = doc_matrix(documents, scores, scope)
    counts, tokens = matrix
    if len(counts) != len(documents):
        raise ValueError("pooled_rates: the matrix is not of these documents")
    cats = counts.columns.to_frame(index=False)
    keys = _group_keys(documents, by)
    cols = ([by] if by is not None else []) + _RATE_COLUMNS
    if not keys:
        return pd.DataFrame(columns=cols)
    cm, tv = counts.to_numpy(), tokens.to_numpy()
    n_cat = cm.shape[1]
    sums, tok, ndocs, lows, highs, basis = [], [], [], [], [], []
    # One generator per group, derived from the seed and the group's position,
    # so that a group's interval does not depend on the draws of the others.
    for i, (_key, idx) in enumerate(keys):
        c, t = cm[idx], tv[idx]
        sums.append(c.sum(axis=0))
        tok.append(t.sum())
        ndocs.append(len(idx))
        reps, how = _group_replicates(c, t, idx, paragraphs, n_boot=n_boot,
                                      rng=np.random.default_rng([seed, i]))
        lo, hi = _percentile_ci(reps, level)
        lows.append(lo)
        highs.append(hi)
        basis.append(how)
    total_c = np.concatenate(sums)
    total_t = np.repeat(np.asarray(tok, dtype=float), n_cat)
    out = pd.DataFrame({
        "dimension": np.tile(cats["dimension"].to_numpy(), len(keys)),
        "category": np.tile(cats["category"].to_numpy(), len(keys)),
        "documents": np.repeat(ndocs, n_cat),
        "count": total_c.astype(int),
        "tokens": total_t.astype(int),
        "rate_per_10k": np.divide(total_c * 10_000, total_t, out=np.zeros_like(total_c),
                                  where=total_t > 0),
        "ci_low": np.concatenate(lows), "ci_high": np.concatenate(highs),
        "ci_basis": np.repeat(np.array(basis, dtype=object), n_cat)})
    if by is not None:
        values = [k for k, _ in keys]
        col = pd.Series(np.repeat(np.array(values, dtype=object), n_cat))
        if isinstance(documents[by].dtype, pd.CategoricalDtype):
            col = pd.Categorical(col, categories=documents[by].cat.categories, ordered=True)
        elif pd.api.types.is_integer_dtype(documents[by].dtype):
            col = col.astype("int64")
        out.insert(0, by, col)
    return out[cols]


def _group_keys(documents: pd.DataFrame, by: str | None) -> list[tuple[Any, list[int]]]:
    """(group value, row positions) in the group's natural order."""
    if by is None:
        return [(None, list(range(len(documents))))]
    if by not in documents.columns:
        raise MobilizeError(f"documents.csv has no column {by!r}",
                            fix="Group by one of: " + ", ".join(
                                c for c in GROUP_COLUMNS if c in documents.columns) + ".")
    col = documents[by]
    groups: dict[Any, list[int]] = {}
    for pos, value in enumerate(col):
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)) \
                or value == "":
            continue
        groups.setdefault(value, []).append(pos)
    if isinstance(col.dtype, pd.CategoricalDtype):
        order = [c for c in col.cat.categories if c in groups]
    else:
        order = sorted(groups, key=lambda v: (str(type(v)), v))
    return [(k, groups[k]) for k in order]


#: A group with fewer documents than this is "descriptive only" in a comparison: no
#: stars, no p-values, no inferential intervals.
MIN_GROUP_DOCS = 5
DIFFERENCE_COLUMNS = ["dimension", "category", "docs_a", "docs_b", "tokens_a", "tokens_b",
                      "rate_a", "rate_b", "difference", "ci_low", "ci_high", "ratio",
                      "model", "rr_ci_low", "rr_ci_high", "p_value", "p_adjusted", "significant",
                      "inference"]


def descriptive_note(docs_a: int, docs_b: int, min_docs: int = MIN_GROUP_DOCS) -> str:
    """Why a comparison of groups of these sizes is descriptive only ("" when it is not)."""
    small = [f"{name} has {n} document{'s' if n != 1 else ''}"
             for name, n in (("A", docs_a), ("B", docs_b)) if n < min_docs]
    if not small:
        return ""
    return f"descriptive only: {' and '.join(small)} (fewer than {min_docs})"


def rate_differences(documents: pd.DataFrame, scores: pd.DataFrame, by: str, a: Any, b: Any,
                     *, scope: str = "all", seed: int, n_boot: int = DEFAULT_BOOT,
                     level: float = 0.95, units: pd.DataFrame | None = None,
                     min_docs: int = MIN_GROUP_DOCS, alpha: float = 0.05) -> pd.DataFrame:
    """Rate of group ``a`` minus rate of group ``b`` per category, with its uncertainty.

    ``difference`` has a bootstrap CI: each group resampled independently (with ``units``:
    documents, then paragraphs within them, as ``pooled_rates``). ``ratio`` = rate_a /
    rate_b; ``rr_ci_low``/``rr_ci_high`` and ``p_value`` come from a count model of the
    documents' counts on the group (``fit_counts``: offset log(tokens), quasi-Poisson or
    negative binomial by the measured dispersion), ``p_adjusted`` is Benjamini-Hochberg
    across categories, and ``significant`` is True where it is below ``alpha``. When a
    group has fewer than ``min_docs`` documents the comparison is descriptive only: the
    intervals, p-values and ``significant`` are left empty and ``inference`` says why.
    Columns: ``DIFFERENCE_COLUMNS``.
    """
    col = documents[by].astype(str) if by in documents.columns else None
    if col is None:
        _group_keys(documents, by)  # raises the helpful error
        raise AssertionError  # pragma: no cover
    counts, tokens = doc_matrix(documents, scores, scope)
    paragraphs = paragraph_matrix(documents, units, scores, scope)
    mats = []
    masks = []
    for j, value in enumerate((a, b)):
        mask = (col == str(value)).to_numpy()
        if not mask.any():
            present = sorted(set(col) - {"", "<NA>", "nan", "None"})
            raise MobilizeError(f"no document has {by} = {value!r}",
                                fix=f"Use one of: {', '.join(present[:30])}.")
        c, t = counts.to_numpy()[mask], tokens.to_numpy()[mask]
        reps, _how = _group_replicates(c, t, list(np.flatnonzero(mask)), paragraphs,
                                       n_boot=n_boot, rng=np.random.default_rng([seed, j]))
        rate = c.sum(axis=0) / t.sum() * 10_000 if t.sum() > 0 else np.zeros(c.shape[1])
        mats.append((int(mask.sum()), float(t.sum()), rate, reps))
        masks.append(mask)
    (na, ta, ra, reps_a), (nb, tb, rb, reps_b) = mats
    lo, hi = _percentile_ci(reps_a - reps_b, level)
    out = counts.columns.to_frame(index=False)
    out["docs_a"], out["docs_b"] = na, nb
    out["tokens_a"], out["tokens_b"] = int(ta), int(tb)
    out["rate_a"], out["rate_b"] = ra, rb
    out["difference"] = ra - rb
    out["ci_low"], out["ci_high"] = lo, hi
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio"] = np.where(rb > 0, ra / np.where(rb > 0, rb, 1), np.nan)
    note = descriptive_note(na, nb, min_docs)
    model, rr_lo, rr_hi, pv = [], [], [], []
    both = masks[0] | masks[1]
    x = masks[0][both].astype(float)  # 1 = group A
    cm, tv = counts.to_numpy()[both], tokens.to_numpy()[both]
    for j in range(cm.shape[1]):
        fit = None if note else fit_counts(cm[:, j], tv, x)
        if fit is None:
            model.append("")
            rr_lo.append(np.nan)
            rr_hi.append(np.nan)
            pv.append(np.nan)
            continue
        _rr, low, high = fit.ratio()
        model.append(fit.model)
        rr_lo.append(low)
        rr_hi.append(high)
        pv.append(fit.p_value)
    out["model"], out["rr_ci_low"], out["rr_ci_high"] = model, rr_lo, rr_hi
    out["p_value"] = pv
    out["p_adjusted"] = benjamini_hochberg(out["p_value"].to_numpy())
    out["significant"] = pd.array([None if np.isnan(p) else bool(p < alpha)
                                   for p in out["p_adjusted"]], dtype="boolean")
    if note:
        out["ci_low"], out["ci_high"] = np.nan, np.nan
    out["inference"] = note
    return out[DIFFERENCE_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------- composition


#: The columns whose values name the unit a document speaks for (a province, a level).
UNIT_COLUMNS = ("level", "region")


def unit_key(documents: pd.DataFrame) -> pd.Series:
    """Each document's unit: its ``level`` and ``region`` joined by "/" (the columns that
    have values; "" when none has)."""
    cols = [c for c in UNIT_COLUMNS if c in documents.columns
            and documents[c].astype(str).replace({"nan": "", "<NA>": ""}).ne("").any()]
    if not cols:
        return pd.Series([""] * len(documents), index=documents.index)
    parts = documents[cols].astype(str).replace({"nan": "", "<NA>": ""})
    return parts.apply(lambda r: "/".join(v for v in r if v), axis=1)


def composition_by_year(documents: pd.DataFrame) -> pd.DataFrame:
    """Per year with documents: ``year, documents, tokens, units, unit_list, change``.

    ``change`` is True where the set of units (``unit_key``) differs from the previous
    year with documents: the series then joins different populations (e.g. one province,
    then all 31) and a per-year line must not run across it.
    """
    docs = documents[documents["year"].notna()].copy()
    cols = ["year", "documents", "tokens", "units", "unit_list", "change"]
    if docs.empty:
        return pd.DataFrame(columns=cols)
    docs["_unit"] = unit_key(docs).to_numpy()
    rows, prev = [], None
    for year, g in docs.groupby(docs["year"].astype(int), sort=True):
        units = tuple(sorted(set(g["_unit"])))
        rows.append({"year": int(year), "documents": len(g), "tokens": int(g["tokens"].sum()),
                     "units": len(units), "unit_list": " ".join(units),
                     "change": prev is not None and units != prev})
        prev = units
    return pd.DataFrame(rows, columns=cols)


def balanced_units(documents: pd.DataFrame, years: Sequence[int] | None = None) -> list[str]:
    """The units with documents in every year of ``years`` (default: every year with
    documents): the balanced panel."""
    docs = documents[documents["year"].notna()]
    if docs.empty:
        return []
    units = unit_key(docs)
    yrs = sorted(set(int(y) for y in docs["year"])) if years is None else list(years)
    per_year = [set(units[docs["year"].astype(int) == y]) for y in yrs]
    common = set.intersection(*per_year) if per_year else set()
    return sorted(u for u in common if u)


def mixed_composition(documents: pd.DataFrame, mask: np.ndarray, label: str) -> str:
    """A warning when the documents of one group (``mask``) come from years whose units
    differ (e.g. Shanghai alone in some years, all provinces in others); "" otherwise."""
    comp = composition_by_year(documents[mask])
    if len(comp) < 2 or not comp["change"].any():
        return ""
    spans = "; ".join(f"{r.year}: {r.units} unit{'s' if r.units != 1 else ''}"
                      for r in comp.itertuples())
    return (f"group {label} mixes years with different units ({spans}): its rate blends "
            "different populations; compare years with the same units, or use --years")


# --------------------------------------------------------------------------- trends


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``); NaN
    stays NaN and is not counted."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        from scipy.stats import false_discovery_control

        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


def mann_kendall(values: Sequence[float]) -> tuple[float, float, float]:
    """Mann-Kendall S, Kendall's tau and the two-sided p-value (normal approximation,
    variance corrected for ties, continuity correction), as in pymannkendall's
    ``original_test``."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    s = 0.0
    for k in range(n - 1):
        s += np.sign(x[k + 1:] - x[k]).sum()
    _, tie_counts = np.unique(x, return_counts=True)
    var_s = (n * (n - 1) * (2 * n + 5) - (tie_counts * (tie_counts - 1)
                                          * (2 * tie_counts + 5)).sum()) / 18
    if var_s <= 0:
        return s, 0.0, 1.0
    z = (s - np.sign(s)) / math.sqrt(var_s) if s != 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))
    tau = s / (n * (n - 1) / 2)
    return float(s), float(tau), float(p)


def theil_sen(years: Sequence[float], values: Sequence[float]) -> float:
    """Theil-Sen slope (``scipy.stats.theilslopes``): the median of the pairwise slopes (value
    units per year); NaN when all years are the same."""
    x, y = np.asarray(years, dtype=float), np.asarray(values, dtype=float)
    if len(x) < 2 or np.all(x == x[0]):
        return float("nan")
    from scipy.stats import theilslopes

    return float(theilslopes(y, x).slope)


def trends(yearly: pd.DataFrame, *, min_points: int = MIN_TREND_POINTS,
           alpha: float = 0.05) -> pd.DataFrame:
    """Mann-Kendall + Theil-Sen per category over a per-year rates table.

    ``yearly`` is ``pooled_rates(..., by="year")``. Columns: ``dimension,
    category, years, first_year, last_year, s, tau, p_value, p_adjusted, slope_per_year,
    trend, note``. ``trend`` is increasing / decreasing / no trend (at the
    adjusted p < alpha), or empty with a note where the series is too short.
    """
    rows = []
    for (dim, cat), g in yearly.sort_values("year").groupby(["dimension", "category"],
                                                            sort=True):
        g = g[g["tokens"] > 0]
        years, rates = g["year"].astype(float).to_numpy(), g["rate_per_10k"].to_numpy()
        row: dict[str, Any] = {"dimension": dim, "category": cat, "years": len(g),
                               "first_year": int(years.min()) if len(g) else None,
                               "last_year": int(years.max()) if len(g) else None,
                               "s": np.nan, "tau": np.nan, "p_value": np.nan,
                               "slope_per_year": np.nan, "note": ""}
        if len(g) < min_points:
            row["note"] = (f"too few years with documents ({len(g)}, fewer than {min_points}): "
                           "no trend test")
        else:
            row["s"], row["tau"], row["p_value"] = mann_kendall(rates)
            row["slope_per_year"] = theil_sen(years, rates)
        rows.append(row)
    out = pd.DataFrame(rows, columns=["dimension", "category", "years", "first_year",
                                      "last_year", "s", "tau", "p_value", "slope_per_year",
                                      "note"])
    out["p_adjusted"] = benjamini_hochberg(out["p_value"].to_numpy()) if len(out) else []

    def label(r: pd.Series) -> str:
        if np.isnan(r["p_value"]):
            return ""
        # (a significant S with a Theil-Sen slope of 0, as series of many zero years give,
        # is not called a direction)
        if r["p_adjusted"] < alpha and r["slope_per_year"] != 0:
            return "increasing" if r["s"] > 0 else "decreasing"
        return "no trend"

    out["trend"] = out.apply(label, axis=1) if len(out) else []
    return out[["dimension", "category", "years", "first_year", "last_year", "s", "tau",
                "p_value", "p_adjusted", "slope_per_year", "trend", "note"]]


#: A category needs hits in at least this many distinct years for a trend test.
MIN_NONZERO_YEARS = 5
#: Pearson dispersion (chi2 / residual df of the Poisson fit) from which the negative binomial
#: replaces the quasi-Poisson model.
NB_DISPERSION = 2.0
_Z975 = 1.959963984540054


@dataclass(frozen=True)
class CountFit:
    """One coefficient of a count model with ``log(tokens)`` as offset."""

    model: str  # "quasi-Poisson" or "negative binomial"
    dispersion: float  # Pearson chi2 / residual df of the Poisson fit
    coef: float
    se: float
    p_value: float

    def ratio(self) -> tuple[float, float, float]:
        """exp(coef) with its 95% Wald interval."""
        with np.errstate(over="ignore"):  # (a category absent from one group: inf)
            return (float(np.exp(self.coef)), float(np.exp(self.coef - _Z975 * self.se)),
                    float(np.exp(self.coef + _Z975 * self.se)))


def fit_counts(counts: np.ndarray, tokens: np.ndarray, x: np.ndarray) -> CountFit | None:
    """Counts ~ x with offset log(tokens) (statsmodels GLM, log link); the coefficient of x.

    The Poisson fit's Pearson dispersion phi chooses the model: below ``NB_DISPERSION`` a
    quasi-Poisson GLM (Poisson with its standard errors scaled by sqrt(max(phi, 1)),
    McCullagh and Nelder 1989, ch. 4.5); from it on a negative binomial (NB2) GLM whose
    alpha is the moment estimate of Cameron and Trivedi (2013, ch. 3.2), iterated with the
    NB fit (statsmodels' maximum-likelihood ``NegativeBinomial`` took about a second per
    category). None when the fit fails or is degenerate.
    """
    import warnings

    from statsmodels.genmod import families
    from statsmodels.genmod.generalized_linear_model import GLM

    ok = tokens > 0
    y, t, xv = counts[ok], tokens[ok], x[ok]
    if len(y) < 3 or np.all(xv == xv[0]) or y.sum() == 0:
        return None
    exog = np.column_stack([np.ones(len(xv)), xv])
    offset = np.log(t)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            pois = GLM(y, exog, family=families.Poisson(), offset=offset).fit()
            df = float(pois.df_resid)
            phi = float(pois.pearson_chi2) / df if df > 0 else float("nan")
            res, model = None, "quasi-Poisson"
            if np.isfinite(phi) and phi >= NB_DISPERSION:
                # NB2's alpha by the moment estimator of Cameron and Trivedi (2013, 3.2),
                # iterated with the NB fit's means: alpha = sum(((y-mu)^2 - mu) / mu^2) / df.
                mu, alpha = np.asarray(pois.fittedvalues), float("nan")
                for _ in range(5):
                    alpha = float(np.sum(((y - mu) ** 2 - mu) / mu ** 2) / df)
                    if not (np.isfinite(alpha) and alpha > 0):
                        break
                    res = GLM(y, exog, family=families.NegativeBinomial(alpha=alpha),
                              offset=offset).fit()
                    mu = np.asarray(res.fittedvalues)
                    model = "negative binomial"
                if not (np.isfinite(alpha) and alpha > 0):
                    res, model = None, "quasi-Poisson"
            if res is None:
                scale = max(phi, 1.0) if np.isfinite(phi) else 1.0
                res = GLM(y, exog, family=families.Poisson(), offset=offset).fit(scale=scale)
                model = "quasi-Poisson"
        except Exception:  # noqa: BLE001 - a degenerate series gets no test, not a crash
            return None
    coef, se, p = (float(np.asarray(res.params)[1]), float(np.asarray(res.bse)[1]),
                   float(np.asarray(res.pvalues)[1]))
    if not (np.isfinite(coef) and np.isfinite(se) and np.isfinite(p)):
        return None
    return CountFit(model, phi, coef, se, p)


TREND_COLUMNS = ["dimension", "category", "documents", "years", "nonzero_years", "first_year",
                 "last_year", "model", "dispersion", "rate_ratio_per_decade", "rr_ci_low",
                 "rr_ci_high", "p_value", "p_adjusted", "trend", "note"]


def count_trends(documents: pd.DataFrame, scores: pd.DataFrame, *, scope: str = "all",
                 min_nonzero_years: int = MIN_NONZERO_YEARS, alpha: float = 0.05,
                 matrix: tuple[pd.DataFrame, pd.Series] | None = None) -> pd.DataFrame:
    """Per category, a count model of its documents' counts on the actual year (``fit_counts``:
    offset log(tokens); quasi-Poisson or negative binomial by the measured dispersion).

    The year is in decades from the mean year, so exp(coef) is the rate ratio per decade,
    given with its 95% Wald interval. p-values are adjusted across the tested categories
    with Benjamini-Hochberg; ``trend`` is increasing / decreasing only where the adjusted p
    is below ``alpha`` (the interval at that adjusted level excludes 1), else "no trend";
    "too sparse to test" where the category has hits in fewer than ``min_nonzero_years``
    distinct years. Columns: ``TREND_COLUMNS``.
    """
    if matrix is None:
        matrix = doc_matrix(documents, scores, scope)
    counts, tokens = matrix
    year = pd.to_numeric(documents["year"], errors="coerce").to_numpy(dtype=float,
                                                                       na_value=np.nan)
    keep = ~np.isnan(year) & (tokens.to_numpy() > 0)
    cm, tv, yr = counts.to_numpy()[keep], tokens.to_numpy()[keep], year[keep]
    x = (yr - yr.mean()) / 10.0 if len(yr) else yr
    years = np.unique(yr)
    rows = []
    for j, (dim, cat) in enumerate(counts.columns):
        y = cm[:, j]
        nonzero = int(len(np.unique(yr[y > 0])))
        row: dict[str, Any] = {
            "dimension": dim, "category": cat, "documents": int(len(y)), "years": len(years),
            "nonzero_years": nonzero,
            "first_year": int(years.min()) if len(years) else None,
            "last_year": int(years.max()) if len(years) else None,
            "model": "", "dispersion": np.nan, "rate_ratio_per_decade": np.nan,
            "rr_ci_low": np.nan, "rr_ci_high": np.nan, "p_value": np.nan, "note": ""}
        fit = None
        if len(years) < 3:
            row["note"] = f"too few years with documents ({len(years)}, fewer than 3)"
        elif nonzero < min_nonzero_years:
            row["note"] = (f"too sparse to test: hits in {nonzero} year(s), fewer than "
                           f"{min_nonzero_years}")
        else:
            fit = fit_counts(y, tv, x)
            if fit is None:
                row["note"] = "the count model did not converge: no test"
        if fit is not None:
            rr, lo, hi = fit.ratio()
            row.update(model=fit.model, dispersion=fit.dispersion, rate_ratio_per_decade=rr,
                       rr_ci_low=lo, rr_ci_high=hi, p_value=fit.p_value)
        rows.append(row)
    out = pd.DataFrame(rows, columns=[c for c in TREND_COLUMNS if c not in ("p_adjusted",
                                                                            "trend")])
    out["p_adjusted"] = benjamini_hochberg(out["p_value"].to_numpy()) if len(out) else []

    def label(r: pd.Series) -> str:
        if r["note"].startswith("too sparse"):
            return "too sparse to test"
        if np.isnan(r["p_value"]):
            return ""
        if r["p_adjusted"] < alpha:
            return "increasing" if r["rate_ratio_per_decade"] > 1 else "decreasing"
        return "no trend"

    out["trend"] = out.apply(label, axis=1) if len(out) else []
    return out[TREND_COLUMNS]


#: Change points: the default penalty of ``pelt_l2`` (``change_points`` uses
#: ``change_penalty(n)``), and the shortest segment (years).
CHANGE_PENALTY = 3.0
CHANGE_MIN_SIZE = 3


def pelt_l2(signal: Sequence[float] | np.ndarray, penalty: float = CHANGE_PENALTY, *,
            min_size: int = CHANGE_MIN_SIZE) -> list[int]:
    """Optimal change points of ``signal`` under an L2 cost and a linear penalty (PELT).

    Minimises sum over segments of (cost(segment) + ``penalty``), where the cost of
    ``signal[s:e]`` is its sum of squared deviations from the segment mean
    (``var * (e - s)``), over segmentations whose segments all have at least
    ``min_size`` points. PELT (Killick, Fearnhead and Eckley 2012) gives the exact
    optimum: F(e) = min over admissible s of F(s) + cost(s, e) + penalty, and a start
    s is dropped for good once F(s) + cost(s, e) exceeds F(e) + penalty.

    Returns the sorted segment ends, the last being ``len(signal)`` (an empty list
    when the series is shorter than ``min_size``). This is the algorithm of
    ``ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(signal).predict(pen=penalty)``,
    step for step (same order of candidates, same sums, ties to the earliest start), so
    the results are the same; tests/test_compare.py checks it against ruptures when it
    is installed and on series with known steps.
    """
    x = np.asarray(signal, dtype=float).reshape(-1, 1)
    n = int(x.shape[0])
    min_size = max(1, int(min_size))
    if n < min_size:
        return []

    def cost(start: int, end: int) -> Any:
        return x[start:end].var(axis=0).sum() * (end - start)

    # partitions[t]: the best segmentation of signal[0:t], as (segment, cost + penalty)
    # pairs after a (0, 0) -> 0 start, summed in that order (as ruptures does).
    partitions: dict[int, list[tuple[tuple[int, int], Any]]] = {0: [((0, 0), 0)]}
    admissible: list[int] = []
    for end in [*range(min_size, n), n]:
        admissible.append(end - min_size)
        candidates = []
        for start in admissible:
            if start not in partitions:  # signal[0:start] cannot be cut into segments
                continue
            part = [*partitions[start], ((start, end), cost(start, end) + penalty)]
            candidates.append((start, part, sum(v for _, v in part)))
        best = min(candidates, key=lambda c: c[2])  # the first (earliest start) on ties
        partitions[end] = best[1]
        admissible = [start for start, _, total in candidates if total <= best[2] + penalty]
    return sorted(e for (s, e), _ in partitions[n][1:])


def change_penalty(n: int) -> float:
    """PELT's penalty for a series of ``n`` years on the noise scale (``change_points``):
    c(n) x log(n), c = 10 below 12 years, 7 below 15, 5 from 15 on. Calibrated on simulated
    series with no change (Poisson counts at a flat rate of 0.5, 3 or 20 per 10k over
    10,000-40,000 tokens a year, 300 series per length): at most about 5% of them get a
    change point at any length from 8 to 60 years (``bench/null_change_points.py`` prints
    the rates; tests/test_compare.py checks a batch)."""
    factor = 10.0 if n < 12 else 7.0 if n < 15 else 5.0
    return factor * math.log(max(n, 2))


def noise_scale(values: np.ndarray) -> float:
    """The series' noise standard deviation, robust to steps: 1.4826 x the median absolute
    deviation of the first differences, over sqrt(2) (a step moves one difference only);
    the differences' standard deviation over sqrt(2) when that MAD is 0; 0 for a constant
    series."""
    d = np.diff(np.asarray(values, dtype=float))
    if len(d) < 2:
        return 0.0
    mad = float(np.median(np.abs(d - np.median(d))))
    sigma = 1.4826 * mad / math.sqrt(2)
    if sigma <= 0:
        sigma = float(np.std(d, ddof=1)) / math.sqrt(2)
    return sigma


def change_points(yearly: pd.DataFrame, *, min_points: int = MIN_TREND_POINTS,
                  penalty: float | None = None,
                  min_size: int = CHANGE_MIN_SIZE) -> pd.DataFrame:
    """Change points (PELT, L2 cost) in each category's yearly rates.

    The rates of the years with documents are divided by their noise scale
    (``noise_scale``: a robust estimate from the first differences, so a step does not
    inflate it as a standard deviation would), then cut by ``pelt_l2`` with
    ``change_penalty(n)`` (or ``penalty``) and segments of at least ``min_size`` years.
    The penalty is calibrated so that a series with no change gets none (about 95% of
    simulated null series). Columns: ``dimension, category, change_years`` (the first year
    of each new segment, space-separated; empty where there is none, the series is
    constant or shorter than ``min_points``).
    """
    rows = []
    for (dim, cat), g in yearly.sort_values("year").groupby(["dimension", "category"],
                                                            sort=True):
        g = g[g["tokens"] > 0]
        found: list[int] = []
        x = g["rate_per_10k"].to_numpy(dtype=float)
        sigma = noise_scale(x) if len(g) >= min_points else 0.0
        if sigma > 0:
            pen = change_penalty(len(x)) if penalty is None else penalty
            bkps = pelt_l2(x / sigma, pen, min_size=min_size)
            years = g["year"].astype(int).tolist()
            found = [years[b] for b in bkps if b < len(years)]
        rows.append({"dimension": dim, "category": cat,
                     "change_years": " ".join(str(y) for y in found)})
    return pd.DataFrame(rows, columns=["dimension", "category", "change_years"])


# --------------------------------------------------------------------------- keyness


def log_odds_dirichlet(y_a: pd.Series, y_b: pd.Series, n_a: float, n_b: float,
                       alpha: pd.Series, alpha0: float | None = None) -> pd.DataFrame:
    """Weighted log-odds ratio with an informative Dirichlet prior (Monroe et al. 2008).

    For each word w with counts y_a, y_b in groups of n_a, n_b words and prior
    alpha_w (alpha0 = sum of alpha):
        delta_w = log((y_a+a_w)/(n_a+alpha0-y_a-a_w)) - log((y_b+a_w)/(n_b+alpha0-y_b-a_w))
        var_w  ~= 1/(y_a+a_w) + 1/(y_b+a_w),   z_w = delta_w / sqrt(var_w).
    Positive z: the word is more typical of group a. ``alpha0`` defaults to the
    sum of ``alpha``; give it when the vocabulary has words not listed (here:
    every token that is not a lexicon term).
    """
    idx = y_a.index.union(y_b.index).union(alpha.index)
    # Aligned once; the arithmetic is then on plain arrays (the same operations in the same
    # order, so the same numbers, without pandas' index checks at every step).
    ya = y_a.reindex(idx, fill_value=0).astype(float).to_numpy()
    yb = y_b.reindex(idx, fill_value=0).astype(float).to_numpy()
    al = alpha.reindex(idx, fill_value=0).astype(float).to_numpy()
    a0 = float(alpha.sum()) if alpha0 is None else float(alpha0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = (np.log((ya + al) / (n_a + a0 - ya - al))
                 - np.log((yb + al) / (n_b + a0 - yb - al)))
        var = 1 / (ya + al) + 1 / (yb + al)
        se = np.sqrt(var)
        z = delta / np.sqrt(var)
    return pd.DataFrame({"count_a": ya.astype(int), "count_b": yb.astype(int),
                         "delta": delta, "se": se, "z": z}, index=idx)


def keyness(documents: pd.DataFrame, term_counts: pd.DataFrame, by: str, a: Any, b: Any, *,
            alpha0: float | None = None) -> pd.DataFrame:
    """Keyness of lexicon terms between ``by == a`` and ``by == b``, overall and per category.

    The number of words of a group is its documents' tokens (so the "other"
    words are all non-lexicon tokens). ``alpha0`` defaults to ``PRIOR_SHARE`` times the
    smaller group's tokens. Prior: alpha_w = alpha0 * (pooled count
    of w) / (pooled tokens), the pooled frequency over both groups. Rows with
    ``within == "all"`` rank all terms together (a term in two categories is
    counted once); ``within == <category>`` ranks the terms of one category,
    with a prior built from that category's terms only. Sorted by within, z
    descending, term.

    Columns: ``within, dimension, category, term, count_a, count_b, rate_a,
    rate_b, delta, se, z``.
    """
    col = documents[by].astype(str)
    ids = {}
    tokens = {}
    for key, value in (("a", a), ("b", b)):
        mask = col == str(value)
        if not mask.any():
            raise MobilizeError(f"no document has {by} = {value!r}",
                                fix="Use a value that occurs in documents.csv.")
        ids[key] = set(documents.loc[mask, "doc_id"])
        tokens[key] = float(documents.loc[mask, "tokens"].sum())
    n_pool = tokens["a"] + tokens["b"]
    if alpha0 is None:
        # A tenth of the smaller group: the prior never weighs more than the smaller
        # group's own data (with a tenth of the pooled tokens, a one-document group
        # against 60 was drowned by it and every absent term got the same z).
        alpha0 = PRIOR_SHARE * min(tokens["a"], tokens["b"])
    tc = term_counts.copy()
    tc["group"] = np.where(tc["doc_id"].isin(ids["a"]), "a",
                           np.where(tc["doc_id"].isin(ids["b"]), "b", ""))
    tc = tc[tc["group"] != ""]
    parts = []

    def one(frame: pd.DataFrame, keys: list[str], within: str | None) -> pd.DataFrame:
        """The log-odds of each value of ``keys`` in ``frame``; ``within`` None: each row's
        category."""
        if frame.empty:
            return pd.DataFrame()
        ca = frame[frame["group"] == "a"].groupby(keys)["count"].sum()
        cb = frame[frame["group"] == "b"].groupby(keys)["count"].sum()
        pooled = frame.groupby(keys)["count"].sum()
        alpha = alpha0 * pooled / n_pool if n_pool > 0 else pooled * 0.0
        res = log_odds_dirichlet(ca, cb, tokens["a"], tokens["b"], alpha,
                                 alpha0).reset_index()
        res = res.rename(columns={"index": keys[0]}) if len(keys) == 1 else res
        res.insert(0, "within", res["category"] if within is None else within)
        return res

    # Overall: a term counted once even when it sits in two categories.
    overall = tc.drop_duplicates(["doc_id", "term", "group"])
    ov = one(overall, ["term"], "all")
    if not ov.empty:
        dims: dict[str, set[str]] = {}
        cats: dict[str, set[str]] = {}
        for term, dim, cat in zip(tc["term"], tc["dimension"], tc["category"], strict=True):
            dims.setdefault(term, set()).add(dim)
            cats.setdefault(term, set()).add(cat)
        first_cat = pd.DataFrame({"dimension": ["+".join(sorted(dims[t])) for t in dims],
                                  "category": ["+".join(sorted(cats[t])) for t in dims]},
                                 index=pd.Index(list(dims), name="term"))
        ov = ov.merge(first_cat, left_on="term", right_index=True, how="left")
        parts.append(ov)
    # Within each category, all categories in one pass: a term's prior comes from its own
    # pooled count in that category, so the rows are those of one category at a time.
    if not tc.empty:
        parts.append(one(tc, ["dimension", "category", "term"], None))
    cols = ["within", "dimension", "category", "term", "count_a", "count_b", "rate_a", "rate_b",
            "delta", "se", "z"]
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    out["rate_a"] = out["count_a"] / tokens["a"] * 10_000 if tokens["a"] else 0.0
    out["rate_b"] = out["count_b"] / tokens["b"] * 10_000 if tokens["b"] else 0.0
    out["_all"] = out["within"] != "all"
    out = out.sort_values(["_all", "within", "z", "term"], ascending=[True, True, False, True])
    return out[cols].reset_index(drop=True)


# --------------------------------------------------------------------------- other tables


def cooccurrence_by(documents: pd.DataFrame, cooccurrence: pd.DataFrame, by: str, *,
                    unit: str = "sentence", dimension_b: str = "pathway",
                    scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """Feature x ``dimension_b`` co-occurrence per group (e.g. per period).

    ``count`` is the number of units (sentences or paragraphs) in which both
    categories occur; ``per_1k_units`` divides by the group's units (documents.csv
    ``sentences`` / ``paragraphs``) x 1,000. With ``scores`` (whose rows list every
    category), every feature x ``dimension_b`` pair of every group has a row, zeros
    included, so a category that never co-occurs is still there. Columns: ``<by>,
    category_a, category_b, count, units, per_1k_units``.
    """
    units_col = {"sentence": "sentences", "paragraph": "paragraphs"}[unit]
    co = cooccurrence[(cooccurrence["unit"] == unit) & (cooccurrence["dimension_a"] == "feature")
                      & (cooccurrence["dimension_b"] == dimension_b)]
    docs = documents[["doc_id", by] + ([units_col] if units_col in documents.columns else [])]
    keys = _group_keys(documents, by)
    # Each group's documents as (doc_id, group position) pairs, then one grouped sum over
    # the co-occurrences of all groups (instead of a filter and a sum per group).
    members = pd.DataFrame([(doc_id, pos) for pos, (_key, idx) in enumerate(keys)
                            for doc_id in set(documents["doc_id"].iloc[idx])],
                           columns=["doc_id", "_group"])
    sums = (co[["doc_id", "category_a", "category_b", "count"]].merge(members, on="doc_id")
            .groupby(["_group", "category_a", "category_b"])["count"].sum())
    group_units = [float(docs[units_col].iloc[idx].sum()) if units_col in docs.columns
                   else np.nan for _key, idx in keys]
    if scores is not None:
        cats = _categories(scores)
        feats = list(cats.loc[cats["dimension"] == "feature", "category"])
        others = list(cats.loc[cats["dimension"] == dimension_b, "category"])
        full = pd.MultiIndex.from_product([range(len(keys)), feats, others])
        sums = sums.reindex(full.union(sums.index), fill_value=0).sort_index()
    rows = []
    for (pos, ca, cb), n in sums.items():
        units = group_units[pos]
        rows.append({by: keys[pos][0], "category_a": ca, "category_b": cb, "count": int(n),
                     "units": units,
                     "per_1k_units": n / units * 1000 if units and units > 0 else np.nan})
    return pd.DataFrame(rows, columns=[by, "category_a", "category_b", "count", "units",
                                       "per_1k_units"])


def term_counts_by(documents: pd.DataFrame, term_counts: pd.DataFrame, by: str) -> pd.DataFrame:
    """Each term's count per group: ``<by>, dimension, category, term, count,
    documents_with, tokens, rate_per_10k`` (groups where the term occurs; the
    group's tokens are all its documents' tokens)."""
    groups = documents[["doc_id", by]].dropna()
    groups = groups[groups[by].astype(str) != ""]
    toks = documents.groupby(by, observed=True)["tokens"].sum()
    tc = term_counts.merge(groups, on="doc_id", how="inner")
    out = (tc.groupby([by, "dimension", "category", "term"], observed=True)
           .agg(count=("count", "sum"), documents_with=("doc_id", "nunique")).reset_index())
    out["tokens"] = out[by].map(toks).astype(int)
    out["rate_per_10k"] = out["count"] / out["tokens"].where(out["tokens"] > 0) * 10_000
    return out.sort_values([by, "dimension", "category", "term"]).reset_index(drop=True)


def category_dominance(term_counts: pd.DataFrame) -> pd.DataFrame:
    """Per category: total count, distinct matched terms, the top term and its share."""
    g = term_counts.groupby(["dimension", "category", "term"])["count"].sum().reset_index()
    # All categories at once: each category's terms by count (descending), then term, so
    # its first row is its top term.
    g = g.sort_values(["dimension", "category", "count", "term"],
                      ascending=[True, True, False, True], kind="mergesort")
    per_category = g.groupby(["dimension", "category"], sort=False)["count"]
    g = g.assign(total=per_category.transform("sum"), terms=per_category.transform("size"))
    top = g.drop_duplicates(["dimension", "category"])  # (the first row: the top term)
    rows = [{"dimension": dim, "category": cat, "count": int(total), "terms_matched": int(terms),
             "top_term": term, "top_share": count / int(total) if total else np.nan}
            for dim, cat, term, count, total, terms in zip(
                top["dimension"], top["category"], top["term"], top["count"], top["total"],
                top["terms"], strict=True)]
    return pd.DataFrame(rows, columns=["dimension", "category", "count", "terms_matched",
                                       "top_term", "top_share"])


# --------------------------------------------------------------------------- one comparison


@dataclass(frozen=True)
class Comparison:
    """Group A against group B on one column: rates, differences and keyness."""

    by: str
    a: str
    b: str
    scope: str
    rates: pd.DataFrame  # pooled_rates of the two groups
    differences: pd.DataFrame  # rate_differences
    keyness: pd.DataFrame  # keyness, overall and within categories
    years: tuple[int, int] | None = None
    #: What a reader must know before trusting the comparison (e.g. a group that mixes
    #: units inconsistently across its years).
    warnings: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """A file-system-safe name: ``<by>-<a>-vs-<b>[-<first>-<last>]``."""
        def safe(v: str) -> str:
            return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in v).strip("_")[:40]
        span = f"-{self.years[0]}-{self.years[1]}" if self.years else ""
        return f"{safe(self.by)}-{safe(self.a)}-vs-{safe(self.b)}{span}"


def resolve_group(documents: pd.DataFrame, by: str, value: str | None, *,
                  default_rank: int) -> str:
    """The group value to compare: ``value`` itself, or for ``period`` the one period whose
    name starts with it (``--a 2013`` finds "2013-2022 新时代 new era"); without a value,
    the ``default_rank``-th group from the end (1: the latest, 2: the one before)."""
    keys = [str(k) for k, _ in _group_keys(documents, by)]
    if not keys:
        raise MobilizeError(f"no document has a value in column {by!r}",
                            fix="Group by a column that documents.csv fills in.")
    if value is None:
        if by not in ("year", "period", "date"):
            raise MobilizeError(f"--by {by} needs --a and --b (two values to compare)",
                                fix=f"Values present: {', '.join(keys[:30])}.")
        if len(keys) < 2:
            raise MobilizeError(f"only one {by} has documents ({keys[0]}): nothing to compare",
                                fix="Compare another column, or add a corpus with --corpus.")
        return keys[-default_rank]
    if value in keys:
        return value
    starts = [k for k in keys if k.startswith(value)]
    if len(starts) == 1:
        return starts[0]
    raise MobilizeError(f"no group {by} = {value!r}" + (" (ambiguous)" if starts else ""),
                        fix=f"Use one of: {', '.join(keys[:30])}.")


def compare_groups(run: RunTables, by: str, a: str | None = None, b: str | None = None, *,
                   periods: Sequence[Period] = (), scope: str = "all", seed: int,
                   n_boot: int = DEFAULT_BOOT, alpha0: float | None = None,
                   years: tuple[int, int] | None = None) -> Comparison:
    """Compare two groups of a run's documents (``by`` = a metadata column, ``period`` or
    ``corpus`` for combined runs). Missing ``a``/``b`` default to the latest year or
    period and the one before it. ``years`` (first, last) keeps only the documents of
    those years, e.g. to compare national and provincial reports of the same years."""
    docs = with_periods(run.documents, periods) if periods else run.documents
    if years is not None:
        docs = docs[(docs["year"] >= years[0]) & (docs["year"] <= years[1])].reset_index(
            drop=True)
        if docs.empty:
            raise MobilizeError(f"no document from {years[0]} to {years[1]}",
                                fix="Widen --years, or leave it out.")
    if by == "period" and not periods:
        raise MobilizeError("--by period needs a periods file",
                            fix="Pass --periods lexicons/periods.yaml (or your own file).")
    ga = resolve_group(docs, by, a, default_rank=1)
    gb = resolve_group(docs, by, b, default_rank=2)
    if ga == gb:
        raise MobilizeError(f"A and B are the same group ({by} = {ga})",
                            fix="Give two different values with --a and --b.")
    sub = docs[docs[by].astype(str).isin([ga, gb])].copy()
    sub["_group"] = np.where(sub[by].astype(str) == ga, "A", "B")
    rates = pooled_rates(sub, run.scores, "_group", scope=scope, seed=seed, n_boot=n_boot,
                         paragraphs=paragraph_matrix(sub, run.units, run.scores, scope))
    rates.insert(1, by, rates["_group"].map({"A": ga, "B": gb}))
    rates = rates.rename(columns={"_group": "group"})
    small = rates["documents"] < MIN_GROUP_DOCS
    rates["inference"] = np.where(small, f"descriptive only (fewer than {MIN_GROUP_DOCS} "
                                         "documents)", "")
    rates.loc[small, ["ci_low", "ci_high"]] = np.nan
    diff = rate_differences(docs, run.scores, by, ga, gb, scope=scope, seed=seed, n_boot=n_boot,
                            units=run.units)
    key = keyness(docs, run.term_counts, by, ga, gb, alpha0=alpha0)
    warns = tuple(w for w in (
        mixed_composition(docs, (docs[by].astype(str) == g).to_numpy(), f"{name} ({g})")
        for name, g in (("A", ga), ("B", gb))) if w)
    return Comparison(by, ga, gb, scope, rates, diff, key, years, warns)


__all__ = ["Comparison", "CountFit", "ParagraphMatrix", "Period", "RunTables",
           "balanced_units", "benjamini_hochberg", "bootstrap_rates", "change_penalty",
           "composition_by_year", "count_trends", "descriptive_note", "fit_counts",
           "mixed_composition", "nested_bootstrap_rates", "noise_scale", "paragraph_matrix",
           "unit_key",
           "category_dominance", "change_points", "combine_runs", "compare_groups",
           "cooccurrence_by", "doc_matrix", "keyness", "load_periods", "log_odds_dirichlet",
           "mann_kendall", "pelt_l2", "period_of", "pooled_rates", "rate_differences", "read_run",
           "resolve_group", "term_counts_by", "theil_sen", "trends", "with_periods"]


# --------------------------------------------------------------------------- meaning (issue 13.5)
# Pure functions behind the report's "What the scores mean" section and `mobilize compare`'s
# social-security columns: dominance per period, formula shares, framed challenge mentions,
# and whole-text against social-security (``domain_window``) rates side by side.

#: the social-security scope shown beside the whole text (docs/engine.md, "Scopes")
SS_SCOPE = "domain_window"
#: a category is "dominated" in a group when one term gives more than this share of its count
DOMINANCE_THRESHOLD = 0.5


def _grouped_terms(documents: pd.DataFrame, term_counts: pd.DataFrame, by: str | None
                   ) -> tuple[pd.DataFrame, str]:
    """term_counts with the documents' group in column ``group`` ("all" when ``by`` is None)."""
    if by is None:
        tc = term_counts[term_counts["doc_id"].isin(documents["doc_id"])].copy()
        tc["group"] = "all"
        return tc, "group"
    groups = documents[["doc_id", by]].dropna()
    groups = groups[groups[by].astype(str) != ""]
    tc = term_counts.merge(groups.rename(columns={by: "group"}), on="doc_id", how="inner")
    tc["group"] = tc["group"].astype(str)
    return tc, "group"


def dominance_by_group(documents: pd.DataFrame, term_counts: pd.DataFrame, by: str | None,
                       *, threshold: float = DOMINANCE_THRESHOLD) -> pd.DataFrame:
    """Per group of ``by`` (e.g. ``period``; None: the whole corpus) and category: its count
    ``n``, the terms matched, the top term, its share of ``n`` and ``dominated`` (top share >
    ``threshold``). Ties for the top term go to the first term in sort order. Rows sorted by
    group, dimension, category; categories without a hit in a group have no row."""
    cols = ["group", "dimension", "category", "n", "terms_matched", "top_term", "top_count",
            "top_share", "dominated"]
    tc, g = _grouped_terms(documents, term_counts, by)
    if tc.empty:
        return pd.DataFrame(columns=cols)
    agg = (tc.groupby([g, "dimension", "category", "term"], observed=True)["count"].sum()
           .reset_index())
    agg = agg[agg["count"] > 0]
    agg = agg.sort_values([g, "dimension", "category", "count", "term"],
                          ascending=[True, True, True, False, True], kind="mergesort")
    keys = [g, "dimension", "category"]
    total = agg.groupby(keys, sort=False)["count"].transform("sum")
    size = agg.groupby(keys, sort=False)["count"].transform("size")
    agg = agg.assign(n=total, terms_matched=size)
    top = agg.drop_duplicates(keys)
    out = pd.DataFrame({"group": top[g].astype(str), "dimension": top["dimension"],
                        "category": top["category"], "n": top["n"].astype(int),
                        "terms_matched": top["terms_matched"].astype(int),
                        "top_term": top["term"], "top_count": top["count"].astype(int)})
    out["top_share"] = (out["top_count"] / out["n"]).round(6)
    out["dominated"] = out["top_share"] > threshold
    return out.sort_values(["group", "dimension", "category"]).reset_index(drop=True)[cols]


def formula_shares(documents: pd.DataFrame, term_counts: pd.DataFrame, by: str | None
                   ) -> pd.DataFrame:
    """Per group and category with a formula term (``term_counts.formula`` = 1): the count
    ``n``, the hits of formula terms ``formula_count``, their share, and the formula terms
    matched. Categories without formula terms in the lexicon have no row (a share of 0 would
    read as measured). Needs a run of scorer version 2 (the ``formula`` column)."""
    cols = ["group", "dimension", "category", "n", "formula_count", "formula_share",
            "formula_terms"]
    if "formula" not in term_counts.columns:
        raise MobilizeError("term_counts.csv has no formula column (a run of an older "
                            "mobilize)", fix="Re-run `mobilize run` for this corpus.")
    tc, g = _grouped_terms(documents, term_counts, by)
    flagged = tc["formula"].astype(int) == 1
    cats = set(zip(tc.loc[flagged, "dimension"], tc.loc[flagged, "category"]))
    rows = []
    for (grp, dim, cat), part in tc.groupby([g, "dimension", "category"], observed=True,
                                            sort=True):
        if (dim, cat) not in cats:
            continue
        n = int(part["count"].sum())
        f = part[part["formula"].astype(int) == 1]
        fc = int(f["count"].sum())
        terms = ", ".join(sorted(set(f.loc[f["count"] > 0, "term"])))
        rows.append((str(grp), dim, cat, n, fc, round(fc / n, 6) if n else np.nan, terms))
    return pd.DataFrame(rows, columns=cols)


def wilson_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion k/n (scipy's ``binomtest``); (nan, nan) at
    n = 0."""
    if n <= 0:
        return (np.nan, np.nan)
    from scipy.stats import binomtest

    ci = binomtest(int(k), int(n)).proportion_ci(confidence_level=level, method="wilson")
    return (float(ci.low), float(ci.high))


def framed_shares(scores: pd.DataFrame, *, scopes: Sequence[str] = ("all", SS_SCOPE)
                  ) -> pd.DataFrame:
    """Per challenge category and scope: its hits ``n``, those in a sentence with a
    challenge cue (``framed``), their share and a 95% Wilson interval. The interval treats
    hits as independent; hits of one document are not, so read it as a lower bound on the
    uncertainty. Needs the ``framed`` column (scorer version 2)."""
    cols = ["scope", "dimension", "category", "n", "framed", "framed_share", "ci_low",
            "ci_high"]
    if "framed" not in scores.columns:
        raise MobilizeError("scores.csv has no framed column (a run of an older mobilize)",
                            fix="Re-run `mobilize run` for this corpus.")
    sc = scores[(scores["dimension"] == "challenge") & scores["scope"].isin(list(scopes))]
    rows = []
    for (scope, dim, cat), part in sc.groupby(["scope", "dimension", "category"], sort=True):
        n, k = int(part["count"].sum()), int(part["framed"].sum())
        lo, hi = wilson_interval(k, n)
        rows.append((scope, dim, cat, n, k, round(k / n, 6) if n else np.nan, lo, hi))
    order = {s: i for i, s in enumerate(scopes)}
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["scope", "category"], key=lambda s: s.map(order) if s.name == "scope"
                           else s).reset_index(drop=True)


def scope_side_by_side(documents: pd.DataFrame, scores: pd.DataFrame, *, seed: int,
                       n_boot: int = DEFAULT_BOOT, ss_scope: str = SS_SCOPE) -> pd.DataFrame:
    """Whole-text and social-security rates of every category, side by side: for each scope
    the pooled rate per 10k tokens with its bootstrap CI (``pooled_rates``), the count and
    tokens, and ``ss_share`` = the category's hits inside the social-security scope over its
    whole-text hits. ``circular`` is True for the domain dimension: D counted inside the
    passages it defines says nothing (every domain_sentences sentence has a D hit by
    construction), so its social-security columns are left empty."""
    whole = pooled_rates(documents, scores, None, scope="all", seed=seed, n_boot=n_boot)
    ss = pooled_rates(documents, scores, None, scope=ss_scope, seed=seed, n_boot=n_boot)
    keep = ["dimension", "category", "documents", "count", "tokens", "rate_per_10k", "ci_low",
            "ci_high"]
    out = whole[keep].merge(ss[keep].drop(columns="documents"), on=["dimension", "category"],
                            how="left", suffixes=("", "_ss"))
    out = out.rename(columns={"count": "count_all", "tokens": "tokens_all",
                              "rate_per_10k": "rate_all", "ci_low": "ci_low_all",
                              "ci_high": "ci_high_all", "rate_per_10k_ss": "rate_ss"})
    out["ss_share"] = np.where(out["count_all"] > 0,
                               out["count_ss"] / out["count_all"].where(out["count_all"] > 0),
                               np.nan)
    out["circular"] = out["dimension"] == "domain"
    for c in ("count_ss", "tokens_ss", "rate_ss", "ci_low_ss", "ci_high_ss", "ss_share"):
        out[c] = out[c].astype(float).where(~out["circular"])
    for c in ("count_ss", "tokens_ss"):  # integers, empty where circular
        out[c] = out[c].round().astype("Int64")
    out.insert(2, "ss_scope", ss_scope)
    return out.reset_index(drop=True)


def differences_side_by_side(whole: pd.DataFrame, ss: pd.DataFrame) -> pd.DataFrame:
    """Two ``rate_differences`` tables, whole text and social-security scope, in one:
    ``dimension, category`` then the whole-text columns and the same columns suffixed ``_ss``,
    and ``circular`` (True for the domain dimension, whose ``_ss`` columns are left empty:
    D inside the passages it defines measures nothing)."""
    cols = ["rate_a", "rate_b", "difference", "ci_low", "ci_high"]
    out = whole[["dimension", "category", *cols]].merge(
        ss[["dimension", "category", *cols]], on=["dimension", "category"], how="left",
        suffixes=("", "_ss"), sort=False)
    out["circular"] = out["dimension"] == "domain"
    for c in cols:
        out[f"{c}_ss"] = out[f"{c}_ss"].astype(float).where(~out["circular"])
    return out.reset_index(drop=True)


__all__ += ["DOMINANCE_THRESHOLD", "differences_side_by_side", "SS_SCOPE", "dominance_by_group", "formula_shares",
            "framed_shares", "scope_side_by_side", "wilson_interval"]
