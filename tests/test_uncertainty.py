"""The uncertainty of the consensus thresholds (cpet_nb.physiology.uncertainty)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from synthetic import write_canonical_csv

import cpet_nb
from cpet_nb.physiology.consensus import Consensus
from cpet_nb.physiology.uncertainty import (
    COEFFICIENTS,
    Coefficients,
    combine,
    crossing_width_s,
    disagreement_ml_min,
    edge_s,
    interval_s,
    largest_gap_s,
    threshold_uncertainty,
    vo2_trend,
)

VT1_S, VT2_S = 420.0, 660.0
NAN = math.nan


def noisy_ramp(noise: float, seed: int, duration_s: float = 900.0) -> pd.DataFrame:
    """A breath-by-breath ramp with breakpoints at VT1_S and VT2_S, every gas channel with
    noise ``noise`` times its usual size (``noise`` = 1: 60 mL/min in VO2)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(1.5, 2.5, int(duration_s / 2 * 1.2)))
    t = t[t < duration_s]
    vo2 = 700 + 4.0 * t
    above1, above2 = np.clip(t - VT1_S, 0, None), np.clip(t - VT2_S, 0, None)
    vco2 = 0.9 * vo2 + 2.5 * above1
    ve = 0.026 * vco2 + 0.06 * above2 + 8
    peto2 = 100 + 0.04 * above1
    petco2 = 38 + 0.005 * t - 0.03 * above2

    def jitter(scale: float) -> np.ndarray:
        return rng.normal(0, scale * noise, len(t))

    return pd.DataFrame({"t": t, "VO2": vo2 + jitter(60), "VCO2": vco2 + jitter(60),
                         "VE": ve + jitter(1.5), "PetO2": peto2 + jitter(1.0),
                         "PetCO2": petco2 + jitter(0.7), "HR": 80 + 0.12 * t + jitter(1)})


def uncertainties(tmp_path, noise: float, seed: int) -> dict[str, float]:
    path = tmp_path / f"ramp_{noise}_{seed}.csv"
    write_canonical_csv(noisy_ramp(noise, seed), path, weight_kg=70, age_years=30)
    result = cpet_nb.analyze(path)
    assert result.status != "error", result.findings
    return {f"{label}_{unit}": getattr(u, unit) for label, u in result.uncertainty.items()
            for unit in ("ml_min", "s", "precision_ml_min")}


def test_uncertainty_grows_with_breath_noise(tmp_path):
    levels = (0.3, 1.0, 3.0)
    mean = {level: pd.DataFrame([uncertainties(tmp_path, level, seed)
                                 for seed in range(3)]).mean()
            for level in levels}
    for column in ("vt1_ml_min", "vt2_ml_min", "vt1_s", "vt2_s", "vt1_precision_ml_min",
                   "vt2_precision_ml_min"):
        values = [mean[level][column] for level in levels]
        assert all(np.isfinite(values)), column
        assert values[0] < values[1] < values[2], (column, values)


def test_a_clean_test_is_not_flagged_and_a_very_noisy_one_is(tmp_path):
    clean, noisy = tmp_path / "clean.csv", tmp_path / "noisy.csv"
    write_canonical_csv(noisy_ramp(0.3, 0), clean, weight_kg=70, age_years=30)
    write_canonical_csv(noisy_ramp(6.0, 0), noisy, weight_kg=70, age_years=30)
    assert not cpet_nb.analyze(clean).review["review_uncertainty"]
    flagged = cpet_nb.analyze(noisy)
    assert flagged.review["review_uncertainty"] and flagged.review["review"]
    row = flagged.to_row()
    assert row["vt1_uncertainty_ml_min"] == flagged.uncertainty["vt1"].ml_min
    stricter = cpet_nb.analyze(clean, settings=cpet_nb.Settings(review_uncertainty_ml_min=1.0))
    assert stricter.review["review_uncertainty"]


class Curves(SimpleNamespace):
    def __len__(self) -> int:
        return len(self.time_s)


def logistic_curves(width_s: float) -> Curves:
    """Moderate falls and heavy rises about 300 s, severe rises about 600 s, each switch
    taking about ``width_s``."""
    t = np.arange(0.0, 900.0)
    up1 = 1 / (1 + np.exp(-(t - 300) / width_s))
    up2 = 1 / (1 + np.exp(-(t - 600) / width_s))
    return Curves(time_s=t, p_moderate=1 - up1, p_heavy=up1 - up2, p_severe=up2)


def test_crossing_width_is_longer_when_the_model_hesitates():
    sharp, slow = logistic_curves(5.0), logistic_curves(40.0)
    for label in ("vt1", "vt2"):
        assert crossing_width_s(sharp, label) < crossing_width_s(slow, label)
    # |2 p - 1| < 0.2 about a logistic p of scale w: p from 0.4 to 0.6, 2 w log(1.5) long
    expected = 2 * 5.0 * math.log(0.6 / 0.4)
    assert crossing_width_s(sharp, "vt1") == pytest.approx(expected, abs=1.0)
    assert math.isnan(crossing_width_s(None, "vt1"))
    never = Curves(time_s=np.arange(3.0), p_moderate=np.ones(3), p_heavy=np.zeros(3),
                   p_severe=np.zeros(3))
    assert math.isnan(crossing_width_s(never, "vt1"))


def test_gaps_edges_and_the_trend():
    assert largest_gap_s(np.array([100.0, 102.0, 150.0]), 120.0, 90.0) == 70.0  # 30 -> 100
    assert largest_gap_s(np.array([]), 120.0, 90.0) == 180.0
    assert edge_s(100.0, (0.0, 600.0)) == 0.0
    assert edge_s(570.0, (0.0, 600.0)) == 30.0
    t = np.arange(0.0, 100.0)
    rate, noise = vo2_trend(t, 1000 + 5 * t)
    assert rate == pytest.approx(5.0) and noise == pytest.approx(0.0, abs=1e-6)
    assert all(math.isnan(v) for v in vo2_trend(t[:3], t[:3]))


def est(vo2: float) -> SimpleNamespace:
    return SimpleNamespace(time_s=300.0, vo2_ml_min=vo2)


def test_disagreement_is_the_median_deviation_of_the_estimates_behind_the_consensus():
    agreed = Consensus(300.0, 2000.0, 10.0, 400.0, 3, ("a", "b", "c"))
    estimates = {"a": est(1900.0), "b": est(2000.0), "c": est(2300.0), "d": est(9999.0)}
    assert disagreement_ml_min(agreed, estimates) == 100.0  # d had no weight: not behind it


def test_precision_is_the_median_interval_of_the_classical_estimates_behind_the_consensus():
    def with_interval(low_s: float, high_s: float) -> SimpleNamespace:
        return SimpleNamespace(time_s=300.0, vo2_ml_min=2000.0, interval_s=high_s - low_s)

    agreed = Consensus(300.0, 2000.0, 10.0, 400.0, 4, ("a", "b", "c", "model"))
    estimates = {"a": with_interval(280, 300), "b": with_interval(250, 330),
                 "c": with_interval(290, 350), "d": with_interval(0, 900), "model": est(2000.0)}
    assert interval_s(agreed, estimates) == 60.0  # 20, 80, 60; d not behind it, model has none
    assert math.isnan(interval_s(Consensus(300.0, 2000.0, NAN, NAN, 1, ("model",)), estimates))
    with_weight = Coefficients(base_ml_min=0.0, noise=0.0, disagreement=0.0, model=0.0,
                               precision=0.5)
    assert combine(NAN, NAN, NAN, with_weight, precision_ml_min=100.0) == 50.0
    assert math.isnan(combine(NAN, NAN, NAN, with_weight))


def test_a_component_without_weight_may_be_missing_one_with_weight_may_not():
    only_noise = Coefficients(base_ml_min=50.0, noise=2.0, disagreement=0.0, model=0.0)
    assert combine(10.0, math.nan, math.nan, only_noise) == 70.0
    assert math.isnan(combine(10.0, 5.0, math.nan, COEFFICIENTS["vt1"]))


def test_a_threshold_without_consensus_has_no_uncertainty():
    missing = Consensus(math.nan, math.nan, math.nan, math.nan, 0, ())
    data = pd.DataFrame({"t": np.arange(0.0, 600.0), "VO2": np.linspace(500, 3000, 600)})
    u = threshold_uncertainty(data, missing, {}, None, "vt1", (0.0, 599.0))
    assert math.isnan(u.ml_min) and math.isnan(u.s)
