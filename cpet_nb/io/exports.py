"""Writing results tables (and other files) safely."""

from __future__ import annotations

import importlib.util
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .._checks import check_choice

#: First characters that make a spreadsheet treat a cell as a formula (OWASP CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(table: pd.DataFrame) -> pd.DataFrame:
    """A copy in which text cells that a spreadsheet would run as formulas start with ``'``.

    Only text cells change; numbers (including negative ones) are left alone.
    """
    out = table.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    return out


#: File name endings :func:`write_table` understands.
TABLE_FORMATS = (".csv", ".json", ".xlsx", ".parquet")


@dataclass(frozen=True)
class CSVDialect:
    """How a CSV file is written for a spreadsheet: separator, decimal mark, encoding.

    Attributes
    ----------
    separator : str
        Between values.
    decimal : str
        The decimal mark of numbers.
    encoding : str
        ``"utf-8"``, or ``"utf-8-sig"`` (a byte order mark first, by which Excel recognises
        UTF-8 instead of guessing the locale's code page).
    """

    separator: str
    decimal: str
    encoding: str


#: The CSV dialects :func:`write_table` writes, by name (``Settings.csv_dialect``,
#: ``--csv-dialect``): ``comma`` (``,`` and a decimal point, UTF-8) reads everywhere;
#: ``semicolon`` (``;`` and a decimal comma, UTF-8 with a byte order mark) is what Excel
#: expects where the locale writes 1,5 (most of continental Europe and South America).
CSV_DIALECTS: dict[str, CSVDialect] = {
    "comma": CSVDialect(",", ".", "utf-8"),
    "semicolon": CSVDialect(";", ",", "utf-8-sig"),
}


def check_table_path(path: str | os.PathLike) -> str:
    """The table format :func:`write_table` would use for ``path`` (its ending, e.g.
    ``".xlsx"``), checked before any work is done.

    Raises
    ------
    ValueError
        For an unknown ending, or ``.parquet`` without pyarrow installed.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in TABLE_FORMATS:
        raise ValueError(f"cannot write {path.name}: the name must end in "
                         f"{', '.join(TABLE_FORMATS)}")
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError(f"cannot write {path.name}: Parquet needs pyarrow "
                         "(pip install 'cpet-nb[parquet]')")
    return suffix


def write_table(table: pd.DataFrame, path: str | os.PathLike,
                csv_dialect: str = "comma") -> Path:
    r"""Write a results table as CSV, JSON records, Excel or Parquet (by the file's ending).

    Text cells are protected against formula injection in CSV (in every dialect) and Excel
    (:func:`neutralise_formulas`); Parquet and JSON keep values as they are. The file is
    written to a temporary name and renamed, so a reader never sees half a table.

    Parameters
    ----------
    table : pandas.DataFrame
    path : str or path-like
        The file; its ending chooses the format (:data:`TABLE_FORMATS`).
    csv_dialect : str
        For ``.csv``: a name in :data:`CSV_DIALECTS`.

    Returns
    -------
    pathlib.Path
        The path written.

    Raises
    ------
    ValueError
        See :func:`check_table_path`; for an unknown ``csv_dialect``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> table = pd.DataFrame({"file": ["=cmd()"], "vo2peak_ml_min": [3456.5]})
    >>> path = write_table(table, pathlib.Path(tempfile.mkdtemp()) / "r.csv", "semicolon")
    >>> path.read_bytes()[:3] == "\N{BYTE ORDER MARK}".encode()
    True
    >>> print(path.read_text(encoding="utf-8-sig"), end="")
    file;vo2peak_ml_min
    '=cmd();3456,5
    """
    suffix = check_table_path(path)
    check_choice(csv_dialect, CSV_DIALECTS, "csv_dialect")
    path = Path(path)
    with atomic_path(path) as tmp:
        if suffix == ".csv":
            tmp.write_bytes(csv_bytes(table, csv_dialect))
        elif suffix == ".xlsx":
            neutralise_formulas(table).to_excel(tmp, index=False, engine="openpyxl")
        elif suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_json(tmp, orient="records", indent=1)
    return path


def csv_bytes(table: pd.DataFrame, csv_dialect: str = "comma") -> bytes:
    """``table`` as the bytes of a CSV file in ``csv_dialect`` (:data:`CSV_DIALECTS`), text
    cells that look like formulas neutralised (:func:`neutralise_formulas`)."""
    check_choice(csv_dialect, CSV_DIALECTS, "csv_dialect")
    dialect = CSV_DIALECTS[csv_dialect]
    text = neutralise_formulas(table).to_csv(index=False, sep=dialect.separator,
                                             decimal=dialect.decimal)
    return text.encode(dialect.encoding)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside ``path`` to write to; renamed to ``path`` when the block ends
    without an exception, removed when it raises. A reader never sees half a file, and two
    writers of the same file never share a temporary.

    The folder is created when missing. The temporary is a hidden file in the same folder
    (``.<name>.<random>.tmp``), so the rename is atomic on one file system.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out" / "note.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['note.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
