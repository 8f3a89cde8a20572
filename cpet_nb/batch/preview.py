"""What a batch would do with its inputs, before it runs: one row per input.

A preview expands the inputs as :func:`cpet_nb.submit` does (folders, globs, ZIP archives,
uploads; :func:`cpet_nb.io.inputs.expand_inputs`) and reads each file
(:func:`cpet_nb.read`: a few milliseconds, never the model), so that a person sees, before
anything is started, which device each file comes from, how it was sampled, how long it
lasts, which channels it holds and what is wrong with it. Inputs that will not run (a
README found in a folder, a refused archive member, a glob that matches nothing) are listed
with their reason, not dropped::

    >>> import cpet_nb
    >>> from cpet_nb.batch import preview_inputs
    >>> table = preview_inputs(cpet_nb.datasets.pyoxynet_tests()[:2])
    >>> table[["state", "format", "sampling"]].values.tolist()
    [['ready', 'pyoxynet-csv', '1 s grid'], ['ready', 'pyoxynet-csv', '1 s grid']]
    >>> table.loc[0, "channels"][:5]
    ['VO2', 'VCO2', 'VE', 'PetO2', 'PetCO2']
"""

from __future__ import annotations

import glob
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from ..findings import CPETError, Finding
from ..io import ColumnMapping, read
from ..io.inputs import GLOB_CHARS, InputFile, expand_inputs
from ..physiology.validate import threshold_blockers
from ..record import CANONICAL_UNITS, CPETRecord
from ..settings import Settings
from .staging import Upload, input_label, write_uploads

#: Columns of :func:`preview_inputs`' table, in order.
PREVIEW_COLUMNS = ("input", "state", "format", "sampling", "duration_s", "channels",
                   "findings", "reason")
#: States of a previewed input: it will be analysed (``ready``), it is listed but not
#: analysed because it is not a CPET export (``skipped``), or it will give an error row
#: (``error``: a file that cannot be read, a refused archive or archive member, a folder or
#: glob that names nothing).
PREVIEW_STATES = ("ready", "skipped", "error")
#: Channels listed in the ``channels`` column (time and phase are not channels).
CHANNELS = tuple(c for c in CANONICAL_UNITS if c not in ("t", "phase"))


def preview_inputs(inputs: Iterable[str | os.PathLike | Upload],
                   settings: Settings | None = None, *,
                   progress: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """One row per input, as a batch of ``inputs`` would see it, without analysing anything.

    Parameters
    ----------
    inputs : iterable
        What :func:`cpet_nb.submit` takes: paths of files, folders, glob patterns and ZIP
        archives, and :class:`~cpet_nb.batch.Upload` objects.
    settings : Settings, optional
        The batch's settings: ``max_file_mb`` and ``profile`` (a lab profile reads every
        file with its column mapping) change what is ready.
    progress : callable, optional
        ``progress(n_read, n_files)`` after each file is read (e.g. for a progress bar when
        a folder holds many files); called from the caller's thread.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PREVIEW_COLUMNS`: ``input`` (the name the batch will use), ``state``
        (one of :data:`PREVIEW_STATES`), ``format``, ``sampling`` and ``duration_s`` (from
        the file; None/NaN when it cannot be read), ``channels`` (canonical channels with
        data), ``findings`` (list of :meth:`cpet_nb.Finding.to_dict` dictionaries: the
        reader's, and why the model's thresholds cannot be computed) and ``reason`` (plain
        words for a skipped or failed input, empty otherwise), in the order of a batch's
        rows, then the folders and patterns that name nothing.
    """
    settings = settings or Settings()
    inputs = list(inputs)
    mapping = ColumnMapping.from_dict(settings.profile) if settings.profile else None
    with tempfile.TemporaryDirectory(prefix="cpet_nb-preview-") as scratch:
        folder = Path(scratch)
        paths = write_uploads(inputs, folder)
        with expand_inputs(paths, settings.max_file_bytes, temp_dir=folder,
                           sniff=mapping is None) as expanded:
            rows, n_read, n_ready = [], 0, len(expanded.files)
            for item in expanded.items:
                if item.state == "ready":
                    rows.append(_file_row(item, folder, mapping, settings.max_file_bytes))
                    n_read += 1
                    if progress is not None:
                        progress(n_read, n_ready)
                elif item.state == "skipped":
                    rows.append(_skipped_row(item, folder))
                else:
                    rows.append(_problem_row(input_label(item, folder), item.finding, folder))
    rows += [_empty_row(os.fspath(item), reason)
             for item, reason in _names_nothing(inputs, rows)]
    return pd.DataFrame(rows, columns=list(PREVIEW_COLUMNS))


def _file_row(item: InputFile, folder: Path, mapping: ColumnMapping | None,
              max_file_bytes: int) -> dict[str, Any]:
    """The row of one file: what its reader says, or why it cannot be read."""
    label = input_label(item, folder)
    try:
        record = read(item.path, mapping=mapping, max_file_bytes=max_file_bytes)
    except CPETError as exc:
        return _problem_row(label, exc.finding, folder)
    meta = record.metadata
    findings = [*record.findings, *threshold_blockers(record)]
    return {"input": label, "state": "ready", "format": meta.format, "sampling": meta.sampling,
            "duration_s": record.duration_s, "channels": _channels(record),
            "findings": [_named(f, label, folder) for f in findings], "reason": ""}


def _skipped_row(item: InputFile, folder: Path) -> dict[str, Any]:
    label = input_label(item, folder)
    named = _named(item.finding, label, folder)
    return {"input": label, "state": "skipped", "format": None, "sampling": None,
            "duration_s": math.nan, "channels": [], "findings": [named],
            "reason": f"{named['message']}: found in a folder, glob or archive, so it is "
                      "listed but not analysed"}


def _problem_row(label: str, finding: Finding, folder: Path) -> dict[str, Any]:
    """The row of an input that gives no result: a file that cannot be read, a refused
    archive or archive member (``reason``: the finding's message)."""
    named = _named(finding, label, folder)
    return _empty_row(label, named["message"]) | {"findings": [named]}


def _empty_row(label: str, reason: str) -> dict[str, Any]:
    return {"input": label, "state": "error", "format": None, "sampling": None,
            "duration_s": math.nan, "channels": [], "findings": [], "reason": reason}


def _named(finding: Finding, label: str, folder: Path) -> dict[str, Any]:
    """A finding's dictionary naming the input as the batch will, never a temporary copy
    (an upload's scratch folder is cut from the message too)."""
    scratch = re.compile(re.escape(str(folder)) + r"/upload-\d+/")
    return finding.to_dict() | {"file": label, "message": scratch.sub("", finding.message)}


def _channels(record: CPETRecord) -> list[str]:
    """Canonical channels that hold at least one value, in canonical order."""
    data = record.data
    return [c for c in CHANNELS if c in data and data[c].notna().any()]


def _names_nothing(inputs: list[Any], rows: list[dict[str, Any]]) -> list[tuple[Any, str]]:
    """Folders and glob patterns that gave no row at all, with why."""
    out = []
    for item in inputs:
        if isinstance(item, Upload):
            continue
        text = os.fspath(item)
        path = Path(text)
        if path.is_dir():
            inside = str(path).rstrip(os.sep) + os.sep
            if not any(r["input"].startswith(inside) for r in rows):
                out.append((item, "the folder holds no files (hidden files are not read)"))
        elif not path.exists() and GLOB_CHARS & set(text) and not glob.glob(text,
                                                                           recursive=True):
            out.append((item, "the pattern matches no file"))
    return out
