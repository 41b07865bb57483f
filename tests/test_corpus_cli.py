"""``mobilize corpus validate|add|list`` through the real CLI (typer's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import _register, app

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "corpora" / "demo"


@pytest.fixture(scope="module")
def runner() -> CliRunner:
    _register()
    return CliRunner()


@pytest.fixture(autouse=True)
def _own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILIZE_CONFIG_DIR", str(tmp_path / "config"))


def _mixed_corpus(base: Path) -> Path:
    root = base / "mixed"
    root.mkdir()
    (root / "a.txt").write_text("社会保障", encoding="utf-8")
    (root / "b.txt").write_bytes(b"")
    (root / "NOTES.md").write_text("notes", encoding="utf-8")
    (root / "metadata.csv").write_text(
        "doc_id,date\na,2020\nb,2021\nc,2022\n", encoding="utf-8")
    return root


@pytest.mark.parametrize("command", [["corpus"], ["corpus", "validate"], ["corpus", "add"],
                                     ["corpus", "list"]])
def test_every_corpus_command_help_has_an_example(runner: CliRunner, command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example: mobilize corpus" in result.output


def test_validate_demo_exits_zero_and_summarises(runner: CliRunner) -> None:
    result = runner.invoke(app, ["corpus", "validate", str(DEMO)])
    assert result.exit_code == 0, result.output
    assert "17 ingested, 0 skipped, 0 failed (and 2 corpus files" in result.output


def test_validate_json_has_one_record_per_file_and_missing_row(
        runner: CliRunner, tmp_path: Path) -> None:
    root = _mixed_corpus(tmp_path)
    result = runner.invoke(app, ["corpus", "validate", str(root), "--json"])
    assert result.exit_code == 1  # b.txt is empty, c.txt is missing
    records = json.loads(result.stdout)
    assert records == [
        {"path": "NOTES.md", "doc_id": "", "status": "corpus_file",
         "reason": "documents the corpus; not listed in metadata.csv"},
        {"path": "a.txt", "doc_id": "a", "status": "ingested", "reason": ""},
        {"path": "b.txt", "doc_id": "b", "status": "failed",
         "reason": "b.txt: empty file (0 bytes). Add the document's text or remove the file."},
        {"path": "c.txt", "doc_id": "c", "status": "failed",
         "reason": "metadata.csv:4: file not found: c.txt; add the file or remove the row"},
        {"path": "metadata.csv", "doc_id": "", "status": "corpus_file",
         "reason": "the corpus metadata (3 rows)"},
    ]


def test_validate_prints_failures_with_reasons(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["corpus", "validate", str(_mixed_corpus(tmp_path))])
    assert result.exit_code == 1
    assert "1 ingested, 0 skipped, 2 failed (and 2 corpus files" in result.output
    assert "empty file" in result.output and "file not found" in result.output


def test_validate_missing_folder_exits_two(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["corpus", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "is neither a folder nor a registered corpus" in result.output


def test_validate_to_simplified_converts_and_says_so(runner: CliRunner, tmp_path: Path) -> None:
    root = tmp_path / "trad"
    root.mkdir()
    (root / "2019-notice.txt").write_text("積極應對人口老齡化", encoding="utf-8")
    plain = json.loads(runner.invoke(app, ["corpus", "validate", str(root), "--json"]).stdout)
    converted = json.loads(runner.invoke(
        app, ["corpus", "validate", str(root), "--json", "--to-simplified"]).stdout)
    assert plain[0]["reason"].startswith("traditional characters (")
    assert converted[0]["reason"].startswith("converted from traditional to simplified characters")


def test_add_then_list_then_validate_by_name(runner: CliRunner) -> None:
    added = runner.invoke(app, ["corpus", "add", str(DEMO), "--name", "demo-copy"])
    assert added.exit_code == 0, added.output
    listed = runner.invoke(app, ["corpus", "list", "--json"])
    assert json.loads(listed.stdout) == [
        {"name": "demo-copy", "path": str(DEMO.resolve()), "exists": True, "documents": 17,
         "first_year": 2005, "last_year": 2025, "problem": ""}]
    table = runner.invoke(app, ["corpus", "list"])
    assert "demo-copy" in table.output and "2005-2025" in table.output
    by_name = runner.invoke(app, ["corpus", "validate", "demo-copy"])
    assert by_name.exit_code == 0 and "17 ingested" in by_name.output


def test_add_missing_folder_exits_two(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["corpus", "add", str(tmp_path / "nope"), "--name", "x"])
    assert result.exit_code == 2
    assert "no such corpus folder" in result.output


def test_validate_verbose_lists_every_file_with_its_status(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["corpus", "validate", str(_mixed_corpus(tmp_path)), "--verbose"],
                           env={"COLUMNS": "250"})
    assert result.exit_code == 1
    for path in ("NOTES.md", "a.txt", "b.txt", "c.txt", "metadata.csv"):
        assert path in result.output
    assert "not listed in metadata.csv" in result.output
