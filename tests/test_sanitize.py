"""Text from the corpus shown safely (workbook cells, Markdown, figures); a report that cannot be
written is an error, not a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pipeline import report, sanitize


@pytest.mark.parametrize(("value", "cell"), [
    ("社会保障", "社会保障"),
    ("控制\x01字符\x00和\x1f", "控制␁字符␀和␟"),
    ("制表\t换行\n回车\r", "制表\t换行\n回车\r"),  # XML holds these: kept
    ("=SUM(A1:A9)", "'=SUM(A1:A9)"), ("+86 10", "'+86 10"), ("-1", "'-1"), ("@x", "'@x"),
    ("\x00=1", "␀=1"),
])
def test_a_workbook_cell_has_no_illegal_character_and_no_formula(value: str, cell: str) -> None:
    assert sanitize.xlsx(value) == cell


def test_the_workbook_takes_control_characters_in_cells_and_headers(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    tables = {"documents": pd.DataFrame({"doc_id": ["a"], "title": ["标题\x01\x00"],
                                         "区\x02域": ["=1+1"]})}
    report._write_xlsx(tables, tmp_path / "t.xlsx")  # openpyxl once raised IllegalCharacterError
    rows = list(load_workbook(tmp_path / "t.xlsx").active.iter_rows(values_only=True))
    assert rows == [("doc_id", "title", "区␂域"), ("a", "标题␁␀", "'=1+1")]


def _render(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(md)


@pytest.mark.parametrize("text", [
    "见[点击](http://evil.example/a)",
    "![跟踪](http://evil.example/t.png)",
    "<http://evil.example/a>",
    "<img src=http://evil.example/x.png>",
    "[ref]: http://evil.example/r\n[ref]",
    "*强调* __加粗__ ~~删除~~ `代码`",
    "a | b | c",
])
def test_markdown_shows_document_text_as_text(text: str) -> None:
    cell = sanitize.markdown(text)
    page = _render(f"| h |\n|---|\n| {cell} |\n\n{cell}\n")
    assert "<a " not in page and "<img" not in page
    assert not re.search(r"<(em|strong|del|code)>", page)
    assert page.count("<td>") == 1  # one cell: the | inside did not split it
    # What is shown is the text itself (line breaks as spaces).
    shown = re.search(r"<td>(.*)</td>", page).group(1)  # type: ignore[union-attr]
    import html

    assert html.unescape(shown) == text.replace("\n", " ")


def test_report_md_escapes_a_markdown_link_in_a_title(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.discover.discovery_tables", lambda run_dir, settings: {})
    from pipeline.config import Settings
    from tests.test_report import _write_run

    docs = pd.DataFrame({"doc_id": ["a", "b"], "title": ["[点我](http://evil.example/a)",
                                                         "![图](http://evil.example/t.png)"],
                         "date": ["2020", "2021"], "year": [2020, 2021],
                         "region": ["$\\frac{$", "$x^^2$"],
                         "tokens": [100, 100], "sentences": [1, 1], "paragraphs": [1, 1],
                         "sha256": ["a", "b"]})
    scores = pd.DataFrame({"doc_id": ["a", "b"], "scope": ["all"] * 2,
                           "dimension": ["feature"] * 2, "category": ["F1_population"] * 2,
                           "count": [1, 2], "tokens": [100, 100], "rate_per_10k": [100.0, 200.0]})
    tc = pd.DataFrame({"doc_id": ["a", "b"], "dimension": ["feature"] * 2,
                       "category": ["F1_population"] * 2, "term": ["全覆盖"] * 2,
                       "count": [1, 2]})
    run_dir = _write_run(tmp_path / "toy", docs, scores, tc)
    report.write_report(run_dir, Settings(cache=tmp_path / "cache"))  # mathtext once raised here
    assert (run_dir / "figures" / "rates_by_region.png").is_file()
    page = _render((run_dir / "report.md").read_text(encoding="utf-8"))
    assert "evil.example" in page and not re.search(r"(?:href|src)=\"[^\"]*evil", page)


def test_figures_draw_dollar_signs_as_they_are() -> None:
    table = pd.DataFrame({"region": ["$\\frac{$", "$x^^2$"], "dimension": ["feature"] * 2,
                          "category": ["F1_population"] * 2, "rate_per_10k": [1.0, 2.0],
                          "documents": [1, 1]})
    with report._style():
        fig = report._group_heatmap(table, "region", {}, "按 region")
        fig.canvas.draw()  # a mathtext parse error once ended the run here
        labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    # (each group's label is followed by its number of documents on a line of its own)
    assert [label.split("\n")[0] for label in labels] == ["$\\frac{$", "$x^^2$"]


def test_an_svg_figure_with_control_characters_in_its_labels_is_valid_xml(
        tmp_path: Path) -> None:
    from xml.dom import minidom

    table = pd.DataFrame({"region": ["控\x01制\x00", "b\x1b[31m"], "dimension": ["feature"] * 2,
                          "category": ["F1_population"] * 2, "rate_per_10k": [1.0, 2.0],
                          "documents": [1, 1]})
    with report._style():
        fig = report._group_heatmap(table, "region", {}, "按 region")
        paths, _png = report.save_figure(fig, tmp_path, "g")
    svg = (tmp_path / "g.svg").read_bytes()
    minidom.parseString(svg)  # once: "not well-formed (invalid token)"
    assert "控␁制␀".encode() in svg and b"\x00" not in svg


def test_mobilize_report_on_a_full_disk_exits_2_naming_the_run_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    def full(*args: object, **kw: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    from pipeline import store

    (tmp_path / "run").mkdir()  # a run folder (report --run refuses any other folder)
    store.write_json(tmp_path / "run" / "run.json", {"schema": store.RUN_SCHEMA})
    monkeypatch.setattr(report, "write_report", full)
    _register()
    result = CliRunner().invoke(app, ["report", "--run", str(tmp_path / "run")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "cannot write the report (No space left on device)" in result.output
    assert str(tmp_path / "run") in result.output.replace("\n", "")
