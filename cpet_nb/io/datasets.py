"""Real CPET tests that come with the install: pyoxynet's 139 bundled tests."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path


def pyoxynet_data_dir() -> Path:
    """The folder of pyoxynet's bundled tests (``pyoxynet/data_test``).

    Found without importing pyoxynet (whose ``__init__`` imports matplotlib and more).
    """
    spec = find_spec("pyoxynet")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pyoxynet is not installed: pip install pyoxynet==0.1.12")
    path = Path(list(spec.submodule_search_locations)[0]) / "data_test"
    if not path.is_dir():
        raise FileNotFoundError(f"pyoxynet's data_test folder is missing: {path}")
    return path


def pyoxynet_tests() -> list[Path]:
    """Paths of pyoxynet's 139 bundled real tests (1 s grid, per-second domain labels).

    ``data_test.csv`` (pyoxynet's default example) comes first, then the ``ramp_real_test_*``
    and ``resting_real_test_*`` files in natural order. The ``database_statistics_*`` tables
    are not tests and are left out.
    """
    folder = pyoxynet_data_dir()
    tests = [p for p in folder.glob("*.csv") if "_real_test_" in p.name]
    tests.sort(key=lambda p: (p.name.split("_")[0], int(p.stem.rsplit("_", 1)[1])))
    return [folder / "data_test.csv", *tests]
