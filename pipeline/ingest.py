"""Ingest: a researcher's folder of policy documents becomes normalised documents and a ledger.

I/O happens here and only here: files are found, checked against the corpus
folder, decoded and normalised; everything after works on ``Document.text``.

Every file under the corpus folder, and every metadata row, ends in exactly one
``LedgerEntry``: ``ingested``, ``skipped`` (with the reason) or ``failed``
(with the reason, naming the file, the line and the fix).

Public API: ``scan_corpus`` (find sources, no reading), ``read_source`` (read and
normalise one), ``load_corpus`` (both, plus duplicate detection).
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pipeline import normalize
from pipeline.errors import IngestError

Status = Literal["ingested", "skipped", "failed"]
SUPPORTED = (".txt", ".md", ".html", ".htm", ".docx", ".pdf")
CORE_COLUMNS = ("doc_id", "title", "date", "issuer", "level", "region", "doc_type", "language")
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_YEAR_IN_NAME = re.compile(r"(?<!\d)(1[89]\d{2}|20\d{2})(?!\d)")


@dataclass(frozen=True)
class LedgerEntry:
    path: str
    doc_id: str
    status: Status
    reason: str = ""


@dataclass(frozen=True)
class Source:
    """One planned input document: where it is and what the metadata says of it."""

    doc_id: str
    path: str  # relative to the corpus root, POSIX
    abspath: Path
    date: str
    year: int | None
    meta: Mapping[str, str] = field(default_factory=dict)


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


def parse_date(value: str) -> tuple[str, int] | None:
    """``YYYY``, ``YYYY-MM`` or ``YYYY-MM-DD`` -> (date, year); anything else -> None."""
    m = _DATE.match(value.strip())
    if not m:
        return None
    year, month, day = m.group(1), m.group(2), m.group(3)
    if month and not 1 <= int(month) <= 12:
        return None
    if day and not 1 <= int(day) <= 31:
        return None
    return value.strip(), int(year)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def scan_corpus(root: Path, *, name: str | None = None) -> Scan:
    """Find the documents of a corpus folder without reading them."""
    root = Path(root)
    if not root.is_dir():
        raise IngestError("no such corpus folder", path=root,
                          fix="Give a folder of documents, or a name from `mobilize corpus list`.")
    root = root.resolve()
    sources: list[Source] = []
    ledger: list[LedgerEntry] = []
    meta_path = root / "metadata.csv"
    if meta_path.is_file():
        with meta_path.open(encoding="utf-8-sig", newline="") as fh:
            for lineno, row in enumerate(csv.DictReader(fh), start=2):
                doc_id = (row.get("doc_id") or "").strip()
                rel = (row.get("path") or "").strip() or f"{doc_id}.txt"
                parsed = parse_date(row.get("date") or "")
                if parsed is None:
                    ledger.append(LedgerEntry(rel, doc_id, "failed",
                                              f"metadata.csv:{lineno}: invalid date {row.get('date')!r}; "
                                              "use YYYY, YYYY-MM or YYYY-MM-DD"))
                    continue
                meta = {k: (v or "") for k, v in row.items() if k not in ("doc_id", "path", "date") and k}
                sources.append(Source(doc_id, rel, root / rel, parsed[0], parsed[1], meta))
    else:
        for p in sorted(root.rglob("*")):
            if p.is_file() and p.suffix.lower() in SUPPORTED:
                rel = p.relative_to(root).as_posix()
                m = _YEAR_IN_NAME.search(p.stem)
                year = int(m.group(1)) if m else None
                sources.append(Source(p.stem, rel, p, str(year) if year else "", year, {}))
    return Scan(root, name or root.name, sources, ledger)


def read_source(src: Source, *, to_simplified: bool = False) -> Document:
    """Read, decode and normalise one source. Raises IngestError with a reason."""
    raw = src.abspath.read_bytes()
    try:
        decoded = raw.decode("utf-8-sig")
        encoding = "utf-8"
    except UnicodeDecodeError:
        decoded = raw.decode("gb18030")
        encoding = "gb18030"
    text = normalize.text(decoded)
    return Document(src.doc_id, src.path, text, text_hash(text), src.date, src.year,
                    dict(src.meta), encoding=encoding, reader="txt")


def load_corpus(root: Path, *, name: str | None = None, to_simplified: bool = False) -> Corpus:
    """Scan and read a whole corpus; the ledger accounts for every file and metadata row."""
    scan = scan_corpus(root, name=name)
    docs: list[Document] = []
    ledger = list(scan.ledger)
    for src in scan.sources:
        try:
            doc = read_source(src, to_simplified=to_simplified)
        except IngestError as exc:
            ledger.append(LedgerEntry(src.path, src.doc_id, "failed", exc.message))
            continue
        docs.append(doc)
        ledger.append(LedgerEntry(src.path, src.doc_id, "ingested"))
    docs.sort(key=lambda d: d.doc_id)
    ledger.sort(key=lambda e: (e.path, e.doc_id))
    return Corpus(scan.root, scan.name, docs, ledger)
