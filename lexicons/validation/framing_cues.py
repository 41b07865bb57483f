"""Validation sheets and precision of the challenge-framing cues (``challenge_cues``).

Every hit of a challenge category (C1-C4) in the shared Chinese corpora is put in one of two
strata by the rule scoring uses (``pipeline.score.hit_is_framed``): *framed* (the hit's clause,
the stretch of its sentence between , ; :, holds a cue) or *unframed*.

``sample`` draws the same number of lines per category and stratum (fixed seed) and writes
two files: a BLIND coding sheet (``line_id, category, term, left, match, right, judgement,
note``; rows shuffled, no stratum, no cue column, so the coder cannot tell which lines the
rule calls framed) and its KEY (``line_id, stratum, cues, corpus, doc_id, year``; ``cues``
names the cues of the hit's clause). ``--key`` defaults to the sheet's name with ``-blind``
replaced by ``-key``.

``precision`` joins one or more coded copies of the blind sheet with the key and prints, per
coder, category and stratum, the share of lines coded ``framed`` (the condition presented as
a challenge, pressure, risk or problem, following the codebook's scope note for C1-C4) with
n and a 95% Wilson interval (statsmodels ``proportion_confint``); with two or more coders,
Cohen's kappa (``pipeline.recall.kappa_estimate``: scikit-learn ``cohen_kappa_score``) per
category and overall for each pair. The sheet reading, writing and kappa are ``sheets.py``'s.
Judgements: ``framed``, or ``not framed`` (``no`` is read as ``not framed``); an empty or other
value stops with the file and line.

Run from the repository root:

    python lexicons/validation/framing_cues.py sample --seed 20261204 --per-cell 15 \\
        --out lexicons/validation/framing-cues-2.2.0-blind.csv
    python lexicons/validation/framing_cues.py precision \\
        --key lexicons/validation/framing-cues-2.2.0-key.csv \\
        lexicons/validation/framing-cues-2.2.0-coder1.csv \\
        lexicons/validation/framing-cues-2.2.0-coder2.csv

(The 2.1.0 sheet, ``framing-cues-2.1.0.csv``, was drawn by the sentence rule of 2.1.0 with
the stratum on the sheet; it is kept as the record of that measurement.)
"""

from __future__ import annotations

import argparse
import bisect
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sheets import (CORPORA, SHARED, add_blind_outputs, add_coded_parser, default_key,
                    pair_agreement, read_coded, read_sheet, run, write_sheet)

from pipeline.errors import MobilizeError
from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher
from pipeline.normalize import sentences
from pipeline.score import Scheme, clause_span, hit_is_framed

BLIND_COLUMNS = ("line_id", "category", "term", "left", "match", "right", "judgement", "note")
KEY_COLUMNS = ("line_id", "stratum", "cues", "corpus", "doc_id", "year")
STRATA = ("framed", "unframed")
SEED = 20261203  # the 2.1.0 sheet; the 2.2.0 sheet was drawn with --seed 20261204
#: characters of the sentence kept either side of the match in the sheet
CONTEXT = 60
#: how coded judgements are read
FRAMED, NOT_FRAMED = "framed", "not framed"
_READ = {"framed": FRAMED, "not framed": NOT_FRAMED, "no": NOT_FRAMED}


def pool(lexicon_path: Path, corpora: Path,
         names: Sequence[str] = SHARED) -> list[dict[str, str]]:
    """Every challenge hit of the named corpora, with its sentence split around the match,
    its stratum by the clause rule and the cues of its clause."""
    lex = load_lexicon(lexicon_path)
    scheme = Scheme.from_lexicon(lex)
    matcher = Matcher(lex)
    out: list[dict[str, str]] = []
    for name in sorted(names):
        corpus = load_corpus(corpora / name, warn=False)
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
            for h in matcher.find(doc.text):
                if h.dimension != "challenge":
                    continue
                si = max(bisect.bisect_right(starts, h.start) - 1, 0)
                end = starts[si + 1] if si + 1 < len(starts) else len(doc.text)
                framed = hit_is_framed(doc.text, h.start, h.end, starts[si], end, scheme.cues)
                cs, ce = clause_span(doc.text, h.start, h.end, starts[si], end)
                clause = doc.text[cs:ce]
                out.append({"stratum": "framed" if framed else "unframed",
                            "cues": " ".join(sorted(c for c in scheme.cues if c in clause)),
                            "category": h.category, "term": h.term,
                            "corpus": name, "doc_id": doc.doc_id,
                            "year": "" if doc.year is None else str(doc.year),
                            "left": doc.text[starts[si]:h.start],
                            "match": doc.text[h.start:h.end],
                            "right": doc.text[h.end:max(end, h.end)].rstrip("\n")})
    out.sort(key=lambda r: (r["corpus"], r["doc_id"], r["category"], r["left"], r["match"]))
    return out


def sample(rows: list[dict[str, str]], per_cell: int, seed: int
           ) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """``per_cell`` lines per (stratum, category), drawn with ``seed``, then shuffled with it
    and numbered in the shuffled order: (blind rows, key rows), both in line_id order."""
    cells: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        cells[(r["stratum"], r["category"])].append(r)
    rng = random.Random(seed)
    chosen: list[dict[str, str]] = []
    for key in sorted(cells):
        group = cells[key]
        chosen += rng.sample(group, min(per_cell, len(group)))
    rng.shuffle(chosen)
    blind: list[dict[str, str]] = []
    key_rows: list[dict[str, str]] = []
    for i, r in enumerate(chosen, start=1):
        line_id = f"L{i:03d}"
        blind.append({"line_id": line_id, "category": r["category"], "term": r["term"],
                      "left": r["left"][-CONTEXT:], "match": r["match"],
                      "right": r["right"][:CONTEXT], "judgement": "", "note": ""})
        key_rows.append({"line_id": line_id, **{k: r[k] for k in KEY_COLUMNS[1:]}})
    return blind, key_rows


def precision(key_path: Path, sheets: Sequence[Path]) -> str:
    """The per-coder, per-category and per-stratum shares coded framed (n, Wilson 95%) and,
    for every pair of coders, Cohen's kappa per category and overall, as Markdown tables."""
    from statsmodels.stats.proportion import proportion_confint

    key_rows = read_sheet(key_path, ("line_id", "stratum"))
    key: dict[str, dict[str, str]] = {}
    for n, r in enumerate(key_rows, start=2):
        if r["stratum"] not in STRATA:
            raise MobilizeError(f"stratum {r['stratum']!r}", path=key_path, line=n,
                                fix="the key's stratum is framed or unframed")
        key[r["line_id"].strip()] = r
    category: dict[str, str] = {}
    coded: list[dict[str, str]] = []
    for sheet in sheets:
        coded.append(read_coded(sheet, key, id_column="line_id", noun="line", judgements=_READ,
                                judgement_fix="write framed or not framed (or no)",
                                needed=("category",)))
        for r in read_sheet(sheet, ("line_id", "category")):
            category[r["line_id"].strip()] = r["category"]
    cats = sorted(set(category.values()))
    lines = ["| coder | stratum | category | n | coded framed | share | 95% Wilson CI |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for sheet, codes in zip(sheets, coded, strict=True):
        for stratum in STRATA:
            for cat in [*cats, "all"]:
                ids = [i for i in sorted(key) if key[i]["stratum"] == stratum
                       and (cat == "all" or category[i] == cat)]
                n = len(ids)
                if not n:
                    continue
                k = sum(codes[i] == FRAMED for i in ids)
                lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
                lines.append(f"| {sheet.name} | {stratum} | {cat} | {n} | {k} | {k / n:.2f} | "
                             f"[{lo:.2f}, {hi:.2f}] |")
    if len(sheets) >= 2:
        lines += ["", "| coders | category | n | agreement | Cohen's kappa |",
                  "| --- | --- | --- | --- | --- |"]
        for a in range(len(sheets)):
            for b in range(a + 1, len(sheets)):
                for cat in [*cats, "all"]:
                    ids = [i for i in sorted(key) if cat == "all" or category[i] == cat]
                    x = [coded[a][i] for i in ids]
                    y = [coded[b][i] for i in ids]
                    agree, kappa = pair_agreement(x, y, FRAMED)
                    lines.append(f"| {sheets[a].name} / {sheets[b].name} | {cat} | {len(ids)} "
                                 f"| {agree} | {kappa} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Example:\n  python lexicons/validation/framing_cues.py "
                                        "precision --key lexicons/validation/framing-cues-2.2.0"
                                        "-key.csv lexicons/validation/framing-cues-2.2.0-coder1"
                                        ".csv lexicons/validation/framing-cues-2.2.0-coder2.csv")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sample", help="draw a blind sheet and its key")
    s.add_argument("--lexicon", type=Path, default=Path("lexicons/mobilize.yaml"))
    s.add_argument("--corpora", type=Path, default=CORPORA)
    s.add_argument("--per-cell", type=int, default=15)
    s.add_argument("--seed", type=int, default=SEED)
    add_blind_outputs(s)
    add_coded_parser(sub, "precision", "shares coded framed per stratum, and kappa")
    args = ap.parse_args(argv)

    def action() -> None:
        if args.cmd == "sample":
            key_path = args.key or default_key(args.out)
            rows = pool(args.lexicon, args.corpora)
            counts: dict[str, int] = defaultdict(int)
            for r in rows:
                counts[r["stratum"]] += 1
            print(f"challenge hits: {len(rows)} ({dict(sorted(counts.items()))})")
            blind, key_rows = sample(rows, args.per_cell, args.seed)
            write_sheet(args.out, BLIND_COLUMNS, blind)
            write_sheet(key_path, KEY_COLUMNS, key_rows)
            print(f"{len(blind)} lines -> {args.out}; key -> {key_path}")
        else:
            print(precision(args.key, args.sheets))

    return run(action)


if __name__ == "__main__":
    sys.exit(main())
