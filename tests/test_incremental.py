"""Incremental runs, shown by counting the work done (RunStats), never by timing.

A private copy of the NPC resolutions corpus (19 of its 20 documents) and of the seed lexicon,
so that the tests can add a document and edit the lexicon.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from conftest import shared_corpus
from conftest_server import SEED_LEXICON, add_document, copy_corpus, csv_bytes

from pipeline import engine
from pipeline.config import Settings

pytestmark = pytest.mark.slow
HELD_BACK = "2025-npc-resolution"


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Settings]:
    src = shared_corpus("npc-resolutions-gwr-zh")
    corpus = copy_corpus(src, tmp_path / "npc", skip=[HELD_BACK])
    lexicon = tmp_path / "lexicon.yaml"
    shutil.copy2(SEED_LEXICON, lexicon)
    settings = Settings(corpus=corpus, corpus_name="npc", out=tmp_path / "out", lexicon=lexicon,
                        cache=tmp_path / "cache", report=False, progress=False, workers=2,
                        engine="local")
    return src, settings


def test_a_second_run_with_nothing_changed_recomputes_nothing(setup: tuple[Path, Settings]) -> None:
    _, settings = setup
    cold = engine.run_local(settings)
    assert (cold.stats.documents, cold.stats.segmented, cold.stats.scored) == (19, 19, 19)
    first = csv_bytes(cold.run_dir)
    warm = engine.run_local(settings)
    assert (warm.stats.read, warm.stats.segmented, warm.stats.scored) == (0, 0, 0)
    assert warm.stats.score_cache_hits == 19
    assert csv_bytes(warm.run_dir) == first


def test_adding_one_document_segments_and_scores_only_that_one(
        setup: tuple[Path, Settings]) -> None:
    src, settings = setup
    engine.run_local(settings)
    add_document(src, settings.corpus, HELD_BACK)
    more = engine.run_local(settings)
    assert more.stats.documents == 20
    assert (more.stats.read, more.stats.segmented, more.stats.scored) == (1, 1, 1)
    assert more.stats.score_cache_hits == 19
    docs = (more.run_dir / "documents.csv").read_text(encoding="utf-8")
    assert f"\n{HELD_BACK}," in docs


def test_the_incremental_tables_equal_a_cold_run_over_the_same_files(
        setup: tuple[Path, Settings], tmp_path: Path) -> None:
    src, settings = setup
    engine.run_local(settings)
    add_document(src, settings.corpus, HELD_BACK)
    incremental = engine.run_local(settings)
    cold = engine.run_local(settings.with_(out=tmp_path / "cold", cache=tmp_path / "cache-cold"))
    assert cold.stats.segmented == 20
    assert csv_bytes(incremental.run_dir) == csv_bytes(cold.run_dir)


def _edit(lexicon: Path, old: str, new: str) -> None:
    text = lexicon.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"the seed lexicon changed: {old!r} is not there once"
    lexicon.write_text(text.replace(old, new), encoding="utf-8")


def test_editing_a_note_or_weight_rescores_without_resegmenting(
        setup: tuple[Path, Settings]) -> None:
    _, settings = setup
    before = engine.run_local(settings)
    # 全民参保 gets a weight and a note: the same user terms, so the same tokenizer.
    _edit(settings.lexicon, "      - 全民参保\n",
          "      - term: 全民参保\n        weight: 2.5\n        note: enrolment of everyone\n")
    after = engine.run_local(settings)
    assert after.manifest["lexicon"]["hash"] != before.manifest["lexicon"]["hash"]
    assert after.manifest["segmenter"]["config_hash"] == before.manifest["segmenter"]["config_hash"]
    assert (after.stats.segmented, after.stats.segment_cache_hits) == (0, 19)
    assert after.stats.scored == 19


def test_adding_a_term_resegments_because_the_user_terms_changed(
        setup: tuple[Path, Settings]) -> None:
    _, settings = setup
    before = engine.run_local(settings)
    _edit(settings.lexicon, "      - 全民参保\n", "      - 全民参保\n      - 全民健身\n")
    after = engine.run_local(settings)
    assert after.manifest["segmenter"]["config_hash"] != before.manifest["segmenter"]["config_hash"]
    assert (after.stats.segmented, after.stats.scored) == (19, 19)


def test_a_regex_term_is_not_a_user_word_so_adding_one_does_not_resegment(
        setup: tuple[Path, Settings]) -> None:
    _, settings = setup
    engine.run_local(settings)
    text = settings.lexicon.read_text(encoding="utf-8")
    anchor = re.search(r"      - pattern: 覆盖.*\n(?:        .*\n)*", text)
    assert anchor, "the seed lexicon has no pattern term to copy"
    _edit(settings.lexicon, anchor.group(0),
          anchor.group(0) + "      - pattern: 参保\\d+(?:\\.\\d+)?亿人\n        label: 参保N亿人\n")
    after = engine.run_local(settings)
    assert (after.stats.segmented, after.stats.scored) == (0, 19)
