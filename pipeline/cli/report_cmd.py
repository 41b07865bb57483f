"""``mobilize report`` (regenerate a run's report) and ``mobilize compare`` (two groups)."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape

from pipeline.cli._apps import app
from pipeline.cli._common import (
    DEFAULT_LEXICON_SHOWN,
    DEFAULT_OUT_SHOWN,
    DEFAULT_PERIODS_SHOWN,
    VERBOSE_HELP,
    console,
    err_console,
    print_json,
    reported_errors,
    setup_logging,
    shown_path,
)
from pipeline.config import (
    DEFAULT_LEXICON,
    DEFAULT_OUT,
    DEFAULT_PERIODS,
    DEFAULT_SEGMENTER,
    Settings,
)
from pipeline.errors import MobilizeError


def _corpus_name(corpus: str) -> str:
    try:
        from pipeline.registry import resolve_corpus
    except ImportError:  # pragma: no cover - the registry is optional
        return Path(corpus).name
    try:
        return resolve_corpus(corpus)[1]
    except MobilizeError:
        return Path(corpus).name  # a run folder may outlive its corpus folder


def _check_run_folder(run: Path) -> None:
    """The report writes into ``run``: it must be a run folder mobilize wrote."""
    from pipeline import store

    if not run.is_dir():
        raise MobilizeError("not a run folder: there is no such folder", path=run,
                            fix="Run `mobilize run --corpus PATH --out DIR` first, and give "
                                "--run DIR/<corpus name>.")
    if not store.is_run_folder(run):
        raise MobilizeError("not a mobilize run folder (no run.json written by `mobilize run`); "
                            "the report writes files into it, so nothing was written", path=run,
                            fix="Give --run the folder a run wrote: OUT/<corpus name>.")


@app.command("report")
def report(
    corpus: str = typer.Option(None, "--corpus", "-c",
                               help="Corpus folder or registered name; its run is OUT/<name>/."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", show_default=DEFAULT_OUT_SHOWN,
                             help="The output folder given to `mobilize run`."),
    run: Path = typer.Option(None, "--run", help="A run folder (instead of --corpus/--out)."),
    periods: Path = typer.Option(DEFAULT_PERIODS, "--periods", "-p", show_default=DEFAULT_PERIODS_SHOWN,
                                 help="Periods file (YAML list of {name, start, end})."),
    lexicon: Path = typer.Option(DEFAULT_LEXICON, "--lexicon", "-l", show_default=DEFAULT_LEXICON_SHOWN,
                                 help="Lexicon for labels, KWIC and coverage, when run.json's "
                                      "lexicon path is gone."),
    discover: bool = typer.Option(False, "--discover/--no-discover",
                                  help="Add discovery (topics, candidate gaps) to the report; "
                                       "slow (tens of seconds), off by default."),
    wait: float = typer.Option(0.0, "--wait", min=0.0,
                               help="Seconds to wait for a run writing the same run folder."),
    as_json: bool = typer.Option(False, "--json", help="Print the written files as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Regenerate report.html, report.md, figures/ and tables/ from an existing run folder.

    The end of every `mobilize run` writes the same report; use this after changing the
    periods file, or to rebuild a report. Nothing is re-scored. The folder must be a run
    folder mobilize wrote (its run.json); the report holds the run folder's lock, so it never
    mixes with a run writing the same folder (exit 3, or --wait SECONDS). The new report is
    written beside the folder and swapped in at the end: a failed or interrupted report
    leaves the earlier one intact.

    Example: mobilize report --corpus ../shared/corpora/gwr-national-zh --out reports --discover
    """
    setup_logging(verbose)
    with reported_errors():
        if run is None:
            if corpus is None:
                raise MobilizeError("say which run to report on",
                                    fix="Give --corpus NAME_OR_PATH (with --out), or --run DIR.")
            run = Path(out) / _corpus_name(corpus)
        from pipeline import store
        from pipeline.report import REPORT_OUTPUTS, write_report

        run = Path(os.path.abspath(run))  # (so that `--run .` has a parent and a name)
        if run.is_symlink():  # the folder it points to is rewritten; the link stays
            run = run.resolve()
        _check_run_folder(run)
        settings = Settings(out=Path(out), lexicon=lexicon, periods=periods, verbose=verbose,
                            discover=discover)
        with store.run_lock(run.parent, run.name, wait), \
                _status("building the report") as phase:
            _check_run_folder(run)  # (a run may have replaced it while we waited)
            try:
                # written into a copy of the run folder (tables linked, not copied) that
                # replaces it at the end: a failed or killed report leaves the earlier one
                with store.rewrite_dir(run.parent, run.name, drop=REPORT_OUTPUTS) as tmp:
                    written = write_report(
                        tmp, settings, phase=lambda step: phase(f"building the report: {step}"))
            except OSError as exc:  # a full disk, a read-only run folder
                raise MobilizeError(
                    f"cannot write the report ({exc.strerror or exc}); the run folder is "
                    "unchanged (its earlier report included)", path=run,
                    fix="Free space on that disk (or make the folder and the one above it "
                        "writable) and run `mobilize report` again.") from None
            written = [run / p.relative_to(tmp) for p in written]
    if as_json:
        print_json({"run_dir": str(run), "files": [str(p) for p in written]})
    else:
        console.print(f"{len(written)} files written; open "
                      f"{escape(shown_path(Path(run) / 'report.html'))}", soft_wrap=True)


@contextmanager
def _status(first: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr naming the phase (on a terminal only); yields the function that
    names the next phase. (These commands do not fork: rich's refresh thread may run.)"""
    if not err_console.is_terminal:
        yield lambda _name: None
        return
    with err_console.status(escape(first), spinner="dots") as status:
        yield lambda name: status.update(escape(name))


@app.command("compare")
def compare_cmd(
    corpus: list[str] = typer.Option(None, "--corpus", "-c",
                                     help="Corpus folder or name; repeat for two corpora. Runs "
                                          "the engine (local, cached) into OUT/compare/runs/."),
    run: list[Path] = typer.Option(None, "--run",
                                   help="An existing run folder (repeatable); no engine run."),
    by: str = typer.Option(None, "--by",
                           help="Column to split by: year, period, level, region, doc_type, "
                                "issuer, corpus (default: corpus with two sources)."),
    a: str = typer.Option(None, "--a", help="Group A (default: the latest year or period)."),
    b: str = typer.Option(None, "--b", help="Group B (default: the one before A)."),
    years: str = typer.Option(None, "--years",
                              help="Keep only documents of these years, FIRST-LAST (e.g. "
                                   "2025-2026)."),
    scope: str = typer.Option("all", "--scope",
                              help="all, domain_sentences, domain_paragraphs or domain_window "
                                   "(with all, the domain_window results are shown beside)."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", "-o", show_default=DEFAULT_OUT_SHOWN,
                             help="Writes OUT/compare/<by>-<a>-vs-<b>/."),
    periods: Path = typer.Option(DEFAULT_PERIODS, "--periods", "-p",
                                 show_default=DEFAULT_PERIODS_SHOWN, help="Periods file."),
    lexicon: Path = typer.Option(DEFAULT_LEXICON, "--lexicon", "-l",
                                 show_default=DEFAULT_LEXICON_SHOWN, help="Lexicon YAML file."),
    segmenter: str = typer.Option(DEFAULT_SEGMENTER, "--segmenter",
                                   help="jieba-rs or jieba."),
    top: int = typer.Option(10, "--top", min=1, help="Keyness terms to print each way."),
    as_json: bool = typer.Option(False, "--json", help="Print the differences as JSON."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help=VERBOSE_HELP),
) -> None:
    """Compare two groups: two years, two periods, two regions or levels, or two corpora.

    Rate differences per category with bootstrap CIs, and the terms that drive them
    (log-odds keyness with an informative Dirichlet prior), printed and written as CSV, XLSX,
    Markdown and a forest plot.

    Example: mobilize compare -c ../shared/corpora/gwr-provincial-zh --by year --a 2026 --b 2025
    """
    setup_logging(verbose)
    with reported_errors():
        if segmenter not in ("jieba", "jieba-rs"):
            raise MobilizeError(f"unknown segmenter {segmenter!r}",
                                fix="Use --segmenter jieba or jieba-rs.")
        from pipeline import compare, report

        from pipeline import store
        from pipeline.registry import resolve_corpus

        resolved = [resolve_corpus(c) for c in corpus or []]  # (names: as `mobilize run`)
        roots = [root for root, _name in resolved]
        settings = Settings(out=Path(out), lexicon=lexicon, periods=periods,
                            segmenter=segmenter,  # type: ignore[arg-type]
                            verbose=verbose, progress=False)
        with _status("reading the runs") as phase:
            tables = _load_runs(
                roots, list(run or []), settings, names=[name for _root, name in resolved],
                progress=lambda name: phase(f"ingesting and scoring {name} (local engine, "
                                            "cached)"))
            phase("comparing the groups (bootstrap intervals, keyness)")
            group = by or ("corpus" if len(roots) + len(run or []) > 1 else None)
            if group is None:
                raise MobilizeError("one source and no --by: nothing to compare",
                                    fix="Add --by year|period|level|region|doc_type, or a second "
                                        "--corpus.")
            if group == "corpus" and a is None and b is None:
                names = list(dict.fromkeys(tables.documents["corpus"]))
                a, b = names[0], names[-1]
            plist = compare.load_periods(periods) if periods else []
            result = compare.compare_groups(tables, group, a, b, periods=plist, scope=scope,
                                            seed=settings.seed, years=_years(years))
            side = None  # whole text beside the social-security scope (docs/report.md)
            if scope == "all" and compare.SS_SCOPE in set(tables.scores["scope"]):
                ss = compare.compare_groups(tables, group, result.a, result.b, periods=plist,
                                            scope=compare.SS_SCOPE, seed=settings.seed,
                                            years=_years(years))
                side = compare.differences_side_by_side(result.differences, ss.differences)
            phase("writing the comparison (tables, figure)")
            folder = _write_comparison(result, Path(out) / store.COMPARE_DIR, roots, top, side,
                                       tables=tables, settings=settings)
    if as_json:
        print_json({"by": result.by, "a": result.a, "b": result.b, "scope": result.scope,
                    "years": list(result.years) if result.years else None,
                    "folder": str(folder),
                    "differences": result.differences.to_dict(orient="records"),
                    "differences_whole_vs_ss": None if side is None
                    else side.to_dict(orient="records")})
        return
    _print_comparison(result, folder, top, side)


def _load_runs(corpora: list[Path], runs: list[Path], settings: Settings,
               names: list[str] | None = None,
               progress: Callable[[str], None] | None = None) -> object:
    """The run tables to compare: existing run folders (``runs``), and for each corpus
    folder a local engine run (cached, no report) into ``<settings.out>/compare/runs/<name>``
    (``names``: the corpus names, as ``registry.resolve_corpus`` gives them; default the
    folder names). Several runs are combined (doc ids prefixed with the corpus name). The
    engine runs here, before the comparison and its report: the report never runs the engine."""
    from pipeline import compare, engine, store

    tables = [compare.read_run(Path(r)) for r in runs]
    for i, root in enumerate(corpora):
        root = Path(root).resolve()
        name = names[i] if names is not None else root.name
        if progress:
            progress(name)
        s = settings.with_(corpus=root, corpus_name=name,
                           out=Path(settings.out) / store.COMPARE_DIR / "runs", engine="local",
                           report=False)
        result = engine.run_local(s)
        tables.append(compare.read_run(result.run_dir))
    if not tables:
        raise MobilizeError("nothing to compare", fix="Give --corpus PATH or --run DIR "
                                                      "(once for a split by a column, "
                                                      "twice for two corpora).")
    return compare.combine_runs(tables)



_COMPARISON = "mobilize comparison folder"


def _write_comparison(result: object, compare_out: Path, roots: list[Path], top: int,
                      side: object = None, *, tables: object = None,
                      settings: Settings | None = None) -> Path:
    """Write the comparison into ``compare_out/<label>/``: atomically, under its lock, and only
    over a comparison folder mobilize wrote (marked by comparison.json)."""
    from pipeline import report, store

    label = result.label  # type: ignore[attr-defined]
    for root in roots:
        store.check_output_name(compare_out, label, corpus=root,
                                owned=store.is_comparison_folder, what=_COMPARISON)
    with store.run_lock(compare_out, label), \
            store.atomic_dir(compare_out, label, owned=store.is_comparison_folder,
                             what=_COMPARISON) as tmp:
        report.write_comparison(result, tmp, top=top)  # type: ignore[arg-type]
        if side is not None:
            store.write_csv(side, tmp / "differences_whole_vs_ss.csv")  # type: ignore[arg-type]
        if tables is not None and settings is not None:
            from pipeline.explore import write_explorer

            write_explorer(tmp, settings, run=tables)  # type: ignore[arg-type]
        r = result
        store.write_json(tmp / store.COMPARE_MARKER, {
            "schema": store.COMPARE_SCHEMA, "by": r.by, "a": r.a, "b": r.b,  # type: ignore[attr-defined]
            "scope": r.scope,  # type: ignore[attr-defined]
            "years": list(r.years) if r.years else None})  # type: ignore[attr-defined]
    return compare_out / label


def _print_side(side: object, *, descriptive: bool) -> None:
    """The comparison inside social-security passages, beside the whole-text table (a table of
    its own, so both fit 80 columns). D there is circular and left out."""
    from rich.table import Table

    st = Table(title="the same inside social-security passages (scope domain_window: sentences "
                     "with a D_social_security term and their neighbours)")
    for col in ("category", "A (SS)", "B (SS)", "A − B (SS)", "95% CI (SS)"):
        st.add_column(col, justify="left" if col == "category" else "right",
                      no_wrap=col == "category")
    for x in side.itertuples():  # type: ignore[attr-defined]
        if x.circular:
            st.add_row(x.category, "circular", "", "", "")
            continue
        if math.isnan(x.rate_a_ss):
            st.add_row(x.category, "", "", "", "")
            continue
        ci = ("" if descriptive or math.isnan(x.ci_low_ss)
              else f"[{x.ci_low_ss:+.2f}, {x.ci_high_ss:+.2f}]")
        st.add_row(x.category, f"{x.rate_a_ss:.2f}", f"{x.rate_b_ss:.2f}",
                   f"{x.difference_ss:+.2f}", ci)
    console.print(st)
    console.print("D inside its own passages is circular (left out). Table: "
                  "differences_whole_vs_ss.csv", highlight=False)


def _years(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    first, _, last = text.partition("-")
    try:
        span = (int(first), int(last or first))
    except ValueError:
        raise MobilizeError(f"--years {text!r} is not FIRST-LAST",
                            fix="Write e.g. --years 2025-2026 (or --years 2025).") from None
    if span[0] > span[1]:
        raise MobilizeError(f"--years {text!r} ends before it starts", fix="Swap the years.")
    return span


def _print_comparison(result: object, folder: Path, top: int, side: object = None) -> None:
    from rich.table import Table

    r = result  # compare.Comparison
    d = r.differences  # type: ignore[attr-defined]
    span = f", years {r.years[0]}-{r.years[1]}" if r.years else ""  # type: ignore[attr-defined]
    if len(d):
        first = d.iloc[0]
        def size(n: int, tokens: int) -> str:
            return f"{n} document{'' if n == 1 else 's'}, {tokens:,} tokens"

        console.print(f"A = {r.a}: {size(int(first['docs_a']), int(first['tokens_a']))};  "  # type: ignore[attr-defined]
                      f"B = {r.b}: {size(int(first['docs_b']), int(first['tokens_b']))}",  # type: ignore[attr-defined]
                      highlight=False)
    note = str(d["inference"].iloc[0]) if len(d) else ""
    from rich import box

    narrow = ({"box": box.SIMPLE_HEAD, "pad_edge": False, "padding": (0, 1, 0, 0)}
              if console.width < 110 else {})
    t = Table(title=f"{r.by}: A = {r.a}  vs  B = {r.b}  (per 10k tokens, scope {r.scope}{span})",  # type: ignore[attr-defined]
              **narrow)
    # A descriptive-only comparison has no interval, p-value or star: no empty columns for them.
    cols = ("category", "A", "B", "A − B", "A / B") if note else \
        ("category", "A", "B", "A − B", "95% CI", "A / B", "p (BH)")
    for col in cols:
        # ids are never cut (users type them); numbers stay whole; an interval wraps at its space
        t.add_column(col, justify="left" if col == "category" else "right",
                     no_wrap=col != "95% CI", overflow="fold",
                     min_width=max((len(c) for c in d["category"]), default=8)
                     if col == "category" else 8 if col == "95% CI" else None)
    for row in d.itertuples():
        ci = "" if math.isnan(row.ci_low) else f"[{row.ci_low:+.2f}, {row.ci_high:+.2f}]"
        ratio = "" if math.isnan(row.ratio) else f"{row.ratio:.2f}"
        p = "" if math.isnan(row.p_adjusted) else f"{row.p_adjusted:.1e}"
        star = " *" if str(row.significant) == "True" else ""  # (NA: descriptive only)
        cells = [row.category, f"{row.rate_a:.2f}", f"{row.rate_b:.2f}", f"{row.difference:+.2f}"]
        t.add_row(*(cells + [ratio] if note else cells + [ci, ratio, p + star]))
    console.print(t)
    if note:
        console.print(f"[bold]{note[:1].upper() + note[1:]}[/bold]: no interval, p-value or "
                      "star; read the rates as a description of these documents.",
                      highlight=False)
    for w in getattr(r, "warnings", ()):
        console.print(f"[yellow]warning:[/yellow] {w}", highlight=False)
    if side is not None:
        _print_side(side, descriptive=bool(note))
    key = r.keyness[r.keyness["within"] == "all"]  # type: ignore[attr-defined]
    kt = Table(title="terms driving the difference (log-odds z; + = typical of A)")
    kt.add_column("typical of A")
    kt.add_column("z", justify="right")
    kt.add_column("typical of B")
    kt.add_column("z", justify="right")
    head, tail = key.head(top), key.tail(top).iloc[::-1]
    for (_, x), (_, y) in zip(head.iterrows(), tail.iterrows()):
        kt.add_row(str(x["term"]), f"{x['z']:+.2f}", str(y["term"]), f"{y['z']:+.2f}")
    console.print(kt)
    if not note:
        console.print("* the rate ratio's Benjamini-Hochberg adjusted p (count model) is "
                      "below 0.05.")
    console.print(f"Tables and figure: {escape(shown_path(folder))}", soft_wrap=True)


__all__ = ["compare_cmd", "report"]
