"""Batches on a real local dask cluster (worker processes): results, streaming, resume,
reuse, uploads, per-file limits, cancel, a killed worker, and the byte-shipping path."""

from __future__ import annotations

import io
import os
import signal
import threading
import zipfile

import pandas as pd
import pytest
from conftest import distinct_copies, misbehaving_file, without_hanging

import cpet_nb
from cpet_nb.batch import NoCPETFiles, Upload, jobs, resume, submit
from cpet_nb.batch.sandbox import can_adopt
from cpet_nb.batch.store import Store
from cpet_nb.result import RESULT_COLUMNS, results_table

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference_table(bundled_tests) -> pd.DataFrame:
    """In-process results of the first 30 bundled tests (what a batch must reproduce)."""
    return results_table([cpet_nb.analyze(p) for p in bundled_tests[:30]])


def test_batch_results_equal_the_analyze_table(dask_client, bundled_tests, reference_table,
                                               tmp_path):
    paths = bundled_tests[:30]
    notices = []
    batch = submit(paths, tmp_path / "jobs.sqlite", client=dask_client, partition_size=4)
    batch.subscribe(notices.append)
    final = batch.wait()
    assert final.state == "done" and final.fraction_done == 1.0
    assert final.counts["done"] == 30 and final.counts["ok"] == 30
    pd.testing.assert_frame_equal(batch.results(), reference_table)
    assert list(batch.results().columns) == list(RESULT_COLUMNS)
    # streamed: several notices, each naming files already stored
    streamed = [n for n in notices if n.new_files]
    assert len(streamed) >= 2
    assert sorted(f for n in streamed for f in n.new_files) == sorted(map(str, paths))
    curves = batch.curves(str(paths[0]))
    assert len(curves) > 100 and curves.output_order == (
        cpet_nb.analyze(paths[0]).curves.output_order)
    files = batch.files()
    assert (files["state"] == "done").all() and files["worker"].str.startswith("tcp://").all()


def test_notice_comes_after_the_result_is_on_disk(dask_client, bundled_tests, tmp_path):
    seen = []
    store_path = tmp_path / "jobs.sqlite"
    batch = submit(bundled_tests[:8], store_path, client=dask_client, partition_size=2)

    def check(progress):
        if progress.new_files:  # a second connection sees them: committed, not pending
            stored = Store(store_path).results(batch.job_id)["file"].tolist()
            seen.append(set(progress.new_files) <= set(stored))

    batch.subscribe(check)
    batch.wait()
    assert seen and all(seen)


def test_bad_files_do_not_stop_the_batch(dask_client, bundled_tests, tmp_path,
                                         misbehaving_plugin):
    text = tmp_path / "notes.txt"
    text.write_text("not a CPET export\n")
    inputs = [bundled_tests[0], text, tmp_path / "missing.csv",
              misbehaving_file(tmp_path, "hang"), misbehaving_file(tmp_path, "explode"),
              misbehaving_file(tmp_path, "crash"), bundled_tests[1]]
    batch = submit(inputs, tmp_path / "jobs.sqlite", client=dask_client, partition_size=7,
                   file_timeout_s=2, file_memory_mb=300)
    assert batch.wait().state == "done"
    table = batch.results().set_index("file")
    assert table.loc[str(bundled_tests[0]), "status"] == "ok"
    assert table.loc[str(bundled_tests[1]), "status"] == "ok"
    codes = {name: table.loc[str(tmp_path / name), "findings"] for name in
             ("notes.txt", "missing.csv", "hang.txt", "explode.txt", "crash.txt")}
    assert "unsupported-format" in codes["notes.txt"]
    assert "file-not-found" in codes["missing.csv"]
    assert "file-timeout" in codes["hang.txt"]
    assert "file-memory-limit" in codes["explode.txt"]
    assert "analysis-crashed" in codes["crash.txt"]


def test_resume_and_later_jobs_reuse_stored_results(dask_client, bundled_tests, tmp_path):
    store = tmp_path / "jobs.sqlite"
    first = submit(bundled_tests[:6], store, client=dask_client)
    first.wait()
    again = resume(first.job_id, store, client=dask_client)
    assert again.wait().counts["done"] == 6  # nothing left to run: the same job, done
    second = submit(bundled_tests[:8], store, client=dask_client)
    status = second.wait()
    assert status.counts["reused"] == 6 and status.counts["done"] == 2
    pd.testing.assert_frame_equal(second.results().iloc[:6], first.results())
    other = submit(bundled_tests[:2], store, client=dask_client, vo2peak_window=20)
    assert other.wait().counts["reused"] == 0  # other settings: computed anew
    listed = jobs(store)
    assert len(listed) == 3 and set(listed["status"]) == {"done"}


def test_uploads_and_zip_uploads(dask_client, bundled_tests, tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in bundled_tests[2:4]:
            zf.write(path, f"lab/{path.name}")
        zf.writestr("lab/readme.txt", "notes")
    widget_value = {"name": f"../../{bundled_tests[0].name}",  # no way out of the job folder
                    "content": memoryview(bundled_tests[0].read_bytes()),
                    "type": "text/csv", "size": 1}
    uploads = [Upload.from_widget(widget_value), Upload("visit.zip", archive.getvalue())]
    store = tmp_path / "jobs.sqlite"
    batch = submit(uploads, store, client=dask_client)
    assert batch.wait().state == "done"
    table = batch.results()
    assert table["file"].tolist() == [bundled_tests[0].name,
                                      f"visit.zip/lab/{bundled_tests[2].name}",
                                      f"visit.zip/lab/{bundled_tests[3].name}",
                                      "visit.zip/lab/readme.txt"]
    assert table["status"].tolist() == ["ok", "ok", "ok", "skipped"]  # listed, with why
    assert "not-a-cpet-export" in table["findings"].iloc[3]
    files = batch.files()
    assert files["state"].tolist() == ["done", "done", "done", "skipped"]
    assert batch.status().counts["skipped"] == 1 and batch.status().fraction_done == 1.0
    # the job is done: its copies of the uploads are gone
    assert not Store(store).upload_dir(batch.job_id).exists()


def test_file_uploads_are_moved_into_the_job_and_jobs_know_their_user(dask_client,
                                                                     bundled_tests, tmp_path):
    staged = tmp_path / "incoming" / "0"
    staged.parent.mkdir()
    staged.write_bytes(bundled_tests[0].read_bytes())
    store = tmp_path / "jobs.sqlite"
    batch = submit([Upload.from_file("visit 1.csv", staged)], store, client=dask_client,
                   user="ann")
    assert not staged.exists()  # moved, not copied
    assert batch.wait().state == "done"
    assert batch.results()["file"].tolist() == ["visit 1.csv"]
    assert jobs(store, user="ann")["job_id"].tolist() == [batch.job_id]
    assert jobs(store, user="bob").empty
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "no tests")
    with pytest.raises(NoCPETFiles, match="no CPET files found"):
        submit([Upload("notes.zip", archive.getvalue())], store, client=dask_client)


def test_an_adaptive_embedded_cluster_grows_from_its_minimum():
    from cpet_nb.batch import engine

    engine.shutdown()
    try:
        client = engine.get_client(None, workers=2, adapt_minimum=0)
        assert client.scheduler_info()["workers"] == {}  # no idle workers held
        assert client.submit(sum, [1, 2], pure=False).result(timeout=120) == 3
        assert 1 <= len(client.scheduler_info()["workers"]) <= 2
    finally:
        engine.shutdown()


def test_the_embedded_cluster_s_workers_are_threads_each_with_its_own_analysis_process(
        bundled_tests, reference_table, tmp_path):
    """The embedded cluster's workers run in the caller's process (no process of their own
    to start, no result pickled on its way to the client), but each keeps its own analysis
    process; its closing logs no traceback (in-process streams close one after another)."""
    import logging

    import distributed

    from cpet_nb.batch import engine

    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    engine.shutdown()

    def loops() -> int:
        return sum(t.name == "IO loop" for t in threading.enumerate())

    def profiled(dask_worker) -> list[str]:
        return sorted(set(engine.PROFILER_CALLBACKS) & set(dask_worker.periodic_callbacks))

    before = loops()
    try:
        batch = submit(bundled_tests[:12], tmp_path / "jobs.sqlite", workers=2)
        batch.wait()
        pd.testing.assert_frame_equal(batch.results(), reference_table.iloc[:12])
        with pytest.raises(ValueError):  # the tasks made no default client in this process
            distributed.default_client()
        client = engine.get_client(None, workers=2)
        assert all(a.startswith("inproc://") for a in client.scheduler_info()["workers"])
        memory = list(client.run(engine.worker_memory).values())
        assert {m["pid"] for m in memory} == {os.getpid()}
        assert all(m["analysis_rss_bytes"] > 30 * 2**20 for m in memory)
        pids = client.run(lambda dask_worker: dask_worker.plugins[engine.PLUGIN_NAME]
                          .sandbox.pid).values()
        assert len(set(pids)) == 2 and os.getpid() not in pids
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) == 2:  # one worker per CPU: each analysis process kept on its own
            client.run(lambda dask_worker: dask_worker.plugins[engine.PLUGIN_NAME].sandbox
                       .analyze(bundled_tests[0], "pinned once its model is loaded"))
            assert sorted(sorted(os.sched_getaffinity(pid)) for pid in pids) == [
                [cpus[0]], [cpus[1]]]
        engine._local_cluster.scale(3)  # a worker added later (an adaptive cluster's) too
        client.wait_for_workers(3, timeout=60)
        assert list(client.run(profiled).values()) == [[], [], []]
        logging.getLogger("distributed").addHandler(handler)
    finally:
        engine.shutdown()
        logging.getLogger("distributed").removeHandler(handler)
    assert [r.getMessage() for r in records if r.exc_info] == []
    assert loops() == before  # the cluster's event loop ended with it


def test_analysis_processes_get_a_cpu_each_only_while_there_are_enough(monkeypatch):
    from cpet_nb.batch import engine

    class Recorded:
        def __init__(self, prestarted, cpu=None) -> None:
            self.cpu = cpu

        def start(self) -> None:
            pass

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {5, 2, 7})
    assert engine.analysis_cpus(3) == (2, 5, 7)
    assert engine.analysis_cpus(2) == ()  # fewer workers: the OS spreads them
    assert engine.analysis_cpus(4) == ()  # more workers than CPUs
    monkeypatch.setattr(engine, "Sandbox", Recorded)
    plugin = engine.SandboxPlugin(cpus=(2, 5))
    for name, cpu in ((0, 2), (1, 5), (2, None), ("tcp://w", None)):
        plugin.setup(type("Worker", (), {"name": name, "periodic_callbacks": {}})())
        assert plugin.sandbox.cpu == cpu


def test_the_embedded_cluster_has_a_dashboard_only_when_asked():
    """dask's dashboard imports Bokeh's server into the caller's process as the cluster
    starts (Settings.dashboard, off by default); the scheduler's HTTP server (health,
    metrics) runs either way, on a free port."""
    import urllib.error
    import urllib.request

    from cpet_nb.batch import engine

    def status_code(client, page: str) -> int:
        port = client.scheduler_info()["services"]["dashboard"]
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=30) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    engine.shutdown()
    try:
        for asked in (False, True):
            client = engine.get_client(None, workers=1, dashboard=asked)
            assert status_code(client, "health") == 200
            assert status_code(client, "status") == (200 if asked else 404)
            assert engine.dashboard_link(client).endswith("/status") is asked
            engine.shutdown()
    finally:
        engine.shutdown()


def test_a_cluster_of_the_user_s_own_keeps_its_workers_profiler():
    """Only the embedded cluster's workers have their profiler stopped (they only wait on
    their analysis processes); a cluster passed in is the user's, in-process or not."""
    from distributed import Client, LocalCluster

    from cpet_nb.batch import engine

    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        engine.get_client(client)
        callbacks = client.run(lambda dask_worker: set(dask_worker.periodic_callbacks))
        assert all(set(engine.PROFILER_CALLBACKS) <= names for names in callbacks.values())


@pytest.mark.skipif(not can_adopt(), reason="no Unix sockets or pidfds")
def test_the_embedded_cluster_s_workers_adopt_children_started_before_them():
    """A cold start waits for the workers or for their analysis processes, not for one after
    the other: the children start with the cluster and each worker adopts one."""
    from cpet_nb.batch import engine

    def sandbox_parent(dask_worker):
        sandbox = dask_worker.plugins[engine.PLUGIN_NAME].sandbox
        sandbox.analyze(cpet_nb.datasets.pyoxynet_tests()[0], "warm-up")
        with open(f"/proc/{sandbox.pid}/stat") as stat:
            return sandbox.pid, int(stat.read().rsplit(")", 1)[1].split()[1])

    engine.shutdown()
    try:
        client = engine.get_client(None, workers=2)
        first = engine._prestarted._process.pid
        children = client.run(sandbox_parent)
        assert sorted(parent for _, parent in children.values()) == sorted([os.getpid(), first])
        assert first in {pid for pid, _ in children.values()}
    finally:
        engine.shutdown()
    assert not os.path.exists(f"/proc/{first}")  # stopped with the cluster


def test_files_travel_as_bytes_when_workers_cannot_see_them(dask_client, bundled_tests,
                                                             reference_table, tmp_path):
    missing = tmp_path / "gone.csv"
    batch = submit([*bundled_tests[:5], missing], tmp_path / "jobs.sqlite", client=dask_client,
                   ship_files="bytes")
    batch.wait()
    got = batch.results()
    pd.testing.assert_frame_equal(got.iloc[:5], reference_table.iloc[:5])
    assert got.loc[5, "file"] == str(missing) and "file-not-found" in got.loc[5, "findings"]



@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
@pytest.mark.parametrize("ship", ["path", "bytes"])
def test_a_batch_never_opens_a_fifo_or_a_device(dask_client, bundled_tests, reference_table,
                                                tmp_path, ship):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    batch = without_hanging(submit, [fifo, "/dev/zero", bundled_tests[0]],
                            tmp_path / "jobs.sqlite", client=dask_client, ship_files=ship)
    assert without_hanging(batch.wait).state == "done"
    got = batch.results()
    pd.testing.assert_frame_equal(got.iloc[2:].reset_index(drop=True), reference_table.iloc[:1])
    assert got["status"].tolist()[:2] == ["error", "error"]
    if ship == "path":  # the workers see the paths (bytes: nothing was shipped, "not found")
        assert got.loc[0, "findings"] == ("error not-a-regular-file: a FIFO (named pipe), not "
                                          "a file: not opened")
        assert "a character device" in got.loc[1, "findings"]

def _running(paths, store, client):
    """A batch of small partitions, returned once its first result is stored."""
    batch = submit(paths, store, client=client, partition_size=3)
    first = threading.Event()
    batch.subscribe(lambda p: first.set() if p.new_files else None)
    assert first.wait(60)
    return batch


def test_cancel_stops_quickly_keeps_results_and_resume_finishes(dask_client, bundled_tests,
                                                                 tmp_path):
    paths = distinct_copies(bundled_tests, tmp_path / "many", 120)
    store = tmp_path / "jobs.sqlite"
    batch = _running(paths, store, dask_client)
    status = batch.cancel()  # how fast: benchmarks/bench_batch.py (no clocks in tests)
    assert status.state == "cancelled"
    kept = batch.results()
    assert 0 < len(kept) < 120 == status.n_files
    assert status.counts["cancelled"] == 120 - len(kept)
    resumed = resume(batch.job_id, store, client=dask_client)
    assert resumed.wait().state == "done"
    final = resumed.results()
    assert len(final) == 120 and final["file"].tolist() == [str(p) for p in paths]
    pd.testing.assert_frame_equal(final.set_index("file").loc[kept["file"]],
                                  kept.set_index("file"))


def test_killed_worker_loses_nothing_and_writes_nothing_twice(dask_client, bundled_tests,
                                                               bundled_results, tmp_path):
    paths = distinct_copies(bundled_tests, tmp_path / "many", 90)
    store = tmp_path / "jobs.sqlite"
    batch = _running(paths, store, dask_client)
    victim = next(iter(dask_client.run(os.getpid).values()))
    os.kill(victim, signal.SIGKILL)
    status = batch.wait(120)
    assert status.state == "done" and status.counts["done"] == 90
    table = batch.results()
    assert table["file"].tolist() == [str(p) for p in paths]  # each once, in order
    expected = [bundled_results[bundled_tests[i].name].status for i in range(90)]
    assert table["status"].tolist() == expected
    rows = Store(store).connection().execute(
        "SELECT COUNT(*), COUNT(DISTINCT idx) FROM results WHERE job_id = ?",
        (batch.job_id,)).fetchone()
    assert rows == (90, 90)
    dask_client.wait_for_workers(2, timeout=60)  # the nanny restarted it


def test_participants_table_travels_with_the_job(dask_client, tmp_path):
    from samples import sample

    folder = sample("zan/ramptests")
    tests = [folder / f"{n:02d}" for n in (1, 2, 3)]
    store = tmp_path / "jobs.sqlite"
    batch = submit(tests, store, client=dask_client, participants=folder / "participants.csv")
    assert batch.wait().state == "done"
    table = batch.results()
    assert table["weight_kg"].tolist() == [60.1, 60.7, 63.9]  # the table's, not the files'
    assert (table["vo2peak_ml_kg_min"] * table["weight_kg"]).round(6).tolist() == \
        table["vo2peak_ml_min"].round(6).tolist()
    # same files without the table: a different analysis, nothing reused
    plain = submit(tests, store, client=dask_client)
    assert plain.wait().counts["reused"] == 0


def test_a_bad_participants_table_stops_the_submit_before_any_work(dask_client, tmp_path,
                                                                   bundled_tests):
    bad = tmp_path / "participants.csv"
    bad.write_text("colour,shade\nred,dark\n")
    store = tmp_path / "jobs.sqlite"
    with pytest.raises(ValueError, match="participants table refused"):
        submit(bundled_tests[:2], store, client=dask_client, participants=bad)
    assert jobs(store).empty


def _raise(message):
    raise RuntimeError(message)


def test_a_failed_partition_is_split_and_a_failed_file_becomes_a_finding(tmp_path):
    from distributed import Client, LocalCluster

    from cpet_nb.batch.api import Batch
    from cpet_nb.batch.driver import Driver, Partition
    from cpet_nb.batch.store import FileEntry
    from cpet_nb.settings import Settings

    store = Store(tmp_path / "jobs.sqlite")
    entries = [FileEntry(i, f"f{i}.csv", str(tmp_path / f"f{i}.csv"), "", 0) for i in (0, 1)]
    # a real failed dask future, from a cluster of its own (in-process: a failed task is all
    # this needs, so it does not depend on the worker processes the other tests use)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            Client(cluster, set_as_default=False) as client:
        driver = Driver(Batch(store, "job"), client, Settings())
        failed = client.submit(_raise, "worker exploded", pure=False)
        assert "worker exploded" in str(failed.exception(timeout=120))  # done, and failed
        queue = []
        assert driver._outcomes(failed, Partition(entries), queue) == []
        assert [p.entries for p in queue] == [[entries[0]], [entries[1]]]  # one by one
        [outcome] = driver._outcomes(failed, Partition([entries[1]]), queue)
    assert outcome.idx == 1 and outcome.result.status == "error"
    assert outcome.result.findings[0].code == "worker-lost"
    assert "worker exploded" in outcome.result.findings[0].message
