"""Input staging: what a user gives, turned into the rows of a job, every input accounted for.

Shared by a batch (:func:`cpet_nb.submit`) and by ``cpet-nb analyze`` (which runs in-process):
both expand the inputs with :func:`cpet_nb.io.inputs.expand_inputs`, copy in-memory uploads
and archive members into one folder (the job's upload folder, or a temporary folder), hash
what will be analysed, and settle at once the inputs that will not be: a file that is not a
CPET export gets a ``skipped`` row, an archive problem an ``error`` row, each with the
finding that says why. Nothing the user gave disappears.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..findings import Severity, display_name, has_errors
from ..io._files import open_regular
from ..io.inputs import InputFile, expand_inputs
from ..io.participants import SubjectTable
from ..result import FileResult
from ..settings import Settings
from .store import OWNER_MARKER, FileEntry


@dataclass(frozen=True)
class Upload:
    """A file given as bytes (e.g. from a notebook upload widget) rather than a path.

    Only the last part of ``name`` is used (no folders), so an upload cannot be written
    outside its job's folder. An upload whose bytes are already in a file of their own (a
    streamed HTTP upload, :meth:`from_file`) has ``path`` set: that file is moved into the
    job's folder instead of being written from memory.
    """

    name: str
    content: bytes = b""
    path: Path | None = None

    @classmethod
    def from_widget(cls, value: Mapping[str, Any]) -> Upload:
        """An upload from one item of an ``ipywidgets.FileUpload`` value (a mapping with
        ``name`` and ``content``, a memoryview)."""
        return cls(str(value["name"]), bytes(value["content"]))

    @classmethod
    def from_file(cls, name: str, path: str | os.PathLike) -> Upload:
        """An upload called ``name`` whose bytes are the file ``path``, which staging
        moves (renames, on one file system) into the job's folder."""
        return cls(name, path=Path(path))

    def save(self, target: Path) -> None:
        """Put the upload's bytes at ``target``: written, or its file moved there."""
        if self.path is None:
            target.write_bytes(self.content)
        else:
            shutil.move(self.path, target)


class NoCPETFiles(ValueError):
    """The inputs of a batch hold no file to analyse (the message says what each was)."""


@dataclass
class Staged:
    """The rows of a job, before anything is analysed.

    Attributes
    ----------
    entries : list of FileEntry
        Every input, in order (``idx`` 0, 1, ...).
    settled : dict of int to (str, FileResult)
        For the inputs that will not be analysed, by ``idx``: their state (``skipped`` or
        ``refused``) and their result row (status ``skipped`` or ``error``, with the
        finding).
    info : dict
        What the job records about its inputs: the inputs as given, and the number of
        hidden or system files ignored in the folders walked.
    """

    entries: list[FileEntry]
    settled: dict[int, tuple[str, FileResult]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def to_analyse(self) -> list[FileEntry]:
        """The entries that go to the analysis."""
        return [e for e in self.entries if e.idx not in self.settled]

    def why_nothing_to_analyse(self) -> str:
        """The message when no input is a file to analyse: every input and why not."""
        reasons = "".join(f"; {r.file}: {r.findings[0]}" for _, r in self.settled.values())
        return "no CPET files found in the inputs" + (reasons or " (no files at all)")


def stage_inputs(inputs: Sequence[str | os.PathLike | Upload], folder: Path,
                 settings: Settings) -> Staged:
    """Expand and account for ``inputs``; uploads and archive members are copied into
    ``folder`` (removed again when it stays empty, and on any failure).

    When no input is a file to analyse, ``to_analyse`` is empty and
    :meth:`Staged.why_nothing_to_analyse` says what was found instead.
    """
    folder.mkdir(parents=True, exist_ok=True)
    try:
        staged = _stage(inputs, folder, settings)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if not any(p.name != OWNER_MARKER for p in folder.iterdir()):
        shutil.rmtree(folder, ignore_errors=True)  # nothing was copied: no folder to keep
    return staged


def _stage(inputs: Sequence[str | os.PathLike | Upload], folder: Path,
           settings: Settings) -> Staged:
    expanded = expand_inputs(write_uploads(inputs, folder), settings.max_file_bytes,
                             temp_dir=folder, sniff=settings.profile is None)
    expanded.release_temp_dirs()  # they are in ``folder``, which the caller owns
    staged = Staged([], info={
        "given": [display_name(i.name if isinstance(i, Upload) else os.fspath(i))
                  for i in inputs],
        "ignored": expanded.n_ignored})
    for item in expanded.items:
        idx = len(staged.entries)
        label = input_label(item, folder)
        if item.state == "ready":
            digest, size = file_digest(item.path)
            staged.entries.append(FileEntry(idx, label, str(item.path), digest, size))
            continue
        staged.entries.append(FileEntry(idx, label, str(item.path), "", 0))
        finding = item.finding.with_file(label)
        result = (FileResult.skipped(label, finding) if item.state == "skipped"
                  else FileResult.failed(label, [finding]))
        staged.settled[idx] = (item.state, result)
    return staged


def write_uploads(inputs: Sequence[str | os.PathLike | Upload], folder: Path
                  ) -> list[str | os.PathLike]:
    """The inputs as paths: each :class:`Upload` put at ``folder/upload-<i>/<name>`` (only
    the last part of its name), other inputs unchanged."""
    paths: list[str | os.PathLike] = []
    for i, item in enumerate(inputs):
        if isinstance(item, Upload):
            target = folder / f"upload-{i}" / (Path(item.name).name or f"upload-{i}")
            target.parent.mkdir(parents=True)
            item.save(target)
            paths.append(target)
        else:
            paths.append(item)
    return paths


def input_label(item: InputFile, folder: Path) -> str:
    """How a job names an input: its path, or ``archive/member``; an upload (copied into
    ``folder``) by its own name (``visit.zip/member`` for a member of an uploaded archive)."""
    if item.archive is None and item.path.is_relative_to(folder):
        return display_name(item.path.name)
    if item.archive is not None and Path(item.archive).is_relative_to(folder):
        name = Path(item.archive).name
        return display_name(f"{name}/{item.member}" if item.member else name)
    return item.label


def stage_participants(path: str | os.PathLike, folder: Path) -> dict[str, str]:
    """Check a participants table and keep a copy with the job; its name, copy and sha256.

    Raises
    ------
    ValueError
        When the table has errors (the message lists them).
    """
    table = SubjectTable.from_csv(path)
    if has_errors(table.findings):
        raise ValueError("participants table refused: "
                         + "; ".join(str(f) for f in table.findings
                                     if f.severity is Severity.ERROR))
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / "participants.csv"
    shutil.copyfile(path, copy)
    return {"name": display_name(os.fspath(path)), "path": str(copy),
            "sha256": file_digest(copy)[0]}


def file_digest(path: Path) -> tuple[str, int]:
    """sha256 (hex) and size of a file; a missing file, or one that is not a regular file
    (never opened: a FIFO would block, a device never end), hashes as empty (its analysis
    then reports it as ``file-not-found`` or ``not-a-regular-file``)."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open_regular(path) as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
    except OSError:
        return "", 0
    return digest.hexdigest(), size
