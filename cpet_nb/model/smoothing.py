"""Smoothing used on the model's outputs and on the values read at a threshold.

``scipy.linalg`` is imported on first use: processes that import cpet_nb but never smooth (a
batch's dask workers and its client) then spare its import (~0.2 s of CPU on the critical
path of a cold start) and its 17 MiB.
"""

from __future__ import annotations

import numpy as np


def optimal_filter(t: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    """First-order penalised least-squares smoother on an uneven grid.

    Returns the ``x`` that minimises

    .. math:: \\sum_i h_i (x_i - y_i)^2 + \\lambda \\sum_i (x_{i+1} - x_i)^2 / \\Delta t_i

    where :math:`h_i` is half the span of the neighbouring steps (the trapezoid weight of
    sample *i*), i.e. a discrete :math:`\\int (x-y)^2 dt + \\lambda \\int \\dot x^2 dt`
    (Whittaker-Henderson smoothing of order 1, with time-aware weights). This is the
    quantity pyoxynet's ``utilities.optimal_filter`` computes with Python loops (its
    tridiagonal solve in the slopes); here it is one banded Cholesky solve, O(n).

    Parameters
    ----------
    t : numpy.ndarray
        Sample times (s), strictly increasing, at least two.
    y : numpy.ndarray
        Values at ``t``; must be finite. Shape ``[n]``, or ``[n, k]`` for ``k`` series at the
        same times, each smoothed on its own (one factorisation for all: the same numbers
        as ``k`` calls).
    lam : float
        Smoothing weight :math:`\\lambda` (s²); pyoxynet uses 100.

    Returns
    -------
    numpy.ndarray
        Smoothed values, float64, the shape of ``y``.
    """
    from scipy.linalg import solveh_banded  # on first use: see the module's docstring

    t = np.asarray(t, dtype=float)
    y = np.asarray(y, dtype=float)
    if t.ndim != 1 or len(t) < 2 or y.ndim not in (1, 2) or len(y) != len(t):
        raise ValueError("t must be a 1-D array of at least 2 times and y have one row (or "
                         "value) per time")
    dt = np.diff(t)
    if np.any(dt <= 0):
        raise ValueError("t must be strictly increasing")
    h = 0.5 * np.concatenate(([dt[0]], t[2:] - t[:-2], [dt[-1]]))
    w = lam / dt
    # symmetric tridiagonal matrix diag(h) + lam * D' diag(1/dt) D, in upper banded form
    banded = np.zeros((2, len(t)))
    banded[1] = h
    banded[1, :-1] += w
    banded[1, 1:] += w
    banded[0, 1:] = -w
    return solveh_banded(banded, (h if y.ndim == 1 else h[:, None]) * y)
