"""Discovery: what the lexicon misses (Word2Vec suggestions, drift, topics)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Settings


def discovery_tables(run_dir: Path, settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables for the report: ``topics``, ``topic_prevalence``, ``drift`` (empty until built)."""
    return {}
