"""Heart-rate companion files: the real TCX with zan_ramp, and files written here."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from samples import sample

import cpet_nb
from cpet_nb.io.companion import ASSUMED_CODE, MERGED_CODE, merge_hr, read_hr
from cpet_nb.record import CPETRecord, Metadata

TCX_NS = "http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2"


@pytest.fixture(scope="module")
def zan_ramp() -> CPETRecord:
    return cpet_nb.read(sample("zan/zan_ramp"))


@pytest.fixture(scope="module")
def hr_ramp() -> pd.DataFrame:
    return read_hr(sample("tcx/hr_ramp.tcx"))


def codes(findings) -> list[tuple[str, str]]:
    return [(f.code, f.severity.value) for f in findings]


def record(t_s, hr=None, **metadata) -> CPETRecord:
    """A record with breaths at ``t_s`` (and cart HR when given)."""
    data = pd.DataFrame({"t": np.asarray(t_s, dtype=float), "VO2": 500.0})
    if hr is not None:
        data["HR"] = np.asarray(hr, dtype=float)
    return CPETRecord(data, Metadata(source_name="test.csv", **metadata))


def companion(t_s, hr) -> pd.DataFrame:
    """A companion frame on its own time axis, as :func:`read_hr` returns it."""
    frame = pd.DataFrame({"t": np.asarray(t_s, dtype=float), "HR": np.asarray(hr, dtype=float)})
    frame.attrs.update(findings=[], source="strap.csv")
    return frame


def tcx(points: str, namespace: str | None = TCX_NS) -> bytes:
    xmlns = f' xmlns="{namespace}"' if namespace else ""
    return (f'\ufeff<?xml version="1.0"?>\n<TrainingCenterDatabase{xmlns}><Activities><Activity>'
            f"<Lap><Track>{points}</Track></Lap></Activity></Activities>"
            "</TrainingCenterDatabase>").encode()


def point(time: str, hr: int | None) -> str:
    value = f"<HeartRateBpm><Value>{hr}</Value></HeartRateBpm>" if hr is not None else ""
    return f"<Trackpoint><Time>{time}</Time>{value}</Trackpoint>"


# --- the real pair: tcx/hr_ramp.tcx with zan/zan_ramp ------------------------------------

def test_real_tcx_by_hand(hr_ramp):
    # first Trackpoint 2021-03-17T10:54:56Z HR 127, last 11:10:19Z HR 155; 924 points 1 s apart
    assert list(hr_ramp.columns) == ["time_utc", "HR"]
    assert str(hr_ramp["time_utc"].dtype) == "datetime64[ns, UTC]"
    assert len(hr_ramp) == 924
    assert hr_ramp["time_utc"].iloc[0] == pd.Timestamp("2021-03-17T10:54:56Z")
    assert hr_ramp["time_utc"].iloc[-1] == pd.Timestamp("2021-03-17T11:10:19Z")
    assert (hr_ramp["HR"].iloc[0], hr_ramp["HR"].iloc[-1], hr_ramp["HR"].max()) == (127, 155, 202)
    assert hr_ramp.attrs == {"findings": [], "source": "hr_ramp.tcx"}


def test_zan_ramp_carries_no_usable_absolute_time(zan_ramp, hr_ramp):
    # [Start] has BeginRest=12:22:22: a clock time without date or zone, which the reader does
    # not keep. All 13 ZAN samples have seconds equal to minutes (08:54:54, 12:22:22, ...).
    text = sample("zan/zan_ramp").read_bytes().decode("latin-1")
    assert "BeginRest=12:22:22" in text
    assert zan_ramp.metadata.test_date is None
    assert "start_time_utc" not in zan_ramp.metadata.extra
    # Read as Central European Time (UTC+1 on 2021-03-17) it is 11:22:22Z, after the TCX
    # ended (11:10:19Z): the cart's clock cannot align the two files.
    clocked = replace(zan_ramp, metadata=replace(
        zan_ramp.metadata, extra={"start_time_utc": "2021-03-17T11:22:22Z"}))
    merged = merge_hr(clocked, hr_ramp)
    assert merged.data["HR"].isna().all()
    assert "HR not merged: no breath" in merged.findings[-1].message
    assert "-1646.0 to -723.0 s on the record's time" in merged.findings[-1].message


def test_real_merge_start_to_start(zan_ramp, hr_ramp):
    merged = merge_hr(zan_ramp, hr_ramp)
    data = merged.data
    assert data["HR"].notna().all()  # 607 breaths within the TCX's 923 s
    # B1 Zeit 326 ms: between 127 (10:54:56) and 126 (10:54:57)
    assert data["HR"].iloc[0] == pytest.approx(127 - 0.326)
    # B2 Zeit 3310 ms: between 125 (10:54:59) and 122 (10:55:00)
    assert data["HR"].iloc[1] == pytest.approx(125 + 0.310 * (122 - 125))
    # B579 (peak VO2) 828.263 s: 200 at 11:08:44 and 11:08:45
    assert data.loc[data["t"] == 828.263, "HR"].item() == 200
    # B607 853.324 s: 198 at 11:09:09 and 11:09:10
    assert data["HR"].iloc[-1] == 198
    assert zan_ramp.data["HR"].isna().all()  # the input record is not changed
    assert codes(merged.findings[-2:]) == [(ASSUMED_CODE, "warning"), (MERGED_CODE, "info")]
    assumed, info = merged.findings[-2:]
    assert "first sample 2021-03-17T10:54:56+00:00 at the record's t = 0" in assumed.message
    assert "metadata.test_date has no time of day" in assumed.message
    assert info.message.startswith("HR from hr_ramp.tcx for 607 of 607 breaths")
    assert "the cart has no HR" in info.message
    assert (info.file, info.column) == ("zan_ramp", "HR")
    assert merged.metadata.extra["hr_alignment"] == "assumed"
    assert merged.metadata.extra["hr_companion"] == "hr_ramp.tcx"


def test_real_merge_with_offset_like_spiro(zan_ramp, hr_ramp):
    # spiro's add_hr(hr_offset = 60): the strap started 60 s after the cart, i.e. the
    # companion's time of the record's t = 0 is -60 s
    merged = merge_hr(zan_ramp, hr_ramp, offset_s=-60)
    data = merged.data
    assert data.loc[data["t"] < 60, "HR"].isna().all()  # B1-B19, before the strap started
    assert data["HR"].iloc[19] == 125  # B20 at 62.245 s: companion 2.245 s, 125 and 125
    assert merged.metadata.extra["hr_alignment"] == "offset_s"
    assert not any(f.code == ASSUMED_CODE and f.severity.value == "warning"
                   for f in merged.findings[-2:])
    assert "companion time -60 s (after its first sample)" in merged.findings[-1].message
    later = merge_hr(zan_ramp, hr_ramp, offset_s=60).data
    assert later["HR"].iloc[0] == 129  # companion 60.326 s: 129 at 10:55:56 and 10:55:57


@pytest.mark.parametrize("metadata", [
    {"extra": {"start_time_utc": "2021-03-17T10:55:56Z"}},
    {"extra": {"start_time_utc": pd.Timestamp("2021-03-17 10:55:56")}},  # naive: UTC
    {"test_date": "2021-03-17T11:55:56+01:00"},
])
def test_real_merge_by_clock(zan_ramp, hr_ramp, metadata):
    clocked = replace(zan_ramp, metadata=replace(zan_ramp.metadata, **metadata))
    merged = merge_hr(clocked, hr_ramp)
    assert merged.data["HR"].iloc[0] == 129  # as offset_s=60
    assert merged.metadata.extra["hr_alignment"] == "clock"
    info = merged.findings[-1]
    assert "by clock: record t = 0 at 2021-03-17T10:55:56+00:00" in info.message
    assert "at record t = -60 s" in info.message


def test_offset_wins_over_clock(zan_ramp, hr_ramp):
    clocked = replace(zan_ramp, metadata=replace(
        zan_ramp.metadata, extra={"start_time_utc": "2021-03-17T10:55:56Z"}))
    merged = merge_hr(clocked, hr_ramp, offset_s=0)
    assert merged.data["HR"].iloc[0] == pytest.approx(127 - 0.326)
    assert "the record's start 2021-03-17T10:55:56+00:00 was not used" in (
        merged.findings[-1].message)


def test_local_test_time_is_not_a_clock(zan_ramp, hr_ramp):
    local = replace(zan_ramp, metadata=replace(zan_ramp.metadata,
                                               test_date="2021-03-17T11:55:56"))
    merged = merge_hr(local, hr_ramp)
    assert merged.metadata.extra["hr_alignment"] == "assumed"
    assert "'2021-03-17T11:55:56' has no UTC offset" in merged.findings[-2].message


# --- merge rules on synthetic data -------------------------------------------------------

def test_no_extrapolation_and_no_bridging_of_gaps():
    strap = companion([10, 11, 12, 30, 31], [100, 102, 104, 150, 151])
    merged = merge_hr(record([5, 10, 11.5, 20, 30, 30.5, 40]), strap, offset_s=0)
    np.testing.assert_allclose(merged.data["HR"],
                               [np.nan, 100, 103, np.nan, 150, 150.5, np.nan])
    assert "for 4 of 7 breaths" in merged.findings[-1].message


def test_unsorted_companion_frame_is_sorted():
    strap = companion([2, 0, 0, 1], [120, 100, 999, 110])
    merged = merge_hr(record([0.5, 1.5]), strap, offset_s=0)
    np.testing.assert_allclose(merged.data["HR"], [105, 115])


def test_sample_at_the_edge_of_a_gap_is_used():
    merged = merge_hr(record([12, 30]), companion([10, 12, 30], [100, 104, 150]), offset_s=0)
    np.testing.assert_allclose(merged.data["HR"], [104, 150])


def test_cart_values_are_never_overwritten():
    cart = [90, np.nan, 95, np.nan]
    merged = merge_hr(record([1, 2, 3, 4], hr=cart), companion([0, 10], [100, 110]),
                      offset_s=0)
    np.testing.assert_allclose(merged.data["HR"], [90, 102, 95, 104])
    assert "cart HR kept for 2 breath(s), companion used for 2 of the 2 without" in (
        merged.findings[-1].message)


def test_hr_column_is_added_in_canonical_order():
    base = record([0, 1, 2])
    base.data["RF"] = 20.0
    merged = merge_hr(base, companion([0, 2], [100, 120]))
    assert list(merged.data.columns) == ["t", "VO2", "HR", "RF"]
    np.testing.assert_allclose(merged.data["HR"], [100, 110, 120])
    assert codes(merged.findings) == [(ASSUMED_CODE, "warning"), (MERGED_CODE, "info")]
    assert "companion's first sample at its t = 0 s" in merged.findings[0].message


def test_companion_start_goes_to_record_zero_on_its_own_axis():
    merged = merge_hr(record([0, 5]), companion([100, 105], [90, 95]))
    np.testing.assert_allclose(merged.data["HR"], [90, 95])
    merged = merge_hr(record([0, 5]), companion([100, 105], [90, 95]), offset_s=102)
    np.testing.assert_allclose(merged.data["HR"], [92, np.nan])


def test_nothing_to_merge_is_a_warning():
    merged = merge_hr(record([0, 1]), companion([5], [100]))
    assert codes(merged.findings) == [("missing-channel", "warning")]
    assert "1 heart-rate sample(s)" in merged.findings[0].message
    assert "HR" not in merged.data
    merged = merge_hr(record([0, 1], hr=[80, 81]), companion([0, 1], [100, 101]))
    assert merged.data["HR"].tolist() == [80, 81]
    assert "no breath without cart HR" in merged.findings[-1].message


def test_offset_must_be_finite():
    with pytest.raises(ValueError, match="finite"):
        merge_hr(record([0, 1]), companion([0, 1], [100, 101]), offset_s=float("nan"))


def test_companion_findings_travel_with_the_record(tmp_path):
    strap = read_hr(tmp_path / "missing.csv")
    merged = merge_hr(record([0, 1]), strap)
    assert codes(merged.findings) == [("file-not-found", "error"), ("missing-channel", "warning")]
    assert merged.findings[0].file == str(tmp_path / "missing.csv")


# --- companion files written by the tests ------------------------------------------------

def test_tcx_namespaces_missing_hr_and_offsets(tmp_path):
    path = tmp_path / "a.tcx"
    points = (point("2021-03-17T11:00:02+01:00", 101) + point("2021-03-17T10:00:00Z", 100)
              + point("2021-03-17T10:00:01Z", None) + point("2021-03-17T10:00:03Z", 0))
    for namespace in (TCX_NS, TCX_NS.replace("v2", "v1"), None):
        path.write_bytes(tcx(points, namespace))
        frame = read_hr(path)
        assert frame["time_utc"].tolist() == [pd.Timestamp("2021-03-17T10:00:00Z"),
                                              pd.Timestamp("2021-03-17T10:00:02Z")]
        assert frame["HR"].tolist() == [100, 101]
        assert codes(frame.attrs["findings"]) == [("device-zero-missing", "info"),
                                                  ("non-monotonic-time", "warning")]


@pytest.mark.parametrize("content, code, words", [
    (tcx(point("2021-03-17T10:00:00Z", None) * 2), "missing-channel", "no heart rate"),
    (tcx(""), "empty", "no Trackpoint"),
    (b"<?xml version='1.0'?><Workbook/>", "unreadable", "not a TCX file"),
    (tcx(point("2021-03-17T10:00:00Z", 100))[:-20], "unreadable", "not well-formed"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><TrainingCenterDatabase/>',
     "unreadable", "DOCTYPE"),
])
def test_bad_tcx_files_are_findings(tmp_path, content, code, words):
    path = tmp_path / "bad.tcx"
    path.write_bytes(content)
    frame = read_hr(path)
    assert frame.empty
    finding = next(f for f in frame.attrs["findings"] if f.code == code)
    assert words in finding.message and finding.file == str(path)


@pytest.mark.parametrize("text, column, times", [
    ("Time (s);HR (bpm)\n0;100\n1,5;101\n3;102\n", "t", [0, 1.5, 3]),
    ("t_ms,heart_rate\n0,100\n1500,101\n3000,102\n", "t", [0, 1.5, 3]),
    ("zeit,hf\n10:00:00,100\n10:00:01.5,101\n10:00:03,102\n", "t", [36000, 36001.5, 36003]),
    ("timestamp,pulse\n2021-03-17T10:00:00Z,100\n2021-03-17 11:00:01.5+01:00,101\n"
     "2021-03-17T10:00:03Z,102\n", "time_utc",
     [pd.Timestamp(t) for t in ("2021-03-17T10:00:00Z", "2021-03-17T10:00:01.5Z",
                                "2021-03-17T10:00:03Z")]),
    ("Timestamp\tHeart Rate\n2021-03-17 10:00:00\t100\n2021-03-17 10:00:01.5\t101\n"
     "2021-03-17 10:00:03\t102\n", "t", [36000, 36001.5, 36003]),  # local: since midnight
])
def test_delimited_companions(tmp_path, text, column, times):
    path = tmp_path / "strap.csv"
    path.write_text(text, encoding="utf-8")
    frame = read_hr(path)
    assert list(frame.columns) == [column, "HR"]
    assert frame["HR"].tolist() == [100, 101, 102]
    if column == "time_utc":
        assert str(frame[column].dtype) == "datetime64[ns, UTC]"
        assert frame[column].tolist() == list(times)
    else:
        np.testing.assert_allclose(frame[column], times)
    assert frame.attrs == {"findings": [], "source": "strap.csv"}


def test_delimited_companion_cleaning(tmp_path):
    path = tmp_path / "strap.csv"
    path.write_text("time,hr\n0,100\nx,101\n2,300\n1,0\n3,103\n3,104\n4,\n", encoding="utf-8")
    frame = read_hr(path)
    assert frame["t"].tolist() == [0, 3] and frame["HR"].tolist() == [100, 103]
    found = {f.code: f for f in frame.attrs["findings"]}
    assert set(found) == {"non-numeric", "device-zero-missing", "implausible-values",
                          "duplicate-time"}
    assert (found["non-numeric"].row, found["non-numeric"].column) == (2, "time")
    assert "'x'" in found["non-numeric"].message
    assert (found["implausible-values"].row, found["implausible-values"].column) == (3, "hr")
    assert "20-250 /min" in found["implausible-values"].message


@pytest.mark.parametrize("text, code, severity", [
    ("time,speed\n0,10\n1,11\n", "missing-channel", "warning"),
    ("clock,hr\n0,100\n", "unreadable", "error"),
    ("time,hr\n0,0\n1,0\n", "missing-channel", "warning"),
    ("time,hr\n", "empty", "error"),
])
def test_delimited_companions_without_hr(tmp_path, text, code, severity):
    path = tmp_path / "strap.csv"
    path.write_text(text, encoding="utf-8")
    frame = read_hr(path)
    assert frame.empty
    assert (code, severity) in codes(frame.attrs["findings"])


def test_too_large_companion(tmp_path):
    path = tmp_path / "strap.csv"
    path.write_text("time,hr\n0,100\n1,101\n", encoding="utf-8")
    frame = read_hr(path, max_file_bytes=10)
    assert codes(frame.attrs["findings"]) == [("file-too-large", "error")]
