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

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..findings import CPETError, Finding, Severity
from ..record import MODEL_CHANNELS
from . import N_PAST_POINTS

#: Channels carried onto the 1 s grid (model channels plus HR for values at thresholds).
GRID_CHANNELS: tuple[str, ...] = MODEL_CHANNELS + ("HR",)


def trim_to_complete(grid: pd.DataFrame, channels: tuple[str, ...], file: str
                     ) -> tuple[pd.DataFrame, list[Finding]]:
    """Drop leading/trailing seconds where a model channel is missing, with a finding
    (:func:`complete_rows`)."""
    rows, findings = complete_rows({c: grid[c].to_numpy(dtype=float) for c in channels}, file)
    if not findings:
        return grid, []
    return grid.iloc[rows].reset_index(drop=True), findings


def complete_rows(columns: Mapping[str, np.ndarray], file: str
                  ) -> tuple[slice, list[Finding]]:
    """The seconds of a 1 s grid from the first to the last that has every one of
    ``columns``, and a ``gaps-trimmed`` finding when that leaves some out.

    Parameters
    ----------
    columns : mapping of str to numpy.ndarray
        The model channels on the grid, by name, all of the same length.
    file : str
        Named in the findings.

    Raises
    ------
    CPETError
        ``missing-channel`` when no second has them all.
    """
    complete = np.logical_and.reduce([~np.isnan(values) for values in columns.values()])
    if complete.all():
        return slice(0, len(complete)), []
    if not complete.any():
        raise CPETError(Finding("missing-channel", Severity.ERROR,
                                "no second has all of " + ", ".join(columns), file=file))
    rows = np.flatnonzero(complete)
    first, last = int(rows[0]), int(rows[-1])
    findings = [Finding(
        "gaps-trimmed", Severity.WARNING,
        f"{len(complete) - (last + 1 - first)} second(s) at the start or end lack a model "
        f"channel and were left out of the model's input ({first} at the start)", file=file)]
    return slice(first, last + 1), findings


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


def model_rows(scaled: np.ndarray) -> np.ndarray:
    """The rows the model's windows are made of, pyoxynet's convention: every row of a
    scaled 1 s grid but the first and the last.

    Parameters
    ----------
    scaled : numpy.ndarray
        Shape ``[n, 5]``.

    Returns
    -------
    numpy.ndarray
        Shape ``[n - 2, 5]``, float32 (``[0, 5]`` when the grid has no window): window *k*
        holds its rows ``k ... k+39``, grid rows ``k+1 ... k+40``.
    """
    n = len(scaled)
    if n < N_PAST_POINTS + 2:
        return np.empty((0, scaled.shape[1]), dtype=np.float32)
    return np.ascontiguousarray(scaled[1: n - 1], dtype=np.float32)
