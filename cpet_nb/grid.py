"""The 1 s grid that the model and the physiology share.

Each row is one whole second that holds samples, the mean of the samples in that second (time
included, so a row's ``t`` is the mean sample time); seconds without samples are linearly
interpolated between their neighbours (what pandas'
``DataFrame.resample('1s').mean().interpolate()`` does, as pyoxynet's inference).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def resample_1s(data: pd.DataFrame, channels: tuple[str, ...]) -> pd.DataFrame:
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
    columns = ["t"] + [c for c in channels if c in data]
    return pd.DataFrame(resample_1s_arrays(
        data["t"].to_numpy(dtype=float), {c: data[c].to_numpy(dtype=float) for c in columns}))


def resample_1s_arrays(t_s: np.ndarray, columns: Mapping[str, np.ndarray]
                       ) -> dict[str, np.ndarray]:
    """:func:`resample_1s` on arrays: each of ``columns`` (``t`` among them, for the grid's
    times) averaged into the whole seconds of ``t_s`` and interpolated inside gaps.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing, at least one.
    columns : mapping of str to numpy.ndarray
        Float values at ``t_s`` by name.

    Returns
    -------
    dict of str to numpy.ndarray
        The same names, one value per second from ``floor(t_s[0])`` to ``floor(t_s[-1])``.
    """
    second = np.floor(t_s)
    index = (second - second[0]).astype(np.int64)  # relative first: no overflow at t > 9e18 s
    n = int(index[-1]) + 1
    out = {}
    for column, values in columns.items():
        present = np.isfinite(values)
        sums = np.bincount(index[present], weights=values[present], minlength=n)
        counts = np.bincount(index[present], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = sums / counts
        out[column] = _interpolate_inside(mean)
    return out


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


def on_1s_grid(frame: pd.DataFrame, channels: tuple[str, ...]) -> pd.DataFrame:
    """``channels`` of ``frame`` on the 1 s grid (:func:`resample_1s`); an empty frame with
    those columns when ``frame`` is empty or lacks a channel."""
    if not len(frame) or any(c not in frame for c in channels):
        return pd.DataFrame(columns=["t", *channels], dtype=float)
    return resample_1s(frame, channels)


def snap_to_grid(time_s: float, t_s: np.ndarray) -> float | None:
    """The second of the 1 s grid of a recording (:func:`resample_1s`) nearest ``time_s``.

    Parameters
    ----------
    time_s : float
        A time (s), e.g. where a reviewer clicked on a plot.
    t_s : numpy.ndarray
        The recording's sample times (s), increasing.

    Returns
    -------
    float or None
        A whole second from ``floor(t_s[0])`` to ``floor(t_s[-1])``; None when ``time_s`` is
        not finite or lies outside the recording (before its first or after its last sample).

    Examples
    --------
    >>> snap_to_grid(301.6, np.array([0.4, 150.0, 600.2]))
    302.0
    >>> snap_to_grid(600.2, np.array([0.4, 150.0, 600.2])), snap_to_grid(601.0, np.array([0.4]))
    (600.0, None)
    """
    if not len(t_s) or not np.isfinite(time_s) or not t_s[0] <= time_s <= t_s[-1]:
        return None
    first, last = np.floor(t_s[0]), np.floor(t_s[-1])
    return float(min(max(np.floor(time_s + 0.5), first), last))
