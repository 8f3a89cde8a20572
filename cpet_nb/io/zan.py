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
``FO2et`` (342)    100    % or fraction  ``PetO2``     F x (PB - 47 mmHg), only when the file
                                         mmHg          gives PB (see below)
``FCO2et`` (343)   100    % or fraction  ``PetCO2``    as ``FO2et``
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

End-tidal pressures. ZAN writes end-tidal fractions, not pressures. They are converted with
the dry-gas convention used for alveolar and end-tidal gas,
``P = F x (PB - PH2O)``, with water-vapour pressure PH2O = 47 mmHg at 37 degC (saturated
gas at body temperature; West JB, *Respiratory Physiology: The Essentials*, ch. 2 and 5;
ATS/ACCP Statement on Cardiopulmonary Exercise Testing, Am J Respir Crit Care Med
2003;167:211-277). A fraction is read as percent when any scaled value exceeds 1 (a
fraction cannot), else as a fraction. PB is taken from a ``key=value`` line in any section
whose key is one of :data:`PB_KEYS` (case-insensitive) and whose value carries a unit
(mmHg, Torr, hPa, mbar or kPa); a pressure without a unit is not used. None of the real ZAN
exports seen so far (13 tests) stores PB, so in them PetO2 and PetCO2 stay missing, with a
``missing-channel`` finding saying why. Also seen in all of them: ``FO2et`` is 4-10 %, which
cannot be an end-tidal O2 fraction in room air (14-17 %) and tracks ``FiO2 - FetO2``
(``FCO2et / FO2et`` follows each breath's VCO2/VO2); cpet_nb's plausibility screen would
blank a PetO2 derived from such values.

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
#: Parameters used to compute RF, VE, PetO2 and PetCO2.
DERIVED_FROM = ("tin", "tex", "FO2et", "FCO2et")
#: Channels in which a stored 0 cannot be a measurement.
ZERO_IS_MISSING = ("VO2", "VCO2", "Vex", "FO2et", "FCO2et")
#: Channels kept only when at least one value is not 0.
DROP_IF_ALL_ZERO = ("load", "speed", "grade")
#: Keys (lower case) that may hold the barometric pressure.
PB_KEYS = ("pb", "pbar", "baro", "barometer", "luftdruck")
#: Factor from each accepted pressure unit (lower case) to mmHg.
PRESSURE_UNITS = {"mmhg": 1.0, "torr": 1.0, "hpa": 0.750062, "mbar": 0.750062, "kpa": 7.50062}
#: Water-vapour pressure of saturated gas at 37 degC (mmHg).
PH2O_37C_MMHG = 47.0
#: Accepted barometric pressure (mmHg): sea level is 760, 5000 m altitude about 405.
PB_RANGE_MMHG = (350.0, 850.0)
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
        pb_mmhg, why = _barometric_pressure(sections)
        for channel, name in (("PetO2", "FO2et"), ("PetCO2", "FCO2et")):
            if name in scaled:
                finding, values = _end_tidal(channel, name, scaled[name], pb_mmhg, why, file)
                findings.append(finding)
                if values is not None:
                    frame[channel] = values
                    source_names[channel] = name
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
        return build_record(frame, metadata, source_names, findings, file=file)


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


def _end_tidal(channel: str, name: str, values: np.ndarray, pb_mmhg: float | None, why: str,
               file: str) -> tuple[Finding, np.ndarray | None]:
    """End-tidal pressure (mmHg) from a fraction column, or None, with the finding that says so.

    ``P = F x (PB - 47 mmHg)``; ``F`` is read as percent when a value exceeds 1.
    """
    if not np.isfinite(values).any():
        return Finding("missing-channel", Severity.WARNING,
                       f"{channel} left missing: {name} has no values", file=file,
                       column=channel), None
    if pb_mmhg is None:
        return Finding("missing-channel", Severity.WARNING,
                       f"{channel} left missing: the file gives the end-tidal fraction {name} "
                       f"but {why}, and P = F x (PB - 47 mmHg) needs it", file=file,
                       column=channel), None
    percent = bool(np.nanmax(values) > 1.0)
    pressure = (values / 100.0 if percent else values) * (pb_mmhg - PH2O_37C_MMHG)
    unit = "percent (values above 1)" if percent else "a fraction (no value above 1)"
    return Finding("derived-channel", Severity.INFO,
                   f"{channel} (mmHg) = {name} x (PB - 47 mmHg), PB = {pb_mmhg:.1f} mmHg from "
                   f"the file, {name} read as {unit}", file=file, column=channel), pressure


def _barometric_pressure(sections: dict[str, dict[str, str]]) -> tuple[float | None, str]:
    """PB (mmHg) from a ``key=value`` line with a unit, or None and why not."""
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
            return pb_mmhg, ""
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
