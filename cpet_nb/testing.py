"""Conformance checks for CPET readers: built-in ones and a lab's plugin alike.

Every reader (see :mod:`cpet_nb.io.registry`) must turn its own files into a clean canonical
record and every other file into a :class:`~cpet_nb.CPETError` with a finding.
:func:`assert_reader_conforms` checks that on one sample file, as scikit-learn's
``check_estimator`` checks an estimator; :func:`reader_checks` gives the same checks one by
one, to parametrise a test with (like scikit-learn's ``parametrize_with_checks``)::

    import pytest
    from cpet_nb.testing import reader_checks
    from my_lab.readers import MY_CART_READER

    @pytest.mark.parametrize("check", reader_checks("tests/data/export.txt", MY_CART_READER))
    def test_my_cart_reader(check):
        check()

The checks: the reader claims the file (and no reader before it does); it reads it without
raising; the columns are canonical (:data:`~cpet_nb.record.CANONICAL_UNITS` or
:data:`~cpet_nb.record.LABEL_COLUMNS`), float except ``phase`` (whose values are
:data:`~cpet_nb.record.PHASES`); ``t`` is finite and strictly increasing; each channel's
median is plausible in its canonical unit (:data:`~cpet_nb.physiology.validate.PLAUSIBLE_MEDIAN`:
VO2 in mL/min, not L/min); the metadata fields have their documented types and the file's
sha256; findings are :class:`~cpet_nb.Finding` objects naming the file; the record survives
pickling; an empty and a truncated copy of the file give a ``CPETError``, not another
exception; ``sniff`` answers a bool, without raising, on hostile heads.

Examples
--------
>>> import cpet_nb
>>> from cpet_nb.testing import assert_reader_conforms, reader_checks
>>> path = cpet_nb.datasets.pyoxynet_tests()[0]
>>> record = assert_reader_conforms(path)  # the reader that claims it: pyoxynet-csv
>>> record.metadata.format
'pyoxynet-csv'
>>> [check.__name__ for check in reader_checks(path, "pyoxynet-csv")][:3]
['check_detection', 'check_read', 'check_columns']
>>> try:
...     assert_reader_conforms(path, "canonical-csv")
... except AssertionError as exc:
...     print(exc)  # doctest: +ELLIPSIS
check_detection (...data_test.csv): reader 'canonical-csv' does not claim the file; ...
"""

from __future__ import annotations

import math
import os
import pickle
import re
import tempfile
from collections.abc import Callable
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from .findings import CPETError, Finding, Severity
from .io._tabular import sha256_hex
from .io.registry import (
    SNIFF_BYTES,
    PluginReader,
    Reader,
    describe_head,
    reader_by_name,
    readers,
)
from .physiology.validate import screen_values
from .record import CANONICAL_UNITS, LABEL_COLUMNS, PHASES, SEXES, CPETRecord

__all__ = ["assert_reader_conforms", "assert_record_conforms", "reader_checks"]

#: A check: raises :class:`AssertionError` saying what is wrong, else returns nothing.
Check = Callable[[], None]

#: Heads no reader may fail on; ``sniff`` must answer each with a bool. No reader may claim
#: the first two.
HOSTILE_HEADS: dict[str, bytes] = {
    "empty": b"",
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)),
    "zip-fragment": b"PK\x03\x04\x14\x00\x00\x00\x08\x00",
    "utf-16 text": "Zeit\tV'O2\n0\t500\n".encode("utf-16"),
    "canonical-csv head": b"t,VO2,VCO2,VE,PetO2,PetCO2\n0,500,400,12,100,38\n",
    "pyoxynet-csv head": b"time,VO2_I,VCO2_I,VE_I,PetO2_I,PetCO2_I\n0,500,400,12,100,38\n",
}
_NEVER_CLAIMED = ("empty", "binary")
#: What :func:`~cpet_nb.record.detect_sampling` says (``Metadata.sampling``).
_SAMPLING = re.compile(r"breath-by-breath|1 s grid|averaged \d+(\.\d+)? s")


def assert_reader_conforms(path: str | os.PathLike, reader: Reader | str | None = None
                           ) -> CPETRecord:
    """Check that ``reader`` reads ``path`` into a conforming record; return the record.

    Parameters
    ----------
    path : str or path-like
        A file the reader must claim and read (a good sample of its format).
    reader : Reader or str, optional
        The reader (an object, registered or not, or a registered name); default: the one
        that claims ``path`` among :func:`cpet_nb.io.readers`.

    Returns
    -------
    CPETRecord
        What the reader made of ``path``.

    Raises
    ------
    AssertionError
        At the first check that fails, naming it and saying which column, row or field is
        wrong and what was expected.
    """
    checks, record = _checks(Path(path), reader)
    for check in checks:
        check()
    return record()


def reader_checks(path: str | os.PathLike, reader: Reader | str | None = None) -> list[Check]:
    """The checks of :func:`assert_reader_conforms`, one callable each (named
    ``check_<what>``, which pytest uses as the test id), to parametrise a test with."""
    return _checks(Path(path), reader)[0]


def assert_record_conforms(record: CPETRecord, path: str | os.PathLike, format_name: str
                           ) -> None:
    """The record checks of :func:`assert_reader_conforms` on a record already read (e.g. by
    a column mapping, :func:`cpet_nb.io.generic.read_mapped`) from ``path`` by the reader
    called ``format_name``.

    Raises
    ------
    AssertionError
        Naming the check and what is wrong.
    """
    for name, check in _record_checks(lambda: record, Path(path), format_name).items():
        _named(name, Path(path), check)()


def _checks(path: Path, reader: Reader | str | None
            ) -> tuple[list[Check], Callable[[], CPETRecord]]:
    reader = _resolve(reader, path)
    record = cache(lambda: _read_sample(reader, path))
    checks = {
        "detection": lambda: _check_detection(reader, path),
        "read": record,
        **_record_checks(record, path, reader.name),
        "damaged_copies": lambda: _check_damaged_copies(reader, path),
        "sniff_hostile_heads": lambda: _check_hostile_heads(reader, path.name),
    }
    return [_named(name, path, check) for name, check in checks.items()], record


def _record_checks(record: Callable[[], CPETRecord], path: Path, format_name: str
                   ) -> dict[str, Check]:
    return {
        "columns": lambda: _check_columns(record()),
        "dtypes": lambda: _check_dtypes(record()),
        "time": lambda: _check_time(record()),
        "units": lambda: _check_units(record()),
        "metadata": lambda: _check_metadata(record(), path, format_name),
        "findings": lambda: _check_findings(record()),
        "pickle": lambda: _check_pickle(record()),
    }


def _named(name: str, path: Path, check: Callable[[], object]) -> Check:
    """``check`` as a function called ``check_<name>`` whose failures name it and the file."""
    def run() -> None:
        try:
            check()
        except AssertionError as exc:
            raise AssertionError(f"check_{name} ({path}): {exc}") from None

    run.__name__ = run.__qualname__ = f"check_{name}"
    return run


def _fail_unless(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _resolve(reader: Reader | str | None, path: Path) -> Reader:
    """The reader to check: the one given (its plugin isolation removed, so that its own
    exceptions show), the one named, or the one that claims ``path``."""
    if reader is None:
        reader = _first_claimant(readers(), path)
        _fail_unless(reader is not None, f"no reader claims {path}: {describe_head(_head(path))}")
    elif isinstance(reader, str):
        reader = reader_by_name(reader)
    return reader.reader if isinstance(reader, PluginReader) else reader


def _head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(SNIFF_BYTES)


def _first_claimant(candidates: tuple[Reader, ...], path: Path) -> Reader | None:
    head = _head(path)
    return next((r for r in candidates if r.sniff(head, path)), None)


def _check_detection(reader: Reader, path: Path) -> None:
    """``reader`` claims ``path`` and no reader before it in :func:`readers` does (an
    unregistered reader is placed last, where an entry point puts it)."""
    registered = readers()
    if reader.name not in {r.name for r in registered}:
        registered = (*registered, reader)
    mine = reader.sniff(_head(path), path)
    first = _first_claimant(registered, path)
    claimed = f"{first.name!r} does" if first is not None else "no reader does"
    _fail_unless(mine, f"reader {reader.name!r} does not claim the file; {claimed}")
    _fail_unless(first.name == reader.name,
                 f"the file is claimed by {first.name!r}, which comes before {reader.name!r} "
                 "in cpet_nb.io.readers(): its sniff must reject this file")


def _read_sample(reader: Reader, path: Path) -> CPETRecord:
    try:
        record = reader.read(path)
    except CPETError as exc:
        raise AssertionError(f"reader {reader.name!r} refused its sample: {exc.finding}") from exc
    except Exception as exc:
        raise AssertionError(f"reader {reader.name!r} raised {type(exc).__name__}: {exc} "
                             "(a reader raises only CPETError)") from exc
    _fail_unless(isinstance(record, CPETRecord),
                 f"reader {reader.name!r} returned {type(record).__name__}, not a CPETRecord")
    return record


def _check_columns(record: CPETRecord) -> None:
    data = record.data
    allowed = set(CANONICAL_UNITS) | set(LABEL_COLUMNS)
    other = [str(c) for c in data.columns if c not in allowed]
    _fail_unless(not other, f"non-canonical column(s) {other}; expected only "
                            f"{sorted(allowed)} (cpet_nb.record.CANONICAL_UNITS, LABEL_COLUMNS)")
    _fail_unless("t" in data, "no 't' column (time from test start, s)")
    _fail_unless(len(data) > 0, "no rows (a file without data is a CPETError 'empty')")
    _fail_unless(not data.columns.duplicated().any(), "a column name is repeated")


def _check_dtypes(record: CPETRecord) -> None:
    for column in record.data.columns:
        values = record.data[column]
        if column == "phase":
            unknown = sorted({str(v) for v in values.dropna()} - set(PHASES))
            _fail_unless(not unknown, f"column 'phase' holds {unknown}; expected {PHASES} or "
                                      "missing")
        else:
            _fail_unless(values.dtype == np.float64,
                         f"column {column!r} has dtype {values.dtype}; expected float64")


def _check_time(record: CPETRecord) -> None:
    t = record.data["t"].to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(t))
    if len(bad):
        raise AssertionError(f"column 't' is {t[bad[0]]} at record row {bad[0] + 1}; "
                             "expected finite seconds")
    back = np.flatnonzero(np.diff(t) <= 0)
    if len(back):
        row = back[0] + 1  # 0-based index of the row that does not advance
        raise AssertionError(f"column 't' is not strictly increasing: record row {row + 1} has "
                             f"t = {t[row]:g} s after {t[row - 1]:g} s")


def _check_units(record: CPETRecord) -> None:
    """Each channel's median within the range the analysis accepts (an implausible median
    almost always means a wrong unit)."""
    _, findings = screen_values(record)
    implausible = [f for f in findings if f.code == "implausible-values"]
    _fail_unless(not implausible, "; ".join(
        f"column {f.column!r} would not pass the analysis' screening "
        f"(cpet_nb.physiology.validate.PLAUSIBLE_MEDIAN): {f.message}"
        for f in implausible))


def _check_metadata(record: CPETRecord, path: Path, format_name: str) -> None:
    meta = record.metadata
    _fail_unless(meta.source_name == path.name,
                 f"metadata.source_name is {meta.source_name!r}; expected {path.name!r}")
    sha256 = sha256_hex(path.read_bytes())
    _fail_unless(meta.source_sha256 == sha256,
                 f"metadata.source_sha256 is {meta.source_sha256!r}; expected {sha256} (the "
                 "sha256 of the file's bytes)")
    _fail_unless(meta.format == format_name,
                 f"metadata.format is {meta.format!r}; expected the reader's name "
                 f"{format_name!r}")
    for field in ("weight_kg", "height_cm", "age_years"):
        value = getattr(meta, field)
        _fail_unless(value is None or (isinstance(value, float) and math.isfinite(value)
                                       and value > 0),
                     f"metadata.{field} is {value!r}; expected a positive float or None")
    _fail_unless(meta.sex is None or meta.sex in SEXES,
                 f"metadata.sex is {meta.sex!r}; expected one of {SEXES} or None")
    _fail_unless(meta.sampling is None or (isinstance(meta.sampling, str)
                                           and _SAMPLING.fullmatch(meta.sampling) is not None),
                 f"metadata.sampling is {meta.sampling!r}; expected 'breath-by-breath', "
                 "'1 s grid', 'averaged N s' or None (cpet_nb.record.detect_sampling)")
    _fail_unless(meta.test_date is None or _is_iso_date(meta.test_date),
                 f"metadata.test_date is {meta.test_date!r}; expected an ISO 8601 date or None")
    for field in ("device", "format"):
        value = getattr(meta, field)
        _fail_unless(value is None or isinstance(value, str),
                     f"metadata.{field} is {value!r}; expected a str or None")
    _fail_unless(isinstance(meta.extra, dict),
                 f"metadata.extra is {type(meta.extra).__name__}; expected a dict")


def _is_iso_date(text: object) -> bool:
    try:
        date.fromisoformat(text)
    except (TypeError, ValueError):
        return False
    return True


def _check_findings(record: CPETRecord) -> None:
    _fail_unless(isinstance(record.findings, list),
                 f"record.findings is {type(record.findings).__name__}; expected a list")
    for i, finding in enumerate(record.findings):
        _fail_unless(isinstance(finding, Finding),
                     f"record.findings[{i}] is {finding!r}; expected a cpet_nb.Finding")
        _fail_unless(bool(finding.file), f"record.findings[{i}] ({finding}) names no file")


def _check_pickle(record: CPETRecord) -> None:
    try:
        clone = pickle.loads(pickle.dumps(record))
    except Exception as exc:
        raise AssertionError(f"the record does not pickle (batch workers send records between "
                             f"processes): {type(exc).__name__}: {exc}") from exc
    pd.testing.assert_frame_equal(clone.data, record.data)
    _fail_unless(clone.metadata == record.metadata, "metadata differs after pickling")
    _fail_unless(clone.findings == record.findings, "findings differ after pickling")


def _check_damaged_copies(reader: Reader, path: Path) -> None:
    """An empty copy of the file gives a ``CPETError``; a copy cut in half gives a record or
    a ``CPETError``; neither raises anything else."""
    data = path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="cpet-nb-conformance-") as folder:
        for kind, content in (("empty", b""), ("truncated", data[: len(data) // 2])):
            copy = Path(folder) / kind / path.name
            copy.parent.mkdir()
            copy.write_bytes(content)
            try:
                record = reader.read(copy)
            except CPETError as exc:
                _fail_unless(exc.finding.severity is Severity.ERROR,
                             f"the CPETError on the {kind} copy carries a "
                             f"{exc.finding.severity.value} finding ({exc.finding})")
                continue
            except Exception as exc:
                raise AssertionError(
                    f"reading an {kind} copy ({len(content)} bytes) raised "
                    f"{type(exc).__name__}: {exc}; expected a CPETError with a finding") from exc
            _fail_unless(kind != "empty", f"an empty copy was read into {len(record.data)} "
                                          "row(s); expected a CPETError")


def _check_hostile_heads(reader: Reader, name: str) -> None:
    """``sniff`` answers each of :data:`HOSTILE_HEADS` (as a file called ``name``) with a
    bool, without raising, and claims neither an empty file nor binary noise."""
    with tempfile.TemporaryDirectory(prefix="cpet-nb-conformance-") as folder:
        for i, (kind, head) in enumerate(HOSTILE_HEADS.items()):
            copy = Path(folder) / str(i) / name
            copy.parent.mkdir()
            copy.write_bytes(head)
            try:
                answer = reader.sniff(head, copy)
            except Exception as exc:
                raise AssertionError(f"sniff raised {type(exc).__name__}: {exc} on the "
                                     f"{kind} head {head[:16]!r}") from exc
            _fail_unless(isinstance(answer, bool),
                         f"sniff answered {answer!r} ({type(answer).__name__}) on the {kind} "
                         "head; expected a bool")
            _fail_unless(not (answer and kind in _NEVER_CLAIMED),
                         f"sniff claims the {kind} head {head[:16]!r}")
