from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from samples import sample
from synthetic import ramp_test, write_canonical_csv

import cpet_nb
from cpet_nb.findings import CPETError, UnsupportedFormat
from cpet_nb.io import detect_format
from cpet_nb.testing import assert_reader_conforms


def test_pyoxynet_csv_values_and_metadata(bundled_tests):
    record = assert_reader_conforms(bundled_tests[1], "pyoxynet-csv")  # ramp_real_test_1.csv
    meta = record.metadata
    assert (meta.format, meta.sampling) == ("pyoxynet-csv", "1 s grid")
    assert (meta.weight_kg, meta.height_cm, meta.age_years) == (88.0, 174.0, 32.0)
    assert meta.sex is None  # pyoxynet's gender code is undocumented: stays missing
    # checked by hand against the file's first row: 0,0,1126.0,1024.0,32.4,116.0,23.9,89.0,37.0
    first = record.data.iloc[0]
    assert (first.t, first.VO2, first.VCO2, first.VE, first.HR, first.PetO2) == (
        0.0, 1126.0, 1024.0, 32.4, 116.0, 89.0)
    assert set(record.data["domain_label"].unique()) == {-1.0, 0.0, 1.0}


def test_hr_zero_becomes_missing_with_a_finding(bundled_tests):
    path = next(p for p in bundled_tests if p.name == "ramp_real_test_8.csv")
    record = cpet_nb.read(path)
    assert record.data["HR"].isna().all()
    finding = next(f for f in record.findings if f.code == "device-zero-missing")
    assert finding.column == "HR_I" and "821 of 821" in finding.message


def test_canonical_csv_roundtrip_with_metadata(ramp_csv):
    record = assert_reader_conforms(ramp_csv)
    meta = record.metadata
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex) == (72.5, 178.0, 34.0,
                                                                          "female")
    assert meta.sampling == "breath-by-breath"
    expected = ramp_test()
    np.testing.assert_allclose(record.data["VO2"], expected["VO2"])


def test_canonical_csv_problems_are_findings_not_zeros(tmp_path):
    path = tmp_path / "messy.csv"
    path.write_text("# weight_kg: heavy\n# sex: x\nt,VO2,VCO2,Foo\n0,500,400,1\n1,abc,410,1\n"
                    "1,520,420,1\n0.5,510,405,1\n2,530,430,1\n")
    record = assert_reader_conforms(path, "canonical-csv")
    codes = {f.code: f for f in record.findings}
    assert record.metadata.weight_kg is None and record.metadata.sex is None
    assert codes["non-numeric"].column in {"weight_kg", "sex", "VO2"}
    text_cell = [f for f in record.findings if f.code == "non-numeric" and f.column == "VO2"][0]
    assert text_cell.row == 2 and "'abc'" in text_cell.message
    assert codes["unknown-column"].column == "Foo"
    assert "duplicate-time" in codes and "non-monotonic-time" in codes
    assert record.data["t"].tolist() == [0.0, 0.5, 1.0, 2.0]
    assert np.isnan(record.data.loc[record.data.t == 1.0, "VO2"]).all()  # not 0


@pytest.mark.parametrize("content, code, words", [
    (b"", "unsupported-format", "empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unsupported-format", "binary content"),
    (b"name;age\nalice;3\n", "unsupported-format", "'name;age'"),
    (b"t,VO2,VCO2\n", "empty", "no data rows"),
    (b"t,VO2\n\xff\xfe\x00\x00garbage\x00\n", "unsupported-format", "binary content"),
])
def test_bad_files_get_specific_findings(tmp_path, content, code, words):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == code
    assert words in err.value.finding.message
    assert err.value.finding.file == str(path)


def test_binary_content_in_a_forced_text_format_is_unreadable(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(b"t,VO2\n\xff\xfe\x00\x00garbage\x00\n")
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path, format="canonical-csv")
    assert err.value.finding.code == "unreadable" and "NUL" in err.value.finding.message


def test_unsupported_format_lists_known_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(UnsupportedFormat, match="pyoxynet-csv"):
        detect_format(path)


def test_missing_and_too_large_files(tmp_path):
    with pytest.raises(CPETError) as err:
        cpet_nb.read(tmp_path / "nope.csv")
    assert err.value.finding.code == "file-not-found"
    big = tmp_path / "big.csv"
    big.write_bytes(b"t,VO2\n" + b"1,2\n" * 1000)
    with pytest.raises(CPETError) as err:
        cpet_nb.read(big, max_file_bytes=100)
    assert err.value.finding.code == "file-too-large" and "4,006 bytes" in err.value.finding.message


def test_format_can_be_forced(ramp_csv):
    with pytest.raises(CPETError):
        cpet_nb.read(ramp_csv, format="pyoxynet-csv")  # wrong reader: clear failure, no numbers
    with pytest.raises(ValueError, match="known readers"):
        cpet_nb.read(ramp_csv, format="nope")


def test_latin1_text_is_read(tmp_path):
    frame = ramp_test()
    path = tmp_path / "latin1.csv"
    write_canonical_csv(frame, path, device="Gerät Zürich")
    path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    assert cpet_nb.read(path).metadata.device == "Gerät Zürich"


def jittered_averages(interval_s: float, n: int = 80, seed: int = 2) -> np.ndarray:
    """Times of ``interval_s`` averages, each stamped with the last breath (1.5-4 s long)
    that ends in its interval."""
    rng = np.random.default_rng(seed)
    breaths = np.cumsum(rng.uniform(1.5, 4.0, int(n * interval_s / 1.5)))
    ends = interval_s * np.arange(1, n + 1)
    return breaths[np.searchsorted(breaths, ends, side="right") - 1]


@pytest.mark.parametrize("t, expected", [
    (np.arange(0.0, 300.0), "1 s grid"),
    (np.array([56.0, 60, 120, 180, 240, 300, 360]), "averaged 60 s"),  # one short first step
    (np.arange(30.0, 1200.0, 10.0), "averaged 10 s"),
    (np.cumsum(np.random.default_rng(0).uniform(1.5, 4.5, 300)), "breath-by-breath"),
    (np.array([0.0, 1.0]), None),
])
def test_sampling_is_detected_from_time_steps(t, expected):
    from cpet_nb.record import detect_sampling

    assert detect_sampling(t) == expected


def test_jittered_averages_are_averages():
    from cpet_nb.record import detect_sampling

    t = jittered_averages(15.0)
    steps = np.diff(t)  # a third of them more than 10 % off the median: irregular at 10 %
    assert np.mean(np.abs(steps - np.median(steps)) > 0.1 * np.median(steps)) > 0.3
    assert detect_sampling(t) == "averaged 15 s"
    # resting breaths with whole-second times, as in cortex/metasoft_de.xml (9 s to 70 s),
    # are as regular (83 % of the steps within 25 % of the median), but their median step,
    # 5 s, is a breath's
    resting = np.array([9.0, 15, 21, 26, 29, 34, 38, 44, 48, 53, 62, 66, 70])
    assert detect_sampling(resting) == "breath-by-breath"


def test_averages_of_a_real_breath_by_breath_test_are_detected_and_reported(tmp_path):
    """The Parvo sample's breaths averaged over 15 s, each average stamped with its last
    breath (as carts that average the breaths ending in each interval do): the steps jitter
    by up to a breath, yet the export holds averages and the analysis says so."""
    breaths = cpet_nb.read(sample("parvo/parvo_bxb.CSV")).data
    averages = breaths.groupby(np.ceil(breaths["t"] / 15.0)).agg(
        {"t": "last", **{c: "mean" for c in ("VO2", "VCO2", "VE", "HR")}})
    steps = np.diff(averages["t"])
    assert np.mean(np.abs(steps - np.median(steps)) > 0.1 * np.median(steps)) > 0.2
    path = tmp_path / "parvo_15s.csv"
    write_canonical_csv(averages, path)
    record = cpet_nb.read(path)
    assert record.metadata.sampling == "averaged 15 s"
    averaged = [f for f in cpet_nb.analyze(record).findings if f.code == "averaged-data"]
    assert len(averaged) == 1 and "15 s averages" in averaged[0].message


#: Every real export in the shared samples and the reader that must claim it.
SAMPLE_FORMATS = {
    "breeze/breeze_bxb.txt": "breeze",
    "cortex/metasoft_de.xml": "cortex-xml",
    "cortex/metasoft_step.xlsx": "cortex-xlsx",
    "cosmed/omnia_de_10s.xlsx": "cosmed-omnia",
    "cosmed/omnia_en_10s.xlsx": "cosmed-omnia",
    "cosmed/quark_ramp_bxb.xlsx": "cosmed-quark",
    "parvo/parvo_bxb.CSV": "parvo-csv",
    "parvo/parvo_excel.xlsx": "parvo-xlsx",
    "vyntus/vyntus_no_60s.txt": "vyntus",
    "zan/zan_ramp": "zan",
    **{f"zan/ramptests/{i:02d}": "zan" for i in range(1, 13)},
}


@pytest.fixture()
def samples() -> Path:
    return sample(".")


def test_analyze_over_the_samples_folder_gives_a_row_per_export(samples, tmp_path):
    from cpet_nb.cli import main

    out = tmp_path / "samples.csv"
    assert main(["analyze", str(samples), "-o", str(out), "-q"]) == 0
    table = pd.read_csv(out)
    # names inside the folder as the index (a column inserted into this wide table of
    # one block per string column would be a fragmented frame)
    table.index = table["file"].str.replace(f"{samples}/", "", regex=False)
    # the licences, READMEs and reference tables are listed as skipped, with why
    skipped = table[table["status"] == "skipped"]
    assert skipped["findings"].str.contains("not-a-cpet-export").all()
    assert skipped.index.str.startswith("LICENSES/").sum() == len(
        list((samples / "LICENSES").glob("*.md")))
    table = table[table["status"] != "skipped"]
    assert sorted(table.index) == sorted(SAMPLE_FORMATS)
    assert dict(zip(table.index, table["format"], strict=True)) == SAMPLE_FORMATS
    assert (table["status"] != "error").all()
    # each row has both thresholds or a finding that says why not
    no_thresholds = table["vt1_time_s"].isna() | table["vt2_time_s"].isna()
    assert table.loc[no_thresholds, "findings"].str.contains(
        "thresholds unavailable|not found|left missing").all()
    # VO2peak comes from the exercise phase: a file of rest and warm-up has none, and says so
    no_peak = table["vo2peak_ml_min"].isna()
    assert table.loc[~no_peak, "vo2peak_ml_min"].between(250, 6000).all()
    assert table.loc[no_peak, "findings"].str.contains("too-short").all()
    assert no_peak.sum() <= 1


def test_build_record_takes_frames_and_arrays_of_any_numeric_columns():
    """A plugin reader's last step: columns as given (float32, integers, text) come out as
    a record; no rows is the ``empty`` finding, whatever the columns."""
    from cpet_nb.io._tabular import build_record, read_csv_text
    from cpet_nb.record import Metadata

    frame = pd.DataFrame({"t": np.float32([2, 0, 1]), "HR": [0, 120, 121],
                          "phase": ["EXERCISE", "REST", None]})
    record = build_record(frame, Metadata("p.csv"), {"HR": "Puls"}, file="p.csv")
    assert record.data["t"].tolist() == [0.0, 1.0, 2.0]  # sorted, reported
    assert record.data["t"].dtype == np.float32 and record.data["HR"].dtype == np.float64
    assert record.data["HR"].isna().tolist() == [False, False, True]  # the device's 0
    assert record.data["phase"].tolist()[::2] == ["REST", "EXERCISE"]
    assert pd.isna(record.data["phase"][1]) and record.data["phase"].dtype == frame["phase"].dtype
    assert list(record.data.columns) == ["t", "HR", "phase"]
    assert frame["HR"].tolist() == [0, 120, 121]  # the reader's frame is left as it is
    assert {f.code for f in record.findings} == {"non-monotonic-time", "device-zero-missing"}
    from_arrays = build_record({"t": np.arange(3.0), "VO2": np.array(["1", "x", "3"],
                                                                     dtype=object)},
                               Metadata("p.csv"), {"VO2": "V'O2"}, file="p.csv")
    assert from_arrays.data["VO2"].tolist()[::2] == [1.0, 3.0]
    (finding,) = from_arrays.findings
    assert (finding.code, finding.column, finding.row) == ("non-numeric", "V'O2", 2)
    only_float32 = build_record({"t": np.float32([0, 1]), "phase": np.array(["REST"] * 2)},
                                Metadata("p.csv"), {}, file="p.csv")
    assert only_float32.data["t"].dtype == np.float32 and len(only_float32.data) == 2
    for empty in (pd.DataFrame({"VO2": []}), {"t": np.empty(0)}, {}):
        with pytest.raises(CPETError) as error:
            build_record(empty, Metadata("p.csv"), {}, file="p.csv")
        assert error.value.finding.code == "empty"
    # options that need pandas' Python parser still parse (no C-parser-only option added)
    assert read_csv_text("t::VO2\n1::2\n", "p.csv", sep="::", engine="python")["VO2"].tolist() \
        == [2]
