"""The JupyterLab panel's logic without a browser: FileUpload-shaped values and paths in,
the intake table, settings controls from the declared table, a real batch run, cancelled
and resumed from the panel, results, errors, plots, exports and a reopened panel.

Widgets change only in ``apply_pending`` (in a kernel: on its IO loop); here the tests call
it, as the loop would, until what they wait for is there (bounded waits, no clocks).
"""

from __future__ import annotations

import io
import socket
import threading
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ipywidgets")
pytest.importorskip("jupyter_bokeh")

import ipywidgets as w  # noqa: E402
from conftest import distinct_copies  # noqa: E402
from jupyter_bokeh.widgets import BokehModel  # noqa: E402

import cpet_nb  # noqa: E402
from cpet_nb.batch.store import FileEntry, Outcome, Store  # noqa: E402
from cpet_nb.settings import Settings  # noqa: E402
from cpet_nb.ui import Panel  # noqa: E402
from cpet_nb.ui.panel import SHORT_COLUMNS, _Ticker  # noqa: E402


def drive(panel: Panel, until, timeout_s: float = 180.0) -> None:
    """Apply pending updates, as the kernel's loop would, until ``until()`` holds."""
    deadline = time.monotonic() + timeout_s
    while True:
        panel.apply_pending()
        if until():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting; panel says: {panel.message.value} "
                                 f"{panel.status.value} {panel.intake_status.value}")
        time.sleep(0.05)


def widget_file(name: str, content: bytes) -> dict:
    """One entry of an ipywidgets 8 ``FileUpload.value``."""
    return {"name": name, "type": "", "size": len(content), "last_modified": 1700000000000,
            "content": memoryview(content)}


def stored_job(store: Store, paths, *, done: int | None = None) -> str:
    """A job analysed in this process (no cluster): every file stored and the job done,
    or only the first ``done`` files stored and the job left as if its process died."""
    job_id = store.new_job_id()
    entries = [FileEntry(i, str(p), str(p), f"sha-{i}", 0) for i, p in enumerate(paths)]
    store.create_job(job_id, entries, settings=Settings(workers=1).to_dict(),
                     analysis_key="test", model_version="test", inputs={})
    stored = entries if done is None else entries[:done]
    store.commit(job_id, [Outcome(e.idx, cpet_nb.analyze(e.path), "here", time.time(), 0.0)
                          for e in stored])
    if done is None:
        store.finish_job(job_id, "done")
    else:  # an owner process on this host that is gone: the job shows as interrupted
        with store.transaction() as db:
            db.execute("UPDATE jobs SET owner = ? WHERE job_id = ?",
                       (f"{socket.gethostname()}:999999999", job_id))
    return job_id


@pytest.fixture()
def notes(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a CPET export\n")
    return path


# -- without a cluster ----------------------------------------------------------------------


def test_panel_is_a_lazy_function_returning_a_displayable_widget(tmp_path):
    panel = cpet_nb.panel(store=tmp_path / "jobs.sqlite")
    assert isinstance(panel, Panel) and isinstance(panel.widget, w.VBox)
    bundle = panel._repr_mimebundle_()  # BokehJS is put in the page first
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert panel.jobs.options == () and "No inputs yet" in panel.intake_status.value


def test_settings_controls_are_built_from_the_declared_table(tmp_path):
    panel = Panel(tmp_path / "jobs.sqlite", vo2peak_window=20)
    form = panel.form
    options = Settings.options()
    assert list(form.controls) == list(options)
    for name, option in options.items():
        control = form.controls[name]
        assert control.tooltip == option.help
        if option.kind is list:
            assert isinstance(control, w.SelectMultiple) and control.options == option.choices
        elif option.choices is not None:
            assert isinstance(control, w.Dropdown) and control.options == option.choices
    visible = form.widget.children[0].children
    hidden = visible[-1].children[0].children  # the collapsed "Engine and store" section
    groups = {name: options[name].group for name in options}
    assert {groups[n] for n, c in form.controls.items() if c in visible} == {"analysis",
                                                                             "limits"}
    assert {groups[n] for n, c in form.controls.items() if c in hidden} == {"engine", "store"}
    assert form.controls["vo2peak_window"].value == 20  # the panel's arguments
    form.controls["peak_within"].value = "test"
    assert form.settings().peak_within == "test"
    form.controls["max_file_mb"].value = 0.0  # the field allows it, the settings do not
    panel.inputs = ["anything.csv"]
    panel.run_button.click()
    assert "Settings: max_file_mb must be positive" in panel.message.value
    assert cpet_nb.jobs(panel.store).empty and not panel.run_button.disabled


def test_intake_lists_every_upload_and_path_with_its_reason(tmp_path, bundled_tests):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(bundled_tests[1], "lab/p02.csv")
        zf.writestr("lab/../../bad.csv", "t,VO2\n")
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "p03.csv").write_bytes(bundled_tests[2].read_bytes())
    (folder / "README.md").write_text("how the tests were made\n")
    panel = Panel(tmp_path / "jobs.sqlite")
    panel.upload.set_state({"value": [
        widget_file("p01.csv", bundled_tests[0].read_bytes()),
        widget_file("README.md", b"# notes\n"),
        widget_file("lab.zip", archive.getvalue())]})
    assert panel.upload.value == ()  # taken in and freed at once
    panel.path.value = str(folder)
    panel.add.click()
    drive(panel, lambda: len(panel.files.frame) == 6)
    rows = panel.files.frame.set_index("input")
    assert rows["status"].to_dict() == {
        "p01.csv": "✓ ready", "lab.zip/lab/p02.csv": "✓ ready",
        "README.md": "✗ will not run",  # uploaded by name: the batch would fail it
        "lab.zip/lab/../../bad.csv": "✗ will not run", str(folder / "p03.csv"): "✓ ready",
        str(folder / "README.md"): "– skipped"}
    assert "not a recognised CPET export" in rows.loc["README.md", "why"]
    assert "path" in rows.loc["lab.zip/lab/../../bad.csv", "why"]
    assert "no reader recognises it" in rows.loc[str(folder / "README.md"), "why"]
    assert rows.loc["p01.csv", "format"] == "pyoxynet-csv"
    assert rows.loc["p01.csv", "channels"].startswith("VO2 VCO2 VE PetO2 PetCO2")
    assert ":" in rows.loc["p01.csv", "duration"]
    assert "6 input(s): 3 ready, 1 skipped, 2 error" in panel.intake_status.value
    assert len(panel.inputs) == 4  # three uploads, one path; nothing ran
    assert cpet_nb.jobs(panel.store).empty


def test_nothing_to_run_is_said_not_started(tmp_path):
    panel = Panel(tmp_path / "jobs.sqlite")
    panel.run_button.click()
    assert "Nothing to run" in panel.message.value


def test_a_reopened_panel_lists_jobs_and_shows_results_errors_and_plots(tmp_path,
                                                                       bundled_tests, notes):
    store = Store(tmp_path / "jobs.sqlite")
    older = stored_job(store, bundled_tests[:2])
    with store.transaction() as db:  # a day earlier: job ids of one second sort at random
        db.execute("UPDATE jobs SET created_at = '2026-01-01T00:00:00+00:00' WHERE job_id = ?",
                   (older,))
    newer = stored_job(store, [*bundled_tests[2:5], notes])
    panel = Panel(store.path)
    assert [job for _, job in panel.jobs.options] == [newer, older]
    assert panel.batch.job_id == newer and panel.jobs.value == newer
    table = panel.results
    assert table.shown["test"].tolist() == [p.name for p in bundled_tests[2:5]] + ["notes.txt"]
    assert table.shown["status"].tolist() == ["ok", "ok", "ok", "error"]
    assert list(table.shown.columns) == list(SHORT_COLUMNS)
    assert table.shown.columns[:3].tolist() == ["flag", "why", "test"]  # review first
    assert "4/4</b> done" in panel.status.value and "job <b>done</b>" in panel.status.value
    assert "1 file(s) could not be analysed" in panel.errors.value
    assert "notes.txt" in panel.errors.value and "unsupported-format" in panel.errors.value
    assert panel.files.frame["status"].tolist() == ["✓ ok"] * 3 + ["✗ error"]
    assert panel.resume_button.disabled and panel.cancel_button.disabled
    # filters and columns
    panel.status_filter.value = "error"
    assert table.shown["test"].tolist() == ["notes.txt"]
    panel.status_filter.value = "all"
    panel.text_filter.value = bundled_tests[3].name[:-4]
    assert table.shown["test"].tolist() == [bundled_tests[3].name]
    panel.text_filter.value = ""
    flagged = panel._results["review"].fillna(False).astype(bool).sum()
    panel.review_filter.value = "needs review"
    assert len(table.shown) == flagged
    panel.review_filter.value = "all"
    panel.column_set.value = "all"
    assert len(table.shown.columns) > 90
    # selecting a row shows that test's plots; an error row shows its findings
    table.source.selected.indices = [1]
    heading, plots = panel.selected.children
    assert bundled_tests[3].name in heading.value and isinstance(plots, BokehModel)
    table.source.selected.indices = [3]
    assert "unsupported-format" in panel.selected.children[0].value
    # the other job
    panel.jobs.value = older
    assert panel.results.shown["test"].tolist() == [p.name for p in bundled_tests[:2]]
    assert panel.selected.children == ()


def test_exports_and_report_are_written_beside_the_store(tmp_path, bundled_tests, notes):
    store = Store(tmp_path / "jobs.sqlite")
    job = stored_job(store, [*bundled_tests[:2], notes])
    panel = Panel(store.path)
    folder = panel.export_folder()
    assert folder == tmp_path / "jobs.sqlite.exports" / job
    for button in panel.export_buttons:
        button.click()
        drive(panel, lambda: "written" in panel.export_status.value
              or "failed" in panel.message.value)
        assert "written" in panel.export_status.value, panel.message.value
        panel.export_status.value = ""
    table = pd.read_csv(folder / "results.csv")
    assert table["file"].tolist() == [str(p) for p in [*bundled_tests[:2], notes]]
    assert len(pd.read_excel(folder / "results.xlsx", engine="calamine")) == 3
    assert len(pd.read_parquet(folder / "results.parquet")) == 3
    with zipfile.ZipFile(folder / "plots.zip") as pages:
        names = sorted(pages.namelist())
        assert names == sorted([f"0000-{bundled_tests[0].name}.html",
                                f"0001-{bundled_tests[1].name}.html", "0002-notes.txt.html",
                                "index.json"])
        assert b"Bokeh" in pages.read(names[0])
    panel.report_per_test.value = "sections"
    panel.report_button.click()
    drive(panel, lambda: "written" in panel.report_status.value, timeout_s=300)
    page = (folder / "report.html").read_text(encoding="utf-8")  # the batch report itself
    assert f"job {panel.batch.job_id}" in page and "Processing statement" in page
    assert "3 inputs: 2 analysed" in page
    for test in bundled_tests[:2]:
        assert f"{test.name}: exercise-intensity domains" in page  # a section per test


def test_updates_are_applied_on_the_loop_a_few_times_a_second():
    """Notices from many threads wake the ticker; ticks run on the loop's thread and
    wake-ups that come while one is due are merged into it."""
    from tornado.ioloop import IOLoop

    ready, ticked, ticks = threading.Event(), threading.Event(), []
    holder = {}

    def loop_thread():
        loop = IOLoop()

        async def start():
            holder["ticker"] = _Ticker(lambda: (ticks.append(threading.current_thread()),
                                                ticked.set()))
            holder["loop"] = loop
            ready.set()

        loop.run_sync(start)
        loop.start()

    thread = threading.Thread(target=loop_thread, daemon=True)
    thread.start()
    assert ready.wait(30)
    wakers = [threading.Thread(target=holder["ticker"].wake) for _ in range(20)]
    for waker in wakers:
        waker.start()
    for waker in wakers:
        waker.join()
    assert ticked.wait(30)
    holder["loop"].add_callback(holder["loop"].stop)
    thread.join(30)
    assert ticks == [thread]  # one tick for twenty wake-ups, on the loop's thread


def test_without_a_loop_nothing_changes_until_apply_pending(tmp_path):
    panel = Panel(tmp_path / "jobs.sqlite")
    worker = threading.Thread(target=panel._notify, kwargs={"export": "from a thread"})
    worker.start()
    worker.join()
    assert panel.export_status.value == ""
    panel.apply_pending()
    assert panel.export_status.value == "from a thread"


# -- selections staged on the server (the big-upload button) --------------------------------


def staged_upload(folder, paths) -> dict:
    """The server's record of a staged upload (``POST /uploads``) of ``paths`` in
    ``folder``, as the browser sets it on the big-upload widget."""
    return {"upload_id": "ab" * 16, "folder": str(folder),
            "created_at": "2026-12-01T10:00:00+00:00", "expires_at": "2026-12-02T10:00:00+00:00",
            "files": [{"name": p.name, "size_bytes": p.stat().st_size} for p in paths],
            "total_bytes": sum(p.stat().st_size for p in paths)}


def test_a_selection_staged_on_the_server_is_read_as_a_folder(tmp_path, bundled_tests,
                                                              notes):
    folder = tmp_path / "server" / "jobs.sqlite.staged" / ("ab" * 16)
    folder.parent.mkdir(parents=True)
    paths = distinct_copies(bundled_tests, folder, 2)
    paths.append(folder / notes.name)
    paths[-1].write_bytes(notes.read_bytes())
    panel = Panel(tmp_path / "jobs.sqlite")
    panel.big_upload.set_state({"staged": staged_upload(folder, paths)})  # the browser's
    assert panel.inputs == [str(folder)]
    drive(panel, lambda: len(panel.intake) == 3)
    assert panel.intake["input"].tolist() == [str(p) for p in paths]
    assert panel.intake["state"].tolist() == ["ready", "ready", "skipped"]
    assert panel.files.frame["input"].tolist() == [str(p) for p in paths]
    assert "3 input(s): 2 ready, 1 skipped" in panel.intake_status.value


def test_the_big_upload_widget_reads_the_extensions_page_entry():
    """The widget looks for the key the server extension writes into the page config, and
    its front-end module is shipped with the package."""
    from cpet_nb.server.handlers import PAGE_CONFIG_KEY
    from cpet_nb.settings import tomllib
    from cpet_nb.ui._bigupload import BigUpload

    widget = BigUpload()
    assert widget.config_key == PAGE_CONFIG_KEY
    assert "export default" in widget._esm
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert "*.js" in project["tool"]["setuptools"]["package-data"]["cpet_nb.ui"]


# -- on a real local cluster -----------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded_cluster():
    """The embedded cluster the panel starts (one worker), closed after these tests."""
    yield
    cpet_nb.batch.engine.shutdown()


@pytest.mark.slow
def test_a_small_batch_runs_from_the_panel(tmp_path, bundled_tests, notes, embedded_cluster):
    panel = Panel(tmp_path / "jobs.sqlite", workers=1, dashboard=True)
    panel.add_inputs([*bundled_tests[:3], notes])
    drive(panel, lambda: len(panel.intake) == 4)
    panel.run_button.click()
    assert panel.run_button.disabled
    drive(panel, lambda: panel.batch is not None)
    batch, shown = panel.batch, len(panel.results.frame)
    assert batch.wait(300).state == "done"
    assert len(panel.results.frame) == shown  # the batch's thread never touches widgets
    drive(panel, lambda: "job <b>done</b>" in panel.status.value
          and len(panel.results.frame) == 4)
    assert panel.results.shown["test"].tolist() == [p.name for p in bundled_tests[:3]] + [
        "notes.txt"]
    assert panel.results.shown["status"].tolist() == ["ok", "ok", "ok", "error"]
    assert (panel.progress.value, panel.progress.max) == (4, 4)
    assert "4/4</b> done" in panel.status.value and "1 failed" in panel.status.value
    assert panel.files.frame["status"].tolist() == ["✓ ok"] * 3 + ["✗ error"]
    assert "notes.txt" in panel.errors.value and "unsupported-format" in panel.errors.value
    assert panel.dashboard.value.startswith('<a href="http')
    from bokeh.models import ColumnDataSource

    layout = panel.batch_plots.children[0]._model
    (rows,) = [s for s in layout.select({"type": ColumnDataSource}) if "finding_codes" in s.data]
    assert len(rows.data["file"]) == len(batch.results())  # streamed in as results came
    pd.testing.assert_frame_equal(panel._results.reset_index(drop=True), batch.results())
    assert not panel.run_button.disabled and panel.cancel_button.disabled
    assert [job for _, job in panel.jobs.options] == [batch.job_id]


@pytest.mark.slow
def test_a_batch_runs_on_a_selection_staged_on_the_server(tmp_path, bundled_tests,
                                                         embedded_cluster):
    folder = tmp_path / "server" / "jobs.sqlite.staged" / ("cd" * 16)
    folder.parent.mkdir(parents=True)
    paths = distinct_copies(bundled_tests, folder, 3, start=500)
    panel = Panel(tmp_path / "jobs.sqlite", workers=1)
    panel.big_upload.set_state({"staged": staged_upload(folder, paths)})
    drive(panel, lambda: len(panel.intake) == 3)
    panel.run_button.click()
    drive(panel, lambda: "job <b>done</b>" in panel.status.value
          and len(panel.results.frame) == 3)
    assert panel.results.frame["file"].tolist() == [str(p) for p in paths]
    assert panel.results.shown["status"].tolist() == ["ok"] * 3
    assert all(p.is_file() for p in paths)  # read in place: the server removes them


@pytest.mark.slow
def test_cancel_and_resume_from_the_panel(tmp_path, bundled_tests, embedded_cluster):
    paths = distinct_copies(bundled_tests, tmp_path / "many", 40)
    panel = Panel(tmp_path / "jobs.sqlite", workers=1, partition_size=2)
    panel.add_inputs(paths)
    panel.run()
    drive(panel, lambda: len(panel.results.frame) > 0)
    assert not panel.cancel_button.disabled
    panel.cancel_button.click()
    drive(panel, lambda: "job <b>cancelled</b>" in panel.status.value)
    kept = len(panel.results.frame)
    assert 0 < kept < 40 and "cancelled" in panel.status.value
    assert not panel.resume_button.disabled and panel.cancel_button.disabled
    panel.resume_button.click()
    drive(panel, lambda: "job <b>done</b>" in panel.status.value
          and len(panel.results.frame) == 40)
    assert panel.results.frame["file"].tolist() == [str(p) for p in paths]  # each once


@pytest.mark.slow
def test_a_reopened_panel_resumes_an_interrupted_job(tmp_path, bundled_tests,
                                                    embedded_cluster):
    store = Store(tmp_path / "jobs.sqlite")
    job = stored_job(store, bundled_tests[:3], done=1)
    panel = Panel(store.path, workers=1)
    assert panel.batch.job_id == job and "job <b>interrupted</b>" in panel.status.value
    assert len(panel.results.frame) == 1 and not panel.resume_button.disabled
    panel.resume_button.click()
    drive(panel, lambda: "job <b>done</b>" in panel.status.value
          and len(panel.results.frame) == 3)
    assert panel.files.frame["status"].tolist() == ["✓ ok"] * 3
