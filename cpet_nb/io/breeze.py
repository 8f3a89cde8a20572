"""Reader for MGC Diagnostics Breeze (BreezeSuite) tab-separated text exports.

Layout (tab-separated, CRLF, ASCII/Latin-1; the sample)::

    Time  Ex Time  Time (Clock)  Speed  Grade  VO2   VO2  VCO2  RER   RR  Vt BTPS  VE BTPS ...
    0:13           13:25:50      0.0    0.4    13.2  985  766   0.78  29  833      24.1    ...
    0:54  0:01     13:26:31      1.9    1.1    1.2   92   112   1.22  23  473      10.7    ...

One header row, then one row per breath; the sample has no units row. The header is the
first line whose tab-separated labels include ``Time``, a VO2 label (``VO2``, ``VO2/kg``,
``VO2 (<unit>)``) and one of :data:`MARKERS`
(``Ex Time``, ``Time (Clock)``, ``VE BTPS``, ``Vt BTPS``); lines before it are read as
``<label>:<TAB><value>`` metadata (English labels, see
:func:`~cpet_nb.io._delimited.preamble_metadata`; the sample has none). Labels are compared
case-insensitively; a label may carry its unit, ``VO2 (L/min)`` or ``Speed [km/h]``, which
then replaces the unit below. Units are converted with
:func:`~cpet_nb.io.parsing.to_canonical`.

Units row. Exports set up to write units have a second header line of units under the
labels (``m:ss``, ``MPH``, ``%``, ``ml/kg/min``, ``ml/min``, ...): the line right after the
header is that row when it is not blank, its ``Time`` cell is not a time and none of its
cells is a number. Its units replace Breeze's (a unit in the label still comes first), so
``Speed`` in ``MPH`` is read and converted, a per-kg unit marks a ``VO2`` column as per kg
and an absolute one as absolute, and a unit cpet_nb does not accept leaves that channel out
with an ``unknown-column`` warning naming the unit (``t`` and ``VO2``: ``unreadable``). The
row is never read as data.

Units. Without a units row Breeze writes no units, so each label has the unit Breeze
displays for it (:data:`LABELS`), and where the file allows it a relation between columns
confirms it (never the size of the numbers alone):

==============  ==========  ============  ===============================================
Breeze label    canonical   unit          confirmed by
==============  ==========  ============  ===============================================
``Time``        ``t``       m:ss / h:mm:  clock text only (plain numbers have no unit and
                            ss clock      are reported); from the start of recording
``VO2`` (two)   ``VO2``     mL/min        see "Two VO2 columns" below
``VCO2``        ``VCO2``    mL/min        VCO2 / VO2 = ``RER`` (same unit as VO2)
``VE BTPS``     ``VE``      L/min
``Vt BTPS``     ``VT``      mL            VE = Vt x RR / 1000 (median within 10 %);
                                          when it does not hold, VT is left out (only
                                          when the file states no unit for Vt)
``RR``          ``RF``      1/min
``HR``          ``HR``      1/min         0 -> missing
``PETO2``       ``PetO2``   mmHg
``PETCO2``      ``PetCO2``  mmHg
``Grade``       ``grade``   %
``Work``,       ``load``    W
``Watts``
``Speed``       ``speed``   from the      Breeze writes mph or km/h as the lab set it up
                            label or the  and the export does not say which: a bare
                            units row     ``Speed`` is left out (``unknown-column``)
==============  ==========  ============  ===============================================

Not used: ``Ex Time`` (exercise clock: ``extra["exercise_start_s"]`` is ``Time - Ex Time``
at its first value, 53 s in the sample), ``Time (Clock)`` (wall clock), ``RER`` (used only
for the check above), ``BR`` (breathing reserve), and mixed-expired gas (``PEO2``,
``PECO2``, ``FEO2``, ``FECO2``), which is never taken for ``PetO2``/``PetCO2``.

Two VO2 columns. Breeze labels both oxygen uptake per kg (mL/min/kg) and absolute oxygen
uptake ``VO2``; the sample has per kg first. A column whose label says ``/kg`` or carries a
per-kg unit is per kg; one whose label carries mL/min or L/min is absolute. For bare
``VO2`` labels the absolute one is identified by two relations, both of which must hold:

1. absolute = per kg x body mass in every row: the ratio of the two columns is the same
   in at least 95 % of rows (within the rounding of the per-kg column) and, with the
   absolute column in mL/min, is a body mass of 20-250 kg; when the preamble gives the
   weight, the ratio must match it within 3 %;
2. when the file has ``VCO2`` and ``RER``: ``VCO2 / VO2 = RER`` (median within 3 %) for the
   absolute column.

A single bare ``VO2`` is absolute when relation 1 holds with a ``/kg`` column (and relation
2 does not fail), or, without a ``/kg`` column, when relation 2 holds. When the columns
cannot be told apart this way (more than two, relations that fail or cannot be checked),
the file is refused with an ``unreadable`` finding rather than guessed. The ratio is kept
as ``extra["body_mass_kg_implied"]`` (74.8 kg in the sample): derived, not a stated
weight, so ``weight_kg`` stays missing.

Cells. Blank cells (the sample's ``Ex Time`` is a space before exercise) and ``-`` markers
are missing, never 0; other text is missing with a ``non-numeric`` finding; rows with the
wrong number of fields are skipped (``malformed-row``). Times have whole seconds, so two
breaths can share a time: :func:`~cpet_nb.io._tabular.build_record` keeps the first
(``duplicate-time``; 6 of 672 rows in the sample).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord
from ._delimited import (
    decimals,
    implied_body_mass,
    plain_numbers,
    preamble_metadata,
    read_channel,
    report_text_cells,
    split_rows,
)
from ._sniff import head_lines
from ._tabular import build_record, load_text
from .parsing import parse_time_s, to_canonical

#: Breeze label -> (canonical column, the unit Breeze displays; None: only from the label).
LABELS: dict[str, tuple[str, str | None]] = {
    "Time": ("t", ""),
    "VCO2": ("VCO2", "mL/min"),
    "VE BTPS": ("VE", "L/min"),
    "VE": ("VE", "L/min"),
    "Vt BTPS": ("VT", "mL"),
    "Vt": ("VT", "mL"),
    "RR": ("RF", "1/min"),
    "HR": ("HR", "1/min"),
    "PETO2": ("PetO2", "mmHg"),
    "PETCO2": ("PetCO2", "mmHg"),
    "Grade": ("grade", "%"),
    "Work": ("load", "W"),
    "Watts": ("load", "W"),
    "Speed": ("speed", None),
}
#: Labels that are never read as a channel (lower case), whatever they look like.
NOT_USED = frozenset({"ex time", "time (clock)", "rer", "br", "peo2", "peco2", "feo2",
                      "feco2"})
#: The oxygen uptake label (per kg or absolute) and labels that say per kg.
VO2_LABEL = "VO2"
PER_KG_LABELS = ("VO2/kg", "VO2 / kg", "VO2 per kg")
#: Per-kg units a ``VO2 (<unit>)`` label may carry (lower case, no spaces or brackets).
PER_KG_UNITS = frozenset({"ml/kg/min", "ml/min/kg", "ml/kg·min", "ml·kg-1·min-1"})
#: Labels of which the header needs one (besides Time and VO2) to be a Breeze export.
MARKERS = ("Ex Time", "Time (Clock)", "VE BTPS", "Vt BTPS")
#: Largest median relative difference between VCO2 / VO2 and RER (relation 2).
RER_TOLERANCE = 0.03
#: Largest relative difference between the implied body mass and a stated weight.
WEIGHT_TOLERANCE = 0.03

_LABEL_UNIT = re.compile(r"\A(?P<name>.*?)\s*[(\[](?P<unit>[^)\]]*)[)\]]\s*\Z")
_FOLDED = {label.casefold(): item for label, item in LABELS.items()}


class BreezeReader:
    """MGC Diagnostics Breeze export: tab-separated, ``Time``, ``VO2`` and Breeze labels."""

    name = "breeze"
    description = ("MGC Diagnostics Breeze tab-separated text (Time, Ex Time, VO2, VO2, VCO2, "
                   "... without a units row)")

    def sniff(self, head: bytes, path: Path) -> bool:
        return _header(head_lines(head, 60)) is not None

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        metadata.device = "MGC Diagnostics (Breeze)"
        findings: list[Finding] = []
        lines = text.splitlines()
        index = _header(lines)
        if index is None:
            raise CPETError(Finding(
                "unreadable", Severity.ERROR,
                f"no tab-separated header row with Time, VO2 and one of {', '.join(MARKERS)}",
                file=file))
        preamble_metadata(lines[:index], "EN", metadata, file, findings)
        header = [field.strip() for field in lines[index].split("\t")]
        units_row = _units_row(lines[index + 1] if index + 1 < len(lines) else "", header)
        data_lines = lines[index + 1 + (units_row is not None):]
        cells, rows = split_rows(data_lines, len(header), file, findings)
        frame = pd.DataFrame(index=range(len(cells)))
        source_names: dict[str, str] = {}
        stated: set[str] = set()  # canonical columns whose unit the file states
        vo2_columns: list[tuple[int, str | None]] = []  # (position, unit or "per kg")
        for position, label in enumerate(header):
            canonical, unit, where = _unit(label, units_row[position] if units_row else "")
            if canonical == "VO2":
                vo2_columns.append((position, unit))
                continue
            if canonical is None or canonical in frame:
                continue
            if unit is None:
                findings.append(Finding(
                    "unknown-column", Severity.INFO,
                    f"{label!r} has no unit in the file (Breeze writes mph or km/h as set up) "
                    "and was not read; a label such as 'Speed (km/h)' or a units row would "
                    "be", file=file, column=label))
                continue
            values = read_channel(cells[position], canonical, unit, label, rows, file,
                                  findings, where=where)
            if values is not None:
                frame[canonical] = values
                source_names[canonical] = label
                if where != DEFAULT_UNIT:
                    stated.add(canonical)
        if "t" not in frame:
            raise CPETError(Finding("unreadable", Severity.ERROR, "no Time column", file=file))
        rer = _optional_numbers(header, cells, "RER")
        vo2, label, extra = _vo2(header, cells, rows, vo2_columns, frame.get("VCO2"), rer,
                                 metadata.weight_kg, file, findings)
        frame["VO2"] = vo2
        source_names["VO2"] = label
        metadata.extra.update(extra)
        if "VT" not in stated:
            _check_tidal_volume(frame, source_names, file, findings)
        start = _exercise_start(header, cells, frame["t"].to_numpy())
        if start is not None:
            metadata.extra["exercise_start_s"] = start
        frame = frame[[c for c in CANONICAL_UNITS if c in frame]]
        return build_record(frame, metadata, source_names, findings, file=file)


def _header(lines: list[str]) -> int | None:
    """Index of the Breeze header row, or None."""
    markers = {m.casefold() for m in MARKERS}
    for index, line in enumerate(lines):
        if "\t" not in line:
            continue
        fields = [field.strip() for field in line.split("\t")]
        folded = {field.casefold() for field in fields}
        if ("time" in folded and folded & markers
                and any(_resolve(field)[0] == "VO2" for field in fields)):
            return index
    return None


#: Where a unit came from, as :func:`~cpet_nb.io._delimited.read_channel` words it.
LABEL_UNIT, ROW_UNIT, DEFAULT_UNIT = ("the label gives", "the units row gives",
                                      "Breeze's unit for this label is")


def _units_row(line: str, header: list[str]) -> list[str] | None:
    """The line after the header as a units row (padded to the header's length), or None
    when it is not one: a units row has no number in any cell and no time under ``Time``."""
    units = [field.strip() for field in line.split("\t")]
    units += [""] * (len(header) - len(units))
    cells = pd.Series(units[:len(header)], dtype=object)
    time = next(i for i, label in enumerate(header) if label.casefold() == "time")
    if not any(units) or np.isfinite(plain_numbers(cells)).any():
        return None
    if np.isfinite(parse_time_s(cells.iloc[[time]]).iloc[0]):
        return None
    return units[:len(header)]


def _unit(label: str, row_unit: str) -> tuple[str | None, str | None, str]:
    """(canonical, unit, where the unit comes from) of a column: the label's unit, else the
    units row's, else Breeze's; unit ``"per kg"`` for per-kg VO2."""
    canonical, unit = _resolve(label)
    if canonical is None:
        return None, None, DEFAULT_UNIT
    if unit_in_label(label):
        return canonical, unit, LABEL_UNIT
    if not row_unit:
        return canonical, unit, DEFAULT_UNIT
    if canonical == "VO2" and unit is None:  # a bare VO2: the units row says which it is
        per_kg = re.sub(r"\s", "", row_unit).lower() in PER_KG_UNITS
        return canonical, "per kg" if per_kg else row_unit, ROW_UNIT
    if canonical == "VO2":  # a per-kg label: the label decides
        return canonical, unit, LABEL_UNIT
    return canonical, row_unit, ROW_UNIT


def unit_in_label(label: str) -> bool:
    """Whether ``label`` ends with a unit in brackets (``"VO2 (L/min)"``)."""
    return label.casefold() not in NOT_USED and _LABEL_UNIT.match(label) is not None


def _resolve(label: str) -> tuple[str | None, str | None]:
    """(canonical, unit) of a header label; unit ``"per kg"`` for per-kg VO2."""
    folded = label.casefold()
    if folded in NOT_USED:
        return None, None
    if folded == VO2_LABEL.casefold():
        return "VO2", None
    if folded in {p.casefold() for p in PER_KG_LABELS}:
        return "VO2", "per kg"
    if folded in _FOLDED:
        return _FOLDED[folded]
    match = _LABEL_UNIT.match(label)
    if match is None:
        return None, None
    name, unit = match["name"].casefold(), match["unit"].strip()
    if name == VO2_LABEL.casefold() or name in {p.casefold() for p in PER_KG_LABELS}:
        per_kg = re.sub(r"\s", "", unit).lower() in PER_KG_UNITS or name != "vo2"
        return "VO2", "per kg" if per_kg else unit
    if name in _FOLDED:
        return _FOLDED[name][0], unit
    return None, None


def _optional_numbers(header: list[str], cells: pd.DataFrame, label: str) -> np.ndarray | None:
    """A column's numbers by label, without findings (used for checks only), or None."""
    folded = [field.casefold() for field in header]
    if label.casefold() not in folded:
        return None
    return plain_numbers(cells[folded.index(label.casefold())])


def _rer_holds(vo2_ml_min: np.ndarray, vco2: pd.Series | None,
               rer: np.ndarray | None) -> bool | None:
    """Whether VCO2 / VO2 = RER (relation 2), or None when the file cannot say."""
    if vco2 is None or rer is None:
        return None
    vco2 = vco2.to_numpy(dtype=float)
    usable = np.isfinite(vo2_ml_min) & np.isfinite(vco2) & np.isfinite(rer) & (vo2_ml_min > 0)
    usable &= rer > 0
    if usable.sum() < 3:
        return None
    ratio = vco2[usable] / (vo2_ml_min[usable] * rer[usable])
    return bool(np.median(np.abs(ratio - 1.0)) <= RER_TOLERANCE)


def _vo2(header: list[str], cells: pd.DataFrame, rows: np.ndarray,
         columns: list[tuple[int, str | None]], vco2: pd.Series | None,
         rer: np.ndarray | None, weight_kg: float | None, file: str,
         findings: list[Finding]) -> tuple[np.ndarray, str, dict]:
    """Absolute VO2 in mL/min, its source name and what to keep in ``extra``.

    Raises
    ------
    CPETError
        ``unreadable`` when no column is, or cannot be shown to be, absolute VO2.
    """
    def name(position: int) -> str:
        return f"{header[position]} (column {position + 1})"

    def refuse(why: str) -> CPETError:
        return CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"cannot tell which VO2 column is absolute oxygen uptake: {why}; label the "
            "columns (e.g. 'VO2 (mL/min)' and 'VO2/kg') or export only one", file=file,
            column=VO2_LABEL))

    raw = {position: plain_numbers(cells[position]) for position, _ in columns}
    per_kg = [p for p, unit in columns if unit == "per kg"]
    labelled = [(p, unit) for p, unit in columns if unit not in (None, "per kg")]
    bare = [p for p, unit in columns if unit is None]
    if labelled:
        choices = [(labelled[0][0], labelled[0][1], per_kg[0] if per_kg else None)]
    elif not bare:
        raise refuse("the file has no VO2 column" if not per_kg
                     else "only per-kg VO2 is given")
    elif len(bare) == 1:
        choices = [(bare[0], "mL/min", per_kg[0] if per_kg else None)]
    elif len(bare) == 2 and not per_kg:
        choices = [(bare[1], "mL/min", bare[0]), (bare[0], "mL/min", bare[1])]
    else:
        raise refuse(f"{len(bare)} columns are labelled only 'VO2'")

    passed, reasons = [], []
    for absolute, unit, relative in choices:
        try:
            values = to_canonical(raw[absolute], "VO2", unit).to_numpy(dtype=float)
        except ValueError as exc:
            raise refuse(str(exc)) from None
        mass = None
        if relative is not None:
            mass = implied_body_mass(values, raw[relative], 10.0 ** -decimals(cells[relative]))
            if mass is None:
                reasons.append(f"{name(absolute)} / {name(relative)} is not one body mass of "
                               "20-250 kg in every row")
                continue
            if weight_kg is not None and abs(mass - weight_kg) > WEIGHT_TOLERANCE * weight_kg:
                reasons.append(f"{name(absolute)} / {name(relative)} = {mass:.1f} kg, but the "
                               f"file gives a weight of {weight_kg:g} kg")
                continue
        rer_holds = _rer_holds(values, vco2, rer)
        if rer_holds is False or (rer_holds is None and relative is None):
            reasons.append(f"VCO2 / {name(absolute)} is not the file's RER" if rer_holds
                           is False else "there is neither a per-kg VO2 nor VCO2 and RER to "
                           f"check {name(absolute)} against")
            continue
        passed.append((absolute, unit, relative, mass, values))
    if len(passed) != 1:
        raise refuse("; ".join(reasons) if not passed else "both columns pass the checks")
    absolute, unit, relative, mass, values = passed[0]

    report_text_cells(raw[absolute], cells[absolute], name(absolute), rows, file, findings)
    extra: dict = {"vo2_columns": f"absolute: {name(absolute)} in {unit}"
                   + (f"; per kg: {name(relative)}" if relative is not None else "")}
    if mass is not None:
        extra["body_mass_kg_implied"] = round(mass, 1)
    return values, name(absolute) if len(columns) > 1 else header[absolute], extra


def _check_tidal_volume(frame: pd.DataFrame, source_names: dict[str, str], file: str,
                        findings: list[Finding]) -> None:
    """Confirm Breeze's mL for VT by VE = VT x RF; leave VT out when that does not hold.

    Only for a VT whose unit the file does not state. Without VE or RF Breeze's unit stands.
    """
    label = source_names.get("VT")
    if label is None or not {"VE", "RF"} <= set(frame.columns):
        return
    vt_l, rf, ve = (frame[c].to_numpy(dtype=float) for c in ("VT", "RF", "VE"))
    usable = np.isfinite(vt_l) & np.isfinite(rf) & np.isfinite(ve) & (vt_l > 0) & (rf > 0)
    if usable.sum() < 3:
        return
    ratio = float(np.median(ve[usable] / (vt_l[usable] * rf[usable])))  # 1 when VT is in mL
    if abs(ratio - 1.0) <= 0.1:
        return
    del frame["VT"]
    del source_names["VT"]
    findings.append(Finding(
        "unknown-column", Severity.WARNING,
        f"{label!r} was left out: with {label} in mL, VE / ({label} x RR) is {ratio:.3g} "
        "(1 expected), so its unit is not known", file=file, column=label))


def _exercise_start(header: list[str], cells: pd.DataFrame, t_s: np.ndarray) -> float | None:
    """``Time - Ex Time`` (s) at the first row with an exercise time, or None."""
    folded = [field.casefold() for field in header]
    if "ex time" not in folded:
        return None
    column = cells[folded.index("ex time")]
    clock = column.str.contains(":", regex=False).to_numpy(dtype=bool)
    ex_s = np.where(clock, parse_time_s(column).to_numpy(dtype=float), np.nan)
    usable = np.flatnonzero(np.isfinite(ex_s) & np.isfinite(t_s))
    if not len(usable):
        return None
    return float(t_s[usable[0]] - ex_s[usable[0]])


READER = BreezeReader()
