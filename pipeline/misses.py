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
3. features: character 2-4-grams that hold a Han character or a letter and do not cross
   punctuation, seen in at least ``min_df`` sentences; presence weighted by smoothed idf
   (so 发展 weighs less than 村务公开), rows scaled to unit length;
4. model: logistic regression fitted by stochastic gradient descent (scikit-learn
   ``SGDClassifier``, log loss, L2 penalty ``alpha`` = 1e-3 (weaker penalties let rare
   n-grams of a few matched sentences carry the model; 1e-3 spreads the weight over the
   shared ones, which are what a missed sentence shares), balanced class weights,
   ``random_state`` = the seed; liblinear's exact fit ranked nearly the same sentences
   first on gwr-national-zh, three to five times slower), **cross-fitted**: the sentences
   are split into ``folds`` stratified folds (shuffled with the seed) and each unmatched
   sentence is scored by the model trained on the other folds, so no sentence is scored
   by a model that saw it labelled "not matched";
5. output: the ``top`` unmatched sentences by score (a repeated sentence once), each with
   the n-grams that contributed most to its score (feature value x coefficient);
6. keywords (KLR's second step): the n-grams that set the top sentences apart from the
   other unmatched sentences (``keywords``), overlapping ones joined into the phrase they
   are windows of (``assemble``): candidate terms for the lexicon's author.

Deterministic for a seed (the gradient descent and the fold split are seeded; ties are
broken by corpus, doc_id and position).
"""

from __future__ import annotations

import bisect
import csv
import io
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
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
#: N-grams with the largest coefficients reported per category.
LEARNED = 20
MASK = "\x00"
SHEET_COLUMNS: tuple[str, ...] = ("category", "rank", "score", "corpus", "doc_id", "year",
                                  "sentence", "ngrams", "term", "accept", "note", "source")
CANDIDATE_COLUMNS: tuple[str, ...] = ("category", "ngram", "top_sentences", "g2",
                                      "part_of_term", "word2vec")
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
    candidates: tuple[tuple[str, int, float], ...]  # (n-gram, top sentences holding it, G²)
    #: the n-grams with the largest mean coefficient over the folds: what the model learned
    #: the category's matched sentences look like, the masked terms left out
    learned: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Misses:
    corpora: tuple[str, ...]
    sentences: int
    features: int
    categories: tuple[CategoryMisses, ...]
    params: dict[str, Any] = field(default_factory=dict)


def find_misses(documents: Sequence[tuple[str, Document]], lexicon: Lexicon, *,
                categories: Sequence[str] | None = None, top: int = 50, seed: int = 20240601,
                folds: int = 3, min_df: int = 3, alpha: float = 1e-3,
                matcher: Matcher | None = None,
                on_category: Callable[[str], None] | None = None) -> Misses:
    """Train and cross-fit a classifier per category (see the module docstring) over the
    ``(corpus name, document)`` pairs, and list the ``top`` unmatched sentences per category
    with the n-grams that drove their scores. ``on_category`` is called after each
    category (for progress bars)."""
    import numpy as np
    from scipy import sparse
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import SGDClassifier
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
    # idf weights (smoothed, as scikit-learn's TfidfTransformer): a common n-gram such as 发展
    # weighs less than a rare one, in the model and in what drives a score
    df = np.asarray(base_x.sum(axis=0)).ravel()
    idf = sparse.diags(np.log((1 + len(units)) / (1 + df)) + 1.0)
    out: list[CategoryMisses] = []
    for ci, cid in enumerate(wanted):
        pos = sorted(spans[cid])
        y = np.zeros(len(units), dtype=int)
        y[pos] = 1
        if len(pos) < folds or len(units) - len(pos) < folds:
            out.append(CategoryMisses(cid, len(pos), len(units), (), ()))
            if on_category is not None:
                on_category(cid)
            continue
        # the positive rows replaced by their masked text: D x + P m, where D zeroes the
        # positive rows and P puts the masked rows in their place
        mx = vec.transform([masked(units[i].text, spans[cid][i]) for i in pos])
        keep = sparse.diags((y == 0).astype(np.float64))
        place = sparse.csr_matrix((np.ones(len(pos)), (pos, np.arange(len(pos)))),
                                  shape=(len(units), len(pos)))
        x = unit_rows(((keep @ base_x + place @ mx) @ idf).tocsr())
        scores = np.full(len(units), np.nan)
        fold_of = np.zeros(len(units), dtype=int)
        coefs: list[np.ndarray] = []
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + ci)
        for k, (train, test) in enumerate(split.split(np.zeros(len(units)), y)):
            model = SGDClassifier(loss="log_loss", alpha=alpha, class_weight="balanced",
                                  max_iter=50, tol=1e-4, random_state=seed)
            with warnings.catch_warnings():  # a fold that stops at max_iter is still usable
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(x[train], y[train])
            neg = test[y[test] == 0]
            scores[neg] = model.predict_proba(x[neg])[:, 1]
            fold_of[neg] = k
            coefs.append(model.coef_[0])
        order = sorted((i for i in range(len(units)) if y[i] == 0),
                       key=lambda i: (-scores[i], units[i].corpus, units[i].doc_id,
                                      units[i].start))
        findings: list[Finding] = []
        top_rows: list[int] = []
        seen: set[str] = set()
        for i in order:
            if len(findings) >= top:
                break
            if units[i].text in seen:
                continue
            seen.add(units[i].text)
            row = x[i]
            contrib = row.data * coefs[fold_of[i]][row.indices]
            best = np.argsort(-contrib, kind="stable")[:DRIVERS]
            drivers = tuple((str(vocab[row.indices[j]]), round(float(contrib[j]), 4))
                            for j in best if contrib[j] > 0)
            findings.append(Finding(cid, len(findings) + 1, round(float(scores[i]), 4),
                                    units[i], drivers))
            top_rows.append(i)
        top_set = set(top_rows)
        cands = keywords(base_x, vocab, top_rows, [i for i in order if i not in top_set],
                         texts=[units[i].text for i in top_rows])
        mean = np.mean(coefs, axis=0)
        best = [j for j in np.argsort(-mean, kind="stable")[:LEARNED] if mean[j] > 0]
        learned = tuple((str(vocab[j]), round(float(mean[j]), 4)) for j in best)
        out.append(CategoryMisses(cid, len(pos), len(units), tuple(findings), tuple(cands),
                                  learned))
        if on_category is not None:
            on_category(cid)
    corpora = tuple(sorted({name for name, _d in documents}))
    params = {"ngrams": list(NGRAMS), "min_df": min_df, "alpha": alpha, "folds": folds, "seed": seed,
              "top": top, "min_sentence": MIN_SENTENCE}
    return Misses(corpora, len(units), len(vocab), tuple(out), params)


def g2(a: Any, t: int, b: Any, r: int) -> Any:
    """Dunning's log-likelihood ratio G² of an n-gram in ``a`` of ``t`` top sentences and ``b``
    of ``r`` other sentences (vectorised over n-grams; 0 log 0 = 0)."""
    import numpy as np

    def term(k: Any, e: Any) -> Any:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(k > 0, k * np.log(k / e), 0.0)

    n = t + r
    k = a + b
    return 2 * (term(a, k * t / n) + term(t - a, (n - k) * t / n)
                + term(b, k * r / n) + term(r - b, (n - k) * r / n))


def keywords(x: Any, vocab: Any, top_rows: Sequence[int], rest_rows: Sequence[int], *,
             min_count: int = 2, limit: int = 100,
             texts: Sequence[str] | None = None) -> list[tuple[str, int, float]]:
    """Keywords of the top sentences against the rest of the search set (King, Lam and
    Roberts' keyword step): n-grams present in at least ``min_count`` top sentences and
    relatively more often there than in the other unmatched sentences, ranked by Dunning's
    G² (which weighs both how much more often and how often: an n-gram of two sentences
    does not outrank one of twenty); the first ``limit``, and of those an n-gram inside a
    longer one with the same count is dropped (独立自 inside 独立自主). Given the top
    sentences' ``texts``, overlapping n-grams are first joined into phrases (``assemble``).
    Returns (n-gram or phrase, top sentences holding it, G²)."""
    import numpy as np

    if not top_rows:
        return []
    a = np.asarray(x[list(top_rows)].sum(axis=0)).ravel()
    b = (np.asarray(x[list(rest_rows)].sum(axis=0)).ravel() if rest_rows
         else np.zeros_like(a))
    t, r = len(top_rows), len(rest_rows)
    cols = np.flatnonzero((a >= min_count) & (a * max(r, 1) > b * t))
    score = g2(a[cols], t, b[cols], r)
    found = sorted(((str(vocab[c]), int(a[c]), round(float(v), 4))
                    for c, v in zip(cols, score, strict=True) if _WORDY.search(str(vocab[c]))),
                   key=lambda q: (-q[2], -q[1], q[0]))[:limit]
    if texts is not None:
        found = assemble(found, texts)
    return [f for f in found if not any(f[0] != g[0] and f[0] in g[0] and f[1] == g[1]
                                        for g in found)]


def assemble(found: Sequence[tuple[str, int, float]],
             texts: Sequence[str]) -> list[tuple[str, int, float]]:
    """Join n-grams that overlap by all but their last (or first) character, at least two
    characters, and are held by the same number of top sentences into the longer phrase
    they are windows of (中求进工 + 求进工作 + 进工作总 -> 中求进工作总), kept only when
    exactly as many of ``texts`` hold the phrase. In rank order; a phrase takes the rank
    and G² of its best n-gram, and its n-grams leave the list."""
    out: list[tuple[str, int, float]] = []
    used: set[str] = set()
    for g, n, score in found:
        if g in used:
            continue
        phrase = g
        grown = True
        while grown:
            grown = False
            for h, m, _s in found:
                if h in used or h == g or m != n or len(h) < 3:
                    continue
                if phrase.endswith(h[:-1]) and h not in phrase:
                    cand = phrase + h[-1]
                elif phrase.startswith(h[1:]) and h not in phrase:
                    cand = h[0] + phrase
                else:
                    continue
                if sum(1 for t in texts if cand in t) == n:
                    phrase = cand
                    used.add(h)
                    grown = True
        used.add(g)
        if all(phrase != p for p, _n, _s in out):  # two chains can end in the same phrase
            out.append((phrase, n, score))
    return out


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
    suggestions: int  # Word2Vec suggestions of the category (the budget k)
    compared: int  # the first k candidate n-grams not part of a lexicon term of the category
    not_in_word2vec: int  # of those: no suggestion of the category equals, holds or is held by it


def compare_with_word2vec(result: Misses, lexicon: Lexicon,
                          suggestions: dict[str, list[str]]) -> list[Comparison]:
    """Per category, with an equal budget: k = the number of Word2Vec suggestions of the
    category; of the first k candidate n-grams that are not part of a lexicon term of the
    category, how many no suggestion of the category equals, holds or is held by."""
    terms = {cat.id: [t.text for t in cat.terms if t.pattern is None]
             for cat in lexicon.categories}
    out: list[Comparison] = []
    for cat in result.categories:
        sugg = suggestions.get(cat.category, [])
        new = [g for g, _n, _w in cat.candidates if not part_of_term(g, terms[cat.category])]
        first = new[:len(sugg)]
        out.append(Comparison(cat.category, len(sugg), len(first),
                              sum(1 for g in first if not word2vec_overlap(g, sugg))))
    return out


__all__ = [
    "CANDIDATE_COLUMNS",
    "SHEET_COLUMNS",
    "CategoryMisses",
    "Comparison",
    "Finding",
    "Misses",
    "Sentence",
    "assemble",
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
