"""Parvo Medics TrueOne 2400 readers: real samples (skipped without them) and files written here."""

import io
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pytest
from samples import SAMPLES, sample, visible_metadata

import cpet_nb
from cpet_nb.findings import CPETError
from cpet_nb.io import detect_format
from cpet_nb.io.parvo import READERS
from cpet_nb.testing import assert_reader_conforms

CSV_READER, XLSX_READER = READERS
PARVO = SAMPLES / "parvo"


# --- real samples, checked by hand against the raw files ----------------------------------

def test_real_parvo_csv_hand_checked():
    record = assert_reader_conforms(sample("parvo/parvo_bxb.CSV"))
    data, meta = record.data, record.metadata
    assert (meta.format, meta.device, meta.sampling) == (
        "parvo-csv", "Parvo Medics TrueOne 2400", "breath-by-breath")
    # lines 30-1085 are data (Breath# 1-1056); line 1086 is blank, 1091 "Events", 1119 ^Z
    assert len(data) == 1056
    # line 30: 0.082433 min, HR 0, VO2 0.343089 L/min, VCO2 0.356087, RR 12.130995,
    # Vt 1.022282, VE (STPD) 10.179652; line 19: "STPD to BTPS", 1.218243
    first = data.iloc[0]
    assert first.t == pytest.approx(0.082433 * 60)  # 4.94598 s
    assert (first.VO2, first.VCO2) == pytest.approx((343.089, 356.087))
    assert (first.RF, first.VT) == pytest.approx((12.130995, 1.022282))
    assert first.VE == pytest.approx(10.179652 * 1.218243)  # 12.401 L/min BTPS
    assert first.VE == pytest.approx(first.VT * first.RF, rel=1e-4)  # Vt (BTPS) x RR agrees
    # line 736: the largest VO2, 5.173391 L/min at 35.217236 min ("Max VO2" on line 1088)
    assert data["VO2"].max() == pytest.approx(5173.391)
    assert data.loc[data["VO2"].idxmax(), "t"] == pytest.approx(35.217236 * 60)
    # line 1085, the last row: 49.037437 min
    assert record.duration_s == pytest.approx((49.037437 - 0.082433) * 60)  # 2937.30024 s
    # lines 30-37: HR 0.000000 (not measured) -> missing
    assert data["HR"].iloc[:8].isna().all() and data["HR"].iloc[8] == 107.0
    hr = next(f for f in record.findings if f.code == "device-zero-missing")
    assert hr.column == "HR" and "8 of 1056" in hr.message
    # no end-tidal columns at all (FEO2/FECO2 are mixed-expired fractions)
    assert "PetO2" not in data and "PetCO2" not in data
    ve = next(f for f in record.findings if f.code == "derived-channel")
    assert ve.column == "VE" and "1.218243" in ve.message
    # line 8: 156.199997 lb and 71.000000 kg (kg taken); 176.000000 cm; line 7: Age 0, Sex M
    assert (meta.weight_kg, meta.height_cm, meta.sex) == (71.0, 176.0, "male")
    assert meta.age_years is None  # 0 in a template: not an age
    assert any(f.code == "non-numeric" and f.column == "Age" for f in record.findings)
    assert meta.test_date == "2025-10-23"  # line 3: 2025, "/", 10, "/", 23, 10, ":", 50, 5
    assert meta.extra["test_time"] == "10:50:05"
    assert meta.extra["barometric_pressure_mmHg"] == 755.4  # line 15: 755.400024 mmHg
    # lines 1092-1114: 23 events, times in decimal minutes
    events = meta.extra["events"]
    assert len(events) == 23
    assert events[0] == (240.0, "Start Exercise") and events[-1] == (2820.0, "Cadence 95")
    assert "TW02" not in visible_metadata(meta)  # line 6: the name is never read


def test_real_parvo_xlsx_hand_checked():
    record = assert_reader_conforms(sample("parvo/parvo_excel.xlsx"))
    data, meta = record.data, record.metadata
    assert (meta.format, meta.device, meta.sampling) == (
        "parvo-xlsx", "Parvo Medics TrueOne 2400", "averaged 30 s")
    assert len(data) == 55  # rows 30-84; row 85 is blank, A87 "Max VO2", A93 "Events"
    # row 30: A ' 0:31', C (VO2 STPD L/min) 0.3015383183956146, I (VE BTPS) 12.4567289352417,
    # J (VE STPD) 10.281448340095169, O (HR) 72
    first = data.iloc[0]
    assert first.t == 31.0
    assert first.VO2 == pytest.approx(301.5383183956146)
    assert first.VE == pytest.approx(12.4567289352417)  # the BTPS VE, not J's STPD one
    assert first.HR == 72.0
    # C83 2.566201686859131 at A83 '27:00' is the largest VO2 (= B87, "Max VO2")
    assert data["VO2"].max() == pytest.approx(2566.201686859131)
    assert data.loc[data["VO2"].idxmax(), "t"] == 27 * 60
    assert record.duration_s == 27 * 60 + 30 - 31  # A84 '27:30' - A30 ' 0:31' = 1619 s
    # R 'PetCO2' equals N 'FECO2' % x PB (F15 759.3 mmHg): mixed-expired, not end-tidal
    assert "PetO2" not in data and "PetCO2" not in data
    dropped = next(f for f in record.findings if f.code == "missing-channel")
    assert dropped.column == "PetCO2" and "mixed-expired" in dropped.message
    # row 8: G 187.77000427246094 lb, I 85.3499984741211 kg, D 169.39999389648438 cm;
    # row 7: B 53 yrs, E 'F'; row 3: 2024 / 3 / 5 14:34:00
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex) == (
        85.35, 169.4, 53.0, "female")
    assert meta.test_date == "2024-03-05"
    assert meta.extra["stpd_to_btps"] == 1.211573  # B19 1.2115733623504639
    assert meta.extra["events"] == [(510.39, "Warm Up"), (570.39, "Start Exercise")]  # A94/A95
    assert "BIKE_EX" not in visible_metadata(meta)  # B6 (name) and the sheet name are never read


# --- small TrueOne-like files written by the tests ----------------------------------------

#: (header line 1, name, gas condition or name continuation, unit), as in parvo_bxb.CSV
CSV_HEADER = [
    ("", "TIME", "", "min"), ("", "HR", "", "bpm"), (".", "VO2/kg", "STPD", "ml/kg/m"),
    (".", "VO2", "STPD", "L/min"), (".", "VCO2", "STPD", "L/min"), ("", "RR", "", "BPM"),
    ("", "Vt", "BTPS", "L"), (".", "VE", "STPD", "L/min"), ("", "VE/", "VO2", "BT/ST"),
    ("", "FECO2", "", "%"),
]
#: As in parvo_excel.xlsx: m:ss time, two VE columns, PetCO2.
XLSX_HEADER = [
    ("", "TIME", "", "min"), ("", "WorkR", "", "W"), (".", "VO2", "STPD", "L/min"),
    (".", "VCO2", "STPD", "L/min"), (".", "VE", "BTPS", "L/min"), ("", "VE", "STPD", "L/min"),
    ("", "FECO2", "", "%"), ("", "HR", "", "bpm"), ("", "PetCO2", "", "mmHg"),
]
PB_MMHG = 750.0


def preamble(weight=(154.3, "lb", 70.0, "kg"), stpd_to_btps=1.2) -> list[list]:
    return [
        ["Test Lab", "", "(20190902T)"], ["Exercise Lab"],
        ["*** DOE ***", 2024, "/", 2, "/", 29, 9, ":", 5, 30], [],
        ["Patient Information"], ["Name", "Doe, Jane", "File number", "4711", "Doctor", "Who"],
        ["Age", 40, "yrs", "Sex", "F"], ["Height", 65.0, "in", 165.1, "cm", "Weight", *weight],
        ["Tech", ""], [], ["Test Protocol"], ["Test degree", "Maximal"],
        ["Exercise Device", "Bike"], [],
        ["Test Environment", "Insp. temp.", 22.0, "deg C", "Baro. pressure", PB_MMHG, "mmHg"],
        ["STPD to BTPS", stpd_to_btps, "O2 Gain", 0.0001], [],
        ["Base Values for Sampling"], ["Base O2", 20.93, "%"], [],
    ]


def table(data_rows, header=CSV_HEADER, events=((0.1, "Start Exercise"),), **kwargs):
    """All cells of a TrueOne export, one list per line."""
    rows = [*preamble(**kwargs), ["=========="]]
    rows += [[column[part] for column in header] for part in range(4)]
    rows += [["----------"], *data_rows, [], [], ["Max VO2", 1.0, "L/min"], [], ["Events"]]
    rows += [[*event] for event in events]
    return rows + [[], ["Summary"], [""]]


def csv_rows(n: int = 6) -> list[list]:
    """TIME (min), HR, VO2/kg, VO2, VCO2, RR, Vt, VE STPD, VE/VO2, FECO2; HR 0 at first."""
    return [[(i + 1) / 20, 0.0 if i < 2 else 120.0, 8.0, 0.5 + 0.1 * i, 0.45 + 0.1 * i, 20.0,
             1.0, 16.0 + i, 30.0, 3.5] for i in range(n)]


def csv_bytes(rows: list[list]) -> bytes:
    """The TrueOne CSV layout: quoted text, ', ' between cells, LF, a Ctrl-Z at the end."""
    def cell(value):
        return f'"{value}"' if isinstance(value, str) else (
            f"{value:f}" if isinstance(value, float) else str(value))
    return ("\n".join(", ".join(cell(v) for v in row) for row in rows) + "\n\x1a").encode()


def xlsx_rows(petco2_end_tidal: bool = True, n: int = 6) -> list[list]:
    """TIME (m:ss), WorkR, VO2, VCO2, VE BTPS, VE STPD, FECO2, HR, PetCO2 (30 s averages)."""
    rows = []
    for i in range(n):
        seconds = 30 * (i + 1)
        feco2 = 3.0 + 0.1 * i
        petco2 = 38.0 if petco2_end_tidal else feco2 / 100 * PB_MMHG
        rows.append([f"{seconds // 60:2d}:{seconds % 60:02d}", 20.0 * i, 0.8 + 0.1 * i,
                     0.7 + 0.1 * i, 24.0 + i, (24.0 + i) / 1.2, feco2, 100.0 + i, petco2])
    return rows


def xlsx_bytes(rows: list[list], sheet_name: str = "Doe_Jane") -> bytes:
    """A minimal .xlsx (inline strings) with ``rows`` from A1 down; [] is a blank row."""
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    body = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(65 + c)}{r}"
            if isinstance(value, str):
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">'
                             f"{escape(value)}</t></is></c>")
            else:
                cells.append(f'<c r="{ref}"><v>{value!r}</v></c>')
        if cells:
            body.append(f'<row r="{r}">{"".join(cells)}</row>')
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/'
            'vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"),
        "xl/workbook.xml": (
            f'<workbook {ns} xmlns:r="{rel}"><sheets>'
            f'<sheet name="{sheet_name}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/>'
            "</Relationships>"),
        "xl/worksheets/sheet1.xml": f'<worksheet {ns}><sheetData>{"".join(body)}</sheetData>'
                                    "</worksheet>",
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                             + xml)
    return buffer.getvalue()


def test_written_csv_is_read_by_content(tmp_path):
    path = tmp_path / "export.dat"  # not .csv: detected by content
    path.write_bytes(csv_bytes(table(csv_rows())))
    record = assert_reader_conforms(path, "parvo-csv")
    data, meta = record.data, record.metadata
    np.testing.assert_allclose(data.t, [3, 6, 9, 12, 15, 18])  # 0.05 min steps
    np.testing.assert_allclose(data.VO2, [500, 600, 700, 800, 900, 1000])
    np.testing.assert_allclose(data.VE, np.arange(16.0, 22.0) * 1.2)  # STPD x factor
    assert data.HR.iloc[:2].isna().all() and data.HR.iloc[2] == 120.0
    assert "PetCO2" not in data
    assert pd.isna(data.phase.iloc[0])  # 3 s, before 'Start Exercise' at 0.1 min
    assert data.phase.iloc[1:].eq("EXERCISE").all()
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex) == (70.0, 165.1, 40.0,
                                                                          "female")
    assert (meta.test_date, meta.extra["test_time"]) == ("2024-02-29", "09:05:30")
    assert meta.extra["events"] == [(6.0, "Start Exercise")]
    assert (meta.extra["exercise_device"], meta.extra["test_degree"]) == ("Bike", "Maximal")
    for private in ("Doe", "Jane", "4711", "Who", "Test Lab"):
        assert private not in visible_metadata(meta)


@pytest.mark.parametrize("weight, expected", [
    ((154.3, "lb"), 154.3 * 0.45359237),  # pounds only: converted
    ((70.0, "kg", 154.3, "lb"), 70.0),  # either order: kg taken
    ((154.199997, "lb", 69.949997, "kg"), 69.95),  # single-precision values as exported
])
def test_weight_units(tmp_path, weight, expected):
    path = tmp_path / "weight.CSV"
    path.write_bytes(csv_bytes(table(csv_rows(), weight=weight)))
    assert cpet_nb.read(path).metadata.weight_kg == pytest.approx(expected, abs=1e-12)


def test_unknown_weight_unit_is_a_finding(tmp_path):
    path = tmp_path / "stone.CSV"
    path.write_bytes(csv_bytes(table(csv_rows(), weight=(11.0, "st"))))
    record = cpet_nb.read(path)
    assert record.metadata.weight_kg is None
    finding = next(f for f in record.findings if f.column == "Weight")
    assert finding.code == "non-numeric" and "'st'" in finding.message


def test_stpd_ve_without_factor_stays_missing(tmp_path):
    path = tmp_path / "no_factor.CSV"
    path.write_bytes(csv_bytes(table(csv_rows(), stpd_to_btps="")))
    record = cpet_nb.read(path)
    assert "VE" not in record.data
    finding = next(f for f in record.findings if f.code == "missing-channel")
    assert finding.column == "VE STPD" and "STPD to BTPS factor" in finding.message


def test_unknown_unit_is_not_guessed(tmp_path):
    header = [(a, b, c, "mL/s" if b == "VO2" else d) for a, b, c, d in CSV_HEADER]
    path = tmp_path / "unit.CSV"
    path.write_bytes(csv_bytes(table(csv_rows(), header=header)))
    record = cpet_nb.read(path)
    assert "VO2" not in record.data
    finding = next(f for f in record.findings if f.code == "missing-channel")
    assert finding.column == "VO2 STPD" and "'mL/s'" in finding.message


def test_cut_and_text_rows_in_the_data(tmp_path):
    text = csv_bytes(table(csv_rows())).decode()
    text = text.replace("0.150000, 120.000000", "0.150000, abc", 1)  # row 3: HR text
    cut = text[: text.index("0.300000") + 17] + "\x1a"  # row 6 cut in its 2nd cell
    path = tmp_path / "cut.CSV"
    path.write_text(cut)
    record = assert_reader_conforms(path)
    assert len(record.data) == 5
    malformed = next(f for f in record.findings if f.code == "malformed-row")
    assert malformed.row == 6 and "the first has 2" in malformed.message
    text_cell = next(f for f in record.findings if f.code == "non-numeric" and f.column == "HR")
    assert text_cell.row == 3 and "'abc'" in text_cell.message
    assert np.isnan(record.data.HR.iloc[2])  # missing, not 0
    assert "events" not in record.metadata.extra


@pytest.mark.parametrize("cut_after, format, code, words", [
    ('"TIME"', None, "unreadable", "not closed by a '----------' line"),  # inside the header
    ('"=========="', None, "unreadable", "not closed by a '----------' line"),
    ('"----------"', None, "empty", "no data rows"),
    ('"Base Values for Sampling"', None, "unsupported-format", "not a recognised"),
    ('"Base Values for Sampling"', "parvo-csv", "unreadable", "no '==========' line"),
])
def test_truncated_csv_gets_a_specific_finding(tmp_path, cut_after, format, code, words):
    complete = csv_bytes(table(csv_rows()))
    path = tmp_path / "truncated.CSV"
    path.write_bytes(complete[: complete.index(cut_after.encode()) + len(cut_after)])
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path, format=format)
    assert err.value.finding.code == code and words in err.value.finding.message
    assert err.value.finding.file == str(path)


def test_written_xlsx_takes_the_btps_ve(tmp_path):
    path = tmp_path / "export.bin"  # not .xlsx: detected by content
    path.write_bytes(xlsx_bytes(table(xlsx_rows(), header=XLSX_HEADER,
                                      events=((0.75, "Warm Up"),))))
    record = assert_reader_conforms(path, "parvo-xlsx")
    data, meta = record.data, record.metadata
    assert meta.sampling == "averaged 30 s"
    assert data.t.tolist() == [30.0, 60.0, 90.0, 120.0, 150.0, 180.0]  # ' 0:30' ... ' 3:00'
    assert data.VE.tolist() == [24.0, 25.0, 26.0, 27.0, 28.0, 29.0]  # BTPS, not STPD / 1.2
    assert data.PetCO2.tolist() == [38.0] * 6  # a real end-tidal value is kept
    assert data.load.iloc[-1] == 100.0
    assert not any(f.code == "derived-channel" for f in record.findings)
    assert meta.extra["events"] == [(45.0, "Warm Up")]
    assert "Doe" not in visible_metadata(meta)  # neither the name cell nor the sheet name


def test_mixed_expired_petco2_is_dropped(tmp_path):
    path = tmp_path / "mixed.xlsx"
    path.write_bytes(xlsx_bytes(table(xlsx_rows(petco2_end_tidal=False), header=XLSX_HEADER)))
    record = cpet_nb.read(path)
    assert "PetCO2" not in record.data
    finding = next(f for f in record.findings if f.code == "missing-channel")
    assert finding.column == "PetCO2" and "FECO2 x PB (750 mmHg)" in finding.message


def test_corrupted_xlsx_gets_a_specific_finding(tmp_path):
    complete = xlsx_bytes(table(xlsx_rows(), header=XLSX_HEADER))
    broken = tmp_path / "broken.xlsx"  # the ZIP cut short: not a workbook any more
    broken.write_bytes(complete[: len(complete) // 2])
    with pytest.raises(CPETError) as err:
        cpet_nb.read(broken)
    assert err.value.finding.code == "unsupported-format"
    with pytest.raises(CPETError) as err:
        cpet_nb.read(broken, format="parvo-xlsx")
    assert err.value.finding.code == "unreadable"
    assert "could not read sheet" in err.value.finding.message
    assert err.value.finding.file == str(broken)
    # a valid ZIP whose sheet XML is cut mid-way
    damaged = tmp_path / "damaged.xlsx"
    with zipfile.ZipFile(io.BytesIO(complete)) as source, zipfile.ZipFile(damaged, "w") as out:
        for item in source.infolist():
            content = source.read(item)
            out.writestr(item, content[:300] if item.filename.endswith("sheet1.xml") else content)
    assert not XLSX_READER.sniff(damaged.read_bytes()[:65536], damaged)
    with pytest.raises(CPETError) as err:
        XLSX_READER.read(damaged)
    assert err.value.finding.code == "unreadable"
    assert "could not read sheet" in err.value.finding.message


def test_parvo_sniffs_do_not_claim_other_files(tmp_path, ramp_csv):
    for reader in READERS:
        assert not reader.sniff(ramp_csv.read_bytes(), ramp_csv)
    other = tmp_path / "other.xlsx"
    other.write_bytes(xlsx_bytes([["t", "VO2"], [0.0, 500.0], ["==========", 1.0]]))
    assert not XLSX_READER.sniff(other.read_bytes(), other)
    csv_path = tmp_path / "export.CSV"
    csv_path.write_bytes(csv_bytes(table(csv_rows())))
    assert not XLSX_READER.sniff(csv_path.read_bytes(), csv_path)
    assert not CSV_READER.sniff(b"PK\x03\x04" + b"\x00" * 100, Path("x.xlsx"))
    assert detect_format(ramp_csv).name == "canonical-csv"


# --- Start / Stop Exercise events as phases -----------------------------------------------

def test_real_interval_session_takes_its_phases_and_peaks_from_the_events():
    record = cpet_nb.read(sample("parvo/parvo_bxb.CSV"))
    data = record.data
    # Events: Start Exercise at 4, 15, 24, 33, 42 min; Stop Exercise at 9, 20, 29, 38, 47 min
    assert pd.isna(data["phase"].iloc[0])  # before 4 min
    assert data.loc[data.t.between(240, 539), "phase"].eq("EXERCISE").all()
    assert data.loc[data.t.between(540, 899), "phase"].eq("RECOVERY").all()
    assert data.loc[data.t >= 47 * 60, "phase"].eq("RECOVERY").all()
    result = cpet_nb.analyze(record)
    # the 30 s RER average peaks at 1.44 at 10.35 min, in the pause after the first bout;
    # within the bouts it stays below 1.05: no RER criterion from the CO2 washout
    assert result.measures["rerpeak"] < 1.05
    assert result.measures["rer_criterion_met"] == 0.0
    whole = cpet_nb.analyze(record, settings=cpet_nb.Settings(peak_within="test"))
    assert whole.measures["rerpeak"] > 1.4


def interval_rows() -> list[list]:
    """An interval session every 3 s for 12 min: bouts at 1-4 and 7-10 min (VO2 2.0 L/min,
    RER 0.9, HR 150), a pause between them and recovery after (VO2 0.8, RER 1.5, HR 170)."""
    rows = []
    for i in range(240):
        minutes = (i + 1) * 0.05
        bout = 1.0 <= minutes < 4.0 or 7.0 <= minutes < 10.0
        vo2, rer, hr = (2.0, 0.9, 150.0) if bout else (0.8, 1.5, 170.0)
        rows.append([minutes, hr, vo2 / 0.07, vo2, vo2 * rer, 30.0, 2.0, 50.0, 25.0, 4.0])
    return rows


def test_written_interval_session_phases_and_peaks(tmp_path):
    events = ((1.0, "Start Exercise"), (1.0, "UP1 265W"), (4.0, "Stop Exercise"),
              (7.0, "start exercise"), (10.0, "STOP EXERCISE"), (10.0, "RPE (6-20) 15"))
    path = tmp_path / "intervals.CSV"
    path.write_bytes(csv_bytes(table(interval_rows(), events=events)))
    record = assert_reader_conforms(path)
    phases = record.data.set_index("t")["phase"]
    assert phases.loc[60.0:237.0].eq("EXERCISE").all() and pd.isna(phases.loc[57.0])
    assert phases.loc[240.0:417.0].eq("RECOVERY").all()
    assert phases.loc[420.0:597.0].eq("EXERCISE").all() and phases.loc[600.0:].eq(
        "RECOVERY").all()
    measures = cpet_nb.analyze(record).measures
    assert measures["rerpeak"] == pytest.approx(0.9)  # the pauses' 1.5 is not exercise
    assert measures["hrpeak_bpm"] == 150.0
    assert measures["vo2peak_ml_min"] == pytest.approx(2000.0)
