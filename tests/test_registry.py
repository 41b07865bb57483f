"""The corpus registry: names for corpus folders in the user's config.toml."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from pipeline import registry
from pipeline.config import config_file
from pipeline.errors import MobilizeError


@pytest.fixture(autouse=True)
def _own_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOBILIZE_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path / "config"


def _corpus(base: Path, name: str, years: tuple[int, ...]) -> Path:
    root = base / name
    root.mkdir()
    for year in years:
        (root / f"{year}-doc.txt").write_text(f"{year}年社会保障", encoding="utf-8")
    return root


def test_add_writes_a_toml_table_that_tomllib_reads_back(tmp_path: Path) -> None:
    root = _corpus(tmp_path, "national", (2015, 2021))
    assert registry.add_corpus(root, "national") == root.resolve()
    with config_file().open("rb") as fh:
        assert tomllib.load(fh) == {"corpora": {"national": {"path": str(root.resolve())}}}


def test_add_keeps_other_settings_and_quotes_unusual_keys(tmp_path: Path) -> None:
    config_file().parent.mkdir(parents=True)
    config_file().write_text('segmenter = "jieba-rs"\n[defaults]\nworkers = 2\nhmm = false\n'
                             'tags = ["a", "b"]\n', encoding="utf-8")
    root = _corpus(tmp_path, 'odd "dir"', (2020,))
    registry.add_corpus(root, "省级")
    with config_file().open("rb") as fh:
        data = tomllib.load(fh)
    assert data == {"segmenter": "jieba-rs",
                    "defaults": {"workers": 2, "hmm": False, "tags": ["a", "b"]},
                    "corpora": {"省级": {"path": str(root.resolve())}}}


def test_adding_a_name_again_for_another_folder_needs_force(tmp_path: Path) -> None:
    a = _corpus(tmp_path, "a", (2020,))
    registry.add_corpus(a, "c")
    registry.add_corpus(a, "c")  # the same folder again: nothing to replace
    with pytest.raises(MobilizeError) as err:
        registry.add_corpus(_corpus(tmp_path, "b", (2021,)), "c")
    assert err.value.exit_code == 2 and err.value.path == str(config_file())
    assert f"the name 'c' is already registered for {a.resolve()}" in err.value.problem
    assert "--force" in err.value.fix
    assert registry.registered() == {"c": a.resolve()}
    registry.add_corpus(tmp_path / "b", "c", force=True)
    assert registry.registered() == {"c": (tmp_path / "b").resolve()}


def test_corpus_add_cli_refuses_to_replace_a_name_and_says_what_it_pointed_to(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    _register()
    a, b = _corpus(tmp_path, "a", (2020,)), _corpus(tmp_path, "b", (2021,))
    runner = CliRunner()
    assert runner.invoke(app, ["corpus", "add", str(a), "--name", "c"]).exit_code == 0
    refused = runner.invoke(app, ["corpus", "add", str(b), "--name", "c"])
    assert refused.exit_code == 2
    assert "already registered for" in refused.output and str(a.resolve()) in refused.output
    forced = runner.invoke(app, ["corpus", "add", str(b), "--name", "c", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "it pointed to" in forced.output and str(a.resolve()) in forced.output
    assert registry.registered() == {"c": b.resolve()}


@pytest.mark.parametrize("name", ["", "has space", "a/b", "x.y", "..", ".hidden", "a*", "gwr[12]",
                                  "x?"])
def test_invalid_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(MobilizeError, match="invalid corpus name"):
        registry.add_corpus(_corpus(tmp_path, "c", (2020,)), name)


def test_adding_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MobilizeError, match="no such corpus folder"):
        registry.add_corpus(tmp_path / "missing", "m")
    assert not config_file().exists()


def test_list_gives_document_counts_and_year_span(tmp_path: Path) -> None:
    registry.add_corpus(_corpus(tmp_path, "p", (2010, 2024, 2016)), "prov")
    registry.add_corpus(_corpus(tmp_path, "gone", (2000,)), "gone")
    (tmp_path / "gone" / "2000-doc.txt").unlink()
    (tmp_path / "gone").rmdir()
    infos = registry.list_corpora()
    assert [i.as_dict() for i in infos] == [
        {"name": "gone", "path": str((tmp_path / "gone").resolve()), "exists": False,
         "documents": 0, "first_year": None, "last_year": None, "problem": ""},
        {"name": "prov", "path": str((tmp_path / "p").resolve()), "exists": True,
         "documents": 3, "first_year": 2010, "last_year": 2024, "problem": ""},
    ]


def test_list_reports_a_corpus_whose_metadata_broke_after_adding(tmp_path: Path) -> None:
    root = _corpus(tmp_path, "c", (2020,))
    registry.add_corpus(root, "c")
    (root / "metadata.csv").write_text("id,when\n", encoding="utf-8")
    (info,) = registry.list_corpora()
    assert info.documents == 0
    assert "metadata.csv:1: no 'doc_id' column" in info.problem


def test_resolve_prefers_an_existing_path_then_a_registered_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = _corpus(tmp_path, "named", (2020,))
    registry.add_corpus(named, "demo2")
    other = _corpus(tmp_path, "demo2", (2021,))  # a folder called like the registered name
    monkeypatch.chdir(tmp_path)
    assert registry.resolve_corpus("demo2") == (other.resolve(), "demo2")  # the path wins
    monkeypatch.chdir(other)
    assert registry.resolve_corpus("demo2") == (named.resolve(), "demo2")  # no such path here
    # by path, always the folder's name, even for a registered folder (outputs: OUT/named)
    assert registry.resolve_corpus(str(named)) == (named.resolve(), "named")
    assert registry.resolve_corpus(str(other)) == (other.resolve(), "demo2")  # folder name


@pytest.mark.parametrize("name,why", [
    ("../escape", "'/', '\\' or '..'"), ("a/b", "'/', '\\' or '..'"), ("..", "'..'"),
    ("a*", "glob character"), ("gwr[12]", "glob character"), (".hidden", "starts with a dot"),
    ("", "it is empty")])
def test_a_name_in_the_config_file_that_cannot_name_a_folder_is_an_error(
        tmp_path: Path, name: str, why: str) -> None:
    root = _corpus(tmp_path, "c", (2020,))
    config_file().parent.mkdir(parents=True)
    key = '"' + name.replace("\\", "\\\\") + '"'
    config_file().write_text(f'[corpora.ok]\npath = "{root}"\n[corpora.{key}]\npath = "{root}"\n',
                             encoding="utf-8")
    with pytest.raises(MobilizeError) as err:
        registry.registered()
    assert err.value.exit_code == 2 and err.value.path == str(config_file())
    assert f"the registered corpus name {name!r} cannot be used" in err.value.problem
    assert why in err.value.problem
    assert "mobilize corpus add PATH --name NAME" in err.value.fix
    with pytest.raises(MobilizeError, match="cannot be used"):
        registry.resolve_corpus("ok")


def test_resolve_unknown_name_lists_the_registered_names(tmp_path: Path) -> None:
    registry.add_corpus(_corpus(tmp_path, "x", (2020,)), "national")
    registry.add_corpus(_corpus(tmp_path, "y", (2020,)), "provincial")
    with pytest.raises(MobilizeError) as info:
        registry.resolve_corpus("nosuch")
    assert "'nosuch' is neither a folder nor a registered corpus" in info.value.message
    assert "Registered corpora: national, provincial." in info.value.message


def test_a_broken_config_file_is_reported_with_its_path() -> None:
    config_file().parent.mkdir(parents=True)
    config_file().write_text("corpora = [unclosed\n", encoding="utf-8")
    with pytest.raises(MobilizeError, match="config.toml"):
        registry.registered()


def test_remove_forgets_a_name(tmp_path: Path) -> None:
    registry.add_corpus(_corpus(tmp_path, "x", (2020,)), "x")
    registry.remove_corpus("x")
    assert registry.registered() == {}
    with pytest.raises(MobilizeError, match="no registered corpus named 'x'"):
        registry.remove_corpus("x")


@pytest.mark.slow  # (two reports and two comparisons: about a minute)
def test_one_naming_rule_for_run_report_and_compare(tmp_path: Path) -> None:
    """By registered name: OUT/<registered name>; by path: OUT/<folder name>, even when that
    folder is registered under another name."""
    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    _register()
    runner = CliRunner()
    root = _corpus(tmp_path, "gwr-national-zh", (2020, 2021))
    lexicon = Path(__file__).parent / "fixtures" / "lexicons" / "seed.yaml"
    out = tmp_path / "reports"
    assert runner.invoke(app, ["corpus", "add", str(root), "--name", "national"]).exit_code == 0
    common = ["--out", str(out), "--engine", "local", "--lexicon", str(lexicon), "--no-report",
              "--json"]
    by_path = runner.invoke(app, ["run", "--corpus", str(root), *common])
    by_name = runner.invoke(app, ["run", "--corpus", "national", *common])
    assert by_path.exit_code == 0 and by_name.exit_code == 0, by_path.output + by_name.output
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "gwr-national-zh", "national"]
    for folder, name in ((out / "gwr-national-zh", "gwr-national-zh"), (out / "national", "national")):
        assert json.loads((folder / "run.json").read_text(encoding="utf-8"))["corpus"]["name"] == name

    for corpus, folder in ((str(root), "gwr-national-zh"), ("national", "national")):
        done = runner.invoke(app, ["report", "--corpus", corpus, "--out", str(out), "--json"])
        assert done.exit_code == 0, done.output
        assert str(out / folder / "report.html") in done.output

    for corpus, folder in ((str(root), "gwr-national-zh"), ("national", "national")):
        done = runner.invoke(app, ["compare", "--corpus", corpus, "--by", "year", "--a", "2021",
                                   "--b", "2020", "--out", str(out), "--lexicon", str(lexicon),
                                   "--json"])
        assert done.exit_code == 0, done.output
        assert (out / "compare" / "runs" / folder / "run.json").is_file()


def test_the_cli_prints_a_message_with_brackets_as_written(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    _register()
    root = _corpus(tmp_path, "c", (2020,))
    config_file().parent.mkdir(parents=True)
    config_file().write_text(f'[corpora."a*"]\npath = "{root}"\n', encoding="utf-8")
    done = CliRunner().invoke(app, ["corpus", "list"])
    assert done.exit_code == 2
    assert "Rename or remove [corpora.\"a*\"] in that file" in done.output.replace("\n", "")
