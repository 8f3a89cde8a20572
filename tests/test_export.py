"""Results tables written as CSV, JSON, Excel and Parquet."""

from __future__ import annotations

import pandas as pd
import pytest

from cpet_nb.io.exports import check_table_path, write_table


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

    def half_then_fail(self, path, **kwargs):
        path.write_text("file,vo2")  # part of a table, then the disk is full
        raise OSError("No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_table(table, target)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]
