"""Discovery: what the lexicon misses (Word2Vec suggestions, drift, topics).

Three views, all deterministic for the same corpus, lexicon and seed:

- ``suggest``: a gensim Word2Vec model trained on the segmented corpus proposes,
  for each category, tokens that are not yet lexicon terms, ranked by
  ``score = (similarity_centroid + similarity_nearest) / 2`` (cosine to the
  centroid of the category's in-vocabulary terms, and to its nearest member).
  ``write_review`` writes them for a researcher to mark ``accept = yes``;
  ``accept_review`` merges the accepted rows into a new lexicon version.
- ``drift_table``: tokens whose rate rises sharply in the latest period and that
  sit close to a category in the embedding (candidate gaps).
- ``topic_tables``: NMF on TF-IDF over documents, topic prevalence per year, each
  topic matched to the nearest category in the embedding.

Models live only in ``<cache>/models/<key>/`` (word2vec binary format plus a JSON
sidecar, never a pickle) and are loaded only from the path computed from their key.
Segmented documents come from the engine's segmentation cache (``<cache>/segments``).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version as _pkg_version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import yaml

from pipeline.config import Settings
from pipeline.errors import LexiconError, MobilizeError

if TYPE_CHECKING:
    from gensim.models import KeyedVectors

    from pipeline.ingest import Document

log = logging.getLogger(__name__)

REVIEW_COLUMNS = ("category", "rank", "term", "score", "similarity_centroid", "similarity_nearest",
                  "nearest_member", "frequency", "documents", "substring_hits", "kwic_1", "kwic_2",
                  "accept", "note", "source")
DRIFT_COLUMNS = ("term", "category", "similarity", "rate_early", "rate_latest", "ratio", "frequency",
                 "count_latest", "period_early", "period_latest")
TOPIC_COLUMNS = ("topic", "label", "top_terms", "nearest_category", "match_score", "documents")
PREVALENCE_COLUMNS = ("topic", "year", "prevalence", "documents")
_TOPIC_FEATURES = 4000  # the most frequent terms kept for topics (speed; rare terms barely move NMF)
ACCEPT_VALUES = frozenset({"yes", "y", "x", "true", "1", "accept", "是", "✓"})

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LETTER = re.compile(r"[^\W\d_]")
_NUMBERISH = re.compile(r"^[\d.,%％·:：/\-+]+$|^[\d一二三四五六七八九十百千万亿零两〇]+$"
                        r"|^第?[一二三四五六七八九十百]+[是要节章条款项]$|^第[一二三四五六七八九十百\d]+$"
                        r"|^[\d.]+[年月日号岁亿万千百元个项次倍]+$")
#: Function words and report boilerplate verbs (加强, 推进, ...) that discovery drops on top of
#: pipeline/data/stopwords.txt (which keeps them for keyness); never used for counts.
_INLINE_STOPWORDS = frozenset((
    "的", "了", "和", "与", "及", "或", "在", "是", "为", "对", "把", "被",
    "以", "等", "中", "上", "下", "个", "我们", "我国", "你们", "他们", "这个", "这些",
    "那些", "一个", "一些", "进一步", "继续", "加强", "推进", "推动", "坚持", "实现", "提高", "工作",
    "方面", "问题", "情况", "有关", "各项", "各级", "有的", "没有", "已经", "要求", "按照", "通过",
    "进行", "开展", "实行", "实施", "必须", "应当", "可以", "不断", "更加", "大力", "积极", "认真",
    "切实", "努力", "全面", "同时", "以及", "并且", "但是", "因为", "所以", "如果", "由于", "其中",
    "今年", "去年", "明年", "今后", "年来", "以上", "以下", "之一", "我们的",
))


# --------------------------------------------------------------------------- parameters


@dataclass(frozen=True)
class EmbeddingParams:
    """Word2Vec settings; every field is part of the model's cache key."""

    vector_size: int = 100
    window: int = 5
    min_count: int = 5
    sg: int = 1
    negative: int = 5
    epochs: int = 10
    seed: int = 20240601
    sample: float = 1e-3

    def with_seed(self, seed: int) -> EmbeddingParams:
        from dataclasses import replace

        return replace(self, seed=seed)

    def as_dict(self) -> dict[str, Any]:
        return {"vector_size": self.vector_size, "window": self.window, "min_count": self.min_count,
                "sg": self.sg, "negative": self.negative, "epochs": self.epochs, "seed": self.seed,
                "sample": self.sample}


#: The report's drift and topic matching need only coarse category similarity: half the
#: epochs of the suggestion model, so the first report on a new corpus trains twice as fast.
TABLES_PARAMS = EmbeddingParams(epochs=5)


@dataclass
class TokenizedCorpus:
    """Documents as sentences of tokens (filtered for training), with what the tables need."""

    doc_ids: list[str]
    years: list[int | None]
    texts: list[str]
    sentences: list[list[list[str]]]  # per document, per sentence, tokens kept for training
    token_totals: list[int]  # per document, all tokens (letters or digits), before filtering
    key: str  # hash of the documents' content, tokenizer and stopwords
    tokenizer_hash: str = ""

    def doc_tokens(self, i: int) -> list[str]:
        return [t for s in self.sentences[i] for t in s]

    @property
    def all_sentences(self) -> list[list[str]]:
        return [s for doc in self.sentences for s in doc if s]


@dataclass(frozen=True)
class LexiconView:
    """The lexicon reduced to what discovery needs: category -> terms, and every known term."""

    categories: dict[str, tuple[str, ...]]
    known: frozenset[str]  # every term (any category) and every excluded phrase
    user_words: tuple[str, ...]
    version: str = ""
    path: Path | None = None
    hash: str = ""

    @classmethod
    def from_lexicon(cls, lexicon: Any) -> LexiconView:
        cats: dict[str, tuple[str, ...]] = {}
        known: set[str] = set()
        for cat in lexicon.categories:
            terms = tuple(t.text for t in cat.terms if getattr(t, "pattern", None) in (None, "") and t.text)
            cats[cat.id] = terms
            known.update(terms)
            known.update(getattr(x, "text", str(x)) for x in (getattr(cat, "excluded", None) or ()))
        words = tuple(lexicon.user_words()) if hasattr(lexicon, "user_words") else tuple(sorted(known))
        return cls(cats, frozenset(known), words, str(getattr(lexicon, "version", "")),
                   getattr(lexicon, "path", None), str(getattr(lexicon, "hash", "")))


@dataclass
class Training:
    """Counts model trainings (the tests check that the cache is used)."""

    count: int = 0


TRAININGS = Training()


# --------------------------------------------------------------------------- tokens


def stopwords() -> frozenset[str]:
    """The engine's stopword list (``pipeline/data/stopwords.txt``) plus the inline boilerplate set."""
    try:
        from pipeline.segment import load_stopwords

        return load_stopwords() | _INLINE_STOPWORDS
    except (ImportError, OSError):
        return _INLINE_STOPWORDS


def keep_token(token: str, stop: frozenset[str]) -> bool:
    """True for tokens worth training on: a CJK character or a letter, 2+ characters, not a number or stopword."""
    if len(token) < 2 or token in stop or any(ch.isspace() for ch in token):
        return False
    if not (_CJK.search(token) or _LETTER.search(token)):
        return False
    return not _NUMBERISH.match(token)


def _is_token(token: str) -> bool:
    return any(ch.isalnum() for ch in token)


def _sha(data: Any) -> str:
    blob = json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def _readable(tmp: str | Path, like: Path) -> None:
    """mkstemp makes 0600 files: give the new file the mode of the one it replaces, else 0644 less umask."""
    if like.exists():
        shutil.copymode(like, tmp)
    else:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o644 & ~mask)


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        _readable(tmp, path)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def tokenize_documents(documents: Sequence[Document], tokenizer: Any, cache: Path,
                       *, progress: Callable[[int], None] | None = None) -> TokenizedCorpus:
    """Segment documents through the engine's segmentation cache (``<cache>/segments``, keyed by
    document sha256 and tokenizer config hash) and keep the tokens worth training on."""
    from pipeline.segment import SegmentCache, segment_cached, segments_dir

    stop = stopwords()
    seg_cache = SegmentCache(segments_dir(cache))
    kinds: dict[str, int] = {}  # token -> 0 not a token, 1 token, 2 token kept for training

    def kind(t: str) -> int:
        k = kinds.get(t)
        if k is None:
            k = kinds[t] = (2 if keep_token(t, stop) else 1) if _is_token(t) else 0
        return k

    sentences: list[list[list[str]]] = []
    totals: list[int] = []
    for doc in documents:
        seg, _hit = segment_cached(tokenizer, doc.sha256, doc.text, seg_cache)
        total = 0
        kept: list[list[str]] = []
        for para in seg:
            for sent in para:
                ks = [kind(t) for t in sent]
                total += sum(1 for k in ks if k)
                kept.append([t for t, k in zip(sent, ks, strict=True) if k == 2])
        totals.append(total)
        sentences.append(kept)
        if progress is not None:
            progress(1)
    key = _sha({"docs": [d.sha256 for d in documents], "tokenizer": tokenizer.config_hash,
                "stopwords": sorted(stop)})
    return TokenizedCorpus([d.doc_id for d in documents], [d.year for d in documents],
                           [d.text for d in documents], sentences, totals, key, tokenizer.config_hash)


# --------------------------------------------------------------------------- the model


def model_dir(cache: Path, key: str) -> Path:
    """Where the model with this key lives: only ever inside the cache."""
    if not re.fullmatch(r"[0-9a-f]{64}", key):
        raise ValueError(f"not a model key: {key!r}")
    return cache / "models" / key


def model_key(corpus: TokenizedCorpus, params: EmbeddingParams) -> str:
    return _sha({"corpus": corpus.key, "params": params.as_dict(), "gensim": _pkg_version("gensim"),
                 "kind": "word2vec"})


def _train_word2vec(sentences: list[list[str]], params: EmbeddingParams) -> KeyedVectors:
    from gensim.models import Word2Vec

    TRAININGS.count += 1
    model = Word2Vec(vector_size=params.vector_size, window=params.window, min_count=params.min_count,
                     sg=params.sg, negative=params.negative, seed=params.seed, workers=1,
                     sample=params.sample, sorted_vocab=1)
    model.build_vocab(sentences)
    if not model.wv.index_to_key:
        return model.wv
    model.train(sentences, total_examples=len(sentences), epochs=params.epochs)
    return model.wv


def word_vectors(corpus: TokenizedCorpus, params: EmbeddingParams, cache: Path) -> KeyedVectors | None:
    """Train, or load from the cache, the Word2Vec vectors for this corpus; None if the vocabulary is empty."""
    from gensim.models import KeyedVectors

    key = model_key(corpus, params)
    folder = model_dir(cache, key)
    vec_path, meta_path = folder / "vectors.bin", folder / "model.json"
    meta: dict[str, Any] = {}
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}  # a damaged entry: train again and replace it
        if meta.get("key") == key and meta.get("words", 0) == 0:
            return None
        if meta.get("key") == key and vec_path.is_file():
            log.info("word2vec: reusing %s", folder)
            return KeyedVectors.load_word2vec_format(str(vec_path), binary=True, unicode_errors="strict")
    log.info("word2vec: training on %d sentences", len(corpus.all_sentences))
    kv = _train_word2vec(corpus.all_sentences, params)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key[:12]}.", dir=folder.parent))
    try:
        words = len(kv.index_to_key)
        if words:
            kv.save_word2vec_format(str(tmp / "vectors.bin"), binary=True)
        meta = {"key": key, "format": "word2vec binary", "words": words, "corpus": corpus.key,
                "tokenizer": corpus.tokenizer_hash, "params": params.as_dict(),
                "gensim": _pkg_version("gensim")}
        (tmp / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
        if folder.exists():  # an incomplete entry (a killed run): replace it
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "model.json").is_file():  # not a concurrent writer of the same key
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    if not kv.index_to_key:
        return None
    # Reload what was written so that a fresh model and a cached one give identical floats.
    return KeyedVectors.load_word2vec_format(str(vec_path), binary=True, unicode_errors="strict")


# --------------------------------------------------------------------------- suggestions


def _unit(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    norms[norms == 0] = 1.0
    return matrix / norms


def _category_matrices(kv: KeyedVectors, lex: LexiconView
                       ) -> dict[str, tuple[list[str], np.ndarray, np.ndarray]]:
    """category -> (in-vocabulary members, their unit vectors, unit centroid)."""
    out: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
    for cat in sorted(lex.categories):
        members = sorted({t for t in lex.categories[cat] if t in kv.key_to_index})
        if not members:
            continue
        vecs = _unit(np.stack([kv[m] for m in members]).astype(np.float64))
        centroid = _unit(vecs.mean(axis=0))
        out[cat] = (members, vecs, centroid)
    return out


def kwic_lines(texts: Sequence[str], term: str, *, n: int = 2, width: int = 18) -> list[str]:
    """Up to n substring contexts of term: the first match in the first document that has one, then
    in the last such document, then in the ones between (corpus order), one line per document.

    Substring, not token, matches: that is what the scorer would count if the term were
    accepted, so a line where it sits inside another word (促【进城】乡) warns of false hits.
    """
    hits = [i for i, text in enumerate(texts) if term in text]
    order = hits[:1] + hits[-1:] + hits[1:-1] if len(hits) > 1 else hits
    lines: list[str] = []
    for i in order[:n]:
        text = texts[i]
        pos = text.find(term)
        start, end = max(0, pos - width), min(len(text), pos + len(term) + width)
        left = text[start:pos].split("\n")[-1]
        right = text[pos + len(term):end].split("\n")[0]
        lines.append(f"{left}【{term}】{right}")
    return lines


def _frequencies(corpus: TokenizedCorpus) -> tuple[Counter[str], Counter[str]]:
    freq: Counter[str] = Counter()
    docs: Counter[str] = Counter()
    for i in range(len(corpus.doc_ids)):
        toks = corpus.doc_tokens(i)
        freq.update(toks)
        docs.update(set(toks))
    return freq, docs


def suggestions(corpus: TokenizedCorpus, kv: KeyedVectors | None, lex: LexiconView,
                *, per_category: int = 10, min_count: int = 5, min_documents: int = 2,
                min_token_share: float = 0.5, source: str = "") -> pd.DataFrame:
    """For each category, the top tokens not yet in the lexicon, ranked by (centroid + nearest) / 2.

    Candidates occur at least ``min_count`` times in at least ``min_documents`` documents
    (a word of one document is rarely a lexicon term) and pass ``keep_token``. The scorer
    counts substrings, so a candidate is also dropped when fewer than ``min_token_share`` of
    its substring hits in the text are the token itself (对经 inside 对经济, 康养 inside
    健康养殖): accepted, it would mostly count other words.
    """
    if kv is None or not kv.index_to_key:
        df = pd.DataFrame(columns=list(REVIEW_COLUMNS))
        df.attrs["reason"] = "the corpus has no token frequent enough to train a model"
        return df
    freq, docfreq = _frequencies(corpus)
    words = list(kv.index_to_key)
    vocab = _unit(kv.vectors[[kv.key_to_index[w] for w in words]].astype(np.float64))
    cats = _category_matrices(kv, lex)
    stop = stopwords()
    allowed = np.array([w not in lex.known and freq[w] >= min_count and docfreq[w] >= min_documents
                        and keep_token(w, stop) for w in words])
    scores: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for cat, (_members, vecs, centroid) in cats.items():
        sim_c = vocab @ centroid
        sims = vocab @ vecs.T
        scores[cat] = (sim_c, sims.max(axis=1), sims.argmax(axis=1))
    best_cat: dict[int, str] = {}
    if scores:
        combined = np.stack([(scores[c][0] + scores[c][1]) / 2 for c in sorted(scores)])
        order = sorted(scores)
        best_cat = {i: order[j] for i, j in enumerate(combined.argmax(axis=0))}
    rows: list[dict[str, Any]] = []
    texts = corpus.texts
    hits: dict[str, int] = {}

    def substring_hits(w: str) -> int:
        if w not in hits:
            hits[w] = sum(t.count(w) for t in texts)
        return hits[w]

    for cat in sorted(scores):
        sim_c, sim_n, arg_n = scores[cat]
        members = cats[cat][0]
        score = (sim_c + sim_n) / 2
        idx = [int(i) for i in np.flatnonzero(allowed)]
        idx.sort(key=lambda i: (-round(float(score[i]), 6), words[i]))
        chosen = []
        for i in idx:
            if freq[words[i]] >= min_token_share * substring_hits(words[i]):
                chosen.append(i)
                if len(chosen) >= per_category:
                    break
        for rank, i in enumerate(chosen, start=1):
            w = words[i]
            kw = kwic_lines(texts, w)
            notes = []
            inside = sorted(m for m in lex.categories[cat] if w in m and w != m)
            if inside:
                notes.append("part of lexicon term " + "、".join(inside[:3]))
            if best_cat.get(i) not in (None, cat):
                notes.append(f"closer to {best_cat[i]}")
            rows.append({"category": cat, "rank": rank, "term": w,
                         "score": round(float(score[i]), 4),
                         "similarity_centroid": round(float(sim_c[i]), 4),
                         "similarity_nearest": round(float(sim_n[i]), 4),
                         "nearest_member": members[int(arg_n[i])],
                         "frequency": int(freq[w]), "documents": int(docfreq[w]),
                         "substring_hits": substring_hits(w),
                         "kwic_1": kw[0] if kw else "", "kwic_2": kw[1] if len(kw) > 1 else "",
                         "accept": "", "note": "; ".join(notes), "source": source})
    df = pd.DataFrame(rows, columns=list(REVIEW_COLUMNS))
    missing = sorted(set(lex.categories) - set(scores))
    if missing:
        df.attrs["reason"] = "no lexicon term in the model's vocabulary for: " + ", ".join(missing)
    return df


# --------------------------------------------------------------------------- review files


def write_review(df: pd.DataFrame, path: Path, *, source: str = "") -> None:
    """Write the review file (CSV, or YAML by suffix) atomically."""
    path = Path(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        records = []
        for row in df.to_dict(orient="records"):
            records.append({k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()})
        doc = {"source": source, "instructions": "set accept: yes on the terms to add, then run "
               "`mobilize lexicon accept THIS_FILE`", "suggestions": records}
        text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=1000)
    else:
        buf = io.StringIO()
        df.to_csv(buf, index=False, lineterminator="\n", columns=list(REVIEW_COLUMNS))
        text = buf.getvalue()
    _atomic_write_text(path, text)


def read_review(path: Path) -> list[dict[str, str]]:
    """The review file's rows as dicts of strings (CSV or YAML)."""
    path = Path(path)
    if not path.is_file():
        raise MobilizeError("no such review file", path=path,
                            fix="Give the file written by `mobilize lexicon suggest --out FILE`.")
    rows: list[dict[str, str]] = []
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            raise MobilizeError(f"not valid YAML: {getattr(exc, 'problem', exc)}", path=path,
                                line=(mark.line + 1) if mark else None,
                                fix="Fix the YAML syntax, or write the review as CSV.") from None
        items = data.get("suggestions") if isinstance(data, dict) else data
        if not isinstance(items, list):
            raise MobilizeError("no `suggestions:` list", path=path,
                                fix="Keep the layout written by `mobilize lexicon suggest`.")
        for item in items:
            if isinstance(item, dict):
                rows.append({str(k): "" if v is None else str(v) for k, v in item.items()})
        for i, row in enumerate(rows):
            row["_line"] = str(i + 1)
        return rows
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"category", "term", "accept"} - set(reader.fieldnames or ())
        if missing:
            raise MobilizeError(f"missing column(s) {', '.join(sorted(missing))}", path=path, line=1,
                                fix="Keep the header written by `mobilize lexicon suggest`.")
        for lineno, row in enumerate(reader, start=2):
            clean = {k: (v or "").strip() for k, v in row.items() if k}
            clean["_line"] = str(lineno)
            rows.append(clean)
    return rows


@dataclass
class AcceptResult:
    path: Path
    backup: Path | None
    old_version: str
    new_version: str
    added: list[tuple[str, str]] = field(default_factory=list)  # (category, term)
    skipped: list[tuple[str, str, str]] = field(default_factory=list)  # (category, term, why)


def bump_version(version: str) -> str:
    """1.2.3 -> 1.2.4; 1.2 -> 1.3; anything else gets ``.1`` appended."""
    parts = str(version).strip().split(".")
    if parts and all(p.isdigit() for p in parts):
        parts[-1] = str(int(parts[-1]) + 1)
        return ".".join(parts)
    return f"{version}.1" if version else "0.0.1"


def _provenance(row: Mapping[str, str], review: Path, today: str) -> str:
    src = row.get("source") or review.name
    sim = row.get("similarity_centroid", "")
    near = row.get("similarity_nearest", "")
    member = row.get("nearest_member", "")
    bits = [f"similarity {sim}" if sim else "", f"nearest {member} {near}".strip() if member else ""]
    detail = ", ".join(b for b in bits if b)
    when = f"{detail}; accepted {today}" if detail else f"accepted {today}"
    return f"suggested by mobilize lexicon suggest from {src} ({when})"


def _category_blocks(lines: list[str]) -> dict[str, tuple[int, int]]:
    """category id -> (last line of its block-style ``terms:`` list, the items' indent)."""
    out: dict[str, tuple[int, int]] = {}
    id_re = re.compile(r"^(\s*(?:-\s+)?)id:\s*['\"]?([A-Za-z0-9_]+)['\"]?\s*(?:#.*)?$")
    terms_re = re.compile(r"^\s*terms:\s*(?:#.*)?$")

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def content(line: str) -> bool:
        return bool(line.strip()) and not line.strip().startswith("#")

    for i, line in enumerate(lines):
        m = id_re.match(line)
        if not m:
            continue
        base = len(m.group(1))
        j = i + 1
        while j < len(lines):
            if content(lines[j]):
                if indent(lines[j]) < base:
                    j = len(lines)
                    break
                if indent(lines[j]) == base and terms_re.match(lines[j]):
                    break
            j += 1
        if j >= len(lines):
            continue
        item_indent, last = -1, -1
        k = j + 1
        while k < len(lines):
            if content(lines[k]):
                ind, stripped = indent(lines[k]), lines[k].strip()
                if item_indent < 0:
                    if not (stripped.startswith("- ") and ind >= base):
                        break
                    item_indent = ind
                if ind > item_indent or (ind == item_indent and stripped.startswith("- ")):
                    last = k
                else:
                    break
            k += 1
        if item_indent >= 0:
            out[m.group(2)] = (last, item_indent)
    return out


def _yaml_flow_item(term: str, note: str) -> str:
    return "{term: " + json.dumps(term, ensure_ascii=False) + ", note: " + json.dumps(note, ensure_ascii=False) + "}"


def _merge_text(original: str, additions: Mapping[str, list[tuple[str, str]]], new_version: str,
                today: str) -> str | None:
    """Insert the new terms as lines into the YAML text (keeping comments); None if the layout is unusual."""
    lines = original.split("\n")
    blocks = _category_blocks(lines)
    if any(cat not in blocks for cat in additions):
        return None
    inserts = sorted(((blocks[cat][0], cat) for cat in additions), reverse=True)
    for last, cat in inserts:
        indent = " " * blocks[cat][1]
        new_lines = [f"{indent}- {_yaml_flow_item(t, n)}" for t, n in additions[cat]]
        lines[last + 1:last + 1] = new_lines
    text = "\n".join(lines)
    ver = re.compile(r"^version:[ \t]*.*$", re.MULTILINE)
    if not ver.search(text):
        return None
    text = ver.sub("version: " + json.dumps(new_version), text, count=1)
    return re.sub(r"^updated:[ \t]*.*$", "updated: " + json.dumps(today), text, count=1, flags=re.MULTILINE)


def _expected_data(data: dict[str, Any], additions: Mapping[str, list[tuple[str, str]]],
                   new_version: str, today: str) -> dict[str, Any]:
    import copy

    out = copy.deepcopy(data)
    out["version"] = new_version
    if "updated" in out:
        out["updated"] = today
    for cat in _iter_category_dicts(out):
        for term, note in additions.get(str(cat.get("id")), []):
            cat.setdefault("terms", [])
            cat["terms"].append({"term": term, "note": note})
    return out


def _iter_category_dicts(data: Any) -> Iterable[dict[str, Any]]:
    """The category mappings of a lexicon document, wherever the schema nests them."""
    cats = data.get("categories") if isinstance(data, dict) else None
    if isinstance(cats, list):
        yield from (c for c in cats if isinstance(c, dict))
    dims = data.get("dimensions") if isinstance(data, dict) else None
    if isinstance(dims, list):
        for d in dims:
            if isinstance(d, dict):
                yield from _iter_category_dicts(d)
    elif isinstance(dims, dict):
        for d in dims.values():
            if isinstance(d, dict):
                yield from _iter_category_dicts(d)


def accept_review(review: Path, lexicon_path: Path, out: Path | None = None,
                  *, today: str | None = None) -> AcceptResult:
    """Merge the rows marked accept = yes into a new lexicon version (validated, written atomically)."""
    from pipeline.lexicon import load_lexicon

    review, lexicon_path = Path(review), Path(lexicon_path)
    out = Path(out) if out is not None else lexicon_path
    today = today or _dt.date.today().isoformat()
    original = lexicon_path.read_text(encoding="utf-8")
    lex = LexiconView.from_lexicon(load_lexicon(lexicon_path))
    data = yaml.safe_load(original)
    if not isinstance(data, dict):
        raise LexiconError("the lexicon is not a YAML mapping", path=lexicon_path,
                           fix="Give a lexicon file such as lexicons/mobilize.yaml.")
    old_version = str(data.get("version", lex.version))
    additions: dict[str, list[tuple[str, str]]] = {}
    result = AcceptResult(out, None, old_version, old_version)
    seen: set[tuple[str, str]] = set()
    for row in read_review(review):
        if row.get("accept", "").strip().lower() not in ACCEPT_VALUES:
            continue
        cat, term = row.get("category", "").strip(), row.get("term", "").strip()
        if cat not in lex.categories:
            raise MobilizeError(f"unknown category {cat!r}", path=review, line=int(row["_line"]),
                                fix="Use a category id from `mobilize lexicon show`.")
        if not term:
            raise MobilizeError("empty term on an accepted row", path=review, line=int(row["_line"]),
                                fix="Give the term, or clear the accept cell.")
        if term in lex.categories[cat] or (cat, term) in seen:
            result.skipped.append((cat, term, "already in this category"))
            continue
        if term in lex.known:
            result.skipped.append((cat, term, "already a lexicon term or excluded phrase elsewhere"))
            continue
        seen.add((cat, term))
        note = _provenance(row, review, today)
        additions.setdefault(cat, []).append((term, note))
        result.added.append((cat, term))
    if not additions:
        return result
    new_version = bump_version(old_version)
    expected = _expected_data(data, additions, new_version, today)
    text = _merge_text(original, additions, new_version, today)
    if text is None or yaml.safe_load(text) != expected:
        text = yaml.safe_dump(expected, allow_unicode=True, sort_keys=False, width=1000)
    # Validate with the lexicon loader before anything is replaced.
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".yaml", dir=out.parent)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
    _readable(tmp, out if out.exists() else lexicon_path)
    try:
        checked = LexiconView.from_lexicon(load_lexicon(Path(tmp)))
        for cat, term in result.added:
            if term not in checked.categories.get(cat, ()):
                raise LexiconError(f"the merged lexicon lost the term {term!r} in {cat}", path=out,
                                   fix="Report this as a bug; the original lexicon is unchanged.")
        if out.exists():
            backup = out.with_name(f"{out.name}.{old_version}.bak")
            shutil.copy2(out, backup)
            result.backup = backup
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    result.new_version = new_version
    return result


# --------------------------------------------------------------------------- drift


@dataclass(frozen=True)
class Period:
    name: str
    start: int
    end: int


def load_periods(path: Path | None, years: Iterable[int]) -> list[Period]:
    """Periods from a periods.yaml (a list of {name, start, end}, or {periods: [...]}), else decades."""
    if path is not None and Path(path).is_file():
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        items = data.get("periods") if isinstance(data, dict) else data
        periods: list[Period] = []
        for i, item in enumerate(items or [], start=1):
            try:
                start = int(str(item["start"])[:4])
                end = 9999 if item.get("end") in (None, "") else int(str(item["end"])[:4])
            except (KeyError, TypeError, ValueError):
                raise MobilizeError(f"period {i} needs integer start and end years", path=path,
                                    fix="Write each period as {name: ..., start: YYYY, end: YYYY}.") from None
            periods.append(Period(str(item.get("name") or f"{start}-{end}"), start, end))
        if periods:
            return sorted(periods, key=lambda p: (p.start, p.end))
    decades = sorted({y // 10 * 10 for y in years})
    return [Period(f"{d}s", d, d + 9) for d in decades]


def drift_table(corpus: TokenizedCorpus, kv: KeyedVectors | None, lex: LexiconView, periods: list[Period],
                *, min_count: int = 5, min_ratio: float = 3.0, min_similarity: float = 0.0,
                near_share: float = 0.05, per_category: int = 10) -> pd.DataFrame:
    """Tokens not in the lexicon whose rate per 10k tokens rises at least ``min_ratio`` times in
    the latest period (versus all earlier periods, add-half smoothing) and that sit close to a
    category: the category whose centroid is nearest, and among the ``near_share`` of the whole
    vocabulary closest to that centroid (a rank, not a cosine cut: cosines of a small corpus's
    model are high and bunched), and at least ``min_similarity``. The top ``per_category`` per
    category by ratio."""
    empty = pd.DataFrame(columns=list(DRIFT_COLUMNS))
    if kv is None:
        empty.attrs["reason"] = "no embedding: the corpus is too small to train one"
        return empty
    assigned: dict[int, Period] = {}
    for i, year in enumerate(corpus.years):
        if year is None:
            continue
        for p in periods:
            if p.start <= year <= p.end:
                assigned[i] = p
                break
    used = sorted({p for p in assigned.values()}, key=lambda p: (p.start, p.end))
    if len(used) < 2:
        empty.attrs["reason"] = "drift needs documents in at least two periods"
        return empty
    latest = used[-1]
    early_counts: Counter[str] = Counter()
    late_counts: Counter[str] = Counter()
    early_tokens = late_tokens = 0
    for i, p in assigned.items():
        toks = corpus.doc_tokens(i)
        if p == latest:
            late_counts.update(toks)
            late_tokens += corpus.token_totals[i]
        else:
            early_counts.update(toks)
            early_tokens += corpus.token_totals[i]
    if not early_tokens or not late_tokens:
        empty.attrs["reason"] = "drift needs tokens in the early and the latest periods"
        return empty
    cats = _category_matrices(kv, lex)
    if not cats:
        empty.attrs["reason"] = "no lexicon term is in the model's vocabulary"
        return empty
    order = sorted(cats)
    centroids = np.stack([cats[c][2] for c in order])
    vocab = _unit(kv.vectors.astype(np.float64))
    cutoffs = np.quantile(vocab @ centroids.T, 1.0 - near_share, axis=0)
    rows: list[dict[str, Any]] = []
    for term, late in late_counts.items():
        if late < min_count or term in lex.known or term not in kv.key_to_index:
            continue
        r_early = early_counts[term] / early_tokens * 10000
        r_late = late / late_tokens * 10000
        ratio = ((late + 0.5) / late_tokens) / ((early_counts[term] + 0.5) / early_tokens)
        if ratio < min_ratio:
            continue
        vec = _unit(kv[term].astype(np.float64))
        sims = centroids @ vec
        j = int(sims.argmax())
        if sims[j] < max(min_similarity, float(cutoffs[j])):
            continue
        rows.append({"term": term, "category": order[j], "similarity": round(float(sims[j]), 4),
                     "rate_early": round(r_early, 4), "rate_latest": round(r_late, 4),
                     "ratio": round(ratio, 3), "frequency": int(early_counts[term] + late),
                     "count_latest": int(late),
                     "period_early": f"{used[0].start}-{used[-2].end}",
                     "period_latest": latest.name})
    if not rows:
        empty.attrs["reason"] = "no token rises sharply near a category"
        return empty
    df = pd.DataFrame(rows, columns=list(DRIFT_COLUMNS))
    df = df.sort_values(["category", "ratio", "similarity", "term"], ascending=[True, False, False, True])
    df = df.groupby("category", sort=True).head(per_category).reset_index(drop=True)
    return df


# --------------------------------------------------------------------------- topics


def _identity(tokens: list[str]) -> list[str]:
    return tokens


def topic_count(n_docs: int) -> int:
    """How many topics for n documents: 0 below 4 documents, else between 2 and 10."""
    if n_docs < 4:
        return 0
    return max(2, min(10, n_docs // 6))


def topic_tables(corpus: TokenizedCorpus, kv: KeyedVectors | None, lex: LexiconView,
                 *, seed: int = 20240601, n_topics: int | None = None,
                 top_n: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NMF (init nndsvda, fixed random_state) on TF-IDF over documents; prevalence per year."""
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    topics = pd.DataFrame(columns=list(TOPIC_COLUMNS))
    prevalence = pd.DataFrame(columns=list(PREVALENCE_COLUMNS))
    docs = [corpus.doc_tokens(i) for i in range(len(corpus.doc_ids))]
    keep = [i for i, d in enumerate(docs) if d]
    k = n_topics if n_topics is not None else topic_count(len(keep))
    if k <= 0 or len(keep) < 4:
        reason = f"topics need at least 4 non-empty documents (found {len(keep)})"
        topics.attrs["reason"] = prevalence.attrs["reason"] = reason
        return topics, prevalence
    vec = TfidfVectorizer(analyzer=_identity, min_df=2, max_df=0.9, sublinear_tf=True,
                          max_features=_TOPIC_FEATURES)
    try:
        X = vec.fit_transform([docs[i] for i in keep])
    except ValueError:
        X = None
    if X is None or X.shape[1] < k * 2:
        reason = "too few shared terms across documents for topics"
        topics.attrs["reason"] = prevalence.attrs["reason"] = reason
        return topics, prevalence
    vocab = np.array(vec.get_feature_names_out())
    nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=300, tol=1e-3)
    W = nmf.fit_transform(X)
    H = nmf.components_
    cats = _category_matrices(kv, lex) if kv is not None else {}
    order = sorted(cats)
    centroids = np.stack([cats[c][2] for c in order]) if order else None
    dominant = W.argmax(axis=1)
    rows: list[dict[str, Any]] = []
    for t in range(k):
        weights = H[t]
        idx = [int(j) for j in np.lexsort((vocab, -np.round(weights, 9)))[:max(top_n, 20)]]
        top = [str(vocab[j]) for j in idx[:top_n]]
        nearest, score = "", float("nan")
        if centroids is not None and kv is not None:
            acc = np.zeros(centroids.shape[1])
            for j in idx:
                w = str(vocab[j])
                if w in kv.key_to_index and weights[j] > 0:
                    acc += weights[j] * _unit(kv[w].astype(np.float64))
            if np.linalg.norm(acc) > 0:
                sims = centroids @ _unit(acc)
                best = int(sims.argmax())
                nearest, score = order[best], round(float(sims[best]), 4)
        rows.append({"topic": f"T{t + 1:02d}", "label": " · ".join(top[:3]), "top_terms": " ".join(top),
                     "nearest_category": nearest, "match_score": score,
                     "documents": int((dominant == t).sum())})
    topics = pd.DataFrame(rows, columns=list(TOPIC_COLUMNS))
    sums = W.sum(axis=1, keepdims=True)
    sums[sums == 0] = 1.0
    shares = W / sums
    prev_rows: list[dict[str, Any]] = []
    years = [corpus.years[i] for i in keep]
    for year in sorted({y for y in years if y is not None}):
        mask = np.array([y == year for y in years])
        mean = shares[mask].mean(axis=0)
        for t in range(k):
            prev_rows.append({"topic": f"T{t + 1:02d}", "year": int(year),
                              "prevalence": round(float(mean[t]), 6), "documents": int(mask.sum())})
    prevalence = pd.DataFrame(prev_rows, columns=list(PREVALENCE_COLUMNS))
    if not prevalence.empty:
        prevalence = prevalence.sort_values(["topic", "year"]).reset_index(drop=True)
    return topics, prevalence


# --------------------------------------------------------------------------- entry points


def lexicon_view(path: Path | None) -> LexiconView:
    from pipeline.lexicon import load_lexicon

    return LexiconView.from_lexicon(load_lexicon(path))


def build_tokenizer_for(lex: LexiconView, segmenter: str, hmm: bool, cache: Path) -> Any:
    """The run's tokenizer (same config hash as the engine's, so the segmentation cache is shared)."""
    from pipeline.segment import TokenizerSpec, jieba_dir

    return TokenizerSpec(segmenter, tuple(lex.user_words), hmm, jieba_dir(cache)).build()


def load_documents(roots: Sequence[Path], *, to_simplified: bool = False) -> list[Document]:
    """The documents of one or more corpus folders (doc ids prefixed by the folder name when several)."""
    from dataclasses import replace

    from pipeline.ingest import load_corpus

    docs: list[Document] = []
    for root in roots:
        corpus = load_corpus(Path(root), to_simplified=to_simplified)
        for doc in corpus.documents:
            docs.append(replace(doc, doc_id=f"{corpus.name}/{doc.doc_id}") if len(roots) > 1 else doc)
    docs.sort(key=lambda d: d.doc_id)
    return docs


def suggest(roots: Sequence[Path], settings: Settings, *, lexicon: Path | None = None,
            per_category: int = 10, min_count: int = 5, seed: int | None = None,
            progress: Callable[[int], None] | None = None,
            on_total: Callable[[int], None] | None = None) -> pd.DataFrame:
    """Suggestions for every category from the corpora at ``roots`` (see module docstring)."""
    lex = lexicon_view(lexicon or settings.lexicon)
    docs = load_documents(roots, to_simplified=settings.to_simplified)
    if not docs:
        raise MobilizeError("the corpus has no documents", path=roots[0] if roots else None,
                            fix="Check the folder with `mobilize corpus validate`.")
    if on_total is not None:
        on_total(len(docs))
    tok = build_tokenizer_for(lex, settings.segmenter, settings.hmm, settings.cache)
    corpus = tokenize_documents(docs, tok, settings.cache, progress=progress)
    params = EmbeddingParams(min_count=min_count, seed=settings.seed if seed is None else seed)
    kv = word_vectors(corpus, params, settings.cache)
    source = "+".join(Path(r).name for r in roots)
    df = suggestions(corpus, kv, lex, per_category=per_category, min_count=min_count, source=source)
    df.attrs["source"] = source
    return df


def _run_manifest(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / "run.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _get(data: Mapping[str, Any], *keys: str) -> Any:
    cur: Any = data
    for k in keys:
        if not isinstance(cur, Mapping):
            return None
        cur = cur.get(k)
    return cur


def discovery_tables(run_dir: Path, settings: Settings) -> dict[str, pd.DataFrame]:
    """Tables for the report: ``topics``, ``topic_prevalence``, ``drift``.

    The corpus, lexicon and segmenter come from the run's ``run.json`` where it
    names them, else from ``settings``. An empty table carries its reason in
    ``df.attrs["reason"]``.
    """
    manifest = _run_manifest(Path(run_dir))
    root = Path(_get(manifest, "corpus", "root") or settings.corpus)
    lex_path = Path(_get(manifest, "lexicon", "path") or settings.lexicon)
    seg = _get(manifest, "segmenter", "name") or settings.segmenter
    hmm = _get(manifest, "segmenter", "hmm")
    hmm = settings.hmm if hmm is None else bool(hmm)
    lex = lexicon_view(lex_path)
    docs = load_documents([root], to_simplified=settings.to_simplified)
    tok = build_tokenizer_for(lex, seg, hmm, settings.cache)
    corpus = tokenize_documents(docs, tok, settings.cache)
    kv = word_vectors(corpus, TABLES_PARAMS.with_seed(settings.seed), settings.cache)
    years = [y for y in corpus.years if y is not None]
    periods = load_periods(settings.periods, years)  # None: decades
    drift = drift_table(corpus, kv, lex, periods)
    topics, prevalence = topic_tables(corpus, kv, lex, seed=settings.seed)
    return {"topics": topics, "topic_prevalence": prevalence, "drift": drift}


__all__ = ["EmbeddingParams", "LexiconView", "accept_review", "discovery_tables", "drift_table",
           "load_periods", "read_review", "suggest", "suggestions", "topic_tables", "word_vectors",
           "write_review"]
