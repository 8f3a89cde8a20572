"""End-tidal partial pressures from end-tidal fractions and the barometric pressure.

Some carts (ZAN) store end-tidal gas as fractions, not pressures. The pressure follows from
the fraction of dry gas and the barometric pressure PB, less the water-vapour pressure of
gas saturated at body temperature (37 degC, 47 mmHg), the convention for alveolar and
end-tidal gas::

    PetX = FetX x (PB - 47 mmHg)

(Wasserman K, Hansen JE, Sue DY et al., *Principles of Exercise Testing and
Interpretation*, 5th ed., Lippincott Williams & Wilkins 2012; West JB, *Respiratory
Physiology: The Essentials*, ch. 2 and 5.) The fraction is the canonical ``FetO2`` /
``FetCO2`` column, in percent of dry gas (:data:`cpet_nb.record.CANONICAL_UNITS`).

A record gets PetO2 and PetCO2 from :func:`derive_end_tidal_pressures` only where the
pressures are missing and the fractions exist; each derived channel has a
``derived-channel`` finding naming PB and where it came from. A file's own pressure is used
by its reader; a pressure the user gives (a participants-table column, then
``Settings.barometric_pressure_mmhg``) fills what is still missing, so it never replaces a
measured pressure or a value the file stores.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..findings import Finding, Severity
from ..record import CPETRecord

#: Water-vapour pressure of gas saturated at 37 degC (mmHg).
PH2O_37C_MMHG = 47.0
#: Accepted barometric pressure (mmHg): sea level is 760; labs at altitude (La Paz, 3600 m:
#: about 490; research stations at 5000 m: about 410) are inside, hPa written as mmHg
#: (1013) and kPa (101) are not.
PB_RANGE_MMHG = (350.0, 850.0)
#: End-tidal pressure -> the fraction it is derived from.
FRACTION_OF: dict[str, str] = {"PetO2": "FetO2", "PetCO2": "FetCO2"}


def end_tidal_pressure_mmhg(fraction_pct: np.ndarray, pb_mmhg: float) -> np.ndarray:
    """End-tidal partial pressure from the end-tidal fraction and the barometric pressure.

    Parameters
    ----------
    fraction_pct : numpy.ndarray
        End-tidal fraction of dry gas, in percent (e.g. 15.5 for O2, 5.3 for CO2).
    pb_mmhg : float
        Barometric pressure (mmHg).

    Returns
    -------
    numpy.ndarray
        ``fraction_pct / 100 x (pb_mmhg - 47)`` (mmHg).

    Examples
    --------
    >>> float(end_tidal_pressure_mmhg(5.3, 760.0).round(2))
    37.79
    """
    return np.asarray(fraction_pct, dtype=float) / 100.0 * (pb_mmhg - PH2O_37C_MMHG)


def derivable(record: CPETRecord) -> list[str]:
    """The end-tidal pressures a record lacks (absent or all missing) but has fractions for."""
    data = record.data

    def has(channel: str) -> bool:
        return channel in data and bool(data[channel].notna().any())

    return [pressure for pressure, fraction in FRACTION_OF.items()
            if not has(pressure) and has(fraction)]


def derive_end_tidal_pressures(record: CPETRecord, pb_mmhg: float, source: str) -> CPETRecord:
    """A copy of ``record`` with PetO2 / PetCO2 derived from its end-tidal fractions.

    Only the pressures :func:`derivable` lists are derived. Each gets a ``derived-channel``
    finding naming PB and ``source``; a ``missing-channel`` finding on that channel (the
    reader's "left missing: no barometric pressure") no longer holds and is dropped.
    ``metadata.extra`` records the pressure (``barometric_pressure_mmHg``) and its source.

    Parameters
    ----------
    record : CPETRecord
    pb_mmhg : float
        Barometric pressure (mmHg), within :data:`PB_RANGE_MMHG`.
    source : str
        Where the pressure comes from, for the findings (e.g. ``"Settings.
        barometric_pressure_mmhg"``).

    Returns
    -------
    CPETRecord
        ``record`` itself when there is nothing to derive.

    Raises
    ------
    ValueError
        When ``pb_mmhg`` is outside :data:`PB_RANGE_MMHG`.
    """
    low, high = PB_RANGE_MMHG
    if not low <= pb_mmhg <= high:
        raise ValueError(f"barometric pressure must be {low:g} to {high:g} mmHg, "
                         f"got {pb_mmhg!r}")
    channels = derivable(record)
    if not channels:
        return record
    data = record.data.copy()
    findings = [f for f in record.findings
                if not (f.code == "missing-channel" and f.column in channels)]
    for channel in channels:
        fraction = FRACTION_OF[channel]
        data[channel] = end_tidal_pressure_mmhg(data[fraction].to_numpy(dtype=float), pb_mmhg)
        findings.append(Finding(
            "derived-channel", Severity.INFO,
            f"{channel} (mmHg) = {fraction} (%) / 100 x (PB - 47 mmHg), PB = {pb_mmhg:.1f} mmHg "
            f"from {source}", file=record.name, column=channel))
    extra = {**record.metadata.extra, "barometric_pressure_mmHg": float(pb_mmhg),
             "barometric_pressure_source": source}
    return replace(record, data=data, findings=findings,
                   metadata=replace(record.metadata, extra=extra))
