"""Vyntus CPX / SentrySuite reader: the real Norwegian sample (skipped without it) and small
files written here."""

from pathlib import Path

import numpy as np
import pytest
from samples import SAMPLES, sample, visible_metadata

import cpet_nb
from cpet_nb.findings import CPETError
from cpet_nb.io import detect_format
from cpet_nb.io.vyntus import LABELS, READER
from cpet_nb.testing import assert_reader_conforms

VYNTUS = SAMPLES / "vyntus" / "vyntus_no_60s.txt"


def test_real_vyntus_export_hand_checked():
    # Checked by hand against vyntus_no_60s.txt (11 lines): line 1 'ID-nummer:<TAB>BT2096',
    # line 2 blank, line 3 the header, line 4 the units row (Tid min, V'O2 mL/min, V'E L/min,
    # VTex L, HF and BF 1/min), lines 5-11 seven data rows; Last and RPM are blank in all.
    path = sample("vyntus/vyntus_no_60s.txt")
    record = assert_reader_conforms(path, "vyntus")
    data, meta = record.data, record.metadata
    assert (meta.format, meta.device) == ("vyntus", "Vyaire Vyntus CPX (SentrySuite)")
    assert meta.extra["language"] == "NO"
    assert len(data) == 7  # lines 5-11, none dropped
    first = data.iloc[0]  # line 5: ' 00:56', '', '', 78, 4.7, 321, 267, 0.83, 27, 17.8, 1.536
    assert (first.t, first.VO2, first.VCO2, first.VE, first.HR, first.RF, first.VT) == (
        56.0, 321.0, 267.0, 27.0, 78.0, 17.8, 1.536)
    assert data["VO2"].max() == 2415.0  # line 8, ' 03:00': the largest V'O2
    assert data.loc[data["VO2"].idxmax(), "t"] == 180.0
    assert record.duration_s == 304.0  # ' 00:56' (line 5) to ' 06:00' (line 11)
    assert data["t"].tolist() == [56.0, 60.0, 120.0, 180.0, 240.0, 300.0, 360.0]
    # 60 s averages, but the first step is 4 s (00:56 -> 01:00): 1 of 6 steps is irregular,
    # so detect_sampling does not call it an average
    assert meta.sampling == "averaged 60 s"  # steps 4 s (56 -> 60), then 60 s
    assert "PetO2" not in data and "PetCO2" not in data  # no end-tidal column in the file
    assert "load" not in data  # Last is blank in every row
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex, meta.test_date) == (
        None, None, None, None, None)  # the file states none of them
    # V'O2 / V'O2/kg: 321/4.7 ... 2245/33.0, median 68.03 kg (derived, not a stated weight)
    assert meta.extra["body_mass_kg_implied"] == 68.0
    assert "BT2096" not in visible_metadata(meta)  # the ID is never read
    assert record.findings == []


# --- small SentrySuite-like files written by the tests --------------------------------------

GERMAN_HEADER = ["Zeit", "Last", "HF", "V'O2/kg", "V'O2", "V'CO2", "V'E", "AF", "VTex",
                 "PetO2", "PetCO2", "PECO2", "Geschw.", "Steigung", "RER"]
GERMAN_UNITS = ["min", "W", "1/min", "(mL/min)/kg", "L/min", "L/min", "L/min", "1/min", "L",
                "kPa", "kPa", "kPa", "km/h", "%", ""]


def german_row(i: int, hr: str = "120") -> list[str]:
    """A data row: 30 s steps, V'O2 0,350 L/min + 0,1 per step, kg = 70."""
    vo2 = 0.350 + 0.1 * i
    return [f" {i // 2:02d}:{30 * (i % 2):02d}", str(50 + 10 * i), hr,
            f"{vo2 * 1000 / 70:.1f}".replace(".", ","), f"{vo2:.3f}".replace(".", ","),
            f"{vo2 * 0.8:.3f}".replace(".", ","), "20,5", "18", "1,1", "13,5", "4,8", "3,1",
            "", "", "0,85"]


def vyntus_bytes(header: list[str], units: list[str] | None, rows: list[list[str]],
                 preamble: list[str] = (), newline: str = "\r\n",
                 encoding: str = "latin-1") -> bytes:
    lines = [*preamble, "", "\t".join(header)]
    if units is not None:
        lines.append("\t".join(units))
    lines += ["\t".join(row) for row in rows]
    return newline.join(lines).encode(encoding)


GERMAN_PREAMBLE = ["Name:\tMüller", "Vorname:\tJörg", "ID-Nummer:\t000123",
                   "Geburtsdatum:\t01.02.1990", "Geschlecht:\tweiblich", "Größe:\t178 cm",
                   "Gewicht:\t74,8 kg", "Alter:\t34", "Testdatum:\t12.03.2021"]
GERMAN_ROWS = [german_row(0, hr="0")] + [german_row(i) for i in range(1, 6)]


def write_german(tmp_path, **changes) -> Path:
    parts = {"header": GERMAN_HEADER, "units": GERMAN_UNITS, "rows": GERMAN_ROWS,
             "preamble": GERMAN_PREAMBLE, **changes}
    path = tmp_path / "export.txt"
    path.write_bytes(vyntus_bytes(parts["header"], parts["units"], parts["rows"],
                                  parts["preamble"]))
    return path


def test_written_german_export(tmp_path):
    path = tmp_path / "SentrySuite export"  # no extension: detected by content
    path.write_bytes(vyntus_bytes(GERMAN_HEADER, GERMAN_UNITS, GERMAN_ROWS, GERMAN_PREAMBLE))
    record = assert_reader_conforms(path, "vyntus")
    data, meta = record.data, record.metadata
    assert meta.extra["language"] == "DE"
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex, meta.test_date) == (
        74.8, 178.0, 34.0, "female", "2021-03-12")
    for private in ("Müller", "Jörg", "000123", "1990"):
        assert private not in visible_metadata(meta)
    assert data["t"].tolist() == [0.0, 30.0, 60.0, 90.0, 120.0, 150.0]  # ' 00:00' ... ' 02:30'
    first = data.iloc[0]
    assert (first.VO2, first.VCO2, first.VE, first.RF, first.VT, first.load) == pytest.approx(
        (350.0, 280.0, 20.5, 18.0, 1.1, 50.0))  # L/min -> mL/min from the units row
    assert first.PetO2 == pytest.approx(13.5 * 760 / 101.325)  # kPa -> 101.3 mmHg
    assert first.PetCO2 == pytest.approx(4.8 * 760 / 101.325)  # not PECO2 (mixed expired)
    assert np.isnan(first.HR)  # HF 0: not measured
    assert data["HR"].iloc[1:].eq(120.0).all()
    assert "speed" not in data and "grade" not in data  # blank in every row
    hr = next(f for f in record.findings if f.code == "device-zero-missing")
    assert hr.column == "HF" and "1 of 6" in hr.message
    assert meta.extra["body_mass_kg_implied"] == pytest.approx(70.0, abs=0.3)


@pytest.mark.parametrize("language, header", [
    ("EN", ["Time", "Load", "HR", "V'O2", "V'CO2", "V'E", "BF", "VTex", "PetO2", "PetCO2"]),
    ("DE", ["Zeit", "Last", "HF", "V'O2", "V'CO2", "V'E", "AF", "VTex", "PetO2", "PetCO2"]),
    ("FR", ["Temps", "Charge", "FC", "V'O2", "V'CO2", "V'E", "FR", "VTex", "PETO2", "PETCO2"]),
    ("NO", ["Tid", "Last", "HF", "V'O2", "V'CO2", "V'E", "BF", "VTex", "PetO2", "PetCO2"]),
])
def test_each_language_table_maps_every_channel(tmp_path, language, header):
    units = ["s", "W", "1/min", "mL/min", "mL/min", "L/min", "1/min", "L", "mmHg", "mmHg"]
    rows = [[str(10 * i), "100", "130", str(1000 + i), "900", "30", "20", "1.5", "100", "40"]
            for i in range(4)]
    path = tmp_path / f"{language}.txt"
    path.write_bytes(vyntus_bytes(header, units, rows, newline="\n", encoding="utf-8"))
    record = assert_reader_conforms(path)
    assert record.metadata.extra["language"] == language
    assert set(record.data.columns) == {"t", "load", "HR", "VO2", "VCO2", "VE", "RF", "VT",
                                        "PetO2", "PetCO2"}
    assert record.data["VO2"].tolist() == [1000.0, 1001.0, 1002.0, 1003.0]
    assert record.data["t"].tolist() == [0.0, 10.0, 20.0, 30.0]


def test_label_table_can_be_extended(tmp_path, monkeypatch):
    monkeypatch.setitem(LABELS["NO"], "Puls", "HR")
    header = ["Tid", "Puls", "V'O2"]
    path = tmp_path / "puls.txt"
    path.write_bytes(vyntus_bytes(header, ["s", "1/min", "mL/min"],
                                  [["0", "80", "300"], ["5", "82", "310"], ["10", "", "320"]]))
    record = cpet_nb.read(path)
    assert record.data["HR"].tolist()[:2] == [80.0, 82.0]
    assert np.isnan(record.data["HR"].iloc[2])  # blank cell: missing, not 0


def test_mixed_expired_gas_is_never_end_tidal(tmp_path):
    header = ["Time", "V'O2", "PeO2", "PECO2", "FetO2"]
    rows = [[str(i), "500", "110", "30", "15.5"] for i in range(4)]
    path = tmp_path / "mixed.txt"
    path.write_bytes(vyntus_bytes(header, ["s", "mL/min", "mmHg", "mmHg", "%"], rows))
    record = cpet_nb.read(path)
    assert "PetO2" not in record.data and "PetCO2" not in record.data


def test_truncated_after_the_header_is_a_finding(tmp_path):
    path = tmp_path / "cut.txt"
    complete = vyntus_bytes(GERMAN_HEADER, GERMAN_UNITS, GERMAN_ROWS, GERMAN_PREAMBLE)
    path.write_bytes(complete[: complete.index(b"\r\nmin\t")])  # cut before the units row
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    finding = err.value.finding
    assert finding.code == "unreadable" and "ends after the header row" in finding.message
    assert finding.file == str(path)


def test_truncated_after_the_units_row_is_empty(tmp_path):
    path = write_german(tmp_path, rows=[])
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == "empty"


def test_row_cut_mid_way_is_skipped_with_a_finding(tmp_path):
    complete = vyntus_bytes(GERMAN_HEADER, GERMAN_UNITS, GERMAN_ROWS, GERMAN_PREAMBLE)
    path = tmp_path / "cut_row.txt"
    path.write_bytes(complete[: complete.rindex(b" 02:30") + 20])  # last row: 6 fields
    record = assert_reader_conforms(path)
    assert len(record.data) == 5
    cut = next(f for f in record.findings if f.code == "malformed-row")
    assert cut.row == 6 and "the first has 5" in cut.message


def test_text_in_a_numeric_column_is_missing_not_zero(tmp_path):
    rows = [list(row) for row in GERMAN_ROWS]
    rows[2][4] = "n.v."
    record = cpet_nb.read(write_german(tmp_path, rows=rows))
    assert np.isnan(record.data["VO2"].iloc[2])
    finding = next(f for f in record.findings if f.code == "non-numeric")
    assert (finding.column, finding.row) == ("V'O2", 3) and "'n.v.'" in finding.message


def test_missing_units_row_is_a_finding(tmp_path):
    path = write_german(tmp_path, units=None)
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == "unreadable"
    assert "not the units row" in err.value.finding.message


def test_per_kg_unit_under_v_o2_is_refused(tmp_path):
    units = list(GERMAN_UNITS)
    units[4] = "(mL/min)/kg"
    with pytest.raises(CPETError) as err:
        cpet_nb.read(write_german(tmp_path, units=units))
    finding = err.value.finding
    assert finding.code == "unreadable" and finding.column == "V'O2"
    assert "(mL/min)/kg" in finding.message


def test_unknown_unit_leaves_the_channel_out(tmp_path):
    units = list(GERMAN_UNITS)
    units[2] = "W"  # HF in watts: not a heart rate unit
    record = cpet_nb.read(write_german(tmp_path, units=units))
    assert "HR" not in record.data
    finding = next(f for f in record.findings if f.code == "unknown-column")
    assert finding.column == "HF" and "'W'" in finding.message


@pytest.mark.parametrize("written, expected", [
    ("2021-03-24", "2021-03-24"), ("03/24/2021", "2021-03-24"), ("24/03/2021", "2021-03-24"),
    ("03/04/2021", None),  # March 4 or April 3: left missing
])
def test_english_dates_are_read_only_when_unambiguous(tmp_path, written, expected):
    header = ["Time", "V'O2"]
    path = tmp_path / "date.txt"
    path.write_bytes(vyntus_bytes(header, ["s", "mL/min"], [["0", "1"], ["1", "2"]],
                                  [f"Test date:\t{written}", "Weight:\t165 lb"]))
    record = cpet_nb.read(path)
    assert record.metadata.test_date == expected
    assert record.metadata.weight_kg == pytest.approx(165 * 0.45359237)
    if expected is None:
        assert any(f.code == "non-numeric" and "date" in f.message for f in record.findings)


def test_vyntus_sniff_does_not_claim_other_files(ramp_csv):
    assert not READER.sniff(ramp_csv.read_bytes(), ramp_csv)
    breeze_like = b"Time\tEx Time\tVO2\tVO2\tVCO2\r\n0:13\t \t13.2\t985\t766\r\n"
    assert not READER.sniff(breeze_like, Path("x.txt"))
    assert not READER.sniff(b"Zeit;V'O2\n0;1\n", Path("x.txt"))  # not tab-separated
    assert detect_format(ramp_csv).name == "canonical-csv"
