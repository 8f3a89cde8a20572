"""The panel in a real browser: ``notebooks/quickstart.ipynb`` in JupyterLab 4, Notebook 7
and Voila, driven by headless Chromium through Playwright (Debian's ``/usr/bin/chromium``;
no browser download). Two sample exports are uploaded through the page's file input, the batch runs,
and the page must show every row, Bokeh canvases, the plots of a selected row, and no error
text or console error. Screenshots go to the test's folder and ``/tmp/panel-shots/``.

Every wait is bounded; the test skips (saying why) without Chromium, Playwright, JupyterLab
or Voila.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from samples import SAMPLES

pytestmark = [pytest.mark.browser, pytest.mark.slow]
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="Playwright for Python is not installed")
PlaywrightTimeout = playwright_api.TimeoutError

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
SHOTS = Path("/tmp/panel-shots")
#: Longest wait for one step (ms): a cold kernel and cluster, a batch of two tests.
STEP_MS = 240_000


@pytest.fixture(scope="module")
def playwright_chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    for module in ("jupyterlab", "voila", "ipywidgets", "jupyter_bokeh"):
        pytest.importorskip(module, reason=f"{module} is not installed (cpet-nb[jupyter])")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture()
def workspace(tmp_path):
    """A folder holding a copy of the quickstart notebook, and the environment of a Jupyter
    server with temporary config and workspace folders that imports this cpet_nb."""
    folder = tmp_path / "work"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")]),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"))
    news = tmp_path / "settings" / "@jupyterlab" / "apputils-extension"
    news.mkdir(parents=True)  # no "get notified about Jupyter news?" toast over the panel
    (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    return folder, env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def _server(argv: list[str], folder: Path, env: dict, ready_url: str):
    """Run a Jupyter server until ``ready_url`` answers (60 s at most), then stop it."""
    log = open(folder.parent / "server.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(argv, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=5):
                    break
            except urllib.error.HTTPError:  # it answers
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("server did not start: " + (
                        folder.parent / "server.log").read_text()[-3000:]) from None
                time.sleep(0.5)
        yield
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(20)
        log.close()


def _samples(bundled_tests) -> list[Path]:
    """Two real exports: from two carts when the samples folder is there."""
    chosen = [SAMPLES / "breeze" / "breeze_bxb.txt", SAMPLES / "zan" / "ramptests" / "01"]
    return chosen if all(p.is_file() for p in chosen) else list(bundled_tests[:2])


def _shoot(page, shots: Path, name: str) -> None:
    shots.mkdir(parents=True, exist_ok=True)
    SHOTS.mkdir(parents=True, exist_ok=True)
    target = shots / f"{name}.png"
    page.screenshot(path=str(target))
    shutil.copy(target, SHOTS / target.name)


def _use_the_panel(page, files: list[Path], shots: Path, name: str) -> None:
    """Upload ``files``, run them, select a row; check what the page shows at each step."""
    upload = page.locator(".cpet-upload")
    upload.wait_for(timeout=STEP_MS)
    _shoot(page, shots, f"{name}-1-opened")
    with page.expect_file_chooser(timeout=STEP_MS) as chooser:
        upload.click()
    chooser.value.set_files([str(f) for f in files])
    intake = page.locator(".cpet-intake-status")
    intake.get_by_text(f"{len(files)} input(s): {len(files)} ready").wait_for(timeout=STEP_MS)
    files_table = page.locator(".cpet-files .slick-row")
    assert files_table.count() == len(files)
    _shoot(page, shots, f"{name}-2-intake")
    page.get_by_role("button", name="Run", exact=True).click()
    page.locator(".cpet-status").get_by_text("job done").wait_for(timeout=STEP_MS)
    rows = page.locator(".cpet-results .slick-row")
    rows.nth(len(files) - 1).wait_for(timeout=STEP_MS)
    assert rows.count() == len(files)
    for i in range(len(files)):  # each file's state, patched in live
        files_table.nth(i).locator(".slick-cell").nth(1).get_by_text(
            re.compile(r"(ok|warning)$")).wait_for(timeout=STEP_MS)
    tests = [rows.nth(i).locator(".slick-cell").nth(2).inner_text() for i in range(len(files))]
    assert sorted(tests) == sorted(f.name for f in files)
    page.locator(".cpet-batch-plots canvas").first.wait_for(timeout=STEP_MS)
    _shoot(page, shots, f"{name}-3-done")
    for attempt in range(3):  # a click while the table redraws can be lost: click another
        row = rows.nth(attempt % len(files))
        chosen = row.locator(".slick-cell").nth(2).inner_text()
        row.locator(".slick-cell").nth(2).click()
        try:
            page.locator(".cpet-selected").get_by_text(f"selected: {chosen}").wait_for(
                timeout=STEP_MS // 4)
            page.locator(".cpet-selected canvas").first.wait_for(timeout=STEP_MS // 4)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
    _shoot(page, shots, f"{name}-4-selected")
    assert page.locator(".cpet-message").inner_text().strip().endswith("done.")
    assert page.locator(".cpet-errors").inner_text().strip() == ""
    text = page.locator("body").inner_text()
    for marker in ("Traceback", "Error", "could not", "NaN"):
        assert marker not in text


#: Notebook 7's JupyterLab extension, when installed, throws in Voila's page ("The getter
#: for the shared module is not a function", @jupyterlab/docregistry); Voila need not load it
#: (docs/panel.md says so).
VOILA_OPTIONS = ['--VoilaConfiguration.extension_denylist=["@jupyter-notebook/lab-extension"]']
#: Requested by Voila's own page template (not by the panel); served empty, as offline.
VOILA_TEMPLATE_CDN = "https://cdn.jsdelivr.net/npm/@fortawesome/fontawesome-free@"


def _offline(route, console: list[str]) -> None:
    """Let requests to this machine through; anything else is an error, except Voila's
    template stylesheet (answered with an empty one)."""
    url = route.request.url
    if url.startswith("http://127.0.0.1:"):
        route.continue_()
    elif url.startswith(VOILA_TEMPLATE_CDN):
        route.fulfill(status=200, content_type="text/css", body="")
    else:
        console.append(f"error: the page asked the internet for {url}")
        route.abort()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1300, "height": 2600})
    console: list[str] = []
    page.route("**/*", lambda route: _offline(route, console))
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e} {e.stack or ''}"))
    page.on("requestfailed", lambda r: console.append(f"requestfailed: {r.url}"))
    page.goto(url, timeout=STEP_MS)
    return page, console


#: Notebook 7.6's own page throws this while loading its settings, with an empty notebook and
#: every lab extension disabled too (seen with notebook 7.6.5 and jupyterlab 4.6.6): not the
#: panel's. Only this error, raised in Notebook's core bundle, is let through.
NOTEBOOK7_OWN_ERROR = re.compile(r"^pageerror: Cannot read properties of undefined \(reading "
                                 r"'schema'\).*/static/notebook/notebook_core\.", re.S)
#: The Jupyter front ends that open a notebook: (command, app class, notebook URL path).
FRONT_ENDS = {"lab": ("lab", "LabApp", "lab/tree"),
              "notebook7": ("notebook", "JupyterNotebookApp", "notebooks")}

#: In a JupyterLab page: wait for the notebook's kernel, then run all its cells.
LAB_RUN_ALL_CELLS = """async () => {
    const app = window.jupyterapp;
    await app.restored;
    const deadline = Date.now() + 120000;
    while (!(app.shell.currentWidget && app.shell.currentWidget.sessionContext)) {
        if (Date.now() > deadline) throw new Error('no notebook');
        await new Promise(r => setTimeout(r, 200));
    }
    await app.shell.currentWidget.sessionContext.ready;
    await app.commands.execute('notebook:run-all-cells');
}"""


@contextlib.contextmanager
def _notebook_page(browser, workspace, front_end: str = "lab"):
    """Start ``front_end`` (:data:`FRONT_ENDS`) on 127.0.0.1 with a token, in the workspace's
    folder and environment, open the quickstart notebook in ``browser`` and run all its
    cells; yields ``(page, console)`` and prints the console at the end."""
    command, app, url_path = FRONT_ENDS[front_end]
    folder, env = workspace
    port, token = _free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "jupyter", command, "--no-browser", "--allow-root",
            "--ServerApp.ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
            f"--{app}.expose_app_in_browser=True", f"--ServerApp.root_dir={folder}"]
    base = f"http://127.0.0.1:{port}"
    with _server(argv, folder, env, f"{base}/api/status?token={token}"):
        page, console = _open(browser, f"{base}/{url_path}/{NOTEBOOK.name}?token={token}")
        page.wait_for_function("window.jupyterapp !== undefined", timeout=STEP_MS)
        page.evaluate(LAB_RUN_ALL_CELLS)
        try:
            yield page, console
        finally:
            print("\n".join(console))


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_quickstart_in_jupyterlab_and_notebook7(playwright_chromium, workspace, bundled_tests,
                                                tmp_path, front_end):
    """The same notebook, run cell by cell, in JupyterLab 4 and in Notebook 7 (built on
    JupyterLab's components: the same commands run its cells)."""
    if front_end == "notebook7":
        pytest.importorskip("notebook", reason="notebook 7 is not installed (cpet-nb[browser])")
    with _notebook_page(playwright_chromium, workspace, front_end) as (page, console):
        _use_the_panel(page, _samples(bundled_tests), tmp_path / "shots", front_end)
    errors = [m for m in console if m.startswith(("error", "pageerror"))
              and not (front_end == "notebook7" and NOTEBOOK7_OWN_ERROR.match(m))]
    assert errors == [], console


def test_quickstart_in_voila(playwright_chromium, workspace, bundled_tests, tmp_path):
    folder, env = workspace
    port, token = _free_port(), secrets.token_hex(16)
    argv = [sys.executable, "-m", "voila", NOTEBOOK.name, "--no-browser", f"--port={port}",
            "--Voila.ip=127.0.0.1", f"--token={token}", *VOILA_OPTIONS]
    base = f"http://127.0.0.1:{port}"
    with _server(argv, folder, env, f"{base}/"):
        page, console = _open(playwright_chromium, f"{base}/?token={token}")
        _use_the_panel(page, _samples(bundled_tests), tmp_path / "shots", "voila")
        assert "import cpet_nb" not in page.locator("body").inner_text()  # code hidden
        errors = [m for m in console if m.startswith(("error", "pageerror"))]
        assert errors == [], [m for m in console if m.startswith(("error", "request"))]


#: One FileUpload selection travels in one websocket message of at most this (bytes).
WEBSOCKET_LIMIT_BYTES = 10 * 2**20
#: The browser's upload speed in the test (bytes/s): slow enough to see the progress.
UPLOAD_BYTES_PER_S = 3_000_000


def test_a_large_selection_uploads_through_the_server_extension(playwright_chromium, workspace,
                                                                bundled_tests, tmp_path):
    """A selection over the websocket limit, chosen with *Upload large selection*, streams
    to the server extension (enabled in this server's config, as installing the package
    does) with the bytes and files sent shown, and ends in the intake table."""
    _, env = workspace
    store = tmp_path / "server-store" / "jobs.sqlite"
    config = Path(env["JUPYTER_CONFIG_DIR"])
    config.mkdir(parents=True, exist_ok=True)
    (config / "jupyter_server_config.json").write_text(json.dumps(
        {"ServerApp": {"jpserver_extensions": {"cpet_nb.server": True}},
         "CpetNb": {"store": str(store)}}))
    selection, total = [], 0
    for path in sorted(bundled_tests, key=lambda p: p.stat().st_size, reverse=True):
        if total > WEBSOCKET_LIMIT_BYTES * 1.05:
            break
        selection.append(path)
        total += path.stat().st_size
    shots = tmp_path / "shots"
    with _notebook_page(playwright_chromium, workspace) as (page, console):
        button = page.locator(".cpet-big-upload button")
        button.wait_for(timeout=STEP_MS)
        assert button.is_enabled(), page.locator(".cpet-big-upload").inner_text()
        network = page.context.new_cdp_session(page)
        network.send("Network.enable")
        network.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1,
            "uploadThroughput": UPLOAD_BYTES_PER_S})
        with page.expect_file_chooser(timeout=STEP_MS) as chooser:
            button.click()
        chooser.value.set_files([str(p) for p in selection])
        status = page.locator(".cpet-big-upload-status")
        status.get_by_text(re.compile(r"MB sent · file \d+ of " + str(len(selection)))
                           ).wait_for(timeout=STEP_MS)
        page.wait_for_function("""() => {
            const bar = document.querySelector('.cpet-big-upload-progress');
            return bar.value > 0 && bar.value < bar.max;
        }""", timeout=STEP_MS)
        _shoot(page, shots, "big-upload-1-sending")
        status.get_by_text(f"✓ {len(selection)} files").wait_for(timeout=STEP_MS)
        network.send("Network.emulateNetworkConditions", {
            "offline": False, "latency": 0, "downloadThroughput": -1,
            "uploadThroughput": -1})
        page.locator(".cpet-intake-status").get_by_text(
            f"{len(selection)} input(s): {len(selection)} ready").wait_for(timeout=STEP_MS)
        _shoot(page, shots, "big-upload-2-intake")
        staged = list((store.parent / (store.name + ".staged")).glob("*/*"))
        assert sorted(p.name for p in staged) == sorted(p.name for p in selection)
        first = page.locator(".cpet-files .slick-row").first.locator(".slick-cell").first
        assert first.inner_text().startswith(str(store.parent))  # the staged folder's files
        text = page.locator("body").inner_text()
        for marker in ("Traceback", "Error", "could not", "refused", "interrupted"):
            assert marker not in text
        errors = [m for m in console if m.startswith(("error", "pageerror"))]
        assert errors == [], console


def test_review_queue_stores_an_override_from_the_browser(playwright_chromium, workspace,
                                                          bundled_tests, tmp_path):
    """In JupyterLab: after a batch, a click in the review queue, a click on a time plot (a
    Bokeh ``Tap`` event reaching the kernel through jupyter_bokeh) and *Set this time* store
    an override; the queue and the results table show it, the machine's value is kept."""
    from cpet_nb.batch.store import Store

    folder, _ = workspace
    shots = tmp_path / "shots"
    with _notebook_page(playwright_chromium, workspace) as (page, console):
        _use_the_panel(page, _samples(bundled_tests), shots, "review")
        queue = page.locator(".cpet-review-queue .slick-row")
        queue.first.wait_for(timeout=STEP_MS)
        test = queue.first.locator(".slick-cell").nth(1).inner_text()
        queue.first.locator(".slick-cell").nth(1).click()
        page.locator(".cpet-review-heading").get_by_text(test).wait_for(timeout=STEP_MS)
        plot = page.locator(".cpet-review-plots canvas").first  # the domains, over time
        plot.wait_for(timeout=STEP_MS)
        for _ in range(100):  # bounded: the plots are laid out after they are attached
            plot.scroll_into_view_if_needed()
            box = plot.bounding_box()
            if box is not None and box["width"] > 100:
                break
            time.sleep(0.2)
        page.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.45)
        status = page.locator(".cpet-review-status")
        status.get_by_text(re.compile(r"VT1 at [\d,]+ s picked")).wait_for(timeout=STEP_MS)
        _shoot(page, shots, "review-5-picked")
        page.get_by_role("button", name="Set this time").click()
        status.get_by_text("Stored: VT1").wait_for(timeout=STEP_MS)
        page.locator(".cpet-review-queue .slick-row").first.get_by_text(
            "expert").wait_for(timeout=STEP_MS)
        page.locator(".cpet-results .slick-row").get_by_text("expert").first.wait_for(
            timeout=STEP_MS)
        _shoot(page, shots, "review-6-stored")
        errors = [m for m in console if m.startswith(("error", "pageerror"))]
        assert errors == [], console
    store = Store(folder / "quickstart-jobs.sqlite")
    (job,) = store.jobs()["job_id"]
    (stored,) = store.overrides(job).itertuples()
    assert (Path(stored.file).name, stored.threshold, stored.source) == (test, "vt1", "expert")
    assert stored.time_s == int(stored.time_s)  # on the 1 s grid
    row = store.results(job).set_index("file").loc[stored.file]
    assert (row["vt1_final_time_s"], row["vt1_source"]) == (stored.time_s, "expert")
    assert row["vt1_consensus_time_s"] == stored.previous_time_s  # the machine's, kept
