"""The Typer applications that the command modules register on.

Each command module owns its commands; ``pipeline.cli`` imports them all.
"""

from __future__ import annotations

import typer

CONTEXT = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="mobilize",
    help=(
        "Measure how the themes of social mobilization in China's social security system "
        "appear in policy documents, over time and across corpora.\n\n"
        "Example: mobilize run --corpus corpora/demo"
    ),
    no_args_is_help=True,
    context_settings=CONTEXT,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
corpus_app = typer.Typer(
    help="Validate, register and list corpora.\n\nExample: mobilize corpus validate corpora/demo",
    no_args_is_help=True, context_settings=CONTEXT,
)
lexicon_app = typer.Typer(
    help="Inspect, validate, export and check the lexicon.\n\nExample: mobilize lexicon show",
    no_args_is_help=True, context_settings=CONTEXT,
)


def _print_version(value: bool) -> None:
    if value:
        from pipeline.cli._common import mobilize_version

        typer.echo(f"mobilize {mobilize_version()}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", is_eager=True,
                                 callback=_print_version,
                                 help="Print mobilize's version and exit."),
) -> None:
    """(Options of ``mobilize`` itself; the commands have their own.)"""


app.add_typer(corpus_app, name="corpus")
app.add_typer(lexicon_app, name="lexicon")
