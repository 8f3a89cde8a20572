"""Submaximal CPET slopes: VE/VCO2, OUES, ΔVO2/ΔWR, HR/VO2 (gross efficiency: :mod:`.efficiency`).

Data windows
------------
Every measure except ΔVO2/ΔWR uses the *exercise part*
(:func:`cpet_nb.physiology.exercise.exercise_rows`): the rows labelled with one of ``phases``
(default ``EXERCISE`` only, so rest, warm-up and recovery are left out) when the record labels
phases, otherwise the rows with a load or speed above zero, otherwise the whole record. The
ramp for ΔVO2/ΔWR is found in the ``load`` channel itself (:func:`ramp_bounds_s`), which says
where the work rate rises better than a phase label does. It is a cycle-ergometer measure:
when the record has a positive treadmill ``speed``, its ``load`` is a value the cart derived
from speed and body mass, not a measured work rate, and it is NaN.

Regressions are ordinary least squares on time averages over consecutive ``average_s``-second
bins (default 10 s, ``0`` for the rows as given), so that every part of the test counts by
its duration rather than by its number of breaths, and breath noise in the regressor is
reduced. Missing channels, too few points or an unknown threshold give NaN, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..record import CPETRecord
from ._arrays import TestArrays
from .averaging import trailing_mean
from .efficiency import gross_efficiency_peak_pct
from .exercise import EXERCISE_PHASES

#: Default averaging bin (s) before a regression.
AVERAGE_S = 10.0

#: The keys of :func:`slope_measures`, in results-table order.
SLOPE_MEASURES: tuple[str, ...] = (
    "ve_vco2_slope", "ve_vco2_slope_to_vt2", "ve_vco2_at_vt1", "ve_vco2_nadir",
    "oues_ml_min_per_log_l_min", "oues_90pct_ml_min_per_log_l_min",
    "oues_75pct_ml_min_per_log_l_min", "vo2_work_rate_slope_ml_min_w",
    "gross_efficiency_peak_pct", "hr_vo2_slope_bpm_per_l_min",
)

_MIN_POINTS = 3


def ve_vco2_slope(data: pd.DataFrame | TestArrays, *, until_s: float | None = None,
                  phases: Sequence[str] = EXERCISE_PHASES, average_s: float = AVERAGE_S
                  ) -> float:
    """Slope of VE (L/min) on VCO2 (L/min), dimensionless.

    Over the whole exercise portion, the form whose prognostic value Arena et al. (2004)
    established, or up to ``until_s`` (normally VT2, the ventilatory compensation point), the
    form Sun et al. (2002) used: above it VE rises faster than VCO2 and steepens the slope.

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``VE`` and ``VCO2``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    until_s : float, optional
        Last time (s, on the record's ``t`` axis) to include; ``None`` for the whole exercise.
    phases : sequence of str
        See :func:`~cpet_nb.physiology.exercise.exercise_rows`.
    average_s : float
        Averaging bin (s) before the regression; 0 for the rows as given.

    Returns
    -------
    float
        The slope, NaN when VE or VCO2 is missing or fewer than three bins remain.

    References
    ----------
    Arena R, Myers J, Aslam SS, Varughese EB, Peberdy MA (2004). Peak VO2 and VE/VCO2 slope
    in patients with heart failure: a prognostic comparison. Am Heart J 147:354-360.
    Sun XG, Hansen JE, Garatachea N, Storer TW, Wasserman K (2002). Ventilatory efficiency
    during exercise in healthy subjects. Am J Respir Crit Care Med 166:1443-1448.
    """
    arrays = TestArrays.of(data)
    rows = arrays.exercise(phases)
    if until_s is not None:
        rows = _up_to(arrays, rows, until_s)
    bins = _time_averages(arrays, rows, ("VCO2", "VE"), average_s)
    return _slope(bins["VCO2"] / 1000.0, bins["VE"])


def ve_vco2_nadir(data: pd.DataFrame | TestArrays, *, window_s: int = 90,
                  phases: Sequence[str] = EXERCISE_PHASES) -> float:
    """Lowest VE/VCO2 during exercise (Sun et al. 2002).

    VE and VCO2 are put on a 1 s grid (:func:`cpet_nb.grid.resample_1s`) and averaged
    over every complete ``window_s``-second window of the exercise portion; the ratio of the
    two means (L/min over L/min) is taken and its lowest value returned. The window is not
    standardised: 90 s (three consecutive 30 s averages, the default) or 30 s are common.

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``VE`` and ``VCO2``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    window_s : int
        Averaging window (s), at least 1.
    phases : sequence of str
        See :func:`~cpet_nb.physiology.exercise.exercise_rows`.

    Returns
    -------
    float
        The lowest ratio, NaN when a channel is missing or the exercise is shorter than the
        window.

    References
    ----------
    Sun XG, Hansen JE, Garatachea N, Storer TW, Wasserman K (2002). Ventilatory efficiency
    during exercise in healthy subjects. Am J Respir Crit Care Med 166:1443-1448.
    """
    arrays = TestArrays.of(data)
    ratios = _windowed_ve_vco2(arrays, arrays.exercise(phases), window_s)
    return float(ratios.min()) if len(ratios) else float("nan")


def ve_vco2_at(data: pd.DataFrame | TestArrays, time_s: float | None, *,
               window_s: int = 30) -> float:
    """VE/VCO2 averaged over a window centred on a time, e.g. at VT1 (Sun et al. 2002).

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``VE`` and ``VCO2``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    time_s : float or None
        Centre of the window (s, on the record's ``t`` axis); ``None`` or NaN gives NaN.
    window_s : int
        Window length (s).

    Returns
    -------
    float
        Mean VE over mean VCO2 (both L/min) in the window, NaN when unknown.

    References
    ----------
    Sun XG, Hansen JE, Garatachea N, Storer TW, Wasserman K (2002). Ventilatory efficiency
    during exercise in healthy subjects. Am J Respir Crit Care Med 166:1443-1448.
    """
    if time_s is None or not np.isfinite(time_s):
        return float("nan")
    arrays = TestArrays.of(data)
    half = window_s / 2.0
    grid = arrays.grid_1s(arrays.between(time_s - half, time_s + half), ("VE", "VCO2"))
    known = _all_known(grid)
    if not known.any():
        return float("nan")
    return float(_ve_per_vco2(grid["VE"][known].mean(), grid["VCO2"][known].mean()))


def oues(data: pd.DataFrame | TestArrays, *, fraction: float = 1.0,
         phases: Sequence[str] = EXERCISE_PHASES, average_s: float = AVERAGE_S) -> float:
    """Oxygen uptake efficiency slope: ``a`` in VO2 (mL/min) = a·log10(VE, L/min) + b.

    Baba et al. (1996) fitted the whole incremental exercise; Hollenberg & Tager (2000)
    showed that the first 75 % or 90 % of the exercise duration gives nearly the same value,
    which ``fraction`` selects.

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``VO2`` and ``VE``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    fraction : float
        Share of the exercise duration (from its start) to fit, in (0, 1].
    phases : sequence of str
        See :func:`~cpet_nb.physiology.exercise.exercise_rows`.
    average_s : float
        Averaging bin (s) before the regression; 0 for the rows as given.

    Returns
    -------
    float
        OUES in mL/min per log10(L/min), NaN when VO2 or VE is missing.

    References
    ----------
    Baba R, Nagashima M, Goto M, et al. (1996). Oxygen uptake efficiency slope: a new index
    of cardiorespiratory functional reserve derived from the relation between oxygen uptake
    and minute ventilation during incremental exercise. J Am Coll Cardiol 28:1567-1572.
    Hollenberg M, Tager IB (2000). Oxygen uptake efficiency slope: an index of exercise
    performance and cardiopulmonary reserve requiring only submaximal exercise. J Am Coll
    Cardiol 36:194-201.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    arrays = TestArrays.of(data)
    rows = arrays.exercise(phases)
    if rows.stop > rows.start:
        first_s, last_s = arrays.t_s[rows.start], arrays.t_s[rows.stop - 1]
        rows = _up_to(arrays, rows, first_s + fraction * (last_s - first_s))
    bins = _time_averages(arrays, rows, ("VO2", "VE"), average_s)
    positive = bins["VE"] > 0
    return _slope(np.log10(bins["VE"][positive]), bins["VO2"][positive])


def ramp_bounds_s(data: pd.DataFrame | TestArrays, *, max_plateau_s: float = 90.0
                  ) -> tuple[float, float] | None:
    """Start and end (s) of the incremental part of a cycle test, from the ``load`` channel.

    The end is the last row at the highest load. Walking back from there, each earlier change
    of load belongs to the ramp while it is an increase and the load it leads to was held no
    longer than ``max_plateau_s``; the start is the first row at the load reached by the
    earliest such increase. A true ramp, or steps of up to ``max_plateau_s`` (e.g. 1 min
    steps, which behave like a ramp), qualify; a preceding warm-up or longer stages do not.

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t`` and ``load`` (W), or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    max_plateau_s : float
        Longest time (s) a load may be held inside the ramp.

    Returns
    -------
    tuple of float or None
        ``(start_s, end_s)``, or ``None`` without load, without a positive load, or with
        fewer than two increases.
    """
    arrays = TestArrays.of(data)
    if "load" not in arrays.columns:
        return None
    known = np.isfinite(arrays["load"])
    t, load = arrays.t_s[known], arrays["load"][known]
    if not len(load) or load.max() <= 0:
        return None
    end = int(np.flatnonzero(load == load.max())[-1])
    changes = np.flatnonzero(np.diff(load[: end + 1]) != 0) + 1
    accepted = 0
    for k in range(len(changes) - 1, -1, -1):
        change = changes[k]
        held_s = t[changes[k + 1]] - t[change] if k + 1 < len(changes) else 0.0
        if load[change] < load[change - 1] or held_s > max_plateau_s:
            break
        accepted += 1
    if accepted < 2:
        return None
    return float(t[changes[len(changes) - accepted]]), float(t[end])


def vo2_work_rate_slope(data: pd.DataFrame | TestArrays, *, exclude_first_s: float = 45.0,
                        max_plateau_s: float = 90.0, average_s: float = AVERAGE_S) -> float:
    """ΔVO2/ΔWR: slope of VO2 (mL/min) on work rate (W) over the ramp.

    VO2 follows a ramp with a delay (mean response time about 40-70 s; Whipp et al. 1981), so
    VO2(t) against WR(t) is parallel to the steady-state relation once that delay is
    established: the first ``exclude_first_s`` of the ramp (default 0.75 min, about one mean
    response time) are left out, and the fit runs to the end of the ramp
    (:func:`ramp_bounds_s`). Hansen et al. (1984) give 10.3 ± 1.0 mL/min/W for healthy adults;
    Hansen et al. (1988) show that it depends a little on the rate of increment.

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``VO2`` and ``load``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    exclude_first_s : float
        Seconds after the ramp start left out of the fit.
    max_plateau_s : float
        See :func:`ramp_bounds_s`.
    average_s : float
        Averaging bin (s) before the regression; 0 for the rows as given.

    Returns
    -------
    float
        mL/min per W; NaN without a ramp, without VO2, with fewer than three distinct loads or
        on a treadmill (see the module notes).

    References
    ----------
    Whipp BJ, Davis JA, Torres F, Wasserman K (1981). A test to determine parameters of
    aerobic function during exercise. J Appl Physiol 50:217-221.
    Hansen JE, Sue DY, Wasserman K (1984). Predicted values for clinical exercise testing.
    Am Rev Respir Dis 129:S49-S55.
    Hansen JE, Casaburi R, Cooper DM, Wasserman K (1988). Oxygen uptake as related to work
    rate increment during cycle ergometer exercise. Eur J Appl Physiol 57:140-145.
    """
    arrays = TestArrays.of(data)
    bounds = ramp_bounds_s(arrays, max_plateau_s=max_plateau_s)
    if bounds is None or arrays.on_treadmill:
        return float("nan")
    start_s, end_s = bounds
    ramp = arrays.between(start_s + exclude_first_s, end_s)
    bins = _time_averages(arrays, ramp, ("load", "VO2"), average_s)
    if len(np.unique(bins["load"])) < _MIN_POINTS:
        return float("nan")
    return _slope(bins["load"], bins["VO2"])


def hr_vo2_slope(data: pd.DataFrame | TestArrays, *, phases: Sequence[str] = EXERCISE_PHASES,
                 average_s: float = AVERAGE_S) -> float:
    """Slope of heart rate (1/min) on VO2 (L/min) over the exercise portion.

    The HR-VO2 relation of Wasserman's nine-panel display (Sietsema et al. 2020): a steep
    slope means a small stroke volume (or a low haemoglobin or peripheral O2 extraction); a
    shallow one, a large stroke volume or chronotropic incompetence.

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``HR`` and ``VO2``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    phases : sequence of str
        See :func:`~cpet_nb.physiology.exercise.exercise_rows`.
    average_s : float
        Averaging bin (s) before the regression; 0 for the rows as given.

    Returns
    -------
    float
        Beats per minute per L/min, NaN when HR or VO2 is missing.

    References
    ----------
    Sietsema KE, Sue DY, Stringer WW, et al. (2020). Wasserman & Whipp's Principles of
    Exercise Testing and Interpretation, 6th ed. Philadelphia: Wolters Kluwer.
    """
    arrays = TestArrays.of(data)
    bins = _time_averages(arrays, arrays.exercise(phases), ("VO2", "HR"), average_s)
    return _slope(bins["VO2"] / 1000.0, bins["HR"])


def slope_measures(record: CPETRecord, *, vt1_s: float | None = None,
                   vt2_s: float | None = None, phases: Sequence[str] = EXERCISE_PHASES,
                   average_s: float = AVERAGE_S, nadir_window_s: int = 90,
                   exclude_first_s: float = 45.0, equation: str = "brouwer",
                   rer_above_one: str = "cap", arrays: TestArrays | None = None
                   ) -> dict[str, float]:
    """All slope and efficiency measures of one test, keyed with their units.

    Parameters
    ----------
    record : CPETRecord
    vt1_s, vt2_s : float, optional
        Ventilatory thresholds (s, on the record's ``t`` axis); unknown gives NaN for the
        measures that need them.
    phases, average_s
        See :func:`~cpet_nb.physiology.exercise.exercise_rows` and :func:`ve_vco2_slope`.
    nadir_window_s : int
        Window of :func:`ve_vco2_nadir` (s).
    exclude_first_s : float
        See :func:`vo2_work_rate_slope`.
    equation, rer_above_one : str
        See :func:`~cpet_nb.physiology.efficiency.energy_expenditure_w`.
    arrays : TestArrays, optional
        The record's arrays (:class:`~cpet_nb.physiology._arrays.TestArrays`), when the
        caller has them already; made from ``record`` otherwise.

    Returns
    -------
    dict of str to float
        ``ve_vco2_slope`` (whole exercise), ``ve_vco2_slope_to_vt2``, ``ve_vco2_at_vt1``,
        ``ve_vco2_nadir``, ``oues_ml_min_per_log_l_min`` (whole exercise),
        ``oues_90pct_ml_min_per_log_l_min`` and ``oues_75pct_ml_min_per_log_l_min`` (first
        90 % and 75 % of the exercise duration), ``vo2_work_rate_slope_ml_min_w``,
        ``gross_efficiency_peak_pct`` and ``hr_vo2_slope_bpm_per_l_min``; NaN where unknown.
    """
    data = arrays if arrays is not None else TestArrays.of(record)
    fits = {"phases": phases, "average_s": average_s}
    energy = {"equation": equation, "rer_above_one": rer_above_one}
    known_vt2 = vt2_s is not None and np.isfinite(vt2_s)
    return {
        "ve_vco2_slope": ve_vco2_slope(data, **fits),
        "ve_vco2_slope_to_vt2": (ve_vco2_slope(data, until_s=vt2_s, **fits)
                                 if known_vt2 else float("nan")),
        "ve_vco2_at_vt1": ve_vco2_at(data, vt1_s),
        "ve_vco2_nadir": ve_vco2_nadir(data, window_s=nadir_window_s, phases=phases),
        "oues_ml_min_per_log_l_min": oues(data, **fits),
        "oues_90pct_ml_min_per_log_l_min": oues(data, fraction=0.9, **fits),
        "oues_75pct_ml_min_per_log_l_min": oues(data, fraction=0.75, **fits),
        "vo2_work_rate_slope_ml_min_w": vo2_work_rate_slope(
            data, exclude_first_s=exclude_first_s, average_s=average_s),
        "gross_efficiency_peak_pct": gross_efficiency_peak_pct(data, phases=phases, **energy),
        "hr_vo2_slope_bpm_per_l_min": hr_vo2_slope(data, **fits),
    }


def _time_averages(arrays: TestArrays, rows: slice, columns: tuple[str, ...],
                   average_s: float) -> dict[str, np.ndarray]:
    """Means of ``columns`` over consecutive ``average_s`` bins from the first of ``rows``
    (the rows themselves when ``average_s`` is 0); bins missing any column are dropped. An
    absent column gives empty arrays."""
    if any(c not in arrays.columns for c in columns):
        return {c: np.empty(0) for c in ("t", *columns)}
    if average_s > 0 and rows.stop > rows.start:
        values = arrays.time_bins(rows, columns, average_s, float(arrays.t_s[rows.start]))
    else:
        values = {"t": arrays.t_s[rows], **{c: arrays[c][rows] for c in columns}}
    known = _all_known(values)
    return {name: v[known] for name, v in values.items()}


def _all_known(columns: dict[str, np.ndarray]) -> np.ndarray:
    """Rows where none of ``columns`` is NaN (what ``DataFrame.dropna`` keeps)."""
    return np.logical_and.reduce([~np.isnan(v) for v in columns.values()])


def _up_to(arrays: TestArrays, rows: slice, last_s: float) -> slice:
    """The ones of ``rows`` timed at or before ``last_s`` (none when it is NaN)."""
    stop = rows.start if math.isnan(last_s) else int(np.searchsorted(arrays.t_s, last_s,
                                                                     "right"))
    return slice(rows.start, max(rows.start, min(rows.stop, stop)))


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x; NaN with fewer than three points or constant x."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < _MIN_POINTS or np.ptp(x) == 0:
        return float("nan")
    dx = x - x.mean()
    return float(np.dot(dx, y - y.mean()) / np.dot(dx, dx))


def _ve_per_vco2(ve_l_min, vco2_ml_min):
    """Ventilatory equivalent for CO2: VE (L/min) over VCO2 converted to L/min."""
    return ve_l_min / (vco2_ml_min / 1000.0)


def _windowed_ve_vco2(arrays: TestArrays, rows: slice, window_s: int) -> np.ndarray:
    """VE/VCO2 from the means of VE and VCO2 over every complete ``window_s`` window of a
    1 s grid of ``rows``; empty when a channel is missing or the rows are too short."""
    if window_s < 1:
        raise ValueError("window_s must be at least 1")
    grid = arrays.grid_1s(rows, ("VE", "VCO2"))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = _ve_per_vco2(trailing_mean(grid["VE"], window_s),
                              trailing_mean(grid["VCO2"], window_s))
    return ratios[~np.isnan(ratios)]
