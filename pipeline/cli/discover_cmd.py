"""``mobilize lexicon suggest|accept``: terms the corpus says the lexicon misses, and a review step."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli._apps import lexicon_app
from pipeline.cli._common import VERBOSE_HELP, console, err_console, reported_errors, setup_logging
from pipeline.config import DEFAULT_SEGMENTER


@lexicon_app.command("suggest")
def suggest(
    corpus: Annotated[list[str], typer.Option("--corpus", "-c", help="Corpus folder or registered "
                                              "name; repeat to train on several corpora together.")],
    lexicon: Annotated[Path | None, typer.Option("--lexicon", "-l", help="Lexicon YAML "
                                                 "(default: lexicons/mobilize.yaml).")] = None,
    per_category: Annotated[int, typer.Option("--per-category", "-n", min=1,
                                              help="Suggestions per category.")] = 10,
    min_count: Annotated[int, typer.Option("--min-count", min=1, help="A token must occur this "
                                           "often to enter the model and the suggestions.")] = 5,
    seed: Annotated[int | None, typer.Option("--seed", help="Word2Vec seed (default: the "
                                             "settings' seed). Same seed, same suggestions.")] = None,
    segmenter: Annotated[str, typer.Option("--segmenter", help="jieba or jieba-rs (the run's "
                                           "segmenter shares its cache).")] = DEFAULT_SEGMENTER,
    out: Annotated[Path, typer.Option("--out", "-o", help="Review file to write: .csv or "
                                      ".yaml.")] = Path("lexicon-suggestions.csv"),
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Propose terms for every category from a Word2Vec model of the corpus, for review.

    Trains (or reuses from the cache) a Word2Vec model on the segmented corpus and
    lists, per category, the tokens not yet in the lexicon that sit closest to it
    (score = mean of the cosine to the category centroid and to its nearest
    member), with frequency and two KWIC lines. Mark `accept` = yes in the file,
    then run `mobilize lexicon accept FILE`.

    Example: mobilize lexicon suggest --corpus gwr-national-zh --corpus social-security-policy-zh --out review.csv
    """
    from rich.progress import (  # (here: every command's start-up imports this module)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from pipeline.config import Settings
    from pipeline.discover import suggest as run_suggest
    from pipeline.discover import write_review
    from pipeline.registry import resolve_corpus

    setup_logging(verbose)
    with reported_errors():
        if segmenter not in ("jieba", "jieba-rs", "rjieba"):
            raise typer.BadParameter("use jieba or jieba-rs", param_hint="--segmenter")
        roots = [resolve_corpus(c)[0] for c in corpus]
        settings = Settings(segmenter="jieba-rs" if segmenter == "rjieba" else segmenter)  # type: ignore[arg-type]
        if lexicon is not None:
            settings = settings.with_(lexicon=lexicon)
        show = err_console.is_terminal
        with Progress(TextColumn("segmenting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=err_console, transient=True, disable=not show) as progress:
            task = progress.add_task("docs", total=None)
            df = run_suggest(roots, settings, lexicon=lexicon, per_category=per_category,
                             min_count=min_count, seed=seed,
                             on_total=lambda n: progress.update(task, total=n),
                             progress=lambda k: progress.advance(task, k))
        write_review(df, out, source=df.attrs.get("source", ""))
    table = Table("category", "top suggestions (score)")
    for cat, group in df.groupby("category", sort=True):
        shown = group if verbose else group.head(5)
        table.add_row(escape(str(cat)), escape("  ".join(f"{t} ({s:.2f})" for t, s in
                                                         zip(shown["term"], shown["score"], strict=True))))
    if len(df):
        console.print(table)
    if df.attrs.get("reason"):
        console.print(f"[yellow]note:[/] {escape(df.attrs['reason'])}")
    console.print(f"wrote {len(df)} suggestions to [bold]{escape(str(out))}[/]; mark accept = yes, then: "
                  f"mobilize lexicon accept {escape(str(out))}")


@lexicon_app.command("accept")
def accept(
    review: Annotated[Path, typer.Argument(help="The review file written by `mobilize lexicon suggest`.")],
    lexicon: Annotated[Path | None, typer.Option("--lexicon", "-l", help="Lexicon YAML to extend "
                                                 "(default: lexicons/mobilize.yaml).")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Where to write the new version "
                                             "(default: replace the lexicon, keeping a .bak copy).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Merge the rows marked accept = yes into a new lexicon version.

    Each added term carries a note with its origin (corpus, similarity, date). The
    version's last number goes up by one; the result is validated before it is
    written (atomically), and the previous file is kept as <name>.<version>.bak.

    Example: mobilize lexicon accept review.csv --out lexicons/mobilize.yaml
    """
    from pipeline.config import DEFAULT_LEXICON
    from pipeline.discover import accept_review

    setup_logging(verbose)
    with reported_errors():
        result = accept_review(review, lexicon or DEFAULT_LEXICON, out)
    for cat, term, why in result.skipped:
        console.print(f"[yellow]skipped[/] {escape(term)} ({escape(cat)}): {escape(why)}")
    if not result.added:
        console.print("No new term accepted (mark accept = yes on the rows to add); the lexicon is unchanged.")
        return
    if verbose:
        for cat, term in result.added:
            console.print(f"added {escape(term)} to {escape(cat)}")
    backup = f" (previous version kept as {escape(str(result.backup))})" if result.backup else ""
    console.print(f"added {len(result.added)} terms; version {escape(result.old_version)} -> "
                  f"{escape(result.new_version)} in [bold]{escape(str(result.path))}[/]{backup}")
