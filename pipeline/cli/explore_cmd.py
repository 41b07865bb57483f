"""``mobilize explore``: the path of a run's (or a comparison's) explore.html, or open it."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.markup import escape

from pipeline.cli._apps import app
from pipeline.cli._common import (
    DEFAULT_LEXICON_SHOWN,
    DEFAULT_PERIODS_SHOWN,
    VERBOSE_HELP,
    console,
    print_json,
    reported_errors,
    setup_logging,
    shown_path,
)
from pipeline.config import DEFAULT_LEXICON, DEFAULT_PERIODS, Settings
from pipeline.errors import MobilizeError


@app.command("explore")
def explore_cmd(
    run: Path = typer.Option(..., "--run", help="A run folder (OUT/<corpus>) or a comparison "
                                                "folder (OUT/compare/<label>)."),
    open_: bool = typer.Option(False, "--open", help="Open explore.html in the web browser "
                                                     "instead of printing its path."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Write explore.html again (a run "
                                                          "folder only; e.g. after changing "
                                                          "the periods file)."),
    periods: Path = typer.Option(DEFAULT_PERIODS, "--periods", "-p",
                                 show_default=DEFAULT_PERIODS_SHOWN,
                                 help="Periods file (with --rebuild, or when a run folder "
                                      "has no explore.html yet)."),
    lexicon: Path = typer.Option(DEFAULT_LEXICON, "--lexicon", "-l",
                                 show_default=DEFAULT_LEXICON_SHOWN,
                                 help="Lexicon, when run.json's lexicon path is gone."),
    wait: float = typer.Option(0.0, "--wait", min=0.0,
                               help="Seconds to wait for a run writing the same run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the path as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Print the path of the explorer (explore.html), or open it with --open.

    Every `mobilize run` and `mobilize compare` writes explore.html beside report.html: one
    offline page with rates and intervals per category or term, the documents behind each
    number, their passages with every match highlighted, a search box and a two-group plot.
    A run folder written before the explorer existed gets one now (under the run's lock).

    Example: mobilize explore --run reports/gwr-national-zh --open
    """
    setup_logging(verbose)
    with reported_errors():
        from pipeline import explore, store

        run = Path(os.path.abspath(run))
        page = run / explore.FILE
        if not run.is_dir():
            raise MobilizeError("not a run folder: there is no such folder", path=run,
                                fix="Give --run the folder a run wrote: OUT/<corpus name> "
                                    "(or OUT/compare/<label>).")
        if rebuild or not page.is_file():
            if not store.is_run_folder(run):
                raise MobilizeError(
                    "no explore.html here, and not a run folder mobilize wrote (no run.json)",
                    path=run, fix="Give --run OUT/<corpus name>, or re-run `mobilize compare` "
                                  "for a comparison folder.")
            settings = Settings(lexicon=lexicon, periods=periods, verbose=verbose)
            with store.run_lock(run.parent, run.name, wait):
                try:
                    page = explore.write_explorer(run, settings)
                except OSError as exc:
                    raise MobilizeError(f"cannot write explore.html ({exc.strerror or exc})",
                                        path=run, fix="Free space on that disk (or make the "
                                                      "folder writable) and try again.") from None
    shown = shown_path(page)
    if open_:
        import webbrowser

        if not webbrowser.open(page.as_uri()):
            console.print(f"no web browser found; open {escape(shown)}", soft_wrap=True)
        return
    if as_json:
        print_json({"explore": shown})
    else:
        console.print(escape(shown), soft_wrap=True, highlight=False)
