"""Segmentation: a tokenizer object built from configuration (never jieba's global state).

Contract used by the other stages:

- ``build_tokenizer(segmenter, user_terms=..., hmm=True) -> Tokenizer``
- ``Tokenizer.cut(text) -> list[str]``: tokens whose concatenation is ``text``.
- ``Tokenizer.config_hash``: a hash of segmenter, its version, HMM and the user terms;
  with the document's sha256 it keys the segmentation cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Protocol


class Tokenizer(Protocol):
    name: str
    version: str
    hmm: bool
    config_hash: str

    def cut(self, text: str) -> list[str]: ...


def _config_hash(name: str, ver: str, hmm: bool, terms: list[str]) -> str:
    blob = json.dumps({"segmenter": name, "version": ver, "hmm": hmm, "terms": terms},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class JiebaTokenizer:
    """jieba with its own ``jieba.Tokenizer`` instance and the lexicon's terms added as words."""

    name = "jieba"

    def __init__(self, user_terms: Iterable[str] = (), *, hmm: bool = True,
                 cache_dir: Path | None = None) -> None:
        import jieba

        self.version = version("jieba")
        self.hmm = hmm
        self.terms = sorted(set(t for t in user_terms if t))
        self.config_hash = _config_hash(self.name, self.version, hmm, self.terms)
        self._tk = jieba.Tokenizer()
        if cache_dir is not None:
            cache_dir.mkdir(parents=True, exist_ok=True)
            self._tk.tmp_dir = str(cache_dir)
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        self._tk.initialize()
        for term in self.terms:
            self._tk.add_word(term, freq=self._tk.suggest_freq(term, tune=False) or None)
            self._tk.suggest_freq(term, tune=True)
        self._loaded = True

    def cut(self, text: str) -> list[str]:
        self._load()
        return list(self._tk.cut(text, HMM=self.hmm))


class RJiebaTokenizer:
    """jieba-rs through ``rjieba``: the same dictionary, about 15x faster."""

    name = "jieba-rs"

    def __init__(self, user_terms: Iterable[str] = (), *, hmm: bool = True) -> None:
        import rjieba

        self.version = version("rjieba")
        self.hmm = hmm
        self.terms = sorted(set(t for t in user_terms if t))
        self.config_hash = _config_hash(self.name, self.version, hmm, self.terms)
        self._jb = rjieba.Jieba()
        for term in self.terms:
            self._jb.add_word(term, None, None)
            self._jb.suggest_freq(term)

    def cut(self, text: str) -> list[str]:
        return list(self._jb.cut(text, self.hmm))


def build_tokenizer(segmenter: str = "jieba", *, user_terms: Iterable[str] = (), hmm: bool = True,
                    cache_dir: Path | None = None) -> Tokenizer:
    if segmenter == "jieba":
        return JiebaTokenizer(user_terms, hmm=hmm, cache_dir=cache_dir)
    if segmenter in ("jieba-rs", "rjieba"):
        return RJiebaTokenizer(user_terms, hmm=hmm)
    raise ValueError(f"unknown segmenter {segmenter!r}: use jieba or jieba-rs")
