"""Validation sheet and precision of the challenge-framing cues (``challenge_cues``).

Every hit of a challenge category (C1-C4) in the shared Chinese corpora is put in one of two
strata by the rule scoring uses (``pipeline.score.framed_sentences``): *framed* (its sentence
holds a cue) or *unframed*. ``sample`` draws the same number of lines per category and
stratum (fixed seed) and writes a coding sheet with an empty ``judgement`` column;
``precision`` reads the coded sheet and prints, per stratum, the share of lines coded
``framed`` (the condition presented as a challenge, pressure, risk or problem, following the
codebook's scope note for C1-C4) with n and a 95% Wilson interval (statsmodels).

Run from the repository root:

    python lexicons/validation/framing_cues.py sample \\
        --out lexicons/validation/framing-cues-2.1.0.csv
    python lexicons/validation/framing_cues.py precision lexicons/validation/framing-cues-2.1.0.csv
"""

from __future__ import annotations

import argparse
import csv
import random
from collections import defaultdict
from pathlib import Path

from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher
from pipeline.normalize import sentences
from pipeline.score import Scheme, framed_sentences

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
COLUMNS = ("line_id", "stratum", "cues", "category", "term", "corpus", "doc_id", "year",
           "left", "match", "right", "judgement", "note")
SEED = 20261203
#: characters of the sentence kept either side of the match in the sheet (the cues column
#: names the cues of the whole sentence)
CONTEXT = 60


def pool(lexicon_path: Path, corpora: Path) -> list[dict[str, str]]:
    """Every challenge hit of every *-zh corpus, with its sentence split around the match."""
    lex = load_lexicon(lexicon_path)
    scheme = Scheme.from_lexicon(lex)
    matcher = Matcher(lex)
    out: list[dict[str, str]] = []
    for root in sorted(p for p in corpora.iterdir() if p.is_dir() and p.name.endswith("-zh")):
        corpus = load_corpus(root, warn=False)
        for doc in corpus.documents:
            starts: list[int] = []
            pos = 0
            for pi, para in enumerate(doc.text.split("\n")):
                if pi:
                    pos += 1
                for s in sentences(para):
                    starts.append(pos)
                    pos += len(s)
            if not starts:
                continue
            hits = [h for h in matcher.find(doc.text) if h.dimension == "challenge"]
            if not hits:
                continue
            import bisect
            sent_of = {id(h): max(bisect.bisect_right(starts, h.start) - 1, 0) for h in hits}
            framed = framed_sentences(doc.text, starts, set(sent_of.values()), scheme.cues)
            for h in hits:
                si = sent_of[id(h)]
                end = starts[si + 1] if si + 1 < len(starts) else len(doc.text)
                sent = doc.text[starts[si]:end].rstrip("\n")
                cues = sorted(c for c in scheme.cues if c in sent)
                out.append({"stratum": "framed" if si in framed else "unframed",
                            "cues": " ".join(cues), "category": h.category, "term": h.term,
                            "corpus": root.name, "doc_id": doc.doc_id,
                            "year": "" if doc.year is None else str(doc.year),
                            "left": doc.text[starts[si]:h.start],
                            "match": doc.text[h.start:h.end],
                            "right": doc.text[h.end:max(end, h.end)].rstrip("\n")})
    out.sort(key=lambda r: (r["corpus"], r["doc_id"], r["category"], r["left"], r["match"]))
    return out


def sample(rows: list[dict[str, str]], per_cell: int, seed: int) -> list[dict[str, str]]:
    cells: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        cells[(r["stratum"], r["category"])].append(r)
    rng = random.Random(seed)
    chosen: list[dict[str, str]] = []
    for key in sorted(cells):
        group = cells[key]
        chosen += rng.sample(group, min(per_cell, len(group)))
    chosen.sort(key=lambda r: (r["stratum"], r["category"], r["corpus"], r["doc_id"]))
    for i, r in enumerate(chosen, start=1):
        r["line_id"] = f"F{i:03d}"
        r["left"], r["right"] = r["left"][-CONTEXT:], r["right"][:CONTEXT]
        r["judgement"] = ""
        r["note"] = ""
    return chosen


def precision(sheet: Path) -> str:
    from statsmodels.stats.proportion import proportion_confint

    with sheet.open(encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    lines = ["| stratum | category | n | coded framed | share | 95% Wilson CI |",
             "| --- | --- | --- | --- | --- | --- |"]
    for stratum in ("framed", "unframed"):
        part = [r for r in rows if r["stratum"] == stratum]
        for cat in [*sorted({r["category"] for r in part}), "all"]:
            sub = part if cat == "all" else [r for r in part if r["category"] == cat]
            n = len(sub)
            k = sum(r["judgement"] == "framed" for r in sub)
            lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
            lines.append(f"| {stratum} | {cat} | {n} | {k} | {k / n:.2f} | "
                         f"[{lo:.2f}, {hi:.2f}] |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample")
    s.add_argument("--lexicon", type=Path, default=Path("lexicons/mobilize.yaml"))
    s.add_argument("--corpora", type=Path, default=CORPORA)
    s.add_argument("--per-cell", type=int, default=10)
    s.add_argument("--seed", type=int, default=SEED)
    s.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("precision")
    p.add_argument("sheet", type=Path)
    args = ap.parse_args()
    if args.cmd == "sample":
        rows = pool(args.lexicon, args.corpora)
        counts: dict[str, int] = defaultdict(int)
        for r in rows:
            counts[r["stratum"]] += 1
        print(f"challenge hits: {len(rows)} ({dict(sorted(counts.items()))})")
        chosen = sample(rows, args.per_cell, args.seed)
        with args.out.open("w", encoding="utf-8", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
            w.writeheader()
            w.writerows({k: r[k] for k in COLUMNS} for r in chosen)
        print(f"{len(chosen)} lines -> {args.out}")
    else:
        print(precision(args.sheet))


if __name__ == "__main__":
    main()
