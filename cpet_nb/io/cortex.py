"""Readers for Cortex MetaSoft (Studio) exports: Excel-2003 XML spreadsheet and Excel workbook.

MetaSoft writes one sheet: subject and test data as label/value pairs at the top, a summary
table, then the breath table (header row, units row, one row per breath)::

    Stammdaten / Administrative Data        section titles (first cell of a row)
    Geschlecht | männlich                   label | value (the value cell may be merged)
    Größe      | 178 cm
    Gewicht    | 74,8kg                      decimal comma, unit glued to the number
    Startzeit  | 19.04.2019 02:49
    ...
    Kanal | Einheit | Ruhe | ...            summary table (never read as data)
    t       | Phase | V'O2/kg   | HF   | V'O2  | ...    header row
    h:mm:ss |       | ml/min/kg | /min | L/min | ...    units row
    0:00:09 | Ruhe  | 1.46      | 53   | 0.117 | ...    breath rows ('-' = no value)

Two files carry this table: the Excel-2003 XML spreadsheet (``<Workbook
xmlns="urn:schemas-microsoft-com:office:spreadsheet">``, parsed with ``defusedxml``: a file
that declares a DOCTYPE, and so could declare entities, is refused) and ``.xlsx`` (read with
:func:`~cpet_nb.io._excel.read_sheet`, values only). Both become the same grid of cells, and
:func:`_table_record` turns the grid into a record.

Finding the table. The header row is the row with a time label (``t``, ``Zeit``, ``Time``)
whose cell below is a time unit (``h:mm:ss``, ``hh:mm:ss.z``, ``mm:ss``, ``s``, ``min``) and
that has at least one label in MetaSoft's flow notation (``V'O2``, ``V'CO2``, ``V'E``). The
row below is the units row; breath rows follow it and end at the first row whose time cell is
not a time (blank row, summary or marker table). Non-empty rows after that are not read and a
``malformed-row`` finding says how many there were.

=====================  ================  ==========  ==========================================
MetaSoft label         unit (units row)  canonical   conversion
=====================  ================  ==========  ==========================================
``t``                  h:mm:ss,          ``t`` s     :func:`~.parsing.parse_time_s`: clock text
                       hh:mm:ss.z,                   (``0:00:09``, ``00:00:04,8``; ``.`` or
                       mm:ss; s, ms, min             ``,`` before the fraction); under a clock
                                                     unit a number cell is an Excel day fraction
                                                     and text without ``:`` is not a time
``V'O2``,              L/min, mL/min     ``VO2``     :func:`~.parsing.to_canonical` -> mL/min;
``V'O2 (STPD)``                                      a per-kg unit (``ml/min/kg``) is refused
``V'CO2``,             L/min, mL/min     ``VCO2``    as VO2
``V'CO2 (STPD)``
``V'E``,               L/min             ``VE``      -> L/min
``V'E (BTPS)``
``PetO2``, ``PetCO2``  mmHg, kPa         ``PetO2``,  -> mmHg
                                         ``PetCO2``
``HF``, ``HR``         /min, 1/min, bpm  ``HR``      as is; 0 = not measured -> missing
``AF``, ``BF``         /min, 1/min       ``RF``      as is
``VT``                 L, mL             ``VT``      -> L
``P``, ``WR``          W                 ``load``    as is (``W`` as a *label* is work in kcal
                                                     in the samples, not power: not read)
``v``                  km/h, m/s, mph    ``speed``   -> km/h
``Phase``              (none)            ``phase``   Ruhe/Rest -> REST; Unbelastetes Treten,
                                                     Erwärmung, Warm-up -> WARMUP; Belastung,
                                                     Exercise, Load -> EXERCISE; Erholung,
                                                     Recovery -> RECOVERY; other names missing
=====================  ================  ==========  ==========================================

Labels are matched ignoring case, surrounding spaces and the typographic apostrophe
(``V’O2``). A unit that is missing or not accepted for its channel leaves the column unused,
with an ``unknown-column`` finding: units are never guessed from magnitudes. ``V'O2/kg``,
``V'O2/HF``, ``RER``, ``FEetO2``, ``EU``, ``CHO``, ``Fett``, ``Marker``, ``t-1000`` and the
rest are not used. ``-``, ``--`` and empty cells are missing (never 0); other text in a
numeric column is missing with a ``non-numeric`` finding. A VO2 or VCO2 of exactly 0 is a
breath the cart did not measure (seen in ``metasoft_step.xlsx``, with RER 0 and FEetO2 near
inspired air) and becomes missing with a ``device-zero-missing`` finding.

=========================================  ============  =====================================
metadata label (German / English)          field         rule
=========================================  ============  =====================================
``Gewicht`` / ``Weight``                   weight_kg     number with unit kg, in the value
                                                         (``74,8kg``) or the label
                                                         (``Weight (kg)``); another or no unit
                                                         is refused with a finding
``Größe`` / ``Height``                     height_cm     unit cm (or m, x 100), same rule
``Alter`` / ``Age``                        age_years     number, optional unit Jahre/years
``Geschlecht`` / ``Sex``, ``Gender``       sex           männlich/male/m, weiblich/female/w/f
``Startzeit`` / ``Start time``,            test_date     ``dd.mm.yyyy[ hh:mm]``,
``Testdatum`` / ``Test date``                            ``yyyy-mm-dd`` or a date cell
``Geburtsdatum`` / ``Date of birth``       (age_years)   only to compute the age in completed
                                                         years at the test date when the file
                                                         has no age; never stored
``Spiroergometrie-Gerät`` / ``Device``     extra         ``device_model`` (e.g. MetaLyzer 3B)
=========================================  ============  =====================================

Names, IDs and the birth date are never kept. ``device`` is ``"Cortex"``.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord, Metadata
from ._excel import is_workbook, sheet_cells, sheet_names, sniff_rows
from ._tabular import build_record, source_metadata
from .parsing import UNIT_FACTORS, parse_number, parse_number_with_unit, parse_time_s, to_canonical

#: Namespace of Excel-2003 XML spreadsheets (SpreadsheetML 2003).
SPREADSHEET_NS = "urn:schemas-microsoft-com:office:spreadsheet"
#: Section titles only MetaSoft writes (cell text, compared ignoring case).
SECTION_TITLES = ("stammdaten", "administrative data", "patient data")
#: Labels of the time column.
TIME_LABELS = ("t", "zeit", "time")
#: Header label (normalised, lower case) -> canonical column.
CHANNELS: dict[str, str] = {
    "v'o2": "VO2", "v'o2 (stpd)": "VO2",
    "v'co2": "VCO2", "v'co2 (stpd)": "VCO2",
    "v'e": "VE", "v'e (btps)": "VE",
    "peto2": "PetO2", "petco2": "PetCO2",
    "hf": "HR", "hr": "HR",
    "af": "RF", "bf": "RF",
    "vt": "VT", "vt (btps)": "VT",
    "p": "load", "wr": "load",
    "v": "speed",
}
#: Accepted units (lower case, no spaces) of channels :data:`~.parsing.UNIT_FACTORS` lacks.
PLAIN_UNITS: dict[str, tuple[str, ...]] = {
    "HR": ("/min", "1/min", "bpm", "min-1", "min^-1"),
    "RF": ("/min", "1/min", "min-1", "min^-1"),
    "load": ("w", "watt"),
}
#: Phase names (lower case) -> canonical phase.
PHASES = {
    "ruhe": "REST", "rest": "REST",
    "unbelastetes treten": "WARMUP", "erwärmung": "WARMUP", "aufwärmen": "WARMUP",
    "warm-up": "WARMUP", "warm up": "WARMUP", "warmup": "WARMUP",
    "belastung": "EXERCISE", "exercise": "EXERCISE", "load": "EXERCISE",
    "erholung": "RECOVERY", "recovery": "RECOVERY",
}
#: Cells that mean "no value".
MISSING_MARKERS = ("", "-", "--")
#: Channels in which a stored 0 cannot be a measurement.
ZERO_IS_MISSING = ("VO2", "VCO2")
#: Metadata labels (lower case, without a unit in brackets or a trailing colon).
WEIGHT_LABELS = ("gewicht", "weight", "körpergewicht", "body weight")
HEIGHT_LABELS = ("größe", "groesse", "height", "körpergröße", "body height")
AGE_LABELS = ("alter", "age")
SEX_LABELS = ("geschlecht", "sex", "gender")
DATE_LABELS = ("startzeit", "start time", "testdatum", "test date", "datum", "date")
BIRTH_LABELS = ("geburtsdatum", "date of birth", "birth date", "birthday")
DEVICE_LABELS = ("spiroergometrie-gerät", "device", "cpet device")
SEXES = {"männlich": "male", "maennlich": "male", "male": "male", "m": "male",
         "weiblich": "female", "female": "female", "w": "female", "f": "female"}
#: Bytes of an XML file searched for MetaSoft's cells when sniffing.
XML_SNIFF_BYTES = 1 << 20
#: Excel's sheet size, the largest row and column an XML spreadsheet may address.
MAX_ROWS, MAX_COLUMNS = 1_048_576, 16_384

_CLOCK_UNIT = re.compile(r"\A(?:h{1,2}:)?mm:ss(?:[.,](?:z+|f+|s+|ms))?\Z")
_LABEL_UNIT = re.compile(r"\A(?P<label>.*?)\s*[(\[]\s*(?P<unit>[^)\]]+?)\s*[)\]]\Z")
_DOTTED_DATE = re.compile(r"\A(\d{1,2})\.(\d{1,2})\.(\d{4})(?:\s|\Z)")
_ISO_DATE = re.compile(r"\A(\d{4})-(\d{2})-(\d{2})(?:[T\s]|\Z)")
_XML_MARKERS = tuple(f">{text}<".encode() for text in (
    "Stammdaten", "Administrative Data", "Patient data", "V'O2", "V&apos;O2", "V’O2",
    "V'O2 (STPD)"))
_Q = "{" + SPREADSHEET_NS + "}"


#: ``metadata.device`` of every Cortex record.
DEVICE = "Cortex"

class CortexXMLReader:
    """MetaSoft Excel-2003 XML spreadsheet (``<Workbook xmlns="urn:...:spreadsheet">``)."""

    name = "cortex-xml"
    description = ("Cortex MetaSoft Excel-2003 XML spreadsheet (Stammdaten / Administrative "
                   "Data, breath table with t and V'O2)")

    def sniff(self, head: bytes, path: Path) -> bool:
        if SPREADSHEET_NS.encode() not in head or b"Workbook" not in head:
            return False
        if any(marker in head for marker in _XML_MARKERS):
            return True
        try:  # MetaSoft's cells may come after long style sections: look further
            with open(path, "rb") as fh:
                blob = fh.read(XML_SNIFF_BYTES)
        except OSError:
            return False
        return any(marker in blob for marker in _XML_MARKERS)

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        data = Path(path).read_bytes()
        metadata = source_metadata(path, data, self.name, device=DEVICE)
        sheets = _xml_sheets(data, file)
        for grid in sheets:
            header = _find_header(grid)
            if header is not None:
                return _table_record(grid, header, metadata, file)
        raise _no_table(file, f"none of its {len(sheets)} worksheet(s)")


class CortexExcelReader:
    """MetaSoft export saved as an Excel workbook (.xlsx)."""

    name = "cortex-xlsx"
    description = ("Cortex MetaSoft Excel workbook (.xlsx; breath table with t, units row and "
                   "V'O2)")

    def sniff(self, head: bytes, path: Path) -> bool:
        if not is_workbook(head, path):
            return False
        try:
            names = sheet_names(path)
        except CPETError:
            return False
        for sheet in names:
            grid = sniff_rows(path, sheet)
            if grid is not None and (_has_section_title(grid) or _find_header(grid) is not None):
                return True
        return False

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        metadata = source_metadata(path, Path(path).read_bytes(), self.name, device=DEVICE)
        names = sheet_names(path)
        for sheet in names:
            grid = sheet_cells(path, sheet)
            header = _find_header(grid)
            if header is not None:
                metadata.extra["sheet"] = str(sheet)
                return _table_record(grid, header, metadata, file)
        raise _no_table(file, f"none of its {len(names)} sheet(s)")


XML_READER = CortexXMLReader()
XLSX_READER = CortexExcelReader()
#: Both readers, for :func:`~cpet_nb.io.registry.readers`.
READERS = (XML_READER, XLSX_READER)


# --- reading the files into grids ---------------------------------------------------------

def _no_table(file: str, where: str) -> CPETError:
    return CPETError(Finding(
        "unreadable", Severity.ERROR,
        f"no MetaSoft breath table in {where}: expected a header row with the time label "
        f"'t' and V'O2/V'CO2/V'E labels, and a units row below it with a time unit such as "
        f"'h:mm:ss'", file=file))


def _xml_sheets(data: bytes, file: str) -> list[pd.DataFrame]:
    """Each worksheet of an Excel-2003 XML spreadsheet as a grid (see :func:`_grid`)."""
    try:
        root = fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"refused: the XML has a DOCTYPE declaration ({type(exc).__name__}), where entities "
            "could be declared; MetaSoft spreadsheets have none, and entity expansion and "
            "external entities are never processed", file=file)) from None
    except ParseError as exc:
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the XML is not well-formed (truncated or damaged file?): {exc}",
            file=file)) from None
    if root.tag != _Q + "Workbook":
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the XML root element is {root.tag!r}, not an Excel-2003 spreadsheet Workbook",
            file=file))
    sheets = []
    for worksheet in root.findall(_Q + "Worksheet"):
        table = worksheet.find(_Q + "Table")
        if table is not None:
            sheets.append(_xml_table(table, file))
    return sheets


def _xml_table(table, file: str) -> pd.DataFrame:
    """One ``<Table>``'s cells at their sheet positions (``ss:Index``, ``ss:MergeAcross``)."""
    rows: list[dict[int, object]] = []
    numbers: list[int] = []
    row_number = -1
    for row in table.findall(_Q + "Row"):
        row_number = _position(row, row_number, MAX_ROWS, "row", file)
        cells: dict[int, object] = {}
        column = -1
        for cell in row.findall(_Q + "Cell"):
            column = _position(cell, column, MAX_COLUMNS, "column", file)
            value = _xml_value(cell.find(_Q + "Data"))
            if value is not None:
                cells[column] = value
            merge = cell.get(_Q + "MergeAcross", "0")
            try:
                column += int(merge)
            except ValueError:
                raise _bad_index(file, "MergeAcross", merge) from None
            if int(merge) < 0 or column >= MAX_COLUMNS:
                raise _bad_index(file, "MergeAcross", merge,
                                 f"must be 0 or more and end within {MAX_COLUMNS:,} columns")
        rows.append(cells)
        numbers.append(row_number)
    grid = pd.DataFrame(rows, index=numbers, dtype=object)
    return grid.reindex(columns=sorted(grid.columns))


def _position(element, previous: int, limit: int, what: str, file: str) -> int:
    """0-based position of a row or cell: its ``ss:Index`` (1-based), else the next one."""
    index = element.get(_Q + "Index")
    if index is None:
        return previous + 1
    try:
        position = int(index) - 1
    except ValueError:
        raise _bad_index(file, "Index", index) from None
    if not previous < position < limit:
        raise _bad_index(file, "Index", index, f"a {what} index must increase and stay "
                                               f"within {limit:,}")
    return position


def _bad_index(file: str, attribute: str, value, why: str = "not an integer") -> CPETError:
    return CPETError(Finding("unreadable", Severity.ERROR,
                             f"ss:{attribute}={value!r} in the spreadsheet XML: {why}",
                             file=file))


def _xml_value(data) -> object:
    """A ``<Data>`` element's value: float, datetime or text; None when empty."""
    if data is None:
        return None
    text = "".join(data.itertext()).strip()
    if not text:
        return None
    kind = data.get(_Q + "Type")
    if kind == "Number":
        try:
            number = float(text)
        except ValueError:
            return text
        return number if math.isfinite(number) else text
    if kind == "DateTime":
        try:
            return dt.datetime.fromisoformat(text)
        except ValueError:
            return text
    return text


# --- the grid: finding the table, reading it ----------------------------------------------

def _normalise(cell: object) -> str:
    """A text cell as a label (lower case, single spaces, straight apostrophe); "" otherwise."""
    if not isinstance(cell, str):
        return ""
    return " ".join(cell.replace("’", "'").replace("`", "'").split()).lower()


def _labels(grid: pd.DataFrame) -> np.ndarray:
    return np.array([[_normalise(cell) for cell in row] for row in grid.to_numpy(object)],
                    dtype=object).reshape(grid.shape)


def _has_section_title(grid: pd.DataFrame) -> bool:
    return bool(np.isin(_labels(grid), SECTION_TITLES).any())


def _is_time_unit(unit: str) -> bool:
    key = unit.replace(" ", "")
    return bool(_CLOCK_UNIT.match(key)) or key in {u.lower() for u in UNIT_FACTORS["t"]}


def _find_header(grid: pd.DataFrame) -> tuple[int, int] | None:
    """(row position, time column position) of the breath table's header row, or None."""
    labels = _labels(grid)
    rows = grid.index.to_numpy()
    for r, c in np.argwhere(np.isin(labels, TIME_LABELS)):
        if r + 1 >= len(rows) or rows[r + 1] != rows[r] + 1:
            continue  # the units row must be the sheet's next row
        if not _is_time_unit(labels[r + 1, c]):
            continue
        if any(label.startswith(("v'o2", "v'co2", "v'e")) for label in labels[r]):
            return int(r), int(c)
    return None


def _table_record(grid: pd.DataFrame, header: tuple[int, int], metadata: Metadata,
                  file: str) -> CPETRecord:
    """The breath table under ``header`` (and the metadata above it) as a record."""
    findings: list[Finding] = []
    header_row, time_col = header
    cells = grid.to_numpy(object)
    labels = [str(cell).strip() if isinstance(cell, str) else "" for cell in cells[header_row]]
    units = [str(cell).strip() if isinstance(cell, str) else "" for cell in cells[header_row + 1]]
    sheet_rows = grid.index.to_numpy()
    body = grid.iloc[header_row + 2:]

    seconds = _times(body.iloc[:, time_col], units[time_col])
    is_time = seconds.notna().to_numpy()
    n_rows = int(np.argmin(is_time)) if not is_time.all() else len(is_time)
    if n_rows == 0:
        raise CPETError(Finding(
            "empty", Severity.ERROR,
            f"the breath table (header in sheet row {sheet_rows[header_row] + 1}) has no rows "
            f"with a time in column {labels[time_col]!r}", file=file))
    _report_rows_after(body.iloc[n_rows:], sheet_rows[header_row + 2 + n_rows:],
                       is_time[n_rows:], labels[time_col], findings, file)
    data = body.iloc[:n_rows]

    columns: dict[str, pd.Series] = {"t": seconds.iloc[:n_rows]}
    source_names = {"t": labels[time_col]}
    for position, label in enumerate(labels):
        key = _normalise(label)
        if position == time_col or not key:
            continue
        if key == "phase":
            if "phase" not in columns:
                columns["phase"] = _phases(data.iloc[:, position], label, file, findings)
                source_names["phase"] = label
            continue
        canonical = CHANNELS.get(key)
        if canonical is None:
            continue
        if canonical in columns:
            findings.append(Finding(
                "unknown-column", Severity.INFO,
                f"a second column for {canonical} was ignored; {source_names[canonical]!r} "
                "is used", file=file, column=label))
            continue
        values = _channel(data.iloc[:, position], canonical, label, units[position], file,
                          findings)
        if values is not None:
            columns[canonical] = values
            source_names[canonical] = label

    frame = pd.DataFrame({name: columns[name] for name in CANONICAL_UNITS if name in columns})
    frame = frame.reset_index(drop=True)
    _subject(cells[:header_row], metadata, file, findings)
    return build_record(frame, metadata, source_names, findings, file=file,
                        zero_means_missing=ZERO_IS_MISSING)


def _times(values: pd.Series, unit: str) -> pd.Series:
    """Seconds from the time column; under a clock unit, text must be clock text."""
    key = unit.replace(" ", "").lower()
    if not _CLOCK_UNIT.match(key):
        return parse_time_s(values, unit=key)
    seconds = parse_time_s(values, unit="day")  # a plain number here is an Excel day fraction
    plain_text = values.map(lambda cell: isinstance(cell, str) and ":" not in cell)
    return seconds.mask(plain_text.astype(bool))


def _report_rows_after(rest: pd.DataFrame, sheet_rows: np.ndarray, is_time: np.ndarray,
                       time_label: str, findings: list[Finding], file: str) -> None:
    """A finding for non-empty rows after the breath rows (summary or marker tables)."""
    if rest.empty:
        return
    filled = np.array([any(_filled(cell) for cell in row) for row in rest.to_numpy(object)],
                      dtype=bool)
    if not filled.any():
        return
    first = int(sheet_rows[int(np.flatnonzero(filled)[0])]) + 1
    timed = int(is_time.sum())
    message = (f"{int(filled.sum())} non-empty row(s) after the breath rows (which end at "
               f"the first row without a time in column {time_label!r}), from sheet row "
               f"{first}, were not read as data")
    if timed:
        message += f"; {timed} of them have a time: is the table broken by a row without one?"
    findings.append(Finding("malformed-row", Severity.WARNING if timed else Severity.INFO,
                            message, file=file, row=first))


def _filled(cell: object) -> bool:
    if isinstance(cell, str):
        return bool(cell.strip())
    return cell is not None and not (isinstance(cell, float) and math.isnan(cell))


def _channel(values: pd.Series, canonical: str, label: str, unit: str, file: str,
             findings: list[Finding]) -> pd.Series | None:
    """A numeric column in its canonical unit, or None (with a finding) if its unit is wrong."""
    if canonical in UNIT_FACTORS:
        try:
            to_canonical([], canonical, unit)
        except ValueError as exc:
            findings.append(Finding("unknown-column", Severity.WARNING,
                                    f"not used as {canonical}: {exc}", file=file, column=label))
            return None
    elif unit.replace(" ", "").lower() not in PLAIN_UNITS[canonical]:
        findings.append(Finding(
            "unknown-column", Severity.WARNING,
            f"not used as {canonical}: unit {unit!r} is not accepted; accepted units: "
            f"{', '.join(PLAIN_UNITS[canonical])}", file=file, column=label))
        return None
    numbers = parse_number(values)
    text = values.map(lambda cell: cell.strip() if isinstance(cell, str) else cell)
    bad = (numbers.isna() & values.notna() & ~text.isin(MISSING_MARKERS)).to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{int(bad.sum())} cell(s) are not numbers and were left missing; the first is "
            f"{values.iloc[first]!r}", file=file, column=label, row=first + 1))
    if canonical in UNIT_FACTORS:
        return to_canonical(numbers, canonical, unit)
    return numbers.astype(float)


def _phases(values: pd.Series, label: str, file: str, findings: list[Finding]) -> pd.Series:
    """Canonical phase names; unknown names are missing, with one finding listing them."""
    names = values.map(_normalise)
    phases = names.map(PHASES).astype(object)
    phases = phases.where(phases.notna(), None)
    unknown = sorted({str(v).strip() for v, n in zip(values, names, strict=True)
                      if n and n not in PHASES})
    if unknown:
        findings.append(Finding(
            "unknown-column", Severity.INFO,
            f"phase name(s) {', '.join(map(repr, unknown))} are not known phases and were left "
            "missing", file=file, column=label))
    return phases


# --- subject and test data ----------------------------------------------------------------

def _subject(cells: np.ndarray, metadata: Metadata, file: str, findings: list[Finding]) -> None:
    """Weight, height, age, sex, test date and device from label/value rows above the table."""
    pairs: dict[str, tuple[str, str | None, object]] = {}
    for row in cells:
        filled = [cell for cell in row if _filled(cell)]
        if len(filled) < 2 or not isinstance(filled[0], str):
            continue
        raw = filled[0].strip().rstrip(":").strip()
        match = _LABEL_UNIT.match(raw)
        key, label_unit = (match["label"], match["unit"]) if match else (raw, None)
        pairs.setdefault(_normalise(key), (raw, label_unit, filled[1]))

    def find(labels: tuple[str, ...]) -> tuple[str, str | None, object] | None:
        return next((pairs[label] for label in labels if label in pairs), None)

    if (item := find(WEIGHT_LABELS)) is not None:
        metadata.weight_kg = _quantity(item, {"kg": 1.0}, file, findings)
    if (item := find(HEIGHT_LABELS)) is not None:
        metadata.height_cm = _quantity(item, {"cm": 1.0, "m": 100.0}, file, findings)
    if (item := find(AGE_LABELS)) is not None:
        metadata.age_years = _quantity(item, {"jahre": 1.0, "years": 1.0, "y": 1.0, "j": 1.0,
                                              "": 1.0}, file, findings)
    if (item := find(SEX_LABELS)) is not None:
        label, _, value = item
        metadata.sex = SEXES.get(_normalise(value))
        if metadata.sex is None:
            findings.append(Finding("non-numeric", Severity.WARNING,
                                    f"{label} = {value!r} is not male or female; left missing",
                                    file=file, column=label))
    test_date = None
    if (item := find(DATE_LABELS)) is not None:
        label, _, value = item
        test_date = _date(value)
        if test_date is None:
            findings.append(Finding("non-numeric", Severity.WARNING,
                                    f"{label} = {value!r} is not a date (dd.mm.yyyy or "
                                    "yyyy-mm-dd); test date left missing", file=file,
                                    column=label))
        else:
            metadata.test_date = test_date.isoformat()
    if metadata.age_years is None and test_date is not None:
        item = find(BIRTH_LABELS)
        birth = _date(item[2]) if item is not None else None
        if birth is not None:
            age = test_date.year - birth.year - ((test_date.month, test_date.day)
                                                 < (birth.month, birth.day))
            if 0 < age < 120:
                metadata.age_years = float(age)
                metadata.extra["age_from"] = "birth date and test date (completed years)"
    if (item := find(DEVICE_LABELS)) is not None and isinstance(item[2], str):
        metadata.extra["device_model"] = item[2].strip()


def _quantity(item: tuple[str, str | None, object], units: dict[str, float], file: str,
              findings: list[Finding]) -> float | None:
    """A positive number in one of ``units`` (factor to the field's unit), else a finding."""
    label, label_unit, value = item
    if isinstance(value, str):
        number, unit = parse_number_with_unit(value)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        number, unit = float(value), None
    else:
        number, unit = float("nan"), None
    unit = (unit or label_unit or "").strip().lower()
    accepted = ", ".join(u for u in units if u)
    if not (math.isfinite(number) and number > 0):
        why = "is not a positive number"
    elif unit not in units:
        why = f"has unit {unit!r}, not {accepted}" if unit else f"has no unit ({accepted})"
    else:
        return number * units[unit]
    findings.append(Finding("non-numeric", Severity.WARNING,
                            f"{label} = {value!r} {why}; left missing", file=file,
                            column=label))
    return None


def _date(value: object) -> dt.date | None:
    """A date from ``dd.mm.yyyy``, ``yyyy-mm-dd`` (time of day allowed after it) or a cell."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if match := _DOTTED_DATE.match(text):
            day, month, year = (int(g) for g in match.groups())
            return dt.date(year, month, day)
        if match := _ISO_DATE.match(text):
            year, month, day = (int(g) for g in match.groups())
            return dt.date(year, month, day)
    except ValueError:
        return None
    return None
