"""Reading Excel workbooks as raw cell values (no formulas evaluated, no macros run).

Uses pandas' ``calamine`` engine (python-calamine, a Rust reader): it reads the cached
values the cart's software wrote and never executes anything in the workbook.
"""

from __future__ import annotations

import os
import zipfile
from contextlib import suppress
from functools import lru_cache
from itertools import islice
from pathlib import Path

import pandas as pd

from ..findings import CPETError, Finding, Severity

#: Magic bytes of the ZIP container of .xlsx files.
ZIP_MAGIC = b"PK\x03\x04"
#: Rows of a sheet that content detection may look at.
SNIFF_ROWS = 300
#: Magic bytes of legacy .xls (OLE2 compound document).
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def is_workbook(head: bytes, path: Path) -> bool:
    """Whether the file is an .xlsx (ZIP with ``xl/workbook.xml``) or a legacy .xls."""
    if head.startswith(OLE2_MAGIC):
        return True
    if not head.startswith(ZIP_MAGIC):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


#: Cells of the first sheet an ``unsupported-format`` message shows.
DESCRIBED_CELLS = 8


def describe_workbook(head: bytes, path: Path) -> str | None:
    """What a workbook no reader claims shows, for the ``unsupported-format`` message.

    A file is a workbook when it is a legacy .xls (OLE2), or a ZIP that holds
    ``xl/workbook.xml`` or, when the ZIP cannot be opened (cut short, damaged), whose first
    entry is the ``[Content_Types].xml`` of Office files and whose first bytes name ``xl/``
    parts.

    Returns
    -------
    str or None
        ``"an Excel workbook (.xlsx) whose layout no reader recognises: ..."`` with the
        first non-empty cells of the first sheet (or why it cannot be opened); None when
        the file is not a workbook.
    """
    if head.startswith(OLE2_MAGIC):
        kind = "a legacy Excel workbook (.xls)"
    elif is_workbook(head, path) or _names_xlsx_parts(head):
        kind = "an Excel workbook (.xlsx)"
    else:
        return None
    rows = sniff_rows(path)
    if rows is None:
        seen = "it cannot be opened (the file is damaged or cut short)"
    else:
        filled = ((r, c) for r in range(rows.shape[0]) for c in range(rows.shape[1])
                  if not _empty(rows.iat[r, c]))
        cells = [f"{_cell_name(r, c)} {_shown(rows.iat[r, c])}"
                 for r, c in islice(filled, DESCRIBED_CELLS)]
        seen = ("its first sheet starts " + ", ".join(cells) if cells
                else "its first sheet is empty")
    return f"{kind} whose layout no reader recognises: {seen}"


def _names_xlsx_parts(head: bytes) -> bool:
    """Whether a ZIP's first local entry is ``[Content_Types].xml`` and ``xl/`` parts follow."""
    name_length = int.from_bytes(head[26:28], "little") if len(head) >= 30 else 0
    return head[30:30 + name_length] == b"[Content_Types].xml" and b"xl/" in head


def _cell_name(row: int, column: int) -> str:
    """Excel's name of a 0-based cell (``A1``, ``AB12``)."""
    letters, column = "", column + 1
    while column:
        column, rest = divmod(column - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"{letters}{row + 1}"


def _shown(cell: object) -> str:
    """A cell for a message: text quoted and cut at 40 characters, numbers as written."""
    if isinstance(cell, str):
        return repr(cell.strip()[:40])
    return f"{cell:g}" if isinstance(cell, float) else str(cell)


def _empty(cell: object) -> bool:
    return cell is None or (isinstance(cell, float) and cell != cell) or (
        isinstance(cell, str) and not cell.strip())


def sheet_names(path: Path) -> list[str]:
    """The workbook's sheet names; ``unreadable`` finding if it cannot be opened."""
    try:
        with pd.ExcelFile(path, engine="calamine") as book:
            return list(book.sheet_names)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the same finding
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                f"could not open the workbook: {type(exc).__name__}: {exc}",
                                file=str(path))) from None


def read_sheet(path: Path, sheet: str | int = 0, nrows: int | None = None) -> pd.DataFrame:
    """All cells of one sheet as objects, no header row, no type guessing beyond the cell's.

    Parameters
    ----------
    path : Path
    sheet : str or int
        Sheet name or index.
    nrows : int, optional
        Read only the first rows (for sniffing).

    Returns
    -------
    pandas.DataFrame
        Row and column positions as in the sheet (0-based); empty cells are NaN; numbers are
        floats, dates/times ``datetime``/``time`` objects, text ``str``.
    """
    try:
        return pd.read_excel(path, sheet_name=sheet, header=None, engine="calamine",
                             nrows=nrows, dtype=object)
    except Exception as exc:  # noqa: BLE001 - any parser failure is the same finding
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                f"could not read sheet {sheet!r}: {type(exc).__name__}: {exc}",
                                file=str(path))) from None


def sheet_cells(path: Path, sheet: str | int = 0) -> pd.DataFrame:
    """All cells of one sheet (as :func:`read_sheet` gives them), parsed once per version of
    the file (path, size, modification time) and shared by every Excel reader's ``sniff``
    and the ``read`` of the reader that claims the file.

    calamine parses a whole sheet even when only its first rows are asked for, so the
    detection's rows and the reader's table come from one parse (:func:`clear_sheet_cache`
    lets the sheets go once the file is read).

    Returns
    -------
    pandas.DataFrame
        A copy, which the caller may modify.

    Raises
    ------
    CPETError
        ``unreadable``, as :func:`read_sheet`.
    """
    parsed = _cached_sheet(path, sheet)
    if isinstance(parsed, CPETError):
        raise CPETError(parsed.finding)
    return parsed.copy()


def sniff_rows(path: Path, sheet: str | int = 0) -> pd.DataFrame | None:
    """The first :data:`SNIFF_ROWS` rows of a sheet, for content detection (None if unreadable).

    From the sheet :func:`sheet_cells` parses once; callers slice, never modify, the frame.
    """
    parsed = _cached_sheet(path, sheet)
    return None if isinstance(parsed, CPETError) else parsed.iloc[:SNIFF_ROWS]


def clear_sheet_cache() -> None:
    """Forget the sheets parsed for :func:`sheet_cells` and :func:`sniff_rows`."""
    _parse_sheet.cache_clear()


def _cached_sheet(path: Path, sheet: str | int) -> pd.DataFrame | CPETError:
    """The sheet (named, or by position: the same sheet is one entry) from the cache."""
    try:
        stat = os.stat(path)
    except OSError:
        return _sheet_or_error(Path(path), sheet)  # gone: read_sheet's own finding
    if isinstance(sheet, int):
        with suppress(CPETError):  # a damaged workbook: read_sheet's finding says so
            names = sheet_names(path)
            sheet = names[sheet] if 0 <= sheet < len(names) else sheet
    return _parse_sheet(str(path), stat.st_size, stat.st_mtime_ns, sheet)


@lru_cache(maxsize=8)
def _parse_sheet(path: str, size: int, mtime_ns: int, sheet: str | int
                 ) -> pd.DataFrame | CPETError:
    return _sheet_or_error(Path(path), sheet)


def _sheet_or_error(path: Path, sheet: str | int) -> pd.DataFrame | CPETError:
    """The sheet, or the error that refused it (kept, so that it is not parsed again)."""
    try:
        return read_sheet(path, sheet)
    except CPETError as exc:
        return exc
