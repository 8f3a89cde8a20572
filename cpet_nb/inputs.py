"""Turn what a user names (files, folders, globs) into the list of files to analyse.

Policy: a file named explicitly always gets a row in the results (an error row if it cannot
be read). Files found by walking a folder or expanding a glob are first sniffed, and those
that no reader recognises (a README, a pickle, a statistics table) are skipped and listed,
not reported as failed tests. Hidden files and folders (``.name``), ``__MACOSX`` and
``__pycache__`` are never walked into.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .findings import CPETError, UnsupportedFormat
from .io import DEFAULT_MAX_FILE_BYTES, detect_format

SKIPPED_DIRS = {"__MACOSX", "__pycache__"}
GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class InputFile:
    """One file to analyse; ``explicit`` when the user named it rather than a folder/glob."""

    path: Path
    explicit: bool


@dataclass
class Inputs:
    """Files to analyse and files skipped because no reader recognised them."""

    files: list[InputFile]
    skipped: list[Path]


def _walk(folder: Path) -> list[Path]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIPPED_DIRS)
        found += [Path(root) / f for f in sorted(files) if not f.startswith(".")]
    return found


def expand_inputs(inputs: Iterable[str | os.PathLike],
                  max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> Inputs:
    """Expand files, folders (recursively) and glob patterns, in the order given.

    Parameters
    ----------
    inputs : iterable of str or path-like
    max_file_bytes : int
        Used when sniffing discovered files (too-large files are kept, to be reported).

    Returns
    -------
    Inputs
        Each file once (first mention wins), and the discovered files that were skipped.
    """
    seen: set[Path] = set()
    files: list[InputFile] = []
    skipped: list[Path] = []
    for item in inputs:
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            discovered = _walk(path)
        elif not path.exists() and GLOB_CHARS & set(text):
            discovered = [Path(p) for p in sorted(glob.glob(text, recursive=True))
                          if Path(p).is_file()]
        else:
            discovered = None
        candidates = [(path, True)] if discovered is None else [(p, False) for p in discovered]
        for candidate, explicit in candidates:
            key = candidate.resolve()
            if key in seen:
                continue
            seen.add(key)
            if not explicit and not _recognised(candidate, max_file_bytes):
                skipped.append(candidate)
                continue
            files.append(InputFile(candidate, explicit))
    return Inputs(files, skipped)


def _recognised(path: Path, max_file_bytes: int) -> bool:
    try:
        detect_format(path, max_file_bytes)
    except UnsupportedFormat:
        return False
    except CPETError:  # too large or vanished: keep it, so the user is told
        return True
    return True
