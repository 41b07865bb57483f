"""The corpus registry: names for corpus folders, kept in the user's config file.

``config.toml`` (see ``pipeline.config.config_file()``) holds one table per
registered corpus::

    [corpora.national]
    path = "/home/me/data/gwr-national-zh"

Other tables and keys in the file are kept as they are when a corpus is added.

Names: a run of a registered corpus by its name writes to ``OUT/<registered name>/``; a run by
path writes to ``OUT/<folder name>/``, whether or not that folder is also registered
(``resolve_corpus``). A name is one folder name: no ``/``, no ``..``, no glob characters, no
leading dot; names read from the config file are checked too (``registered``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import config_file, read_config
from pipeline.errors import MobilizeError
from pipeline.ingest import scan_corpus

_NAME = re.compile(r"^[A-Za-z0-9_\-\u4e00-\u9fff]+$")
_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+$")


@dataclass(frozen=True)
class CorpusInfo:
    """A registered corpus and what a scan (no reading) says of it."""

    name: str
    path: Path
    exists: bool
    documents: int  # planned documents (metadata rows with a readable file, or supported files)
    first_year: int | None
    last_year: int | None
    problem: str = ""  # why the folder cannot be used (a broken metadata.csv), else ""

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "path": str(self.path), "exists": self.exists,
                "documents": self.documents, "first_year": self.first_year,
                "last_year": self.last_year, "problem": self.problem}


def _config() -> dict[str, Any]:
    try:
        return read_config()
    except ValueError as exc:  # a broken config.toml: its path and the fix are in the message
        raise MobilizeError(str(exc)) from None


def check_name(name: str) -> str | None:
    """Why ``name`` cannot be a corpus name (None when it can): it names the output folder
    ``OUT/<name>`` and the run's lock and temporary folders beside it."""
    if not name:
        return "it is empty"
    if "/" in name or "\\" in name or ".." in name:
        return "it contains '/', '\\' or '..'"
    if any(ch in name for ch in "*?[]"):
        return "it contains a glob character (* ? [ ])"
    if name.startswith("."):
        return "it starts with a dot"
    if any(ord(ch) < 32 for ch in name):
        return "it contains a control character"
    return None


def registered() -> dict[str, Path]:
    """Registered corpora, name -> folder, sorted by name.

    A name in the config file that cannot be a corpus name (it would name a folder outside
    ``OUT`` or match other corpora's files) is an error naming the file and the fix."""
    config = _config()
    table = config.get("corpora", {})
    if not isinstance(table, dict):
        raise MobilizeError("[corpora] must be a table of corpus names", path=config_file(),
                            fix="Fix the file or delete it to start afresh.")
    out: dict[str, Path] = {}
    for name, entry in sorted(table.items()):
        why = check_name(name)
        if why is not None:
            raise MobilizeError(f"the registered corpus name {name!r} cannot be used: {why}",
                                path=config_file(),
                                fix=f"Rename or remove [corpora.{_toml_key(name)}] in that file "
                                    "(letters, digits, Chinese characters, '-' and '_'), or "
                                    "register the folder again: mobilize corpus add PATH --name "
                                    "NAME.")
        if isinstance(entry, dict) and isinstance(entry.get("path"), str):
            out[name] = Path(entry["path"])
    return out


def add_corpus(path: Path, name: str, *, force: bool = False) -> Path:
    """Register the folder ``path`` under ``name``; returns the folder.

    A name already registered for another folder is refused unless ``force`` (the message
    says which folder it points to); registering the same folder again is a no-op."""
    why = check_name(name)
    if why is None and not _NAME.match(name):
        why = "use only letters, digits, Chinese characters, '-' and '_'"
    from pipeline.store import COMPARE_DIR

    if why is None and name == COMPARE_DIR:
        why = (f"OUT/{COMPARE_DIR}/ is where `mobilize compare` writes, so no run may use it; "
               "pick another name")
    if why is not None:
        raise MobilizeError(f"invalid corpus name {name!r}: {why}",
                            fix="Use letters, digits, Chinese characters, '-' and '_'.")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise MobilizeError("no such corpus folder", path=folder,
                            fix="Give an existing folder of documents.")
    folder = folder.resolve()
    scan_corpus(folder)  # refuse a folder whose metadata.csv is unusable
    earlier = registered().get(name)
    if earlier is not None and not force and earlier.expanduser().resolve() != folder:
        raise MobilizeError(f"the name {name!r} is already registered for {earlier}",
                            path=config_file(),
                            fix=f"Choose another --name, or pass --force to point {name!r} to "
                                f"{folder} instead.")
    config = _config()
    corpora = config.setdefault("corpora", {})
    corpora[name] = {"path": str(folder)}
    _write_config(config)
    return folder


def remove_corpus(name: str) -> None:
    """Forget a registered corpus (its folder is untouched)."""
    config = _config()
    corpora = config.get("corpora", {})
    if name not in corpora:
        raise MobilizeError(f"no registered corpus named {name!r}", fix=_known())
    del corpora[name]
    _write_config(config)


def resolve_corpus(path_or_name: str | Path) -> tuple[Path, str]:
    """A folder path or a registered name -> (folder, name).

    A path that exists wins, and its name is the folder's name (even when that folder is also
    registered under another name: by path, outputs go to ``OUT/<folder name>``); otherwise a
    registered name, named as registered; otherwise a MobilizeError that lists the registered
    names.
    """
    candidate = Path(path_or_name).expanduser()
    if candidate.is_dir():
        folder = candidate.resolve()
        return folder, folder.name
    names = registered()
    key = str(path_or_name)
    if key in names:
        folder = names[key]
        if not folder.is_dir():
            raise MobilizeError(f"registered corpus {key!r} points to a missing folder", path=folder,
                                fix=f"Register it again: mobilize corpus add PATH --name {key}")
        return folder.resolve(), key
    raise MobilizeError(f"{key!r} is neither a folder nor a registered corpus", fix=_known())


def corpus_info(name: str, path: Path) -> CorpusInfo:
    """Document count and year span of a registered corpus, from a scan (no document is read)."""
    if not path.is_dir():
        return CorpusInfo(name, path, False, 0, None, None)
    try:
        scan = scan_corpus(path, name=name)
    except MobilizeError as exc:
        return CorpusInfo(name, path, True, 0, None, None, exc.message)
    years = [s.year for s in scan.sources if s.year is not None]
    return CorpusInfo(name, path, True, len(scan.sources), min(years, default=None),
                      max(years, default=None))


def list_corpora() -> list[CorpusInfo]:
    """Every registered corpus with its document count and year span, sorted by name."""
    return [corpus_info(name, path) for name, path in registered().items()]


def _known() -> str:
    names = sorted(registered())
    listed = ", ".join(names) if names else "none yet"
    return (f"Registered corpora: {listed}. Give an existing folder, or register one with "
            "`mobilize corpus add PATH --name NAME`.")


# --------------------------------------------------------------------------- a tiny TOML writer


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key, ensure_ascii=False)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_dumps(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> str:
    """Scalars and arrays first, then one ``[table]`` per nested dict."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{_toml_key(key)} = {_toml_value(value)}")
    out = "\n".join(lines) + ("\n" if lines else "")
    for key, value in tables:
        path = prefix + (key,)
        has_scalars = any(not isinstance(v, dict) for v in value.values())
        header = f"[{'.'.join(_toml_key(k) for k in path)}]\n" if has_scalars or not value else ""
        out += ("\n" if out else "") + header + _toml_dumps(value, path)
    return out


def _write_config(config: dict[str, Any]) -> None:
    """Write the config file atomically (temporary file, then rename)."""
    path = config_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# mobilize user configuration (written by `mobilize corpus add`)\n" + _toml_dumps(config)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config-", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
