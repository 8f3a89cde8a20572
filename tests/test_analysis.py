import math
from functools import partial

import numpy as np
import pandas as pd
import pytest
from synthetic import ramp_test, write_canonical_csv

import cpet_nb
from cpet_nb.physiology.measures import vo2peak_ml_min


def test_canonical_copy_of_a_real_test_gives_the_same_result(tmp_path, bundled_tests,
                                                               bundled_results):
    source = bundled_tests[1]
    raw = pd.read_csv(source)
    frame = raw.rename(columns={"time": "t", "VO2_I": "VO2", "VCO2_I": "VCO2", "VE_I": "VE",
                                "PetO2_I": "PetO2", "PetCO2_I": "PetCO2", "HR_I": "HR"})
    path = tmp_path / "copy.csv"
    write_canonical_csv(frame[["t", "VO2", "VCO2", "VE", "PetO2", "PetCO2", "HR"]], path,
                        weight_kg=88)
    ours, original = cpet_nb.analyze(path), bundled_results[source.name]
    assert ours.vt1.to_dict() == original.vt1.to_dict()  # NaN (no load) read as None
    assert ours.vt2.to_dict() == original.vt2.to_dict()
    assert ours.vo2peak_ml_min == original.vo2peak_ml_min


def test_result_row_has_the_documented_columns(bundled_results):
    result = bundled_results["ramp_real_test_1.csv"]
    row = result.to_row()
    assert list(row) == list(cpet_nb.RESULT_COLUMNS)
    for column in ("file", "status", "vt1_time_s", "vt2_time_s", "vt1_vo2_ml_min",
                   "vt2_vo2_ml_min", "vo2peak_ml_min", "findings"):
        assert column in row
    assert row["vo2peak_ml_kg_min"] == pytest.approx(row["vo2peak_ml_min"] / 88.0)
    nested = result.to_dict()
    assert nested["vt1"]["time_s"] == row["vt1_time_s"]
    assert len(nested["curves"]["time_s"]) == len(result.curves)


def test_breath_by_breath_test_is_analysed(ramp_csv):
    result = cpet_nb.analyze(ramp_csv)
    assert result.status in ("ok", "warning")
    assert result.curves is not None and len(result.curves) > 500
    assert result.metadata.sampling == "breath-by-breath"
    assert 3000 < result.vo2peak_ml_min < 4000


def test_without_end_tidal_gases_other_measures_remain(tmp_path):
    path = tmp_path / "no_pet.csv"
    write_canonical_csv(ramp_test().drop(columns=["PetO2", "PetCO2"]), path)
    result = cpet_nb.analyze(path)
    assert result.status == "warning" and result.vt1 is None and result.curves is None
    finding = next(f for f in result.findings if f.code == "missing-channel")
    assert "PetO2, PetCO2" in finding.message and "thresholds unavailable" in finding.message
    assert 3000 < result.vo2peak_ml_min < 4000


def test_vo2_in_litres_is_an_error_not_a_number(tmp_path):
    frame = ramp_test()
    frame["VO2"] /= 1000
    path = tmp_path / "litres.csv"
    write_canonical_csv(frame, path)
    result = cpet_nb.analyze(path)
    assert result.status == "error" and math.isnan(result.vo2peak_ml_min)
    finding = next(f for f in result.findings if f.code == "implausible-values")
    assert finding.column == "VO2" and "100-7000 mL/min" in finding.message


def test_constant_channel_and_short_test(tmp_path):
    frame = ramp_test()
    frame["PetCO2"] = 40.0
    path = tmp_path / "flat.csv"
    write_canonical_csv(frame, path)
    result = cpet_nb.analyze(path)
    assert [f.code for f in result.findings if f.severity.value == "error"] == ["constant-channel"]
    assert result.status == "error"

    short = tmp_path / "short.csv"
    write_canonical_csv(ramp_test(duration_s=90), short)
    result = cpet_nb.analyze(short)
    assert result.status == "warning" and "too-short" in {f.code for f in result.findings}


def test_unreadable_input_returns_an_error_result(tmp_path):
    result = cpet_nb.analyze(tmp_path / "missing.csv")
    assert result.status == "error" and result.findings[0].code == "file-not-found"
    assert result.to_row()["findings"].startswith("error file-not-found")


def test_internal_errors_are_isolated(monkeypatch, ramp_csv):
    from cpet_nb import analysis

    def explode(*args, **kwargs):
        raise ZeroDivisionError("boom")

    monkeypatch.setattr(analysis, "model_estimate", explode)
    result = analysis.analyze_isolated(ramp_csv)
    assert result.status == "error"
    assert result.findings[0].code == "internal-error" and "ZeroDivisionError: boom" in str(
        result.findings[0])


def test_vo2peak_is_the_highest_30_s_average_on_a_1_s_interpolation():
    t = np.array([0.0, 100.0, 130.0, 200.0])
    vo2 = np.array([1000.0, 1000.0, 4000.0, 4000.0])
    # linear 1000 -> 4000 over 100..130 s, then flat: the best 30 s window is [170, 200)
    assert vo2peak_ml_min(t, vo2, 30) == pytest.approx(4000.0)
    # a 60 s window reaches back into the ramp: mean of seconds 141..200 all 4000? no, 141 > 130
    assert vo2peak_ml_min(t, vo2, 60) == pytest.approx(4000.0)
    # 100 s window [101, 200]: ramp seconds 101..129 average (1100+...+3900)/29 = 2500
    expected = (np.interp(np.arange(101, 201), t, vo2)).mean()
    assert vo2peak_ml_min(t, vo2, 100) == pytest.approx(expected)
    assert math.isnan(vo2peak_ml_min(t[:2], vo2[:2], 300))
    with pytest.raises(ValueError):
        vo2peak_ml_min(t, vo2, 0)


def test_every_measure_reaches_the_results_table(bundled_results):
    from cpet_nb.physiology.effort import EFFORT_MEASURES
    from cpet_nb.physiology.measures import PEAK_MEASURES
    from cpet_nb.physiology.slopes import SLOPE_MEASURES

    result = bundled_results["ramp_real_test_1.csv"]
    assert tuple(result.measures) == PEAK_MEASURES + EFFORT_MEASURES + SLOPE_MEASURES
    row = result.to_row()
    assert row["vt1_pct_vo2peak"] == pytest.approx(
        100 * result.vt1.vo2_ml_min / result.vo2peak_ml_min)
    assert 20 < row["ve_vco2_slope_to_vt2"] < 40  # healthy range; VT2 from the model
    assert 1.0 < row["rerpeak"] < 1.4 and 140 < row["hrpeak_bpm"] < 220
    assert math.isnan(row["peak_load_w"]) and math.isnan(row["vt1_load_w"])  # no load column


def test_settings_choose_the_peak_averaging(ramp_csv):
    from cpet_nb.settings import Settings

    default = cpet_nb.analyze(ramp_csv)
    breaths = cpet_nb.analyze(ramp_csv, settings=Settings(vo2peak_method="breath-moving",
                                                          vo2peak_window=8))
    short = cpet_nb.analyze(ramp_csv, settings=Settings(vo2peak_window=10))
    assert short.vo2peak_ml_min > default.vo2peak_ml_min  # a ramp: shorter window, higher
    assert breaths.vo2peak_ml_min != default.vo2peak_ml_min
    assert default.vt1.load_w == default.vt1.load_w  # the synthetic ramp has a load


def test_consensus_and_review_flags_come_first_in_the_table(bundled_results):
    from cpet_nb.physiology.consensus import REVIEW_FLAGS

    table = cpet_nb.results_table(list(bundled_results.values()))
    assert list(table.columns[:8]) == ["file", "status", "review",
                                       *(f for f in REVIEW_FLAGS if f != "review")]
    assert str(table["review"].dtype) == "boolean"
    assert (table["review"] == table[[f for f in REVIEW_FLAGS if f != "review"]].any(
        axis=1)).all()
    # the consensus lies within its methods' spread, VT1 before VT2 unless flagged
    assert (table["vt1_n_methods"] >= 3).mean() > 0.9
    ordered = table["vt1_consensus_time_s"] < table["vt2_consensus_time_s"]
    assert (ordered | table["review_vt_order"]).all()
    swapped = table["findings"].str.contains("vt-order")
    assert table.loc[swapped, "review_model_swap"].all()


def test_classical_methods_give_thresholds_where_the_model_cannot(bundled_tests):
    from samples import sample

    result = cpet_nb.analyze(sample("zan/ramptests/01"))  # no PetO2/PetCO2: no model
    assert result.vt1 is None
    assert result.consensus["vt1"].methods == ("vt1_vslope", "vt1_equivalents")
    # VE/VCO2 rise only: the VE-VCO2 V-slope is reported but weighs 0 in the consensus
    assert result.consensus["vt2"].methods == ("vt2_equivalents",)
    assert result.classical["vt2_vslope"].found
    reasons = [f.message for f in result.findings if f.code == "vt-method-no-estimate"]
    assert reasons == ["vt1_peto2: missing channel PetO2", "vt2_petco2: missing channel PetCO2"]
    row = result.to_row()
    assert row["vt1_consensus_time_s"] < row["vt2_consensus_time_s"]
    assert row["vt1_consensus_load_w"] > 0  # the cart's load at the consensus VT1


def test_failed_file_has_unknown_flags(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("nothing here\n")
    row = cpet_nb.results_table([cpet_nb.analyze(path)]).iloc[0]
    assert row["status"] == "error" and row["review"] is pd.NA


@pytest.fixture(scope="module")
def several_models(bundled_tests):
    """One real test analysed with the CNN alone, with three models and without the CNN."""
    path = bundled_tests[1]
    return (cpet_nb.analyze(path), cpet_nb.analyze(path, models=["cnn", "ais", "lstmgru"]),
            cpet_nb.analyze(path, models=["nswis"]))


def test_without_the_vote_lag_the_cnn_votes_at_its_own_thresholds(several_models,
                                                                  bundled_tests):
    from cpet_nb.physiology.consensus import threshold_consensus

    alone = several_models[0]
    plain = cpet_nb.analyze(bundled_tests[1], settings=cpet_nb.Settings(model_vote_lag=False))
    assert plain.consensus == threshold_consensus(plain.classical, plain.vt1, plain.vt2)
    assert plain.consensus != alone.consensus  # the default's vote is moved
    assert (plain.vt1.to_dict(), plain.classical) == (alone.vt1.to_dict(), alone.classical)
    assert (cpet_nb.Settings(model_vote_lag=False).analysis_key("m")
            != cpet_nb.Settings().analysis_key("m"))


def test_other_models_leave_the_cnn_results_as_they_were(several_models):
    alone, several, _ = several_models
    assert several.vt1.to_dict() == alone.vt1.to_dict()
    assert several.vt2.to_dict() == alone.vt2.to_dict()
    np.testing.assert_array_equal(several.curves.p_heavy, alone.curves.p_heavy)
    assert alone.models == {} and alone.model_version == cpet_nb.model.bundled_model_version()
    assert list(several.models) == ["ais", "lstmgru", "ensemble"]
    assert several.model_version == cpet_nb.model.bundled_model_version(["cnn", "ais", "lstmgru"])
    ais, lstmgru = several.models["ais"], several.models["lstmgru"]
    assert ais.vt1.time_s != lstmgru.vt1.time_s  # each model has its own thresholds
    assert ais.vt1.time_s < ais.vt2.time_s


def test_the_ensemble_averages_the_domain_curves_and_votes_in_the_consensus(several_models,
                                                                           bundled_tests):
    from cpet_nb.physiology.consensus import (
        MODEL_VOTE_LAG_S,
        lag_corrected_votes,
        threshold_consensus,
    )
    from cpet_nb.physiology.thresholds import vo2_at

    alone, several, _ = several_models
    ensemble = several.models["ensemble"]
    members = [several.curves, several.models["ais"].curves, several.models["lstmgru"].curves]
    for p in ("p_moderate", "p_heavy", "p_severe"):
        np.testing.assert_allclose(getattr(ensemble.curves, p),
                                   np.mean([getattr(c, p) for c in members], axis=0))
    crossing = np.flatnonzero(ensemble.curves.p_heavy >= ensemble.curves.p_moderate)[0]
    assert ensemble.vt1.time_s == ensemble.curves.time_s[crossing - 40]
    # the ensemble votes as it is; the CNN alone votes corrected for its lateness
    assert several.consensus == threshold_consensus(several.classical, ensemble.vt1,
                                                    ensemble.vt2)
    votes = lag_corrected_votes(alone.vt1, alone.vt2, MODEL_VOTE_LAG_S["cnn"],
                                partial(vo2_at, cpet_nb.read(bundled_tests[1])))
    assert alone.consensus == threshold_consensus(alone.classical, *votes)
    assert several.consensus["vt1"] != alone.consensus["vt1"]


def test_a_model_chosen_alone_is_the_vote_and_the_cnn_columns_stay_empty(several_models):
    from cpet_nb.physiology.consensus import threshold_consensus

    _, _, nswis_only = several_models
    assert nswis_only.vt1 is None and nswis_only.curves is None
    assert list(nswis_only.models) == ["nswis"]  # one model: no ensemble
    nswis = nswis_only.models["nswis"]
    assert nswis_only.consensus == threshold_consensus(nswis_only.classical, nswis.vt1,
                                                       nswis.vt2)
    row = nswis_only.to_row()
    assert math.isnan(row["vt1_time_s"]) and math.isnan(row["vt1_ensemble_time_s"])
    assert row["vt1_nswis_time_s"] == nswis.vt1.time_s
    assert row["vt2_nswis_vo2_ml_min"] == nswis.vt2.vo2_ml_min
    assert nswis_only.to_dict()["models"]["nswis"]["vt2"]["time_s"] == nswis.vt2.time_s


def test_results_tables_have_the_same_columns_whatever_the_models(several_models):
    alone, several, nswis_only = several_models
    table = cpet_nb.results_table([alone, several, nswis_only])
    assert list(table.columns) == list(cpet_nb.RESULT_COLUMNS)
    model_columns = [c for c in table.columns if c.startswith(("vt1_ais_", "vt2_ensemble_"))]
    assert model_columns == ["vt1_ais_time_s", "vt1_ais_vo2_ml_min", "vt2_ensemble_time_s",
                             "vt2_ensemble_vo2_ml_min"]
    assert table["vt1_ais_time_s"].isna().tolist() == [True, False, True]
    assert table["vt2_ensemble_time_s"].isna().tolist() == [True, False, True]
    assert table["vt1_nswis_time_s"].isna().tolist() == [True, True, False]
    assert table["vt1_time_s"].isna().tolist() == [False, False, True]
    assert table["vt1_tcn_time_s"].isna().all()  # not chosen anywhere
    # the CNN's columns keep their names and their order
    fields = [f"vt1_{f}" for f in cpet_nb.Threshold.__dataclass_fields__] + ["vt1_pct_vo2peak"]
    start = cpet_nb.RESULT_COLUMNS.index("vt1_time_s")
    assert list(cpet_nb.RESULT_COLUMNS[start: start + len(fields)]) == fields


def test_unknown_model_names_are_refused_before_any_work(bundled_tests):
    with pytest.raises(ValueError, match="models must be one or more of cnn, ais"):
        cpet_nb.analyze(bundled_tests[0], models=["oxynet"])
