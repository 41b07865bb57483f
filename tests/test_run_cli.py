"""`mobilize run`: options, JSON output, exit codes (0 ok, 1 failed documents, 2 bad input, 3 locked)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from pipeline.cli import _register
from pipeline.cli._apps import app
from pipeline.store import lock_path
from tests.conftest import REPO, shared_corpus

MINI = REPO / "tests" / "fixtures" / "engine" / "mini.yaml"
runner = CliRunner()


def _run(*args: str):  # type: ignore[no-untyped-def]
    _register()
    return runner.invoke(app, ["run", *args])


def _corpus(tmp_path: Path, n: int = 3) -> Path:
    dst = tmp_path / "corpus"
    dst.mkdir()
    for p in sorted(shared_corpus("npc-resolutions-gwr-zh").glob("*.txt"))[:n]:
        shutil.copy2(p, dst / p.name)
    return dst


def test_run_help_shows_an_example_and_the_options() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for text in ("Example: mobilize run", "--corpus", "--segmenter", "--workers", "--engine",
                 "--no-report", "--to-simplified", "--wait", "--json"):
        assert text in result.output


def test_run_local_prints_the_result_as_json(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path)
    result = _run("--corpus", str(corpus), "--out", str(tmp_path / "out"), "--lexicon", str(MINI),
                  "--segmenter", "jieba-rs", "--engine", "local", "--no-report", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["stats"]["ingested"] == 3 and data["stats"]["failed"] == 0
    assert data["manifest"]["segmenter"]["name"] == "jieba-rs"
    assert Path(data["run_dir"]) == tmp_path / "out" / "corpus"
    assert len(pd.read_csv(tmp_path / "out" / "corpus" / "documents.csv")) == 3


def test_the_summary_names_the_output_folder(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, 1)
    result = _run("--corpus", str(corpus), "--out", str(tmp_path / "out"), "--lexicon", str(MINI),
                  "--segmenter", "jieba-rs", "--engine", "local", "--no-report")
    assert result.exit_code == 0, result.output
    assert "1 ingested" in result.output
    assert str(tmp_path / "out" / "corpus") in result.output.replace("\n", "").replace(" ", "")


def test_a_missing_corpus_exits_2_with_the_fix(tmp_path: Path) -> None:
    result = _run("--corpus", str(tmp_path / "nope"), "--out", str(tmp_path / "out"),
                  "--engine", "local")
    assert result.exit_code == 2
    assert "nope" in result.output


def test_an_unknown_segmenter_exits_2(tmp_path: Path) -> None:
    result = _run("--corpus", str(_corpus(tmp_path, 1)), "--segmenter", "thulac",
                  "--engine", "local")
    assert result.exit_code == 2 and "jieba-rs" in result.output


def test_a_locked_output_folder_exits_3(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, 1)
    out = tmp_path / "out"
    out.mkdir()
    code = ("import time; from filelock import FileLock; "
            f"l = FileLock({str(lock_path(out, 'corpus'))!r}); l.acquire(); "
            "print('held', flush=True); time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = _run("--corpus", str(corpus), "--out", str(out), "--lexicon", str(MINI),
                      "--engine", "local", "--wait", "0.5")
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 3
    assert "another mobilize run" in result.output


def test_failed_documents_exit_1_but_outputs_are_written(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, 2)
    meta = "doc_id,title,date\n" + "".join(
        f"{p.stem},t,2020\n" for p in sorted(corpus.glob("*.txt"))) + "ghost,missing,2021\n"
    (corpus / "metadata.csv").write_text(meta, encoding="utf-8")
    result = _run("--corpus", str(corpus), "--out", str(tmp_path / "out"), "--lexicon", str(MINI),
                  "--segmenter", "jieba-rs", "--engine", "local", "--no-report", "--json")
    assert result.exit_code == 1, result.output
    ledger = pd.read_csv(tmp_path / "out" / "corpus" / "ledger.csv", keep_default_na=False)
    assert ledger.loc[ledger["doc_id"] == "ghost", "status"].tolist() == ["failed"]
    assert len(pd.read_csv(tmp_path / "out" / "corpus" / "documents.csv")) == 2
