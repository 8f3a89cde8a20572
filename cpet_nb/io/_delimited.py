"""Shared steps for delimited text exports with a label row and, optionally, a units row.

Used by the readers of tab-separated exports whose header is one row of channel labels,
with the units either in the next row (Vyntus) or known from the label (Breeze):

* :func:`split_rows` cuts the data rows into text cells and skips rows with another number
  of fields than the header (``malformed-row``);
* :func:`read_channel` reads one column in canonical units: times with :func:`read_times`,
  every other channel with :func:`read_numbers` and :func:`convert`. Cells are
  :func:`plain_numbers`; :func:`blank` cells are missing, other text is reported by
  :func:`report_text_cells` (``non-numeric``);
* :func:`implied_body_mass` and :func:`decimals` derive the body mass from absolute and
  per-kg VO2 columns;
* :func:`preamble_metadata` reads weight, height, age, sex and test date from the
  ``<label>:<TAB><value>`` lines before the header, in the language given
  (:data:`METADATA_LABELS`).

Which label means which channel, and the language of the labels, are the readers' own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import Metadata
from .parsing import parse_number, parse_number_with_unit, parse_time_s, to_canonical

#: Language -> preamble label (without the colon, lower case) -> Metadata attribute.
METADATA_LABELS: dict[str, dict[str, str]] = {
    "EN": {"weight": "weight_kg", "height": "height_cm", "age": "age_years", "sex": "sex",
           "gender": "sex", "test date": "test_date", "date": "test_date",
           "visit date": "test_date"},
    "DE": {"gewicht": "weight_kg", "größe": "height_cm", "groesse": "height_cm",
           "alter": "age_years", "geschlecht": "sex", "testdatum": "test_date",
           "datum": "test_date", "untersuchungsdatum": "test_date"},
    "FR": {"poids": "weight_kg", "taille": "height_cm", "âge": "age_years", "age": "age_years",
           "sexe": "sex", "date du test": "test_date", "date de l'examen": "test_date",
           "date": "test_date"},
    "NO": {"vekt": "weight_kg", "høyde": "height_cm", "alder": "age_years", "kjønn": "sex",
           "testdato": "test_date", "dato": "test_date"},
}
#: Language -> sex as written (lower case) -> ``"female"`` / ``"male"``.
SEXES: dict[str, dict[str, str]] = {
    "EN": {"m": "male", "male": "male", "f": "female", "female": "female"},
    "DE": {"m": "male", "männlich": "male", "w": "female", "f": "female",
           "weiblich": "female"},
    "FR": {"m": "male", "h": "male", "homme": "male", "masculin": "male", "f": "female",
           "femme": "female", "féminin": "female"},
    "NO": {"m": "male", "mann": "male", "k": "female", "f": "female", "kvinne": "female"},
}
#: Languages in which ``dd/mm/yyyy`` is the date order (EN slashed dates are ambiguous).
DAY_FIRST = {"DE", "FR", "NO"}
#: Per-minute units accepted for HR and RF (lower case, without spaces).
RATE_UNITS = frozenset({"1/min", "/min", "min-1", "min^-1", "bpm", "b/min", "br/min",
                        "beats/min", "breaths/min", "slag/min", "schläge/min", "atemzüge/min",
                        "c/min", "cycles/min", "battements/min"})
#: Units accepted for canonical columns without :data:`~cpet_nb.io.parsing.UNIT_FACTORS`.
PLAIN_UNITS: dict[str, frozenset[str]] = {
    "HR": RATE_UNITS, "RF": RATE_UNITS, "load": frozenset({"w", "watt", "watts"}),
    "grade": frozenset({"%"}),
}
#: Channels without which the file is refused.
REQUIRED = ("t", "VO2")
#: Cell texts that mean "no value" (after stripping spaces).
MISSING_MARKERS = ("", "-", "--", "---")
#: Weight units (lower case) -> factor to kg; height units -> factor to cm.
WEIGHT_UNITS = {"": 1.0, "kg": 1.0, "lb": 0.45359237, "lbs": 0.45359237}
HEIGHT_UNITS = {"": 1.0, "cm": 1.0, "m": 100.0, "in": 2.54}
AGE_UNITS = frozenset({"", "y", "yr", "yrs", "year", "years", "j", "jahre", "ans", "år", "a"})
#: Accepted implied body mass (kg) for ``extra["body_mass_kg_implied"]``.
BODY_MASS_RANGE_KG = (20.0, 250.0)

_WHAT = {"weight_kg": "weight", "height_cm": "height", "age_years": "age", "sex": "sex",
         "test_date": "date"}
_PLAIN_NUMBER = re.compile(
    r"\s*[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)(?:[eE][+-]?[0-9]+)?\s*\Z")
_CLOCK_UNIT = re.compile(r"\A[hms:.,]+\Z", re.IGNORECASE)
_DATE = re.compile(r"\A(\d{1,4})([./-])(\d{1,2})\2(\d{1,4})\b")


def split_rows(lines: Iterable[str], n_fields: int, file: str, findings: list[Finding]
               ) -> tuple[pd.DataFrame, np.ndarray]:
    """Tab-separated data rows as text cells (one column per header field), and their numbers.

    Blank lines are skipped; every other line is a data row, numbered from 1. Trailing empty
    fields beyond the header are dropped. A row with another number of fields (a file cut
    mid-row, a summary line) is skipped with a ``malformed-row`` finding.

    Raises
    ------
    CPETError
        ``empty`` without data rows; ``unreadable`` when no row has the header's field count.
    """
    good: list[list[str]] = []
    numbers: list[int] = []
    bad: list[tuple[int, int]] = []
    number = 0
    for line in lines:
        if not line.strip():
            continue
        number += 1
        fields = line.split("\t")
        while len(fields) > n_fields and not fields[-1].strip():
            fields.pop()
        if len(fields) == n_fields:
            good.append(fields)
            numbers.append(number)
        else:
            bad.append((number, len(fields)))
    if not number:
        raise CPETError(Finding("empty", Severity.ERROR,
                                "the header is not followed by any data row", file=file))
    if not good:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"no data row has the {n_fields} tab-separated fields of the header (the first "
            f"has {bad[0][1]})", file=file, row=bad[0][0]))
    if bad:
        findings.append(Finding(
            "malformed-row", Severity.WARNING,
            f"{len(bad)} row(s) do not have the {n_fields} tab-separated fields of the header "
            f"and were skipped (cut off or not a data row); the first has {bad[0][1]}",
            file=file, row=bad[0][0]))
    cells = pd.DataFrame(good, dtype=object).astype(str)
    return cells, np.asarray(numbers)


def blank(cells: pd.Series) -> np.ndarray:
    """Cells that hold no value: missing, empty, spaces, or one of :data:`MISSING_MARKERS`.

    Cells may be text (delimited files) or any spreadsheet value (numbers, dates, NaN).
    """
    missing = cells.isna().to_numpy(dtype=bool, copy=True)
    text = np.fromiter((isinstance(cell, str) for cell in cells), dtype=bool, count=len(cells))
    missing[text] = cells[text].str.strip().isin(MISSING_MARKERS).to_numpy(dtype=bool)
    return missing


def report_text_cells(values: pd.Series | np.ndarray, cells: pd.Series, label: str,
                      rows: np.ndarray, file: str, findings: list[Finding],
                      what: str = "numbers") -> None:
    """A ``non-numeric`` finding for cells that hold text but gave no value."""
    bad = np.flatnonzero(np.isnan(np.asarray(values, dtype=float)) & ~blank(cells))
    if len(bad):
        first = int(bad[0])
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{len(bad)} cell(s) are not {what} and were left missing; the first is "
            f"{cells.iloc[first]!r}", file=file, column=label, row=int(rows[first])))


def plain_numbers(cells: pd.Series) -> np.ndarray:
    """Numbers (decimal point or comma) from data cells; NaN for anything else.

    Stricter than :func:`~cpet_nb.io.parsing.parse_number`, which accepts a unit after the
    number (``"74,8kg"``, right for metadata): in a data column ``"1O30"`` (letter O) would
    then be 1 with unit ``O30``, so a cell with anything besides the number is not one.
    """
    values = parse_number(cells).to_numpy(dtype=float, copy=True)
    plain = cells.str.match(_PLAIN_NUMBER).to_numpy(dtype=bool, na_value=False)
    values[~plain] = np.nan
    return values


def read_numbers(cells: pd.Series, label: str, rows: np.ndarray, file: str,
                 findings: list[Finding]) -> np.ndarray:
    """:func:`plain_numbers` of a column; cells with text that is not a number are reported."""
    values = plain_numbers(cells)
    report_text_cells(values, cells, label, rows, file, findings)
    return values


def read_times(cells: pd.Series, unit: str, label: str, rows: np.ndarray, file: str,
               findings: list[Finding]) -> np.ndarray:
    """Seconds from a time column whose unit is ``unit``.

    ``unit`` s, ms or min applies to plain numbers (clock cells are clock times); a clock
    pattern such as ``mm:ss`` or no unit at all accepts clock times only, because a plain
    number then has no unit.

    Raises
    ------
    CPETError
        ``unreadable`` for any other unit, or when no cell is a time.
    """
    key = re.sub(r"[\s()\[\]{}]", "", unit)
    clock_only = key == "" or (bool(_CLOCK_UNIT.match(key)) and ":" in key)
    if clock_only:
        values = parse_time_s(cells)
        values[~cells.str.contains(":", regex=False).to_numpy(dtype=bool)] = np.nan
        what = "clock times (m:ss or h:mm:ss)"
    else:
        try:
            values = parse_time_s(cells, unit=key)
        except ValueError:
            raise CPETError(Finding(
                "unreadable", Severity.ERROR,
                f"the time unit {unit!r} is not s, ms, min or a clock pattern like mm:ss",
                file=file, column=label)) from None
        what = "times"
    values = values.to_numpy(dtype=float)
    if np.isnan(values).all():
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"no cell of the time column is a time in unit {unit!r}; the first is "
            f"{cells.iloc[0]!r}", file=file, column=label))
    report_text_cells(values, cells, label, rows, file, findings, what=what)
    return values


def read_channel(cells: pd.Series, canonical: str, unit: str, label: str, rows: np.ndarray,
                 file: str, findings: list[Finding], where: str = "the units row gives"
                 ) -> np.ndarray | None:
    """One channel in canonical units, or None with an ``unknown-column`` warning when its
    unit is not accepted (``where`` says where the unit came from).

    Raises
    ------
    CPETError
        ``unreadable`` when the unit of a :data:`REQUIRED` channel is not accepted.
    """
    if canonical == "t":
        return read_times(cells, unit, label, rows, file, findings)
    cell_findings: list[Finding] = []
    values = read_numbers(cells, label, rows, file, cell_findings)
    try:
        values = convert(values, canonical, unit)
    except ValueError as exc:
        message = f"{where} {unit!r}: {exc}"
        if canonical in REQUIRED:
            raise CPETError(Finding("unreadable", Severity.ERROR, message, file=file,
                                    column=label)) from None
        findings.append(Finding("unknown-column", Severity.WARNING,
                                f"{message}; the column was left out", file=file,
                                column=label))
        return None
    findings += cell_findings
    return values


def convert(values: np.ndarray, canonical: str, unit: str) -> np.ndarray:
    """``values`` in ``unit`` as ``canonical``'s canonical unit; ValueError if not accepted."""
    if canonical in PLAIN_UNITS:
        key = re.sub(r"[\s()\[\]{}]", "", unit).lower()
        if key not in PLAIN_UNITS[canonical]:
            raise ValueError(f"{canonical}: unit {unit!r} is not accepted; accepted units: "
                             f"{', '.join(sorted(PLAIN_UNITS[canonical]))}")
        return values
    return to_canonical(values, canonical, unit).to_numpy(dtype=float)


def implied_body_mass(absolute_ml_min: np.ndarray, per_kg: np.ndarray,
                      resolution: float = 0.1) -> float | None:
    """Body mass (kg) as absolute VO2 (mL/min) over VO2 per kg (mL/min/kg), or None.

    The median ratio over rows with both values, returned only when at least 95 % of those
    rows agree with it within the rounding of the per-kg column (half of ``resolution``, as
    a share of the mass, plus 1 mL/min) and it lies in :data:`BODY_MASS_RANGE_KG`.
    """
    both = np.isfinite(absolute_ml_min) & np.isfinite(per_kg) & (per_kg > 0)
    if both.sum() < 3:
        return None
    absolute, relative = absolute_ml_min[both], per_kg[both]
    mass = float(np.median(absolute / relative))
    tolerance = mass * resolution / 2 + 1.0
    agree = np.mean(np.abs(absolute - mass * relative) <= tolerance)
    low, high = BODY_MASS_RANGE_KG
    if agree < 0.95 or not low <= mass <= high:
        return None
    return mass


def decimals(cells: pd.Series) -> int:
    """Most digits after the decimal separator in any cell."""
    after = cells.str.extract(r"[.,](\d+)\s*\Z", expand=False).dropna()
    return int(after.str.len().max()) if len(after) else 0


def preamble_metadata(lines: Iterable[str], language: str, metadata: Metadata, file: str,
                      findings: list[Finding]) -> None:
    """Weight, height, age, sex and test date from ``<label>:<TAB><value>`` lines.

    Only labels in ``METADATA_LABELS[language]`` are looked at; every other line (name, ID,
    birth date) is never read. A value that cannot be read is left missing with a
    ``non-numeric`` finding.
    """
    labels = METADATA_LABELS.get(language, {})
    for line in lines:
        label, value = _label_value(line)
        attribute = labels.get(label)
        if attribute is None or not value or getattr(metadata, attribute) is not None:
            continue
        if attribute == "sex":
            parsed = SEXES.get(language, {}).get(value.lower())
        elif attribute == "test_date":
            parsed = _iso_date(value, language in DAY_FIRST)
        else:
            parsed = _quantity(value, attribute)
        if parsed is None:
            findings.append(Finding(
                "non-numeric", Severity.WARNING,
                f"preamble {label!r} = {value!r} is not a {_WHAT[attribute]} cpet_nb can "
                "read unambiguously; left missing", file=file, column=label))
        setattr(metadata, attribute, parsed)


def _label_value(line: str) -> tuple[str, str]:
    """(label in lower case without the colon, value) of a preamble line; ("", "") if none."""
    fields = [field.strip() for field in line.split("\t")]
    first = fields[0]
    if first.endswith(":"):
        rest = [f for f in fields[1:] if f]
        return first[:-1].strip().lower(), rest[0] if rest else ""
    label, sep, value = first.partition(":")
    if sep and value.strip() and len(fields) == 1:
        return label.strip().lower(), value.strip()
    return "", ""


def _quantity(value: str, attribute: str) -> float | None:
    """Weight (kg), height (cm) or age (years) from a value with an optional unit."""
    number, unit = parse_number_with_unit(value)
    unit = (unit or "").lower()
    if attribute == "age_years":
        factor = 1.0 if unit in AGE_UNITS else None
    else:
        factor = (WEIGHT_UNITS if attribute == "weight_kg" else HEIGHT_UNITS).get(unit)
    if factor is None or not np.isfinite(number) or number <= 0:
        return None
    return round(number * factor, 6)


def _iso_date(value: str, day_first: bool) -> str | None:
    """An ISO 8601 date from ISO, ``d.m.y`` or ``d/m/y`` (``m/d/y`` only when unambiguous)."""
    match = _DATE.match(value.strip())
    if match is None:
        return None
    a, sep, b, c = int(match.group(1)), match.group(2), int(match.group(3)), match.group(4)
    if len(match.group(1)) == 4:
        year, month, day = a, b, int(c)
    elif len(c) != 4:
        return None
    elif sep == "." or (sep in "/-" and day_first):
        day, month, year = a, b, int(c)
    elif a > 12 >= b:
        day, month, year = a, b, int(c)
    elif b > 12 >= a:
        month, day, year = a, b, int(c)
    else:
        return None  # e.g. 03/04/2021 in an English export: March or April
    try:
        return pd.Timestamp(year=year, month=month, day=day).date().isoformat()
    except ValueError:
        return None
