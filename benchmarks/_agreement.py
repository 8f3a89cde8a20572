"""Does disagreement between the models predict a large consensus error? (issue 15)

    python benchmarks/_agreement.py --csv per_test.csv [--final FEATURE:MODE] [--timing X,Y]

``--csv``: the per-test table of ``benchmarks/bench_accuracy.py --csv`` (every shipped
model's VT1/VT2, the ensembles, the default consensus, the review flags); computed with
:func:`bench_accuracy.evaluate` and written there when the file does not exist.

Features, per threshold (``vt1``/``vt2``), all in mL/min of VO2 at the threshold:

``cnn-<m>``
    ``|CNN - m|`` for every other shipped model ``m`` (the CNN's own estimate, not its
    lag-corrected vote); ``cnn-median``/``cnn-max``: median/max of those five;
    ``cnn-ens``: ``|CNN - ensemble of all six|``;
``cons-<m>``
    ``|consensus - m|`` for every shipped model (CNN included); ``cons-median``/``cons-max``
    over the six;
``spread6``
    max - min of the six models' estimates.

A test's value is the larger of its VT1 and VT2 values; a threshold that a model did not
estimate counts as infinitely disagreeing (it is flagged). A large error is
:func:`bench_accuracy.large_errors` (consensus VO2 > 300 mL/min from a label at VT1 or VT2);
per threshold, at that threshold.

Everything below is computed on the odd-numbered half (the tuning half) only, unless
``--final`` is given:

* AUC of each feature for "large error" (test level and per threshold);
* rules ``flag when feature > limit``; the limit is a multiple of 10 mL/min chosen to maximize
  the likelihood ratio (large-error rate flagged / not flagged) among the limits where the
  final flag marks between :data:`MIN_SHARE` and :data:`MAX_SHARE` of the tests. Three
  modes: ``alone`` (the rule is the flag), ``or-review`` (the rule OR analyze's ``review``),
  ``or-other`` (the rule OR analyze's review reasons other than the uncertainty, i.e. the
  rule replaces ``review_uncertainty``). Each is shown fitted on the whole odd half
  (in-sample) and leave-one-out within the odd half (limit from the other odd tests).

``--final FEATURE:MODE`` fits that one rule on the whole odd half and applies it, limit
unchanged, to the even half (look at it once). ``--timing cnn,ais`` measures the median
ms per test of ``cpet_nb.analyze(path)`` and of ``cpet_nb.analyze(path, models=[...])``
pinned to one core with one interpreter thread (the extra models also become the
consensus vote there, as analyze does with several models; the rule itself needs only their
estimates).

Choice made on the odd half: the highest leave-one-out ratio is ``cons-lstmgru`` (every
nested leave-one-out fold picks it too); the final mode is ``or-other``, the rule in place of
``review_uncertainty`` with the other review reasons kept (on the odd half they flag nothing,
so it equals ``alone`` there)::

    python benchmarks/_agreement.py --csv per_test.csv --final cons-lstmgru:or-other
    python benchmarks/_agreement.py --csv per_test.csv --timing cnn,lstmgru
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Least and largest share of the tests the final flag may mark when a limit is chosen.
MIN_SHARE = 0.10
MAX_SHARE = 0.40
#: Candidate limits (mL/min).
LIMITS = np.arange(0.0, 2000.0, 10.0)
#: Rule modes (module docstring).
MODES = ("alone", "or-review", "or-other")
LABELS = ("vt1", "vt2")
#: Bootstrap resamples for the interval of the final ratio.
BOOTSTRAP = 2000


def load(csv: Path) -> pd.DataFrame:
    if csv.exists():
        return pd.read_csv(csv)
    from bench_accuracy import evaluate

    import cpet_nb
    rows = pd.DataFrame([evaluate(p, {}, None) for p in cpet_nb.datasets.pyoxynet_tests()])
    rows.to_csv(csv, index=False)
    return rows


def model_vo2(rows: pd.DataFrame, label: str) -> dict[str, pd.Series]:
    from cpet_nb.model import DEFAULT_MODEL, MODEL_NAMES
    return {m: rows[f"{label}_model_vo2" if m == DEFAULT_MODEL else f"{label}_model_{m}_vo2"]
            for m in MODEL_NAMES}


def features(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{feature: DataFrame with columns vt1, vt2}`` (module docstring)."""
    from cpet_nb.model import DEFAULT_MODEL
    out: dict[str, dict[str, pd.Series]] = {}
    for label in LABELS:
        models = model_vo2(rows, label)
        cnn = models[DEFAULT_MODEL]
        others = {m: v for m, v in models.items() if m != DEFAULT_MODEL}
        consensus = rows[f"{label}_consensus_vo2"]
        per = {f"cnn-{m}": (cnn - v).abs() for m, v in others.items()}
        d = pd.DataFrame(per)
        # a missing model estimate counts as infinite disagreement
        d = d.fillna(np.inf)
        per["cnn-median"] = d.median(axis=1)
        per["cnn-max"] = d.max(axis=1)
        per["cnn-ens"] = (cnn - rows[f"{label}_ensemble_all_vo2"]).abs()
        cons = {f"cons-{m}": (consensus - v).abs() for m, v in models.items()}
        c = pd.DataFrame(cons).fillna(np.inf)
        per |= cons
        per["cons-median"] = c.median(axis=1)
        per["cons-max"] = c.max(axis=1)
        all6 = pd.DataFrame(models)
        per["spread6"] = (all6.max(axis=1) - all6.min(axis=1)).where(all6.notna().all(axis=1),
                                                                      np.inf)
        for name, value in per.items():
            out.setdefault(name, {})[label] = value.fillna(np.inf)
    return {name: pd.DataFrame(v) for name, v in out.items()}


def large_by_label(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    from bench_accuracy import LARGE_ERROR_ML_MIN
    return {label: ((rows[f"{label}_consensus_vo2"] - rows[f"ref_{label}_vo2"]).abs()
                    > LARGE_ERROR_ML_MIN).to_numpy() for label in LABELS}


def auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC (ties count half); +inf scores rank highest."""
    score = np.where(np.isinf(score), 1e12, score)
    pos, neg = score[positive], score[~positive]
    if len(pos) == 0 or len(neg) == 0:
        return math.nan
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def ratio(flagged: np.ndarray, large: np.ndarray) -> float:
    if not flagged.any() or flagged.all():
        return math.nan
    with_flag = large[flagged].mean()
    without = large[~flagged].mean()
    return with_flag / without if without > 0 else math.inf


def base_flags(rows: pd.DataFrame, mode: str) -> np.ndarray:
    from cpet_nb.physiology.consensus import REVIEW_REASONS
    if mode == "alone":
        return np.zeros(len(rows), dtype=bool)
    if mode == "or-review":
        return rows["review"].to_numpy(dtype=bool)
    other = [r for r in REVIEW_REASONS if r != "review_uncertainty"]
    return rows[other].to_numpy(dtype=bool).any(axis=1)


def choose_limit(value: np.ndarray, base: np.ndarray, large: np.ndarray) -> float:
    """The limit of :data:`LIMITS` with the highest ratio whose flag (``value > limit`` or
    ``base``) marks between :data:`MIN_SHARE` and :data:`MAX_SHARE`; ties: the higher
    limit (fewer flags). NaN when none qualifies."""
    flagged = (value[None, :] > LIMITS[:, None]) | base[None, :]
    n_flag = flagged.sum(axis=1)
    n = len(value)
    share = n_flag / n
    with np.errstate(divide="ignore", invalid="ignore"):
        with_flag = (flagged & large).sum(axis=1) / n_flag
        without = (~flagged & large).sum(axis=1) / (n - n_flag)
        r = np.where(without > 0, with_flag / without, np.inf)
    ok = (share >= MIN_SHARE) & (share <= MAX_SHARE) & (n_flag > 0) & (n_flag < n)
    if not ok.any():
        return math.nan
    r = np.where(ok, r, -np.inf)
    best = np.flatnonzero(r == r.max())[-1]
    return float(LIMITS[best])


def loo_flags(value: np.ndarray, base: np.ndarray, large: np.ndarray) -> np.ndarray:
    """Leave-one-out flags: each test's limit chosen on the other tests."""
    flagged = np.zeros(len(value), dtype=bool)
    keep = np.ones(len(value), dtype=bool)
    for i in range(len(value)):
        keep[i] = False
        limit = choose_limit(value[keep], base[keep], large[keep])
        keep[i] = True
        flagged[i] = base[i] or (math.isfinite(limit) and value[i] > limit)
    return flagged


def nested_loo(values: dict[str, np.ndarray], bases: dict[str, np.ndarray],
               large: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The whole choice cross-validated: for each left-out test, the (feature, mode) with the
    highest leave-one-out ratio on the other tests (as in the tables) and its limit fitted
    on them flag the left-out test. Returns the flags and the choice made for each test."""
    n = len(large)
    flagged = np.zeros(n, dtype=bool)
    choices = []
    for i in range(n):
        keep = np.arange(n) != i
        best, best_ratio = None, -math.inf
        for mode, base in bases.items():
            for name, value in values.items():
                r = ratio(loo_flags(value[keep], base[keep], large[keep]), large[keep])
                if r > best_ratio:
                    best, best_ratio = (name, mode), r
        name, mode = best
        limit = choose_limit(values[name][keep], bases[mode][keep], large[keep])
        flagged[i] = bases[mode][i] or (math.isfinite(limit) and values[name][i] > limit)
        choices.append(f"{name}:{mode}")
    return flagged, choices


def describe(flagged: np.ndarray, large: np.ndarray) -> str:
    return (f"flagged {flagged.mean():.0%} ({flagged.sum()}/{len(flagged)}), "
            f"large caught {(flagged & large).sum()}/{large.sum()}, "
            f"ratio {ratio(flagged, large):.2f}")


def bootstrap_ratio(flagged: np.ndarray, large: np.ndarray, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, len(flagged), len(flagged))
        values.append(ratio(flagged[i], large[i]))
    values = np.array(values, dtype=float)
    values = values[~np.isnan(values)]
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def fisher_p(flagged: np.ndarray, large: np.ndarray) -> float:
    from scipy.stats import fisher_exact
    table = [[(flagged & large).sum(), (flagged & ~large).sum()],
             [(~flagged & large).sum(), (~flagged & ~large).sum()]]
    return float(fisher_exact(table, alternative="greater")[1])


def tuning_report(rows: pd.DataFrame) -> None:
    from bench_accuracy import large_errors
    odd = rows[rows["number"] % 2 == 1].reset_index(drop=True)
    large = large_errors(odd)
    per_label = large_by_label(odd)
    feats = features(odd)
    print(f"## tuning half (odd): {len(odd)} tests, {large.sum()} with a large error "
          f"(VT1 {per_label['vt1'].sum()}, VT2 {per_label['vt2'].sum()})")
    for mode in ("or-review", "or-other"):
        print(f"existing flags, {mode.removeprefix('or-')}: "
              f"{describe(base_flags(odd, mode), large)}")
    print(f"\nrules: limit maximizing the ratio with {MIN_SHARE:.0%}-{MAX_SHARE:.0%} "
          f"flagged; 'fit' = limit fitted on all odd tests (in-sample), 'loo' = "
          "leave-one-out within the odd half")
    table = []
    for name, frame in feats.items():
        value = frame.max(axis=1).to_numpy()
        row = {"feature": name, "auc_test": auc(value, large),
               "auc_vt1": auc(frame["vt1"].to_numpy(), per_label["vt1"]),
               "auc_vt2": auc(frame["vt2"].to_numpy(), per_label["vt2"]),
               "n_inf": int(np.isinf(value).sum())}
        for mode in MODES:
            base = base_flags(odd, mode)
            limit = choose_limit(value, base, large)
            fitted = base | (value > limit) if math.isfinite(limit) else base
            cv = loo_flags(value, base, large)
            row |= {f"{mode}_limit": limit, f"{mode}_fit_share": fitted.mean(),
                    f"{mode}_fit_ratio": ratio(fitted, large),
                    f"{mode}_loo_share": cv.mean(), f"{mode}_loo_ratio": ratio(cv, large)}
        table.append(row)
    table = pd.DataFrame(table)
    values = {name: frame.max(axis=1).to_numpy() for name, frame in feats.items()}
    bases = {mode: base_flags(odd, mode) for mode in ("alone", "or-review")}
    nested, choices = nested_loo(values, bases, large)
    picked = pd.Series(choices).value_counts()
    print(f"\nnested leave-one-out of the whole choice (feature, mode and limit chosen "
          f"without the left-out test): {describe(nested, large)}; choices: "
          + ", ".join(f"{k} {v}" for k, v in picked.items()))
    pd.set_option("display.width", 250)
    print(table[["feature", "auc_test", "auc_vt1", "auc_vt2", "n_inf"]].to_string(
        index=False, float_format=lambda v: f"{v:.2f}"))
    for mode in MODES:
        cols = ["feature"] + [c for c in table.columns if c.startswith(mode + "_")]
        print(f"\nmode {mode}:")
        names = {c: c.removeprefix(mode + "_") for c in cols}
        print(table[cols].rename(columns=names).to_string(
            index=False, float_format=lambda v: f"{v:.2f}"))


def final_report(rows: pd.DataFrame, spec: str) -> None:
    from bench_accuracy import large_errors
    name, _, mode = spec.partition(":")
    odd_mask = (rows["number"] % 2 == 1).to_numpy()
    value = features(rows)[name].max(axis=1).to_numpy()
    large = large_errors(rows)
    base = base_flags(rows, mode)
    limit = choose_limit(value[odd_mask], base[odd_mask], large[odd_mask])
    flagged = base | (value > limit)
    print(f"## final rule: flag when {name} (max of VT1, VT2) > {limit:.0f} mL/min, mode {mode}")
    review = rows["review"].to_numpy(dtype=bool)
    for half, mask in (("odd (tuning, in-sample)", odd_mask), ("even (held-out)", ~odd_mask)):
        lo, hi = bootstrap_ratio(flagged[mask], large[mask])
        print(f"  {half}: {mask.sum()} tests, {large[mask].sum()} large errors; "
              f"{describe(flagged[mask], large[mask])} (bootstrap 95 % {lo:.2f}-{hi:.2f}, "
              f"one-sided Fisher p {fisher_p(flagged[mask], large[mask]):.3f}); "
              f"existing review: {describe(review[mask], large[mask])}")
        print(f"    of which the feature alone: {describe((value > limit)[mask], large[mask])}; "
              f"the other reasons alone: {describe(base[mask], large[mask])}")


def timing(extra: list[str]) -> None:
    """Median ms per test of analyze with the default model and with ``models=extra``."""
    os.environ["CPET_NB_MODEL_THREADS"] = "1"
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    import cpet_nb
    paths = list(cpet_nb.datasets.pyoxynet_tests())
    configs = {"default": {}, "+".join(extra): {"models": extra}}
    for kwargs in configs.values():  # load the models, warm the interpreters
        cpet_nb.analyze(paths[0], **kwargs)
    times: dict[str, list[float]] = {k: [] for k in configs}
    for path in paths:
        for key, kwargs in configs.items():
            start = time.perf_counter()
            cpet_nb.analyze(path, **kwargs)
            times[key].append(1000 * (time.perf_counter() - start))
    medians = {k: float(np.median(v)) for k, v in times.items()}
    print(f"## cost on {len(paths)} tests, core {os.sched_getaffinity(0)}, 1 thread: " + ", ".join(
        f"{k} median {m:.0f} ms (total {sum(times[k]) / 1000:.1f} s)" for k, m in medians.items()))
    keys = list(configs)
    diff = np.array(times[keys[1]]) - np.array(times[keys[0]])
    print(f"  extra: median {np.median(diff):.0f} ms per test "
          f"({medians[keys[1]] / medians[keys[0]] - 1:+.0%})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--final", metavar="FEATURE:MODE")
    parser.add_argument("--timing", metavar="MODELS", help="e.g. cnn,ais")
    args = parser.parse_args()
    if args.timing:
        timing(args.timing.split(","))
        return
    rows = load(args.csv)
    tuning_report(rows)
    if args.final:
        print()
        final_report(rows, args.final)


if __name__ == "__main__":
    main()
