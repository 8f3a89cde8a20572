"""The panel's only contact with the plots: what it shows for one test, for the batch, and
the HTML it writes. Everything here is built from a stored job (results row, domain
curves), never from in-memory ``FileResult`` objects.

For now the figures are minimal ones made here and :mod:`cpet_nb.report.plots`'s review
table and batch figure; when the per-test panels and live batch figures of
:mod:`cpet_nb.report.plots` land, only the insides of these functions change.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from bokeh.embed import file_html
from bokeh.layouts import column
from bokeh.models import ColumnDataSource, Div, Label, Range1d, Span
from bokeh.plotting import figure
from bokeh.resources import INLINE
from jupyter_bokeh.widgets import BokehModel

from ..batch import Batch
from ..report.plots import DOMAIN_COLOURS, review_table

#: How each threshold is drawn: the model's solid, the consensus of all methods dotted.
VT_MARKS = (("vt1", "VT1 model", "solid"), ("vt2", "VT2 model", "solid"),
            ("vt1_consensus", "VT1 consensus", "dotted"),
            ("vt2_consensus", "VT2 consensus", "dotted"))


def test_plots(batch: Batch, file: str) -> BokehModel:
    """The plots of one stored test, as a widget (its findings when it has no curves)."""
    return BokehModel(test_layout(batch, file))


def test_layout(batch: Batch, file: str) -> Any:
    """The Bokeh layout of one stored test: domain probabilities with VT1/VT2."""
    table = batch.results()
    row = table.loc[table["file"] == file].iloc[0]
    curves = batch.curves(file)
    if curves is None:
        return Div(text=f"<b>{Path(file).name}</b>: no domain curves (status "
                        f"{row['status']}). {row['findings'] or ''}", width=640)
    return _domain_figure(row, curves.to_frame())


def _domain_figure(row: pd.Series, curves: pd.DataFrame) -> Any:
    fig = figure(title=f"{Path(row['file']).name}: domain probabilities", width=640,
                 height=300, x_axis_label="time (s)", y_axis_label="domain score",
                 tools="pan,box_zoom,wheel_zoom,reset,save,hover",
                 tooltips=[("time", "@time_s{0} s"), ("moderate", "@p_moderate{0.00}"),
                           ("heavy", "@p_heavy{0.00}"), ("severe", "@p_severe{0.00}")])
    source = ColumnDataSource({c: curves[c].to_numpy() for c in curves.columns})
    for domain, colour in DOMAIN_COLOURS.items():
        fig.line("time_s", f"p_{domain}", source=source, color=colour, line_width=2,
                 legend_label=domain)
    for i, (key, label, dash) in enumerate(VT_MARKS):
        time_s, vo2 = row[f"{key}_time_s"], row[f"{key}_vo2_ml_min"]
        if math.isnan(time_s):
            continue
        fig.add_layout(Span(location=time_s, dimension="height", line_dash=dash,
                            line_color="#444"))
        fig.add_layout(Label(x=time_s, y=1.0 - 0.09 * i, x_offset=3, text_font_size="8pt",
                             text=f"{label} {time_s:.0f} s, {vo2:.0f} mL/min"))
    fig.y_range = Range1d(-0.05, 1.08)
    fig.legend.orientation = "horizontal"
    fig.add_layout(fig.legend[0], "below")
    return fig


def batch_plots(table: pd.DataFrame) -> tuple[BokehModel, Callable[[pd.DataFrame], None]]:
    """A live figure of the batch (VO2 at VT1/VT2 against VO2peak) and ``update(new_rows)``,
    which streams newly stored results rows into it."""
    fig, update = _batch_figure(table)
    return BokehModel(fig), update


def _batch_figure(table: pd.DataFrame) -> tuple[Any, Callable[[pd.DataFrame], None]]:
    fig = figure(title="Thresholds against VO2peak (model)", width=520, height=320,
                 x_axis_label="VO2peak (mL/min)", y_axis_label="VO2 at threshold (mL/min)",
                 tools="pan,box_zoom,wheel_zoom,reset,save,hover",
                 tooltips=[("file", "@name"), ("VO2", "@y{0} mL/min")])
    sources = {}
    for label, colour in (("vt1", DOMAIN_COLOURS["heavy"]), ("vt2", DOMAIN_COLOURS["severe"])):
        sources[label] = ColumnDataSource({"x": [], "y": [], "name": []})
        fig.scatter("x", "y", source=sources[label], size=7, alpha=0.7, color=colour,
                    legend_label=label.upper())
    fig.legend.location = "top_left"

    def update(rows: pd.DataFrame) -> None:
        for label, source in sources.items():
            points = rows[["vo2peak_ml_min", f"{label}_vo2_ml_min", "file"]].dropna()
            if len(points):
                source.stream({"x": points["vo2peak_ml_min"].tolist(),
                               "y": points[f"{label}_vo2_ml_min"].tolist(),
                               "name": [Path(f).name for f in points["file"]]})

    update(table)
    return fig, update


def save_test_page(batch: Batch, file: str, path: str | os.PathLike) -> Path:
    """One test's plots as a standalone HTML page (works offline)."""
    path = Path(path)
    path.write_text(file_html(test_layout(batch, file), INLINE, Path(file).name),
                    encoding="utf-8")
    return path


def save_batch_report(batch: Batch, path: str | os.PathLike, n_tests: int = 6) -> Path:
    """The job's report as a standalone HTML page: the tests that need review and why, the
    batch figure and the first tests' plots."""
    table = batch.results()
    analysed = table.loc[table["status"] != "error", "file"].tolist()[:n_tests]
    layout = column(review_table(table), _batch_figure(table)[0],
                    *(test_layout(batch, f) for f in analysed))
    path = Path(path)
    path.write_text(file_html(layout, INLINE, f"cpet_nb job {batch.job_id}"), encoding="utf-8")
    return path
