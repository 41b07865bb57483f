"""Engine speed on a ~100 MB benchmark corpus built from the shared Chinese corpora.

Prints, measured in one invocation:

- baseline: one process calling ``jieba.lcut`` over the same texts (MB/s);
- cold run with jieba on ``--workers`` processes: MB/s and the ratio to the baseline (target >= 1.6x);
- cold run with jieba-rs: MB/s end to end (target >= 10 MB/s);
- the jieba-rs floor: the same files only read, decoded and cut by jieba-rs on the same number
  of processes, nothing else: the ceiling any end-to-end run with this segmenter has here;
- warm run (nothing changed): seconds and the fraction of the jieba cold run (target < 10%);
- peak resident memory of the whole process tree (target < 2 GB).

The corpus is generated into a temporary folder (never committed): the shared documents
repeated with distinct doc ids, each copy with its own first line so that every text (and
its sha256) is distinct and nothing is answered from a cache. Runs use a fresh cache folder.

Usage: python bench/bench_engine.py [--mb 100] [--workers 2] [--baseline-mb 20]
The baseline throughput is measured over ``--baseline-mb`` MB of the same files, half just
before the jieba run and half just after it
(throughput does not depend on the amount; this keeps the benchmark's run time down).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Self

import psutil

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOBILIZE_SHARED", REPO.parent / "shared")) / "corpora"
CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "social-security-policy-zh",
           "npc-resolutions-gwr-zh")
sys.path.insert(0, str(REPO))


class PeakRSS:
    """Samples the resident memory of this process and all its children, and the CPU time of
    every child seen (pool workers are not reaped in a way ``os.times`` would count)."""

    # Every 0.25 s: the pipeline's memory is flat by design (batches stream through the pool),
    # and the sampler's own CPU, taken from the same two cores the workers use, stays small.
    def __init__(self, interval: float = 0.25) -> None:
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.child_cpu: dict[int, float] = {}

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                    if p.pid != me.pid:
                        t = p.cpu_times()
                        self.child_cpu[p.pid] = t.user + t.system
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(self.interval)

    def cpu(self) -> float:
        """CPU seconds of this process plus every child sampled so far."""
        t = os.times()
        return t.user + t.system + sum(self.child_cpu.values())

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def build_corpus(dst: Path, mb: float) -> tuple[int, int]:
    """Copies of the shared Chinese documents until ``mb`` MB; returns (files, bytes)."""
    files = sorted(p for c in CORPORA for p in (SHARED / c).glob("*.txt"))
    if not files:
        raise SystemExit(f"no shared corpora at {SHARED}")
    texts = [(f"{p.parent.name}-{p.stem}", p.read_text(encoding="utf-8")) for p in files]
    dst.mkdir(parents=True)
    target, written, n, k = mb * 1_000_000, 0, 0, 0
    while written < target:
        for stem, text in texts:
            data = f"基准副本第{k}份\n{text}".encode()
            (dst / f"r{k:03d}-{stem}.txt").write_bytes(data)
            written += len(data)
            n += 1
            if written >= target:
                break
        k += 1
    return n, written


def baseline(corpus: Path, mb: float, *, skip_mb: float = 0.0) -> tuple[float, float]:
    """One process, ``jieba.lcut`` per document: (MB, seconds) over ``mb`` MB of the files,
    after skipping the first ``skip_mb`` MB of them (so two calls can take distinct halves)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()  # jieba's global dictionary, loaded once, outside the timing (from its
    # cache after the first time): only segmentation is timed, which favours the baseline
    # A representative sample: files in a fixed pseudo-random order (by a hash of the name),
    # not the first files by name, which come from one corpus and segment faster or slower.
    files = sorted(corpus.glob("*.txt"), key=lambda f: hashlib.sha256(f.name.encode()).digest())
    skipped = 0
    todo: list[Path] = []
    for p in files:
        size = p.stat().st_size
        if skipped < skip_mb * 1_000_000:
            skipped += size
            continue
        todo.append(p)
        if sum(q.stat().st_size for q in todo) >= mb * 1_000_000:
            break
    t0 = time.perf_counter()
    done = 0
    for p in todo:
        data = p.read_bytes()
        jieba.lcut(data.decode("utf-8"))
        done += len(data)
    return done / 1e6, time.perf_counter() - t0


def _cut_files(args: tuple[list[str], tuple[str, ...]]) -> int:
    """A floor worker: read, decode and cut each file with jieba-rs (the run's tokenizer, with
    the lexicon's terms); nothing else. Returns the bytes done."""
    from pipeline.segment import RJiebaTokenizer

    paths, terms = args
    tok = RJiebaTokenizer(terms)
    done = 0
    for p in paths:
        data = Path(p).read_bytes()
        tok.cut(data.decode("utf-8"))
        done += len(data)
    return done


def segmenter_floor(corpus: Path, workers: int, lexicon: Path) -> tuple[float, float]:
    """(MB, seconds) for jieba-rs alone over every file on ``workers`` processes, pool start-up
    and dictionary loads included, as in the engine's own pool."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from pipeline.segment import _user_words

    terms = _user_words(str(lexicon), lexicon.stat().st_mtime_ns)
    files = sorted(corpus.glob("*.txt"), key=lambda f: (-f.stat().st_size, f.name))
    chunks = [[str(f) for f in files[i::8 * workers]] for i in range(8 * workers)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("forkserver")) as pool:
        done = sum(pool.map(_cut_files, [(c, terms) for c in chunks]))
    return done / 1e6, time.perf_counter() - t0


def engine_run(corpus: Path, out: Path, cache: Path, segmenter: str, workers: int,
               lexicon: Path, peak: PeakRSS) -> tuple[float, object]:
    from pipeline.config import Settings
    from pipeline.engine import run_local

    s = Settings(corpus=corpus, corpus_name="bench", out=out, lexicon=lexicon, cache=cache,
                 segmenter=segmenter, workers=workers, report=False, engine="local")  # type: ignore[arg-type]
    t0, c0 = time.perf_counter(), peak.cpu()
    result = run_local(s)
    time.sleep(2 * peak.interval)  # a last sample of the workers' CPU times
    result.cpu = peak.cpu() - c0  # type: ignore[attr-defined]
    return time.perf_counter() - t0, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=100.0)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--baseline-mb", type=float, default=20.0)
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mobilize-bench-"))
    try:
        corpus = base / "corpus"
        lexicon = REPO / "lexicons" / "mobilize.yaml"
        if not lexicon.is_file():
            lexicon = REPO / "tests" / "fixtures" / "lexicons" / "seed.yaml"
        shutil.copy(lexicon, base / "lexicon.yaml")  # a snapshot: the file may be edited meanwhile
        lexicon = base / "lexicon.yaml"
        n, size = build_corpus(corpus, args.mb)
        mb = size / 1e6
        print(f"corpus: {n} documents, {mb:.1f} MB (UTF-8) in {corpus}; workers={args.workers}; "
              f"load average {os.getloadavg()[0]:.1f} (cores shared with other work)", flush=True)
        def load() -> str:
            return f"load {os.getloadavg()[0]:.1f}"

        with PeakRSS() as peak:
            # The baseline brackets the jieba run: half before it, half after (distinct files).
            # This machine's speed drifts by 10-20% over minutes (other virtual machines on
            # the host); measuring the baseline on both sides of the run cancels a drift in
            # either direction instead of letting it decide the ratio.
            half = min(args.baseline_mb, mb) / 2
            b1mb, b1s = baseline(corpus, half)
            print(f"baseline  jieba.lcut, 1 process, before: {b1mb:.1f} MB in {b1s:.1f} s = "
                  f"{b1mb / b1s:.2f} MB/s ({load()})", flush=True)
            cold_s, cold = engine_run(corpus, base / "out", base / "cache-jieba", "jieba",
                                      args.workers, lexicon, peak)
            print(f"cold      jieba, {args.workers} workers: {cold_s:.1f} s = {mb / cold_s:.2f} MB/s;"
                  f" segmented {cold.stats.segmented}; {cold.cpu / mb:.2f} CPU s/MB; {load()}",  # type: ignore[attr-defined]
                  flush=True)
            b2mb, b2s = baseline(corpus, half, skip_mb=b1mb)
            print(f"baseline  jieba.lcut, 1 process, after: {b2mb:.1f} MB in {b2s:.1f} s = "
                  f"{b2mb / b2s:.2f} MB/s ({load()})", flush=True)
            bmb, bs = b1mb + b2mb, b1s + b2s
            print(f"ratio     jieba cold run / baseline ({bmb:.1f} MB in {bs:.1f} s = "
                  f"{bmb / bs:.2f} MB/s): {mb / cold_s / (bmb / bs):.2f}x (target >= 1.6x)",
                  flush=True)
            rs_s, rs = engine_run(corpus, base / "out-rs", base / "cache-rs", "jieba-rs",
                                  args.workers, lexicon, peak)
            print(f"cold      jieba-rs, {args.workers} workers: {rs_s:.1f} s = {mb / rs_s:.2f} MB/s"
                  f" end to end (target >= 10 MB/s); segmented {rs.stats.segmented}; "  # type: ignore[attr-defined]
                  f"{rs.cpu / mb:.2f} CPU s/MB; {load()}", flush=True)  # type: ignore[attr-defined]
            fmb, fs = segmenter_floor(corpus, args.workers, lexicon)
            print(f"floor     jieba-rs alone, {args.workers} workers (read, decode and cut each file;"
                  f" no normalising, matching, scoring, caches or tables): {fs:.1f} s = "
                  f"{fmb / fs:.2f} MB/s; the cold run reaches {fs / rs_s:.0%} of it; {load()}",
                  flush=True)
            warm_s, warm = engine_run(corpus, base / "out", base / "cache-jieba", "jieba",
                                      args.workers, lexicon, peak)
            print(f"warm      jieba, nothing changed: {warm_s:.2f} s = "
                  f"{warm_s / cold_s:.1%} of the cold run (target < 10%); segmented "
                  f"{warm.stats.segmented}, scored {warm.stats.scored}",  # type: ignore[attr-defined]
                  flush=True)
        print(f"peak RSS  whole process tree: {peak.peak / 2**20:.0f} MiB (target < 2048 MiB)")
        # CPU view (less sensitive to other people's load): the serial parts (plan, assemble,
        # write) run on one core, the rest spreads over the workers.
        base_cpu = (bcpu := bs / bmb)  # baseline seconds per MB on its (uncontended) core
        for name, res in (("jieba", cold), ("jieba-rs", rs)):
            sec = res.stats.seconds  # type: ignore[attr-defined]
            serial = sum(sec.get(k, 0.0) for k in ("plan", "assemble", "write"))
            idle_s = serial + max(0.0, res.cpu - serial) / args.workers  # type: ignore[attr-defined]
            extra = (f" = {mb / idle_s / (1 / base_cpu):.2f}x baseline" if name == "jieba" else "")
            print(f"cpu view  {name}: {res.cpu / mb:.2f} CPU s/MB over all processes "  # type: ignore[attr-defined]
                  f"(baseline: {bcpu:.2f} s/MB on one core); projected on {args.workers} free cores: "
                  f"{mb / idle_s:.2f} MB/s{extra}")
        print("stage seconds (jieba cold, summed over workers):",
              {k: round(v, 1) for k, v in cold.stats.seconds.items()})  # type: ignore[attr-defined]
        print("stage seconds (jieba-rs cold, summed over workers):",
              {k: round(v, 1) for k, v in rs.stats.seconds.items()})  # type: ignore[attr-defined]
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
