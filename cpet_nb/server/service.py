"""What the HTTP handlers do, without HTTP: submit, status, results, cancel, reports, health.

Every method here blocks (SQLite, hashing, file moves, exports) and is run by the handlers
in :attr:`BatchService.pool`, a bounded thread pool, never on the server's event loop --
except :meth:`BatchService.cached_status`, a dictionary lookup. The batches themselves are
the Python API's (:func:`cpet_nb.submit`, :class:`cpet_nb.Batch`): same engine, same store.
Each job records who submitted it, and every method that takes a job id answers
``unknown-job`` for a job of another user, exactly as for one that does not exist.

Status polls (``GET /batches/{id}``, many clients every fraction of a second) are answered
from memory: the service keeps each job's :class:`StatusDocument` -- the document, its JSON
bytes and their ETag -- made from the store after every change. A job this server runs is
re-read when its batch says it changed (:meth:`cpet_nb.Batch.subscribe`: after each stored
partition, the next ones submitted, and at its end), so its document is always the store's
latest state and nothing is reported stored before it is committed; any other job (another
server's, or one that has ended) is re-read in the thread pool once its document is
:data:`STATUS_MAX_AGE_S` old.
"""

from __future__ import annotations

import gc
import hashlib
import itertools
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
from jupyter_server.utils import url_path_join

from ..batch import Batch, NoCPETFiles, Progress, Upload, submit
from ..batch.store import Store
from ..io.exports import check_table_path, write_table
from ..settings import Settings
from .config import API_PREFIX, MB, CpetNb
from .errors import ApiError, limit
from .limits import RateLimiter, Starting
from .paths import confine
from .uploads import ReceivedFile, UploadLimits, unique_names

log = logging.getLogger(__name__)

#: Result formats by the ``format`` query value (:data:`cpet_nb.io.exports.TABLE_FORMATS`
#: without the dot), and their media types.
MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}
#: Settings a request may give: those of the analysis group (limits, workers and what is
#: kept are the server's).
REQUEST_SETTINGS = tuple(n for n, o in Settings.options().items() if o.group == "analysis")
#: The status document of a job this server does not run (another server's, or one that
#: ended) is read from the store again once it is this old (s); polls in between are
#: answered from memory. A job this server runs is re-read on each of its changes instead.
STATUS_MAX_AGE_S = 0.25
#: A running job's notice rebuilds its status document (a read of every file's state) only
#: when the job was polled (or submitted) this recently (s); else the document is marked
#: stale and the next poll reads it (a batch nobody watches costs no reads but its last).
POLLED_RECENTLY_S = 5.0
#: The store's integrity check is repeated at most this often (s): it reads the whole file.
INTEGRITY_EVERY_S = 60.0
#: Why new batches are refused, by the names in ``GET /health``'s ``refusing``.
REFUSALS = {"disk": "too little free disk space", "memory": "too little available memory",
            "store": "the job store fails its integrity check"}
#: Columns of :meth:`cpet_nb.Batch.files` shown per file (paths and worker errors stay
#: on the server; the findings say what went wrong).
FILE_FIELDS = ("idx", "name", "state", "status", "size_bytes", "sha256", "device",
               "elapsed_s", "reused_from")
#: What an upload id looks like (:meth:`BatchService.stage_uploads`): checked before it
#: names a file.
UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class StatusDocument:
    """A job's status as ``GET /batches/{id}`` answers it, made once per read of the store.

    Attributes
    ----------
    user : str
        The job's owner: the only user it is shown to.
    status : dict
        :meth:`BatchService.status`'s document (without links).
    body : bytes
        The answer: ``status`` with the job's links, as JSON.
    etag : str
        The HTTP entity tag of ``body`` (as tornado would compute it, computed once).
    read_at : float
        When the store was read (:attr:`BatchService.clock`, s).
    stamp : int
        Order in which reads began: a document never replaces one from a later read.
    """

    user: str
    status: dict[str, Any]
    body: bytes
    etag: str
    read_at: float
    stamp: int

    @property
    def state(self) -> str:
        """The job's state when read."""
        return self.status["state"]


@dataclass(frozen=True)
class Export:
    """A results table as response bytes."""

    content: bytes
    media_type: str
    filename: str
    state: str

    @property
    def partial(self) -> bool:
        """Whether the job may still add rows."""
        return self.state == "running"


class BatchService:
    """The batch API of one Jupyter server: its store, thread pools, limits and batches.

    Parameters
    ----------
    config : CpetNb
        The extension's settings.
    root_dir : str or path-like
        The Jupyter server's root: server-side inputs must lie inside it.
    base_url : str
        The Jupyter server's base URL (the API's links start with it).
    """

    def __init__(self, config: CpetNb, root_dir: str | Path, base_url: str = "/") -> None:
        self.config = config
        self.root = Path(root_dir).resolve()
        self.base_url = base_url
        self.store = Store(config.store)
        self.incoming = self.store.path.with_name(self.store.path.name + ".incoming")
        self.reports = self.store.path.with_name(self.store.path.name + ".reports")
        self.staged = self.store.path.with_name(self.store.path.name + ".staged")
        self.pool = ThreadPoolExecutor(config.executor_threads, "cpet_nb-api")
        self.upload_pool = ThreadPoolExecutor(config.executor_threads, "cpet_nb-upload")
        self.report_pool = ThreadPoolExecutor(1, "cpet_nb-report")
        self.limits = UploadLimits(int(config.max_body_mb * MB), int(config.max_file_mb * MB),
                                   config.max_files)
        self.rate = RateLimiter(config.submissions_per_minute, 60.0)
        self._starting = Starting()
        self._batches: dict[str, Batch] = {}  # the running jobs this server drives
        self._report_jobs: dict[str, Future] = {}
        self._lock = threading.Lock()  # brief holds only: the event loop takes it per poll
        self._cluster_lock = threading.Lock()  # held while the cluster starts (seconds)
        self._client: Any = None
        self._integrity: tuple[float, str] = (-math.inf, "")
        self._documents: dict[str, StatusDocument] = {}
        self._stale: dict[str, int] = {}  # job run here: stamp of the notice that outdated it
        self._polled: dict[str, float] = {}  # job id: clock() of its last poll
        self._reads = itertools.count()  # StatusDocument.stamp
        self.clock = time.monotonic

    # -- submissions -----------------------------------------------------------------------

    def upload_folder(self) -> Path:
        """A new private folder (mode 0700) for one request's uploaded files."""
        self.incoming.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(dir=self.incoming))

    def admit(self, user: str) -> None:
        """Refuse early (before a body is read) what :meth:`submit_uploads` would refuse for
        resources or running batches.

        Raises
        ------
        ApiError
            ``insufficient-resources`` or ``too-many-batches``.
        """
        self.check_resources()
        running = self._running(user)
        if running >= self.config.max_running_batches:
            raise self._too_many(running)

    def submit_uploads(self, user: str, files: Sequence[ReceivedFile],
                       fields: Mapping[str, str]) -> dict[str, Any]:
        """Start a batch of uploaded files (moved into the job's folder); its status."""
        settings = self.settings(_json_object(fields.get("settings", "{}"), "settings"))
        if not files:
            raise ApiError("no-analysable-file", "the request has no file part", field="files")
        uploads = [Upload.from_file(f.name, f.path) for f in files]
        return self._submit(user, uploads, settings, [f.name for f in files])

    def submit_paths(self, user: str, body: Any) -> dict[str, Any]:
        """Start a batch of server-side paths (``{"paths": [...], "settings": {...}}``)."""
        if not isinstance(body, dict):
            raise ApiError("malformed-request", "the body must be a JSON object with 'paths'",
                           field="body")
        unknown = sorted(set(body) - {"paths", "settings"})
        if unknown:
            raise ApiError("unknown-field", f"unknown member(s) {', '.join(unknown)} (known: "
                                            "paths, settings)", field=unknown[0])
        paths = body.get("paths")
        if not isinstance(paths, list) or not paths or not all(isinstance(p, str)
                                                               for p in paths):
            raise ApiError("malformed-request", "'paths' must be a non-empty list of paths "
                                                "relative to the server's root", field="paths")
        overrides = body.get("settings", {})
        if not isinstance(overrides, dict):
            raise ApiError("malformed-request", "'settings' must be an object",
                           field="settings")
        settings = self.settings(overrides)
        inputs = [confine(p, self.root, f"paths[{i}]") for i, p in enumerate(paths)]
        return self._submit(user, inputs, settings, paths)

    def _submit(self, user: str, inputs: Sequence[Path | Upload], settings: Settings,
                given: Sequence[str]) -> dict[str, Any]:
        self.check_resources()
        with self._starting.reserve(user, lambda: self._running(user),
                                    self.config.max_running_batches) as admitted:
            if not admitted:
                raise self._too_many(self._running(user))
            try:
                batch = submit(inputs, self.store, client=self._cluster(), user=user,
                               **settings.to_dict())
            except NoCPETFiles as exc:
                raise ApiError("no-analysable-file", str(exc), field="files",
                               files=list(given)) from None
        return dict(self._track(batch, user, settings).status)

    def settings(self, overrides: Mapping[str, Any]) -> Settings:
        """The settings of a new batch: the server's (``settings_file``, ``CPET_NB_*``) with
        a request's analysis ``overrides``.

        Raises
        ------
        ApiError
            ``invalid-settings`` naming the setting.
        """
        options = Settings.options()
        for name in overrides:
            if name not in REQUEST_SETTINGS:
                known = "unknown setting" if name not in options else "not a request setting"
                raise ApiError("invalid-settings", f"{name!r}: {known} (a request may set "
                                                   f"{', '.join(REQUEST_SETTINGS)})",
                               field=f"settings.{name}")
        try:
            values = {n: options[n].convert(n, v, "the request") for n, v in overrides.items()}
            return Settings.load(self.config.settings_file or None, **values)
        except (ValueError, TypeError) as exc:
            raise ApiError("invalid-settings", str(exc), field="settings") from None

    def _track(self, batch: Batch, user: str, settings: Settings) -> StatusDocument:
        """Keep a running batch and its status document, re-read at each of its notices,
        until it ends; then forget the batch and remove its uploads. The document as
        first read."""
        def on_progress(progress: Progress) -> None:  # on the batch's thread
            try:
                if progress.state != "running" or self._polled_recently(batch.job_id):
                    self._remember(user, batch, progress)
                else:
                    with self._lock:
                        self._stale[batch.job_id] = next(self._reads)
            finally:  # a failed read must not keep an ended batch (and its uploads) forever
                if progress.state != "running":
                    self._ended(batch.job_id, settings)

        with self._lock:
            self._batches[batch.job_id] = batch
            self._polled[batch.job_id] = self.clock()  # its submitter counts as watching
        batch.subscribe(on_progress)
        document = self._remember(user, batch)  # read after subscribing: no change missed
        if document.state != "running":  # ended before it was subscribed to
            self._ended(batch.job_id, settings)
        return document

    def _ended(self, job_id: str, settings: Settings) -> None:
        with self._lock:
            self._batches.pop(job_id, None)  # its document now ages as any other
        if not settings.keep_uploads:
            shutil.rmtree(self.store.upload_dir(job_id), ignore_errors=True)

    def _running(self, user: str) -> int:
        jobs = self.store.jobs(user)
        return int((jobs["status"] == "running").sum())

    def _too_many(self, running: int) -> ApiError:
        return ApiError("too-many-batches", f"{running} of your batches are running; at most "
                                            f"{self.config.max_running_batches} may run at once",
                        retry_after_s=5.0,
                        limit=limit("max_running_batches", self.config.max_running_batches,
                                    "batches"))

    def _cluster(self) -> Any:
        """The dask client for batches: the embedded cluster adapting between
        ``cluster_min_workers`` and ``cluster_max_workers`` (or ``DASK_SCHEDULER_ADDRESS``),
        started by the first batch."""
        from ..batch.engine import get_client

        with self._cluster_lock:
            if self._client is None or self._client.status != "running":
                self._client = get_client(None, self.config.cluster_max_workers,
                                          adapt_minimum=self.config.cluster_min_workers)
                freeze_long_lived()  # with dask's modules and the cluster's objects
            return self._client

    # -- staged uploads ------------------------------------------------------------------

    def stage_uploads(self, user: str, files: Sequence[ReceivedFile]) -> dict[str, Any]:
        """Keep uploaded files, under their sanitised names (made distinct), in a private
        folder of their own, ``<store>.staged/<upload_id>/``, for a program on this machine
        to give as a path: the panel's kernel adds it to its inputs. A record beside the
        folder (``<upload_id>.json``) says whose it is. The files stay until
        :meth:`delete_upload`, or :meth:`cleanup` once ``upload_expiry_hours`` old.

        Returns
        -------
        dict
            The upload's record (:meth:`upload`).

        Raises
        ------
        ApiError
            ``no-analysable-file`` for a request without a file part.
        """
        if not files:
            raise ApiError("no-analysable-file", "the request has no file part", field="files")
        upload_id = uuid.uuid4().hex
        self.staged.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder = self.staged / upload_id
        folder.mkdir(mode=0o700)
        names = unique_names([f.name for f in files])
        for file, name in zip(files, names, strict=True):
            os.replace(file.path, folder / name)  # a rename: incoming/ is beside staged/
        created_s = time.time()
        record = {"upload_id": upload_id, "user": user, "folder": str(folder),
                  "created_at": _utc(created_s),
                  "expires_at": _utc(created_s + self.config.upload_expiry_hours * 3600),
                  "files": [{"name": n, "size_bytes": f.size_bytes}
                            for f, n in zip(files, names, strict=True)],
                  "total_bytes": sum(f.size_bytes for f in files)}
        sidecar = self._upload_record_path(upload_id)
        sidecar.with_suffix(".tmp").write_text(json.dumps(record))
        os.replace(sidecar.with_suffix(".tmp"), sidecar)
        return _public_upload(record)

    def uploads(self, user: str) -> list[dict[str, Any]]:
        """The user's staged uploads that have not expired, newest first."""
        found = []
        for sidecar in self.staged.glob("*.json") if self.staged.is_dir() else []:
            try:
                found.append(self._upload_record(user, sidecar.stem))
            except ApiError:  # another user's, expired or half written
                continue
        return sorted((_public_upload(r) for r in found), key=lambda r: r["created_at"],
                      reverse=True)

    def upload(self, user: str, upload_id: str) -> dict[str, Any]:
        """One staged upload of the user: its id, folder, files (name, size), total size,
        and when it was made and expires."""
        return _public_upload(self._upload_record(user, upload_id))

    def delete_upload(self, user: str, upload_id: str) -> None:
        """Remove one staged upload of the user (its folder and record)."""
        self._upload_record(user, upload_id)
        shutil.rmtree(self.staged / upload_id, ignore_errors=True)
        self._upload_record_path(upload_id).unlink(missing_ok=True)

    def _upload_record(self, user: str, upload_id: str) -> dict[str, Any]:
        """The record of the user's upload ``upload_id``, refused exactly as an unknown one
        when it is another user's or has expired."""
        unknown = ApiError("unknown-upload", f"no upload {upload_id!r}", field="upload_id")
        if not UPLOAD_ID.fullmatch(upload_id):
            raise unknown
        try:
            record = json.loads(self._upload_record_path(upload_id).read_text())
        except (OSError, ValueError):
            raise unknown from None
        if record.get("user") != user or record["expires_at"] <= _utc(time.time()):
            raise unknown
        return record

    def _upload_record_path(self, upload_id: str) -> Path:
        return self.staged / f"{upload_id}.json"

    # -- jobs ----------------------------------------------------------------------------

    def jobs(self, user: str) -> list[dict[str, Any]]:
        """The user's jobs, newest first."""
        table = self.store.jobs(user)
        return [{"job_id": r.job_id, "state": r.status, "created_at": r.created_at,
                 "finished_at": _text(r.finished_at), "n_files": int(r.n_files),
                 "n_done": int(r.n_done), "n_error": int(r.n_error),
                 "n_cancelled": int(r.n_cancelled)} for r in table.itertuples()]

    def status(self, user: str, job_id: str) -> StatusDocument:
        """The job's state, counts, fraction done, ETA and per-file states, read from the
        store now (and kept for :meth:`cached_status`)."""
        return self._remember(user, self._batch(user, job_id))

    def cached_status(self, user: str, job_id: str) -> StatusDocument | None:
        """The job's status document from memory, when it is ``user``'s job and the
        document is current: the job runs here (re-read at each of its changes while it is
        polled, :data:`POLLED_RECENTLY_S`) or it was read at most :data:`STATUS_MAX_AGE_S`
        ago. Else None: then :meth:`status` reads it. Touches no file: safe on the event
        loop."""
        with self._lock:
            document = self._documents.get(job_id)
            if document is None or document.user != user:  # a stranger's poll leaves no trace
                return None
            batch = self._batches.get(job_id)
            stale = job_id in self._stale
            self._polled[job_id] = self.clock()
        if batch is not None and batch.driven_here:
            return None if stale else document
        return document if self.clock() - document.read_at <= STATUS_MAX_AGE_S else None

    def _polled_recently(self, job_id: str) -> bool:
        """Whether the job was polled within :data:`POLLED_RECENTLY_S`."""
        with self._lock:
            return self.clock() - self._polled.get(job_id, -math.inf) <= POLLED_RECENTLY_S

    def forget_old_statuses(self) -> int:
        """Drop the status documents that :meth:`cached_status` would no longer answer
        with (of jobs not run here, older than :data:`STATUS_MAX_AGE_S`): a poll reads
        those again anyway, and a server sees many jobs. How many were dropped."""
        with self._lock:
            old = [job_id for job_id, document in self._documents.items()
                   if job_id not in self._batches
                   and self.clock() - document.read_at > STATUS_MAX_AGE_S]
            for job_id in old:
                del self._documents[job_id]
                self._polled.pop(job_id, None)
        return len(old)

    def _remember(self, user: str, batch: Batch,
                  progress: Progress | None = None) -> StatusDocument:
        """Read the job's status from the store (its ``progress`` when just notified) and
        keep it as the job's document, unless a read that began later was kept first."""
        with self._lock:
            stamp, read_at = next(self._reads), self.clock()
        status = self._status(batch, progress)
        body = json.dumps(status | {"links": self.links(batch.job_id)}).encode()
        document = StatusDocument(user, status, body, f'"{hashlib.sha1(body).hexdigest()}"',
                                  read_at, stamp)
        with self._lock:
            kept = self._documents.get(batch.job_id)
            if kept is None or kept.stamp < stamp:
                self._documents[batch.job_id] = document
            if self._stale.get(batch.job_id, stamp) < stamp:  # outdated before this read began
                del self._stale[batch.job_id]
        return document

    def links(self, job_id: str) -> dict[str, str]:
        """URLs of a job's endpoints."""
        job = url_path_join(self.base_url, API_PREFIX, "batches", job_id)
        return {"self": job, "results": job + "/results", "cancel": job + "/cancel",
                "report": job + "/report"}

    def results(self, user: str, job_id: str, format: str) -> Export:
        """The job's results table so far, as ``format`` (json, csv, xlsx or parquet)."""
        if format not in MEDIA_TYPES:
            raise ApiError("malformed-request", f"format must be one of "
                                                f"{', '.join(MEDIA_TYPES)}, got {format!r}",
                           field="format")
        batch = self._batch(user, job_id)
        state = batch.status().state  # before the table: 'done' means the table is whole
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"{job_id}.{format}"
            try:
                check_table_path(path)
            except ValueError as exc:  # parquet without pyarrow
                raise ApiError("format-unavailable", str(exc), field="format") from None
            write_table(batch.results(), path)
            return Export(path.read_bytes(), MEDIA_TYPES[format], path.name, state)

    def cancel(self, user: str, job_id: str) -> dict[str, Any]:
        """Cancel a running job this server runs; its status afterwards."""
        batch = self._batch(user, job_id)
        state = batch.status().state
        if state != "running":
            raise ApiError("job-finished", f"job {job_id} has already ended ({state})",
                           state=state)
        with self._lock:
            running = self._batches.get(job_id)
        if running is None:
            raise ApiError("job-not-run-here", f"job {job_id} is run by process "
                                               f"{self.store.job(job_id)['owner']}, not by "
                                               "this server", state=state)
        running.cancel()  # waits for the job's end: its last notice re-read the document
        return dict(self._remember(user, running).status)

    def _batch(self, user: str, job_id: str) -> Batch:
        try:
            owner = self.store.job(job_id)["user"]
        except KeyError:
            owner = None
        if owner is None or owner != user:
            raise ApiError("unknown-job", f"no job {job_id!r}", field="job_id")
        with self._lock:
            return self._batches.get(job_id) or Batch(self.store, job_id)

    def _status(self, batch: Batch, progress: Progress | None = None) -> dict[str, Any]:
        """The status document of ``batch`` (read from the store; its ``progress`` when
        the batch has just given it)."""
        progress = progress or batch.status()
        job = self.store.job(batch.job_id)
        return {"job_id": batch.job_id, "state": progress.state,
                "created_at": job["created_at"], "finished_at": job["finished_at"],
                "n_files": progress.n_files, "counts": progress.counts,
                "fraction_done": progress.fraction_done,
                "files_per_s": _number(progress.files_per_s), "eta_s": _number(progress.eta_s),
                "files": _file_rows(batch.files())}

    # -- reports -------------------------------------------------------------------------

    def make_report(self, user: str, job_id: str) -> dict[str, Any]:
        """Start making the job's HTML report (in the background); its report state."""
        state = self._batch(user, job_id).status().state
        if state == "running":
            raise ApiError("job-running", f"job {job_id} is still running: its report can be "
                                          "made once it ends", state=state)
        report_maker()  # 501 now rather than a failed report later
        with self._lock:
            making = self._report_jobs.get(job_id)
            if making is None or making.done():
                self._report_path(job_id).unlink(missing_ok=True)
                self._report_jobs[job_id] = self.report_pool.submit(
                    make_report_file, job_id, self.store, self._report_path(job_id))
        return {"job_id": job_id, "report": "making"}

    def report(self, user: str, job_id: str) -> bytes | dict[str, Any]:
        """The job's report (HTML bytes), or its state while it is being made."""
        self._batch(user, job_id)
        path = self._report_path(job_id)
        with self._lock:
            making = self._report_jobs.get(job_id)
        if making is not None and not making.done():
            return {"job_id": job_id, "report": "making"}
        if making is not None and making.exception() is not None:
            error = making.exception()
            raise ApiError("report-failed", f"{type(error).__name__}: {error}")
        if path.is_file():
            return path.read_bytes()
        report_maker()
        raise ApiError("report-not-made", f"job {job_id} has no report yet: POST to make one")

    def _report_path(self, job_id: str) -> Path:
        return self.reports / f"{job_id}.html"

    # -- health and upkeep ---------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The cluster (workers, memory), the store (integrity, size), free disk and memory,
        and whether new batches are refused (``refusing`` lists why)."""
        resources = self._resources()
        size = sum(p.stat().st_size for p in self.store.path.parent.glob(
            self.store.path.name + "*") if p.is_file())  # with its -wal and -shm files
        return {"status": "refusing" if resources["refusing"] else "ok",
                "refusing": resources["refusing"],
                "disk": {"free_bytes": resources["disk"],
                         "min_free_bytes": int(self.config.min_free_disk_mb * MB)},
                "memory": {"available_bytes": resources["memory"],
                           "min_available_bytes": int(self.config.min_free_memory_mb * MB)},
                "store": {"integrity": resources["store"], "size_bytes": size,
                          "jobs_running_here": len(self._batches)},
                "cluster": self._cluster_summary()}

    def _resources(self) -> dict[str, Any]:
        """Free disk (bytes, the store's file system), available memory (bytes), the
        store's integrity verdict, and which of them are short."""
        import psutil

        found = {"disk": shutil.disk_usage(self.store.path.parent).free,
                 "memory": psutil.virtual_memory().available,
                 "store": self._integrity_check()}
        found["refusing"] = [reason for reason, short in (
            ("disk", found["disk"] < self.config.min_free_disk_mb * MB),
            ("memory", found["memory"] < self.config.min_free_memory_mb * MB),
            ("store", found["store"] != "ok")) if short]
        return found

    def check_resources(self) -> None:
        """Raise ``insufficient-resources`` while new work is refused (disk, memory,
        store)."""
        refusing = self._resources()["refusing"]
        if refusing:
            raise ApiError("insufficient-resources", "new batches and uploads are refused: "
                           + "; ".join(REFUSALS[r] for r in refusing), refusing=refusing)

    def _integrity_check(self) -> str:
        checked, verdict = self._integrity
        if time.monotonic() - checked > INTEGRITY_EVERY_S:
            verdict = self.store.integrity_check()
            self._integrity = (time.monotonic(), verdict)
        return verdict

    def _cluster_summary(self) -> dict[str, Any] | None:
        client = self._client
        if client is None or client.status != "running":
            return None
        workers = client.scheduler_info(n_workers=-1)["workers"]
        summary = {"workers": len(workers),
                   "threads": sum(w.get("nthreads", 0) for w in workers.values()),
                   "memory_bytes": sum(w.get("metrics", {}).get("memory", 0)
                                       for w in workers.values()),
                   "analysis_processes": None, "analysis_memory_bytes": None,
                   "memory_limit_bytes": sum(w.get("memory_limit") or 0
                                             for w in workers.values()),
                   "min_workers": self.config.cluster_min_workers,
                   "max_workers": self.config.cluster_max_workers or None}
        if workers and all(a.startswith("inproc://") for a in workers):
            from ..batch.engine import worker_memory  # distributed: imported once needed

            # the embedded cluster's workers are threads of this process: asked directly
            # (never remote workers, which could keep a health check waiting); this process
            # counted once; a worker that leaves meanwhile (scaling down) is left out
            memory = [m for m in client.run(worker_memory, on_error="return").values()
                      if isinstance(m, dict)]
            summary |= {"memory_bytes": sum({(m["host"], m["pid"]): m["rss_bytes"]
                                             for m in memory}.values()),
                        "analysis_processes": sum(m["analysis_rss_bytes"] > 0 for m in memory),
                        "analysis_memory_bytes": sum(m["analysis_rss_bytes"] for m in memory)}
        return summary

    def cleanup(self) -> None:
        """Remove upload folders of requests that never became jobs and staged uploads
        (with their records), once older than ``upload_expiry_hours``, and, when the
        server's settings set ``job_expiry_days``, expired jobs with their uploads and
        reports; and the status documents no poll can be answered from any more."""
        self.forget_old_statuses()
        cutoff = time.time() - self.config.upload_expiry_hours * 3600
        for area in (self.incoming, self.staged):
            for path in area.iterdir() if area.is_dir() else []:
                if path.stat().st_mtime < cutoff:
                    if path.is_dir():
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        path.unlink(missing_ok=True)
        days = Settings.load(self.config.settings_file or None).job_expiry_days
        if days is not None:
            for job_id in self.store.cleanup(days):
                self._report_path(job_id).unlink(missing_ok=True)


def freeze_long_lived() -> None:
    """Collect the garbage, then move every object left (modules, classes, the server's
    and the cluster's long-lived state) out of the cyclic garbage collector's reach
    (:func:`gc.freeze`).

    The collector's full (oldest-generation) pass walks every tracked object: with
    jupyter_server, pandas and dask loaded that took 0.25-0.4 s under load, with every
    thread stopped -- the event loop's longest pauses, each one delaying every status poll
    in flight. Frozen objects are never collected (they live as long as the server anyway),
    so a full pass then walks only what was made since. Called again (a new cluster), what
    was frozen before is thawed and collected first, so a replaced cluster's objects do not
    stay frozen for ever.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def report_maker() -> Callable[..., Any]:
    """:func:`cpet_nb.report.batch_report`, through which the server makes every report.

    Raises
    ------
    ApiError
        ``report-unavailable`` while this cpet_nb has no such function.
    """
    try:
        from ..report import batch_report
    except ImportError:
        raise ApiError("report-unavailable", "this cpet_nb cannot make batch reports "
                                             "(cpet_nb.report.batch_report is missing)") from None
    return batch_report


def make_report_file(job_id: str, store: Store, out: Path) -> Path:
    """Make the job's HTML report at ``out`` (the one call into the report maker)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    report_maker()(job_id, store.path, out=out)  # the report's kernel opens the store itself
    return out


def _utc(seconds: float) -> str:
    """A time (s since the epoch) as the store writes times: ISO 8601, UTC, to the
    second."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds")


def _public_upload(record: Mapping[str, Any]) -> dict[str, Any]:
    """An upload's record as answered (without its owner: only the owner sees it)."""
    return {k: v for k, v in record.items() if k != "user"}


def _json_object(text: str, field: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ApiError("malformed-request", f"{field} is not valid JSON: {exc}",
                       field=field) from None
    if not isinstance(value, dict):
        raise ApiError("malformed-request", f"{field} must be a JSON object", field=field)
    return value


def _file_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-file rows of :meth:`cpet_nb.Batch.files` as JSON-ready dictionaries (column by
    column: ``DataFrame.to_dict`` would take most of a status request's time)."""
    missing = [None] * len(table)
    columns = {name: table[name].tolist() if name in table else missing
               for name in (*FILE_FIELDS, "findings")}
    rows = []
    for i, findings in enumerate(columns["findings"]):
        row = {name: _plain(columns[name][i]) for name in FILE_FIELDS}
        row["findings"] = json.loads(findings) if isinstance(findings, str) else []
        rows.append(row)
    return rows


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers as Python ones, NaN and missing as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def _number(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
