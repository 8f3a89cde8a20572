"""The driver of a running batch: a thread that submits partitions to dask (a bounded
number in flight), commits each finished partition to the store in one transaction, and
only then -- once the next partitions are submitted -- tells the batch's subscribers."""

from __future__ import annotations

import itertools
import logging
import math
import shutil
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..io._files import open_regular
from ..result import FileResult
from ..settings import Settings
from .store import FileEntry, Outcome, Store

if TYPE_CHECKING:  # pragma: no cover
    from .api import Batch

log = logging.getLogger(__name__)

#: Most files per partition when the size is chosen automatically.
MAX_AUTO_PARTITION = 25
#: Partitions per worker thread when the size is chosen automatically (load balance).
PARTITIONS_PER_THREAD = 4
#: With an automatic size, the last files (one partition per worker thread) go in partitions
#: this many times smaller, so that at the end no worker waits idle for a whole partition.
TAIL_SPLIT = 5


def finish(store: Store, job_id: str, status: str, settings: Settings) -> None:
    store.finish_job(job_id, status)
    if status == "done" and not settings.keep_uploads:
        shutil.rmtree(store.upload_dir(job_id), ignore_errors=True)


@dataclass
class Partition:
    entries: list[FileEntry]
    started: float = field(default_factory=time.monotonic)


class Driver(threading.Thread):
    """Submits partitions (a bounded number in flight), commits what comes back, notifies."""

    def __init__(self, batch: Batch, client: Any, settings: Settings) -> None:
        super().__init__(name=f"cpet_nb-batch-{batch.job_id}", daemon=True)
        self.batch = batch
        self.client = client
        self.settings = settings
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._in_flight: dict[Any, Partition] = {}
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
            finish(store, job_id, status, self.settings)
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
        self._fill(queue, completed, by_path, window)
        self.batch._notify(self.batch.status())  # its first files are running
        for future in completed:
            with self._state_lock:
                partition = self._in_flight.pop(future)
            outcomes = self._outcomes(future, partition, queue)
            stored = store.commit(job_id, outcomes) if outcomes else []
            self._stored += len(stored)
            self._fill(queue, completed, by_path, window)
            # after the window is full again: the notice shows the files now running too
            names = {o.idx: o.result.file for o in outcomes}
            self.batch._notify(replace(self.batch.status(),
                                       new_files=tuple(names[i] for i in stored)))
        if self._cancel.is_set() and store.pending(job_id):
            return "cancelled"
        return "done" if not store.pending(job_id) else "failed"

    def _fill(self, queue: list[Partition], completed: Any, by_path: bool,
              window: int) -> None:
        """Submit queued partitions until ``window`` are in flight (none once cancelled)."""
        while queue and not self._cancel.is_set() and len(self._in_flight) < window:
            self._submit(queue.pop(0), completed, by_path)

    def _partitions(self, pending: list[FileEntry], threads: int) -> list[Partition]:
        """Partitions in file order. With an automatic size, each worker thread's first
        partition holds one file, so the first results are stored (and shown) while the
        rest of the batch is still being planned into larger tasks, and the last
        ``threads`` partitions' worth of files go in partitions :data:`TAIL_SPLIT` times
        smaller (the tail: workers finish at about the same time)."""
        size = self.settings.partition_size
        if size:
            return _chunks(pending, size)
        size = min(MAX_AUTO_PARTITION,
                   max(1, math.ceil(len(pending) / (threads * PARTITIONS_PER_THREAD))))
        if size == 1:
            return _chunks(pending, 1)
        first, body = pending[:threads], pending[threads:]
        tail_start = max(0, (len(body) - threads * size) // size * size)
        return (_chunks(first, 1) + _chunks(body[:tail_start], size)
                + _chunks(body[tail_start:], math.ceil(size / TAIL_SPLIT)))

    def _submit(self, partition: Partition, completed: Any, by_path: bool) -> None:
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

    def _outcomes(self, future: Any, partition: Partition,
                  queue: list[Partition]) -> list[Outcome]:
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
            queue[:0] = [Partition([e]) for e in partition.entries]
            return []
        entry = partition.entries[0]
        result = FileResult.error(entry.name, "worker-lost", f"{type(exc).__name__}: {exc}")
        return [Outcome(entry.idx, result, "", time.time(),
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


def _chunks(entries: list[FileEntry], size: int) -> list[Partition]:
    """``entries`` in order, in partitions of ``size`` (the last one may be smaller)."""
    return [Partition(entries[i:i + size]) for i in range(0, len(entries), size)]


def _contents(entries: Sequence[FileEntry], max_file_bytes: int) -> dict[int, bytes]:
    """The bytes of each readable file, for workers that cannot read the client's paths. A
    file over the size limit is cut just past it (the worker then refuses it as too large,
    as it would the original); an unreadable file is left out (the worker reports it as not
    found; a FIFO or device is never opened)."""
    out = {}
    for entry in entries:
        try:
            with open_regular(entry.path) as stream:
                out[entry.idx] = stream.read(max_file_bytes + 1)
        except OSError:
            continue
    return out
