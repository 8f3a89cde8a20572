"""Reviewers' threshold overrides: stored as data, recomputed like automatic thresholds,
shown in the final columns of every export, kept through resume and reuse, audited."""

from __future__ import annotations

import hashlib
import math
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import cpet_nb
from cpet_nb.analysis import record_as_analysed
from cpet_nb.batch.api import Batch
from cpet_nb.batch.review import OverrideRefused, review_queue
from cpet_nb.batch.store import FileEntry, Outcome, Store
from cpet_nb.cli import main
from cpet_nb.io.exports import write_table
from cpet_nb.physiology.thresholds import vo2_at
from cpet_nb.report import job as report_job
from cpet_nb.report import sections

FINAL = [f"{vt}_{f}" for vt in ("vt1", "vt2")
         for f in ("final_time_s", "final_vo2_ml_min", "final_hr_bpm", "final_load_w")]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, bundled_tests):
    """Three real tests copied to a folder (a job reads its files from there again)."""
    folder = tmp_path_factory.mktemp("inputs")
    return [Path(shutil.copy(p, folder / p.name)) for p in bundled_tests[:3]]


@pytest.fixture(scope="module")
def analysed(inputs):
    return [cpet_nb.analyze(p) for p in inputs]


def _entries(paths):
    return [FileEntry(i, str(p), str(p), hashlib.sha256(p.read_bytes()).hexdigest(),
                      p.stat().st_size) for i, p in enumerate(paths)]


def _job(store, paths, results, *, key="key-1", commit=None):
    """A job as a batch stores it (no dask); ``commit``: indices to store (default all)."""
    entries = _entries(paths)
    job_id = store.new_job_id()
    store.create_job(job_id, entries, settings=cpet_nb.Settings().to_dict(), analysis_key=key,
                     model_version="m@1", inputs={"given": [str(p) for p in paths]})
    chosen = range(len(entries)) if commit is None else commit
    store.commit(job_id, [Outcome(i, results[i].renamed(entries[i].name), "w", 0.0, 0.1)
                          for i in chosen])
    return job_id


@pytest.fixture()
def batch(tmp_path, inputs, analysed):
    store = Store(tmp_path / "jobs.sqlite")
    return Batch(store, _job(store, inputs, analysed))


def _machine(store, job_id):
    """The results rows as stored, read with SQL (what overrides must never change)."""
    db = sqlite3.connect(store.path)
    try:
        return pd.read_sql_query("SELECT * FROM results WHERE job_id = ? ORDER BY idx", db,
                                 params=(job_id,))
    finally:
        db.close()


def test_vo2_at_a_time_is_what_a_classical_method_reports_at_its_breakpoint(analysed, inputs):
    record = record_as_analysed(inputs[0])
    method = analysed[0].classical["vt1_equivalents"]
    assert method.found
    assert vo2_at(record, method.time_s) == pytest.approx(method.vo2_ml_min, rel=1e-9)
    t = record.data["t"].to_numpy()
    assert math.isnan(vo2_at(record, t[0]))  # rest: no bins to interpolate, nothing made up
    assert math.isnan(vo2_at(record, t[-1] + 100))


def test_api_override_recomputes_at_the_grid_second_and_keeps_the_machine_values(batch,
                                                                                  inputs):
    before = _machine(batch.store, batch.job_id)
    name = str(inputs[0])
    consensus = batch.results().iloc[0]
    vt1, vt2 = batch.override(inputs[0].name, vt1_time_s=400.3, vt2_method="equivalents",
                              note="V-slope break is clear", reviewer="alice")
    record = cpet_nb.read(inputs[0]).data
    near = record[(record["t"] - 400.0).abs() <= 10]
    assert (vt1.time_s, vt1.source, vt1.reviewer, vt1.file) == (400.0, "expert", "alice", name)
    assert vt1.hr_bpm == pytest.approx(near["HR"].mean())  # ±10 s, as at the consensus
    assert near["VO2"].min() < vt1.vo2_ml_min < near["VO2"].max()
    assert (vt1.previous_time_s, vt1.previous_source) == (consensus["vt1_consensus_time_s"],
                                                          "consensus")
    assert (vt2.time_s, vt2.vo2_ml_min, vt2.source) == (
        consensus["vt2_equivalents_time_s"], consensus["vt2_equivalents_vo2_ml_min"],
        "equivalents")
    row = batch.results().iloc[0]
    assert (row["vt1_final_time_s"], row["vt1_source"], row["vt2_source"]) == (
        400.0, "expert", "equivalents")
    assert row["vt1_final_hr_bpm"] == vt1.hr_bpm
    assert row["vt1_consensus_time_s"] == consensus["vt1_consensus_time_s"]
    pd.testing.assert_frame_equal(_machine(batch.store, batch.job_id), before)
    others = batch.results().iloc[1:]
    assert (others["vt1_source"] == "consensus").all()
    assert (others["vt1_final_time_s"] == others["vt1_consensus_time_s"]).all()


def test_accepting_the_consensus_or_picking_the_model_is_recorded_with_its_source(batch,
                                                                                   inputs):
    row = batch.results().iloc[1]
    accepted, model = batch.override(1, vt1_method="consensus", vt2_method="model",
                                     reviewer="bob")
    assert accepted.source == "consensus" and model.source == "model"
    assert [accepted.time_s, accepted.vo2_ml_min, accepted.hr_bpm] == [
        row["vt1_consensus_time_s"], row["vt1_consensus_vo2_ml_min"],
        row["vt1_consensus_hr_bpm"]]
    assert (model.time_s, model.vo2_ml_min) == (row["vt2_time_s"], row["vt2_vo2_ml_min"])
    after = batch.results().iloc[1]
    assert (after["vt1_source"], after["vt2_source"]) == ("consensus", "model")
    assert after["vt2_final_time_s"] == row["vt2_time_s"]
    assert len(batch.overrides()) == 2  # an accepted consensus is a decision, audited


def test_bad_requests_store_nothing_and_say_why(batch, inputs, tmp_path):
    with pytest.raises(OverrideRefused) as refused:
        batch.override(inputs[0].name, vt1_time_s=1e6, vt2_method="bogus")
    assert [f.code for f in refused.value.findings] == ["override-time-outside-test",
                                                        "override-unknown-method"]
    assert "outside the test (its samples run from" in str(refused.value)
    with pytest.raises(OverrideRefused, match="override-unknown-file"):
        batch.override("nope.csv", vt1_time_s=300)
    with pytest.raises(OverrideRefused, match="override-bad-request: nothing to override"):
        batch.override(0)
    moved = tmp_path / "moved.csv"
    inputs[2].rename(moved)
    try:
        with pytest.raises(OverrideRefused, match="override-file-unavailable"):
            batch.override(2, vt1_time_s=300)
    finally:
        moved.rename(inputs[2])
    assert batch.overrides().empty
    assert (batch.results()["vt1_source"] == "consensus").all()


def test_two_reviewers_are_both_kept_and_the_audit_table_is_append_only(batch, inputs):
    first, = batch.override(0, vt1_time_s=380, reviewer="alice", note="first look")
    second, = batch.override(0, vt1_time_s=420, reviewer="bob", note="second opinion")
    audit = batch.overrides()
    assert audit["reviewer"].tolist() == ["alice", "bob"]
    assert audit["current"].tolist() == [False, True]
    assert audit["note"].tolist() == ["first look", "second opinion"]
    assert (second.previous_time_s, second.previous_source) == (380.0, "expert")
    assert audit["created_at"].str.endswith("+00:00").all()  # UTC
    assert batch.results().iloc[0]["vt1_final_time_s"] == 420.0
    db = batch.store.connection()
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("UPDATE overrides SET time_s = 1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.execute("DELETE FROM overrides")
    batch.store.delete_job(batch.job_id)  # deleting the job keeps the audit trail
    assert len(batch.store.overrides()) == 2


def test_overrides_survive_resume_reuse_and_every_export(tmp_path, inputs, analysed):
    store = Store(tmp_path / "jobs.sqlite")
    first = _job(store, inputs, analysed, commit=[0])  # interrupted after one file
    Batch(store, first).override(0, vt1_time_s=390, reviewer="alice")
    store.commit(first, [Outcome(i, analysed[i].renamed(str(inputs[i])), "w", 0.0, 0.1)
                         for i in (1, 2)])  # what a resume stores
    assert store.results(first).iloc[0]["vt1_final_time_s"] == 390.0
    later = _job(store, inputs, analysed, commit=[])
    assert store.reuse_results(later) == 3  # a later job of the same files and settings
    table = Batch(store, later).results()
    assert (table.iloc[0]["vt1_final_time_s"], table.iloc[0]["vt1_source"]) == (390.0, "expert")
    assert Batch(store, later).overrides()["job_id"].tolist() == [first]
    other = _job(store, inputs, analysed, key="key-2")  # other settings: its own decisions
    assert (store.results(other)["vt1_source"] == "consensus").all()
    for ending in (".csv", ".json", ".xlsx", ".parquet"):
        path = write_table(table, tmp_path / f"results{ending}")
        back = {".csv": pd.read_csv, ".json": pd.read_json, ".parquet": pd.read_parquet,
                ".xlsx": lambda p: pd.read_excel(p, engine="openpyxl")}[ending](path)
        assert set(FINAL) | {"vt1_source", "vt2_source"} <= set(back.columns), ending
        assert back["vt1_final_time_s"].iloc[0] == 390.0, ending
        assert back["vt1_source"].iloc[0] == "expert", ending


def test_an_old_store_gains_the_overrides_table_and_final_columns(tmp_path, inputs, analysed):
    path = tmp_path / "old.sqlite"
    store = Store(path)
    job_id = _job(store, inputs, analysed)
    store.close()
    db = sqlite3.connect(path)  # the store as cpet_nb made it before overrides
    for trigger in ("overrides_never_updated", "overrides_never_deleted"):
        db.execute(f"DROP TRIGGER {trigger}")
    db.execute("DROP TABLE overrides")
    for column in [*FINAL, "vt1_source", "vt2_source"]:
        db.execute(f'ALTER TABLE results DROP COLUMN "{column}"')
    db.commit()
    db.close()
    reopened = Store(path)
    table = reopened.results(job_id)
    assert (table["vt1_final_time_s"] == table["vt1_consensus_time_s"]).all()
    assert (table["vt2_source"] == "consensus").all()
    Batch(reopened, job_id).override(0, vt2_method="consensus", reviewer="carol")
    assert reopened.overrides(job_id)["reviewer"].tolist() == ["carol"]


def test_the_review_queue_puts_flagged_tests_first_and_uses_an_uncertainty_column(batch):
    results = batch.results()
    results["review"] = pd.array([False, True, True], dtype="boolean")
    results["review_vt_order"] = pd.array([False, False, True], dtype="boolean")
    by_flags = review_queue(results)
    assert by_flags["file"].tolist() == results["file"].iloc[[2, 1, 0]].tolist()
    assert "vt_order" in by_flags["reasons"].iloc[0]
    results["vt1_uncertainty_ml_min"] = [900.0, 400.0, 100.0]
    results["vt2_uncertainty_ml_min"] = [10.0, 500.0, 50.0]
    by_uncertainty = review_queue(results)
    assert by_uncertainty["file"].tolist() == results["file"].iloc[[1, 2, 0]].tolist()
    assert by_uncertainty["uncertainty_ml_min"].tolist() == [500.0, 100.0, 900.0]


def test_cli_review_lists_the_queue_and_applies_a_csv(batch, inputs, tmp_path, capsys):
    store, job_id = str(batch.store.path), batch.job_id
    assert main(["review", "--store", store, "--job", job_id]) == 0
    listed = capsys.readouterr()
    assert inputs[0].name in listed.out and "vt1_source" in listed.out
    assert "3 analysed test(s)" in listed.err
    before = _machine(batch.store, job_id)
    good = tmp_path / "good.csv"
    good.write_text("file,threshold,time_s,method,note,reviewer\n"
                    f"{inputs[0].name},vt1,401.2,,clear break,dana\n"
                    f"{inputs[1]},VT2,,petco2,,\n")
    assert main(["review", "--store", store, "--job", "latest", "--apply", str(good),
                 "--reviewer", "erin"]) == 0
    assert "stored 2 override(s)" in capsys.readouterr().err
    audit = batch.overrides()
    assert audit["reviewer"].tolist() == ["dana", "erin"]
    assert audit["source"].tolist() == ["expert", "petco2"]
    assert batch.results().iloc[0]["vt1_final_time_s"] == 401.0
    pd.testing.assert_frame_equal(_machine(batch.store, job_id), before)


def test_cli_bad_csv_rows_each_get_a_finding_and_nothing_is_stored(batch, inputs, tmp_path,
                                                                   capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("file;threshold;time_s;method;note\n"
                   f"{inputs[0].name};vt1;300,5;;ok row\n"  # semicolon dialect, decimal comma
                   "nope.csv;vt1;300;;\n"
                   f"{inputs[0].name};vt3;300;;\n"
                   f"{inputs[1].name};vt1;99999;;\n"
                   f"{inputs[1].name};vt2;abc;;\n"
                   f"{inputs[2].name};vt2;300;vslope;\n")
    assert main(["review", "--store", str(batch.store.path), "--job", batch.job_id,
                 "--apply", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "no override stored" in err and "5 bad row(s)" in err
    lines = err.splitlines()[1:]
    expected = [(3, "override-unknown-file"), (4, "override-bad-threshold"),
                (5, "override-time-outside-test"), (6, "override-bad-request"),
                (7, "override-bad-request")]
    assert len(lines) == len(expected)
    for line, (row, code) in zip(lines, expected, strict=True):
        assert line.startswith(f"  error {code}") and f"row {row}]" in line, line
    assert batch.overrides().empty
    missing = tmp_path / "columns.csv"
    missing.write_text("name,when\nx,1\n")
    assert main(["review", "--store", str(batch.store.path), "--job", batch.job_id,
                 "--apply", str(missing)]) == 1
    assert "has no column file, threshold" in capsys.readouterr().err
    assert main(["review", "--store", str(tmp_path / "none.sqlite"), "--job", "latest"]) == 2


def test_the_report_section_says_who_changed_what_when_and_why(batch, inputs):
    assert "No threshold was overridden" in sections.review_html(
        report_job.load_job(batch.store, batch.job_id))
    batch.override(0, vt1_time_s=400, reviewer="alice", note="clear <break>")
    batch.override(0, vt1_time_s=410, reviewer="bob")
    data = report_job.load_job(batch.store, batch.job_id)
    page = sections.review_html(data)
    assert "Expert review" in page and "alice" in page and "bob" in page
    assert "clear &lt;break&gt;" in page
    assert "400 → 410 s" in page and "consensus → expert" in page
    assert "no (replaced)" in page
    assert "1 threshold(s) of 1 test(s) overridden" in page
    results = sections.results_html(data)
    assert "VT1: final" in results and "expert" in results


@pytest.mark.slow
def test_the_batch_report_shows_the_expert_review(batch, tmp_path):
    batch.override(0, vt1_time_s=400, reviewer="alice", note="looked at the V-slope")
    run = subprocess.run([sys.executable, "-m", "cpet_nb", "report", "--store",
                          str(batch.store.path), "--job", batch.job_id, "-o", "report.html"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    page = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "5 Expert review" in page and "looked at the V-slope" in page and "alice" in page
    assert np.isfinite(batch.results().iloc[0]["vt1_final_vo2_ml_min"])


def test_the_default_reviewer_is_the_jupyterhub_user_then_the_os_user(monkeypatch):
    """On a JupyterHub every single-user server has $JUPYTERHUB_USER while the OS user is
    often one shared account: the API, the CLI and the panel record the Hub's user."""
    import getpass

    from cpet_nb.batch.review import default_reviewer

    monkeypatch.setenv("JUPYTERHUB_USER", "carol")
    assert default_reviewer() == "carol"
    monkeypatch.delenv("JUPYTERHUB_USER")
    assert default_reviewer() == getpass.getuser()
