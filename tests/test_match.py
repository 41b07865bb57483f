"""The matching rule: substrings of normalised text; leftmost-first then longest within a
category; categories independent; regex terms; literal counts equal substring counts."""

from __future__ import annotations

import math
import re
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.lexicon import Category, Lexicon, Term, build_lexicon, load_lexicon
from pipeline.match import Hit, Matcher, _PatternScanner, literal_core

FIXTURES = Path(__file__).parent / "fixtures" / "lexicons"


def _lexicon(cats: dict[str, list[str | tuple[str, str]]]) -> Lexicon:
    """Categories id -> terms; a term is a literal, or (label, regex)."""
    out = []
    for cid, terms in cats.items():
        dim = {"F": "feature", "P": "pathway", "C": "challenge", "D": "domain"}[cid[0]]
        ts = []
        for t in terms:
            if isinstance(t, tuple):
                ts.append(Term(t[0], cid, dim, pattern=t[1]))
            else:
                ts.append(Term(t, cid, dim))
        out.append(Category(cid, dim, cid, cid, "", tuple(ts), ()))
    return build_lexicon(name="t", version="0", categories=tuple(out))


def _terms(hits: list[Hit]) -> list[tuple[str, str]]:
    return [(h.category, h.term) for h in hits]


def test_longer_term_wins_inside_itself_within_a_category() -> None:
    m = Matcher(_lexicon({"C3": ["新常态", "经济新常态"]}))
    hits = m.find("适应经济新常态，引领新常态")
    assert [(h.start, h.end, h.term) for h in hits] == [(2, 7, "经济新常态"), (10, 13, "新常态")]


def test_leftmost_candidate_wins_over_a_longer_one_starting_later() -> None:
    # 社会保障 starts first; 保障体系建设 overlaps it and starts later, so it is dropped
    m = Matcher(_lexicon({"D": ["社会保障", "保障体系建设"]}))
    assert _terms(m.find("社会保障体系建设")) == [("D", "社会保障")]


def test_overlapping_occurrences_of_one_term_count_like_str_count() -> None:
    m = Matcher(_lexicon({"F1": ["哈哈"]}))
    text = "哈哈哈哈哈"
    assert len(m.find(text)) == text.count("哈哈") == 2


def test_categories_are_counted_independently() -> None:
    m = Matcher(_lexicon({"C3": ["经济新常态"], "C1": ["新常态"]}))
    assert _terms(m.find("经济新常态")) == [("C3", "经济新常态"), ("C1", "新常态")]


def test_a_term_in_two_categories_counts_in_both() -> None:
    lex = load_lexicon(FIXTURES / "small.yaml")
    hits = Matcher(lex).find("发展人工智能")
    assert [(h.start, h.end, h.dimension, h.category, h.term) for h in hits] == [
        (2, 6, "challenge", "C4_digital_disruption", "人工智能"),
        (2, 6, "pathway", "P4_technology", "人工智能"),
    ]


def test_regex_terms_match_and_are_named_by_their_label() -> None:
    lex = load_lexicon(FIXTURES / "small.yaml")
    hits = Matcher(lex).find("基本医疗保险覆盖13.6亿人，养老保险覆盖10亿人。覆盖亿人")
    assert [(h.start, h.end, h.term) for h in hits if h.category == "F1_population"] == [
        (6, 14, "覆盖N亿人"), (19, 25, "覆盖N亿人")]


def test_literal_beats_an_equally_long_pattern_at_the_same_place() -> None:
    m = Matcher(_lexicon({"F1": ["覆盖1亿人", ("覆盖N亿人", r"覆盖\d亿人")]}))
    assert _terms(m.find("覆盖1亿人")) == [("F1", "覆盖1亿人")]


def test_a_longer_pattern_match_hides_a_literal_inside_it() -> None:
    m = Matcher(_lexicon({"F1": ["亿人", ("覆盖N亿人", r"覆盖\d+亿人")]}))
    assert _terms(m.find("覆盖10亿人，惠及亿人")) == [("F1", "覆盖N亿人"), ("F1", "亿人")]


def test_excluded_terms_are_not_counted() -> None:
    lex = load_lexicon(FIXTURES / "small.yaml")
    assert [h.term for h in Matcher(lex).find("覆盖城乡，实现全覆盖")] == ["全覆盖"]


def test_hits_are_sorted_by_start_then_dimension_then_category() -> None:
    lex = load_lexicon(FIXTURES / "small.yaml")
    hits = Matcher(lex).find("社会保障体系适应经济新常态，运用大数据和人工智能")
    keys = [(h.start, h.dimension, h.category) for h in hits]
    assert keys == sorted(keys)
    assert _terms(hits) == [("D_social_security", "社会保障体系"),
                            ("C3_economic_normal", "经济新常态"), ("P4_technology", "大数据"),
                            ("C4_digital_disruption", "人工智能"), ("P4_technology", "人工智能")]


def test_matching_is_on_substrings_not_tokens() -> None:
    # 大数据 sits across a word boundary a segmenter might draw (庞大 / 数据): it still counts
    m = Matcher(_lexicon({"P4": ["大数据"]}))
    assert len(m.find("规模庞大数据资源")) == 1


def test_empty_text_and_empty_lexicon_give_no_hits() -> None:
    assert Matcher(load_lexicon(FIXTURES / "small.yaml")).find("") == []
    assert Matcher(_lexicon({})).find("社会保障") == []


def test_count_agrees_with_find() -> None:
    m = Matcher(load_lexicon(FIXTURES / "seed.yaml"))
    text = "坚持以人民为中心，实现全民参保，覆盖13.6亿人，积极应对人口老龄化，老龄化加深，最低生活保障"
    expected = Counter((h.dimension, h.category, h.term) for h in m.find(text))
    assert m.count(text) == expected
    assert expected[("challenge", "C1_demographic", "积极应对人口老龄化")] == 1
    assert expected[("challenge", "C1_demographic", "人口老龄化")] == 0
    assert expected[("challenge", "C1_demographic", "老龄化")] == 1
    assert expected[("feature", "F2_common_prosperity", "最低生活保障")] == 1
    assert expected[("domain", "D_social_security", "最低生活保障")] == 1


@pytest.mark.parametrize("text", ["经济新常态新常态", "新常态经济新常态经济", "经济经济新常态常态"])
def test_literal_count_is_substring_count_minus_covered_occurrences(text: str) -> None:
    m = Matcher(_lexicon({"C3": ["新常态", "经济新常态"]}))
    counts = Counter(h.term for h in m.find(text))
    assert counts["经济新常态"] == text.count("经济新常态")
    assert counts["新常态"] == text.count("新常态") - text.count("经济新常态")


# ----------------------------------------------------------------- the rule on the real corpora

def _lexicons_under_test() -> list[Path]:
    from pipeline.config import DEFAULT_LEXICON

    return [FIXTURES / "seed.yaml", FIXTURES / "small.yaml", DEFAULT_LEXICON]


@pytest.fixture(scope="module")
def chinese_texts() -> list[tuple[str, str]]:
    from conftest import CHINESE_CORPORA, shared_corpus

    from pipeline.ingest import load_corpus

    out: list[tuple[str, str]] = []
    for name in CHINESE_CORPORA:
        corpus = load_corpus(shared_corpus(name))
        out.extend((f"{name}/{d.doc_id}", d.text) for d in corpus.documents)
    return out


def _covered(text: str, term: str, others: list[Hit]) -> int:
    """Occurrences of ``term`` in str.count's scan that overlap a hit of another term."""
    n, i = 0, text.find(term)
    spans = sorted((h.start, h.end) for h in others)
    while i != -1:
        end = i + len(term)
        if any(s < end and i < e for s, e in spans):
            n += 1
        i = text.find(term, end)
    return n


@pytest.mark.slow
@pytest.mark.parametrize("lexicon_path", _lexicons_under_test(), ids=lambda p: p.name)
def test_literal_counts_equal_substring_counts_on_all_shared_corpora(
        lexicon_path: Path, chinese_texts: list[tuple[str, str]]) -> None:
    """For every literal term: count == text.count(term) - occurrences covered by a winning
    hit of another term of the same category (the documented rule), in every document."""
    if not lexicon_path.is_file():
        pytest.skip(f"{lexicon_path} not written yet")
    lex = load_lexicon(lexicon_path)
    matcher = Matcher(lex)
    literals = [t for t in lex.terms() if t.pattern is None]
    checked = differs = 0
    for doc, text in chinese_texts:
        hits = matcher.find(text)
        by_cat: dict[str, list[Hit]] = {}
        for h in hits:
            by_cat.setdefault(h.category, []).append(h)
        counts = Counter((h.category, h.term) for h in hits)
        for t in literals:
            raw = text.count(t.text)
            if not raw:
                assert counts[(t.category, t.text)] == 0
                continue
            others = [h for h in by_cat.get(t.category, []) if h.term != t.text]
            expected = raw - _covered(text, t.text, others)
            assert counts[(t.category, t.text)] == expected, (doc, t.category, t.text, raw)
            checked += 1
            differs += expected != raw
    assert checked > 0
    # the rule only ever takes away, and only where a same-category term contains or overlaps
    print(f"{lex.name}: {checked} (document, term) pairs checked, {differs} reduced by the rule")


# ----------------------------------------------------------------- fast pattern search == finditer

TRICKY = [r"(?<!作)社保(?!科创)", r"(?:参保|覆盖)[^。,]{0,3}亿人", r"社保+", r"保(?:障|险)体系",
          r"中?低收入(?:群体|人口)", r"(?:社会|养老)保险|保险(?:基金|费)", r"覆盖\d{1,3}亿人",
          r"\d+亿人", r"(?i)ab社保", r"(社)保\1", r"社保.*?亿", r"(?<!\n)社保[^,\n]+",
          r"社保[^,]+人", r"(?m)^社保", r"社保$", r"\b社保\d+(?=亿)", r"(?s)社保.+?人",
          # one string every alternative requires (亿), first characters, unbounded in a line
          r"\d+(?:\.\d+)?亿(?:人口|人民(?!币))|(?<![\d十])(?:1[0-4]|十[一二]?)亿多?人(?![民口])",
          r"(?<!低)(?:中?低|高)?收入(?:群体|人口)", r"(?:a|保)*社保[^,\n]{0,3}亿",
          r"(?:覆盖|参保)[^。,]{0,4}?\d{1,3}亿|\d亿人参保", r"[^a社]?保险[^。]{0,2}基金",
          r"保险(?:中)?基金|基金(?:的)?保险|低收入保险费", r"保险(?:中)?基金|基金(?:的)?保险|保险(?:费|金)",
          r"(?<!十)\d+(?:\.\d+)?亿人口", r"[^。,\n]{1,3}\d+亿人"]


def _finditer(pattern: str, text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(pattern, text) if m.end() > m.start()]


def test_scanner_finds_the_anchor_and_the_width_of_a_pattern() -> None:
    sc = _PatternScanner(re.compile(r"(?<!作)社保(?!科创)"))
    assert (sc.anchors, sc.width) == (("社保",), 2)
    sc = _PatternScanner(re.compile(r"(?:参保|覆盖)[^。,]{0,3}亿人"))
    assert (sc.anchors, sc.width) == (("亿人",), 7)
    sc = _PatternScanner(re.compile(r"(?:社会|养老)保险|保险(?:基金|费)"))
    assert (sc.anchors, sc.width) == (("保险",), 4)
    assert _PatternScanner(re.compile(r"\d+亿人")).mode == "line"  # unbounded, one line
    assert _PatternScanner(re.compile(r"社保[^,]+人")).mode == "whole"  # [^,] matches \n
    assert _PatternScanner(re.compile(r"(?s)社保.+?人")).mode == "whole"  # . matches \n
    assert _PatternScanner(re.compile(r"(?i)ab社保")).anchors == ()  # case-insensitive


def test_a_string_every_alternative_requires_anchors_the_pattern() -> None:
    # 人口/人民 in the first alternative, 人 in the second: their union {人口, 人民, 亿} (人民
    # is in nearly every paragraph) loses to the one string both require, 亿
    pattern = r"\d+(?:\.\d+)?亿(?:人口|人民(?!币))|(?<![\d十])(?:1[0-4]|十[一二]?)亿多?人(?![民口])"
    sc = _PatternScanner(re.compile(pattern))
    assert (sc.mode, sc.anchors) == ("line", ("亿",))
    # only whole strings: 结构 inside 经济结构优化 does not count as the third alternative's
    sc = _PatternScanner(re.compile(r"调整(?:经济)?结构|结构(?:的)?调整|经济结构优化"))
    assert sc._near == {"调整": (0,), "结构": (2,)}
    sc = _PatternScanner(re.compile(r"调整(?:经济)?结构|结构(?:的)?调整|结构(?:优化|升级)"))
    assert sc._near == {"结构": (4,)}
    # the report's literal core (dating a pattern by its one literal) is unchanged by it
    assert literal_core(pattern) is None


def test_first_characters_of_a_pattern() -> None:
    def first(pattern: str) -> str:
        sc = _PatternScanner(re.compile(pattern))
        assert sc._first is not None
        return "".join(c for c in "甲保医参社中低高收a1十\n" if sc._first.match(c))

    # lookbehinds are zero-width: the first character comes after them
    assert first(r"(?<!农业)(?:保险|医保|参保|社保)[^。,]{0,4}?扩面") == "保医参社"
    assert first(r"(?<!低)(?:中?低|高)?收入(?:群体|人口)") == "中低高收"  # optional prefixes
    assert first(r"(?:a|保)*社保[^,\n]{0,3}亿") == "保社a"
    assert first(r"\d+(?:\.\d+)?亿人口|十亿人") == "1十"  # line mode
    assert first(r"保险(?:中)?基金|基金(?:的)?保险|低收入保险费") == "保低"  # anchored on 保险
    # patterns that start at their anchor need none; a backreference first: unknown
    assert _PatternScanner(re.compile(r"(?<!作)社保(?!科创)"))._first is None
    assert _PatternScanner(re.compile(r"(社)?\1?保[^,]{0,2}险"))._first is None


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="作社保险科创参覆盖亿人中低收入群体口障系养老基金费会12。,ab\n十一民币.高",
                    max_size=60),
       pattern=st.sampled_from(TRICKY))
def test_windowed_pattern_search_equals_finditer(text: str, pattern: str) -> None:
    assert _PatternScanner(re.compile(pattern)).spans(text) == _finditer(pattern, text)
    # and through the Matcher, where the anchors come from the Aho-Corasick pass
    m = Matcher(_lexicon({"F1": [("P", pattern)], "C1": ["社保", "亿人"]}))
    assert [(h.start, h.end) for h in m.find(text) if h.category == "F1"] == \
        _finditer(pattern, text)


# patterns a match of which may run across lines, over any length (whole mode), but which
# have start rules: an anchor at a bounded offset, or no line break before the anchor
WHOLE = [r"(?:参保|覆盖)[^。,]{0,6}?\d+(?:\.\d+)?亿多?(?:人|(?=[,。]))|\d+(?:\.\d+)?亿多?人参保",
         r"社保[^,]+人", r"(?s)社保.+?人", r"(?<!作)社保.*亿|\d+人参保", r"(社保|覆盖)[^,]+\1",
         r"a社保[^,]*|保[^,]{2}覆盖", r"(?:人参保|参保)[^,]+", r"保社保+[^。]*人", r"\d+亿|覆盖[^,]+",
         r"x?[^,]{0,3}社保[^。]+人", r"(?:社保[^,]*|人)参保", r"社(?:保|会)(?:.|\n)*?亿"]


def test_scanner_start_rules_narrow_where_matches_are_tried() -> None:
    # window mode: a pattern that starts with its anchor is tried only at the anchor
    assert _PatternScanner(re.compile(r"覆盖城乡[^。;]{0,8}?(?:保障|养老)"))._near == {"覆盖城乡": (0,)}
    sc = _PatternScanner(re.compile(r"共建[“\"]?一带一路|一带一路[”\"]?(?:国际合作|建设)"))
    assert (sc.mode, sc.width, sc._near) == ("window", 9, {"一带一路": (3,)})
    # whole mode: each alternative's anchor, the one without a bounded offset by its line
    sc = _PatternScanner(re.compile(WHOLE[0]))
    assert sc.mode == "whole" and sc.anchored
    assert sc._near == {"参保": (0,), "覆盖": (0,), "人参保": (None,)}
    # an anchor inside a longer one sits further into the match: 参保 one character into 人参保
    assert _PatternScanner(re.compile(r"(?:人参保|参保)[^,]+"))._near == {"参保": (1,)}
    # no start rule for an alternative: finditer over the whole text
    assert not _PatternScanner(re.compile(r"[^。]+亿人")).anchored
    assert not _PatternScanner(re.compile(r"(?:a|b)*社保[^,]+")).anchored


@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from(["社保", "参保", "人参保", "覆盖", "亿", "人", "1", "2", "。",
                                       ",", "\n", "a", "x", "作", "社", "保", "险"]),
                     max_size=30).map("".join),  # chunks: anchors near each other are common
       pattern=st.sampled_from(WHOLE + TRICKY), fallback=st.booleans())
@example(text="1亿", pattern=r"\d+亿|覆盖[^,]+", fallback=False)  # starts at the text start
@example(text="覆盖\n12亿人参保", pattern=WHOLE[0], fallback=False)  # ... and at a line start
@example(text="社保x社保1亿", pattern=r"(?<!作)社保.*亿|\d+人参保", fallback=False)  # inside a match
def test_start_rule_search_equals_finditer(text: str, pattern: str, fallback: bool) -> None:
    sc = _PatternScanner(re.compile(pattern))
    if not fallback:  # always try the possible starts one by one, however many
        sc._STARTS_PER_CHAR = math.inf
    assert sc.spans(text) == _finditer(pattern, text)
    m = Matcher(_lexicon({"F1": [("P", pattern)], "C1": ["社保", "参保", "人参保"]}))
    for _ci, scanner, _label in m._patterns:
        scanner._STARTS_PER_CHAR = sc._STARTS_PER_CHAR
    assert [(h.start, h.end) for h in m.find(text) if h.category == "F1"] == \
        _finditer(pattern, text)


OVERLAPPING: dict[str, list[str | tuple[str, str]]] = {
    "C3": ["新常态", "经济新常态", "经济", "常态化", "态化"],
    "C1": ["新常态", "哈哈", "𠀀新", "é"],  # 4- and 2-byte UTF-8 characters
    "F1": ["é经济", ("N亿", r"\d+亿"), "1亿", ("哈N", r"哈+\d")],
}


def _rule(cats: dict[str, list[str | tuple[str, str]]], text: str
          ) -> list[tuple[int, int, str, str, str]]:
    """The documented matching rule, spelled out slowly: every occurrence (str.find) of every
    literal and every finditer match of every pattern, resolved per category."""
    dims = {"F": "feature", "P": "pathway", "C": "challenge", "D": "domain"}
    rows = []
    for cid, terms in cats.items():
        cands = []
        for t in terms:
            if isinstance(t, tuple):
                cands += [(s, s - e, 1, t[0], e) for s, e in _finditer(t[1], text)]
            else:
                i = text.find(t)
                while i != -1:
                    cands.append((i, -len(t), 0, t, i + len(t)))
                    i = text.find(t, i + 1)
        last_end = -1
        for start, _neglen, _kind, term, end in sorted(cands):
            if start >= last_end:
                rows.append((start, end, dims[cid[0]], cid, term))
                last_end = end
    return sorted(rows, key=lambda r: (r[0], r[2], r[3], r[1], r[4]))


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet="经济新常态化哈𠀀é1亿\n,", max_size=60))
def test_find_follows_the_rule_on_overlapping_terms_and_multibyte_text(text: str) -> None:
    # character offsets come from the automaton's byte offsets, converted in one forward pass
    m = Matcher(_lexicon(OVERLAPPING))
    hits = m.find(text)
    assert [(h.start, h.end, h.dimension, h.category, h.term) for h in hits] == \
        _rule(OVERLAPPING, text)
    literals = {t for terms in OVERLAPPING.values() for t in terms if isinstance(t, str)}
    assert all(text[h.start:h.end] == h.term for h in hits if h.term in literals)
    assert m.count(text) == Counter((h.dimension, h.category, h.term) for h in hits)


@pytest.mark.slow
@pytest.mark.parametrize("lexicon_path", _lexicons_under_test(), ids=lambda p: p.name)
def test_pattern_hits_equal_finditer_on_all_shared_corpora(
        lexicon_path: Path, chinese_texts: list[tuple[str, str]]) -> None:
    """Every pattern alone in a category: its hits are exactly re.finditer's matches."""
    if not lexicon_path.is_file():
        pytest.skip(f"{lexicon_path} not written yet")
    patterns = [t for t in load_lexicon(lexicon_path).terms() if t.pattern is not None]
    if not patterns:
        pytest.skip(f"{lexicon_path.name} has no patterns")
    solo = _lexicon({f"F{i}": [(t.text, t.pattern or "")] for i, t in enumerate(patterns)})
    matcher = Matcher(solo)
    for doc, text in chinese_texts:
        got: dict[str, list[tuple[int, int]]] = {}
        for h in matcher.find(text):
            got.setdefault(h.category, []).append((h.start, h.end))
        for i, t in enumerate(patterns):
            assert got.get(f"F{i}", []) == _finditer(t.pattern or "", text), (doc, t.text)


def test_a_line_mode_match_starts_after_the_last_character_it_cannot_consume() -> None:
    # \d+ has no bound, but a match holding 亿 at i starts after the last character before i
    # that the pattern cannot consume: only digits, '.', 亿, 人, 口 here
    sc = _PatternScanner(re.compile(r"(?<!十)\d+(?:\.\d+)?亿人口"))
    assert sc.mode == "line" and sc._consumed is not None
    assert "".join(c for c in "0१.亿人口十民\n" if sc._consumed.match(c)) == "0१.亿人口"
    text = "全国13.6亿人口，十2亿人口\n7亿人口"
    assert sc.spans(text) == _finditer(sc.rx.pattern, text) == [(2, 9), (16, 20)]
    # anything negated (it can consume nearly everything): no bound, the line's start
    assert _PatternScanner(re.compile(r"[^。,\n]{1,3}\d+亿人")).mode == "line"
    assert _PatternScanner(re.compile(r"[^。,\n]{1,3}\d+亿人"))._consumed is None


@settings(max_examples=500, deadline=None)
@given(text=st.lists(st.sampled_from(["收入", "群体", "人口", "中", "低", "高", "保险", "基金", "费",
                                       "亿", "人", "多", "十", "一", "1", "2", ".", "\n", "。", ",",
                                       "社保", "参保", "覆盖", "人民", "币", "金", "a", "的"]),
                     max_size=30).map("".join),  # chunks: the patterns' own strings
       pattern=st.sampled_from(TRICKY))
@example(text="12亿人口", pattern=r"(?<!十)\d+(?:\.\d+)?亿人口")  # a match at the text's start
@example(text="收入群体", pattern=r"(?<!低)(?:中?低|高)?收入(?:群体|人口)")  # optional prefix absent
@example(text="a中低收入群体", pattern=r"(?<!低)(?:中?低|高)?收入(?:群体|人口)")  # ... at its widest
def test_first_character_and_line_start_search_equals_finditer(text: str, pattern: str) -> None:
    sc = _PatternScanner(re.compile(pattern))
    sc._STARTS_PER_CHAR = math.inf  # always try the possible starts one by one
    assert sc.spans(text) == _finditer(pattern, text)


def test_a_line_mode_start_bound_gives_way_to_the_line_over_long_runs() -> None:
    # \w consumes nearly every Chinese character: past 64 steps back, the line is searched
    sc = _PatternScanner(re.compile(r"\w+亿人"))
    assert sc.mode == "line" and sc._consumed is not None
    text = "甲" * 100 + "3亿人。乙2亿人\n丙" + "丁" * 70 + "亿人"
    assert sc.spans(text) == _finditer(sc.rx.pattern, text) == [(0, 103), (104, 108), (109, 182)]
