"""Readers for Parvo Medics TrueOne 2400 exports: the cart's CSV and its table re-saved as .xlsx.

Layout (both files; the CSV quotes text, separates cells with ``", "`` and ends with a Ctrl-Z
byte; the .xlsx has the same cells in a single sheet, named after the subject)::

    "University of British Columbia", "", ..., "(20190902T)"   institution, software build
    "Environmental Physiology Lab (MC I)"
    "*** TEMPLATE ***", 2025, "/", 10, "/", 23, 10, ":", 50, 5   test date Y/M/D, time h:m:s
    "Patient Information"
    "Name", "...", "File number", "0", "Doctor", ""            not kept
    "Age", 0, "yrs", "Sex", "M"
    "Height", 69.291336, "in", 176.000000, "cm", "Weight", 156.199997, "lb", 71.000000, "kg"
    "Test Protocol" / "Test degree" / "Exercise Device"
    "Test Environment", "Insp. temp.", ..., "Baro. pressure", 755.400024, "mmHg", ...
    "STPD to BTPS", 1.218243, "O2 Gain", ...
    "Base Values for Sampling" / "Base O2", ...
    "=========="                                             the column header starts
    "     ", ".       ", ...                                  header line 1 ("." or blank)
    "TIME ", "VO2   ", "VE     ", "VE/   ", ...               header line 2: names
    "     ", "STPD  ", "STPD   ", "VO2   ", ...               header line 3: gas conditions
    "min  ", "L/min ", "L/min  ", "BT/ST ", ...               or name continuations; last
    "----------"                                              line: units; then the data
    0.082433, 0.000000, 4.832232, 0.343089, ...              one row per breath or average
    (blank line)
    "Max VO2", 5.173391, "L/min", ...                         summary lines (not read)
    "Events"
    4.000000, "Start Exercise"                                event time (decimal min), text
    "Summary"
    ^Z

Detection is by content, never by extension: the file (for the .xlsx, the first column of
its first sheet) must have the ``==========`` line that opens the column header and at least
three of the TrueOne preamble labels ``Patient Information``, ``Test Protocol``, ``Test
Environment``, ``STPD to BTPS`` and ``Base Values for Sampling``. Neither sample contains
the words "Parvo" or "TrueOne", so the layout is what identifies the cart.

Column names are rebuilt from the header lines between ``==========`` and ``----------``:
the last line gives the unit, the lines above it the name (a part ending in ``/`` is joined
without a space: ``VE/`` + ``VO2`` = ``VE/VO2``) and the gas condition (``STPD``, ``BTPS``
or ``ATPS``); a lone ``.`` in the first line (over VO2, VCO2, VE, ...) has no documented
meaning and is not part of the name. Units are read from the unit line and converted with
:func:`~cpet_nb.io.parsing.to_canonical`, never guessed from the values; a used column whose
unit is not accepted is left out with a ``missing-channel`` finding (the time column's stops
the file).

================  =========  ========  ================  =========================================
TrueOne name      condition  unit      canonical         conversion
================  =========  ========  ================  =========================================
``TIME``                     min       ``t`` s           decimal minutes (CSV: ``0.082433``) x 60;
                                                         ``m:ss`` text (.xlsx: `` 0:31``) as clock
                                                         time (the unit line still says min)
``VO2``           STPD       L/min     ``VO2`` mL/min    x 1000
``VCO2``          STPD       L/min     ``VCO2`` mL/min   x 1000
``VE``            BTPS       L/min     ``VE`` L/min      as is (.xlsx: the first of its two VE)
``VE``            STPD       L/min     ``VE`` L/min      only when no BTPS VE exists (CSV): x the
                                                         preamble's ``STPD to BTPS`` factor, with a
                                                         ``derived-channel`` finding
``Vt``            BTPS       L         ``VT`` L          as is
``RR``                       BPM       ``RF`` 1/min      as is
``HR``                       bpm       ``HR`` 1/min      0 = not measured -> missing
``WorkR``                    W         ``load`` W        as is
``PetO2``                    mmHg      ``PetO2`` mmHg    as is (kPa converted); not in the samples
``PetCO2``                   mmHg      ``PetCO2`` mmHg   as is, unless it is FECO2 x PB (below)
================  =========  ========  ================  =========================================

Not used: ``VO2/kg`` (per kg), ``RER``, ``VE/VO2``, ``VE/VCO2``, ``FEO2`` and ``FECO2``
(mixed-expired fractions, not end-tidal), ``FATmin``, ``CHOmin``, ``TI``, ``TE``, ``RPM``,
``ExTime`` (exercise time), ``Breath#``. Neither sample has an end-tidal O2 column.

PetCO2 that is not end-tidal. The TrueOne 2400 measures gas in a mixing chamber. The .xlsx
sample's ``PetCO2`` column (15.6-28.7 mmHg) equals ``FECO2`` x PB, the mixed-expired CO2
pressure, in every row (ratio 0.999-1.017, median 1.003), whereas a true end-tidal pressure
exceeds the mixed-expired one by the dead-space dilution 1 / (1 - VD/VT) (30 % or more at
rest). cpet_nb's PetCO2 is end-tidal only, so a ``PetCO2`` column that matches ``FECO2`` %
x PB within 3 % in 90 % of the rows is left out with a ``missing-channel`` finding; one
that does not is used as labelled. So neither sample's record has PetO2 or PetCO2.

The two VE columns. cpet_nb's VE is BTPS (body temperature and pressure, saturated: the
volume the lungs move). The .xlsx sample has ``VE`` BTPS and ``VE`` STPD side by side; the
BTPS one is taken, and the STPD one is that divided by the preamble's ``STPD to BTPS``
factor (12.4567 / 10.2814 = 1.21157 in its first row, the factor is 1.2115734). The CSV
sample only has ``VE`` STPD (its ``VE/VO2`` is labelled ``BT/ST``: VE/VO2 x VO2 = VE STPD x
1.218243, the file's factor, and Vt (BTPS) x RR gives the same volume), so its VE is
multiplied by that factor; without a factor between 1 and 1.5 in the preamble VE stays
missing with a ``missing-channel`` finding. A VE without a gas condition, or ATPS, is not
used. (:func:`~cpet_nb.io.parsing.to_canonical` drops a ``STPD``/``BTPS`` suffix without
checking it, so the condition is checked here.)

Rows. Data rows run from the ``----------`` line to the first blank row (or a ``Max VO2``,
``Events`` or ``Summary`` line); a CSV row with another number of cells than the header is
skipped with a ``malformed-row`` finding. The ``Events`` block is never data: its rows are
kept as ``metadata.extra["events"]``, ``(time_s, text)`` pairs (event times are decimal
minutes in both samples, rounded to the millisecond). Trailing Ctrl-Z bytes are removed
before parsing.

Phases from events. The operator's ``Start Exercise`` / ``Stop Exercise`` (and ``Warm Up``)
events mark the phases, so they become the ``phase`` column: each row takes the phase of
the last phase event at or before it (:data:`PHASE_EVENTS`: ``Warm Up`` -> WARMUP,
``Start Exercise`` -> EXERCISE, ``Stop Exercise``, ``Start Recovery``, ``Cool Down`` ->
RECOVERY; compared without case, spaces, ``-`` or ``_``), and rows before the first have no
phase. In the CSV sample (a 5 x 5 min interval session) this gives five EXERCISE bouts
(4-9, 15-20, 24-29, 33-38 and 42-47 min) with RECOVERY between them, so that peaks and
effort criteria come from the bouts (:func:`cpet_nb.physiology.exercise.exercise_bouts_s`),
never from the pauses, where the CO2 washout raises RER; in the .xlsx sample, WARMUP from
8:30 and EXERCISE from 9:30 min. Other events (stage notes) are not phases.

Metadata: age (``yrs``), sex (``M``/``F``), height (``cm``; ``in`` x 2.54 when no cm value)
and weight. The TrueOne writes weight in both lb and kg; kg is taken, and when only lb is
given it is converted with 1 lb = 0.45359237 kg (the international pound, exact by
definition); another unit leaves the weight missing with a finding. The cart stores these
as single-precision numbers, which the exports show widened (``156.199997`` lb in the CSV
sample, 85.3499984741211 kg in the .xlsx); they are rounded to 7 significant digits, a
single's precision, which gives back the entered value (156.2, 85.35). Age 0 (a template's blank) is
not an age: missing, with a finding. The test date comes from the third line (year, month,
day: the CSV sample's 2025/10/23 fixes the order) and its time of day goes to
``extra["test_time"]``; ``extra`` also keeps the barometric pressure (mmHg), the STPD to
BTPS factor, the exercise device and the test degree. Names, file number, doctor, technician,
institution and the .xlsx sheet name (the subject's name) are never kept.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import numbers
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord, Metadata
from ._excel import is_workbook, sheet_cells, sniff_rows
from ._sniff import head_lines
from ._tabular import build_record, load_text, phases_at, positive_number, source_metadata
from .parsing import UNIT_FACTORS, parse_number, parse_number_with_unit, parse_time_s, to_canonical

DEVICE = "Parvo Medics TrueOne 2400"
#: Preamble labels (first cell of a line) of TrueOne exports; three are needed to claim a file.
PREAMBLE_LABELS = frozenset({"Patient Information", "Test Protocol", "Test Environment",
                             "STPD to BTPS", "Base Values for Sampling"})
#: Lines looked at when sniffing (the header starts at line 24 in the samples).
SNIFF_LINES = 80
#: First cells that end the data block besides a blank row.
TRAILER_LABELS = frozenset({"Max VO2", "Events", "Summary"})
GAS_CONDITIONS = frozenset({"STPD", "BTPS", "ATPS"})
#: TrueOne name (upper case) -> canonical column; VE is chosen separately (see module doc).
CHANNELS = {"TIME": "t", "VO2": "VO2", "VCO2": "VCO2", "VT": "VT", "RR": "RF", "HR": "HR",
            "WORKR": "load", "PETO2": "PetO2", "PETCO2": "PetCO2"}
#: Units (upper case) accepted for canonical columns without :data:`UNIT_FACTORS` entries.
PLAIN_UNITS = {"HR": {"BPM", "1/MIN", "/MIN", "BEATS/MIN"},
               "RF": {"BPM", "BR/MIN", "1/MIN", "/MIN", "BREATHS/MIN"},
               "load": {"W", "WATT", "WATTS"}}
#: Accepted range of the preamble's STPD to BTPS factor (sea level about 1.2).
STPD_TO_BTPS_RANGE = (1.0, 1.5)
#: Largest relative difference between PetCO2 and FECO2 x PB that marks it mixed-expired.
MIXED_EXPIRED_TOLERANCE = 0.03
LB_TO_KG = 0.45359237
IN_TO_CM = 2.54
SEXES = {"M": "male", "F": "female"}
#: Events (compared by :func:`_event_key`) that start a phase; the other events (stage
#: notes such as ``UP1 265W``, ``Cadence 95``, ``RPE (6-20) 15``) do not.
PHASE_EVENTS = {
    "warmup": "WARMUP", "startwarmup": "WARMUP",
    "startexercise": "EXERCISE", "beginexercise": "EXERCISE",
    "stopexercise": "RECOVERY", "endexercise": "RECOVERY", "startrecovery": "RECOVERY",
    "recovery": "RECOVERY", "cooldown": "RECOVERY", "startcooldown": "RECOVERY",
}


class ParvoCSVReader:
    """TrueOne 2400 CSV export: quoted preamble, 4-line column header, decimal minutes."""

    name = "parvo-csv"
    description = ("Parvo Medics TrueOne 2400 CSV (preamble, '==========' header over several "
                   "lines, '----------', data in decimal minutes, Events)")

    def sniff(self, head: bytes, path: Path) -> bool:
        firsts = [line.split(",", 1)[0].strip().strip('"').strip()
                  for line in head_lines(head, SNIFF_LINES)]
        return _is_trueone(firsts)

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        try:
            rows = list(csv.reader(text.rstrip(" \t\r\n\x1a").splitlines(),
                                   skipinitialspace=True))
        except csv.Error as exc:
            raise CPETError(Finding("unreadable", Severity.ERROR,
                                    f"could not split the lines into cells: {exc}",
                                    file=file)) from None
        width = max(map(len, rows), default=0)
        sheet = pd.DataFrame([row + [None] * (width - len(row)) for row in rows], dtype=object)
        return _record(sheet, [len(row) for row in rows], metadata, file)


class ParvoXLSXReader:
    """TrueOne table re-saved as .xlsx: the CSV's cells in the first sheet."""

    name = "parvo-xlsx"
    description = ("Parvo Medics TrueOne 2400 table re-saved as .xlsx (same layout as the CSV, "
                   "time as m:ss text)")

    def sniff(self, head: bytes, path: Path) -> bool:
        if not is_workbook(head, path):
            return False
        rows = sniff_rows(path)
        if rows is None:
            return False
        sheet = rows.iloc[:SNIFF_LINES]
        return not sheet.empty and _is_trueone([_text(cell) for cell in sheet.iloc[:, 0]])

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        data = Path(path).read_bytes()
        metadata = source_metadata(path, data, self.name)
        return _record(sheet_cells(path, 0), None, metadata, file)


READERS = (ParvoCSVReader(), ParvoXLSXReader())


def _is_trueone(first_cells: list[str]) -> bool:
    """Whether a file's first cells show the TrueOne preamble and header opening."""
    return (any(_is_rule(cell, "=") for cell in first_cells)
            and len(PREAMBLE_LABELS.intersection(first_cells)) >= 3)


@dataclass(frozen=True)
class _Column:
    """One column of the table as the header lines describe it."""

    index: int
    name: str
    condition: str
    unit: str

    @property
    def label(self) -> str:
        """The column as named in findings, e.g. ``VE STPD``."""
        return f"{self.name} {self.condition}".strip()


def _record(sheet: pd.DataFrame, widths: list[int] | None, metadata: Metadata,
            file: str) -> CPETRecord:
    """The shared table-to-record step: ``sheet`` holds the file's cells, one row per line.

    ``widths`` is the number of cells of each CSV line (None for a workbook, whose rows
    all have the sheet's width).
    """
    metadata.device = DEVICE
    findings: list[Finding] = []
    line = "line" if widths is not None else "row"
    firsts = [_text(cell) for cell in sheet.iloc[:, 0]] if not sheet.empty else []
    top = next((i for i, cell in enumerate(firsts) if _is_rule(cell, "=")), None)
    if top is None:
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                "no '==========' line opening the column header", file=file))
    rule = next((i for i in range(top + 1, len(firsts)) if _is_rule(firsts[i], "-")), None)
    if rule is None:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the column header that starts after {line} {top + 1} is not closed by a "
            "'----------' line: the file ends inside the header (truncated?)", file=file))
    if rule - top < 3:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the column header ({line}s {top + 2}-{rule}) needs name and unit lines; "
            f"it has {rule - top - 1}", file=file))
    values = sheet.to_numpy(dtype=object)
    columns = _columns(values[top + 1:rule])
    end = next((i for i in range(rule + 1, len(values))
                if firsts[i] in TRAILER_LABELS or _blank(values[i])), len(values))
    data = sheet.iloc[rule + 1:end]
    if widths is not None:
        expected = widths[rule - 1]
        good = np.array(widths[rule + 1:end]) == expected
        if not good.all():
            bad = np.flatnonzero(~good)
            findings.append(Finding(
                "malformed-row", Severity.WARNING,
                f"{len(bad)} data row(s) do not have the header's {expected} cells and were "
                f"skipped; the first has {widths[rule + 1 + int(bad[0])]}",
                file=file, row=int(bad[0]) + 1))
        data = data[good]
    if data.empty:
        raise CPETError(Finding("empty", Severity.ERROR,
                                "no data rows after the '----------' line", file=file))
    preamble = [_cells(row) for row in values[:top]]
    labelled = _labelled(preamble)
    stpd_to_btps, pb_mmhg = _stpd_to_btps(labelled), _barometric_pressure(labelled)
    frame, source_names = _channels(data, columns, stpd_to_btps, file, findings)
    if "PetCO2" in frame and pb_mmhg is not None:
        _drop_mixed_expired_co2(frame, data, columns, pb_mmhg, file, findings)
    _metadata(preamble, labelled, metadata, file, findings)
    for key, value in (("barometric_pressure_mmHg", pb_mmhg), ("stpd_to_btps", stpd_to_btps)):
        if value is not None:
            metadata.extra[key] = value
    events = _events(values[end:], firsts[end:])
    if events:
        metadata.extra["events"] = events
    phase_starts = [(time_s, PHASE_EVENTS[_event_key(text)]) for time_s, text in events
                    if _event_key(text) in PHASE_EVENTS]
    if phase_starts:
        frame["phase"] = phases_at(frame["t"].to_numpy(), phase_starts)
    frame = frame[[c for c in CANONICAL_UNITS if c in frame]]
    return build_record(frame, metadata, source_names, findings, file=file)


def _columns(header: np.ndarray) -> list[_Column]:
    """Columns from the header lines (the last gives units); unnamed columns are left out."""
    columns = []
    for index in range(header.shape[1]):
        parts = [_text(cell) for cell in header[:-1, index]]
        parts = [part for part in parts if part not in ("", ".")]
        condition = next((p.upper() for p in parts if p.upper() in GAS_CONDITIONS), "")
        name = ""
        for part in (p for p in parts if p.upper() not in GAS_CONDITIONS):
            name += part if not name or name.endswith("/") else f" {part}"
        if name:
            columns.append(_Column(index, name, condition, _text(header[-1, index])))
    return columns


def _channels(data: pd.DataFrame, columns: list[_Column], stpd_to_btps: float | None,
              file: str, findings: list[Finding]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Canonical columns in canonical units, and their names in the file."""
    frame = pd.DataFrame(index=range(len(data)))
    source_names: dict[str, str] = {}
    time = next((c for c in columns if c.name.upper() == "TIME"), None)
    if time is None:
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                "the column header has no TIME column", file=file))
    cells = data.iloc[:, time.index].reset_index(drop=True)
    try:
        frame["t"] = parse_time_s(_plain_numbers(cells), unit=time.unit)
    except ValueError:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"TIME unit {time.unit!r} is not a time unit ({', '.join(UNIT_FACTORS['t'])})",
            file=file, column=time.label)) from None
    _report_unread(frame["t"], cells, time.label, file, findings)
    source_names["t"] = time.label
    for column in columns:
        canonical = CHANNELS.get(column.name.upper())
        if canonical in (None, "t") or canonical in frame:
            continue
        values = _numbers(data, column, file, findings)
        converted = _convert(values, canonical, column, file, findings)
        if converted is not None:
            frame[canonical] = converted
            source_names[canonical] = column.label
    ve = _ventilation(data, columns, stpd_to_btps, file, findings)
    if ve is not None:
        frame["VE"], source_names["VE"] = ve
    return frame, source_names


def _ventilation(data: pd.DataFrame, columns: list[_Column], stpd_to_btps: float | None,
                 file: str, findings: list[Finding]) -> tuple[pd.Series, str] | None:
    """VE (L/min BTPS): the BTPS column, else the STPD one x the preamble factor, else None."""
    candidates = [c for c in columns if c.name.upper() == "VE"]
    if not candidates:
        return None
    by_condition = {}
    for column in candidates:
        by_condition.setdefault(column.condition, column)
    column = by_condition.get("BTPS") or by_condition.get("STPD")
    if column is None:
        findings.append(Finding(
            "missing-channel", Severity.WARNING,
            f"VE left missing: its column is labelled {candidates[0].condition or 'without'} "
            "gas condition, and only BTPS or STPD (with the STPD to BTPS factor) is used",
            file=file, column=candidates[0].label))
        return None
    values = _convert(_numbers(data, column, file, findings), "VE", column, file, findings)
    if values is None or column.condition == "BTPS":
        return None if values is None else (values, column.label)
    if stpd_to_btps is None:
        findings.append(Finding(
            "missing-channel", Severity.WARNING,
            "VE left missing: the file gives VE at STPD only, and the preamble has no STPD to "
            f"BTPS factor between {STPD_TO_BTPS_RANGE[0]:g} and {STPD_TO_BTPS_RANGE[1]:g} "
            "to convert it to BTPS", file=file, column=column.label))
        return None
    findings.append(Finding(
        "derived-channel", Severity.INFO,
        f"VE (L/min BTPS) = VE STPD x {stpd_to_btps}, the STPD to BTPS factor in the file's "
        "preamble (the file has no BTPS VE column)", file=file, column="VE"))
    return values * stpd_to_btps, f"{column.label} x STPD to BTPS"


def _numbers(data: pd.DataFrame, column: _Column, file: str,
             findings: list[Finding]) -> pd.Series:
    """A column's cells as numbers; text that is not a number is missing, with a finding."""
    cells = data.iloc[:, column.index].reset_index(drop=True)
    values = parse_number(_plain_numbers(cells))
    _report_unread(values, cells, column.label, file, findings)
    return values


def _plain_numbers(cells: pd.Series) -> pd.Series:
    """``cells`` as float when every cell is a plain finite number (a fast path for the CSV's
    text cells, which the parsers would read the same way); else ``cells`` unchanged."""
    try:
        values = pd.to_numeric(cells, errors="raise")
    except (ValueError, TypeError):
        return cells
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return cells
    values = values.astype(float)
    return values if np.isfinite(values.to_numpy()).all() else cells


def _report_unread(values: pd.Series, cells: pd.Series, label: str, file: str,
                   findings: list[Finding]) -> None:
    """A ``non-numeric`` finding when non-empty cells could not be read."""
    if not values.isna().any():
        return
    filled = cells.map(lambda cell: _text(cell) != "" if isinstance(cell, str)
                       else not pd.isna(cell))
    bad = values.isna().to_numpy() & filled.to_numpy(dtype=bool)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{int(bad.sum())} cell(s) could not be read and were left missing; the first is "
            f"{cells.iloc[first]!r}", file=file, column=label, row=first + 1))


def _convert(values: pd.Series, canonical: str, column: _Column, file: str,
             findings: list[Finding]) -> pd.Series | None:
    """``values`` in the canonical unit, or None (with a finding) when the unit is unknown."""
    if canonical in UNIT_FACTORS:
        try:
            return to_canonical(values, canonical, column.unit)
        except ValueError as exc:
            reason = str(exc)
    elif column.unit.upper() in PLAIN_UNITS[canonical]:
        return values
    else:
        reason = (f"unit {column.unit!r} is not accepted; accepted units: "
                  f"{', '.join(sorted(PLAIN_UNITS[canonical]))}")
    findings.append(Finding("missing-channel", Severity.WARNING,
                            f"{canonical} left missing: {reason}", file=file,
                            column=column.label))
    return None


def _events(rows: np.ndarray, firsts: list[str]) -> list[tuple[float, str]]:
    """``(time_s, text)`` of the rows of the ``Events`` block (times in decimal minutes)."""
    if "Events" not in firsts:
        return []
    start = firsts.index("Events") + 1
    end = next((i for i in range(start, len(rows)) if _blank(rows[i])), len(rows))
    block = rows[start:end]
    if not len(block):
        return []
    times = parse_time_s(pd.Series(list(block[:, 0]), dtype=object), unit="min")
    return [(round(float(t), 3), _text(row[1]) if len(row) > 1 else "")
            for t, row in zip(times, block, strict=True) if np.isfinite(t)]


def _event_key(text: str) -> str:
    """An event's text compared as a phase marker: lower case, no spaces, ``-`` or ``_``."""
    return re.sub(r"[\s_\-]", "", text).lower()


def _labelled(preamble: list[list[object]]) -> dict[str, list[object]]:
    """Each preamble label (text cell) -> the cells after it on its line (first occurrence)."""
    labelled: dict[str, list[object]] = {}
    for cells in preamble:
        for i, cell in enumerate(cells):
            if isinstance(cell, str) and cell and cell not in labelled:
                labelled[cell] = cells[i + 1:]
    return labelled


def _stpd_to_btps(labelled: dict[str, list[object]]) -> float | None:
    """The preamble's STPD to BTPS factor when it is within :data:`STPD_TO_BTPS_RANGE`."""
    cells = labelled.get("STPD to BTPS") or [None]
    factor = _number(cells[0])
    low, high = STPD_TO_BTPS_RANGE
    return _single(factor) if low <= factor <= high else None


def _barometric_pressure(labelled: dict[str, list[object]]) -> float | None:
    """PB (mmHg) from the preamble's ``Baro. pressure`` cells, when given in mmHg."""
    cells = labelled.get("Baro. pressure", [])
    if len(cells) < 2 or _text(cells[1]).lower() != "mmhg":
        return None
    pb = _number(cells[0])
    return _single(pb) if np.isfinite(pb) and pb > 0 else None


def _drop_mixed_expired_co2(frame: pd.DataFrame, data: pd.DataFrame, columns: list[_Column],
                            pb_mmhg: float, file: str, findings: list[Finding]) -> None:
    """Drop a ``PetCO2`` column that is the mixed-expired CO2 pressure FECO2 x PB.

    A true end-tidal CO2 pressure exceeds the mixed-expired one by the dead-space dilution,
    1 / (1 - VD/VT): 30 % or more at rest and still about 10 % at peak exercise. When 90 %
    of the rows are within :data:`MIXED_EXPIRED_TOLERANCE` of FECO2 x PB the column cannot
    be end-tidal, and cpet_nb's PetCO2 is end-tidal only.
    """
    feco2 = next((c for c in columns if c.name.upper() == "FECO2" and c.unit == "%"), None)
    if feco2 is None:
        return
    mixed = parse_number(data.iloc[:, feco2.index].reset_index(drop=True)) / 100 * pb_mmhg
    ratio = (frame["PetCO2"] / mixed).to_numpy()
    ratio = ratio[np.isfinite(ratio)]
    if not len(ratio) or np.mean(np.abs(ratio - 1) <= MIXED_EXPIRED_TOLERANCE) < 0.9:
        return
    del frame["PetCO2"]
    findings.append(Finding(
        "missing-channel", Severity.WARNING,
        f"PetCO2 left missing: the column labelled PetCO2 equals FECO2 x PB ({pb_mmhg:g} mmHg), "
        f"the mixed-expired CO2 pressure (median ratio {np.median(ratio):.3f} over {len(ratio)} "
        "rows); an end-tidal pressure exceeds it by the dead-space dilution, so it is not "
        "end-tidal", file=file, column="PetCO2"))


def _metadata(preamble: list[list[object]], labelled: dict[str, list[object]],
              metadata: Metadata, file: str, findings: list[Finding]) -> None:
    """Subject, test date and test conditions from the preamble (no names or IDs)."""
    age = labelled.get("Age")
    if age:
        metadata.age_years = positive_number(_number_text(age[0]), "[preamble] Age", file,
                                             findings)
    sex = _text(labelled["Sex"][0]) if labelled.get("Sex") else ""
    if sex:
        metadata.sex = SEXES.get(sex.upper())
        if metadata.sex is None:
            findings.append(Finding("non-numeric", Severity.WARNING,
                                    f"[preamble] Sex = {sex!r} is not M or F; left missing",
                                    file=file, column="Sex"))
    metadata.height_cm = _measure(labelled, "Height", {"cm": 1.0, "in": IN_TO_CM}, file,
                                  findings)
    metadata.weight_kg = _measure(labelled, "Weight", {"kg": 1.0, "lb": LB_TO_KG, "lbs": LB_TO_KG},
                                  file, findings)
    for cells in preamble:
        if len(cells) >= 10 and cells[2] == "/" and cells[4] == "/" and cells[7] == ":":
            _test_date(cells, metadata, file, findings)
            break
    for label, key in (("Exercise Device", "exercise_device"), ("Test degree", "test_degree")):
        value = _text(labelled[label][0]) if labelled.get(label) else ""
        if value:
            metadata.extra[key] = value


def _measure(labelled: dict[str, list[object]], label: str, units: dict[str, float],
             file: str, findings: list[Finding]) -> float | None:
    """Height or weight: ``number, unit`` pairs after the label, the first unit of ``units``
    preferred; other units or no positive number leave it missing, with a finding."""
    cells = labelled.get(label)
    if not cells or all(_text(cell) == "" for cell in cells[:2]):
        return None
    pairs = []
    for number, unit in zip(cells[0::2], cells[1::2], strict=False):
        value = _number(number)
        if not (isinstance(unit, str) and np.isfinite(value)):
            break
        pairs.append((value, unit.strip()))
    known = {unit.lower(): value for value, unit in pairs if unit.lower() in units}
    for unit, factor in units.items():
        if unit in known:
            if known[unit] > 0:
                return _single(known[unit]) * factor
            break
    found = ", ".join(f"{value:g} {unit!r}" for value, unit in pairs) or repr(cells[0])
    findings.append(Finding(
        "non-numeric", Severity.WARNING,
        f"[preamble] {label} = {found}: no positive value in {' or '.join(units)}; left missing",
        file=file, column=label))
    return None


def _test_date(cells: list[object], metadata: Metadata, file: str,
               findings: list[Finding]) -> None:
    """Test date (Y/M/D) and time of day from the preamble's third line."""
    parts = [_number(cells[i]) for i in (1, 3, 5, 6, 8, 9)]
    try:
        if not all(np.isfinite(p) and p == int(p) for p in parts):
            raise ValueError
        year, month, day, hour, minute, second = (int(p) for p in parts)
        metadata.test_date = dt.date(year, month, day).isoformat()
        metadata.extra["test_time"] = dt.time(hour, minute, second).isoformat()
    except ValueError:
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            "the preamble's date line "
            f"{' '.join(_text(c) or _number_text(c) for c in cells[1:10])!r} is not a valid "
            "year/month/day hour:minute:second; test date left missing",
            file=file, column="test date"))


def _cells(row: np.ndarray) -> list[object]:
    """A preamble row: text stripped, numbers kept, trailing empty cells dropped."""
    cells = [cell.strip() if isinstance(cell, str) else
             (None if cell is None or (isinstance(cell, float) and math.isnan(cell)) else cell)
             for cell in row]
    while cells and cells[-1] in (None, ""):
        cells.pop()
    return cells


def _text(cell: object) -> str:
    """A cell as stripped text; '' for empty cells and for numbers."""
    return cell.strip() if isinstance(cell, str) else ""


def _number(cell: object) -> float:
    """A metadata cell as a number (text without a unit allowed), else NaN."""
    if isinstance(cell, numbers.Real) and not isinstance(cell, bool):
        return float(cell)
    if isinstance(cell, str):
        value, unit = parse_number_with_unit(cell)
        return value if unit is None else float("nan")
    return float("nan")


def _number_text(cell: object) -> str:
    """A cell as text for :func:`positive_number` (numbers written with ``repr``)."""
    return cell if isinstance(cell, str) else repr(_number(cell))


def _single(value: float) -> float:
    """A single-precision value widened to double, back to the 7 significant digits it holds."""
    return float(f"{value:.7g}")


def _blank(row: np.ndarray) -> bool:
    """Whether every cell of a row is empty or blank text."""
    return all((not cell.strip()) if isinstance(cell, str) else pd.isna(cell) for cell in row)


def _is_rule(cell: str, char: str) -> bool:
    """Whether a cell is a rule line of ``char`` (``==========`` or ``----------``)."""
    return len(cell) >= 5 and cell == char * len(cell)
