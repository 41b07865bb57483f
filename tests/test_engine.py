"""The in-process engine: tables on a real corpus, byte-identical reruns, incremental work."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import Settings
from pipeline.engine import (
    assemble,
    make_batches,
    plan_run,
    process_batch,
    run_batches,
    run_local,
)
from pipeline.ingest import Source
from tests.conftest import REPO, shared_corpus

MINI = REPO / "tests" / "fixtures" / "engine" / "mini.yaml"
TABLES = ("documents", "ledger", "term_counts", "scores", "cooccurrence", "units")
CSVS = tuple(f"{t}.csv" for t in TABLES)


def _demo_or_npc() -> Path:
    demo = REPO / "corpora" / "demo"
    if demo.is_dir() and any(demo.glob("*.txt")):
        return demo
    return shared_corpus("npc-resolutions-gwr-zh")


def _settings(tmp_path: Path, corpus: Path, **kw: object) -> Settings:
    base = dict(corpus=corpus, corpus_name="c", out=tmp_path / "out", lexicon=MINI,
                cache=tmp_path / "cache", workers=1, report=False, engine="local",
                segmenter="jieba-rs")
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def _copy_corpus(src: Path, dst: Path, n: int | None = None) -> Path:
    dst.mkdir(parents=True)
    for p in sorted(src.glob("*.txt"))[:n]:
        shutil.copy2(p, dst / p.name)
    return dst


@pytest.mark.slow
def test_run_local_writes_every_table_and_reruns_byte_identically(tmp_path: Path) -> None:
    s = _settings(tmp_path, _demo_or_npc(), segmenter="jieba")
    first = run_local(s)
    run_dir = s.out / "c"
    for name in TABLES:
        assert (run_dir / f"{name}.csv").is_file() and (run_dir / f"{name}.parquet").is_file()
    assert (run_dir / "mobilize.duckdb").is_file()
    snapshot = {n: (run_dir / n).read_bytes() for n in CSVS}
    assert first.stats.segmented == first.stats.documents > 0
    assert first.stats.scored == first.stats.documents

    second = run_local(s)
    assert (second.stats.read, second.stats.segmented, second.stats.scored) == (0, 0, 0)
    assert second.stats.score_cache_hits == first.stats.documents
    assert {n: (run_dir / n).read_bytes() for n in CSVS} == snapshot

    docs = pd.read_csv(run_dir / "documents.csv")
    assert list(docs.columns[:10]) == ["doc_id", "path", "title", "date", "year", "issuer",
                                       "level", "region", "doc_type", "language"]
    assert list(docs.columns[-8:]) == ["chars", "tokens", "sentences", "paragraphs", "sha256",
                                       "encoding", "reader", "converted"]
    assert list(docs["doc_id"]) == sorted(docs["doc_id"])
    scores = pd.read_csv(run_dir / "scores.csv")
    assert set(scores["scope"]) == {"all", "domain_sentences", "domain_paragraphs",
                                   "domain_window"}
    assert len(scores) == len(docs) * 4 * 4  # every document x scope x category of mini.yaml
    # units.csv: each document's paragraphs add up to its scores (tokens and counts).
    units = pd.read_csv(run_dir / "units.csv", keep_default_na=False)
    assert set(units["scope"]) == {"all", "domain_sentences", "domain_window"}
    for scope in ("all", "domain_sentences", "domain_window"):
        u = units[units["scope"] == scope]
        sc = scores[scores["scope"] == scope]
        tok = u.drop_duplicates(["doc_id", "block"]).groupby("doc_id")["tokens"].sum()
        want_tok = sc.groupby("doc_id")["tokens"].first()
        assert (tok.reindex(want_tok.index, fill_value=0) == want_tok).all()
        cnt = u[u["category"] != ""].groupby(["doc_id", "category"])["count"].sum()
        want = sc[sc["count"] > 0].set_index(["doc_id", "category"])["count"]
        assert cnt.sort_index().to_dict() == want.sort_index().to_dict()
    manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    assert manifest["corpus"]["documents"] == len(docs)
    assert manifest["lexicon"]["name"] == "engine-mini"
    assert manifest["segmenter"]["name"] == "jieba" and manifest["segmenter"]["hmm"] is True
    assert set(manifest["versions"]) >= {"python", "pandas", "jieba", "rjieba", "pyahocorasick",
                                         "mobilize"}
    import duckdb

    con = duckdb.connect(str(run_dir / "mobilize.duckdb"), read_only=True)
    assert con.execute("select count(*) from scores").fetchone()[0] == len(scores)
    con.close()


@pytest.mark.slow
def test_tables_count_terms_on_a_real_corpus(tmp_path: Path) -> None:
    """Counts in term_counts.csv match a plain substring count for a term nothing hides."""
    root = shared_corpus("social-security-policy-zh")
    s = _settings(tmp_path, root)
    run_local(s)
    terms = pd.read_csv(s.out / "c" / "term_counts.csv")
    got = terms[terms["term"] == "社会保险"]["count"].sum()
    from pipeline.ingest import load_corpus

    expected = sum(d.text.count("社会保险") for d in load_corpus(root).documents)
    assert got == expected > 100


def test_adding_a_document_segments_and_scores_only_that_document(tmp_path: Path) -> None:
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 4)
    s = _settings(tmp_path, corpus)
    assert run_local(s).stats.segmented == 4
    (corpus / "new.txt").write_text("完善社会保障体系，积极应对人口老龄化。\n", encoding="utf-8")
    stats = run_local(s).stats
    assert (stats.read, stats.segmented, stats.scored, stats.score_cache_hits) == (1, 1, 1, 4)
    assert stats.documents == 5


def test_editing_a_document_recomputes_only_that_document(tmp_path: Path) -> None:
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 3)
    s = _settings(tmp_path, corpus)
    run_local(s)
    target = min(corpus.glob("*.txt"))
    target.write_text(target.read_text(encoding="utf-8") + "\n加强社会保障。\n", encoding="utf-8")
    stats = run_local(s).stats
    assert (stats.read, stats.segmented, stats.scored) == (1, 1, 1)


def test_editing_the_lexicon_rescores_without_resegmenting_when_terms_stay(
        tmp_path: Path) -> None:
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 3)
    s = _settings(tmp_path, corpus)
    run_local(s)
    edited = tmp_path / "mini.yaml"
    edited.write_text(MINI.read_text(encoding="utf-8").replace("weight: 2", "weight: 3"),
                      encoding="utf-8")
    stats = run_local(s.with_(lexicon=edited)).stats
    assert (stats.segmented, stats.segment_cache_hits, stats.scored) == (0, 3, 3)


def test_identical_texts_are_skipped_as_duplicates_like_ingest(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a-2020", "b-2020"):
        (corpus / f"{name}.txt").write_text("完善社会保障体系。\n", encoding="utf-8")
    s = _settings(tmp_path, corpus)
    result = run_local(s)
    ledger = pd.read_csv(s.out / "c" / "ledger.csv", keep_default_na=False)
    assert ledger[["doc_id", "status", "reason"]].values.tolist() == [
        ["a-2020", "ingested", ""],
        ["b-2020", "skipped", "duplicate of a-2020 (same normalised text)"]]
    assert result.stats.duplicates == 1
    assert result.stats.skipped == 1
    from pipeline.ingest import load_corpus  # the same convention as ingest

    assert [(e.doc_id, e.status, e.reason) for e in load_corpus(corpus).ledger] == [
        tuple(r) for r in ledger[["doc_id", "status", "reason"]].values.tolist()]
    assert list(pd.read_csv(s.out / "c" / "documents.csv")["doc_id"]) == ["a-2020"]


def test_a_metadata_year_column_is_kept_as_meta_year_not_over_the_date(tmp_path: Path) -> None:
    # A researcher's own "year" column (text, or a year that disagrees with the date) once
    # overwrote the year computed from the date and crashed the run with a ValueError.
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("完善社会保障体系。\n", encoding="utf-8")
    (corpus / "b.txt").write_text("动员社会力量参与。\n", encoding="utf-8")
    (corpus / "metadata.csv").write_text("doc_id,date,year\na,2019-05,二〇一九\nb,2020,2018\n",
                                         encoding="utf-8")
    s = _settings(tmp_path, corpus)
    result = run_local(s)
    assert result.stats.ingested == 2 and result.stats.failed == 0
    docs = pd.read_csv(s.out / "c" / "documents.csv", dtype=str, keep_default_na=False)
    assert docs[["doc_id", "date", "year", "meta_year"]].values.tolist() == [
        ["a", "2019-05", "2019", "二〇一九"], ["b", "2020", "2020", "2018"]]


def test_an_output_folder_inside_the_corpus_folder_is_refused(tmp_path: Path) -> None:
    # The second run would otherwise ingest its own report.html and report.md as documents.
    from pipeline.errors import MobilizeError

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "2020-a.txt").write_text("完善社会保障体系。\n", encoding="utf-8")
    s = _settings(tmp_path, corpus, out=corpus / "out", report=True)
    with pytest.raises(MobilizeError) as err:
        run_local(s)
    assert err.value.exit_code == 2 and err.value.path == str(corpus)
    assert "is inside the corpus folder" in err.value.message
    assert "outside the corpus folder" in err.value.fix
    assert not (corpus / "out").exists()  # refused before anything (even the lock) is made


def test_a_file_that_cannot_be_read_is_recorded_as_failed(tmp_path: Path) -> None:
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 1)
    plan = plan_run(_settings(tmp_path, corpus))
    ghost = Source("ghost", "ghost.txt", corpus / "ghost.txt", "2020", 2020, {})
    result = process_batch(plan, [*plan.sources, ghost])
    assert [(e.doc_id, e.status) for e in result.ledger] == [
        (plan.sources[0].doc_id, "ingested"), ("ghost", "failed")]
    assert "ghost.txt" in result.ledger[1].reason
    tables = assemble(plan, [result])
    assert tables.stats.failed == 1 and len(tables.documents) == 1


def test_batches_split_work_across_workers_but_respect_the_batch_size(tmp_path: Path) -> None:
    srcs = [Source(f"d{i}", f"d{i}.txt", tmp_path / f"d{i}.txt", "", None, {}) for i in range(57)]
    batches = make_batches(srcs, Settings(workers=2, batch_size=64))
    assert [len(b) for b in batches] == [8] * 7 + [1]
    assert [len(b) for b in make_batches(srcs, Settings(workers=1, batch_size=10))] == \
        [10] * 5 + [7]


@pytest.mark.slow
def test_a_process_pool_gives_the_same_tables_as_one_process(tmp_path: Path) -> None:
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus")
    one = _settings(tmp_path / "one", corpus)
    two = _settings(tmp_path / "two", corpus, workers=2)
    plan1, plan2 = plan_run(one), plan_run(two)
    t1 = assemble(plan1, run_batches(plan1, plan1.batches, 1))
    t2 = assemble(plan2, run_batches(plan2, plan2.batches, 2))
    assert t2.stats.segmented == len(plan2.sources)
    for name, df in t1.as_dict().items():
        pd.testing.assert_frame_equal(df, t2.as_dict()[name], obj=name)


def test_a_term_the_segmenter_splits_fails_the_run_when_configured(tmp_path: Path) -> None:
    from pipeline.errors import LexiconError

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 1)
    lexicon = tmp_path / "split.yaml"
    lexicon.write_text(MINI.read_text(encoding="utf-8").replace("- 慈善\n", "- 一网·通办\n"),
                       encoding="utf-8")
    s = _settings(tmp_path, corpus, lexicon=lexicon)
    with pytest.raises(LexiconError, match="一网·通办") as info:
        plan_run(s.with_(on_split_term="fail"))
    assert info.value.path == str(lexicon)
    assert plan_run(s).split_terms == ("一网·通办",)  # "warn": the run goes on


@pytest.mark.parametrize("code", ["ENOSPC", "EROFS"])
def test_a_full_disk_or_read_only_out_is_an_exit_2_error_and_keeps_the_earlier_outputs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: str) -> None:
    import errno
    import os

    from pipeline import store
    from pipeline.errors import MobilizeError

    s = _settings(tmp_path, _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"),
                                         tmp_path / "corpus", 2))
    run_local(s)
    before = {p.name: p.read_bytes() for p in (s.out / "c").iterdir()}
    written = []

    def fails(df: pd.DataFrame, path: Path, arrow: object = None) -> None:
        written.append(path)
        path.write_bytes(b"half a tab")  # the first bytes got out, then the disk was full
        raise OSError(getattr(errno, code), os.strerror(getattr(errno, code)), str(path))

    monkeypatch.setattr(store, "write_csv", fails)
    with pytest.raises(MobilizeError) as info:
        run_local(s)
    assert written
    err = info.value
    assert err.exit_code == 2 and err.path == str(s.out)
    assert os.strerror(getattr(errno, code)) in err.problem
    assert "the earlier outputs in c/ are intact" in err.problem
    assert ("Free space" if code == "ENOSPC" else "may write to") in err.fix
    assert {p.name: p.read_bytes() for p in (s.out / "c").iterdir()} == before
    assert sorted(p.name for p in s.out.iterdir()) == [".c.lock", "c"]  # no temporary folder


def test_workers_are_bounded_at_four_per_core() -> None:
    import os

    from pipeline.config import max_workers
    from pipeline.errors import MobilizeError

    limit = 4 * (os.cpu_count() or 1)
    assert max_workers() == limit
    assert Settings(workers=limit).workers == limit
    for bad in (limit + 1, 0, 10_000):
        with pytest.raises(MobilizeError) as info:
            Settings().with_(workers=bad)
        assert f"not between 1 and {limit}" in info.value.problem
        assert f"--workers from 1 to {limit}" in info.value.fix


def test_batch_rows_held_as_arrow_give_the_frame_the_tuples_gave() -> None:
    """Batches return their rows as Arrow tables (memory); assembled, they give exactly the
    DataFrame the rows as tuples gave: values, dtypes (an int column in one batch and a float
    one in another is float64), the order of a stable sort with strings in code-point order,
    and the duplicates' rows left out."""
    import pandas as pd

    from pipeline import engine
    from pipeline.score import SCORE_COLUMNS

    def row(doc: str, scope: str, cat: str, weighted: float | int) -> tuple:
        return (doc, scope, "feature", cat, 2, 100, 200.0, 5, 1, 0.2, 2, 1, 0.5, weighted, 0)

    a = [row("政策2", "all", "F2", 3), row("政策10", "all", "F1", 1), row("Z", "all", "F1", 0)]
    b = [row("政策1", "domain_window", "F1", 1.5), row("政策1", "all", "F1", 2.25),
         row("dup", "all", "F1", 1.0)]
    keep = {"政策1", "政策10", "政策2", "Z"}
    keys = ("doc_id", "scope", "dimension", "category")
    want = engine._frame([r for r in a + b if r[0] in keep], SCORE_COLUMNS, keys)
    parts = [engine._arrow_rows(a, SCORE_COLUMNS), engine._arrow_rows(b, SCORE_COLUMNS), []]
    got = engine._row_frame(parts, SCORE_COLUMNS, keys, keep)
    pd.testing.assert_frame_equal(got, want)
    assert got["doc_id"].tolist() == ["Z", "政策1", "政策1", "政策10", "政策2"]
    assert str(got["weighted"].dtype) == "float64" and str(got["count"].dtype) == "int64"
    empty = engine._row_frame([[], []], SCORE_COLUMNS, keys, keep)
    pd.testing.assert_frame_equal(empty, engine._frame([], SCORE_COLUMNS, keys))


def test_the_pool_is_used_only_from_the_size_where_it_pays(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``pool_batches`` (the Prefect flow's choice, the same rule as run_local's): the 20 NPC
    resolutions (~100 KB) run in one process; with the threshold below their size, on the
    configured workers in balanced batches (largest first)."""
    from pipeline import engine

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus")
    plan = plan_run(_settings(tmp_path, corpus, workers=2))
    workers, batches = engine.pool_batches(plan, plan.sources)
    assert workers == 1 and batches == make_batches(plan.sources, plan.settings)
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba-rs", 1_000)
    workers, batches = engine.pool_batches(plan, plan.sources)
    assert workers == 2 and batches == engine.balanced_batches(plan.sources, plan.settings)
    assert sorted(s.doc_id for b in batches for s in b) == sorted(s.doc_id for s in plan.sources)
    one = plan_run(_settings(tmp_path, corpus, workers=1))
    assert engine.pool_batches(one, one.sources)[0] == 1


def test_run_local_takes_its_workers_and_batches_from_pool_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One pool rule for both engines: ``run_local`` runs exactly the workers and batches that
    ``pool_batches`` (the Prefect flow's choice) gives for the documents no cache answers."""
    from pipeline import engine

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus")
    asked: list[int] = []
    ran: list[tuple[int, list[int]]] = []
    real_run = engine.run_batches

    def pool(plan, fresh):  # type: ignore[no-untyped-def]
        asked.append(len(fresh))
        return 2, tuple((s,) for s in fresh)  # one document a batch: unlike either rule

    def run(plan, batches, workers, progress=None):  # type: ignore[no-untyped-def]
        ran.append((workers, [len(b) for b in batches]))
        return real_run(plan, batches, 1, progress)

    monkeypatch.setattr(engine, "pool_batches", pool)
    monkeypatch.setattr(engine, "run_batches", run)
    run_local(_settings(tmp_path, corpus, workers=2))
    assert asked == [20] and ran == [(2, [1] * 20)]


def test_a_batch_flushes_its_rows_to_arrow_as_it_goes_with_the_same_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large batch (all the cached documents of a re-run) moves its rows into Arrow tables
    every few documents, so they never pile up as tuples; the tables are the same."""
    import pyarrow as pa

    from pipeline import engine

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 5)
    plan = plan_run(_settings(tmp_path, corpus))
    whole = assemble(plan, [process_batch(plan, plan.sources)])
    monkeypatch.setattr(engine, "_FLUSH_DOCUMENTS", 2)
    result = process_batch(plan, plan.sources)  # (now answered from the caches)
    assert isinstance(result.scores, pa.Table) and len(result.scores.column(0).chunks) == 3
    flushed = assemble(plan, [result])
    for name, df in whole.as_dict().items():
        pd.testing.assert_frame_equal(df, flushed.as_dict()[name], obj=name)


def test_a_small_run_plans_and_processes_in_a_forked_helper_with_the_same_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run in a single-threaded process plans and processes its documents in a forked helper
    (while this process imports the table writers), and writes byte-identical tables to the
    same run done all in this process (as when threads run here); a researcher's error raised
    in the helper reaches the caller intact (its file, line and fix)."""
    import os
    import threading

    from pipeline import engine
    from pipeline.errors import LexiconError

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 6)
    pids = tmp_path / "pids.txt"
    real = engine.plan_run

    def plan_run_noting_pid(settings: Settings, **kw: bool) -> engine.RunPlan:
        with pids.open("a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(settings, **kw)

    monkeypatch.setattr(engine, "plan_run", plan_run_noting_pid)
    # (threads that earlier tests of the suite leave idle would make this process look
    # threaded: the first run is told it is single-threaded, as a researcher's process is)
    real_count = threading.active_count
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    helped = engine.run_local(_settings(tmp_path / "a", corpus))
    monkeypatch.setattr(threading, "active_count", real_count)
    helper_pid = int(pids.read_text(encoding="utf-8").split()[-1])
    assert helper_pid != os.getpid()
    assert (helped.stats.segmented, helped.stats.scored, helped.stats.documents) == (6, 6, 6)

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # a thread here: no fork, all in this process
    other.start()
    try:
        alone = engine.run_local(_settings(tmp_path / "b", corpus))
    finally:
        stop.set()
        other.join()
    assert int(pids.read_text(encoding="utf-8").split()[-1]) == os.getpid()
    assert alone.stats.segmented == 6
    for name in CSVS:
        assert (helped.run_dir / name).read_bytes() == (alone.run_dir / name).read_bytes(), name

    bad = tmp_path / "bad.yaml"
    bad.write_text("not: [a lexicon\n", encoding="utf-8")
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    with pytest.raises(LexiconError) as info:
        engine.run_local(_settings(tmp_path / "c", corpus, lexicon=bad))
    assert info.value.path == str(bad) and info.value.fix
    assert int(pids.read_text(encoding="utf-8").split()[-1]) != os.getpid()


def test_batch_rows_become_the_arrow_columns_pa_array_gives() -> None:
    """``_arrow_column`` builds each column from NumPy buffers: the same type and values as
    ``pa.array`` for str (CJK and accents), int, int and float mixed, float and bool columns,
    and ``pa.array``'s own result (or error) for anything else."""
    import pyarrow as pa

    from pipeline import engine

    columns = [["all", "政策", "", "é"] * 3, [1, 2, -3, 0] * 3, [1, 2.5, 0, 3] * 3,
               [0.1, -0.0, 1e300, 2.0] * 3, [True, False, False, True, True, False] * 2,
               ["a", None, "b", "c"] * 3]
    for values in columns:
        got = engine._arrow_column(values)
        want = pa.array(values)
        assert got.type == want.type and got.equals(want), values
        got.validate(full=True)
    table = engine._arrow_rows(list(zip(*columns[:5], strict=True)), list("abcde"))
    assert table.schema.names == list("abcde") and table.num_rows == 12
    assert table.column("b").to_pylist() == columns[1]
    with pytest.raises(OverflowError):  # (what pa.array does with an int beyond int64)
        engine._arrow_column([2**64, 1])


def test_documents_rows_with_their_ids_beside_them_become_the_table_of_the_rows_with_ids(
        ) -> None:
    """``_arrow_doc_rows`` (each document's rows and its doc_id, the id repeated as a column)
    gives exactly the table ``_arrow_rows`` makes of the same rows with the id prepended:
    types, values and order, for CJK ids, a document without rows, mixed int/float columns,
    and an id ``_arrow_column`` cannot encode (a lone surrogate, left to ``pa.array``)."""
    from pipeline import engine
    from pipeline.score import rows_with_id

    docs = [("政策-1", [("all", "feature", 1, 2.5), ("all", "pathway", 0, 1)]),
            ("é", [("domain_window", "社保", 3, 0.0)]),
            ("b", []),
            ("gwr-2020", [("all", "", 0, 7)] * 3)]
    columns = ["doc_id", "scope", "category", "count", "x"]
    want = engine._arrow_rows([r for d, rows in docs for r in rows_with_id(d, rows)], columns)
    got = engine._arrow_doc_rows(docs, columns)
    got.validate(full=True)
    assert got.schema == want.schema and got.equals(want)
    assert got.column("doc_id").to_pylist() == ["政策-1", "政策-1", "é"] + ["gwr-2020"] * 3
    odd = [("a\udc80", [("all", 1)]), ("c", [("all", 2)])]
    with pytest.raises(Exception) as raised:  # (pa.array's own error, as for the tuples)
        engine._arrow_rows([r for d, rows in odd for r in rows_with_id(d, rows)], ["d", "s", "n"])
    with pytest.raises(type(raised.value)):
        engine._arrow_doc_rows(odd, ["d", "s", "n"])


def test_a_pool_worker_builds_its_arrow_tables_without_importing_pandas(
        tmp_path: Path) -> None:
    """A worker (forked before the run imports pandas) turns its rows into Arrow tables without
    importing pandas: pa.array on a Python list imported it (~0.4 s of CPU per worker)."""
    import subprocess
    import sys

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 3)
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from pipeline.config import Settings\n"
        "from pipeline.engine import plan_run, process_batch\n"
        f"s = Settings(corpus=Path({str(corpus)!r}), corpus_name='c', out=Path({str(tmp_path)!r})"
        f" / 'out', lexicon=Path({str(MINI)!r}), cache=Path({str(tmp_path)!r}) / 'cache', "
        "workers=1, report=False, engine='local', segmenter='jieba-rs')\n"
        "plan = plan_run(s)\n"
        "r = process_batch(plan, plan.sources)\n"
        "import pyarrow as pa\n"
        "assert isinstance(r.scores, pa.Table) and r.scores.num_rows > 0\n"
        "print('pandas' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_helper_forked_before_the_settings_warms_up_then_plans_with_the_same_tables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mobilize run` forks its helper before it parses its options (``prepare_helper``): the
    helper loads the bundled lexicon, builds the tokenizer with its terms and the matcher
    meanwhile, then plans and processes the run it is handed without parsing the lexicon or
    building the tokenizer again. The tables are byte-identical to a run planned in this
    process, and the helper has ended when the run returns."""
    import os
    import threading

    from pipeline import engine
    from pipeline import lexicon as lexicon_module
    from pipeline import segment
    from pipeline.config import DEFAULT_LEXICON

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 6)
    notes = tmp_path / "notes.txt"

    def noting(what: str, real):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kw):  # type: ignore[no-untyped-def]
            with notes.open("a", encoding="utf-8") as fh:
                fh.write(f"{what} {os.getpid()}\n")
            return real(*args, **kw)
        return wrapper

    monkeypatch.setattr(engine, "_load_lexicon", noting("load", engine._load_lexicon))
    monkeypatch.setattr(lexicon_module, "load_lexicon",
                        noting("parse", lexicon_module.load_lexicon))
    monkeypatch.setattr(segment, "build_tokenizer", noting("tokenizer", segment.build_tokenizer))
    segment._built.cache_clear()  # (this process's tokenizers would be inherited)
    engine._LEXICONS.clear()
    real_count = threading.active_count
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # (see the test above)
    helper = engine.prepare_helper()
    assert helper is not None
    helped = engine.run_local(_settings(tmp_path / "a", corpus, lexicon=DEFAULT_LEXICON),
                              helper=helper)
    monkeypatch.setattr(threading, "active_count", real_count)
    seen = notes.read_text(encoding="utf-8").split("\n")[:-1]
    pid = int(seen[0].split()[1])
    assert pid != os.getpid()
    # warm-up: load (parse), tokenizer; the plan: load (answered from memory), nothing else
    assert seen == [f"load {pid}", f"parse {pid}", f"tokenizer {pid}", f"load {pid}"]
    assert not engine._alive(pid)
    assert (helped.stats.segmented, helped.stats.scored, helped.stats.documents) == (6, 6, 6)

    stop = threading.Event()
    other = threading.Thread(target=stop.wait)  # a thread here: no fork, all in this process
    other.start()
    try:
        alone = engine.run_local(_settings(tmp_path / "b", corpus, lexicon=DEFAULT_LEXICON))
    finally:
        stop.set()
        other.join()
    assert int(notes.read_text(encoding="utf-8").split()[-1]) == os.getpid()
    for name in CSVS:
        assert (helped.run_dir / name).read_bytes() == (alone.run_dir / name).read_bytes(), name


def test_a_helper_forked_for_a_run_that_stops_early_ends_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run refused before it starts (here: its output folder inside the corpus folder, exit 2)
    shuts down the helper it was given: no process is left behind."""
    import os
    import threading
    import time

    from pipeline import engine
    from pipeline.errors import MobilizeError

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 2)
    pids = tmp_path / "pids.txt"
    real = engine._load_lexicon

    def load_noting_pid(path, **kw):  # type: ignore[no-untyped-def]
        with pids.open("a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        return real(path, **kw)

    monkeypatch.setattr(engine, "_load_lexicon", load_noting_pid)
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    helper = engine.prepare_helper()
    assert helper is not None
    with pytest.raises(MobilizeError, match="inside the corpus folder"):
        engine.run_local(_settings(tmp_path, corpus, out=corpus / "out"), helper=helper)
    deadline = time.monotonic() + 30
    while not pids.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = int(pids.read_text(encoding="utf-8").split()[0])
    while engine._alive(pid) and time.monotonic() < deadline:  # (it ends after its warm-up)
        time.sleep(0.05)
    assert pid != os.getpid() and not engine._alive(pid)


def test_the_plan_takes_a_lexicon_loaded_before_only_while_its_file_is_unchanged(
        tmp_path: Path) -> None:
    """``engine._load_lexicon`` answers from memory only what the warm-up remembered, for the
    same file with the same text; an edited file is parsed again, a process without a warm-up
    parses every time, and a broken or missing file raises ``load_lexicon``'s own error (file,
    line, fix)."""
    from pipeline import engine
    from pipeline.errors import LexiconError
    from pipeline.lexicon import load_lexicon

    path = tmp_path / "lex.yaml"
    text = MINI.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")
    engine._LEXICONS.clear()
    parsed = engine._load_lexicon(path)
    assert engine._load_lexicon(path) is not parsed  # (nothing remembered without a warm-up)
    first = engine._load_lexicon(path, remember=True)
    assert engine._load_lexicon(path) is first
    assert first == load_lexicon(path) == parsed
    path.write_text(text + "\n# edited\n", encoding="utf-8")
    edited = engine._load_lexicon(path)
    assert edited is not first and edited.hash == first.hash
    engine._LEXICONS.clear()
    path.write_text(text.replace("categories:", "categories:\n  - [broken", 1), encoding="utf-8")
    for broken in (path, tmp_path / "missing.yaml"):
        with pytest.raises(LexiconError) as ours:
            engine._load_lexicon(broken)
        with pytest.raises(LexiconError) as theirs:
            load_lexicon(broken)
        assert (str(ours.value), ours.value.path, ours.value.line, ours.value.fix) == (
            str(theirs.value), theirs.value.path, theirs.value.line, theirs.value.fix)


def test_assembled_row_tables_are_arrow_and_release_drops_the_batches_rows(
        tmp_path: Path) -> None:
    """``assemble`` holds the four row tables as sorted Arrow tables (as DataFrames, and again as
    Arrow for the writers, a 1 GB corpus's tables took more than 2.5 GB); ``as_dict`` gives the
    DataFrames the rows make (``_row_frame``). With ``release``, each batch's rows are dropped
    once merged, and the tables are the same; the files written from them are those written
    from the DataFrames."""
    import pyarrow as pa

    from pipeline import engine, store
    from pipeline.score import SCORE_COLUMNS

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 6)
    plan = plan_run(_settings(tmp_path, corpus, lexicon=REPO / "lexicons" / "mobilize.yaml"))
    batches = [process_batch(plan, plan.sources[:3]), process_batch(plan, plan.sources[3:])]
    want = engine._row_frame([b.scores for b in batches], SCORE_COLUMNS,
                             engine._TABLE_KEYS["scores"], {s.doc_id for s in plan.sources})
    kept = assemble(plan, batches)
    assert all(isinstance(b.scores, pa.Table) and b.scores.num_rows for b in batches)
    released = assemble(plan, batches, release=True)
    for name in ("term_counts", "scores", "cooccurrence", "units"):
        assert isinstance(getattr(released, name), pa.Table), name
        assert all(getattr(b, name) == [] for b in batches), name
        assert getattr(released, name).equals(getattr(kept, name)), name
    pd.testing.assert_frame_equal(released.as_dict()["scores"], want)
    assert list(released.as_dict()) == list(TABLES)
    (tmp_path / "arrow").mkdir()
    (tmp_path / "frames").mkdir()
    store.write_tables(tmp_path / "arrow", released.for_writing())
    store.write_tables(tmp_path / "frames", released.as_dict())
    for name in [*CSVS, *(f"{t}.parquet" for t in TABLES)]:
        assert (tmp_path / "arrow" / name).read_bytes() == \
            (tmp_path / "frames" / name).read_bytes(), name


def test_assemble_holds_documents_and_ledger_as_arrow_tables_with_their_dataframe_s_files(
        tmp_path: Path) -> None:
    """``assemble`` builds ``documents`` and ``ledger`` as Arrow tables, without pandas; the
    DataFrame a reader gets (``as_dict``) is the one pandas built before (``year`` a nullable
    Int64 with a document's unknown year missing, counts int64, ``converted`` bool, strings
    ``str``), the files are byte-identical to that DataFrame's (an unknown year is an empty CSV
    cell), and a value of another kind gets the DataFrame itself, with the same files."""
    import numpy as np
    import pyarrow as pa

    from pipeline import engine, store

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "2019-养老.txt").write_text("完善社会保障体系，发展慈善事业。\n", encoding="utf-8")
    (corpus / "通知.txt").write_text("推进全民参保计划，健全多层次社会保障体系。", encoding="utf-8")
    (corpus / "README.md").write_text("这个语料库的说明。", encoding="utf-8")
    plan = plan_run(_settings(tmp_path, corpus))
    batch = process_batch(plan, plan.sources)
    docs = sorted(batch.documents, key=lambda d: d["doc_id"])
    tables = assemble(plan, [batch])
    assert isinstance(tables.documents, pa.Table) and isinstance(tables.ledger, pa.Table)
    frames = tables.as_dict()
    before = engine._documents_frame(docs, tables.documents.column_names)
    pd.testing.assert_frame_equal(frames["documents"], before)
    assert str(frames["documents"]["year"].dtype) == "Int64"
    assert frames["documents"]["year"].tolist()[0] == 2019
    assert frames["documents"]["year"].isna().tolist() == [False, True]
    assert list(frames["ledger"]["path"]) == ["2019-养老.txt", "README.md", "通知.txt"]
    assert list(frames["ledger"]["status"]) == ["ingested", "corpus_file", "ingested"]
    (tmp_path / "arrow").mkdir()
    (tmp_path / "frames").mkdir()
    (tmp_path / "fallback").mkdir()
    store.write_tables(tmp_path / "arrow", tables.for_writing())
    store.write_tables(tmp_path / "frames", {"documents": before, "ledger": frames["ledger"]})
    odd = [dict(d, tokens=np.int64(d["tokens"])) for d in docs]  # (a count that is no int)
    fallback = engine._documents_table(odd, tables.documents.column_names)
    assert isinstance(fallback, pd.DataFrame)
    store.write_tables(tmp_path / "fallback", {"documents": fallback})
    for name in ("documents.csv", "documents.parquet", "ledger.csv", "ledger.parquet"):
        want = (tmp_path / "frames" / name).read_bytes()
        assert (tmp_path / "arrow" / name).read_bytes() == want, name
        if name.startswith("documents"):
            assert (tmp_path / "fallback" / name).read_bytes() == want, name
    lines = (tmp_path / "arrow" / "documents.csv").read_text(encoding="utf-8").splitlines()
    assert lines[2].split(",")[:5] == ["通知", "通知.txt", "", "", ""]  # (title, date, year)
