"""mobilize: comparative policy text analysis of social mobilization in China's social security system.

The stages, in the order the data goes through them: ``ingest`` -> ``normalize``
-> ``segment`` -> ``score`` -> ``compare`` -> ``report``; ``flow`` wires them
with Prefect, ``engine`` runs them in-process, ``cli`` is the command line.
Nothing is configured or loaded at import time.
"""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.errors import IngestError, LexiconError, MobilizeError
from pipeline.ingest import Corpus, Document, LedgerEntry, load_corpus, scan_corpus

__version__ = "0.2.0"

__all__ = [
    "Corpus",
    "Document",
    "IngestError",
    "LedgerEntry",
    "LexiconError",
    "MobilizeError",
    "Settings",
    "load_corpus",
    "scan_corpus",
    "__version__",
]
