"""Term timelines (issue 15, point 1): each term's first and last year as counted by the
lexicon and as a raw substring of the normalised text, new terms by period, and the section
in report.html / report.md / tables."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline import compare, report, report_timelines as rt, sanitize
from pipeline.config import Settings
from pipeline.lexicon import parse_lexicon_text
from pipeline.match import Matcher, literal_core
from tests.test_report import engine_run

LEX = """\
schema: 1
name: timeline-test
version: 0.1.0
dimensions:
  pathway:
    categories:
      - id: P4_technology
        name_zh: 技术
        name_en: Technology
        definition: Technology.
        terms:
          - pattern: '互联网\\+(?:政务|医疗)'
            label: 互联网+政务服务
          - pattern: '覆盖\\d+亿人'
            label: 社保*覆盖*
          - gap: [数据, 共享]
            max_gap: 4
          - term: 信息共享
            not_before: [信用]
        excluded:
          - term: 互联网+
            note: narrowed to the pattern
  challenge:
    categories:
      - id: C3_economic_normal
        name_zh: 经济新常态
        name_en: New normal
        definition: Slowdown.
        terms:
          - 新常态
          - 经济发展新常态
  domain:
    categories:
      - id: D_social_security
        name_zh: 社会保障
        name_en: Social security
        definition: The system.
        terms:
          - 养老保险
"""

#: doc id -> (year, normalised text). 2013: 新常态 only inside the longer 经济发展新常态 (the
#: category's longest match takes it) and 互联网+ outside the narrowed pattern; 2018: 信息共享
#: only after 信用 (its sense guard); "undated": no year.
DOCS = {
    "a2013": (2013, "适应经济发展新常态。实施互联网+行动计划。"),
    "b2015": (2015, "认识新常态。推进互联网+政务服务,养老保险覆盖9亿人。"),
    "c2018": (2018, "新常态下发展。互联网+医疗健康。信用信息共享。"),
    "undated": (None, "新常态。"),
}


def _lexicon():  # type: ignore[no-untyped-def]
    lex, problems = parse_lexicon_text(LEX, path=Path("t.yaml"))
    assert lex is not None, [str(p) for p in problems]
    return lex


def _tables(lex=None):  # type: ignore[no-untyped-def]
    """documents and term_counts as a run writes them, counted by the real matcher."""
    lex = lex or _lexicon()
    matcher = Matcher(lex)
    docs = pd.DataFrame({"doc_id": list(DOCS), "year": pd.array([y for y, _t in DOCS.values()],
                                                                 dtype="Int64"),
                         "tokens": [len(t) for _y, t in DOCS.values()]})
    rows = [{"doc_id": i, "dimension": d, "category": c, "term": term, "count": n}
            for i, (_y, text) in DOCS.items() for (d, c, term), n in matcher.count(text).items()]
    return docs, pd.DataFrame(rows), {i: t for i, (_y, t) in DOCS.items()}


def _row(tl: pd.DataFrame, term: str, kind: str | None = None) -> dict[str, object]:
    rows = tl[(tl["term"] == term) & ((tl["kind"] == kind) if kind else True)]
    assert len(rows) == 1, rows
    return {k: (None if pd.isna(v) else v) for k, v in rows.iloc[0].items()}


def _years(r: dict[str, object]) -> tuple[object, ...]:
    return (r["first_year"], r["last_year"], r["raw_first_year"], r["raw_last_year"],
            r["count"], r["raw_count"])


PERIODS = [compare.Period("2010-2014", 2010, 2014), compare.Period("2015-", 2015, None)]


def test_literal_core_is_the_one_literal_every_match_holds() -> None:
    assert literal_core(r"互联网\+(?:政务|医疗|教育)") == "互联网+"
    assert literal_core(r"(?:运用|利用|用)[^。,;]{0,6}大数据[^。,;]{0,4}(?:监管|治理)"
                        r"|大数据(?:监管|治理|比对)") == "大数据"
    assert literal_core("覆盖|参保") is None  # one of two literals: no single core
    assert literal_core(r"\d+") is None
    assert literal_core("(?i)abc") is None and literal_core("(unclosed") is None


def test_raw_counts_are_str_count_also_for_overlapping_needles() -> None:
    texts = {"x": "哈哈哈哈哈。互联网+互联网+", "y": "哈哈"}
    raw = rt.raw_years(texts, {"x": 2001, "y": None}, ["哈哈", "互联网+", "缺席"])
    got = {r.searched_as: (r.raw_count, r.raw_documents, r.raw_first_year)
           for r in raw.itertuples()}
    assert got["哈哈"] == (texts["x"].count("哈哈") + texts["y"].count("哈哈"), 2, 2001) == (3, 2, 2001)
    assert got["互联网+"] == (2, 1, 2001)
    assert got["缺席"][:2] == (0, 0) and pd.isna(got["缺席"][2])


def test_first_and_last_years_counted_and_raw() -> None:
    lex = _lexicon()
    docs, tc, texts = _tables(lex)
    tl = rt.term_timelines(docs, tc, lex, texts, PERIODS)
    # absorbed: 2013's 新常态 sits inside 经济发展新常态, which the category counts instead
    new_normal = _row(tl, "新常态")
    assert _years(new_normal) == (2015, 2018, 2013, 2018, 3, 4)  # (the undated one counts)
    assert new_normal["note"] == ("1 of 4 occurrences not counted: inside a longer match of "
                                  "the category")
    assert _years(_row(tl, "经济发展新常态")) == (2013, 2013, 2013, 2013, 1, 1)
    # a pattern: dated raw by its literal core; 2013's 互联网+行动计划 is not the pattern
    plus = _row(tl, "互联网+政务服务")
    assert (plus["kind"], plus["searched_as"]) == ("pattern", "互联网+")
    assert _years(plus) == (2015, 2018, 2013, 2018, 2, 3)
    # the narrowed seed, excluded: never counted, its raw years shown
    seed = _row(tl, "互联网+", "excluded")
    assert _years(seed) == (None, None, 2013, 2018, 0, 3)
    assert seed["note"] == "excluded: not counted"
    # a sense guard: 信用信息共享 is not counted, the raw text has it
    guarded = _row(tl, "信息共享")
    assert guarded["kind"] == "guarded" and _years(guarded) == (None, None, 2018, 2018, 0, 1)
    # a pattern whose literal core (覆盖) does not begin its label, and a gap: no raw search
    for term, kind in (("社保*覆盖*", "pattern"), ("数据…共享", "gap")):
        r = _row(tl, term)
        assert (r["kind"], r["searched_as"], r["raw_first_year"]) == (kind, "", None)
    assert _years(_row(tl, "社保*覆盖*"))[:2] == (2015, 2015)
    assert tl.columns.tolist() == rt.COLUMNS
    assert tl[["dimension", "category", "term", "kind"]].equals(
        tl[["dimension", "category", "term", "kind"]].sort_values(
            ["dimension", "category", "term", "kind"]))


def test_new_terms_by_period_use_the_counted_year_and_list_earlier_raw_ones() -> None:
    lex = _lexicon()
    docs, tc, texts = _tables(lex)
    tl = rt.term_timelines(docs, tc, lex, texts, PERIODS)
    new = rt.new_by_period(tl, PERIODS)
    c3 = rt.new_terms_table(new, "C3_economic_normal", PERIODS)
    assert c3.to_dict("list") == {
        "period": ["2010-2014", "2015-"], "new counted": [1, 1],
        "new terms (first counted year)": ["经济发展新常态 2013", "新常态 2015"],
        "first in the raw text, counted later or never": ["新常态 2013", ""]}
    p4 = rt.new_terms_table(new, "P4_technology", PERIODS)
    assert p4["first in the raw text, counted later or never"].tolist() == [
        "互联网+ 2013 · 互联网+政务服务 2013", "信息共享 2018"]


def test_top_terms_by_year_are_rates_on_a_true_year_axis() -> None:
    docs, tc, _texts = _tables()
    top = rt.top_terms_by_year(docs, tc, "C3_economic_normal")
    assert top.index.tolist() == ["新常态 (2)", "经济发展新常态 (1)"]  # (dated documents)
    assert top.columns.tolist() == list(range(2013, 2019))
    assert top.loc["新常态 (2)", 2015] == pytest.approx(1 / len(DOCS["b2015"][1]) * 10_000)
    assert top.loc["新常态 (2)", 2013] == 0
    assert top[2014].isna().all()  # no document in 2014


@pytest.fixture(scope="module")
def snippet_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("timelines")
    corpus = tmp / "snippets"
    corpus.mkdir()
    for doc_id, (year, text) in DOCS.items():
        name = f"{doc_id[1:]}.txt" if year else "undated.txt"
        (corpus / name).write_text(text + "\n", encoding="utf-8")
    (tmp / "lex.yaml").write_text(LEX, encoding="utf-8")
    run_dir = engine_run(corpus, tmp / "out", lexicon=tmp / "lex.yaml")
    mp = pytest.MonkeyPatch()
    mp.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    try:
        report.write_report(run_dir, Settings(lexicon=tmp / "lex.yaml",
                                              cache=tmp / "cache"))
    finally:
        mp.undo()
    return run_dir


def test_the_report_shows_the_timelines_with_an_anchor_in_the_contents(snippet_run: Path) -> None:
    md = (snippet_run / "report.md").read_text(encoding="utf-8")
    html = (snippet_run / "report.html").read_text(encoding="utf-8")
    # rows a person and a script can read: the term in its own cell, counted then raw years
    assert "| 新常态 | 2015 | 2018 | 2013 | 2018 | 3 | 4 | literal |" in md
    assert "| 互联网+ |  |  | 2013 | 2018 | 0 | 3 | excluded |" in md
    assert "| 互联网+政务服务 | 2015 | 2018 | 2013 | 2018 | 2 | 3 | pattern |" in md
    # Markdown-escaped like every other cell (the label 社保*覆盖* holds emphasis marks)
    assert f"| {sanitize.markdown('社保*覆盖*')} | 2015 | 2015 |" in md and "社保\\*" in md
    # in the contents, with the category's own anchor
    assert "- [时间线 Term timelines" in md and '<a id="timelines"></a>' in md
    assert "  - [C3\\_economic\\_normal 经济新常态 (challenge)](#timelines-C3_economic_normal)" in md
    assert '<a id="timelines-C3_economic_normal"></a>' in md
    assert '<a href="#timelines">' in html and '<section id="timelines-C3_economic_normal">' in html
    assert "<td>新常态</td><td>2015</td><td>2018</td><td>2013</td><td>2018</td>" in html
    assert (snippet_run / "figures" / "timeline_C3_economic_normal.png").is_file()
    assert (snippet_run / "figures" / "timeline_C3_economic_normal.svg").is_file()


def test_the_timeline_tables_are_csv_and_xlsx_and_byte_identical(snippet_run: Path,
                                                                  tmp_path: Path) -> None:
    csv_path = snippet_run / "tables" / "term_timelines.csv"
    tl = pd.read_csv(csv_path, dtype={"term": str}, keep_default_na=False)
    assert tl.columns.tolist() == rt.COLUMNS
    row = tl[(tl["term"] == "新常态")].iloc[0]
    assert (row["first_year"], row["last_year"], row["raw_first_year"]) == ("2015", "2018", "2013")
    assert (snippet_run / "tables" / "term_new_by_period.csv").is_file()
    wb = load_workbook(snippet_run / "tables" / "report.xlsx", read_only=True)
    assert {"term_timelines", "term_new_by_period"} <= set(wb.sheetnames)
    sheet = list(wb["term_timelines"].iter_rows(values_only=True))
    assert len(sheet) == len(tl) + 1
    before = {p.name: p.read_bytes() for p in (snippet_run / "tables").glob("term_*.csv")}
    before["report.md"] = (snippet_run / "report.md").read_bytes()
    report.write_report(snippet_run, Settings(lexicon=snippet_run.parent.parent / "lex.yaml",
                                              cache=tmp_path / "cache"))
    after = {p.name: p.read_bytes() for p in (snippet_run / "tables").glob("term_*.csv")}
    after["report.md"] = (snippet_run / "report.md").read_bytes()
    assert after == before


def test_without_the_corpus_the_raw_columns_say_why(tmp_path: Path) -> None:
    docs, tc, _texts = _tables()
    parts = rt.timeline_parts(docs, tc, lexicon=_lexicon(), texts=None, periods=PERIODS,
                              texts_note="the corpus folder x/y is not available")
    tl = parts.files["term_timelines"]
    assert tl["raw_first_year"].isna().all()
    assert _years(_row(tl, "新常态"))[:2] == (2015, 2018)
    assert "No raw years: the corpus folder x/y is not available." in parts.text
    assert [p.anchor for p in parts.categories] == [
        "timelines-C3_economic_normal", "timelines-D_social_security", "timelines-P4_technology"]
    assert re.fullmatch(r"timelines-2", rt.anchor("<bad id>", 1))


def test_a_counted_term_the_lexicon_no_longer_holds_keeps_its_counted_years() -> None:
    docs, tc, texts = _tables()
    gone = pd.DataFrame([{"doc_id": "c2018", "dimension": "challenge",
                          "category": "C3_economic_normal", "term": "旧提法", "count": 2}])
    tl = rt.term_timelines(docs, pd.concat([tc, gone], ignore_index=True), _lexicon(), texts,
                           PERIODS)
    r = _row(tl, "旧提法")
    assert (r["kind"], r["searched_as"], r["note"]) == (
        "counted", "", "not in the report's lexicon: no raw search")
    assert _years(r) == (2018, 2018, None, None, 2, None)
