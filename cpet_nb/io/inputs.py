"""Turn what a user names (files, folders, globs, ZIP archives) into an account of every input.

Every input gets one :class:`InputFile`, in the order given, with a state:

- ``ready``: a file to analyse. A file named explicitly is always ready (if it cannot be
  read, its analysis says why); so is every file when a column mapping will read them.
- ``skipped``: a file found in a folder, a glob or an archive that no reader recognises (a
  README, a participants table, a statistics table), with a ``not-a-cpet-export`` finding
  that says what was seen; or a FIFO, socket or device found there (``not-a-regular-file``).
  It is listed, not reported as a failed test.
- ``refused``: an archive, or an archive member, that was not expanded (corrupt, nested,
  unsafe member, too large or too many entries: codes ``corrupt-archive``,
  ``unsafe-archive``, ``unsafe-archive-member``, ``encrypted-archive-member``,
  ``nested-archive``).

Hidden files and folders (``.name``), ``__MACOSX`` and ``__pycache__`` are system clutter,
not inputs: they are never walked into, and only counted (:attr:`Inputs.n_ignored`).

Only regular files are ever opened (:mod:`cpet_nb.io._files`): a FIFO, socket or device
(or a link to one) is never opened, since that can block forever or never end. Named
explicitly, it is ready like any named file, and its analysis gives a ``not-a-regular-file``
error; found in a folder or by a glob, it is ``skipped`` with a ``not-a-regular-file``
warning saying what it is.

A ZIP archive (by its magic bytes, whether named, matched by a glob or found in a folder;
see :func:`cpet_nb.io.archives.is_archive`) is a container, not a file: its members are
extracted safely into a temporary folder (:mod:`cpet_nb.io.archives`: size, ratio and entry
limits, no path traversal, links or encrypted members) and then treated like files found in
a folder, labelled ``archive/member``. The temporary folders live as long as the
:class:`Inputs`: use it as a context manager (or call :meth:`Inputs.cleanup`) once the
files have been analysed::

    with expand_inputs(paths) as inputs:
        for item in inputs.files:
            analyze(item.path)

File names that are not valid UTF-8 (bytes a file system allows) are labelled with those
bytes written as backslash escapes such as ``\\xe9`` (:func:`display_name`); the path
itself is kept exactly.
"""

from __future__ import annotations

import glob
import os
import shutil
import weakref
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..findings import CPETError, Finding, Severity, UnsupportedFormat, display_name
from . import DEFAULT_MAX_FILE_BYTES, detect_format
from ._files import not_regular_finding, special_kind
from .archives import SKIPPED_NAMES, ArchiveLimits, extract_zip, is_archive

GLOB_CHARS = set("*?[")


#: States of an input (see the module notes).
INPUT_STATES = ("ready", "skipped", "refused")


@dataclass(frozen=True)
class InputFile:
    """One input: a file to analyse, or one that is not analysed and why.

    ``explicit`` when the user named it rather than a folder, glob or archive. For a member
    extracted from a ZIP archive, ``path`` is the extracted copy (in a temporary folder),
    ``archive`` the archive as given and ``member`` its name inside; a member that was not
    extracted has no copy (``path`` is the archive).

    Attributes
    ----------
    path : pathlib.Path
    explicit : bool
    archive : pathlib.Path, optional
    member : str, optional
    state : str
        One of :data:`INPUT_STATES`.
    finding : Finding, optional
        Why a ``skipped`` or ``refused`` input is not analysed.
    """

    path: Path
    explicit: bool
    archive: Path | None = None
    member: str | None = None
    state: str = "ready"
    finding: Finding | None = None

    @property
    def label(self) -> str:
        """How to name the input to the user: its path, or ``archive/member``
        (:func:`display_name`)."""
        if self.archive is None:
            return display_name(str(self.path))
        if self.member is None:
            return display_name(str(self.archive))
        return display_name(f"{self.archive}/{self.member}")


@dataclass
class Inputs:
    """Every input, in order, each with its state (see the module notes).

    Attributes
    ----------
    items : list of InputFile
        One per input: ready, skipped or refused.
    n_ignored : int
        Hidden files and system clutter in the folders walked (not inputs).
    temp_dirs : list of Path
        Temporary folders holding extracted archive members. :meth:`cleanup` (or leaving a
        ``with`` block) removes them; so does garbage collection of this object, or the end
        of the interpreter, as a safety net.
    """

    items: list[InputFile] = field(default_factory=list)
    n_ignored: int = 0
    temp_dirs: list[Path] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._finalizer = weakref.finalize(self, _remove_dirs, self.temp_dirs)

    @property
    def files(self) -> list[InputFile]:
        """The inputs to analyse."""
        return [item for item in self.items if item.state == "ready"]

    @property
    def skipped(self) -> list[InputFile]:
        """Inputs that are not CPET exports."""
        return [item for item in self.items if item.state == "skipped"]

    @property
    def refused(self) -> list[InputFile]:
        """Archives and archive members that were not expanded."""
        return [item for item in self.items if item.state == "refused"]

    @property
    def findings(self) -> list[Finding]:
        """The findings of the refused inputs (archive problems)."""
        return [item.finding for item in self.refused if item.finding is not None]

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


def _walk(folder: Path) -> tuple[list[Path], int]:
    """The files under ``folder`` in order, and how many hidden or system files were left."""
    found, ignored = [], 0
    for root, dirs, files in os.walk(folder):
        kept = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_NAMES)
        ignored += len(dirs) - len(kept)
        dirs[:] = kept
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
        ignored += sum(f.startswith(".") for f in files)
    return found, ignored


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
        is then ready.

    Returns
    -------
    Inputs
        Every input once (first mention wins), in order, each ready, skipped or refused.
        Remove its temporary folders when done (``with`` or ``cleanup()``).
    """
    limits = archive_limits or ArchiveLimits(max_member_bytes=max_file_bytes)
    seen: set[Path] = set()
    result = Inputs()
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            discovered, ignored = _walk(path)
            result.n_ignored += ignored
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
            kind = special_kind(candidate)  # a FIFO or device is never opened
            if kind is not None and not explicit:
                result.items.append(InputFile(candidate, False, state="skipped",
                                              finding=not_regular_finding(candidate, kind,
                                                                          skipped=True)))
                continue
            if kind is None and is_archive(candidate, limits):
                _add_archive(candidate, result, limits, temp_dir, max_file_bytes, sniff)
                continue
            why = None if explicit or not sniff else _not_cpet(candidate, max_file_bytes)
            result.items.append(InputFile(candidate, explicit, state="skipped", finding=why)
                                if why else InputFile(candidate, explicit))
    return result


def _add_archive(archive: Path, result: Inputs, limits: ArchiveLimits,
                 temp_dir: str | os.PathLike | None, max_file_bytes: int, sniff: bool) -> None:
    """The archive's members as inputs, in member order; refused members and a refused
    archive as ``refused`` inputs."""
    extraction = extract_zip(archive, limits, temp_dir)
    if extraction.folder is not None:
        result.temp_dirs.append(extraction.folder)
    members: list[InputFile] = []
    for member in extraction.files:
        why = _not_cpet(member.path, max_file_bytes, f"{archive}/{member.member}") if sniff \
            else None
        members.append(InputFile(member.path, False, archive, member.member,
                                 *(("skipped", why) if why else ())))
    for finding in extraction.findings:
        members.append(InputFile(archive, False, archive, _member_of(archive, finding),
                                 "refused", finding))
    result.items += sorted(members, key=lambda m: (m.member is not None, m.member or ""))


def _member_of(archive: Path, finding: Finding) -> str | None:
    """The member a finding of :func:`~cpet_nb.io.archives.extract_zip` is about (its
    ``file`` is ``archive/member``), or None for the whole archive."""
    prefix = f"{archive}/"
    return finding.file[len(prefix):] if finding.file and finding.file.startswith(prefix) \
        else None


def _not_cpet(path: Path, max_file_bytes: int, label: str | None = None) -> Finding | None:
    """Why a discovered file is skipped (a ``not-a-cpet-export`` finding), or None when a
    reader recognises it (or it is too large or vanished: then its analysis says so)."""
    try:
        detect_format(path, max_file_bytes)
    except UnsupportedFormat as exc:
        seen = exc.finding.message.split(": ", 1)[-1].split(". Supported formats")[0]
        return Finding("not-a-cpet-export", Severity.INFO,
                       f"skipped: no reader recognises it ({seen})",
                       file=display_name(label or str(path)))
    except CPETError:
        return None
    return None
