"""Against a real ``prefect server start``: a served flow triggered through the API, runs that
use the server, and the artifacts each run publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_corpus
from conftest_server import (  # noqa: F401  (prefect_server is a fixture)
    MOBILIZE,
    SEED_LEXICON,
    PrefectServer,
    csv_bytes,
    prefect_server,
    run_env,
    stop_process,
)

from pipeline import engine, flow
from pipeline.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.server]
DEPLOYMENT = "test-serve"


@contextmanager
def _client(server: PrefectServer) -> Iterator[Any]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with (temporary_settings(updates={PREFECT_API_URL: server.api_url}),
          get_client(sync_client=True) as client):
        yield client


def _artifact(client: Any, key: str) -> Any:
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key])),
                                  sort=ArtifactSort.CREATED_DESC)
    return found[0] if found else None  # the latest


def test_a_served_flow_runs_when_triggered_through_the_api(
        prefect_server: PrefectServer, tmp_path: Path) -> None:  # noqa: F811
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL, temporary_settings

    corpus = shared_corpus("npc-resolutions-gwr-zh")
    out = tmp_path / "out"
    env = prefect_server.env(MOBILIZE_CACHE_DIR=str(tmp_path / "cache-served"))
    serving = subprocess.Popen(
        [MOBILIZE, "serve", "--cron", "0 3 * * 1", "--corpus", str(corpus), "--out", str(out),
         "--lexicon", str(SEED_LEXICON), "--workers", "2", "--name", DEPLOYMENT],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        with _client(prefect_server) as client:
            deadline = time.monotonic() + 300
            deployment = None
            while deployment is None:
                assert serving.poll() is None, serving.communicate()[1].decode()[-2000:]
                assert time.monotonic() < deadline, "the served deployment never appeared"
                try:
                    deployment = client.read_deployment_by_name(f"{flow.FLOW_NAME}/{DEPLOYMENT}")
                except ObjectNotFound:  # not there yet
                    time.sleep(1)
            assert deployment.schedules and deployment.schedules[0].schedule.cron == "0 3 * * 1"
            assert deployment.parameters["corpus"] == str(corpus)
        with temporary_settings(updates={PREFECT_API_URL: prefect_server.api_url}):
            run = run_deployment(f"{flow.FLOW_NAME}/{DEPLOYMENT}", timeout=900, poll_interval=2,
                                 as_subflow=False)
        assert run.state is not None and run.state.is_completed(), run.state
    finally:
        stop_process(serving)

    served = out / "npc-resolutions-gwr-zh"
    local = engine.run_local(Settings(corpus=corpus, corpus_name="npc-resolutions-gwr-zh",
                                      out=tmp_path / "local", lexicon=SEED_LEXICON,
                                      cache=tmp_path / "cache-local", report=False,
                                      progress=False, workers=2, engine="local"))
    assert csv_bytes(served) == csv_bytes(local.run_dir)
    assert (served / "report.html").is_file()

    with _client(prefect_server) as client:
        key = flow.artifact_key("npc-resolutions-gwr-zh")
        summary = _artifact(client, f"{key}-summary")
        assert summary is not None and summary.type == "markdown"
        assert "# mobilize run: npc-resolutions-gwr-zh" in summary.data
        assert "- documents: 20 (ingested 20" in summary.data
        assert "No previous outputs" in summary.data
        link = _artifact(client, f"{key}-report")
        assert link is not None  # Prefect stores a link artifact as markdown: [text](url)
        assert f"({(served / 'report.html').resolve().as_uri()})" in link.data


def test_mobilize_run_uses_the_server_and_a_warm_rerun_does_no_work(
        prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        tmp_path: Path) -> None:
    corpus = shared_corpus("npc-resolutions-gwr-zh")
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    settings = Settings(corpus=corpus, corpus_name="npc", out=tmp_path / "out",
                        lexicon=SEED_LEXICON, cache=tmp_path / "cache", report=False,
                        progress=False, workers=2)
    cold = flow.run_flow(settings)
    first = csv_bytes(cold.run_dir)
    warm = flow.run_flow(settings)
    assert (cold.stats.segmented, cold.stats.scored) == (20, 20)
    assert (warm.stats.read, warm.stats.segmented, warm.stats.scored) == (0, 0, 0)
    assert csv_bytes(warm.run_dir) == first

    with _client(prefect_server) as client:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow.FLOW_NAME])))
        assert sum(1 for r in runs if r.parameters.get("out") == str(tmp_path / "out")) == 2
        summary = _artifact(client, f"{flow.artifact_key('npc')}-summary")
        assert "No category's rate changed since the previous run." in summary.data


def test_prefect_and_local_engines_agree_on_the_demo_corpus(
        prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        tmp_path: Path) -> None:
    """The bundled demo corpus (txt, html and docx files): the same tables from both engines."""
    from pipeline.config import DEFAULT_CORPUS

    if not any(DEFAULT_CORPUS.glob("*")):
        pytest.skip(f"the demo corpus is not there yet: {DEFAULT_CORPUS}")
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    settings = Settings(corpus=DEFAULT_CORPUS, corpus_name="demo", lexicon=SEED_LEXICON,
                        report=False, progress=False, workers=2)
    result = flow.run_flow(settings.with_(out=tmp_path / "prefect", cache=tmp_path / "c1"))
    local = engine.run_local(settings.with_(out=tmp_path / "local", cache=tmp_path / "c2",
                                            engine="local"))
    assert result.stats.documents == local.stats.documents > 0
    assert csv_bytes(result.run_dir) == csv_bytes(local.run_dir)


def test_a_deployment_on_a_work_pool_runs_on_a_process_worker(
        prefect_server: PrefectServer, tmp_path: Path) -> None:  # noqa: F811
    """`mobilize deploy` registers it; `prefect worker start --run-once` runs a triggered run."""
    import sys

    corpus = shared_corpus("npc-resolutions-gwr-zh")
    out = tmp_path / "out"
    env = prefect_server.env(MOBILIZE_CACHE_DIR=str(tmp_path / "cache"))
    prefect = str(Path(sys.executable).parent / "prefect")

    def sh(*args: str) -> str:
        done = subprocess.run(list(args), env=env, capture_output=True, text=True, timeout=600,
                              check=False)
        assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-1500:]
        return done.stdout

    sh(prefect, "work-pool", "create", "test-pool", "--type", "process")
    deployed = sh(MOBILIZE, "deploy", "--pool", "test-pool", "--name", "test-deploy", "--json",
                  "--corpus", str(corpus), "--out", str(out), "--lexicon", str(SEED_LEXICON),
                  "--no-report", "--workers", "2")
    assert '"deployment": "mobilize-run/test-deploy"' in deployed
    sh(prefect, "deployment", "run", f"{flow.FLOW_NAME}/test-deploy")
    sh(prefect, "worker", "start", "--pool", "test-pool", "--run-once")
    local = engine.run_local(Settings(corpus=corpus, corpus_name="npc-resolutions-gwr-zh",
                                      out=tmp_path / "local", lexicon=SEED_LEXICON,
                                      cache=tmp_path / "cache-local", report=False,
                                      progress=False, workers=2, engine="local"))
    assert csv_bytes(out / "npc-resolutions-gwr-zh") == csv_bytes(local.run_dir)


# --------------------------------------------------------------------------- server stop


@contextmanager
def _bystander() -> Iterator[subprocess.Popen[bytes]]:
    """An unrelated process (its own process group, as the server has) that must survive."""
    proc = subprocess.Popen(["sleep", "120"], start_new_session=True)
    # Until the child has exec'd, /proc shows the test's own command line: wait for `sleep`
    # (on a loaded machine that takes a moment, and an identity read too early never matches).
    deadline = time.monotonic() + 10
    while not Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(b"sleep"):
        assert time.monotonic() < deadline, "the bystander did not start"
        time.sleep(0.01)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _record(home: Path, info: dict[str, Any]) -> Path:
    path = home / "prefect" / "mobilize-server.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def _server_like(pid: int, **changes: Any) -> dict[str, Any]:
    identity = flow.process_identity(pid)
    assert identity, "no /proc: this test needs Linux"
    return {"api_url": "http://127.0.0.1:9/api", "pid": pid, "home": "",
            "ui_url": "http://127.0.0.1:9", **identity, **changes}


@pytest.mark.parametrize("record", ["reused-pid", "other-command", "v0.1-record"])
def test_server_stop_never_signals_a_process_that_is_not_the_recorded_server(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: str) -> None:
    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path))
    with _bystander() as proc:
        info = _server_like(proc.pid)
        if record == "reused-pid":  # the server died; the system gave its PID to this process
            info["start_time"] -= 1
            info["cmdline"] = [sys.executable, "-m", "prefect", "server", "start"]
        elif record == "other-command":
            info["cmdline"] = [sys.executable, "-m", "prefect", "server", "start"]
        else:  # written before start times were recorded: only the PID
            info = {k: v for k, v in info.items() if k not in ("cmdline", "start_time")}
        path = _record(tmp_path, info)
        stopped = flow.server_stop()
        time.sleep(0.3)
        assert proc.poll() is None, "server stop killed an unrelated process"
    assert stopped is not None and stopped["stale"]
    assert f"process {proc.pid}" in stopped["stale"]
    assert not path.exists()  # the stale record is gone


def test_server_stop_stops_the_recorded_process_when_it_is_still_the_same(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path))
    with _bystander() as proc:
        path = _record(tmp_path, _server_like(proc.pid))
        stopped = flow.server_stop()
        assert proc.wait(timeout=15) == -15  # SIGTERM to its process group
    assert stopped is not None and "stale" not in stopped
    assert not path.exists()


def test_server_start_records_what_server_stop_checks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from conftest_server import free_port

    monkeypatch.setenv("MOBILIZE_HOME", str(tmp_path))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    port = free_port()
    env = run_env(MOBILIZE_HOME=str(tmp_path))
    env.pop("PREFECT_HOME", None)
    done = subprocess.run([MOBILIZE, "server", "start", "--port", str(port), "--json"], env=env,
                          capture_output=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr.decode()[-800:]
    info = json.loads(done.stdout)
    try:
        assert info["start_time"] == flow.process_identity(info["pid"])["start_time"]
        assert info["cmdline"][1:4] == ["-m", "prefect", "server"]
        stop = subprocess.run([MOBILIZE, "server", "stop"], env=env, capture_output=True,
                              timeout=120, check=False)
        assert stop.returncode == 0 and b"stopped the server" in stop.stdout, stop.stdout
        assert not flow.process_identity(info["pid"])  # gone
    finally:
        if flow.process_identity(info["pid"]):
            os.killpg(info["pid"], signal.SIGKILL)


def test_bad_input_with_the_prefect_engine_gives_only_the_clean_error(
        prefect_server: PrefectServer, tmp_path: Path) -> None:  # noqa: F811
    """A malformed metadata.csv met inside a task: exit 2 and the one-line error naming the
    file, the line and the fix, without Prefect's "Finished in state Failed" records or the
    flow's traceback; the server still records the flow run as failed."""
    corpus = tmp_path / "bad"
    corpus.mkdir()
    (corpus / "a.txt").write_text("社会保障制度。", encoding="utf-8")
    (corpus / "metadata.csv").write_text('doc_id,date\n"a,2020-01-01\n', encoding="utf-8")
    out = tmp_path / "out"
    env = prefect_server.env(MOBILIZE_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([MOBILIZE, "run", "--corpus", str(corpus), "--out", str(out),
                           "--lexicon", str(SEED_LEXICON), "--no-report"], env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: no documents found in ") and "bad (" in lines[0]
    assert "metadata.csv:2: 1 fields but the header has 2" in lines[0]
    assert "add the missing fields" in lines[0]
    assert "Traceback" not in done.stderr and "prefect" not in done.stderr.lower()

    with _client(prefect_server) as client:
        from prefect.client.schemas.filters import FlowFilter, FlowFilterName

        runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow.FLOW_NAME])))
        mine = [r for r in runs if r.parameters.get("out") == str(out)]
        assert len(mine) == 1 and mine[0].state is not None and mine[0].state.is_failed()
