"""Classical ventilatory thresholds: known breakpoints, reasons for no estimate, real tests."""

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from samples import sample
from synthetic import ramp_test

import cpet_nb
from cpet_nb.physiology.thresholds import (
    CLASSICAL_METHODS,
    Preparation,
    classical_thresholds,
    equivalents_vt1,
    equivalents_vt2,
    exercise_bins,
    hinge_fit,
    petco2_vt2,
    peto2_vt1,
    vo2_fraction_s,
    vslope_vt1,
    vslope_vt2,
)

CLASSICAL_REFERENCE = Path(__file__).parent / "data" / "classical_reference.csv"
VT1_S, VT2_S = 520.0, 720.0
VO2_START, VO2_RATE = 300.0, 4.0  # mL/min and mL/min per s


def known_test(seed: int = 0, duration_s: float = 900.0, breath_s: float = 2.0,
               noise: float = 1.0) -> pd.DataFrame:
    """A ramp whose breakpoints are all known: VT1 at 520 s, VT2 at 720 s.

    VCO2/VO2 slope 0.9 -> 1.3 at VT1; VE/VCO2 level at 28 until VT2, then rising (so VE/VO2
    rises from VT1 and VE-VCO2 steepens at VT2); PetO2 level until VT1 then rising; PetCO2
    level until VT2 then falling. Peak VO2 3900 mL/min: VT1 at 61 %, VT2 at 82 %. Every
    channel's breath noise is ``noise`` times its usual size (60 mL/min in VO2).
    """
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, breath_s)
    vo2 = VO2_START + VO2_RATE * t
    vco2 = 0.9 * vo2 + 0.4 * VO2_RATE * np.maximum(t - VT1_S, 0)
    ve = (28 + 0.02 * np.maximum(t - VT2_S, 0)) * vco2 / 1000
    peto2 = 95 + 0.02 * np.maximum(t - VT1_S, 0)
    petco2 = 40 - 0.03 * np.maximum(t - VT2_S, 0)

    def noisy(values, scale):
        return values + rng.normal(0, scale * noise, len(t))

    return pd.DataFrame({"t": t, "VO2": noisy(vo2, 60), "VCO2": noisy(vco2, 60),
                         "VE": noisy(ve, 1.5), "PetO2": noisy(peto2, 1.0),
                         "PetCO2": noisy(petco2, 0.7)})


def vo2_at(time_s: float) -> float:
    return VO2_START + VO2_RATE * time_s


def test_hinge_fit_finds_an_exact_breakpoint():
    x = np.linspace(0, 100, 101)
    fit = hinge_fit(x, 2 + 0.5 * x + 1.5 * np.maximum(x - 40, 0), min_points=5)
    assert fit.x == pytest.approx(40)
    assert (fit.slope_below, fit.slope_above) == (pytest.approx(0.5), pytest.approx(2.0))
    plateau = hinge_fit(x[::-1], 3 - 2 * np.maximum(x[::-1] - 60, 0), 5, flat_below=True)
    assert (plateau.x, plateau.slope_below, plateau.slope_above) == (
        pytest.approx(60), 0.0, pytest.approx(-2.0))


def test_hinge_fit_interval_holds_the_breakpoint_and_widens_with_noise():
    x = np.linspace(0, 100, 101)
    clean = 2 + 0.5 * x + 1.5 * np.maximum(x - 40, 0)
    exact = hinge_fit(x, clean, min_points=5)
    assert exact.x_low == exact.x_high == pytest.approx(40)  # no residual: only the best
    widths = {}
    for noise in (1.0, 4.0, 16.0):
        fits = [hinge_fit(x, clean + np.random.default_rng(seed).normal(0, noise, len(x)), 5)
                for seed in range(10)]
        assert all(f.x_low <= f.x <= f.x_high for f in fits)
        widths[noise] = np.mean([f.x_high - f.x_low for f in fits])
        if noise == 1.0:  # the true breakpoint lies in nearly every 95 % interval
            assert sum(f.x_low <= 40 <= f.x_high for f in fits) >= 8
    assert widths[1.0] < widths[4.0] < widths[16.0], widths


def test_each_methods_breakpoint_interval_widens_with_breath_noise():
    def intervals(noise: float) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {key: [] for key in CLASSICAL_METHODS}
        for seed in range(4):
            for key, e in classical_thresholds(known_test(seed, noise=noise)).items():
                if e.found:
                    assert e.time_low_s <= e.time_s <= e.time_high_s, (key, e)
                    out[key].append(e.interval_s)
        return out

    quiet, noisy = intervals(0.5), intervals(3.0)
    for key in CLASSICAL_METHODS:
        assert quiet[key] and noisy[key], key
        assert np.mean(quiet[key]) < np.mean(noisy[key]), (key, quiet[key], noisy[key])
    missing = vslope_vt1(known_test().drop(columns="VCO2"))
    assert math.isnan(missing.interval_s) and math.isnan(missing.time_low_s)


def test_hinge_fit_memory_grows_linearly_not_with_the_square():
    x = np.linspace(0.0, 1000.0, 4000)
    y = np.maximum(x - 600.0, 0.0) + np.random.default_rng(0).normal(0.0, 5.0, len(x))
    tracemalloc.start()
    try:
        fit = hinge_fit(x, y, min_points=30)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert abs(fit.x - 600.0) < 5.0 and abs(fit.slope_above - 1.0) < 0.01
    assert peak_bytes < 20e6  # O(n): about 1 MB here; 4000 x 4000 matrices took 250 MB


def test_hinge_fit_with_ties_below_the_breakpoint_is_no_linear_algebra_error():
    x = np.r_[np.full(5, 10.0), np.arange(11.0, 31.0)]  # the first five samples tie
    fit = hinge_fit(x, 2 + 0.5 * x + 1.5 * np.maximum(x - 20, 0), min_points=5)
    assert (fit.x, round(fit.slope_below, 9), round(fit.slope_above, 9)) == (20.0, 0.5, 2.0)


def test_classical_estimates_equal_those_of_the_explicit_hinge_matrices(bundled_results):
    """The running-sum fit gives the estimates of the n x n formulation it replaced (stored
    in tests/data/classical_reference.csv) on all 139 bundled tests."""
    reference = pd.read_csv(CLASSICAL_REFERENCE, comment="#")
    now = pd.DataFrame([{"file": name, "method": key, "time_s": e.time_s,
                         "vo2_ml_min": e.vo2_ml_min}
                        for name, result in bundled_results.items()
                        for key, e in result.classical.items()])
    both = reference.merge(now, on=["file", "method"], how="outer", suffixes=("", "_now"),
                           validate="1:1")
    assert len(both) == len(reference) == 139 * 6
    np.testing.assert_array_equal(both["time_s_now"], both["time_s"])
    np.testing.assert_allclose(both["vo2_ml_min_now"], both["vo2_ml_min"], rtol=1e-9)


def test_hinge_fit_keeps_min_points_on_each_side():
    x = np.arange(20.0)
    fit = hinge_fit(x, np.maximum(x - 1, 0), min_points=6)  # true break too early to reach
    assert fit.x == 5  # the 6th point: six at or below it, fourteen above


@pytest.mark.parametrize("key", ["vt1_vslope", "vt1_equivalents", "vt1_peto2",
                                 "vt2_equivalents", "vt2_petco2", "vt2_vslope"])
def test_each_method_recovers_a_known_breakpoint(key):
    truth = VT1_S if key.startswith("vt1") else VT2_S
    estimates = [classical_thresholds(known_test(seed))[key] for seed in range(5)]
    assert all(e.found for e in estimates)
    time_errors = np.abs([e.time_s - truth for e in estimates])
    vo2_errors = np.abs([e.vo2_ml_min - vo2_at(truth) for e in estimates])
    assert np.median(time_errors) <= 30 and time_errors.max() <= 60
    assert np.median(vo2_errors) <= 120


def test_vslope_finds_the_vco2_vo2_breakpoint():
    # VCO2 = VO2 below 1500 mL/min, slope 1.4 above; breath-by-breath noise
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(1.5, 3.5, 300))
    vo2 = 500 + 4.0 * t
    vco2 = np.where(vo2 < 1500, vo2, 1500 + 1.4 * (vo2 - 1500))
    data = pd.DataFrame({"t": t, "VO2": vo2 + rng.normal(0, 50, len(t)),
                         "VCO2": vco2 + rng.normal(0, 50, len(t))})
    estimate = vslope_vt1(data)
    assert estimate.found and estimate.method == "vslope" and estimate.threshold == "VT1"
    assert estimate.vo2_ml_min == pytest.approx(1500, abs=100)
    assert estimate.time_s == pytest.approx(250, abs=30)  # VO2 reaches 1500 at 250 s


def test_synthetic_ramp_test_thresholds():
    estimates = classical_thresholds(ramp_test())  # VT1 at 360 s, VT2 at 560 s
    vt1 = [e.time_s for k, e in estimates.items() if k.startswith("vt1")]
    vt2 = [e.time_s for k, e in estimates.items() if k.startswith("vt2")]
    assert np.allclose(vt1, 360, atol=30)
    assert np.median(vt2) == pytest.approx(560, abs=30)


@pytest.mark.parametrize("method, channel", [
    (vslope_vt1, "VCO2"), (equivalents_vt1, "VE"), (peto2_vt1, "PetO2"),
    (equivalents_vt2, "VCO2"), (petco2_vt2, "PetCO2"), (vslope_vt2, "VE")])
@pytest.mark.parametrize("how", ["absent", "all NaN"])
def test_a_missing_channel_is_the_reason(method, channel, how):
    data = known_test()
    if how == "absent":
        data = data.drop(columns=channel)
    else:
        data[channel] = np.nan
    estimate = method(data)
    assert not estimate.found
    assert estimate.reason == f"missing channel {channel}"
    assert math.isnan(estimate.time_s) and math.isnan(estimate.vo2_ml_min)


def test_every_method_says_why_without_end_tidal_gases():
    estimates = classical_thresholds(known_test().drop(columns=["PetO2", "PetCO2"]))
    assert estimates["vt1_peto2"].reason == "missing channel PetO2"
    assert estimates["vt2_petco2"].reason == "missing channel PetCO2"
    assert all(e.found for k, e in estimates.items() if "pet" not in k)


def test_too_short_a_test_is_the_reason():
    estimate = vslope_vt1(known_test(duration_s=150))
    assert estimate.reason == "too few points after 1 min of exercise: 9 bins of 10 s, need 12"
    assert vslope_vt1(known_test(duration_s=30)).reason.endswith(": 0 bins of 10 s, need 12")
    window = equivalents_vt2(known_test(), after_s=820)
    assert window.reason.startswith("too few points after 1 min of exercise (after 820 s):")


def test_no_breakpoint_is_the_reason():
    data = known_test()
    data["VCO2"] = 0.95 * data["VO2"]  # one straight line
    data["PetCO2"] = 38 + 0.01 * data["t"]  # rising to the end
    assert vslope_vt1(data).reason.startswith("no breakpoint: VCO2-VO2 slope changes by")
    assert petco2_vt2(data).reason.startswith("no breakpoint: PetCO2 does not fall")


def test_exercise_phase_bounds_the_data():
    data = known_test()
    data["phase"] = np.where(data["t"] < 100, "REST",
                             np.where(data["t"] > 850, "RECOVERY", " exercise "))
    bins = exercise_bins(data, Preparation(bin_s=10, skip_start_s=60))
    assert bins["t"].min() >= 160 and bins["t"].max() <= 850
    assert len(bins) == pytest.approx((850 - 160) / 10, abs=1)
    no_phase = exercise_bins(known_test(), Preparation(bin_s=10, skip_start_s=60))
    assert no_phase["t"].min() == pytest.approx(64)  # mean of the samples at 60, 62, ... 68 s


def test_search_floor_is_a_fraction_of_peak_vo2():
    noiseless = known_test().assign(VO2=lambda d: vo2_at(d["t"]))
    peak = vo2_at(898.0)
    assert vo2_fraction_s(noiseless, 0.5) == pytest.approx((peak / 2 - VO2_START) / VO2_RATE,
                                                           abs=10)
    assert math.isnan(vo2_fraction_s(noiseless, 0))


@pytest.mark.parametrize("name", ["data_test.csv", "ramp_real_test_2.csv",
                                  "ramp_real_test_4.csv", "resting_real_test_2.csv"])
def test_real_tests_give_thresholds_inside_the_test_in_order(name):
    record = cpet_nb.read(cpet_nb.datasets.pyoxynet_data_dir() / name)
    t = record.data["t"]
    estimates = classical_thresholds(record)
    found = {k: e for k, e in estimates.items() if e.found}
    assert len(found) >= 5
    for estimate in found.values():
        assert t.iloc[0] < estimate.time_s < t.iloc[-1]
        assert 500 < estimate.vo2_ml_min < record.data["VO2"].max()
    vt1 = np.median([e.time_s for k, e in found.items() if k.startswith("vt1")])
    vt2 = [e.time_s for k, e in found.items() if k.startswith("vt2")]
    assert vt1 < min(vt2)


def test_real_cart_export_with_phases():
    record = cpet_nb.read(sample("zan/zan_ramp"))
    exercise = record.data.loc[record.data["phase"] == "EXERCISE", "t"]
    estimates = classical_thresholds(record)
    assert estimates["vt1_peto2"].reason == "missing channel PetO2"
    found = [e for e in estimates.values() if e.found]
    assert len(found) == 4
    assert all(exercise.min() + 60 <= e.time_s <= exercise.max() for e in found)
    assert estimates["vt1_vslope"].time_s < estimates["vt2_equivalents"].time_s


def test_the_json_export_keeps_each_breakpoints_interval(bundled_results):
    result = bundled_results["ramp_real_test_1.csv"]
    exported = result.to_dict()["classical"]
    for key, estimate in result.classical.items():
        if estimate.found:
            assert exported[key]["time_low_s"] == estimate.time_low_s <= estimate.time_s
            assert exported[key]["time_high_s"] == estimate.time_high_s >= estimate.time_s
