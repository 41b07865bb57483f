"""Writing a run's output folder: atomic replacement, the run lock, CSV/Parquet/DuckDB tables.

- ``run_lock(out, name, wait)``: a file lock ``<out>/.<name>.lock``; a second run on the same
  folder waits up to ``wait`` seconds, then raises ``RunLockedError`` (exit code 3).
- ``atomic_dir(out, name)``: yields a fresh temporary sibling ``<out>/.<name>.tmp-<pid>``; on
  success it replaces ``<out>/<name>`` in one step (``renameat2(RENAME_EXCHANGE)`` on Linux,
  else two renames), so a failed or killed run leaves the previous folder intact. Stale
  temporary folders of killed runs are removed (the caller holds the lock, so none is live):
  only ``.<name>.tmp-<pid>`` and ``.<name>.old-<pid>``, the name compared literally.
- Ownership: a run replaces ``<out>/<name>`` only when that folder is one mobilize wrote (a
  ``run.json`` with ``"schema": "mobilize.run/1"``, or a v0.1 ``run.json``; a comparison's
  ``comparison.json``); ``check_output_name`` refuses anything else, and a folder that is or
  holds the corpus, before the run starts, and ``atomic_dir`` checks again before the swap.
- ``rewrite_dir(out, name, drop=...)``: ``atomic_dir`` over a hard-linked copy of the existing
  folder without the ``drop`` entries (``mobilize report`` rewrites a run's report this way).
- ``write_tables(folder, tables)``: each table (a DataFrame, or an Arrow table as a run holds
  its tables) as CSV (sorted, ``\\n`` line ends, fixed float format: byte-identical for
  the same inputs) and Parquet, and all of them in ``mobilize.duckdb``; an Arrow table is
  written as its DataFrame would be (``arrow_as_written``, ``pandas_metadata``), without making
  the DataFrame and, for the column kinds a run's tables have, without importing pandas.
"""

from __future__ import annotations

import csv
import ctypes
import ctypes.util
import errno
import io
import json
import math
import os
import shutil
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, nullcontext
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline.errors import MobilizeError, RunLockedError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

FLOAT_FORMAT = "%.6f"
#: ``run.json``'s ``schema``: only mobilize writes it; a folder with it is a run folder.
RUN_SCHEMA = "mobilize.run/1"
#: ``comparison.json``'s ``schema`` (``mobilize compare``'s output folders).
COMPARE_SCHEMA = "mobilize.compare/1"
RUN_MARKER = "run.json"
#: ``OUT/compare/``: where ``mobilize compare`` writes; no run folder may have this name.
COMPARE_DIR = "compare"
COMPARE_MARKER = "comparison.json"
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
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file of that name, or no permission: the researcher's --out
        raise MobilizeError(f"cannot use it as the output folder ({exc.strerror})", path=out,
                            fix="Give --out a folder (new or existing) that you may write to."
                            ) from None
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
    except OSError as exc:  # a read-only folder (or disk): the lock file cannot be created
        raise MobilizeError(f"cannot write to the output folder ({exc.strerror or exc}); the lock "
                            f"file {path.name} cannot be created", path=out,
                            fix="Give --out a folder you may write to.") from None
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
    """Remove temporary folders left by killed runs (call while holding the lock).

    Only ``.<name>.tmp-<pid>`` and ``.<name>.old-<pid>`` of this very name: the folder is listed
    and the names compared literally (a corpus named ``a*`` or ``gwr[12]`` is no pattern that
    would match another corpus's live temporary folder).
    """
    removed = []
    try:
        entries = sorted(os.listdir(out))
    except OSError:
        return removed
    for entry in entries:
        for kind in (".tmp-", ".old-"):
            prefix = f".{name}{kind}"
            if entry.startswith(prefix) and entry[len(prefix):].isdigit():
                p = Path(out) / entry
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                    removed.append(p)
    return removed


def _json_object(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, "rb") as fh:
            data = json.loads(fh.read(4 * 2**20))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_run_folder(folder: Path) -> bool:
    """True when ``folder`` is a run folder mobilize wrote: its ``run.json`` has
    ``"schema": "mobilize.run/1"``, or is a v0.1 manifest (no schema, but mobilize's corpus,
    lexicon, segmenter and stats records)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    data = _json_object(folder / RUN_MARKER)
    if data is None:
        return False
    if "schema" in data:
        return data["schema"] == RUN_SCHEMA
    parts = [data.get(k) for k in ("corpus", "lexicon", "segmenter", "stats")]
    return (all(isinstance(p, dict) for p in parts) and "hash" in data["lexicon"]
            and "content_hash" in data["corpus"] and "config_hash" in data["segmenter"])


def is_comparison_folder(folder: Path) -> bool:
    """True when ``folder`` holds a comparison mobilize wrote (``comparison.json`` with
    mobilize's schema, or the v0.1 set of files: comparison.md, differences/keyness/rates.csv)."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        return False
    data = _json_object(folder / COMPARE_MARKER)
    if data is not None:
        return data.get("schema") == COMPARE_SCHEMA
    names = {p.name for p in folder.iterdir()}
    v01 = {"comparison.md", "comparison.xlsx", "differences.csv", "keyness.csv", "rates.csv",
           "differences.png", "differences.svg"}
    return {"comparison.md", "differences.csv", "keyness.csv", "rates.csv"} <= names <= v01


def check_name(name: str, *, source: str = "") -> None:
    """Refuse a name that cannot be one folder inside the output folder."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name):
        raise MobilizeError(f"{name!r} cannot name an output folder{source}",
                            fix="Use letters, digits, Chinese characters, '-' and '_'.")


def check_run_name(name: str, out: Path) -> None:
    """Refuse ``compare`` as a run's name: its output folder would be ``OUT/compare/``, where
    ``mobilize compare`` writes its comparisons (a run there would replace them, and a
    comparison would write into the run)."""
    if name == COMPARE_DIR:
        raise MobilizeError(
            f"a corpus named {name!r} cannot be run: its output folder would be "
            f"{Path(out) / name}, where `mobilize compare` writes its comparisons; nothing was "
            "written", path=Path(out) / name,
            fix="Register the folder under another name and run it by that name: mobilize "
                "corpus add PATH --name NAME, then mobilize run --corpus NAME (or rename the "
                "folder).")


def check_output_name(out: Path, name: str, *, corpus: Path | None = None,
                      owned: Callable[[Path], bool] = is_run_folder,
                      what: str = "mobilize run folder") -> Path:
    """Refuse to write ``<out>/<name>`` when the run must not replace it; return it.

    Refused: a folder that is, or contains, the ``corpus`` folder; a symbolic link or a file of
    that name; an existing folder that ``owned`` does not recognise as one mobilize wrote
    (a researcher's folder that happens to have the corpus's name). Nothing is created.
    """
    check_name(name)
    target = Path(out) / name
    shown = target
    if corpus is not None:
        real_corpus = Path(corpus).resolve()
        real_target = target.resolve()
        if real_target == real_corpus or real_corpus.is_relative_to(real_target):
            which = "is the corpus folder" if real_target == real_corpus \
                else f"contains the corpus folder {corpus}"
            raise MobilizeError(
                f"this run's output folder {which}; a run replaces its output folder, so it "
                "would delete the corpus; nothing was changed", path=shown,
                fix="Give --out a folder outside the corpus folder and not above it, "
                    "e.g. --out reports.")
    if target.is_symlink():
        raise MobilizeError(f"a symbolic link, not a {what}; mobilize replaces only folders it "
                            "wrote itself, so it was left untouched", path=shown,
                            fix="Give another --out, or remove the link.")
    if target.exists():
        if not target.is_dir():
            raise MobilizeError(f"a file, not a {what}; it was left untouched",
                                path=shown, fix="Give another --out, or move the file away.")
        if not owned(target):
            raise MobilizeError(
                f"this folder exists and is not a {what} (mobilize replaces only folders it "
                "wrote itself, marked by its run.json or comparison.json); nothing was changed",
                path=shown,
                fix="Give another --out, or move or rename that folder yourself; --force does "
                    "not override this.")
    return target


@contextmanager
def atomic_dir(out: Path, name: str, *, owned: Callable[[Path], bool] = is_run_folder,
               what: str = "mobilize run folder") -> Iterator[Path]:
    """A temporary folder that replaces ``<out>/<name>`` when the block succeeds.

    An existing ``<out>/<name>`` is replaced only when ``owned`` says mobilize wrote it (checked
    before the block and again before the swap); otherwise a MobilizeError, and the folder is
    left as it was."""
    out = Path(out)
    check_output_name(out, name, owned=owned, what=what)
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
    try:
        check_output_name(out, name, owned=owned, what=what)  # (again: it may have appeared meanwhile)
    except MobilizeError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


@contextmanager
def rewrite_dir(out: Path, name: str, *, drop: Collection[str],
                owned: Callable[[Path], bool] = is_run_folder,
                what: str = "mobilize run folder") -> Iterator[Path]:
    """A temporary copy of the existing ``<out>/<name>`` that replaces it when the block
    succeeds (``atomic_dir``), so a failed or killed rewrite leaves the folder as it was.

    The copy holds every file of the folder as a hard link (a copy where the file system has
    none) except the top-level entries named in ``drop``, which the block writes anew. The
    block must write only new files: a linked file is the same file as the original's."""
    src = Path(out) / name
    with atomic_dir(out, name, owned=owned, what=what) as tmp:
        skip = set(drop)
        shutil.copytree(src, tmp, symlinks=True, dirs_exist_ok=True,
                        copy_function=_link_or_copy,
                        ignore=lambda d, names: [n for n in names if n in skip]
                        if Path(d) == src else [])
        yield tmp


#: Rows formatted at a time by ``write_csv``.
CSV_CHUNK_ROWS = 65_536
#: Rows copied into ``mobilize.duckdb`` at a time (``_duckdb_table``).
DUCKDB_CHUNK_ROWS = 1_000_000
#: Up to this many rows in all, a run's tables go into ``mobilize.duckdb`` on one connection,
#: written to the file once, when it closes (``write_tables``); above, each table on its own.
DUCKDB_SHARED_ROWS = 1_000_000


def write_csv(df: pd.DataFrame | pa.Table, path: Path, arrow: pa.Table | None = None) -> None:
    """``df`` as CSV: pandas ``to_csv`` bytes (``\\n`` line ends, ``FLOAT_FORMAT``), written faster.

    ``to_csv`` formats and quotes every cell in Python (about 1.2 s for the scores of a 100 MB
    corpus); here the cells are formatted a column at a time with Arrow compute kernels and
    joined into lines in C++, following to_csv's rules exactly: strings quoted as the ``csv``
    module does it (``QUOTE_MINIMAL``), integers as ``str``, booleans as ``True``/``False``,
    floats with ``FLOAT_FORMAT`` and missing values as empty cells. A table with a column of
    another kind (objects, dates, ...) or a single column goes through ``to_csv`` itself.
    ``arrow`` is ``df`` already converted (``pa.Table.from_pandas``), when the caller has it.

    ``df`` may be an Arrow table: the file is then the one its DataFrame gives
    (``plain_strings(df).to_pandas()``, which honours the table's ``pandas`` metadata, e.g. a
    nullable ``Int64`` column), written from the Arrow columns (``_arrow_csv_cells``; another
    table is converted and written as above), so that a large table need not exist as a
    DataFrame too, and a run's tables are written without importing pandas.
    """
    import pyarrow as pa

    n = df.num_rows if isinstance(df, pa.Table) else len(df)

    def chunk(start: int) -> list[pa.ChunkedArray] | None:
        stop = min(n, start + CSV_CHUNK_ROWS)
        if isinstance(df, pa.Table):
            return _arrow_csv_cells(df.slice(start, stop - start))
        return _csv_cells(df.iloc[start:stop],
                          None if arrow is None else arrow.slice(start, stop - start))

    cells = chunk(0)
    if cells is None:
        _to_csv(plain_strings(df).to_pandas(split_blocks=True) if isinstance(df, pa.Table)
                else df, path)
        return
    import pyarrow.compute as pc

    header = io.StringIO()
    csv.writer(header, lineterminator="\n").writerow(
        df.column_names if isinstance(df, pa.Table) else df.columns)
    comma = _text_scalar(",")
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(header.getvalue())
        # a chunk of rows at a time: the lines of a whole large table (units.csv of a 1 GB
        # corpus) as Python strings took more memory than the run's tables themselves
        for start in range(0, n, CSV_CHUNK_ROWS):
            if start:
                cells = chunk(start)
            assert cells is not None  # (every chunk has the columns' kinds of the first)
            lines = pc.binary_join_element_wise(*cells, comma)
            fh.write("\n".join(lines.to_pylist()))
            fh.write("\n")


def _to_csv(df: pd.DataFrame, path: Path) -> None:
    """``df.to_csv``, with every cell that holds a carriage return quoted.

    (Python 3.11's csv module, with ``\\n`` line ends, leaves a lone ``\\r`` unquoted, and
    a reader then splits the row there. Such cells are written with a marker and a ``\\n``,
    which the module quotes, and the marker is turned back into the ``\\r``.)
    """
    import pandas as pd

    text_cols = [c for c, dtype in df.dtypes.items()
                 if dtype == object or isinstance(dtype, pd.StringDtype)]
    has_cr = [c for c in text_cols if any(isinstance(v, str) and "\r" in v for v in df[c])]
    if not has_cr:
        df.to_csv(path, index=False, lineterminator="\n", float_format=FLOAT_FORMAT,
                  encoding="utf-8")
        return
    marker = next(m for m in (chr(0xE000 + i) for i in range(6400))
                  if not any(isinstance(v, str) and m in v for c in text_cols for v in df[c]))
    marked = df.copy()
    for c in has_cr:
        marked[c] = df[c].map(lambda v: v.replace("\r", marker + "\n") if isinstance(v, str)
                              else v)
    text = marked.to_csv(index=False, lineterminator="\n", float_format=FLOAT_FORMAT)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text.replace(marker + "\n", "\r"))


def _csv_cells(df: pd.DataFrame, arrow: pa.Table | None) -> list[pa.ChunkedArray] | None:
    """Each column of ``df`` as the text of its CSV cells, or None when one is of a kind the fast
    writer does not cover (the caller then uses ``to_csv``)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if len(df.columns) < 2 or not df.columns.is_unique:
        return None  # (the csv module quotes a lone empty cell: leave such tables to to_csv)
    if arrow is None:
        arrow = pa.Table.from_pandas(df, preserve_index=False)
    text = pa.large_string()
    cells: list[pa.ChunkedArray] = []
    for i, dtype in enumerate(df.dtypes):
        col = arrow.column(i)
        if isinstance(dtype, pd.StringDtype):
            col = _quoted(col)
        elif pd.api.types.is_integer_dtype(dtype) and not isinstance(dtype, pd.CategoricalDtype):
            col = col.cast(text)  # decimal digits, as str(int)
        elif isinstance(dtype, np.dtype) and dtype.kind == "b" or isinstance(dtype, pd.BooleanDtype):
            col = pc.if_else(col, "True", "False").cast(text)
        elif isinstance(dtype, np.dtype) and dtype == np.float64:
            # FLOAT_FORMAT in Python, as to_csv does (Arrow has no printf-style formatting)
            values = df.iloc[:, i].tolist()
            col = pa.chunked_array([pa.array(
                ["" if math.isnan(v) else FLOAT_FORMAT % v for v in values], text)])  # NaN: empty
        else:
            return None
        cells.append(col.fill_null(""))  # missing values: empty cells
    return cells


def _quoted(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """A column of strings as CSV cells: quoted as the ``csv`` module quotes them
    (``_csv_special``), quotes inside doubled."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pa.large_string()
    col = col.cast(text)
    special = pc.match_substring_regex(col, _csv_special())
    if pc.any(special).as_py():  # quote, doubling quotes inside
        quote, nothing = _text_scalar('"'), _text_scalar("")
        quoted = pc.binary_join_element_wise(
            quote, pc.replace_substring(col, '"', '""'), quote, nothing)
        col = pc.if_else(special, quoted, col)
    return col


def _arrow_csv_cells(table: pa.Table) -> list[pa.ChunkedArray] | None:
    """Each column of an Arrow table as the text of its CSV cells, the cells ``_csv_cells`` gives
    for ``table.to_pandas()``: strings (quoted), integers, booleans, float64 (``FLOAT_FORMAT``),
    missing values as empty cells where that DataFrame has them (a string or float64 column,
    an ``Int64`` column by the table's ``pandas`` metadata, a column of nulls); None for a
    table it does not cover (an integer column with missing values and no such metadata, which
    ``to_pandas`` makes float, a boolean one, another type, a single column, repeated names:
    the caller uses ``to_csv``). Without pandas: every Arrow value made here is made from
    buffers or taken from an array (``_text_array``; ``pa.scalar`` and ``pa.array`` of Python
    objects import pandas)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = table.column_names
    if len(names) < 2 or len(set(names)) != len(names):
        return None
    nullable = _nullable_ints(table.schema)
    if table.schema.metadata and not _own_metadata_agrees(
            table.schema, pandas_metadata(table.schema, nullable) or b""):
        return None  # (its metadata asks to_pandas for other dtypes)
    table = plain_strings(table)  # (a chunk of rows: the decoded strings are small)
    text = pa.large_string()
    empty = _text_scalar("")
    cells: list[pa.ChunkedArray] = []
    for name, col in zip(names, table.columns, strict=True):
        kind = col.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            col = _quoted(col)
        elif pa.types.is_integer(kind):
            if col.null_count and not (pa.types.is_int64(kind) and name in nullable):
                return None  # (to_pandas makes an int column with nulls float)
            col = col.cast(text)  # decimal digits, as str(int)
        elif pa.types.is_boolean(kind) and not col.null_count:
            col = pc.if_else(col, _text_scalar("True"), _text_scalar("False"))
        elif pa.types.is_float64(kind):
            # FLOAT_FORMAT in Python, as to_csv does (Arrow has no printf-style formatting)
            col = pa.chunked_array([_text_array(
                ["" if v is None or math.isnan(v) else FLOAT_FORMAT % v
                 for v in col.to_pylist()])], text)  # (NaN, missing: empty)
        elif pa.types.is_null(kind):
            col = col.cast(text)
        else:
            return None
        cells.append(col.fill_null(empty) if col.null_count else col)  # missing: empty cells
    return cells


def string_array(values: Sequence[str], *, large: bool = False) -> pa.Array | None:
    """Python strings as an Arrow ``string`` (or ``large_string``) array built from their UTF-8
    bytes and NumPy offsets (``pa.Array.from_buffers``): ``pa.array`` on a Python list imports
    pandas first (pyarrow looks for pandas objects in it), and is about twice as slow. None when
    the bytes outgrow a ``string`` array's 32-bit offsets; a lone surrogate raises
    ``UnicodeEncodeError``, as ``pa.array`` does."""
    import numpy as np
    import pyarrow as pa

    encoded = list(map(str.encode, values))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
              out=offsets[1:])
    if not large and offsets[-1] >= 2**31 - 1:
        return None
    return pa.Array.from_buffers(
        pa.large_string() if large else pa.string(), len(encoded),
        [None, pa.py_buffer(offsets if large else offsets.astype(np.int32)),
         pa.py_buffer(b"".join(encoded))])


def _text_array(values: Sequence[str]) -> pa.Array:
    """Python strings as an Arrow ``large_string`` array, without pandas (``string_array``)."""
    array = string_array(values, large=True)
    assert array is not None  # (large offsets do not overflow)
    return array


def _text_scalar(value: str) -> pa.Scalar:
    """One ``large_string`` scalar, taken from an array (``pa.scalar`` imports pandas)."""
    return _text_array([value])[0]


@lru_cache(maxsize=1)
def _csv_special() -> str:
    """A regex class of the characters that make the ``csv`` module quote a cell (with ``\\n``
    line ends: the delimiter, the quote and ``\\n``; asked of the module itself), and ``\\r``,
    which Python 3.11's module leaves unquoted (a reader would split the row there)."""
    special = "\r"
    for ch in ',"\n\r\t ;':
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(["a" + ch, "b"])
        if out.getvalue().startswith('"'):
            special += ch if ch != "\r" else ""
    return "[" + "".join("\\n" if ch == "\n" else "\\r" if ch == "\r" else ch
                         for ch in special) + "]"


def plain_strings(table: pa.Table) -> pa.Table:
    """``table`` with its dictionary-encoded string columns decoded: the form in which an Arrow
    table's files are written and its DataFrame made (``engine.Tables`` holds repeated strings,
    doc_id, scope, category, ..., as dictionaries: half the memory)."""
    import pyarrow as pa

    for i, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_dictionary(kind) and (pa.types.is_string(kind.value_type)
                                            or pa.types.is_large_string(kind.value_type)):
            table = table.set_column(i, pa.field(field.name, kind.value_type),
                                     table.column(i).cast(kind.value_type))
    return table


def arrow_as_written(table: pd.DataFrame | pa.Table) -> pa.Table:
    """The Arrow table a table's Parquet file and DuckDB table are written from.

    A DataFrame: ``pa.Table.from_pandas(df, preserve_index=False)`` (its types, and the
    ``pandas`` schema metadata that ``pd.read_parquet`` reads back). An Arrow table: what that
    gives for ``plain_strings(table).to_pandas()`` (dictionary-encoded strings are written as
    the strings; the table's own ``pandas`` metadata, if any, decides the DataFrame's dtypes as
    ``to_pandas`` reads it, e.g. ``year`` as ``Int64``), made without the DataFrame and without
    pandas (``_written_without_pandas``): strings become ``large_string``, NaN in a float
    column a missing value, as ``from_pandas`` reads it, the columns one chunk each, and the
    metadata is ``pandas_metadata``'s. A table of another kind (see there) goes through the
    DataFrame, so the files are the same either way.
    """
    import pyarrow as pa

    if not isinstance(table, pa.Table):
        return pa.Table.from_pandas(table, preserve_index=False)
    written = _written_without_pandas(table)
    if written is not None:
        return written
    return pa.Table.from_pandas(plain_strings(table).to_pandas(split_blocks=True),
                                preserve_index=False)


#: ``pandas_metadata``: the ``pandas_type`` and ``numpy_type`` that ``pa.Table.from_pandas``
#: writes for a DataFrame column of each kind (pandas 3: strings are the ``str`` dtype, which
#: pyarrow writes as ``large_string``; a column of nulls is an empty ``object`` column).
#: ``tests/test_store.py`` compares them with ``from_pandas`` itself for every kind.
_PANDAS_KINDS = {"string": ("object", "str"), "Int64": ("int64", "Int64"),
                 "bool": ("bool", "bool"), "float64": ("float64", "float64"),
                 "null": ("empty", "object")}


def pandas_metadata(schema: pa.Schema, nullable_ints: Collection[str] = ()) -> bytes | None:
    """The ``pandas`` schema metadata (JSON) that ``pa.Table.from_pandas(df,
    preserve_index=False)`` gives for the DataFrame ``df`` a table of this ``schema`` stands
    for: a string column (``string``, ``large_string``, or dictionary-encoded strings) is a
    ``str`` column, an integer one its NumPy integer type, or pandas' nullable ``Int64`` when
    an ``int64`` column is named in ``nullable_ints`` (``documents.year``), a boolean or float64
    one ``bool`` or ``float64``, a column of nulls an empty ``object`` column (the columns of a
    table without rows). With no index kept the metadata does not depend on the rows; pandas'
    version is read from its package metadata, so that pandas need not be imported.

    None for any other kind of column (or repeated names): the caller then converts through
    pandas (``arrow_as_written``)."""
    import pyarrow as pa

    names = schema.names
    pandas_version = _pandas_version()
    if pandas_version is None or len(set(names)) != len(names):
        return None
    columns = []
    for field in schema:
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
            if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
                return None
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            pandas_type, numpy_type = _PANDAS_KINDS["string"]
        elif pa.types.is_int64(kind) and field.name in nullable_ints:
            pandas_type, numpy_type = _PANDAS_KINDS["Int64"]
        elif pa.types.is_integer(kind):
            pandas_type = numpy_type = str(kind)  # int64, int32, uint8, ...
        elif pa.types.is_boolean(kind):
            pandas_type, numpy_type = _PANDAS_KINDS["bool"]
        elif pa.types.is_float64(kind):
            pandas_type, numpy_type = _PANDAS_KINDS["float64"]
        elif pa.types.is_null(kind):
            pandas_type, numpy_type = _PANDAS_KINDS["null"]
        else:
            return None
        columns.append({"name": field.name, "field_name": field.name,
                        "pandas_type": pandas_type, "numpy_type": numpy_type, "metadata": None})
    return json.dumps({
        "index_columns": [], "column_indexes": [], "columns": columns, "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": pandas_version}).encode("utf8")


@lru_cache(maxsize=1)
def _pandas_version() -> str | None:
    """The installed pandas' version, as ``pandas.__version__`` says it (from its package
    metadata: without importing pandas); None without pandas."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pandas")
    except PackageNotFoundError:
        return None


def _nullable_ints(schema: pa.Schema) -> frozenset[str]:
    """The columns that a table's own ``pandas`` metadata makes ``Int64`` (``to_pandas`` gives
    them that dtype, missing values and all; ``engine.assemble`` writes it for ``year``)."""
    raw = (schema.metadata or {}).get(b"pandas")
    if not raw:
        return frozenset()
    try:
        columns = json.loads(raw).get("columns", [])
        return frozenset(c["field_name"] for c in columns if c.get("numpy_type") == "Int64")
    except (ValueError, AttributeError, KeyError, TypeError):
        return frozenset()


def _written_without_pandas(table: pa.Table) -> pa.Table | None:
    """``arrow_as_written`` of an Arrow table, built with pyarrow alone; None when a column is of
    a kind whose DataFrame column ``pandas_metadata`` does not describe, or whose values
    ``to_pandas`` would change (an integer column with missing values, except a nullable
    ``Int64`` one; a boolean one), or when the table's own ``pandas`` metadata asks
    ``to_pandas`` for another dtype (a category, an index)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nullable = _nullable_ints(table.schema)
    metadata = pandas_metadata(table.schema, nullable)
    if metadata is None or not _own_metadata_agrees(table.schema, metadata):
        return None
    table = plain_strings(table)
    text = pa.large_string()
    fields: list[pa.Field] = []
    columns: list[pa.ChunkedArray] = []
    for field, col in zip(table.schema, table.columns, strict=True):
        kind = field.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            kind, col = text, col.cast(text)
        elif pa.types.is_boolean(kind) or pa.types.is_integer(kind):
            if col.null_count and not (pa.types.is_int64(kind) and field.name in nullable):
                return None  # (to_pandas makes them float or object columns)
        elif pa.types.is_floating(kind):
            nan = pc.is_nan(col)
            if pc.any(nan).as_py():  # (``from_pandas`` reads NaN as a missing value)
                col = pc.if_else(nan, pa.nulls(1, kind)[0], col)
        if col.num_chunks != 1:  # (from_pandas gives one chunk per column)
            col = pa.chunked_array([col.combine_chunks()], kind)
        fields.append(pa.field(field.name, kind))
        columns.append(col)
    return pa.Table.from_arrays(columns, schema=pa.schema(fields, metadata={b"pandas": metadata}))


def _own_metadata_agrees(schema: pa.Schema, metadata: bytes) -> bool:
    """Whether a table's own ``pandas`` metadata (if any) asks ``to_pandas`` for the dtypes
    ``metadata`` describes (the same columns, each with the same ``numpy_type``, no index)."""
    raw = (schema.metadata or {}).get(b"pandas")
    if not raw:
        return True
    try:
        own = json.loads(raw)
        mine = json.loads(metadata)
        return (not own.get("index_columns")
                and [(c["field_name"], c["numpy_type"]) for c in own["columns"]]
                == [(c["field_name"], c["numpy_type"]) for c in mine["columns"]])
    except (ValueError, AttributeError, KeyError, TypeError):
        return False


def write_tables(folder: Path, tables: Mapping[str, pd.DataFrame | pa.Table]) -> list[Path]:
    """``<table>.csv`` and ``<table>.parquet`` for each table, and ``mobilize.duckdb`` with all.

    A table is a DataFrame or an Arrow table (a run's large row tables: ``engine.Tables``); both
    give the same files (``arrow_as_written``, ``write_csv``). One table at a time: it is
    converted to the Arrow table it is written from, the Parquet file and its DuckDB table are
    written from that in two threads (pyarrow and DuckDB release the GIL) while this thread
    writes the CSV file, which needs it, and the conversion is dropped before the next table,
    so that no more than one table's copy is held. The files are the same as when written one
    after the other.

    Up to ``DUCKDB_SHARED_ROWS`` rows in all (a small run), every table goes into
    ``mobilize.duckdb`` on one connection, written to the file when it closes: a connection
    and a checkpoint per table cost ~0.04 s of CPU each, most of a small run's writing (0.23 of
    0.27 s for the six tables of a 20-document corpus, against 0.07 s on one connection). The
    tables' content is the same either way (the file's bytes differ from run to run anyway).
    """
    import pyarrow.parquet as pq

    db_path = folder / DUCKDB_FILE
    written: list[Path] = []
    rows = sum(len(t) for t in tables.values())  # (len: a DataFrame's rows, an Arrow table's)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="write_tables") as pool, \
            (_duckdb(db_path) if rows <= DUCKDB_SHARED_ROWS else nullcontext()) as shared:
        for name, table in tables.items():
            arrow = arrow_as_written(table)
            db_done = pool.submit(_duckdb_table, db_path, name, arrow, shared)
            pq_done = pool.submit(pq.write_table, arrow, folder / f"{name}.parquet")
            try:
                write_csv(table, folder / f"{name}.csv", arrow)
            finally:
                wait([pq_done, db_done])  # (both done before the connection may close)
            pq_done.result()  # (re-raises the thread's exception, if any)
            db_done.result()
            del arrow
            written += [folder / f"{name}.csv", folder / f"{name}.parquet"]
    written.append(db_path)
    return written


@contextmanager
def _duckdb_errors() -> Iterator[None]:
    """DuckDB's I/O errors (not OSErrors) as the OSError the other writers raise: a full disk,
    a read-only folder."""
    import duckdb

    try:
        yield
    except duckdb.IOException as exc:
        text = str(exc)
        code = next((c for c, says in ((errno.ENOSPC, "No space left"),
                                       (errno.EACCES, "Permission denied"),
                                       (errno.EROFS, "Read-only file system")) if says in text),
                    errno.EIO)
        raise OSError(code, os.strerror(code) if code != errno.EIO else text) from exc


@contextmanager
def _duckdb(db_path: Path) -> Iterator[Any]:
    """A connection to a new ``mobilize.duckdb``, closed at the end."""
    import duckdb

    with _duckdb_errors():
        con = duckdb.connect(str(db_path))
    try:
        yield con
    finally:
        with _duckdb_errors():
            con.close()


def _duckdb_table(db_path: Path, name: str, table: pa.Table, shared: Any = None) -> None:
    """One DuckDB table from an Arrow table (DuckDB scans Arrow without converting it), on a
    connection of its own: DuckDB keeps the blocks it wrote in its buffer pool until the
    connection closes (~0.5 GB for the tables of a 1 GB corpus, all held at the end). With
    ``shared``, a connection the caller holds for a small run's tables (``write_tables``): the
    table is added to it, and written to the file when the caller closes it."""
    if shared is not None:
        with _duckdb_errors():
            shared.register("_t", table)
            shared.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _t')
            shared.unregister("_t")
        return
    with _duckdb(db_path) as con, _duckdb_errors():
        # a slice of rows at a time, each written to the file (CHECKPOINT) before the
        # next: DuckDB otherwise holds a whole large table in memory until it closes
        for start in range(0, max(1, table.num_rows), DUCKDB_CHUNK_ROWS):
            con.register("_t", table.slice(start, DUCKDB_CHUNK_ROWS))
            con.execute(f'INSERT INTO "{name}" SELECT * FROM _t' if start else
                        f'CREATE TABLE "{name}" AS SELECT * FROM _t')
            con.unregister("_t")
            con.execute("CHECKPOINT")


def write_json(path: Path, data: Any) -> None:
    """Pretty, sorted JSON, written to a temporary name and renamed into place."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str)
                   + "\n", encoding="utf-8")
    os.replace(tmp, path)
