"""MGC Diagnostics Breeze reader: the real sample (skipped without it) and small files
written here."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from samples import SAMPLES, sample, visible_metadata

import cpet_nb
from cpet_nb.findings import CPETError
from cpet_nb.io.breeze import READER
from cpet_nb.io.vyntus import READER as VYNTUS_READER
from cpet_nb.testing import assert_reader_conforms

BREEZE = SAMPLES / "breeze" / "breeze_bxb.txt"


def test_real_breeze_export_hand_checked():
    # Checked by hand against breeze_bxb.txt (673 CRLF lines): line 1 the header (no units
    # row), lines 2-673 672 breaths. Line 2: '0:13', ' ', '13:25:50', 0.0, 0.4, VO2 13.2,
    # VO2 985, VCO2 766, RER 0.78, RR 29, Vt 833, VE 24.1, BR 86.1, PETO2 96, PETCO2 40,
    # HR 87. Six times occur twice (1:14, 15:41, 16:01, 16:12, 16:23, 16:35).
    path = sample("breeze/breeze_bxb.txt")
    record = assert_reader_conforms(path, "breeze")
    data, meta = record.data, record.metadata
    assert (meta.format, meta.device) == ("breeze", "MGC Diagnostics (Breeze)")
    assert meta.sampling == "breath-by-breath"
    assert len(data) == 666  # 672 rows - 6 repeated times
    first = data.iloc[0]
    assert (first.t, first.VO2, first.VCO2, first.VE, first.RF, first.HR) == (
        13.0, 985.0, 766.0, 24.1, 29.0, 87.0)
    assert (first.VT, first.PetO2, first.PetCO2, first.grade) == (0.833, 96.0, 40.0, 0.4)
    assert data["VO2"].max() == 5142.0  # line 473, '12:52', second VO2 column
    assert data.loc[data["VO2"].idxmax(), "t"] == 772.0
    assert record.duration_s == 985.0  # '0:13' (line 2) to '16:38' (line 673)
    # lines 25 and 26 are both at 1:14 (VO2 1561 and 100): the first is kept
    assert data.loc[data["t"] == 74.0, "VO2"].tolist() == [1561.0]
    duplicate = next(f for f in record.findings if f.code == "duplicate-time")
    assert duplicate.message.startswith("6 row(s)")
    assert "PetO2" in data and "PetCO2" in data
    assert "speed" not in data  # 'Speed' has no unit in the file
    speed = next(f for f in record.findings if f.code == "unknown-column")
    assert speed.column == "Speed"
    assert data["HR"].notna().all()  # no blank HR cell in this file
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex, meta.test_date) == (
        None, None, None, None, None)  # no preamble: nothing stated
    # second VO2 / first VO2: 985 / 13.2 ... median 74.84 kg (derived, not a stated weight)
    assert meta.extra["body_mass_kg_implied"] == 74.8
    assert meta.extra["vo2_columns"] == "absolute: VO2 (column 7) in mL/min; per kg: VO2 (column 6)"
    assert meta.extra["exercise_start_s"] == 53.0  # line 17: Time 0:54, Ex Time 0:01
    assert {f.code for f in record.findings} == {"duplicate-time", "unknown-column"}


def test_real_samples_are_not_claimed_by_the_other_reader():
    breeze, vyntus = sample("breeze/breeze_bxb.txt"), SAMPLES / "vyntus" / "vyntus_no_60s.txt"
    assert not VYNTUS_READER.sniff(breeze.read_bytes(), breeze)
    assert not READER.sniff(vyntus.read_bytes(), vyntus)


# --- small Breeze-like files written by the tests -------------------------------------------

HEADER = ["Time", "Ex Time", "Time (Clock)", "Speed", "Grade", "VO2", "VO2", "VCO2", "RER",
          "RR", "Vt BTPS", "VE BTPS", "BR", "PETO2", "PETCO2", "HR"]
MASS_KG = 70.0


def breath(seconds: int, vo2: int, hr: str = "100", exercise_from: int = 20) -> list[str]:
    """One row as Breeze writes it: per-kg VO2 first, then absolute (mL/min), whole seconds."""
    vco2 = round(0.9 * vo2)
    ex = f"{(seconds - exercise_from) // 60}:{(seconds - exercise_from) % 60:02d}"
    return [f"{seconds // 60}:{seconds % 60:02d}", ex if seconds > exercise_from else " ",
            f"10:00:{seconds % 60:02d}", "3.0", "1.0", f"{vo2 / MASS_KG:.1f}", str(vo2),
            str(vco2), f"{vco2 / vo2:.2f}", "20", "1000", "20.0", "50.0", "105", "38", hr]


ROWS = [breath(5 * i, 700 + 100 * i) for i in range(8)]


def breeze_bytes(rows: list[list[str]], header: list[str] = HEADER,
                 preamble: list[str] = ()) -> bytes:
    lines = [*preamble, "\t".join(header), *("\t".join(row) for row in rows)]
    return ("\r\n".join(lines) + "\r\n").encode("latin-1")


def write(tmp_path, rows=ROWS, **kwargs) -> Path:
    path = tmp_path / "breeze export"  # no extension: detected by content
    path.write_bytes(breeze_bytes(rows, **kwargs))
    return path


def test_written_breeze_file(tmp_path):
    rows = [list(row) for row in ROWS]
    rows[2][-1] = ""  # blank HR cell
    rows[3][-1] = "0"  # HR 0: not measured
    rows.insert(5, breath(20, 9999))  # a second breath at 0:20: dropped, the first is kept
    path = write(tmp_path, rows)
    record = assert_reader_conforms(path, "breeze")
    data = record.data
    assert data["t"].tolist() == [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0]
    assert data["VO2"].tolist() == [700.0 + 100 * i for i in range(8)]  # the absolute column
    assert data["VCO2"].iloc[0] == 630.0 and data["VT"].iloc[0] == 1.0  # Vt 1000 mL -> 1 L
    assert (data["VE"].iloc[0], data["PetO2"].iloc[0], data["PetCO2"].iloc[0]) == (
        20.0, 105.0, 38.0)
    assert np.isnan(data["HR"].iloc[2]) and np.isnan(data["HR"].iloc[3])  # never 0
    codes = {f.code: f for f in record.findings}
    assert "1 of 8" in codes["device-zero-missing"].message
    assert codes["duplicate-time"].message.startswith("1 row(s)")
    assert record.metadata.extra["body_mass_kg_implied"] == pytest.approx(MASS_KG, abs=0.5)
    assert record.metadata.extra["exercise_start_s"] == 20.0


def test_vo2_columns_in_the_other_order(tmp_path):
    header = list(HEADER)
    rows = [row[:5] + [row[6], row[5]] + row[7:] for row in ROWS]  # absolute first
    record = cpet_nb.read(write(tmp_path, rows, header=header))
    assert record.data["VO2"].tolist() == [700.0 + 100 * i for i in range(8)]
    assert record.metadata.extra["vo2_columns"].startswith("absolute: VO2 (column 6)")


def test_preamble_metadata_and_matching_weight(tmp_path):
    preamble = ["Name:\tDoe, Jane", "ID:\t4711", "Weight:\t70 kg", "Height:\t165 cm",
                "Age:\t41", "Sex:\tFemale", "Test Date:\t2022-05-17", ""]
    record = cpet_nb.read(write(tmp_path, preamble=preamble))
    meta = record.metadata
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex, meta.test_date) == (
        70.0, 165.0, 41.0, "female", "2022-05-17")
    assert "Doe" not in visible_metadata(meta) and "4711" not in visible_metadata(meta)


def test_weight_contradicting_the_vo2_columns_is_refused(tmp_path):
    path = write(tmp_path, preamble=["Weight:\t90 kg"])  # the columns say 70 kg
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    finding = err.value.finding
    assert finding.code == "unreadable" and "weight of 90 kg" in finding.message


def test_unrelated_vo2_columns_are_refused(tmp_path):
    rows = [list(row) for row in ROWS]
    for i, row in enumerate(rows):
        row[5] = str(10 + (7 * i) % 5)  # not the absolute column divided by one body mass
    with pytest.raises(CPETError) as err:
        cpet_nb.read(write(tmp_path, rows))
    finding = err.value.finding
    assert finding.code == "unreadable" and finding.column == "VO2"
    assert "cannot tell which VO2 column is absolute" in finding.message


def test_three_bare_vo2_columns_are_refused(tmp_path):
    header = [*HEADER, "VO2"]
    rows = [[*row, row[6]] for row in ROWS]
    with pytest.raises(CPETError) as err:
        cpet_nb.read(write(tmp_path, rows, header=header))
    assert "3 columns are labelled only 'VO2'" in err.value.finding.message


def test_units_in_labels_are_used(tmp_path):
    header = list(HEADER)
    header[3], header[5], header[6] = "Speed (km/h)", "VO2/kg", "VO2 (L/min)"
    rows = [row[:6] + [f"{int(row[6]) / 1000:.3f}"] + row[7:] for row in ROWS]
    record = cpet_nb.read(write(tmp_path, rows, header=header))
    assert record.data["VO2"].tolist() == pytest.approx([700.0 + 100 * i for i in range(8)])
    assert record.data["speed"].eq(3.0).all()


def test_single_vo2_column_is_checked_against_rer(tmp_path):
    header = [h for i, h in enumerate(HEADER) if i != 5]
    rows = [row[:5] + row[6:] for row in ROWS]
    record = cpet_nb.read(write(tmp_path, rows, header=header))
    assert record.data["VO2"].iloc[0] == 700.0
    per_kg_only = [row[:6] + row[7:] for row in ROWS]  # a lone per-kg column fails VCO2/VO2
    with pytest.raises(CPETError) as err:
        cpet_nb.read(write(tmp_path, per_kg_only, header=header))
    assert "is not the file's RER" in err.value.finding.message


def test_mixed_expired_gas_is_never_end_tidal(tmp_path):
    header = ["PEO2" if h == "PETO2" else "PECO2" if h == "PETCO2" else h for h in HEADER]
    record = cpet_nb.read(write(tmp_path, header=header))
    assert "PetO2" not in record.data and "PetCO2" not in record.data


def test_header_only_file_is_empty(tmp_path):
    with pytest.raises(CPETError) as err:
        cpet_nb.read(write(tmp_path, rows=[]))
    assert err.value.finding.code == "empty"


def test_file_cut_mid_row_skips_that_row_with_a_finding(tmp_path):
    complete = breeze_bytes(ROWS)
    path = tmp_path / "cut"
    cut = complete.rindex(b"\r\n0:35\t") + 2 + 29  # last breath '0:35<TAB>0:15<TAB>10:00:35'
    path.write_bytes(complete[:cut])  # ... '<TAB>3.0<TAB>1.0<TAB>20': 6 of 16 fields
    record = assert_reader_conforms(path)
    assert len(record.data) == 7
    finding = next(f for f in record.findings if f.code == "malformed-row")
    assert finding.row == 8 and "the first has 6" in finding.message


def test_text_in_a_numeric_column_is_missing_not_zero(tmp_path):
    rows = [list(row) for row in ROWS]
    rows[4][6] = "err"  # the absolute VO2 column
    rows[1][7] = "1O30"  # letter O in VCO2
    record = cpet_nb.read(write(tmp_path, rows))
    assert np.isnan(record.data["VO2"].iloc[4]) and np.isnan(record.data["VCO2"].iloc[1])
    found = {f.column: f for f in record.findings if f.code == "non-numeric"}
    assert found["VO2 (column 7)"].row == 5 and "'err'" in found["VO2 (column 7)"].message
    assert found["VCO2"].row == 2 and "'1O30'" in found["VCO2"].message


def test_time_without_clock_cells_is_unreadable(tmp_path):
    rows = [[str(5 * i), *row[1:]] for i, row in enumerate(ROWS)]  # '0', '5', ...: no unit
    with pytest.raises(CPETError) as err:
        cpet_nb.read(write(tmp_path, rows))
    assert err.value.finding.code == "unreadable" and err.value.finding.column == "Time"


def test_breeze_sniff_does_not_claim_other_files(ramp_csv, tmp_path):
    assert not READER.sniff(ramp_csv.read_bytes(), ramp_csv)
    vyntus_like = b"Tid\tHF\tV'O2\tV'CO2\r\nmin\t1/min\tmL/min\tmL/min\r\n 00:56\t78\t321\t267\r\n"
    assert not READER.sniff(vyntus_like, Path("x.txt"))
    assert not READER.sniff(b"Time\tVO2\tVCO2\n0\t1\t2\n", Path("x.txt"))  # no Breeze label
    assert VYNTUS_READER.sniff(vyntus_like, Path("x.txt"))
    assert not VYNTUS_READER.sniff(breeze_bytes(ROWS), Path("x.txt"))


def test_clock_column_first_and_an_unknown_label_unit(tmp_path):
    header = list(HEADER)
    header[3] = "Speed (furlongs/h)"
    order = [2, 0, 1, *range(3, len(HEADER))]  # 'Time (Clock)' before 'Time'
    rows = [[row[i] for i in order] for row in ROWS]
    record = cpet_nb.read(write(tmp_path, rows, header=[header[i] for i in order]))
    assert record.data["t"].tolist()[:2] == [0.0, 5.0]  # from 'Time', not the wall clock
    assert "speed" not in record.data
    finding = next(f for f in record.findings if f.code == "unknown-column")
    assert finding.column == "Speed (furlongs/h)" and "the label gives" in finding.message


def test_tidal_volume_that_does_not_fit_ve_and_rr_is_left_out(tmp_path):
    rows = [row[:10] + ["1.0"] + row[11:] for row in ROWS]  # Vt written in L
    record = cpet_nb.read(write(tmp_path, rows))
    assert "VT" not in record.data and record.data["VE"].iloc[0] == 20.0
    finding = next(f for f in record.findings if f.column == "Vt BTPS")
    assert finding.code == "unknown-column" and "1e+03" in finding.message


# --- a units row under the labels (exports set up to write units), from the real sample ---

#: A units row for the sample's 16 columns, as Breeze writes units when set up to.
UNITS_ROW = ["m:ss", "m:ss", "hh:mm:ss", "MPH", "%", "ml/kg/min", "ml/min", "ml/min", "",
             "br/min", "ml", "L/min", "%", "mmHg", "mmHg", "bpm"]


def with_units_row(tmp_path, units: list[str]) -> Path:
    """The real sample with ``units`` inserted as the line after its header."""
    lines = sample("breeze/breeze_bxb.txt").read_bytes().split(b"\r\n")
    path = tmp_path / "breeze_units.txt"
    path.write_bytes(b"\r\n".join([lines[0], "\t".join(units).encode(), *lines[1:]]))
    return path


def test_units_row_is_read_as_units_and_mph_converted(tmp_path):
    plain = cpet_nb.read(sample("breeze/breeze_bxb.txt"))
    record = assert_reader_conforms(with_units_row(tmp_path, UNITS_ROW))
    data = record.data
    assert len(data) == len(plain.data) == 666  # the units row is not a data row
    for channel in ("t", "VO2", "VCO2", "VE", "VT", "RF", "HR", "PetO2", "PetCO2", "grade"):
        pd.testing.assert_series_equal(data[channel], plain.data[channel])
    # line 2 of the sample: Speed 0.0; line 17 (0:54, exercise starts): 1.9 (MPH)
    speeds = pd.read_csv(sample("breeze/breeze_bxb.txt"), sep="\t")["Speed"]
    assert data["speed"].max() == pytest.approx(speeds.max() * 1.609344)
    assert data.loc[data["t"] == 54.0, "speed"].item() == pytest.approx(1.9 * 1.609344)
    assert record.metadata.extra["vo2_columns"] == (
        "absolute: VO2 (column 7) in ml/min; per kg: VO2 (column 6)")
    assert {f.code for f in record.findings} == {"duplicate-time"}  # no unknown Speed unit


def test_units_row_with_an_unknown_unit_drops_that_channel(tmp_path):
    units = ["knots" if unit == "MPH" else "Hz" if unit == "bpm" else unit
             for unit in UNITS_ROW]
    record = cpet_nb.read(with_units_row(tmp_path, units))
    assert len(record.data) == 666
    assert "speed" not in record.data and "HR" not in record.data
    dropped = {f.column: f.message for f in record.findings if f.code == "unknown-column"}
    assert set(dropped) == {"Speed", "HR"}
    assert "the units row gives 'knots'" in dropped["Speed"] and "left out" in dropped["Speed"]
    assert "'Hz'" in dropped["HR"]
    assert not any(f.code == "non-numeric" for f in record.findings)


def test_a_per_kg_unit_in_the_units_row_marks_that_vo2_column(tmp_path):
    rows = [row[:5] + [row[6], row[5]] + row[7:] for row in ROWS]  # absolute VO2 first
    units = ["m:ss", "m:ss", "hh:mm:ss", "km/h", "%", "ml/min", "ml/kg/min", "ml/min", "",
             "br/min", "ml", "L/min", "%", "mmHg", "mmHg", "bpm"]
    path = tmp_path / "units"
    path.write_bytes(breeze_bytes([units, *rows]))
    record = cpet_nb.read(path)
    assert record.data["VO2"].tolist() == [700.0 + 100 * i for i in range(8)]
    assert record.data["speed"].eq(3.0).all()  # km/h from the units row
    assert len(record.data) == 8
