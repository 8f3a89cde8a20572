"""Every reader returns the same records as when ``tests/data/reader_reference.json`` was made
(``tools/make_reader_reference.py``): the same columns, dtypes and values exactly, the same
metadata and findings, on pyoxynet's 139 bundled tests, every shared sample file and a
generated canonical CSV."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reader_digests import REFERENCE, inputs, record_digest
from samples import SAMPLES

_REFERENCE = json.loads(REFERENCE.read_text())


@pytest.fixture(autouse=True)
def builtin_readers_only(monkeypatch):
    """The reference was made with cpet_nb's own readers: a plugin another test registered
    for the session (conftest's ``misbehaving_plugin``) would be named among the supported
    formats of every refusal."""
    from cpet_nb.io import registry

    monkeypatch.setattr(registry, "_plugin_readers", lambda: iter(()))
    registry.readers.cache_clear()
    yield
    registry.readers.cache_clear()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    return dict(inputs(tmp_path_factory.mktemp("reader-reference")))


def test_reference_covers_every_input(files):
    keys = set(files)
    expected = {key for key in _REFERENCE
                if SAMPLES.is_dir() or not key.startswith("samples/")}
    assert keys == expected


@pytest.mark.parametrize("key", sorted(_REFERENCE))
def test_record_matches_reference(key, files):
    if key.startswith("samples/") and not SAMPLES.is_dir():
        pytest.skip(f"real CPET samples not available ({SAMPLES})")
    path = files[key]
    assert record_digest(path) == _REFERENCE[key]
