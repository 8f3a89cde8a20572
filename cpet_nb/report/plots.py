"""Bokeh figures of one test and of a batch, from a stored job or from in-memory results.

Needs the ``plot`` extra (``pip install 'cpet-nb[plot]'``). ``import cpet_nb`` never imports
Bokeh; this module does.

- :class:`~cpet_nb.report.testdata.TestData` is what the per-test figures draw: one row of a
  results table, the test's domain curves and, while its file can still be read, its breath
  data (``TestData.from_store`` for any job in a store, ``TestData.from_result`` for an
  in-memory result).
- :func:`test_figures`: the domain probabilities with VT1 and VT2, then a Wasserman-style grid
  of the panels whose channels the test has (:data:`PANELS`), time axes linked, hover on
  every series.
- :func:`review_figures`: what a reviewer decides from: the domain probabilities and the
  panels the classical methods read, the decision in force marked, a time picked by a click.
- :func:`batch_figures`: VO2peak distribution, VT1 and VT2 as % of VO2peak, findings by code;
  :meth:`BatchFigures.stream` adds results as they arrive.
- :func:`save_html`: a standalone page with Bokeh inlined (works offline), written atomically.

Threshold markers sit exactly at the results table's values and say who placed them: the
Oxynet *model* (``vt1_time_s``), the *consensus* (``vt1_consensus_time_s``) or a classical
method (``vt1_vslope_vo2_ml_min``, ...). Long tests are thinned for display only
(:func:`decimate`, at most :data:`MAX_POINTS_PER_LINE` points per series); every number in
the table comes from the full data.

Every call builds new figures: a Bokeh model belongs to one document, so build the figures
again for each page or notebook cell rather than reusing them.

References
----------
Wasserman K, Hansen JE, Sue DY, Stringer WW, Whipp BJ (2005). Principles of Exercise Testing
and Interpretation, 4th ed. Lippincott Williams & Wilkins (the nine-panel graphical array).
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

try:
    from bokeh.embed import file_html
    from bokeh.layouts import column, gridplot
    from bokeh.models import (
        ColumnDataSource,
        DataRange1d,
        Div,
        FactorRange,
        HoverTool,
        Legend,
        LinearAxis,
        Range1d,
    )
    from bokeh.plotting import figure
    from bokeh.resources import INLINE
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("plots need Bokeh: pip install 'cpet-nb[plot]'") from exc

from ..findings import CODES, Severity
from ..io.exports import atomic_path
from ..physiology.consensus import REVIEW_REASONS
from ..physiology.validate import screen_values
from ..record import CPETRecord
from .testdata import TestData, finding_codes, raised, split_findings

__all__ = ["BatchFigures", "MAX_POINTS_PER_LINE", "PANELS", "REVIEW_PANELS", "ReviewFigures",
           "TestData", "batch_figures", "breath_series", "decimate", "domain_figure",
           "review_figures", "save_html", "summary_html", "test_figures"]

#: Most points drawn per series in one figure; longer series are thinned for display by
#: :func:`decimate` (a 60-minute breath-by-breath test has about 2,000 breaths per channel).
MAX_POINTS_PER_LINE = 2000
#: Width of the VO2peak histogram's bins (mL/min).
VO2PEAK_BIN_ML_MIN = 250.0

DOMAIN_COLOURS = {"moderate": "#2a9d8f", "heavy": "#e9a03b", "severe": "#c8553d"}
#: Colour of each threshold's markers (the domain it opens).
THRESHOLD_COLOURS = {"VT1": DOMAIN_COLOURS["heavy"], "VT2": DOMAIN_COLOURS["severe"]}
#: Line style of a marker by who placed it: solid, long dashes, dots; dash-dots for the
#: decision in force (the final columns, :func:`review_figures`).
MARKER_DASH = {"model": "solid", "consensus": [9, 4], "method": [2, 3],
               "final": "dashdot"}
#: Line width of a marker by who placed it (2 px unless given).
MARKER_WIDTH = {"consensus": 3, "final": 5}
SEVERITY_COLOURS = {"warning": "#e9a03b", "error": "#c8553d"}
PANEL_WIDTH, PANEL_HEIGHT = 360, 300
TOOLS = "pan,box_zoom,wheel_zoom,reset,save"


# -- what is drawn --------------------------------------------------------------------------

@dataclass(frozen=True)
class Series:
    """One plotted quantity of the breath data.

    Attributes
    ----------
    quantity, unit : str
        Axis and legend text, e.g. ``"VO2"`` and ``"mL/min"``.
    colour : str
    """

    quantity: str
    unit: str
    colour: str

    @property
    def label(self) -> str:
        """``"VO2 (mL/min)"``."""
        return f"{self.quantity} ({self.unit})"


#: Breath series by name: canonical channels, and ratios of them (:func:`breath_series`).
SERIES: dict[str, Series] = {
    "VO2": Series("VO2", "mL/min", "#1f6fb4"),
    "VCO2": Series("VCO2", "mL/min", "#7b3f9e"),
    "VE": Series("VE", "L/min", "#1f6fb4"),
    "HR": Series("HR", "1/min", "#b8336a"),
    "O2pulse": Series("O2 pulse", "mL/beat", "#1f6fb4"),
    "VE/VO2": Series("VE/VO2", "ratio", "#1f6fb4"),
    "VE/VCO2": Series("VE/VCO2", "ratio", "#7b3f9e"),
    "RER": Series("RER", "VCO2/VO2", "#1f6fb4"),
    "PetO2": Series("PetO2", "mmHg", "#1f6fb4"),
    "PetCO2": Series("PetCO2", "mmHg", "#7b3f9e"),
    "VT": Series("VT", "L", "#1f6fb4"),
    "load": Series("work rate", "W", "#6b6b6b"),
    "speed": Series("speed", "km/h", "#6b6b6b"),
}

#: Ratios drawn from the canonical channels: name, numerator, denominator, factor.
RATIOS: tuple[tuple[str, str, str, float], ...] = (
    ("O2pulse", "VO2", "HR", 1.0),
    ("VE/VO2", "VE", "VO2", 1000.0),
    ("VE/VCO2", "VE", "VCO2", 1000.0),
    ("RER", "VCO2", "VO2", 1.0),
)

#: Who placed each marker, by results-table column: (threshold, source, legend text).
MARKERS: dict[str, tuple[str, str, str]] = {
    "vt1_time_s": ("VT1", "model", "model"),
    "vt2_time_s": ("VT2", "model", "model"),
    "vt1_consensus_time_s": ("VT1", "consensus", "consensus"),
    "vt2_consensus_time_s": ("VT2", "consensus", "consensus"),
    "vt1_vo2_ml_min": ("VT1", "model", "model"),
    "vt2_vo2_ml_min": ("VT2", "model", "model"),
    "vt1_consensus_vo2_ml_min": ("VT1", "consensus", "consensus"),
    "vt2_consensus_vo2_ml_min": ("VT2", "consensus", "consensus"),
    "vt1_vslope_vo2_ml_min": ("VT1", "method", "V-slope (VCO2 vs VO2)"),
    "vt1_equivalents_time_s": ("VT1", "method", "ventilatory equivalents"),
    "vt2_equivalents_time_s": ("VT2", "method", "ventilatory equivalents"),
    "vt1_peto2_time_s": ("VT1", "method", "PetO2"),
    "vt2_petco2_time_s": ("VT2", "method", "PetCO2"),
    "vt2_vslope_time_s": ("VT2", "method", "V-slope (VE vs VCO2)"),
}
#: Markers on every time axis: the model's and the consensus thresholds.
TIME_MARKERS = ("vt1_time_s", "vt1_consensus_time_s", "vt2_time_s", "vt2_consensus_time_s")
#: The same on a VO2 axis.
VO2_MARKERS = ("vt1_vo2_ml_min", "vt1_consensus_vo2_ml_min", "vt2_vo2_ml_min",
               "vt2_consensus_vo2_ml_min")


@dataclass(frozen=True)
class Panel:
    """One panel of the per-test grid.

    Attributes
    ----------
    key : str
        Names the figure (``panel-<key>``).
    title : str
    x : str
        Series on the x axis; ``"t"`` is time (s), and time axes are linked.
    left, right : tuple of str
        Series (:data:`SERIES`) on the left and on the right axis.
    markers : tuple of str
        Results-table columns marked as vertical lines (:data:`MARKERS`; values on ``x``).

    The panel is drawn when ``x`` and at least one ``left`` series have data.
    """

    key: str
    title: str
    x: str
    left: tuple[str, ...]
    right: tuple[str, ...] = ()
    markers: tuple[str, ...] = ()


#: The per-test grid, in the order of Wasserman's nine-panel plot (Wasserman et al. 2005).
#: Each method's marker is on the panel of the signal it reads.
PANELS: tuple[Panel, ...] = (
    Panel("ve", "Ventilation", "t", ("VE",), markers=(*TIME_MARKERS, "vt2_vslope_time_s")),
    Panel("hr", "Heart rate and O2 pulse", "t", ("HR",), ("O2pulse",), TIME_MARKERS),
    Panel("vo2", "VO2 and VCO2", "t", ("VO2", "VCO2"), ("load", "speed"), TIME_MARKERS),
    Panel("ve_vco2", "VE against VCO2", "VCO2", ("VE",)),
    Panel("vslope", "V-slope: VCO2 against VO2", "VO2", ("VCO2",),
          markers=("vt1_vslope_vo2_ml_min", *VO2_MARKERS)),
    Panel("equivalents", "Ventilatory equivalents", "t", ("VE/VO2", "VE/VCO2"),
          markers=(*TIME_MARKERS, "vt1_equivalents_time_s", "vt2_equivalents_time_s")),
    Panel("vt_ve", "Tidal volume against VE", "VE", ("VT",)),
    Panel("rer", "Respiratory exchange ratio", "t", ("RER",), markers=TIME_MARKERS),
    Panel("end_tidal", "End-tidal pressures", "t", ("PetO2", "PetCO2"),
          markers=(*TIME_MARKERS, "vt1_peto2_time_s", "vt2_petco2_time_s")),
)

#: The panels of the review figures (:func:`review_figures`): the signals the classical
#: methods read.
REVIEW_PANELS = ("vslope", "equivalents", "end_tidal", "ve")
REVIEW_PANEL_WIDTH = 420  # two side by side fit a notebook's width
#: The decision in force, by results-table column: (threshold, the x series it is drawn on).
FINAL_MARKERS: dict[str, tuple[str, str]] = {
    "vt1_final_time_s": ("VT1", "t"), "vt2_final_time_s": ("VT2", "t"),
    "vt1_final_vo2_ml_min": ("VT1", "VO2"), "vt2_final_vo2_ml_min": ("VT2", "VO2"),
}

# -- the breath data as drawn -------------------------------------------------------------

def breath_series(record: CPETRecord) -> pd.DataFrame:
    """The breath data as plotted: time, the channels in :data:`SERIES` and their ratios.

    The record is screened as the analysis screens it
    (:func:`cpet_nb.physiology.validate.screen_values`): a channel blanked there is missing
    here too. Ratios with a zero or missing denominator are missing.
    """
    data = screen_values(record)[0].data
    out = pd.DataFrame({"t": pd.to_numeric(data["t"], errors="coerce")})
    for name in SERIES:
        if name in data:
            out[name] = pd.to_numeric(data[name], errors="coerce")
    for name, numerator, denominator, factor in RATIOS:
        if numerator in out and denominator in out:
            ratio = factor * out[numerator] / out[denominator].where(out[denominator] != 0)
            out[name] = ratio
    return out


def decimate(x: np.ndarray, y: np.ndarray, max_points: int = MAX_POINTS_PER_LINE
             ) -> tuple[np.ndarray, np.ndarray]:
    """Thin a series for display: the lowest and highest point of each of equal buckets.

    Pairs with a non-finite value are left out first (there is nothing to draw). A series of
    at most ``max_points`` points stays whole. A longer one is cut into ``max_points // 2``
    buckets of consecutive points and each bucket keeps its lowest and its highest ``y``, in
    their order: the plotted series has the same peaks and troughs as the data (min-max
    decimation; a stride could step over a spike). Only the plotted copy is thinned.

    Parameters
    ----------
    x, y : array-like
        The series, same length, in drawing order (time, for time series).
    max_points : int
        Most points kept, at least 2.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)

    Examples
    --------
    >>> x = np.arange(10_000.0)
    >>> y = np.sin(x / 50.0)
    >>> y[1234] = 9.0
    >>> xs, ys = decimate(x, y, max_points=100)
    >>> len(xs) <= 100, float(ys.max()), float(xs[np.argmax(ys)])
    (True, 9.0, 1234.0)
    """
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    finite = np.isfinite(x) & np.isfinite(y)
    x, y = x[finite], y[finite]
    if len(y) <= max_points:
        return x, y
    n_buckets = max_points // 2
    starts = np.linspace(0, len(y), n_buckets + 1).astype(int)[:-1]
    bucket = np.repeat(np.arange(n_buckets), np.diff([*starts, len(y)]))
    keep = np.zeros(len(y), dtype=bool)
    for extreme in (np.minimum, np.maximum):
        hits = np.flatnonzero(extreme.reduceat(y, starts)[bucket] == y)
        _, first = np.unique(bucket[hits], return_index=True)  # one per bucket
        keep[hits[first]] = True
    return x[keep], y[keep]


# -- one test -------------------------------------------------------------------------------

def test_figures(test: TestData, *, max_points: int = MAX_POINTS_PER_LINE):
    """Every figure of one test, in a column: a summary of the results, the domain
    probabilities, and the breath-data panels (:data:`PANELS`) in a grid of three columns.

    A panel whose channels the test lacks is left out, and a note under the grid names it
    and the channels it needs. Without breath data (the file is gone, see
    :meth:`TestData.from_store`) the grid is replaced by a note saying why; without domain
    curves, the domain figure is. Figures are named ``panel-<key>`` (``panel-domains`` for the
    domain probabilities), notes ``missing-domains``, ``missing-breath-data`` and
    ``missing-panels``. Time axes are linked: zooming one zooms all.

    Parameters
    ----------
    test : TestData
    max_points : int
        Most points per series (:func:`decimate`).

    Returns
    -------
    bokeh.models.Column
    """
    parts, _ = _test_parts(test, PANELS, ncols=3, panel_width=PANEL_WIDTH,
                           max_points=max_points)
    return column(*parts)


test_figures.__test__ = False  # a figure builder, not a pytest test, if imported into one


def _test_parts(test: TestData, panels: Sequence[Panel], *, ncols: int, panel_width: int,
                max_points: int) -> tuple[list, dict[str, Any]]:
    """The summary, the domain figure and the grid of ``panels`` of one test, with a note
    for each part that cannot be drawn (:func:`test_figures`); and the figures by key
    (``domains`` and the panels' keys). Time axes share one range."""
    time_range = DataRange1d()
    width = ncols * panel_width
    parts: list = [Div(text=summary_html(test.row), name="summary", width=width)]
    figures: dict[str, Any] = {}
    if test.curves is not None:
        figures["domains"] = domain_figure(test, x_range=time_range, max_points=max_points,
                                           width=width)
        parts.append(figures["domains"])
    else:
        parts.append(_note("missing-domains", "Domain probabilities not shown: the model did "
                           "not run on this test (its findings say why)."))
    if test.record is None:
        parts.append(_note("missing-breath-data", "Breath data not shown: "
                           f"{test.missing or 'no record'}. The thresholds above come from "
                           "the stored results."))
        return parts, figures
    series = breath_series(test.record)
    present = [p for p in panels
               if _has_data(series, p.x) and any(_has_data(series, s) for s in p.left)]
    for panel in present:
        figures[panel.key] = _panel_figure(panel, series, test.row, time_range, max_points,
                                           width=panel_width)
    if present:
        grid = gridplot([figures[p.key] for p in present], ncols=ncols, toolbar_location="right")
        even_rows(grid)
        parts.append(grid)
    absent = [p for p in panels if p not in present]
    if absent:
        parts.append(_note("missing-panels", "Not drawn, for want of data in this file: "
                           + "; ".join(f"{p.title} (needs {_needs(p)})" for p in absent) + "."))
    return parts, figures


@dataclass
class ReviewFigures:
    """The figures a reviewer decides from (:func:`review_figures`).

    Attributes
    ----------
    layout : bokeh.models.Column
    time_figures : list of bokeh.plotting.figure
        The figures with a time axis: where a click (a Bokeh ``Tap`` event, ``event.x``)
        picks a time.
    pick : ColumnDataSource
        The picked time (``x``: none or one value), drawn as a black dotted line on every
        time figure; set it with :meth:`show_pick`.
    """

    layout: Any
    time_figures: list
    pick: Any

    def show_pick(self, time_s: float | None) -> None:
        """Mark ``time_s`` on the time figures (None: remove the mark)."""
        self.pick.data = {"x": [] if time_s is None else [float(time_s)]}


def review_figures(test: TestData, *, max_points: int = MAX_POINTS_PER_LINE) -> ReviewFigures:
    """What a reviewer needs to decide VT1 and VT2 of one test: the summary (every method's
    estimate), the domain probabilities, and the panels each classical method reads
    (:data:`REVIEW_PANELS`: V-slope, ventilatory equivalents, end-tidal pressures,
    ventilation), each method's estimate marked on the panel of its signal (as in
    :func:`test_figures`), and the decision in force (the results' final columns, with its
    source: :data:`FINAL_MARKERS`).

    Parts that cannot be drawn are replaced by the notes of :func:`test_figures`.

    Parameters
    ----------
    test : TestData
    max_points : int
        Most points per series (:func:`decimate`).

    Returns
    -------
    ReviewFigures
    """
    panels = [p for p in PANELS if p.key in REVIEW_PANELS]
    parts, figures = _test_parts(test, panels, ncols=2, panel_width=REVIEW_PANEL_WIDTH,
                                 max_points=max_points)
    pick = ColumnDataSource({"x": []})
    x_axes = {"domains": "t"} | {p.key: p.x for p in panels}
    for key, fig in figures.items():
        _add_final_markers(fig, test.row, x_axes[key])
        if x_axes[key] == "t":
            fig.vspan(x="x", source=pick, line_color="black", line_dash="dotted", line_width=2,
                      legend_label="picked (click a time plot)", name="pick")
    timed = [fig for key, fig in figures.items() if x_axes[key] == "t"]
    return ReviewFigures(column(*parts), timed, pick)


review_figures.__test__ = False  # a figure builder, not a pytest test


def domain_figure(test: TestData, *, x_range: Any = None, max_points: int = MAX_POINTS_PER_LINE,
                  width: int = 2 * PANEL_WIDTH, height: int = PANEL_HEIGHT):
    """Domain probabilities over time, with the model's and the consensus VT1 and VT2.

    Parameters
    ----------
    test : TestData
        A test with ``curves``.
    x_range : bokeh range, optional
        Shared with other figures to link their time axes.

    Returns
    -------
    bokeh.plotting.figure
    """
    if test.curves is None:
        raise ValueError(f"{test.name}: no domain curves (status {test.row['status']})")
    fig = _figure(f"{Path(test.name).name}: exercise-intensity domains (Oxynet model)",
                  "time (s)", "model output (domain probability)", x_range, width, height,
                  "panel-domains")
    frame = test.curves.to_frame()
    lines = []
    for domain, colour in DOMAIN_COLOURS.items():
        x, y = decimate(frame["time_s"], frame[f"p_{domain}"], max_points)
        lines.append(fig.line(x, y, color=colour, line_width=2, legend_label=domain,
                              name=f"p({domain})"))
    fig.y_range = Range1d(-0.05, 1.08)
    _add_markers(fig, test.row, TIME_MARKERS)
    _hover(fig, lines, "time (s)", "probability")
    _legend_below(fig, columns=4)
    return fig


def _panel_figure(panel: Panel, series: pd.DataFrame, row: Mapping[str, Any],
                  time_range: Any, max_points: int, width: int = PANEL_WIDTH):
    left = [s for s in panel.left if _has_data(series, s)]
    right = [s for s in panel.right if _has_data(series, s)]
    x_label = "time (s)" if panel.x == "t" else SERIES[panel.x].label
    fig = _figure(panel.title, x_label, _axis_label(left),
                  time_range if panel.x == "t" else None, width, PANEL_HEIGHT,
                  f"panel-{panel.key}")
    drawn = [_scatter(fig, series, panel.x, name, max_points) for name in left]
    fig.y_range = DataRange1d(renderers=list(drawn))
    if right:
        fig.extra_y_ranges = {"right": DataRange1d()}
        extra = [_scatter(fig, series, panel.x, name, max_points, y_range_name="right")
                 for name in right]
        fig.extra_y_ranges["right"].renderers = extra
        fig.add_layout(LinearAxis(y_range_name="right", axis_label=_axis_label(right)), "right")
        for axis, names in ((fig.yaxis[0], left), (fig.yaxis[1], right)):
            if len(names) == 1:  # which axis is whose: the label in the series' colour
                axis.axis_label_text_color = SERIES[names[0]].colour
        drawn += extra
    _add_markers(fig, row, panel.markers)
    _hover(fig, drawn, x_label, "value")
    _legend_below(fig, columns=2)
    return fig


def _scatter(fig: Any, series: pd.DataFrame, x: str, name: str, max_points: int, **kwargs):
    xs, ys = decimate(series[x], series[name], max_points)
    style = SERIES[name]
    return fig.scatter(xs, ys, size=3, alpha=0.6, color=style.colour, legend_label=style.label,
                       name=style.label, **kwargs)


def _add_markers(fig: Any, row: Mapping[str, Any], columns: Sequence[str]) -> None:
    """A vertical line at each of the row's values in ``columns`` that is known."""
    for column_name in columns:
        threshold, source, text = MARKERS[column_name]
        _vline(fig, row, column_name, threshold, source, text)


def _add_final_markers(fig: Any, row: Mapping[str, Any], x: str) -> None:
    """The decision in force (:data:`FINAL_MARKERS`) on a figure whose x is series ``x``
    (``t`` or ``VO2``), with its source in the legend."""
    for column_name, (threshold, on_x) in FINAL_MARKERS.items():
        if on_x == x:
            source = row.get(f"{threshold.lower()}_source")
            shown = source if isinstance(source, str) and source else "none"
            _vline(fig, row, column_name, threshold, "final", f"final ({shown})")


def _vline(fig: Any, row: Mapping[str, Any], column_name: str, threshold: str, source: str,
           text: str) -> None:
    """A vertical line at the row's value of ``column_name``, when it is known."""
    value = _number(row, column_name)
    if not math.isfinite(value):
        return
    unit = "s" if column_name.endswith("_time_s") else "mL/min"
    fig.vspan(x=[value], line_color=THRESHOLD_COLOURS[threshold],
              line_dash=MARKER_DASH[source], line_width=MARKER_WIDTH.get(source, 2),
              line_alpha=0.7 if source == "final" else 1.0,
              legend_label=f"{threshold} {text}: {value:,.0f} {unit}", name=column_name)


def _figure(title: str, x_label: str, y_label: str, x_range: Any, width: int, height: int,
            name: str):
    options = {} if x_range is None else {"x_range": x_range}
    return figure(title=title, x_axis_label=x_label, y_axis_label=y_label, width=width,
                  height=height, tools=TOOLS, name=name, **options)


def _hover(fig: Any, renderers: list, x_label: str, y_label: str) -> None:
    fig.add_tools(HoverTool(renderers=renderers, tooltips=[
        ("", "$name"), (x_label, "@x{0,0.[0]}"), (y_label, "@y{0,0.[00]}")]))


def _legend_below(fig: Any, columns: int) -> None:
    """The legend under the plot (it never hides data), clicking an entry hides it; in at
    most ``columns`` columns (:func:`fit_legend`)."""
    legend = fig.legend[0]
    legend.label_text_font_size = "8pt"
    legend.glyph_width = legend.glyph_height = 14
    legend.spacing, legend.padding = 8, 4
    legend.click_policy = "hide"
    legend.ncols = columns
    fig.add_layout(legend, "below")
    fit_legend(fig, fig.width)


#: width of one character of an 8 pt legend label, a little above Bokeh's sans-serif average
LEGEND_CHAR_PX = 6.0
#: height of one row of such a legend (a 14 px glyph, the label, the spacing)
LEGEND_ROW_PX = 22


def fit_legend(fig: Any, width_px: int) -> float:
    """Fewer columns for the legends below ``fig`` where theirs would be wider than
    ``width_px``, and ``fig`` taller by the rows that adds, so its plot keeps its size.

    Bokeh does not wrap a legend wider than its figure: it overflows into the neighbouring
    figures of a grid, or is cut off at the edge of the canvas. Label widths are estimated
    from their length (:data:`LEGEND_CHAR_PX`).

    Returns
    -------
    float
        The width, in px, of the widest legend as now laid out (0 without one): more than
        ``width_px`` only where a single column is wider.
    """
    widest = 0.0
    for legend in fig.below:
        if not isinstance(legend, Legend):
            continue
        n_items, columns = len(legend.items), legend.ncols
        legend.ncols = legend_columns(legend, width_px, columns)
        added_rows = _legend_rows(n_items, legend.ncols) - _legend_rows(n_items, columns)
        if fig.height is not None:
            fig.height += added_rows * LEGEND_ROW_PX
        widest = max(widest, legend_width_px(legend, legend.ncols))
    return widest


def even_rows(grid: Any) -> None:
    """Every figure in a row of ``grid`` (a ``GridPlot``) as tall as the row's tallest.

    A grid aligns the plot areas of a row, so a figure shorter than its neighbours (a legend
    of fewer rows below it) would get a squashed plot area."""
    tallest: dict[int, int] = {}
    for fig, row, _ in grid.children:
        tallest[row] = max(tallest.get(row, 0), fig.height or 0)
    for fig, row, _ in grid.children:
        fig.height = tallest[row] or fig.height


def legend_columns(legend: Any, width_px: int, max_columns: int) -> int:
    """The most columns, up to ``max_columns``, in which ``legend`` is no wider than
    ``width_px`` (:func:`legend_width_px`); at least one."""
    return next((columns for columns in range(max_columns, 1, -1)
                 if legend_width_px(legend, columns) <= width_px), 1)


def legend_width_px(legend: Any, columns: int) -> float:
    """The estimated width of ``legend`` in ``columns`` columns, filled column by column as
    Bokeh does; label widths from their length (:data:`LEGEND_CHAR_PX`)."""
    entry_px = [legend.glyph_width + legend.label_standoff
                + LEGEND_CHAR_PX * len(str(getattr(item.label, "value", "")))
                for item in legend.items]
    rows = max(1, _legend_rows(len(entry_px), columns))
    widths = [max(entry_px[start: start + rows]) for start in range(0, len(entry_px), rows)]
    return sum(widths) + legend.spacing * (len(widths) - 1) + 2 * legend.padding


def _legend_rows(n_items: int, columns: int) -> int:
    """Rows of a legend of ``n_items`` entries in ``columns`` columns."""
    return -(-n_items // columns)


def _axis_label(names: Sequence[str]) -> str:
    """``"VO2, VCO2 (mL/min)"``; quantities with different units each keep their own."""
    by_unit: dict[str, list[str]] = {}
    for name in names:
        by_unit.setdefault(SERIES[name].unit, []).append(SERIES[name].quantity)
    return ", ".join(f"{', '.join(q)} ({unit})" for unit, q in by_unit.items())


def _needs(panel: Panel) -> str:
    """The canonical channels a panel needs: ``"VE and VT"``, ``"PetO2 or PetCO2"``."""
    def channels(name: str) -> list[str]:
        ratio = next((r for r in RATIOS if r[0] == name), None)
        return list(ratio[1:3]) if ratio else [name]

    either = " or ".join(" and ".join(channels(name)) for name in panel.left)
    if panel.x == "t":
        return either
    return f"{' and '.join(channels(panel.x))} and {either}"


def _has_data(series: pd.DataFrame, name: str) -> bool:
    return name in series and bool(np.isfinite(series[name].to_numpy(dtype=float)).any())


def _number(row: Mapping[str, Any], column_name: str) -> float:
    value = row.get(column_name)
    return float(value) if value is not None and not pd.isna(value) else math.nan


def _note(name: str, text: str):
    return Div(text=f'<p style="padding:6px 10px;border-left:4px solid #999;background:#f4f4f4;'
               f'max-width:{3 * PANEL_WIDTH - 30}px">{html.escape(text)}</p>', name=name)


def summary_html(row: Mapping[str, Any]) -> str:
    """The results of one test as an HTML block: status, VO2peak, each estimate of VT1 and
    VT2 (model, consensus with its spread and uncertainty, the classical methods, an expert's
    value in force), review flags, findings.
    Text from the file (names, messages) is escaped."""
    def cell(column_name: str, unit: str) -> str:
        value = _number(row, column_name)
        return f"{value:,.0f} {unit}" if math.isfinite(value) else "–"

    facts = [f"status <b>{html.escape(str(row['status']))}</b>"]
    facts += [html.escape(str(row[c])) for c in ("format", "sampling")
              if isinstance(row.get(c), str)]
    facts += [f"{label} {cell(c, unit)}" for label, c, unit in (
        ("duration", "duration_s", "s"), ("VO2peak", "vo2peak_ml_min", "mL/min"))
        if math.isfinite(_number(row, c))]
    estimates = (
        ("model (Oxynet)", "vt1_time_s", "vt1_vo2_ml_min", "vt2_time_s", "vt2_vo2_ml_min"),
        ("consensus", "vt1_consensus_time_s", "vt1_consensus_vo2_ml_min",
         "vt2_consensus_time_s", "vt2_consensus_vo2_ml_min"),
        ("V-slope (VT1: VCO2 vs VO2, VT2: VE vs VCO2)", "vt1_vslope_time_s",
         "vt1_vslope_vo2_ml_min", "vt2_vslope_time_s", "vt2_vslope_vo2_ml_min"),
        ("ventilatory equivalents", "vt1_equivalents_time_s", "vt1_equivalents_vo2_ml_min",
         "vt2_equivalents_time_s", "vt2_equivalents_vo2_ml_min"),
        ("end-tidal (VT1: PetO2, VT2: PetCO2)", "vt1_peto2_time_s", "vt1_peto2_vo2_ml_min",
         "vt2_petco2_time_s", "vt2_petco2_vo2_ml_min"),
    )
    rows = "".join(f"<tr><td>{label}</td><td>{cell(t1, 's')}</td><td>{cell(v1, 'mL/min')}</td>"
                   f"<td>{cell(t2, 's')}</td><td>{cell(v2, 'mL/min')}</td></tr>"
                   for label, t1, v1, t2, v2 in estimates)
    def row_of(label: str, prefix: str) -> str:
        """A table row: ``label``, then VT1's and VT2's ``<prefix>_s`` and VO2 columns."""
        return (f"<tr><td>{label}</td>" + "".join(
            f"<td>{cell(f'{t}_{prefix}_s', 's')}</td><td>{cell(f'{t}_{prefix}_ml_min', 'mL/min')}"
            "</td>" for t in ("vt1", "vt2")) + "</tr>")

    rows += row_of("spread of the estimates behind the consensus", "spread")
    rows += row_of("uncertainty of the consensus (what review is set from)", "uncertainty")
    sources = [str(row.get(f"{t}_source") or "consensus") for t in ("vt1", "vt2")]
    if sources != ["consensus", "consensus"]:  # an expert's decision is in force
        rows += (f"<tr><td>in force (VT1: {html.escape(sources[0])}, VT2: "
                 f"{html.escape(sources[1])})</td>" + "".join(
                     f"<td>{cell(f'{t}_final_time_s', 's')}</td>"
                     f"<td>{cell(f'{t}_final_vo2_ml_min', 'mL/min')}</td>"
                     for t in ("vt1", "vt2")) + "</tr>")
    flags = [f.removeprefix("review_") for f in REVIEW_REASONS if raised(row.get(f))]
    assessed = any(not pd.isna(row.get(f)) for f in REVIEW_REASONS)
    review = (", ".join(flags) or "no flag raised") if assessed else "not assessed"
    findings = split_findings(row.get("findings"))
    shown = "".join(f"<li>{html.escape(f)}</li>" for f in findings[:10])
    more = f"<li>and {len(findings) - 10} more</li>" if len(findings) > 10 else ""
    return (
        f"<h3 style='margin:4px 0'>{html.escape(str(row['file']))}</h3>"
        f"<p style='margin:2px 0'>{' · '.join(facts)}</p>"
        "<table style='border-collapse:collapse;font-size:90%' cellpadding='3'>"
        "<tr style='border-bottom:1px solid #999'><th style='text-align:left'>estimate</th>"
        "<th>VT1 time</th><th>VT1 VO2</th><th>VT2 time</th><th>VT2 VO2</th></tr>"
        f"{rows}</table>"
        f"<p style='margin:4px 0'>– no estimate (the findings say why). "
        "Markers: solid = model, dashed = consensus, dotted = a "
        f"classical method; <span style='color:{THRESHOLD_COLOURS['VT1']}'>■ VT1</span> "
        f"<span style='color:{THRESHOLD_COLOURS['VT2']}'>■ VT2</span>. "
        f"Review: {review}.</p>"
        + (f"<ul style='margin:2px 0;font-size:90%'>{shown}{more}</ul>" if findings else ""))


# -- a batch --------------------------------------------------------------------------------

#: Columns of :attr:`BatchFigures.rows`, one row per test.
BATCH_COLUMNS = ("file", "status", "vo2peak_ml_min", "vt1_pct_vo2peak",
                 "vt1_consensus_pct_vo2peak", "vt2_pct_vo2peak", "vt2_consensus_pct_vo2peak",
                 "finding_codes")


@dataclass
class BatchFigures:
    """The batch panels and their data sources.

    Attributes
    ----------
    layout : bokeh.models.Column
        The three figures (``batch-vo2peak``, ``batch-thresholds``, ``batch-findings``).
    rows : ColumnDataSource
        One row per test (:data:`BATCH_COLUMNS`; ``finding_codes`` lists
        ``severity:code`` words).
    vo2peak_bins : ColumnDataSource
        The VO2peak histogram (``left``, ``right``, ``n_tests``).
    finding_counts : ColumnDataSource
        Tests per finding code (``code``, ``n_tests``, ``meaning``, ``colour``).
    """

    layout: Any
    rows: Any
    vo2peak_bins: Any
    finding_counts: Any
    bin_ml_min: float = VO2PEAK_BIN_ML_MIN
    _figures: dict[str, Any] = field(default_factory=dict, repr=False)

    def stream(self, table: pd.DataFrame) -> None:
        """Add the rows of ``table`` (new results: e.g. the rows of ``Batch.results()`` named
        in ``progress.new_files``) and update the histogram and the counts.

        Call it where the document is updated (in a Bokeh server or panel app, from a
        ``doc.add_next_tick_callback``).
        """
        self.rows.stream(_batch_rows(table))
        self._refresh()

    def _refresh(self) -> None:
        data = self.rows.data
        vo2peak = np.asarray(data["vo2peak_ml_min"], dtype=float)
        self.vo2peak_bins.data = _histogram(vo2peak, self.bin_ml_min)
        known = int(np.isfinite(vo2peak).sum())
        self._figures["vo2peak"].title.text = f"VO2peak of {known} of {len(vo2peak)} tests"
        counts = _code_counts(data["finding_codes"])
        self.finding_counts.data = counts
        self._figures["findings"].y_range.factors = list(counts["code"])
        self._figures["findings"].height = 120 + 24 * len(counts["code"])
        self._figures["findings"].title.text = (
            f"Tests with each warning (amber) or error (red), by code; {len(vo2peak)} tests"
            if counts["code"]
            else f"No warnings or errors in {len(vo2peak)} tests")


def batch_figures(table: pd.DataFrame, *, bin_ml_min: float = VO2PEAK_BIN_ML_MIN
                  ) -> BatchFigures:
    """The batch panels: VO2peak distribution, VT1 and VT2 as % of VO2peak (model and
    consensus) against VO2peak, and how many tests have each finding code.

    Parameters
    ----------
    table : pandas.DataFrame
        A results table (``Batch.results()``, ``Store.results(job_id)`` or
        :func:`cpet_nb.results_table`); may be empty and grow with
        :meth:`BatchFigures.stream`.
    bin_ml_min : float
        Width of the VO2peak histogram's bins (mL/min).

    Returns
    -------
    BatchFigures
    """
    rows = ColumnDataSource(_batch_rows(table))
    bins = ColumnDataSource(_histogram(np.array([]), bin_ml_min))
    counts = ColumnDataSource(_code_counts([]))
    figures = {"vo2peak": _vo2peak_figure(rows, bins), "thresholds": _thresholds_figure(rows),
               "findings": _findings_figure(counts)}
    layout = column(gridplot([[figures["vo2peak"], figures["thresholds"]]],
                             toolbar_location="right"), figures["findings"])
    batch = BatchFigures(layout, rows, bins, counts, bin_ml_min, figures)
    batch._refresh()
    return batch


def _batch_rows(table: pd.DataFrame) -> dict[str, list]:
    """The :data:`BATCH_COLUMNS` of a results table (NaN where unknown)."""
    out: dict[str, list] = {
        "file": [str(f) for f in table["file"]],
        "status": [str(s) for s in table["status"]],
        "finding_codes": [" ".join(f"{s}:{c}" for s, c in dict.fromkeys(finding_codes(text)))
                          for text in table["findings"]],
    }
    for column_name in BATCH_COLUMNS:
        if column_name not in out:
            out[column_name] = pd.to_numeric(table[column_name], errors="coerce").astype(
                float).tolist()
    return {c: out[c] for c in BATCH_COLUMNS}


def _histogram(values: np.ndarray, bin_ml_min: float) -> dict[str, np.ndarray]:
    values = values[np.isfinite(values)]
    if not len(values):
        return {"left": np.array([]), "right": np.array([]), "n_tests": np.array([])}
    first = math.floor(values.min() / bin_ml_min)
    edges = bin_ml_min * np.arange(first, math.floor(values.max() / bin_ml_min) + 2)
    counts, _ = np.histogram(values, edges)
    return {"left": edges[:-1], "right": edges[1:], "n_tests": counts}


def _code_counts(codes_per_test: Sequence[str]) -> dict[str, list]:
    """Tests per finding code, the most frequent last (drawn at the top); a code that is an
    error in any test has an error's colour."""
    tests: dict[str, int] = {}
    errors: set[str] = set()
    for words in codes_per_test:
        found = [tuple(word.split(":", 1)) for word in words.split()]
        for code in {code for _, code in found}:
            tests[code] = tests.get(code, 0) + 1
        errors |= {code for severity, code in found if severity == Severity.ERROR.value}
    order = sorted(tests, key=lambda c: (tests[c], c))
    return {"code": order, "n_tests": [tests[c] for c in order],
            "meaning": [CODES[c] for c in order],
            "colour": [SEVERITY_COLOURS["error" if c in errors else "warning"] for c in order]}


def _vo2peak_figure(rows: Any, bins: Any):
    fig = figure(title="VO2peak", x_axis_label="VO2peak (mL/min)", y_axis_label="tests",
                 width=520, height=340, tools=TOOLS, name="batch-vo2peak")
    bars = fig.quad(left="left", right="right", bottom=0, top="n_tests", source=bins,
                    fill_color="#1f6fb4", fill_alpha=0.6, line_color="white")
    rug = fig.scatter("vo2peak_ml_min", 0, source=rows, marker="dash", angle=math.pi / 2,
                      size=16, line_width=2, color="#222", alpha=0.8, name="tests")
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("VO2peak (mL/min)", "@left{0,0} to @right{0,0}"), ("tests", "@n_tests")]))
    fig.add_tools(HoverTool(renderers=[rug], tooltips=[
        ("file", "@file"), ("VO2peak (mL/min)", "@vo2peak_ml_min{0,0}")]))
    fig.y_range.start = 0
    _whole_numbers(fig.yaxis)
    return fig


def _thresholds_figure(rows: Any):
    fig = figure(title="VT1 and VT2 as % of VO2peak", x_axis_label="VO2peak (mL/min)",
                 y_axis_label="threshold VO2 (% of VO2peak)", width=520, height=340,
                 tools=TOOLS, name="batch-thresholds")
    for threshold in ("VT1", "VT2"):
        for source, marker in (("model", "circle"), ("consensus", "triangle")):
            column_name = (f"{threshold.lower()}_pct_vo2peak" if source == "model"
                           else f"{threshold.lower()}_consensus_pct_vo2peak")
            drawn = fig.scatter("vo2peak_ml_min", column_name, source=rows, marker=marker,
                                size=8, alpha=0.7, color=THRESHOLD_COLOURS[threshold],
                                fill_alpha=0.7 if source == "model" else 0.15,
                                legend_label=f"{threshold} {source}", name=column_name)
            fig.add_tools(HoverTool(renderers=[drawn], tooltips=[
                ("file", "@file"), ("VO2peak (mL/min)", "@vo2peak_ml_min{0,0}"),
                (f"{threshold} {source} (% of VO2peak)", f"@{column_name}{{0.0}}")]))
    _legend_below(fig, columns=4)
    return fig


def _findings_figure(counts: Any):
    fig = figure(title="Warnings and errors by code", y_range=FactorRange(),
                 x_axis_label="tests with the finding", width=1040, height=300, tools="save",
                 toolbar_location="above", name="batch-findings")
    bars = fig.hbar(y="code", right="n_tests", height=0.7, source=counts, color="colour")
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[
        ("code", "@code"), ("meaning", "@meaning"), ("tests", "@n_tests")]))
    fig.x_range.start = 0
    _whole_numbers(fig.xaxis)
    return fig


def _whole_numbers(axis: Any) -> None:
    """Ticks at whole numbers only (counts of tests)."""
    axis.ticker.min_interval = 1
    axis.ticker.num_minor_ticks = 0


# -- pages ----------------------------------------------------------------------------------

def save_html(layout: Any, path: str | os.PathLike, title: str) -> Path:
    """Write ``layout`` as a standalone HTML page with Bokeh inlined (works offline).

    The page is written to a temporary file and renamed (:func:`cpet_nb.io.exports.atomic_path`):
    a reader never sees half a page.

    Parameters
    ----------
    layout : bokeh model
        Figures or a layout, e.g. ``test_figures(...)`` or ``batch_figures(...).layout``.
    path : str or path-like
        The ``.html`` file.
    title : str
        The page's title.

    Returns
    -------
    pathlib.Path
    """
    page = file_html(layout, INLINE, title)
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
