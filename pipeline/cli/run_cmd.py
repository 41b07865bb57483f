"""``mobilize run``: score a corpus against the lexicon and write the tables (and the report)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from pipeline.cli._apps import app
from pipeline.cli._common import (
    DEFAULT_CORPUS_SHOWN,
    DEFAULT_LEXICON_SHOWN,
    DEFAULT_OUT_SHOWN,
    VERBOSE_HELP,
    console,
    err_console,
    print_json,
    reported_errors,
    setup_logging,
    shown_path,
)
from pipeline.config import (
    DEFAULT_CORPUS,
    DEFAULT_LEXICON,
    DEFAULT_OUT,
    DEFAULT_SEGMENTER,
    Settings,
    read_config,
)
from pipeline.errors import MobilizeError

log = logging.getLogger("pipeline.run")
_CONFIG_KEYS = ("segmenter", "hmm", "workers", "batch_size", "on_split_term", "to_simplified",
                "report", "engine", "discover")


def _resolve_corpus(corpus: str) -> tuple[Path, str]:
    """A folder, or a name registered with ``mobilize corpus add``."""
    try:
        from pipeline.registry import resolve_corpus
    except ImportError:  # the registry is optional: plain folders always work
        path = Path(corpus).expanduser()
        if path.is_dir():
            return path.resolve(), path.resolve().name
        raise MobilizeError("no such corpus folder", path=corpus,
                            fix="Give a folder of documents.") from None
    return resolve_corpus(corpus)


def _config_defaults() -> dict[str, Any]:
    cfg = read_config()
    section = cfg.get("run", {}) if isinstance(cfg.get("run"), dict) else {}
    merged = {k: cfg[k] for k in _CONFIG_KEYS if k in cfg}
    merged.update({k: section[k] for k in _CONFIG_KEYS if k in section})
    return merged


def _summary(result: Any) -> None:
    """The run in a few lines. Plain lines, not a table: a long path is never broken inside a
    name (the terminal wraps the line; a copy of it stays one path)."""
    s = result.stats
    dup = f" ({s.duplicates} duplicate{'s' if s.duplicates != 1 else ''})" if s.duplicates else ""
    corpus_files = getattr(s, "corpus_files", 0)
    own = f", {corpus_files} corpus file{'s' if corpus_files != 1 else ''}" if corpus_files else ""
    lex = result.manifest.get("lexicon", {})
    seg = result.manifest.get("segmenter", {})
    rows = [
        ("documents", f"{s.ingested} ingested, {s.skipped} skipped{dup}, {s.failed} failed{own}"),
        ("work", f"{s.segmented} segmented ({s.segment_cache_hits} from cache), "
                 f"{s.scored} scored ({s.score_cache_hits} from cache)"),
        ("lexicon", f"{lex.get('name')} {lex.get('version')}, "
                    f"{lex.get('categories', '?')} categories"),
        ("segmenter", f"{seg.get('name')} {seg.get('version')}"),
        ("output", shown_path(result.run_dir)),
        ("seconds", seconds_line(s.seconds)),
    ]
    for key, value in rows:
        console.print(f"[bold]{key:<10}[/] {escape(value)}", soft_wrap=True)


def seconds_line(seconds: dict[str, float]) -> str:
    """The time the user waited, and where it went: ``35.8 (Prefect start-up 16.2, ...)``."""
    waited = seconds.get("waited", seconds.get("total", 0.0))
    parts = [(label, seconds[key]) for key, label in (
        ("prefect_start", "Prefect start-up"), ("plan", "scan"),
        ("batches", "ingest and score"), ("write", "tables"), ("report", "report"))
        if seconds.get(key, 0.0) >= 0.05]
    return f"{waited:.1f}" + (" (" + ", ".join(f"{label} {v:.1f}" for label, v in parts) + ")"
                              if parts else "")


@app.command("run")
def run(
    corpus: str = typer.Option(str(DEFAULT_CORPUS), "--corpus", "-c",
                               show_default=DEFAULT_CORPUS_SHOWN,
                               help="Corpus folder, or a registered corpus name."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", show_default=DEFAULT_OUT_SHOWN,
                             help="Output folder; tables go to OUT/<corpus name>/."),
    lexicon: Path = typer.Option(DEFAULT_LEXICON, "--lexicon", "-l",
                                 show_default=DEFAULT_LEXICON_SHOWN, help="Lexicon YAML file."),
    segmenter: str = typer.Option(None, "--segmenter",
                                  help="jieba-rs (default) or jieba (the reference; about 10x slower)."),
    workers: int = typer.Option(None, "--workers", "-w", min=1,
                                help="Processes for segmentation (default: all cores)."),
    engine: str = typer.Option(None, "--engine",
                               help="prefect (default) or local (in-process, no Prefect)."),
    no_report: bool = typer.Option(False, "--no-report", help="Write the tables only."),
    discover: bool = typer.Option(None, "--discover/--no-discover",
                                  help="Add discovery (topics, candidate gaps) to the report; "
                                       "slow (tens of seconds), off by default."),
    to_simplified: bool = typer.Option(False, "--to-simplified",
                                       help="Convert traditional characters to simplified."),
    wait: float = typer.Option(0.0, "--wait", min=0.0,
                               help="Seconds to wait for another run on the same output folder."),
    task_runner: str = typer.Option("default", "--task-runner",
                                    help="Prefect engine: default (a process pool) or dask."),
    dask: str = typer.Option(None, "--dask", metavar="ADDRESS",
                             help="Prefect engine: run the batches on this Dask scheduler "
                                  "(tcp://HOST:PORT); needs a Prefect server."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Score every document of a corpus against the lexicon; write tables, run.json and the report.

    Writes OUT/<corpus>/documents.csv, ledger.csv, term_counts.csv, scores.csv,
    cooccurrence.csv (and .parquet), mobilize.duckdb and run.json. Unchanged documents
    come from the caches. Exit codes: 0 ok, 1 some documents failed (outputs still
    written), 2 bad input, 3 another run holds the output folder.

    <corpus> is the registered name (--corpus NAME) or the folder's name (--corpus PATH).
    An existing OUT/<corpus>/ is replaced only when a mobilize run wrote it (its run.json);
    any other folder there, or one that is or holds the corpus, is refused (exit 2).

    Example: mobilize run --corpus ../shared/corpora/gwr-national-zh --out reports --engine local
    """
    setup_logging(verbose)
    with reported_errors():
        cfg = _config_defaults()
        root, name = _resolve_corpus(corpus)
        seg = segmenter or cfg.get("segmenter", DEFAULT_SEGMENTER)
        if seg not in ("jieba", "jieba-rs"):
            raise MobilizeError(f"unknown segmenter {seg!r}", fix="Use --segmenter jieba or jieba-rs.")
        eng = engine or cfg.get("engine", "prefect")
        if eng not in ("prefect", "local"):
            raise MobilizeError(f"unknown engine {eng!r}", fix="Use --engine prefect or local.")
        changes: dict[str, Any] = {k: cfg[k] for k in ("hmm", "batch_size", "on_split_term")
                                   if k in cfg}
        settings = Settings(**changes).with_(
            corpus=root, corpus_name=name, out=out, lexicon=lexicon, segmenter=seg,
            engine=eng, to_simplified=to_simplified or bool(cfg.get("to_simplified", False)),
            report=not no_report and bool(cfg.get("report", True)), wait=wait,
            discover=bool(cfg.get("discover", False)) if discover is None else discover,
            verbose=verbose, progress=not as_json and console.is_terminal)
        if workers or cfg.get("workers"):
            settings = settings.with_(workers=int(workers or cfg["workers"]))
        if task_runner not in ("default", "dask"):
            raise MobilizeError(f"unknown task runner {task_runner!r}",
                                fix="Use --task-runner default or dask.")
        if (dask or task_runner == "dask") and eng != "prefect":
            raise MobilizeError("--dask and --task-runner dask need the Prefect engine",
                                fix="Drop --engine local.")
        if dask or task_runner == "dask":
            require_dask()
        result = _run(settings, task_runner, dask, hint=not as_json)
    if as_json:
        print_json(result.to_json())
    else:
        _summary(result)
    if result.stats.failed:
        if not as_json:
            err_console.print(f"[yellow]{result.stats.failed} document(s) failed: see "
                              f"{escape(shown_path(result.run_dir / 'ledger.csv'))}[/]",
                              soft_wrap=True)
        raise typer.Exit(1)


def require_dask() -> None:
    """Dask is an extra (``mobilize[dask]``): say what to install when it is missing."""
    import importlib.util

    missing = [m for m in ("dask", "distributed", "prefect_dask")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise MobilizeError(f"the Dask task runner needs {', '.join(missing)}, which is not "
                            "installed (Dask is an optional extra)",
                            fix="Install it with pip install 'mobilize[dask]' (from a checkout: "
                                "pip install -e '.[dask]'), or run without --dask / "
                                "--task-runner dask.")


def _run(settings: Settings, task_runner: str = "default", dask: str | None = None,
         hint: bool = True) -> Any:
    from pipeline.cli import _common

    started = _started()
    helper, _common.prepared_helper = _common.prepared_helper, None
    if helper is not None and settings.engine != "local":  # (Prefect runs its own processes)
        helper.shutdown(wait=False, cancel_futures=True)
        helper = None
    try:
        return _run_with_helper(settings, task_runner, dask, hint, started, helper)
    finally:
        if helper is not None:  # (run_local has shut it down, unless it failed before using it)
            helper.shutdown(wait=False, cancel_futures=True)


def _run_with_helper(settings: Settings, task_runner: str, dask: str | None, hint: bool,
                     started: float, helper: Any) -> Any:
    from pipeline import engine

    def say(message: str) -> None:  # once per process (flow.run_flow keeps count), on stderr
        err_console.print(f"[dim]{escape(message)}[/]", soft_wrap=True)

    def run_with(progress: Any = None, phase: Any = None) -> Any:
        if settings.engine == "prefect":
            from pipeline import flow

            return flow.run_flow(settings, task_runner=task_runner,  # type: ignore[arg-type]
                                 dask_address=dask, progress=progress, phase=phase,
                                 started=started, hint=say if hint else None)
        return engine.run_local(settings, progress=progress, phase=phase, started=started,
                                helper=helper)

    if not settings.progress:
        return run_with()
    with PhaseBar(settings.corpus_name) as bar:
        return run_with(bar.progress, bar.phase)


def _started() -> float:
    """When the user started waiting (``time.time()``): the process's start when the command
    line started it (``pipeline.cli.main``), else (a caller of ``app`` in a notebook or a
    test) now."""
    import time

    from pipeline.cli import _common

    return _common.started_at or time.time()


class PhaseBar:
    """The run's progress on stderr: the phase by name, a bar with done/total while documents
    are scored, the elapsed time; a spinner and a ticking clock through the long phases
    without counts (Prefect's start-up, the report).

    rich's own refresh thread is off: the engine may fork its workers, which is unsafe while
    another thread runs. The phases without counts get a ticker thread of ours instead,
    stopped (and joined) before the documents' phase, the only one that forks.
    """

    def __init__(self, name: str) -> None:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.name = name
        self.bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                            TextColumn("{task.fields[count]}"), TimeElapsedColumn(),
                            console=err_console, transient=True, auto_refresh=False)
        self.task = self.bar.add_task(escape(name), total=None, count="")
        self._ticker: Any = None
        self._stop: Any = None
        self._counted = False
        self._total = 0

    def __enter__(self) -> PhaseBar:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop_ticker()
        self.bar.__exit__(*exc)

    def phase(self, name: str) -> None:
        from pipeline.engine import PHASE_DOCUMENTS

        counted = self._counted = name == PHASE_DOCUMENTS
        self.bar.update(self.task, description=escape(f"{self.name}: {name}"),
                        **({"total": self._total or None, "count": f"0/{self._total}"}
                           if counted else {"total": None, "count": ""}))
        if counted:
            self._stop_ticker()
        else:
            self._start_ticker()
        self.bar.refresh()

    def progress(self, done: int, total: int) -> None:
        self._total = total
        if not self._counted:  # (the count shows in the documents' phase only)
            return
        self.bar.update(self.task, completed=done, total=total or None,
                        count=f"{done}/{total}")
        self.bar.refresh()

    def _start_ticker(self) -> None:
        import threading

        if self._ticker is not None:
            return
        self._stop = threading.Event()

        def tick() -> None:
            while not self._stop.wait(0.1):
                self.bar.refresh()

        self._ticker = threading.Thread(target=tick, name="mobilize-progress", daemon=True)
        self._ticker.start()

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._stop.set()
            self._ticker.join()
            self._ticker = None


__all__ = ["run"]
