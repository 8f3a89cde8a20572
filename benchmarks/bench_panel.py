"""The panel's cost: a batch run through the panel (widget state driven from Python, no
browser) against the same batch without it.

    python benchmarks/bench_panel.py [--n 100 --n 1000] [--repeat 2]
        [--samples ../shared/cpet-samples] [--json figures.json]

For each N a folder of N unique files is built as in ``bench_batch.py`` (pyoxynet's tests
and, with ``--samples``, the real exports; copies made unique by a comment line). Then, each
on a cold embedded cluster and into a fresh store:

* **without the panel**: ``submit`` then ``wait``; throughput = N / (time from just before
  ``submit`` to ``wait`` returning);
* **through the panel**: an event loop runs on the main thread as a kernel's does; the panel
  is made on it (so its updates run there, throttled, as in a kernel), the inputs are added
  and read (the intake table; not timed), then Run is pressed; throughput = N / (time from
  the press to the job being done). Meanwhile:

  - *cell latency*: a callback scheduled every 100 ms on that loop records how late it
    runs; the largest delay is the longest a cell would have waited for the kernel;
  - *table latency*: for each file, the time from the batch's notice that it was stored to
    the moment its row is in the panel's results table and batch figure (both are updated
    in the same tick);
  - *tick cost*: the time each update of the widgets took on the loop.

Targets (issue 12): throughput through the panel within 10 % of the batch without it, cell
latency under 1 s, table latency under 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tornado.ioloop import IOLoop, PeriodicCallback

import cpet_nb.batch.engine
from cpet_nb.batch import submit
from cpet_nb.ui import Panel

sys.path.insert(0, str(Path(__file__).parent))
from bench_batch import build_batch, check_comment_safe, sources  # noqa: E402

PROBE_S = 0.1
#: Longest wait for one batch (s), so that a stuck run ends the benchmark.
RUN_LIMIT_S = 3600


def without_panel(paths: list[Path], store: Path) -> dict[str, float]:
    """Files/s of a plain batch (cold cluster)."""
    started = time.perf_counter()
    batch = submit(paths, store)
    status = batch.wait()
    elapsed = time.perf_counter() - started
    cpet_nb.batch.engine.shutdown()
    assert status.state == "done", status
    return {"seconds": elapsed, "files_per_s": len(paths) / elapsed}


def through_panel(paths: list[Path], store: Path) -> dict[str, Any]:
    """Files/s, cell latency, table latency and tick cost of a batch run from the panel."""
    figures: dict[str, Any] = {}

    async def session() -> None:
        panel = Panel(store)
        noticed: dict[str, float] = {}
        shown: dict[str, float] = {}
        ticks: list[float] = []
        lateness: list[float] = []
        late_at: list[float] = []  # when each probe ran, s after Run
        apply, append, started_batch = panel.apply_pending, panel.results.append, panel._started

        def timed_apply() -> None:
            began = time.perf_counter()
            apply()
            ticks.append(time.perf_counter() - began)

        def recorded_append(frame: Any) -> None:
            append(frame)
            now = time.perf_counter()
            shown.update({name: now for name in frame["file"]})

        def recording_start(batch: Any, workers: int) -> None:
            batch.subscribe(lambda p: noticed.update(
                {name: time.perf_counter() for name in p.new_files}))
            started_batch(batch, workers)

        panel._ticker._tick = timed_apply
        panel.results.append = recorded_append
        panel._started = recording_start
        last = [0.0]

        def probe() -> None:
            now = time.perf_counter()
            lateness.append(now - last[0] - PROBE_S)
            late_at.append(now - began)
            last[0] = now

        prober = PeriodicCallback(probe, PROBE_S * 1000)
        panel.add_inputs(paths)
        while len(panel.intake) < len(paths):
            await asyncio.sleep(0.1)
        ticks.clear()
        began = last[0] = time.perf_counter()
        prober.start()
        panel.run()
        while "job <b>done</b>" not in panel.status.value \
                or len(panel.results.frame) < len(paths):  # what the page shows: no queries
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - began
        prober.stop()
        delays = [shown[f] - noticed[f] for f in noticed if f in shown]
        figures.update(
            seconds=elapsed, files_per_s=len(paths) / elapsed,
            state=panel.batch.status().state, rows=len(panel.results.frame),
            cell_latency_max_s=max(lateness), cell_latency_p99_s=_quantile(lateness, 0.99),
            cell_latency_max_at_s=late_at[lateness.index(max(lateness))],
            table_latency_max_s=max(delays), table_latency_median_s=statistics.median(delays),
            files_timed=len(delays), ticks=len(ticks), tick_mean_ms=1e3 * statistics.mean(ticks),
            tick_max_ms=1e3 * max(ticks))

    IOLoop().run_sync(session, timeout=RUN_LIMIT_S)
    cpet_nb.batch.engine.shutdown()
    return figures


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every figure's median over the runs (numbers only)."""
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]
            if isinstance(runs[0][key], (int, float))}


def _quantile(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, action="append", help="batch sizes (default 100)")
    parser.add_argument("--samples", type=Path, help="folder of real exports to include")
    parser.add_argument("--repeat", type=int, default=1,
                        help="pairs of runs per N, in the order plain, panel, panel, plain… "
                             "(medians reported; a shared machine's load varies)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    tests, exports = sources(args.samples)
    copyable = check_comment_safe(tests + exports)
    runs = []
    with tempfile.TemporaryDirectory(prefix="cpet_nb-bench-panel-") as scratch:
        work = Path(scratch)
        for n in args.n or [100]:
            paths = [s.path for s in build_batch(n, work / f"n{n}", tests, exports, copyable)]
            plains, panels = [], []
            for i in range(2 * args.repeat):  # ABBA: drift in the machine's load cancels
                store = work / f"run-{n}-{i}.sqlite"
                if i % 4 in (0, 3):
                    plains.append(without_panel(paths, store))
                else:
                    panels.append(through_panel(paths, store))
            plain, panel = _median_run(plains), _median_run(panels)
            run = {"n": n, "without_panel": plain, "through_panel": panel,
                   "runs": {"without_panel": plains, "through_panel": panels},
                   "throughput_ratio": panel["files_per_s"] / plain["files_per_s"]}
            runs.append(run)
            print(f"N = {n}, {args.repeat} run(s) each, medians; files/s without the panel "
                  + ", ".join(f"{r['files_per_s']:.1f}" for r in plains) + "; through it "
                  + ", ".join(f"{r['files_per_s']:.1f}" for r in panels))
            print(f"N = {n}: without the panel {plain['seconds']:.1f} s "
                  f"({plain['files_per_s']:.1f} files/s); through the panel "
                  f"{panel['seconds']:.1f} s ({panel['files_per_s']:.1f} files/s), ratio "
                  f"{run['throughput_ratio']:.2f} (target >= 0.90)")
            print(f"  cell latency: max {panel['cell_latency_max_s']:.3f} s (at "
                  f"{panel['cell_latency_max_at_s']:.1f} s after Run), p99 "
                  f"{panel['cell_latency_p99_s']:.3f} s (target < 1 s)")
            print(f"  table latency (notice -> row in the table and batch figure), "
                  f"{panel['files_timed']:.0f} files: max {panel['table_latency_max_s']:.3f} s, "
                  f"median {panel['table_latency_median_s']:.3f} s (target < 1 s)")
            print(f"  widget updates: {panel['ticks']:.0f}, mean {panel['tick_mean_ms']:.1f} ms, "
                  f"max {panel['tick_max_ms']:.1f} ms on the loop")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
