"""Text from the corpus made safe for where it is shown: workbook cells, Markdown, file names.

Document text and metadata values are kept exactly in the tables (CSV, Parquet, DuckDB); only
where they are *shown* is each target's syntax neutralised, here, in one place:

- ``xlsx(value)``: a workbook cell. The control characters XML 1.0 cannot hold (NUL,
  U+0001-U+0008, U+000B, U+000C, U+000E-U+001F), which openpyxl refuses, become their
  visible Control Pictures (U+0000 -> ␀, U+0007 -> ␇); a value that starts with ``=``,
  ``+``, ``-`` or ``@`` gets a leading ``'`` so that no spreadsheet runs it as a formula.
- ``markdown(value)``: inline Markdown text (a table cell, a list item): HTML-escaped
  (``& < >``) and every character that starts Markdown syntax inside a line backslash-escaped
  (links and images ``[ ] !``, emphasis ``* _ ~``, code `````, tables ``|``, math ``$``), bare
  URLs broken so that no renderer makes them links; a line break becomes a space.

- ``xml_bytes(data)``: an SVG figure: the same control characters, which matplotlib writes
  into the SVG as they are, become Control Pictures (the file stays valid XML).

Figures: matplotlib's mathtext (``$...$``) is switched off for the report's figures
(``text.parse_math`` in ``pipeline.report``), so ``$`` in a metadata value is drawn as it is.
HTML: Jinja2's autoescape escapes every value of report.html.
"""

from __future__ import annotations

import html
import re

#: The characters openpyxl (XML 1.0) refuses in a cell.
_XLSX_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")
_XML_ILLEGAL_BYTES = re.compile(b"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FORMULA_START = ("=", "+", "-", "@")
_MD_SPECIAL = re.compile(r"([\\`*_\[\]!~|$#])")
_MD_URL = re.compile(r"(?i)(?<=[a-z])://|\bwww\.")


def control_picture(match: re.Match[str]) -> str:
    """U+0000-U+001F -> the visible Control Picture U+2400-U+241F (␀ ␁ ... ␟)."""
    return chr(0x2400 + ord(match.group()))


def xlsx(value: str) -> str:
    """``value`` as the text of a workbook cell: no illegal control character, never a formula."""
    if _XLSX_ILLEGAL.search(value):
        value = _XLSX_ILLEGAL.sub(control_picture, value)
    if value.startswith(_FORMULA_START):
        return "'" + value  # cells hold text from the corpus, never formulas
    return value


def xml_bytes(data: bytes) -> bytes:
    """UTF-8 XML (an SVG figure) without the control characters XML 1.0 cannot hold: each
    becomes its Control Picture. (Such a byte is never part of a multi-byte UTF-8 sequence.)
    matplotlib writes a label's text into the SVG as it is: a control character in a region
    name made the figure an invalid XML file that browsers refuse to show."""
    if not _XML_ILLEGAL_BYTES.search(data):
        return data
    return _XML_ILLEGAL_BYTES.sub(lambda m: chr(0x2400 + m.group()[0]).encode("utf-8"), data)


def markdown(value: str) -> str:
    """``value`` as inline Markdown that shows the text as it is (no link, image, emphasis,
    HTML, table cell break or math from document text)."""
    out = html.escape(value, quote=False)
    out = _MD_SPECIAL.sub(r"\\\1", out)
    out = _MD_URL.sub(lambda m: ":\\/\\/" if m.group().startswith(":") else "www\\.", out)
    return out.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")
