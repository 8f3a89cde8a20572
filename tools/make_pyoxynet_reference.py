"""Run pyoxynet's own inference over its 139 bundled tests and write a reference table.

Needs the TensorFlow environment described in ``tools/convert_pyoxynet_model.py``::

    /tmp/tf-venv/bin/python tools/make_pyoxynet_reference.py

Writes ``tests/data/pyoxynet_reference.csv`` (one row per bundled test: thresholds exactly as
``pyoxynet.test_pyoxynet`` returns them) and ``tests/data/pyoxynet_curves.csv.gz`` (the smoothed
domain probabilities and VO2 of a few tests, for a curve-level comparison). cpet_nb's parity
test compares against these files; it never needs TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import time
import warnings
from importlib import metadata, resources
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
import pyoxynet  # noqa: E402

OUT_DIR = Path(__file__).resolve().parents[1] / "tests" / "data"
CURVE_FILES = {"ramp_real_test_1.csv", "ramp_real_test_2.csv", "resting_real_test_1.csv",
               "resting_real_test_7.csv", "data_test.csv"}


def bundled_tests() -> list:
    folder = resources.files("pyoxynet.data_test")
    return sorted(
        (e for e in folder.iterdir()
         if e.name.endswith(".csv") and not e.name.startswith("database_")),
        key=lambda e: e.name,
    )


def main() -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        model = pyoxynet.load_tf_model(n_inputs=5, past_points=40, model="CNN")
    if model is None:
        sys.exit("pyoxynet.load_tf_model returned None: use tensorflow-cpu==2.15.1")
    rows, curves = [], []
    for entry in bundled_tests():
        df = pd.read_csv(io.BytesIO(entry.read_bytes()))
        row = {"file": entry.name, "n_rows": len(df)}
        start = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                out_df, out = pyoxynet.test_pyoxynet(tf_model=model, input_df=df)
        except Exception as exc:  # recorded: the parity test expects the same failure
            row["error"] = f"{type(exc).__name__}: {exc}"
        else:
            for vt in ("VT1", "VT2"):
                key = vt.lower()
                row[f"{key}_time_s"] = out[vt]["time"]
                row[f"{key}_vo2_ml_min"] = out[vt]["VO2"]
                row[f"{key}_hr_min"] = out[vt]["HR"]
                row[f"{key}_ve_l_min"] = out[vt]["VE"]
            row["n_windows"] = len(out_df)
            if entry.name in CURVE_FILES:
                curves.append(out_df[["time", "p_md", "p_hv", "p_sv", "VO2_F"]]
                              .assign(file=entry.name))
        row["seconds"] = round(time.perf_counter() - start, 3)
        rows.append(row)
        print(entry.name, row.get("vt1_time_s"), row.get("vt2_time_s"), row["seconds"], flush=True)
    table = pd.DataFrame(rows)
    table.attrs = {}
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    header = (f"# pyoxynet {metadata.version('pyoxynet')} test_pyoxynet, "
              f"tensorflow {metadata.version('tensorflow-cpu')}, pandas {pd.__version__}\n")
    with open(OUT_DIR / "pyoxynet_reference.csv", "w") as fh:
        fh.write(header)
        table.to_csv(fh, index=False)
    pd.concat(curves).to_csv(OUT_DIR / "pyoxynet_curves.csv.gz", index=False,
                             float_format="%.9g")


if __name__ == "__main__":
    main()
