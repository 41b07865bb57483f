"""Scoring: exact measures on tiny texts, laws that always hold, and term counts on real corpora."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import normalize
from pipeline.ingest import load_corpus
from pipeline.lexicon import Lexicon, load_lexicon
from pipeline.match import Matcher
from pipeline.score import SCORE_COLUMNS, Scheme, score_document
from pipeline.segment import segment_text
from tests.conftest import CharTokenizer, CHINESE_CORPORA, REPO, shared_corpus

MINI = REPO / "tests" / "fixtures" / "engine" / "mini.yaml"

# Two paragraphs, four sentences; every character is one token in these unit tests.
TEXT = ("完善社会保障，促进共同富裕。鼓励社会组织促进共同富裕。\n"
        "应对人口老龄化。推进共同富裕和兜底保障！")


@pytest.fixture(scope="module")
def lexicon() -> Lexicon:
    return load_lexicon(MINI)


def _score(text: str, lexicon: Lexicon):  # type: ignore[no-untyped-def]
    seg = segment_text(CharTokenizer(), text)
    return score_document(seg, Matcher(lexicon).find(text), Scheme.from_lexicon(lexicon),
                          text_length=len(text))


def _row(ds, scope: str, category: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for r in ds.scores:
        if r[0] == scope and r[2] == category:
            return dict(zip(SCORE_COLUMNS[1:], r, strict=True))
    raise AssertionError(f"no row {scope} {category}")


def test_term_counts_follow_the_longest_match_rule(lexicon: Lexicon) -> None:
    ds = _score(TEXT, lexicon)
    assert ds.term_counts == [
        ("challenge", "C1_demographic", "人口老龄化", 1, 0),  # 老龄化 inside it is not counted
        ("domain", "D_social_security", "社会保障", 1, 0),  # (last: the formula flag)
        ("feature", "F2_common_prosperity", "兜底", 1, 0),  # sorted by code point: 兜 < 共
        ("feature", "F2_common_prosperity", "共同富裕", 3, 0),
        ("pathway", "P3_co_governance", "社会组织", 1, 0),
    ]
    assert (ds.tokens, ds.sentences, ds.paragraphs) == (42, 4, 2)


def test_whole_text_scores_give_rates_shares_and_weights(lexicon: Lexicon) -> None:
    ds = _score(TEXT, lexicon)
    f2 = _row(ds, "all", "F2_common_prosperity")
    assert f2 == {"scope": "all", "dimension": "feature", "category": "F2_common_prosperity",
                  "count": 4, "tokens": 42, "rate_per_10k": 952.380952, "sentences": 4,
                  "sentences_with": 3, "sentence_share": 0.75, "paragraphs": 2,
                  "paragraphs_with": 2, "paragraph_share": 1.0, "weighted": 7.0, "framed": 0}
    p3 = _row(ds, "all", "P3_co_governance")
    assert (p3["count"], p3["rate_per_10k"], p3["sentence_share"], p3["paragraph_share"],
            p3["weighted"]) == (1, 238.095238, 0.25, 0.5, 1.0)
    c1 = _row(ds, "all", "C1_demographic")
    assert (c1["count"], c1["sentences_with"], c1["paragraphs_with"]) == (1, 1, 1)


def test_domain_scopes_keep_only_social_security_sentences_and_paragraphs(
        lexicon: Lexicon) -> None:
    ds = _score(TEXT, lexicon)
    f2s = _row(ds, "domain_sentences", "F2_common_prosperity")
    assert (f2s["count"], f2s["tokens"], f2s["rate_per_10k"], f2s["sentences"],
            f2s["sentences_with"], f2s["paragraphs"], f2s["weighted"]) == (
        1, 12, 833.333333, 1, 1, 1, 2.0)
    assert _row(ds, "domain_sentences", "P3_co_governance")["count"] == 0
    f2p = _row(ds, "domain_paragraphs", "F2_common_prosperity")
    assert (f2p["count"], f2p["tokens"], f2p["rate_per_10k"], f2p["sentences"],
            f2p["sentences_with"], f2p["sentence_share"], f2p["paragraphs"],
            f2p["paragraph_share"], f2p["weighted"]) == (2, 24, 833.333333, 2, 2, 1.0, 1, 1.0, 4.0)
    p3p = _row(ds, "domain_paragraphs", "P3_co_governance")
    assert (p3p["count"], p3p["rate_per_10k"], p3p["sentence_share"]) == (1, 416.666667, 0.5)
    assert _row(ds, "domain_paragraphs", "C1_demographic")["count"] == 0


def test_every_category_gets_a_row_in_every_scope(lexicon: Lexicon) -> None:
    ds = _score(TEXT, lexicon)
    assert len(ds.scores) == 4 * len(lexicon.categories)  # all and three domain scopes


def test_cooccurrence_counts_sentences_and_paragraphs_with_both_categories(
        lexicon: Lexicon) -> None:
    ds = _score(TEXT, lexicon)
    assert ds.cooccurrence == [
        ("paragraph", "feature", "F2_common_prosperity", "challenge", "C1_demographic", 1),
        ("paragraph", "feature", "F2_common_prosperity", "pathway", "P3_co_governance", 1),
        ("sentence", "feature", "F2_common_prosperity", "pathway", "P3_co_governance", 1),
    ]


def test_a_document_without_domain_terms_has_empty_domain_scopes(lexicon: Lexicon) -> None:
    ds = _score("鼓励社会组织促进共同富裕。", lexicon)
    row = _row(ds, "domain_sentences", "F2_common_prosperity")
    assert (row["count"], row["tokens"], row["rate_per_10k"], row["sentences"],
            row["sentence_share"]) == (0, 0, 0.0, 0, 0.0)


def test_a_segmentation_of_another_text_is_rejected(lexicon: Lexicon) -> None:
    seg = segment_text(CharTokenizer(), "共同富裕。")
    with pytest.raises(ValueError, match="covers 5 characters"):
        score_document(seg, [], Scheme.from_lexicon(lexicon), text_length=6)


# --------------------------------------------------------------------------- laws

_ALPHABET = list("共同富裕兜底社会组织保障人口老龄化慈善，。！ 1a")
_paragraph = st.text(alphabet=_ALPHABET, min_size=1, max_size=40).map(str.strip).filter(bool)


@settings(max_examples=60, deadline=None)
@given(st.just(""))
def test_an_empty_document_scores_zero(text: str) -> None:
    lexicon = load_lexicon(MINI)
    ds = _score(text, lexicon)
    assert ds.term_counts == [] and ds.cooccurrence == []
    assert (ds.tokens, ds.sentences, ds.paragraphs) == (0, 0, 0)
    assert all(r[3] == 0 and r[4] == 0 and r[5] == 0.0 and r[12] == 0.0 for r in ds.scores)


@settings(max_examples=60, deadline=None)
@given(st.lists(_paragraph, min_size=1, max_size=3), st.lists(_paragraph, min_size=1, max_size=3))
def test_counts_of_two_documents_joined_as_paragraphs_are_their_sums(
        a: list[str], b: list[str]) -> None:
    lexicon = load_lexicon(MINI)
    ta, tb = "\n".join(a), "\n".join(b)
    da, db, dab = _score(ta, lexicon), _score(tb, lexicon), _score(ta + "\n" + tb, lexicon)
    counts = Counter({r[:3]: r[3] for r in da.term_counts})
    counts.update({r[:3]: r[3] for r in db.term_counts})
    assert {r[:3]: r[3] for r in dab.term_counts} == dict(counts)
    assert dab.tokens == da.tokens + db.tokens
    assert dab.sentences == da.sentences + db.sentences
    assert dab.paragraphs == da.paragraphs + db.paragraphs
    for scope_row in (r for r in dab.scores if r[0] == "all"):
        cat = scope_row[2]
        ra, rb = _row(da, "all", cat), _row(db, "all", cat)
        assert scope_row[3] == ra["count"] + rb["count"]
        assert scope_row[7] == ra["sentences_with"] + rb["sentences_with"]
        assert scope_row[10] == ra["paragraphs_with"] + rb["paragraphs_with"]
    cooc = Counter({r[:5]: r[5] for r in da.cooccurrence})
    cooc.update({r[:5]: r[5] for r in db.cooccurrence})
    assert {r[:5]: r[5] for r in dab.cooccurrence} == dict(cooc)


# --------------------------------------------------------------------------- real corpora


def _bundled_or_seed() -> Path:
    bundled = REPO / "lexicons" / "mobilize.yaml"
    return bundled if bundled.is_file() else REPO / "tests" / "fixtures" / "lexicons" / "seed.yaml"


@pytest.mark.slow
@pytest.mark.parametrize("corpus", CHINESE_CORPORA)
def test_literal_term_counts_equal_substring_counts_except_under_longest_match(
        corpus: str) -> None:
    """Every occurrence of a literal term is counted, unless a hit of another term of the same
    category covers it (leftmost-longest); every counted hit is an occurrence."""
    root = shared_corpus(corpus)
    lexicon = load_lexicon(_bundled_or_seed())
    matcher, scheme = Matcher(lexicon), Scheme.from_lexicon(lexicon)
    literal = [(c.dimension, c.id, t.text) for c in lexicon.categories for t in c.terms
               if t.pattern is None]
    checked = hidden = 0
    for doc in load_corpus(root).documents:
        text = doc.text
        hits = matcher.find(text)
        seg = [[[s] for s in normalize.sentences(p)] for p in text.split("\n")]
        ds = score_document(seg, hits, scheme, text_length=len(text))
        counted = {(d, c, t): n for d, c, t, n, _formula in ds.term_counts}
        spans: dict[str, list[tuple[int, int, str]]] = {}
        for h in hits:
            spans.setdefault(h.category, []).append((h.start, h.end, h.term))
        for dim, cat, term in literal:
            starts = {h[0] for h in spans.get(cat, []) if h[2] == term}
            occurrences, i = [], text.find(term)
            while i >= 0:
                occurrences.append(i)
                i = text.find(term, i + 1)
            assert starts <= set(occurrences), (doc.doc_id, term)
            for p in occurrences:
                if p in starts:
                    continue
                covering = [h for h in spans.get(cat, []) if h[0] < p + len(term) and p < h[1]]
                assert covering, f"{doc.doc_id}: {term!r} at {p} is neither counted nor covered"
                hidden += 1
            assert counted.get((dim, cat, term), 0) == len(starts)
            checked += len(occurrences)
    assert checked > 0
    assert hidden < checked


def test_units_give_each_blocks_tokens_and_hits_per_scope(lexicon: Lexicon) -> None:
    ds = _score(TEXT + "\n今天天气很好。", lexicon)
    # Paragraph 0: 24 tokens, 社会保障 + 2 x 共同富裕 + 社会组织; paragraph 1: 18 tokens,
    # 人口老龄化 + 共同富裕 + 兜底; paragraph 2: no hit (a row with an empty category).
    # domain_sentences: only the first sentence (12 tokens) mentions 社会保障; domain_window:
    # that sentence and the next one, the whole of paragraph 0.
    assert ds.units == [
        ("all", 0, "D_social_security", 1, 24), ("all", 0, "F2_common_prosperity", 2, 24),
        ("all", 0, "P3_co_governance", 1, 24), ("all", 1, "C1_demographic", 1, 18),
        ("all", 1, "F2_common_prosperity", 2, 18), ("all", 2, "", 0, 6),
        ("domain_sentences", 0, "D_social_security", 1, 12),
        ("domain_sentences", 0, "F2_common_prosperity", 1, 12),
        ("domain_window", 0, "D_social_security", 1, 24),
        ("domain_window", 0, "F2_common_prosperity", 2, 24),
        ("domain_window", 0, "P3_co_governance", 1, 24),
    ]
    # The paragraphs add up to the document's scores in every scope.
    for scope in ("all", "domain_sentences", "domain_window"):
        rows = [u for u in ds.units if u[0] == scope]
        tokens = {p: t for _, p, _, _, t in rows}
        assert sum(tokens.values()) == _row(ds, scope, "F2_common_prosperity")["tokens"]
        assert sum(n for _, _, c, n, _ in rows if c == "F2_common_prosperity") == \
            _row(ds, scope, "F2_common_prosperity")["count"]


def test_a_long_paragraph_is_cut_into_blocks_of_ten_sentences(lexicon: Lexicon) -> None:
    # One paragraph of 23 sentences (a source that flattened its paragraphs): blocks of
    # 10, 10 and 3 sentences, so a one-paragraph document still has something to resample.
    text = "促进共同富裕。" * 23
    ds = _score(text, lexicon)
    rows = [u for u in ds.units if u[0] == "all"]
    assert rows == [("all", 0, "F2_common_prosperity", 10, 60),
                    ("all", 1, "F2_common_prosperity", 10, 60),
                    ("all", 2, "F2_common_prosperity", 3, 18)]


def test_unit_rows_equal_the_sentence_by_sentence_definition() -> None:
    """``_unit_rows`` (blocks from NumPy) against the definition written as a plain loop over
    sentences: random paragraphs (some longer than a block), hits and narrower scopes."""
    import random
    from collections import Counter

    from pipeline.score import BLOCK_SENTENCES, UNIT_SCOPES, _unit_rows

    def reference(per_sent, para_of, words, keep):  # type: ignore[no-untyped-def]
        block_of, block, size, prev = [], -1, 0, None
        for p in para_of:
            if p != prev or size >= BLOCK_SENTENCES:
                block, size, prev = block + 1, 0, p
            block_of.append(block)
            size += 1
        rows = []
        for scope in UNIT_SCOPES:
            tokens: dict[int, int] = {}
            counts: dict[int, Counter[str]] = {}
            for si, b in enumerate(block_of):
                if scope in keep and si not in keep[scope]:
                    continue
                tokens[b] = tokens.get(b, 0) + words[si]
                for cat, (n, _w, _f) in per_sent.get(si, {}).items():
                    counts.setdefault(b, Counter())[cat] += n
            for b in sorted(tokens):
                c = counts.get(b)
                rows += ([(scope, b, cat, n, tokens[b]) for cat, n in sorted(c.items())] if c
                         else [(scope, b, "", 0, tokens[b])])
        return rows

    rng = random.Random(16)
    for _ in range(500):
        n = rng.choice([1, 2, 9, 10, 11, 21, 40])
        para_of, p = [], 0
        for i in range(n):
            p += int(i > 0 and rng.random() < rng.choice([0.0, 0.1, 0.5]))
            para_of.append(p)
        words = [rng.randint(0, 20) for _ in range(n)]
        per_sent = {si: {c: [rng.randint(1, 3), 1.0, 0] for c in
                         rng.sample(["C1", "D_social_security", "F1", "P2"], rng.randint(0, 3))}
                    for si in rng.sample(range(n), rng.randint(0, n))}
        keep = {s: set(rng.sample(range(n), rng.randint(0, n)))
                for s in ("domain_sentences", "domain_window")}
        assert _unit_rows(per_sent, para_of, words, keep) == reference(per_sent, para_of,
                                                                        words, keep)
    assert _unit_rows({}, [], [], {}) == []
