"""The job store: one SQLite file holding jobs, their files, results and domain curves.

Design
------
- WAL mode, ``synchronous=FULL``: a committed partition survives a crash of the process (and
  of the machine), and readers never block the writer.
- One writer per batch (the client side, never a worker) writes each finished partition in
  one ``BEGIN IMMEDIATE`` transaction: a result is on disk before anyone is told it exists.
  Several processes may run batches on one store at once; SQLite serialises their commits
  (``busy_timeout``) and the primary keys make a second write of a result impossible.
- ``results`` has one column per :data:`cpet_nb.result.RESULT_COLUMNS` entry (added by
  ``ALTER TABLE`` when a newer cpet_nb has more), plus the content hash and analysis key
  that let a resume, or a later job, reuse a result instead of recomputing it.
- Domain curves are stored compactly: one ``.npy`` blob (float64, columns time_s,
  p_moderate, p_heavy, p_severe) per file and model: the CNN's in ``curves`` (as before
  other models could be chosen), every other model's and the ensemble's in ``model_curves``
  (a table an older store gains when it is opened).

- Reviewers' threshold overrides (:mod:`cpet_nb.batch.review`) are an append-only audit
  table, ``overrides``: a row is never updated or deleted (triggers refuse it, and deleting a
  job keeps them). The newest row per file content (sha256), analysis key and threshold is
  the current override; :meth:`Store.results` shows it in the final columns
  (``vt1_final_time_s``, ``vt1_source``, ...) of every job with that content and key,
  while the machine's values in ``results`` stay as they were computed.

Tables: ``jobs`` (one row per batch: settings, model, counts, owner process and its start
time, the user who submitted it when one is known, e.g. through the Jupyter server
extension), ``files`` (one row per input: name, path, content hash, size, device, state,
findings, error, timings), ``results``/``curves`` (one row per input with a result) and
``model_curves`` (one row per analysed file and model other than the CNN) and ``overrides``
(one row per reviewer's decision: :data:`OVERRIDE_COLUMNS`).
"""

from __future__ import annotations

import io
import json
import math
import os
import secrets
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from ..model import DEFAULT_MODEL
from ..model.domains import DomainCurves
from ..result import RESULT_COLUMNS, FileResult, consensus_as_final, results_frame

BUSY_TIMEOUT_S = 60.0
#: File in a job's upload folder naming the process that is staging it (until the job is
#: recorded): see :meth:`Store.remove_orphan_uploads`.
OWNER_MARKER = ".owner"
#: States of inputs settled when the job is created, never analysed: ``skipped`` (not a CPET
#: export) and ``refused`` (an archive problem). Their rows and results are written at once.
SETTLED_STATES = ("skipped", "refused")
#: File states. A file is ``pending`` until its result is stored (``done``), or it was
#: ``cancelled``; ``reused`` files took the stored result of an identical earlier analysis.
FILE_STATES = ("pending", "done", "reused", "cancelled", *SETTLED_STATES)
#: Result statuses (:attr:`cpet_nb.FileResult.status`).
RESULT_STATUSES = ("ok", "warning", "error", "skipped")

#: Columns of the ``overrides`` table after its id, in order (:meth:`Store.add_overrides`).
OVERRIDE_COLUMNS: tuple[str, ...] = (
    "job_id", "file", "sha256", "analysis_key", "threshold", "source", "time_s",
    "vo2_ml_min", "hr_bpm", "load_w", "reviewer", "created_at", "note", "previous_time_s",
    "previous_vo2_ml_min", "previous_source")
#: The values an override sets, in the results' final columns (``vt1_final_<value>``).
OVERRIDE_VALUES = ("time_s", "vo2_ml_min", "hr_bpm", "load_w")

_OVERRIDES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS overrides (
        override_id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id TEXT NOT NULL,
        file TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        analysis_key TEXT NOT NULL,
        threshold TEXT NOT NULL CHECK (threshold IN ('vt1', 'vt2')),
        source TEXT NOT NULL,
        time_s REAL,
        vo2_ml_min REAL,
        hr_bpm REAL,
        load_w REAL,
        reviewer TEXT NOT NULL,
        created_at TEXT NOT NULL,
        note TEXT,
        previous_time_s REAL,
        previous_vo2_ml_min REAL,
        previous_source TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS overrides_by_test ON overrides (sha256, analysis_key, threshold)",
    """CREATE TRIGGER IF NOT EXISTS overrides_never_updated BEFORE UPDATE ON overrides
       BEGIN SELECT RAISE(ABORT, 'overrides are append-only: add a new one'); END""",
    """CREATE TRIGGER IF NOT EXISTS overrides_never_deleted BEFORE DELETE ON overrides
       BEGIN SELECT RAISE(ABORT, 'overrides are append-only: add a new one'); END""",
)

#: The current override of each threshold of each stored result of a job: the newest row for
#: the file's content and the result's analysis key.
_CURRENT_OVERRIDES = f"""
SELECT r.idx, o.threshold, o.source, {", ".join(f"o.{v}" for v in OVERRIDE_VALUES)}
FROM results r
JOIN files f ON f.job_id = r.job_id AND f.idx = r.idx
JOIN overrides o ON o.sha256 = f.sha256 AND o.analysis_key = r.analysis_key
WHERE r.job_id = ? AND o.override_id = (
    SELECT MAX(n.override_id) FROM overrides n
    WHERE n.sha256 = o.sha256 AND n.analysis_key = o.analysis_key AND n.threshold = o.threshold)
"""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    finished_at TEXT,
    n_files INTEGER NOT NULL,
    settings TEXT NOT NULL,
    analysis_key TEXT NOT NULL,
    model_version TEXT NOT NULL,
    cpet_nb_version TEXT NOT NULL,
    owner TEXT,
    inputs TEXT NOT NULL,
    owner_started REAL
);
CREATE TABLE IF NOT EXISTS files (
    job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    state TEXT NOT NULL,
    status TEXT,
    device TEXT,
    findings TEXT,
    error TEXT,
    worker TEXT,
    started_at REAL,
    elapsed_s REAL,
    reused_from TEXT,
    PRIMARY KEY (job_id, idx)
);
CREATE INDEX IF NOT EXISTS files_by_state ON files (job_id, state);
CREATE TABLE IF NOT EXISTS results (
    job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    analysis_key TEXT NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS curves (
    job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    output_order TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
);
CREATE TABLE IF NOT EXISTS model_curves (
    job_id TEXT NOT NULL REFERENCES jobs(job_id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    model TEXT NOT NULL,
    output_order TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (job_id, idx, model)
);
"""


@dataclass(frozen=True)
class FileEntry:
    """One input of a job, as stored: where a worker reads it and what it contains.

    Attributes
    ----------
    idx : int
        Position in the job (results keep this order).
    name : str
        How the user knows the file (path as given, or ``archive.zip/member``).
    path : str
        Where the file's bytes are (an extracted or uploaded copy for archive members and
        in-memory uploads).
    sha256 : str
        Content hash (hex).
    size_bytes : int
    """

    idx: int
    name: str
    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class Outcome:
    """What a worker returns for one file: the result and how it was obtained."""

    idx: int
    result: FileResult
    worker: str
    started_at: float
    elapsed_s: float
    error: str | None = None


def utc_now() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def owner_id() -> str:
    """``host:pid`` of this process (the owner of the jobs it runs)."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: Two start times of one process differ by less than this (s): psutil derives them from the
#: boot time, which the kernel recomputes from the wall clock (an NTP step moves it).
START_TIME_TOLERANCE_S = 2.0


def process_started(pid: int | None = None) -> float:
    """When process ``pid`` (default: this one) started, in seconds since the epoch."""
    return psutil.Process(pid).create_time()


def owner_alive(pid: int, started: float | None) -> bool:
    """Whether process ``pid`` on this host is the live owner that started at ``started``.

    Gone: no such process, a zombie (exited, not yet reaped by its parent), or a process
    that started at another time (the PID was reused). ``started`` is None for jobs of
    stores written before start times were recorded: then only existence and zombies count.
    A process of another user that cannot be inspected counts as alive.
    """
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return started is None or abs(process.create_time() - started) < START_TIME_TOLERANCE_S
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


class Store:
    """A job store in the SQLite file ``path`` (created with its folder when missing).

    Each thread gets its own connection; every method is safe to call from any thread and
    from several processes at once.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> store = Store(pathlib.Path(tempfile.mkdtemp()) / "jobs.sqlite")
    >>> store.jobs().empty, store.integrity_check()
    (True, 'ok')
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._migrate()

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- connections ---------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; use :meth:`transaction` to write)."""
        db = getattr(self._local, "db", None)
        if db is None:
            # timeout= is SQLite's busy timeout: writers from other processes are waited for
            db = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_S)
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``): committed on success, else rolled back."""
        db = self.connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _migrate(self) -> None:
        with self.transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            jobs = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            if "owner_started" not in jobs:  # a store written before start times were kept
                db.execute("ALTER TABLE jobs ADD COLUMN owner_started REAL")
            present = {row[1] for row in db.execute("PRAGMA table_info(results)")}
            for column in RESULT_COLUMNS:
                if column not in present:
                    db.execute(f"ALTER TABLE results ADD COLUMN {_quote(column)}")
            # after the columns exist: reuse looks results up by content and analysis key
            db.execute("CREATE INDEX IF NOT EXISTS results_by_hash "
                       "ON results (source_sha256, analysis_key)")
            _add_job_user(db)
            for statement in _OVERRIDES_SCHEMA:  # a store made before overrides gains them
                db.execute(statement)

    # -- jobs ----------------------------------------------------------------------------

    @staticmethod
    def new_job_id() -> str:
        """A new job id: UTC creation time and a random suffix, e.g. ``20261121-031500-a1b2c3``."""
        return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)

    @property
    def uploads_folder(self) -> Path:
        """``<store name>.uploads`` beside the store: one folder per job (:meth:`upload_dir`)."""
        return self.path.with_name(self.path.name + ".uploads")

    def upload_dir(self, job_id: str) -> Path:
        """Where the job's in-memory uploads and extracted archive members are kept."""
        return self.uploads_folder / job_id

    def new_upload_dir(self, job_id: str) -> Path:
        """Create the upload folder of a job about to be staged, marked with this process as
        its owner, so that if the process dies before the job is recorded the folder is
        removed by the next :meth:`remove_orphan_uploads` (at the next submit)."""
        folder = self.upload_dir(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / OWNER_MARKER).write_text(json.dumps(
            {"owner": owner_id(), "started": process_started()}), encoding="utf-8")
        return folder

    def remove_orphan_uploads(self) -> list[Path]:
        """Remove the upload folders of jobs that were never recorded because the process
        staging them died (their owner mark names a process of this host that is gone).
        Returns the folders removed."""
        if not self.uploads_folder.is_dir():
            return []
        known = {r[0] for r in self.connection().execute("SELECT job_id FROM jobs")}
        removed = []
        for folder in self.uploads_folder.iterdir():
            if folder.name in known or not (folder / OWNER_MARKER).is_file():
                continue
            try:
                mark = json.loads((folder / OWNER_MARKER).read_text(encoding="utf-8"))
                host, _, pid = mark["owner"].rpartition(":")
            except (OSError, ValueError, KeyError, AttributeError):
                continue  # half-written by a live process, or not ours: leave it
            if host == socket.gethostname() and pid.isdigit() and not owner_alive(
                    int(pid), mark.get("started")):
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
        return removed

    def create_job(self, job_id: str, files: Sequence[FileEntry], *, settings: dict[str, Any],
                   analysis_key: str, model_version: str, inputs: dict[str, Any],
                   settled: Mapping[int, tuple[str, FileResult]] | None = None,
                   user: str | None = None) -> None:
        """Record the new job ``job_id`` (:meth:`new_job_id`) and its files, in one
        transaction: ``pending``, except those in ``settled`` (by index: their state, one of
        :data:`SETTLED_STATES`, and their result row, stored at once); ``user`` is who
        submitted it (None when unknown)."""
        settled = settled or {}
        from .._version import __version__

        now = utc_now()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO jobs (job_id, status, created_at, updated_at, n_files, settings, "
                "analysis_key, model_version, cpet_nb_version, owner, owner_started, inputs, "
                "user) VALUES (?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, now, now, len(files), json.dumps(settings), analysis_key,
                 model_version, __version__, owner_id(), process_started(),
                 json.dumps(inputs, default=str), user))
            db.executemany(
                "INSERT INTO files (job_id, idx, name, path, sha256, size_bytes, state) "
                "VALUES (?, ?, ?, ?, ?, ?, 'pending')",
                [(job_id, f.idx, f.name, _sql_path(f.path), f.sha256, f.size_bytes)
                 for f in files])
            for idx, (state, result) in settled.items():
                if state not in SETTLED_STATES:
                    raise ValueError(f"not a settled state: {state!r}")
                db.execute("UPDATE files SET state = ?, status = ?, findings = ? "
                           "WHERE job_id = ? AND idx = ?",
                           (state, result.status, _findings_json(result), job_id, idx))
                _insert_result(db, job_id, idx, analysis_key, result)

    def job(self, job_id: str) -> dict[str, Any]:
        """The job's row as a dictionary (settings and inputs decoded).

        Raises
        ------
        KeyError
            When the store has no such job.
        """
        cursor = self.connection().execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,))
        row = cursor.fetchone()
        if row is None:
            raise KeyError(f"no job {job_id!r} in {self.path}")
        job = dict(zip([c[0] for c in cursor.description], row, strict=True))
        job["settings"] = json.loads(job["settings"])
        job["inputs"] = json.loads(job["inputs"])
        job["status"] = _live_status(job["status"], job["owner"], job["owner_started"])
        return job

    def jobs(self, user: str | None = None) -> pd.DataFrame:
        """All jobs (only ``user``'s when given), newest first, with counts of files per
        state."""
        query = f"""
            SELECT j.job_id, j.status, j.created_at, j.finished_at, j.n_files,
                   SUM(f.state IN ('done', 'reused')) AS n_done,
                   SUM(f.status = 'error') AS n_error,
                   SUM(f.state = 'skipped') AS n_skipped,
                   SUM(f.state = 'cancelled') AS n_cancelled,
                   j.model_version, j.owner, j.owner_started, j.user
            FROM jobs j LEFT JOIN files f ON f.job_id = j.job_id
            {"" if user is None else "WHERE j.user = ?"}
            GROUP BY j.job_id ORDER BY j.created_at DESC, j.job_id DESC"""
        table = pd.read_sql_query(query, self.connection(),
                                  params=() if user is None else (user,))
        table["status"] = [_live_status(*job) for job in zip(
            table["status"], table["owner"], table.pop("owner_started"), strict=True)]
        for column in ("n_done", "n_error", "n_skipped", "n_cancelled"):
            table[column] = table[column].fillna(0).astype(int)
        return table

    def claim_job(self, job_id: str, force: bool = False) -> None:
        """Make this process the job's owner and mark it running (for a resume).

        Parameters
        ----------
        force : bool
            Take the job even if it looks running: for an owner on another host, whose
            death this process cannot see. (Two live owners would waste work, never results:
            a file's result is stored once.)

        Raises
        ------
        RuntimeError
            When another process that may be alive is running the job (and not ``force``).
        """
        job = self.job(job_id)
        if job["status"] == "running" and job["owner"] != owner_id() and not force:
            raise RuntimeError(f"job {job_id} is being run by process {job['owner']} "
                               "(if that process is gone, resume with force)")
        with self.transaction() as db:
            db.execute("UPDATE jobs SET status = 'running', owner = ?, owner_started = ?, "
                       "updated_at = ?, finished_at = NULL WHERE job_id = ?",
                       (owner_id(), process_started(), utc_now(), job_id))
            db.execute("UPDATE files SET state = 'pending' WHERE job_id = ? "
                       "AND state = 'cancelled'", (job_id,))

    def finish_job(self, job_id: str, status: str) -> None:
        """Set the job's final ``status`` (``done``, ``cancelled`` or ``failed``); files not
        yet done become ``cancelled`` when it is not ``done``."""
        if status not in ("done", "cancelled", "failed"):
            raise ValueError(f"not a final job status: {status!r}")
        now = utc_now()
        with self.transaction() as db:
            if status != "done":
                db.execute("UPDATE files SET state = 'cancelled' WHERE job_id = ? "
                           "AND state = 'pending'", (job_id,))
            db.execute("UPDATE jobs SET status = ?, finished_at = ?, updated_at = ? "
                       "WHERE job_id = ?", (status, now, now, job_id))

    def delete_job(self, job_id: str) -> None:
        """Remove a job with its files, results and curves."""
        with self.transaction() as db:
            db.execute("DELETE FROM jobs WHERE job_id = ?", (job_id,))

    # -- files and results ---------------------------------------------------------------

    def files(self, job_id: str) -> pd.DataFrame:
        """The job's inputs in order: name, state, result status, timings, findings."""
        table = pd.read_sql_query(
            "SELECT idx, name, path, sha256, size_bytes, state, status, device, findings, "
            "error, worker, elapsed_s, reused_from FROM files WHERE job_id = ? ORDER BY idx",
            self.connection(), params=(job_id,))
        # object, not pandas' string dtype: a path that is not UTF-8 is kept exactly
        table["path"] = pd.Series([_path_from_sql(p) for p in table["path"]], dtype=object,
                                  index=table.index)
        return table

    def pending(self, job_id: str) -> list[FileEntry]:
        """The job's files without a stored result, in order."""
        rows = self.connection().execute(
            "SELECT idx, name, path, sha256, size_bytes FROM files "
            "WHERE job_id = ? AND state = 'pending' ORDER BY idx", (job_id,))
        return [FileEntry(idx, name, _path_from_sql(path), sha256, size)
                for idx, name, path, sha256, size in rows]

    def counts(self, job_id: str) -> dict[str, int]:
        """Files per state (:data:`FILE_STATES`) and per result status
        (:data:`RESULT_STATUSES`)."""
        db = self.connection()
        counts = dict.fromkeys(FILE_STATES + RESULT_STATUSES, 0)
        for key, n in db.execute("SELECT state, COUNT(*) FROM files WHERE job_id = ? "
                                 "GROUP BY state", (job_id,)):
            counts[key] = n
        for key, n in db.execute("SELECT status, COUNT(*) FROM files WHERE job_id = ? "
                                 "AND status IS NOT NULL GROUP BY status", (job_id,)):
            counts[key] = n
        return counts

    def reuse_results(self, job_id: str) -> int:
        """Give the job's pending files the stored results of identical earlier analyses.

        A file is reused when a result exists for the same content (sha256) under the same
        analysis key (settings, model and cpet_nb version, see
        :meth:`cpet_nb.settings.Settings.analysis_key`). Returns how many were reused.
        """
        key = self.job(job_id)["analysis_key"]
        db = self.connection()
        matches = db.execute(
            "SELECT f.idx, f.name, r.job_id, r.idx FROM files f "
            "JOIN results r ON r.source_sha256 = f.sha256 AND r.analysis_key = ? "
            "WHERE f.job_id = ? AND f.state = 'pending' AND r.job_id != ? "
            "GROUP BY f.idx", (key, job_id, job_id)).fetchall()
        if not matches:
            return 0
        columns = ", ".join(_quote(c) for c in RESULT_COLUMNS if c != "file")
        with self.transaction() as db:
            for idx, name, source_job, source_idx in matches:
                db.execute(
                    f"INSERT OR IGNORE INTO results (job_id, idx, analysis_key, file, {columns}) "
                    f"SELECT ?, ?, analysis_key, ?, {columns} FROM results "
                    "WHERE job_id = ? AND idx = ?", (job_id, idx, name, source_job, source_idx))
                db.execute(
                    "INSERT OR IGNORE INTO curves SELECT ?, ?, output_order, data FROM curves "
                    "WHERE job_id = ? AND idx = ?", (job_id, idx, source_job, source_idx))
                db.execute(
                    "INSERT OR IGNORE INTO model_curves SELECT ?, ?, model, output_order, data "
                    "FROM model_curves WHERE job_id = ? AND idx = ?",
                    (job_id, idx, source_job, source_idx))
                db.execute(
                    "UPDATE files SET state = 'reused', reused_from = ?, "
                    "(status, device, findings, error) = (SELECT status, device, findings, error "
                    " FROM files WHERE job_id = ? AND idx = ?) "
                    "WHERE job_id = ? AND idx = ?",
                    (f"{source_job}#{source_idx}", source_job, source_idx, job_id, idx))
            db.execute("UPDATE jobs SET updated_at = ? WHERE job_id = ?", (utc_now(), job_id))
        return len(matches)

    def commit(self, job_id: str, outcomes: Iterable[Outcome]) -> list[int]:
        """Store finished files in one transaction; return the indices newly stored.

        A file that already has a result (a retried partition that had in fact finished)
        keeps its first result: nothing is written twice.
        """
        key = self.job(job_id)["analysis_key"]
        stored = []
        with self.transaction() as db:
            for outcome in outcomes:
                result = outcome.result
                cursor = db.execute(
                    "UPDATE files SET state = 'done', status = ?, device = ?, findings = ?, "
                    "error = ?, worker = ?, started_at = ?, elapsed_s = ? "
                    "WHERE job_id = ? AND idx = ? AND state = 'pending'",
                    (result.status, result.metadata.device if result.metadata else None,
                     _findings_json(result), outcome.error,
                     outcome.worker, outcome.started_at, outcome.elapsed_s, job_id, outcome.idx))
                if cursor.rowcount == 0:
                    continue
                _insert_result(db, job_id, outcome.idx, key, result)
                stored.append(outcome.idx)
            db.execute("UPDATE jobs SET updated_at = ? WHERE job_id = ?", (utc_now(), job_id))
        return stored

    def results(self, job_id: str, files: Sequence[str] | None = None) -> pd.DataFrame:
        """The job's results table (columns :data:`~cpet_nb.result.RESULT_COLUMNS`), in
        input order; partial while the job runs. With ``files`` (names), only their rows
        (e.g. the files a progress notice names: a display need not read the whole table
        again)."""
        column_list = ", ".join(_quote(c) for c in RESULT_COLUMNS)
        query = f"SELECT idx, {column_list} FROM results WHERE job_id = ?"
        if files is not None:
            query += " AND file IN (SELECT value FROM json_each(?))"
        rows = self.connection().execute(
            query + " ORDER BY idx",
            (job_id,) if files is None else (job_id, json.dumps(list(files)))).fetchall()
        table = results_frame([dict(zip(RESULT_COLUMNS, row[1:], strict=True)) for row in rows])
        table.index = pd.Index([row[0] for row in rows], name="idx")
        table = self._with_overrides(job_id, consensus_as_final(table))
        return table.reset_index(drop=True)

    def _with_overrides(self, job_id: str, table: pd.DataFrame) -> pd.DataFrame:
        """``table`` (indexed by input) with the current overrides in its final columns."""
        for idx, threshold, source, *values in self.connection().execute(
                _CURRENT_OVERRIDES, (job_id,)):
            if idx in table.index:
                table.loc[idx, f"{threshold}_source"] = source
                for name, value in zip(OVERRIDE_VALUES, values, strict=True):
                    table.loc[idx, f"{threshold}_final_{name}"] = (
                        math.nan if value is None else value)
        return table

    # -- overrides -----------------------------------------------------------------------

    def add_overrides(self, overrides: Sequence[Mapping[str, Any]]) -> list[int]:
        """Append reviewers' overrides (mappings with :data:`OVERRIDE_COLUMNS`) in one
        transaction; return their ids. Rows are only ever added: the newest for a file's
        content, analysis key and threshold is the current one."""
        columns = ", ".join(OVERRIDE_COLUMNS)
        ids = []
        with self.transaction() as db:
            for override in overrides:
                cursor = db.execute(
                    f"INSERT INTO overrides ({columns}) VALUES "
                    f"({', '.join('?' for _ in OVERRIDE_COLUMNS)})",
                    tuple(_sql_value(override[c]) for c in OVERRIDE_COLUMNS))
                ids.append(cursor.lastrowid)
        return ids

    def overrides(self, job_id: str | None = None) -> pd.DataFrame:
        """The audit table of overrides, oldest first (``override_id`` and
        :data:`OVERRIDE_COLUMNS`; ``current`` says which rows are in force): every override
        in the store, or, for ``job_id``, those that apply to its results (same file content
        and analysis key, whichever job they were made in), with ``file`` as this job names
        the input."""
        current = ("override_id = (SELECT MAX(n.override_id) FROM overrides n WHERE "
                   "n.sha256 = o.sha256 AND n.analysis_key = o.analysis_key AND "
                   "n.threshold = o.threshold) AS current")
        others = ", ".join(f"o.{c}" for c in OVERRIDE_COLUMNS if c != "file")
        if job_id is None:
            query = f"SELECT o.override_id, o.file, {others}, {current} FROM overrides o"
            params: tuple[str, ...] = ()
        else:
            query = (f"SELECT o.override_id, f.name AS file, {others}, {current} "
                     "FROM overrides o JOIN files f ON f.sha256 = o.sha256 "
                     "JOIN results r ON r.job_id = f.job_id AND r.idx = f.idx "
                     "AND r.analysis_key = o.analysis_key WHERE f.job_id = ?")
            params = (job_id,)
        table = pd.read_sql_query(query + " ORDER BY o.override_id", self.connection(),
                                  params=params)
        table["current"] = table["current"].astype(bool)
        for column in (*OVERRIDE_VALUES, "previous_time_s", "previous_vo2_ml_min"):
            table[column] = table[column].astype("float64")  # NULL (NaN stored) reads as None
        return table[["override_id", *OVERRIDE_COLUMNS, "current"]]

    def curves(self, job_id: str, file: int | str, model: str = DEFAULT_MODEL
               ) -> DomainCurves | None:
        """The domain curves of one file (by index or name) and one model (``"cnn"``, another
        of :data:`cpet_nb.model.MODEL_NAMES` or ``"ensemble"``), None when it has none."""
        column = "idx" if isinstance(file, int) else "name"
        table, where, params = (("curves", "", (job_id, file)) if model == DEFAULT_MODEL
                                else ("model_curves", " AND c.model = ?", (job_id, file, model)))
        row = self.connection().execute(
            f"SELECT c.output_order, c.data FROM {table} c JOIN files f "
            f"ON f.job_id = c.job_id AND f.idx = c.idx WHERE c.job_id = ? AND f.{column} = ?"
            + where, params).fetchone()
        if row is None:
            return None
        data = np.load(io.BytesIO(row[1]), allow_pickle=False)
        order = tuple(json.loads(row[0]))
        return DomainCurves(data[:, 0], data[:, 1], data[:, 2], data[:, 3], order)

    # -- maintenance ---------------------------------------------------------------------

    def integrity_check(self) -> str:
        """``PRAGMA integrity_check``: ``"ok"`` or SQLite's list of problems."""
        rows = self.connection().execute("PRAGMA integrity_check").fetchall()
        return "\n".join(r[0] for r in rows)

    def backup(self, keep: int = 5, folder: str | os.PathLike | None = None) -> Path:
        """Copy the store (consistently, while it may be in use), verify the copy, and delete
        all but the newest ``keep`` backups.

        Parameters
        ----------
        keep : int
            Backups to keep, 1 or more.
        folder : str or path-like, optional
            Default: ``<store name>.backups`` beside the store.

        Returns
        -------
        pathlib.Path
            The new backup.

        Raises
        ------
        RuntimeError
            When the copy fails ``PRAGMA integrity_check`` (the bad copy is removed).
        """
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got {keep}")
        folder = Path(folder) if folder else self.path.with_name(self.path.name + ".backups")
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        target = folder / f"{self.path.stem}-{stamp}.sqlite"
        copy = sqlite3.connect(target)
        try:
            self.connection().backup(copy)
            verdict = "\n".join(r[0] for r in copy.execute("PRAGMA integrity_check"))
        finally:
            copy.close()
        if verdict != "ok":
            target.unlink()
            raise RuntimeError(f"backup of {self.path} failed its integrity check: {verdict}")
        for old in sorted(folder.glob(f"{self.path.stem}-*.sqlite"))[:-keep]:
            old.unlink()
        return target

    def cleanup(self, older_than_days: float) -> list[str]:
        """Delete jobs that finished more than ``older_than_days`` ago, with their results and
        upload folders; remove upload folders of finished jobs. Returns the deleted job ids."""
        cutoff = datetime.fromtimestamp(time.time() - older_than_days * 86400, timezone.utc)
        rows = self.connection().execute(
            "SELECT job_id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?",
            (cutoff.isoformat(timespec="seconds"),))
        expired = [r[0] for r in rows]
        for job_id in expired:
            self.delete_job(job_id)
            shutil.rmtree(self.upload_dir(job_id), ignore_errors=True)
        uploads = self.uploads_folder
        if uploads.is_dir():
            done = {r[0] for r in self.connection().execute(
                "SELECT job_id FROM jobs WHERE status = 'done'")}
            known = {r[0] for r in self.connection().execute("SELECT job_id FROM jobs")}
            day_ago = time.time() - 86400
            for folder in uploads.iterdir():  # unknown and a day old: a submit that died
                if folder.name in done or (folder.name not in known
                                           and folder.stat().st_mtime < day_ago):
                    shutil.rmtree(folder, ignore_errors=True)
        return expired


def _insert_result(db: sqlite3.Connection, job_id: str, idx: int, key: str,
                   result: FileResult) -> None:
    """Write one file's results row (and its domain curves, if any)."""
    row = result.to_row()
    db.execute(f"INSERT INTO results (job_id, idx, analysis_key, "
               f"{', '.join(_quote(c) for c in RESULT_COLUMNS)}) "
               f"VALUES (?, ?, ?, {', '.join('?' for _ in RESULT_COLUMNS)})",
               (job_id, idx, key, *(_sql_value(row[c]) for c in RESULT_COLUMNS)))
    if result.curves is not None:
        db.execute("INSERT INTO curves VALUES (?, ?, ?, ?)",
                   (job_id, idx, json.dumps(result.curves.output_order),
                    _curves_blob(result.curves)))
    db.executemany("INSERT INTO model_curves VALUES (?, ?, ?, ?, ?)",
                   [(job_id, idx, name, json.dumps(estimate.curves.output_order),
                     _curves_blob(estimate.curves))
                    for name, estimate in result.models.items()])


def _findings_json(result: FileResult) -> str:
    return json.dumps([f.to_dict() for f in result.findings])


def _sql_path(path: str) -> str | bytes:
    """A path for the ``path`` column, exactly: text, or its file-system bytes when it is
    not valid UTF-8 (SQLite text must be), read back with :func:`_path_from_sql`."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        return os.fsencode(path)


def _path_from_sql(value: str | bytes) -> str:
    return os.fsdecode(value) if isinstance(value, bytes) else value


def _add_job_user(db: sqlite3.Connection) -> None:
    """Migration: ``jobs.user`` (who submitted the job), for stores made before it existed."""
    if "user" not in {row[1] for row in db.execute("PRAGMA table_info(jobs)")}:
        db.execute("ALTER TABLE jobs ADD COLUMN user TEXT")


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_value(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value


def _curves_blob(curves: DomainCurves) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.column_stack([curves.time_s, curves.p_moderate, curves.p_heavy,
                                     curves.p_severe]).astype(np.float64), allow_pickle=False)
    return buffer.getvalue()


def _live_status(status: str, owner: str | None, started: float | None) -> str:
    """``interrupted`` for a running job whose owner process on this host is gone
    (:func:`owner_alive`); an owner on another host may be alive."""
    if status != "running" or not owner:
        return status
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return status
    started = None if pd.isna(started) else float(started)  # NULL: NaN once pandas read it
    return status if owner_alive(int(pid), started) else "interrupted"
