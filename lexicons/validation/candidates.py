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
more coders, Cohen's kappa (scikit-learn) per pair, overall and per source.

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
import csv
import random
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from pipeline.errors import MobilizeError

CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
SHARED = ("gwr-national-zh", "gwr-provincial-zh", "npc-resolutions-gwr-zh",
          "social-security-policy-zh")
BLIND_COLUMNS = ("candidate_id", "category", "candidate", "kwic1", "kwic2", "kwic3",
                 "judgement", "note")
KEY_COLUMNS = ("candidate_id", "source")
SOURCES = ("misses", "word2vec", "both")
SEED = 20261204
KWIC = 3
#: characters kept either side of a KWIC match (within its paragraph)
CONTEXT = 30
TERM, NO = "term", "no"


def _read(path: Path, needed: Sequence[str]) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or ())]
            if missing:
                raise MobilizeError(f"no column {', '.join(missing)}", path=path, line=1,
                                    fix=f"the file needs the columns {', '.join(needed)}")
            return list(reader)
    except OSError as e:
        raise MobilizeError(f"cannot read the file ({e.strerror})", path=path,
                            fix="give the path of an existing CSV file") from e


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


def read_coded(path: Path, key: Mapping[str, str]) -> dict[str, str]:
    """candidate_id -> ``term`` / ``no`` of one coded blind sheet, checked against the key."""
    out: dict[str, str] = {}
    for n, r in enumerate(_read(path, ("candidate_id", "judgement")), start=2):
        cid = r["candidate_id"].strip()
        if cid not in key:
            raise MobilizeError(f"candidate_id {cid!r} is not in the key", path=path, line=n,
                                fix="code the blind sheet drawn with this key")
        if cid in out:
            raise MobilizeError(f"candidate_id {cid} is coded twice", path=path, line=n,
                                fix="keep one row per candidate")
        value = r["judgement"].strip().lower()
        if value not in (TERM, NO):
            raise MobilizeError(f"judgement {r['judgement']!r} of {cid}", path=path, line=n,
                                fix="write term or no")
        out[cid] = value
    missing = sorted(set(key) - set(out))
    if missing:
        raise MobilizeError(f"{len(missing)} candidates of the key are not on the sheet "
                            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
                            path=path, fix="code every row of the blind sheet")
    return out


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
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.proportion import proportion_confint

    key: dict[str, str] = {}
    for n, r in enumerate(_read(key_path, KEY_COLUMNS), start=2):
        if r["source"] not in SOURCES:
            raise MobilizeError(f"source {r['source']!r}", path=key_path, line=n,
                                fix="the key's source is misses, word2vec or both")
        key[r["candidate_id"].strip()] = r["source"]
    coded = [read_coded(s, key) for s in sheets]
    cands: dict[str, tuple[str, str]] = {}
    for r in _read(sheets[0], ("candidate_id", "category", "candidate")):
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
                    agree = sum(p == q for p, q in zip(x, y, strict=True)) / len(ids)
                    kappa = ("n/a (one label only)" if len(set(x) | set(y)) < 2 else
                             f"{cohen_kappa_score(x, y, labels=[TERM, NO]):.2f}")
                    lines.append(f"| {sheets[a].name} / {sheets[b].name} | {part} | "
                                 f"{len(ids)} | {agree:.2f} | {kappa} |")
    return "\n".join(lines)


def corpus_texts(corpora: Path, names: Sequence[str] = SHARED) -> list[tuple[str, str, str]]:
    """(corpus, doc_id, normalised text) of every document, in corpus and doc_id order."""
    from pipeline.ingest import load_corpus

    out = []
    for name in sorted(names):
        corpus = load_corpus(corpora / name, warn=False)
        out += sorted((name, d.doc_id, d.text) for d in corpus.documents)
    return out


def _write(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


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
    s.add_argument("--out", type=Path, required=True, help="the blind sheet (*-blind.csv)")
    s.add_argument("--key", type=Path, help="the key (default: the sheet's name, -key)")
    r = sub.add_parser("results", help="validated candidates per source, and kappa")
    r.add_argument("--key", type=Path, required=True)
    r.add_argument("sheets", type=Path, nargs="+", help="coded copies of the blind sheet")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "sheet":
            if args.key is None and "-blind" not in args.out.stem:
                raise MobilizeError("cannot name the key: the sheet's name has no '-blind'",
                                    path=args.out, fix="name it *-blind.csv or give --key")
            key_path = args.key or args.out.with_name(
                args.out.stem.replace("-blind", "-key") + args.out.suffix)
            pooled = budgeted(_read(args.suggest, ("category", "term", "rank")),
                              _read(args.misses, ("category", "ngram", "part_of_term")),
                              args.per_category, args.exclude_category)
            blind, key = sheet(pooled, corpus_texts(args.corpora), args.seed)
            _write(args.out, BLIND_COLUMNS, blind)
            _write(key_path, KEY_COLUMNS, key)
            counts = defaultdict(int)
            for k in key:
                counts[k["source"]] += 1
            print(f"{len(blind)} candidates ({dict(sorted(counts.items()))}) -> {args.out}; "
                  f"key -> {key_path}")
        else:
            print(results(args.key, args.sheets))
    except MobilizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
