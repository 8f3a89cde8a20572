"""Bokeh figures of results (needs the ``plot`` extra: ``pip install 'cpet-nb[plot]'``).

Every call builds new figures: a Bokeh model belongs to one document, so figures are never
reused across exports.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..result import FileResult

DOMAIN_COLOURS = {"moderate": "#2a9d8f", "heavy": "#e9a03b", "severe": "#c8553d"}


def _bokeh():
    try:
        import bokeh.layouts
        import bokeh.models
        import bokeh.plotting
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("plots need Bokeh: pip install 'cpet-nb[plot]'") from exc
    return bokeh


def _columns(frame: pd.DataFrame) -> dict:
    """Plain column arrays for a ColumnDataSource (no DataFrame index column)."""
    return {column: frame[column].to_numpy() for column in frame.columns}


def domain_figure(result: FileResult, width: int = 520, height: int = 260):
    """Domain probabilities over time for one test, with VT1 and VT2 marked.

    Parameters
    ----------
    result : FileResult
        A result with ``curves`` (analysed by the model).

    Returns
    -------
    bokeh.plotting.figure
    """
    if result.curves is None:
        raise ValueError(f"{result.file}: no domain curves (status {result.status})")
    bokeh = _bokeh()
    frame = result.curves.to_frame()
    marks = [f"{label} {vt.time_s:.0f} s, {vt.vo2_ml_min:.0f} mL/min"
             for label, vt in (("VT1", result.vt1), ("VT2", result.vt2)) if vt is not None]
    fig = bokeh.plotting.figure(
        title=" | ".join([Path(result.file).name, *marks]), width=width, height=height,
        x_axis_label="time (s)",
        y_axis_label="domain score", tools="pan,box_zoom,wheel_zoom,reset,save")
    source = bokeh.models.ColumnDataSource(_columns(frame))
    for domain, colour in DOMAIN_COLOURS.items():
        fig.line("time_s", f"p_{domain}", source=source, color=colour, line_width=2,
                 legend_label=domain)
    for label, vt in (("VT1", result.vt1), ("VT2", result.vt2)):
        if vt is not None:
            fig.add_layout(bokeh.models.Span(location=vt.time_s, dimension="height",
                                             line_dash="dashed", line_color="#444"))
            fig.add_layout(bokeh.models.Label(x=vt.time_s, y=0.5, text=label,
                                              text_font_size="9pt", x_offset=3))
    fig.y_range = bokeh.models.Range1d(-0.05, 1.08)
    fig.legend.orientation = "horizontal"
    fig.add_layout(fig.legend[0], "below")  # keep the curves' ends visible
    fig.legend.click_policy = "hide"
    return fig


def batch_figure(table: pd.DataFrame, width: int = 520, height: int = 380):
    """VO2 at VT1 and VT2 against VO2peak for every analysed test (hover shows the file).

    Parameters
    ----------
    table : pandas.DataFrame
        A results table (:func:`cpet_nb.results_table`).
    """
    bokeh = _bokeh()
    fig = bokeh.plotting.figure(
        title="Thresholds against VO2peak", width=width, height=height,
        x_axis_label="VO2peak (mL/min)", y_axis_label="VO2 at threshold (mL/min)",
        tools="pan,box_zoom,wheel_zoom,reset,save,hover",
        tooltips=[("file", "@file"), ("VO2", "@y{0} mL/min"), ("status", "@status")])
    for label, colour in (("vt1", DOMAIN_COLOURS["heavy"]), ("vt2", DOMAIN_COLOURS["severe"])):
        data = pd.DataFrame({"x": table["vo2peak_ml_min"], "y": table[f"{label}_vo2_ml_min"],
                             "file": table["file"].map(lambda f: Path(f).name),
                             "status": table["status"]}).dropna(subset=["x", "y"])
        source = bokeh.models.ColumnDataSource(_columns(data))
        fig.scatter("x", "y", source=source, size=7, alpha=0.7, color=colour,
                    legend_label=label.upper())
    fig.legend.location = "top_left"
    return fig


def review_table(table: pd.DataFrame, width: int = 1040):
    """The tests flagged for review first, with why (a Bokeh ``DataTable`` under a heading).

    Parameters
    ----------
    table : pandas.DataFrame
        A results table (:func:`cpet_nb.results_table` or ``Batch.results()``).
    """
    from ..physiology.consensus import REVIEW_REASONS

    bokeh = _bokeh()
    from bokeh.models import ColumnDataSource, DataTable, Div, TableColumn

    flagged = table[table["review"].fillna(False).astype(bool)].copy()
    flagged["why"] = [", ".join(f.removeprefix("review_") for f in REVIEW_REASONS if row[f] is True)
                      for _, row in flagged.iterrows()]
    shown = {"file": "file", "status": "status", "why": "why",
             "vt1_consensus_vo2_ml_min": "VT1 VO2 (mL/min)", "vt1_spread_ml_min": "spread",
             "vt2_consensus_vo2_ml_min": "VT2 VO2 (mL/min)", "vt2_spread_ml_min": "spread "}
    flagged["file"] = [Path(name).name for name in flagged["file"]]
    source = ColumnDataSource({c: flagged[c].round(0) if flagged[c].dtype.kind == "f"
                               else flagged[c].astype(str) for c in shown})
    heading = Div(text=f"<h3>{len(flagged)} of {len(table)} tests need review</h3>"
                  "<p>Flags: threshold estimates spread more than two experts would "
                  "(vt_spread), a threshold no method found (vt_missing), VT2 not after VT1 "
                  "(vt_order), the model's domains look swapped (model_swap), a failed "
                  "effort criterion (effort). Tests that could not be analysed are listed "
                  "with their findings in the results table.</p>", width=width)
    columns = [TableColumn(field=c, title=t) for c, t in shown.items()]
    return bokeh.layouts.column(heading, DataTable(source=source, columns=columns, width=width,
                                                   height=min(400, 28 * (len(flagged) + 1)),
                                                   index_position=None))


def save_report(results: Sequence[FileResult], path: str | os.PathLike,
                title: str = "cpet_nb results", n_tests: int = 6) -> Path:
    """A standalone HTML page (works offline): the tests that need review first, then the
    batch figure and the first tests' domains.

    Parameters
    ----------
    results : sequence of FileResult
    path : str or path-like
        The ``.html`` file to write.
    n_tests : int
        How many tests' domain figures to include.

    Returns
    -------
    pathlib.Path
    """
    from ..result import results_table

    bokeh = _bokeh()
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    analysed = [r for r in results if r.curves is not None][:n_tests]
    table = results_table(list(results))
    layout = bokeh.layouts.column(
        review_table(table),
        batch_figure(table),
        bokeh.layouts.gridplot([domain_figure(r) for r in analysed], ncols=2),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(file_html(layout, INLINE, title), encoding="utf-8")
    return path
