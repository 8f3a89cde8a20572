"""The SQLite job store without dask: jobs, commits, reuse, status, upkeep, concurrency."""

from __future__ import annotations

import multiprocessing
import os
import socket
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import psutil
import pytest

import cpet_nb
from cpet_nb.batch.store import FileEntry, Outcome, Store, owner_id
from cpet_nb.result import RESULT_COLUMNS, results_table


def _entries(paths):
    return [FileEntry(i, str(p), str(p), f"sha-{p.name}", p.stat().st_size)
            for i, p in enumerate(paths)]


def _job(store, entries, key="key-1"):
    job_id = store.new_job_id()
    store.create_job(job_id, entries, settings={"a": 1}, analysis_key=key,
                     model_version="m@1", inputs={"given": []})
    return job_id


def _committed(store, paths, results, key="key-1"):
    """A job of ``paths`` whose ``results`` are stored, in order."""
    entries = _entries(paths)
    job = _job(store, entries, key)
    store.commit(job, [_outcome(e, r) for e, r in zip(entries, results, strict=True)])
    return job


def _outcome(entry, result):
    return Outcome(entry.idx, result.renamed(entry.name), "worker-1", 0.0, 0.1)


@pytest.fixture(scope="module")
def analysed(bundled_tests):
    paths = bundled_tests[:4]
    return paths, [cpet_nb.analyze(p) for p in paths]


def test_commit_results_and_curves_round_trip(tmp_path, analysed):
    paths, results = analysed
    store = Store(tmp_path / "s.sqlite")
    entries = _entries(paths)
    job = _job(store, entries)
    assert store.results(job).empty and len(store.pending(job)) == 4
    stored = store.commit(job, [_outcome(e, r) for e, r in zip(entries[2:], results[2:],
                                                                  strict=True)])
    assert stored == [2, 3]
    assert [e.idx for e in store.pending(job)] == [0, 1]
    store.commit(job, [_outcome(e, r) for e, r in zip(entries[:2], results[:2], strict=True)])
    pd.testing.assert_frame_equal(store.results(job), results_table(results))
    curves = store.curves(job, 1)
    assert curves.output_order == results[1].curves.output_order
    assert (curves.p_heavy == results[1].curves.p_heavy).all()
    assert store.counts(job)["done"] == 4 and store.counts(job)["ok"] == 4
    findings = store.files(job)["findings"]
    assert findings.str.startswith("[").all()


def test_results_of_some_files_only(tmp_path, analysed):
    """What a display reads after a notice: the rows of the files it names, in order."""
    paths, results = analysed
    store = Store(tmp_path / "s.sqlite")
    job = _committed(store, paths, results)
    some = store.results(job, files=[str(paths[3]), str(paths[1]), "not-in-the-job.csv"])
    pd.testing.assert_frame_equal(some, results_table([results[1], results[3]]))
    assert store.results(job, files=[]).empty
    assert list(store.results(job, files=[]).columns) == list(RESULT_COLUMNS)


def test_a_result_is_never_written_twice(tmp_path, analysed):
    paths, results = analysed
    store = Store(tmp_path / "s.sqlite")
    entries = _entries(paths[:1])
    job = _job(store, entries)
    assert store.commit(job, [_outcome(entries[0], results[0])]) == [0]
    assert store.commit(job, [_outcome(entries[0], results[0])]) == []
    count = store.connection().execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert count == 1


def test_reuse_needs_the_same_content_and_analysis_key(tmp_path, analysed):
    paths, results = analysed
    store = Store(tmp_path / "s.sqlite")
    first = _job(store, _entries(paths))
    store.commit(first, [_outcome(e, r) for e, r in zip(_entries(paths), results,
                                                        strict=True)])
    renamed = [FileEntry(e.idx, f"copy-{e.idx}", e.path, results[e.idx].metadata.source_sha256,
                         e.size_bytes) for e in _entries(paths)]
    same = _job(store, renamed)
    assert store.reuse_results(same) == 4
    table = store.results(same)
    assert table["file"].tolist() == [f"copy-{i}" for i in range(4)]
    pd.testing.assert_frame_equal(table.drop(columns="file"),
                                  results_table(results).drop(columns="file"))
    assert store.counts(same)["reused"] == 4 and not store.pending(same)
    assert store.curves(same, 0) is not None
    other = _job(store, renamed, key="key-2")
    assert store.reuse_results(other) == 0


def test_interrupted_cancelled_and_claimed_jobs(tmp_path, analysed):
    paths, _ = analysed
    store = Store(tmp_path / "s.sqlite")
    job = _job(store, _entries(paths))
    assert store.job(job)["status"] == "running"  # this process owns it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = store.job(job)["owner"].rpartition(":")[0]
    with store.transaction() as db:
        db.execute("UPDATE jobs SET owner = ? WHERE job_id = ?", (f"{host}:{dead}", job))
    assert store.job(job)["status"] == "interrupted"
    assert store.jobs().loc[0, "status"] == "interrupted"
    store.claim_job(job)
    assert store.job(job)["status"] == "running"
    store.finish_job(job, "cancelled")
    assert store.counts(job)["cancelled"] == 4 and not store.pending(job)
    store.claim_job(job)  # a resume makes cancelled files pending again
    assert len(store.pending(job)) == 4
    with store.transaction() as db:  # an owner on another host: its death cannot be seen
        db.execute("UPDATE jobs SET status = 'running', owner = 'elsewhere:1' "
                   "WHERE job_id = ?", (job,))
    assert store.job(job)["status"] == "running"
    with pytest.raises(RuntimeError, match="resume with force"):
        store.claim_job(job)
    store.claim_job(job, force=True)
    assert store.job(job)["owner"] != "elsewhere:1"
    with pytest.raises(KeyError, match="no job 'nope'"):
        store.job("nope")


#: A process that makes itself the owner of a job, says so, and waits for its stdin to close.
CLAIMER = ("import sys; from cpet_nb.batch.store import Store; "
           "Store(sys.argv[1]).claim_job(sys.argv[2]); print('claimed', flush=True); "
           "sys.stdin.read()")


def _claimed_by_child(store, job, stdin=subprocess.PIPE):
    """A real child process that claimed ``job``; it exits at once if ``stdin`` is closed."""
    store.finish_job(job, "cancelled")  # claimable by another process
    child = subprocess.Popen([sys.executable, "-c", CLAIMER, str(store.path), job],
                             stdin=stdin, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "claimed\n"
    return child


@pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid to leave a zombie")
def test_an_owner_that_exited_but_was_not_reaped_is_gone(tmp_path, analysed):
    store = Store(tmp_path / "s.sqlite")
    job = _job(store, _entries(analysed[0]))
    child = _claimed_by_child(store, job, stdin=subprocess.DEVNULL)
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
        assert store.job(job)["owner"].endswith(f":{child.pid}")
        assert store.job(job)["status"] == "interrupted"
        assert store.jobs().loc[0, "status"] == "interrupted"
        store.claim_job(job)  # the resume right after a killed client
        assert store.job(job)["owner"] == owner_id()
    finally:
        child.wait()


def test_a_live_owner_is_refused_and_a_reused_pid_is_not_the_owner(tmp_path, analysed):
    store = Store(tmp_path / "s.sqlite")
    job = _job(store, _entries(analysed[0]))
    child = _claimed_by_child(store, job)
    try:
        assert store.job(job)["status"] == "running"
        with pytest.raises(RuntimeError, match=f"being run by process .*:{child.pid}"):
            store.claim_job(job)
        with store.transaction() as db:  # the PID now belongs to a process started later
            db.execute("UPDATE jobs SET owner_started = owner_started - 3600 WHERE job_id = ?",
                       (job,))
        assert store.job(job)["status"] == "interrupted"
        store.claim_job(job)
        assert store.job(job)["owner_started"] == pytest.approx(psutil.Process().create_time())
    finally:
        child.stdin.close()
        child.wait()


def test_a_store_of_the_previous_version_opens_and_its_jobs_resume(tmp_path, analysed):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    live, dead = _job(store, _entries(analysed[0])), _job(store, _entries(analysed[0]))
    child = _claimed_by_child(store, live)
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    host = socket.gethostname()
    with store.transaction() as db:
        db.execute("UPDATE jobs SET owner = ? WHERE job_id = ?", (f"{host}:{gone}", dead))
    store.close()
    db = sqlite3.connect(path)  # the jobs table as cpet_nb wrote it before start times
    db.execute("ALTER TABLE jobs DROP COLUMN owner_started")
    db.commit()
    db.close()
    try:
        store = Store(path)
        assert store.job(live)["owner_started"] is None
        assert store.job(live)["status"] == "running"  # alive: no start time to compare
        with pytest.raises(RuntimeError, match="being run by process"):
            store.claim_job(live)
        assert store.job(dead)["status"] == "interrupted"
        store.claim_job(dead)
        assert store.job(dead)["status"] == "running" and store.job(dead)["owner_started"]
    finally:
        child.stdin.close()
        child.wait()


def test_new_result_columns_are_added_to_an_old_store(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE results DROP COLUMN vo2peak_ml_kg_min")
    db.commit()
    db.close()
    store = Store(path)
    columns = {r[1] for r in store.connection().execute("PRAGMA table_info(results)")}
    assert set(RESULT_COLUMNS) <= columns


def test_a_store_made_before_job_users_gets_the_column_and_lists_by_user(tmp_path, analysed):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    old_job = _job(store, _entries(analysed[0][:1]))
    store.close()
    db = sqlite3.connect(path)  # the store as cpet_nb made it before jobs had a user
    db.execute("ALTER TABLE jobs DROP COLUMN user")
    db.commit()
    db.close()
    store = Store(path)
    job = store.new_job_id()
    store.create_job(job, _entries(analysed[0][1:2]), settings={}, analysis_key="k",
                     model_version="m@1", inputs={}, user="ann")
    assert store.job(job)["user"] == "ann" and store.job(old_job)["user"] is None
    assert store.jobs("ann")["job_id"].tolist() == [job]
    assert store.jobs("bob").empty
    assert set(store.jobs()["job_id"]) == {job, old_job}
    assert cpet_nb.jobs(store, user="ann")["user"].tolist() == ["ann"]


@pytest.fixture(scope="module")
def several_models(bundled_tests):
    paths = bundled_tests[:2]
    return paths, [cpet_nb.analyze(p, models=["cnn", "tcn", "murias_lab"]) for p in paths]


def test_every_model_s_curves_are_stored_and_reused(tmp_path, several_models):
    paths, results = several_models
    store = Store(tmp_path / "s.sqlite")
    job = _committed(store, paths, results)
    pd.testing.assert_frame_equal(store.results(job), results_table(results))
    assert store.results(job)["vt1_murias_lab_time_s"].notna().all()
    for name in ("tcn", "murias_lab", "ensemble"):
        got, expected = store.curves(job, 1, name), results[1].models[name].curves
        assert got.output_order == expected.output_order
        np.testing.assert_array_equal(got.p_severe, expected.p_severe)
    assert (store.curves(job, 1).p_heavy == results[1].curves.p_heavy).all()  # the CNN's
    assert store.curves(job, 1, "ais") is None  # not chosen
    copies = [FileEntry(e.idx, f"copy-{e.idx}", e.path, results[e.idx].metadata.source_sha256,
                        e.size_bytes) for e in _entries(paths)]
    again = _job(store, copies)
    assert store.reuse_results(again) == 2
    np.testing.assert_array_equal(store.curves(again, "copy-0", "tcn").p_heavy,
                                  results[0].models["tcn"].curves.p_heavy)


def test_a_store_made_before_other_models_opens_and_reads(tmp_path, analysed):
    """The store as cpet_nb wrote it with the CNN alone: no model_curves table and no
    per-model columns. Opening it adds both; its results and curves read as before."""
    paths, results = analysed
    path = tmp_path / "old.sqlite"
    store = Store(path)
    job = _committed(store, paths, results)
    store.close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE model_curves")
    new = [c for c in RESULT_COLUMNS if c.startswith(("vt1_", "vt2_"))
           and c.split("_")[1] in ("ais", "nswis", "tcn", "lstmgru", "murias", "ensemble")]
    assert len(new) == 24
    for column in new:
        db.execute(f'ALTER TABLE results DROP COLUMN "{column}"')
    db.commit()
    db.close()
    reopened = Store(path)
    pd.testing.assert_frame_equal(reopened.results(job), results_table(results))
    assert (reopened.curves(job, 2).p_heavy == results[2].curves.p_heavy).all()
    assert reopened.curves(job, 2, "ais") is None
    later = _job(reopened, _entries(paths[:1]), key="key-2")
    several = cpet_nb.analyze(paths[0], models=["cnn", "ais"])
    reopened.commit(later, [_outcome(_entries(paths[:1])[0], several)])
    assert reopened.curves(later, 0, "ais") is not None


def test_backup_verifies_and_keeps_the_newest(tmp_path, analysed):
    store = Store(tmp_path / "s.sqlite")
    _job(store, _entries(analysed[0]))
    made = [store.backup(keep=2) for _ in range(3)]
    kept = sorted((tmp_path / "s.sqlite.backups").iterdir())
    assert kept == made[1:]
    assert Store(made[-1]).jobs().shape[0] == 1
    assert Store(made[-1]).integrity_check() == "ok"


def test_cleanup_removes_expired_jobs_and_their_uploads(tmp_path, analysed):
    store = Store(tmp_path / "s.sqlite")
    old = _job(store, _entries(analysed[0]))
    store.finish_job(old, "done")
    with store.transaction() as db:
        db.execute("UPDATE jobs SET finished_at = '2020-01-01T00:00:00+00:00'")
    recent = _job(store, _entries(analysed[0]))
    store.upload_dir(old).mkdir(parents=True)
    store.upload_dir(recent).mkdir(parents=True)
    assert store.cleanup(older_than_days=30) == [old]
    assert store.jobs()["job_id"].tolist() == [recent]
    assert not store.upload_dir(old).exists() and store.upload_dir(recent).exists()
    assert store.connection().execute(
        "SELECT COUNT(*) FROM files WHERE job_id = ?", (old,)).fetchone()[0] == 0


def _writer(path, worker, analysed_row):
    store = Store(path)
    for n in range(20):
        entries = [FileEntry(0, f"w{worker}-{n}", "x", f"h{worker}-{n}", 1)]
        job = store.new_job_id() + f"-{worker}-{n}"
        store.create_job(job, entries, settings={}, analysis_key="k", model_version="m",
                         inputs={})
        store.commit(job, [Outcome(0, analysed_row.renamed(entries[0].name), "w", 0, 0)])
        store.finish_job(job, "done")


def test_two_processes_writing_at_once_keep_the_store_sound(tmp_path, analysed):
    path = tmp_path / "s.sqlite"
    Store(path)
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_writer, args=(path, w, analysed[1][0])) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = Store(path)
    assert store.integrity_check() == "ok"
    assert len(store.jobs()) == 40 and (store.jobs()["n_done"] == 1).all()
