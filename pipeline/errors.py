"""Errors a researcher can act on: each names the file, the line (where there is one) and the fix."""

from __future__ import annotations

from pathlib import Path


class MobilizeError(Exception):
    """A problem with the researcher's input, reported without a traceback.

    ``str(err)`` reads ``<path>:<line>: <problem>. <fix>``.
    """

    exit_code = 2

    def __init__(self, problem: str, *, path: str | Path | None = None,
                 line: int | None = None, fix: str = "") -> None:
        self.problem = problem
        self.path = str(path) if path is not None else None
        self.line = line
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f":{self.line}" if self.line else "") + ": "
        fix = f" {self.fix}" if self.fix else ""
        return f"{where}{self.problem}.{fix}" if not self.problem.endswith(".") else f"{where}{self.problem}{fix}"


class IngestError(MobilizeError):
    """One input file cannot enter the corpus (it is then recorded as failed)."""


class LexiconError(MobilizeError):
    """The lexicon file is invalid."""


class RunLockedError(MobilizeError):
    """Another run holds the output folder."""

    exit_code = 3
