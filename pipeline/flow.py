"""The Prefect flow: the only module that imports Prefect."""

from __future__ import annotations

from pipeline.config import Settings


def run_flow(settings: Settings):  # type: ignore[no-untyped-def]
    raise NotImplementedError("the Prefect engine is not built yet: use --engine local")
