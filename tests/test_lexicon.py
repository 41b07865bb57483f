"""Lexicon loading, validation (every problem with its YAML line) and the content hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.errors import LexiconError
from pipeline.lexicon import (
    CODEBOOK,
    DIMENSIONS,
    FORMATS,
    Category,
    Lexicon,
    Problem,
    Term,
    build_lexicon,
    export_lexicon,
    import_lexicon,
    load_lexicon,
    parse_lexicon_text,
    to_yaml,
    validate_lexicon,
)

FIXTURES = Path(__file__).parent / "fixtures" / "lexicons"
SMALL = FIXTURES / "small.yaml"
SEED = FIXTURES / "seed.yaml"

HEAD = """\
schema: 1
name: t
version: 1.0.0
dimensions:
  feature:
    categories:
      - id: F1_population
        name_zh: 人口规模巨大的现代化
        name_en: Population
        definition: Coverage.
        terms:
"""


def _write(tmp_path: Path, body: str, name: str = "lex.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def _errors(path: Path) -> list[Problem]:
    return [p for p in validate_lexicon(path) if p.severity == "error"]


def _only_error(path: Path) -> Problem:
    errors = _errors(path)
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


# ----------------------------------------------------------------- loading


def test_loads_categories_terms_and_metadata_of_a_lexicon() -> None:
    lex = load_lexicon(SMALL)
    assert (lex.name, lex.version) == ("small", "0.2.0")
    assert lex.meta["licence"] == "CC-BY-4.0"
    assert lex.dimensions == ("feature", "pathway", "challenge", "domain")  # no frame category
    assert [c.id for c in lex.categories] == ["F1_population", "P4_technology",
                                             "C3_economic_normal", "C4_digital_disruption",
                                             "D_social_security"]
    f1 = lex.category("F1_population")
    assert f1.dimension == "feature" and f1.name_zh == "人口规模巨大的现代化"
    assert [t.text for t in f1.terms] == ["全覆盖", "全民参保", "覆盖N亿人"]
    assert f1.terms[1].weight == 1.5 and f1.terms[1].note == "enrolment of everyone"
    assert f1.terms[2].pattern == r"覆盖\d+(?:\.\d+)?亿人"
    assert [t.text for t in f1.excluded] == ["覆盖"]
    assert lex.category("P4_technology").terms[2].also_in == ("C4_digital_disruption",)
    assert f1.terms[0].line == 17  # the line of `- 全覆盖` in the file


def test_user_words_are_the_unique_literal_terms_without_patterns() -> None:
    words = load_lexicon(SMALL).user_words()
    assert words == sorted(words)
    assert words.count("人工智能") == 1
    assert "覆盖N亿人" not in words and "覆盖" not in words
    assert len(words) == 12


def test_terms_lists_every_counted_term_but_not_the_excluded() -> None:
    lex = load_lexicon(SMALL)
    assert len(lex.terms()) == 14
    assert all(t.text != "覆盖" for t in lex.terms())


def test_unknown_category_raises_key_error_naming_the_known_ones() -> None:
    with pytest.raises(KeyError, match="F1_population"):
        load_lexicon(SMALL).category("F9_nothing")


def test_seed_fixture_holds_every_codebook_category_without_warnings() -> None:
    assert validate_lexicon(SEED) == []
    lex = load_lexicon(SEED)
    assert {c.id for c in lex.categories} == {i for ids in CODEBOOK.values() for i in ids}


def test_hash_is_full_sha256_and_ignores_comments_order_and_layout(tmp_path: Path) -> None:
    lex = load_lexicon(SMALL)
    assert len(lex.hash) == 64 and lex.short_hash == lex.hash[:16]
    text = SMALL.read_text(encoding="utf-8")
    moved = text.replace("          - 互联网+\n          - 大数据\n",
                         "          - 大数据 # comment\n\n          - 互联网+\n")
    assert moved != text
    assert load_lexicon(_write(tmp_path, moved)).hash == lex.hash


def test_hash_changes_when_a_term_weight_or_version_changes(tmp_path: Path) -> None:
    base = load_lexicon(SMALL).hash
    text = SMALL.read_text(encoding="utf-8")
    assert load_lexicon(_write(tmp_path, text.replace("大数据", "云计算"), "a.yaml")).hash != base
    assert load_lexicon(_write(tmp_path, text.replace("weight: 1.5", "weight: 2"), "b.yaml")).hash != base
    assert load_lexicon(_write(tmp_path, text.replace("0.2.0", "0.2.1"), "c.yaml")).hash != base


def test_a_lexicon_is_hashable_by_its_content_hash() -> None:
    a, b = load_lexicon(SMALL), load_lexicon(SMALL)
    assert a == b and {a: 1}[b] == 1


def test_to_yaml_round_trips_to_the_same_hash() -> None:
    lex = load_lexicon(SMALL)
    again, problems = parse_lexicon_text(to_yaml(lex))
    assert again is not None, [str(p) for p in problems]
    assert again.hash == lex.hash


def test_load_without_path_reads_the_bundled_lexicon_or_says_it_is_missing() -> None:
    from pipeline.config import DEFAULT_LEXICON

    if DEFAULT_LEXICON.is_file():
        assert load_lexicon().path == DEFAULT_LEXICON
    else:
        with pytest.raises(LexiconError, match="no such lexicon file"):
            load_lexicon()


def test_load_raises_lexicon_error_with_file_line_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "          - ''\n")
    with pytest.raises(LexiconError) as info:
        load_lexicon(path)
    assert info.value.line == 12
    assert info.value.message.startswith(f"{path}:12: category F1_population: empty term")


def test_missing_file_is_an_error_with_a_fix(tmp_path: Path) -> None:
    [problem] = validate_lexicon(tmp_path / "nope.yaml")
    assert "no such lexicon file" in problem.message and problem.fix


# ----------------------------------------------------------------- every validation error


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    problem = _only_error(_write(tmp_path, HEAD + "          - 全覆盖\n          - [unclosed\n"))
    assert problem.message.startswith("YAML syntax error")
    assert problem.line == 14  # the parser notices at the line after the unclosed bracket


def test_unknown_dimension_is_reported_at_its_line(tmp_path: Path) -> None:
    body = HEAD + "          - 全覆盖\n  features:\n    categories: []\n"
    problem = _only_error(_write(tmp_path, body))
    assert (problem.line, problem.message) == (13, "unknown dimension 'features'")
    assert "feature, pathway, challenge, domain" in problem.fix


def test_unknown_and_missing_keys_are_reported(tmp_path: Path) -> None:
    body = HEAD.replace("        definition: Coverage.\n", "        defn: Coverage.\n") \
        + "          - 全覆盖\n"
    errors = _errors(_write(tmp_path, body))
    assert [(p.line, p.message) for p in errors] == [
        (7, "a category: missing key 'definition'"),
        (10, "a category: unknown key 'defn'"),
    ]


def test_missing_top_level_key_is_reported(tmp_path: Path) -> None:
    problem = _only_error(_write(tmp_path, HEAD.replace("version: 1.0.0\n", "") + "          - 全覆盖\n"))
    assert (problem.line, problem.message) == (1, "the lexicon: missing key 'version'")


def test_empty_term_is_reported_at_its_line(tmp_path: Path) -> None:
    problem = _only_error(_write(tmp_path, HEAD + "          - 全覆盖\n          -\n"))
    assert (problem.line, problem.message) == (13, "category F1_population: empty term")


def test_invalid_regex_is_reported_at_its_line(tmp_path: Path) -> None:
    body = HEAD + "          - pattern: '覆盖(\\d+亿人'\n            label: 覆盖N亿人\n"
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 12
    assert problem.message.startswith("category F1_population: invalid regular expression")


def test_pattern_that_matches_nothing_but_the_empty_string_is_rejected(tmp_path: Path) -> None:
    body = HEAD + "          - pattern: '\\d*'\n            label: N\n"
    assert "matches the empty string" in _only_error(_write(tmp_path, body)).message


def test_pattern_without_label_is_rejected(tmp_path: Path) -> None:
    problem = _only_error(_write(tmp_path, HEAD + "          - pattern: '覆盖\\d+亿人'\n"))
    assert (problem.line, "has no label" in problem.message) == (12, True)


def test_pattern_label_equal_to_a_literal_term_is_rejected(tmp_path: Path) -> None:
    body = HEAD + "          - 扩面\n          - pattern: '扩面\\d'\n            label: 扩面\n"
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 13 and "also a literal term of the category (line 12)" in problem.message


def test_duplicate_term_in_a_category_names_both_lines(tmp_path: Path) -> None:
    body = HEAD + "          - 全覆盖\n          - 扩面\n          - term: 全覆盖\n"
    problem = _only_error(_write(tmp_path, body))
    assert (problem.line, problem.message) == (
        14, "category F1_population: duplicate term '全覆盖' (first at line 12)")


def test_term_both_listed_and_excluded_is_rejected(tmp_path: Path) -> None:
    body = HEAD + "          - 全覆盖\n        excluded:\n          - term: 全覆盖\n            note: x\n"
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 14 and "both listed (line 12) and excluded" in problem.message


_TWO_CATS = HEAD + """\
          - 人工智能{a}
  pathway:
    categories:
      - id: P4_technology
        name_zh: 技术
        name_en: Technology
        definition: Digital.
        terms:
          - 大数据
          - term: 人工智能{b}
"""


def test_undeclared_overlap_is_reported_in_both_places(tmp_path: Path) -> None:
    errors = _errors(_write(tmp_path, _TWO_CATS.format(a="", b="")))
    assert [(p.line, "undeclared overlap" in p.message) for p in errors] == [(12, True), (21, True)]
    assert "also_in: [P4_technology]" in errors[0].fix


def test_overlap_declared_on_one_side_only_is_still_an_error(tmp_path: Path) -> None:
    body = _TWO_CATS.format(a="", b="\n            also_in: [F1_population]")
    [problem] = _errors(_write(tmp_path, body))
    assert problem.line == 12 and "P4_technology" in problem.message


def test_overlap_declared_on_both_sides_is_valid(tmp_path: Path) -> None:
    body = _TWO_CATS.format(a="", b="\n            also_in: [F1_population]").replace(
        "          - 人工智能\n", "          - term: 人工智能\n            also_in: [P4_technology]\n")
    assert _errors(_write(tmp_path, body)) == []


def test_also_in_naming_an_unknown_category_is_rejected(tmp_path: Path) -> None:
    body = HEAD + "          - term: 全覆盖\n            also_in: [Z9_nothing]\n"
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 12 and "'Z9_nothing', which is not a category" in problem.message


def test_also_in_naming_a_category_without_the_term_is_rejected(tmp_path: Path) -> None:
    body = _TWO_CATS.format(a="", b="").replace("          - 人工智能\n",
                                               "          - term: 全覆盖\n            also_in: [P4_technology]\n") \
        .replace("          - term: 人工智能\n", "          - term: 人工智能\n            note: x\n")
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 12 and "does not list it" in problem.message


def test_missing_codebook_categories_are_warnings_not_errors(tmp_path: Path) -> None:
    path = _write(tmp_path, HEAD + "          - 全覆盖\n")
    problems = validate_lexicon(path)
    assert _errors(path) == []
    [warning] = [p for p in problems if p.severity == "warning"]
    assert warning.message.startswith("codebook categories missing: F2_common_prosperity, ")
    missing = set(warning.message.split(": ", 1)[1].split(", "))
    assert missing == {i for ids in CODEBOOK.values() for i in ids} - {"F1_population"}
    assert load_lexicon(path).name == "t"


def test_term_that_nfkc_would_change_is_rejected_with_the_normal_form(tmp_path: Path) -> None:
    problem = _only_error(_write(tmp_path, HEAD + "          - 互联网＋\n"))
    assert problem.line == 12 and "'互联网+'" in problem.fix


def test_a_number_read_as_a_term_must_be_quoted(tmp_path: Path) -> None:
    problem = _only_error(_write(tmp_path, HEAD + "          - 2035\n"))
    assert "Quote it" in problem.fix and problem.line == 12


def test_bad_weight_is_rejected(tmp_path: Path) -> None:
    body = HEAD + "          - term: 全覆盖\n            weight: -1\n"
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 13 and "not a positive number" in problem.message


def test_all_problems_are_reported_at_once_sorted_by_line(tmp_path: Path) -> None:
    body = HEAD + "          - ''\n          - pattern: '('\n            label: x\n          - 扩面\n          - 扩面\n"
    errors = _errors(_write(tmp_path, body))
    assert [p.line for p in errors] == [12, 13, 16]


def test_unbounded_pattern_gets_a_note_not_an_error(tmp_path: Path) -> None:
    body = HEAD + "          - pattern: '覆盖[^。]+亿人'\n            label: 覆盖N亿人\n" \
        + "          - pattern: '参保\\d{1,5}亿人'\n            label: 参保N亿人\n" \
        + "          - pattern: '扩面\\d+人'\n            label: 扩面N人\n"
    path = _write(tmp_path, body)
    notes = [p for p in validate_lexicon(path) if p.severity == "note"]
    assert [(p.line, "searched over the whole text" in p.message) for p in notes] == [(12, True)]
    assert load_lexicon(path).name == "t"


def test_pattern_label_used_twice_is_rejected(tmp_path: Path) -> None:
    body = HEAD + "          - pattern: '扩面\\d'\n            label: 扩面N\n" \
        + "          - pattern: '扩大\\d'\n            label: 扩面N\n"
    problem = _only_error(_write(tmp_path, body))
    assert problem.line == 14 and "label '扩面N' is used twice (first at line 12)" in problem.message


def test_the_bundled_lexicon_has_no_errors_or_warnings() -> None:
    from pipeline.config import DEFAULT_LEXICON

    if not DEFAULT_LEXICON.is_file():
        pytest.skip(f"{DEFAULT_LEXICON} not written yet")
    problems = [str(p) for p in validate_lexicon(DEFAULT_LEXICON) if p.severity != "note"]
    assert problems == []


def test_problem_reads_path_line_message_fix() -> None:
    problem = Problem("lex.yaml", 7, "empty term", "Write the term")
    assert str(problem) == "lex.yaml:7: empty term. Write the term"


# ----------------------------------------------------------------- export / import

_IDS = [i for ids in CODEBOOK.values() for i in ids]
_DIM_OF = {i: d for d, ids in CODEBOOK.items() for i in ids}
_word = st.text(alphabet="社会保障养老医疗新常态数字化共同富裕+AI 2", min_size=1, max_size=6).map(
    lambda s: " ".join(s.split())).filter(bool)


@st.composite
def _lexicons(draw: st.DrawFn) -> Lexicon:
    ids = draw(st.lists(st.sampled_from(_IDS), min_size=1, max_size=5, unique=True))
    words = {cid: draw(st.lists(_word, min_size=1, max_size=6, unique=True)) for cid in ids}
    owners: dict[str, set[str]] = {}
    for cid, ws in words.items():
        for w in ws:
            owners.setdefault(w, set()).add(cid)
    cats = []
    for cid in ids:
        dim = _DIM_OF[cid]
        terms = [Term(w, cid, dim, weight=draw(st.sampled_from([1.0, 1.0, 2.5])),
                      also_in=tuple(sorted(owners[w] - {cid}))) for w in words[cid]]
        if draw(st.booleans()):
            terms.append(Term("N亿人", cid, dim, pattern=r"\d+亿人"))
        cats.append(Category(cid, dim, "名", "name", "definition", tuple(terms), ()))
    return build_lexicon(name="gen", version="1.0.0", categories=tuple(cats),
                         meta={"title": "Generated", "source": "hypothesis"})


def _literal_view(lex: Lexicon, ordered: bool) -> list[tuple[str, str, list[str]]]:
    out = []
    for c in lex.categories:
        words = [t.text for t in c.terms if t.pattern is None]
        out.append((c.id, c.dimension, words if ordered else sorted(words)))
    return sorted(out)  # quanteda groups categories by dimension: category order is not kept


@settings(max_examples=60, deadline=None)
@given(lex=_lexicons(), fmt=st.sampled_from(FORMATS))
def test_export_then_import_keeps_what_the_format_can_hold(lex: Lexicon, fmt: str) -> None:
    exported = export_lexicon(lex, fmt)
    back = import_lexicon(exported.text, fmt)
    # categories (ids, dimensions) and literal terms survive; LIWC keeps no term order
    assert _literal_view(back, fmt != "liwc") == _literal_view(lex, fmt != "liwc")
    # overlaps come back declared, so the imported lexicon is valid
    again, problems = parse_lexicon_text(to_yaml(back))
    assert again is not None, [str(p) for p in problems]
    # patterns and weights are what is lost, and the export says so
    patterns = [t for t in lex.terms() if t.pattern is not None]
    assert len([x for x in exported.lost if "pattern" in x]) == len(patterns)
    assert all(t.pattern is None and t.weight == 1.0 for t in back.terms())
    if fmt == "cntext":
        assert (back.meta["title"], back.meta["source"]) == ("Generated", "hypothesis")


def test_quanteda_export_nests_categories_under_dimensions() -> None:
    text = export_lexicon(load_lexicon(SMALL), "quanteda").text
    assert "\nchallenge:\n  C3_economic_normal:\n  - 经济新常态\n  - 新常态\n" in text


def test_liwc_export_numbers_categories_and_lists_a_shared_term_once() -> None:
    text = export_lexicon(load_lexicon(SMALL), "liwc").text
    lines = text.splitlines()
    assert lines[:7] == ["%", "1\tF1_population", "2\tP4_technology", "3\tC3_economic_normal",
                         "4\tC4_digital_disruption", "5\tD_social_security", "%"]
    assert "人工智能\t2\t4" in lines and lines.count("人工智能\t2\t4") == 1


def test_cntext_export_has_its_five_keys() -> None:
    import yaml

    data = yaml.safe_load(export_lexicon(load_lexicon(SMALL), "cntext").text)
    assert list(data) == ["Name", "Desc", "Refer", "Category", "Dictionary"]
    assert data["Category"] == list(data["Dictionary"])
    assert data["Dictionary"]["C4_digital_disruption"] == ["人工智能", "数字鸿沟"]


def test_import_turns_a_trailing_wildcard_into_its_prefix_and_others_into_patterns() -> None:
    lex = import_lexicon("%\n1\tP4_technology\n%\n数字*\t1\n智?社保\t1\n", "liwc")
    [literal, pattern] = lex.category("P4_technology").terms
    assert (literal.text, literal.pattern) == ("数字", None)
    assert (pattern.text, pattern.pattern) == ("智?社保", r"智\w社保")


def test_import_of_an_unknown_category_id_without_dimension_is_an_error() -> None:
    with pytest.raises(LexiconError, match="cannot tell the dimension of category 'misc'"):
        import_lexicon("misc: [社保]\n", "quanteda")


def test_import_of_a_cntext_dictionary_with_other_ids_takes_the_given_dimension() -> None:
    text = ("Name: 测试词典\nDesc: 两类\nRefer: 无\nCategory:\n- Big_Data\n- Cloud\n"
            "Dictionary:\n  Big_Data:\n  - 大数据\n  - 数据挖掘\n  Cloud:\n  - 云计算\n")
    lex = import_lexicon(text, "cntext", dimension="pathway")
    assert [(c.id, c.dimension, [t.text for t in c.terms]) for c in lex.categories] == [
        ("Big_Data", "pathway", ["大数据", "数据挖掘"]), ("Cloud", "pathway", ["云计算"])]
    assert lex.meta == {"title": "测试词典", "description": "两类", "source": "无"}


def test_import_of_a_liwc_term_with_an_undefined_category_names_the_line() -> None:
    with pytest.raises(LexiconError) as info:
        import_lexicon("%\n1\tF1_population\n%\n全覆盖\t1\n扩面\t7\n", "liwc")
    assert info.value.line == 5 and "category number '7'" in info.value.problem


@pytest.mark.parametrize("body", [
    "        definition: x\n        terms: {a: 1 ? , b: 2}\n",  # libyaml reads `1 ?` as a value
    "        definition: x\n        terms:\t[全覆盖]\n",  # libyaml accepts the tab
    "        definition: x\n        terms: [全覆盖]\n\ufeff\n",  # libyaml skips the inner BOM
])
def test_libyaml_and_the_pure_python_loader_report_the_same_problems(tmp_path: Path,
                                                                       body: str) -> None:
    # load_lexicon composes with libyaml when it can; where libyaml is more lenient than the
    # pure-Python loader, the pure-Python loader decides, as it always did
    import yaml

    from pipeline import lexicon

    text = HEAD.split("      - id: F1_population")[0] + (
        "      - id: F1_population\n        name_zh: 人口\n        name_en: population\n" + body)
    _, problems = parse_lexicon_text(text)
    pure = lexicon._Parser(text, None)
    pure.loader = yaml.SafeLoader(text)
    pure.parse()
    assert problems and [str(p) for p in problems] == [str(p) for p in sorted(
        pure.problems, key=lambda p: ({"error": 0, "warning": 1, "note": 2}[p.severity], p.line))]
    assert "YAML syntax error" in problems[0].message


def test_a_control_character_is_a_problem_with_its_line_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "ctl.yaml"
    bad.write_text("name: x\nversion: 1.0.0\ndescription: 社会\x01保障\n", encoding="utf-8")
    problems = validate_lexicon(bad)
    assert [(p.line, p.severity) for p in problems] == [(3, "error")]
    assert "U+0001" in problems[0].message and "Delete it" in problems[0].fix
    with pytest.raises(LexiconError, match=r"ctl\.yaml:3"):
        load_lexicon(bad)


def test_a_tag_that_does_not_fit_its_value_is_a_problem_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "tag.yaml"
    bad.write_text("name: x\nversion: !!int 退休\n", encoding="utf-8")
    problems = validate_lexicon(bad)
    assert any(p.line == 2 and "cannot be read as int" in p.message and p.severity == "error"
               for p in problems), problems
