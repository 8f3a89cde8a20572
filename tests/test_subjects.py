"""Subject tables: the real participants.csv on the ZAN ramp tests, and tables written here."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from samples import SAMPLES, sample

import cpet_nb
from cpet_nb.io.participants import AMBIGUOUS_CODE, APPLIED_CODE, NO_ROW_CODE, SubjectTable
from cpet_nb.record import CPETRecord, Metadata

RAMPTESTS = SAMPLES / "zan" / "ramptests"


def record(name: str, **metadata) -> CPETRecord:
    """A two-breath record named ``name`` with the given metadata."""
    data = pd.DataFrame({"t": [1.0, 3.0], "VO2": [500.0, 520.0]})
    return CPETRecord(data, Metadata(source_name=name, **metadata))


def table(tmp_path: Path, text: str, name: str = "subjects.csv") -> SubjectTable:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return SubjectTable.from_csv(path)


def only(findings, code):
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, [str(f) for f in findings]
    return matching[0]


# --- the real table: zan/ramptests/participants.csv --------------------------------------

# Checked by hand: participants.csv rows p=1, 2, 9, 12 (p,sex,bodymass,height) and the
# [person] gewicht/groesse lines of ramptests/01, 02, 09, 12.
HAND_CHECKED = {
    # file: (row, file weight, table weight, file height, table height, sex)
    "01": (1, 60.0, 60.1, 164.0, 164.0, "female"),  # 1,female,60.1,164
    "02": (2, 60.0, 60.7, 164.0, 167.0, "male"),  # 2,male,60.7,167
    "09": (9, 49.0, 48.8, 160.0, 160.0, "female"),  # 9,female,48.8,160
    "12": (12, 70.0, 69.8, 175.0, 174.5, "male"),  # 12,male,69.8,174.5
}


def test_real_participants_table_reads_72_rows():
    subjects = SubjectTable.from_csv(sample("zan/ramptests/participants.csv"))
    assert subjects.source == "participants.csv"
    assert len(subjects.rows) == 72
    assert [row.key for row in subjects.rows[:3]] == ["1", "2", "3"]
    assert subjects.rows[0].values == {"sex": "female", "weight_kg": 60.1, "height_cm": 164.0}
    ignored = only(subjects.findings, "unknown-column")  # the only finding
    assert len(subjects.findings) == 1 and "study, overall_id" in ignored.message


@pytest.mark.parametrize("name", list(HAND_CHECKED))
def test_real_table_overrides_zan_metadata(name):
    row, file_weight, weight, file_height, height, sex = HAND_CHECKED[name]
    subjects = SubjectTable.from_csv(sample("zan/ramptests/participants.csv"))
    original = cpet_nb.read(sample(f"zan/ramptests/{name}"))
    assert (original.metadata.weight_kg, original.metadata.height_cm) == (file_weight,
                                                                          file_height)
    applied = subjects.apply(original)
    meta = applied.metadata
    assert (meta.weight_kg, meta.height_cm, meta.sex, meta.age_years) == (weight, height, sex,
                                                                          None)
    assert original.metadata.weight_kg == file_weight  # the input record is not changed
    assert applied.findings[:-1] == original.findings
    pd.testing.assert_frame_equal(applied.data, original.data)
    finding = applied.findings[-1]
    assert (finding.code, finding.severity.value, finding.file) == (APPLIED_CODE, "info", name)
    assert f"row {row} (key '{row}'" in finding.message
    assert f"weight {file_weight:g} -> {weight:g} kg" in finding.message


def test_real_table_messages_by_hand():
    subjects = SubjectTable.from_csv(sample("zan/ramptests/participants.csv"))
    first = subjects.apply(cpet_nb.read(sample("zan/ramptests/01"))).findings[-1]
    assert first.message == (
        "participants table participants.csv row 1 (key '1', matched by number 1): weight "
        "60 -> 60.1 kg; same as the file: height 164 cm, sex female")
    twelfth = subjects.apply(cpet_nb.read(sample("zan/ramptests/12"))).findings[-1]
    assert "matched by file name" in twelfth.message  # key 12 equals the file name 12
    assert "weight 70 -> 69.8 kg, height 175 -> 174.5 cm" in twelfth.message


def test_real_record_without_row_keeps_its_metadata():
    subjects = SubjectTable.from_csv(sample("zan/ramptests/participants.csv"))
    applied = subjects.apply(cpet_nb.read(sample("zan/zan_ramp")))  # no number in the name
    assert (applied.metadata.weight_kg, applied.metadata.height_cm) == (66.0, 180.0)
    finding = applied.findings[-1]
    assert (finding.code, finding.severity.value) == (NO_ROW_CODE, "info")
    assert "no row in participants table participants.csv" in finding.message


# --- tables written by the tests ---------------------------------------------------------

def test_decimal_comma_semicolons_height_in_metres_and_flexible_headers(tmp_path):
    subjects = table(tmp_path, "Subject;Name;Weight (kg);Height [m];Age;Gender;Date of birth\n"
                               "S01_ramp;Muster;60,1;1,64;34;W;01.02.1990\n"
                               "S02_ramp;Beispiel;72;1,80;41;male;03.04.1983\n")
    assert "Name, Date of birth" in only(subjects.findings, "unknown-column").message
    applied = subjects.apply(record("S01_ramp.csv", weight_kg=60.0))
    meta = applied.metadata
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex) == (60.1, 164.0, 34.0,
                                                                          "female")
    assert "Muster" not in repr(applied) and "1990" not in repr(subjects)
    message = applied.findings[-1].message
    assert "name without extension" in message
    assert "weight 60 -> 60.1 kg, height (not in file) -> 164 cm" in message
    assert "age (not in file) -> 34 years, sex (not in file) -> female" in message


def test_height_units_by_header_cell_and_magnitude(tmp_path):
    subjects = table(tmp_path, "id,height\na,1.70\nb,1.8 m\nc,\n")
    assert [row.values.get("height_cm") for row in subjects.rows] == [170.0, 180.0, None]
    subjects = table(tmp_path, "id,height\na,170\nb,1.64\n")  # not all below 3: cm
    assert subjects.rows[0].values == {"height_cm": 170.0}
    implausible = only(subjects.findings, "implausible-values")
    assert (implausible.row, implausible.column) == (2, "height")
    assert "'1.64'" in implausible.message and "read in cm" in implausible.message
    subjects = table(tmp_path, "id,height_m,weight_kg\na,1.7,60 kg\n")
    assert subjects.rows[0].values == {"height_cm": 170.0, "weight_kg": 60.0}
    subjects = table(tmp_path, "id\tHeight (cm)\na\t164\n")
    assert subjects.rows[0].values == {"height_cm": 164.0}


def test_missing_cells_never_erase_file_values(tmp_path):
    subjects = table(tmp_path, "file,weight,height,sex,age\n7,,181,,\n")
    applied = subjects.apply(record("7", weight_kg=80.0, sex="male", age_years=50.0))
    meta = applied.metadata
    assert (meta.weight_kg, meta.height_cm, meta.sex, meta.age_years) == (80.0, 181.0, "male",
                                                                          50.0)
    assert applied.findings[-1].message.endswith("height (not in file) -> 181 cm")


def test_bad_cells_are_findings_and_keep_file_values(tmp_path):
    subjects = table(tmp_path, "p,bodymass,height,sex\n1,6o,170,x\n2,600,171,f\n3,65 lb,172,m\n")
    non_numeric = [f for f in subjects.findings if f.code == "non-numeric"]
    assert {(f.column, f.row) for f in non_numeric} == {("bodymass", 1), ("sex", 1)}
    assert "2 cell(s)" in next(f for f in non_numeric if f.column == "bodymass").message
    implausible = only(subjects.findings, "implausible-values")
    assert (implausible.column, implausible.row) == ("bodymass", 2)
    assert "20-300 kg" in implausible.message
    assert subjects.rows[0].problems == {"weight_kg": "6o", "sex": "x"}
    assert subjects.rows[2].problems == {"weight_kg": "65 lb"}  # another unit than kg
    applied = subjects.apply(record("test01.xml", weight_kg=61.0, sex="female"))
    assert (applied.metadata.weight_kg, applied.metadata.sex) == (61.0, "female")
    message = applied.findings[-1].message
    assert "weight 61 kg" not in message and "height (not in file) -> 170 cm" in message
    assert "weight cell '6o' unusable, file value 61 kept" in message
    assert "sex cell 'x' unusable, file value female kept" in message


@pytest.mark.parametrize("name, key, rule", [
    ("01", "01", "file name"),
    ("S3_ramp.CSV", "s3_ramp.csv", "file name"),
    ("s3_ramp.xlsx", "S3_ramp", "name without extension"),
    ("01", "1", "number 1"),
    ("test1.xml", "1", "number 1"),
    ("S01_ramp.csv", "001", "number 1"),
    ("folder/sub/01", "1", "number 1"),
])
def test_matching_rules(name, key, rule):
    subjects = SubjectTable.from_frame(pd.DataFrame({"file": [key], "weight": [70]}))
    assert [(row.key, found) for row, found in subjects.match(name)] == [(key, rule)]


@pytest.mark.parametrize("name, key", [
    ("S01_T2.csv", "1"),  # two numbers in the name: no numeric match
    ("10", "1"),
    ("zan_ramp", "1"),
    ("01", "S1"),  # only keys of digits match by number
    ("01", "1.0"),
])
def test_non_matches(name, key):
    subjects = SubjectTable.from_frame(pd.DataFrame({"file": [key], "weight": [70]}))
    assert subjects.match(name) == []


def test_two_matching_rows_are_reported_not_guessed(tmp_path):
    subjects = table(tmp_path, "id,weight\n01,60\n1,70\n")
    applied = subjects.apply(record("01", weight_kg=65.0))
    assert applied.metadata.weight_kg == 65.0
    finding = applied.findings[-1]
    assert (finding.code, finding.severity.value) == (AMBIGUOUS_CODE, "warning")
    assert "row 1 (key '01', file name); row 2 (key '1', number 1)" in finding.message
    assert "none was applied" in finding.message


def test_duplicate_keys_are_reported_when_read(tmp_path):
    subjects = table(tmp_path, "p,weight\n3,60\n4,61\n3,62\n")
    duplicate = only(subjects.findings, AMBIGUOUS_CODE)
    assert "key '3' is in rows 1, 3" in duplicate.message
    assert subjects.apply(record("03")).findings[-1].severity.value == "warning"
    assert subjects.apply(record("04")).metadata.weight_kg == 61.0


def test_key_column_preference_and_rows_without_key(tmp_path):
    subjects = table(tmp_path, "p,file,weight\n1,a.csv,60\n2,,61\n")
    assert [row.key for row in subjects.rows] == ["a.csv"]
    skipped = only(subjects.findings, "malformed-row")
    assert (skipped.row, skipped.column) == (2, "file")
    assert "p" in only(subjects.findings, "unknown-column").message


def test_from_frame_with_numbers():
    frame = pd.DataFrame({"subject": [1.0, 2.0], "mass": [60.5, None], "age": [30, 40]})
    subjects = SubjectTable.from_frame(frame, source="frame")
    assert [(row.key, row.values) for row in subjects.rows] == [
        ("1", {"weight_kg": 60.5, "age_years": 30.0}), ("2", {"age_years": 40.0})]
    applied = subjects.apply(record("2.csv", weight_kg=70.0))
    assert (applied.metadata.weight_kg, applied.metadata.age_years) == (70.0, 40.0)
    assert "participants table frame row 2" in applied.findings[-1].message


@pytest.mark.parametrize("text, code, words", [
    (None, "file-not-found", "no such file"),
    ("weight,height\n60,170\n", "unreadable", "no key column"),
    ("p,weight\n", "empty", "no rows"),
    ('p,weight\n1,"60\n', "unreadable", "could not parse"),
])
def test_unusable_tables_are_findings(tmp_path, text, code, words):
    path = tmp_path / "subjects.csv"
    if text is not None:
        path.write_text(text, encoding="utf-8")
    subjects = SubjectTable.from_csv(path)
    assert subjects.rows == []
    finding = only(subjects.findings, code)
    assert finding.severity.value == "error" and words in finding.message
    assert finding.file == str(path)
    assert subjects.apply(record("1")).findings[-1].code == NO_ROW_CODE


def test_table_without_value_columns_is_a_warning(tmp_path):
    subjects = table(tmp_path, "id,comment\n1,ok\n")
    assert "changes nothing" in only(subjects.findings, "missing-channel").message
    assert subjects.apply(record("1")).findings[-1].message.startswith(
        "participants table subjects.csv row 1 (key '1', matched by file name): no value "
        "changed")


def test_latin1_table_with_german_headers(tmp_path):
    path = tmp_path / "subjects.csv"
    path.write_bytes("Datei;Geschlecht;Gewicht;Größe;Alter;sex\n1;Männlich;70,5;1,75;28;f\n"
                     .encode("latin-1"))
    subjects = SubjectTable.from_csv(path)
    assert subjects.rows[0].values == {"sex": "male", "weight_kg": 70.5, "height_cm": 175.0,
                                       "age_years": 28.0}
    # the first sex column is used; the second is listed as not read
    assert "column(s) not read: sex" in only(subjects.findings, "unknown-column").message


# --- the barometric pressure column ---------------------------------------------------------

def fractions_record(name: str, **columns) -> CPETRecord:
    """A two-breath record with end-tidal fractions (%) and no end-tidal pressures."""
    data = pd.DataFrame({"t": [1.0, 3.0], "VO2": [500.0, 520.0], "FetO2": [15.5, 15.0],
                         "FetCO2": [5.0, 5.2], **columns})
    return CPETRecord(data, Metadata(source_name=name))


def test_pressure_columns_by_header_unit_and_cell_unit(tmp_path):
    subjects = table(tmp_path, "file,Luftdruck (hPa),weight\n"
                               "a,950,70\nb,\"1013,2\",71\nc,,72\n")
    pressures = [row.values.get("barometric_pressure_mmhg") for row in subjects.rows]
    assert pressures == [pytest.approx(950 * 0.750062), pytest.approx(1013.2 * 0.750062), None]
    subjects = table(tmp_path, "file,PB\na,715 mmHg\nb,95 kPa\nc,715\n")
    pressures = [row.values.get("barometric_pressure_mmhg") for row in subjects.rows]
    assert pressures == [715.0, pytest.approx(95 * 7.50062), None]
    unitless = only(subjects.findings, "non-numeric")  # 715 alone: mmHg or hPa? not guessed
    assert (unitless.column, unitless.row) == ("PB", 3)
    assert "without a unit" in unitless.message and "'PB (mmHg)'" in unitless.message
    subjects = table(tmp_path, "file,pb_mmhg\na,1013\n")  # hPa written as mmHg
    implausible = only(subjects.findings, "implausible-values")
    assert "350-850 mmHg" in implausible.message and subjects.rows[0].values == {}


def test_pressure_row_derives_the_end_tidal_pressures(tmp_path):
    subjects = table(tmp_path, "file,PB (mmHg)\n7,700\n")
    applied = subjects.apply(fractions_record("7"))
    np.testing.assert_allclose(applied.data["PetO2"], [15.5 / 100 * 653, 15.0 / 100 * 653])
    np.testing.assert_allclose(applied.data["PetCO2"], [5.0 / 100 * 653, 5.2 / 100 * 653])
    derived = [f for f in applied.findings if f.code == "derived-channel"]
    assert [f.column for f in derived] == ["PetO2", "PetCO2"]
    assert "700.0 mmHg from participants table subjects.csv row 1" in derived[0].message
    message = only(applied.findings, APPLIED_CODE).message
    assert message.endswith("no value changed; barometric pressure 700.0 mmHg (used for "
                            "PetO2, PetCO2)")
    # a record that has its end-tidal pressures keeps them
    measured = subjects.apply(fractions_record("7", PetO2=[99.0, 98.0], PetCO2=[38.0, 39.0]))
    assert measured.data["PetO2"].tolist() == [99.0, 98.0]
    assert "not used" in only(measured.findings, APPLIED_CODE).message
    assert not any(f.code == "derived-channel" for f in measured.findings)
