"""The panel's review queue: the tests a reviewer should look at, flagged ones first, and
for the selected test the figures and controls to decide its VT1 and VT2.

The queue is :func:`cpet_nb.batch.review.review_queue` (flagged tests first, then by
uncertainty, the larger of VT1's and VT2's). The figures are
:func:`cpet_nb.report.plots.review_figures`. A decision is stored with
:meth:`cpet_nb.Batch.override`, the code of the Python API and the command line: a set time
snaps to the 1 s grid and VO2, HR and load there are recomputed as for the automatic
thresholds; the machine's values are kept.

A click on a time plot reaches the kernel as a Bokeh ``Tap`` event: jupyter_bokeh's
``BokehModel`` forwards the browser's Bokeh events (``MessageSent`` ``bokeh_event``) to the
document's Python callbacks, as a Bokeh server does. The picked time is also a number field,
so a time can be typed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd
from bokeh.events import Tap
from jupyter_bokeh.widgets import BokehModel

from ..batch import Batch
from ..batch.review import (
    ACCEPT,
    MODEL,
    THRESHOLDS,
    OverrideRefused,
    default_reviewer,
    method_columns,
    review_queue,
    seconds_from_text,
)
from ..grid import snap_to_grid
from ..report.plots import TestData, review_figures
from ..settings import Settings
from ._tables import FrameTable
from ._widgets import button, error_html, heading, row

#: Columns of the queue table.
QUEUE_COLUMNS = {
    "flag": "review", "test": "test", "why": "why", "uncertainty_ml_min": "uncertainty (mL/min)",
    **{f"{vt}_{column}": f"{vt.upper()} {title}" for vt in THRESHOLDS
       for column, title in (("final_time_s", "(s)"), ("final_vo2_ml_min", "(mL/min)"),
                             ("source", "source"))},
}
QUEUE_KINDS = {column: "f" if column.endswith(("_s", "_ml_min")) else "O"
               for column in QUEUE_COLUMNS}
QUEUE_WIDTHS = {"flag": 55, "test": 200, "why": 220, "uncertainty_ml_min": 140,
                "vt1_source": 100, "vt2_source": 100}


def panel_reviewer() -> str:
    """Who reviews in this notebook (:func:`cpet_nb.batch.review.default_reviewer`: the
    JupyterHub user, else the operating-system user); empty when neither is known (the
    reviewer must then type a name)."""
    try:
        return default_reviewer()
    except ValueError:
        return ""


def estimates(row: Mapping[str, Any], threshold: str, settings: Settings
              ) -> list[tuple[str, str]]:
    """The estimates of ``threshold`` one can pick for a test: (label, method) for each
    method with an estimate, e.g. ``("vslope: 402 s, 1,310 mL/min", "vslope")``.

    The model that casts the consensus vote is listed once, as :data:`MODEL`.
    """
    columns = method_columns(threshold, settings)
    out = []
    for name, (time_column, vo2_column) in columns.items():
        if name != MODEL and columns[name] == columns[MODEL]:
            continue
        time_s, vo2 = _number(row.get(time_column)), _number(row.get(vo2_column))
        if math.isfinite(time_s):
            out.append((f"{name}: {time_s:,.0f} s, {_ml_min(vo2)}", name))
    return out


class ReviewQueue:
    """The review queue of one job, and the decision controls of the selected test.

    Parameters
    ----------
    on_decision : callable, optional
        Called with the test's results rows (read again from the store) after each stored
        decision, e.g. to show the final values in another table.
    """

    def __init__(self, on_decision: Callable[[pd.DataFrame], None] = lambda rows: None
                 ) -> None:
        self.batch: Batch | None = None
        self.file: str | None = None
        self.figures = None
        self._on_decision = on_decision
        self._queue = pd.DataFrame(columns=["file"])
        self._test: TestData | None = None
        self.table = FrameTable(QUEUE_COLUMNS, QUEUE_KINDS, widths=QUEUE_WIDTHS,
                                max_height=260)
        self.table.source.selected.on_change("indices", self._on_select)
        self.table.widget.add_class("cpet-review-queue")
        self.count = w.HTML()
        self.refresh = button("Update the queue", self._on_refresh, "Order the queue again, "
                              "with the results stored since it was made")
        self.heading = w.HTML()
        self.threshold = w.ToggleButtons(options=[(vt.upper(), vt) for vt in THRESHOLDS],
                                         description="decide", style={"button_width": "5em"})
        self.threshold.observe(lambda _: self._show_choices(), "value")
        self.accept = button("Accept the consensus", self._on_accept,
                              "Keep the consensus, as a reviewer's decision", style="success")
        self.method = w.Dropdown(description="or pick", layout=w.Layout(width="26em"))
        self.use = button("Use this estimate", self._on_use, "Take this method's time and "
                           "VO2 (HR and load recomputed at its time)")
        self.time_s = w.Text(description="or time (s)", placeholder="click a time plot",
                             layout=w.Layout(width="16em"))
        self.set_time = button("Set this time", self._on_set_time, "Snapped to the 1 s grid; "
                                "VO2, HR and load recomputed there")
        self.note = w.Text(description="note", placeholder="optional: why",
                           layout=w.Layout(width="34em"))
        self.reviewer = w.Text(description="reviewer", value=panel_reviewer(),
                               layout=w.Layout(width="20em"))
        self.status = w.HTML()
        self.plots = w.Box()
        for name in ("heading", "status", "plots"):
            getattr(self, name).add_class(f"cpet-review-{name}")
        self.detail = w.VBox([
            self.heading, self.threshold, row(self.accept, self.method, self.use),
            row(self.time_s, self.set_time, w.HTML("&nbsp;<small>click a time plot below to "
                                                   "pick a time, or type it</small>")),
            row(self.note, self.reviewer), self.status, self.plots],
            layout=w.Layout(display="none"))
        self.widget = w.VBox([
            heading("4 Review"),
            row(self.count, self.refresh),
            w.HTML("<small>Flagged tests first, by uncertainty (the larger of VT1's and "
                   "VT2's), then the others by uncertainty. Select a test to decide its VT1 "
                   "and VT2; the machine's values are kept beside your decision.</small>"),
            self.table.widget, self.detail])
        self.widget.add_class("cpet-review")

    # -- the queue -------------------------------------------------------------------------

    def show(self, batch: Batch, results: pd.DataFrame) -> None:
        """Show the queue of ``batch`` from its results table (``results``, as stored)."""
        self.batch = batch
        self._queue = review_queue(results)
        self.table.set_rows(_queue_rows(self._queue))
        flagged = int(self._queue["review"].fillna(False).astype(bool).sum())
        self.count.value = (f"<b>{flagged}</b> of {len(self._queue)} analysed tests flagged "
                            "for review")
        self._unselect()

    def _on_refresh(self, _: Any) -> None:
        if self.batch is not None:
            self.show(self.batch, self.batch.results())

    def _on_select(self, attr: str, old: list[int], new: list[int]) -> None:
        if new and self.batch is not None:
            self.select(self._queue.iloc[new[0]]["file"])
        else:
            self._unselect()

    def _unselect(self) -> None:
        self.file = self._test = self.figures = None
        self.plots.children = []
        self.status.value = ""
        self.detail.layout.display = "none"

    def select(self, file: str) -> None:
        """Show one test of the queue: its figures and the decision controls."""
        self.file = file
        self.status.value = ""
        self._test = TestData.from_store(self.batch.store, self.batch.job_id, file)
        self.figures = review_figures(self._test)
        for figure in self.figures.time_figures:
            figure.on_event(Tap, self._on_tap)
        self.plots.children = [BokehModel(self.figures.layout)]
        self.detail.layout.display = "flex"
        self._show_choices()

    def _show_choices(self) -> None:
        """The controls for the chosen threshold of the selected test."""
        if self._test is None:
            return
        row, vt = self._test.row, self.threshold.value
        consensus = _number(row.get(f"{vt}_consensus_time_s"))
        self.accept.disabled = not math.isfinite(consensus)
        self.accept.description = (
            f"Accept the consensus ({consensus:,.0f} s, "
            f"{_ml_min(_number(row.get(f'{vt}_consensus_vo2_ml_min')))})"
            if math.isfinite(consensus) else "no consensus to accept")
        options = estimates(row, vt, self.batch.settings)
        self.method.options = options
        self.method.index = 0 if options else None  # ipywidgets 8 leaves a new list unchosen
        self.method.disabled = self.use.disabled = not options
        self.time_s.value = _seconds(_number(row.get(f"{vt}_final_time_s")))
        self.figures.show_pick(None)
        self.heading.value = (
            f"<b>{escape(Path(self.file).name)}</b> · now VT1 {_final(row, 'vt1')} · "
            f"VT2 {_final(row, 'vt2')}")

    # -- decisions -------------------------------------------------------------------------

    def _on_tap(self, event: Tap) -> None:
        """A click on a time plot: that time, on the 1 s grid, for the chosen threshold."""
        time_s = event.x
        if time_s is None or not math.isfinite(time_s):
            return
        if self._test is not None and self._test.record is not None:
            snapped = snap_to_grid(time_s, self._test.record.data["t"].to_numpy(dtype=float))
            time_s = time_s if snapped is None else snapped
        self.time_s.value = _seconds(time_s)
        self.figures.show_pick(time_s)
        self.status.value = (f"{self.threshold.value.upper()} at {time_s:,.0f} s picked: "
                             "<i>Set this time</i> stores it.")

    def _on_accept(self, _: Any) -> None:
        self.decide(method=ACCEPT)

    def _on_use(self, _: Any) -> None:
        if self.method.value is not None:
            self.decide(method=self.method.value)

    def _on_set_time(self, _: Any) -> None:
        text = self.time_s.value.strip()
        time_s = seconds_from_text(text)
        if not math.isfinite(time_s):
            self.status.value = error_html(f"{text or 'no time'}: not a time in seconds; "
                                           "click a time plot or type one.")
            return
        self.decide(time_s=time_s)

    def decide(self, *, time_s: float | None = None, method: str | None = None) -> None:
        """Store a decision on the chosen threshold of the selected test (a time, or a
        method's estimate, or :data:`~cpet_nb.batch.review.ACCEPT`) with the note and the
        reviewer, then show the final values in the queue, the figures and ``on_decision``.
        A refused decision stores nothing and says why."""
        if self.file is None:
            return
        vt = self.threshold.value
        request = {f"{vt}_time_s": time_s} if time_s is not None else {f"{vt}_method": method}
        try:
            (override,) = self.batch.override(self.file, **request,
                                              note=self.note.value.strip() or None,
                                              reviewer=self.reviewer.value.strip() or None)
        except OverrideRefused as exc:
            self.status.value = error_html("Not stored: " + "; ".join(
                f"{f.code}: {f.message}" for f in exc.findings))
            return
        except ValueError as exc:  # who reviews is unknown
            self.status.value = error_html(f"Not stored: {exc}")
            return
        fresh = self.batch.results(files=[self.file])
        self._show_final(fresh)
        self._on_decision(fresh)
        self.note.value = ""
        self.select(self.file)  # the figures and controls at the final values
        self.status.value = (
            f"Stored: {vt.upper()} {override.time_s:,.0f} s, {_ml_min(override.vo2_ml_min)} "
            f"({escape(override.source)}) by {escape(override.reviewer)}; before: "
            f"{_time(override.previous_time_s)} ({escape(str(override.previous_source))}).")

    def _show_final(self, fresh: pd.DataFrame) -> None:
        """Put the test's final values and sources into its queue row (it keeps its place)."""
        position = int((self._queue["file"] == self.file).to_numpy().argmax())
        row = review_queue(fresh).iloc[0]
        for column in row.index:
            self._queue.iloc[position, self._queue.columns.get_loc(column)] = row[column]
        self.table.patch_row(position, _queue_rows(self._queue.iloc[[position]]).iloc[0])


def _queue_rows(queue: pd.DataFrame) -> pd.DataFrame:
    """Queue rows as the table shows them: a review mark, the test by its file name, the
    reasons in words."""
    shown = queue.copy()
    shown["flag"] = ["⚑" if f is True else "" for f in shown["review"].astype(object)]
    shown["test"] = [Path(f).name for f in shown["file"]]
    shown["why"] = [reasons.replace("_", " ") for reasons in shown["reasons"]]
    if "uncertainty_ml_min" not in shown:
        shown["uncertainty_ml_min"] = math.nan
    return shown


def _number(value: Any) -> float:
    return math.nan if value is None or pd.isna(value) else float(value)


def _ml_min(vo2: float) -> str:
    return f"{vo2:,.0f} mL/min" if math.isfinite(vo2) else "VO2 unknown"


def _time(time_s: float) -> str:
    return f"{time_s:,.0f} s" if math.isfinite(time_s) else "none"


def _final(row: Mapping[str, Any], vt: str) -> str:
    """``404 s, 1,234 mL/min (expert)``: a threshold's final values and source."""
    time_s = _number(row.get(f"{vt}_final_time_s"))
    if not math.isfinite(time_s):
        return "none"
    return (f"{time_s:,.0f} s, {_ml_min(_number(row.get(f'{vt}_final_vo2_ml_min')))} "
            f"({escape(str(row.get(f'{vt}_source')))})")


def _seconds(time_s: float) -> str:
    """A time as the time field shows it (empty when unknown)."""
    return f"{time_s:g}" if math.isfinite(time_s) else ""
