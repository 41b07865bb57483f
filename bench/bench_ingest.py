"""Ingestion speed on the shared corpora, and the 50 MB single-line guard.

Run: ``python bench/bench_ingest.py`` (reads ../shared/corpora, or $MOBILIZE_SHARED/corpora).
Prints, per corpus and in total, documents per second, MB/s (bytes of the files read)
and seconds; then the time to refuse a 50 MB single-line .txt (size guard), and the time
to read it with the guard lifted, which shows the readers do not hang on such input.
Target: all shared corpora in under 5 s.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

from pipeline import ingest
from pipeline.errors import IngestError

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOBILIZE_SHARED", REPO.parent / "shared")).resolve() / "corpora"
CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "social-security-policy-zh",
           "npc-resolutions-gwr-zh", "gwr-national-en")


def _bench_corpora() -> None:
    print(f"{'corpus':28} {'docs':>5} {'MB':>6} {'s':>6} {'docs/s':>8} {'MB/s':>6}")
    total_docs, total_bytes, total_s = 0, 0, 0.0
    for name in CORPORA:
        root = SHARED / name
        if not root.is_dir():
            print(f"{name:28} missing ({root})")
            continue
        t0 = time.perf_counter()
        corpus = ingest.load_corpus(root)
        secs = time.perf_counter() - t0
        size = sum((root / d.path).stat().st_size for d in corpus.documents)
        total_docs, total_bytes, total_s = total_docs + len(corpus.documents), total_bytes + size, \
            total_s + secs
        print(f"{name:28} {len(corpus.documents):5d} {size / 1e6:6.2f} {secs:6.2f} "
              f"{len(corpus.documents) / secs:8.1f} {size / 1e6 / secs:6.2f}"
              + (f"  FAILED: {len(corpus.failed)}" if corpus.failed else ""))
    if total_s:
        print(f"{'all':28} {total_docs:5d} {total_bytes / 1e6:6.2f} {total_s:6.2f} "
              f"{total_docs / total_s:8.1f} {total_bytes / 1e6 / total_s:6.2f}")


def _bench_huge_line() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "huge.txt"
        with path.open("wb") as fh:
            chunk = "社会保障体系建设。".encode() * 38837  # ~1 MiB, no newline
            for _ in range(50):
                fh.write(chunk)
        src = ingest.Source("huge", "huge.txt", path, "2020", 2020, {}, Path(tmp))
        t0 = time.perf_counter()
        try:
            ingest.read_source(src)
            outcome = "ingested"
        except IngestError as exc:
            outcome = f"failed: {exc.message}"
        print(f"50 MB single-line .txt, size guard on:  {time.perf_counter() - t0:6.3f} s  {outcome}")
        limit = ingest.MAX_TEXT_BYTES
        ingest.MAX_TEXT_BYTES = 10**9
        try:
            t0 = time.perf_counter()
            doc = ingest.read_source(src)
            print(f"50 MB single-line .txt, guard lifted:   {time.perf_counter() - t0:6.3f} s  "
                  f"ingested, {doc.chars:,} characters in {doc.text.count(chr(10)) + 1} line(s)")
        finally:
            ingest.MAX_TEXT_BYTES = limit


if __name__ == "__main__":
    if not SHARED.is_dir():
        sys.exit(f"shared corpora not found at {SHARED} (set MOBILIZE_SHARED)")
    _bench_corpora()
    _bench_huge_line()
