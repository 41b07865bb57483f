"""The researcher's kit for checking a lexicon against a corpus.

Everything here counts with ``pipeline.match.Matcher``, so the kit sees exactly
what the scorer counts (a 新常态 hidden inside 经济新常态 of the same category is
neither counted nor shown).

- ``kwic``: keyword-in-context lines for one term or one category;
- ``coverage``: hits and documents per term and per category, terms that never
  match, categories where one term carries more than half the hits;
- ``sample_sheet``: a coding sheet of KWIC lines stratified by category and
  period, deterministic for a seed;
- ``agreement``: precision per term and category from coded sheets, and Cohen's
  kappa when two coders coded the same lines.

Pure functions over documents and sheets; reading and writing files is left to
the CLI, except ``read_sheet`` / ``write_sheet`` (the sheet's CSV format).
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import MobilizeError
from pipeline.ingest import Document
from pipeline.lexicon import Category, Lexicon, Term, build_lexicon
from pipeline.match import Hit, Matcher

SHEET_COLUMNS: tuple[str, ...] = ("line_id", "category", "term", "doc_id", "date", "period",
                                  "left", "match", "right", "judgement", "coder", "note")
RELEVANT = frozenset({"relevant", "1", "yes", "y", "true", "相关", "是"})
NOT_RELEVANT = frozenset({"not relevant", "not_relevant", "irrelevant", "0", "no", "n", "false",
                          "不相关", "否"})
#: A category is "dominated" when its most frequent term carries more than this share of hits.
DOMINANCE = 0.5


@dataclass(frozen=True)
class KwicLine:
    doc_id: str
    date: str
    left: str
    match: str
    right: str
    dimension: str
    category: str
    term: str
    start: int


def decade(year: int | None) -> str:
    """The default period of a year: its decade, e.g. ``1990s`` (``unknown`` without a year)."""
    return f"{year // 10 * 10}s" if year is not None else "unknown"


def _context(text: str, hit: Hit, width: int) -> tuple[str, str, str]:
    left = text[max(0, hit.start - width):hit.start].replace("\n", " ")
    right = text[hit.end:hit.end + width].replace("\n", " ")
    return left, text[hit.start:hit.end], right


def _line(doc: Document, text: str, hit: Hit, width: int) -> KwicLine:
    left, match, right = _context(text, hit, width)
    return KwicLine(doc.doc_id, doc.date, left, match, right, hit.dimension, hit.category,
                    hit.term, hit.start)


def term_matcher(lexicon: Lexicon, term: str) -> tuple[Matcher, bool]:
    """The matcher to look ``term`` up with: the lexicon's own when it holds the term (so the
    lines are what the scorer counts), else a one-term matcher (a candidate term). The bool
    says whether the term is in the lexicon."""
    if any(t.text == term for t in lexicon.terms()):
        return Matcher(lexicon), True
    cat = Category("candidate", "candidate", term, term, "", (Term(term, "candidate",
                                                                  "candidate"),), ())
    return Matcher(build_lexicon(name="candidate", version="0", categories=(cat,))), False


def kwic(documents: Iterable[Document], matcher: Matcher, *, term: str | None = None,
         category: str | None = None, width: int = 20, limit: int | None = None) -> list[KwicLine]:
    """KWIC lines of the hits of ``term`` (a term's text or a pattern's label) and/or of
    ``category``, in document order (doc_id, then position)."""
    if term is None and category is None:
        raise MobilizeError("give a term or a category", fix="Example: mobilize lexicon kwic "
                            "新常态 --corpus corpora/demo, or --category C3_economic_normal")
    if width < 0:
        raise MobilizeError(f"width {width} is negative", fix="Give a width of 0 or more")
    if limit is not None and limit < 1:
        raise MobilizeError(f"limit {limit} is below 1", fix="Give a limit of 1 or more")
    lines: list[KwicLine] = []
    for doc in documents:
        for hit in matcher.find(doc.text):
            if (term is None or hit.term == term) and (category is None or hit.category == category):
                lines.append(_line(doc, doc.text, hit, width))
                if limit is not None and len(lines) >= limit:
                    return lines
    return lines


def occurrences(documents: Iterable[Document], term: Term) -> int:
    """How often ``term`` occurs in the texts, counted or not: ``str.count`` of a literal (as
    ``pipeline.match`` counts overlaps), the non-empty matches of a pattern."""
    if term.pattern is None:
        return sum(doc.text.count(term.text) for doc in documents)
    import re

    rx = re.compile(term.pattern)
    return sum(1 for doc in documents for m in rx.finditer(doc.text) if m.end() > m.start())


def shadowing(documents: Iterable[Document], matcher: Matcher, term: str,
              limit: int = 3) -> tuple[int, list[str]]:
    """Where a lexicon ``term`` occurs but is not counted: (uncounted occurrences, the longer
    terms or patterns of its categories that took them, most frequent first, at most
    ``limit``). (0, []) when every occurrence is counted."""
    owners = [(c.id, t) for c in matcher.lexicon.categories for t in c.terms if t.text == term]
    if not owners:
        return 0, []
    lone = Matcher(build_lexicon(name="one-term", version="0", categories=tuple(
        Category(cid, c.dimension, c.name_zh, c.name_en, c.definition, (t,), ())
        for c in matcher.lexicon.categories for cid, t in owners if c.id == cid)))
    missed = 0
    takers: Counter[str] = Counter()
    for doc in documents:
        found = matcher.find(doc.text)
        counted = {(h.category, h.start) for h in found if h.term == term}
        winners = [h for h in found if h.term != term]
        for h in lone.find(doc.text):
            if (h.category, h.start) in counted:
                continue
            missed += 1
            for w in winners:
                if w.category == h.category and w.start < h.end and h.start < w.end:
                    takers[w.term] += 1
                    break
    return missed, [t for t, _n in sorted(takers.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]]


def kwic_csv(lines: Sequence[KwicLine]) -> str:
    """KWIC lines as CSV text (columns doc_id, date, category, term, left, match, right)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["doc_id", "date", "category", "term", "left", "match", "right"])
    for ln in lines:
        w.writerow([ln.doc_id, ln.date, ln.category, ln.term, ln.left, ln.match, ln.right])
    return buf.getvalue()


# --------------------------------------------------------------------------- coverage


@dataclass(frozen=True)
class TermCoverage:
    dimension: str
    category: str
    term: str
    pattern: str
    hits: int
    documents: int
    #: occurrences in the text whether counted or not (``str.count`` of a literal, the
    #: matches of a pattern), filled in for terms without hits only (else equal to ``hits``
    #: or more): 0 = the term never occurs; more = a longer term or pattern of its category
    #: took every occurrence (``pipeline.match`` rule 3)
    occurrences: int = 0

    @property
    def shadowed(self) -> bool:
        """The term occurs, but always inside a longer match of its category."""
        return self.hits == 0 and self.occurrences > 0


@dataclass(frozen=True)
class CategoryCoverage:
    dimension: str
    category: str
    terms: int
    matched_terms: int
    hits: int
    documents: int
    top_term: str
    top_share: float  # the top term's share of the category's hits (0 when no hits)

    @property
    def dominated(self) -> bool:
        return self.top_share > DOMINANCE


@dataclass(frozen=True)
class Coverage:
    documents: int
    terms: tuple[TermCoverage, ...]
    categories: tuple[CategoryCoverage, ...]

    @property
    def never_matched(self) -> list[TermCoverage]:
        """Terms without a counted hit: those that never occur and the shadowed ones."""
        return [t for t in self.terms if t.hits == 0]

    @property
    def never_occurs(self) -> list[TermCoverage]:
        """Terms that do not occur in the corpus at all."""
        return [t for t in self.terms if t.hits == 0 and t.occurrences == 0]

    @property
    def shadowed(self) -> list[TermCoverage]:
        """Terms that occur, but always inside a longer term or pattern of their category."""
        return [t for t in self.terms if t.shadowed]

    @property
    def dominated(self) -> list[CategoryCoverage]:
        return [c for c in self.categories if c.dominated]

    def as_dict(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "categories": [asdict(c) | {"dominated": c.dominated} for c in self.categories],
            "terms": [asdict(t) for t in self.terms],
            "never_matched": [f"{t.category}:{t.term}" for t in self.never_matched],
            "never_occurs": [f"{t.category}:{t.term}" for t in self.never_occurs],
            "always_inside_longer_match": [f"{t.category}:{t.term}" for t in self.shadowed],
            "dominated": [c.category for c in self.dominated],
        }


def coverage(documents: Iterable[Document], lexicon: Lexicon,
             matcher: Matcher | None = None) -> Coverage:
    """Hits and documents per term and per category (rows in lexicon order). A term without
    hits also gets its ``occurrences``, which tell a term that never occurs from one that a
    longer match of its category always takes."""
    matcher = matcher or Matcher(lexicon)
    hits: Counter[tuple[str, str]] = Counter()
    docs_term: Counter[tuple[str, str]] = Counter()
    docs_cat: Counter[str] = Counter()
    documents = list(documents)
    n_docs = 0
    for doc in documents:
        n_docs += 1
        counts = matcher.count(doc.text)
        cats_here = set()
        for (_dim, cid, term), n in counts.items():
            hits[(cid, term)] += n
            docs_term[(cid, term)] += 1
            cats_here.add(cid)
        for cid in cats_here:
            docs_cat[cid] += 1
    term_rows: list[TermCoverage] = []
    cat_rows: list[CategoryCoverage] = []
    for cat in lexicon.categories:
        rows = [TermCoverage(cat.dimension, cat.id, t.text, t.pattern or "", hits[(cat.id, t.text)],
                             docs_term[(cat.id, t.text)],
                             hits[(cat.id, t.text)] or occurrences(documents, t))
                for t in cat.terms]
        term_rows.extend(rows)
        total = sum(r.hits for r in rows)
        top = max(rows, key=lambda r: r.hits, default=None)  # the first of equals
        cat_rows.append(CategoryCoverage(
            cat.dimension, cat.id, len(rows), sum(1 for r in rows if r.hits), total,
            docs_cat[cat.id], top.term if top and top.hits else "",
            round(top.hits / total, 4) if top and total else 0.0))
    return Coverage(n_docs, tuple(term_rows), tuple(cat_rows))


def coverage_csv(cov: Coverage) -> str:
    """Per-term coverage as CSV, with the category totals as ``term = *`` rows. A term's
    ``occurrences`` (how often its text is there, counted or not) tell a term without hits
    that never occurs (0) from one always inside a longer match of its category (> 0)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["dimension", "category", "term", "pattern", "hits", "documents", "share_of_category",
                "occurrences"])
    totals = {c.category: c for c in cov.categories}
    for c in cov.categories:
        w.writerow([c.dimension, c.category, "*", "", c.hits, c.documents, 1.0 if c.hits else 0.0,
                    ""])
        for t in (t for t in cov.terms if t.category == c.category):
            share = round(t.hits / totals[c.category].hits, 4) if totals[c.category].hits else 0.0
            w.writerow([t.dimension, t.category, t.term, t.pattern, t.hits, t.documents, share,
                        t.occurrences])
    return buf.getvalue()


# --------------------------------------------------------------------------- coding sheets


def sample_sheet(documents: Iterable[Document], matcher: Matcher, *, per_category: int,
                 seed: int, period: Callable[[int | None], str] = decade, width: int = 30,
                 categories: Sequence[str] | None = None) -> list[dict[str, str]]:
    """A coding sheet: up to ``per_category`` KWIC lines per category, spread evenly over
    periods (round-robin over periods in time order, a seeded random draw within each).

    Deterministic: the same documents, lexicon, seed and periods give the same sheet.
    Rows are sorted by category, period, doc_id, position; ``line_id`` numbers them.
    """
    if per_category < 1:
        raise MobilizeError(f"--per-category {per_category} is below 1", fix="Ask for 1 or more")
    wanted = set(categories) if categories else None
    # (category) -> period -> list of (doc index, hit)
    strata: dict[str, dict[str, list[tuple[int, Hit]]]] = defaultdict(lambda: defaultdict(list))
    docs = list(documents)
    first_year: dict[str, int] = {}
    for di, doc in enumerate(docs):
        p = period(doc.year)
        if doc.year is not None:
            first_year[p] = min(first_year.get(p, doc.year), doc.year)
        for hit in matcher.find(doc.text):
            if wanted is None or hit.category in wanted:
                strata[hit.category][p].append((di, hit))
    picked: list[tuple[str, str, int, Hit]] = []
    for cid in sorted(strata):
        by_period = strata[cid]
        # one generator per category: one category's draw never moves another's
        rng = random.Random(f"{seed}:{cid}")
        order = sorted(by_period, key=lambda p: (first_year.get(p, 10**6), p))
        pools = []
        for p in order:
            pool = sorted(by_period[p], key=lambda x: (docs[x[0]].doc_id, x[1].start, x[1].term))
            rng.shuffle(pool)
            pools.append((p, pool))
        taken = 0
        while taken < per_category and any(pool for _p, pool in pools):
            for p, pool in pools:
                if pool and taken < per_category:
                    di, hit = pool.pop()
                    picked.append((cid, p, di, hit))
                    taken += 1
    picked.sort(key=lambda x: (x[0], first_year.get(x[1], 10**6), x[1], docs[x[2]].doc_id,
                               x[3].start))
    rows: list[dict[str, str]] = []
    for n, (cid, p, di, hit) in enumerate(picked, start=1):
        doc = docs[di]
        left, match, right = _context(doc.text, hit, width)
        rows.append({"line_id": f"L{n:05d}", "category": cid, "term": hit.term,
                     "doc_id": doc.doc_id, "date": doc.date, "period": p, "left": left,
                     "match": match, "right": right, "judgement": "", "coder": "", "note": ""})
    return rows


def write_sheet(rows: Sequence[dict[str, str]], path: Path) -> None:
    """Write a coding sheet as UTF-8 CSV (with a BOM, so spreadsheet programs read Chinese)."""
    with Path(path).open("w", encoding="utf-8-sig", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(SHEET_COLUMNS), lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: row.get(k, "") for k in SHEET_COLUMNS})


@dataclass(frozen=True)
class Judgement:
    line_id: str
    category: str
    term: str
    relevant: bool | None  # None: not coded yet


def read_sheet(path: Path) -> list[Judgement]:
    """Read a coded sheet. ``judgement``: relevant/1/yes/相关 or not relevant/0/no/不相关, or
    empty (not coded). Anything else is an error naming the file, the line and the fix."""
    path = Path(path)
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise MobilizeError(f"cannot read the coding sheet ({exc.strerror})", path=path,
                            fix="Give a sheet written by `mobilize lexicon sample`") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("line_id", "category", "term", "judgement")
                   if c not in (reader.fieldnames or [])]
        if missing:
            raise MobilizeError(f"the sheet has no column {', '.join(missing)}", path=path, line=1,
                                fix="Keep the header written by `mobilize lexicon sample`")
        out: list[Judgement] = []
        seen: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            lid = (row.get("line_id") or "").strip()
            if not lid:
                raise MobilizeError("a row has no line_id", path=path, line=line,
                                    fix="Keep the line_id column as written")
            if lid in seen:
                raise MobilizeError(f"line_id {lid} appears twice (first at line {seen[lid]})",
                                    path=path, line=line, fix="Delete the repeated row")
            seen[lid] = line
            raw = (row.get("judgement") or "").strip().lower()
            if not raw:
                value: bool | None = None
            elif raw in RELEVANT:
                value = True
            elif raw in NOT_RELEVANT:
                value = False
            else:
                raise MobilizeError(f"judgement {row.get('judgement')!r} of line {lid} is not "
                                    "understood", path=path, line=line,
                                    fix="Write relevant or not relevant (or 1 / 0), or leave it "
                                        "empty")
            out.append(Judgement(lid, (row.get("category") or "").strip(),
                                 (row.get("term") or "").strip(), value))
    return out


@dataclass(frozen=True)
class Precision:
    level: str  # "category" or "term"
    category: str
    term: str  # "" for a category row
    coded: int
    relevant: int

    @property
    def precision(self) -> float | None:
        return round(self.relevant / self.coded, 4) if self.coded else None


@dataclass(frozen=True)
class Agreement:
    sheets: int
    lines: int  # lines in the (first) sheet
    coded: int  # judgements counted for precision
    precision: tuple[Precision, ...]
    overall_precision: float | None
    shared: int = 0  # lines coded in both sheets
    observed_agreement: float | None = None
    kappa: float | None = None
    kappa_by_category: dict[str, float | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheets": self.sheets, "lines": self.lines, "coded": self.coded,
            "overall_precision": self.overall_precision, "shared": self.shared,
            "observed_agreement": self.observed_agreement, "kappa": self.kappa,
            "kappa_by_category": self.kappa_by_category,
            "precision": [asdict(p) | {"precision": p.precision} for p in self.precision],
        }


def _kappa(a: Sequence[bool], b: Sequence[bool]) -> float | None:
    """Cohen's kappa; None when it is undefined (both coders used one and the same label)."""
    if not a:
        return None
    if len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    return round(float(cohen_kappa_score(list(a), list(b))), 4)


def agreement(first: Sequence[Judgement], second: Sequence[Judgement] | None = None) -> Agreement:
    """Precision per term and per category (relevant share of the coded lines), and with two
    sheets Cohen's kappa over the lines both coded. Each line_id counts once: a line coded
    on the first sheet takes that judgement; the second sheet adds only the lines the first
    leaves uncoded or does not hold (two coders' copies of one sheet are the same lines)."""
    pooled = [j for j in first if j.relevant is not None]
    if second is not None:
        done = {j.line_id for j in pooled}
        pooled += [j for j in second if j.relevant is not None and j.line_id not in done]
    coded: Counter[tuple[str, str]] = Counter()
    rel: Counter[tuple[str, str]] = Counter()
    for j in pooled:
        for key in ((j.category, ""), (j.category, j.term)):
            coded[key] += 1
            rel[key] += bool(j.relevant)
    rows = [Precision("category" if term == "" else "term", cat, term, coded[(cat, term)],
                      rel[(cat, term)]) for cat, term in sorted(coded)]
    overall = round(sum(bool(j.relevant) for j in pooled) / len(pooled), 4) if pooled else None
    result = Agreement(2 if second is not None else 1, len(first), len(pooled), tuple(rows),
                       overall)
    if second is None:
        return result
    a_by = {j.line_id: j for j in first if j.relevant is not None}
    b_by = {j.line_id: j for j in second if j.relevant is not None}
    shared = sorted(set(a_by) & set(b_by))
    if not shared:
        return result
    a = [bool(a_by[i].relevant) for i in shared]
    b = [bool(b_by[i].relevant) for i in shared]
    by_cat: dict[str, tuple[list[bool], list[bool]]] = defaultdict(lambda: ([], []))
    for i, x, y in zip(shared, a, b, strict=True):
        by_cat[a_by[i].category][0].append(x)
        by_cat[a_by[i].category][1].append(y)
    return Agreement(result.sheets, result.lines, result.coded, result.precision, overall,
                     len(shared), round(sum(x == y for x, y in zip(a, b, strict=True)) / len(a), 4),
                     _kappa(a, b), {c: _kappa(x, y) for c, (x, y) in sorted(by_cat.items())})


def precision_csv(result: Agreement) -> str:
    """The precision table as CSV: level, category, term, coded, relevant, precision."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["level", "category", "term", "coded", "relevant", "precision"])
    for p in result.precision:
        w.writerow([p.level, p.category, p.term, p.coded, p.relevant,
                    "" if p.precision is None else p.precision])
    return buf.getvalue()


__all__ = [
    "SHEET_COLUMNS",
    "Agreement",
    "Coverage",
    "Judgement",
    "KwicLine",
    "Precision",
    "agreement",
    "coverage",
    "coverage_csv",
    "decade",
    "kwic",
    "kwic_csv",
    "precision_csv",
    "read_sheet",
    "sample_sheet",
    "term_matcher",
    "write_sheet",
]
