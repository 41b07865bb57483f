"""Caches: every entry carries a checksum; a truncated, edited or wrong-shaped entry is recomputed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline import cache, report
from pipeline.config import Settings
from pipeline.engine import run_local
from pipeline.segment import SegmentCache
from tests.conftest import REPO

MINI = REPO / "tests" / "fixtures" / "engine" / "mini.yaml"
TEXT = "坚持以人民为中心，推进共同富裕，健全社会保障体系。\n完善养老保险制度，加强社会救助。\n"


def test_an_entry_reads_back_and_a_damaged_one_reads_as_missing(tmp_path: Path) -> None:
    path = tmp_path / "ab" / "entry.json"
    assert cache.write_json(path, {"sha256": "a" * 64, "n": [1, 2]})
    assert cache.read_json(path) == {"sha256": "a" * 64, "n": [1, 2]}
    whole = path.read_bytes()
    assert whole.startswith(cache.MAGIC)
    path.write_bytes(whole[:-3])  # truncated
    assert cache.read_json(path) is None
    path.write_bytes(whole.replace(b'"n": [1, 2]', b'"n": [1, 3]'))  # edited, same length
    assert cache.read_json(path) is None
    path.write_bytes(b'{"sha256": "' + b"a" * 64 + b'"}')  # an entry without checksum
    assert cache.read_json(path) is None
    assert cache.read_json(tmp_path / "none.json") is None


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x", encoding="utf-8")
    assert cache.write(tmp_path / "a-file" / "entry", b"data") is False


def test_the_key_depends_on_every_part_and_takes_any_file_name() -> None:
    assert cache.key("a", 1, [2]) == cache.key("a", 1, [2])
    assert cache.key("a", 1, [2]) != cache.key("a", 1, [3])
    assert len(cache.key("b\udcff.txt")) == 64  # a file name that is not UTF-8: no crash


def test_an_edited_or_truncated_segment_entry_is_recomputed(tmp_path: Path) -> None:
    import numpy as np

    seg = SegmentCache(tmp_path)
    seg.put("c" * 64, "cfg", np.array([2, 1, 3], dtype=np.int64))
    assert list(seg.get("c" * 64, "cfg", "一二三四五六")) == [2, 1, 3]
    path = seg.path("c" * 64, "cfg")
    whole = path.read_bytes()
    assert whole.endswith(b"\x02\x00\x01\x00\x03\x00")  # uint16 lengths
    # Other token lengths with the same sum: they fit the text, but are not its tokens.
    path.write_bytes(whole[:-6] + b"\x01\x00\x02\x00\x03\x00")
    assert seg.get("c" * 64, "cfg", "一二三四五六") is None
    path.write_bytes(whole[:-2])  # the array's last bytes lost
    assert seg.get("c" * 64, "cfg", "一二三四五六") is None


def _corpus(root: Path) -> Path:
    root.mkdir()
    (root / "2019-a.txt").write_text(TEXT, encoding="utf-8")
    (root / "2020-b.txt").write_text(TEXT + "全覆盖。\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("damage", ["wrong shape", "truncated", "units of the wrong width"])
def test_a_damaged_engine_entry_is_recomputed_not_trusted(tmp_path: Path, damage: str) -> None:
    """An ingest or score entry that is valid JSON of the wrong shape (with a good checksum: a
    bug or another version wrote it), or that lost its end, is recomputed: same tables."""
    s = Settings(corpus=_corpus(tmp_path / "c"), corpus_name="c", out=tmp_path / "out",
                 lexicon=MINI, cache=tmp_path / "cache", workers=1, report=False,
                 engine="local", segmenter="jieba-rs")
    first = run_local(s)
    tables = {n: (s.out / "c" / f"{n}.csv").read_bytes() for n in ("documents", "scores")}
    entries = sorted((tmp_path / "cache" / "ingest").rglob("*.json")) + sorted(
        (tmp_path / "cache" / "scores").rglob("*.json"))
    assert len(entries) == 4
    for path in entries:
        if damage == "units of the wrong width":  # (the score entries only)
            got = cache.read_json(path)
            if "units" in got:
                cache.write_json(path, {**got, "units": [["all", 0, "", 0]] + got["units"]})
        elif damage == "wrong shape":
            cache.write_json(path, {"sha256": 5, "tokens": "many"} if "ingest" in str(path)
                             else {"tokens": 1, "sentences": 1, "paragraphs": 1,
                                   "term_counts": [["x"]], "scores": [], "cooccurrence": []})
        else:
            path.write_bytes(path.read_bytes()[:-10])
    second = run_local(s)
    assert second.stats.read == first.stats.read == 2 and second.stats.scored == 2
    assert {n: (s.out / "c" / f"{n}.csv").read_bytes() for n in tables} == tables
    assert all(cache.read_json(p) is not None for p in entries)  # written again, whole


def test_a_run_writes_each_caches_entries_directly_in_its_folder(tmp_path: Path) -> None:
    """The ingest, score and segmentation entries of a run lie directly in their folders (no
    sub-folder per first characters: a first run then creates three folders, not hundreds),
    one per document, named by their key, and a second run is answered from them."""
    s = Settings(corpus=_corpus(tmp_path / "c"), corpus_name="c", out=tmp_path / "out",
                 lexicon=MINI, cache=tmp_path / "cache", workers=1, report=False,
                 engine="local", segmenter="jieba-rs")
    run_local(s)
    root = tmp_path / "cache"
    for kind, suffix in (("ingest", ".json"), ("scores", ".json"), ("segments", ".npy")):
        files = sorted(p for p in (root / kind).rglob("*") if p.is_file())
        assert len(files) == 2 and {p.suffix for p in files} == {suffix}, kind
        assert len({p.parent for p in files}) == 1, kind
        assert all(len(p.stem) == 64 for p in files), kind
    (score_dir,) = (root / "scores").iterdir()
    (seg_dir,) = (root / "segments").iterdir()
    assert sorted(p.stem for p in score_dir.iterdir()) == sorted(
        p.stem for p in seg_dir.iterdir())  # (both keyed by the text's sha256)
    again = run_local(s)
    assert again.stats.read == 0 and again.stats.score_cache_hits == 2


def test_a_truncated_workbook_entry_is_rebuilt(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    tables = {"documents": pd.DataFrame({"doc_id": ["a", "b"], "tokens": [3, 4]})}
    report._write_xlsx(tables, tmp_path / "built.xlsx", tmp_path / "cache")
    (entry,) = (tmp_path / "cache" / "report-xlsx").iterdir()
    entry.write_bytes(entry.read_bytes()[:200])  # a cache cut short by a full disk
    report._write_xlsx(tables, tmp_path / "again.xlsx", tmp_path / "cache")
    assert (tmp_path / "again.xlsx").read_bytes() == (tmp_path / "built.xlsx").read_bytes()
    rows = list(load_workbook(tmp_path / "again.xlsx").active.iter_rows(values_only=True))
    assert rows == [("doc_id", "tokens"), ("a", 3), ("b", 4)]


def test_a_damaged_figure_or_font_entry_is_redrawn(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    drawn = [tmp_path / "drawn.png", tmp_path / "drawn.svg"]
    drawn[0].write_bytes(png)
    drawn[1].write_bytes(b"<svg/>")
    report._cache_figure(tmp_path, "k" * 64, drawn)
    assert report._cached_figure(tmp_path, "k" * 64) == (png, b"<svg/>")
    base = tmp_path / "report-figures" / ("k" * 40)
    base.with_suffix(".svg").write_bytes(base.with_suffix(".svg").read_bytes()[:-1])
    assert report._cached_figure(tmp_path, "k" * 64) is None
    page = "<p>社会保障</p>"
    face = report._font_face(page, tmp_path)
    (font,) = (tmp_path / "report-fonts").iterdir()
    font.write_bytes(font.read_bytes()[: len(font.read_bytes()) // 2])
    assert report._font_face(page, tmp_path) == face  # subset again, not the half file
    assert json.loads(json.dumps(face))  # (base64 text)
