"""`mobilize run`: options, JSON output, exit codes (0 ok, 1 failed documents, 2 bad input, 3 locked)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
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


def test_jieba_rs_is_the_default_segmenter_and_jieba_the_reference_on_request(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILIZE_CONFIG_DIR", str(tmp_path / "config"))  # no config file
    corpus = _corpus(tmp_path, 2)
    used = {}
    for name, extra in (("default", ()), ("jieba", ("--segmenter", "jieba"))):
        out = tmp_path / f"out-{name}"
        result = _run("--corpus", str(corpus), "--out", str(out), "--lexicon", str(MINI),
                      "--engine", "local", "--no-report", *extra)
        assert result.exit_code == 0, result.output
        run = json.loads((out / "corpus" / "run.json").read_text(encoding="utf-8"))
        used[name] = (run["segmenter"]["name"], run["parameters"]["segmenter"])
        assert f"segmenter  {run['segmenter']['name']} " in result.output
        used[name + "-counts"] = (out / "corpus" / "term_counts.csv").read_bytes()
    assert used["default"] == ("jieba-rs", "jieba-rs")
    assert used["jieba"] == ("jieba", "jieba")
    assert used["default-counts"] == used["jieba-counts"]  # counts never depend on the segmenter
    # a config file's segmenter is the researcher's default
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text('segmenter = "jieba"\n', encoding="utf-8")
    result = _run("--corpus", str(corpus), "--out", str(tmp_path / "out-cfg"), "--lexicon",
                  str(MINI), "--engine", "local", "--no-report")
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "out-cfg" / "corpus" / "run.json").read_text(encoding="utf-8"))
    assert run["segmenter"]["name"] == "jieba"


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


def test_too_many_workers_exit_2_with_the_limit(tmp_path: Path) -> None:
    result = _run("--corpus", str(_corpus(tmp_path, 1)), "--out", str(tmp_path / "out"),
                  "--engine", "local", "--workers", "100000")
    assert result.exit_code == 2
    assert "not between 1 and" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_hostile_metadata_gives_a_full_run_with_every_value_kept_and_shown_safely(
        tmp_path: Path) -> None:
    """Control characters, NUL, ``$...$``, a carriage return, formulas and Markdown links in
    metadata values once crashed the run (openpyxl, mathtext) or corrupted documents.csv.
    Now: every output is written; the tables keep the values exactly; the workbook shows
    control characters as Control Pictures and formulas as text; report.md links nothing."""
    import csv

    from markdown_it import MarkdownIt
    from openpyxl import load_workbook

    corpus = _corpus(tmp_path, 3)
    names = sorted(p.stem for p in corpus.glob("*.txt"))
    titles = ["控制\x01字符\x00标题", '=HYPERLINK("http://evil.example","点我")',
              "第一行\r第二行 [点我](http://evil.example/a) ![跟踪](http://evil.example/t.png)"]
    regions = ["$\\frac{$", "$x^^2$", "<b>粗</b>*斜*"]
    with (corpus / "metadata.csv").open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n", quoting=csv.QUOTE_ALL)  # (a quoted CR)
        w.writerow(["doc_id", "title", "date", "region", "path"])
        for i, name in enumerate(names):
            w.writerow([name, titles[i], f"{2010 + i}-01-01", regions[i], f"{name}.txt"])
    result = _run("--corpus", str(corpus), "--out", str(tmp_path / "out"), "--segmenter",
                  "jieba-rs", "--engine", "local")
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "out" / "corpus"
    with open(run_dir / "documents.csv", encoding="utf-8", newline="") as fh:
        rows = {r["doc_id"]: r for r in csv.DictReader(fh)}
    kept = [t.replace("\r", "\n") for t in titles]  # (a CR inside a metadata field: a line feed)
    assert [rows[n]["title"] for n in names] == kept
    assert [rows[n]["region"] for n in names] == regions
    wb = load_workbook(run_dir / "tables" / "report.xlsx", read_only=True)
    shown = {r[0]: r for r in wb["documents"].iter_rows(min_row=2, values_only=True)}
    assert shown[names[0]][1] == "控制␁字符␀标题"
    assert shown[names[1]][1] == "'" + titles[1]
    assert (run_dir / "figures" / "rates_by_region.png").is_file()
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    page = MarkdownIt("commonmark").enable("table").render(md)
    assert "evil.example" in page  # the text is there ...
    assert not re.search(r"(?:href|src)=\"[^\"]*evil", page)  # ... as text only
    assert re.findall(r"<img src=\"([^\"]*)\"", page) == [  # (the report's own figures)
        f"figures/{name}.png" for name in re.findall(r"!\[(\w+)\]\(figures/", md)]
    assert "<b>" not in page and "<em>斜</em>" not in page


def test_without_a_server_the_prefect_engine_says_once_how_to_start_one(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The hint is one line on stderr, the first time a run in this process has to start
    Prefect's temporary server; not again for the next run; never with --json. (The temporary
    server is given 1 s to answer, so each run stops right after starting it: exit 2.)"""
    from pipeline import flow

    for key in ("PREFECT_API_URL", "PREFECT_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path / "home"))  # no server recorded there
    monkeypatch.setenv("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "1")
    monkeypatch.setitem(flow._HINTED, "given", False)
    corpus = _corpus(tmp_path, 1)
    args = ("--corpus", str(corpus), "--out", str(tmp_path / "out"), "--lexicon", str(MINI),
            "--no-report")

    first = _run(*args)
    assert first.exit_code == 2 and "temporary server did not start" in first.stderr
    hints = [line for line in first.stderr.splitlines() if "mobilize server start" in line
             and "no Prefect server is running" in line]
    assert len(hints) == 1, first.stderr
    assert "--engine local" in hints[0]
    assert "mobilize server start" not in first.stdout
    second = _run(*args)
    assert second.exit_code == 2 and "no Prefect server is running" not in second.stderr

    monkeypatch.setitem(flow._HINTED, "given", False)
    quiet = _run(*args, "--json")
    assert quiet.exit_code == 2 and "no Prefect server is running" not in quiet.stderr
    assert not flow._HINTED["given"]  # (--json did not use up the hint)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # a server is configured
    configured = _run(*args)
    assert configured.exit_code == 2 and "no Prefect server is running" not in configured.stderr


def test_the_command_line_helper_logs_at_the_run_s_level(tmp_path: Path) -> None:
    """`mobilize run` forks its helper before parsing its options; with --verbose the helper's
    own messages (how many sources it processes) still reach stderr, formatted as the run's,
    and without it they do not: the helper is handed the run's log level."""
    import os

    corpus = _corpus(tmp_path, 2)
    code = "from pipeline.cli import main; main()"
    for verbose in (True, False):
        out = tmp_path / f"out-{verbose}"
        env = dict(os.environ, COLUMNS="100", MOBILIZE_CACHE_DIR=str(tmp_path / f"cache-{verbose}"))
        done = subprocess.run(
            [sys.executable, "-c", code, "run", "--corpus", str(corpus), "--out", str(out),
             "--lexicon", str(MINI), "--engine", "local", "--no-report",
             *(["--verbose"] if verbose else [])],
            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        line = "INFO pipeline.engine: corpus: 2 sources, 0 unchanged (from the caches)"
        assert (line in done.stderr) is verbose and ("INFO" in done.stderr) is verbose, \
            done.stderr
        assert (out / "corpus" / "scores.csv").is_file()


def test_the_command_line_module_imports_no_typer_rich_or_pydantic() -> None:
    """`pipeline.cli` (the entry point's module) imports neither typer, rich, pydantic nor
    pandas: `mobilize run` forks its helper before them, so that the helper does not wait for
    their imports (~0.15 s of CPU) before it loads the dictionary and the lexicon."""
    code = ("import sys, pipeline.cli; "
            "print(sorted(m for m in ('typer', 'rich', 'pydantic', 'pandas') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"


#: ``mobilize run`` in a fresh interpreter, with an audit hook that notes in the file named by
#: ``MOBILIZE_TEST_PANDAS_LOG`` any process (the run's, its forked helper, a pool's workers)
#: that imports pandas; it prints whether the run's own process has it in ``sys.modules``.
_RUN_WITHOUT_PANDAS = """
import os, sys
main_pid = os.getpid()
def hook(event, args):
    if event == "import" and args[0] == "pandas":
        with open(os.environ["MOBILIZE_TEST_PANDAS_LOG"], "a") as fh:
            fh.write("run\\n" if os.getpid() == main_pid else "child\\n")
sys.addaudithook(hook)
from pipeline.cli import main
sys.argv = ["mobilize", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
print("pandas" in sys.modules)
"""


def test_a_run_without_report_never_imports_pandas(tmp_path: Path) -> None:
    """`mobilize run --no-report` (local engine, a fresh cache, the default segmenter and the
    reference jieba) assembles and writes its tables with pyarrow alone: neither the run's
    process nor its helper imports pandas (~0.3-0.5 s of a small corpus's wait), and what pandas
    reads back from the files is as before (``year`` a nullable Int64)."""
    import os

    corpus = shared_corpus("npc-resolutions-gwr-zh")
    for segmenter in ("jieba-rs", "jieba"):
        log = tmp_path / f"pandas-{segmenter}.log"
        env = dict(os.environ, MOBILIZE_CACHE_DIR=str(tmp_path / f"cache-{segmenter}"),
                   MOBILIZE_TEST_PANDAS_LOG=str(log))
        out = tmp_path / f"out-{segmenter}"
        done = subprocess.run(
            [sys.executable, "-c", _RUN_WITHOUT_PANDAS, "run", "--corpus", str(corpus), "--out",
             str(out), "--engine", "local", "--no-report", "--segmenter", segmenter],
            env=env, capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "False", done.stdout
        assert not log.exists(), log.read_text()
        docs = pd.read_parquet(out / corpus.name / "documents.parquet")
        assert len(docs) == 20 and str(docs["year"].dtype) == "Int64"
