"""A researcher's first use: the version, pipes, progress, times, narrow terminals, empty
corpora, titles, coverage that explains itself, and packaging."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import engine, validation
from pipeline.cli import _register
from pipeline.cli._apps import app
from pipeline.config import DEFAULT_LEXICON, PROJECT_ROOT, Settings
from pipeline.errors import MobilizeError
from pipeline.ingest import Document, load_corpus, scan_corpus
from pipeline.lexicon import Category, Term, build_lexicon, load_lexicon
from pipeline.match import Matcher
from tests.conftest import REPO, shared_corpus

DEMO = REPO / "corpora" / "demo"
MINI = REPO / "tests" / "fixtures" / "engine" / "mini.yaml"
MOBILIZE = Path(sys.executable).with_name("mobilize")
runner = CliRunner()


def _cli(*args: str | Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    _register()
    return runner.invoke(app, [str(a) for a in args], env=env)


def _corpus(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


# --------------------------------------------------------------------------- the version


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version_prints_the_installed_version(flag: str) -> None:
    from importlib.metadata import version

    result = _cli(flag)
    assert result.exit_code == 0
    assert result.stdout == f"mobilize {version('mobilize')}\n"


def test_json_outputs_say_which_mobilize_wrote_them() -> None:
    from importlib.metadata import version

    result = _cli("lexicon", "show", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data["mobilize_version"] == version("mobilize")
    assert list(data)[0] == "mobilize_version"


# --------------------------------------------------------------------------- pipes


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "MOBILIZE_CONFIG_DIR": str(tmp_path / "config"),
            "MOBILIZE_CACHE_DIR": os.environ.get("MOBILIZE_CACHE_DIR", str(tmp_path / "cache")),
            "MOBILIZE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}


@pytest.mark.slow
@pytest.mark.parametrize("as_json", [False, True])
def test_a_closed_pipe_ends_kwic_quietly_with_exit_0(tmp_path: Path, as_json: bool) -> None:
    # `mobilize lexicon kwic ... | head -1`: far more than a pipe's 64 KB buffer, so the
    # command writes into a closed pipe (it exited 1, "some documents failed").
    corpus = shared_corpus("gwr-national-zh")
    cmd = [str(MOBILIZE), "lexicon", "kwic", "社会", "--corpus", str(corpus), "--width", "40"]
    proc = subprocess.Popen(cmd + (["--json"] if as_json else []), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_env(tmp_path))
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode("utf-8", "replace")
    assert proc.wait(timeout=300) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


# --------------------------------------------------------------------------- kwic


@pytest.mark.parametrize("term", ["", "   "])
def test_kwic_of_an_empty_term_is_an_error_with_the_fix(term: str) -> None:
    result = _cli("lexicon", "kwic", term, "--corpus", DEMO)
    assert result.exit_code == 2
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = " ".join(result.output.split())
    assert "the TERM is" in out and "mobilize lexicon kwic 新常态" in out


def test_kwic_json_gives_the_lines_and_says_a_longer_term_took_the_hits(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"2016-a.txt": "适应经济新常态，推进改革。\n",
                                "2017-b.txt": "认识新常态，引领新常态。\n"})
    result = _cli("lexicon", "kwic", "新常态", "--corpus", corpus, "--width", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [(ln["doc_id"], ln["left"], ln["match"], ln["right"]) for ln in data["lines"]] == [
        ("2017-b", "认识", "新常态", ",引领"), ("2017-b", ",引领", "新常态", "。")]
    assert data["lexicon_term"] is True
    assert data["inside_longer_matches"] == 1 and data["longer_matches"] == ["经济新常态"]


def test_kwic_says_when_a_longer_term_took_every_hit(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"2016-a.txt": "适应经济新常态，推进改革。\n"})
    result = _cli("lexicon", "kwic", "新常态", "--corpus", corpus, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "0 line(s)" in out
    assert ("新常态 occurs 1 time(s) in this corpus, but always inside a longer term or pattern "
            "of its category (经济新常态), which took every hit") in out


# --------------------------------------------------------------------------- coverage


def _doc(doc_id: str, text: str) -> Document:
    return Document(doc_id, f"{doc_id}.txt", text, "x", "2020", 2020, {})


def _lexicon() -> object:
    terms = (Term("经济新常态", "C3", "challenge"), Term("新常态", "C3", "challenge"),
             Term("数字鸿沟", "C3", "challenge"),
             Term("稳增长", "C3", "challenge", pattern="(?<!平)稳增长"))
    return build_lexicon(name="t", version="1", categories=(
        Category("C3", "challenge", "经济", "economy", "", terms, ()),))


def test_coverage_tells_terms_that_never_occur_from_terms_inside_longer_matches() -> None:
    lex = _lexicon()
    docs = [_doc("a", "适应经济新常态。经济新常态下平稳增长。")]
    cov = validation.coverage(docs, lex)  # type: ignore[arg-type]
    assert [(t.term, t.hits, t.occurrences) for t in cov.terms] == [
        ("经济新常态", 2, 2), ("新常态", 0, 2), ("数字鸿沟", 0, 0), ("稳增长", 0, 0)]
    assert [t.term for t in cov.never_occurs] == ["数字鸿沟", "稳增长"]
    assert [t.term for t in cov.shadowed] == ["新常态"]
    data = cov.as_dict()
    assert data["never_occurs"] == ["C3:数字鸿沟", "C3:稳增长"]
    assert data["always_inside_longer_match"] == ["C3:新常态"]


def test_shadowing_names_the_longer_terms_that_took_the_hits() -> None:
    lex = _lexicon()
    docs = [_doc("a", "经济新常态，新常态，经济新常态")]
    assert validation.shadowing(docs, Matcher(lex), "新常态") == (2, ["经济新常态"])  # type: ignore[arg-type]
    assert validation.shadowing(docs, Matcher(lex), "经济新常态") == (0, [])  # type: ignore[arg-type]


def test_the_coverage_csv_gives_each_terms_occurrences() -> None:
    import csv

    docs = [_doc("a", "适应经济新常态。经济新常态下平稳增长。")]
    rows = list(csv.DictReader(validation.coverage_csv(
        validation.coverage(docs, _lexicon())).splitlines()))  # type: ignore[arg-type]
    assert [(r["term"], r["hits"], r["occurrences"]) for r in rows] == [
        ("*", "2", ""), ("经济新常态", "2", "2"), ("新常态", "0", "2"), ("数字鸿沟", "0", "0"),
        ("稳增长", "0", "0")]


def test_lexicon_coverage_prints_both_kinds_of_unmatched_terms(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"2016-a.txt": "适应经济新常态，加强社会保障。\n"})
    result = _cli("lexicon", "coverage", "--corpus", corpus, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert " never occur (" in out
    assert "occur but always inside a longer term or pattern of their category (" in out
    assert "C3_economic_normal:新常态 x1" in out


# --------------------------------------------------------------------------- times and phases


def _tiny(tmp_path: Path) -> Path:
    return _corpus(tmp_path, {"2020-a.txt": "加强社会保障，完善养老保险。\n",
                              "2021-b.txt": "推进基层治理，发展慈善事业。\n"})


def test_the_run_reports_the_time_its_user_waited(tmp_path: Path) -> None:
    settings = Settings(corpus=_tiny(tmp_path), corpus_name="corpus", out=tmp_path / "out",
                        lexicon=MINI, segmenter="jieba-rs", engine="local", report=False,
                        progress=False, cache=tmp_path / "cache", workers=1)
    result = engine.run_local(settings, started=time.time() - 30.0)
    seconds = result.stats.seconds
    assert 30.0 <= seconds["waited"] < 30.0 + seconds["total"] + 5
    on_disk = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    assert on_disk["stats"]["seconds"]["waited"] == seconds["waited"]


def test_process_seconds_counts_from_the_process_start() -> None:
    if not Path("/proc/self/stat").is_file():
        pytest.skip("no /proc on this system: the CLI then counts from its own start")
    code = ("import time; time.sleep(1.5); from pipeline.cli._common import process_seconds; "
            "print(process_seconds())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert 1.5 <= float(out) < 30


@pytest.mark.parametrize(("since", "counted"), [(2.0, 2.0), (500.0, 0.0), (None, 0.0)])
def test_the_wait_counts_from_the_process_start_unless_it_was_forked_long_before(
        monkeypatch: pytest.MonkeyPatch, since: float | None, counted: float) -> None:
    """A subshell that runs `mobilize run` as its last command was forked before the commands
    it ran first (a pip install, say): its fork time is not when the user began to wait."""
    import time

    from pipeline import cli
    from pipeline.cli import _common

    monkeypatch.setattr(_common, "process_seconds", lambda: since)
    monkeypatch.setattr(_common, "started_at", None, raising=False)
    before = time.time()
    cli._mark_start()
    assert before - counted - 0.5 <= _common.started_at <= time.time() - counted


def test_run_json_and_the_summary_give_the_waited_time(tmp_path: Path) -> None:
    args = ["run", "--corpus", str(_tiny(tmp_path)), "--out", str(tmp_path / "out"),
            "--lexicon", str(MINI), "--segmenter", "jieba-rs", "--engine", "local", "--no-report"]
    env = _env(tmp_path)
    proc = subprocess.run([str(MOBILIZE), *args, "--json"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    seconds = json.loads(proc.stdout)["stats"]["seconds"]
    # the interpreter's start and the imports are part of the wait
    assert seconds["waited"] > seconds["total"] > 0
    text = subprocess.run([str(MOBILIZE), *args], capture_output=True, text=True, env=env,
                          timeout=300).stdout
    line = next(ln for ln in text.splitlines() if ln.startswith("seconds"))
    assert float(line.split()[1]) > 0 and "(scan " in line


def test_run_local_names_each_phase_in_order(tmp_path: Path) -> None:
    phases: list[str] = []
    settings = Settings(corpus=_tiny(tmp_path), corpus_name="corpus", out=tmp_path / "out",
                        lexicon=MINI, segmenter="jieba-rs", engine="local", report=True,
                        progress=False, cache=tmp_path / "cache", workers=1, periods=None)
    engine.run_local(settings, phase=phases.append)
    assert phases[:4] == [engine.PHASE_PLAN, engine.PHASE_DOCUMENTS, engine.PHASE_TABLES,
                          engine.PHASE_REPORT]
    steps = [p.removeprefix(engine.PHASE_REPORT + ": ") for p in phases[4:]]
    assert steps == ["reading the tables", "statistics", "keywords in context, coverage",
                     "term timelines", "figures, tables, report.html", "explorer (explore.html)"]


def test_the_progress_bar_names_the_phases_and_never_shows_0_of_unknown(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from pipeline.cli import run_cmd

    buf = io.StringIO()
    monkeypatch.setattr(run_cmd, "err_console", Console(file=buf, force_terminal=True,
                                                        width=120, color_system=None))
    settings = Settings(corpus=_tiny(tmp_path), corpus_name="corpus", out=tmp_path / "out",
                        lexicon=MINI, segmenter="jieba-rs", engine="local", report=False,
                        progress=True, cache=tmp_path / "cache", workers=1)
    result = run_cmd._run(settings)
    assert result.stats.ingested == 2
    shown = buf.getvalue()
    for phase in (engine.PHASE_PLAN, engine.PHASE_DOCUMENTS, engine.PHASE_TABLES):
        assert f"corpus: {phase}" in shown
    assert "2/2" in shown and "0/?" not in shown
    import threading

    assert not [t for t in threading.enumerate() if t.name == "mobilize-progress"]


# --------------------------------------------------------------------------- empty corpora


def test_an_empty_corpus_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = _cli("run", "--corpus", tmp_path / "empty", "--out", tmp_path / "out",
                  "--engine", "local", env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "no documents found in" in result.output and "(the folder is empty)" in result.output
    assert not (tmp_path / "out" / "empty").exists()


def test_a_corpus_with_nothing_ingestible_says_what_was_skipped(tmp_path: Path) -> None:
    root = _corpus(tmp_path, {"table.xlsx": "x", ".DS_Store": "x", "~$draft.docx": "x",
                              "README.md": "关于本语料"})
    result = _cli("run", "--corpus", root, "--out", tmp_path / "out", "--engine", "local",
                  env={"COLUMNS": "400"})
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "no documents found in" in out and "3 file(s) skipped:" in out
    assert "1 corpus file(s): README.md" in out
    assert not (tmp_path / "out" / "corpus").exists()


def test_a_run_where_every_document_failed_exits_2_with_the_reasons(tmp_path: Path) -> None:
    root = _corpus(tmp_path, {"2020-a.txt": "", "2021-b.txt": ""})
    result = _cli("run", "--corpus", root, "--out", tmp_path / "out", "--engine", "local",
                  "--lexicon", MINI, env={"COLUMNS": "400"})
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "no document could be read: 2 failed (2020-a.txt: empty file (0 bytes)" in out


def test_lock_files_and_hidden_files_are_skipped_not_failed(tmp_path: Path) -> None:
    root = _corpus(tmp_path, {"2020-a.txt": "社会保障", "~$2020-a.docx": "lock",
                              ".hidden.txt": "社会保障", ".git/config": "x", ".git/HEAD": "x"})
    ledger = {e.path: e for e in load_corpus(root).ledger}
    assert ledger["~$2020-a.docx"].status == "skipped"
    assert "Word lock file" in ledger["~$2020-a.docx"].reason
    assert (ledger[".hidden.txt"].status, ledger[".hidden.txt"].reason) == (
        "skipped", "a hidden file, not read")
    assert (ledger[".git"].status, ledger[".git"].reason) == (
        "skipped", "a hidden folder (2 file(s)), not read")
    assert sorted(ledger) == [".git", ".hidden.txt", "2020-a.txt", "~$2020-a.docx"]


def test_the_demo_corpus_has_no_skipped_files_only_its_own(tmp_path: Path) -> None:
    scan = scan_corpus(DEMO)
    own = sorted(e.path for e in scan.ledger if e.status == "corpus_file")
    assert own == ["README.md", "metadata.csv"]
    assert [e for e in scan.ledger if e.status in ("skipped", "failed")] == []
    result = _cli("corpus", "validate", DEMO, env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "17 ingested, 0 skipped, 0 failed (and 2 corpus files" in result.output


def test_readme_and_notes_without_metadata_are_corpus_files(tmp_path: Path) -> None:
    root = _corpus(tmp_path, {"2020-a.txt": "社会保障", "README.md": "# 说明",
                              "NOTES.txt": "来源", "sub/README.md": "# 子目录的文件是文档"})
    corpus = load_corpus(root)
    ledger = {e.path: e.status for e in corpus.ledger}
    assert ledger == {"2020-a.txt": "ingested", "README.md": "corpus_file",
                      "NOTES.txt": "corpus_file", "sub/README.md": "ingested"}
    assert corpus.counts() == {"ingested": 2, "skipped": 0, "failed": 0, "corpus_file": 2}


# --------------------------------------------------------------------------- titles


def test_titles_come_from_the_documents_when_metadata_has_none(tmp_path: Path) -> None:
    import docx

    root = _corpus(tmp_path, {
        "2020-a.html": "<html><head><title>关于 &amp; 养老</title></head><body><h1>正文标题"
                       "</h1><p>社会保障体系</p></body></html>",
        "2021-b.html": "<html><body><h1>医疗<b>保障</b>通知</h1><p>社会保障体系</p></body></html>",
        "2022-c.md": "前言\n\n## 第二条  社会救助 ##\n\n内容\n",
        "2024-e.txt": "没有标题的文本"})
    document = docx.Document()
    document.add_paragraph("正文在前")
    document.add_heading("关于就业的意见", 1)
    document.save(root / "2023-d.docx")
    titles = {d.doc_id: d.meta.get("title") for d in load_corpus(root).documents}
    assert titles == {"2020-a": "关于 & 养老", "2021-b": "医疗保障通知", "2022-c": "第二条 社会救助",
                      "2023-d": "关于就业的意见", "2024-e": None}


def test_metadata_titles_win_and_runs_write_the_found_titles(tmp_path: Path) -> None:
    root = _corpus(tmp_path, {"2021-b.html": "<h1>医疗保障通知</h1><p>社会保障</p>"})
    settings = Settings(corpus=root, corpus_name="corpus", out=tmp_path / "out", lexicon=MINI,
                        segmenter="jieba-rs", engine="local", report=False, progress=False,
                        cache=tmp_path / "cache", workers=1)
    docs = pd.read_csv(engine.run_local(settings).run_dir / "documents.csv")
    assert docs["title"].tolist() == ["医疗保障通知"]
    (root / "metadata.csv").write_text("doc_id,date,title,path\nb,2021,元数据标题,2021-b.html\n",
                                       encoding="utf-8")
    assert [d.meta["title"] for d in load_corpus(root).documents] == ["元数据标题"]


# --------------------------------------------------------------------------- 80 columns

NARROW = {"COLUMNS": "80"}


def test_lexicon_show_at_80_columns_prints_every_category_id_whole() -> None:
    result = _cli("lexicon", "show", env=NARROW)
    assert result.exit_code == 0
    for cat in load_lexicon(DEFAULT_LEXICON).categories:
        assert cat.id in result.stdout, cat.id
    table = result.stdout.splitlines()[2:]  # (after the name and hash, and the title)
    assert max(len(line) for line in table) <= 80 and "…" not in result.stdout


def test_lexicon_coverage_at_80_columns_keeps_ids_numbers_and_terms_whole(
        tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, {"2016-a.txt": "实施全民参保计划，健全最低生活保障制度。\n"})
    result = _cli("lexicon", "coverage", "--corpus", corpus, env=NARROW)
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()
            if line.strip() and line.split()[0][:2] in {c.id[:2] for c in
                                                        load_lexicon(DEFAULT_LEXICON).categories}}
    assert set(rows) == {c.id for c in load_lexicon(DEFAULT_LEXICON).categories}
    assert rows["F2_common_prosperity"][2:6] == ["1", "1/1", "最低生活保障", "100%"]
    # no cell cut short (the labels of gap phrases, such as 缩小…差距, hold an ellipsis)
    shown = result.stdout
    for label in sorted((t.text for c in load_lexicon(DEFAULT_LEXICON).categories for t in c.terms
                         if "…" in t.text), key=len, reverse=True):
        shown = shown.replace(label, "")
    assert "…" not in shown


def test_kwic_at_80_columns_keeps_the_whole_context(tmp_path: Path) -> None:
    # 20 characters each side (the default width): they used to be cut to about 6
    left, right = "级政府要认真贯彻落实中央决策部署切实加强", "建设推动社会保障事业高质量发展确保各项政"
    corpus = _corpus(tmp_path, {"2021-national-report.txt": f"{left}社会保障体系{right}\n"})
    result = _cli("lexicon", "kwic", "社会保障体系", "--corpus", corpus, env=NARROW)
    assert result.exit_code == 0, result.output
    assert f"{left}【社会保障体系】{right}" in result.stdout
    assert "2021-national-report  2021  candidate" in result.stdout


@pytest.mark.parametrize("command", [["run"], ["report"], ["compare"], ["serve"], ["deploy"]])
def test_help_shows_defaults_without_this_machines_paths(command: list[str]) -> None:
    result = _cli(*command, "--help", env=NARROW)
    assert result.exit_code == 0
    flat = "".join(result.output.split()).replace("│", "")
    assert "".join(str(PROJECT_ROOT).split()) not in flat
    if command == ["run"]:
        assert "thebundleddemocorpus,corpora/demo" in flat and "thebundledlexicon" in flat
        assert "…" not in result.output


def test_the_run_summary_prints_the_output_path_on_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "a-rather-long-output-folder-name-for-the-researchers-reports"
    monkeypatch.chdir(tmp_path)
    result = _cli("run", "--corpus", _tiny(tmp_path), "--out", out, "--lexicon", MINI,
                  "--segmenter", "jieba-rs", "--engine", "local", "--no-report", env=NARROW)
    assert result.exit_code == 0, result.output
    # relative to the working folder, and never broken inside a name
    assert f"output     {out.name}/corpus\n" in result.stdout


# --------------------------------------------------------------------------- packaging


def test_pyproject_uses_an_spdx_license_and_bounds_setuptools() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT"
    backend = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    assert backend and ">=77" in backend[0] and "<" in backend[0]


def test_dask_is_an_extra_that_the_test_extra_includes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = [d.split(">")[0].split("<")[0].split("[")[0] for d in project["dependencies"]]
    assert "dask" not in names and "prefect-dask" not in names
    extra = project["optional-dependencies"]
    assert any(d.startswith("dask[distributed]") for d in extra["dask"])
    assert any(d.startswith("prefect-dask") for d in extra["dask"])
    assert "mobilize[dask]" in extra["test"]


def test_asking_for_dask_without_it_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "prefect_dask" else real(name, *a))
    result = _cli("run", "--corpus", _tiny(tmp_path), "--out", tmp_path / "out",
                  "--task-runner", "dask", env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "pip install 'mobilize[dask]'" in result.output and "prefect_dask" in result.output


def test_missing_corpus_errors_stay_mobilize_errors(tmp_path: Path) -> None:
    with pytest.raises(MobilizeError, match="no documents found"):
        engine.plan_run(Settings(corpus=_corpus(tmp_path, {}), corpus_name="corpus",
                                 cache=tmp_path / "cache"))
