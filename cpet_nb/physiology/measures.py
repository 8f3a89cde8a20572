"""Standard CPET measures computed from the canonical record."""

from __future__ import annotations

import math

import numpy as np

from .._checks import check_choice
from ..record import CPETRecord
from ._arrays import TestArrays
from .averaging import averages, binned_time_average, highest_finite, peak_average

#: Default averaging window for VO2peak (s).
VO2PEAK_WINDOW_S = 30
#: Age-predicted maximal heart rate (1/min) as ``intercept - slope * age``.
HR_MAX_FORMULAS: dict[str, tuple[float, float]] = {
    "fox": (220.0, 1.0),  # Fox, Naughton & Haskell 1971
    "tanaka": (208.0, 0.7),  # Tanaka, Monahan & Seals 2001
}
#: Where :func:`peak_measures` looks for peaks.
PEAK_WITHIN: tuple[str, ...] = ("exercise", "test")
#: The keys of :func:`peak_measures`, in results-table order.
PEAK_MEASURES: tuple[str, ...] = (
    "vo2peak_ml_min", "vo2peak_ml_kg_min", "vco2peak_ml_min", "rerpeak", "hrpeak_bpm",
    "vepeak_l_min", "o2pulse_peak_ml_beat", "peak_load_w", "peak_speed_km_h",
    "vo2_plateau_delta_ml_min", "vo2_plateau_delta_ml_kg_min", "vo2_plateau_ml_min",
    "vo2_plateau_ml_kg_min", "rer_criterion_met", "hr_predicted_max_bpm", "hr_pct_predicted",
    "hr_criterion_met",
)


def vo2peak_ml_min(t_s: np.ndarray, vo2_ml_min: np.ndarray, window_s: int = VO2PEAK_WINDOW_S
                   ) -> float:
    """Peak oxygen uptake as the highest moving time average.

    The breath-by-breath (or averaged) VO2 is linearly interpolated to whole seconds and
    averaged over a moving window of ``window_s`` seconds; the peak is the largest average
    over complete windows. This is the ``tm_N`` strategy of Nolte et al. (2023), the
    most common choice reviewed by Martin-Rincon & Calbet (2020); Robergs et al. (2010)
    discuss why the window must be stated. :func:`cpet_nb.physiology.averaging.peak_average` offers
    the other strategies.

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
    return peak_average(t_s, vo2_ml_min, method="time-moving", window=window_s)


def predicted_hr_max_bpm(age_years: float | None, formula: str = "fox") -> float:
    """Age-predicted maximal heart rate.

    Parameters
    ----------
    age_years : float or None
        Age (years); ``None`` or NaN when unknown.
    formula : {"fox", "tanaka"}
        ``"fox"``: 220 - age (Fox et al. 1971), the most used; ``"tanaka"``: 208 - 0.7 age
        (Tanaka et al. 2001, from a meta-analysis of 351 studies confirmed in the
        laboratory). Both agree at 40 years; beyond, 220 - age predicts lower values.

    Returns
    -------
    float
        Predicted HRmax (1/min), NaN when the age is unknown.

    References
    ----------
    Fox SM, Naughton JP, Haskell WL (1971). Physical activity and the prevention of coronary
    heart disease. Ann Clin Res 3:404-432.
    Tanaka H, Monahan KD, Seals DR (2001). Age-predicted maximal heart rate revisited.
    J Am Coll Cardiol 37:153-156.
    """
    check_choice(formula, HR_MAX_FORMULAS, "formula")
    if age_years is None or not math.isfinite(age_years):
        return math.nan
    intercept, slope = HR_MAX_FORMULAS[formula]
    return intercept - slope * float(age_years)


def vo2_plateau_delta_ml_min(t_s: np.ndarray, vo2_ml_min: np.ndarray, end_s: float,
                             interval_s: int = 30) -> float:
    """Increase in VO2 over the final interval of exercise, for the plateau criterion.

    On 1 s interpolated VO2 (as for :func:`vo2peak_ml_min`), the mean of the last
    ``interval_s`` seconds up to ``end_s`` minus the mean of the ``interval_s`` seconds
    before them: the "increase over the last stage" of Taylor et al. (1955), with the
    stage replaced by a fixed interval on ramp tests (Beltrami et al. 2012 compare such
    definitions; Poole & Jones 2017 discuss why a plateau is often absent on ramps).

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times (s), strictly increasing where finite.
    vo2_ml_min : numpy.ndarray
        VO2 (mL/min).
    end_s : float
        End of exercise (s), e.g. from :func:`~cpet_nb.physiology.exercise.exercise_span_s`.
    interval_s : int
        Length of each of the two intervals (s).

    Returns
    -------
    float
        Last minus previous interval mean (mL/min); NaN when either interval is not fully
        covered by data.

    References
    ----------
    Taylor HL, Buskirk E, Henschel A (1955). Maximal oxygen intake as an objective measure
    of cardio-respiratory performance. J Appl Physiol 8:73-80.
    Beltrami FG, Froyd C, Mauger AR, Metcalfe AJ, Marino F, Noakes TD (2012). Conventional
    testing methods produce submaximal values of maximum oxygen consumption. Br J Sports
    Med 46:23-29.
    Poole DC, Jones AM (2017). Measurement of the maximum oxygen uptake VO2max: VO2peak is
    no longer acceptable. J Appl Physiol 122:997-1002.
    """
    if not math.isfinite(end_s):
        return math.nan
    bin_t_s, means = binned_time_average(t_s, vo2_ml_min, interval_s, anchor_s=end_s)
    last = means[np.isclose(bin_t_s, end_s - 0.5 * interval_s)]
    previous = means[np.isclose(bin_t_s, end_s - 1.5 * interval_s)]
    if len(last) != 1 or len(previous) != 1:
        return math.nan
    return float(last[0] - previous[0])


def peak_measures(record: CPETRecord, *, method: str = "time-moving", window: int = 30,
                  within: str = "exercise", smooth_hr: bool = False,
                  plateau_interval_s: int = 30, plateau_ml_min: float = 150.0,
                  plateau_ml_kg_min: float = 2.0, rer_min: float = 1.10,
                  hr_pct_min: float = 90.0, hr_max_formula: str = "fox",
                  arrays: TestArrays | None = None) -> dict[str, float]:
    """Peak values, the VO2 plateau and the usual maximal-effort criteria of one test.

    Every gas-exchange peak is the highest average under one strategy of
    :mod:`cpet_nb.physiology.averaging` (Nolte et al. 2023). Ratios (RER = VCO2/VO2, O2 pulse =
    VO2/HR) are ratios of the averages, taken over the samples where both channels exist.

    Parameters
    ----------
    record : CPETRecord
        The test.
    method : {"time-moving", "time-binned", "breath-moving"}
        Averaging strategy.
    window : int
        Seconds (time strategies) or breaths (``"breath-moving"``).
    within : {"exercise", "test"}
        Which data the peaks come from. ``"exercise"`` (default): each bout of exercise
        (:func:`~cpet_nb.physiology.exercise.exercise_bouts_s`: the exercise part, split at
        the labelled pauses of an interval session) is averaged on its own, so that neither
        recovery nor a pause can raise RERpeak (CO2 washout after exercise) or VO2peak.
        ``"test"``: the whole recording, as ``spiro`` 0.0.4 and Nolte et al. (2023). The
        plateau always uses the intervals ending at the end of exercise.
    smooth_hr : bool
        Average HR like the gases; default ``False`` takes the highest single value (as
        ``spiro_max(hr_smooth = FALSE)``).
    plateau_interval_s : int
        Interval of :func:`vo2_plateau_delta_ml_min` (s), ending at the end of exercise.
    plateau_ml_min : float
        A plateau is an increase below this (mL/min); 150 after Taylor et al. (1955).
    plateau_ml_kg_min : float
        The same per kg of body mass (mL/kg/min); Taylor et al. (1955) used 2.1, many
        later studies 2 (Midgley et al. 2007).
    rer_min : float
        RERpeak at or above this meets the RER criterion; 1.10 is common (Howley et al.
        1995; Midgley et al. 2007), Edvardsen et al. (2014) argue that such end criteria
        should be adjusted to age and sex.
    hr_pct_min : float
        HRpeak at or above this percentage of the age-predicted maximum meets the HR
        criterion; 90 is one of the variants reviewed by Howley et al. (1995) and Midgley
        et al. (2007).
    hr_max_formula : {"fox", "tanaka"}
        Age-predicted maximum (:func:`predicted_hr_max_bpm`).
    arrays : TestArrays, optional
        The record's arrays (:class:`~cpet_nb.physiology._arrays.TestArrays`), when the
        caller has them already; made from ``record`` otherwise.

    Returns
    -------
    dict of str to float
        ``vo2peak_ml_min``, ``vo2peak_ml_kg_min``, ``vco2peak_ml_min``, ``rerpeak``,
        ``hrpeak_bpm``, ``vepeak_l_min``, ``o2pulse_peak_ml_beat``, ``peak_load_w``,
        ``peak_speed_km_h``, ``vo2_plateau_delta_ml_min``, ``vo2_plateau_delta_ml_kg_min``,
        ``vo2_plateau_ml_min``, ``vo2_plateau_ml_kg_min``, ``rer_criterion_met``,
        ``hr_predicted_max_bpm``, ``hr_pct_predicted``, ``hr_criterion_met``. Criteria are
        1.0 (met) or 0.0 (not met). Anything that needs a missing channel, body mass or
        age is NaN: nothing is defaulted.

    Notes
    -----
    On a ramp the expected rise of VO2 within 30 s is itself small (VO2 rises about
    10 mL/min per W, Wasserman et al., Principles of Exercise Testing and Interpretation;
    about 125 mL/min in 30 s of a 25 W/min ramp), so a 30 s plateau criterion is met more
    easily than with the stages of Taylor et al. (1955); a verification bout is the
    stronger test (Poole & Jones 2017).

    References
    ----------
    Nolte S, Rein R, Quittmann OJ (2023). Sports Med 53:2463-2475.
    Taylor HL, Buskirk E, Henschel A (1955). J Appl Physiol 8:73-80.
    Howley ET, Bassett DR, Welch HG (1995). Criteria for maximal oxygen uptake: review and
    commentary. Med Sci Sports Exerc 27:1292-1301.
    Midgley AW, McNaughton LR, Polman R, Marchant D (2007). Criteria for determination of
    maximal oxygen uptake: a brief critique and recommendations for future research.
    Sports Med 37:1019-1028.
    Edvardsen E, Hem E, Anderssen SA (2014). End criteria for reaching maximal oxygen uptake
    must be strict and adjusted to sex and age: a cross-sectional study. PLoS One 9:e85276.
    Poole DC, Jones AM (2017). J Appl Physiol 122:997-1002.
    """
    check_choice(within, PEAK_WITHIN, "within")
    arrays = arrays if arrays is not None else TestArrays.of(record)
    span_s = arrays.exercise_span_s()
    parts = ([arrays.between(*bout) for bout in arrays.exercise_bouts_s()]
             if within == "exercise" else [slice(0, len(arrays))])
    strategy = {"method": method, "window": window}
    t = arrays.t_s

    def peak(name: str) -> float:
        values = arrays.channel(name)
        return highest_finite([peak_average(t[part], values[part], **strategy)
                               for part in parts])

    def peak_ratio(numerator: str, denominator: str) -> float:
        num, den = arrays.channel(numerator), arrays.channel(denominator)
        return highest_finite([_peak_ratio(t[part], num[part], den[part], strategy)
                               for part in parts])

    def highest_sample(name: str) -> float:
        values = arrays.channel(name)
        return highest_finite([highest_finite(values[part]) for part in parts])

    weight_kg = _known_positive(record.metadata.weight_kg)
    delta = vo2_plateau_delta_ml_min(t, arrays.channel("VO2"), span_s[1], plateau_interval_s)
    vo2peak = peak("VO2")
    rerpeak = peak_ratio("VCO2", "VO2")
    hrpeak = peak("HR") if smooth_hr else highest_sample("HR")
    hr_predicted = predicted_hr_max_bpm(record.metadata.age_years, hr_max_formula)
    hr_pct = 100.0 * hrpeak / hr_predicted
    delta_per_kg = delta / weight_kg
    return {
        "vo2peak_ml_min": vo2peak,
        "vo2peak_ml_kg_min": vo2peak / weight_kg,
        "vco2peak_ml_min": peak("VCO2"),
        "rerpeak": rerpeak,
        "hrpeak_bpm": hrpeak,
        "vepeak_l_min": peak("VE"),
        "o2pulse_peak_ml_beat": peak_ratio("VO2", "HR"),
        "peak_load_w": highest_sample("load"),
        "peak_speed_km_h": highest_sample("speed"),
        "vo2_plateau_delta_ml_min": delta,
        "vo2_plateau_delta_ml_kg_min": delta_per_kg,
        "vo2_plateau_ml_min": _flag(delta < plateau_ml_min, delta),
        "vo2_plateau_ml_kg_min": _flag(delta_per_kg < plateau_ml_kg_min, delta_per_kg),
        "rer_criterion_met": _flag(rerpeak >= rer_min, rerpeak),
        "hr_predicted_max_bpm": hr_predicted,
        "hr_pct_predicted": hr_pct,
        "hr_criterion_met": _flag(hr_pct >= hr_pct_min, hr_pct),
    }


def _peak_ratio(t: np.ndarray, num: np.ndarray, den: np.ndarray,
                strategy: dict[str, object]) -> float:
    """Highest ratio of the averages of two channels, over the samples where both exist."""
    both = np.isfinite(num) & np.isfinite(den)
    _, num_avg = averages(t[both], num[both], **strategy)
    _, den_avg = averages(t[both], den[both], **strategy)
    with np.errstate(divide="ignore", invalid="ignore"):
        return highest_finite(num_avg / den_avg)


def _known_positive(value: float | None) -> float:
    """``value`` as float, NaN when unknown or not positive (never a default)."""
    if value is None or not math.isfinite(value) or value <= 0:
        return math.nan
    return float(value)


def _flag(condition: bool, value: float) -> float:
    """1.0 / 0.0 for a criterion on ``value``; NaN when ``value`` is NaN."""
    return math.nan if math.isnan(value) else float(condition)
