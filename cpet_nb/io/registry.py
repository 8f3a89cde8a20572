"""Reader registry: which reader claims a file, decided by its content.

A reader is any object with ``name``, ``description``, ``sniff(head, path)`` and
``read(path)``. :func:`readers` lists the built-in readers first; a lab adds its own through
the ``cpet_nb.readers`` entry-point group (the entry point names a reader object, not a
class)::

    [project.entry-points."cpet_nb.readers"]
    my_cart = "my_lab.readers:MY_CART_READER"

A plugin cannot break the others (as in xarray's ``backends/plugins.py``): an entry point
that fails to load or does not name a reader is skipped with a :class:`RuntimeWarning`; a
plugin whose ``sniff`` raises is warned about once and does not claim the file; an exception
from its ``read`` becomes an ``internal-error`` finding naming it. Check a reader with
:func:`cpet_nb.testing.assert_reader_conforms`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..findings import CPETError, Finding, Severity, UnsupportedFormat
from ..record import CPETRecord
from ._excel import describe_workbook
from ._sniff import UTF16_BOMS, head_lines

#: Bytes read from the start of a file for sniffing.
SNIFF_BYTES = 64 * 1024
#: The entry-point group through which plugins register readers.
ENTRY_POINT_GROUP = "cpet_nb.readers"


@runtime_checkable
class Reader(Protocol):
    """What every reader provides."""

    name: str
    description: str

    def sniff(self, head: bytes, path: Path) -> bool:
        """Whether this reader can read a file that starts with ``head``."""

    def read(self, path: Path) -> CPETRecord:
        """Read ``path`` into a canonical record; raise :class:`~cpet_nb.CPETError` if not."""


class PluginReader:
    """A reader registered as an entry point, isolated so that its defects stay its own.

    ``sniff`` that raises warns (once) and answers "not mine"; ``read`` that raises anything
    but :class:`~cpet_nb.CPETError` (or :class:`MemoryError`, which the batch sandbox turns
    into a memory-limit finding) raises a ``CPETError`` with an ``internal-error`` finding
    naming the plugin.

    Parameters
    ----------
    reader : Reader
        The object the entry point names.
    entry_point : importlib.metadata.EntryPoint
        Where it came from, named in warnings and findings.
    """

    def __init__(self, reader: Reader, entry_point: EntryPoint) -> None:
        self.reader = reader
        self.entry_point = entry_point
        self.name: str = reader.name
        self.description: str = reader.description
        self._sniff_warned = False

    def __repr__(self) -> str:
        return f"PluginReader({self.name!r}, entry point {self._origin})"

    @property
    def _origin(self) -> str:
        return f"{self.entry_point.name} = {self.entry_point.value}"

    def sniff(self, head: bytes, path: Path) -> bool:
        try:
            return bool(self.reader.sniff(head, path))
        except Exception as exc:  # noqa: BLE001 - a plugin's defect must not stop detection
            if not self._sniff_warned:
                self._sniff_warned = True
                warnings.warn(f"cpet_nb reader plugin {self.name!r} ({self._origin}): sniff "
                              f"raised {type(exc).__name__}: {exc}; it is treated as not "
                              "claiming the file (warned once)", RuntimeWarning, stacklevel=2)
            return False

    def read(self, path: Path) -> CPETRecord:
        try:
            return self.reader.read(path)
        except (CPETError, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - a plugin's defect becomes a finding
            raise CPETError(Finding(
                "internal-error", Severity.ERROR,
                f"reader plugin {self.name!r} ({self._origin}) raised "
                f"{type(exc).__name__}: {exc}", file=str(path))) from exc


def _plugin_readers() -> Iterator[PluginReader]:
    """The readers registered in :data:`ENTRY_POINT_GROUP`; an entry point that fails to load,
    or does not name a reader object, is skipped with a :class:`RuntimeWarning`."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            reader = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not hide the others
            warnings.warn(f"cpet_nb reader plugin {ep.name!r} ({ep.value}) could not be loaded "
                          f"and is skipped: {type(exc).__name__}: {exc}", RuntimeWarning,
                          stacklevel=3)
            continue
        if isinstance(reader, type) or not isinstance(reader, Reader):
            warnings.warn(f"cpet_nb reader plugin {ep.name!r} ({ep.value}) is skipped: it names "
                          f"{reader!r}, not a reader object with name, description, sniff and "
                          "read", RuntimeWarning, stacklevel=3)
            continue
        yield PluginReader(reader, ep)


@lru_cache(maxsize=1)
def readers() -> tuple[Reader, ...]:
    """All readers: built-in first, then those registered as entry points (each loaded once;
    see :class:`PluginReader`)."""
    from . import breeze, canonical_csv, cortex, cosmed, parvo, pyoxynet_csv, vyntus, zan

    return (pyoxynet_csv.READER, canonical_csv.READER, zan.READER, *cosmed.READERS,
            *cortex.READERS, *parvo.READERS, vyntus.READER, breeze.READER, *_plugin_readers())


def reader_by_name(name: str) -> Reader:
    """The registered reader called ``name``."""
    for reader in readers():
        if reader.name == name:
            return reader
    known = ", ".join(r.name for r in readers())
    raise ValueError(f"no reader named {name!r}; known readers: {known}")


def describe_head(head: bytes, path: Path | None = None) -> str:
    """A short, printable account of what a file starts with, for error messages.

    With ``path``, a workbook is described as one, with the first cells of its first sheet
    (:func:`~cpet_nb.io._excel.describe_workbook`), not as binary content.
    """
    if not head:
        return "the file is empty"
    workbook = describe_workbook(head, path) if path is not None else None
    if workbook is not None:
        return workbook
    text = head[:200]
    if b"\x00" in text[:64] and not text.startswith(UTF16_BOMS):
        return f"binary content starting with bytes {text[:8].hex(' ')}"
    first_line = (head_lines(text, 1) or [""])[0]
    return f"first line {first_line[:120]!r}"


def detect_reader(path: Path, head: bytes) -> Reader:
    """The first reader whose ``sniff`` accepts ``head``.

    Raises
    ------
    UnsupportedFormat
        When none does; the message says what the file starts with and which formats exist.
    """
    for reader in readers():
        if reader.sniff(head, path):
            return reader
    known = "; ".join(f"{r.name} ({r.description})" for r in readers())
    raise UnsupportedFormat(
        Finding(
            "unsupported-format",
            Severity.ERROR,
            f"not a recognised CPET export: {describe_head(head, path)}. Supported formats: "
            f"{known}",
            file=str(path),
        )
    )
