"""Reader for cpet_nb's canonical CSV: canonical column names, canonical units.

Format (UTF-8, comma-separated)::

    # weight_kg: 72.5
    # height_cm: 178
    # age_years: 34
    # sex: female
    # device: COSMED Quark CPET
    # test_date: 2024-03-01
    t,VO2,VCO2,VE,PetO2,PetCO2,HR,load
    0.0,350.2,290.1,11.3,105.2,33.1,71,0
    ...

Comment lines ``# key: value`` before the header carry metadata (all optional; anything
absent stays missing). Columns are the names of :data:`cpet_nb.record.CANONICAL_UNITS`, in
those units (``t`` in s, ``VO2``/``VCO2`` in mL/min, ``VE`` in L/min, ``PetO2``/``PetCO2`` in
mmHg, ``HR`` in 1/min, ...). Other columns are ignored with an ``unknown-column`` finding.
"""

from __future__ import annotations

from pathlib import Path

from ..findings import Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord, Metadata
from ._sniff import header_fields
from ._tabular import build_record, load_text, positive_number, read_csv_text

NUMERIC_METADATA = ("weight_kg", "height_cm", "age_years")
TEXT_METADATA = ("device", "test_date")
SEXES = {"f": "female", "female": "female", "m": "male", "male": "male"}


class CanonicalCSVReader:
    """Canonical CSV: a header with ``t`` and ``VO2`` and ``# key: value`` metadata lines."""

    name = "canonical-csv"
    description = "cpet_nb canonical CSV (t, VO2, VCO2, VE, PetO2, PetCO2, ... in canonical units)"

    def sniff(self, head: bytes, path: Path) -> bool:
        """A header with ``t`` and ``VO2`` in which most fields are canonical names (a vendor
        grid that merely contains a ``t`` and a ``VO2`` column is not canonical)."""
        fields = [f for f in header_fields(head) if f]
        canonical = sum(f in CANONICAL_UNITS for f in fields)
        return "t" in fields and "VO2" in fields and canonical > len(fields) / 2

    def read(self, path: Path) -> CPETRecord:
        file = str(path)
        text, metadata = load_text(path, self.name)
        findings = _parse_metadata(text, metadata, file)
        raw = read_csv_text(text, file, comment="#", skipinitialspace=True)
        raw.columns = [str(c).strip() for c in raw.columns]
        for column in raw.columns:
            if column not in CANONICAL_UNITS:
                findings.append(Finding(
                    "unknown-column", Severity.WARNING,
                    f"not a canonical column and ignored (expected one of "
                    f"{', '.join(CANONICAL_UNITS)})", file=file, column=column))
        frame = raw[[c for c in raw.columns if c in CANONICAL_UNITS]]
        return build_record(frame, metadata, {}, findings, file=file)


def _parse_metadata(text: str, metadata: Metadata, file: str) -> list[Finding]:
    findings = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("#"):
            break
        key, sep, value = stripped.lstrip("#").partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not value:
            continue
        if key in NUMERIC_METADATA:
            setattr(metadata, key, positive_number(value, f"metadata {key}", file, findings))
        elif key == "sex":
            sex = SEXES.get(value.lower())
            if sex is None:
                findings.append(Finding("non-numeric", Severity.WARNING,
                                        f"metadata sex = {value!r} is not female/male; left "
                                        "missing", file=file, column=key))
            metadata.sex = sex
        elif key in TEXT_METADATA:
            setattr(metadata, key, value)
    return findings


READER = CanonicalCSVReader()
