"""What each way of running mobilize costs, measured as a researcher runs it: `mobilize` subprocesses.

Prints wall times (interpreter, imports and all), each with the load average, for:

1. ``mobilize run`` against a running server (``mobilize server start``) against
   ``mobilize run --engine local``, on npc-resolutions-gwr-zh, each engine with a fresh cache
   (cold) and then warm, alternating which engine goes first, ``--repeat`` times: the
   difference per pair and its median (the target: at most 3 s);
2. ``mobilize run --engine local`` on the same corpus: cold (empty caches) and warm;
3. ``mobilize run`` (Prefect, no server configured: the temporary server) on the same corpus,
   warm, and how much of it is Prefect's start-up (its wall time minus the local warm run's);
   the first run on a fresh Prefect home is printed separately (database migrations);
4. on gwr-national-zh (``--engine local``): cold, warm re-run, and re-run after adding one
   document, the last two as fractions of the cold run.

Everything runs in a temporary folder with its own caches and Prefect home; the shared
corpora are read in place (never copied into the repository). Usage:

    python bench/bench_flow.py [--lexicon PATH] [--segmenter jieba|jieba-rs] [--repeat N]
                               [--skip-server | --only-server]
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOBILIZE_SHARED", REPO.parent / "shared")) / "corpora"
MOBILIZE = str(Path(sys.executable).parent / "mobilize")
HELD_BACK = "2025"  # the newest national report is "added" last


def _lexicon_default() -> Path:
    project = REPO / "lexicons" / "mobilize.yaml"
    return project if project.is_file() else REPO / "tests" / "fixtures" / "lexicons" / "seed.yaml"


def _run(args: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    done = subprocess.run([MOBILIZE, "run", *args], env=env, capture_output=True, text=True,
                          check=False)
    wall = time.perf_counter() - t0
    if done.returncode not in (0, 1):
        sys.exit(f"mobilize run {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall


def _copy_without(src: Path, dst: Path, held_back: str) -> str:
    """A copy of a corpus minus the document whose doc_id starts with ``held_back``."""
    dst.mkdir(parents=True)
    with (src / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = list(reader.fieldnames or []), list(reader)
    kept = [r for r in rows if not r["doc_id"].startswith(held_back)]
    gone = next(r for r in rows if r["doc_id"].startswith(held_back))["doc_id"]
    for r in kept:
        shutil.copy2(src / f"{r['doc_id']}.txt", dst / f"{r['doc_id']}.txt")
    with (dst / "metadata.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
    return gone


def _add_back(src: Path, dst: Path, doc_id: str) -> None:
    with (src / "metadata.csv").open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        row = next(r for r in reader if r["doc_id"] == doc_id)
    shutil.copy2(src / f"{doc_id}.txt", dst / f"{doc_id}.txt")
    with (dst / "metadata.csv").open("a", encoding="utf-8", newline="") as fh:
        csv.DictWriter(fh, fieldnames=fields, lineterminator="\n").writerow(row)


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}"


def _median(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2


def _server_vs_local(npc: Path, tmp: Path, env: dict[str, str], common: list[str],
                     repeat: int) -> None:
    """Prefect against a running server vs the local engine, on the same corpus, fresh caches
    (cold) and warm, alternating the engines ``repeat`` times."""
    started = subprocess.run([MOBILIZE, "server", "start", "--port", str(_free_port())],
                             env=env, capture_output=True, text=True, check=False)
    if started.returncode != 0:
        print(f"(server figure skipped: {started.stderr.strip()[-300:]})")
        return
    try:
        out = ["--out", str(tmp / "out-served")]
        _run(["--corpus", str(npc), *out, *common, "--engine", "prefect"],
             {**env, "MOBILIZE_CACHE_DIR": str(tmp / "cache-first")})  # registers the flow
        rows: dict[str, list[float]] = {"cold": [], "warm": []}
        for i in range(repeat):
            for state in ("cold", "warm"):
                times = {}
                for eng in ("local", "prefect") if i % 2 == 0 else ("prefect", "local"):
                    cache = {**env, "MOBILIZE_CACHE_DIR": str(tmp / f"cache-{eng}-{i}")}
                    load = _load()
                    times[eng] = _run(["--corpus", str(npc), *out, *common, "--engine", eng],
                                      cache)
                    times[eng + "_load"] = load  # type: ignore[assignment]
                diff = times["prefect"] - times["local"]
                rows[state].append(diff)
                print(f"  {state:4s} #{i + 1}: local {times['local']:.2f} s (load "
                      f"{times['local_load']}), Prefect with server {times['prefect']:.2f} s "
                      f"(load {times['prefect_load']}): +{diff:.2f} s", flush=True)
        print("npc-resolutions-gwr-zh  Prefect (`mobilize server start` running) minus local: "
              + "; ".join(f"{state} median +{_median(d):.2f} s (range {min(d):+.2f} to "
                          f"{max(d):+.2f})" for state, d in rows.items())
              + f"; target <= 3 s; load now {_load()}")
    finally:
        subprocess.run([MOBILIZE, "server", "stop"], env=env, capture_output=True, check=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--lexicon", type=Path, default=_lexicon_default())
    ap.add_argument("--segmenter", default="jieba")
    ap.add_argument("--repeat", type=int, default=3,
                    help="pairs of local and served Prefect runs, cold and warm (default 3)")
    ap.add_argument("--skip-server", action="store_true", help="skip the running-server figures")
    ap.add_argument("--only-server", action="store_true",
                    help="only the running-server figures (local vs Prefect with a server)")
    a = ap.parse_args()
    npc, national = SHARED / "npc-resolutions-gwr-zh", SHARED / "gwr-national-zh"
    for c in (npc, national):
        if not c.is_dir():
            sys.exit(f"shared corpus not found: {c} (set MOBILIZE_SHARED)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-flow-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(MOBILIZE_HOME=str(tmp / "home"), MOBILIZE_CONFIG_DIR=str(tmp / "config"),
               MOBILIZE_CACHE_DIR=str(tmp / "cache"))
    common = ["--lexicon", str(a.lexicon), "--segmenter", a.segmenter, "--no-report"]
    print(f"lexicon {a.lexicon.name}, segmenter {a.segmenter}, {os.cpu_count()} cores, "
          f"load {_load()}; work in {tmp}", flush=True)
    try:
        if not a.skip_server:
            _server_vs_local(npc, tmp, env, common, a.repeat)
        if a.only_server:
            return
        # 1. local on the small corpus
        npc_args = ["--corpus", str(npc), "--out", str(tmp / "out"), *common]
        cold = _run([*npc_args, "--engine", "local"], env)
        warm = _run([*npc_args, "--engine", "local"], env)
        print(f"npc-resolutions-gwr-zh (20 docs)  mobilize run --engine local: cold {cold:.2f} s, "
              f"warm {warm:.2f} s (load {_load()})")
        # 2. Prefect, no server: the first run on a fresh Prefect home, then a steady one
        first = _run([*npc_args, "--engine", "prefect"], env)
        steady = _run([*npc_args, "--engine", "prefect"], env)
        print(f"npc-resolutions-gwr-zh  mobilize run (Prefect, temporary server): {steady:.2f} s "
              f"warm, of which Prefect start-up ~{steady - warm:.2f} s (minus the local warm run); "
              f"first run on a fresh Prefect home {first:.2f} s (load {_load()})")
        # 3. incremental on the national reports
        corpus = tmp / "gwr-national-zh"
        gone = _copy_without(national, corpus, HELD_BACK)
        nat_args = ["--corpus", str(corpus), "--out", str(tmp / "out"), *common, "--engine", "local"]
        env_nat = {**env, "MOBILIZE_CACHE_DIR": str(tmp / "cache-national")}
        cold_n = _run(nat_args, env_nat)
        warm_n = _run(nat_args, env_nat)
        _add_back(national, corpus, gone)
        one_n = _run(nat_args, env_nat)
        print(f"gwr-national-zh (56 docs, then +{gone})  --engine local: cold {cold_n:.2f} s; "
              f"warm re-run {warm_n:.2f} s = {warm_n / cold_n:.0%} of cold; one document added "
              f"{one_n:.2f} s = {one_n / cold_n:.0%} of cold (load {_load()})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    main()
