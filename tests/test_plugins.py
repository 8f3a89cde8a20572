"""Reader plugins (the ``cpet_nb.readers`` entry points): a broken one warns and is skipped,
a defective one cannot break the others, a good one works like a built-in reader."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest
from synthetic import ramp_test

import cpet_nb
from cpet_nb.findings import CPETError
from cpet_nb.io import detect_format, registry
from cpet_nb.testing import assert_reader_conforms

PLUGINS_MODULE = '''"""Reader plugins for cpet_nb's plugin tests."""
from cpet_nb.io._tabular import build_record, load_text, read_csv_text


class GoodReader:
    """Canonical CSV after a 'FAKE-GOOD' line."""

    name = "fake-good"
    description = "test plugin: canonical CSV after a FAKE-GOOD line"

    def sniff(self, head, path):
        return head.startswith(b"FAKE-GOOD\\n")

    def read(self, path):
        text, metadata = load_text(path, self.name)
        frame = read_csv_text(text, str(path), skiprows=1)
        return build_record(frame, metadata, {}, file=str(path))


class SniffRaises(GoodReader):
    name = "fake-sniff-raises"

    def sniff(self, head, path):
        raise KeyError("sniffer bug")


class ReadRaises(GoodReader):
    name = "fake-read-raises"

    def sniff(self, head, path):
        return head.startswith(b"FAKE-READ-RAISES\\n")

    def read(self, path):
        return {}["reader bug"]


GOOD = GoodReader()
SNIFF_RAISES = SniffRaises()
READ_RAISES = ReadRaises()
NOT_A_READER = "fake-good"
'''
MODULES = ("cpetnb_fake_plugins", "cpetnb_broken_plugin")
#: (name, value) of each entry point, in the order entry_points() gives them.
ENTRY_POINTS = [
    ("broken-import", "cpetnb_broken_plugin:READER"),
    ("not-a-reader", "cpetnb_fake_plugins:NOT_A_READER"),
    ("a-class", "cpetnb_fake_plugins:GoodReader"),
    ("sniff-raises", "cpetnb_fake_plugins:SNIFF_RAISES"),
    ("read-raises", "cpetnb_fake_plugins:READ_RAISES"),
    ("good", "cpetnb_fake_plugins:GOOD"),
]
#: A synthetic ramp test in canonical columns, the data of the plugins' files.
DATA = ramp_test().to_csv(index=False)


@pytest.fixture()
def plugins(tmp_path, monkeypatch):
    """The entry points above, on modules written to ``tmp_path``; ``readers()`` reloaded
    (its warnings about the plugins that do not load are the first test's subject)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "cpetnb_fake_plugins.py").write_text(PLUGINS_MODULE)
    (site / "cpetnb_broken_plugin.py").write_text("import cpetnb_dependency_not_installed\n")
    monkeypatch.syspath_prepend(str(site))
    found = [EntryPoint(name, value, registry.ENTRY_POINT_GROUP) for name, value in ENTRY_POINTS]
    monkeypatch.setattr(registry, "entry_points",
                        lambda group: found if group == registry.ENTRY_POINT_GROUP else [])
    registry.readers.cache_clear()
    with pytest.warns(RuntimeWarning, match="is skipped"):
        registry.readers()
    yield
    registry.readers.cache_clear()
    for module in MODULES:
        sys.modules.pop(module, None)


def write(folder, name: str, text: str):
    path = folder / name
    path.write_text(text)
    return path


def plugin_warnings(record) -> dict[str, str]:
    """Each RuntimeWarning's text by the plugin it names first (its quoted entry-point or
    reader name)."""
    return {str(w.message).split("'")[1]: str(w.message) for w in record
            if issubclass(w.category, RuntimeWarning)}


def test_plugins_that_cannot_load_are_skipped_with_a_warning(plugins):
    registry.readers.cache_clear()
    with pytest.warns(RuntimeWarning) as record:
        names = [r.name for r in registry.readers()]
    warned = plugin_warnings(record)
    assert sorted(warned) == ["a-class", "broken-import", "not-a-reader"]
    assert "cpetnb_broken_plugin:READER" in warned["broken-import"]
    assert "ModuleNotFoundError" in warned["broken-import"]
    assert "cpetnb_dependency_not_installed" in warned["broken-import"]
    assert "cpetnb_fake_plugins:NOT_A_READER" in warned["not-a-reader"]
    assert "'fake-good', not a reader object" in warned["not-a-reader"]
    assert "<class 'cpetnb_fake_plugins.GoodReader'>, not a reader object" in warned["a-class"]
    assert names[-3:] == ["fake-sniff-raises", "fake-read-raises", "fake-good"]
    assert "pyoxynet-csv" in names and "breeze" in names


def test_built_in_readers_still_detect_their_files(plugins, bundled_tests, ramp_csv):
    assert detect_format(bundled_tests[0]).name == "pyoxynet-csv"
    assert cpet_nb.analyze(ramp_csv).status != "error"


def test_a_sniff_that_raises_warns_once_and_the_next_reader_is_tried(plugins, tmp_path):
    good = write(tmp_path, "good.txt", "FAKE-GOOD\n" + DATA)
    notes = write(tmp_path, "notes.txt", "not a CPET export\n")
    with pytest.warns(RuntimeWarning) as record:
        assert cpet_nb.read(good).metadata.format == "fake-good"
        assert cpet_nb.read(good).metadata.format == "fake-good"
        with pytest.raises(CPETError, match="unsupported-format.*fake-good"):
            cpet_nb.read(notes)
    warned = [str(w.message) for w in record]
    assert len(warned) == 1  # once per plugin, not once per file
    assert "'fake-sniff-raises'" in warned[0]
    assert "sniff-raises = cpetnb_fake_plugins:SNIFF_RAISES" in warned[0]
    assert "KeyError: 'sniffer bug'" in warned[0] and "not claiming the file" in warned[0]


def test_an_exception_in_a_plugins_read_is_a_finding_naming_it(plugins, tmp_path):
    path = write(tmp_path, "bad.txt", "FAKE-READ-RAISES\n" + DATA)
    with pytest.warns(RuntimeWarning):  # the sniff that raises, tried on the way
        with pytest.raises(CPETError) as err:
            cpet_nb.read(path)
        result = cpet_nb.analyze(path)
    finding = err.value.finding
    assert (finding.code, finding.severity.value, finding.file) == ("internal-error", "error",
                                                                    str(path))
    assert "reader plugin 'fake-read-raises'" in finding.message
    assert "read-raises = cpetnb_fake_plugins:READ_RAISES" in finding.message
    assert "KeyError: 'reader bug'" in finding.message
    assert result.status == "error" and [f.code for f in result.findings] == ["internal-error"]


def test_a_good_plugin_conforms_and_is_analysed(plugins, tmp_path):
    path = write(tmp_path, "good.txt", "FAKE-GOOD\n" + DATA)
    with pytest.warns(RuntimeWarning, match="fake-sniff-raises"):
        record = assert_reader_conforms(path)
        result = cpet_nb.analyze(path)
    assert record.metadata.format == "fake-good" and len(record.data) == len(ramp_test())
    assert result.status == "ok" and result.metadata.format == "fake-good"
    assert result.vt1.time_s < result.vt2.time_s


def test_the_conformance_check_sees_a_plugins_own_exceptions(plugins, tmp_path):
    path = write(tmp_path, "bad.txt", "FAKE-READ-RAISES\n" + DATA)
    with pytest.warns(RuntimeWarning, match="fake-sniff-raises"), \
            pytest.raises(AssertionError, match=r"check_read .*reader 'fake-read-raises' raised "
                                                r"KeyError: 'reader bug' \(a reader raises only"):
        assert_reader_conforms(path, "fake-read-raises")
