"""Shared fixtures."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pandas as pd
import pytest

import cpet_nb

sys.path.insert(0, str(Path(__file__).parent))

REFERENCE_CSV = Path(__file__).parent / "data" / "pyoxynet_reference.csv"
CURVES_CSV = Path(__file__).parent / "data" / "pyoxynet_curves.csv.gz"


@pytest.fixture(scope="session")
def bundled_tests() -> list[Path]:
    """pyoxynet's 139 bundled real tests."""
    return cpet_nb.datasets.pyoxynet_tests()


@pytest.fixture(scope="session")
def bundled_results(bundled_tests) -> dict[str, cpet_nb.FileResult]:
    """cpet_nb's results on every bundled test, by file name (computed once per session)."""
    return {p.name: cpet_nb.analyze(p) for p in bundled_tests}


@pytest.fixture(scope="session")
def reference() -> pd.DataFrame:
    """pyoxynet's own results on its bundled tests (tools/make_pyoxynet_reference.py)."""
    return pd.read_csv(REFERENCE_CSV, comment="#").set_index("file")


@pytest.fixture()
def ramp_csv(tmp_path) -> Path:
    """A synthetic breath-by-breath ramp test as a canonical CSV with metadata."""
    from synthetic import ramp_test, write_canonical_csv

    path = tmp_path / "ramp.csv"
    write_canonical_csv(ramp_test(), path, weight_kg=72.5, height_cm=178, age_years=34,
                        sex="female")
    return path


MISBEHAVING_PLUGIN = '''"""A cpet_nb reader plugin that misbehaves on purpose (limit tests).

A file whose first line is ``#cpet-nb-test: hang`` (or ``explode``, ``crash``) makes the
reader loop forever, allocate without bound or abort the process.
"""
import os
import time

PREFIX = b"#cpet-nb-test: "


class MisbehavingReader:
    name = "misbehaving"
    description = "test plugin: hangs, explodes or crashes on request"

    def sniff(self, head, path):
        return head.startswith(PREFIX)

    def read(self, path):
        kind = path.read_bytes().splitlines()[0][len(PREFIX):].strip()
        if kind == b"hang":
            while True:
                time.sleep(0.01)
        if kind == b"explode":
            hoard = []
            while True:
                hoard.append(bytearray(64 * 1024 * 1024))
        if kind == b"crash":
            os.abort()
        raise ValueError(f"unknown misbehaviour {kind!r}")


READER = MisbehavingReader()
'''


@pytest.fixture(scope="session")
def misbehaving_plugin(tmp_path_factory) -> Path:
    """A third-party reader plugin (a real entry point on ``sys.path``) that hangs, exhausts
    memory or crashes on marked files; processes started afterwards inherit it."""
    from cpet_nb.io import registry

    site = tmp_path_factory.mktemp("plugin-site")
    (site / "cpetnb_misbehaving.py").write_text(MISBEHAVING_PLUGIN)
    info = site / "cpetnb_misbehaving-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cpetnb-misbehaving\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[cpet_nb.readers]\n"
                                           "misbehaving = cpetnb_misbehaving:READER\n")
    sys.path.insert(0, str(site))
    registry.readers.cache_clear()
    yield site
    sys.path.remove(str(site))
    registry.readers.cache_clear()


def misbehaving_file(folder: Path, kind: str) -> Path:
    """A file the misbehaving plugin reads by ``kind``: hang, explode or crash."""
    path = folder / f"{kind}.txt"
    path.write_text(f"#cpet-nb-test: {kind}\n")
    return path


@pytest.fixture(scope="module")
def dask_client(misbehaving_plugin, tmp_path_factory):
    """A local dask cluster of 2 worker processes (1 thread each), for batch tests. Its
    workers' folder is its own (not the temporary folder a test may point ``tempfile`` at)."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None,
                      local_directory=str(tmp_path_factory.mktemp("dask-workers"))) as cluster, \
            Client(cluster, set_as_default=False) as client:
        yield client


def distinct_copies(sources: list[Path], folder: Path, n: int, start: int = 0) -> list[Path]:
    """``n`` copies of ``sources`` (cycled) in ``folder``, each unique in content (a comment
    line appended: the reader skips it), so that a job store does not reuse their results."""
    folder.mkdir()
    paths = []
    for i in range(start, start + n):
        source = sources[i % len(sources)]
        target = folder / f"{i:04d}-{source.name}"
        target.write_bytes(source.read_bytes() + f"\n# copy {i}\n".encode())
        paths.append(target)
    return paths


def without_hanging(call, *args, timeout_s: float = 60.0, **kwargs):
    """``call(*args, **kwargs)`` in a thread; its result, or an AssertionError when it is still
    running after ``timeout_s`` (a hang detector, so that a regression fails instead of
    blocking the test run; not a limit on how fast the code must be)."""
    outcome = {}

    def run():
        try:
            outcome["value"] = call(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise AssertionError(f"{getattr(call, '__name__', call)} still running after "
                             f"{timeout_s:g} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
