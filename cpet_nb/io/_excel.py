"""Reading Excel workbooks as raw cell values (no formulas evaluated, no macros run).

Uses pandas' ``calamine`` engine (python-calamine, a Rust reader): it reads the cached
values the cart's software wrote and never executes anything in the workbook.
"""

from __future__ import annotations

import os
import zipfile
from functools import lru_cache
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


def sniff_rows(path: Path, sheet: str | int = 0) -> pd.DataFrame | None:
    """The first :data:`SNIFF_ROWS` rows of a sheet, for content detection (None if unreadable).

    Every Excel reader's ``sniff`` looks at the same workbook: the rows are read once per
    version of the file (path, size, modification time) and shared. Callers slice, never
    modify, the frame.
    """
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return _sniff_rows(str(path), stat.st_size, stat.st_mtime_ns, sheet)


@lru_cache(maxsize=32)
def _sniff_rows(path: str, size: int, mtime_ns: int, sheet: str | int) -> pd.DataFrame | None:
    try:
        return read_sheet(Path(path), sheet, nrows=SNIFF_ROWS)
    except CPETError:
        return None
