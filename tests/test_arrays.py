"""The physiology's shared arrays: made once per test, and the numpy helpers equal to the
pandas operations they replace."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cpet_nb
from cpet_nb.analysis import analyze_record
from cpet_nb.physiology import _arrays, averaging, thresholds
from cpet_nb.physiology._arrays import TestArrays
from cpet_nb.physiology.averaging import trailing_mean
from cpet_nb.physiology.slopes import slope_measures
from cpet_nb.physiology.thresholds import classical_thresholds
from cpet_nb.physiology.validate import _centred_median
from cpet_nb.record import recorded_at

values_with_gaps = st.lists(st.one_of(st.none(), st.floats(-1e3, 1e3)), max_size=80).map(
    lambda xs: np.array([np.nan if x is None else x for x in xs], dtype=float))


@settings(max_examples=200, deadline=None)
@given(values_with_gaps, st.sampled_from([0, 1, 2, 5, 30]))
def test_centred_median_is_pandas_centred_rolling_median(values, half):
    expected = pd.Series(values, dtype=float).rolling(
        2 * half + 1, center=True, min_periods=half + 1).median().to_numpy()
    np.testing.assert_array_equal(_centred_median(values, half), expected)
    at = np.flatnonzero(np.arange(len(values)) % 3 == 0)
    np.testing.assert_array_equal(_centred_median(values, half, at), expected[at])


@settings(max_examples=200, deadline=None)
@given(values_with_gaps, st.integers(1, 40))
def test_trailing_mean_is_pandas_rolling_mean(values, window):
    expected = pd.Series(values, dtype=float).rolling(window, min_periods=window).mean()
    np.testing.assert_allclose(trailing_mean(values, window), expected.to_numpy(),
                               rtol=1e-12, atol=1e-9)


def test_arrays_mirror_the_data():
    data = pd.DataFrame({"t": [0.0, 1.0, 2.0], "VO2": [1.0, np.nan, 3.0], "HR": np.nan,
                         "phase": ["REST", "EXERCISE", None]})
    arrays = TestArrays.of(data)
    assert TestArrays.of(arrays) is arrays
    assert "phase" in arrays and "VO2" in arrays and "VCO2" not in arrays
    assert arrays.has("VO2") and not arrays.has("HR") and not arrays.has("VCO2")
    assert np.isnan(arrays.channel("VCO2")).all() and len(arrays.channel("VCO2")) == 3
    assert arrays.exercise() == slice(1, 2)
    assert arrays.between(0.5, 2.0) == slice(1, 3)
    assert recorded_at(arrays, "VO2", 1.5) == recorded_at(data, "VO2", 1.5) == 1.0


def test_bins_are_made_once_for_every_threshold_method(monkeypatch):
    calls = []
    real = averaging.time_bin_arrays

    def counted(*args, **kwargs):
        calls.append(args[2:])
        return real(*args, **kwargs)

    monkeypatch.setattr(_arrays, "time_bin_arrays", counted)
    record = cpet_nb.read(cpet_nb.datasets.pyoxynet_tests()[0])
    estimates = classical_thresholds(record)
    assert sum(e.found for e in estimates.values()) == 6
    assert len(calls) == 1  # six methods, two search floors, one binning


def test_analysis_prepares_the_arrays_once(monkeypatch):
    made = []
    real = TestArrays.of.__func__

    def counted(cls, source):
        if not isinstance(source, TestArrays):
            made.append(source)
        return real(cls, source)

    monkeypatch.setattr(TestArrays, "of", classmethod(counted))
    result = analyze_record(cpet_nb.read(cpet_nb.datasets.pyoxynet_tests()[0]))
    assert result.status == "ok" and len(made) == 1


def test_results_are_the_same_from_a_record_and_from_its_arrays():
    record = cpet_nb.read(cpet_nb.datasets.pyoxynet_tests()[5])
    arrays = TestArrays.of(record)
    assert classical_thresholds(arrays) == classical_thresholds(record)
    assert thresholds.exercise_bins(arrays).equals(thresholds.exercise_bins(record.data))
    from_record = slope_measures(record, vt1_s=300.0, vt2_s=500.0)
    from_arrays = slope_measures(record, vt1_s=300.0, vt2_s=500.0, arrays=arrays)
    assert from_record.keys() == from_arrays.keys()
    assert all(from_record[k] == from_arrays[k] or np.isnan(from_record[k]) and
               np.isnan(from_arrays[k]) for k in from_record)


@pytest.mark.parametrize("rows", [slice(0, 0), slice(3, 3)])
def test_grid_of_no_rows_is_empty(rows):
    arrays = TestArrays.of(pd.DataFrame({"t": np.arange(5.0), "VE": 1.0, "VCO2": 2.0}))
    grid = arrays.grid_1s(rows, ("VE", "VCO2"))
    assert list(grid) == ["t", "VE", "VCO2"] and all(len(v) == 0 for v in grid.values())
