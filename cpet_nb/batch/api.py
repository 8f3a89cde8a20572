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

import logging
import math
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from ..findings import Finding, Severity
from ..model import DEFAULT_MODEL, bundled_model_version
from ..settings import Settings
from .driver import Driver, finish
from .review import Override, OverrideRefused, OverrideRequest, apply_overrides, review_queue
from .staging import NoCPETFiles, Upload, stage_inputs, stage_participants
from .store import SETTLED_STATES, Store

log = logging.getLogger(__name__)


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
        Files per state (``pending``, ``running``, ``done``, ``reused``, ``cancelled``, and
        ``skipped`` / ``refused`` for inputs settled at intake: not CPET exports, archive
        problems) and per result status (``ok``, ``warning``, ``error``, ``skipped``).
    n_files : int
        Every input of the job, the settled ones included.
    fraction_done : float
        Inputs with a stored row over all inputs (0 to 1).
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

    @property
    def n_finished(self) -> int:
        """Inputs with a stored row: analysed, reused or settled at intake."""
        return sum(self.counts[state] for state in ("done", "reused", *SETTLED_STATES))

    def __str__(self) -> str:
        eta = "" if math.isnan(self.eta_s) else f", about {self.eta_s:.0f} s left"
        skipped = f", {self.counts['skipped']} skipped" if self.counts["skipped"] else ""
        return (f"job {self.job_id} {self.state}: {self.n_finished}/{self.n_files} files "
                f"({self.counts['ok']} ok, {self.counts['warning']} warning, "
                f"{self.counts['error']} error{skipped}){eta}")


class Batch:
    """A job in a store, and (when this process runs it) the thread that drives it.

    Get one from :func:`submit` or :func:`resume`; the methods read the store, so they
    also work for a job another process runs.
    """

    def __init__(self, store: Store, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self._subscribers: list[Callable[[Progress], None]] = []
        self._driver: Driver | None = None

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
        progress = Progress(self.job_id, job["status"], counts, job["n_files"], 1.0, rate,
                            math.nan)
        remaining = counts["pending"] + counts["running"]
        eta = remaining / rate if rate and not math.isnan(rate) and rate > 0 else math.nan
        if job["status"] != "running":
            eta = 0.0 if job["status"] == "done" else math.nan
        fraction = progress.n_finished / job["n_files"] if job["n_files"] else 1.0
        return replace(progress, fraction_done=fraction, eta_s=eta)

    def files(self) -> pd.DataFrame:
        """Every input of the job with its state (``running`` for those being analysed;
        ``skipped`` and ``refused`` inputs with the finding that says why)."""
        table = self.store.files(self.job_id)
        driver = self._driver
        if driver is not None:
            running = driver.running_indices()
            table.loc[table["idx"].isin(running) & (table["state"] == "pending"),
                      "state"] = "running"
        return table

    def results(self, files: Sequence[str] | None = None) -> pd.DataFrame:
        """The results table so far (columns :data:`cpet_nb.RESULT_COLUMNS`); only the rows
        of ``files`` (names) when given."""
        return self.store.results(self.job_id, files)

    def curves(self, file: int | str, model: str = DEFAULT_MODEL):
        """Domain curves of one file (by index or name) and model (default the CNN; or
        ``"ensemble"``), for plots."""
        return self.store.curves(self.job_id, file, model)

    def override(self, file: int | str, *, vt1_time_s: float | None = None,
                 vt2_time_s: float | None = None, vt1_method: str | None = None,
                 vt2_method: str | None = None, note: str | None = None,
                 reviewer: str | None = None) -> list[Override]:
        """Store a reviewer's decision on VT1 and/or VT2 of one test, and return it with the
        values recomputed at the new time (:mod:`cpet_nb.batch.review`).

        The machine's values are kept; the results' final columns (``vt1_final_time_s``,
        ..., ``vt1_source``) show the newest decision, here and in every job with the same
        file content and analysis key. Both thresholds are stored, or neither.

        Parameters
        ----------
        file : int or str
            The input (its index, its name as :meth:`results` shows it, or its file name
            when that is unique in the job).
        vt1_time_s, vt2_time_s : float, optional
            The time the reviewer sets (s from the start of the recording; snapped to the
            1 s grid). VO2, HR and load there are recomputed as for automatic thresholds.
        vt1_method, vt2_method : str, optional
            Instead of a time: ``"consensus"`` accepts the consensus; ``"model"``, a model
            (``"cnn"``, ...) or a classical method (``"vslope"``, ``"equivalents"``,
            ``"peto2"``, ``"petco2"``) picks that estimate.
        note : str, optional
            Why (kept with each threshold's decision).
        reviewer : str, optional
            Who decides (default: the operating-system user, e.g. the Jupyter server's).

        Returns
        -------
        list of Override
            One per threshold decided, as stored.

        Raises
        ------
        OverrideRefused
            A ``ValueError`` listing a finding per bad request (unknown file, time outside
            the test, unknown method, ...); nothing was stored.

        Examples
        --------
        >>> batch.override("test01.csv", vt1_time_s=412, note="V-slope break")  # doctest: +SKIP
        """
        requests = [OverrideRequest(file, vt, time_s, method, note, reviewer)
                    for vt, time_s, method in (("vt1", vt1_time_s, vt1_method),
                                               ("vt2", vt2_time_s, vt2_method))
                    if time_s is not None or method is not None]
        if not requests:
            raise OverrideRefused([Finding(
                "override-bad-request", Severity.ERROR, "nothing to override: give "
                "vt1_time_s, vt2_time_s, vt1_method or vt2_method", file=str(file))])
        return apply_overrides(self.store, self.job_id, requests)

    def overrides(self) -> pd.DataFrame:
        """The audit table of the reviewers' decisions that apply to this job's tests, oldest
        first, ``current`` marking those in force (:meth:`Store.overrides`)."""
        return self.store.overrides(self.job_id)

    def review_queue(self) -> pd.DataFrame:
        """The analysed tests in review order, flagged ones first
        (:func:`cpet_nb.batch.review.review_queue`)."""
        return review_queue(self.results())

    @property
    def driven_here(self) -> bool:
        """Whether a thread of this process is running the job now (its notices then tell
        every change of the job's state)."""
        return self._driver is not None and self._driver.is_alive()

    def subscribe(self, callback: Callable[[Progress], None]) -> None:
        """Call ``callback(progress)`` once the first partitions are submitted, after each
        partition comes back (stored: its files in ``new_files``; the next partitions are
        then already submitted) and when the job ends.

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
           participants: str | os.PathLike | None = None, user: str | None = None,
           **settings: Any) -> Batch:
    """Start analysing ``inputs`` on a dask cluster; return at once with the :class:`Batch`.

    Parameters
    ----------
    inputs : iterable
        Paths of files, folders, glob patterns or ZIP archives, and :class:`Upload` objects
        (bytes from a notebook upload; a ZIP upload is expanded). Every input gets a row
        (:mod:`cpet_nb.batch.staging`): files that are not CPET exports are ``skipped``,
        archive problems ``refused``, each with its finding.
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
    user : str, optional
        Who submits the job (recorded with it; :func:`jobs` can list one user's jobs).
    **settings
        :class:`~cpet_nb.settings.Settings` fields, e.g. ``file_timeout_s=30``.

    Returns
    -------
    Batch

    Raises
    ------
    NoCPETFiles
        For inputs without any CPET file (a ``ValueError``).
    ValueError
        For invalid settings, or a participants table with errors (the message lists them).
    """
    store = store if isinstance(store, Store) else Store(store)
    chosen = Settings.load(config, **settings)
    store.remove_orphan_uploads()  # what a submit killed while staging left behind
    job_id = store.new_job_id()
    folder = store.new_upload_dir(job_id)
    table = stage_participants(participants, folder) if participants is not None else None
    with _cluster_starting(client, chosen) as ready:  # meanwhile: expand and hash
        staged = stage_inputs(list(inputs), folder, chosen)
        if not staged.to_analyse:
            shutil.rmtree(folder, ignore_errors=True)
            raise NoCPETFiles(staged.why_nothing_to_analyse())
        model_version = bundled_model_version(chosen.models)
        staged.info["participants"] = table
        store.create_job(job_id, staged.entries, settled=staged.settled,
                         settings=chosen.to_dict(),
                         analysis_key=chosen.analysis_key(
                             model_version, table["sha256"] if table else None),
                         model_version=model_version, inputs=staged.info, user=user)
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

    return _start(store, job_id, settings,
                  get_client(client, settings.workers, dashboard=settings.dashboard))


def jobs(store: str | os.PathLike | Store, user: str | None = None) -> pd.DataFrame:
    """Every job in ``store`` (only ``user``'s when given), newest first, with its state and
    counts."""
    return (store if isinstance(store, Store) else Store(store)).jobs(user)


@contextmanager
def _cluster_starting(client: Any, settings: Settings) -> Iterator[Future]:
    """Connect to (or start) the cluster in a thread while the caller prepares the job; the
    workers' analysis processes load the model meanwhile."""
    from .engine import get_client

    with ThreadPoolExecutor(1, thread_name_prefix="cpet_nb-connect") as pool:
        yield pool.submit(get_client, client, settings.workers, dashboard=settings.dashboard)


def _start(store: Store, job_id: str, settings: Settings, client: Any) -> Batch:
    batch = Batch(store, job_id)
    store.reuse_results(job_id)
    if not store.pending(job_id):
        finish(store, job_id, "done", settings)
        return batch
    batch._driver = Driver(batch, client, settings)
    batch._driver.start()
    return batch


