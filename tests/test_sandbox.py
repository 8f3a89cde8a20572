"""The analysis child process: per-file time and memory limits, crash isolation."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import misbehaving_file
from synthetic import ramp_test, write_canonical_csv

import cpet_nb
from cpet_nb.batch.sandbox import NICENESS, Prestarted, Sandbox, can_adopt
from cpet_nb.model.runtime import THREADS_ENV
from cpet_nb.result import results_table

needs_adoption = pytest.mark.skipif(not can_adopt(), reason="no Unix sockets or pidfds")


@pytest.fixture(scope="module", params=["own child", pytest.param("prestarted child",
                                                                  marks=needs_adoption)])
def sandbox(misbehaving_plugin, request):
    """A sandbox with a child of its own, or one that adopted a prestarted child (the
    embedded cluster's workers): both behave the same."""
    prestarted = Prestarted(2) if request.param == "prestarted child" else None
    with Sandbox(prestarted.addresses[1:] if prestarted else ()) as box:  # a forked copy
        box.analyze(cpet_nb.datasets.pyoxynet_tests()[0], "warm-up")
        assert prestarted is None or _parent(box.pid) != os.getpid()
        yield box
    if prestarted is not None:
        prestarted.close()


def test_result_equals_in_process_analysis(sandbox, bundled_tests):
    path = bundled_tests[3]
    boxed = sandbox.analyze(path, "label-3")
    local = cpet_nb.analyze(path).renamed("label-3")
    assert boxed.file == "label-3"
    assert results_table([boxed]).equals(results_table([local]))
    assert boxed.curves is not None and len(boxed.curves) == len(local.curves)


@pytest.mark.parametrize(("kind", "code", "limits"), [
    ("hang", "file-timeout", {"timeout_s": 1.0}),
    ("explode", "file-memory-limit", {"memory_mb": 256}),
    ("crash", "analysis-crashed", {}),
])
def test_misbehaving_file_becomes_a_finding_and_the_next_file_runs(
        sandbox, bundled_tests, tmp_path, kind, code, limits):
    sandbox.start()  # a child is running (its model may still be loading: not counted)
    before = sandbox.pid
    result = sandbox.analyze(misbehaving_file(tmp_path, kind), f"{kind}.txt", **limits)
    assert result.status == "error"
    assert [f.code for f in result.findings] == [code]
    assert result.findings[0].file == f"{kind}.txt"
    after = sandbox.analyze(bundled_tests[1], "next")
    assert after.status == "ok"
    assert sandbox.pid != before  # the child was replaced


def test_exception_in_analysis_is_an_internal_error_finding(sandbox, tmp_path):
    path = tmp_path / "odd.txt"
    path.write_text("#cpet-nb-test: sulk\n")
    result = sandbox.analyze(path, "odd.txt")
    assert [f.code for f in result.findings] == ["internal-error"]
    assert "ValueError" in result.findings[0].message


def test_a_child_that_cannot_start_says_so(monkeypatch, bundled_tests):
    monkeypatch.setenv("CPET_NB_TFLITE_RUNTIME", "no-such-runtime")  # the child inherits it
    with Sandbox() as box:
        result = box.analyze(bundled_tests[0], "first")
    assert [f.code for f in result.findings] == ["analysis-crashed"]
    assert "could not start" in result.findings[0].message


def test_a_file_stopped_at_the_memory_limit_does_not_poison_the_next_files(
        sandbox, bundled_tests, tmp_path):
    long_test = tmp_path / "long.csv"
    # a 4 h test of 48,000 rows (6.5 MB): reading it alone needs more than the limit below,
    # however much free memory earlier files left in the child's heap
    write_canonical_csv(ramp_test(duration_s=14400, vt1_s=7200, vt2_s=11200, breath_s=0.3),
                        long_test)
    good = bundled_tests[5:8]
    expected = results_table([cpet_nb.analyze(p).renamed(f"good-{i}")
                              for i, p in enumerate(good)])
    sandbox.analyze(good[0], "warm-up")  # the child has its model and its buffers
    stopped = sandbox.analyze(long_test, "long.csv", memory_mb=5)
    boxed = results_table([sandbox.analyze(p, f"good-{i}") for i, p in enumerate(good)])
    pd.testing.assert_frame_equal(boxed, expected)
    assert [f.code for f in stopped.findings] == ["file-memory-limit"]


def test_the_child_never_loads_pyarrow(sandbox, bundled_tests):
    """pandas loads pyarrow (some 35 MiB) when it is installed; the child analyses without it
    and its results equal the in-process ones (test above)."""
    pytest.importorskip("pyarrow")
    sandbox.analyze(bundled_tests[0], "first")
    maps = Path(f"/proc/{sandbox.pid}/maps")
    if not maps.exists():
        pytest.skip("no /proc on this system")
    assert "libarrow" not in maps.read_text()


def test_the_child_runs_at_a_lower_priority(sandbox, bundled_tests):
    """Analysis is background work: a Jupyter server, kernel or client on the same cores
    answers first (bench_server: status latency under load)."""
    if not hasattr(os, "getpriority"):
        pytest.skip("no process priorities on this system")
    sandbox.analyze(bundled_tests[0], "first")
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert os.getpriority(os.PRIO_PROCESS, sandbox.pid) == min(19, mine + NICENESS)


def test_the_child_runs_the_model_on_one_thread(sandbox, bundled_tests):
    """The analysis processes run one per core already: each interpreter gets one thread
    (a process of its own would get one per CPU it may use)."""
    sandbox.analyze(bundled_tests[0], "first")
    environ = Path(f"/proc/{sandbox.pid}/environ")
    if not environ.exists():
        pytest.skip("no /proc on this system")
    variables = environ.read_bytes().split(b"\0")
    assert f"{THREADS_ENV}=1".encode() in variables
    # as dask's nannies set for their workers, whoever started the child
    assert b"OPENBLAS_NUM_THREADS=1" in variables and b"OMP_NUM_THREADS=1" in variables


@needs_adoption
def test_the_prestarted_root_keeps_child_exit_codes_and_reaps_its_copies(bundled_tests):
    """The process that forked the copies does not ignore SIGCHLD (a subprocess it started
    would get exit code 0 whatever happened): it reaps its copies itself."""
    prestarted = Prestarted(2)
    try:
        with Sandbox(prestarted.addresses[:1]) as root, \
                Sandbox(prestarted.addresses[1:]) as copy:
            root.analyze(bundled_tests[0], "a")
            copy.analyze(bundled_tests[0], "b")
            assert root.pid == prestarted._process.pid and _parent(copy.pid) == root.pid
            status = Path(f"/proc/{root.pid}/status").read_text()
            ignored = int(next(line.split()[1] for line in status.splitlines()
                               if line.startswith("SigIgn:")), 16)
            assert not ignored & (1 << (signal.SIGCHLD - 1))
            copy_pid = copy.pid
        deadline = time.monotonic() + 10
        while copy_pid in _pids() and time.monotonic() < deadline:  # a zombie stays listed
            time.sleep(0.05)
        assert copy_pid not in _pids()
    finally:
        prestarted.close()


@needs_adoption
def test_prestarted_children_are_adopted_by_one_sandbox_each(bundled_tests):
    """One process imports cpet_nb for all of them (the others are its forks); a sandbox
    that finds every one taken starts its own."""
    prestarted = Prestarted(2)
    first = prestarted._process.pid
    try:
        with Sandbox(prestarted.addresses) as a, Sandbox(prestarted.addresses) as b, \
                Sandbox(prestarted.addresses) as c:
            results = [box.analyze(bundled_tests[i], f"f{i}") for i, box in enumerate((a, b, c))]
            assert [r.status for r in results] == ["ok"] * 3
            pids = [box.pid for box in (a, b, c)]
            parents = sorted(_parent(pid) for pid in pids)
            assert len(set(pids)) == 3 and first in pids
            assert parents == sorted([os.getpid(), first, os.getpid()])  # a fork, its own
            assert all(box.analyze(bundled_tests[3], "again").status == "ok" for box in (a, b, c))
        for pid in pids:  # stopped with their sandboxes
            _wait_gone(pid)
    finally:
        prestarted.close()


@needs_adoption
def test_prestarted_children_nobody_adopts_end_with_their_parent(tmp_path):
    """A cluster whose workers never came must not leave analysis processes behind."""
    script = ("import time; from cpet_nb.batch.sandbox import Prestarted; "
              "p = Prestarted(3); time.sleep(5); print(p._process.pid)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path), TMPDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=env)
    first = int(out.stdout)
    copies = [pid for pid in _pids() if _parent(pid) == first]  # forked by now, or never
    for pid in [first, *copies]:
        _wait_gone(pid)
    assert not list(tmp_path.glob("cpet_nb-*"))  # sockets and their folder


def _parent(pid: int) -> int:
    """The parent process id of ``pid`` (Linux ``/proc``); -1 once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # exited since it was listed
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _wait_gone(pid: int) -> None:
    """Wait until ``pid`` has exited (a child of another parent: its pidfd says so)."""
    import select

    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([pidfd], [], [], 120)[0], f"process {pid} still running"
    finally:
        os.close(pidfd)


def test_a_worker_importing_the_engine_does_not_load_scipy():
    """A dask worker imports cpet_nb (its tasks and plugin) but analyses nothing itself:
    ``scipy.linalg`` (the model's smoothing) is the child's, on first use."""
    script = "import sys, cpet_nb.batch.engine; print('scipy.linalg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert out.stdout.split() == ["False"]


@needs_adoption
def test_prestarting_where_no_socket_fits_fails_cleanly(tmp_path, monkeypatch):
    """A temporary folder too deep for a Unix socket's path: nothing is left running or on
    disk (the engine then lets its workers start their own children)."""
    import tempfile

    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with pytest.raises(OSError):
        Prestarted(2)
    assert list(deep.iterdir()) == []
