"""Every CSV and XLSX file the product writes goes through here, so that no cell can be
read by Excel or LibreOffice as a formula (CSV/formula injection).

A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
written with a single quote in front (``'=HYPERLINK(...)``): a spreadsheet shows it as
text, and a person reading the file sees the quote. This covers anything typed by someone
else: a user ID typed at sign-in (audit export), a resident's name or address (postcard
print data).

The choice: numbers, dates and booleans are written as they are (a negative number stays a
number). Only *text* is guarded, so a text value that legitimately starts with ``-`` or
``+`` (a phone number written ``+81...``, a note starting with a dash) also gets the quote.
Such values are rare in this product (phone numbers are stored as digits) and a visible
quote is harmless, while a formula in a file opened at the city office is not.

In XLSX files (XlsxWriter) text is always written with ``write_string``, never
``write``, so it can never become a formula; the same quote is added so that the file
behaves the same after being saved again as CSV.
"""
from __future__ import annotations

import csv
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Iterable

DANGEROUS_FIRST = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value to write in a cell: text starting with a formula character gets a leading
    single quote; ``None`` becomes an empty string; other types are left as they are."""
    if value is None:
        return ""
    if isinstance(value, (bool, int, float, Decimal, date, datetime)):
        return value
    text = str(value)
    if text.startswith(DANGEROUS_FIRST):
        return "'" + text
    return text


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in values]


class CsvWriter:
    """``csv.writer`` whose rows are made safe (CRLF line ends, for Excel)."""

    def __init__(self, stream, **options):
        options.setdefault("lineterminator", "\r\n")
        self._writer = csv.writer(stream, **options)

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow(safe_row(values))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(stream, **options) -> CsvWriter:
    return CsvWriter(stream, **options)


def xlsx_write_row(worksheet, row: int, values: Iterable[Any], first_col: int = 0,
                   cell_format=None, date_format=None) -> None:
    """Write one row on an XlsxWriter worksheet: text with ``write_string`` (never a
    formula), numbers with ``write_number``, dates with ``write_datetime`` in
    ``date_format`` (an XlsxWriter format with num_format, e.g. ``yyyy/mm/dd``)."""
    for col, value in enumerate(values, start=first_col):
        cell = safe_cell(value)
        if isinstance(cell, bool):
            worksheet.write_boolean(row, col, cell, cell_format)
        elif isinstance(cell, (int, float, Decimal)):
            worksheet.write_number(row, col, float(cell), cell_format)
        elif isinstance(cell, (date, datetime)):
            if isinstance(cell, datetime) and cell.tzinfo is not None:
                cell = cell.replace(tzinfo=None)  # Excel has no time zones: local time as is
            worksheet.write_datetime(row, col, cell, date_format or cell_format)
        elif cell == "":
            worksheet.write_blank(row, col, None, cell_format)
        else:
            worksheet.write_string(row, col, cell, cell_format)


GETA = "〓"  # 下駄記号: the printers' and the registries' mark for a character left out


def replace_unmappable(text: str, replacement: str = GETA,
                       encoding: str = "cp932") -> tuple[str, int]:
    """``text`` with each character ``encoding`` cannot hold replaced, and how many were."""
    try:
        text.encode(encoding)
        return text, 0
    except UnicodeEncodeError:
        pass
    kept, replaced = [], 0
    for char in text:
        try:
            char.encode(encoding)
            kept.append(char)
        except UnicodeEncodeError:
            kept.append(replacement)
            replaced += 1
    return "".join(kept), replaced


def encode_text(text: str, encoding: str) -> tuple[bytes, int]:
    """``text`` in ``encoding`` (utf-8-sig or cp932) and how many characters it cannot hold
    were written as 〓 (never a silent "?": the caller records the count)."""
    kept, replaced = replace_unmappable(text, GETA, encoding)
    return kept.encode(encoding), replaced
