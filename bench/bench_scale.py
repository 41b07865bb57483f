"""How time and memory grow with the corpus: `mobilize run` over generated corpora of 10 MB,
100 MB and 1 GB of distinct documents.

For each size it generates a corpus of *distinct* documents into a temporary folder (sentences
of the shared Chinese corpora recombined by a seeded RNG, each document opened by a marker line
of its own, so no two documents share a text and neither deduplication nor a cache answers
anything), then runs, as a researcher would, with a fresh cache:

    mobilize run --corpus DIR --out OUT --engine local --no-report --segmenter jieba-rs
                 --workers N --lexicon lexicons/mobilize.yaml

and prints the wall time, MB/s, the peak resident memory of the whole process tree (the run
and its pool workers, sampled with psutil every 0.2 s: the sum of their RSS, which counts
pages the forked workers share with the run twice, so it overstates; the sum of PSS beside
it; and the largest single process), the run's stage seconds from ``run.json`` and the load
average before and after. Generated data, caches and outputs are deleted after each size.

    python bench/bench_scale.py                      # 10, 100, 1000 MB
    python bench/bench_scale.py --sizes 10,100 --segmenter jieba

The shared corpora are read in place from ../shared/corpora (or $MOBILIZE_SHARED/corpora);
nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOBILIZE_SHARED", REPO.parent / "shared")) / "corpora"
MOBILIZE = str(Path(sys.executable).parent / "mobilize")
CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "npc-resolutions-gwr-zh",
           "social-security-policy-zh")
_SENTENCE = re.compile(r"[^。！？；\n]+[。！？；]?")


def sentences() -> list[str]:
    """Every sentence of the shared Chinese corpora (read in place)."""
    out: list[str] = []
    for name in CORPORA:
        folder = SHARED / name
        if not folder.is_dir():
            sys.exit(f"shared corpus not found: {folder} (set MOBILIZE_SHARED)")
        for path in sorted(folder.glob("*.txt")):
            text = path.read_text(encoding="utf-8", errors="replace")
            out += [s.strip() for s in _SENTENCE.findall(text) if len(s.strip()) >= 4]
    return out


def generate(folder: Path, megabytes: float, pool: list[str], seed: int) -> tuple[int, int]:
    """Distinct documents of 4-80 KB, recombined from ``pool``, until ``megabytes`` of UTF-8.

    Each file is ``<year>_s<seed>_<n>.txt`` (the year from 1954-2026, so reports have years)
    and opens with a line naming its number and seed. Returns (files, bytes)."""
    rng = random.Random(seed)
    folder.mkdir(parents=True)
    target = int(megabytes * 1_000_000)
    total = n = 0
    while total < target:
        size = min(target - total, rng.randint(4_000, 80_000))
        parts = [f"合成文档第{n}号（种子{seed}）"]
        held = len(parts[0].encode())
        while held < size:
            para = "".join(rng.choices(pool, k=rng.randint(2, 12)))
            parts.append(para)
            held += len(para.encode()) + 1
        data = "\n".join(parts).encode() + b"\n"
        (folder / f"{rng.randint(1954, 2026)}_s{seed}_{n:06d}.txt").write_bytes(data)
        total += len(data)
        n += 1
    return n, total


class TreeSampler:
    """Peak memory of a process and all its descendants, sampled in a thread."""

    def __init__(self, pid: int, interval: float = 0.2) -> None:
        import psutil

        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak_rss = self.peak_pss = self.peak_one = self.peak_root = self.peak_child = 0
        self.peak_procs = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import psutil

        tick = 0
        while not self._stop.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                break
            rss = pss = one = 0
            for p in procs:
                try:
                    r = p.memory_info().rss
                    rss += r
                    one = max(one, r)
                    if p.pid == self.root.pid:
                        self.peak_root = max(self.peak_root, r)
                    else:
                        self.peak_child = max(self.peak_child, r)
                    if tick % 5 == 0:  # PSS reads smaps: once a second
                        pss += p.memory_full_info().pss
                except psutil.Error:
                    pass
            self.peak_rss = max(self.peak_rss, rss)
            self.peak_one = max(self.peak_one, one)
            self.peak_pss = max(self.peak_pss, pss)
            self.peak_procs = max(self.peak_procs, len(procs))
            tick += 1
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def _load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def run_once(work: Path, megabytes: float, pool: list[str], args: argparse.Namespace) -> dict:
    corpus = work / f"corpus-{megabytes:g}mb"
    t0 = time.perf_counter()
    files, nbytes = generate(corpus, megabytes, pool, seed=args.seed)
    gen = time.perf_counter() - t0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(MOBILIZE_HOME=str(work / "home"), MOBILIZE_CONFIG_DIR=str(work / "config"),
               MOBILIZE_CACHE_DIR=str(work / f"cache-{megabytes:g}"))
    cmd = [MOBILIZE, "run", "--corpus", str(corpus), "--out", str(work / "out"),
           "--engine", "local", "--no-report", "--segmenter", args.segmenter,
           "--workers", str(args.workers), "--lexicon", str(args.lexicon)]
    load_before = _load()
    t1 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    sampler = TreeSampler(proc.pid)
    out, err = proc.communicate()
    wall = time.perf_counter() - t1
    sampler.stop()
    if proc.returncode not in (0, 1):
        sys.exit(f"mobilize run failed ({proc.returncode}):\n{err[-3000:]}")
    run_dir = work / "out" / corpus.name
    manifest = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    sizes = {p.name: p.stat().st_size for p in run_dir.iterdir() if p.is_file()}
    row = {"mb": nbytes / 1e6, "files": files, "documents": manifest["corpus"]["documents"],
           "generate_s": gen, "wall_s": wall, "mb_s": nbytes / 1e6 / wall,
           "peak_rss_tree": sampler.peak_rss, "peak_pss_tree": sampler.peak_pss,
           "peak_rss_one": sampler.peak_one, "processes": sampler.peak_procs,
           "peak_rss_run": sampler.peak_root, "peak_rss_worker": sampler.peak_child,
           "seconds": manifest["stats"]["seconds"], "load_before": load_before,
           "load_after": _load(), "outputs": sizes}
    for p in (corpus, run_dir, Path(env["MOBILIZE_CACHE_DIR"])):
        shutil.rmtree(p, ignore_errors=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000", help="corpus sizes in MB (default 10,100,1000)")
    ap.add_argument("--segmenter", default="jieba-rs")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--lexicon", type=Path, default=REPO / "lexicons" / "mobilize.yaml")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--tmp", type=Path, default=None, help="where to generate (default: $TMPDIR)")
    a = ap.parse_args()
    sizes = [float(s) for s in a.sizes.split(",")]
    free = shutil.disk_usage(a.tmp or tempfile.gettempdir()).free
    need = max(sizes) * 1e6 * 3  # corpus, caches (token lengths, scores), tables
    if free < need:
        sys.exit(f"{free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed")
    pool = sentences()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=a.tmp))
    print(f"mobilize run --engine local --no-report --segmenter {a.segmenter} --workers {a.workers}"
          f" --lexicon {a.lexicon.relative_to(REPO) if a.lexicon.is_relative_to(REPO) else a.lexicon}"
          f"; fresh cache per size; {os.cpu_count()} cores; {len(pool):,} sentences to draw from;"
          f" work in {work}", flush=True)
    rows = []
    try:
        for mb in sizes:
            r = run_once(work, mb, pool, a)
            rows.append(r)
            s = r["seconds"]
            print(f"{r['mb']:8.1f} MB {r['documents']:6d} docs  {r['wall_s']:7.1f} s "
                  f"{r['mb_s']:5.2f} MB/s  peak RSS tree {r['peak_rss_tree'] / 2**20:6.0f} MiB "
                  f"(PSS {r['peak_pss_tree'] / 2**20:.0f} MiB; the run's process "
                  f"{r['peak_rss_run'] / 2**20:.0f} MiB, largest worker "
                  f"{r['peak_rss_worker'] / 2**20:.0f} MiB; {r['processes']} processes)  "
                  f"load {r['load_before']} -> {r['load_after']}", flush=True)
            print("           stages (s): " + ", ".join(
                f"{k} {s[k]:.1f}" for k in ("plan", "batches", "assemble", "write", "total",
                                            "waited", "ingest", "segment", "match", "score")
                if k in s) + "; outputs " + ", ".join(
                f"{k} {v / 1e6:.0f} MB" for k, v in sorted(r["outputs"].items())
                if v > 5e6), flush=True)
        if len(rows) > 1:
            base = rows[0]
            print("relative to the smallest: " + "; ".join(
                f"{r['mb']:.0f} MB: size x{r['mb'] / base['mb']:.0f}, time "
                f"x{r['wall_s'] / base['wall_s']:.1f}, memory "
                f"x{r['peak_rss_tree'] / base['peak_rss_tree']:.2f}" for r in rows[1:]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
