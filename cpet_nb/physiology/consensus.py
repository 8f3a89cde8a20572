"""Consensus of several threshold estimates, and the flags that send a test to human review.

The consensus of one threshold is the weighted median of the available estimates, taken
separately for time and for VO2, with the spread (max - min) of the estimates it rests on.
Weights (:data:`DEFAULT_WEIGHTS`) were chosen on the odd-numbered half of pyoxynet's
labelled tests only (``benchmarks/bench_accuracy.py``, ``docs/accuracy.md``): for VT1 the
three classical methods and the Oxynet model count equally (a plain median of four), for
VT2 the model counts twice and the VE-VCO2 V-slope not at all (it is reported, but on the
tuning half it made the consensus worse).

The Oxynet CNN puts both thresholds late against those labels (on the tuning half by a median
97 s at VT1, later on 83 % of the tests, and 47 s at VT2), the classical methods do not.
Its vote is therefore moved earlier by that median lateness (:data:`MODEL_VOTE_LAG_S`,
:func:`lag_corrected`) before the median is taken; the model's own thresholds are reported as
it gives them. Other models and their ensembles were not measured and are not corrected.

Review flags (:func:`review_flags`) are booleans named for the results table:

``review_uncertainty``
    the uncertainty of VT1 or VT2 (:mod:`cpet_nb.physiology.uncertainty`: breath noise,
    method disagreement, the model's sharpness, gaps, edges) is above
    ``max_uncertainty_ml_min`` (default
    :data:`~cpet_nb.physiology.uncertainty.REVIEW_UNCERTAINTY_ML_MIN`, chosen on the
    odd-numbered labelled tests to flag at most 33 % of them), or could not be computed for
    a threshold that has a consensus;
``review_vt_missing``
    no method gave VT1 or VT2;
``review_vt_order``
    the consensus VT2 is not after (or not above, in VO2) the consensus VT1;
``review_model_swap``
    the model's heavy and severe outputs look swapped or ambiguous (finding ``vt-order`` or
    ``domain-mapping-ambiguous``);
``review_effort``
    the effort convention given by the caller failed
    (:func:`cpet_nb.physiology.effort.effort_met`; unknown, NaN or None, is not a failure);
``review``
    any of the above. Tests not flagged are ranked by their uncertainty: a reviewer works
    down the list (``docs/accuracy.md`` has how often large errors are caught).

The spread of the estimates (max - min, ``spread_vo2_ml_min``) is still reported, but no
longer flags a test: it exceeded the ±161 mL/min within which two experts agree (Kaczmarek
et al. 2019) on 91 % of the held-out tests and hardly predicted the consensus error.

References
----------
Kaczmarek S, Habedank D, Obst A, Dörr M, Völzke H, Gläser S, Ewert R (2019). Interobserver
variability of ventilatory anaerobic threshold in asymptomatic volunteers. Multidiscip Respir
Med 14:20.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ..findings import Finding

#: Weight of each estimate in the consensus, by key; keys not listed weigh 1.
DEFAULT_WEIGHTS: dict[str, float] = {
    "vt1_vslope": 1.0, "vt1_equivalents": 1.0, "vt1_peto2": 1.0, "vt1_model": 1.0,
    "vt2_equivalents": 1.0, "vt2_petco2": 1.0, "vt2_vslope": 0.0, "vt2_model": 2.0,
}

#: How much later (s) than the labels of pyoxynet's tests a model alone puts each threshold:
#: the median on the odd-numbered labelled tests, rounded to 5 s (``docs/accuracy.md``). Its
#: vote in the consensus is moved earlier by this (:func:`lag_corrected`).
MODEL_VOTE_LAG_S: dict[str, dict[str, float]] = {"cnn": {"vt1": 95.0, "vt2": 45.0}}

#: Model finding codes that mean its domain mapping is not to be trusted.
MODEL_SWAP_CODES = frozenset({"vt-order", "domain-mapping-ambiguous"})

#: The reasons a test is flagged, in table order; ``review`` is raised by any of them.
REVIEW_REASONS: tuple[str, ...] = ("review_uncertainty", "review_vt_missing", "review_vt_order",
                                   "review_model_swap", "review_effort")
#: The review flags (the reasons, then ``review``), as :func:`review_flags` returns them.
REVIEW_FLAGS: tuple[str, ...] = (*REVIEW_REASONS, "review")


class Estimate(Protocol):
    """Anything with a time and a VO2: a classical estimate or the model's threshold."""

    time_s: float
    vo2_ml_min: float


@dataclass(frozen=True)
class Consensus:
    """The consensus of one threshold.

    Attributes
    ----------
    time_s, vo2_ml_min : float
        Weighted medians of the estimates' times (s) and VO2 (mL/min); NaN without any.
    spread_time_s, spread_vo2_ml_min : float
        Max - min of the estimates with positive weight; NaN with fewer than two.
    n_methods : int
        Estimates with positive weight that gave a time or a VO2.
    methods : tuple of str
        Their keys.
    """

    time_s: float
    vo2_ml_min: float
    spread_time_s: float
    spread_vo2_ml_min: float
    n_methods: int
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Vote:
    """A vote in the consensus that differs from its estimate (:func:`lag_corrected`).

    Attributes
    ----------
    time_s, vo2_ml_min : float
        Time (s) and VO2 (mL/min) voted for.
    """

    time_s: float
    vo2_ml_min: float


def lag_corrected(estimate: Estimate | None, lag_s: float,
                  vo2_at: Callable[[float], float]) -> Estimate | None:
    """The vote of an estimate known to come ``lag_s`` seconds late: its time less ``lag_s``,
    with the VO2 there.

    Parameters
    ----------
    estimate : Estimate or None
        The model's threshold.
    lag_s : float
        Median lateness of the model against labelled tests (:data:`MODEL_VOTE_LAG_S`).
    vo2_at : callable
        VO2 (mL/min) at a time (s), as the classical methods read it
        (:func:`cpet_nb.physiology.thresholds.vo2_at`); NaN where it cannot be read, which
        leaves the vote without a VO2 (its time still votes).

    Returns
    -------
    Estimate or None
        ``estimate`` itself when it is None, has no time or ``lag_s`` is 0.
    """
    if estimate is None or lag_s == 0 or not _finite(estimate.time_s):
        return estimate
    time_s = estimate.time_s - lag_s
    return Vote(time_s=time_s, vo2_ml_min=vo2_at(time_s))


def lag_corrected_votes(model_vt1: Estimate | None, model_vt2: Estimate | None,
                        lags_s: Mapping[str, float], vo2_at: Callable[[float], float]
                        ) -> tuple[Estimate | None, Estimate | None]:
    """:func:`lag_corrected` of a model's VT1 and VT2 with its ``{"vt1": s, "vt2": s}``
    lateness (:data:`MODEL_VOTE_LAG_S`; a threshold not listed is not moved)."""
    return (lag_corrected(model_vt1, lags_s.get("vt1", 0.0), vo2_at),
            lag_corrected(model_vt2, lags_s.get("vt2", 0.0), vo2_at))


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The value at which the cumulative weight of the sorted values reaches half the total.

    When it reaches exactly half at a value, the midpoint of that value and the next
    (the plain median for equal weights). Non-finite values and zero weights are left out.

    Parameters
    ----------
    values, weights : numpy.ndarray
        Same length; weights non-negative.

    Returns
    -------
    float
        NaN when nothing is left.
    """
    values = np.asarray(values, dtype=float)
    weights = np.asarray(weights, dtype=float)
    keep = np.isfinite(values) & (weights > 0)
    if not keep.any():
        return math.nan
    order = np.argsort(values[keep])
    sorted_values, cumulative = values[keep][order], np.cumsum(weights[keep][order])
    half = cumulative[-1] / 2
    i = int(np.searchsorted(cumulative, half * (1 - 1e-12)))
    if math.isclose(cumulative[i], half) and i + 1 < len(sorted_values):
        return float((sorted_values[i] + sorted_values[i + 1]) / 2)
    return float(sorted_values[i])


def consensus(estimates: Mapping[str, Estimate | None], *,
              weights: Mapping[str, float] | None = None) -> Consensus:
    """Weighted-median consensus of one threshold's estimates.

    Parameters
    ----------
    estimates : mapping of str to estimate
        Estimates of the same threshold by key (e.g. ``vt1_vslope``, ``vt1_model``): anything
        with ``time_s`` and ``vo2_ml_min`` (a
        :class:`~cpet_nb.physiology.thresholds.ThresholdEstimate` or a model
        :class:`~cpet_nb.model.pipeline.Threshold`); ``None`` or NaN values are unavailable.
    weights : mapping of str to float, optional
        Weight by key (default :data:`DEFAULT_WEIGHTS`; keys not listed weigh 1). A weight of
        0 leaves an estimate out of the consensus and its spread.

    Returns
    -------
    Consensus
    """
    weights = DEFAULT_WEIGHTS if weights is None else weights
    used = {key: est for key, est in estimates.items()
            if est is not None and weights.get(key, 1.0) > 0
            and (_finite(est.time_s) or _finite(est.vo2_ml_min))}
    w = np.array([weights.get(key, 1.0) for key in used])
    times = np.array([_number(e.time_s) for e in used.values()])
    vo2s = np.array([_number(e.vo2_ml_min) for e in used.values()])
    return Consensus(time_s=weighted_median(times, w), vo2_ml_min=weighted_median(vo2s, w),
                     spread_time_s=_spread(times), spread_vo2_ml_min=_spread(vo2s),
                     n_methods=len(used), methods=tuple(used))


def threshold_consensus(classical: Mapping[str, Estimate], model_vt1: Estimate | None = None,
                        model_vt2: Estimate | None = None, *,
                        weights: Mapping[str, float] | None = None) -> dict[str, Consensus]:
    """VT1 and VT2 consensus from :func:`~cpet_nb.physiology.thresholds.classical_thresholds` and
    the model.

    Parameters
    ----------
    classical : mapping of str to estimate
        Keys starting ``vt1_`` or ``vt2_``.
    model_vt1, model_vt2 : estimate, optional
        The model's thresholds (``FileResult.vt1``, ``FileResult.vt2``), as ``vt1_model`` and
        ``vt2_model``.
    weights : mapping of str to float, optional
        See :func:`consensus`.

    Returns
    -------
    dict
        ``{"vt1": Consensus, "vt2": Consensus}``.
    """
    models = {"vt1": model_vt1, "vt2": model_vt2}
    return {label: consensus({**{k: e for k, e in classical.items() if k.startswith(label + "_")},
                              f"{label}_model": models[label]}, weights=weights)
            for label in ("vt1", "vt2")}


def review_flags(vt1: Consensus, vt2: Consensus, *,
                 uncertainty_ml_min: Mapping[str, float] | None = None,
                 max_uncertainty_ml_min: float = math.inf,
                 model_findings: Iterable[Finding | str] = (),
                 effort: Mapping[str, bool | float | None] | None = None) -> dict[str, bool]:
    """Whether a test needs a human look, and why (see the module docstring).

    Parameters
    ----------
    vt1, vt2 : Consensus
    uncertainty_ml_min : mapping of str to float, optional
        ``{"vt1": ..., "vt2": ...}``: each threshold's uncertainty (mL/min,
        :class:`~cpet_nb.physiology.uncertainty.Uncertainty`); NaN where it could not be
        computed. Without it, ``review_uncertainty`` is False.
    max_uncertainty_ml_min : float
        Largest acceptable uncertainty (mL/min).
    model_findings : iterable of Finding or str
        The model result's findings (or their codes).
    effort : mapping of str to bool, optional
        Effort verdicts computed elsewhere (e.g. ``{"effort_met": 0.0}``): ``False`` fails,
        ``True`` passes, NaN or None is unknown.

    Returns
    -------
    dict of str to bool
        Keys :data:`REVIEW_FLAGS`.
    """
    codes = {f.code if isinstance(f, Finding) else str(f) for f in model_findings}
    agreed = {"vt1": vt1, "vt2": vt2}
    flags = {
        "review_uncertainty": any(
            _finite(agreed[label].time_s) and not value <= max_uncertainty_ml_min
            for label, value in (uncertainty_ml_min or {}).items()),
        "review_vt_missing": vt1.n_methods == 0 or vt2.n_methods == 0,
        "review_vt_order": vt2.time_s <= vt1.time_s or vt2.vo2_ml_min <= vt1.vo2_ml_min,
        "review_model_swap": bool(codes & MODEL_SWAP_CODES),
        "review_effort": any(v is not None and _finite(v) and not v
                             for v in (effort or {}).values()),
    }
    flags["review"] = any(flags.values())
    return flags


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(float(value))


def _spread(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.max() - finite.min()) if len(finite) >= 2 else math.nan
