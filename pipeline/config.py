"""One explicit, frozen configuration object for a run, and the places mobilize keeps things.

Nothing here runs at import time. ``Settings`` is built from CLI options and the
optional config file and passed down to every stage.

Places (each can be moved with an environment variable, which the tests use):

- ``MOBILIZE_CONFIG_DIR``: the user's config folder holding ``config.toml``
  (registered corpora, defaults). Default: the platform's user config dir.
- ``MOBILIZE_CACHE_DIR``: segmentation/score caches and models, keyed by hash.
  Default: the platform's user cache dir.
- ``MOBILIZE_HOME``: Prefect's home (database, results) when mobilize starts Prefect.
  Default: the platform's user data dir / ``prefect``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal


#: The repository root (``pipeline/..``): bundled lexicons and the demo corpus live there.
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_LEXICON = PROJECT_ROOT / "lexicons" / "mobilize.yaml"
DEFAULT_CORPUS = PROJECT_ROOT / "corpora" / "demo"
DEFAULT_OUT = PROJECT_ROOT / "reports"
DEFAULT_PERIODS = PROJECT_ROOT / "lexicons" / "periods.yaml"


def shown_path(path: str | Path) -> str:
    """A path as output shows it: relative to the working folder when it is inside it, else
    relative to the project folder when inside that, else as it is (never a machine's absolute
    path for a folder given relative to where mobilize runs)."""
    p = Path(path)
    try:
        absolute = p if p.is_absolute() else p.resolve()
        bases = (Path.cwd().resolve(), PROJECT_ROOT)
    except OSError:  # (a working folder deleted meanwhile)
        return str(path)
    for base in bases:
        try:
            return absolute.relative_to(base).as_posix() or "."
        except ValueError:
            continue
    return str(path)


Segmenter = Literal["jieba", "jieba-rs"]
#: The segmenter a run uses unless told otherwise: jieba-rs (jieba's algorithm and dictionary,
#: compiled; about 10x faster). ``jieba`` stays the reference (``--segmenter jieba``); how
#: often the two agree is measured in docs/engine.md.
DEFAULT_SEGMENTER: Segmenter = "jieba-rs"
Engine = Literal["prefect", "local"]


# (platformdirs and tomllib are imported where they are needed: a first run sets no folder and
# has no config file, and every ``mobilize`` command imports this module at its start)


def config_dir() -> Path:
    env = os.environ.get("MOBILIZE_CONFIG_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("mobilize"))


def config_file() -> Path:
    return config_dir() / "config.toml"


def cache_dir() -> Path:
    env = os.environ.get("MOBILIZE_CACHE_DIR")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("mobilize"))


def data_dir() -> Path:
    env = os.environ.get("MOBILIZE_HOME")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("mobilize"))


def read_config() -> dict[str, Any]:
    """The user's config file as a dict ({} when there is none)."""
    path = config_file()
    if not path.is_file():
        return {}
    import tomllib

    with path.open("rb") as fh:
        try:
            return tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: {exc}. Fix the file or delete it to start afresh.") from exc


#: The most worker processes a run may start, per core of the machine (``max_workers``).
WORKERS_PER_CORE = 4


def max_workers() -> int:
    """The most worker processes a run may start: ``WORKERS_PER_CORE`` x the cores."""
    return WORKERS_PER_CORE * (os.cpu_count() or 1)


@dataclass(frozen=True)
class Settings:
    """Everything a run needs, decided once, before any work starts."""

    corpus: Path = DEFAULT_CORPUS
    corpus_name: str = "demo"
    out: Path = DEFAULT_OUT
    lexicon: Path = DEFAULT_LEXICON
    periods: Path | None = DEFAULT_PERIODS
    segmenter: Segmenter = DEFAULT_SEGMENTER
    hmm: bool = True
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    batch_size: int = 64
    cache: Path = field(default_factory=cache_dir)
    engine: Engine = "prefect"
    to_simplified: bool = False
    on_split_term: Literal["warn", "fail"] = "warn"
    report: bool = True
    discover: bool = False  # the report's discovery section (topics, drift): slow, opt-in
    seed: int = 20240601
    verbose: bool = False
    progress: bool = True
    wait: float = 0.0  # seconds a run waits for another run's lock on the same output folder

    def __post_init__(self) -> None:
        limit = max_workers()
        if not isinstance(self.workers, int) or not 1 <= self.workers <= limit:
            from pipeline.errors import MobilizeError

            raise MobilizeError(
                f"workers = {self.workers!r} (--workers or the config file) is not between 1 and "
                f"{limit}: 4 x the {os.cpu_count() or 1} cores of this machine. Each worker is a "
                "process with its own segmenter dictionary (about 90 MB), and segmenting is "
                "CPU-bound: workers beyond the cores add memory, not speed",
                fix=f"Give --workers from 1 to {limit} (the default is the number of cores).")

    @property
    def run_dir(self) -> Path:
        """Where this corpus's outputs live: ``<out>/<corpus_name>/``."""
        return self.out / self.corpus_name

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)
