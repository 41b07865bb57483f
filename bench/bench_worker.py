"""Where one pool worker's CPU goes, per MB (issue 16, targets 2 and 3): ``engine.process_batch``
over generated, distinct documents with a fresh cache, as a pool worker runs it.

Each pass runs in a fresh interpreter (``--code DIR`` adds another source tree, e.g. an
older commit's ``git archive ... pipeline lexicons``; passes of the trees alternate): it
plans the run (``engine.plan_run``, ``--segmenter``), builds the tokenizer and the matcher
(a forked worker inherits both), then times ``process_batch`` over all the documents, in
batches of ``--batch`` documents, with ``time.process_time`` (CPU of this process) and a
fresh cache folder. The CPU of the parts is taken by wrapping the functions the batch calls
(read, cut, units, matcher, scorer, the cache entries, the rows into Arrow): each part's
own CPU, in ms per MB of input. The best of the passes of each tree is printed (the machine
is shared: the minimum is the least disturbed).

With ``--profile`` one more pass of the first tree runs under cProfile and prints its top
functions by own time.

Usage: python bench/bench_worker.py [--mb 10] [--segmenter jieba-rs|jieba] [--passes 3]
       [--batch 40] [--code DIR ...] [--profile]
(the jieba path cuts ~1 s/MB: ``--mb 3`` is enough there.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

#: One pass (argv: code dir, corpus, cache, segmenter, batch size, profile 0/1): one JSON line.
PASS = r'''
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from pipeline import engine, segment, score, cache, ingest, match
from pipeline.config import Settings

corpus, cache_dir, segmenter = Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
batch, profile = int(sys.argv[5]), sys.argv[6] == "1"
s = Settings(corpus=corpus, corpus_name="bench", out=cache_dir.parent / "out", cache=cache_dir,
             segmenter=segmenter, workers=1, report=False)
plan = engine.plan_run(s)
tok = plan.tokenizer.build()
tok.cut("预热")
matcher = engine._matcher(plan.lexicon)
size = sum(src.abspath.stat().st_size for src in plan.sources)

parts = {}
depth = [0]

def timed(owner, name, label):
    fn = getattr(owner, name)
    def inner(*a, **k):
        c0 = time.process_time()
        depth[0] += 1
        try:
            return fn(*a, **k)
        finally:
            depth[0] -= 1
            parts[label] = parts.get(label, 0.0) + time.process_time() - c0
    setattr(owner, name, inner)

# (nested parts are reported with their callees' time included; see the labels)
timed(ingest, "read_source", "read_source")
timed(type(tok), "cut", "cut (segmenter)")
timed(segment, "units_from_lengths", "units_from_lengths")
timed(segment.SegmentCache, "put", "segment cache put")
timed(segment, "units_cached", "units_cached (cut+units+put)")
timed(type(matcher), "find", "matcher.find")
timed(score, "score_units", "score_units")
timed(cache, "write_json", "cache.write_json")
timed(cache, "write", "cache.write (all entries)")
timed(engine.BatchResult, "flush", "rows -> Arrow (flush)")
timed(engine.BatchResult, "columnar", "rows -> Arrow (columnar, incl. flush)")
timed(engine, "_document_row", "_document_row")
timed(score, "rows_with_id", "rows_with_id")
timed(score.DocScore, "to_json", "DocScore.to_json")

import gc
gc.collect()
c0 = time.process_time()
t0 = os.times()
if profile:
    import cProfile, pstats, io
    pr = cProfile.Profile()
    pr.enable()
srcs = list(plan.sources)
for i in range(0, len(srcs), batch):
    out = engine.process_batch(plan, srcs[i:i + batch])
total = time.process_time() - c0
t1 = os.times()
parts["(kernel time, all parts)"] = t1.system - t0.system
if profile:
    pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(40)
    sys.stderr.write(buf.getvalue())
print(json.dumps({"bytes": size, "docs": len(srcs), "total": total, "parts": parts}))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--segmenter", default="jieba-rs")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--code", action="append", default=[], help="another source tree")
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    from bench_speed import build_corpus

    trees = [str(REPO)] + [str(Path(c).resolve()) for c in args.code]
    base = Path(tempfile.mkdtemp(prefix="mobilize-worker-"))
    try:
        corpus = base / "corpus"
        files, size = build_corpus(corpus, args.mb, seed=300)
        print(f"{len(files)} documents, {size / 1e6:.2f} MB, segmenter {args.segmenter}; load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
        script = base / "pass.py"
        script.write_text(PASS, encoding="utf-8")
        best: dict[str, dict] = {}
        for p in range(args.passes + (1 if args.profile else 0)):
            profile = args.profile and p == args.passes
            for tree in (trees[:1] if profile else trees):
                cache = base / "cache"
                shutil.rmtree(cache, ignore_errors=True)
                done = subprocess.run([sys.executable, str(script), tree, str(corpus), str(cache),
                                       args.segmenter, str(args.batch), "1" if profile else "0"],
                                      capture_output=True, text=True, check=False)
                if done.returncode:
                    raise SystemExit(done.stderr[-3000:])
                got = json.loads(done.stdout.strip().splitlines()[-1])
                if profile:
                    print(done.stderr)
                    continue
                mb = got["bytes"] / 1e6
                print(f"  pass {p + 1} {tree}: {got['total'] / mb * 1000:.0f} ms/MB", flush=True)
                old = best.get(tree)
                if old is None or got["total"] < old["total"]:
                    best[tree] = got
        names = sorted({k for g in best.values() for k in g["parts"]})
        print(f"\nms of CPU per MB, best pass of each tree; load "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'part':42s}" + "".join(f"{Path(t).name[:14]:>16s}" for t in trees))
        for name in ["process_batch, all of it"] + names:
            row = f"{name:42s}"
            for t in trees:
                g = best[t]
                v = g["total"] if name.startswith("process_batch") else g["parts"].get(name)
                cell = "" if v is None else f"{v / (g['bytes'] / 1e6) * 1000:.1f}"
                row += f"{cell:>16s}"
            print(row)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
