"""Batch reports: what each section says (from a stored job, without a kernel), the papermill
execution (parameters, a failing cell named, per-test none/sections/zip), the page working
offline, the scheduled recipe of docs/reports.md, and the shipped notebooks' hygiene.

The sections are checked on a job stored without dask (fast); the executions are marked
``slow`` (a kernel each, and one real batch on a LocalCluster).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import cpet_nb
import cpet_nb.report
from cpet_nb.batch.store import FileEntry, Outcome, Store
from cpet_nb.cli import main
from cpet_nb.findings import Finding, Severity
from cpet_nb.report import columns, job, sections, statement
from cpet_nb.report.html import number
from cpet_nb.result import RESULT_COLUMNS, FileResult

ROOT = Path(__file__).parent.parent
NOTEBOOKS = ROOT / "notebooks"
EVIL = "<img src=x onerror=alert(1)>.csv"
#: Settings of the stored job: not the defaults, so the statement must say which were used.
JOB_SETTINGS = {"vo2peak_method": "breath-moving", "vo2peak_window": 15,
                "csv_dialect": "semicolon"}


# -- a stored job, made without dask ---------------------------------------------------------

def store_job(store: Store, items: list[tuple[Path, FileResult]], settings: cpet_nb.Settings,
              settled: dict[int, str] | None = None) -> str:
    """A finished job in ``store`` holding ``(path, result)`` items as a batch stores them;
    ``settled`` gives the state of inputs settled at intake (``skipped``) by index."""
    settled = settled or {}
    entries = []
    for i, (path, _) in enumerate(items):
        content = path.read_bytes() if path.is_file() else b""
        entries.append(FileEntry(i, str(path), str(path), hashlib.sha256(content).hexdigest(),
                                 len(content)))
    job_id = store.new_job_id()
    store.create_job(job_id, entries, settings=settings.to_dict(), analysis_key="key",
                     model_version=cpet_nb.model.bundled_model_version(),
                     inputs={"given": [str(p) for p, _ in items], "ignored": 0,
                             "participants": None},
                     settled={i: (state, items[i][1].renamed(entries[i].name))
                              for i, state in settled.items()})
    store.commit(job_id, [Outcome(e.idx, r.renamed(e.name), "worker-1", 0.0, 0.25)
                          for e, (_, r) in zip(entries, items, strict=True)
                          if e.idx not in settled])
    store.finish_job(job_id, "done")
    return job_id


@pytest.fixture(scope="module")
def stored(tmp_path_factory, bundled_tests):
    """Three real tests (one named like an HTML script), a README found among them and a
    file that is gone, analysed in this process with non-default settings."""
    folder = tmp_path_factory.mktemp("inputs")
    paths = [Path(shutil.copy(p, folder / p.name)) for p in bundled_tests[:2]]
    paths.append(Path(shutil.copy(bundled_tests[2], folder / EVIL)))
    readme = folder / "README.txt"
    readme.write_text("not a test\n")
    gone = folder / "gone.csv"
    settings = cpet_nb.Settings(**JOB_SETTINGS)
    items = [(p, cpet_nb.analyze(p, settings=settings)) for p in paths]
    items.append((readme, FileResult.skipped(str(readme), Finding(
        "not-a-cpet-export", Severity.INFO, "skipped: no reader recognises it"))))
    items.append((gone, cpet_nb.analyze(gone)))
    store = Store(tmp_path_factory.mktemp("store") / "jobs.sqlite")
    job_id = store_job(store, items, settings, settled={3: "skipped"})
    return job.load_job(store.path, job_id)


class _Tables(HTMLParser):
    """The text of every cell of the tables in a page, by the tables' ``data-name``."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._name: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self._name = dict(attrs).get("data-name", "")
            self.tables[self._name] = []
        elif tag == "tr" and self._name is not None:
            self.tables[self._name].append([])
        elif tag in ("td", "th") and self._name is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._name][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._name = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def rows_by(table: list[list[str]], header_rows: int = 1) -> tuple[list[str], list[list[str]]]:
    """The last header row and the body rows of a table."""
    return table[header_rows - 1], table[header_rows:]


# -- what the sections say ---------------------------------------------------------------------

def test_every_input_is_listed_with_its_state_and_why(stored):
    header, body = rows_by(tables(sections.inputs_html(stored))["inputs"])
    assert [r[header.index("state")] for r in body] == ["done", "done", "done", "skipped", "done"]
    assert [r[header.index("result")] for r in body] == ["ok", "ok", "ok", "skipped", "error"]
    assert body[2][header.index("input")] == EVIL  # escaped, shown as text
    why = header.index("first warning or error")
    assert body[4][why].startswith("error file-not-found")
    assert body[3][why] == ""  # an info finding is not a warning or an error
    header_text = sections.header_html(stored)
    assert "5 inputs: 3 analysed (3 ok, 0 warning), 1 error, 1 skipped" in header_text


def test_results_table_labels_model_and_consensus_apart_with_units(stored):
    page = sections.results_html(stored)
    table = tables(page)["results"]
    groups, headers, body = table[0], table[1], table[2:]
    assert groups == ["Test", "Peak values", "VT1: model (Oxynet)", "VT1: consensus",
                      "VT2: model (Oxynet)", "VT2: consensus", "VT1: final", "VT2: final"]
    assert headers[3:5] == ["VO2peak (mL/min)", "VO2peak (mL/kg/min)"]
    first = stored.results.iloc[0]  # data_test.csv: the VT1 3131 vs 3326 mL/min
    vt1 = {"model": number(first["vt1_vo2_ml_min"], "mL/min"),
           "consensus": number(first["vt1_consensus_vo2_ml_min"], "mL/min")}
    assert vt1["model"] != vt1["consensus"]
    columns_in_order = [c for _, _, group in sections.RESULTS_GROUPS for c in group]
    row = body[0]
    assert row[columns_in_order.index("vt1_vo2_ml_min")] == vt1["model"]
    assert row[columns_in_order.index("vt1_consensus_vo2_ml_min")] == vt1["consensus"]
    # blue model headers and green consensus headers, each column by its source
    assert re.search(r'class="cpet-model">VO2 \(mL/min\)</th>', page)
    assert re.search(r'class="cpet-consensus">VO2 \(mL/min\)</th>', page)
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page and "<img src=x" not in page


def test_the_whole_table_is_in_the_page_as_csv_in_the_jobs_dialect(stored):
    page = sections.results_html(stored)
    payload = re.search(r'href="data:text/csv;base64,([^"]+)"', page)[1]
    raw = base64.b64decode(payload)
    assert raw.startswith(b"\xef\xbb\xbf")  # the job's dialect: semicolon, UTF-8 with BOM
    back = pd.read_csv(io.BytesIO(raw), sep=";", decimal=",", encoding="utf-8-sig")
    assert list(back.columns) == list(RESULT_COLUMNS)
    assert back["vo2peak_ml_min"].tolist() == pytest.approx(
        stored.results["vo2peak_ml_min"].tolist(), nan_ok=True)


def test_quality_puts_specific_flags_first_and_counts_findings_by_code(stored):
    found = tables(sections.quality_html(stored))
    header, body = rows_by(found["flagged"])
    why = [r[header.index("why")] for r in body]
    specific = [any(label in w for label in ("VT2 not after VT1", "model domains swapped",
                                             "threshold missing", "effort criterion failed"))
                for w in why]
    assert specific == sorted(specific, reverse=True)  # specific flags before spread alone
    flagged = stored.analysed[stored.analysed["review"].fillna(False).astype(bool)]
    assert len(body) == len(flagged)
    header, body = rows_by(found["findings"])
    codes = {r[0]: r for r in body}
    assert codes["file-not-found"][header.index("tests")] == "1"
    assert codes["file-not-found"][header.index("severity")] == "error"
    header, body = rows_by(found["not-analysed"])
    assert [r[0] for r in body] == ["README.txt", "gone.csv"]


def test_cohort_statistics_are_those_of_the_analysed_tests(stored):
    header, body = rows_by(tables(sections.cohort_html(stored))["cohort"])
    stats = {(r[0], r[1]): r for r in body}
    vo2peak = stored.analysed["vo2peak_ml_min"]
    row = stats[("VO2peak", "mL/min")]
    assert row[header.index("n")] == "3"
    assert row[header.index("median (IQR)")].startswith(number(vo2peak.median(), "mL/min"))
    assert row[header.index("range")] == (f"{number(vo2peak.min(), 'mL/min')} to "
                                          f"{number(vo2peak.max(), 'mL/min')}")
    # model and consensus thresholds, absolute and as % of VO2peak, each labelled
    assert {("VT1 model VO2", "mL/min"), ("VT1 consensus VO2", "mL/min"),
            ("VT2 model VO2", "% of VO2peak"), ("VT2 consensus VO2", "% of VO2peak"),
            ("HRpeak", "1/min"), ("RERpeak", "")} <= set(stats)


def test_statement_names_the_model_the_settings_used_and_fills_the_checklist(stored):
    page = statement.statement_html(stored)
    text = statement.statement_text(stored)
    assert stored.job["model_version"] in text and "bm_15" in text
    assert "centred moving average of 15 consecutive breaths" in text
    assert "the network voting 95 s before its VT1 and 45 s before its VT2" in text
    assert statement.vote_lag_text(cpet_nb.Settings(models=("cnn", "ais"))) == ""
    found = tables(page)
    header, body = rows_by(found["settings"])
    used = {r[1]: r for r in body}
    assert set(used) == set(cpet_nb.Settings.options())
    assert used["vo2peak_window"][2:4] == ["15", "30"]
    assert "<b>15</b>" in page and "<b>breath-moving</b>" in page  # not the defaults: bold
    for name, option in cpet_nb.Settings.options().items():
        assert used[name][4] == option.help
    items = [r[0] for r in rows_by(found["checklist"])[1]]
    assert items[:7] == ["Metabolic cart", "Measurement mode", "Software", "Preprocessing",
                         "Processing strategy", "Processing parameters", "Rationale"]
    assert {"Maximal effort", "Exercise protocol", "Calibration"} <= set(items)
    checklist = {i.item: i for i in statement.checklist(stored)}
    assert checklist["Rationale"].status == "partly"  # a strategy other than the default
    assert checklist["Calibration"].status == "missing"
    assert "bm_15" in checklist["Processing strategy"].answer


def test_a_job_without_any_analysed_test_still_gets_every_section(tmp_path):
    """Nothing analysed (a file that is gone, a README): every section says so, none
    raises; statistics are counts of 0 and missing values."""
    readme = tmp_path / "README.md"
    readme.write_text("# notes\n")
    gone = tmp_path / "gone.csv"
    items = [(gone, cpet_nb.analyze(gone)), (readme, FileResult.skipped(str(readme), Finding(
        "not-a-cpet-export", Severity.INFO, "skipped: no reader recognises it")))]
    store = Store(tmp_path / "jobs.sqlite")
    data = job.load_job(store.path, store_job(store, items, cpet_nb.Settings(), {1: "skipped"}))
    assert "2 inputs: 0 analysed (0 ok, 0 warning), 1 error, 1 skipped" in sections.header_html(
        data)
    assert "<b>0 of 0 analysed tests are flagged for review.</b>" in sections.quality_html(data)
    header, body = rows_by(tables(sections.cohort_html(data))["cohort"])
    assert {r[header.index("n")] for r in body} == {"0"}
    assert {r[header.index("mean ± SD")] for r in body} == {"– ± –"}
    assert len(rows_by(tables(sections.results_html(data))["results"], 2)[1]) == 2
    assert "0 tests record a work rate" in statement.statement_html(data)


def test_every_results_column_is_described_with_its_unit_and_method():
    for name in RESULT_COLUMNS:
        column = columns.describe(name)
        assert column.source in columns.SOURCES
        assert column.method, f"{name}: no method (describe it in cpet_nb.report.columns)"
        assert column.kind in columns.KINDS
        if column.kind in ("number", "count"):
            assert column.unit == columns.unit_of(name)
        if name.startswith(("vt1_", "vt2_")) and column.source in ("model", "consensus"):
            assert column.source in column.label  # "VT1 model VO2", "VT1 consensus VO2"
    unknown = columns.describe("vt1_newmodel_time_s")  # a column of a newer cpet_nb
    assert (unknown.label, unknown.unit, unknown.method) == ("vt1_newmodel_time_s", "s", "")


def test_unknown_jobs_and_stores_are_refused_with_what_exists(tmp_path, stored):
    with pytest.raises(job.UnknownJob, match=r"no job 'nope' in .*jobs.sqlite \(its newest: "
                       + stored.job_id):
        job.load_job(stored.store.path, "nope")
    assert job.load_job(stored.store.path, "latest").job_id == stored.job_id
    with pytest.raises(FileNotFoundError, match="no job store at"):
        job.load_job(tmp_path / "missing.sqlite", "latest")
    assert not (tmp_path / "missing.sqlite").exists()  # looking never creates a store
    with pytest.raises(job.UnknownJob, match="has no jobs"):
        job.load_job(Store(tmp_path / "empty.sqlite").path, "latest")


def test_the_kernel_must_run_this_python(monkeypatch):
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager, NoSuchKernel

    from cpet_nb.report.execute import check_kernel

    other = KernelSpec(argv=["/opt/other/bin/python", "-m", "ipykernel_launcher"],
                       resource_dir="/home/me/.local/share/jupyter/kernels/python3")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: other)
    with pytest.raises(RuntimeError, match=r"runs /opt/other/bin/python, not this Python .*"
                                           r"ipykernel install --sys-prefix"):
        check_kernel()
    mine = KernelSpec(argv=[sys.executable, "-m", "ipykernel_launcher"], resource_dir="/x")
    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", lambda self, name: mine)
    check_kernel()

    def missing(self, name):
        raise NoSuchKernel(name)

    monkeypatch.setattr(KernelSpecManager, "get_kernel_spec", missing)
    with pytest.raises(RuntimeError, match=r"no Jupyter kernel named 'python3'"):
        check_kernel()


def test_importing_the_report_package_stays_light():
    code = ("import sys, cpet_nb.report\n"
            "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & {"papermill", "nbconvert", "nbformat", "nbclient", "bokeh",
                         "jupyter_client", "distributed", "IPython"}


# -- the shipped notebooks -------------------------------------------------------------------

def _notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


@pytest.mark.parametrize("path", _notebooks(), ids=lambda p: p.name)
def test_notebooks_are_clean_and_run_in_the_python3_kernel(path):
    """Named cells, the python3 kernel, and no outputs but those nbval compares (the
    executed outputs, BokehJS included, would add megabytes to every clone)."""
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata.kernelspec.name == "python3"
    for cell in notebook.cells:
        assert re.fullmatch(r"[a-z0-9-]+", cell.id), f"{path.name}: cell id {cell.id!r}"
        if cell.cell_type == "code" and "NBVAL_CHECK_OUTPUT" not in cell.source:
            assert cell.outputs == [], f"{path.name}: outputs left in cell {cell.id!r}"


def test_the_templates_have_a_parameters_cell_papermill_can_read():
    """``papermill --help-notebook`` lists each parameter with its type and help."""
    from papermill.inspection import inspect_notebook

    for name, expected in (("batch_report.ipynb", {"store", "job_id", "per_test", "title"}),
                           ("test_report.ipynb", {"store", "job_id", "file", "title"})):
        path = NOTEBOOKS / name
        assert path.resolve() == (ROOT / "cpet_nb" / "report" / "templates" / name).resolve()
        parameters = inspect_notebook(str(path))
        assert expected <= set(parameters)
        assert all(p["help"] for p in parameters.values())
        assert parameters["store"]["inferred_type_name"] == "str"


# -- executing the templates (a kernel each) ----------------------------------------------

def _report(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpet_nb", "report", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_an_unknown_job_names_the_failing_cell_and_keeps_the_partial_notebook(tmp_path,
                                                                              stored):
    (tmp_path / "out").mkdir()
    mine = tmp_path / "out" / "report.ipynb"  # the user's own notebook, never touched
    mine.write_text("{}")
    run = _report("--store", str(stored.store.path), "--job", "nope", "-o", "out/report.html",
                  cwd=tmp_path)
    assert run.returncode == 1, run.stderr
    assert "the report failed in cell 'load-job'" in run.stderr
    assert "UnknownJob: no job 'nope'" in run.stderr
    partial = tmp_path / "out" / "report.executed.ipynb"
    assert f"the partial notebook, with the failing cell marked, is {partial}" in run.stderr
    assert not (tmp_path / "out" / "report.html").exists()  # no page for a failed report
    notebook = nbformat.read(partial, as_version=4)
    marked = [i for i, c in enumerate(notebook.cells)
              if "papermill-error-cell-tag" in c.metadata.get("tags", [])]
    ids = [c.id for c in notebook.cells]
    assert marked[0] == 0 and marked[1] == ids.index("load-job") - 1  # note, anchor
    assert notebook.cells[ids.index("load-job")].outputs[-1].ename == "UnknownJob"
    assert notebook.cells[ids.index("header")].outputs == []  # never ran
    assert mine.read_text() == "{}"


def _offline(page: str) -> None:
    """Nothing in ``page`` is fetched from elsewhere: no script, style or image from a URL;
    BokehJS is inlined."""
    assert not re.findall(r'<(?:script|img|iframe)[^>]*\ssrc="(?:https?:)?//', page)
    assert not re.findall(r'<link[^>]*\shref="(?:https?:)?//', page)
    assert "cdn.bokeh.org" not in page and "require.min.js" not in page
    assert "Bokeh.embed" in page or "embed_items" in page


@pytest.mark.slow
@pytest.mark.parametrize("per_test", ["none", "sections", "zip"])
def test_per_test_none_sections_and_zip(tmp_path, stored, per_test):
    out = tmp_path / "report.html"
    page_path = cpet_nb.report.batch_report(stored.job_id, stored.store.path, out, per_test,
                                            title="Lab X, spring 2026")
    page = page_path.read_text(encoding="utf-8")
    _offline(page)
    assert "<title>Lab X, spring 2026</title>" in page and "<h1>Lab X, spring 2026</h1>" in page
    assert "store =" not in page and "template of cpet_nb" not in page  # no code, no notes
    stored_ids = {f"test-{idx}" for idx, _ in stored.stored_tests()}
    shown = set(re.findall(r'id="(test-\d+)"', page))
    zipped = cpet_nb.report.tests_zip_path(out)
    assert not cpet_nb.report.executed_notebook_path(out).exists()
    if per_test == "none":
        assert shown == set() and not zipped.exists()
        assert "Not included (per_test=" in page
    elif per_test == "sections":
        assert shown == stored_ids and not zipped.exists()
        assert page.count("exercise-intensity domains (Oxynet model)") == 3  # analysed
    else:
        assert shown == set() and zipped.name in page
        with zipfile.ZipFile(zipped) as archive:
            names = archive.namelist()
            assert names == ["0001-data_test.csv.html", "0002-ramp_real_test_1.csv.html",
                             "0003-_img_src_x_onerror_alert_1_.csv.html", "0005-gone.csv.html"]
            first = archive.read(names[0]).decode("utf-8")
            gone = archive.read(names[-1]).decode("utf-8")
        _offline(first)
        assert "Every measure and how it was made" in first and "panel-vslope" in first
        assert "V-slope" in first and "Beaver, Wasserman &amp; Whipp 1986" in first
        assert "file-not-found" in gone  # an input not analysed: its findings
        assert not zipped.with_name(f"{zipped.stem}-notebooks").exists()


@pytest.mark.slow
def test_the_page_renders_offline_in_a_browser(tmp_path, stored):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("no system Chromium (apt-get install chromium)")
    out = cpet_nb.report.batch_report(stored.job_id, stored.store.path,
                                      tmp_path / "report.html", "sections")
    problems: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=[
            "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page()
            page.route(re.compile(r"^(?!file:|data:|blob:)"), lambda route: (
                problems.append(route.request.url), route.abort()))
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(out.as_uri())
            page.wait_for_function("window.Bokeh !== undefined && Bokeh.documents.length > 0 "
                                   "&& Bokeh.documents.every(d => d.is_idle)", timeout=120_000)
            n_documents = page.evaluate("Bokeh.documents.length")
        finally:
            browser.close()
    assert problems == []
    assert n_documents == 1 + 3  # the batch figures, a domain plot per analysed test


@pytest.mark.slow
def test_a_real_batch_report_with_parameters(tmp_path, bundled_tests):
    """The brief's case: a job of three bundled tests made by cpet_nb.submit on a local
    cluster of one worker, reported with papermill, parameters reaching the notebook."""
    store = tmp_path / "jobs.sqlite"
    batch = cpet_nb.submit(bundled_tests[:3], store=store, workers=1)
    try:
        assert batch.wait().state == "done"
    finally:
        cpet_nb.batch.engine.shutdown()
    run = _report("--store", str(store), "--job", batch.job_id, "-o", "r/report.html",
                  "--per-test", "sections", "--title", "Three tests", "--keep-notebook",
                  cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert re.search(r"cpet-nb: report written in [\d.]+ s: .*r/report.html", run.stderr)
    executed = nbformat.read(tmp_path / "r" / "report.executed.ipynb", as_version=4)
    injected = next(c for c in executed.cells if "injected-parameters" in c.metadata.tags)
    assert f'job_id = "{batch.job_id}"' in injected.source
    assert 'per_test = "sections"' in injected.source
    warnings = [o.get("text", "") for c in executed.cells for o in c.get("outputs", [])
                if o.get("name") == "stderr" or o.get("output_type") == "error"]
    assert warnings == []  # nothing but the report reaches the reader
    page = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "3 inputs: 3 analysed (3 ok, 0 warning), 0 error, 0 skipped" in page
    assert batch.job_id in page and "<h1>Three tests</h1>" in page
    for name in ("data_test.csv", "ramp_real_test_1.csv", "ramp_real_test_2.csv"):
        assert f"{name}: exercise-intensity domains" in page


# -- the scheduled recipe of docs/reports.md -------------------------------------------------

def _recipe() -> tuple[str, str]:
    """The nightly script and the crontab line, as docs/reports.md gives them."""
    text = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    script = re.search(r"<!-- recipe: cpet-nb-nightly -->\n```sh\n(.*?)```", text, re.S)[1]
    cron = re.search(r"<!-- recipe: crontab -->\n```\n(.*?)\n```", text, re.S)[1]
    return script, cron


@pytest.fixture()
def lab(tmp_path):
    """A lab folder, the recipe's script installed, and ``cpet-nb`` on the PATH (this
    Python's)."""
    script, _ = _recipe()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "cpet-nb-nightly").write_text(script)
    (bin_dir / "cpet-nb").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cpet_nb "$@"\n')
    for name in ("cpet-nb-nightly", "cpet-nb"):
        (bin_dir / name).chmod(0o755)
    env = dict(os.environ, CPET_NB_LAB=str(tmp_path / "lab"), CPET_NB_WORKERS="1",
               PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return tmp_path / "lab", bin_dir, env


@pytest.mark.slow
def test_the_nightly_recipe_runs_headless_with_exit_codes_and_log_lines(lab, bundled_tests):
    folder, bin_dir, env = lab
    nightly = [str(bin_dir / "cpet-nb-nightly")]
    first = subprocess.run(nightly, env=env, capture_output=True, text=True, timeout=900)
    assert first.returncode == 0, first.stderr  # nothing new: nothing to do
    assert "cpet-nb-nightly: no new files in" in first.stdout + first.stderr
    for test in bundled_tests[:2]:
        shutil.copy(test, folder / "inbox" / test.name)
    (folder / "inbox" / "notes.txt").write_text("calibration done at 7:30\n")
    second = subprocess.run(nightly, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    log = second.stdout + second.stderr
    assert re.search(r"cpet-nb: job \d{8}-\d{6}-[0-9a-f]{6} in jobs.sqlite", log)
    assert "3 input(s), job done" in log and "skipped: " in log
    assert re.search(r"cpet-nb: report written in [\d.]+ s: ", log)
    assert list((folder / "inbox").iterdir()) == []
    (report,) = (folder / "reports").glob("*-report.html")
    (results,) = (folder / "reports").glob("*-results.csv")
    assert len(pd.read_csv(results)) == 3
    assert "3 inputs: 2 analysed (2 ok, 0 warning), 0 error, 1 skipped" in report.read_text(
        encoding="utf-8")
    (batch,) = (folder / "archive").iterdir()
    assert sorted(p.name for p in batch.iterdir()) == sorted(
        [t.name for t in bundled_tests[:2]] + ["notes.txt"])
    # only files that are not CPET exports: cpet-nb run refuses (2), no report is made
    (folder / "inbox" / "todo.txt").write_text("order more mouthpieces\n")
    third = subprocess.run(nightly, env=env, capture_output=True, text=True, timeout=900)
    assert third.returncode == 2
    assert "no CPET files found in the inputs" in third.stderr
    assert len(list((folder / "reports").glob("*-report.html"))) == 1


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("flock") is None, reason="no flock (util-linux)")
def test_the_crontab_entry_runs_the_recipe_under_a_lock_into_a_log(lab, bundled_tests):
    folder, bin_dir, env = lab
    _, cron = _recipe()
    *assignments, entry = cron.splitlines()
    variables = dict(line.split("=", 1) for line in assignments)
    assert variables["CPET_NB_LAB"] == "/srv/cpet" and "/venv/bin" in variables["PATH"]
    fields = entry.split(None, 5)
    assert fields[:5] == ["15", "2", "*", "*", "*"]  # 02:15 every day
    command = fields[5].replace("/srv/cpet", str(folder))
    (folder / "inbox").mkdir(parents=True)
    shutil.copy(bundled_tests[0], folder / "inbox")
    run = subprocess.run(["sh", "-c", command], env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr
    log = (folder / "logs" / "nightly.log").read_text()
    assert "cpet-nb-nightly: 1 new file(s) moved to" in log
    assert "cpet-nb: report written in" in log
    assert len(list((folder / "reports").glob("*-report.html"))) == 1


def test_the_systemd_units_run_the_recipe():
    text = (ROOT / "docs" / "reports.md").read_text(encoding="utf-8")
    service = re.search(r"<!-- recipe: cpet-nb-nightly.service -->\n```ini\n(.*?)```", text,
                        re.S)[1]
    timer = re.search(r"<!-- recipe: cpet-nb-nightly.timer -->\n```ini\n(.*?)```", text, re.S)[1]
    assert "ExecStart=/usr/local/bin/cpet-nb-nightly" in service
    assert "Environment=CPET_NB_LAB=/srv/cpet" in service and "Type=oneshot" in service
    assert "OnCalendar=*-*-* 02:15:00" in timer and "Persistent=true" in timer
    script, cron = _recipe()
    assert "cpet-nb-nightly" in cron and script.startswith("#!/bin/sh\n")


# -- the command line ----------------------------------------------------------------------------

def test_csv_dialect_flag_of_analyze(tmp_path, ramp_csv):
    out = tmp_path / "r.csv"
    assert main(["analyze", str(ramp_csv), "-o", str(out), "-q",
                             "--csv-dialect", "semicolon"]) == 0
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b";status;review;" in raw.splitlines()[0]
    back = pd.read_csv(out, sep=";", decimal=",", encoding="utf-8-sig")
    assert back["vo2peak_ml_min"].iloc[0] > 1000  # a number, read with its decimal comma


def test_report_refuses_a_bad_output_before_any_work(tmp_path, stored, capsys):
    assert main(["report", "--store", str(stored.store.path), "--job", "latest",
                             "-o", str(tmp_path / "report.pdf")]) == 2
    assert "report.pdf must end in .html" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_report_without_the_jupyter_extra_says_how_to_get_it(tmp_path, stored, capsys,
                                                            monkeypatch):
    monkeypatch.setitem(sys.modules, "papermill", None)  # as if not installed
    assert main(["report", "--store", str(stored.store.path), "--job", "latest",
                 "-o", str(tmp_path / "report.html")]) == 2
    assert ("no report: reports need papermill: pip install 'cpet-nb[jupyter]'"
            in capsys.readouterr().err)


def test_results_rows_line_up_with_the_inputs_that_have_one(stored):
    pairs = stored.stored_tests()
    assert [idx for idx, _ in pairs] == [0, 1, 2, 3, 4]
    assert [row["file"] for _, row in pairs] == stored.files["name"].tolist()
    assert json.loads(stored.files["findings"].iloc[3])[0]["code"] == "not-a-cpet-export"
