"""Compact, data-free digests of what ``cpet_nb.read`` returns, for comparing readers over time.

A record's digest holds its column names, dtypes and a sha256 of each column's values, the
index, a sha256 of each metadata field and, for each finding, its code, severity, column and
row with a sha256 of its message (and the same for the finding of a file that is refused). No
value of a third-party file appears in it, so a table of digests can be committed where the
files cannot. ``tools/make_reader_reference.py`` writes the table
(``tests/data/reader_reference.json``); ``tests/test_reader_reference.py`` compares today's
readers against it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
from samples import SAMPLES
from synthetic import ramp_test, write_canonical_csv

import cpet_nb

REFERENCE = Path(__file__).resolve().parent / "data" / "reader_reference.json"


def sha256(data: bytes) -> str:
    """The first 16 hex digits (64 bits) of the sha256 of ``data``: enough to tell two
    values apart, short enough to keep the table small."""
    return hashlib.sha256(data).hexdigest()[:16]


def column_digest(values: pd.Series) -> str:
    """sha256 of a column's values: float bytes (every NaN written as the one NaN, whose bit
    pattern is not a value), else the JSON of the values with missing as null."""
    if pd.api.types.is_float_dtype(values.dtype):
        array = values.to_numpy(dtype=np.float64, copy=True)
        array[np.isnan(array)] = np.nan
        return sha256(array.tobytes())
    cells = [None if pd.isna(cell) else cell for cell in values.tolist()]
    return sha256(json.dumps(cells, default=str).encode())


def finding_digest(finding: cpet_nb.Finding) -> dict:
    """A finding without its message text or file path (which depends on where files are)."""
    return {"code": finding.code, "severity": str(finding.severity), "column": finding.column,
            "row": finding.row, "message_sha256": sha256(finding.message.encode()),
            "file": None if finding.file is None else Path(finding.file).name}


def record_digest(path: Path) -> dict:
    """The digest of ``cpet_nb.read(path)``, or of the finding it raises."""
    try:
        record = cpet_nb.read(path)
    except cpet_nb.CPETError as exc:
        return {"error": finding_digest(exc.finding)}
    data = record.data
    metadata = record.metadata.to_dict()
    return {
        "columns": [[str(name), str(dtype)] for name, dtype in data.dtypes.items()],
        "index": [type(data.index).__name__, len(data.index),
                  sha256(np.asarray(data.index).tobytes())],
        "values": {str(name): column_digest(data[name]) for name in data.columns},
        "metadata": {key: sha256(json.dumps(value, sort_keys=True, default=str).encode())
                     for key, value in metadata.items()},
        "findings": [finding_digest(finding) for finding in record.findings],
    }


def inputs(scratch: Path) -> Iterator[tuple[str, Path]]:
    """(key, path) of every file compared: pyoxynet's bundled tests, every file of the shared
    samples (those that are not exports too: their refusal is compared), and a generated
    15-minute canonical CSV (written into ``scratch``)."""
    for path in cpet_nb.datasets.pyoxynet_tests():
        yield f"pyoxynet/{path.name}", path
    if SAMPLES.is_dir():
        for path in sorted(p for p in SAMPLES.rglob("*") if p.is_file()):
            yield f"samples/{path.relative_to(SAMPLES).as_posix()}", path
    generated = scratch / "canonical_15min_bxb.csv"
    write_canonical_csv(ramp_test(duration_s=900), generated, weight_kg=70, height_cm=178,
                        sex="female")
    yield "generated/canonical_15min_bxb.csv", generated
