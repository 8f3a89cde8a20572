"""Reader for pyoxynet-style CSV files (``time``, ``VO2_I``, ``VCO2_I``, ...).

This is the layout of the 139 real tests bundled with pyoxynet (``pyoxynet/data_test``):
one row per second, VO2/VCO2 in mL/min, VE in L/min, end-tidal pressures in mmHg, HR in
1/min, subject ``age`` (years), ``height`` (m) and ``weight`` (kg) repeated on every row, and
per-second ``domain`` labels (-1/0/1 = moderate/heavy/severe). The ``gender`` code is not
documented by pyoxynet, so sex stays missing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import Finding, Severity
from ..record import CPETRecord
from ._sniff import header_fields
from ._tabular import build_record, load_text, read_csv_text

COLUMNS = {
    "time": "t",
    "VO2_I": "VO2",
    "VCO2_I": "VCO2",
    "VE_I": "VE",
    "HR_I": "HR",
    "RF_I": "RF",
    "PetO2_I": "PetO2",
    "PetCO2_I": "PetCO2",
    "domain": "domain_label",
}
#: Subject columns read into metadata.
SUBJECT_COLUMNS = ("age", "height", "weight")
#: Columns pyoxynet writes that cpet_nb does not need (derived, or group codes).
IGNORED = {"", "Unnamed: 0", "VEVO2_I", "VEVCO2_I", "VCO2VO2_I", "age", "height", "weight",
           "gender", "age_group", "fitness_group"}


class PyoxynetCSVReader:
    """pyoxynet CSV: a header with ``time`` and ``VO2_I``."""

    name = "pyoxynet-csv"
    description = "pyoxynet CSV with time, VO2_I, VCO2_I, VE_I, PetO2_I, PetCO2_I"

    def sniff(self, head: bytes, path: Path) -> bool:
        fields = header_fields(head)
        return "time" in fields and "VO2_I" in fields

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        header: dict[str, None] = {}  # every column name as pandas gives it, in file order

        def wanted(column: str) -> bool:
            header[column] = None
            return column in COLUMNS or column in SUBJECT_COLUMNS

        raw = read_csv_text(text, file, usecols=wanted)  # one parse, only the columns used
        findings = [
            Finding("unknown-column", Severity.INFO, "column not used by cpet_nb", file=file,
                    column=str(c))
            for c in header if c not in COLUMNS and c not in IGNORED
        ]
        arrays = {column: values.to_numpy() for column, values in raw.items()}
        present = {src: dst for src, dst in COLUMNS.items() if src in arrays}
        columns = {dst: arrays[src] for src, dst in present.items()}
        metadata.device = "unknown (pyoxynet CSV)"
        metadata.weight_kg = _constant(arrays.get("weight"))
        metadata.height_cm = _height_cm(_constant(arrays.get("height")))
        metadata.age_years = _constant(arrays.get("age"))
        source_names = {dst: src for src, dst in present.items()}
        return build_record(columns, metadata, source_names, findings, file=file)


def _constant(values: np.ndarray | None) -> float | None:
    """A subject value repeated on every row (the column's values, None when absent), or
    None when absent or inconsistent."""
    if values is None:
        return None
    values = (values.astype(float) if values.dtype.kind in "fiub"
              else pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(
                  dtype=float, na_value=np.nan))
    values = np.unique(values[~np.isnan(values)])
    return float(values[0]) if len(values) == 1 else None


def _height_cm(height: float | None) -> float | None:
    """pyoxynet stores height in metres; a value above 3 is already in centimetres."""
    if height is None or not np.isfinite(height):
        return None
    return height * 100.0 if height < 3.0 else height


READER = PyoxynetCSVReader()
