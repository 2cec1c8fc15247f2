"""Reading a CSV or XLSX file into rows numbered the way the admin sees them in the spreadsheet.

Row 1 is the header; the first data row is row 2. Blank rows keep their number (the admin counts
them in Excel) but carry no data and are not returned. CSV exported by a Chinese Excel is often
GB18030 rather than UTF-8, so a file that is not valid UTF-8 is read as GB18030.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connector.assessments.errors import ImportFileError


@dataclass(frozen=True)
class SheetRow:
    number: int  # the spreadsheet row number; header is row 1
    cells: tuple[Any, ...]


@dataclass(frozen=True)
class Sheet:
    headers: tuple[str, ...]
    rows: tuple[SheetRow, ...]


def read_sheet(path: Path) -> Sheet:
    """The header and non-blank data rows of ``path`` (.csv, or the first worksheet of an .xlsx)."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        records = _read_csv(path)
    elif suffix == ".xlsx":
        records = _read_xlsx(path)
    else:
        raise ImportFileError("unsupported_format", suffix=suffix or "(none)")
    if not records or _blank(records[0]):
        raise ImportFileError("no_header")
    headers = tuple("" if cell is None else str(cell).strip() for cell in records[0])
    rows = tuple(
        SheetRow(number, tuple(record))
        for number, record in enumerate(records[1:], start=2)
        if not _blank(record)
    )
    return Sheet(headers, rows)


def _blank(record: tuple[Any, ...] | list[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in record)


def _read_csv(path: Path) -> list[tuple[Any, ...]]:
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("gb18030", errors="replace")
    return [tuple(record) for record in csv.reader(io.StringIO(text, newline=""))]


def _read_xlsx(path: Path) -> list[tuple[Any, ...]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(_read_bytes(path)), read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a damaged file
        raise ImportFileError("unreadable", path=str(path), error=str(exc) or type(exc).__name__) from exc
    try:
        sheet = workbook.worksheets[0]
        return [tuple(row) for row in sheet.iter_rows(min_row=1, values_only=True)]
    finally:
        workbook.close()


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ImportFileError("unreadable", path=str(path), error=exc.strerror or str(exc)) from exc
