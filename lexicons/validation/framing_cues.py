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
Cohen's kappa (scikit-learn ``cohen_kappa_score``) per category and overall for each pair.
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
import csv
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from pipeline.errors import MobilizeError
from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher
from pipeline.normalize import sentences
from pipeline.score import Scheme, clause_span, hit_is_framed

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
#: the four shared Chinese corpora the sheets are drawn from
SHARED = ("gwr-national-zh", "gwr-provincial-zh", "npc-resolutions-gwr-zh",
          "social-security-policy-zh")
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


def _read(path: Path, needed: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or ())]
            if missing:
                raise MobilizeError(f"no column {', '.join(missing)}", path=path, line=1,
                                    fix=f"the sheet needs the columns {', '.join(needed)}")
            return list(reader)
    except OSError as e:
        raise MobilizeError(f"cannot read the sheet ({e.strerror})", path=path,
                            fix="give the path of a coded sheet") from e


def read_coded(sheet: Path, key: dict[str, dict[str, str]]) -> dict[str, str]:
    """line_id -> ``framed`` / ``not framed`` of one coded blind sheet, checked against the
    key (every line coded, every line in the key, each once)."""
    out: dict[str, str] = {}
    for n, r in enumerate(_read(sheet, ("line_id", "category", "judgement")), start=2):
        lid = r["line_id"].strip()
        if lid not in key:
            raise MobilizeError(f"line_id {lid!r} is not in the key", path=sheet, line=n,
                                fix="code the blind sheet drawn with this key")
        if lid in out:
            raise MobilizeError(f"line_id {lid} is coded twice", path=sheet, line=n,
                                fix="keep one row per line")
        value = _READ.get(r["judgement"].strip().lower())
        if value is None:
            raise MobilizeError(f"judgement {r['judgement']!r} of {lid}", path=sheet, line=n,
                                fix="write framed or not framed (or no)")
        out[lid] = value
    missing = sorted(set(key) - set(out))
    if missing:
        raise MobilizeError(f"{len(missing)} lines of the key are not on the sheet "
                            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
                            path=sheet, fix="code every line of the blind sheet")
    return out


def precision(key_path: Path, sheets: Sequence[Path]) -> str:
    """The per-coder, per-category and per-stratum shares coded framed (n, Wilson 95%) and,
    for every pair of coders, Cohen's kappa per category and overall, as Markdown tables."""
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.proportion import proportion_confint

    key_rows = _read(key_path, ("line_id", "stratum"))
    key: dict[str, dict[str, str]] = {}
    for n, r in enumerate(key_rows, start=2):
        if r["stratum"] not in STRATA:
            raise MobilizeError(f"stratum {r['stratum']!r}", path=key_path, line=n,
                                fix="the key's stratum is framed or unframed")
        key[r["line_id"].strip()] = r
    category: dict[str, str] = {}
    coded: list[dict[str, str]] = []
    for sheet in sheets:
        coded.append(read_coded(sheet, key))
        for r in _read(sheet, ("line_id", "category")):
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
                    agree = sum(p == q for p, q in zip(x, y, strict=True)) / len(ids)
                    kappa = _kappa(cohen_kappa_score, x, y)
                    lines.append(f"| {sheets[a].name} / {sheets[b].name} | {cat} | {len(ids)} "
                                 f"| {agree:.2f} | {kappa} |")
    return "\n".join(lines)


def _kappa(fn, x: Sequence[str], y: Sequence[str]) -> str:  # type: ignore[no-untyped-def]
    """Cohen's kappa to 2 decimals; "n/a" when it is undefined (both coders used one and the
    same label for every line: chance agreement is 1)."""
    if len(set(x) | set(y)) < 2:
        return "n/a (one label only)"
    return f"{fn(x, y, labels=[FRAMED, NOT_FRAMED]):.2f}"


def _write(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def default_key(blind: Path) -> Path:
    if "-blind" not in blind.stem:
        raise MobilizeError("cannot name the key: the sheet's name has no '-blind'",
                            path=blind, fix="name the sheet *-blind.csv or give --key")
    return blind.with_name(blind.stem.replace("-blind", "-key") + blind.suffix)


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
    s.add_argument("--out", type=Path, required=True, help="the blind sheet (*-blind.csv)")
    s.add_argument("--key", type=Path, help="the key (default: the sheet's name, -key)")
    p = sub.add_parser("precision", help="shares coded framed per stratum, and kappa")
    p.add_argument("--key", type=Path, required=True)
    p.add_argument("sheets", type=Path, nargs="+", help="coded copies of the blind sheet")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "sample":
            key_path = args.key or default_key(args.out)
            rows = pool(args.lexicon, args.corpora)
            counts: dict[str, int] = defaultdict(int)
            for r in rows:
                counts[r["stratum"]] += 1
            print(f"challenge hits: {len(rows)} ({dict(sorted(counts.items()))})")
            blind, key_rows = sample(rows, args.per_cell, args.seed)
            _write(args.out, BLIND_COLUMNS, blind)
            _write(key_path, KEY_COLUMNS, key_rows)
            print(f"{len(blind)} lines -> {args.out}; key -> {key_path}")
        else:
            print(precision(args.key, args.sheets))
    except MobilizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
