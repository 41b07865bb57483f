"""The recall aid: a classifier per category finds the sentences the lexicon misses, with the
matched terms masked out of its training text."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import MobilizeError
from pipeline.ingest import Document
from pipeline.lexicon import load_lexicon
from pipeline.misses import (
    MASK,
    candidates_csv,
    compare_with_word2vec,
    find_misses,
    g2,
    masked,
    ngrams,
    sentences_of,
    sheet_csv,
)

SMALL = Path(__file__).parent / "fixtures" / "lexicons" / "small.yaml"


def test_ngrams_never_cross_punctuation_or_a_mask_and_hold_a_han_character() -> None:
    assert ngrams("甲乙,丙丁", 2, 2) == ["甲乙", "丙丁"]
    assert ngrams(f"甲乙{MASK}丙丁戊", 2, 3) == ["甲乙", "丙丁", "丁戊", "丙丁戊"]
    assert ngrams("2025年", 2, 2) == ["5年"]  # 20 and 02 hold no Han character or letter


def test_masked_cuts_the_text_at_each_span() -> None:
    assert masked("适应经济新常态要求", [(2, 7)]) == f"适应{MASK}要求"
    assert masked("甲乙丙丁", [(0, 2), (1, 3)]) == f"{MASK}{MASK}丁"  # overlaps clipped


def test_sentences_keep_their_offsets_in_the_document() -> None:
    doc = Document("d", "d.txt", "第一句话很长很长。短。\n第二段的句子也很长!", "", "2020", 2020, {})
    sents = sentences_of(doc, "c")
    assert [(s.start, s.text) for s in sents] == [(0, "第一句话很长很长。"), (12, "第二段的句子也很长!")]
    for s in sents:
        assert doc.text[s.start:s.start + len(s.text)] == s.text


def test_g2_is_scipys_log_likelihood_statistic() -> None:
    from scipy.stats import chi2_contingency

    a, t, b, r = 7, 20, 30, 500
    ref = chi2_contingency([[a, t - a], [b, r - b]], correction=False,
                           lambda_="log-likelihood")[0]
    assert float(g2(np.array([a]), t, np.array([b]), r)[0]) == pytest.approx(ref)


POSITIVE = ["适应经济新常态,增速换挡需要耐心。", "经济新常态下结构优化持续推进。",
            "认识经济新常态,把握增速换挡规律。", "引领经济新常态,促进结构优化升级。",
            "经济新常态意味着增速换挡和结构优化。"]
MISSED = ["今年增速换挡压力明显加大。", "各地要主动适应增速换挡。", "产业结构优化取得新进展。",
          "增速换挡期要稳住就业。", "坚定不移推动结构优化。"]
FILLER = ["加强农田水利建设保障粮食安全。", "推进文化事业繁荣发展提高质量。",
          "加快城市轨道交通建设改善出行。", "完善国防动员体系增强国防实力。",
          "推动对外贸易稳定增长扩大进口。", "深化教育改革办好人民满意教育。",
          "保护历史文化名城和传统村落。", "做好防汛抗旱和森林防火工作。",
          "全年经济运行总体平稳向好。"]
# sentences that share only a piece of a term (常态 of 经济新常态), each once
PIECES = ["监管执法实现常态长效。", "巡查工作保持常态开展。", "应急演练形成常态机制。",
          "督导检查成为常态做法。", "走访慰问坚持常态推进。"]


def _corpus() -> list[tuple[str, Document]]:
    """C3 sentences say 经济新常态 with 增速换挡 or 结构优化; five sentences say 增速换挡 or
    结构优化 without any term (what the lexicon misses); the rest is about other things."""
    docs = []
    for i in range(40):
        lines = [POSITIVE[i % 5]] if i % 2 == 0 else []
        lines += [FILLER[(i + k) % len(FILLER)] for k in range(4)]
        if i % 8 == 3:
            lines.append(MISSED[i // 8])
        if i % 8 == 5:
            lines.append(PIECES[i // 8])
        docs.append(("toy", Document(f"d{i:02d}", f"d{i:02d}.txt", "\n".join(lines), "",
                                      str(2000 + i % 20), 2000 + i % 20, {})))
    return docs


def test_the_top_unmatched_sentences_are_the_ones_that_read_like_matched_ones() -> None:
    lex = load_lexicon(SMALL)
    result = find_misses(_corpus(), lex, categories=["C3_economic_normal"], top=5, seed=1)
    [cat] = result.categories
    assert cat.positives == 20  # one 经济新常态 sentence in every other document
    missed = [f.sentence.doc_id for f in cat.findings]
    # the five sentences with 增速换挡 / 结构优化 and no term come first
    assert sorted(missed) == ["d03", "d11", "d19", "d27", "d35"]
    assert all("增速换挡" in f.sentence.text or "结构优化" in f.sentence.text for f in cat.findings)
    # the masked terms never drive a score nor become a candidate, and a sentence that shares
    # only a piece of a term (常态) is not listed: unmasked, 常态 would carry the model
    assert not any("常态" in f.sentence.text for f in cat.findings)
    drivers = {g for f in cat.findings for g, _w in f.drivers}
    grams = drivers | {g for g, _n, _s in cat.candidates}
    assert not any(g in "经济新常态" for g in grams)
    assert {"增速换挡", "结构优化"} <= {g for g, _n, _s in cat.candidates}
    # what the model learned: the context of the terms, never a piece of a term
    learned = [g for g, _w in cat.learned]
    assert learned and not any(g in "经济新常态" for g in learned)


def test_the_same_seed_gives_the_same_sheet() -> None:
    lex = load_lexicon(SMALL)
    one = sheet_csv(find_misses(_corpus(), lex, categories=["C3_economic_normal"], top=8, seed=3))
    two = sheet_csv(find_misses(_corpus(), lex, categories=["C3_economic_normal"], top=8, seed=3))
    assert one == two
    rows = list(csv.DictReader(one.splitlines()))
    assert [r["rank"] for r in rows] == [str(i) for i in range(1, 9)]
    assert rows[0]["accept"] == "" and rows[0]["source"] == "mobilize lexicon misses on toy"


def test_candidates_compared_with_word2vec_suggestions_with_an_equal_budget() -> None:
    lex = load_lexicon(SMALL)
    result = find_misses(_corpus(), lex, categories=["C3_economic_normal"], top=5, seed=1)
    suggestions = {"C3_economic_normal": ["增速换挡", "下滑"]}
    [cmp] = compare_with_word2vec(result, lex, suggestions)
    first = [g for g, _n, _s in result.categories[0].candidates][:2]
    expected = sum(1 for g in first if not ("增速换挡" in g or g in "增速换挡" or "下滑" in g
                                            or g in "下滑"))
    assert (cmp.suggestions, cmp.compared, cmp.not_in_word2vec) == (2, 2, expected)
    table = list(csv.DictReader(candidates_csv(result, lex, suggestions).splitlines()))
    row = next(r for r in table if r["ngram"] == "增速换挡")
    assert row["word2vec"] == "增速换挡" and row["part_of_term"] == ""


def test_an_unknown_category_is_an_error() -> None:
    with pytest.raises(MobilizeError, match="no category"):
        find_misses(_corpus(), load_lexicon(SMALL), categories=["X9"])


def test_overlapping_ngrams_of_the_same_sentences_join_into_their_phrase() -> None:
    from pipeline.misses import assemble

    texts = ["坚持稳中求进工作总基调。", "稳中求进工作总基调不动摇。", "工作总结。"]
    found = [("中求进工", 2, 9.0), ("求进工作", 2, 8.0), ("进工作总", 2, 7.0), ("工作总", 3, 5.0),
             ("工作总基", 2, 4.5), ("作总基调", 2, 4.0), ("稳中求进", 2, 3.0)]
    # windows join left and right; 工作总 is held by three sentences, so it stays apart
    assert assemble(found, texts) == [("稳中求进工作总基调", 2, 9.0), ("工作总", 3, 5.0)]
    # two chains that end in the same phrase give it once
    assert assemble([("甲乙丙", 2, 3.0), ("乙丙丁", 2, 2.0), ("甲乙丙丁", 2, 1.0)],
                    ["甲乙丙丁", "甲乙丙丁戊"]) == [("甲乙丙丁", 2, 3.0)]
    # a join no sentence holds as a whole is not made
    assert assemble([("甲乙丙", 2, 2.0), ("乙丙丁", 2, 1.0)], ["甲乙丙", "乙丙丁"]) == [
        ("甲乙丙", 2, 2.0), ("乙丙丁", 2, 1.0)]


def test_misses_command_writes_a_sheet_whose_accepted_rows_become_terms(tmp_path: Path) -> None:
    import shutil

    from typer.testing import CliRunner

    from pipeline.cli import _register
    from pipeline.cli._apps import app

    corpus = tmp_path / "toy"
    corpus.mkdir()
    for _name, doc in _corpus():
        (corpus / f"{doc.doc_id}-{doc.year}.txt").write_text(doc.text + "\n", encoding="utf-8")
    lexicon = tmp_path / "small.yaml"
    shutil.copy(SMALL, lexicon)
    _register()
    runner = CliRunner()
    out = tmp_path / "misses.csv"
    args = ["lexicon", "misses", "--corpus", str(corpus), "--category", "C3_economic_normal",
            "--top", "5", "--seed", "1", "--lexicon", str(lexicon), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    first = out.read_text(encoding="utf-8")
    assert runner.invoke(app, args).exit_code == 0 and out.read_text(encoding="utf-8") == first
    assert (tmp_path / "misses-candidates.csv").is_file()
    rows = list(csv.DictReader(first.splitlines()))
    assert len(rows) == 5 and all(r["category"] == "C3_economic_normal" for r in rows)
    # the researcher writes a term on a row and accepts it
    rows[0]["term"], rows[0]["accept"] = "增速换挡", "yes"
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    new = tmp_path / "small-2.yaml"
    result = runner.invoke(app, ["lexicon", "accept", str(out), "--lexicon", str(lexicon),
                                 "--out", str(new)])
    assert result.exit_code == 0, result.output
    cat = next(c for c in load_lexicon(new).categories if c.id == "C3_economic_normal")
    assert "增速换挡" in [t.text for t in cat.terms]
