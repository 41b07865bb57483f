"""Shared fixtures: the shared corpora, and a private config/cache per test session.

Integration tests read the real corpora from ``../shared/corpora`` (never copied
into this repository) and skip, saying why, where that folder is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("MOBILIZE_SHARED", REPO.parent / "shared")).resolve()
SHARED_CORPORA = SHARED / "corpora"
CHINESE_CORPORA = ("gwr-national-zh", "gwr-provincial-zh", "social-security-policy-zh",
                   "npc-resolutions-gwr-zh")
ALL_CORPORA = CHINESE_CORPORA + ("gwr-national-en",)


def shared_corpus(name: str) -> Path:
    """The path of a shared corpus, or skip the test with the reason."""
    path = SHARED_CORPORA / name
    if not path.is_dir():
        pytest.skip(f"shared corpus {name!r} not found at {path}: these integration tests read "
                    "the real corpora from ../shared/corpora (set MOBILIZE_SHARED to move it)")
    return path


class CharTokenizer:
    """A trivial injected tokenizer for unit tests: one token per character."""

    name = "chars"
    version = "1"
    hmm = False
    config_hash = "chars"

    def cut(self, text: str) -> list[str]:
        return list(text)


@pytest.fixture(autouse=True, scope="session")
def _private_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the user's real config and caches out of the tests."""
    base = tmp_path_factory.mktemp("mobilize-home")
    os.environ["MOBILIZE_CONFIG_DIR"] = str(base / "config")
    os.environ.setdefault("MOBILIZE_CACHE_DIR", str(base / "cache"))
    os.environ["MOBILIZE_HOME"] = str(base / "home")


@pytest.fixture
def national_zh() -> Path:
    return shared_corpus("gwr-national-zh")
