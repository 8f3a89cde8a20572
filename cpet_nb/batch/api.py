"""Batches: many files analysed on a dask cluster, tracked in a job store, resumable.

::

    batch = cpet_nb.submit(["tests/", "more.zip"], store="jobs.sqlite")
    batch.subscribe(print)          # progress pushed after each stored partition
    batch.wait()
    table = batch.results()         # same columns as `cpet-nb analyze`

    cpet_nb.jobs(store="jobs.sqlite")                 # every job and its counts
    batch = cpet_nb.resume(job_id, store="jobs.sqlite")   # after a crash or a restart

Data flow: inputs are expanded and hashed on the client (archives and in-memory uploads are
copied into the store's upload folder, so a resume finds them); the job and its files are
recorded; files whose content already has a result under the same analysis key are reused;
the rest go to the workers in partitions, a bounded number at a time; each finished
partition is committed in one transaction and only then announced to subscribers.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import math
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pandas as pd

from ..findings import Finding, Severity
from ..io.inputs import expand_inputs
from ..model import DEFAULT_MODEL, bundled_model_version
from ..result import FileResult
from ..settings import Settings
from .store import FileEntry, Outcome, Store

log = logging.getLogger(__name__)

#: Most files per partition when the size is chosen automatically.
MAX_AUTO_PARTITION = 25
#: Partitions per worker thread when the size is chosen automatically (load balance).
PARTITIONS_PER_THREAD = 4


@dataclass(frozen=True)
class Upload:
    """A file given as bytes (e.g. from a notebook upload widget) rather than a path.

    Only the last part of ``name`` is used (no folders), so an upload cannot be written
    outside its job's folder.
    """

    name: str
    content: bytes

    @classmethod
    def from_widget(cls, value: Mapping[str, Any]) -> Upload:
        """An upload from one item of an ``ipywidgets.FileUpload`` value (a mapping with
        ``name`` and ``content``, a memoryview)."""
        return cls(str(value["name"]), bytes(value["content"]))


@dataclass(frozen=True)
class Progress:
    """A batch's state, as :meth:`Batch.status` returns it and subscribers receive it.

    Attributes
    ----------
    job_id : str
    state : str
        The job's status: ``running``, ``done``, ``cancelled``, ``failed`` or
        ``interrupted``.
    counts : dict
        Files per state (``pending``, ``running``, ``done``, ``reused``, ``cancelled``) and
        per result status (``ok``, ``warning``, ``error``).
    n_files : int
    fraction_done : float
        Files with a stored result over all files (0 to 1).
    files_per_s : float
        Throughput of this session's run (NaN before the first partition).
    eta_s : float
        Estimated seconds to the end (NaN when unknown).
    new_files : tuple of str
        Names of the files stored since the previous notice (subscribers only).
    """

    job_id: str
    state: str
    counts: dict[str, int]
    n_files: int
    fraction_done: float
    files_per_s: float
    eta_s: float
    new_files: tuple[str, ...] = ()

    def __str__(self) -> str:
        eta = "" if math.isnan(self.eta_s) else f", about {self.eta_s:.0f} s left"
        return (f"job {self.job_id} {self.state}: {self.counts['done'] + self.counts['reused']}"
                f"/{self.n_files} files ({self.counts['ok']} ok, {self.counts['warning']} "
                f"warning, {self.counts['error']} error){eta}")


class Batch:
    """A job in a store, and (when this process runs it) the thread that drives it.

    Get one from :func:`submit` or :func:`resume`; the methods read the store, so they
    also work for a job another process runs.
    """

    def __init__(self, store: Store, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._subscribers: list[Callable[[Progress], None]] = []
        self._driver: _Driver | None = None

    def __repr__(self) -> str:
        return f"<Batch {self.job_id} in {self.store.path}>"

    @property
    def settings(self) -> Settings:
        """The settings the job runs with."""
        return Settings.from_dict(self.store.job(self.job_id)["settings"])

    def status(self) -> Progress:
        """State of the job: counts, fraction done, throughput and ETA."""
        job = self.store.job(self.job_id)
        counts = self.store.counts(self.job_id) | {"running": 0}
        rate = math.nan
        driver = self._driver
        if driver is not None:
            counts["running"] = driver.running_count()
            rate = driver.files_per_s()
        counts["pending"] -= counts["running"]
        done = counts["done"] + counts["reused"]
        remaining = job["n_files"] - done - counts["cancelled"]
        eta = remaining / rate if rate and not math.isnan(rate) and rate > 0 else math.nan
        if job["status"] != "running":
            eta = 0.0 if job["status"] == "done" else math.nan
        return Progress(self.job_id, job["status"], counts, job["n_files"],
                        done / job["n_files"] if job["n_files"] else 1.0, rate, eta)

    def files(self) -> pd.DataFrame:
        """Every file of the job with its state (``running`` for those being analysed)."""
        table = self.store.files(self.job_id)
        driver = self._driver
        if driver is not None:
            running = driver.running_indices()
            table.loc[table["idx"].isin(running) & (table["state"] == "pending"),
                      "state"] = "running"
        return table

    def results(self) -> pd.DataFrame:
        """The results table so far (columns :data:`cpet_nb.RESULT_COLUMNS`)."""
        return self.store.results(self.job_id)

    def curves(self, file: int | str, model: str = DEFAULT_MODEL):
        """Domain curves of one file (by index or name) and model (default the CNN; or
        ``"ensemble"``), for plots."""
        return self.store.curves(self.job_id, file, model)

    def subscribe(self, callback: Callable[[Progress], None]) -> None:
        """Call ``callback(progress)`` after each partition is stored and when the job ends.

        Callbacks run on the batch's thread; an exception in one is logged, never raised.
        """
        self._subscribers.append(callback)

    def wait(self, timeout: float | None = None) -> Progress:
        """Block until the job ends (or ``timeout`` s pass); return its status.

        Raises
        ------
        Exception
            What stopped the batch's thread, if something did (the job is then ``failed``).
        """
        if self._driver is not None:
            self._driver.join(timeout)
            if self._driver.error is not None and not self._driver.is_alive():
                raise self._driver.error
        return self.status()

    def cancel(self) -> Progress:
        """Stop the job: no new partitions start, running ones stop after their current
        file, results already stored stay. Resume it later with :func:`resume`."""
        if self._driver is None:
            raise RuntimeError(f"job {self.job_id} is not run by this process "
                               "(cancel it where it runs)")
        self._driver.cancel()
        return self.wait()

    def _notify(self, progress: Progress) -> None:
        for callback in list(self._subscribers):
            try:
                callback(progress)
            except Exception:  # noqa: BLE001 - a display bug must not stop the batch
                log.exception("progress subscriber %r failed", callback)


def submit(inputs: Iterable[str | os.PathLike | Upload], store: str | os.PathLike | Store, *,
           client: Any = None, config: str | os.PathLike | None = None,
           participants: str | os.PathLike | None = None, **settings: Any) -> Batch:
    """Start analysing ``inputs`` on a dask cluster; return at once with the :class:`Batch`.

    Parameters
    ----------
    inputs : iterable
        Paths of files, folders, glob patterns or ZIP archives, and :class:`Upload` objects
        (bytes from a notebook upload; a ZIP upload is expanded).
    store : str, path-like or Store
        The SQLite job store (created when missing).
    client : distributed.Client or str, optional
        A client or scheduler address; default ``$DASK_SCHEDULER_ADDRESS``, else an embedded
        local cluster (see :func:`cpet_nb.batch.engine.get_client`).
    config : str or path-like, optional
        A settings file (see :mod:`cpet_nb.settings`).
    participants : str or path-like, optional
        A participants table (:mod:`cpet_nb.io.participants`: weight, height, age, sex by file name
        or number) overriding the files' subject data. It is checked before any work starts
        and copied into the job, so a resume uses the same table.
    **settings
        :class:`~cpet_nb.settings.Settings` fields, e.g. ``file_timeout_s=30``.

    Returns
    -------
    Batch

    Raises
    ------
    ValueError
        For invalid settings, inputs without any CPET file, or a participants table with
        errors (the message lists them).
    """
    store = store if isinstance(store, Store) else Store(store)
    chosen = Settings.load(config, **settings)
    job_id = store.new_job_id()
    folder = store.upload_dir(job_id)
    table = _stage_participants(participants, folder) if participants is not None else None
    with _cluster_starting(client, chosen) as ready:  # meanwhile: expand and hash
        entries, info = _stage_inputs(list(inputs), folder, chosen)
        model_version = bundled_model_version(chosen.models)
        info["participants"] = table
        store.create_job(job_id, entries, settings=chosen.to_dict(),
                         analysis_key=chosen.analysis_key(
                             model_version, table["sha256"] if table else None),
                         model_version=model_version, inputs=info)
    return _start(store, job_id, chosen, ready.result())


def resume(job_id: str, store: str | os.PathLike | Store, *, client: Any = None,
           force: bool = False) -> Batch:
    """Run what a job has not finished (after a crash, a kernel restart or a cancel).

    Files that have a stored result are not analysed again; neither are files whose content
    has a result under the same analysis key in another job. A job that still looks
    ``running`` is refused unless ``force`` (its owner ran on another host, so this process
    cannot tell whether it is gone; see :meth:`cpet_nb.batch.store.Store.claim_job`).
    """
    store = store if isinstance(store, Store) else Store(store)
    settings = Settings.from_dict(store.job(job_id)["settings"])
    store.claim_job(job_id, force=force)  # refuse before starting a cluster
    from .engine import get_client

    return _start(store, job_id, settings, get_client(client, settings.workers))


def jobs(store: str | os.PathLike | Store) -> pd.DataFrame:
    """Every job in ``store``, newest first, with its state and counts."""
    return (store if isinstance(store, Store) else Store(store)).jobs()


@contextmanager
def _cluster_starting(client: Any, settings: Settings) -> Iterator[Future]:
    """Connect to (or start) the cluster in a thread while the caller prepares the job; the
    workers' analysis processes load the model meanwhile."""
    from .engine import get_client

    with ThreadPoolExecutor(1, thread_name_prefix="cpet_nb-connect") as pool:
        yield pool.submit(get_client, client, settings.workers)


def _start(store: Store, job_id: str, settings: Settings, client: Any) -> Batch:
    batch = Batch(store, job_id)
    store.reuse_results(job_id)
    if not store.pending(job_id):
        _finish(store, job_id, "done", settings)
        return batch
    batch._driver = _Driver(batch, client, settings)
    batch._driver.start()
    return batch


def _finish(store: Store, job_id: str, status: str, settings: Settings) -> None:
    store.finish_job(job_id, status)
    if status == "done" and not settings.keep_uploads:
        shutil.rmtree(store.upload_dir(job_id), ignore_errors=True)


# -- inputs ------------------------------------------------------------------------------


def _stage_participants(path: str | os.PathLike, folder: Path) -> dict[str, str]:
    """Check a participants table and keep a copy with the job; its name, copy and sha256."""
    from ..findings import has_errors
    from ..io.participants import SubjectTable

    table = SubjectTable.from_csv(path)
    if has_errors(table.findings):
        raise ValueError("participants table refused: "
                         + "; ".join(str(f) for f in table.findings
                                     if f.severity is Severity.ERROR))
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "participants.csv"
    shutil.copyfile(path, copy)
    return {"name": os.fspath(path), "path": str(copy), "sha256": _hash(copy)[0]}


def _stage_inputs(inputs: Sequence[str | os.PathLike | Upload], folder: Path,
                  settings: Settings) -> tuple[list[FileEntry], dict[str, Any]]:
    """Expand and hash the inputs; uploads and archive members are copied into ``folder``
    (removed again when it stays empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[str | os.PathLike] = []
    for i, item in enumerate(inputs):
        if isinstance(item, Upload):
            target = folder / f"upload-{i}" / (Path(item.name).name or f"upload-{i}")
            target.parent.mkdir()
            target.write_bytes(item.content)
            paths.append(target)
        else:
            paths.append(item)
    expanded = expand_inputs(paths, settings.max_file_bytes, temp_dir=folder,
                             sniff=settings.profile is None)
    expanded.release_temp_dirs()
    entries = []
    for item in expanded.files:
        label = item.label
        if item.archive is None and item.path.is_relative_to(folder):
            label = item.path.name
        elif item.archive is not None and Path(item.archive).is_relative_to(folder):
            label = f"{Path(item.archive).name}/{item.member}"
        digest, size = _hash(item.path)
        entries.append(FileEntry(len(entries), label, str(item.path), digest, size))
    if not any(folder.iterdir()):
        folder.rmdir()
    info = {
        "given": [i.name if isinstance(i, Upload) else os.fspath(i) for i in inputs],
        "skipped": [str(p) for p in expanded.skipped],
        "findings": [f.to_dict() for f in expanded.findings],
    }
    if not entries:
        shutil.rmtree(folder, ignore_errors=True)
        raise ValueError("no CPET files found in the inputs"
                         + (f" ({len(expanded.skipped)} unrecognised file(s) skipped)"
                            if expanded.skipped else "")
                         + "".join(f"; {f}" for f in expanded.findings))
    return entries, info


def _hash(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of a file; a missing file hashes as empty (the worker reports
    it as ``file-not-found``)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return "", 0
    return digest.hexdigest(), size


def _contents(entries: Sequence[FileEntry], max_file_bytes: int) -> dict[int, bytes]:
    """The bytes of each readable file, for workers that cannot read the client's paths. A
    file over the size limit is cut just past it (the worker then refuses it as too large,
    as it would the original); an unreadable file is left out (the worker reports it as not
    found)."""
    out = {}
    for entry in entries:
        try:
            with open(entry.path, "rb") as stream:
                out[entry.idx] = stream.read(max_file_bytes + 1)
        except OSError:
            continue
    return out


# -- the driver --------------------------------------------------------------------------


@dataclass
class _Partition:
    entries: list[FileEntry]
    started: float = field(default_factory=time.monotonic)


class _Driver(threading.Thread):
    """Submits partitions (a bounded number in flight), commits what comes back, notifies."""

    def __init__(self, batch: Batch, client: Any, settings: Settings) -> None:
        super().__init__(name=f"cpet_nb-batch-{batch.job_id}", daemon=True)
        self.batch = batch
        self.client = client
        self.settings = settings
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._in_flight: dict[Any, _Partition] = {}
        self._state_lock = threading.Lock()
        self._stored = 0
        self._analysis_options: dict[str, Any] | None = None
        self._task_numbers = itertools.count()  # unique keys: a retried file is a new task
        self._began = time.monotonic()

    # state read by Batch.status() from other threads
    def running_count(self) -> int:
        with self._state_lock:
            return sum(len(p.entries) for p in self._in_flight.values())

    def running_indices(self) -> set[int]:
        with self._state_lock:
            return {e.idx for p in self._in_flight.values() for e in p.entries}

    def files_per_s(self) -> float:
        elapsed = time.monotonic() - self._began
        return self._stored / elapsed if self._stored else math.nan

    def cancel(self) -> None:
        from distributed import Event

        from .engine import cancel_event_name

        self._cancel.set()
        Event(cancel_event_name(self.batch.job_id), client=self.client).set()

    def run(self) -> None:
        store, job_id = self.batch.store, self.batch.job_id
        try:
            status = self._drive(store, job_id)
        except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised by wait()
            self.error = exc
            log.exception("batch %s failed", job_id)
            status = "failed"
        try:
            _finish(store, job_id, status, self.settings)
        finally:
            self._release_event()
            self.batch._notify(self.batch.status())
            store.close()  # this thread's connection, after its last read

    def _drive(self, store: Store, job_id: str) -> str:
        from distributed import as_completed

        from .engine import worker_threads, workers_share_files

        threads = worker_threads(self.client)
        queue = self._partitions(store.pending(job_id), threads)
        ship = self.settings.ship_files
        by_path = ship == "path" or (ship == "auto" and workers_share_files(self.client))
        completed = as_completed(loop=self.client.loop)
        window = 2 * threads
        while queue and len(self._in_flight) < window:
            self._submit(queue.pop(0), completed, by_path)
        for future in completed:
            with self._state_lock:
                partition = self._in_flight.pop(future)
            outcomes = self._outcomes(future, partition, queue)
            if outcomes:
                stored = store.commit(job_id, outcomes)
                self._stored += len(stored)
                names = {o.idx: o.result.file for o in outcomes}
                self.batch._notify(replace(self.batch.status(),
                                           new_files=tuple(names[i] for i in stored)))
            while queue and not self._cancel.is_set() and len(self._in_flight) < window:
                self._submit(queue.pop(0), completed, by_path)
        if self._cancel.is_set() and store.pending(job_id):
            return "cancelled"
        return "done" if not store.pending(job_id) else "failed"

    def _partitions(self, pending: list[FileEntry], threads: int) -> list[_Partition]:
        """Partitions in file order. With an automatic size, each worker thread's first
        partition holds one file, so the first results are stored (and shown) while the
        rest of the batch is still being planned into larger tasks."""
        size = self.settings.partition_size
        first: list[_Partition] = []
        if not size:
            size = min(MAX_AUTO_PARTITION,
                       max(1, math.ceil(len(pending) / (threads * PARTITIONS_PER_THREAD))))
            if size > 1:
                first, pending = [_Partition([e]) for e in pending[:threads]], pending[threads:]
        return first + [_Partition(pending[i:i + size]) for i in range(0, len(pending), size)]

    def _submit(self, partition: _Partition, completed: Any, by_path: bool) -> None:
        from .engine import run_partition

        contents = None if by_path else _contents(partition.entries,
                                                  self.settings.max_file_bytes)
        partition.started = time.monotonic()
        future = self.client.submit(
            run_partition, self.batch.job_id, partition.entries, self._options(),
            self.settings.file_timeout_s, self.settings.file_memory_mb, contents,
            pure=False, retries=self.settings.retries,
            key=f"cpet_nb-{self.batch.job_id}-{next(self._task_numbers)}")
        with self._state_lock:
            self._in_flight[future] = partition
        completed.add(future)

    def _outcomes(self, future: Any, partition: _Partition,
                  queue: list[_Partition]) -> list[Outcome]:
        """A partition's outcomes; a failed partition of several files is split into single
        files and queued again, a failed single file becomes a ``worker-lost`` error."""
        if future.status == "finished":
            return future.result()
        if future.status == "cancelled" or self._cancel.is_set():
            return []
        exc = future.exception()
        if len(partition.entries) > 1:
            log.warning("partition of %d files failed (%r); retrying them one by one",
                        len(partition.entries), exc)
            queue[:0] = [_Partition([e]) for e in partition.entries]
            return []
        entry = partition.entries[0]
        finding = Finding("worker-lost", Severity.ERROR,
                          f"{type(exc).__name__}: {exc}", file=entry.name)
        return [Outcome(entry.idx, FileResult.failed(entry.name, [finding]), "", time.time(),
                        time.monotonic() - partition.started, error=repr(exc))]

    def _options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`cpet_nb.analyze` for every file (made once)."""
        if self._analysis_options is None:
            from ..io.participants import SubjectTable

            options: dict[str, Any] = {"settings": self.settings}  # with the lab profile
            table = self.batch.store.job(self.batch.job_id)["inputs"].get("participants")
            if table:
                options["subjects"] = SubjectTable.from_csv(table["path"])
            self._analysis_options = options
        return self._analysis_options

    def _release_event(self) -> None:
        """Forget the job's cancel event on the scheduler (it holds one per job)."""
        if not self._cancel.is_set():
            return
        from distributed import Event

        from .engine import cancel_event_name

        try:
            Event(cancel_event_name(self.batch.job_id), client=self.client).clear()
        except Exception:  # noqa: BLE001 - the scheduler may be gone at shutdown
            log.debug("could not clear the cancel event of %s", self.batch.job_id)
