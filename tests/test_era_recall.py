"""Recall by era beside every trend (``pipeline.report_era_recall``): each category's held-out
recall per era from the measurement card, with n and interval, a warning where it differs by
more than 0.10 between two eras the run spans (both with >= 10 coded expressions), "not
estimable" below 10, and one sentence saying the era recall is unknown where no card matches
the run's lexicon. Also: the count models of the trends and comparisons are fitted on one
row per document (no within-document clustering to correct: docs/report.md)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipeline import compare
from pipeline.recall import CardNote, read_card
from pipeline.report_era_recall import (
    era_phrase,
    era_recall_parts,
    era_recall_table,
    era_years,
    read_era_estimates,
)
from tests.conftest import REPO, shared_corpus

ERAS = ["pre-1992", "1992-2012", "2013-"]


def _e(value: float | None, n: int, low: float | None = None, high: float | None = None
       ) -> dict[str, Any]:
    count = None if value is None else round(value * n)
    return {"value": value, "n": n, "count": count,
            "low": low if low is not None else (None if value is None else max(0.0, value - 0.2)),
            "high": high if high is not None else (None if value is None else min(1.0, value + 0.2))}


def _card(categories: dict[str, tuple[str, dict[str, Any]]], *, lexicon_hash: str = "a" * 64,
          eras: list[str] = ERAS, overall: dict[str, Any] | None = None) -> dict[str, Any]:
    """A mobilize.card/1 document with the given recall per era (category -> (dimension,
    era -> estimate)); the other parts as ``mobilize lexicon card --json`` writes them."""
    cols = ["category", "recall"]
    categories = copy.deepcopy(categories)
    return {
        "schema": "mobilize.card/1",
        "lexicon": {"name": "mini", "version": "9.9.9", "hash": lexicon_hash},
        "date": "2026-12-03", "corpora": ["gwr-national-zh"], "coders": ["c1"],
        "eras": eras, "passages": 30, "passages_coded": 30, "passages_coded_by_both": 0,
        "kwic_lines": 0, "sources": {"passages": ["p.csv"], "codes": ["c1.csv"], "kwic": []},
        "columns": cols, "rows": [{"category": c, "recall": "x"} for c in categories],
        "estimates": {
            "categories": [{"category": c, "dimension": d, "recall_by_era": by}
                           for c, (d, by) in categories.items()],
            "overall_recall_by_era": overall or {e: _e(0.5, 40) for e in eras},
        },
    }


# F5: 0.40 (n=20) before 1992 against 0.60 (n=15) and 0.65 (n=12): two warnings; the later
#     two differ by 0.05: none.
# P2: 0.30 from 9 expressions before 1992: not estimable (never compared), 0.70 / 0.75 after.
# C1: 0.80 against 0.70, each n=10: a difference of exactly 0.10 is not "more than 0.10".
# C2: 0.90 against 0.79 (n=10, n=11): 0.11, warned; recall higher in the earlier era.
# C4: no expression before 2013 (no entry / value null).
CATS = {
    "F5_peace": ("feature", {"pre-1992": _e(0.40, 20, 0.22, 0.61), "1992-2012": _e(0.60, 15),
                             "2013-": _e(0.65, 12)}),
    "P2_philosophy": ("pathway", {"pre-1992": _e(0.30, 9), "1992-2012": _e(0.70, 30),
                                  "2013-": _e(0.75, 40)}),
    "C1_demo": ("challenge", {"pre-1992": _e(None, 0), "1992-2012": _e(0.80, 10),
                              "2013-": _e(0.70, 10)}),
    "C2_social": ("challenge", {"1992-2012": _e(0.90, 10), "2013-": _e(0.79, 11),
                                "pre-1992": _e(None, 0)}),
    "C4_digital": ("challenge", {"2013-": _e(0.875, 16)}),
}


def _write(tmp: Path, doc: dict[str, Any]) -> Path:
    path = tmp / "mini.card.json"
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def _docs(*years: int | None) -> pd.DataFrame:
    return pd.DataFrame({"doc_id": [f"d{i}" for i in range(len(years))],
                         "year": pd.array(list(years), dtype="Int64")})


def _note(path: Path) -> CardNote:
    return CardNote(read_card(path), "")


def test_era_names_give_their_years_and_phrases() -> None:
    assert era_years("pre-1992") == (None, 1991)
    assert era_years("1992-2012") == (1992, 2012)
    assert era_years("2013-") == (2013, None)
    assert era_years("Mao era") is None
    assert [era_phrase(e) for e in ERAS] == ["before 1992", "in 1992-2012", "from 2013"]


def test_the_table_warns_exactly_where_recall_differs_by_more_than_a_tenth(tmp_path: Path
                                                                            ) -> None:
    card = read_era_estimates(_write(tmp_path, _card(CATS)))
    table = era_recall_table(card, _docs(1985, 1990, 2000, 2015, 2016, None))
    # sorted: dimension (feature, pathway, challenge, ...), category, eras in time order; the
    # pooled row last
    assert list(zip(table["category"], table["era"]))[:6] == [
        ("F5_peace", "pre-1992"), ("F5_peace", "1992-2012"), ("F5_peace", "2013-"),
        ("P2_philosophy", "pre-1992"), ("P2_philosophy", "1992-2012"), ("P2_philosophy", "2013-")]
    assert list(table["category"].iloc[6:12]) == ["C1_demo"] * 3 + ["C2_social"] * 3
    assert list(table["category"].tail(3)) == ["all"] * 3
    # the run's dated documents per era (the undated one in none)
    assert list(table["documents"].head(3)) == [2, 1, 2]
    t = table.set_index(["category", "era"])
    assert t.loc[("F5_peace", "pre-1992"), "n"] == 20
    assert t.loc[("F5_peace", "pre-1992"), "found"] == 8
    assert (t.loc[("F5_peace", "pre-1992"), "low"], t.loc[("F5_peace", "pre-1992"), "high"]) \
        == (0.22, 0.61)
    w_pre_mid = ("recall before 1992 was 0.40 (n = 20) against 0.60 (n = 15) in 1992-2012: the "
                 "lexicon finds more of this category's later wording, so part of a rise between "
                 "these eras may be vocabulary change (and a fall is understated)")
    w_pre_late = ("recall before 1992 was 0.40 (n = 20) against 0.65 (n = 12) from 2013: the "
                  "lexicon finds more of this category's later wording, so part of a rise "
                  "between these eras may be vocabulary change (and a fall is understated)")
    assert t.loc[("F5_peace", "pre-1992"), "warning"] == f"{w_pre_mid} | {w_pre_late}"
    assert t.loc[("F5_peace", "1992-2012"), "warning"] == w_pre_mid
    assert t.loc[("F5_peace", "2013-"), "warning"] == w_pre_late
    # fewer than 10 expressions: not estimable, kept with its numbers, never compared
    p2 = t.loc["P2_philosophy"]
    assert list(p2["estimable"]) == [False, True, True] and list(p2["n"]) == [9, 30, 40]
    assert p2.loc["pre-1992", "recall"] == 0.30 and set(p2["warning"]) == {""}
    # exactly 0.10 apart: no warning; 0.11 apart: a warning, the earlier era higher
    assert set(t.loc["C1_demo", "warning"]) == {""}
    assert t.loc[("C2_social", "2013-"), "warning"] == (
        "recall in 1992-2012 was 0.90 (n = 10) against 0.79 (n = 11) from 2013: the lexicon "
        "finds more of this category's earlier wording, so part of a fall between these eras "
        "may be vocabulary change (and a rise is understated)")
    # an era with no coded expression: not estimable, n = 0, no recall
    c1_pre = t.loc[("C1_demo", "pre-1992")]
    assert c1_pre["n"] == 0 and not c1_pre["estimable"] and np.isnan(c1_pre["recall"])
    assert list(t.loc["C4_digital", "n"]) == [0, 0, 16]
    assert set(t.loc["all", "warning"]) == {""}  # the pooled row is shown, never warned


def test_no_warning_for_eras_the_run_does_not_span(tmp_path: Path) -> None:
    card = read_era_estimates(_write(tmp_path, _card(CATS)))
    # 1992 on only: F5's remaining eras differ by 0.05; C2 still differs by 0.11
    later = era_recall_table(card, _docs(1995, 2020)).set_index(["category", "era"])
    assert set(later.loc["F5_peace", "warning"]) == {""}
    assert later.loc[("C2_social", "2013-"), "warning"] != ""
    # one era only: no warning at all, and the report says why
    one = era_recall_table(card, _docs(2015, 2020))
    assert set(one["warning"]) == {""}
    parts = era_recall_parts(_note(tmp_path / "mini.card.json"), tmp_path / "mini.card.json",
                             _docs(2015, 2020))
    assert not parts.warnings
    assert any("fall in one era (2013-)" in p and "no warning is given" in p for p in parts.text)


def test_the_parts_show_every_category_with_n_interval_and_not_estimable(tmp_path: Path
                                                                        ) -> None:
    path = _write(tmp_path, _card(CATS))
    trends = pd.DataFrame({"category": ["F5_peace"], "trend": ["increasing"],
                           "rate_ratio_per_decade": [1.5], "rr_ci_low": [1.2],
                           "rr_ci_high": [1.9], "note": [""]})
    parts = era_recall_parts(_note(path), path, _docs(1985, 2000, 2015), trends,
                             {"F5_peace": "F5_peace 和平"})
    assert parts.warnings == [
        "F5_peace 和平: recall before 1992 was 0.40 (n = 20) against 0.60 (n = 15) in 1992-2012: "
        "the lexicon finds more of this category's later wording, so part of a rise between "
        "these eras may be vocabulary change (and a fall is understated).",
        "F5_peace 和平: recall before 1992 was 0.40 (n = 20) against 0.65 (n = 12) from 2013: "
        "the lexicon finds more of this category's later wording, so part of a rise between "
        "these eras may be vocabulary change (and a fall is understated).",
        "C2_social: recall in 1992-2012 was 0.90 (n = 10) against 0.79 (n = 11) from 2013: the "
        "lexicon finds more of this category's earlier wording, so part of a fall between "
        "these eras may be vocabulary change (and a rise is understated)."]
    (_caption, shown), = parts.tables
    assert list(shown.columns) == ["category", "trend", "recall pre-1992 (run documents: 1)",
                                   "recall 1992-2012 (run documents: 1)",
                                   "recall 2013- (run documents: 1)", "warning"]
    f5 = shown.iloc[0]
    assert f5["category"] == "F5_peace 和平"
    assert f5["trend"] == "increasing (rate ratio per decade 1.50 [1.20, 1.90])"
    assert f5["recall pre-1992 (run documents: 1)"] == "0.40 [0.22, 0.61] (n = 20)"
    p2 = shown.set_index("category").loc["P2_philosophy"]
    assert p2["recall pre-1992 (run documents: 1)"] == "not estimable (n = 9, fewer than 10)"
    assert p2["warning"] == ""
    assert list(shown["category"]) == ["F5_peace 和平", "P2_philosophy", "C1_demo", "C2_social",
                                       "C4_digital", "all categories (pooled)"]
    assert parts.lines["P2_philosophy"] == (
        "Held-out recall of this category by era (measurement card of mini 9.9.9): pre-1992 "
        "not estimable (n = 9, fewer than 10); 1992-2012 0.70 [0.50, 0.90] (n = 30); 2013- "
        "0.75 [0.55, 0.95] (n = 40).")
    assert "Warning: recall before 1992 was 0.40" in parts.lines["F5_peace"]
    assert list(parts.files) == ["era_recall"]


def test_without_a_matching_card_the_era_recall_is_unknown_said_once(tmp_path: Path) -> None:
    none = CardNote(None, "No measurement card exists for the lexicon of this run (mine 1.0).")
    parts = era_recall_parts(none, tmp_path / "mine.card.json", _docs(1985, 2015))
    assert len(parts.trend_text) == 1
    assert parts.trend_text[0].startswith("Recall by era of these trends is unknown")
    assert "(mine 1.0)" in parts.trend_text[0]
    assert not parts.tables and not parts.files and not parts.lines and not parts.time_text
    # a card whose estimates cannot be read: the same, with what is wrong (never raises)
    doc = _card(CATS)
    doc["estimates"]["categories"][0]["recall_by_era"]["pre-1992"]["n"] = "many"
    path = _write(tmp_path, doc)
    parts = era_recall_parts(_note(path), path, _docs(1985, 2015))
    assert len(parts.trend_text) == 1 and "holds no readable recall per era" in parts.trend_text[0]
    assert "recall of F5_peace in pre-1992 is not a count" in parts.trend_text[0]
    assert not parts.files


def test_the_sensitivity_view_divides_each_eras_rate_by_its_recall(tmp_path: Path) -> None:
    from pipeline.report_era_recall import adjusted_rates

    card = read_era_estimates(_write(tmp_path, _card(CATS)))
    docs = pd.DataFrame({"doc_id": ["a", "b", "c", "d"],
                         "year": pd.array([1985, 1988, 2000, 2015], dtype="Int64"),
                         "tokens": [10_000, 30_000, 20_000, 5_000]})
    scores = pd.DataFrame({"doc_id": ["a", "b", "c", "d"] * 2, "scope": "all",
                           "dimension": ["feature"] * 4 + ["pathway"] * 4,
                           "category": ["F5_peace"] * 4 + ["P2_philosophy"] * 4,
                           "count": [4, 8, 6, 1, 2, 2, 9, 3],
                           "tokens": [10_000, 30_000, 20_000, 5_000] * 2})
    out = adjusted_rates(docs, scores, card, seed=5, n_boot=400)
    assert list(zip(out["category"], out["era"])) == [
        ("F5_peace", "pre-1992"), ("F5_peace", "1992-2012"), ("F5_peace", "2013-"),
        ("P2_philosophy", "pre-1992"), ("P2_philosophy", "1992-2012"),
        ("P2_philosophy", "2013-")]
    t = out.set_index(["category", "era"])
    f5 = t.loc[("F5_peace", "pre-1992")]
    assert (f5["documents"], f5["count"], f5["tokens"]) == (2, 12, 40_000)
    assert f5["rate_per_10k"] == pytest.approx(3.0)  # counted: 12 / 40,000 x 10,000
    assert f5["adjusted_rate_per_10k"] == pytest.approx(3.0 / 0.40)
    assert f5["adjusted_low"] < 7.5 < f5["adjusted_high"]
    # the interval is wider than the rate's own divided by the recall (both uncertainties)
    assert (f5["adjusted_high"] - f5["adjusted_low"]) > (f5["ci_high"] - f5["ci_low"]) / 0.40
    # one document in an era: its rate has no document resampling, only the recall varies
    late = t.loc[("F5_peace", "2013-")]
    assert late["ci_low"] == late["ci_high"] == pytest.approx(2.0)
    assert late["adjusted_low"] < 2.0 / 0.65 < late["adjusted_high"]
    # not estimable recall: the counted rate, no adjusted one, and why
    p2 = t.loc[("P2_philosophy", "pre-1992")]
    assert np.isnan(p2["adjusted_rate_per_10k"]) and p2["rate_per_10k"] == pytest.approx(1.0)
    assert p2["note"] == "recall not estimable (n = 9): no adjusted rate"
    # seeded: the same numbers again
    pd.testing.assert_frame_equal(out, adjusted_rates(docs, scores, card, seed=5, n_boot=400))


# ----------------------------------------------------------------- the report on a real run


@pytest.fixture(scope="module")
def npc_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of npc-resolutions-gwr-zh (1962-2025: all three eras) with the project
    lexicon, without its report."""
    from pipeline import engine
    from pipeline.config import Settings

    tmp = tmp_path_factory.mktemp("erarun")
    settings = Settings(corpus=shared_corpus("npc-resolutions-gwr-zh"),
                        corpus_name="npc-resolutions-gwr-zh", out=tmp / "out", engine="local",
                        report=False, segmenter="jieba-rs", workers=1, progress=False)
    return engine.run_local(settings).run_dir


def _report(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    from pipeline import report
    from pipeline.config import Settings

    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    report.write_report(run_dir, Settings())
    return ((run_dir / "report.html").read_text(encoding="utf-8"),
            (run_dir / "report.md").read_text(encoding="utf-8"))


def _rule(card: dict[str, Any], docs_per_era: dict[str, int]) -> set[tuple[str, str, str]]:
    """The warning rule computed directly from the card: (category, era, era) pairs."""
    out = set()
    for c in card["estimates"]["categories"]:
        by = c["recall_by_era"]
        ok = [e for e in card["eras"] if by.get(e) and by[e]["value"] is not None
              and by[e]["n"] >= 10 and docs_per_era[e] > 0]
        for i, a in enumerate(ok):
            for b in ok[i + 1:]:
                if round(abs(by[a]["value"] - by[b]["value"]), 4) > 0.10:
                    out.add((c["category"], a, b))
    return out


def test_the_report_shows_the_project_cards_recall_by_era_beside_the_trends(
        npc_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import openpyxl

    from pipeline.lexicon import load_lexicon

    lexicon = load_lexicon(REPO / "lexicons" / "mobilize.yaml")
    card = json.loads((REPO / "lexicons" / "mobilize.card.json").read_text(encoding="utf-8"))
    html, md = _report(npc_run, monkeypatch)
    if card["lexicon"]["hash"] != lexicon.hash:  # (a new lexicon whose card is not made yet)
        for page in (html, md):
            assert page.count("Recall by era of these trends is unknown") == 1
        assert not (npc_run / "tables" / "era_recall.csv").exists()
        pytest.fail("lexicons/mobilize.card.json does not measure lexicons/mobilize.yaml: "
                    "regenerate it (docs/validation.md), then this test checks its table")
    csv_path = npc_run / "tables" / "era_recall.csv"
    first = csv_path.read_bytes()
    table = pd.read_csv(csv_path, keep_default_na=False)
    years = pd.read_csv(npc_run / "documents.csv")["year"]
    docs = {"pre-1992": int((years < 1992).sum()),
            "1992-2012": int(((years >= 1992) & (years <= 2012)).sum()),
            "2013-": int((years >= 2013).sum())}
    assert docs["pre-1992"] >= 1 and docs["1992-2012"] >= 1 and docs["2013-"] >= 1
    # every category and era of the card, with its numbers, in the card's order
    cats = card["estimates"]["categories"]
    assert len(table) == 3 * (len(cats) + 1)
    for c in cats:
        for era in card["eras"]:
            row = table[(table["category"] == c["category"]) & (table["era"] == era)].iloc[0]
            e = c["recall_by_era"][era]
            assert int(row["n"]) == e["n"] and int(row["documents"]) == docs[era]
            if e["value"] is not None:
                assert float(row["recall"]) == pytest.approx(e["value"], abs=1e-6)
                assert float(row["low"]) == pytest.approx(e["low"], abs=1e-6)
            assert str(row["estimable"]) == str(e["value"] is not None and e["n"] >= 10)
    warned = {(r.category, r.era) for r in table.itertuples() if r.warning}
    expected = _rule(card, docs)
    assert warned == {(c, e) for c, a, b in expected for e in (a, b)}
    # the pooled row: the figures the README quotes, shown in both pages
    o = card["estimates"]["overall_recall_by_era"]["pre-1992"]
    cell = f"{o['value']:.2f} [{o['low']:.2f}, {o['high']:.2f}] (n = {o['n']})"
    assert f"<td>{cell}</td>" in html
    assert cell.replace("[", "\\[").replace("]", "\\]") in md
    with_part = [c["category"] for c in cats if f'<section id="timelines-{c["category"]}">'
                 in html]
    assert len(with_part) >= 10  # (every category of the lexicon has its timeline part)
    for page in (html, md):
        assert "Recall by era beside each trend" in page
        assert "Recall by era of these trends is unknown" not in page
        # one line beside each category's timeline
        assert page.count("Held-out recall of this category by era") == len(with_part)
    assert '<section id="era-recall">' in html and '<a id="era-recall"></a>' in md
    for c, a, b in expected:
        assert f"recall {'before 1992' if a == 'pre-1992' else 'in ' + a}" in html
    # the explorer: the same line under the rates chart of each category
    page = (npc_run / "explore.html").read_text(encoding="utf-8")
    start = page.index('<script type="application/json" id="explore-data">')
    data = json.loads(page[page.index(">", start) + 1:page.index("</script>", start)])
    assert set(data["era_recall"]) == {c["category"] for c in cats}
    f5 = data["era_recall"]["F5_peaceful_development"]
    assert f5.startswith("Held-out recall of this category by era") and f5 in md.replace("\\", "")
    assert 'id="rates-era"' in page
    # its sheet in the workbook, the CSV's rows; byte-identical on a second report
    wb = openpyxl.load_workbook(npc_run / "tables" / "report.xlsx", read_only=True)
    assert "era_recall" in wb.sheetnames
    assert sum(1 for _ in wb["era_recall"].iter_rows()) == len(table) + 1
    # the sensitivity view: rate / recall where estimable, beside (never instead of) the rates
    adj_path = npc_run / "tables" / "era_recall_adjusted.csv"
    adj_first = adj_path.read_bytes()
    adj = pd.read_csv(adj_path)
    done = adj[adj["adjusted_rate_per_10k"].notna()]
    assert len(done) >= 3
    assert np.allclose(done["adjusted_rate_per_10k"], done["rate_per_10k"] / done["recall"],
                       rtol=1e-5)
    assert (done["recall_n"] >= 10).all()
    assert np.allclose(adj["rate_per_10k"], adj["count"] / adj["tokens"] * 10_000, rtol=1e-5)
    assert "SENSITIVITY, not the counted rates" in html
    _report(npc_run, monkeypatch)
    assert csv_path.read_bytes() == first
    assert adj_path.read_bytes() == adj_first


def test_the_era_recall_text_is_escaped_and_unknown_without_a_card(
        npc_run: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import pipeline.recall as recall
    from pipeline.lexicon import load_lexicon

    lexicon = load_lexicon(REPO / "lexicons" / "mobilize.yaml")
    hostile = "<script>alert(1)</script>*[x](http://e.example)*"
    doc = _card({hostile: ("feature", {"pre-1992": _e(0.30, 20), "1992-2012": _e(0.70, 20),
                                       "2013-": _e(0.72, 20)}),
                 **CATS}, lexicon_hash=lexicon.hash)
    card_file = tmp_path / "hostile.card.json"
    card_file.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setattr(recall, "card_path", lambda lexicon_path: card_file)
    html, md = _report(npc_run, monkeypatch)
    part = html[html.index('<section id="era-recall">'):]
    part = part[:part.index("</section>")]
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in part
    assert "recall before 1992 was 0.30 (n = 20) against 0.70 (n = 20) in 1992-2012" in part
    md_part = md[md.index('<a id="era-recall"></a>'):]
    assert "<script>alert" not in md and "](http://e.example)" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in md_part  # (sanitize.markdown)
    assert "recall before 1992 was 0.30 (n = 20) against 0.70 (n = 20) in 1992-2012" in md_part
    # a card file that is gone: the era recall is unknown, said once per page, and no table
    shutil.move(card_file, tmp_path / "gone.json")
    html, md = _report(npc_run, monkeypatch)
    for page in (html, md):
        assert page.count("Recall by era of these trends is unknown") == 1
        assert "Held-out recall of this category by era" not in page
    assert not (npc_run / "tables" / "era_recall.csv").exists()
    assert not (npc_run / "tables" / "era_recall_adjusted.csv").exists()


# ----------------------------------------------------------------- count models and clustering


def test_the_count_models_are_fitted_on_one_row_per_document() -> None:
    """The trend and comparison GLMs take each document's counts summed over its paragraphs
    (one row per document), so no row is nested in another and cluster-robust standard
    errors by document do not apply: the fit equals statsmodels on the document sums, with
    or without the paragraph table, and the model's n is the documents."""
    import statsmodels.api as sm

    rng = np.random.default_rng(7)
    years = np.arange(1990, 2020)
    ids = [f"r{y}" for y in years]
    paras = rng.integers(2, 6, size=len(years))  # 2-5 paragraphs per report
    unit_rows, doc_counts, doc_tokens = [], [], []
    for d, y, k in zip(ids, years, paras):
        tok = rng.integers(300, 900, size=k)
        cnt = rng.poisson(4.0 * 1.2 ** ((y - 2005) / 10) * tok / 1000)
        unit_rows += [{"doc_id": d, "scope": "all", "block": i, "category": "F1",
                       "count": int(c), "tokens": int(t)} for i, (t, c) in enumerate(zip(tok, cnt))]
        doc_counts.append(int(cnt.sum()))
        doc_tokens.append(int(tok.sum()))
    documents = pd.DataFrame({"doc_id": ids, "year": pd.array(years, dtype="Int64"),
                              "tokens": doc_tokens,
                              "era": np.where(years < 2005, "early", "late")})
    scores = pd.DataFrame({"doc_id": ids, "scope": "all", "dimension": "feature",
                           "category": "F1", "count": doc_counts, "tokens": doc_tokens})
    out = compare.count_trends(documents, scores).iloc[0]
    assert out["documents"] == len(ids)
    y, t = np.array(doc_counts, float), np.array(doc_tokens, float)
    x = (years - years.mean()) / 10
    pois = sm.GLM(y, sm.add_constant(x), family=sm.families.Poisson(),
                  offset=np.log(t)).fit()
    phi = pois.pearson_chi2 / pois.df_resid
    assert phi < compare.NB_DISPERSION and out["model"] == "quasi-Poisson"
    quasi = sm.GLM(y, sm.add_constant(x), family=sm.families.Poisson(),
                   offset=np.log(t)).fit(scale=max(phi, 1.0))
    assert out["rate_ratio_per_decade"] == pytest.approx(np.exp(quasi.params[1]), rel=1e-9)
    assert out["rr_ci_high"] == pytest.approx(np.exp(quasi.params[1] + 1.959963984540054
                                                     * quasi.bse[1]), rel=1e-6)
    # the comparison of two groups: the same document rows, with or without paragraphs
    units = pd.DataFrame(unit_rows)  # (as units.csv: the paragraphs within each report)
    assert compare.paragraph_matrix(documents, units, scores, "all") is not None
    with_units = compare.rate_differences(documents, scores, "era", "late", "early", seed=1,
                                          n_boot=20, units=units).iloc[0]
    without = compare.rate_differences(documents, scores, "era", "late", "early", seed=1,
                                       n_boot=20, units=None).iloc[0]
    assert (with_units["p_value"], with_units["rr_ci_low"]) == (without["p_value"],
                                                                without["rr_ci_low"])
    assert with_units["ci_low"] != without["ci_low"]  # (the bootstrap does use them)
    xg = (documents["era"] == "late").to_numpy(float)
    g = sm.GLM(y, sm.add_constant(xg), family=sm.families.Poisson(), offset=np.log(t)).fit()
    gphi = g.pearson_chi2 / g.df_resid
    gq = sm.GLM(y, sm.add_constant(xg), family=sm.families.Poisson(),
                offset=np.log(t)).fit(scale=max(gphi, 1.0))
    assert with_units["p_value"] == pytest.approx(gq.pvalues[1], rel=1e-6)
    assert with_units["rr_ci_low"] == pytest.approx(
        np.exp(gq.params[1] - 1.959963984540054 * gq.bse[1]), rel=1e-6)


@pytest.mark.browser
@pytest.mark.slow
def test_the_explorer_shows_the_chosen_categorys_era_recall_under_its_chart(
        npc_run: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In headless Chromium (as tests/test_explore_browser.py): the line under the rates chart
    is the report's line for the category picked, and hidden for a single term."""
    from tests.test_browser import CHROMIUM_ARGS, _chromium

    executable = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is not installed")
    _report(npc_run, monkeypatch)  # (with the project's card: another test removes it)
    page_file = npc_run / "explore.html"
    text = page_file.read_text(encoding="utf-8")
    start = text.index('<script type="application/json" id="explore-data">')
    lines = json.loads(text[text.index(">", start) + 1:text.index("</script>", start)])[
        "era_recall"]
    if not lines:
        pytest.skip("no measurement card matches the project lexicon (see the test above)")
    errors: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(page_file.as_uri(), wait_until="load")
            page.wait_for_function("window.__explorerReady === true")
            page.select_option("#kind", "category")
            for cid in ("F5_peaceful_development", "D_social_security"):
                label = page.eval_on_selector(
                    "#category", "(s, id) => Array.from(s.options).find(o => "
                    "o.textContent.startsWith(id + ' ')).textContent", cid)
                page.select_option("#category", label=label)
                assert page.text_content("#rates-era") == lines[cid]
                assert page.is_visible("#rates-era")
            page.select_option("#kind", "term")
            assert not page.is_visible("#rates-era")
        finally:
            browser.close()
    assert errors == []
