"""Readers for COSMED exports: Omnia (``Data``/``Daten`` sheet), Quark/PFT Suite, the parameter
grid alone, and the CSV of either layout.

The Omnia and Quark layouts put everything on the first sheet, side by side (sheet rows
1-based, columns as in Excel)::

    A            B       D             E        G                     H      J   K   L ...
    ID1          999999  Test date     2025-..  Barometric Pr. (mmHg) 754    t   Rf  VT ...
    Last Name    ...     Test Time     ...      Ambient Temp. (°C)    22     s   1/min L(btps)
    First Name   ...     Test Duration ...      ...                   ...
    Gender       Male    ...                                                 00:00:30  25.3 ...
    Age          64      ...                                                 00:00:40  25.7 ...
    Height (cm)  182
    Weight (kg)  85.5    ...

- label/value pairs in columns A/B (subject), D/E (test) and G/H (environment);
- column J onward: parameter names in row 1, their units in row 2, row 3 empty, data from
  row 4 until the first row whose ``t`` cell (column J) is empty. Anything below that row in
  columns J onward (markers, summaries) is never read as data and is reported.

The two layouts differ in detail, and each has its reader so the record says which it was:

==================  =========================================  ==================================
                    Omnia (``cosmed-omnia``)                   Quark/PFT Suite (``cosmed-quark``)
==================  =========================================  ==================================
detected by         A1 starts with ``ID``, no colon (``ID1``); A1 starts with ``ID`` and ends with
                    J1 = ``t``; row 1 has ``VO2``              a colon (``ID code:``); J1 = ``t``;
                                                               row 1 has ``VO2``
sheets              ``Data``/``Results`` (English),            one sheet (``Sheet1``)
                    ``Daten``/``Ergebnisse`` (German); only
                    the first is read
labels              no colon, English or German                end with a colon (``Weight (Kg):``)
``t``               unit cell ``s`` but stored as Excel time   ``hh:mm:ss`` text
                    values (10 s averages in the samples)      (breath by breath)
end-tidal gases     only ``PeO2``/``PeCO2`` (mixed-expired),   ``PetO2``/``PetCO2`` (mmHg)
                    never used as PetO2/PetCO2
phase               ``Phase`` text: REST/WARMUP/EXERCISE/...   ``Phase`` numeric code (0 in the
                                                               sample), meaning undocumented:
                                                               not used
==================  =========================================  ==================================

The parameter grid alone (``cosmed-grid``). An export of the data without the subject and
test pairs (as K5 and Omnia write when only the data are exported) has the same grid from
column A: parameter names in row 1 (``t`` in A1), their units in row 2 and data from the
first filled ``t`` cell below it (row 3 or 4) to the first empty one; a ``Phase`` column
as above. It is detected by A1 = ``t``, ``VO2`` and ``Rf`` or ``Af`` (COSMED's name for the
breathing frequency) in row 1 and a time unit (``s``, ``ms``, ``min``, ``hh:mm:ss``) in A2,
and read with the same columns and units. It has no metadata: weight, height, age, sex and
date stay missing (a participants table, :mod:`cpet_nb.io.participants`, can give them).

Columns used (names matched case-insensitively; the first column of that name whose unit is
accepted is used, so a per-kg column of the same name, unit ``mL/min/Kg``, is never taken as
absolute VO2):

=============  ===================  ===================================  ======================
COSMED name    canonical            units accepted (unit cell, row 2)    conversion
=============  ===================  ===================================  ======================
``t``          ``t`` s              ``s`` (numbers in s); ``hh:mm:ss``,  :func:`parse_time_s`:
                                    ``h:mm:ss`` (numbers are Excel day   Excel time values and
                                    fractions)                           clock text in any unit
``VO2``        ``VO2`` mL/min       mL/min, L/min                        :func:`to_canonical`
``VCO2``       ``VCO2`` mL/min      mL/min, L/min                        :func:`to_canonical`
``VE``         ``VE`` L/min         L/min, mL/min                        :func:`to_canonical`
``VT``         ``VT`` L             L, mL, ``L(btps)``                   :func:`to_canonical`
``PetO2``      ``PetO2`` mmHg       mmHg, Torr, kPa                      :func:`to_canonical`
``PetCO2``     ``PetCO2`` mmHg      mmHg, Torr, kPa                      :func:`to_canonical`
``HR``/``HF``  ``HR`` 1/min         bpm, 1/min, b/min                    none; 0 -> missing
``Rf``/``Af``  ``RF`` 1/min         1/min, b/min, bpm                    none
``Power``,     ``load`` W           Watt, W                              none; left out when
``Load1``                                                                every value is 0
``Speed``      ``speed`` km/h       ``Kmh`` (km/h), ``Kmh*10`` (km/h x   ``Kmh`` as km/h, then
                                    10), km/h, mph, m/s                  :func:`to_canonical`
``Grade``      ``grade`` %          %                                    none; left out when
                                                                         every value is 0
``Phase``      ``phase``            text                                 see below
=============  ===================  ===================================  ======================

A column found by name whose unit is not accepted is left out with a ``missing-channel``
finding that names the unit: units are read from the file, never guessed from magnitudes.
``PeO2``/``PeCO2`` are mixed-expired partial pressures: when a file has them but no
``PetO2``/``PetCO2``, those channels stay missing and a ``missing-channel`` finding says why.
``FetO2``/``FetCO2`` (Quark, end-tidal fractions) are not needed because the same file has
the pressures. Everything else (ratios, per-kg values, metabolic and ECG columns, ``Marker``,
``Load2``/``Load3``, ``t Rel``, ``Phase time``) is not used.

Phases (``Phase`` text, compared upper-case without spaces, ``-`` or ``_``): ``REST`` ->
REST, ``WARMUP`` -> WARMUP, ``EXERCISE`` -> EXERCISE, ``RECOVERY`` -> RECOVERY. Any other
label stays missing and is listed in ``metadata.extra["unmapped_phase_labels"]``. A ``Phase``
column without text (Quark's numeric codes) is not used.

Metadata (labels compared case-insensitively without a trailing colon): ``Weight (kg)`` /
``Gewicht (kg)`` -> ``weight_kg``; ``Height (cm)`` / ``Größe (cm)`` -> ``height_cm`` (only
with these units in the label); ``Age`` / ``Alter`` -> ``age_years``; ``Sex`` / ``Gender`` /
``Geschlecht`` (Male/Männlich/M, Female/Weiblich/F/W) -> ``sex``; ``Test date`` (ISO
``YYYY-MM-DD`` text or an Excel date) / ``Test-Datum`` (also ``DDMMYYYY``, written as a
number in German exports: 11042015 is 2015-04-11) -> ``test_date``. Into ``extra``:
the sheet's name (``sheet``), barometric pressure (label ending ``(mmHg)``), ``Ergometer``,
``Protocol``/``Protokoll`` and Quark's ``LT:``/``RC:`` times in s when set (``--:--:--``
means not set). Names, birth date (``D.O.B.``/``Geburtsdatum``) and ID are never read; an
empty cell stays missing. The Omnia ``Results`` sheet (the device's own AT/RC and peak
values) is not read.

COSMED's CSV export (Omnia, K5; ``cosmed-csv``) is the same grid as delimited text, comma-
or semicolon-separated, in either layout (from column J under the pairs, or from column A
with the units row under the labels), and goes through the same steps (:class:`CSVReader`).
It was checked by saving the real workbooks (and their grids alone) as CSV; no CSV written by
a K5 itself was available.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord, Metadata
from ._excel import is_workbook, sheet_cells, sheet_names, sniff_rows
from ._sniff import head_lines
from ._tabular import (
    build_record,
    load_text,
    positive_number,
    read_csv_text,
    source_metadata,
)
from .parsing import UNIT_FACTORS, parse_number, parse_time_s, to_canonical

#: Column (0-based) of ``t``, where the data block starts (Excel column J).
TIME_COLUMN = 9
#: Column of ``t`` in exports of the parameter grid alone (Excel column A).
GRID_ONLY_COLUMN = 0
#: Label (column A) and value columns (B, E, H) of the metadata pairs, 0-based.
METADATA_PAIRS = ((0, 1), (3, 4), (6, 7))
#: Canonical column -> COSMED parameter names (row 1), compared case-insensitively.
COLUMNS: dict[str, tuple[str, ...]] = {
    "VO2": ("VO2",),
    "VCO2": ("VCO2",),
    "VE": ("VE",),
    "VT": ("VT",),
    "PetO2": ("PetO2",),
    "PetCO2": ("PetCO2",),
    "HR": ("HR", "HF"),
    "RF": ("Rf", "Af"),
    "load": ("Power", "Load1"),
    "speed": ("Speed",),
    "grade": ("Grade",),
}
#: Mixed-expired columns that must never stand in for the end-tidal ones.
MIXED_EXPIRED = {"PetO2": "PeO2", "PetCO2": "PeCO2"}
#: COSMED unit spellings -> (unit :func:`to_canonical` accepts, factor applied before it).
UNIT_ALIASES: dict[str, tuple[str, float]] = {
    "kmh": ("km/h", 1.0),
    "kmh*10": ("km/h", 0.1),
    "km/h*10": ("km/h", 0.1),
}
#: Accepted units (lower case, no spaces) of channels without unit conversions.
PLAIN_UNITS: dict[str, set[str]] = {
    "HR": {"bpm", "1/min", "b/min"},
    "RF": {"1/min", "b/min", "bpm"},
    "load": {"watt", "w"},
    "grade": {"%"},
}
#: Time unit cells meaning clock time; plain numbers in such a column are Excel day fractions.
CLOCK_UNITS = {"hh:mm:ss", "h:mm:ss"}
#: Every time unit cell ``t`` may have (lower case, no spaces).
TIME_UNITS = {"s", "ms", "min", *CLOCK_UNITS}
#: Channels left out when every value is 0 (not recorded).
DROP_IF_ALL_ZERO = ("load", "speed", "grade")
#: ``Phase`` labels (upper case, no spaces/-/_) -> canonical phase.
PHASES = {"REST": "REST", "WARMUP": "WARMUP", "EXERCISE": "EXERCISE", "RECOVERY": "RECOVERY"}
SEXES = {"male": "male", "m": "male", "männlich": "male", "female": "female", "f": "female",
         "weiblich": "female", "w": "female"}
#: Metadata labels (lower case, no trailing colon) -> Metadata attribute.
NUMBER_LABELS = {
    "weight (kg)": "weight_kg", "gewicht (kg)": "weight_kg",
    "height (cm)": "height_cm", "größe (cm)": "height_cm", "groesse (cm)": "height_cm",
    "age": "age_years", "alter": "age_years",
}
SEX_LABELS = ("sex", "gender", "geschlecht")
#: Test-date labels -> whether an all-digit date is day first (``None``: ISO or Excel only).
DATE_LABELS: dict[str, bool | None] = {"test date": None, "test-datum": True,
                                       "testdatum": True}
TEXT_EXTRA = {"ergometer": "ergometer", "protocol": "protocol", "protokoll": "protocol"}
THRESHOLD_EXTRA = {"lt": "device_lt_s", "rc": "device_rc_s"}

_PRESSURE_LABEL = re.compile(r"^barometri\w*\s+(?:press\w*\.?|druck)\s*\(mmhg\)$")
_NUMBER_TEXT = re.compile(r"^\s*[+-]?[0-9]+(?:[.,][0-9]*)?\s*$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_DAY_FIRST = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$|^(\d{2})(\d{2})(\d{4})$")


class _CosmedReader:
    """One COSMED Excel layout; ``layout`` is what :func:`_layout` says for it."""

    layout = ""
    device = ""

    def sniff(self, head: bytes, path: Path) -> bool:
        return _layout(head, path) == self.layout

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        data = Path(path).read_bytes()
        metadata = source_metadata(path, data, self.name, device=self.device)
        first_sheet = sheet_names(path)[0]  # an 'unreadable' finding if the file is damaged
        metadata.extra["sheet"] = first_sheet
        return _record_from_grid(sheet_cells(path, first_sheet), metadata, file)


def _record_from_grid(sheet: pd.DataFrame, metadata: Metadata, file: str) -> CPETRecord:
    """The record held by a COSMED cell grid (the first sheet, or the CSV export's cells)."""
    column = _grid_column(*_first_rows(sheet)) if sheet.shape[0] >= 2 else None
    if column is None:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            "not a COSMED layout: expected parameter names in row 1 and their units in row 2, "
            "either from column J ('t' in J1, label/value pairs such as ID in A) or from "
            "column A ('t' in A1, with VO2 and Rf or Af)", file=file))
    findings: list[Finding] = []
    unmapped_phases: list[str] = []
    frame, source_names = _data(sheet, column, file, findings, unmapped_phases)
    if column == TIME_COLUMN:
        _metadata(sheet, metadata, file, findings)
    if unmapped_phases:
        metadata.extra["unmapped_phase_labels"] = unmapped_phases
    frame = frame[[c for c in CANONICAL_UNITS if c in frame]]
    return build_record(frame, metadata, source_names, findings, file=file)


class OmniaReader(_CosmedReader):
    """COSMED Omnia export: ``Data``/``Daten`` sheet, labels without colons."""

    name = "cosmed-omnia"
    description = ("COSMED Omnia Excel export (first sheet Data/Daten: label/value pairs in "
                   "A/B, D/E, G/H; parameters from column J with a units row)")
    layout = "omnia"
    device = "COSMED Omnia"


class GridReader(_CosmedReader):
    """COSMED export of the parameter grid alone: ``t`` in A1, units in row 2, no pairs."""

    name = "cosmed-grid"
    description = ("COSMED Excel export of the parameter grid alone (t in A1 with VO2 and Rf "
                   "in row 1, units in row 2; no subject pairs)")
    layout = "grid"
    device = "COSMED"


class QuarkReader(_CosmedReader):
    """COSMED Quark / PFT Suite export: labels ending with a colon, ``t`` as ``hh:mm:ss``."""

    name = "cosmed-quark"
    description = ("COSMED Quark/PFT Suite Excel export (labels ending with ':' in A, D, G; "
                   "parameters from column J with a units row, t as hh:mm:ss)")
    layout = "quark"
    device = "COSMED Quark (PFT Suite)"


def _layout(head: bytes, path: Path) -> str | None:
    """``"omnia"``, ``"quark"``, ``"grid"`` (parameters from column A) or None, from the
    first two rows of the first sheet."""
    if not is_workbook(head, path):
        return None
    rows = sniff_rows(path)
    if rows is None or rows.shape[0] < 2:
        return None
    first, second = _first_rows(rows)
    column = _grid_column(first, second)
    if column is None:
        return None
    if column == GRID_ONLY_COLUMN:
        return "grid"
    return "quark" if first[0].endswith(":") else "omnia"


def _first_rows(sheet: pd.DataFrame) -> tuple[list[str], list[str]]:
    """The first two rows of a cell grid as text."""
    return tuple([_text(cell) for cell in sheet.iloc[i]] for i in (0, 1))


def _grid_column(first: list[str], second: list[str]) -> int | None:
    """Where the parameter grid starts (0-based column), from the first two rows as text.

    :data:`TIME_COLUMN` (J) when A1 starts with ``ID`` (the label/value pairs), J1 is ``t``
    and row 1 has ``VO2`` from there; :data:`GRID_ONLY_COLUMN` (A) when A1 is ``t``, row 1
    has ``VO2`` and ``Rf`` or ``Af`` (COSMED's name for the breathing frequency) and A2 is
    a time unit (the units row); None otherwise.
    """
    if (len(first) > TIME_COLUMN and first[0].startswith("ID") and first[TIME_COLUMN] == "t"
            and "vo2" in {name.lower() for name in first[TIME_COLUMN:]}):
        return TIME_COLUMN
    names = {name.lower() for name in first}
    if (first and first[0] == "t" and "vo2" in names and names & {"rf", "af"}
            and _unit_key(second[0] if second else "") in TIME_UNITS):
        return GRID_ONLY_COLUMN
    return None


def _column_letter(column: int) -> str:
    """Excel's letter for a 0-based column below 26."""
    return chr(ord("A") + column)


def _text(cell: object) -> str:
    """A cell as stripped text; '' when empty."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return ""
    return str(cell).strip()


def _unit_key(unit: str) -> str:
    return re.sub(r"\s", "", unit).lower()


def _data(sheet: pd.DataFrame, column: int, file: str, findings: list[Finding],
          unmapped_phases: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The data block (``column``, the ``t`` column, onward) as canonical columns in
    canonical units.

    ``Phase`` labels that are not phases are added to ``unmapped_phases``.
    """
    names = [_text(cell) for cell in sheet.iloc[0, column:]]
    units = [_text(cell) for cell in sheet.iloc[1, column:]] if len(sheet) > 1 else []
    units += [""] * (len(names) - len(units))
    time_cells = sheet.iloc[2:, column]
    filled = np.flatnonzero(time_cells.notna().to_numpy())
    if not len(filled):
        raise CPETError(Finding(
            "empty", Severity.ERROR,
            f"no data rows: column {_column_letter(column)} (t) is empty below the units row",
            file=file, column="t"))
    start = 2 + int(filled[0])
    gaps = np.flatnonzero(sheet.iloc[start:, column].isna().to_numpy())
    end = start + int(gaps[0]) if len(gaps) else len(sheet)
    block = sheet.iloc[start:end, column:].reset_index(drop=True)
    block.columns = range(len(names))
    _report_rows_after(sheet.iloc[end:, column:], start, end, file, findings)

    frame = pd.DataFrame({"t": _time(block[0], units[0], file, findings)})
    source_names = {"t": names[0]}
    lower = [name.lower() for name in names]
    for canonical, wanted in COLUMNS.items():
        named = [j for j, name in enumerate(lower) if name in {w.lower() for w in wanted}]
        accepted = [j for j in named if _convert(pd.Series([1.0]), canonical, units[j]) is not None]
        if not accepted:
            if named:
                seen = ", ".join(f"{names[j]!r} in {units[j]!r}" for j in named)
                findings.append(Finding(
                    "missing-channel", Severity.WARNING,
                    f"{canonical} left missing: no column in an accepted unit "
                    f"({_accepted(canonical)}); found {seen}", file=file, column=canonical))
            continue
        chosen = accepted[0]
        values = _numbers(block[chosen], names[chosen], file, findings)
        frame[canonical] = _convert(values, canonical, units[chosen])
        source_names[canonical] = names[chosen]
        for j in accepted[1:]:
            findings.append(Finding(
                "unknown-column", Severity.INFO,
                f"{names[j]!r} (unit {units[j]!r}) was ignored: {canonical} is read from the "
                f"column before it, {names[chosen]!r} (unit {units[chosen]!r})", file=file,
                column=names[j]))
    for canonical in DROP_IF_ALL_ZERO:
        if canonical in frame and frame[canonical].notna().any() and (
                frame[canonical].dropna() == 0).all():
            frame = frame.drop(columns=canonical)
            findings.append(Finding(
                "device-zero-missing", Severity.INFO,
                f"{source_names[canonical]} is 0 in every row (not recorded); {canonical} "
                "was left out", file=file, column=source_names.pop(canonical)))
    for canonical, mixed in MIXED_EXPIRED.items():
        if canonical not in frame and mixed.lower() in lower:
            findings.append(Finding(
                "missing-channel", Severity.WARNING,
                f"{canonical} left missing: the file has only {mixed}, the mixed-expired "
                "partial pressure, which is not end-tidal", file=file, column=canonical))
    if "phase" in lower:
        j = lower.index("phase")
        phase, unmapped = _phases(block[j])
        if phase is not None:
            frame["phase"] = phase
            source_names["phase"] = names[j]
        if unmapped:
            unmapped_phases.extend(unmapped)
    return frame, source_names


def _report_rows_after(after: pd.DataFrame, start: int, end: int, file: str,
                       findings: list[Finding]) -> None:
    """Report rows below the data block that hold something (markers, summaries)."""
    used = after.notna().any(axis=1).to_numpy()
    if used.any():
        first = end + int(np.flatnonzero(used)[0])
        findings.append(Finding(
            "malformed-row", Severity.WARNING,
            f"{int(used.sum())} row(s) below the data (after the first empty t cell, sheet row "
            f"{end + 1}) hold values and were not read as data; the first is sheet row "
            f"{first + 1}", file=file, row=first - start + 1))


def _time(cells: pd.Series, unit: str, file: str, findings: list[Finding]) -> pd.Series:
    """``t`` in seconds; cells that are not times are reported and left missing."""
    unit_key = _unit_key(unit)
    try:
        seconds = parse_time_s(cells, unit="day" if unit_key in CLOCK_UNITS else unit)
    except ValueError:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"t has unit {unit!r}; accepted: s, ms, min, hh:mm:ss", file=file,
            column="t")) from None
    _report_bad_cells(cells, seconds, "t", file, findings)
    return seconds


def _numbers(cells: pd.Series, name: str, file: str, findings: list[Finding]) -> pd.Series:
    """A column's cells as float; text that is not a number is reported and left missing."""
    values = parse_number(cells)
    _report_bad_cells(cells, values, name, file, findings)
    return values


def _report_bad_cells(cells: pd.Series, values: pd.Series, name: str, file: str,
                      findings: list[Finding]) -> None:
    bad = (values.isna() & cells.notna()).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{int(bad.sum())} cell(s) could not be read and were left missing; the first is "
            f"{cells.iloc[first]!r}", file=file, column=name, row=first + 1))


def _convert(values: pd.Series, canonical: str, unit: str) -> pd.Series | None:
    """``values`` in the canonical unit, or None when ``unit`` is not accepted."""
    key = _unit_key(unit)
    if canonical in UNIT_FACTORS:
        source_unit, factor = UNIT_ALIASES.get(key, (unit, 1.0))
        try:
            return to_canonical(values * factor, canonical, source_unit)
        except ValueError:
            return None
    if key in PLAIN_UNITS[canonical]:
        return values.astype(float)
    return None


def _accepted(canonical: str) -> str:
    if canonical in UNIT_FACTORS:
        aliases = [alias for alias, (unit, _) in UNIT_ALIASES.items()
                   if unit in UNIT_FACTORS[canonical]]
        return ", ".join([*UNIT_FACTORS[canonical], *aliases])
    return ", ".join(sorted(PLAIN_UNITS[canonical]))


def _phases(cells: pd.Series) -> tuple[np.ndarray | None, list[str]]:
    """Canonical phases from ``Phase`` text, and the labels that are not phases.

    None when the column holds no text (Quark's numeric codes, whose meaning is undocumented;
    in a CSV export they arrive as text such as ``"0"`` and are still codes).
    """
    texts = [cell.strip() if isinstance(cell, str) and not _NUMBER_TEXT.match(cell) else None
             for cell in cells]
    if not any(texts):
        return None, []
    keys = [re.sub(r"[\s_\-]", "", text).upper() if text else None for text in texts]
    phase = np.array([PHASES.get(key) if key else None for key in keys], dtype=object)
    unmapped = sorted({text for text, key in zip(texts, keys, strict=True)
                       if key and key not in PHASES})
    return phase, unmapped


def _metadata(sheet: pd.DataFrame, metadata: Metadata, file: str,
              findings: list[Finding]) -> None:
    """Subject and test items from the label/value pairs (names, birth date, ID never read)."""
    pairs: dict[str, object] = {}
    for label_col, value_col in METADATA_PAIRS:
        if sheet.shape[1] <= value_col:
            continue
        for label, value in zip(sheet.iloc[:, label_col], sheet.iloc[:, value_col], strict=True):
            key = _text(label).rstrip(":").strip().lower()
            if key and _text(value) and key not in pairs:
                pairs[key] = value
    for key, value in pairs.items():
        if key in NUMBER_LABELS:
            setattr(metadata, NUMBER_LABELS[key], _positive(value, key, file, findings))
        elif key in SEX_LABELS:
            metadata.sex = SEXES.get(_text(value).lower())
            if metadata.sex is None:
                findings.append(Finding("non-numeric", Severity.WARNING,
                                        f"{key} = {_text(value)!r} is not male or female; left "
                                        "missing", file=file, column=key))
        elif key in DATE_LABELS:
            metadata.test_date = _date(value, DATE_LABELS[key], key, file, findings)
        elif _PRESSURE_LABEL.match(key):
            pressure = _positive(value, key, file, findings)
            if pressure is not None:
                metadata.extra["barometric_pressure_mmHg"] = pressure
        elif key in TEXT_EXTRA:
            metadata.extra[TEXT_EXTRA[key]] = _text(value)
        elif key in THRESHOLD_EXTRA:
            seconds = float(parse_time_s(pd.Series([value], dtype=object), unit="day").iloc[0])
            if np.isfinite(seconds):
                metadata.extra[THRESHOLD_EXTRA[key]] = seconds


def _positive(value: object, label: str, file: str, findings: list[Finding]) -> float | None:
    """A positive number from a metadata cell, else None and a finding."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        value = repr(float(value))
    return positive_number(str(value), label, file, findings)


def _date(value: object, day_first: bool | None, label: str, file: str,
          findings: list[Finding]) -> str | None:
    """ISO date from a test-date cell, else None and a finding."""
    if isinstance(value, dt.datetime):  # also pandas.Timestamp
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, numbers.Real) and float(value).is_integer():
        text = str(int(value)).zfill(8)  # a number loses the leading zero of 01042015
    else:
        text = _text(value)
    parts = None
    if match := _ISO_DATE.match(text):
        parts = int(match[1]), int(match[2]), int(match[3])
    elif day_first and (match := _DAY_FIRST.match(text)):
        day, month, year = (match[1], match[2], match[3]) if match[1] else match.group(4, 5, 6)
        parts = int(year), int(month), int(day)
    try:
        return dt.date(*parts).isoformat() if parts else _no_date(text, label, file, findings)
    except ValueError:
        return _no_date(text, label, file, findings)


def _no_date(text: str, label: str, file: str, findings: list[Finding]) -> None:
    findings.append(Finding("non-numeric", Severity.WARNING,
                            f"{label} = {text!r} is not a date this reader can read without "
                            "guessing the day/month order; left missing", file=file,
                            column=label))
    return None


class CSVReader:
    """COSMED CSV export (Omnia, K5): the ``Data`` sheet's cell grid as delimited text.

    COSMED's CSV export writes the same grid as the Excel ``Data`` sheet (label/value pairs in
    columns A/B, D/E, G/H; parameter names from column J in row 1, units in row 2, data from
    row 4), or the parameter grid alone (names from column A, units in row 2), comma- or
    semicolon-separated. The layouts were checked by saving the real Omnia and Quark
    workbooks, and their grids alone, as CSV; no CSV written by a K5 itself was available to
    check, so the first real one deserves a look.
    """

    name = "cosmed-csv"
    description = ("COSMED CSV export (Omnia/K5: the Data sheet's grid, parameters from column "
                   "J, or from column A, with a units row)")
    device = "COSMED"

    def sniff(self, head: bytes, path: Path) -> bool:
        lines = [line for line in head_lines(head, 3) if line.strip()]
        if not lines:
            return False
        delimiter = _delimiter(lines[0])
        first, second = ([field.strip().strip('"') for field in line.split(delimiter)]
                         for line in (lines + [""])[:2])
        return _grid_column(first, second) is not None

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        metadata.device = self.device
        delimiter = _delimiter(text.split("\n", 1)[0])
        grid = read_csv_text(text, file, sep=delimiter, header=None, dtype=str,
                             keep_default_na=False, skip_blank_lines=False)
        return _record_from_grid(grid.replace("", np.nan), metadata, file)


#: Delimiters COSMED's CSV export uses (comma, or semicolon where the decimal mark is a comma).
DELIMITERS = (",", ";", "\t")


def _delimiter(line: str) -> str:
    """The delimiter a line uses most."""
    return max(DELIMITERS, key=line.count)


OMNIA_READER = OmniaReader()
QUARK_READER = QuarkReader()
GRID_READER = GridReader()
CSV_READER = CSVReader()
#: The COSMED readers, for :func:`cpet_nb.io.registry.readers`.
READERS = (OMNIA_READER, QUARK_READER, GRID_READER, CSV_READER)
