"""The machine-readable measurement card (``mobilize lexicon card --json``) and the report's
methods appendix that shows it: the same numbers as the Markdown card, shown only for the
lexicon hash it measures, and a plain note (never a traceback) otherwise."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from pipeline.config import Settings
from pipeline.lexicon import load_lexicon
from pipeline.recall import (
    CARD_SCHEMA,
    card_for_run,
    card_json,
    card_markdown,
    card_path,
    card_rows,
    measure,
    read_card,
)
from tests.conftest import shared_corpus
from tests.test_recall import CODE_HEADER, CODES_1, CODES_2, KWIC, SMALL, _cli, _sheet, _write


@pytest.fixture
def measured(tmp_path: Path):  # type: ignore[no-untyped-def]
    from pipeline.recall import read_codes, read_passages

    lexicon = load_lexicon(SMALL)
    passages = read_passages(_sheet(tmp_path))
    cats = [c.id for c in lexicon.categories]
    one = read_codes(_write(tmp_path / "codes-P-one.csv", CODE_HEADER, CODES_1), passages, cats)
    two = read_codes(_write(tmp_path / "codes-P-two.csv", CODE_HEADER, CODES_2), passages, cats)
    return lexicon, measure(passages, [one, two], lexicon, kwic=KWIC)


SOURCES = {"passages": ["passages-P.csv"], "codes": ["codes-P-one.csv", "codes-P-two.csv"],
           "kwic": []}


def _md_rows(md: str) -> list[list[str]]:
    lines = [ln for ln in md.splitlines() if ln.startswith("| ")]
    return [[c.strip().replace("\\", "") for c in re.split(r"(?<!\\)\|", ln)[1:-1]]
            for ln in lines if not ln.startswith("| ---")]


def test_the_json_card_holds_the_numbers_of_the_markdown_card(measured) -> None:  # type: ignore[no-untyped-def]
    lexicon, m = measured
    text = card_json(m, name="small", version="0.2.0", date="2026-12-03", sources=SOURCES)
    doc = json.loads(text)
    assert doc["schema"] == CARD_SCHEMA == "mobilize.card/1"
    assert doc["lexicon"] == {"name": "small", "version": "0.2.0", "hash": lexicon.hash}
    assert len(doc["lexicon"]["hash"]) == 64
    assert (doc["date"], doc["corpora"], doc["coders"]) == (
        "2026-12-03", ["test"], ["codes-P-one", "codes-P-two"])
    assert (doc["passages"], doc["passages_coded"], doc["passages_coded_by_both"],
            doc["kwic_lines"]) == (5, 5, 5, 7)
    assert doc["sources"] == SOURCES
    # the same table as the Markdown card, cell for cell
    md = _md_rows(card_markdown(m, date="2026-12-03", sources={"codes": "x"}))
    assert md[0] == doc["columns"]
    assert md[1:] == [[r[c] for c in doc["columns"]] for r in doc["rows"]]
    assert "recall 1992-2012" in doc["columns"] and "kappa" in doc["columns"]
    # and the numbers behind the cells: overall recall 7 of 10, F1's recall 1 of 2
    est = doc["estimates"]
    assert (est["overall_recall"]["count"], est["overall_recall"]["n"]) == (7, 10)
    f1 = next(c for c in est["categories"] if c["category"] == "F1_population")
    assert (f1["recall"]["count"], f1["recall"]["n"]) == (1, 2)
    assert (f1["precision"]["count"], f1["precision"]["n"]) == (2, 3)
    assert f1["recall_by_era"]["pre-1992"]["n"] == 2
    row = next(r for r in doc["rows"] if r["category"] == "F1_population")
    assert row["precision"] == f"0.67 [{f1['precision']['low']:.2f}, " \
                               f"{f1['precision']['high']:.2f}] (n=3)"
    # deterministic: sorted keys, same bytes again
    assert list(doc) == sorted(doc)
    assert text == card_json(m, name="small", version="0.2.0", date="2026-12-03",
                             sources=SOURCES)


def test_a_card_reads_back_and_matches_only_its_own_hash(tmp_path: Path, measured) -> None:  # type: ignore[no-untyped-def]
    lexicon, m = measured
    lex = tmp_path / "mine.yaml"
    shutil.copy(SMALL, lex)
    assert card_path(lex) == tmp_path / "mine.card.json"
    card_path(lex).write_text(card_json(m, name="small", version="0.2.0", date="2026-12-03",
                                        sources=SOURCES), encoding="utf-8")
    card = read_card(card_path(lex))
    assert card.rows == tuple(card_rows(m)) and card.hash == lexicon.hash
    assert card_for_run(lex, lexicon.hash).card == card
    other = card_for_run(lex, "ab" * 32, name="small", version="0.2.1")
    assert other.card is None and "No measurement card exists" in other.note
    assert "abababababababab" in other.note and "measures small 0.2.0" in other.note
    gone = card_for_run(tmp_path / "none.yaml", lexicon.hash, name="small", version="0.2.0")
    assert gone.card is None and "No measurement card exists" in gone.note


@pytest.mark.parametrize("text,problem", [
    ("{not json", "not a readable JSON card"),
    ('{"schema": "mobilize.card/9"}', "is not a mobilize.card/1 card"),
    ('["x"]', "is not a mobilize.card/1 card"),
    ('{"schema": "mobilize.card/1", "lexicon": {"name": "x"}}', "lexicon needs name"),
])
def test_a_malformed_card_is_a_note_never_a_traceback(tmp_path: Path, text: str,
                                                      problem: str) -> None:
    lex = tmp_path / "mine.yaml"
    shutil.copy(SMALL, lex)
    card_path(lex).write_text(text, encoding="utf-8")
    note = card_for_run(lex, "ab" * 32, name="small", version="0.2.0")
    assert note.card is None and problem in note.note and problem in note.warning
    assert "cannot be read" in note.note and str(tmp_path) not in note.note


def test_the_card_command_writes_the_json_card_with_project_relative_sources(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sheet = _sheet(tmp_path)
    one = _write(tmp_path / "codes-P-one.csv", CODE_HEADER, CODES_1)
    two = _write(tmp_path / "codes-P-two.csv", CODE_HEADER, CODES_2)
    code, out, err = _cli("lexicon", "card", "--passages", sheet, "--codes", one, "--codes", two,
                          "--lexicon", SMALL, "--date", "2026-12-03", "--out", "card.md",
                          "--json", "cards/small.card.json")
    assert code == 0, err
    doc = json.loads((tmp_path / "cards" / "small.card.json").read_text(encoding="utf-8"))
    assert doc["lexicon"]["name"] == "small" and doc["lexicon"]["version"] == "0.2.0"
    assert doc["sources"] == {"passages": ["passages-P.csv"],
                              "codes": ["codes-P-one.csv", "codes-P-two.csv"], "kwic": []}
    md = (tmp_path / "card.md").read_text(encoding="utf-8")
    assert _md_rows(md)[1:] == [[r[c] for c in doc["columns"]] for r in doc["rows"]]


# ----------------------------------------------------------------- the report


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from pipeline import engine

    tmp = tmp_path_factory.mktemp("cardrun")
    lex = tmp / "lexicons" / "mine.yaml"
    lex.parent.mkdir()
    shutil.copy(SMALL, lex)
    settings = Settings(corpus=shared_corpus("npc-resolutions-gwr-zh"),
                        corpus_name="npc-resolutions-gwr-zh", out=tmp / "out", engine="local",
                        report=False, segmenter="jieba-rs", workers=1, progress=False,
                        lexicon=lex)
    return engine.run_local(settings).run_dir, lex


def _report(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    from pipeline import report

    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    report.write_report(run_dir, Settings())
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    md = (run_dir / "report.md").read_text(encoding="utf-8")
    return html[html.index('<section id="methods">'):], md[md.index("## 方法 Methods"):]


def test_the_report_shows_the_card_of_the_runs_lexicon_and_a_note_otherwise(
        small_run: tuple[Path, Path], measured, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    run_dir, lex = small_run
    _, m = measured
    doc = json.loads(card_json(m, name="small", version="0.2.0", date="2026-12-03",
                               sources=SOURCES))
    doc["corpora"] = ["<script>alert(1)</script>"]  # card text is escaped like all report text
    card_path(lex).write_text(json.dumps(doc), encoding="utf-8")
    html, md = _report(run_dir, monkeypatch)
    assert "Measurement card of the lexicon" in html and "No measurement card" not in html
    f1 = next(r for r in doc["rows"] if r["category"] == "F1_population")
    assert f"<td>{f1['recall pre-1992']}</td>" in html and "<th>recall 2013-</th>" in html
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "2026-12-03" in md and "| recall pre-1992 |" in md
    assert f1["recall"].replace("[", "\\[").replace("]", "\\]") in md or f1["recall"] in md
    assert "<script>alert" not in md

    # an edited lexicon (another hash): no card, a plain note naming the card's version
    doc["lexicon"]["hash"] = "0" * 64
    doc["lexicon"]["version"] = "0.1.9"
    card_path(lex).write_text(json.dumps(doc), encoding="utf-8")
    html, md = _report(run_dir, monkeypatch)
    for page in (html, md):
        assert "No measurement card exists for the lexicon of this run" in page
        assert "small 0.1.9" in page and "recall pre-1992" not in page

    # a malformed card file: a note, no traceback, no absolute path
    card_path(lex).write_text('{"schema": "mobilize.card/1", "rows": 3', encoding="utf-8")
    html, md = _report(run_dir, monkeypatch)
    for page in (html, md):
        assert "cannot be read" in page and "No measurement card exists" in page
        assert str(lex.parent) not in page

    # no card at all
    card_path(lex).unlink()
    html, md = _report(run_dir, monkeypatch)
    assert "No measurement card exists for the lexicon of this run (small 0.2.0" in html


def test_the_methods_appendix_gives_the_kappa_of_the_precision_codes_when_two_coders_judged(
        tmp_path: Path, measured) -> None:  # type: ignore[no-untyped-def]
    """A card whose KWIC lines two coders judged shows their Cohen's kappa beside the lines
    judged (the numbers of the card's own estimates); a card with one coder's lines does not."""
    from pipeline.recall import CardNote
    from pipeline.render import _card_context

    _, m = measured
    doc = json.loads(card_json(m, name="small", version="0.2.0", date="2026-12-03",
                               sources=SOURCES))
    one = tmp_path / "one.card.json"
    one.write_text(json.dumps(doc), encoding="utf-8")
    facts = dict(_card_context(CardNote(read_card(one), ""))["facts"])
    assert facts["KWIC lines judged for precision"] == str(doc["kwic_lines"])

    doc["kwic_lines_coded_by_both"] = 7
    doc["estimates"]["precision_kappa"] = {"value": 0.8125, "low": 0.5, "high": 1.0, "n": 7,
                                           "count": None}
    two = tmp_path / "two.card.json"
    two.write_text(json.dumps(doc), encoding="utf-8")
    facts = dict(_card_context(CardNote(read_card(two), ""))["facts"])
    assert facts["KWIC lines judged for precision"] == (
        f"{doc['kwic_lines']}; coded by two coders: 7, Cohen's kappa 0.81 [0.50, 1.00] (n=7)")
