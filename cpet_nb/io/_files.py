"""Looking at input paths before anything opens them: only regular files are ever opened.

Opening a FIFO (named pipe) blocks until some other process writes to it, a device such as
``/dev/zero`` never ends, a socket cannot be opened at all, and opening some devices has
effects. So a path is first looked at with ``os.stat`` (symbolic links followed: a link to a
FIFO is a FIFO), and one that is not a regular file is refused without being opened, with a
``not-a-regular-file`` finding that says what it is.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from ..findings import Finding, Severity

#: How findings name each kind of path that is not a regular file.
KINDS: dict[int, str] = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFSOCK: "a socket",
                         stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
                         stat.S_IFDIR: "a folder"}


class NotRegularFile(OSError):
    """A path that exists but is not a regular file; :attr:`kind` says what it is."""

    def __init__(self, path: str | os.PathLike, kind: str) -> None:
        super().__init__(f"{os.fspath(path)} is {kind}, not a file: not opened")
        self.kind = kind


def _kind(mode: int) -> str:
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def special_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists but is not a regular file, e.g. ``"a FIFO (named
    pipe)"``; None for a regular file or a path that cannot be looked at (a missing one: its
    reader reports that)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return None if stat.S_ISREG(mode) else _kind(mode)


def open_regular(path: str | os.PathLike) -> BinaryIO:
    """``open(path, "rb")``, for a regular file only.

    The path is looked at before it is opened (:func:`special_kind`), and the open file is
    looked at again, in case the path was replaced in between; it is opened non-blocking, so
    that even then a FIFO cannot block (reading a regular file is not affected).

    Raises
    ------
    NotRegularFile
        (an ``OSError``) when ``path`` is not a regular file.
    OSError
        When it cannot be opened.
    """
    kind = special_kind(path)
    if kind is not None:
        raise NotRegularFile(path, kind)
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, _kind(mode))
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def not_regular_finding(path: str | os.PathLike, kind: str, *, skipped: bool = False
                        ) -> Finding:
    """The ``not-a-regular-file`` finding for ``path``, which is ``kind``: an error for a path
    the user named, a warning for one found in a folder and ``skipped``."""
    if skipped:
        return Finding("not-a-regular-file", Severity.WARNING,
                       f"{kind}, not a file: not opened, skipped", file=os.fspath(path))
    return Finding("not-a-regular-file", Severity.ERROR, f"{kind}, not a file: not opened",
                   file=os.fspath(path))


def file_problem(path: str | os.PathLike, max_file_bytes: int) -> Finding | None:
    """Why ``path`` cannot be read as an input file, from its ``os.stat`` alone; None if it can.

    Returns
    -------
    Finding or None
        ``file-not-found``, ``not-a-regular-file`` or ``file-too-large`` (over
        ``max_file_bytes``), an error naming the path.
    """
    file = os.fspath(path)
    try:
        status = os.stat(path)
    except (OSError, ValueError):
        return Finding("file-not-found", Severity.ERROR, "no such file", file=file)
    if not stat.S_ISREG(status.st_mode):
        return not_regular_finding(file, _kind(status.st_mode))
    if status.st_size > max_file_bytes:
        return Finding("file-too-large", Severity.ERROR,
                       f"{status.st_size:,} bytes, more than the limit of {max_file_bytes:,} "
                       "bytes (raise max_file_bytes if this file is genuine)", file=file)
    return None
