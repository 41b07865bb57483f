"""Segmentation: a tokenizer object built from configuration (never jieba's global state).

Contract used by the other stages:

- ``build_tokenizer(segmenter, user_terms=..., hmm=True, cache_dir=None) -> Tokenizer``
- ``Tokenizer.cut(text) -> list[str]``: tokens whose concatenation is ``text``.
- ``Tokenizer.config_hash``: a hash of segmenter, its version, HMM and the user terms;
  with the document's sha256 it keys the segmentation cache.
- ``split_terms(tokenizer, terms)``: the lexicon terms the segmenter still splits.
- ``load_stopwords()``: the documented stopword list (``pipeline/data/stopwords.txt``),
  for discovery and keyness, never for rates.
- ``TokenizerSpec``: a small, picklable description of a tokenizer; ``spec.build()``
  builds it once per process (a worker segments many batches with one dictionary load).
- ``segment_text(tokenizer, text)``: paragraphs -> sentences -> tokens.
- ``SegmentCache``: on-disk cache of segmented documents keyed by (document sha256,
  tokenizer config hash): one UTF-8 file per document, one sentence per line, tokens
  separated by tabs, an empty line between paragraphs; written atomically.
- ``segment_document(doc, ...)`` / ``tokens_for(doc, ...)``: the cached sentences of
  tokens of a document (what discovery uses).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import version
from importlib.resources import files
from itertools import accumulate, compress, repeat
from operator import add, not_, sub
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pipeline import normalize

if TYPE_CHECKING:
    from pipeline.config import Settings
    from pipeline.ingest import Document

#: paragraphs -> sentences -> tokens; the tokens of a sentence concatenate to the sentence,
#: the sentences of a paragraph to the paragraph, and the paragraphs joined by "\n" to the text.
Segmented = list[list[list[str]]]


class Tokenizer(Protocol):
    name: str
    version: str
    hmm: bool
    config_hash: str

    def cut(self, text: str) -> list[str]: ...


def _config_hash(name: str, ver: str, hmm: bool, terms: Sequence[str]) -> str:
    blob = json.dumps({"segmenter": name, "version": ver, "hmm": hmm, "terms": list(terms)},
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _segmenter_name(segmenter: str) -> str:
    if segmenter == "jieba":
        return "jieba"
    if segmenter in ("jieba-rs", "rjieba"):
        return "jieba-rs"
    raise ValueError(f"unknown segmenter {segmenter!r}: use jieba or jieba-rs")


def _segmenter_version(name: str) -> str:
    return version("jieba" if name == "jieba" else "rjieba")


class JiebaTokenizer:
    """jieba with its own ``jieba.Tokenizer`` instance and the lexicon's terms added as words."""

    name = "jieba"

    def __init__(self, user_terms: Iterable[str] = (), *, hmm: bool = True,
                 cache_dir: Path | None = None) -> None:
        import jieba

        self.version = version("jieba")
        self.hmm = hmm
        self.terms = sorted({t for t in user_terms if t})
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
        self.terms = sorted({t for t in user_terms if t})
        self.config_hash = _config_hash(self.name, self.version, hmm, self.terms)
        self._jb = rjieba.Jieba()
        for term in self.terms:
            self._jb.add_word(term, None, None)
            self._jb.suggest_freq(term)

    def cut(self, text: str) -> list[str]:
        return list(self._jb.cut(text, self.hmm))


def build_tokenizer(segmenter: str = "jieba", *, user_terms: Iterable[str] = (), hmm: bool = True,
                    cache_dir: Path | None = None) -> Tokenizer:
    """A fresh tokenizer: ``jieba`` (default) or ``jieba-rs``, with ``user_terms`` kept whole.

    ``cache_dir`` is where jieba keeps its own dictionary cache (not the shared /tmp).
    """
    name = _segmenter_name(segmenter)
    if name == "jieba":
        return JiebaTokenizer(user_terms, hmm=hmm, cache_dir=cache_dir)
    return RJiebaTokenizer(user_terms, hmm=hmm)


@dataclass(frozen=True)
class TokenizerSpec:
    """What a tokenizer is made of; cheap to pickle into worker processes.

    ``config_hash`` equals the built tokenizer's, without importing the segmenter.
    """

    segmenter: str = "jieba"
    user_terms: tuple[str, ...] = ()
    hmm: bool = True
    cache_dir: Path | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "segmenter", _segmenter_name(self.segmenter))
        object.__setattr__(self, "user_terms", tuple(sorted({t for t in self.user_terms if t})))

    @property
    def version(self) -> str:
        return _segmenter_version(self.segmenter)

    @property
    def config_hash(self) -> str:
        return _config_hash(self.segmenter, self.version, self.hmm, self.user_terms)

    def build(self) -> Tokenizer:
        """The tokenizer for this spec, built once per process and reused."""
        return _built(self.segmenter, self.user_terms, self.hmm,
                      str(self.cache_dir) if self.cache_dir else None)


@lru_cache(maxsize=4)
def _built(segmenter: str, user_terms: tuple[str, ...], hmm: bool,
           cache_dir: str | None) -> Tokenizer:
    return build_tokenizer(segmenter, user_terms=user_terms, hmm=hmm,
                           cache_dir=Path(cache_dir) if cache_dir else None)


def split_terms(tokenizer: Tokenizer, terms: Iterable[str]) -> list[str]:
    """The terms that ``tokenizer`` does not keep as one token (sorted).

    jieba splits words that contain spaces or punctuation before its dictionary applies,
    so such terms cannot survive; the run warns or fails on them (``Settings.on_split_term``).
    Counting is unaffected: terms are matched on the text, not on tokens.
    """
    return sorted({t for t in terms if t and tokenizer.cut(t) != [t]})


@lru_cache(maxsize=1)
def load_stopwords() -> frozenset[str]:
    """The stopword list shipped in ``pipeline/data/stopwords.txt`` (``#`` starts a comment)."""
    text = files("pipeline").joinpath("data/stopwords.txt").read_text(encoding="utf-8")
    words = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(w for w in words if w)


def segment_text(tokenizer: Tokenizer, text: str) -> Segmented:
    """Paragraphs (lines) -> sentences (``normalize.sentences``) -> tokens.

    Each paragraph is cut in one call (far cheaper than one call per sentence) and its tokens
    are then grouped by sentence. Sentence ends are punctuation, where the segmenters always
    break, so a token never straddles two sentences in practice; if one ever did, it is cut
    at the sentence end, so the tokens of a sentence always concatenate back to it.
    """
    out: Segmented = []
    for p in text.split("\n"):
        if not p:
            continue
        sents = normalize.sentences(p)
        tokens = tokenizer.cut(p)
        if len(sents) == 1:
            out.append([tokens])
        else:
            out.append(_group(tokens, [len(s) for s in sents]))
    return out


#: a token boundary ("\t" between two tokens of a paragraph) that is also a sentence end
#: (``normalize.sentences``: after 。！？；!?; and after a "." followed by whitespace; inside a
#: normalised paragraph the only whitespace is " ").
_SENT_TAB = re.compile(r"(?<=[。！？；!?;])\t|(?<=\.)\t(?= )")
_END_CHARS = "。！？；!?;"


def _sentence_ends(p: str) -> int:
    """How many sentence boundaries ``normalize.sentences`` finds inside the paragraph ``p``."""
    n = p.count(". ")
    for ch in _END_CHARS:
        n += p.count(ch)
    return n - (p[-1] in _END_CHARS)


@dataclass
class Units:
    """What scoring needs of a segmentation: per sentence its start offset in the text, its
    paragraph and its word tokens; the paragraph count and the characters covered."""

    starts: list[int]
    para_of: list[int]
    words: list[int]
    paragraphs: int
    chars: int


def units_of(seg: Segmented) -> Units:
    """``Units`` of a segmentation (tokens -> offsets and word counts)."""
    starts: list[int] = []
    para_of: list[int] = []
    words: list[int] = []
    get = word_memo().__getitem__
    pos = 0
    for pi, para in enumerate(seg):
        if pi:
            pos += 1  # the "\n" between paragraphs
        for sent in para:
            starts.append(pos)
            para_of.append(pi)
            pos += sum(map(len, sent))
            words.append(sum(map(get, sent)))
    return Units(starts, para_of, words, len(seg), pos)


def segment_units(tokenizer: Tokenizer, text: str) -> tuple[str, Units]:
    """The segmentation cache's text for ``text`` (``_dump(segment_text(tokenizer, text))``)
    and its ``Units``, without building the nested lists or looping over tokens in Python.

    The whole (normalised) text is cut in one call: both segmenters split their input at
    whitespace before anything else, so each "\\n" comes out as a token of its own and the
    tokens between two are exactly the paragraph's tokens when cut alone. Tokens are joined
    by tabs, "\\t\\n\\t" becomes the blank line between paragraphs and the tabs at sentence
    ends become newlines (one regex pass): that is the cache file. Offsets and word counts
    come from the lines with C-level ``map``/``accumulate``. When a check fails (a "\\n" not
    alone in its token, or a sentence end inside a token: never seen), the document goes
    paragraph by paragraph (``_segment_units_paras``).
    """
    if not text or text[0] == "\n" or text[-1] == "\n" or "\n\n" in text:
        return _segment_units_paras(tokenizer, text)
    tokens = tokenizer.cut(text)
    joined = "\t".join(tokens)
    breaks = text.count("\n")
    if joined.count("\t\n\t") != breaks:
        return _segment_units_paras(tokenizer, text)
    dump = joined.replace("\t\n\t", "\n\n").replace(".\t ", ".\n ")
    ends = text.count(". ") - (text[-1] in _END_CHARS)
    for ch in _END_CHARS:
        ends += text.count(ch) - text.count(ch + "\n")
        dump = dump.replace(ch + "\t", ch + "\n")  # (what _SENT_TAB does, faster)
    if dump.count("\n") - 2 * breaks != ends:
        return _segment_units_paras(tokenizer, text)
    lines = dump.split("\n")
    tabs = list(map(str.count, lines, repeat("\t")))
    # characters per line; a blank line stands for the "\\n" between paragraphs (1 character)
    chars = list(map(sub, map(len, lines), tabs))
    chars = [c or 1 for c in chars]
    starts_all = [0, *accumulate(chars)]
    # tokens per line: tabs + 1 (a blank line: the "\\n" token); words by cumulative flags
    cum = [0, *accumulate(map(word_memo().__getitem__, tokens))]
    ends_at = list(map(cum.__getitem__, accumulate(map(add, tabs, repeat(1)))))
    words_all = list(map(sub, ends_at, [0, *ends_at[:-1]]))
    para_all = list(accumulate(map(not_, lines)))
    real = list(map(bool, lines))
    units = Units(list(compress(starts_all, real)), list(compress(para_all, real)),
                  list(compress(words_all, real)), breaks + 1, len(text))
    return dump + "\n", units


def _segment_units_paras(tokenizer: Tokenizer, text: str) -> tuple[str, Units]:
    """``segment_units`` one paragraph at a time: each paragraph cut in one call, its tokens
    joined by tabs and the tabs at sentence ends turned into newlines; a paragraph where a
    token would straddle a sentence end takes ``segment_text``'s grouping."""
    blocks: list[str] = []
    starts: list[int] = []
    para_of: list[int] = []
    words: list[int] = []
    get = word_memo().__getitem__
    subn = _SENT_TAB.subn
    pos = 0
    pi = -1
    for p in text.split("\n"):
        if not p:
            continue
        pi += 1
        if pi:
            pos += 1
        tokens = tokenizer.cut(p)
        block, n = subn("\n", "\t".join(tokens))
        if n != _sentence_ends(p):  # a sentence end inside a token: group as segment_text does
            groups = _group(tokens, [len(s) for s in normalize.sentences(p)])
            tokens = [t for g in groups for t in g]
            block = "\n".join("\t".join(g) for g in groups)
            n = len(groups) - 1
        flags = list(accumulate(map(get, tokens)))
        if n == 0:
            blocks.append(block)
            starts.append(pos)
            para_of.append(pi)
            words.append(flags[-1] if flags else 0)
            pos += len(p)
            continue
        lines = block.split("\n")
        ti = 0
        prev = 0
        for line in lines:
            tabs = line.count("\t")
            starts.append(pos)
            para_of.append(pi)
            pos += len(line) - tabs
            ti += tabs + 1
            w = flags[ti - 1]
            words.append(w - prev)
            prev = w
        blocks.append(block)
    dump = "\n\n".join(blocks) + "\n"
    return dump, Units(starts, para_of, words, pi + 1, pos)


def _group(tokens: list[str], lengths: list[int]) -> list[list[str]]:
    """Tokens of a paragraph grouped by sentence (``lengths``: the sentences' lengths)."""
    ends = list(accumulate(map(len, tokens)))
    groups: list[list[str]] = []
    lo, pos = 0, 0
    for n in lengths:
        pos += n
        i = bisect_left(ends, pos, lo)
        if i < len(ends) and ends[i] == pos:
            groups.append(tokens[lo:i + 1])
            lo = i + 1
        else:  # a token crosses this sentence end (never seen with jieba): the slow path
            return _group_slow(tokens, lengths)
    return groups


def _group_slow(tokens: list[str], lengths: list[int]) -> list[list[str]]:
    groups: list[list[str]] = []
    cur: list[str] = []
    pos, bi = 0, 0
    end = lengths[0]
    for t in tokens:
        while pos + len(t) > end:  # the token crosses the sentence end: cut it there
            head, t = t[:end - pos], t[end - pos:]
            if head:
                cur.append(head)
            groups.append(cur)
            cur, pos, bi = [], end, bi + 1
            end += lengths[bi]
        cur.append(t)
        pos += len(t)
        if pos == end:
            groups.append(cur)
            cur, bi = [], bi + 1
            if bi < len(lengths):
                end += lengths[bi]
    return groups


_WORD = re.compile(r"[^\W_]")


def is_word(token: str) -> bool:
    """A token counts as a word when it holds at least one letter or digit."""
    return _WORD.search(token) is not None


def word_count(tokens: Iterable[str]) -> int:
    """How many tokens are words (see ``is_word``)."""
    return sum(map(word_memo().__getitem__, tokens))


class _WordMemo(dict[str, bool]):
    """token -> ``is_word(token)``, filled on first sight (tokens repeat a lot)."""

    def __missing__(self, token: str) -> bool:
        if len(self) > 1_000_000:
            self.clear()
        w = self[token] = _WORD.search(token) is not None
        return w


@lru_cache(maxsize=1)
def word_memo() -> _WordMemo:
    return _WordMemo()


def _dump(seg: Segmented) -> str:
    return "\n\n".join("\n".join("\t".join(s) for s in p) for p in seg) + "\n"


def _load(text: str) -> Segmented:
    body = text.removesuffix("\n")
    if not body:
        return []
    return [[s.split("\t") for s in p.split("\n")] for p in body.split("\n\n")]


class SegmentCache:
    """Segmented documents on disk, keyed by (document sha256, tokenizer config hash).

    Layout: ``<root>/<config_hash>/<sha[:2]>/<sha>.tsv``; one sentence per line, tokens
    separated by tabs, an empty line between paragraphs (normalised text holds no tabs and
    no empty paragraphs, so the format is lossless). Files are written to a temporary name
    and renamed, so a killed run never leaves a half-written entry. Nothing is unpickled.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str, config_hash: str) -> Path:
        return self.root / config_hash / sha256[:2] / f"{sha256}.tsv"

    def get(self, sha256: str, config_hash: str) -> Segmented | None:
        try:
            data = self.path(sha256, config_hash).read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return _load(data)

    def put(self, sha256: str, config_hash: str, seg: Segmented) -> None:
        _atomic_write_text(self.path(sha256, config_hash), _dump(seg))


#: folders this process has created or seen (a cache write then skips the mkdir calls)
_MADE_DIRS: set[str] = set()


def _atomic_write_text(path: Path, data: str) -> None:
    parent = str(path.parent)
    if parent not in _MADE_DIRS:
        path.parent.mkdir(parents=True, exist_ok=True)
        if len(_MADE_DIRS) > 100_000:
            _MADE_DIRS.clear()
        _MADE_DIRS.add(parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileNotFoundError:  # the folder was removed meanwhile (a cache cleared by hand)
        _MADE_DIRS.discard(parent)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def segments_dir(cache: Path) -> Path:
    """Where the segmentation cache lives under ``Settings.cache``."""
    return Path(cache) / "segments"


def jieba_dir(cache: Path) -> Path:
    """Where jieba keeps its dictionary cache under ``Settings.cache``."""
    return Path(cache) / "jieba"


def segment_cached(tokenizer: Tokenizer, sha256: str, text: str,
                   cache: SegmentCache | None) -> tuple[Segmented, bool]:
    """The segmented text and whether it came from the cache (segmenting and storing it if not)."""
    if cache is not None:
        hit = cache.get(sha256, tokenizer.config_hash)
        if hit is not None:
            return hit, True
    seg = segment_text(tokenizer, text)
    if cache is not None:
        cache.put(sha256, tokenizer.config_hash, seg)
    return seg, False


def units_cached(tokenizer: Tokenizer, sha256: str, text: str,
                 cache: SegmentCache | None) -> tuple[Units, bool]:
    """``units_of(segment_cached(...))``, computed without the nested token lists when the
    document is not in the cache (the cache file is the same either way)."""
    if cache is not None:
        hit = cache.get(sha256, tokenizer.config_hash)
        if hit is not None:
            return units_of(hit), True
    dump, units = segment_units(tokenizer, text)
    if cache is not None:
        _atomic_write_text(cache.path(sha256, tokenizer.config_hash), dump)
    return units, False


def _settings_spec(settings: Settings | None, user_terms: Iterable[str] | None) -> TokenizerSpec:
    from pipeline.config import Settings as _Settings

    s = settings or _Settings()
    if user_terms is None:
        path = Path(s.lexicon)
        user_terms = _user_words(str(path), path.stat().st_mtime_ns if path.exists() else 0)
    return TokenizerSpec(s.segmenter, tuple(user_terms), s.hmm, jieba_dir(s.cache))


@lru_cache(maxsize=4)
def _user_words(path: str, mtime_ns: int) -> tuple[str, ...]:
    """The lexicon's literal terms, loaded once per (file, modification time)."""
    from pipeline.lexicon import load_lexicon

    return tuple(load_lexicon(Path(path)).user_words())


def segment_document(doc: Document, settings: Settings | None = None, *,
                     user_terms: Iterable[str] | None = None) -> Segmented:
    """The paragraphs -> sentences -> tokens of ``doc``, cached under ``settings.cache``.

    The tokenizer is the run's: ``settings.segmenter``/``hmm`` with the lexicon's user words
    (from ``settings.lexicon`` unless ``user_terms`` is given), so discovery sees the same
    tokens as the scorer and shares its cache.
    """
    spec = _settings_spec(settings, user_terms)
    from pipeline.config import Settings as _Settings

    cache = SegmentCache(segments_dir((settings or _Settings()).cache))
    seg, _ = segment_cached(spec.build(), doc.sha256, doc.text, cache)
    return seg


def tokens_for(doc: Document, settings: Settings | None = None, *,
               user_terms: Iterable[str] | None = None) -> list[list[str]]:
    """The sentences of ``doc`` as lists of word tokens (punctuation and spaces dropped)."""
    return [[t for t in s if is_word(t)]
            for p in segment_document(doc, settings, user_terms=user_terms) for s in p]
