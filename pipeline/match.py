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
from collections.abc import Mapping
from itertools import compress
from re import _compiler, _parser  # type: ignore[attr-defined]
from re import _constants as _c  # type: ignore[attr-defined]
from typing import Any, NamedTuple

import ahocorasick

from pipeline.lexicon import Lexicon


class Hit(NamedTuple):
    """One counted occurrence: ``text[start:end]`` matched ``term`` of ``category``.

    A NamedTuple (immutable, read by attribute like the frozen dataclass it was): ``find``
    builds one per hit, and a NamedTuple is about three times cheaper to build.
    """

    start: int
    end: int
    dimension: str
    category: str
    term: str  # the lexicon term's text (a pattern's label)


# A candidate before resolution, in character offsets:
# (start, -length, kind, term, end); kind 0 = literal, 1 = pattern.
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
        # The anchors of patterns searched near them ride along in the same automaton pass;
        # each has a number, the place of its list of starts in a document (``_candidates``)
        anchored = sorted({a for _ci, scanner, _label in self._patterns if scanner.anchored
                           for a in scanner.anchors})
        self._anchor_ids = {a: i for i, a in enumerate(anchored)}
        # per pattern: its category, scanner, label and its anchors' numbers (None: unanchored)
        self._searches: list[tuple[int, _PatternScanner, str, tuple[int, ...] | None]] = [
            (ci, scanner, label,
             tuple(self._anchor_ids[a] for a in scanner.anchors) if scanner.anchored else None)
            for ci, scanner, label in self._patterns]
        # per anchor: the searches that use it; and the searches that have no anchor
        users: list[list[int]] = [[] for _ in anchored]
        for k, (_ci, _scanner, _label, ids) in enumerate(self._searches):
            for i in ids or ():
                users[i].append(k)
        self._users = [tuple(u) for u in users]
        self._unanchored = tuple(k for k, s in enumerate(self._searches) if s[3] is None)
        self._automaton: ahocorasick.Automaton | None = None
        if owners or anchored:
            # The automaton runs over the UTF-8 bytes of the text, seen as a latin-1 string
            # (one character per byte): far fewer branches per trie node than over Chinese
            # characters, so about twice as fast. UTF-8 is self-synchronising, so a term's
            # bytes only ever match at character boundaries.
            auto = ahocorasick.Automaton()
            for text in sorted(set(owners) | set(anchored)):
                key = text.encode("utf-8").decode("latin-1")
                auto.add_word(key, (len(text), text, tuple(owners.get(text, ())),
                                    self._anchor_ids.get(text, -1)))
            auto.make_automaton()
            self._automaton = auto

    def _candidates(self, text: str) -> list[list[_Candidate]]:
        """Candidates per category (by the category's number), in character offsets.

        The automaton reports byte offsets, in increasing order of the match's end. So each
        end is turned into a character offset in one forward pass, counting the UTF-8 lead
        bytes since the previous end (a C-level ``bytes.count`` over a 0/1 map of the bytes);
        the start is the end minus the term's length in characters. Everything downstream
        (pattern search, resolution, ``Hit``) then works in characters: no second conversion.
        """
        per_cat: list[list[_Candidate]] = [[] for _ in self._cats]
        # per anchor (by its number): its char starts, ascending (a term's starts come in the
        # order of its ends); gathered once per occurrence, however many patterns share it
        at: list[list[int]] = [[] for _ in self._anchor_ids]
        if self._automaton is not None and text:
            data = text.encode("utf-8")
            leads = data.translate(_CHAR_STARTS).count  # leads(1, i, j): characters in data[i:j]
            byte = char = 0
            for end, (clen, term, cis, aid) in self._automaton.iter(data.decode("latin-1")):
                end += 1
                if end != byte:  # several terms can end at one place
                    char += leads(1, byte, end)
                    byte = end
                if cis:
                    cand = (char - clen, -clen, 0, term, char)
                    for ci in cis:
                        per_cat[ci].append(cand)
                if aid >= 0:
                    at[aid].append(char - clen)
        # the searches to make: those with no anchor, and those one of whose anchors occurred
        # (in the order of the lexicon, as the candidates of a category are then sorted anyway)
        users = self._users
        todo = set(self._unanchored)
        for aid in compress(range(len(at)), at):
            todo.update(users[aid])
        searches = self._searches
        for k in sorted(todo):
            ci, scanner, label, ids = searches[k]
            if ids is None:
                spans = scanner.spans(text)
            else:
                spans = scanner._spans_lists(text, [at[i] for i in ids])
            if spans:
                per_cat[ci].extend([(s, s - e, 1, label, e) for s, e in spans])
        return per_cat

    def find(self, text: str) -> list[Hit]:
        """Every counted hit in ``text``, sorted by (start, dimension, category, end, term)."""
        cats = self._cats
        rows: list[tuple[int, str, str, int, str]] = []
        for ci, cands in enumerate(self._candidates(text)):
            if not cands:
                continue
            dim, cid = cats[ci]
            # _resolve, inlined: one tuple and one pass per hit fewer (hits are most of the
            # candidates: overlaps within a category are rare, and sorting a list that is
            # already in order costs one comparison per candidate, in C)
            cands.sort()
            last_end = -1
            for start, _neglen, _kind, term, end in cands:
                if start >= last_end:
                    last_end = end
                    rows.append((start, dim, cid, end, term))
        # plain tuples sort in C, with no key function; within one category the resolved spans
        # never overlap, so no two rows are equal and this is the documented order
        rows.sort()
        return [Hit(start, end, dim, cid, term) for start, dim, cid, end, term in rows]

    def count(self, text: str) -> Counter[tuple[str, str, str]]:
        """Counts per (dimension, category, term): the same hits as ``find``, without Hit objects."""
        out: Counter[tuple[str, str, str]] = Counter()
        cats = self._cats
        for ci, cands in enumerate(self._candidates(text)):
            if not cands:
                continue
            dim, cid = cats[ci]
            for _start, _end, term in _resolve(cands):
                out[(dim, cid, term)] += 1
        return out


def literal_core(pattern: str, flags: int = 0) -> str | None:
    """The one literal every match of ``pattern`` contains (the longest the parser finds), or
    None: when matches need one of several literals (``覆盖|参保``), none at all, the pattern
    ignores case, or it cannot be parsed. ``互联网\\+(?:政务|医疗)`` -> ``互联网+``;
    ``(?:运用|利用)[^。]{0,6}大数据|大数据(?:监管|治理)`` -> ``大数据``. The report dates a
    pattern by its core's raw occurrences (``pipeline.report_timelines``)."""
    if flags & re.IGNORECASE:
        return None
    try:
        tree = _parser.parse(pattern, flags)
    except Exception:  # noqa: BLE001 - not a pattern we can read: no core
        return None
    if tree.state.flags & re.IGNORECASE:  # (an inline (?i))
        return None
    found = _required_literals(list(tree), tree.state)
    if found is None or len(found[0]) != 1:
        return None
    (core,) = found[0]
    return core or None


# Maps every UTF-8 byte to 1 when it starts a character, 0 when it continues one.
_CHAR_STARTS = bytes(0 if 0x80 <= b < 0xC0 else 1 for b in range(256))


# A start rule: seen from an occurrence at p of an anchor, a match starts in [p - offset, p]
# for an int offset, and in [start of p's line, p] for _LINE.
_LINE = None


class _PatternScanner:
    """``finditer`` spans of one pattern, fast: only near the pattern's required literals.

    From the parsed pattern we take a set of literal strings one of which every match must
    contain (e.g. 社保 in ``(?<!作)社保(?!科创)``, or {参保, 覆盖} for ``(?:参保|覆盖)...``; one
    string that every alternative requires beats the union of the alternatives' own, as 亿 in
    ``N亿(?:人口|人民)|N亿人``), and how far before such an anchor a match can start. Then:

    - ``window`` mode, when the pattern's maximum width W is short: a match containing an
      anchor at position p starts in [p + len(anchor) - W, p], or closer when the anchor can
      only sit a few characters into the match (at most ``offset`` characters: [p - offset, p];
      0 for a pattern that starts with its anchor), so ``rx.match`` is tried only at those
      starts, left to right, skipping past each match; and of those, when the anchor is not
      at the match's start, only where a match's first character can be (a one-character
      pattern searched in the range, in C);
    - ``line`` mode, when the width is unbounded (``\\d+``) but nothing in the pattern (nor
      in its lookarounds) can match a line break and it uses no ``^ $ \\A \\Z``: every match
      lies inside one paragraph line. When the pattern consumes only a short list of
      characters and classes (nothing negated, no ``.``), a match holding an anchor at p
      starts in [j, p], j found by stepping back from p over characters it can consume (the
      digits before 亿 in ``\\d+(?:\\.\\d+)?亿人口``), and ``rx.match`` is tried there as in
      window mode; otherwise the possible starts run from the line's start to its last
      anchor (``finditer`` over those lines when no first character is known);
    - ``whole`` mode otherwise (and for case-insensitive patterns): a match may run over any
      length of text, across lines. When every top-level alternative still has a start rule,
      an anchor at a bounded offset (``社保[^,]+人`` starts at its 社保) or else no line break
      before its anchor, ``rx.match`` is tried only at those starts, as in window mode (the
      whole text's matches start nowhere else); without start rules, ``finditer`` over the
      whole text, skipped for texts holding none of the anchors.

    Trying ``rx.match`` at every possible start, in order, skipping the starts inside each
    match, is exactly how ``finditer`` proceeds (its ``search`` only reaches other starts
    after failing there), so every mode gives exactly the non-empty matches of
    ``rx.finditer(text)``. When the possible starts are too many for a Python loop to beat
    one ``finditer`` pass in C, that pass is taken instead.
    """

    _MAX_WINDOW = 64
    # The most possible starts per character of text for which trying them one by one from
    # Python beats one finditer pass in C (a call of rx.match costs about as much as
    # finditer's scan over 16 characters); with more, scan instead.
    _STARTS_PER_CHAR = 1 / 16

    def __init__(self, rx: re.Pattern[str]) -> None:
        self.rx = rx
        self.anchors: tuple[str, ...] = ()
        self.width: int | None = None
        self.mode = "whole"
        self._near: dict[str, tuple[int | None, ...]] = {}  # anchor -> its start rules
        self._at_anchor = False  # every match starts where one of its anchors does
        # finds the next place a match can start (its first character), for spans_near
        self._first: re.Pattern[str] | None = None
        self._offsets: tuple[int, ...] = ()  # window mode: each anchor's offset, as in anchors
        # line mode: one character of any the pattern can consume (None: too many to help)
        self._consumed: re.Pattern[str] | None = None
        try:
            tree = _parser.parse(rx.pattern, rx.flags)
            lo, hi = tree.getwidth()
        except Exception:  # noqa: BLE001 - anything odd: scan the whole text
            return
        if rx.flags & re.IGNORECASE:
            return
        items = list(tree)
        found = _required_literals(items, tree.state, shared=True)
        if found is None:
            return
        offsets = _anchor_offsets(*found)
        self.anchors = tuple(sorted(offsets))
        if lo > 0 and hi <= self._MAX_WINDOW:
            self.width = hi
            self.mode = "window"
            self._near = {a: (hi - len(a) if off is None else min(off, hi - len(a)),)
                          for a, off in offsets.items()}
            self._at_anchor = all(rule == (0,) for rule in self._near.values())
            self._offsets = tuple(self._near[a][0] for a in self.anchors)
            if not self._at_anchor:
                self._first = _first_search(items, rx.flags)
        elif lo > 0 and _newline_free(items, rx.flags):
            self.mode = "line"
            self._first = _first_search(items, rx.flags)
            self._consumed = _consumed_class(items, rx.flags)
        elif lo > 0:
            rules = _start_rules(items, tree.state, rx.flags)
            if rules:
                self._near = rules
                self.anchors = tuple(sorted(rules))

    @property
    def anchored(self) -> bool:
        """True when matches are searched only near the anchors' occurrences (which the
        Matcher's automaton reports): window and line mode, and whole mode with start rules."""
        return self.mode != "whole" or bool(self._near)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """The (start, end) of every non-empty ``finditer`` match, in character offsets."""
        if not self.anchored:
            if self.anchors and not any(a in text for a in self.anchors):
                return []
            return self._finditer(text)
        at: dict[str, list[int]] = {}
        for a in self.anchors:
            i = text.find(a)
            while i != -1:
                at.setdefault(a, []).append(i)
                i = text.find(a, i + 1)
        return self.spans_at(text, at)

    def spans_at(self, text: str, at: Mapping[str, list[int]]) -> list[tuple[int, int]]:
        """``spans`` given the starts of the anchors in ``text`` (``at``: anchor -> its starts,
        ascending; other keys are ignored)."""
        return self._spans_lists(text, [at.get(a, []) for a in self.anchors])

    def _spans_lists(self, text: str, lists: list[list[int]]) -> list[tuple[int, int]]:
        """``spans`` given the starts of each anchor in ``text`` (ascending; in the order of
        ``anchors``).

        A pattern all of whose matches start at their anchor (most window patterns: a literal
        after lookbehinds, or first) is tried once at each distinct start, in order; other
        window patterns at the places where their first character can be in the range of
        starts before each anchor; line and whole mode go through ``spans_near``."""
        if self._at_anchor:
            nonempty = [starts for starts in lists if starts]
            if not nonempty:
                return []
            starts = nonempty[0] if len(nonempty) == 1 else sorted(set().union(*nonempty))
            if len(starts) > len(text) * self._STARTS_PER_CHAR:
                return self._finditer(text)
            out: list[tuple[int, int]] = []
            match = self.rx.match
            pos = 0  # the end of the last match: starts before it lie inside it
            for i in starts:
                if i >= pos:
                    m = match(text, i)
                    if m is not None:  # (never empty: window patterns have width >= 1)
                        pos = m.end()
                        out.append((i, pos))
            return out
        if self.mode == "window":
            ranges: list[tuple[int, int]] = []  # possible starts lo..hi, both included
            tried = taken = 0
            for starts, off in zip(lists, self._offsets):
                if starts:
                    ranges += [(i - off if i > off else 0, i) for i in starts]
                    tried += len(starts) * (off + 1)
                    taken += 1
            if tried > len(text) * self._STARTS_PER_CHAR:
                return self._finditer(text)
            if taken > 1:
                ranges.sort()
            return self._try_starts(text, ranges)
        return self.spans_near(text, [(i, a) for a, starts in zip(self.anchors, lists)
                                      for i in starts])

    def spans_near(self, text: str, anchors: list[tuple[int, str]]) -> list[tuple[int, int]]:
        """``spans`` given every occurrence (start, anchor) of the anchors in ``text``."""
        if self.mode == "line":
            return self._spans_in_lines(text, anchors)
        near = self._near
        ranges: list[tuple[int, int]] = []  # possible starts lo..hi, both included
        for i, a in anchors:
            for off in near[a]:
                ranges.append((text.rfind("\n", 0, i) + 1 if off is _LINE else max(0, i - off), i))
        if sum(hi - lo for lo, hi in ranges) + len(ranges) > len(text) * self._STARTS_PER_CHAR:
            return self._finditer(text)
        ranges.sort()
        return self._try_starts(text, ranges)

    def _try_starts(self, text: str, ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The matches starting in the ranges (lo, hi), both included, sorted by lo: ``rx.match``
        tried at each possible start from left to right, skipping the starts inside a match
        found (exactly ``finditer``'s own order)."""
        out: list[tuple[int, int]] = []
        match = self.rx.match
        pos = 0  # every start before pos has been tried, or lies inside a match found
        # with first characters, only where a match's first character can be: a C-level
        # search for it in lo..hi (one character: endpos cuts nothing a match could need)
        first = self._first.search if self._first is not None else None
        for lo, hi in ranges:
            s = lo if lo > pos else pos
            while s <= hi:
                if first is not None:
                    f = first(text, s, hi + 1)
                    if f is None:
                        s = hi + 1
                        break
                    s = f.start()
                m = match(text, s)
                if m is None:
                    s += 1
                else:  # never empty: start rules are only made for patterns of width >= 1
                    out.append((s, m.end()))
                    s = m.end()
            if s > pos:
                pos = s
        return out

    def _finditer(self, text: str) -> list[tuple[int, int]]:
        return [(m.start(), m.end()) for m in self.rx.finditer(text) if m.end() > m.start()]

    def _spans_in_lines(self, text: str, anchors: list[tuple[int, str]]) -> list[tuple[int, int]]:
        if self._consumed is not None:
            # every character of a match is one the pattern can consume, so a match holding
            # an anchor at i starts in [j, i], j reached by stepping back from i over such
            # characters (never over a line break: nothing in a line-mode pattern matches
            # one); rx.match cannot leave the line either, so this is finditer over the line
            # (at most _MAX_OFFSET steps: a class as wide as \\w would walk back over whole
            # paragraphs, one Python step per character; then the lines are searched instead)
            consumed = self._consumed.match
            ranges: list[tuple[int, int]] = []
            for i, _a in anchors:
                j = i
                while j and consumed(text, j - 1) is not None:
                    j -= 1
                    if i - j > _MAX_OFFSET:
                        break
                else:
                    ranges.append((j, i))
                    continue
                break
            else:
                ranges.sort()
                return self._try_starts(text, ranges)
        # each line holding an anchor: (its start, its end, the start of its last anchor)
        lines: list[list[int]] = []
        ls = le = -1  # the last line taken: occurrences inside it need no search
        for i, _a in sorted(anchors):
            if ls <= i < le:
                lines[-1][2] = i
                continue
            end = text.find("\n", i)
            ls, le = text.rfind("\n", 0, i) + 1, len(text) if end == -1 else end + 1
            lines.append([ls, le, i])
        if self._first is not None:
            # every match of a line holds an anchor at or after its start: the possible starts
            # run from the line's start to its last anchor, and a match cannot leave its line,
            # so rx.match there (seeing the text beyond the line) finds what finditer over the
            # line finds
            return self._try_starts(text, [(ls, last) for ls, _le, last in lines])
        out: list[tuple[int, int]] = []
        for ls, le, _last in lines:
            out.extend((m.start(), m.end()) for m in self.rx.finditer(text, ls, le)
                       if m.end() > m.start())
        return out


def search_mode(pattern: str) -> str:
    """How the matcher searches a pattern: ``window`` or ``line`` (only near its anchors, fast)
    or ``whole`` (a match may run across lines over any length; tried only where its
    alternatives can start when each has a start rule, else over the whole text of every
    document, slow). See ``_PatternScanner``."""
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


def _consumed_class(items: list[tuple[Any, Any]], flags: int) -> re.Pattern[str] | None:
    """A pattern of one character that matches every character the parsed pattern can consume
    (lookarounds consume none), or None when that is not a short list of characters and
    classes: anything negated (``[^。]``, ``\\D``), ``.``, a backreference, unknown nodes.
    ``\\d+(?:\\.\\d+)?亿(?<!十)人`` -> ``\\d|\\.|亿|人``."""
    nodes = _consumed_nodes(items)
    if not nodes:
        return None
    try:
        state = _parser.State()
        state.flags = flags
        sub = _parser.SubPattern(state, [(_c.BRANCH, (None, [
            _parser.SubPattern(state, [n]) for n in nodes]))])
        return _compiler.compile(sub, flags)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - cannot build it: no bound
        return None


_NEGATED = frozenset({_c.NEGATE, _c.CATEGORY_NOT_DIGIT, _c.CATEGORY_NOT_SPACE,
                      _c.CATEGORY_NOT_WORD, _c.CATEGORY_NOT_LINEBREAK})


def _consumed_nodes(items: list[tuple[Any, Any]]) -> list[tuple[Any, Any]] | None:
    nodes: list[tuple[Any, Any]] = []
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        if op is _c.LITERAL:
            nodes.append((op, av))
        elif op is _c.IN:
            if any(o is _c.NEGATE or (o is _c.CATEGORY and a in _NEGATED) for o, a in av):
                return None
            nodes.append((op, av))
        elif op is _c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            found = None if add_flags or del_flags else _consumed_nodes(list(sub))
            if found is None:
                return None
            nodes += found
        elif op is _c.BRANCH:
            for b in av[1]:
                found = _consumed_nodes(list(b))
                if found is None:
                    return None
                nodes += found
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            found = _consumed_nodes(list(av[2]))
            if found is None:
                return None
            nodes += found
        else:  # NOT_LITERAL, ANY, GROUPREF and anything else
            return None
    return nodes


_ZERO_WIDTH = frozenset({_c.ASSERT, _c.ASSERT_NOT, _c.AT})
_ONE_CHAR = frozenset({_c.LITERAL, _c.NOT_LITERAL, _c.IN, _c.ANY})


def _first_search(items: list[tuple[Any, Any]], flags: int) -> re.Pattern[str] | None:
    """A pattern of one character that matches the first character of every match of the
    parsed pattern (a superset: lookarounds and ``\\b`` before it are ignored), or None when
    there is none to be had (the pattern can match empty, starts with a backreference, or
    anything unknown). ``(?<!农业)(?:保险|医保)[^,]{0,4}?扩面`` -> ``保|医``."""
    nodes, nullable = _first_nodes(items, flags)
    if nodes is None or nullable or not nodes:
        return None
    try:
        state = _parser.State()
        state.flags = flags
        if len(nodes) == 1:
            sub = _parser.SubPattern(state, list(nodes))
        else:
            sub = _parser.SubPattern(state, [(_c.BRANCH, (None, [
                _parser.SubPattern(state, [n]) for n in nodes]))])
        return _compiler.compile(sub, flags)  # type: ignore[no-any-return]
    except Exception:  # noqa: BLE001 - cannot build it: try every start
        return None


def _first_nodes(items: list[tuple[Any, Any]], flags: int
                 ) -> tuple[list[tuple[Any, Any]] | None, bool]:
    """The one-character nodes a match of the sequence can start with (None: unknown), and
    whether the sequence can match the empty string."""
    nodes: list[tuple[Any, Any]] = []
    for op, av in items:
        if op in _ZERO_WIDTH:
            continue
        if op in _ONE_CHAR:
            nodes.append((op, av))
            return nodes, False
        if op is _c.SUBPATTERN:
            _group, add_flags, del_flags, sub = av
            if add_flags or del_flags:  # (?i:...) and the like: not worth the care
                return None, True
            found, nullable = _first_nodes(list(sub), flags)
        elif op is _c.BRANCH:
            found, nullable = [], False
            for b in av[1]:
                f, n = _first_nodes(list(b), flags)
                if f is None:
                    return None, True
                found += f
                nullable = nullable or n
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            lo, _hi, sub = av
            found, nullable = _first_nodes(list(sub), flags)
            nullable = nullable or lo == 0
        else:
            return None, True
        if found is None:
            return None, True
        nodes += found
        if not nullable:
            return nodes, False
    return nodes, True


# Offsets of anchors beyond this are treated as unbounded (too many starts to try).
_MAX_OFFSET = 64


def _required_literals(items: list[tuple[Any, Any]], state: Any, bounded: bool = False,
                       shared: bool = False) -> tuple[frozenset[str], int | None] | None:
    """A set of strings one of which every match of the parsed sequence contains, with the
    most characters a match can hold before that string starts (None: unbounded); or None.

    The set is the best one found (longest shortest string, then fewest strings); with
    ``bounded``, the best one whose offset is bounded. The offset is the sum of the maximum
    widths of the items before the string (lookarounds are zero-width): the literal node that
    every match passes through starts at most that far into the match.

    With ``shared``, an alternation may also be represented by one string that every one of its
    alternatives requires, even when it is not any alternative's best: ``X亿(?:人口|人民)|Y亿人``
    gives {亿} (one string, found in far fewer places than {人口, 人民, 亿}) where without it
    the union of the alternatives' best sets is the only candidate. ``literal_core`` (which
    dates a pattern in the report) does not use it, so its answers do not change.
    """
    return _required(items, state, bounded, shared)[0]


def _required(items: list[tuple[Any, Any]], state: Any, bounded: bool, shared: bool
              ) -> tuple[tuple[frozenset[str], int | None] | None, dict[str, int | None]]:
    """``_required_literals``, and (with ``shared``) every single string the sequence requires
    with the most characters a match holds before it (None: unbounded)."""
    best: tuple[frozenset[str], int | None] | None = None
    singles: dict[str, int | None] = {}

    def consider(found: tuple[frozenset[str], int | None] | None, before: int | None,
                 inner: dict[str, int | None] | None = None) -> None:
        nonlocal best
        if shared and inner:
            for s, s_off in inner.items():
                single(s, s_off, before)
        if found is None:
            return
        cands, off = found
        off = None if before is None or off is None or before + off > _MAX_OFFSET else before + off
        if bounded and off is None:
            return
        if cands and all(cands) and (best is None or _score(cands) > _score(best[0])):
            best = (cands, off)

    def single(s: str, s_off: int | None, before: int | None) -> None:
        off = None if before is None or s_off is None or before + s_off > _MAX_OFFSET \
            else before + s_off
        if s not in singles or (off is not None and (singles[s] is None or off < singles[s])):
            singles[s] = off  # a match holds s at least at its first such place: the nearest

    before: int | None = 0  # the most characters the items so far can match
    run: list[str] = []
    run_at: int | None = 0
    for op, av in items:
        if op is _c.LITERAL:
            if not run:
                run_at = before
            run.append(chr(av))
            before = None if before is None else before + 1
            continue
        if run:
            consider((frozenset({"".join(run)}), 0), run_at)
            if shared:
                single("".join(run), 0, run_at)
            run = []
        if op is _c.SUBPATTERN:
            _group, add_flags, _del_flags, sub = av
            if not add_flags & re.IGNORECASE:
                consider(*_pair(_required(list(sub), state, bounded, shared), before))
        elif op is _c.ATOMIC_GROUP:
            consider(*_pair(_required(list(av), state, bounded, shared), before))
        elif op is _c.BRANCH:
            results = [_required(list(b), state, bounded, shared) for b in av[1]]
            alts = [found for found, _singles in results]
            found = [a for a in alts if a is not None]
            if len(found) == len(alts):  # every alternative holds one: the union is required
                offs = [off for _cands, off in found if off is not None]
                consider((frozenset().union(*(cands for cands, _off in found)),
                          max(offs) if len(offs) == len(found) else None), before)
            if shared and results:
                for s, off in _shared_strings([s_singles for _f, s_singles in results]):
                    consider((frozenset({s}), off), before, {s: off})
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, _c.POSSESSIVE_REPEAT):
            lo, _hi, sub = av
            if lo >= 1:  # the first repetition starts where the repeat does
                consider(*_pair(_required(list(sub), state, bounded, shared), before))
        before = _add_width(before, (op, av), state)
    if run:
        consider((frozenset({"".join(run)}), 0), run_at)
        if shared:
            single("".join(run), 0, run_at)
    return best, singles


def _shared_strings(singles: list[dict[str, int | None]]) -> list[tuple[str, int | None]]:
    """The strings every alternative requires, each with the most characters a match holds
    before it (None: unbounded). Only whole required strings: a string found inside the
    alternatives' longer ones (人 in 人口 and 人民) is often far more frequent than the union
    it would replace, and nothing here knows how frequent a string is."""
    out: list[tuple[str, int | None]] = []
    for s in sorted(set(singles[0]).intersection(*singles[1:])):
        offs = [alt[s] for alt in singles]
        bounded = [o for o in offs if o is not None]
        out.append((s, max(bounded) if len(bounded) == len(offs) else None))
    return out


def _pair(result: tuple[tuple[frozenset[str], int | None] | None, dict[str, int | None]],
          before: int | None) -> tuple[tuple[frozenset[str], int | None] | None, int | None,
                                       dict[str, int | None]]:
    """``consider``'s arguments from a nested ``_required`` result."""
    return result[0], before, result[1]


def _add_width(before: int | None, item: tuple[Any, Any], state: Any) -> int | None:
    """``before`` plus the maximum width of one parsed item (None when unbounded or large)."""
    if before is None:
        return None
    try:
        width = _parser.SubPattern(state, [item]).getwidth()[1]
    except Exception:  # noqa: BLE001 - cannot tell: unbounded
        return None
    return before + width if before + width <= _MAX_OFFSET else None


def _anchor_offsets(cands: frozenset[str], offset: int | None) -> dict[str, int | None]:
    """The anchors worth searching for, each with its offset into a match.

    An anchor that contains another anchor adds nothing: every occurrence holds the other.
    But the other sits further into the match, by its first position in the longer one.
    """
    kept = [a for a in cands if not any(b != a and b in a for b in cands)]
    return {b: None if offset is None else max(offset + a.find(b) for a in cands if b in a)
            for b in kept}


def _start_rules(items: list[tuple[Any, Any]], state: Any, flags: int
                 ) -> dict[str, tuple[int | None, ...]] | None:
    """Start rules of a pattern, per anchor, when each top-level alternative has one.

    An alternative's rule is an anchor at a bounded offset; failing that, for an alternative
    that cannot match a line break, any anchor with ``_LINE`` (it starts in the anchor's
    line). None when some alternative has neither.
    """
    alternatives = [items]
    if len(items) == 1 and items[0][0] is _c.BRANCH:
        alternatives = [list(b) for b in items[0][1][1]]
    rules: dict[str, set[int | None]] = {}
    for alt in alternatives:
        found = _required_literals(alt, state, bounded=True)
        if found is None:
            found = _required_literals(alt, state) if _newline_free(alt, flags) else None
            if found is None:
                return None
            found = (found[0], _LINE)
        for a, off in _anchor_offsets(*found).items():
            rules.setdefault(a, set()).add(off)
    return {a: tuple(offs) for a, offs in rules.items()}


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
