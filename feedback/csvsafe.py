"""The one CSV writer: every cell is shown by a spreadsheet as text, never run as a formula.

Following OWASP's CSV injection guidance, a text cell that begins with `=`, `+`, `-`, `@`, a tab
or a carriage return (or a full-width `＝ ＋ － ＠`, which some spreadsheets also read as a
formula) is written with a leading `'`, which spreadsheets take to mean "text". Numbers stay
numbers: an int or float is written as it is, and so is text that is a plain decimal number in
full (`-3`, `+1.5e3`), which no spreadsheet evaluates. Quotes, commas and line breaks inside a
cell are quoted by the `csv` module, so a cell can never spill into the next one.

Every CSV the product writes goes through `Writer` (tests/web/test_csv_injection.py holds each
CSV route to it). Parquet and JSON Lines are written exactly, without this treatment.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

MEDIA_TYPE = "text/csv"
FORMULA_STARTS = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


class _TextOut(Protocol):
    """Anything `csv.writer` can write to."""

    def write(self, text: str, /) -> Any: ...


def neutralise(text: str) -> str:
    """The text, with a leading `'` if a spreadsheet would otherwise read it as a formula."""
    if text[:1] in FORMULA_STARTS and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def cell(value: Any) -> Any:
    """One CSV cell: None empty, booleans true/false, times ISO 8601, numbers as they are, text neutralised."""
    if isinstance(value, str):
        # The common case first, and ordinary text costs one set lookup (an export writes millions of cells).
        return neutralise(value) if value[:1] in FORMULA_STARTS else value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    return neutralise(str(value))


class Writer:
    """`csv.writer` whose every cell, header included, goes through `cell`."""

    def __init__(self, out: _TextOut) -> None:
        """Write CSV lines to `out` (a text buffer or file)."""
        self._writer = csv.writer(out)

    def writerow(self, values: Iterable[Any]) -> None:
        """Write one row of cells."""
        self._writer.writerow([cell(value) for value in values])

    def write_records(self, records: Iterable[Mapping[str, Any]], columns: Sequence[str]) -> None:
        """Write each record's `columns` as one row (a missing key is an empty cell)."""
        writerow = self._writer.writerow
        for record in records:
            writerow([cell(record.get(name)) for name in columns])
