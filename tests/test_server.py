"""The Jupyter server extension over real HTTP: a ``jupyter server`` subprocess on 127.0.0.1
(tests/jupyter_process.py), every endpoint and error code, two users, limits, and
schemathesis against the served OpenAPI document.

Users are tokens of a small identity provider in the test server's config (alice, bob, ...:
:data:`jupyter_process.TOKENS`); each test uses its own user where rate or running-batch
limits could otherwise carry over between tests.
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from conftest import distinct_copies

import cpet_nb
import cpet_nb.report
from cpet_nb.batch import preview_inputs
from cpet_nb.batch.store import RESULT_STATUSES, Store
from cpet_nb.settings import Settings, tomllib

pytest.importorskip("jupyter_server")
pytest.importorskip("python_multipart")
requests = pytest.importorskip("requests")
from jupyter_process import JupyterServer  # noqa: E402

from cpet_nb.io.exports import TABLE_FORMATS  # noqa: E402
from cpet_nb.server.errors import ERRORS  # noqa: E402
from cpet_nb.server.handlers import ROUTES  # noqa: E402
from cpet_nb.server.service import MEDIA_TYPES, REQUEST_SETTINGS  # noqa: E402
from cpet_nb.server.uploads import MultipartIntake, UploadLimits  # noqa: E402

pytestmark = pytest.mark.server

REPO = Path(__file__).parent.parent
#: Small limits, so that the 413 and 429 answers are cheap to provoke.
LIMITS = {"cluster_min_workers": 1, "cluster_max_workers": 1, "max_body_mb": 5.0,
          "max_file_mb": 2.0, "max_files": 10, "submissions_per_minute": 60,
          "max_running_batches": 2, "min_free_disk_mb": 1.0, "min_free_memory_mb": 1.0}
#: A report maker for the second server while cpet_nb.report has none of its own: the
#: tests then check the server's side (202 while making, the HTML, the sandbox header).
STAND_IN_REPORT = '''
import html
from pathlib import Path
import cpet_nb.report

if not hasattr(cpet_nb.report, "batch_report"):
    def batch_report(job_id, store, out):
        names = store.results(job_id)["file"].tolist()
        Path(out).write_text("<html><body>" + "".join(
            f"<p>{html.escape(n)}</p>" for n in names) + "</body></html>")

    cpet_nb.report.batch_report = batch_report
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with JupyterServer(tmp_path_factory.mktemp("jupyter"), LIMITS) as running:
        yield running


@pytest.fixture(scope="module")
def second_server(server, tmp_path_factory):
    """Another server on the same store (as on a JupyterHub), with a report maker, a disk
    minimum no disk meets, and jupyter_server's default ``allow_unauthenticated_access``
    (the extension's own check is then what refuses unauthenticated requests)."""
    limits = LIMITS | {"store": str(server.store), "min_free_disk_mb": 1e12}
    config = STAND_IN_REPORT + "\nc.ServerApp.allow_unauthenticated_access = True\n"
    with JupyterServer(tmp_path_factory.mktemp("jupyter2"), limits,
                       config=config) as running:
        yield running


@pytest.fixture(scope="module")
def tests_in_root(server, bundled_tests):
    """Distinct copies of bundled tests in the server's root: ``study`` (3 files) and
    ``long-*`` folders of 100 (batches that run for many seconds on one worker)."""
    folders = {"study": distinct_copies(bundled_tests, server.root / "study", 3)}
    for i, name in enumerate(("long-a", "long-b", "long-c", "long-d")):
        folders[name] = distinct_copies(bundled_tests, server.root / name, 100,
                                        start=1000 * (i + 1))
    return folders


@pytest.fixture(scope="module")
def alice_job(server, bundled_tests):
    """alice's finished upload batch: two bundled tests and an unrecognised file."""
    session = server.session("alice")
    files = [("files", (p.name, p.read_bytes())) for p in bundled_tests[:2]]
    files.append(("files", ("notes.txt", b"not a CPET export")))
    reply = session.post(f"{server.api}/batches", files=files,
                         data={"settings": json.dumps({"rer_criterion": 1.05})})
    assert reply.status_code == 202, reply.text
    return reply, server.wait(session, reply.json()["job_id"])


def error(reply, status: int, code: str) -> dict:
    """The JSON error of ``reply``, checked against its status and code."""
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json()
    assert body["code"] == code, body
    assert ERRORS[code][0] == status
    return body


def assert_request_folders_removed(server) -> None:
    """Every request's own folder under the store's ``.incoming`` is gone (removed after the
    answer is sent, so waited for a little)."""
    incoming = server.store.with_name(server.store.name + ".incoming")
    deadline = time.monotonic() + 10
    while list(incoming.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(incoming.iterdir()) == []


# -- installation ------------------------------------------------------------------------


def test_the_extension_is_enabled_by_its_installed_config_file(tmp_path):
    """The data file installed with the package enables the extension, at the place
    jupyter_server reads (sys.prefix/etc/jupyter), and the extension validates."""
    from jupyter_core.paths import ENV_CONFIG_PATH

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    data_files = project["tool"]["setuptools"]["data-files"]
    target, = (t for t, files in data_files.items() if any("cpet_nb.json" in f for f in files))
    assert Path(sys.prefix) / target == Path(ENV_CONFIG_PATH[0]) / "jupyter_server_config.d"
    source = REPO / data_files[target][0]
    config = tmp_path / "config" / "jupyter_server_config.d"
    config.mkdir(parents=True)
    (config / source.name).write_bytes(source.read_bytes())
    listed = subprocess.run(
        [sys.executable, "-m", "jupyter_server", "extension", "list"], capture_output=True,
        text=True, env=os.environ | {"JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
        timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)
    user_section = text.split("Config dir:")[1]
    assert "cpet_nb.server enabled" in user_section
    assert re.search(r"cpet_nb\.server +OK", user_section), user_section  # validated


# -- authentication ----------------------------------------------------------------------

ENDPOINTS = [("get", "/batches"), ("post", "/batches"), ("get", "/batches/x"),
             ("get", "/batches/x/results"), ("post", "/batches/x/cancel"),
             ("get", "/batches/x/report"), ("post", "/batches/x/report"), ("get", "/health"),
             ("get", "/openapi.json"), ("get", "/no-such-endpoint"), ("get", "/uploads"),
             ("post", "/uploads"), ("get", "/uploads/x"), ("delete", "/uploads/x")]


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "token wrong"}],
                         ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("which", ["server", "second_server"])
def test_every_endpoint_refuses_an_unauthenticated_request(request, which, method, path,
                                                           headers):
    running = request.getfixturevalue(which)
    reply = requests.request(method, running.api + path, headers=headers,
                             json={"paths": ["x"]} if method == "post" else None)
    error(reply, 403, "not-authenticated")


def test_a_cookie_authenticated_post_needs_the_xsrf_header(server, tests_in_root):
    browser = requests.Session()  # logs in once with the token, then has only cookies
    assert browser.get(f"{server.url}/api/status?token=erin-token").ok
    browser.get(f"{server.url}/login")  # a Jupyter page: sets the _xsrf cookie
    xsrf = browser.cookies["_xsrf"]
    body = {"paths": ["study"]}
    error(browser.post(f"{server.api}/batches", json=body), 403, "xsrf-failed")
    error(browser.post(f"{server.api}/batches/x/cancel"), 403, "xsrf-failed")
    assert browser.get(f"{server.api}/batches").ok  # GET needs no XSRF header
    reply = browser.post(f"{server.api}/batches", json=body, headers={"X-XSRFToken": xsrf})
    assert reply.status_code == 202, reply.text
    server.wait(browser, reply.json()["job_id"])


# -- a batch's life ----------------------------------------------------------------------


def test_an_upload_batch_lists_every_input_and_runs_to_its_results(server, alice_job,
                                                                   bundled_tests):
    reply, final = alice_job
    accepted = reply.json()
    names = [p.name for p in bundled_tests[:2]] + ["notes.txt"]
    assert [f["name"] for f in accepted["files"]] == names
    assert {f["state"] for f in accepted["files"]} <= {"pending", "running", "done"}
    assert accepted["files"][0]["size_bytes"] == bundled_tests[0].stat().st_size
    assert reply.headers["Location"] == f"/cpet-nb/api/v1/batches/{accepted['job_id']}"
    assert final["state"] == "done" and final["fraction_done"] == 1.0 and final["eta_s"] == 0
    assert final["counts"]["ok"] == 2 and final["counts"]["error"] == 1
    notes = final["files"][2]
    assert notes["status"] == "error"
    assert [f["code"] for f in notes["findings"]] == ["unsupported-format"]
    assert [job["job_id"] for job in server.session("alice").get(
        f"{server.api}/batches").json()["jobs"]] == [accepted["job_id"]]


def test_a_poll_with_the_current_etag_gets_304_without_a_body(server, alice_job):
    reply, final = alice_job
    url = f"{server.api}/batches/{reply.json()['job_id']}"
    session = server.session("alice")
    first = session.get(url)
    assert first.status_code == 200 and first.json()["state"] == final["state"]
    again = session.get(url, headers={"If-None-Match": first.headers["Etag"]})
    assert again.status_code == 304 and again.content == b""
    other = session.get(url, headers={"If-None-Match": '"not-this-one"'})
    assert other.status_code == 200 and other.json() == first.json()


@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "parquet"])
def test_results_in_every_format_match_the_store(server, alice_job, fmt):
    job_id = alice_job[1]["job_id"]
    reply = server.session("alice").get(f"{server.api}/batches/{job_id}/results",
                                        params={"format": fmt})
    assert reply.status_code == 200, reply.text
    assert reply.headers["X-CPET-NB-Partial"] == "false"
    assert reply.headers["X-CPET-NB-Job-State"] == "done"
    import pandas as pd

    readers = {"json": lambda b: pd.read_json(io.BytesIO(b), orient="records"),
               "csv": lambda b: pd.read_csv(io.BytesIO(b)),
               "xlsx": lambda b: pd.read_excel(io.BytesIO(b), engine="calamine"),
               "parquet": lambda b: pd.read_parquet(io.BytesIO(b))}
    table = readers[fmt](reply.content)
    store = Store(server.store)  # the server's store, read directly
    expected = store.results(job_id)
    assert table["file"].tolist() == expected["file"].tolist()
    pd.testing.assert_series_equal(table["vt1_vo2_ml_min"], expected["vt1_vo2_ml_min"],
                                   check_dtype=False)
    assert store.job(job_id)["settings"]["rer_criterion"] == 1.05  # given with the upload


def test_uploads_are_removed_when_their_job_ends(server, alice_job):
    job_id = alice_job[1]["job_id"]
    store = Store(server.store)
    assert not store.upload_dir(job_id).exists()
    incoming = server.store.with_name(server.store.name + ".incoming")
    assert list(incoming.iterdir()) == []


def test_zip_uploads_and_sanitised_names(server, bundled_tests):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for path in bundled_tests[2:4]:
            zf.write(path, f"visit/{path.name}")
    session = server.session("alice")
    files = [("files", ("../../outside.zip", archive.getvalue())),
             ("files", ("..\\..\\win\x07dows.csv", bundled_tests[4].read_bytes()))]
    reply = session.post(f"{server.api}/batches", files=files)
    assert reply.status_code == 202, reply.text
    final = server.wait(session, reply.json()["job_id"])
    assert [f["name"] for f in final["files"]] == [
        f"outside.zip/visit/{bundled_tests[2].name}",
        f"outside.zip/visit/{bundled_tests[3].name}", "win_dows.csv"]
    assert final["counts"]["ok"] == 3
    assert not (server.root.parent / "outside.zip").exists()


def test_server_side_paths_folders_and_patterns(server, tests_in_root):
    session = server.session("alice")
    reply = session.post(f"{server.api}/batches", json={"paths": ["study/*.csv"]})
    assert reply.status_code == 202, reply.text
    final = server.wait(session, reply.json()["job_id"])
    assert [Path(f["name"]).name for f in final["files"]] == \
        [p.name for p in tests_in_root["study"]]
    assert final["state"] == "done" and final["counts"]["ok"] == 3
    # the same files again: results are reused, the job is done at once
    again = session.post(f"{server.api}/batches", json={"paths": ["study"]}).json()
    assert server.wait(session, again["job_id"])["counts"]["reused"] == 3


def test_a_running_batch_reports_partial_results_and_can_be_cancelled(server, tests_in_root):
    session = server.session("erin")
    reply = session.post(f"{server.api}/batches", json={"paths": ["long-a"]})
    assert reply.status_code == 202, reply.text
    job_id = reply.json()["job_id"]
    status = server.wait(session, job_id, until="running")
    assert status["n_files"] == 100
    results = session.get(f"{server.api}/batches/{job_id}/results")
    assert results.headers["X-CPET-NB-Partial"] == "true"
    assert len(results.json()) < 100
    cancelled = session.post(f"{server.api}/batches/{job_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["counts"]["cancelled"] > 0
    body = error(session.post(f"{server.api}/batches/{job_id}/cancel"), 409, "job-finished")
    assert body["state"] == "cancelled"


def test_a_user_may_run_only_so_many_batches_at_once(server, tests_in_root):
    session = server.session("dave")
    started = []
    for name in ("long-b", "long-c"):
        reply = session.post(f"{server.api}/batches", json={"paths": [name]})
        assert reply.status_code == 202, reply.text
        started.append(reply.json()["job_id"])
    refused = session.post(f"{server.api}/batches", json={"paths": ["long-d"]})
    body = error(refused, 429, "too-many-batches")
    assert body["limit"] == {"name": "max_running_batches", "value": 2, "unit": "batches"}
    assert int(refused.headers["Retry-After"]) >= 1
    # another user is not held back by dave's batches
    other = server.session("bob").post(f"{server.api}/batches", json={"paths": ["study"]})
    assert other.status_code == 202, other.text
    for job_id in started:
        assert session.post(f"{server.api}/batches/{job_id}/cancel").json()["state"] == \
            "cancelled"


def test_submissions_are_rate_limited_per_user(server):
    session = server.session("carol")
    for _ in range(LIMITS["submissions_per_minute"]):
        error(session.post(f"{server.api}/batches", json={"paths": ["missing.csv"]}), 422,
              "path-not-found")
    limited = session.post(f"{server.api}/batches", json={"paths": ["missing.csv"]})
    body = error(limited, 429, "rate-limited")
    assert 0 < body["retry_after_s"] <= 60 and int(limited.headers["Retry-After"]) >= 1
    assert body["limit"]["name"] == "submissions_per_minute"
    assert server.session("carol").get(f"{server.api}/batches").ok  # reading is not limited


# -- another user ------------------------------------------------------------------------


def test_a_second_user_neither_sees_nor_touches_the_first_users_job(server, alice_job):
    job_id = alice_job[1]["job_id"]
    bob = server.session("bob")
    assert job_id not in [j["job_id"] for j in bob.get(f"{server.api}/batches").json()["jobs"]]
    for method, path in [("get", ""), ("get", "/results"), ("post", "/cancel"),
                         ("get", "/report"), ("post", "/report")]:
        error(bob.request(method, f"{server.api}/batches/{job_id}{path}"), 404, "unknown-job")


def test_a_shared_store_keeps_each_users_jobs_apart(server, second_server, alice_job):
    job_id = alice_job[1]["job_id"]
    listed = second_server.session("alice").get(f"{second_server.api}/batches").json()["jobs"]
    assert job_id in [j["job_id"] for j in listed]
    error(second_server.session("bob").get(f"{second_server.api}/batches/{job_id}"), 404,
          "unknown-job")


# -- staged uploads (the panel's big selections) ------------------------------------------


def staged_area(server) -> Path:
    return server.store.with_name(server.store.name + ".staged")


def test_a_staged_upload_keeps_its_files_for_its_owner_until_deleted(server, bundled_tests):
    owner, other = server.session("bob"), server.session("dave")
    first, second = bundled_tests[5].read_bytes(), bundled_tests[6].read_bytes()
    files = [("files", ("visit/a.csv", first)), ("files", ("..\\A.csv", second)),
             ("files", ("notes.txt", b"not a CPET export"))]
    reply = owner.post(f"{server.api}/uploads", files=files)
    assert reply.status_code == 201, reply.text
    staged = reply.json()
    upload_id, folder = staged["upload_id"], Path(staged["folder"])
    assert reply.headers["Location"] == f"/cpet-nb/api/v1/uploads/{upload_id}"
    assert folder.parent == staged_area(server)
    assert staged["files"] == [{"name": "a.csv", "size_bytes": len(first)},
                               {"name": "A (2).csv", "size_bytes": len(second)},
                               {"name": "notes.txt", "size_bytes": 17}]
    assert staged["total_bytes"] == len(first) + len(second) + 17
    assert sorted(p.name for p in folder.iterdir()) == ["A (2).csv", "a.csv", "notes.txt"]
    assert (folder / "A (2).csv").read_bytes() == second
    assert folder.stat().st_mode & 0o077 == 0  # private to the server's account
    assert staged["expires_at"] > staged["created_at"]
    assert owner.get(reply.headers["Location"].replace("/cpet-nb/api/v1", server.api,
                                                       1)).json() == staged
    assert upload_id in [u["upload_id"] for u in owner.get(f"{server.api}/uploads").json()[
        "uploads"]]
    # the kernel's view: the folder is an ordinary path input
    preview = preview_inputs([folder])
    assert preview["state"].tolist() == ["ready", "ready", "skipped"]
    # another user neither sees, reads nor removes it
    assert upload_id not in [u["upload_id"] for u in other.get(f"{server.api}/uploads").json()[
        "uploads"]]
    error(other.get(f"{server.api}/uploads/{upload_id}"), 404, "unknown-upload")
    error(other.delete(f"{server.api}/uploads/{upload_id}"), 404, "unknown-upload")
    assert (folder / "a.csv").read_bytes() == first
    for wrong in ("0" * 32, "%2E%2E", "x" * 40):  # %2E%2E: ".." once decoded
        error(owner.get(f"{server.api}/uploads/{wrong}"), 404, "unknown-upload")
    removed = owner.delete(f"{server.api}/uploads/{upload_id}")
    assert removed.status_code == 204 and removed.content == b""
    assert not folder.exists() and not (folder.parent / f"{upload_id}.json").exists()
    error(owner.get(f"{server.api}/uploads/{upload_id}"), 404, "unknown-upload")
    incoming = server.store.with_name(server.store.name + ".incoming")
    assert list(incoming.iterdir()) == []  # the request's own folder is gone


def test_a_browser_stages_an_upload_with_its_login_cookie_and_xsrf_header(server):
    browser = requests.Session()  # as the panel's upload widget does (XMLHttpRequest)
    assert browser.get(f"{server.url}/api/status?token=erin-token").ok
    browser.get(f"{server.url}/login")
    files = [("files", ("a.csv", b"time,VO2\n"))]
    error(browser.post(f"{server.api}/uploads", files=files), 403, "xsrf-failed")
    reply = browser.post(f"{server.api}/uploads", files=files,
                         headers={"X-XSRFToken": browser.cookies["_xsrf"]})
    assert reply.status_code == 201, reply.text
    url = f"{server.api}/uploads/{reply.json()['upload_id']}"
    error(browser.delete(url), 403, "xsrf-failed")
    assert browser.delete(url, headers={"X-XSRFToken": browser.cookies["_xsrf"]}).ok


def test_staging_refuses_what_batches_refuse(server):
    session = server.session("bob")
    url = f"{server.api}/uploads"
    before = session.get(url).json()["uploads"]
    body = error(session.post(url, files=[("files", ("a.csv", b"x" * 6_000_000))]), 413,
                 "body-too-large")
    assert body["limit"]["name"] == "max_body_mb"
    body = error(session.post(url, files=[("files", ("big.csv", b"x" * 2_500_000))]), 413,
                 "upload-too-large")
    assert body["file"] == "big.csv" and body["limit"]["name"] == "max_file_mb"
    error(session.post(url, files=[("files", (f"{i}.csv", b"x")) for i in range(11)]), 413,
          "too-many-files")
    reply = session.post(url, files=[("files", ("a.csv", b"x"))], data={"settings": "{}"})
    assert error(reply, 400, "unknown-field")["field"] == "settings"  # files only
    error(session.post(url, json={"paths": ["study"]}), 415, "unsupported-media-type")
    from urllib3 import encode_multipart_formdata

    empty, content_type = encode_multipart_formdata([])
    error(session.post(url, data=empty, headers={"Content-Type": content_type}), 422,
          "no-analysable-file")
    assert session.get(url).json()["uploads"] == before  # nothing was staged
    assert_request_folders_removed(server)


def test_staging_is_refused_when_resources_are_short(second_server):
    reply = second_server.session("alice").post(f"{second_server.api}/uploads",
                                                files=[("files", ("a.csv", b"x"))])
    assert error(reply, 503, "insufficient-resources")["refusing"] == ["disk"]


def test_staged_uploads_expire(tmp_path):
    """The hourly clean-up removes staged uploads (folder and record) once
    ``upload_expiry_hours`` old; an expired upload is unknown at once, cleaned or not."""
    from cpet_nb.server.config import CpetNb
    from cpet_nb.server.service import BatchService
    from cpet_nb.server.uploads import ReceivedFile

    service = BatchService(CpetNb(store=str(tmp_path / "jobs.sqlite"),
                                  upload_expiry_hours=1.0), tmp_path)
    received = []
    for name in ("a.csv", "b.csv"):
        path = service.upload_folder() / "0"
        path.write_bytes(b"x")
        received.append(ReceivedFile(name, path, 1))
    old, fresh = (service.stage_uploads("ann", [f]) for f in received)
    assert {u["upload_id"] for u in service.uploads("ann")} == {old["upload_id"],
                                                                fresh["upload_id"]}
    assert service.uploads("bob") == []
    two_hours_ago = time.time() - 7200
    for path in (Path(old["folder"]), service.staged / f"{old['upload_id']}.json"):
        os.utime(path, (two_hours_ago, two_hours_ago))
    service.cleanup()
    assert not Path(old["folder"]).exists()
    assert sorted(p.name for p in service.staged.iterdir()) == sorted(
        [fresh["upload_id"], f"{fresh['upload_id']}.json"])
    assert [u["upload_id"] for u in service.uploads("ann")] == [fresh["upload_id"]]
    record = json.loads((service.staged / f"{fresh['upload_id']}.json").read_text())
    record["expires_at"] = "2000-01-01T00:00:00+00:00"
    (service.staged / f"{fresh['upload_id']}.json").write_text(json.dumps(record))
    from cpet_nb.server.errors import ApiError

    with pytest.raises(ApiError) as refused:
        service.upload("ann", fresh["upload_id"])
    assert refused.value.code == "unknown-upload"
    for pool in (service.pool, service.upload_pool, service.report_pool):
        pool.shutdown()


def test_jupyterlab_pages_say_where_the_upload_endpoint_is():
    """The page config of JupyterLab and Notebook 7 pages carries the uploads URL and the
    limits (how the panel's upload widget finds the API); an earlier hook still runs."""
    from types import SimpleNamespace

    from cpet_nb.server.handlers import PAGE_CONFIG_KEY, add_page_config

    service = SimpleNamespace(limits=UploadLimits(5_000_000, 2_000_000, 10))
    settings = {"base_url": "/user/ann/",
                "page_config_hook": lambda handler, config: config | {"hubUser": "ann"}}
    add_page_config(settings, service)
    config = settings["page_config_hook"](None, {"baseUrl": "/user/ann/"})
    assert config["hubUser"] == "ann" and config["baseUrl"] == "/user/ann/"
    assert config[PAGE_CONFIG_KEY] == {"uploads": "/user/ann/cpet-nb/api/v1/uploads",
                                       "max_body_bytes": 5_000_000,
                                       "max_file_bytes": 2_000_000, "max_files": 10}


# -- errors ------------------------------------------------------------------------------


def test_unknown_jobs_and_endpoints_are_404(server):
    session = server.session("alice")
    for method, path in [("get", ""), ("get", "/results"), ("post", "/cancel"),
                         ("get", "/report"), ("post", "/report")]:
        error(session.request(method, f"{server.api}/batches/20990101-000000-abcdef{path}"),
              404, "unknown-job")
    error(session.get(f"{server.api}/batches/x/nothing"), 404, "not-found")
    error(session.put(f"{server.api}/batches"), 405, "method-not-allowed")


def test_bodies_and_files_over_the_limits_are_413(server):
    session = server.session("alice")
    url = f"{server.api}/batches"
    body = error(session.post(url, files=[("files", ("a.csv", b"x" * 6_000_000))]), 413,
                 "body-too-large")
    assert body["limit"] == {"name": "max_body_mb", "value": 5.0, "unit": "MB"}
    body = error(session.post(url, files=[("files", ("big.csv", b"x" * 2_500_000))]), 413,
                 "upload-too-large")
    assert body["file"] == "big.csv" and body["limit"]["name"] == "max_file_mb"
    body = error(session.post(url, files=[("files", (f"{i}.csv", b"x")) for i in range(11)]),
                 413, "too-many-files")
    assert body["limit"]["value"] == 10

    def chunks(files, chunks_per_file):  # no Content-Length: a chunked body
        for i in range(files):
            yield (f'--b\r\nContent-Disposition: form-data; name="files"; filename="{i}.csv"'
                   '\r\n\r\n').encode()
            for _ in range(chunks_per_file):
                yield b"x" * 65536
            yield b"\r\n"
        yield b"--b--\r\n"
    chunked = {"Content-Type": "multipart/form-data; boundary=b"}
    error(session.post(url, data=chunks(1, 40), headers=chunked), 413, "upload-too-large")
    body = error(session.post(url, data=chunks(4, 25), headers=chunked), 413,
                 "body-too-large")  # 4 files of 1.6 MB
    assert body["limit"]["name"] == "max_body_mb"
    assert_request_folders_removed(server)


@pytest.mark.parametrize("body,content_type,code,field", [
    (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.csv\"\r\n\r\nabc",
     "multipart/form-data; boundary=b", "malformed-multipart", "body"),
    (b"whatever", "multipart/form-data", "malformed-multipart", "Content-Type"),
    (b"--b\r\nContent-Type: text/plain\r\n\r\nabc\r\n--b--\r\n",
     "multipart/form-data; boundary=b", "malformed-multipart", "body"),
    (b"--b\r\nContent-Disposition: form-data; name=\"extra\"\r\n\r\n1\r\n--b--\r\n",
     "multipart/form-data; boundary=b", "unknown-field", "extra"),
    (b"{\"paths\": [", "application/json", "malformed-request", "body"),
    (b"[\"study\"]", "application/json", "malformed-request", "body"),
    (b"{\"paths\": []}", "application/json", "malformed-request", "paths"),
    (b"{\"paths\": [\"study\"], \"force\": true}", "application/json", "unknown-field",
     "force"),
    (b"{\"paths\": [\"../etc/passwd\"]}", "application/json", "path-outside-root", "paths[0]"),
    (b"{\"paths\": [\"study\", \"/etc/passwd\"]}", "application/json", "path-outside-root",
     "paths[1]"),
])
def test_malformed_requests_are_400(server, tests_in_root, body, content_type, code, field):
    reply = server.session("alice").post(f"{server.api}/batches", data=body,
                                         headers={"Content-Type": content_type})
    assert error(reply, 400, code)["field"] == field


def test_symbolic_links_out_of_the_root_are_refused(server, tests_in_root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.csv").write_bytes(tests_in_root["study"][0].read_bytes())
    root = server.root
    (root / "linked-dir").symlink_to(outside)
    (root / "linked-file.csv").symlink_to(outside / "secret.csv")
    (root / "mixed").mkdir()
    (root / "mixed" / "ok.csv").write_bytes(tests_in_root["study"][1].read_bytes())
    (root / "mixed" / "escape.csv").symlink_to(outside / "secret.csv")
    session = server.session("alice")
    before = session.get(f"{server.api}/batches").json()["jobs"]
    for path in ["linked-dir", "linked-dir/secret.csv", "linked-file.csv", "mixed",
                 "mixed/*.csv", "linked-*"]:
        reply = session.post(f"{server.api}/batches", json={"paths": [path]})
        assert error(reply, 400, "path-outside-root")["field"] == "paths[0]", path
    assert session.get(f"{server.api}/batches").json()["jobs"] == before


def test_unsupported_media_type_is_415(server):
    reply = server.session("alice").post(f"{server.api}/batches", data=b"study",
                                         headers={"Content-Type": "text/plain"})
    error(reply, 415, "unsupported-media-type")


def test_nothing_to_analyse_and_bad_settings_are_422(server, tests_in_root):
    from urllib3 import encode_multipart_formdata

    session = server.session("alice")
    url = f"{server.api}/batches"
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "no tests here")
    body = error(session.post(url, files=[("files", ("empty.zip", archive.getvalue()))]), 422,
                 "no-analysable-file")
    assert body["files"] == ["empty.zip"]
    (server.root / "docs-only").mkdir()
    (server.root / "docs-only" / "README.md").write_text("# notes\n")
    error(session.post(url, json={"paths": ["docs-only"]}), 422, "no-analysable-file")
    only_settings, content_type = encode_multipart_formdata([("settings", "{}")])
    error(session.post(url, data=only_settings, headers={"Content-Type": content_type}), 422,
          "no-analysable-file")
    error(session.post(url, json={"paths": ["study/none-*.csv"]}), 422, "no-analysable-file")
    error(session.post(url, json={"paths": ["missing.csv"]}), 422, "path-not-found")
    for settings, field in [({"workers": 8}, "settings.workers"),
                            ({"no_such": 1}, "settings.no_such"),
                            ({"rer_criterion": 7.0}, "settings"),
                            ({"vo2peak_window": "long"}, "settings")]:
        reply = session.post(url, json={"paths": ["study"], "settings": settings})
        assert error(reply, 422, "invalid-settings")["field"] == field
    files = [("files", ("a.csv", tests_in_root["study"][0].read_bytes()))]
    reply = session.post(url, files=files, data={"settings": json.dumps({"peak_within": 3})})
    error(reply, 422, "invalid-settings")


# -- reports -----------------------------------------------------------------------------


def test_reports_are_made_on_request_and_served_sandboxed(server, second_server, alice_job):
    job_id = alice_job[1]["job_id"]
    alice = second_server.session("alice")
    url = f"{second_server.api}/batches/{job_id}/report"
    error(alice.get(url), 404, "report-not-made")
    made = alice.post(url)
    assert made.status_code == 202 and made.json() == {"job_id": job_id, "report": "making"}
    assert made.headers["Location"] == f"/cpet-nb/api/v1/batches/{job_id}/report"
    deadline = time.monotonic() + 300
    while (reply := alice.get(url)).status_code == 202 and time.monotonic() < deadline:
        assert reply.json()["report"] == "making"
        time.sleep(0.5)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("text/html")
    assert reply.headers["Content-Security-Policy"].startswith("sandbox allow-scripts")
    assert "<html" in reply.text.lower()


@pytest.mark.skipif(hasattr(cpet_nb.report, "batch_report"),
                    reason="cpet_nb.report.batch_report exists: reports can be made")
def test_without_a_report_maker_reports_are_501(server, tests_in_root):
    alice = server.session("alice")
    job_id = alice.post(f"{server.api}/batches", json={"paths": ["study"]}).json()["job_id"]
    server.wait(alice, job_id)
    for method in ("get", "post"):
        body = error(alice.request(method, f"{server.api}/batches/{job_id}/report"), 501,
                     "report-unavailable")
        assert "batch_report" in body["message"]


def test_a_report_waits_for_its_job_to_end(server, tests_in_root):
    session = server.session("bob")
    job_id = session.post(f"{server.api}/batches", json={"paths": ["long-d"]}).json()["job_id"]
    try:
        body = error(session.post(f"{server.api}/batches/{job_id}/report"), 409, "job-running")
        assert body["state"] == "running"
    finally:
        session.post(f"{server.api}/batches/{job_id}/cancel")


# -- health ------------------------------------------------------------------------------


def test_health_reports_cluster_store_disk_and_memory(server, alice_job):
    reply = server.session("alice").get(f"{server.api}/health")
    assert reply.status_code == 200, reply.text
    health = reply.json()
    assert health["status"] == "ok" and health["refusing"] == []
    assert health["store"]["integrity"] == "ok"
    assert health["store"]["size_bytes"] >= server.store.stat().st_size
    assert health["disk"]["free_bytes"] > 0 and health["memory"]["available_bytes"] > 0
    cluster = health["cluster"]  # the first batch started the adaptive cluster
    assert cluster["workers"] == cluster["threads"] == cluster["analysis_processes"] == 1
    assert 30 * 2**20 < cluster["analysis_memory_bytes"] < cluster["memory_bytes"]
    assert cluster["memory_limit_bytes"] == 0  # the limit is per file, in the analysis process
    assert (cluster["min_workers"], cluster["max_workers"]) == (1, 1)


def test_short_disk_refuses_new_batches_with_503(second_server, bundled_tests):
    alice = second_server.session("alice")
    health = alice.get(f"{second_server.api}/health")
    assert health.status_code == 503 and health.json()["refusing"] == ["disk"]
    assert health.json()["cluster"] is None  # nothing started it
    files = [("files", (bundled_tests[0].name, bundled_tests[0].read_bytes()))]
    body = error(alice.post(f"{second_server.api}/batches", files=files), 503,
                 "insufficient-resources")
    assert body["refusing"] == ["disk"]


# -- the OpenAPI document ----------------------------------------------------------------


def _openapi_path(route: str) -> str:
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)


def test_the_served_openapi_document_is_the_file_and_covers_every_route(server):
    from tornado.web import RequestHandler

    from cpet_nb.server.handlers import OPENAPI_FILE

    served = server.session("alice").get(f"{server.api}/openapi.json")
    assert served.status_code == 200
    document = json.loads(OPENAPI_FILE.read_text())
    assert served.json() == document
    for route, handler in ROUTES:
        methods = {m for m in ("get", "post", "put", "delete", "patch")
                   if getattr(handler, m) is not getattr(RequestHandler, m)}
        path = _openapi_path(route)
        assert path in document["paths"], path
        assert methods == set(document["paths"][path]) - {"parameters"}, path
    assert set(document["paths"]) == {_openapi_path(r) for r, _ in ROUTES}
    codes = document["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    assert codes == list(ERRORS)
    settings = document["components"]["schemas"]["RequestSettings"]["properties"]
    assert settings == {n: Settings.options()[n].json_schema() for n in REQUEST_SETTINGS}
    file_status = document["components"]["schemas"]["FileRow"]["properties"]["status"]
    assert file_status["enum"] == [*RESULT_STATUSES, None]
    formats = document["paths"]["/batches/{job_id}/results"]["get"]["parameters"][0]
    assert formats["schema"]["enum"] == list(MEDIA_TYPES)
    assert {f".{name}" for name in MEDIA_TYPES} == set(TABLE_FORMATS)


def test_the_docs_list_every_error_code():
    text = (REPO / "docs" / "server.md").read_text()
    assert [code for code in ERRORS if f"`{code}`" not in text] == []


# -- status under many pollers ----------------------------------------------------------


def counting_reads(store: Store) -> collections.Counter:
    """Count ``store``'s connections taken, by thread: every read or write takes one."""
    reads: collections.Counter = collections.Counter()
    connect = store.connection

    def counted():
        reads[threading.get_ident()] += 1
        return connect()

    store.connection = counted
    return reads


def test_a_job_not_run_here_is_read_again_once_its_status_document_is_old(tmp_path,
                                                                         bundled_tests):
    """GET /batches/{id} of a job this server does not run answers from the document last
    read while it is under STATUS_MAX_AGE_S old (no store read), only to the job's owner;
    older, the store is read again. The document's bytes are the status with its links."""
    from cpet_nb.batch.store import FileEntry
    from cpet_nb.server.config import CpetNb
    from cpet_nb.server.service import STATUS_MAX_AGE_S, BatchService

    service = BatchService(CpetNb(store=str(tmp_path / "jobs.sqlite")), tmp_path, "/base/")
    now = [100.0]
    service.clock = lambda: now[0]
    job = service.store.new_job_id()
    entry = FileEntry(0, "a.csv", str(bundled_tests[0]), "sha-a", 1)
    service.store.create_job(job, [entry], settings={}, analysis_key="k", model_version="m",
                             inputs={"given": []}, user="alice")
    assert service.cached_status("alice", job) is None  # never read
    first = service.status("alice", job)
    assert first.state == "running" and first.status["files"][0]["state"] == "pending"
    assert json.loads(first.body) == first.status | {"links": service.links(job)}
    assert first.status["job_id"] == job and service.links(job)["self"] == \
        f"/base/cpet-nb/api/v1/batches/{job}"
    reads = counting_reads(service.store)
    assert service.cached_status("alice", job) is first
    assert service.cached_status("bob", job) is None  # not bob's: the store decides (404)
    service.store.finish_job(job, "cancelled")
    now[0] += STATUS_MAX_AGE_S / 2
    assert service.cached_status("alice", job).state == "running"  # still the last read
    assert sum(reads.values()) == 1  # finish_job's; no poll read the store
    assert service.forget_old_statuses() == 0  # still answered from
    now[0] += STATUS_MAX_AGE_S
    assert service.cached_status("alice", job) is None  # too old: read again
    assert service.forget_old_statuses() == 1  # no poll is answered from it any more
    assert service.status("alice", job).state == "cancelled"
    assert service.cached_status("alice", job).state == "cancelled"
    with pytest.raises(Exception, match="no job"):
        service.status("bob", job)


@pytest.fixture
def copies_service(tmp_path, bundled_tests, dask_client, monkeypatch, request):
    """A BatchService whose root holds ``many``, a folder of 16 distinct copies of bundled
    tests, and whose batches run on the test cluster."""
    from cpet_nb.batch import engine
    from cpet_nb.server.config import CpetNb
    from cpet_nb.server.service import BatchService

    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", dask_client.scheduler.address)
    request.addfinalizer(engine.shutdown)  # the client the service opens
    (tmp_path / "root").mkdir()
    distinct_copies(bundled_tests, tmp_path / "root" / "many", 16)
    return BatchService(CpetNb(store=str(tmp_path / "jobs.sqlite")), tmp_path / "root")


@pytest.mark.slow
def test_a_batch_run_here_is_polled_from_memory_and_its_end_is_exact(copies_service):
    """While the server runs a batch, every status poll is answered from the document its
    notices keep current -- however long since the last store read, and without reading
    the store -- and never says a file is stored before a second connection sees its
    result. Once the job ends, a poll says so, with every file done."""
    from cpet_nb.server.service import STATUS_MAX_AGE_S

    service = copies_service
    now = [0.0]
    service.clock = lambda: now[0]
    reads = counting_reads(service.store)
    job = service.submit_paths("alice", {"paths": ["many"]})["job_id"]
    other = Store(service.store.path)  # a second connection: what is on disk
    polls = []
    for _ in range(100_000):  # bounded; the job ends long before
        now[0] += 2 * STATUS_MAX_AGE_S  # a cache by age would read the store each time
        before = reads[threading.get_ident()]
        document = service.cached_status("alice", job)
        from_memory = document is not None
        if document is None:
            document = service.status("alice", job)
        done = {f["name"] for f in document.status["files"] if f["state"] == "done"}
        stored = set(other.results(job)["file"])
        polls.append((document.state, from_memory, reads[threading.get_ident()] - before,
                      done <= stored))
        if document.state != "running":
            break
        time.sleep(0.02)
    running = [p for p in polls if p[0] == "running"]
    assert len(running) >= 5
    assert all(from_memory and n_reads == 0 for _, from_memory, n_reads, _ in running)
    assert all(on_disk for *_, on_disk in polls)
    final = service.cached_status("alice", job) or service.status("alice", job)
    assert final.state == "done" and final.status["counts"]["done"] == 16
    assert {f["state"] for f in final.status["files"]} == {"done"}
    assert polls[-1][0] == "done"


@pytest.mark.slow
def test_a_batch_nobody_polls_costs_no_status_reads_until_a_poll(copies_service,
                                                                  monkeypatch):
    """A running job's notices rebuild its status document only while someone polls it;
    unpolled, they only mark it stale (a poll then reads the store); its end is read."""
    from cpet_nb.server import service as service_module

    # no grace after submitting (its submitter counts as polling for POLLED_RECENTLY_S)
    monkeypatch.setattr(service_module, "POLLED_RECENTLY_S", 0.0)
    service = copies_service
    rebuilt, notices = [], []
    remember = service._remember

    def counted(user, batch, progress=None):
        document = remember(user, batch, progress)
        rebuilt.append(None if progress is None else progress.state)  # once it is kept
        return document

    service._remember = counted
    asked = service._polled_recently  # a running notice asks whether to rebuild
    service._polled_recently = lambda job_id: notices.append(job_id) or asked(job_id)
    job = service.submit_paths("alice", {"paths": ["many"]})["job_id"]
    assert service.cached_status("bob", job) is None  # a stranger's poll counts for nothing
    for _ in range(6000):  # bounded: 60 s
        if rebuilt and rebuilt[-1] not in (None, "running"):
            break
        time.sleep(0.01)
    assert len(notices) >= 2  # notices came while it ran ...
    assert "running" not in rebuilt  # ... and none read the store while nobody polled
    assert rebuilt[-1] == "done"  # the end is read, exactly
    final = service.cached_status("alice", job) or service.status("alice", job)
    assert final.state == "done" and final.status["counts"]["done"] == 16


def test_freezing_collects_the_garbage_then_keeps_the_rest_out_of_full_collections():
    """freeze_long_lived (run when the extension loads and when its cluster starts): a
    garbage cycle is collected, not kept forever; what is alive is frozen, so a full
    collection no longer walks it (those walks were the event loop's longest pauses)."""
    import gc
    import weakref

    from cpet_nb.server.service import freeze_long_lived

    class Node:
        pass

    alive, cycle = Node(), Node()
    cycle.itself = cycle
    garbage = weakref.ref(cycle)
    del cycle
    try:
        freeze_long_lived()
        assert garbage() is None
        assert gc.get_freeze_count() > 0
        assert not any(o is alive for o in gc.get_objects())
        # frozen, then garbage (a replaced cluster): the next freeze collects it
        alive.itself = alive
        replaced = weakref.ref(alive)
        del alive
        freeze_long_lived()
        assert replaced() is None
    finally:
        gc.unfreeze()


# -- the multipart intake, chunk by chunk -----------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_the_multipart_intake_reassembles_parts_from_any_chunking(tmp_path, chunk):
    from urllib3 import encode_multipart_formdata

    first, second = os.urandom(10_000), b"time,VO2\r\n--not-the-boundary\r\n" * 50
    body, content_type = encode_multipart_formdata(
        [("settings", '{"rer_criterion": 1.1}'), ("files", ("one.csv", first)),
         ("files", ("sub/two.csv", second))], boundary="XyZ")
    folder = tmp_path / "in"
    folder.mkdir()
    intake = MultipartIntake(content_type, folder, UploadLimits(10**6, 10**6, 5))
    for i in range(0, len(body), chunk):
        intake.feed(body[i:i + chunk])
    files, fields = intake.finish()
    assert fields == {"settings": '{"rer_criterion": 1.1}'}
    assert [(f.name, f.path.read_bytes(), f.size_bytes) for f in files] == [
        ("one.csv", first, len(first)), ("two.csv", second, len(second))]


def test_the_multipart_intake_stops_writing_at_the_file_limit(tmp_path):
    from urllib3 import encode_multipart_formdata

    from cpet_nb.server.errors import ApiError

    body, content_type = encode_multipart_formdata([("files", ("a.bin", b"x" * 5000))])
    folder = tmp_path / "in"
    folder.mkdir()
    intake = MultipartIntake(content_type, folder, UploadLimits(10**6, 1000, 5))
    for i in range(0, len(body), 512):
        intake.feed(body[i:i + 512])
        assert not folder.exists() or sum(f.stat().st_size for f in folder.iterdir()) <= 1024
    with pytest.raises(ApiError) as refused:
        intake.finish()
    assert refused.value.code == "upload-too-large" and not folder.exists()


# -- schemathesis (last: it may start batches of its own) ---------------------------------


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_answer_matches_the_openapi_document(server, mode):
    """schemathesis generates requests for every operation from the served document (valid
    ones, then invalid ones): no 5xx but the documented refusals (501, 503), and every
    response -- status, headers, body -- as the document says. Bounded: 20 examples per
    operation. Not checked: that every schema-valid request is accepted (a valid request
    may name a path that does not exist, 422, or meet a limit, 413 or 429). (Driven with
    hypothesis directly: schemathesis' pytest fixture loader does not run under pytest 9.)"""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    served = requests.get(f"{server.api}/openapi.json", headers=server.auth("frank")).json()
    schema = schemathesis.openapi.from_dict(served)  # from_url leaves out its own path
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(set(item) - {"parameters"})
                                  for item in schema.raw_schema["paths"].values())
    for operation in operations:
        @settings(max_examples=20, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(schemathesis.GenerationMode(mode)))
        def answers_as_documented(case):
            response = case.call_and_validate(base_url=server.api, headers=server.auth("frank"),
                                              excluded_checks=[not_a_server_error,
                                                               positive_data_acceptance])
            if response.status_code >= 500:
                assert response.json()["code"] in ("report-unavailable", "format-unavailable",
                                                   "insufficient-resources"), response.text

        answers_as_documented()
