"""Recall of one or more lexicons on a coded passage sheet (the tuning set), per category and era.

A coded phrase is found when a lexicon hit of the same category overlaps its span in the
passage (``pipeline.match.Matcher(lexicon).find(text)`` on the passage text, which the sheet
holds NFKC-normalised). Format of the sheets: /work/coding/FORMAT.md, copied in NOTES.md.

This is the tuning script behind the recall table of NOTES.md, not the project's
agreement command. Run from the repository root:

    python lexicons/validation/recall_tuning.py \\
        lexicons/validation/mobilize-1.3.0.yaml lexicons/mobilize.yaml

It prints a Markdown table: recall (found / coded) per category and era, one cell per
lexicon given, and with ``--misses`` the coded phrases the last lexicon does not find.
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher

HERE = Path(__file__).resolve().parent
ERAS = ("pre-1992", "1992-2012", "2013-")


def read_sheets(passages: Path, codes: Path) -> tuple[dict[str, dict[str, str]],
                                                       list[tuple[str, str, int, int]]]:
    """The passages by id, and the coded expressions as (passage, category, start, end)."""
    with passages.open(encoding="utf-8-sig", newline="") as f:
        by_id = {r["passage_id"]: r for r in csv.DictReader(f)}
    spans: list[tuple[str, str, int, int]] = []
    with codes.open(encoding="utf-8-sig", newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            if row["category"] == "-":
                continue
            text = by_id[row["passage_id"]]["text"]
            start = -1
            for _ in range(int(row["occurrence"] or 1)):
                start = text.find(row["phrase"], start + 1)
            if start < 0:
                raise SystemExit(f"{codes}:{line}: {row['phrase']!r} is not in passage "
                                 f"{row['passage_id']} that often")
            spans.append((row["passage_id"], row["category"], start, start + len(row["phrase"])))
    return by_id, spans


def recall(lexicon: Path, by_id: dict[str, dict[str, str]],
           spans: Sequence[tuple[str, str, int, int]]) -> tuple[Counter[tuple[str, str]],
                                                                 Counter[tuple[str, str]],
                                                                 list[tuple[str, str, str]]]:
    """(coded, found) per (category, era) with 'all' margins, and the missed phrases."""
    matcher = Matcher(load_lexicon(lexicon))
    hits = {pid: matcher.find(r["text"]) for pid, r in by_id.items()}
    coded: Counter[tuple[str, str]] = Counter()
    found: Counter[tuple[str, str]] = Counter()
    missed: list[tuple[str, str, str]] = []
    for pid, cat, start, end in spans:
        era = by_id[pid]["era"]
        ok = any(h.category == cat and h.start < end and h.end > start for h in hits[pid])
        for key in ((cat, era), (cat, "all"), ("all", era), ("all", "all")):
            coded[key] += 1
            found[key] += ok
        if not ok:
            missed.append((pid, cat, by_id[pid]["text"][start:end]))
    return coded, found, missed


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lexicons", nargs="+", type=Path)
    parser.add_argument("--passages", type=Path, default=HERE / "recall-A-passages.csv")
    parser.add_argument("--codes", type=Path, default=HERE / "recall-A-codes-coder2.csv")
    parser.add_argument("--misses", action="store_true", help="list what the last lexicon misses")
    args = parser.parse_args(argv)
    by_id, spans = read_sheets(args.passages, args.codes)
    results = [recall(p, by_id, spans) for p in args.lexicons]
    names = " / ".join(load_lexicon(p).version for p in args.lexicons)
    cats = sorted({c for c, _e in results[0][0] if c != "all"}) + ["all"]
    print(f"| category | {' | '.join(ERAS)} | all |  (recall {names}, n coded)")
    print("| --- |" + " --- |" * (len(ERAS) + 1))
    for cat in cats:
        cells = []
        for era in (*ERAS, "all"):
            n = results[0][0][(cat, era)]
            cells.append(" / ".join(f"{f[(cat, era)] / n:.2f}" for _c, f, _m in results)
                         + f" ({n})" if n else "-")
        print(f"| {cat} | " + " | ".join(cells) + " |")
    if args.misses:
        for pid, cat, phrase in results[-1][2]:
            print(f"missed: {pid} {cat} {phrase}")


if __name__ == "__main__":
    main()
