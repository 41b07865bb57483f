"""Normalisers: exact outputs on short inline snippets."""

from __future__ import annotations

import pytest

from pipeline import normalize


def test_nfkc_makes_full_width_ascii_half_width() -> None:
    assert normalize.nfkc("覆盖１３.６亿人，ＧＤＰ增长５％") == "覆盖13.6亿人,GDP增长5%"


def test_zero_width_characters_and_soft_hyphens_are_removed() -> None:
    assert normalize.zero_width("社会\u200b保障\ufeff体系\u00ad建设\u2060") == "社会保障体系建设"


def test_newlines_unifies_crlf_cr_and_unicode_separators() -> None:
    assert normalize.newlines("甲\r\n乙\r丙\u2028丁\u2029戊") == "甲\n乙\n丙\n丁\n戊"


def test_whitespace_collapses_spaces_strips_lines_and_drops_empty_lines() -> None:
    raw = "  第一段\t 加强  保障  \n\n   \n第二段\u3000\n"
    assert normalize.whitespace(raw) == "第一段 加强 保障\n第二段"


def test_text_composes_every_normaliser_and_keeps_paragraphs() -> None:
    raw = "\ufeff各位代表：\r\n\r\n　　社会保障覆盖１０亿人。\u200b\r\n"
    assert normalize.text(raw) == "各位代表:\n社会保障覆盖10亿人。"


def test_paragraphs_are_the_lines_of_normalised_text() -> None:
    assert normalize.paragraphs("第一段。\n第二段。") == ["第一段。", "第二段。"]


def test_sentences_split_on_chinese_and_western_ends_and_rejoin_exactly() -> None:
    para = "加强社会保障。推进改革！是否可行？要点一；GDP增长5.2%. Next one! Done?"
    parts = normalize.sentences(para)
    assert parts == ["加强社会保障。", "推进改革！", "是否可行？", "要点一；", "GDP增长5.2%.",
                     " Next one!", " Done?"]
    assert "".join(parts) == para


def test_sentences_do_not_split_decimal_numbers() -> None:
    assert normalize.sentences("覆盖13.6亿人。") == ["覆盖13.6亿人。"]


def test_sentences_split_after_nfkc_half_width_marks() -> None:
    assert normalize.sentences(normalize.nfkc("好！对；完")) == ["好!", "对;", "完"]


@pytest.mark.parametrize(("text", "expected"), [
    ("社會保障與養老保險", 4 / 9),  # 會 與 養 險
    ("社会保障与养老保险", 0.0),
    ("Social security only", 0.0),
    ("", 0.0),
])
def test_traditional_share_counts_characters_that_t2s_changes(text: str, expected: float) -> None:
    assert normalize.traditional_share(text) == pytest.approx(expected)


def test_is_traditional_uses_the_one_percent_threshold() -> None:
    assert normalize.is_traditional("社會保障")
    assert not normalize.is_traditional("社会保障" * 30 + "會")  # 1 of 121 Han characters
    assert normalize.is_traditional("社会保障" * 20 + "會")  # 1 of 81 = 1.2%


def test_to_simplified_converts_with_opencc_t2s() -> None:
    assert normalize.to_simplified("積極應對人口老齡化，發展養老服務") == "积极应对人口老龄化，发展养老服务"


def test_to_simplified_leaves_simplified_text_unchanged() -> None:
    text = "实施积极应对人口老龄化国家战略，发展养老服务。"
    assert normalize.to_simplified(text) == text


def test_the_spelled_out_whitespace_is_every_unicode_whitespace_but_space_and_newline() -> None:
    # whitespace()'s fast path relies on _OTHER_SPACE being exactly str.isspace() (= regex \s)
    import re

    listed = {chr(cp) for cp in range(0x110000) if re.fullmatch(f"[{normalize._OTHER_SPACE}]", chr(cp))}
    unicode = {chr(cp) for cp in range(0x110000) if chr(cp).isspace()} - {" ", "\n"}
    assert listed == unicode


@pytest.mark.parametrize("raw", [
    "甲\n乙\n", "甲 乙\n乙", "甲  乙", " 甲", "甲 \n乙", "甲\n\n乙", "\n甲", "甲\t乙", "甲\u3000乙",
    "甲\n \n乙", "", "\n\n", " ", "甲\x1c乙", "甲\n", "a b c\nd e",
])
def test_whitespace_fast_path_gives_what_the_full_pass_gives(raw: str) -> None:
    full = "\n".join(filter(None, map(str.strip, normalize._INLINE_SPACE.sub(" ", raw).split("\n"))))
    assert normalize.whitespace(raw) == full


def test_nfkc_replaces_each_odd_character_everywhere_and_falls_back_on_combining_marks() -> None:
    assert normalize.nfkc("（一）１，２，３；①℃") == "(一)1,2,3;1°C"
    assert normalize.nfkc("ｶﾞ，e\u0301") == "ガ,é"  # half-width katakana + voiced mark compose


def test_han_and_traditional_counts_cover_astral_characters_and_lone_surrogates() -> None:
    text = "社會保障\U00020000\U0002F8A6\ud800abc"
    assert normalize.han_chars(text) == 4  # the Han blocks counted are in the BMP
    assert normalize.traditional_chars("社會保障") == 1
    assert normalize.traditional_chars(text) == 1 + ("\U0002F8A6" in normalize._t2s_characters())
