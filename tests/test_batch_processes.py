"""Batches across real processes: a killed client and a resume, two clients on one store,
and an external ``dask scheduler`` / ``dask worker`` reached by address."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import distinct_copies

import cpet_nb
from cpet_nb.batch import resume
from cpet_nb.batch.store import Store
from cpet_nb.result import results_table

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "cpet_nb.cli"]


def _wait_for(condition, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _stored(store_path: Path) -> int:
    if not store_path.exists():
        return 0
    try:
        return Store(store_path).connection().execute(
            "SELECT COUNT(*) FROM results").fetchone()[0]
    except Exception:  # noqa: BLE001 - the store is being created
        return 0


def test_killed_client_then_resume_runs_only_the_missing_files(dask_client, bundled_tests,
                                                                tmp_path):
    paths = distinct_copies(bundled_tests, tmp_path / "tests", 60)
    store_path = tmp_path / "jobs.sqlite"
    client = subprocess.Popen(
        [*CLI, "run", str(tmp_path / "tests"), "--store", str(store_path), "--workers", "2",
         "--partition-size", "2", "-q"], start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _stored(store_path) >= 2, 120, "the first stored results")
    finally:
        os.killpg(client.pid, signal.SIGKILL)  # the client and its local cluster
        client.wait()
    store = Store(store_path)
    job = store.jobs().iloc[0]
    assert job["status"] == "interrupted"
    before = store.files(job["job_id"]).set_index("idx")
    done_before = before[before["state"] == "done"]
    assert 0 < len(done_before) < 60

    batch = resume(job["job_id"], store_path, client=dask_client)
    assert batch.wait().state == "done"
    after = store.files(job["job_id"]).set_index("idx")
    # what was stored before the crash was not analysed again
    pd.testing.assert_frame_equal(after.loc[done_before.index], done_before)
    expected = results_table([cpet_nb.analyze(p).renamed(str(p)) for p in paths])
    pd.testing.assert_frame_equal(batch.results(), expected)


def test_two_clients_run_batches_on_one_store_at_once(bundled_tests, tmp_path):
    store_path = tmp_path / "jobs.sqlite"
    sets = [distinct_copies(bundled_tests, tmp_path / f"set{k}", 30, start=30 * k) for k in (0, 1)]
    runs = [subprocess.Popen([*CLI, "run", str(tmp_path / f"set{k}"), "--store",
                              str(store_path), "--workers", "1", "--partition-size", "3", "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for k in (0, 1)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    store = Store(store_path)
    assert store.integrity_check() == "ok"
    listed = store.jobs()
    assert sorted(listed["status"]) == ["done", "done"]
    assert sorted(listed["n_done"]) == [30, 30]
    names = set()
    for job_id in listed["job_id"]:
        names |= set(store.results(job_id)["file"])
    assert names == {str(p) for p in sets[0] + sets[1]}


@pytest.fixture()
def external_scheduler(tmp_path):
    """``dask scheduler`` and one ``dask worker`` on 127.0.0.1, as separate processes."""
    scheduler_file = tmp_path / "scheduler.json"
    common = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
         "--no-dashboard", "--scheduler-file", str(scheduler_file)], **common)
    worker = subprocess.Popen(
        [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(scheduler_file),
         "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1", "--no-dashboard"],
        **common)
    try:
        _wait_for(scheduler_file.exists, 60, "the scheduler file")
        yield json.loads(scheduler_file.read_text())["address"]
    finally:
        for process in (worker, scheduler):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


def test_batch_through_an_external_scheduler(external_scheduler, bundled_tests, tmp_path):
    output = tmp_path / "results.parquet"
    run = subprocess.run(
        [*CLI, "run", *map(str, bundled_tests[:6]), "--store", str(tmp_path / "jobs.sqlite"),
         "--scheduler", external_scheduler, "-o", str(output), "-q"],
        capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "6 input(s), job done" in run.stderr
    table = pd.read_parquet(output)
    expected = results_table([cpet_nb.analyze(p) for p in bundled_tests[:6]])
    pd.testing.assert_frame_equal(table, expected, check_dtype=False)  # parquet: str dtype
    files = Store(tmp_path / "jobs.sqlite").files(
        Store(tmp_path / "jobs.sqlite").jobs()["job_id"][0])
    assert files["worker"].str.startswith("tcp://127.0.0.1:").all()
