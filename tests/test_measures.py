"""Peak measures, VO2 plateau and maximal-effort criteria."""

import math

import numpy as np
import pandas as pd
import pytest
from samples import sample
from synthetic import ramp_test

import cpet_nb
from cpet_nb.physiology.exercise import exercise_bouts_s, exercise_span_s
from cpet_nb.physiology.measures import (
    peak_measures,
    predicted_hr_max_bpm,
    vo2_plateau_delta_ml_min,
    vo2peak_ml_min,
)
from cpet_nb.record import CPETRecord, Metadata

EXERCISE_S = (60.0, 540.0)  # rest before, recovery after; breaths every 2 s, last at 538 s


def staged_test(*, plateau: bool, weight_kg: float | None = 70.0,
                age_years: float | None = 30.0) -> CPETRecord:
    """Rest at 500 mL/min, a ramp, recovery at 1500 mL/min, all noise free.

    With ``plateau`` VO2 = 1000 + 5 (t - 60) levels off at 2800 mL/min from 420 s on;
    otherwise VO2 = 1000 + 6 (t - 60) up to the end of exercise. RER is 0.9 at rest, 1.15
    during exercise and 1.5 in recovery; HR is VO2 / 20 during exercise (an O2 pulse of
    20 mL) and 150/min in recovery; the load rises 25 W a minute from 100 W.
    """
    t = np.arange(0.0, 600.0, 2.0)
    start, end = EXERCISE_S
    exercising = (t >= start) & (t < end)
    ramp = 1000 + 5 * (t - start) if plateau else 1000 + 6 * (t - start)
    if plateau:
        ramp = np.minimum(ramp, 2800.0)
    vo2 = np.select([t < start, exercising], [500.0, ramp], 1500.0)
    rer = np.select([t < start, exercising], [0.9, 1.15], 1.5)
    data = pd.DataFrame({
        "t": t,
        "VO2": vo2,
        "VCO2": rer * vo2,
        "VE": 0.03 * rer * vo2,
        "HR": np.select([t < start, exercising], [70.0, vo2 / 20], 150.0),
        "load": np.where(exercising, 100 + 25 * np.floor((t - start) / 60), 0.0),
        "phase": np.select([t < start, exercising], ["REST", "EXERCISE"], "RECOVERY"),
    })
    return CPETRecord(data, Metadata("staged.csv", weight_kg=weight_kg, age_years=age_years))


# --- helpers ------------------------------------------------------------------------------

def test_vo2peak_ml_min_is_the_best_30_s_rolling_mean_of_the_1_s_interpolation():
    frame = ramp_test(seed=3)
    t, vo2 = frame["t"].to_numpy(), frame["VO2"].to_numpy()
    grid = np.arange(np.ceil(t[0]), np.floor(t[-1]) + 1)
    expected = pd.Series(np.interp(grid, t, vo2)).rolling(30).mean().max()
    assert vo2peak_ml_min(t, vo2) == pytest.approx(expected, rel=1e-12)


def test_exercise_span_from_phase_then_load_then_whole_test():
    data = staged_test(plateau=True).data
    assert exercise_span_s(data) == (60.0, 538.0)
    assert exercise_span_s(data.drop(columns="phase")) == (60.0, 538.0)
    assert exercise_span_s(data.drop(columns=["phase", "load"])) == (0.0, 598.0)
    assert all(math.isnan(x) for x in exercise_span_s(data.iloc[:0]))


def interval_session() -> CPETRecord:
    """:func:`staged_test` with the exercise cut in two bouts by a labelled pause at 200-300 s
    (recovery values: RER 1.5, HR 150/min, VO2 1500 mL/min) and one unlabelled row at 400 s."""
    record = staged_test(plateau=True)
    data = record.data.copy()
    pause = data["t"].between(200.0, 300.0)
    data.loc[pause, ["VO2", "VCO2", "VE", "HR", "load"]] = [1500.0, 2250.0, 67.5, 150.0, 0.0]
    data.loc[pause, "phase"] = "RECOVERY"
    data.loc[data["t"] == 400.0, "phase"] = None
    return CPETRecord(data, record.metadata)


def test_labelled_pauses_split_the_exercise_into_bouts():
    data = interval_session().data
    assert exercise_bouts_s(data) == [(60.0, 198.0), (302.0, 538.0)]  # 400 s does not split
    assert exercise_span_s(data) == (60.0, 538.0)
    assert exercise_bouts_s(data.drop(columns="phase")) == [(60.0, 538.0)]  # from the load
    assert exercise_bouts_s(staged_test(plateau=True).data) == [(60.0, 538.0)]
    assert exercise_bouts_s(data.iloc[:0]) == []


def test_peaks_of_an_interval_session_come_from_its_bouts():
    m = peak_measures(interval_session())
    assert m["rerpeak"] == pytest.approx(1.15)  # the pause's 1.5 is not exercise
    assert m["hrpeak_bpm"] == pytest.approx(140.0)  # nor its HR of 150/min
    assert m["vo2peak_ml_min"] == pytest.approx(2800.0)
    whole = peak_measures(interval_session(), within="test")
    assert whole["rerpeak"] == pytest.approx(1.5) and whole["hrpeak_bpm"] == 150.0


def test_predicted_hr_max_fox_and_tanaka():
    assert predicted_hr_max_bpm(40) == 180.0
    assert predicted_hr_max_bpm(60, "tanaka") == pytest.approx(166.0)
    assert math.isnan(predicted_hr_max_bpm(None))
    assert math.isnan(predicted_hr_max_bpm(float("nan"), "tanaka"))
    with pytest.raises(ValueError, match="formula must be one of"):
        predicted_hr_max_bpm(40, "astrand")


def test_plateau_delta_compares_the_last_two_intervals_before_the_end():
    t = np.arange(0.0, 300.0)
    vo2 = 1000 + 4 * t  # a line: every 30 s interval is 120 mL/min above the one before
    assert vo2_plateau_delta_ml_min(t, vo2, end_s=250.0) == pytest.approx(120.0)
    assert vo2_plateau_delta_ml_min(t, vo2, end_s=250.0, interval_s=60) == pytest.approx(240.0)
    assert math.isnan(vo2_plateau_delta_ml_min(t, vo2, end_s=50.0))  # no 60 s before 50 s
    assert math.isnan(vo2_plateau_delta_ml_min(t, vo2, end_s=400.0))  # past the data


# --- peak_measures on synthetic tests -----------------------------------------------------

def test_peaks_of_a_test_with_a_plateau():
    m = peak_measures(staged_test(plateau=True))
    assert m["vo2peak_ml_min"] == pytest.approx(2800.0)
    assert m["vo2peak_ml_kg_min"] == pytest.approx(40.0)
    assert m["vco2peak_ml_min"] == pytest.approx(1.15 * 2800)
    assert m["rerpeak"] == pytest.approx(1.15)  # recovery's 1.5 is not exercise
    assert m["vepeak_l_min"] == pytest.approx(0.03 * 1.15 * 2800)
    assert m["hrpeak_bpm"] == pytest.approx(140.0)  # recovery's 150 is not exercise
    assert m["o2pulse_peak_ml_beat"] == pytest.approx(20.0)
    assert m["peak_load_w"] == 275.0  # 100 W + 7 steps of 25 W by 538 s
    assert math.isnan(m["peak_speed_km_h"])  # no speed channel
    assert m["vo2_plateau_delta_ml_min"] == pytest.approx(0.0)
    assert m["vo2_plateau_ml_min"] == 1.0 and m["vo2_plateau_ml_kg_min"] == 1.0
    assert m["rer_criterion_met"] == 1.0


def test_no_plateau_on_a_steady_ramp():
    m = peak_measures(staged_test(plateau=False))
    # last complete 30 s window inside exercise: seconds 509..538, mean time 523.5 s
    assert m["vo2peak_ml_min"] == pytest.approx(1000 + 6 * 463.5)
    assert m["vo2_plateau_delta_ml_min"] == pytest.approx(6 * 30)
    assert m["vo2_plateau_delta_ml_kg_min"] == pytest.approx(180 / 70)
    assert m["vo2_plateau_ml_min"] == 0.0 and m["vo2_plateau_ml_kg_min"] == 0.0
    lenient = peak_measures(staged_test(plateau=False), plateau_ml_min=200.0,
                            plateau_ml_kg_min=3.0)
    assert lenient["vo2_plateau_ml_min"] == 1.0 and lenient["vo2_plateau_ml_kg_min"] == 1.0


def test_hr_is_the_highest_beat_unless_smoothed():
    record = staged_test(plateau=False)
    assert peak_measures(record)["hrpeak_bpm"] == pytest.approx((1000 + 6 * 478) / 20)
    smoothed = peak_measures(record, smooth_hr=True)["hrpeak_bpm"]
    assert smoothed == pytest.approx((1000 + 6 * 463.5) / 20)


def test_whole_test_takes_recovery_into_account():
    m = peak_measures(staged_test(plateau=True), within="test")
    assert m["rerpeak"] == pytest.approx(1.5)
    assert m["hrpeak_bpm"] == 150.0
    assert m["vo2peak_ml_min"] == pytest.approx(2800.0)
    assert m["vo2_plateau_delta_ml_min"] == pytest.approx(0.0)  # still at the end of exercise


def test_effort_criteria_follow_thresholds_and_formula():
    old = staged_test(plateau=True, age_years=70)  # HRpeak 140: 93 % of 150 (Fox)
    fox = peak_measures(old)
    assert fox["hr_predicted_max_bpm"] == 150.0
    assert fox["hr_pct_predicted"] == pytest.approx(100 * 140 / 150)
    assert fox["hr_criterion_met"] == 1.0
    tanaka = peak_measures(old, hr_max_formula="tanaka")  # 208 - 49 = 159: 88 %
    assert tanaka["hr_pct_predicted"] == pytest.approx(100 * 140 / 159)
    assert tanaka["hr_criterion_met"] == 0.0
    assert peak_measures(old, hr_pct_min=95.0)["hr_criterion_met"] == 0.0
    assert peak_measures(old, rer_min=1.2)["rer_criterion_met"] == 0.0


def test_missing_weight_age_and_channels_give_nan_never_a_default():
    record = staged_test(plateau=True, weight_kg=None, age_years=None)
    record.data = record.data.drop(columns="HR")
    m = peak_measures(record)
    for key in ("vo2peak_ml_kg_min", "vo2_plateau_delta_ml_kg_min", "vo2_plateau_ml_kg_min",
                "hrpeak_bpm", "o2pulse_peak_ml_beat", "hr_predicted_max_bpm",
                "hr_pct_predicted", "hr_criterion_met"):
        assert math.isnan(m[key]), key
    assert m["vo2peak_ml_min"] == pytest.approx(2800.0)
    assert m["vo2_plateau_ml_min"] == 1.0
    assert all(isinstance(v, float) for v in m.values())


def test_bad_within_is_refused():
    with pytest.raises(ValueError, match="within must be one of"):
        peak_measures(staged_test(plateau=True), within="recovery")


# --- real files ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def zan_reference():
    folder = sample("zan/ramptests")
    table = pd.read_csv(folder / "vo2max_reference_01-12.csv").set_index("p")
    bodymass = pd.read_csv(folder / "participants.csv").set_index("p")["bodymass"]
    return table, bodymass


def zan_test(number: int, bodymass: pd.Series) -> CPETRecord:
    record = cpet_nb.read(sample(f"zan/ramptests/{number:02d}"))
    record.metadata.weight_kg = float(bodymass[number])  # the file rounds body mass
    return record


def test_zan_vo2peak_per_kg_equals_the_nolte_reference(zan_reference):
    table, bodymass = zan_reference
    record = zan_test(1, bodymass)
    whole = peak_measures(record, within="test")
    assert whole["vo2peak_ml_kg_min"] == pytest.approx(table.loc[1, "tm_30"], rel=1e-9)
    breaths = peak_measures(record, method="breath-moving", window=15, within="test")
    assert breaths["vo2peak_ml_kg_min"] == pytest.approx(table.loc[1, "bm_15"], rel=1e-9)
    # test 1's best 30 s window reaches 9 s into recovery: exercise alone is 0.8 % lower
    exercise = peak_measures(record)
    assert exercise["vo2peak_ml_kg_min"] == pytest.approx(table.loc[1, "tm_30"] * 0.992,
                                                          rel=2e-3)
    assert math.isnan(exercise["hrpeak_bpm"])  # the file records no HR
    assert exercise["peak_speed_km_h"] == pytest.approx(17.1)


def test_zan_recovery_rer_overshoot_is_left_out(zan_reference):
    _, bodymass = zan_reference
    record = zan_test(12, bodymass)
    exercise, whole = peak_measures(record), peak_measures(record, within="test")
    assert 1.0 < exercise["rerpeak"] < 1.1 < 1.2 < whole["rerpeak"]
    assert exercise["rer_criterion_met"] == 0.0 and whole["rer_criterion_met"] == 1.0


def test_bundled_test_without_phases_uses_the_whole_test(bundled_tests):
    record = cpet_nb.read(bundled_tests[0])
    m = peak_measures(record)
    data = record.data
    assert m["vo2peak_ml_min"] == vo2peak_ml_min(data["t"].to_numpy(), data["VO2"].to_numpy())
    assert m["vo2peak_ml_kg_min"] == pytest.approx(m["vo2peak_ml_min"] / 65.0)
    assert m["hr_predicted_max_bpm"] == 220.0 - 18.0
    assert 1.0 < m["rerpeak"] < 1.4 and 150 < m["hrpeak_bpm"] < 220
    assert math.isnan(m["peak_load_w"])
