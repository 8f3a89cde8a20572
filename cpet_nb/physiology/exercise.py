"""The exercise part of a test: one definition shared by every measure and threshold method.

A test usually holds rest, perhaps a warm-up, the exercise and recovery. Peaks, slopes and
threshold searches belong to the exercise:

1. when the file labels phases (the ``phase`` column), the rows labelled ``EXERCISE`` (or the
   labels asked for). A file whose labels hold no exercise (it stopped during the warm-up)
   has no exercise part: measures are NaN and the ``too-short`` finding says why;
2. otherwise the rows with a ``load`` or ``speed`` above zero (this includes a warm-up at
   constant load, which does not move peaks or breakpoints found later in the test);
3. otherwise the whole test (pyoxynet's files, for instance, hold only the exercise).

The part is the time span from its first to its last row: recovery rows never enter it, and a
row inside it stays in even if mislabelled.

Bouts. An interval session labels its pauses: REST, WARMUP or RECOVERY rows between
EXERCISE rows (e.g. Parvo's ``Stop Exercise`` / ``Start Exercise`` events). Peak values are
taken bout by bout (:func:`exercise_bouts_s`), so that no average mixes a pause in and the
CO2 washout of a pause never becomes RERpeak. Only rows labelled with another phase split
the part: a row without a label (or with a label the reader could not map) does not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

#: Phase labels that make up the exercise part by default.
EXERCISE_PHASES: tuple[str, ...] = ("EXERCISE",)


def exercise_span_s(data: pd.DataFrame, phases: Sequence[str] = EXERCISE_PHASES
                    ) -> tuple[float, float]:
    """First and last time (s) of the exercise part of a test (see the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        Canonical data (:attr:`cpet_nb.record.CPETRecord.data`).
    phases : sequence of str
        Phase labels that count as exercise (case-insensitive), e.g.
        ``("WARMUP", "EXERCISE")`` to include the warm-up.

    Returns
    -------
    (float, float)
        Start and end (s); NaN for an empty table or a labelled file without exercise.
    """
    t = data["t"].to_numpy(dtype=float)
    rows = _labelled(data, phases)
    if rows is None:
        rows = (_positive(data, "load") | _positive(data, "speed"))
        if not rows.any():
            rows = np.ones(len(t), dtype=bool)
    if not rows.any():
        return math.nan, math.nan
    return float(t[rows].min()), float(t[rows].max())


def exercise_rows(data: pd.DataFrame, phases: Sequence[str] = EXERCISE_PHASES) -> pd.DataFrame:
    """The rows within :func:`exercise_span_s` (none when the test has no exercise part)."""
    start, end = exercise_span_s(data, phases)
    if not math.isfinite(start):
        return data.iloc[:0]
    t = data["t"].to_numpy(dtype=float)  # increasing in a canonical record: slice, not mask
    return data.iloc[np.searchsorted(t, start, "left"): np.searchsorted(t, end, "right")]


def exercise_bouts_s(data: pd.DataFrame, phases: Sequence[str] = EXERCISE_PHASES
                     ) -> list[tuple[float, float]]:
    """First and last time (s) of each bout of the exercise part (see the module docstring).

    Parameters
    ----------
    data : pandas.DataFrame
        Canonical data (:attr:`cpet_nb.record.CPETRecord.data`).
    phases : sequence of str
        Phase labels that count as exercise (case-insensitive).

    Returns
    -------
    list of (float, float)
        One bout, :func:`exercise_span_s`, unless rows labelled with another phase lie
        between exercise rows; then one bout per run of exercise rows between them. Empty
        when the test has no exercise part.
    """
    start, end = exercise_span_s(data, phases)
    if not math.isfinite(start):
        return []
    rows = _labelled(data, phases)
    if rows is None:
        return [(start, end)]
    t = data["t"].to_numpy(dtype=float)
    exercise = np.flatnonzero(rows)
    other = np.flatnonzero(data["phase"].notna().to_numpy(dtype=bool) & ~rows)
    # a pause lies between consecutive exercise rows when another phase's row is in between
    paused = (np.searchsorted(other, exercise[1:]) - np.searchsorted(other, exercise[:-1])) > 0
    breaks = np.flatnonzero(paused)
    firsts = exercise[np.r_[0, breaks + 1]]
    lasts = exercise[np.r_[breaks, len(exercise) - 1]]
    return [(float(t[a]), float(t[b])) for a, b in zip(firsts, lasts, strict=True)]


def _labelled(data: pd.DataFrame, phases: Sequence[str]) -> np.ndarray | None:
    """Rows whose phase label is in ``phases``; None when the file labels no phase."""
    if "phase" not in data or not data["phase"].notna().any():
        return None
    wanted = {p.upper() for p in phases}
    labels = data["phase"]
    hits = [label for label in labels.dropna().unique() if str(label).strip().upper() in wanted]
    return labels.isin(hits).to_numpy(dtype=bool)


def _positive(data: pd.DataFrame, channel: str) -> np.ndarray:
    if channel not in data:
        return np.zeros(len(data), dtype=bool)
    return (pd.to_numeric(data[channel], errors="coerce") > 0).to_numpy(dtype=bool)


def on_treadmill(data: pd.DataFrame) -> bool:
    """Whether the record has a positive treadmill ``speed`` anywhere (its ``load``, if any,
    is then a value the cart derived, not a measured work rate)."""
    return "speed" in data and bool((data["speed"] > 0).any())
