"""Accuracy of the classical thresholds, pyoxynet's models, their ensembles and the consensus.

    python benchmarks/bench_accuracy.py [--csv per_test.csv] [--option NAME=VALUE ...]
                                        [--weight KEY=VALUE ...] [--fit-uncertainty]

Reference: the per-second ``domain`` labels (-1/0/1 = moderate/heavy/severe) of pyoxynet's
bundled tests (:func:`cpet_nb.datasets.pyoxynet_tests`). VT1 is the time of the first row
labelled 0 after a row labelled -1, VT2 of the first row labelled 1 after a row labelled 0,
each counted only when the new domain lasts at least :data:`MIN_DOMAIN_S` seconds (one test,
``resting_real_test_8.csv``, has its severe label on its last second only: its VT2 is
unlabelled). VO2 at a label is the test's VO2 smoothed as the model's values are
(:func:`cpet_nb.model.smoothing.optimal_filter`, 100 s²) at the label's time.

Split: tests whose file-name number is odd (``ramp_real_test_1``, ``resting_real_test_3``,
...) were used to choose every setting (search floors, plateau fits, consensus weights, the
CNN vote's lateness, which models vote in the consensus and how, the uncertainty's inputs and
the review limit); the figures that count are on the even-numbered half
(``data_test.csv`` counts as 0). Errors are absolute differences from the labels; a test
where a method gives no estimate is left out of that method's figures (``n`` says how many
remain).

Models: every shipped model alone (:data:`cpet_nb.model.MODEL_NAMES`), the ensembles of
:data:`ENSEMBLES` (domain curves averaged window by window,
:func:`cpet_nb.model.pipeline.ensemble_estimate`) alone, and the consensus with each ensemble
voting in the CNN's place (what ``cpet_nb.analyze(..., models=[...])`` does) or with each of
its models voting as a method of its own (:data:`VOTES`). The variant is chosen on the odd
half by :func:`criterion`; the held-out figures of every variant are printed beside it.

Review: a test has a large error when its consensus VO2 misses a label by more than
:data:`LARGE_ERROR_ML_MIN` at VT1 or VT2. For the default review limit
(:data:`~cpet_nb.physiology.uncertainty.REVIEW_UNCERTAINTY_ML_MIN`) and a sweep of it, each
half's share of tests flagged (every review reason counts), share of large errors flagged,
and the likelihood ratio: the large-error rate among flagged tests over that among the
others. ``--fit-uncertainty`` prints, for each input set of :data:`INPUT_SETS`, the
coefficients fitted on the odd half (non-negative least squares of each threshold's consensus
VO2 error, less its gap and edge terms, on a constant and the inputs) and the review rule
cross-validated within the odd half (:func:`cross_validated_flags`); the set with the highest
cross-validated ratio gives :data:`cpet_nb.physiology.uncertainty.COEFFICIENTS`.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import nnls

import cpet_nb
from cpet_nb.model import DEFAULT_MODEL, MODEL_NAMES, get_model
from cpet_nb.model.pipeline import ensemble_estimate, model_estimate, model_input
from cpet_nb.model.smoothing import optimal_filter
from cpet_nb.physiology._arrays import TestArrays
from cpet_nb.physiology.consensus import (
    DEFAULT_WEIGHTS,
    MODEL_VOTE_LAG_S,
    REVIEW_REASONS,
    consensus,
    lag_corrected_votes,
    review_flags,
    threshold_consensus,
)
from cpet_nb.physiology.exercise import exercise_span_s
from cpet_nb.physiology.thresholds import classical_thresholds, vo2_at
from cpet_nb.physiology.uncertainty import (
    REVIEW_UNCERTAINTY_ML_MIN,
    consensus_uncertainty,
)

#: Least duration (s) of a labelled domain for its start to count as a threshold.
MIN_DOMAIN_S = 5
#: Smoothing of VO2 at a label, as for the model's values (s²).
LABEL_SMOOTHING_S2 = 100.0
#: A consensus VO2 error above this (mL/min) at VT1 or VT2 is a large error.
LARGE_ERROR_ML_MIN = 300.0
#: Review limits (mL/min) whose flag rate and yield are shown beside the default.
UNCERTAINTY_SWEEP_ML_MIN = (150.0, 170.0, 180.0, 190.0, REVIEW_UNCERTAINTY_ML_MIN, 210.0,
                            220.0, 250.0, 300.0)
#: Components of the uncertainty, as the per-test table names them (``vt1_u_noise``, ...).
UNCERTAINTY_PARTS = ("noise_ml_min", "disagreement_ml_min", "model_ml_min", "precision_ml_min",
                     "gap_ml_min", "edge_ml_min")
#: Inputs the uncertainty may be fitted on (per-test table names): the components above, the
#: spread of the estimates (max - min) and the VO2 rise per minute about the threshold.
INPUT_SETS: dict[str, tuple[str, ...]] = {
    "noise+disagreement+model": ("noise", "disagreement", "model"),
    "noise+disagreement+model+precision": ("noise", "disagreement", "model", "precision"),
    "all six": ("noise", "disagreement", "model", "precision", "spread", "rate"),
    "noise": ("noise",),
    "precision": ("precision",),
    "noise+precision": ("noise", "precision"),
}
#: Folds of the cross-validation within the odd half: a test's ``(number // 2) % 5``.
FOLDS = 5
#: The rule for the review limit: the lowest multiple of 10 mL/min that flags at most this
#: share of the odd half.
MAX_FLAGGED_SHARE = 0.33
#: The ensembles tried, declared before looking at any result: pyoxynet's documented CNNs,
#: every CNN-type model, every model.
ENSEMBLES: dict[str, tuple[str, ...]] = {
    "trio": ("cnn", "ais", "nswis"),
    "cnntype": ("cnn", "ais", "nswis", "tcn"),
    "all": MODEL_NAMES,
}
#: How an ensemble's models vote in the consensus: ``ensemble``, its averaged curves in the
#: CNN's place (with the CNN's weight); ``each``, every model as a method with the CNN's
#: weight; ``shared``, every model as a method, the CNN's weight shared among them.
VOTES = ("ensemble", "each", "shared")
#: Published and reference figures (mean absolute error of VO2, mL/min) to read ours against.
ANCHORS = {
    "Oxynet CNN, published (Zignoli et al. 2022)": {"VT1": 178.0, "VT2": 144.0},
    "two experienced physicians, 95 % limits of agreement (Kaczmarek et al. 2019)":
        {"VT1": 161.0, "VT2": 161.0},
}


def test_number(path: Path) -> int:
    """The number in a bundled test's file name (``data_test.csv`` is 0)."""
    return int(path.stem.rsplit("_", 1)[1]) if "_real_test_" in path.name else 0


def label_time_s(t_s: np.ndarray, labels: np.ndarray, before: int, after: int) -> float:
    """Time of the first row labelled ``after`` right after a row labelled ``before``.

    NaN when no such row starts a run of at least :data:`MIN_DOMAIN_S` seconds.
    """
    starts = np.flatnonzero((labels[:-1] == before) & (labels[1:] == after)) + 1
    for row in starts:
        run = np.flatnonzero(labels[row:] != after)
        end = row + (run[0] if len(run) else len(labels) - row)
        if t_s[end - 1] - t_s[row] + 1 >= MIN_DOMAIN_S:
            return float(t_s[row])
    return math.nan


def reference(record: cpet_nb.CPETRecord) -> dict[str, float]:
    """Labelled VT1/VT2 times (s) and smoothed VO2 there (mL/min)."""
    data = record.data
    t = data["t"].to_numpy(dtype=float)
    labels = data["domain_label"].to_numpy()
    vo2 = optimal_filter(t, data["VO2"].to_numpy(dtype=float), LABEL_SMOOTHING_S2)
    out = {}
    for name, (before, after) in (("vt1", (-1, 0)), ("vt2", (0, 1))):
        time_s = label_time_s(t, labels, before, after)
        out[f"ref_{name}_t"] = time_s
        out[f"ref_{name}_vo2"] = float(np.interp(time_s, t, vo2)) if math.isfinite(time_s) \
            else math.nan
    return out


def evaluate(path: Path, options: dict[str, float], weights: dict[str, float] | None
             ) -> dict[str, object]:
    """One test: labels, every method's and model's estimates, the consensus variants and
    the review flags.

    ``options`` go to :func:`~cpet_nb.physiology.thresholds.classical_thresholds`, ``weights`` to
    :func:`~cpet_nb.physiology.consensus.consensus` (``None``: the defaults). With neither, the
    classical, ``model`` (the CNN) and ``consensus`` figures are exactly what
    :func:`cpet_nb.analyze` reports (its ``classical``, ``consensus`` and ``review``, effort
    criteria included).
    """
    record = cpet_nb.read(path)
    result = cpet_nb.analyze(record)
    if options or weights is not None:
        classical = classical_thresholds(record, **options)
        votes = lag_corrected_votes(result.vt1, result.vt2, MODEL_VOTE_LAG_S[DEFAULT_MODEL],
                                    partial(vo2_at, TestArrays.of(record)))
        agreed = threshold_consensus(classical, *votes, weights=weights)
        uncertainty = consensus_uncertainty(record.data, agreed, classical, *votes,
                                            result.curves, exercise_span_s(record.data))
    else:
        classical, agreed, uncertainty = result.classical, result.consensus, result.uncertainty
    row: dict[str, object] = {"file": path.name, "number": test_number(path),
                              **reference(record)}
    estimates = {**classical, "vt1_model": result.vt1, "vt2_model": result.vt2,
                 "vt1_consensus": agreed["vt1"], "vt2_consensus": agreed["vt2"],
                 **model_variants(record, classical, weights)}
    for key, estimate in estimates.items():
        row[f"{key}_t"] = estimate.time_s if estimate else math.nan
        row[f"{key}_vo2"] = estimate.vo2_ml_min if estimate else math.nan
    for label in ("vt1", "vt2"):
        row[f"{label}_spread_vo2"] = agreed[label].spread_vo2_ml_min
        row[f"{label}_u_spread"] = agreed[label].spread_vo2_ml_min
        row[f"{label}_u_rate"] = 60.0 * max(uncertainty[label].vo2_rate_ml_min_s, 0.0)
        row[f"{label}_n_methods"] = agreed[label].n_methods
        row[f"{label}_uncertainty"] = uncertainty[label].ml_min
        row[f"{label}_uncertainty_s"] = uncertainty[label].s
        for part in UNCERTAINTY_PARTS:
            row[f"{label}_u_{part.removesuffix('_ml_min')}"] = getattr(uncertainty[label], part)

    def flags(limit: float) -> dict[str, bool]:
        return review_flags(agreed["vt1"], agreed["vt2"],
                            uncertainty_ml_min={k: u.ml_min for k, u in uncertainty.items()},
                            max_uncertainty_ml_min=limit, model_findings=result.findings,
                            effort={"effort_met": result.measures["effort_met"]})

    row.update(flags(REVIEW_UNCERTAINTY_ML_MIN))
    for limit in UNCERTAINTY_SWEEP_ML_MIN:
        row[f"review_at_{limit:.0f}"] = flags(limit)["review"]
    row["model_findings"] = ",".join(f.code for f in result.findings)
    return row


def model_variants(record: cpet_nb.CPETRecord, classical: dict, weights: dict[str, float] | None
                   ) -> dict[str, object]:
    """Estimates keyed ``vt1_model_<name>`` (every model but the CNN, whose key is
    ``vt1_model``), ``vt1_ensemble_<set>`` (:data:`ENSEMBLES`) and
    ``vt1_consensus_<vote>_<set>`` (:data:`VOTES`), and the same for VT2."""
    weights = DEFAULT_WEIGHTS if weights is None else weights
    prepared = model_input(record)
    alone = {name: model_estimate(prepared, get_model(name))[0] for name in MODEL_NAMES}
    out: dict[str, object] = {}
    for name, estimate in alone.items():
        if name != DEFAULT_MODEL:
            out |= {f"vt1_model_{name}": estimate.vt1, f"vt2_model_{name}": estimate.vt2}
    for set_name, members in ENSEMBLES.items():
        ensemble, _ = ensemble_estimate(prepared, [alone[m] for m in members])
        out |= {f"vt1_ensemble_{set_name}": ensemble.vt1, f"vt2_ensemble_{set_name}": ensemble.vt2}
        voted = threshold_consensus(classical, ensemble.vt1, ensemble.vt2, weights=weights)
        for label in ("vt1", "vt2"):
            out[f"{label}_consensus_ensemble_{set_name}"] = voted[label]
            for vote in ("each", "shared"):
                share = len(members) if vote == "shared" else 1
                methods = {k: e for k, e in classical.items() if k.startswith(label + "_")}
                methods |= {f"{label}_model_{m}": getattr(alone[m], label) for m in members}
                model_weight = weights.get(f"{label}_model", 1.0) / share
                out[f"{label}_consensus_{vote}_{set_name}"] = consensus(
                    methods, weights={**weights, **{f"{label}_model_{m}": model_weight
                                                    for m in members}})
    return out


def criterion(rows: pd.DataFrame, method: str) -> float:
    """What the odd half chooses by: the mean absolute VO2 error at VT1 plus that at VT2
    (mL/min; the unit of the published figures and of the experts' agreement)."""
    return sum((rows[f"{label}_{method}_vo2"] - rows[f"ref_{label}_vo2"]).abs().mean()
               for label in ("vt1", "vt2"))


def error_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and median absolute error (s, mL/min) of every estimate against the labels."""
    keys = sorted({c[:-2] for c in rows.columns if c.endswith("_t") and not c.startswith("ref")},
                  key=_method_order)
    out = []
    for key in keys:
        label = key[:3]
        err_t = (rows[f"{key}_t"] - rows[f"ref_{label}_t"]).abs().dropna()
        err_vo2 = (rows[f"{key}_vo2"] - rows[f"ref_{label}_vo2"]).abs().dropna()
        out.append({"threshold": label.upper(), "method": key[4:], "n": len(err_t),
                    "mean_abs_s": err_t.mean(), "median_abs_s": err_t.median(),
                    "mean_abs_ml_min": err_vo2.mean(), "median_abs_ml_min": err_vo2.median()})
    return pd.DataFrame(out)


def _method_order(key: str) -> tuple[str, int, str]:
    method = key[4:]
    rank = next((r for prefix, r in (("consensus", 4), ("ensemble", 3), ("model_", 2),
                                     ("model", 1)) if method.startswith(prefix)), 0)
    return key[:3], rank, key


def is_model_variant(method: str) -> bool:
    """Whether ``method`` is another model, an ensemble or a consensus variant (not one of
    the methods cpet_nb.analyze reports by default)."""
    return method.startswith(("model_", "ensemble_", "consensus_"))


def large_errors(rows: pd.DataFrame) -> np.ndarray:
    """Tests whose consensus VO2 misses a label by more than :data:`LARGE_ERROR_ML_MIN`
    (VT1 or VT2)."""
    large = np.zeros(len(rows), dtype=bool)
    for label in ("vt1", "vt2"):
        err = (rows[f"{label}_consensus_vo2"] - rows[f"ref_{label}_vo2"]).abs()
        large |= (err > LARGE_ERROR_ML_MIN).to_numpy()
    return large


def flag_yield(flagged: np.ndarray, large: np.ndarray) -> str:
    """Share flagged, share of large errors flagged, large-error rates with and without a
    flag, and their ratio (the likelihood ratio)."""
    def rate(part: np.ndarray, whole: np.ndarray) -> float:
        return part.sum() / whole.sum() if whole.any() else math.nan

    with_flag, without = rate(flagged & large, flagged), rate(~flagged & large, ~flagged)
    return (f"flagged {flagged.mean():.0%}; large errors caught "
            f"{rate(flagged & large, large):.0%}; large-error rate flagged {with_flag:.0%}, "
            f"not flagged {without:.0%}; ratio {with_flag / without:.2f}")


def ranking(rows: pd.DataFrame) -> str:
    """Spearman rank correlation of uncertainty and consensus VO2 error, per threshold and per
    test (the larger of VT1's and VT2's)."""
    errors = pd.DataFrame({label: (rows[f"{label}_consensus_vo2"]
                                   - rows[f"ref_{label}_vo2"]).abs() for label in ("vt1", "vt2")})
    uncertainty = pd.DataFrame({label: rows[f"{label}_uncertainty"] for label in ("vt1", "vt2")})
    pairs = {label.upper(): (uncertainty[label], errors[label]) for label in ("vt1", "vt2")}
    pairs["test"] = (uncertainty.max(axis=1), errors.max(axis=1))
    return "rank correlation of uncertainty and consensus error: " + ", ".join(
        f"{name} {u.corr(e, method='spearman'):+.2f}" for name, (u, e) in pairs.items())


def report(rows: pd.DataFrame, title: str) -> None:
    print(f"\n## {title}: {len(rows)} tests")
    errors = error_table(rows)
    variants = errors["method"].map(is_model_variant)
    print(errors[~variants].to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    print("\nOther models, ensembles, consensus variants (criterion: VT1 + VT2 mean abs "
          "mL/min):")
    print(errors[variants].assign(criterion=errors[variants]["method"].map(
        lambda m: criterion(rows, m))).to_string(index=False, float_format=lambda v: f"{v:.0f}"))
    families = rows["file"].str.replace(r"_real_test_\d+\.csv$|\.csv$", "", regex=True)
    for family, group in rows.groupby(families):
        table = error_table(group)
        table = table[table["method"].isin(["model", "consensus"])]
        print(f"  {family} ({len(group)} tests): " + "; ".join(
            f"{r.threshold} {r.method} {r.mean_abs_s:.0f} s / {r.mean_abs_ml_min:.0f} mL/min"
            for r in table.itertuples()))
    large = large_errors(rows)
    print(f"tests with a consensus VO2 error > {LARGE_ERROR_ML_MIN:.0f} mL/min at VT1 or VT2: "
          f"{large.sum()} of {len(rows)}")
    for limit in UNCERTAINTY_SWEEP_ML_MIN:
        default = " (default)" if limit == REVIEW_UNCERTAINTY_ML_MIN else ""
        flagged = rows[f"review_at_{limit:.0f}"].to_numpy(dtype=bool)
        print(f"  review limit {limit:.0f} mL/min{default}: {flag_yield(flagged, large)}")
    print("  rate of each flag (default limit), large-error rate among its tests: " + ", ".join(
        f"{flag} {rows[flag].mean():.0%} ({_share(large[rows[flag].to_numpy(dtype=bool)])})"
        for flag in REVIEW_REASONS))
    print("  " + ranking(rows))


def _share(flags: np.ndarray) -> str:
    return f"{flags.mean():.0%}" if len(flags) else "none"


def fit_coefficients(rows: pd.DataFrame, label: str, inputs: tuple[str, ...]
                     ) -> dict[str, float]:
    """Non-negative least squares of ``label``'s consensus VO2 error, less its gap and edge
    terms, on a constant and ``inputs`` (``base`` and one coefficient per input)."""
    parts = [f"{label}_u_{p}" for p in inputs]
    error = (rows[f"{label}_consensus_vo2"] - rows[f"ref_{label}_vo2"]).abs()
    target = error - rows[f"{label}_u_gap"] - rows[f"{label}_u_edge"]
    usable = target.notna() & rows[parts].notna().all(axis=1)
    design = np.column_stack([np.ones(usable.sum()), rows.loc[usable, parts]])
    coef, _ = nnls(design, target[usable].to_numpy(dtype=float))
    return dict(zip(("base", *inputs), coef.tolist(), strict=True))


def predicted_uncertainty(rows: pd.DataFrame, coefficients: dict[str, dict[str, float]]
                          ) -> np.ndarray:
    """Per test, the larger of the VT1 and VT2 uncertainties with ``coefficients`` (by
    label, as :func:`fit_coefficients` gives them); infinite where one cannot be computed."""
    per_label = []
    for label, coef in coefficients.items():
        value = coef["base"] + rows[f"{label}_u_gap"] + rows[f"{label}_u_edge"]
        for name, weight in coef.items():
            if name != "base" and weight != 0:
                value = value + weight * rows[f"{label}_u_{name}"]
        per_label.append(value.to_numpy(dtype=float))
    both = np.column_stack(per_label)
    return np.where(np.isnan(both).any(axis=1), np.inf, both.max(axis=1))


def review_limit(uncertainty: np.ndarray, other_flags: np.ndarray) -> float:
    """The lowest multiple of 10 mL/min at which at most :data:`MAX_FLAGGED_SHARE` of the
    tests are flagged (by the uncertainty or another reason)."""
    for limit in np.arange(10.0, 2000.0, 10.0):
        if ((uncertainty > limit) | other_flags).mean() <= MAX_FLAGGED_SHARE:
            return float(limit)
    return math.inf


def cross_validated_flags(tuning: pd.DataFrame, inputs: tuple[str, ...]) -> np.ndarray:
    """The review rule with ``inputs``, cross-validated within the tuning half: for each of
    :data:`FOLDS` folds, coefficients and limit (:func:`review_limit`) from the other folds,
    flags on this one."""
    fold = (tuning["number"].to_numpy() // 2) % FOLDS
    other = tuning[[r for r in REVIEW_REASONS if r != "review_uncertainty"]].any(axis=1)
    flagged = np.zeros(len(tuning), dtype=bool)
    for k in range(FOLDS):
        train, test = tuning[fold != k], tuning[fold == k]
        coefficients = {label: fit_coefficients(train, label, inputs) for label in ("vt1", "vt2")}
        limit = review_limit(predicted_uncertainty(train, coefficients),
                             other[fold != k].to_numpy())
        flagged[fold == k] = ((predicted_uncertainty(test, coefficients) > limit)
                              | other[fold == k].to_numpy())
    return flagged


def fit_uncertainty(tuning: pd.DataFrame) -> None:
    """For each input set, the coefficients fitted on the tuning half, the limit they give,
    and the cross-validated review rule (module docstring)."""
    large = large_errors(tuning)
    other = tuning[[r for r in REVIEW_REASONS if r != "review_uncertainty"]].any(axis=1)
    for name, inputs in INPUT_SETS.items():
        coefficients = {label: fit_coefficients(tuning, label, inputs) for label in ("vt1", "vt2")}
        limit = review_limit(predicted_uncertainty(tuning, coefficients), other.to_numpy())
        print(f"{name}: limit {limit:.0f} mL/min; cross-validated: "
              f"{flag_yield(cross_validated_flags(tuning, inputs), large)}")
        for label, coef in coefficients.items():
            print(f"    {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in coef.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, help="write the per-test table here")
    parser.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                        help="a classical_thresholds keyword, e.g. vt1_min_vo2_fraction=0.4")
    parser.add_argument("--weight", action="append", default=[], metavar="KEY=VALUE",
                        help="a consensus weight over the defaults, e.g. vt2_vslope=1")
    parser.add_argument("--fit-uncertainty", action="store_true",
                        help="print the uncertainty coefficients fitted on the odd half")
    args = parser.parse_args()
    options = dict(_assignment(text) for text in args.option)
    weights = ({**DEFAULT_WEIGHTS, **dict(_assignment(text) for text in args.weight)}
               if args.weight else None)
    start = time.perf_counter()
    rows = pd.DataFrame([evaluate(p, options, weights)
                         for p in cpet_nb.datasets.pyoxynet_tests()])
    if options or args.weight:
        print(f"options {options}; weights {weights}")
    print(f"cpet_nb {cpet_nb.__version__}; {len(rows)} bundled pyoxynet tests, "
          f"{rows['ref_vt1_t'].notna().sum()} with a VT1 label, "
          f"{rows['ref_vt2_t'].notna().sum()} with a VT2 label "
          f"(unlabelled VT2: {', '.join(rows.loc[rows['ref_vt2_t'].isna(), 'file'])})")
    print("Every setting was tuned on the odd-numbered files only; the held-out figures are "
          "on the even-numbered files (data_test.csv counts as 0).")
    odd = rows["number"] % 2 == 1
    report(rows[~odd], "held-out: even-numbered files")
    report(rows[odd], "tuning: odd-numbered files")
    choose_vote(rows[odd], rows[~odd])
    if args.fit_uncertainty:
        print("\n## uncertainty coefficients fitted on the tuning half")
        fit_uncertainty(rows[odd])
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.csv:
        rows.to_csv(args.csv, index=False)


def choose_vote(tuning: pd.DataFrame, held_out: pd.DataFrame) -> None:
    """The consensus variant with the lowest :func:`criterion` on the tuning half, its
    held-out figures beside the default's, and the published anchors."""
    variants = ["consensus"] + [f"consensus_{v}_{s}" for v in VOTES for s in ENSEMBLES]
    scores = {v: criterion(tuning, v) for v in variants}
    best = min(scores, key=scores.get)
    print(f"\n## choice on the tuning half: {best} (criterion {scores[best]:.0f} mL/min; "
          f"default consensus {scores['consensus']:.0f}; runner-up "
          f"{sorted(scores, key=scores.get)[1]} {sorted(scores.values())[1]:.0f})")
    table = error_table(held_out)
    shown = table[table["method"].isin(["model", "consensus", best])
                  | table["method"].str.startswith("ensemble_")]
    print("held-out figures, mean abs s / mL/min:")
    for r in shown.itertuples():
        print(f"  {r.threshold} {r.method}: {r.mean_abs_s:.0f} s / {r.mean_abs_ml_min:.0f} mL/min "
              f"(median {r.median_abs_s:.0f} s / {r.median_abs_ml_min:.0f}, n {r.n})")
    print(f"held-out criterion: {best} {criterion(held_out, best):.0f}, default consensus "
          f"{criterion(held_out, 'consensus'):.0f} mL/min")
    for anchor, figures in ANCHORS.items():
        print(f"anchor: {anchor}: VT1 {figures['VT1']:.0f}, VT2 {figures['VT2']:.0f} mL/min")


def _assignment(text: str) -> tuple[str, float]:
    name, _, value = text.partition("=")
    return name.strip(), float(value)


if __name__ == "__main__":
    sys.exit(main())
