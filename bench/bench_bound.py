"""How close to the jieba-rs floor any counting run can get (issue 16, target 2): a ladder of
processes from the floor up to the run, each adding one piece of work a run cannot skip.

Target 2 asks ``mobilize run --segmenter jieba-rs`` to reach >= 60% of the speed of the floor:
reading, decoding and cutting the same files with jieba-rs on the same two processes, and
nothing else (``bench_speed.py``'s ``FLOOR``). This bench times, on ``--mb`` MB of generated,
distinct documents (``bench_speed.build_corpus``), with fresh caches, whole processes:

1. ``floor``: the floor, exactly as ``bench_speed.py`` times it;
2. ``+ normalise``: the text through ``normalize.text`` before the cut (NFKC with its fast
   path, zero-width characters, line breaks, spaces): what makes counts independent of
   full-width forms and layout;
3. ``+ count (pyahocorasick)``: the lexicon's literal terms counted in each text with the
   kept matcher (``automaton.iter``, a ``Counter``);
   ``+ count (ahocorasick_rs)``: the same with ``ahocorasick_rs`` (all of a text's
   leftmost-longest hits from one call), when it is installed (it is not a dependency:
   ``pip install ahocorasick_rs`` to see its rung);
4. ``+ token lengths``: the tokens kept as one NumPy array of their lengths (the
   segmentation cache entry; the rates' denominator comes from it);
5. ``+ cache entries``: each document's three cache entries written through
   ``pipeline.cache.write`` (ingest row, token lengths, scores), as a first run must so that
   the next run reads nothing;
6. ``run``: ``mobilize run --segmenter jieba-rs --workers 2 --engine local --no-report``.

Rungs 4 and 5 build on the fastest count. Every rung below the run still lacks what a run
must also do (patterns, guards, units and scopes, co-occurrence, the tables, the run's own
start-up), so each rung's share of the floor is an upper bound on the run's: when a rung is
below 60%, no run doing that work with these libraries can meet the target. It also prints
the fixed cost (the time on one tiny document) of the floor and of the run, what 60% of the
floor leaves after the top rung, and what two costs no counting run avoids need of it: the
run's fixed costs beyond the floor's, and the seconds its own process spends planning,
assembling and writing the tables beyond a tiny run's (``run.json``'s ``stats.seconds``). Medians of ``--repeat`` rounds; the rungs alternate in
each round; the load average before and after.

Usage: python bench/bench_bound.py [--mb 10,100] [--repeat 3] [--workers 2]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_speed as bs  # noqa: E402

#: The ladder's process (argv: user dictionary, file list, workers, rungs, cache folder, repo).
LADDER = r'''
import collections, multiprocessing as mp, sys
import rjieba

terms = open(sys.argv[1], encoding="utf-8").read().split()
files = [f for f in open(sys.argv[2], encoding="utf-8").read().split("\n") if f]
workers, rungs, cache_dir = int(sys.argv[3]), set(sys.argv[4].split(",")), sys.argv[5]
sys.path.insert(0, sys.argv[6])
jb = rjieba.Jieba()
for t in terms:
    jb.add_word(t, None, None)
    jb.suggest_freq(t)
if "normalise" in rungs:
    from pipeline import normalize
if "pyac" in rungs:
    import ahocorasick
    automaton = ahocorasick.Automaton()
    for i, t in enumerate(terms):
        automaton.add_word(t, i)
    automaton.make_automaton()
if "rsac" in rungs:
    import ahocorasick_rs
    rs = ahocorasick_rs.AhoCorasick(terms, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
if "lengths" in rungs or "cache" in rungs:
    import io
    import numpy as np
    from pathlib import Path
    from pipeline import cache

def work(paths):
    n = 0
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        text = data.decode("utf-8")
        if "normalise" in rungs:
            text = normalize.text(text)
        tokens = jb.cut(text, True)
        counts = None
        if "pyac" in rungs:
            counts = collections.Counter(i for _end, i in automaton.iter(text))
        if "rsac" in rungs:
            counts = collections.Counter(i for i, _s, _e in rs.find_matches_as_indexes(text))
        if "lengths" in rungs or "cache" in rungs:
            lengths = np.fromiter(map(len, tokens), dtype=np.uint32, count=len(tokens))
        if "cache" in rungs:
            key = cache.key(p)
            buf = io.BytesIO()
            np.save(buf, lengths, allow_pickle=False)
            cache.write(Path(cache_dir, "segments", key + ".npy"), buf.getvalue())
            cache.write_json(Path(cache_dir, "ingest", key + ".json"),
                             {"path": p, "chars": len(text), "bytes": len(data)})
            cache.write_json(Path(cache_dir, "scores", key + ".json"),
                             {"tokens": int(lengths.size), "counts": sorted(counts.items())})
        n += len(data)
    return n

if __name__ == "__main__":
    chunks = [files[i::8 * workers] for i in range(8 * workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        print(sum(pool.map(work, chunks, chunksize=1)))
'''


def rungs(have_rs: bool) -> list[tuple[str, str]]:
    """(label, the rungs the process runs); the count rungs before them use the fastest matcher
    available."""
    count = "rsac" if have_rs else "pyac"
    out = [("floor", "floor"), ("+ normalise", "normalise"),
           ("+ count (pyahocorasick)", "normalise,pyac")]
    if have_rs:
        out.append(("+ count (ahocorasick_rs)", "normalise,rsac"))
    out += [("+ token lengths", f"normalise,{count},lengths"),
            ("+ cache entries", f"normalise,{count},lengths,cache")]
    return out


def _serial(man: dict) -> float:
    """The seconds a run spends outside its pool, in its own process: plan, assemble, write."""
    secs = man["stats"]["seconds"]
    return float(sum(secs.get(k, 0.0) for k in ("plan", "assemble", "write")))


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="example: python bench/bench_bound.py --mb 100 --repeat 2")
    ap.add_argument("--mb", default="10,100", help="sizes in MB, comma-separated (default 10,100)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per size (default 3)")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    try:
        import ahocorasick_rs  # noqa: F401
        have_rs = True
    except ImportError:
        have_rs = False
    print(f"bench_bound: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"load average {bs.load()}; ahocorasick_rs "
          f"{'installed' if have_rs else 'not installed (its rung is skipped)'}", flush=True)
    print(f"    {bs.compile_bytecode()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="mobilize-bound-"))
    try:
        userdict = bs.lexicon_terms(base)
        script = base / "ladder.py"
        script.write_text(LADDER, encoding="utf-8")
        ladder = rungs(have_rs)

        floor_script = base / "floor.py"
        floor_script.write_text(bs.FLOOR, encoding="utf-8")

        def rung(listing: Path, what: str, tag: str) -> float:
            if what == "floor":  # (the floor itself, the very script target 2 times)
                return bs.timed([bs.PY, str(floor_script), str(userdict), str(listing),
                                 str(args.workers)])[0]
            cache_dir = base / f"cache-{tag}"
            t, _ = bs.timed([bs.PY, str(script), str(userdict), str(listing), str(args.workers),
                             what, str(cache_dir), str(bs.REPO)])
            shutil.rmtree(cache_dir, ignore_errors=True)
            return t

        # Fixed costs: one tiny document, the floor's process and the run.
        tiny = base / "tiny" / "corpus"
        tiny.mkdir(parents=True)
        (tiny / "2024-a.txt").write_text("积极应对人口老龄化,完善养老保险制度。\n", encoding="utf-8")
        tiny_list = base / "tiny" / "files.txt"
        tiny_list.write_text(str(tiny / "2024-a.txt"), encoding="utf-8")
        fixed_floor = statistics.median(rung(tiny_list, "floor", "tiny") for _ in range(3))
        tiny_runs = [bs.mobilize_run(base, f"tiny-{i}", tiny, "--segmenter", "jieba-rs",
                                     "--workers", str(args.workers)) for i in range(3)]
        fixed_run = statistics.median(wall for wall, _ in tiny_runs)
        tiny_serial = statistics.median(_serial(man) for _, man in tiny_runs)
        print(f"\nfixed costs (one tiny document, medians of 3): floor {fixed_floor:.2f} s, "
              f"run {fixed_run:.2f} s", flush=True)

        for mb in [float(x) for x in args.mb.split(",") if x.strip()]:
            times: dict[str, list[float]] = {label: [] for label, _ in ladder}
            times["run"] = []
            serial: list[float] = []  # the run's plan + assemble + write (run.json), seconds
            size = 0
            print(f"\n{mb:.0f} MB of distinct documents, {args.workers} workers; load before "
                  f"{bs.load()}", flush=True)
            for r in range(args.repeat):
                corpus = base / f"c{r}" / "corpus"
                files, size = bs.build_corpus(corpus, mb, seed=300 + r)
                listing = base / f"c{r}" / "files.txt"
                listing.write_text("\n".join(map(str, files)), encoding="utf-8")
                for label, what in ladder:
                    times[label].append(rung(listing, what, f"{r}"))
                wall, man = bs.mobilize_run(base, f"run-{r}", corpus, "--segmenter", "jieba-rs",
                                            "--workers", str(args.workers))
                assert man["stats"]["segmented"] == len(files), man["stats"]
                times["run"].append(wall)
                serial.append(_serial(man))
                shutil.rmtree(base / f"c{r}", ignore_errors=True)
            floor = statistics.median(times["floor"])
            print(f"    {'rung':28s} {'seconds':>8s} {'share of the floor':>19s}   rounds")
            for label in times:
                t = statistics.median(times[label])
                print(f"    {label:28s} {t:8.2f} {floor / t:18.0%}    "
                      f"{', '.join(f'{x:.2f}' for x in times[label])}", flush=True)
            budget = floor / 0.6
            last = statistics.median(times[ladder[-1][0]])
            extra = fixed_run - fixed_floor
            ser = max(0.0, statistics.median(serial) - tiny_serial)  # (beyond the fixed cost)
            print(f"    60% of the floor ({size / 1e6:.0f} MB) allows a run of {budget:.2f} s. The "
                  f"top rung takes {last:.2f} s, leaving {budget - last:+.2f} s for the rest; the "
                  f"run's fixed costs beyond the floor's ({extra:.2f} s) and what its plan, "
                  f"assemble and write take beyond a tiny run's ({ser:.2f} s, run.json) alone "
                  f"need "
                  f"{extra + ser:.2f} s. Load after {bs.load()}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
