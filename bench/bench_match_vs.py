"""Matching before/after: the same hits, and CPU ms per MB, against another revision's matcher.

    python bench/bench_match_vs.py [--rev ce59748] [--passes 6] [--lexicon PATH]

Loads ``pipeline/match.py`` as it is at git revision ``--rev`` (``git show``, into a
temporary module) beside the working tree's, builds both matchers on the same lexicon
(default ``lexicons/mobilize.yaml``), and on each of the four shared Chinese corpora
(../shared/corpora, normalised with ``pipeline.ingest.load_corpus``):

1. compares ``Matcher.find`` of every document, hit by hit (it exits 1, naming the first
   differing document, when any hit differs);
2. times ``Matcher.find`` over the corpus, old and new interleaved (old, new, old, new ...),
   ``--passes`` times each, and prints the best CPU time (``time.process_time``) of each as ms
   per MB of UTF-8 normalised text, and their ratio. CPU time, best of interleaved passes, is
   the figure that holds on a shared machine; the load average is printed beside it.

Prints figures; asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon
from pipeline.match import Matcher

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "corpora"
CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "social-security-policy-zh",
           "npc-resolutions-gwr-zh")


def _old_module(rev: str):  # noqa: ANN202 - a module object
    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:pipeline/match.py"],
                            check=True, capture_output=True, text=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"match_{rev}.py"
        path.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location(f"match_{rev}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    return mod


def _cpu(fn, texts: list[str]) -> float:  # noqa: ANN001
    c0 = time.process_time()
    for t in texts:
        fn(t)
    return time.process_time() - c0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default="ce59748", help="the revision to compare against")
    parser.add_argument("--passes", type=int, default=6, help="interleaved passes of each")
    parser.add_argument("--lexicon", type=Path, default=ROOT / "lexicons" / "mobilize.yaml")
    args = parser.parse_args()
    lex = load_lexicon(args.lexicon)
    old = _old_module(args.rev).Matcher(lex)
    new = Matcher(lex)
    print(f"lexicon {lex.name} {lex.version}; old = {args.rev}, new = working tree; "
          f"load {os.getloadavg()[0]:.1f}")
    total_old = total_new = total_mb = 0.0
    for name in CORPORA:
        texts = [d.text for d in load_corpus(SHARED / name).documents]
        mb = sum(len(t.encode("utf-8")) for t in texts) / 1e6
        hits = 0
        for i, t in enumerate(texts):
            a, b = old.find(t), new.find(t)
            if [tuple(h) for h in a] != [tuple(h) for h in b]:
                print(f"{name}: document {i}: hits differ ({len(a)} before, {len(b)} after)")
                return 1
            hits += len(a)
        best_old = best_new = float("inf")
        for _ in range(args.passes):
            best_old = min(best_old, _cpu(old.find, texts))
            best_new = min(best_new, _cpu(new.find, texts))
        total_old += best_old
        total_new += best_new
        total_mb += mb
        print(f"{name}: {len(texts)} documents, {mb:.2f} MB, {hits} hits, same before/after; "
              f"CPU {best_old / mb * 1000:.1f} -> {best_new / mb * 1000:.1f} ms/MB "
              f"(x{best_old / best_new:.2f})")
    print(f"all four: {total_mb:.2f} MB, CPU {total_old / total_mb * 1000:.1f} -> "
          f"{total_new / total_mb * 1000:.1f} ms/MB (x{total_old / total_new:.2f}); "
          f"load {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
