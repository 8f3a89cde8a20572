"""Was the test maximal? One stated convention over the criteria of
:func:`~cpet_nb.physiology.measures.peak_measures`.

There is no agreed rule (Howley et al. 1995; Midgley et al. 2007; Poole & Jones 2017). A
single failed secondary criterion is a weak reason to doubt a test: RERpeak and HRpeak vary
widely between people at a true VO2max (HR by about ±10 1/min around any age prediction,
Tanaka et al. 2001), and on a ramp a plateau is often absent though VO2max is reached
(Poole & Jones 2017). The conventions (:data:`EFFORT_CONVENTIONS`, setting
``effort_convention``):

``plateau-or-secondary`` (default)
    a VO2 plateau (``vo2_plateau_ml_min``: VO2 rose by less than 150 mL/min over the last
    30 s of exercise, after Taylor et al. 1955) or, without one, the secondary criteria:
    RERpeak at or above ``rer_criterion`` and HRpeak at or above ``hr_criterion_pct`` of
    the age-predicted maximum. This is the usual "plateau, or else at least two secondary
    criteria" reviewed by Howley et al. (1995) and Midgley et al. (2007), with the
    secondary criteria an export holds (blood lactate and perceived exertion are not in
    them), so "two" means both;
``secondary``
    both secondary criteria, whatever the plateau (what cpet_nb did before);
``plateau``
    the plateau alone (Taylor et al. 1955);
``off``
    no judgement: ``effort_met`` is NaN and never raises ``review_effort``.

:func:`effort_met` is three-valued: a criterion that cannot be computed (no HR, no age) is
unknown, and the verdict is unknown unless the known criteria decide it (Kleene's logic: a
plateau passes whatever RER and HR are; no plateau and a failed RER fails whatever HR is).

References
----------
Taylor HL, Buskirk E, Henschel A (1955). Maximal oxygen intake as an objective measure of
cardio-respiratory performance. J Appl Physiol 8:73-80.
Howley ET, Bassett DR, Welch HG (1995). Criteria for maximal oxygen uptake: review and
commentary. Med Sci Sports Exerc 27:1292-1301.
Midgley AW, McNaughton LR, Polman R, Marchant D (2007). Criteria for determination of maximal
oxygen uptake: a brief critique and recommendations for future research. Sports Med
37:1019-1028.
Poole DC, Jones AM (2017). Measurement of the maximum oxygen uptake VO2max: VO2peak is no
longer acceptable. J Appl Physiol 122:997-1002.
Tanaka H, Monahan KD, Seals DR (2001). Age-predicted maximal heart rate revisited. J Am Coll
Cardiol 37:153-156.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from .._checks import check_choice

#: The conventions of :func:`effort_met` (module docstring); the first is the default.
EFFORT_CONVENTIONS: tuple[str, ...] = ("plateau-or-secondary", "secondary", "plateau", "off")
#: The key :func:`effort_measures` adds to the measures (a results column).
EFFORT_MEASURES: tuple[str, ...] = ("effort_met",)
#: The criteria (keys of :func:`~cpet_nb.physiology.measures.peak_measures`: 1.0, 0.0 or NaN).
PLATEAU, RER, HR = "vo2_plateau_ml_min", "rer_criterion_met", "hr_criterion_met"


def effort_met(measures: Mapping[str, float], convention: str = EFFORT_CONVENTIONS[0]) -> float:
    """Whether the test meets the effort ``convention``: 1.0, 0.0, or NaN when unknown.

    Parameters
    ----------
    measures : mapping of str to float
        At least ``vo2_plateau_ml_min``, ``rer_criterion_met`` and ``hr_criterion_met``
        (1.0 met, 0.0 not, NaN unknown), as :func:`~cpet_nb.physiology.measures.peak_measures`
        returns them.
    convention : str
        One of :data:`EFFORT_CONVENTIONS`.

    Returns
    -------
    float

    Examples
    --------
    >>> effort_met({"vo2_plateau_ml_min": 0.0, "rer_criterion_met": 1.0,
    ...             "hr_criterion_met": 0.0})
    0.0
    >>> effort_met({"vo2_plateau_ml_min": 1.0, "rer_criterion_met": 0.0,
    ...             "hr_criterion_met": float("nan")})
    1.0
    """
    check_choice(convention, EFFORT_CONVENTIONS, "convention")
    plateau, rer, hr = (_truth(measures.get(key)) for key in (PLATEAU, RER, HR))
    if convention == "off":
        return math.nan
    if convention == "plateau":
        return _number(plateau)
    secondary = _all(rer, hr)
    return _number(secondary if convention == "secondary" else _any(plateau, secondary))


def effort_measures(measures: Mapping[str, float], convention: str = EFFORT_CONVENTIONS[0]
                    ) -> dict[str, float]:
    """``{"effort_met": ...}`` (:func:`effort_met`), to add to a test's measures."""
    return {"effort_met": effort_met(measures, convention)}


def _truth(value: float | None) -> bool | None:
    """A criterion as True, False or None (unknown)."""
    if value is None or not math.isfinite(float(value)):
        return None
    return bool(value)


def _all(*values: bool | None) -> bool | None:
    """Kleene conjunction: False if any is False, else None if any is unknown."""
    if any(v is False for v in values):
        return False
    return None if any(v is None for v in values) else True


def _any(*values: bool | None) -> bool | None:
    """Kleene disjunction: True if any is True, else None if any is unknown."""
    if any(v is True for v in values):
        return True
    return None if any(v is None for v in values) else False


def _number(value: bool | None) -> float:
    return math.nan if value is None else float(value)
