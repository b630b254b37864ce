"""CSV cells a spreadsheet will not run: the one function every CSV the product writes goes through.

Spreadsheets evaluate a cell that begins with `=`, `+`, `-` or `@` as a formula (and some also after a
leading tab or carriage return), so a supplier named `=HYPERLINK(...)` would become a live link, or a
`cmd|...` call, in whoever opens the export. Such a cell is written with a leading apostrophe, which
spreadsheets show as text (the OWASP advice). A plain number (`-5`, `+3`, `-12.50`) is left as it is:
it is read as that number, never as a formula.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import IO, Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def cell(value: Any) -> str:
    """The value as CSV text; one a spreadsheet would run as a formula is prefixed with an apostrophe."""
    if value is None:
        return ""
    text = str(value)
    if text.startswith(FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class Writer:
    """csv.writer whose every cell goes through `cell`, and where a cell holding CR or LF is always quoted.

    (csv.writer quotes only the characters of its own line terminator: with "\n" a lone CR went out
    bare and split the row in two for whoever read it.)
    """

    def __init__(self, out: IO[str], lineterminator: str = "\r\n") -> None:
        self._out = out
        self._end = lineterminator
        self._row = io.StringIO()
        self._csv = csv.writer(self._row, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> None:
        self._row.seek(0)
        self._row.truncate()
        self._csv.writerow([cell(v) for v in row])
        self._out.write(self._row.getvalue()[:-2] + self._end)
