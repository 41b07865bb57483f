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

from pipeline import report
from pipeline.config import Settings
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
