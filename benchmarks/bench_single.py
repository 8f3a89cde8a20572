"""Per-test speed and memory of cpet_nb, and of pyoxynet on the same files when available.

    python benchmarks/bench_single.py [--tf-python /tmp/tf-venv/bin/python] [--n 20]

Measures, on pyoxynet's bundled real tests:

* end to end per test (parse the CSV, grid, model, thresholds, VO2peak) with cpet_nb, and with
  ``pyoxynet.test_pyoxynet`` (TensorFlow) on the same files in the same run (model loaded
  once in both cases; pyoxynet's time includes its ``pd.read_csv``), and the ratio;
* the model pipeline alone (1 s grid, scaling, inference, smoothing, VT1/VT2; record already
  parsed), the complete analysis of a parsed record (the model plus the measures, the
  classical thresholds and their consensus), reading alone and ``cpet_nb.analyze(path)`` end
  to end, pinned to one core with one-thread interpreters (as in the batch's analysis
  processes), scaled to a 10-minute test (600 s; cost grows about linearly with duration), so
  that the time splits into reading, model and the rest (screening, measures, slopes,
  classical thresholds, consensus); the end-to-end times per test above are not pinned and
  use the default interpreter (one thread per CPU the process may use);
* the same for each of pyoxynet's other models (:data:`cpet_nb.model.MODEL_NAMES`; one
  interpreter per model, loaded once): its model pipeline, its inference alone (shared
  convolutions for the CNN-type models, :mod:`cpet_nb.model.sliding`), the interpreter's
  inference on the same windows, and the complete analysis with every model chosen;
* peak resident memory (``VmHWM``: ``ru_maxrss`` would include the parent's, as Linux keeps
  it across ``exec``) of a fresh process that imports the package and analyses one test.

``--tf-python`` (or ``CPET_NB_TF_PYTHON``) names a Python with ``tensorflow-cpu==2.15.1``,
``pandas<3`` and ``pyoxynet==0.1.12`` (see docs/model.md); without it only cpet_nb is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cpet_nb
from cpet_nb.analysis import analyze_record
from cpet_nb.model import MODEL_NAMES, get_model
from cpet_nb.model.pipeline import model_input, model_thresholds
from cpet_nb.model.runtime import THREADS_ENV
from cpet_nb.settings import Settings

HERE = Path(__file__).parent


def time_cpet_nb(files: list[Path], repeats: int = 3) -> list[float]:
    """Per-file seconds, the median of ``repeats`` runs (a 15 ms task is noise-sensitive)."""
    cpet_nb.analyze(files[0])  # load the model, as pyoxynet's timing excludes its load
    return [statistics.median(_timed(cpet_nb.analyze, path) for _ in range(repeats))
            for path in files]


def ms_per_10_min(records: list[cpet_nb.CPETRecord], step, repeats: int = 5) -> float:
    """Median ms of ``step(record)`` per 600 s of test, pinned to one core."""
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    try:
        step(records[0])
        per_10_min = []
        for record in records:
            best = min(_timed(step, record) for _ in range(repeats))
            per_10_min.append(best * 1000 * 600 / record.duration_s)
    finally:
        os.sched_setaffinity(0, cores)  # pyoxynet, run later, gets every core
    return statistics.median(per_10_min)


def _timed(func, *args) -> float:
    start = time.perf_counter()
    func(*args)
    return time.perf_counter() - start


def model_costs(records: list[cpet_nb.CPETRecord]) -> dict[str, tuple[float, float, float]]:
    """Per model: ms per 10-minute test of its pipeline, of its inference alone (as the
    pipeline runs it: :meth:`~cpet_nb.model.OxynetModel.predict_rows`), and of the
    interpreter's inference on the same windows (:meth:`~cpet_nb.model.OxynetModel.predict`)."""
    prepared = {id(r): model_input(r) for r in records}
    costs = {}
    for name in MODEL_NAMES:
        model = get_model(name)
        costs[name] = (
            ms_per_10_min(records, lambda r, m=model: model_thresholds(r, m)),
            ms_per_10_min(records, lambda r, m=model: m.predict_rows(prepared[id(r)].rows)),
            ms_per_10_min(records, lambda r, m=model: m.predict(prepared[id(r)].windows)))
    return costs


def peak_mib_cpet_nb(path: Path) -> float:
    code = (f"import cpet_nb; cpet_nb.analyze({str(path)!r}); "
            "print([int(l.split()[1]) / 1024 for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')][0])")
    default = {k: v for k, v in os.environ.items() if k != THREADS_ENV}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=default)
    return float(out.stdout.strip().splitlines()[-1])


def run_pyoxynet(tf_python: str, mode: str, files: list[Path]) -> list[dict]:
    out = subprocess.run([tf_python, str(HERE / "_pyoxynet_timer.py"), mode, *map(str, files)],
                         capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="tests compared with pyoxynet")
    parser.add_argument("--tf-python", default=os.environ.get("CPET_NB_TF_PYTHON"))
    args = parser.parse_args()

    tests = cpet_nb.datasets.pyoxynet_tests()
    sample = tests[: args.n]
    ours = time_cpet_nb(sample)
    all_ours = time_cpet_nb(tests)
    ours_threads = get_model().num_threads
    records = [cpet_nb.read(p) for p in tests]
    os.environ[THREADS_ENV] = "1"  # one core from here on: interpreters of one thread
    get_model.cache_clear()
    model = cpet_nb.model.get_model()
    pipeline_ms = ms_per_10_min(records, lambda record: model_thresholds(record, model))
    analysis_ms = ms_per_10_min(records, analyze_record)
    path_of = {id(record): path for record, path in zip(records, tests, strict=True)}
    read_ms = ms_per_10_min(records, lambda record: cpet_nb.read(path_of[id(record)]))
    end_to_end_ms = ms_per_10_min(records, lambda record: cpet_nb.analyze(path_of[id(record)]))
    every_model = Settings(models=MODEL_NAMES)
    all_models_ms = ms_per_10_min(records, lambda r: analyze_record(r, settings=every_model))
    costs = model_costs(records)
    peak = peak_mib_cpet_nb(sample[0])
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
          f"cpet_nb {cpet_nb.__version__}, runtime {cpet_nb.model.get_model().info.runtime}; "
          f"end to end with {ours_threads} interpreter thread(s)")
    print(f"cpet_nb end to end, all {len(tests)} tests: median "
          f"{statistics.median(all_ours) * 1000:.1f} ms/test, total {sum(all_ours):.2f} s")
    print(f"cpet_nb model pipeline (preprocess+inference+post-processing), one core: "
          f"{pipeline_ms:.1f} ms per 10-minute test (median)")
    print(f"cpet_nb complete analysis of a parsed test (model, measures, classical thresholds, "
          f"consensus), one core: {analysis_ms:.1f} ms per 10-minute test (median)")
    print(f"cpet_nb.analyze(path) end to end, one core: {end_to_end_ms:.1f} ms per 10-minute "
          f"test (median); reading alone {read_ms:.1f} ms, the model pipeline {pipeline_ms:.1f} "
          f"ms, the rest {analysis_ms - pipeline_ms:.1f} ms")
    for name, (model_ms, inference_ms, interpreter_ms) in costs.items():
        evaluator = ("shared convolutions" if get_model(name).sliding is not None
                     else "the interpreter")
        print(f"model {name}, one core, per 10-minute test (median): pipeline {model_ms:.1f} ms, "
              f"of which its inference ({evaluator}) {inference_ms:.1f} ms; the interpreter "
              f"on the same windows {interpreter_ms:.1f} ms")
    print(f"cpet_nb complete analysis with all {len(MODEL_NAMES)} models and their ensemble, "
          f"one core: {all_models_ms:.1f} ms per 10-minute test (median)")
    print(f"cpet_nb peak memory, one process analysing one test: {peak:.0f} MiB")
    if not args.tf_python:
        print("pyoxynet: not measured (pass --tf-python)")
        return
    theirs = run_pyoxynet(args.tf_python, "batch", sample)
    their_peak = run_pyoxynet(args.tf_python, "one", sample[:1])[0]["peak_mib"]
    ratios = [t["seconds"] / o for t, o in zip(theirs, ours, strict=True)]
    print(f"pyoxynet end to end, same {len(sample)} tests: median "
          f"{statistics.median(t['seconds'] for t in theirs) * 1000:.0f} ms/test; "
          f"cpet_nb median {statistics.median(ours) * 1000:.1f} ms/test")
    print(f"speed-up per test (pyoxynet / cpet_nb): median {statistics.median(ratios):.0f}x, "
          f"min {min(ratios):.0f}x")
    print(f"pyoxynet peak memory, one process analysing one test: {their_peak:.0f} MiB")


if __name__ == "__main__":
    sys.exit(main())
