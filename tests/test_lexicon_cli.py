"""``mobilize lexicon ...`` through the real command line (typer's CliRunner)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from pipeline.cli import _register
from pipeline.cli._apps import app
from pipeline.lexicon import load_lexicon

FIXTURES = Path(__file__).parent / "fixtures" / "lexicons"
SMALL = FIXTURES / "small.yaml"
SEED = FIXTURES / "seed.yaml"
runner = CliRunner()


def _run(*args: str | Path) -> tuple[int, str, str]:
    _register()
    result = runner.invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _lexicon_commands() -> list[str]:
    _register()
    group = typer.main.get_command(app)
    lexicon = group.commands["lexicon"]  # type: ignore[attr-defined]
    return sorted(lexicon.commands)


@pytest.mark.parametrize("command", ["validate", "show", "export", "import", "kwic", "coverage",
                                     "sample", "agreement"])
def test_each_lexicon_command_help_shows_an_example(command: str) -> None:
    assert command in _lexicon_commands()
    code, out, _ = _run("lexicon", command, "--help")
    assert code == 0 and "Example: mobilize lexicon " + command in out


# ----------------------------------------------------------------- validate / show


def test_validate_prints_one_ok_line_with_version_and_hash() -> None:
    code, out, _ = _run("lexicon", "validate", SEED)
    lex = load_lexicon(SEED)
    assert code == 0
    from pipeline.cli._common import shown_path

    # (the file named relative to the working folder or the project, never by an absolute path)
    expected = (f"OK {shown_path(SEED)}: lexicon seed version 0.1.0, hash {lex.short_hash}, "
                "14 categories, 155 terms")
    assert out.splitlines() == [expected]


def test_validate_prints_every_problem_with_its_line_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.read_text(encoding="utf-8")
                   .replace("          - 大数据\n", "          - 大数据\n          - 大数据\n")
                   .replace("  challenge:", "  challenges:"), encoding="utf-8")
    code, out, err = _run("lexicon", "validate", bad)
    assert code == 2 and out == ""
    assert f"{bad}:36: category P4_technology: duplicate term '大数据' (first at line 35). " \
           "Delete one of them" in err
    assert f"{bad}:40: unknown dimension 'challenges'. Use one of:" in err
    # the unknown dimension hides C4, so 人工智能's also_in now names an unknown category
    assert f"{bad}:37: category P4_technology: term '人工智能' says also_in" in err
    assert "3 problem(s)" in err


def test_validate_strict_turns_warnings_into_errors() -> None:
    assert _run("lexicon", "validate", SMALL)[0] == 0
    code, _, err = _run("lexicon", "validate", SMALL, "--strict")
    assert code == 2 and "codebook categories missing" in err


def test_show_json_lists_categories_with_term_counts() -> None:
    code, out, _ = _run("lexicon", "show", SMALL, "--json")
    data = json.loads(out)
    assert code == 0 and data["hash"] == load_lexicon(SMALL).hash and data["version"] == "0.2.0"
    f1 = data["categories"][0]
    assert (f1["id"], f1["terms"], f1["patterns"], f1["excluded"]) == ("F1_population", 2, 1, 1)


def test_show_of_a_missing_file_is_an_error_with_a_fix(tmp_path: Path) -> None:
    code, _, err = _run("lexicon", "show", tmp_path / "none.yaml")
    assert code == 2 and "no such lexicon file" in err


# ----------------------------------------------------------------- export / import


@pytest.mark.parametrize("fmt", ["quanteda", "cntext", "liwc"])
def test_export_then_import_gives_a_valid_lexicon_with_the_same_terms(fmt: str,
                                                                      tmp_path: Path) -> None:
    exported = tmp_path / f"dict.{fmt}"
    code, out, err = _run("lexicon", "export", "--format", fmt, "--lexicon", SMALL,
                          "--out", exported)
    assert code == 0 and out == ""
    assert "not kept:" in err and "覆盖N亿人" in err  # the pattern cannot be exported
    imported = tmp_path / "back.yaml"
    code, _, _ = _run("lexicon", "import", exported, "--format", fmt, "--out", imported)
    assert code == 0
    assert _run("lexicon", "validate", imported)[0] == 0
    original, back = load_lexicon(SMALL), load_lexicon(imported)
    assert {(t.category, t.text) for t in back.terms()} == {
        (t.category, t.text) for t in original.terms() if t.pattern is None}


def test_export_writes_to_stdout_by_default() -> None:
    code, out, _ = _run("lexicon", "export", "-f", "liwc", "-l", SMALL)
    assert code == 0 and out.startswith("%\n1\tF1_population\n")


def test_unknown_format_is_an_error() -> None:
    code, _, err = _run("lexicon", "export", "-f", "dic", "-l", SMALL)
    assert code == 2 and "quanteda, cntext, liwc" in err


# ----------------------------------------------------------------- the kit on a real corpus


@pytest.fixture(scope="module")
def npc() -> Path:
    from conftest import shared_corpus

    return shared_corpus("npc-resolutions-gwr-zh")


@pytest.mark.slow
def test_kwic_prints_lines_and_writes_csv(npc: Path, tmp_path: Path) -> None:
    code, out, _ = _run("lexicon", "kwic", "政府工作报告", "--corpus", npc, "-l", SEED,
                        "--limit", "3")
    assert code == 0 and "3 line(s)" in out
    out_csv = tmp_path / "k.csv"
    code, _, _ = _run("lexicon", "kwic", "--category", "P2_philosophy", "--corpus", npc,
                      "-l", SEED, "--csv", out_csv)
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8")))
    assert code == 0 and rows and {r["category"] for r in rows} == {"P2_philosophy"}
    from pipeline.ingest import load_corpus

    docs = {d.doc_id: d.text for d in load_corpus(npc).documents}
    for r in rows:  # every line is really in its document
        assert r["left"] + r["match"] + r["right"] in docs[r["doc_id"]].replace("\n", " ")


def test_kwic_with_an_unknown_category_names_the_known_ones(npc: Path) -> None:
    code, _, err = _run("lexicon", "kwic", "--category", "X1", "--corpus", npc, "-l", SMALL)
    assert code == 2 and "F1_population" in err


@pytest.mark.slow
def test_coverage_json_agrees_with_the_matcher(npc: Path) -> None:
    from pipeline.ingest import load_corpus
    from pipeline.match import Matcher

    code, out, _ = _run("lexicon", "coverage", "--corpus", npc, "-l", SEED, "--json")
    data = json.loads(out)
    matcher = Matcher(load_lexicon(SEED))
    docs = load_corpus(npc).documents
    expected = sum(len(matcher.find(d.text)) for d in docs)
    assert code == 0 and data["documents"] == len(docs) == 20
    assert sum(c["hits"] for c in data["categories"]) == expected > 0
    assert len(data["never_matched"]) == sum(1 for t in data["terms"] if t["hits"] == 0)


@pytest.mark.slow
def test_sample_then_agreement_end_to_end(npc: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.csv"
    code, out, _ = _run("lexicon", "sample", "--corpus", npc, "-l", SEED, "--per-category", "3",
                        "--seed", "5", "--out", sheet)
    assert code == 0 and "wrote" in out
    again = tmp_path / "again.csv"
    _run("lexicon", "sample", "--corpus", npc, "-l", SEED, "--per-category", "3", "--seed", "5",
         "--out", again)
    assert sheet.read_bytes() == again.read_bytes()
    with sheet.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(sum(r["category"] == c for r in rows) <= 3 for c in {r["category"] for r in rows})
    for i, r in enumerate(rows):  # a coder marks every other line relevant
        r["judgement"] = "relevant" if i % 2 == 0 else "not relevant"
    coded = tmp_path / "coded.csv"
    with coded.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    table = tmp_path / "precision.csv"
    code, out, _ = _run("lexicon", "agreement", coded, coded, "--json", "--csv", table)
    data = json.loads(out)
    assert code == 0 and data["shared"] == len(rows) and data["kappa"] == 1.0
    assert data["overall_precision"] == round(((len(rows) + 1) // 2) / len(rows), 4)
    assert table.read_text(encoding="utf-8").startswith("level,category,term,coded,relevant,")
