"""Shared steps for turning a parsed table into a clean canonical record."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity, display_name
from ..record import (
    CANONICAL_UNITS,
    LABEL_COLUMNS,
    CPETRecord,
    Metadata,
    detect_sampling,
    length_problem,
)
from ._sniff import utf16_text

#: Channels in which a device writes 0 for "not measured".
ZERO_MEANS_MISSING = ("HR", "RF")
#: Canonical columns of text, not numbers.
TEXT_COLUMNS = ("phase",)
#: Longest line (characters) of a text file that is parsed. A CPET export's longest line (a
#: header of a few hundred labels) has a few thousand; Python's ``csv`` module refuses a field
#: over 131,072 characters, so no line under this limit can hold one.
MAX_LINE_CHARS = 100_000
#: Most fields in one line of a text file that is parsed: pandas names a header's columns in
#: time that grows with the square of their number (a header of 100,000 fields takes
#: minutes, one of 2,000,000 hours), and a CPET export has at most a few hundred columns.
MAX_LINE_FIELDS = 10_000
#: Field separators counted against :data:`MAX_LINE_FIELDS` (the most frequent one counts).
FIELD_SEPARATORS = ("\t", ";", ",", "|")


def sha256_hex(data: bytes) -> str:
    """sha256 of ``data`` as hex."""
    return hashlib.sha256(data).hexdigest()


def decode_text(data: bytes, file: str) -> str:
    """Decode text: UTF-16 with a byte-order mark, UTF-8 (BOM allowed), else Latin-1 when it
    has no NUL bytes; then refuse it if a line is too long to parse (:func:`check_line_sizes`).
    """
    text = utf16_text(data)
    if text is None:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if b"\x00" in data:
                raise CPETError(
                    Finding("unreadable", Severity.ERROR,
                            "text is neither UTF-8 nor a single-byte encoding (NUL bytes found)",
                            file=file)
                ) from None
            text = data.decode("latin-1")
    check_line_sizes(text, file)
    return text


def check_line_sizes(text: str, file: str) -> None:
    """Refuse text with a line longer than :data:`MAX_LINE_CHARS` characters or of more than
    :data:`MAX_LINE_FIELDS` fields, before any parser sees it (lines end at LF, CR LF or a
    lone CR, as for pandas).

    Raises
    ------
    CPETError
        ``line-too-long``, naming the first such line (1-based) and what it holds.
    """
    for number, line in enumerate(text.split("\n"), 1):
        if len(line) < MAX_LINE_FIELDS:
            continue  # too short to hold that many fields
        line = max(line.split("\r"), key=len)
        separator = max(FIELD_SEPARATORS, key=line.count)
        n_fields = line.count(separator) + 1
        if len(line) > MAX_LINE_CHARS or n_fields > MAX_LINE_FIELDS:
            raise CPETError(Finding(
                "line-too-long", Severity.ERROR,
                f"line {number} has {len(line):,} characters and {n_fields:,} fields "
                f"separated by {separator!r}; the limits are {MAX_LINE_CHARS:,} characters and "
                f"{MAX_LINE_FIELDS:,} fields (a CPET export has a few hundred columns at most): "
                "the file was not parsed", file=file))


def load_text(path: Path, format_name: str) -> tuple[str, Metadata]:
    """A text export's decoded content and the metadata that identifies its source.

    Returns
    -------
    (str, Metadata)
        The text, and metadata with ``source_name``, ``source_sha256`` and ``format`` set.
    """
    data = Path(path).read_bytes()
    return decode_text(data, str(path)), source_metadata(path, data, format_name)


def source_metadata(path: Path, data: bytes, format_name: str, **fields) -> Metadata:
    """Metadata identifying a file: its name, the sha256 of ``data`` (its bytes), the reader's
    format name, and any other :class:`~cpet_nb.record.Metadata` ``fields`` given."""
    return Metadata(source_name=display_name(Path(path).name), source_sha256=sha256_hex(data),
                    format=format_name, **fields)


def positive_number(text: str, label: str, file: str, findings: list[Finding]) -> float | None:
    """A positive number from a metadata cell (decimal comma allowed), else None and a finding.

    ``label`` names the cell in the finding, e.g. ``"[person] gewicht"``.
    """
    try:
        number = float(text.strip().replace(",", "."))
    except ValueError:
        number = float("nan")
    if np.isfinite(number) and number > 0:
        return number
    findings.append(Finding("non-numeric", Severity.WARNING,
                            f"{label} = {text!r} is not a positive number; left missing",
                            file=file, column=label.split()[-1]))
    return None


def read_csv_text(text: str, file: str, **kwargs) -> pd.DataFrame:
    """``pandas.read_csv`` on text, with parse failures turned into an ``unreadable`` finding.

    The text goes to pandas' C parser as UTF-8 bytes, which it tokenises directly (from a
    text stream it would first encode every chunk itself, which takes longer), in one pass
    (``low_memory=False``: the text is in memory already, and a column's type is inferred
    from all its cells, not chunk by chunk; a fifth less time on a 10-minute test).
    """
    separator = kwargs.get("sep", kwargs.get("delimiter", ","))
    if (kwargs.get("engine") in (None, "c") and isinstance(separator, str)
            and len(separator) == 1 and not kwargs.get("skipfooter")):  # the C parser's
        kwargs.setdefault("low_memory", False)
    try:
        return pd.read_csv(io.BytesIO(text.encode("utf-8")), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise CPETError(
            Finding("unreadable", Severity.ERROR, f"could not parse as CSV: {exc}", file=file)
        ) from None


def numeric_columns(columns: dict[str, np.ndarray], file: str, source_names: dict[str, str]
                    ) -> list[Finding]:
    """Replace every canonical numeric column of ``columns`` by float values, reporting text
    cells.

    A cell that is not a number becomes missing, and the first such cell of each column is
    reported (never turned into 0).
    """
    findings = []
    for column, values in columns.items():
        if column in TEXT_COLUMNS or values.dtype.kind == "f":
            continue  # parsed as numbers already: nothing to report or convert
        if values.dtype.kind in "iub":  # whole numbers or booleans: every cell is a number
            columns[column] = values.astype(float)
            continue
        numbers = pd.to_numeric(pd.Series(values), errors="coerce")
        numbers = numbers.to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(numbers) & pd.notna(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            findings.append(Finding(
                "non-numeric", Severity.WARNING,
                f"{int(bad.sum())} cell(s) are not numbers and were left missing; "
                f"the first is {values[first]!r}",
                file=file, column=source_names.get(column, column), row=first + 1,
            ))
        columns[column] = numbers
    return findings


def clean_time_rows(t_s: np.ndarray, file: str, time_name: str
                    ) -> tuple[np.ndarray | None, list[Finding]]:
    """The rows to keep, in time order: rows without time dropped, backward steps sorted,
    duplicate times dropped (the first kept).

    Policy: a row whose time equals an earlier row's time is dropped, because two samples
    at one instant cannot both be breaths; rows that go back in time are sorted, because
    exports that do this have appended blocks. Both are reported.

    Parameters
    ----------
    t_s : numpy.ndarray
        Each row's time (s) as read, NaN where a row has none.
    file, time_name : str
        The file and its time column, named in findings.

    Returns
    -------
    (numpy.ndarray or None, list of Finding)
        The positions of the rows kept, in their new order (None: every row, as they are),
        and what was done.
    """
    findings = []
    rows = np.flatnonzero(~np.isnan(t_s))
    t = t_s[rows]
    steps = np.diff(t)
    if np.any(steps < 0):
        findings.append(Finding(
            "non-monotonic-time", Severity.WARNING,
            f"time goes backwards {int(np.sum(steps < 0))} time(s); rows were sorted by time",
            file=file, column=time_name, row=int(np.flatnonzero(steps < 0)[0]) + 2,
        ))
        order = np.argsort(t, kind="stable")
        rows, t = rows[order], t[order]
    duplicated = np.zeros(len(t), dtype=bool)
    duplicated[1:] = t[1:] == t[:-1]  # sorted: a repeat follows the row it repeats
    if duplicated.any():
        findings.append(Finding(
            "duplicate-time", Severity.WARNING,
            f"{int(duplicated.sum())} row(s) repeat an earlier time and were dropped "
            "(the first row at each time was kept)",
            file=file, column=time_name,
        ))
        rows = rows[~duplicated]
    if len(rows) == len(t_s) and not findings:
        return None, findings
    return rows, findings


def clean_time(frame: pd.DataFrame, file: str, time_name: str
               ) -> tuple[pd.DataFrame, list[Finding]]:
    """:func:`clean_time_rows` on a frame's ``t`` column: the frame of the rows kept, with a
    new range index."""
    rows, findings = clean_time_rows(frame["t"].to_numpy(dtype=float), file, time_name)
    if rows is not None:
        frame = frame.iloc[rows]
    return frame.reset_index(drop=True), findings


def phases_at(t_s: np.ndarray, starts: Sequence[tuple[float, str]]) -> np.ndarray:
    """Each row's phase: the phase of the last start at or before its time.

    Parameters
    ----------
    t_s : numpy.ndarray
        Row times (s).
    starts : sequence of (float, str)
        ``(time_s, phase)``: when each phase starts (canonical phase names), in any order;
        of starts at the same time the last given wins.

    Returns
    -------
    numpy.ndarray
        Object array of phases; None before the first start.
    """
    ordered = sorted(starts, key=lambda start: start[0])
    labels = np.array([None] + [phase for _, phase in ordered], dtype=object)
    return labels[np.searchsorted([time for time, _ in ordered], t_s, side="right")]


def zeros_to_missing(columns: dict[str, np.ndarray], file: str, source_names: dict[str, str],
                     channels: tuple[str, ...] = ZERO_MEANS_MISSING) -> list[Finding]:
    """Turn device zeros that mean 'not measured' (e.g. HR = 0) into missing values, in the
    float ``columns`` named by ``channels``."""
    findings = []
    for column in channels:
        if column in columns:
            zero = columns[column] == 0
            if zero.any():
                columns[column] = values = columns[column].copy()  # may be the reader's
                values[zero] = np.nan
                findings.append(Finding(
                    "device-zero-missing", Severity.INFO,
                    f"{int(zero.sum())} of {len(zero)} value(s) were 0 (not measured) "
                    "and are now missing",
                    file=file, column=source_names.get(column, column),
                ))
    return findings


def build_record(frame: pd.DataFrame | Mapping[str, np.ndarray], metadata: Metadata,
                 source_names: dict[str, str], findings: list[Finding] | None = None, *,
                 file: str, zero_means_missing: tuple[str, ...] = ()) -> CPETRecord:
    """Finish a reader's work: numeric columns, length check, clean time, device zeros,
    sampling.

    The columns are worked on as arrays and made into the record's frame once, at the end
    (a frame's per-column operations cost more than the arithmetic on a test's few hundred
    rows; docs/performance.md).

    Parameters
    ----------
    frame : pandas.DataFrame or mapping of str to numpy.ndarray
        Columns already renamed to canonical names and converted to canonical units, all
        of one length. Left as it is.
    metadata : Metadata
    source_names : dict
        Canonical name -> the column's name in the file, for findings.
    findings : list of Finding, optional
        What the reader found so far.
    file : str
        The path as given, named in findings.
    zero_means_missing : tuple of str
        Channels besides HR and RF in which this format writes 0 for "not measured" (e.g. a
        breath-by-breath VO2 of 0).
    """
    findings = list(findings or [])
    if isinstance(frame, pd.DataFrame):
        if frame.columns.has_duplicates:
            raise ValueError(f"reader bug: repeated columns {list(frame.columns)}")
        columns = {column: frame[column].to_numpy() for column in frame.columns}
        text_dtypes = {column: frame[column].dtype for column in TEXT_COLUMNS if column in frame}
    else:
        columns = {column: np.asarray(values) for column, values in frame.items()}
        text_dtypes = {}
    unknown = [c for c in columns if c not in CANONICAL_UNITS and c not in LABEL_COLUMNS]
    if unknown:
        raise ValueError(f"reader bug: non-canonical columns {unknown}")
    if not columns or len(next(iter(columns.values()))) == 0:
        raise CPETError(Finding("empty", Severity.ERROR, "the file has no data rows", file=file))
    findings += numeric_columns(columns, file, source_names)
    time_name = source_names.get("t", "t")
    t_s = columns["t"]
    if np.isnan(t_s).all():
        raise CPETError(Finding("unreadable", Severity.ERROR, "no row has a numeric time",
                                file=file, column=time_name))
    too_long = length_problem(t_s, file, time_name)  # before sorting
    if too_long is not None:
        raise CPETError(too_long)
    rows, time_findings = clean_time_rows(t_s, file, time_name)
    findings += time_findings
    if rows is not None:
        columns = {column: values[rows] for column, values in columns.items()}
    findings += zeros_to_missing(columns, file, source_names,
                                 ZERO_MEANS_MISSING + zero_means_missing)
    metadata.sampling = detect_sampling(columns["t"])
    return CPETRecord(_frame(columns, text_dtypes), metadata, findings)


def _frame(columns: dict[str, np.ndarray], text_dtypes: Mapping[str, object]) -> pd.DataFrame:
    """The record's frame: the float columns as one block (a sixth of the time of a frame
    made column by column), the others inserted where they were, text columns with the
    dtypes ``text_dtypes`` the reader gave them (a missing phase stays None)."""
    names = list(columns)
    floats = [name for name in names if columns[name].dtype == np.float64]
    data = (pd.DataFrame(np.vstack([columns[name] for name in floats]).T,
                         columns=pd.Index(floats, dtype=object)) if floats
            else pd.DataFrame(index=pd.RangeIndex(len(columns["t"])),
                              columns=pd.Index([], dtype=object)))
    for position, name in enumerate(names):
        if name not in floats:
            data.insert(position, name, pd.Series(columns[name], dtype=text_dtypes.get(name),
                                                  copy=False))
    return data
