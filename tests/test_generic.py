"""The generic reader (a user's column mapping) and lab profiles, on files written here."""

import json
import pickle

import numpy as np
import pytest
from test_cortex import xlsx_bytes

from cpet_nb.findings import CPETError
from cpet_nb.io import readers
from cpet_nb.io.generic import Channel, ColumnMapping, read_mapped
from cpet_nb.io.profiles import (
    PROFILES_ENV,
    list_profiles,
    load_profile,
    profiles_folder,
    save_profile,
)
from cpet_nb.testing import assert_record_conforms

KPA_TO_MMHG = 760 / 101.325

#: A semicolon-separated export with decimal commas, a units row and h:mm:ss times.
SEMICOLON_CSV = (
    "Zeit;V'O2;V'CO2;V'E;PETO2;PETCO2;HF;Last;Größe\n"
    "h:mm:ss;L/min;L/min;L/min;kPa;kPa;1/min;W;cm\n"
    "0:00:05;0,45;0,38;12,1;13,9;4,5;82;0;178 cm\n"
    "0:00:09;0,52;0,44;13,0;13,8;4,6;84;0;\n"
    "0:01:02,5;1,25;1,10;35,2;13,33;5,2;120;50;\n"
    "1:00:00;2,50;2,75;80,4;14,6;4,4;178;250;\n"
)
SEMICOLON_MAPPING = ColumnMapping(
    channels={"t": ("Zeit", "clock"), "VO2": ("V'O2", "L/min"), "VCO2": ("V'CO2", "L/min"),
              "VE": "V'E", "PetO2": ("PETO2", "kPa"), "PetCO2": ("PETCO2", "kPa"),
              "HR": "HF", "load": ("Last", "W")},
    delimiter=";", decimal=",", skip_rows=1,
    metadata={"weight_kg": 72.5, "sex": "female", "device": "Lab cart"},
    metadata_columns={"height_cm": "Größe"},
)


def write(tmp_path, text: str, name: str = "export.csv", encoding: str = "utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# --- reading -----------------------------------------------------------------------------

def test_the_generic_reader_never_claims_a_file_by_itself():
    assert "generic" not in {r.name for r in readers()}  # only a mapping given by the user


def test_semicolon_csv_with_decimal_commas_kpa_and_clock_times(tmp_path):
    path = write(tmp_path, SEMICOLON_CSV)
    record = read_mapped(path, SEMICOLON_MAPPING)
    assert_record_conforms(record, path, "generic")
    data, meta = record.data, record.metadata
    assert list(data.columns) == ["t", "VO2", "VCO2", "VE", "PetO2", "PetCO2", "HR", "load"]
    # '0:00:05', '0:00:09', '0:01:02,5', '1:00:00'
    assert data.t.tolist() == [5.0, 9.0, 62.5, 3600.0]
    # third row: V'O2 '1,25' L/min, V'E '35,2' L/min, PETO2 '13,33' kPa, HF '120', Last '50'
    third = data.iloc[2]
    assert third.VO2 == pytest.approx(1250.0)
    assert third.VCO2 == pytest.approx(1100.0)
    assert third.VE == pytest.approx(35.2)
    assert third.PetO2 == pytest.approx(13.33 * KPA_TO_MMHG)  # 99.98 mmHg
    assert third.PetCO2 == pytest.approx(5.2 * KPA_TO_MMHG)
    assert (third.HR, third.load) == (120.0, 50.0)
    assert (meta.format, meta.sampling, meta.device) == ("generic", "breath-by-breath", "Lab cart")
    assert (meta.weight_kg, meta.sex, meta.height_cm) == (72.5, "female", 178.0)
    assert "profile" not in meta.extra
    assert record.findings == []


def test_xlsx_with_preamble_and_units_row_is_detected_by_content(tmp_path):
    rows = [
        ["Lab export", None, None, None],
        [None, None, None, None],
        ["Time", "VO2", "VE", "Weight", "Date"],
        ["s", "mL/min", "L/min", "kg", None],
        [10, 500.5, 15.2, "80,5 kg", "2024-03-01"],
        [None, None, None, None, None],
        [20, 620, 17.9, None, None],
        [30, "-", 19.0, None, None],
        [40, 800, 21.4, None, None],
    ]
    path = tmp_path / "lab_export.dat"  # the name says nothing: the bytes say xlsx
    path.write_bytes(xlsx_bytes(rows))
    mapping = ColumnMapping({"t": "Time", "VO2": "VO2", "VE": ("VE", "L/min")},
                            header_row=2, skip_rows=1, sheet="Sheet1",
                            metadata_columns={"weight_kg": "Weight", "test_date": "Date"})
    record = read_mapped(path, mapping)
    assert_record_conforms(record, path, "generic")
    data, meta = record.data, record.metadata
    assert data.t.tolist() == [10.0, 20.0, 30.0, 40.0]  # the blank sheet row is not data
    assert data.VO2.tolist()[:2] == [500.5, 620.0]
    assert np.isnan(data.VO2.iloc[2])  # '-' is a missing marker: missing, no finding
    assert data.VE.tolist() == [15.2, 17.9, 19.0, 21.4]
    assert (meta.weight_kg, meta.test_date, meta.sampling) == (80.5, "2024-03-01", "averaged 10 s")
    assert record.findings == []


def test_xlsx_sheet_that_does_not_exist_names_the_sheets(tmp_path):
    path = tmp_path / "export.xlsx"
    path.write_bytes(xlsx_bytes([["t", "VO2"], [1, 2]]))
    with pytest.raises(CPETError) as err:
        read_mapped(path, ColumnMapping({"t": "t", "VO2": "VO2"}, sheet="Data"))
    finding = err.value.finding
    assert finding.code == "unreadable" and "'Data'" in finding.message
    assert "'Sheet1'" in finding.message and finding.file == str(path)


def test_missing_mapped_column_names_it_and_lists_the_files_columns(tmp_path):
    path = write(tmp_path, SEMICOLON_CSV.replace("PETO2", "PO2_et"))
    with pytest.raises(CPETError) as err:
        read_mapped(path, SEMICOLON_MAPPING)
    finding = err.value.finding
    assert (finding.code, finding.column, finding.file) == ("missing-channel", "PETO2", str(path))
    assert "'PETO2' (PetO2)" in finding.message
    assert "'PO2_et'" in finding.message and "'Zeit'" in finding.message


def test_text_in_numeric_columns_is_a_finding_never_zero(tmp_path):
    text = SEMICOLON_CSV.replace("0,52;0,44", "n.a.;0.44").replace("0:01:02,5", "0:1:02,5")
    path = write(tmp_path, text)
    record = read_mapped(path, SEMICOLON_MAPPING)
    findings = {f.column: f for f in record.findings if f.code == "non-numeric"}
    # data row 2 (after the header and the skipped units row): 'n.a.' in V'O2, and '0.44'
    # has a decimal point where the mapping says decimal comma
    assert findings["V'O2"].row == 2 and "'n.a.'" in findings["V'O2"].message
    assert findings["V'CO2"].row == 2 and "decimal comma" in findings["V'CO2"].message
    data = record.data
    assert np.isnan(data.VO2.iloc[1]) and np.isnan(data.VCO2.iloc[1])  # missing, not 0
    assert data.VE.iloc[1] == pytest.approx(13.0)  # the rest of the row is kept
    # row 3's time '0:1:02,5' is not h:mm:ss: the row has no time and is dropped
    assert findings["Zeit"].row == 3 and "clock times" in findings["Zeit"].message
    assert data.t.tolist() == [5.0, 9.0, 3600.0]
    assert_record_conforms(record, path, "generic")


def test_numbers_in_a_text_column_are_reported_with_row(tmp_path):
    text = "t,VO2,HR\n0,500,80\n1,510,eighty\n2,520,82\n3,abc,83\n"
    record = read_mapped(write(tmp_path, text), ColumnMapping({"t": "t", "VO2": "VO2",
                                                               "HR": "HR"}))
    bad = {f.column: f for f in record.findings if f.code == "non-numeric"}
    assert (bad["HR"].row, bad["VO2"].row) == (2, 4)
    assert np.isnan(record.data.HR.iloc[1]) and np.isnan(record.data.VO2.iloc[3])
    assert record.data.VO2.iloc[:3].tolist() == [500.0, 510.0, 520.0]


def test_delimiter_is_guessed_and_malformed_rows_are_skipped(tmp_path):
    text = "Time\tVO2 [L/min]\tHR\n0.0\t0.50\t80\n2.5\t0.55\t81\nsummary\n5.0\t0.60\t82\n"
    mapping = ColumnMapping({"t": ("Time", "s"), "VO2": ("VO2 [L/min]", "L/min"), "HR": "HR"})
    record = read_mapped(write(tmp_path, text, "export.txt"), mapping)
    assert record.data.t.tolist() == [0.0, 2.5, 5.0]
    assert record.data.VO2.tolist() == pytest.approx([500.0, 550.0, 600.0])
    (malformed,) = record.findings
    assert (malformed.code, malformed.row) == ("malformed-row", 3)


def test_decimal_minutes_and_clock_only_times(tmp_path):
    text = "min,VO2\n0.5,500\n1.25,510\n2:00,520\n"
    record = read_mapped(write(tmp_path, text),
                         ColumnMapping({"t": ("min", "min"), "VO2": "VO2"}, decimal="."))
    assert record.data.t.tolist() == [30.0, 75.0, 120.0]  # clock text is still a clock
    clock = read_mapped(write(tmp_path, text),
                        ColumnMapping({"t": ("min", "clock"), "VO2": "VO2"}))
    assert clock.data.t.tolist() == [120.0]  # plain numbers have no unit: not clock times
    (finding,) = clock.findings
    assert (finding.code, finding.column, finding.row) == ("non-numeric", "min", 1)


def test_explicit_encoding_and_a_wrong_one(tmp_path):
    text = "Zeit;V'O2;Höhe\n0;500;178\n1;510;\n2;520;\n"
    path = write(tmp_path, text, encoding="cp1252")
    mapping = ColumnMapping({"t": "Zeit", "VO2": "V'O2"}, encoding="cp1252",
                            metadata_columns={"height_cm": "Höhe"})
    assert read_mapped(path, mapping).metadata.height_cm == 178.0
    with pytest.raises(CPETError) as err:
        read_mapped(path, ColumnMapping({"t": "Zeit", "VO2": "V'O2"}, encoding="utf-8"))
    assert err.value.finding.code == "unreadable" and "utf-8" in err.value.finding.message


def test_unreadable_metadata_and_duplicate_columns_are_findings(tmp_path):
    text = "t,VO2,VO2,Weight,Sex\n0,500,1,heavy,x\n1,510,1,,\n2,520,1,,\n"
    mapping = ColumnMapping({"t": "t", "VO2": "VO2"},
                            metadata_columns={"weight_kg": "Weight", "sex": "Sex",
                                              "age_years": "Age"})
    record = read_mapped(write(tmp_path, text), mapping)
    assert record.data.VO2.tolist() == [500.0, 510.0, 520.0]  # the first VO2 column
    codes = sorted((f.code, f.column) for f in record.findings)
    assert codes == [("missing-channel", "Age"), ("non-numeric", "Sex"),
                     ("non-numeric", "Weight"), ("unknown-column", "VO2")]
    assert (record.metadata.weight_kg, record.metadata.sex) == (None, None)


@pytest.mark.parametrize("text, mapping, code", [
    ("t,VO2\n", ColumnMapping({"t": "t", "VO2": "VO2"}), "empty"),
    ("t,VO2\n0,1\n", ColumnMapping({"t": "t", "VO2": "VO2"}, header_row=5), "unreadable"),
    ("t;VO2\n0;1;2;3\n", ColumnMapping({"t": "t", "VO2": "VO2"}, delimiter=";"), "unreadable"),
])
def test_files_that_do_not_fit_the_layout(tmp_path, text, mapping, code):
    path = write(tmp_path, text)
    with pytest.raises(CPETError) as err:
        read_mapped(path, mapping)
    assert err.value.finding.code == code and err.value.finding.file == str(path)


# --- the mapping -------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, words", [
    ({"channels": {"t": "t", "VO2": ("VO2", "mL/kg/min")}},
     ["'mL/kg/min'", "mL/min, L/min"]),
    ({"channels": {"t": "t", "VO2": "VO2", "V02": "x"}}, ["'V02'", "accepted channels: t, VO2"]),
    ({"channels": {"t": "t"}}, ["missing: VO2"]),
    ({"channels": {"t": ("t", "hours"), "VO2": "VO2"}}, ["'hours'", "s, ms, min", "'clock'"]),
    ({"channels": {"t": "t", "VO2": "VO2", "HR": ("HR", "Hz")}}, ["'Hz'", "bpm"]),
    ({"channels": {"t": "t", "VO2": "VO2", "VE": ("VE", "L/min STPD")}}, ["STPD"]),
    ({"channels": {"t": "t", "VO2": "x", "VCO2": "x"}}, ["'x'", "more than one channel"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "decimal": ";"}, ["';'", "'.', ','"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "delimiter": ",", "decimal": ","}, ["both ','"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "skip_rows": -1}, ["skip_rows"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "encoding": "klingon"}, ["'klingon'"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "metadata": {"sex": "f"}}, ["'female' or 'male'"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "metadata": {"name": "Doe"}},
     ["'name'", "weight_kg, height_cm"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "metadata": {"weight_kg": -3}}, ["positive"]),
    ({"channels": {"t": "t", "VO2": "VO2"}, "metadata": {"weight_kg": 70},
      "metadata_columns": {"weight_kg": "W"}}, ["both"]),
])
def test_invalid_mappings_say_what_is_wrong_and_what_is_accepted(kwargs, words):
    with pytest.raises(ValueError) as err:
        ColumnMapping(**kwargs)
    for word in words:
        assert word in str(err.value)


def test_mapping_defaults_units_and_round_trips_through_a_dict():
    assert SEMICOLON_MAPPING.channels["HR"] == Channel("HF", "1/min")
    assert SEMICOLON_MAPPING.channels["VE"] == Channel("V'E", "L/min")
    assert ColumnMapping.from_dict(SEMICOLON_MAPPING.to_dict()) == SEMICOLON_MAPPING
    assert pickle.loads(pickle.dumps(SEMICOLON_MAPPING)) == SEMICOLON_MAPPING  # for workers
    with pytest.raises(ValueError, match="unknown mapping key"):
        ColumnMapping.from_dict({**SEMICOLON_MAPPING.to_dict(), "delimeter": ";"})
    with pytest.raises(ValueError, match="expected"):
        ColumnMapping.from_dict({"channels": {"t": "t", "VO2": "VO2"}})


# --- profiles ----------------------------------------------------------------------------

@pytest.fixture()
def profiles(tmp_path, monkeypatch):
    folder = tmp_path / "profiles"
    monkeypatch.setenv(PROFILES_ENV, str(folder))
    return folder


def test_profile_round_trip_and_reading_with_it(profiles, tmp_path):
    assert list_profiles() == []
    path = save_profile("hospital-A_v2", SEMICOLON_MAPPING)
    assert path == profiles / "hospital-A_v2.json"
    assert json.loads(path.read_text(encoding="utf-8"))["mapping"]["channels"]["t"] == {
        "column": "Zeit", "unit": "clock"}
    save_profile("other", ColumnMapping({"t": "t", "VO2": "VO2"}))
    assert list_profiles() == ["hospital-A_v2", "other"]
    mapping = load_profile("hospital-A_v2")
    assert mapping == SEMICOLON_MAPPING
    export = write(tmp_path, SEMICOLON_CSV)
    record = read_mapped(export, mapping, profile="hospital-A_v2")
    assert record.metadata.extra["profile"] == "hospital-A_v2"
    assert_record_conforms(record, export, "generic")
    assert sorted(p.name for p in profiles.iterdir()) == ["hospital-A_v2.json", "other.json"]


def test_profiles_folder_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv(PROFILES_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert profiles_folder() == tmp_path / "xdg" / "cpet_nb" / "profiles"
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/path")  # not absolute: ignored (XDG spec)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert profiles_folder() == tmp_path / "home" / ".config" / "cpet_nb" / "profiles"
    assert profiles_folder(tmp_path / "mine") == tmp_path / "mine"


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "a.json", "with space", "x" * 65,
                                  "/etc/passwd", "naïve"])
def test_bad_profile_names_are_refused(profiles, tmp_path, name):
    with pytest.raises(ValueError, match="letters, digits"):
        save_profile(name, SEMICOLON_MAPPING)
    with pytest.raises(ValueError, match="letters, digits"):
        load_profile(name)
    assert not profiles.exists() and sorted(tmp_path.iterdir()) == []


def test_unknown_profile_lists_the_known_ones(profiles):
    save_profile("lab1", SEMICOLON_MAPPING)
    with pytest.raises(ValueError, match="no profile named 'lab2'.*known profiles: lab1"):
        load_profile("lab2")


@pytest.mark.parametrize("content, words", [
    ('{"cpet_nb_profile": 1, "mapping": {', "not valid JSON"),
    ("[1, 2]", "not a cpet_nb profile"),
    ('{"cpet_nb_profile": 2, "mapping": {}}', "format version 2"),
    ('{"cpet_nb_profile": 1, "mapping": {"channels": {"t": {"column": "t", "unit": "s"}}}}',
     "not a valid column mapping: the mapping must name"),
    ('{"cpet_nb_profile": 1, "mapping": {"channels": {"t": {"column": "t", "unit": "s"}, '
     '"VO2": {"column": "VO2", "unit": "furlongs"}}}}', "'furlongs'"),
])
def test_corrupt_profiles_say_why(profiles, content, words):
    profiles.mkdir()
    (profiles / "broken.json").write_text(content, encoding="utf-8")
    assert list_profiles() == ["broken"]
    with pytest.raises(ValueError) as err:
        load_profile("broken")
    assert words in str(err.value) and "'broken'" in str(err.value)
