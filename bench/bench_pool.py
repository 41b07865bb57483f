"""Where a jieba run's pool spends its time and CPU (issue 16, target 3), against one
``jieba.lcut`` process over the same files.

Each pass runs, in a fresh interpreter and with a fresh cache, ``engine.run_local`` with
``--segmenter jieba`` on ``--workers`` processes (the run ``mobilize run --segmenter jieba
--workers 2 --engine local --no-report`` does, without the command line's own start-up), and
records, without changing what the run does:

- every batch: the worker's pid, when it started and ended (``time.perf_counter``, one clock
  for all processes), its bytes and the worker's CPU (``time.process_time``) before and after;
- the run's own process: its CPU and the wall time before the first batch started (start-up:
  plan, dictionary, pool), during the pool, and after the last batch ended (assemble, write).

It prints, per pass: the run's wall time and total CPU (this process, the forked helper and
the workers, from ``os.times`` of the reaped children) against the baseline's (one process:
``import jieba``, its dictionary from jieba's warm cache, ``jieba.lcut`` per document); each
worker's busy and idle seconds over the pool's span, its start-up (fork to its first batch)
and the tail (from the first worker's last batch to the last one's); and the ratio of the
two wall times, with the machine's load average. Passes alternate run and baseline
(``--repeat``). Absolute seconds depend on the load; the CPU accounting much less.

With ``--floor`` each pass also times the best any pool of ``--workers`` can do on this
machine: that many plain ``jieba.lcut`` processes at once, each on its share of the files.
Two processes at once need not each cut as fast as one alone (shared caches, memory
bandwidth, a virtual machine's cores): the baseline/floor ratio is the ceiling of target 3.

Usage: python bench/bench_pool.py [--mb 20] [--workers 2] [--repeat 2] [--corpus DIR]
       [--code DIR ...] [--floor]
(``--corpus``: an existing folder of ``.txt`` files instead of a generated one; ``--code``:
the source tree to run, repeatable, e.g. an older commit's ``git archive`` of ``pipeline``
and ``lexicons`` against this one.)
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

#: The instrumented run (argv: corpus, out, cache root, workers): prints one JSON line.
RUN = r'''
import json, os, sys, time
from pathlib import Path
t_start = time.perf_counter()
sys.path.insert(0, sys.argv[5])
from pipeline import engine
from pipeline.config import Settings

import gc, resource
events = []  # (pid, start, end, cpu before, cpu after, bytes, gc s, gc runs, minor faults)
inner = engine.process_batch
gc_time = [0.0, 0, 0.0]

def on_gc(phase, info):
    if phase == "start":
        gc_time[2] = time.perf_counter()
    else:
        gc_time[0] += time.perf_counter() - gc_time[2]
        gc_time[1] += 1

gc.callbacks.append(on_gc)

def process_batch(plan, batch):
    t0, c0 = time.perf_counter(), time.process_time()
    out = inner(plan, batch)
    size = sum(s.abspath.stat().st_size for s in batch)
    out.stats.seconds["_event"] = [os.getpid(), t0, time.perf_counter(), c0,
                                   time.process_time(), size, gc_time[0], gc_time[1],
                                   resource.getrusage(resource.RUSAGE_SELF).ru_minflt]
    return out

process_batch.__module__, process_batch.__qualname__ = "pipeline.engine", "process_batch"
engine.process_batch = process_batch
add = engine.RunStats.add
def keep(self, other):
    ev = other.seconds.pop("_event", None)
    if ev is not None:
        events.append(ev)
    add(self, other)
engine.RunStats.add = keep
marks = {}
def marked(name, fn):
    def inner_(*a, **k):
        marks[name + " from"] = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            marks[name + " to"] = time.perf_counter()
    return inner_
for name in ("_helper_result", "_pool_context", "assemble", "write_outputs"):
    setattr(engine, name, marked(name, getattr(engine, name)))

corpus, out, cache, workers = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4])
s = Settings(corpus=corpus, corpus_name="bench", out=out, cache=cache, segmenter="jieba",
             workers=workers, report=False)
res = engine.run_local(s)
t_end = time.perf_counter()
t = os.times()
print(json.dumps({"start": t_start, "end": t_end, "events": events,
                  "self_cpu": t.user + t.system, "children_cpu": t.children_user + t.children_system,
                  "seconds": res.stats.seconds, "marks": marks, "segmented": res.stats.segmented}))
'''

BASELINE = r'''
import os, sys, time
import jieba
jieba.setLogLevel(60)
jieba.initialize()
c0 = time.process_time()
files = open(sys.argv[1], encoding="utf-8").read().split("\n")
for f in files:
    with open(f, "rb") as fh:
        jieba.lcut(fh.read().decode("utf-8"))
t = os.times()
print(t.user + t.system, time.process_time() - c0)
'''


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.1f} {b:.1f} {c:.1f}"


def run_once(base: Path, corpus: Path, workers: int, k: int, code: Path = REPO) -> dict:
    import time

    root = base / f"run{k}"
    env = dict(os.environ, MOBILIZE_CONFIG_DIR=str(root / "config"),
               MOBILIZE_CACHE_DIR=str(root / "cache"), MOBILIZE_HOME=str(root / "home"))
    for sub in ("config", "cache", "home"):
        (root / sub).mkdir(parents=True)
    script = base / "run.py"
    script.write_text(RUN, encoding="utf-8")
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, str(script), str(corpus), str(root / "out"),
                             str(root / "cache"), str(workers), str(code)], env=env,
                            stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"the run failed ({proc.returncode})")
    got = json.loads(out.strip().splitlines()[-1])
    got["wall"] = wall
    shutil.rmtree(root, ignore_errors=True)
    return got


def baseline_once(base: Path, files: list[Path]) -> tuple[float, float, float]:
    import time

    lst = base / "files.txt"
    lst.write_text("\n".join(map(str, files)), encoding="utf-8")
    script = base / "baseline.py"
    script.write_text(BASELINE, encoding="utf-8")
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(script), str(lst)], capture_output=True,
                         text=True, check=True).stdout.split()
    return time.perf_counter() - t0, float(out[0]), float(out[1])


def floor_once(base: Path, files: list[Path], workers: int) -> tuple[float, float]:
    """The best a pool of ``workers`` can do here: that many plain ``jieba.lcut`` processes
    at once, each on its share of the files (every ``workers``-th, as balanced as the sizes
    allow): the wall time until the last ends and their total CPU."""
    import time

    script = base / "baseline.py"
    script.write_text(BASELINE, encoding="utf-8")
    lists = []
    for w in range(workers):
        lists.append(base / f"floor-{w}.txt")
        lists[-1].write_text("\n".join(map(str, files[w::workers])), encoding="utf-8")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, str(script), str(lst)], stdout=subprocess.PIPE,
                              text=True) for lst in lists]
    cpu = sum(float(p.communicate()[0].split()[0]) for p in procs)
    return time.perf_counter() - t0, cpu


def report(r: dict, workers: int) -> None:
    ev = sorted(r["events"], key=lambda e: e[1])
    first, last = ev[0][1], max(e[2] for e in ev)
    span = last - first
    pids = sorted({e[0] for e in ev})
    total_cpu = r["self_cpu"] + r["children_cpu"]
    print(f"    run: wall {r['wall']:.2f} s (in-process {r['end'] - r['start']:.2f}), CPU "
          f"{total_cpu:.2f} s (run's process {r['self_cpu']:.2f}, helper and workers "
          f"{r['children_cpu']:.2f})")
    print(f"    before the first batch {first - r['start']:.2f} s; pool span {span:.2f} s; "
          f"after the last batch {r['end'] - last:.2f} s; stage seconds "
          + ", ".join(f"{k} {v:.2f}" for k, v in r["seconds"].items() if isinstance(v, float)))
    print("    run's process: " + ", ".join(f"{k} +{v - r['start']:.2f}" for k, v in
                                           sorted(r["marks"].items(), key=lambda kv: kv[1])))
    ends = []
    for pid in pids:
        mine = [e for e in ev if e[0] == pid]
        busy = sum(e[2] - e[1] for e in mine)
        cpu = sum(e[4] - e[3] for e in mine)
        ends.append(max(e[2] for e in mine))
        gc_s, gc_n, flt = max((e[6], e[7], e[8]) for e in mine)
        print(f"      its garbage collector: {gc_n} collections, {gc_s:.2f} s; minor page faults "
              f"{flt:,}")
        print(f"    worker {pid}: {len(mine)} batches, {sum(e[5] for e in mine) / 1e6:.1f} MB, "
              f"first batch at +{min(e[1] for e in mine) - first:.2f} s (worker CPU before it "
              f"{min(e[3] for e in mine):.2f} s), busy {busy:.2f} s, idle {span - busy:.2f} s "
              f"of the span, batch CPU {cpu:.2f} s")
    print(f"    tail (first worker's last batch to the last one's): {max(ends) - min(ends):.2f} s;"
          f" batches {len(ev)}")


def main() -> None:
    from bench_speed import build_corpus

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--floor", action="store_true",
                    help="also time the pool's floor: --workers plain jieba.lcut processes at "
                         "once, each on its share of the files")
    ap.add_argument("--code", type=Path, action="append", default=None,
                    help="a source tree whose pipeline package runs (repeatable: each pass runs "
                         "each in turn, e.g. an older commit's `git archive` against this one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as tmp:
        base = Path(tmp)
        if args.corpus:
            corpus = args.corpus
            files = sorted(corpus.glob("*.txt"))
        else:
            corpus = base / "corpus"
            files, _size = build_corpus(corpus, args.mb, seed=300)
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"bench_pool: {len(files)} documents, {mb:.1f} MB, {args.workers} workers; "
              f"load {load()}", flush=True)
        baseline_once(base, files[:1])  # jieba's own dictionary cache, warm
        ratios = []
        for k in range(args.repeat):
            b_wall, b_cpu, b_cut = baseline_once(base, files)
            print(f"  pass {k + 1}: baseline wall {b_wall:.2f} s, CPU {b_cpu:.2f} s (cut "
                  f"{b_cut:.2f}); load {load()}", flush=True)
            if args.floor:
                f_wall, f_cpu = floor_once(base, files, args.workers)
                print(f"    floor ({args.workers} jieba.lcut processes at once, each on its "
                      f"share): wall {f_wall:.2f} s, CPU {f_cpu:.2f} s; baseline/floor "
                      f"{b_wall / f_wall:.2f}x; load {load()}", flush=True)
            for code in args.code or [REPO]:
                print(f"  code {code}:")
                r = run_once(base, corpus, args.workers, k, code)
                report(r, args.workers)
                ratios.append((str(code), b_wall / r["wall"]))
                print(f"    ratio baseline/run (wall) {ratios[-1][1]:.2f}x; CPU run/baseline "
                      f"{(r['self_cpu'] + r['children_cpu']) / b_cpu:.2f}; load {load()}",
                      flush=True)
        print("ratios: " + "; ".join(f"{c} {x:.2f}" for c, x in ratios))


if __name__ == "__main__":
    main()
