"""Hostile documents: time and peak memory per size, to show they grow linearly (prints figures;
asserts nothing).

    python bench/bench_hostile.py [--sizes 0.25 0.5 1] [--only KIND ...]
    python bench/bench_hostile.py --write /tmp/hostile    # the 1 MB inputs, as a corpus folder

Each hostile input is generated at each size (MB of input), written to a temporary corpus
folder and read with ``pipeline.ingest.read_source``; the text is then matched with the
shipped lexicon (``Matcher.count``). Each case runs in a fresh process, which reports its
seconds and its peak resident memory above what the process held before reading. The kinds:

- ``siblings``: an HTML page of sibling ``<p>社会保障</p>`` (quadratic in BeautifulSoup's tree
  edits: 1 MB took 232 s);
- ``nested``: an HTML page of nested ``<div>`` (quadratic too: each inserted line break walked
  the nested elements);
- ``digits``: a text of one run of digits between 参保 and 人参保, which the coverage-figure
  pattern of F1 (``…|\\d+(?:\\.\\d+)?亿多?人参保``) re-read from every digit (40 KB took 49 s);
- ``docx-bomb``: a .docx whose word/document.xml inflates to 300 times the size given (1 MB
  took 217 s and 3.4 GB); it must fail, fast and in little memory, before it is parsed;
- ``docx``: a .docx of ordinary paragraphs of that size (the reader's normal cost).

The ratio column is each size's seconds (and memory) over the previous size's: about 2 for
doubled sizes is linear, about 4 quadratic.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KINDS = ("siblings", "nested", "digits", "docx-bomb", "docx")
_SUFFIX = {"siblings": ".html", "nested": ".html", "digits": ".txt", "docx-bomb": ".docx",
           "docx": ".docx"}
_BOMB_FACTOR = 300

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/></Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/></Relationships>')
_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def docx_bytes(paragraphs: int, text: str = "社会保障体系建设") -> bytes:
    """A minimal valid .docx of ``paragraphs`` paragraphs of ``text`` (python-docx reads it)."""
    para = f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>".encode()
    head = f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{_W}"><w:body>'
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", _CONTENT_TYPES)
        z.writestr("_rels/.rels", _RELS)
        with z.open("word/document.xml", "w", force_zip64=True) as part:
            part.write(head.encode())
            block = para * 1024
            for _ in range(paragraphs // 1024):
                part.write(block)
            part.write(para * (paragraphs % 1024))
            part.write(b"</w:body></w:document>")
    return buf.getvalue()


def hostile(kind: str, size: int) -> bytes:
    """The hostile input ``kind`` of about ``size`` bytes (the docx bomb: of that many bytes
    times ``_BOMB_FACTOR`` once inflated)."""
    if kind == "siblings":
        unit = "<p>社会保障</p>".encode()
        return b"<html><body>" + unit * (size // len(unit)) + b"</body></html>"
    if kind == "nested":
        n = size // len("<div>社</div>".encode())
        return b"<html><body>" + "<div>社".encode() * n + b"</div>" * n + b"</body></html>"
    if kind == "digits":
        return "参保".encode() + b"7" * size + "人参保\n".encode()
    unit = len("<w:p><w:r><w:t>社会保障体系建设</w:t></w:r></w:p>".encode())
    if kind == "docx-bomb":
        return docx_bytes(size * _BOMB_FACTOR // unit)
    if kind == "docx":
        return docx_bytes(size // unit)
    raise ValueError(kind)


def _one(kind: str, size: int) -> dict[str, float | str]:
    """Run one case in this process: seconds, peak RSS above the start, and the outcome."""
    from pipeline.config import DEFAULT_LEXICON
    from pipeline.errors import IngestError
    from pipeline.ingest import read_source, scan_corpus
    from pipeline.lexicon import load_lexicon
    from pipeline.match import Matcher

    matcher = Matcher(load_lexicon(DEFAULT_LEXICON))
    import bs4  # noqa: F401 - imported by the old reader: loaded before the baseline
    import docx  # noqa: F401
    import lxml.html  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"2020-{kind}{_SUFFIX[kind]}"
        path.write_bytes(hostile(kind, 4096))  # a warm-up: lazy tables and imports load here
        (src,) = scan_corpus(Path(tmp)).sources
        try:
            matcher.count(read_source(src).text)
        except IngestError:
            pass
        path.write_bytes(hostile(kind, size))
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        try:
            doc = read_source(src)
            hits = sum(matcher.count(doc.text).values())
            outcome = f"ingested, {doc.chars:,} characters, {hits} hits"
        except IngestError as exc:
            outcome = f"failed: {exc.problem}"
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "mb": max(0, peak - base) / 1024, "outcome": outcome}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.25, 0.5, 1.0],
                        help="input sizes in MB")
    parser.add_argument("--only", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument("--write", type=Path, help="write the 1 MB inputs to this folder")
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(_one(args.one[0], int(args.one[1]))))
        return
    if args.write:
        args.write.mkdir(parents=True, exist_ok=True)
        for kind in args.only:
            (args.write / f"2020-{kind}{_SUFFIX[kind]}").write_bytes(hostile(kind, 2**20))
        print(f"wrote {len(args.only)} hostile documents to {args.write}")
        return
    print(f"{'input':10} {'MB':>6} {'seconds':>8} {'ratio':>6} {'peak MB':>8} {'ratio':>6}  outcome")
    for kind in args.only:
        prev: dict[str, float | str] | None = None
        for mb in args.sizes:
            out = subprocess.run([sys.executable, __file__, "--one", kind, str(int(mb * 2**20))],
                                 capture_output=True, text=True, cwd=ROOT, check=True)
            row = json.loads(out.stdout.strip().splitlines()[-1])
            ratio_s = f"{row['seconds'] / prev['seconds']:.1f}" if prev else ""
            ratio_m = f"{row['mb'] / prev['mb']:.1f}" if prev and prev["mb"] else ""
            label = f"{mb:g}" + (f" (x{_BOMB_FACTOR})" if kind == "docx-bomb" else "")
            print(f"{kind:10} {label:>6} {row['seconds']:8.3f} {ratio_s:>6} {row['mb']:8.1f} "
                  f"{ratio_m:>6}  {row['outcome']}")
            prev = row


if __name__ == "__main__":
    main()
