"""Discovery: Word2Vec suggestions, the review/accept step, drift and topics.

Unit tests use inline Chinese snippets; integration tests read the real corpora from
../shared/corpora (npc-resolutions-gwr-zh is small; gwr-national-zh is marked slow).
Every test gets its own model cache, so "trained once" is counted, not timed.
"""

from __future__ import annotations

import csv
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from pipeline import discover, normalize
from pipeline.config import Settings
from pipeline.errors import MobilizeError
from tests.conftest import shared_corpus

LEXICON_YAML = """\
# a small lexicon for the discovery tests (codebook ids, a few seed terms each)
schema: 1
name: discover-test
version: 1.4.2
dimensions:
  feature:
    categories:
      - id: F2_common_prosperity
        name_zh: 全体人民共同富裕的现代化
        name_en: Common prosperity
        definition: Institutional design pursues common prosperity.
        terms:
          - 共同富裕
          - 收入分配
          - 精准扶贫
          - term: 兜底
            note: 兜底保障 (bottom-line guarantee)
  pathway:
    categories:
      - id: P2_philosophy
        name_zh: 鲜明的动员理念
        name_en: Mobilisation philosophy
        definition: People-centred mobilisation ideas.
        terms:
          - 以人民为中心
          - 获得感
          - 幸福感
      - id: P4_technology
        name_zh: 动员手段的技术创新
        name_en: Technology
        definition: Technical means of mobilisation.
        terms:
          - 互联网+
          - 大数据
          - 信息化
          - 数字化
          - 人工智能
  challenge:
    categories:
      - id: C3_economic_normal
        name_zh: 经济新常态
        name_en: Economic new normal
        definition: Slower growth and structural reform.
        terms:
          - 新常态
          - 下行压力
          - 供给侧结构性改革
          - 高质量发展
        excluded:
          - term: 常态化
            note: 常态化 is "regularised", not the new normal
  domain:
    categories:
      - id: D_social_security
        name_zh: 社会保障
        name_en: Social security
        definition: Passages about the social security system.
        terms:
          - 社会保障
          - 养老保险
          - 医疗保险
          - 社会救助
          - 养老金
          - 就业
"""


@pytest.fixture
def lexicon_file(tmp_path: Path) -> Path:
    path = tmp_path / "lexicon.yaml"
    path.write_text(LEXICON_YAML, encoding="utf-8")
    return path


def _settings(tmp_path: Path, lexicon: Path, name: str = "cache", **kw: object) -> Settings:
    kw.setdefault("segmenter", "jieba")
    return Settings(lexicon=lexicon, cache=tmp_path / name, **kw)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- unit


def test_keep_token_drops_stopwords_numbers_enumerations_single_characters_and_punctuation() -> None:
    stop = discover.stopwords()
    kept = [t for t in ["养老保险", "的", "2020", "13.6", "三", "，", "5G", "一二三", "进一步", "互联网+",
                        "五是", "第三节", "2020年", "13亿"]
            if discover.keep_token(t, stop)]
    assert kept == ["养老保险", "5G", "互联网+"]


def test_kwic_lines_take_one_context_per_document_and_stop_at_the_paragraph() -> None:
    texts = ["甲乙丙\n完善社会救助制度，兜底保障。", "无关的文字", "加强社会救助。"]
    assert discover.kwic_lines(texts, "社会救助", width=3) == ["完善【社会救助】制度，", "加强【社会救助】。"]


def test_bump_version_increments_the_last_number() -> None:
    assert discover.bump_version("1.4.2") == "1.4.3"
    assert discover.bump_version("0.9") == "0.10"
    assert discover.bump_version("draft") == "draft.1"


def test_a_yaml_review_reads_back_the_rows_it_was_written_with(tmp_path: Path) -> None:
    df = pd.DataFrame([{c: "" for c in discover.REVIEW_COLUMNS} | {
        "category": "F2_common_prosperity", "rank": 1, "term": "兜住", "score": 0.8873,
        "frequency": 6, "kwic_1": "注重制度建设,【兜住】民生底线"}], columns=list(discover.REVIEW_COLUMNS))
    path = tmp_path / "review.yaml"
    discover.write_review(df, path, source="gwr-national-zh")
    (row,) = discover.read_review(path)
    assert (row["category"], row["rank"], row["term"], row["score"], row["frequency"]) == \
        ("F2_common_prosperity", "1", "兜住", "0.8873", "6")
    assert row["kwic_1"] == "注重制度建设,【兜住】民生底线" and row["accept"] == ""


def test_a_broken_yaml_review_is_reported_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "review.yaml"
    path.write_text("suggestions:\n  - category: P4_technology\n    term: [云计算\n", encoding="utf-8")
    with pytest.raises(MobilizeError) as info:
        discover.read_review(path)
    assert info.value.path == str(path) and info.value.line is not None


def test_model_dir_refuses_a_key_that_is_not_a_hash(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        discover.model_dir(tmp_path, "../../elsewhere")


def test_load_periods_reads_open_ended_periods_and_falls_back_to_decades(tmp_path: Path) -> None:
    path = tmp_path / "periods.yaml"
    path.write_text("periods:\n  - {name: early, start: 1990, end: 2012}\n"
                    "  - {name: late, start: 2013, end: null}\n", encoding="utf-8")
    assert discover.load_periods(path, []) == [discover.Period("early", 1990, 2012),
                                               discover.Period("late", 2013, 9999)]
    assert [p.name for p in discover.load_periods(tmp_path / "absent.yaml", [1999, 2001, 2024])] == \
        ["1990s", "2000s", "2020s"]


def test_load_periods_names_the_file_when_a_period_has_no_start(tmp_path: Path) -> None:
    path = tmp_path / "periods.yaml"
    path.write_text("- {name: x, end: 2000}\n", encoding="utf-8")
    with pytest.raises(MobilizeError, match="periods.yaml"):
        discover.load_periods(path, [])


def test_small_input_gives_empty_topic_and_drift_tables_with_a_reason(tmp_path: Path,
                                                                       lexicon_file: Path) -> None:
    corpus = tmp_path / "tiny"
    corpus.mkdir()
    (corpus / "2019.txt").write_text("完善社会保障制度。\n推进大数据应用。", encoding="utf-8")
    (corpus / "2024.txt").write_text("发展数字经济，完善社会救助。", encoding="utf-8")
    settings = _settings(tmp_path, lexicon_file, corpus=corpus, periods=None)
    tables = discover.discovery_tables(tmp_path / "run", settings)
    assert set(tables) == {"topics", "topic_prevalence", "drift"}
    for name, df in tables.items():
        assert df.empty, name
        assert df.attrs["reason"], name
    assert list(tables["topics"].columns) == list(discover.TOPIC_COLUMNS)


# --------------------------------------------------------------------------- suggestions (real text)


def _npc_suggestions(tmp_path: Path, lexicon: Path, cache: str = "cache") -> pd.DataFrame:
    root = shared_corpus("npc-resolutions-gwr-zh")
    return discover.suggest([root], _settings(tmp_path, lexicon, cache), min_count=2, per_category=5)


def test_suggestions_are_new_tokens_ranked_by_the_documented_score(tmp_path: Path,
                                                                   lexicon_file: Path) -> None:
    df = _npc_suggestions(tmp_path, lexicon_file)
    assert list(df.columns) == list(discover.REVIEW_COLUMNS)
    assert len(df) > 0
    lex = discover.lexicon_view(lexicon_file)
    assert not set(df["term"]) & lex.known  # never a lexicon term nor an excluded phrase
    assert (df["score"] - (df["similarity_centroid"] + df["similarity_nearest"]) / 2).abs().max() < 1e-3
    for cat, group in df.groupby("category"):
        assert list(group["rank"]) == list(range(1, len(group) + 1))
        assert group["score"].is_monotonic_decreasing
        assert set(group["nearest_member"]) <= set(lex.categories[str(cat)])
    assert (df["frequency"] >= 2).all() and (df["documents"] >= 2).all()
    # most substring hits of a suggestion are the token itself (else it would count other words)
    assert (df["substring_hits"] >= df["frequency"]).all()
    assert (df["frequency"] >= 0.5 * df["substring_hits"]).all()
    # KWIC lines are real substrings of the (normalised) corpus around the suggested term
    row = df.iloc[0]
    assert f"【{row['term']}】" in row["kwic_1"]
    texts = "\n".join(normalize.text(p.read_text(encoding="utf-8")) for p in
                      sorted(shared_corpus("npc-resolutions-gwr-zh").glob("*.txt")))
    assert row["kwic_1"].replace("【", "").replace("】", "") in texts
    assert set(df["accept"]) == {""}
    assert set(df["source"]) == {"npc-resolutions-gwr-zh"}


def test_two_trainings_give_the_same_vectors_and_suggestions(tmp_path: Path, lexicon_file: Path) -> None:
    a = _npc_suggestions(tmp_path, lexicon_file, "cache-a")
    b = _npc_suggestions(tmp_path, lexicon_file, "cache-b")
    pd.testing.assert_frame_equal(a, b)
    files = sorted((tmp_path / "cache-a" / "models").glob("*/vectors.bin"))
    assert len(files) == 1
    twin = tmp_path / "cache-b" / "models" / files[0].parent.name / "vectors.bin"
    assert files[0].read_bytes() == twin.read_bytes()


@pytest.mark.slow
def test_suggestions_do_not_depend_on_the_python_hash_seed(tmp_path: Path, lexicon_file: Path) -> None:
    root = shared_corpus("npc-resolutions-gwr-zh")
    outputs = []
    for hashseed in ("1", "12345"):
        out = tmp_path / f"review-{hashseed}.csv"
        env = {**os.environ, "PYTHONHASHSEED": hashseed, "MOBILIZE_CACHE_DIR": str(tmp_path / hashseed)}
        subprocess.run([sys.executable, "-c", "from pipeline.cli import main; main()", "lexicon", "suggest",
                        "--corpus", str(root), "--lexicon", str(lexicon_file), "--min-count", "2",
                        "--segmenter", "jieba-rs", "--out", str(out)], check=True, env=env, cwd=tmp_path, capture_output=True)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    assert outputs[0].count(b"\n") > 1


def test_the_second_call_reuses_the_cached_model(tmp_path: Path, lexicon_file: Path) -> None:
    before = discover.TRAININGS.count
    first = _npc_suggestions(tmp_path, lexicon_file)
    assert discover.TRAININGS.count == before + 1
    second = _npc_suggestions(tmp_path, lexicon_file)
    assert discover.TRAININGS.count == before + 1
    pd.testing.assert_frame_equal(first, second)
    # a different seed is a different model
    discover.suggest([shared_corpus("npc-resolutions-gwr-zh")], _settings(tmp_path, lexicon_file),
                     min_count=2, seed=7)
    assert discover.TRAININGS.count == before + 2


def test_models_are_loaded_only_from_the_cache_and_never_unpickled(tmp_path: Path, lexicon_file: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from gensim.models import KeyedVectors

    _npc_suggestions(tmp_path, lexicon_file)  # trains and stores the model
    cache = tmp_path / "cache"
    (model,) = (cache / "models").iterdir()
    # plant a model with the same key outside the cache, and a pickle in the working folder
    planted = tmp_path / "elsewhere" / "models" / model.name
    planted.mkdir(parents=True)
    (planted / "vectors.bin").write_bytes(b"not a model")
    (tmp_path / "model.pkl").write_bytes(pickle.dumps({"planted": True}))
    monkeypatch.chdir(tmp_path)
    loaded: list[Path] = []
    real = KeyedVectors.load_word2vec_format.__func__  # type: ignore[attr-defined]

    def spy(cls: type, fname: str, *args: object, **kwargs: object) -> object:
        loaded.append(Path(fname).resolve())
        return real(cls, fname, *args, **kwargs)

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("discovery must not unpickle anything")

    monkeypatch.setattr(KeyedVectors, "load_word2vec_format", classmethod(spy))
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    monkeypatch.setattr(KeyedVectors, "load", no_unpickling)
    before = discover.TRAININGS.count
    _npc_suggestions(tmp_path, lexicon_file)
    assert discover.TRAININGS.count == before
    assert loaded == [(model / "vectors.bin").resolve()]
    assert all(cache.resolve() in p.parents for p in loaded)


# --------------------------------------------------------------------------- accept


def _mark(review: Path, marked: Path, accept: dict[int, str]) -> list[dict[str, str]]:
    with review.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    for i, value in accept.items():
        rows[i]["accept"] = value
    with marked.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows


def test_accept_merges_exactly_the_accepted_rows_into_a_valid_new_version(tmp_path: Path,
                                                                           lexicon_file: Path) -> None:
    from pipeline.lexicon import load_lexicon

    df = _npc_suggestions(tmp_path, lexicon_file)
    review = tmp_path / "review.csv"
    discover.write_review(df, review)
    rows = _mark(review, tmp_path / "marked.csv", {0: "yes", 2: "YES", 3: "no"})
    old = load_lexicon(lexicon_file)
    original_text = lexicon_file.read_text(encoding="utf-8")

    result = discover.accept_review(tmp_path / "marked.csv", lexicon_file, today="2026-01-02")

    assert result.added == [(rows[0]["category"], rows[0]["term"]), (rows[2]["category"], rows[2]["term"])]
    new = load_lexicon(lexicon_file)
    assert new.version == "1.4.3" and old.version == "1.4.2"
    for cat in old.categories:
        before = [t.text for t in cat.terms]
        after = [t.text for t in new.category(cat.id).terms]
        expected = [term for c, term in result.added if c == cat.id]
        assert after == before + expected
    added = {t.text: t for t in new.terms() if (t.category, t.text) in set(result.added)}
    note = added[rows[0]["term"]].note
    assert "npc-resolutions-gwr-zh" in note and rows[0]["similarity_centroid"] in note and "2026-01-02" in note
    # the previous version is kept, and comments of the original survive
    assert result.backup is not None and result.backup.read_text(encoding="utf-8") == original_text
    assert lexicon_file.read_text(encoding="utf-8").startswith("# a small lexicon")
    # a second accept of the same file adds nothing and keeps the version
    again = discover.accept_review(tmp_path / "marked.csv", lexicon_file)
    assert again.added == [] and load_lexicon(lexicon_file).version == "1.4.3"


def test_accept_writes_to_out_and_leaves_the_lexicon_alone(tmp_path: Path, lexicon_file: Path) -> None:
    review = tmp_path / "review.yaml"
    review.write_text(yaml.safe_dump({"suggestions": [
        {"category": "P4_technology", "term": "云计算", "accept": "yes", "similarity_centroid": 0.71},
        {"category": "P4_technology", "term": "物联网", "accept": None},
    ]}, allow_unicode=True), encoding="utf-8")
    out = tmp_path / "v2.yaml"
    before = lexicon_file.read_bytes()
    result = discover.accept_review(review, lexicon_file, out)
    assert lexicon_file.read_bytes() == before
    assert result.added == [("P4_technology", "云计算")] and result.backup is None
    data = yaml.safe_load(out.read_text(encoding="utf-8"))
    tech = data["dimensions"]["pathway"]["categories"][1]
    assert tech["terms"][-1]["term"] == "云计算"
    assert "物联网" not in out.read_text(encoding="utf-8")


def test_accept_notes_a_row_without_similarity_columns_without_an_empty_detail(
        tmp_path: Path, lexicon_file: Path) -> None:
    """A review written by hand (a coded candidate sheet) has no similarity columns: the
    note says where the term came from and when, with no empty "(; ...)"."""
    review = tmp_path / "review.csv"
    review.write_text("category,term,accept,note,source\n"
                      "P4_technology,一网通管,yes,,candidates sheet\n", encoding="utf-8")
    out = tmp_path / "v2.yaml"
    discover.accept_review(review, lexicon_file, out, today="2026-12-03")
    tech = yaml.safe_load(out.read_text(encoding="utf-8"))["dimensions"]["pathway"]["categories"][1]
    assert tech["terms"][-1] == {"term": "一网通管", "note": "suggested by mobilize lexicon suggest "
                                 "from candidates sheet (accepted 2026-12-03)"}


def test_accept_names_the_review_line_of_an_unknown_category(tmp_path: Path, lexicon_file: Path) -> None:
    review = tmp_path / "review.csv"
    review.write_text("category,rank,term,accept\nP4_technology,1,云计算,\nX9_unknown,2,物联网,yes\n",
                      encoding="utf-8")
    with pytest.raises(MobilizeError) as info:
        discover.accept_review(review, lexicon_file)
    assert info.value.path == str(review) and info.value.line == 3 and "X9_unknown" in info.value.problem


def test_accept_refuses_a_term_that_another_category_already_holds(tmp_path: Path,
                                                                   lexicon_file: Path) -> None:
    review = tmp_path / "review.csv"
    review.write_text("category,term,accept\nP4_technology,就业,yes\n", encoding="utf-8")
    result = discover.accept_review(review, lexicon_file)
    assert result.added == [] and result.skipped[0][:2] == ("P4_technology", "就业")


# --------------------------------------------------------------------------- drift and topics


def test_drift_lists_tokens_whose_rate_rises_in_the_latest_period(tmp_path: Path, lexicon_file: Path) -> None:
    root = shared_corpus("npc-resolutions-gwr-zh")
    settings = _settings(tmp_path, lexicon_file)
    lex = discover.lexicon_view(lexicon_file)
    tok = discover.build_tokenizer_for(lex, "jieba", True, settings.cache)
    corpus = discover.tokenize_documents(discover.load_documents([root]), tok, settings.cache)
    kv = discover.word_vectors(corpus, discover.EmbeddingParams(min_count=2), settings.cache)
    periods = [discover.Period("early", 1950, 2017), discover.Period("latest", 2018, 2030)]
    df = discover.drift_table(corpus, kv, lex, periods, min_count=3, min_ratio=2.0, near_share=0.5)
    assert list(df.columns) == list(discover.DRIFT_COLUMNS)
    assert len(df) > 0
    assert (df["ratio"] >= 2.0).all() and (df["rate_latest"] > df["rate_early"]).all()
    assert set(df["category"]) <= set(lex.categories)
    # rates are per 10k tokens, recomputed here from the documents' tokens
    late = [i for i, y in enumerate(corpus.years) if y is not None and y >= 2018]
    row = df.iloc[0]
    count = sum(corpus.doc_tokens(i).count(row["term"]) for i in late)
    total = sum(corpus.token_totals[i] for i in late)
    assert row["count_latest"] == count
    assert row["rate_latest"] == pytest.approx(count / total * 10000, abs=1e-3)
    # the same inputs give the same table
    again = discover.drift_table(corpus, kv, lex, periods, min_count=3, min_ratio=2.0, near_share=0.5)
    pd.testing.assert_frame_equal(df, again)


def test_topics_cover_every_year_and_their_prevalence_sums_to_one(tmp_path: Path, lexicon_file: Path) -> None:
    root = shared_corpus("npc-resolutions-gwr-zh")
    settings = _settings(tmp_path, lexicon_file)
    lex = discover.lexicon_view(lexicon_file)
    tok = discover.build_tokenizer_for(lex, "jieba", True, settings.cache)
    corpus = discover.tokenize_documents(discover.load_documents([root]), tok, settings.cache)
    kv = discover.word_vectors(corpus, discover.EmbeddingParams(min_count=2), settings.cache)
    topics, prevalence = discover.topic_tables(corpus, kv, lex, seed=1)
    assert len(topics) == discover.topic_count(20) == 3
    assert list(topics["topic"]) == ["T01", "T02", "T03"]
    assert all(len(t.split()) == 10 for t in topics["top_terms"])
    assert set(topics["nearest_category"]) <= set(lex.categories)
    assert topics["documents"].sum() == 20
    years = sorted({y for y in corpus.years if y is not None})
    assert sorted(prevalence["year"].unique()) == years
    sums = prevalence.groupby("year")["prevalence"].sum()
    assert np.allclose(sums.to_numpy(), 1.0, atol=1e-5)
    again = discover.topic_tables(corpus, kv, lex, seed=1)
    pd.testing.assert_frame_equal(topics, again[0])
    pd.testing.assert_frame_equal(prevalence, again[1])


@pytest.mark.slow
def test_discovery_tables_on_the_national_reports_are_full_and_repeatable(tmp_path: Path,
                                                                          lexicon_file: Path) -> None:
    root = shared_corpus("gwr-national-zh")
    settings = _settings(tmp_path, lexicon_file, corpus=root, segmenter="jieba-rs")
    first = discover.discovery_tables(tmp_path / "run", settings)
    trainings = discover.TRAININGS.count
    second = discover.discovery_tables(tmp_path / "run", settings)
    assert discover.TRAININGS.count == trainings  # the model came from the cache
    for name in ("topics", "topic_prevalence", "drift"):
        assert len(first[name]) > 0, first[name].attrs.get("reason")
        assert first[name].to_csv(index=False) == second[name].to_csv(index=False)
    drift = first["drift"]
    assert (drift["ratio"] >= 3).all()
    assert drift["period_latest"].nunique() == 1  # the latest period of the periods file
    prevalence = first["topic_prevalence"]
    assert prevalence["year"].min() == 1954 and prevalence["year"].max() == 2025


# --------------------------------------------------------------------------- CLI


def test_cli_help_shows_an_example() -> None:
    from pipeline.cli import _register, app

    _register()
    runner = CliRunner()
    for command in ("suggest", "accept"):
        result = runner.invoke(app, ["lexicon", command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Example: mobilize lexicon " + command in result.output


def test_cli_suggest_then_accept_round_trip(tmp_path: Path, lexicon_file: Path) -> None:
    from pipeline.cli import _register, app

    _register()
    runner = CliRunner()
    out = tmp_path / "review.csv"
    result = runner.invoke(app, ["lexicon", "suggest", "--corpus", str(shared_corpus("npc-resolutions-gwr-zh")),
                                 "--lexicon", str(lexicon_file), "--min-count", "2", "--per-category", "3",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    assert header == list(discover.REVIEW_COLUMNS)
    _mark(out, out, {0: "yes"})
    new = tmp_path / "new.yaml"
    result = runner.invoke(app, ["lexicon", "accept", str(out), "--lexicon", str(lexicon_file), "--out", str(new)])
    assert result.exit_code == 0, result.output
    assert "1.4.2 -> 1.4.3" in result.output
    bad = runner.invoke(app, ["lexicon", "accept", str(tmp_path / "missing.csv"), "--lexicon", str(lexicon_file)])
    assert bad.exit_code == 2 and "missing.csv" in bad.output
    bad = runner.invoke(app, ["lexicon", "suggest", "--corpus", str(tmp_path / "no-such-corpus"),
                              "--lexicon", str(lexicon_file), "--out", str(tmp_path / "x.csv")])
    assert bad.exit_code == 2 and "no-such-corpus" in bad.output

