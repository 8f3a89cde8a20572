"""Time and size of the batch report of an N-test batch (target for 100 tests: < 30 s and
< 15 MB with a section per test).

    python benchmarks/bench_report.py [--n 100] [--per-test sections none] [--zip]

The batch (the first N of pyoxynet's bundled tests) is run first with ``cpet_nb.submit`` on
the embedded cluster; only ``cpet_nb.report.batch_report`` is timed, from the call to the
page on disk: the papermill execution (kernel start, the job read from the store, every
section and figure) and the conversion to HTML. ``--zip`` also times the per-test reports
(one ``test_report.ipynb`` per test in one kernel). Prints one line per measurement and a
JSON summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cpet_nb
import cpet_nb.report


def run_batch(n_tests: int, folder: Path) -> tuple[Path, str]:
    """The first ``n_tests`` bundled tests as a job in a new store in ``folder``."""
    store = folder / "jobs.sqlite"
    batch = cpet_nb.submit(cpet_nb.datasets.pyoxynet_tests()[:n_tests], store=store)
    progress = batch.wait()
    if progress.state != "done":
        raise RuntimeError(f"the batch did not finish: {progress}")
    return store, batch.job_id


def time_report(store: Path, job_id: str, out: Path, per_test: str) -> dict[str, float]:
    """Seconds to make the report, and the megabytes written (page, and ZIP for zip)."""
    started = time.perf_counter()
    page = cpet_nb.report.batch_report(job_id, store, out, per_test)
    seconds = time.perf_counter() - started
    figures = {"per_test": per_test, "seconds": round(seconds, 1),
               "page_mb": round(page.stat().st_size / 1e6, 2)}
    if per_test == "zip":
        archive = cpet_nb.report.tests_zip_path(page)
        with zipfile.ZipFile(archive) as opened:
            figures["zip_members"] = len(opened.namelist())
        figures["zip_mb"] = round(archive.stat().st_size / 1e6, 1)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="tests in the batch (max 139)")
    parser.add_argument("--per-test", nargs="+", default=["sections", "none"],
                        choices=cpet_nb.report.PER_TEST, help="report variants to time")
    parser.add_argument("--zip", action="store_true", help="also time per_test='zip'")
    args = parser.parse_args(argv)
    variants = args.per_test + (["zip"] if args.zip and "zip" not in args.per_test else [])
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        store, job_id = run_batch(args.n, Path(folder))
        print(f"batch of {args.n} tests: {time.perf_counter() - started:.1f} s", file=sys.stderr)
        cpet_nb.batch.engine.shutdown()  # the report's time alone, without idle workers
        results = []
        for per_test in variants:
            figures = time_report(store, job_id, Path(folder) / f"report-{per_test}.html",
                                  per_test)
            print(f"report, {per_test}: {figures}", file=sys.stderr)
            results.append(figures)
    print(json.dumps({"n_tests": args.n, "reports": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
