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
from typing import Any

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s)")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]+")

#: A document whose share of traditional-only Han characters reaches this is "traditional".
TRADITIONAL_THRESHOLD = 0.01


def nfkc(text: str) -> str:
    """Unicode NFKC: full-width ASCII letters and digits become half-width (１３.６ -> 13.6)."""
    return unicodedata.normalize("NFKC", text)


def zero_width(text: str) -> str:
    """Drop zero-width characters and soft hyphens."""
    return _ZERO_WIDTH.sub("", text)


def newlines(text: str) -> str:
    """CRLF, CR and Unicode line/paragraph separators become ``\\n``."""
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n").replace("\u2029", "\n")


def whitespace(text: str) -> str:
    """Collapse runs of spaces and tabs, strip each line, drop empty lines (one paragraph per line)."""
    lines = (_INLINE_SPACE.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(line for line in lines if line)


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
    present = set(text).intersection(_t2s_characters())  # few in simplified text: count each
    return sum(text.count(ch) for ch in present)


def han_chars(text: str) -> int:
    """How many Han (CJK ideograph) characters ``text`` has."""
    return len(text) - len(_HAN.sub("", text))


def traditional_share(text: str) -> float:
    """Share of Han characters that are traditional forms (0.0 for text with no Han characters).

    Simplified Chinese policy text scores below 0.002; traditional text about 0.35 (the 2017
    Government Work Report converted with OpenCC s2t: 0.357).
    """
    han = han_chars(text)
    return traditional_chars(text) / han if han else 0.0


def is_traditional(text: str, *, threshold: float = TRADITIONAL_THRESHOLD) -> bool:
    """True when the share of traditional characters reaches ``threshold``."""
    return traditional_share(text) >= threshold


def to_simplified(text: str) -> str:
    """Traditional -> simplified Chinese with OpenCC ``t2s`` (社會保障 -> 社会保障)."""
    return str(_t2s_converter().convert(text))
