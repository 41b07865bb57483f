"""The report's "What the scores mean" section (issue 13, point 5).

Pure: from a run's tables it builds the section's prose and tables; ``pipeline.report``
wraps them in a ``Section`` (whose template and Markdown writer escape every cell) and writes
the tables to ``tables/``. Four parts:

- whole text against social-security passages (``domain_window``), side by side, D marked
  circular (``compare.scope_side_by_side``);
- challenge mentions framed as a challenge against all of them (``compare.framed_shares``);
- per-period dominance: where one term gives more than half of a category's count
  (``compare.dominance_by_group``);
- the share of fixed political formulas per category and period (``compare.formula_shares``).

Runs of an older mobilize (no ``framed``/``formula`` columns, no ``domain_window`` scope)
get a sentence saying what to re-run instead of the parts they cannot show.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline import compare

KEY = "meaning"
TITLE = "含义 What the scores mean: social-security passages, framing, dominance, formulas"


@dataclass
class MeaningParts:
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # (caption, table)
    files: dict[str, pd.DataFrame] = field(default_factory=dict)  # tables/<name>.csv


def _pct(x: float) -> str:
    return "—" if pd.isna(x) else f"{x:.0%}"


def meaning_parts(documents: pd.DataFrame, scores: pd.DataFrame, term_counts: pd.DataFrame,
                  *, seed: int, n_boot: int = compare.DEFAULT_BOOT) -> MeaningParts:
    """The section's prose, tables and table files. ``documents`` carries a ``period`` column
    when the report has periods (``compare.with_periods``)."""
    out = MeaningParts()
    new_run = (compare.SS_SCOPE in set(scores["scope"]) and "framed" in scores.columns
               and "formula" in term_counts.columns)
    if not new_run:
        out.text.append("This run was written by an older mobilize (no domain_window scope, "
                        "framed or formula columns): re-run `mobilize run` to see "
                        "social-security rates beside whole-text ones, framed challenge "
                        "mentions and formula shares.")
    else:
        side = compare.scope_side_by_side(documents, scores, seed=seed, n_boot=n_boot)
        out.files["meaning_whole_vs_ss"] = side
        out.text.append(
            "Whole text and social-security passages side by side. The social-security scope "
            "(domain_window) is each sentence mentioning a D_social_security term with the "
            "sentence before and after it in the same paragraph. ss_share: the share of a "
            "category's hits that lie in that scope; a low share means the whole-text rate "
            "measures political rhetoric in general more than the social-security system. "
            "D_social_security inside its own passages is circular (those passages are "
            "defined by its hits), so its social-security columns are left empty.")
        shown = side[["dimension", "category", "documents", "count_all", "rate_all",
                      "ci_low_all", "ci_high_all", "count_ss", "rate_ss", "ci_low_ss",
                      "ci_high_ss", "ss_share", "circular"]]
        out.tables.append(("whole text vs social-security passages (domain_window), rate per "
                           "10k tokens with 95% bootstrap intervals", shown))
        fr = compare.framed_shares(scores)
        out.files["meaning_framed_challenges"] = fr
        out.text.append(
            "Challenge categories count a theme's presence. framed: the mentions whose "
            "clause frames the theme as a challenge (the stretch of the sentence between , ; : "
            "holds one of the lexicon's challenge_cues: 挑战, 压力, 风险, 冲击, 难题, 短板, 应对 "
            "…); the cue list's "
            "precision is in lexicons/validation/NOTES.md. Wilson intervals treat mentions as "
            "independent (they are not within a document).")
        out.tables.append(("challenge mentions: framed as a challenge vs all", fr))
    by = "period" if "period" in documents.columns and documents["period"].notna().any() \
        else None
    dom = compare.dominance_by_group(documents, term_counts, by)
    out.files["meaning_dominance_by_period" if by else "meaning_dominance"] = dom
    flagged = dom[dom["dominated"]]
    where = "per period" if by else "over the whole corpus (no periods)"
    if len(flagged):
        notes = "; ".join(f"{r.group}: {r.category} — {r.top_term} {r.top_share:.0%} of "
                          f"n = {r.n}" for r in flagged.itertuples())
        out.text.append(f"Dominance {where}: one term gives more than half of a category's "
                        f"count in {len(flagged)} (period, category) cells — {notes}.")
    else:
        out.text.append(f"Dominance {where}: no category has a term giving more than half of "
                        "its count.")
    out.tables.append((f"dominance {where}: top term, its share of the category's count n",
                       dom))
    if "formula" in term_counts.columns:
        fs = compare.formula_shares(documents, term_counts, by)
        out.files["meaning_formula_shares"] = fs
        out.text.append(
            "Fixed political formulas (terms marked `formula: true` in the lexicon, e.g. "
            "以习近平同志为核心的党中央, 以人民为中心, 人类命运共同体, 共建共治共享; the "
            "choice and its reasons: lexicons/README.md) are counted like any term; "
            "formula_share is the part of a category's count they give"
            + (" per period." if by else "."))
        high = fs[fs["formula_share"] > 0.5]
        if len(high):
            out.text.append("Formulas give more than half the count in: " + "; ".join(
                f"{r.group}: {r.category} {_pct(r.formula_share)} (n = {r.n})"
                for r in high.itertuples()) + ".")
        out.tables.append(("share of fixed political formulas per category"
                           + (" and period" if by else ""), fs))
    return out


__all__ = ["KEY", "TITLE", "MeaningParts", "meaning_parts"]
