"""Checks that decide whether a record can be analysed, and what can be computed from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

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
    if "VO2" not in data or np.isnan(data["VO2"].to_numpy(dtype=float)).all():
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


#: Physiological range of a single breath (canonical units). A value outside it is not a
#: measurement of a person breathing room air (a glitch, a lost signal, a value in another
#: unit) and is set missing by :func:`screen_breaths`. Each bound is wider than anything seen
#: in the shipped real tests except breaths that are artefacts on inspection (docs/api.md).
#: Typical values: ATS/ACCP Statement on cardiopulmonary exercise testing (2003), Am J Respir
#: Crit Care Med 167:211-277; Wasserman et al., Principles of Exercise Testing and
#: Interpretation, 5th ed. (2012).
BREATH_RANGES: dict[str, tuple[float, float]] = {
    # resting VO2 of a 30 kg child is about 100 mL/min (3.5 mL/kg/min); the highest VO2max
    # reported are about 7,500 mL/min, and single breaths scatter about 20 % around it
    "VO2": (50.0, 10000.0),
    "VCO2": (50.0, 12000.0),  # as VO2, times an RER of up to about 1.3 at exhaustion
    # a shallow resting breath is still 3-5 L/min; elite athletes peak at 200-280 L/min
    "VE": (2.0, 350.0),
    # end-tidal PO2 cannot exceed the inspired PO2, 0.2093 x (PB - 47) = 158 mmHg even at
    # PB = 800 mmHg; below 40 mmHg a person would be profoundly hypoxaemic
    "PetO2": (40.0, 160.0),
    "PetCO2": (10.0, 80.0),  # extreme hyperventilation about 15, severe hypercapnia 60-70
    "HR": (25.0, 250.0),  # escape rhythms of complete heart block about 30; HRmax about 220
    # 120 /min is a 0.5 s breath; 90 /min is seen at peak exercise in a real ZAN test
    "RF": (3.0, 120.0),
}
#: Spike test (a Hampel identifier; Pearson 2002, IEEE Trans Control Syst Technol 10:55):
#: a value is an outlier breath when it is more than :data:`SPIKE_FOLD` times above or below
#: the median of the breath and its :data:`SPIKE_HALF_WINDOW` neighbours on either side, AND
#: more than :data:`SPIKE_ROBUST_SD` robust standard deviations from that median (1.4826 x
#: the median absolute deviation from the running median, over
#: :data:`SPREAD_HALF_WINDOW` breaths either side). The fold is physiology: VO2 follows a
#: change in work rate with a time constant of 20-40 s (Whipp & Wasserman 1972, J Appl
#: Physiol 33:351), so one breath at a third or three times its neighbours is a swallow, a
#: cough or a missed trigger, not gas exchange. The robust SD keeps breath noise at rest
#: (where a factor of 3 can be noise) in. Kinetics studies delete far more: breaths beyond
#: 4 SD of the local mean (after Lamarra et al. 1987, J Appl Physiol 62:2003); here only
#: breaths that cannot be physiological go, so that peaks and thresholds do not move.
SPIKE_HALF_WINDOW = 5
SPREAD_HALF_WINDOW = 30
SPIKE_FOLD = 3.0
SPIKE_ROBUST_SD = 5.0
#: Rows quoted in a finding's message (the finding gives the count of all).
QUOTED_ROWS = 5


def screen_breaths(record: CPETRecord) -> tuple[CPETRecord, list[Finding]]:
    """Set implausible single values missing, before any measure, model or threshold.

    For each channel of :data:`BREATH_RANGES`: values outside the range become missing
    (``implausible-values`` warning), then, in breath-by-breath and 1 s data, spikes against
    the running median (see :data:`SPIKE_FOLD`) become missing too (``outlier-breath``,
    info: artefact breaths are expected in breath-by-breath data). Averages are not
    spike-tested: a bad breath is diluted in its average, and neighbouring averages lie
    minutes apart. Rows are never deleted; one finding per channel and test names the rows
    (1-based rows of the record, with their times) and values.

    Run after :func:`screen_values`, whose unit check needs the unscreened medians.

    Returns
    -------
    (CPETRecord, list of Finding)
        The record (a copy when a value was set missing) and the findings.
    """
    data = record.data
    spike_test = record.metadata.sampling in ("breath-by-breath", "1 s grid")
    findings, screened = [], {}
    for channel, (low, high) in BREATH_RANGES.items():
        if channel not in data:
            continue
        values = data[channel].to_numpy(dtype=float).copy()
        outside = np.isfinite(values) & ~((values >= low) & (values <= high))
        if outside.any():
            findings.append(_rows_finding(
                "implausible-values", Severity.WARNING, record, channel, outside, values,
                f"outside the physiological range {low:g}-{high:g} {CANONICAL_UNITS[channel]}"))
            values[outside] = np.nan
            screened[channel] = values
        if not spike_test:
            continue
        spikes, medians = _spikes(values)
        if spikes.any():
            findings.append(_rows_finding(
                "outlier-breath", Severity.INFO, record, channel, spikes, values,
                f"spikes, over {SPIKE_FOLD:g} times above or below the median of the "
                f"{2 * SPIKE_HALF_WINDOW + 1} rows centred on them and over "
                f"{SPIKE_ROBUST_SD:g} robust SD from it (swallows, coughs, missed breath "
                "triggers)", medians))
            values[spikes] = np.nan
            screened[channel] = values
    if screened:
        data = data.copy()
        for channel, values in screened.items():
            data[channel] = values
        record = replace(record, data=data)
    return record, findings


def _spikes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which values are spikes (see :data:`SPIKE_FOLD`), and the running medians.

    The robust SD is needed only where the fold already exceeds :data:`SPIKE_FOLD`, so it is
    computed there alone."""
    median = _centred_median(values, SPIKE_HALF_WINDOW)
    deviation = np.abs(values - median)
    with np.errstate(invalid="ignore", divide="ignore"):
        fold = np.maximum(values / median, median / values)
    candidates = np.flatnonzero(fold > SPIKE_FOLD)
    spikes = np.zeros(len(values), dtype=bool)
    if len(candidates):
        spread = 1.4826 * _centred_median(deviation, SPREAD_HALF_WINDOW, candidates)
        spikes[candidates] = deviation[candidates] > SPIKE_ROBUST_SD * spread
    return spikes, median


def _centred_median(values: np.ndarray, half_window: int, at: np.ndarray | None = None
                    ) -> np.ndarray:
    """Median of the values present among each one and its ``half_window`` neighbours on
    either side (at the positions ``at``, default every one); NaN where fewer than
    ``half_window + 1`` are present. ``Series.rolling(2 * half_window + 1, center=True,
    min_periods=half_window + 1).median()`` on arrays."""
    if not len(values):
        return np.empty(0)
    width = 2 * half_window + 1
    edge = np.full(half_window, np.nan)
    padded = np.concatenate((edge, values, edge))
    present = np.concatenate(([0], np.cumsum(~np.isnan(padded))))
    count = present[width:] - present[:-width]  # values present in each window
    windows = sliding_window_view(padded, width)
    if at is not None:
        windows, count = windows[at], count[at]
    windows = np.sort(windows, axis=1)  # NaN sort last
    median = windows[:, half_window].copy()  # of a full window: its middle value
    partial = np.flatnonzero(count < width)
    count = count[partial]
    upper = windows[partial, count // 2]
    lower = windows[partial, np.maximum(count - 1, 0) // 2]
    median[partial] = np.where(count > half_window,
                               np.where(count % 2 == 1, upper, (lower + upper) / 2), np.nan)
    return median


def _rows_finding(code: str, severity: Severity, record: CPETRecord, channel: str,
                  rows: np.ndarray, values: np.ndarray, why: str,
                  medians: np.ndarray | None = None) -> Finding:
    """One finding naming the first :data:`QUOTED_ROWS` of ``rows`` (a mask) with their times
    and values (and running medians), and how many there are in all."""
    positions = np.flatnonzero(rows)
    t = record.data["t"].to_numpy(dtype=float)
    quoted = []
    for i in positions[:QUOTED_ROWS]:
        text = f"row {i + 1} (t = {t[i]:.1f} s) {values[i]:.4g}"
        if medians is not None:
            text += f" vs median {medians[i]:.4g}"
        quoted.append(text)
    more = len(positions) - len(quoted)
    return Finding(
        code, severity,
        f"{len(positions)} value(s) set missing as {why}: " + "; ".join(quoted)
        + (f"; and {more} more" if more else "") + f" ({CANONICAL_UNITS[channel]})",
        file=record.name, column=channel,
        row=int(positions[0]) + 1 if len(positions) == 1 else None)


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
    missing = [c for c in MODEL_CHANNELS if c not in record.data
               or np.isnan(record.data[c].to_numpy(dtype=float)).all()]
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
