"""A test's data as float arrays, prepared once and shared by every physiology method.

The measures, slopes, efficiency and classical thresholds all read the same few things from a
test: the times, a handful of channels, the exercise part (:mod:`.exercise`), its time bins
and its 1 s grid. Read from a ``DataFrame`` each time, those small reads cost far more than
the arithmetic on them (a column lookup or a ``dropna`` on a 60-row frame takes tens of
microseconds). :class:`TestArrays` converts every column once and keeps what is derived from
them (the exercise rows, the bins, the grids) so that each is computed once per test,
whichever method asks first. Pandas stays at the edges: the reader's frame comes in, the
results table goes out.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

import numpy as np
import pandas as pd

from ..grid import resample_1s_arrays
from ..record import CPETRecord
from .averaging import time_bin_arrays
from .exercise import EXERCISE_PHASES, exercise_bouts_s, exercise_span_s, on_treadmill

_T = TypeVar("_T")


@dataclass(eq=False)
class TestArrays:
    """One test's canonical data as float arrays, with what is derived from them, cached.

    Build it with :meth:`of`; it must not outlive a change of the data it was made from.

    Attributes
    ----------
    data : pandas.DataFrame
        The canonical data (:attr:`cpet_nb.record.CPETRecord.data`) it was made from.
    t_s : numpy.ndarray
        Each row's time (s), increasing.
    columns : dict of str to numpy.ndarray
        Every numeric column of ``data`` but ``t``, as float (NaN where missing).
    """

    __test__ = False  # not a pytest test class, whatever its name

    data: pd.DataFrame
    t_s: np.ndarray
    columns: dict[str, np.ndarray]
    _cache: dict[Hashable, object] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, source: CPETRecord | pd.DataFrame | TestArrays) -> TestArrays:
        """The arrays of a record or of its canonical data (``source`` itself if it is
        already arrays)."""
        if isinstance(source, TestArrays):
            return source
        data = source.data if isinstance(source, CPETRecord) else source
        columns = {name: data[name].to_numpy(dtype=float) for name in data.columns
                   if name not in ("t", "phase")}
        return cls(data, data["t"].to_numpy(dtype=float), columns)

    def __len__(self) -> int:
        return len(self.t_s)

    def __contains__(self, name: str) -> bool:
        """Whether the data have column ``name`` (``"t"`` and ``"phase"`` included)."""
        return name in self.columns or name in self.data

    def __getitem__(self, name: str) -> np.ndarray:
        """Column ``name`` as floats (``"t"``: the times)."""
        return self.t_s if name == "t" else self.columns[name]

    def channel(self, name: str) -> np.ndarray:
        """Column ``name`` as floats, all NaN when the data lack it."""
        if name in self.columns:
            return self.columns[name]
        return self.cached(("absent",), lambda: np.full(len(self), np.nan))

    def has(self, name: str) -> bool:
        """Whether the data have column ``name`` with at least one value."""
        return self.cached(("has", name), lambda: name in self.columns
                           and bool(np.isfinite(self.columns[name]).any()))

    def cached(self, key: Hashable, make: Callable[[], _T]) -> _T:
        """``make()``, computed on the first call with ``key`` and kept."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]  # type: ignore[return-value]

    def exercise_span_s(self, phases: Sequence[str] = EXERCISE_PHASES) -> tuple[float, float]:
        """:func:`~cpet_nb.physiology.exercise.exercise_span_s` of the data."""
        return self.cached(("span", tuple(phases)), lambda: exercise_span_s(self.data, phases))

    def exercise(self, phases: Sequence[str] = EXERCISE_PHASES) -> slice:
        """The rows of :func:`~cpet_nb.physiology.exercise.exercise_rows` (a slice)."""
        def rows() -> slice:
            start, end = self.exercise_span_s(phases)
            if not np.isfinite(start):
                return slice(0, 0)
            return slice(int(np.searchsorted(self.t_s, start, "left")),
                         int(np.searchsorted(self.t_s, end, "right")))

        return self.cached(("exercise", tuple(phases)), rows)

    def exercise_bouts_s(self, phases: Sequence[str] = EXERCISE_PHASES
                         ) -> list[tuple[float, float]]:
        """:func:`~cpet_nb.physiology.exercise.exercise_bouts_s` of the data."""
        return self.cached(("bouts", tuple(phases)), lambda: exercise_bouts_s(self.data, phases))

    @cached_property
    def on_treadmill(self) -> bool:
        """:func:`~cpet_nb.physiology.exercise.on_treadmill` of the data."""
        return on_treadmill(self.data)

    def between(self, low_s: float, high_s: float) -> slice:
        """The rows timed in the closed interval ``[low_s, high_s]`` (a slice)."""
        return slice(int(np.searchsorted(self.t_s, low_s, "left")),
                     int(np.searchsorted(self.t_s, high_s, "right")))

    def time_bins(self, rows: slice, names: Sequence[str], bin_s: float, start_s: float
                  ) -> dict[str, np.ndarray]:
        """:func:`~cpet_nb.physiology.averaging.time_bin_arrays` of columns ``names`` over
        ``rows`` (kept for the next caller with the same arguments)."""
        key = ("bins", rows.start, rows.stop, tuple(names), bin_s, start_s)
        return self.cached(key, lambda: time_bin_arrays(
            self.t_s[rows], {n: self.columns[n][rows] for n in names}, bin_s, start_s))

    def grid_1s(self, rows: slice, names: Sequence[str]) -> dict[str, np.ndarray]:
        """``t`` and columns ``names`` of ``rows`` on the 1 s grid
        (:func:`~cpet_nb.grid.resample_1s_arrays`); empty arrays when there are no rows or a
        column is absent, as :func:`~cpet_nb.grid.on_1s_grid`."""
        def grid() -> dict[str, np.ndarray]:
            if rows.stop <= rows.start or any(n not in self.columns for n in names):
                return {n: np.empty(0) for n in ("t", *names)}
            return resample_1s_arrays(self.t_s[rows], {"t": self.t_s[rows],
                                                       **{n: self.columns[n][rows]
                                                          for n in names}})

        return self.cached(("grid", rows.start, rows.stop, tuple(names)), grid)
