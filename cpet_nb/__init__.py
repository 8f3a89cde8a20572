"""cpet_nb: batch analysis of cardiopulmonary exercise test (CPET) files.

The public API::

    import cpet_nb
    result = cpet_nb.analyze("test.csv")        # one test -> FileResult
    record = cpet_nb.read("test.csv")           # one file -> CPETRecord (canonical units)
    table = cpet_nb.results_table([result])     # results -> pandas DataFrame

    batch = cpet_nb.submit(["tests/"], store="jobs.sqlite")   # many tests on dask
    batch.wait(); batch.results()               # the same table, stored as it is made
    cpet_nb.jobs(store="jobs.sqlite"); cpet_nb.resume(job_id, store="jobs.sqlite")

    cpet_nb.panel(store="jobs.sqlite")          # in JupyterLab: the same, without code
"""

from typing import Any as _Any

from . import _optional  # noqa: F401 - first: keeps a pyarrow that cannot work out
from ._version import __version__
from .analysis import analyze, analyze_record
from .batch import Batch, Progress, Upload, jobs, resume, submit
from .findings import CODES, CPETError, Finding, Severity, UnsupportedFormat
from .io import ColumnMapping, datasets, read, readers
from .io.profiles import list_profiles, load_profile, save_profile
from .model.domains import DomainCurves
from .record import CANONICAL_UNITS, CPETRecord, Metadata
from .result import RESULT_COLUMNS, FileResult, Threshold, results_table
from .settings import Settings

__all__ = [
    "Batch", "CANONICAL_UNITS", "CODES", "CPETError", "CPETRecord", "ColumnMapping",
    "DomainCurves", "FileResult", "Finding", "Metadata", "Progress", "RESULT_COLUMNS",
    "Settings", "Severity", "Threshold", "Upload", "UnsupportedFormat", "analyze",
    "analyze_record", "datasets", "jobs", "list_profiles", "load_profile", "read", "readers",
    "panel", "results_table", "resume", "save_profile", "submit", "__version__",
]


def panel(store=None, client: _Any = None, **settings: _Any):
    """The JupyterLab panel: upload or point at files, check them, run a batch, watch it,
    explore the results and plots, export them (needs ``pip install "cpet-nb[jupyter]"``).

    Parameters
    ----------
    store : str or path-like, optional
        The SQLite job store (default ``cpet_nb-jobs.sqlite`` in the current folder);
        reopened, the panel lists its jobs and shows the newest.
    client : distributed.Client or str, optional
        Where batches run (default: ``$DASK_SCHEDULER_ADDRESS``, else a local cluster).
    **settings
        Initial values of the settings controls (:class:`Settings` fields).

    Returns
    -------
    cpet_nb.ui.Panel
        Display it (the last expression of a cell); its ``widget`` is the root widget.
    """
    from .ui import Panel  # ipywidgets, Bokeh and dask only now, not on import cpet_nb

    return Panel(store, client, **settings)
