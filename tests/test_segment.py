"""Segmentation: tokenizers keep lexicon terms whole, the cache, stopwords, jieba vs jieba-rs."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon
from pipeline.segment import (
    MAX_RUN,
    SegmentCache,
    TokenizerSpec,
    bounded_pieces,
    build_tokenizer,
    load_stopwords,
    segment_cached,
    segment_document,
    segment_text,
    split_terms,
    tokens_for,
    word_count,
)
from tests.conftest import REPO, shared_corpus

TERMS = ["共建共治共享", "全民参保", "互联网+", "积极应对人口老龄化", "兜牢底线"]
SENTENCE = "坚持共建共治共享，实现全民参保，推进互联网+政务服务，积极应对人口老龄化，兜牢底线。"


@pytest.fixture(scope="module", params=["jieba", "jieba-rs"])
def tokenizer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return build_tokenizer(request.param, user_terms=TERMS,
                           cache_dir=tmp_path_factory.mktemp("jieba"))


def test_the_tokenizer_keeps_every_lexicon_term_whole(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert tokenizer.cut(SENTENCE) == [
        "坚持", "共建共治共享", "，", "实现", "全民参保", "，", "推进", "互联网+", "政务", "服务",
        "，", "积极应对人口老龄化", "，", "兜牢底线", "。"]


def test_without_user_terms_jieba_splits_the_long_terms(tmp_path: Path) -> None:
    plain = build_tokenizer("jieba", cache_dir=tmp_path)
    tokens = plain.cut(SENTENCE)
    assert "积极应对人口老龄化" not in tokens and "共建共治共享" not in tokens


def test_tokens_concatenate_back_to_the_text(tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "2024年，城乡居民基本养老保险覆盖10.7亿人 (GDP增长5.2%)。"
    assert "".join(tokenizer.cut(text)) == text


def test_split_terms_names_the_terms_the_segmenter_cannot_keep(tokenizer) -> None:  # type: ignore[no-untyped-def]
    assert split_terms(tokenizer, TERMS + ["社会 保障", "一网·通办"]) == ["一网·通办", "社会 保障"]


def test_config_hash_covers_segmenter_terms_and_hmm() -> None:
    base = TokenizerSpec("jieba", ("全民参保",), True)
    assert base.config_hash == TokenizerSpec("jieba", ("全民参保", "全民参保"), True).config_hash
    assert base.config_hash != TokenizerSpec("jieba", ("全民参保",), False).config_hash
    assert base.config_hash != TokenizerSpec("jieba-rs", ("全民参保",), True).config_hash
    assert base.config_hash != TokenizerSpec("jieba", ("全民参保", "兜底"), True).config_hash
    assert base.config_hash == build_tokenizer("jieba", user_terms=["全民参保"]).config_hash


def test_an_unknown_segmenter_is_refused() -> None:
    with pytest.raises(ValueError, match="use jieba or jieba-rs"):
        build_tokenizer("thulac")


def test_segment_text_gives_paragraphs_of_sentences_of_tokens() -> None:
    tk = build_tokenizer("jieba-rs", user_terms=["全民参保"])
    assert segment_text(tk, "实现全民参保。加快发展！\n兜底保障") == [
        [["实现", "全民参保", "。"], ["加快", "发展", "！"]],
        [["兜底", "保障"]],
    ]


def test_word_count_ignores_punctuation_and_spaces() -> None:
    assert word_count(["实现", "，", " ", "10.7", "亿人", "。", "GDP", "%"]) == 4


def test_the_cache_round_trips_tokens_including_spaces(tmp_path: Path) -> None:
    from pipeline.segment import lengths_of, nest

    cache = SegmentCache(tmp_path)
    seg = [[["GDP", " ", "增长", "。"], ["好", "！"]], [["第二段"]]]
    text = "GDP 增长。好！\n第二段"
    sha = "ab" + "0" * 62
    cache.put(sha, "cfg", lengths_of(seg))
    got = cache.get(sha, "cfg", text)
    assert got is not None and got.tolist() == [3, 1, 2, 1, 1, 1, 1, 3]
    assert nest(text, got) == seg
    assert cache.get(sha, "other", text) is None
    assert cache.get(sha, "cfg", text + "多") is None  # an entry that does not fit the text
    files = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert files == [sha + ".npy"]  # no temporary file left behind


def test_a_damaged_cache_entry_counts_as_missing(tmp_path: Path) -> None:
    cache = SegmentCache(tmp_path)
    sha = "cd" + "0" * 62
    path = cache.path(sha, "cfg")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an array")
    assert cache.get(sha, "cfg", "一句。") is None
    tk = _Counting()
    seg, hit = segment_cached(tk, sha, "一句。", cache)
    assert (seg, hit, tk.calls) == ([[list("一句。")]], False, 1)
    assert segment_cached(tk, sha, "一句。", cache) == (seg, True)  # written again


class _Counting:
    name, version, hmm, config_hash = "count", "1", True, "count"

    def __init__(self) -> None:
        self.calls = 0

    def cut(self, text: str) -> list[str]:
        self.calls += 1
        return list(text)


def test_a_second_segmentation_of_the_same_text_comes_from_the_cache(tmp_path: Path) -> None:
    tk, cache = _Counting(), SegmentCache(tmp_path)
    first, hit1 = segment_cached(tk, "c" * 64, "一句。两句。", cache)
    calls = tk.calls
    second, hit2 = segment_cached(tk, "c" * 64, "一句。两句。", cache)
    assert (hit1, hit2) == (False, True)
    assert calls == 1 and tk.calls == 1  # one cut per paragraph, none on the second call
    assert first == second == [[list("一句。"), list("两句。")]]


class _Whole:
    name, version, hmm, config_hash = "whole", "1", True, "whole"

    def cut(self, text: str) -> list[str]:
        return [text]


def test_a_token_that_straddles_a_sentence_end_is_cut_there() -> None:
    assert segment_text(_Whole(), "一句。两句！三\n四") == [[["一句。"], ["两句！"], ["三"]], [["四"]]]


def test_a_hostile_run_is_cut_into_bounded_pieces_and_ordinary_text_is_not() -> None:
    run = "参保" + "7" * 25 + "人参保"  # a run of 30 characters without a space or a sentence end
    assert bounded_pieces("全民参保。" + run + "。", max_run=10) == [
        "全民参保。参保" + "7" * 8, "7" * 10, "7" * 7 + "人参保。"]
    assert bounded_pieces("全民参保，推进改革。" * 3, max_run=10) is None  # runs of 9 at most
    assert bounded_pieces("短", max_run=10) is None
    # a run just at the limit stays whole; every piece ends where the text resumes
    assert bounded_pieces("。" + "7" * 10 + "。" + "8" * 11, max_run=10) == [
        "。" + "7" * 10 + "。" + "8" * 10, "8"]
    assert MAX_RUN >= 10_000  # ordinary text (runs under 2,000 characters) is never cut


@pytest.mark.parametrize("segmenter", ["jieba", "jieba-rs"])
def test_a_megabyte_of_digits_reaches_the_segmenter_in_pieces(
        segmenter: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tok = build_tokenizer(segmenter, user_terms=["全民参保"], cache_dir=tmp_path)
    tok.cut("预热")
    inner = tok._tk if segmenter == "jieba" else tok._jb  # type: ignore[attr-defined]
    seen: list[int] = []

    class Spy:
        def __init__(self, real):  # type: ignore[no-untyped-def]
            self.real = real

        def cut(self, text, *args, **kwargs):  # type: ignore[no-untyped-def]
            seen.append(len(text))
            return self.real.cut(text, *args, **kwargs)

    monkeypatch.setattr(tok, "_tk" if segmenter == "jieba" else "_jb", Spy(inner))
    text = "全民参保。" + "7" * (3 * MAX_RUN + 5) + "人参保。"
    tokens = tok.cut(text)
    assert "".join(tokens) == text
    # the pieces with a Chinese character reach the segmenter; the digits between are one token each
    assert seen and max(seen) <= MAX_RUN + 5 and len(seen) == 2
    assert "7" * MAX_RUN in tokens
    assert tokens[:2] == ["全民参保", "。"] and tokens[-2:] in (["人参保", "。"], ["参保", "。"])
    seen.clear()
    ordinary = "全民参保，推进改革。" * 2000  # 20,000 characters, runs of 4
    assert tok.cut(ordinary) == list(inner.cut(ordinary, *(() if segmenter == "jieba" else (True,))))
    assert seen == [len(ordinary)]  # ordinary text: one call, the segmenter's own tokens


def test_segment_document_and_tokens_for_use_the_run_settings(tmp_path: Path) -> None:
    from pipeline.config import Settings
    from pipeline.ingest import Document, text_hash

    text = "完善社会保障，促进共同富裕。\n鼓励社会组织参与。"
    doc = Document("d1", "d1.txt", text, text_hash(text), "2024", 2024, {})
    s = Settings(cache=tmp_path, segmenter="jieba-rs",
                 lexicon=REPO / "tests" / "fixtures" / "engine" / "mini.yaml")
    assert segment_document(doc, s) == [[["完善", "社会保障", "，", "促进", "共同富裕", "。"]],
                                        [["鼓励", "社会组织", "参与", "。"]]]
    assert tokens_for(doc, s) == [["完善", "社会保障", "促进", "共同富裕"],
                                  ["鼓励", "社会组织", "参与"]]
    assert len(list((tmp_path / "segments").rglob("*.npy"))) == 1


def test_the_stopword_list_holds_function_words_not_theme_words() -> None:
    words = load_stopwords()
    assert {"的", "了", "和", "在", "我们"} <= words
    assert not words & {"社会保障", "共同富裕", "加强", "进一步"}
    assert all(w == w.strip() and "#" not in w for w in words)


# --------------------------------------------------------------------------- real corpora

#: Measured on social-security-policy-zh (76 documents) with the seed lexicon's terms:
#: 0.99990 of 241,192 token boundaries agree, 69 of 76 documents tokenised identically
#: (all four Chinese corpora in docs/engine.md); the floor sits just under it.
BOUNDARY_AGREEMENT_FLOOR = 0.9998


def _boundaries(tokens: list[str]) -> set[int]:
    out, pos = set(), 0
    for t in tokens:
        pos += len(t)
        out.add(pos)
    return out


@pytest.mark.slow
def test_jieba_rs_agrees_with_jieba_on_real_policy_documents(tmp_path: Path) -> None:
    root = shared_corpus("social-security-policy-zh")
    terms = load_lexicon(REPO / "tests" / "fixtures" / "lexicons" / "seed.yaml").user_words()
    jb = build_tokenizer("jieba", user_terms=terms, cache_dir=tmp_path)
    rs = build_tokenizer("jieba-rs", user_terms=terms)
    agree = union = 0
    for doc in load_corpus(root).documents:
        for para in doc.text.split("\n"):
            a, b = _boundaries(jb.cut(para)), _boundaries(rs.cut(para))
            agree += len(a & b)
            union += len(a | b)
    assert union > 100_000
    assert agree / union >= BOUNDARY_AGREEMENT_FLOOR, agree / union


@pytest.mark.parametrize("segmenter", ["jieba", "jieba-rs"])
def test_every_literal_term_of_the_bundled_lexicon_stays_one_token(
        segmenter: str, tmp_path: Path) -> None:
    bundled = REPO / "lexicons" / "mobilize.yaml"
    if not bundled.is_file():
        pytest.skip("lexicons/mobilize.yaml is not there yet")
    terms = load_lexicon(bundled).user_words()
    tk = build_tokenizer(segmenter, user_terms=terms, cache_dir=tmp_path)
    assert len(terms) > 100
    assert split_terms(tk, terms) == []


class _Glued:
    """A fake tokenizer that glues "。" to the next character (a token across a sentence end)
    and "\n" to its neighbours: ``segment_units`` must fall back and still agree."""

    name, version, hmm, config_hash = "glued", "0", True, "glued"

    def cut(self, text: str) -> list[str]:
        out: list[str] = []
        for ch in text:
            if out and out[-1][-1:] in ("。", "\n"):
                out[-1] += ch
            else:
                out.append(ch)
        return out


@pytest.mark.parametrize("text", [
    "坚持共建共治共享。实现全民参保！\n推进互联网+政务服务；兜牢底线",
    "一句。\n两句。。三句?! 四\n2.5% of GDP. Next; end.",
    "只有一段没有句号",
    "。\n!\n.",
])
def test_segment_units_equals_the_nested_segmentation(tokenizer, text: str) -> None:  # type: ignore[no-untyped-def]
    from pipeline.segment import nest, segment_units, units_of

    for tk in (tokenizer, _Glued(), _Whole()):
        seg = segment_text(tk, text)
        lengths, units = segment_units(tk, text)
        assert int(lengths.sum()) == len(text)
        assert nest(text, lengths) == seg
        assert units == units_of(seg)
        assert units.chars == len(text)


def test_segment_units_agrees_on_real_policy_documents() -> None:
    from pipeline.segment import nest, segment_units, units_of

    docs = load_corpus(shared_corpus("social-security-policy-zh")).documents[:15]
    for name in ("jieba", "jieba-rs"):
        tk = build_tokenizer(name, user_terms=TERMS)
        for d in docs:
            seg = segment_text(tk, d.text)
            lengths, units = segment_units(tk, d.text)
            assert (nest(d.text, lengths), units) == (seg, units_of(seg)), (name, d.doc_id)



def test_the_vectorised_word_test_is_is_word_for_every_bmp_character() -> None:
    from pipeline.segment import _WORDCH, _char_classes, is_word

    table = _char_classes()
    wrong = [cp for cp in range(0x10000) if bool(table[cp] & _WORDCH) != is_word(chr(cp))]
    assert wrong == []


def test_own_newlines_accepts_only_tokens_that_cover_the_text_with_each_newline_alone() -> None:
    import numpy as np

    from pipeline.normalize import codepoints
    from pipeline.segment import _own_newlines

    def ok(tokens: list[str]) -> bool:
        text = "".join(tokens)
        return _own_newlines(codepoints(text), np.array([len(t) for t in tokens], dtype=np.int64))

    assert ok(["社会", "保障", "。", "\n", "全民", "\n", "\n", "参保"])
    assert ok(["只有", "一段"]) and ok([])
    assert not ok(["社会", "保障。\n", "全民"])  # a "\n" glued to its neighbour
    assert not ok(["社会", "\n全", "民"])
    assert not _own_newlines(codepoints("社会\n保障"), np.array([2, 1, 1], dtype=np.int64))  # short
    assert not _own_newlines(codepoints("社会"), np.array([2, 0], dtype=np.int64))  # empty token


def test_the_character_class_table_is_the_string_methods_for_every_bmp_character() -> None:
    """``_char_classes`` is built from regex runs; it must be ``str.isalnum``/``isspace`` and
    the sentence ends, character by character (surrogates and unassigned ones included)."""
    from pipeline.normalize import SENTENCE_END_CHARS
    from pipeline.segment import _DOT, _ENDCH, _SPACE, _WORDCH, _char_classes

    table = _char_classes()
    expected = [(_WORDCH if chr(cp).isalnum() else 0) | (_SPACE if chr(cp).isspace() else 0)
                | (_ENDCH if chr(cp) in SENTENCE_END_CHARS else 0) | (_DOT if cp == 0x2E else 0)
                for cp in range(0x10000)]
    assert table.tolist() == expected
    assert table[ord("社")] == _WORDCH and table[ord("。")] == _ENDCH
    assert table[0x3000] == _SPACE and table[ord("_")] == 0


def test_units_from_the_cache_equal_fresh_units_for_astral_and_odd_text(tmp_path: Path) -> None:
    from pipeline.segment import units_cached

    text = "𠀀字𝟘号。 . x. 2.5% ok!\n第二段；尾"  # characters beyond the BMP, ". " ends
    tk = build_tokenizer("jieba-rs")
    seg = segment_text(tk, text)
    cache = SegmentCache(tmp_path)
    fresh, hit1 = units_cached(tk, "ef" * 32, text, cache)
    again, hit2 = units_cached(tk, "ef" * 32, text, cache)
    from pipeline.segment import units_of

    assert (hit1, hit2) == (False, True)
    assert fresh == again == units_of(seg)
