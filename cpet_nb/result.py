"""Results of analysing one test, and the results table built from many."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from .findings import Finding, Severity
from .model import DEFAULT_MODEL, MODEL_NAMES
from .model.domains import DomainCurves
from .model.pipeline import ENSEMBLE, ModelEstimate, Threshold
from .physiology.consensus import REVIEW_FLAGS, REVIEW_REASONS, Consensus
from .physiology.effort import EFFORT_MEASURES
from .physiology.measures import PEAK_MEASURES
from .physiology.slopes import SLOPE_MEASURES
from .physiology.thresholds import CLASSICAL_METHODS, ThresholdEstimate
from .physiology.uncertainty import Uncertainty
from .record import Metadata, json_number

THRESHOLD_FIELDS = tuple(Threshold.__dataclass_fields__)

#: Consensus columns per threshold (``vt1_consensus_time_s``, ...): the consensus, the values
#: there, its uncertainty (:mod:`cpet_nb.physiology.uncertainty`) and how far the methods
#: behind it spread.
CONSENSUS_FIELDS = ("consensus_time_s", "consensus_vo2_ml_min", "consensus_pct_vo2peak",
                    "consensus_hr_bpm", "consensus_load_w", "uncertainty_ml_min",
                    "uncertainty_s", "spread_s", "spread_ml_min", "n_methods")

#: Final columns per threshold (``vt1_final_time_s``, ...) and the consensus column each
#: holds unless a reviewer overrode the threshold (:mod:`cpet_nb.batch.review`); with
#: ``vt1_source`` / ``vt2_source`` (:data:`FINAL_SOURCES`) saying which it is.
FINAL_FIELDS: dict[str, str] = {"final_time_s": "consensus_time_s",
                                "final_vo2_ml_min": "consensus_vo2_ml_min",
                                "final_hr_bpm": "consensus_hr_bpm",
                                "final_load_w": "consensus_load_w"}
#: What ``vt1_source`` / ``vt2_source`` hold besides a method's name (``vslope``,
#: ``equivalents``, ...: a reviewer chose that method's estimate): ``consensus`` (no
#: override, or a reviewer accepted the consensus), ``model`` (a reviewer chose the model's
#: estimate), ``expert`` (a reviewer set the time). None when there is no consensus.
FINAL_SOURCES = ("consensus", "model", "expert")

#: Estimates with their own columns (``vt1_<name>_time_s``, ``vt1_<name>_vo2_ml_min``,
#: ``vt2_...``): every shipped model but the CNN, whose thresholds are the ``vt1_*`` and
#: ``vt2_*`` columns, then the ensemble. Every table has them all, NaN for models not chosen,
#: so that tables made with other choices stack and one job store holds them all.
MODEL_COLUMN_NAMES: tuple[str, ...] = (*(m for m in MODEL_NAMES if m != DEFAULT_MODEL),
                                       ENSEMBLE)
#: Fields of each estimate in :data:`MODEL_COLUMN_NAMES` that have columns (as for the
#: classical methods; every field is in :meth:`FileResult.to_dict`).
MODEL_COLUMN_FIELDS = ("time_s", "vo2_ml_min")

#: Columns of the results table, in order. Units are in the names.
#: Review flags come first: they say which rows need a human look, and why.
RESULT_COLUMNS: tuple[str, ...] = (
    "file", "status", "review", *REVIEW_REASONS,
    "format", "sampling", "duration_s",
    *(f"vt1_{f}" for f in THRESHOLD_FIELDS), "vt1_pct_vo2peak",
    *(f"vt2_{f}" for f in THRESHOLD_FIELDS), "vt2_pct_vo2peak",
    *(f"vt1_{f}" for f in CONSENSUS_FIELDS), *(f"vt2_{f}" for f in CONSENSUS_FIELDS),
    *(f"{vt}_{f}" for vt in ("vt1", "vt2") for f in (*FINAL_FIELDS, "source")),
    *(f"{key}_{f}" for key in CLASSICAL_METHODS for f in ("time_s", "vo2_ml_min")),
    *(f"{vt}_{name}_{f}" for name in MODEL_COLUMN_NAMES for vt in ("vt1", "vt2")
      for f in MODEL_COLUMN_FIELDS),
    *PEAK_MEASURES, *EFFORT_MEASURES, "weight_kg",
    *SLOPE_MEASURES,
    "n_findings", "findings", "model_version", "source_sha256",
)
#: Columns of the results table that hold text; ``n_findings`` is an integer, the rest are
#: floats (NaN where unknown).
TEXT_COLUMNS = frozenset({"file", "status", "format", "sampling", "findings", "model_version",
                          "source_sha256", "vt1_source", "vt2_source"})
#: Columns holding true/false, or missing for a file that was not analysed.
BOOL_COLUMNS = frozenset(REVIEW_FLAGS)


@dataclass
class FileResult:
    """Everything cpet_nb found for one input file.

    Attributes
    ----------
    file : str
        The input as given (path or name).
    status : str
        ``"ok"`` (analysed, nothing to report), ``"warning"`` (analysed; read the findings),
        ``"error"`` (not analysed; the findings say why) or ``"skipped"`` (not a CPET
        export, e.g. a README found in a folder; listed so that every input is accounted
        for).
    vt1, vt2 : Threshold or None
        The Oxynet CNN's thresholds (None when it was not chosen, or found none).
    classical : dict of str to ThresholdEstimate
        Each classical method's estimate, or its reason for none
        (:func:`cpet_nb.physiology.thresholds.classical_thresholds`).
    consensus : dict of str to Consensus
        ``"vt1"`` and ``"vt2"``: the consensus of the model and the classical methods
        (:func:`cpet_nb.physiology.consensus.threshold_consensus`).
    consensus_values : dict of str to float
        HR (1/min) and load (W) at each consensus threshold (``vt1_hr_bpm``, ...).
    uncertainty : dict of str to Uncertainty
        ``"vt1"`` and ``"vt2"``: the uncertainty of each consensus threshold
        (:func:`cpet_nb.physiology.uncertainty.consensus_uncertainty`).
    review : dict of str to bool
        The review flags (:data:`cpet_nb.physiology.consensus.REVIEW_FLAGS`); empty when not
        analysed.
    measures : dict of str to float
        Peak values, effort criteria (:func:`cpet_nb.physiology.measures.peak_measures`) and
        their verdict (:func:`cpet_nb.physiology.effort.effort_met`), slopes and
        efficiency (:func:`cpet_nb.physiology.slopes.slope_measures`), units in the keys; NaN where
        unknown.
    findings : list of Finding
    curves : DomainCurves or None
        The CNN's smoothed domain probabilities (for plots).
    models : dict of str to ModelEstimate
        The estimates of the other chosen models (``"ais"``, ...; see
        :data:`cpet_nb.model.MODEL_NAMES`) and, when several models were chosen, of their
        ensemble (``"ensemble"``, :func:`cpet_nb.model.pipeline.ensemble_estimate`), which is
        then the model's vote in the consensus.
    metadata : Metadata or None
    duration_s : float
    model_version : str or None
    """

    file: str
    status: str
    vt1: Threshold | None = None
    vt2: Threshold | None = None
    classical: dict[str, ThresholdEstimate] = field(default_factory=dict)
    consensus: dict[str, Consensus] = field(default_factory=dict)
    consensus_values: dict[str, float] = field(default_factory=dict)
    uncertainty: dict[str, Uncertainty] = field(default_factory=dict)
    review: dict[str, bool] = field(default_factory=dict)
    measures: dict[str, float] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    curves: DomainCurves | None = None
    models: dict[str, ModelEstimate] = field(default_factory=dict)
    metadata: Metadata | None = None
    duration_s: float = math.nan
    model_version: str | None = None

    @property
    def vo2peak_ml_min(self) -> float:
        """VO2peak (mL/min) under the settings' averaging; NaN when unavailable."""
        return self.measures.get("vo2peak_ml_min", math.nan)

    @classmethod
    def failed(cls, file: str, findings: list[Finding], metadata: Metadata | None = None
               ) -> FileResult:
        """A result for a file that could not be analysed."""
        return cls(file=file, status="error", findings=list(findings), metadata=metadata)

    @classmethod
    def error(cls, file: str, code: str, message: str) -> FileResult:
        """A result for a file that could not be analysed, with one error finding about it
        (``code`` from :data:`~cpet_nb.findings.CODES`)."""
        return cls.failed(file, [Finding(code, Severity.ERROR, message, file=file)])

    @classmethod
    def skipped(cls, file: str, finding: Finding) -> FileResult:
        """The row of an input that was not analysed because it is not a CPET export (a
        README, a participants table): status ``skipped``, with the finding that says what
        was seen."""
        return cls(file=file, status="skipped", findings=[finding])

    @staticmethod
    def status_for(findings: list[Finding]) -> str:
        """``error`` / ``warning`` / ``ok`` from the most severe finding."""
        severities = {f.severity for f in findings}
        if Severity.ERROR in severities:
            return "error"
        return "warning" if Severity.WARNING in severities else "ok"

    def renamed(self, label: str) -> FileResult:
        """The same result naming the input ``label`` (e.g. ``archive.zip/member.csv`` for a
        file analysed from a temporary copy), in ``file`` and in the findings about it."""
        findings = [replace(f, file=label) if f.file == self.file else f for f in self.findings]
        return replace(self, file=label, findings=findings)

    def to_row(self) -> dict[str, Any]:
        """One row of the results table (see :data:`RESULT_COLUMNS`)."""
        meta = self.metadata
        weight = meta.weight_kg if meta and meta.weight_kg else None
        row: dict[str, Any] = {
            "file": self.file,
            "status": self.status,
            "format": meta.format if meta else None,
            "sampling": meta.sampling if meta else None,
            "duration_s": self.duration_s,
        }
        for label, vt in (("vt1", self.vt1), ("vt2", self.vt2)):
            for name in THRESHOLD_FIELDS:
                row[f"{label}_{name}"] = getattr(vt, name) if vt else math.nan
            row[f"{label}_pct_vo2peak"] = (100.0 * vt.vo2_ml_min / self.vo2peak_ml_min
                                           if vt else math.nan)
        for flag in REVIEW_FLAGS:
            row[flag] = self.review.get(flag)
        for label in ("vt1", "vt2"):
            agreed = self.consensus.get(label)
            row[f"{label}_consensus_time_s"] = agreed.time_s if agreed else math.nan
            row[f"{label}_consensus_vo2_ml_min"] = agreed.vo2_ml_min if agreed else math.nan
            row[f"{label}_consensus_pct_vo2peak"] = (
                100.0 * agreed.vo2_ml_min / self.vo2peak_ml_min if agreed else math.nan)
            row[f"{label}_consensus_hr_bpm"] = self.consensus_values.get(f"{label}_hr_bpm",
                                                                         math.nan)
            row[f"{label}_consensus_load_w"] = self.consensus_values.get(f"{label}_load_w",
                                                                         math.nan)
            uncertainty = self.uncertainty.get(label)
            row[f"{label}_uncertainty_ml_min"] = uncertainty.ml_min if uncertainty else math.nan
            row[f"{label}_uncertainty_s"] = uncertainty.s if uncertainty else math.nan
            row[f"{label}_spread_s"] = agreed.spread_time_s if agreed else math.nan
            row[f"{label}_spread_ml_min"] = agreed.spread_vo2_ml_min if agreed else math.nan
            row[f"{label}_n_methods"] = agreed.n_methods if agreed else math.nan
            for final, machine in FINAL_FIELDS.items():
                row[f"{label}_{final}"] = row[f"{label}_{machine}"]
            row[f"{label}_source"] = ("consensus" if agreed and math.isfinite(agreed.time_s)
                                      else None)
        for key in CLASSICAL_METHODS:
            estimate = self.classical.get(key)
            row[f"{key}_time_s"] = estimate.time_s if estimate else math.nan
            row[f"{key}_vo2_ml_min"] = estimate.vo2_ml_min if estimate else math.nan
        for name in MODEL_COLUMN_NAMES:
            estimate = self.models.get(name)
            for label in ("vt1", "vt2"):
                vt = getattr(estimate, label) if estimate else None
                for f in MODEL_COLUMN_FIELDS:
                    row[f"{label}_{name}_{f}"] = getattr(vt, f) if vt else math.nan
        for name in PEAK_MEASURES + EFFORT_MEASURES + SLOPE_MEASURES:
            row[name] = self.measures.get(name, math.nan)
        row["weight_kg"] = weight if weight else math.nan
        shown = [f for f in self.findings  # a skipped input's row says why, even if it is info
                 if f.severity is not Severity.INFO or self.status == "skipped"]
        row["n_findings"] = len(shown)
        row["findings"] = "; ".join(str(f) for f in shown)
        row["model_version"] = self.model_version
        row["source_sha256"] = meta.source_sha256 if meta else None
        return {column: row[column] for column in RESULT_COLUMNS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dictionary: thresholds, findings, metadata and curves."""
        return {
            "file": self.file,
            "status": self.status,
            "vt1": self.vt1.to_dict() if self.vt1 else None,
            "vt2": self.vt2.to_dict() if self.vt2 else None,
            "classical": {k: {"time_s": json_number(e.time_s),
                              "vo2_ml_min": json_number(e.vo2_ml_min), "reason": e.reason,
                              "time_low_s": json_number(e.time_low_s),
                              "time_high_s": json_number(e.time_high_s)}
                          for k, e in self.classical.items()},
            "consensus": {k: {f: json_number(v) if isinstance(v, float) else v
                              for f, v in c.__dict__.items()}
                          for k, c in self.consensus.items()},
            "uncertainty": {k: {f: json_number(v) for f, v in u.__dict__.items()}
                            for k, u in self.uncertainty.items()},
            "review": dict(self.review),
            "measures": {k: json_number(v) for k, v in self.measures.items()},
            "duration_s": json_number(self.duration_s),
            "findings": [f.to_dict() for f in self.findings],
            "metadata": self.metadata.to_dict() if self.metadata else None,
            "model_version": self.model_version,
            "curves": _curves_dict(self.curves),
            "models": {name: {"vt1": e.vt1.to_dict() if e.vt1 else None,
                              "vt2": e.vt2.to_dict() if e.vt2 else None,
                              "curves": _curves_dict(e.curves)}
                       for name, e in self.models.items()},
        }


def _curves_dict(curves: DomainCurves | None) -> dict[str, list[float]] | None:
    return curves.to_frame().to_dict(orient="list") if curves else None


def results_table(results: list[FileResult]) -> pd.DataFrame:
    """The results table: one row per result, columns :data:`RESULT_COLUMNS`."""
    return results_frame([r.to_row() for r in results])


def consensus_as_final(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its final columns (:data:`FINAL_FIELDS`) set from the consensus and
    ``vt1_source`` / ``vt2_source`` to ``consensus`` where there is one: the machine's final
    values, before any override (e.g. for rows a store wrote before final columns existed).
    """
    table = table.copy()
    for label in ("vt1", "vt2"):
        for final, machine in FINAL_FIELDS.items():
            table[f"{label}_{final}"] = table[f"{label}_{machine}"]
        agreed = table[f"{label}_consensus_time_s"].notna()
        table[f"{label}_source"] = pd.Series(
            ["consensus" if a else None for a in agreed], index=table.index, dtype=object)
    return table


def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """A results table from row dictionaries (e.g. read back from a job store), with the
    same column order and types whatever the rows hold: text columns as objects (None where
    unknown), ``n_findings`` as integers, every other column as float (NaN where unknown)."""
    raw = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    return pd.DataFrame({column: _typed(column, raw[column]) for column in RESULT_COLUMNS},
                        index=raw.index)  # built at once: a frame of ~300 inserts is slow


def _typed(column: str, values: pd.Series) -> pd.Series:
    """``values`` with the type of results column ``column``."""
    if column == "n_findings":
        return values.astype("int64")
    if column in BOOL_COLUMNS:
        return values.astype("boolean")
    if column in TEXT_COLUMNS:
        return values.astype(object).where(values.notna(), None)
    return pd.to_numeric(values, errors="coerce").astype("float64")

