"""Safety of runs, with real processes: a SIGKILL part way leaves the previous outputs intact and
the next run recovers; two runs on one output folder never interleave."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

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
    """A is working; C (no --wait) exits 3 at once; B (--wait) starts only after A finished.

    The runs use jieba: A must still be working when C, started after A's first cache entry,
    reaches the lock. With jieba-rs, the default, A ended 0.9-1.2 s after that entry and C had
    exited 3 after 0.6-0.7 s, a margin a loaded machine ate now and then; with jieba A ends
    2.8-3.1 s after it and C exits after about 1 s."""
    corpus = copy_corpus(shared_corpus("gwr-national-zh"), tmp_path / "national")
    out = tmp_path / "out"
    cache = tmp_path / "cache"
    env = run_env(MOBILIZE_CACHE_DIR=str(cache))
    jieba = ("--segmenter", "jieba")  # (B finds A's work in the caches: the same segmenter)
    a = subprocess.Popen(_mobilize(corpus, out, "--json", *jieba), env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    procs = [a]
    try:
        _poll(a, lambda: (cache / "segments").is_dir() or (cache / "scores").is_dir(),
              "run A started segmenting")
        b = subprocess.Popen(_mobilize(corpus, out, "--json", "--wait", "900", *jieba),
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        c = subprocess.Popen(_mobilize(corpus, out, *jieba), env=env, stdout=subprocess.PIPE,
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


# --------------------------------------------------------------------------- what a run may replace


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    _register()
    return CliRunner().invoke(app, list(args))


def _small_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "2020-通知.txt").write_text("加强社会保障体系建设，完善养老保险制度。\n", encoding="utf-8")
    (folder / "2021-意见.txt").write_text("健全多层次社会保障体系，推进全民参保。\n", encoding="utf-8")
    return folder


def _run_args(corpus: Path, out: Path, *extra: str) -> list[str]:
    return ["run", "--engine", "local", "--corpus", str(corpus), "--out", str(out),
            "--lexicon", str(SEED_LEXICON), "--no-report", "--workers", "1", *extra]


def test_a_run_whose_output_folder_is_the_corpus_is_refused_and_the_corpus_kept(
        tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "notes" / "mydocs")
    before = _files(tmp_path / "notes")
    done = _cli(*_run_args(corpus, tmp_path / "notes"))
    assert done.exit_code == 2, done.output
    assert "this run's output folder is the corpus folder" in done.output
    assert "--out" in done.output and "Traceback" not in done.output
    assert _files(tmp_path / "notes") == before  # not a byte changed, no lock file either
    assert sorted(os.listdir(tmp_path / "notes")) == ["mydocs"]


def test_a_researchers_folder_with_the_corpus_name_is_refused_even_with_a_run_json(
        tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "data" / "mydocs")
    out = tmp_path / "out"
    mine = out / "mydocs"
    mine.mkdir(parents=True)
    (mine / "chapter1.docx").write_bytes(b"years of work")
    (mine / "run.json").write_text('{"run": "my own notes"}', encoding="utf-8")
    done = _cli(*_run_args(corpus, out))
    assert done.exit_code == 2, done.output
    assert str(mine) in done.output and "is not a mobilize run folder" in done.output
    assert sorted(os.listdir(mine)) == ["chapter1.docx", "run.json"]
    # a folder a run wrote is replaced as before: after moving the researcher's folder away
    mine.rename(tmp_path / "moved")
    assert _cli(*_run_args(corpus, out)).exit_code == 0
    first = json.loads((out / "mydocs" / "run.json").read_text(encoding="utf-8"))
    assert first["schema"] == store.RUN_SCHEMA
    assert _cli(*_run_args(corpus, out)).exit_code == 0


def test_a_registered_corpus_whose_output_folder_would_hold_it_is_refused(
        tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "project" / "docs")
    assert _cli("corpus", "add", str(corpus), "--name", "project").exit_code == 0
    done = _cli(*_run_args(Path("project"), tmp_path))  # OUT/project holds the corpus
    assert done.exit_code == 2, done.output
    assert "contains the corpus folder" in done.output
    assert sorted(os.listdir(corpus)) == ["2020-通知.txt", "2021-意见.txt"]


def test_a_corpus_named_compare_is_refused_since_compare_writes_there(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "compare")  # OUT/compare is mobilize compare's folder
    out = tmp_path / "out"
    done = _cli(*_run_args(corpus, out))
    assert done.exit_code == 2, done.output
    assert "a corpus named 'compare' cannot be run" in done.output
    assert "mobilize compare" in done.output and "corpus add PATH --name NAME" in done.output
    assert not (out / "compare").exists()
    done = _cli("corpus", "add", str(corpus), "--name", "compare")
    assert done.exit_code == 2 and "invalid corpus name 'compare'" in done.output, done.output
    # registered under another name, it runs; and a comparison then has OUT/compare/ to itself
    assert _cli("corpus", "add", str(corpus), "--name", "compare-notes").exit_code == 0
    done = _cli(*_run_args(Path("compare-notes"), out))
    assert done.exit_code == 0, done.output
    assert store.is_run_folder(out / "compare-notes")


def test_report_rebuilds_only_a_run_folder_and_never_while_a_run_writes_it(tmp_path: Path) -> None:
    corpus = _small_corpus(tmp_path / "mydocs")
    out = tmp_path / "out"
    mine = tmp_path / "thesis"
    mine.mkdir()
    (mine / "draft.md").write_text("mine", encoding="utf-8")
    done = _cli("report", "--run", str(mine))
    assert done.exit_code == 2 and "not a mobilize run folder" in done.output, done.output
    assert os.listdir(mine) == ["draft.md"]

    assert _cli(*_run_args(corpus, out)).exit_code == 0
    run = out / "mydocs"
    with store.run_lock(out, "mydocs"):  # this test process is a run writing the folder
        done = _cli("report", "--run", str(run))
    assert done.exit_code == 3, done.output
    assert "another mobilize run is writing this output folder" in done.output
    assert not (run / "report.html").exists()
    done = _cli("report", "--run", str(run))
    assert done.exit_code == 0, done.output
    assert (run / "report.html").is_file()


def test_a_report_that_fails_midway_leaves_the_earlier_report_intact(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    corpus = _small_corpus(tmp_path / "mydocs")
    out = tmp_path / "out"
    assert _cli(*_run_args(corpus, out)).exit_code == 0
    run = out / "mydocs"
    done = _cli("report", "--run", str(run))
    assert done.exit_code == 0, done.output
    before = _files(run)
    assert "report.html" in before and "tables/rates_by_period.csv" in before

    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    # the explorer is written last: report.html, report.md, figures and tables are done
    monkeypatch.setattr("pipeline.explore.write_explorer", full)
    five = Path(__file__).resolve().parent.parent / "lexicons" / "periods-five-year-plans.yaml"
    done = _cli("report", "--run", str(run), "--periods", str(five))
    assert done.exit_code == 2, done.output
    assert _files(run) == before  # the earlier report, byte for byte
    assert "cannot write the report (No space left on device)" in done.output
    assert "the run folder is unchanged" in done.output
    assert sorted(os.listdir(out)) == [".mydocs.lock", "mydocs"]  # no temporary folder left
    # a report killed midway leaves its temporary folder: the next one removes it
    (out / ".mydocs.tmp-999999" / "figures").mkdir(parents=True)
    monkeypatch.undo()
    done = _cli("report", "--run", str(run), "--periods", str(five))
    assert done.exit_code == 0, done.output
    assert sorted(os.listdir(out)) == [".mydocs.lock", "mydocs"]
    after = _files(run)
    assert after["tables/rates_by_period.csv"] != before["tables/rates_by_period.csv"]
    assert {k: v for k, v in after.items() if k.endswith(".csv") and "/" not in k} == \
        {k: v for k, v in before.items() if k.endswith(".csv") and "/" not in k}  # the tables


def test_compare_replaces_only_a_comparison_folder_it_wrote(tmp_path: Path) -> None:
    run = engine.run_local(_settings(shared_corpus("npc-resolutions-gwr-zh"), tmp_path / "runs",
                                     tmp_path / "cache")).run_dir
    out = tmp_path / "out"
    args = ["compare", "--run", str(run), "--by", "year", "--a", "2025", "--b", "2024",
            "--out", str(out), "--lexicon", str(SEED_LEXICON)]
    mine = out / "compare" / "year-2025-vs-2024"
    mine.mkdir(parents=True)
    (mine / "rates.csv").write_text("my own rates\n", encoding="utf-8")
    done = _cli(*args)
    assert done.exit_code == 2, done.output
    assert "is not a mobilize comparison folder" in done.output
    assert (mine / "rates.csv").read_text(encoding="utf-8") == "my own rates\n"
    shutil.rmtree(mine)
    for _ in range(2):  # written, then replaced
        done = _cli(*args)
        assert done.exit_code == 0, done.output
        marker = json.loads((mine / "comparison.json").read_text(encoding="utf-8"))
        assert marker["schema"] == store.COMPARE_SCHEMA and marker["a"] == "2025"
        assert (mine / "differences.csv").is_file()
    assert sorted(os.listdir(out / "compare")) == [".year-2025-vs-2024.lock", "year-2025-vs-2024"]


# --------------------------------------------------------------------------- reading the corpus


@pytest.mark.parametrize("swap_at", [1, 2, 3],
                         ids=["after-the-scan", "after-read_source-check", "between-check-and-open"])
def test_a_file_swapped_for_a_link_after_the_check_is_not_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swap_at: int) -> None:
    """The corpus check resolves the path; a file swapped for a symlink to a file outside the
    corpus between that check and the open must not be read. ``swap_at``: after which check of
    that file the swap happens (1: the scan's, 2: read_source's, 3: the last one, right before
    the file is opened)."""
    from pipeline import ingest

    corpus = _small_corpus(tmp_path / "corpus")
    secret = tmp_path / "secret.txt"
    secret.write_text("外部机密文件内容，不得读取。\n", encoding="utf-8")
    target = (corpus / "2021-意见.txt").resolve()
    real_inside = ingest._inside
    calls = {"n": 0, "swapped": False}

    def inside_then_swap(root: Path, candidate: Path) -> bool:
        ok = real_inside(root, candidate)
        if Path(candidate).resolve() == target or Path(candidate) == corpus / "2021-意见.txt":
            calls["n"] += 1
            if calls["n"] == swap_at and not calls["swapped"]:
                target.unlink()
                target.symlink_to(secret)
                calls["swapped"] = True
        return ok

    monkeypatch.setattr(ingest, "_inside", inside_then_swap)
    corpus_read = ingest.load_corpus(corpus)
    assert calls["swapped"], "the swap point was never reached"
    texts = [d.text for d in corpus_read.documents]
    assert not any("机密" in t for t in texts)
    failed = [e for e in corpus_read.ledger if e.status == "failed"]
    assert [e.path for e in failed] == ["2021-意见.txt"]
    assert failed[0].reason.startswith("2021-意见.txt: ") and "not read" in failed[0].reason
    assert [d.path for d in corpus_read.documents] == ["2020-通知.txt"]


# --------------------------------------------------------------------------- no process left behind


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_pool_workers_end_when_the_run_is_killed(tmp_path: Path, sig: signal.Signals) -> None:
    psutil = pytest.importorskip("psutil")
    # 3.6 MB: above engine.POOL_MIN_BYTES for jieba (1 MB; jieba-rs, the default, needs 8 MB)
    corpus = shared_corpus("gwr-national-zh")
    env = run_env(MOBILIZE_CACHE_DIR=str(tmp_path / "cache"))  # cold: the workers have work
    proc = subprocess.Popen(_mobilize(corpus, tmp_path / "out", "--segmenter", "jieba"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    main = psutil.Process(proc.pid)
    workers: list[Any] = []

    def two_workers() -> bool:
        nonlocal workers
        try:
            workers = main.children(recursive=True)
        except psutil.NoSuchProcess:
            return False
        return len(workers) >= 2

    try:
        _poll(proc, two_workers, "its pool workers started")
        time.sleep(0.5)
        workers = main.children(recursive=True)
        proc.send_signal(sig)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -sig

    def alive() -> list[Any]:
        out = []
        for w in workers:
            try:
                if w.is_running() and w.status() != psutil.STATUS_ZOMBIE:
                    out.append(w)
            except psutil.NoSuchProcess:
                pass
        return out

    deadline = time.monotonic() + 10
    while alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    left = alive()
    for w in left:  # (never leave them to the next test)
        w.kill()
    assert not left, f"{len(left)} of {len(workers)} worker(s) outlived the killed run"
