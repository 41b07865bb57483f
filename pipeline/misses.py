"""Sentences the lexicon misses, found by a classifier: a recall aid beyond term lists.

The keyword-discovery idea of King, Lam and Roberts (2017, "Computer-Assisted Keyword and
Document Set Discovery from Unstructured Text", AJPS 61(4)): the sentences the lexicon
matches are a *reference set*, the rest a *search set*; a classifier trained to tell them
apart, applied to the search set, puts first the unmatched sentences that read like matched
ones — candidates for what the lexicon misses — and the features that drive those scores
are candidate keywords.

Per category:

1. units are the corpus's sentences (``pipeline.normalize.sentences`` of each paragraph);
   a sentence is positive when ``Matcher`` counts a hit of the category in it (the matcher
   runs over the whole document, so it is exactly what the scorer counts);
2. in positive sentences every matched span is **masked out** (the text is cut there, and
   no n-gram crosses a cut): otherwise the model just relearns the terms and ranks first
   the sentences that hold a term hidden or guarded, not the ones the lexicon misses;
3. features: presence of character 2-4-grams that hold a Han character or a letter and do
   not cross punctuation, seen in at least ``min_df`` sentences, rows scaled to unit length;
4. model: L2-regularised logistic regression (scikit-learn, liblinear, balanced class
   weights, ``random_state`` = the seed), **cross-fitted**: the sentences are split into
   ``folds`` stratified folds (shuffled with the seed) and each unmatched sentence is
   scored by the model trained on the other folds, so no sentence is scored by a model that
   saw it labelled "not matched";
5. output: the ``top`` unmatched sentences by score (a repeated sentence once), each with
   the n-grams that contributed most to its score (feature value x coefficient), and the
   distinct driving n-grams as candidate terms.

Deterministic for a seed (liblinear and the fold split are seeded; rows are sorted).
"""

from __future__ import annotations

import bisect
import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline import normalize
from pipeline.errors import MobilizeError
from pipeline.ingest import Document
from pipeline.lexicon import Lexicon
from pipeline.match import Matcher

#: The character n-gram lengths.
NGRAMS = (2, 4)
#: A sentence shorter than this (characters) is not a unit: headings and list markers.
MIN_SENTENCE = 8
#: N-grams driving one sentence's score that are listed.
DRIVERS = 5
MASK = "\x00"
SHEET_COLUMNS: tuple[str, ...] = ("category", "rank", "score", "corpus", "doc_id", "year",
                                  "sentence", "ngrams", "term", "accept", "note", "source")
CANDIDATE_COLUMNS: tuple[str, ...] = ("category", "ngram", "sentences", "weight", "part_of_term",
                                      "word2vec")
_SPLIT = re.compile(r"[^\w]+|_|" + MASK)
_WORDY = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaffA-Za-z]")


@dataclass(frozen=True)
class Sentence:
    corpus: str
    doc_id: str
    year: int | None
    start: int  # offset in the document's text
    text: str


def sentences_of(doc: Document, corpus: str) -> list[Sentence]:
    """The document's sentences with their offsets in ``doc.text``."""
    out: list[Sentence] = []
    offset = 0
    for para in doc.text.split("\n"):
        pos = offset
        for s in normalize.sentences(para):
            if len(s.strip()) >= MIN_SENTENCE:
                out.append(Sentence(corpus, doc.doc_id, doc.year, pos, s))
            pos += len(s)
        offset += len(para) + 1
    return out


def ngrams(text: str, lo: int = NGRAMS[0], hi: int = NGRAMS[1]) -> list[str]:
    """Character ``lo``-``hi``-grams of ``text``, never across punctuation, a space or a mask,
    each holding a Han character or a letter."""
    out: list[str] = []
    for piece in _SPLIT.split(text):
        for n in range(lo, hi + 1):
            for i in range(len(piece) - n + 1):
                g = piece[i:i + n]
                if _WORDY.search(g):
                    out.append(g)
    return out


def masked(text: str, spans: Iterable[tuple[int, int]]) -> str:
    """``text`` with each span replaced by one mask character."""
    out: list[str] = []
    pos = 0
    for s, e in sorted(spans):
        if s < pos:
            s = pos
        if e <= s:
            continue
        out.append(text[pos:s])
        out.append(MASK)
        pos = e
    out.append(text[pos:])
    return "".join(out)


@dataclass(frozen=True)
class Finding:
    category: str
    rank: int
    score: float
    sentence: Sentence
    drivers: tuple[tuple[str, float], ...]  # (n-gram, contribution)


@dataclass(frozen=True)
class CategoryMisses:
    category: str
    positives: int  # sentences the lexicon matched
    sentences: int
    findings: tuple[Finding, ...]
    candidates: tuple[tuple[str, int, float], ...]  # (n-gram, top sentences it drove, weight)


@dataclass(frozen=True)
class Misses:
    corpora: tuple[str, ...]
    sentences: int
    features: int
    categories: tuple[CategoryMisses, ...]
    params: dict[str, Any] = field(default_factory=dict)


def find_misses(documents: Sequence[tuple[str, Document]], lexicon: Lexicon, *,
                categories: Sequence[str] | None = None, top: int = 50, seed: int = 20240601,
                folds: int = 3, min_df: int = 3, c: float = 1.0,
                matcher: Matcher | None = None) -> Misses:
    """Train and cross-fit a classifier per category (see the module docstring) over the
    ``(corpus name, document)`` pairs, and list the ``top`` unmatched sentences per category
    with the n-grams that drove their scores."""
    import numpy as np
    from scipy import sparse
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import normalize as unit_rows

    if top < 1:
        raise MobilizeError(f"--top {top} is below 1", fix="Ask for 1 or more")
    if folds < 2:
        raise MobilizeError(f"--folds {folds} is below 2", fix="Give 2 or more folds")
    matcher = matcher or Matcher(lexicon)
    wanted = list(categories) if categories else [cat.id for cat in lexicon.categories]
    known = {cat.id for cat in lexicon.categories}
    for cid in wanted:
        if cid not in known:
            raise MobilizeError(f"no category {cid!r} in lexicon {lexicon.name}",
                                fix="Use one of: " + ", ".join(sorted(known)))
    units: list[Sentence] = []
    spans: dict[str, dict[int, list[tuple[int, int]]]] = {cid: defaultdict(list) for cid in wanted}
    for corpus, doc in documents:
        sents = sentences_of(doc, corpus)
        if not sents:
            continue
        base = len(units)
        units += sents
        starts = [s.start for s in sents]

        for hit in matcher.find(doc.text):
            if hit.category not in spans:
                continue
            k = bisect.bisect_right(starts, hit.start) - 1
            if k < 0:
                continue
            s = sents[k]
            if hit.start < s.start + len(s.text):
                spans[hit.category][base + k].append((hit.start - s.start,
                                                      min(hit.end, s.start + len(s.text))
                                                      - s.start))
    if not units:
        raise MobilizeError("the corpus has no sentences", fix="Give a corpus with text")
    vec = CountVectorizer(analyzer=ngrams, binary=True, min_df=min_df, dtype=np.float64)
    base_x = vec.fit_transform([u.text for u in units]).tocsr()
    vocab = vec.get_feature_names_out()
    out: list[CategoryMisses] = []
    for ci, cid in enumerate(wanted):
        pos = sorted(spans[cid])
        y = np.zeros(len(units), dtype=int)
        y[pos] = 1
        if len(pos) < folds or len(units) - len(pos) < folds:
            out.append(CategoryMisses(cid, len(pos), len(units), (), ()))
            continue
        # the positive rows replaced by their masked text: D x + P m, where D zeroes the
        # positive rows and P puts the masked rows in their place
        mx = vec.transform([masked(units[i].text, spans[cid][i]) for i in pos])
        keep = sparse.diags((y == 0).astype(np.float64))
        place = sparse.csr_matrix((np.ones(len(pos)), (pos, np.arange(len(pos)))),
                                  shape=(len(units), len(pos)))
        x = unit_rows((keep @ base_x + place @ mx).tocsr())
        scores = np.full(len(units), np.nan)
        drivers: dict[int, tuple[tuple[str, float], ...]] = {}
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + ci)
        for train, test in split.split(np.zeros(len(units)), y):
            model = LogisticRegression(C=c, class_weight="balanced", solver="liblinear",
                                       random_state=seed, max_iter=1000)
            model.fit(x[train], y[train])
            neg = test[y[test] == 0]
            if not len(neg):
                continue
            scores[neg] = model.predict_proba(x[neg])[:, 1]
            coef = model.coef_[0]
            for i in neg:
                row = x[i]
                contrib = row.data * coef[row.indices]
                order = np.argsort(-contrib, kind="stable")[:DRIVERS]
                drivers[int(i)] = tuple((str(vocab[row.indices[j]]), round(float(contrib[j]), 4))
                                        for j in order if contrib[j] > 0)
        order = sorted((i for i in range(len(units)) if y[i] == 0),
                       key=lambda i: (-scores[i], units[i].corpus, units[i].doc_id,
                                      units[i].start))
        findings: list[Finding] = []
        seen: set[str] = set()
        for i in order:
            if len(findings) >= top:
                break
            if units[i].text in seen:
                continue
            seen.add(units[i].text)
            findings.append(Finding(cid, len(findings) + 1, round(float(scores[i]), 4),
                                    units[i], drivers.get(i, ())))
        tally: dict[str, list[float]] = defaultdict(list)
        for f in findings:
            for g, w in f.drivers:
                tally[g].append(w)
        cands = sorted(((g, len(ws), round(max(ws), 4)) for g, ws in tally.items()),
                       key=lambda t: (-t[1], -t[2], t[0]))
        out.append(CategoryMisses(cid, len(pos), len(units), tuple(findings), tuple(cands)))
    corpora = tuple(sorted({name for name, _d in documents}))
    params = {"ngrams": list(NGRAMS), "min_df": min_df, "C": c, "folds": folds, "seed": seed,
              "top": top, "min_sentence": MIN_SENTENCE}
    return Misses(corpora, len(units), len(vocab), tuple(out), params)


def part_of_term(ngram: str, terms: Iterable[str]) -> str:
    """The first lexicon term that holds ``ngram`` (or that it holds), else ''."""
    for t in terms:
        if ngram in t or t in ngram:
            return t
    return ""


def word2vec_overlap(ngram: str, suggested: Iterable[str]) -> str:
    """The first Word2Vec suggestion equal to ``ngram``, holding it or held by it, else ''."""
    for t in suggested:
        if ngram == t or ngram in t or t in ngram:
            return t
    return ""


def sheet_csv(result: Misses) -> str:
    """The review sheet: one row per finding. Write the phrase to add in ``term`` and mark
    ``accept`` = yes, then ``mobilize lexicon accept SHEET`` adds it (with a provenance
    note); or code the sentences as recall evidence."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHEET_COLUMNS)
    source = "mobilize lexicon misses on " + "+".join(result.corpora)
    for cat in result.categories:
        for f in cat.findings:
            w.writerow([f.category, f.rank, f"{f.score:.4f}", f.sentence.corpus,
                        f.sentence.doc_id, "" if f.sentence.year is None else f.sentence.year,
                        f.sentence.text, "; ".join(f"{g} {v:.3f}" for g, v in f.drivers), "",
                        "", "", source])
    return buf.getvalue()


def candidates_csv(result: Misses, lexicon: Lexicon,
                   suggestions: dict[str, list[str]] | None = None) -> str:
    """The distinct driving n-grams per category: how many top sentences each drove, its
    largest contribution, the lexicon term it is part of (if any) and, given Word2Vec
    suggestions, the suggestion it equals or overlaps (if any)."""
    terms = {cat.id: [t.text for t in cat.terms if t.pattern is None]
             for cat in lexicon.categories}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CANDIDATE_COLUMNS)
    for cat in result.categories:
        sugg = (suggestions or {}).get(cat.category, [])
        for g, n, weight in cat.candidates:
            w.writerow([cat.category, g, n, f"{weight:.4f}",
                        part_of_term(g, terms.get(cat.category, [])),
                        word2vec_overlap(g, sugg) if suggestions is not None else ""])
    return buf.getvalue()


@dataclass(frozen=True)
class Comparison:
    category: str
    candidates: int  # distinct driving n-grams
    new: int  # not part of a lexicon term of the category
    not_in_word2vec: int  # of the new ones: no Word2Vec suggestion equals, holds or is held by it
    suggestions: int


def compare_with_word2vec(result: Misses, lexicon: Lexicon,
                          suggestions: dict[str, list[str]]) -> list[Comparison]:
    """Per category: candidate n-grams, those not part of a lexicon term, and of these the ones
    no Word2Vec suggestion of the same category equals, holds or is held by."""
    terms = {cat.id: [t.text for t in cat.terms if t.pattern is None]
             for cat in lexicon.categories}
    out: list[Comparison] = []
    for cat in result.categories:
        sugg = suggestions.get(cat.category, [])
        new = [g for g, _n, _w in cat.candidates if not part_of_term(g, terms[cat.category])]
        out.append(Comparison(cat.category, len(cat.candidates), len(new),
                              sum(1 for g in new if not word2vec_overlap(g, sugg)), len(sugg)))
    return out


__all__ = [
    "CANDIDATE_COLUMNS",
    "SHEET_COLUMNS",
    "CategoryMisses",
    "Comparison",
    "Finding",
    "Misses",
    "Sentence",
    "candidates_csv",
    "compare_with_word2vec",
    "find_misses",
    "masked",
    "ngrams",
    "part_of_term",
    "sentences_of",
    "sheet_csv",
    "word2vec_overlap",
]
