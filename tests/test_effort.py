"""The effort convention (cpet_nb.physiology.effort) and its settings."""

from __future__ import annotations

import math

import pytest

import cpet_nb
from cpet_nb.physiology.effort import EFFORT_CONVENTIONS, effort_met

NAN = math.nan


def criteria(plateau: float, rer: float, hr: float) -> dict[str, float]:
    return {"vo2_plateau_ml_min": plateau, "rer_criterion_met": rer, "hr_criterion_met": hr}


@pytest.mark.parametrize(("plateau", "rer", "hr", "expected"), [
    (1.0, 0.0, 0.0, 1.0),  # a plateau is enough
    (0.0, 1.0, 1.0, 1.0),  # without one, both secondary criteria
    (0.0, 1.0, 0.0, 0.0),  # one secondary criterion failing is not enough
    (0.0, 0.0, 1.0, 0.0),
    (1.0, NAN, NAN, 1.0),  # unknown criteria do not matter once a plateau decides
    (0.0, 0.0, NAN, 0.0),  # nor once RER fails without a plateau
    (0.0, 1.0, NAN, NAN),  # HR would decide: unknown (no age, no HR)
    (NAN, 1.0, 1.0, 1.0),
    (NAN, 1.0, 0.0, NAN),
])
def test_plateau_or_secondary_convention(plateau, rer, hr, expected):
    got = effort_met(criteria(plateau, rer, hr))
    assert got == expected or (math.isnan(got) and math.isnan(expected))


@pytest.mark.parametrize(("convention", "expected"), [
    ("plateau-or-secondary", 1.0), ("secondary", 0.0), ("plateau", 1.0), ("off", NAN),
])
def test_each_convention_on_a_plateau_with_a_low_rer(convention, expected):
    got = effort_met(criteria(1.0, 0.0, 1.0), convention)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_an_unknown_convention_is_refused():
    with pytest.raises(ValueError, match="convention"):
        effort_met(criteria(1.0, 1.0, 1.0), "strict")


def test_effort_setting_is_validated_and_read_from_the_environment():
    assert cpet_nb.Settings().effort_convention == EFFORT_CONVENTIONS[0]
    with pytest.raises(ValueError, match="effort_convention"):
        cpet_nb.Settings(effort_convention="strict")
    with pytest.raises(ValueError, match="review_uncertainty_ml_min"):
        cpet_nb.Settings(review_uncertainty_ml_min=0.0)
    loaded = cpet_nb.Settings.load(environ={"CPET_NB_EFFORT_CONVENTION": "secondary",
                                            "CPET_NB_REVIEW_UNCERTAINTY_ML_MIN": "300"})
    assert loaded.effort_convention == "secondary" and loaded.review_uncertainty_ml_min == 300.0
    assert loaded.analysis_key("m") != cpet_nb.Settings().analysis_key("m")


def test_the_convention_decides_review_effort(bundled_results):
    """A bundled test with a plateau and an RER below 1.10 passes the default convention and
    fails the secondary-criteria one."""
    name, result = next((name, r) for name, r in bundled_results.items()
                        if r.measures["vo2_plateau_ml_min"] == 1.0
                        and r.measures["rer_criterion_met"] == 0.0)
    assert result.measures["effort_met"] == 1.0 and not result.review["review_effort"]
    path = next(p for p in cpet_nb.datasets.pyoxynet_tests() if p.name == name)
    strict = cpet_nb.analyze(path, settings=cpet_nb.Settings(effort_convention="secondary"))
    assert strict.measures["effort_met"] == 0.0 and strict.review["review_effort"]
    assert strict.to_row()["effort_met"] == 0.0
