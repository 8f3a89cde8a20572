import numpy as np
import pandas as pd
import pytest
from synthetic import ramp_test

from cpet_nb.findings import CPETError
from cpet_nb.grid import resample_1s
from cpet_nb.model.oxynet import sliding_windows
from cpet_nb.model.preprocess import minmax_scale, model_rows, trim_to_complete


def test_resample_matches_pandas_resample_mean_interpolate():
    data = ramp_test(seed=3)
    data = data.iloc[5:]  # start at a fractional second
    ours = resample_1s(data, ("VO2", "VCO2", "HR"))
    frame = data[["t", "VO2", "VCO2", "HR"]].copy()
    frame.index = pd.to_datetime(frame["t"], unit="s")
    expected = frame.resample("1s").mean().interpolate().reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, expected, check_exact=False, rtol=1e-12)


def test_resample_never_extrapolates_missing_ends():
    data = pd.DataFrame({"t": [0.2, 1.5, 2.5, 3.1, 5.9],
                         "HR": [np.nan, 100.0, np.nan, 110.0, np.nan]})
    grid = resample_1s(data, ("HR",))
    assert list(grid["t"]) == [0.2, 1.5, 2.5, 3.1, pytest.approx(4.5), 5.9]
    assert np.isnan(grid["HR"].iloc[0]) and np.isnan(grid["HR"].iloc[-1])
    assert grid["HR"].iloc[1:4].tolist() == [100.0, 105.0, 110.0]
    assert np.isnan(grid["HR"].iloc[4])  # after the last value: stays missing


def test_resample_of_times_past_the_int64_seconds_counts_from_the_first():
    t = 2.0 ** 63 + np.array([-2048.0, 0.0, 2048.0])  # float steps of 2048 s up there
    grid = resample_1s(pd.DataFrame({"t": t, "VO2": [1.0, 2.0, 3.0]}), ("VO2",))
    assert len(grid) == 4097 and grid["VO2"].iloc[[0, 2048, 4096]].tolist() == [1.0, 2.0, 3.0]


def test_trim_reports_leading_gap():
    grid = pd.DataFrame({"t": np.arange(10.0), "VO2": [np.nan] * 3 + [1.0] * 7})
    trimmed, findings = trim_to_complete(grid, ("VO2",), "f.csv")
    assert len(trimmed) == 7 and trimmed["t"].iloc[0] == 3.0
    assert [f.code for f in findings] == ["gaps-trimmed"]


def test_minmax_scale_and_constant_channel():
    x = np.array([[1.0, 5.0], [3.0, 5.0]])
    with pytest.raises(CPETError) as err:
        minmax_scale(x, ("VO2", "PetO2"), "f.csv")
    assert err.value.finding.code == "constant-channel"
    assert err.value.finding.column == "PetO2"
    np.testing.assert_allclose(minmax_scale(x[:, :1], ("VO2",), "f.csv"), [[0.0], [1.0]])


def test_windows_follow_pyoxynet_indexing():
    n = 50
    scaled = np.arange(n * 5, dtype=float).reshape(n, 5)
    windows = sliding_windows(model_rows(scaled))  # as the pipeline makes them
    assert windows.shape == (n - 41, 40, 5) and windows.dtype == np.float32
    for k in (0, 4, n - 42):
        np.testing.assert_array_equal(windows[k], scaled[k + 1: k + 41])
    assert sliding_windows(model_rows(scaled[:41])).shape == (0, 40, 5)
