"""Standard CPET measures computed from the canonical record."""

from __future__ import annotations

import numpy as np

#: Default averaging window for VO2peak (s).
VO2PEAK_WINDOW_S = 30


def vo2peak_ml_min(t_s: np.ndarray, vo2_ml_min: np.ndarray, window_s: int = VO2PEAK_WINDOW_S
                   ) -> float:
    """Peak oxygen uptake as the highest moving time average.

    The breath-by-breath (or averaged) VO2 is linearly interpolated to whole seconds and
    averaged over a moving window of ``window_s`` seconds; the peak is the largest average
    over complete windows. This is the ``tm_N`` strategy of Nolte et al. (2023), the
    most common choice reviewed by Martin-Rincon & Calbet (2020); Robergs et al. (2010)
    discuss why the window must be stated.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing.
    vo2_ml_min : numpy.ndarray
        VO2 (mL/min); missing values are skipped.
    window_s : int
        Averaging window (s), 1 or more.

    Returns
    -------
    float
        VO2peak (mL/min), NaN when the test is shorter than the window or has no VO2.

    References
    ----------
    Nolte S, Rein R, Quittmann OJ (2023). Data processing strategies to determine maximum
    oxygen uptake: a systematic scoping review and experimental comparison with guidelines
    for reporting. Sports Med 53:2463-2475.
    Martin-Rincon M, Calbet JAL (2020). Progress update and challenges on VO2max testing and
    interpretation. Front Physiol 11:1070.
    Robergs RA, Dwyer D, Astorino T (2010). Recommendations for improved data processing
    from expired gas analysis indirect calorimetry. Sports Med 40:95-111.
    """
    if window_s < 1:
        raise ValueError("window_s must be at least 1")
    t = np.asarray(t_s, dtype=float)
    vo2 = np.asarray(vo2_ml_min, dtype=float)
    keep = np.isfinite(t) & np.isfinite(vo2)
    t, vo2 = t[keep], vo2[keep]
    if len(t) < 2:
        return float("nan")
    grid = np.arange(np.ceil(t[0]), np.floor(t[-1]) + 1)
    if len(grid) < window_s:
        return float("nan")
    per_second = np.interp(grid, t, vo2)
    csum = np.concatenate(([0.0], np.cumsum(per_second)))
    means = (csum[window_s:] - csum[:-window_s]) / window_s
    return float(means.max())
