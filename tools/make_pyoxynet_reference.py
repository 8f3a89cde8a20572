"""Run pyoxynet's own inference over its 139 bundled tests and write reference tables.

Needs the TensorFlow environment described in ``tools/convert_pyoxynet_model.py``::

    /tmp/tf-venv/bin/python tools/make_pyoxynet_reference.py            # every model
    /tmp/tf-venv/bin/python tools/make_pyoxynet_reference.py ais nswis  # some of them

For each model, one row per bundled test with the thresholds exactly as
``pyoxynet.test_pyoxynet`` returns them, and the smoothed domain probabilities and VO2 of a
few tests (:data:`CURVE_FILES`), for a curve-level comparison. The CNN's tables are
``tests/data/pyoxynet_reference.csv`` and ``tests/data/pyoxynet_curves.csv.gz``; every other
model NAME's are ``tests/data/pyoxynet_reference_NAME.csv.gz`` and
``tests/data/pyoxynet_curves_NAME.csv.gz``. cpet_nb's parity tests compare against these
files; they never need TensorFlow.

The model given to ``test_pyoxynet`` is what ``pyoxynet.load_tf_model`` returns, except for
``tcn``, for which it returns None: that one is pyoxynet's CNN class with the weights of its
``TCN`` SavedModel (see ``tools/convert_pyoxynet_model.py``). The CNN's table was made with
that model called eagerly, as pyoxynet calls it; every other model is called through
``tf.function`` (graph mode: the same operations on the same weights). pyoxynet calls its
model once per window, and an eager call of a recurrent model takes about 0.3 s (some 8 hours
per model over the 139 tests) against 6 ms in graph mode (1 ms against 11 ms for a CNN);
on 20 random windows the two modes' outputs differed by at most 6e-8 (AIS) and 0
(murias_lab), and the AIS thresholds of the first 37 tests, made eagerly, are the same.
"""

from __future__ import annotations

import contextlib
import gzip
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
import tensorflow as tf  # noqa: E402
from convert_pyoxynet_model import (  # noqa: E402
    SOURCES,
    load_saved_model,
    model_names,
    pyoxynet_model,
)

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


def reference_model(name: str):
    """The TensorFlow model pyoxynet runs for ``name`` (in graph mode but for the CNN)."""
    source = SOURCES[name]
    with contextlib.redirect_stdout(io.StringIO()):
        model = pyoxynet.load_tf_model(n_inputs=5, past_points=40, model=source.pyoxynet_name)
    if model is None and name == "tcn":
        model = pyoxynet_model(load_saved_model(source.folder), source.family)
    if model is None:
        sys.exit(f"pyoxynet.load_tf_model returned None for {source.pyoxynet_name}: "
                 "use tensorflow-cpu==2.15.1")
    return model if name == "cnn" else tf.function(model)


def output_paths(name: str) -> tuple[Path, Path]:
    """The reference table and the curves file of model ``name``."""
    if name == "cnn":
        return OUT_DIR / "pyoxynet_reference.csv", OUT_DIR / "pyoxynet_curves.csv.gz"
    return (OUT_DIR / f"pyoxynet_reference_{name}.csv.gz",
            OUT_DIR / f"pyoxynet_curves_{name}.csv.gz")


def reference_tables(model) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``test_pyoxynet``'s thresholds on every bundled test, and the curves of a few."""
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
    return table, pd.concat(curves)


def main() -> None:
    names = model_names(__doc__.split("\n")[0], "models")
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    for name in names:
        table, curves = reference_tables(reference_model(name))
        header = (f"# pyoxynet {metadata.version('pyoxynet')} test_pyoxynet, model {name} "
                  f"({SOURCES[name].folder}), tensorflow {metadata.version('tensorflow-cpu')}, "
                  f"pandas {pd.__version__}\n")
        reference_path, curves_path = output_paths(name)
        opener = gzip.open if reference_path.suffix == ".gz" else open
        with opener(reference_path, "wt") as fh:
            fh.write(header)
            table.to_csv(fh, index=False)
        curves.to_csv(curves_path, index=False, float_format="%.9g")


if __name__ == "__main__":
    main()
