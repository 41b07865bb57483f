"""The in-process engine: plan a run, process batches of documents, assemble and write the tables.

These are plain functions over batches with picklable inputs and outputs and no global state
(a worker process memoises only its tokenizer and matcher, built from the plan), so that
``pipeline.flow`` can wrap them in Prefect tasks and ``run_local`` can run them over a
process pool:

    plan = plan_run(settings)                       # corpus scan, lexicon, tokenizer spec, batches
    results = [process_batch(plan, b) for b in plan.batches]   # read, segment, score (cached)
    tables = assemble(plan, results)                # duplicates, ledger, sorted tables
    result = write_outputs(settings, plan, tables)  # atomic folder, run.json, report hook

Callers hold ``store.run_lock`` around the whole run (``run_local`` does).

Caches (all under ``Settings.cache``, nothing pickled, every entry a ``pipeline.cache`` entry:
a checksum verified on read, written atomically; a damaged entry, or one of the wrong shape,
is recomputed):

- ``ingest/``: (absolute path, size, mtime_ns, the source's metadata, reader options, the
  source code of the ingest and normalise modules) -> the document's row (sha256 of the
  normalised text, chars, encoding, ...). A file whose bytes change gets a new mtime_ns (and
  usually size), so an unchanged key means unchanged bytes, read by unchanged code, which
  give the same normalised text; a warm run then neither reads nor normalises it.
- ``segments/``: (sha256 of the normalised text, tokenizer config hash) -> tokens
  (``pipeline.segment.SegmentCache``).
- ``scores/``: (sha256, lexicon hash, tokenizer config hash, scorer version) -> the
  document's rows (JSON).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import logging
import math
import os
import platform
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline import cache as _cache
from pipeline import score as _score
from pipeline import segment as _segment
from pipeline import store
from pipeline.config import Settings
from pipeline.errors import LexiconError, MobilizeError
from pipeline.ingest import LedgerEntry, Source

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from pipeline.lexicon import Lexicon
    from pipeline.match import Matcher

log = logging.getLogger(__name__)
#: the ledger status of a document whose text another document already has: "skipped", with
#: the reason "duplicate of <doc_id> (same normalised text)", as ``pipeline.ingest.load_corpus``
#: and ``mobilize corpus validate`` report it (docs/architecture.md)
_DUPLICATE: Any = "skipped"

#: The phases of a run, as ``run_local``/``flow.run_flow`` announce them to ``phase(name)``
#: (the command line names them on its progress bar).
PHASE_PREFECT = "starting Prefect"
PHASE_PLAN = "scanning the corpus, loading the lexicon"
PHASE_DOCUMENTS = "ingesting and scoring"
PHASE_TABLES = "writing tables"
PHASE_REPORT = "building the report"
PHASES = (PHASE_PREFECT, PHASE_PLAN, PHASE_DOCUMENTS, PHASE_TABLES, PHASE_REPORT)

#: Bump when score.py changes what it computes: old cached rows are then ignored.
SCORER_VERSION = "5"  # 3: units.csv (per-block counts); 4: the domain_window scope, scores.framed, term_counts.formula; 5: framed by the hit's clause, units.csv for domain_window
DOCUMENT_CORE = ("doc_id", "path", "title", "date", "year", "issuer", "level", "region",
                 "doc_type", "language")
DOCUMENT_TAIL = ("chars", "tokens", "sentences", "paragraphs", "sha256", "encoding", "reader",
                 "converted")
LEDGER_COLUMNS = ("path", "doc_id", "status", "reason")
_TABLE_KEYS: Mapping[str, tuple[str, ...]] = {
    "documents": ("doc_id",),
    "ledger": ("path", "doc_id"),
    "term_counts": ("doc_id", "dimension", "category", "term"),
    "scores": ("doc_id", "scope", "dimension", "category"),
    "cooccurrence": ("doc_id", "unit", "category_a", "category_b"),
    "units": ("doc_id", "scope", "block", "category"),
}


@dataclass
class RunStats:
    """What a run did. ``segmented``/``scored`` count documents actually (re)computed."""

    documents: int = 0  # rows of documents.csv
    ingested: int = 0
    skipped: int = 0  # ledger rows "skipped", duplicates included
    failed: int = 0
    corpus_files: int = 0  # ledger rows "corpus_file": metadata.csv, README/NOTES files
    duplicates: int = 0  # documents skipped because another one has the same normalised text
    read: int = 0  # documents read and normalised this run (not answered by the ingest cache)
    segmented: int = 0
    segment_cache_hits: int = 0
    scored: int = 0
    score_cache_hits: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, other: RunStats) -> None:
        for f in dataclasses.fields(self):
            if f.name == "seconds":
                for k, v in other.seconds.items():
                    self.seconds[k] = self.seconds.get(k, 0.0) + v
            else:
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass
class RunResult:
    run_dir: Path
    stats: RunStats
    manifest: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "stats": dataclasses.asdict(self.stats),
                "manifest": self.manifest}


@dataclass(frozen=True)
class RunPlan:
    """Everything a batch needs, decided once in the parent (picklable)."""

    settings: Settings
    corpus_name: str
    corpus_root: Path
    sources: tuple[Source, ...]
    scan_ledger: tuple[LedgerEntry, ...]
    lexicon: Lexicon
    scheme: _score.Scheme
    tokenizer: _segment.TokenizerSpec
    batches: tuple[tuple[Source, ...], ...]
    ingest_code: str  # hash of the ingest/normalise source code: part of the ingest cache key
    split_terms: tuple[str, ...] = ()
    started: str = ""
    #: False when ``plan_run`` left the split check to the run's own process
    #: (``checked_split``), which loads the segmenter's dictionary for its pool anyway.
    split_checked: bool = True


@dataclass
class BatchResult:
    """One batch's rows. ``process_batch`` returns the four row tables (term_counts, scores,
    cooccurrence, units) as Arrow tables (``columnar``): a run holds every batch's rows until
    the tables are written, and as Python tuples they took ~10x the room (a 1 GB corpus's
    rows alone would not fit in 2.5 GB). Lists of tuples are accepted too (``assemble``)."""

    documents: list[dict[str, Any]]
    term_counts: list[tuple[Any, ...]] | pa.Table
    scores: list[tuple[Any, ...]] | pa.Table
    cooccurrence: list[tuple[Any, ...]] | pa.Table
    ledger: list[LedgerEntry]
    stats: RunStats
    units: list[tuple[Any, ...]] | pa.Table = dataclasses.field(default_factory=list)

    def add_rows(self, doc_id: str, ds: _score.DocScore) -> None:
        """The rows of one document (``ds``, cached without ``doc_id``). Where batches hold
        their rows as Arrow tables, they wait as they are, with their doc_id beside them, until
        ``flush`` (``_arrow_doc_rows``: no row is copied into a new tuple to prepend the id);
        else (the helper of a small run) they are appended as tuples with the id."""
        if not _ROWS_AS_ARROW["on"]:
            for attr in _ROW_TABLES:
                getattr(self, attr).extend(_score.rows_with_id(doc_id, getattr(ds, attr)))
            return
        pending = self.__dict__.setdefault("_pending", {})
        for attr in _ROW_TABLES:
            rows = getattr(ds, attr)
            if rows:
                pending.setdefault(attr, []).append((doc_id, rows))

    def flush(self) -> None:
        """Move the rows gathered so far into Arrow tables (``columnar`` joins them): a batch
        answered from the caches can hold thousands of documents. (Not in the helper of a small
        run, ``_start_helper``, which keeps its rows as tuples.)"""
        if not _ROWS_AS_ARROW["on"]:
            return
        parts = self.__dict__.setdefault("_parts", {})
        pending = self.__dict__.pop("_pending", {})
        for attr, columns in _ROW_TABLES.items():
            rows = getattr(self, attr)
            if isinstance(rows, list) and rows:
                parts.setdefault(attr, []).append(_arrow_rows(rows, columns))
                setattr(self, attr, [])
            if pending.get(attr):
                parts.setdefault(attr, []).append(_arrow_doc_rows(pending[attr], columns))

    def columnar(self) -> BatchResult:
        """The same result with its row lists as Arrow tables (in place; returns self)."""
        if not _ROWS_AS_ARROW["on"]:
            return self
        import pyarrow as pa

        self.flush()
        parts = self.__dict__.pop("_parts", {})
        for attr in _ROW_TABLES:
            got = parts.get(attr, [])
            if got:  # (the parts of one table, typed alike as assemble does)
                setattr(self, attr, pa.concat_tables(got, promote_options="permissive"))
        return self


#: Whether batches hold their rows as Arrow tables (``BatchResult.flush``). Off in the helper
#: of a small run (``_start_helper``): any pyarrow call imports pandas (pyarrow looks for
#: pandas objects), which is what the run's own process imports meanwhile; the helper's rows
#: of a small corpus travel as tuples, and ``assemble`` turns them into the same tables.
_ROWS_AS_ARROW = {"on": True}
#: A batch's rows go into Arrow tables every this many documents (``BatchResult.flush``).
_FLUSH_DOCUMENTS = 64
#: The row tables of a batch, with their columns.
_ROW_TABLES: Mapping[str, tuple[str, ...]] = {
    "term_counts": _score.TERM_COLUMNS, "scores": _score.SCORE_COLUMNS,
    "cooccurrence": _score.COOC_COLUMNS, "units": _score.UNIT_COLUMNS}


def _arrow_rows(rows: Any, columns: Sequence[str]) -> Any:
    """Rows (tuples) as an Arrow table, each column typed from its values as pandas types a
    column of them (ints int64, floats and ints mixed double, str string, bool bool); an Arrow
    table or an empty list as it is. (``_arrow_column``: without importing pandas.)"""
    if not isinstance(rows, list) or not rows:
        return rows
    import pyarrow as pa

    return pa.Table.from_arrays([_arrow_column(v) for v in zip(*rows, strict=True)],
                                names=list(columns))


def _arrow_doc_rows(docs: Sequence[tuple[str, Sequence[tuple[Any, ...]]]],
                    columns: Sequence[str]) -> Any:
    """The rows of several documents, each given as (doc_id, its rows without the id), as the
    Arrow table ``_arrow_rows`` makes of the same rows with the id prepended: the id column
    is each id repeated over its rows (``_repeated_strings``), the others as
    ``_arrow_column`` types them."""
    import pyarrow as pa

    ids = [d for d, _rows in docs]
    counts = [len(rows) for _d, rows in docs]
    flat = [r for _d, rows in docs for r in rows]
    return pa.Table.from_arrays(
        [_repeated_strings(ids, counts)] + [_arrow_column(v) for v in zip(*flat, strict=True)],
        names=list(columns))


def _repeated_strings(values: Sequence[str], counts: Sequence[int]) -> Any:
    """The Arrow column of each of ``values`` repeated ``counts`` times, in order: what
    ``_arrow_column`` gives for the repeated list, built from each value's UTF-8 bytes once."""
    import numpy as np
    import pyarrow as pa

    try:
        encoded = [v.encode() for v in values] if all(type(v) is str for v in values) else None
    except UnicodeEncodeError:  # (a lone surrogate: as _arrow_column does, by pa.array)
        encoded = None
    n = sum(counts)
    if encoded is not None and n:
        reps = np.asarray(counts, dtype=np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.repeat(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
                            reps), out=offsets[1:])
        if offsets[-1] < 2**31 - 1:
            return pa.Array.from_buffers(pa.string(), n, [
                None, pa.py_buffer(offsets.astype(np.int32)),
                pa.py_buffer(b"".join([e * c for e, c in zip(encoded, counts, strict=True)]))])
    return _arrow_column([v for v, c in zip(values, counts, strict=True) for _ in range(c)])


def _arrow_column(values: Sequence[Any]) -> Any:
    """One column's values as the Arrow array ``pa.array(values)`` gives, for the usual kinds
    (all str, all int, ints and floats, all bool) built from NumPy buffers
    (``pa.Array.from_buffers``) rather than by ``pa.array``: ``pa.array`` on a Python list
    imports pandas first (pyarrow looks for pandas objects in it), which costs a worker that
    started without pandas (a ``forkserver`` worker of the Prefect flow, a pool forked from a
    notebook) ~0.35 s of CPU for nothing; the columns are also built in about half the time.
    Anything else (None, ints beyond int64, mixed kinds) goes to ``pa.array`` itself."""
    import numpy as np
    import pyarrow as pa

    kinds = set(map(type, values))
    n = len(values)
    try:
        if kinds == {str}:
            strings = store.string_array(values)  # (a lone surrogate raises: pa.array's)
            if strings is not None:
                return strings
        elif kinds == {int}:
            return pa.Array.from_buffers(pa.int64(), n, [
                None, pa.py_buffer(np.array(values, dtype=np.int64))])
        elif kinds == {float} or kinds == {int, float}:
            return pa.Array.from_buffers(pa.float64(), n, [
                None, pa.py_buffer(np.array(values, dtype=np.float64))])
        elif kinds == {bool}:
            return pa.Array.from_buffers(pa.bool_(), n, [
                None, pa.py_buffer(np.packbits(np.array(values, dtype=bool), bitorder="little"))])
    except (OverflowError, UnicodeEncodeError):
        pass
    return pa.array(values)


@dataclass
class Tables:
    """A run's tables, sorted by their keys (docs/architecture.md), as Arrow tables, so that a
    run assembles and writes them without importing pandas (~0.3-0.5 s of a small run's wait):
    ``documents`` and ``ledger`` with plain columns (``documents`` carries the ``pandas``
    metadata that makes ``year`` a nullable ``Int64`` column in its DataFrame and its Parquet
    file, ``store.pandas_metadata``); the four row tables (term_counts, scores, cooccurrence,
    units) with their string columns dictionary-encoded (held as DataFrames, and again as Arrow
    for the writers, the rows of a 1 GB corpus took over 2.5 GB; as plain Arrow, twice what
    they take now); a table without rows has columns of nulls, as its DataFrame has empty
    ``object`` columns. ``as_dict`` gives every table as a DataFrame (the one the run wrote, as
    ``pd.read_parquet`` reads it back), ``for_writing`` as held. (``documents`` and ``ledger``
    are DataFrames where ``assemble`` met values of another kind, see ``_documents_table``;
    ``store.write_tables`` writes either alike.)"""

    documents: pa.Table | pd.DataFrame
    ledger: pa.Table | pd.DataFrame
    term_counts: pa.Table | pd.DataFrame
    scores: pa.Table | pd.DataFrame
    cooccurrence: pa.Table | pd.DataFrame
    stats: RunStats
    content_hash: str
    units: pa.Table | pd.DataFrame | None = None

    def for_writing(self) -> dict[str, pd.DataFrame | pa.Table]:
        """The tables as held, by name, in the order they are written (``store.write_tables``)."""
        tables = {"documents": self.documents, "ledger": self.ledger,
                  "term_counts": self.term_counts, "scores": self.scores,
                  "cooccurrence": self.cooccurrence}
        if self.units is not None:
            tables["units"] = self.units
        return tables

    def as_dict(self) -> dict[str, pd.DataFrame]:
        """Every table as a DataFrame (the row tables converted here: a copy of each)."""
        return {name: t if _is_frame(t) else store.plain_strings(t).to_pandas(split_blocks=True)
                for name, t in self.for_writing().items()}


def _is_frame(table: Any) -> bool:
    """A DataFrame rather than an Arrow table (without importing pandas or pyarrow for it)."""
    return not hasattr(table, "schema")


# --------------------------------------------------------------------------- planning


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _resolve_corpus(settings: Settings) -> tuple[Path, str]:
    """The corpus folder and name: a folder, else a registered name (``pipeline.registry``)."""
    path = Path(settings.corpus)
    if path.is_dir():
        return path, settings.corpus_name
    from pipeline.registry import resolve_corpus

    root, _name = resolve_corpus(str(settings.corpus))
    return Path(root), settings.corpus_name


def _shown(path: Path) -> str:
    """A folder as messages name it: relative to the working folder when inside it."""
    try:
        return Path(path).resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


def require_ingested(tables: Tables) -> None:
    """Refuse to write a run in which no document could be read: an empty report would
    hide the problem. The error gives the first reasons (the ledger is not written)."""
    if len(tables.documents):
        return
    ledger = tables.ledger
    rows = (zip(ledger["status"], ledger["reason"], strict=True) if _is_frame(ledger) else
            zip(ledger.column("status").to_pylist(), ledger.column("reason").to_pylist(),
                strict=True))
    failed = [reason for status, reason in rows if status == "failed"]
    reasons = "; ".join(str(r) for r in failed[:3])
    raise MobilizeError(f"no document could be read: {len(failed)} failed ({reasons}"
                        f"{'; ...' if len(failed) > 3 else ''})",
                        fix="Fix or replace those files (`mobilize corpus validate PATH` lists "
                            "every file with its reason), then run again.")


def _ingest_code_hash() -> str:
    """Hash of the modules that turn bytes into normalised text (ingest cache invalidation)."""
    pkg = Path(__file__).resolve().parent
    h = hashlib.sha256()
    names = ["ingest.py", "normalize.py"] + sorted(
        p.name for p in pkg.glob("read*.py")) + sorted(
        f"readers/{p.name}" for p in (pkg / "readers").glob("*.py"))
    for name in names:
        p = pkg / name
        if p.is_file():
            h.update(name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def make_batches(sources: Sequence[Source], settings: Settings) -> tuple[tuple[Source, ...], ...]:
    """Batches of at most ``settings.batch_size`` sources, at least ~4 per worker when possible."""
    n = len(sources)
    if not n:
        return ()
    per = max(1, min(settings.batch_size, math.ceil(n / max(1, settings.workers * 4))))
    return tuple(tuple(sources[i:i + per]) for i in range(0, n, per))


def balanced_batches(sources: Sequence[Source], settings: Settings,
                     sizes: Sequence[int] | None = None) -> tuple[tuple[Source, ...], ...]:
    """Batches for a process pool that keep every worker busy to the end: the sources by size
    (bytes, largest first), cut into batches that shrink as the work left does (guided
    self-scheduling): each batch takes ``1 / (4 * workers)`` of the bytes not yet batched, and
    at least ``1 / (64 * workers)`` of all of them (at most ``settings.batch_size`` sources).
    The first batches are large (few results to send back), the last ones small, so when one
    worker takes the last batch the others wait for a fraction of a batch, not a whole one.
    The outputs do not depend on the batches (``assemble`` sorts everything)."""
    if not sources:
        return ()
    if sizes is None:
        sizes = [_file_size(s) for s in sources]
    order = sorted(range(len(sources)), key=lambda i: (-sizes[i], sources[i].doc_id,
                                                       sources[i].path))
    workers = max(1, settings.workers)
    left = sum(sizes)
    floor = max(1, left // (_TAIL_BATCHES * workers))
    cap = max(1, settings.batch_size)
    batches: list[tuple[Source, ...]] = []
    cur: list[Source] = []
    held = 0
    budget = max(floor, left // (_GUIDED * workers))
    for i in order:
        cur.append(sources[i])
        held += sizes[i]
        if held >= budget or len(cur) >= cap:
            batches.append(tuple(cur))
            left -= held
            cur, held = [], 0
            budget = max(floor, left // (_GUIDED * workers))
    if cur:
        batches.append(tuple(cur))
    return tuple(batches)


#: ``balanced_batches``: each batch takes 1/(_GUIDED * workers) of the bytes left, and at least
#: 1/(_TAIL_BATCHES * workers) of the whole input (about 30 batches for 2 workers).
_GUIDED = 4
_TAIL_BATCHES = 64


def _split_check(spec: _segment.TokenizerSpec, cache: Path) -> tuple[str, ...]:
    """Terms the tokenizer splits, cached by its config hash (the check loads the dictionary)."""
    path = cache / "split" / f"{spec.config_hash}.json"
    got = _cache.read_json(path)
    if isinstance(got, list) and all(isinstance(t, str) for t in got):
        return tuple(got)
    terms = _segment.split_terms(spec.build(), spec.user_terms)
    _cache.write_json(path, list(terms))
    return tuple(terms)


#: The lexicon the warm-up loaded, by its file's path and text (``_load_lexicon``).
_LEXICONS: dict[tuple[str, str], Lexicon] = {}


def _load_lexicon(path: Path | str, *, remember: bool = False) -> Lexicon:
    """``lexicon.load_lexicon(path)``, answered from memory when this process's warm-up
    (``remember=True``, ``prepare_helper``) loaded the same file with the same text: the plan
    reads the file again and takes that lexicon only when its text is unchanged. A lexicon is
    remembered only when the file's text was the same before and after ``load_lexicon`` read
    it; an unreadable or broken file raises ``load_lexicon``'s own error (file, line, fix).
    A process without a warm-up (no helper, a notebook, a test) parses the file every time."""
    from pipeline.lexicon import load_lexicon

    file = Path(path)
    text = _text_of(file)
    lexicon = _LEXICONS.get((str(file), text)) if text is not None else None
    if lexicon is not None:
        return lexicon
    lexicon = load_lexicon(file)
    if remember and text is not None and _text_of(file) == text:
        _LEXICONS.clear()
        _LEXICONS[(str(file), text)] = lexicon
    return lexicon


def _text_of(file: Path) -> str | None:
    """A lexicon file's text as ``load_lexicon`` reads it, or None when it cannot be read."""
    try:
        return file.read_text(encoding="utf-8-sig") if file.is_file() else None
    except (OSError, UnicodeDecodeError):
        return None


def check_output_folder(settings: Settings) -> None:
    """Refuse an output folder the run must not write, before anything is created there (the
    runs call it before they take the output folder's lock):

    - ``--out`` inside the corpus folder (the next run would read its own report.html and
      report.md back as policy documents);
    - ``<out>/<corpus name>`` that is or contains the corpus folder, or an existing folder that
      is not a run folder mobilize wrote (``store.check_output_name``): a run replaces that
      folder, so it would delete the researcher's files;
    - a corpus named ``compare`` (``store.check_run_name``: ``OUT/compare/`` is where
      ``mobilize compare`` writes).
    """
    root, name = _resolve_corpus(settings)
    store.check_run_name(name, Path(settings.out))
    if Path(settings.out).resolve().is_relative_to(root.resolve()):
        raise MobilizeError(f"the output folder {settings.out} is inside the corpus folder; the "
                            "next run would read the report as a document", path=root,
                            fix="Give --out a folder outside the corpus folder.")
    store.check_output_name(Path(settings.out), name, corpus=root)


def plan_run(settings: Settings, *, check_split: bool = True) -> RunPlan:
    """Resolve the corpus, scan it, load the lexicon, check the tokenizer, cut batches.

    With ``check_split=False`` the tokenizer is not checked here (``split_checked`` is False):
    the caller runs ``checked_split`` before any output is written. A run's forked helper
    plans that way when the run's own process loads the segmenter's dictionary for its pool
    meanwhile (``preload_for_pool``): the check then costs that process a few ms, where the
    helper would load the same dictionary again (~0.7 s for jieba) before the pool may start."""
    from pipeline.ingest import require_documents, scan_corpus

    started = _now()
    root, name = _resolve_corpus(settings)
    scan = scan_corpus(root, name=name)
    require_documents(scan, _shown(root))
    lexicon = _load_lexicon(settings.lexicon)
    spec = _segment.TokenizerSpec(settings.segmenter, tuple(lexicon.user_words()), settings.hmm,
                                  _segment.jieba_dir(settings.cache))
    sources = tuple(sorted(scan.sources, key=lambda s: (s.doc_id, s.path)))
    plan = RunPlan(settings=settings, corpus_name=scan.name, corpus_root=Path(scan.root),
                   sources=sources, scan_ledger=tuple(scan.ledger), lexicon=lexicon,
                   scheme=_score.Scheme.from_lexicon(lexicon), tokenizer=spec,
                   batches=make_batches(sources, settings), ingest_code=_ingest_code_hash(),
                   started=started, split_checked=False)
    return checked_split(plan) if check_split else plan


def checked_split(plan: RunPlan) -> RunPlan:
    """``plan`` with its tokenizer checked (``split_terms``): the lexicon terms the segmenter
    splits are a warning, or a ``LexiconError`` under ``on_split_term = "fail"``. A plan
    already checked is returned as it is."""
    if plan.split_checked:
        return plan
    settings, spec = plan.settings, plan.tokenizer
    split = _split_check(spec, Path(settings.cache))
    if split:
        msg = (f"the {spec.segmenter} segmenter splits {len(split)} lexicon term(s): "
               f"{', '.join(split[:10])}{' ...' if len(split) > 10 else ''}")
        if settings.on_split_term == "fail":
            raise LexiconError(msg, path=settings.lexicon,
                               fix="Remove spaces/punctuation from those terms, or set "
                                   "on_split_term = \"warn\" (counts match the text, not tokens)")
        log.warning("%s (counts are unaffected: terms are matched on the text)", msg)
    return dataclasses.replace(plan, split_terms=split, split_checked=True)


# --------------------------------------------------------------------------- caches


def _json_path(root: Path, key: str) -> Path:
    """An engine cache entry: directly in its folder (``ingest/``, ``scores/<...>/``), not in a
    subfolder per first two characters: a first run then writes its entries into one folder
    per cache, not into a few hundred new ones (docs/engine.md, "Caches")."""
    return root / f"{key}.json"


#: What an ingest cache entry holds: each key with the type(s) its value must have.
_INFO_TYPES: Mapping[str, tuple[type, ...]] = {
    "doc_id": (str,), "path": (str,), "date": (str,), "year": (int, type(None)), "meta": (dict,),
    "chars": (int,), "sha256": (str,), "encoding": (str,), "reader": (str,),
    "converted": (bool,), "note": (str,)}


def _cached_info(path: Path) -> dict[str, Any] | None:
    """An ingest cache entry, or None when missing, damaged or not of the expected shape."""
    info = _cache.read_json(path)
    if not isinstance(info, dict) or any(
            not isinstance(info.get(k, ...), t) for k, t in _INFO_TYPES.items()):
        return None
    if len(info["sha256"]) != 64 or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in info["meta"].items()):
        return None
    return info


def _cached_score(path: Path) -> _score.DocScore | None:
    """A score cache entry, or None when missing, damaged or not of the expected shape."""
    data = _cache.read_json(path)
    if not isinstance(data, dict):
        return None
    try:
        ds = _score.DocScore.from_json(data)
    except (KeyError, TypeError, ValueError):
        return None
    widths = ((ds.term_counts, len(_score.TERM_COLUMNS) - 1),
              (ds.scores, len(_score.SCORE_COLUMNS) - 1),
              (ds.cooccurrence, len(_score.COOC_COLUMNS) - 1),
              (ds.units, len(_score.UNIT_COLUMNS) - 1))
    if any(len(row) != width for rows, width in widths for row in rows):
        return None
    return ds


def _ingest_key(plan: RunPlan, src: Source, st: os.stat_result) -> str:
    return _cache.key(str(src.abspath), st.st_size, st.st_mtime_ns, plan.settings.to_simplified,
                      plan.ingest_code, src.doc_id, src.path, src.date, src.year,
                      sorted(dict(src.meta).items()))


def _score_dir(plan: RunPlan) -> Path:
    return (Path(plan.settings.cache) / "scores"
            / f"{plan.lexicon.hash[:16]}-{plan.tokenizer.config_hash}-v{SCORER_VERSION}")


def _ingest_dir(plan: RunPlan) -> Path:
    return Path(plan.settings.cache) / "ingest"


def is_cached(plan: RunPlan, src: Source) -> bool:
    """True when ``src`` is unchanged since a run with this lexicon and tokenizer scored it."""
    try:
        st = src.abspath.stat()
    except OSError:
        return False
    info = _cached_info(_json_path(_ingest_dir(plan), _ingest_key(plan, src, st)))
    return info is not None and _json_path(_score_dir(plan), info["sha256"]).is_file()


# --------------------------------------------------------------------------- one batch

_MATCHERS: dict[str, Matcher] = {}


def _matcher(lexicon: Lexicon) -> Matcher:
    """One matcher per lexicon per process (building the automaton is the costly part)."""
    m = _MATCHERS.get(lexicon.hash)
    if m is None:
        from pipeline.match import Matcher

        _MATCHERS.clear()
        m = _MATCHERS[lexicon.hash] = Matcher(lexicon)
    return m


def _doc_info(doc: Any) -> dict[str, Any]:
    meta = {str(k): ("" if v is None else str(v)) for k, v in dict(doc.meta).items()}
    return {"doc_id": doc.doc_id, "path": doc.path, "date": doc.date, "year": doc.year,
            "meta": meta, "chars": len(doc.text), "sha256": doc.sha256,
            "encoding": getattr(doc, "encoding", ""), "reader": getattr(doc, "reader", ""),
            "converted": bool(getattr(doc, "converted", False)),
            "note": str(getattr(doc, "note", "") or "")}


def _document_row(info: Mapping[str, Any], ds: _score.DocScore) -> dict[str, Any]:
    row: dict[str, Any] = {"doc_id": info["doc_id"], "path": info["path"], "date": info["date"],
                           "year": info["year"]}
    meta = dict(info["meta"])
    for key in DOCUMENT_CORE:
        if key not in row:
            row[key] = meta.pop(key, "")
    for key, value in meta.items():
        # A metadata column named like a computed one (sha256, chars, or year, which comes from
        # the date) must not overwrite it: it is kept as meta_<name>.
        row[f"meta_{key}" if key in DOCUMENT_TAIL or key in row else key] = value
    row.update({"chars": info["chars"], "tokens": ds.tokens, "sentences": ds.sentences,
                "paragraphs": ds.paragraphs, "sha256": info["sha256"],
                "encoding": info["encoding"], "reader": info["reader"],
                "converted": info["converted"]})
    return row


def process_batch(plan: RunPlan, batch: Sequence[Source]) -> BatchResult:
    """Read, normalise, segment and score a batch of sources, using and filling the caches.

    Works in a worker process. A source that cannot be read is recorded as failed (with the
    reason) and the batch goes on.
    """
    from pipeline.ingest import read_source

    stats = RunStats()
    secs = {"ingest": 0.0, "segment": 0.0, "match": 0.0, "score": 0.0}
    out = BatchResult([], [], [], [], [], stats)
    ingest_dir, score_dir = _ingest_dir(plan), _score_dir(plan)
    seg_cache = _segment.SegmentCache(_segment.segments_dir(plan.settings.cache))
    for src in batch:
        t0 = time.perf_counter()
        try:
            st = src.abspath.stat()
        except OSError as exc:
            out.ledger.append(LedgerEntry(src.path, src.doc_id, "failed",
                                          f"{src.path}: cannot read the file ({exc.strerror})"))
            continue
        ikey = _json_path(ingest_dir, _ingest_key(plan, src, st))
        info = _cached_info(ikey)
        cached = _cached_score(_json_path(score_dir, info["sha256"])) if info else None
        if cached is not None:
            ds = cached
            stats.score_cache_hits += 1
            secs["ingest"] += time.perf_counter() - t0
        else:
            try:
                doc = read_source(src, to_simplified=plan.settings.to_simplified)
            except MobilizeError as exc:
                out.ledger.append(LedgerEntry(src.path, src.doc_id, "failed", exc.message))
                continue
            except Exception as exc:  # noqa: BLE001 - a reader crash must not stop the run
                out.ledger.append(LedgerEntry(src.path, src.doc_id, "failed",
                                              f"{src.path}: {type(exc).__name__}: {exc}"))
                continue
            stats.read += 1
            info = _doc_info(doc)
            _cache.write_json(ikey, info)
            t1 = time.perf_counter()
            secs["ingest"] += t1 - t0
            cached = _cached_score(_json_path(score_dir, doc.sha256))
            if cached is not None:
                ds = cached
                stats.score_cache_hits += 1
            else:
                units, hit = _segment.units_cached(plan.tokenizer.build(), doc.sha256, doc.text,
                                                   seg_cache)
                if hit:
                    stats.segment_cache_hits += 1
                else:
                    stats.segmented += 1
                t2 = time.perf_counter()
                hits = _matcher(plan.lexicon).find(doc.text)
                t3 = time.perf_counter()
                ds = _score.score_units(units, hits, plan.scheme, text_length=len(doc.text),
                                        text=doc.text)
                _cache.write_json(_json_path(score_dir, doc.sha256), ds.to_json())
                stats.scored += 1
                secs["segment"] += t2 - t1
                secs["match"] += t3 - t2
                secs["score"] += time.perf_counter() - t3
        doc_id = info["doc_id"]
        out.documents.append(_document_row(info, ds))
        out.add_rows(doc_id, ds)
        out.ledger.append(LedgerEntry(src.path, doc_id, "ingested", info.get("note", "")))
        if len(out.documents) % _FLUSH_DOCUMENTS == 0:
            out.flush()
    stats.seconds = {k: round(v, 6) for k, v in secs.items()}
    return out.columnar()


# --------------------------------------------------------------------------- assembling


def corpus_hash(pairs: Iterable[tuple[str, str]]) -> str:
    """sha256 over the sorted (doc_id, sha256) pairs of the documents in the tables."""
    h = hashlib.sha256()
    for doc_id, sha in sorted(pairs):
        h.update(f"{doc_id}\t{sha}\n".encode())
    return h.hexdigest()


def _frame(rows: Sequence[Any], columns: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    df = pd.DataFrame(list(rows), columns=list(columns))
    if len(df):
        df = df.sort_values(list(keys), kind="mergesort").reset_index(drop=True)
    return df


def _sorted_rows(parts: Sequence[Any], columns: Sequence[str], keys: Sequence[str],
                 keep: set[str]) -> pa.Table | None:
    """The rows of every batch (Arrow tables or lists of tuples) whose doc_id is in ``keep``,
    sorted by ``keys`` as one Arrow table (None when there is none): Arrow's sort is stable and
    orders strings by code point, as Python does, so this is ``_frame``'s order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = [_arrow_rows(list(p), columns) if isinstance(p, (list, tuple)) else p
              for p in parts]
    tables = [t for t in tables if isinstance(t, pa.Table) and t.num_rows]
    if not tables:
        return None
    if not keep:
        return None
    table = pa.concat_tables(tables, promote_options="permissive")  # (no copy)
    del tables
    kept = pc.is_in(table.column(0), value_set=_arrow_column(sorted(keep)))
    if not pc.all(kept).as_py():  # (a copy only when rows go: duplicates, reused doc_ids)
        table = table.filter(kept)
    del kept
    if not table.num_rows:
        return None
    return table.take(pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys]))


def _row_frame(parts: Sequence[Any], columns: Sequence[str], keys: Sequence[str],
               keep: set[str]) -> pd.DataFrame:
    """``_sorted_rows`` as a DataFrame: the one ``_frame`` makes of the same rows (same values,
    dtypes and order), built in Arrow so that the rows never exist as Python objects all at
    once."""
    import pandas as pd

    table = _sorted_rows(parts, columns, keys, keep)
    if table is None:
        return pd.DataFrame([], columns=list(columns))
    return table.to_pandas(split_blocks=True, self_destruct=True)


def _row_table(parts: Sequence[Any], columns: Sequence[str], keys: Sequence[str],
               keep: set[str]) -> pa.Table:
    """``_sorted_rows`` as ``Tables`` holds it: the Arrow table with its string columns
    dictionary-encoded (doc_id, scope, dimension, category, term repeat from row to row: about
    half the memory; ``store.plain_strings`` decodes them), or, when no row is left,
    ``_empty_table``: the DataFrame of ``_row_frame`` has empty ``object`` columns then, and
    its files are written as before (columns without types)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _sorted_rows(parts, columns, keys, keep)
    if table is None:
        return _empty_table(columns)
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(i, field.name, pc.dictionary_encode(table.column(i)))
    return table


def _empty_table(columns: Sequence[str]) -> pa.Table:
    """A table without rows whose columns are nulls: what ``pa.Table.from_pandas`` makes of
    ``pd.DataFrame([], columns=columns)`` (its ``pandas`` metadata included), without pandas."""
    import pyarrow as pa

    table = pa.Table.from_arrays([pa.nulls(0) for _ in columns], names=list(columns))
    metadata = store.pandas_metadata(table.schema)
    return table if metadata is None else table.replace_schema_metadata({b"pandas": metadata})


def _documents_table(kept_docs: Sequence[Mapping[str, Any]], doc_cols: Sequence[str]
                     ) -> pa.Table | pd.DataFrame:
    """The documents table (sorted by doc_id) as an Arrow table built without pandas, with the
    ``pandas`` metadata of its DataFrame (``year`` a nullable ``Int64``; the other columns as
    pandas infers them: strings ``str``, counts ``int64``, ``converted`` ``bool``), so that its
    files and its DataFrame (``to_pandas``) are those of ``_documents_frame``. Where a value is
    of another kind than those (no documents at all, a count that is no int, ...), that
    DataFrame itself, as before."""
    import pyarrow as pa

    columns = _documents_columns(kept_docs, doc_cols)
    if columns is None:
        return _documents_frame(kept_docs, doc_cols)
    table = pa.Table.from_arrays(columns, names=list(doc_cols))
    # (kept_docs are sorted by (doc_id, path) and their doc_ids unique: sorted by doc_id)
    metadata = store.pandas_metadata(table.schema, nullable_ints=("year",))
    if metadata is None:
        return _documents_frame(kept_docs, doc_cols)
    return table.replace_schema_metadata({b"pandas": metadata})


def _documents_columns(kept_docs: Sequence[Mapping[str, Any]], doc_cols: Sequence[str]
                       ) -> list[pa.Array] | None:
    """The documents table's columns as Arrow arrays (``_documents_table``), or None where a
    value is not of its column's kind (str; int for the counts, bool for ``converted``, int or
    None for ``year``) or the table has no rows."""
    import numpy as np
    import pyarrow as pa

    counts = ("chars", "tokens", "sentences", "paragraphs")
    values = {c: [d.get(c, "") for d in kept_docs] for c in doc_cols if c != "year"}
    years = [d.get("year") for d in kept_docs]
    if not kept_docs or not set(map(type, years)) <= {int, type(None)} or any(
            set(map(type, v)) != ({int} if c in counts else {bool} if c == "converted"
                                  else {str}) for c, v in values.items()):
        return None
    try:
        present = np.array([y is not None for y in years], dtype=bool)
        year = pa.Array.from_buffers(pa.int64(), len(years), [
            None if present.all() else pa.py_buffer(np.packbits(present, bitorder="little")),
            pa.py_buffer(np.array([0 if y is None else y for y in years], dtype=np.int64))],
            null_count=int(len(years) - present.sum()))
        columns = [year if c == "year" else _arrow_column(values[c]) for c in doc_cols]
    except (OverflowError, UnicodeEncodeError):  # (ints beyond int64, lone surrogates)
        return None
    if any(c.type not in (pa.string(), pa.int64(), pa.bool_()) for c in columns):
        return None
    return columns


def _documents_frame(kept_docs: Sequence[Mapping[str, Any]], doc_cols: Sequence[str]
                     ) -> pd.DataFrame:
    """The documents table as a DataFrame (``_documents_table`` where its values are of other
    kinds)."""
    import pandas as pd

    documents = pd.DataFrame([{c: d.get(c, "") for c in doc_cols} for d in kept_docs],
                             columns=list(doc_cols))
    documents["year"] = pd.array([d.get("year") for d in kept_docs], dtype="Int64")
    for col in ("chars", "tokens", "sentences", "paragraphs"):
        documents[col] = documents[col].astype("int64")
    documents["converted"] = documents["converted"].astype("bool")
    return documents.sort_values("doc_id", kind="mergesort").reset_index(drop=True)


def _ledger_table(ledger: Sequence[LedgerEntry]) -> pa.Table | pd.DataFrame:
    """The ledger sorted by path, doc_id, status and reason, as an Arrow table of strings built
    without pandas (``_frame``'s order: Python's sort of the rows, code point by code point, as
    pandas sorts strings); ``_frame``'s DataFrame where a field is no string."""
    import pyarrow as pa

    rows = sorted(dataclasses.astuple(e) for e in ledger) \
        if all(type(v) is str for e in ledger for v in dataclasses.astuple(e)) else None
    if rows:
        try:
            columns = [_arrow_column(list(c)) for c in zip(*rows, strict=True)]
        except UnicodeEncodeError:  # (a lone surrogate in a path)
            columns = []
        if columns and all(c.type == pa.string() for c in columns):
            return pa.Table.from_arrays(columns, names=list(LEDGER_COLUMNS))
    return _frame([dataclasses.astuple(e) for e in ledger], LEDGER_COLUMNS,
                  _TABLE_KEYS["ledger"] + ("status", "reason"))


def assemble(plan: RunPlan, results: Sequence[BatchResult], *, release: bool = False) -> Tables:
    """Merge batch results: duplicates by text (sha256), the ledger, the sorted tables
    (``Tables``, Arrow tables made without importing pandas). With ``release``, each batch's
    rows of a table are dropped from its result once that table is made (the caller has no
    further use for them), so that a run never holds a table twice over, unsorted and sorted,
    for all four tables at once."""
    t0 = time.perf_counter()
    stats = RunStats()
    docs: list[dict[str, Any]] = []
    ledger: list[LedgerEntry] = list(plan.scan_ledger)
    notes: dict[tuple[str, str], str] = {}
    for r in results:
        stats.add(r.stats)
        docs += r.documents
        ledger += [e for e in r.ledger if e.status != "ingested"]
        notes.update({(e.path, e.doc_id): e.reason for e in r.ledger if e.status == "ingested"})
    docs.sort(key=lambda d: (d["doc_id"], d["path"]))
    keep: set[str] = set()
    by_sha: dict[str, str] = {}
    duplicates = 0
    for d in docs:
        if d["doc_id"] in keep:
            ledger.append(LedgerEntry(d["path"], d["doc_id"], "failed",
                                      f"{d['path']}: doc_id {d['doc_id']!r} is used by another "
                                      "file; give each document its own doc_id"))
        elif d["sha256"] in by_sha:
            duplicates += 1
            ledger.append(LedgerEntry(d["path"], d["doc_id"], _DUPLICATE,
                                      f"duplicate of {by_sha[d['sha256']]} "
                                      "(same normalised text)"))
        else:
            keep.add(d["doc_id"])
            by_sha[d["sha256"]] = d["doc_id"]
            ledger.append(LedgerEntry(d["path"], d["doc_id"], "ingested",
                                      notes.get((d["path"], d["doc_id"]), "")))
    kept_docs = [d for d in docs if d["doc_id"] in keep and by_sha.get(d["sha256"]) == d["doc_id"]]

    def rows(attr: str) -> pa.Table:
        parts = [getattr(r, attr) for r in results]
        if release:
            for r in results:
                setattr(r, attr, [])
        return _row_table(parts, _ROW_TABLES[attr], _TABLE_KEYS[attr], keep)

    extra = sorted({k for d in kept_docs for k in d} - set(DOCUMENT_CORE) - set(DOCUMENT_TAIL))
    doc_cols = list(DOCUMENT_CORE) + extra + list(DOCUMENT_TAIL)
    documents = _documents_table(kept_docs, doc_cols)
    ledger_df = _ledger_table(ledger)
    for status in ("ingested", "skipped", "failed"):
        setattr(stats, status, sum(1 for e in ledger if e.status == status))
    stats.corpus_files = sum(1 for e in ledger if e.status == "corpus_file")
    stats.duplicates = duplicates  # (also counted in ``skipped``)
    stats.documents = len(documents)
    tables = Tables(
        documents=documents,
        ledger=ledger_df,
        term_counts=rows("term_counts"),
        scores=rows("scores"),
        cooccurrence=rows("cooccurrence"),
        stats=stats,
        content_hash=corpus_hash((d["doc_id"], d["sha256"]) for d in kept_docs),
        units=rows("units"),
    )
    stats.seconds["assemble"] = round(time.perf_counter() - t0, 6)
    return tables


# --------------------------------------------------------------------------- writing


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("pandas", "jieba", "rjieba", "pyahocorasick", "mobilize", "pyarrow", "duckdb"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = ""
    return out


def manifest(settings: Settings, plan: RunPlan, tables: Tables, finished: str) -> dict[str, Any]:
    """What ``run.json`` says: corpus, lexicon, segmenter, versions, parameters, dates."""
    s = settings
    return {
        "schema": store.RUN_SCHEMA,
        "corpus": {"name": plan.corpus_name, "root": str(plan.corpus_root),
                   "documents": len(tables.documents), "content_hash": tables.content_hash},
        "lexicon": {"name": plan.lexicon.name, "version": plan.lexicon.version,
                    "hash": plan.lexicon.hash, "categories": len(plan.scheme.categories),
                    "path": str(plan.lexicon.path) if plan.lexicon.path else ""},
        "segmenter": {"name": plan.tokenizer.segmenter, "version": plan.tokenizer.version,
                      "hmm": plan.tokenizer.hmm, "config_hash": plan.tokenizer.config_hash,
                      "user_terms": len(plan.tokenizer.user_terms),
                      "split_terms": list(plan.split_terms)},
        "versions": _versions(),
        "parameters": {"engine": s.engine, "segmenter": s.segmenter, "hmm": s.hmm,
                       "workers": s.workers, "batch_size": s.batch_size,
                       "to_simplified": s.to_simplified, "on_split_term": s.on_split_term,
                       "report": s.report, "seed": s.seed, "scorer_version": SCORER_VERSION},
        "stats": dataclasses.asdict(tables.stats),
        "started": plan.started,
        "finished": finished,
        "command": " ".join(sys.argv[:1] + sys.argv[1:]) if sys.argv else "",
    }


def write_outputs(settings: Settings, plan: RunPlan, tables: Tables,
                  phase: Callable[[str], None] | None = None) -> RunResult:
    """Write all tables and run.json into a temporary folder, run the report hook, swap it in.

    ``phase(name)`` is told when the tables and then the report are being written."""
    t0 = time.perf_counter()
    if phase:
        phase(PHASE_TABLES)
    try:
        with store.atomic_dir(settings.out, plan.corpus_name) as tmp:
            store.write_tables(tmp, tables.for_writing())
            tables.stats.seconds["write"] = round(time.perf_counter() - t0, 6)
            man = manifest(settings, plan, tables, _now())
            store.write_json(tmp / "run.json", man)
            if settings.report:
                from pipeline.report import write_report

                if phase:
                    phase(PHASE_REPORT)
                t1 = time.perf_counter()
                write_report(tmp, settings, lexicon=plan.lexicon,  # (parsed once per run)
                             phase=(lambda step: phase(f"{PHASE_REPORT}: {step}")) if phase
                             else None)
                tables.stats.seconds["report"] = round(time.perf_counter() - t1, 6)
    except OSError as exc:  # a full disk, a read-only folder: the earlier outputs are intact
        raise write_error(Path(settings.out), plan.corpus_name, exc) from None
    return RunResult(Path(settings.out) / plan.corpus_name, tables.stats, man)

def write_error(out: Path, name: str, exc: OSError) -> MobilizeError:
    """The error for outputs that could not be written (the temporary folder is gone, and an
    earlier ``<out>/<name>`` is as it was)."""
    why = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "Free space on that disk (or give --out a folder on another disk) and run again."
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "Give --out a folder you may write to (or change its permissions) and run again."
    else:
        fix = "Check the output folder and its disk, or give --out another folder."
    kept = (f"; the earlier outputs in {name}/ are intact" if (out / name).is_dir() else
            "; nothing was written")
    return MobilizeError(f"cannot write the outputs ({why}){kept}", path=out, fix=fix)


def finish_stats(result: RunResult, t0: float, started: float | None) -> None:
    """Add the run's ``total`` (since ``t0``, a ``perf_counter``) and, when the caller gives
    when its user started waiting (``started``, a ``time.time()``), ``waited``: the wall time
    from then until now. run.json and the summary report both."""
    result.stats.seconds["total"] = round(time.perf_counter() - t0, 6)
    if started is not None:
        result.stats.seconds["waited"] = round(time.time() - started, 3)
    result.manifest["stats"] = dataclasses.asdict(result.stats)


# --------------------------------------------------------------------------- the whole run


def death_signal() -> Callable[[], None] | None:
    """Linux: a function that makes the calling process get SIGTERM when its parent dies (even
    by SIGKILL; ``prctl(PR_SET_PDEATHSIG)``), so that a killed run leaves no process behind. For
    ``preexec_fn`` (the temporary Prefect server) and the pool workers' initializer. None
    elsewhere.

    The C function is looked up here, in the parent: the child only calls it (no imports or
    locks between fork and exec).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def set_death_signal() -> None:  # pragma: no cover - runs in the child
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG

    return set_death_signal


def _alive(pid: int) -> bool:
    """True while process ``pid`` runs (a zombie, killed but not yet reaped, is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def _watch(main_pid: int, interval: float = 0.25) -> None:  # pragma: no cover - in a worker
    while _alive(main_pid):
        time.sleep(interval)
    os._exit(1)


def _worker_init(main_pid: int,  # pragma: no cover - runs in the worker
                 plan: RunPlan | None = None) -> None:
    """Pool worker initializer: the worker ends when the run's process dies, even by SIGKILL.

    A ``fork`` worker is the run's child: the kernel sends it SIGTERM when the run dies
    (``death_signal``; if the run died before this ran, the worker exits now). A
    ``forkserver`` worker is the fork server's child: it gets SIGTERM when the fork server
    dies, and a watchdog thread ends it when the run's process is gone. SIGTERM gets its
    default action back (a handler inherited from the run would only raise inside a task).

    ``plan``: the run's plan, kept for ``_pool_task`` (given once per worker, not with every
    batch; a ``fork`` worker inherits it without pickling).
    """
    import threading

    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    set_death = death_signal()
    if set_death is not None:
        set_death()
    if os.getppid() != parent or not _alive(main_pid):
        os._exit(1)
    if parent != main_pid:
        threading.Thread(target=_watch, args=(main_pid,), daemon=True,
                         name="mobilize-watch-run").start()
    if plan is not None:
        _WORKER_PLAN["plan"] = plan


#: The run's plan in a pool worker (``_worker_init``).
_WORKER_PLAN: dict[str, RunPlan] = {}


def _pool_task(batch: Sequence[Source]) -> BatchResult:  # pragma: no cover - in a worker
    """``process_batch`` of one batch with the plan the worker was given at its start."""
    return process_batch(_WORKER_PLAN["plan"], batch)


def _pool_context(plan: RunPlan) -> Any:
    """``fork`` when this process runs a single thread (the workers then inherit the loaded
    dictionary and never re-import ``__main__``, so scripts and notebooks need no main guard);
    otherwise ``forkserver`` (forking a threaded process is unsafe)."""
    import multiprocessing as mp
    import threading

    methods = mp.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        plan.tokenizer.build().cut("预热")  # load the dictionary once, before forking
        _matcher(plan.lexicon)
        return mp.get_context("fork")
    return mp.get_context("forkserver" if "forkserver" in methods else "spawn")


#: Below this many bytes of uncached input, a pool costs more (worker start-up and a
#: dictionary load each) than it saves; the batches then run in this process. (Measured again
#: with a ``fork`` pool, whose workers start in milliseconds and inherit the dictionary, while
#: this process imports the table writers: on the 1.4 MB and 3.5 MB shared corpora with
#: jieba-rs it was no faster on 2 busy cores, so the thresholds stay.)
POOL_MIN_BYTES: Mapping[str, int] = {"jieba": 1_000_000, "jieba-rs": 8_000_000}


def preload_for_pool(settings: Settings, *, likely: bool | None = None) -> bool:
    """Load the segmenter's dictionary into this process while the forked helper plans, when
    the run will likely start a pool (``_pool_context`` would load it only after the plan, one
    step more on the way to the first batch; the pool's forked workers inherit it): more than
    one worker, a corpus folder of at least ``POOL_MIN_BYTES`` and a first run with this cache
    folder (no ingest cache yet, so no document is answered from it). Otherwise (a re-run may
    find every document in the caches and need no dictionary at all) nothing is loaded here.
    ``likely``: ``_pool_likely(settings)`` when the caller has it (it walks the corpus folder).
    True when it loaded."""
    if not (_pool_likely(settings) if likely is None else likely):
        return False
    _segment.preload_segmenter(settings.segmenter, _segment.jieba_dir(Path(settings.cache)))
    _warm_document_tables()
    return True


def _pool_likely(settings: Settings) -> bool:
    """Whether a run of ``settings`` will likely start a pool (``preload_for_pool``): more than
    one worker, no ingest cache yet in its cache folder, a corpus folder of at least
    ``POOL_MIN_BYTES`` for its segmenter (its files' sizes, counted until that much)."""
    if settings.workers <= 1 or (Path(settings.cache) / "ingest").exists():
        return False
    segmenter = _segment.TokenizerSpec(settings.segmenter).segmenter
    try:
        root, _name = _resolve_corpus(settings)
    except (MobilizeError, OSError):
        return False  # (the helper says what is wrong with it)
    return _folder_bytes(root, POOL_MIN_BYTES[segmenter]) >= POOL_MIN_BYTES[segmenter]


def _warm_document_tables() -> None:
    """Build, in this process, the lookup tables every worker would otherwise build on its
    first document (~25-35 ms of CPU each: normalisation's table of characters NFKC changes,
    the traditional and Han character tables, the character classes of sentences and word
    tokens); ``preload_for_pool`` does it while the helper plans, and the pool's forked
    workers inherit them. Each table is memoised where it is defined: nothing else changes."""
    import numpy as np

    from pipeline import normalize

    text = normalize.text("預熱，预热。\n")
    normalize.traditional_share(text)
    _segment.units_from_lengths(text, np.ones(len(text), dtype=np.int64))


def _folder_bytes(root: Path, enough: int) -> int:
    """The bytes of the files under ``root`` (links not followed), counted until ``enough``."""
    total = 0
    for folder, _dirs, names in os.walk(root):
        for name in names:
            try:
                total += os.stat(os.path.join(folder, name), follow_symlinks=False).st_size
            except OSError:
                continue
            if total >= enough:
                return total
    return total


def import_table_writers() -> None:
    """Import the libraries that assemble and write the tables (pyarrow, its compute functions
    and Parquet, DuckDB; not pandas, which a run without report never imports), e.g. while a
    pool works: their import is CPU time this process would otherwise spend after the
    documents are done."""
    import duckdb  # noqa: F401
    import pyarrow.compute  # noqa: F401
    import pyarrow.parquet  # noqa: F401


def _file_size(src: Source) -> int:
    try:
        return src.abspath.stat().st_size
    except OSError:
        return 0


def pool_batches(plan: RunPlan, fresh: Sequence[Source]) -> tuple[int, tuple[tuple[Source, ...], ...]]:
    """How many workers and which batches for the uncached sources ``fresh``, as ``run_local``
    decides it: a pool only from ``POOL_MIN_BYTES`` of input on (below, worker start-up and a
    dictionary load each cost more than they save), then ``balanced_batches``; else one
    worker and ``make_batches``. (The Prefect flow's ``process-batches`` task uses it.)"""
    sizes = [_file_size(s) for s in fresh]
    if plan.settings.workers > 1 and sum(sizes) >= POOL_MIN_BYTES[plan.tokenizer.segmenter]:
        return plan.settings.workers, balanced_batches(fresh, plan.settings, sizes)
    return 1, make_batches(fresh, plan.settings)


def run_batches(plan: RunPlan, batches: Sequence[Sequence[Source]], workers: int,
                progress: Callable[[int], None] | None = None) -> list[BatchResult]:
    """``process_batch`` over ``batches``: in-process for one worker or one batch, else a pool.

    At most two batches per worker are in flight, so memory stays flat however many there are.
    """
    results: list[BatchResult] = []
    if workers <= 1 or len(batches) <= 1:
        for b in batches:
            results.append(process_batch(plan, b))
            if progress:
                progress(len(b))
        return results
    import gc

    pending: set[Future[BatchResult]] = set()
    todo = list(batches)
    context = _pool_context(plan)
    # (filelock closes its descriptors in forked children: workers never hold the run lock)
    # (workers end with the run: a killed run leaves no worker behind, see _worker_init)
    # (the plan goes to each worker once, with its start; a batch sends only its sources)
    # (forked workers start with every object of this process in the garbage collector's
    # permanent generation: their collections then never walk the imports, the plan or the
    # dictionary they inherit, which would also copy those pages into each worker)
    forked = context.get_start_method() == "fork"
    if forked:
        gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=min(workers, len(batches)), mp_context=context,
                                 initializer=_worker_init,
                                 initargs=(os.getpid(), plan)) as pool:
            warm = True
            while todo or pending:
                while todo and len(pending) < 2 * workers:
                    b = todo.pop(0)
                    fut = pool.submit(_pool_task, b)
                    fut.size = len(b)  # type: ignore[attr-defined]
                    pending.add(fut)
                if warm:  # the workers have their first batches: use the wait
                    if forked:
                        gc.unfreeze()  # (they are forked: this process collects as before)
                    import_table_writers()
                    warm = False
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    results.append(fut.result())
                    if progress:
                        progress(fut.size)  # type: ignore[attr-defined]
    finally:
        if forked:
            gc.unfreeze()
    return results


def _process(plan: RunPlan, tick: Callable[[int], None] | None = None,
             *, small_only: bool = False) -> list[BatchResult] | None:
    """Every document of ``plan``: unchanged ones answered from the caches in this process, the
    rest in this process too below ``POOL_MIN_BYTES`` of input, else on a pool of
    ``settings.workers``. With ``small_only``, None instead of starting a pool."""
    hit = [is_cached(plan, s) for s in plan.sources]
    cached = [s for s, h in zip(plan.sources, hit, strict=True) if h]
    fresh = [s for s, h in zip(plan.sources, hit, strict=True) if not h]
    workers, batches = pool_batches(plan, fresh)  # (one rule for both engines)
    if small_only and workers > 1:
        return None
    results = []
    if cached:
        results.append(process_batch(plan, cached))
        if tick:
            tick(len(cached))
    log.info("%s: %d sources, %d unchanged (from the caches), %d to process in %d batch(es) "
             "on %d worker(s); lexicon %s %s; %s", plan.corpus_name, len(plan.sources),
             len(cached), len(fresh), len(batches), workers, plan.lexicon.name,
             plan.lexicon.version, plan.tokenizer.segmenter)
    return results + run_batches(plan, batches, workers, tick)


def _plan_and_process(settings: Settings, log_level: int | None = None, check_split: bool = True
                      ) -> tuple[RunPlan, list[BatchResult] | None, float, float]:
    """The helper's work (``_start_helper``): the plan, and every document when no pool is needed
    (else None: the caller starts the pool), with the seconds of each. ``log_level``: the run's
    level for mobilize's messages (a helper forked before the options were parsed does not
    know ``--verbose``). ``check_split``: ``plan_run``'s."""
    t0 = time.perf_counter()
    if log_level is not None:
        logging.getLogger("pipeline").setLevel(log_level)
    _ROWS_AS_ARROW["on"] = False  # (this process is the helper: it ends with this run)
    plan = plan_run(settings, check_split=check_split)
    t1 = time.perf_counter()
    results = _process(plan, small_only=True)
    return plan, results, t1 - t0, time.perf_counter() - t1


def _warm_up() -> None:
    """What the helper of a default run loads before it is handed the run (``prepare_helper``):
    the bundled lexicon, the default segmenter with its terms, the matcher, and the tables the
    first document would build. Everything here is memoised by what it is built from (the
    lexicon by its file's text, the tokenizer by its terms, the matcher by the lexicon's hash),
    so a run with other settings simply builds its own; nothing is written anywhere."""
    from pipeline import normalize
    from pipeline.config import DEFAULT_LEXICON, DEFAULT_SEGMENTER, cache_dir

    try:
        lexicon = _load_lexicon(DEFAULT_LEXICON, remember=True)
        spec = _segment.TokenizerSpec(DEFAULT_SEGMENTER, tuple(lexicon.user_words()), True,
                                      _segment.jieba_dir(cache_dir()))
        if spec.segmenter == "jieba-rs":  # (jieba's own dictionary takes seconds: not on spec)
            _segment.segment_units(spec.build(), normalize.text("预热。"))
        _matcher(lexicon).find("预热")
    except Exception:  # noqa: BLE001 - the run itself meets and reports any problem
        log.debug("warm-up failed", exc_info=True)


def prepare_helper() -> ProcessPoolExecutor | None:
    """Fork the helper of a run that is about to start, before its settings are known (the
    command line calls it before parsing ``mobilize run``'s options); ``run_local(settings,
    helper=...)`` then hands it the run. Meanwhile it warms up (``_warm_up``): on a small
    corpus this takes the segmenter's dictionary, the lexicon and the matcher (~0.3 s of CPU)
    off the wait, beside the option parsing. None where ``_start_helper`` would not fork. The
    caller shuts it down when no local run uses it (``shutdown(wait=False)``: it ends after the
    warm-up)."""
    forked = _fork_helper(_warm_up)
    return forked[0] if forked else None


def _fork_helper(fn: Callable[..., Any], *args: Any
                 ) -> tuple[ProcessPoolExecutor, Future[Any]] | None:
    """A one-process pool forked from this process, running ``fn(*args)``; None where there is
    no ``fork`` or where this process runs threads (forking them is unsafe)."""
    import multiprocessing as mp
    import threading

    if "fork" not in mp.get_all_start_methods() or threading.active_count() != 1:
        return None
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"),
                               initializer=_worker_init, initargs=(os.getpid(),))
    try:
        return pool, pool.submit(fn, *args)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise


def _start_helper(settings: Settings, prepared: ProcessPoolExecutor | None = None,
                  check_split: bool = True) -> tuple[ProcessPoolExecutor, Future[Any]] | None:
    """Plan the run (scan, lexicon, tokenizer check) and, below ``POOL_MIN_BYTES`` of uncached
    input, process every document, in a forked helper process, while this process imports
    what assembles and writes the tables (pyarrow and DuckDB; ``_helper_result``).

    On a small corpus a first run is all such fixed costs, one after the other on one core;
    this puts them on two. The helper is forked from this process (milliseconds; only while it
    runs a single thread: ``run_local`` starts it before its first ``phase`` callback, which may
    start the progress spinner's thread) and ends with it even on SIGKILL (``_worker_init``);
    what it sends back (the plan, the batches' rows, a ``MobilizeError``) travels as the pool's
    results do. None, and the run does it all here as before, where there is no ``fork`` or
    where this process runs threads (forking them is unsafe: the Prefect flow, a notebook's
    kernel). ``check_split=False``: the helper leaves the tokenizer's check to this process
    (``plan_run``, ``checked_split``).
    """
    from concurrent.futures.process import BrokenProcessPool

    if prepared is not None:  # (forked earlier, by ``prepare_helper``)
        try:
            return prepared, prepared.submit(_plan_and_process, settings,
                                             logging.getLogger("pipeline").level, check_split)
        except BrokenProcessPool:  # (it died: fork another below, as without one)
            prepared.shutdown(wait=True, cancel_futures=True)
    return _fork_helper(_plan_and_process, settings, None, check_split)


def _helper_result(helper: tuple[ProcessPoolExecutor, Future[Any]],
                   settings: Settings | None = None
                   ) -> tuple[RunPlan, list[BatchResult] | None, float, float]:
    """The helper's result (or its error), with this process's wait put to use. With
    ``settings`` (a run that will likely start a pool), the segmenter's dictionary is loaded
    meanwhile (``preload_for_pool``), first: the pool's workers wait for it, and the table
    writers are imported while they work (``run_batches``). Otherwise the table writers are
    imported."""
    if settings is not None:
        if not (helper[1].done() and helper[1].exception() is not None):  # (an error: say it)
            preload_for_pool(settings, likely=True)  # (run_local asked _pool_likely)
    else:
        import_table_writers()
    return helper[1].result()  # type: ignore[no-any-return]


def run_local(settings: Settings, *, wait_seconds: float | None = None,
              progress: Callable[[int, int], None] | None = None,
              phase: Callable[[str], None] | None = None,
              started: float | None = None,
              helper: ProcessPoolExecutor | None = None) -> RunResult:
    """The whole run in this process (plus a pool of ``settings.workers`` for uncached documents).

    Holds the output folder's lock (waiting up to ``wait_seconds``, default
    ``settings.wait``). ``progress(done, total)`` is called as documents finish, ``phase(name)``
    as the run enters each phase (``PHASES``). ``started`` (a ``time.time()``): when the user
    started waiting; the stats then hold ``seconds["waited"]``. ``helper``: a helper from
    ``prepare_helper``, which plans the run (else one is forked here); it is shut down.
    """
    t0 = time.perf_counter()
    wait_s = settings.wait if wait_seconds is None else wait_seconds
    try:
        check_output_folder(settings)
        with store.run_lock(settings.out, settings.corpus_name, wait_s):
            # (a pooled first run: the helper plans while this process loads the dictionary the
            # workers inherit, and checks the tokenizer with it once the plan is back)
            pooled = _pool_likely(settings)
            # (forked before a callback may start a thread)
            forked = _start_helper(settings, helper, check_split=not pooled)
            try:
                if phase:
                    phase(PHASE_PLAN)
                early = (_helper_result(forked, settings if pooled else None) if forked
                         else None)  # (None: plan here)
            finally:
                if forked:
                    forked[0].shutdown(wait=True, cancel_futures=True)
            if early:
                # (the seconds this process waited for the helper: its documents' share is
                # "batches", the rest, the plan and the imports beside it, "plan")
                plan, results, _plan_s, t_batches = early
                plan = checked_split(plan)  # (before any output is written)
                t_plan = time.perf_counter() - t0 - (t_batches if results is not None else 0.0)
            else:
                plan, results, t_batches = plan_run(settings), None, 0.0
                t_plan = time.perf_counter() - t0
            total = len(plan.sources)
            done = 0

            def tick(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, total)

            if phase:
                phase(PHASE_DOCUMENTS)
            if progress:
                progress(0, total)
            if results is not None:  # (the helper processed every document)
                tick(total)
            else:
                t1 = time.perf_counter()
                results = _process(plan, tick)
                t_batches = time.perf_counter() - t1
            tables = assemble(plan, results, release=True)
            results.clear()  # (the batches' rows are in the tables now: memory for the writing)
            require_ingested(tables)
            tables.stats.seconds.update({"plan": round(t_plan, 6), "batches": round(t_batches, 6)})
            result = write_outputs(settings, plan, tables, phase)
            finish_stats(result, t0, started)
            store.write_json(result.run_dir / "run.json", result.manifest)  # now with the total
    finally:
        if helper is not None:  # (shut down above once used; not used when the run stopped early)
            helper.shutdown(wait=False, cancel_futures=True)
    log.info("seconds: %s", result.stats.seconds)
    return result


__all__ = ["PHASES", "BatchResult", "RunPlan", "RunResult", "RunStats", "Tables", "assemble",
           "balanced_batches", "check_output_folder", "finish_stats",
           "require_ingested",
           "is_cached", "make_batches", "plan_run", "pool_batches", "prepare_helper", "process_batch",
           "run_batches",
           "run_local",
           "write_outputs"]
