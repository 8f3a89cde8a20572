"""A hostile corpus the tests write themselves: every file gets its specific finding, nothing
crashes or hangs, and no numbers come out of a file that has none."""

import io
import math
import os
import socket
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import without_hanging
from synthetic import ramp_test, write_canonical_csv
from test_cortex import xlsx_bytes

import cpet_nb
from cpet_nb.cli import main
from cpet_nb.findings import CPETError
from cpet_nb.io import ColumnMapping, detect_format
from cpet_nb.io.archives import extract_zip, has_zip_magic
from cpet_nb.io.companion import read_hr
from cpet_nb.io.inputs import expand_inputs
from cpet_nb.io.participants import SubjectTable
from cpet_nb.record import CPETRecord, Metadata


def analyse(path) -> cpet_nb.FileResult:
    result = cpet_nb.analyze(path)
    if result.status == "error":  # a file that could not be analysed gives no numbers
        assert result.vt1 is None and result.vt2 is None and math.isnan(result.vo2peak_ml_min)
    return result


def codes(result: cpet_nb.FileResult) -> set[str]:
    return {f.code for f in result.findings}


@pytest.fixture()
def ramp_text() -> str:
    buffer = io.StringIO()
    ramp_test().to_csv(buffer, index=False)
    return buffer.getvalue()


def test_truncated_and_corrupted_workbooks(tmp_path):
    good = xlsx_bytes([["t", "V'O2"], ["s", "L/min"], [0, 1.0]])
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(good[: len(good) // 2])
    assert codes(analyse(cut)) == {"unsupported-format"}
    scrambled = tmp_path / "scrambled.xlsx"
    scrambled.write_bytes(good[:30] + bytes(range(256)) * 20)
    assert codes(analyse(scrambled)) == {"unsupported-format"}


def test_corrupted_zip_archive_is_reported_not_analysed(tmp_path, capsys):
    archive = tmp_path / "batch.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.csv", "t,VO2\n0,300\n")
    data = archive.read_bytes()
    archive.write_bytes(data[:40] + b"\x00" * 30 + data[70:])
    assert main(["analyze", str(archive), "-o", str(tmp_path / "r.csv")]) == 1
    assert "corrupt-archive" in capsys.readouterr().err


def test_binary_garbage_named_csv(tmp_path):
    path = tmp_path / "garbage.csv"
    path.write_bytes(bytes(range(256)) * 40)
    result = analyse(path)
    assert codes(result) == {"unsupported-format"} and "binary content" in str(result.findings[0])


def test_utf16_text_is_read_like_utf8(tmp_path, ramp_text):
    utf8 = tmp_path / "utf8.csv"
    utf16 = tmp_path / "utf16.csv"
    utf8.write_text(ramp_text, encoding="utf-8")
    utf16.write_text(ramp_text, encoding="utf-16")  # with a byte-order mark
    a, b = cpet_nb.read(utf8), cpet_nb.read(utf16)
    pd.testing.assert_frame_equal(a.data, b.data)


def test_latin1_and_header_only(tmp_path):
    latin = tmp_path / "latin.csv"
    write_canonical_csv(ramp_test(), latin, device="Spiroergometrie Größe")
    latin.write_bytes(latin.read_text(encoding="utf-8").encode("latin-1"))
    assert cpet_nb.read(latin).metadata.device == "Spiroergometrie Größe"
    header_only = tmp_path / "header.csv"
    header_only.write_text("t,VO2,VCO2,VE,PetO2,PetCO2\n")
    assert codes(analyse(header_only)) == {"empty"}


def test_text_in_numeric_columns_is_never_a_number(tmp_path):
    frame = ramp_test().astype(object)
    frame.loc[5, "VCO2"] = "n/a"  # an explicit missing marker: missing, no finding needed
    frame.loc[10:20, "VO2"] = "calibrating"
    frame.loc[30, "HR"] = "high"
    path = tmp_path / "text.csv"
    write_canonical_csv(frame, path)
    record = cpet_nb.read(path)
    assert record.data["VO2"].iloc[10:21].isna().all() and math.isnan(record.data["HR"][30])
    assert math.isnan(record.data["VCO2"][5])
    columns = {f.column for f in record.findings if f.code == "non-numeric"}
    assert columns == {"VO2", "HR"}


def test_litres_labelled_millilitres_is_an_error(tmp_path):
    frame = ramp_test()
    frame[["VO2", "VCO2"]] /= 1000  # L/min written in a file whose unit is mL/min
    path = tmp_path / "litres.csv"
    write_canonical_csv(frame, path)
    result = analyse(path)
    assert result.status == "error" and "implausible-values" in codes(result)


def test_ten_million_row_csv_is_refused_by_size_without_reading(tmp_path):
    path = tmp_path / "huge.csv"
    with open(path, "wb") as fh:
        fh.write(b"t,VO2\n")
        block = b"1,2\n" * 100_000
        for _ in range(100):  # 10,000,000 rows, 40 MB
            fh.write(block)
    result = analyse(path)
    assert codes(result) == {"file-too-large"}
    assert "40,000,006 bytes" in str(result.findings[0])


def test_one_bad_file_does_not_stop_the_batch(tmp_path):
    good = tmp_path / "good.csv"
    write_canonical_csv(ramp_test(), good)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    out = tmp_path / "r.csv"
    assert main(["analyze", str(bad), str(good), "-o", str(out), "-q"]) == 0
    table = pd.read_csv(out).set_index("file")
    assert table.loc[str(good), "status"] != "error"
    assert table.loc[str(bad), "status"] == "error"


@pytest.fixture()
def special_files(tmp_path):
    """A folder with one good test, a FIFO, a socket, and links to a FIFO and to /dev/zero."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_canonical_csv(ramp_test(), folder / "good.csv")
    os.mkfifo(folder / "pipe.csv")
    os.mkfifo(tmp_path / "elsewhere")
    (folder / "link-to-pipe.csv").symlink_to(tmp_path / "elsewhere")
    (folder / "zeros.csv").symlink_to("/dev/zero")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(folder / "sock"))
        yield folder


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and Unix sockets")
def test_fifo_socket_and_device_in_a_folder_are_skipped_without_opening(special_files):
    with without_hanging(expand_inputs, [special_files]) as inputs:
        assert [item.path.name for item in inputs.files] == ["good.csv"]
        assert sorted(i.path.name for i in inputs.skipped) == ["link-to-pipe.csv", "pipe.csv",
                                                                "sock", "zeros.csv"]
        reasons = {i.path.name: (i.finding.code, i.finding.severity.value, i.finding.message)
                   for i in inputs.skipped}
    assert reasons == {
        "pipe.csv": ("not-a-regular-file", "warning",
                     "a FIFO (named pipe), not a file: not opened, skipped"),
        "link-to-pipe.csv": ("not-a-regular-file", "warning",
                             "a FIFO (named pipe), not a file: not opened, skipped"),
        "sock": ("not-a-regular-file", "warning", "a socket, not a file: not opened, skipped"),
        "zeros.csv": ("not-a-regular-file", "warning",
                      "a character device, not a file: not opened, skipped"),
    }


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs and Unix sockets")
def test_named_fifo_socket_and_device_get_an_error_row(special_files, tmp_path, capsys):
    named = {special_files / "pipe.csv": "a FIFO (named pipe)",
             special_files / "link-to-pipe.csv": "a FIFO (named pipe)",
             special_files / "sock": "a socket", Path("/dev/zero"): "a character device"}
    good = special_files / "good.csv"
    out = tmp_path / "r.csv"
    assert without_hanging(main, ["analyze", *map(str, named), str(good), "-o", str(out),
                                  "-q"]) == 0
    table = pd.read_csv(out).set_index("file")
    assert table.loc[str(good), "status"] != "error"
    for path, kind in named.items():
        assert table.loc[str(path), "findings"] == (f"error not-a-regular-file: {kind}, not a "
                                                    "file: not opened")
    pipe = special_files / "pipe.csv"
    with pytest.raises(CPETError, match="FIFO"):
        without_hanging(detect_format, pipe)
    assert not without_hanging(has_zip_magic, pipe)
    refused = without_hanging(extract_zip, pipe)
    assert refused.refused and "a FIFO (named pipe), not a file" in refused.findings[0].message


WIDE = 2_000_000  # fields in a hostile header: pandas would take hours to name them


def limits_text(characters: int, fields: int, separator: str) -> str:
    return (f"{characters:,} characters and {fields:,} fields separated by {separator!r}; the "
            "limits are 100,000 characters and 10,000 fields (a CPET export has a few hundred "
            "columns at most): the file was not parsed")


@pytest.mark.parametrize(("name", "header", "preamble"), [
    ("pyoxynet.csv", "time,VO2_I" + ",x" * WIDE, ""),
    ("canonical.csv", "t,VO2" + ",VE" * WIDE, "# weight_kg: 70\n"),
])
def test_a_header_of_two_million_fields_is_refused_before_parsing(tmp_path, name, header,
                                                                  preamble):
    path = tmp_path / name
    path.write_text(f"{preamble}{header}\n0,300\n")
    result = without_hanging(analyse, path)
    line = 1 + preamble.count("\n")
    assert [str(f) for f in result.findings] == [
        f"error line-too-long: line {line} has {limits_text(len(header), WIDE + 2, ',')}"]


@pytest.mark.parametrize(("n_fields", "refused"), [(10_000, False), (10_001, True)])
def test_the_field_limit_is_ten_thousand(tmp_path, n_fields, refused):
    path = tmp_path / "wide.csv"
    path.write_text("time,VO2_I" + "".join(f",c{i}" for i in range(n_fields - 2)) + "\n0,300\n")
    assert ("line-too-long" in codes(analyse(path))) is refused


def test_participants_and_hr_tables_with_a_huge_header_are_refused(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("file;weight_kg;time;hr" + ";x" * WIDE + "\n01;70;0;80\n")
    table = without_hanging(SubjectTable.from_csv, path)
    assert [f.code for f in table.findings] == ["line-too-long"]
    assert table.findings[0].message == f"line 1 has {limits_text(4_000_022, WIDE + 4, ';')}"
    hr = without_hanging(read_hr, path)
    assert [f.code for f in hr.attrs["findings"]] == ["line-too-long"] and hr.empty


LAB_MAPPING = ColumnMapping(channels={"t": ("Zeit", "clock"), "VO2": "VO2"}, delimiter=";")


def test_a_line_longer_than_the_limit_is_refused_before_parsing(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text("Zeit;VO2\n0:00:0" + "1" * 200_000 + ";300\n0:00:02;310\n")
    result = cpet_nb.analyze(path, mapping=LAB_MAPPING)
    assert [str(f) for f in result.findings] == [
        f"error line-too-long: line 2 has {limits_text(200_010, 2, ';')}"]


def test_a_quoted_cell_over_many_lines_is_unreadable_not_a_crash(tmp_path):
    path = tmp_path / "lab.csv"
    path.write_text('Zeit;VO2\n"' + ("1" * 50 + "\n") * 4000 + '";300\n')
    result = cpet_nb.analyze(path, mapping=LAB_MAPPING)
    assert codes(result) == {"unreadable"}
    assert "could not split the lines into cells" in result.findings[0].message


@pytest.mark.parametrize("time", ["1e300", "inf", "-1e300"])
def test_a_corrupt_time_is_a_finding_naming_its_row(tmp_path, time):
    frame = ramp_test().astype({"t": object})
    frame.loc[57, "t"] = time  # data row 58
    path = tmp_path / "corrupt.csv"
    write_canonical_csv(frame, path)
    result = without_hanging(analyse, path)
    assert codes(result) == {"recording-too-long"}
    finding = result.findings[0]
    assert (finding.row, finding.column) == (58, "t")
    assert "in row 58" in finding.message and "more than the 21,600 s (6 h) analysed" in (
        finding.message)


def _long_recording(path: Path, n_rows: int, step_s: float) -> None:
    """A canonical CSV of ``n_rows`` samples ``step_s`` apart (VO2 only: it is refused before
    any other channel would matter)."""
    times = (np.arange(n_rows) * step_s).tolist()
    path.write_text("t,VO2\n" + "".join(f"{t:.2f},1500\n" for t in times))


@pytest.mark.parametrize(("n_rows", "step_s", "message"), [
    (100_800, 1.0, "the times span 100,799 s (from 0 s in row 1 to 100,799 s in row 100800)"),
    (1_000_000, 0.02, "1,000,000 rows with a time, more than the 100,000 analysed"),
])
def test_28_hours_or_a_million_breaths_are_refused_early_in_little_memory(tmp_path, n_rows,
                                                                          step_s, message):
    path = tmp_path / "long.csv"
    _long_recording(path, n_rows, step_s)
    tracemalloc.start()
    try:
        result = without_hanging(cpet_nb.analyze, path, max_file_bytes=100_000_000)
        peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [f.code for f in result.findings] == ["recording-too-long"]
    assert result.findings[0].message.startswith(message)
    assert peak_bytes < 500e6  # about memory, not speed


def test_a_long_record_given_directly_is_refused_too():
    data = pd.DataFrame({"t": np.arange(200_000.0), "VO2": 1500.0})
    record = CPETRecord(data, Metadata(source_name="made.csv"))
    result = cpet_nb.analyze(record)
    assert [(f.code, f.row) for f in result.findings] == [("recording-too-long", 200_000)]
