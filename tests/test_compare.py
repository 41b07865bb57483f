"""compare: pooled rates, bootstrap, trends, BH, keyness, periods: exact numbers, small tables."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pymannkendall
import pytest
from scipy.stats import false_discovery_control

from pipeline import compare
from pipeline.config import DEFAULT_PERIODS
from pipeline.errors import MobilizeError

SEED = 20240601


def _tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Three documents, two years, two categories.

    d1 (2015): 1 hit of F1 in 100 tokens  -> 100 per 10k
    d2 (2015): 9 hits of F1 in 9,900 tokens -> 9.09 per 10k
    d3 (2016): 4 hits of F1 and 2 of P4 in 2,000 tokens
    """
    documents = pd.DataFrame({
        "doc_id": ["d1", "d2", "d3"], "year": pd.array([2015, 2015, 2016], dtype="Int64"),
        "level": ["national", "provincial", "provincial"], "tokens": [100, 9900, 2000],
        "sentences": [10, 200, 50], "paragraphs": [2, 20, 5]})
    scores = pd.DataFrame({
        "doc_id": ["d1", "d1", "d2", "d2", "d3", "d3"], "scope": ["all"] * 6,
        "dimension": ["feature", "pathway"] * 3,
        "category": ["F1_population", "P4_technology"] * 3,
        "count": [1, 0, 9, 0, 4, 2], "tokens": [100, 100, 9900, 9900, 2000, 2000]})
    scores["rate_per_10k"] = scores["count"] / scores["tokens"] * 10_000
    term_counts = pd.DataFrame({
        "doc_id": ["d1", "d2", "d2", "d3", "d3"],
        "dimension": ["feature", "feature", "feature", "feature", "pathway"],
        "category": ["F1_population", "F1_population", "F1_population", "F1_population",
                     "P4_technology"],
        "term": ["全覆盖", "全覆盖", "参保率", "参保率", "大数据"], "count": [1, 6, 3, 4, 2]})
    return documents, scores, term_counts


def test_pooled_rate_is_sum_of_counts_over_sum_of_tokens_not_mean_of_rates() -> None:
    documents, scores, _ = _tables()
    rates = compare.pooled_rates(documents, scores, "year", seed=SEED, n_boot=200)
    f1_2015 = rates[(rates["year"] == 2015) & (rates["category"] == "F1_population")].iloc[0]
    assert f1_2015["count"] == 10 and f1_2015["tokens"] == 10_000 and f1_2015["documents"] == 2
    assert f1_2015["rate_per_10k"] == pytest.approx(10.0)
    mean_of_rates = scores[(scores["doc_id"].isin(["d1", "d2"]))
                           & (scores["category"] == "F1_population")]["rate_per_10k"].mean()
    assert mean_of_rates == pytest.approx((100 + 9 / 9900 * 10_000) / 2)
    assert abs(mean_of_rates - f1_2015["rate_per_10k"]) > 40
    p4_2016 = rates[(rates["year"] == 2016) & (rates["category"] == "P4_technology")].iloc[0]
    assert p4_2016["rate_per_10k"] == pytest.approx(10.0)
    assert list(rates["year"]) == [2015, 2015, 2016, 2016]


def test_bootstrap_ci_is_deterministic_for_a_seed_and_brackets_the_rate() -> None:
    documents, scores, _ = _tables()
    one = compare.pooled_rates(documents, scores, "level", seed=SEED, n_boot=500)
    two = compare.pooled_rates(documents, scores, "level", seed=SEED, n_boot=500)
    other = compare.pooled_rates(documents, scores, "level", seed=SEED + 1, n_boot=500)
    pd.testing.assert_frame_equal(one, two)
    prov = one[(one["level"] == "provincial") & (one["category"] == "F1_population")].iloc[0]
    assert prov["rate_per_10k"] == pytest.approx(13 / 11900 * 10_000)
    assert prov["ci_low"] <= prov["rate_per_10k"] <= prov["ci_high"]
    assert prov["ci_low"] < prov["ci_high"]
    # With 2 documents the percentiles sit at the extremes for any seed; with 30
    # documents the replicates (and so the interval ends) depend on the seed.
    counts = np.arange(30, dtype=float).reshape(30, 1)
    tokens = np.full(30, 1000.0)
    r1 = compare.bootstrap_rates(counts, tokens, n_boot=50, rng=np.random.default_rng(SEED))
    r2 = compare.bootstrap_rates(counts, tokens, n_boot=50, rng=np.random.default_rng(SEED))
    r3 = compare.bootstrap_rates(counts, tokens, n_boot=50, rng=np.random.default_rng(SEED + 1))
    assert np.array_equal(r1, r2) and not np.array_equal(r1, r3)
    assert other.shape == one.shape
    # One document: every resample is that document, so the interval is a point.
    nat = one[(one["level"] == "national") & (one["category"] == "F1_population")].iloc[0]
    assert nat["ci_low"] == nat["ci_high"] == pytest.approx(100.0)


def test_bootstrap_rates_resample_documents_with_replacement() -> None:
    counts = np.array([[1.0], [9.0]])
    tokens = np.array([100.0, 9900.0])
    reps = compare.bootstrap_rates(counts, tokens, n_boot=2000, rng=np.random.default_rng(1))
    # The only possible resamples of two documents: {d1,d1}, {d2,d2}, {d1,d2}.
    possible = {100.0, round(9 / 9900 * 10_000, 9), 10.0}
    assert {round(v, 9) for v in reps[:, 0]} == possible


def test_rate_difference_between_two_groups_with_ci() -> None:
    documents, scores, _ = _tables()
    diff = compare.rate_differences(documents, scores, "year", "2016", "2015", seed=SEED,
                                    n_boot=300, min_docs=1)
    f1 = diff[diff["category"] == "F1_population"].iloc[0]
    assert f1["rate_a"] == pytest.approx(20.0) and f1["rate_b"] == pytest.approx(10.0)
    assert f1["difference"] == pytest.approx(10.0) and f1["ratio"] == pytest.approx(2.0)
    assert (f1["docs_a"], f1["docs_b"]) == (1, 2)
    assert (f1["tokens_a"], f1["tokens_b"]) == (2000, 10_000)
    assert f1["ci_low"] <= 10.0 <= f1["ci_high"]
    assert f1["rr_ci_low"] < 2.0 < f1["rr_ci_high"] and f1["inference"] == ""
    # With the default guard, 1 and 2 documents are descriptive only: no interval, no p.
    guarded = compare.rate_differences(documents, scores, "year", "2016", "2015", seed=SEED,
                                       n_boot=300).set_index("category").loc["F1_population"]
    assert guarded["difference"] == pytest.approx(10.0)
    assert np.isnan(guarded["ci_low"]) and np.isnan(guarded["p_value"])
    assert pd.isna(guarded["significant"])
    assert guarded["inference"] == ("descriptive only: A has 1 document and B has 2 documents "
                                    "(fewer than 5)")
    with pytest.raises(MobilizeError, match="no document has year = '1999'"):
        compare.rate_differences(documents, scores, "year", "1999", "2015", seed=SEED)


def test_mann_kendall_on_a_monotone_series_matches_pymannkendall() -> None:
    values = [1.0, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    s, tau, p = compare.mann_kendall(values)
    assert s == 45 and tau == 1.0
    z = (45 - 1) / math.sqrt(10 * 9 * 25 / 18)
    assert p == pytest.approx(math.erfc(z / math.sqrt(2)))
    ref = pymannkendall.original_test(values)
    assert p == pytest.approx(ref.p) and s == ref.s
    assert compare.theil_sen(list(range(2000, 2010)), [2 * v for v in values]) == 2.0


@pytest.mark.parametrize("values", [
    [3.0, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5],  # ties
    [2.0, 2, 2, 1, 1, 3, 3, 3, 2, 2],  # many ties
    [5.0, 4, 4.5, 3, 2, 2.5, 1, 0.5],  # decreasing
    list(np.round(np.random.default_rng(7).normal(size=25), 1)),
])
def test_mann_kendall_matches_pymannkendall_with_ties(values: list[float]) -> None:
    s, tau, p = compare.mann_kendall(values)
    ref = pymannkendall.original_test(values)
    assert s == ref.s and tau == pytest.approx(ref.Tau) and p == pytest.approx(ref.p)


def _step_series(levels: list[float], lengths: list[int], noise: float = 0.0,
                 seed: int = 0) -> np.ndarray:
    x = np.repeat(levels, lengths).astype(float)
    return x + np.random.default_rng(seed).normal(scale=noise, size=len(x)) if noise else x


def _standardised(x: np.ndarray) -> np.ndarray:
    return (x - x.mean()) / x.std(ddof=1)


def test_pelt_finds_known_steps_and_no_step_in_a_flat_series() -> None:
    one = _standardised(_step_series([1.0, 5.0], [10, 10], noise=0.2))
    assert compare.pelt_l2(one, 3.0, min_size=3) == [10, 20]
    two = _standardised(_step_series([1.0, 6.0, 2.0], [8, 9, 7], noise=0.3, seed=1))
    assert compare.pelt_l2(two, 3.0, min_size=3) == [8, 17, 24]
    noise = _standardised(np.random.default_rng(3).normal(size=30))
    assert compare.pelt_l2(noise, 3.0, min_size=3) == [30]  # no change in pure noise
    # The minimum segment: a 2-year blip is not a segment of its own with min_size 3.
    blip = _standardised(_step_series([0.0, 8.0, 0.0], [6, 2, 6]))
    assert all(b - a >= 3 for a, b in zip([0, *compare.pelt_l2(blip, 3.0)],
                                          compare.pelt_l2(blip, 3.0)))
    assert compare.pelt_l2([1.0, 2.0], 3.0, min_size=3) == []  # too short to cut


def test_pelt_is_the_exact_optimum_of_the_penalised_l2_cost() -> None:
    """Brute force over every segmentation with segments of at least 3 points."""
    import itertools

    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(6, 13))
        x = _standardised(rng.normal(size=n) + np.repeat(rng.normal(size=3) * 2, n)[:n])

        def total(ends: tuple[int, ...], x: np.ndarray = x) -> float:
            starts = (0, *ends[:-1])
            return sum(((x[a:b] - x[a:b].mean()) ** 2).sum() + 3.0 for a, b in zip(starts, ends))

        best = min(total((*inner, n)) for k in range(n // 3)
                   for inner in itertools.combinations(range(3, n - 2), k)
                   if all(b - a >= 3 for a, b in zip((0, *inner), (*inner, n))))
        assert total(tuple(compare.pelt_l2(x, 3.0))) == pytest.approx(best)


def test_pelt_equals_ruptures_when_it_is_installed() -> None:
    ruptures = pytest.importorskip("ruptures")
    rng = np.random.default_rng(5)
    for trial in range(120):
        n = int(rng.integers(3, 40))
        x = (rng.normal(size=n) if trial % 3 == 0 else
             rng.integers(0, 3, size=n).astype(float) if trial % 3 == 1 else
             np.repeat(rng.normal(size=4) * 3, n)[:n] + rng.normal(size=n) * 0.3)
        if x.std() > 0:
            x = _standardised(x)
        for min_size, pen in ((3, 3.0), (2, 1.0)):
            ref = ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(
                x.reshape(-1, 1)).predict(pen=pen)
            assert compare.pelt_l2(x, pen, min_size=min_size) == ref, (trial, min_size, pen)


def test_change_points_report_the_first_year_of_each_new_segment() -> None:
    years = list(range(2000, 2020))
    rates = list(_step_series([2.0, 9.0], [12, 8], noise=0.3, seed=2))
    yearly = pd.DataFrame({"year": years + years[:5], "dimension": ["feature"] * 25,
                           "category": ["F1_population"] * 20 + ["F2_common_prosperity"] * 5,
                           "tokens": [1000] * 25, "rate_per_10k": rates + [1.0] * 5})
    out = compare.change_points(yearly).set_index("category")["change_years"]
    assert out["F1_population"] == "2012"
    assert out["F2_common_prosperity"] == ""  # fewer than 8 years: not searched


def test_benjamini_hochberg_on_known_pvalues() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    adj = compare.benjamini_hochberg(p)
    assert adj == pytest.approx([0.02, 0.04, 0.04, 0.02])
    assert adj == pytest.approx(false_discovery_control(p))
    with_nan = compare.benjamini_hochberg([0.01, float("nan"), 0.04])
    assert math.isnan(with_nan[1]) and with_nan[0] == pytest.approx(0.02)


def test_trends_test_long_series_and_explain_short_ones() -> None:
    years = list(range(2000, 2012))
    yearly = pd.DataFrame({
        "year": years * 2, "dimension": ["feature"] * 24,
        "category": ["F1_population"] * 12 + ["F2_common_prosperity"] * 12,
        "tokens": [1000] * 24,
        "rate_per_10k": [float(i) for i in range(12)] + [5.0, 3, 5, 3, 5, 3, 5, 3, 5, 3, 5, 3]})
    out = compare.trends(yearly)
    f1 = out[out["category"] == "F1_population"].iloc[0]
    assert f1["trend"] == "increasing" and f1["slope_per_year"] == 1.0 and f1["years"] == 12
    assert f1["p_adjusted"] == pytest.approx(min(1.0, f1["p_value"] * 2 / 1))
    f2 = out[out["category"] == "F2_common_prosperity"].iloc[0]
    assert f2["trend"] == "no trend"
    short = compare.trends(yearly[yearly["year"] < 2005])
    assert (short["trend"] == "").all()
    assert short["note"].str.startswith("too few years with documents (5, fewer than 8)").all()


def test_log_odds_with_dirichlet_prior_matches_a_hand_computation() -> None:
    y_a = pd.Series({"x": 10, "y": 0})
    y_b = pd.Series({"x": 2, "y": 5})
    alpha = pd.Series({"x": 1.0, "y": 1.0})
    out = compare.log_odds_dirichlet(y_a, y_b, 100, 100, alpha)
    delta_x = math.log(11 / 91) - math.log(3 / 99)
    z_x = delta_x / math.sqrt(1 / 11 + 1 / 3)
    assert out.loc["x", "delta"] == pytest.approx(delta_x)
    assert out.loc["x", "z"] == pytest.approx(z_x) == pytest.approx(2.12415, abs=1e-5)
    delta_y = math.log(1 / 101) - math.log(6 / 96)
    assert out.loc["y", "z"] == pytest.approx(delta_y / math.sqrt(1 / 1 + 1 / 6))
    assert out.loc["y", "z"] < 0 < out.loc["x", "z"]


def test_keyness_ranks_terms_overall_and_within_each_category() -> None:
    documents, _, term_counts = _tables()
    out = compare.keyness(documents, term_counts, "year", "2016", "2015", alpha0=100)
    overall = out[out["within"] == "all"].set_index("term")

    def z(ya: int, yb: int, pooled: int) -> float:
        a_w = 100 * pooled / 12_000  # alpha0 * pooled count / pooled tokens
        delta = (math.log((ya + a_w) / (2000 + 100 - ya - a_w))
                 - math.log((yb + a_w) / (10_000 + 100 - yb - a_w)))
        return delta / math.sqrt(1 / (ya + a_w) + 1 / (yb + a_w))

    expected = {"大数据": z(2, 0, 2), "参保率": z(4, 3, 7), "全覆盖": z(0, 7, 7)}
    for term, value in expected.items():
        assert overall.loc[term, "z"] == pytest.approx(value)
    # Two hits against none is weaker evidence than four against three at these
    # sizes: the prior keeps rare terms from topping the list.
    assert list(overall.index) == ["参保率", "大数据", "全覆盖"]
    assert overall.loc["大数据", "category"] == "P4_technology"
    assert (overall.loc["大数据", "count_a"], overall.loc["大数据", "count_b"]) == (2, 0)
    within = out[out["within"] == "F1_population"]
    assert set(within["term"]) == {"全覆盖", "参保率"}
    assert within.iloc[0]["term"] == "参保率"  # 4 of 2,000 vs 3 of 10,000: a 2016 term


def test_cooccurrence_per_group_divides_by_the_groups_sentences() -> None:
    documents, _, _ = _tables()
    cooc = pd.DataFrame({
        "doc_id": ["d1", "d2", "d3", "d3"], "unit": ["sentence", "sentence", "sentence",
                                                     "paragraph"],
        "dimension_a": ["feature"] * 4, "category_a": ["F1_population"] * 4,
        "dimension_b": ["pathway"] * 4, "category_b": ["P4_technology"] * 4,
        "count": [1, 3, 2, 1]})
    out = compare.cooccurrence_by(documents, cooc, "year")
    assert list(out["count"]) == [4, 2]
    assert list(out["per_1k_units"]) == pytest.approx([4 / 210 * 1000, 2 / 50 * 1000])


def test_term_counts_by_year_and_category_dominance() -> None:
    documents, _, term_counts = _tables()
    by_year = compare.term_counts_by(documents, term_counts, "year")
    row = by_year[(by_year["year"] == 2015) & (by_year["term"] == "全覆盖")].iloc[0]
    assert (row["count"], row["documents_with"], row["tokens"]) == (7, 2, 10_000)
    dom = compare.category_dominance(term_counts).set_index("category")
    assert dom.loc["F1_population", "top_term"] == "全覆盖"
    assert dom.loc["F1_population", "top_share"] == pytest.approx(7 / 14)
    assert dom.loc["P4_technology", "top_share"] == 1.0


def test_shipped_periods_files_load_in_order_without_overlap() -> None:
    periods = compare.load_periods(DEFAULT_PERIODS)
    assert [p.start for p in periods] == [1954, 1978, 1993, 2003, 2013, 2023]
    assert periods[-1].end is None
    assert compare.period_of(1992, periods).startswith("1978-1992")
    assert compare.period_of(2026, periods).startswith("2023-")
    assert compare.period_of(1950, periods) is None
    fyp = compare.load_periods(DEFAULT_PERIODS.parent / "periods-five-year-plans.yaml")
    assert compare.period_of(2025, fyp) == "2021-2025 十四五"
    # A document with no year (documents.csv reads it as pd.NA) is in no period.
    for missing in (None, float("nan"), pd.NA):
        assert compare.period_of(missing, periods) is None


@pytest.mark.parametrize("text,line,message", [
    ("periods:\n  - {name: a, start: 1990, end: 1995}\n  - {name: b, start: 1995}\n", 3,
     "overlaps"),
    ("- {name: a, start: 1990, end: 1980}\n", 1, "ends (1980) before it starts (1990)"),
    ("- {name: a, start: 1990}\n- {start: 2000}\n", 2, "needs `name` and `start`"),
    ("- {name: a, start: '1990'}\n", 1, "must be years"),
    ("periods: [\n", 2, "not valid YAML"),
])
def test_bad_periods_file_names_the_file_line_and_fix(tmp_path: Path, text: str, line: int,
                                                      message: str) -> None:
    path = tmp_path / "periods.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MobilizeError) as err:
        compare.load_periods(path)
    assert message in err.value.message and err.value.path == str(path)
    assert err.value.line == line and err.value.fix


def test_a_periods_file_saved_as_gbk_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "periods.yaml"
    path.write_bytes("- {name: early, start: 2010, end: 2015}\n- {name: 十四五, start: 2021}\n"
                     .encode("gbk"))
    with pytest.raises(MobilizeError) as err:
        compare.load_periods(path)
    assert "not UTF-8" in err.value.message and err.value.path == str(path)
    assert err.value.line == 2 and "Save the periods file as UTF-8" in err.value.fix


def _run_tables() -> compare.RunTables:
    documents, scores, term_counts = _tables()
    documents["corpus"] = "toy"
    cooc = pd.DataFrame(columns=["doc_id", "unit", "dimension_a", "category_a", "dimension_b",
                                 "category_b", "count"])
    return compare.RunTables(documents, term_counts, scores, cooc, {})


def test_compare_groups_defaults_to_the_latest_year_against_the_one_before() -> None:
    result = compare.compare_groups(_run_tables(), "year", seed=SEED, n_boot=100)
    assert (result.a, result.b) == ("2016", "2015")
    assert result.label == "year-2016-vs-2015"
    f1 = result.differences.set_index("category").loc["F1_population"]
    assert f1["difference"] == pytest.approx(20.0 - 10.0)
    assert set(result.rates["group"]) == {"A", "B"}


def test_compare_groups_finds_a_period_by_a_prefix_of_its_name() -> None:
    periods = [compare.Period("2010-2015 early", 2010, 2015),
               compare.Period("2016- late", 2016, None)]
    result = compare.compare_groups(_run_tables(), "period", "2016", "2010", periods=periods,
                                    seed=SEED, n_boot=50)
    assert (result.a, result.b) == ("2016- late", "2010-2015 early")
    with pytest.raises(MobilizeError, match="needs --a and --b"):
        compare.compare_groups(_run_tables(), "level", seed=SEED)
    with pytest.raises(MobilizeError, match="needs a periods file"):
        compare.compare_groups(_run_tables(), "period", seed=SEED)


def test_compare_groups_keeps_only_the_years_asked_for() -> None:
    result = compare.compare_groups(_run_tables(), "level", "provincial", "national",
                                    seed=SEED, n_boot=50, years=(2015, 2015))
    f1 = result.differences.set_index("category").loc["F1_population"]
    # 2015 only: provincial is d2 (9 in 9,900), national d1 (1 in 100).
    assert f1["rate_a"] == pytest.approx(9 / 9900 * 10_000)
    assert f1["rate_b"] == pytest.approx(100.0)
    assert result.label.endswith("-2015-2015")


def test_combined_runs_prefix_doc_ids_with_the_corpus() -> None:
    one = _run_tables()
    other = compare.RunTables(one.documents.assign(corpus="other"), one.term_counts,
                              one.scores, one.cooccurrence, {})
    both = compare.combine_runs([one, other])
    assert list(both.documents["doc_id"]) == ["toy/d1", "toy/d2", "toy/d3", "other/d1",
                                              "other/d2", "other/d3"]
    assert set(both.scores["doc_id"]) == set(both.documents["doc_id"])
    with pytest.raises(MobilizeError, match="same corpus name"):
        compare.combine_runs([one, one])


def test_keyness_default_prior_is_a_tenth_of_the_smaller_group() -> None:
    documents, _, term_counts = _tables()
    out = compare.keyness(documents, term_counts, "year", "2016", "2015")
    row = out[(out["within"] == "all") & (out["term"] == "参保率")].iloc[0]
    # alpha0 = a tenth of the smaller group (2,000 tokens in 2016); alpha_w = alpha0 x the
    # term's pooled frequency (4 + 3 in 2,000 + 10,000 tokens).
    a0 = 0.1 * 2000
    a_w = a0 * 7 / 12_000
    delta = (math.log((4 + a_w) / (2000 + a0 - 4 - a_w))
             - math.log((3 + a_w) / (10_000 + a0 - 3 - a_w)))
    assert row["z"] == pytest.approx(delta / math.sqrt(1 / (4 + a_w) + 1 / (3 + a_w)))


def test_pooled_rates_from_a_shared_matrix_equal_those_built_for_each_call() -> None:
    documents, scores, _ = _tables()
    matrix = compare.doc_matrix(documents, scores, "all")
    for by in (None, "year", "level"):
        own = compare.pooled_rates(documents, scores, by, seed=SEED, n_boot=300)
        shared = compare.pooled_rates(documents, scores, by, seed=SEED, n_boot=300,
                                      matrix=matrix)
        pd.testing.assert_frame_equal(own, shared)
    with pytest.raises(ValueError, match="not of these documents"):
        compare.pooled_rates(documents.iloc[:2], scores, "year", seed=SEED, matrix=matrix)


def test_doc_matrix_sums_counts_per_document_and_category_zero_where_absent() -> None:
    documents, scores, _ = _tables()
    extra = pd.DataFrame({"doc_id": ["d1"], "scope": ["all"], "dimension": ["feature"],
                          "category": ["F1_population"], "count": [5], "tokens": [100],
                          "rate_per_10k": [500.0]})
    docs = pd.concat([documents, documents.iloc[[0]],
                      documents.iloc[[0]].assign(doc_id="d4")], ignore_index=True)
    counts, tokens = compare.doc_matrix(docs, pd.concat([scores, extra]), "all")
    assert list(counts.index) == ["d1", "d2", "d3", "d1", "d4"]
    assert list(counts.columns) == [("feature", "F1_population"), ("pathway", "P4_technology")]
    assert counts.to_numpy().tolist() == [[6, 0], [9, 0], [4, 2], [6, 0], [0, 0]]
    assert counts.to_numpy().dtype == float and list(tokens) == [100, 9900, 2000, 100, 100]


def test_percentile_interval_leaves_out_replicates_without_tokens() -> None:
    rng = np.random.default_rng(SEED)
    reps = rng.gamma(2.0, 3.0, size=(500, 4))
    reps[rng.random(500) < 0.2] = np.nan  # replicates that drew no tokens
    q_lo, q_hi = (1 - 0.95) / 2 * 100, (1 + 0.95) / 2 * 100  # (as computed there)
    lo, hi = compare._percentile_ci(reps, 0.95)
    assert np.array_equal(lo, np.nanpercentile(reps, q_lo, axis=0))  # to the last bit
    assert np.array_equal(hi, np.nanpercentile(reps, q_hi, axis=0))
    reps[3, 1] = np.nan  # NaN in part of a replicate: still left out cell by cell
    lo, hi = compare._percentile_ci(reps, 0.95)
    assert np.array_equal(lo, np.nanpercentile(reps, q_lo, axis=0))
    assert np.array_equal(hi, np.nanpercentile(reps, q_hi, axis=0))


def test_keyness_within_a_category_is_the_log_odds_of_that_category_alone() -> None:
    documents, _, term_counts = _tables()
    out = compare.keyness(documents, term_counts, "year", "2016", "2015", alpha0=100)
    tc = term_counts.merge(documents[["doc_id", "year"]], on="doc_id")
    for cat, g in tc.groupby("category"):
        y_a = g[g["year"] == 2016].groupby("term")["count"].sum()
        y_b = g[g["year"] == 2015].groupby("term")["count"].sum()
        alpha = 100 * g.groupby("term")["count"].sum() / 12_000
        alone = compare.log_odds_dirichlet(y_a, y_b, 2000, 10_000, alpha, 100)
        within = out[out["within"] == cat].set_index("term")
        assert set(within["category"]) == {cat} and len(within) == len(alone)
        for term, row in alone.iterrows():
            assert within.loc[term, "z"] == row["z"]
            assert (within.loc[term, "count_a"], within.loc[term, "count_b"]) == (
                row["count_a"], row["count_b"])


def test_category_dominance_breaks_ties_by_term_and_keeps_empty_categories_out() -> None:
    tc = pd.DataFrame({"doc_id": ["d1", "d2", "d1", "d1"],
                       "dimension": ["feature", "feature", "feature", "pathway"],
                       "category": ["F1_population"] * 3 + ["P4_technology"],
                       "term": ["乙", "甲", "乙", "大数据"], "count": [1, 2, 1, 0]})
    dom = compare.category_dominance(tc)
    assert list(dom["category"]) == ["F1_population", "P4_technology"]
    assert list(dom["top_term"]) == ["乙", "大数据"]  # 2 each: the first term
    assert list(dom["terms_matched"]) == [2, 1] and list(dom["count"]) == [4, 0]
    assert dom["top_share"].iloc[0] == 0.5 and math.isnan(dom["top_share"].iloc[1])


def _units() -> pd.DataFrame:
    """Paragraphs of the three documents of ``_tables`` (scope all): d1 one paragraph
    (so nothing to resample), d2 three paragraphs holding 0, 3 and 6 hits of F1, d3 two."""
    return pd.DataFrame({
        "doc_id": ["d1", "d2", "d2", "d2", "d3", "d3", "d3"],
        "scope": ["all"] * 7, "block": [0, 0, 1, 2, 0, 1, 1],
        "category": ["F1_population", "", "F1_population", "F1_population", "F1_population",
                     "F1_population", "P4_technology"],
        "count": [1, 0, 3, 6, 4, 0, 2], "tokens": [100, 3300, 3300, 3300, 1000, 1000, 1000]})


def test_a_one_document_year_gets_an_interval_from_its_paragraphs() -> None:
    documents, scores, _ = _tables()
    units = _units()
    par = compare.paragraph_matrix(documents, units, scores, "all")
    assert par is not None and par.counts.shape == (6, 2)
    one = compare.pooled_rates(documents, scores, "doc_id", seed=SEED, n_boot=400,
                               paragraphs=par)
    f1 = one[one["category"] == "F1_population"].set_index("doc_id")
    # d2 alone (one document, three paragraphs): a real interval, which holds its rate.
    d2 = f1.loc["d2"]
    assert d2["ci_basis"] == "paragraphs"
    assert d2["ci_low"] < d2["rate_per_10k"] < d2["ci_high"]
    # d1 has one paragraph: truly nothing to resample, and only then a point.
    assert f1.loc["d1", "ci_low"] == f1.loc["d1", "ci_high"] == pytest.approx(100.0)
    # Without units: documents only, and d2's interval is a point, as before.
    plain = compare.pooled_rates(documents, scores, "doc_id", seed=SEED, n_boot=400)
    p2 = plain[plain["category"] == "F1_population"].set_index("doc_id").loc["d2"]
    assert p2["ci_low"] == p2["ci_high"] and p2["ci_basis"] == "documents"
    # Same seed, same numbers.
    again = compare.pooled_rates(documents, scores, "doc_id", seed=SEED, n_boot=400,
                                 paragraphs=par)
    pd.testing.assert_frame_equal(one, again)


def test_nested_bootstrap_is_wider_than_documents_alone_and_centred() -> None:
    # 6 documents of 10 paragraphs; the documents' rates differ and so do their paragraphs.
    rng = np.random.default_rng(7)
    counts = rng.poisson(3.0, size=(60, 1)).astype(float)
    tokens = np.full(60, 1000.0)
    para_doc = np.repeat(np.arange(6), 10)
    reps = compare.nested_bootstrap_rates(counts, tokens, para_doc, 6, n_boot=2000,
                                          rng=np.random.default_rng(1))
    doc_counts = np.array([counts[para_doc == d].sum(axis=0) for d in range(6)])
    doc_reps = compare.bootstrap_rates(doc_counts, np.full(6, 10_000.0), n_boot=2000,
                                       rng=np.random.default_rng(1))
    rate = counts.sum() / tokens.sum() * 10_000
    assert np.nanmean(reps) == pytest.approx(rate, rel=0.02)
    assert np.nanstd(reps) > np.nanstd(doc_reps)


def _synthetic_years(rates: dict[str, np.ndarray], years: np.ndarray, tokens: np.ndarray,
                     seed: int, nb_size: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One document per year; each category's counts drawn at the given rates per 10k
    (Poisson, or negative binomial with ``nb_size`` for overdispersed counts)."""
    rng = np.random.default_rng(seed)
    ids = [f"d{y}" for y in years]
    documents = pd.DataFrame({"doc_id": ids, "year": pd.array(years, dtype="Int64"),
                              "tokens": tokens})
    rows = []
    for cat, rate in rates.items():
        mean = rate * tokens / 10_000
        counts = (rng.poisson(mean) if nb_size is None
                  else rng.negative_binomial(nb_size, nb_size / (nb_size + mean)))
        rows += [{"doc_id": d, "scope": "all", "dimension": "feature", "category": cat,
                  "count": int(c), "tokens": int(t)} for d, c, t in zip(ids, counts, tokens)]
    return documents, pd.DataFrame(rows)


def test_count_trend_finds_a_known_rate_ratio_and_calls_a_flat_series_no_trend() -> None:
    years = np.array([y for y in range(1978, 2026) if y not in (1986, 1990, 2001)])  # uneven
    tokens = np.random.default_rng(3).integers(12_000, 30_000, size=len(years))
    decades = (years - years.mean()) / 10
    rates = {"F1_rising": 6.0 * 1.5 ** decades, "F2_flat": np.full(len(years), 6.0),
             "F3_sparse": np.where(np.isin(years, [1990, 2003, 2017]), 8.0, 0.0)}
    documents, scores = _synthetic_years(rates, years, tokens, seed=11)
    out = compare.count_trends(documents, scores).set_index("category")
    rising = out.loc["F1_rising"]
    assert rising["trend"] == "increasing" and rising["model"] == "quasi-Poisson"
    assert rising["rr_ci_low"] < 1.5 < rising["rr_ci_high"]
    assert rising["rate_ratio_per_decade"] == pytest.approx(1.5, rel=0.1)
    flat = out.loc["F2_flat"]
    assert flat["trend"] == "no trend" and flat["rr_ci_low"] < 1 < flat["rr_ci_high"]
    sparse = out.loc["F3_sparse"]
    assert sparse["trend"] == "too sparse to test" and np.isnan(sparse["p_value"])
    assert sparse["nonzero_years"] <= 2
    # Benjamini-Hochberg over the two tested categories.
    tested = out["p_value"].notna()
    assert out.loc[tested, "p_adjusted"].to_numpy() == pytest.approx(
        false_discovery_control(out.loc[tested, "p_value"].to_numpy()))
    # The flat Poisson series gets no change point either.
    yearly = compare.pooled_rates(documents, scores, "year", seed=SEED, n_boot=10)
    cps = compare.change_points(yearly).set_index("category")["change_years"]
    assert cps["F2_flat"] == ""


def test_overdispersed_counts_get_the_negative_binomial_and_a_wider_interval() -> None:
    years = np.arange(1980, 2026)
    tokens = np.full(len(years), 20_000)
    decades = (years - years.mean()) / 10
    documents, scores = _synthetic_years({"F1": 5.0 * 1.3 ** decades}, years, tokens, seed=4,
                                         nb_size=2.0)
    nb = compare.count_trends(documents, scores).iloc[0]
    assert nb["model"] == "negative binomial" and nb["dispersion"] >= compare.NB_DISPERSION
    assert nb["rr_ci_low"] < 1.3 < nb["rr_ci_high"]
    # The same counts under a plain Poisson model would claim far more precision.
    import statsmodels.api as sm

    y = scores["count"].to_numpy()
    x = (years - years.mean()) / 10
    pois = sm.GLM(y, sm.add_constant(x), family=sm.families.Poisson(),
                  offset=np.log(tokens)).fit()
    assert math.log(nb["rr_ci_high"] / nb["rr_ci_low"]) > 2 * 1.96 * pois.bse[1] * 1.3


def test_change_points_stay_silent_on_null_series_and_find_a_doubling() -> None:
    rng = np.random.default_rng(2026)
    found = 0
    for i, n in enumerate([10, 14, 20, 30, 57] * 12):
        years = np.arange(2000, 2000 + n)
        tokens = rng.integers(10_000, 40_000, size=n)
        rate = [0.5, 3.0, 20.0][i % 3]
        counts = rng.poisson(rate * tokens / 10_000)
        yearly = pd.DataFrame({"year": years, "dimension": "feature", "category": "F1",
                               "tokens": tokens, "rate_per_10k": counts / tokens * 10_000})
        found += compare.change_points(yearly)["change_years"].iloc[0] != ""
    assert found <= 6  # of 60 null series: the calibration's ~5%, with room for chance
    years = np.arange(1970, 2027)
    tokens = np.full(len(years), 25_000)
    counts = rng.poisson(np.where(years < 2000, 3.0, 6.0) * tokens / 10_000)
    yearly = pd.DataFrame({"year": years, "dimension": "feature", "category": "F1",
                           "tokens": tokens, "rate_per_10k": counts / tokens * 10_000})
    cps = compare.change_points(yearly)["change_years"].iloc[0].split()
    assert len(cps) == 1 and abs(int(cps[0]) - 2000) <= 3


def test_mann_kendall_never_calls_a_zero_slope_a_direction() -> None:
    # Mostly zero years with a few late hits: S is positive and can be significant, but
    # the Theil-Sen slope is 0.
    values = [0.0] * 14 + [0.0, 1.0, 0.0, 2.0, 0.0, 3.0, 1.0, 2.0]
    yearly = pd.DataFrame({"year": list(range(2000, 2022)), "dimension": "feature",
                           "category": "F1", "tokens": 1000, "rate_per_10k": values})
    out = compare.trends(yearly).iloc[0]
    assert out["slope_per_year"] == 0.0 and out["p_value"] < 0.05
    assert out["trend"] == "no trend"


def test_keyness_prior_does_not_drown_a_one_document_group() -> None:
    # One document of 20,000 tokens against 60 of 20,000: terms absent from the one
    # document must still be told apart by how often the other group uses them.
    ids = ["solo"] + [f"p{i}" for i in range(60)]
    documents = pd.DataFrame({"doc_id": ids, "level": ["national"] + ["provincial"] * 60,
                              "tokens": [20_000] * 61, "year": pd.array([2025] * 61,
                                                                        dtype="Int64")})
    rows = [("solo", "共同富裕", 10)]
    rows += [(f"p{i}", "养老服务", 3) for i in range(60)]  # 180 in B, absent from A
    rows += [(f"p{i}", "慈善", 1) for i in range(0, 60, 10)]  # 6 in B, absent from A
    term_counts = pd.DataFrame([("d", "feature", "F1", t, c) for _, t, c in rows],
                               columns=["doc_id", "dimension", "category", "term", "count"])
    term_counts["doc_id"] = [d for d, _, _ in rows]
    out = compare.keyness(documents, term_counts, "level", "national", "provincial")
    z = out[out["within"] == "all"].set_index("term")["z"]
    assert z.idxmax() == "共同富裕" and z["共同富裕"] > 1  # ten uses in the one document
    # (With a prior of a tenth of both groups' tokens, 122,000 pseudo-tokens against the
    # one document's 20,000, both absent terms got z = -0.16 and -0.17.)
    assert z["养老服务"] < z["慈善"] < 0  # absent from A: the more B uses it, the lower z
    assert z["慈善"] - z["养老服务"] > 1


def _panel() -> pd.DataFrame:
    """Shanghai alone 2020-2022, then Shanghai, Beijing and Anhui 2023-2024."""
    rows = [(f"{y}-sh", y, "上海市") for y in range(2020, 2025)]
    rows += [(f"{y}-{r}", y, name) for y in (2023, 2024)
             for r, name in (("bj", "北京市"), ("ah", "安徽省"))]
    return pd.DataFrame({"doc_id": [r[0] for r in rows],
                         "year": pd.array([r[1] for r in rows], dtype="Int64"),
                         "level": "provincial", "region": [r[2] for r in rows],
                         "tokens": 1000})


def test_a_change_of_units_is_found_and_the_balanced_panel_keeps_the_constant_ones() -> None:
    docs = _panel()
    comp = compare.composition_by_year(docs)
    assert list(comp["units"]) == [1, 1, 1, 3, 3]
    assert list(comp.loc[comp["change"], "year"]) == [2023]
    assert compare.balanced_units(docs) == ["provincial/上海市"]
    mask = (docs["year"] >= 2021).to_numpy()
    warning = compare.mixed_composition(docs, mask, "A")
    assert "2021: 1 unit; 2022: 1 unit; 2023: 3 units; 2024: 3 units" in warning
    assert compare.mixed_composition(docs, (docs["year"] >= 2023).to_numpy(), "A") == ""


def test_cooccurrence_keeps_every_category_with_zero_counts() -> None:
    documents, scores, _ = _tables()
    scores = pd.concat([scores, scores.assign(dimension="pathway", category="P1_state",
                                              count=0)], ignore_index=True)
    cooc = pd.DataFrame({"doc_id": ["d3"], "unit": ["sentence"], "dimension_a": ["feature"],
                         "category_a": ["F1_population"], "dimension_b": ["pathway"],
                         "category_b": ["P4_technology"], "count": [2]})
    out = compare.cooccurrence_by(documents, cooc, "year", scores=scores)
    # Both pathway columns for both years, the never co-occurring P1 with count 0.
    assert list(zip(out["year"], out["category_b"], out["count"])) == [
        (2015, "P1_state", 0), (2015, "P4_technology", 0),
        (2016, "P1_state", 0), (2016, "P4_technology", 2)]
    assert out.loc[3, "per_1k_units"] == pytest.approx(2 / 50 * 1000)
