"""The ``mobilize`` command line. Thin commands: parse options, call one library function, print."""

from __future__ import annotations

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
    app()


__all__ = ["app", "main"]
