"""The Prefect flow: the only module that imports Prefect.

``run_flow(settings)`` runs the flow ``mobilize-run`` in this process. Its tasks wrap the plain
stage functions of ``pipeline.engine`` (nothing is reimplemented here):

    plan-run          engine.plan_run + engine.is_cached      (I/O: retried)
    process-cached    engine.process_batch over unchanged documents (answered by the caches)
    process-batches   engine.run_batches: a process pool over the fresh batches
                      (with ``--task-runner dask``: one ``process-batch`` task per batch on Dask)
    assemble-tables   engine.assemble                         (pure)
    read-previous     the previous run's category totals, for the summary (I/O: retried)
    write-outputs     engine.write_outputs: atomic folder swap (I/O: retried on OSError)
    publish-artifacts a markdown summary and a link to report.html (I/O: retried)

The whole flow holds the output folder's lock (``store.run_lock``), like ``engine.run_local``.

Prefect is configured before it is first imported, in ``prefect_environment`` (never at import
time of this module): its home (database, results) under ``pipeline.config.data_dir()/prefect``
unless ``PREFECT_HOME`` is set, analytics and telemetry off, quiet logs, a long start-up
timeout for the temporary server, no flow heartbeat. A ``PREFECT_API_URL`` set by the user is
used as is; otherwise a server started by ``mobilize server start`` is used when it answers;
otherwise Prefect starts its temporary local server (the slow path: 11-20 s).

``serve`` and ``deploy`` register the same flow with a Prefect server (they need a real one).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pipeline.config import Settings, data_dir
from pipeline.errors import MobilizeError

if TYPE_CHECKING:
    from pipeline.engine import RunResult

log = logging.getLogger(__name__)

FLOW_NAME = "mobilize-run"
DEFAULT_DEPLOYMENT = "mobilize-scheduled"
#: The flow's entrypoint for Prefect (module path: works wherever ``pipeline`` is installed).
ENTRYPOINT = "pipeline.flow.mobilize_run"
TaskRunnerName = Literal["default", "dask"]

_PATH_FIELDS = ("corpus", "out", "lexicon", "periods", "cache")
#: Set unless the user set them: no outbound traffic, quiet, patient with a slow machine.
_PREFECT_DEFAULTS: Mapping[str, str] = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false",
}
_FLOW: Any = None
#: In-process hooks for the run that ``run_flow`` started (not flow parameters: not serialisable).
_HOOKS: dict[str, Any] = {}
#: Seconds from ``run_flow``'s start until Prefect was ready, and in all (for bench/ and --verbose).
_TIMINGS: dict[str, float] = {}
#: What ``run_flow`` tells its ``hint`` callback when it has to start Prefect's temporary server
#: (once per process: a script or notebook running many flows hears it once).
SERVER_HINT = ("no Prefect server is running, so this run starts a temporary one (seconds of "
               "start-up each run): `mobilize server start` keeps one running for later runs "
               "(or use --engine local)")
_HINTED: dict[str, bool] = {"given": False}


# --------------------------------------------------------------------------- environment


def prefect_home() -> Path:
    """Where mobilize keeps Prefect's database and results unless ``PREFECT_HOME`` is set."""
    return data_dir() / "prefect"


def _server_file() -> Path:
    return prefect_home() / "mobilize-server.json"


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _recorded_server() -> dict[str, Any] | None:
    """The server ``mobilize server start`` recorded, if it still answers."""
    try:
        info = json.loads(_server_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or not _healthy(str(info.get("api_url", ""))):
        return None
    return info


def prefect_environment(*, verbose: bool = False, use_recorded_server: bool = True) -> dict[str, str]:
    """Set Prefect's environment for this process and its children; return what was decided.

    Call before ``import prefect`` (later calls still reach subprocesses, and ``_settings``
    applies them in-process).
    """
    env = os.environ
    env.setdefault("PREFECT_HOME", str(prefect_home()))
    Path(env["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)  # sqlite needs it
    for key, value in _PREFECT_DEFAULTS.items():
        env.setdefault(key, value)
    if verbose:
        env["PREFECT_LOGGING_LEVEL"] = "INFO"
    else:
        env.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    env.setdefault("PREFECT_RESULTS_LOCAL_STORAGE_PATH", str(Path(env["PREFECT_HOME"]) / "storage"))
    if "PREFECT_API_URL" not in env and use_recorded_server:
        info = _recorded_server()
        if info:
            env["PREFECT_API_URL"] = str(info["api_url"])
    return {k: env[k] for k in ("PREFECT_HOME", "PREFECT_LOGGING_LEVEL", "PREFECT_API_URL")
            if k in env}


@contextmanager
def _settings() -> Iterator[None]:
    """Prefect settings that must hold in-process even when Prefect was imported earlier."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_HOME,
        PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW,
        PREFECT_RESULTS_PERSIST_BY_DEFAULT,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS,
        temporary_settings,
    )

    env = os.environ
    updates: dict[Any, Any] = {
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None,
        PREFECT_HOME: env["PREFECT_HOME"],
        PREFECT_SERVER_ANALYTICS_ENABLED: False,
        PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS: 120,
        PREFECT_RESULTS_PERSIST_BY_DEFAULT: False,
    }
    if env.get("PREFECT_API_URL"):
        updates[PREFECT_API_URL] = env["PREFECT_API_URL"]
    with temporary_settings(updates=updates):
        yield


def _check_api_url() -> str | None:
    """The API URL in use, after checking that it answers (None: Prefect's temporary server)."""
    url = os.environ.get("PREFECT_API_URL")
    if url and not _healthy(url, timeout=5.0):
        raise MobilizeError(f"PREFECT_API_URL={url} does not answer",
                            fix="Start the server (`prefect server start --host 127.0.0.1 "
                                "--port 4200` or `mobilize server start`), or unset "
                                "PREFECT_API_URL to let mobilize start a temporary one.")
    return url


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _TemporaryServer:
    """Prefect's temporary API server, started by mobilize rather than by Prefect's client.

    The same command Prefect runs for its temporary server (uvicorn over
    ``prefect.server.api.server:create_app``, loopback, a free port, no UI), started before
    this process imports Prefect, so that the two start-ups overlap; and without importing
    the server's modules into this process too (Prefect's client does: about 6 s of imports).
    """

    def __init__(self) -> None:
        import importlib.util

        from pipeline.engine import death_signal

        spec = importlib.util.find_spec("prefect")
        if spec is None or not spec.submodule_search_locations:
            raise MobilizeError("Prefect is not installed", fix="pip install -e . (or use --engine local)")
        self.app_dir = str(Path(next(iter(spec.submodule_search_locations))).parent)
        self.port = _free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        home = Path(os.environ["PREFECT_HOME"])
        self.log_path = home / "temporary-server.log"
        env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
               "PREFECT__SERVER_FINAL": "1", "PREFECT_LOGGING_LEVEL": "WARNING"}
        env.pop("PREFECT_API_URL", None)
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", self.app_dir, "--factory",
             "prefect.server.api.server:create_app", "--host", "127.0.0.1", "--port",
             str(self.port), "--log-level", "error", "--lifespan", "on"],
            env=env, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            preexec_fn=death_signal())  # noqa: PLW1509 - see engine.death_signal

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _healthy(self.api_url, timeout=1.0):
                return
            time.sleep(0.1)
        self.stop()
        tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-800:]
        raise MobilizeError(f"Prefect's temporary server did not start within {timeout:g} s "
                            f"(exit code {self.proc.returncode}): {tail.strip()}",
                            path=self.log_path,
                            fix="Read the log; or start a server (`mobilize server start`) and "
                                "run again; or use --engine local.")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------- settings <-> parameters


def settings_to_parameters(settings: Settings) -> dict[str, Any]:
    """The flow's parameters for ``settings``: JSON-friendly, for runs, schedules and deployments."""
    options = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        options[f.name] = str(value) if isinstance(value, Path) else value
    corpus, out = options.pop("corpus"), options.pop("out")
    return {"corpus": corpus, "out": out, "options": options}


def settings_from_parameters(corpus: str, out: str,
                             options: Mapping[str, Any] | None = None) -> Settings:
    """The inverse of ``settings_to_parameters``; unknown options are an error naming them."""
    known = {f.name for f in dataclasses.fields(Settings)}
    opts = dict(options or {})
    unknown = sorted(set(opts) - known)
    if unknown:
        raise MobilizeError(f"unknown run options {unknown}",
                            fix=f"Use only these: {', '.join(sorted(known - {'corpus', 'out'}))}.")
    values: dict[str, Any] = {"corpus": corpus, "out": out, **opts}
    for name in _PATH_FIELDS:
        if values.get(name) is not None:
            values[name] = Path(values[name])
    if "corpus_name" not in opts:
        values["corpus_name"] = Path(corpus).name
    return Settings(**values)


# --------------------------------------------------------------------------- summary (pure)


def category_totals(scores_csv: Path) -> dict[tuple[str, str], float]:
    """Per (dimension, category): the corpus rate per 10,000 tokens (scope ``all``)."""
    counts: dict[tuple[str, str], int] = {}
    tokens: dict[tuple[str, str], int] = {}
    try:
        fh = scores_csv.open(encoding="utf-8", newline="")
    except OSError:
        return {}
    with fh:
        for row in csv.DictReader(fh):
            if row.get("scope") != "all":
                continue
            key = (row["dimension"], row["category"])
            counts[key] = counts.get(key, 0) + int(row["count"])
            tokens[key] = tokens.get(key, 0) + int(row["tokens"])
    return {k: (counts[k] / tokens[k] * 10000 if tokens[k] else 0.0) for k in sorted(counts)}


def _md(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def summary_markdown(corpus_name: str, corpus_root: str, stats: Mapping[str, Any],
                     before: Mapping[tuple[str, str], float],
                     after: Mapping[tuple[str, str], float], *, top: int = 5) -> str:
    """The run summary artifact: the corpus, its documents and the largest changes in rates."""
    lines = [f"# mobilize run: {_md(corpus_name)}", "",
             f"- corpus: `{_md(corpus_root)}`",
             (f"- documents: {stats.get('documents', 0)} (ingested {stats.get('ingested', 0)}, "
              f"skipped {stats.get('skipped', 0)}, failed {stats.get('failed', 0)}, "
              f"duplicates {stats.get('duplicates', 0)})"),
             (f"- work done: segmented {stats.get('segmented', 0)} "
              f"(cache hits {stats.get('segment_cache_hits', 0)}), scored "
              f"{stats.get('scored', 0)} (cache hits {stats.get('score_cache_hits', 0)})"), ""]
    if not before:
        lines.append("No previous outputs in this folder: nothing to compare with.")
        return "\n".join(lines) + "\n"
    keys = sorted(set(before) | set(after))
    changes = sorted(((after.get(k, 0.0) - before.get(k, 0.0), k) for k in keys),
                     key=lambda c: (-abs(c[0]), c[1]))
    changes = [c for c in changes if abs(c[0]) > 1e-9][:top]
    if not changes:
        lines.append("No category's rate changed since the previous run.")
        return "\n".join(lines) + "\n"
    lines += ["## Largest changes since the previous run (rate per 10,000 tokens, whole texts)", "",
              "| dimension | category | before | after | change |",
              "| --- | --- | ---: | ---: | ---: |"]
    for delta, (dim, cat) in changes:
        lines.append(f"| {_md(dim)} | {_md(cat)} | {before.get((dim, cat), 0.0):.3f} | "
                     f"{after.get((dim, cat), 0.0):.3f} | {delta:+.3f} |")
    return "\n".join(lines) + "\n"


def artifact_key(corpus_name: str) -> str:
    """A Prefect artifact key (lowercase letters, digits, dashes) for a corpus name."""
    slug = re.sub(r"[^a-z0-9]+", "-", corpus_name.lower()).strip("-")
    if not slug or slug != corpus_name.lower().replace("_", "-"):
        import hashlib

        digest = hashlib.sha256(corpus_name.encode("utf-8")).hexdigest()[:8]
        slug = f"{slug}-{digest}".strip("-")
    return f"mobilize-{slug}"


# --------------------------------------------------------------------------- the flow


#: Prefect's loggers that are not under ``prefect``: its log and event services.
_PREFECT_SERVICE_LOGGERS = frozenset({"APILogWorker", "EventsWorker"})


class _ResearcherErrors(logging.Filter):
    """Once a run meets a researcher's error (a ``MobilizeError``: bad input, a locked folder,
    named with its file, line and fix), Prefect's own console records about it are dropped:
    the task's and the flow's "Finished in state Failed(...)", the flow's traceback, and the
    services' "Still processing items" while the queued logs are sent. The command line then
    prints the error once, cleanly (exit 2; 3 for a locked folder). The filter sits on the
    console handlers only (the root logger's and ``prefect``'s), so the same records still
    reach the Prefect server (the run's logs in the UI) and ``--verbose`` keeps them all."""

    def __init__(self) -> None:
        super().__init__("mobilize-researcher-errors")
        self.error: MobilizeError | None = None
        self.handlers: list[logging.Handler] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.error is None:
            return True
        name = record.name
        return not (name == "prefect" or name.startswith("prefect.")
                    or name in _PREFECT_SERVICE_LOGGERS)

    def mark(self, exc: MobilizeError) -> None:
        """The run met ``exc``: from now on, Prefect's console records are dropped (on the
        handlers there are now: Prefect configures its logging when a flow first runs)."""
        self.error = self.error or exc
        for logger in (logging.getLogger(), logging.getLogger("prefect")):
            for handler in logger.handlers:
                if handler not in self.handlers and "API" not in type(handler).__name__:
                    handler.addFilter(self)
                    self.handlers.append(handler)

    def detach(self) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        self.handlers.clear()


def _note_error(exc: MobilizeError) -> None:
    """Tell this run's ``_ResearcherErrors`` filter (if any: not on a Dask worker) about ``exc``."""
    errors = _HOOKS.get("errors")
    if errors is not None:
        errors.mark(exc)


def _noting_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (a task's or the flow's function), telling the run's ``_ResearcherErrors`` filter
    about a ``MobilizeError`` it raises before Prefect logs the failure. (The wrapper refers to
    module-level names only, so a task sent to Dask pickles as it did: not the run's hooks.)"""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except MobilizeError as exc:
            _note_error(exc)
            raise

    return wrapper


def _retry_on_io(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only I/O failures, never a researcher's error (a MobilizeError) or a bug."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, OSError)


def _build_flow() -> Any:
    """Define the tasks and the flow (imports Prefect: call only after ``prefect_environment``)."""
    from prefect import Flow, task, unmapped
    from prefect.cache_policies import NO_CACHE
    from prefect.utilities.annotations import quote

    from pipeline import engine, store

    common: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
    io: dict[str, Any] = {**common, "retries": 2, "retry_delay_seconds": 1,
                          "retry_condition_fn": _retry_on_io}

    @task(name="plan-run", **io)
    @_noting_errors
    def plan_run(settings: Settings) -> tuple[Any, list[Any], list[Any]]:
        plan = engine.plan_run(settings)
        hit = [engine.is_cached(plan, s) for s in plan.sources]
        cached = [s for s, h in zip(plan.sources, hit, strict=True) if h]
        fresh = [s for s, h in zip(plan.sources, hit, strict=True) if not h]
        return plan, cached, fresh

    @task(name="process-cached", **common)
    @_noting_errors
    def process_cached(plan: Any, cached: list[Any]) -> Any:
        return engine.process_batch(plan, cached)

    @task(name="process-batches", **common)
    @_noting_errors
    def process_batches(plan: Any, fresh: list[Any]) -> list[Any]:
        # (a pool only where it pays, as in the local engine: a small corpus runs in-process
        # instead of starting fork-server workers that each load the dictionary again)
        workers, batches = engine.pool_batches(plan, fresh)
        return engine.run_batches(plan, batches, workers, _HOOKS.get("tick"))

    @task(name="process-batch", **common)
    @_noting_errors
    def process_batch(plan: Any, batch: list[Any]) -> Any:
        return engine.process_batch(plan, batch)

    @task(name="assemble-tables", **common)
    @_noting_errors
    def assemble_tables(plan: Any, results: list[Any]) -> Any:
        return engine.assemble(plan, results, release=True)  # (the flow clears them next)

    @task(name="read-previous", **io)
    @_noting_errors
    def read_previous(run_dir: Path) -> dict[tuple[str, str], float]:
        return category_totals(run_dir / "scores.csv")

    @task(name="write-outputs", **io)
    @_noting_errors
    def write_outputs(settings: Settings, plan: Any, tables: Any) -> Any:
        return engine.write_outputs(settings, plan, tables, _HOOKS.get("phase"))

    @task(name="publish-artifacts", **io)
    @_noting_errors
    def publish_artifacts(result: Any, before: dict[tuple[str, str], float]) -> None:
        from prefect.artifacts import create_link_artifact, create_markdown_artifact

        corpus = result.manifest.get("corpus", {})
        name = str(corpus.get("name", result.run_dir.name))
        after = category_totals(result.run_dir / "scores.csv")
        key = artifact_key(name)
        create_markdown_artifact(
            summary_markdown(name, str(corpus.get("root", "")), dataclasses.asdict(result.stats),
                             before, after),
            key=f"{key}-summary", description=f"mobilize run summary for {name}")
        report = result.run_dir / "report.html"
        if report.is_file():
            create_link_artifact(report.resolve().as_uri(), link_text=f"{name}: report.html",
                                 key=f"{key}-report", description="the comparative report")

    class _Flow(Flow):  # type: ignore[misc]
        def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
            """The parameters as the flow run records them. They are JSON already
            (``settings_to_parameters``): stored as they are, without Prefect's encoder, whose
            import (FastAPI's) cost every run 1.5-6 s."""
            try:
                return dict(json.loads(json.dumps(parameters)))
            except (TypeError, ValueError):
                return dict(super().serialize_parameters(parameters))

    @_noting_errors
    def mobilize_run(corpus: str, out: str, options: dict[str, Any] | None = None) -> Any:
        """Run mobilize over ``corpus`` into ``out``; ``options`` are the other Settings fields."""
        t0 = time.perf_counter()
        settings = settings_from_parameters(corpus, out, options).with_(engine="prefect")
        wait_s = float(_HOOKS.get("wait", settings.wait) or 0.0)
        engine.check_output_folder(settings)
        phase = _HOOKS.get("phase") or (lambda _name: None)
        with store.run_lock(settings.out, settings.corpus_name, wait_s):
            phase(engine.PHASE_PLAN)
            plan, cached, fresh = plan_run(settings)
            # Large arguments are quoted: Prefect would otherwise walk every object inside them
            # (every source, lexicon term and table row) twice per task, looking for futures.
            qplan = quote(plan)
            t_plan = time.perf_counter() - t0
            phase(engine.PHASE_DOCUMENTS)
            results = []
            if cached:
                results.append(process_cached(qplan, quote(cached)))
                if _HOOKS.get("tick"):
                    _HOOKS["tick"](len(cached))
            t1 = time.perf_counter()
            if fresh and _HOOKS.get("runner") == "dask":
                batches = [list(b) for b in engine.make_batches(fresh, settings)]
                # (not quoted: map hands an annotation inside unmapped to the task as it is)
                futures = process_batch.map(plan=unmapped(plan), batch=batches)
                results += [f.result() for f in futures]
            elif fresh:
                results += process_batches(qplan, quote(fresh))
            t_batches = time.perf_counter() - t1
            tables: Any = assemble_tables(qplan, quote(results))
            results.clear()  # (the batches' rows are in the tables now: memory for the writing)
            engine.require_ingested(tables)
            tables.stats.seconds.update({"plan": round(t_plan, 6),
                                         "batches": round(t_batches, 6)})
            before = read_previous(Path(settings.out) / plan.corpus_name)
            result: Any = write_outputs(settings, qplan, quote(tables))
            if "prefect_ready" in _TIMINGS:  # (this process's run_flow started Prefect)
                result.stats.seconds["prefect_start"] = _TIMINGS["prefect_ready"]
            engine.finish_stats(result, t0, _HOOKS.get("started"))
            store.write_json(result.run_dir / "run.json", result.manifest)
        publish_artifacts(quote(result), before)
        return result

    return _Flow(mobilize_run, name=FLOW_NAME, persist_result=False, log_prints=False,
                 description="Ingest, segment, score and report a corpus of policy documents.")


def _get_flow() -> Any:
    global _FLOW
    if _FLOW is None:
        prefect_environment()
        _FLOW = _build_flow()
    return _FLOW


def __getattr__(name: str) -> Any:
    # ``pipeline.flow.mobilize_run`` (the deployment entrypoint) is built on first access.
    if name == "mobilize_run":
        return _get_flow()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _dask_runner(address: str | None, workers: int, verbose: bool = False) -> Any:
    from prefect_dask import DaskTaskRunner

    if not verbose:  # distributed configures its own loggers at INFO
        logging.getLogger("distributed").setLevel(logging.WARNING)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class="distributed.LocalCluster",
                          cluster_kwargs={"n_workers": max(1, workers), "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": ":0"})


def run_flow(settings: Settings, *, task_runner: TaskRunnerName = "default",
             dask_address: str | None = None, wait_seconds: float | None = None,
             progress: Callable[[int, int], None] | None = None,
             phase: Callable[[str], None] | None = None,
             started: float | None = None,
             hint: Callable[[str], None] | None = None) -> RunResult:
    """Run the ``mobilize-run`` flow in this process and return what ``engine.run_local`` would.

    ``task_runner="dask"`` (or a ``dask_address``) runs the batch tasks on a Dask cluster: the
    given scheduler address, else a temporary ``LocalCluster``. Dask needs a real Prefect server
    (``PREFECT_API_URL``): each worker would otherwise start a temporary server of its own.
    ``progress``, ``phase`` and ``started`` as for ``engine.run_local`` (the phases start with
    ``engine.PHASE_PREFECT``; the stats then also hold ``seconds["prefect_start"]``).
    ``hint(message)`` is called with ``SERVER_HINT`` when no server answers and the run starts
    Prefect's temporary one: the first time in this process only.
    """
    t0 = time.perf_counter()
    _TIMINGS.clear()
    if phase:
        from pipeline.engine import PHASE_PREFECT

        phase(PHASE_PREFECT)
    prefect_environment(verbose=settings.verbose)
    use_dask = task_runner == "dask" or bool(dask_address)
    api_url = _check_api_url()
    if use_dask and not api_url:
        raise MobilizeError("the Dask task runner needs a running Prefect server",
                            fix="Start one (`mobilize server start`, or `prefect server start "
                                "--host 127.0.0.1 --port 4200` and export PREFECT_API_URL="
                                "http://127.0.0.1:4200/api), then run again.")
    from pipeline import engine, store

    wait_s = float(settings.wait if wait_seconds is None else wait_seconds)
    engine.check_output_folder(settings)  # (before Prefect's start-up, like the lock below)
    if wait_s <= 0:  # fail at once, before paying Prefect's start-up (the flow locks for real)
        with store.run_lock(settings.out, settings.corpus_name, 0.0):
            pass
    if not api_url and hint is not None and not _HINTED["given"]:
        _HINTED["given"] = True
        hint(SERVER_HINT)
    server = None if api_url else _TemporaryServer()
    errors = _ResearcherErrors()
    try:
        return _run_flow(settings, server, use_dask, dask_address, wait_seconds, progress, t0,
                         phase, started, errors)
    finally:
        if "prefect" in sys.modules:
            _drain_prefect()
        errors.detach()
        if server is not None:
            server.stop()


def _drain_prefect(timeout: float = 30.0) -> None:
    """Send Prefect's queued logs and events now, while the server is still there.

    Otherwise they wait for interpreter exit, when the temporary server (or a test's server)
    may be gone: Prefect then retries them for minutes ("Still processing items").
    """
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for service in (APILogWorker, EventsWorker):
        try:
            service.drain_all(timeout=timeout, at_exit=False)
        except (RuntimeError, OSError, TimeoutError) as exc:  # never fail a finished run on this
            log.debug("could not drain %s: %s", service.__name__, exc)


def _run_flow(settings: Settings, server: _TemporaryServer | None, use_dask: bool,
              dask_address: str | None, wait_seconds: float | None,
              progress: Callable[[int, int], None] | None, t0: float,
              phase: Callable[[str], None] | None = None,
              started: float | None = None,
              errors: _ResearcherErrors | None = None) -> RunResult:
    flow_obj = _get_flow()  # imports Prefect while the temporary server starts
    if server is not None:
        server.wait_healthy(float(os.environ.get(
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
        os.environ["PREFECT_API_URL"] = server.api_url
    _TIMINGS["prefect_ready"] = round(time.perf_counter() - t0, 3)
    if use_dask:
        flow_obj = flow_obj.with_options(task_runner=_dask_runner(dask_address, settings.workers,
                                                                settings.verbose))
    total = 0
    done = 0

    def tick(n: int) -> None:
        nonlocal done
        done += n
        if progress:
            progress(done, total)

    params = settings_to_parameters(settings)
    _HOOKS.clear()
    _HOOKS.update({"tick": tick, "runner": "dask" if use_dask else "default", "phase": phase,
                   "started": started})
    if wait_seconds is not None:
        _HOOKS["wait"] = wait_seconds
    prefect_logger = logging.getLogger("prefect")
    level = prefect_logger.level
    if not settings.verbose:  # quiet even when Prefect was imported (and configured) earlier
        prefect_logger.setLevel(os.environ.get("PREFECT_LOGGING_LEVEL", "WARNING"))
        if errors is not None:  # (a researcher's error: no Prefect records about it, below)
            _HOOKS["errors"] = errors
    try:
        with _settings():
            if progress:
                from pipeline.ingest import scan_corpus

                try:
                    total = len(scan_corpus(Path(settings.corpus)).sources)
                except MobilizeError:
                    total = 0
                progress(0, total)
            result = flow_obj(**params)
    finally:
        _HOOKS.clear()
        prefect_logger.setLevel(level)
        if server is not None:
            os.environ.pop("PREFECT_API_URL", None)
    _TIMINGS["flow_total"] = round(time.perf_counter() - t0, 3)
    log.info("Prefect ready after %.1f s (%s); the flow finished after %.1f s",
             _TIMINGS["prefect_ready"], "temporary server" if server else "server at "
             + os.environ.get("PREFECT_API_URL", "?"), _TIMINGS["flow_total"])
    return result  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- scheduling


def serve(settings: Settings, *, cron: str | None = None, interval: float | None = None,
          name: str = DEFAULT_DEPLOYMENT) -> None:
    """Serve the flow with a schedule until interrupted (needs a running Prefect server)."""
    prefect_environment(verbose=settings.verbose)
    if not os.environ.get("PREFECT_API_URL"):
        raise MobilizeError("scheduling needs a running Prefect server, and PREFECT_API_URL is "
                            "not set (Prefect's temporary server cannot run schedules)",
                            fix="Start one with `mobilize server start` (or `prefect server "
                                "start --host 127.0.0.1 --port 4200` and export "
                                "PREFECT_API_URL=http://127.0.0.1:4200/api), then serve again.")
    _check_api_url()
    from prefect.deployments.runner import EntrypointType

    with _settings():
        _get_flow().serve(name=name, cron=cron, interval=interval,
                          parameters=settings_to_parameters(settings),
                          tags=["mobilize"], pause_on_shutdown=True,
                          print_starting_message=settings.verbose,
                          entrypoint_type=EntrypointType.MODULE_PATH)


def deploy(settings: Settings, *, work_pool: str, cron: str | None = None,
           name: str = DEFAULT_DEPLOYMENT) -> str:
    """Register a deployment of the flow to ``work_pool``; return its id (needs a server).

    The flow's code is taken from the installed ``pipeline`` package (module entrypoint), so the
    worker must run where mobilize is installed (a ``process`` work pool on the group's machine).
    """
    prefect_environment(verbose=settings.verbose)
    if not os.environ.get("PREFECT_API_URL"):
        raise MobilizeError("deploying needs a running Prefect server, and PREFECT_API_URL is "
                            "not set",
                            fix="Start one (`mobilize server start`) or export PREFECT_API_URL.")
    _check_api_url()
    from prefect.deployments.runner import EntrypointType, RunnerDeployment

    with _settings():
        flow_obj = _get_flow()
        dep = RunnerDeployment.from_flow(flow_obj, name=name, cron=cron,
                                         parameters=settings_to_parameters(settings),
                                         tags=["mobilize"],
                                         entrypoint_type=EntrypointType.MODULE_PATH,
                                         work_pool_name=work_pool)
        dep_id = dep.apply(work_pool_name=work_pool)
    return str(dep_id)


# --------------------------------------------------------------------------- a local server


def server_start(*, host: str = "127.0.0.1", port: int = 4200, timeout: float = 180.0) -> dict[str, Any]:
    """Start ``prefect server start`` in the background (home under mobilize's data folder).

    Records its URL and PID so that later ``mobilize run`` commands use it (about 3 s a run
    instead of 11-20 s). Returns the record.
    """
    prefect_environment(use_recorded_server=False)
    info = _recorded_server()
    if info:
        return info
    api_url = f"http://{host}:{port}/api"
    if _healthy(api_url):
        raise MobilizeError(f"another server already answers at {api_url}",
                            fix="Use it (export PREFECT_API_URL) or pick another --port.")
    home = Path(os.environ["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    logf = (home / "mobilize-server.log").open("ab")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
        start_new_session=True)
    logf.close()  # the server has its own copy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise MobilizeError(f"the Prefect server exited with code {proc.returncode}",
                                path=home / "mobilize-server.log",
                                fix="Read the log; is the port in use?")
        if _healthy(api_url, timeout=1.0):
            break
        time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        raise MobilizeError(f"the Prefect server did not answer within {timeout:g} s",
                            path=home / "mobilize-server.log", fix="Read the log.")
    info = {"api_url": api_url, "pid": proc.pid, "home": str(home),
            "ui_url": f"http://{host}:{port}", **process_identity(proc.pid)}
    _server_file().parent.mkdir(parents=True, exist_ok=True)
    _server_file().write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def process_identity(pid: int) -> dict[str, Any]:
    """What identifies process ``pid`` beyond its number, which the system reuses: its command
    line and its start time (Linux: ``/proc/PID/cmdline`` and field 22 of ``/proc/PID/stat``,
    in clock ticks since boot). Empty where there is no ``/proc``, no such process, or only its
    zombie (it has exited)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            cmdline = [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rpartition(b")")[2].split()
        if fields[0] == b"Z":
            return {}
        start = int(fields[19])  # field 22 (starttime); fields after ") " start at field 3
    except (OSError, ValueError, IndexError):
        return {}
    return {"cmdline": cmdline, "start_time": start}


def _is_recorded_server(info: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether the recorded PID is still the server ``server_start`` started (and why not)."""
    pid = int(info.get("pid", 0) or 0)
    if pid <= 0:
        return False, "the record holds no process id"
    now = process_identity(pid)
    if not now:
        if not Path("/proc/self/stat").exists():  # no /proc: only the API can tell
            return (_healthy(str(info.get("api_url", ""))),
                    "it does not answer at its recorded address")
        return False, f"process {pid} is gone"
    if "start_time" in info:
        if now["start_time"] != info["start_time"] or now["cmdline"] != info.get("cmdline"):
            return False, f"process {pid} is another program now (its start time or command differ)"
        return True, ""
    # a record written before start times were kept: the command line must be the server's
    cmd = now["cmdline"]
    ok = any(a == "prefect" or a.endswith("/prefect") for a in cmd) and "server" in cmd \
        and "start" in cmd
    return ok, "" if ok else f"process {pid} is not a Prefect server ({' '.join(cmd)[:80]})"


def server_stop() -> dict[str, Any] | None:
    """Stop the server ``server_start`` started (by its recorded PID); None when none is recorded.

    The PID is signalled only when it is still that server (same command line and start time as
    recorded): a stale record (the server died, the PID was reused) is removed without touching
    the process; the returned record then has ``"stale"`` saying why.
    """
    try:
        info = json.loads(_server_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        _server_file().unlink(missing_ok=True)
        return None
    pid = int(info.get("pid", 0) or 0)
    ours, why = _is_recorded_server(info)
    if not ours:
        _server_file().unlink(missing_ok=True)
        return {**info, "stale": why}
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    for _ in range(100):
        if not _still(pid, info):
            break
        time.sleep(0.1)
    else:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _server_file().unlink(missing_ok=True)
    return dict(info)


def _still(pid: int, info: Mapping[str, Any]) -> bool:
    """The recorded server still runs."""
    now = process_identity(pid)
    if not now:
        if Path("/proc/self/stat").exists():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return bool(now.get("start_time") == info.get("start_time", now.get("start_time")))


def server_status() -> dict[str, Any] | None:
    """The recorded server when it answers, else None."""
    prefect_environment(use_recorded_server=False)
    return _recorded_server()


__all__ = ["DEFAULT_DEPLOYMENT", "ENTRYPOINT", "FLOW_NAME", "SERVER_HINT", "artifact_key", "category_totals",
           "deploy", "prefect_environment", "prefect_home", "process_identity", "run_flow",
           "serve", "server_start", "server_status", "server_stop", "settings_from_parameters", "settings_to_parameters",
           "summary_markdown"]
