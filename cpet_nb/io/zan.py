"""Reader for ZAN raw exports (ZAN 600 carts): INI-like sections, ``B<n>=`` breath rows.

Layout (Latin-1, no file extension, LF or CRLF)::

    [person]                      subject: idnr, name, vorname, geschlecht, geburtstag,
    geschlecht=M                  groesse (cm), gewicht (kg, whole kg in the samples)
    ...
    [parameter]
    count=98
    P=340,1000.000000,Zeit        one line per parameter: P=<id>,<scale>,<name>
    P=339,1.000000,Last
    ...
    [Data]
    B1=1,326,0,730,...            one row per breath: a leading field (1 in every sample
    ...                           breath, meaning undocumented, not used), then one integer
                                  per P= line, in P= order
    [Start]                       phase starts in s: Rest, Warmup, Load, Recovery
    [Ergometer] / [Regression]    ergometer type code; the cart's own regression lines

A stored integer divided by its parameter's ``<scale>`` gives the value in ZAN's display
unit, so every scale is read from the file (e.g. ``Zeit`` 326 / 1000 = 0.326 s: times are
stored in ms). The file states no units; the unit after scaling is ZAN's for that name,
checked on the samples (``Zeit`` steps equal ``tin + tex`` of each breath; ``VO2`` 536 /
1000 = 0.536 L/min at rest). Parameters are found by name, as in German exports.

=================  =====  =============  ============  ==========================================
ZAN name (id)      scale  after scaling  canonical     conversion
=================  =====  =============  ============  ==========================================
``Zeit`` (340)     1000   s              ``t`` s       none (end of the breath, from recording
                                                       start)
``VO2`` (305)      1000   L/min          ``VO2``       x 1000 -> mL/min
``VCO2`` (306)     1000   L/min          ``VCO2``      x 1000 -> mL/min
``Vex`` (300)      1000   L              ``VT`` L      expired tidal volume, as is
``tin`` (308),     1000   s              ``RF`` 1/min  60 / (tin + tex)
``tex`` (301)
``Vex``, ``tin``,                        ``VE`` L/min  Vex x 60 / (tin + tex); BTPS assumed (the
``tex``                                                file does not state volume conditions)
``HR`` (310)       1      1/min          ``HR``        0 = not measured -> missing
``Last`` (339)     1      W              ``load`` W    dropped when every value is 0
``Geschw.`` (354)  1000   km/h           ``speed``     dropped when every value is 0
``Steig.`` (355)   10     %              ``grade`` %   dropped when every value is 0
``FO2et`` (342)    100    % or fraction  ``FetO2`` %   20.93 % - FO2et: in the exports, the
                                                       inspired-minus-end-tidal O2 difference
                                                       (see below)
``FCO2et`` (343)   100    % or fraction  ``FetCO2`` %  as is (x 100 when a fraction)
``FetO2``,                               ``PetO2``,    F x (PB - 47 mmHg), only once PB is known
``FetCO2``                               ``PetCO2``    (see below)
                                         mmHg
``[Start]``                              ``phase``     REST / WARMUP / EXERCISE / RECOVERY from
                                                       the phase start times (s)
=================  =====  =============  ============  ==========================================

``Vin`` (inspired volume), ``Cal``, blood pressure, blood gases, ``Rpm``, ``METS``, substrate
and ECG parameters and the rest are not used. A stored 0 in ``VO2``, ``VCO2``, ``Vex``,
``FO2et`` or ``FCO2et`` is a breath the cart did not measure (a 0 is impossible for these)
and becomes missing with a ``device-zero-missing`` finding. In the 13 samples ``Geschw.``
ramps with grade ``Steig.`` = 1 %, ``METS`` follow the ACSM running equation and ``Last`` is
proportional to body mass x speed: treadmill runs, with ``Last`` a power the software
computes, not an ergometer's load.

End-tidal fractions. ZAN writes end-tidal fractions, not pressures. A fraction column is
read as percent when any scaled value exceeds 1 (a fraction cannot), else as a fraction (and
multiplied by 100); both go to the canonical ``FetO2`` / ``FetCO2`` columns in percent of
dry gas. ``FCO2et`` is the end-tidal CO2 fraction (4-6 % in the samples: 35-41 mmHg with PB
= 760 mmHg). ``FO2et`` is not the end-tidal O2 fraction but the O2 taken up per volume of
end-tidal gas, FiO2 - FetO2, in all 13 real exports: it is 4-8 % (an end-tidal O2 fraction
of air breathing is 12-18 %), ``FCO2et / FO2et`` equals each breath's VCO2/VO2 (median ratio
1.00-1.01 in every export), and VO2 / (VE x FO2et) is 0.63-0.68: the conversion of VE from
BTPS to STPD (about 0.83) times the dilution of end-tidal gas by dead-space gas (about 0.8),
so the values are end-tidal differences, not mixed-expired ones. So ``FetO2`` = 20.93 % (dry
room air) - ``FO2et`` when the median of ``FO2et`` is below half of 20.93 %, else ``FO2et``
itself: the two readings meet only at 10.5 %, a PetO2 near 75 mmHg, far below any end-tidal
O2 of air breathing. ZAN's own ``FiO2`` parameter holds 0-1.7 after scaling in the samples,
not an inspired fraction, and is not used. The ``derived-channel`` finding on ``FetO2`` says
which reading was taken (median 5.5 % in ``zan_ramp``: FetO2 15.4 %, PetO2 110 mmHg with PB
= 760 mmHg).

End-tidal pressures follow from the fractions and the barometric pressure PB,
``P = F x (PB - 47 mmHg)`` (:mod:`cpet_nb.io.end_tidal`; ATS/ACCP Statement on
Cardiopulmonary Exercise Testing, Am J Respir Crit Care Med 2003;167:211-277). PB is taken
from a ``key=value`` line in any section whose key is one of :data:`PB_KEYS`
(case-insensitive) and whose value carries a unit (mmHg, Torr, hPa, mbar or kPa); a
pressure without a unit is not used. None of the real ZAN exports seen so far (13 tests)
stores PB, so the reader leaves PetO2 and PetCO2 missing, with a ``missing-channel`` finding
saying why; the analysis derives them when the user gives PB (a participants-table column,
else ``Settings.barometric_pressure_mmhg``), with a ``derived-channel`` finding naming it.

Metadata: sex (``geschlecht`` M/W/F), height (``groesse``, cm), weight (``gewicht``, kg).
The file has no test date and no age; names, birth date and ID are not read.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord, Metadata
from ._sniff import head_lines
from ._tabular import build_record, load_text, phases_at, positive_number
from .end_tidal import FRACTION_OF, PB_RANGE_MMHG, derive_end_tidal_pressures

#: ZAN name -> (canonical column, factor from ZAN's display unit to the canonical unit).
DIRECT: dict[str, tuple[str, float]] = {
    "Zeit": ("t", 1.0),
    "VO2": ("VO2", 1000.0),
    "VCO2": ("VCO2", 1000.0),
    "Vex": ("VT", 1.0),
    "HR": ("HR", 1.0),
    "Last": ("load", 1.0),
    "Geschw.": ("speed", 1.0),
    "Steig.": ("grade", 1.0),
}
#: Parameters used to compute RF, VE, FetO2 and FetCO2.
DERIVED_FROM = ("tin", "tex", "FO2et", "FCO2et")
#: Canonical end-tidal fraction -> the ZAN parameter it comes from.
FRACTIONS = {"FetO2": "FO2et", "FetCO2": "FCO2et"}
#: Canonical end-tidal fraction -> the pressure derived from it.
PRESSURE_OF = {fraction: pressure for pressure, fraction in FRACTION_OF.items()}
#: O2 fraction of dry room air (%), the inspired fraction assumed for ``FO2et``.
ROOM_AIR_FIO2_PCT = 20.93
#: Channels in which a stored 0 cannot be a measurement.
ZERO_IS_MISSING = ("VO2", "VCO2", "Vex", "FO2et", "FCO2et")
#: Channels kept only when at least one value is not 0.
DROP_IF_ALL_ZERO = ("load", "speed", "grade")
#: Keys (lower case) that may hold the barometric pressure.
PB_KEYS = ("pb", "pbar", "baro", "barometer", "luftdruck")
#: Factor from each accepted pressure unit (lower case) to mmHg.
PRESSURE_UNITS = {"mmhg": 1.0, "torr": 1.0, "hpa": 0.750062, "mbar": 0.750062, "kpa": 7.50062}
#: ``[Start]`` keys (phase start times, s) and the phase each starts.
PHASES = {"Rest": "REST", "Warmup": "WARMUP", "Load": "EXERCISE", "Recovery": "RECOVERY"}
SEXES = {"m": "male", "w": "female", "f": "female"}

_P_LINE = re.compile(r"^P=(\d+),([^,]*),(.*)$")
_B_LINE = re.compile(r"^B\d+=")
_PRESSURE = re.compile(r"^([0-9]+(?:[.,][0-9]+)?)\s*([A-Za-z]+)$")


class ZANReader:
    """ZAN raw export: ``[person]``/``[parameter]`` sections with ``P=`` lines."""

    name = "zan"
    description = "ZAN raw export ([person], [parameter] P=<id>,<scale>,<name>, [Data] B<n>=)"

    def sniff(self, head: bytes, path: Path) -> bool:
        lines = {line.strip() for line in head_lines(head, 200)}
        return ("[parameter]" in lines and bool(lines & {"[person]", "[Data]"})
                and any(_P_LINE.match(line) for line in lines))

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        metadata.device = "ZAN"
        findings: list[Finding] = []
        sections, parameters, rows = _split(text, file, findings)
        scaled = _scaled_columns(parameters, rows, file, findings)
        frame, source_names = _canonical(scaled, file, findings)
        pb_mmhg, pb_note = _barometric_pressure(sections)
        for fraction, name in FRACTIONS.items():
            if name in scaled:
                finding, values = _end_tidal_fraction(fraction, name, scaled[name], file)
                findings.append(finding)
                if values is not None:
                    frame[fraction] = values
                    source_names[fraction] = name
                    if pb_mmhg is None:
                        findings.append(_no_pressure(fraction, name, pb_note, file))
        phase_starts = _phase_starts(sections.get("Start", {}))
        if phase_starts:
            frame["phase"] = phases_at(frame["t"].to_numpy(),
                                       [(start_s, PHASES[key])
                                        for key, start_s in phase_starts.items()])
        frame = frame[[c for c in CANONICAL_UNITS if c in frame]]
        _person(sections.get("person", {}), metadata, file, findings)
        if phase_starts:
            metadata.extra["phase_start_s"] = phase_starts
        ergometer = sections.get("Ergometer", {}).get("Type")
        if ergometer:
            metadata.extra["ergometer_type"] = ergometer
        record = build_record(frame, metadata, source_names, findings, file=file)
        if pb_mmhg is None:
            return record
        return derive_end_tidal_pressures(record, pb_mmhg, f"the file ({pb_note})")


def _split(text: str, file: str, findings: list[Finding]
           ) -> tuple[dict[str, dict[str, str]], list[tuple[str, float]], list[tuple[int, str]]]:
    """Sections as ``key=value`` dicts, the ``P=`` parameters (name, scale) and the breath rows.

    Rows are ``(1-based data row, text after "B<n>=")``.

    Raises
    ------
    CPETError
        ``unreadable`` without a valid parameter list or a ``[Data]`` section; ``empty``
        when ``[Data]`` has no breath rows.
    """
    sections: dict[str, dict[str, str]] = {}
    parameters: list[tuple[str, float]] = []
    rows: list[tuple[int, str]] = []
    other_rows: list[int] = []
    section = ""
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            sections.setdefault(section, {})
        elif section == "Data":
            if _B_LINE.match(line):
                rows.append((len(rows) + len(other_rows) + 1, line.partition("=")[2]))
            else:
                other_rows.append(len(rows) + len(other_rows) + 1)
        elif section == "parameter" and line.startswith("P="):
            parameters.append(_parameter(line, number, file))
        else:
            key, sep, value = line.partition("=")
            if sep:
                sections.setdefault(section, {}).setdefault(key.strip(), value.strip())
    if not parameters:
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                "no P=<id>,<scale>,<name> lines in a [parameter] section",
                                file=file))
    if "Data" not in sections:
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                "no [Data] section: the file ends before the breath data "
                                "(truncated?)", file=file))
    if not rows:
        raise CPETError(Finding("empty", Severity.ERROR,
                                "the [Data] section has no B<n>= breath rows", file=file))
    if other_rows:
        findings.append(Finding(
            "malformed-row", Severity.WARNING,
            f"{len(other_rows)} line(s) in [Data] are not B<n>= breath rows and were skipped",
            file=file, row=other_rows[0]))
    return sections, parameters, rows


def _parameter(line: str, number: int, file: str) -> tuple[str, float]:
    """(name, scale) of a ``P=<id>,<scale>,<name>`` line; a bad line stops the file."""
    match = _P_LINE.match(line)
    try:
        scale = float(match.group(2)) if match else float("nan")
    except ValueError:
        scale = float("nan")
    if not (np.isfinite(scale) and scale > 0):
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"line {number} {line[:60]!r} is not P=<id>,<scale>,<name> with a positive scale, "
            "so the data columns cannot be assigned", file=file))
    return match.group(3).strip(), scale


def _scaled_columns(parameters: list[tuple[str, float]], rows: list[tuple[int, str]], file: str,
                    findings: list[Finding]) -> dict[str, np.ndarray]:
    """The used parameters (by ZAN name), divided by their scale; device zeros missing."""
    names = [name for name, _ in parameters]
    if "Zeit" not in names:
        raise CPETError(Finding("unreadable", Severity.ERROR,
                                "the [parameter] section has no Zeit (time) parameter",
                                file=file, column="Zeit"))
    expected = len(parameters) + 1  # the leading field, then one value per parameter
    split = [(row, values.split(",")) for row, values in rows]
    good = [(row, values) for row, values in split if len(values) == expected]
    bad = [(row, len(values)) for row, values in split if len(values) != expected]
    if not good:
        counts = ", ".join(str(n) for n in sorted({n for _, n in bad})[:5])
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"breath rows have {counts} values; the [parameter] section lists "
            f"{len(parameters)} parameters, so {expected} were expected", file=file))
    if bad:
        findings.append(Finding(
            "malformed-row", Severity.WARNING,
            f"{len(bad)} breath row(s) do not have the {expected} values the [parameter] "
            f"section implies and were skipped; the first has {bad[0][1]}",
            file=file, row=bad[0][0]))
    row_numbers = [row for row, _ in good]
    scaled: dict[str, np.ndarray] = {}
    for name in [*DIRECT, *DERIVED_FROM]:
        if name not in names:
            continue
        index = names.index(name) + 1
        cells = pd.Series([values[index].strip() for _, values in good])
        raw = pd.to_numeric(cells, errors="coerce").to_numpy(dtype=float)
        not_numbers = np.flatnonzero(np.isnan(raw) & (cells != "").to_numpy())
        if len(not_numbers):
            first = int(not_numbers[0])
            findings.append(Finding(
                "non-numeric", Severity.WARNING,
                f"{len(not_numbers)} cell(s) are not numbers and were left missing; the first "
                f"is {cells[first]!r}", file=file, column=name, row=row_numbers[first]))
        values = raw / parameters[index - 1][1]
        if name in ZERO_IS_MISSING:
            zero = values == 0
            if zero.any():
                values[zero] = np.nan
                findings.append(Finding(
                    "device-zero-missing", Severity.INFO,
                    f"{int(zero.sum())} of {len(values)} value(s) were 0 (not measured) and "
                    "are now missing", file=file, column=name))
        scaled[name] = values
    return scaled


def _canonical(scaled: dict[str, np.ndarray], file: str, findings: list[Finding]
               ) -> tuple[pd.DataFrame, dict[str, str]]:
    """Canonical columns in canonical units, with RF and VE computed per breath."""
    used = {name: target for name, target in DIRECT.items() if name in scaled}
    frame = pd.DataFrame({canonical: scaled[name] * factor
                          for name, (canonical, factor) in used.items()})
    source_names = {canonical: name for name, (canonical, _) in used.items()}
    for column in DROP_IF_ALL_ZERO:
        if column in frame and not (frame[column].fillna(0) != 0).any():
            frame = frame.drop(columns=column)
    if "tin" in scaled and "tex" in scaled:
        duration_s = scaled["tin"] + scaled["tex"]
        duration_s[~(duration_s > 0)] = np.nan
        frame["RF"] = 60.0 / duration_s
        findings.append(Finding("derived-channel", Severity.INFO,
                                "RF (1/min) = 60 / (tin + tex), each breath's inspiratory plus "
                                "expiratory time", file=file, column="RF"))
        if "Vex" in scaled:
            frame["VE"] = scaled["Vex"] * 60.0 / duration_s
            findings.append(Finding(
                "derived-channel", Severity.INFO,
                "VE (L/min) = Vex x 60 / (tin + tex), each breath's expired volume over its "
                "duration (BTPS assumed: the file does not state volume conditions)",
                file=file, column="VE"))
    return frame, source_names


def _end_tidal_fraction(fraction: str, name: str, values: np.ndarray, file: str
                        ) -> tuple[Finding, np.ndarray | None]:
    """An end-tidal fraction in percent from a ZAN column, or None, with the finding that says
    how it was read (see the module docstring: ``FO2et`` is usually FiO2 - FetO2)."""
    pressure = PRESSURE_OF[fraction]
    if not np.isfinite(values).any():
        return Finding("missing-channel", Severity.WARNING,
                       f"{pressure} left missing: {name} has no values", file=file,
                       column=pressure), None
    percent = bool(np.nanmax(values) > 1.0)
    values_pct = values if percent else values * 100.0
    read = ("read as percent (values above 1)" if percent
            else "read as a fraction (no value above 1) x 100")
    median = float(np.nanmedian(values_pct))
    if fraction == "FetO2" and median < ROOM_AIR_FIO2_PCT / 2:
        return Finding(
            "derived-channel", Severity.INFO,
            f"FetO2 (%) = {ROOM_AIR_FIO2_PCT} % - {name}: {name}, {read}, has a median of "
            f"{median:.1f} %, so it is the inspired-minus-end-tidal O2 difference (an "
            f"end-tidal O2 fraction of air breathing is 12-18 %); FiO2 {ROOM_AIR_FIO2_PCT} % "
            "(dry room air) assumed", file=file, column=fraction), ROOM_AIR_FIO2_PCT - values_pct
    return Finding("derived-channel", Severity.INFO,
                   f"{fraction} (%) = {name}, {read} (median {median:.1f} %)", file=file,
                   column=fraction), values_pct


def _no_pressure(fraction: str, name: str, why: str, file: str) -> Finding:
    """The finding for an end-tidal pressure left missing for want of PB."""
    pressure = PRESSURE_OF[fraction]
    return Finding("missing-channel", Severity.WARNING,
                   f"{pressure} left missing: the file gives the end-tidal fraction {name} but "
                   f"{why}, and P = F x (PB - 47 mmHg) needs it (give PB as a participants-"
                   "table column or Settings.barometric_pressure_mmhg)", file=file,
                   column=pressure)


def _barometric_pressure(sections: dict[str, dict[str, str]]) -> tuple[float | None, str]:
    """PB (mmHg) and the line it is on, from a ``key=value`` line with a unit; or None and
    why not."""
    for section, items in sections.items():
        for key, value in items.items():
            if key.lower() not in PB_KEYS:
                continue
            match = _PRESSURE.match(value)
            unit = match.group(2).lower() if match else ""
            where = f"its barometric pressure [{section}] {key}={value!r}"
            if unit not in PRESSURE_UNITS:
                return None, f"{where} has no unit ({', '.join(PRESSURE_UNITS)})"
            pb_mmhg = float(match.group(1).replace(",", ".")) * PRESSURE_UNITS[unit]
            low, high = PB_RANGE_MMHG
            if not low <= pb_mmhg <= high:
                return None, f"{where} = {pb_mmhg:.0f} mmHg is outside {low:g}-{high:g} mmHg"
            return pb_mmhg, f"[{section}] {key}={value}"
    return None, "stores no barometric pressure"


def _phase_starts(start: dict[str, str]) -> dict[str, float]:
    """Phase start times (s) from the ``[Start]`` section."""
    starts = {}
    for key in PHASES:
        try:
            value = float(start.get(key, ""))
        except ValueError:
            continue
        if np.isfinite(value):
            starts[key] = value
    return starts


def _person(person: dict[str, str], metadata: Metadata, file: str,
            findings: list[Finding]) -> None:
    """Sex, height and weight from ``[person]`` (names, birth date and ID are not read)."""
    for key, attribute in (("groesse", "height_cm"), ("gewicht", "weight_kg")):
        value = person.get(key, "")
        if value:
            setattr(metadata, attribute, positive_number(value, f"[person] {key}", file, findings))
    sex = person.get("geschlecht", "")
    if sex:
        metadata.sex = SEXES.get(sex.lower())
        if metadata.sex is None:
            findings.append(Finding("non-numeric", Severity.WARNING,
                                    f"[person] geschlecht = {sex!r} is not M, W or F; left "
                                    "missing", file=file, column="geschlecht"))


READER = ZANReader()
