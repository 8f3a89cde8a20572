"""Validation findings: what is wrong (or worth knowing) about one input file.

A :class:`Finding` names the file, and where it can the column and row, and says what was
expected and what was found. Findings travel with records and results; an ``error`` finding
means the file was not analysed (or a part of it could not be computed), never that the
batch stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from enum import Enum
from typing import Any


class Severity(str, Enum):
    """How serious a finding is. ``error`` stops the analysis of that file (or measure)."""

    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


#: Every finding code cpet_nb emits, with what it means. Codes are stable: results tables,
#: job stores and user scripts may filter on them.
CODES: dict[str, str] = {
    "file-not-found": "the path does not exist",
    "not-a-regular-file": "the path is a FIFO (named pipe), socket, device or folder, not a "
                          "file; it was not opened (one found in a folder is skipped)",
    "file-too-large": "the file is larger than the configured size limit",
    "unsupported-format": "no reader recognised the file's content",
    "not-a-cpet-export": "a file found in a folder, glob or archive is not a CPET export (a "
                         "README, a participants table): listed, not analysed",
    "unreadable": "a reader recognised the file but could not parse it",
    "empty": "the file has a header but no data rows",
    "line-too-long": "a line of a text file has more characters or fields than the limit "
                     "(a parser would take hours on it); the file was not parsed",
    "unknown-column": "a column that the format does not define was ignored",
    "non-numeric": "a numeric column holds text that is not a number",
    "malformed-row": "a data row with the wrong number of values (or not a data row) was skipped",
    "derived-channel": "a channel was computed from others (e.g. PetO2 from FO2et and PB)",
    "missing-channel": "a channel needed for a measure is absent or entirely missing",
    "device-zero-missing": "device zeros that mean 'not measured' were turned into missing values",
    "duplicate-time": "rows with a time already seen were dropped (the first was kept)",
    "non-monotonic-time": "time goes backwards; rows were sorted by time",
    "implausible-values": "values are outside the documented physiological range",
    "outlier-breath": "single breaths far from the running median of their neighbours (spikes) "
                      "were set missing",
    "constant-channel": "a channel never changes, so the model cannot use it",
    "recording-too-long": "the times span more than 6 h, or there are more than 100,000 rows "
                          "(the row is named): not analysed (cpet_nb.record.MAX_DURATION_S, "
                          "MAX_ROWS)",
    "too-short": "the test is too short for the requested analysis",
    "averaged-data": "the export holds time averages, not breath-by-breath data",
    "subject-table-applied": "a participants-table row replaced the file's subject metadata",
    "subject-table-no-row": "no row of the participants table matches the file",
    "subject-table-ambiguous": "several participants-table rows match (or a key repeats): "
                               "nothing was applied",
    "hr-merged": "HR was filled from a companion recording (TCX or CSV)",
    "hr-alignment-assumed": "the companion recording's start was assumed to be the test's start",
    "gaps-trimmed": "leading or trailing seconds without all model channels were left out",
    "vt1-not-found": "the model's heavy-domain probability never reaches the moderate one",
    "vt2-not-found": "the model's severe-domain probability is never at or below the heavy one",
    "vt-too-early": "a domain transition lies before the model's first full 40 s window",
    "vt-order": "VT2 is not after VT1 (the heavy and severe outputs look swapped)",
    "domain-mapping-ambiguous": "the same model output dominates both the start and the end",
    "vt-method-no-estimate": "a classical threshold method gave no estimate (the message says "
                             "why: missing channel, no breakpoint, too little data)",
    "internal-error": "an unexpected exception while processing the file (a bug: please report)",
    "file-timeout": "the file's analysis ran past the time limit per file and was stopped",
    "file-memory-limit": "the file's analysis needed more memory than the limit per file",
    "analysis-crashed": "the process analysing the file died (a crash in native code)",
    "worker-lost": "the file's partition failed on every attempt (workers died or the task "
                   "raised); the file was then tried alone and failed again",
    "unsafe-archive": "a ZIP archive was not expanded: too many entries or too many bytes in total",
    "corrupt-archive": "a ZIP archive, or one of its members, could not be read or extracted",
    "unsafe-archive-member": "an archive member was not extracted: unsafe name, link or special "
                             "file, compression method, size or compression ratio over the limit",
    "encrypted-archive-member": "an archive member is password-protected; not extracted",
    "nested-archive": "a ZIP archive inside a ZIP archive was not expanded",
    "override-unknown-file": "a reviewer's override names no input of the job (or a file name "
                             "several inputs share)",
    "override-not-analysed": "a reviewer's override names an input that was not analysed: "
                             "there is no threshold to override",
    "override-bad-request": "a reviewer's override (or its CSV row) is malformed: no file or "
                            "threshold, neither or both of a time and a method, a time that "
                            "is not a number",
    "override-bad-threshold": "a reviewer's override names a threshold other than vt1 or vt2",
    "override-unknown-method": "a reviewer's override picks a method that does not estimate "
                               "that threshold",
    "override-no-estimate": "a reviewer's override picks an estimate (a method's, the "
                            "consensus) that this test does not have",
    "override-time-outside-test": "a reviewer's override sets a time before the first or after "
                                  "the last sample of the test",
    "override-file-unavailable": "a reviewer's override needs the test's file again (values at "
                                 "a new time) but it is gone, unreadable or changed",
}


@dataclass(frozen=True)
class Finding:
    """One thing found about one file.

    Parameters
    ----------
    code : str
        Stable identifier, one of :data:`CODES`.
    severity : Severity
        ``info``, ``warning`` or ``error``.
    message : str
        Human-readable sentence saying what was expected and what was found.
    file : str, optional
        The file's name (or path as given).
    column : str, optional
        The column concerned, as named in the file or in the canonical record.
    row : int, optional
        The 1-based row in the file (data rows), when one row is concerned.
    """

    code: str
    severity: Severity
    message: str
    file: str | None = None
    column: str | None = None
    row: int | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown finding code {self.code!r}")
        object.__setattr__(self, "severity", Severity(self.severity))
        if self.file is not None:
            object.__setattr__(self, "file", display_name(self.file))

    def with_file(self, file: str) -> Finding:
        """The same finding, naming ``file`` (kept when one is already named)."""
        if self.file is not None:
            return self
        return Finding(self.code, self.severity, self.message, file, self.column, self.row)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        out = asdict(self)
        out["severity"] = self.severity.value
        return out

    def __str__(self) -> str:
        where = "".join(
            f" [{k} {v}]" for k, v in (("column", self.column), ("row", self.row)) if v is not None
        )
        return f"{self.severity.value} {self.code}{where}: {self.message}"


def display_name(name: str) -> str:
    r"""``name`` as text that any file, terminal or database can hold: bytes of a file name
    that are not valid UTF-8 (which Python keeps as surrogate escapes) become ``\xNN``.
    Findings, results and the job store name inputs this way; paths stay exact.

    >>> display_name("caf\udce9.csv")
    'caf\\xe9.csv'
    """
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def has_errors(findings: list[Finding]) -> bool:
    """Whether any of ``findings`` is an error."""
    return any(f.severity is Severity.ERROR for f in findings)


def fold_repeats(findings: Iterable[Finding], new: Iterable[Finding]) -> list[Finding]:
    """``findings`` followed by ``new`` (all about one file), each cause reported once.

    A new finding with the code and column of an earlier one is a further consequence of
    the same cause (a reader's "PetO2 left missing" and the model's "thresholds
    unavailable: missing PetO2"; a short test's two ``too-short`` effects): its message is
    appended to the earlier finding's, which keeps the more severe of the two severities.

    Examples
    --------
    >>> short = Finding("too-short", "warning", "60 s of exercise")
    >>> [str(f) for f in fold_repeats([short], [Finding("too-short", "warning", "no model")])]
    ['warning too-short: 60 s of exercise; no model']
    """
    out = list(findings)
    for finding in new:
        key = (finding.code, finding.column)
        same = next((i for i, f in enumerate(out) if (f.code, f.column) == key), None)
        if same is None:
            out.append(finding)
            continue
        first = out[same]
        severity = max(first.severity, finding.severity, key=list(Severity).index)
        out[same] = replace(first, severity=severity,
                            message=f"{first.message}; {finding.message}")
    return out


class CPETError(Exception):
    """An input problem that stops one file, carrying the :class:`Finding` that says why."""

    def __init__(self, finding: Finding) -> None:
        super().__init__(str(finding))
        self.finding = finding


class UnsupportedFormat(CPETError):
    """No registered reader recognised the file."""
