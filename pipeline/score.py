"""Scoring: per-document measures computed from lexicon hits, sentence/paragraph units and tokens.

Pure functions: nothing here reads files. Matching itself is ``pipeline.match.Matcher``
(substring matching on the normalised text, leftmost-longest within a category,
categories independent); this module turns its ``Hit``s into the rows of
``term_counts.csv``, ``scores.csv`` and ``cooccurrence.csv``.

Definitions (also in ``docs/engine.md``):

- A hit belongs to the sentence (and paragraph) in which it starts.
- ``tokens``: word tokens (at least one letter or digit) of the segmenter in the scope.
- ``count``: hits of the category in the scope; ``weighted``: the sum of their terms' weights.
- ``rate_per_10k = count / tokens * 10000`` (0 when ``tokens`` is 0), rounded to 6 decimals.
- ``sentences``: sentences in the scope; ``sentences_with``: those with a hit of the
  category; ``sentence_share = sentences_with / sentences`` (0 when there are none). The
  same for paragraphs.
- Scopes: ``all`` (the whole text); ``domain_sentences`` (only the sentences with a hit of
  the domain category, ``D_social_security``; its paragraphs are the paragraphs holding
  such a sentence, each counted with only those sentences); ``domain_paragraphs`` (only the
  paragraphs with a domain hit, all their sentences); ``domain_window`` (the sentences with a
  domain hit and their immediate neighbours, the sentence before and the sentence after,
  within the same paragraph; its paragraphs are those holding a domain sentence).
- ``framed`` (every scope): hits of a ``challenge`` category whose *clause* holds one of the
  lexicon's ``challenge_cues``. A hit's clause is the stretch of its sentence between the
  clause separators around it (``,`` ``;`` ``:`` after NFKC, and their full-width forms; a
  comma between two digits, 1,000, separates nothing), the hit's own text included (so a
  cue inside the term frames it); ``clause_span``. 0 for the other dimensions and when the
  lexicon lists no cues.
- ``term_counts.formula``: 1 when the term is marked ``formula: true`` in the lexicon.
- Co-occurrence: per unit (sentence, paragraph), the number of units where a feature
  category and a pathway (or challenge) category both have a hit; rows with count > 0.
- Units (``units.csv``): the document cut into blocks of consecutive sentences, a block
  being a paragraph, or a run of at most ``BLOCK_SENTENCES`` sentences of a longer one
  (some sources flatten a whole report into one paragraph). Per block, for scopes ``all``,
  ``domain_sentences`` and ``domain_window``, its tokens in the scope and each category's hits there; one
  row per (block, category) with a hit, and one row with an empty category and count 0
  for a block of the scope without any hit (so every block's tokens are there). The
  report resamples these blocks to give a document's rate its uncertainty
  (docs/report.md).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Protocol

from pipeline.segment import Segmented, Units, units_of

DOMAIN = "D_social_security"
SCOPES: tuple[str, ...] = ("all", "domain_sentences", "domain_paragraphs", "domain_window")
#: the dimension whose hits are counted as ``framed`` when their sentence holds a cue
CHALLENGE = "challenge"
#: co-occurrence pairs: dimension of category_a -> dimensions of category_b
PAIRS: Mapping[str, tuple[str, ...]] = {"feature": ("pathway", "challenge")}
RATE_DIGITS = 6

TERM_COLUMNS = ("doc_id", "dimension", "category", "term", "count", "formula")
SCORE_COLUMNS = ("doc_id", "scope", "dimension", "category", "count", "tokens", "rate_per_10k",
                 "sentences", "sentences_with", "sentence_share", "paragraphs",
                 "paragraphs_with", "paragraph_share", "weighted", "framed")
COOC_COLUMNS = ("doc_id", "unit", "dimension_a", "category_a", "dimension_b", "category_b",
                "count")
UNIT_COLUMNS = ("doc_id", "scope", "block", "category", "count", "tokens")
#: The most sentences in one block of ``units.csv`` (a longer paragraph is cut).
BLOCK_SENTENCES = 10
#: The scopes ``units.csv`` covers (``domain_paragraphs`` is whole paragraphs of ``all``).
UNIT_SCOPES: tuple[str, ...] = ("all", "domain_sentences", "domain_window")


class HitLike(Protocol):
    """What scoring reads of a ``pipeline.match.Hit``."""

    @property
    def start(self) -> int: ...
    @property
    def end(self) -> int: ...
    @property
    def dimension(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def term(self) -> str: ...


@dataclass(frozen=True)
class Scheme:
    """What scoring needs of a lexicon: its categories and term weights (picklable, small)."""

    categories: tuple[tuple[str, str], ...]  # (dimension, category id), in lexicon order
    weights: Mapping[tuple[str, str], float] = field(default_factory=dict)  # (category, term)
    domain: str = DOMAIN
    cues: tuple[str, ...] = ()  # the lexicon's challenge_cues
    formulas: frozenset[tuple[str, str]] = frozenset()  # (category, term) marked formula: true

    @classmethod
    def from_lexicon(cls, lexicon: Any, *, domain: str = DOMAIN) -> Scheme:
        cats = tuple((c.dimension, c.id) for c in lexicon.categories)
        weights: dict[tuple[str, str], float] = {}
        formulas: set[tuple[str, str]] = set()
        for c in lexicon.categories:
            for t in c.terms:
                weights.setdefault((c.id, t.text), float(t.weight))
                if getattr(t, "formula", False):
                    formulas.add((c.id, t.text))
        cues = tuple(sorted({c.text for c in getattr(lexicon, "challenge_cues", ())}))
        return cls(cats, weights, domain, cues, frozenset(formulas))

    def weight(self, category: str, term: str) -> float:
        return self.weights.get((category, term), 1.0)


@dataclass
class DocScore:
    """The rows one document contributes (without ``doc_id``: cached per text, not per file)."""

    tokens: int
    sentences: int
    paragraphs: int
    term_counts: list[tuple[str, str, str, int, int]]  # dimension, category, term, count, formula
    scores: list[tuple[Any, ...]]  # SCORE_COLUMNS[1:]
    cooccurrence: list[tuple[str, str, str, str, str, int]]  # COOC_COLUMNS[1:]
    units: list[tuple[str, int, str, int, int]] = field(default_factory=list)  # UNIT_COLUMNS[1:]

    def to_json(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "sentences": self.sentences, "paragraphs": self.paragraphs,
                "term_counts": self.term_counts, "scores": self.scores,
                "cooccurrence": self.cooccurrence, "units": self.units}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> DocScore:
        return cls(int(data["tokens"]), int(data["sentences"]), int(data["paragraphs"]),
                   [tuple(r) for r in data["term_counts"]],  # type: ignore[misc]
                   [tuple(r) for r in data["scores"]],
                   [tuple(r) for r in data["cooccurrence"]],  # type: ignore[misc]
                   [tuple(r) for r in data.get("units", ())])  # type: ignore[misc]


def _ratio(num: float, den: float, scale: float = 1.0) -> float:
    return round(num / den * scale, RATE_DIGITS) if den else 0.0


@lru_cache(maxsize=16)
def _cue_regex(cues: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(re.escape(c) for c in sorted(cues, key=lambda c: (-len(c), c))))


#: what ends a clause inside a sentence: , ; : (half-width after NFKC) and the full-width
#: forms; a comma between two digits (1,000) is a thousands separator, not a clause end
_CLAUSE_SEP = re.compile(r"[;:\uff0c\uff1b\uff1a]|,(?!\d)|(?<!\d),")


def clause_span(text: str, start: int, end: int, lo: int, hi: int) -> tuple[int, int]:
    """The clause of the hit ``text[start:end]`` inside its sentence ``text[lo:hi]``: from just
    after the last clause separator before ``start`` to just before the first one at or
    after ``end`` (the sentence's bounds when there is none). A hit whose own text holds a
    separator keeps it: its clause runs across it."""
    cs = lo
    for m in _CLAUSE_SEP.finditer(text, lo, start):
        cs = m.end()
    m = _CLAUSE_SEP.search(text, max(end, cs), hi)
    return cs, (m.start() if m is not None else hi)


def hit_is_framed(text: str, start: int, end: int, lo: int, hi: int,
                  cues: tuple[str, ...]) -> bool:
    """Whether the clause of the hit ``text[start:end]`` (sentence ``text[lo:hi]``) holds one
    of ``cues`` (the hit's own text included)."""
    if not cues:
        return False
    cs, ce = clause_span(text, start, end, lo, hi)
    return _cue_regex(tuple(cues)).search(text, cs, ce) is not None


def window_sentences(domain_sents: Iterable[int], para_of: Sequence[int]) -> set[int]:
    """The ``domain_window`` scope: each domain sentence with the sentence before and the one
    after it, when they lie in the same paragraph."""
    out: set[int] = set()
    n = len(para_of)
    for i in domain_sents:
        out.add(i)
        if i > 0 and para_of[i - 1] == para_of[i]:
            out.add(i - 1)
        if i + 1 < n and para_of[i + 1] == para_of[i]:
            out.add(i + 1)
    return out


def score_document(seg: Segmented, hits: Iterable[HitLike], scheme: Scheme,
                   *, text_length: int | None = None) -> DocScore:
    """All measures of one document from its segmentation and the matcher's hits.

    ``seg`` must be the segmentation of the same text the hits were found in
    (paragraphs joined by ``\\n``); ``text_length`` checks that.
    """
    text = "\n".join("".join("".join(sent) for sent in para) for para in seg)
    return score_units(units_of(seg), hits, scheme, text_length=text_length, text=text)


def score_units(units: Units, hits: Iterable[HitLike], scheme: Scheme,
                *, text_length: int | None = None, text: str | None = None) -> DocScore:
    """``score_document`` from the segmentation's ``Units`` (``pipeline.segment.units_of``).

    ``text`` (the normalised text the hits were found in) is needed for ``framed``: without
    it, ``framed`` is 0."""
    starts, para_of, words = units.starts, units.para_of, units.words
    n_sent = len(starts)
    n_para = units.paragraphs
    if text_length is not None:
        total = units.chars if n_sent else 0
        if total != text_length:
            raise ValueError(f"segmentation covers {total} characters, text has {text_length}")
    cats = scheme.categories
    dim_of = {c: d for d, c in cats}

    challenge = {c for d, c in cats if d == CHALLENGE}
    cues = scheme.cues if text is not None and challenge else ()
    n_text = len(text) if text is not None else 0
    # sentences with hits only: sentence -> category -> [count, weighted, framed]
    per_sent: dict[int, dict[str, list[float]]] = {}
    # (a plain dict: a Counter's += calls its Python __missing__ for every new term)
    term_counter: dict[tuple[str, str, str], int] = {}
    counted = term_counter.get
    weight = scheme.weights.get
    last = -1
    cells: dict[str, list[float]] = {}
    for h in hits:
        cat, term = h.category, h.term
        key = (h.dimension, cat, term)
        term_counter[key] = counted(key, 0) + 1
        if not n_sent:
            continue
        si = bisect_right(starts, h.start) - 1
        if si < 0:
            si = 0
        if si != last:  # (hits come in order: most follow one in the same sentence)
            got = per_sent.get(si)
            cells = per_sent[si] = {} if got is None else got
            last = si
        cell = cells.get(cat)
        if cell is None:
            cell = cells[cat] = [0, 0.0, 0]
            if cat not in dim_of:
                dim_of[cat] = h.dimension
        cell[0] += 1
        cell[1] += weight((cat, term), 1.0)
        if cues and cat in challenge:
            hi = starts[si + 1] if si + 1 < n_sent else n_text
            if hit_is_framed(text, h.start, h.end, starts[si], hi, cues):  # type: ignore[arg-type]
                cell[2] += 1

    domain_sents = sorted(i for i, c in per_sent.items() if scheme.domain in c)
    domain_paras = {para_of[i] for i in domain_sents}
    window = window_sentences(domain_sents, para_of)
    in_scope = {
        "all": None,
        "domain_sentences": set(domain_sents),
        "domain_paragraphs": {i for i in per_sent if para_of[i] in domain_paras},
        "domain_window": window,
    }
    dp_sents = [i for i in range(n_sent) if para_of[i] in domain_paras] if domain_paras else []
    size = {
        "all": (sum(words), n_sent, n_para),
        "domain_sentences": (sum(words[i] for i in domain_sents), len(domain_sents),
                             len(domain_paras)),
        "domain_paragraphs": (sum(words[i] for i in dp_sents), len(dp_sents), len(domain_paras)),
        "domain_window": (sum(words[i] for i in window), len(window), len(domain_paras)),
    }

    scores: list[tuple[Any, ...]] = []
    for scope in SCOPES:
        keep = in_scope[scope]
        tokens, sentences, paragraphs = size[scope]
        # category -> [count, weighted, sentences_with, paras, framed]
        agg: dict[str, list[Any]] = {}
        for si, cells in per_sent.items():
            if keep is not None and si not in keep:
                continue
            for cat, (n, w, f) in cells.items():
                a = agg.get(cat)
                if a is None:
                    a = agg[cat] = [0, 0.0, 0, set(), 0]
                a[0] += n
                a[1] += w
                a[2] += 1
                a[3].add(para_of[si])
                a[4] += f
        for dim, cat in cats:
            a = agg.get(cat)
            if a is None:  # (no hit in the scope: the row the formulas give for zeros)
                scores.append((scope, dim, cat, 0, tokens, 0.0, sentences, 0, 0.0, paragraphs,
                               0, 0.0, 0.0, 0))
                continue
            count, weighted, sw, pw, fr = a
            scores.append((scope, dim, cat, int(count), tokens, _ratio(count, tokens, 10000.0),
                           sentences, sw, _ratio(sw, sentences), paragraphs, len(pw),
                           _ratio(len(pw), paragraphs), round(weighted, RATE_DIGITS), int(fr)))

    cooc: Counter[tuple[str, str, str, str, str]] = Counter()
    para_cats: dict[int, set[str]] = {}
    for si in sorted(per_sent):
        present = set(per_sent[si])
        para_cats.setdefault(para_of[si], set()).update(present)
        _pairs("sentence", present, dim_of, cooc)
    for present in para_cats.values():
        _pairs("paragraph", present, dim_of, cooc)

    formulas = scheme.formulas
    term_counts = sorted((d, c, t, n, int((c, t) in formulas))
                         for (d, c, t), n in term_counter.items())
    cooc_rows = sorted((*k, n) for k, n in cooc.items())
    unit_rows = _unit_rows(per_sent, para_of, words,
                           {"domain_sentences": set(domain_sents), "domain_window": window})
    return DocScore(sum(words), n_sent, n_para, term_counts, scores, cooc_rows, unit_rows)


def _unit_rows(per_sent: Mapping[int, Mapping[str, list[float]]], para_of: Sequence[int],
               words: Sequence[int], keep: Mapping[str, set[int]]
               ) -> list[tuple[str, int, str, int, int]]:
    """The rows of ``units.csv`` (without doc_id): per scope and block, its tokens and each
    category's hits; a block without a hit has one row with category "" and 0. ``keep``:
    the sentences of each scope other than ``all``.

    Blocks and the whole text's tokens per block come from NumPy (``_blocks``); the Python
    loops run over the blocks, the sentences with hits and the sentences of the narrower
    scopes only, never over every sentence of the text once per scope."""
    if not len(para_of):
        return []
    block_of, block_tokens = _blocks(para_of, words)
    rows: list[tuple[str, int, str, int, int]] = []
    for scope in UNIT_SCOPES:
        inside = keep.get(scope)
        counts: dict[int, dict[str, int]] = {}
        for si, cells in per_sent.items():
            if cells and (inside is None or si in inside):
                b = block_of[si]
                c = counts.get(b)
                if c is None:
                    c = counts[b] = {}
                for cat, (n, _w, _f) in cells.items():
                    c[cat] = c.get(cat, 0) + int(n)
        if inside is None:
            tokens: dict[int, int] | list[int] = block_tokens
            blocks: Iterable[int] = range(len(block_tokens))
        else:
            tokens = {}
            for si in inside:
                b = block_of[si]
                tokens[b] = tokens.get(b, 0) + words[si]
            blocks = sorted(tokens)
        for b in blocks:
            c = counts.get(b)
            if not c:
                rows.append((scope, b, "", 0, tokens[b]))
                continue
            rows += [(scope, b, cat, n, tokens[b]) for cat, n in sorted(c.items())]
    return rows


def _blocks(para_of: Sequence[int], words: Sequence[int]) -> tuple[list[int], list[int]]:
    """The block of each sentence (a block is a paragraph, or a run of ``BLOCK_SENTENCES``
    sentences of a longer one: a new block starts at each paragraph and every
    ``BLOCK_SENTENCES`` sentences into it) and the word tokens of each block."""
    import numpy as np

    n = len(para_of)
    para = np.asarray(para_of, dtype=np.int64)
    new_para = np.ones(n, dtype=bool)
    new_para[1:] = para[1:] != para[:-1]
    para_start = np.flatnonzero(new_para)
    into = np.arange(n) - np.repeat(para_start, np.diff(np.append(para_start, n)))
    starts = np.flatnonzero(into % BLOCK_SENTENCES == 0)
    block_of = np.zeros(n, dtype=np.int64)
    block_of[starts[1:]] = 1
    tokens = np.add.reduceat(np.asarray(words, dtype=np.int64), starts)
    return np.cumsum(block_of).tolist(), tokens.tolist()


def _pairs(unit: str, present: set[str], dim_of: Mapping[str, str],
           out: Counter[tuple[str, str, str, str, str]]) -> None:
    if len(present) < 2:
        return
    for a in present:
        da = dim_of.get(a, "")
        targets = PAIRS.get(da)
        if not targets:
            continue
        for b in present:
            db = dim_of.get(b, "")
            if db in targets:
                out[(unit, da, a, db, b)] += 1


def rows_with_id(doc_id: str, rows: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Prefix each row with ``doc_id`` (cached rows are stored without it)."""
    return [(doc_id, *r) for r in rows]
