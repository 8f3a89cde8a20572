"""What the per-test plots draw, assembled from a stored job or an in-memory result.

A job store keeps each test's results row and domain curves but not its breath data:
:meth:`TestData.from_store` reads the file again from where the job found it, when it is still
there with the same content, and otherwise says why there are no breath data. This module
does not import Bokeh.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..findings import CODES, CPETError
from ..io import ColumnMapping, read
from ..io._tabular import sha256_hex
from ..model.domains import DomainCurves
from ..record import CPETRecord
from ..result import FileResult
from ..settings import Settings

#: Finding codes of an analysis that was stopped or crashed: such a file is not read again
#: in this process for its breath data (it may hang or exhaust memory here too).
NOT_REREAD_CODES = frozenset({"file-timeout", "file-memory-limit", "analysis-crashed",
                              "worker-lost", "internal-error"})

# One finding as the results table's text holds it: "<severity> <code>[ [column ..]]: ...",
# findings separated by "; " (FileResult.to_row).
_FINDING_START = re.compile(r"(?:^|; )(warning|error) ([a-z0-9-]+)(?=: | \[)")


@dataclass(frozen=True)
class TestData:
    """What the per-test figures draw.

    Attributes
    ----------
    row : mapping
        One row of a results table (:data:`cpet_nb.RESULT_COLUMNS`): the thresholds are
        marked at these values.
    curves : DomainCurves or None
        The domain probabilities (None when the model did not run).
    record : CPETRecord or None
        The breath data; None when it is not available (then ``missing`` says why).
    missing : str or None
        Why there is no record, shown in place of the breath panels.
    """

    __test__ = False  # not a pytest test class, whatever its name

    row: Mapping[str, Any]
    curves: DomainCurves | None = None
    record: CPETRecord | None = None
    missing: str | None = None

    @property
    def name(self) -> str:
        """The file's name as the results table gives it."""
        return str(self.row["file"])

    @classmethod
    def from_result(cls, result: FileResult, record: CPETRecord | None = None) -> TestData:
        """A test analysed in memory (:func:`cpet_nb.analyze`), with its record if given
        (``cpet_nb.read(path)``; otherwise the breath panels say it was not given)."""
        missing = None if record is not None else (
            "the breath data were not given (TestData.from_result(result, record=...))")
        return cls(pd.Series(result.to_row()), result.curves, record, missing)

    @classmethod
    def from_store(cls, store: Any, job_id: str, file: int | str) -> TestData:
        """One test of a stored job: its results row and curves from the store, its breath
        data read again from the file the job analysed.

        The store does not keep breath data; the file is read again (with the job's column
        mapping) when it is still where the job found it with the same content (sha256).
        Files given as paths stay on disk; uploads and archive members are deleted when
        their job is done (unless it ran with ``keep_uploads``). When the file is gone,
        changed, or its analysis was stopped (:data:`NOT_REREAD_CODES`), ``record`` is None
        and ``missing`` says why.

        Parameters
        ----------
        store : Store, str or path-like
            A job store (:class:`cpet_nb.batch.store.Store`) or the path of an existing one.
        job_id : str
        file : int or str
            The file's index in the job or its name (as in the results table's ``file``).

        Raises
        ------
        KeyError
            For an unknown job or file, or a file without a stored result yet.
        FileNotFoundError
            For a store path that does not exist.
        """
        store = _open_store(store)
        settings = Settings.from_dict(store.job(job_id)["settings"])
        entry = file_entry(store.files(job_id), file, job_id)
        row = _stored_row(store.results(job_id), entry, job_id)
        record, missing = _breath_record(entry, row, settings, store.upload_dir(job_id))
        return cls(row, store.curves(job_id, int(entry["idx"])), record, missing)


def _open_store(store: Any) -> Any:
    from ..batch.store import Store

    if isinstance(store, (str, os.PathLike)):
        if not Path(store).is_file():
            raise FileNotFoundError(f"no job store at {store}")
        return Store(store)
    return store


def file_entry(files: pd.DataFrame, file: int | str, job_id: str) -> pd.Series:
    """The files-table row of ``file`` (index or name)."""
    column = "idx" if isinstance(file, (int, np.integer)) else "name"
    match = files[files[column] == file]
    if match.empty:
        raise KeyError(f"job {job_id} has no file {file!r}")
    return match.iloc[0]


def _stored_row(table: pd.DataFrame, entry: pd.Series, job_id: str) -> pd.Series:
    """The results row of ``entry``: by name, and by content when two files share a name."""
    rows = table[table["file"] == entry["name"]]
    same_content = rows[rows["source_sha256"] == entry["sha256"]]
    if len(rows) > 1 and not same_content.empty:
        rows = same_content
    if rows.empty:
        raise KeyError(f"file {entry['name']!r} of job {job_id} has no stored result "
                       f"(state {entry['state']})")
    return rows.iloc[0]


def _breath_record(entry: pd.Series, row: Mapping[str, Any], settings: Settings,
                   uploads: Path) -> tuple[CPETRecord | None, str | None]:
    """The record of a stored file read again, or None and why not."""
    path = Path(entry["path"])
    stopped = NOT_REREAD_CODES & {code for _, code in finding_codes(row["findings"])}
    if stopped:
        return None, (f"its analysis was stopped ({', '.join(sorted(stopped))}), so the file "
                      "is not read again here")
    if not path.is_file():
        why = f"the file is no longer at {path}"
        if path.is_relative_to(uploads):
            why += (" (uploads and archive members are deleted when their job is done, unless "
                    "it ran with keep_uploads=True)")
        return None, why
    if path.stat().st_size > settings.max_file_bytes:
        return None, f"the file at {path} is now larger than the job's size limit"
    if sha256_hex(path.read_bytes()) != entry["sha256"]:
        return None, (f"the file at {path} has changed since it was analysed (its sha256 "
                      "differs), so its breath data would not match the results")
    mapping = ColumnMapping.from_dict(settings.profile) if settings.profile else None
    try:
        return read(path, mapping=mapping, max_file_bytes=settings.max_file_bytes), None
    except CPETError as exc:
        return None, f"the file could not be read: {exc.finding}"


def raised(flag: Any) -> bool:
    """Whether a review flag of a results row is set (True, numpy's True; not missing).

    >>> raised(True), raised(None), raised(float("nan")), raised(np.False_)
    (True, False, False, False)
    """
    return flag is not None and not pd.isna(flag) and bool(flag)


def finding_codes(text: str | None) -> list[tuple[str, str]]:
    """(severity, code) of each finding in a results table's ``findings`` text.

    Only codes of :data:`cpet_nb.CODES` count, so a message that happens to contain
    ``"; warning ..."`` is not taken for a finding of its own.

    Examples
    --------
    >>> finding_codes("warning vt2-not-found: VT2 not found; error missing-channel "
    ...               "[column PetO2]: no values")
    [('warning', 'vt2-not-found'), ('error', 'missing-channel')]
    """
    if not isinstance(text, str):
        return []
    return [(m[1], m[2]) for m in _FINDING_START.finditer(text) if m[2] in CODES]


def split_findings(text: str | None) -> list[str]:
    """The findings of a ``findings`` text, one string each."""
    if not isinstance(text, str) or not text:
        return []
    starts = [m.start() for m in _FINDING_START.finditer(text) if m[2] in CODES]
    bounds = zip([0, *starts[1:]], [*starts[1:], len(text)], strict=True)
    return [text[a:b].removeprefix("; ") for a, b in bounds]
