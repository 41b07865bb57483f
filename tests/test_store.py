"""Output folders: atomic replacement, the run lock, and deterministic table files."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import MobilizeError, RunLockedError
from pipeline.store import (
    RUN_SCHEMA,
    atomic_dir,
    check_output_name,
    clean_stale,
    is_run_folder,
    lock_path,
    run_lock,
    write_tables,
)

#: run.json as v0.1 wrote it (no schema key): still a mobilize run folder
V01_MANIFEST = {"corpus": {"name": "c", "root": "/data/c", "documents": 2, "content_hash": "ab"},
                "lexicon": {"name": "mobilize", "version": "1.3.0", "hash": "cd"},
                "segmenter": {"name": "jieba", "version": "0.42.1", "config_hash": "ef"},
                "stats": {"documents": 2}, "parameters": {}, "versions": {}}


def _run_folder(folder: Path, manifest: dict | None = None) -> Path:  # type: ignore[type-arg]
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps(manifest or {"schema": RUN_SCHEMA}),
                                     encoding="utf-8")
    (folder / "old.csv").write_text("old\n", encoding="utf-8")
    return folder


def test_a_finished_block_replaces_the_previous_folder(tmp_path: Path) -> None:
    _run_folder(tmp_path / "c")
    with atomic_dir(tmp_path, "c") as tmp:
        assert tmp.name.startswith(".c.tmp-")
        (tmp / "new.csv").write_text("new\n", encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["new.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_a_failed_block_leaves_the_previous_folder_intact(tmp_path: Path) -> None:
    _run_folder(tmp_path / "c")
    with pytest.raises(RuntimeError), atomic_dir(tmp_path, "c") as tmp:
        (tmp / "half.csv").write_text("half", encoding="utf-8")
        raise RuntimeError("killed")
    assert (tmp_path / "c" / "old.csv").read_text(encoding="utf-8") == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


@pytest.mark.parametrize("manifest", [None, V01_MANIFEST], ids=["schema", "v0.1"])
def test_run_folders_are_recognised_by_their_run_json(tmp_path: Path, manifest: dict) -> None:  # type: ignore[type-arg]
    assert is_run_folder(_run_folder(tmp_path / "c", manifest))
    with atomic_dir(tmp_path, "c") as tmp:
        (tmp / "new.csv").write_text("new\n", encoding="utf-8")
    assert (tmp_path / "c" / "new.csv").is_file()


@pytest.mark.parametrize("run_json", [
    None,  # a researcher's folder with no run.json
    '{"schema": "someone-else/1", "lexicon": {}, "segmenter": {}, "stats": {}}',
    '{"lexicon": "x", "segmenter": "y", "stats": "z", "corpus": "w"}',  # not mobilize's records
    "not json",
    "[1, 2]",
], ids=["no-run-json", "other-schema", "other-keys", "not-json", "a-list"])
def test_a_folder_mobilize_did_not_write_is_never_replaced(tmp_path: Path,
                                                           run_json: str | None) -> None:
    mine = tmp_path / "c"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"a researcher's work")
    if run_json is not None:
        (mine / "run.json").write_text(run_json, encoding="utf-8")
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    assert not is_run_folder(mine)
    with pytest.raises(MobilizeError) as err, atomic_dir(tmp_path, "c") as tmp:
        (tmp / "new.csv").write_text("new\n", encoding="utf-8")
    assert err.value.exit_code == 2 and err.value.path == str(mine)
    assert "is not a mobilize run folder" in err.value.problem
    assert "--force does not override this" in err.value.fix
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]  # no temporary folder left


def test_a_folder_that_appears_during_the_block_is_not_replaced(tmp_path: Path) -> None:
    with pytest.raises(MobilizeError, match="is not a mobilize run folder"), \
            atomic_dir(tmp_path, "c") as tmp:
        (tmp / "new.csv").write_text("new\n", encoding="utf-8")
        (tmp_path / "c").mkdir()
        (tmp_path / "c" / "notes.txt").write_text("mine", encoding="utf-8")
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_an_output_folder_that_is_or_holds_the_corpus_is_refused(tmp_path: Path) -> None:
    corpus = _run_folder(tmp_path / "notes" / "mydocs")  # even one that looks like a run folder
    with pytest.raises(MobilizeError) as err:
        check_output_name(tmp_path / "notes", "mydocs", corpus=corpus)
    assert "is the corpus folder" in err.value.problem and err.value.exit_code == 2
    with pytest.raises(MobilizeError) as err:
        check_output_name(tmp_path, "notes", corpus=corpus)
    assert "contains the corpus folder" in err.value.problem
    assert check_output_name(tmp_path / "out", "mydocs", corpus=corpus) == tmp_path / "out" / "mydocs"
    assert not (tmp_path / "out").exists()  # nothing created


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x"])
def test_names_that_are_not_one_folder_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(MobilizeError, match="cannot name an output folder"):
        check_output_name(tmp_path, name)


@pytest.mark.parametrize("name,other", [("a*", "ab"), ("gwr[12]", "gwr1"), ("x?", "xy"),
                                        ("a", "a.tmp-1")])
def test_stale_cleanup_matches_the_name_literally(tmp_path: Path, name: str, other: str) -> None:
    live = tmp_path / f".{other}.tmp-4242"  # another corpus's run, writing right now
    live.mkdir()
    (live / "scores.csv").write_text("x", encoding="utf-8")
    old = tmp_path / f".{other}.old-4242"
    old.mkdir()
    stale = tmp_path / f".{name}.tmp-999999"
    stale.mkdir()
    assert clean_stale(tmp_path, name) == [stale]
    assert live.is_dir() and (live / "scores.csv").is_file() and old.is_dir()


def test_stale_temporary_folders_of_killed_runs_are_removed(tmp_path: Path) -> None:
    stale = tmp_path / ".c.tmp-999999"
    stale.mkdir()
    (stale / "x.csv").write_text("x", encoding="utf-8")
    with atomic_dir(tmp_path, "c") as tmp:
        (tmp / "a.csv").write_text("a", encoding="utf-8")
    assert not stale.exists()
    assert (tmp_path / "c" / "a.csv").is_file()


@contextmanager
def _held_by_another_process(out: Path, name: str) -> Iterator[subprocess.Popen[str]]:
    out.mkdir(parents=True, exist_ok=True)
    code = ("import sys, time; from filelock import FileLock; "
            f"l = FileLock({str(lock_path(out, name))!r}); l.acquire(); "
            "print('held', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_run_on_a_locked_folder_exits_with_a_clear_message(tmp_path: Path) -> None:
    with (_held_by_another_process(tmp_path, "c"), pytest.raises(RunLockedError) as info,
          run_lock(tmp_path, "c", wait=0.2)):
        pass
    assert info.value.exit_code == 3
    assert "another mobilize run" in info.value.message and "--wait" in info.value.message


def test_an_output_folder_that_is_a_file_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "结果").write_text("a researcher's file\n", encoding="utf-8")
    for out in (tmp_path / "结果", tmp_path / "结果" / "sub"):
        with pytest.raises(MobilizeError) as err:
            with run_lock(out, "c"):
                pass
        assert err.value.path == str(out) and err.value.exit_code == 2
        assert "cannot use it as the output folder" in err.value.message
        assert "Give --out a folder" in err.value.fix
    assert (tmp_path / "结果").read_text(encoding="utf-8") == "a researcher's file\n"


def test_a_waiting_run_gets_the_lock_when_the_other_run_ends(tmp_path: Path) -> None:
    with _held_by_another_process(tmp_path, "c") as proc:
        killer = subprocess.Popen([sys.executable, "-c",
                                   f"import os, time; time.sleep(1); os.kill({proc.pid}, 9)"])
        with run_lock(tmp_path, "c", wait=30) as path:
            assert path == lock_path(tmp_path, "c")
            assert proc.wait(5) == -9  # we got the lock only once the holder was gone
        killer.wait()


def test_tables_are_written_as_sorted_csv_parquet_and_duckdb(tmp_path: Path) -> None:
    df = pd.DataFrame({"doc_id": ["a", "b"], "rate_per_10k": [1 / 3, 2.0], "count": [1, 0]})
    write_tables(tmp_path, {"scores": df})
    assert (tmp_path / "scores.csv").read_bytes() == (
        b"doc_id,rate_per_10k,count\na,0.333333,1\nb,2.000000,0\n")
    assert pd.read_parquet(tmp_path / "scores.parquet")["count"].tolist() == [1, 0]
    import duckdb

    con = duckdb.connect(str(tmp_path / "mobilize.duckdb"), read_only=True)
    assert con.execute("select sum(count) from scores").fetchone()[0] == 1
    con.close()


def test_the_lock_is_released_when_the_run_ends(tmp_path: Path) -> None:
    with run_lock(tmp_path, "c"):
        pass
    code = ("from filelock import FileLock; "
            f"FileLock({str(lock_path(tmp_path, 'c'))!r}, timeout=0).acquire(); print('got it')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.stdout.strip() == "got it", out.stderr


def test_fast_csv_writer_writes_exactly_what_to_csv_writes(tmp_path: Path) -> None:
    import numpy as np

    from pipeline.store import FLOAT_FORMAT, write_csv

    texts = ["plain", "a,b", 'q"uote', "line\nbreak", "cr\rret", "", " sp ", "中文，逗号", "tab\t",
             'x","y']
    n = len(texts)
    df = pd.DataFrame({
        "s": pd.array(texts[:-1] + [None], dtype="str"),
        "f": [np.nan, np.inf, -np.inf, -0.0, 0.0, 1e20, 5e-7, 4.9999995e-7, 1 / 3, -2.5e-7],
        "i": np.arange(n, dtype="int64") * -7,
        "I": pd.array([1, None] * (n // 2), dtype="Int64"),
        "b": [True, False] * (n // 2),
        "B": pd.array([True, None] * (n // 2), dtype="boolean"),
        "u": np.arange(n, dtype="uint8"),
    })
    for name, frame in {"edge": df, "empty": df.iloc[:0], "objects": df.astype({"s": object}),
                        "one": df[["s"]]}.items():
        write_csv(frame, tmp_path / f"{name}.csv")
        frame.to_csv(tmp_path / f"{name}.ref.csv", index=False, lineterminator="\n",
                     float_format=FLOAT_FORMAT, encoding="utf-8")
        # ... except that a cell holding a carriage return is quoted (Python 3.11's csv module
        # leaves it bare, and a reader then splits the row there)
        ref = (tmp_path / f"{name}.ref.csv").read_bytes().replace(b"\ncr\rret", b'\n"cr\rret"')
        assert (tmp_path / f"{name}.csv").read_bytes() == ref
        back = pd.read_csv(tmp_path / f"{name}.csv", keep_default_na=False, dtype=str)
        assert len(back) == len(frame)
        if len(frame):
            assert back["s"][4] == "cr\rret"


def test_a_table_written_in_chunks_of_rows_is_the_same_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_csv formats a chunk of rows at a time (memory stays flat on large tables): chunks
    of 3 rows give the same bytes as one chunk, quoted and empty cells in every chunk, and a
    last chunk shorter than the others."""
    import numpy as np

    from pipeline import store

    texts = ["社会保障", "a,b", 'q"uote', "", "line\nbreak", "养老 保险", None]
    df = pd.DataFrame({"doc_id": pd.array([texts[i % 7] for i in range(23)], dtype="str"),
                       "count": np.arange(23, dtype="int64"),
                       "rate": [i / 7 if i % 5 else np.nan for i in range(23)],
                       "flag": [i % 2 == 0 for i in range(23)]})
    store.write_csv(df, tmp_path / "whole.csv")
    monkeypatch.setattr(store, "CSV_CHUNK_ROWS", 3)
    store.write_csv(df, tmp_path / "chunked.csv")
    store.write_csv(df.iloc[:6], tmp_path / "exact.csv")  # (a whole number of chunks)
    assert (tmp_path / "chunked.csv").read_bytes() == (tmp_path / "whole.csv").read_bytes()
    df.iloc[:6].to_csv(tmp_path / "exact.ref.csv", index=False, lineterminator="\n",
                       float_format=store.FLOAT_FORMAT, encoding="utf-8")
    assert (tmp_path / "exact.csv").read_bytes() == (tmp_path / "exact.ref.csv").read_bytes()
    assert len(pd.read_csv(tmp_path / "chunked.csv")) == 23


def test_a_carriage_return_in_a_cell_reads_back_as_one_row(tmp_path: Path) -> None:
    """Both writers (the fast one and ``to_csv`` for object columns) quote a lone ``\\r``:
    unquoted, pandas and R read the row as two, and every later column shifts."""
    import csv

    from pipeline.store import write_csv

    for dtype in ("str", object):
        df = pd.DataFrame({"doc_id": ["a", "b"], "title": pd.array(["第一行\r第二行", "正常"],
                                                                   dtype=dtype),
                           "tokens": [3, 4]})
        write_csv(df, tmp_path / "t.csv")
        with open(tmp_path / "t.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        assert rows == [["doc_id", "title", "tokens"], ["a", "第一行\r第二行", "3"],
                        ["b", "正常", "4"]], dtype
        back = pd.read_csv(tmp_path / "t.csv")
        assert list(back["tokens"]) == [3, 4] and back["title"][0] == "第一行\r第二行"


def test_a_full_disk_in_duckdb_is_an_oserror_like_the_other_writers(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    import duckdb

    def full(*args: object, **kw: object) -> None:
        raise duckdb.IOException('IO Error: Could not write file "m.duckdb": No space left on '
                                 "device")

    monkeypatch.setattr(duckdb, "connect", full)
    with pytest.raises(OSError) as info:
        write_tables(tmp_path, {"t": pd.DataFrame({"a": [1], "b": ["x"]})})
    assert info.value.errno == errno.ENOSPC


def test_an_output_folder_where_the_lock_cannot_be_created_is_an_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from filelock import FileLock

    def read_only(self: object, *args: object, **kw: object) -> None:
        raise PermissionError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(FileLock, "acquire", read_only)
    with pytest.raises(MobilizeError) as info, run_lock(tmp_path, "c"):
        pass
    assert info.value.exit_code == 2 and info.value.path == str(tmp_path)
    assert "Read-only file system" in info.value.problem and "--out" in info.value.fix


def _files(folder: Path) -> dict[str, object]:
    """Every CSV and Parquet file's bytes, and every DuckDB table's column types and rows."""
    import duckdb

    out: dict[str, object] = {p.name: p.read_bytes() for p in sorted(folder.iterdir())
                              if p.suffix in (".csv", ".parquet")}
    con = duckdb.connect(str(folder / "mobilize.duckdb"), read_only=True)
    for (name,) in con.execute("select table_name from information_schema.tables").fetchall():
        out[f"duckdb:{name}"] = (con.execute(f'describe "{name}"').fetchall(),
                                 con.execute(f'select * from "{name}"').fetchall())
    con.close()
    return out


def test_an_arrow_table_is_written_as_its_dataframe_is(tmp_path: Path) -> None:
    """A run's row tables reach ``write_tables`` as Arrow tables (memory); every file (CSV and
    Parquet bytes, the pandas metadata of Parquet included, and the DuckDB table) is the one the
    table's DataFrame gives: cells to quote, NaN and infinities, booleans, Chinese text,
    dictionary-encoded strings (as a run holds them) written as the strings; a table with missing
    values, one in several chunks and one of another type (dates) go through the DataFrame; a
    table without rows too."""
    import datetime

    import numpy as np
    import pyarrow as pa

    from pipeline.store import arrow_as_written, pandas_metadata, plain_strings

    texts = ["社会保障", "a,b", 'q"uote', "", "line\nbreak", "cr\rret", "养老 保险"]
    n = 40
    year = pa.array([None if i % 5 == 2 else 1990 + i for i in range(n)], pa.int64())
    year_table = pa.table({"doc_id": pa.array([f"d{i:02d}" for i in range(n)]), "year": year,
                           "converted": pa.array([i % 2 == 0 for i in range(n)])})
    year_table = year_table.replace_schema_metadata({b"pandas": pandas_metadata(
        year_table.schema, nullable_ints=("year",))})
    plain = pa.table({
        "doc_id": pa.array([texts[i % 7] for i in range(n)]),
        "count": pa.array(np.arange(n, dtype="int64") - 3),
        "rate": pa.array([i / 7 if i % 5 else [np.nan, np.inf, -np.inf, -0.0][i % 4]
                          for i in range(n)]),
        "flag": pa.array([i % 3 == 0 for i in range(n)]),
        "block": pa.array(np.arange(n, dtype="int32")),
    })
    tables = {
        "plain": plain,
        "missing": plain.set_column(1, "count", pa.array([None if i % 9 == 0 else i
                                                          for i in range(n)], pa.int64())),
        "chunks": pa.concat_tables([plain.slice(0, 13), plain.slice(13)]),
        "dates": plain.append_column("day", pa.array([datetime.date(2020, 1, 1 + i % 28)
                                                      for i in range(n)])),
        "empty": plain.slice(0, 0),
        "encoded": plain.set_column(0, "doc_id", plain.column(0).dictionary_encode()),
        # as engine.assemble holds documents: year a nullable Int64 by the table's metadata
        "nullable": year_table,
        # strings and floats with missing values (empty cells; written as nulls)
        "text_missing": plain.set_column(0, "doc_id", pa.array(
            [None if i % 4 == 0 else texts[i % 7] for i in range(n)])).set_column(
            2, "rate", pa.array([None if i % 6 == 0 else i / 3 for i in range(n)])),
        # a table without rows whose columns are nulls, as engine.assemble holds an empty one
        "empty_nulls": pa.Table.from_arrays([pa.nulls(0) for _ in range(3)],
                                            names=["doc_id", "scope", "count"]),
    }
    assert plain.schema.field("doc_id").type == pa.string()  # (large_string as written)
    (tmp_path / "arrow").mkdir()
    write_tables(tmp_path / "arrow", tables)
    frames = {name: plain_strings(t).to_pandas() for name, t in tables.items()}
    assert str(frames["encoded"]["doc_id"].dtype) == "str"  # (dictionaries: as their strings)
    assert str(frames["nullable"]["year"].dtype) == "Int64"  # (by the table's metadata)
    assert list(frames["empty_nulls"].dtypes) == [object] * 3  # (as pd.DataFrame([], columns=...))
    (tmp_path / "frames").mkdir()
    write_tables(tmp_path / "frames", frames)
    got, want = _files(tmp_path / "arrow"), _files(tmp_path / "frames")
    assert got.keys() == want.keys() and len(got) == 3 * len(tables)
    for key in want:
        assert got[key] == want[key], key
    for name, table in tables.items():
        converted = pa.Table.from_pandas(frames[name], preserve_index=False)
        assert arrow_as_written(table).equals(converted, check_metadata=True), name
    back = pd.read_parquet(tmp_path / "arrow" / "plain.parquet")
    pd.testing.assert_frame_equal(back, frames["plain"])
    back = pd.read_parquet(tmp_path / "arrow" / "nullable.parquet")
    pd.testing.assert_frame_equal(back, frames["nullable"])
    lines = (tmp_path / "arrow" / "nullable.csv").read_text(encoding="utf-8").splitlines()
    assert lines[:4] == ["doc_id,year,converted", "d00,1990,True", "d01,1991,False",
                         "d02,,True"]  # (a missing year: an empty cell)


def _frame_of_every_kind() -> pd.DataFrame:
    """One column of each kind a run's tables have, as pandas makes them."""
    import numpy as np

    return pd.DataFrame({
        "doc_id": ["社会保障", "b"], "路径": ["甲", "乙"],  # str (a Chinese column name too)
        "count": np.array([3, -1], dtype="int64"), "block": np.array([1, 2], dtype="int32"),
        "year": pd.array([2020, None], dtype="Int64"), "year2": pd.array([1, 2], dtype="Int64"),
        "converted": [True, False], "rate": [0.5, float("nan")]})


@pytest.mark.parametrize("kind", ["all", "empty", "empty_typed", *_frame_of_every_kind().columns])
def test_the_pandas_metadata_is_the_one_from_pandas_writes_for_every_kind(kind: str) -> None:
    """``pandas_metadata`` builds, without pandas, the ``pandas`` schema metadata that
    ``pa.Table.from_pandas(df, preserve_index=False)`` writes into the Parquet files (so that
    ``pd.read_parquet`` gives the same dtypes back), byte for byte, for each column kind of a
    run's tables: strings, int64 (and other integers), nullable Int64 (``year``), bool, float64,
    the null columns of a table without rows. A pandas or pyarrow upgrade that changes the
    format fails here rather than in the files. From the schema as written (``large_string``)
    and as a run holds it (``string``, dictionary-encoded strings) alike."""
    import pyarrow as pa

    from pipeline.store import pandas_metadata

    every = _frame_of_every_kind()
    df = {"all": every, "empty": pd.DataFrame([], columns=["doc_id", "scope", "count"]),
          "empty_typed": every.iloc[0:0]}.get(kind, every[[kind]] if kind in every else None)
    assert df is not None
    written = pa.Table.from_pandas(df, preserve_index=False)
    nullable = [c for c in df.columns if str(df[c].dtype) == "Int64"]
    want = written.schema.metadata[b"pandas"]
    assert pandas_metadata(written.schema, nullable_ints=nullable) == want
    held = pa.schema([pa.field(f.name, pa.string() if f.type == pa.large_string() else f.type)
                      for f in written.schema])
    assert pandas_metadata(held, nullable_ints=nullable) == want
    encoded = pa.schema([pa.field(f.name, pa.dictionary(pa.int32(), pa.string())
                                  if f.type == pa.large_string() else f.type)
                         for f in written.schema])
    assert pandas_metadata(encoded, nullable_ints=nullable) == want


def test_the_pandas_metadata_leaves_other_kinds_to_pandas() -> None:
    """A column of a kind ``pandas_metadata`` does not describe (dates, float32, lists, repeated
    names) gets None: the table is then written through its DataFrame."""
    import datetime

    import pyarrow as pa

    from pipeline.store import pandas_metadata

    for kind in (pa.date32(), pa.float32(), pa.list_(pa.int64()), pa.timestamp("s")):
        assert pandas_metadata(pa.schema([("a", pa.int64()), ("b", kind)])) is None, kind
    assert pandas_metadata(pa.schema([("a", pa.int64()), ("a", pa.string())])) is None
    table = pa.table({"a": [1, 2], "day": [datetime.date(2020, 1, 1)] * 2})
    assert pandas_metadata(table.schema) is None


def test_arrow_tables_are_written_without_importing_pandas(tmp_path: Path) -> None:
    """``write_tables`` of Arrow tables of the kinds a run has (strings with characters to quote,
    int64, a nullable Int64 year with a missing value, bool, float64 with NaN, dictionary-encoded
    strings, a table without rows) writes CSV, Parquet and DuckDB in a fresh interpreter that
    never imports pandas (pyarrow would, at its first ``pa.array`` or ``pa.scalar`` of Python
    objects), and the files are the ones the DataFrames give."""
    code = f"""
import sys
from pathlib import Path
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pipeline import store
from pipeline.engine import _arrow_column, _empty_table

year = pa.Array.from_buffers(pa.int64(), 3, [
    pa.py_buffer(np.packbits(np.array([1, 0, 1], dtype=bool), bitorder="little")),
    pa.py_buffer(np.array([2019, 0, 2021], dtype=np.int64))], null_count=1)
docs = pa.Table.from_arrays([_arrow_column(["社会,保障", 'q"1', "养老"]), year,
                             _arrow_column([True, False, True]), _arrow_column([1.5, float("nan"), 2.0])],
                            names=["doc_id", "year", "converted", "rate"])
docs = docs.replace_schema_metadata(
    {{b"pandas": store.pandas_metadata(docs.schema, nullable_ints=("year",))}})
rows = pa.Table.from_arrays([pc.dictionary_encode(_arrow_column(["a", "a", "b"])),
                             _arrow_column([1, 2, 3])], names=["doc_id", "count"])
store.write_tables(Path({str(tmp_path / "arrow")!r}),
                   {{"documents": docs, "scores": rows, "units": _empty_table(["doc_id", "n"])}})
print("pandas" in sys.modules)
"""
    (tmp_path / "arrow").mkdir()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
    import pyarrow.parquet as pq

    frames = {name: pq.read_table(tmp_path / "arrow" / f"{name}.parquet").to_pandas()
              for name in ("documents", "scores", "units")}
    assert str(frames["documents"]["year"].dtype) == "Int64"
    assert frames["documents"]["year"].isna().tolist() == [False, True, False]
    (tmp_path / "frames").mkdir()
    write_tables(tmp_path / "frames", frames)
    got, want = _files(tmp_path / "arrow"), _files(tmp_path / "frames")
    assert got.keys() == want.keys()
    for key in want:
        assert got[key] == want[key], key


def test_a_small_run_s_tables_share_one_duckdb_connection_with_the_same_content(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Up to ``DUCKDB_SHARED_ROWS`` rows in all, the tables go into ``mobilize.duckdb`` on one
    connection (a connection and a checkpoint per table were most of a small run's writing);
    above, each on its own as for a large corpus. Every table's column types and rows are the
    same either way, and so are the CSV and Parquet files."""
    import duckdb

    from pipeline import store

    tables = {"documents": pd.DataFrame({"doc_id": ["甲", "乙"], "year": pd.array([2020, None],
                                                                               dtype="Int64")}),
              "scores": pd.DataFrame({"doc_id": ["甲", "乙", "乙"], "rate": [0.5, 1.0, 2.0]}),
              "empty": pd.DataFrame([], columns=["doc_id", "n"])}
    connects: list[str] = []
    real = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *a, **k: connects.append("c") or real(*a, **k))
    (tmp_path / "shared").mkdir()
    write_tables(tmp_path / "shared", tables)
    assert len(connects) == 1
    monkeypatch.setattr(store, "DUCKDB_SHARED_ROWS", 4)  # (5 rows: one connection per table)
    (tmp_path / "each").mkdir()
    write_tables(tmp_path / "each", tables)
    assert len(connects) == 1 + 3
    got, want = _files(tmp_path / "shared"), _files(tmp_path / "each")
    assert got.keys() == want.keys() and "duckdb:documents" in got
    for key in want:
        assert got[key] == want[key], key
