"""Matcher throughput on the shared Chinese corpora (prints figures; asserts nothing).

    python bench/bench_match.py [--lexicon PATH] [--repeat N]

Reads ../shared/corpora (normalised with pipeline.ingest.load_corpus), builds a
Matcher once, then times Matcher.find and Matcher.count over every document,
best of five runs, and prints MB/s of wall and of CPU time (UTF-8 bytes of
normalised text; CPU time is the steadier figure on a shared machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from pipeline.config import DEFAULT_LEXICON
from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpora"
CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "social-security-policy-zh",
           "npc-resolutions-gwr-zh")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = DEFAULT_LEXICON if DEFAULT_LEXICON.is_file() else \
        ROOT / "tests" / "fixtures" / "lexicons" / "seed.yaml"
    parser.add_argument("--lexicon", type=Path, default=default)
    parser.add_argument("--repeat", type=int, default=1, help="pass over the texts N times")
    args = parser.parse_args()
    texts = [d.text for name in CORPORA for d in load_corpus(SHARED / name).documents]
    mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6 * args.repeat
    lex = load_lexicon(args.lexicon)
    t0 = time.perf_counter()
    matcher = Matcher(lex)
    build = time.perf_counter() - t0
    literals = sum(1 for t in lex.terms() if t.pattern is None)
    print(f"lexicon {lex.name} {lex.version}: {literals} literal terms, "
          f"{len(lex.terms()) - literals} patterns; automaton built in {build * 1000:.1f} ms")
    print(f"text: {len(texts)} documents, {mb:.1f} MB UTF-8 (x{args.repeat})")
    for method in ("find", "count"):
        fn = getattr(matcher, method)
        best = best_cpu = float("inf")
        hits = 0
        for _ in range(5):
            t0, c0 = time.perf_counter(), time.process_time()
            hits = 0
            for _ in range(args.repeat):
                for text in texts:
                    hits += len(fn(text)) if method == "find" else sum(fn(text).values())
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        print(f"Matcher.{method}: {hits} hits in {best:.2f} s wall = {mb / best:.1f} MB/s "
              f"({best_cpu:.2f} s CPU = {mb / best_cpu:.1f} MB/s per core)")


if __name__ == "__main__":
    main()
