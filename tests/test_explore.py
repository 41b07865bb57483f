"""The explorer's data (pipeline.explore): offsets of hits and uncounted occurrences on inline
Chinese snippets, the log-odds z against a hand-computed value and against compare.keyness,
the page's JSON escaping, and rates equal to the report's tables on a real corpus."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import compare, explore
from pipeline.lexicon import Category, Lexicon, Term, build_lexicon
from pipeline.match import Matcher


def _lexicon() -> Lexicon:
    c3 = Category("C3", "challenge", "新常态", "new normal", "", (
        Term("新常态", "C3", "challenge"), Term("经济新常态", "C3", "challenge")), ())
    # 差距 guarded: not counted after 拉开 (a pattern built like the loader's sense guards)
    c1 = Category("C1", "challenge", "差距", "gaps", "", (
        Term("差距", "C1", "challenge", pattern="(?<!拉开)差距", spec=(("term", "差距"),
                                                                  ("not_after", ("拉开",)))),
    ), (Term("全覆盖", "C1", "challenge"),))
    d = Category("D_social_security", "domain", "社会保障", "social security", "", (
        Term("社会保障", "D_social_security", "domain"),), ())
    return build_lexicon(name="t", version="0", categories=(c3, c1, d))


def test_hits_and_uncounted_occurrences_have_exact_offsets() -> None:
    lex = _lexicon()
    text = "适应经济新常态。拉开差距，缩小差距。全覆盖"
    m = explore.document_matches(text, Matcher(lex), explore.raw_matcher(lex), "D_social_security")
    assert m.hits == [(2, 7, "C3", "经济新常态"), (15, 17, "C1", "差距")]
    assert text[2:7] == "经济新常态" and text[15:17] == "差距"
    assert m.marks == [(4, 7, "C3", "新常态", explore.ABSORBED),
                       (10, 12, "C1", "差距", explore.GUARDED),
                       (18, 21, "C1", "全覆盖", explore.EXCLUDED)]
    assert text[10:12] == "差距" and text[18:21] == "全覆盖"
    assert m.window == []


def test_social_security_window_is_the_domain_sentence_and_its_neighbours() -> None:
    lex = _lexicon()
    text = "第一句。第二句。健全社会保障体系。第四句。第五句。\n另一段。"
    m = explore.document_matches(text, Matcher(lex), explore.raw_matcher(lex), "D_social_security")
    # sentences 2-4 (第二句。健全社会保障体系。第四句。), not 第五句 nor the next paragraph
    assert m.window == [(4, 21)]
    assert text[4:21] == "第二句。健全社会保障体系。第四句。"


def test_sentence_spans_cover_each_line_and_skip_the_newlines() -> None:
    text = "甲。乙！\n丙"
    assert explore.sentence_spans(text) == [(0, 2, 0), (2, 4, 0), (5, 6, 1)]


def test_above_the_text_budget_only_paragraphs_near_a_match_are_kept() -> None:
    lex = _lexicon()
    text = "甲。\n乙健全社会保障。\n丙。\n丁。\n戊经济新常态。"
    m = explore.document_matches(text, Matcher(lex), explore.raw_matcher(lex), "D_social_security")
    pieces = explore._passages_near(text, m)
    # matches in paragraphs 1 and 4: those and their neighbours 0, 2 and 3, i.e. all
    assert pieces == [[0, "甲。"], [3, "乙健全社会保障。"], [12, "丙。"], [15, "丁。"],
                      [18, "戊经济新常态。"]]
    for offset, piece in pieces:  # offsets are those of the whole text
        assert text[offset:offset + len(piece)] == piece
    lone = explore.document_matches("甲。\n乙。\n丙。\n丁。\n戊社会保障。", Matcher(lex),
                                    explore.raw_matcher(lex), "D_social_security")
    assert explore._passages_near("甲。\n乙。\n丙。\n丁。\n戊社会保障。", lone) == [
        [9, "丁。"], [12, "戊社会保障。"]]


def test_log_odds_z_equals_the_hand_computed_value() -> None:
    # A: 3 of 100 tokens, B: 1 of 50. alpha0 = 0.1 x 50 = 5; alpha = 5 x 4 / 150 = 0.13333
    # delta = ln(3.13333 / 101.86667) - ln(1.13333 / 53.86667) = 0.37978
    # var = 1 / 3.13333 + 1 / 1.13333 = 1.20150; z = 0.37978 / sqrt(1.20150) = 0.34647
    keep, z = explore.pair_keyness(np.array([[3, 0], [1, 0]]), np.array([100, 50]), 0, 1)
    assert keep.tolist() == [0]
    assert z[0] == pytest.approx(0.34647, abs=1e-5)
    _keep, z_ba = explore.pair_keyness(np.array([[3, 0], [1, 0]]), np.array([100, 50]), 1, 0)
    assert z_ba[0] == -z[0]


def test_pair_keyness_equals_compare_keyness() -> None:
    docs = pd.DataFrame({"doc_id": ["a1", "a2", "b1"], "year": [2020, 2020, 2021],
                         "tokens": [400, 600, 500]})
    tc = pd.DataFrame({"doc_id": ["a1", "a2", "a2", "b1", "b1"],
                       "dimension": ["challenge"] * 5, "category": ["C3"] * 5,
                       "term": ["新常态", "新常态", "共享", "共享", "新常态"],
                       "count": [4, 2, 1, 7, 1]})
    ref = compare.keyness(docs, tc, "year", 2020, 2021)
    ref = ref[ref["within"] == "all"].set_index("term")["z"]
    counts = np.array([[6, 1], [1, 7]])  # [新常态, 共享] per year
    keep, z = explore.pair_keyness(counts, np.array([1000, 500]), 0, 1)
    assert dict(zip(["新常态", "共享"], z)) == {t: ref[t] for t in ["新常态", "共享"]}


def test_json_for_html_cannot_close_its_script_element() -> None:
    data = {"t": "</script><script>alert(1)</script>&\u2028\u2029"}
    out = explore.json_for_html(data)
    assert "<" not in out and ">" not in out and "&" not in out
    assert "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == data


def test_page_allows_only_its_own_scripts_and_no_network(tmp_path) -> None:
    page = explore.render_page({"corpus": "<x>", "documents": []})
    csp = page.split('http-equiv="Content-Security-Policy" content="')[1].split('"')[0]
    assert "default-src 'none'" in csp and "connect-src 'none'" in csp
    assert "unsafe-eval" not in csp
    script_src = csp.split("script-src ")[1].split(";")[0]
    assert "unsafe-inline" not in script_src and script_src.count("'sha256-") == 2


def _num(x: float) -> float | None:
    """A table's value as the page holds it: 6 decimals, None for NaN (no interval)."""
    return None if math.isnan(x) else round(float(x), 6)


@pytest.mark.slow
def test_rates_equal_the_report_tables(tmp_path) -> None:
    from conftest import shared_corpus
    from test_report import engine_run

    from pipeline.config import Settings
    from pipeline.ingest import load_corpus
    from pipeline.lexicon import load_lexicon
    from pipeline.report_analysis import _periods, analyse

    corpus = shared_corpus("npc-resolutions-gwr-zh")
    run_dir = engine_run(corpus, tmp_path / "out")
    run = compare.read_run(run_dir)
    settings = Settings()
    lex = load_lexicon(settings.lexicon)
    texts = {d.doc_id: d.text for d in load_corpus(corpus, warn=False).documents}
    periods = _periods(settings)
    data = explore.explorer_data(run, lex, texts, periods, seed=settings.seed, n_boot=200)
    analysis = analyse(run, periods, seed=settings.seed, n_boot=200)
    cats = [c["id"] for c in data["categories"]]
    for by, table in (("year", "rates_by_year"), ("period", "rates_by_period")):
        ref = analysis.tables[table]
        rows = data["rates"]["category"]["all"][by]
        assert len(rows) == len(ref)
        values = data["groups"][by]["values"]
        got = {(values[r[1]], cats[r[0]]): r for r in rows}
        for rec in ref.itertuples(index=False):
            r = got[(str(getattr(rec, by)), rec.category)]
            assert r[2:5] == [rec.documents, rec.count, rec.tokens]
            assert r[5] == round(rec.rate_per_10k, 6)
            assert r[6] == _num(rec.ci_low) and r[7] == _num(rec.ci_high)
    # given the report's own tables, the explorer shows them unchanged
    again = explore.explorer_data(run, lex, texts, periods, seed=settings.seed, n_boot=200,
                                  computed=explore.report_rates(analysis.tables))
    assert again["rates"] == data["rates"]
    # social-security scope: as the report's whole-text vs social-security table
    side = compare.scope_side_by_side(run.documents, run.scores, seed=settings.seed, n_boot=200)
    over = {cats[r[0]]: r for r in data["rates"]["category"]["domain_window"]["overall"]}
    for rec in side[~side["circular"]].itertuples(index=False):
        assert over[rec.category][3] == rec.count_ss
        assert over[rec.category][5] == round(rec.rate_ss, 6)
        assert over[rec.category][6] == _num(rec.ci_low_ss)
    # single terms, whole text: term_counts.csv per year
    tby = compare.term_counts_by(compare.with_periods(run.documents, periods), run.term_counts,
                                 "year")
    terms = {(cats[c], t): i for i, (c, t) in enumerate(data["terms"])}
    trows = {(r[0], data["groups"]["year"]["values"][r[1]]): r
             for r in data["rates"]["term"]["all"]["year"]}
    for rec in tby.itertuples(index=False):
        r = trows[(terms[(rec.category, rec.term)], str(rec.year))]
        assert (r[3], r[4]) == (rec.count, rec.tokens)
    # every hit re-found in the text is a counted hit of term_counts.csv
    found = sum(len(d["hits"]) // 4 for d in data["documents"])
    assert found == int(run.term_counts["count"].sum())
    # per document, the hits within the social-security ranges add up to the scope's count
    for d in data["documents"]:
        for ci, n in enumerate(d["cat"]["domain_window"]):
            if data["categories"][ci]["dimension"] == "domain":
                continue
            spans = [(d["window"][k], d["window"][k] + d["window"][k + 1])
                     for k in range(0, len(d["window"]), 2)]
            inside = sum(1 for k in range(0, len(d["hits"]), 4) if d["hits"][k + 2] == ci
                         and any(a <= d["hits"][k] < b for a, b in spans))
            assert inside == n, (d["id"], cats[ci])
    assert not math.isnan(data["documents"][0]["tokens"])


@pytest.mark.slow
def test_compare_writes_an_explorer_and_explore_prints_its_path(tmp_path, monkeypatch) -> None:
    """`mobilize compare` writes explore.html into its folder (the combined documents of two
    corpora); `mobilize explore --run` prints it relative to the working folder, and writes
    one into a run folder that has none."""
    import shutil

    from conftest import shared_corpus
    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    _register()
    runner = CliRunner()
    a, b = tmp_path / "npc", tmp_path / "npc-early"
    src = shared_corpus("npc-resolutions-gwr-zh")
    shutil.copytree(src, a)
    b.mkdir()
    for p in sorted(src.glob("*.txt"))[:5]:
        shutil.copy2(p, b / p.name)
        (a / p.name).unlink()
    (a / "metadata.csv").unlink()
    monkeypatch.chdir(tmp_path)
    done = runner.invoke(app, ["compare", "--corpus", str(a), "--corpus", str(b),
                               "--out", "out"])
    assert done.exit_code == 0, done.output
    [folder] = [p for p in (tmp_path / "out" / "compare").iterdir()
                if (p / "comparison.json").is_file()]
    page = folder / "explore.html"
    data = json.loads(page.read_text(encoding="utf-8").split(
        '<script type="application/json" id="explore-data">')[1].split("</script>")[0])
    assert {d["meta"]["corpus"] for d in data["documents"]} == {"npc", "npc-early"}
    assert all(d["text"] for d in data["documents"])  # every document's text, from both roots
    assert "corpus" in data["keyness"]
    shown = runner.invoke(app, ["explore", "--run", str(folder)])
    assert shown.exit_code == 0
    assert shown.output.strip() == page.relative_to(tmp_path).as_posix()
    # a run folder without explore.html gets one
    run_dir = tmp_path / "out" / "compare" / "runs" / "npc"
    assert not (run_dir / "explore.html").exists()
    shown = runner.invoke(app, ["explore", "--run", str(run_dir)])
    assert shown.exit_code == 0, shown.output
    assert shown.output.strip() == "out/compare/runs/npc/explore.html"
    assert (run_dir / "explore.html").is_file()
    missing = runner.invoke(app, ["explore", "--run", "nowhere"])
    assert missing.exit_code == 2 and "no such folder" in missing.output


@pytest.mark.slow
def test_a_report_reads_each_document_once_and_the_explorer_page_is_the_same(
        tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """write_report reads the corpus once (KWIC, coverage, timelines and the explorer share
    it); `mobilize explore --rebuild` (write_explorer alone) reads it itself and writes the
    same bytes."""
    from collections import Counter
    from pathlib import Path

    from pipeline import ingest, report
    from pipeline.config import Settings
    from tests.test_report import engine_run

    demo = Path(__file__).resolve().parent.parent / "corpora" / "demo"
    run_dir = engine_run(demo, tmp_path / "out")
    reads: Counter[str] = Counter()
    real = ingest.read_source

    def counting(src, **kw):  # type: ignore[no-untyped-def]
        reads[src.path] += 1
        return real(src, **kw)

    monkeypatch.setattr(ingest, "read_source", counting)
    report.write_report(run_dir, Settings())
    documents = pd.read_csv(run_dir / "documents.csv")
    assert sorted(reads) == sorted(documents["path"]) and len(reads) == 17
    assert set(reads.values()) == {1}  # each document read once
    page = (run_dir / explore.FILE).read_bytes()
    reads.clear()
    explore.write_explorer(run_dir, Settings())  # what `mobilize explore --rebuild` does
    assert set(reads.values()) == {1} and len(reads) == 17
    # (compared as a boolean: a diff of two pages of a megabyte outlasts the test's timeout)
    same = (run_dir / explore.FILE).read_bytes() == page
    assert same, "explore --rebuild wrote another page than the report's explorer"
