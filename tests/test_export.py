"""Results tables written as CSV, JSON, Excel and Parquet."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cpet_nb.io.exports import CSV_DIALECTS, check_table_path, write_table
from cpet_nb.settings import Settings


@pytest.fixture()
def table() -> pd.DataFrame:
    return pd.DataFrame({"file": ["=HYPERLINK(1)", "b.csv"], "vo2peak_ml_min": [-1.5, 3000.0]})


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_spreadsheet_formats_neutralise_formulas(tmp_path, table, suffix):
    path = write_table(table, tmp_path / f"r{suffix}")
    back = pd.read_csv(path) if suffix == ".csv" else pd.read_excel(path, engine="calamine")
    assert back["file"].tolist() == ["'=HYPERLINK(1)", "b.csv"]
    assert back["vo2peak_ml_min"].tolist() == [-1.5, 3000.0]  # numbers untouched
    assert not list(tmp_path.glob(".*.tmp"))


def test_parquet_and_json_keep_values(tmp_path, table):
    pd.testing.assert_frame_equal(pd.read_parquet(write_table(table, tmp_path / "r.parquet")),
                                  table, check_dtype=False)
    assert pd.read_json(write_table(table, tmp_path / "r.json"))["file"][0] == "=HYPERLINK(1)"


def test_unknown_ending_and_missing_pyarrow_are_refused_before_work(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="must end in .csv, .json, .xlsx, .parquet"):
        check_table_path(tmp_path / "r.txt")
    monkeypatch.setattr("importlib.util.find_spec",
                        lambda name: None if name == "pyarrow" else object())
    with pytest.raises(ValueError, match=r"pip install 'cpet-nb\[parquet\]'"):
        check_table_path(tmp_path / "r.parquet")


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, table,
                                                                   monkeypatch):
    target = write_table(table, tmp_path / "r.csv")
    before = target.read_bytes()

    write_text = Path.write_text

    def half_then_fail(self, data):
        write_text(self, "file,vo2")  # part of a table, then the disk is full
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_table(table, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]


@pytest.mark.parametrize("dialect", sorted(CSV_DIALECTS))
def test_every_csv_dialect_neutralises_formulas_and_reads_back(tmp_path, table, dialect):
    table = table.assign(note=["+SUM(A1:A9)", "@cmd|' /C calc'!A0"], n_findings=[0, 12])
    path = write_table(table, tmp_path / "r.csv", csv_dialect=dialect)
    spec = CSV_DIALECTS[dialect]
    back = pd.read_csv(path, sep=spec.separator, decimal=spec.decimal, encoding=spec.encoding)
    assert back["file"].tolist() == ["'=HYPERLINK(1)", "b.csv"]
    assert back["note"].tolist() == ["'+SUM(A1:A9)", "'@cmd|' /C calc'!A0"]
    assert back["vo2peak_ml_min"].tolist() == [-1.5, 3000.0]  # negative numbers untouched
    assert back["n_findings"].tolist() == [0, 12]


def test_the_semicolon_dialect_is_what_excel_expects_with_a_decimal_comma(tmp_path, table):
    raw = write_table(table, tmp_path / "r.csv", csv_dialect="semicolon").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 byte order mark: Excel reads UTF-8
    lines = raw[3:].decode("utf-8").splitlines()
    assert lines == ["file;vo2peak_ml_min", "'=HYPERLINK(1);-1,5", "b.csv;3000,0"]
    comma = write_table(table, tmp_path / "c.csv").read_bytes()
    assert comma.splitlines()[1] == b"'=HYPERLINK(1),-1.5"  # the default: no BOM, points


def test_an_unknown_csv_dialect_is_refused_before_anything_is_written(tmp_path, table):
    with pytest.raises(ValueError, match="csv_dialect must be one of comma, semicolon"):
        write_table(table, tmp_path / "r.csv", csv_dialect="excel")
    assert list(tmp_path.iterdir()) == []
    assert Settings.load(environ={"CPET_NB_CSV_DIALECT": "semicolon"}).csv_dialect == "semicolon"
    with pytest.raises(ValueError, match="csv_dialect must be one of"):
        Settings(csv_dialect="tab")
