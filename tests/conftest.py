"""Shared fixtures."""

from __future__ import annotations

import sys
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
