"""The Prefect flow: its parameters, its summary artifact, its environment, and that it writes
exactly the tables the local engine writes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import REPO, shared_corpus
from conftest_server import SEED_LEXICON, csv_bytes

from pipeline import flow
from pipeline.config import Settings
from pipeline.errors import MobilizeError


def _settings(corpus: Path, out: Path, cache: Path) -> Settings:
    return Settings(corpus=corpus, corpus_name=corpus.name, out=out, lexicon=SEED_LEXICON,
                    cache=cache, report=False, progress=False, workers=2)


# --------------------------------------------------------------------------- parameters


def test_settings_survive_the_trip_through_flow_parameters(tmp_path: Path) -> None:
    s = Settings(corpus=tmp_path / "语料", corpus_name="语料", out=tmp_path / "out",
                 lexicon=tmp_path / "lex.yaml", periods=None, segmenter="jieba-rs", hmm=False,
                 workers=3, batch_size=7, cache=tmp_path / "cache", wait=2.5)
    params = flow.settings_to_parameters(s)
    assert params["corpus"] == str(tmp_path / "语料") and params["out"] == str(tmp_path / "out")
    assert params["options"]["segmenter"] == "jieba-rs" and params["options"]["periods"] is None
    assert flow.settings_from_parameters(**params) == s


def test_flow_parameters_reject_an_unknown_option_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MobilizeError, match="segmentor"):
        flow.settings_from_parameters(str(tmp_path), str(tmp_path), {"segmentor": "jieba"})


def test_flow_parameters_default_the_corpus_name_to_the_folder_name(tmp_path: Path) -> None:
    s = flow.settings_from_parameters(str(tmp_path / "gwr"), str(tmp_path / "out"), {})
    assert s.corpus_name == "gwr" and s.corpus == tmp_path / "gwr"


# --------------------------------------------------------------------------- summary


def _scores_csv(path: Path, rows: list[tuple[str, str, str, str, int, int]]) -> Path:
    head = "doc_id,scope,dimension,category,count,tokens,rate_per_10k\n"
    path.write_text(head + "".join(f"{d},{s},{dim},{c},{n},{t},0\n"
                                   for d, s, dim, c, n, t in rows), encoding="utf-8")
    return path


def test_category_totals_pool_counts_and_tokens_over_documents_in_scope_all(tmp_path: Path) -> None:
    path = _scores_csv(tmp_path / "scores.csv", [
        ("a", "all", "feature", "F1", 2, 1000), ("b", "all", "feature", "F1", 3, 4000),
        ("a", "domain_sentences", "feature", "F1", 2, 10), ("a", "all", "pathway", "P1", 0, 1000)])
    assert flow.category_totals(path) == {("feature", "F1"): 10.0, ("pathway", "P1"): 0.0}
    assert flow.category_totals(tmp_path / "missing.csv") == {}


def test_summary_lists_the_largest_changes_first_with_signs() -> None:
    before = {("feature", "F1"): 10.0, ("pathway", "P1"): 5.0, ("challenge", "C1"): 1.0}
    after = {("feature", "F1"): 9.5, ("pathway", "P1"): 8.0, ("challenge", "C1"): 1.0}
    md = flow.summary_markdown("npc", "/c/npc", {"documents": 20, "ingested": 20, "segmented": 1},
                               before, after)
    assert "# mobilize run: npc" in md and "- documents: 20 (ingested 20," in md
    table = [line for line in md.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert table == ["| pathway | P1 | 5.000 | 8.000 | +3.000 |",
                     "| feature | F1 | 10.000 | 9.500 | -0.500 |"]


def test_summary_says_so_when_there_is_no_previous_run_or_no_change() -> None:
    now = {("feature", "F1"): 1.0}
    assert "No previous outputs" in flow.summary_markdown("x", "/x", {}, {}, now)
    assert "No category's rate changed" in flow.summary_markdown("x", "/x", {}, now, now)


def test_summary_escapes_table_pipes_in_names() -> None:
    md = flow.summary_markdown("a|b", "/x", {}, {("feature", "F|1"): 1.0}, {("feature", "F|1"): 2.0})
    assert "| feature | F\\|1 |" in md and "run: a\\|b" in md


def test_artifact_keys_are_lowercase_dashes_and_distinct_for_chinese_names() -> None:
    assert flow.artifact_key("gwr-national-zh") == "mobilize-gwr-national-zh"
    a, b = flow.artifact_key("政府工作报告"), flow.artifact_key("社会保障")
    assert a != b
    for key in (a, b, flow.artifact_key("NPC_Resolutions 2025")):
        assert key.startswith("mobilize-") and all(c.islower() or c.isdigit() or c == "-"
                                                   for c in key)


# --------------------------------------------------------------------------- environment


@pytest.fixture(autouse=True)
def _restore_prefect_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """``prefect_environment`` sets process-wide variables: undo them after each test."""
    for key in (*flow._PREFECT_DEFAULTS, "PREFECT_HOME", "PREFECT_LOGGING_LEVEL",
                "PREFECT_RESULTS_LOCAL_STORAGE_PATH", "PREFECT_API_URL"):
        if key in os.environ:
            monkeypatch.setenv(key, os.environ[key])
        else:  # recorded as absent, so that teardown removes what the test added
            monkeypatch.setenv(key, "")
            monkeypatch.delenv(key)


def test_prefect_environment_keeps_prefect_in_mobilize_data_and_offline(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in ("PREFECT_HOME", "PREFECT_API_URL", "DO_NOT_TRACK", "PREFECT_LOGGING_LEVEL",
                "PREFECT_SERVER_ANALYTICS_ENABLED"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path / "home"))
    decided = flow.prefect_environment()
    assert decided["PREFECT_HOME"] == str(tmp_path / "home" / "prefect")
    assert (tmp_path / "home" / "prefect").is_dir()
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["DO_NOT_TRACK"] == "1"
    assert os.environ["PREFECT_LOGGING_LEVEL"] == "WARNING"
    assert "PREFECT_API_URL" not in decided  # no server recorded: Prefect's temporary one
    flow.prefect_environment(verbose=True)
    assert os.environ["PREFECT_LOGGING_LEVEL"] == "INFO"


def test_prefect_environment_respects_the_users_own_settings(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    decided = flow.prefect_environment()
    assert decided["PREFECT_HOME"] == str(tmp_path / "mine")
    assert decided["PREFECT_API_URL"] == "http://127.0.0.1:9/api"


def test_a_dead_prefect_api_url_is_a_clear_error_not_a_hang(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # port 9: nothing listens
    with pytest.raises(MobilizeError, match="does not answer") as err:
        flow.run_flow(_settings(tmp_path, tmp_path / "out", tmp_path / "cache"))
    assert "PREFECT_API_URL" in err.value.fix


def test_dask_without_a_server_says_it_needs_one(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path / "home"))
    with pytest.raises(MobilizeError, match="needs a running Prefect server"):
        flow.run_flow(_settings(tmp_path, tmp_path / "out", tmp_path / "cache"),
                      task_runner="dask")


def test_serve_without_a_server_says_it_needs_one(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path / "home"))
    with pytest.raises(MobilizeError, match="scheduling needs a running Prefect server"):
        flow.serve(_settings(tmp_path, tmp_path / "out", tmp_path / "cache"), cron="0 3 * * 1")


def test_importing_the_flow_module_does_not_import_prefect() -> None:
    import subprocess
    import sys

    code = "import sys, pipeline.flow, pipeline.cli; print('prefect' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=REPO)
    assert out.stdout.strip() == "False"


def test_the_flow_records_its_parameters_as_json_without_importing_fastapi(tmp_path: Path) -> None:
    """Prefect's own ``serialize_parameters`` imports FastAPI's encoder (seconds of every
    run); the flow's parameters are JSON already, and are recorded as they are."""
    import subprocess
    import sys

    code = ("import json, sys\n"
            "from pathlib import Path\n"
            "from pipeline import flow\n"
            "from pipeline.config import Settings\n"
            f"s = Settings(corpus=Path({str(tmp_path)!r}), out=Path({str(tmp_path / 'out')!r}))\n"
            "params = flow.settings_to_parameters(s)\n"
            "got = flow._get_flow().serialize_parameters(params)\n"
            "assert got == json.loads(json.dumps(params)), got\n"
            "print('fastapi' in sys.modules, got['corpus'], got['options']['workers'])\n")
    env = {**os.environ, "MOBILIZE_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=REPO, env=env)
    imported, corpus, workers = out.stdout.split()
    assert imported == "False" and corpus == str(tmp_path)
    assert int(workers) == Settings().workers


# --------------------------------------------------------------------------- the real flow


@pytest.mark.slow
def test_prefect_and_local_engines_write_byte_identical_tables(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Each engine from a cold cache of its own, on the real NPC resolutions (20 documents)."""
    from pipeline import engine

    corpus = shared_corpus("npc-resolutions-gwr-zh")
    monkeypatch.delenv("PREFECT_API_URL", raising=False)  # the temporary-server path
    local = engine.run_local(_settings(corpus, tmp_path / "local", tmp_path / "cache-local"))
    phases: list[str] = []
    started = time.time()
    result = flow.run_flow(_settings(corpus, tmp_path / "prefect", tmp_path / "cache-prefect"),
                           phase=phases.append, started=started)
    # the phases in order, Prefect's start-up first; the time waited includes that start-up
    assert phases[:3] == [engine.PHASE_PREFECT, engine.PHASE_PLAN, engine.PHASE_DOCUMENTS]
    assert engine.PHASE_TABLES in phases
    seconds = result.stats.seconds
    assert 0 < seconds["prefect_start"] < seconds["waited"] <= time.time() - started
    assert seconds["waited"] > seconds["total"]
    assert result.stats.segmented == local.stats.segmented == 20
    assert result.stats.scored == 20 and result.stats.documents == 20
    assert result.manifest["parameters"]["engine"] == "prefect"
    assert csv_bytes(result.run_dir) == csv_bytes(local.run_dir)
    assert "PREFECT_API_URL" not in os.environ  # the temporary server is gone with its URL
