"""Consensus of threshold estimates and review flags, on hand-built estimates."""

import math
from functools import partial

import numpy as np
import pytest

import cpet_nb
from cpet_nb import Finding, Severity, Threshold
from cpet_nb.physiology.consensus import (
    MODEL_VOTE_LAG_S,
    REVIEW_FLAGS,
    Consensus,
    consensus,
    lag_corrected,
    lag_corrected_votes,
    review_flags,
    threshold_consensus,
    weighted_median,
)
from cpet_nb.physiology.thresholds import ThresholdEstimate, vo2_at

NAN = math.nan


def est(time_s: float, vo2: float, threshold: str = "VT1", method: str = "m"
        ) -> ThresholdEstimate:
    reason = "no breakpoint: test" if math.isnan(time_s) and math.isnan(vo2) else None
    return ThresholdEstimate(method, threshold, time_s, vo2, reason)


def model(time_s: float, vo2: float) -> Threshold:
    return Threshold(time_s, vo2, NAN, NAN, NAN, NAN, NAN)


def agreed(time_s: float, vo2: float, spread_vo2: float = 100.0, n: int = 3) -> Consensus:
    return Consensus(time_s, vo2, 30.0, spread_vo2, n, ("a", "b", "c")[:n])


@pytest.mark.parametrize("values, weights, expected", [
    ([3, 1, 2], [1, 1, 1], 2.0),
    ([4, 1, 3, 2], [1, 1, 1, 1], 2.5),  # equal weights: the plain median
    ([1, 2, 10], [1, 1, 3], 10.0),
    ([1, 2, 10], [1, 1, 2], 6.0),  # half the weight reached exactly at 2: midpoint with 10
    ([1, NAN, 3, 100], [1, 5, 1, 0], 2.0),  # NaN and zero weights left out
    ([NAN, NAN], [1, 1], NAN),
])
def test_weighted_median(values, weights, expected):
    result = weighted_median(np.array(values, dtype=float), np.array(weights, dtype=float))
    assert result == pytest.approx(expected, nan_ok=True)


def test_vt1_consensus_is_the_median_of_what_is_available():
    estimates = {"vt1_vslope": est(300, 2000), "vt1_equivalents": est(330, 2150),
                 "vt1_peto2": est(NAN, NAN), "vt1_model": model(420, 2500)}
    result = consensus(estimates)
    assert (result.time_s, result.vo2_ml_min) == (330, 2150)
    assert (result.spread_time_s, result.spread_vo2_ml_min) == (120, 500)
    assert result.n_methods == 3
    assert result.methods == ("vt1_vslope", "vt1_equivalents", "vt1_model")


def test_vt2_default_weights_count_the_model_twice_and_not_the_ve_vslope():
    estimates = {"vt2_equivalents": est(600, 3000, "VT2"), "vt2_petco2": est(640, 3100, "VT2"),
                 "vt2_vslope": est(300, 1800, "VT2"), "vt2_model": model(700, 3300)}
    result = consensus(estimates)
    assert result.time_s == 670 and result.vo2_ml_min == 3200  # midpoints, see weighted_median
    assert result.spread_vo2_ml_min == 300 and result.n_methods == 3
    plain = consensus(estimates, weights={})
    assert plain.time_s == 620 and plain.n_methods == 4


def test_an_estimate_without_vo2_still_counts_for_time():
    result = consensus({"a": est(100, NAN), "b": est(200, 1500), "c": None})
    assert result.time_s == 150 and result.vo2_ml_min == 1500
    assert math.isnan(result.spread_vo2_ml_min) and result.spread_time_s == 100
    assert result.n_methods == 2


def test_no_estimate_gives_nan_and_zero_methods():
    result = consensus({"vt1_vslope": est(NAN, NAN), "vt1_model": None})
    assert math.isnan(result.time_s) and math.isnan(result.vo2_ml_min)
    assert result.n_methods == 0 and result.methods == ()


def test_threshold_consensus_groups_by_threshold_and_adds_the_model():
    classical = {"vt1_vslope": est(300, 2000), "vt1_peto2": est(320, 2100),
                 "vt2_equivalents": est(600, 3000, "VT2"), "vt2_petco2": est(620, 3050, "VT2")}
    both = threshold_consensus(classical, model(400, 2400), None)
    assert both["vt1"].methods == ("vt1_vslope", "vt1_peto2", "vt1_model")
    assert both["vt1"].time_s == 320
    assert both["vt2"].methods == ("vt2_equivalents", "vt2_petco2")
    assert both["vt2"].time_s == 610


def test_a_late_model_votes_earlier_with_the_vo2_read_there():
    def vo2_of(time_s: float) -> float:
        return 1000.0 + 2.0 * time_s

    vote = lag_corrected(model(400.0, 1900.0), 95.0, vo2_of)
    assert (vote.time_s, vote.vo2_ml_min) == (305.0, 1610.0)
    unknown = model(400.0, 1900.0)
    assert lag_corrected(unknown, 0.0, vo2_of) is unknown
    assert lag_corrected(None, 95.0, vo2_of) is None
    assert lag_corrected(model(NAN, NAN), 95.0, vo2_of).time_s != 305.0
    # VO2 that cannot be read stays missing: the vote still counts for time
    blind = lag_corrected(model(400.0, 1900.0), 95.0, lambda t: NAN)
    assert blind.time_s == 305.0 and math.isnan(blind.vo2_ml_min)
    agreed_ = consensus({"vt1_a": est(290.0, 1500.0), "vt1_model": blind})
    assert (agreed_.time_s, agreed_.vo2_ml_min) == (297.5, 1500.0)
    vt1, vt2 = lag_corrected_votes(model(400.0, 1.0), None, {"vt1": 95.0}, vo2_of)
    assert vt1.time_s == 305.0 and vt2 is None


def test_analyze_votes_with_the_cnn_moved_earlier_by_its_lag(bundled_tests):
    record = cpet_nb.read(bundled_tests[1])
    result = cpet_nb.analyze(record)
    assert result.vt1 is not None and result.vt2 is not None
    lags = MODEL_VOTE_LAG_S["cnn"]
    votes = lag_corrected_votes(result.vt1, result.vt2, lags, partial(vo2_at, record))
    assert votes[0].time_s == result.vt1.time_s - lags["vt1"]
    assert threshold_consensus(result.classical, *votes) == result.consensus
    assert threshold_consensus(result.classical, result.vt1, result.vt2) != result.consensus
    # the model's own thresholds are reported as it gives them
    assert result.to_row()["vt1_time_s"] == result.vt1.time_s


def test_review_flags_when_all_is_well():
    flags = review_flags(agreed(300, 2000), agreed(500, 3000), effort={"effort_met": 1.0},
                         uncertainty_ml_min={"vt1": 100.0, "vt2": 120.0},
                         max_uncertainty_ml_min=150.0)
    assert list(flags) == list(REVIEW_FLAGS)
    assert not any(flags.values())


@pytest.mark.parametrize("flag, vt1, vt2, kwargs", [
    ("review_uncertainty", agreed(300, 2000), agreed(500, 3000),
     {"uncertainty_ml_min": {"vt1": 251.0, "vt2": 100.0}, "max_uncertainty_ml_min": 250.0}),
    ("review_uncertainty", agreed(300, 2000), agreed(500, 3000),
     {"uncertainty_ml_min": {"vt1": 100.0, "vt2": NAN}, "max_uncertainty_ml_min": 250.0}),
    ("review_vt_missing", agreed(NAN, NAN, spread_vo2=NAN, n=0), agreed(500, 3000), {}),
    ("review_vt_order", agreed(500, 2000), agreed(500, 3000), {}),
    ("review_vt_order", agreed(300, 3000), agreed(500, 2900), {}),
    ("review_model_swap", agreed(300, 2000), agreed(500, 3000), {"model_findings": ["vt-order"]}),
    ("review_model_swap", agreed(300, 2000), agreed(500, 3000), {"model_findings": [
        Finding("domain-mapping-ambiguous", Severity.WARNING, "same output at both ends")]}),
    ("review_effort", agreed(300, 2000), agreed(500, 3000),
     {"effort": {"effort_met": 0.0}}),
])
def test_each_review_flag(flag, vt1, vt2, kwargs):
    flags = review_flags(vt1, vt2, **kwargs)
    assert flags[flag] and flags["review"]
    assert [name for name, raised in flags.items() if raised] == [flag, "review"]


def test_unknown_is_not_a_failure_and_uncertainty_at_the_limit_passes():
    flags = review_flags(agreed(300, 2000, spread_vo2=900), agreed(500, 3000, spread_vo2=NAN),
                         uncertainty_ml_min={"vt1": 250.0, "vt2": 250.0},
                         max_uncertainty_ml_min=250.0, model_findings=["vt1-not-found"],
                         effort={"rer": NAN, "hr": None, "plateau": np.float64("nan")})
    assert not flags["review"]
