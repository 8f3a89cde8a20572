"""The analysis child process: per-file time and memory limits, crash isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import misbehaving_file
from synthetic import ramp_test, write_canonical_csv

import cpet_nb
from cpet_nb.batch.sandbox import NICENESS, Sandbox
from cpet_nb.model.runtime import THREADS_ENV
from cpet_nb.result import results_table


@pytest.fixture(scope="module")
def sandbox(misbehaving_plugin):
    with Sandbox() as box:
        yield box


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
    frame = ramp_test()
    frame["t"] *= 20  # a 4 h test: analysing it needs more than the limit below
    write_canonical_csv(frame, long_test)
    good = bundled_tests[5:8]
    expected = results_table([cpet_nb.analyze(p).renamed(f"good-{i}")
                              for i, p in enumerate(good)])
    sandbox.analyze(good[0], "warm-up")  # the child's model is sized for the first good file
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
    assert f"{THREADS_ENV}=1".encode() in environ.read_bytes().split(b"\0")
