"""Reviewers' threshold overrides: the review queue, and decisions kept as data.

A reviewer looks at the flagged tests first (:func:`review_queue`) and, for VT1 or VT2 of a
test, sets the time, picks one method's estimate, or accepts the consensus. Each decision is
an :class:`Override`: the values at the new time, recomputed with the code of the automatic
thresholds, who decided, when, why, and what the value was before. Overrides are appended to
the store's ``overrides`` table (:meth:`~cpet_nb.batch.store.Store.add_overrides`), never
written over the machine's values; the results table shows the current one in its final
columns (``vt1_final_time_s``, ..., ``vt1_source``), in every job holding the same file
content analysed under the same analysis key (a resume, a re-run, a reused result).

Values at a new time, as for the automatic thresholds:

- the time is snapped to the whole second of the 1 s grid (:func:`cpet_nb.grid.snap_to_grid`)
  and must lie within the recording;
- VO2 is the binned exercise VO2 interpolated there, as each classical method gives it at its
  breakpoint (:func:`cpet_nb.physiology.thresholds.vo2_at`);
- HR and load as the results give them at the consensus (:func:`cpet_nb.analysis.hr_load_at`).

A method's estimate keeps its own time and VO2, with HR and load recomputed at its time; the
consensus keeps its values. Times and method picks read the file again (from the path the
job recorded; its content must not have changed), as the store keeps no breath data.

>>> THRESHOLDS, ACCEPT
(('vt1', 'vt2'), 'consensus')
"""

from __future__ import annotations

import csv
import getpass
import io
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..analysis import hr_load_at, record_as_analysed
from ..findings import CPETError, Finding, Severity
from ..grid import snap_to_grid
from ..model import DEFAULT_MODEL
from ..physiology.consensus import REVIEW_REASONS
from ..physiology.thresholds import CLASSICAL_METHODS, vo2_at
from ..result import MODEL_COLUMN_NAMES
from ..settings import Settings
from .store import Store, utc_now

#: The thresholds a reviewer can override.
THRESHOLDS = ("vt1", "vt2")
#: The method name that accepts the consensus as it is.
ACCEPT = "consensus"
#: The method name of the model's vote in the consensus (the ensemble of several models, or
#: the one model chosen).
MODEL = "model"
#: Columns of an overrides CSV (:func:`read_requests`): ``file`` and ``threshold`` always,
#: ``time_s`` or ``method`` (one of them), ``note`` and ``reviewer`` optional.
CSV_COLUMNS = ("file", "threshold", "time_s", "method", "note", "reviewer")
#: Result statuses of tests that were analysed (and so can be reviewed).
ANALYSED = ("ok", "warning")


class OverrideRefused(ValueError):
    """Overrides that were not stored, with one finding per bad request (``findings``)."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        super().__init__("no override stored: " + "; ".join(str(f) for f in findings))
        self.findings = list(findings)


@dataclass(frozen=True)
class OverrideRequest:
    """What a reviewer asks for one threshold of one test.

    Attributes
    ----------
    file : str or int
        The input as the job names it (or its file name, when that is unique in the job), or
        its index.
    threshold : str
        ``vt1`` or ``vt2``.
    time_s : float, optional
        The time the reviewer sets (s from the start of the recording).
    method : str, optional
        Instead of a time: :data:`ACCEPT` (the consensus), :data:`MODEL` (the model's vote),
        a model (``cnn``, ``ais``, ..., ``ensemble``) or a classical method (``vslope``,
        ``equivalents``, ``peto2`` for VT1; ``equivalents``, ``petco2``, ``vslope`` for VT2).
    note : str, optional
    reviewer : str, optional
        Who decides (default: :func:`default_reviewer`).
    row : int, optional
        The request's line in an overrides CSV (for findings).
    """

    file: str | int
    threshold: str
    time_s: float | None = None
    method: str | None = None
    note: str | None = None
    reviewer: str | None = None
    row: int | None = None


@dataclass(frozen=True)
class Override:
    """One stored decision (a row of the store's ``overrides`` table).

    Attributes
    ----------
    job_id, file, sha256, analysis_key : str
        Where it was made, and the test it applies to (file content and analysis key).
    threshold : str
    source : str
        ``expert`` (a time was set), a method's name, ``model`` or ``consensus``.
    time_s, vo2_ml_min, hr_bpm, load_w : float
        The final values (NaN where unknown).
    reviewer, created_at : str
        Who decided, and when (UTC, ISO 8601).
    note : str or None
    previous_time_s, previous_vo2_ml_min : float
    previous_source : str or None
        The final values before this decision.
    """

    job_id: str
    file: str
    sha256: str
    analysis_key: str
    threshold: str
    source: str
    time_s: float
    vo2_ml_min: float
    hr_bpm: float
    load_w: float
    reviewer: str
    created_at: str
    note: str | None
    previous_time_s: float
    previous_vo2_ml_min: float
    previous_source: str | None

    def to_dict(self) -> dict[str, Any]:
        """The override as a row of the ``overrides`` table."""
        return asdict(self)


def default_reviewer() -> str:
    """Who is reviewing when no reviewer is named: the JupyterHub user (``$JUPYTERHUB_USER``,
    set in every single-user server of a Hub, where the OS user is often one shared account),
    else the operating-system user running this process.

    Raises
    ------
    ValueError
        When the system cannot say (then a reviewer must be named).
    """
    if os.environ.get("JUPYTERHUB_USER"):
        return os.environ["JUPYTERHUB_USER"]
    try:
        return getpass.getuser()
    except (OSError, KeyError) as exc:
        raise ValueError("who is reviewing? the system does not say: give a reviewer") from exc


def method_columns(threshold: str, settings: Settings) -> dict[str, tuple[str, str]]:
    """The estimates a reviewer can pick for ``threshold``: name to (time, VO2) columns.

    Examples
    --------
    >>> columns = method_columns("vt1", Settings())
    >>> columns["vslope"], columns["model"], columns["cnn"], columns["ais"]
    (('vt1_vslope_time_s', 'vt1_vslope_vo2_ml_min'), ('vt1_time_s', 'vt1_vo2_ml_min'), \
('vt1_time_s', 'vt1_vo2_ml_min'), ('vt1_ais_time_s', 'vt1_ais_vo2_ml_min'))
    """
    def model(name: str) -> tuple[str, str]:
        stem = threshold if name == DEFAULT_MODEL else f"{threshold}_{name}"
        return f"{stem}_time_s", f"{stem}_vo2_ml_min"

    columns = {key.split("_", 1)[1]: (f"{key}_time_s", f"{key}_vo2_ml_min")
               for key in CLASSICAL_METHODS if key.startswith(f"{threshold}_")}
    columns |= {name: model(name) for name in (DEFAULT_MODEL, *MODEL_COLUMN_NAMES)}
    vote = "ensemble" if len(settings.models) > 1 else settings.models[0]
    return columns | {MODEL: model(vote)}


def apply_overrides(store: Store, job_id: str, requests: Iterable[OverrideRequest], *,
                    reviewer: str | None = None, rejected: Sequence[Finding] = ()
                    ) -> list[Override]:
    """Recompute and store reviewers' overrides of one job's thresholds, all or none.

    Every request is checked first; if any is bad nothing is stored, and the error lists
    one finding per bad request. Requests for the same test and threshold are applied in
    order (each one's previous value is the one before it).

    Parameters
    ----------
    store : Store
    job_id : str
    requests : iterable of OverrideRequest
    reviewer : str, optional
        Who decides where a request does not say (default: :func:`default_reviewer`).
    rejected : sequence of Finding
        Requests already refused (e.g. the rows :func:`read_requests` could not read): with
        any, the others are still checked, for their findings, and nothing is stored.

    Returns
    -------
    list of Override
        As stored.

    Raises
    ------
    OverrideRefused
        With a finding per bad request: ``override-unknown-file``,
        ``override-not-analysed``, ``override-bad-request``, ``override-bad-threshold``,
        ``override-unknown-method``, ``override-no-estimate``,
        ``override-time-outside-test`` or ``override-file-unavailable``.
    KeyError
        For an unknown job.
    """
    job = store.job(job_id)
    context = _Context(store, job_id, job["analysis_key"], Settings.from_dict(job["settings"]))
    overrides, findings = [], list(rejected)
    for request in requests:
        try:
            override = context.recompute(
                request, request.reviewer or reviewer or default_reviewer())
        except CPETError as exc:
            findings.append(exc.finding)
            continue
        context.current[(override.file, override.threshold)] = override
        overrides.append(override)
    if findings:
        raise OverrideRefused(sorted(findings, key=lambda f: f.row or 0))
    store.add_overrides([o.to_dict() for o in overrides])
    return overrides


class _Context:
    """One job's tables, read once for a series of requests."""

    def __init__(self, store: Store, job_id: str, analysis_key: str, settings: Settings) -> None:
        self.job_id = job_id
        self.analysis_key = analysis_key  # every stored result of the job has it
        self.settings = settings
        self.files = store.files(job_id).set_index("name", drop=False)
        self.results = store.results(job_id).set_index("file", drop=False)
        #: Overrides made in this series, by (file, threshold): the newest previous values.
        self.current: dict[tuple[str, str], Override] = {}
        self._records: dict[str, Any] = {}

    def recompute(self, request: OverrideRequest, reviewer: str) -> Override:
        name = self._name(request)
        where = {"file": name, "row": request.row}
        threshold = str(request.threshold).strip().lower()
        if threshold not in THRESHOLDS:
            raise _refused("override-bad-threshold", f"threshold {request.threshold!r}: "
                           f"expected one of {', '.join(THRESHOLDS)}", **where)
        if (request.time_s is None) == (request.method is None):
            raise _refused("override-bad-request", f"{threshold}: give a time (time_s) or a "
                           f"method ({ACCEPT!r} accepts the consensus), not "
                           f"{'both' if request.method is not None else 'neither'}", **where)
        row = self.results.loc[name]
        if row["status"] not in ANALYSED:
            raise _refused("override-not-analysed", f"the test was not analysed (status "
                           f"{row['status']}): there is no threshold to review", **where)
        if request.time_s is not None:
            source, values = "expert", self._at_time(name, float(request.time_s), where)
        else:
            source, values = self._picked(name, row, threshold, request.method, where)
        before = self.current.get((name, threshold))
        previous = ((before.time_s, before.vo2_ml_min, before.source) if before else
                    (row[f"{threshold}_final_time_s"], row[f"{threshold}_final_vo2_ml_min"],
                     row[f"{threshold}_source"]))
        entry = self.files.loc[name]
        return Override(self.job_id, name, entry["sha256"], self.analysis_key, threshold, source,
                        **values, reviewer=reviewer, created_at=utc_now(),
                        note=request.note or None, previous_time_s=_float(previous[0]),
                        previous_vo2_ml_min=_float(previous[1]), previous_source=previous[2])

    def _name(self, request: OverrideRequest) -> str:
        """The job's name of the requested input (an index, a name, or a unique file name)."""
        names = self.files["name"]
        wanted = request.file
        if isinstance(wanted, numbers.Integral) and not isinstance(wanted, bool):
            match = names[self.files["idx"] == int(wanted)].tolist()
        else:
            wanted = str(wanted).strip()
            match = [n for n in names if n == wanted] or [
                n for n in names if Path(n).name == Path(wanted).name]
        if len(match) != 1:
            shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
            how = "several inputs have that file name" if match else "no such input"
            raise _refused("override-unknown-file", f"{wanted!r}: {how} in job {self.job_id} "
                           f"(give the name as the job lists it: {shown})",
                           file=str(wanted), row=request.row)
        if match[0] not in self.results.index:
            raise _refused("override-not-analysed", "the input has no stored result yet",
                           file=match[0], row=request.row)
        return match[0]

    def _picked(self, name: str, row: pd.Series, threshold: str, method: str,
                where: Mapping[str, Any]) -> tuple[str, dict[str, float]]:
        """Source and values of a method's estimate, or of the consensus."""
        method = str(method).strip().lower()
        if method == ACCEPT:
            if not math.isfinite(row[f"{threshold}_consensus_time_s"]):
                raise _refused("override-no-estimate", f"{threshold}: there is no consensus "
                               "to accept (no method gave an estimate): set a time", **where)
            return ACCEPT, {value: _float(row[f"{threshold}_{column}"]) for value, column in
                            (("time_s", "consensus_time_s"),
                             ("vo2_ml_min", "consensus_vo2_ml_min"),
                             ("hr_bpm", "consensus_hr_bpm"), ("load_w", "consensus_load_w"))}
        columns = method_columns(threshold, self.settings)
        if method not in columns:
            raise _refused("override-unknown-method", f"{threshold}: method {method!r}: "
                           f"expected {ACCEPT}, or one of {', '.join(columns)}", **where)
        time_column, vo2_column = columns[method]
        time_s = row[time_column]
        if not math.isfinite(time_s):
            raise _refused("override-no-estimate", f"{threshold}: {method} gave no estimate "
                           "for this test (the findings say why): pick another or set a time",
                           **where)
        record = self._record(name, where)
        return method, {"time_s": float(time_s), "vo2_ml_min": _float(row[vo2_column]),
                        **hr_load_at(record.data, float(time_s))}

    def _at_time(self, name: str, time_s: float, where: Mapping[str, Any]) -> dict[str, float]:
        """Values at the grid second nearest ``time_s``, as for the automatic thresholds."""
        record = self._record(name, where)
        t_s = record.data["t"].to_numpy(dtype=float)
        snapped = snap_to_grid(time_s, t_s)
        if snapped is None:
            raise _refused("override-time-outside-test", f"time {time_s:g} s is outside the "
                           f"test (its samples run from {t_s[0]:g} to {t_s[-1]:g} s)", **where)
        return {"time_s": snapped, "vo2_ml_min": vo2_at(record, snapped),
                **hr_load_at(record.data, snapped)}

    def _record(self, name: str, where: Mapping[str, Any]):
        """The test's breath data as analysed, read again from the path the job recorded."""
        if name not in self._records:
            entry = self.files.loc[name]
            path = entry["path"]
            try:
                record = record_as_analysed(path, self.settings)
            except CPETError as exc:
                raise _refused("override-file-unavailable", f"the values at a new time are "
                               f"read from the file again, and {path} cannot be read now "
                               f"({exc.finding.code}: {exc.finding.message}); archive members "
                               "and uploads are removed when a job finishes unless "
                               "keep_uploads is set", **where) from exc
            if record.metadata.source_sha256 != entry["sha256"]:
                raise _refused("override-file-unavailable", f"{path} has changed since the "
                               f"job read it (sha256 {record.metadata.source_sha256}, expected "
                               f"{entry['sha256']})", **where)
            self._records[name] = record
        return self._records[name]


def review_queue(results: pd.DataFrame) -> pd.DataFrame:
    """The analysed tests in the order a reviewer should take them.

    Flagged tests (``review``) first; then by uncertainty, largest first, when the results
    have ``vt1_uncertainty_ml_min`` / ``vt2_uncertainty_ml_min`` (the larger of the two),
    else by how many review flags are raised; ties in input order.

    Parameters
    ----------
    results : pandas.DataFrame
        A results table (:meth:`cpet_nb.batch.Batch.results`).

    Returns
    -------
    pandas.DataFrame
        ``file``, ``review``, ``reasons`` (the raised flags, comma-separated),
        ``uncertainty_ml_min`` (when the results have it), then per threshold the final time
        and VO2 and their source.
    """
    table = results[results["status"].isin(ANALYSED)].copy()
    uncertainty = [c for c in ("vt1_uncertainty_ml_min", "vt2_uncertainty_ml_min")
                   if c in table]
    reasons = [r for r in REVIEW_REASONS if r in table]
    table["reasons"] = [", ".join(r.removeprefix("review_") for r in reasons if row[r] is True)
                        for _, row in table[reasons].astype(object).iterrows()]
    table["_flagged"] = table["review"].fillna(False).astype(bool)
    if uncertainty:
        table["uncertainty_ml_min"] = table[uncertainty].max(axis=1)
        rank = "uncertainty_ml_min"
    else:
        table["_n_flags"] = table[reasons].fillna(False).astype(int).sum(axis=1)
        rank = "_n_flags"
    table["_order"] = range(len(table))
    table = table.sort_values(["_flagged", rank, "_order"], ascending=[False, False, True],
                              na_position="last")
    shown = ["file", "review", "reasons", *(["uncertainty_ml_min"] if uncertainty else []),
             *(f"{vt}_{f}" for vt in THRESHOLDS
               for f in ("final_time_s", "final_vo2_ml_min", "source"))]
    return table[shown].reset_index(drop=True)


def read_requests(path: str | os.PathLike) -> tuple[list[OverrideRequest], list[Finding]]:
    """The override requests of a CSV file (:data:`CSV_COLUMNS`; comma, or semicolon with
    decimal commas), and a finding for each row that cannot be one.

    Returns
    -------
    tuple
        The requests (in file order, each with its ``row``: the line number), and the
        findings (``override-bad-request``: a missing column, a time that is not a finite
        number, a row without a file or threshold).
    """
    name = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [_finding("override-bad-request", f"cannot read the overrides CSV: {exc}",
                             file=name)]
    header = text.splitlines()[0] if text.strip() else ""
    delimiter = ";" if header.count(";") > header.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in ("file", "threshold") if c not in columns]
    if missing or not {"time_s", "method"} & set(columns):
        need = missing or ["time_s or method"]
        return [], [_finding("override-bad-request", f"the overrides CSV has no column "
                             f"{', '.join(need)} (expected {', '.join(CSV_COLUMNS)})",
                             file=name, row=1)]
    requests, findings = [], []
    for line, raw in enumerate(reader, start=2):
        cells = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            requests.append(_request(cells, line, delimiter))
        except CPETError as exc:
            findings.append(exc.finding)
    return requests, findings


def seconds_from_text(text: str, *, decimal_comma: bool = True) -> float:
    """A time a reviewer wrote, in seconds, as float; NaN when it is not a finite number.

    Parameters
    ----------
    text : str
        The number as typed (surrounding white space allowed).
    decimal_comma : bool
        Whether a comma is the decimal separator (as in a semicolon CSV, or typed in the
        panel).

    Examples
    --------
    >>> seconds_from_text("350,6"), seconds_from_text("350,6", decimal_comma=False)
    (350.6, nan)
    >>> seconds_from_text(" 412 "), seconds_from_text("four hundred"), seconds_from_text("inf")
    (412.0, nan, nan)
    """
    try:
        time_s = float(text.replace(",", ".") if decimal_comma else text)
    except ValueError:
        return math.nan
    return time_s if math.isfinite(time_s) else math.nan


def _request(cells: Mapping[str, str], line: int, delimiter: str) -> OverrideRequest:
    if not cells.get("file") or not cells.get("threshold"):
        raise _refused("override-bad-request", "a row needs a file and a threshold",
                       file=cells.get("file") or None, row=line)
    time_s = None
    if cells.get("time_s"):
        time_s = seconds_from_text(cells["time_s"], decimal_comma=delimiter == ";")
        if not math.isfinite(time_s):
            raise _refused("override-bad-request", f"time_s {cells['time_s']!r} is not a "
                           "number of seconds", file=cells["file"], row=line)
    return OverrideRequest(cells["file"], cells["threshold"], time_s,
                           cells.get("method") or None, cells.get("note") or None,
                           cells.get("reviewer") or None, line)


def _finding(code: str, message: str, *, file: str | None = None, row: int | None = None
             ) -> Finding:
    return Finding(code, Severity.ERROR, message, file=file, row=row)


def _refused(code: str, message: str, *, file: str | None = None, row: int | None = None
             ) -> CPETError:
    return CPETError(_finding(code, message, file=file, row=row))


def _float(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)

