"""The blind validation sheets of lexicons/validation/ (issue 13, points 4 and 5):
framing_cues.py (framing of challenge mentions) and candidates.py (the recall aid against
Word2Vec). Tiny coded sheets with known answers; the drawing on inline texts."""

from __future__ import annotations

import csv
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.proportion import proportion_confint

from pipeline.errors import MobilizeError
from tests.conftest import REPO


FOLDER = REPO / "lexicons" / "validation"
# the scripts import their shared module, sheets.py, as a sibling (as when run as scripts)
if str(FOLDER) not in sys.path:
    sys.path.insert(0, str(FOLDER))


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"validation_{name}", FOLDER / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


framing = _load("framing_cues")
candidates = _load("candidates")


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def _table(text: str, first: str) -> list[list[str]]:
    """The rows of the Markdown table whose header starts with ``| first |``."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith(f"| {first} |"):
            inside = True
            continue
        if inside:
            if not line.startswith("|"):
                break
            if not line.startswith("| ---"):
                out.append([c.strip() for c in line.strip("|").split("|")])
    return out


# --------------------------------------------------------------------------- framing


def _framing_key(tmp: Path) -> Path:
    # 6 lines: C1 framed L1-L3, C1 unframed L4-L5, C3 framed L6
    return _csv(tmp / "f-key.csv", ["line_id", "stratum", "cues", "corpus", "doc_id", "year"],
                [["L1", "framed", "挑战", "c", "d", "2020"], ["L2", "framed", "应对", "c", "d", ""],
                 ["L3", "framed", "风险", "c", "d", ""], ["L4", "unframed", "", "c", "d", ""],
                 ["L5", "unframed", "", "c", "d", ""], ["L6", "framed", "压力", "c", "d", ""]])


def _framing_sheet(tmp: Path, name: str, codes: list[str]) -> Path:
    cats = ["C1_demographic"] * 5 + ["C3_economic_normal"]
    # rows in another order than the key: the join is by line_id
    rows = [[f"L{i}", cats[i - 1], "老龄化", "左", "老龄化", "右", codes[i - 1], ""]
            for i in (6, 5, 4, 3, 2, 1)]
    return _csv(tmp / name, list(framing.BLIND_COLUMNS), rows)


def test_framing_precision_joins_blind_sheets_with_the_key(tmp_path: Path) -> None:
    key = _framing_key(tmp_path)
    a = _framing_sheet(tmp_path, "coder1.csv",
                       ["framed", "framed", "not framed", "no", "framed", "framed"])
    b = _framing_sheet(tmp_path, "coder2.csv",
                       ["framed", "not framed", "not framed", "no", "not framed", "Framed"])
    out = framing.precision(key, [a, b])
    rows = {(r[0], r[1], r[2]): r[3:] for r in _table(out, "coder")}
    # coder 1: C1 framed = L1, L2, L3 -> framed, framed, not framed: 2 of 3
    lo, hi = proportion_confint(2, 3, alpha=0.05, method="wilson")
    assert rows[("coder1.csv", "framed", "C1_demographic")] == [
        "3", "2", "0.67", f"[{lo:.2f}, {hi:.2f}]"]
    # coder 1: C1 unframed = L4 (no), L5 (framed): 1 of 2
    assert rows[("coder1.csv", "unframed", "C1_demographic")][:3] == ["2", "1", "0.50"]
    assert rows[("coder1.csv", "framed", "all")][:2] == ["4", "3"]
    # coder 2: C1 framed: L1 only; C3 framed: L6 ("Framed" is read case-blind)
    assert rows[("coder2.csv", "framed", "C1_demographic")][:2] == ["3", "1"]
    assert rows[("coder2.csv", "framed", "C3_economic_normal")][:3] == ["1", "1", "1.00"]
    assert ("coder2.csv", "unframed", "C3_economic_normal") not in rows  # no such lines
    kappa = {r[1]: r[2:] for r in _table(out, "coders")}
    x = ["framed", "framed", "not framed", "not framed", "framed", "framed"]
    y = ["framed", "not framed", "not framed", "not framed", "not framed", "framed"]
    assert kappa["all"] == ["6", f"{4 / 6:.2f}", f"{cohen_kappa_score(x, y):.2f}"]
    assert kappa["all"][2] == "0.40"  # po = 4/6, pe = 4/6*2/6 + 2/6*4/6 = 4/9
    assert kappa["C3_economic_normal"] == ["1", "1.00", "n/a (one label only)"]


@pytest.mark.parametrize(("codes", "message"), [
    (["framed", "maybe", "no", "no", "no", "no"], "coder1.csv:6: judgement 'maybe' of L2"),
    (["framed", "framed", "", "no", "no", "no"], "coder1.csv:5: judgement '' of L3"),
])
def test_framing_precision_stops_on_a_bad_judgement(tmp_path: Path, codes: list[str],
                                                     message: str) -> None:
    key = _framing_key(tmp_path)
    sheet = _framing_sheet(tmp_path, "coder1.csv", codes)  # L6 on line 2 ... L1 on line 7
    with pytest.raises(MobilizeError, match=re.escape(message)):
        framing.precision(key, [sheet])


def test_framing_precision_stops_on_a_sheet_of_another_key(tmp_path: Path) -> None:
    key = _framing_key(tmp_path)
    sheet = _csv(tmp_path / "c.csv", list(framing.BLIND_COLUMNS),
                 [["L9", "C1_demographic", "t", "", "t", "", "framed", ""]])
    with pytest.raises(MobilizeError, match=r"c\.csv:2: line_id 'L9' is not in the key"):
        framing.precision(key, [sheet])
    partial = _csv(tmp_path / "p.csv", list(framing.BLIND_COLUMNS),
                   [["L1", "C1_demographic", "t", "", "t", "", "framed", ""]])
    with pytest.raises(MobilizeError, match=r"5 lines of the key are not on the sheet"):
        framing.precision(key, [partial])
    assert framing.main(["precision", "--key", str(key), str(partial)]) == 2


def test_framing_sample_is_blind_shuffled_and_balanced() -> None:
    rows = [{"stratum": s, "cues": "挑战" if s == "framed" else "", "category": c,
             "term": "t", "corpus": "x", "doc_id": f"{s}{c}{i}", "year": "",
             "left": "左" * 80, "match": "t", "right": "右" * 80}
            for s in ("framed", "unframed") for c in ("C1", "C2") for i in range(5)]
    rows += [{**rows[0], "category": "C3", "doc_id": "only"}]  # a cell of one line
    blind, key = framing.sample(rows, 3, seed=7)
    assert [b["line_id"] for b in blind] == [f"L{i:03d}" for i in range(1, 14)]
    assert [k["line_id"] for k in key] == [b["line_id"] for b in blind]
    assert all(set(b) == set(framing.BLIND_COLUMNS) for b in blind)  # no stratum, no cues
    assert all(len(b["left"]) == framing.CONTEXT == len(b["right"]) for b in blind)
    strata = [(k["stratum"], b["category"]) for b, k in zip(blind, key, strict=True)]
    assert sorted(strata) == sorted([(s, c) for s in ("framed", "unframed")
                                     for c in ("C1", "C2") for _ in range(3)]
                                    + [("framed", "C3")])
    assert strata != sorted(strata)  # shuffled, not grouped by stratum
    assert framing.sample(rows, 3, seed=7) == (blind, key)  # the seed fixes the sheet
    assert framing.sample(rows, 3, seed=8) != (blind, key)


def test_the_committed_framing_sheet_is_blind_and_matches_its_key() -> None:
    folder = REPO / "lexicons" / "validation"
    with (folder / "framing-cues-2.2.0-blind.csv").open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == framing.BLIND_COLUMNS
        blind = list(reader)
    with (folder / "framing-cues-2.2.0-key.csv").open(encoding="utf-8") as f:
        key = list(csv.DictReader(f))
    assert [b["line_id"] for b in blind] == [k["line_id"] for k in key]
    assert all(b["judgement"] == "" == b["note"] for b in blind)
    assert {k["stratum"] for k in key} == {"framed", "unframed"}
    # the key's stratum is the clause rule: a framed line has a cue, an unframed one none
    assert all(bool(k["cues"]) == (k["stratum"] == "framed") for k in key)


# --------------------------------------------------------------------------- candidates


def test_candidates_pool_at_an_equal_budget_per_category() -> None:
    suggest = [{"category": "C1", "term": t, "rank": str(r)}
               for r, t in ((2, "失智"), (1, "婚育"), (3, "高龄"))]
    suggest += [{"category": "C2", "term": "返乡", "rank": "1"}]
    misses = [{"category": "C1", "ngram": g, "part_of_term": p} for g, p in
              (("老龄", "人口老龄化"), ("高龄", ""), ("托育", ""), ("生育", ""), ("婴幼", ""))]
    misses += [{"category": "C2", "ngram": "稳岗", "part_of_term": ""},
               {"category": "C2", "ngram": "零工", "part_of_term": ""},
               {"category": "C3", "ngram": "降费", "part_of_term": ""}]  # no Word2Vec: budget 0
    pooled = candidates.budgeted(suggest, misses, per_category=2)
    # C1: Word2Vec's first 2 by rank (婚育, 失智); misses' first 2 not part of a term
    assert pooled == {("C1", "婚育"): {"word2vec"}, ("C1", "失智"): {"word2vec"},
                      ("C1", "高龄"): {"misses"}, ("C1", "托育"): {"misses"},
                      ("C2", "返乡"): {"word2vec"}, ("C2", "稳岗"): {"misses"}}
    pooled = candidates.budgeted(suggest, misses, per_category=3)
    assert pooled[("C1", "高龄")] == {"misses", "word2vec"}
    assert candidates.source_of(pooled[("C1", "高龄")]) == "both"
    assert ("C1", "生育") in pooled and ("C1", "婴幼") not in pooled
    # a category left out is left out of both sources
    pooled = candidates.budgeted(suggest, misses, per_category=2, exclude=["C2"])
    assert {c for c, _t in pooled} == {"C1"}


def test_candidate_kwic_lines_are_substrings_drawn_with_the_seed() -> None:
    texts = [("a", "1", "积极应对人口老龄化,发展普惠托育服务。\n托育机构"),
             ("a", "2", "托育"), ("b", "3", "没有"), ("b", "4", "婴幼儿托育服务体系和托育")]
    occ = candidates.occurrences(texts, "托育")
    assert occ == [(0, 14), (0, 20), (1, 0), (3, 3), (3, 10)]
    lines = candidates.kwic(texts, "托育", seed=1)
    assert len(lines) == 3 and lines == candidates.kwic(texts, "托育", seed=1)
    everything = {candidates.kwic(texts, "托育", seed=s)[0] for s in range(40)}
    # the context stays inside the paragraph
    assert everything <= {"积极应对人口老龄化,发展普惠【托育】服务。", "【托育】机构", "【托育】",
                          "婴幼儿【托育】服务体系和托育", "婴幼儿托育服务体系和【托育】"}
    assert candidates.kwic(texts, "没有的词", seed=1) == []


def _cand_files(tmp: Path, codes1: list[str], codes2: list[str]) -> tuple[Path, Path, Path]:
    #        id   category  candidate  source
    items = [("K1", "C1", "托育", "misses"), ("K2", "C1", "托育服务", "misses"),
             ("K3", "C1", "失智", "word2vec"), ("K4", "C1", "托", "word2vec"),
             ("K5", "C2", "稳岗", "both"), ("K6", "C2", "零工经济", "misses"),
             ("K7", "C2", "返乡", "word2vec")]
    key = _csv(tmp / "key.csv", ["candidate_id", "source"], [[i, s] for i, _c, _t, s in items])
    sheets = []
    for name, codes in (("coder1.csv", codes1), ("coder2.csv", codes2)):
        sheets.append(_csv(tmp / name, list(candidates.BLIND_COLUMNS),
                           [[i, c, t, "k1", "k2", "", j, ""]
                            for (i, c, t, _s), j in zip(items, codes, strict=True)]))
    return key, sheets[0], sheets[1]


def test_candidate_results_count_validated_terms_per_source(tmp_path: Path) -> None:
    c1 = ["term", "term", "term", "no", "term", "term", "no"]
    c2 = ["term", "no", "no", "no", "term", "term", "term"]
    key, a, b = _cand_files(tmp_path, c1, c2)
    out = candidates.results(key, [a, b])
    per = {(r[0], r[1]): r[2:] for r in _table(out, "coder")}
    # coder 1: misses only K1 K2 K6 all term; Word2Vec only K3 (term) K4 (no) K7 (no); both K5
    assert per[("coder1.csv", "misses only")][:2] == ["3", "3"]
    assert per[("coder1.csv", "Word2Vec only")][:2] == ["3", "1"]
    assert per[("coder1.csv", "both")][:2] == ["1", "1"]
    assert per[("coder1.csv", "misses (all)")][:2] == ["4", "4"]
    lo, hi = proportion_confint(2, 4, alpha=0.05, method="wilson")
    assert per[("coder1.csv", "Word2Vec (all)")] == ["4", "2", f"0.50 [{lo:.2f}, {hi:.2f}]"]
    rows = [r for r in out.splitlines() if r.startswith("| coder1.csv | 4 (of 4)")]
    # misses only and validated: K1 托育, K2 托育服务, K6 零工经济; of those, K1 and K2 overlap
    # the Word2Vec candidate 托 of C1 (held by / holding), K6 overlaps nothing in C2
    assert rows == ["| coder1.csv | 4 (of 4) | 2 (of 4) | 3 | 1 |"]
    agreed = [r for r in out.splitlines() if r.startswith("| agreed (all coders: term) | 3 (of 4)")]
    # agreed: K1, K5, K6 -> from misses 3 of 4; from Word2Vec K5 only; misses only K1 K6
    assert agreed == ["| agreed (all coders: term) | 3 (of 4) | 1 (of 4) | 2 | 1 |"]
    kappa = {r[1]: r[2:] for r in _table(out, "coders")}
    assert kappa["all"] == ["7", f"{4 / 7:.2f}", f"{cohen_kappa_score(c1, c2):.2f}"]
    assert kappa["both"] == ["1", "1.00", "n/a (one label only)"]


def test_candidate_results_stop_on_bad_input(tmp_path: Path) -> None:
    key, a, _b = _cand_files(tmp_path, ["term", "yes", "no", "no", "no", "no", "no"],
                             ["no"] * 7)
    with pytest.raises(MobilizeError, match=re.escape("coder1.csv:3: judgement 'yes' of K2")):
        candidates.results(key, [a])
    bad_key = _csv(tmp_path / "bad.csv", ["candidate_id", "source"], [["K1", "lda"]])
    with pytest.raises(MobilizeError, match=re.escape("bad.csv:2: source 'lda'")):
        candidates.results(bad_key, [a])
    assert candidates.main(["results", "--key", str(bad_key), str(a)]) == 2


def test_the_committed_candidate_sheet_is_blind_and_matches_its_key() -> None:
    folder = REPO / "lexicons" / "validation"
    with (folder / "candidates-2.2.0-blind.csv").open(encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == candidates.BLIND_COLUMNS
        blind = list(reader)
    with (folder / "candidates-2.2.0-key.csv").open(encoding="utf-8") as f:
        key = list(csv.DictReader(f))
    assert [b["candidate_id"] for b in blind] == [k["candidate_id"] for k in key]
    assert {k["source"] for k in key} <= set(candidates.SOURCES)
    assert all(b["judgement"] == "" == b["note"] for b in blind)
    assert len({(b["category"], b["candidate"]) for b in blind}) == len(blind)  # deduped
    # every KWIC line shows the candidate in 【】
    assert all(f"【{b['candidate']}】" in b[c] for b in blind for c in ("kwic1", "kwic2", "kwic3")
               if b[c])
    # the sheet is the one its two source files give
    pooled = candidates.budgeted(
        candidates.read_sheet(folder / "candidates-2.2.0-suggest.csv", ("category", "term", "rank")),
        candidates.read_sheet(folder / "candidates-2.2.0-misses-candidates.csv",
                         ("category", "ngram", "part_of_term")),
        10, ["frame_chinese_modernization"])
    assert {(b["category"], b["candidate"]): k["source"] for b, k in zip(blind, key, strict=True)} \
        == {c: candidates.source_of(s) for c, s in pooled.items()}
