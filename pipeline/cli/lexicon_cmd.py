"""``mobilize lexicon validate|show|export|import|kwic|coverage|sample|agreement|passages|card|misses``.

Thin commands over ``pipeline.lexicon`` and ``pipeline.validation``. (``lexicon
suggest`` and ``lexicon accept`` live in ``discover_cmd``.)
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pipeline.cli._apps import lexicon_app
from pipeline.cli._common import (
    VERBOSE_HELP,
    console,
    err_console,
    print_json,
    reported_errors,
    setup_logging,
    shown_path,
)

if TYPE_CHECKING:
    from pipeline.ingest import Document

_LEXICON_ARG = typer.Argument(help="Lexicon YAML file (default: lexicons/mobilize.yaml).",
                              show_default=False)
_LEXICON_OPT = typer.Option("--lexicon", "-l", help="Lexicon YAML file (default: "
                            "lexicons/mobilize.yaml).", show_default=False)
_CORPUS_OPT = typer.Option("--corpus", "-c", help="Corpus folder, or the name of a registered "
                           "corpus.")
_FORMAT_HELP = "quanteda (YAML), cntext (YAML) or liwc (.dic)."


def _default_lexicon(path: Path | None) -> Path:
    from pipeline.config import DEFAULT_LEXICON

    return path if path is not None else DEFAULT_LEXICON


def _write_or_print(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {escape(shown_path(out))}", soft_wrap=True)


def _check_format(fmt: str) -> str:
    from pipeline.errors import MobilizeError
    from pipeline.lexicon import FORMATS

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise MobilizeError(f"unknown format {fmt!r}", fix=f"Use one of: {', '.join(FORMATS)}")
    return fmt


def _documents(corpus: str) -> list[Document]:
    """Resolve and read a corpus (a path or a registered name), with a progress bar on a tty."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from pipeline.ingest import load_corpus, require_documents, scan_corpus
    from pipeline.registry import resolve_corpus

    folder, name = resolve_corpus(corpus)
    scan = scan_corpus(folder, name=name)
    require_documents(scan, corpus)
    total = len(scan.sources)
    with Progress(TextColumn("reading {task.description}"), BarColumn(), MofNCompleteColumn(),
                  console=err_console, transient=True,
                  disable=not err_console.is_terminal) as progress:
        task = progress.add_task(escape(name), total=total)
        loaded = load_corpus(folder, name=name, on_source=lambda _s: progress.advance(task))
    return loaded.documents


# --------------------------------------------------------------------------- validate / show


@lexicon_app.command("validate")
def validate(
    path: Annotated[Path | None, _LEXICON_ARG] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings (a missing codebook "
                                         "category) as errors.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Check a lexicon file: every problem as `path:line: problem. fix`, exit 2 if any error.

    A valid lexicon prints one line with its name, version and hash, and exits 0.

    Example: mobilize lexicon validate lexicons/mobilize.yaml
    """
    from pipeline.lexicon import load_lexicon, validate_lexicon

    setup_logging(verbose)
    target = _default_lexicon(path)
    problems = validate_lexicon(target)
    errors = [p for p in problems if p.severity == "error" or (strict and p.severity == "warning")]
    for p in problems:
        style = "red" if p in errors else "yellow" if p.severity == "warning" else "dim"
        err_console.print(f"[{style}]{escape(str(p))}[/]", soft_wrap=True)
    if errors:
        err_console.print(f"[bold red]{len(errors)} problem(s)[/] in {escape(shown_path(target))}",
                          soft_wrap=True)
        raise typer.Exit(2)
    with reported_errors():
        lex = load_lexicon(target)
    warnings = sum(p.severity == "warning" for p in problems)
    notes = len(problems) - warnings
    warn = (f", {warnings} warning(s)" if warnings else "") + (f", {notes} note(s)" if notes else "")
    console.print(f"OK {escape(shown_path(target))}: lexicon {escape(lex.name)} version "
                  f"{escape(lex.version)}, hash {lex.short_hash}, {len(lex.categories)} categories, "
                  f"{len(lex.terms())} terms{warn}", soft_wrap=True)


@lexicon_app.command("show")
def show(
    path: Annotated[Path | None, _LEXICON_ARG] = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """List the lexicon's dimensions and categories with their term counts, version and hash.

    Example: mobilize lexicon show --json
    """
    from pipeline.lexicon import load_lexicon

    setup_logging(verbose)
    with reported_errors():
        lex = load_lexicon(_default_lexicon(path))
    cats: list[dict[str, Any]] = [{"dimension": c.dimension, "id": c.id, "name_zh": c.name_zh, "name_en": c.name_en,
             "terms": sum(1 for t in c.terms if t.pattern is None),
             "patterns": sum(1 for t in c.terms if t.pattern is not None),
             "excluded": len(c.excluded)} for c in lex.categories]
    if json_:
        print_json({"name": lex.name, "version": lex.version, "hash": lex.hash,
                    "path": str(lex.path), "meta": dict(lex.meta),
                    "dimensions": list(lex.dimensions), "categories": cats})
        return
    console.print(f"[bold]{escape(lex.name)}[/] {escape(lex.version)}  hash {lex.hash}",
                  soft_wrap=True)
    if lex.meta.get("title"):
        console.print(escape(lex.meta["title"]))
    # Ids are typed by users: never cut; the names wrap instead (no vertical rules on a
    # narrow terminal, to leave them room).
    from rich import box

    narrow = console.width < 110
    table = Table("dimension", "category", "name", "terms", "patterns", "excluded",
                  **({"box": box.SIMPLE_HEAD, "pad_edge": False} if narrow else {}))
    for col in table.columns:
        col.no_wrap = col.header != "name"
        col.overflow = "fold" if col.header == "name" else "ellipsis"
    table.columns[1].min_width = max((len(c["id"]) for c in cats), default=8)
    for c in cats:
        table.add_row(c["dimension"], c["id"], escape(f"{c['name_zh']} / {c['name_en']}"),
                      str(c["terms"]), str(c["patterns"]), str(c["excluded"]))
    console.print(table)


# --------------------------------------------------------------------------- export / import


@lexicon_app.command("export")
def export(
    fmt: Annotated[str, typer.Option("--format", "-f", help=_FORMAT_HELP)],
    path: Annotated[Path | None, _LEXICON_OPT] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write here instead of "
                                             "stdout.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Export the lexicon as a quanteda or cntext YAML dictionary or a LIWC .dic, keyed by
    category id. What the format cannot hold (regex patterns, weights) is named on stderr.

    Example: mobilize lexicon export --format quanteda --out mobilize_quanteda.yml
    """
    from pipeline.lexicon import export_lexicon, load_lexicon

    setup_logging(verbose)
    with reported_errors():
        fmt = _check_format(fmt)
        result = export_lexicon(load_lexicon(_default_lexicon(path)), fmt)
    for item in result.lost:
        err_console.print(f"[yellow]not kept:[/] {escape(item)}", soft_wrap=True)
    _write_or_print(result.text, out)


@lexicon_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The dictionary file to read.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=_FORMAT_HELP)],
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the mobilize YAML "
                                             "here instead of stdout.")] = None,
    name: Annotated[str | None, typer.Option("--name", help="Lexicon name (default: the file's "
                                             "name).")] = None,
    dimension: Annotated[str | None, typer.Option("--dimension", help="Dimension of categories "
                                                  "whose id does not tell it (feature, pathway, "
                                                  "challenge, domain, frame).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Read a quanteda/cntext YAML or LIWC .dic dictionary and write it as a mobilize lexicon.

    Categories keep their keys as ids; write the definitions and notes in afterwards.

    Example: mobilize lexicon import mobilize_quanteda.yml --format quanteda --out imported.yaml
    """
    import re

    from pipeline.errors import MobilizeError
    from pipeline.lexicon import import_lexicon, to_yaml

    setup_logging(verbose)
    with reported_errors():
        fmt = _check_format(fmt)
        try:
            text = file.read_text(encoding="utf-8-sig")
        except OSError as exc:
            raise MobilizeError(f"cannot read the dictionary ({exc.strerror})", path=file,
                                fix="Give the path of a dictionary file") from None
        except UnicodeDecodeError:
            raise MobilizeError("the dictionary is not UTF-8 text", path=file,
                                fix="Save it as UTF-8") from None
        lex_name = name or re.sub(r"[^A-Za-z0-9_.\-]+", "_", file.stem) or "imported"
        lex = import_lexicon(text, fmt, name=lex_name, source=file, dimension=dimension)
    _write_or_print(to_yaml(lex), out)


# --------------------------------------------------------------------------- the validation kit


@lexicon_app.command("kwic")
def kwic_cmd(
    corpus: Annotated[str, _CORPUS_OPT],
    term: Annotated[str | None, typer.Argument(help="A lexicon term (or pattern label), or any "
                                               "candidate string.", show_default=False)] = None,
    category: Annotated[str | None, typer.Option("--category", help="Every hit of this "
                                                 "category id.")] = None,
    lexicon: Annotated[Path | None, _LEXICON_OPT] = None,
    width: Annotated[int, typer.Option("--width", "-w", help="Characters of context on each "
                                       "side.")] = 20,
    limit: Annotated[int | None, typer.Option("--limit", "-n", help="At most this many "
                                              "lines.")] = None,
    csv_: Annotated[Path | None, typer.Option("--csv", help="Write the lines as CSV to this "
                                              "file.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the lines as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Keyword in context: each counted hit of a term or a category with its surroundings.

    A lexicon term shows exactly what the scorer counts (a term hidden inside a longer term
    of its category is not shown, and the command says how often that happened); any other
    string is looked up as a candidate term. On a narrow terminal each hit takes two lines.

    Example: mobilize lexicon kwic 新常态 --corpus ../shared/corpora/gwr-national-zh --limit 20
    """
    from pipeline.errors import MobilizeError
    from pipeline.lexicon import load_lexicon
    from pipeline.match import Matcher
    from pipeline.validation import kwic, kwic_csv, shadowing, term_matcher

    setup_logging(verbose)
    with reported_errors():
        if term is None and category is None:
            raise MobilizeError("give a TERM or --category ID",
                                fix="Example: mobilize lexicon kwic --category C3_economic_normal "
                                    "--corpus corpora/demo")
        if term is not None and not term.strip():
            raise MobilizeError("the TERM is empty" if not term else
                                "the TERM is only whitespace",
                                fix="Give the word to look for, e.g. mobilize lexicon kwic 新常态 "
                                    "--corpus corpora/demo, or --category ID for a whole "
                                    "category")
        lex = load_lexicon(_default_lexicon(lexicon))
        if category is not None and category not in {c.id for c in lex.categories}:
            _no_category(category, lex)
        matcher, known = term_matcher(lex, term) if term is not None else (Matcher(lex), True)
        if not known and not json_:
            err_console.print(f"{escape(term or '')} is not a term of lexicon {escape(lex.name)}: "
                              "showing every occurrence as a candidate")
        docs = _documents(corpus)
        lines = kwic(docs, matcher, term=term,
                     category=category if known else None, width=width, limit=limit)
        hidden, takers = (shadowing(docs, matcher, term) if known and term is not None
                          and (limit is None or len(lines) < limit) else (0, []))
    note = ""
    if hidden:
        by = f" ({', '.join(takers)})" if takers else ""
        note = (f"{term} occurs {hidden} time(s) in this corpus, but always inside a longer "
                f"term or pattern of its category{by}, which took every hit: the scorer counts "
                "the longer match (docs/lexicon-schema.md)" if not lines else
                f"{term} also occurs {hidden} time(s) inside a longer term or pattern of its "
                f"category{by}; those count for the longer match")
    if csv_ is not None:
        csv_.write_text(kwic_csv(lines), encoding="utf-8")
        err_console.print(f"wrote {len(lines)} lines to {escape(shown_path(csv_))}",
                          soft_wrap=True)
    if json_:
        print_json({"term": term, "category": category, "lexicon_term": known,
                    "lines": [asdict(ln) for ln in lines],
                    "inside_longer_matches": hidden, "longer_matches": takers})
        return
    if csv_ is None:
        _print_kwic(lines, width)
        console.print(f"{len(lines)} line(s)")
    if note:
        console.print(f"[yellow]{escape(note)}[/]", soft_wrap=True)


def _print_kwic(lines: list[Any], width: int) -> None:
    """A table when the context fits the terminal; else two lines per hit (the ids whole on
    the first, the context on the second, wrapped by the terminal), so nothing is cut."""
    if not lines:
        return
    ids = max(len(ln.doc_id) for ln in lines) + max(len(ln.date) for ln in lines) \
        + max(len(ln.category) for ln in lines)
    match = max(len(ln.match) for ln in lines)
    # Chinese characters take two cells; 16 cells of borders and padding
    if ids + 2 * (2 * width + match) + 16 <= console.width:
        table = Table("doc_id", "date", "category", "left", "match", "right", show_lines=False)
        for ln in lines:
            table.add_row(escape(ln.doc_id), ln.date, ln.category, escape(ln.left),
                          f"[bold]{escape(ln.match)}[/]", escape(ln.right))
        console.print(table)
        return
    for ln in lines:
        console.print(f"[dim]{escape(ln.doc_id)}  {ln.date}  {ln.category}[/]", soft_wrap=True)
        console.print(f"  {escape(ln.left)}[bold]【{escape(ln.match)}】[/]{escape(ln.right)}",
                      soft_wrap=True)


def _check_categories(ids: list[str], lex: Any) -> None:
    """Exit 2 for the first of ``ids`` that is no category of ``lex``."""
    known = {c.id for c in lex.categories}
    for cid in ids:
        if cid not in known:
            _no_category(cid, lex)


def _no_category(category: str, lex: Any) -> None:
    from pipeline.errors import MobilizeError

    raise MobilizeError(f"no category {category!r} in lexicon {lex.name}",
                        fix="Use one of: " + ", ".join(c.id for c in lex.categories))


@lexicon_app.command("coverage")
def coverage_cmd(
    corpus: Annotated[str, _CORPUS_OPT],
    lexicon: Annotated[Path | None, _LEXICON_OPT] = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    csv_: Annotated[Path | None, typer.Option("--csv", help="Write per-term coverage as CSV to "
                                              "this file.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Hits and documents per term and category; terms that never match; categories where
    one term carries more than half the hits.

    Example: mobilize lexicon coverage --corpus ../shared/corpora/gwr-national-zh --csv cov.csv
    """
    from pipeline.lexicon import load_lexicon
    from pipeline.validation import coverage, coverage_csv

    setup_logging(verbose)
    with reported_errors():
        lex = load_lexicon(_default_lexicon(lexicon))
        cov = coverage(_documents(corpus), lex)
    if csv_ is not None:
        csv_.write_text(coverage_csv(cov), encoding="utf-8")
        err_console.print(f"wrote {escape(shown_path(csv_))}", soft_wrap=True)
    if json_:
        print_json(cov.as_dict())
        return
    console.print(_coverage_table(cov))
    never, shadowed = cov.never_occurs, cov.shadowed
    console.print(f"{len(never) + len(shadowed)} term(s) never match: {len(never)} never occur"
                  + (" (" + escape(", ".join(f"{t.category}:{t.term}" for t in never)) + ")"
                     if never else "")
                  + f"; {len(shadowed)} occur but always inside a longer term or pattern of "
                    "their category"
                  + (" (" + escape(", ".join(f"{t.category}:{t.term} x{t.occurrences}"
                                             for t in shadowed)) + ")" if shadowed else ""),
                  soft_wrap=True)
    dominated = cov.dominated
    if dominated:
        console.print("one term carries more than half the hits of: "
                      + ", ".join(f"{c.category} ({escape(c.top_term)} {c.top_share:.0%})"
                                  for c in dominated), soft_wrap=True)


def _coverage_table(cov: Any) -> Table:
    """Per category: the full table on a wide terminal; on a narrow one (under 110 columns)
    fewer, shorter columns without vertical rules (the id says the dimension: F, P, C, D),
    so that ids and numbers stay whole and the top term keeps its room."""
    from rich import box

    wide = console.width >= 110
    if wide:
        table = Table("dimension", "category", "terms", "matched", "hits", "documents",
                      "top term", "top share")
    else:
        table = Table("category", "matched", "hits", "docs", "top term", "share",
                      box=box.SIMPLE_HEAD, pad_edge=False)
    for col in table.columns:  # ids and numbers whole; the top term wraps
        col.no_wrap = col.header != "top term"
    for c in cov.categories:
        share = f"{c.top_share:.0%}"
        share = f"[red]{share}[/]" if c.dominated else share
        if wide:
            table.add_row(c.dimension, c.category, str(c.terms), str(c.matched_terms),
                          str(c.hits), f"{c.documents}/{cov.documents}", escape(c.top_term),
                          share)
        else:
            table.add_row(c.category, f"{c.matched_terms}/{c.terms}", str(c.hits),
                          f"{c.documents}/{cov.documents}", escape(c.top_term), share)
    return table


@lexicon_app.command("sample")
def sample_cmd(
    corpus: Annotated[str, _CORPUS_OPT],
    out: Annotated[Path, typer.Option("--out", "-o", help="The coding sheet (CSV) to write.")],
    per_category: Annotated[int, typer.Option("--per-category", help="Lines per "
                                              "category.")] = 20,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same "
                                      "sheet).")] = 20240601,
    lexicon: Annotated[Path | None, _LEXICON_OPT] = None,
    periods: Annotated[Path | None, typer.Option("--periods", help="Periods YAML (default: "
                                                 "lexicons/periods.yaml if present, else "
                                                 "decades).", show_default=False)] = None,
    category: Annotated[list[str] | None, typer.Option("--category", help="Only these "
                                                       "categories (repeatable).")] = None,
    width: Annotated[int, typer.Option("--width", "-w", help="Characters of context on each "
                                       "side.")] = 30,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Write a coding sheet: KWIC lines stratified by category and period, with empty
    judgement/coder/note columns for the coder (relevant / not relevant, or 1 / 0).

    Example: mobilize lexicon sample --corpus corpora/demo --per-category 20 --seed 1 --out sheet.csv
    """
    from pipeline.config import DEFAULT_PERIODS
    from pipeline.lexicon import load_lexicon
    from pipeline.match import Matcher
    from pipeline.validation import decade, sample_sheet, write_sheet

    setup_logging(verbose)
    with reported_errors():
        lex = load_lexicon(_default_lexicon(lexicon))
        _check_categories(category or [], lex)
        period_file = periods if periods is not None else (
            DEFAULT_PERIODS if DEFAULT_PERIODS.is_file() else None)
        period = decade
        if period_file is not None:
            from pipeline.compare import load_periods, period_of

            spans = load_periods(period_file)

            def period(year: int | None) -> str:
                return period_of(year, spans) or decade(year)

        rows = sample_sheet(_documents(corpus), Matcher(lex), per_category=per_category,
                            seed=seed, period=period, width=width, categories=category)
        write_sheet(rows, out)
    per_cat: dict[str, int] = {}
    for r in rows:
        per_cat[r["category"]] = per_cat.get(r["category"], 0) + 1
    short = [c for c in (category or [c.id for c in lex.categories])
             if per_cat.get(c, 0) < per_category]
    console.print(f"wrote {len(rows)} lines in {len(per_cat)} categories to "
                  f"{escape(shown_path(out))}", soft_wrap=True)
    if short:
        console.print("[yellow]fewer lines than asked (the corpus has no more hits):[/] "
                      + ", ".join(f"{c} {per_cat.get(c, 0)}" for c in short), soft_wrap=True)


_KWIC_HELP = ("Coded KWIC sheets for precision (repeatable, pooled). A line on several sheets "
              "(two coders' copies of one sheet) counts once, with the judgement of the first "
              "sheet given that codes it: give the first coder's sheets first. Lines coded "
              "on two sheets give Cohen's kappa of the precision codes.")


@lexicon_app.command("agreement")
def agreement_cmd(
    sheet: Annotated[Path | None, typer.Argument(help="A coded KWIC sheet from `mobilize lexicon "
                                                 "sample` (precision mode).",
                                                 show_default=False)] = None,
    sheet2: Annotated[Path | None, typer.Argument(help="A second coder's sheet of the same "
                                                  "lines (for Cohen's kappa).")] = None,
    passages: Annotated[Path | None, typer.Option("--passages", help="A passages sheet from "
                                                  "`mobilize lexicon passages` (recall mode).",
                                                  show_default=False)] = None,
    codes: Annotated[list[Path] | None, typer.Option("--codes", help="A coder's codes of the "
                                                     "passages; twice for two coders (kappa).",
                                                     show_default=False)] = None,
    kwic_sheets: Annotated[list[Path] | None, typer.Option("--kwic", help=_KWIC_HELP,
                                                           show_default=False)] = None,
    lexicon: Annotated[Path | None, _LEXICON_OPT] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Recall mode: write "
                                             "measures.csv, recall.csv and missed.csv into "
                                             "this folder.", show_default=False)] = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    csv_: Annotated[Path | None, typer.Option("--csv", help="Precision mode: write the "
                                              "precision table as CSV to this file.")] = None,
    threshold: Annotated[float, typer.Option("--threshold", help="Flag terms and categories "
                                             "below this precision (or recall).")] = 0.8,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Precision, recall, F1 and coder agreement of the lexicon, from coded sheets.

    Precision mode (SHEET [SHEET2]): precision per term and category from coded KWIC
    sheets, and Cohen's kappa when two coders coded the same line_ids; each line counts
    once, with SHEET's judgement (SHEET2 adds only lines SHEET leaves uncoded).

    Recall mode (--passages, --codes): the lexicon's real matcher runs over every coded
    passage; a coded expression is found when a match of its category overlaps it. Per
    category: recall overall and per era, precision from --kwic sheets, F1, and with two
    --codes files Cohen's kappa (does the passage hold the category?) and expression
    agreement, each with n and a 95% interval. --out writes the tables and missed.csv
    (every expression the lexicon missed, for the lexicon's authors). Two coders' copies of
    a --kwic sheet are the same lines: each counts once for precision (the first sheet's
    judgement), and their codes give Cohen's kappa on precision.

    Example: mobilize lexicon agreement --passages passages-A.csv --codes codes-A-lin.csv --kwic lexicons/validation/coding-sheet-gwr-national-zh.csv --out recall-A
    """
    from pipeline.errors import MobilizeError
    from pipeline.validation import agreement, precision_csv, read_sheet

    setup_logging(verbose)
    if passages is not None or codes:
        with reported_errors():
            if sheet is not None:
                raise MobilizeError("a KWIC sheet was given as an argument in recall mode",
                                    path=sheet, fix="Give KWIC sheets with --kwic SHEET")
            if csv_ is not None:
                raise MobilizeError("--csv is for precision mode",
                                    fix="Use --out DIR for the recall tables")
            m = _measure(passages, codes, kwic_sheets, lexicon)
            if out is not None:
                from pipeline.recall import measures_csv, missed_csv, recall_csv, write_outputs

                write_outputs(out, {"measures.csv": measures_csv(m),
                                    "recall.csv": recall_csv(m), "missed.csv": missed_csv(m)})
                err_console.print(f"wrote measures.csv, recall.csv and missed.csv to "
                                  f"{escape(str(out))}")
        if json_:
            print_json(m.as_dict())
            return
        _print_measurement(m, threshold)
        return
    with reported_errors():
        if sheet is None:
            raise MobilizeError("give a coded KWIC SHEET (precision) or --passages and --codes "
                                "(recall)", fix="Example: mobilize lexicon agreement --passages "
                                "passages-A.csv --codes codes-A-lin.csv")
        if kwic_sheets or out is not None:
            raise MobilizeError("--kwic and --out are for recall mode",
                                fix="Add --passages and --codes, or drop --kwic and --out")
        first = read_sheet(sheet)
        second = read_sheet(sheet2) if sheet2 is not None else None
        result = agreement(first, second)
    if csv_ is not None:
        csv_.write_text(precision_csv(result), encoding="utf-8")
        err_console.print(f"wrote {escape(shown_path(csv_))}", soft_wrap=True)
    if json_:
        print_json(result.as_dict())
        return
    table = Table("level", "category", "term", "coded", "relevant", "precision")
    for p in result.precision:
        prec = "" if p.precision is None else f"{p.precision:.2f}"
        if p.precision is not None and p.precision < threshold:
            prec = f"[red]{prec}[/]"
        style = "bold" if p.level == "category" else ""
        table.add_row(p.level, p.category, escape(p.term), str(p.coded), str(p.relevant), prec,
                      style=style)
    console.print(table)
    overall = "n/a" if result.overall_precision is None else f"{result.overall_precision:.2f}"
    console.print(f"{result.coded} coded judgement(s) of {result.lines} line(s); overall "
                  f"precision {overall}")
    if sheet2 is not None:
        kappa = "undefined" if result.kappa is None else f"{result.kappa:.2f}"
        agree = "n/a" if result.observed_agreement is None else f"{result.observed_agreement:.2f}"
        console.print(f"{result.shared} line(s) coded by both: agreement {agree}, "
                      f"Cohen's kappa {kappa}")


def _measure(passages: Path | None, codes: list[Path] | None, kwic_sheets: list[Path] | None,
             lexicon: Path | None) -> Any:
    """Read the sheets and measure (recall mode of `agreement`, and `card`)."""
    from pipeline.errors import MobilizeError
    from pipeline.lexicon import load_lexicon
    from pipeline.match import Matcher
    from pipeline.recall import (
        is_still_counted,
        measure,
        pool_kwic,
        read_codes,
        read_kwic,
        read_passages,
        still_counted,
    )

    if passages is None:
        raise MobilizeError("--codes needs the passages sheet they code",
                            fix="Add --passages passages-A.csv")
    if not codes:
        raise MobilizeError("no --codes file given",
                            fix="Add --codes CODES (a coder's codes of the passages)")
    lex = load_lexicon(_default_lexicon(lexicon))
    sheet = read_passages(passages)
    cats = [c.id for c in lex.categories]
    coded = [read_codes(c, sheet, cats) for c in codes]
    pool = pool_kwic(read_kwic(k) for k in kwic_sheets or [])
    lines = pool.lines
    matcher = Matcher(lex)
    judgements = still_counted(lines, matcher)
    pairs = [(a.judgement, b.judgement) for a, b in pool.pairs if is_still_counted(a, matcher)]
    dropped = sum(ln.judgement.relevant is not None for ln in lines) \
        - sum(j.relevant is not None for j in judgements)
    if dropped:
        err_console.print(f"{dropped} judged KWIC line(s) left out of precision: lexicon "
                          f"{escape(lex.name)} {escape(lex.version)} no longer counts them")
    return measure(sheet, coded, lex, kwic=judgements, matcher=matcher, kwic_pairs=pairs)


def _ci(e: Any) -> str:
    """A measure as three short lines (value, interval, n), so that tables fit 80 columns."""
    if e is None:
        return ""
    if e.value is None:
        agree = f", {e.count} agree" if e.count is not None and e.n else ""
        return f"n/a\nn={e.n}{agree}"
    if e.low is None or e.high is None:  # (a kappa where the coders never disagree)
        return f"{e.value:.2f}\nno interval\nn={e.n}"
    return f"{e.value:.2f}\n[{e.low:.2f}-{e.high:.2f}]\nn={e.n}"


def _measure_table(first: str, cols: list[str], ids: list[str], title: str) -> Table:
    """A table whose first column holds category ids: never cut (users type them)."""
    from rich import box

    table = Table(first, *cols, title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.columns[0].no_wrap = True
    table.columns[0].min_width = max((len(i) for i in ids), default=8)
    return table


def _print_measurement(m: Any, threshold: float) -> None:
    two = len(m.coders) == 2
    ids = [c.category for c in m.categories]
    table = _measure_table("category", ["precision", "recall", "F1"], ids,
                           f"{escape(m.lexicon)}: 95% intervals")
    for c in m.categories:
        rec = _ci(c.recall)
        if c.recall.value is not None and c.recall.value < threshold:
            rec = f"[red]{rec}[/]"
        table.add_row(c.category, _ci(c.precision), rec, _ci(c.f1))
    table.add_row("all", _ci(m.overall_precision), _ci(m.overall_recall), _ci(m.overall_f1),
                  style="bold")
    console.print(table)
    if two:
        agree = _measure_table("category", ["kappa", "expr. agreement"], ids,
                               f"agreement of {escape(m.coders[0])} and {escape(m.coders[1])}")
        for c in m.categories:
            agree.add_row(c.category, _ci(c.kappa), _ci(c.expression_agreement))
        console.print(agree)
    if m.kwic_shared:
        pk = _measure_table("category", ["kappa"], ids,
                            f"precision codes of the {m.kwic_shared} KWIC line(s) coded twice")
        for c in m.categories:
            pk.add_row(c.category, _ci(c.precision_kappa))
        pk.add_row("all", _ci(m.precision_kappa), style="bold")
        console.print(pk)
    eras = _measure_table("category", list(m.eras), ids, "recall per era")
    for c in m.categories:
        eras.add_row(c.category, *(_ci(c.recall_by_era[e]) for e in m.eras))
    eras.add_row("all", *(_ci(m.overall_recall_by_era[e]) for e in m.eras), style="bold")
    console.print(eras)
    console.print(f"{m.coded} of {m.passages} passage(s) coded by {escape(m.coders[0])}"
                  + (f"; {m.shared} coded by both" if two else "")
                  + f"; {m.kwic_lines} KWIC judgement(s)"
                  + (f" ({m.kwic_shared} coded twice)" if m.kwic_shared else "")
                  + f"; {len(m.missed)} missed expression(s)"
                  + (" (see missed.csv with --out)" if m.missed else ""), soft_wrap=True)


@lexicon_app.command("passages")
def passages_cmd(
    corpus: Annotated[list[str], typer.Option("--corpus", "-c", help="Corpus folder or "
                                              "registered name; repeat for several corpora.")],
    per_era: Annotated[int, typer.Option("--per-era", help="Paragraphs per era, shared "
                                         "equally among the corpora.")] = 60,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same "
                                      "sheet).")] = 1,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The passages sheet (CSV) to "
                                             "write (default: stdout).",
                                             show_default=False)] = None,
    exclude: Annotated[list[Path] | None, typer.Option("--exclude", help="An earlier passages "
                                                       "sheet whose paragraphs must not be "
                                                       "drawn again (repeatable).",
                                                       show_default=False)] = None,
    eras: Annotated[str, typer.Option("--eras", help="First year of each new era: 1992,2013 "
                                      "gives pre-1992, 1992-2012, 2013-.")] = "1992,2013",
    set_name: Annotated[str | None, typer.Option("--set", help="The sheet's letter, the prefix "
                                                 "of its passage ids (default: A, or the letter "
                                                 "after the --exclude sheets').",
                                                 show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Draw whole paragraphs for recall coding: stratified by era and by corpus, with no
    lexicon matches shown (the coder marks every expression of each category unprompted).

    Paragraphs of 40-600 characters of the normalised text (what the matcher sees), an
    equal share per corpus within each era (a corpus short of paragraphs gives what it has,
    the others the rest). --exclude keeps earlier sheets' paragraphs out (fresh test sets).
    Code the sheet as docs/validation.md says, then run `mobilize lexicon agreement`.

    Example: mobilize lexicon passages --corpus ../shared/corpora/gwr-national-zh --corpus ../shared/corpora/social-security-policy-zh --per-era 60 --seed 3 --exclude passages-A.csv --out passages-C.csv
    """
    from pipeline.errors import MobilizeError
    from pipeline.recall import (
        draw_passages,
        eras_from_breaks,
        paragraph_pool,
        parse_breaks,
        passage_rows,
        passages_csv,
        read_passages,
        write_outputs,
    )
    from pipeline.registry import resolve_corpus

    setup_logging(verbose)
    with reported_errors():
        spans = eras_from_breaks(parse_breaks(eras))
        skip: set[tuple[str, str, int]] = set()
        skip_text: set[str] = set()
        letters: set[str] = set()
        for sheet in exclude or []:
            for p in read_passages(sheet):
                if p.line is not None:
                    skip.add((p.corpus, p.doc_id, p.line))
                skip_text.add(p.text)
                letters.add(p.passage_id[:1].upper())
        if set_name is None:
            set_name = next((ch for ch in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if ch not in letters),
                            "Z")
        if not set_name or not set_name.isalnum():
            raise MobilizeError(f"--set {set_name!r} is not a letter or name",
                                fix="Give a letter, e.g. --set C")
        pool = []
        for c in corpus:
            folder, _name = resolve_corpus(c)
            docs = _documents(str(folder))
            pool += paragraph_pool(docs, folder.name, spans, root=folder)
        drawn = draw_passages(pool, per_era=per_era, seed=seed, eras=spans, exclude=skip,
                              exclude_texts=skip_text)
        text = passages_csv(passage_rows(drawn, set_name))
        if out is not None:
            write_outputs(out.parent, {out.name: text})
    if out is None:
        sys.stdout.write(text)
        return
    per = {e.name: sum(p.era == e.name for p in drawn) for e in spans}
    short = [f"{e} {n}" for e, n in per.items() if n < per_era]
    console.print(f"wrote {len(drawn)} passages (" + ", ".join(f"{e} {n}" for e, n in per.items())
                  + f") to {escape(str(out))}", soft_wrap=True)
    if short:
        console.print("[yellow]fewer passages than asked (the corpora have no more "
                      "paragraphs):[/] " + ", ".join(short), soft_wrap=True)


@lexicon_app.command("card")
def card_cmd(
    passages: Annotated[Path, typer.Option("--passages", help="The coded passages sheet.")],
    codes: Annotated[list[Path], typer.Option("--codes", help="A coder's codes; twice for two "
                                              "coders (kappa).")],
    kwic_sheets: Annotated[list[Path] | None, typer.Option("--kwic", help=_KWIC_HELP,
                                                           show_default=False)] = None,
    lexicon: Annotated[Path | None, _LEXICON_OPT] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="The card (Markdown) to "
                                             "write (default: stdout).",
                                             show_default=False)] = None,
    date: Annotated[str | None, typer.Option("--date", help="The card's date, YYYY-MM-DD "
                                             "(default: today, UTC).",
                                             show_default=False)] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the card as JSON "
                                                  "(schema mobilize.card/1); the report shows "
                                                  "lexicons/NAME.card.json beside NAME.yaml.",
                                                  show_default=False)] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Write the measurement card (Markdown): for the lexicon version used, precision,
    recall and F1 per category with n and 95% intervals, recall per era, kappa with two
    coders, the corpora coded and the date. A KWIC line on two --kwic sheets (two coders'
    copies) counts once, with the first sheet's judgement; the card gives the kappa of their
    precision codes. With --json, also the same card as JSON: saved
    beside the lexicon as lexicons/mobilize.card.json, the report's methods appendix shows it
    for runs with that lexicon's hash.

    Example: mobilize lexicon card --passages passages-A.csv --codes codes-A-lin.csv --kwic lexicons/validation/coding-sheet-gwr-national-zh.csv --out card.md --json lexicons/mobilize.card.json
    """
    import datetime as dt
    import re

    from pipeline.errors import MobilizeError
    from pipeline.recall import card_json, card_markdown, write_outputs

    setup_logging(verbose)
    with reported_errors():
        if date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
            raise MobilizeError(f"--date {date!r} is not YYYY-MM-DD", fix="e.g. --date 2026-12-03")
        when = date or dt.datetime.now(dt.UTC).date().isoformat()
        m = _measure(passages, codes, kwic_sheets, lexicon)
        sources = {"passages sheet": passages.name,
                   "codes": ", ".join(c.name for c in codes),
                   "KWIC sheets": ", ".join(k.name for k in kwic_sheets or []) or "none"}
        text = card_markdown(m, date=when, sources=sources)
        if json_out is not None:
            name, _, version = m.lexicon.rpartition(" ")  # Measurement.lexicon: "name version"
            data = card_json(m, name=name, version=version, date=when, sources={
                "passages": [_project_name(passages)],
                "codes": [_project_name(c) for c in codes],
                "kwic": [_project_name(k) for k in kwic_sheets or []]})
            write_outputs(json_out.parent, {json_out.name: data})
        if out is not None:
            write_outputs(out.parent, {out.name: text})
    if out is None:
        sys.stdout.write(text)
    else:
        err_console.print(f"wrote {escape(str(out))}")
    if json_out is not None:
        err_console.print(f"wrote {escape(str(json_out))}")


def _project_name(path: Path) -> str:
    """``path`` relative to the current folder (the project) when it lies inside it, else
    its bare name: a card never records an absolute local path."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.name


@lexicon_app.command("misses")
def misses_cmd(
    corpus: Annotated[list[str], typer.Option("--corpus", "-c", help="Corpus folder or "
                                              "registered name; repeat for several corpora.")],
    category: Annotated[list[str] | None, typer.Option("--category", help="Only these "
                                                       "categories (repeatable; default: "
                                                       "all).", show_default=False)] = None,
    top: Annotated[int, typer.Option("--top", "-n", help="Unmatched sentences listed per "
                                     "category.")] = 50,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the model and the folds (same "
                                      "seed, same sheet).")] = 20240601,
    lexicon: Annotated[Path | None, _LEXICON_OPT] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="The sheet to write; the candidate "
                                      "n-grams go to <name>-candidates.csv beside it.")
                   ] = Path("lexicon-misses.csv"),
    suggestions: Annotated[Path | None, typer.Option("--suggestions", help="A review file of "
                                                     "`mobilize lexicon suggest`: count the "
                                                     "candidate n-grams it does not have.",
                                                     show_default=False)] = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable summary.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=VERBOSE_HELP)] = False,
) -> None:
    """Sentences the lexicon misses: a classifier per category (character n-grams, linear
    model, cross-fitted, seeded) learns the sentences the lexicon matches, with the matched
    terms masked out, and ranks the sentences no term matched; each listed with the n-grams
    that drove its score. The keyword step (King, Lam and Roberts 2017) lists the n-grams
    that set those sentences apart as candidate terms.

    Write a phrase in `term` and mark `accept` = yes on a row of the sheet, then
    `mobilize lexicon accept SHEET` adds it to a new lexicon version.

    Example: mobilize lexicon misses --corpus ../shared/corpora/gwr-national-zh --category P3_co_governance --top 30 --out misses.csv
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from pipeline.lexicon import load_lexicon
    from pipeline.misses import candidates_csv, compare_with_word2vec, find_misses, sheet_csv
    from pipeline.recall import write_outputs
    from pipeline.registry import resolve_corpus

    setup_logging(verbose)
    with reported_errors():
        lex = load_lexicon(_default_lexicon(lexicon))
        _check_categories(category or [], lex)
        suggested = _suggested_terms(suggestions) if suggestions is not None else None
        docs = []
        for c in corpus:
            folder, _name = resolve_corpus(c)
            docs += [(folder.name, d) for d in _documents(str(folder))]
        wanted = category or [c.id for c in lex.categories]
        with Progress(TextColumn("training {task.description}"), BarColumn(),
                      MofNCompleteColumn(), console=err_console, transient=True,
                      disable=not err_console.is_terminal) as progress:
            task = progress.add_task("classifiers", total=len(wanted))
            result = find_misses(docs, lex, categories=wanted, top=top, seed=seed,
                                 on_category=lambda _c: progress.advance(task))
        cand_name = f"{out.stem}-candidates.csv"
        write_outputs(out.parent, {out.name: sheet_csv(result),
                                   cand_name: candidates_csv(result, lex, suggested)})
        comparison = (compare_with_word2vec(result, lex, suggested)
                      if suggested is not None else None)
    summary: dict[str, Any] = {
        "corpora": list(result.corpora), "sentences": result.sentences,
        "features": result.features, "params": result.params,
        "categories": [{"category": c.category, "matched_sentences": c.positives,
                        "listed": len(c.findings), "candidates": len(c.candidates),
                        "learned": [g for g, _w in c.learned[:10]]}
                       for c in result.categories]}
    if comparison is not None:
        summary["word2vec"] = [{"category": x.category, "suggestions": x.suggestions,
                                "compared": x.compared, "not_in_word2vec": x.not_in_word2vec}
                               for x in comparison]
    if json_:
        print_json(summary)
        return
    table = Table("category", "matched sentences", "listed", "top candidate n-grams")
    for c in result.categories:
        table.add_row(c.category, str(c.positives), str(len(c.findings)),
                      escape(" ".join(g for g, _n, _r in c.candidates[:8])))
    console.print(table)
    few = [c.category for c in result.categories if not c.findings]
    if few:
        console.print("[yellow]too few matched (or unmatched) sentences to train a model:[/] "
                      + ", ".join(few), soft_wrap=True)
    if comparison is not None and suggestions is not None:
        compared = sum(x.compared for x in comparison)
        beyond = sum(x.not_in_word2vec for x in comparison)
        console.print(f"{beyond} of {compared} candidate n-grams (per category as many as "
                      f"{escape(suggestions.name)} has suggestions, none part of a lexicon "
                      "term) match no Word2Vec suggestion of their category", soft_wrap=True)
    console.print(f"wrote {sum(len(c.findings) for c in result.categories)} sentences to "
                  f"{escape(str(out))} and the candidates to {escape(cand_name)}", soft_wrap=True)


def _suggested_terms(review: Path) -> dict[str, list[str]]:
    """category -> the terms of a `lexicon suggest` review file (CSV or YAML)."""
    from pipeline.discover import read_review

    out: dict[str, list[str]] = {}
    for row in read_review(review):
        cat, term = row.get("category", "").strip(), row.get("term", "").strip()
        if cat and term:
            out.setdefault(cat, []).append(term)
    return out
