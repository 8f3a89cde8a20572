"""The cohort summary of a batch: how many inputs came out how, and the distribution of the
main measures over the tests analysed (pure pandas; no plotting)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..batch.store import FILE_STATES, RESULT_STATUSES

#: The measures summarised over the cohort, in order: peak values, then each threshold by
#: the model and by the consensus (absolute, then as % of VO2peak).
COHORT_MEASURES: tuple[str, ...] = (
    "vo2peak_ml_min", "vo2peak_ml_kg_min",
    "vt1_vo2_ml_min", "vt1_consensus_vo2_ml_min", "vt1_pct_vo2peak", "vt1_consensus_pct_vo2peak",
    "vt2_vo2_ml_min", "vt2_consensus_vo2_ml_min", "vt2_pct_vo2peak", "vt2_consensus_pct_vo2peak",
    "hrpeak_bpm", "rerpeak",
)
#: Columns of :func:`distribution`.
STATISTICS = ("n", "mean", "sd", "median", "q1", "q3", "min", "max")


def outcome_counts(files: pd.DataFrame) -> dict[str, int]:
    """Inputs per file state (:data:`~cpet_nb.batch.store.FILE_STATES`) and per result
    status (:data:`~cpet_nb.batch.store.RESULT_STATUSES`), zeros included; ``inputs`` is
    the total.

    Examples
    --------
    >>> files = pd.DataFrame({"state": ["done", "done", "skipped", "cancelled"],
    ...                       "status": ["ok", "error", "skipped", None]})
    >>> counts = outcome_counts(files)
    >>> counts["inputs"], counts["done"], counts["ok"], counts["error"], counts["cancelled"]
    (4, 2, 1, 1, 1)
    """
    counts = dict.fromkeys(FILE_STATES + RESULT_STATUSES, 0)
    counts.update(files["state"].value_counts().to_dict())
    counts.update(files["status"].dropna().value_counts().to_dict())
    counts["inputs"] = len(files)
    return {key: int(n) for key, n in counts.items()}


def distribution(table: pd.DataFrame, columns: Sequence[str] = COHORT_MEASURES
                 ) -> pd.DataFrame:
    """Count, mean, SD (n - 1), median, quartiles and range of each of ``columns``.

    Missing values are left out of every statistic (``n`` says how many are known); a
    column with no known value has ``n`` 0 and NaN elsewhere.

    Parameters
    ----------
    table : pandas.DataFrame
        A results table, usually only its analysed tests (``JobData.analysed``).
    columns : sequence of str
        Numeric columns of ``table``.

    Returns
    -------
    pandas.DataFrame
        One row per column (the index), columns :data:`STATISTICS`.

    Examples
    --------
    >>> table = pd.DataFrame({"vo2peak_ml_min": [3000.0, 4000.0, np.nan, 3500.0]})
    >>> distribution(table, ["vo2peak_ml_min"]).loc["vo2peak_ml_min"].tolist()
    [3.0, 3500.0, 500.0, 3500.0, 3250.0, 3750.0, 3000.0, 4000.0]
    """
    rows = {}
    for name in columns:
        values = pd.to_numeric(table[name], errors="coerce").dropna()
        rows[name] = {
            "n": float(len(values)), "mean": values.mean(),
            "sd": values.std(ddof=1) if len(values) > 1 else np.nan,
            "median": values.median(), "q1": values.quantile(0.25),
            "q3": values.quantile(0.75), "min": values.min(), "max": values.max(),
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(STATISTICS))
