"""Finding lexicon terms in normalised text.

The matching rule (also in ``docs/lexicon-schema.md``):

1. Matching is on the normalised text (``pipeline.normalize.text``), as
   substrings, never on tokens: segmentation can never make a term vanish.
   Matching is exact and case-sensitive (the text is NFKC-normalised, and the
   loader rejects terms that NFKC would change).
2. Literal terms are found by one Aho-Corasick pass (``pyahocorasick``) over the
   literal terms of all categories at once; pattern terms by Python ``re``
   (compiled once; exactly the non-empty ``finditer`` matches of each pattern,
   found fast by searching only near the literals every match must contain,
   see ``_PatternScanner``).
3. Within one category, overlapping candidates are resolved leftmost-first,
   then longest: scanning left to right, the candidate that starts first wins;
   among candidates starting at the same place the longest wins (a literal
   before a pattern of equal length, then by term text); every candidate that
   overlaps a winner is dropped. So 经济新常态 is counted, and 新常态 inside it is
   not, when both are in C3; and overlapping occurrences of one term count
   like ``str.count`` (哈哈 occurs once in 哈哈哈).
4. Categories are counted independently: a term in two categories (declared
   with ``also_in``) counts in both, and a term of one category never hides a
   term of another.

Consequence (tested on all shared corpora): for each literal term, its count
equals ``text.count(term)`` minus the occurrences covered by an earlier-starting
or longer winning hit of the same category.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from re import _compiler, _parser  # type: ignore[attr-defined]
from re import _constants as _c  # type: ignore[attr-defined]
from typing import Any

import ahocorasick

from pipeline.lexicon import Lexicon


@dataclass(frozen=True, slots=True)
class Hit:
    """One counted occurrence: ``text[start:end]`` matched ``term`` of ``category``."""

    start: int
    end: int
    dimension: str
    category: str
    term: str  # the lexicon term's text (a pattern's label)


# A candidate before resolution, in UTF-8 byte offsets:
# (start, -length in characters, kind, term, end); kind 0 = literal, 1 = pattern.
_Candidate = tuple[int, int, int, str, int]


class Matcher:
    """Finds every counted occurrence of a lexicon's terms (see the module docstring for the rule).

    Build once per lexicon and reuse: building the automaton is the costly part.
    """

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon = lexicon
        self._cats: list[tuple[str, str]] = [(c.dimension, c.id) for c in lexicon.categories]
        index = {c.id: i for i, c in enumerate(lexicon.categories)}
        owners: dict[str, list[int]] = {}
        self._patterns: list[tuple[int, _PatternScanner, str]] = []
        for cat in lexicon.categories:
            ci = index[cat.id]
            for t in cat.terms:
                if t.pattern is None:
                    cis = owners.setdefault(t.text, [])
                    if ci not in cis:
                        cis.append(ci)
                else:
                    self._patterns.append((ci, _PatternScanner(re.compile(t.pattern)), t.text))
        # The anchors of windowed patterns ride along in the same automaton pass.
        anchored: dict[str, list[int]] = {}
        for pi, (_ci, scanner, _label) in enumerate(self._patterns):
            if scanner.windowed:
                for a in scanner.anchors:
                    anchored.setdefault(a, []).append(pi)
        self._automaton: ahocorasick.Automaton | None = None
        if owners or anchored:
            # The automaton runs over the UTF-8 bytes of the text, seen as a latin-1 string
            # (one character per byte): far fewer branches per trie node than over Chinese
            # characters, so about twice as fast. UTF-8 is self-synchronising, so a term's
            # bytes only ever match at character boundaries.
            auto = ahocorasick.Automaton()
            for text in sorted(set(owners) | set(anchored)):
                key = text.encode("utf-8").decode("latin-1")
                auto.add_word(key, (len(key), len(text), text, tuple(owners.get(text, ())),
                                    tuple(anchored.get(text, ()))))
            auto.make_automaton()
            self._automaton = auto

    def _candidates(self, text: str) -> tuple[dict[int, list[_Candidate]], bytes]:
        """Candidates per category, in UTF-8 byte offsets, and the UTF-8 bytes."""
        per_cat: dict[int, list[_Candidate]] = {}
        data = text.encode("utf-8")
        anchor_hits: dict[int, list[tuple[int, int]]] = {}  # pattern -> (byte start, chars)
        if self._automaton is not None and text:
            get = per_cat.get
            for end, (blen, clen, term, cis, pis) in self._automaton.iter(data.decode("latin-1")):
                start = end + 1 - blen
                if cis:
                    cand = (start, -clen, 0, term, end + 1)
                    for ci in cis:
                        lst = get(ci)
                        if lst is None:
                            per_cat[ci] = [cand]
                        else:
                            lst.append(cand)
                for pi in pis:
                    anchor_hits.setdefault(pi, []).append((start, clen))
        if self._patterns:
            if anchor_hits:
                to_char = _byte_to_char(data, len(text),
                                        {b for hits in anchor_hits.values() for b, _n in hits})
            found: list[tuple[int, str, tuple[int, int]]] = []
            for pi, (ci, scanner, label) in enumerate(self._patterns):
                if not scanner.windowed:
                    found.extend((ci, label, span) for span in scanner.spans(text))
                elif pi in anchor_hits:
                    near = [(to_char[b], n) for b, n in anchor_hits[pi]]
                    found.extend((ci, label, span) for span in scanner.spans_near(text, near))
            if found:
                to_byte = _char_to_byte(text, len(data),
                                        {x for _ci, _l, span in found for x in span})
                for ci, label, (cs, ce) in found:
                    per_cat.setdefault(ci, []).append(
                        (to_byte[cs], cs - ce, 1, label, to_byte[ce]))
        return per_cat, data

    def find(self, text: str) -> list[Hit]:
        """Every counted hit in ``text``, sorted by (start, dimension, category, end, term)."""
        per_cat, data = self._candidates(text)
        won = [(ci, _resolve(cands)) for ci, cands in per_cat.items()]
        to_char = _byte_to_char(data, len(text),
                                {x for _ci, spans in won for s, e, _t in spans for x in (s, e)})
        cats = self._cats
        hits: list[Hit] = []
        for ci, spans in won:
            dim, cid = cats[ci]
            for start, end, term in spans:
                hits.append(Hit(to_char[start], to_char[end], dim, cid, term))
        hits.sort(key=lambda h: (h.start, h.dimension, h.category, h.end, h.term))
        return hits

    def count(self, text: str) -> Counter[tuple[str, str, str]]:
        """Counts per (dimension, category, term): the same hits as ``find``, without Hit objects."""
        out: Counter[tuple[str, str, str]] = Counter()
        cats = self._cats
        for ci, cands in self._candidates(text)[0].items():
            dim, cid = cats[ci]
            for _start, _end, term in _resolve(cands):
                out[(dim, cid, term)] += 1
        return out


def _char_to_byte(text: str, nbytes: int, positions: set[int]) -> dict[int, int]:
    """UTF-8 byte offsets of character offsets (one pass over the sorted positions)."""
    if nbytes == len(text):
        return {p: p for p in positions}
    out: dict[int, int] = {}
    prev = byte = 0
    for p in sorted(positions):
        byte += len(text[prev:p].encode("utf-8"))
        out[p] = byte
        prev = p
    return out


# Maps every UTF-8 byte to 1 when it starts a character, 0 when it continues one.
_CHAR_STARTS = bytes(0 if 0x80 <= b < 0xC0 else 1 for b in range(256))


def _byte_to_char(data: bytes, nchars: int, positions: set[int]) -> dict[int, int]:
    """Character offsets of UTF-8 byte offsets that fall on character boundaries."""
    if len(data) == nchars:
        return {p: p for p in positions}
    starts = data.translate(_CHAR_STARTS)  # count the character starts before each offset
    out: dict[int, int] = {}
    prev = char = 0
    for p in sorted(positions):
        char += starts.count(1, prev, p)
        out[p] = char
        prev = p
    return out


class _PatternScanner:
    """``finditer`` spans of one pattern, fast: only near the pattern's required literals.

    From the parsed pattern we take a set of literal strings one of which every match must
    contain (e.g. 社保 in ``(?<!作)社保(?!科创)``, or {参保, 覆盖} for ``(?:参保|覆盖)...``). Then:

    - ``window`` mode, when the pattern's maximum width W is short: a match containing an
      anchor at position p starts in [p + len(anchor) - W, p], so ``rx.match`` is tried only
      at those starts, left to right, skipping past each match;
    - ``line`` mode, when the width is unbounded (``\\d+``) but nothing in the pattern (nor
      in its lookarounds) can match a line break and it uses no ``^ $ \\A \\Z``: every match
      lies inside one paragraph line, so ``finditer`` runs only over the lines that hold an
      anchor (``pos``/``endpos``; lookbehinds still see the text before the line);
    - ``whole`` mode otherwise (and for case-insensitive patterns): ``finditer`` over the
      whole text, skipped for texts holding none of the anchors.

    Every mode gives exactly the non-empty matches of ``rx.finditer(text)``.
    """

    _MAX_WINDOW = 64

    def __init__(self, rx: re.Pattern[str]) -> None:
        self.rx = rx
        self.anchors: tuple[str, ...] = ()
        self.width: int | None = None
        self.mode = "whole"
        try:
            tree = _parser.parse(rx.pattern, rx.flags)
            lo, hi = tree.getwidth()
        except Exception:  # noqa: BLE001 - anything odd: scan the whole text
            return
        if rx.flags & re.IGNORECASE:
            return
        anchors = _required_literals(list(tree))
        if not anchors:
            return
        # an anchor that contains another anchor adds nothing: every occurrence holds the other
        self.anchors = tuple(sorted(a for a in anchors if not any(b != a and b in a
                                                                   for b in anchors)))
        if lo > 0 and hi <= self._MAX_WINDOW:
            self.width = hi
            self.mode = "window"
        elif lo > 0 and _newline_free(list(tree), rx.flags):
            self.mode = "line"

    @property
    def windowed(self) -> bool:
        """True when matches are searched only near anchors (window or line mode)."""
        return self.mode != "whole"

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) of every non-empty ``finditer`` match, in character offsets."""
        if self.mode == "whole":
            if self.anchors and not any(a in text for a in self.anchors):
                return []
            return [(m.start(), m.end()) for m in self.rx.finditer(text) if m.end() > m.start()]
        found: list[tuple[int, int]] = []
        for a in self.anchors:
            i = text.find(a)
            while i != -1:
                found.append((i, len(a)))
                i = text.find(a, i + 1)
        return self.spans_near(text, found)

    def spans_near(self, text: str, anchors: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """``spans`` given every occurrence (start, length) of the anchors in ``text``."""
        if self.mode == "line":
            return self._spans_in_lines(text, anchors)
        width = self.width
        assert width is not None
        starts: set[int] = set()
        for i, n in anchors:
            starts.update(range(max(0, i + n - width), i + 1))
        out: list[tuple[int, int]] = []
        last = 0
        match = self.rx.match
        for s in sorted(starts):
            if s < last:
                continue
            m = match(text, s)
            if m is not None:
                out.append((s, m.end()))
                last = m.end()
        return out

    def _spans_in_lines(self, text: str, anchors: list[tuple[int, int]]) -> list[tuple[int, int]]:
        lines: set[tuple[int, int]] = set()
        for i, _n in anchors:
            end = text.find("\n", i)
            lines.add((text.rfind("\n", 0, i) + 1, len(text) if end == -1 else end + 1))
        out: list[tuple[int, int]] = []
        for ls, le in sorted(lines):
            out.extend((m.start(), m.end()) for m in self.rx.finditer(text, ls, le)
                       if m.end() > m.start())
        return out


def search_mode(pattern: str) -> str:
    """How the matcher searches a pattern: ``window`` or ``line`` (only near its anchors, fast)
    or ``whole`` (over the whole text of every document, slow). See ``_PatternScanner``."""
    return _PatternScanner(re.compile(pattern)).mode


_SAFE_AT = frozenset({_c.AT_BOUNDARY, _c.AT_NON_BOUNDARY})


def _newline_free(items: list[tuple[Any, Any]], flags: int) -> bool:
    """True when nothing in the parsed pattern (lookarounds included) can match a line break
    and it holds no line or text anchors (``^ $ \\A \\Z``). Unknown constructs: False."""
    for op, av in items:
        if op in (_c.LITERAL, _c.NOT_LITERAL, _c.IN, _c.ANY):
            if _atom_matches_newline((op, av), flags):
                return False
        elif op is _c.AT:
            if av not in _SAFE_AT:
                return False
        elif op is _c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if not _newline_free(list(sub), (flags | add_flags) & ~del_flags):
                return False
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            if not _newline_free(list(av[1]), flags):
                return False
        elif op is _c.BRANCH:
            if not all(_newline_free(list(b), flags) for b in av[1]):
                return False
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            if not _newline_free(list(av[2]), flags):
                return False
        elif op is _c.ATOMIC_GROUP:
            if not _newline_free(list(av), flags):
                return False
        elif op is _c.GROUPREF:
            continue  # the group's own content is checked where it is defined
        else:
            return False
    return True


def _atom_matches_newline(node: tuple[Any, Any], flags: int) -> bool:
    """Whether one character-consuming node matches ``\\n`` (compiled alone, to be exact)."""
    try:
        state = _parser.State()
        state.flags = flags
        compiled = _compiler.compile(_parser.SubPattern(state, [node]), flags)
        return compiled.match("\n") is not None
    except Exception:  # noqa: BLE001 - cannot tell: assume it can
        return True


def _required_literals(items: list[tuple[Any, Any]]) -> frozenset[str] | None:
    """A set of strings one of which every match of the parsed sequence contains (or None)."""
    best: frozenset[str] | None = None

    def consider(cands: frozenset[str] | None) -> None:
        nonlocal best
        if cands and all(cands) and (best is None or _score(cands) > _score(best)):
            best = cands

    run: list[str] = []
    for op, av in items:
        if op is _c.LITERAL:
            run.append(chr(av))
            continue
        if run:
            consider(frozenset({"".join(run)}))
            run = []
        if op is _c.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if not add_flags & re.IGNORECASE:
                consider(_required_literals(list(sub)))
        elif op is _c.ATOMIC_GROUP:
            consider(_required_literals(list(av)))
        elif op is _c.BRANCH:
            sets = [_required_literals(list(b)) for b in av[1]]
            if all(sets):
                consider(frozenset().union(*sets))  # type: ignore[arg-type]
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            lo, _hi, sub = av
            if lo >= 1:
                consider(_required_literals(list(sub)))
    if run:
        consider(frozenset({"".join(run)}))
    return best


def _score(cands: frozenset[str]) -> tuple[int, int]:
    return (min(len(c) for c in cands), -len(cands))


def _resolve(cands: list[_Candidate]) -> list[tuple[int, int, str]]:
    """Leftmost-first, then longest, non-overlapping selection within one category."""
    if len(cands) == 1:
        start, _neglen, _kind, term, end = cands[0]
        return [(start, end, term)]
    cands.sort()
    out: list[tuple[int, int, str]] = []
    last_end = -1
    for start, _neglen, _kind, term, end in cands:
        if start >= last_end:
            last_end = end
            out.append((start, end, term))
    return out


__all__ = ["Hit", "Matcher", "search_mode"]
