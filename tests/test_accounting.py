"""Every input accounted for, the same way by ``cpet-nb analyze`` and by a batch: one row per
file named, found in a folder or inside an archive, with its state and the finding that says
why it was not analysed; good files beside hostile ones get the numbers they get alone; odd
names survive; no temporary folder outlives its run."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import distinct_copies

import cpet_nb
from cpet_nb.batch.store import OWNER_MARKER, Store
from cpet_nb.cli import TEMP_PREFIX, main

#: The name of a copy of a real test that is not valid UTF-8 (byte 0xE9 in "café").
LATIN1_NAME = "caf\udce9.csv"
LATIN1_LABEL = "caf\\xe9.csv"


@pytest.fixture()
def corpus(tmp_path, bundled_tests) -> tuple[Path, dict[str, tuple[str, str | None]]]:
    """A folder of hostile and good inputs, and for each input's label (relative to the
    folder) the expected status and finding code."""
    folder = tmp_path / "lab"
    good = distinct_copies(bundled_tests[:2], folder, 2)
    shutil.copyfile(bundled_tests[2], folder / LATIN1_NAME)
    (folder / "README.md").write_text("# Lab notes\nnothing to analyse\n")
    (folder / "participants.csv").write_text("file,weight_kg\na.csv,70\n")
    (folder / ".DS_Store").write_bytes(b"\x00\x01")  # system clutter: not an input
    (folder / "broken.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 200)
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("x.csv", "t,VO2\n")
    with zipfile.ZipFile(folder / "visit.zip", "w") as zf:
        zf.write(bundled_tests[3], "v/test.csv")
        zf.writestr("v/notes.txt", "written by hand")
        zf.writestr("../escape.csv", bundled_tests[3].read_text())
        zf.writestr("v/inner.zip", inner.getvalue())
    expected = {
        good[0].name: ("ok", None), good[1].name: ("ok", None),
        LATIN1_LABEL: ("ok", None),
        "README.md": ("skipped", "not-a-cpet-export"),
        "participants.csv": ("skipped", "not-a-cpet-export"),
        "broken.zip": ("error", "corrupt-archive"),
        "visit.zip/../escape.csv": ("error", "unsafe-archive-member"),
        "visit.zip/v/inner.zip": ("error", "nested-archive"),
        "visit.zip/v/notes.txt": ("skipped", "not-a-cpet-export"),
        "visit.zip/v/test.csv": ("ok", None),
    }
    return folder, expected


def _relative(table: pd.DataFrame, folder: Path) -> pd.DataFrame:
    table = table.copy()
    table["file"] = table["file"].str.replace(f"{folder}/", "", regex=False)
    return table.set_index("file")


def _check_rows(table: pd.DataFrame, expected: dict[str, tuple[str, str | None]]) -> None:
    assert sorted(table.index) == sorted(expected), "exactly one row per input"
    for label, (status, code) in expected.items():
        assert table.loc[label, "status"] == status, label
        if code is not None:
            assert code in table.loc[label, "findings"], label
        if status in ("skipped", "error"):
            assert pd.isna(table.loc[label, "vt1_time_s"]), f"{label}: no numbers"


def test_cli_lists_every_input_and_leaves_no_temporary(corpus, tmp_path, monkeypatch,
                                                       capsys):
    folder, expected = corpus
    system_temp = tmp_path / "systemp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    out = tmp_path / "results.xlsx"
    assert main(["analyze", str(folder), "-o", str(out), "-q"]) == 0
    table = _relative(pd.read_excel(out, engine="calamine"), folder)
    _check_rows(table, expected)
    err = capsys.readouterr().err
    for label, (status, code) in expected.items():
        if status != "ok":
            assert f"{status}: {folder}/{label}: {code}: " in err  # named, with why
    assert "1 hidden or system file(s) in the folders were ignored" in err
    assert list(system_temp.iterdir()) == [] and not list(tmp_path.glob("**/.*.tmp"))


@pytest.mark.slow
def test_batch_accounts_like_the_cli_and_good_files_are_unharmed(corpus, tmp_path,
                                                                 dask_client):
    folder, expected = corpus
    store = tmp_path / "jobs.sqlite"
    batch = cpet_nb.submit([folder], store, client=dask_client)
    assert batch.wait().state == "done"
    table = _relative(batch.results(), folder)
    _check_rows(table, expected)
    files = _relative(batch.files().rename(columns={"name": "file"}), folder)
    states = {"ok": "done", "skipped": "skipped", "error": "refused"}
    assert {label: files.loc[label, "state"] for label in expected} == {
        label: states[status] for label, (status, _) in expected.items()}
    assert batch.status().fraction_done == 1.0
    # the same accounting, row for row, as cpet-nb analyze
    out = tmp_path / "cli.csv"
    assert main(["analyze", str(folder), "-o", str(out), "-q"]) == 0
    cli = _relative(pd.read_csv(out), folder)
    assert cli.index.tolist() == table.index.tolist()
    assert cli["status"].tolist() == table["status"].tolist()
    # good files beside the hostile ones: the numbers they get alone
    numbers = [c for c in cpet_nb.RESULT_COLUMNS if c.endswith(("_s", "_ml_min", "_bpm"))]
    for label, (status, _) in expected.items():
        if status == "ok" and not label.startswith("visit.zip"):
            alone = cpet_nb.results_table([cpet_nb.analyze(folder / (
                LATIN1_NAME if label == LATIN1_LABEL else label))]).iloc[0]
            pd.testing.assert_series_equal(table.loc[label, numbers].astype(float),
                                           alone[numbers].astype(float), check_names=False)
    assert not Store(store).upload_dir(batch.job_id).exists()  # done: its copies are gone


def test_a_name_that_is_not_utf8_is_exported_and_kept_exactly(tmp_path, bundled_tests):
    path = tmp_path / LATIN1_NAME
    shutil.copyfile(bundled_tests[0], path)
    for suffix in (".csv", ".json", ".xlsx"):
        out = tmp_path / f"r{suffix}"
        assert main(["analyze", str(path), "-o", str(out), "-q"]) == 0
        assert not list(tmp_path.glob(".*.tmp"))
    table = pd.read_csv(tmp_path / "r.csv")
    assert table.loc[0, "file"] == f"{tmp_path}/{LATIN1_LABEL}"
    assert table.loc[0, "status"] == "ok"
    assert json.loads((tmp_path / "r.json").read_text())[0]["file"] == table.loc[0, "file"]
    # the store keeps the exact path, so that a worker (or a resume) can read the file
    from cpet_nb.batch.staging import stage_inputs

    store = Store(tmp_path / "jobs.sqlite")
    staged = stage_inputs([path], store.upload_dir("job"), cpet_nb.Settings())
    store.create_job("job", staged.entries, settings={}, analysis_key="k",
                     model_version="m", inputs={})
    (entry,) = store.pending("job")
    assert entry.name == f"{tmp_path}/{LATIN1_LABEL}" and Path(entry.path) == path
    assert Path(store.files("job").loc[0, "path"]).read_bytes() == path.read_bytes()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_what_a_killed_run_left_is_removed_by_the_next(tmp_path, monkeypatch, ramp_csv):
    system_temp = tmp_path / "systemp"
    system_temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_temp))
    stale = system_temp / f"{TEMP_PREFIX}{_dead_pid()}-abc"
    (stale / "batch.zip").mkdir(parents=True)
    live = system_temp / f"{TEMP_PREFIX}{os.getppid()}-def"  # a live process's: kept
    live.mkdir()
    assert main(["analyze", str(ramp_csv), "-o", str(tmp_path / "r.csv"), "-q"]) == 0
    assert sorted(system_temp.iterdir()) == [live]


def test_a_submit_killed_while_staging_leaves_nothing_behind(tmp_path, ramp_csv):
    store = Store(tmp_path / "jobs.sqlite")
    orphan = store.upload_dir("20260101-000000-dead00")
    (orphan / "upload-0").mkdir(parents=True)
    (orphan / OWNER_MARKER).write_text(json.dumps({"owner": f"{os.uname().nodename}:"
                                                   f"{_dead_pid()}", "started": 0.0}))
    mine = store.new_upload_dir("20260101-000000-live00")  # this live process is staging it
    assert store.remove_orphan_uploads() == [orphan]
    assert not orphan.exists() and mine.is_dir()
