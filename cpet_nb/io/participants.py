"""External subject tables: weight, height, age and sex per test, overriding file metadata.

A study often keeps body mass, height, age and sex in its own table (a ``participants.csv``)
that is more exact than what the cart stored (ZAN exports round body mass to whole kg).
:class:`SubjectTable` reads such a table and :meth:`SubjectTable.apply` returns a copy of a
record whose metadata takes the table's values, with a finding that says what changed. The
table may also give the barometric pressure of each test, for files that store end-tidal
fractions but no pressure (ZAN): PetO2 and PetCO2 are then derived from it.

Table layout: a delimited text file (comma, semicolon or tab, chosen as the one of these that
occurs most often in the header line; UTF-8 with or without BOM, else Latin-1), one header
row, one row per test. Header names are compared after normalisation: lower case, a unit in
brackets becomes a suffix (``Weight (kg)`` -> ``weight_kg``) and other runs of characters
that are not letters or digits become ``_`` (``Body mass`` -> ``body_mass``).

=========================================  ============  ==========================================
normalised header                          field         rule
=========================================  ============  ==========================================
``file``, ``filename``, ``file_name``,     key           text matched to the record's file name
``datei``, ``id``, ``subject``,                          (see below); when several key columns
``subject_id``, ``participant``, ``p``                   exist, the first in this order is used
``weight``, ``weight_kg``, ``bodymass``,   weight_kg     kg
``bodymass_kg``, ``body_mass``,
``body_mass_kg``, ``mass``, ``mass_kg``,
``gewicht``, ``gewicht_kg``
``height``, ``größe``, ``groesse``         height_cm     m when every number in the column is below
                                                         3, else cm (m x 100)
``height_cm``, ``größe_cm``,               height_cm     cm / m (x 100), as the header says
``groesse_cm`` / ``height_m``
``age``, ``age_years``, ``alter``          age_years     years
``sex``, ``gender``, ``geschlecht``        sex           ``m``, ``male``, ``männlich`` -> male;
                                                         ``f``, ``w``, ``female``, ``weiblich`` ->
                                                         female (any case)
``pb_mmhg``, ``barometric_pressure_mmhg``, barometric    mmHg (Torr), hPa (mbar) or kPa, as the
``luftdruck_mmhg``, the same ending        pressure      header says; a header without unit (``pb``,
``_hpa``/``_mbar``/``_kpa``; ``pb``,       (mmHg)        ``barometric_pressure``, ``luftdruck``)
``barometric_pressure``, ``luftdruck``                   needs the unit in each cell (``715 mmHg``)
=========================================  ============  ==========================================

The barometric pressure is not metadata: when the record lacks PetO2 or PetCO2 but has the
end-tidal fractions ``FetO2``/``FetCO2``, :meth:`SubjectTable.apply` derives them from it
(:func:`cpet_nb.io.end_tidal.derive_end_tidal_pressures`, with a
``derived-channel`` finding naming the table and row). A table's pressure comes before
``Settings.barometric_pressure_mmhg`` (a test's own day beats the lab's usual value) and
never replaces a pressure the file stores.

Any other column (names, birth dates, study numbers, IDs) is not read; one ``unknown-column``
finding lists the ignored headers, never their values. When two columns give the same field
the first is used and the other is listed as ignored.

Cells. Numbers may use a decimal comma (``60,1``) and may carry the field's own unit
(``60,1 kg``, ``1,64 m``, ``164 cm``, ``34 years``); a cell's unit overrides the column's. An
empty cell is missing and never erases the file's value. A cell that is not a number, has
another unit, or is outside :data:`PLAUSIBLE` (after conversion) is left missing with a
``non-numeric`` or ``implausible-values`` warning naming its column and 1-based data row;
an unknown sex is a ``non-numeric`` warning as in the readers. A row without a key is
skipped with a ``malformed-row`` warning. Problems with the table itself never raise: they
are :attr:`SubjectTable.findings` (``file-not-found``, ``not-a-regular-file``,
``file-too-large``, ``unreadable``, ``empty`` errors leave the table without rows).

Matching a record to a row (:meth:`SubjectTable.match`), on the base name of
``record.metadata.source_name``, ignoring case. A row matches when its key

1. equals the file name (``01`` and ``01``; ``s3_ramp.csv`` and ``S3_ramp.csv``), or
2. equals it once the extension is removed from both (``s3_ramp`` and ``s3_ramp.xlsx``), or
3. is an integer written with digits only and the file name without extension contains exactly
   one run of digits with the same value (key ``1`` matches ``01``, ``test1.xml`` and
   ``S01_ramp.csv``; it never matches ``S01_T2``, which has two numbers).

Every row is checked with every rule: when two or more rows match, the match is ambiguous,
nothing is applied and a warning lists the rows and the rule each matched by (duplicate keys
in a table are reported when it is read, too).

Stand-in finding codes. This module's own events have no code in
:data:`~cpet_nb.findings.CODES` yet; the constants :data:`APPLIED_CODE`,
:data:`NO_ROW_CODE` and :data:`AMBIGUOUS_CODE` hold the existing codes used meanwhile.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath
from typing import Any

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CPETRecord, Metadata
from . import DEFAULT_MAX_FILE_BYTES
from ._files import file_problem
from ._tabular import decode_text, read_csv_text
from .end_tidal import PB_RANGE_MMHG, derivable, derive_end_tidal_pressures
from .parsing import parse_number_with_unit

#: Key columns (normalised headers), in order of preference.
KEY_COLUMNS = ("file", "filename", "file_name", "datei", "id", "subject", "subject_id",
               "participant", "p")
#: Normalised header -> (metadata field, unit of the column's numbers). Height ``None``:
#: decided by magnitude (m when every number is below :data:`HEIGHT_M_BELOW`, else cm).
FIELD_COLUMNS: dict[str, tuple[str, str | None]] = {
    "weight": ("weight_kg", "kg"), "weight_kg": ("weight_kg", "kg"),
    "bodymass": ("weight_kg", "kg"), "bodymass_kg": ("weight_kg", "kg"),
    "body_mass": ("weight_kg", "kg"), "body_mass_kg": ("weight_kg", "kg"),
    "mass": ("weight_kg", "kg"), "mass_kg": ("weight_kg", "kg"),
    "gewicht": ("weight_kg", "kg"), "gewicht_kg": ("weight_kg", "kg"),
    "height": ("height_cm", None), "height_cm": ("height_cm", "cm"),
    "height_m": ("height_cm", "m"), "größe": ("height_cm", None),
    "groesse": ("height_cm", None), "größe_cm": ("height_cm", "cm"),
    "groesse_cm": ("height_cm", "cm"),
    "age": ("age_years", "years"), "age_years": ("age_years", "years"),
    "alter": ("age_years", "years"),
    "sex": ("sex", None), "gender": ("sex", None), "geschlecht": ("sex", None),
    **{f"{name}{suffix}": ("barometric_pressure_mmhg", unit)
       for name in ("pb", "barometric_pressure", "luftdruck")
       for suffix, unit in (("", None), ("_mmhg", "mmhg"), ("_torr", "torr"), ("_hpa", "hpa"),
                            ("_mbar", "mbar"), ("_kpa", "kpa"))},
}
#: Units a number cell may carry, per field: unit (lower case) -> factor to the field's unit.
CELL_UNITS: dict[str, dict[str, float]] = {
    "weight_kg": {"kg": 1.0},
    "height_cm": {"cm": 1.0, "m": 100.0},
    "age_years": {"years": 1.0, "year": 1.0, "y": 1.0, "yr": 1.0, "yrs": 1.0},
    "barometric_pressure_mmhg": {"mmhg": 1.0, "torr": 1.0, "hpa": 0.750062, "mbar": 0.750062,
                                 "kpa": 7.50062},
}
#: A ``height`` column without unit is in m when every number is below this.
HEIGHT_M_BELOW = 3.0
#: Accepted values after conversion; outside, a cell is left missing with a finding.
PLAUSIBLE: dict[str, tuple[float, float]] = {
    "weight_kg": (20.0, 300.0),
    "height_cm": (90.0, 250.0),
    "age_years": (4.0, 110.0),
    "barometric_pressure_mmhg": PB_RANGE_MMHG,
}
SEXES = {"m": "male", "male": "male", "männlich": "male",
         "f": "female", "w": "female", "female": "female", "weiblich": "female"}
#: How each field is named and with which unit, in messages.
LABELS = {"weight_kg": ("weight", " kg"), "height_cm": ("height", " cm"),
          "age_years": ("age", " years"), "sex": ("sex", "")}
#: The field that is not metadata: the barometric pressure (mmHg) of each test.
PRESSURE_FIELD = "barometric_pressure_mmhg"
#: Every field's name and unit in messages.
FIELD_LABELS = {**LABELS, PRESSURE_FIELD: ("barometric pressure", " mmHg")}

#: Finding codes this module emits.
APPLIED_CODE = "subject-table-applied"
NO_ROW_CODE = "subject-table-no-row"
AMBIGUOUS_CODE = "subject-table-ambiguous"

_DIGIT_RUN = re.compile(r"[0-9]+")
_UNIT_SUFFIX = re.compile(r"[(\[]\s*([^)\]]*?)\s*[)\]]")
_NOT_WORD = re.compile(r"[^0-9a-zäöüß]+")
_DELIMITERS = (",", ";", "\t")


@dataclass(frozen=True)
class SubjectRow:
    """One usable row of a subject table.

    Attributes
    ----------
    key : str
        The key cell, stripped.
    row : int
        1-based data row in the table (the header is row 0).
    values : dict
        Field (``weight_kg``, ``height_cm``, ``age_years``, ``sex``,
        ``barometric_pressure_mmhg``) -> value, only for cells that were usable; a missing
        cell is absent.
    problems : dict
        Field -> the cell's text, for cells that were present but not usable.
    """

    key: str
    row: int
    values: dict[str, float | str]
    problems: dict[str, str] = field(default_factory=dict)


@dataclass
class SubjectTable:
    """Subject data by test, to override what the CPET files store.

    Attributes
    ----------
    source : str
        The table's file name (or a label for a table built from a DataFrame).
    rows : list of SubjectRow
    findings : list of Finding
        What was noticed while reading the table (the table's own file is named in them).
    """

    source: str
    rows: list[SubjectRow] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)

    @classmethod
    def from_csv(cls, path: str | os.PathLike,
                 max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SubjectTable:
        """Read a subject table from a delimited text file (rules in the module docstring).

        Parameters
        ----------
        path : str or path-like
        max_file_bytes : int
            Larger files are refused with a ``file-too-large`` finding.

        Returns
        -------
        SubjectTable
            Never raises for bad input: a table that cannot be read has no rows and an
            error finding.
        """
        frame, findings = read_text_table(path, max_file_bytes)
        table = cls.from_frame(frame, source=Path(path).name, file=str(path))
        table.findings[:0] = findings
        return table

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, source: str = "subject table",
                   file: str | None = None) -> SubjectTable:
        """A subject table from a DataFrame (same column and cell rules as :meth:`from_csv`).

        Parameters
        ----------
        frame : pandas.DataFrame
            One row per test; cells as text or numbers.
        source : str
            Name of the table in messages.
        file : str, optional
            Named in findings; defaults to ``source``.
        """
        file = file or source
        table = cls(source=source)
        if frame.columns.empty:
            return table
        headers = {column: normalise_header(str(column)) for column in frame.columns}
        key_column = next((c for k in KEY_COLUMNS for c in frame.columns if headers[c] == k),
                          None)
        if key_column is None:
            table.findings.append(Finding(
                "unreadable", Severity.ERROR,
                f"no key column: the header needs one of {', '.join(KEY_COLUMNS)} "
                f"(found {', '.join(map(str, frame.columns))})", file=file))
            return table
        used: dict[str, Any] = {}  # field -> column
        for column in frame.columns:
            target = FIELD_COLUMNS.get(headers[column])
            if target and target[0] not in used:
                used[target[0]] = column
        ignored = [str(c) for c in frame.columns if c != key_column and c not in used.values()]
        if ignored:
            table.findings.append(Finding(
                "unknown-column", Severity.INFO,
                f"column(s) not read: {', '.join(ignored)} (only the key, weight, height, age, "
                "sex and barometric pressure are used; names, birth dates and IDs never are)",
                file=file))
        if not used:
            table.findings.append(Finding(
                "missing-channel", Severity.WARNING,
                "no weight, height, age, sex or barometric pressure column: the table changes "
                "nothing", file=file))
        columns = {name: _column(frame[column], name, str(column), headers[column], file,
                                 table.findings)
                   for name, column in used.items()}
        keys = [_cell_text(cell) for cell in frame[key_column]]
        for index, key in enumerate(keys):
            row = index + 1
            if not key:
                table.findings.append(Finding(
                    "malformed-row", Severity.WARNING, "the row has no key and was skipped",
                    file=file, column=str(key_column), row=row))
                continue
            values = {name: parsed[0][index] for name, parsed in columns.items()
                      if parsed[0][index] is not None}
            problems = {name: parsed[1][index] for name, parsed in columns.items()
                        if parsed[1][index] is not None}
            table.rows.append(SubjectRow(key, row, values, problems))
        seen: dict[str, list[int]] = {}
        for row in table.rows:
            seen.setdefault(row.key.casefold(), []).append(row.row)
        for key, rows in seen.items():
            if len(rows) > 1:
                table.findings.append(Finding(
                    AMBIGUOUS_CODE, Severity.WARNING,
                    f"key {key!r} is in rows {', '.join(map(str, rows))}: a test matching it "
                    "gets no values from the table", file=file, column=str(key_column)))
        return table

    def match(self, name: str) -> list[tuple[SubjectRow, str]]:
        """Rows whose key matches a file name, each with the rule that matched.

        Parameters
        ----------
        name : str
            A record's ``metadata.source_name`` (a directory part is ignored).

        Returns
        -------
        list of (SubjectRow, str)
            The rule is ``"file name"``, ``"name without extension"`` or ``"number N"``;
            more than one entry means the match is ambiguous.

        Examples
        --------
        >>> table = SubjectTable.from_frame(pd.DataFrame({"p": [1, 10], "weight": [60.1, 61]}))
        >>> [(row.key, rule) for row, rule in table.match("01")]
        [('1', 'number 1')]
        """
        base = PurePath(name.replace("\\", "/")).name
        matches = []
        for row in self.rows:
            rule = _rule(row.key, base)
            if rule:
                matches.append((row, rule))
        return matches

    def apply(self, record: CPETRecord) -> CPETRecord:
        """A copy of ``record`` whose metadata takes the table's values for that test.

        Weight, height, age and sex present in the matching row replace the file's values;
        a field the row does not give (or gives unusably) keeps the file's value. The copy
        gets one finding: which fields changed and from which row (:data:`APPLIED_CODE`,
        info), that no row matches (:data:`NO_ROW_CODE`, info), or that several rows match
        (:data:`AMBIGUOUS_CODE`, warning; metadata unchanged). A barometric pressure in the
        row gives the PetO2 and PetCO2 the record lacks but has end-tidal fractions for
        (:func:`~cpet_nb.io.end_tidal.derive_end_tidal_pressures`).

        Parameters
        ----------
        record : CPETRecord

        Returns
        -------
        CPETRecord
            A new record; ``record`` itself is not changed.
        """
        metadata = replace(record.metadata, extra=dict(record.metadata.extra))
        matches = self.match(record.name)
        if not matches:
            finding = Finding(NO_ROW_CODE, Severity.INFO,
                              f"no row in participants table {self.source} for this file "
                              "(keys are matched to the file name, the name without "
                              "extension, or its only number): file metadata kept",
                              file=record.name)
        elif len(matches) > 1:
            which = "; ".join(f"row {row.row} (key {row.key!r}, {rule})" for row, rule in matches)
            finding = Finding(AMBIGUOUS_CODE, Severity.WARNING,
                              f"{len(matches)} rows of participants table {self.source} match "
                              f"this file: {which}; none was applied, file metadata kept",
                              file=record.name)
        else:
            row, rule = matches[0]
            where = f"participants table {self.source} row {row.row}"
            changes = _apply_row(row, metadata)
            pb_mmhg = row.values.get(PRESSURE_FIELD)
            if pb_mmhg is not None or PRESSURE_FIELD in row.problems:
                changes += f"; {_pressure_note(row, derivable(record))}"
            finding = Finding(APPLIED_CODE, Severity.INFO,
                              f"{where} (key {row.key!r}, matched by {rule}): {changes}",
                              file=record.name)
            applied = replace(record, data=record.data.copy(), metadata=metadata,
                              findings=[*record.findings, finding])
            if pb_mmhg is None:
                return applied
            return derive_end_tidal_pressures(applied, pb_mmhg, where)
        return replace(record, data=record.data.copy(), metadata=metadata,
                       findings=[*record.findings, finding])


def normalise_header(label: str) -> str:
    """A header compared by name: lower case, ``(unit)`` as ``_unit``, other marks as ``_``.

    Examples
    --------
    >>> normalise_header(" Body mass (kg) "), normalise_header("HR [bpm]")
    ('body_mass_kg', 'hr_bpm')
    """
    text = _UNIT_SUFFIX.sub(lambda m: "_" + m.group(1), label.strip().lower())
    return _NOT_WORD.sub("_", text).strip("_")


def read_text_table(path: str | os.PathLike, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
                    ) -> tuple[pd.DataFrame, list[Finding]]:
    """A small delimited text table as strings, and findings instead of exceptions.

    The delimiter is the one of comma, semicolon and tab that occurs most often in the first
    non-empty line (comma on a tie); the encoding is UTF-8 (BOM allowed), else Latin-1.
    Every cell is text (``""`` when empty), so nothing is guessed before the caller parses.

    Returns
    -------
    (pandas.DataFrame, list of Finding)
        An empty frame with an error finding when the file is missing, not a regular file,
        too large, not text or has no data rows.
    """
    file = str(path)
    path = Path(path)
    problem = file_problem(path, max_file_bytes)
    if problem is not None:
        return pd.DataFrame(), [problem]
    try:
        text = decode_text(path.read_bytes(), file)
        header = next((line for line in text.splitlines() if line.strip()), "")
        delimiter = max(_DELIMITERS, key=header.count)
        frame = read_csv_text(text, file, sep=delimiter, dtype=str, keep_default_na=False,
                              skipinitialspace=True, skip_blank_lines=True)
    except CPETError as exc:
        return pd.DataFrame(), [exc.finding]
    if frame.empty:
        return pd.DataFrame(), [Finding("empty", Severity.ERROR,
                                        "the table has a header but no rows", file=file)]
    return frame, []


def _cell_text(cell: object) -> str:
    """A cell as stripped text: ``""`` when missing, integral floats without ``.0``."""
    if cell is None or (isinstance(cell, float) and np.isnan(cell)):
        return ""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


def _column(cells: pd.Series, name: str, label: str, header: str, file: str,
            findings: list[Finding]) -> tuple[list[Any], list[str | None]]:
    """One field's values per row (None when missing or unusable) and the unusable texts."""
    texts = [_cell_text(cell) for cell in cells]
    if name == "sex":
        values = [SEXES.get(text.casefold()) if text else None for text in texts]
        bad = [i for i, text in enumerate(texts) if text and values[i] is None]
        if bad:
            findings.append(Finding(
                "non-numeric", Severity.WARNING,
                f"{len(bad)} cell(s) are not m, f, w, male or female and were left missing; "
                f"the first is {texts[bad[0]]!r}", file=file, column=label, row=bad[0] + 1))
        return values, [texts[i] if i in bad else None for i in range(len(texts))]
    unit = FIELD_COLUMNS[header][1]
    parsed = [parse_number_with_unit(text) if text else (np.nan, None) for text in texts]
    if unit is None and name == "height_cm":  # a height column without unit: by magnitude
        bare = [number for number, cell_unit in parsed if np.isfinite(number) and not cell_unit]
        unit = "m" if bare and max(bare) < HEIGHT_M_BELOW else "cm"
    low, high = PLAUSIBLE[name]
    values: list[Any] = []
    not_numbers, unitless, implausible = [], [], []
    for i, (number, cell_unit) in enumerate(parsed):
        key = cell_unit or unit  # a pressure header without unit: the cell must say it
        factor = CELL_UNITS[name].get(key.lower()) if key else None
        value = number * factor if factor is not None else np.nan
        if texts[i] and not np.isfinite(value):
            (unitless if key is None and np.isfinite(number) else not_numbers).append(i)
        elif np.isfinite(value) and not low <= value <= high:
            implausible.append(i)
        values.append(float(value) if np.isfinite(value) and low <= value <= high else None)
    units = ", ".join(CELL_UNITS[name])
    if not_numbers:
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{len(not_numbers)} cell(s) are not numbers (in {units}) and were left missing; "
            f"the first is {texts[not_numbers[0]]!r}", file=file, column=label,
            row=not_numbers[0] + 1))
    if unitless:
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{len(unitless)} cell(s) are numbers without a unit, and the header gives none "
            f"(a pressure may be in {units}), so they were left missing; the first is "
            f"{texts[unitless[0]]!r}: name the unit in the header (e.g. 'PB (mmHg)') or in "
            "the cell", file=file, column=label, row=unitless[0] + 1))
    if implausible:
        findings.append(Finding(
            "implausible-values", Severity.WARNING,
            f"{len(implausible)} cell(s) are outside {low:g}-{high:g}{FIELD_LABELS[name][1]} "
            f"(read in {unit or 'the unit each cell gives'}) and were left missing; the first "
            f"is {texts[implausible[0]]!r}", file=file, column=label, row=implausible[0] + 1))
    bad = set(not_numbers) | set(unitless) | set(implausible)
    return values, [texts[i] if i in bad else None for i in range(len(texts))]


def _rule(key: str, name: str) -> str | None:
    """How ``key`` matches the file name ``name`` (None when it does not)."""
    key_cf, name_cf = key.casefold(), name.casefold()
    if key_cf == name_cf:
        return "file name"
    if PurePath(key_cf).stem == PurePath(name_cf).stem:
        return "name without extension"
    runs = _DIGIT_RUN.findall(PurePath(name_cf).stem)
    if key.isascii() and key.isdigit() and len(runs) == 1 and int(runs[0]) == int(key):
        return f"number {int(key)}"
    return None


def _apply_row(row: SubjectRow, metadata: Metadata) -> str:
    """Set the row's values on ``metadata``; a sentence saying what changed and what did not."""
    changed, same, kept = [], [], []
    for name, (label, unit) in LABELS.items():
        old = getattr(metadata, name)
        if name in row.values:
            new = row.values[name]
            setattr(metadata, name, new)
            if old is None:
                changed.append(f"{label} (not in file) -> {_show(new)}{unit}")
            elif old != new:
                changed.append(f"{label} {_show(old)} -> {_show(new)}{unit}")
            else:
                same.append(f"{label} {_show(new)}{unit}")
        elif name in row.problems:
            kept.append(f"{label} cell {row.problems[name]!r} unusable, file value "
                        f"{_show(old)} kept")
    parts = [", ".join(changed) if changed else "no value changed"]
    if same:
        parts.append("same as the file: " + ", ".join(same))
    if kept:
        parts.append("; ".join(kept))
    return "; ".join(parts)


def _pressure_note(row: SubjectRow, derived: list[str]) -> str:
    """What the row's barometric pressure does, for the applied finding."""
    if PRESSURE_FIELD in row.problems:
        return f"barometric pressure cell {row.problems[PRESSURE_FIELD]!r} unusable"
    pressure = f"barometric pressure {row.values[PRESSURE_FIELD]:.1f} mmHg"
    if derived:
        return f"{pressure} (used for {', '.join(derived)})"
    return (f"{pressure} not used (the record has its end-tidal pressures, or no end-tidal "
            "fractions to derive them from)")


def _show(value: float | str | None) -> str:
    """A value for a message: numbers without trailing zeros, ``none`` when missing."""
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else value
