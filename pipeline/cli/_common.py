"""What every command shares: the console, --verbose, --json output and error reporting."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import typer
from rich.console import Console

from pipeline.errors import MobilizeError

console = Console(stderr=False, highlight=False)
err_console = Console(stderr=True, highlight=False)

F = TypeVar("F", bound=Callable[..., Any])

VERBOSE_HELP = "Print detail (per-document progress and timings)."


def setup_logging(verbose: bool) -> None:
    """Quiet by default: warnings only; --verbose shows info from mobilize."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("pipeline").setLevel(level)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn a MobilizeError into a one-line message and its exit code, not a traceback."""
    try:
        yield
    except MobilizeError as exc:
        from rich.markup import escape  # (a message may name a file or key with [brackets])

        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True,
                          soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
