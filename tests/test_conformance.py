"""Every reader passes :func:`cpet_nb.testing.assert_reader_conforms` on samples of its format,
and the checks catch the defects they exist for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_breeze
import test_cortex
import test_cosmed
import test_parvo
import test_vyntus
import test_zan
from samples import sample
from synthetic import ramp_test, write_canonical_csv
from test_readers import SAMPLE_FORMATS

import cpet_nb
from cpet_nb.findings import Finding, Severity
from cpet_nb.io.canonical_csv import CanonicalCSVReader
from cpet_nb.io.registry import SNIFF_BYTES, PluginReader, readers
from cpet_nb.testing import assert_reader_conforms, reader_checks

#: A sample: given a temporary folder, the path of a file (written there, or found elsewhere).
Sample = Callable[[Path], Path]


def bundled(index: int) -> Sample:
    return lambda folder: cpet_nb.datasets.pyoxynet_tests()[index]


def real(relative: str) -> Sample:
    """A real export from the shared samples (the test skips without them)."""
    return lambda folder: sample(relative)


def written(name: str, content: Callable[[], bytes]) -> Sample:
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(content())
        return path
    return write


def canonical_csv(folder: Path) -> Path:
    path = folder / "ramp.csv"
    write_canonical_csv(ramp_test(), path, weight_kg=72.5, height_cm=178, sex="female")
    return path


def cosmed_csv_from(workbook: Sample) -> Sample:
    """COSMED's CSV export: the workbook's Data sheet grid as text (as in test_cosmed)."""
    def write(folder: Path) -> Path:
        grid = pd.read_excel(workbook(folder), header=None, engine="calamine", dtype=object)
        path = folder / "cosmed export.csv"
        grid.to_csv(path, header=False, index=False)
        return path
    return write


def omnia_workbook(folder: Path) -> Path:
    return test_cosmed.omnia_like(folder / "omnia.xlsx")


def grid_workbook(folder: Path) -> Path:
    """A COSMED workbook of the parameter grid alone, from cell A1 (as in test_cosmed)."""
    grid = pd.read_excel(quark_workbook(folder), header=None, engine="calamine", dtype=object)
    return test_cosmed.write_grid_xlsx(grid.iloc[:, 9:], folder / "grid only.xlsx")


def quark_workbook(folder: Path) -> Path:
    names = ["t", "Rf", "VO2", "VCO2", "VE", "PetO2", "PetCO2", "HR", "Load1"]
    units = ["hh:mm:ss", "b/min", "ml/min", "ml/min", "l/min", "mmHg", "mmHg", "bpm", "Watt"]
    data = [[f"00:0{i // 6}:{10 * (i % 6):02d}", 20 + i, 500 + 50 * i, 420 + 50 * i,
             15.0 + i, 100 + i, 38, 90 + i, 25 * i] for i in range(12)]
    labels = [("ID code:", "X1"), ("Last name:", "Rossi"), ("First name:", None),
              ("Sex:", "F"), ("Age:", 30), ("Height (cm):", 170), ("Weight (Kg):", 60),
              ("Notes:", None), ("Test date:", "2020-02-03")]
    return test_cosmed.write_xlsx(folder / "quark.xlsx",
                                  test_cosmed.cosmed_rows(names, units, data, labels),
                                  sheet="Sheet1")


#: Reader name -> samples that are always there (written here, or bundled with pyoxynet), by
#: label. Every reader in ``cpet_nb.io.readers()`` must have one.
SAMPLES: dict[str, dict[str, Sample]] = {
    "pyoxynet-csv": {"data_test.csv": bundled(0), "ramp_real_test_1.csv": bundled(1)},
    "canonical-csv": {"written": canonical_csv},
    "zan": {"written": written("EXED001", lambda: test_zan.zan_bytes(test_zan.ROWS))},
    "cosmed-omnia": {"written": omnia_workbook},
    "cosmed-quark": {"written": quark_workbook},
    "cosmed-csv": {"written omnia grid": cosmed_csv_from(omnia_workbook)},
    "cosmed-grid": {"written quark grid from A1": grid_workbook},
    "cortex-xml": {"written": written("export", lambda: test_cortex.spreadsheet_xml(
        test_cortex.metasoft_rows()))},
    "cortex-xlsx": {"written": written("english.xlsx", lambda: test_cortex.xlsx_bytes(
        test_cortex.ENGLISH))},
    "parvo-csv": {"written": written("export.dat", lambda: test_parvo.csv_bytes(
        test_parvo.table(test_parvo.csv_rows())))},
    "parvo-xlsx": {"written": written("export.bin", lambda: test_parvo.xlsx_bytes(
        test_parvo.table(test_parvo.xlsx_rows(), header=test_parvo.XLSX_HEADER)))},
    "vyntus": {"written": written("SentrySuite export", lambda: test_vyntus.vyntus_bytes(
        test_vyntus.GERMAN_HEADER, test_vyntus.GERMAN_UNITS, test_vyntus.GERMAN_ROWS,
        test_vyntus.GERMAN_PREAMBLE))},
    "breeze": {"written": written("breeze export", lambda: test_breeze.breeze_bytes(
        test_breeze.ROWS))},
}
#: The real exports in the shared samples (skipped without them), by reader.
REAL_SAMPLES: dict[str, dict[str, Sample]] = {
    "cosmed-csv": {"cosmed/quark_ramp_bxb.xlsx as CSV": cosmed_csv_from(
        real("cosmed/quark_ramp_bxb.xlsx"))},
}
for _relative, _reader in SAMPLE_FORMATS.items():
    REAL_SAMPLES.setdefault(_reader, {})[_relative] = real(_relative)

CASES = [pytest.param(reader, make, id=f"{reader}: {label}")
         for samples in (SAMPLES, REAL_SAMPLES)
         for reader, by_label in samples.items() for label, make in by_label.items()]


def builtin_readers() -> list[str]:
    """Names of the readers cpet_nb ships (not plugins another test may have registered)."""
    return [r.name for r in readers() if not isinstance(r, PluginReader)]


def test_every_reader_has_a_sample():
    assert sorted(SAMPLES) == sorted(builtin_readers())
    assert set(REAL_SAMPLES) <= set(SAMPLES)


@pytest.mark.parametrize("reader, make", CASES)
def test_reader_conforms_on_its_samples(reader, make, tmp_path):
    path = make(tmp_path)
    record = assert_reader_conforms(path, reader)
    assert record.metadata.format == reader
    # no other reader claims it either: each sniff says yes to its own format only
    head = path.read_bytes()[:SNIFF_BYTES]
    assert [r.name for r in readers() if r.sniff(head, path)] == [reader]


# --- the checks catch what they are for --------------------------------------------------

class Defective(CanonicalCSVReader):
    """The canonical CSV reader with one defect in its record (or in sniff/read)."""

    def __init__(self, spoil: Callable[[cpet_nb.CPETRecord], None] = lambda record: None
                 ) -> None:
        self.spoil = spoil

    def read(self, path: Path) -> cpet_nb.CPETRecord:
        record = super().read(path)
        self.spoil(record)
        return record


def set_column(column: str, values) -> Callable[[cpet_nb.CPETRecord], None]:
    def spoil(record):
        record.data[column] = values(record.data)
    return spoil


def set_metadata(field: str, value) -> Callable[[cpet_nb.CPETRecord], None]:
    return lambda record: setattr(record.metadata, field, value)


class SniffRaises(CanonicalCSVReader):
    def sniff(self, head, path):
        if b"\x00" in head:
            raise UnicodeDecodeError("utf-8", head, 0, 1, "sniffer bug")
        return super().sniff(head, path)


class SniffAnswersNumpy(CanonicalCSVReader):
    def sniff(self, head, path):
        return np.bool_(super().sniff(head, path))


class EmptyFileRaises(CanonicalCSVReader):
    def read(self, path):
        if path.stat().st_size == 0:
            return [][0]
        return super().read(path)


class EmptyFileGivesARecord(CanonicalCSVReader):
    def read(self, path):
        if path.stat().st_size == 0:
            return cpet_nb.CPETRecord(pd.DataFrame({"t": [0.0], "VO2": [0.0]}),
                                      cpet_nb.Metadata(path.name, format=self.name))
        return super().read(path)


def swap_two_times(record):
    record.data.loc[[3, 4], "t"] = record.data.loc[[4, 3], "t"].to_numpy()


@pytest.mark.parametrize("reader, check, words", [
    (Defective(set_column("VO2", lambda d: d["VO2"] / 1000)), "units",
     "column 'VO2' would not pass"),
    (Defective(set_column("VE", lambda d: d["VE"] * 1000)), "units", "plausible 3-250 L/min"),
    (Defective(set_column("RER", lambda d: d["VCO2"] / d["VO2"])), "columns",
     "non-canonical column(s) ['RER']"),
    (Defective(set_column("HR", lambda d: d["HR"].round().astype(int))), "dtypes",
     "column 'HR' has dtype int64; expected float64"),
    (Defective(set_column("phase", lambda d: np.where(d["t"] < 60, "Warm Up", "EXERCISE"))),
     "dtypes", "column 'phase' holds ['Warm Up']"),
    (Defective(swap_two_times), "time", "not strictly increasing: record row 5 has t ="),
    (Defective(set_column("t", lambda d: d["t"].where(d.index != 7))), "time",
     "column 't' is nan at record row 8"),
    (Defective(set_metadata("weight_kg", "72.5")), "metadata",
     "metadata.weight_kg is '72.5'; expected a positive float or None"),
    (Defective(set_metadata("age_years", float("nan"))), "metadata", "metadata.age_years is nan"),
    (Defective(set_metadata("sex", "F")), "metadata", "metadata.sex is 'F'"),
    (Defective(set_metadata("sampling", "bxb")), "metadata", "metadata.sampling is 'bxb'"),
    (Defective(set_metadata("source_sha256", "0" * 64)), "metadata", "metadata.source_sha256"),
    (Defective(set_metadata("format", "canonical")), "metadata",
     "metadata.format is 'canonical'; expected the reader's name 'canonical-csv'"),
    (Defective(set_metadata("test_date", "01.02.2024")), "metadata",
     "metadata.test_date is '01.02.2024'"),
    (Defective(lambda record: record.findings.append(
        Finding("unknown-column", Severity.INFO, "column not used", column="Foo"))),
     "findings", "names no file"),
    (Defective(lambda record: record.metadata.extra.update(hook=lambda: None)), "pickle",
     "the record does not pickle"),
    (EmptyFileRaises(), "damaged_copies", "reading an empty copy (0 bytes) raised IndexError"),
    (EmptyFileGivesARecord(), "damaged_copies", "an empty copy was read into"),
    (SniffRaises(), "sniff_hostile_heads", "sniff raised UnicodeDecodeError"),
    (SniffAnswersNumpy(), "sniff_hostile_heads", "on the empty head; expected a bool"),
])
def test_a_defect_fails_its_check_with_a_precise_message(ramp_csv, reader, check, words):
    with pytest.raises(AssertionError) as err:
        assert_reader_conforms(ramp_csv, reader)
    message = str(err.value)
    assert message.startswith(f"check_{check} ({ramp_csv}): ")
    assert words in message


def test_a_reader_that_is_not_the_one_claiming_the_file_is_told_which_is(bundled_tests, ramp_csv):
    with pytest.raises(AssertionError, match="reader 'zan' does not claim the file; "
                                             "'pyoxynet-csv' does"):
        assert_reader_conforms(bundled_tests[0], "zan")

    class Shadowed(CanonicalCSVReader):  # not registered, and canonical-csv comes first
        name = "lab-csv"

    with pytest.raises(AssertionError, match="claimed by 'canonical-csv', which comes before "
                                             "'lab-csv'"):
        assert_reader_conforms(ramp_csv, Shadowed())


def test_reader_checks_are_named_and_each_passes_on_a_good_sample(ramp_csv):
    checks = reader_checks(ramp_csv)
    assert [c.__name__ for c in checks] == [
        "check_detection", "check_read", "check_columns", "check_dtypes", "check_time",
        "check_units", "check_metadata", "check_findings", "check_pickle",
        "check_damaged_copies", "check_sniff_hostile_heads"]
    for check in checks:
        check()


def test_the_testing_module_is_not_imported_by_cpet_nb():
    import subprocess
    import sys

    code = "import sys, cpet_nb; print('cpet_nb.testing' in sys.modules, 'pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False", "False"]
    code = "import sys, cpet_nb.testing; print('pytest' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["False"]
