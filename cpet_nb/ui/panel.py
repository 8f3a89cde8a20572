"""The JupyterLab panel: intake with validation, settings, run with live progress, an
interactive results table, plots of the selected test, exports, the review queue
(:mod:`._review`) and the report.

It is a thin shell over :func:`cpet_nb.submit`, :func:`cpet_nb.resume`, :func:`cpet_nb.jobs`
and :class:`cpet_nb.Batch`, and a renderer of :meth:`cpet_nb.Batch.subscribe`, like the
command line's progress bar (as dask's ``TextProgressBar`` and ``ProgressWidget`` are two
renderers of one stream).

Threads. Batch notices arrive on the batch's thread, previews and submits run in
background threads: none of them touches a widget. They leave what changed in a
:class:`_Pending` box and wake a :class:`_Ticker`, which calls :meth:`Panel.apply_pending`
on the kernel's IO loop at most every :data:`TICK_S` seconds; so the kernel stays free for
cells while a batch runs and widgets change from one thread only. Without a kernel (tests,
scripts) nothing is scheduled: call :meth:`Panel.apply_pending` yourself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from ..batch import Batch, Progress, Upload, preview_inputs, resume, submit
from ..batch.preview import PREVIEW_COLUMNS
from ..batch.store import Store
from ..io import datasets
from ..io.exports import write_table
from ..physiology.consensus import REVIEW_REASONS
from ..result import RESULT_COLUMNS, TEXT_COLUMNS
from ..settings import Settings
from . import _plots
from ._bigupload import BigUpload
from ._review import ReviewQueue
from ._settings import SettingsForm
from ._tables import FrameTable, Rows, column_title
from ._widgets import button as _button
from ._widgets import error_html as _error_html
from ._widgets import heading as _heading
from ._widgets import row as _row

log = logging.getLogger(__name__)

#: Shortest time between two widget updates (s): a few per second; and the longest, when
#: updates are slow (a busy machine: the wait is then twice the last update's duration).
TICK_S, MAX_WAIT_S = 0.25, 0.75
#: Largest selection one FileUpload can send: Jupyter's default websocket message limit.
UPLOAD_LIMIT_MIB = 10
#: Default job store, in the notebook's folder.
DEFAULT_STORE = "cpet_nb-jobs.sqlite"
#: Results columns shown by default (the review flag and its reasons first); the rest on
#: request. Titles say which threshold is the model's and which the consensus.
SHORT_COLUMNS = {
    "flag": "review", "why": "why", "test": "test", "status": "status",
    "vo2peak_ml_min": "VO2peak (mL/min)",
    "vt1_vo2_ml_min": "VT1 model (mL/min)", "vt1_consensus_vo2_ml_min": "VT1 consensus (mL/min)",
    "vt2_vo2_ml_min": "VT2 model (mL/min)", "vt2_consensus_vo2_ml_min": "VT2 consensus (mL/min)",
    "vt1_final_vo2_ml_min": "VT1 final (mL/min)", "vt1_source": "VT1 source",
    "vt2_final_vo2_ml_min": "VT2 final (mL/min)", "vt2_source": "VT2 source",
    "rerpeak": "RERpeak", "hrpeak_bpm": "HRpeak (1/min)", "findings": "findings",
}
#: Columns of the files table.
FILE_COLUMNS = {"input": "input", "status": "status", "format": "format",
                "sampling": "sampling", "duration": "min:s",
                "channels": "channels", "why": "why / findings"}
#: Column widths (px) that differ from the tables' defaults.
FILE_WIDTHS = {"input": 170, "status": 95, "format": 95, "sampling": 115, "duration": 70,
               "channels": 190, "why": 520}
RESULT_WIDTHS = {"flag": 55, "why": 110, "test": 170, "status": 65, "rerpeak": 70,
                 "findings": 520, "file": 300, "vo2peak_ml_min": 120, "hrpeak_bpm": 105,
                 **{f"{vt}_{kind}vo2_ml_min": 150 for vt in ("vt1", "vt2")
                    for kind in ("", "consensus_", "final_")}}
#: Exports: button label -> file name in the job's export folder.
EXPORTS = {"CSV": "results.csv", "Excel": "results.xlsx", "Parquet": "results.parquet",
           "plot pages (ZIP)": "plots.zip"}
_STATE_TEXT = {"pending": "queued", "running": "running…", "cancelled": "cancelled",
               "ok": "✓ ok", "warning": "⚠ warning", "error": "✗ error"}
_INTAKE_TEXT = {"ready": "✓ ready", "skipped": "– skipped", "error": "✗ will not run"}


class Panel:
    """Intake, settings, run, results, plots, review and report of batches in one job
    store.

    Display it (last expression of a cell); :attr:`widget` is its root ``ipywidgets``
    widget. Reopened on a store it lists the store's jobs and shows the newest.

    Parameters
    ----------
    store : str or path-like, optional
        The SQLite job store (default :data:`DEFAULT_STORE` in the current folder).
    client : distributed.Client or str, optional
        Where batches run (default: ``$DASK_SCHEDULER_ADDRESS``, else a local cluster).
    **settings
        Initial values of the settings controls (:class:`cpet_nb.Settings` fields). The
        panel keeps uploads by default (``keep_uploads=True``): a test's breath panels are
        drawn from its file, read again when its row is selected; ``cpet-nb store cleanup``
        removes them with their jobs.
    """

    def __init__(self, store: str | os.PathLike | None = None, client: Any = None,
                 **settings: Any) -> None:
        self.store = Store(store if store is not None else DEFAULT_STORE)
        self.client = client
        settings.setdefault("keep_uploads", True)
        self.form = SettingsForm(Settings.load(**settings))
        self.batch: Batch | None = None
        self.inputs: list[str | os.PathLike | Upload] = []
        self.intake = pd.DataFrame(columns=list(PREVIEW_COLUMNS))
        self._pending = _Pending()
        self._ticker = _Ticker(self.apply_pending)
        self._work = ThreadPoolExecutor(2, thread_name_prefix="cpet_nb-panel")
        self._run_here: dict[str, Batch] = {}  # jobs this panel runs (they have a driver)
        self._stored = Rows(pd.DataFrame(columns=list(RESULT_COLUMNS)))  # the job's results
        self._shown_files: set[str] = set()
        self._failed: list[tuple[str, str]] = []  # (file, findings) of the job's errors
        self._file_rows: dict[str, int] = {}  # job file name -> row in the files table
        self._update_batch_plots: Callable[[pd.DataFrame], None] = lambda rows: None
        self._choosing_job = False
        self._bokeh_loaded = False
        self._build()
        self._list_jobs()
        if self.jobs.options:
            self._open(self.jobs.options[0][1])

    # -- display -------------------------------------------------------------------------

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        if not self._bokeh_loaded:  # BokehJS in the page, once (works offline)
            from bokeh.io import output_notebook
            from bokeh.resources import INLINE

            output_notebook(INLINE, hide_banner=True)
            self._bokeh_loaded = True
        return self.widget._repr_mimebundle_(**kwargs)

    def _build(self) -> None:
        self.title = w.HTML()
        self.jobs = w.Dropdown(description="job", layout=w.Layout(width="34em"))
        self.jobs.observe(self._on_job_chosen, "value")
        self.dashboard = w.HTML()
        header = _row(self.title, self.jobs, self.dashboard)
        self.review = ReviewQueue(on_decision=self._show_decision)
        self.widget = w.VBox([header, self._files_section(), self._run_section(),
                              self._results_section(), self.review.widget,
                              self._report_section()],
                             layout=w.Layout(max_width="1100px"))
        self.title.value = (f"<b>cpet_nb</b> · store <code>{escape(self.store.path.name)}"
                            "</code>")
        for name in ("widget", "upload", "intake_status", "message", "status", "batch_plots",
                     "errors", "selected", "export_status", "report_status"):
            getattr(self, name).add_class(f"cpet-{name.replace('_', '-')}")
        self.files.widget.add_class("cpet-files")
        self.results.widget.add_class("cpet-results")
        self._show_intake_status()

    def _files_section(self) -> w.VBox:
        self.upload = w.FileUpload(description="Upload files / ZIP", multiple=True,
                                   layout=w.Layout(width="auto", flex="0 0 auto"))
        self.upload.observe(self._on_upload, "value")
        self.big_upload = BigUpload()
        self.big_upload.observe(self._on_big_upload, "staged")
        self.path = w.Text(placeholder="folder, file, ZIP or glob on the server, e.g. "
                                       "/data/lab/2026-*/", layout=w.Layout(width="26em"))
        self.add = _button("Add", self._on_add, "Add the path (files are read, not analysed)")
        self.demo = _button("Demo: pyoxynet's 139 tests", self._on_demo,
                            "Add pyoxynet's 139 bundled real tests and run them")
        self.clear = _button("Clear", self._on_clear, "Forget the inputs above")
        self.intake_status = w.HTML()
        self.files = FrameTable(FILE_COLUMNS, {c: "O" for c in FILE_COLUMNS},
                                widths=FILE_WIDTHS, max_height=240)
        return w.VBox([
            _heading("1 Files"),
            _row(self.upload, self.big_upload, w.HTML("&nbsp;or path&nbsp;"), self.path,
                 self.add, self.demo, self.clear),
            w.HTML(f"<small><i>Upload files / ZIP</i> sends one selection in one message of "
                   f"at most {UPLOAD_LIMIT_MIB} MiB; a larger one never arrives. <i>Upload "
                   "large selection</i> streams any size to the Jupyter server (with "
                   "progress) where its server extension is enabled. Or put the files on "
                   "the server and give their folder, ZIP or glob in the path "
                   "field.</small>"),
            self.intake_status, self.files.widget, self.form.widget])

    def _run_section(self) -> w.VBox:
        self.run_button = _button("Run", self._on_run, "Analyse every input listed above",
                                  style="primary")
        self.cancel_button = _button("Cancel", self._on_cancel, "Stop after the running "
                                     "files; stored results stay", disabled=True)
        self.resume_button = _button("Resume", self._on_resume, "Run what this job has not "
                                     "finished", disabled=True)
        self.progress = w.IntProgress(min=0, max=1, value=0, layout=w.Layout(width="24em"))
        self.status = w.HTML()
        self.message = w.HTML()
        self.batch_plots = w.Box()
        return w.VBox([_heading("2 Run"),
                      _row(self.run_button, self.cancel_button, self.resume_button,
                           self.progress),
                      self.status, self.message, self.batch_plots])

    def _results_section(self) -> w.VBox:
        self.status_filter = w.Dropdown(options=["all", "ok", "warning", "error"],
                                        description="status", layout=w.Layout(width="14em"))
        self.review_filter = w.Dropdown(options=["all", "needs review", "no flag"],
                                        description="review", layout=w.Layout(width="16em"))
        self.text_filter = w.Text(placeholder="test name or finding", description="contains",
                                  layout=w.Layout(width="20em"))
        self.column_set = w.ToggleButtons(options=["short", "all"], description="columns",
                                          style={"button_width": "5em"})
        for control in (self.status_filter, self.review_filter, self.text_filter):
            control.observe(lambda _: self._refilter(), "value")
        self.column_set.observe(self._on_columns, "value")
        self.export_buttons = [_button(label, self._on_export, f"Write {name} beside the "
                                       "store") for label, name in EXPORTS.items()]
        self.export_status = w.HTML()
        titles = SHORT_COLUMNS | {c: column_title(c) for c in RESULT_COLUMNS
                                  if c not in SHORT_COLUMNS}
        self.results = FrameTable(titles, {c: _kind(c) for c in titles},
                                  widths=RESULT_WIDTHS, max_height=320)
        self.results.show_columns(list(SHORT_COLUMNS))
        self.results.source.selected.on_change("indices", self._on_select)
        self.errors = w.HTML()
        self.selected = w.VBox()
        return w.VBox([
            _heading("3 Results"),
            _row(self.status_filter, self.review_filter, self.text_filter, self.column_set),
            self.results.widget,
            _row(w.HTML("export:&nbsp;"), *self.export_buttons, self.export_status),
            self.errors,
            w.HTML("<small>Select a row to see its plots. VT1/VT2 <i>model</i>: the Oxynet "
                   "model's thresholds; <i>consensus</i>: the weighted median of the model and "
                   "the classical methods.</small>"),
            self.selected])

    def _report_section(self) -> w.VBox:
        self.report_per_test = w.Dropdown(
            options=[("no per-test pages", "none"), ("a section per test", "sections"),
                     ("a ZIP of per-test reports", "zip")], value="none",
            description="per test", layout=w.Layout(width="20em"))
        self.report_button = _button("Make report", self._on_report,
                                     "The batch report of this job (cpet_nb.report."
                                     "batch_report): a standalone HTML page that works offline")
        self.report_status = w.HTML()
        return w.VBox([_heading("5 Report"),
                       _row(self.report_per_test, self.report_button, self.report_status)])

    # -- the update path (kernel IO loop) ------------------------------------------------

    def apply_pending(self) -> None:
        """Apply what background threads left (notices, previews, started jobs, messages)
        to the widgets. Runs on the kernel's IO loop; callable directly without a kernel."""
        items = self._pending.take()
        if not items:
            return
        try:
            self._apply(items)
        except Exception as exc:  # noqa: BLE001 - shown, never lost in a loop's log
            log.exception("panel update failed")
            self._say(f"The panel could not update: {type(exc).__name__}: {exc}", "error")

    def _apply(self, items: dict[str, Any]) -> None:
        if "intake_progress" in items:
            done, total = items["intake_progress"]
            self.intake_status.value = f"reading files: {done}/{total}…"
        if "intake" in items:
            self._add_intake(items["intake"])
        if "started" in items:  # a job this panel runs (submitted or resumed here)
            batch = items["started"]
            self._run_here[batch.job_id] = batch
            self._attach(batch)
        if items.get("enable_run"):
            self.run_button.disabled = False
        if "dashboard" in items:
            link = items["dashboard"]
            self.dashboard.value = (f'<a href="{escape(link)}" target="_blank">dask dashboard '
                                    "↗</a>" if link else "")
        progress = items.get("progress")
        if progress is not None and self.batch is not None \
                and progress.job_id == self.batch.job_id:  # not a job left for another
            self._apply_progress(progress, items.get("new_files", []))
        for key, target in (("export", self.export_status), ("report", self.report_status)):
            if key in items:
                target.value = items[key]
        if "message" in items:
            self._say(*items["message"])

    def _notify(self, **items: Any) -> None:
        """From any thread: leave ``items`` for the next update."""
        self._pending.put(**items)
        self._ticker.wake()

    def _in_background(self, job: Callable[[], Any], what: str) -> None:
        """Run ``job`` in a worker thread; an exception becomes an error message."""
        def run() -> None:
            try:
                job()
            except Exception as exc:  # noqa: BLE001 - shown to the user
                log.debug("%s failed", what, exc_info=True)
                self._notify(message=(f"{what} failed: {exc}", "error"))

        self._work.submit(run)

    def _say(self, text: str, kind: str = "info") -> None:
        colour = {"error": "#b00020", "info": "#333"}[kind]
        self.message.value = f'<span style="color:{colour}">{escape(text)}</span>' if text else ""

    # -- 1 intake ------------------------------------------------------------------------

    def add_inputs(self, inputs: Iterable[str | os.PathLike | Upload]) -> None:
        """Add files, folders, globs, ZIP archives or uploads; they are read (not analysed)
        in the background and listed in the files table."""
        new = list(inputs)
        if not new:
            return
        self.inputs += new
        self.intake_status.value = f"reading {len(new)} input(s)…"
        settings = self._settings_or_defaults()

        def read() -> None:
            def progress(done: int, total: int) -> None:
                if done == total or done % 20 == 0:
                    self._notify(intake_progress=(done, total))

            self._notify(intake=preview_inputs(new, settings, progress=progress))

        self._in_background(read, "reading the inputs")

    def _settings_or_defaults(self) -> Settings:
        try:
            return self.form.settings()
        except ValueError:
            return Settings()

    def _on_upload(self, change: dict[str, Any]) -> None:
        if not change["new"]:
            return
        uploads = [Upload.from_widget(item) for item in change["new"]]
        self.upload.value = ()  # free the kernel's copy of the message
        self.add_inputs(uploads)

    def _on_big_upload(self, change: dict[str, Any]) -> None:
        """The browser staged a selection on the server: read its folder as a path."""
        if change["new"]:
            self.add_inputs([change["new"]["folder"]])

    def _on_add(self, _: Any) -> None:
        text = self.path.value.strip()
        if text:
            self.path.value = ""
            self.add_inputs([text])

    def _on_demo(self, _: Any) -> None:
        self.add_inputs(datasets.pyoxynet_tests())
        self.run()

    def _on_clear(self, _: Any) -> None:
        self.inputs = []
        self.intake = self.intake.iloc[0:0]
        if self.batch is None:
            self.files.set_rows(self._files_frame())
        self._show_intake_status()

    def _add_intake(self, rows: pd.DataFrame) -> None:
        self.intake = pd.concat([self.intake, rows], ignore_index=True) if len(
            self.intake) else rows
        self.files.set_rows(self._files_frame())
        self._show_intake_status()

    def _show_intake_status(self) -> None:
        states = self.intake["state"].value_counts()
        if self.intake.empty:
            self.intake_status.value = "<i>No inputs yet: upload files or give a path.</i>"
            return
        parts = [f"{int(states[s])} {s}" for s in ("ready", "skipped", "error") if s in states]
        self.intake_status.value = (f"{len(self.intake)} input(s): " + ", ".join(parts)
                                    + ". Skipped and failing inputs are listed with why.")

    # -- 2 run ---------------------------------------------------------------------------

    def run(self) -> None:
        """Start a batch of the inputs with the settings shown (in the background)."""
        if not self.inputs:
            self._say("Nothing to run: upload files or give a path first.", "error")
            return
        try:
            settings = self.form.settings()
        except ValueError as exc:
            self._say(f"Settings: {exc}", "error")
            return
        inputs, participants = list(self.inputs), self.form.participants_path()
        self.run_button.disabled = True
        self._say("Starting the batch (the first start of a cluster takes a few seconds)…")

        def start() -> None:
            try:
                batch = submit(inputs, self.store, client=self.client,
                               participants=participants, **self.form.values())
            except (ValueError, OSError) as exc:
                self._notify(message=(f"Could not start: {exc}", "error"), enable_run=True)
                return
            self._started(batch, settings.workers)

        self._in_background(start, "starting the batch")

    def _started(self, batch: Batch, workers: int) -> None:
        """(batch thread) A job began: subscribe, then hand it to the update path."""
        batch.subscribe(lambda progress: self._notify(progress=progress,
                                                      new_files=progress.new_files))
        self._notify(started=batch, dashboard=_dashboard_link(self.client, workers))

    def _on_run(self, _: Any) -> None:
        self.run()

    def _on_cancel(self, _: Any) -> None:
        batch = self.batch
        if batch is None or batch.job_id not in self._run_here:
            return
        self.cancel_button.disabled = True
        self._say("Cancelling: the running files finish, nothing new starts…")
        self._in_background(lambda: self._notify(progress=batch.cancel()), "cancelling")

    def _on_resume(self, _: Any) -> None:
        if self.batch is None:
            return
        job_id, workers = self.batch.job_id, self.batch.settings.workers
        self.resume_button.disabled = True
        self._say(f"Resuming job {job_id}…")
        self._in_background(lambda: self._started(
            resume(job_id, self.store, client=self.client), workers), "resuming")

    def _apply_progress(self, progress: Progress, new_files: Sequence[str]) -> None:
        counts = progress.counts
        done = counts["done"] + counts["reused"]
        with self.progress.hold_sync():
            self.progress.max = max(progress.n_files, 1)
            self.progress.value = done
            self.progress.bar_style = {"done": "success", "failed": "danger"}.get(
                progress.state, "")
        self.status.value = _progress_text(progress)
        running = progress.state == "running" and self.batch.job_id in self._run_here
        self.cancel_button.disabled = not running
        self.resume_button.disabled = progress.state not in ("cancelled", "interrupted",
                                                             "failed")
        self.run_button.disabled = running
        if progress.state != "running":
            self._say(f"Job {progress.job_id} {progress.state}.")
            self._list_jobs()  # its new state
        self._add_results(new_files)
        self._refresh_file_states()
        if progress.state != "running" or self.review.batch is not self.batch:
            self.review.show(self.batch, self._results)  # at its end: every test, in order

    def _add_results(self, names: Sequence[str]) -> None:
        """Put newly stored results into the table, the batch plots and the error list."""
        names = [n for n in dict.fromkeys(names) if n not in self._shown_files]
        if not names:
            return
        fresh = self.batch.results(files=names)  # only the new rows, not the whole table
        if fresh.empty:
            return
        self._stored.append(fresh)
        self._shown_files.update(fresh["file"])
        self.results.append(_display(fresh))
        self._update_batch_plots(fresh)
        if self._filtering():
            self._refilter()
        self._add_errors(fresh)

    # -- jobs ----------------------------------------------------------------------------

    def _list_jobs(self) -> None:
        table = self.store.jobs()
        options = [(_job_label(row), row.job_id) for row in table.itertuples()]
        self._choosing_job = True
        try:
            self.jobs.options = options
            self.jobs.disabled = not options
            if self.batch is not None:
                self.jobs.value = self.batch.job_id
        finally:
            self._choosing_job = False

    def _on_job_chosen(self, change: dict[str, Any]) -> None:
        if not self._choosing_job and change["new"]:
            self._open(change["new"])

    def _open(self, job_id: str) -> None:
        """Show a job of the store: the one this panel runs, or a past one."""
        self._attach(self._run_here.get(job_id) or Batch(self.store, job_id))

    def _attach(self, batch: Batch) -> None:
        """Show ``batch``: its files, results so far, plots and progress."""
        self.batch = batch
        self._stored = Rows(batch.results())
        self._shown_files = set(self._results["file"])
        self._failed = []
        self.results.set_rows(_display(self._results))
        figure, self._update_batch_plots = _plots.batch_plots(self._results)
        self.batch_plots.children = [figure]
        self.selected.children = []
        self.files.set_rows(self._files_frame())
        self._refilter()
        self._add_errors(self._results)
        self._list_jobs()
        self.export_status.value = self.report_status.value = ""
        self._apply_progress(batch.status(), [])

    def _files_frame(self) -> pd.DataFrame:
        """The files table: the job's files (with their state), then the inputs that are
        not in it (skipped, refused); before a job, the inputs as read."""
        intake = _intake_frame(self.intake)
        self._file_rows = {}
        if self.batch is None:
            return intake
        files = self.batch.files()
        read = {row["input"]: row for row in intake.to_dict("records")}
        stored = {row["file"]: row for row in self._results.to_dict("records")}
        rows = []
        for i, entry in enumerate(files.itertuples()):
            self._file_rows[entry.name] = i
            row = read.get(entry.name) or _row_from_result(entry.name, stored.get(entry.name))
            rows.append(row | {"status": _file_state(entry.state, entry.status)})
        job_inputs = set(self._file_rows)
        extra = intake[~intake["input"].isin(job_inputs) & (intake["status"] != "✓ ready")]
        return pd.concat([pd.DataFrame(rows, columns=list(FILE_COLUMNS)), extra],
                         ignore_index=True)

    def _refresh_file_states(self) -> None:
        """Patch the status of the job's files that changed (queued, running, done…)."""
        if self.batch is None or not self._file_rows:
            return
        files = self.batch.files()
        current = self.files.frame["status"]
        changed = {}
        for entry in files.itertuples():
            position = self._file_rows.get(entry.name)
            text = _file_state(entry.state, entry.status)
            if position is not None and current.iloc[position] != text:
                changed[position] = text
        self.files.patch("status", changed)

    # -- 3 results -----------------------------------------------------------------------

    @property
    def _results(self) -> pd.DataFrame:
        """The shown job's results so far, in the order of the table's rows."""
        return self._stored.frame

    def _filtering(self) -> bool:
        return (self.status_filter.value != "all" or self.review_filter.value != "all"
                or bool(self.text_filter.value.strip()))

    def _refilter(self) -> None:
        table = self._results
        keep = pd.Series(True, index=table.index)
        if self.status_filter.value != "all":
            keep &= table["status"] == self.status_filter.value
        if self.review_filter.value != "all":
            flagged = table["review"].fillna(False).astype(bool)
            keep &= flagged if self.review_filter.value == "needs review" else ~flagged
        text = self.text_filter.value.strip().lower()
        if text:
            keep &= (table["file"].str.lower().str.contains(text, regex=False)
                     | table["findings"].fillna("").str.lower().str.contains(text, regex=False))
        self.results.show_only([i for i, k in enumerate(keep) if k])

    def _on_columns(self, change: dict[str, Any]) -> None:
        names = list(SHORT_COLUMNS) if change["new"] == "short" else list(self.results.titles)
        self.results.show_columns(names)

    def _on_select(self, attr: str, old: list[int], new: list[int]) -> None:
        if not new or self.batch is None:
            self.selected.children = []
            return
        file = self._results.iloc[new[0]]["file"]
        self.select(file)

    def select(self, file: str) -> None:
        """Show one test's plots and findings below the table."""
        row = self._results.loc[self._results["file"] == file].iloc[0]
        heading = w.HTML(f"<b>selected: {escape(Path(file).name)}</b> · status "
                         f"{escape(row['status'])}" + (f"<br><small>{escape(row['findings'])}"
                                                       "</small>" if row["findings"] else ""))
        self.selected.children = [heading, _plots.test_plots(self.batch, file)]

    def _show_decision(self, fresh: pd.DataFrame) -> None:
        """A reviewer's decision: the test's results row (``fresh``, read again) replaces
        its row, and the table shows its final values."""
        row = fresh.iloc[0]
        position = int((self._results["file"] == row["file"]).to_numpy().argmax())
        for column in fresh.columns:
            self._results.at[position, column] = row[column]
        self.results.patch_row(position, _display(fresh).iloc[0])

    def _add_errors(self, rows: pd.DataFrame) -> None:
        """List the files among ``rows`` that could not be analysed, with their findings."""
        failed = rows[rows["status"] == "error"]
        self._failed += list(zip(failed["file"], failed["findings"].fillna(""), strict=True))
        if not self._failed:
            self.errors.value = ""
            return
        if failed.empty:
            return
        items = "".join(f"<li><code>{escape(f)}</code>: {escape(_shorten(why))}</li>"
                        for f, why in self._failed[:20])
        more = f"<li>… and {len(self._failed) - 20} more (filter status: error)</li>" if len(
            self._failed) > 20 else ""
        self.errors.value = (f'<div style="color:#b00020"><b>{len(self._failed)} file(s) could '
                             f"not be analysed:</b><ul>{items}{more}</ul></div>")

    def export_folder(self) -> Path:
        """Where the current job's exports and report are written (beside the store)."""
        if self.batch is None:
            raise RuntimeError("no job is shown")
        return self.store.path.with_name(self.store.path.name + ".exports") / self.batch.job_id

    def _on_export(self, button: w.Button) -> None:
        if self.batch is None:
            return
        batch, name = self.batch, EXPORTS[button.description]
        target = self.export_folder() / name
        self.export_status.value = f"writing {name}…"

        def write() -> None:
            try:
                if name.endswith(".zip"):
                    _write_plot_pages(batch, target)
                else:
                    write_table(batch.results(), target)
            except (ValueError, OSError) as exc:
                self._notify(export=_error_html(f"{name}: {exc}"))
                return
            self._notify(export=_file_html(target))

        self._in_background(write, "the export")

    def _on_report(self, _: Any) -> None:
        if self.batch is None:
            return
        from ..report import ReportFailed, batch_report

        job_id, per_test = self.batch.job_id, self.report_per_test.value
        target = self.export_folder() / "report.html"
        self.report_status.value = "writing the report (a notebook runs; a minute or more)…"

        def write() -> None:
            try:
                page = batch_report(job_id, self.store.path, out=target, per_test=per_test)
            except ReportFailed as exc:
                self._notify(report=_error_html(str(exc)))
                return
            self._notify(report=_file_html(page))

        self._in_background(write, "the report")


# -- helpers -------------------------------------------------------------------------------


class _Pending:
    """What background threads left for the next widget update (the latest of each kind;
    new file names and intake rows accumulate)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, Any] = {}

    def put(self, **items: Any) -> None:
        with self._lock:
            for key, value in items.items():
                if key == "new_files":
                    self._items[key] = [*self._items.get(key, []), *value]
                elif key == "intake" and key in self._items:
                    self._items[key] = pd.concat([self._items[key], value], ignore_index=True)
                else:
                    self._items[key] = value

    def take(self) -> dict[str, Any]:
        with self._lock:
            items, self._items = self._items, {}
        return items


class _Ticker:
    """Calls ``tick`` on the kernel's IO loop (or the event loop running where the panel
    was made) after a wake-up; wake-ups meanwhile are merged. The wait is :data:`TICK_S`,
    or twice the last tick's duration when that is longer (a busy machine), up to
    :data:`MAX_WAIT_S`: updates take at most about a third of the kernel's time, and a file
    is in the table within a second of being stored. Without a loop it does nothing."""

    def __init__(self, tick: Callable[[], None]) -> None:
        self._tick = tick
        self._loop = _event_loop()
        self._lock = threading.Lock()
        self._due = False
        self._last_s = 0.0

    def wake(self) -> None:
        """From any thread: make sure a tick is coming."""
        if self._loop is None:
            return
        with self._lock:
            if self._due:
                return
            self._due = True
        wait_s = min(max(TICK_S, 2 * self._last_s), MAX_WAIT_S)
        self._loop.add_callback(self._loop.call_later, wait_s, self._run)

    def _run(self) -> None:
        with self._lock:
            self._due = False
        began = time.perf_counter()
        self._tick()
        self._last_s = time.perf_counter() - began


def _event_loop() -> Any:
    """The kernel's IO loop (tornado), else the loop running in this thread, else None."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - ipywidgets needs IPython
        get_ipython = None
    kernel = getattr(get_ipython() if get_ipython else None, "kernel", None)
    if getattr(kernel, "io_loop", None) is not None:
        return kernel.io_loop
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return None
    from tornado.ioloop import IOLoop

    return IOLoop.current()


def _kind(column: str) -> str:
    """``f`` for a numeric results column, ``O`` for a shown-as-text one."""
    if column in SHORT_COLUMNS and column not in RESULT_COLUMNS:
        return "O"
    from ..result import BOOL_COLUMNS

    return "O" if column in TEXT_COLUMNS or column in BOOL_COLUMNS else "f"


def _display(results: pd.DataFrame) -> pd.DataFrame:
    """Results rows as the table shows them: a review mark and its reasons first, the test
    by its file name, true/false flags as yes/no."""
    from ..result import BOOL_COLUMNS

    shown = results.copy()
    flags = shown["review"].fillna(False).astype(bool)
    shown["flag"] = ["⚑" if f else "" for f in flags]
    reasons = shown[list(REVIEW_REASONS)].fillna(False).astype(bool).to_numpy()
    words = [r.removeprefix("review_").replace("_", " ") for r in REVIEW_REASONS]
    shown["why"] = [", ".join(w for w, flagged in zip(words, row, strict=True) if flagged)
                    for row in reasons]
    shown["test"] = [Path(f).name for f in shown["file"]]
    for column in BOOL_COLUMNS:
        shown[column] = shown[column].map(lambda v: "" if v is pd.NA else ("yes" if v else
                                                                            "no"))
    return shown


def _intake_frame(intake: pd.DataFrame) -> pd.DataFrame:
    """Preview rows as the files table shows them."""
    rows = [{"input": r.input, "status": _INTAKE_TEXT[r.state]
             if r.state != "ready" or not _warnings(r.findings) else "⚠ ready",
             "format": r.format or "–", "sampling": r.sampling or "–",
             "duration": _minutes(r.duration_s), "channels": " ".join(r.channels) or "–",
             "why": r.reason or "; ".join(_warnings(r.findings))}
            for r in intake.itertuples()]
    return pd.DataFrame(rows, columns=list(FILE_COLUMNS))


def _row_from_result(name: str, result: dict[str, Any] | None) -> dict[str, Any]:
    """A files-table row of a job file from its stored result (no preview at hand)."""
    if result is None:
        return {"input": name, "format": "–", "sampling": "–", "duration": "–",
                "channels": "–", "why": ""}
    return {"input": name, "format": result["format"] or "–",
            "sampling": result["sampling"] or "–", "duration": _minutes(result["duration_s"]),
            "channels": "–", "why": result["findings"] or ""}


def _warnings(findings: list[dict[str, Any]]) -> list[str]:
    return [f["message"] for f in findings if f["severity"] != "info"]


def _shorten(text: str | None, limit: int = 240) -> str:
    """At most ``limit`` characters of ``text`` (the whole finding is in the table)."""
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _minutes(seconds: float) -> str:
    if seconds is None or math.isnan(seconds):
        return "–"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _file_state(state: str, status: str | None) -> str:
    if state in ("done", "reused") and status:
        return _STATE_TEXT[status] + (" (reused)" if state == "reused" else "")
    return _STATE_TEXT.get(state, state)


def _progress_text(progress: Progress) -> str:
    counts = progress.counts
    done = counts["done"] + counts["reused"]
    parts = [f"<b>{done}/{progress.n_files}</b> done", f"{counts['running']} running",
             f"{counts['pending']} queued", f"{counts['error']} failed"]
    if counts["cancelled"]:
        parts.append(f"{counts['cancelled']} cancelled")
    if not math.isnan(progress.files_per_s):
        parts.append(f"{progress.files_per_s:.1f} files/s")
    if progress.state == "running" and not math.isnan(progress.eta_s):
        parts.append(f"about {progress.eta_s:.0f} s left")
    return " · ".join(parts) + f" · job <b>{progress.state}</b>"


def _job_label(job: Any) -> str:
    created = datetime.fromisoformat(job.created_at).strftime("%Y-%m-%d %H:%M UTC")
    return f"{created} · {job.n_files} files · {job.status} ({job.job_id[-6:]})"


def _dashboard_link(client: Any, workers: int) -> str:
    """The dask dashboard's address, empty when the cluster has none."""
    from ..batch.engine import dashboard_link, get_client

    return dashboard_link(get_client(client, workers))


def _write_plot_pages(batch: Batch, target: Path) -> None:
    """A ZIP of one standalone HTML page per analysed test of ``batch``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    table = batch.results()
    with tempfile.TemporaryDirectory() as scratch, \
            zipfile.ZipFile(target.with_suffix(".zip.tmp"), "w", zipfile.ZIP_DEFLATED) as zf:
        for i, file in enumerate(table["file"]):
            page = _plots.save_test_page(batch, file, Path(scratch) / "page.html")
            zf.write(page, f"{i:04d}-{Path(file).name}.html")
        zf.writestr("index.json", json.dumps(list(table["file"]), indent=1))
    os.replace(target.with_suffix(".zip.tmp"), target)


def _file_html(path: Path) -> str:
    size = path.stat().st_size / 1e6
    return f"written: <code>{escape(str(path))}</code> ({size:.1f} MB)"
