"""``mobilize run``: score a corpus against the lexicon and write the tables (and the report)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import typer

from pipeline.cli._apps import app
from pipeline.cli._common import (
    VERBOSE_HELP,
    console,
    err_console,
    print_json,
    reported_errors,
    setup_logging,
)
from pipeline.config import DEFAULT_CORPUS, DEFAULT_LEXICON, DEFAULT_OUT, Settings, read_config
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
    from rich.table import Table

    s = result.stats
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    dup = f" ({s.duplicates} duplicate{'s' if s.duplicates != 1 else ''})" if s.duplicates else ""
    t.add_row("documents", f"{s.ingested} ingested, {s.skipped} skipped{dup}, {s.failed} failed")
    t.add_row("work", f"{s.segmented} segmented ({s.segment_cache_hits} from cache), "
                      f"{s.scored} scored ({s.score_cache_hits} from cache)")
    lex = result.manifest.get("lexicon", {})
    seg = result.manifest.get("segmenter", {})
    t.add_row("lexicon", f"{lex.get('name')} {lex.get('version')}, "
                         f"{lex.get('categories', '?')} categories")
    t.add_row("segmenter", f"{seg.get('name')} {seg.get('version')}")
    t.add_row("output", str(result.run_dir))
    t.add_row("seconds", f"{s.seconds.get('total', 0.0):.1f}")
    console.print(t)


@app.command("run")
def run(
    corpus: str = typer.Option(str(DEFAULT_CORPUS), "--corpus", "-c",
                               help="Corpus folder, or a registered corpus name."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o",
                             help="Output folder; tables go to OUT/<corpus name>/."),
    lexicon: Path = typer.Option(DEFAULT_LEXICON, "--lexicon", "-l", help="Lexicon YAML file."),
    segmenter: str = typer.Option(None, "--segmenter",
                                  help="jieba (default) or jieba-rs (about 15x faster)."),
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
        seg = segmenter or cfg.get("segmenter", "jieba")
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
        result = _run(settings, task_runner, dask)
    if as_json:
        print_json(result.to_json())
    else:
        _summary(result)
    if result.stats.failed:
        if not as_json:
            err_console.print(f"[yellow]{result.stats.failed} document(s) failed: see "
                              f"{result.run_dir / 'ledger.csv'}[/]")
        raise typer.Exit(1)


def _run(settings: Settings, task_runner: str = "default", dask: str | None = None) -> Any:
    from pipeline import engine

    def run_with(progress: Any = None) -> Any:
        if settings.engine == "prefect":
            from pipeline import flow

            return flow.run_flow(settings, task_runner=task_runner,  # type: ignore[arg-type]
                                 dask_address=dask, progress=progress)
        return engine.run_local(settings, progress=progress)

    if not settings.progress:
        return run_with()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    # auto_refresh off: no refresh thread, so the engine may fork its workers safely.
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err_console, transient=True,
                  auto_refresh=False) as bar:
        task = bar.add_task(f"scoring {settings.corpus_name}", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)
            bar.refresh()

        return run_with(progress)


__all__ = ["run"]
