"""Text-in, text-out normalisers that compose into a pipeline.

``normalize.text(raw)`` is what every reader's output goes through: paragraphs
are kept as lines (``\\n``), one paragraph per line, no empty lines.
"""

from __future__ import annotations

import re
import unicodedata

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_INLINE_SPACE = re.compile(r"[^\S\n]+")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])|(?<=\.)(?=\s)")


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
    """Split one paragraph on Chinese and Western sentence ends; the pieces concatenate back to it."""
    return [s for s in _SENTENCE_END.split(paragraph) if s]
