"""Reader for Vyaire Vyntus CPX (SentrySuite) tab-separated text exports.

Layout (tab-separated, Latin-1 or UTF-8, LF or CRLF; the Norwegian sample)::

    ID-nummer:<TAB>BT2096             preamble: "<label>:<TAB><value>" lines (optional; see
                                      Metadata below); names, IDs and birth dates never read
    Tid  Last  RPM  HF     V'O2/kg      V'O2    V'CO2   RER  V'E    BF     VTex ...  header
    min  W     1/min 1/min (mL/min)/kg  mL/min  mL/min       L/min  1/min  L    ...  units row
     00:56          78     4.7          321     267     0.83 27     17.8   1.536 ... one row per
     01:00          76     14.3         971     857     0.88 39     29.3   1.343 ... interval

The header row is the first line whose fields contain the language's time label and a
V'O2 label (:data:`LABELS`); the line after it must be the units row. Every unit is taken
from that row and converted with :func:`~cpet_nb.io.parsing.to_canonical`: nothing is
inferred from the size of the numbers. A channel whose unit is not one cpet_nb accepts is
left out with an ``unknown-column`` warning; for ``t`` and ``VO2`` that stops the file.

Header languages. SentrySuite writes labels in the language of the installation. The
tables below map the labels of the channels cpet_nb uses; a lab whose export uses another
label (or another language) adds it to :data:`LABELS` (``LABELS["NO"]["Puls"] = "HR"``) or
adds a language with its time label. Labels are compared case-insensitively. The language
is the one whose time label the header contains; ``metadata.extra["language"]`` says which.

=========  ======  ========================  ======================  =======================
canonical  EN      DE                        FR                      NO (sample)
=========  ======  ========================  ======================  =======================
``t``      Time    Zeit                      Temps                   Tid
``load``   Load,   Last, Leistung, WR        Charge, Puissance, WR   Last, Belastning, WR
           WR
``HR``     HR      HF                        FC                      HF
``VO2``    V'O2    V'O2                      V'O2                    V'O2
``VCO2``   V'CO2   V'CO2                     V'CO2                   V'CO2
``VE``     V'E     V'E                       V'E                     V'E
``RF``     BF      AF, BF                    FR, BF                  BF
``VT``     VTex    VTex                      VTex                    VTex
``PetO2``  PetO2   PetO2                     PetO2                   PetO2
``PetCO2`` PetCO2  PetCO2                    PetCO2                  PetCO2
``speed``  Speed   Geschw., Geschwindigkeit  Vitesse                 Hastighet, Fart
``grade``  Grade,  Steigung, Steig.          Pente                   Stigning
           Incline
=========  ======  ========================  ======================  =======================

Only the Norwegian table is checked against a real export; the others are SentrySuite's
labels as the program displays them and should be confirmed on a first real file.

Units accepted (from the units row, compared without spaces and brackets, case-insensitive):
``t`` s, ms, min (plain numbers) or a clock pattern such as ``mm:ss``; the cells themselves
may be clock times (`` 00:56`` is 56 s, :func:`~cpet_nb.io.parsing.parse_time_s`), which a
unit ``min`` does not change. ``VO2``, ``VCO2``, ``VE``, ``VT``, ``PetO2``, ``PetCO2`` (kPa
is converted to mmHg) and ``speed``: :data:`~cpet_nb.io.parsing.UNIT_FACTORS`. ``HR``,
``RF``: a per-minute unit (:data:`~cpet_nb.io._delimited.RATE_UNITS`). ``load``: W.
``grade``: %.

Not used: ``V'O2/kg`` (per kg; with ``V'O2`` it gives the implied body mass below), RER,
RPM, substrate columns (``FETT``, ``CHO``), equivalents, and mixed-expired gas (``PeO2``,
``PeCO2``, ``FeO2``, ``FeCO2``): those are averages over the whole breath, never end-tidal,
and are never taken for ``PetO2``/``PetCO2``. End-tidal fractions (``FetO2``) are not
converted. The Norwegian sample has no end-tidal column at all.

Cells. Blank cells and the markers ``-``, ``--``, ``---`` are missing (never 0); other text
in a numeric column (also a number with letters glued to it, ``1O30``) is missing with a
``non-numeric`` finding naming the column and the 1-based data row. A data row with a
different number of fields than the header (a file cut mid-row) is skipped with a
``malformed-row`` finding. HR 0 becomes missing (:func:`~cpet_nb.io._tabular.build_record`),
as do duplicate times (first kept). A channel with no value in any row (``Last`` in the
sample) is left out.

Metadata. Preamble lines ``<label>:<TAB><value>`` (or ``<label>: <value>``) in the header's
language (:data:`~cpet_nb.io._delimited.METADATA_LABELS`): weight (kg unless the value says
lb), height (cm unless it says m or in), age (years), sex
(:data:`~cpet_nb.io._delimited.SEXES`) and test date (ISO, ``dd.mm.yyyy``, or
``dd/mm/yyyy`` in DE, FR and NO; in EN a slashed date is read only when it cannot be read
both ways). Every other preamble line (ID, name, birth date, ...) is never read. The sample
has only ``ID-nummer``, so its weight stays missing; ``extra["body_mass_kg_implied"]`` is
the median of ``V'O2 / V'O2/kg`` over rows (68.0 kg in the sample), a derived number that is
not a stated weight and is not copied to ``weight_kg``.

Sampling is detected from the times by :func:`~cpet_nb.record.detect_sampling`. In the
sample the first row is at 56 s and the next ones at whole minutes: 5 of 6 steps are 60 s,
and the record says ``averaged 60 s``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord
from ._delimited import (
    REQUIRED,
    decimals,
    implied_body_mass,
    plain_numbers,
    preamble_metadata,
    read_channel,
    split_rows,
)
from ._sniff import head_lines
from ._tabular import build_record, load_text
from .parsing import parse_time_s

#: Language -> SentrySuite header label -> canonical column. Extend it for other labels.
LABELS: dict[str, dict[str, str]] = {
    "EN": {"Time": "t", "Load": "load", "WR": "load", "HR": "HR", "V'O2": "VO2",
           "V'CO2": "VCO2", "V'E": "VE", "BF": "RF", "VTex": "VT", "PetO2": "PetO2",
           "PetCO2": "PetCO2", "Speed": "speed", "Grade": "grade", "Incline": "grade"},
    "DE": {"Zeit": "t", "Last": "load", "Leistung": "load", "WR": "load", "HF": "HR",
           "V'O2": "VO2", "V'CO2": "VCO2", "V'E": "VE", "AF": "RF", "BF": "RF",
           "VTex": "VT", "PetO2": "PetO2", "PetCO2": "PetCO2", "Geschw.": "speed",
           "Geschwindigkeit": "speed", "Steigung": "grade", "Steig.": "grade"},
    "FR": {"Temps": "t", "Charge": "load", "Puissance": "load", "WR": "load", "FC": "HR",
           "V'O2": "VO2", "V'CO2": "VCO2", "V'E": "VE", "FR": "RF", "BF": "RF",
           "VTex": "VT", "PetO2": "PetO2", "PetCO2": "PetCO2", "Vitesse": "speed",
           "Pente": "grade"},
    "NO": {"Tid": "t", "Last": "load", "Belastning": "load", "WR": "load", "HF": "HR",
           "V'O2": "VO2", "V'CO2": "VCO2", "V'E": "VE", "BF": "RF", "VTex": "VT",
           "PetO2": "PetO2", "PetCO2": "PetCO2", "Hastighet": "speed", "Fart": "speed",
           "Stigning": "grade"},
}
#: Language -> per-kg VO2 label (used only for ``extra["body_mass_kg_implied"]``).
PER_KG_LABELS: dict[str, tuple[str, ...]] = {
    "EN": ("V'O2/kg",), "DE": ("V'O2/kg",), "FR": ("V'O2/kg",), "NO": ("V'O2/kg",),
}


class VyntusReader:
    """Vyntus CPX / SentrySuite tab-separated export: a header with a time label and V'O2,
    then a units row."""

    name = "vyntus"
    description = ("Vyaire Vyntus CPX / SentrySuite tab-separated text (header with "
                   "Time/Zeit/Temps/Tid and V'O2, then a units row)")

    def sniff(self, head: bytes, path: Path) -> bool:
        return _header(head_lines(head, 60))[0] is not None

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        metadata.device = "Vyaire Vyntus CPX (SentrySuite)"
        findings: list[Finding] = []
        lines = text.splitlines()
        index, language = _header(lines)
        if index is None:
            raise CPETError(Finding(
                "unreadable", Severity.ERROR,
                "no header row with a time label (Time, Zeit, Temps or Tid) and a V'O2 "
                "column, separated by tabs", file=file))
        header = [field.strip() for field in lines[index].split("\t")]
        units = _units_row(lines, index, header, file)
        cells, rows = split_rows(lines[index + 2:], len(header), file, findings)
        columns = _columns(header, language, findings, file)
        frame = pd.DataFrame(index=range(len(cells)))
        source_names = {}
        for canonical, position in columns.items():
            label = header[position]
            values = read_channel(cells[position], canonical, units[position], label, rows,
                                  file, findings)
            if values is not None and (canonical in REQUIRED or np.isfinite(values).any()):
                frame[canonical] = values
                source_names[canonical] = label
        frame = frame[[c for c in CANONICAL_UNITS if c in frame]]
        metadata.extra["language"] = language
        mass = _implied_mass(header, units, cells, frame, language)
        if mass is not None:
            metadata.extra["body_mass_kg_implied"] = mass
        preamble_metadata(lines[:index], language, metadata, file, findings)
        return build_record(frame, metadata, source_names, findings, file=file)


def _header(lines: list[str]) -> tuple[int | None, str | None]:
    """Index of the header row and its language, or (None, None)."""
    for index, line in enumerate(lines):
        if "\t" not in line:
            continue
        fields = {field.strip().casefold() for field in line.split("\t")}
        for language, labels in LABELS.items():
            folded = {label.casefold(): canonical for label, canonical in labels.items()}
            found = {folded[f] for f in fields if f in folded}
            if {"t", "VO2"} <= found:
                return index, language
    return None, None


def _units_row(lines: list[str], index: int, header: list[str], file: str) -> list[str]:
    """The units row after the header, padded to the header's length.

    Raises
    ------
    CPETError
        ``unreadable`` when the file ends after the header or the next line holds data.
    """
    if index + 1 >= len(lines) or not lines[index + 1].strip():
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            "the file ends after the header row: no units row and no data (truncated?)",
            file=file, column=header[0]))
    units = [field.strip() for field in lines[index + 1].split("\t")]
    units += [""] * (len(header) - len(units))
    time_position = next(i for i, f in enumerate(header) if _is_time_label(f))
    cell = pd.Series([units[time_position]])
    if np.isfinite(parse_time_s(cell).iloc[0]):
        raise CPETError(Finding(
            "unreadable", Severity.ERROR,
            f"the line after the header is data ({units[time_position]!r} under "
            f"{header[time_position]!r}), not the units row, so units cannot be known",
            file=file, row=1))
    return units


def _is_time_label(field: str) -> bool:
    return any(LABELS[lang].get(k) == "t" for lang in LABELS for k in LABELS[lang]
               if k.casefold() == field.casefold())


def _columns(header: list[str], language: str, findings: list[Finding], file: str
             ) -> dict[str, int]:
    """Canonical column -> position in the header (the first column with a mapped label)."""
    folded = {label.casefold(): canonical for label, canonical in LABELS[language].items()}
    columns: dict[str, int] = {}
    for position, label in enumerate(header):
        canonical = folded.get(label.casefold())
        if canonical is None:
            continue
        if canonical in columns:
            findings.append(Finding(
                "unknown-column", Severity.INFO,
                f"a second column for {canonical} was ignored (the first, "
                f"{header[columns[canonical]]!r}, is used)", file=file, column=label))
            continue
        columns[canonical] = position
    return columns


def _implied_mass(header: list[str], units: list[str], cells: pd.DataFrame,
                  frame: pd.DataFrame, language: str) -> float | None:
    """``V'O2 / V'O2/kg`` (median, kg) when both columns exist and agree, else None."""
    per_kg_labels = {label.casefold() for label in PER_KG_LABELS.get(language, ())}
    position = next((i for i, f in enumerate(header) if f.casefold() in per_kg_labels), None)
    if position is None or "VO2" not in frame:
        return None
    unit = re.sub(r"[\s()\[\]{}]", "", units[position]).lower()
    if unit not in {"ml/min/kg", "ml/kg/min"}:
        return None
    per_kg = plain_numbers(cells[position])
    mass = implied_body_mass(frame["VO2"].to_numpy(dtype=float), per_kg,
                             10.0 ** -decimals(cells[position]))
    return None if mass is None else round(mass, 1)



READER = VyntusReader()
