"""Recall of the lexicon from hand-coded passages: drawing the sheet, reading codes, recall,
precision, F1, kappa and expression agreement, each checked against hand-computed answers."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from pipeline.errors import MobilizeError
from pipeline.ingest import Document, load_corpus
from pipeline.lexicon import load_lexicon
from pipeline import normalize
from pipeline.normalize import paragraphs
from pipeline.recall import (
    PASSAGE_COLUMNS,
    Paragraph,
    card_markdown,
    card_rows,
    draw_passages,
    eras_from_breaks,
    file_lines,
    kappa_cell,
    kappa_estimate,
    measure,
    measures_csv,
    missed_csv,
    paragraph_pool,
    passage_rows,
    passages_csv,
    read_codes,
    read_passages,
    recall_csv,
    wilson,
)
from pipeline.validation import Judgement
from tests.conftest import shared_corpus

SMALL = Path(__file__).parent / "fixtures" / "lexicons" / "small.yaml"
ERAS = eras_from_breaks((1992, 2013))

# A passages sheet (text as the engine normalises it: NFKC turns ， into ,).
PASSAGES = [
    ("P01", "1985", "pre-1992", "全覆盖是目标,要实现全覆盖,人人享有基本保障。"),
    ("P02", "2005", "1992-2012", "适应经济新常态,经济下行压力加大,增长放缓。"),
    ("P03", "2020", "2013-", "运用大数据和人工智能完善社会保障体系。"),
    ("P04", "2021", "2013-", "数字技术改变就业,养老保险要跟上。"),
    ("P05", "2022", "2013-", "今年粮食丰收。"),
]
# coder 1: 10 expressions; found: 全覆盖 (2nd), 经济新常态, 经济下行压力 (下行压力 overlaps it),
# 大数据, 人工智能 (C4), 社会保障体系, 养老保险 = 7; missed: 人人享有, 增长放缓, 数字技术.
CODES_1 = [
    ("P01", "F1_population", "全覆盖", "2", ""),
    ("P01", "F1_population", "人人享有", "", ""),
    ("P02", "C3_economic_normal", "经济新常态", "", ""),
    ("P02", "C3_economic_normal", "经济下行压力", "1", ""),
    ("P02", "C3_economic_normal", "增长放缓", "1", "slower growth"),
    ("P03", "P4_technology", "大数据", "1", ""),
    ("P03", "C4_digital_disruption", "人工智能", "1", ""),
    ("P03", "D_social_security", "社会保障体系", "1", ""),
    ("P04", "C4_digital_disruption", "数字技术", "1", ""),
    ("P04", "D_social_security", "养老保险", "1", ""),
    ("P05", "-", "", "", ""),
]
CODES_2 = [
    ("P01", "F1_population", "全覆盖", "1", ""),
    ("P01", "F1_population", "人人享有", "1", ""),
    ("P02", "C3_economic_normal", "经济新常态", "1", ""),
    ("P02", "C3_economic_normal", "增长放缓", "1", ""),
    ("P03", "P4_technology", "大数据", "1", ""),
    ("P03", "C4_digital_disruption", "人工智能", "1", ""),
    ("P03", "D_social_security", "社会保障体系", "1", ""),
    ("P04", "D_social_security", "养老保险", "1", ""),
    ("P05", "-", "", "", ""),
]
# KWIC judgements for precision: F1 2 of 3, C3 4 of 4.
KWIC = [Judgement("L1", "F1_population", "全覆盖", True),
        Judgement("L2", "F1_population", "全覆盖", True),
        Judgement("L3", "F1_population", "全覆盖", False),
        Judgement("L4", "C3_economic_normal", "新常态", True),
        Judgement("L5", "C3_economic_normal", "新常态", True),
        Judgement("L6", "C3_economic_normal", "新常态", True),
        Judgement("L7", "C3_economic_normal", "下行压力", True),
        Judgement("L8", "C4_digital_disruption", "人工智能", None)]  # not coded: left out


def _write(path: Path, header: tuple[str, ...] | list[str], rows: list[tuple[str, ...]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def _sheet(tmp_path: Path) -> Path:
    return _write(tmp_path / "passages-P.csv", PASSAGE_COLUMNS,
                  [(pid, "test", f"d{pid}", year, era, "1", text)
                   for pid, year, era, text in PASSAGES])


CODE_HEADER = ("passage_id", "category", "phrase", "occurrence", "note")


@pytest.fixture
def lexicon():  # type: ignore[no-untyped-def]
    return load_lexicon(SMALL)


@pytest.fixture
def coded(tmp_path: Path, lexicon):  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    cats = [c.id for c in lexicon.categories]
    one = read_codes(_write(tmp_path / "codes-P-one.csv", CODE_HEADER, CODES_1), passages, cats)
    two = read_codes(_write(tmp_path / "codes-P-two.csv", CODE_HEADER, CODES_2), passages, cats)
    return passages, one, two


def _by(m, cid):  # type: ignore[no-untyped-def]
    return next(c for c in m.categories if c.category == cid)


def _wilson(k: int, n: int) -> tuple[float, float]:
    z = 1.959963984540054
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


# ----------------------------------------------------------------- reading the sheets


def test_codes_locate_the_coded_occurrence_of_each_phrase(coded) -> None:  # type: ignore[no-untyped-def]
    _passages, one, two = coded
    assert one.coder == "codes-P-one"
    assert one.coded == frozenset({"P01", "P02", "P03", "P04", "P05"})
    first = [c for c in one.expressions if c.passage_id == "P01"]
    # 全覆盖 occurrence 2 starts after 全覆盖是目标,要实现 (10 characters)
    assert [(c.phrase, c.start, c.end) for c in first] == [("全覆盖", 10, 13), ("人人享有", 14, 18)]
    assert [(c.phrase, c.start) for c in two.expressions if c.passage_id == "P01"][0] == ("全覆盖", 0)
    assert len(one.expressions) == 10  # the '-' row of P05 codes the passage, no expression


def test_a_phrase_typed_with_full_width_punctuation_is_found_after_nfkc(
        tmp_path: Path, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    codes = read_codes(_write(tmp_path / "c.csv", CODE_HEADER,
                              [("P02", "C3_economic_normal", "经济新常态，经济", "1", "")]),
                       passages, [c.id for c in lexicon.categories])
    assert codes.expressions[0].phrase == "经济新常态,经济"


@pytest.mark.parametrize("row,problem", [
    (("P09", "F1_population", "全覆盖", "1", ""), "not in the passages sheet"),
    (("P01", "F9_nothing", "全覆盖", "1", ""), "is not a category of the lexicon"),
    (("P01", "F1_population", "全民参保", "1", ""), "does not occur in passage P01"),
    (("P01", "F1_population", "全覆盖", "3", ""), "occurs 2 time(s) in passage P01, not 3"),
    (("P01", "F1_population", "全覆盖", "x", ""), "is not a number"),
    (("P01", "F1_population", "", "1", ""), "has no phrase"),
])
def test_a_bad_codes_row_names_the_file_the_line_and_the_fix(
        tmp_path: Path, lexicon, row: tuple[str, ...], problem: str) -> None:  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    path = _write(tmp_path / "bad.csv", CODE_HEADER, [("P02", "-", "", "", ""), row])
    with pytest.raises(MobilizeError) as err:
        read_codes(path, passages, [c.id for c in lexicon.categories])
    assert err.value.line == 3 and err.value.path == str(path)
    assert problem in err.value.problem and err.value.fix


def test_a_passage_marked_none_and_coded_is_an_error(tmp_path: Path, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    path = _write(tmp_path / "bad.csv", CODE_HEADER, [("P01", "-", "", "", ""),
                                                      ("P01", "F1_population", "全覆盖", "1", "")])
    with pytest.raises(MobilizeError, match="marked '-'"):
        read_codes(path, passages, [c.id for c in lexicon.categories])


def test_a_repeated_expression_is_an_error(tmp_path: Path, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    path = _write(tmp_path / "bad.csv", CODE_HEADER, [("P01", "F1_population", "全覆盖", "1", ""),
                                                      ("P01", "F1_population", "全覆盖", "", "")])
    with pytest.raises(MobilizeError, match="coded twice") as err:
        read_codes(path, passages, [c.id for c in lexicon.categories])
    assert err.value.line == 3


def test_a_passages_sheet_without_the_text_column_is_an_error(tmp_path: Path) -> None:
    path = _write(tmp_path / "p.csv", ("passage_id", "era"), [("P01", "2013-")])
    with pytest.raises(MobilizeError, match="no column text") as err:
        read_passages(path)
    assert err.value.line == 1


# ----------------------------------------------------------------- the figures


def test_recall_per_category_and_era_is_the_share_of_coded_expressions_the_lexicon_overlaps(
        coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, _two = coded
    m = measure(passages, [one], lexicon, kwic=KWIC)
    got = {c.category: (c.recall.count, c.recall.n) for c in m.categories}
    assert got == {"F1_population": (1, 2), "P4_technology": (1, 1),
                   "C3_economic_normal": (2, 3), "C4_digital_disruption": (1, 2),
                   "D_social_security": (2, 2)}
    assert (m.overall_recall.count, m.overall_recall.n, m.overall_recall.value) == (7, 10, 0.7)
    assert {e: (r.count, r.n) for e, r in m.overall_recall_by_era.items()} == {
        "pre-1992": (1, 2), "1992-2012": (2, 3), "2013-": (4, 5)}
    assert {e: (r.count, r.n) for e, r in _by(m, "C4_digital_disruption").recall_by_era.items()
            } == {"pre-1992": (0, 0), "1992-2012": (0, 0), "2013-": (1, 2)}
    assert (m.coded, m.passages, m.shared, m.coders) == (5, 5, 0, ("codes-P-one",))


def test_an_expression_matched_only_in_another_category_is_missed(tmp_path: Path, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    # 人工智能 is a P4 and a C4 term, never an F1 one
    codes = read_codes(_write(tmp_path / "c.csv", CODE_HEADER,
                              [("P03", "F1_population", "人工智能", "1", "")]),
                       passages, [c.id for c in lexicon.categories])
    m = measure(passages, [codes], lexicon)
    assert (_by(m, "F1_population").recall.count, _by(m, "F1_population").recall.n) == (0, 1)
    assert [x.code.phrase for x in m.missed] == ["人工智能"]


def test_every_figure_has_its_wilson_interval(coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, _two = coded
    m = measure(passages, [one], lexicon, kwic=KWIC)
    c3 = _by(m, "C3_economic_normal")
    assert (c3.recall.low, c3.recall.high) == pytest.approx(_wilson(2, 3), abs=1e-4)
    f1 = _by(m, "F1_population")
    assert (f1.precision.count, f1.precision.n, f1.precision.value) == (2, 3, 0.6667)
    assert (f1.precision.low, f1.precision.high) == pytest.approx(_wilson(2, 3), abs=1e-4)
    assert wilson(0, 0) == (None, None)
    # precision pools every judged line; the uncoded one is left out
    assert (m.overall_precision.count, m.overall_precision.n, m.kwic_lines) == (6, 7, 7)


def test_f1_is_the_harmonic_mean_with_an_interval_around_it(coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, _two = coded
    m = measure(passages, [one], lexicon, kwic=KWIC)
    f1 = _by(m, "F1_population").f1  # P = 2/3, R = 1/2
    assert f1.value == round(4 / 7, 4)
    assert f1.low is not None and f1.high is not None and f1.low < 4 / 7 < f1.high
    assert _by(m, "C3_economic_normal").f1.value == round(2 * 1 * (2 / 3) / (1 + 2 / 3), 4)
    assert _by(m, "P4_technology").f1.value is None  # no precision judgements for P4
    # pooled: P = 6/7, R = 7/10
    assert m.overall_f1.value == round(2 * (6 / 7) * 0.7 / (6 / 7 + 0.7), 4)
    again = measure(passages, [one], lexicon, kwic=KWIC)
    assert _by(again, "F1_population").f1 == f1  # seeded draws


def test_two_coders_give_kappa_per_category_and_expression_agreement(coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, two = coded
    m = measure(passages, [one, two], lexicon, kwic=KWIC)
    assert m.shared == 5
    # C4 in P03, P04 (coder 1) vs P03 (coder 2): po = 0.8, pe = 0.4*0.2 + 0.6*0.8 = 0.56
    c4 = _by(m, "C4_digital_disruption").kappa
    assert c4 is not None and c4.value == round(0.24 / 0.44, 4) and c4.n == 5
    assert c4.low is not None and c4.high is not None and c4.low < c4.value < c4.high
    assert _by(m, "F1_population").kappa.value == 1.0  # type: ignore[union-attr]
    # expression agreement: F1 pairs only 人人享有 (全覆盖 2nd vs 1st occurrence) -> 2*1/4
    assert _by(m, "F1_population").expression_agreement.value == 0.5  # type: ignore[union-attr]
    # C3: 经济新常态 and 增长放缓 paired, 经济下行压力 not -> 2*2/5
    c3 = _by(m, "C3_economic_normal").expression_agreement
    assert c3 is not None and (c3.value, c3.n) == (0.8, 5)
    # recall of each coder; the headline is the first coder's
    assert {k: (v.count, v.n) for k, v in _by(m, "C3_economic_normal").recall_by_coder.items()
            } == {"codes-P-one": (2, 3), "codes-P-two": (1, 2)}
    assert _by(m, "C3_economic_normal").recall.n == 3


def test_kappa_agrees_with_statsmodels_and_is_undefined_for_one_label() -> None:
    from statsmodels.stats.inter_rater import cohens_kappa

    a = [True, True, False, False, True, False, False, False]
    b = [True, False, False, False, True, True, False, False]
    table = [[2, 1], [1, 4]]
    est = kappa_estimate(a, b)
    assert est.value == round(float(cohens_kappa(table).kappa), 4)
    assert kappa_estimate([False] * 4, [False] * 4).value is None
    assert (est.count, est.n) == (6, 8)  # the labels the two agree on


def test_kappa_claims_no_interval_where_the_asymptotic_one_has_no_width() -> None:
    """Perfect agreement: kappa 1, and no interval (statsmodels' is [1, 1] at any n). One coder
    with one label throughout: kappa is 0 by construction, so it is n/a, with the agreement."""
    from statsmodels.stats.inter_rater import cohens_kappa

    a = [True, True, False, True, False]
    perfect = kappa_estimate(a, a)
    assert (perfect.value, perfect.low, perfect.high, perfect.count, perfect.n) == (
        1.0, None, None, 5, 5)
    table = [[3, 0], [0, 2]]
    assert (cohens_kappa(table).kappa_low, cohens_kappa(table).kappa_upp) == (1.0, 1.0)
    assert kappa_cell(perfect) == "1.00 (n=5, no disagreement: no interval)"

    yes = [True] * 28
    other = [True] * 27 + [False]
    assert round(float(cohens_kappa([[27, 1], [0, 0]]).kappa), 4) == 0.0  # the artefact
    one_label = kappa_estimate(yes, other)
    assert (one_label.value, one_label.low, one_label.count, one_label.n) == (None, None, 27, 28)
    assert kappa_cell(one_label) == "n/a: a coder used only one label (n=28, 27 agree)"

    b = [True, False, False, True, False]
    some = kappa_estimate(a, b)
    res = cohens_kappa([[2, 1], [0, 2]])
    assert (some.low, some.high) == (round(max(-1.0, float(res.kappa_low)), 4),
                                     round(min(1.0, float(res.kappa_upp)), 4))
    assert kappa_cell(some).startswith(f"{some.value:.2f} [")


def test_only_coded_passages_count(tmp_path: Path, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages = read_passages(_sheet(tmp_path))
    codes = read_codes(_write(tmp_path / "c.csv", CODE_HEADER, CODES_1[:2]), passages,
                       [c.id for c in lexicon.categories])
    m = measure(passages, [codes], lexicon)
    assert (m.coded, m.overall_recall.n, m.overall_recall.count) == (1, 2, 1)


# ----------------------------------------------------------------- tables and the card


def test_the_tables_and_the_missed_list(coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, two = coded
    m = measure(passages, [one, two], lexicon, kwic=KWIC)
    missed = list(csv.DictReader(missed_csv(m).splitlines()))
    assert [(r["coder"], r["passage_id"], r["category"], r["phrase"], r["era"]) for r in missed] == [
        ("codes-P-one", "P01", "F1_population", "人人享有", "pre-1992"),
        ("codes-P-one", "P02", "C3_economic_normal", "增长放缓", "1992-2012"),
        ("codes-P-one", "P04", "C4_digital_disruption", "数字技术", "2013-"),
        ("codes-P-two", "P01", "F1_population", "人人享有", "pre-1992"),
        ("codes-P-two", "P02", "C3_economic_normal", "增长放缓", "1992-2012"),
    ]
    assert missed[0]["context"] == "全覆盖是目标,要实现全覆盖,【人人享有】基本保障。"
    recall = list(csv.DictReader(recall_csv(m).splitlines()))
    row = next(r for r in recall if r["category"] == "*" and r["era"] == "all")
    assert (row["expressions"], row["found"], row["recall"]) == ("10", "7", "0.7000")
    table = list(csv.DictReader(measures_csv(m).splitlines()))
    c4 = next(r for r in table if r["category"] == "C4_digital_disruption")
    assert (c4["recall"], c4["recall_n"], c4["kappa"], c4["kappa_n"]) == ("0.5000", "2", "0.5455", "5")
    assert measures_csv(m) == measures_csv(measure(passages, [one, two], lexicon, kwic=KWIC))


def test_the_card_names_the_lexicon_the_corpora_and_the_date(coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, two = coded
    m = measure(passages, [one, two], lexicon, kwic=KWIC)
    rows = card_rows(m)
    assert [r["category"] for r in rows] == [c.id for c in lexicon.categories] + ["all"]
    f1 = rows[[c.id for c in lexicon.categories].index("F1_population")]
    assert f1["recall"].startswith("0.50 [") and f1["recall"].endswith("(n=2)")
    assert f1["recall pre-1992"].endswith("(n=2)") and f1["kappa"].startswith("1.00")
    md = card_markdown(m, date="2026-12-03", sources={"codes": "codes-P-one.csv"})
    assert "small 0.2.0" in md and "2026-12-03" in md and "Corpora coded: test" in md
    assert "| recall 1992-2012 |" in md and "| kappa |" in md
    assert md.count("\n| ") == len(rows) + 2  # the header, the separator, one line per row


# ----------------------------------------------------------------- drawing passages


def _doc(doc_id: str, year: int, paras: list[str]) -> Document:
    return Document(doc_id, f"{doc_id}.txt", "\n".join(paras), "", str(year), year, {})


def _para(n: int) -> str:
    return f"第{n}段" + "社会保障" * 10  # 43+ characters


def test_eras_from_breaks_name_the_eras_like_the_sheets() -> None:
    assert [e.name for e in ERAS] == ["pre-1992", "1992-2012", "2013-"]
    assert [e.name for e in eras_from_breaks((2000,))] == ["pre-2000", "2000-"]
    with pytest.raises(MobilizeError):
        eras_from_breaks((2013, 1992))


def test_the_pool_keeps_paragraphs_of_40_to_600_characters_in_dated_documents() -> None:
    docs = [_doc("a", 1990, ["短", _para(1), "长" * 601, "长" * 600]),
            Document("b", "b.txt", _para(2), "", "", None, {})]
    pool = paragraph_pool(docs, "c1", ERAS)
    assert [(p.doc_id, p.line, p.era, len(p.text)) for p in pool] == [
        ("a", 2, "pre-1992", len(_para(1))), ("a", 4, "pre-1992", 600)]


def test_the_draw_shares_each_era_equally_among_corpora_and_redistributes() -> None:
    pool = [Paragraph("big", f"d{i}", 2015, "2013-", j, f"{i}-{j}")
            for i in range(5) for j in range(1, 5)]
    pool += [Paragraph("small", "s", 2016, "2013-", 1, "s-1")]
    pool += [Paragraph("big", "old", 1980, "pre-1992", j, f"o-{j}") for j in range(1, 4)]
    drawn = draw_passages(pool, per_era=6, seed=7, eras=ERAS)
    assert [p.era for p in drawn] == ["pre-1992"] * 3 + ["2013-"] * 6
    late = [p for p in drawn if p.era == "2013-"]
    assert sum(p.corpus == "small" for p in late) == 1  # its share is 3, it has 1
    assert sum(p.corpus == "big" for p in late) == 5
    assert late == sorted(late) and len(set(late)) == 6
    assert draw_passages(pool, per_era=6, seed=7, eras=ERAS) == drawn
    assert draw_passages(pool, per_era=6, seed=8, eras=ERAS) != drawn


def test_excluded_paragraphs_are_never_drawn_again() -> None:
    pool = [Paragraph("c", f"d{i}", 2015, "2013-", 1, f"text {i}") for i in range(10)]
    first = draw_passages(pool, per_era=5, seed=1, eras=ERAS)
    second = draw_passages(pool, per_era=5, seed=1, eras=ERAS,
                           exclude={(p.corpus, p.doc_id, p.line) for p in first})
    assert not set(first) & set(second) and len(second) == 5
    by_text = draw_passages(pool, per_era=5, seed=1, eras=ERAS,
                            exclude_texts={p.text for p in first})
    assert set(by_text) == set(second)


def test_the_sheet_numbers_passages_with_the_set_letter(tmp_path: Path) -> None:
    paras = [Paragraph("c", "d", 2015, "2013-", 3, "甲,乙\"丙\"")]
    text = passages_csv(passage_rows(paras, "C"))
    assert text == ('passage_id,corpus,doc_id,year,era,line,text\n'
                    'C001,c,d,2015,2013-,3,"甲,乙""丙"""\n')
    (tmp_path / "s.csv").write_text(text, encoding="utf-8")
    [p] = read_passages(tmp_path / "s.csv")
    assert (p.passage_id, p.year, p.line, p.text) == ("C001", 2015, 3, "甲,乙\"丙\"")


def test_file_lines_count_blank_lines_of_the_file(tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("第一段\n\n  第二段　\n\n\n第三段\n", encoding="utf-8")
    doc = Document("d", "d.txt", "第一段\n第二段\n第三段", "", "2020", 2020, {})
    assert file_lines(doc, tmp_path) == [1, 3, 6]
    assert file_lines(doc, None) == [1, 2, 3]


@pytest.mark.slow
def test_passages_from_a_shared_corpus_are_paragraphs_the_engine_sees_at_their_file_line() -> None:
    root = shared_corpus("social-security-policy-zh")
    corpus = load_corpus(root)
    pool = paragraph_pool(corpus.documents, root.name, ERAS, root=root)
    drawn = draw_passages(pool, per_era=12, seed=3, eras=ERAS)
    assert len(drawn) == 36
    docs = {d.doc_id: d for d in corpus.documents}
    for p in drawn:
        assert p.text in paragraphs(docs[p.doc_id].text)
        raw = (root / docs[p.doc_id].path).read_text(encoding="utf-8").split("\n")
        assert normalize.text(raw[p.line - 1]) == p.text


def test_a_repeated_paragraph_is_drawn_once_and_excluded_by_its_text() -> None:
    notice = "本作品来自全国人民代表大会的决定、决议,不受著作权法保护。" * 2
    pool = [Paragraph("npc", f"r{i}", 2015, "2013-", 3, notice) for i in range(6)]
    pool += [Paragraph("npc", f"r{i}", 2015, "2013-", 1, f"决议正文{i}") for i in range(6)]
    drawn = draw_passages(pool, per_era=12, seed=1, eras=ERAS)
    assert len(drawn) == 7 and sum(p.text == notice for p in drawn) == 1
    assert [p.doc_id for p in drawn if p.text == notice] == ["r0"]
    again = draw_passages(pool, per_era=12, seed=1, eras=ERAS, exclude_texts={notice})
    assert notice not in {p.text for p in again} and len(again) == 6


def test_precision_counts_only_the_kwic_lines_the_lexicon_given_still_counts(
        tmp_path: Path, lexicon) -> None:  # type: ignore[no-untyped-def]
    from pipeline.match import Matcher
    from pipeline.recall import read_kwic, still_counted
    from pipeline.validation import SHEET_COLUMNS

    rows = [  # line_id, category, term, doc_id, date, period, left, match, right, judgement
        ("L1", "C3_economic_normal", "新常态", "a", "2016", "p", "适应经济", "新常态", ",发展"),
        ("L2", "C3_economic_normal", "增速放缓", "a", "2016", "p", "经济", "增速放缓", "。"),
        ("L3", "F1_population", "全覆盖", "a", "2016", "p", "实现", "全覆盖", "。"),
        ("L4", "P4_technology", "人工智能", "a", "2016", "p", "发展", "人工智能", "。"),
    ]
    path = _write(tmp_path / "kwic.csv", SHEET_COLUMNS,
                  [(*r, j, "c", "") for r, j in zip(rows, ["relevant", "relevant",
                                                           "not relevant", ""], strict=True)])
    lines = read_kwic(path)
    assert [(ln.left, ln.match) for ln in lines] == [("适应经济", "新常态"), ("经济", "增速放缓"),
                                                     ("实现", "全覆盖"), ("发展", "人工智能")]
    kept = still_counted(lines, Matcher(lexicon))
    # 增速放缓 is no term of the small lexicon; 新常态 inside 经济新常态 still counts (overlap)
    assert [j.line_id for j in kept] == ["L1", "L3", "L4"]


# ----------------------------------------------------------------- the commands


def _cli(*args: str | Path) -> tuple[int, str, str]:
    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    _register()
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_agreement_in_recall_mode_writes_the_tables_and_the_card(tmp_path: Path) -> None:
    sheet = _sheet(tmp_path)
    one = _write(tmp_path / "codes-P-one.csv", CODE_HEADER, CODES_1)
    two = _write(tmp_path / "codes-P-two.csv", CODE_HEADER, CODES_2)
    code, out, err = _cli("lexicon", "agreement", "--passages", sheet, "--codes", one,
                          "--codes", two, "--lexicon", SMALL, "--out", tmp_path / "res", "--json")
    assert code == 0, err
    import json

    data = json.loads(out)
    assert (data["overall_recall"]["count"], data["overall_recall"]["n"]) == (7, 10)
    assert sorted(p.name for p in (tmp_path / "res").iterdir()) == ["measures.csv", "missed.csv",
                                                                     "recall.csv"]
    assert "人人享有" in (tmp_path / "res" / "missed.csv").read_text(encoding="utf-8")
    code, card, err = _cli("lexicon", "card", "--passages", sheet, "--codes", one, "--codes", two,
                           "--lexicon", SMALL, "--date", "2026-12-03")
    assert code == 0, err
    assert card.startswith("# Measurement card: small 0.2.0") and "| kappa |" in card
    code, again, _ = _cli("lexicon", "card", "--passages", sheet, "--codes", one, "--codes", two,
                          "--lexicon", SMALL, "--date", "2026-12-03")
    assert again == card


def test_agreement_tables_at_80_columns_keep_every_category_id_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    sheet = _sheet(tmp_path)
    one = _write(tmp_path / "codes-P-one.csv", CODE_HEADER, CODES_1)
    two = _write(tmp_path / "codes-P-two.csv", CODE_HEADER, CODES_2)
    code, out, err = _cli("lexicon", "agreement", "--passages", sheet, "--codes", one,
                          "--codes", two, "--lexicon", SMALL)
    assert code == 0, err
    from pipeline.lexicon import load_lexicon

    tables = out[:out.index("passage(s) coded by")]  # (the closing sentence wraps as a whole)
    assert "…" not in tables and max(len(line) for line in tables.splitlines()) <= 80
    firsts = {line.split()[0] for line in tables.splitlines() if line.strip()}
    assert {c.id for c in load_lexicon(SMALL).categories} <= firsts


def test_agreement_with_a_bad_code_exits_2_naming_the_file_and_line(tmp_path: Path) -> None:
    sheet = _sheet(tmp_path)
    bad = _write(tmp_path / "codes-bad.csv", CODE_HEADER, [("P01", "F1_population", "全民", "1", "")])
    code, _out, err = _cli("lexicon", "agreement", "--passages", sheet, "--codes", bad,
                           "--lexicon", SMALL)
    assert code == 2 and "codes-bad.csv:2" in err and "does not occur in passage P01" in err
    code, _out, err = _cli("lexicon", "agreement", "--codes", bad, "--lexicon", SMALL)
    assert code == 2 and "--passages" in err


def test_two_coders_copies_of_a_kwic_sheet_count_each_line_once_and_give_kappa(
        tmp_path: Path) -> None:
    """--kwic A1 --kwic B1 --kwic A2: A1 and A2 are two coders' copies of sheet A (the same
    lines); B1 is another corpus's sheet whose line_id L1 is another line. Precision counts
    each line once, with the first coder's judgement; the pairs give Cohen's kappa."""
    import json

    from pipeline.validation import SHEET_COLUMNS

    lines = [  # line_id, category, term, doc_id, date, period, left, match, right
        ("L1", "C3_economic_normal", "新常态", "a", "2016", "p", "适应经济", "新常态", ",发展"),
        ("L2", "C3_economic_normal", "新常态", "b", "2017", "p", "进入", "新常态", "。"),
        ("L3", "F1_population", "全覆盖", "c", "2018", "p", "实现", "全覆盖", "。"),
        ("L4", "F1_population", "全覆盖", "d", "2019", "p", "基本", "全覆盖", "目标"),
    ]

    def sheet(name: str, rows: list[tuple[str, ...]], codes: list[str]) -> Path:
        return _write(tmp_path / name, SHEET_COLUMNS,
                      [(*r, j, "c", "") for r, j in zip(rows, codes, strict=True)])

    a1 = sheet("kwic-A-coder1.csv", lines, ["1", "1", "0", "1"])
    a2 = sheet("kwic-A-coder2.csv", lines, ["1", "0", "0", "1"])
    b1 = sheet("kwic-B-coder1.csv", [("L1", "C3_economic_normal", "新常态", "2020-x", "2020",
                                      "p", "把握", "新常态", "特征")], ["0"])
    passages = _sheet(tmp_path)
    one = _write(tmp_path / "codes-P-one.csv", CODE_HEADER, CODES_1)
    code, out, err = _cli("lexicon", "agreement", "--passages", passages, "--codes", one,
                          "--kwic", a1, "--kwic", b1, "--kwic", a2, "--lexicon", SMALL, "--json")
    assert code == 0, err
    data = json.loads(out)
    # 5 lines (A's 4 and B's 1), coder 1's judgements: 1, 1, 0, 1 and 0 -> 3 of 5
    assert (data["overall_precision"]["count"], data["overall_precision"]["n"]) == (3, 5)
    assert (data["kwic_lines"], data["kwic_shared"]) == (5, 4)
    cats = {c["category"]: c for c in data["categories"]}
    assert (cats["C3_economic_normal"]["precision"]["count"],
            cats["C3_economic_normal"]["precision"]["n"]) == (2, 3)
    assert (cats["F1_population"]["precision"]["count"],
            cats["F1_population"]["precision"]["n"]) == (1, 2)
    # kappa of A's 4 lines: 1 1 0 1 / 1 0 0 1: po = 3/4, pe = 3/4*2/4 + 1/4*2/4 = 1/2 -> 0.5
    assert (data["precision_kappa"]["value"], data["precision_kappa"]["n"]) == (0.5, 4)
    # C3: 1 1 / 1 0: one coder used one label, so po = pe and kappa is 0 whatever they agree
    # on: n/a, with the agreement (1 of 2); F1: 0 1 / 0 1 -> 1 (no disagreement: no interval)
    c3 = cats["C3_economic_normal"]["precision_kappa"]
    assert (c3["value"], c3["count"], c3["n"]) == (None, 1, 2)
    assert cats["F1_population"]["precision_kappa"]["low"] is None
    assert cats["F1_population"]["precision_kappa"]["value"] == 1.0
    assert cats["P4_technology"]["precision_kappa"] is None
    # the card says so
    code, card, err = _cli("lexicon", "card", "--passages", passages, "--codes", one,
                           "--kwic", a1, "--kwic", b1, "--kwic", a2, "--lexicon", SMALL,
                           "--date", "2026-12-03")
    assert code == 0, err
    assert "- KWIC lines judged for precision: 5; coded by two coders: 4, Cohen's kappa 0.50" \
        in card
    # one sheet only: nothing coded twice, no kappa
    code, out, err = _cli("lexicon", "agreement", "--passages", passages, "--codes", one,
                          "--kwic", a1, "--lexicon", SMALL, "--json")
    data = json.loads(out)
    assert (data["kwic_lines"], data["kwic_shared"], data["precision_kappa"]) == (4, 0, None)


def test_the_precision_mode_of_agreement_still_takes_sheets_as_arguments(tmp_path: Path) -> None:
    from pipeline.validation import SHEET_COLUMNS

    path = _write(tmp_path / "kwic.csv", SHEET_COLUMNS,
                  [("L1", "C3_economic_normal", "新常态", "a", "2016", "p", "", "新常态", "", "1",
                    "c", ""), ("L2", "C3_economic_normal", "新常态", "a", "2016", "p", "",
                               "新常态", "", "0", "c", "")])
    code, out, err = _cli("lexicon", "agreement", path, "--json")
    assert code == 0, err
    assert '"overall_precision": 0.5' in out


@pytest.mark.slow
def test_passages_command_draws_a_fresh_sheet_excluding_an_earlier_one(tmp_path: Path) -> None:
    root = shared_corpus("npc-resolutions-gwr-zh")
    first = tmp_path / "passages-A.csv"
    code, _out, err = _cli("lexicon", "passages", "--corpus", root, "--per-era", "6", "--seed", "1",
                           "--out", first)
    assert code == 0, err
    rows = list(csv.DictReader(first.open(encoding="utf-8")))
    assert tuple(rows[0]) == PASSAGE_COLUMNS and rows[0]["passage_id"] == "A001"
    code, again, _ = _cli("lexicon", "passages", "--corpus", root, "--per-era", "6", "--seed", "1")
    assert again == first.read_text(encoding="utf-8")  # stdout without --out, same sheet
    second = tmp_path / "passages-B.csv"
    code, _out, err = _cli("lexicon", "passages", "--corpus", root, "--per-era", "6", "--seed", "1",
                           "--exclude", first, "--out", second)
    assert code == 0, err
    rows2 = list(csv.DictReader(second.open(encoding="utf-8")))
    assert rows2 and rows2[0]["passage_id"].startswith("B")
    assert not {r["text"] for r in rows} & {r["text"] for r in rows2}


def test_one_coder_card_has_no_kappa_and_three_coders_are_refused(coded, lexicon) -> None:  # type: ignore[no-untyped-def]
    passages, one, two = coded
    m = measure(passages, [one], lexicon)
    rows = card_rows(m)
    assert "kappa" not in rows[0] and rows[0]["precision"] == "n/a (n=0)"
    assert all(c.kappa is None and c.expression_agreement is None for c in m.categories)
    with pytest.raises(MobilizeError, match="defined for two"):
        measure(passages, [one, two, one], lexicon)


def test_eras_are_configurable_and_name_the_sheet_rows() -> None:
    eras = eras_from_breaks((2000, 2010))
    pool = [Paragraph("c", f"d{y}", y, [e.name for e in eras if e.holds(y)][0], 1, f"t{y}")
            for y in (1990, 2005, 2015)]
    assert [p.era for p in pool] == ["pre-2000", "2000-2009", "2010-"]
    drawn = draw_passages(pool, per_era=1, seed=1, eras=eras)
    assert [p.era for p in drawn] == ["pre-2000", "2000-2009", "2010-"]
