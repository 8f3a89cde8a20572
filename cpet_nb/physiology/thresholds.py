"""Classical ventilatory thresholds: V-slope, ventilatory equivalents and end-tidal gases.

Each method returns a :class:`ThresholdEstimate`: its time and VO2, or NaN and the reason it
could not estimate (a missing channel, too little data, no breakpoint of the expected shape).

Every method works on the same prepared data (:func:`exercise_bins`):

1. the exercise portion: rows whose ``phase`` is ``EXERCISE`` (from the first to the last
   such row) when the record says so, otherwise every row;
2. without its first ``skip_start_s`` seconds, where the VCO2 response lags VO2 while CO2
   stores fill (Beaver et al. 1986 leave out this early, non-linear part);
3. averaged over consecutive ``bin_s``-second bins (time averaging, as recommended by
   Robergs et al. 2010, rather than breath counts).

The bins are made once per test and shared by every method: pass the test's
:class:`~cpet_nb.physiology._arrays.TestArrays` (a record or its data are converted first).

Breakpoints are found by one shared fit (:func:`hinge_fit`): an exhaustive search over every
candidate breakpoint of a continuous two-segment ("broken stick") least-squares regression,
keeping the one with the smallest residual sum of squares, with at least ``min_segment_s``
seconds of bins on each side. This is a documented simplification of Beaver's V-slope
algorithm (two independent regressions whose intersection is the threshold): forcing the two
lines to meet makes the intersection the breakpoint itself. The shape each method expects
(rising, falling, a slope increase of a minimum size) is checked after the fit.

The same search gives the precision of each breakpoint at no extra cost: every candidate
whose residual sum of squares exceeds the best by less than an F-test's critical increase
belongs to the breakpoint's confidence set (the profile-likelihood interval of a two-phase
regression's change point; Hudson 1966, Lerman 1980, Muggeo 2003). Each estimate carries that
interval in s (:attr:`ThresholdEstimate.interval_s`; a fit against VO2 or VCO2 converts its
ends to times as it does the breakpoint). The bins are
serially correlated, so the nominal 95 % is optimistic; the interval is used as a relative
measure of how well the data fix the breakpoint
(:mod:`cpet_nb.physiology.uncertainty`).

VT1 methods search before the respiratory compensation point, and VT2 methods after VT1,
as the methods are defined (Wasserman et al.'s isocapnic buffering between the two);
:func:`classical_thresholds` chains them that way, and starts each search only once VO2 has
reached a fraction of its peak (:func:`vo2_fraction_s`), so that the transient of an
unlabelled step from rest or a warm-up is not taken for a threshold.

Defaults that the literature leaves open (bins of 10 s, 60 s skipped and at least 60 s on
each side of a breakpoint, plateau fits for the ventilatory equivalents and PetO2 but a
sloping first segment for PetCO2, search floors at 50 % and 65 % of peak VO2) were chosen
on the odd-numbered half of pyoxynet's labelled tests; ``docs/accuracy.md`` has the figures
on the other half.

References
----------
Beaver WL, Wasserman K, Whipp BJ (1986). A new method for detecting anaerobic threshold by
gas exchange. J Appl Physiol 60:2020-2027.
Gaskill SE, Ruby BC, Walker AJ, Sanchez OA, Serfass RC, Leon AS (2001). Validity and
reliability of combining three methods to determine ventilatory threshold. Med Sci Sports
Exerc 33:1841-1848.
Whipp BJ, Davis JA, Wasserman K (1989). Ventilatory control of the 'isocapnic buffering'
region in rapidly-incremental exercise. Respir Physiol 76:357-367.
Wasserman K, Hansen JE, Sue DY, Stringer WW, Whipp BJ (2005). Principles of Exercise Testing
and Interpretation, 4th ed. Lippincott Williams & Wilkins (chapter 4: the anaerobic threshold
by ventilatory equivalents and end-tidal pressures).
Robergs RA, Dwyer D, Astorino T (2010). Recommendations for improved data processing from
expired gas analysis indirect calorimetry. Sports Med 40:95-111.
Hudson DJ (1966). Fitting segmented curves whose join points have to be estimated. J Am Stat
Assoc 61:1097-1129.
Lerman PM (1980). Fitting segmented regression models by grid search. J R Stat Soc C (Appl
Stat) 29:77-84.
Muggeo VMR (2003). Estimating regression models with unknown break-points. Stat Med
22:3055-3071.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import fdtri

from ..record import CPETRecord
from ._arrays import TestArrays

#: The keys of :func:`classical_thresholds`, in results-table order.
CLASSICAL_METHODS: tuple[str, ...] = ("vt1_vslope", "vt1_equivalents", "vt1_peto2",
                                      "vt2_equivalents", "vt2_petco2", "vt2_vslope")

#: Channels averaged into bins (the others are not used by any classical method).
BIN_CHANNELS: tuple[str, ...] = ("VO2", "VCO2", "VE", "PetO2", "PetCO2")
#: Confidence level of a breakpoint's interval (:func:`hinge_fit`).
BREAKPOINT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class ThresholdEstimate:
    """One method's estimate of one threshold.

    Attributes
    ----------
    method : str
        The method's name (e.g. ``"vslope"``).
    threshold : str
        ``"VT1"`` or ``"VT2"``.
    time_s : float
        Time of the threshold (s, the record's clock); NaN when not estimated.
    vo2_ml_min : float
        VO2 at the threshold (mL/min); NaN when not estimated or VO2 is missing.
    reason : str or None
        Why there is no estimate; ``None`` when there is one.
    time_low_s, time_high_s : float
        The breakpoint's confidence interval in time (s; :func:`hinge_fit`); NaN without an
        estimate.
    """

    method: str
    threshold: str
    time_s: float
    vo2_ml_min: float
    reason: str | None = None
    time_low_s: float = math.nan
    time_high_s: float = math.nan

    @property
    def found(self) -> bool:
        """Whether the method gave an estimate."""
        return self.reason is None

    @property
    def interval_s(self) -> float:
        """Width of the breakpoint's confidence interval (s): how precisely the data fix this
        estimate; NaN without one."""
        return self.time_high_s - self.time_low_s


@dataclass(frozen=True)
class Preparation:
    """How the data are prepared for every method (see the module docstring).

    Attributes
    ----------
    bin_s : float
        Width of the averaging bins (s).
    skip_start_s : float
        Seconds left out at the start of exercise.
    min_segment_s : float
        Least data (s of bins) on each side of a breakpoint.
    """

    bin_s: float = 10.0
    skip_start_s: float = 60.0
    min_segment_s: float = 60.0

    @property
    def min_points(self) -> int:
        """Least number of bins on each side of a breakpoint (at least 3)."""
        return max(3, math.ceil(self.min_segment_s / self.bin_s))


@dataclass(frozen=True)
class Hinge:
    """The best continuous two-segment fit of ``y`` against ``x`` (:func:`hinge_fit`).

    Attributes
    ----------
    x : float
        The breakpoint, in units of ``x``.
    slope_below, slope_above : float
        Slopes of ``y`` against ``x`` on each side (units of y per unit of x).
    x_low, x_high : float
        The smallest and largest candidate breakpoints in its confidence set (units of
        ``x``): those whose residual sum of squares exceeds the best by less than
        ``F(1, n - p; confidence)`` times the residual variance (Lerman 1980).
    """

    x: float
    slope_below: float
    slope_above: float
    x_low: float = math.nan
    x_high: float = math.nan


def hinge_fit(x: np.ndarray, y: np.ndarray, min_points: int, *, flat_below: bool = False,
              confidence: float = BREAKPOINT_CONFIDENCE) -> Hinge:
    """Continuous two-segment least-squares regression by exhaustive search.

    Fits ``y = a + b x + c max(x - x0, 0)`` for every sample ``x0`` that leaves at least
    ``min_points`` samples on each side, and keeps the ``x0`` with the smallest residual sum of
    squares (the broken-stick model; Beaver et al. 1986 use two separate lines, see the module
    docstring). With ``flat_below`` the first segment is level (``b = 0``): a plateau, then
    a change. Every candidate's normal equations come from running sums
    (:func:`_hinge_normal_equations`), so the search takes O(n) memory and O(n log n) time.

    The breakpoint's confidence set comes from the same residual sums (:func:`_confidence_set`):
    the profile-likelihood interval of Hudson (1966) and Lerman (1980), see the module
    docstring.

    Parameters
    ----------
    x, y : numpy.ndarray
        Finite values, same length, at least ``2 * min_points``.
    min_points : int
        Least number of samples on each side of the breakpoint.
    flat_below : bool
        Fit a plateau below the breakpoint instead of a sloping line.
    confidence : float
        Confidence level of the breakpoint's interval.

    Returns
    -------
    Hinge
    """
    order = np.argsort(x, kind="stable")
    x_mean, x_scale = float(np.mean(x)), float(np.std(x)) or 1.0
    y_mean, y_scale = float(np.mean(y)), float(np.std(y)) or 1.0
    xs = (np.asarray(x, dtype=float)[order] - x_mean) / x_scale
    ys = (np.asarray(y, dtype=float)[order] - y_mean) / y_scale
    candidates = xs[min_points - 1: len(xs) - min_points]
    normal, rhs = _hinge_normal_equations(xs, ys, candidates, flat_below)
    usable = normal[:, -1, -1] > 1e-12 * len(xs)  # the hinge column is not all zero
    if not flat_below:  # nor x - x0 on every sample (all those below x0 tie with it)
        usable &= candidates > xs[0]
    coef = np.full_like(rhs, np.nan)
    coef[usable] = np.linalg.solve(normal[usable], rhs[usable][..., None])[..., 0]
    rss = np.where(usable, ys @ ys - np.einsum("ki,ki->k", coef, rhs), np.inf)
    best = int(np.argmin(rss))
    slope = y_scale / x_scale
    below = 0.0 if flat_below else float(coef[best, 1] * slope)
    low, high = _confidence_set(rss, candidates, len(xs), rhs.shape[1] + 1, confidence)
    return Hinge(x=float(candidates[best] * x_scale + x_mean), slope_below=below,
                 slope_above=below + float(coef[best, -1] * slope),
                 x_low=low * x_scale + x_mean, x_high=high * x_scale + x_mean)


def _confidence_set(rss: np.ndarray, candidates: np.ndarray, n: int, parameters: int,
                    confidence: float) -> tuple[float, float]:
    """Least and greatest candidate whose residual sum of squares is within the F-test's
    critical increase of the smallest: ``rss <= min (1 + F(1, n - p; confidence) / (n - p))``
    with ``p`` parameters, the breakpoint included (Lerman 1980). A perfect fit (zero
    residual) gives the best candidate alone."""
    dof = n - parameters
    best = float(np.min(rss))
    if dof < 1 or not math.isfinite(best):
        return math.nan, math.nan
    inside = candidates[rss <= max(best, 0.0) * (1.0 + float(fdtri(1, dof, confidence)) / dof)]
    return float(inside.min()), float(inside.max())


def _hinge_normal_equations(xs: np.ndarray, ys: np.ndarray, candidates: np.ndarray,
                            flat_below: bool) -> tuple[np.ndarray, np.ndarray]:
    """Normal equations of ``y = a [+ b x] + c h`` with ``h = max(x - x0, 0)``, for every
    candidate ``x0``: matrices ``[k, p, p]`` and right-hand sides ``[k, p]`` (``p`` = 2 or 3).

    ``xs`` is sorted, so the samples with ``h > 0`` are those after ``x0`` in it, and the sums
    with ``h`` are suffix sums of ``x``, ``x²``, ``y`` and ``xy`` there: for instance
    ``Σ h² = Σ x² - 2 x0 Σ x + x0² m`` over the ``m`` samples above ``x0``. The suffix sums
    are accumulated from the end, so that the short ones are exact. O(n + k) memory.
    """
    above = np.searchsorted(xs, candidates, side="right")  # first sample with h > 0

    def suffix_sum(values: np.ndarray) -> np.ndarray:
        return np.append(np.cumsum(values[::-1])[::-1], 0.0)[above]

    x0 = candidates
    count = (len(xs) - above).astype(float)
    sum_x, sum_xx = suffix_sum(xs), suffix_sum(xs * xs)
    sum_y, sum_xy = suffix_sum(ys), suffix_sum(xs * ys)
    h = sum_x - x0 * count
    hh = sum_xx - 2.0 * x0 * sum_x + x0 * x0 * count
    hx = sum_xx - x0 * sum_x
    hy = sum_xy - x0 * sum_y

    def constant(value: float) -> np.ndarray:
        return np.full(len(x0), value)

    n, ones_y = constant(float(len(xs))), constant(float(ys.sum()))
    if flat_below:
        rows, rhs = [[n, h], [h, hh]], [ones_y, hy]
    else:
        ones_x, xx = constant(float(xs.sum())), constant(float(xs @ xs))
        rows = [[n, ones_x, h], [ones_x, xx, hx], [h, hx, hh]]
        rhs = [ones_y, constant(float(xs @ ys)), hy]
    return np.stack([np.stack(row, axis=-1) for row in rows], axis=-2), np.stack(rhs, axis=-1)


def exercise_bins(source: CPETRecord | pd.DataFrame | TestArrays,
                  prep: Preparation | None = None) -> pd.DataFrame:
    """The exercise portion, without its start, averaged in time bins.

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
        A record, its canonical data, or their arrays.
    prep : Preparation, optional
        Bin width and start skipped; defaults to :class:`Preparation()`.

    Returns
    -------
    pandas.DataFrame
        ``t`` (s, the mean time of the samples in each bin) and the mean of each of
        :data:`BIN_CHANNELS` present (NaN where a bin has none), one row per non-empty bin.
    """
    return pd.DataFrame(_bins(TestArrays.of(source), prep or Preparation()))


def _bins(arrays: TestArrays, prep: Preparation) -> dict[str, np.ndarray]:
    """:func:`exercise_bins` as arrays (made once per test and preparation)."""
    rows = arrays.exercise()
    names = [c for c in BIN_CHANNELS if c in arrays]
    if rows.stop <= rows.start:
        return {name: np.empty(0) for name in ("t", *names)}
    start_s = float(arrays.t_s[rows.start]) + prep.skip_start_s
    return arrays.time_bins(rows, names, prep.bin_s, start_s)


#: A method's search: prepared bins in, the estimate's fields (:func:`_located`) or a reason out.
_Locate = Callable[[dict[str, np.ndarray], Preparation], "dict[str, float] | str"]


def _estimate(method: str, threshold: str, source: CPETRecord | pd.DataFrame | TestArrays,
              prep: Preparation | None, channels: tuple[str, ...], after_s: float,
              before_s: float, locate: _Locate) -> ThresholdEstimate:
    """Prepare the data, check channels and amount, then run ``locate`` in the window."""
    def failed(reason: str) -> ThresholdEstimate:
        return ThresholdEstimate(method, threshold, math.nan, math.nan, reason)

    arrays = TestArrays.of(source)
    missing = [c for c in channels if not arrays.has(c)]
    if missing:
        return failed(f"missing channel {', '.join(missing)}")
    prep = prep or Preparation()
    bins = _bins(arrays, prep)
    kept = _in_window(bins["t"], after_s, before_s)
    for channel in channels:
        kept &= np.isfinite(bins[channel])
    bins = {name: values[kept] for name, values in bins.items()}
    if len(bins["t"]) < 2 * prep.min_points:
        window = " and ".join(text for text, bound in ((f"after {after_s:.0f} s", after_s),
                                                        (f"before {before_s:.0f} s", before_s))
                              if not math.isnan(bound))
        return failed(f"too few points after {prep.skip_start_s / 60:g} min of exercise"
                      f"{f' ({window})' if window else ''}: {len(bins['t'])} bins of "
                      f"{prep.bin_s:g} s, need {2 * prep.min_points}")
    located = locate(bins, prep)
    if isinstance(located, str):
        return failed(located)
    return ThresholdEstimate(method, threshold, **located)


def _located(bins: dict[str, np.ndarray], fit: Hinge, channel: str | None = None
             ) -> dict[str, float]:
    """The fields of an estimate at ``fit``'s breakpoint, with its interval in time.

    With ``channel`` None the fit was against time; otherwise against that binned channel,
    and each time is the first bin where the channel (running maximum) reaches the value.
    VO2 is the breakpoint itself for a fit against VO2, else binned VO2 at its time.
    """
    values = (fit.x, fit.x_low, fit.x_high)
    time_s, low_s, high_s = (values if channel is None
                             else tuple(_time_at(bins, channel, v) for v in values))
    vo2_ml_min = fit.x if channel == "VO2" else _vo2_at(bins, time_s)
    return {"time_s": time_s, "vo2_ml_min": vo2_ml_min, "time_low_s": low_s,
            "time_high_s": high_s}


def _in_window(time_s: np.ndarray, after_s: float, before_s: float) -> np.ndarray:
    """Whether each time lies strictly between ``after_s`` and ``before_s`` (NaN: no limit)."""
    after = -math.inf if math.isnan(after_s) else after_s
    before = math.inf if math.isnan(before_s) else before_s
    return (time_s > after) & (time_s < before)


def _vo2_at(bins: dict[str, np.ndarray], time_s: float) -> float:
    """Binned VO2 interpolated at ``time_s`` (NaN without VO2)."""
    known = np.isfinite(bins["VO2"]) if "VO2" in bins else np.zeros(0, dtype=bool)
    if not known.any():
        return math.nan
    return float(np.interp(time_s, bins["t"][known], bins["VO2"][known]))


def vo2_at(source: CPETRecord | pd.DataFrame | TestArrays, time_s: float,
           prep: Preparation | None = None) -> float:
    """VO2 at ``time_s`` as every classical method gives it at its breakpoint: the binned
    exercise VO2 (:func:`exercise_bins`) interpolated at that time.

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
        A record, its canonical data, or its arrays.
    time_s : float
        Time from the start of the recording (s).
    prep : Preparation, optional
        Bin width and start skipped; defaults to :class:`Preparation()`, as the methods.

    Returns
    -------
    float
        VO2 (mL/min); NaN without VO2, or outside the bins (before the first bin's time,
        in the rest and the skipped start of exercise, or after the last one's): there is
        nothing to interpolate between, and no value is extrapolated.
    """
    arrays = TestArrays.of(source)
    if "VO2" not in arrays or not math.isfinite(time_s):
        return math.nan
    bins = _bins(arrays, prep or Preparation())
    times = bins["t"][np.isfinite(bins["VO2"])]
    if not len(times) or not times[0] <= time_s <= times[-1]:
        return math.nan
    return _vo2_at(bins, time_s)


def _time_at(bins: dict[str, np.ndarray], column: str, value: float) -> float:
    """First bin time at which the running maximum of ``column`` reaches ``value``."""
    reached = np.maximum.accumulate(bins[column]) >= value
    return float(bins["t"][np.argmax(reached)])


def _time_breakpoint(bins: dict[str, np.ndarray], values: np.ndarray, prep: Preparation,
                     rising: bool, plateau: bool, label: str) -> dict[str, float] | str:
    """Breakpoint in time of ``values`` that starts a rise (or a fall): the estimate's fields
    (:func:`_located`) or why not.

    A rise needs a positive slope after the breakpoint, steeper than before; a fall the mirror.
    With ``plateau`` the values are level before the breakpoint (:func:`hinge_fit`).
    """
    fit = hinge_fit(bins["t"], values, prep.min_points, flat_below=plateau)
    sign = 1.0 if rising else -1.0
    if not (sign * fit.slope_above > 0 and sign * (fit.slope_above - fit.slope_below) > 0):
        shape = "rise" if rising else "fall"
        return (f"no breakpoint: {label} does not {shape} after its best breakpoint "
                f"(slopes {fit.slope_below * 60:.3g} then {fit.slope_above * 60:.3g} per min)")
    return _located(bins, fit)


def vslope_vt1(source: CPETRecord | pd.DataFrame | TestArrays, *,
               prep: Preparation | None = None,
               after_s: float = math.nan, before_s: float = math.nan,
               min_slope_change: float = 0.1) -> ThresholdEstimate:
    """VT1 by the V-slope method: the breakpoint of VCO2 against VO2.

    Beaver, Wasserman & Whipp (1986), J Appl Physiol 60:2020-2027: below the threshold VCO2
    rises with VO2 at a slope near 1; above it, bicarbonate buffering of lactic acid adds CO2
    and the slope steepens. Here the breakpoint is the best continuous two-segment fit
    (:func:`hinge_fit`) of binned VCO2 against binned VO2; it counts only when the slope
    increases by at least ``min_slope_change`` (0.1, the minimum change usually attributed
    to Beaver et al.'s algorithm).

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
        A record, its canonical data, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`, made once per test).
    prep : Preparation, optional
        Binning and exclusions (:class:`Preparation`).
    after_s, before_s : float
        Search only bins after / before these times (s); NaN: no limit. ``before_s`` is
        normally the respiratory compensation point, above which hyperventilation steepens
        VCO2 further (Beaver et al. excluded that part).
    min_slope_change : float
        Least increase of the VCO2-VO2 slope (dimensionless).

    Returns
    -------
    ThresholdEstimate
        VO2 is the breakpoint itself; the time is the first bin where VO2 (running maximum)
        reaches it.
    """
    def locate(bins: dict[str, np.ndarray], prep: Preparation) -> dict[str, float] | str:
        fit = hinge_fit(bins["VO2"], bins["VCO2"], prep.min_points)
        change = fit.slope_above - fit.slope_below
        if not change >= min_slope_change:
            return (f"no breakpoint: VCO2-VO2 slope changes by {change:.2f} "
                    f"(from {fit.slope_below:.2f}), less than {min_slope_change:g}")
        return _located(bins, fit, "VO2")

    return _estimate("vslope", "VT1", source, prep, ("VO2", "VCO2"), after_s, before_s, locate)


def equivalents_vt1(source: CPETRecord | pd.DataFrame | TestArrays, *,
                    prep: Preparation | None = None,
                    after_s: float = math.nan, before_s: float | None = None,
                    plateau: bool = True) -> ThresholdEstimate:
    """VT1 by the ventilatory equivalents: VE/VO2 starts rising while VE/VCO2 does not.

    Wasserman et al. (2005); Gaskill et al. (2001), Med Sci Sports Exerc 33:1841-1848. The
    breakpoint where binned VE/VO2 turns upward (:func:`hinge_fit` against time, rising after
    and steeper than before), searched before VE/VCO2 starts rising, so that VE/VCO2 is flat
    or falling over the search.

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
    prep : Preparation, optional
    after_s : float
        Start of the search (s); NaN: no limit.
    before_s : float, optional
        End of the search (s). ``None`` (default): where VE/VCO2 starts rising after
        ``after_s`` (:func:`equivalents_vt2`; no limit when it finds none). NaN: no limit.
    plateau : bool
        VE/VO2 level before the breakpoint (``hinge_fit(..., flat_below=True)``); ``False``
        lets it slope.
    """
    def locate(bins: dict[str, np.ndarray], prep: Preparation) -> dict[str, float] | str:
        ratio = bins["VE"] * 1000.0 / bins["VO2"]
        return _time_breakpoint(bins, ratio, prep, True, plateau, "VE/VO2")

    limit = _vco2_rise_s(source, prep, after_s) if before_s is None else before_s
    return _estimate("equivalents", "VT1", source, prep, ("VE", "VO2"), after_s, limit, locate)


def peto2_vt1(source: CPETRecord | pd.DataFrame | TestArrays, *,
              prep: Preparation | None = None,
              after_s: float = math.nan, before_s: float | None = None,
              plateau: bool = True) -> ThresholdEstimate:
    """VT1 at the end of the PetO2 nadir, where end-tidal O2 starts rising.

    Wasserman et al. (2005), Whipp et al. (1989): at VT1 PetO2 rises from its nadir while
    PetCO2 has not yet fallen. The breakpoint where binned PetO2 turns upward
    (:func:`hinge_fit` against time), searched before VE/VCO2 starts rising (when PetCO2
    starts to fall), as in :func:`equivalents_vt1`.

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
    prep : Preparation, optional
    after_s, before_s : float
        As in :func:`equivalents_vt1`.
    plateau : bool
        PetO2 level before the breakpoint; ``False`` lets it slope.
    """
    def locate(bins: dict[str, np.ndarray], prep: Preparation) -> dict[str, float] | str:
        return _time_breakpoint(bins, bins["PetO2"], prep, True, plateau, "PetO2")

    limit = _vco2_rise_s(source, prep, after_s) if before_s is None else before_s
    return _estimate("peto2", "VT1", source, prep, ("PetO2",), after_s, limit, locate)


def equivalents_vt2(source: CPETRecord | pd.DataFrame | TestArrays, *,
                    prep: Preparation | None = None,
                    after_s: float = math.nan, plateau: bool = True) -> ThresholdEstimate:
    """VT2 (respiratory compensation point) where VE/VCO2 starts rising from its nadir.

    Wasserman et al. (2005); Whipp et al. (1989): above the respiratory compensation point
    ventilation outpaces CO2 output. The breakpoint where binned VE/VCO2 turns upward
    (:func:`hinge_fit` against time, rising after and steeper than before).

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
    prep : Preparation, optional
    after_s : float
        Search only after this time (s), normally VT1. NaN: no limit.
    plateau : bool
        VE/VCO2 level before the breakpoint; ``False`` lets it slope.
    """
    def locate(bins: dict[str, np.ndarray], prep: Preparation) -> dict[str, float] | str:
        ratio = bins["VE"] * 1000.0 / bins["VCO2"]
        return _time_breakpoint(bins, ratio, prep, True, plateau, "VE/VCO2")

    return _estimate("equivalents", "VT2", source, prep, ("VE", "VCO2"), after_s, math.nan,
                     locate)


def petco2_vt2(source: CPETRecord | pd.DataFrame | TestArrays, *,
               prep: Preparation | None = None,
               after_s: float = math.nan, plateau: bool = False) -> ThresholdEstimate:
    """VT2 where PetCO2 starts falling from its plateau.

    Whipp et al. (1989), Wasserman et al. (2005): respiratory compensation for the metabolic
    acidosis lowers end-tidal CO2. The breakpoint where binned PetCO2 turns downward
    (:func:`hinge_fit` against time, falling after and steeper than before).

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
    prep : Preparation, optional
    after_s : float
        Search only after this time (s), normally VT1. NaN: no limit.
    plateau : bool
        PetCO2 level before the breakpoint. ``False`` (default) lets it slope: PetCO2 often
        still rises through the isocapnic buffering region.
    """
    def locate(bins: dict[str, np.ndarray], prep: Preparation) -> dict[str, float] | str:
        return _time_breakpoint(bins, bins["PetCO2"], prep, False, plateau, "PetCO2")

    return _estimate("petco2", "VT2", source, prep, ("PetCO2",), after_s, math.nan, locate)


def vslope_vt2(source: CPETRecord | pd.DataFrame | TestArrays, *,
               prep: Preparation | None = None,
               after_s: float = math.nan, min_slope_ratio: float = 1.1) -> ThresholdEstimate:
    """VT2 by the V-slope of VE against VCO2: the second breakpoint.

    Beaver et al. (1986) and Whipp et al. (1989): VE rises in proportion to VCO2 through
    the isocapnic buffering region and more steeply above the respiratory compensation
    point. The breakpoint is the best continuous two-segment fit (:func:`hinge_fit`) of
    binned VE against binned VCO2; it counts only when the slope above is at least
    ``min_slope_ratio`` times the slope below.

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
    prep : Preparation, optional
    after_s : float
        Search only after this time (s), normally VT1. NaN: no limit.
    min_slope_ratio : float
        Least ratio of the VE-VCO2 slopes above and below the breakpoint.

    Returns
    -------
    ThresholdEstimate
        The time is the first bin where VCO2 (running maximum) reaches the breakpoint; VO2
        is binned VO2 at that time.
    """
    def locate(bins: dict[str, np.ndarray], prep: Preparation) -> dict[str, float] | str:
        fit = hinge_fit(bins["VCO2"], bins["VE"], prep.min_points)
        if not fit.slope_above >= min_slope_ratio * fit.slope_below:
            return (f"no breakpoint: VE-VCO2 slope goes from {fit.slope_below * 1000:.1f} to "
                    f"{fit.slope_above * 1000:.1f}, less than {min_slope_ratio:g} times")
        return _located(bins, fit, "VCO2")

    return _estimate("vslope", "VT2", source, prep, ("VE", "VCO2"), after_s, math.nan, locate)


def _vco2_rise_s(source: CPETRecord | pd.DataFrame | TestArrays, prep: Preparation | None,
                 after_s: float) -> float:
    """Time VE/VCO2 starts rising after ``after_s`` (NaN when not found)."""
    return equivalents_vt2(source, prep=prep, after_s=after_s).time_s


def vo2_fraction_s(source: CPETRecord | pd.DataFrame | TestArrays, fraction: float,
                   prep: Preparation | None = None) -> float:
    """First time binned VO2 reaches ``fraction`` of its highest bin.

    A search floor for the thresholds: the anaerobic threshold normally lies above 40 % of
    VO2max (Wasserman et al. 2005) and the respiratory compensation point higher still,
    while a warm-up or an unlabelled step from rest gives VCO2-lag and hyperventilation
    breakpoints at low VO2.

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
    fraction : float
        Fraction of the highest binned VO2; 0 or less means no floor.
    prep : Preparation, optional

    Returns
    -------
    float
        Time (s); NaN without VO2 or when ``fraction <= 0``.
    """
    bins = _bins(TestArrays.of(source), prep or Preparation())
    known = np.isfinite(bins["VO2"]) if "VO2" in bins else np.zeros(0, dtype=bool)
    if fraction <= 0 or not known.any():
        return math.nan
    known_bins = {"t": bins["t"][known], "VO2": bins["VO2"][known]}
    return _time_at(known_bins, "VO2", fraction * float(known_bins["VO2"].max()))


def classical_thresholds(source: CPETRecord | pd.DataFrame | TestArrays, *, bin_s: float = 10.0,
                         skip_start_s: float = 60.0, min_segment_s: float = 60.0,
                         vt1_min_vo2_fraction: float = 0.5, vt2_min_vo2_fraction: float = 0.65,
                         vslope_before_rcp: bool = True) -> dict[str, ThresholdEstimate]:
    """Every classical VT1 and VT2 method on one test, VT2 searched after VT1.

    VT1 methods search from where VO2 first reaches ``vt1_min_vo2_fraction`` of its peak
    (:func:`vo2_fraction_s`) to where VE/VCO2 then starts rising. VT2 methods search after
    the median time of the VT1 estimates found (the start of the VT1 search when none is)
    and after VO2 reaches ``vt2_min_vo2_fraction`` of its peak. The default fractions were
    chosen on the odd-numbered half of pyoxynet's labelled tests (``docs/accuracy.md``).

    Parameters
    ----------
    source : CPETRecord, pandas.DataFrame or TestArrays
        A record, its canonical data, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`, made once per test).
    bin_s, skip_start_s, min_segment_s : float
        See :class:`Preparation`.
    vt1_min_vo2_fraction, vt2_min_vo2_fraction : float
        Search floors as fractions of peak VO2; 0 for none.
    vslope_before_rcp : bool
        Search the V-slope VT1 before the VE/VCO2 rise, as Beaver et al. (1986) excluded
        the respiratory compensation region; ``False`` searches to the end of the test.

    Returns
    -------
    dict of str to ThresholdEstimate
        Keys ``vt1_vslope``, ``vt1_equivalents``, ``vt1_peto2``, ``vt2_equivalents``,
        ``vt2_petco2``, ``vt2_vslope``.
    """
    prep = Preparation(bin_s=bin_s, skip_start_s=skip_start_s, min_segment_s=min_segment_s)
    source = TestArrays.of(source)
    start_s = vo2_fraction_s(source, vt1_min_vo2_fraction, prep)
    rcp_s = _vco2_rise_s(source, prep, start_s)
    if _in_window(_bins(source, prep)["t"], start_s, rcp_s).sum() < 2 * prep.min_points:
        rcp_s = math.nan  # a VE/VCO2 rise right after the start of the search: noise
    vt1 = {
        "vt1_vslope": vslope_vt1(source, prep=prep, after_s=start_s,
                                 before_s=rcp_s if vslope_before_rcp else math.nan),
        "vt1_equivalents": equivalents_vt1(source, prep=prep, after_s=start_s, before_s=rcp_s),
        "vt1_peto2": peto2_vt1(source, prep=prep, after_s=start_s, before_s=rcp_s),
    }
    found = [e.time_s for e in vt1.values() if e.found]
    after_vt1_s = _latest(float(np.median(found)) if found else start_s,
                          vo2_fraction_s(source, vt2_min_vo2_fraction, prep))
    return vt1 | {
        "vt2_equivalents": equivalents_vt2(source, prep=prep, after_s=after_vt1_s),
        "vt2_petco2": petco2_vt2(source, prep=prep, after_s=after_vt1_s),
        "vt2_vslope": vslope_vt2(source, prep=prep, after_s=after_vt1_s),
    }


def _latest(*times_s: float) -> float:
    """The largest of the finite times, NaN when none is."""
    finite = [t for t in times_s if math.isfinite(t)]
    return max(finite) if finite else math.nan
