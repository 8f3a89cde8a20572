"""Peak memory: one analysis in a fresh process, and a small batch's whole process tree.

    python benchmarks/bench_memory.py [--n 20] [--repeats 3] [--no-batch]

* one analysis: a fresh interpreter imports cpet_nb, runs ``cpet_nb.analyze`` on one of
  pyoxynet's bundled tests (``data_test.csv``, 12 minutes) and reports its peak RSS
  (``VmHWM``; ``ru_maxrss`` of a process started by this one would count this process's
  memory, which the child has until it runs the new interpreter); the same after
  ``import cpet_nb`` alone; and both again in an interpreter where ``import pyarrow`` is
  blocked before cpet_nb is imported (as cpet_nb does for a pyarrow that cannot work,
  ``cpet_nb._optional``), to show what pandas' loading of a working pyarrow costs;
* a batch: ``--n`` of the bundled tests through :func:`cpet_nb.submit` on a cold embedded
  cluster into a fresh store, the peak of the summed RSS of this process and all its
  descendants (workers and their analysis processes), sampled every 50 ms with psutil
  (``bench_batch.MemorySampler``; shared pages count once per process).

Each figure is the min and median of ``--repeats`` runs; the machine's load average
(``os.getloadavg``) is printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_batch import MemorySampler

import cpet_nb

#: Run in a fresh interpreter: ``{block}`` is "1" to block pyarrow, ``{analyse}`` "1" to
#: analyse ``{path}`` after importing cpet_nb.
ONE_PROCESS = """
import json, resource, sys
if {block}:
    sys.modules["pyarrow"] = None
import cpet_nb
if {analyse}:
    cpet_nb.analyze({path!r})
try:  # this process's own peak: ru_maxrss would include the forked parent's before exec
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"peak_mib": peak_kib / 1024,
                   "pyarrow": sys.modules.get("pyarrow") is not None}}))
"""


def fresh_process_peak(path: Path, *, analyse: bool, block_pyarrow: bool) -> dict:
    """Peak RSS (MiB) of a fresh interpreter that imports cpet_nb (and analyses ``path``)."""
    code = ONE_PROCESS.format(block=int(block_pyarrow), analyse=int(analyse), path=str(path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def batch_peak(n: int, scratch: Path) -> float:
    """Peak summed RSS (MiB) of this process tree while ``n`` bundled tests run as a batch."""
    folder = scratch / "files"
    folder.mkdir()
    for path in cpet_nb.datasets.pyoxynet_tests()[:n]:
        shutil.copy(path, folder / path.name)
    sampler = MemorySampler()
    sampler.start()
    batch = cpet_nb.submit([folder], scratch / "jobs.sqlite")
    batch.wait()
    sampler.stop()
    cpet_nb.batch.engine.shutdown()
    return sampler.peak_mib


def summary(values: list[float]) -> str:
    return f"min {min(values):6.1f}  median {statistics.median(values):6.1f} MiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="files in the batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-batch", action="store_true", help="only the one-test figures")
    args = parser.parse_args()
    test = cpet_nb.datasets.pyoxynet_tests()[0]
    print(f"load average at start: {os.getloadavg()}")
    for block in (False, True):
        for analyse in (False, True):
            runs = [fresh_process_peak(test, analyse=analyse, block_pyarrow=block)
                    for _ in range(args.repeats)]
            what = "import cpet_nb + analyze(data_test.csv)" if analyse else "import cpet_nb"
            pyarrow = "pyarrow loaded" if runs[0]["pyarrow"] else "pyarrow not loaded"
            print(f"{what:40s} {pyarrow:19s} {summary([r['peak_mib'] for r in runs])}")
    if not args.no_batch:
        peaks = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as scratch:
                peaks.append(batch_peak(args.n, Path(scratch)))
        print(f"{f'batch of {args.n}, whole process tree':60s} {summary(peaks)}")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
