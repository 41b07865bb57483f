"""``mobilize serve``, ``mobilize deploy`` and ``mobilize server``: scheduling with Prefect.

Thin commands: each builds ``Settings`` like ``mobilize run`` does and calls one function of
``pipeline.flow`` (imported lazily: Prefect costs seconds to import).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pipeline.cli._apps import CONTEXT, app
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
)
from pipeline.config import DEFAULT_CORPUS, DEFAULT_LEXICON, DEFAULT_OUT, DEFAULT_SEGMENTER, Settings
from pipeline.errors import MobilizeError

server_app = typer.Typer(
    help="Start, stop or check a local Prefect server that mobilize runs and schedules use.\n\n"
         "Example: mobilize server start --port 4200",
    no_args_is_help=True, context_settings=CONTEXT,
)
app.add_typer(server_app, name="server")


def _settings(corpus: str, out: Path, lexicon: Path, segmenter: str | None,
              workers: int | None, no_report: bool, verbose: bool) -> Settings:
    """Settings for a scheduled run, decided like ``mobilize run`` decides them."""
    from pipeline.cli.run_cmd import _config_defaults, _resolve_corpus

    cfg = _config_defaults()
    root, name = _resolve_corpus(corpus)
    seg = segmenter or cfg.get("segmenter", DEFAULT_SEGMENTER)
    if seg not in ("jieba", "jieba-rs"):
        raise MobilizeError(f"unknown segmenter {seg!r}", fix="Use --segmenter jieba or jieba-rs.")
    changes: dict[str, Any] = {k: cfg[k] for k in ("hmm", "batch_size", "on_split_term")
                               if k in cfg}
    settings = Settings(**changes).with_(
        corpus=root, corpus_name=name, out=out.resolve(), lexicon=lexicon.resolve(),
        segmenter=seg, engine="prefect", report=not no_report and bool(cfg.get("report", True)),
        verbose=verbose, progress=False)
    if workers or cfg.get("workers"):
        settings = settings.with_(workers=int(workers or cfg["workers"]))
    return settings


_CORPUS = typer.Option(str(DEFAULT_CORPUS), "--corpus", "-c", show_default=DEFAULT_CORPUS_SHOWN,
                       help="Corpus folder, or a registered corpus name.")
_OUT = typer.Option(DEFAULT_OUT, "--out", "-o", show_default=DEFAULT_OUT_SHOWN, help="Output folder; tables go to OUT/<corpus name>/.")
_LEXICON = typer.Option(DEFAULT_LEXICON, "--lexicon", "-l",
                        show_default=DEFAULT_LEXICON_SHOWN, help="Lexicon YAML file.")
_SEGMENTER = typer.Option(None, "--segmenter", help="jieba (default) or jieba-rs.")
_WORKERS = typer.Option(None, "--workers", "-w", min=1, help="Processes for segmentation.")
_NO_REPORT = typer.Option(False, "--no-report", help="Write the tables only.")
_NAME = typer.Option("mobilize-scheduled", "--name", help="The deployment's name.")
_VERBOSE = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP)


@app.command("serve")
def serve(
    cron: str = typer.Option(None, "--cron", help='A cron schedule, e.g. "0 3 * * 1" (Mondays 03:00).'),
    interval: float = typer.Option(None, "--interval", min=1.0, help="Or: run every N seconds."),
    corpus: str = _CORPUS,
    out: Path = _OUT,
    lexicon: Path = _LEXICON,
    segmenter: str = _SEGMENTER,
    workers: int = _WORKERS,
    no_report: bool = _NO_REPORT,
    name: str = _NAME,
    verbose: bool = _VERBOSE,
) -> None:
    """Run the mobilize flow on a schedule, in this terminal, until Ctrl-C.

    Needs a running Prefect server: `mobilize server start`, or `prefect server start` with
    PREFECT_API_URL exported (Prefect's temporary server cannot run schedules). Runs can
    also be started from the server's UI or API (deployment mobilize-run/NAME).

    Example: mobilize serve --cron "0 3 * * 1" --corpus ../shared/corpora/gwr-national-zh --out reports
    """
    setup_logging(verbose)
    with reported_errors():
        if not cron and not interval:
            raise MobilizeError("no schedule given", fix='Pass --cron "0 3 * * 1" or --interval SECONDS.')
        settings = _settings(corpus, out, lexicon, segmenter, workers, no_report, verbose)
        from pipeline import flow

        err_console.print(f"serving [bold]{flow.FLOW_NAME}/{name}[/] "
                          f"({'cron ' + cron if cron else f'every {interval:g} s'}) on "
                          f"{settings.corpus_name}; Ctrl-C stops")
        flow.serve(settings, cron=cron, interval=interval, name=name)


@app.command("deploy")
def deploy(
    work_pool: str = typer.Option("mobilize", "--pool", help="The work pool (type process)."),
    cron: str = typer.Option(None, "--cron", help='A cron schedule, e.g. "0 3 * * 1".'),
    corpus: str = _CORPUS,
    out: Path = _OUT,
    lexicon: Path = _LEXICON,
    segmenter: str = _SEGMENTER,
    workers: int = _WORKERS,
    no_report: bool = _NO_REPORT,
    name: str = _NAME,
    as_json: bool = typer.Option(False, "--json", help="Print the deployment as JSON."),
    verbose: bool = _VERBOSE,
) -> None:
    """Register the mobilize flow as a deployment on a Prefect server's work pool.

    A worker started on a machine where mobilize is installed runs it:
    `prefect work-pool create mobilize --type process` then `prefect worker start --pool mobilize`.

    Example: mobilize deploy --pool mobilize --cron "0 3 * * 1" --corpus ../shared/corpora/gwr-national-zh
    """
    setup_logging(verbose)
    with reported_errors():
        settings = _settings(corpus, out, lexicon, segmenter, workers, no_report, verbose)
        from pipeline import flow

        dep_id = flow.deploy(settings, work_pool=work_pool, cron=cron, name=name)
    info = {"deployment": f"mobilize-run/{name}", "id": dep_id, "work_pool": work_pool,
            "cron": cron}
    if as_json:
        print_json(info)
    else:
        console.print(f"deployed [bold]{info['deployment']}[/] ({dep_id}) to work pool "
                      f"{work_pool}; start a worker: prefect worker start --pool {work_pool}")


@server_app.command("start")
def server_start(
    port: int = typer.Option(4200, "--port", help="Port on 127.0.0.1."),
    as_json: bool = typer.Option(False, "--json", help="Print the server record as JSON."),
) -> None:
    """Start a Prefect server in the background (loopback only; data under mobilize's data folder).

    Later `mobilize run` commands use it (a few seconds a run instead of 11-20 s),
    and `mobilize serve` / `mobilize deploy` need one.

    Example: mobilize server start --port 4200
    """
    with reported_errors():
        from pipeline import flow

        info = flow.server_start(port=port)
    if as_json:
        print_json(info)
    else:
        console.print(f"Prefect server at {info['api_url']} (pid {info['pid']}); UI {info['ui_url']}; "
                      f"stop it with `mobilize server stop`")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the server `mobilize server start` started.

    Only a process that is still that server (the command line and start time recorded when it
    started) is signalled; a stale record is removed and says so.

    Example: mobilize server stop
    """
    from pipeline import flow

    info = flow.server_stop()
    if info and info.get("stale"):
        console.print(f"the recorded server at {info.get('api_url')} was not running "
                      f"({info['stale']}); its record was removed and no process was signalled",
                      soft_wrap=True)
    else:
        console.print(f"stopped the server at {info['api_url']}" if info
                      else "no server was recorded")


@server_app.command("status")
def server_status(
    as_json: bool = typer.Option(False, "--json", help="Print the server record as JSON."),
) -> None:
    """Say whether the recorded server answers (exit 1 if not).

    Example: mobilize server status
    """
    from pipeline import flow

    info = flow.server_status()
    if as_json:
        print_json(info or {})
    else:
        console.print(f"running at {info['api_url']} (pid {info['pid']})" if info
                      else "no mobilize server is running")
    if not info:
        raise typer.Exit(1)


__all__ = ["deploy", "serve", "server_app"]
