"""The validation kit: KWIC, coverage, coding sheets, precision and kappa — counted with the
same Matcher as the scorer."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from pipeline.errors import MobilizeError
from pipeline.ingest import Document
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher
from pipeline.validation import (
    SHEET_COLUMNS,
    Judgement,
    agreement,
    coverage,
    coverage_csv,
    decade,
    kwic,
    precision_csv,
    read_sheet,
    sample_sheet,
    term_matcher,
    write_sheet,
)

SMALL = Path(__file__).parent / "fixtures" / "lexicons" / "small.yaml"


def _doc(doc_id: str, year: int, text: str) -> Document:
    return Document(doc_id, f"{doc_id}.txt", text, "", str(year), year, {})


DOCS = [
    _doc("a", 1995, "完善社会保障体系。\n适应经济新常态，发展大数据。"),
    _doc("b", 2016, "新常态下，新常态要求改革。人工智能"),
    _doc("c", 2023, "社会保障全覆盖，覆盖13亿人。"),
]


@pytest.fixture(scope="module")
def small() -> Matcher:
    return Matcher(load_lexicon(SMALL))


# ----------------------------------------------------------------- kwic


def test_kwic_shows_each_counted_hit_with_its_context(small: Matcher) -> None:
    lines = kwic(DOCS, small, term="新常态", width=3)
    assert [(ln.doc_id, ln.left, ln.match, ln.right) for ln in lines] == [
        ("b", "", "新常态", "下，新"), ("b", "态下，", "新常态", "要求改")]


def test_kwic_of_a_term_hidden_by_a_longer_one_of_its_category_shows_nothing_there(
        small: Matcher) -> None:
    assert [ln.doc_id for ln in kwic(DOCS, small, term="新常态")] == ["b", "b"]
    assert [ln.match for ln in kwic(DOCS[:1], small, term="经济新常态")] == ["经济新常态"]


def test_kwic_context_replaces_line_breaks_with_spaces(small: Matcher) -> None:
    [line] = kwic(DOCS, small, term="经济新常态", width=4)
    assert line.left == "。 适应"


def test_kwic_of_a_category_lists_all_its_terms_and_limit_stops_early(small: Matcher) -> None:
    lines = kwic(DOCS, small, category="D_social_security")
    assert [(ln.doc_id, ln.term) for ln in lines] == [("a", "社会保障体系"), ("c", "社会保障")]
    assert len(kwic(DOCS, small, category="C3_economic_normal", limit=2)) == 2


def test_kwic_of_a_pattern_uses_its_label(small: Matcher) -> None:
    [line] = kwic(DOCS, small, term="覆盖N亿人")
    assert (line.match, line.category) == ("覆盖13亿人", "F1_population")


def test_kwic_of_a_candidate_term_not_in_the_lexicon_finds_every_occurrence() -> None:
    matcher, known = term_matcher(load_lexicon(SMALL), "改革")
    assert not known
    assert [ln.doc_id for ln in kwic(DOCS, matcher, term="改革")] == ["b"]


def test_kwic_without_term_or_category_is_an_error(small: Matcher) -> None:
    with pytest.raises(MobilizeError, match="give a term or a category"):
        kwic(DOCS, small)


# ----------------------------------------------------------------- coverage


def test_coverage_counts_hits_and_documents_per_term_and_category() -> None:
    cov = coverage(DOCS, load_lexicon(SMALL))
    terms = {(t.category, t.term): (t.hits, t.documents) for t in cov.terms}
    assert terms[("C3_economic_normal", "新常态")] == (2, 1)
    assert terms[("C3_economic_normal", "经济新常态")] == (1, 1)
    assert terms[("F1_population", "覆盖N亿人")] == (1, 1)
    cats = {c.category: c for c in cov.categories}
    c3 = cats["C3_economic_normal"]
    assert (c3.hits, c3.documents, c3.matched_terms, c3.terms) == (3, 2, 2, 3)
    assert (c3.top_term, c3.top_share, c3.dominated) == ("新常态", 0.6667, True)
    assert cov.documents == 3


def test_coverage_lists_terms_that_never_match_and_dominated_categories() -> None:
    cov = coverage(DOCS, load_lexicon(SMALL))
    assert {f"{t.category}:{t.term}" for t in cov.never_matched} == {
        "F1_population:全民参保", "P4_technology:互联网+", "C3_economic_normal:下行压力",
        "C4_digital_disruption:数字鸿沟", "D_social_security:养老保险"}
    # P4: 大数据 1, 人工智能 1 -> 50%, not more than half
    assert "P4_technology" not in [c.category for c in cov.dominated]
    assert "C3_economic_normal" in [c.category for c in cov.dominated]


def test_coverage_csv_has_a_total_row_per_category() -> None:
    rows = list(csv.DictReader(coverage_csv(coverage(DOCS, load_lexicon(SMALL))).splitlines()))
    total = next(r for r in rows if r["category"] == "C3_economic_normal" and r["term"] == "*")
    assert (total["hits"], total["documents"]) == ("3", "2")


# ----------------------------------------------------------------- coding sheets


def _many_docs() -> list[Document]:
    years = [1985, 1995, 2005, 2015, 2025]
    return [_doc(f"d{y}-{i}", y, f"第{i}段：社会保障和新常态。" * 3) for y in years for i in range(3)]


def test_sample_is_stratified_over_periods_and_deterministic_for_a_seed(small: Matcher) -> None:
    docs = _many_docs()
    rows = sample_sheet(docs, small, per_category=10, seed=7)
    again = sample_sheet(docs, small, per_category=10, seed=7)
    assert rows == again
    by_cat: dict[str, list[str]] = {}
    for r in rows:
        by_cat.setdefault(r["category"], []).append(r["period"])
    assert set(by_cat) == {"C3_economic_normal", "D_social_security"}
    for periods in by_cat.values():
        assert len(periods) == 10
        assert {p: periods.count(p) for p in set(periods)} == {
            "1980s": 2, "1990s": 2, "2000s": 2, "2010s": 2, "2020s": 2}
    assert [r["line_id"] for r in rows] == [f"L{n:05d}" for n in range(1, 21)]
    assert all(r["judgement"] == r["coder"] == r["note"] == "" for r in rows)


def test_another_seed_draws_other_lines(small: Matcher) -> None:
    docs = _many_docs()
    a = [(r["doc_id"], r["left"]) for r in sample_sheet(docs, small, per_category=5, seed=1)]
    b = [(r["doc_id"], r["left"]) for r in sample_sheet(docs, small, per_category=5, seed=2)]
    assert a != b


def test_sample_takes_every_hit_when_the_corpus_has_fewer(small: Matcher) -> None:
    rows = sample_sheet(DOCS, small, per_category=50, seed=1)
    assert sum(r["category"] == "C3_economic_normal" for r in rows) == 3


def test_sample_uses_the_given_periods(small: Matcher) -> None:
    rows = sample_sheet(DOCS, small, per_category=5, seed=1,
                        period=lambda y: "early" if (y or 0) < 2000 else "late")
    assert {r["period"] for r in rows} == {"early", "late"}


def test_decade_names_the_decade() -> None:
    assert (decade(1954), decade(2020), decade(None)) == ("1950s", "2020s", "unknown")


def test_sheet_round_trips_through_csv(small: Matcher, tmp_path: Path) -> None:
    rows = sample_sheet(DOCS, small, per_category=5, seed=1)
    path = tmp_path / "sheet.csv"
    write_sheet(rows, path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == SHEET_COLUMNS
        assert list(reader) == rows
    assert [j.relevant for j in read_sheet(path)] == [None] * len(rows)


# ----------------------------------------------------------------- agreement


def _sheet(tmp_path: Path, name: str, judgements: list[tuple[str, str, str, str]]) -> Path:
    path = tmp_path / name
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(SHEET_COLUMNS)
        for lid, cat, term, j in judgements:
            w.writerow([lid, cat, term, "d", "2020", "2020s", "", term, "", j, "x", ""])
    return path


CODED = [("L1", "C3", "新常态", "relevant"), ("L2", "C3", "新常态", "0"),
         ("L3", "C3", "下行压力", "1"), ("L4", "C3", "下行压力", "相关"),
         ("L5", "D", "社保", "not relevant"), ("L6", "D", "社保", "")]
# a second coder's copy of the same lines
CODED_2 = [("L1", "C3", "新常态", "1"), ("L2", "C3", "新常态", "1"),
           ("L3", "C3", "下行压力", "1"), ("L4", "C3", "下行压力", "0"),
           ("L5", "D", "社保", "0"), ("L6", "D", "社保", "1")]


def test_precision_per_term_and_category_counts_only_coded_lines(tmp_path: Path) -> None:
    result = agreement(read_sheet(_sheet(tmp_path, "a.csv", CODED)))
    table = {(p.level, p.category, p.term): (p.coded, p.relevant, p.precision)
             for p in result.precision}
    assert table == {
        ("category", "C3", ""): (4, 3, 0.75), ("term", "C3", "下行压力"): (2, 2, 1.0),
        ("term", "C3", "新常态"): (2, 1, 0.5),
        ("category", "D", ""): (1, 0, 0.0), ("term", "D", "社保"): (1, 0, 0.0)}
    assert (result.lines, result.coded, result.overall_precision) == (6, 5, 0.6)
    assert result.kappa is None


def test_kappa_over_lines_both_coders_coded_matches_sklearn(tmp_path: Path) -> None:
    from sklearn.metrics import cohen_kappa_score

    result = agreement(read_sheet(_sheet(tmp_path, "a.csv", CODED)),
                       read_sheet(_sheet(tmp_path, "b.csv", CODED_2)))
    a, b = [1, 0, 1, 1, 0], [1, 1, 1, 0, 0]  # L6 is not coded in the first sheet
    assert result.shared == 5
    assert result.observed_agreement == 0.6
    assert result.kappa == round(float(cohen_kappa_score(a, b)), 4)
    assert result.kappa_by_category["D"] is None  # one label only: kappa undefined


def test_two_coders_sheets_of_the_same_lines_count_each_line_once(tmp_path: Path) -> None:
    result = agreement(read_sheet(_sheet(tmp_path, "a.csv", CODED)),
                       read_sheet(_sheet(tmp_path, "b.csv", CODED_2)))
    table = {(p.level, p.category, p.term): (p.coded, p.relevant) for p in result.precision}
    # the first sheet's judgements (C3: 1 0 1 1; D: L5 0); L6, uncoded there, from the second
    assert table[("category", "C3", "")] == (4, 3)
    assert table[("category", "D", "")] == (2, 1)
    assert (result.coded, result.overall_precision) == (6, round(4 / 6, 4))


def test_unreadable_judgement_names_the_file_line_and_fix(tmp_path: Path) -> None:
    path = _sheet(tmp_path, "a.csv", [("L1", "C3", "新常态", "1"), ("L2", "C3", "新常态", "maybe")])
    with pytest.raises(MobilizeError) as info:
        read_sheet(path)
    assert info.value.line == 3 and "'maybe'" in info.value.problem
    assert "relevant or not relevant" in info.value.fix


def test_sheet_without_the_judgement_column_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("line_id,category,term\nL1,C3,新常态\n", encoding="utf-8")
    with pytest.raises(MobilizeError, match="no column judgement"):
        read_sheet(path)


def test_precision_csv_lists_every_row() -> None:
    result = agreement([Judgement("L1", "C3", "新常态", True), Judgement("L2", "C3", "新常态", False)])
    assert precision_csv(result).splitlines() == [
        "level,category,term,coded,relevant,precision",
        "category,C3,,2,1,0.5", "term,C3,新常态,2,1,0.5"]
