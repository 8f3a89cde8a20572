"""Turn what a user names (files, folders, globs, ZIP archives) into the list of files to analyse.

Policy: a file named explicitly always gets a row in the results (an error row if it cannot
be read). Files found by walking a folder or expanding a glob are first sniffed, and those
that no reader recognises (a README, a pickle, a statistics table) are skipped and listed,
not reported as failed tests. Hidden files and folders (``.name``), ``__MACOSX`` and
``__pycache__`` are never walked into.

Only regular files are ever opened (:mod:`cpet_nb.io._files`): a FIFO, socket or device
(or a link to one) is never opened, since that can block forever or never end. Named
explicitly, it gets its row like any named file, with a ``not-a-regular-file`` error; found in
a folder or by a glob, it is skipped, listed in :attr:`Inputs.skipped`, with a
``not-a-regular-file`` warning in :attr:`Inputs.findings` saying what it is.

A ZIP archive (by its magic bytes, whether named, matched by a glob or found in a folder;
see :func:`cpet_nb.io.archives.is_archive`) is a container, not a file: its members are extracted
safely into a temporary folder (:mod:`cpet_nb.io.archives`: size, ratio and entry limits, no path
traversal, links or encrypted members) and then treated like files found in a folder. The
archive itself gets no row; what was refused is in :attr:`Inputs.findings`. The temporary
folders live as long as the :class:`Inputs`: use it as a context manager (or call
:meth:`Inputs.cleanup`) once the files have been analysed::

    with expand_inputs(paths) as inputs:
        for item in inputs.files:
            analyze(item.path)
"""

from __future__ import annotations

import glob
import os
import shutil
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..findings import CPETError, Finding, UnsupportedFormat
from . import DEFAULT_MAX_FILE_BYTES, detect_format
from ._files import not_regular_finding, special_kind
from .archives import ArchiveLimits, extract_zip, is_archive

SKIPPED_DIRS = {"__MACOSX", "__pycache__"}
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class InputFile:
    """One file to analyse; ``explicit`` when the user named it rather than a folder/glob.

    For a member extracted from a ZIP archive, ``path`` is the extracted copy (in a
    temporary folder), ``archive`` the archive as given and ``member`` its name inside.
    """

    path: Path
    explicit: bool
    archive: Path | None = None
    member: str | None = None

    @property
    def label(self) -> str:
        """How to name the file to the user: its path, or ``archive/member``."""
        if self.archive is None:
            return str(self.path)
        return f"{self.archive}/{self.member}"


@dataclass
class Inputs:
    """Files to analyse, files skipped because no reader recognised them, archive findings.

    Attributes
    ----------
    files : list of InputFile
    skipped : list of Path
        Discovered files (in folders, globs or archives) that no reader recognised, or that
        are not regular files; for an archive member, ``archive / member`` (its name, not the
        temporary copy).
    findings : list of Finding
        Archives and archive members that were refused or not expanded (codes
        ``unsafe-archive``, ``corrupt-archive``, ``unsafe-archive-member``,
        ``encrypted-archive-member``, ``nested-archive``), and discovered paths skipped
        because they are not regular files (``not-a-regular-file``, the reason for that
        entry of ``skipped``). These inputs have no entry in ``files``.
    temp_dirs : list of Path
        Temporary folders holding extracted archive members. :meth:`cleanup` (or leaving a
        ``with`` block) removes them; so does garbage collection of this object, or the end
        of the interpreter, as a safety net.
    """

    files: list[InputFile]
    skipped: list[Path]
    findings: list[Finding] = field(default_factory=list)
    temp_dirs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._finalizer = weakref.finalize(self, _remove_dirs, self.temp_dirs)

    def release_temp_dirs(self) -> list[Path]:
        """Take over the temporary folders: they are no longer removed by :meth:`cleanup` or
        garbage collection (e.g. a batch keeps archive members until its job ends)."""
        released = list(self.temp_dirs)
        self.temp_dirs.clear()
        return released

    def cleanup(self) -> None:
        """Remove the temporary folders of extracted archive members (safe to call twice)."""
        self._finalizer()

    def __enter__(self) -> Inputs:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()


def _remove_dirs(dirs: list[Path]) -> None:
    for folder in dirs:
        shutil.rmtree(folder, ignore_errors=True)
    dirs.clear()


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return found


def expand_inputs(inputs: Iterable[str | os.PathLike],
                  max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, *,
                  archive_limits: ArchiveLimits | None = None,
                  temp_dir: str | os.PathLike | None = None, sniff: bool = True) -> Inputs:
    """Expand files, folders (recursively), glob patterns and ZIP archives, in the order given.

    Parameters
    ----------
    inputs : iterable of str or path-like
    max_file_bytes : int
        Used when sniffing discovered files (too-large files are kept, to be reported), and
        as the per-member limit of archives unless ``archive_limits`` is given.
    archive_limits : ArchiveLimits, optional
        Limits for ZIP archives (default: :class:`~cpet_nb.io.archives.ArchiveLimits` with
        ``max_member_bytes=max_file_bytes``).
    temp_dir : str or path-like, optional
        Where to create the temporary folders for archive members (default: the system's).
    sniff : bool
        Skip discovered files that no reader recognises. Pass False when the files will be
        read with a column mapping (which no sniffing can recognise): every discovered file
        is then taken, hidden files and archives' junk still excepted.

    Returns
    -------
    Inputs
        Each file once (first mention wins), the discovered files that were skipped and the
        findings about archives and skipped non-regular files. Remove its temporary folders
        when done (``with`` or ``cleanup()``).
    """
    limits = archive_limits or ArchiveLimits(max_member_bytes=max_file_bytes)
    seen: set[Path] = set()
    result = Inputs([], [])
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            discovered = _walk(path)
        elif not path.exists() and GLOB_CHARS & set(text):
            discovered = [Path(p) for p in sorted(glob.glob(text, recursive=True))
                          if not Path(p).is_dir()]
        else:
            discovered = None
        candidates = [(path, True)] if discovered is None else [(p, False) for p in discovered]
        for candidate, explicit in candidates:
            key = candidate.resolve()
            if key in seen:
                continue
            seen.add(key)
            kind = special_kind(candidate)
            if kind is not None and not explicit:
                result.skipped.append(candidate)
                result.findings.append(not_regular_finding(candidate, kind, skipped=True))
            elif kind is None and is_archive(candidate, limits):
                _add_archive(candidate, result, limits, temp_dir, max_file_bytes, sniff)
            elif not explicit and sniff and not _recognised(candidate, max_file_bytes):
                result.skipped.append(candidate)
            else:
                result.files.append(InputFile(candidate, explicit))
    return result


def _add_archive(archive: Path, result: Inputs, limits: ArchiveLimits,
                 temp_dir: str | os.PathLike | None, max_file_bytes: int, sniff: bool) -> None:
    extraction = extract_zip(archive, limits, temp_dir)
    if extraction.folder is not None:
        result.temp_dirs.append(extraction.folder)
    result.findings += extraction.findings
    for member in sorted(extraction.files, key=lambda m: m.path):
        if not sniff or _recognised(member.path, max_file_bytes):
            result.files.append(InputFile(member.path, False, archive, member.member))
        else:
            result.skipped.append(archive / member.member)  # its name: the copy is temporary


def _recognised(path: Path, max_file_bytes: int) -> bool:
    try:
        detect_format(path, max_file_bytes)
    except UnsupportedFormat:
        return False
    except CPETError:  # too large or vanished: keep it, so the user is told
        return True
    return True
