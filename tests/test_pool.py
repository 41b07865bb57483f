"""The engine's process pool: its batches, what travels to the workers, what they inherit, and
the segmenter's dictionary loaded once per process (``pipeline.engine``, ``pipeline.segment``)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

import pandas as pd
import pytest

from pipeline import engine, segment
from pipeline.config import Settings
from pipeline.ingest import Source
from tests.conftest import shared_corpus
from tests.test_engine import _copy_corpus
from tests.test_engine import _settings as _engine_settings


def _settings(tmp_path: Path, corpus: Path, **kw: object) -> Settings:
    """test_engine's settings with a pool of two jieba workers."""
    return _engine_settings(tmp_path, corpus, **{"workers": 2, "segmenter": "jieba", **kw})


def _sources(n: int) -> list[Source]:
    return [Source(f"d{i:02d}", f"d{i:02d}.txt", Path(f"/nowhere/d{i:02d}.txt"), "", None)
            for i in range(n)]


def test_balanced_batches_shrink_toward_the_end_so_the_tail_is_short() -> None:
    """Each batch takes a quarter of each worker's share of the bytes left (at least 1/128 of
    all for 2 workers), largest documents first: 40 documents of 100 bytes give batches of
    5, 5, 4, 4, 3, 3, 2, 2, 2, 2 and then single documents, every document once."""
    sources = _sources(40)
    batches = engine.balanced_batches(sources, Settings(workers=2), [100] * 40)
    assert [len(b) for b in batches] == [5, 5, 4, 4, 3, 3, 2, 2, 2, 2] + [1] * 8
    assert sorted(s.doc_id for b in batches for s in b) == [s.doc_id for s in sources]
    # largest first, ties by doc_id; a batch never holds more than batch_size sources
    sizes = [10 * (i % 7) + 1 for i in range(40)]
    batches = engine.balanced_batches(sources, Settings(workers=2, batch_size=3), sizes)
    flat = [s for b in batches for s in b]
    assert [sizes[int(s.doc_id[1:])] for s in flat] == sorted(sizes, reverse=True)
    assert max(len(b) for b in batches) == 3
    assert engine.balanced_batches([], Settings(workers=2)) == ()


def test_the_plan_goes_to_each_worker_once_not_with_every_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool's batches carry only their sources: the plan (the lexicon, every source of the
    corpus: ~300 KB on a 20 MB corpus) is given to each worker with its start (inherited by a
    forked one, never pickled); the tables are those of one process."""
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 8)
    plan = engine.plan_run(_settings(tmp_path, corpus))
    batches = engine.balanced_batches(plan.sources, plan.settings)
    assert len(batches) > 2
    pickled: list[int] = []
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # (fork, as in a researcher's run)

    def counting_reduce(self: engine.RunPlan, protocol: int) -> object:
        pickled.append(1)
        return object.__reduce_ex__(self, protocol)

    monkeypatch.setattr(engine.RunPlan, "__reduce_ex__", counting_reduce, raising=False)
    pooled = engine.run_batches(plan, batches, 2)
    assert pickled == [], f"the plan was pickled {len(pickled)} times for {len(batches)} batches"
    one = engine.run_batches(plan, [plan.sources], 1)
    for name, df in engine.assemble(plan, one).as_dict().items():
        pd.testing.assert_frame_equal(engine.assemble(plan, pooled).as_dict()[name], df,
                                      obj=name)


def test_forked_workers_start_with_what_they_inherit_frozen_and_the_run_unfreezes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The workers' garbage collector never walks the objects they inherit (frozen before the
    fork: their first batch sees them in the permanent generation); the run's own process
    collects as before once the workers are started (nothing stays frozen after the pool)."""
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 4)
    plan = engine.plan_run(_settings(tmp_path, corpus))
    monkeypatch.setattr(threading, "active_count", lambda: 1)
    real = engine.process_batch

    def noting_frozen(plan: engine.RunPlan, batch: object) -> engine.BatchResult:
        out = real(plan, batch)  # type: ignore[arg-type]
        out.stats.seconds["frozen"] = float(gc.get_freeze_count())
        return out

    monkeypatch.setattr(engine, "process_batch", noting_frozen)
    results = engine.run_batches(plan, [plan.sources[:2], plan.sources[2:]], 2)
    assert all(r.stats.seconds["frozen"] > 1000 for r in results)
    assert gc.get_freeze_count() == 0


def test_jieba_tokenizers_share_one_dictionary_load_and_keep_their_own_words(
        tmp_path: Path) -> None:
    """jieba's dictionary is loaded once per process and cache folder; each tokenizer starts
    from a copy of it, so one tokenizer's user words never reach another's."""
    cache = tmp_path / "jieba"
    base = segment.jieba_dictionary(cache)
    assert segment.jieba_dictionary(cache) is base
    assert (cache / "jieba.cache").is_file()  # (jieba's own cache, in the run's cache folder)
    words = len(base[0])
    with_term = segment.build_tokenizer("jieba", user_terms=["新质生产力"], cache_dir=cache)
    plain = segment.build_tokenizer("jieba", cache_dir=cache)
    assert with_term.cut("发展新质生产力") == ["发展", "新质生产力"]
    assert plain.cut("发展新质生产力") == ["发展", "新质", "生产力"]
    assert len(base[0]) == words and "新质生产力" not in base[0]


def test_the_run_builds_the_workers_first_document_tables_while_its_helper_plans(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With the dictionary, ``preload_for_pool`` builds the tables each worker would build on
    its first document (normalisation's, the traditional and Han characters', the character
    classes of units), so that the forked workers inherit them; a run without a pool does not."""
    from pipeline import normalize

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 2)
    size = sum(p.stat().st_size for p in corpus.glob("*.txt"))
    tables = (normalize._not_plain, normalize._traditional_table, normalize._han_table,
              segment._char_classes)
    for table in tables:
        table.cache_clear()
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba", size + 1)
    assert not engine.preload_for_pool(_settings(tmp_path, corpus))
    assert [t.cache_info().currsize for t in tables] == [0, 0, 0, 0]
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba", size - 1)
    assert engine.preload_for_pool(_settings(tmp_path, corpus))
    assert [t.cache_info().currsize for t in tables] == [1, 1, 1, 1]


def test_the_run_loads_the_dictionary_while_its_helper_plans_a_pooled_first_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run that will use a pool (2 workers, a corpus folder above ``POOL_MIN_BYTES``,
    no ingest cache yet) loads the segmenter's dictionary in its own process while the forked
    helper plans; a re-run with the same cache, one worker, or a smaller corpus does not.
    The tables are the same either way."""
    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 6)
    size = sum(p.stat().st_size for p in corpus.glob("*.txt"))
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba", size - 1)
    s = _settings(tmp_path, corpus)
    assert not engine.preload_for_pool(_settings(tmp_path, corpus, workers=1))
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba", size + 1)
    assert not engine.preload_for_pool(s)
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba", size - 1)

    loaded: list[bool] = []
    real = engine.preload_for_pool
    monkeypatch.setattr(engine, "preload_for_pool",
                        lambda st, **kw: loaded.append(real(st, **kw)))
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # (the helper: fork)
    first = engine.run_local(s)
    assert loaded == [True] and first.stats.segmented == 6
    assert str(segment.jieba_dir(s.cache)) in segment._JIEBA_DICTIONARY
    tables = {p.name: p.read_bytes() for p in (s.out / "c").glob("*.csv")}
    assert not engine.preload_for_pool(s)  # (a re-run: the caches may answer everything)
    alone = _settings(tmp_path / "b", corpus, workers=1)
    engine.run_local(alone)  # (no pool: the helper does it all, loading as before)
    assert {p.name: p.read_bytes() for p in (alone.out / "c").glob("*.csv")} == tables


def test_a_pooled_first_run_checks_the_tokenizer_in_its_own_process_before_any_output(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A first run that will use a pool leaves the tokenizer's check to its own process, which
    loads the dictionary for the workers meanwhile (the helper would load it a second time
    before the pool may start): the helper's plan comes back unchecked, the run checks it.
    A term the segmenter splits then fails the run under ``on_split_term = "fail"``, with
    nothing written, and is named in run.json otherwise, as in a run without a pool."""
    from pipeline.errors import LexiconError
    from tests.test_engine import MINI

    corpus = _copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "corpus", 4)
    size = sum(p.stat().st_size for p in corpus.glob("*.txt"))
    monkeypatch.setitem(engine.POOL_MIN_BYTES, "jieba", size - 1)
    monkeypatch.setattr(threading, "active_count", lambda: 1)  # (the helper: fork)
    lexicon = tmp_path / "split.yaml"
    lexicon.write_text(MINI.read_text(encoding="utf-8").replace("- 慈善\n", "- 一网·通办\n"),
                       encoding="utf-8")
    helper_checked: list[bool] = []
    real = engine._helper_result

    def noting(helper, settings=None):  # type: ignore[no-untyped-def]
        got = real(helper, settings)
        helper_checked.append(got[0].split_checked)
        return got

    monkeypatch.setattr(engine, "_helper_result", noting)
    failing = _settings(tmp_path / "f", corpus, lexicon=lexicon, on_split_term="fail")
    with pytest.raises(LexiconError, match="一网·通办"):
        engine.run_local(failing)
    assert helper_checked == [False]
    assert not (failing.out / "c").exists()
    s = _settings(tmp_path / "w", corpus, lexicon=lexicon)
    result = engine.run_local(s)
    assert helper_checked == [False, False] and result.stats.segmented == 4
    assert result.manifest["segmenter"]["split_terms"] == ["一网·通办"]
    # a run that needs no pool: the helper checks, as before
    alone = _settings(tmp_path / "a", corpus, lexicon=lexicon, workers=1)
    assert engine.run_local(alone).manifest["segmenter"]["split_terms"] == ["一网·通办"]
    assert helper_checked[-1] is True


def test_jiebas_dictionary_is_read_from_its_cache_file_as_jieba_reads_it(tmp_path: Path) -> None:
    """Once jieba has written its cache file in the run's cache folder, a process reads the
    dictionary from it in one read (``_jieba_cache_file``): the same words and total as
    jieba's own ``initialize`` loads. A damaged file is not used: jieba rebuilds it."""
    import jieba

    cache = tmp_path / "jieba"
    assert segment._jieba_cache_file(cache) is None  # (none yet)
    built = segment.jieba_dictionary(cache)  # (jieba builds it and writes the file)
    read = segment._jieba_cache_file(cache)
    assert read is not None and read is not built
    tk = jieba.Tokenizer()
    tk.tmp_dir = str(cache)
    tk.initialize()
    assert read == (tk.FREQ, tk.total) == built
    segment._JIEBA_DICTIONARY.pop(str(cache))
    data = (cache / "jieba.cache").read_bytes()
    (cache / "jieba.cache").write_bytes(data[: len(data) // 2])
    assert segment._jieba_cache_file(cache) is None
    assert segment.jieba_dictionary(cache) == built  # (rebuilt by jieba, and written again)
    assert segment._jieba_cache_file(cache) == built
