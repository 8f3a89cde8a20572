"""A stored job, gathered for a report: its row, inputs, results and settings.

:func:`load_job` is the first thing a report notebook does; its errors (no store there, no
such job) are the ones a person sees when a report cannot be made, so they say what exists.
:func:`demo_job` makes a small job of pyoxynet's bundled tests, so that a report notebook
runs as it stands (nbval, Binder).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..batch.store import Store
from ..io import datasets
from ..settings import Settings

#: The job id that means the newest job in the store.
LATEST = "latest"
#: How many job ids an unknown-job message lists.
JOBS_NAMED = 5
#: File states whose inputs have a stored results row (a pending or cancelled one has none).
STORED_STATES = ("done", "reused", "skipped", "refused")


class UnknownJob(KeyError):
    """No such job in the store (a ``KeyError`` whose text is the message, unquoted)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class JobData:
    """What a report shows of one stored job.

    Attributes
    ----------
    store : Store
    job_id : str
    job : dict
        The job's row (:meth:`Store.job`: status, dates, settings, model and cpet_nb
        versions, inputs as given).
    files : pandas.DataFrame
        Every input in order, with its state (:meth:`Store.files`).
    results : pandas.DataFrame
        The results table (:meth:`Store.results`), one row per input with a stored result.
    settings : Settings
        The settings the job ran with.
    overrides : pandas.DataFrame
        The reviewers' overrides that apply to the job's tests (:meth:`Store.overrides`).
    """

    store: Store
    job_id: str
    job: dict[str, Any]
    files: pd.DataFrame
    results: pd.DataFrame
    settings: Settings
    overrides: pd.DataFrame

    @property
    def analysed(self) -> pd.DataFrame:
        """The results rows of the tests that were analysed (status ok or warning)."""
        return self.results[self.results["status"].isin(["ok", "warning"])]

    def stored_tests(self) -> list[tuple[int, pd.Series]]:
        """``(idx, results row)`` of every input with a stored result, in input order.

        The store keeps results in input order, one row per input in a
        :data:`STORED_STATES` state: the two sequences line up (checked by name).
        """
        stored = self.files[self.files["state"].isin(STORED_STATES)]
        pairs = list(zip(stored["idx"], (row for _, row in self.results.iterrows()),
                         strict=True))
        for (idx, row), name in zip(pairs, stored["name"], strict=True):
            if row["file"] != name:
                raise RuntimeError(f"job {self.job_id}: the results row of input {idx} names "
                                   f"{row['file']!r}, not {name!r}")
        return [(int(idx), row) for idx, row in pairs]


def load_job(store: str | os.PathLike | Store, job_id: str) -> JobData:
    """Gather job ``job_id`` of ``store`` for a report.

    Parameters
    ----------
    store : str, path-like or Store
        An existing job store (a path that does not exist is refused, never created).
    job_id : str
        A job id, or ``"latest"`` (:data:`LATEST`) for the newest job in the store.

    Returns
    -------
    JobData

    Raises
    ------
    FileNotFoundError
        When there is no store at ``store``.
    UnknownJob
        For an unknown job (the message names the store's newest jobs) or a store without
        jobs (a ``KeyError``).
    """
    store = open_store(store)
    job_id = resolve_job_id(store, job_id)
    job = store.job(job_id)
    return JobData(store, job_id, job, store.files(job_id), store.results(job_id),
                   Settings.from_dict(job["settings"]), store.overrides(job_id))


def open_store(store: str | os.PathLike | Store) -> Store:
    """The store at ``store``; ``FileNotFoundError`` when there is none (opening a
    :class:`Store` would create an empty one)."""
    if isinstance(store, Store):
        return store
    if not str(store) or not Path(store).is_file():
        raise FileNotFoundError(f"no job store at {str(store)!r}")
    return Store(store)


def resolve_job_id(store: Store, job_id: str) -> str:
    """``job_id`` itself when the store has it, the newest job's id for ``"latest"``.

    Raises
    ------
    UnknownJob
        Naming the store and its newest jobs.
    """
    jobs = store.jobs()["job_id"].tolist()
    if not jobs:
        raise UnknownJob(f"the store {store.path} has no jobs")
    if job_id == LATEST:
        return jobs[0]
    if job_id not in jobs:
        newest = ", ".join(jobs[:JOBS_NAMED]) + (", ..." if len(jobs) > JOBS_NAMED else "")
        raise UnknownJob(f"no job {job_id!r} in {store.path} (its newest: {newest}; "
                       f"'cpet-nb store jobs --store {store.path}' lists them all)")
    return job_id


def demo_job(n_tests: int = 3, folder: str | os.PathLike | None = None) -> tuple[Path, str]:
    """A job of the first ``n_tests`` of pyoxynet's bundled tests, run on one local worker
    in a new store (the embedded cluster is shut down afterwards); returns the store's path
    and the job id.

    Parameters
    ----------
    n_tests : int
    folder : str or path-like, optional
        Where the store is made (default: a new temporary folder).
    """
    from ..batch import submit
    from ..batch.engine import shutdown

    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="cpet_nb-"))
    batch = submit(datasets.pyoxynet_tests()[:n_tests], store=folder / "jobs.sqlite",
                   workers=1)
    try:
        batch.wait()
    finally:
        shutdown()  # the cluster's processes end here, not with the kernel
    return batch.store.path, batch.job_id
