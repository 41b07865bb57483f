"""The YAML lexicon: schema, loading, validation and the content hash.

A lexicon file (schema in ``docs/lexicon-schema.md``) holds dimensions
(``feature``, ``pathway``, ``challenge``, ``domain``); each dimension holds
categories (codebook ids such as ``F1_population``); each category holds terms
(literal strings or regular expressions) and the terms considered and left out.

``validate_lexicon(path)`` returns *every* problem with its YAML line number;
``load_lexicon(path)`` returns a ``Lexicon`` or raises ``LexiconError`` naming
the first error. Warnings (a codebook category missing) do not stop loading.

Nothing is read at import time.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from pipeline.errors import LexiconError

DIMENSIONS: tuple[str, ...] = ("feature", "pathway", "challenge", "domain", "frame")
#: Dimensions that are tracked and reported but are none of the paper's features, pathways or
#: challenges (``frame``: the paper's own frame, 中国式现代化): scoring pairs no category of them.
TRACKED_ONLY: tuple[str, ...] = ("frame",)

#: The codebook's categories (../shared/docs/codebook.md), by dimension.
CODEBOOK: Mapping[str, tuple[str, ...]] = {
    "feature": ("F1_population", "F2_common_prosperity", "F3_material_spiritual",
                "F4_human_nature", "F5_peaceful_development"),
    "pathway": ("P1_leadership", "P2_philosophy", "P3_co_governance", "P4_technology"),
    "challenge": ("C1_demographic", "C2_social_change", "C3_economic_normal",
                  "C4_digital_disruption"),
    "domain": ("D_social_security",),
}

SCHEMA_VERSION = 1
_TOP_REQUIRED = ("schema", "name", "version", "dimensions")
_TOP_OPTIONAL = ("title", "description", "source", "licence", "authors", "url", "created",
                 "updated", "notes")
_DIM_KEYS = ("description", "categories")
_CAT_REQUIRED = ("id", "name_zh", "name_en", "definition", "terms")
_CAT_OPTIONAL = ("excluded",)
_TERM_KEYS = ("term", "pattern", "gap", "max_gap", "label", "weight", "note", "also_in",
              "not_before", "not_after", "not_in", "formula")
#: The top-level list of words that mark a sentence as framing a challenge as one.
CUES_KEY = "challenge_cues"
_CUE_KEYS = ("cue", "note")
_GUARD_KEYS = ("not_before", "not_after", "not_in")
#: ``max_gap`` when a ``gap`` entry gives none, and the most it may be.
DEFAULT_MAX_GAP = 4
MAX_GAP_LIMIT = 12
#: What a ``gap`` never spans, besides line breaks: sentence and clause punctuation
#: (NFKC-normalised: ，；：！？ are , ; : ! ?). The enumeration comma 、 and quotes may sit in a gap.
GAP_STOPS = "。,;:!?"
_CATEGORY_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: The longest literal term: a word or a phrase (the shipped lexicon's longest has 13
#: characters). The segmenter's dictionary holds every prefix of every term, so a term's cost
#: grows with the square of its length: one of 40,000 characters took 1.6 GB and did not finish.
MAX_TERM_CHARS = 64
#: The longest pattern source (the shipped lexicon's longest has 82 characters).
MAX_PATTERN_CHARS = 1000

Severity = Literal["error", "warning", "note"]


@dataclass(frozen=True)
class Term:
    """One lexicon entry. For a pattern, ``text`` is its label and ``pattern`` the regex source."""

    text: str
    category: str
    dimension: str
    weight: float = 1.0
    pattern: str | None = None
    note: str = ""
    also_in: tuple[str, ...] = ()
    line: int = 0
    #: the readable form a pattern was compiled from (``gap``/``max_gap``, ``term`` with
    #: ``not_before``/``not_after``/``not_in``), as (key, value) pairs; () for a plain entry.
    #: Not part of the content hash: the compiled ``pattern`` is.
    spec: tuple[tuple[str, Any], ...] = ()
    #: a fixed political formula (``formula: true``): counted like any term, its share of a
    #: category shown apart in the report (docs/lexicon-schema.md, "Formulas").
    formula: bool = False

    @property
    def is_pattern(self) -> bool:
        return self.pattern is not None

    @property
    def guarded_literal(self) -> str | None:
        """The literal of a ``term`` entry compiled to a pattern by its sense guards, else None."""
        return dict(self.spec).get("term") if self.spec else None


@dataclass(frozen=True)
class Category:
    id: str
    dimension: str
    name_zh: str
    name_en: str
    definition: str
    terms: tuple[Term, ...]
    excluded: tuple[Term, ...]


@dataclass(frozen=True)
class Cue:
    """A challenge-framing cue (``challenge_cues``): a literal word; a challenge hit whose
    clause (the stretch of its sentence between , ; :) holds one is counted as ``framed``
    (docs/engine.md)."""

    text: str
    note: str = ""
    line: int = 0


@dataclass(frozen=True)
class Lexicon:
    name: str
    version: str
    hash: str  # full sha256 hex of the canonical content (see ``content_hash``)
    path: Path | None
    categories: tuple[Category, ...]
    meta: Mapping[str, str] = field(default_factory=dict)
    descriptions: Mapping[str, str] = field(default_factory=dict)  # dimension -> description
    challenge_cues: tuple[Cue, ...] = ()

    def __hash__(self) -> int:  # the content hash identifies a lexicon (meta is a dict)
        return hash(self.hash)

    @property
    def short_hash(self) -> str:
        """The first 16 hex digits of ``hash``, for tables and messages."""
        return self.hash[:16]

    @property
    def dimensions(self) -> tuple[str, ...]:
        present = {c.dimension for c in self.categories}
        return tuple(d for d in DIMENSIONS if d in present)

    def category(self, id: str) -> Category:
        for cat in self.categories:
            if cat.id == id:
                return cat
        known = ", ".join(c.id for c in self.categories)
        raise KeyError(f"no category {id!r} in lexicon {self.name!r} (known: {known})")

    def terms(self) -> list[Term]:
        """Every counted term (literal and pattern) of every category, in file order."""
        return [t for cat in self.categories for t in cat.terms]

    def user_words(self) -> list[str]:
        """The literal terms (no patterns), unique and sorted: words the tokenizer must keep whole."""
        return sorted({t.text for t in self.terms()
                       if t.pattern is None or t.guarded_literal is not None})


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a lexicon file: ``path:line: message. fix``."""

    path: str
    line: int
    message: str
    fix: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{where}: {prefix}{self.message.rstrip('.')}. {self.fix}".rstrip()


# --------------------------------------------------------------------------- public API


def load_lexicon(path: Path | None = None) -> Lexicon:
    """Load and check a lexicon file (default: the bundled ``lexicons/mobilize.yaml``).

    Raises ``LexiconError`` naming the file, the line and the fix of the first error.
    """
    if path is None:
        from pipeline.config import DEFAULT_LEXICON

        path = DEFAULT_LEXICON
    lexicon, problems = _parse_file(Path(path))
    errors = [p for p in problems if p.severity == "error"]
    if errors or lexicon is None:
        first = errors[0]
        more = f" ({len(errors) - 1} more: run `mobilize lexicon validate {path}`)" \
            if len(errors) > 1 else ""
        raise LexiconError(first.message.rstrip(".") + more, path=first.path,
                           line=first.line or None, fix=first.fix)
    return lexicon


def validate_lexicon(path: Path) -> list[Problem]:
    """Every problem of a lexicon file (errors and warnings), sorted by line."""
    _, problems = _parse_file(Path(path))
    return problems


def parse_lexicon_text(text: str, *, path: Path | None = None) -> tuple[Lexicon | None, list[Problem]]:
    """Parse lexicon YAML held in memory: (lexicon or None when there are errors, problems)."""
    return _parse_text(text, path)


def content_hash(lexicon_content: Mapping[str, Any]) -> str:
    """sha256 hex of the canonical JSON (sorted keys, no spaces, UTF-8) of a content mapping."""
    blob = json.dumps(lexicon_content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def build_lexicon(*, name: str, version: str, categories: tuple[Category, ...],
                  meta: Mapping[str, str] | None = None,
                  descriptions: Mapping[str, str] | None = None,
                  path: Path | None = None, challenge_cues: tuple[Cue, ...] = ()) -> Lexicon:
    """A ``Lexicon`` from parts, with its content hash computed (used by loaders and importers)."""
    meta = dict(meta or {})
    descriptions = dict(descriptions or {})
    content = _canonical(name, version, categories, meta, descriptions)
    if challenge_cues:  # (absent from the hash when there are none: older lexicons keep theirs)
        content["challenge_cues"] = sorted([c.text, c.note] for c in challenge_cues)
    digest = content_hash(content)
    return Lexicon(name=name, version=version, hash=digest, path=path, categories=categories,
                   meta=meta, descriptions=descriptions, challenge_cues=tuple(challenge_cues))


def to_yaml(lexicon: Lexicon) -> str:
    """The lexicon as schema-1 YAML (loading the result gives the same hash)."""
    doc: dict[str, Any] = {"schema": SCHEMA_VERSION, "name": lexicon.name,
                           "version": lexicon.version}
    doc.update(lexicon.meta)
    if lexicon.challenge_cues:
        doc[CUES_KEY] = [{"cue": c.text, "note": c.note} if c.note else c.text
                         for c in lexicon.challenge_cues]
    dims: dict[str, Any] = {}
    for dim in lexicon.dimensions:
        cats = [c for c in lexicon.categories if c.dimension == dim]
        block: dict[str, Any] = {}
        if lexicon.descriptions.get(dim):
            block["description"] = lexicon.descriptions[dim]
        block["categories"] = [_category_yaml(c) for c in cats]
        dims[dim] = block
    doc["dimensions"] = dims
    return str(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=100))


# --------------------------------------------------------------------------- canonical form


def _term_dict(t: Term) -> dict[str, Any]:
    out = {"text": t.text, "pattern": t.pattern, "weight": float(t.weight), "note": t.note,
           "also_in": sorted(t.also_in)}
    if t.formula:  # (only when set: the hashes of lexicons without formulas are unchanged)
        out["formula"] = True
    return out


def _canonical(name: str, version: str, categories: tuple[Category, ...],
               meta: Mapping[str, str], descriptions: Mapping[str, str]) -> dict[str, Any]:
    """The content that the hash covers: everything but line numbers and the order of entries."""

    def key(d: dict[str, Any]) -> tuple[str, str]:
        return (d["text"], d["pattern"] or "")

    cats: list[dict[str, Any]] = []
    for c in sorted(categories, key=lambda c: c.id):
        terms = [_term_dict(t) for t in c.terms]
        excluded = [_term_dict(t) for t in c.excluded]
        terms.sort(key=key)
        excluded.sort(key=key)
        cats.append({"id": c.id, "dimension": c.dimension, "name_zh": c.name_zh,
                     "name_en": c.name_en, "definition": c.definition,
                     "terms": terms, "excluded": excluded})
    return {"schema": SCHEMA_VERSION, "name": name, "version": version, "meta": dict(meta),
            "descriptions": dict(descriptions), "categories": cats}


def _term_yaml(t: Term) -> Any:
    if t.pattern is None and t.weight == 1.0 and not t.note and not t.also_in \
            and not t.formula:
        return t.text
    out: dict[str, Any] = {}
    if t.spec:
        for key, val in t.spec:
            out[key] = [list(v) if isinstance(v, tuple) else v for v in val] \
                if isinstance(val, tuple) else val
        if "gap" in out:
            out["label"] = t.text
    elif t.pattern is None:
        out["term"] = t.text
    else:
        out["pattern"] = t.pattern
        out["label"] = t.text
    if t.weight != 1.0:
        out["weight"] = t.weight
    if t.also_in:
        out["also_in"] = list(t.also_in)
    if t.formula:
        out["formula"] = True
    if t.note:
        out["note"] = t.note
    return out


def _category_yaml(c: Category) -> dict[str, Any]:
    out: dict[str, Any] = {"id": c.id, "name_zh": c.name_zh, "name_en": c.name_en,
                           "definition": c.definition,
                           "terms": [_term_yaml(t) for t in c.terms]}
    if c.excluded:
        out["excluded"] = [_term_yaml(t) for t in c.excluded]
    return out


# --------------------------------------------------------------------------- parsing


def _parse_file(path: Path) -> tuple[Lexicon | None, list[Problem]]:
    if not path.is_file():
        return None, [Problem(str(path), 0, "no such lexicon file",
                              "Give the path of a lexicon YAML file (see docs/lexicon-schema.md), "
                              "or omit it to use lexicons/mobilize.yaml")]
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, [Problem(str(path), 0, f"not UTF-8 text ({exc.reason})",
                              "Save the lexicon as UTF-8")]
    return _parse_text(text, path)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _loader(text: str) -> Any:
    """A YAML loader for ``text``: libyaml's ``CSafeLoader`` when PyYAML was built with it.

    Why: composing the bundled lexicon with the pure-Python ``SafeLoader`` takes about 0.5 s of
    every run's planning; libyaml composes the same nodes, with the same line marks, about ten
    times faster. The pure-Python loader is kept where the two disagree, so that a file fails
    (or loads) exactly as it always did: text holding characters its reader refuses, or tabs
    (libyaml accepts tabs in places where the pure-Python scanner reports an error) or a
    byte-order mark after the start (libyaml skips it); and, in ``_compose``, to report syntax
    errors and re-read lenient flow values (``_lenient_flow_scalar``).
    """
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is None or "\t" in text or "\ufeff" in text \
            or yaml.reader.Reader.NON_PRINTABLE.search(text):
        return yaml.SafeLoader(text)
    return fast(text)


def _lenient_flow_scalar(root: yaml.Node) -> bool:
    """Whether libyaml read an unquoted value inside ``[...]``/``{...}`` holding one of ``?:,[]{}#``:
    the pure-Python scanner ends such a value there (``{a: 1 ? , b: 2}`` is an error to it),
    so the file is composed again by the pure-Python loader."""
    todo: list[tuple[yaml.Node, bool]] = [(root, False)]
    seen: set[int] = set()  # (aliases share nodes, and may make cycles)
    while todo:
        node, in_flow = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            if in_flow and not node.style and any(ch in node.value for ch in "?:,[]{}#"):
                return True
            continue
        in_flow = in_flow or bool(node.flow_style)
        if isinstance(node, yaml.SequenceNode):
            todo.extend((item, in_flow) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            todo.extend((n, in_flow) for pair in node.value for n in pair)
    return False


class _Parser:
    """Walks the composed YAML node tree, so every problem gets its line number."""

    def __init__(self, text: str, path: Path | None) -> None:
        self.text = text
        self.path = path
        self.where = str(path) if path is not None else "<lexicon>"
        self.problems: list[Problem] = []
        self.loader = _loader(text)

    # -- helpers
    def error(self, node: yaml.Node | int, message: str, fix: str,
              severity: Severity = "error") -> None:
        line = node if isinstance(node, int) else _line(node)
        self.problems.append(Problem(self.where, line, message, fix, severity))

    def value(self, node: yaml.Node) -> Any:
        try:
            return self.loader.construct_object(node, deep=True)
        except (ValueError, TypeError, OverflowError, yaml.YAMLError) as exc:
            # an explicit tag that does not fit its value (``!!int 退休``): YAML's constructor
            # raises a bare ValueError; report it at its line and go on with the plain text
            tag = getattr(node, "tag", "")
            self.error(node, f"the value cannot be read as {tag.rsplit(':', 1)[-1]} ({exc})",
                       "Remove the `!!` tag before the value")
            return node.value if isinstance(node, yaml.ScalarNode) else None

    def mapping(self, node: yaml.Node, what: str, required: tuple[str, ...],
                optional: tuple[str, ...]) -> dict[str, yaml.Node] | None:
        if not isinstance(node, yaml.MappingNode):
            self.error(node, f"{what} must be a mapping (key: value lines)",
                       f"Write {what} as `key: value` lines with the keys "
                       f"{', '.join(required + optional)}")
            return None
        out: dict[str, yaml.Node] = {}
        allowed = required + optional
        for knode, vnode in node.value:
            key = self.value(knode)
            if not isinstance(key, str):
                self.error(knode, f"{what}: key {key!r} is not a name",
                           f"Use one of: {', '.join(allowed)}")
                continue
            if key in out:
                self.error(knode, f"{what}: key {key!r} appears twice",
                           "Keep one of them (YAML would silently use the last)")
                continue
            if key not in allowed:
                self.error(knode, f"{what}: unknown key {key!r}",
                           f"Use one of: {', '.join(allowed)} (see docs/lexicon-schema.md)")
                continue
            out[key] = vnode
        for key in required:
            if key not in out:
                self.error(node, f"{what}: missing key {key!r}", f"Add `{key}:` to {what}")
        return out

    def string(self, node: yaml.Node | None, what: str, *, required: bool = True) -> str:
        if node is None:
            return ""
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{what} must be a single value, not a list or mapping",
                       f"Write {what} as text on one line")
            return ""
        val = self.value(node)
        if val is None or (isinstance(val, str) and not val.strip()):
            if required:
                self.error(node, f"{what} is empty", f"Write the {what}")
            return ""
        if isinstance(val, bool):
            self.error(node, f"{what} is a yes/no value, not text", f"Quote it: '{node.value}'")
            return str(node.value)
        return str(val).strip() if isinstance(val, str) else str(node.value)

    def _compose(self) -> yaml.Node | None:
        """The document's node tree. A syntax error found by libyaml is found again by the
        pure-Python parser, whose messages (and marks) are the ones users have always seen."""
        if isinstance(self.loader, yaml.SafeLoader):
            return self.loader.get_single_node()  # type: ignore[no-any-return]
        try:
            root = self.loader.get_single_node()
            if root is None or not _lenient_flow_scalar(root):
                return root  # type: ignore[no-any-return]
        except yaml.YAMLError:
            pass
        self.loader.dispose()
        self.loader = yaml.SafeLoader(self.text)
        return self.loader.get_single_node()  # type: ignore[no-any-return]

    # -- the document
    def parse(self) -> Lexicon | None:
        try:
            root = self._compose()
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else 0
            problem = (exc.problem or str(exc)).strip()
            self.error(line, f"YAML syntax error: {problem}",
                       "Fix the YAML at this line (check indentation, quotes and `- ` list "
                       "markers); quote terms holding `:`, `#`, `[` or `{`")
            return None
        except yaml.YAMLError as exc:  # pragma: no cover - non-marked YAML errors are rare
            self.error(0, f"YAML error: {exc}", "Fix the YAML")
            return None
        finally:
            pass
        if root is None:
            self.error(1, "the lexicon file is empty", "Write a lexicon (see docs/lexicon-schema.md)")
            return None
        top = self.mapping(root, "the lexicon", _TOP_REQUIRED, _TOP_OPTIONAL + (CUES_KEY,))
        if top is None:
            return None
        if "schema" in top:
            schema = self.value(top["schema"])
            if schema != SCHEMA_VERSION:
                self.error(top["schema"], f"unsupported schema {schema!r}",
                           f"This mobilize reads `schema: {SCHEMA_VERSION}`")
        name = self.string(top.get("name"), "name")
        version = self.string(top.get("version"), "version")
        if name and not re.fullmatch(r"[A-Za-z0-9_.\-]+", name):
            self.error(top["name"], f"name {name!r} is not a simple identifier",
                       "Use letters, digits, `_`, `-` or `.` (it names output files)")
        meta: dict[str, str] = {}
        for key in _TOP_OPTIONAL:
            if key in top:
                meta[key] = self._meta_value(top[key], key)
        descriptions: dict[str, str] = {}
        raw_cats: list[tuple[str, yaml.Node]] = []
        dims_node = top.get("dimensions")
        if dims_node is not None:
            dims = self.mapping(dims_node, "dimensions", (), DIMENSIONS)
            # unknown dimension ids are reported by mapping() as unknown keys; reword them:
            self._reword_unknown_dimensions()
            for dim, dnode in (dims or {}).items():
                block = self.mapping(dnode, f"dimension {dim!r}", ("categories",), ("description",))
                if block is None:
                    continue
                if "description" in block:
                    descriptions[dim] = self.string(block["description"],
                                                    f"description of dimension {dim!r}",
                                                    required=False)
                cnode = block.get("categories")
                if cnode is None:
                    continue
                if not isinstance(cnode, yaml.SequenceNode) or not cnode.value:
                    self.error(cnode, f"dimension {dim!r}: categories must be a non-empty list",
                               "List categories as `- id: ...` items")
                    continue
                raw_cats.extend((dim, n) for n in cnode.value)
        cues = self._cues(top[CUES_KEY]) if CUES_KEY in top else ()
        categories = self._categories(raw_cats)
        self._check_overlaps(categories)
        self._check_codebook(categories, dims_node if dims_node is not None else root)
        if any(p.severity == "error" for p in self.problems):
            return None
        return build_lexicon(name=name, version=version, categories=tuple(categories),
                             meta=meta, descriptions=descriptions, path=self.path,
                             challenge_cues=cues)

    def _cues(self, node: yaml.Node) -> tuple[Cue, ...]:
        """``challenge_cues``: a list of words, each plain or ``{cue: word, note: why}``."""
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.error(node, f"{CUES_KEY} must be a non-empty list of words",
                       f"Write `{CUES_KEY}:` with `- word` or `- {{cue: word, note: why}}` "
                       "items (see docs/lexicon-schema.md), or remove the key")
            return ()
        out: list[Cue] = []
        seen: dict[str, int] = {}
        for item in node.value:
            where = f"{CUES_KEY} item"
            note = ""
            if isinstance(item, yaml.MappingNode):
                m = self.mapping(item, where, ("cue",), ("note",))
                if m is None or "cue" not in m:
                    continue
                text = self._literal(m["cue"], where)
                note = self.string(m.get("note"), "note of a cue", required=False)
            else:
                text = self._literal(item, where)
            if not text:
                continue
            if text in seen:
                self.error(item, f"{CUES_KEY}: cue {text!r} is listed twice (first at line "
                           f"{seen[text]})", "Delete one of them")
                continue
            seen[text] = _line(item)
            out.append(Cue(text, note, _line(item)))
        return tuple(out)

    def _meta_value(self, node: yaml.Node, key: str) -> str:
        if isinstance(node, yaml.SequenceNode):
            parts = [self.string(n, f"{key} item") for n in node.value]
            return "; ".join(p for p in parts if p)
        return self.string(node, key, required=False)

    def _reword_unknown_dimensions(self) -> None:
        for i, p in enumerate(self.problems):
            if p.message.startswith("dimensions: unknown key"):
                dim = p.message.split("unknown key ", 1)[1]
                self.problems[i] = Problem(p.path, p.line, f"unknown dimension {dim}",
                                           f"Use one of: {', '.join(DIMENSIONS)}")

    # -- categories and terms
    def _categories(self, raw: list[tuple[str, yaml.Node]]) -> list[Category]:
        cats: list[Category] = []
        seen: dict[str, int] = {}
        for dim, node in raw:
            m = self.mapping(node, "a category", _CAT_REQUIRED, _CAT_OPTIONAL)
            if m is None:
                continue
            cid = self.string(m.get("id"), "category id")
            if cid and not _CATEGORY_ID.match(cid):
                self.error(m["id"], f"category id {cid!r} is not an ASCII identifier",
                           "Use letters, digits and `_`, starting with a letter (e.g. F1_population)")
            if cid in seen:
                self.error(m["id"], f"category {cid!r} is defined twice (first at line {seen[cid]})",
                           "Merge the two into one category")
                continue
            if cid:
                seen[cid] = _line(m["id"])
            label = f"category {cid or '?'}"
            name_zh = self.string(m.get("name_zh"), f"name_zh of {label}")
            name_en = self.string(m.get("name_en"), f"name_en of {label}")
            definition = self.string(m.get("definition"), f"definition of {label}")
            terms = self._terms(m.get("terms"), cid, dim, excluded=False)
            excluded = self._terms(m.get("excluded"), cid, dim, excluded=True)
            if "terms" in m and not terms and isinstance(m["terms"], yaml.SequenceNode) \
                    and not m["terms"].value:
                self.error(m["terms"], f"{label} has no terms", "List at least one term")
            self._check_duplicates(cid, terms, excluded)
            cats.append(Category(cid, dim, name_zh, name_en, definition, tuple(terms),
                                 tuple(excluded)))
        return cats

    def _terms(self, node: yaml.Node | None, cid: str, dim: str, *, excluded: bool) -> list[Term]:
        if node is None:
            return []
        what = "excluded" if excluded else "terms"
        if not isinstance(node, yaml.SequenceNode):
            self.error(node, f"category {cid}: {what} must be a list",
                       f"List {what} as `- ` items")
            return []
        out: list[Term] = []
        for item in node.value:
            term = self._term(item, cid, dim, excluded=excluded)
            if term is not None:
                out.append(term)
        return out

    def _term(self, node: yaml.Node, cid: str, dim: str, *, excluded: bool) -> Term | None:
        term = self._term_body(node, cid, dim, excluded=excluded)
        if term is None or not isinstance(node, yaml.MappingNode):
            return term
        fnode = next((v for k, v in node.value if getattr(k, "value", None) == "formula"), None)
        if fnode is None:
            return term
        flag = self.value(fnode)
        if not isinstance(flag, bool):
            self.error(fnode, f"category {cid}: formula {getattr(fnode, 'value', '')!r} is not "
                       "true or false", "Write `formula: true` (a fixed political formula) or "
                       "remove the key")
            return None
        return replace(term, formula=flag) if flag else term

    def _term_body(self, node: yaml.Node, cid: str, dim: str, *, excluded: bool) -> Term | None:
        line = _line(node)
        where = f"category {cid}" + (" (excluded)" if excluded else "")
        if isinstance(node, yaml.ScalarNode):
            text = self._literal(node, where)
            return Term(text, cid, dim, line=line) if text else None
        m = self.mapping(node, f"a term of {where}", (), _TERM_KEYS)
        if m is None:
            return None
        kinds = [k for k in ("term", "pattern", "gap") if k in m]
        if len(kinds) > 1:
            self.error(node, f"{where}: an entry has both `{kinds[0]}` and `{kinds[1]}`",
                       "Split it into two entries, or keep one")
            return None
        if not kinds:
            self.error(node, f"{where}: an entry has neither `term` nor `pattern`",
                       "Add `term: <text>`, `pattern: <regex>` with `label: <name>`, or "
                       "`gap: [<first part>, <second part>]`")
            return None
        if "max_gap" in m and "gap" not in m:
            self.error(m["max_gap"], f"{where}: `max_gap` belongs to a `gap` entry",
                       "Remove `max_gap`, or write the phrase as `gap: [<part>, <part>]`")
            return None
        if "pattern" in m:
            for key in _GUARD_KEYS:
                if key in m:
                    self.error(m[key], f"{where}: `{key}` belongs to a `term` or `gap` entry, "
                               "not to a `pattern`",
                               "Write the context as a lookaround in the regex ((?<!...) before, "
                               "(?!...) after), or use `term:` with the guard")
                    return None
        if "gap" in m and "not_in" in m:
            self.error(m["not_in"], f"{where}: `not_in` belongs to a `term` entry",
                       "Use `not_before`/`not_after` with a `gap` entry")
            return None
        weight = 1.0
        if "weight" in m:
            w = self.value(m["weight"])
            if isinstance(w, bool) or not isinstance(w, int | float) or not math.isfinite(w) \
                    or w <= 0:
                self.error(m["weight"], f"{where}: weight {m['weight'].value!r} is not a "
                           "positive number", "Write a number above 0, e.g. `weight: 1.5`")
            else:
                weight = float(w)
        note = self.string(m.get("note"), "note", required=False)
        also_in: tuple[str, ...] = ()
        if "also_in" in m:
            an = m["also_in"]
            if isinstance(an, yaml.ScalarNode):
                val = self.string(an, "also_in")
                also_in = (val,) if val else ()
            elif isinstance(an, yaml.SequenceNode):
                also_in = tuple(v for v in (self.string(n, "also_in item") for n in an.value) if v)
            else:
                self.error(an, f"{where}: also_in must be a list of category ids",
                           "Write `also_in: [C4_digital_disruption]`")
        guards = self._guards(m, where)
        if guards is None:
            return None
        if "term" in m:
            if "label" in m:
                self.error(m["label"], f"{where}: `label` belongs to a pattern entry",
                           "Remove `label` (a literal term is its own label)")
            text = self._literal(m["term"], where)
            if not text:
                return None
            if not guards:
                return Term(text, cid, dim, weight, None, note, also_in, line)
            for inner in guards.get("not_in", ()):
                if text not in inner or inner == text:
                    self.error(m["not_in"], f"{where}: not_in {inner!r} does not contain the "
                               f"term {text!r}",
                               f"List longer phrases that hold {text!r} (e.g. {text}X), or use "
                               "not_before / not_after for the neighbouring words")
                    return None
            spec = (("term", text),) + tuple((k, guards[k]) for k in _GUARD_KEYS if k in guards)
            return Term(text, cid, dim, weight, guarded_regex(text, **guards), note, also_in,
                        line, spec)
        if "gap" in m:
            return self._gap(m, node, where, cid, dim, weight, note, also_in, guards)
        source = self.string(m["pattern"], f"{where}: pattern")
        if not source:
            return None
        try:
            compiled = re.compile(source)
        except re.error as exc:
            self.error(m["pattern"], f"{where}: invalid regular expression {source!r}: {exc}",
                       "Fix the pattern (Python `re` syntax; quote it with single quotes in YAML)")
            return None
        if len(source) > MAX_PATTERN_CHARS:
            self.error(m["pattern"], f"{where}: pattern {source[:40]!r}... is {len(source):,} "
                       f"characters long, over the limit of {MAX_PATTERN_CHARS}",
                       "Split it into several patterns, each with its own label")
            return None
        risk = _backtracking_risk(compiled)
        if risk is not None:
            severity, problem, fix = risk
            self.error(m["pattern"], f"{where}: pattern '{source}' {problem}", fix,
                       severity=severity)
            if severity == "error":
                return None
        if compiled.match("") is not None:
            self.error(m["pattern"], f"{where}: pattern {source!r} matches the empty string",
                       "Make the pattern require at least one character (use + rather than *)")
            return None
        if _unbounded(source):
            self.error(m["pattern"], f"{where}: pattern '{source}' is searched over the whole "
                       "text of every document (slow): it has no short upper bound on its length "
                       "and may match across a line break (or is case-insensitive)",
                       "Bound its repeats (\\d{1,5} for \\d+, {0,6} for *), or keep it within a "
                       "line (add \\n to negated classes: [^。,;\\n])", severity="note")
        label = self.string(m.get("label"), "label", required=False)
        if "label" not in m:
            self.error(node, f"{where}: pattern {source!r} has no label",
                       "Add `label: <how it is named in tables>`, e.g. 覆盖N亿人")
            return None
        if not label:
            return None
        return Term(label, cid, dim, weight, source, note, also_in, line)

    def _strings(self, node: yaml.Node, what: str, where: str) -> tuple[str, ...] | None:
        """A list of literal strings (or one string); None after reporting a problem."""
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if isinstance(node, yaml.MappingNode) or not items:
            self.error(node, f"{where}: {what} must be a list of words",
                       f"Write `{what}: [word, word]`")
            return None
        out: list[str] = []
        for item in items:
            text = self._literal(item, f"{where}: {what}")
            if not text:
                return None
            out.append(text)
        return tuple(out)

    def _guards(self, m: dict[str, yaml.Node], where: str) -> dict[str, tuple[str, ...]] | None:
        """The sense guards (``not_before``/``not_after``/``not_in``) of an entry."""
        out: dict[str, tuple[str, ...]] = {}
        for key in _GUARD_KEYS:
            if key in m:
                words = self._strings(m[key], key, where)
                if words is None:
                    return None
                out[key] = words
        return out

    def _gap(self, m: dict[str, yaml.Node], node: yaml.Node, where: str, cid: str, dim: str,
             weight: float, note: str, also_in: tuple[str, ...],
             guards: dict[str, tuple[str, ...]]) -> Term | None:
        """A ``gap`` entry: fixed parts in order, at most ``max_gap`` characters between each."""
        gnode = m["gap"]
        if not isinstance(gnode, yaml.SequenceNode) or len(gnode.value) < 2:
            self.error(gnode, f"{where}: gap must list two or more parts",
                       "Write `gap: [地区, 差距]` (a part may be a list of alternatives: "
                       "`gap: [[地区, 城乡], 差距]`)")
            return None
        parts: list[tuple[str, ...]] = []
        for pnode in gnode.value:
            alts = self._strings(pnode, "gap part", where)
            if alts is None:
                return None
            parts.append(alts)
        max_gap = DEFAULT_MAX_GAP
        if "max_gap" in m:
            val = self.value(m["max_gap"])
            if isinstance(val, bool) or not isinstance(val, int) or not 1 <= val <= MAX_GAP_LIMIT:
                self.error(m["max_gap"], f"{where}: max_gap {m['max_gap'].value!r} is not a "
                           f"whole number from 1 to {MAX_GAP_LIMIT}",
                           f"Write e.g. `max_gap: {DEFAULT_MAX_GAP}` (characters allowed "
                           "between two parts)")
                return None
            max_gap = val
        label = self.string(m.get("label"), "label", required=False) if "label" in m else ""
        if not label:
            label = "…".join("/".join(alts) for alts in parts)
        source = gap_regex(tuple(parts), max_gap, **guards)
        spec: tuple[tuple[str, Any], ...] = (("gap", tuple(p if len(p) > 1 else p[0]
                                                           for p in parts)),
                                             ("max_gap", max_gap))
        spec += tuple((k, guards[k]) for k in _GUARD_KEYS if k in guards)
        return Term(label, cid, dim, weight, source, note, also_in, _line(node), spec)

    def _literal(self, node: yaml.Node, where: str) -> str:
        if not isinstance(node, yaml.ScalarNode):
            self.error(node, f"{where}: a term must be text", "Write the term as text")
            return ""
        val = self.value(node)
        if val is None or not str(val).strip():
            self.error(node, f"{where}: empty term", "Write the term's text, or delete the line")
            return ""
        if not isinstance(val, str):
            self.error(node, f"{where}: term {node.value!r} is read by YAML as "
                       f"{type(val).__name__}, not text", f"Quote it: '{node.value}'")
            return ""
        text = val
        if text != text.strip() or "\n" in text:
            self.error(node, f"{where}: term {text!r} has surrounding spaces or a line break",
                       "Remove them (documents are matched line by line, spaces collapsed)")
            return ""
        if "\t" in text or "  " in text:
            self.error(node, f"{where}: term {text!r} holds a tab or a run of spaces, which "
                       "normalised text never contains", "Use single spaces")
            return ""
        if len(text) > MAX_TERM_CHARS:
            self.error(node, f"{where}: term {text[:20]!r}... is {len(text):,} characters long, "
                       f"over the limit of {MAX_TERM_CHARS} (the segmenter keeps every prefix of "
                       "every term, so a long term costs memory with the square of its length)",
                       "A term is a word or a phrase: keep the phrase that marks the category")
            return ""
        norm = unicodedata.normalize("NFKC", text)
        if norm != text:
            self.error(node, f"{where}: term {text!r} changes under NFKC normalisation, so it "
                       "could never match the normalised text",
                       f"Write it as {norm!r}")
            return ""
        return text

    def _check_duplicates(self, cid: str, terms: list[Term], excluded: list[Term]) -> None:
        seen: dict[tuple[str, str], Term] = {}
        for t in terms:
            key = ("pattern", t.pattern) if t.pattern is not None else ("term", t.text)
            if key in seen:
                self.error(t.line, f"category {cid}: duplicate term {t.pattern or t.text!r} "
                           f"(first at line {seen[key].line})", "Delete one of them")
            else:
                seen[key] = t
        labels: dict[str, Term] = {}
        for t in (t for t in terms if t.pattern is not None):
            if t.text in labels:
                self.error(t.line, f"category {cid}: label {t.text!r} is used twice (first at "
                           f"line {labels[t.text].line})", "Give each pattern its own label")
            labels.setdefault(t.text, t)
        literal = {t.text: t for t in terms if t.pattern is None}
        for t in terms:
            if t.pattern is not None and t.text in literal:
                self.error(t.line, f"category {cid}: pattern label {t.text!r} is also a literal "
                           f"term of the category (line {literal[t.text].line}); their counts "
                           "would merge in the term tables",
                           "Give the pattern another label, e.g. with a suffix like (N)")
        ex_seen: set[str] = set()
        for t in excluded:
            if t.pattern is None and t.text in literal:
                self.error(t.line, f"category {cid}: term {t.text!r} is both listed (line "
                           f"{literal[t.text].line}) and excluded", "Keep it in one list only")
            if t.text in ex_seen:
                self.error(t.line, f"category {cid}: duplicate excluded term {t.text!r}",
                           "Delete one of them")
            ex_seen.add(t.text)

    def _check_overlaps(self, cats: list[Category]) -> None:
        ids = {c.id for c in cats}
        where: dict[tuple[str, str], list[Term]] = {}
        for c in cats:
            for t in c.terms:
                key = ("pattern", t.pattern) if t.pattern is not None else ("term", t.text)
                where.setdefault(key, []).append(t)
                for other in t.also_in:
                    if other not in ids:
                        self.error(t.line, f"category {c.id}: term {t.text!r} says also_in "
                                   f"{other!r}, which is not a category of this lexicon",
                                   f"Use one of: {', '.join(sorted(ids))}")
                    elif other == c.id:
                        self.error(t.line, f"category {c.id}: term {t.text!r} names its own "
                                   "category in also_in", "Remove it from also_in")
        for key, entries in where.items():
            cats_of = {t.category for t in entries}
            for t in entries:
                declared = set(t.also_in)
                missing = sorted(cats_of - {t.category} - declared)
                if missing:
                    self.error(t.line, f"category {t.category}: term {t.text!r} is also in "
                               f"{', '.join(missing)} without saying so (undeclared overlap)",
                               f"Add `also_in: [{', '.join(missing)}]` here and the reverse "
                               "there, if the term belongs in both; otherwise remove one")
                phantom = sorted(o for o in declared if o in ids and o not in cats_of)
                if phantom:
                    self.error(t.line, f"category {t.category}: term {t.text!r} says also_in "
                               f"{', '.join(phantom)}, but that category does not list it",
                               "List the term there too, or remove it from also_in")

    def _check_codebook(self, cats: list[Category], node: yaml.Node) -> None:
        present = {c.id: c.dimension for c in cats}
        missing = [cid for ids in CODEBOOK.values() for cid in ids if cid not in present]
        if missing:
            self.error(node, f"codebook categories missing: {', '.join(missing)}",
                       "Add them, or ignore this warning for a lexicon that covers only part of "
                       "the codebook", severity="warning")
        for dim, ids in CODEBOOK.items():
            for cid in ids:
                if cid in present and present[cid] != dim:
                    self.error(node, f"codebook category {cid} is under dimension "
                               f"{present[cid]!r}, not {dim!r}", f"Move it under `{dim}:`",
                               severity="warning")


def _alternatives(words: tuple[str, ...]) -> str:
    """A regex matching any of ``words`` (longest first, so the longest alternative wins)."""
    ordered = sorted(set(words), key=lambda w: (-len(w), w))
    return re.escape(ordered[0]) if len(ordered) == 1 else \
        "(?:" + "|".join(re.escape(w) for w in ordered) + ")"


def _context_guards(not_before: tuple[str, ...], not_after: tuple[str, ...]) -> tuple[str, str]:
    before = "".join(f"(?<!{re.escape(w)})" for w in sorted(set(not_before)))
    after = f"(?!{_alternatives(not_after)})" if not_after else ""
    return before, after


def guarded_regex(term: str, *, not_before: tuple[str, ...] = (), not_after: tuple[str, ...] = (),
                  not_in: tuple[str, ...] = ()) -> str:
    """The regex of a literal ``term`` that is not counted right after any of ``not_before``,
    right before any of ``not_after``, or inside any of the longer phrases ``not_in``.

    >>> guarded_regex("退休", not_in=("离退休干部",))
    '(?!(?<=离)退休干部)退休'
    """
    before, after = _context_guards(not_before, not_after)
    inside = ""
    for phrase in sorted(set(not_in)):
        # every place the term sits in the phrase: not (preceded by its left part and
        # followed by its right part)
        i = phrase.find(term)
        while i != -1:
            left, right = phrase[:i], phrase[i + len(term):]
            if left:
                inside += f"(?!(?<={re.escape(left)}){re.escape(term + right)})"
            else:
                inside += f"(?!{re.escape(term + right)})"
            i = phrase.find(term, i + 1)
    return before + inside + re.escape(term) + after


def gap_regex(parts: tuple[tuple[str, ...], ...], max_gap: int, *,
              not_before: tuple[str, ...] = (), not_after: tuple[str, ...] = ()) -> str:
    r"""The regex of a ``gap`` entry: the parts in order (each one of its alternatives), with at
    most ``max_gap`` characters between two parts, none of them sentence or clause punctuation
    or a line break (``GAP_STOPS``); the shortest gap is taken.

    >>> gap_regex((("地区",), ("差距",)), 4)
    '地区[^。,;:!?\\n]{0,4}?差距'
    """
    before, after = _context_guards(not_before, not_after)
    gap = f"[^{GAP_STOPS}\\n]{{0,{max_gap}}}?"
    return before + gap.join(_alternatives(p) for p in parts) + after


def _backtracking_risk(compiled: re.Pattern[str]) -> tuple[Severity, str, str] | None:
    """Whether a pattern can take more than linear time, as (severity, problem, fix), or None.

    - An error for nested quantifiers: a repeated group (at most more than once) that holds a
      repeat of varying count (``(\\d+)+``, ``(?:\\d?\\d?)*``), or alternatives that can
      start with the same character or match nothing (``(a|aa)*``). On a long run of text that
      fails to match at the end, the regex engine tries every way of splitting the run between
      the repeats: exponential time (catastrophic backtracking). Possessive repeats (``\\d++``)
      and atomic groups (``(?>...)``) never backtrack, so they are not counted.
    - A warning for a pattern that starts with an unbounded repeat (``\\d+亿``, ``[^。]+覆盖``)
      with no lookbehind before it: in a long run of the characters it repeats, a match is tried
      from each character and each try reads the rest of the run (time grows with the square
      of the run's length: 40 KB of digits took 49 s).
    """
    # (re's own parser: the standard library has no public parse tree of a pattern; the
    # public-looking sre_parse is a deprecated alias of this module since Python 3.11)
    from re import _constants as c  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]

    try:
        tree = _parser.parse(compiled.pattern, compiled.flags)
    except Exception:  # noqa: BLE001 - compiled already: cannot happen; say nothing
        return None
    repeats = (c.MAX_REPEAT, c.MIN_REPEAT)

    def children(op: Any, av: Any) -> list[list[tuple[Any, Any]]]:
        if op is c.SUBPATTERN:
            return [list(av[3])]
        if op in (c.ASSERT, c.ASSERT_NOT):
            return [list(av[1])]
        if op is c.BRANCH:
            return [list(b) for b in av[1]]
        if op in (*repeats, c.POSSESSIVE_REPEAT):
            return [list(av[2])]
        if op is c.GROUPREF_EXISTS:
            return [list(b) for b in av[1:] if b is not None]
        return []

    def first_chars(items: list[tuple[Any, Any]]) -> tuple[str, Any] | None:
        """The first character an alternative needs: ("lit", ch), ("set", node), or None
        when it can match the empty string or cannot be told."""
        for op, av in items:
            if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
                continue
            if op is c.LITERAL:
                return ("lit", chr(av))
            if op in (c.IN, c.NOT_LITERAL, c.ANY):
                return ("set", (op, av))
            if op is c.SUBPATTERN:
                return first_chars(list(av[3]))
            if op in (*repeats, c.POSSESSIVE_REPEAT) and av[0] >= 1:
                return first_chars(list(av[2]))
            return None
        return None

    def overlap(a: tuple[str, Any] | None, b: tuple[str, Any] | None) -> bool:
        if a is None or b is None:
            return True
        if a[0] == "lit" and b[0] == "lit":
            return bool(a[1] == b[1])
        if a[0] == "set" and b[0] == "set":
            return True  # two classes: assume they share a character
        lit, node = (a[1], b[1]) if a[0] == "lit" else (b[1], a[1])
        return _node_matches(node, lit, compiled.flags)

    def nested(items: list[tuple[Any, Any]], repeated: bool) -> str | None:
        for op, av in items:
            if op is c.ATOMIC_GROUP or op is c.POSSESSIVE_REPEAT:
                continue
            if op in repeats:
                lo, hi, body = av
                if repeated and lo != hi:
                    return "nests quantifiers (a repeated group holds a repeat, as (\\d+)+ does)"
                found = nested(list(body), repeated or hi > 1)
            elif op is c.BRANCH and repeated:
                alts = [first_chars(list(b)) for b in av[1]]
                if any(overlap(x, y) for i, x in enumerate(alts) for y in alts[i + 1:]):
                    return ("repeats a choice between alternatives that can start with the same "
                            "character or match nothing (as (a|aa)* does)")
                found = next((f for b in av[1] if (f := nested(list(b), True))), None)
            else:
                found = next((f for sub in children(op, av) if (f := nested(sub, repeated))),
                             None)
            if found:
                return found
        return None

    problem = nested(list(tree), False)
    if problem:
        return ("error", f"{problem}: on a long run of text that fails to match at its end, the "
                "regex engine tries every way of splitting the run between the repeats "
                "(catastrophic backtracking, time exponential in its length)",
                "Use one quantifier ((\\d+)+ -> \\d+), or make the inner one possessive "
                "(\\d++) or the group atomic ((?>...)+)")

    def leading_repeat(items: list[tuple[Any, Any]]) -> bool:
        for op, av in items:
            if op is c.AT:
                continue
            if op in (c.ASSERT, c.ASSERT_NOT):
                if av[0] < 0:  # a lookbehind: it can keep matches from starting inside runs
                    return False
                continue
            if op is c.SUBPATTERN:
                return leading_repeat(list(av[3]))
            if op is c.BRANCH:
                return any(leading_repeat(list(b)) for b in av[1])
            return op in repeats and av[1] is c.MAXREPEAT
        return False

    if leading_repeat(list(tree)):
        return ("warning", "starts with an unbounded repeat and no lookbehind: in a long run "
                "of the characters it repeats, a match is tried from each character and each "
                "try reads the rest of the run (time grows with the square of the run's length)",
                "Put a lookbehind before it, so that a match starts only where a run starts "
                "((?<!\\d)\\d+ for \\d+), or bound it (\\d{1,12})")
    return None


def _node_matches(node: tuple[Any, Any], ch: str, flags: int) -> bool:
    """Whether one parsed character node matches ``ch`` (compiled alone, to be exact)."""
    from re import _compiler, _parser  # type: ignore[attr-defined]

    try:
        state = _parser.State()
        state.flags = flags
        return _compiler.compile(_parser.SubPattern(state, [node]), flags).match(ch) is not None
    except Exception:  # noqa: BLE001 - cannot tell: assume it does
        return True


def _unbounded(source: str) -> bool:
    """True when the matcher must search a pattern over whole texts (its slow path)."""
    from pipeline.match import search_mode

    return search_mode(source) == "whole"


def _parse_text(text: str, path: Path | None) -> tuple[Lexicon | None, list[Problem]]:
    try:
        parser = _Parser(text, path)
    except yaml.reader.ReaderError as exc:  # a character YAML refuses, found before parsing
        where = str(path) if path is not None else "<lexicon>"
        pos = exc.position if isinstance(exc.position, int) else -1
        line = text[:pos].count("\n") + 1 if pos >= 0 else 0
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [Problem(where, line, f"the character {char} (a control character) is not "
                              "allowed in a YAML file",
                              "Delete it: it usually comes from copying text out of a PDF or a "
                              "word processor; save the file as plain UTF-8 text")]
    try:
        lexicon = parser.parse()
    finally:
        parser.loader.dispose()
    rank = {"error": 0, "warning": 1, "note": 2}
    problems = sorted(parser.problems, key=lambda p: (rank[p.severity], p.line))
    return lexicon, problems


# --------------------------------------------------------------------------- export / import

FORMATS: tuple[str, ...] = ("quanteda", "cntext", "liwc")
_GLOB = re.compile(r"[*?]")


@dataclass(frozen=True)
class Exported:
    """An exported dictionary: its text, and what the format could not hold."""

    text: str
    lost: tuple[str, ...]


def export_lexicon(lexicon: Lexicon, fmt: str) -> Exported:
    """The lexicon in quanteda's YAML, cntext's YAML or LIWC ``.dic``, keyed by category id.

    Only literal terms are exported: none of the three formats holds regular
    expressions, weights, notes or excluded terms (each pattern is listed in
    ``lost``). quanteda keeps the dimension (nested keys); cntext keeps the
    title, description and source; LIWC keeps only categories and terms.
    """
    lost: list[str] = []
    cats: dict[str, list[str]] = {}
    for c in lexicon.categories:
        words = []
        for t in c.terms:
            if t.pattern is not None:
                lost.append(f"{c.id}: pattern {t.text} ({t.pattern}) not exported: "
                            f"{fmt} has no regular expressions")
            elif fmt in ("quanteda", "liwc") and _GLOB.search(t.text):
                lost.append(f"{c.id}: term {t.text} holds * or ?, which {fmt} reads as a wildcard")
                words.append(t.text)
            else:
                words.append(t.text)
        cats[c.id] = words
    if any(t.weight != 1.0 for t in lexicon.terms()):
        lost.append(f"term weights: {fmt} has none (every term counts 1)")
    if fmt == "quanteda":
        nested: dict[str, dict[str, list[str]]] = {}
        for c in lexicon.categories:
            nested.setdefault(c.dimension, {})[c.id] = cats[c.id]
        head = (f"# quanteda dictionary exported by mobilize from lexicon {lexicon.name} "
                f"{lexicon.version} (hash {lexicon.short_hash})\n")
        text = head + yaml.safe_dump(nested, allow_unicode=True, sort_keys=False, width=1000)
    elif fmt == "cntext":
        doc = {
            "Name": lexicon.meta.get("title") or lexicon.name,
            "Desc": lexicon.meta.get("description")
            or f"mobilize lexicon {lexicon.name} {lexicon.version} (hash {lexicon.short_hash})",
            "Refer": lexicon.meta.get("source", ""),
            "Category": [c.id for c in lexicon.categories],
            "Dictionary": cats,
        }
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000)
    elif fmt == "liwc":
        number = {c.id: i for i, c in enumerate(lexicon.categories, start=1)}
        lines = ["%"] + [f"{n}\t{cid}" for cid, n in number.items()] + ["%"]
        owners: dict[str, list[int]] = {}
        for cid, words in cats.items():
            for w in words:
                owners.setdefault(w, []).append(number[cid])
        for w, nums in owners.items():
            lines.append(w + "\t" + "\t".join(str(n) for n in sorted(set(nums))))
        text = "\n".join(lines) + "\n"
    else:
        raise LexiconError(f"unknown export format {fmt!r}",
                           fix=f"Use one of: {', '.join(FORMATS)}")
    return Exported(text, tuple(lost))


def import_lexicon(text: str, fmt: str, *, name: str = "imported", source: Path | None = None,
                   dimension: str | None = None) -> Lexicon:
    """Read a quanteda YAML, cntext YAML or LIWC ``.dic`` dictionary as a ``Lexicon``.

    Categories keep their keys as ids; a category's dimension comes from the
    quanteda nesting, else from the codebook, else from the id's first letter
    when it is codebook-style (``F6_x``, ``C5``, ``D_x``), else ``dimension``.
    A term in several categories gets ``also_in`` on each. A trailing wildcard (``abc*``) becomes the literal ``abc`` (matching is on
    substrings, so the prefix already matches every word it starts); any other
    wildcard becomes a regular expression labelled by the original glob.
    """
    where = str(source) if source is not None else f"<{fmt}>"
    if dimension is not None and dimension not in DIMENSIONS:
        raise LexiconError(f"unknown dimension {dimension!r}",
                           fix=f"Use one of: {', '.join(DIMENSIONS)}")
    meta: dict[str, str] = {}
    groups: list[tuple[str | None, str, list[str]]] = []  # (dimension, category, words)
    if fmt in ("quanteda", "cntext"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise LexiconError(f"YAML syntax error: {getattr(exc, 'problem', exc)}", path=where,
                               line=mark.line + 1 if mark else None,
                               fix="Fix the YAML at this line") from None
        if not isinstance(data, dict):
            raise LexiconError(f"a {fmt} dictionary must be a YAML mapping", path=where,
                               fix="Give a file with `key: [terms]` entries")
        if fmt == "cntext":
            if not isinstance(data.get("Dictionary"), dict):
                raise LexiconError("a cntext dictionary needs a `Dictionary:` mapping", path=where,
                                   fix="Give a cntext YAML with Name, Desc, Refer, Category, "
                                       "Dictionary")
            for key, meta_key in (("Name", "title"), ("Desc", "description"), ("Refer", "source")):
                if data.get(key):
                    meta[meta_key] = str(data[key]).strip()
            for cid, words in data["Dictionary"].items():
                groups.append((None, str(cid), _words(words, where, str(cid))))
        else:
            _quanteda_groups(data, None, groups, where)
    elif fmt == "liwc":
        groups = _liwc_groups(text, where)
    else:
        raise LexiconError(f"unknown import format {fmt!r}", fix=f"Use one of: {', '.join(FORMATS)}")
    owners: dict[str, set[str]] = {}
    for _dim, cid, words in groups:
        for w in words:
            owners.setdefault(_import_key(w), set()).add(cid)
    cats: list[Category] = []
    for dim, cid, words in groups:
        dim_of = dim or _infer_dimension(cid, where, dimension)
        terms: list[Term] = []
        seen: set[str] = set()
        for w in words:
            key = _import_key(w)
            if key in seen:
                continue
            seen.add(key)
            also = tuple(sorted(owners[key] - {cid}))
            if "*" in w[:-1] or "?" in w:
                rx = "".join(r"\w*?" if ch == "*" else r"\w" if ch == "?" else re.escape(ch)
                             for ch in w.rstrip("*")) if w.endswith("*") else \
                    "".join(r"\w*?" if ch == "*" else r"\w" if ch == "?" else re.escape(ch)
                            for ch in w)
                terms.append(Term(w, cid, dim_of, pattern=rx, also_in=also,
                                  note=f"{fmt} wildcard {w}"))
            elif w.endswith("*"):
                terms.append(Term(w[:-1], cid, dim_of, also_in=also,
                                  note=f"{fmt} wildcard {w}"))
            else:
                terms.append(Term(w, cid, dim_of, also_in=also))
        cats.append(Category(cid, dim_of, cid, cid,
                             f"Imported from a {fmt} dictionary; it holds no definition.",
                             tuple(terms), ()))
    if not cats:
        raise LexiconError(f"the {fmt} dictionary holds no categories", path=where,
                           fix="Give a dictionary with at least one category")
    return build_lexicon(name=name, version="0.0.0", categories=tuple(cats), meta=meta)


def _import_key(word: str) -> str:
    return word[:-1] if word.endswith("*") and "*" not in word[:-1] and "?" not in word else word


def _words(value: Any, where: str, cid: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise LexiconError(f"category {cid!r}: terms must be a list", path=where,
                           fix="Write the category as `key: [term, term]`")
    out = []
    for v in value:
        if v is None or not str(v).strip():
            continue
        out.append(unicodedata.normalize("NFKC", " ".join(str(v).split())))
    return out


def _quanteda_groups(data: Mapping[Any, Any], dim: str | None,
                     groups: list[tuple[str | None, str, list[str]]], where: str) -> None:
    for key, value in data.items():
        key = str(key)
        if isinstance(value, dict):
            _quanteda_groups(value, key if key in DIMENSIONS else dim, groups, where)
        else:
            groups.append((dim, key, _words(value, where, key)))


def _liwc_groups(text: str, where: str) -> list[tuple[str | None, str, list[str]]]:
    lines = text.splitlines()
    marks = [i for i, line in enumerate(lines) if line.strip() == "%"]
    if len(marks) < 2:
        raise LexiconError("a LIWC .dic file starts with a `%` line, the numbered categories, "
                           "and another `%` line", path=where, line=1,
                           fix="Add the header: %, then `1<TAB>category` lines, then %")
    names: dict[str, str] = {}
    for i in range(marks[0] + 1, marks[1]):
        parts = lines[i].split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[0].isdigit():
            raise LexiconError(f"header line {lines[i]!r} is not `number<TAB>category`",
                               path=where, line=i + 1, fix="Write `1<TAB>F1_population`")
        names[parts[0]] = parts[1]
    words: dict[str, list[str]] = {cid: [] for cid in names.values()}
    for i in range(marks[1] + 1, len(lines)):
        if not lines[i].strip():
            continue
        parts = lines[i].rstrip("\n").split("\t")
        if len(parts) < 2:
            parts = lines[i].rsplit(None, 1)
        term, nums = parts[0].strip(), [p for n in parts[1:] for p in n.split()]
        for n in nums:
            if n not in names:
                raise LexiconError(f"term {term!r} names category number {n!r}, which the "
                                   "header does not define", path=where, line=i + 1,
                                   fix="Add it to the header or correct the number")
            words[names[n]].append(term)
    return [(None, cid, _words(ws, where, cid)) for cid, ws in words.items()]


def _infer_dimension(cid: str, where: str, default: str | None) -> str:
    for dim, ids in CODEBOOK.items():
        if cid in ids:
            return dim
    by_letter = {"F": "feature", "P": "pathway", "C": "challenge", "D": "domain"}
    if re.match(r"(?:[FPC]\d+|D)(?:_|$)", cid):  # codebook-style: F6_..., C5, D_...
        return by_letter[cid[0]]
    if default is not None:
        return default
    raise LexiconError(f"cannot tell the dimension of category {cid!r}", path=where,
                       fix="Give --dimension (e.g. --dimension domain), use codebook-style ids "
                           "(F1_..., P2_..., C3_..., D_...), or (quanteda) nest categories under "
                           "feature/pathway/challenge/domain keys")


__all__ = ["CODEBOOK", "DEFAULT_MAX_GAP", "DIMENSIONS", "FORMATS", "GAP_STOPS", "MAX_GAP_LIMIT",
           "TRACKED_ONLY", "Category", "Exported", "Lexicon", "Problem", "Term", "build_lexicon",
           "content_hash", "export_lexicon", "gap_regex", "guarded_regex", "import_lexicon",
           "load_lexicon", "parse_lexicon_text", "to_yaml", "validate_lexicon"]
