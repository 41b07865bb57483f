"""Blind candidate sheet: the recall aid (``mobilize lexicon misses``) against Word2Vec
(``mobilize lexicon suggest``), at the same budget per category (issue 13, point 4).

``sheet`` pools the candidate terms of both sources, per category: the Word2Vec review
file's first ``k`` suggestions (by rank) and the misses candidates file's first ``k``
n-grams that are not part of a lexicon term of the category (its ``part_of_term`` column is
empty), ``k`` being ``--per-category`` or, when the review has fewer suggestions for the
category, that number (the budget ``mobilize lexicon misses --suggestions`` compares at).
A string both sources give for the same category is one candidate (source ``both``). Each
candidate gets up to 3 keyword-in-context lines: substring occurrences in the corpora's
normalised text (what the scorer would count if the string became a term), drawn with a
fixed seed, 30 characters either side within the paragraph. The candidates are shuffled
(seeded) and numbered, and written to two files: the BLIND sheet (``candidate_id,
category, candidate, kwic1, kwic2, kwic3, judgement, note``: no source) and its KEY
(``candidate_id, source``; source ``misses``, ``word2vec`` or ``both``).

``results`` joins coded copies of the blind sheet with the key. Judgement: ``term`` (the
string is a good lexicon term of that category by the codebook in these contexts) or
``no``. Per coder, and for the candidates every coder coded ``term`` (``agreed``), it
prints how many candidates each source surfaced and how many were validated (with a 95%
Wilson interval of the share, statsmodels), how many validated candidates came from the
misses aid only, and how many of those match no Word2Vec suggestion of the category even
loosely (equal, holding or held by one: ``pipeline.misses.word2vec_overlap``); with two or
more coders, Cohen's kappa (``pipeline.recall.kappa_estimate``: scikit-learn) per pair,
overall and per source. The sheet reading, writing and kappa are ``sheets.py``'s.

Run from the repository root (see docs/validation.md, "Recall aid against Word2Vec"):

    python lexicons/validation/candidates.py sheet --suggest suggest.csv \\
        --misses misses-candidates.csv --per-category 10 --seed 20261204 \\
        --out lexicons/validation/candidates-2.2.0-blind.csv
    python lexicons/validation/candidates.py results \\
        --key lexicons/validation/candidates-2.2.0-key.csv \\
        lexicons/validation/candidates-2.2.0-coder1.csv \\
        lexicons/validation/candidates-2.2.0-coder2.csv
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from sheets import (CORPORA, SHARED, add_blind_outputs, add_coded_parser, default_key,
                    pair_agreement, read_coded, read_sheet, run, write_sheet)

from pipeline.errors import MobilizeError

BLIND_COLUMNS = ("candidate_id", "category", "candidate", "kwic1", "kwic2", "kwic3",
                 "judgement", "note")
KEY_COLUMNS = ("candidate_id", "source")
SOURCES = ("misses", "word2vec", "both")
SEED = 20261204
KWIC = 3
#: characters kept either side of a KWIC match (within its paragraph)
CONTEXT = 30
TERM, NO = "term", "no"


def budgeted(suggest: Sequence[Mapping[str, str]], misses: Sequence[Mapping[str, str]],
             per_category: int, exclude: Sequence[str] = ()
             ) -> dict[tuple[str, str], set[str]]:
    """(category, candidate) -> the sources that surfaced it, at an equal budget per
    category: k = min(per_category, the category's Word2Vec suggestions) from each.
    Categories in ``exclude`` are left out."""
    w2v: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for r in suggest:
        cat, term = r["category"].strip(), r["term"].strip()
        if cat and term and cat not in exclude:
            w2v[cat].append((int(r.get("rank") or 0), term))
    pooled: dict[tuple[str, str], set[str]] = defaultdict(set)
    budget: dict[str, int] = {}
    for cat, items in w2v.items():
        chosen = [t for _r, t in sorted(items)][:per_category]
        budget[cat] = len(chosen)
        for t in chosen:
            pooled[(cat, t)].add("word2vec")
    taken: dict[str, int] = defaultdict(int)
    for r in misses:  # in the file's order: per category by rank
        cat, gram = r["category"].strip(), r["ngram"].strip()
        if not gram or r.get("part_of_term", "").strip():
            continue
        if taken[cat] >= budget.get(cat, 0):
            continue
        taken[cat] += 1
        pooled[(cat, gram)].add("misses")
    return dict(pooled)


def source_of(sources: set[str]) -> str:
    return "both" if len(sources) == 2 else next(iter(sources))


def occurrences(texts: Sequence[tuple[str, str, str]], needle: str) -> list[tuple[int, int]]:
    """(text index, offset) of every occurrence of ``needle`` (overlapping ones included)."""
    out: list[tuple[int, int]] = []
    for ti, (_c, _d, text) in enumerate(texts):
        pos = text.find(needle)
        while pos != -1:
            out.append((ti, pos))
            pos = text.find(needle, pos + 1)
    return out


def kwic(texts: Sequence[tuple[str, str, str]], needle: str, seed: int,
         k: int = KWIC) -> list[str]:
    """Up to ``k`` KWIC lines of ``needle`` drawn with ``seed`` (a random.Random seeded with
    a string: the same on every run and machine), in the texts' order."""
    occ = occurrences(texts, needle)
    rng = random.Random(f"{seed}:{needle}")
    chosen = sorted(rng.sample(occ, min(k, len(occ))))
    lines = []
    for ti, pos in chosen:
        text = texts[ti][2]
        lo = text.rfind("\n", 0, pos) + 1
        hi = text.find("\n", pos + len(needle))
        hi = len(text) if hi == -1 else hi
        left = text[max(lo, pos - CONTEXT):pos]
        right = text[pos + len(needle):min(hi, pos + len(needle) + CONTEXT)]
        lines.append(f"{left}【{needle}】{right}")
    return lines


def sheet(pooled: Mapping[tuple[str, str], set[str]], texts: Sequence[tuple[str, str, str]],
          seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The blind rows and the key rows, shuffled with ``seed`` and numbered in that order."""
    items = sorted(pooled)
    rng = random.Random(seed)
    rng.shuffle(items)
    blind, key = [], []
    for i, (cat, cand) in enumerate(items, start=1):
        cid = f"K{i:03d}"
        lines = kwic(texts, cand, seed) + ["", "", ""]
        blind.append({"candidate_id": cid, "category": cat, "candidate": cand,
                      "kwic1": lines[0], "kwic2": lines[1], "kwic3": lines[2],
                      "judgement": "", "note": ""})
        key.append({"candidate_id": cid, "source": source_of(pooled[(cat, cand)])})
    return blind, key


def tally(key: Mapping[str, str], cands: Mapping[str, tuple[str, str]],
          validated: set[str]) -> dict[str, int]:
    """The counts for one set of validated candidate ids: per source surfaced and validated,
    from misses (misses + both), from Word2Vec (word2vec + both), misses only, and misses only
    matching no Word2Vec candidate of the category even loosely."""
    from pipeline.misses import word2vec_overlap

    w2v: dict[str, list[str]] = defaultdict(list)
    for cid, src in key.items():
        if src in ("word2vec", "both"):
            w2v[cands[cid][0]].append(cands[cid][1])
    out: dict[str, int] = {}
    for src in SOURCES:
        ids = [c for c, s in key.items() if s == src]
        out[f"{src}_n"] = len(ids)
        out[f"{src}_validated"] = sum(c in validated for c in ids)
    for name, srcs in (("from_misses", ("misses", "both")), ("from_word2vec", ("word2vec", "both"))):
        ids = [c for c, s in key.items() if s in srcs]
        out[f"{name}_n"] = len(ids)
        out[f"{name}_validated"] = sum(c in validated for c in ids)
    only = [c for c, s in key.items() if s == "misses" and c in validated]
    out["misses_only_validated"] = len(only)
    out["misses_only_validated_no_overlap"] = sum(
        1 for c in only if not word2vec_overlap(cands[c][1], w2v[cands[c][0]]))
    return out


def results(key_path: Path, sheets: Sequence[Path]) -> str:
    from statsmodels.stats.proportion import proportion_confint

    key: dict[str, str] = {}
    for n, r in enumerate(read_sheet(key_path, KEY_COLUMNS), start=2):
        if r["source"] not in SOURCES:
            raise MobilizeError(f"source {r['source']!r}", path=key_path, line=n,
                                fix="the key's source is misses, word2vec or both")
        key[r["candidate_id"].strip()] = r["source"]
    coded = [read_coded(s, key, id_column="candidate_id", noun="candidate",
                        judgements={TERM: TERM, NO: NO}, judgement_fix="write term or no")
             for s in sheets]
    cands: dict[str, tuple[str, str]] = {}
    for r in read_sheet(sheets[0], ("candidate_id", "category", "candidate")):
        cands[r["candidate_id"].strip()] = (r["category"].strip(), r["candidate"].strip())
    views = [(s.name, {c for c, v in codes.items() if v == TERM})
             for s, codes in zip(sheets, coded, strict=True)]
    if len(sheets) >= 2:
        views.append(("agreed (all coders: term)",
                      set.intersection(*(v for _n, v in views))))

    def share(k: int, n: int) -> str:
        if not n:
            return "-"
        lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
        return f"{k / n:.2f} [{lo:.2f}, {hi:.2f}]"

    lines = ["| coder | source | candidates | validated | share [95% Wilson CI] |",
             "| --- | --- | --- | --- | --- |"]
    summary = ["", "| coder | validated from misses (of n) | validated from Word2Vec (of n) "
               "| validated, misses only | of those, matching no Word2Vec suggestion |",
               "| --- | --- | --- | --- | --- |"]
    for name, validated in views:
        t = tally(key, cands, validated)
        for src, label in (("misses", "misses only"), ("word2vec", "Word2Vec only"),
                           ("both", "both"), ("from_misses", "misses (all)"),
                           ("from_word2vec", "Word2Vec (all)")):
            n, k = t[f"{src}_n"], t[f"{src}_validated"]
            lines.append(f"| {name} | {label} | {n} | {k} | {share(k, n)} |")
        summary.append(f"| {name} | {t['from_misses_validated']} (of {t['from_misses_n']}) | "
                       f"{t['from_word2vec_validated']} (of {t['from_word2vec_n']}) | "
                       f"{t['misses_only_validated']} | "
                       f"{t['misses_only_validated_no_overlap']} |")
    lines += summary
    if len(sheets) >= 2:
        lines += ["", "| coders | candidates | n | agreement | Cohen's kappa |",
                  "| --- | --- | --- | --- | --- |"]
        for a in range(len(sheets)):
            for b in range(a + 1, len(sheets)):
                for part in ("all", *SOURCES):
                    ids = sorted(c for c, s in key.items() if part == "all" or s == part)
                    if not ids:
                        continue
                    x = [coded[a][c] for c in ids]
                    y = [coded[b][c] for c in ids]
                    agree, kappa = pair_agreement(x, y, TERM)
                    lines.append(f"| {sheets[a].name} / {sheets[b].name} | {part} | "
                                 f"{len(ids)} | {agree} | {kappa} |")
    return "\n".join(lines)


def corpus_texts(corpora: Path, names: Sequence[str] = SHARED) -> list[tuple[str, str, str]]:
    """(corpus, doc_id, normalised text) of every document, in corpus and doc_id order."""
    from pipeline.ingest import load_corpus

    out = []
    for name in sorted(names):
        corpus = load_corpus(corpora / name, warn=False)
        out += sorted((name, d.doc_id, d.text) for d in corpus.documents)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="Example:\n  python lexicons/validation/candidates.py "
                                        "results --key lexicons/validation/candidates-2.2.0-"
                                        "key.csv lexicons/validation/candidates-2.2.0-coder1.csv"
                                        " lexicons/validation/candidates-2.2.0-coder2.csv")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("sheet", help="pool both sources into a blind sheet and its key")
    s.add_argument("--suggest", type=Path, required=True,
                   help="review file of `mobilize lexicon suggest` (CSV)")
    s.add_argument("--misses", type=Path, required=True,
                   help="<name>-candidates.csv of `mobilize lexicon misses`")
    s.add_argument("--per-category", type=int, default=10)
    s.add_argument("--exclude-category", action="append", default=[],
                   help="leave this category out (repeatable): one the codebook does not "
                        "define, so coders cannot judge its candidates")
    s.add_argument("--seed", type=int, default=SEED)
    s.add_argument("--corpora", type=Path, default=CORPORA)
    add_blind_outputs(s)
    add_coded_parser(sub, "results", "validated candidates per source, and kappa")
    args = ap.parse_args(argv)

    def action() -> None:
        if args.cmd == "sheet":
            key_path = args.key or default_key(args.out)
            pooled = budgeted(read_sheet(args.suggest, ("category", "term", "rank")),
                              read_sheet(args.misses, ("category", "ngram", "part_of_term")),
                              args.per_category, args.exclude_category)
            blind, key = sheet(pooled, corpus_texts(args.corpora), args.seed)
            write_sheet(args.out, BLIND_COLUMNS, blind)
            write_sheet(key_path, KEY_COLUMNS, key)
            counts: dict[str, int] = defaultdict(int)
            for k in key:
                counts[k["source"]] += 1
            print(f"{len(blind)} candidates ({dict(sorted(counts.items()))}) -> {args.out}; "
                  f"key -> {key_path}")
        else:
            print(results(args.key, args.sheets))

    return run(action)


if __name__ == "__main__":
    sys.exit(main())
