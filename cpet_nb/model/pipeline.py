"""The Oxynet model pipeline for one record: grid, scaling, inference, thresholds.

Pure function of the record and a loaded model; no dask, Jupyter or files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..findings import Finding
from ..grid import resample_1s
from ..record import MODEL_CHANNELS, CPETRecord, json_number, recorded_at
from . import N_PAST_POINTS, OxynetModel
from .domains import SMOOTHING_LAMBDA_S2, DomainCurves, domain_curves, threshold_rows
from .preprocess import GRID_CHANNELS, minmax_scale, model_windows, trim_to_complete
from .smoothing import optimal_filter


@dataclass
class Threshold:
    """A ventilatory threshold and the values there (NaN where a channel is missing).

    Gas exchange and HR are smoothed values at that second; ``load_w`` and ``speed_km_h``
    are the last values the cart recorded at or before it (the work rate being done).
    """

    time_s: float
    vo2_ml_min: float
    vco2_ml_min: float
    ve_l_min: float
    peto2_mmhg: float
    petco2_mmhg: float
    hr_bpm: float
    load_w: float = math.nan
    speed_km_h: float = math.nan

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready dictionary (NaN becomes None)."""
        return {k: json_number(v) for k, v in self.__dict__.items()}


#: Threshold fields and the grid channel each is read from.
VALUE_CHANNELS = {"vo2_ml_min": "VO2", "vco2_ml_min": "VCO2", "ve_l_min": "VE",
                  "peto2_mmhg": "PetO2", "petco2_mmhg": "PetCO2", "hr_bpm": "HR"}


def model_thresholds(record: CPETRecord, model: OxynetModel
                     ) -> tuple[DomainCurves, Threshold | None, Threshold | None, list[Finding]]:
    """Domain curves and VT1/VT2 of one test with the Oxynet model.

    Values at a threshold (VO2, VCO2, VE, PetO2, PetCO2, HR) are all read from the same
    smoothed series (:func:`~cpet_nb.model.smoothing.optimal_filter`, λ = 100 s²) at the threshold's
    row. The series pairs window *k*'s label with the grid value at the window's last
    sample, exactly as pyoxynet builds its smoothed VO2, so VO2 at a threshold matches
    pyoxynet's; pyoxynet reads HR 41 rows earlier and VE unsmoothed, cpet_nb does not.

    Raises
    ------
    CPETError
        ``constant-channel`` or ``missing-channel`` when the model cannot run.
    """
    file = record.name
    grid = resample_1s(record.data, GRID_CHANNELS)
    grid, findings = trim_to_complete(grid, MODEL_CHANNELS, file)
    scaled = minmax_scale(grid[list(MODEL_CHANNELS)].to_numpy(dtype=float), MODEL_CHANNELS, file)
    windows = model_windows(scaled)
    t = grid["t"].to_numpy()
    time_s = t[1: len(t) - N_PAST_POINTS] + N_PAST_POINTS
    curves, mapping_findings = domain_curves(time_s, model.predict(windows), file)
    vt1_row, vt2_row, vt_findings = threshold_rows(curves, file)
    findings += mapping_findings + vt_findings
    needed = [r for r in (vt1_row, vt2_row) if r is not None]
    values = _values_at(grid, time_s, needed)
    thresholds = [
        Threshold(time_s=float(time_s[row]), **{f: values[f][row] for f in VALUE_CHANNELS},
                  load_w=recorded_at(record.data, "load", time_s[row]),
                  speed_km_h=recorded_at(record.data, "speed", time_s[row]))
        if row is not None else None
        for row in (vt1_row, vt2_row)
    ]
    return curves, thresholds[0], thresholds[1], findings


def _values_at(grid, time_s: np.ndarray, rows: list[int]) -> dict[str, dict[int, float]]:
    """Smoothed value of each channel at each of ``rows`` (NaN where the channel is missing)."""
    out: dict[str, dict[int, float]] = {}
    last_sample = slice(N_PAST_POINTS, N_PAST_POINTS + len(time_s))
    for field, channel in VALUE_CHANNELS.items():
        series = (grid[channel].to_numpy(dtype=float)[last_sample] if channel in grid
                  else np.full(len(time_s), np.nan))
        if rows and np.isfinite(series).all():
            smoothed = optimal_filter(time_s, series, SMOOTHING_LAMBDA_S2)
        else:
            smoothed = series  # a channel with gaps: the value at that second, or missing
        out[field] = {row: float(smoothed[row]) for row in rows}
    return out
