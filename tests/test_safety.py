"""Safety of runs, with real processes: a SIGKILL part way leaves the previous outputs intact and
the next run recovers; two runs on one output folder never interleave."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import shared_corpus
from conftest_server import MOBILIZE, SEED_LEXICON, add_document, copy_corpus, csv_bytes, run_env

from pipeline import engine, store
from pipeline.config import Settings

pytestmark = pytest.mark.slow
HELD_BACK = "2025-npc-resolution"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _mobilize(corpus: Path, out: Path, *extra: str) -> list[str]:
    return [MOBILIZE, "run", "--engine", "local", "--corpus", str(corpus), "--out", str(out),
            "--lexicon", str(SEED_LEXICON), "--no-report", "--workers", "2", *extra]


def _settings(corpus: Path, out: Path, cache: Path) -> Settings:
    return Settings(corpus=corpus, corpus_name=corpus.name, out=out, lexicon=SEED_LEXICON,
                    cache=cache, report=False, progress=False, workers=2, engine="local")


def _poll(proc: subprocess.Popen[bytes], ready: callable, what: str,  # type: ignore[valid-type]
          timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before {what}: {err.decode()[-800:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.002)


@pytest.mark.parametrize("kill_point", ["segmenting", "writing"])
def test_sigkill_part_way_leaves_the_previous_outputs_and_the_next_run_recovers(
        kill_point: str, tmp_path: Path) -> None:
    src = shared_corpus("npc-resolutions-gwr-zh")
    corpus = copy_corpus(src, tmp_path / "npc", skip=[HELD_BACK])
    out = tmp_path / "out"
    engine.run_local(_settings(corpus, out, tmp_path / "cache-a"))
    previous = _files(out / "npc")
    assert "run.json" in previous and "scores.csv" in previous

    add_document(src, corpus, HELD_BACK)  # the killed run would have written 20 documents
    cache = tmp_path / "cache-b"  # cold: every document is segmented again
    env = run_env(MOBILIZE_CACHE_DIR=str(cache))
    proc = subprocess.Popen(_mobilize(corpus, out), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)

    def tmp_dirs() -> list[Path]:
        return list(out.glob(".npc.tmp-*"))

    def scored_some() -> bool:
        return (cache / "scores").is_dir() and any(p.is_file() for p in (cache / "scores").rglob("*.json"))

    try:
        if kill_point == "writing":
            _poll(proc, lambda: bool(tmp_dirs()), "it started writing the output folder")
        else:
            _poll(proc, scored_some, "it scored a document")
            assert not tmp_dirs(), "it was already writing: kill point missed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if kill_point == "writing":
        assert tmp_dirs(), "the killed run's temporary folder is where the kill left it"
    assert _files(out / "npc") == previous  # byte for byte, run.json included

    done = subprocess.run(_mobilize(corpus, out), env=env, capture_output=True, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr.decode()[-800:]
    assert not tmp_dirs()
    reference = engine.run_local(_settings(corpus, tmp_path / "ref", tmp_path / "cache-ref"))
    assert reference.stats.documents == 20
    assert csv_bytes(out / "npc") == csv_bytes(reference.run_dir)


def test_a_run_on_a_locked_output_folder_exits_3_with_a_clear_message(tmp_path: Path) -> None:
    corpus = copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "npc")
    out = tmp_path / "out"
    with store.run_lock(out, "npc"):  # this test process is the other run
        done = subprocess.run(_mobilize(corpus, out), env=run_env(), capture_output=True,
                              timeout=300, check=False)
    assert done.returncode == 3
    message = done.stderr.decode()
    assert "another mobilize run is writing this output folder" in message
    assert "--wait" in message and "Traceback" not in message
    assert not (out / "npc").exists()


def test_two_real_runs_on_one_folder_never_interleave(tmp_path: Path) -> None:
    """A is working; C (no --wait) exits 3 at once; B (--wait) starts only after A finished."""
    corpus = copy_corpus(shared_corpus("gwr-national-zh"), tmp_path / "national")
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    env = run_env(MOBILIZE_CACHE_DIR=str(cache))
    a = subprocess.Popen(_mobilize(corpus, out, "--json"), env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    procs = [a]
    try:
        _poll(a, lambda: (cache / "segments").is_dir() or (cache / "scores").is_dir(),
              "run A started segmenting")
        b = subprocess.Popen(_mobilize(corpus, out, "--json", "--wait", "900"), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        c = subprocess.Popen(_mobilize(corpus, out), env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        procs += [b, c]
        _, c_err = c.communicate(timeout=300)
        assert a.poll() is None, "run A finished before C tried the lock: make A slower"
        assert c.returncode == 3, c_err.decode()[-800:]
        assert "another mobilize run" in c_err.decode()
        a_out, a_err = a.communicate(timeout=900)
        b_out, b_err = b.communicate(timeout=900)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert a.returncode == 0, a_err.decode()[-800:]
    assert b.returncode == 0, b_err.decode()[-800:]
    a_man, b_man = json.loads(a_out)["manifest"], json.loads(b_out)["manifest"]
    assert b_man["started"] >= a_man["finished"]  # B planned only after A had written
    assert json.loads(b_out)["stats"]["segmented"] == 0  # and found A's work in the caches
    assert not list(out.glob(".national.tmp-*"))
    assert os.listdir(out / "national")


def test_the_prefect_engine_also_exits_3_on_a_locked_folder_before_starting_prefect(
        tmp_path: Path) -> None:
    corpus = copy_corpus(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "npc")
    out = tmp_path / "out"
    args = [a if a != "local" else "prefect" for a in _mobilize(corpus, out)]
    with store.run_lock(out, "npc"):
        done = subprocess.run(args, env=run_env(), capture_output=True, timeout=300, check=False)
    assert done.returncode == 3, done.stderr.decode()[-800:]
    assert "another mobilize run is writing this output folder" in done.stderr.decode()
    assert not (out / "npc").exists()
