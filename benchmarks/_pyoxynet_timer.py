"""Helper for bench_single.py, run by the *TensorFlow* interpreter: times pyoxynet itself.

    TF_PYTHON benchmarks/_pyoxynet_timer.py MODE FILE...

MODE ``batch``: load the model once, time ``pyoxynet.test_pyoxynet`` on each file (parsed CSV
to thresholds), print one JSON line per file. MODE ``one``: analyse the first file in this
fresh process and print the process's peak resident memory (MiB).
"""

import contextlib
import io
import json
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore")

import pandas as pd  # noqa: E402
import pyoxynet  # noqa: E402


def main() -> None:
    mode, files = sys.argv[1], sys.argv[2:]
    with contextlib.redirect_stdout(io.StringIO()):
        model = pyoxynet.load_tf_model(n_inputs=5, past_points=40, model="CNN")
    for path in files if mode == "batch" else files[:1]:
        df = pd.read_csv(path)
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            _, out = pyoxynet.test_pyoxynet(tf_model=model, input_df=pd.read_csv(path))
        seconds = time.perf_counter() - start
        if mode == "batch":
            print(json.dumps({"file": path, "seconds": seconds, "rows": len(df)}), flush=True)
    if mode == "one":
        with open("/proc/self/status") as status:  # VmHWM: this process's own peak
            peak_mib = [int(line.split()[1]) / 1024 for line in status
                        if line.startswith("VmHWM")][0]
        print(json.dumps({"peak_mib": peak_mib}))


if __name__ == "__main__":
    main()
