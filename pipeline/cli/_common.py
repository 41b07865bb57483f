"""What every command shares: the console, --verbose, --json output and error reporting."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from pipeline.cli import setup_logging  # noqa: F401 (the commands import it from here)
from pipeline.config import shown_path  # noqa: F401 (the commands import it from here)
from pipeline.errors import MobilizeError

class _Console(Console):
    """rich's console, except that a closed pipe (``mobilize ... | head``) is left to the
    entry point (``pipeline.cli.main``: exit 0, quietly) instead of rich's exit 1, which here
    means "some documents failed"."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError(32, "Broken pipe")


console = _Console(stderr=False, highlight=False)
err_console = _Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

#: When the process that runs the command started (``time.time()``), set by
#: ``pipeline.cli.main``: a run reports the seconds its user waited from there.
started_at: float | None = None

#: ``mobilize run``'s helper process, forked by ``pipeline.cli.main`` before the options are
#: parsed (``engine.prepare_helper``); the run command hands it the run, or shuts it down.
prepared_helper: Any = None

VERBOSE_HELP = "Print detail (per-document progress and timings)."
#: How --help shows the bundled defaults: by their place in the project, never as the
#: absolute path of one machine's checkout.
DEFAULT_CORPUS_SHOWN = "the bundled demo corpus, corpora/demo"
DEFAULT_OUT_SHOWN = "reports/ in the project"
DEFAULT_LEXICON_SHOWN = "the bundled lexicon"
DEFAULT_PERIODS_SHOWN = "the bundled reform-era periods"


def process_seconds() -> float | None:
    """Seconds since this process started (Linux: from /proc, to 0.01 s), so that a command
    can report the time its user waited, interpreter start-up and imports included. None
    where /proc is not there."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
    # the command name (field 2) may hold spaces and parentheses: count from its end
    fields = stat[stat.rindex(")") + 2:].split()
    return max(0.0, uptime - int(fields[19]) / ticks)


def mobilize_version() -> str:
    """The installed mobilize's version (the package's own when it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mobilize")
    except PackageNotFoundError:
        from pipeline import __version__

        return __version__


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in. An object gets the key
    ``mobilize_version`` (first), so a saved output says which mobilize wrote it."""
    if isinstance(data, dict) and "mobilize_version" not in data:
        data = {"mobilize_version": mobilize_version(), **data}
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a MobilizeError into a one-line message and its exit code, not a traceback."""
    try:
        yield
    except MobilizeError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
