"""Each file is parsed once: a CSV by one ``read_csv``, each sheet of a workbook by one parse
shared by content detection and the reader (the records themselves are compared with today's
in test_reader_reference)."""

from __future__ import annotations

from collections import Counter

import pandas as pd
import pytest
from samples import sample
from test_cosmed import omnia_like

import cpet_nb
from cpet_nb.io._excel import sheet_names


@pytest.fixture
def csv_parses(monkeypatch) -> list[dict]:
    """The keyword arguments of every ``pandas.read_csv`` call."""
    calls: list[dict] = []
    read_csv = pd.read_csv

    def counted(*args, **kwargs):
        calls.append(kwargs)
        return read_csv(*args, **kwargs)

    monkeypatch.setattr(pd, "read_csv", counted)
    return calls


@pytest.fixture
def sheet_parses(monkeypatch) -> list[tuple[str, str | int]]:
    """(path, sheet) of every ``pandas.read_excel`` call."""
    calls: list[tuple[str, str | int]] = []
    read_excel = pd.read_excel

    def counted(path, *args, **kwargs):
        calls.append((str(path), kwargs.get("sheet_name", 0)))
        return read_excel(path, *args, **kwargs)

    monkeypatch.setattr(pd, "read_excel", counted)
    return calls


def test_pyoxynet_csv_is_parsed_once(csv_parses):
    record = cpet_nb.read(cpet_nb.datasets.pyoxynet_tests()[0])
    assert len(csv_parses) == 1
    assert callable(csv_parses[0]["usecols"])  # straight into the columns used
    assert "VEVO2_I" not in record.data and len(record.data) > 100


def _same_sheet_twice(calls: list[tuple[str, str | int]]) -> Counter:
    """Parses of one sheet beyond its first (a sheet by position counts as its name)."""
    named = Counter((path, sheet_names(path)[sheet] if isinstance(sheet, int) else sheet)
                    for path, sheet in calls)
    return Counter({key: count - 1 for key, count in named.items() if count > 1})


def test_a_workbook_sheet_is_parsed_once_for_detection_and_reading(tmp_path, sheet_parses):
    record = cpet_nb.read(omnia_like(tmp_path / "omnia.xlsx"))
    assert record.metadata.format == "cosmed-omnia"
    assert sheet_parses and not _same_sheet_twice(sheet_parses)


@pytest.mark.parametrize("relative", ["cosmed/quark_ramp_bxb.xlsx", "cortex/metasoft_step.xlsx",
                                      "parvo/parvo_excel.xlsx"])
def test_real_workbooks_are_parsed_once(relative, sheet_parses):
    cpet_nb.read(sample(relative))
    assert sheet_parses and not _same_sheet_twice(sheet_parses)


def test_parsed_sheets_are_let_go_after_reading(tmp_path, sheet_parses):
    path = omnia_like(tmp_path / "omnia.xlsx")
    cpet_nb.read(path)
    first = len(sheet_parses)
    cpet_nb.read(path)  # the same file again is parsed again, not served from a kept copy
    assert len(sheet_parses) == 2 * first
