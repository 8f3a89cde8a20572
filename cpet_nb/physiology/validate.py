"""Checks that decide whether a record can be analysed, and what can be computed from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..findings import Finding, Severity
from ..record import CANONICAL_UNITS, MODEL_CHANNELS, CPETRecord

#: Plausible range of a channel's median over a test (canonical units). A median outside it
#: almost always means wrong units (e.g. VO2 in L/min labelled mL/min) or a wrong column.
PLAUSIBLE_MEDIAN: dict[str, tuple[float, float]] = {
    "VO2": (100.0, 7000.0),
    "VCO2": (100.0, 8000.0),
    "VE": (3.0, 250.0),
    "PetO2": (60.0, 150.0),
    "PetCO2": (10.0, 70.0),
    "HR": (30.0, 230.0),
    "RF": (4.0, 90.0),
}
#: Shortest test (s) for which the model's thresholds are attempted: the 40 s window, the
#: 40-window lag of the threshold rule and the 5-window mapping at each end.
MIN_DURATION_FOR_THRESHOLDS_S = 120.0


def screen_values(record: CPETRecord) -> tuple[CPETRecord, list[Finding]]:
    """Check that VO2 exists and every channel's median is plausible.

    Policy: implausible VO2 is an error (every reported number would be wrong). Any other
    implausible channel is blanked (set missing) with a warning, so it produces no number,
    and the rest of the test is still analysed; a blanked model channel makes the
    thresholds unavailable.

    Returns
    -------
    (CPETRecord, list of Finding)
        The record (a copy when a channel was blanked) and the findings.
    """
    file = record.name
    findings = []
    data = record.data
    if "VO2" not in data or data["VO2"].isna().all():
        findings.append(Finding("missing-channel", Severity.ERROR,
                                "no VO2 values: nothing can be computed", file=file,
                                column="VO2"))
    blanked = []
    for channel, (low, high) in PLAUSIBLE_MEDIAN.items():
        if channel not in data:
            continue
        values = data[channel].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values) == 0:
            continue
        median = float(np.median(values))
        if not low <= median <= high:
            unit = CANONICAL_UNITS[channel]
            fatal = channel == "VO2"
            findings.append(Finding(
                "implausible-values", Severity.ERROR if fatal else Severity.WARNING,
                f"median {median:.4g} {unit} is outside the plausible {low:g}-{high:g} {unit}; "
                + ("check the column and its unit" if fatal else
                   "the channel was set missing (check its column and unit)"),
                file=file, column=channel))
            if not fatal:
                blanked.append(channel)
    if blanked:
        data = data.copy()
        data[blanked] = np.nan
        record = replace(record, data=data)
    return record, findings


#: Exercise shorter than this (s) rarely reaches a maximal effort in an incremental test
#: (recommended ramp durations are 8-12 min; Buchfuhrer et al. 1983, J Appl Physiol 55:1558).
MIN_EXERCISE_S = 180.0
#: Averages longer than this (s) blur breath-level events the threshold methods look for.
MAX_AVERAGING_S = 5.0


def check_protocol(record: CPETRecord) -> list[Finding]:
    """Warnings about how the test was recorded: too little exercise, averaged data.

    Exercise time is the span of rows in phase ``EXERCISE`` when the file marks phases,
    otherwise the whole test.
    """
    file = record.name
    findings = []
    data = record.data
    exercise = data[data["phase"] == "EXERCISE"] if "phase" in data else data
    if "phase" in data and exercise.empty:
        exercise = data
    span_s = float(exercise["t"].iloc[-1] - exercise["t"].iloc[0]) if len(exercise) else 0.0
    if span_s < MIN_EXERCISE_S:
        where = "in the EXERCISE phase" if exercise is not data else "in all"
        findings.append(Finding(
            "too-short", Severity.WARNING,
            f"{span_s:.0f} s of exercise {where}, less than {MIN_EXERCISE_S:.0f} s: peak values "
            "are unlikely to reflect a maximal effort", file=file))
    sampling = record.metadata.sampling or ""
    if sampling.startswith("averaged"):
        step_s = float(sampling.split()[1])
        if step_s > MAX_AVERAGING_S:
            findings.append(Finding(
                "averaged-data", Severity.WARNING,
                f"the data are {step_s:g} s averages, not breath-by-breath: VO2peak over a "
                f"window shorter than {step_s:g} s is not meaningful and thresholds are coarser",
                file=file))
    return findings


def threshold_blockers(record: CPETRecord) -> list[Finding]:
    """Why the model's thresholds cannot be computed (warnings; other measures still can)."""
    file = record.name
    missing = [c for c in MODEL_CHANNELS if c not in record.data or record.data[c].isna().all()]
    findings = []
    if missing:
        findings.append(Finding(
            "missing-channel", Severity.WARNING,
            f"thresholds unavailable: the model needs {', '.join(MODEL_CHANNELS)}; "
            f"missing {', '.join(missing)}", file=file, column=missing[0]))
    if record.duration_s < MIN_DURATION_FOR_THRESHOLDS_S:
        findings.append(Finding(
            "too-short", Severity.WARNING,
            f"thresholds unavailable: the test lasts {record.duration_s:.0f} s, the model needs "
            f"at least {MIN_DURATION_FOR_THRESHOLDS_S:.0f} s", file=file))
    return findings
