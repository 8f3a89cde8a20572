"""COSMED Excel readers: real samples (skipped without them) and small workbooks written here."""

import math
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pytest
from samples import SAMPLES, sample, visible_metadata

import cpet_nb
import cpet_nb.io
from cpet_nb.findings import CPETError
from cpet_nb.io import detect_format
from cpet_nb.io.cosmed import OMNIA_READER, READERS
from cpet_nb.testing import assert_reader_conforms

COSMED = SAMPLES / "cosmed"


# Checked by hand against the raw workbooks (first sheet read with pandas' calamine engine,
# header=None; sheet cells named as in Excel): first VO2 = N4 (unit cell N2 mL/min or ml/min);
# peak VO2 = largest value in column N and t at that row in column J; duration = last J cell
# minus J4; weight = B7; rows = data rows from row 4 to the last non-empty J cell.
HAND_CHECKED = {
    # (first VO2, peak VO2, t at peak s, duration s, weight kg, sampling, rows)
    "omnia_de_10s.xlsx": (506.1618208, 2707.7314704, 120.0, 90.0, 71.5,  # N4, N13, J13 0:02:00
                          "averaged 10 s", 10),  # J4 0:00:30 .. J13 0:02:00, B7 71.5
    "omnia_en_10s.xlsx": (713.5135788, 5111.2799843, 1191.0, 1251.0, 85.5,  # N4, N120 0:19:51
                          "averaged 10 s", 126),  # J4 0:00:30 .. J129 0:21:21, B7 85.5
    "quark_ramp_bxb.xlsx": (654.2970821799911, 3915.9017532848484, 901.0, 920.0, None,  # N375
                            "breath-by-breath", 389),  # J4 00:00:00 .. J393 00:15:20; B7 empty;
    # 390 rows, J379 and J380 both 00:15:05: the second is dropped (duplicate-time)
}
FORMATS = {"omnia_de_10s.xlsx": "cosmed-omnia", "omnia_en_10s.xlsx": "cosmed-omnia",
           "quark_ramp_bxb.xlsx": "cosmed-quark"}


@pytest.mark.parametrize("name", list(HAND_CHECKED))
def test_real_cosmed_exports_hand_checked(name):
    first_vo2, peak, peak_t, duration, weight, sampling, rows = HAND_CHECKED[name]
    path = sample(f"cosmed/{name}")
    record = assert_reader_conforms(path, FORMATS[name])
    data, meta = record.data, record.metadata
    assert (meta.format, meta.sampling, meta.weight_kg) == (FORMATS[name], sampling, weight)
    assert len(data) == rows
    assert data["VO2"].iloc[0] == first_vo2
    assert data["VO2"].max() == peak
    assert data.loc[data["VO2"].idxmax(), "t"] == peak_t
    assert record.duration_s == duration


def test_omnia_german_metadata_channels_and_mixed_expired_gases():
    record = cpet_nb.read(sample("cosmed/omnia_de_10s.xlsx"))
    data, meta = record.data, record.metadata
    # B4 Männlich, B5 45, B6 179, E1 11042015 (DDMMYYYY: B8, the birth date, is 13011987),
    # H1 763 (Barometrischer Druck (mmHg)), E6 COSMED Treadmill(Kmh), E7 VO2max_HIGH
    assert (meta.sex, meta.age_years, meta.height_cm, meta.test_date) == ("male", 45.0, 179.0,
                                                                          "2015-04-11")
    assert meta.device == "COSMED Omnia"
    assert meta.extra == {"sheet": "Daten", "ergometer": "COSMED Treadmill(Kmh)",
                          "protocol": "VO2max_HIGH", "barometric_pressure_mmHg": 763.0}
    for private in ("YYY", "XXX", "13011987", "1987"):  # B2 last name, B3 first name, B8 DOB
        assert private not in visible_metadata(meta)
    # AA1/AB1 PeO2/PeCO2 (mixed-expired, mmHg) are the only O2/CO2 pressures: never end-tidal
    assert "PetO2" not in data and "PetCO2" not in data
    why = {f.column: f.message for f in record.findings if f.code == "missing-channel"}
    assert set(why) == {"PetO2", "PetCO2"}
    assert "only PeO2" in why["PetO2"] and "mixed-expired" in why["PetO2"]
    assert "only PeCO2" in why["PetCO2"]
    # U1 HF (bpm) is 0 in U4:U13: not measured
    assert data["HR"].isna().all()
    hr = next(f for f in record.findings if f.code == "device-zero-missing")
    assert hr.column == "HF" and "10 of 10" in hr.message
    # K4 Af 34.9 1/min, L4 VT 0.556 L(btps), M4 VE 19.4 L/min, O4 VCO2 440.9817142 mL/min,
    # AE4 Speed 12 Kmh, AD4 Grade 1 %, AF4 Phase WARMUP; AF7 WARMUP, AF8 EXERCISE
    first = data.iloc[0]
    assert (first.RF, first.VT, first.VE, first.VCO2, first.speed, first.grade) == (
        34.9, 0.556, 19.4, 440.9817142, 12.0, 1.0)
    assert data["phase"].tolist() == ["WARMUP"] * 4 + ["EXERCISE"] * 6
    assert "load" not in data


def test_omnia_english_metadata_and_channels():
    record = cpet_nb.read(sample("cosmed/omnia_en_10s.xlsx"))
    data, meta = record.data, record.metadata
    # B4 Male, B5 64, B6 182, E1 2025-01-23 (text), H1 754
    assert (meta.sex, meta.age_years, meta.height_cm, meta.test_date) == ("male", 64.0, 182.0,
                                                                          "2025-01-23")
    assert meta.extra["barometric_pressure_mmHg"] == 754.0
    for private in ("ANON", "999999", "1900-01-01"):  # B1 ID, B2/B3 names, B8 D.O.B.
        assert private not in visible_metadata(meta)
    assert "PetO2" not in data and "PetCO2" not in data  # only PeO2/PeCO2 (AA, AB)
    # U4 HR 97 bpm, AD4 Power 0 Watt, AD129 340, AF4 REST; no Speed column
    assert (data.HR.iloc[0], data.load.iloc[0], data.load.iloc[-1]) == (97.0, 0.0, 340.0)
    assert set(data["phase"]) == {"REST", "WARMUP", "EXERCISE"}
    assert data["phase"].iloc[0] == "REST" and data["phase"].iloc[-1] == "EXERCISE"
    assert "speed" not in data
    # the Results sheet (AT/RC columns empty) is not read: no thresholds from the device
    assert not any(key.startswith("device_") for key in meta.extra)


def test_quark_channels_and_empty_metadata():
    record = cpet_nb.read(sample("cosmed/quark_ramp_bxb.xlsx"))
    data, meta = record.data, record.metadata
    assert meta.device == "COSMED Quark (PFT Suite)"
    # B4:B7 (Sex:, Age:, Height (cm):, Weight (Kg):) and E2 (Test date:) are empty: missing
    assert (meta.sex, meta.age_years, meta.height_cm, meta.test_date) == (None,) * 4
    # H1 677; H12/H13 LT:/RC: are --:--:-- (not set): no device thresholds
    assert meta.extra == {"sheet": "Sheet1", "barometric_pressure_mmHg": 677.0}
    # AN4 PetO2 91 mmHg, AO4 PetCO2 36 mmHg, X4 HR 93 bpm, K4 Rf 23.2558... b/min,
    # L4 VT 0.80782... l, M4 VE 18.7865... l/min; t '00:00:06' in J5
    first = data.iloc[0]
    assert (first.PetO2, first.PetCO2, first.HR) == (91.0, 36.0, 93.0)
    assert first.RF == pytest.approx(23.25581395348837)
    assert first.VT == pytest.approx(0.8078208452923509)
    assert first.VE == pytest.approx(18.786531285868623)
    assert data["t"].iloc[1] == 6.0
    # Z1 Load1 (Watt) is 0 in every row; AC1 Phase holds numeric codes (all 0): not used
    assert "load" not in data and "phase" not in data
    load = next(f for f in record.findings if f.code == "device-zero-missing")
    assert load.column == "Load1"
    dup = next(f for f in record.findings if f.code == "duplicate-time")
    assert "1 row(s)" in dup.message


# --- small workbooks written by the tests ------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
_CT = "application/vnd.openxmlformats-officedocument.spreadsheetml"


def _column_letters(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell(ref: str, value) -> str:
    if isinstance(value, str):
        return f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def write_xlsx(path: Path, rows: list[list], sheet: str = "Data", sheet_xml: str | None = None
               ) -> Path:
    """A minimal .xlsx (inline strings, no styles); ``None`` cells are left out."""
    body = "".join(
        f'<row r="{r}">'
        + "".join(_cell(f"{_column_letters(c)}{r}", v) for c, v in enumerate(row)
                  if v is not None)
        + "</row>"
        for r, row in enumerate(rows, start=1))
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_CT}.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            f'ContentType="{_CT}.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            f'<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
            f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
            f'<sheet name="{sheet}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{_PKG}"><Relationship Id="rId1" '
            f'Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": sheet_xml if sheet_xml is not None else (
            f'<worksheet xmlns="{_MAIN}"><sheetData>{body}</sheetData></worksheet>'),
    }
    with zipfile.ZipFile(path, "w") as archive:
        for name, xml in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + xml)
    return path


def cosmed_rows(names: list[str], units: list[str], data: list[list],
                labels: list[tuple[str, object]] = (), after: list[list] = ()) -> list[list]:
    """COSMED layout: label/value pairs in A/B (and D/E), names in J1.., units J2.., data J4.."""
    rows = [[None] * 9 + list(names), [None] * 9 + list(units), []]
    rows += [[None] * 9 + list(values) for values in data]
    rows += [[None] * 9 + list(values) for values in after]
    for i, (label, value) in enumerate(labels):
        column = 0 if i < 8 else 3
        while len(rows) <= i % 8:
            rows.append([])
        row = rows[i % 8]
        row.extend([None] * (column + 2 - len(row)))
        row[column], row[column + 1] = label, value
    return rows


NAMES = ["t", "VO2", "VO2", "VCO2", "VE", "HF", "PetO2", "PetCO2", "Speed", "Grade", "Phase",
         "Marker"]
UNITS = ["s", "mL/min/Kg", "L/min", "L/min", "L/min", "bpm", "kPa", "kPa", "Kmh*10", "%", "---",
         "---"]
LABELS = [("ID1", "000123"), ("Nachname", "Muster"), ("Vorname", "Erika"),
          ("Geschlecht", "Weiblich"), ("Alter", 30), ("Größe (cm)", "168"),
          ("Gewicht (kg)", "72,5"), ("Geburtsdatum", 1011990), ("Test-Datum", 1042015)]


def omnia_like(path: Path, **changes) -> Path:
    data = [[30 + 10 * i, 20.0 + i, 1.5 + 0.1 * i, 1.2 + 0.1 * i, 40.0 + i, 0 if i < 2 else 120,
             13.3, 4.8, 60 + 10 * i, 1, phase, None]
            for i, phase in enumerate(["Rest", "Warm Up", "EXERCISE", "exercise", "COOLDOWN"])]
    data[3][3] = "abc"  # VCO2 text: missing, reported
    after = [[], ["Max", 25.0, 2.0, 1.8, 50.0, 180, 14.0, 5.0, 120, 1, None, "VT2"]]
    rows = cosmed_rows(changes.get("names", NAMES), changes.get("units", UNITS),
                       changes.get("data", data), changes.get("labels", LABELS),
                       changes.get("after", after))
    return write_xlsx(path, rows)


def test_written_omnia_units_duplicates_and_rows_after_the_data(tmp_path):
    path = omnia_like(tmp_path / "export")  # no extension: detected by content
    record = assert_reader_conforms(path, "cosmed-omnia")
    data, meta = record.data, record.metadata
    assert data["t"].tolist() == [30.0, 40.0, 50.0, 60.0, 70.0]  # 'Max' row below: not data
    # two columns named VO2: the per-kg one (mL/min/Kg) is skipped by its unit, the absolute
    # one (L/min) is used
    np.testing.assert_allclose(data["VO2"], [1500, 1600, 1700, 1800, 1900])
    assert np.isnan(data["VCO2"].iloc[3]) and data["VCO2"].iloc[0] == pytest.approx(1200)
    assert data["PetO2"].iloc[0] == pytest.approx(13.3 * 760 / 101.325)  # kPa -> 99.8 mmHg
    assert data["PetCO2"].iloc[0] == pytest.approx(4.8 * 760 / 101.325)
    np.testing.assert_allclose(data["speed"], [6.0, 7.0, 8.0, 9.0, 10.0])  # Kmh*10 / 10
    assert data["HR"].isna().tolist() == [True, True, False, False, False]
    assert data["phase"].iloc[:4].tolist() == ["REST", "WARMUP", "EXERCISE", "EXERCISE"]
    assert pd.isna(data["phase"].iloc[4])  # COOLDOWN is not a canonical phase
    assert meta.extra["unmapped_phase_labels"] == ["COOLDOWN"]
    assert (meta.sex, meta.age_years, meta.height_cm, meta.weight_kg) == ("female", 30.0,
                                                                          168.0, 72.5)
    assert meta.test_date == "2015-04-01"  # 1042015: DDMMYYYY with its leading zero lost
    for private in ("Muster", "Erika", "000123", "1990"):
        assert private not in visible_metadata(meta)
    codes = {f.code: f for f in record.findings}
    assert codes["non-numeric"].column == "VCO2" and codes["non-numeric"].row == 4
    assert "'abc'" in codes["non-numeric"].message
    after = codes["malformed-row"]
    assert "1 row(s) below the data" in after.message and "sheet row 10" in after.message
    assert "missing-channel" not in codes  # real PetO2/PetCO2 columns: nothing to say


def test_unaccepted_units_leave_the_channel_missing_with_a_finding(tmp_path):
    units = ["s", "mL/min/Kg", "mL/min/Kg", "L/min", "L/min", "bpm", "%", "kPa", "furlongs",
             "%", "---", "---"]
    record = cpet_nb.read(omnia_like(tmp_path / "units.xlsx", units=units))
    assert "VO2" not in record.data and "speed" not in record.data and "PetO2" not in record.data
    why = {f.column: f.message for f in record.findings if f.code == "missing-channel"}
    assert "'VO2' in 'mL/min/Kg'" in why["VO2"] and "mL/min, L/min" in why["VO2"]
    assert "'Speed' in 'furlongs'" in why["speed"] and "kmh*10" in why["speed"]
    assert "'%'" in why["PetO2"]  # a fraction in %: never read as a pressure


def test_written_quark_clock_numbers_and_thresholds(tmp_path):
    names = ["t", "Rf", "VO2", "VCO2", "PetO2", "HR", "Load1", "Phase"]
    units = ["hh:mm:ss", "b/min", "ml/min", "ml/min", "mmHg", "bpm", "Watt", "---"]
    data = [["00:00:05", 20, 500, 400, 100, 90, 0, 0], [10 / 86400, 21, 510, 410, 101, 91, 25, 0],
            ["00:00:14", 22, 520, 420, 102, 92, 50, 0], ["00:00:14", 23, 530, 430, 103, 93, 75, 0]]
    labels = [("ID code:", "X1"), ("Last name:", "Rossi"), ("First name:", None), ("Sex:", "M"),
              ("Age:", None), ("Height (cm):", None), ("Weight (Kg):", 80), ("Notes:", None),
              ("Test date:", "2020-02-30"), ("LT:", "00:05:00"), ("RC:", "--:--:--")]
    path = write_xlsx(tmp_path / "quark.xlsx", cosmed_rows(names, units, data, labels),
                      sheet="Sheet1")
    record = assert_reader_conforms(path, "cosmed-quark")
    data_, meta = record.data, record.metadata
    # 10/86400 day = 10 s; 00:00:14 twice (the second row is dropped)
    np.testing.assert_allclose(data_["t"], [5.0, 10.0, 14.0])
    assert data_["load"].tolist() == [0.0, 25.0, 50.0]
    assert "phase" not in data_
    assert (meta.sex, meta.weight_kg, meta.age_years, meta.test_date) == ("male", 80.0, None,
                                                                          None)
    assert meta.extra["device_lt_s"] == 300.0 and "device_rc_s" not in meta.extra
    bad_date = next(f for f in record.findings if f.column == "test date")
    assert bad_date.code == "non-numeric" and "'2020-02-30'" in bad_date.message
    assert "Rossi" not in visible_metadata(meta) and "X1" not in visible_metadata(meta)


def test_header_without_data_rows_is_empty(tmp_path):
    path = omnia_like(tmp_path / "empty.xlsx", data=[], after=[])
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == "empty"
    assert "column J (t) is empty" in err.value.finding.message


def test_truncated_sample_is_a_finding(tmp_path):
    path = tmp_path / "truncated.xlsx"
    path.write_bytes(sample("cosmed/omnia_en_10s.xlsx").read_bytes()[:2000])  # cut inside the ZIP
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)  # not a readable workbook: no reader claims it
    assert err.value.finding.code == "unsupported-format"
    assert ("an Excel workbook (.xlsx) whose layout no reader recognises: it cannot be opened"
            in err.value.finding.message)  # a workbook, not "binary content ... 50 4b 03 04"
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path, format="cosmed-omnia")
    assert err.value.finding.code == "unreadable"
    assert "could not open the workbook" in err.value.finding.message
    assert err.value.finding.file == str(path)


def test_workbook_with_a_broken_sheet_is_a_finding(tmp_path):
    path = write_xlsx(tmp_path / "broken.xlsx", [],
                      sheet_xml=f'<worksheet xmlns="{_MAIN}"><sheetData><row r="1"><c r="A1"')
    assert not OMNIA_READER.sniff(path.read_bytes(), path)
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path, format="cosmed-omnia")
    assert err.value.finding.code == "unreadable"
    assert "could not read sheet 'Data'" in err.value.finding.message


def test_other_workbooks_are_not_claimed(tmp_path, ramp_csv):
    other = write_xlsx(tmp_path / "other.xlsx", [["Name", "x"], ["t", "VO2"], [0, 500]])
    for reader in READERS:
        assert not reader.sniff(other.read_bytes(), other)
        assert not reader.sniff(ramp_csv.read_bytes(), ramp_csv)
    # a COSMED-looking sheet without VO2 in row 1 is not claimed either
    no_vo2 = omnia_like(tmp_path / "no_vo2.xlsx", names=[n.replace("VO2", "X") for n in NAMES])
    assert not OMNIA_READER.sniff(no_vo2.read_bytes(), no_vo2)


def test_two_absolute_columns_of_one_name_use_the_first(tmp_path):
    units = ["s", "mL/min", *UNITS[2:]]  # both VO2 columns absolute: the first one is used
    record = cpet_nb.read(omnia_like(tmp_path / "twice.xlsx", units=units))
    np.testing.assert_allclose(record.data["VO2"], [20, 21, 22, 23, 24])
    other = next(f for f in record.findings if f.code == "unknown-column")
    assert other.column == "VO2" and "'L/min'" in other.message and "'mL/min'" in other.message


@pytest.mark.parametrize("name", ["omnia_en_10s.xlsx", "omnia_de_10s.xlsx",
                                  "quark_ramp_bxb.xlsx"])
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_csv_export_of_the_same_grid_reads_like_the_workbook(tmp_path, name, delimiter):
    """COSMED's CSV export writes the Data sheet's grid; ';' files use decimal commas."""
    workbook = sample(f"cosmed/{name}")
    grid = pd.read_excel(workbook, header=None, engine="calamine", dtype=object)
    if delimiter == ";":
        grid = grid.map(lambda v: f"{v}".replace(".", ",") if isinstance(v, float)
                        and not math.isnan(v) else v)
    path = tmp_path / "export.csv"
    grid.to_csv(path, sep=delimiter, header=False, index=False)
    from_csv, from_xlsx = cpet_nb.read(path), cpet_nb.read(workbook)
    assert from_csv.metadata.format == "cosmed-csv"
    pd.testing.assert_frame_equal(from_csv.data, from_xlsx.data)
    for field in ("weight_kg", "height_cm", "age_years", "sex", "test_date"):
        assert getattr(from_csv.metadata, field) == getattr(from_xlsx.metadata, field)
    assert {f.code for f in from_csv.findings} == {f.code for f in from_xlsx.findings}


def test_workbook_no_reader_recognises_is_described_as_one(tmp_path):
    other = write_xlsx(tmp_path / "other.xlsx", [["Name", "x"], [], ["t", "VO2"], [0, 500]])
    with pytest.raises(CPETError) as err:
        cpet_nb.read(other)
    finding = err.value.finding
    assert finding.code == "unsupported-format"
    assert ("an Excel workbook (.xlsx) whose layout no reader recognises: its first sheet "
            "starts A1 'Name', B1 'x', A3 't', B3 'VO2', A4 0, B4 500") in finding.message
    assert "binary content" not in finding.message
    # a grid from A1 with a units row but without COSMED's Rf/Af is not taken for COSMED
    plain = write_xlsx(tmp_path / "plain.xlsx", [["t", "VO2", "RR"], ["s", "mL/min", "1/min"],
                                                 [0, 500, 20]])
    with pytest.raises(CPETError) as err:
        cpet_nb.read(plain)
    assert "starts A1 't', B1 'VO2', C1 'RR', A2 's'" in err.value.finding.message


# --- the parameter grid alone (K5 / Omnia data-only exports), from the real workbooks ----

def grid_alone(name: str) -> pd.DataFrame:
    """The real workbook's parameter grid (column J onward) without the label/value pairs."""
    grid = pd.read_excel(sample(f"cosmed/{name}"), header=None, engine="calamine", dtype=object)
    return grid.iloc[:, 9:]


def write_grid_xlsx(grid: pd.DataFrame, path: Path) -> Path:
    """``grid`` from cell A1 of a workbook written by openpyxl (times stay Excel times)."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    for row in grid.itertuples(index=False):
        sheet.append([None if isinstance(v, float) and math.isnan(v) else v for v in row])
    book.save(path)
    return path


@pytest.mark.parametrize("name", ["omnia_en_10s.xlsx", "omnia_de_10s.xlsx",
                                  "quark_ramp_bxb.xlsx"])
def test_workbook_of_the_grid_alone_reads_like_the_standard_layout(tmp_path, name):
    path = write_grid_xlsx(grid_alone(name), tmp_path / "data only.xlsx")
    assert detect_format(path).name == "cosmed-grid"
    record, standard = cpet_nb.read(path), cpet_nb.read(sample(f"cosmed/{name}"))
    assert_reader_conforms(path)
    pd.testing.assert_frame_equal(record.data, standard.data)
    assert record.metadata.sampling == standard.metadata.sampling
    meta = record.metadata
    assert (meta.device, meta.weight_kg, meta.age_years, meta.sex) == ("COSMED", None, None,
                                                                        None)
    assert {f.code for f in record.findings} == {f.code for f in standard.findings}


@pytest.mark.parametrize("name", ["omnia_en_10s.xlsx", "quark_ramp_bxb.xlsx"])
@pytest.mark.parametrize("delimiter", [",", ";"])
def test_k5_csv_with_a_units_row_under_the_labels(tmp_path, name, delimiter):
    grid = grid_alone(name)
    if delimiter == ";":
        grid = grid.map(lambda v: f"{v}".replace(".", ",") if isinstance(v, float)
                        and not math.isnan(v) else v)
    path = tmp_path / "k5.csv"
    grid.to_csv(path, sep=delimiter, header=False, index=False)
    assert path.read_text().splitlines()[1].split(delimiter)[:3] in (
        ["s", "1/min", "L(btps)"], ["hh:mm:ss", "b/min", "l"])  # the units row
    record = cpet_nb.read(path)
    assert record.metadata.format == "cosmed-csv"
    pd.testing.assert_frame_equal(record.data, cpet_nb.read(sample(f"cosmed/{name}")).data)
    assert record.metadata.weight_kg is None  # no label/value pairs: nothing is made up
