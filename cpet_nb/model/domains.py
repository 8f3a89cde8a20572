"""From the model's scores to exercise-intensity domains and the two ventilatory thresholds.

Follows pyoxynet 0.1.12 (``test_pyoxynet``), with its defects fixed or flagged:

1. Each score series is smoothed with :func:`~cpet_nb.model.smoothing.optimal_filter` (λ = 100 s²).
2. The three outputs are mapped per test: *moderate* is the output with the largest mean over
   the first 5 windows, *severe* the largest over the last 5, *heavy* the other one. When the
   same output wins both, pyoxynet silently uses one series for two domains; cpet_nb keeps
   the model's trained order (moderate, heavy, severe) and reports
   ``domain-mapping-ambiguous``.
3. VT1 is at the first window where p(heavy) >= p(moderate), VT2 at the last window where
   p(severe) <= p(heavy), each moved back by 40 windows (the window length). When that lands
   before the first window, pyoxynet's negative index wraps round to the end of the test;
   cpet_nb reports ``vt-too-early`` and leaves the threshold missing.
4. VT2 at or before VT1 (the heavy and severe outputs swapped) is reported as ``vt-order``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..findings import Finding, Severity
from . import N_PAST_POINTS
from .smoothing import optimal_filter

#: pyoxynet's smoothing weight for the domain probabilities and the values at thresholds (s²).
SMOOTHING_LAMBDA_S2 = 100.0
#: Windows averaged at each end of the test to decide which output is which domain.
MAPPING_WINDOWS = 5


@dataclass
class DomainCurves:
    """Smoothed domain probabilities over time.

    Attributes
    ----------
    time_s : numpy.ndarray
        Label of each window (s): the time just after its last sample.
    p_moderate, p_heavy, p_severe : numpy.ndarray
        Smoothed sigmoid scores of the outputs mapped to each domain (not normalised to sum 1).
    output_order : tuple of int
        Model output index used for (moderate, heavy, severe).
    """

    time_s: np.ndarray
    p_moderate: np.ndarray
    p_heavy: np.ndarray
    p_severe: np.ndarray
    output_order: tuple[int, int, int]

    def to_frame(self) -> pd.DataFrame:
        """The curves as a DataFrame with columns ``time_s, p_moderate, p_heavy, p_severe``."""
        return pd.DataFrame({"time_s": self.time_s, "p_moderate": self.p_moderate,
                             "p_heavy": self.p_heavy, "p_severe": self.p_severe})

    def __len__(self) -> int:
        return len(self.time_s)


def map_outputs(smoothed: np.ndarray, file: str) -> tuple[tuple[int, int, int], list[Finding]]:
    """Decide which model output is moderate, heavy and severe for this test.

    Parameters
    ----------
    smoothed : numpy.ndarray
        Smoothed scores, shape ``[n, 3]``.

    Returns
    -------
    ((int, int, int), list of Finding)
        Output indices for (moderate, heavy, severe), and findings.
    """
    moderate = int(np.argmax(smoothed[:MAPPING_WINDOWS].mean(axis=0)))
    severe = int(np.argmax(smoothed[-MAPPING_WINDOWS:].mean(axis=0)))
    if moderate == severe:
        finding = Finding(
            "domain-mapping-ambiguous", Severity.WARNING,
            f"model output {moderate} dominates both the first and the last "
            f"{MAPPING_WINDOWS} s; the model's trained order (moderate, heavy, severe) was used",
            file=file)
        return (0, 1, 2), [finding]
    heavy = ({0, 1, 2} - {moderate, severe}).pop()
    return (moderate, heavy, severe), []


def domain_curves(time_s: np.ndarray, scores: np.ndarray, file: str
                  ) -> tuple[DomainCurves, list[Finding]]:
    """Smooth the model's scores and map them to domains.

    Parameters
    ----------
    time_s : numpy.ndarray
        Window labels (s), strictly increasing.
    scores : numpy.ndarray
        Raw model scores, shape ``[n, 3]``.
    """
    smoothed = optimal_filter(time_s, scores, SMOOTHING_LAMBDA_S2)  # each score on its own
    order, findings = map_outputs(smoothed, file)
    curves = DomainCurves(time_s, *(smoothed[:, j] for j in order), output_order=order)
    return curves, findings


def threshold_rows(curves: DomainCurves, file: str) -> tuple[int | None, int | None, list[Finding]]:
    """Rows of ``curves`` at VT1 and VT2 (``None`` where there is none), with findings."""
    findings = []
    rows: list[int | None] = []
    crossings = (
        ("VT1", "vt1-not-found", np.flatnonzero(curves.p_heavy >= curves.p_moderate), 0),
        ("VT2", "vt2-not-found", np.flatnonzero(curves.p_severe <= curves.p_heavy), -1),
    )
    for label, missing_code, hits, pick in crossings:
        if len(hits) == 0:
            findings.append(Finding(
                missing_code, Severity.WARNING,
                f"{label} not found: {_crossing_text(label)} never happens", file=file))
            rows.append(None)
            continue
        row = int(hits[pick]) - N_PAST_POINTS
        if row < 0:
            findings.append(Finding(
                "vt-too-early", Severity.WARNING,
                f"{label} would lie {-row} s before the first full model window "
                f"(t = {curves.time_s[0]:.0f} s); left missing", file=file))
            rows.append(None)
            continue
        rows.append(row)
    vt1, vt2 = rows
    if vt1 is not None and vt2 is not None and curves.time_s[vt2] <= curves.time_s[vt1]:
        findings.append(Finding(
            "vt-order", Severity.WARNING,
            f"VT2 ({curves.time_s[vt2]:.0f} s) is not after VT1 ({curves.time_s[vt1]:.0f} s): "
            "the model's heavy and severe outputs look swapped; review this test", file=file))
    return vt1, vt2, findings


def _crossing_text(label: str) -> str:
    return ("p(heavy) >= p(moderate)" if label == "VT1" else "p(severe) <= p(heavy)")
