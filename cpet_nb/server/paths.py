"""Server-side inputs confined to the Jupyter server's root folder.

A client may name files, folders and glob patterns, relative to the root (as Jupyter's
contents API does). Refused, before any work: absolute paths, ``..`` components, NUL
characters, and any path that resolves outside the root -- the path itself, a folder it
names, a file in that folder or matched by the pattern (so a symbolic link inside the root
that points outside it is refused too, wherever it is found).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path, PurePosixPath

from ..io.inputs import GLOB_CHARS
from .errors import ApiError


def confine(text: str, root: Path, field: str) -> Path:
    """The input ``text`` as a path inside ``root``, checked.

    Parameters
    ----------
    text : str
        A path or glob pattern relative to ``root``, with ``/`` separators.
    root : pathlib.Path
        The server's root folder (resolved).
    field : str
        Names the request field in errors (``paths[0]``).

    Returns
    -------
    pathlib.Path
        ``root / text`` (a pattern stays a pattern: :func:`cpet_nb.submit` expands it).

    Raises
    ------
    ApiError
        ``path-outside-root`` or ``path-not-found`` (a path that is not a pattern and names
        nothing).
    """
    relative = PurePosixPath(text)
    if not text or "\x00" in text or relative.is_absolute() or ".." in relative.parts:
        raise ApiError("path-outside-root", f"{text!r} must be a path relative to the "
                                            "server's root, without '..'", field=field,
                       file=text)
    candidate = root / relative
    if candidate.exists() or candidate.is_symlink():
        files = _walk(candidate) if candidate.is_dir() else [candidate]
        _check_inside(candidate, root, field, text)
    elif GLOB_CHARS & set(text):
        files = [Path(p) for p in glob.glob(str(candidate), recursive=True)]
        files = [f for path in files for f in (_walk(path) if path.is_dir() else [path])]
    else:
        raise ApiError("path-not-found", f"{text!r} does not exist in the server's root",
                       field=field, file=text)
    for path in files:
        _check_inside(path, root, field, text)
    return candidate


def _walk(folder: Path) -> list[Path]:
    """Every file under ``folder`` (not following links to folders, as
    :func:`cpet_nb.io.inputs.expand_inputs` does not)."""
    return [Path(top) / name for top, _, names in os.walk(folder) for name in names]


def _check_inside(path: Path, root: Path, field: str, text: str) -> None:
    if not path.resolve().is_relative_to(root):
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        raise ApiError("path-outside-root", f"{shown} (from {text!r}) leads outside the "
                                            "server's root", field=field, file=str(shown))
