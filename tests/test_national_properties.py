"""Properties of the national Government Work Reports that the codebook lists, read through
the report's own tables (tables/terms_by_year.csv, tables/trends.csv).

These are checks on the method, not targets to tune: policy language has a documented
history, and a correct pipeline shows it. Terms are found by text (every lexicon term whose
text contains the key, e.g. 经济新常态 for 新常态, or the pattern label 互联网+政务服务 for
互联网+), so narrowing a term in the lexicon does not silently disable a check; a check
skips, saying why, only when the lexicon holds no term containing its key.

中国式现代化 is the paper's frame, not a term of any one category: the project lexicon
counts it in a dimension of its own, ``frame``, which scores as no feature, pathway or
challenge. The checks run on the project lexicon as shipped.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_corpus
from test_report import engine_run

from pipeline import report, sanitize
from pipeline.config import Settings
from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon

pytestmark = pytest.mark.slow


FRAME_TERMS = ("中国式现代化",)


@pytest.fixture(scope="module")
def lexicon_path() -> Path:
    """The project lexicon as shipped (it holds the frame term in its ``frame`` dimension)."""
    return Settings().lexicon


@pytest.fixture(scope="module")
def national_report(tmp_path_factory: pytest.TempPathFactory, lexicon_path: Path) -> Path:
    corpus = shared_corpus("gwr-national-zh")
    run_dir = engine_run(corpus, tmp_path_factory.mktemp("national") / "out",
                         lexicon=lexicon_path)
    mp = pytest.MonkeyPatch()
    mp.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    try:
        report.write_report(run_dir, Settings(lexicon=lexicon_path))
    finally:
        mp.undo()
    return run_dir


@pytest.fixture(scope="module")
def terms_by_year(national_report: Path) -> pd.DataFrame:
    return pd.read_csv(national_report / "tables" / "terms_by_year.csv",
                       dtype={"term": str, "category": str})


def _with_key(terms: pd.DataFrame, key: str, lexicon: Path) -> pd.DataFrame:
    lexicon_terms = {t.text for t in load_lexicon(lexicon).terms()}
    holding = sorted(t for t in lexicon_terms if key in t)
    if not holding:
        pytest.skip(f"the lexicon holds no term containing {key!r}: nothing to check")
    return terms[terms["term"].isin(holding)]


@pytest.mark.parametrize("key,first_allowed", [
    ("互联网+", 2015),  # Internet Plus: the 2015 report launched it
    ("新常态", 2014),  # the "new normal": from 2014/2015
    ("共建共治共享", 2016),  # late 2010s (19th Party Congress, 2017)
    ("人工智能", 2015),  # AI: from the late 2010s
    ("中国式现代化", 2020),  # a 2020s term
    ("银发经济", 2020),  # the "silver economy": a 2020s term the lexicon holds
])
def test_term_appears_only_from_its_year_on(terms_by_year: pd.DataFrame, key: str,
                                            first_allowed: int, lexicon_path: Path) -> None:
    rows = _with_key(terms_by_year, key, lexicon_path)
    assert len(rows), f"no lexicon term containing {key!r} was counted in any report"
    years = sorted(set(rows["year"]))
    assert years[0] >= first_allowed, f"{key}: counted in {years[0]} (years: {years})"


def test_population_ageing_grows_over_the_decades(terms_by_year: pd.DataFrame,
                                                  national_report: Path,
                                                  lexicon_path: Path) -> None:
    rows = _with_key(terms_by_year, "人口老龄化", lexicon_path).copy()
    docs = pd.read_csv(national_report / "documents.csv", dtype={"doc_id": str})
    decade_tokens = docs.groupby(docs["year"] // 10 * 10)["tokens"].sum()
    rows["decade"] = rows["year"] // 10 * 10
    rate = (rows.groupby("decade")["count"].sum().reindex(decade_tokens.index, fill_value=0)
            / decade_tokens * 10_000)
    assert rate.loc[:1979].sum() == 0  # not a theme of the planned economy's reports
    assert rate.loc[2020] == rate.max() > rate.loc[1990] > 0
    assert rate.loc[2010] > rate.loc[1990]
    trends = pd.read_csv(national_report / "tables" / "trends.csv")
    c1 = trends[trends["category"] == rows["category"].iloc[0]].iloc[0]
    assert c1["trend"] == "increasing" and c1["rate_ratio_per_decade"] > 1
    assert c1["rr_ci_low"] > 1 and c1["theil_sen_per_year"] >= 0


def test_common_prosperity_is_in_the_reform_era_and_rises_again_in_the_2020s(
        terms_by_year: pd.DataFrame, national_report: Path, lexicon_path: Path) -> None:
    rows = _with_key(terms_by_year, "共同富裕", lexicon_path)
    years = set(rows["year"])
    assert any(1978 <= y <= 1999 for y in years)
    docs = pd.read_csv(national_report / "documents.csv", dtype={"doc_id": str})
    tokens = docs.groupby(docs["year"] // 10 * 10)["tokens"].sum()
    per = rows.groupby(rows["year"] // 10 * 10)["count"].sum().reindex(tokens.index,
                                                                       fill_value=0)
    rate = per / tokens * 10_000
    assert rate.loc[2020] > rate.loc[2000]


def test_every_year_table_row_sums_to_the_run_term_counts(terms_by_year: pd.DataFrame,
                                                          national_report: Path) -> None:
    tc = pd.read_csv(national_report / "term_counts.csv", dtype={"doc_id": str})
    assert terms_by_year["count"].sum() == tc["count"].sum()
    assert set(terms_by_year["year"]) <= set(range(1954, 2026))


def test_the_frame_term_is_counted_in_its_own_dimension_and_paired_with_nothing(
        terms_by_year: pd.DataFrame, national_report: Path, lexicon_path: Path) -> None:
    frame = {c.id for c in load_lexicon(lexicon_path).categories if c.dimension == "frame"}
    assert frame, "the project lexicon has no frame dimension"
    rows = terms_by_year[terms_by_year["term"].isin(FRAME_TERMS)]
    assert set(rows["category"]) <= frame and len(rows)
    # every report shows it: the run's scores carry a row per document for the frame category
    scores = pd.read_csv(national_report / "scores.csv", dtype={"doc_id": str})
    fr = scores[scores["dimension"] == "frame"]
    docs = pd.read_csv(national_report / "documents.csv", dtype={"doc_id": str})
    assert set(fr["doc_id"]) == set(docs["doc_id"])
    assert fr[fr["scope"] == "all"]["count"].sum() == rows["count"].sum()
    # and it is no feature, pathway or challenge: no co-occurrence pair holds it
    cooc = pd.read_csv(national_report / "cooccurrence.csv", dtype={"doc_id": str})
    assert not (cooc["dimension_a"] == "frame").any() and not (cooc["dimension_b"] == "frame").any()
    assert not cooc["category_a"].isin(frame).any() and not cooc["category_b"].isin(frame).any()


#: Issue 15's history of the national reports: (term, its category, first year, last year or
#: None when the issue gives only "from"). The years the report must show are derived from
#: the normalised texts below with ``str.count``; these are only checked against them.
ISSUE_15 = [("新常态", "C3_economic_normal", 2015, 2018),
            ("人工智能", "C4_digital_disruption", 2017, None),
            ("共建共治共享", "P3_co_governance", 2018, 2022),
            ("生态文明", "F4_human_nature", 2008, None),
            ("中国式现代化", "frame_chinese_modernization", 2023, None),
            ("互联网+", "P4_technology", 2015, None)]


def _md_rows(md: str, category: str, term: str) -> list[list[str]]:
    """The cells of the rows naming ``term`` in ``category``'s part of the term timelines."""
    start = md.index(f'<a id="timelines-{category}"></a>')
    end = md.find('<a id="', start + 1)
    cell = sanitize.markdown(term)
    return [[c.strip() for c in line.strip().strip("|").split(" | ")]
            for line in md[start:end].splitlines() if line.startswith(f"| {cell} |")]


@pytest.mark.parametrize("term,category,first,last", ISSUE_15)
def test_the_report_shows_each_terms_first_and_last_year(national_report: Path, term: str,
                                                         category: str, first: int,
                                                         last: int | None) -> None:
    corpus = load_corpus(shared_corpus("gwr-national-zh"), warn=False).documents
    docs = pd.read_csv(national_report / "documents.csv", dtype={"doc_id": str})
    run_ids = set(docs["doc_id"])
    raw = sorted({d.year for d in corpus if d.doc_id in run_ids and d.year is not None
                  and d.text.count(term)})
    assert raw, f"{term} is not in the national corpus"
    # what the corpus says, against the issue's history
    assert raw[0] == first and (last is None or raw[-1] == last), (term, raw)
    tc = pd.read_csv(national_report / "term_counts.csv", dtype={"doc_id": str, "term": str})
    hits = tc[(tc["category"] == category) & (tc["term"] == term) & (tc["count"] > 0)]
    counted = sorted(set(docs.set_index("doc_id").loc[hits["doc_id"], "year"].dropna()
                         .astype(int)))
    md = (national_report / "report.md").read_text(encoding="utf-8")
    rows = _md_rows(md, category, term)
    # | term | first | last | raw first | raw last | ...: counted years, then raw ones
    want = [sanitize.markdown(term), str(counted[0]) if counted else "",
            str(counted[-1]) if counted else "", str(raw[0]), str(raw[-1])]
    assert want in [r[:5] for r in rows], (term, rows)
    if counted:  # a term the lexicon counts: the row reads | 新常态 | 2015 | 2018 |
        assert counted[0] == first and (last is None or counted[-1] == last)
        assert f"| {sanitize.markdown(term)} | {first} | {counted[-1]} |" in md
    tl = pd.read_csv(national_report / "tables" / "term_timelines.csv",
                     dtype={"term": str, "category": str})
    rows_csv = tl[(tl["category"] == category) & (tl["term"] == term)]
    assert raw[0] in set(rows_csv["raw_first_year"]) and raw[-1] in set(rows_csv["raw_last_year"])


def test_narrowed_seeds_show_their_raw_first_year_in_the_report(national_report: Path) -> None:
    """互联网+ and 大数据 are narrowed to patterns: the pattern's row dates them by its literal
    core, and the excluded seed's row by its own text, both with the year str.count gives."""
    corpus = load_corpus(shared_corpus("gwr-national-zh"), warn=False).documents
    tl = pd.read_csv(national_report / "tables" / "term_timelines.csv",
                     dtype={"term": str, "searched_as": str}, keep_default_na=False)
    for seed in ("互联网+", "大数据"):
        first = min(d.year for d in corpus if d.year is not None and d.text.count(seed))
        rows = tl[(tl["searched_as"] == seed) & (tl["category"] == "P4_technology")]
        assert set(rows["kind"]) == {"pattern", "excluded"}, rows
        assert set(rows["raw_first_year"].astype(int)) == {first}
        pattern = rows[rows["kind"] == "pattern"].iloc[0]
        assert pattern["first_year"] == "" or int(pattern["first_year"]) >= first
