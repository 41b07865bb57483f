"""Ingest: a researcher's folder of policy documents becomes normalised documents and a ledger.

I/O happens here and only here: files are found, checked against the corpus
folder, decoded and normalised; everything after works on ``Document.text``.

Every file under the corpus folder, and every metadata row, ends in exactly one
``LedgerEntry``: ``ingested``, ``skipped`` (with the reason) or ``failed``
(with the reason, naming the file, the line and the fix), or ``corpus_file`` for the
corpus's own files (metadata.csv, README/NOTES files documenting it). Hidden files and
folders and Word's lock files (``~$x.docx``) are skipped unread.

Safety: no path is opened before it has been resolved and checked to lie inside
the corpus folder (symlinks and ``../`` in metadata paths are refused unread).

Public API: ``scan_corpus`` (find sources, no reading), ``read_source`` (read and
normalise one), ``load_corpus`` (both, plus duplicate detection),
``find_duplicates`` (the duplicate rule on ``(doc_id, sha256)`` pairs).
"""

from __future__ import annotations

import calendar
import csv
import errno
import hashlib
import html
import io
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pipeline import normalize
from pipeline.config import shown_path
from pipeline.errors import IngestError

#: ``corpus_file``: a file of the corpus that is not a document (its metadata.csv, a README
#: or NOTES file documenting it): accounted for, neither skipped nor failed.
Status = Literal["ingested", "skipped", "failed", "corpus_file"]
STATUSES: tuple[Status, ...] = ("ingested", "skipped", "failed", "corpus_file")
#: Top-level files that document a corpus rather than belong to it (any extension).
_CORPUS_DOC = re.compile(r"^(readme|notes|licen[cs]e|changelog)(\.[A-Za-z0-9]+)?$", re.IGNORECASE)
SUPPORTED = (".txt", ".md", ".html", ".htm", ".docx", ".pdf")
CORE_COLUMNS = ("doc_id", "title", "date", "issuer", "level", "region", "doc_type", "language")
METADATA_FILE = "metadata.csv"
#: Text files (.txt/.md/.html) larger than this fail unread: no policy document is that long.
MAX_TEXT_BYTES = 20 * 1024 * 1024
#: .docx/.pdf files larger than this fail unread (they may carry images, hence the higher limit).
MAX_BINARY_BYTES = 100 * 1024 * 1024
#: A document whose extracted text passes this many characters fails: reading stops there. (As
#: many as the largest .txt can hold, so a .docx, .pdf or .html holds no more than a .txt may.)
MAX_TEXT_CHARS = MAX_TEXT_BYTES
#: A .docx whose parts inflate to more than this fails before any part is inflated or parsed
#: (a zip bomb: 1 MB of repeated XML can inflate to hundreds of MB).
MAX_INFLATED_BYTES = 2 * MAX_BINARY_BYTES
#: ... and one whose XML parts (parsed into trees: about 15 times their size in memory, and
#: python-docx reads about 0.1-0.3 MB of XML a second) inflate to more than this.
MAX_XML_BYTES = 16 * 1024 * 1024

_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_YEAR_IN_NAME = re.compile(r"(?<!\d)(1[89]\d{2}|20\d{2})(?!\d)")
_READERS = {".txt": "txt", ".md": "txt", ".html": "html", ".htm": "html", ".docx": "docx",
            ".pdf": "pdf"}
#: The control characters a text may hold only a few of (not tab, line feed, form feed or CR),
#: as the bytes they are in UTF-8.
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
# Characters that UTF-8 bytes become when wrongly decoded as Latin-1 / Windows-1252.
_MOJIBAKE_CHAR = ("[\u0080-\u00ff\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
                  "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]")
# Runs of two or more. (Spelled C C+ rather than C{2,}: a pattern that opens with a class lets
# the regex engine skip to candidates with a fast scan; the matches are the same.)
_MOJIBAKE_RUN = re.compile(f"{_MOJIBAKE_CHAR}{_MOJIBAKE_CHAR}+")
_HTML_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-]+)""", re.IGNORECASE)
_HTML_DROP = ("head", "script", "style", "noscript", "template", "nav", "header", "footer",
              "aside", "iframe", "svg", "button", "form")
_HTML_BLOCK = ("p", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
               "section", "article", "main", "blockquote", "pre", "dd", "dt", "dl", "figure",
               "figcaption", "caption", "address", "center", "hr")

_ASCII_SPACES = " \n\t\x0c\r"

log = logging.getLogger("pipeline.ingest")


@dataclass(frozen=True)
class LedgerEntry:
    path: str
    doc_id: str
    status: Status
    reason: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "doc_id": self.doc_id, "status": self.status,
                "reason": self.reason}


@dataclass(frozen=True)
class Source:
    """One planned input document: where it is and what the metadata says of it."""

    doc_id: str
    path: str  # relative to the corpus root, POSIX
    abspath: Path
    date: str
    year: int | None
    meta: Mapping[str, str] = field(default_factory=dict)
    root: Path | None = None  # the corpus folder; read_source refuses paths outside it


@dataclass(frozen=True)
class Document:
    doc_id: str
    path: str
    text: str  # normalised: one paragraph per line
    sha256: str  # of text, UTF-8
    date: str
    year: int | None
    meta: Mapping[str, str]
    encoding: str = "utf-8"
    reader: str = "txt"
    converted: bool = False  # traditional -> simplified applied
    note: str = ""  # for the ledger: conversion done, or traditional text left as it is

    @property
    def chars(self) -> int:
        return len(self.text)


@dataclass
class Scan:
    root: Path
    name: str
    sources: list[Source]
    ledger: list[LedgerEntry]  # skipped/failed at scan time


@dataclass
class Corpus:
    root: Path
    name: str
    documents: list[Document]  # sorted by doc_id
    ledger: list[LedgerEntry]  # every file and metadata row, sorted by path

    @property
    def failed(self) -> list[LedgerEntry]:
        return [e for e in self.ledger if e.status == "failed"]

    def counts(self) -> dict[str, int]:
        """Ledger entries per status: ``{"ingested": n, "skipped": n, "failed": n,
        "corpus_file": n}``."""
        out = dict.fromkeys(STATUSES, 0)
        for entry in self.ledger:
            out[entry.status] += 1
        return out


def parse_date(value: str) -> tuple[str, int] | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` -> (date, year); anything else -> None."""
    m = _DATE.match(value.strip())
    if not m:
        return None
    year, month, day = m.group(1), m.group(2), m.group(3)
    if month and not 1 <= int(month) <= 12:
        return None
    if day and not 1 <= int(day) <= calendar.monthrange(int(year), int(month))[1]:
        return None  # (2010-02-31, 2011-04-31, 2011-02-29: days the month does not have)
    return value.strip(), int(year)


def _date_problem(value: str) -> str:
    """Why ``value`` is not a date ``parse_date`` accepts (for the ledger)."""
    m = _DATE.match(value.strip())
    if m and m.group(3) and 1 <= int(m.group(2)) <= 12:
        days = calendar.monthrange(int(m.group(1)), int(m.group(2)))[1]
        return (f"impossible date {value!r}: {m.group(1)}-{m.group(2)} has {days} days; "
                "correct the date (YYYY-MM-DD), or give only YYYY-MM or YYYY")
    return f"invalid date {value!r}; use YYYY, YYYY-MM or YYYY-MM-DD"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find_duplicates(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The duplicate rule on ``(doc_id, sha256)`` pairs: ``{duplicate doc_id: kept doc_id}``.

    Among documents with the same hash of normalised text, the first by doc_id is kept.
    """
    kept: dict[str, str] = {}
    dups: dict[str, str] = {}
    for doc_id, digest in sorted(pairs):
        if digest in kept:
            dups[doc_id] = kept[digest]
        else:
            kept[digest] = doc_id
    return dups


# --------------------------------------------------------------------------- scanning


def _walk(root: Path) -> list[str]:
    """Every file (and symlink) under root as a POSIX path relative to root; links not followed.
    A hidden folder (``.git``, ``.ipynb_checkpoints``) is one entry, not entered."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for d in list(dirnames):
            if (base / d).is_symlink() or d.startswith("."):
                found.append((base / d).relative_to(root).as_posix())
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        found.extend((base / f).relative_to(root).as_posix() for f in filenames)
    return sorted(found)


def _not_a_document(root: Path, rel: str) -> str | None:
    """Why ``rel`` is skipped unread although no metadata row names it: a hidden file or
    folder, or a lock file that Word keeps beside an open document. Never opens it."""
    name = PurePosixPath(rel).name
    if name.startswith("~$"):
        return "a Word lock file (Word keeps it while the document is open); not a document"
    if name.startswith("."):
        if (root / rel).is_dir() and not (root / rel).is_symlink():
            n = sum(len(files) for _d, _s, files in os.walk(root / rel, followlinks=False))
            return f"a hidden folder ({n} file(s)), not read"
        return "a hidden file, not read"
    return None


def corpus_file(rel: str) -> bool:
    """Whether ``rel`` documents the corpus rather than belongs to it (a top-level README,
    NOTES, LICENSE or CHANGELOG file, any extension)."""
    return "/" not in rel and bool(_CORPUS_DOC.match(rel))


def require_documents(scan: Scan, shown: str | None = None) -> None:
    """Refuse a corpus without one document to read (exit 2): an empty folder, or one whose
    files are all skipped. ``shown``: the folder as the message names it."""
    if scan.sources:
        return
    where = shown or scan.name
    skipped = [e for e in scan.ledger if e.status == "skipped"]
    failed = [e for e in scan.ledger if e.status == "failed"]
    own = [e for e in scan.ledger if e.status == "corpus_file"]
    if not scan.ledger:
        detail = "the folder is empty"
    else:
        parts = []
        if skipped:
            parts.append(f"{len(skipped)} file(s) skipped: " + "; ".join(
                f"{e.path} ({e.reason})" for e in skipped[:3]) + ("; ..." if len(skipped) > 3
                                                                 else ""))
        if failed:
            parts.append(f"{len(failed)} failed: " + "; ".join(e.reason for e in failed[:3]))
        if own:
            parts.append(f"{len(own)} corpus file(s): " + ", ".join(e.path for e in own))
        detail = "; ".join(parts)
    raise IngestError(f"no documents found in {where} ({detail})",
                      fix=f"Put the documents ({', '.join(SUPPORTED)}) in the folder, or list "
                          "them in its metadata.csv.")


def _inside(root: Path, candidate: Path) -> bool:
    """Whether ``candidate`` resolves inside ``root`` (False for a symlink loop)."""
    try:
        return candidate.resolve().is_relative_to(root)
    except (RuntimeError, OSError):  # a symlink loop (RuntimeError up to Python 3.12)
        return False


def _is_loop(p: Path) -> bool:
    try:
        p.resolve(strict=True)
    except (RuntimeError, OSError) as exc:
        return isinstance(exc, RuntimeError) or getattr(exc, "errno", None) == errno.ELOOP
    return False


def _check_file(root: Path, rel: str) -> str | None:
    """Why ``root/rel`` must not be read (None when it may be). Never opens the file."""
    p = root / rel
    if p.is_symlink() and _is_loop(p):
        return (f"{rel} is a symbolic link in a loop (it leads back to itself); it was not "
                "read. Remove the link, or replace it with the document")
    if not _inside(root, p):
        return (f"{rel} points outside the corpus folder (a symlink to {p.resolve()}); "
                "it was not read. Copy the document into the corpus folder instead")
    if p.is_dir():
        return f"{rel} is a folder, not a document"
    if not p.is_file():
        return f"{rel} is not a regular file (broken link or device); it was not read"
    return None


def _read_inside(root: Path, path: Path) -> bytes:
    """The bytes of ``path``, opened so that it cannot be swapped for a link that leads out of
    ``root`` between the check and the read: the resolved path is checked, opened without
    following a link in its last component (``O_NOFOLLOW``), and after opening it must still
    resolve inside ``root`` to the very file opened (device and inode, ``fstat``).
    Raises IngestError (the file is then recorded as failed) when any of that fails."""
    refused = IngestError("was replaced by a link or moved while it was being read; it was not "
                          "read", path=path.name,
                          fix="Copy the document into the corpus folder and run again.")
    try:
        real = path.resolve(strict=True)
    except OSError:
        raise refused from None
    if not _inside(root, real):
        raise IngestError("points outside the corpus folder; it was not read", path=path.name,
                          fix="Copy the document into the corpus folder.")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_NONBLOCK", 0)  # (a FIFO swapped in must not block the run)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOENT):  # a link now, or gone
            raise refused from None
        raise
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        try:
            again = path.resolve(strict=True)
            same = _inside(root, again) and os.path.samestat(os.stat(again), st)
        except OSError:
            same = False
        if not same or not stat.S_ISREG(st.st_mode):
            raise refused
        return fh.read()


def _unsupported(rel: str) -> str:
    suffix = PurePosixPath(rel).suffix.lower() or "(no extension)"
    return (f"unsupported file type {suffix}; supported: {', '.join(SUPPORTED)} "
            "(convert .doc/.wps/.xls files to .docx or .txt)")


def _clean_rel(value: str) -> str | None:
    """A metadata ``path`` as a clean relative POSIX path, or None when it leaves the folder."""
    value = value.replace("\\", "/")
    pure = PurePosixPath(value)
    if pure.is_absolute() or re.match(r"^[A-Za-z]:", value) or ".." in pure.parts:
        return None
    return pure.as_posix()


def scan_corpus(root: Path, *, name: str | None = None, warn: bool = True) -> Scan:
    """Find the documents of a corpus folder without reading them.

    With a ``metadata.csv``, each row names one document (``path`` column, or
    ``<doc_id>.txt``); files it does not list are skipped. Without one, every
    supported file is a document: doc_id from the file name, year from a 4-digit
    year in the name (a warning lists files without one, unless ``warn`` is False: a
    second scan of a folder already scanned, as the report's keywords in context make).
    """
    root = Path(root)
    if not root.is_dir():
        raise IngestError("no such corpus folder", path=root,
                          fix="Give a folder of documents, or a name from `mobilize corpus list`.")
    given, root = root, root.resolve()
    files = _walk(root)
    # A name that is not valid UTF-8 (os.walk gives its bytes as surrogates) can be neither
    # shown nor written to the tables: it fails, shown with \x escapes, and is not read.
    bad_names = [rel for rel in files if not _is_utf8(rel)]
    files = [rel for rel in files if _is_utf8(rel)]
    meta_path = root / METADATA_FILE
    if METADATA_FILE in files and meta_path.is_file() and _inside(root, meta_path):
        sources, ledger = _scan_with_metadata(root, files)
    else:
        sources, ledger = _scan_without_metadata(root, files)
        no_year = [src.path for src in sources if src.year is None]
        if no_year and warn:
            log.warning("%s: no metadata.csv and no 4-digit year in the name of %d file(s) "
                        "(%s%s); their year is unknown. Add a metadata.csv with a date column.",
                        shown_path(given), len(no_year), ", ".join(no_year[:5]),
                        ", ..." if len(no_year) > 5 else "")
    for rel in bad_names:
        shown = printable_path(rel)
        ledger.append(LedgerEntry(shown, "", "failed", (
            f"{shown}: the file name is not valid UTF-8 (its bytes are shown as \\x escapes); "
            "it was not read. Rename the file with a UTF-8 name (for a GBK name: "
            "convmv -f gbk -t utf-8 --notest FILE)")))
    return Scan(root, name or root.name, sources, ledger)


def _is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_path(name: str) -> str:
    """A file name as text that can be shown and written anywhere: the bytes of a name that is
    not valid UTF-8 (surrogates from ``os.fsdecode``) as ``\\xNN`` escapes."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _read_metadata(root: Path) -> tuple[list[str], list[tuple[int, dict[Any, Any]]]]:
    path = root / METADATA_FILE
    try:
        raw = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"not UTF-8 (byte {exc.start})", path=path,
                          fix="Save metadata.csv as UTF-8 CSV.") from None
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    try:
        header = [h.strip() for h in (reader.fieldnames or [])]
    except csv.Error as exc:
        raise _csv_error(exc, path, 1) from None
    reader.fieldnames = header
    for required in ("doc_id", "date"):
        if required not in header:
            raise IngestError(f"no {required!r} column (header: {','.join(header) or 'empty'})",
                              path=path, line=1,
                              fix="The first row must name the columns, at least doc_id and date.")
    rows: list[tuple[int, dict[Any, Any]]] = []
    start = reader.line_num + 1
    try:
        for row in reader:
            # A line break inside a quoted field is kept as "\n" (CR and CRLF, as Excel on a
            # Mac may save them, would make a table written from it ambiguous).
            rows.append((reader.line_num, {k: normalize.newlines(v) if isinstance(v, str) else v
                                           for k, v in row.items()}))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _csv_error(exc, path, start) from None
    return header, rows


def _csv_error(exc: csv.Error, path: Path, line: int) -> IngestError:
    """A metadata.csv the csv module cannot read: the row where it stopped, and the fix."""
    if "field larger than field limit" in str(exc):
        return IngestError(
            f"a field of the row starting on this line is longer than {csv.field_size_limit():,} "
            "characters, the csv module's limit: usually a quote (\") that is never closed, "
            "which swallows the rows after it", path=path, line=line,
            fix="Close the quote (a quote inside a field is written twice: \"\"), or keep "
                "long text out of metadata.csv (put it in the document).")
    return IngestError(f"cannot be read as CSV ({exc})", path=path, line=line,
                       fix="Save metadata.csv as CSV (UTF-8) from a spreadsheet, or fix the "
                           "quoting of that row.")


def _scan_with_metadata(root: Path, files: list[str]) -> tuple[list[Source], list[LedgerEntry]]:
    header, rows = _read_metadata(root)
    sources: list[Source] = []
    ledger: list[LedgerEntry] = []
    claimed: dict[str, int] = {METADATA_FILE: 1}
    ids: dict[str, int] = {}
    found = set(files)
    for lineno, row in rows:
        where = f"{METADATA_FILE}:{lineno}"
        doc_id = (row.get("doc_id") or "").strip()
        given = (row.get("path") or "").strip() or f"{doc_id}.txt"
        rel = _clean_rel(given)
        # A failed row is recorded under its file (so the file appears once), or under
        # "metadata.csv:LINE" when there is no file of its own.
        owner = (rel if rel is not None else given) if doc_id else None
        if owner in claimed:
            owner = None
        reason = ""
        if None in row or any(v is None for v in row.values()):
            # DictReader pads a short row with None and puts a long row's extra fields under
            # the key None: count the fields the line really has, and fix what it lacks.
            fields = (sum(v is not None for k, v in row.items() if k is not None)
                      + len(row.get(None) or []))
            reason = (f"{fields} fields but the header has {len(header)}; " + (
                "quote fields that contain commas" if fields > len(header) else
                "add the missing fields (empty ones too: a comma each)"))
            owner = None
        elif not doc_id:
            reason = "empty doc_id; every row needs a unique doc_id"
        elif doc_id in ids:
            reason = (f"duplicate doc_id {doc_id!r} (first on line {ids[doc_id]}); doc_ids must "
                      "be unique")
        elif rel is None:
            reason = (f"path {given!r} leaves the corpus folder (absolute or '..'); it was not "
                      "read. Give a path relative to the corpus folder")
        elif rel in claimed:
            reason = f"{rel} is already listed on line {claimed[rel]}; each file is one document"
        elif rel not in found and not os.path.lexists(root / rel):
            reason = f"file not found: {rel}; add the file or remove the row"
        elif parse_date(row.get("date") or "") is None:
            reason = _date_problem(row.get("date") or "")
        else:
            reason = _check_file(root, rel) or ""
        if doc_id and doc_id not in ids:
            ids[doc_id] = lineno
        if reason:
            if owner is not None:
                claimed[owner] = lineno
            ledger.append(LedgerEntry(owner or where, doc_id, "failed", f"{where}: {reason}"))
            continue
        assert rel is not None
        claimed[rel] = lineno
        if PurePosixPath(rel).suffix.lower() not in SUPPORTED:
            ledger.append(LedgerEntry(rel, doc_id, "skipped", f"{where}: {_unsupported(rel)}"))
            continue
        date, year = parse_date(row.get("date") or "") or ("", None)
        meta = {k: (v or "").strip() for k, v in row.items()
                if k and k not in ("doc_id", "path", "date")}
        sources.append(Source(doc_id, rel, root / rel, date, year, meta, root))
    ledger.append(LedgerEntry(METADATA_FILE, "", "corpus_file",
                              f"the corpus metadata ({len(rows)} rows)"))
    for rel in files:
        if rel not in claimed:
            hidden = _not_a_document(root, rel)
            if hidden:
                ledger.append(LedgerEntry(rel, "", "skipped", hidden))
            elif corpus_file(rel):
                ledger.append(LedgerEntry(rel, "", "corpus_file",
                                          "documents the corpus; not listed in metadata.csv"))
            else:
                ledger.append(LedgerEntry(rel, "", "skipped", f"not listed in {METADATA_FILE}"))
    return sources, ledger


def _scan_without_metadata(root: Path, files: list[str]) -> tuple[list[Source], list[LedgerEntry]]:
    sources: list[Source] = []
    ledger: list[LedgerEntry] = []
    ids: dict[str, str] = {}
    for rel in files:
        pure = PurePosixPath(rel)
        hidden = _not_a_document(root, rel)
        if hidden:
            ledger.append(LedgerEntry(rel, "", "skipped", hidden))
            continue
        if corpus_file(rel):
            ledger.append(LedgerEntry(rel, "", "corpus_file", "documents the corpus; without a "
                                      "metadata.csv listing it, not read as a document"))
            continue
        if (root / rel).is_symlink() and (root / rel).is_dir():
            ledger.append(LedgerEntry(rel, "", "skipped",
                                      "a link to a folder; linked folders are not followed"))
            continue
        if pure.suffix.lower() not in SUPPORTED:
            ledger.append(LedgerEntry(rel, "", "skipped", _unsupported(rel)))
            continue
        doc_id = pure.stem
        refusal = _check_file(root, rel)
        if refusal:
            ledger.append(LedgerEntry(rel, doc_id, "failed", refusal))
            continue
        if doc_id in ids:
            ledger.append(LedgerEntry(rel, doc_id, "failed",
                                      f"doc_id {doc_id!r} is already taken by {ids[doc_id]}; rename "
                                      "one of the files or add a metadata.csv with a path column"))
            continue
        ids[doc_id] = rel
        m = _YEAR_IN_NAME.search(pure.stem)
        year = int(m.group(1)) if m else None
        sources.append(Source(doc_id, rel, root / rel, str(year) if year else "", year, {}, root))
    return sources, ledger


# --------------------------------------------------------------------------- reading


def read_source(src: Source, *, to_simplified: bool = False) -> Document:
    """Read, decode and normalise one source. Raises IngestError with a reason.

    Refuses (unread) a path that resolves outside ``src.root`` and files over the
    size limits. Traditional-character text is converted to simplified when
    ``to_simplified``; ``Document.note`` says what happened.
    """
    path = src.abspath
    if src.root is not None and not _inside(Path(src.root), path):
        raise IngestError("points outside the corpus folder; it was not read", path=src.path,
                          fix="Copy the document into the corpus folder.")
    suffix = path.suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise IngestError(_unsupported(src.path), path=src.path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise IngestError(f"cannot be read ({exc.strerror})", path=src.path) from None
    limit = MAX_TEXT_BYTES if reader in ("txt", "html") else MAX_BINARY_BYTES
    if size == 0:
        raise IngestError("empty file (0 bytes)", path=src.path,
                          fix="Add the document's text or remove the file.")
    if size > limit:
        raise IngestError(f"file is {size / 2**20:.1f} MB, over the {limit // 2**20} MB limit for "
                          f"one {suffix} document; it was not read", path=src.path,
                          fix="Check that it is one policy document; split it into documents.")
    try:
        raw = _read_inside(Path(src.root), path) if src.root is not None else path.read_bytes()
        decode_note = ""
        if reader == "txt":
            decoded, encoding, decode_note = _decode_text(raw)
        elif reader == "html":
            decoded, encoding, decode_note = _read_html(raw)
        elif reader == "docx":
            (decoded, docx_title), encoding = _read_docx(raw), "docx"
        else:
            decoded, encoding = _read_pdf(raw), "pdf"
    except IngestError as exc:
        raise IngestError(exc.problem, path=src.path, fix=exc.fix) from None
    except _TooMuchText as exc:
        error = _too_much_text(exc.chars)
        raise IngestError(error.problem, path=src.path, fix=error.fix) from None
    except OSError as exc:
        raise IngestError(f"cannot be read ({exc.strerror})", path=src.path) from None
    except Exception as exc:  # a reader library choked: one failed document, not a crash
        log.debug("reader error on %s", src.path, exc_info=True)
        raise IngestError(f"could not be read as {suffix} ({type(exc).__name__}: {exc})",
                          path=src.path, fix="Open and re-save the file, or convert it to .txt.")
    text = normalize.text(decoded)
    if not text:
        raise IngestError("no text (only whitespace or markup)", path=src.path,
                          fix="Add the document's text or remove the file.")
    meta = dict(src.meta)
    if not meta.get("title"):
        title = _title(reader, suffix, raw, decoded, encoding,
                       docx_title if reader == "docx" else "")
        if title:
            meta["title"] = title
    converted = False
    note = ""
    share = normalize.traditional_share(text)
    if share >= normalize.TRADITIONAL_THRESHOLD:
        if to_simplified:
            text = normalize.text(normalize.to_simplified(text))
            converted = True
            note = (f"converted from traditional to simplified characters (OpenCC t2s; "
                    f"{share:.0%} of Han characters were traditional)")
        else:
            note = (f"traditional characters ({share:.0%} of Han characters), not converted; "
                    "use --to-simplified to convert")
    note = "; ".join(n for n in (decode_note, note) if n)
    return Document(src.doc_id, src.path, text, text_hash(text), src.date, src.year,
                    meta, encoding=encoding, reader=reader, converted=converted,
                    note=note)


class _TooMuchText(Exception):
    """Raised inside a reader when the text extracted so far passes ``MAX_TEXT_CHARS``."""

    def __init__(self, chars: int) -> None:
        super().__init__(chars)
        self.chars = chars


def _too_much_text(chars: int) -> IngestError:
    return IngestError(f"its text passes the limit of {MAX_TEXT_CHARS:,} characters for one "
                       f"document (reading stopped at {chars:,})",
                       fix="Check that it is one policy document; split it into documents.")


#: Titles are one line of at most this many characters.
MAX_TITLE_CHARS = 200
#: An HTML title or first heading is looked for in this many characters of the page.
_TITLE_WINDOW = 65536
_MD_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(\S.*)$", re.MULTILINE)


def _title(reader: str, suffix: str, raw: bytes, decoded: str, encoding: str,
           docx_title: str = "") -> str:
    """A document's own title, for a corpus without a title in metadata.csv: an HTML page's
    ``<title>`` (else its first ``<h1>``, both within the first ``_TITLE_WINDOW`` characters),
    a .docx's first Title or Heading paragraph (found by ``_read_docx``), a Markdown file's
    first heading; "" when it has none (plain text, PDF). Linear in the document's size:
    each search is a single forward scan."""
    title = ""
    if reader == "html":
        try:
            markup = raw[:4 * _TITLE_WINDOW].decode(
                encoding if encoding not in ("", "html") else "utf-8",
                errors="replace").removeprefix("\ufeff")[:_TITLE_WINDOW]
        except LookupError:
            markup = raw[:4 * _TITLE_WINDOW].decode("utf-8", errors="replace")[:_TITLE_WINDOW]
        for tag in ("title", "h1"):
            inner = html.unescape(re.sub(r"<[^>]*>", "", _first_element(markup, tag)))
            if inner.strip():
                title = inner
                break
    elif reader == "docx":
        title = docx_title
    elif suffix == ".md":
        m = _MD_HEADING.search(decoded)
        title = m.group(1).rstrip(" \t#") if m else ""
    title = " ".join(normalize.text(title).split())
    return title[:MAX_TITLE_CHARS]


def _first_element(markup: str, tag: str) -> str:
    """The inner markup of the first ``<tag ...>...</tag>`` in ``markup`` ("" when none).
    (An opening tag is at most 1,000 characters long, so no start is scanned far.)"""
    m = re.compile(f"<{tag}\\b[^>]{{0,1000}}>", re.IGNORECASE).search(markup)
    if not m:
        return ""
    end = re.compile(f"</{tag}\\b", re.IGNORECASE).search(markup, m.end())
    return markup[m.end():end.start()] if end else ""


def _truncated(exc: UnicodeDecodeError) -> bool:
    return exc.end >= len(exc.object) and "incomplete" in exc.reason or (
        "unexpected end" in exc.reason)


def _decode_text(raw: bytes) -> tuple[str, str, str]:
    """Bytes of a text file -> (text, encoding, note). A strict cascade, then checks of the result.

    The note (for the ledger) is empty unless the text was UTF-8 but for a few stray bytes
    (``_mostly_utf8``): they are then replaced with U+FFFD and the note says how many, and on
    which lines. Such text is never decoded as GBK (which would turn it into mojibake).
    """
    if not raw:
        raise IngestError("empty file (0 bytes)")
    bom_codecs = ((b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                  (b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
    for bom, codec in bom_codecs:
        if raw.startswith(bom):
            try:
                text = raw.decode(codec)
            except UnicodeDecodeError as exc:
                what = "ends in the middle of a character: it looks truncated" if _truncated(exc) \
                    else f"has a byte that is not valid {codec} at offset {exc.start}"
                raise IngestError(f"starts with a {codec} byte-order mark but {what}",
                                  fix="Re-export the document as UTF-8.") from None
            _verify(text, raw[len(bom):] if codec == "utf-8-sig" else None)
            return text, codec.removesuffix("-sig"), ""
    if b"\x00" in raw[:65536]:
        raise IngestError("binary data (NUL bytes), not text: a binary file named like a text "
                          "file, or UTF-16 without a byte-order mark",
                          fix="Give the document in a supported format, saved as UTF-8.")
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as utf8_err:
        if _truncated(utf8_err) and utf8_err.start >= len(raw) - 3:
            raise IngestError("UTF-8 text that ends in the middle of a character: the file looks "
                              "truncated", fix="Copy the complete file again.") from None
        mostly = _mostly_utf8(raw)
        if mostly is not None:
            text, where = mostly
            _verify(text, replaced=len(where))
            return text, "utf-8", _stray_note(text, where)
        try:
            text = raw.decode("gb18030")
        except UnicodeDecodeError as exc:
            if _truncated(exc):
                raise IngestError("GBK/GB18030 text that ends in the middle of a character: the "
                                  "file looks truncated", fix="Copy the complete file again.") from None
            raise IngestError(
                f"neither UTF-8 nor GBK/GB18030 text (byte 0x{raw[exc.start]:02x} at offset "
                f"{exc.start} cannot be decoded): a binary file or an unsupported encoding",
                fix="Save the document as UTF-8 text.") from None
        encoding = _gb_label(text)
        _verify_gb(text)
    _verify(text, raw if encoding == "utf-8" else None)
    return text, encoding, ""


#: Text that is UTF-8 but for at most this many invalid bytes, and at most one per
#: ``_STRAY_SPACING`` bytes, is decoded as UTF-8 with replacements (``_mostly_utf8``). GBK
#: text is never that close to UTF-8: each of its Chinese characters is an invalid sequence.
MAX_STRAY_BYTES = 8
_STRAY_SPACING = 100


def _mostly_utf8(raw: bytes) -> tuple[str, list[int]] | None:
    """UTF-8 bytes with a few stray invalid bytes (a Latin-1 é pasted into UTF-8 text) ->
    (the text with each invalid sequence replaced by U+FFFD, the text offsets of the
    replacements); None when the bytes are not overwhelmingly UTF-8."""
    parts: list[str] = []
    where: list[int] = []
    pos = length = 0
    while True:  # (at most MAX_STRAY_BYTES + 1 decodes)
        try:
            parts.append(raw[pos:].decode("utf-8"))
            break
        except UnicodeDecodeError as exc:
            if len(where) >= MAX_STRAY_BYTES:
                return None
            good = raw[pos:pos + exc.start].decode("utf-8")
            parts += [good, "\ufffd"]
            length += len(good)
            where.append(length)
            length += 1
            pos += exc.end
    if len(raw) < _STRAY_SPACING * len(where):
        return None
    return "".join(parts), where


def _stray_note(text: str, where: Sequence[int]) -> str:
    lines = sorted({text.count("\n", 0, i) + 1 for i in where})
    shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
    return (f"UTF-8 text with {len(where)} invalid byte(s) (e.g. a Latin-1 character pasted in), "
            f"each replaced with U+FFFD; line(s) {shown} of the file. Check them in the original")


def _gb_label(text: str) -> str:
    for codec in ("gb2312", "gbk"):
        try:
            text.encode(codec)
        except UnicodeEncodeError:
            continue
        return codec
    return "gb18030"


def _verify_gb(text: str) -> None:
    """Text decoded as GB18030 must read as Chinese, not as mojibake of another encoding."""
    han = [ch for ch in text if "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"]
    if len(han) < 20:
        return
    common = 0
    for ch in han:
        try:
            ch.encode("gb2312")
            common += 1
        except UnicodeEncodeError:
            pass
    if common / len(han) < 0.8:
        raise IngestError(f"decodes as GBK/GB18030 but reads as mojibake (only {common / len(han):.0%} "
                          "of its Chinese characters are common ones): probably another encoding "
                          "such as Big5", fix="Save the document as UTF-8 text.")


def _verify(text: str, utf8: bytes | None = None, *, replaced: int = 0) -> None:
    """Refuse decoded text with replacement characters, control bytes or mojibake.

    ``utf8`` is the text's UTF-8 encoding when the caller holds it (the bytes of a UTF-8 file):
    two of the checks are cheaper on bytes than on characters (see below), and the text is
    encoded only when it came from another encoding. ``replaced``: how many U+FFFD the decoder
    put in itself (``_mostly_utf8``); only the others count as damage.
    """
    bad = text.count("\ufffd") - replaced
    if bad:
        line = text[: text.index("\ufffd")].count("\n") + 1
        raise IngestError(f"contains {bad} replacement character(s) U+FFFD (first on line {line}): "
                          "text damaged by an earlier wrong conversion",
                          fix="Get a clean copy of the document, saved as UTF-8.")
    if "锟斤拷" in text:
        raise IngestError("contains the mojibake '锟斤拷' (damaged GBK/UTF-8 conversion)",
                          fix="Get a clean copy of the document, saved as UTF-8.")
    data = utf8 if utf8 is not None else text.encode("utf-8", "surrogatepass")
    # The control characters are ASCII, so in UTF-8 each is one byte that no other character's
    # encoding contains: deleting those bytes counts them exactly, about 3x faster than a regex.
    controls = len(data) - len(data.translate(None, _CONTROL_BYTES))
    if controls > max(8, len(text) // 1000):
        raise IngestError(f"binary data ({controls} control characters), not text",
                          fix="Give the document in a supported format, saved as UTF-8.")
    # A run counts as mojibake only when it decodes to characters above U+07FF, whose UTF-8 lead
    # bytes (0xE0-0xF4) a run can only hold as the characters U+00E0-U+00F4 (bytes C3 A0-C3 B4 in
    # UTF-8). Without a byte 0xC3 there is none, so the scan below (about 8 ms per MB: Chinese
    # text is full of runs like “” and ——) is skipped; the count is the same.
    if b"\xc3" not in data:
        return
    mojibake = sum(1 for run in _MOJIBAKE_RUN.findall(text) if _is_mojibake(run))
    if mojibake >= 2:
        raise IngestError(f"reads as mojibake ({mojibake} runs like 'ä¸\u00adå›½' for '中国'): UTF-8 "
                          "text that was once decoded as Latin-1/Windows-1252 and saved again",
                          fix="Get a clean copy of the document, saved as UTF-8.")


@lru_cache(maxsize=4096)
def _is_mojibake(run: str) -> bool:
    """Whether a run of ``_MOJIBAKE_RUN`` is UTF-8 wrongly decoded (runs like “— repeat: memo)."""
    # Re-encode as the wrong codec and decode as UTF-8: real mojibake gives CJK back.
    # (Undecodable bytes are ignored: tools drop the bytes cp1252 does not define.)
    raw = run.encode("cp1252", errors="ignore") if any(
        ord(ch) > 0xFF for ch in run) else run.encode("latin-1")
    fixed = raw.decode("utf-8", errors="ignore")
    return sum(1 for ch in fixed if ord(ch) > 0x7FF) >= 2


def _read_html(raw: bytes) -> tuple[str, str, str]:
    """HTML bytes -> (body text with one block per line, encoding, note as ``_decode_text``).

    One pass of lxml's HTML parser (libxml2) with a parser target (``_HtmlText``): no tree is
    built, so the time and memory grow linearly with the page, however many sibling or nested
    elements it has. (BeautifulSoup's ``insert_before``/``insert_after`` looked up each element's
    position among its siblings and walked nested elements to their last descendant: a page of
    tens of thousands of ``<p>`` took minutes. The text is the same as that tree walk gave.)
    """
    from lxml import etree

    declared = _HTML_CHARSET.search(raw[:4096])
    note = ""
    if declared:
        codec = declared.group(1).decode("ascii").lower()
        codec = "gb18030" if codec in ("gb2312", "gbk", "gb18030", "x-gbk") else codec
        try:
            markup = raw.decode(codec)
            encoding = codec
        except LookupError:
            raise IngestError(f"declares an unknown charset {codec!r}",
                              fix="Fix the <meta charset> or save the page as UTF-8.") from None
        except UnicodeDecodeError as exc:
            raise IngestError(f"declares charset {codec!r} but byte {exc.start} is not valid "
                              f"{codec}", fix="Fix the <meta charset> or save the page as UTF-8.") from None
        markup = markup.removeprefix("\ufeff")
        _verify(markup)
    else:
        markup, encoding, note = _decode_text(raw)
        markup = markup.removeprefix("\ufeff")
    if not markup:
        return "", encoding, note
    target = _HtmlText(MAX_TEXT_CHARS)
    parser = etree.HTMLParser(target=target, recover=True)
    try:
        parser.feed(markup)
        text: str = parser.close()
    except _TooMuchText:
        raise _too_much_text(target.chars) from None
    return text, encoding, note


class _HtmlText:
    """An lxml parser target that collects a page's text in one pass (for ``_read_html``).

    It gives the text BeautifulSoup gave for the same parse (the same libxml2 events), with
    the elements of ``_HTML_DROP`` removed, a line break for each ``<br>``, a tab after each
    table cell, a line break before and after each block of ``_HTML_BLOCK``, and only the
    ``<body>`` when there is one. As in BeautifulSoup, a run of text that is only ASCII
    whitespace becomes one line break (if it holds one) or one space, except inside
    ``<pre>``/``<textarea>``; comments, processing instructions and the text of ruby
    annotations (``<rt>``, ``<rp>``) are left out. Past ``limit`` characters it raises
    ``_TooMuchText``, which stops the parser.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.chars = 0
        self._pending: list[str] = []
        self._depth = 0  # open elements
        self._skip_at = 0  # depth of the outermost open dropped element or <br> (0: none)
        self._ruby = 0  # open <rt>/<rp> (their own text is left out, inserted breaks are not)
        self._pre = 0  # open <pre>/<textarea> (whitespace kept as it is)
        self._body: list[int] = []  # index in parts where the first <body> starts [, ends]
        self._body_depth = 0

    def _add(self, piece: str) -> None:
        self.parts.append(piece)
        self.chars += len(piece)
        if self.chars > self.limit:
            raise _TooMuchText(self.chars)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending)
        self._pending = []
        if self._skip_at or self._ruby:
            return
        if not self._pre and not data.strip(_ASCII_SPACES):
            data = "\n" if "\n" in data else " "
        self._add(data)

    def start(self, tag: str, *_attrs: Any) -> None:
        self._flush()
        self._depth += 1
        if self._skip_at:
            return
        if tag in _HTML_DROP:
            self._skip_at = self._depth
            return
        if tag == "br":
            self._add("\n")
            self._skip_at = self._depth
            return
        if tag in _HTML_BLOCK:
            self._add("\n")
        if tag in ("rt", "rp"):
            self._ruby += 1
        elif tag in ("pre", "textarea"):
            self._pre += 1
        elif tag == "body" and not self._body:
            self._body.append(len(self.parts))
            self._body_depth = self._depth

    def end(self, tag: str) -> None:
        self._flush()
        depth = self._depth
        self._depth -= 1
        if self._skip_at:
            if depth == self._skip_at:
                self._skip_at = 0
            return
        if tag in _HTML_BLOCK:
            self._add("\n")
        elif tag in ("td", "th"):
            self._add("\t")
        if tag in ("rt", "rp"):
            self._ruby -= 1
        elif tag in ("pre", "textarea"):
            self._pre -= 1
        elif depth == self._body_depth and len(self._body) == 1:
            self._body.append(len(self.parts))

    def data(self, text: str) -> None:
        self._pending.append(text)

    def comment(self, _text: str) -> None:
        self._flush()
        self._pending = []

    def pi(self, *_args: Any) -> None:
        self._flush()

    def doctype(self, *_args: Any) -> None:
        self._flush()

    def close(self) -> str:
        self._flush()
        if self._body:
            start, end = self._body[0], self._body[1] if len(self._body) > 1 else len(self.parts)
            return "".join(self.parts[start:end])
        return "".join(self.parts)


def _read_docx(raw: bytes) -> tuple[str, str]:
    """A .docx -> (paragraphs and table rows (cells tab-separated), in document order; its
    first paragraph styled Title or Heading N, "" when none).

    The zip's parts are inflated once first, in chunks, counting their bytes (``_check_docx``),
    so that a zip bomb fails before python-docx inflates and parses them all; extraction stops
    past ``MAX_TEXT_CHARS``.
    """
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    _check_docx(raw)
    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise IngestError(f"not a valid .docx (Word 2007+) file ({type(exc).__name__})",
                          fix="If it is an old .doc file, save it as .docx in Word or LibreOffice.") from None
    except Exception as exc:
        if type(exc).__name__ in ("BadZipFile", "XMLSyntaxError"):
            raise IngestError(f"not a valid .docx (Word 2007+) file ({type(exc).__name__})",
                              fix="If it is an old .doc file, save it as .docx.") from None
        raise
    lines: list[str] = []
    _docx_blocks(document.element.body, document, lines, [0])
    title = ""
    for paragraph in document.paragraphs:
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        if (style == "Title" or style.startswith("Heading")) and paragraph.text.strip():
            title = str(paragraph.text)
            break
    return "\n".join(lines), title


#: Bytes inflated at a time when a .docx's parts are measured.
_ZIP_CHUNK = 1 << 20


def _check_docx(raw: bytes) -> None:
    """Refuse a .docx whose parts inflate past ``MAX_INFLATED_BYTES`` (all parts) or
    ``MAX_XML_BYTES`` (the XML parts, which python-docx parses into trees).

    The sizes the zip declares are checked first, without inflating anything. ``zipfile``
    never returns more than a part's declared size (and fails its CRC check when the data
    holds more), so the parts cannot inflate past that sum. Then each XML part (one whose
    first bytes are ``<``, whatever its name) is inflated in chunks of ``_ZIP_CHUNK`` bytes,
    counting them and stopping at the XML limit: nothing is parsed before all have passed.
    """
    import zipfile

    invalid = IngestError("not a valid .docx (Word 2007+) file (BadZipFile)",
                          fix="If it is an old .doc file, save it as .docx in Word or LibreOffice.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError):
        raise invalid from None
    with archive:
        infos = archive.infolist()
        declared = sum(info.file_size for info in infos)
        if declared > MAX_INFLATED_BYTES:
            raise _inflates(f"its parts would inflate to {declared / 2**20:.1f} MB (as its zip "
                            f"declares), over the {MAX_INFLATED_BYTES // 2**20} MB limit")
        xml = 0
        try:
            for info in infos:
                with archive.open(info) as part:
                    chunk = part.read(_ZIP_CHUNK)
                    if not chunk.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
                        continue  # not XML: python-docx keeps it as bytes, unparsed
                    while chunk:
                        xml += len(chunk)
                        if xml > MAX_XML_BYTES:
                            raise _inflates("its XML parts inflate to more than the "
                                            f"{MAX_XML_BYTES // 2**20} MB limit")
                        chunk = part.read(_ZIP_CHUNK)
        except zipfile.BadZipFile:  # a part's data does not match what the zip declares
            raise invalid from None


def _inflates(what: str) -> IngestError:
    return IngestError(f"{what} for one .docx (a zip bomb, or many documents in one); it was not "
                       "parsed",
                       fix="Check that it is one policy document; save it again from Word, or "
                           "convert it to .txt.")


def _docx_blocks(container: Any, parent: Any, lines: list[str], chars: list[int]) -> None:
    """Append the lines of ``container``'s paragraphs and tables; ``chars[0]`` counts the
    characters so far (``_TooMuchText`` past ``MAX_TEXT_CHARS``)."""
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    for child in container.iterchildren():
        if chars[0] > MAX_TEXT_CHARS:
            raise _TooMuchText(chars[0])
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(child, parent).text)
            chars[0] += len(lines[-1]) + 1
        elif tag == "tbl":
            for row in Table(child, parent).rows:
                cells: list[str] = []
                seen: set[int] = set()
                for cell in row.cells:  # merged cells repeat: keep each once
                    if id(cell._tc) in seen:
                        continue
                    seen.add(id(cell._tc))
                    cells.append(" ".join(cell.text.split("\n")))
                lines.append("\t".join(cells))
                chars[0] += len(lines[-1]) + 1
        elif tag in ("sdt", "sdtContent", "customXml", "ins"):
            _docx_blocks(child, parent, lines, chars)


def _read_pdf(raw: bytes) -> str:
    """A PDF's text layer, page by page. No text layer -> IngestError saying it needs OCR."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise IngestError("encrypted PDF (needs a password)",
                              fix="Save an unencrypted copy of the PDF.")
        pages: list[str] = []
        chars = 0
        for page in reader.pages:
            pages.append(page.extract_text() or "")
            chars += len(pages[-1]) + 1
            if chars > MAX_TEXT_CHARS:
                raise _TooMuchText(chars)
    except PdfReadError as exc:
        raise IngestError(f"not a readable PDF ({exc})",
                          fix="Open and re-save the PDF, or convert it to .txt.") from None
    text = "\n".join(pages)
    if not any(ch.isalnum() for ch in text):
        raise IngestError(f"PDF with no text layer ({len(pages)} page(s) of images, e.g. a scan): "
                          "it needs OCR", fix="Run OCR (for example ocrmypdf -l chi_sim) and add the "
                          "resulting PDF or .txt instead.")
    return text


# --------------------------------------------------------------------------- the corpus


def load_corpus(root: Path, *, name: str | None = None, to_simplified: bool = False,
                on_source: Callable[[Source], None] | None = None, warn: bool = True) -> Corpus:
    """Scan and read a whole corpus; the ledger accounts for every file and metadata row.

    Documents whose normalised text equals an earlier one (by doc_id) are skipped as
    duplicates. ``on_source`` is called after each source is read (for progress bars);
    ``warn`` as for ``scan_corpus``.
    """
    scan = scan_corpus(root, name=name, warn=warn)
    docs: list[Document] = []
    ledger = list(scan.ledger)
    for src in scan.sources:
        try:
            docs.append(read_source(src, to_simplified=to_simplified))
        except IngestError as exc:
            ledger.append(LedgerEntry(src.path, src.doc_id, "failed", exc.message))
        finally:
            if on_source is not None:
                on_source(src)
    dups = find_duplicates((d.doc_id, d.sha256) for d in docs)
    kept: list[Document] = []
    for doc in docs:
        if doc.doc_id in dups:
            ledger.append(LedgerEntry(doc.path, doc.doc_id, "skipped",
                                      f"duplicate of {dups[doc.doc_id]} (same normalised text)"))
        else:
            kept.append(doc)
            ledger.append(LedgerEntry(doc.path, doc.doc_id, "ingested", doc.note))
    kept.sort(key=lambda d: d.doc_id)
    ledger.sort(key=lambda e: (e.path, e.doc_id))
    return Corpus(scan.root, scan.name, kept, ledger)
