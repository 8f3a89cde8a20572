"""Averaging strategies for peak gas-exchange values (VO2max / VO2peak).

Breath-by-breath data are too noisy to take a maximum from single breaths, and the
averaging strategy changes the result by several percent (Nolte et al. 2023). Three
strategies are offered, named as in that study:

``"breath-moving"`` (``bm_N``)
    Centred moving average over ``N`` consecutive breaths.
``"time-moving"`` (``tm_N``)
    Linear interpolation to whole seconds, then a centred moving average over ``N`` s.
``"time-binned"`` (``tb_N``)
    Linear interpolation to whole seconds, then means of consecutive ``N`` s bins.

These follow the implementation the study used, the ``spiro`` R package version 0.0.4
(``spiro(file) |> spiro_max(N)`` and ``spiro_max("Nb")``; Nolte 2023) and the binned-average
function of the study's analysis script, and reproduce its published VO2max values for
every strategy (``tests/test_averaging.py``):

- the interpolation grid is every whole second inside the recording (``spiro``'s grid
  ``1, 2, ..., round(t_last)`` leaves the seconds outside it missing);
- moving averages count only complete windows; for an even window the average is
  placed on the sample just before the window's midpoint (more of the window lies
  forward in time, as R's ``stats::filter(sides = 2)``);
- bins start at the test start, ``t = 0``: bin ``k`` averages the seconds in
  ``(kN, (k + 1)N]``; incomplete bins (at the end of the recording) do not count, as the
  study describes (its script instead counted the seconds without data as zeros:
  ``partial_bins="zero-fill"`` reproduces its published values);
- samples with a missing value are dropped before averaging (for breath averages
  ``spiro`` 0.0.4 instead let a missing breath void every window holding it), and
  nothing is pre-filtered;
- the maximum is taken over the whole recording, recovery included.
  :func:`peak_average` can instead average only the data inside an interval (e.g. the
  exercise phase) with ``within_s``.

References
----------
Nolte S, Rein R, Quittmann OJ (2023). Data processing strategies to determine maximum
oxygen uptake: a systematic scoping review and experimental comparison with guidelines for
reporting. Sports Med 53:2463-2475.
Nolte S (2023). spiro: an R package for analyzing data from cardiopulmonary exercise
testing. J Open Source Softw 8:5089.
Robergs RA, Dwyer D, Astorino T (2010). Recommendations for improved data processing from
expired gas analysis indirect calorimetry. Sports Med 40:95-111.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import check_choice

#: Averaging strategies understood by :func:`averages` and :func:`peak_average`.
METHODS: tuple[str, ...] = ("time-moving", "time-binned", "breath-moving")
#: Treatments of incomplete bins in :func:`binned_time_average`.
PARTIAL_BINS: tuple[str, ...] = ("drop", "zero-fill")


def moving_breath_average(values: np.ndarray, n_breaths: int) -> np.ndarray:
    """Centred moving average over ``n_breaths`` consecutive breaths (``bm_N``).

    Parameters
    ----------
    values : numpy.ndarray
        One value per breath, in time order.
    n_breaths : int
        Breaths per average, 1 or more.

    Returns
    -------
    numpy.ndarray
        Same length as ``values``. Element ``i`` is the mean of the window centred on
        breath ``i``; for an even window, breaths ``i - n/2 + 1 ... i + n/2``. NaN where the
        window runs past either end, and wherever it holds a missing value.

    References
    ----------
    Nolte S, Rein R, Quittmann OJ (2023). Sports Med 53:2463-2475 (strategy ``bm_N``).
    """
    _check_window(n_breaths, "n_breaths")
    return _centred_mean(np.asarray(values, dtype=float), n_breaths)


def moving_time_average(t_s: np.ndarray, values: np.ndarray, window_s: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Centred moving average over ``window_s`` seconds of 1 s interpolated data (``tm_N``).

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing where finite.
    values : numpy.ndarray
        Values at ``t_s``; samples with a missing time or value are dropped and the gap
        interpolated.
    window_s : int
        Window length (s), 1 or more.

    Returns
    -------
    grid_t_s : numpy.ndarray
        Every whole second from the first to the last sample.
    means : numpy.ndarray
        Average of the window centred on each grid second (for an even window, seconds
        ``s - N/2 + 1 ... s + N/2``); NaN where the window runs past the recording.

    References
    ----------
    Nolte S, Rein R, Quittmann OJ (2023). Sports Med 53:2463-2475 (strategy ``tm_N``).
    """
    _check_window(window_s, "window_s")
    grid_t_s, per_second = one_second_grid(t_s, values)
    return grid_t_s, _centred_mean(per_second, window_s)


def binned_time_average(t_s: np.ndarray, values: np.ndarray, bin_s: int, *,
                        anchor_s: float = 0.0, partial_bins: str = "drop"
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Means of consecutive ``bin_s`` second bins of 1 s interpolated data (``tb_N``).

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing where finite.
    values : numpy.ndarray
        Values at ``t_s``; samples with a missing time or value are dropped and the gap
        interpolated.
    bin_s : int
        Bin length (s), 1 or more.
    anchor_s : float
        A bin boundary (s). Bins are ``(anchor_s + k * bin_s, anchor_s + (k + 1) * bin_s]``.
        The default, the test start, is the usual output of cart software and the choice of
        Nolte et al. (2023); some authors bin backwards from the end of exercise (pass that
        time).
    partial_bins : {"drop", "zero-fill"}
        What to do with incomplete bins (at the ends of the recording). ``"drop"`` (default)
        gives them NaN, as Nolte et al. (2023) describe their method. ``"zero-fill"`` counts
        the seconds without data as 0, i.e. divides the bin's sum by ``bin_s``: what their
        analysis script computes (and what reproduces its published values), a mean biased
        low that can nevertheless be the maximum at the end of a test.

    Returns
    -------
    bin_t_s : numpy.ndarray
        Midpoint of each bin (s) that holds at least one grid second.
    means : numpy.ndarray
        Mean of each bin; for incomplete bins (fewer than ``bin_s`` seconds of data) NaN or
        zero-filled, following ``partial_bins``.

    References
    ----------
    Nolte S, Rein R, Quittmann OJ (2023). Sports Med 53:2463-2475 (strategy ``tb_N``).
    """
    _check_window(bin_s, "bin_s")
    check_choice(partial_bins, PARTIAL_BINS, "partial_bins")
    grid_t_s, per_second = one_second_grid(t_s, values)
    if len(grid_t_s) == 0:
        return np.empty(0), np.empty(0)
    bin_number = np.ceil((grid_t_s - anchor_s) / bin_s).astype(int) - 1
    first = bin_number[0]
    counts = np.bincount(bin_number - first)
    sums = np.bincount(bin_number - first, weights=per_second)
    complete = (counts == bin_s) | (partial_bins == "zero-fill")
    means = np.where(complete, sums / bin_s, np.nan)
    bin_t_s = anchor_s + (first + np.arange(len(counts)) + 0.5) * bin_s
    return bin_t_s, means


def time_bin_means(frame: pd.DataFrame, columns: Sequence[str], bin_s: float,
                   start_s: float) -> pd.DataFrame:
    """Means over consecutive ``bin_s``-second bins from ``start_s`` (rows before it dropped).

    Each column's mean skips its missing values (NaN when a bin has none); ``t`` is the mean
    time of the rows in the bin. One row per bin that holds a row, in time order. This is
    the binning before a regression (:mod:`cpet_nb.physiology.slopes`,
    :mod:`cpet_nb.physiology.thresholds`).

    Parameters
    ----------
    frame : pandas.DataFrame
        Canonical data with ``t`` (s) and ``columns``.
    columns : sequence of str
    bin_s : float
        Bin width (s), positive.
    start_s : float
        Start of the first bin (s).

    Returns
    -------
    pandas.DataFrame
        Columns ``t`` and ``columns``.
    """
    return pd.DataFrame(time_bin_arrays(
        frame["t"].to_numpy(dtype=float), {c: frame[c].to_numpy(dtype=float) for c in columns},
        bin_s, start_s))


def time_bin_arrays(t_s: np.ndarray, columns: Mapping[str, np.ndarray], bin_s: float,
                    start_s: float) -> dict[str, np.ndarray]:
    """:func:`time_bin_means` on arrays: ``t`` and each of ``columns`` by bin.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s).
    columns : mapping of str to numpy.ndarray
        Float values at ``t_s`` by name.
    bin_s : float
        Bin width (s), positive.
    start_s : float
        Start of the first bin (s).

    Returns
    -------
    dict of str to numpy.ndarray
        ``t`` (mean time of the samples in each bin) and the names of ``columns``, one value
        per bin that holds a sample; empty arrays when none does.
    """
    if not bin_s > 0:
        raise ValueError(f"bin_s must be positive, got {bin_s!r}")
    kept = t_s >= start_s
    index = np.floor((t_s[kept] - start_s) / bin_s).astype(np.int64)
    if not len(index):
        return {name: np.empty(0) for name in ("t", *columns)}
    if np.all(index[1:] >= index[:-1]):  # times in order, as in a record: no sort needed
        new_bin = np.concatenate(([True], index[1:] != index[:-1]))
        used, index = index[new_bin], np.cumsum(new_bin) - 1
    else:
        used, index = np.unique(index, return_inverse=True)
    out = {"t": np.bincount(index, weights=t_s[kept]) / np.bincount(index)}
    for column, all_values in columns.items():
        values = all_values[kept]
        known = np.isfinite(values)
        counts = np.bincount(index, weights=known, minlength=len(used))
        sums = np.bincount(index, weights=np.where(known, values, 0.0), minlength=len(used))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[column] = np.where(counts > 0, sums / counts, np.nan)
    return out


def one_second_grid(t_s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation to every whole second inside the recording.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing where finite.
    values : numpy.ndarray
        Values at ``t_s``; samples with a missing time or value are dropped first.

    Returns
    -------
    grid_t_s, per_second : numpy.ndarray
        Whole seconds from ``ceil(first time)`` to ``floor(last time)`` and the interpolated
        values; both empty with fewer than two samples.
    """
    t, v = finite_samples(t_s, values)
    if len(t) < 2:
        return np.empty(0), np.empty(0)
    grid_t_s = np.arange(np.ceil(t[0]), np.floor(t[-1]) + 1.0)
    return grid_t_s, np.interp(grid_t_s, t, v)


def finite_samples(t_s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The samples whose time and value are both finite.

    Raises
    ------
    ValueError
        When the arrays differ in shape or are not 1-D, or the remaining times are not
        strictly increasing.
    """
    t = np.asarray(t_s, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"t_s and values must be 1-D and of equal length, got shapes "
                         f"{t.shape} and {v.shape}")
    keep = np.isfinite(t) & np.isfinite(v)
    t, v = t[keep], v[keep]
    if np.any(np.diff(t) <= 0):
        raise ValueError("t_s must be strictly increasing")
    return t, v


def averages(t_s: np.ndarray, values: np.ndarray, *, method: str = "time-moving",
             window: int = 30, partial_bins: str = "drop") -> tuple[np.ndarray, np.ndarray]:
    """Averages of one channel by a named strategy, with the time each is centred on.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing where finite.
    values : numpy.ndarray
        Values at ``t_s``; samples with a missing time or value are dropped.
    method : {"time-moving", "time-binned", "breath-moving"}
        Averaging strategy (see the module docstring).
    window : int
        Window length: seconds for the time strategies, breaths for ``"breath-moving"``;
        1 or more (Nolte et al. 2023 compared 5 to 60).
    partial_bins : {"drop", "zero-fill"}
        Incomplete bins for ``"time-binned"`` (see :func:`binned_time_average`).

    Returns
    -------
    centre_t_s, means : numpy.ndarray
        Time each average is centred on (s) and the averages (NaN where incomplete).
    """
    check_choice(method, METHODS, "method")
    _check_window(window, "window")
    check_choice(partial_bins, PARTIAL_BINS, "partial_bins")
    if method == "breath-moving":
        t, v = finite_samples(t_s, values)
        return t, moving_breath_average(v, window)
    if method == "time-moving":
        return moving_time_average(t_s, values, window)
    return binned_time_average(t_s, values, window, partial_bins=partial_bins)


def peak_average(t_s: np.ndarray, values: np.ndarray, *, method: str = "time-moving",
                 window: int = 30, within_s: tuple[float, float] | None = None,
                 partial_bins: str = "drop") -> float:
    """Highest average of a channel (e.g. VO2max) under one averaging strategy.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing where finite.
    values : numpy.ndarray
        Values at ``t_s`` (any unit; the result has the same unit).
    method : {"time-moving", "time-binned", "breath-moving"}
        Averaging strategy (see the module docstring).
    window : int
        Seconds for the time strategies, breaths for ``"breath-moving"``; 1 or more.
    within_s : (float, float), optional
        Average only the samples timed in this closed interval (s), e.g. the exercise
        phase, so that no average mixes in rest or recovery. ``None`` (default) uses the
        whole recording, as Nolte et al. (2023).
    partial_bins : {"drop", "zero-fill"}
        Incomplete bins for ``"time-binned"`` (see :func:`binned_time_average`);
        ``"zero-fill"`` reproduces the published ``tb_N`` values of Nolte et al. (2023).

    Returns
    -------
    float
        The highest complete average; NaN when there is none (too little data for the
        window, nothing finite, or nothing in ``within_s``).

    References
    ----------
    Nolte S, Rein R, Quittmann OJ (2023). Data processing strategies to determine maximum
    oxygen uptake: a systematic scoping review and experimental comparison with guidelines
    for reporting. Sports Med 53:2463-2475.
    """
    t, v = finite_samples(t_s, values)
    if within_s is not None:
        inside = (t >= within_s[0]) & (t <= within_s[1])
        t, v = t[inside], v[inside]
    _, means = averages(t, v, method=method, window=window, partial_bins=partial_bins)
    return highest_finite(means)


def highest_finite(values: np.ndarray) -> float:
    """Largest finite value (NaN and infinities ignored); NaN when there is none."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.max()) if len(v) else float("nan")


def _centred_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of each ``n``-sample window, placed on its centre sample (NaN where incomplete)."""
    return _placed_window_means(x, n, (n - 1) // 2)


def trailing_mean(x: np.ndarray, n: int) -> np.ndarray:
    """Mean of each ``n``-sample window, placed on its last sample (NaN where incomplete, or
    where the window holds a NaN): ``Series.rolling(n).mean()`` on arrays."""
    return _placed_window_means(x, n, n - 1)


def _placed_window_means(x: np.ndarray, n: int, offset: int) -> np.ndarray:
    """Mean of each complete ``n``-sample window of ``x``, at ``offset`` samples after the
    window's first; NaN elsewhere."""
    out = np.full(len(x), np.nan)
    if len(x) >= n:
        out[offset:offset + len(x) - n + 1] = sliding_window_view(x, n).mean(axis=1)
    return out


def _check_window(window: object, name: str) -> None:
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < 1:
        raise ValueError(f"{name} must be an integer of at least 1, got {window!r}")

