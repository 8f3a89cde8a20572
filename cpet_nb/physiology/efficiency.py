"""Gross mechanical efficiency: external work rate over metabolic rate from gas exchange.

A cycle-ergometer measure: when the record has a positive treadmill ``speed``, its ``load`` is
a value the cart derived from speed and body mass, not a measured work rate, and every
efficiency here is NaN (:func:`~cpet_nb.physiology.exercise.on_treadmill`). The peak index
uses the exercise part (:func:`~cpet_nb.physiology.exercise.exercise_rows`); constant-load
stages are found in the ``load`` channel itself, which says where a work rate is held better
than a phase label does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from .._checks import check_choice
from ._arrays import TestArrays
from .averaging import trailing_mean
from .exercise import EXERCISE_PHASES, on_treadmill

#: kJ per thermochemical kcal.
KJ_PER_KCAL = 4.184

#: Energy equivalents (kJ per litre STPD) of O2 uptake and CO2 output, non-protein, by name:
#: Brouwer (1957), 3.866 and 1.200 kcal/L; Péronnet & Massicotte (1991) as tabulated by
#: Kipp et al. (2018), 16.89 and 4.84 kJ/L.
ENERGY_EQUATIONS: dict[str, tuple[float, float]] = {
    "brouwer": (3.866 * KJ_PER_KCAL, 1.200 * KJ_PER_KCAL),
    "peronnet": (16.89, 4.84),
}

#: What to do with VCO2 when RER > 1 (see :func:`energy_expenditure_w`).
RER_ABOVE_ONE = ("cap", "nan", "keep")


def energy_expenditure_w(vo2_ml_min: np.ndarray | float, vco2_ml_min: np.ndarray | float,
                         *, equation: str = "brouwer", rer_above_one: str = "cap"
                         ) -> np.ndarray:
    """Metabolic rate (W) from O2 uptake and CO2 output, protein oxidation neglected.

    ``equation`` picks the energy equivalents of :data:`ENERGY_EQUATIONS`: ``"brouwer"``
    (Brouwer 1957, the usual choice in cycling efficiency studies) or ``"peronnet"``
    (Péronnet & Massicotte 1991, recommended for exercise by Kipp et al. 2018). Above
    RER 1, CO2 released by bicarbonate buffering of lactate adds to the CO2 of oxidation
    (Jeukendrup & Wallis 2005), so VCO2 no longer measures metabolism: ``rer_above_one``
    ``"cap"`` (default) counts VCO2 only up to VO2 (RER 1, pure carbohydrate oxidation),
    ``"nan"`` gives NaN, ``"keep"`` uses VCO2 as measured.

    Parameters
    ----------
    vo2_ml_min, vco2_ml_min : array_like
        O2 uptake and CO2 output (mL/min STPD).
    equation : {"brouwer", "peronnet"}
    rer_above_one : {"cap", "nan", "keep"}

    Returns
    -------
    numpy.ndarray
        Metabolic rate (W); NaN where an input is missing.

    References
    ----------
    Brouwer E (1957). On simple formulae for calculating the heat expenditure and the
    quantities of carbohydrate and fat oxidized in metabolism of men and animals, from
    gaseous exchange (oxygen intake and carbonic acid output) and urine-N. Acta Physiol
    Pharmacol Neerl 6:795-802.
    Péronnet F, Massicotte D (1991). Table of nonprotein respiratory quotient: an update.
    Can J Sport Sci 16:23-29.
    Kipp S, Byrnes WC, Kram R (2018). Calculating metabolic energy expenditure across a wide
    range of exercise intensities: the equation matters. Appl Physiol Nutr Metab 43:639-642.
    Jeukendrup AE, Wallis GA (2005). Measurement of substrate oxidation during exercise by
    means of gas exchange measurements. Int J Sports Med 26 Suppl 1:S28-S37.
    """
    check_choice(equation, ENERGY_EQUATIONS, "equation")
    check_choice(rer_above_one, RER_ABOVE_ONE, "rer_above_one")
    vo2 = np.asarray(vo2_ml_min, dtype=float) / 1000.0
    vco2 = np.asarray(vco2_ml_min, dtype=float) / 1000.0
    above = vco2 > vo2
    if rer_above_one == "cap":
        vco2 = np.where(above, vo2, vco2)
    elif rer_above_one == "nan":
        vco2 = np.where(above, np.nan, vco2)
    kj_per_l_o2, kj_per_l_co2 = ENERGY_EQUATIONS[equation]
    return (kj_per_l_o2 * vo2 + kj_per_l_co2 * vco2) * 1000.0 / 60.0


def gross_efficiency_pct(load_w: np.ndarray | float, vo2_ml_min: np.ndarray | float,
                         vco2_ml_min: np.ndarray | float, *, equation: str = "brouwer",
                         rer_above_one: str = "cap") -> np.ndarray:
    """Gross efficiency (%): external work rate over metabolic rate.

    Parameters
    ----------
    load_w : array_like
        Work rate (W); zero or negative gives NaN (no external work to relate).
    vo2_ml_min, vco2_ml_min : array_like
        O2 uptake and CO2 output (mL/min) at that work rate, in a steady state.
    equation, rer_above_one : str
        See :func:`energy_expenditure_w`.

    Returns
    -------
    numpy.ndarray
        100 · load / metabolic rate.

    References
    ----------
    Moseley L, Jeukendrup AE (2001). The reliability of cycling efficiency. Med Sci Sports
    Exerc 33:621-627.
    """
    load = np.asarray(load_w, dtype=float)
    metabolic_w = energy_expenditure_w(vo2_ml_min, vco2_ml_min, equation=equation,
                                       rer_above_one=rer_above_one)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(load > 0, 100.0 * load / metabolic_w, np.nan)


def gross_efficiency_by_stage(data: pd.DataFrame, *, min_stage_s: float = 180.0,
                              last_s: float = 60.0, equation: str = "brouwer",
                              rer_above_one: str = "cap") -> pd.DataFrame:
    """Gross efficiency at each constant load held long enough for a steady state.

    A stage is a run of consecutive rows with the same positive ``load`` lasting at least
    ``min_stage_s`` (3 min stages as in Moseley & Jeukendrup 2001); VO2 and VCO2 are
    averaged over its last ``last_s`` seconds. Stages are found in the whole record (a
    constant-load warm-up counts). A ramp has no such stage and gives an empty table, as
    does a treadmill test (see the module notes).

    Parameters
    ----------
    data : pandas.DataFrame
        Canonical data with ``t``, ``load``, ``VO2`` and ``VCO2``.
    min_stage_s : float
        Shortest stage (s).
    last_s : float
        Averaging period at the end of each stage (s).
    equation, rer_above_one : str
        See :func:`energy_expenditure_w`.

    Returns
    -------
    pandas.DataFrame
        One row per stage: ``start_s``, ``end_s``, ``load_w``, ``vo2_ml_min``,
        ``vco2_ml_min``, ``rer``, ``energy_expenditure_w``, ``gross_efficiency_pct``.

    References
    ----------
    Moseley L, Jeukendrup AE (2001). The reliability of cycling efficiency. Med Sci Sports
    Exerc 33:621-627.
    """
    columns = ["start_s", "end_s", "load_w", "vo2_ml_min", "vco2_ml_min"]
    stages = []
    if all(c in data for c in ("load", "VO2", "VCO2")) and not on_treadmill(data):
        rows = data.dropna(subset=["load"])
        run = (rows["load"] != rows["load"].shift()).cumsum()
        for _, stage in rows.groupby(run):
            start_s, end_s = float(stage["t"].iloc[0]), float(stage["t"].iloc[-1])
            if stage["load"].iloc[0] <= 0 or end_s - start_s < min_stage_s:
                continue
            steady = stage[stage["t"] >= end_s - last_s]
            stages.append([start_s, end_s, float(stage["load"].iloc[0]),
                           steady["VO2"].mean(), steady["VCO2"].mean()])
    table = pd.DataFrame(stages, columns=columns, dtype=float)
    table["rer"] = table["vco2_ml_min"] / table["vo2_ml_min"]
    energy = {"equation": equation, "rer_above_one": rer_above_one}
    table["energy_expenditure_w"] = energy_expenditure_w(
        table["vo2_ml_min"], table["vco2_ml_min"], **energy)
    table["gross_efficiency_pct"] = 100.0 * table["load_w"] / table["energy_expenditure_w"]
    return table


def gross_efficiency_peak_pct(data: pd.DataFrame | TestArrays, *, window_s: int = 30,
                              phases: Sequence[str] = EXERCISE_PHASES,
                              equation: str = "brouwer", rer_above_one: str = "cap") -> float:
    """Gross efficiency (%) at peak exercise.

    The ``window_s``-second window of the exercise portion with the highest mean VO2 (on a
    1 s grid, as for VO2peak) gives the mean VO2, VCO2 and load. Near the end of a ramp VO2
    lags the work rate and RER exceeds 1, so this is a peak-exercise index, higher than a
    steady-state efficiency (use :func:`gross_efficiency_by_stage` for step tests).

    Parameters
    ----------
    data : pandas.DataFrame or TestArrays
        Canonical data with ``t``, ``load``, ``VO2`` and ``VCO2``, or their arrays
        (:class:`~cpet_nb.physiology._arrays.TestArrays`).
    window_s : int
        Averaging window (s).
    phases : sequence of str
        See :func:`~cpet_nb.physiology.exercise.exercise_rows`.
    equation, rer_above_one : str
        See :func:`energy_expenditure_w`.

    Returns
    -------
    float
        Gross efficiency (%), NaN without load, VO2 or VCO2, or on a treadmill.

    References
    ----------
    Moseley L, Jeukendrup AE (2001). The reliability of cycling efficiency. Med Sci Sports
    Exerc 33:621-627.
    """
    arrays = TestArrays.of(data)
    if arrays.on_treadmill:
        return float("nan")
    grid = arrays.grid_1s(arrays.exercise(phases), ("VO2", "VCO2", "load"))
    means = {name: trailing_mean(grid[name], window_s) for name in ("VO2", "VCO2", "load")}
    if np.isnan(means["VO2"]).all():
        return float("nan")
    peak = int(np.nanargmax(means["VO2"]))
    return float(gross_efficiency_pct(means["load"][peak], means["VO2"][peak],
                                      means["VCO2"][peak], equation=equation,
                                      rer_above_one=rer_above_one))
