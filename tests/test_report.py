"""report: the files a run's report writes, their content, determinism and safety; the CLI."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest
from conftest import shared_corpus
from openpyxl import load_workbook
from typer.testing import CliRunner

from pipeline import compare, normalize, report
from pipeline.cli import _register
from pipeline.cli._apps import app
from pipeline.config import DEFAULT_PERIODS, Settings

REPO = Path(__file__).resolve().parent.parent
INJECTION = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned=2"><b>粗体</b>'


def engine_run(corpus: Path, out: Path, *, name: str | None = None,
               lexicon: Path | None = None) -> Path:
    """A local engine run without its report (the tests write the report themselves)."""
    from pipeline import engine

    settings = Settings(corpus=corpus, corpus_name=name or corpus.name, out=out, engine="local",
                        report=False, segmenter="jieba-rs", workers=1, progress=False)
    if lexicon is not None:
        settings = settings.with_(lexicon=lexicon)
    return engine.run_local(settings).run_dir


def hostile_corpus(tmp: Path) -> Path:
    """The NPC resolutions (copied at test time, never into the repo) plus one document whose
    title and text carry HTML and a script."""
    src = shared_corpus("npc-resolutions-gwr-zh")
    dst = tmp / "hostile-corpus"
    shutil.copytree(src, dst)
    (dst / "hostile.txt").write_text(
        f"关于社会保障的说明{INJECTION}\n要坚持以人民为中心，推进共同富裕，健全社会保障体系。\n",
        encoding="utf-8")
    with (dst / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    fields = list(rows[0].keys())
    extra = dict.fromkeys(fields, "")
    extra.update({"doc_id": "hostile", "title": f"恶意标题{INJECTION}", "date": "2024-03-11",
                  "issuer": "test", "level": "national", "region": "全国",
                  "doc_type": "resolution", "language": "zh"})
    rows.append(extra)
    with (dst / "metadata.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    return dst


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("report")
    return engine_run(hostile_corpus(tmp), tmp / "out")


@pytest.fixture(scope="module")
def written(hostile_run: Path) -> list[Path]:
    mp = pytest.MonkeyPatch()
    mp.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    try:
        return report.write_report(hostile_run, Settings())
    finally:
        mp.undo()


@pytest.mark.slow
def test_report_writes_html_md_figures_and_tables(hostile_run: Path, written: list[Path]) -> None:
    names = {p.relative_to(hostile_run).as_posix() for p in written}
    assert {"report.html", "report.md", "tables/report.xlsx", "tables/rates_by_year.csv",
            "tables/trends.csv", "tables/terms_by_year.csv", "tables/kwic.csv",
            "tables/term_coverage.csv", "figures/rates_by_year.png",
            "figures/rates_by_year.svg", "figures/rates_by_period.png",
            "figures/rates_by_period.svg"} <= names
    for p in written:
        assert p.is_file() and p.stat().st_size > 0, p
    svg = (hostile_run / "figures" / "rates_by_year.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<path" in svg
    assert (hostile_run / "figures" / "rates_by_year.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_xlsx_holds_every_csv_table_with_the_same_rows(hostile_run: Path,
                                                       written: list[Path]) -> None:
    wb = load_workbook(hostile_run / "tables" / "report.xlsx", read_only=True)
    for csv_path in sorted((hostile_run / "tables").glob("*.csv")):
        df = pd.read_csv(csv_path, keep_default_na=False)
        ws = wb[csv_path.stem[:31]]
        rows = list(ws.iter_rows(values_only=True))
        assert list(rows[0]) == list(df.columns), csv_path.name
        assert len(rows) - 1 == len(df), csv_path.name


@pytest.mark.slow
def test_pooled_year_rates_in_the_report_equal_counts_over_tokens(hostile_run: Path,
                                                                  written: list[Path]) -> None:
    rates = pd.read_csv(hostile_run / "tables" / "rates_by_year.csv")
    docs = pd.read_csv(hostile_run / "documents.csv", dtype={"doc_id": str})
    scores = pd.read_csv(hostile_run / "scores.csv", dtype={"doc_id": str})
    scores = scores[scores["scope"] == "all"].merge(docs[["doc_id", "year"]], on="doc_id")
    expected = scores.groupby(["year", "category"])["count"].sum()
    tokens = docs.groupby("year")["tokens"].sum()
    for row in rates.itertuples():
        assert row.count == expected.get((row.year, row.category), 0)
        assert row.tokens == tokens[row.year]
        assert row.rate_per_10k == pytest.approx(row.count / row.tokens * 10_000, abs=1e-6)
        assert row.ci_low <= row.rate_per_10k + 1e-6 and row.rate_per_10k <= row.ci_high + 1e-6


@pytest.mark.slow
def test_html_is_self_contained_and_escapes_document_text(hostile_run: Path,
                                                          written: list[Path]) -> None:
    html = (hostile_run / "report.html").read_text(encoding="utf-8")
    # Nothing is fetched: no URL in any src/href, no @import, no font URL.
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", html, re.IGNORECASE)
    assert "@import" not in html
    assert re.findall(r"url\(([a-z]+):", html) == ["data"]  # the embedded CJK font only
    assert html.count("data:image/png;base64,") >= 3
    # The document's markup appears as text only.
    assert "window.__pwned" in html  # it is there, escaped ...
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in html
    assert "恶意标题&lt;script&gt;" in html  # the title, in the documents table
    # Only the report's own script tag.
    assert html.count("<script>") == 1
    md = (hostile_run / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in md and "&lt;script&gt;window.\\_\\_pwned" in md


@pytest.mark.slow
def test_methods_appendix_names_corpus_lexicon_segmenter_and_statistics(
        hostile_run: Path, written: list[Path]) -> None:
    import json

    manifest = json.loads((hostile_run / "run.json").read_text(encoding="utf-8"))
    html = (hostile_run / "report.html").read_text(encoding="utf-8")
    md = (hostile_run / "report.md").read_text(encoding="utf-8")
    for text in (html, md):
        assert manifest["corpus"]["content_hash"] in text
        assert manifest["lexicon"]["hash"] in text
        assert manifest["segmenter"]["name"] in text and "jieba-rs" in text
        assert "Mann-Kendall" in text and "Benjamini-Hochberg" in text
        assert "Monroe" in text and "bootstrap" in text
        assert "report.versions.matplotlib" in text and "report.versions.mplfonts" in text
        docs = pd.read_csv(hostile_run / "documents.csv", dtype=str)
        assert all(h in text for h in docs["sha256"])


@pytest.mark.slow
def test_kwic_shows_examples_for_every_category_that_matched(hostile_run: Path,
                                                             written: list[Path]) -> None:
    kwic = pd.read_csv(hostile_run / "tables" / "kwic.csv", dtype=str, keep_default_na=False)
    tc = pd.read_csv(hostile_run / "term_counts.csv", dtype={"doc_id": str})
    assert set(kwic["category"]) == set(tc["category"])
    per = kwic.groupby("category").size()
    assert (per >= 1).all() and (per <= report.KWIC_PER_CATEGORY).all()
    # Every KWIC line is real (normalised) text of its document: left + term + right is in it.
    root = shared_corpus("npc-resolutions-gwr-zh")
    for row in kwic.itertuples():
        if row.doc_id == "hostile":
            continue
        raw = (root / f"{row.doc_id}.txt").read_text(encoding="utf-8")
        text = normalize.text(raw).replace("\n", " ")
        assert row.term in text and (row.left + row.term) in text, row
    # Coverage: hits per term agree with term_counts.csv.
    cov = pd.read_csv(hostile_run / "tables" / "term_coverage.csv", keep_default_na=False)
    totals = tc.groupby(["category", "term"])["count"].sum()
    for row in cov.itertuples():
        assert row.hits == totals.get((row.category, row.term), 0), row


@pytest.mark.slow
def test_same_run_gives_byte_identical_report_files(hostile_run: Path, written: list[Path],
                                                    tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    copy = tmp_path / hostile_run.name
    shutil.copytree(hostile_run, copy, ignore=shutil.ignore_patterns("report.*", "figures",
                                                                     "tables"))
    again = report.write_report(copy, Settings())
    assert [p.relative_to(copy) for p in again] == [p.relative_to(hostile_run) for p in written]
    for p in again:
        original = hostile_run / p.relative_to(copy)
        assert p.read_bytes() == original.read_bytes(), p.name


@pytest.mark.slow
def test_discovery_tables_are_rendered_as_topics_and_candidate_gaps(
        hostile_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prevalence = pd.DataFrame({"year": [2023, 2024, 2023, 2024], "topic": [0, 0, 1, 1],
                               "prevalence": [0.6, 0.4, 0.4, 0.6]})
    topics = pd.DataFrame({"topic": [0, 1], "top_words": ["养老 保险", "数字 政务"]})
    drift = pd.DataFrame({"word": ["银发经济"], "score": [0.9]})
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {
        "topics": topics, "topic_prevalence": prevalence, "drift": drift})
    copy = tmp_path / "run"
    shutil.copytree(hostile_run, copy)
    report.write_report(copy, Settings(discover=True))
    html = (copy / "report.html").read_text(encoding="utf-8")
    assert "Candidate gaps" in html and "银发经济" in html and "数字 政务" in html
    assert (copy / "figures" / "topic_prevalence.png").is_file()
    assert (copy / "tables" / "drift.csv").is_file()


def test_chinese_figure_renders_without_missing_glyph_warnings(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with report._style():
            fig = report.new_figure(4, 2)
            ax = fig.subplots()
            ax.plot([2015, 2016], [1.0, -2.0])
            ax.set_title("人口老龄化 新常态 共建共治共享 互联网+ 每万词 −5")
            ax.set_xlabel("年份 year；特征 × 路径")
            report.save_figure(fig, tmp_path, "cjk")
    glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
    assert glyphs == []
    assert report.cjk_font() == "Noto Sans CJK SC"
    svg = (tmp_path / "cjk.svg").read_text(encoding="utf-8")
    assert "<text" not in svg  # glyphs are paths: the SVG needs no font to display


def test_a_latin_only_font_would_have_warned(tmp_path: Path) -> None:
    """The check above can fail: without the CJK font matplotlib warns of missing glyphs."""
    import matplotlib

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
            fig = report.new_figure(2, 1)
            fig.subplots().set_title("人口老龄化")
            report.save_figure(fig, tmp_path, "latin")
    assert any("Glyph" in str(w.message) and "missing" in str(w.message) for w in caught)


# --------------------------------------------------------------------------- CLI


def _cli(args: list[str]) -> tuple[int, str]:
    _register()
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


@pytest.mark.slow
def test_report_command_regenerates_the_report_of_a_run_folder(hostile_run: Path,
                                                               written: list[Path],
                                                               tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    out = tmp_path / "out"
    shutil.copytree(hostile_run, out / hostile_run.name,
                    ignore=shutil.ignore_patterns("report.*", "figures", "tables"))
    five = REPO / "lexicons" / "periods-five-year-plans.yaml"
    code, output = _cli(["report", "--corpus", hostile_run.name, "--out", str(out),
                         "--periods", str(five)])
    assert code == 0, output
    assert "report.html" in output
    periods = pd.read_csv(out / hostile_run.name / "tables" / "rates_by_period.csv")
    assert "2021-2025 十四五" in set(periods["period"])


def test_report_command_says_which_folder_is_missing(tmp_path: Path) -> None:
    code, output = _cli(["report", "--run", str(tmp_path / "nowhere")])
    assert code == 2
    assert "nowhere" in output and "not a run folder" in output and "mobilize run" in output


def test_report_command_rejects_a_bad_periods_file_with_its_line(hostile_run: Path,
                                                                 tmp_path: Path) -> None:
    bad = tmp_path / "periods.yaml"
    bad.write_text("- {name: a, start: 1990, end: 2000}\n- {name: b, start: 1999}\n",
                   encoding="utf-8")
    code, output = _cli(["report", "--run", str(hostile_run), "--periods", str(bad)])
    assert code == 2
    assert f"{bad}:2:" in output.replace("\n", "") and "overlaps" in output


@pytest.mark.slow
def test_compare_at_80_columns_keeps_every_category_id_and_number_whole(
        hostile_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, output = _cli(["compare", "--run", str(hostile_run), "--by", "year", "--a", "2025",
                         "--b", "2024", "--out", str(tmp_path)])
    assert code == 0, output
    table = output[:output.index("terms driving the difference")]
    assert "…" not in table and max(len(line) for line in table.splitlines()) <= 80
    ids = set(pd.read_csv(hostile_run / "scores.csv")["category"])
    firsts = [line.split()[0] for line in table.splitlines() if line.split()]
    assert ids <= set(firsts)
    diff = pd.read_csv(tmp_path / "compare" / "year-2025-vs-2024" / "differences.csv")
    for row in diff.itertuples():  # each rate is printed whole on its category's line
        line = next(ln for ln in table.splitlines() if ln.split() and ln.split()[0] == row.category)
        assert f"{row.rate_a:.2f}" in line.split() and f"{row.rate_b:.2f}" in line.split()


@pytest.mark.slow
def test_compare_command_splits_one_run_by_year(hostile_run: Path, tmp_path: Path) -> None:
    code, output = _cli(["compare", "--run", str(hostile_run), "--by", "year", "--a", "2025",
                         "--b", "2024", "--out", str(tmp_path)])
    assert code == 0, output
    folder = tmp_path / "compare" / "year-2025-vs-2024"
    diff = pd.read_csv(folder / "differences.csv")
    docs = pd.read_csv(hostile_run / "documents.csv", dtype={"doc_id": str})
    scores = pd.read_csv(hostile_run / "scores.csv", dtype={"doc_id": str})
    ids_a = set(docs.loc[docs["year"] == 2025, "doc_id"])
    sa = scores[(scores["scope"] == "all") & scores["doc_id"].isin(ids_a)]
    tok_a = docs.loc[docs["year"] == 2025, "tokens"].sum()
    for row in diff.itertuples():
        count_a = sa.loc[sa["category"] == row.category, "count"].sum()
        assert row.rate_a == pytest.approx(count_a / tok_a * 10_000, abs=1e-6)
    for name in ("rates.csv", "keyness.csv", "comparison.xlsx", "comparison.md",
                 "differences.png", "differences.svg"):
        assert (folder / name).is_file(), name
    assert "A = 2025" in output and "typical of A" in output


def test_compare_command_names_the_groups_that_exist(hostile_run: Path, tmp_path: Path) -> None:
    code, output = _cli(["compare", "--run", str(hostile_run), "--by", "year", "--a", "1066",
                         "--b", "2024", "--out", str(tmp_path)])
    assert code == 2
    assert "no group year = '1066'" in output and "2025" in output


def test_default_periods_file_is_the_shipped_one() -> None:
    assert Settings().periods == DEFAULT_PERIODS and DEFAULT_PERIODS.is_file()


def _doc_examples() -> list[str]:
    text = (REPO / "docs" / "report.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```\n(.*?)```", text, re.DOTALL)
    return [line.strip() for b in blocks for line in b.splitlines()
            if line.strip().startswith("mobilize compare")]


def test_docs_give_the_three_comparison_examples() -> None:
    examples = _doc_examples()
    assert len(examples) == 3
    assert any("--by year --a 2026 --b 2025" in e for e in examples)
    assert any(e.count("--corpus") == 2 for e in examples)
    assert any("--by period" in e for e in examples)


@pytest.mark.slow
@pytest.mark.parametrize("example", _doc_examples())
def test_docs_comparison_example_runs_as_written(example: str, tmp_path: Path) -> None:
    import shlex

    from conftest import SHARED_CORPORA

    args = shlex.split(example)[1:]
    for i, arg in enumerate(args):
        if arg.startswith("../shared/corpora/"):
            args[i] = str(shared_corpus(arg.split("/")[-1]))
    assert SHARED_CORPORA.is_dir()
    if "--segmenter" not in args:
        args += ["--segmenter", "jieba-rs"]  # the segmenter does not matter here; speed does
    code, output = _cli(args + ["--out", str(tmp_path)])
    assert code == 0, output
    folders = [p for p in (tmp_path / "compare").glob("*-vs-*") if p.is_dir()]  # (not the lock)
    assert len(folders) == 1
    diff = pd.read_csv(folders[0] / "differences.csv", keep_default_na=False,
                       na_values={c: [""] for c in ("ci_low", "ci_high", "p_value",
                                                    "p_adjusted", "significant")})
    assert len(diff) >= 10 and diff["rate_a"].notna().all() and diff["rate_b"].notna().all()
    inferential = diff["inference"] == ""
    assert (diff.loc[inferential, "ci_low"] <= diff.loc[inferential, "difference"] + 1e-9).all()
    assert (diff.loc[inferential, "difference"]
            <= diff.loc[inferential, "ci_high"] + 1e-9).all()
    # A group of fewer than 5 documents (the one national report of 2025-2026 against 62
    # provincial ones) is described, never starred: no interval, no p-value.
    small = ~inferential
    assert (diff.loc[small, "inference"].str.startswith("descriptive only")).all()
    assert diff.loc[small, ["ci_low", "ci_high", "p_value", "significant"]].isna().all().all()
    if example.count("--corpus") == 2:
        assert small.all() and "descriptive only" in output.lower()
        assert "1 documents" in output or "1 document" in output
    key = pd.read_csv(folders[0] / "keyness.csv")
    assert (key["within"] == "all").any()


def _write_run(folder: Path, documents: pd.DataFrame, scores: pd.DataFrame,
               term_counts: pd.DataFrame) -> Path:
    folder.mkdir(parents=True)
    documents.to_csv(folder / "documents.csv", index=False)
    scores.to_csv(folder / "scores.csv", index=False)
    term_counts.to_csv(folder / "term_counts.csv", index=False)
    pd.DataFrame(columns=["doc_id", "unit", "dimension_a", "category_a", "dimension_b",
                          "category_b", "count"]).to_csv(folder / "cooccurrence.csv",
                                                         index=False)
    (folder / "run.json").write_text('{"corpus": {"name": "toy"}, "finished": "2026-01-01"}',
                                     encoding="utf-8")
    return folder


def test_a_run_with_no_documents_gets_a_report_that_says_so(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    docs = pd.DataFrame(columns=["doc_id", "title", "date", "year", "level", "tokens",
                                 "sentences", "paragraphs", "sha256"])
    scores = pd.DataFrame(columns=["doc_id", "scope", "dimension", "category", "count",
                                   "tokens", "rate_per_10k"])
    tc = pd.DataFrame(columns=["doc_id", "dimension", "category", "term", "count"])
    run_dir = _write_run(tmp_path / "toy", docs, scores, tc)
    written = report.write_report(run_dir, Settings())
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "one year only" in html or "no time series" in html
    assert "No KWIC examples: the corpus folder None is not available" in html
    assert run_dir / "report.md" in written


def test_one_year_of_documents_gets_no_trend_test_and_says_why(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    docs = pd.DataFrame({"doc_id": ["a", "b"], "title": ["甲", "乙"], "date": ["2025", "2025"],
                         "year": [2025, 2025], "level": ["provincial", "provincial"],
                         "region": ["上海市", "北京市"], "tokens": [1000, 3000],
                         "sentences": [10, 30], "paragraphs": [2, 3], "sha256": ["x", "y"]})
    scores = pd.DataFrame({"doc_id": ["a", "b"], "scope": ["all", "all"],
                           "dimension": ["feature", "feature"],
                           "category": ["F2_common_prosperity"] * 2, "count": [2, 3],
                           "tokens": [1000, 3000], "rate_per_10k": [20.0, 10.0]})
    tc = pd.DataFrame({"doc_id": ["a", "b"], "dimension": ["feature", "feature"],
                       "category": ["F2_common_prosperity"] * 2, "term": ["共同富裕"] * 2,
                       "count": [2, 3]})
    run_dir = _write_run(tmp_path / "toy", docs, scores, tc)
    report.write_report(run_dir, Settings())
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "Too few years with documents (1, fewer than 3) for a trend test" in md
    by_region = pd.read_csv(run_dir / "tables" / "rates_by_region.csv")
    assert list(by_region["region"]) == ["上海市", "北京市"]
    assert list(by_region["rate_per_10k"]) == pytest.approx([20.0, 10.0])
    overall = pd.read_csv(run_dir / "tables" / "rates_overall.csv")
    assert overall.loc[overall["scope"] == "all", "rate_per_10k"].iloc[0] == pytest.approx(
        5 / 4000 * 10_000)
    assert (run_dir / "figures" / "rates_by_region.png").is_file()


@pytest.mark.parametrize("years,says", [
    ([None, None], "No document has a year (no 4-digit year in the file names"),
    ([2019, 2021, None], "1 document(s) without a year are left out of the rates per year"),
])
def test_documents_without_a_year_are_named_not_called_one_year(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, years: list[int | None],
        says: str) -> None:
    # A folder whose file names hold no year once got "documents from one year only".
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    ids = [f"d{i}" for i in range(len(years))]
    docs = pd.DataFrame({"doc_id": ids, "title": ["通知"] * len(ids), "date": [
        str(y) if y else "" for y in years], "year": pd.array(years, dtype="Int64"),
        "tokens": [100] * len(ids), "sentences": [1] * len(ids), "paragraphs": [1] * len(ids),
        "sha256": ids})
    scores = pd.DataFrame({"doc_id": ids, "scope": ["all"] * len(ids),
                           "dimension": ["feature"] * len(ids),
                           "category": ["F1_population"] * len(ids), "count": [1] * len(ids),
                           "tokens": [100] * len(ids), "rate_per_10k": [100.0] * len(ids)})
    tc = pd.DataFrame({"doc_id": ids, "dimension": ["feature"] * len(ids),
                       "category": ["F1_population"] * len(ids), "term": ["全覆盖"] * len(ids),
                       "count": [1] * len(ids)})
    run_dir = _write_run(tmp_path / "toy", docs, scores, tc)
    report.write_report(run_dir, Settings())
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert says in md and "one year only" not in md
    assert f"Too few years with documents ({len([y for y in years if y])}, fewer than 3)" in md


def _one_document_run(tmp_path: Path) -> Path:
    """A run folder with one document and one hit (全覆盖, F1) in 2025."""
    docs = pd.DataFrame({"doc_id": ["a"], "title": ["甲"], "date": ["2025"], "year": [2025],
                         "tokens": [100], "sentences": [1], "paragraphs": [1], "sha256": ["x"]})
    scores = pd.DataFrame({"doc_id": ["a"], "scope": ["all"], "dimension": ["feature"],
                           "category": ["F1_population"], "count": [1], "tokens": [100],
                           "rate_per_10k": [100.0]})
    tc = pd.DataFrame({"doc_id": ["a"], "dimension": ["feature"], "category": ["F1_population"],
                       "term": ["全覆盖"], "count": [1]})
    return _write_run(tmp_path / "toy", docs, scores, tc)


def test_empty_discovery_tables_show_their_reason(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    empty = pd.DataFrame(columns=["term", "category"])
    empty.attrs["reason"] = "fewer than 3 periods with documents"
    monkeypatch.setattr("pipeline.discover.discovery_tables",
                        lambda run_dir, settings: {"drift": empty})
    run_dir = _one_document_run(tmp_path)
    report.write_report(run_dir, Settings(discover=True))
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "drift: not computed (fewer than 3 periods with documents)." in html
    assert not (run_dir / "tables" / "drift.csv").exists()


def test_discovery_is_off_by_default_and_the_report_says_how_to_turn_it_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def never(run_dir: Path, settings: Settings) -> dict[str, pd.DataFrame]:
        raise AssertionError("discovery must not run unless asked for")

    monkeypatch.setattr("pipeline.discover.discovery_tables", never)
    assert Settings().discover is False
    run_dir = _one_document_run(tmp_path)
    report.write_report(run_dir, Settings())
    for name in ("report.html", "report.md"):
        text = (run_dir / name).read_text(encoding="utf-8")
        assert "Discovery" in text and "mobilize run --discover" in text, name
        assert "mobilize report --discover" in text, name
    assert not (run_dir / "tables" / "topics.csv").exists()


def test_run_and_report_commands_offer_discover() -> None:
    for command in ("run", "report"):
        code, out = _cli([command, "--help"])
        assert code == 0 and "--discover" in out and "--no-discover" in out, command


@pytest.mark.slow
def test_cached_figures_are_the_drawn_ones_byte_for_byte(hostile_run: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    first, again = tmp_path / "a" / hostile_run.name, tmp_path / "b" / hostile_run.name
    for folder in (first, again):
        shutil.copytree(hostile_run, folder, ignore=shutil.ignore_patterns(
            "report.*", "figures", "tables"))
    settings = Settings(cache=tmp_path / "cache")
    drawn = report.write_report(first, settings)  # draws every figure and caches it
    pngs = sorted((first / "figures").glob("*.png"))
    cached = sorted((tmp_path / "cache" / "report-figures").iterdir())
    assert pngs and len(cached) == 2 * len(pngs)

    def no_drawing(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached figure was drawn again")

    from pipeline import figures, render

    monkeypatch.setattr(render, "save_figure", no_drawing)
    monkeypatch.setattr(figures, "new_figure", no_drawing)
    from_cache = report.write_report(again, settings)
    assert [p.relative_to(again) for p in from_cache] == [p.relative_to(first) for p in drawn]
    for p in from_cache:
        assert p.read_bytes() == (first / p.relative_to(again)).read_bytes(), p.name


def test_the_figure_cache_key_follows_the_inputs() -> None:
    df = pd.DataFrame({"year": [2020, 2021], "rate_per_10k": [1.0, 2.0]})
    key = report._figure_key("rates_by_year", [df, {"F1": "F1 人口"}])
    assert key == report._figure_key("rates_by_year", [df.copy(), {"F1": "F1 人口"}])
    changed = df.assign(rate_per_10k=[1.0, 2.5])
    assert key != report._figure_key("rates_by_year", [changed, {"F1": "F1 人口"}])
    assert key != report._figure_key("rates_by_year", [df, {"F1": "F1 人口规模"}])
    assert key != report._figure_key("rates_by_year_domain", [df, {"F1": "F1 人口"}])
    cat = df.assign(period=pd.Categorical(["a", "b"], categories=["a", "b"], ordered=True))
    reordered = df.assign(period=pd.Categorical(["a", "b"], categories=["b", "a"], ordered=True))
    assert report._figure_key("p", [cat]) != report._figure_key("p", [reordered])


def test_a_run_parses_its_lexicon_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine hands the report the lexicon it ran with instead of the report reading
    the file again."""
    from pipeline import engine, lexicon

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in (("2020-a", "完善社会保障体系，推进共同富裕。\n"),
                       ("2021-b", "积极应对人口老龄化。\n")):
        (corpus / f"{name}.txt").write_text(text, encoding="utf-8")
    # (a file, not a list: the run may plan in a forked helper, which parses there)
    log_file = tmp_path / "parsed.txt"
    parse_file = lexicon._parse_file

    def counting(path: Path) -> object:
        with open(log_file, "a", encoding="utf-8") as fh:
            fh.write(f"{path}\n")
        return parse_file(path)

    seen: list[object] = []
    monkeypatch.setattr(lexicon, "_parse_file", counting)
    monkeypatch.setattr(report, "render", lambda *args, **kwargs: seen.append(args[2]) or [])
    settings = Settings(corpus=corpus, corpus_name="c", out=tmp_path / "out", engine="local",
                        cache=tmp_path / "cache", segmenter="jieba-rs", workers=1,
                        progress=False, report=True)
    engine.run_local(settings)
    parsed = log_file.read_text(encoding="utf-8").split() if log_file.exists() else []
    assert len(parsed) == 1, parsed
    labels = seen[0].labels  # the report had the lexicon: its categories label the tables
    assert labels and all(k in labels[k] for k in labels)


def test_the_report_reads_the_lexicon_when_it_is_not_the_runs(hostile_run: Path) -> None:
    from pipeline.lexicon import load_lexicon

    run = report.compare.read_run(hostile_run)
    ran_with = load_lexicon(Settings().lexicon)
    assert report._load_lexicon(run, Settings(), ran_with) is ran_with
    other = load_lexicon(REPO / "tests" / "fixtures" / "engine" / "mini.yaml")
    assert other.hash != ran_with.hash
    reread = report._load_lexicon(run, Settings(), other)
    assert reread is not other and reread is not None and reread.hash == ran_with.hash


def _workbook_tables() -> dict[str, pd.DataFrame]:
    return {"b": pd.DataFrame({"n": [1, 2], "text": ["=1+1", "中文"]}),
            "a": pd.DataFrame({"rate": [0.5, float("nan")], "flag": [True, False]})}


def test_cached_workbook_is_the_built_one_byte_for_byte(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    report._write_xlsx(_workbook_tables(), tmp_path / "built.xlsx", cache)
    assert len(list((cache / "report-xlsx").iterdir())) == 1
    report._write_xlsx(_workbook_tables(), tmp_path / "plain.xlsx")  # no cache
    assert (tmp_path / "plain.xlsx").read_bytes() == (tmp_path / "built.xlsx").read_bytes()

    def no_building(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached workbook was built again")

    from pipeline import render

    monkeypatch.setattr(render, "_build_xlsx", no_building)
    report._write_xlsx(_workbook_tables(), tmp_path / "copied.xlsx", cache)
    assert (tmp_path / "copied.xlsx").read_bytes() == (tmp_path / "built.xlsx").read_bytes()
    wb = load_workbook(tmp_path / "copied.xlsx", read_only=True)
    assert wb.sheetnames == ["a", "b"]
    assert [list(r) for r in wb["b"].iter_rows(values_only=True)] == [
        ["n", "text"], [1, "'=1+1"], [2, "中文"]]


def test_the_workbook_cache_key_follows_the_cells() -> None:
    def key(tables: dict[str, pd.DataFrame]) -> str:
        return report._xlsx_key([(name[:31], report._xlsx_rows(df))
                                 for name, df in sorted(tables.items())])

    base = _workbook_tables()
    assert key(base) == key({k: v.copy() for k, v in base.items()})
    assert key(base) != key({**base, "b": base["b"].assign(n=[1, 3])})
    assert key(base) != key({**base, "b": base["b"].assign(n=[1.0, 2.0])})  # 1 is not 1.0
    assert key(base) != key({**base, "a": base["a"].assign(flag=[1, 0])})  # nor True 1
    assert key(base) != key({**base, "b": base["b"].rename(columns={"n": "m"})})
    assert key(base) != key({"c": base["b"], "a": base["a"]})


def test_a_cache_that_cannot_be_written_gives_the_same_report(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    files = {}
    for name, cache in (("good", tmp_path / "cache"), ("bad", tmp_path / "a-file" / "cache")):
        run_dir = _one_document_run(tmp_path / name)
        written = report.write_report(run_dir, Settings(cache=cache))
        files[name] = {p.relative_to(run_dir): p.read_bytes() for p in written}
    assert files["good"] == files["bad"]
    assert not (tmp_path / "a-file" / "cache").exists()


def test_the_page_embeds_the_font_subset_of_its_own_characters(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    run_dir = _one_document_run(tmp_path)
    cache = tmp_path / "cache"
    report.write_report(run_dir, Settings(cache=cache))
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert report._FONT_MARKER not in page
    embedded = re.findall(r"url\(data:font/otf;base64,([A-Za-z0-9+/=]+)\)", page)
    assert embedded == [report._font_face(page, cache)]  # (the subset adds no character)


def test_a_corpus_without_years_gets_its_report_and_one_warning(tmp_path: Path) -> None:
    """A researcher's folder whose file names carry no year and that has no metadata.csv:
    the run writes its tables and report (the year-based parts are empty, nothing crashes),
    and the missing years are reported once, not once per scan of the folder."""
    corpus = tmp_path / "无年份"
    corpus.mkdir()
    (corpus / "通知.txt").write_text("健全社会保障体系，鼓励慈善组织和志愿服务参与社会救助。\n",
                                   encoding="utf-8")
    (corpus / "意见.txt").write_text("推进基本养老保险全国统筹。\n", encoding="utf-8")
    # (the command line, as a researcher runs it: the scan may happen in the run's forked
    # helper, whose warnings reach the terminal, not this process's log capture)
    env = dict(os.environ, MOBILIZE_CACHE_DIR=str(tmp_path / "cache"),
               MOBILIZE_CONFIG_DIR=str(tmp_path / "config"), MOBILIZE_HOME=str(tmp_path / "home"))
    done = subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "run",
                           "--corpus", str(corpus), "--out", str(tmp_path / "out"), "--engine",
                           "local", "--workers", "1", "--segmenter", "jieba-rs"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("no 4-digit year") == 1, done.stderr
    run_dir = tmp_path / "out" / "无年份"
    docs = pd.read_csv(run_dir / "documents.csv")
    assert sorted(docs["doc_id"]) == ["意见", "通知"] and docs["year"].isna().all()
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "无年份" in page and "通知" in page


def _panel_run(tmp_path: Path) -> Path:
    """Shanghai alone 2020-2022, then Shanghai, Beijing and Anhui 2023-2024, with a
    NOTES.md caveat in a corpus folder the run names (run.json's root)."""
    rows = [(f"{y}-sh", y, "上海市") for y in range(2020, 2025)]
    rows += [(f"{y}-{r}", y, name) for y in (2023, 2024)
             for r, name in (("bj", "北京市"), ("ah", "安徽省"))]
    ids = [r[0] for r in rows]
    docs = pd.DataFrame({"doc_id": ids, "title": ids, "date": [str(r[1]) for r in rows],
                         "year": [r[1] for r in rows], "level": "provincial",
                         "region": [r[2] for r in rows],
                         "doc_type": ["budget_report" if i == "2021-sh" else
                                      "government_work_report" for i in ids],
                         "tokens": 1000, "sentences": 10, "paragraphs": 2, "sha256": ids})
    counts = [3 if r[2] == "上海市" else 1 for r in rows]
    scores = pd.DataFrame({"doc_id": ids, "scope": "all", "dimension": "feature",
                           "category": "F2_common_prosperity", "count": counts,
                           "tokens": 1000, "rate_per_10k": [c * 10.0 for c in counts]})
    tc = pd.DataFrame({"doc_id": ids, "dimension": "feature",
                       "category": "F2_common_prosperity", "term": "共同富裕",
                       "count": counts})
    run_dir = _write_run(tmp_path / "toy", docs, scores, tc)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "NOTES.md").write_text(
        "# toy\n\n## Caveats\n- 2021 is a <b>budget</b> report standing in for the work "
        "report.\n- Shanghai only before 2023.\n\n## Other\n- not a caveat\n",
        encoding="utf-8")
    (run_dir / "run.json").write_text(json.dumps(
        {"corpus": {"name": "toy", "root": str(corpus)}, "finished": "2026-01-01"}),
        encoding="utf-8")
    return run_dir


def test_a_change_of_units_breaks_the_line_and_gets_a_balanced_panel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    run_dir = _panel_run(tmp_path)
    report.write_report(run_dir, Settings())
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "The set of units (level and region) changes in 2023" in md
    comp = pd.read_csv(run_dir / "tables" / "composition_by_year.csv")
    assert list(comp["units"]) == [1, 1, 1, 3, 3]
    balanced = pd.read_csv(run_dir / "tables" / "rates_by_year_balanced.csv")
    assert set(balanced["documents"]) == {1}  # Shanghai alone, every year
    assert balanced["rate_per_10k"].tolist() == pytest.approx([30.0] * 5)
    assert (run_dir / "figures" / "rates_by_year_balanced.png").is_file()
    # In the figure no line runs across the break (2022 -> 2023), and it is marked.
    rates = pd.read_csv(run_dir / "tables" / "rates_by_year.csv")
    with report._style():
        fig = report._line_figure(rates, "year", {}, "t", [2023])
    ax = fig.axes[0]
    lines = [ln for ln in ax.get_lines() if ln.get_linestyle() == "-"]
    assert len(lines) == 2
    assert all(not (min(ln.get_xdata()) < 2023 <= max(ln.get_xdata())) for ln in lines)
    assert any(ln.get_linestyle() == "--" and ln.get_xdata()[0] == 2022.5
               for ln in ax.get_lines())
    ticks = [t for t in ax.get_xticks() if 2020 <= t <= 2024]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_report_shows_corpus_caveats_and_no_absolute_paths(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    run_dir = _panel_run(tmp_path)
    report.write_report(run_dir, Settings())
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "From the corpus's NOTES.md: 2021 is a &lt;b&gt;budget&lt;/b&gt; report" in md
    assert "2021 is a &lt;b&gt;budget&lt;/b&gt; report" in html and "not a caveat" not in md
    # (document metadata is Markdown-escaped in report.md: no emphasis from an underscore)
    assert "1 document(s) are not of the corpus's usual type (government\\_work\\_report): " \
           "2021-sh (budget\\_report)" in md
    assert "Periods from lexicons/periods.yaml" in md
    for text in (md, html):
        assert str(tmp_path) not in text and str(REPO) not in text
    # p-values in scientific notation in the CSV tables.
    trends = (run_dir / "tables" / "trends.csv").read_text(encoding="utf-8")
    header, *rows = trends.splitlines()
    p = header.split(",").index("mk_p_value")
    assert rows and all(re.fullmatch(r"(\d\.\d{3}e[+-]\d\d)?", r.split(",")[p]) for r in rows)


def test_the_report_never_runs_the_engine() -> None:
    """The caller runs the engine, then the report: no module of the report imports it."""
    import ast

    for name in ("report.py",):
        tree = ast.parse((REPO / "pipeline" / name).read_text(encoding="utf-8"))
        imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                    and node.module == "pipeline" for alias in node.names}
        imported |= {node.module for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom) and node.module}
        assert "engine" not in imported and "pipeline.engine" not in imported, name


def test_trends_of_a_changing_population_come_from_the_balanced_panel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    run_dir = _panel_run(tmp_path)
    report.write_report(run_dir, Settings())
    trends = pd.read_csv(run_dir / "tables" / "trends.csv", keep_default_na=False)
    assert set(trends["panel"]) == {"balanced: provincial/上海市"}
    # Shanghai alone: 5 documents over 5 years, not the 9 documents of all units.
    assert set(trends["documents"]) == {5} and set(trends["years"]) == {5}
    # Shanghai's rate is flat (3 per 1,000 tokens every year): no trend, although the
    # pooled rate of all units falls from 30 to 17 per 10k when Beijing and Anhui join.
    f2 = trends.set_index("category").loc["F2_common_prosperity"]
    assert f2["trend"] == "no trend"
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "the trends are those of the balanced panel (provincial/上海市)" in md


def _ss_run(scopes: tuple[str, ...]) -> compare.RunTables:
    """Two documents of two years; per scope its own counts and tokens (the window larger
    than the D sentences), so the rates say which scope a table used."""
    docs = pd.DataFrame({"doc_id": ["a", "b"], "title": ["甲", "乙"], "date": ["2024", "2025"],
                         "year": [2024, 2025], "level": ["national"] * 2, "tokens": [1000, 1000],
                         "sentences": [10, 10], "paragraphs": [2, 2], "sha256": ["x", "y"],
                         "corpus": ["c", "c"]})
    size = {"all": (8, 1000), "domain_sentences": (1, 100), "domain_window": (3, 200),
            "domain_paragraphs": (5, 400)}
    scores = pd.DataFrame([(d, sc, "feature", "F1_population", size[sc][0], size[sc][1],
                            size[sc][0] / size[sc][1] * 10_000)
                           for d in ("a", "b") for sc in scopes],
                          columns=["doc_id", "scope", "dimension", "category", "count",
                                   "tokens", "rate_per_10k"])
    tc = pd.DataFrame(columns=["doc_id", "dimension", "category", "term", "count"])
    cooc = pd.DataFrame(columns=["doc_id", "unit", "dimension_a", "category_a", "dimension_b",
                                 "category_b", "count"])
    return compare.RunTables(docs, tc, scores, cooc, {})


@pytest.mark.parametrize(("scopes", "ss", "rate"), [
    (("all", "domain_sentences", "domain_paragraphs", "domain_window"), "domain_window", 150.0),
    (("all", "domain_sentences", "domain_paragraphs"), "domain_sentences", 100.0),  # older run
])
def test_headline_social_security_views_use_the_window_scope(
        scopes: tuple[str, ...], ss: str, rate: float) -> None:
    from pipeline import report_analysis

    run = _ss_run(scopes)
    assert report_analysis.ss_scope(run.scores) == ss
    a = report_analysis.analyse(run, [], seed=1, n_boot=50)
    overall = a.tables["rates_overall"]
    assert list(overall["scope"]) == ["all", ss]
    assert overall.set_index("scope").loc[ss, "rate_per_10k"] == pytest.approx(rate)
    assert overall.set_index("scope").loc["all", "rate_per_10k"] == pytest.approx(80.0)
    by_year = a.tables["rates_by_year_domain"]
    assert list(by_year["tokens"]) == ([200, 200] if ss == "domain_window" else [100, 100])
    assert list(by_year["rate_per_10k"]) == pytest.approx([rate, rate])
