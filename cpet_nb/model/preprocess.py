"""From a canonical record to the model's input: 1 s grid, scaling, windows.

Conventions follow pyoxynet's inference so that thresholds are identical:

* the 1 s grid has one row per whole second that holds samples, each row the mean of the
  samples in that second (time included, so a row's ``t`` is the mean sample time), and
  seconds without samples linearly interpolated between their neighbours
  (what ``DataFrame.resample('1s').mean().interpolate()`` does);
* each model channel is scaled to [0, 1] by its minimum and maximum over the whole test;
* window *k* holds grid rows ``k+1 ... k+40`` for ``k = 0 ... n-42`` (the first and the
  last row are never the start/end of a window) and is labelled with time ``t[k+1] + 40``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from ..findings import CPETError, Finding, Severity
from ..record import MODEL_CHANNELS
from . import N_PAST_POINTS

#: Channels carried onto the 1 s grid (model channels plus HR for values at thresholds).
GRID_CHANNELS: tuple[str, ...] = MODEL_CHANNELS + ("HR",)


def resample_1s(data: pd.DataFrame, channels: tuple[str, ...] = GRID_CHANNELS) -> pd.DataFrame:
    """Average samples into whole seconds and interpolate empty seconds.

    Parameters
    ----------
    data : pandas.DataFrame
        Canonical data with ``t`` (s) strictly increasing.
    channels : tuple of str
        Columns to carry (absent ones are skipped).

    Returns
    -------
    pandas.DataFrame
        ``t`` and the channels, one row per second from ``floor(t[0])`` to ``floor(t[-1])``.
        Missing values are averaged over what is present; a gap is interpolated only between
        two values, never extrapolated past the first or last one.
    """
    t = data["t"].to_numpy(dtype=float)
    second = np.floor(t)
    index = (second - second[0]).astype(np.int64)  # relative first: no overflow at t > 9e18 s
    n = int(index[-1]) + 1
    columns = ["t"] + [c for c in channels if c in data]
    out = {}
    for column in columns:
        values = data[column].to_numpy(dtype=float)
        present = np.isfinite(values)
        sums = np.bincount(index[present], weights=values[present], minlength=n)
        counts = np.bincount(index[present], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / counts
        out[column] = _interpolate_inside(mean)
    return pd.DataFrame(out)


def _interpolate_inside(values: np.ndarray) -> np.ndarray:
    """Linear interpolation (by position) of NaNs that lie between two finite values."""
    finite = np.isfinite(values)
    if finite.all() or not finite.any():
        return values
    positions = np.arange(len(values))
    first, last = positions[finite][0], positions[finite][-1]
    filled = values.copy()
    inside = ~finite & (positions > first) & (positions < last)
    filled[inside] = np.interp(positions[inside], positions[finite], values[finite])
    return filled


def trim_to_complete(grid: pd.DataFrame, channels: tuple[str, ...], file: str
                     ) -> tuple[pd.DataFrame, list[Finding]]:
    """Drop leading/trailing seconds where a model channel is missing, with a finding."""
    complete = grid[list(channels)].notna().all(axis=1).to_numpy()
    if complete.all():
        return grid, []
    if not complete.any():
        raise CPETError(Finding("missing-channel", Severity.ERROR,
                                "no second has all of " + ", ".join(channels), file=file))
    rows = np.flatnonzero(complete)
    trimmed = grid.iloc[rows[0]: rows[-1] + 1].reset_index(drop=True)
    findings = [Finding(
        "gaps-trimmed", Severity.WARNING,
        f"{len(grid) - len(trimmed)} second(s) at the start or end lack a model channel and "
        f"were left out of the model's input ({rows[0]} at the start)", file=file)]
    return trimmed, findings


def minmax_scale(values: np.ndarray, names: tuple[str, ...], file: str) -> np.ndarray:
    """Scale each column to [0, 1] by its minimum and maximum over the whole test.

    Raises
    ------
    CPETError
        ``constant-channel`` when a column never changes (the scaling is undefined).
    """
    low = values.min(axis=0)
    span = values.max(axis=0) - low
    constant = [name for name, s in zip(names, span, strict=True) if not s > 0]
    if constant:
        raise CPETError(Finding(
            "constant-channel", Severity.ERROR,
            f"{', '.join(constant)} never change(s) over the test, so the model's per-test "
            "scaling is undefined", file=file, column=constant[0]))
    return (values - low) / span


def model_windows(scaled: np.ndarray) -> np.ndarray:
    """The model's input windows over a scaled 1 s grid, pyoxynet's convention.

    Parameters
    ----------
    scaled : numpy.ndarray
        Shape ``[n, 5]``.

    Returns
    -------
    numpy.ndarray
        Shape ``[n - 41, 40, 5]``, float32: window *k* holds rows ``k+1 ... k+40``.
    """
    n = len(scaled)
    if n < N_PAST_POINTS + 2:
        return np.empty((0, N_PAST_POINTS, scaled.shape[1]), dtype=np.float32)
    views = sliding_window_view(scaled, N_PAST_POINTS, axis=0)  # [n-39, 5, 40]
    return np.ascontiguousarray(views[1: n - N_PAST_POINTS].transpose(0, 2, 1), dtype=np.float32)
