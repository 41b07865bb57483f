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
- ``segment_units(tokenizer, text)``: the token lengths and the scoring ``Units`` of a
  text, vectorised with NumPy (the engine's path: no Python loop over tokens).
- ``SegmentCache``: on-disk cache of segmented documents keyed by (document sha256,
  tokenizer config hash): the token lengths of each document as a ``.npy`` array, written
  atomically; ``nest(text, lengths)`` gives the tokens back.
- ``segment_document(doc, ...)`` / ``tokens_for(doc, ...)``: the cached sentences of
  tokens of a document (what discovery uses).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import version
from importlib.resources import files
from itertools import accumulate, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from pipeline import cache as _cache
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


#: The longest run of characters without whitespace or a sentence end (。！？；!?) that a
#: segmenter is given in one call. Ordinary text stays far below it (the longest such run in
#: the shared corpora is 500 characters); a hostile document (a megabyte of digits) would
#: otherwise be one call whose cost grows faster than its length (jieba-rs is quadratic on a
#: run of digits: 8 s for 1 MB) or is large (pure-Python jieba: about 40 microseconds per
#: digit, 40-100 s for 1 MB). A longer run is cut every ``MAX_RUN`` characters
#: (``bounded_pieces``); each piece holding a Chinese character is segmented on its own, and a
#: piece without one (digits, Latin letters, symbols) is one token, as both segmenters give
#: back a run of ASCII letters or digits whole. The tokens still cover the text; only a token
#: that straddles such a cut is split there.
MAX_RUN = 10_000
#: a CJK ideograph (the basic block, extension A, compatibility ideographs)
_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def _config_hash(name: str, ver: str, hmm: bool, terms: Sequence[str]) -> str:
    blob = json.dumps({"segmenter": name, "version": ver, "hmm": hmm, "terms": list(terms),
                       "max_run": MAX_RUN}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


def _segmenter_name(segmenter: str) -> str:
    if segmenter == "jieba":
        return "jieba"
    if segmenter in ("jieba-rs", "rjieba"):
        return "jieba-rs"
    raise ValueError(f"unknown segmenter {segmenter!r}: use jieba or jieba-rs")


@lru_cache(maxsize=4)
def _segmenter_version(name: str) -> str:
    """The installed segmenter's version (read once per process: ``importlib.metadata`` parses
    the package's metadata at each call, ~0.5 ms, and a re-run's ``engine.is_cached`` asks for
    ``TokenizerSpec.config_hash`` once per document)."""
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
        freq, total = jieba_dictionary(Path(self._tk.tmp_dir) if self._tk.tmp_dir else None)
        self._tk.FREQ, self._tk.total = dict(freq), total  # (this tokenizer's own words go in)
        self._tk.initialized = True
        for term in self.terms:
            self._tk.add_word(term, freq=self._tk.suggest_freq(term, tune=False) or None)
            self._tk.suggest_freq(term, tune=True)
        self._loaded = True

    def cut(self, text: str) -> list[str]:
        self._load()
        pieces = bounded_pieces(text)
        if pieces is None:
            return list(self._tk.cut(text, HMM=self.hmm))
        return [t for piece in pieces for t in
                (self._tk.cut(piece, HMM=self.hmm) if _HAN.search(piece) else [piece])]


#: jieba's dictionary (word -> frequency, and their total) per cache folder, loaded once per
#: process (``jieba_dictionary``).
_JIEBA_DICTIONARY: dict[str | None, tuple[dict[str, int], int]] = {}


def jieba_dictionary(cache_dir: Path | None = None) -> tuple[dict[str, int], int]:
    """jieba's own dictionary as its ``Tokenizer.initialize`` loads it (word -> frequency and
    the total), from jieba's cache file in ``cache_dir`` (built there from jieba's dictionary
    when missing), loaded once per process: every ``JiebaTokenizer`` of the process starts from
    a copy of it, and a run's process can load it while its forked helper plans
    (``preload_segmenter``). Do not change the dictionary returned."""
    key = str(cache_dir) if cache_dir is not None else None
    got = _JIEBA_DICTIONARY.get(key)
    if got is None:
        got = _jieba_cache_file(cache_dir) if cache_dir is not None else None
    if got is None:
        import logging

        import jieba

        jieba.setLogLevel(logging.WARNING)
        tk = jieba.Tokenizer()
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            tk.tmp_dir = str(cache_dir)
        tk.initialize()
        got = (tk.FREQ, tk.total)
    _JIEBA_DICTIONARY[key] = got
    return got


def _jieba_cache_file(cache_dir: Path) -> tuple[dict[str, int], int] | None:
    """jieba's dictionary from its cache file in ``cache_dir`` (``jieba.cache``, which jieba's
    ``Tokenizer.initialize`` writes for its default dictionary and reads back whenever it
    exists), or None when it is missing or not what jieba writes there.

    The same data as ``initialize`` loads from it, about 3x faster: jieba reads it with
    ``marshal.load`` from the open file, which reads each of its ~500,000 entries with a
    call of its own (~0.7 s); here the file is read at once and ``marshal.loads`` takes the
    bytes (~0.2 s). The file is jieba's own format, in the run's own cache folder (never the
    shared temporary folder), written only by jieba's ``initialize`` (``jieba_dictionary``)."""
    import marshal

    try:
        data = (Path(cache_dir) / "jieba.cache").read_bytes()
        freq, total = marshal.loads(data)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(freq, dict) or not isinstance(total, int) or not freq:
        return None
    return freq, total


def preload_segmenter(segmenter: str, cache_dir: Path | None = None) -> None:
    """Load the dictionary of ``segmenter`` into this process now, so that the tokenizers built
    later start without loading it: jieba's (``jieba_dictionary``, from its cache in
    ``cache_dir``, ``jieba_dir`` of a run's cache) or jieba-rs's (importing rjieba builds the
    dictionary its first tokenizer takes, ``_rjieba_dictionary``)."""
    if _segmenter_name(segmenter) == "jieba":
        jieba_dictionary(cache_dir)
    else:
        import rjieba  # noqa: F401


#: Whether this process's first jieba-rs tokenizer has taken rjieba's own default ``Jieba``.
_RJIEBA_DEFAULT_TAKEN: dict[str, bool] = {"taken": False}


def _rjieba_dictionary(rjieba: Any) -> Any:
    """A ``rjieba.Jieba`` with jieba's dictionary and nothing added.

    Importing rjieba builds a default ``Jieba`` (the one behind ``rjieba.cut``), loading the
    whole dictionary; building another costs the same again (about 0.2 s of CPU, a tenth of
    a small corpus's first run). The first tokenizer of a process takes that default one (the
    instance ``rjieba.cut`` is bound to), which nothing in mobilize uses otherwise; every
    later tokenizer builds its own, so the user terms of one never reach another."""
    if not _RJIEBA_DEFAULT_TAKEN["taken"]:
        _RJIEBA_DEFAULT_TAKEN["taken"] = True
        default = getattr(getattr(rjieba, "cut", None), "__self__", None)
        if isinstance(default, rjieba.Jieba):
            return default
    return rjieba.Jieba()


class RJiebaTokenizer:
    """jieba-rs through ``rjieba``: the same dictionary, about 15x faster."""

    name = "jieba-rs"

    def __init__(self, user_terms: Iterable[str] = (), *, hmm: bool = True) -> None:
        import rjieba

        self.version = version("rjieba")
        self.hmm = hmm
        self.terms = sorted({t for t in user_terms if t})
        self.config_hash = _config_hash(self.name, self.version, hmm, self.terms)
        self._jb = _rjieba_dictionary(rjieba)
        for term in self.terms:
            self._jb.add_word(term, None, None)
            self._jb.suggest_freq(term)

    def cut(self, text: str) -> list[str]:
        pieces = bounded_pieces(text)
        if pieces is None:
            return self._jb.cut(text, self.hmm)
        return [t for piece in pieces for t in
                (self._jb.cut(piece, self.hmm) if _HAN.search(piece) else [piece])]


def bounded_pieces(text: str, max_run: int | None = None) -> list[str] | None:
    """``text`` cut into pieces so that no piece holds a run of more than ``max_run`` (default
    ``MAX_RUN``) characters without whitespace or a sentence end; None when ``text`` has no
    such run (always for text of up to ``max_run`` characters), which is the usual case.

    Each over-long run is cut every ``max_run`` characters from its start; nothing else is
    cut. The check is a few NumPy passes over the code points (no Python loop per character).
    """
    limit = MAX_RUN if max_run is None else max_run
    n = len(text)
    if n <= limit:
        return None
    stops = np.flatnonzero(_classes(normalize.codepoints(text)) & (_SPACE | _ENDCH))
    edges = np.concatenate(([-1], stops, [n]))
    long = np.flatnonzero(np.diff(edges) - 1 > limit)
    if not len(long):
        return None
    cuts: list[int] = []
    for i in long.tolist():
        cuts += range(int(edges[i]) + 1 + limit, int(edges[i + 1]), limit)
    return [text[a:b] for a, b in pairwise([0, *cuts, n])]


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
        """The tokenizer for this spec, built once per process and reused (jieba-rs keeps no
        dictionary cache: the same terms give the same tokenizer whatever ``cache_dir``)."""
        keep = self.cache_dir and self.segmenter == "jieba"
        return _built(self.segmenter, self.user_terms, self.hmm,
                      str(self.cache_dir) if keep else None)


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


def segment_units(tokenizer: Tokenizer, text: str) -> tuple[np.ndarray, Units]:
    """The token lengths of ``text`` (what the segmentation cache stores) and its ``Units``.

    The whole text is cut in one call: both segmenters split their input at whitespace before
    anything else, so each "\\n" comes out as a token of its own and the tokens between two
    are exactly the paragraph's tokens when cut alone. If a tokenizer ever glued a "\\n" to
    a neighbour (or its tokens did not cover the text), the document is cut paragraph by
    paragraph instead (``_paragraph_lengths``). Everything after the cut is vectorised
    (``units_from_lengths``): no Python loop over tokens.
    """
    tokens = tokenizer.cut(text)
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    del tokens  # (only their lengths are kept)
    cps = normalize.codepoints(text)
    if not _own_newlines(cps, lengths):
        lengths = _paragraph_lengths(tokenizer, text)
    return lengths, units_from_lengths(text, lengths, cps)


def _own_newlines(cps: np.ndarray, lengths: np.ndarray) -> bool:
    """Whether tokens of ``lengths`` cover the text of code points ``cps`` exactly and every
    "\\n" of it is a token of its own (a token of length 1 starts there): NumPy over the
    tokens' starts, no Python loop over tokens (and no comparison of every token with "\\n")."""
    n = len(cps)
    if int(lengths.sum()) != n or (len(lengths) and int(lengths.min()) <= 0):
        return False
    newline = np.flatnonzero(cps == 10)
    if not len(newline):
        return True
    single = np.zeros(n, dtype=bool)  # where a token of one character starts
    single[(np.cumsum(lengths) - lengths)[lengths == 1]] = True
    return bool(single[newline].all())


def _paragraph_lengths(tokenizer: Tokenizer, text: str) -> np.ndarray:
    """Token lengths from cutting each line on its own, with a 1-character token per "\\n"."""
    out: list[int] = []
    for i, p in enumerate(text.split("\n")):
        if i:
            out.append(1)
        if p:
            got = [len(t) for t in tokenizer.cut(p) if t]
            if sum(got) != len(p):  # a tokenizer that loses or adds characters: one token
                got = [len(p)]
            out += got
    return np.asarray(out, dtype=np.int64)


#: character classes over the Basic Multilingual Plane (``_char_classes``)
_WORDCH, _ENDCH, _DOT, _SPACE = 1, 2, 4, 8


@lru_cache(maxsize=1)
def _char_classes() -> np.ndarray:
    """A class byte per BMP code point: a letter or digit (``is_word``'s ``[^\\W_]``, which is
    ``str.isalnum``), a sentence-ending character, the full stop, whitespace (``\\s``)."""
    # (by runs of the regex classes ``[^\W_]`` and ``\s``, which are ``str.isalnum`` and
    # ``str.isspace`` in Python's ``re``, over the BMP as one string decoded from its code
    # points: ~5 ms, where testing each of the 65,536 characters took ~30 ms of each
    # worker's first document)
    bmp = np.arange(0x10000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    cls = np.zeros(0x10000, dtype=np.uint8)
    for flag, run in ((_WORDCH, _WORD_RUN), (_SPACE, _SPACE_RUN)):
        for m in run.finditer(bmp):
            cls[m.start():m.end()] |= flag
    for ch in normalize.SENTENCE_END_CHARS:
        cls[ord(ch)] |= _ENDCH
    cls[ord(".")] |= _DOT
    return cls


_WORD_RUN = re.compile(r"[^\W_]+")
_SPACE_RUN = re.compile(r"\s+")


def _classes(cps: np.ndarray) -> np.ndarray:
    table = _char_classes()
    if not len(cps) or int(cps.max()) < 0x10000:
        return table[cps]
    cls = table[np.minimum(cps, 0xFFFF)]
    for i in np.flatnonzero(cps > 0xFFFF):  # rare: characters beyond the BMP, one by one
        c = chr(int(cps[i]))
        cls[i] = (_WORDCH if c.isalnum() else 0) | (_SPACE if c.isspace() else 0)
    return cls


def _pieces(text: str, lengths: np.ndarray, cps: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sentences and pieces of a text cut into tokens of ``lengths``.

    Returns (sentence starts, sentence -> paragraph, the pieces' starts, piece -> sentence
    index (-1 for a "\\n" and anything before the first sentence), piece -> holds a letter
    or digit). A piece is a token, cut again where a sentence starts inside it (never seen
    with jieba or jieba-rs, whose tokens end at punctuation) or at a "\\n", as
    ``segment_text`` does. Sentences are ``normalize.sentences`` of each non-empty line: they
    end after 。！？；!?; and after a "." followed by whitespace.

    All in NumPy over boolean masks of the characters: no Python loop, no sort.
    """
    n = len(text)
    if cps is None:
        cps = normalize.codepoints(text)
    cls = _classes(cps)
    is_nl = cps == 10
    after_nl = np.zeros(n, dtype=bool)
    after_nl[1:] = is_nl[:-1]
    after_nl[0] = True
    para_mark = after_nl & ~is_nl  # a paragraph starts here
    sent_mark = para_mark.copy()  # a sentence starts here
    sent_mark[1:] |= (cls[:-1] & _ENDCH) != 0
    sent_mark[1:] |= ((cls[:-1] & _DOT) != 0) & ((cls[1:] & _SPACE) != 0)
    sent_mark &= ~is_nl  # a sentence end at a line's end starts no sentence
    cut = np.zeros(n, dtype=bool)
    cut[np.cumsum(lengths) - lengths] = True  # the tokens' starts
    cut |= sent_mark | is_nl | after_nl
    pieces = np.flatnonzero(cut)
    sent_id = np.cumsum(sent_mark, dtype=np.int64) - 1  # per character
    starts = np.flatnonzero(sent_mark)
    para_of = (np.cumsum(para_mark, dtype=np.int64) - 1)[starts]
    sent = sent_id[pieces]
    sent[is_nl[pieces]] = -1
    letters = np.zeros(n + 1, dtype=np.int64)
    np.cumsum((cls & _WORDCH) != 0, out=letters[1:])
    word = letters[np.append(pieces[1:], n)] > letters[pieces]
    return starts, para_of, pieces, sent, word


def units_from_lengths(text: str, lengths: np.ndarray, cps: np.ndarray | None = None) -> Units:
    """``Units`` of ``text`` cut into tokens of ``lengths`` (which must cover the text), as
    ``units_of(segment_text(...))`` gives them, computed with NumPy. (``cps``: the text's
    ``normalize.codepoints`` when the caller has them.)"""
    n = len(text)
    if not n:
        return Units([], [], [], 0, 0)
    starts, para_of, _cuts, sent, word = _pieces(text, lengths, cps)
    words = np.bincount(sent[word & (sent >= 0)], minlength=len(starts))
    paragraphs = int(para_of[-1]) + 1 if len(para_of) else 0
    return Units(starts.tolist(), para_of.tolist(), words.tolist(), paragraphs, n)


def nest(text: str, lengths: np.ndarray) -> Segmented:
    """Paragraphs -> sentences -> tokens of ``text`` cut into tokens of ``lengths``: what
    ``segment_text`` gives for the tokenizer that made ``lengths``."""
    if not text:
        return []
    _starts, para_of, pieces, sent, _word = _pieces(text, lengths)
    bounds = np.append(pieces, len(text)).tolist()
    toks = [text[a:b] for a, b in pairwise(bounds)]
    out: Segmented = []
    last_para = -1
    cur: list[str] = []
    cur_sent = -1
    for tok, si in zip(toks, sent.tolist(), strict=True):
        if si < 0:
            continue
        if si != cur_sent:
            cur = []
            cur_sent = si
            pi = int(para_of[si])
            if pi != last_para:
                out.append([])
                last_para = pi
            out[-1].append(cur)
        cur.append(tok)
    return out


def lengths_of(seg: Segmented) -> np.ndarray:
    """Token lengths of a nested segmentation, its paragraphs joined by "\\n" tokens."""
    out: list[int] = []
    for pi, para in enumerate(seg):
        if pi:
            out.append(1)
        for s in para:
            out += map(len, s)
    return np.asarray(out, dtype=np.int64)


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


class SegmentCache:
    """Segmented documents on disk, keyed by (document sha256, tokenizer config hash).

    Layout: ``<root>/<config_hash>/<sha>.npy`` (one folder per tokenizer, no sub-folders: a
    first run writes into one folder, not into hundreds of new ones): the lengths of the
    document's tokens in characters, in order (each "\\n" between paragraphs is a token of
    length 1), as a NumPy ``.npy`` array of unsigned integers. With the normalised text (whose
    sha256 is the key) they give back every token, sentence and paragraph (``nest``) and the
    scoring units (``units_from_lengths``); they are about a third of the text's UTF-8 size,
    and writing or reading them costs no Python work per token. Entries are
    ``pipeline.cache`` entries (a checksum verified on read, written atomically): a truncated
    or edited entry is recomputed. Arrays are loaded with ``allow_pickle=False``: nothing is
    unpickled. An entry that does not fit its text (a
    different length) counts as missing and is written again.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str, config_hash: str) -> Path:
        return self.root / config_hash / f"{sha256}.npy"

    def get(self, sha256: str, config_hash: str, text: str) -> np.ndarray | None:
        """The token lengths of ``text``, or None when not cached (or damaged, or not fitting
        the text)."""
        data = _cache.read(self.path(sha256, config_hash))
        if data is None:
            return None
        try:
            lengths = np.load(io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError):
            return None
        if (lengths.ndim != 1 or lengths.dtype.kind not in "ui"
                or (len(lengths) and int(lengths.min()) <= 0)
                or int(lengths.sum(dtype=np.int64)) != len(text)):
            return None
        return lengths.astype(np.int64)

    def put(self, sha256: str, config_hash: str, lengths: np.ndarray) -> None:
        big = len(lengths) and int(lengths.max()) > 0xFFFF
        buf = io.BytesIO()
        np.save(buf, np.asarray(lengths, dtype=np.uint32 if big else np.uint16),
                allow_pickle=False)
        _cache.write(self.path(sha256, config_hash), buf.getvalue())


def _atomic_write_text(path: Path, data: str) -> None:
    """Write a file (not a cache entry) atomically: ``pipeline.cache.atomic_write``."""
    _cache.atomic_write(Path(path), data.encode("utf-8"))


def segments_dir(cache: Path) -> Path:
    """Where the segmentation cache lives under ``Settings.cache``."""
    return Path(cache) / "segments"


def jieba_dir(cache: Path) -> Path:
    """Where jieba keeps its dictionary cache under ``Settings.cache``."""
    return Path(cache) / "jieba"


def lengths_cached(tokenizer: Tokenizer, sha256: str, text: str,
                   cache: SegmentCache | None) -> tuple[np.ndarray, Units | None, bool]:
    """The token lengths of ``text`` (from the cache, or segmented and stored), the ``Units``
    when they were computed on the way (a fresh segmentation), and whether it was a hit."""
    if cache is not None:
        got = cache.get(sha256, tokenizer.config_hash, text)
        if got is not None:
            return got, None, True
    lengths, units = segment_units(tokenizer, text)
    if cache is not None:
        cache.put(sha256, tokenizer.config_hash, lengths)
    return lengths, units, False


def segment_cached(tokenizer: Tokenizer, sha256: str, text: str,
                   cache: SegmentCache | None) -> tuple[Segmented, bool]:
    """The segmented text and whether it came from the cache (segmenting and storing it if not)."""
    lengths, _units, hit = lengths_cached(tokenizer, sha256, text, cache)
    return nest(text, lengths), hit


def units_cached(tokenizer: Tokenizer, sha256: str, text: str,
                 cache: SegmentCache | None) -> tuple[Units, bool]:
    """``units_of(segment_cached(...))``, without building the nested token lists."""
    lengths, units, hit = lengths_cached(tokenizer, sha256, text, cache)
    return (units if units is not None else units_from_lengths(text, lengths)), hit


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
