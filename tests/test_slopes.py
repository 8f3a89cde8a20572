"""Submaximal slopes and efficiency: known answers on built data, plausibility on real tests."""

import math

import numpy as np
import pandas as pd
import pytest
from samples import sample
from synthetic import ramp_test

import cpet_nb
from cpet_nb.physiology import efficiency, slopes
from cpet_nb.record import CPETRecord, Metadata

KEYS = {
    "ve_vco2_slope", "ve_vco2_slope_to_vt2", "ve_vco2_at_vt1", "ve_vco2_nadir",
    "oues_ml_min_per_log_l_min", "oues_90pct_ml_min_per_log_l_min",
    "oues_75pct_ml_min_per_log_l_min", "vo2_work_rate_slope_ml_min_w",
    "gross_efficiency_peak_pct", "hr_vo2_slope_bpm_per_l_min",
}


def record(frame: pd.DataFrame) -> CPETRecord:
    return CPETRecord(frame, Metadata("built"))


def breaths(duration_s: float = 600.0, step_s: float = 2.5, seed: int = 1) -> np.ndarray:
    """Irregular breath times in [0, duration_s)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.6, 1.4, int(duration_s / step_s * 1.4)) * step_s)
    return t[t < duration_s]


def ventilation_test(vt2_s: float = 450.0, seed: int = 2) -> pd.DataFrame:
    """VE = 0.028·VCO2 + 2 (L/min, VCO2 in mL/min) plus noise, steeper after ``vt2_s``."""
    rng = np.random.default_rng(seed)
    t = breaths()
    vco2 = 500 + 5.0 * t
    ve = 0.028 * vco2 + 2 + 0.08 * np.clip(t - vt2_s, 0, None) + rng.normal(0, 1.5, len(t))
    return pd.DataFrame({"t": t, "VCO2": vco2, "VE": ve})


def cycle_ramp(seed: int = 3) -> pd.DataFrame:
    """2 min rest at 0 W, 2 min warm-up at 20 W, a 25 W/min ramp (2.5 W every 6 s) for 10 min,
    2 min recovery at 0 W. VO2 = 10 mL/min/W above a 700 mL/min baseline, delayed 40 s."""
    rng = np.random.default_rng(seed)
    t = breaths(duration_s=960.0, seed=seed)

    def load(at):
        ramp = 20 + 2.5 * (np.floor((at - 240) / 6) + 1)
        return np.select([at < 120, at < 240, at < 840], [0.0, 20.0, ramp], 0.0)

    vo2 = 700 + 10 * load(t - 40) + rng.normal(0, 60, len(t))
    return pd.DataFrame({"t": t, "VO2": vo2, "VCO2": 0.9 * vo2, "load": load(t)})


# --- VE/VCO2 -------------------------------------------------------------------------------

def test_ve_vco2_slope_known_answer_whole_and_to_vt2():
    data = ventilation_test(vt2_s=450.0)
    assert slopes.ve_vco2_slope(data, until_s=450.0) == pytest.approx(28.0, abs=0.5)
    assert slopes.ve_vco2_slope(data, until_s=450.0, average_s=0) == pytest.approx(28.0, abs=0.5)
    # above VT2 VE steepens (0.08 L/min per s over 5 mL/min per s = +16): the whole-test slope
    # lies well above the slope to VT2
    assert slopes.ve_vco2_slope(data) > 30.0


def test_ve_vco2_slope_uses_exercise_phase_only():
    data = ventilation_test()
    data["phase"] = np.where(data["t"] < 450.0, "EXERCISE", "RECOVERY")
    assert slopes.ve_vco2_slope(data) == pytest.approx(28.0, abs=0.5)  # post-VT2 rows left out
    assert slopes.ve_vco2_slope(data, phases=("EXERCISE", "RECOVERY")) > 30.0


def test_ve_vco2_nadir_and_value_at_vt1():
    t = np.arange(0.0, 600.0, 1.0)
    vco2 = 500 + 5.0 * t
    ratio = 25 + 1e-4 * (t - 300) ** 2  # lowest (25) at 300 s, 34 at both ends
    data = pd.DataFrame({"t": t, "VCO2": vco2, "VE": ratio * vco2 / 1000})
    nadir_90 = slopes.ve_vco2_nadir(data)
    nadir_30 = slopes.ve_vco2_nadir(data, window_s=30)
    assert 25.0 < nadir_30 <= nadir_90 < 25.1
    assert slopes.ve_vco2_at(data, 300.0) == pytest.approx(25.0, abs=0.02)
    assert slopes.ve_vco2_at(data, 100.0) == pytest.approx(29.0, abs=0.05)
    assert math.isnan(slopes.ve_vco2_at(data, None))
    assert math.isnan(slopes.ve_vco2_at(data, float("nan")))
    assert math.isnan(slopes.ve_vco2_at(data, 5000.0))  # outside the test


def test_ve_vco2_nadir_ignores_rest_unless_asked():
    t = np.arange(0.0, 400.0, 1.0)
    vco2 = np.full(len(t), 2000.0)
    rest = t < 120
    data = pd.DataFrame({"t": t, "VCO2": vco2, "VE": np.where(rest, 0.020, 0.030) * vco2,
                         "phase": np.where(rest, "REST", "EXERCISE")})
    assert slopes.ve_vco2_nadir(data) == pytest.approx(30.0)
    assert slopes.ve_vco2_nadir(data, phases=("rest", "exercise")) == pytest.approx(20.0)


# --- OUES ----------------------------------------------------------------------------------

def test_oues_known_answer_and_fractions():
    rng = np.random.default_rng(4)
    t = breaths()
    ve = 8 * 10 ** (t / 600 * 1.1)  # 8 to ~100 L/min
    vo2 = 2000 * np.log10(ve) - 1000 + rng.normal(0, 40, len(t))
    data = pd.DataFrame({"t": t, "VO2": vo2, "VE": ve})
    assert slopes.oues(data) == pytest.approx(2000, abs=40)
    assert slopes.oues(data, fraction=0.75) == pytest.approx(2000, abs=60)
    with pytest.raises(ValueError):
        slopes.oues(data, fraction=0.0)


def test_oues_fraction_limits_the_fit():
    t = np.arange(0.0, 600.0, 1.0)
    ve = 8 * 10 ** (t / 600)
    a = np.where(t <= 450, 2000, 4000)  # slope doubles in the last quarter
    data = pd.DataFrame({"t": t, "VE": ve, "VO2": a * np.log10(ve)})
    assert slopes.oues(data, fraction=0.75) == pytest.approx(2000, rel=0.01)
    assert slopes.oues(data) > 2200


# --- ΔVO2/ΔWR ------------------------------------------------------------------------------

def test_ramp_bounds_skip_rest_and_warm_up():
    start, end = slopes.ramp_bounds_s(cycle_ramp())
    assert 240 <= start < 246  # first breath at 22.5 W
    assert 834 <= end < 840  # last breath at the top load


def test_vo2_work_rate_slope_known_answer():
    assert slopes.vo2_work_rate_slope(cycle_ramp()) == pytest.approx(10.0, abs=0.3)
    # the textbook synthetic ramp: VO2 + 4.2 mL/min per s against 25 W per min -> 10.08
    assert slopes.vo2_work_rate_slope(ramp_test()) == pytest.approx(10.08, abs=0.4)


def test_vo2_work_rate_slope_nan_without_ramp_or_on_treadmill():
    data = cycle_ramp()
    stepped = data.assign(load=np.floor(data["t"] / 180) * 50)  # 3 min stages
    assert slopes.ramp_bounds_s(stepped) is None
    assert math.isnan(slopes.vo2_work_rate_slope(stepped))
    assert math.isnan(slopes.vo2_work_rate_slope(data.assign(speed=10.0)))
    assert math.isnan(slopes.vo2_work_rate_slope(data.drop(columns="load")))
    assert math.isnan(slopes.vo2_work_rate_slope(data.assign(VO2=np.nan)))


# --- HR/VO2 --------------------------------------------------------------------------------

def test_hr_vo2_slope_known_answer():
    # HR = 80 + 0.15 t and VO2 = 600 + 4.2 t: 0.15 / 4.2 bpm per mL/min = 35.7 per L/min
    assert slopes.hr_vo2_slope(ramp_test()) == pytest.approx(35.71, abs=1.0)
    assert math.isnan(slopes.hr_vo2_slope(ramp_test().drop(columns="HR")))


# --- energy and gross efficiency -----------------------------------------------------------

def test_energy_expenditure_equations_by_hand():
    # 1 L/min O2 and CO2: Brouwer (3.866 + 1.200) kcal/min x 4.184 kJ/kcal = 21.196 kJ/min
    assert efficiency.energy_expenditure_w(1000, 1000) == pytest.approx(21.196 / 60 * 1000,
                                                                       rel=1e-4)
    assert efficiency.energy_expenditure_w(1000, 1000, equation="peronnet") == pytest.approx(
        (16.89 + 4.84) / 60 * 1000)
    with pytest.raises(ValueError):
        efficiency.energy_expenditure_w(1000, 1000, equation="weir")
    with pytest.raises(ValueError):
        efficiency.energy_expenditure_w(1000, 1000, rer_above_one="ignore")


def test_energy_expenditure_above_rer_one():
    at_one = efficiency.energy_expenditure_w(1000, 1000)
    assert efficiency.energy_expenditure_w(1000, 1200) == pytest.approx(at_one)  # capped at RER 1
    assert math.isnan(efficiency.energy_expenditure_w(1000, 1200, rer_above_one="nan"))
    assert efficiency.energy_expenditure_w(1000, 1200, rer_above_one="keep") > at_one
    assert efficiency.energy_expenditure_w(1000, 800) < at_one  # below RER 1: as measured


def test_gross_efficiency_pct():
    expected = 100 * 100 / (21.196 / 60 * 1000)  # 100 W against 353.3 W
    assert efficiency.gross_efficiency_pct(100, 1000, 1000) == pytest.approx(expected, rel=1e-4)
    values = efficiency.gross_efficiency_pct([0.0, np.nan, 100.0], 1000, 1000)
    assert np.isnan(values[:2]).all() and values[2] == pytest.approx(expected, rel=1e-4)


def test_gross_efficiency_by_stage_steady_state():
    t = np.arange(0.0, 960.0, 2.0)
    load = np.select([t < 240, t < 480, t < 720], [0.0, 100.0, 150.0], 200.0)
    tau = 30.0
    vo2 = np.empty_like(t)  # first-order kinetics towards 800 + 10 mL/min per W
    vo2[0] = 800.0
    for i in range(1, len(t)):
        target = 800 + 10 * load[i]
        vo2[i] = target + (vo2[i - 1] - target) * np.exp(-2.0 / tau)
    data = pd.DataFrame({"t": t, "load": load, "VO2": vo2, "VCO2": 0.9 * vo2})
    table = efficiency.gross_efficiency_by_stage(data)
    assert table["load_w"].tolist() == [100.0, 150.0, 200.0]  # rest at 0 W is no stage
    steady = 800 + 10 * table["load_w"]
    expected = efficiency.gross_efficiency_pct(table["load_w"], steady, 0.9 * steady)
    np.testing.assert_allclose(table["gross_efficiency_pct"], expected, rtol=2e-3)
    np.testing.assert_allclose(table["rer"], 0.9)
    assert efficiency.gross_efficiency_by_stage(data, min_stage_s=300).empty
    assert efficiency.gross_efficiency_by_stage(data.assign(speed=8.0)).empty
    assert efficiency.gross_efficiency_by_stage(cycle_ramp()).empty  # a ramp has no stage


def test_gross_efficiency_peak_on_synthetic_ramp():
    data = ramp_test()  # last 30 s: 275 W, VO2 ~3.6 L/min, RER > 1 (capped)
    expected = efficiency.gross_efficiency_pct(275.0, 3600.0, 3600.0)
    assert efficiency.gross_efficiency_peak_pct(data) == pytest.approx(float(expected), abs=1.0)
    assert math.isnan(efficiency.gross_efficiency_peak_pct(data.drop(columns="load")))
    assert math.isnan(efficiency.gross_efficiency_peak_pct(data.assign(VCO2=np.nan)))


# --- slope_measures ------------------------------------------------------------------------

def test_slope_measures_on_synthetic_ramp():
    measures = slopes.slope_measures(record(ramp_test()), vt1_s=360.0, vt2_s=560.0)
    assert set(measures) == KEYS
    assert all(isinstance(v, float) and math.isfinite(v) for v in measures.values())
    # VE = 0.025 VCO2 + 8 up to VT2 (noise in VCO2 flattens the fit a little)
    assert measures["ve_vco2_slope_to_vt2"] == pytest.approx(25.0, abs=1.0)
    assert measures["ve_vco2_slope"] > measures["ve_vco2_slope_to_vt2"]
    assert measures["vo2_work_rate_slope_ml_min_w"] == pytest.approx(10.08, abs=0.4)


def test_slope_measures_missing_thresholds_and_channels_give_nan():
    data = ramp_test()
    unknown = slopes.slope_measures(record(data))
    assert math.isnan(unknown["ve_vco2_slope_to_vt2"]) and math.isnan(unknown["ve_vco2_at_vt1"])
    assert math.isfinite(unknown["ve_vco2_slope"])
    bare = slopes.slope_measures(record(data[["t", "VO2", "VCO2"]].assign(HR=np.nan)),
                                 vt1_s=360.0, vt2_s=560.0)
    assert set(bare) == KEYS and all(math.isnan(v) for v in bare.values())


def test_slope_measures_nan_when_labelled_phases_hold_no_exercise():
    data = ramp_test().assign(phase="WARMUP")
    measures = slopes.slope_measures(record(data), vt1_s=360.0, vt2_s=560.0)
    for key in ("ve_vco2_slope", "ve_vco2_nadir", "oues_ml_min_per_log_l_min",
                "hr_vo2_slope_bpm_per_l_min", "gross_efficiency_peak_pct"):
        assert math.isnan(measures[key]), key
    warm_up_too = slopes.slope_measures(record(data), phases=("WARMUP", "EXERCISE"))
    assert math.isfinite(warm_up_too["ve_vco2_slope"])


# --- real tests ----------------------------------------------------------------------------

@pytest.mark.parametrize("index", range(6))
def test_bundled_pyoxynet_tests_are_plausible(bundled_tests, index):
    rec = cpet_nb.read(bundled_tests[index])
    labels = rec.data["domain_label"]
    vt1_s = float(rec.data["t"][labels >= 0].iloc[0])
    vt2_s = float(rec.data["t"][labels >= 1].iloc[0])
    m = slopes.slope_measures(rec, vt1_s=vt1_s, vt2_s=vt2_s)
    assert 20 <= m["ve_vco2_slope_to_vt2"] <= 40
    assert m["ve_vco2_slope_to_vt2"] < m["ve_vco2_slope"]
    assert 20 <= m["ve_vco2_nadir"] <= m["ve_vco2_at_vt1"] + 0.5
    assert 1000 <= m["oues_ml_min_per_log_l_min"] <= 8000
    # no load channel in these files
    assert math.isnan(m["vo2_work_rate_slope_ml_min_w"])
    assert math.isnan(m["gross_efficiency_peak_pct"])


@pytest.mark.parametrize("name", [f"{i:02d}" for i in range(1, 13)])
def test_zan_treadmill_ramps_are_plausible(name):
    rec = cpet_nb.read(sample(f"zan/ramptests/{name}"))
    m = slopes.slope_measures(rec)
    assert 20 <= m["ve_vco2_slope"] <= 40
    assert 20 <= m["ve_vco2_nadir"] <= 35
    assert 2500 <= m["oues_ml_min_per_log_l_min"] <= 7000
    # running (10 -> 22 km/h at 1 % grade): the cart's load is derived from speed, not measured
    assert rec.data["speed"].max() > 15
    assert math.isnan(m["vo2_work_rate_slope_ml_min_w"])
    assert math.isnan(m["gross_efficiency_peak_pct"])
    assert math.isnan(m["hr_vo2_slope_bpm_per_l_min"])  # HR not recorded (all zeros)


def test_cosmed_step_test_efficiency_by_stage():
    rec = cpet_nb.read(sample("cosmed/omnia_en_10s.xlsx"))
    table = efficiency.gross_efficiency_by_stage(rec.data)
    assert table["load_w"].tolist() == [130.0, 200.0, 265.0]  # 5 min stages; 2 min ones left out
    assert table["gross_efficiency_pct"].between(12, 25).all()
    assert table["gross_efficiency_pct"].is_monotonic_increasing  # GE rises with work rate
    m = slopes.slope_measures(rec)
    assert 12 <= m["gross_efficiency_peak_pct"] <= 25
    assert math.isnan(m["vo2_work_rate_slope_ml_min_w"])  # stages, not a ramp
    assert 20 <= m["ve_vco2_nadir"] <= 40


def test_cortex_file_without_exercise_phase_gives_nan():
    rec = cpet_nb.read(sample("cortex/metasoft_de.xml"))  # REST and WARMUP rows only
    assert all(math.isnan(v) for v in slopes.slope_measures(rec).values())
