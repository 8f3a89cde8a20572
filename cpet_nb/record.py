"""The canonical CPET record every reader produces and every analysis consumes."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .findings import Finding, Severity

#: Canonical columns and their units. Readers convert to these; nothing downstream converts.
CANONICAL_UNITS: dict[str, str] = {
    "t": "s",  # from test start, strictly increasing after cleaning
    "VO2": "mL/min",  # absolute, never per kg
    "VCO2": "mL/min",
    "VE": "L/min",  # BTPS
    "PetO2": "mmHg",  # end-tidal only; mixed-expired PeO2 is not end-tidal
    "PetCO2": "mmHg",
    "FetO2": "%",  # end-tidal fractions of dry gas, where a file gives fractions: PetO2 and
    "FetCO2": "%",  # PetCO2 follow from them and PB (cpet_nb.io.end_tidal)
    "HR": "1/min",
    "RF": "1/min",
    "VT": "L",  # tidal volume
    "load": "W",
    "speed": "km/h",
    "grade": "%",
    "phase": "text",  # REST / WARMUP / EXERCISE / RECOVERY when the file says so
}

#: Columns a record may carry besides :data:`CANONICAL_UNITS`: labels the file provides.
LABEL_COLUMNS: dict[str, str] = {
    "domain_label": "-1/0/1 = moderate/heavy/severe (pyoxynet's per-second labels)",
}
#: The values of the ``phase`` column (missing where the file's phase is none of these).
PHASES: tuple[str, ...] = ("REST", "WARMUP", "EXERCISE", "RECOVERY")
#: The values :attr:`Metadata.sex` takes when it is known.
SEXES: tuple[str, ...] = ("female", "male")

#: Channels the Oxynet model reads, in the order of its input tensor.
MODEL_CHANNELS: tuple[str, ...] = ("VO2", "VCO2", "VE", "PetO2", "PetCO2")
#: Longest recording analysed (s): 6 h. A CPET test lasts 8-30 min, an hour with rest and
#: recovery; a longer span is another kind of recording, or times in another unit (or a
#: corrupt time such as 1e300 s), and the 1 s grid and the bins grow with it.
MAX_DURATION_S = 6 * 3600.0
#: Most rows analysed: 6 h of breaths at 60 per minute are 21,600 rows, and 100,000 leave
#: room for 5 Hz samples over 5.5 h.
MAX_ROWS = 100_000


@dataclass
class Metadata:
    """What is known about a test besides its data. Unknown stays ``None``: never a default.

    Attributes
    ----------
    source_name : str
        File name as given by the user.
    source_sha256 : str, optional
        sha256 of the file's bytes.
    device, format : str, optional
        Cart family and reader name (e.g. ``"pyoxynet-csv"``).
    sampling : str, optional
        ``"breath-by-breath"``, ``"1 s grid"`` or ``"averaged N s"`` (see :func:`detect_sampling`).
    weight_kg, height_cm, age_years : float, optional
        Subject body mass (kg), height (cm) and age (years).
    sex : str, optional
        ``"female"`` or ``"male"``.
    test_date : str, optional
        ISO 8601 date of the test.
    extra : dict
        Format-specific items worth keeping (no names, birth dates or IDs).
    """

    source_name: str
    source_sha256: str | None = None
    device: str | None = None
    format: str | None = None
    sampling: str | None = None
    weight_kg: float | None = None
    height_cm: float | None = None
    age_years: float | None = None
    sex: str | None = None
    test_date: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return asdict(self)


@dataclass
class CPETRecord:
    """One test in canonical columns and units (:data:`CANONICAL_UNITS`).

    Attributes
    ----------
    data : pandas.DataFrame
        One row per breath (or per averaging interval); canonical columns only, plus
        :data:`LABEL_COLUMNS` (``domain_label``) where the file carries labels.
    metadata : Metadata
    findings : list of Finding
        What the reader noticed (warnings travel with the record).
    """

    data: pd.DataFrame
    metadata: Metadata
    findings: list[Finding] = field(default_factory=list)

    def __post_init__(self) -> None:
        # pandas 3 keeps column labels in its string dtype (pyarrow-backed where pyarrow is
        # installed), and each of the physiology's many column lookups then converts a label
        # back (32 against 16 us per lookup; docs/performance.md). The same names, as plain
        # labels; the caller's frame is left as it is.
        if self.data.columns.dtype != object:
            self.data = self.data.set_axis(self.data.columns.astype(object), axis="columns")

    @property
    def name(self) -> str:
        """The source file's name."""
        return self.metadata.source_name

    @property
    def duration_s(self) -> float:
        """Time from the first to the last row, in seconds."""
        t = self.data["t"].to_numpy()
        return float(t[-1] - t[0]) if len(t) else 0.0


#: Share of steps that must lie near the median step for the data to count as averages.
REGULAR_SHARE = 0.8
#: Steps within this fraction of the median are regular (exports often start or end with
#: one short interval).
REGULAR_TOLERANCE = 0.1
#: Wider band for averages whose time stamps jitter: a cart that averages the breaths ending
#: in each interval stamps the interval with its last breath, so a step is off by up to one
#: breath (1-4 s during exercise: up to about 25 % of a 15 s interval).
JITTER_TOLERANCE = 0.25
#: Shortest median step (s) read as jittered averages. A median step of 10 s would be a
#: median breathing frequency of 6/min, which no exercise test has; shorter jittered
#: averages cannot be told from slow resting breaths (3-9 s, whole-second times) by their
#: times alone.
MIN_JITTERED_AVERAGE_S = 10.0


def length_problem(t_s: np.ndarray, file: str, column: str = "t") -> Finding | None:
    """Why a recording is too long to analyse (:data:`MAX_DURATION_S`, :data:`MAX_ROWS`), or
    None. Checked on the times as read, before anything grows with them.

    Parameters
    ----------
    t_s : numpy.ndarray
        Each row's time (s) in row order; NaN for a row without one.
    file, column : str
        Named in the finding (``column``: the time column's name in the file).

    Returns
    -------
    Finding or None
        ``recording-too-long`` (an error). Its row (1-based, in ``t_s``) is, for too long a
        span, the earliest or the latest time, whichever lies farther from the median (the
        row of a time of 1e300 s in a 10 min test); for too many rows, the first one past
        the limit.
    """
    t_s = np.asarray(t_s, dtype=float)
    timed = np.flatnonzero(~np.isnan(t_s))
    if len(timed) == 0:
        return None
    times = t_s[timed]
    first, last = int(np.argmin(times)), int(np.argmax(times))
    span_s = times[last] - times[first]
    if not span_s <= MAX_DURATION_S:  # an infinite time too
        median = float(np.median(times))
        far = first if median - times[first] > times[last] - median else last
        return Finding(
            "recording-too-long", Severity.ERROR,
            f"the times span {span_s:,.6g} s (from {times[first]:,.6g} s in row {timed[first] + 1}"
            f" to {times[last]:,.6g} s in row {timed[last] + 1}), more than the "
            f"{MAX_DURATION_S:,.0f} s ({MAX_DURATION_S / 3600:g} h) analysed: a longer "
            "recording, times in another unit, or a corrupt time?", file=file, column=column,
            row=int(timed[far]) + 1)
    if len(timed) > MAX_ROWS:
        return Finding(
            "recording-too-long", Severity.ERROR,
            f"{len(timed):,} rows with a time, more than the {MAX_ROWS:,} analysed", file=file,
            column=column, row=int(timed[MAX_ROWS]) + 1)
    return None


def detect_sampling(t_s: np.ndarray) -> str | None:
    """Say how a test was sampled, from its time steps.

    Parameters
    ----------
    t_s : numpy.ndarray
        Sample times in seconds, increasing.

    Returns
    -------
    str or None
        ``"1 s grid"`` when every step is one second; ``"averaged N s"`` when the steps are
        regular: 80 % within 10 % of the median step and the median at least 2 s, or 80 %
        within 25 % of a median step of at least :data:`MIN_JITTERED_AVERAGE_S` (averages
        stamped at the breath that ends each interval). N is the mean of those steps (a
        short first or last interval does not count), to 0.1 s, or to whole seconds for
        jittered stamps, which leave the tenths uncertain (carts average over whole
        seconds). Otherwise
        ``"breath-by-breath"``: breath durations vary far more, and their median is 1-5 s
        in the real breath-by-breath samples. ``None`` with fewer than three samples.
    """
    steps = np.diff(np.asarray(t_s, dtype=float))
    if len(steps) < 2:
        return None
    if np.allclose(steps, 1.0):
        return "1 s grid"
    median = float(np.median(steps))
    for tolerance, shortest_s, digits in ((REGULAR_TOLERANCE, 2.0, 1),
                                          (JITTER_TOLERANCE, MIN_JITTERED_AVERAGE_S, 0)):
        near = _near(steps, median, tolerance)
        if median >= shortest_s and near.mean() >= REGULAR_SHARE:
            return f"averaged {round(float(steps[near].mean()), digits):g} s"
    return "breath-by-breath"


def _near(steps: np.ndarray, median: float, tolerance: float) -> np.ndarray:
    """Which steps lie within ``tolerance`` (a fraction) of the median step."""
    return np.abs(steps - median) <= tolerance * median


def recorded_at(data: pd.DataFrame, channel: str, time_s: float) -> float:
    """The last value of ``channel`` recorded at or before ``time_s``: the work rate or speed
    being held at that moment (steps stay steps). NaN when there is none.

    ``data`` is canonical data, or anything that has its columns by name (``in`` and ``[]``,
    as :class:`~cpet_nb.physiology._arrays.TestArrays`).
    """
    if channel not in data or not np.isfinite(time_s):
        return float("nan")
    t, values = _column(data, "t"), _column(data, channel)
    known = np.flatnonzero(~np.isnan(values) & (t <= time_s))
    return float(values[known[-1]]) if len(known) else float("nan")


def mean_around(data: pd.DataFrame, channel: str, time_s: float, half_width_s: float = 10.0
                ) -> float:
    """Mean of ``channel`` over ``time_s`` ± ``half_width_s`` seconds (breath noise averaged
    out); NaN when no value falls there. ``data`` as in :func:`recorded_at`."""
    if channel not in data or not np.isfinite(time_s):
        return float("nan")
    values = _column(data, channel)[np.abs(_column(data, "t") - time_s) <= half_width_s]
    near = values[~np.isnan(values)]
    return float(near.mean()) if len(near) else float("nan")


def _column(data: pd.DataFrame, name: str) -> np.ndarray:
    return np.asarray(data[name], dtype=float)


def json_number(value: float | None) -> float | None:
    """``value`` for JSON: NaN (and None) become None, other numbers stay."""
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value
