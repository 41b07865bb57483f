"""Text-in, text-out normalisers that compose into a pipeline.

``normalize.text(raw)`` is what every reader's output goes through: paragraphs
are kept as lines (``\\n``), one paragraph per line, no empty lines.

Traditional characters: ``traditional_share(text)`` measures the share of Han
characters that OpenCC's traditional-to-simplified character table would change;
``to_simplified(text)`` converts with OpenCC ``t2s`` (phrases, then characters).
The OpenCC tables are loaded on first use, never at import time.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

_ZERO_WIDTH_CHARS = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_ZERO_WIDTH = re.compile(f"[{_ZERO_WIDTH_CHARS}]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
#: Every whitespace character but the space and the line break (what ``str.isspace``, ``str.strip``
#: and the regex ``\s`` treat as whitespace; a test checks the list against all of Unicode).
#: Spelled out because a class of literal characters is scanned about twice as fast as ``\s``.
_OTHER_SPACE = ("\t\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f"
                "\u205f\u3000")
#: Where ``whitespace`` has work to do: a whitespace character other than a space or a line
#: break, or a space or line break followed by a space, a line break or the end of the text.
#: (One class opens the pattern, so the regex engine skips to candidates with a fast scan; the
#: text's first character is checked apart.)
_UNTIDY_SPACE = re.compile(f"[{_OTHER_SPACE} \\n](?:(?<=[{_OTHER_SPACE}])|(?=[ \\n]|\\Z))")
#: The characters that end a sentence (after NFKC the full-width ！？； are half-width); a full
#: stop ends one only when whitespace follows (``sentences``).
SENTENCE_END_CHARS = "。！？；!?;"
_SENTENCE_END = re.compile(f"(?<=[{re.escape(SENTENCE_END_CHARS)}])|(?<=\\.)(?=\\s)")
#: The Han blocks ``han_chars`` counts: CJK Extension A, CJK Unified Ideographs, CJK Compatibility
#: Ideographs.
_HAN_BLOCKS = ((0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF))

#: A document whose share of traditional-only Han characters reaches this is "traditional".
TRADITIONAL_THRESHOLD = 0.01


def nfkc(text: str) -> str:
    """Unicode NFKC: full-width ASCII letters and digits become half-width (１３.６ -> 13.6).

    Fast path, same result: the characters of the blocks Chinese text is made of (ASCII,
    Latin-1, general punctuation, symbols, CJK punctuation and ideographs, full-width forms)
    are starters that never combine with their neighbours under NFKC, so when a text holds
    only such characters its NFKC form is each character's NFKC form in turn: the few
    distinct characters that change (，；（）...) are replaced with ``str.replace``. Any
    other character (a combining mark, Hangul jamo, half-width katakana, ...) sends the
    text through ``unicodedata.normalize``.
    """
    # One left-to-right scan that stops only at each *distinct* odd character: its every
    # occurrence is replaced at once, and the scan resumes after the replacement (outputs are
    # never looked at again). This costs one regex pass plus one ``str.replace`` per distinct
    # character (a handful per document: ，；（）：...), rather than a match object per
    # occurrence (about 15,000 per MB of Chinese text) to learn the set of odd characters.
    original = text
    search = _not_plain().search
    table = _nfkc_chars()
    m = search(text)
    while m is not None:
        ch = m.group()
        if ch not in table:
            table[ch] = _char_nfkc(ch)
        out = table[ch]
        if out is None:
            return unicodedata.normalize("NFKC", original)
        text = text.replace(ch, out)
        m = search(text, m.start() + len(out))
    return text


#: Blocks whose characters are all NFKC starters that never compose with a neighbour (no
#: combining marks, no Hangul jamo, no half-width katakana); see ``nfkc``.
_CONTEXT_FREE = ((0x00, 0xFF), (0x2000, 0x206F), (0x2100, 0x27BF), (0x3000, 0x3029),
                 (0x3030, 0x303F), (0x3200, 0x33FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF),
                 (0xF900, 0xFAFF), (0xFE10, 0xFE1F), (0xFE30, 0xFE6F), (0xFF00, 0xFF60),
                 (0xFFE0, 0xFFEE))


def _in_context_free(ch: str) -> bool:
    cp = ord(ch)
    return any(lo <= cp <= hi for lo, hi in _CONTEXT_FREE)


@lru_cache(maxsize=1)
def _not_plain() -> re.Pattern[str]:
    """Characters outside the context-free blocks, or inside them but changed by NFKC."""
    keep: list[str] = []
    for lo, hi in _CONTEXT_FREE:
        run = -1
        for cp in range(lo, hi + 2):
            ok = cp <= hi and unicodedata.normalize("NFKC", chr(cp)) == chr(cp) \
                and not unicodedata.combining(chr(cp))
            if ok and run < 0:
                run = cp
            elif not ok and run >= 0:
                keep.append(f"\\U{run:08x}-\\U{cp - 1:08x}")
                run = -1
    return re.compile(f"[^{''.join(keep)}]")


@lru_cache(maxsize=1)
def _nfkc_chars() -> dict[str, str | None]:
    """character -> its NFKC form when it can be replaced on its own, else None (memo)."""
    return {}


def _char_nfkc(ch: str) -> str | None:
    if not _in_context_free(ch) or unicodedata.combining(ch):
        return None
    out = unicodedata.normalize("NFKC", ch)
    if any(unicodedata.combining(c) or not _in_context_free(c) and not _is_stable_starter(c)
           for c in out):
        return None
    return out


def _is_stable_starter(ch: str) -> bool:
    """Outputs outside the blocks (e.g. ㈠ -> (一) stays inside; ℃ -> °C) are checked here:
    a starter that is its own NFKC form and not Hangul jamo."""
    cp = ord(ch)
    return (not unicodedata.combining(ch) and unicodedata.normalize("NFKC", ch) == ch
            and not 0x1100 <= cp <= 0x11FF)


def zero_width(text: str) -> str:
    """Drop zero-width characters and soft hyphens."""
    # Most texts hold none: six ``in`` tests (fast C loops) find that out in about half the
    # time of the regex scan.
    if any(ch in text for ch in _ZERO_WIDTH_CHARS):
        return _ZERO_WIDTH.sub("", text)
    return text


def newlines(text: str) -> str:
    """CRLF, CR and Unicode line/paragraph separators become ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")


def whitespace(text: str) -> str:
    """Collapse runs of spaces and tabs, strip each line, drop empty lines (one paragraph per line)."""
    # Fast path, same result: text that is already tidy apart from trailing line breaks (the
    # usual case for a file saved one paragraph per line) comes back without the sub, split,
    # strip and join, each of which would copy it.
    body = text.rstrip("\n")
    if not _UNTIDY_SPACE.search(body) and not body[:1].isspace():
        return body
    # (the pattern never matches "\n", so one pass over the whole text equals one per line)
    return "\n".join(filter(None, map(str.strip, _INLINE_SPACE.sub(" ", text).split("\n"))))


def text(raw: str) -> str:
    """The full normalisation every document goes through."""
    return whitespace(newlines(zero_width(nfkc(raw))))


def paragraphs(text: str) -> list[str]:
    """The paragraphs of normalised text."""
    return [p for p in text.split("\n") if p]


def sentences(paragraph: str) -> list[str]:
    """Split one paragraph on Chinese and Western sentence ends; the pieces concatenate back to it.

    Ends: 。！？； and ! ? ; (after NFKC the full-width ！？； are half-width), and a
    full stop followed by whitespace (so 13.6 and 2.5% are not split).
    """
    return [s for s in _SENTENCE_END.split(paragraph) if s]


@lru_cache(maxsize=1)
def _t2s_characters() -> dict[str, str]:
    """OpenCC's traditional -> simplified character table, only the characters that change."""
    table = resources.files("opencc").joinpath("dictionary", "TSCharacters.txt")
    mapping: dict[str, str] = {}
    for line in table.read_text(encoding="utf-8").splitlines():
        key, _, values = line.partition("\t")
        first = values.split(" ")[0] if values else ""
        if len(key) == 1 and first and first != key:
            mapping[key] = first
    return mapping


@lru_cache(maxsize=1)
def _t2s_converter() -> Any:
    import opencc  # the phrase tables load lazily, on the first conversion

    return opencc.OpenCC("t2s")


def traditional_chars(text: str) -> int:
    """How many characters of ``text`` are traditional forms that OpenCC t2s would change."""
    return _count_in(text, _traditional_table())


def han_chars(text: str) -> int:
    """How many Han (CJK ideograph) characters ``text`` has."""
    return _count_in(text, _han_table())


def _count_in(text: str, table: NDArray[np.bool_]) -> int:
    """How many characters of ``text`` are marked in ``table`` (a bool per code point).

    Why not a regex: counting with a character class costs a regex scan plus a match or a copy
    per hit (about 6 ms per MB for the traditional table, 10 for Han); reading the text as an
    array of code points (UTF-32) and looking each one up in a table costs about 1.5.
    ("surrogatepass": a lone surrogate is a code point like any other, marked in no table.)
    """
    import numpy as np

    return int(np.count_nonzero(table[codepoints(text)]))


def codepoints(text: str) -> NDArray[np.uint32]:
    """``text`` as an array of its code points (UTF-32; a lone surrogate is kept as itself)."""
    import numpy as np

    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")


@lru_cache(maxsize=1)
def _traditional_table() -> NDArray[np.bool_]:
    """A bool per code point (U+0000..U+10FFFF): True for the characters OpenCC t2s changes."""
    import numpy as np

    table = np.zeros(0x110000, dtype=bool)
    table[[ord(ch) for ch in _t2s_characters()]] = True
    return table


@lru_cache(maxsize=1)
def _han_table() -> NDArray[np.bool_]:
    """A bool per code point: True for the characters of ``_HAN_BLOCKS``."""
    import numpy as np

    table = np.zeros(0x110000, dtype=bool)
    for lo, hi in _HAN_BLOCKS:
        table[lo:hi + 1] = True
    return table


def traditional_share(text: str) -> float:
    """Share of Han characters that are traditional forms (0.0 for text with no Han characters).

    Simplified Chinese policy text scores below 0.002; traditional text about 0.35 (the 2017
    Government Work Report converted with OpenCC s2t: 0.357).
    """
    trad = traditional_chars(text)
    if not trad:  # (no Han characters counted: 0.0 either way)
        return 0.0
    han = han_chars(text)
    return trad / han if han else 0.0


def is_traditional(text: str, *, threshold: float = TRADITIONAL_THRESHOLD) -> bool:
    """True when the share of traditional characters reaches ``threshold``."""
    return traditional_share(text) >= threshold


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese with OpenCC ``t2s`` (社會保障 -> 社会保障)."""
    return str(_t2s_converter().convert(text))
