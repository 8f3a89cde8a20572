"""``analyze``: one test in, one :class:`~cpet_nb.result.FileResult` out."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial

import pandas as pd

from .findings import CPETError, Finding, Severity, display_name, fold_repeats, has_errors
from .io import ColumnMapping, read
from .io.companion import merge_hr, read_hr
from .io.end_tidal import derive_end_tidal_pressures
from .io.participants import SubjectTable
from .model import DEFAULT_MODEL, OxynetModel, get_model
from .model.pipeline import (
    ENSEMBLE,
    ModelEstimate,
    ensemble_estimate,
    model_estimate,
    model_input,
)
from .physiology._arrays import TestArrays
from .physiology.consensus import (
    MODEL_VOTE_LAG_S,
    Estimate,
    lag_corrected_votes,
    review_flags,
    threshold_consensus,
)
from .physiology.effort import effort_measures
from .physiology.measures import peak_measures
from .physiology.slopes import slope_measures
from .physiology.thresholds import classical_thresholds, vo2_at
from .physiology.uncertainty import consensus_uncertainty
from .physiology.validate import check_protocol, screen_breaths, screen_values, threshold_blockers
from .record import CPETRecord, length_problem, mean_around, recorded_at
from .result import FileResult
from .settings import Settings


def analyze(source: str | os.PathLike | CPETRecord, *, model: OxynetModel | None = None,
            models: Sequence[str] | None = None,
            format: str | None = None, mapping: ColumnMapping | None = None,
            subjects: SubjectTable | None = None,
            hr_file: str | os.PathLike | pd.DataFrame | None = None,
            hr_offset_s: float | None = None, settings: Settings | None = None,
            max_file_bytes: int | None = None) -> FileResult:
    """Analyse one CPET test: thresholds, domain curves, measures and findings.

    Input problems never raise: they come back as a result with ``status="error"`` and a
    finding that says what is wrong.

    Parameters
    ----------
    source : str, path-like or CPETRecord
        A file in any supported format (see :func:`cpet_nb.io.readers`) or a record.
    model : OxynetModel, optional
        A loaded model to use for its own name (``model.name``) instead of the process-wide
        one (:func:`cpet_nb.model.get_model`).
    models : sequence of str, optional
        pyoxynet's models to run, e.g. ``["cnn", "ais", "nswis"]``
        (:data:`cpet_nb.model.MODEL_NAMES`); default: the settings' ``models`` (the CNN
        alone). With several, their ensemble is the model's vote in the consensus.
    format : str, optional
        Reader name, to skip content detection.
    mapping : ColumnMapping, optional
        Column mapping for a layout no built-in reader knows (e.g. a lab profile's:
        ``cpet_nb.load_profile(name)``); default: the settings' ``profile``, if any.
    subjects : SubjectTable, optional
        A participants table whose row for this file overrides the file's weight, height,
        age and sex and may give the barometric pressure (:mod:`cpet_nb.io.participants`;
        it comes before ``settings.barometric_pressure_mmhg``).
    hr_file : str, path-like or DataFrame, optional
        A heart-rate recording (TCX or CSV, or what :func:`cpet_nb.io.companion.read_hr`
        returns) to fill HR the cart did not record (:func:`cpet_nb.io.companion.merge_hr`).
    hr_offset_s : float, optional
        The companion's time (s) at the test's t = 0; see :func:`~cpet_nb.io.companion.merge_hr`.
    settings : Settings, optional
        Analysis choices (models, averaging of peaks, effort criteria, file size limit,
        lab profile, the lab's barometric pressure); default
        :class:`~cpet_nb.settings.Settings()`.
    max_file_bytes : int, optional
        Larger files are refused (default: the settings' ``max_file_mb``).

    Returns
    -------
    FileResult

    Examples
    --------
    >>> import cpet_nb
    >>> result = cpet_nb.analyze(cpet_nb.datasets.pyoxynet_tests()[0])
    >>> result.status, result.vt1.time_s < result.vt2.time_s
    ('ok', True)
    >>> several = cpet_nb.analyze(cpet_nb.datasets.pyoxynet_tests()[0], models=["cnn", "ais"])
    >>> sorted(several.models), several.model_version.count("+")
    (['ais', 'ensemble'], 1)
    """
    settings = settings or Settings()
    if models is not None:
        settings = settings.replace(models=models)
    if isinstance(source, CPETRecord):
        record, file = source, source.name
    else:
        file = display_name(os.fspath(source))  # the path itself is read as it is
        try:
            record = _read(source, settings, format, mapping, max_file_bytes)
        except CPETError as exc:
            return FileResult.failed(file, [exc.finding])
    if subjects is not None:
        record = subjects.apply(record)
    if hr_file is not None:
        hr = hr_file if isinstance(hr_file, pd.DataFrame) else read_hr(hr_file)
        record = merge_hr(record, hr, hr_offset_s)
    return analyze_record(record, file=file, model=model, settings=settings)


def _read(source: str | os.PathLike, settings: Settings, format: str | None,
          mapping: ColumnMapping | None, max_file_bytes: int | None) -> CPETRecord:
    """Read ``source`` as :func:`analyze` does (the settings' lab profile unless a format
    or mapping is given; the settings' size limit unless one is given)."""
    if mapping is None and format is None and settings.profile is not None:
        mapping = ColumnMapping.from_dict(settings.profile)
    return read(source, format=format, mapping=mapping,
                max_file_bytes=max_file_bytes or settings.max_file_bytes)


def record_as_analysed(source: str | os.PathLike, settings: Settings | None = None
                       ) -> CPETRecord:
    """The breath data of the file ``source`` as :func:`analyze` analyses them: read with
    the settings' lab profile and size limit, end-tidal pressures derived, values and
    breaths screened (:func:`screen_record`).

    For recomputing values at a time a reviewer chose (:mod:`cpet_nb.batch.review`) with
    the data the automatic thresholds were found in. A participants table is not applied:
    it changes subject metadata only (and end-tidal pressures), never VO2, HR or load.

    Raises
    ------
    CPETError
        When the file cannot be read, or screening finds an error (the finding says why).
    """
    settings = settings or Settings()
    record, findings = screen_record(_read(source, settings, None, None, None), settings)
    errors = [f for f in findings if f.severity is Severity.ERROR]
    if errors:
        raise CPETError(errors[0])
    return record


def screen_record(record: CPETRecord, settings: Settings) -> tuple[CPETRecord, list[Finding]]:
    """The record as the analysis sees it, and the findings so far: end-tidal pressures
    derived from ``settings.barometric_pressure_mmhg`` when it is set
    (:func:`~cpet_nb.io.end_tidal.derive_end_tidal_pressures`), implausible values screened
    (:func:`~cpet_nb.physiology.validate.screen_values`) and, unless that found an error,
    breaths (:func:`~cpet_nb.physiology.validate.screen_breaths`)."""
    if settings.barometric_pressure_mmhg is not None:
        record = derive_end_tidal_pressures(record, settings.barometric_pressure_mmhg,
                                            "Settings.barometric_pressure_mmhg")
    record, screen_findings = screen_values(record)
    findings = fold_repeats(record.findings, screen_findings)
    if has_errors(findings):
        return record, findings
    record, breath_findings = screen_breaths(record)
    return record, findings + breath_findings


def hr_load_at(data: pd.DataFrame | TestArrays, time_s: float) -> dict[str, float]:
    """HR (1/min) and load (W) at a threshold's time, as the results give them at the
    consensus: HR averaged over ±10 s (:func:`~cpet_nb.record.mean_around`), the work rate
    being held then (:func:`~cpet_nb.record.recorded_at`); NaN where unknown. ``data`` is a
    record's canonical data or its :class:`~cpet_nb.physiology._arrays.TestArrays`.

    Returns
    -------
    dict
        ``{"hr_bpm": ..., "load_w": ...}``.
    """
    return {"hr_bpm": mean_around(data, "HR", time_s),
            "load_w": recorded_at(data, "load", time_s)}


def analyze_record(record: CPETRecord, *, file: str | None = None,
                   model: OxynetModel | None = None,
                   settings: Settings | None = None) -> FileResult:
    """:func:`analyze` for a record already read.

    A record longer than :data:`~cpet_nb.record.MAX_DURATION_S` or
    :data:`~cpet_nb.record.MAX_ROWS` is refused (``recording-too-long``), as the readers
    refuse such files. End-tidal pressures the record lacks but has fractions for are derived
    from ``settings.barometric_pressure_mmhg`` when it is set
    (:func:`~cpet_nb.io.end_tidal.derive_end_tidal_pressures`).
    """
    file = file or record.name
    settings = settings or Settings()
    too_long = length_problem(record.data["t"].to_numpy(dtype=float), file)
    if too_long is not None:
        return FileResult.failed(file, [*record.findings, too_long], record.metadata)
    record, findings = screen_record(record, settings)
    if has_errors(findings):
        return FileResult.failed(file, findings, record.metadata)
    arrays = TestArrays.of(record)  # the physiology's shared arrays, bins and grids
    loaded = {name: model if model is not None and model.name == name else get_model(name)
              for name in settings.models}
    result = FileResult(file=file, status="ok", metadata=record.metadata,
                        duration_s=record.duration_s,
                        model_version="+".join(m.info.version for m in loaded.values()))
    result.measures = peak_measures(record, arrays=arrays, **settings.peak_options())
    result.measures |= effort_measures(result.measures, settings.effort_convention)
    findings += check_protocol(record)
    blockers = threshold_blockers(record)
    findings = fold_repeats(findings, blockers)
    vote = None
    if not blockers:
        try:
            vote = _add_models(result, record, loaded, findings)
        except CPETError as exc:
            findings.append(exc.finding)
    _add_consensus(result, record, arrays, settings, findings, vote)
    agreed = result.consensus
    result.measures |= slope_measures(record, vt1_s=agreed["vt1"].time_s,
                                      vt2_s=agreed["vt2"].time_s, arrays=arrays)
    result.findings = findings
    result.status = FileResult.status_for(findings)
    return result


def _add_models(result: FileResult, record: CPETRecord, loaded: dict[str, OxynetModel],
                findings: list[Finding]) -> ModelEstimate:
    """Every chosen model's estimate (the CNN's as ``vt1``, ``vt2``, ``curves``; the others'
    and, with several models, their ensemble's in ``models``); returns the model's vote in
    the consensus: the ensemble, or the one model.

    Raises
    ------
    CPETError
        When the test cannot be prepared for the models (``constant-channel``, ...).
    """
    prepared = model_input(record)
    findings += prepared.findings
    estimates = {}
    for name, model in loaded.items():
        estimates[name], model_findings = model_estimate(prepared, model)
        findings += model_findings
    vote = next(iter(estimates.values()))
    if len(estimates) > 1:
        vote, ensemble_findings = ensemble_estimate(prepared, list(estimates.values()))
        estimates[ENSEMBLE] = vote
        findings += ensemble_findings
    cnn = estimates.pop(DEFAULT_MODEL, None)
    if cnn is not None:
        result.curves, result.vt1, result.vt2 = cnn.curves, cnn.vt1, cnn.vt2
    result.models = estimates
    return vote


def _add_consensus(result: FileResult, record: CPETRecord, arrays: TestArrays,
                   settings: Settings, findings: list[Finding],
                   vote: ModelEstimate | None) -> None:
    """Classical thresholds, their consensus with the model's ``vote``, the values there, their
    uncertainty and the review flags; a method without an estimate adds an info finding with
    its reason."""
    result.classical = classical_thresholds(arrays)
    findings += [Finding("vt-method-no-estimate", Severity.INFO, f"{key}: {e.reason}",
                         file=result.file)
                 for key, e in result.classical.items() if not e.found]
    model_vt1, model_vt2 = _model_votes(arrays, settings, vote)
    result.consensus = threshold_consensus(result.classical, model_vt1, model_vt2)
    for label, agreed in result.consensus.items():
        result.consensus_values |= {f"{label}_{name}": value
                                    for name, value in hr_load_at(arrays, agreed.time_s).items()}
    result.uncertainty = consensus_uncertainty(record.data, result.consensus, result.classical,
                                               model_vt1, model_vt2, vote.curves if vote else None,
                                               arrays.exercise_span_s())
    result.review = review_flags(
        result.consensus["vt1"], result.consensus["vt2"],
        uncertainty_ml_min={k: u.ml_min for k, u in result.uncertainty.items()},
        max_uncertainty_ml_min=settings.review_uncertainty_ml_min, model_findings=findings,
        effort={"effort_met": result.measures["effort_met"]})


def _model_votes(arrays: TestArrays, settings: Settings, vote: ModelEstimate | None
                 ) -> tuple[Estimate | None, Estimate | None]:
    """The model's VT1 and VT2 votes in the consensus: a model run alone whose lateness was
    measured (:data:`~cpet_nb.physiology.consensus.MODEL_VOTE_LAG_S`) votes that much earlier,
    with VO2 read there as the classical methods read it, unless ``settings.model_vote_lag``
    is False."""
    if vote is None:
        return None, None
    return lag_corrected_votes(vote.vt1, vote.vt2, vote_lags_s(settings), partial(vo2_at, arrays))


def vote_lags_s(settings: Settings) -> dict[str, float]:
    """How much earlier (s) the model votes at ``{"vt1": ..., "vt2": ...}`` in the consensus
    under ``settings``: its measured lateness when it runs alone and
    ``settings.model_vote_lag`` is on (:data:`~cpet_nb.physiology.consensus.MODEL_VOTE_LAG_S`),
    else nothing (an ensemble, or a model whose lateness was not measured)."""
    if not settings.model_vote_lag or len(settings.models) != 1:
        return {}
    return dict(MODEL_VOTE_LAG_S.get(settings.models[0], {}))


def analyze_isolated(source: str | os.PathLike | CPETRecord, **kwargs) -> FileResult:
    """:func:`analyze`, with any unexpected exception turned into an ``internal-error`` result.

    For batch work: one file's bug must not stop the others. Input problems are already
    findings in :func:`analyze`; what this catches is a defect, reported with its type and
    message so it can be fixed.
    """
    try:
        return analyze(source, **kwargs)
    except Exception as exc:  # noqa: BLE001 - isolation is the point
        return internal_error(source.name if isinstance(source, CPETRecord)
                              else os.fspath(source), exc)


def internal_error(file: str, exc: BaseException) -> FileResult:
    """The result for a file whose analysis raised ``exc`` (a defect, not an input problem)."""
    return FileResult.error(file, "internal-error", f"{type(exc).__name__}: {exc}")
