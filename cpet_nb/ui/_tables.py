"""Tables of the panel: a Bokeh ``DataTable`` over a pandas DataFrame, shown through
``jupyter_bokeh`` (sortable by any column in the browser, rows appended by
``ColumnDataSource.stream`` and changed by ``patch``, so a 1,000-row table is never sent
twice), with the rows and columns shown chosen from Python."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from bokeh.models import (
    CDSView,
    ColumnDataSource,
    DataTable,
    IndexFilter,
    NumberFormatter,
    StringFormatter,
    TableColumn,
)
from jupyter_bokeh.widgets import BokehModel

#: Unit of a results column, from the ending of its name (longest endings first).
UNIT_ENDINGS = (
    ("_ml_min_per_log_l_min", "mL/min per log10 L/min"), ("_bpm_per_l_min", "1/min per L/min"),
    ("_ml_kg_min", "mL/kg/min"), ("_ml_min_w", "mL/min/W"), ("_pct_vo2peak", "% VO2peak"),
    ("_pct_predicted", "% predicted"), ("_ml_min", "mL/min"), ("_l_min", "L/min"),
    ("_ml_beat", "mL/beat"), ("_mmhg", "mmHg"), ("_bpm", "1/min"), ("_km_h", "km/h"),
    ("_pct", "%"), ("_kg", "kg"), ("_w", "W"), ("_s", "s"),
)
#: Default column widths (px) and the table's row geometry.
NUMBER_WIDTH, TEXT_WIDTH = 95, 160
HEADER_PX, ROW_PX, SCROLLBAR_PX = 27, 25, 18
#: Units whose values are shown without decimals.
WHOLE_UNITS = {"mL/min", "s", "1/min", "W"}


def column_title(name: str) -> str:
    """A column's heading with its unit, from its name: ``vt1_hr_bpm`` -> ``vt1 hr (1/min)``."""
    for ending, unit in UNIT_ENDINGS:
        if name.endswith(ending) and len(name) > len(ending):
            return f"{name[: -len(ending)].replace('_', ' ')} ({unit})"
    return name.replace("_", " ")


def _formatter(title: str, kind: str) -> StringFormatter | NumberFormatter:
    if kind != "f":
        return StringFormatter()
    whole = any(title.endswith(f"({unit})") for unit in WHOLE_UNITS)
    return NumberFormatter(format="0,0" if whole else "0.00", nan_format="–", text_align="right")


class Rows:
    """A DataFrame that grows by appended rows, put together only when it is read (so a
    growing table is not copied on every append)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._parts = [frame.reset_index(drop=True)]
        self._length = len(frame)

    def append(self, frame: pd.DataFrame) -> None:
        self._parts.append(frame)
        self._length += len(frame)

    def __len__(self) -> int:
        return self._length

    @property
    def frame(self) -> pd.DataFrame:
        """All rows, positions 0 to ``len - 1``."""
        if len(self._parts) > 1:
            filled = [p for p in self._parts if len(p)] or self._parts[:1]
            self._parts = [pd.concat(filled, ignore_index=True) if len(filled) > 1
                           else filled[0].reset_index(drop=True)]
        return self._parts[0]


class FrameTable:
    """A DataTable of a DataFrame's columns (``titles``: column name -> heading).

    The Python side keeps the rows (:attr:`frame`) so that filters and selections are
    computed here, and tests can read what the browser shows.
    """

    def __init__(self, titles: Mapping[str, str], kinds: Mapping[str, str], *,
                 widths: Mapping[str, int] | None = None, width: int = 1080,
                 max_height: int = 300) -> None:
        self.titles = dict(titles)
        self.kinds = {c: kinds[c] for c in titles}
        self.max_height = max_height
        self._redraws = itertools.count()
        widths = widths or {}
        self._rows = Rows(pd.DataFrame({c: pd.Series(dtype=_dtype(kinds[c]))
                                        for c in titles}))
        self.source = ColumnDataSource({c: [] for c in titles})
        self.view = CDSView(filter=IndexFilter(indices=[]))
        self._columns = {c: TableColumn(field=c, title=t, formatter=_formatter(t, kinds[c]),
                                        width=widths.get(c, NUMBER_WIDTH if kinds[c] == "f"
                                                         else TEXT_WIDTH))
                         for c, t in titles.items()}
        self.table = DataTable(source=self.source, view=self.view,
                               columns=list(self._columns.values()), width=width,
                               height=self._height(0), index_position=None, sortable=True,
                               selectable=True, fit_columns=False,
                               sizing_mode="stretch_width")  # columns scroll beyond the cell
        self.widget = BokehModel(self.table)

    def set_rows(self, frame: pd.DataFrame) -> None:
        """Show exactly these rows (all of them until :meth:`show_only`).

        The whole table is sent again (the browser redraws it from that state): changes
        that reached no view, e.g. made before the table was displayed, are not lost.
        """
        if frame.empty and not len(self._rows):
            return  # nothing to send (an empty table is ~0.1 s of serialising)
        self._rows = Rows(frame[list(self.titles)])
        self.source.selected.indices = []
        self.source.data = _data(self.frame, self.kinds)
        self.show_only(range(len(self.frame)))
        self.widget.update_from_model(self.table)

    def append(self, frame: pd.DataFrame) -> None:
        """Add rows at the end (streamed: only these rows travel)."""
        if frame.empty:
            return
        rows = frame[list(self.titles)].reset_index(drop=True)
        start = len(self._rows)
        self._rows.append(rows)
        self.source.stream(_data(rows, self.kinds))
        self.show_only([*self.view.filter.indices, *range(start, start + len(rows))])

    def patch(self, column: str, values: Mapping[int, object]) -> None:
        """Change cells of ``column`` (row position -> value); only they travel."""
        self.patch_columns({column: values})

    def patch_row(self, position: int, values: Mapping[str, object]) -> None:
        """Change the cells of one row (column -> value; columns the table lacks are
        ignored) that differ from what it shows; only they travel."""
        current = self.frame.iloc[position]
        self.patch_columns({c: {position: v} for c, v in values.items()
                            if c in self.titles and not _same(current[c], v)})

    def patch_columns(self, changes: Mapping[str, Mapping[int, object]]) -> None:
        """Change cells (column -> row position -> value), sent in one message."""
        changes = {c: values for c, values in changes.items() if values}
        if not changes:
            return
        for column, values in changes.items():
            for position, value in values.items():
                self.frame.iloc[position, self.frame.columns.get_loc(column)] = value
        self.source.patch({c: [(int(p), _cell(v, self.kinds[c])) for p, v in values.items()]
                           for c, values in changes.items()})
        # BokehJS redraws a DataTable when its set of shown rows changes, not on a patch:
        # any change of the table model makes it redraw
        self.table.tags = [next(self._redraws)]

    def show_only(self, positions: Iterable[int]) -> None:
        """Show these rows (positions in :attr:`frame`), hide the others; the table grows
        with its rows up to its largest height."""
        self.view.filter.indices = [int(p) for p in positions]
        self.table.height = self._height(len(self.view.filter.indices))

    def _height(self, n_rows: int) -> int:
        return min(self.max_height, HEADER_PX + ROW_PX * max(n_rows, 1) + SCROLLBAR_PX)

    def show_columns(self, names: Sequence[str]) -> None:
        """Show these columns, in this order."""
        self.table.columns = [self._columns[n] for n in names]

    @property
    def frame(self) -> pd.DataFrame:
        """The rows (positions as in the table's source), every column."""
        return self._rows.frame

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def shown(self) -> pd.DataFrame:
        """The rows and columns shown (before the browser's sorting)."""
        names = [c.field for c in self.table.columns]
        return self.frame.iloc[list(self.view.filter.indices)][names]

    @property
    def selected(self) -> list[int]:
        """Positions of the selected rows."""
        return list(self.source.selected.indices)


def _dtype(kind: str) -> str:
    return "float64" if kind == "f" else "object"


def _cell(value: object, kind: str = "O") -> object:
    """One cell as the source holds it: a float for a number column (NaN when missing),
    else text (empty when missing)."""
    if kind == "f":
        return np.nan if value is None or pd.isna(value) else float(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return "" if value is None or value is pd.NA else str(value)


def _same(shown: object, value: object) -> bool:
    """Whether a cell already shows ``value`` (two missing values are the same)."""
    if pd.isna(shown) or pd.isna(value):
        return bool(pd.isna(shown) and pd.isna(value))
    return bool(shown == value)


def _data(frame: pd.DataFrame, kinds: Mapping[str, str]) -> dict[str, list]:
    """Columns for a ColumnDataSource by their declared kind (never by what the rows at
    hand happen to hold: an empty column must not become a numeric array): numbers as
    floats (NaN stays NaN), anything else as text (missing as an empty string)."""
    out = {}
    for name in frame.columns:
        if kinds[name] == "f":
            numbers = pd.to_numeric(frame[name], errors="coerce")
            out[name] = numbers.to_numpy(dtype=float, copy=True)  # writable: cells get patched
        else:
            out[name] = [_cell(v) for v in frame[name]]
    return out
