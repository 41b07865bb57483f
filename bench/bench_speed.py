"""The engine's speed targets (issue 16), each as a ratio measured in this one invocation.

Every figure is a whole process, timed from outside (interpreter start-up, imports and
dictionary loads included, as a researcher waits for them), with fresh caches and texts no
cache has seen:

1. **Default first run vs the naive script**, on each shared Chinese corpus on its own:
   ``mobilize run --corpus C --engine local --no-report`` (the default configuration: no
   config file, a fresh ``MOBILIZE_CACHE_DIR``) against the script a researcher writes
   (``jieba.load_userdict`` with the lexicon's literal terms, ``jieba.lcut`` per document,
   a ``Counter``; jieba's own dictionary cache warm, as on a researcher's second try).
   Target: >= 1.5x on gwr-national-zh, >= 1.2x on each corpus.
2. **jieba-rs end to end vs the jieba-rs floor** on ``--rs-mb`` MB (default 10 and 100) of
   generated, distinct documents: ``mobilize run --segmenter jieba-rs`` against a process that only
   reads, decodes and cuts the same files with jieba-rs (the lexicon's terms added) on the
   same 2 worker processes. Target: the run reaches >= 60% of the floor's speed, at each
   size. With two sizes it also prints what each further MB costs the run and the floor
   (their marginal speeds) and the fixed costs this implies (the time at 0 MB).
   Beside them it times a **counting bound**: the floor plus the least a term count can add
   with the kept libraries (pyahocorasick's automaton of the lexicon's literal terms run over
   each text, its hits counted in a ``Counter``; no pattern, guard, table or cache). No run
   that counts terms that way can be faster than it, so its share of the floor is as close to
   the target as a pipeline of kept libraries gets (not a target itself).
3. **jieba, 2 workers vs one ``jieba.lcut`` process** on ``--jieba-mb`` MB (default 20):
   ``mobilize run --segmenter jieba --workers 2`` against one process calling ``jieba.lcut``
   per document (jieba's dictionary cache warm). The baseline is cut in two halves of the
   files, one just before the run and one just after it (the machine's speed drifts over
   minutes), and counted as one process: both halves' cutting plus one start-up.
   Target: >= 1.6x. Each of the ``--repeat`` pairs is baseline half, run, baseline half.

Pairs are run ``--repeat`` times, alternating, and the median ratio is the figure; the load
average (``os.getloadavg``) is printed before and after each target. The cores are shared
with other work: read each figure with its load.

With ``--agreement`` it also prints how often jieba and jieba-rs tokenise the shared corpora
alike (the figures docs/engine.md states for the default segmenter).

Before timing, mobilize's own modules are compiled to bytecode, as an installed package has
them (``compile_bytecode``): where ``PYTHONDONTWRITEBYTECODE`` is set, an editable install
would otherwise compile the package from source in every process it starts.

Usage: python bench/bench_speed.py [--quick] [--repeat 3] [--rs-mb 10,100] [--jieba-mb 20]
       [--only 1|2|3 ...] [--agreement]
``--quick`` measures smaller sizes (3 MB and 6 MB, one repetition): a smoke test of the
bench, not the issue's figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOBILIZE_SHARED", REPO.parent / "shared")) / "corpora"
CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "social-security-policy-zh",
           "npc-resolutions-gwr-zh")
PY = sys.executable
MOBILIZE = str(Path(PY).with_name("mobilize"))

#: The script a researcher writes (argv: user dictionary, corpus folder, its .txt files).
NAIVE = r'''
import sys
from collections import Counter
from pathlib import Path
import jieba

jieba.setLogLevel(60)
userdict, corpus = sys.argv[1], Path(sys.argv[2])
jieba.load_userdict(userdict)
terms = set(Path(userdict).read_text(encoding="utf-8").split())
counts = {}
for p in sorted(corpus.glob("*.txt")):
    c = Counter(t for t in jieba.lcut(p.read_text(encoding="utf-8")) if t in terms)
    counts[p.stem] = c
print(sum(sum(c.values()) for c in counts.values()))
'''

#: One process calling jieba.lcut per document (argv: a file listing the documents). Prints
#: the seconds spent cutting (after the imports and the dictionary load).
BASELINE = r'''
import sys, time
import jieba

jieba.setLogLevel(60)
jieba.initialize()
files = open(sys.argv[1], encoding="utf-8").read().split("\n")
t0 = time.perf_counter()
for f in files:
    with open(f, "rb") as fh:
        jieba.lcut(fh.read().decode("utf-8"))
print(time.perf_counter() - t0)
'''

#: The jieba-rs floor (argv: terms file, a file listing the documents, workers): the run's
#: tokenizer built once, then the files read, decoded and cut on a pool of forked workers,
#: as the engine's pool does; nothing else.
FLOOR = r'''
import multiprocessing as mp
import sys
import rjieba

terms = open(sys.argv[1], encoding="utf-8").read().split()
files = open(sys.argv[2], encoding="utf-8").read().split("\n")
workers = int(sys.argv[3])
jb = rjieba.Jieba()
for t in terms:
    jb.add_word(t, None, None)
    jb.suggest_freq(t)

def cut(paths):
    n = 0
    for p in paths:
        with open(p, "rb") as fh:
            data = fh.read()
        jb.cut(data.decode("utf-8"), True)
        n += len(data)
    return n

if __name__ == "__main__":
    chunks = [files[i::8 * workers] for i in range(8 * workers)]
    with mp.get_context("fork").Pool(workers) as pool:
        print(sum(pool.map(cut, chunks, chunksize=1)))
'''

#: The counting bound (same argv): the floor, plus pyahocorasick's automaton of the same terms
#: run over each text and its hits counted. Nothing else.
BOUND = FLOOR.replace("""jb = rjieba.Jieba()
""", """jb = rjieba.Jieba()
import collections
import ahocorasick
automaton = ahocorasick.Automaton()
for i, t in enumerate(terms):
    automaton.add_word(t, i)
automaton.make_automaton()
""").replace("""        jb.cut(data.decode("utf-8"), True)
""", """        text = data.decode("utf-8")
        jb.cut(text, True)
        collections.Counter(i for _end, i in automaton.iter(text))
""")
assert BOUND.count("automaton.iter") == 1


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds of a whole process, and its stdout; a failure stops the bench."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):  # 1: some documents failed (not expected here)
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


def fresh_env(base: Path, tag: str) -> dict[str, str]:
    """A researcher's first run: no config file, empty caches (each run its own)."""
    root = base / f"env-{tag}"
    for sub in ("config", "cache", "home"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(MOBILIZE_CONFIG_DIR=str(root / "config"), MOBILIZE_CACHE_DIR=str(root / "cache"),
               MOBILIZE_HOME=str(root / "home"), COLUMNS="100")
    return env


def mobilize_run(base: Path, tag: str, corpus: Path, *extra: str) -> tuple[float, dict]:
    env = fresh_env(base, tag)
    out = base / f"out-{tag}"
    wall, _ = timed([MOBILIZE, "run", "--corpus", str(corpus), "--out", str(out), "--engine",
                     "local", "--no-report", *extra], env)
    man = json.loads((out / corpus.name / "run.json").read_text(encoding="utf-8"))
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(base / f"env-{tag}", ignore_errors=True)
    return wall, man


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "FAIL"


def build_corpus(dst: Path, mb: float, seed: int) -> tuple[list[Path], int]:
    """Copies of the shared Chinese documents until ``mb`` MB, each with its own first line (so
    every text and its sha256 is distinct): the files (in a fixed pseudo-random order by name)
    and their bytes."""
    files = sorted(p for c in CORPORA for p in (SHARED / c).glob("*.txt"))
    if not files:
        raise SystemExit(f"no shared corpora at {SHARED}")
    texts = [(f"{p.parent.name}-{p.stem}", p.read_text(encoding="utf-8")) for p in files]
    dst.mkdir(parents=True)
    target, written, k, out = mb * 1_000_000, 0, 0, []
    while written < target:
        for stem, text in texts:
            data = f"基准副本{seed}-{k}\n{text}".encode()
            path = dst / f"r{seed}-{k:03d}-{stem}.txt"
            path.write_bytes(data)
            out.append(path)
            written += len(data)
            if written >= target:
                break
        k += 1
    out.sort(key=lambda f: hashlib.sha256(f.name.encode()).digest())
    return out, written


def lexicon_terms(base: Path) -> Path:
    """The default lexicon's literal terms, one a line (the naive script's user dictionary)."""
    sys.path.insert(0, str(REPO))
    from pipeline.config import DEFAULT_LEXICON
    from pipeline.lexicon import load_lexicon

    path = base / "userdict.txt"
    path.write_text("\n".join(load_lexicon(DEFAULT_LEXICON).user_words()) + "\n",
                    encoding="utf-8")
    return path


def target_first_run(base: Path, userdict: Path, repeat: int) -> list[tuple[str, bool]]:
    naive = base / "naive.py"
    naive.write_text(NAIVE, encoding="utf-8")
    timed([PY, str(naive), str(userdict), str(SHARED / CORPORA[-1])])  # jieba's cache, warm
    print(f"\n[1] default first run (mobilize run --engine local --no-report, fresh cache) vs "
          f"the naive script; load before {load()}", flush=True)
    results = []
    for name in CORPORA:
        corpus = SHARED / name
        mb = sum(p.stat().st_size for p in corpus.glob("*.txt")) / 1e6
        ratios, ts_naive, ts_run, seg = [], [], [], ""
        for i in range(repeat):
            t_naive, _ = timed([PY, str(naive), str(userdict), str(corpus)])
            t_run, man = mobilize_run(base, f"first-{name}-{i}", corpus)
            seg = f"{man['segmenter']['name']} {man['segmenter']['version']}"
            ts_naive.append(t_naive)
            ts_run.append(t_run)
            ratios.append(t_naive / t_run)
        ratio = statistics.median(ratios)
        target = 1.5 if name == "gwr-national-zh" else 1.2
        ok = ratio >= target
        results.append((f"first run {name}", ok))
        print(f"    {name} ({mb:.2f} MB): naive {statistics.median(ts_naive):.2f} s, "
              f"run {statistics.median(ts_run):.2f} s ({seg}); ratio {ratio:.2f}x "
              f"(runs: {', '.join(f'{r:.2f}' for r in ratios)}; target >= {target}x) "
              f"{verdict(ratio, target)}; load {load()}", flush=True)
    return results


def target_rs_floor(base: Path, userdict: Path, sizes: list[float], repeat: int,
                    workers: int) -> list[tuple[str, bool]]:
    """Target 2 at each size of ``sizes`` (MB); with two sizes or more, also the marginal
    speeds between the smallest and the largest (what each further MB costs the run and the
    floor), which separates the run's fixed costs from its cost per MB."""
    floor = base / "floor.py"
    floor.write_text(FLOOR, encoding="utf-8")
    bound = base / "bound.py"
    bound.write_text(BOUND, encoding="utf-8")
    results: list[tuple[str, bool]] = []
    seen: list[tuple[float, float, float, float]] = []  # (MB, floor s, run s, bound s), medians
    for mb in sizes:
        print(f"\n[2] jieba-rs end to end vs the jieba-rs floor, {workers} workers, {mb:.0f} MB "
              f"of distinct documents; load before {load()}", flush=True)
        ratios, t_runs, t_floors, t_bounds, size = [], [], [], [], 0
        for i in range(repeat):
            corpus = base / f"rs-{i}" / "corpus"
            files, size = build_corpus(corpus, mb, seed=100 + i)
            listing = base / f"rs-{i}" / "files.txt"
            listing.write_text("\n".join(map(str, files)), encoding="utf-8")
            t_floor, _ = timed([PY, str(floor), str(userdict), str(listing), str(workers)])
            t_bound, _ = timed([PY, str(bound), str(userdict), str(listing), str(workers)])
            t_bounds.append(t_bound)
            t_run, man = mobilize_run(base, f"rs-{i}", corpus, "--segmenter", "jieba-rs",
                                      "--workers", str(workers))
            assert man["stats"]["segmented"] == len(files), man["stats"]
            t_runs.append(t_run)
            t_floors.append(t_floor)
            ratios.append(t_floor / t_run)
            shutil.rmtree(base / f"rs-{i}", ignore_errors=True)
        ratio = statistics.median(ratios)
        mbs = size / 1e6
        tf, tr = statistics.median(t_floors), statistics.median(t_runs)
        tb = statistics.median(t_bounds)
        seen.append((mbs, tf, tr, tb))
        print(f"    floor {tf:.2f} s = {mbs / tf:.1f} MB/s; run {tr:.2f} s = {mbs / tr:.1f} MB/s; "
              f"the run reaches {ratio:.0%} of the floor (pairs: "
              f"{', '.join(f'{r:.0%}' for r in ratios)}; target >= 60%) {verdict(ratio, 0.6)}; "
              f"load {load()}", flush=True)
        bound_share = statistics.median(f / b for f, b in zip(t_floors, t_bounds))
        print(f"    counting bound (floor + pyahocorasick's count of the terms) {tb:.2f} s: "
              f"{bound_share:.0%} of the floor (pairs: "
              f"{', '.join(f'{f / b:.0%}' for f, b in zip(t_floors, t_bounds))}; the most a "
              "run counting terms with the kept libraries can reach)", flush=True)
        results.append((f"jieba-rs {mb:.0f} MB vs floor", ratio >= 0.6))
    if len(seen) > 1 and seen[-1][0] > seen[0][0]:
        (m0, f0, r0, b0), (m1, f1, r1, b1) = seen[0], seen[-1]
        df, dr = (f1 - f0) / (m1 - m0), (r1 - r0) / (m1 - m0)
        db = (b1 - b0) / (m1 - m0)
        share = f"{df / dr:.0%}" if dr > 0 and df > 0 else "not measurable (noise)"
        print(f"    per further MB ({m0:.0f} -> {m1:.0f} MB): floor {df:.3f} s/MB, run "
              f"{dr:.3f} s/MB: the run's marginal speed is {share} of the floor's; fixed "
              f"costs (the time at 0 MB, extrapolated): floor {f0 - df * m0:.2f} s, run "
              f"{r0 - dr * m0:.2f} s (not a target: it shows fixed vs per-MB cost)", flush=True)
        if db > 0 and df > 0:
            print(f"    counting bound per further MB: {db:.3f} s/MB, {df / db:.0%} of the "
                  "floor's marginal speed", flush=True)
    return results


def target_jieba(base: Path, mb: float, workers: int, repeat: int = 1
                 ) -> list[tuple[str, bool]]:
    script = base / "baseline.py"
    script.write_text(BASELINE, encoding="utf-8")
    print(f"\n[3] jieba, {workers} workers vs one jieba.lcut process, {mb:.0f} MB of distinct "
          f"documents; load before {load()}", flush=True)
    corpus = base / "jieba" / "corpus"
    files, size = build_corpus(corpus, mb, seed=200)
    half = len(files) // 2
    lists = []
    for part, chunk in (("a", files[:half]), ("b", files[half:])):
        lists.append(base / "jieba" / f"files-{part}.txt")
        lists[-1].write_text("\n".join(map(str, chunk)), encoding="utf-8")
    timed([PY, str(script), os.devnull])  # jieba's dictionary cache, warm
    mbs = size / 1e6
    ratios, t_bases, t_runs = [], [], []
    for i in range(repeat):
        wall_a, out_a = timed([PY, str(script), str(lists[0])])
        cut_a = float(out_a)
        t_run, man = mobilize_run(base, f"jieba-{i}", corpus, "--segmenter", "jieba",
                                  "--workers", str(workers))
        assert man["stats"]["segmented"] == len(files), man["stats"]
        _wall_b, out_b = timed([PY, str(script), str(lists[1])])
        cut_b = float(out_b)
        t_base = wall_a + cut_b  # one process: one start-up, both halves' cutting
        ratios.append(t_base / t_run)
        t_bases.append(t_base)
        t_runs.append(t_run)
        print(f"    pair {i + 1}: baseline {t_base:.1f} s = {mbs / t_base:.2f} MB/s (start-up "
              f"{wall_a - cut_a:.1f} s; halves {mbs * half / len(files) / cut_a:.2f} and "
              f"{mbs * (len(files) - half) / len(files) / cut_b:.2f} MB/s); run {t_run:.1f} s "
              f"= {mbs / t_run:.2f} MB/s; ratio {ratios[-1]:.2f}x; load {load()}", flush=True)
    ratio = statistics.median(ratios)
    print(f"    baseline {statistics.median(t_bases):.1f} s, run {statistics.median(t_runs):.1f} s"
          f"; ratio {ratio:.2f}x (pairs: {', '.join(f'{r:.2f}' for r in ratios)}; target "
          f">= 1.6x) {verdict(ratio, 1.6)}; load {load()}", flush=True)
    shutil.rmtree(base / "jieba", ignore_errors=True)
    return [(f"jieba {workers} workers {mb:.0f} MB", ratio >= 1.6)]


def agreement(base: Path) -> None:
    """jieba vs jieba-rs on each shared Chinese corpus, as a run cuts it (whole normalised
    documents, the default lexicon's literal terms added): token boundaries that agree,
    documents tokenised identically, and the word tokens (the rates' denominator) of each."""
    import numpy as np

    sys.path.insert(0, str(REPO))
    from pipeline.config import DEFAULT_LEXICON
    from pipeline.ingest import load_corpus
    from pipeline.lexicon import load_lexicon
    from pipeline.segment import build_tokenizer, segment_units

    lex = load_lexicon(DEFAULT_LEXICON)
    terms = lex.user_words()
    jb = build_tokenizer("jieba", user_terms=terms, cache_dir=base / "jieba")
    rs = build_tokenizer("jieba-rs", user_terms=terms)
    print(f"\n[agreement] jieba {jb.version} vs jieba-rs {rs.version}, lexicon {lex.version} "
          f"({len(terms)} literal terms as words), whole documents as a run cuts them")
    for name in CORPORA:
        docs = load_corpus(SHARED / name).documents
        agree = union = same = 0
        words = [0, 0]
        for doc in docs:
            la, ua = segment_units(jb, doc.text)
            lb, ub = segment_units(rs, doc.text)
            a, b = set(np.cumsum(la).tolist()), set(np.cumsum(lb).tolist())
            agree += len(a & b)
            union += len(a | b)
            same += a == b
            words[0] += sum(ua.words)
            words[1] += sum(ub.words)
        print(f"    {name}: boundaries agree {agree / union:.5f} of {union:,}; documents "
              f"identical {same} / {len(docs)}; word tokens jieba {words[0]:,}, jieba-rs "
              f"{words[1]:,} ({(words[1] - words[0]) / words[0]:+.3%})", flush=True)


def compile_bytecode() -> str:
    """Compile mobilize's modules to bytecode (``__pycache__``, ignored by git), as ``pip
    install`` does and as any first import does where ``PYTHONDONTWRITEBYTECODE`` is unset:
    with it set and an editable install, every ``mobilize`` process would compile the whole
    package from source again (~0.1-0.25 s of CPU a run, which a researcher's install never
    pays), while the naive script's imports all come compiled from site-packages."""
    import compileall

    ok = compileall.compile_dir(str(REPO / "pipeline"), quiet=1)
    env = os.environ.get("PYTHONDONTWRITEBYTECODE")
    return (f"mobilize's bytecode {'compiled' if ok else 'NOT compiled (see errors above)'} "
            f"before timing (PYTHONDONTWRITEBYTECODE={env or 'unset'})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="smaller sizes (3 MB, 6 MB) and one repetition: a smoke test")
    ap.add_argument("--repeat", type=int, default=None, help="pairs per figure (default 3)")
    ap.add_argument("--rs-mb", default=None,
                    help="target 2's sizes in MB, comma-separated (default 10,100: the target "
                         "at 10 MB and at 100 MB, and what each further MB costs)")
    ap.add_argument("--jieba-mb", type=float, default=None, help="target 3's size (default 20)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", choices=("1", "2", "3"), action="append",
                    help="measure only these targets (repeatable)")
    ap.add_argument("--agreement", action="store_true",
                    help="measure how often jieba and jieba-rs tokenise alike (not timed; "
                         "alone, or with the targets given by --only)")
    args = ap.parse_args()
    repeat = args.repeat or (1 if args.quick else 3)
    rs_mb = ([float(x) for x in args.rs_mb.split(",") if x.strip()] if args.rs_mb
             else [3.0] if args.quick else [10.0, 100.0])
    jieba_mb = args.jieba_mb or (6.0 if args.quick else 20.0)
    only = set(args.only or (() if args.agreement else ("1", "2", "3")))
    print(f"bench_speed: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
          f"{os.cpu_count()} cores, load average {load()} (1, 5, 15 min)", flush=True)
    print(f"    {compile_bytecode()}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="mobilize-speed-"))
    results: list[tuple[str, bool]] = []
    try:
        userdict = lexicon_terms(base)
        if "1" in only:
            results += target_first_run(base, userdict, repeat)
        if "2" in only:
            results += target_rs_floor(base, userdict, rs_mb, repeat, args.workers)
        if "3" in only:
            results += target_jieba(base, jieba_mb, args.workers, repeat)
        if args.agreement:
            agreement(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    passed = sum(ok for _, ok in results)
    print(f"\n{passed}/{len(results)} targets met; " if results else "\n", end="")
    print(f"load average after {load()}")
    for name, ok in results:
        print(f"    {'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    main()
