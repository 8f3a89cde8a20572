"""Cortex MetaSoft readers: real samples (skipped without them) and small files written here."""

import io
import zipfile
from xml.sax.saxutils import escape

import numpy as np
import pytest
from samples import SAMPLES, sample, visible_metadata

import cpet_nb
from cpet_nb.findings import CPETError
from cpet_nb.io import detect_format, registry
from cpet_nb.io.cortex import READERS
from cpet_nb.testing import assert_reader_conforms

CORTEX = SAMPLES / "cortex"


# --- the real samples, checked by hand ------------------------------------------------------

def test_metasoft_xml_hand_checked():
    path = sample("cortex/metasoft_de.xml")
    record = assert_reader_conforms(path, "cortex-xml")
    data, meta = record.data, record.metadata
    assert (meta.format, meta.sampling, meta.device) == ("cortex-xml", "breath-by-breath",
                                                         "Cortex")
    # Stammdaten block (XML lines 359-373): Geschlecht 'männlich', Größe '178 cm',
    # Gewicht '74,8kg'; Test block (line 386): Startzeit '19.04.2019 02:49'
    assert (meta.sex, meta.height_cm, meta.weight_kg) == ("male", 178.0, 74.8)
    assert meta.test_date == "2019-04-19"
    assert meta.age_years == 38.0  # completed years from the birth date at the test date
    assert meta.extra["device_model"] == "MetaLyzer 3B-R3"
    for private in ("YYY", "XXX", "11.11.1980", "1980"):  # names, birth date
        assert private not in visible_metadata(meta)
    # breath table: header 't', units 'h:mm:ss' (line 762); 13 rows from '0:00:09' (line 782)
    # to '0:01:10' (line 1022), then </Table>
    assert len(data) == 13
    assert (data.t.iloc[0], data.t.iloc[-1], record.duration_s) == (9.0, 70.0, 61.0)
    # first row: V'O2 0.117052380441247 L/min (13th cell), V'CO2 0.120985138144411 L/min,
    # V'E 6.54588 L/min, VT 0.513 L, AF 12.76 /min, HF 53 /min, P 0 W, Phase 'Ruhe'
    first = data.iloc[0]
    assert first.VO2 == pytest.approx(117.052380441247)  # not V'O2/kg (1.463... ml/min/kg)
    assert first.VCO2 == pytest.approx(120.985138144411)
    assert (first.VE, first.VT, first.RF, first.HR, first.load) == (6.54588, 0.513, 12.76,
                                                                     53.0, 0.0)
    # peak: the last row, '0:01:10', V'O2 0.486221924235746 L/min
    assert data.VO2.max() == pytest.approx(486.221924235746)
    assert data.loc[data.VO2.idxmax(), "t"] == 70.0
    assert data.phase.tolist() == ["REST"] * 10 + ["WARMUP"] * 3  # Ruhe x 10, Erwärmung x 3
    assert data.load.tolist()[-3:] == [50.0, 50.0, 50.0]
    assert "PetO2" not in data and "PetCO2" not in data  # the file has no end-tidal columns
    assert record.findings == []  # '-' in t-1000 and V'O2/v is "no value": nothing to report


def test_metasoft_xlsx_hand_checked():
    path = sample("cortex/metasoft_step.xlsx")
    record = assert_reader_conforms(path, "cortex-xlsx")
    data, meta = record.data, record.metadata
    assert (meta.format, meta.sampling, meta.device) == ("cortex-xlsx", "breath-by-breath",
                                                         "Cortex")
    # the subject cells were replaced by 'xxxx' (A2-A4, A26-A28, A38-A40): nothing to read
    assert (meta.weight_kg, meta.height_cm, meta.age_years, meta.sex, meta.test_date) == (
        None, None, None, None, None)
    # header in sheet row 53, units in row 54 (A54 'hh:mm:ss.z', J54 'l/min', H54/I54 'mmHg');
    # breaths in rows 55-846
    assert len(data) == 792
    # A55 '00:00:04,8', A846 '00:29:16,0'
    assert (data.t.iloc[0], data.t.iloc[-1]) == (4.8, 1756.0)
    assert record.duration_s == pytest.approx(1751.2)
    # row 55: V'O2 (STPD) J55 0.298 l/min, V'CO2 K55 0.248, PetO2 H55 106.4, PetCO2 I55 30.8,
    # V'E (BTPS) D55 13.3, VT B55 0.72, AF C55 18.5, HF R55 73
    first = data.iloc[0]
    assert first.VO2 == pytest.approx(298.0) and first.VCO2 == pytest.approx(248.0)
    assert (first.PetO2, first.PetCO2, first.VE, first.VT, first.RF, first.HR) == (
        106.4, 30.8, 13.3, 0.72, 18.5, 73.0)
    # peak breath: J285 5.345 l/min at A285 '00:10:46,4', a one-breath artefact between
    # J284 0.055 and J286 1.787 (the next largest breath is 3.491): kept, as in the file
    assert data.VO2.max() == pytest.approx(5345.0)
    assert data.loc[data.VO2.idxmax(), "t"] == pytest.approx(646.4)
    # J96 and J287 hold V'O2 0 (with V'CO2 0 and R 0): not measured, so missing
    assert data.VO2.isna().sum() == 2
    assert np.isnan(data.loc[np.isclose(data.t, 137.4), "VO2"]).all()  # A96 '00:02:17,4'
    zeros = {f.column: f.message for f in record.findings if f.code == "device-zero-missing"}
    assert "2 of 792" in zeros["V'O2 (STPD)"] and "2 of 792" in zeros["V'CO2"]
    # column 'W' (T53) has unit 'kcal' (T54): work, not power, so there is no load column
    assert "load" not in data and "phase" not in data


# --- small MetaSoft-like files written by the tests -----------------------------------------

SS = "urn:schemas-microsoft-com:office:spreadsheet"
META = [[("Stammdaten", 1)], [("Nachname", 1), "Muster"], [("Geschlecht", 1), "weiblich"],
        [("Geburtsdatum", 1), "02.03.1990"], [], [("Größe", 1), "1,70 m"],
        [("Gewicht", 1), "130 lb"], [("Startzeit", 1), "2024-03-01 10:00"], []]
HEADER = ["t", "Phase", "V'O2", "V'O2/kg", "V'CO2", "V'E", "HF", "PetO2", "PetCO2", "P"]
UNITS = ["h:mm:ss,ms", "", "ml/min", "ml/min/kg", "l/min", "l/min", "1/min", "kPa", "kPa", "W"]
BREATHS = [
    ["0:00:01,5", "Ruhe", 300, 5.0, 0.25, 10.5, 0, 14.0, 4.6, 0],
    ["0:00:04,0", "Ruhe", 320, 5.3, 0.27, 11.0, 81, 14.1, 4.5, 0],
    ["0:00:07,0", None, "-", "-", 0.28, 11.2, 82, "abc", 4.5, 0],  # no Phase cell: ss:Index
    ["0:00:09,5", "Belastung", 400, 6.7, 0.33, 12.0, 85, 14.2, 4.4, 50],
    ["0:00:12,0", "Cooldown", 410, 6.8, 0.35, 12.5, 86, 14.3, 4.4, 50],
]
AFTER = [[], ["Maximalwerte", "", 410, 6.8]]


def spreadsheet_xml(rows: list[list], doctype: str = "") -> bytes:
    """An Excel-2003 XML spreadsheet; a cell is a value, ``(text, merge_across)`` or None."""
    lines = ['<?xml version="1.0"?>', doctype, '<?mso-application progid="Excel.Sheet"?>',
             f'<Workbook xmlns="{SS}" xmlns:ss="{SS}">', '<Worksheet ss:Name="MetasoftStudio">',
             "<Table>"]
    for row in rows:
        cells, skipped = [], False
        for position, cell in enumerate(row, start=1):
            if cell is None:
                skipped = True
                continue
            value, merge = cell if isinstance(cell, tuple) else (cell, 0)
            kind = "String" if isinstance(value, str) else "Number"
            index = f' ss:Index="{position}"' if skipped else ""
            merged = f' ss:MergeAcross="{merge}"' if merge else ""
            cells.append(f'<Cell{index}{merged}><Data ss:Type="{kind}">{escape(str(value))}'
                         "</Data></Cell>")
            skipped = False
        lines.append(f"<Row>{''.join(cells)}</Row>" if cells else "<Row/>")
    lines += ["</Table>", "</Worksheet>", "</Workbook>"]
    return "\n".join(lines).encode("utf-8")


def metasoft_rows(header=HEADER, units=UNITS, breaths=BREATHS, after=AFTER) -> list[list]:
    # metadata labels span two columns, as in real exports, so values sit in column C
    return [*META, list(header), list(units), *breaths, *after]


def test_written_metasoft_xml(tmp_path):
    path = tmp_path / "export"  # no extension: detected by content
    path.write_bytes(spreadsheet_xml(metasoft_rows()))
    record = assert_reader_conforms(path, "cortex-xml")
    data, meta = record.data, record.metadata
    assert data.t.tolist() == [1.5, 4.0, 7.0, 9.5, 12.0]
    assert data.VO2.tolist()[:2] == [300.0, 320.0]  # ml/min, not the per-kg column
    assert np.isnan(data.VO2.iloc[2])  # '-': missing, never 0
    assert data.VCO2.iloc[0] == 250.0 and data.VE.iloc[0] == 10.5
    assert data.PetO2.iloc[0] == pytest.approx(14.0 * 760 / 101.325)  # kPa -> 105.0 mmHg
    assert data.PetCO2.iloc[0] == pytest.approx(4.6 * 760 / 101.325)
    assert np.isnan(data.HR.iloc[0]) and data.HR.iloc[1] == 81.0  # HF 0: not measured
    assert data.load.tolist() == [0.0, 0.0, 0.0, 50.0, 50.0]
    assert data.phase.tolist() == ["REST", "REST", None, "EXERCISE", None]
    # 'Gewicht' = '130 lb' is refused, not converted; '1,70 m' is 170 cm
    assert meta.weight_kg is None and meta.height_cm == 170.0
    assert (meta.sex, meta.test_date, meta.age_years) == ("female", "2024-03-01", 33.0)
    assert "Muster" not in visible_metadata(meta) and "1990" not in visible_metadata(meta)
    found = {(f.code, f.column): f for f in record.findings}
    assert "'lb', not kg" in found["non-numeric", "Gewicht"].message
    text_cell = found["non-numeric", "PetO2"]
    assert text_cell.row == 3 and "'abc'" in text_cell.message
    assert "'Cooldown'" in found["unknown-column", "Phase"].message
    after = found["malformed-row", None]
    assert "1 non-empty row(s)" in after.message and after.row == 18  # 'Maximalwerte'
    assert ("non-numeric", "V'O2") not in found  # '-' is not reported


def test_per_kg_unit_is_not_read_as_vo2(tmp_path):
    path = tmp_path / "per_kg.xml"
    units = ["h:mm:ss,ms", "", "ml/min/kg", *UNITS[3:]]
    path.write_bytes(spreadsheet_xml(metasoft_rows(units=units)))
    record = cpet_nb.read(path)
    assert "VO2" not in record.data
    refused = next(f for f in record.findings if f.code == "unknown-column"
                   and f.column == "V'O2")
    assert "ml/min/kg" in refused.message


def test_missing_units_row_is_a_finding(tmp_path):
    path = tmp_path / "no_units.xml"
    path.write_bytes(spreadsheet_xml(metasoft_rows(units=[])))
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == "unreadable"
    assert "no MetaSoft breath table" in err.value.finding.message


def test_truncated_xml_is_a_finding(tmp_path):
    complete = spreadsheet_xml(metasoft_rows())
    path = tmp_path / "truncated.xml"
    path.write_bytes(complete[: complete.index(b"0:00:07,0")])  # cut in the third breath
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    finding = err.value.finding
    assert finding.code == "unreadable" and "not well-formed" in finding.message
    assert finding.file == str(path)


def billion_laughs() -> str:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)]
    return "<!DOCTYPE Workbook [\n" + "\n".join(entities) + "\n]>"


@pytest.mark.parametrize("doctype, reference", [
    (billion_laughs(), "&lol9;"),
    ('<!DOCTYPE Workbook [<!ENTITY xxe SYSTEM "file:///etc/hostname">]>', "&xxe;"),
])
def test_doctype_and_entities_are_refused(tmp_path, doctype, reference):
    data = spreadsheet_xml(metasoft_rows(), doctype=doctype)
    data = data.replace(b"weiblich", reference.encode())  # use the entity in a cell
    path = tmp_path / "entities.xml"
    path.write_bytes(data)
    with pytest.raises(CPETError) as err:  # refused at the DOCTYPE, before any expansion
        cpet_nb.read(path)
    finding = err.value.finding
    assert finding.code == "unreadable" and "DOCTYPE" in finding.message


def xlsx_bytes(rows: list[list]) -> bytes:
    """A minimal .xlsx (one sheet, inline strings) with ``rows``; None is an empty cell."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    package = "http://schemas.openxmlformats.org/package/2006/relationships"
    xml_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = f"{chr(ord('A') + c)}{r}"
            if value is None:
                continue
            if isinstance(value, str):
                cells.append(f'<c r="{ref}" t="inlineStr"><is><t>{escape(value)}</t></is></c>')
            else:
                cells.append(f'<c r="{ref}"><v>{value}</v></c>')
        xml_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    parts = {
        "[Content_Types].xml": (
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
            'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
            'officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/'
            'sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" Type="{rel}/'
            'officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets><sheet name="Sheet1" '
            'sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            f'<Relationships xmlns="{package}"><Relationship Id="rId1" Type="{rel}/worksheet" '
            'Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<worksheet xmlns="{main}"><sheetData>{"".join(xml_rows)}</sheetData></worksheet>'),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>\n' + text)
    return buffer.getvalue()


ENGLISH = [["Administrative Data"], ["Last Name", "Doe"], ["Sex", "male"],
           ["Weight (kg)", 81.5], ["Height", "182 cm"], ["Age", 41], ["Test date", "2023-11-05"],
           [], ["t", "V'O2 (STPD)", "V'O2/kg", "V'CO2", "V'E (BTPS)", "BF", "HR", "v"],
           ["h:mm:ss", "L/min", "mL/min/kg", "L/min", "L/min", "1/min", "bpm", "km/h"],
           ["0:00:05", 0.5, 6.1, 0.45, 15.0, 20.0, 90, 8.0],
           ["0:00:10", 0.6, 7.4, 0.5, 17.0, 21.0, 92, 8.0],
           ["0:00:14", 0.7, 8.6, 0.6, 19.0, 22.0, 95, 8.5]]


def test_written_english_xlsx(tmp_path):
    path = tmp_path / "english.xlsx"
    path.write_bytes(xlsx_bytes(ENGLISH))
    record = assert_reader_conforms(path, "cortex-xlsx")
    data, meta = record.data, record.metadata
    assert data.t.tolist() == [5.0, 10.0, 14.0]
    assert data.VO2.tolist() == pytest.approx([500.0, 600.0, 700.0])
    assert (data.RF.iloc[0], data.HR.iloc[0], data.speed.iloc[0]) == (20.0, 90.0, 8.0)
    assert (meta.sex, meta.weight_kg, meta.height_cm, meta.age_years, meta.test_date) == (
        "male", 81.5, 182.0, 41.0, "2023-11-05")
    assert "Doe" not in visible_metadata(meta)
    assert record.findings == []


def test_corrupted_xlsx_is_a_finding(tmp_path):
    good = tmp_path / "good.xlsx"
    good.write_bytes(xlsx_bytes(ENGLISH))
    path = tmp_path / "corrupted.xlsx"
    with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as damaged:
        for name in source.namelist():
            data = source.read(name)
            if name == "xl/worksheets/sheet1.xml":
                data = data[: len(data) // 2]  # the sheet's XML cut in the middle
            damaged.writestr(name, data)
    # the sheet cannot be read, so its content cannot show it is a Cortex export ...
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path)
    assert err.value.finding.code == "unsupported-format"
    # ... and read as one, it is a specific finding, not numbers
    with pytest.raises(CPETError) as err:
        cpet_nb.read(path, format="cortex-xlsx")
    finding = err.value.finding
    assert finding.code == "unreadable" and "could not" in finding.message
    assert finding.file == str(path)


def test_cortex_sniff_does_not_claim_other_files(tmp_path, ramp_csv):
    cosmed_like = tmp_path / "cosmed.xlsx"
    cosmed_like.write_bytes(xlsx_bytes([["ID-Code:", "1"], ["t", "VO2", "VCO2"],
                                        ["s", "mL/min", "mL/min"], [0, 300, 250]]))
    plain_xml = tmp_path / "other.xml"
    plain_xml.write_bytes(spreadsheet_xml([["t", "VO2"], ["s", "mL/min"], [1, 300]]))
    for path in (cosmed_like, plain_xml, ramp_csv):
        head = path.read_bytes()[: registry.SNIFF_BYTES]
        assert not any(reader.sniff(head, path) for reader in READERS), path.name
    assert detect_format(ramp_csv).name == "canonical-csv"
