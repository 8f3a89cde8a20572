"""Heart rate from a companion recording (chest strap, watch) merged into a CPET record.

Many carts store no heart rate (every ZAN sample file has HR 0 throughout) while a chest strap
or watch recorded it. :func:`read_hr` reads such a recording and :func:`merge_hr` puts its
heart rate on the record's breaths.

Companion files (:func:`read_hr`), told apart by content (XML starts with ``<``):

- **Garmin TCX**: XML whose root element is ``TrainingCenterDatabase`` in whatever namespace
  the root declares (v2, v1, or none), parsed with ``defusedxml`` (a DOCTYPE is refused, so
  entities are never expanded); the encoding comes from the XML (UTF-8 with BOM is fine).
  Every ``Trackpoint`` of every activity and lap gives ``Time`` (``xsd:dateTime``, converted to
  UTC; a time without zone is UTC, the TCX convention) and ``HeartRateBpm/Value`` (1/min).
  Result column ``time_utc``.
- **Delimited text** (delimiter, encoding and header normalisation as
  :func:`cpet_nb.io.participants.read_text_table` and
  :func:`~cpet_nb.io.participants.normalise_header`:
  ``HR (bpm)`` is ``hr_bpm``) with a time and a heart-rate column; the first header found in
  each list below, in this order, is used:

  ==========  ==============================================================================
  column      accepted normalised headers
  ==========  ==============================================================================
  time        ``time_utc``, ``timestamp``, ``datetime``, ``date_time``, ``time``, ``time_s``,
              ``time_ms``, ``t``, ``t_s``, ``t_ms``, ``seconds``, ``elapsed``, ``elapsed_s``,
              ``elapsed_time``, ``zeit``, ``zeit_s``
  heart rate  ``hr``, ``hr_bpm``, ``hr_1_min``, ``heart_rate``, ``heart_rate_bpm``,
              ``heartrate``, ``heartrate_bpm``, ``bpm``, ``pulse``, ``hf``
  ==========  ==============================================================================

  Time cells are read in whichever of these ways reads the most cells: numbers (seconds; ms
  or min when the header ends in ``_ms`` or ``_min``; decimal comma allowed) and clock text
  ``h:mm:ss`` / ``m:ss`` (seconds since 0:00:00, so elapsed time and time of day alike) give
  column ``t``; ISO 8601 date-times with a zone (``2021-03-17T10:54:56Z``, ``...+01:00``)
  give ``time_utc``; ISO 8601 date-times without a zone are a local clock, not an instant,
  and give ``t`` in seconds since midnight of the first sample's date. Clock times that pass
  midnight are not supported. Heart-rate cells are numbers (decimal comma allowed).

Both: rows whose time cannot be read are dropped (``non-numeric``); HR 0 means not measured
(``device-zero-missing``) and HR outside :data:`HR_RANGE_PER_MIN` is left out
(``implausible-values``); samples without HR are dropped; times that go backwards are sorted
and repeated times dropped, first kept (``non-monotonic-time``, ``duplicate-time``). A file
with no heart rate gets a ``missing-channel`` warning.

Merging (:func:`merge_hr`). Companion time axis: ``t`` as read, or for ``time_utc`` the
seconds since the companion's first sample. Alignment, first that applies:

1. ``offset_s`` given: the companion time ``offset_s`` is the record's ``t = 0``.
2. The record has an absolute start (its ``t = 0``) and the companion has ``time_utc``: the
   clocks align them. The start is ``metadata.extra["start_time_utc"]`` (a date-time; without
   zone it is UTC), else ``metadata.test_date`` when it holds a time of day *and* a UTC offset
   (``2021-03-17T11:54:56+01:00``). A test date with a time but no offset is a local clock and
   is not used (the finding says so).
3. Otherwise the companion's first sample is placed at the record's ``t = 0``, with a warning
   that alignment is assumed (as the R package ``spiro``'s ``add_hr`` does by default).

Each breath's HR is the linear interpolation of the companion at the breath's ``t``. There is
no extrapolation: breaths before the first or after the last companion sample get none, and
neither do breaths between two samples more than :data:`MAX_GAP_S` apart (a dropped strap
signal is not bridged). Cart values are never overwritten: when the cart's HR is missing for
every breath (or there is no HR column) the companion's values form the column; otherwise only
breaths without cart HR are filled, and the finding counts both.

Stand-in finding codes: the merge report (info, :data:`MERGED_CODE`) and the assumed
alignment (warning, :data:`ASSUMED_CODE`) have no code in :data:`~cpet_nb.findings.CODES` yet.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from ..findings import Finding, Severity
from ..record import CANONICAL_UNITS, CPETRecord, Metadata
from . import DEFAULT_MAX_FILE_BYTES
from ._files import file_problem
from ._tabular import clean_time
from .parsing import parse_number, parse_time_s
from .participants import normalise_header, read_text_table

#: Time headers of a delimited companion (normalised), in order of preference.
TIME_COLUMNS = ("time_utc", "timestamp", "datetime", "date_time", "time", "time_s", "time_ms",
                "t", "t_s", "t_ms", "seconds", "elapsed", "elapsed_s", "elapsed_time", "zeit",
                "zeit_s")
#: Heart-rate headers of a delimited companion (normalised), in order of preference.
HR_COLUMNS = ("hr", "hr_bpm", "hr_1_min", "heart_rate", "heart_rate_bpm", "heartrate",
              "heartrate_bpm", "bpm", "pulse", "hf")
#: Heart rates (1/min) accepted from a companion; others are left out with a finding.
HR_RANGE_PER_MIN = (20.0, 250.0)
#: Breaths between two companion samples further apart than this (s) get no HR.
MAX_GAP_S = 10.0
#: Finding codes this module emits.
MERGED_CODE = "hr-merged"
ASSUMED_CODE = "hr-alignment-assumed"

_ZONE = re.compile(r"(?:Z|[+-][0-9]{2}:?[0-9]{2})\Z", re.IGNORECASE)
_DATE_TIME = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{1,2}:[0-9]{2}")


def read_hr(path: str | os.PathLike, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
            ) -> pd.DataFrame:
    """Heart rate from a TCX or delimited-text companion file (rules in the module docstring).

    Parameters
    ----------
    path : str or path-like
    max_file_bytes : int
        Larger files are refused with a ``file-too-large`` finding.

    Returns
    -------
    pandas.DataFrame
        Columns ``time_utc`` (``datetime64[ns, UTC]``) or ``t`` (s, the file's own time
        axis), and ``HR`` (1/min, float), sorted by time. ``attrs["findings"]`` holds the
        findings (the companion file is named in them) and ``attrs["source"]`` the file name.
        Never raises for bad input: an unreadable file gives an empty frame with an error
        finding.
    """
    file = str(path)
    path = Path(path)
    problem = file_problem(path, max_file_bytes)
    if problem is not None:
        return _result(None, None, None, [problem], path)
    with open(path, "rb") as fh:
        head = fh.read(64)
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        return _read_tcx(path, file)
    return _read_delimited(path, file, max_file_bytes)


def merge_hr(record: CPETRecord, hr: pd.DataFrame, offset_s: float | None = None
             ) -> CPETRecord:
    """A copy of ``record`` whose HR comes from a companion recording where the cart has none.

    Parameters
    ----------
    record : CPETRecord
    hr : pandas.DataFrame
        :func:`read_hr`'s result (or any frame with ``time_utc`` or ``t`` and ``HR``; rows
        are sorted by time and a repeated time keeps its first row); its
        ``attrs["findings"]`` are added to the copy's findings.
    offset_s : float, optional
        Companion time (s) of the record's ``t = 0``: on the companion's ``t`` axis, or
        seconds after its first sample when it has ``time_utc``. Overrides the clocks.

    Returns
    -------
    CPETRecord
        A new record (``record`` is not changed) with findings: an info finding with the
        number of breaths that got HR, the alignment and what happened to cart values; a
        warning when alignment was assumed; a ``missing-channel`` warning when no breath got
        HR. ``metadata.extra`` gets ``hr_companion`` (file name) and ``hr_alignment``
        (``"offset_s"``, ``"clock"`` or ``"assumed"``) when HR was merged.

    Raises
    ------
    ValueError
        If ``offset_s`` is not a finite number.
    """
    if offset_s is not None and not np.isfinite(offset_s):
        raise ValueError(f"offset_s must be a finite number of seconds, not {offset_s!r}")
    file = record.name
    source = hr.attrs.get("source", "the companion")
    findings = [*record.findings, *hr.attrs.get("findings", [])]
    data = record.data.copy()
    metadata = replace(record.metadata, extra=dict(record.metadata.extra))
    time_column = "time_utc" if "time_utc" in hr else "t"
    usable = (hr[[time_column, "HR"]].dropna().sort_values(time_column)
              .drop_duplicates(time_column) if {time_column, "HR"} <= set(hr) else hr[[]])
    if len(usable) < 2:
        findings.append(Finding("missing-channel", Severity.WARNING,
                                f"HR not merged: {source} has {len(usable)} heart-rate "
                                "sample(s), at least 2 are needed", file=file, column="HR"))
        return replace(record, data=data, metadata=metadata, findings=findings)
    sample_s, how, alignment = _align(metadata, usable[time_column], offset_s)
    t_s = data["t"].to_numpy(dtype=float)
    companion = _interpolate(t_s, sample_s, usable["HR"].to_numpy(dtype=float))
    cart = data["HR"].to_numpy(dtype=float) if "HR" in data else np.full(len(t_s), np.nan)
    missing = np.isnan(cart)
    filled = missing & np.isfinite(companion)
    span = (f"{len(sample_s)} samples, {sample_s[0]:.1f} to {sample_s[-1]:.1f} s on the "
            f"record's time; record {t_s[0]:.1f} to {t_s[-1]:.1f} s")
    if not filled.any():
        findings.append(Finding(
            "missing-channel", Severity.WARNING,
            f"HR not merged: no breath without cart HR lies within {source} ({span}; gaps "
            f"over {MAX_GAP_S:g} s not bridged); alignment {how}", file=file, column="HR"))
        return replace(record, data=data, metadata=metadata, findings=findings)
    if alignment == "assumed":
        findings.append(Finding(
            ASSUMED_CODE, Severity.WARNING,
            f"alignment of {source} {how}. Pass offset_s (companion seconds at the "
            "record's t = 0) if the recordings did not start together", file=file,
            column="HR"))
    if missing.all():
        cart_text = "the cart has no HR, so the column is the companion's"
    else:
        cart_text = (f"cart HR kept for {int((~missing).sum())} breath(s), companion used "
                     f"for {int(filled.sum())} of the {int(missing.sum())} without")
    findings.append(Finding(
        MERGED_CODE, Severity.INFO,
        f"HR from {source} for {int(filled.sum())} of {len(t_s)} breaths: linear "
        f"interpolation ({span}), none outside its span or across gaps over "
        f"{MAX_GAP_S:g} s; alignment {how}; {cart_text}", file=file, column="HR"))
    data["HR"] = np.where(missing, companion, cart)
    data = data[[c for c in CANONICAL_UNITS if c in data]
                + [c for c in data if c not in CANONICAL_UNITS]]
    metadata.extra["hr_companion"] = source
    metadata.extra["hr_alignment"] = alignment
    return replace(record, data=data, metadata=metadata, findings=findings)


def _result(times: pd.Series | None, kind: str | None, hr: pd.Series | None,
            findings: list[Finding], path: Path) -> pd.DataFrame:
    """The companion frame (empty when ``times`` is None) with its findings and source."""
    if times is None:
        frame = pd.DataFrame({"t": pd.Series(dtype=float), "HR": pd.Series(dtype=float)})
    else:
        frame = pd.DataFrame({kind: times.reset_index(drop=True),
                              "HR": hr.reset_index(drop=True).astype(float)})
    frame.attrs["findings"] = findings
    frame.attrs["source"] = path.name
    return frame


def _read_tcx(path: Path, file: str) -> pd.DataFrame:
    """Trackpoint times (UTC) and heart rates of a TCX file."""
    try:
        root = fromstring(path.read_bytes(), forbid_dtd=True)
    except DefusedXmlException as exc:
        return _result(None, None, None, [Finding(
            "unreadable", Severity.ERROR,
            f"refused: the XML has a DOCTYPE declaration ({type(exc).__name__}); TCX files "
            "have none, and entities are never processed", file=file)], path)
    except ParseError as exc:
        return _result(None, None, None, [Finding(
            "unreadable", Severity.ERROR,
            f"the XML is not well-formed (truncated or damaged file?): {exc}", file=file)], path)
    namespace, _, local = root.tag[1:].rpartition("}") if root.tag.startswith("{") else (
        "", "", root.tag)
    if local != "TrainingCenterDatabase":
        return _result(None, None, None, [Finding(
            "unreadable", Severity.ERROR,
            f"XML root element is {local!r}, not TrainingCenterDatabase: not a TCX file",
            file=file)], path)
    q = (lambda name: f"{{{namespace}}}{name}") if namespace else (lambda name: name)
    points = list(root.iter(q("Trackpoint")))
    if not points:
        return _result(None, None, None, [Finding(
            "empty", Severity.ERROR, "the TCX file has no Trackpoint", file=file)], path)
    times = pd.Series([(p.findtext(q("Time")) or "").strip() for p in points])
    hr = parse_number(pd.Series([(p.findtext(f"{q('HeartRateBpm')}/{q('Value')}") or "")
                                 for p in points], dtype=object))
    stamps = pd.to_datetime(times, format="ISO8601", utc=True, errors="coerce")
    return _clean(stamps.astype("datetime64[ns, UTC]"), "time_utc", hr, "Time",
                  "HeartRateBpm", times, file, path)


def _read_delimited(path: Path, file: str, max_file_bytes: int) -> pd.DataFrame:
    """Time and heart rate from a delimited text file."""
    frame, findings = read_text_table(path, max_file_bytes)
    if frame.empty:
        return _result(None, None, None, findings, path)
    headers = {normalise_header(str(column)): column for column in reversed(frame.columns)}
    time_label = next((headers[h] for h in TIME_COLUMNS if h in headers), None)
    hr_label = next((headers[h] for h in HR_COLUMNS if h in headers), None)
    found = ", ".join(map(str, frame.columns))
    if time_label is None:
        findings.append(Finding("unreadable", Severity.ERROR,
                                f"no time column: the header needs one of "
                                f"{', '.join(TIME_COLUMNS)} (found {found})", file=file))
        return _result(None, None, None, findings, path)
    if hr_label is None:
        findings.append(Finding("missing-channel", Severity.WARNING,
                                f"no heart-rate column: the header needs one of "
                                f"{', '.join(HR_COLUMNS)} (found {found})", file=file))
        return _result(None, None, None, findings, path)
    cells = frame[time_label].astype(str).str.strip()
    times, kind = _csv_times(cells, normalise_header(str(time_label)))
    result = _clean(times, kind, parse_number(frame[hr_label]), str(time_label),
                    str(hr_label), cells, file, path)
    result.attrs["findings"][:0] = findings
    return result


def _csv_times(cells: pd.Series, header: str) -> tuple[pd.Series, str]:
    """Times of a delimited companion's time column and the result column they make."""
    unit = "ms" if header.endswith("_ms") else "min" if header.endswith("_min") else "s"
    seconds = parse_time_s(cells, unit)
    is_stamp = cells.str.match(_DATE_TIME)
    zoned = is_stamp & cells.str.contains(_ZONE)
    utc = pd.to_datetime(cells.where(zoned), format="ISO8601", utc=True, errors="coerce")
    local = pd.to_datetime(cells.where(is_stamp & ~zoned), format="ISO8601", errors="coerce")
    counts = [seconds.notna().sum(), utc.notna().sum(), local.notna().sum()]
    best = int(np.argmax(counts))
    if best == 1:
        return utc.astype("datetime64[ns, UTC]"), "time_utc"
    if best == 2:
        midnight = local.dropna().iloc[0].normalize()
        return (local - midnight).dt.total_seconds(), "t"
    return seconds, "t"


def _clean(times: pd.Series, kind: str, hr: pd.Series, time_label: str, hr_label: str,
           time_cells: pd.Series, file: str, path: Path) -> pd.DataFrame:
    """Drop unreadable times and unusable heart rates, sort, drop repeated times."""
    findings: list[Finding] = []
    bad_time = times.isna() & (time_cells != "")
    if bad_time.any():
        first = int(np.flatnonzero(bad_time.to_numpy())[0])
        findings.append(Finding(
            "non-numeric", Severity.WARNING,
            f"{int(bad_time.sum())} time cell(s) could not be read and their rows were "
            f"dropped; the first is {time_cells.iloc[first]!r}", file=file, column=time_label,
            row=first + 1))
    hr = hr.astype(float).copy()
    zero = hr == 0
    if zero.any():
        findings.append(Finding(
            "device-zero-missing", Severity.INFO,
            f"{int(zero.sum())} of {len(hr)} heart rate(s) were 0 (not measured) and are "
            "left out", file=file, column=hr_label))
    low, high = HR_RANGE_PER_MIN
    implausible = ~zero & hr.notna() & ~hr.between(low, high)
    if implausible.any():
        first = int(np.flatnonzero(implausible.to_numpy())[0])
        findings.append(Finding(
            "implausible-values", Severity.WARNING,
            f"{int(implausible.sum())} heart rate(s) outside {low:g}-{high:g} /min are left "
            f"out; the first is {hr.iloc[first]:g}", file=file, column=hr_label, row=first + 1))
    hr[zero | implausible] = np.nan
    if hr.isna().all():
        findings.append(Finding("missing-channel", Severity.WARNING,
                                "the file has no heart rate values", file=file,
                                column=hr_label))
    if kind == "time_utc":
        origin = times.dropna().iloc[0] if times.notna().any() else pd.Timestamp(0, tz="UTC")
        axis_s = (times - origin).dt.total_seconds()
    else:
        axis_s = times
    frame = pd.DataFrame({"t": axis_s.astype(float), "time": times, "HR": hr})
    frame = frame[frame["HR"].notna()]
    frame, time_findings = clean_time(frame, file, time_label)
    findings += time_findings
    return _result(frame["time"] if kind == "time_utc" else frame["t"], kind, frame["HR"],
                   findings, path)


def _start_utc(metadata: Metadata) -> tuple[pd.Timestamp | None, str]:
    """The record's absolute start (its t = 0) in UTC and where it is from, or None and why."""
    extra = metadata.extra.get("start_time_utc")
    if extra is not None:
        try:
            start = pd.Timestamp(extra)
        except (ValueError, TypeError):
            start = pd.NaT
        if start is not pd.NaT:
            start = start.tz_localize("UTC") if start.tz is None else start.tz_convert("UTC")
            return start, "metadata.extra['start_time_utc']"
        return None, f"metadata.extra['start_time_utc'] = {extra!r} is not a date-time"
    date = metadata.test_date or ""
    if not _DATE_TIME.match(date):
        return None, ("the record has no absolute start time: metadata.test_date has no time "
                      "of day and there is no metadata.extra['start_time_utc']")
    try:
        start = pd.Timestamp(date)
    except ValueError:
        return None, f"metadata.test_date {date!r} is not an ISO 8601 date-time"
    if start.tz is None:
        return None, (f"metadata.test_date {date!r} has no UTC offset: a local clock, not "
                      "comparable with UTC times")
    return start.tz_convert("UTC"), "metadata.test_date"


def _align(metadata: Metadata, times: pd.Series, offset_s: float | None
           ) -> tuple[np.ndarray, str, str]:
    """Each companion sample's time on the record's axis, how it was aligned, and the rule."""
    if times.dtype.kind == "M":
        companion_s = (times - times.iloc[0]).dt.total_seconds().to_numpy(dtype=float)
        first = f"first sample {times.iloc[0].isoformat()}"
    else:
        companion_s = times.to_numpy(dtype=float)
        first = f"first sample at its t = {companion_s[0]:g} s"
    start, origin = _start_utc(metadata)
    if offset_s is not None:
        axis = "after its first sample" if times.dtype.kind == "M" else "on its own time axis"
        note = f"; the record's start {start.isoformat()} was not used" if start is not None else ""
        return (companion_s - offset_s,
                f"by offset_s: companion time {offset_s:g} s ({axis}) is the record's t = 0{note}",
                "offset_s")
    if start is not None and times.dtype.kind == "M":
        record_s = (times - start).dt.total_seconds().to_numpy(dtype=float)
        return (record_s,
                f"by clock: record t = 0 at {start.isoformat()} ({origin}), companion's {first}"
                f" at record t = {record_s[0]:g} s", "clock")
    why = origin if start is None else (f"the record starts at {start.isoformat()} ({origin}) "
                                        "but the companion's times are not UTC instants")
    return (companion_s - companion_s[0],
            f"assumed: companion's {first} at the record's t = 0, because {why}", "assumed")


def _interpolate(t_s: np.ndarray, sample_s: np.ndarray, hr: np.ndarray) -> np.ndarray:
    """Linear interpolation at ``t_s``; NaN outside the samples' span and across long gaps."""
    after = np.clip(np.searchsorted(sample_s, t_s, side="right"), 1, len(sample_s) - 1)
    gap_s = sample_s[after] - sample_s[after - 1]
    inside = (t_s >= sample_s[0]) & (t_s <= sample_s[-1])
    ok = inside & ((gap_s <= MAX_GAP_S) | np.isin(t_s, sample_s))
    out = np.full(len(t_s), np.nan)
    out[ok] = np.interp(t_s[ok], sample_s, hr)
    return out
