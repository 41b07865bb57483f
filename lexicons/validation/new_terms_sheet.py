"""KWIC coding sheet of what a new lexicon version counts that the previous one did not.

Every hit of NEW whose (category, span) is not a hit of OLD, grouped by the NEW entry that
made it (its term or pattern label), at most ``--per-term`` per entry drawn with the seed
``VERSION|category|term`` (Python ``random.Random``), over the given corpora (``*.txt``
under each folder, NFKC-normalised as the pipeline reads them), ``--width`` characters either
side. ``period`` is the era (pre-1992, 1992-2012, 2013-: ``pipeline.recall.eras_from_breaks``), ``date`` the year of the file name.
The sheet is what ``mobilize lexicon agreement SHEET`` reads once coded. Run from the
repository root:

    python lexicons/validation/new_terms_sheet.py \\
        lexicons/validation/mobilize-2.3.0-new-terms.yaml lexicons/mobilize.yaml \\
        --corpus ../shared/corpora/gwr-national-zh --corpus ../shared/corpora/gwr-provincial-zh \\
        --corpus ../shared/corpora/social-security-policy-zh \\
        --corpus ../shared/corpora/npc-resolutions-gwr-zh --out sheet.csv
"""

from __future__ import annotations

import argparse
import random
import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sheets import write_sheet

from pipeline import normalize
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher
from pipeline.recall import era_of, eras_from_breaks

FIELDS = ["line_id", "category", "term", "corpus", "doc_id", "date", "period", "left", "match",
          "right", "judgement", "coder", "note"]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    parser.add_argument("--corpus", type=Path, action="append", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-term", type=int, default=20)
    parser.add_argument("--width", type=int, default=30)
    args = parser.parse_args(argv)
    lexicon = load_lexicon(args.new)
    old, new, version = Matcher(load_lexicon(args.old)), Matcher(lexicon), lexicon.version
    eras = eras_from_breaks()
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for root in args.corpus:
        for path in sorted(root.rglob("*.txt")):
            text = normalize.text(path.read_text(encoding="utf-8"))
            year = int(m.group(1)) if (m := re.match(r"(\d{4})", path.name)) else 0
            before = {(h.category, h.start, h.end) for h in old.find(text)}
            for h in new.find(text):
                if (h.category, h.start, h.end) in before:
                    continue
                groups[(h.category, h.term)].append({
                    "category": h.category, "term": h.term, "corpus": root.name,
                    "doc_id": str(path.relative_to(root).with_suffix("")), "date": str(year),
                    "period": era_of(year or None, eras) or "",
                    "left": text[max(0, h.start - args.width):h.start].replace("\n", " "),
                    "match": text[h.start:h.end],
                    "right": text[h.end:h.end + args.width].replace("\n", " "),
                    "judgement": "", "coder": "", "note": ""})
    rows: list[dict[str, str]] = []
    for (cat, term), hits in sorted(groups.items()):
        rng = random.Random(f"{version}|{cat}|{term}")
        rows.extend(rng.sample(hits, min(args.per_term, len(hits))))
    write_sheet(args.out, FIELDS,
                [{"line_id": f"L{i:05d}", **row} for i, row in enumerate(rows, start=1)])
    print(f"{len(rows)} lines, {len(groups)} entries -> {args.out}")


if __name__ == "__main__":
    main()
