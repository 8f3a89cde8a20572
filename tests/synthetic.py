"""Synthetic but physiologically shaped CPET tests, for tests that must not depend on data files.

The shapes follow the textbook ramp response (Wasserman et al., Principles of Exercise
Testing and Interpretation): VO2 rises linearly with work rate; VCO2 steepens above VT1;
VE follows VCO2 until VT2, then steepens; PetO2 has its nadir at VT1 and rises after;
PetCO2 rises to VT2 then falls.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def ramp_test(duration_s: float = 720.0, vt1_s: float = 360.0, vt2_s: float = 560.0,
              breath_s: float = 2.5, seed: int = 0) -> pd.DataFrame:
    """A breath-by-breath ramp test in canonical columns and units."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.6, 1.4, int(duration_s / breath_s * 1.3)) * breath_s)
    t = t[t < duration_s]
    vo2 = 600 + 4.2 * t
    excess1 = np.clip(t - vt1_s, 0, None)
    excess2 = np.clip(t - vt2_s, 0, None)
    vco2 = 0.85 * vo2 + 3.0 * excess1
    ve = 0.025 * vco2 + 0.05 * excess2 + 8
    peto2 = 100 - 0.01 * (vt1_s - np.minimum(t, vt1_s)) + 0.03 * excess1
    petco2 = 36 + 0.01 * np.minimum(t, vt2_s) - 0.03 * excess2
    noise = lambda scale: rng.normal(0, scale, len(t))  # noqa: E731
    return pd.DataFrame({
        "t": t,
        "VO2": vo2 + noise(80),
        "VCO2": vco2 + noise(80),
        "VE": ve + noise(2),
        "PetO2": peto2 + noise(1.5),
        "PetCO2": petco2 + noise(1.0),
        "HR": 80 + 0.15 * t + noise(2),
        "load": np.floor(t / 60) * 25,
    })


def write_canonical_csv(frame: pd.DataFrame, path, **metadata) -> None:
    """Write ``frame`` as a canonical CSV with ``# key: value`` metadata lines."""
    with open(path, "w", encoding="utf-8") as fh:
        for key, value in metadata.items():
            fh.write(f"# {key}: {value}\n")
        frame.to_csv(fh, index=False)
