"""An installed pyarrow that cannot work with the installed NumPy is kept out of the process
(cpet_nb._optional): nothing of it is imported, so none of its libraries stay loaded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import cpet_nb
from cpet_nb._optional import pyarrow_problem

PROJECT = Path(cpet_nb.__file__).resolve().parents[1]

#: Run in a fresh interpreter: import cpet_nb, read and analyse nothing, report what of
#: pyarrow is in sys.modules and whether pandas works and thinks pyarrow is missing.
PROBE = """
import json, sys
import cpet_nb, pandas
from pandas.compat import pa_version_under17p0
print(json.dumps({
    "loaded": sorted(m for m, module in sys.modules.items()
                     if module is not None and m.split(".")[0] in ("pyarrow", "fake_arrow_lib")),
    "pyarrow_for_pandas": not pa_version_under17p0,
    "blocked": getattr(sys.modules.get("cpet_nb._optional"), "PYARROW_BLOCKED", None),
    "record_rows": len(cpet_nb.read(cpet_nb.datasets.pyoxynet_tests()[0]).data),
}))
"""


def _broken_pyarrow(folder: Path, version: str) -> Path:
    """A fake ``pyarrow`` ``version`` on ``folder`` whose import, like a pyarrow built against
    NumPy 1 under NumPy 2, fails after it has loaded a library of its own."""
    package = folder / "pyarrow"
    package.mkdir()
    (folder / "fake_arrow_lib.py").write_text("LOADED = True\n")
    (package / "lib.py").write_text("import fake_arrow_lib\n")
    (package / "__init__.py").write_text(
        "from . import lib\n"
        "raise ImportError('numpy.core.multiarray failed to import (fake pyarrow)')\n")
    info = folder / f"pyarrow-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pyarrow\nVersion: {version}\n")
    return folder


def _probe(path_entry: Path) -> dict:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(path_entry), str(PROJECT),
                                          os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_pyarrow_built_for_numpy_1_leaves_nothing_loaded(tmp_path):
    found = _probe(_broken_pyarrow(tmp_path, "14.0.2"))
    assert found["loaded"] == []  # neither pyarrow.lib nor what it imported
    assert found["pyarrow_for_pandas"] is False
    assert found["blocked"].startswith("pyarrow 14.0.2 was built against NumPy 1")
    assert found["record_rows"] > 100  # pandas, and reading, work without it


@pytest.mark.parametrize(("pyarrow", "numpy", "blocked"), [
    ("14.0.2", "2.4.6", True), ("15.0.0", "2.0.0", True), ("16.0.0", "2.4.6", False),
    ("26.0.1", "2.4.6", False), ("14.0.2", "1.26.4", False), (None, "2.4.6", False),
    ("14.0.2", None, False), ("dev", "2.4.6", False),
])
def test_which_pyarrow_is_blocked(pyarrow, numpy, blocked):
    assert (pyarrow_problem(pyarrow, numpy) is not None) is blocked
