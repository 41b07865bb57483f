"""The ``mobilize`` command line. Thin commands: parse options, call one library function, print."""

from __future__ import annotations

import atexit
import gc

from pipeline.cli._apps import app


def _register() -> None:
    # Importing the command modules registers their commands on the apps.
    from pipeline.cli import (  # noqa: F401
        corpus_cmd,
        discover_cmd,
        flow_cmd,
        lexicon_cmd,
        report_cmd,
        run_cmd,
    )


def main() -> None:
    _register()
    # At exit, leave the objects of the libraries a command loaded (pandas, pyarrow, ...)
    # to the operating system: the interpreter's last garbage collections over them take
    # 0.1-0.4 s of every command, after its work is done. Only those collections skip the
    # frozen objects: atexit handlers still run and objects are still freed by reference
    # counting. (In main only: a test that calls ``app`` in-process keeps its collector.)
    atexit.register(gc.freeze)
    app()


__all__ = ["app", "main"]
