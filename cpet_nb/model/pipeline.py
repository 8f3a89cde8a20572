"""The model pipeline for one record: grid, scaling, inference, thresholds.

The grid, scaling and windows are made once per record (:func:`model_input`) and shared by
every chosen model (:func:`model_estimate`) and their ensemble (:func:`ensemble_estimate`).
Pure functions of the record and loaded models; no dask, Jupyter or files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from ..findings import Finding
from ..grid import resample_1s_arrays
from ..record import MODEL_CHANNELS, CPETRecord, json_number, recorded_at
from .domains import SMOOTHING_LAMBDA_S2, DomainCurves, domain_curves, threshold_rows
from .oxynet import DEFAULT_MODEL, N_PAST_POINTS, OxynetModel, sliding_windows
from .preprocess import GRID_CHANNELS, complete_rows, minmax_scale, model_rows
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


#: The name of the ensemble of several models (in results: ``vt1_ensemble_time_s``, ...).
ENSEMBLE = "ensemble"

#: Threshold fields and the grid channel each is read from.
VALUE_CHANNELS = {"vo2_ml_min": "VO2", "vco2_ml_min": "VCO2", "ve_l_min": "VE",
                  "peto2_mmhg": "PetO2", "petco2_mmhg": "PetCO2", "hr_bpm": "HR"}


@dataclass
class ModelEstimate:
    """One model's domain curves and thresholds on one test (or an ensemble's).

    Attributes
    ----------
    curves : DomainCurves
    vt1, vt2 : Threshold or None
    """

    curves: DomainCurves
    vt1: Threshold | None
    vt2: Threshold | None


@dataclass
class ModelInput:
    """One test prepared for the models, once for all of them.

    Attributes
    ----------
    record : CPETRecord
    grid : dict of str to numpy.ndarray
        The 1 s grid (``t`` and the :data:`~cpet_nb.model.preprocess.GRID_CHANNELS` the
        record has), trimmed to the seconds that have every model channel.
    time_s : numpy.ndarray
        Label of each window (s).
    rows : numpy.ndarray
        The scaled rows the windows are made of, ``[n + 39, 5]`` (``[0, 5]`` when there is
        no window; :func:`~cpet_nb.model.preprocess.model_rows`).
    findings : list of Finding
        About the preparation (``gaps-trimmed``).
    """

    record: CPETRecord
    grid: dict[str, np.ndarray]
    time_s: np.ndarray
    rows: np.ndarray
    findings: list[Finding]

    @cached_property
    def windows(self) -> np.ndarray:
        """The models' input windows, ``[n, 40, 5]`` (made on first use)."""
        return np.ascontiguousarray(sliding_windows(self.rows))

    @cached_property
    def smoothed_values(self) -> dict[str, np.ndarray]:
        """Each of :data:`VALUE_CHANNELS`' series at the windows, smoothed (computed once)."""
        return _smoothed_values(self.grid, self.time_s)


def model_input(record: CPETRecord) -> ModelInput:
    """The models' input of one test (the scaled rows of its windows) and what goes with
    them.

    Raises
    ------
    CPETError
        ``constant-channel`` or ``missing-channel`` when no model can run.
    """
    file = record.name
    data = record.data
    names = ["t", *(c for c in GRID_CHANNELS if c in data)]  # as resample_1s
    grid = resample_1s_arrays(data["t"].to_numpy(dtype=float),
                              {c: data[c].to_numpy(dtype=float) for c in names})
    rows, findings = complete_rows({c: grid[c] for c in MODEL_CHANNELS}, file)
    grid = {c: values[rows] for c, values in grid.items()}
    scaled = minmax_scale(np.column_stack([grid[c] for c in MODEL_CHANNELS]), MODEL_CHANNELS,
                          file)
    t = grid["t"]
    time_s = t[1: len(t) - N_PAST_POINTS] + N_PAST_POINTS
    return ModelInput(record, grid, time_s, model_rows(scaled), findings)


def model_estimate(prepared: ModelInput, model: OxynetModel
                   ) -> tuple[ModelEstimate, list[Finding]]:
    """Domain curves and VT1/VT2 of one test with one model (all its windows at once),
    and findings about its output (mapping, crossings, order); those of any model but the
    CNN start with its name (``"ais model: ..."``)."""
    file = prepared.record.name
    curves, findings = domain_curves(prepared.time_s, model.predict_rows(prepared.rows), file)
    label = None if model.name == DEFAULT_MODEL else f"{model.name} model"
    return _estimate(prepared, curves, findings, label)


def ensemble_estimate(prepared: ModelInput, members: Sequence[ModelEstimate]
                      ) -> tuple[ModelEstimate, list[Finding]]:
    """The ensemble of several models: their domain curves averaged window by window.

    Each member's outputs are first mapped to domains on their own
    (:func:`~cpet_nb.model.domains.map_outputs`), so the average is of p(moderate) with
    p(moderate), and so on; VT1 and VT2 then follow from the averaged curves by the same
    rules as for one model. The mean of smoothed curves is the smoothed mean (the smoother
    is linear), so it does not matter which comes first. Findings start with ``ensemble:``.
    """
    curves = DomainCurves(
        prepared.time_s,
        *(np.mean([getattr(m.curves, p) for m in members], axis=0)
          for p in ("p_moderate", "p_heavy", "p_severe")),
        output_order=(0, 1, 2))
    return _estimate(prepared, curves, [], "ensemble")


def model_thresholds(record: CPETRecord, model: OxynetModel
                     ) -> tuple[DomainCurves, Threshold | None, Threshold | None, list[Finding]]:
    """Domain curves and VT1/VT2 of one test with one model.

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
    prepared = model_input(record)
    estimate, findings = model_estimate(prepared, model)
    return estimate.curves, estimate.vt1, estimate.vt2, prepared.findings + findings


def _estimate(prepared: ModelInput, curves: DomainCurves, findings: list[Finding],
              label: str | None) -> tuple[ModelEstimate, list[Finding]]:
    """Thresholds on ``curves`` and the values there; findings prefixed with ``label``."""
    record = prepared.record
    vt1_row, vt2_row, vt_findings = threshold_rows(curves, record.name)
    findings = findings + vt_findings
    if label is not None:
        findings = [replace(f, message=f"{label}: {f.message}") for f in findings]
    thresholds = [_threshold(prepared, row) if row is not None else None
                  for row in (vt1_row, vt2_row)]
    return ModelEstimate(curves, thresholds[0], thresholds[1]), findings


def _threshold(prepared: ModelInput, row: int) -> Threshold:
    time_s = prepared.time_s[row]
    data = prepared.record.data
    return Threshold(time_s=float(time_s),
                     **{f: float(prepared.smoothed_values[f][row]) for f in VALUE_CHANNELS},
                     load_w=recorded_at(data, "load", time_s),
                     speed_km_h=recorded_at(data, "speed", time_s))


def _smoothed_values(grid: dict[str, np.ndarray], time_s: np.ndarray
                     ) -> dict[str, np.ndarray]:
    """Smoothed series of each channel at the windows (the raw series where it has gaps, so
    a value there is the value at that second, or missing)."""
    last_sample = slice(N_PAST_POINTS, N_PAST_POINTS + len(time_s))
    out = {field: (grid[channel][last_sample] if channel in grid
                   else np.full(len(time_s), np.nan))
           for field, channel in VALUE_CHANNELS.items()}
    complete = [field for field, series in out.items() if np.isfinite(series).all()]
    if complete:  # smoothed together: one factorisation, the same numbers as one by one
        smoothed = optimal_filter(time_s, np.column_stack([out[f] for f in complete]),
                                  SMOOTHING_LAMBDA_S2)
        out |= {field: smoothed[:, j] for j, field in enumerate(complete)}
    return out
