"""Scores that mean what the paper means (issue 13, point 5): challenge cues and the
``framed`` column, the ``domain_window`` scope, formula flags, dominance per period,
formula shares and whole text beside social-security passages."""

from __future__ import annotations

import bisect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import compare, normalize
from pipeline.errors import LexiconError
from pipeline.ingest import load_corpus
from pipeline.lexicon import load_lexicon, parse_lexicon_text, to_yaml
from pipeline.match import Matcher
from pipeline.score import SCORE_COLUMNS, SCOPES, Scheme, score_document, window_sentences
from pipeline.segment import segment_text
from tests.conftest import CharTokenizer, REPO, shared_corpus

LEX = """\
schema: 1
name: meaning-test
version: 0.1.0
challenge_cues:
  - cue: 挑战
    note: a challenge
  - 压力
dimensions:
  pathway:
    categories:
      - id: P1_leadership
        name_zh: 组织领导
        name_en: Leadership
        definition: Leadership.
        terms:
          - term: 以人民为中心
            formula: true
            note: a fixed formula
          - 党的领导
  challenge:
    categories:
      - id: C1_demographic
        name_zh: 人口结构转变
        name_en: Demographic change
        definition: Ageing.
        terms:
          - 老龄化
      - id: C3_economic_normal
        name_zh: 经济新常态
        name_en: New normal
        definition: Slowdown.
        terms:
          - 新常态
  domain:
    categories:
      - id: D_social_security
        name_zh: 社会保障
        name_en: Social security
        definition: The system.
        terms:
          - 养老保险
"""


def _lexicon(text: str = LEX):  # type: ignore[no-untyped-def]
    lex, problems = parse_lexicon_text(text, path=Path("t.yaml"))
    assert lex is not None, [str(p) for p in problems]
    return lex


def _score(text: str, lex=None):  # type: ignore[no-untyped-def]
    lex = lex or _lexicon()
    seg = segment_text(CharTokenizer(), text)
    return score_document(seg, Matcher(lex).find(text), Scheme.from_lexicon(lex),
                          text_length=len(text))


def _row(ds, scope: str, category: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    for r in ds.scores:
        if r[0] == scope and r[2] == category:
            return dict(zip(SCORE_COLUMNS[1:], r, strict=True))
    raise AssertionError(f"no row {scope} {category}")


# --------------------------------------------------------------------------- lexicon


def test_cues_and_formula_flags_are_read_and_round_trip() -> None:
    lex = _lexicon()
    assert [(c.text, c.note, c.line) for c in lex.challenge_cues] == [
        ("挑战", "a challenge", 5), ("压力", "", 7)]
    p1 = lex.category("P1_leadership")
    assert [(t.text, t.formula) for t in p1.terms] == [("以人民为中心", True), ("党的领导", False)]
    again = _lexicon(to_yaml(lex))
    assert again.hash == lex.hash
    assert [c.text for c in again.challenge_cues] == ["挑战", "压力"]


def test_cues_and_formulas_change_the_hash_only_when_present() -> None:
    base = _lexicon()
    no_flag = _lexicon(LEX.replace("            formula: true\n", ""))
    false_flag = _lexicon(LEX.replace("formula: true", "formula: false"))
    no_cues = _lexicon(re.sub(r"challenge_cues:\n(?:  .*\n)+", "", LEX))
    assert no_cues.challenge_cues == ()
    assert len({base.hash, no_flag.hash, no_cues.hash}) == 3
    assert false_flag.hash == no_flag.hash  # false is the default: no change


@pytest.mark.parametrize(("edit", "line", "words"), [
    (("formula: true", "formula: 1"), 17, "formula '1' is not true or false"),
    (("  - 压力\n", "  - 压力\n  - 挑战\n"), 8, "cue '挑战' is listed twice (first at line 5)"),
    (("    note: a challenge\n", "    why: a challenge\n"), 6, "unknown key 'why'"),
    (("  - 压力\n", "  - ' 压力'\n"), 7, "surrounding spaces"),
    (("  - cue: 挑战\n    note: a challenge\n  - 压力\n", "  []\n"), 5,
     "challenge_cues must be a non-empty list"),
])
def test_bad_cues_and_formulas_are_errors_with_file_and_line(
        tmp_path: Path, edit: tuple[str, str], line: int, words: str) -> None:
    assert edit[0] in LEX
    path = tmp_path / "bad.yaml"
    path.write_text(LEX.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(LexiconError) as err:
        load_lexicon(path)
    message = str(err.value)
    assert words in message
    assert f"{path}:{line}:" in message


def test_project_lexicon_has_documented_cues_and_formulas() -> None:
    lex = load_lexicon(REPO / "lexicons" / "mobilize.yaml")
    cues = {c.text: c.note for c in lex.challenge_cues}
    assert {"挑战", "压力", "风险", "冲击", "难题", "短板", "应对"} <= set(cues)
    assert all(cues.values())  # every cue has a note
    formulas = {(t.category, t.text): t.note for t in lex.terms() if t.formula}
    for key in [("P1_leadership", "以习近平同志为核心的党中央"), ("P2_philosophy", "以人民为中心"),
                ("F5_peaceful_development", "人类命运共同体"),
                ("P3_co_governance", "共建共治共享")]:
        assert key in formulas and "formula" in formulas[key]
    # what is not a formula stays unmarked: the feature itself, and plain leadership
    assert ("F2_common_prosperity", "共同富裕") not in formulas
    assert ("P1_leadership", "党的领导") not in formulas


# --------------------------------------------------------------------------- scoring


def test_framed_counts_challenge_hits_whose_clause_holds_a_cue() -> None:
    text = ("人口老龄化带来严峻挑战。老龄化程度加深。坚持以人民为中心,迎接挑战。\n"
            "适应新常态。新常态下压力加大,老龄化也是。")
    ds = _score(text)
    c1, c3, p1 = (_row(ds, "all", c) for c in ("C1_demographic", "C3_economic_normal",
                                               "P1_leadership"))
    # C1: sentence 1 holds the cue in the hit's clause; sentence 5's cue 压力 is in the
    # clause before 老龄化也是 (the sentence rule counted it: 2)
    assert (c1["count"], c1["framed"]) == (3, 1)
    assert (c3["count"], c3["framed"]) == (2, 1)  # 新常态下压力加大: same clause
    assert (p1["count"], p1["framed"]) == (1, 0)  # a pathway is never framed
    assert _row(ds, "all", "D_social_security")["framed"] == 0


@pytest.mark.parametrize(("text", "framed"), [
    ("老龄化带来挑战,养老保险扩面。", 1),      # cue in the hit's clause
    ("面对挑战,老龄化加深。", 0),              # cue in the clause before
    ("老龄化加深,要迎接挑战。", 0),            # cue in the clause after
    ("老龄化加深;迎接挑战。", 0),              # ; ends the sentence
    ("形势:老龄化压力加大。", 1),              # : separates, the cue is after it
    ("老龄化压力:加大投入。", 1),
    ("老龄化人口达1,000万,压力加大。", 0),   # the comma between digits does not separate,
    ("老龄化人口达1,000万人压力加大。", 1),   # so the clause runs across 1,000
    ("老龄化加深，压力加大。", 0),             # full-width comma (unnormalised text)
    ("老龄化、新常态带来挑战。", 1),           # 、 lists within a clause
])
def test_framed_looks_for_the_cue_in_the_hits_clause(text: str, framed: int) -> None:
    ds = _score(text)
    row = _row(ds, "all", "C1_demographic")
    assert (row["count"], row["framed"]) == (1, framed)


def test_kunnan_is_no_longer_a_cue_in_the_project_lexicon() -> None:
    lex = load_lexicon(REPO / "lexicons" / "mobilize.yaml")
    assert "困难" not in {c.text for c in lex.challenge_cues}
    assert {"挑战", "压力", "应对"} <= {c.text for c in lex.challenge_cues}
    # groups in need (the 2.1.0 sheet's false framings of C2) are not framed any more
    ds = _score("帮扶灵活就业困难人员。", lex)
    assert (_row(ds, "all", "C2_social_change")["count"],
            _row(ds, "all", "C2_social_change")["framed"]) == (1, 0)
    ds = _score("灵活就业人员增多,就业压力加大。", lex)  # the cue in the other clause
    assert (_row(ds, "all", "C2_social_change")["count"],
            _row(ds, "all", "C2_social_change")["framed"]) == (1, 0)
    ds = _score("灵活就业人员增多带来就业压力。", lex)
    assert (_row(ds, "all", "C2_social_change")["count"],
            _row(ds, "all", "C2_social_change")["framed"]) == (1, 1)


def test_a_cue_inside_the_term_frames_it_and_no_cues_means_zero() -> None:
    lex = _lexicon(LEX.replace("          - 新常态\n", "          - 新常态\n          - 下行压力\n"))
    ds = _score("经济下行压力。", lex)
    assert (_row(ds, "all", "C3_economic_normal")["count"],
            _row(ds, "all", "C3_economic_normal")["framed"]) == (1, 1)
    plain = _lexicon(re.sub(r"challenge_cues:\n(?:  .*\n)+", "", LEX))
    ds = _score("人口老龄化带来严峻挑战。", plain)
    assert (_row(ds, "all", "C1_demographic")["count"],
            _row(ds, "all", "C1_demographic")["framed"]) == (1, 0)


def test_window_scope_is_domain_sentences_and_their_neighbours_in_the_paragraph() -> None:
    text = "老龄化。养老保险。老龄化。新常态。\n老龄化。养老保险。\n老龄化。"
    # sentences: 0 C1 | 1 D | 2 C1 | 3 C3 ‖ 4 C1 | 5 D ‖ 6 C1
    assert window_sentences([1, 5], [0, 0, 0, 0, 1, 1, 2]) == {0, 1, 2, 4, 5}
    ds = _score(text)
    w = _row(ds, "domain_window", "C1_demographic")
    assert (w["count"], w["tokens"], w["sentences"], w["sentences_with"], w["paragraphs"],
            w["paragraphs_with"]) == (3, 17, 5, 3, 2, 2)
    assert _row(ds, "domain_window", "C3_economic_normal")["count"] == 0
    assert _row(ds, "domain_paragraphs", "C3_economic_normal")["count"] == 1
    assert _row(ds, "domain_sentences", "C1_demographic")["count"] == 0
    assert _row(ds, "all", "C1_demographic")["count"] == 4
    assert _row(ds, "domain_window", "D_social_security")["count"] == 2
    assert "domain_window" in SCOPES


def test_window_without_domain_hits_is_empty() -> None:
    ds = _score("老龄化。新常态。")
    w = _row(ds, "domain_window", "C1_demographic")
    assert (w["count"], w["tokens"], w["sentences"], w["rate_per_10k"]) == (0, 0, 0, 0.0)


def test_term_counts_carry_the_formula_flag() -> None:
    ds = _score("坚持以人民为中心。坚持党的领导。以人民为中心。")
    assert ds.term_counts == [("pathway", "P1_leadership", "以人民为中心", 2, 1),
                              ("pathway", "P1_leadership", "党的领导", 1, 0)]


# --------------------------------------------------------------------------- analysis


def _docs() -> pd.DataFrame:
    return pd.DataFrame({"doc_id": ["a", "b", "c", "d"], "year": [2001, 2002, 2011, 2012],
                         "period": ["P1", "P1", "P2", np.nan], "tokens": [100, 100, 100, 100]})


def _terms() -> pd.DataFrame:
    rows = [("a", "challenge", "C1_demographic", "老龄化", 3, 0),
            ("b", "challenge", "C1_demographic", "人口老龄化", 1, 0),
            ("c", "challenge", "C1_demographic", "老龄化", 1, 0),
            ("c", "challenge", "C1_demographic", "人口老龄化", 1, 0),
            ("a", "pathway", "P2_philosophy", "以人民为中心", 2, 1),
            ("c", "pathway", "P2_philosophy", "群众路线", 3, 0),
            ("d", "pathway", "P2_philosophy", "以人民为中心", 9, 1)]
    return pd.DataFrame(rows, columns=["doc_id", "dimension", "category", "term", "count",
                                       "formula"])


def test_dominance_per_period_flags_a_term_above_half() -> None:
    dom = compare.dominance_by_group(_docs(), _terms(), "period")
    got = [(r.group, r.category, r.n, r.top_term, r.top_share, r.dominated)
           for r in dom.itertuples()]
    assert got == [
        ("P1", "C1_demographic", 4, "老龄化", 0.75, True),
        ("P1", "P2_philosophy", 2, "以人民为中心", 1.0, True),
        ("P2", "C1_demographic", 2, "人口老龄化", 0.5, False),  # a tie: first in sort order
        ("P2", "P2_philosophy", 3, "群众路线", 1.0, True),
    ]  # document d has no period: left out


def test_formula_share_per_period() -> None:
    fs = compare.formula_shares(_docs(), _terms(), "period")
    got = [(r.group, r.category, r.n, r.formula_count, r.formula_share, r.formula_terms)
           for r in fs.itertuples()]
    assert got == [("P1", "P2_philosophy", 2, 2, 1.0, "以人民为中心"),
                   ("P2", "P2_philosophy", 3, 0, 0.0, "")]
    whole = compare.formula_shares(_docs(), _terms(), None)
    assert [(r.n, r.formula_count) for r in whole.itertuples()] == [(14, 11)]
    with pytest.raises(Exception, match="no formula column"):
        compare.formula_shares(_docs(), _terms().drop(columns="formula"), None)


def test_framed_shares_and_wilson_interval_match_statsmodels() -> None:
    scores = pd.DataFrame({
        "doc_id": ["a", "b", "a", "a"], "scope": ["all", "all", "domain_window", "all"],
        "dimension": ["challenge", "challenge", "challenge", "feature"],
        "category": ["C1_demographic"] * 3 + ["F1_population"],
        "count": [6, 4, 2, 5], "framed": [3, 1, 2, 0]})
    fr = compare.framed_shares(scores)
    assert [(r.scope, r.category, r.n, r.framed) for r in fr.itertuples()] == [
        ("all", "C1_demographic", 10, 4), ("domain_window", "C1_demographic", 2, 2)]
    from statsmodels.stats.proportion import proportion_confint

    lo, hi = proportion_confint(4, 10, alpha=0.05, method="wilson")
    assert fr.loc[0, "ci_low"] == pytest.approx(lo, abs=1e-12)
    assert fr.loc[0, "ci_high"] == pytest.approx(hi, abs=1e-12)


def test_side_by_side_marks_the_domain_circular() -> None:
    docs = _docs()
    rows = []
    for d in docs["doc_id"]:
        for scope, toks, cnt in (("all", 100, 4), ("domain_window", 20, 1)):
            for dim, cat in (("feature", "F1_population"), ("domain", "D_social_security")):
                rows.append((d, scope, dim, cat, cnt, toks))
    scores = pd.DataFrame(rows, columns=["doc_id", "scope", "dimension", "category", "count",
                                         "tokens"])
    side = compare.scope_side_by_side(docs, scores, seed=1, n_boot=50)
    f1 = side[side["category"] == "F1_population"].iloc[0]
    assert (f1["rate_all"], f1["rate_ss"], f1["ss_share"], f1["circular"]) == \
        (400.0, 500.0, 0.25, False)
    d = side[side["category"] == "D_social_security"].iloc[0]
    assert d["circular"] and np.isnan(d["rate_ss"]) and np.isnan(d["ss_share"])
    assert d["rate_all"] == 400.0


# --------------------------------------------------------------------------- real corpus


def test_window_lies_between_sentences_and_all_and_framed_is_the_cue_rule() -> None:
    lex = load_lexicon(REPO / "lexicons" / "mobilize.yaml")
    scheme, matcher = Scheme.from_lexicon(lex), Matcher(lex)
    corpus = load_corpus(shared_corpus("social-security-policy-zh"), warn=False)
    cue = re.compile("|".join(map(re.escape, scheme.cues)))
    framed_total = 0
    for doc in corpus.documents:
        hits = matcher.find(doc.text)
        ds = score_document(segment_text(CharTokenizer(), doc.text), hits, scheme,
                            text_length=len(doc.text))
        rows = {(r[0], r[2]): dict(zip(SCORE_COLUMNS[1:], r, strict=True)) for r in ds.scores}
        for _dim, cat in scheme.categories:
            s, w, p, a = (rows[(sc, cat)] for sc in ("domain_sentences", "domain_window",
                                                     "domain_paragraphs", "all"))
            for col in ("count", "tokens", "sentences", "sentences_with"):
                assert s[col] <= w[col] <= p[col] <= a[col], (doc.doc_id, cat, col)
            assert 0 <= a["framed"] <= a["count"]
            if a["dimension"] != "challenge":
                assert a["framed"] == 0
        # framed, recomputed from normalize.sentences, the clause cut by string search and
        # a plain substring search for the cues
        starts, sents, pos = [], [], 0
        for pi, para in enumerate(doc.text.split("\n")):
            pos += 1 if pi else 0
            for sent in normalize.sentences(para):
                starts.append(pos)
                sents.append(sent)
                pos += len(sent)
        expected = sum(1 for h in hits if h.dimension == "challenge"
                       and cue.search(_clause(sents, starts, h.start, h.end)))
        got = sum(r["framed"] for (sc, _c), r in rows.items() if sc == "all")
        assert got == expected, doc.doc_id
        framed_total += got
    assert framed_total > 0


def _clause(sents: list[str], starts: list[int], start: int, end: int) -> str:
    si = bisect.bisect_right(starts, start) - 1
    sent, a, b = sents[si], start - starts[si], end - starts[si]

    def sep(i: int) -> bool:
        ch = sent[i]
        if ch in ";:":
            return True
        return ch == "," and not (0 < i < len(sent) - 1 and sent[i - 1].isdigit()
                                  and sent[i + 1].isdigit())

    lo = max((i + 1 for i in range(a) if sep(i)), default=0)
    hi = min((i for i in range(max(b, lo), len(sent)) if sep(i)), default=len(sent))
    return sent[lo:hi]


def _run_tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    docs = _docs()
    rows = []
    for d in docs["doc_id"]:
        for scope, toks in (("all", 100), ("domain_sentences", 10), ("domain_paragraphs", 40),
                            ("domain_window", 20)):
            rows.append((d, scope, "challenge", "C1_demographic", 2, toks, 1))
            rows.append((d, scope, "domain", "D_social_security", 1, toks, 0))
    scores = pd.DataFrame(rows, columns=["doc_id", "scope", "dimension", "category", "count",
                                         "tokens", "framed"])
    return docs, scores, _terms()


def test_report_section_shows_side_by_side_framing_dominance_and_formulas() -> None:
    from pipeline import report_meaning

    docs, scores, terms = _run_tables()
    parts = report_meaning.meaning_parts(docs, scores, terms, seed=3, n_boot=20)
    assert sorted(parts.files) == ["meaning_dominance_by_period", "meaning_formula_shares",
                                   "meaning_framed_challenges", "meaning_whole_vs_ss"]
    text = "\n".join(parts.text)
    assert "circular" in text
    assert "P1: C1_demographic — 老龄化 75% of n = 4" in text  # dominance beside its period
    assert "P1: P2_philosophy 100% (n = 2)" in text  # formulas above half
    side = parts.files["meaning_whole_vs_ss"]
    assert list(side.loc[side["circular"], "category"]) == ["D_social_security"]
    fr = parts.files["meaning_framed_challenges"]
    assert [(r.scope, r.n, r.framed) for r in fr.itertuples()] == [("all", 8, 4),
                                                                 ("domain_window", 8, 4)]


def test_report_section_asks_for_a_rerun_on_an_old_run() -> None:
    from pipeline import report_meaning

    docs, scores, terms = _run_tables()
    old = scores[scores["scope"] != "domain_window"].drop(columns="framed")
    parts = report_meaning.meaning_parts(docs, old, terms.drop(columns="formula"), seed=3,
                                         n_boot=20)
    assert "re-run `mobilize run`" in parts.text[0]
    assert sorted(parts.files) == ["meaning_dominance_by_period"]


def test_compare_differences_side_by_side_blank_the_domain() -> None:
    cols = ["dimension", "category", "rate_a", "rate_b", "difference", "ci_low", "ci_high"]
    whole = pd.DataFrame([("feature", "F1_population", 3.0, 1.0, 2.0, 0.5, 3.5),
                          ("domain", "D_social_security", 9.0, 8.0, 1.0, -1.0, 3.0)],
                         columns=cols)
    ss = pd.DataFrame([("feature", "F1_population", 30.0, 10.0, 20.0, 5.0, 35.0),
                       ("domain", "D_social_security", 90.0, 80.0, 10.0, -10.0, 30.0)],
                      columns=cols)
    side = compare.differences_side_by_side(whole, ss)
    assert list(side["category"]) == ["F1_population", "D_social_security"]
    assert side.loc[0, ["difference", "difference_ss", "circular"]].tolist() == [2.0, 20.0,
                                                                                False]
    assert side.loc[1, "circular"] and np.isnan(side.loc[1, "rate_a_ss"])
