"""What the blind-sheet scripts of this folder share (``framing_cues.py``, ``candidates.py``):
reading and writing their CSV files, reading a coded copy of a blind sheet against its key,
the key's default name, and the agreement and Cohen's kappa of two coders.

Cohen's kappa is the project's own (``pipeline.recall.kappa_estimate``, scikit-learn's
``cohen_kappa_score``), the one ``mobilize lexicon agreement`` reports; it is printed to 2
decimals, and as "n/a (one label only)" where it is undefined (both coders used one and the
same label for every line: chance agreement is 1).

The scripts import it as a sibling module (``python lexicons/validation/NAME.py`` puts this
folder first on the module path).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.errors import MobilizeError

#: the shared corpora beside the repository, and the four Chinese ones the sheets are drawn from
CORPORA = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpora"
SHARED = ("gwr-national-zh", "gwr-provincial-zh", "npc-resolutions-gwr-zh",
          "social-security-policy-zh")
#: how an undefined kappa is printed
KAPPA_UNDEFINED = "n/a (one label only)"


def read_sheet(path: Path, needed: Sequence[str]) -> list[dict[str, str]]:
    """The rows of a UTF-8 CSV file (with or without a BOM); a missing column or an unreadable
    file stops with the file and the fix."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in needed if c not in (reader.fieldnames or ())]
            if missing:
                raise MobilizeError(f"no column {', '.join(missing)}", path=path, line=1,
                                    fix=f"the file needs the columns {', '.join(needed)}")
            return list(reader)
    except OSError as e:
        raise MobilizeError(f"cannot read the file ({e.strerror})", path=path,
                            fix="give the path of an existing CSV file") from e


def write_sheet(path: Path, columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> None:
    """Write ``rows`` as UTF-8 CSV (``\\n`` line ends) into a temporary sibling, then rename
    it into place: an interrupted write leaves the earlier file as it was."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    tmp.replace(path)


def default_key(blind: Path) -> Path:
    """The key beside a blind sheet: its name with ``-blind`` replaced by ``-key``."""
    if "-blind" not in blind.stem:
        raise MobilizeError("cannot name the key: the sheet's name has no '-blind'",
                            path=blind, fix="name the sheet *-blind.csv or give --key")
    return blind.with_name(blind.stem.replace("-blind", "-key") + blind.suffix)


def read_coded(path: Path, key: Collection[str], *, id_column: str, noun: str,
               judgements: Mapping[str, str], judgement_fix: str,
               needed: Sequence[str] = ()) -> dict[str, str]:
    """id -> judgement of one coded copy of a blind sheet, checked against the ids of its
    key: every id on the sheet is in the key, coded once, and every id of the key is coded.
    ``judgements`` maps what a coder may write (lower case) to the value read; anything else
    stops with the file, the line and ``judgement_fix``. ``noun`` names a row in messages
    (``line``, ``candidate``)."""
    out: dict[str, str] = {}
    for n, r in enumerate(read_sheet(path, (id_column, *needed, "judgement")), start=2):
        rid = r[id_column].strip()
        if rid not in key:
            raise MobilizeError(f"{id_column} {rid!r} is not in the key", path=path, line=n,
                                fix="code the blind sheet drawn with this key")
        if rid in out:
            raise MobilizeError(f"{id_column} {rid} is coded twice", path=path, line=n,
                                fix=f"keep one row per {noun}")
        value = judgements.get(r["judgement"].strip().lower())
        if value is None:
            raise MobilizeError(f"judgement {r['judgement']!r} of {rid}", path=path, line=n,
                                fix=judgement_fix)
        out[rid] = value
    missing = sorted(set(key) - set(out))
    if missing:
        raise MobilizeError(f"{len(missing)} {noun}s of the key are not on the sheet "
                            f"({', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''})",
                            path=path, fix=f"code every {noun} of the blind sheet")
    return out


def kappa_cell(x: Sequence[str], y: Sequence[str], positive: str) -> str:
    """Cohen's kappa of two coders' labels (``positive`` or another), to 2 decimals, or
    ``KAPPA_UNDEFINED``."""
    from pipeline.recall import kappa_estimate

    est = kappa_estimate([v == positive for v in x], [v == positive for v in y])
    return KAPPA_UNDEFINED if est.value is None else f"{est.value:.2f}"


def pair_agreement(x: Sequence[str], y: Sequence[str], positive: str) -> tuple[str, str]:
    """The observed agreement (2 decimals) and Cohen's kappa cell of two coders' labels of the
    same lines, in the same order."""
    agree = sum(p == q for p, q in zip(x, y, strict=True)) / len(x)
    return f"{agree:.2f}", kappa_cell(x, y, positive)


def add_blind_outputs(parser: argparse.ArgumentParser) -> None:
    """The drawing command's ``--out`` (the blind sheet) and ``--key`` options."""
    parser.add_argument("--out", type=Path, required=True, help="the blind sheet (*-blind.csv)")
    parser.add_argument("--key", type=Path, help="the key (default: the sheet's name, -key)")


def add_coded_parser(sub: Any, name: str, help: str) -> argparse.ArgumentParser:
    """The command that joins coded copies of the blind sheet with its key."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("sheets", type=Path, nargs="+", help="coded copies of the blind sheet")
    return parser


def run(action: Callable[[], None]) -> int:
    """Run a script's command: 0, or a ``MobilizeError`` printed on stderr and its exit code."""
    try:
        action()
    except MobilizeError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0
