"""Recall of the lexicon: passages coded by hand for every expression of each category.

Precision (``pipeline.validation``) asks whether the lexicon's hits mean what the category
means; recall asks how much of what the category means the lexicon finds. A dictionary
whose terms are all right can still find only a third of the category. This module
measures the second:

- ``paragraph_pool`` / ``draw_passages``: a sample of whole paragraphs, stratified by era
  and by corpus, deterministic for a seed, optionally excluding earlier sheets (fresh
  test sets); ``write_passages`` writes the passages sheet (no matches shown: the coder
  must not see what the lexicon found);
- ``read_passages`` / ``read_codes``: the sheet and a coder's codes (every expression of
  each category: the exact phrase and its category); every problem names the file, the
  line and the fix;
- ``measure``: recall per category, overall and per era (an expression is *found* when a
  hit of the same category, from ``pipeline.match.Matcher``, overlaps its span), precision
  from KWIC sheets, F1, Cohen's kappa and expression-level agreement of two coders, each
  with its n and a 95% interval; the missed expressions;
- ``card_rows`` / ``card_markdown``: the measurement card.

The formats (``PASSAGE_COLUMNS``, ``CODE_COLUMNS``) and the definitions are documented in
``docs/validation.md``. Pure functions over sheets and texts; reading and writing files is
left to the CLI except the sheets' own readers and writers.
"""

from __future__ import annotations

import csv
import io
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline import normalize
from pipeline.errors import MobilizeError
from pipeline.ingest import Document
from pipeline.lexicon import Lexicon
from pipeline.match import Hit, Matcher
from pipeline.validation import Judgement

PASSAGE_COLUMNS: tuple[str, ...] = ("passage_id", "corpus", "doc_id", "year", "era", "line",
                                    "text")
CODE_COLUMNS: tuple[str, ...] = ("passage_id", "category", "phrase", "occurrence", "note")
MISSED_COLUMNS: tuple[str, ...] = ("passage_id", "category", "phrase", "era", "coder", "corpus",
                                   "doc_id", "year", "occurrence", "context")
#: The category of a codes row that says "this passage has no expression of any category".
NONE_CATEGORY = "-"
#: The default era boundaries: before 1992, 1992-2012, 2013 on.
DEFAULT_BREAKS: tuple[int, ...] = (1992, 2013)
#: Paragraphs drawn are this long (characters of the normalised text), inclusive.
MIN_CHARS = 40
MAX_CHARS = 600
#: Draws of precision and recall for F1's interval.
F1_DRAWS = 10_000


# --------------------------------------------------------------------------- eras


@dataclass(frozen=True)
class Era:
    name: str
    start: int | None  # None: open below
    end: int | None  # None: open above

    def holds(self, year: int) -> bool:
        return (self.start is None or year >= self.start) and (self.end is None or year <= self.end)


def eras_from_breaks(breaks: Sequence[int] = DEFAULT_BREAKS) -> tuple[Era, ...]:
    """Eras cut at ``breaks`` (each the first year of a new era): (1992, 2013) gives
    ``pre-1992``, ``1992-2012``, ``2013-`` (the names the coding sheets use)."""
    b = list(breaks)
    if not b or b != sorted(set(b)):
        raise MobilizeError(f"era breaks {', '.join(map(str, b)) or '(none)'} are not "
                            "increasing years", fix="Give increasing years, e.g. --eras 1992,2013")
    eras = [Era(f"pre-{b[0]}", None, b[0] - 1)]
    eras += [Era(f"{lo}-{hi - 1}", lo, hi - 1) for lo, hi in zip(b, b[1:], strict=False)]
    eras.append(Era(f"{b[-1]}-", b[-1], None))
    return tuple(eras)


def parse_breaks(value: str) -> tuple[int, ...]:
    """``"1992,2013"`` -> (1992, 2013); an error with the fix otherwise."""
    try:
        return tuple(int(x) for x in value.replace(" ", "").split(",") if x)
    except ValueError:
        raise MobilizeError(f"--eras {value!r} is not a list of years",
                            fix="Give the first year of each new era, e.g. --eras 1992,2013"
                            ) from None


def era_of(year: int | None, eras: Sequence[Era]) -> str | None:
    if year is None:
        return None
    for e in eras:
        if e.holds(year):
            return e.name
    return None


# --------------------------------------------------------------------------- drawing passages


@dataclass(frozen=True, order=True)
class Paragraph:
    """One paragraph of a document (fields in the order the draw sorts them)."""

    corpus: str
    doc_id: str
    year: int
    era: str
    line: int
    text: str


def file_lines(doc: Document, root: Path | None) -> list[int]:
    """The 1-based line of the document file each paragraph of ``doc.text`` comes from.

    For a plain-text file (one paragraph per line, the shared corpora's layout) these are
    the file's own line numbers, blank lines counted, found by normalising each line of the
    file as the engine does. Otherwise (html, docx, pdf, a converted or unreadable file)
    the paragraph's number in the normalised text."""
    paras = normalize.paragraphs(doc.text)
    fallback = list(range(1, len(paras) + 1))
    if root is None or doc.reader != "txt" or doc.converted:
        return fallback
    try:
        raw = (Path(root) / doc.path).read_bytes().decode(doc.encoding)
    except (OSError, LookupError, UnicodeDecodeError):
        return fallback
    numbers = [i for i, line in enumerate(normalize.newlines(raw).split("\n"), start=1)
               if normalize.text(line)]
    if len(numbers) != len(paras):
        return fallback
    return numbers


def paragraph_pool(documents: Iterable[Document], corpus: str, eras: Sequence[Era], *,
                   root: Path | None = None, min_chars: int = MIN_CHARS,
                   max_chars: int = MAX_CHARS) -> list[Paragraph]:
    """The paragraphs of a corpus that may be drawn: ``min_chars``-``max_chars`` characters
    of normalised text, in a document with a year that falls in an era."""
    out: list[Paragraph] = []
    for doc in documents:
        e = era_of(doc.year, eras)
        if e is None or doc.year is None:
            continue
        paras = normalize.paragraphs(doc.text)
        for line, text in zip(file_lines(doc, root), paras, strict=True):
            if min_chars <= len(text) <= max_chars:
                out.append(Paragraph(corpus, doc.doc_id, doc.year, e, line, text))
    return out


def draw_passages(pool: Iterable[Paragraph], *, per_era: int, seed: int, eras: Sequence[Era],
                  exclude: Iterable[tuple[str, str, int]] = (),
                  exclude_texts: Iterable[str] = ()) -> list[Paragraph]:
    """``per_era`` paragraphs per era, shared equally among the corpora that have
    paragraphs in that era (the first corpora by name take the remainder); a corpus with
    fewer paragraphs than its share gives all it has and the rest is drawn from the other
    corpora's remaining paragraphs. Paragraphs in ``exclude`` ((corpus, doc_id, line)) or
    whose text is in ``exclude_texts`` are never drawn, and a text that occurs more than
    once (a licence notice repeated in every file of a corpus) only at its first place.

    Deterministic: one ``random.Random(seed)`` draws the eras in order, the corpora by
    name, each corpus's paragraphs in (doc_id, line) order. Rows come sorted by era, then
    corpus, doc_id and line. (The rule of the script that drew coding sets A and
    B, which did not drop repeated texts: on corpora without repeated paragraphs the same
    seed gives the same sheet.)"""
    if per_era < 1:
        raise MobilizeError(f"--per-era {per_era} is below 1", fix="Ask for 1 or more")
    skip = set(exclude)
    skip_text = set(exclude_texts)
    by_era: dict[str, dict[str, list[Paragraph]]] = defaultdict(lambda: defaultdict(list))
    seen: set[str] = set()
    for p in sorted(pool):
        # (a corpus whose paragraphs are all excluded keeps its share, which goes to the rest)
        kept = by_era[p.era][p.corpus]
        if (p.corpus, p.doc_id, p.line) not in skip and p.text not in skip_text \
                and p.text not in seen:
            kept.append(p)
        seen.add(p.text)
    rng = random.Random(seed)
    out: list[Paragraph] = []
    for era in eras:
        corpora = sorted(by_era.get(era.name, {}))
        if not corpora:
            continue
        share = {c: per_era // len(corpora) for c in corpora}
        for c in corpora[:per_era - sum(share.values())]:
            share[c] += 1
        rest = 0
        picks: list[Paragraph] = []
        for c in corpora:
            cand = by_era[era.name][c]
            k = min(share[c], len(cand))
            rest += share[c] - k
            picks += rng.sample(cand, k)
        if rest:
            taken = set(picks)
            cand = [p for c in corpora for p in by_era[era.name][c] if p not in taken]
            picks += rng.sample(cand, min(rest, len(cand)))
        out += sorted(picks)
    return out


def passage_rows(paragraphs: Sequence[Paragraph], set_name: str) -> list[dict[str, str]]:
    """The passages sheet's rows: ``passage_id`` = the set's name and a number (A001)."""
    width = max(3, len(str(len(paragraphs))))
    return [{"passage_id": f"{set_name}{n:0{width}d}", "corpus": p.corpus, "doc_id": p.doc_id,
             "year": str(p.year), "era": p.era, "line": str(p.line), "text": p.text}
            for n, p in enumerate(paragraphs, start=1)]


def passages_csv(rows: Sequence[Mapping[str, str]]) -> str:
    """The passages sheet as CSV text (UTF-8 without BOM, ``\\n`` line ends)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(PASSAGE_COLUMNS)
    for row in rows:
        w.writerow([row[c] for c in PASSAGE_COLUMNS])
    return buf.getvalue()


# --------------------------------------------------------------------------- reading sheets


@dataclass(frozen=True)
class Passage:
    passage_id: str
    corpus: str
    doc_id: str
    year: int | None
    era: str
    line: int | None
    text: str


@dataclass(frozen=True)
class Code:
    """One expression a coder marked: ``text[start:end]`` of the passage is ``phrase``."""

    passage_id: str
    category: str
    phrase: str
    occurrence: int
    start: int
    end: int
    note: str = ""
    line: int = 0  # line in the codes file


@dataclass(frozen=True)
class Codes:
    coder: str  # the codes file's name without .csv (e.g. codes-A-lin)
    coded: frozenset[str]  # passages the coder has coded (appear at least once)
    expressions: tuple[Code, ...]


def _open_csv(path: Path, what: str, fix: str) -> tuple[csv.DictReader[str], io.TextIOWrapper]:
    try:
        fh = Path(path).open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise MobilizeError(f"cannot read the {what} ({exc.strerror})", path=path,
                            fix=fix) from None
    return csv.DictReader(fh), fh  # type: ignore[return-value]


def _need_columns(reader: csv.DictReader[str], cols: Sequence[str], path: Path, fix: str) -> None:
    missing = [c for c in cols if c not in (reader.fieldnames or [])]
    if missing:
        raise MobilizeError(f"the file has no column {', '.join(missing)}", path=path, line=1,
                            fix=fix)


def read_passages(path: Path) -> list[Passage]:
    """Read a passages sheet (``PASSAGE_COLUMNS``). The text is used as it stands: the
    codes' phrases are substrings of it and the matcher runs over it."""
    path = Path(path)
    fix = "Give a sheet written by `mobilize lexicon passages` (columns: " \
          + ", ".join(PASSAGE_COLUMNS) + ")"
    reader, fh = _open_csv(path, "passages sheet", fix)
    out: list[Passage] = []
    seen: dict[str, int] = {}
    with fh:
        try:
            _need_columns(reader, ("passage_id", "era", "text"), path, fix)
            for row in reader:
                line = reader.line_num
                pid = (row.get("passage_id") or "").strip()
                if not pid:
                    raise MobilizeError("a row has no passage_id", path=path, line=line,
                                        fix="Keep the passage_id column as written")
                if pid in seen:
                    raise MobilizeError(f"passage_id {pid} appears twice (first at line "
                                        f"{seen[pid]})", path=path, line=line,
                                        fix="Delete the repeated row")
                seen[pid] = line
                text = row.get("text") or ""
                if not text.strip():
                    raise MobilizeError(f"passage {pid} has no text", path=path, line=line,
                                        fix="Keep the text column as written")
                year = (row.get("year") or "").strip()
                ln = (row.get("line") or "").strip()
                out.append(Passage(pid, (row.get("corpus") or "").strip(),
                                   (row.get("doc_id") or "").strip(),
                                   int(year) if year.isdigit() else None,
                                   (row.get("era") or "").strip() or "unknown",
                                   int(ln) if ln.isdigit() else None, text))
        except UnicodeDecodeError:
            raise MobilizeError("the sheet is not UTF-8 text", path=path,
                                fix="Save it as UTF-8 (CSV UTF-8 in a spreadsheet program)"
                                ) from None
    return out


def _locate(text: str, phrase: str, occurrence: int) -> int | None:
    """Start of the ``occurrence``-th (1-based) occurrence of ``phrase`` in ``text``."""
    pos = -1
    for _ in range(occurrence):
        pos = text.find(phrase, pos + 1)
        if pos < 0:
            return None
    return pos


def read_codes(path: Path, passages: Sequence[Passage], categories: Iterable[str]) -> Codes:
    """Read one coder's codes (``CODE_COLUMNS``) against the passages sheet.

    A passage is *coded* when it appears in the file at least once (a ``-`` row says it
    has no expression of any category); passages not in the file are not yet coded and
    left out of every figure. The phrase must occur in the passage's text (after NFKC,
    so a phrase typed with full-width punctuation still matches); ``occurrence`` picks
    which occurrence (1 when empty)."""
    path = Path(path)
    fix = "Write one row per expression: passage_id, category, phrase, occurrence, note " \
          "(see docs/validation.md)"
    known = set(categories)
    by_id = {p.passage_id: p for p in passages}
    reader, fh = _open_csv(path, "codes file", fix)
    codes: list[Code] = []
    coded: set[str] = set()
    none_rows: dict[str, int] = {}
    has_expr: dict[str, int] = {}
    seen: dict[tuple[str, str, int, int], int] = {}
    with fh:
        try:
            _need_columns(reader, ("passage_id", "category", "phrase"), path, fix)
            for row in reader:
                line = reader.line_num
                if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                    continue  # an empty row
                pid = (row.get("passage_id") or "").strip()
                if pid not in by_id:
                    raise MobilizeError(f"passage_id {pid!r} is not in the passages sheet",
                                        path=path, line=line,
                                        fix="Copy the passage_id from the passages sheet")
                coded.add(pid)
                cat = (row.get("category") or "").strip()
                phrase = (row.get("phrase") or "").strip()
                if cat == NONE_CATEGORY:
                    if pid in has_expr:
                        raise MobilizeError(
                            f"passage {pid} is marked '-' (no expression) but has an expression "
                            f"at line {has_expr[pid]}", path=path, line=line,
                            fix="Delete the '-' row or the expression rows")
                    none_rows[pid] = line
                    continue
                if cat not in known:
                    raise MobilizeError(f"category {cat!r} is not a category of the lexicon",
                                        path=path, line=line,
                                        fix="Use a codebook category id (" + ", ".join(
                                            sorted(known)) + f") or {NONE_CATEGORY} for none")
                if pid in none_rows:
                    raise MobilizeError(
                        f"passage {pid} has an expression but is marked '-' (no expression) "
                        f"at line {none_rows[pid]}", path=path, line=line,
                        fix="Delete the '-' row or the expression rows")
                if not phrase:
                    raise MobilizeError(f"the {cat} row of passage {pid} has no phrase",
                                        path=path, line=line,
                                        fix="Copy the exact words from the passage's text")
                occ_raw = (row.get("occurrence") or "").strip() or "1"
                if not occ_raw.isdigit() or int(occ_raw) < 1:
                    raise MobilizeError(f"occurrence {occ_raw!r} is not a number of 1 or more",
                                        path=path, line=line,
                                        fix="Write 1 for the first occurrence of the phrase, 2 "
                                            "for the second, ...")
                occ = int(occ_raw)
                text = by_id[pid].text
                start = _locate(text, phrase, occ)
                if start is None:
                    nfkc_phrase = normalize.nfkc(phrase)
                    start = _locate(text, nfkc_phrase, occ)
                    phrase = nfkc_phrase
                if start is None:
                    n = text.count(phrase)
                    problem = (f"the phrase {phrase!r} does not occur in passage {pid}" if n == 0
                               else f"the phrase {phrase!r} occurs {n} time(s) in passage "
                                    f"{pid}, not {occ}")
                    raise MobilizeError(problem, path=path, line=line,
                                        fix="Copy the phrase character for character from the "
                                            "passage's text, and count its occurrences")
                key = (pid, cat, start, start + len(phrase))
                if key in seen:
                    raise MobilizeError(f"the {cat} phrase {phrase!r} of passage {pid} is "
                                        f"coded twice (first at line {seen[key]})", path=path,
                                        line=line, fix="Delete the repeated row")
                seen[key] = line
                has_expr.setdefault(pid, line)
                codes.append(Code(pid, cat, phrase, occ, start, start + len(phrase),
                                  (row.get("note") or "").strip(), line))
        except UnicodeDecodeError:
            raise MobilizeError("the codes file is not UTF-8 text", path=path,
                                fix="Save it as UTF-8 (CSV UTF-8 in a spreadsheet program)"
                                ) from None
    if not coded:
        raise MobilizeError("the codes file has no coded passage", path=path,
                            fix="Code at least one passage (a '-' row for a passage without "
                                "any expression)")
    codes.sort(key=lambda c: (c.passage_id, c.start, c.end, c.category))
    return Codes(path.stem, frozenset(coded), tuple(codes))


@dataclass(frozen=True)
class KwicLine:
    """A judged KWIC line with its context (from a sheet of ``mobilize lexicon sample``)."""

    judgement: Judgement
    left: str
    match: str
    right: str
    doc_id: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """What makes two rows the same line: the line_id with the document, category, term
        and context (two coders' copies of one sheet agree on all of them; line_ids alone
        repeat across sheets drawn from different corpora)."""
        j = self.judgement
        return (j.line_id, self.doc_id, j.category, j.term, self.left, self.match, self.right)


def read_kwic(path: Path) -> list[KwicLine]:
    """A coded KWIC sheet's judgements (checked by ``validation.read_sheet``) with their
    left / match / right context."""
    from pipeline.validation import read_sheet

    judgements = {j.line_id: j for j in read_sheet(path)}
    reader, fh = _open_csv(path, "coding sheet", "Give a sheet written by `mobilize lexicon "
                                                 "sample`")
    out: list[KwicLine] = []
    with fh:
        _need_columns(reader, ("left", "match", "right"), Path(path),
                      "Keep the header written by `mobilize lexicon sample`")
        for row in reader:
            j = judgements.get((row.get("line_id") or "").strip())
            if j is not None:
                out.append(KwicLine(j, row.get("left") or "", row.get("match") or "",
                                    row.get("right") or "", (row.get("doc_id") or "").strip()))
    return out


@dataclass(frozen=True)
class KwicPool:
    """The KWIC lines of several sheets, each line once (``KwicLine.key``)."""

    lines: tuple[KwicLine, ...]  # per line, the coding of the first sheet that codes it
    pairs: tuple[tuple[KwicLine, KwicLine], ...]  # lines coded on two sheets: first, second


def pool_kwic(sheets: Iterable[Sequence[KwicLine]]) -> KwicPool:
    """Pool the lines of coded KWIC sheets given in order (``--kwic`` sheets), counting each
    line once: two coders' copies of the same sheet are the same lines, not twice as many.
    A line takes the judgement of the first sheet that codes it (give the first coder's
    sheets first: precision is then the first coder's); when a later sheet codes it too,
    the two codings form a pair for Cohen's kappa (a third coding is left out)."""
    first: dict[tuple[str, ...], KwicLine] = {}
    second: dict[tuple[str, ...], KwicLine] = {}
    for lines in sheets:
        for ln in lines:
            k = ln.key
            if k not in first or first[k].judgement.relevant is None:
                first[k] = ln
            elif ln.judgement.relevant is not None:
                second.setdefault(k, ln)
    return KwicPool(tuple(first.values()), tuple((first[k], b) for k, b in second.items()))


def still_counted(lines: Iterable[KwicLine], matcher: Matcher) -> list[Judgement]:
    """The judgements of the lines the given lexicon still counts: its matcher, run over the
    line's context, finds a hit of the line's category overlapping the matched text. So
    sheets drawn from an older lexicon version measure the version given: lines of removed
    or narrowed terms drop out (terms added since have no lines: the estimate does not
    cover them)."""
    return [ln.judgement for ln in lines if is_still_counted(ln, matcher)]


def is_still_counted(line: KwicLine, matcher: Matcher) -> bool:
    """Whether ``matcher``, run over the line's context, finds a hit of the line's category
    overlapping its matched text (``still_counted``)."""
    text = line.left + line.match + line.right
    s, e = len(line.left), len(line.left) + len(line.match)
    return any(h.category == line.judgement.category and h.start < e and h.end > s
               for h in matcher.find(text))


# --------------------------------------------------------------------------- statistics


def wilson(count: int, n: int) -> tuple[float | None, float | None]:
    """95% Wilson interval of ``count / n`` (statsmodels); (None, None) when n is 0."""
    if n <= 0:
        return None, None
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(count, n, alpha=0.05, method="wilson")
    return round(float(lo), 4), round(float(hi), 4)


@dataclass(frozen=True)
class Estimate:
    """A proportion (or F1, or kappa) with its n and 95% interval."""

    value: float | None
    n: int
    low: float | None
    high: float | None
    count: int | None = None  # the numerator of a proportion

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "n": self.n, "count": self.count, "low": self.low,
                "high": self.high}


def proportion(count: int, n: int) -> Estimate:
    lo, hi = wilson(count, n)
    return Estimate(round(count / n, 4) if n else None, n, lo, hi, count)


def f1_estimate(precision: Estimate, recall: Estimate, *, seed: int = 0,
                draws: int = F1_DRAWS) -> Estimate:
    """F1 = 2PR / (P + R), with a 95% interval from ``draws`` draws of P and R from their
    Jeffreys posteriors, Beta(x + 1/2, n - x + 1/2) (independent: they come from different
    samples, the KWIC sheet and the passages); n is the smaller of the two n."""
    if precision.count is None or recall.count is None or not precision.n or not recall.n:
        return Estimate(None, 0, None, None)
    p = precision.count / precision.n
    r = recall.count / recall.n
    value = round(2 * p * r / (p + r), 4) if p + r else 0.0
    import numpy as np

    rng = np.random.default_rng(seed)
    ps = rng.beta(precision.count + 0.5, precision.n - precision.count + 0.5, draws)
    rs = rng.beta(recall.count + 0.5, recall.n - recall.count + 0.5, draws)
    f = 2 * ps * rs / (ps + rs)
    lo, hi = np.quantile(f, [0.025, 0.975])
    return Estimate(value, min(precision.n, recall.n), round(float(lo), 4), round(float(hi), 4))


def kappa_estimate(a: Sequence[bool], b: Sequence[bool]) -> Estimate:
    """Cohen's kappa of two coders' yes/no labels (sklearn), with the asymptotic 95% interval
    of statsmodels' ``cohens_kappa``, clipped to [-1, 1]; ``count`` is the labels they agree on.

    Two cases the asymptotic interval cannot describe are not given one:
    - a coder who used one label throughout: kappa is then 0 (or undefined) whatever the two
      agree on, because the chance agreement equals the observed one. The value is None
      (``n/a``): read the agreement (``count`` of ``n``) instead;
    - no disagreement at all: kappa is 1, but the asymptotic standard error is 0 and the
      interval [1, 1] would claim certainty that n does not give. The interval is None.
    """
    n = len(a)
    agree = sum(1 for x, y in zip(a, b, strict=True) if x == y)
    if not n or len(set(a)) < 2 or len(set(b)) < 2:
        return Estimate(None, n, None, None, agree)
    import numpy as np
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import cohens_kappa

    value = float(cohen_kappa_score(list(a), list(b)))
    if agree == n:
        return Estimate(round(value, 4), n, None, None, agree)
    table = [[sum(1 for x, y in zip(a, b, strict=True) if x == i and y == j) for j in (True, False)]
             for i in (True, False)]
    with np.errstate(invalid="ignore"):  # the variance under kappa = 0 (unused) can be < 0
        res = cohens_kappa(table)
    return Estimate(round(value, 4), n, round(max(-1.0, float(res.kappa_low)), 4),
                    round(min(1.0, float(res.kappa_upp)), 4), agree)


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Missed:
    coder: str
    passage: Passage
    code: Code


@dataclass(frozen=True)
class CategoryMeasure:
    category: str
    dimension: str
    recall: Estimate
    recall_by_era: dict[str, Estimate]
    precision: Estimate
    f1: Estimate
    kappa: Estimate | None = None  # passage level, two coders
    expression_agreement: Estimate | None = None  # two coders
    recall_by_coder: dict[str, Estimate] = field(default_factory=dict)
    precision_kappa: Estimate | None = None  # KWIC lines coded by two coders


@dataclass(frozen=True)
class Measurement:
    lexicon: str  # name version (hash)
    lexicon_hash: str
    passages: int  # in the sheet
    coded: int  # coded by the first coder
    shared: int  # coded by both coders (0 with one)
    coders: tuple[str, ...]
    corpora: tuple[str, ...]
    eras: tuple[str, ...]
    kwic_lines: int  # coded KWIC judgements
    categories: tuple[CategoryMeasure, ...]
    overall_recall: Estimate
    overall_recall_by_era: dict[str, Estimate]
    overall_precision: Estimate
    missed: tuple[Missed, ...]
    overall_f1: Estimate = Estimate(None, 0, None, None)
    kwic_shared: int = 0  # KWIC lines coded by two coders
    precision_kappa: Estimate | None = None  # over those lines (None when there are none)

    def as_dict(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict[str, Any] | None:
            return None if e is None else e.as_dict()

        return {
            "lexicon": self.lexicon, "lexicon_hash": self.lexicon_hash,
            "passages": self.passages, "coded": self.coded, "shared": self.shared,
            "coders": list(self.coders), "corpora": list(self.corpora), "eras": list(self.eras),
            "kwic_lines": self.kwic_lines, "kwic_shared": self.kwic_shared,
            "overall_recall": est(self.overall_recall),
            "overall_recall_by_era": {k: est(v) for k, v in self.overall_recall_by_era.items()},
            "overall_precision": est(self.overall_precision),
            "overall_f1": est(self.overall_f1),
            "precision_kappa": est(self.precision_kappa),
            "categories": [{
                "category": c.category, "dimension": c.dimension, "recall": est(c.recall),
                "recall_by_era": {k: est(v) for k, v in c.recall_by_era.items()},
                "recall_by_coder": {k: est(v) for k, v in c.recall_by_coder.items()},
                "precision": est(c.precision), "f1": est(c.f1), "kappa": est(c.kappa),
                "expression_agreement": est(c.expression_agreement),
                "precision_kappa": est(c.precision_kappa)} for c in self.categories],
            "missed": len(self.missed),
        }


def found(code: Code, hits: Iterable[Hit]) -> bool:
    """True when a hit of the code's category overlaps the coded span."""
    return any(h.category == code.category and h.start < code.end and h.end > code.start
               for h in hits)


def _overlap_pairs(xs: Sequence[Code], ys: Sequence[Code]) -> int:
    """How many one-to-one pairs of overlapping spans (greedy, in text order)."""
    used: set[int] = set()
    pairs = 0
    for x in xs:
        for j, y in enumerate(ys):
            if j not in used and x.start < y.end and y.start < x.end:
                used.add(j)
                pairs += 1
                break
    return pairs


def expression_agreement(first: Codes, second: Codes, category: str,
                         passages: Iterable[str]) -> Estimate:
    """Positive specific agreement of two coders' expressions of one category, over the
    passages both coded: 2 x (pairs of overlapping expressions) / (expressions of the first
    + of the second). It equals the F1 of one coder measured against the other (Hripcsak
    and Rothschild 2005), the usual agreement for span coding, where there are no counted
    negatives for a kappa. n is the expressions of both; the interval is Wilson's."""
    a: dict[str, list[Code]] = defaultdict(list)
    b: dict[str, list[Code]] = defaultdict(list)
    for c in first.expressions:
        if c.category == category:
            a[c.passage_id].append(c)
    for c in second.expressions:
        if c.category == category:
            b[c.passage_id].append(c)
    pairs = n = 0
    for pid in passages:
        pairs += _overlap_pairs(a.get(pid, []), b.get(pid, []))
        n += len(a.get(pid, [])) + len(b.get(pid, []))
    return proportion(2 * pairs, n)


def measure(passages: Sequence[Passage], codes: Sequence[Codes], lexicon: Lexicon, *,
            kwic: Sequence[Judgement] = (), eras: Sequence[str] | None = None,
            matcher: Matcher | None = None, seed: int = 0,
            kwic_pairs: Sequence[tuple[Judgement, Judgement]] = ()) -> Measurement:
    """Recall (from the first coder's codes; per coder too when there are two), precision
    (from the KWIC judgements, one per line), F1, and with two coders kappa and expression
    agreement, per category of the lexicon; and every missed expression of every coder.
    ``kwic_pairs``: two coders' judgements of the same KWIC lines (``pool_kwic``), for
    Cohen's kappa of the precision codes."""
    if not codes:
        raise MobilizeError("no codes file given", fix="Give --codes CODES (one or two)")
    if len(codes) > 2:
        raise MobilizeError(f"{len(codes)} codes files given; agreement is defined for two",
                            fix="Give one or two --codes files")
    matcher = matcher or Matcher(lexicon)
    by_id = {p.passage_id: p for p in passages}
    era_names = list(eras) if eras else list(dict.fromkeys(p.era for p in passages))
    hits = {pid: matcher.find(p.text) for pid, p in by_id.items()
            if any(pid in c.coded for c in codes)}
    # recall per coder, category, era
    tallies: dict[str, dict[tuple[str, str], list[int]]] = {}
    missed: list[Missed] = []
    for cs in codes:
        t: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
        for code in cs.expressions:
            passage = by_id[code.passage_id]
            ok = found(code, hits[code.passage_id])
            for key in ((code.category, "all"), (code.category, passage.era), ("*", "all"),
                        ("*", passage.era)):
                t[key][0] += ok
                t[key][1] += 1
            if not ok:
                missed.append(Missed(cs.coder, passage, code))
        tallies[cs.coder] = t
    main = tallies[codes[0].coder]
    # precision from KWIC judgements
    kw = [j for j in kwic if j.relevant is not None]
    p_count: Counter[str] = Counter()
    p_n: Counter[str] = Counter()
    for j in kw:
        p_n[j.category] += 1
        p_count[j.category] += bool(j.relevant)
    pairs = [(a, b) for a, b in kwic_pairs if a.relevant is not None and b.relevant is not None]

    def pairs_kappa(cat: str | None) -> Estimate | None:
        chosen = [(a, b) for a, b in pairs if cat is None or a.category == cat]
        if not chosen:
            return None
        return kappa_estimate([bool(a.relevant) for a, _b in chosen],
                              [bool(b.relevant) for _a, b in chosen])
    shared = sorted(codes[0].coded & codes[1].coded) if len(codes) == 2 else []
    rows: list[CategoryMeasure] = []
    for i, cat in enumerate(lexicon.categories):
        rec = proportion(*main[(cat.id, "all")]) if (cat.id, "all") in main else proportion(0, 0)
        by_era = {e: proportion(*main[(cat.id, e)]) if (cat.id, e) in main else proportion(0, 0)
                  for e in era_names}
        prec = proportion(p_count[cat.id], p_n[cat.id])
        kappa = agree = None
        by_coder: dict[str, Estimate] = {}
        if len(codes) == 2:
            a_has = {c.passage_id for c in codes[0].expressions if c.category == cat.id}
            b_has = {c.passage_id for c in codes[1].expressions if c.category == cat.id}
            kappa = kappa_estimate([pid in a_has for pid in shared],
                                   [pid in b_has for pid in shared])
            agree = expression_agreement(codes[0], codes[1], cat.id, shared)
            for cs in codes:
                t = tallies[cs.coder]
                by_coder[cs.coder] = (proportion(*t[(cat.id, "all")]) if (cat.id, "all") in t
                                      else proportion(0, 0))
        rows.append(CategoryMeasure(cat.id, cat.dimension, rec, by_era, prec,
                                    f1_estimate(prec, rec, seed=seed + i), kappa, agree,
                                    by_coder, pairs_kappa(cat.id)))
    overall = proportion(*main[("*", "all")]) if ("*", "all") in main else proportion(0, 0)
    overall_era = {e: proportion(*main[("*", e)]) if ("*", e) in main else proportion(0, 0)
                   for e in era_names}
    coded_passages = [by_id[pid] for pid in sorted(codes[0].coded)]
    missed.sort(key=lambda m: (m.coder, m.passage.passage_id, m.code.start, m.code.category))
    overall_p = proportion(sum(p_count.values()), sum(p_n.values()))
    return Measurement(
        f"{lexicon.name} {lexicon.version}", lexicon.hash, len(passages), len(codes[0].coded),
        len(shared), tuple(c.coder for c in codes),
        tuple(sorted({p.corpus for p in coded_passages if p.corpus})), tuple(era_names),
        len(kw), tuple(rows), overall, overall_era, overall_p, tuple(missed),
        f1_estimate(overall_p, overall, seed=seed + len(rows)), len(pairs), pairs_kappa(None))


# --------------------------------------------------------------------------- tables


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def _est_cells(e: Estimate | None) -> list[str]:
    if e is None:
        return ["", "", "", ""]
    return [_fmt(e.value), str(e.n), _fmt(e.low), _fmt(e.high)]


def measures_csv(m: Measurement) -> str:
    """One row per category (and ``*`` for all): precision, recall, F1, kappa and
    expression agreement, each with n and the 95% interval."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    head = ["category", "dimension"]
    for name in ("precision", "recall", "f1", "kappa", "expression_agreement"):
        head += [name, f"{name}_n", f"{name}_low", f"{name}_high"]
    w.writerow(head)
    for c in m.categories:
        w.writerow([c.category, c.dimension, *_est_cells(c.precision), *_est_cells(c.recall),
                    *_est_cells(c.f1), *_est_cells(c.kappa),
                    *_est_cells(c.expression_agreement)])
    w.writerow(["*", "", *_est_cells(m.overall_precision), *_est_cells(m.overall_recall),
                *_est_cells(m.overall_f1), *[""] * 8])
    return buf.getvalue()


def recall_csv(m: Measurement) -> str:
    """Recall per category and era (``all`` and each era; category ``*`` pools them):
    category, era, coder, expressions, found, recall, low, high."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["category", "era", "coder", "expressions", "found", "recall", "low", "high"])
    coder = m.coders[0]

    def row(cat: str, era: str, e: Estimate, who: str = coder) -> None:
        w.writerow([cat, era, who, e.n, e.count, _fmt(e.value), _fmt(e.low), _fmt(e.high)])

    for c in m.categories:
        row(c.category, "all", c.recall)
        for era, e in c.recall_by_era.items():
            row(c.category, era, e)
        for who, e in c.recall_by_coder.items():
            if who != coder:
                row(c.category, "all", e, who)
    row("*", "all", m.overall_recall)
    for era, e in m.overall_recall_by_era.items():
        row("*", era, e)
    return buf.getvalue()


def missed_csv(m: Measurement, width: int = 15) -> str:
    """The coded expressions no lexicon match of their category overlaps, with context."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(MISSED_COLUMNS)
    for x in m.missed:
        t = x.passage.text
        ctx = f"{t[max(0, x.code.start - width):x.code.start]}【{x.code.phrase}】" \
              f"{t[x.code.end:x.code.end + width]}"
        w.writerow([x.passage.passage_id, x.code.category, x.code.phrase, x.passage.era,
                    x.coder, x.passage.corpus, x.passage.doc_id,
                    "" if x.passage.year is None else x.passage.year, x.code.occurrence, ctx])
    return buf.getvalue()


def write_outputs(folder: Path, files: Mapping[str, str]) -> None:
    """Write each ``name -> text`` into ``folder`` (created if missing), each file atomically
    (a temporary file in the folder, then renamed): a failed write leaves the earlier file."""
    import os
    import tempfile

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MobilizeError("is a file, not a folder", path=folder,
                            fix="Give a folder for the outputs")
    for name in files:
        if (folder / name).is_dir():
            raise MobilizeError("is a folder", path=folder / name,
                                fix="Give a file name for the output")
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------- the card


def _cell(e: Estimate | None) -> str:
    """``0.42 [0.30, 0.55] (n=40)``; ``n/a (n=0)`` when there is nothing to estimate."""
    if e is None:
        return "—"
    if e.value is None:
        return f"n/a (n={e.n})"
    ci = f" [{e.low:.2f}, {e.high:.2f}]" if e.low is not None and e.high is not None else ""
    return f"{e.value:.2f}{ci} (n={e.n})"


def kappa_cell(e: Estimate | None) -> str:
    """A kappa as ``_cell`` gives it, saying why where it has no interval (no disagreement) or
    no value (a coder used one label throughout; the agreement is given)."""
    if e is None or not e.n:
        return _cell(e)
    if e.value is None:
        return f"n/a: a coder used only one label (n={e.n}, {e.count} agree)"
    if e.low is None:
        return f"{e.value:.2f} (n={e.n}, no disagreement: no interval)"
    return _cell(e)


def card_rows(m: Measurement) -> list[dict[str, str]]:
    """The measurement card's table, one row per category plus ``all``: precision, recall,
    F1, recall per era and (with two coders) kappa, as display strings
    ``value [low, high] (n=N)``. For the report's methods appendix."""
    rows: list[dict[str, str]] = []
    two = len(m.coders) == 2
    for c in m.categories:
        row = {"category": c.category, "precision": _cell(c.precision),
               "recall": _cell(c.recall), "f1": _cell(c.f1)}
        for era, e in c.recall_by_era.items():
            row[f"recall {era}"] = _cell(e)
        if two:
            row["kappa"] = kappa_cell(c.kappa)
            row["expression agreement"] = _cell(c.expression_agreement)
        rows.append(row)
    row = {"category": "all", "precision": _cell(m.overall_precision),
           "recall": _cell(m.overall_recall), "f1": _cell(m.overall_f1)}
    for era, e in m.overall_recall_by_era.items():
        row[f"recall {era}"] = _cell(e)
    if two:
        row["kappa"] = _cell(None)
        row["expression agreement"] = _cell(None)
    rows.append(row)
    return rows


def _md(text: str) -> str:
    """Escape text for a Markdown table cell."""
    out = str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    for ch in "*_`<>":
        out = out.replace(ch, "\\" + ch)
    return out


def card_markdown(m: Measurement, *, date: str, sources: Mapping[str, str]) -> str:
    """The measurement card as Markdown: the lexicon version, the corpora coded, the date,
    the files it was made from (``sources``: what -> file name) and ``card_rows``."""
    rows = card_rows(m)
    cols = list(rows[0]) if rows else []
    lines = [
        f"# Measurement card: {_md(m.lexicon)}",
        "",
        f"- Lexicon: {_md(m.lexicon)}, hash `{m.lexicon_hash[:16]}`",
        f"- Date: {_md(date)}",
        f"- Corpora coded: {_md(', '.join(m.corpora) or 'none')}",
        f"- Passages coded: {m.coded} of {m.passages}"
        + (f"; coded by both coders: {m.shared}" if len(m.coders) == 2 else ""),
        f"- Coders: {_md(', '.join(m.coders))}",
        f"- KWIC lines judged for precision: {m.kwic_lines}"
        + (f"; coded by two coders: {m.kwic_shared}, Cohen's kappa "
           f"{kappa_cell(m.precision_kappa)}" if m.kwic_shared else ""),
    ]
    lines += [f"- {_md(k)}: {_md(v)}" for k, v in sources.items()]
    lines += [
        "",
        "Each cell: estimate [95% interval] (n). Precision: the relevant share of judged KWIC "
        "lines (Wilson interval). Recall: the share of hand-coded expressions that a lexicon "
        "match of the same category overlaps, from the first coder's codes (Wilson). F1: "
        "2PR/(P+R), interval from Jeffreys-posterior draws of P and R. Kappa: Cohen's kappa "
        "on whether a passage holds an expression of the category (asymptotic interval; none "
        "where the coders never disagree, since its width is then 0 whatever n is; n/a where a "
        "coder used one label throughout, which makes kappa 0 or undefined whatever they agree "
        "on). "
        "Expression agreement: 2 x overlapping pairs / expressions of both coders.",
        "",
        "| " + " | ".join(_md(c) for c in cols) + " |",
        "| " + " | ".join("---" for _ in cols) + " |",
    ]
    for r in rows:
        lines.append("| " + " | ".join(_md(r[c]) for c in cols) + " |")
    return "\n".join(lines) + "\n"


#: The schema of the machine-readable card (``mobilize lexicon card --json``).
CARD_SCHEMA = "mobilize.card/1"

#: The card the report looks for beside the lexicon YAML: ``<stem>.card.json``
#: (``lexicons/mobilize.yaml`` -> ``lexicons/mobilize.card.json``).
CARD_SUFFIX = ".card.json"


def card_path(lexicon_path: Path) -> Path:
    """Where the report looks for the card of the lexicon at ``lexicon_path``."""
    lexicon_path = Path(lexicon_path)
    return lexicon_path.with_name(lexicon_path.stem + CARD_SUFFIX)


def card_json(m: Measurement, *, name: str, version: str, date: str,
              sources: Mapping[str, Sequence[str]]) -> str:
    """The measurement card as JSON (schema ``mobilize.card/1``, keys sorted, so the same
    sheets and date give the same bytes): the lexicon's name, version and full hash, the
    date, the corpora coded, the counts, the source files (``sources``: what -> file names
    relative to the project), ``columns`` and ``rows`` (``card_rows``: the same display
    strings as the Markdown card) and ``estimates`` (the numbers behind them: value, n,
    count, low, high per category, overall and per era)."""
    import json

    rows = card_rows(m)
    est = m.as_dict()
    for key in ("lexicon", "lexicon_hash", "passages", "coded", "shared", "coders", "corpora",
                "eras", "kwic_lines", "kwic_shared"):
        est.pop(key)
    doc = {
        "schema": CARD_SCHEMA,
        "lexicon": {"name": name, "version": version, "hash": m.lexicon_hash},
        "date": date,
        "corpora": list(m.corpora),
        "coders": list(m.coders),
        "eras": list(m.eras),
        "passages": m.passages,
        "passages_coded": m.coded,
        "passages_coded_by_both": m.shared if len(m.coders) == 2 else 0,
        "kwic_lines": m.kwic_lines,
        "kwic_lines_coded_by_both": m.kwic_shared,
        "sources": {k: list(v) for k, v in sources.items()},
        "columns": list(rows[0]) if rows else [],
        "rows": rows,
        "estimates": est,
    }
    return json.dumps(doc, ensure_ascii=False, indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Card:
    """A machine-readable card as read back (the parts the report shows)."""

    name: str
    version: str
    hash: str
    date: str
    corpora: tuple[str, ...]
    coders: tuple[str, ...]
    passages: int
    passages_coded: int
    passages_coded_by_both: int
    kwic_lines: int
    sources: dict[str, tuple[str, ...]]
    columns: tuple[str, ...]
    rows: tuple[dict[str, str], ...]
    #: The card's ``eras`` and ``estimates`` as read (checked by their reader:
    #: ``pipeline.report_era_recall.era_estimates``).
    eras: Any = None
    estimates: Any = None
    kwic_lines_coded_by_both: int = 0  # (cards before it was recorded: 0)


def read_card(path: Path) -> Card:
    """Read a card written by ``mobilize lexicon card --json``; a MobilizeError naming the
    file and what is wrong when it is not one (bad JSON, another schema, missing keys)."""
    import json

    path = Path(path)
    fix = "Write it again with mobilize lexicon card ... --json (see docs/validation.md)"
    try:
        raw = path.read_bytes()
        if len(raw) > 10_000_000:
            raise MobilizeError("is too large for a measurement card", path=path, fix=fix)
        doc = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MobilizeError(f"is not a readable JSON card ({exc})", path=path, fix=fix) from exc
    if not isinstance(doc, dict) or doc.get("schema") != CARD_SCHEMA:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise MobilizeError(f"is not a {CARD_SCHEMA} card (schema: {got!r})", path=path,
                            fix=fix)

    def need(ok: bool, what: str) -> None:
        if not ok:
            raise MobilizeError(f"card is malformed: {what}", path=path, fix=fix)

    def strs(x: Any) -> bool:
        return isinstance(x, list) and all(isinstance(i, str) for i in x)

    def count(key: str) -> int:
        v = doc.get(key)
        need(isinstance(v, int) and not isinstance(v, bool) and v >= 0,
             f"{key} is not a count")
        return int(v)

    lex = doc.get("lexicon")
    need(isinstance(lex, dict) and all(isinstance(lex.get(k), str)
                                       for k in ("name", "version", "hash")),
         "lexicon needs name, version and hash")
    need(isinstance(doc.get("date"), str), "date is not text")
    for key in ("corpora", "coders", "columns"):
        need(strs(doc.get(key)), f"{key} is not a list of text")
    sources = doc.get("sources")
    need(isinstance(sources, dict) and all(isinstance(k, str) and strs(v)
                                           for k, v in sources.items()),
         "sources is not a mapping of file lists")
    cols = tuple(doc["columns"])
    rows = doc.get("rows")
    need(isinstance(rows, list) and all(
        isinstance(r, dict) and set(r) == set(cols) and all(isinstance(v, str)
                                                            for v in r.values())
        for r in rows), "rows do not all hold the columns as text")
    return Card(lex["name"], lex["version"], lex["hash"], doc["date"], tuple(doc["corpora"]),
                tuple(doc["coders"]), count("passages"), count("passages_coded"),
                count("passages_coded_by_both"), count("kwic_lines"),
                {k: tuple(v) for k, v in sorted(sources.items())}, cols,
                tuple({c: r[c] for c in cols} for r in rows), doc.get("eras"),
                doc.get("estimates"),
                count("kwic_lines_coded_by_both") if "kwic_lines_coded_by_both" in doc else 0)


@dataclass(frozen=True)
class CardNote:
    """What the report's methods appendix says about the measurement card: ``card`` when
    one exists for the run's lexicon hash, else None and ``note`` says why."""

    card: Card | None
    note: str
    warning: str = ""  # a malformed card file, for the log (--verbose)


def card_for_run(lexicon_path: Path | None, lexicon_hash: str, *, name: str = "",
                 version: str = "", shown_path: str = "") -> CardNote:
    """The card beside the run's lexicon file (``card_path``) if its hash is the run's
    ``lexicon_hash``; otherwise a plain note: no card, a card of another version, or a card
    that cannot be read (never an exception). ``shown_path``: the card's name as printed."""
    what = f"{name} {version}".strip() or "this lexicon"
    short = lexicon_hash[:16] if lexicon_hash else "unknown"
    none = (f"No measurement card exists for the lexicon of this run ({what}, hash {short}): "
            "its precision and recall have not been measured (a researcher's own or edited "
            "lexicon has none until it is measured, see docs/validation.md).")
    if lexicon_path is None:
        return CardNote(None, none)
    path = card_path(lexicon_path)
    shown = shown_path or path.name
    if not path.is_file():
        return CardNote(None, none)
    try:
        card = read_card(path)
    except MobilizeError as exc:
        problem = exc.problem.rstrip(".")
        return CardNote(None, f"The measurement card {shown} cannot be read, so none is "
                              f"shown ({problem}). " + none, warning=f"{shown}: {problem}")
    if lexicon_hash and card.hash == lexicon_hash:
        return CardNote(card, "")
    return CardNote(None, f"No measurement card exists for the lexicon of this run ({what}, "
                          f"hash {short}): {shown} measures {card.name} {card.version} "
                          f"(hash {card.hash[:16]}), another version or an edited copy, so "
                          "its figures do not apply to this run.")


__all__ = [
    "CARD_SCHEMA",
    "CARD_SUFFIX",
    "Card",
    "CardNote",
    "CODE_COLUMNS",
    "DEFAULT_BREAKS",
    "PASSAGE_COLUMNS",
    "CategoryMeasure",
    "Code",
    "Codes",
    "Era",
    "Estimate",
    "KwicLine",
    "KwicPool",
    "Measurement",
    "Missed",
    "Paragraph",
    "Passage",
    "card_for_run",
    "card_json",
    "card_markdown",
    "card_path",
    "card_rows",
    "draw_passages",
    "era_of",
    "eras_from_breaks",
    "expression_agreement",
    "f1_estimate",
    "file_lines",
    "found",
    "is_still_counted",
    "kappa_cell",
    "kappa_estimate",
    "measure",
    "measures_csv",
    "missed_csv",
    "paragraph_pool",
    "pool_kwic",
    "parse_breaks",
    "passage_rows",
    "passages_csv",
    "proportion",
    "read_kwic",
    "still_counted",
    "read_card",
    "read_codes",
    "read_passages",
    "recall_csv",
    "wilson",
    "write_outputs",
]
