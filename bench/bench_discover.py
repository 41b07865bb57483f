"""Print how long discovery takes on a real corpus: segmentation, Word2Vec, suggestions, drift, topics.

Usage: python bench/bench_discover.py [CORPUS ...] [--lexicon PATH] [--segmenter jieba|jieba-rs]
Each stage is timed cold (fresh cache) and then warm (everything cached).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipeline import discover
from pipeline.config import DEFAULT_LEXICON, Settings

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus", nargs="*", default=[str(SHARED / "gwr-national-zh")])
    ap.add_argument("--lexicon", type=Path, default=DEFAULT_LEXICON)
    ap.add_argument("--segmenter", default="jieba-rs")
    args = ap.parse_args()
    roots = [Path(c) for c in args.corpus]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(lexicon=args.lexicon, cache=Path(tmp), segmenter=args.segmenter)
        for label in ("cold", "warm"):
            t0 = time.perf_counter()
            lex = discover.lexicon_view(settings.lexicon)
            docs = discover.load_documents(roots)
            t1 = time.perf_counter()
            tok = discover.build_tokenizer_for(lex, settings.segmenter, settings.hmm, settings.cache)
            corpus = discover.tokenize_documents(docs, tok, settings.cache)
            t2 = time.perf_counter()
            kv = discover.word_vectors(corpus, discover.EmbeddingParams(seed=settings.seed), settings.cache)
            t3 = time.perf_counter()
            discover.suggestions(corpus, kv, lex)
            t4 = time.perf_counter()
            periods = discover.load_periods(settings.periods, [y for y in corpus.years if y])
            discover.drift_table(corpus, kv, lex, periods)
            t5 = time.perf_counter()
            discover.topic_tables(corpus, kv, lex, seed=settings.seed)
            t6 = time.perf_counter()
            tokens = sum(len(s) for s in corpus.all_sentences)
            print(f"{label}: {len(docs)} docs, {tokens:,} training tokens | load {t1 - t0:.1f}s, "
                  f"segment {t2 - t1:.1f}s, word2vec {t3 - t2:.1f}s, suggest {t4 - t3:.1f}s, "
                  f"drift {t5 - t4:.1f}s, topics {t6 - t5:.1f}s, total {t6 - t0:.1f}s")


if __name__ == "__main__":
    main()
