"""``mobilize corpus validate|add|list``: check a corpus folder, name it, list the named ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli._apps import corpus_app
from pipeline.cli._common import (
    VERBOSE_HELP,
    console,
    err_console,
    print_json,
    reported_errors,
    setup_logging,
    shown_path,
)

_STYLE = {"ingested": "green", "skipped": "yellow", "failed": "red", "corpus_file": "dim"}


@corpus_app.command("validate")
def validate(
    path: Annotated[str, typer.Argument(help="Corpus folder, or the name of a registered corpus.")],
    json_: Annotated[bool, typer.Option("--json", help="One JSON record per file and per "
                                        "metadata row without a file.")] = False,
    to_simplified: Annotated[bool, typer.Option("--to-simplified", help="Convert traditional-"
                                                "character documents to simplified (OpenCC).")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Read every document of a corpus and report what was ingested, skipped or failed.

    Exits 0 when no document failed, 1 when any failed, 2 when the folder or its
    metadata.csv cannot be used at all.

    Example: mobilize corpus validate corpora/demo --json
    """
    from rich.progress import (  # (here: every command's start-up imports this module)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from pipeline.ingest import load_corpus, require_documents, scan_corpus
    from pipeline.registry import resolve_corpus

    setup_logging(verbose)
    with reported_errors():
        folder, name = resolve_corpus(path)
        scan = scan_corpus(folder, name=name)
        require_documents(scan, path)
        total = len(scan.sources)
        show = not json_ and err_console.is_terminal
        with Progress(TextColumn("reading {task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=err_console, transient=True,
                      disable=not show) as progress:
            task = progress.add_task(escape(name), total=total)
            corpus = load_corpus(folder, name=name, to_simplified=to_simplified,
                                 on_source=lambda _src: progress.advance(task))
    counts = corpus.counts()
    if json_:
        print_json([entry.as_dict() for entry in corpus.ledger])
    else:
        console.print(f"[bold]{escape(corpus.name)}[/] ({escape(shown_path(corpus.root))})", soft_wrap=True)
        own = counts["corpus_file"]
        console.print(f"[green]{counts['ingested']} ingested[/], [yellow]{counts['skipped']} "
                      f"skipped[/], [red]{counts['failed']} failed[/]"
                      + (f" [dim](and {own} corpus file{'s' if own != 1 else ''}: metadata, "
                         "README/NOTES)[/]" if own else ""), soft_wrap=True)
        years = [d.year for d in corpus.documents if d.year is not None]
        if years:
            chars = sum(d.chars for d in corpus.documents)
            console.print(f"years {min(years)}-{max(years)}, {chars:,} characters; "
                          f"{sum(d.converted for d in corpus.documents)} converted to simplified",
                          soft_wrap=True)
        if verbose:
            table = Table("status", "path", "doc_id", "reason")
            for e in corpus.ledger:
                table.add_row(f"[{_STYLE[e.status]}]{e.status}[/]", escape(e.path),
                              escape(e.doc_id), escape(e.reason))
            console.print(table)
        else:
            for e in corpus.ledger:
                if e.status == "failed" or (e.status == "ingested" and e.reason):
                    where = "" if e.reason.startswith((e.path, "metadata.csv:")) else f"{e.path}: "
                    console.print(f"[{_STYLE[e.status]}]{e.status}[/] {escape(where + e.reason)}",
                                  soft_wrap=True)
            if counts["skipped"]:
                console.print("[dim]--verbose lists every file, with the reasons for skipped "
                              "ones.[/]", soft_wrap=True)
    if counts["failed"]:
        raise typer.Exit(1)


@corpus_app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="The corpus folder.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The name to use in "
                                      "`mobilize run --corpus NAME`.")],
    force: Annotated[bool, typer.Option("--force", help="Replace a name already registered "
                                        "for another folder.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Register a corpus folder under a name in your config file.

    A name already registered for another folder is refused unless --force is given.
    `mobilize run --corpus NAME` then writes OUT/NAME/; a run by path writes OUT/<folder name>/.

    Example: mobilize corpus add ~/data/gwr-national-zh --name national
    """
    from pipeline.config import config_file
    from pipeline.registry import add_corpus, corpus_info, registered

    setup_logging(verbose)
    with reported_errors():
        earlier = registered().get(name)
        folder = add_corpus(path, name, force=force)
        info = corpus_info(name, folder)
    console.print(f"registered [bold]{escape(name)}[/] -> {escape(str(folder))} "
                  f"({info.documents} documents) in {escape(str(config_file()))}", soft_wrap=True)
    if earlier is not None and earlier.expanduser().resolve() != folder:
        console.print(f"(it pointed to {escape(str(earlier))} before)", soft_wrap=True)


@corpus_app.command("list")
def list_(
    json_: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Show registered corpora with their document counts and year span.

    Example: mobilize corpus list --json
    """
    from pipeline.registry import list_corpora

    setup_logging(verbose)
    with reported_errors():
        infos = list_corpora()
    if json_:
        print_json([i.as_dict() for i in infos])
        return
    if not infos:
        console.print("No registered corpora. Add one: mobilize corpus add PATH --name NAME")
        return
    table = Table("name", "documents", "years", "path")
    for i in infos:
        years = f"{i.first_year}-{i.last_year}" if i.first_year is not None else "-"
        docs = str(i.documents) if i.exists else "[red]folder missing[/]"
        if i.problem:
            docs = f"[red]unusable: {escape(i.problem)}[/]"
        table.add_row(escape(i.name), docs, years, escape(str(i.path)))
    console.print(table)
