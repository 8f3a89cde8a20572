"""Batch throughput of cpet_nb on a cold embedded dask cluster, and pyoxynet on the same files.

    python benchmarks/bench_batch.py [--n 100 --n 1000] [--samples ../shared/cpet-samples]
        [--tf-python /tmp/tf-venv/bin/python] [--json figures.json]

For each batch size N (default 100 and 1000) a folder of N files is built in a temporary
directory from pyoxynet's bundled real tests (:func:`cpet_nb.datasets.pyoxynet_tests`) and,
with ``--samples DIR``, the real device exports there that cpet_nb reads. Files are made
unique in content: copy k >= 1 of a text file gets ``# copy k`` appended as a last line; text
files whose result that line would change (checked before the runs, in a separate process),
and binary files (.xlsx), are included once only (duplicates inside one job would still be
computed, as reuse by content hash happens only across jobs, but they would add nothing). The
batch is shuffled with a fixed seed so that long exports do not share one partition.

Each N runs with :func:`cpet_nb.batch.submit` into a fresh store, on a cold embedded
``LocalCluster`` (started by ``submit``, shut down with :func:`cpet_nb.batch.engine.shutdown`
afterwards), and reports:

* end to end: from just before ``submit`` (which expands, sniffs and hashes the inputs and
  starts the cluster) until ``wait`` returns (every result stored), and files/s;
* time to the first stored result: the first subscriber notice with ``new_files``;
* peak memory: RSS of this process (client, scheduler, nannies) plus every descendant
  (worker processes and their analysis processes), sampled every 50 ms, peak of the sum
  (shared pages are counted once per process, so this over-counts a little);
* scheduling overhead from ``client.get_task_stream()`` (the scheduler gets a task stream
  plugin at start through a preload) and the store's per-file ``elapsed_s`` (definitions
  are printed with the figures);
* per-file analysis time (``elapsed_s``: on the worker, around the analysis process's call);
* the rate as a share of twice a one-core rate, by two definitions: issue 11's (2 x
  ``cpet_nb.analyze`` on one core, timed on every tenth file of the batch in a separate
  process pinned to one core, before the run) and the workers' own (2 x their mean
  ``elapsed_s``), each end to end and from the first task to the last;
* CPU seconds used meanwhile by this benchmark's processes and by the rest of the machine
  (other users' load on a shared machine skews every figure above).

With ``--tf-python`` (or ``CPET_NB_TF_PYTHON``: a Python with ``tensorflow-cpu==2.15.1``,
``pandas<3`` and ``pyoxynet==0.1.12``, see docs/model.md) pyoxynet's own per-file path
(``pyoxynet.test_pyoxynet``, model loaded once, via ``_pyoxynet_timer.py batch``) is timed
on a sample of the pyoxynet tests of the batch after the cpet_nb runs, and extrapolated to N
files. Imports (cpet_nb, distributed) happen before the clock starts; the cluster does not
exist yet. ``DASK_SCHEDULER_ADDRESS`` is ignored: this measures the embedded cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import psutil

import cpet_nb
import cpet_nb.batch.engine
from cpet_nb.batch import Progress, submit
from cpet_nb.io.inputs import expand_inputs

HERE = Path(__file__).parent
SEED = 0
SAMPLE_PERIOD_S = 0.05
#: Every this many files of a batch, one is timed with ``cpet_nb.analyze`` on one core (the
#: single-core rate the batch is compared with).
SINGLE_CORE_EVERY = 10
MIB = 1024 * 1024
#: Scheduler preload (script text) that records every task from the scheduler's start.
TASK_STREAM_PRELOAD = """
from distributed.diagnostics.task_stream import TaskStreamPlugin

def dask_setup(scheduler):
    scheduler.add_plugin(TaskStreamPlugin(scheduler))
"""
#: (name, unit, target, floor, N it applies to or None for every N, comparisons of the
#: target and of the floor)
TARGETS = (
    ("end to end", "s", 60.0, None, 1000, ("<=", "<")),
    ("end to end", "s", None, 300.0, 100, ("<=", "<")),
    ("first result stored", "s", 5.0, None, None, ("<=", "<")),
    ("peak memory", "MiB", 1.5e9 / MIB, 2e9 / MIB, None, ("<=", "<")),
    ("scheduling overhead", "%", 10.0, None, None, ("<", "<")),
)


@dataclass(frozen=True)
class Staged:
    """One file of a built batch: where it is and what it is a copy of."""

    path: Path
    source: Path
    copy: int
    pyoxynet: bool


# -- building the batches ----------------------------------------------------------------


def is_binary(path: Path) -> bool:
    """Whether ``path`` is a binary file (a ZIP container such as .xlsx, or NUL bytes).

    Parameters
    ----------
    path : Path

    Returns
    -------
    bool
    """
    head = path.read_bytes()[:8192]
    return head.startswith(b"PK\x03\x04") or b"\0" in head


def with_comment(data: bytes, copy: int) -> bytes:
    """Text file content with a last line ``# copy <copy>`` (a newline is added first when
    the content does not end with one).

    Parameters
    ----------
    data : bytes
    copy : int

    Returns
    -------
    bytes
    """
    return data + (b"" if data.endswith(b"\n") else b"\n") + f"# copy {copy}\n".encode()


def result_signature(result: Any) -> tuple[str, tuple[str, ...]]:
    """Status and sorted finding codes of a :class:`cpet_nb.FileResult`."""
    return result.status, tuple(sorted(f.code for f in result.findings))


def comment_safe(paths: list[str]) -> dict[str, bool]:
    """For each text file, whether appending ``# copy 1`` keeps its status and finding codes.

    Run in a separate process (see :func:`check_comment_safe`) so that this process does not
    hold the model and analysis memory during the measured runs.

    Parameters
    ----------
    paths : list of str

    Returns
    -------
    dict
        Path to True when the appended line changes neither status nor finding codes.
    """
    safe = {}
    with tempfile.TemporaryDirectory() as folder:
        for i, name in enumerate(paths):
            path = Path(name)
            copy = Path(folder) / f"{i}-{path.name}"
            copy.write_bytes(with_comment(path.read_bytes(), 1))
            safe[name] = (result_signature(cpet_nb.analyze(path))
                          == result_signature(cpet_nb.analyze(copy)))
    return safe


def analysis_seconds(paths: list[str]) -> list[float]:
    """Seconds of ``cpet_nb.analyze(path)`` for each path, in this process pinned to one core
    (model loaded and one file analysed first, untimed). Run in a separate process (see
    :func:`single_core_seconds`).

    Parameters
    ----------
    paths : list of str

    Returns
    -------
    list of float
    """
    cores = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cores)})
    cpet_nb.analyze(paths[0])
    seconds = []
    for path in paths:
        start = time.perf_counter()
        cpet_nb.analyze(path)
        seconds.append(time.perf_counter() - start)
    return seconds


def single_core_seconds(paths: list[Path]) -> list[float]:
    """:func:`analysis_seconds` in a fresh child process (spawned)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(analysis_seconds, [str(p) for p in paths]).result()


def check_comment_safe(paths: list[Path]) -> dict[Path, bool]:
    """:func:`comment_safe` in a fresh child process (spawned, so it imports cpet_nb anew)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        safe = pool.submit(comment_safe, [str(p) for p in paths]).result()
    return {Path(k): v for k, v in safe.items()}


def sources(samples: Path | None) -> tuple[list[Path], list[Path]]:
    """pyoxynet's bundled tests and the sample exports cpet_nb recognises in ``samples``.

    Parameters
    ----------
    samples : Path, optional

    Returns
    -------
    tests, exports : list of Path
    """
    tests = cpet_nb.datasets.pyoxynet_tests()
    exports = []
    if samples is not None:
        with expand_inputs([samples]) as found:
            exports = [item.path for item in found.files if item.archive is None]
    return tests, exports


def build_batch(n: int, folder: Path, tests: list[Path], exports: list[Path],
                copyable: dict[Path, bool]) -> list[Staged]:
    """Write ``n`` files, unique in content, into ``folder``.

    Files that may not be copied (binary, or changed by the comment line) come once each;
    the rest are drawn in turn from the pyoxynet tests and copyable exports (shuffled with a
    fixed seed), copy k >= 1 getting ``# copy k`` appended. The batch is then shuffled.

    Parameters
    ----------
    n : int
    folder : Path
    tests, exports : list of Path
    copyable : dict
        Path to whether its copies may carry the comment line.

    Returns
    -------
    list of Staged
    """
    rng = random.Random(SEED)
    once = [p for p in exports if not copyable.get(p, False)]
    pool = tests + [p for p in exports if copyable.get(p, False)]
    rng.shuffle(pool)
    chosen: list[tuple[Path, int]] = [(p, 0) for p in once[:n]]
    for i in range(n - len(chosen)):
        chosen.append((pool[i % len(pool)], i // len(pool)))
    rng.shuffle(chosen)
    test_set = set(tests)
    staged = []
    folder.mkdir(parents=True)
    for i, (source, copy) in enumerate(chosen):
        data = source.read_bytes()
        target = folder / f"{i:05d}-c{copy}-{source.name}"
        target.write_bytes(with_comment(data, copy) if copy else data)
        staged.append(Staged(target, source, copy, source in test_set))
    return staged


# -- measuring ---------------------------------------------------------------------------


class MemorySampler(threading.Thread):
    """Samples the RSS of this process and all its descendants; keeps the peak of the sum.

    Attributes
    ----------
    peak_mib : float
    peak_parts : dict
        MiB per role at the peak: ``client`` (this process: client, scheduler, nannies),
        ``workers``, ``analysis`` (the analysis processes) and ``other``.
    samples : int
    cpu_s : float
        CPU time (user + system) of this process and its descendants during the sampling
        (a descendant's last sampled value counts, so up to one period of it may be missed).
    others_cpu_s : float
        CPU time the rest of the machine used meanwhile (busy time of all cores minus
        ``cpu_s``): other users' load on a shared machine.
    cpu_parts : dict
        ``cpu_s`` per role (as ``peak_parts``).
    """

    def __init__(self, period_s: float = SAMPLE_PERIOD_S) -> None:
        super().__init__(name="bench-memory", daemon=True)
        self.period_s = period_s
        self.peak_mib = 0.0
        self.peak_parts: dict[str, float] = {}
        self.samples = 0
        self._halt = threading.Event()
        self._me = psutil.Process()
        self._roles: dict[int, str] = {}
        self._cpu: dict[int, float] = {}
        self._start_cpu = 0.0
        self._start_busy = 0.0
        self.cpu_s = 0.0
        self.others_cpu_s = 0.0
        self.cpu_parts: dict[str, float] = {}

    def _role(self, proc: psutil.Process) -> str:
        if proc.pid not in self._roles:
            try:
                cmdline = " ".join(proc.cmdline())
            except psutil.Error:
                cmdline = ""
            if "cpet_nb.batch.sandbox" in cmdline:
                role = "analysis"
            elif "multiprocessing" in cmdline and "resource_tracker" not in cmdline:
                role = "workers"
            else:
                role = "other"
            if not cmdline:  # not readable yet (a process just forked): look again next time
                return role
            self._roles[proc.pid] = role
        return self._roles[proc.pid]

    def sample(self) -> None:
        """Take one sample."""
        parts = {"client": 0.0, "workers": 0.0, "analysis": 0.0, "other": 0.0}
        try:
            with self._me.oneshot():
                parts["client"] = self._me.memory_info().rss / MIB
                self._cpu[self._me.pid] = _cpu_seconds(self._me.cpu_times())
            children = self._me.children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            try:
                with child.oneshot():
                    parts[self._role(child)] += child.memory_info().rss / MIB
                    self._cpu[child.pid] = _cpu_seconds(child.cpu_times())
            except psutil.Error:
                continue  # ended between the listing and the reading
        self.samples += 1
        total = sum(parts.values())
        if total > self.peak_mib:
            self.peak_mib, self.peak_parts = total, parts

    def run(self) -> None:
        self._start_cpu = _cpu_seconds(self._me.cpu_times())
        self._start_busy = _busy_seconds()
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.period_s)

    def stop(self) -> None:
        """Stop sampling (after one last sample) and wait for the thread."""
        self._halt.set()
        self.join()
        self.sample()
        self.cpu_s = sum(self._cpu.values()) - self._start_cpu
        self.cpu_parts = {"client": self._cpu[self._me.pid] - self._start_cpu}
        for pid, seconds in self._cpu.items():
            if pid != self._me.pid:
                role = self._roles.get(pid, "other")
                self.cpu_parts[role] = self.cpu_parts.get(role, 0.0) + seconds
        self.others_cpu_s = _busy_seconds() - self._start_busy - self.cpu_s


def _cpu_seconds(times: Any) -> float:
    return times.user + times.system


def _busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (everything but idle and I/O wait)."""
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def overhead(tasks: list[dict], files: Any, threads: int) -> dict[str, Any]:
    """Scheduling overhead of one job from its task stream and its files' ``elapsed_s``.

    Window: first task compute start to last task compute end. Capacity W: worker threads x
    window. T: sum of task compute time. A: sum of per-file ``elapsed_s``.

    Parameters
    ----------
    tasks : list of dict
        ``client.get_task_stream()`` records of the job's tasks.
    files : DataFrame
        ``Batch.files()`` plus ``started_at``.
    threads : int
        Worker threads in the cluster.

    Returns
    -------
    dict
        ``idle_pct`` ((W - T) / W), ``in_task_pct`` ((T - A) / T), ``overhead_pct``
        ((W - A) / W), the window and the sums (s). Without tasks, the window is taken from
        the files' start and end times and only ``overhead_pct`` is given.
    """
    analysis = float(files["elapsed_s"].sum())
    computes = [ss for task in tasks for ss in task["startstops"] if ss["action"] == "compute"]
    if computes:
        first = min(ss["start"] for ss in computes)
        last = max(ss["stop"] for ss in computes)
        task_time = sum(ss["stop"] - ss["start"] for ss in computes)
    else:
        first = float(files["started_at"].min())
        last = float((files["started_at"] + files["elapsed_s"]).max())
        task_time = float("nan")
    capacity = threads * (last - first)
    return {
        "source": "task stream" if computes else "store (no task stream)",
        "tasks": len(tasks),
        "window_start": first,
        "window_end": last,
        "window_s": last - first,
        "threads": threads,
        "capacity_s": capacity,
        "task_s": task_time,
        "analysis_s": analysis,
        "idle_pct": 100 * (capacity - task_time) / capacity,
        "in_task_pct": 100 * (task_time - analysis) / task_time,
        "overhead_pct": 100 * (capacity - analysis) / capacity,
    }


def run_batch(n: int, workdir: Path, tests: list[Path], exports: list[Path],
              copyable: dict[Path, bool], workers: int) -> dict[str, Any]:
    """Build an N-file batch, run it on a cold embedded cluster, return the figures.

    Parameters
    ----------
    n : int
    workdir : Path
        A folder for this run's files and store.
    tests, exports : list of Path
    copyable : dict
    workers : int
        Worker processes (0: one per core).

    Returns
    -------
    dict
    """
    staged = build_batch(n, workdir / "files", tests, exports, copyable)
    single = single_core_seconds([s.path for s in staged[::SINGLE_CORE_EVERY]])
    store_path = workdir / "jobs.sqlite"
    first_stored: list[float] = []
    notices = 0

    def on_progress(progress: Progress) -> None:
        nonlocal notices
        notices += 1
        if progress.new_files and not first_stored:
            first_stored.append(time.perf_counter())

    load = os.getloadavg()
    sampler = MemorySampler()
    sampler.start()
    wall0 = time.time()
    t0 = time.perf_counter()
    with dask.config.set({"distributed.scheduler.preload": [TASK_STREAM_PRELOAD]}):
        batch = submit([workdir / "files"], store_path, workers=workers)
    t_submitted = time.perf_counter()
    batch.subscribe(on_progress)
    status = batch.wait()
    t_end = time.perf_counter()
    sampler.stop()

    client = cpet_nb.batch.engine.get_client()
    threads = cpet_nb.batch.engine.worker_threads(client)
    n_workers = len(client.scheduler_info(n_workers=-1)["workers"])
    prefix = f"cpet_nb-{batch.job_id}-"
    tasks = [t for t in client.get_task_stream() if str(t["key"]).startswith(prefix)]
    files = batch.files()
    started = dict(batch.store.connection().execute(
        "SELECT idx, started_at FROM files WHERE job_id = ?", (batch.job_id,)).fetchall())
    files["started_at"] = files["idx"].map(started)
    results = batch.results()
    cpet_nb.batch.engine.shutdown()

    if not first_stored:  # the subscription came after the first partition was stored
        first_stored.append(float("nan"))
    over = overhead(tasks, files, threads)
    by_path = {str(s.path): s for s in staged}
    staged_of = [by_path.get(name) for name in files["path"]]
    mismatches = copies_disagree(files, staged_of)
    durations = results["duration_s"].dropna()
    formats = Counter(results["format"].fillna("unreadable"))
    elapsed = files["elapsed_s"].dropna()
    return {
        "n": n,
        "pyoxynet_sources": sorted({str(s.source) for s in staged if s.pyoxynet}),
        "n_files": status.n_files,
        "state": status.state,
        "counts": {k: status.counts[k] for k in ("done", "reused", "ok", "warning", "error")},
        "loadavg_before": load,
        "workers": n_workers,
        "threads": threads,
        "notices": notices,
        "mix": {
            "pyoxynet_tests": sum(s.pyoxynet for s in staged),
            "pyoxynet_distinct": len({s.source for s in staged if s.pyoxynet}),
            "exports": sum(not s.pyoxynet for s in staged),
            "exports_distinct": len({s.source for s in staged if not s.pyoxynet}),
            "max_copies": max(s.copy for s in staged) + 1,
            "formats": dict(formats.most_common()),
        },
        "duration_min": {
            "median": float(durations.median()) / 60,
            "p25": float(durations.quantile(0.25)) / 60,
            "p75": float(durations.quantile(0.75)) / 60,
            "min": float(durations.min()) / 60,
            "max": float(durations.max()) / 60,
        },
        "submit_returned_s": t_submitted - t0,
        "first_task_start_s": over["window_start"] - wall0,
        "first_file_done_s": float((files["started_at"] + files["elapsed_s"]).min()) - wall0,
        "first_result_s": first_stored[0] - t0,
        "last_task_end_s": over["window_end"] - wall0,
        "end_to_end_s": t_end - t0,
        "files_per_s": n / (t_end - t0),
        "single_core": {"files": len(single), "mean_s": statistics.fmean(single),
                        "median_s": statistics.median(single)},
        "peak_mib": sampler.peak_mib,
        "peak_parts_mib": sampler.peak_parts,
        "memory_samples": sampler.samples,
        "cpu_s": sampler.cpu_s,
        "others_cpu_s": sampler.others_cpu_s,
        "cpu_parts": sampler.cpu_parts,
        "elapsed_s": {
            "median": float(elapsed.median()),
            "p90": float(elapsed.quantile(0.9)),
            "max": float(elapsed.max()),
            "sum": float(elapsed.sum()),
        },
        "overhead": over,
        "copies_disagree": mismatches,
    }


def cancel_latency(n: int, workdir: Path, tests: list[Path], exports: list[Path],
                   copyable: dict[Path, bool], workers: int) -> dict[str, Any]:
    """Seconds from ``Batch.cancel()`` to the batch being stopped (every running task back,
    the job ``cancelled``), cancelled once the first result is stored in an N-file batch."""
    build_batch(n, workdir / "files", tests, exports, copyable)
    first = threading.Event()
    batch = submit([workdir / "files"], workdir / "jobs.sqlite", workers=workers)
    batch.subscribe(lambda progress: first.set() if progress.new_files else None)
    first.wait(120)
    t0 = time.perf_counter()
    status = batch.cancel()
    latency = time.perf_counter() - t0
    cpet_nb.batch.engine.shutdown()
    return {"n": n, "cancel_s": latency, "state": status.state,
            "stored": status.counts["done"], "cancelled": status.counts["cancelled"]}


def copies_disagree(files: Any, staged: list[Staged | None]) -> list[str]:
    """Sources whose copies in the batch got different statuses or finding codes."""
    seen: dict[Path, tuple] = {}
    bad = []
    for (_, row), item in zip(files.iterrows(), staged, strict=True):
        if item is None:
            continue
        codes = tuple(sorted(f["code"] for f in json.loads(row["findings"] or "[]")))
        signature = (row["status"], codes)
        if seen.setdefault(item.source, signature) != signature and item.source.name not in bad:
            bad.append(item.source.name)
    return bad


def time_pyoxynet(tf_python: str, files: list[Path]) -> list[dict]:
    """pyoxynet's seconds per file (``_pyoxynet_timer.py batch``; model loaded once).

    Parameters
    ----------
    tf_python : str
        A Python with TensorFlow and pyoxynet.
    files : list of Path

    Returns
    -------
    list of dict
        One ``{"file", "seconds", "rows"}`` per file.
    """
    out = subprocess.run([tf_python, str(HERE / "_pyoxynet_timer.py"), "batch",
                          *map(str, files)], capture_output=True, text=True, check=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def pyoxynet_sample(tests: list[Path], k: int) -> list[Path]:
    """``k`` of ``tests``, evenly spaced over their order.

    Parameters
    ----------
    tests : list of Path
        The pyoxynet tests that every batch holds (copy 0, unmodified content).
    k : int

    Returns
    -------
    list of Path
    """
    step = max(1, len(tests) // max(1, k))
    return tests[::step][:k]


# -- reporting ---------------------------------------------------------------------------


def verdict(value: float, limit: float | None, comparison: str) -> str:
    if limit is None or value != value:
        return "–"
    ok = value <= limit if comparison == "<=" else value < limit
    return "met" if ok else "MISSED"


def limit_text(limit: float | None, comparison: str, unit: str) -> str:
    return "–" if limit is None else f"{comparison} {limit:.0f} {unit}"


def figure(run: dict[str, Any], name: str) -> float:
    return {
        "end to end": run["end_to_end_s"],
        "first result stored": run["first_result_s"],
        "peak memory": run["peak_mib"],
        "scheduling overhead": run["overhead"]["overhead_pct"],
    }[name]


def print_run(run: dict[str, Any]) -> None:
    mix, dur, over, el = run["mix"], run["duration_min"], run["overhead"], run["elapsed_s"]
    print(f"\n== N = {run['n']}: {run['n_files']} files, job {run['state']}, "
          f"{run['counts']['ok']} ok / {run['counts']['warning']} warning / "
          f"{run['counts']['error']} error; {run['workers']} workers x "
          f"{run['threads'] // max(1, run['workers'])} thread; load average before "
          f"{run['loadavg_before'][0]:.2f}")
    print(f"mix: {mix['pyoxynet_tests']} pyoxynet tests ({mix['pyoxynet_distinct']} distinct), "
          f"{mix['exports']} device exports ({mix['exports_distinct']} distinct); up to "
          f"{mix['max_copies']} copies of a source; formats "
          + ", ".join(f"{k} {v}" for k, v in mix["formats"].items()))
    print(f"test duration: median {dur['median']:.1f} min (IQR {dur['p25']:.1f}–"
          f"{dur['p75']:.1f}, range {dur['min']:.1f}–{dur['max']:.1f})")
    if run["copies_disagree"]:
        print("WARNING: copies with different results: " + ", ".join(run["copies_disagree"]))
    print(f"timeline from just before submit: submit returned {run['submit_returned_s']:.2f} s "
          f"(inputs + cold cluster), first task started {run['first_task_start_s']:.2f} s, "
          f"first file analysed {run['first_file_done_s']:.2f} s, first result stored "
          f"{run['first_result_s']:.2f} s, last task ended {run['last_task_end_s']:.2f} s, "
          f"wait returned {run['end_to_end_s']:.2f} s")
    print(f"end to end {run['end_to_end_s']:.2f} s = {run['files_per_s']:.1f} files/s; CPU "
          f"meanwhile: this benchmark's processes {run['cpu_s']:.1f} s, the rest of the machine "
          f"{run['others_cpu_s']:.1f} s, of {os.cpu_count() * run['end_to_end_s']:.1f} core-s "
          f"({', '.join(f'{role} {s:.1f} s' for role, s in run['cpu_parts'].items())})")
    for line in rate_lines(run):
        print(line)
    parts = ", ".join(f"{k} {v:.0f}" for k, v in run["peak_parts_mib"].items())
    print(f"peak memory (RSS sum, {run['memory_samples']} samples): {run['peak_mib']:.0f} MiB "
          f"({parts})")
    print(f"per-file analysis time (elapsed_s): median {el['median'] * 1000:.1f} ms, "
          f"p90 {el['p90'] * 1000:.1f} ms, max {el['max'] * 1000:.0f} ms, sum {el['sum']:.2f} s")
    print(f"scheduling overhead ({over['source']}, {over['tasks']} tasks): window = first task "
          f"start to last task end = {over['window_s']:.2f} s; W = {over['threads']} threads x "
          f"window = {over['capacity_s']:.2f} s; T = task compute time = {over['task_s']:.2f} s; "
          f"A = sum of per-file elapsed_s = {over['analysis_s']:.2f} s")
    print(f"  (a) worker-thread time not in tasks (W-T)/W = {over['idle_pct']:.1f} %; "
          f"(b) task time not analysing files (T-A)/T = {over['in_task_pct']:.1f} %; "
          f"total, worker-thread time not analysing files (W-A)/W = "
          f"{over['overhead_pct']:.1f} %")


def rate_lines(run: dict[str, Any]) -> list[str]:
    """The batch's rate as a share of twice a one-core rate, by the two definitions: the
    issue's (``cpet_nb.analyze`` in one process on one core, on a sample of this batch's
    files) and the workers' own (their mean per-file ``elapsed_s``: in the analysis process,
    at ``nice`` 10, next to the other worker, the pipe included)."""
    cores = run["threads"]
    single, el, over = run["single_core"], run["elapsed_s"], run["overhead"]
    by_analyze = cores / single["mean_s"]
    by_workers = cores * run["n"] / el["sum"]
    steady = run["n"] / over["window_s"]
    return [
        f"rate against {cores} x one core, cpet_nb.analyze ({single['files']} files of this "
        f"batch, one process pinned to one core, mean {single['mean_s'] * 1000:.1f} ms, median "
        f"{single['median_s'] * 1000:.1f} ms): {cores} x = {by_analyze:.1f} files/s; end to end "
        f"{100 * run['files_per_s'] / by_analyze:.0f} %, first task to last "
        f"{100 * steady / by_analyze:.0f} %",
        f"rate against {cores} x the workers' per-file rate (mean elapsed_s "
        f"{el['sum'] / run['n'] * 1000:.1f} ms): {cores} x = {by_workers:.1f} files/s; end to "
        f"end {100 * run['files_per_s'] / by_workers:.0f} %, first task to last "
        f"{100 * steady / by_workers:.0f} %",
    ]


def print_targets(runs: list[dict[str, Any]]) -> None:
    print("\n| measure | N | target | floor | measured | target | floor |")
    print("|---|---|---|---|---|---|---|")
    names = list(dict.fromkeys(name for name, *_ in TARGETS))
    for name in names:
        for run in runs:
            entries = [t for t in TARGETS if t[0] == name and t[4] in (None, run["n"])]
            if entries:
                _, unit, target, floor, _, (to_target, to_floor) = entries[0]
            else:  # no target for this N: the figure alone
                unit = next(t[1] for t in TARGETS if t[0] == name)
                target, floor, to_target, to_floor = None, None, "<=", "<"
            value = figure(run, name)
            print(f"| {name} | {run['n']} | {limit_text(target, to_target, unit)} | "
                  f"{limit_text(floor, to_floor, unit)} | {value:.2f} {unit} | "
                  f"{verdict(value, target, to_target)} | {verdict(value, floor, to_floor)} |")
    print("(end-to-end target: 1,000 ten-minute tests <= 60 s; floor: 100 files < 5 min. "
          "Memory: 1.5 GB = 1,430.5 MiB, 2 GB = 1,907.3 MiB. Scheduling overhead: the total, "
          "(W-A)/W.)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, action="append",
                        help="files per batch (repeatable; default 100 and 1000)")
    parser.add_argument("--samples", type=Path,
                        help="folder of device exports to mix in (e.g. ../shared/cpet-samples)")
    parser.add_argument("--tf-python", default=os.environ.get("CPET_NB_TF_PYTHON"),
                        help="Python with pyoxynet and TensorFlow (or $CPET_NB_TF_PYTHON)")
    parser.add_argument("--pyoxynet-files", type=int, default=10,
                        help="pyoxynet tests timed with pyoxynet itself (default 10)")
    parser.add_argument("--workers", type=int, default=0,
                        help="worker processes of the embedded cluster (0: one per core)")
    parser.add_argument("--cancel-n", type=int, default=300,
                        help="files in the batch cancelled to time cancel() (0: skip)")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = parser.parse_args()
    sizes = args.n or [100, 1000]
    if args.samples is not None and not args.samples.is_dir():
        parser.error(f"--samples: {args.samples} is not a folder")
    os.environ.pop("DASK_SCHEDULER_ADDRESS", None)

    tests, exports = sources(args.samples)
    text = [p for p in tests + exports if not is_binary(p)]
    copyable = check_comment_safe(text)
    changed = [p.name for p in text if not copyable[p]]
    binary = [p.name for p in exports if is_binary(p)]
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
          f"Python {sys.version.split()[0]}, cpet_nb {cpet_nb.__version__} "
          f"({Path(cpet_nb.__file__).parent})")
    print(f"sources: {len(tests)} pyoxynet tests, {len(exports)} device exports; appended "
          f"'# copy k' line checked on {len(text)} text files: changes the result of "
          f"{len(changed)} ({', '.join(changed) or 'none'}; "
          f"{sum(copyable[p] for p in tests)}/{len(tests)} pyoxynet tests unchanged); "
          f"included once only: {', '.join(binary + changed) or 'none'}")

    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as folder:
        for n in sizes:
            runs.append(run_batch(n, Path(folder) / f"n{n}", tests, exports, copyable,
                                  args.workers))
            print_run(runs[-1])
            shutil.rmtree(Path(folder) / f"n{n}", ignore_errors=True)
        cancelled = (cancel_latency(args.cancel_n, Path(folder) / "cancel", tests, exports,
                                    copyable, args.workers) if args.cancel_n else None)
    if cancelled:
        print(f"\ncancel: a {cancelled['n']}-file batch cancelled after its first stored "
              f"result stopped {cancelled['cancel_s']:.2f} s after cancel() (target <= 2 s); "
              f"job {cancelled['state']}, {cancelled['stored']} results kept, "
              f"{cancelled['cancelled']} files cancelled")

    pyoxynet: dict[str, Any] = {}
    in_every = set.intersection(*(set(r.pop("pyoxynet_sources")) for r in runs))
    if args.tf_python:
        sample = pyoxynet_sample([p for p in tests if str(p) in in_every], args.pyoxynet_files)
        timed = time_pyoxynet(args.tf_python, sample)
        seconds = [t["seconds"] for t in timed]
        mean = statistics.fmean(seconds)
        pyoxynet = {"files": [Path(t["file"]).name for t in timed], "seconds": seconds,
                    "mean_s": mean, "median_s": statistics.median(seconds),
                    "extrapolated_s": {r["n"]: mean * r["n"] for r in runs},
                    "ratio": {r["n"]: mean * r["n"] / r["end_to_end_s"] for r in runs}}
        print(f"\npyoxynet (test_pyoxynet, model loaded once, one process) on {len(timed)} "
              f"of the batch's pyoxynet tests (unmodified content): mean {mean:.2f} s/file, "
              f"median {pyoxynet['median_s']:.2f} s/file")
        for run in runs:
            print(f"  N = {run['n']}: pyoxynet extrapolated {mean * run['n']:.0f} s "
                  f"({mean * run['n'] / 60:.1f} min) vs cpet_nb end to end "
                  f"{run['end_to_end_s']:.1f} s: {pyoxynet['ratio'][run['n']]:.0f}x")
    else:
        print("\npyoxynet: not measured (pass --tf-python or set CPET_NB_TF_PYTHON)")

    print_targets(runs)
    if args.json:
        args.json.write_text(json.dumps({
            "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0],
                        "cpet_nb": cpet_nb.__version__},
            "comment_line_changes_result": changed, "included_once": binary + changed,
            "runs": runs, "pyoxynet": pyoxynet, "cancel": cancelled,
            "definitions": {
                "end_to_end_s": "just before submit() to wait() returning",
                "first_result_s": "just before submit() to the first subscriber notice "
                                  "with new_files",
                "peak_mib": "peak over 50 ms samples of the RSS sum of this process and "
                            "all its descendants",
                "overhead": "window = first task compute start to last task compute end; "
                            "W = threads x window; T = sum of task compute time; A = sum of "
                            "per-file elapsed_s; idle_pct = (W-T)/W; in_task_pct = (T-A)/T; "
                            "overhead_pct = (W-A)/W",
            }}, indent=2, default=str))
        print(f"figures written to {args.json}")


if __name__ == "__main__":
    sys.exit(main())
