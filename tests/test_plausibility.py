"""Breath-level plausibility (values outside physiological ranges, spikes against the running
median) and findings reported once per cause."""

import math

import numpy as np
import pytest
from samples import sample
from synthetic import ramp_test, write_canonical_csv

import cpet_nb
from cpet_nb.findings import Finding, Severity
from cpet_nb.physiology.validate import BREATH_RANGES, screen_breaths
from cpet_nb.record import MODEL_CHANNELS

SCREEN_CODES = ("implausible-values", "outlier-breath")


def only(findings, code, column=None):
    matching = [f for f in findings if f.code == code and column in (None, f.column)]
    assert len(matching) == 1, [str(f) for f in findings]
    return matching[0]


def analysed(frame, path, **metadata) -> cpet_nb.FileResult:
    write_canonical_csv(frame, path, **metadata)
    return cpet_nb.analyze(path)


def test_a_1e12_breath_is_set_missing_and_vo2peak_equals_the_clean_tests(tmp_path):
    clean = ramp_test()
    spiked = clean.copy()
    spiked.loc[100, "VO2"] = 1e12
    expected = analysed(clean, tmp_path / "clean.csv", weight_kg=70)
    result = analysed(spiked, tmp_path / "spiked.csv", weight_kg=70)
    assert result.vo2peak_ml_min == expected.vo2peak_ml_min
    finding = only(result.findings, "implausible-values", "VO2")
    assert finding.severity is Severity.WARNING and finding.row == 101
    assert "row 101 (t = " in finding.message and "1e+12" in finding.message
    assert "50-10000 mL/min" in finding.message
    # the model sees the test, not the spike: its thresholds stay where the clean test's are
    assert abs(result.vt1.time_s - expected.vt1.time_s) <= 5
    assert abs(result.vt2.time_s - expected.vt2.time_s) <= 5


def test_hr_of_15_bpm_around_vt1_is_set_missing_and_never_reported(tmp_path):
    frame = ramp_test()
    dropout = frame["t"].between(300, 420)  # the strap lost contact around VT1 (~360 s)
    frame.loc[dropout, "HR"] = 15.0
    result = analysed(frame, tmp_path / "hr.csv")
    finding = only(result.findings, "implausible-values", "HR")
    assert f"{int(dropout.sum())} value(s)" in finding.message and "25-250 1/min" in finding.message
    assert "; and " in finding.message  # the first rows quoted, the rest counted
    assert result.status == "warning"
    low, _ = BREATH_RANGES["HR"]
    assert result.vt1.hr_bpm >= low  # interpolated across the gap by the model's 1 s grid
    assert math.isnan(result.consensus_values["vt1_hr_bpm"])  # no HR within 10 s: missing


def test_a_spike_inside_the_range_is_an_outlier_breath(tmp_path):
    clean = ramp_test(duration_s=450)  # peak VO2 about 2,500 mL/min
    spiked = clean.copy()
    last = len(spiked) - 5
    spiked.loc[last, "VO2"] *= 3.5  # about 8,700 mL/min: plausible alone, not as one breath
    expected = analysed(clean, tmp_path / "clean.csv")
    result = analysed(spiked, tmp_path / "spiked.csv")
    finding = only(result.findings, "outlier-breath", "VO2")
    assert finding.severity is Severity.INFO and finding.row == last + 1
    assert f"{spiked.loc[last, 'VO2']:.4g} vs median" in finding.message
    assert result.vo2peak_ml_min == pytest.approx(expected.vo2peak_ml_min, rel=0.01)
    assert not [f for f in result.findings if f.code in SCREEN_CODES and f.column != "VO2"]


def test_spikes_become_missing_rows_stay(tmp_path):
    frame = ramp_test()
    frame.loc[50, "VE"] /= 4  # a swallow
    frame.loc[200, "VCO2"] *= 4  # a cough
    path = tmp_path / "spikes.csv"
    write_canonical_csv(frame, path)
    record = cpet_nb.read(path)
    screened, findings = screen_breaths(record)
    assert len(screened.data) == len(record.data)
    changed = screened.data[["VE", "VCO2"]].isna() & ~record.data[["VE", "VCO2"]].isna()
    assert changed["VE"].tolist() == [i == 50 for i in range(len(frame))]
    assert changed["VCO2"].tolist() == [i == 200 for i in range(len(frame))]
    assert [(f.code, f.column, f.row) for f in findings] == [
        ("outlier-breath", "VCO2", 201), ("outlier-breath", "VE", 51)]
    assert record.data["VE"].notna().all()  # the input record is not changed


def test_averaged_data_are_range_checked_not_spike_tested(tmp_path):
    frame = ramp_test().iloc[::4].reset_index(drop=True)  # a regular grid: "averaged" data
    frame["t"] = np.arange(len(frame)) * 10.0
    frame.loc[20, "VO2"] *= 4  # neighbouring averages are 10 s apart: not a breath's spike
    frame.loc[30, "VO2"] = 1e12
    path = tmp_path / "averaged.csv"
    write_canonical_csv(frame, path)
    record = cpet_nb.read(path)
    assert record.metadata.sampling == "averaged 10 s"
    screened, findings = screen_breaths(record)
    assert [(f.code, f.row) for f in findings] == [("implausible-values", 31)]
    assert screened.data["VO2"].isna().tolist() == [i == 30 for i in range(len(frame))]


def test_real_zan_test_loses_its_artefact_breath_not_its_fast_breathing():
    """ZAN ramp test 03 breathes at 90 /min at peak exercise (tidal volume 1.24 L, VE 112 L/min,
    neighbours 75-79 /min): a real breath. Its VO2 of 395 mL/min among breaths of 3,800 is
    not gas exchange."""
    record = cpet_nb.read(sample("zan/ramptests/03"))
    screened, findings = screen_breaths(record)
    assert record.data["RF"].max() > 90
    assert screened.data["RF"].max() == record.data["RF"].max()
    assert [(f.code, f.column) for f in findings] == [("outlier-breath", "VO2")]
    assert "395 vs median 3848" in findings[0].message


def test_bundled_tests_lose_no_model_or_vo2_value(bundled_results):
    """Of pyoxynet's 139 real tests only two lose values, both artefacts: HR drop-outs of
    8-25 /min in a resting test, and one 80 /min breath among 15 /min ones."""
    screened = {(name, f.code, f.column) for name, result in bundled_results.items()
                for f in result.findings if f.code in SCREEN_CODES
                and "set missing as" in f.message}
    assert screened == {("resting_real_test_23.csv", "implausible-values", "HR"),
                        ("ramp_real_test_28.csv", "outlier-breath", "RF")}
    assert not {column for *_, column in screened} & set(MODEL_CHANNELS)


def test_a_short_test_gets_one_too_short_finding(tmp_path):
    result = analysed(ramp_test(duration_s=90), tmp_path / "short.csv")
    finding = only(result.findings, "too-short")
    assert "less than 180 s" in finding.message and "thresholds unavailable" in finding.message


def test_a_missing_channel_explained_by_the_reader_is_not_reported_again(tmp_path):
    path = tmp_path / "no_pet.csv"
    write_canonical_csv(ramp_test().drop(columns=["PetO2", "PetCO2"]), path)
    record = cpet_nb.read(path)
    record.findings.append(Finding("missing-channel", Severity.WARNING,
                                   "PetO2 left missing: the file has only PeO2",
                                   file=record.name, column="PetO2"))
    result = cpet_nb.analyze(record)
    finding = only(result.findings, "missing-channel")
    assert finding.message.startswith("PetO2 left missing: the file has only PeO2; ")
    assert "thresholds unavailable" in finding.message and "PetO2, PetCO2" in finding.message


def test_no_vo2_is_one_error_not_a_warning_and_an_error(tmp_path):
    path = tmp_path / "no_vo2.csv"
    frame = ramp_test()
    frame["VO2"] = np.nan
    write_canonical_csv(frame, path)
    record = cpet_nb.read(path)
    record.findings.append(Finding("missing-channel", Severity.WARNING,
                                   "VO2 left missing: no column in an accepted unit",
                                   file=record.name, column="VO2"))
    result = cpet_nb.analyze(record)
    finding = only(result.findings, "missing-channel")
    assert result.status == "error" and finding.severity is Severity.ERROR
    assert "accepted unit" in finding.message and "nothing can be computed" in finding.message


def test_real_zan_export_names_each_missing_channel_once():
    result = cpet_nb.analyze(sample("zan/ramptests/01"))
    missing = [f for f in result.findings if f.code == "missing-channel"]
    assert [f.column for f in missing] == ["PetO2", "PetCO2"]
    assert "thresholds unavailable" in missing[0].message
