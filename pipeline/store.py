"""Writing a run's output folder: atomic replacement, the run lock, CSV/Parquet/DuckDB tables.

- ``run_lock(out, name, wait)``: a file lock ``<out>/.<name>.lock``; a second run on the same
  folder waits up to ``wait`` seconds, then raises ``RunLockedError`` (exit code 3).
- ``atomic_dir(out, name)``: yields a fresh temporary sibling ``<out>/.<name>.tmp-<pid>``; on
  success it replaces ``<out>/<name>`` in one step (``renameat2(RENAME_EXCHANGE)`` on Linux,
  else two renames), so a failed or killed run leaves the previous folder intact. Stale
  temporary folders of killed runs are removed (the caller holds the lock, so none is live).
- ``write_tables(folder, tables)``: each table as CSV (sorted, ``\\n`` line ends, fixed float
  format: byte-identical for the same inputs) and Parquet, and all of them in ``mobilize.duckdb``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import RunLockedError

if TYPE_CHECKING:
    import pandas as pd

FLOAT_FORMAT = "%.6f"
DUCKDB_FILE = "mobilize.duckdb"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def lock_path(out: Path, name: str) -> Path:
    return Path(out) / f".{name}.lock"


@contextmanager
def run_lock(out: Path, name: str, wait: float = 0.0) -> Iterator[Path]:
    """Hold the output folder's lock for the duration of a run."""
    from filelock import FileLock, Timeout

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = lock_path(out, name)
    lock = FileLock(str(path), timeout=max(wait, 0.0))
    try:
        lock.acquire()
    except Timeout:
        raise RunLockedError(
            f"another mobilize run is writing this output folder (lock {path.name} held"
            + (f" for more than {wait:g} s)" if wait > 0 else ")"),
            path=out / name,
            fix="Wait for it to finish, or pass --wait SECONDS to queue behind it.") from None
    try:
        yield path
    finally:
        lock.release()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def clean_stale(out: Path, name: str) -> list[Path]:
    """Remove temporary folders left by killed runs (call while holding the lock)."""
    removed = []
    for p in Path(out).glob(f".{name}.tmp-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    for p in Path(out).glob(f".{name}.old-*"):
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


@contextmanager
def atomic_dir(out: Path, name: str) -> Iterator[Path]:
    """A temporary folder that replaces ``<out>/<name>`` when the block succeeds."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    clean_stale(out, name)
    tmp = out / f".{name}.tmp-{os.getpid()}"
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    final = out / name
    if final.exists():
        if _exchange(tmp, final):
            shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous outputs
            return
        old = out / f".{name}.old-{os.getpid()}"
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def write_csv(df: pd.DataFrame, path: Path) -> None:
    df.to_csv(path, index=False, lineterminator="\n", float_format=FLOAT_FORMAT,
              encoding="utf-8")


def write_tables(folder: Path, tables: Mapping[str, pd.DataFrame]) -> list[Path]:
    """``<table>.csv`` and ``<table>.parquet`` for each table, and ``mobilize.duckdb`` with all."""
    import duckdb

    written: list[Path] = []
    for name, df in tables.items():
        csv_path = folder / f"{name}.csv"
        write_csv(df, csv_path)
        pq_path = folder / f"{name}.parquet"
        df.to_parquet(pq_path, index=False)
        written += [csv_path, pq_path]
    db_path = folder / DUCKDB_FILE
    con = duckdb.connect(str(db_path))
    try:
        for name, df in tables.items():
            con.register("_df", df)
            con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _df')
            con.unregister("_df")
    finally:
        con.close()
    written.append(db_path)
    return written


def write_json(path: Path, data: Any) -> None:
    """Pretty, sorted JSON, written to a temporary name and renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str)
                   + "\n", encoding="utf-8")
    os.replace(tmp, path)
