"""The ``mobilize`` command line. Thin commands: parse options, call one library function, print."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
from typing import Any

# (typer and rich are imported by the command modules, not here: ``mobilize run`` forks its
# helper before them, see ``_prepare_run``)


def __getattr__(name: str) -> Any:
    """``pipeline.cli.app``, the Typer application (imported on first use)."""
    if name == "app":
        from pipeline.cli._apps import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def setup_logging(verbose: bool) -> None:
    """Quiet by default: warnings only; --verbose shows info from mobilize."""
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    logging.getLogger("pipeline").setLevel(level)


def _register(command: str | None = None) -> None:
    """Import the command modules: that registers their commands on the apps.

    ``mobilize run ...`` needs only ``run_cmd``: the other modules' imports and their options
    (typer builds every registered command's parameters) cost ~0.05 s of CPU at every run.
    Anything else (``mobilize``, ``--help``, any other command) gets every module."""
    if command == "run":
        from pipeline.cli import run_cmd  # noqa: F401

        return
    from pipeline.cli import (  # noqa: F401
        corpus_cmd,
        discover_cmd,
        explore_cmd,
        flow_cmd,
        lexicon_cmd,
        report_cmd,
        run_cmd,
    )


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else None
    prepared = _prepare_run() if command == "run" and not {"-h", "--help"} & set(
        sys.argv[2:]) else None
    _mark_start()
    from pipeline.cli import _common
    from pipeline.cli._apps import app

    _common.prepared_helper = prepared
    _register(command)
    # At exit, leave the objects of the libraries a command loaded (pandas, pyarrow, ...)
    # to the operating system: the interpreter's last garbage collections over them take
    # 0.1-0.4 s of every command, after its work is done. Only those collections skip the
    # frozen objects: atexit handlers still run and objects are still freed by reference
    # counting. (In main only: a test that calls ``app`` in-process keeps its collector.)
    atexit.register(gc.freeze)
    try:
        app()
    except SystemExit as exc:
        # Click turns a closed stdout (``mobilize ... | head``) into exit 1 after wrapping the
        # streams in its PacifyFlushWrapper; exit 1 means "some documents failed" here.
        if _stdout_closed():
            _quiet_exit()
        try:
            sys.stdout.flush()  # what is still buffered, now rather than at interpreter exit
        except BrokenPipeError:
            _quiet_exit()
        raise
    except BrokenPipeError:
        _quiet_exit()


#: The longest interpreter start-up and import of this module that ``_mark_start`` believes.
STARTUP_MAX = 15.0


def _prepare_run() -> Any:
    """``mobilize run``: fork the run's helper now (``engine.prepare_helper``), before typer,
    rich and pydantic are imported, so that it loads the segmenter's dictionary, the lexicon
    and the matcher while this process imports the command line and parses the options (~0.25
    s of CPU). Logging is set up first, so that the helper writes its warnings as this process
    does (the run command sets the level again, and hands it to the helper)."""
    from pipeline.engine import prepare_helper

    setup_logging(False)
    try:
        return prepare_helper()
    except OSError:  # (no process to spare: the run forks its helper later, or plans itself)
        return None


def _mark_start() -> None:
    """Record when this process started (from /proc on Linux: interpreter start-up and
    imports included), else now."""
    import time

    from pipeline.cli import _common

    since = _common.process_seconds()
    # /proc gives when the process was forked, not when it exec'd Python: a shell that runs
    # its last command in its own process (`sh -c '...; mobilize run'`, a subshell) forked
    # it long before. Past STARTUP_MAX seconds the fork time is not the user's wait: count
    # from now (interpreter start-up is then left out).
    if since is None or since > STARTUP_MAX:
        since = 0.0
    _common.started_at = time.time() - since


def _stdout_closed() -> bool:
    # (by name: typer carries its own copy of click, ``typer._click``)
    return type(sys.stdout).__name__ == "PacifyFlushWrapper"


def _quiet_exit() -> None:
    """The reader of stdout is gone (``| head``): stop quietly with exit 0, as Unix tools do.
    Nothing more reaches stdout: it points at /dev/null, so the interpreter's last flush is
    silent too."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.__stdout__.fileno() if sys.__stdout__ else 1)
    except OSError:
        pass
    raise SystemExit(0)


__all__ = ["app", "main"]
