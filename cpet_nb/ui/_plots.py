"""The panel's only contact with the plots: what it shows for one test, for the batch, and
the HTML it writes. Everything here is built from a stored job (results row, domain
curves), never from in-memory ``FileResult`` objects.

The figures are :mod:`cpet_nb.report.plots`' (the same as in reports and saved pages), shown
in JupyterLab through jupyter_bokeh's ``BokehModel``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from math import ceil
from pathlib import Path
from typing import Any

import pandas as pd
from jupyter_bokeh.widgets import BokehModel

from ..batch import Batch
from ..report.plots import (
    TestData,
    batch_figures,
    even_rows,
    fit_legend,
    save_html,
    test_figures,
)


def test_plots(batch: Batch, file: str) -> BokehModel:
    """The plots of one stored test, as a widget: its summary, the domain probabilities with
    VT1/VT2 (model and consensus) and the Wasserman-style panels of the channels it has
    (:func:`cpet_nb.report.plots.test_figures`)."""
    return fitted(test_layout(batch, file))


def test_layout(batch: Batch, file: str) -> Any:
    """The Bokeh layout of one stored test (a fresh one each call: a Bokeh model belongs to
    one document)."""
    return test_figures(TestData.from_store(batch.store, batch.job_id, file))


def batch_plots(table: pd.DataFrame) -> tuple[BokehModel, Callable[[pd.DataFrame], None]]:
    """The live batch panels (VO2peak distribution, VT1/VT2 as % of VO2peak, findings by
    code; :func:`cpet_nb.report.plots.batch_figures`) and ``update(new_rows)``, which
    streams newly stored results rows into them."""
    figures = batch_figures(table)
    return fitted(figures.layout), figures.stream


def fitted(layout: Any, min_width_px: int = 240) -> BokehModel:
    """``layout`` in a widget as wide as the notebook's cell: every part of it stretches to
    the width there is (a sidebar open or not) and no part gets narrower than
    ``min_width_px`` or its declared width, whichever is less, nor than its legend in one
    column; heights stay as declared, but for the rows a legend gains to fit that least width
    (:func:`fit_legend`). Saved pages and reports keep their fixed widths."""
    from bokeh.models import GridPlot, LayoutDOM, Plot

    for part in layout.select({"type": LayoutDOM}):
        if part.width is not None:
            part.min_width = min(part.width, min_width_px)
            if isinstance(part, Plot):  # never narrower than its legend in one column
                part.min_width = max(part.min_width, ceil(fit_legend(part, part.min_width)))
        part.sizing_mode = "stretch_width"
    for grid in layout.select({"type": GridPlot}):
        even_rows(grid)
    widget = BokehModel(layout)
    widget.layout.width = "100%"  # in a flex box too (a Box gives its child its content width)
    return widget


def save_test_page(batch: Batch, file: str, path: str | os.PathLike) -> Path:
    """One test's plots as a standalone HTML page (works offline)."""
    return save_html(test_layout(batch, file), path, title=Path(file).name)
