"""Keeping an installed optional library that cannot work out of the process.

pandas imports pyarrow as it is imported itself, when pyarrow is installed, and carries on
without it when that import fails. A pyarrow built against NumPy 1 fails to import under
NumPy 2, but only after its C++ libraries (some 35 MiB) are loaded, and they stay loaded (a
shared library is never unloaded), as do the pyarrow submodules imported before the failure.
So before pandas is first imported, :func:`block_broken_pyarrow` reads pyarrow's version
from its installed metadata (nothing of pyarrow is imported) and, when it cannot work with
the installed NumPy, puts ``None`` in ``sys.modules["pyarrow"]``: every ``import pyarrow``
then fails at once with an ``ImportError``, which pandas takes as "not installed" (the
mechanism ``importlib`` documents for blocking an import).
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version

#: First pyarrow release built against NumPy 2 (pyarrow 16.0.0, April 2024; older wheels
#: were compiled against NumPy 1's C API and fail to import under NumPy 2).
PYARROW_FIRST_NUMPY2_MAJOR = 16


def _major(version_text: str) -> int | None:
    """The major version number of a version string, None when it does not start with one."""
    digits = version_text.split(".", 1)[0]
    return int(digits) if digits.isdigit() else None


def pyarrow_problem(pyarrow_version: str | None, numpy_version: str | None) -> str | None:
    """Why a pyarrow of ``pyarrow_version`` cannot be imported with NumPy ``numpy_version``
    (None when it can, or either is not installed).

    Examples
    --------
    >>> pyarrow_problem("14.0.2", "2.1.0")
    'pyarrow 14.0.2 was built against NumPy 1 and cannot be imported with NumPy 2.1.0'
    >>> pyarrow_problem("16.1.0", "2.1.0") is None
    True
    """
    if pyarrow_version is None or numpy_version is None:
        return None
    pyarrow_major, numpy_major = _major(pyarrow_version), _major(numpy_version)
    if pyarrow_major is None or numpy_major is None:
        return None
    if numpy_major >= 2 and pyarrow_major < PYARROW_FIRST_NUMPY2_MAJOR:
        return (f"pyarrow {pyarrow_version} was built against NumPy 1 and cannot be imported "
                f"with NumPy {numpy_version}")
    return None


def _installed_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def block_broken_pyarrow() -> str | None:
    """Block ``import pyarrow`` in this process when the installed pyarrow cannot work
    (:func:`pyarrow_problem`), unless something imported it already.

    Returns
    -------
    str or None
        The reason it was blocked, or None.
    """
    if "pyarrow" in sys.modules:
        return None
    problem = pyarrow_problem(_installed_version("pyarrow"), _installed_version("numpy"))
    if problem is not None:
        sys.modules["pyarrow"] = None  # type: ignore[assignment]
    return problem


#: Why ``import pyarrow`` is blocked in this process (None: it is not); decided when cpet_nb
#: is first imported, which imports this module before anything imports pandas.
PYARROW_BLOCKED = block_broken_pyarrow()
