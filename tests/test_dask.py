"""The batch tasks on a Dask cluster (prefect-dask's DaskTaskRunner), with a real Prefect server."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import shared_corpus
from conftest_server import (  # noqa: F401  (prefect_server is a fixture)
    SEED_LEXICON,
    PrefectServer,
    csv_bytes,
    prefect_server,
)

from pipeline import engine, flow
from pipeline.config import Settings

pytestmark = [pytest.mark.slow, pytest.mark.server]


def test_a_run_on_a_dask_localcluster_writes_the_local_engines_tables(
        prefect_server: PrefectServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
        tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    corpus = shared_corpus("npc-resolutions-gwr-zh")
    # The Dask workers are child processes: they inherit the server's address from here.
    monkeypatch.setenv("PREFECT_API_URL", prefect_server.api_url)
    settings = Settings(corpus=corpus, corpus_name="npc", lexicon=SEED_LEXICON, report=False,
                        progress=False, workers=2)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster:
        result = flow.run_flow(settings.with_(out=tmp_path / "dask", cache=tmp_path / "cache-dask"),
                               dask_address=cluster.scheduler_address)
        with Client(cluster) as client:
            executed = client.run(lambda dask_worker: dask_worker.state.executed_count)
    # one process-batch task per batch ran on the cluster's worker processes
    batches = engine.make_batches(engine.plan_run(settings).sources, settings)
    assert len(batches) > 1
    assert sum(executed.values()) == len(batches)
    local = engine.run_local(settings.with_(out=tmp_path / "local", cache=tmp_path / "cache-local",
                                            engine="local"))
    assert (result.stats.segmented, result.stats.scored) == (20, 20)
    assert csv_bytes(result.run_dir) == csv_bytes(local.run_dir)
