"""How far a consensus threshold may be from the truth: an uncertainty in mL/min and in s.

No threshold method is trusted alone (two experienced physicians agree within about
±161 mL/min, Kaczmarek et al. 2019), so each consensus threshold carries an estimate of its
expected absolute error, built from what the test's data say:

``noise_ml_min``
    signal quality: the scatter of breath VO2 about its linear trend within
    :data:`WINDOW_S` of the threshold (the residual standard deviation). Breath-by-breath
    noise blurs every breakpoint fit (Lamarra et al. 1987 give its size and structure).
``disagreement_ml_min``
    method disagreement: the median absolute deviation of the VO2 of the estimates behind
    the consensus from the consensus itself (Gaskill et al. 2001 combine methods for the
    same reason).
``model_ml_min``
    the model's sharpness at its crossing: how long the two domain probabilities that meet
    at the threshold stay within :data:`CROSSING_MARGIN` of each other around the crossing
    (s), times the VO2 rate there. A sharp switch of domains gives a short time; an
    undecided model a long one.
``precision_ml_min``
    the breakpoints' own precision: the median width (s) of the confidence intervals of the
    classical estimates behind the consensus (the profile-likelihood interval of each
    two-segment fit, Lerman 1980; :func:`~cpet_nb.physiology.thresholds.hinge_fit`), times
    the VO2 rate. NaN when no classical estimate is behind the consensus.
``gap_ml_min``
    gaps: the longest interval without VO2 within the window, as the standard deviation of
    a threshold anywhere in it (gap / √12), times the VO2 rate.
``edge_ml_min``
    short exercise: a threshold less than :data:`EDGE_S` from the start or the end of
    exercise has less than one breakpoint segment of data on one side
    (:class:`~cpet_nb.physiology.thresholds.Preparation` needs 60 s); the missing seconds
    times the VO2 rate.

The uncertainty is a weighted sum (:func:`combine`): a constant, plus the first four
components times coefficients, plus the gap and edge terms as they are (the labelled tests
have neither gaps nor thresholds at the edges, so nothing could be fitted for them). The
coefficients (:data:`COEFFICIENTS`) were fitted by non-negative least squares of the
consensus VO2 error on the components, on the odd-numbered half of pyoxynet's labelled
tests only (``python benchmarks/bench_accuracy.py --fit-uncertainty``; figures on the even
half in ``docs/accuracy.md``). Which components enter was chosen there by cross-validating
the whole review rule: the breakpoints' precision made the flags less informative and has no
weight (it is computed and reported all the same). Every component predicts the consensus
error only weakly. The uncertainty in seconds is the one in mL/min divided by the VO2 rate
(mL/min per s, the slope of the same linear trend); NaN when VO2 does not rise there.

References
----------
Kaczmarek S, Habedank D, Obst A, Dörr M, Völzke H, Gläser S, Ewert R (2019). Interobserver
variability of ventilatory anaerobic threshold in asymptomatic volunteers. Multidiscip Respir
Med 14:20.
Lamarra N, Whipp BJ, Ward SA, Wasserman K (1987). Effect of interbreath fluctuations on
characterizing exercise gas exchange kinetics. J Appl Physiol 62:2003-2012.
Gaskill SE, Ruby BC, Walker AJ, Sanchez OA, Serfass RC, Leon AS (2001). Validity and
reliability of combining three methods to determine ventilatory threshold. Med Sci Sports
Exerc 33:1841-1848.
Lerman PM (1980). Fitting segmented regression models by grid search. J R Stat Soc C (Appl
Stat) 29:77-84.
Lawson CL, Hanson RJ (1974). Solving Least Squares Problems. Prentice-Hall (non-negative
least squares).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pandas as pd

from .consensus import Consensus, Estimate

#: Half-width of the window about a threshold where VO2 noise, rate and gaps are judged (s).
WINDOW_S = 90.0
#: Least finite VO2 samples in that window to judge it.
MIN_SAMPLES = 10
#: Two domain probabilities within this of each other are "undecided" (:func:`crossing_width_s`).
CROSSING_MARGIN = 0.2
#: A threshold closer than this to either end of exercise is at the edge (s); one breakpoint
#: segment of :class:`~cpet_nb.physiology.thresholds.Preparation`.
EDGE_S = 60.0
#: Default review limit (mL/min): a test whose VT1 or VT2 uncertainty is above it is flagged.
#: The lowest multiple of 10 mL/min that flags at most 33 % of the odd-numbered labelled
#: tests (``docs/accuracy.md``).
REVIEW_UNCERTAINTY_ML_MIN = 200.0
#: Which probabilities meet at each threshold: (lower domain, upper domain).
CROSSINGS: dict[str, tuple[str, str]] = {"vt1": ("p_moderate", "p_heavy"),
                                         "vt2": ("p_heavy", "p_severe")}


class DomainCurves(Protocol):
    """The model's smoothed domain probabilities over time
    (:class:`cpet_nb.model.domains.DomainCurves`)."""

    time_s: np.ndarray
    p_moderate: np.ndarray
    p_heavy: np.ndarray
    p_severe: np.ndarray

    def __len__(self) -> int: ...


@dataclass(frozen=True)
class Coefficients:
    """The weights of :func:`combine` for one threshold.

    Attributes
    ----------
    base_ml_min : float
        Constant part (mL/min): the error of a clean, decided test.
    noise, disagreement, model, precision : float
        mL/min of uncertainty per mL/min of each component.
    """

    base_ml_min: float
    noise: float
    disagreement: float
    model: float
    precision: float = 0.0


#: Fitted on the odd-numbered half of pyoxynet's labelled tests (see the module docstring).
COEFFICIENTS: dict[str, Coefficients] = {
    "vt1": Coefficients(base_ml_min=115.9, noise=0.19, disagreement=0.082, model=0.195),
    "vt2": Coefficients(base_ml_min=125.2, noise=0.148, disagreement=0.0, model=0.068),
}


@dataclass(frozen=True)
class Uncertainty:
    """The uncertainty of one consensus threshold and what it is made of.

    Attributes
    ----------
    ml_min : float
        Expected absolute error of the consensus VO2 (mL/min); NaN when a component is.
    s : float
        The same in time (s): ``ml_min`` over ``vo2_rate_ml_min_s``; NaN when VO2 does not
        rise about the threshold.
    noise_ml_min, disagreement_ml_min, model_ml_min, precision_ml_min : float
        The components that enter ``ml_min`` with a fitted weight (module docstring),
        each as measured, before its weight (``precision_ml_min`` has weight 0: it is
        reported, not used).
    gap_ml_min, edge_ml_min : float
        The components added as they are.
    vo2_rate_ml_min_s : float
        Slope of VO2 against time about the threshold (mL/min per s).
    """

    ml_min: float
    s: float
    noise_ml_min: float
    disagreement_ml_min: float
    model_ml_min: float
    gap_ml_min: float
    edge_ml_min: float
    vo2_rate_ml_min_s: float
    precision_ml_min: float = math.nan

    @classmethod
    def missing(cls) -> Uncertainty:
        """The uncertainty of a threshold nobody estimated: every field NaN."""
        return cls(*(math.nan,) * 9)


def vo2_window(data: pd.DataFrame, time_s: float, window_s: float = WINDOW_S
               ) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) and VO2 (mL/min) of the finite VO2 samples within ``window_s`` of ``time_s``."""
    if "VO2" not in data or not math.isfinite(time_s):
        return np.empty(0), np.empty(0)
    t = data["t"].to_numpy(dtype=float)
    vo2 = data["VO2"].to_numpy(dtype=float)
    keep = np.isfinite(t) & np.isfinite(vo2) & (np.abs(t - time_s) <= window_s)
    return t[keep], vo2[keep]


def vo2_trend(t_s: np.ndarray, vo2_ml_min: np.ndarray) -> tuple[float, float]:
    """Rate (mL/min per s) and residual standard deviation (mL/min) of VO2 about its
    least-squares line; NaN for fewer than :data:`MIN_SAMPLES` samples or one time."""
    if len(t_s) < MIN_SAMPLES or np.ptp(t_s) == 0:
        return math.nan, math.nan
    slope, intercept = np.polyfit(t_s, vo2_ml_min, 1)
    residuals = vo2_ml_min - (slope * t_s + intercept)
    return float(slope), float(np.sqrt(np.sum(residuals ** 2) / (len(t_s) - 2)))


def largest_gap_s(t_s: np.ndarray, time_s: float, window_s: float = WINDOW_S) -> float:
    """Longest interval without a sample within ``window_s`` of ``time_s`` (s), the window's
    ends included (a window with no sample is one gap of ``2 window_s``)."""
    edges = np.concatenate([[time_s - window_s], np.sort(t_s), [time_s + window_s]])
    return float(np.max(np.diff(edges)))


def crossing_width_s(curves: DomainCurves | None, label: str,
                     margin: float = CROSSING_MARGIN) -> float:
    """How long the model stays undecided about ``label``'s crossing (s).

    The crossing is where the two probabilities of :data:`CROSSINGS` meet as
    :mod:`cpet_nb.model.domains` finds VT1 (the first window where the upper domain reaches
    the lower) and VT2 (the last window where the upper domain is not above the lower). The
    width is the time span of the run of windows about it where they differ by less than
    ``margin``.

    Parameters
    ----------
    curves : DomainCurves or None
        The model's smoothed domain probabilities.
    label : {"vt1", "vt2"}
    margin : float

    Returns
    -------
    float
        Seconds; NaN without curves or without a crossing.
    """
    if curves is None or len(curves) == 0:
        return math.nan
    lower, upper = (getattr(curves, name) for name in CROSSINGS[label])
    difference = np.asarray(upper, dtype=float) - np.asarray(lower, dtype=float)
    met = np.flatnonzero(difference >= 0) if label == "vt1" else np.flatnonzero(difference <= 0)
    if len(met) == 0:
        return math.nan
    crossing = int(met[0] if label == "vt1" else met[-1])
    close = np.abs(difference) < margin
    first = last = crossing
    while first > 0 and close[first - 1]:
        first -= 1
    while last < len(close) - 1 and close[last + 1]:
        last += 1
    return float(curves.time_s[last] - curves.time_s[first])


def disagreement_ml_min(agreed: Consensus, estimates: Mapping[str, Estimate | None]) -> float:
    """Median absolute deviation of the VO2 of the estimates behind ``agreed`` from it
    (mL/min): 0 with one estimate, NaN without a consensus VO2."""
    values = np.array([_number(estimates[key].vo2_ml_min) for key in agreed.methods
                       if estimates.get(key) is not None])
    values = values[np.isfinite(values)]
    if not math.isfinite(agreed.vo2_ml_min) or len(values) == 0:
        return math.nan
    return float(np.median(np.abs(values - agreed.vo2_ml_min)))


def interval_s(agreed: Consensus, estimates: Mapping[str, Estimate | None]) -> float:
    """Median width (s) of the breakpoint intervals of the estimates behind ``agreed`` that
    have one (``interval_s``, the classical estimates); NaN when none has."""
    widths = np.array([_number(getattr(estimates.get(key), "interval_s", None))
                       for key in agreed.methods])
    widths = widths[np.isfinite(widths)]
    return float(np.median(widths)) if len(widths) else math.nan


def edge_s(time_s: float, span_s: tuple[float, float], edge: float = EDGE_S) -> float:
    """Seconds short of ``edge`` between ``time_s`` and the nearer end of exercise (0 when
    the threshold is at least ``edge`` from both)."""
    margin = min(time_s - span_s[0], span_s[1] - time_s)
    return float(max(0.0, edge - margin)) if math.isfinite(margin) else math.nan


def combine(noise_ml_min: float, disagreement: float, model_ml_min: float,
            coefficients: Coefficients, precision_ml_min: float = math.nan) -> float:
    """The weighted part of the uncertainty (mL/min): ``base + noise·a + disagreement·b +
    model·c + precision·d`` (:data:`COEFFICIENTS`); NaN when a component with a weight is
    NaN."""
    terms = ((noise_ml_min, coefficients.noise), (disagreement, coefficients.disagreement),
             (model_ml_min, coefficients.model), (precision_ml_min, coefficients.precision))
    return coefficients.base_ml_min + sum(value * weight for value, weight in terms
                                          if weight != 0)


def threshold_uncertainty(data: pd.DataFrame, agreed: Consensus,
                          estimates: Mapping[str, Estimate | None], curves: DomainCurves | None,
                          label: str, span_s: tuple[float, float],
                          coefficients: Coefficients | None = None) -> Uncertainty:
    """The uncertainty of one consensus threshold (see the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        The record's canonical data (``t``, ``VO2``).
    agreed : Consensus
        The consensus of the threshold.
    estimates : mapping of str to estimate
        The estimates by key, as given to :func:`~cpet_nb.physiology.consensus.consensus`.
    curves : DomainCurves or None
        The domain probabilities of the model that voted.
    label : {"vt1", "vt2"}
    span_s : (float, float)
        Start and end of exercise (:func:`~cpet_nb.physiology.exercise.exercise_span_s`).
    coefficients : Coefficients, optional
        Default :data:`COEFFICIENTS` of ``label``.

    Returns
    -------
    Uncertainty
        :meth:`Uncertainty.missing` without a consensus time.
    """
    if not math.isfinite(agreed.time_s):
        return Uncertainty.missing()
    coefficients = coefficients or COEFFICIENTS[label]
    t, vo2 = vo2_window(data, agreed.time_s)
    rate, noise = vo2_trend(t, vo2)
    rise = max(rate, 0.0) if math.isfinite(rate) else math.nan
    gap = rise * largest_gap_s(t, agreed.time_s) / math.sqrt(12.0)
    edge = rise * edge_s(agreed.time_s, span_s)
    model = rise * crossing_width_s(curves, label)
    precision = rise * interval_s(agreed, estimates)
    disagreement = disagreement_ml_min(agreed, estimates)
    total = combine(noise, disagreement, model, coefficients, precision) + gap + edge
    seconds = total / rate if rate > 0 else math.nan
    return Uncertainty(ml_min=total, s=seconds, noise_ml_min=noise,
                       disagreement_ml_min=disagreement, model_ml_min=model, gap_ml_min=gap,
                       edge_ml_min=edge, vo2_rate_ml_min_s=rate, precision_ml_min=precision)


def consensus_uncertainty(data: pd.DataFrame, agreed: Mapping[str, Consensus],
                          classical: Mapping[str, Estimate], model_vt1: Estimate | None,
                          model_vt2: Estimate | None, curves: DomainCurves | None,
                          span_s: tuple[float, float]) -> dict[str, Uncertainty]:
    """:func:`threshold_uncertainty` of VT1 and VT2, with the estimates keyed as
    :func:`~cpet_nb.physiology.consensus.threshold_consensus` keys them.

    Returns
    -------
    dict
        ``{"vt1": Uncertainty, "vt2": Uncertainty}``.
    """
    models = {"vt1": model_vt1, "vt2": model_vt2}
    return {label: threshold_uncertainty(
                data, agreed[label], {**classical, f"{label}_model": models[label]}, curves,
                label, span_s)
            for label in ("vt1", "vt2")}


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)

