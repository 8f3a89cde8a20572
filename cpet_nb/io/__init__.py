"""Reading CPET exports into :class:`~cpet_nb.record.CPETRecord`.

:func:`read` checks the file, picks a reader by content (:mod:`.registry`) and returns a
clean canonical record, or raises :class:`~cpet_nb.findings.CPETError` carrying a finding.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..findings import CPETError
from ..record import CPETRecord
from ._excel import clear_sheet_cache
from ._files import file_problem, open_regular
from .generic import ColumnMapping, read_mapped
from .registry import SNIFF_BYTES, Reader, detect_reader, reader_by_name, readers

#: Default largest file accepted, in bytes (10 MB); a 60-minute breath-by-breath export with
#: every column a cart can write stays well below it.
DEFAULT_MAX_FILE_BYTES = 10_000_000

__all__ = ["DEFAULT_MAX_FILE_BYTES", "ColumnMapping", "Reader", "detect_format", "read",
           "readers"]


def _checked_head(path: Path, max_file_bytes: int) -> bytes:
    """The first bytes of a file that exists, is a regular file and is within the limit."""
    problem = file_problem(path, max_file_bytes)
    if problem is not None:
        raise CPETError(problem)
    with open_regular(path) as fh:
        return fh.read(SNIFF_BYTES)


def detect_format(path: str | os.PathLike, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Reader:
    """The reader that recognises ``path`` by content.

    Raises
    ------
    CPETError
        ``file-not-found``, ``not-a-regular-file``, ``file-too-large`` or
        ``unsupported-format``.
    """
    path = Path(path)
    try:
        return detect_reader(path, _checked_head(path, max_file_bytes))
    finally:
        clear_sheet_cache()


def read(path: str | os.PathLike, *, format: str | None = None,
         mapping: ColumnMapping | None = None,
         max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> CPETRecord:
    """Read one CPET export into a canonical record.

    Parameters
    ----------
    path : str or path-like
        The file.
    format : str, optional
        A reader name (see :func:`readers`) to skip content detection.
    mapping : ColumnMapping, optional
        Read a CSV/XLSX layout no built-in reader knows, with this column mapping (see
        :mod:`cpet_nb.io.generic`; saved mappings are lab profiles, :mod:`cpet_nb.io.profiles`).
    max_file_bytes : int
        Files larger than this are refused with a ``file-too-large`` finding.

    Returns
    -------
    CPETRecord
        Canonical columns and units; reader findings in ``record.findings``.

    Raises
    ------
    CPETError
        With a finding that names the file and says what was expected and found (an
        ``internal-error`` finding naming the plugin when a plugin reader fails).

    Examples
    --------
    >>> import cpet_nb
    >>> record = cpet_nb.read(cpet_nb.datasets.pyoxynet_tests()[0])
    >>> record.metadata.format, record.metadata.sampling
    ('pyoxynet-csv', '1 s grid')
    """
    if format and mapping:
        raise ValueError("give either format or mapping, not both")
    path = Path(path)
    head = _checked_head(path, max_file_bytes)
    try:
        if mapping is not None:
            return read_mapped(path, mapping)
        reader = reader_by_name(format) if format else detect_reader(path, head)
        return reader.read(path)
    except CPETError as exc:
        raise CPETError(exc.finding.with_file(str(path))) from None
    finally:
        clear_sheet_cache()  # a workbook's sheets, parsed once for detection and reading
