"""Reader registry: which reader claims a file, decided by its content.

A reader is any object with ``name``, ``description``, ``sniff(head, path)`` and
``read(path)``. Built-in readers are listed in :data:`BUILTIN_READERS`; a lab adds its own
through the ``cpet_nb.readers`` entry-point group (the entry point names a reader object)::

    [project.entry-points."cpet_nb.readers"]
    my_cart = "my_lab.readers:MyCartReader"
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Protocol, runtime_checkable

from ..findings import Finding, Severity, UnsupportedFormat
from ..record import CPETRecord
from ._excel import describe_workbook
from ._sniff import UTF16_BOMS, head_lines

#: Bytes read from the start of a file for sniffing.
SNIFF_BYTES = 64 * 1024


@runtime_checkable
class Reader(Protocol):
    """What every reader provides."""

    name: str
    description: str

    def sniff(self, head: bytes, path: Path) -> bool:
        """Whether this reader can read a file that starts with ``head``."""

    def read(self, path: Path) -> CPETRecord:
        """Read ``path`` into a canonical record; raise :class:`~cpet_nb.CPETError` if not."""


@lru_cache(maxsize=1)
def readers() -> tuple[Reader, ...]:
    """All readers: built-in first, then those registered as entry points."""
    from . import breeze, canonical_csv, cortex, cosmed, parvo, pyoxynet_csv, vyntus, zan

    found: list[Reader] = [pyoxynet_csv.READER, canonical_csv.READER, zan.READER,
                           *cosmed.READERS, *cortex.READERS, *parvo.READERS,
                           vyntus.READER, breeze.READER]
    for ep in entry_points(group="cpet_nb.readers"):
        reader = ep.load()
        if not isinstance(reader, Reader):
            raise TypeError(f"entry point {ep.name!r} ({ep.value}) is not a cpet_nb reader")
        found.append(reader)
    return tuple(found)


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
