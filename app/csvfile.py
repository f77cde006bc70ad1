"""Every CSV the app writes goes through here, so that no cell runs as a formula.

Spreadsheet apps run a cell that begins with ``=``, ``+``, ``-`` or ``@`` (and, in
some, with a tab or a carriage return before one of those) as a formula: a source
named ``=HYPERLINK(...)`` or an intake email ``=cmd|'/c calc'!A1@example.com``
would run on the owner's machine. Such text gets a leading apostrophe, which the
spreadsheet shows as text and hides; nothing else of the value changes.

Numbers stay numbers. Python ints and floats are written as they are, and so is
text that is nothing but a plain decimal number (``-12.50``): a negative amount
cannot be a formula, and quoting it would turn a figure the owner sums into text.
"""

import csv
import re
from collections.abc import Iterable
from typing import Any

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet may open it: formula-like text gets an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    text = str(value)
    if text.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` whose every cell passes through :func:`safe_cell`."""

    def __init__(self, out, **options):
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([safe_cell(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(out, **options) -> SafeWriter:
    """A CSV writer for anything the app hands to a person (same options as csv.writer)."""
    return SafeWriter(out, **options)
