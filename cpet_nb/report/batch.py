"""The batch report: ``batch_report.ipynb`` executed for a stored job and made into one
HTML page, with, if asked, one report per test (``test_report.ipynb``) in a ZIP beside it.

The same function serves the panel, the server, ``cpet-nb report`` and a scheduled run::

    cpet_nb.report.batch_report(job_id, "jobs.sqlite", out="report.html")

A failed execution leaves the partial notebook (``report.executed.ipynb`` beside
``report.html``: :func:`executed_notebook_path`) with the
failing cell marked and raises :class:`~cpet_nb.report.execute.ReportFailed` naming that
cell; no HTML page is written then, so a page on disk is always a whole report.
"""

from __future__ import annotations

import os
import re
import time
import zipfile
from pathlib import Path

from .._checks import check_choice
from ..io.exports import atomic_path
from .convert import notebook_html
from .execute import ReportFailed, SharedKernel, check_kernel, execute, require, template
from .job import open_store, resolve_job_id

#: What a report holds for each test: nothing, a section each in the same document, or
#: one HTML report each in a ZIP file beside it.
PER_TEST = ("none", "sections", "zip")
#: Most points per plotted series in the batch report's per-test sections (display only:
#: the values in the tables come from all the data); the per-test reports draw all points
#: up to :data:`cpet_nb.report.plots.MAX_POINTS_PER_LINE`.
SECTION_MAX_POINTS = 400


def tests_zip_path(out: str | os.PathLike) -> Path:
    """Where ``per_test="zip"`` writes the per-test reports: ``<out>-tests.zip`` beside
    ``out`` (``report.html`` → ``report-tests.zip``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}-tests.zip")


def executed_notebook_path(out: str | os.PathLike) -> Path:
    """Where the executed notebook of the report ``out`` is written:
    ``<out>.executed.ipynb`` beside it (``report.html`` → ``report.executed.ipynb``; a
    notebook of the user's own named ``report.ipynb`` is never touched)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.executed.ipynb")


def batch_report(job_id: str, store: str | os.PathLike, out: str | os.PathLike = "report.html",
                 per_test: str = "none", *, title: str = "", keep_notebook: bool = False,
                 timeout_s: float | None = None) -> Path:
    """Make the HTML report of a stored job.

    The template ``batch_report.ipynb`` is executed with papermill in a ``python3`` kernel
    (which must run this Python: :func:`~cpet_nb.report.execute.check_kernel`) and made
    into a page without code, Bokeh inlined: it works offline. Contents: title, date, job
    and every input with its state; quality (tests to review and why, findings by code);
    cohort summary; the results table; the tests one by one (``per_test``); the processing
    statement (model and version, settings, averaging, the reporting checklist of Nolte et
    al. 2023).

    Parameters
    ----------
    job_id : str
        A job of ``store``, or ``"latest"`` for the newest.
    store : str or path-like
        The job store.
    out : str or path-like
        The ``.html`` file (its folder is created). The executed notebook
        (:func:`executed_notebook_path`) is kept on failure, and with ``keep_notebook``.
    per_test : str
        ``"none"``, ``"sections"`` (one section per test in the page: its results, review
        flags, findings and domain probabilities) or ``"zip"`` (one full report per test, in
        :func:`tests_zip_path`).
    title : str
        The page's title (default ``"CPET batch report: job <id>"``).
    keep_notebook : bool
        Keep the executed notebook (the per-test notebooks too, in a folder beside it).
    timeout_s : float, optional
        Longest a cell may run (default :data:`~cpet_nb.report.execute.CELL_TIMEOUT_S`).

    Returns
    -------
    pathlib.Path
        The page written.

    Raises
    ------
    ReportFailed
        When a cell fails (unknown job, store that does not exist, ...): the message names
        the cell and the error, and the partial notebook is written with the cell marked.
        With ``per_test="zip"``, tests whose report failed are named; their partial
        reports are in the ZIP, the other tests' reports too.
    ValueError
        For an unknown ``per_test`` or an ``out`` that does not end in ``.html``.
    RuntimeError
        When the ``python3`` kernel runs another Python.
    ImportError
        Without the ``jupyter`` extra (papermill, nbconvert, ipykernel).
    """
    check_choice(per_test, PER_TEST, "per_test")
    out = Path(out).absolute()
    if out.suffix.lower() != ".html":
        raise ValueError(f"the report is an HTML page: {out.name} must end in .html")
    if not str(store):
        raise ValueError("give the job store whose job the report is about")
    require()
    check_kernel()
    out.parent.mkdir(parents=True, exist_ok=True)
    notebook_path = executed_notebook_path(out)
    store = Path(store).absolute()
    parameters = {"store": str(store), "job_id": job_id, "per_test": per_test,
                  "title": title, "zip_name": tests_zip_path(out).name,
                  "max_points": SECTION_MAX_POINTS}
    kwargs = {} if timeout_s is None else {"timeout_s": timeout_s}
    executed = execute(template("batch_report.ipynb"), notebook_path, parameters, out.parent,
                       **kwargs)
    job_id = resolve_job_id(open_store(store), job_id)  # the notebook found it: it exists
    with atomic_path(out) as tmp:
        page = notebook_html(executed, title or f"CPET batch report: job {job_id}")
        tmp.write_text(page, encoding="utf-8")
    if not keep_notebook:
        notebook_path.unlink(missing_ok=True)
    if per_test == "zip":
        write_test_reports(job_id, store, tests_zip_path(out), keep_notebooks=keep_notebook,
                           **kwargs)
    return out


def write_test_reports(job_id: str, store: str | os.PathLike, path: str | os.PathLike, *,
                       keep_notebooks: bool = False, timeout_s: float | None = None) -> Path:
    """One HTML report per test of a job (``test_report.ipynb``), in a ZIP file.

    Every input with a stored result except those skipped (not CPET exports) gets a report,
    named ``<number>-<file name>.html``; they run one after another in one kernel. A test
    whose report fails gets its partial report in the ZIP all the same, and the others go
    on.

    Returns
    -------
    pathlib.Path
        The ZIP written.

    Raises
    ------
    ReportFailed
        After the ZIP is written, when some tests' reports failed (naming them).
    """
    import nbformat

    path = Path(path).absolute()
    store = Path(store).absolute()
    files = open_store(store).files(job_id)
    tests = files[files["state"].isin(["done", "reused"]) & (files["status"] != "skipped")]
    work = path.with_name(f"{path.stem}-notebooks")  # the notebooks, while they run
    work.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    kwargs = {} if timeout_s is None else {"timeout_s": timeout_s}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive, \
            SharedKernel(work, **kwargs) as kernel:
        for idx, name in zip(tests["idx"], tests["name"], strict=True):
            member = f"{int(idx) + 1:04d}-{_safe(Path(name).name)}"
            notebook_path = work / f"{member}.ipynb"
            parameters = {"store": str(store), "job_id": job_id, "file": int(idx)}
            try:
                executed = kernel.execute(template("test_report.ipynb"), notebook_path,
                                          parameters)
            except ReportFailed as failure:  # its partial report goes in all the same
                failures.append(f"{name} (cell {failure.cell!r}: {failure.error})")
                executed = nbformat.read(failure.notebook, as_version=4)
            else:
                if not keep_notebooks:
                    notebook_path.unlink(missing_ok=True)
            archive.writestr(_member(f"{member}.html"),
                             notebook_html(executed, f"CPET test report: {name}"))
    if not any(work.iterdir()):
        work.rmdir()
    if failures:
        raise ReportFailed(work, "test-report", f"{len(failures)} of {len(tests)} test "
                           "report(s) failed: " + "; ".join(failures))
    return path


def _member(name: str) -> zipfile.ZipInfo:
    """A ZIP member written now, compressed, readable by everyone once extracted."""
    info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _safe(name: str) -> str:
    """A file name that every system and ZIP tool accepts: letters, digits, ``.-_``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:80] or "test"
