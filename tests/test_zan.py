"""ZAN raw export reader: real samples (skipped without them) and small files written here."""

import math
from pathlib import Path

import numpy as np
import pytest
from samples import SAMPLES, sample, visible_metadata

import cpet_nb
import cpet_nb.io.participants
from cpet_nb.findings import CPETError
from cpet_nb.io import detect_format
from cpet_nb.io.zan import READER
from cpet_nb.testing import assert_reader_conforms

ZAN = SAMPLES / "zan"


# Checked by hand against the raw files (grep '^B<n>=' and the [person] lines):
# first VO2 = 8th value of B1 / 1000 L/min (x 1000 -> mL/min); peak = largest 8th value over
# all B rows; duration = (Zeit of the last row - Zeit of B1) / 1000 s; weight = gewicht.
HAND_CHECKED = {
    # file: (first VO2, peak breath VO2, its t (s), duration (s), weight, height, sex, breaths)
    "zan_ramp": (536.0, 5594.0, 828.263, 852.998, 66.0, 180.0, "male", 607),  # B1, B579, B607
    "ramptests/01": (286.0, 3585.0, 460.780, 572.544, 60.0, 164.0, "female", 371),  # B263
    "ramptests/09": (415.0, 3409.0, 558.867, 567.494, 49.0, 160.0, "female", 328),  # B321
    "ramptests/04": (math.nan, 5471.0, 713.896, 792.286, 78.0, 189.0, "male", 504),  # B430
}


@pytest.mark.parametrize("name", list(HAND_CHECKED))
def test_real_zan_exports_hand_checked(name):
    first_vo2, peak, peak_t, duration, weight, height, sex, breaths = HAND_CHECKED[name]
    record = assert_reader_conforms(sample(f"zan/{name}"))
    meta, data = record.metadata, record.data
    assert (meta.format, meta.sampling, meta.device) == ("zan", "breath-by-breath", "ZAN")
    assert (meta.weight_kg, meta.height_cm, meta.sex) == (weight, height, sex)
    assert meta.age_years is None and meta.test_date is None  # not in the file: stays missing
    assert len(data) == breaths
    assert record.duration_s == pytest.approx(duration, abs=1e-9)
    np.testing.assert_equal(data["VO2"].iloc[0], first_vo2)
    assert data["VO2"].max() == peak
    assert data.loc[data["VO2"].idxmax(), "t"] == pytest.approx(peak_t)
    assert data["HR"].isna().all()  # HR column all 0 in the file: not measured
    hr = next(f for f in record.findings if f.code == "device-zero-missing" and f.column == "HR")
    assert f"{breaths} of {breaths}" in hr.message
    # no barometric pressure in these files: PetO2/PetCO2 stay missing, and a finding says why
    assert "PetO2" not in data and "PetCO2" not in data
    why = [f for f in record.findings if f.code == "missing-channel"]
    assert {f.column for f in why} == {"PetO2", "PetCO2"}
    assert all("no barometric pressure" in f.message for f in why)


def test_zan_ramp_first_breath_and_channels():
    record = cpet_nb.read(sample("zan/zan_ramp"))
    # B1=1,326,0,730,1570,687,1144,536,523,... : Zeit 326 ms, Last 0 W, Vex 730 mL,
    # tex 1570 ms, Vin, tin 1144 ms, VO2 536, VCO2 523 (L/min x 1000)
    first = record.data.iloc[0]
    assert (first.t, first.VO2, first.VCO2, first.VT, first.load) == (0.326, 536.0, 523.0,
                                                                      0.730, 0.0)
    assert first.RF == pytest.approx(60 / (1.570 + 1.144))  # 22.1 /min
    assert first.VE == pytest.approx(0.730 * 60 / (1.570 + 1.144))  # 16.1 L/min
    # Geschw. 22500 / 1000 and Steig. 10 / 10 in the last row; the speed column has values
    last = record.data.iloc[-1]
    assert (last.speed, last.grade, last.load) == (22.5, 1.0, 333.0)
    # [Start] Rest=0, Warmup=59, Load=181, Recovery=853
    assert record.data["phase"].iloc[0] == "REST"
    assert record.data.loc[record.data.t.between(59, 181), "phase"].eq("WARMUP").all()
    assert record.data.loc[record.data.t.between(181, 853, inclusive="left"),
                           "phase"].eq("EXERCISE").all()
    assert last.phase == "RECOVERY"  # 853.324 s
    assert record.metadata.extra["ergometer_type"] == "202"
    for private in ("Nolte", "Simon", "1998", "000142466458"):  # name, birth date, ID
        assert private not in visible_metadata(record.metadata)


def test_start_up_zeros_in_vo2_become_missing():
    # ramptests/04: B1-B3 store VO2 0 (and VCO2 0, 35, 0; FO2et 0 in B3); B4 stores 3, B5 445
    record = cpet_nb.read(sample("zan/ramptests/04"))
    assert record.data["VO2"].iloc[:3].isna().all()
    assert record.data["VO2"].iloc[3:5].tolist() == [3.0, 445.0]
    zeros = {f.column: f.message for f in record.findings if f.code == "device-zero-missing"}
    assert "3 of 504" in zeros["VO2"] and "2 of 504" in zeros["VCO2"]
    assert "1 of 504" in zeros["FO2et"]


def test_zan_ramp_is_analysed_without_thresholds():
    result = cpet_nb.analyze(sample("zan/zan_ramp"))
    assert result.status in {"ok", "warning"}
    assert 4000 < result.vo2peak_ml_min < 6000  # 30 s average; peak breath 5594 mL/min
    # the model needs PetO2/PetCO2, which need the barometric pressure this file lacks
    assert result.vt1 is None and result.vt2 is None
    blocker = [f for f in result.findings if "thresholds unavailable" in f.message]
    assert blocker and "PetO2, PetCO2" in blocker[0].message


# --- small ZAN-like files written by the tests -------------------------------------------

PARAMETERS = [  # (id, scale, name) as in real exports; VLüfter tests the Latin-1 decoding
    (340, 1000, "Zeit"), (339, 1, "Last"), (300, 1000, "Vex"), (301, 1000, "tex"),
    (311, 1000, "Vin"), (308, 1000, "tin"), (305, 1000, "VO2"), (306, 1000, "VCO2"),
    (310, 1, "HR"), (342, 100, "FO2et"), (343, 100, "FCO2et"), (354, 1000, "Geschw."),
    (355, 10, "Steig."), (1158, 1000, "VLüfter"),
]


def zan_bytes(rows: list[list[int]], *, extra: str = "", scales: dict[str, int] | None = None,
              truncate_at: int | None = None) -> bytes:
    """A ZAN-like export (CRLF, Latin-1) with ``rows`` of raw values (one per parameter)."""
    scales = scales or {}
    lines = ["[person]", "idnr=000000000001", "name=Muster", "vorname=Jörg", "geschlecht=W",
             "geburtstag=01.02.1990", "groesse=170", "gewicht=60 ", "", "[parameter]",
             f"count={len(PARAMETERS) + 2}", "AppTotRaum=0.060"]
    lines += [f"P={pid},{scales.get(name, scale):.6f},{name}" for pid, scale, name in PARAMETERS]
    lines += ["", "[Data]"]
    lines += [f"B{n}=1," + ",".join(map(str, row)) for n, row in enumerate(rows, start=1)]
    lines += ["", "[Start]", "BeginRest=10:00:00", "Rest=0", "Warmup=2", "Load=4",
              "Recovery=100", "", "[Ergometer]", "Type=202", extra]
    data = "\r\n".join(lines).encode("latin-1")
    return data[:truncate_at] if truncate_at is not None else data


def breath(t_ms: int, vo2: int, fo2et: int = 1550, fco2et: int = 480) -> list[int]:
    """Raw values: Zeit, Last, Vex, tex, Vin, tin, VO2, VCO2, HR, FO2et, FCO2et, v, grade, fan."""
    return [t_ms, 50, 1000, 1200, 950, 800, vo2, vo2 - 50, 0, fo2et, fco2et, 0, 0, 0]


ROWS = [breath(1000 + 2000 * i, 500 + 10 * i) for i in range(6)]


def test_written_zan_file_with_barometric_pressure(tmp_path):
    path = tmp_path / "EXED001"  # no extension: detected by content
    # made-up location: no real export seen so far stores PB; the reader accepts these keys
    path.write_bytes(zan_bytes(ROWS, extra="\r\n[Umgebung]\r\nLuftdruck=1013 hPa\r\n"))
    record = assert_reader_conforms(path, "zan")
    data, meta = record.data, record.metadata
    assert (meta.sex, meta.height_cm, meta.weight_kg) == ("female", 170.0, 60.0)
    assert (data.t.iloc[0], data.VO2.iloc[0], data.VCO2.iloc[0]) == (1.0, 500.0, 450.0)
    assert data.VE.iloc[0] == pytest.approx(1.0 * 60 / 2.0)  # Vex 1 L over tin + tex = 2 s
    assert data.RF.iloc[0] == pytest.approx(30.0)
    pb_mmhg = 1013 * 0.750062  # 759.8 mmHg
    assert data.PetO2.iloc[0] == pytest.approx(0.1550 * (pb_mmhg - 47))  # 110.5 mmHg
    assert data.PetCO2.iloc[0] == pytest.approx(0.0480 * (pb_mmhg - 47))  # 34.2 mmHg
    derived = {f.column: f.message for f in record.findings if f.code == "derived-channel"}
    assert "759.8 mmHg from the file ([Umgebung] Luftdruck=1013 hPa)" in derived["PetO2"]
    assert "FetO2" in derived["PetO2"] and "FetCO2" in derived["PetCO2"]
    # FO2et 15.5 % is an end-tidal O2 fraction itself (not FiO2 - FetO2): taken as it is
    assert derived["FetO2"].startswith("FetO2 (%) = FO2et, read as percent")
    assert "FCO2et" in derived["FetCO2"]
    assert not any(f.code == "missing-channel" for f in record.findings)
    assert data.HR.isna().all()  # all 0 in the file
    assert "speed" not in data and "grade" not in data  # all 0: dropped
    assert data.phase.tolist() == ["REST", "WARMUP", "EXERCISE", "EXERCISE", "EXERCISE",
                                   "EXERCISE"]


def test_end_tidal_fractions_stored_as_fractions(tmp_path):
    path = tmp_path / "fractions"
    path.write_bytes(zan_bytes(ROWS, scales={"FO2et": 10000, "FCO2et": 10000},
                               extra="[Umgebung]\r\nPB=700 mmHg"))
    record = cpet_nb.read(path)
    assert record.data.PetO2.iloc[0] == pytest.approx(0.1550 * (700 - 47))  # 1550 / 10000
    derived = next(f for f in record.findings if f.column == "FetO2")
    assert "read as a fraction" in derived.message


def test_pressure_without_unit_is_not_used(tmp_path):
    path = tmp_path / "no_unit"
    path.write_bytes(zan_bytes(ROWS, extra="[Umgebung]\r\nLuftdruck=1013"))
    record = cpet_nb.read(path)
    assert "PetO2" not in record.data
    why = next(f for f in record.findings if f.code == "missing-channel")
    assert "no unit" in why.message and "Luftdruck" in why.message


def test_truncated_zan_file_is_a_finding(tmp_path):
    complete = zan_bytes(ROWS)
    path = tmp_path / "truncated"
    path.write_bytes(complete[: complete.index(b"[Data]")])  # cut before the breath data
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == "unreadable"
    assert "no [Data] section" in err.value.finding.message
    assert err.value.finding.file == str(path)


def test_row_cut_mid_way_is_skipped_with_a_finding(tmp_path):
    complete = zan_bytes(ROWS)
    path = tmp_path / "cut_row"
    path.write_bytes(complete[: complete.index(b"B6=") + 12])  # last row: 'B6=1,11000,5'
    record = assert_reader_conforms(path)
    assert len(record.data) == 5
    cut = next(f for f in record.findings if f.code == "malformed-row")
    assert cut.row == 6 and "the first has 3" in cut.message


@pytest.mark.parametrize("damage, code, words", [
    (lambda b: b.replace(b"P=306,1000.000000,VCO2", b"P=306,x,VCO2"), "unreadable",
     "positive scale"),
    (lambda b: b.replace(b"Zeit", b"Time"), "unreadable", "no Zeit"),
    (lambda b: b[: b.index(b"B1=")], "empty", "no B<n>= breath rows"),
    (lambda b: b.replace(b",0\r\n", b"\r\n"), "unreadable", "15 were expected"),
])
def test_damaged_zan_files_get_specific_findings(tmp_path, damage, code, words):
    path = tmp_path / "damaged"
    path.write_bytes(damage(zan_bytes(ROWS)))
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == code and words in err.value.finding.message


def test_text_cell_is_missing_not_zero(tmp_path):
    path = tmp_path / "text_cell"
    path.write_bytes(zan_bytes(ROWS).replace(b"B3=1,5000,50,1000,1200,950,800,520",
                                             b"B3=1,5000,50,1000,1200,950,800,abc"))
    record = cpet_nb.read(path)
    assert np.isnan(record.data.VO2.iloc[2])
    finding = next(f for f in record.findings if f.code == "non-numeric")
    assert (finding.column, finding.row) == ("VO2", 3) and "'abc'" in finding.message


def test_zan_sniff_does_not_claim_other_files(ramp_csv):
    assert not READER.sniff(ramp_csv.read_bytes(), ramp_csv)
    assert not READER.sniff(b"[parameter]\nfoo=1\n", Path("x.ini"))
    assert detect_format(ramp_csv).name == "canonical-csv"


# --- end-tidal pressures from a barometric pressure the user gives ------------------------

def test_real_fractions_are_kept_and_fo2et_is_the_o2_difference():
    record = cpet_nb.read(sample("zan/zan_ramp"))
    # B1: FO2et 522 / 100 = 5.22 %, FCO2et 512 / 100 = 5.12 %
    first = record.data.iloc[0]
    assert first.FetO2 == pytest.approx(20.93 - 5.22) and first.FetCO2 == pytest.approx(5.12)
    # FO2et 3.7-8.1 % over the test: an end-tidal O2 fraction would be 12-18 %; FCO2et /
    # FO2et equals VCO2 / VO2 breath by breath, as FiO2 - FetO2 does
    ratio = (record.data.FetCO2 / (20.93 - record.data.FetO2)) / (record.data.VCO2
                                                                 / record.data.VO2)
    assert ratio.median() == pytest.approx(1.0, abs=0.01)
    how = next(f for f in record.findings if f.column == "FetO2")
    assert how.code == "derived-channel" and "inspired-minus-end-tidal" in how.message
    assert "PetO2" not in record.data  # no pressure yet


def test_lab_pressure_from_settings_lets_the_model_run_on_a_real_zan_export():
    settings = cpet_nb.Settings(barometric_pressure_mmhg=713.0)
    result = cpet_nb.analyze(sample("zan/zan_ramp"), settings=settings)
    assert result.vt1 is not None and result.vt2 is not None
    assert result.vt1.time_s < result.vt2.time_s
    derived = {f.column: f.message for f in result.findings if f.code == "derived-channel"}
    for channel in ("PetO2", "PetCO2"):
        assert "PB = 713.0 mmHg from Settings.barometric_pressure_mmhg" in derived[channel]
    assert not [f for f in result.findings if f.code == "missing-channel"]  # superseded
    assert not any("thresholds unavailable" in f.message for f in result.findings)
    # at VT1 the derived PetO2 is physiological: (20.93 - FO2et) % x (713 - 47) mmHg
    assert 80 < result.vt1.peto2_mmhg < 120 and 30 < result.vt1.petco2_mmhg < 50
    assert result.metadata.extra["barometric_pressure_mmHg"] == 713.0


def test_written_zan_file_without_pressure_gets_it_from_settings(tmp_path):
    rows = [breath(1000 + 2000 * i, 500 + 10 * i, fo2et=550, fco2et=530) for i in range(6)]
    path = tmp_path / "EXED002"
    path.write_bytes(zan_bytes(rows))
    record = assert_reader_conforms(path)
    assert record.data.FetO2.iloc[0] == pytest.approx(20.93 - 5.5)
    from cpet_nb.io.end_tidal import derive_end_tidal_pressures

    derived = derive_end_tidal_pressures(record, 740.0, "a test")
    assert derived.data.PetO2.iloc[0] == pytest.approx((20.93 - 5.5) / 100 * (740 - 47))
    assert derived.data.PetCO2.iloc[0] == pytest.approx(5.3 / 100 * (740 - 47))
    assert record.findings == cpet_nb.read(path).findings  # the input is not changed
    assert {f.column for f in derived.findings if f.code == "missing-channel"} == set()


def test_participants_pressure_comes_before_the_settings(tmp_path):
    table = tmp_path / "participants.csv"
    text = sample("zan/ramptests/participants.csv").read_text()
    lines = text.splitlines()
    lines[0] += ",PB (hPa)"
    lines[1:] = [line + ",950" for line in lines[1:]]  # 950 hPa = 712.6 mmHg
    table.write_text("\n".join(lines) + "\n")
    subjects = cpet_nb.io.participants.SubjectTable.from_csv(table)
    result = cpet_nb.analyze(sample("zan/ramptests/01"), subjects=subjects,
                             settings=cpet_nb.Settings(barometric_pressure_mmhg=760.0))
    derived = next(f for f in result.findings if f.column == "PetO2"
                   and f.code == "derived-channel")
    assert "PB = 712.6 mmHg from participants table participants.csv row 1" in derived.message
    applied = next(f for f in result.findings if f.code == "subject-table-applied")
    assert "barometric pressure 712.6 mmHg (used for PetO2, PetCO2)" in applied.message
    assert result.metadata.extra["barometric_pressure_source"].startswith("participants")
