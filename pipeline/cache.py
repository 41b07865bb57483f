"""Caches: one key scheme, one checked entry format and one atomic write for every cache.

Every cache of the project (the engine's ingest, score and split-term entries, the
segmentation cache, the report's figures, workbooks and font subsets) stores its entries
through this module, so that a truncated, damaged or hand-edited entry is recomputed, never
trusted:

- ``key(*parts)``: the sha256 (hex) of the JSON of ``parts``: same parts, same key.
- ``write(path, data)``: ``data`` with a checksum header (``MAGIC``, the sha256 of
  ``data`` in hex, a line feed), written to a temporary name in the same folder and renamed
  into place, so a reader never sees half an entry. A cache that cannot be written (a full
  disk, no permission) only costs time: ``write`` logs it and returns False.
- ``read(path)``: the entry's data, or None when it is missing, unreadable, has no header
  (an entry of an older version) or its checksum does not match (truncated or edited).
- ``read_json`` / ``write_json``: the same for JSON values.

Nothing is unpickled: entries are bytes (JSON, ``.npy`` arrays loaded with
``allow_pickle=False``, PNG, SVG, XLSX, OpenType); their callers still check that what they
read has the shape they expect and treat anything else as a miss.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: The first bytes of every entry; bump the digit to drop every entry of every cache.
MAGIC = b"mobilize-cache-1 "
_HEADER = len(MAGIC) + 64 + 1

#: folders this process has created or seen (a write then skips the mkdir calls)
_MADE_DIRS: set[str] = set()


def key(*parts: Any) -> str:
    """The cache key of ``parts`` (JSON-serialisable values; others by ``str``)."""
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()


def pack(data: bytes) -> bytes:
    """``data`` as a cache entry: the header with its checksum, then the data."""
    return MAGIC + hashlib.sha256(data).hexdigest().encode("ascii") + b"\n" + data


def unpack(entry: bytes) -> bytes | None:
    """The data of a cache entry, or None when its header or checksum is wrong."""
    if len(entry) < _HEADER or not entry.startswith(MAGIC) or entry[_HEADER - 1:_HEADER] != b"\n":
        return None
    data = entry[_HEADER:]
    if hashlib.sha256(data).hexdigest().encode("ascii") != entry[len(MAGIC):_HEADER - 1]:
        return None
    return data


def read(path: Path) -> bytes | None:
    """The data of the entry at ``path``, or None (missing, unreadable, damaged)."""
    try:
        with open(path, "rb") as fh:
            entry = fh.read()
    except OSError:
        return None
    data = unpack(entry)
    if data is None:
        log.debug("cache: %s is damaged or of an older version; it is recomputed", path)
    return data


def write(path: Path, data: bytes) -> bool:
    """Store ``data`` as the entry at ``path`` (atomic); False when the cache cannot be written."""
    try:
        atomic_write(Path(path), pack(data))
    except OSError as exc:
        log.info("cache: cannot write %s (%s); it only costs time", path, exc.strerror or exc)
        return False
    return True


def read_json(path: Path) -> Any:
    """The JSON value of the entry at ``path``, or None (missing, damaged, not JSON)."""
    data = read(path)
    if data is None:
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:  # (UnicodeDecodeError is a ValueError)
        return None


def write_json(path: Path, value: Any) -> bool:
    """Store ``value`` as JSON (sorted keys) at ``path``; False when it cannot be written."""
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return write(path, text.encode("utf-8", "surrogatepass"))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary name in ``path``'s folder and rename it into place.

    (The raw write, without a checksum header: for files that are not cache entries.)
    Raises OSError when the folder cannot be written.
    """
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
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
