"""Reader for any CSV/TXT or Excel export, driven by a column mapping the user supplies.

A lab whose cart has no built-in reader says which column holds which channel, and in which
unit, in a :class:`ColumnMapping`; :func:`read_mapped` reads a file with it. A mapping can be
saved and reused under a name as a lab profile (:mod:`cpet_nb.io.profiles`). This reader is not
in the registry's content sniffing: it cannot recognise a file by itself, so it is used only
when the caller passes a mapping or a profile.

Example (semicolon-separated, decimal comma, a units row under the header)::

    Zeit;V'O2;V'CO2;V'E;PETO2;PETCO2;HF;Gewicht
    h:mm:ss;L/min;L/min;L/min;kPa;kPa;1/min;kg
    0:00:05;0,45;0,38;12,1;13,9;4,5;82;72,5

    ColumnMapping(
        channels={"t": ("Zeit", "clock"), "VO2": ("V'O2", "L/min"),
                  "VCO2": ("V'CO2", "L/min"), "VE": "V'E", "PetO2": ("PETO2", "kPa"),
                  "PetCO2": ("PETCO2", "kPa"), "HR": "HF"},
        delimiter=";", decimal=",", skip_rows=1,
        metadata={"sex": "female"}, metadata_columns={"weight_kg": "Gewicht"})

Channels and units (a column name alone means the canonical unit; units are compared without
spaces and brackets, case-insensitively, as :func:`~cpet_nb.io.parsing.to_canonical` does):

==========  ==============================================  =========
channel     accepted units                                  canonical
==========  ==============================================  =========
``t``       s, ms, min, day (Excel day fractions), clock    s
``VO2``     mL/min, L/min                                   mL/min
``VCO2``    mL/min, L/min                                   mL/min
``VE``      L/min, mL/min (BTPS; a unit marked STPD is      L/min
            refused)
``PetO2``   mmHg, Torr, kPa                                 mmHg
``PetCO2``  mmHg, Torr, kPa                                 mmHg
``HR``      a per-minute unit (1/min, bpm, ...)             1/min
``RF``      a per-minute unit (1/min, br/min, ...)          1/min
``VT``      L, mL                                           L
``load``    W                                               W
``speed``   km/h, mph, m/s                                  km/h
``grade``   %                                               %
==========  ==============================================  =========

``t`` and ``VO2`` are required. Time unit ``clock`` reads ``h:mm:ss`` or ``m:ss`` text (an
optional fraction after ``.`` or ``,``) and spreadsheet time cells; with s, ms, min or day,
plain numbers are in that unit and clock text is still read as a clock
(:func:`~cpet_nb.io.parsing.parse_time_s`).

File layout. The file is an Excel workbook when its bytes say so (``.xlsx`` or legacy
``.xls``; :func:`~cpet_nb.io._excel.is_workbook`), whatever its name; otherwise it is
delimited text. ``header_row`` is the 0-based line (or sheet row) holding the column names,
``skip_rows`` the number of rows right after it that are not data (units rows). Text is
decoded with ``encoding`` when given, else as UTF-16 with a byte-order mark, UTF-8 or Latin-1.
The delimiter, when not given, is the one of tab, ``;``, ``,`` and ``|`` that splits the
header line into the most fields. ``sheet`` (a name or 0-based index) picks the worksheet.

Cells. Blank cells and the markers ``-``, ``--``, ``---`` are missing (never 0). A number is
an optional sign, digits with at most one decimal separator and an optional exponent:
``decimal="."`` or ``","`` accepts only that separator, ``None`` either, decided per cell.
Anything else (text, a thousands separator, a unit in the cell) is left missing and reported
as ``non-numeric`` with the source column and the first such data row (rows are numbered
from 1 after the header and skipped rows, blank rows not counted). A data row with another
number of fields than the header is skipped (``malformed-row``). A mapped column the file
does not have stops the file (``missing-channel``, listing the file's columns).

Metadata. ``metadata`` gives fixed values for every file read with the mapping;
``metadata_columns`` names a column whose first non-blank value is read (weight in kg or lb,
height in cm, m or in, age in years, sex as female/male or a one-letter code, the test date
as ISO ``yyyy-mm-dd`` or a spreadsheet date, the device as text). Names, IDs and birth dates
have no field here and are never read. ``metadata.format`` is ``"generic"``;
``metadata.extra["profile"]`` names the profile the mapping came from, when it did.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord
from . import _delimited
from ._excel import is_workbook, read_sheet, sheet_names
from ._tabular import build_record, check_line_sizes, decode_text, source_metadata
from .parsing import parse_number, parse_number_with_unit, parse_time_s, to_canonical

#: ``metadata.format`` of records read with a mapping.
FORMAT_NAME = "generic"
#: Channels a mapping may name, in canonical order.
CHANNELS: tuple[str, ...] = ("t", "VO2", "VCO2", "VE", "PetO2", "PetCO2", "HR", "RF", "VT",
                             "load", "speed", "grade")
#: Channels every mapping must name.
REQUIRED_CHANNELS: tuple[str, ...] = ("t", "VO2")
#: Time unit for ``h:mm:ss`` / ``m:ss`` text and spreadsheet time cells.
CLOCK = "clock"
#: Metadata fields a mapping may fill, as fixed values or from a column.
METADATA_FIELDS: tuple[str, ...] = ("weight_kg", "height_cm", "age_years", "sex", "test_date",
                                    "device")
#: Delimiters tried, in this order, when the mapping gives none.
DELIMITERS: tuple[str, ...] = ("\t", ";", ",", "|")
#: Accepted decimal separators (``None``: either, per cell).
DECIMALS: tuple[str | None, ...] = (None, ".", ",")

_NUMERIC_METADATA = {"weight_kg": _delimited.WEIGHT_UNITS, "height_cm": _delimited.HEIGHT_UNITS,
                     "age_years": dict.fromkeys(_delimited.AGE_UNITS, 1.0)}
_SEXES = {word: sex for words in _delimited.SEXES.values() for word, sex in words.items()}


class Channel(NamedTuple):
    """Where one canonical channel comes from: the file's column name and its unit."""

    column: str
    unit: str


@dataclass(frozen=True)
class ColumnMapping:
    """Which column of a lab's export holds which channel, in which unit, and the layout.

    Validated on construction: anything wrong raises ``ValueError`` naming what is wrong and
    what is accepted. See the module docstring for units, layout and cell rules.

    Parameters
    ----------
    channels : mapping
        Canonical channel (:data:`CHANNELS`) -> the column name in the file, alone (the
        canonical unit) or with its unit as ``(column, unit)``. ``t`` and ``VO2`` are
        required. Stored as ``dict[str, Channel]``.
    delimiter : str, optional
        Field separator of text files; by default guessed from the header line.
    decimal : {None, ".", ","}
        Decimal separator of numbers in text cells; ``None`` accepts either.
    encoding : str, optional
        Text encoding (e.g. ``"cp1252"``); by default UTF-16 with BOM, UTF-8 or Latin-1.
    header_row : int
        0-based line (text) or row (sheet) holding the column names.
    skip_rows : int
        Rows right after the header that are not data (e.g. 1 for a units row).
    sheet : str or int
        Worksheet name or 0-based index, for Excel files.
    metadata : mapping
        Fixed values for :data:`METADATA_FIELDS`: ``weight_kg``, ``height_cm``,
        ``age_years`` positive numbers, ``sex`` ``"female"``/``"male"``, ``test_date`` an
        ISO date, ``device`` text.
    metadata_columns : mapping
        Metadata field -> the column whose first non-blank value gives it.

    Examples
    --------
    >>> mapping = ColumnMapping({"t": ("Time", "clock"), "VO2": ("VO2", "L/min"), "HR": "HR"})
    >>> mapping.channels["VO2"]
    Channel(column='VO2', unit='L/min')
    >>> mapping.channels["HR"].unit
    '1/min'
    """

    channels: Mapping[str, str | tuple[str, str]]
    delimiter: str | None = None
    decimal: str | None = None
    encoding: str | None = None
    header_row: int = 0
    skip_rows: int = 0
    sheet: str | int = 0
    metadata: Mapping[str, float | str] = field(default_factory=dict)
    metadata_columns: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalised values are set once, here
        set_(self, "channels", _checked_channels(self.channels))
        _check_layout(self)
        set_(self, "metadata", _checked_metadata(self.metadata))
        set_(self, "metadata_columns", _checked_metadata_columns(self.metadata_columns,
                                                                 self.metadata))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary; :meth:`from_dict` reads it back."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["channels"] = {name: {"column": source.column, "unit": source.unit}
                           for name, source in self.channels.items()}
        out["metadata"] = dict(self.metadata)
        out["metadata_columns"] = dict(self.metadata_columns)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnMapping:
        """A mapping from :meth:`to_dict`'s form (channels as ``{"column", "unit"}`` objects).

        Raises
        ------
        ValueError
            For unknown keys, channels that are not ``{"column": ..., "unit": ...}``, or
            anything the constructor refuses.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a column mapping is an object, not {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in known]
        if unknown:
            raise ValueError(f"unknown mapping key(s) {', '.join(map(repr, unknown))}; "
                             f"accepted keys: {', '.join(known)}")
        if "channels" not in data:
            raise ValueError("the mapping has no 'channels'")
        channels = data["channels"]
        if not isinstance(channels, Mapping):
            raise ValueError("'channels' must map channel names to {'column', 'unit'} objects")
        pairs = {}
        for name, source in channels.items():
            if not isinstance(source, Mapping) or set(source) != {"column", "unit"}:
                raise ValueError(f"channel {name!r}: expected {{'column': ..., 'unit': ...}}, "
                                 f"found {source!r}")
            pairs[name] = (source["column"], source["unit"])
        return cls(**{**data, "channels": pairs})


def read_mapped(path: str | os.PathLike, mapping: ColumnMapping, *,
                profile: str | None = None) -> CPETRecord:
    """Read one CSV/TXT or Excel export with a column mapping.

    Parameters
    ----------
    path : str or path-like
        The file. Size and existence are not checked here (``cpet_nb.read`` does that).
    mapping : ColumnMapping
    profile : str, optional
        The name of the profile ``mapping`` was loaded from, kept in
        ``metadata.extra["profile"]``.

    Returns
    -------
    CPETRecord
        Canonical columns and units, ``metadata.format == "generic"``; cell problems in
        ``record.findings``.

    Raises
    ------
    CPETError
        ``missing-channel`` when a mapped column is not in the file (the message lists the
        file's columns); ``unreadable`` when the file cannot be parsed with the mapping's
        layout; ``empty`` without data rows.
    """
    path = Path(path)
    file = str(path)
    data = path.read_bytes()
    metadata = source_metadata(path, data, FORMAT_NAME)
    if profile is not None:
        metadata.extra["profile"] = profile
    findings: list[Finding] = []
    if is_workbook(data, path):
        header, cells, rows = _sheet_table(path, mapping)
    else:
        header, cells, rows = _text_table(data, mapping, file, findings)
    positions = _positions(header, mapping, file, findings)
    frame = pd.DataFrame(index=cells.index)
    source_names = {}
    for name, (column, unit) in mapping.channels.items():
        column_cells = cells[positions[column]]
        if name == "t":
            values = _times(column_cells, unit, mapping.decimal)
            what = _time_words(unit)
        else:
            values = _numbers(column_cells, mapping.decimal)
            what = _number_words(mapping.decimal)
        _delimited.report_text_cells(values, column_cells, column, rows, file, findings, what)
        frame[name] = values if name == "t" else _delimited.convert(values, name, unit)
        source_names[name] = column
    for key, value in mapping.metadata.items():
        setattr(metadata, key, value)
    for key, column in mapping.metadata_columns.items():
        if column in positions:
            setattr(metadata, key, _metadata_value(cells[positions[column]], key, column,
                                                   file, findings))
    return build_record(frame, metadata, source_names, findings, file=file)


# --- validation of a mapping ----------------------------------------------------------------

def _checked_channels(channels: Mapping[str, str | tuple[str, str]]) -> dict[str, Channel]:
    """``channels`` as ``{name: Channel}`` in canonical order; ValueError if not valid."""
    if not isinstance(channels, Mapping):
        raise ValueError(f"channels must map channel names to columns, not "
                         f"{type(channels).__name__}")
    unknown = [name for name in channels if name not in CHANNELS]
    if unknown:
        raise ValueError(f"unknown channel(s) {', '.join(map(repr, unknown))}; accepted "
                         f"channels: {', '.join(CHANNELS)}")
    missing = [name for name in REQUIRED_CHANNELS if name not in channels]
    if missing:
        raise ValueError(f"the mapping must name the column of {' and '.join(REQUIRED_CHANNELS)}"
                         f"; missing: {', '.join(missing)}")
    checked = {}
    for name in CHANNELS:
        if name not in channels:
            continue
        source = channels[name]
        if isinstance(source, str):
            source = (source, CANONICAL_UNITS[name])
        if not (isinstance(source, (tuple, list)) and len(source) == 2
                and all(isinstance(part, str) for part in source)):
            raise ValueError(f"channel {name!r}: expected a column name or (column, unit), "
                             f"found {source!r}")
        column, unit = source[0].strip(), source[1].strip()
        if not column:
            raise ValueError(f"channel {name!r}: the column name is empty")
        _check_unit(name, unit)
        checked[name] = Channel(column, unit)
    columns = [source.column for source in checked.values()]
    repeated = sorted({column for column in columns if columns.count(column) > 1})
    if repeated:
        raise ValueError(f"column(s) {', '.join(map(repr, repeated))} mapped to more than one "
                         "channel")
    return checked


def _check_unit(name: str, unit: str) -> None:
    """ValueError naming the unit and the accepted ones when ``unit`` is not one for ``name``."""
    if name == "t":
        if unit.lower() == CLOCK:
            return
        try:
            to_canonical([], "t", unit)
        except ValueError as exc:
            raise ValueError(f"{exc}, or {CLOCK!r} for h:mm:ss text") from None
        return
    _delimited.convert(np.empty(0), name, unit)  # to_canonical, or per-minute, W, %


def _check_layout(mapping: ColumnMapping) -> None:
    """ValueError for a delimiter, decimal, encoding, row or sheet that cannot be used."""
    if mapping.decimal not in DECIMALS:
        raise ValueError(f"decimal {mapping.decimal!r} is not accepted; accepted: "
                         "'.', ',' or None (either, per cell)")
    if mapping.delimiter is not None:
        if not isinstance(mapping.delimiter, str) or len(mapping.delimiter) != 1 \
                or mapping.delimiter in "\r\n\"" or mapping.delimiter.isalnum():
            raise ValueError(f"delimiter {mapping.delimiter!r} is not one character other "
                             "than a letter, digit, quote or line break")
        if mapping.delimiter == mapping.decimal:
            raise ValueError(f"delimiter and decimal separator are both {mapping.decimal!r}")
    if mapping.encoding is not None:
        try:
            codecs.lookup(mapping.encoding)
        except (LookupError, TypeError):
            raise ValueError(f"unknown encoding {mapping.encoding!r}") from None
    for name in ("header_row", "skip_rows"):
        value = getattr(mapping, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}")
    sheet = mapping.sheet
    if isinstance(sheet, bool) or not isinstance(sheet, (str, int)) \
            or (isinstance(sheet, int) and sheet < 0) or (isinstance(sheet, str) and not sheet):
        raise ValueError(f"sheet must be a sheet name or a 0-based index, not {sheet!r}")


def _checked_metadata(metadata: Mapping[str, float | str]) -> dict[str, float | str]:
    """Fixed metadata values, checked; ValueError for unknown fields or unusable values."""
    _check_metadata_fields(metadata, "metadata")
    checked: dict[str, float | str] = {}
    for key, value in metadata.items():
        if key in _NUMERIC_METADATA:
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool)
                    and np.isfinite(value) and value > 0):
                raise ValueError(f"metadata {key}: expected a positive number, found {value!r}")
            checked[key] = float(value)
        elif key == "sex":
            if value not in ("female", "male"):
                raise ValueError(f"metadata sex: expected 'female' or 'male', found {value!r}")
            checked[key] = value
        elif key == "test_date":
            try:
                checked[key] = dt.date.fromisoformat(value).isoformat()
            except (TypeError, ValueError):
                raise ValueError(f"metadata test_date: expected an ISO date (yyyy-mm-dd), "
                                 f"found {value!r}") from None
        else:
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"metadata {key}: expected text, found {value!r}")
            checked[key] = value.strip()
    return checked


def _checked_metadata_columns(columns: Mapping[str, str], fixed: Mapping[str, object]
                              ) -> dict[str, str]:
    """Metadata columns, checked against the fields and the fixed values."""
    _check_metadata_fields(columns, "metadata_columns")
    both = [key for key in columns if key in fixed]
    if both:
        raise ValueError(f"{', '.join(both)}: given both as a fixed value and as a column")
    checked = {}
    for key, column in columns.items():
        if not isinstance(column, str) or not column.strip():
            raise ValueError(f"metadata_columns {key}: expected a column name, found {column!r}")
        checked[key] = column.strip()
    return checked


def _check_metadata_fields(items: Mapping[str, object], what: str) -> None:
    if not isinstance(items, Mapping):
        raise ValueError(f"{what} must map metadata fields to values, not {type(items).__name__}")
    unknown = [key for key in items if key not in METADATA_FIELDS]
    if unknown:
        raise ValueError(f"{what}: unknown field(s) {', '.join(map(repr, unknown))}; accepted "
                         f"fields: {', '.join(METADATA_FIELDS)}")


# --- the file's table ------------------------------------------------------------------------

def _text_table(data: bytes, mapping: ColumnMapping, file: str, findings: list[Finding]
                ) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """Header names, data cells (text, one column per header field) and data row numbers."""
    lines = _decode(data, mapping.encoding, file).splitlines()
    if len(lines) <= mapping.header_row:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the mapping puts the header on line {mapping.header_row + 1}, but the file has "
            f"{len(lines)} line(s)", file=file))
    delimiter = mapping.delimiter or _guess_delimiter(lines[mapping.header_row])
    try:
        records = list(csv.reader(lines[mapping.header_row:], delimiter=delimiter))
    except csv.Error as exc:  # e.g. a quoted cell over many lines, longer than csv allows
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                f"could not split the lines into cells: {exc}",
                                file=file)) from None
    header = [name.strip() for name in records[0]]
    good: list[list[str]] = []
    row_numbers: list[int] = []
    bad: list[tuple[int, int]] = []
    for record in records[1 + mapping.skip_rows:]:
        if not any(value.strip() for value in record):
            continue
        while len(record) > len(header) and not record[-1].strip():
            record.pop()
        if len(record) == len(header):
            good.append(record)
            row_numbers.append(len(good) + len(bad))
        else:
            bad.append((len(good) + len(bad) + 1, len(record)))
    if bad:
        where = f"{len(header)} {delimiter!r}-separated fields of the header"
        if not good:
            raise CPETError(Finding(
                "unreadable", Severity.ERROR,
                f"no data row has the {where} (the first has {bad[0][1]}); is the delimiter "
                "or header row of the mapping right?", file=file, row=bad[0][0]))
        findings.append(Finding(
            "malformed-row", Severity.WARNING,
            f"{len(bad)} row(s) do not have the {where} and were skipped; the first has "
            f"{bad[0][1]}", file=file, row=bad[0][0]))
    cells = pd.DataFrame(good, columns=range(len(header)), dtype=object)
    return header, cells, np.asarray(row_numbers, dtype=int)


def _decode(data: bytes, encoding: str | None, file: str) -> str:
    """The file's text in ``encoding``; by default UTF-16 with a BOM, UTF-8 or Latin-1. A line
    too long to parse is refused (:func:`~cpet_nb.io._tabular.check_line_sizes`)."""
    if encoding is None:
        return decode_text(data, file)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the file is not {encoding} text as the mapping says: {exc}", file=file)) from None
    check_line_sizes(text, file)
    return text


def _guess_delimiter(header_line: str) -> str:
    """The one of :data:`DELIMITERS` that splits ``header_line`` into the most fields."""
    counts = [len(next(csv.reader([header_line], delimiter=d))) for d in DELIMITERS]
    return DELIMITERS[counts.index(max(counts))]


def _sheet_table(path: Path, mapping: ColumnMapping
                 ) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    """Header names, data cells (as the workbook holds them) and data row numbers."""
    file = str(path)
    names = sheet_names(path)
    sheet = mapping.sheet
    unknown = sheet not in names if isinstance(sheet, str) else sheet >= len(names)
    if unknown:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the mapping names sheet {sheet!r}; the workbook's sheets are "
            f"{', '.join(map(repr, names))}", file=file))
    raw = read_sheet(path, sheet)
    if len(raw) <= mapping.header_row:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the mapping puts the header in row {mapping.header_row + 1}, but sheet "
            f"{sheet!r} has {len(raw)} row(s)", file=file))
    header = ["" if pd.isna(cell) else str(cell).strip() for cell in raw.iloc[mapping.header_row]]
    body = raw.iloc[mapping.header_row + 1 + mapping.skip_rows:]
    body = body[~body.apply(_delimited.blank).all(axis=1)].reset_index(drop=True)
    body.columns = range(len(header))
    return header, body, np.arange(1, len(body) + 1)


def _positions(header: list[str], mapping: ColumnMapping, file: str,
               findings: list[Finding]) -> dict[str, int]:
    """Column name -> its position in ``header``, for every mapped column the file has.

    Raises
    ------
    CPETError
        ``missing-channel`` naming every channel column the file lacks, and its columns.
    """
    wanted = {source.column: name for name, source in mapping.channels.items()}
    wanted.update({column: key for key, column in mapping.metadata_columns.items()})
    positions = {}
    for column in wanted:
        at = [i for i, name in enumerate(header) if name == column]
        if at:
            positions[column] = at[0]
        if len(at) > 1:
            findings.append(Finding(
                "unknown-column", Severity.WARNING,
                f"the header has {len(at)} columns named {column!r}; the first (field "
                f"{at[0] + 1}) was used, the others ignored", file=file, column=column))
    missing = [(source.column, name) for name, source in mapping.channels.items()
               if source.column not in positions]
    if missing:
        present = ", ".join(repr(name) for name in header if name) or "none"
        raise CPETError(Finding(
            "missing-channel", Severity.ERROR,
            "mapped column(s) not in the file: "
            + ", ".join(f"{column!r} ({name})" for column, name in missing)
            + f"; the file's columns are {present}", file=file, column=missing[0][0]))
    for key, column in mapping.metadata_columns.items():
        if column not in positions:
            findings.append(Finding(
                "missing-channel", Severity.WARNING,
                f"the metadata column {column!r} is not in the file; {key} left missing",
                file=file, column=column))
    return positions


# --- cells -----------------------------------------------------------------------------------

def _number_pattern(decimal: str | None) -> str:
    """Regular expression of a plain number with ``decimal`` (``None``: ``.`` or ``,``)."""
    separator = "[.,]" if decimal is None else f"[{decimal}]"
    mantissa = f"(?:[0-9]+(?:{separator}[0-9]*)?|{separator}[0-9]+)"
    return rf"\s*[+-]?{mantissa}(?:[eE][+-]?[0-9]+)?\s*"


def _is_text(cells: pd.Series) -> np.ndarray:
    return np.fromiter((isinstance(cell, str) for cell in cells), dtype=bool, count=len(cells))


def _numbers(cells: pd.Series, decimal: str | None) -> np.ndarray:
    """Numbers from cells; text must be a plain number with ``decimal``, else NaN."""
    values = parse_number(cells).to_numpy(dtype=float, copy=True)
    text = np.flatnonzero(_is_text(cells))
    plain = cells.iloc[text].str.fullmatch(_number_pattern(decimal)).to_numpy(dtype=bool)
    values[text[~plain]] = np.nan
    return values


def _times(cells: pd.Series, unit: str, decimal: str | None) -> np.ndarray:
    """Seconds from a time column in ``unit`` (s, ms, min, day or :data:`CLOCK`)."""
    text = _is_text(cells)
    clock_text = np.zeros(len(cells), dtype=bool)
    clock_text[text] = cells[text].str.contains(":", regex=False).to_numpy(dtype=bool)
    if unit.lower() == CLOCK:
        values = parse_time_s(cells).to_numpy(dtype=float, copy=True)
        number = np.fromiter((isinstance(cell, numbers.Real) for cell in cells), dtype=bool,
                             count=len(cells))
        values[(text & ~clock_text) | number] = np.nan
        return values
    values = parse_time_s(cells, unit=unit).to_numpy(dtype=float, copy=True)
    plain_text = np.flatnonzero(text & ~clock_text)
    plain = cells.iloc[plain_text].str.fullmatch(_number_pattern(decimal)).to_numpy(dtype=bool)
    values[plain_text[~plain]] = np.nan
    return values


def _number_words(decimal: str | None) -> str:
    return {None: "numbers", ".": "numbers with a decimal point",
            ",": "numbers with a decimal comma"}[decimal]


def _time_words(unit: str) -> str:
    if unit.lower() == CLOCK:
        return "clock times (h:mm:ss or m:ss)"
    return f"times (numbers in {unit} or clock times)"


def _metadata_value(cells: pd.Series, key: str, column: str, file: str,
                    findings: list[Finding]) -> float | str | None:
    """A metadata field from the first non-blank cell of its column, else None (reported)."""
    present = cells[~_delimited.blank(cells)]
    if present.empty:
        findings.append(Finding(
            "missing-channel", Severity.WARNING,
            f"the metadata column {column!r} has no value; {key} left missing",
            file=file, column=column))
        return None
    cell = present.iloc[0]
    value = _parse_metadata(cell, key)
    if value is None:
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{key}: {cell!r} is not a value cpet_nb can read unambiguously; left missing",
            file=file, column=column))
    return value


def _parse_metadata(cell: object, key: str) -> float | str | None:
    """One metadata field from one cell, or None when it cannot be read."""
    if key in _NUMERIC_METADATA:
        if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
            number, unit = float(cell), ""
        elif isinstance(cell, str):
            number, unit = parse_number_with_unit(cell)
        else:
            return None
        factor = _NUMERIC_METADATA[key].get((unit or "").lower())
        if factor is None or not np.isfinite(number) or number <= 0:
            return None
        return round(number * factor, 6)
    if key == "test_date":
        if isinstance(cell, dt.date):  # datetime and pandas.Timestamp too
            return cell.isoformat()[:10]
        date = str(cell).strip().split("T")[0].split(" ")[0]  # an ISO date, maybe with a time
        try:
            return dt.date.fromisoformat(date).isoformat()
        except ValueError:
            return None
    text = str(cell).strip()
    if key == "sex":
        return _SEXES.get(text.lower())
    return text
