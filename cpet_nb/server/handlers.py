"""The HTTP handlers of the batch API (tornado, through jupyter_server's ``APIHandler``).

Every handler authenticates and authorizes in ``prepare`` -- before a streamed upload's
first byte is read -- with Jupyter's own machinery (token or login cookie, XSRF check on a
cookie-authenticated POST, the server's ``Authorizer`` on resource ``cpet_nb``), and its
methods carry ``@web.authenticated`` as jupyter_server expects. Handlers only translate
HTTP: the work is :class:`~cpet_nb.server.service.BatchService`'s, run in its thread pools.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from http.client import responses
from pathlib import Path
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider, User
from jupyter_server.auth.utils import HTTP_METHOD_TO_AUTH_ACTION
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .config import API_PREFIX
from .errors import ApiError
from .service import BatchService
from .uploads import FORM_FIELDS, STAGING_FIELDS, JsonIntake, MultipartIntake

#: The authorizer's resource name for every endpoint.
AUTH_RESOURCE = "cpet_nb"
#: Key of the :class:`BatchService` in the tornado application's settings.
SERVICE_KEY = "cpet_nb_service"
OPENAPI_FILE = Path(__file__).with_name("openapi.json")
#: Bytes past the body limit that a chunked upload may still send (read, not kept) before
#: the connection is closed: up to there the client gets the JSON 413.
DISCARD_BYTES = 64 * 1_000_000
#: Key of the API's entry in the page config of JupyterLab and Notebook 7 pages (their
#: ``jupyter-config-data`` element): how the panel's upload widget finds the API.
PAGE_CONFIG_KEY = "cpetNb"
#: Jupyter's identity providers that know one person only (a token or a password): every
#: request they authenticate is the server's user, ``CpetNb.single_user``.
SINGLE_USER_PROVIDERS = (IdentityProvider, PasswordIdentityProvider)
#: How a report may run in the browser: its own inline scripts and styles, sandboxed (a
#: unique origin, so it cannot reach Jupyter's cookies or API).
REPORT_CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline' "
              "'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:; font-src data:")


def user_name(provider: IdentityProvider, user: User, single_user: str) -> str:
    """Whose jobs a request sees: ``single_user`` under Jupyter's default identity
    providers (they make a new anonymous user for each browser or script that has the
    token), else the authenticated user's ``username`` (JupyterHub, a custom provider)."""
    if type(provider) in SINGLE_USER_PROVIDERS:
        return single_user
    return user.username


class ApiHandler(APIHandler):
    """Base: authentication, authorization, JSON errors, the thread pool."""

    auth_resource = AUTH_RESOURCE

    @property
    def service(self) -> BatchService:
        return self.settings[SERVICE_KEY]

    @property
    def user(self) -> str:
        """The caller's name as recorded with their jobs."""
        return user_name(self.identity_provider, self.current_user,
                         self.service.config.single_user)

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await super().prepare()
        except ApiError:
            raise
        except web.HTTPError as exc:
            if exc.status_code != 403:
                raise
            if getattr(self, "_jupyter_current_user", None) is None:
                raise _not_authenticated() from None
            if "xsrf" in _message(exc).lower():
                raise ApiError("xsrf-failed", "a cookie-authenticated POST needs the _xsrf "
                                              "cookie's value in an X-XSRFToken header",
                               field="X-XSRFToken") from None
            raise ApiError("forbidden", _message(exc)) from None
        if self.request.method == "OPTIONS":
            return
        if self.current_user is None:
            raise _not_authenticated()
        action = HTTP_METHOD_TO_AUTH_ACTION[self.request.method or "GET"]
        allowed = await ensure_async(self.authorizer.is_authorized(
            self, self.current_user, action, AUTH_RESOURCE))
        if not allowed:
            raise ApiError("forbidden", f"not authorized to {action} {AUTH_RESOURCE}")

    async def blocking(self, function: Callable[..., Any], *args: Any) -> Any:
        """``function(*args)`` in the service's thread pool (never on the event loop)."""
        return await asyncio.get_running_loop().run_in_executor(self.service.pool, function,
                                                                *args)

    def reply(self, body: Any, status: int = 200) -> None:
        """Finish with ``body`` as JSON."""
        self.set_status(status)
        self.finish(json.dumps(body))

    def links(self, job_id: str) -> dict[str, str]:
        """URLs of a job's endpoints."""
        return self.service.links(job_id)

    def upload_links(self, upload_id: str) -> dict[str, str]:
        """URLs of a staged upload's endpoint."""
        return {"self": url_path_join(self.base_url, API_PREFIX, "uploads", upload_id)}

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            error = exc
        elif status_code == 403 and getattr(self, "_jupyter_current_user", None) is None:
            error = _not_authenticated()  # @web.authenticated on a POST
        else:
            error = _as_api_error(status_code, exc)
        if error.code == "internal-error":
            self.log.error("cpet_nb: %s %s failed", self.request.method, self.request.path,
                           exc_info=kwargs.get("exc_info"))
        retry = error.extra.get("retry_after_s")
        if retry is not None:
            self.set_header("Retry-After", str(max(1, round(retry))))
        self.set_status(error.status_code)
        self.finish(json.dumps(error.to_dict()))


class StreamedPostHandler(ApiHandler):
    """Base of the endpoints that take a streamed upload: a POST is admitted (rate,
    resources, size) and its body taken in as it arrives -- a multipart body written to a
    private folder, a JSON body (where :attr:`takes_json`) kept in memory.

    A POST refused before its body is read (authentication, limits, media type) is
    answered once the body has been read and dropped, up to :data:`DISCARD_BYTES`: a server
    that closes a connection with unread data makes the client's system reset it, and the
    client may then never see the answer.
    """

    #: Whether a JSON body is taken (else only multipart, and JSON is 415).
    takes_json = True
    #: The multipart form fields taken (:class:`~cpet_nb.server.uploads.MultipartIntake`).
    form_fields: tuple[str, ...] = FORM_FIELDS
    _intake: MultipartIntake | JsonIntake | None = None
    _refusal: ApiError | None = None

    async def prepare(self) -> None:  # type: ignore[override]
        try:
            await super().prepare()
            if self.request.method == "POST":
                await self._take_body()
        except ApiError as refusal:
            length = self.request.headers.get("Content-Length", "")
            if self.request.method != "POST" or (length.isdigit()
                                                 and int(length) > DISCARD_BYTES):
                raise
            self.request.connection.set_max_body_size(DISCARD_BYTES)
            self._intake, self._refusal = None, refusal

    def admit(self) -> None:
        """(thread pool) Refuse early what the POST would refuse for resources or running
        batches; raises :class:`ApiError`."""
        self.service.admit(self.user)

    async def _take_body(self) -> None:
        """Admit the submission (rate, :meth:`admit`, size) and choose how to take its
        body."""
        service = self.service
        retry = service.rate.admit(self.user)
        if retry is not None:
            raise ApiError("rate-limited", f"more than {service.config.submissions_per_minute} "
                                           "submissions in 60 s", retry_after_s=round(retry, 1),
                           limit={"name": "submissions_per_minute",
                                  "value": service.config.submissions_per_minute,
                                  "unit": "submissions"})
        await self.blocking(self.admit)
        length = self.request.headers.get("Content-Length")
        if length is not None and length.isdigit() and int(length) > \
                service.limits.max_body_bytes:
            raise service.limits.body_too_large(int(length))
        # the intake enforces the limit on the bytes received (chunked bodies too), and
        # reads a little further without keeping it, so that the client gets its 413
        self.request.connection.set_max_body_size(service.limits.max_body_bytes
                                                  + DISCARD_BYTES)
        kind = self.request.headers.get("Content-Type", "")
        if kind.lower().startswith("multipart/form-data"):
            folder = await self.blocking(service.upload_folder)
            self._intake = MultipartIntake(kind, folder, service.limits, self.form_fields)
        elif self.takes_json and kind.lower().split(";")[0].strip() == "application/json":
            self._intake = JsonIntake(int(service.config.max_json_kb * 1000))
        else:
            wanted = "multipart/form-data or application/json" if self.takes_json else \
                "multipart/form-data"
            raise ApiError("unsupported-media-type", f"Content-Type {kind or 'missing'}: send "
                                                     f"{wanted}", field="Content-Type")

    async def data_received(self, chunk: bytes) -> None:
        intake = self._intake
        if isinstance(intake, MultipartIntake):  # disk writes: in the upload pool
            await asyncio.get_running_loop().run_in_executor(self.service.upload_pool,
                                                             intake.feed, chunk)
        elif intake is not None:
            intake.feed(chunk)

    async def received(self) -> MultipartIntake | JsonIntake:
        """The intake of an admitted POST whose body has been read (the refusal, if it was
        refused)."""
        if self._refusal is not None:
            raise self._refusal
        assert self._intake is not None
        return self._intake

    def on_finish(self) -> None:
        self._forget_upload()

    def on_connection_close(self) -> None:
        self._forget_upload()
        super().on_connection_close()

    def _forget_upload(self) -> None:
        """Remove the request's upload folder (empty once its files joined a job or were
        staged)."""
        intake, self._intake = self._intake, None
        if isinstance(intake, MultipartIntake):
            self.service.upload_pool.submit(intake.discard)


@web.stream_request_body
class BatchesHandler(StreamedPostHandler):
    """``GET /batches``: the caller's jobs. ``POST /batches``: a new batch, from a
    multipart upload (streamed to disk) or a JSON list of server-side paths."""

    @web.authenticated
    async def get(self) -> None:
        self.reply({"jobs": await self.blocking(self.service.jobs, self.user)})

    @web.authenticated
    async def post(self) -> None:
        intake, service = await self.received(), self.service
        if isinstance(intake, MultipartIntake):
            files, fields = await self.blocking(intake.finish)
            status = await self.blocking(service.submit_uploads, self.user, files, fields)
        else:
            status = await self.blocking(service.submit_paths, self.user, intake.finish())
        status["links"] = self.links(status["job_id"])
        self.set_header("Location", status["links"]["self"])
        self.reply(status, 202)


@web.stream_request_body
class UploadsHandler(StreamedPostHandler):
    """``GET /uploads``: the caller's staged uploads. ``POST /uploads``: stage a multipart
    upload of files (streamed to disk, under the limits and rate of ``POST /batches``) in
    a folder of its own on the server, without starting a batch: for the panel's kernel
    on the same machine to add as a path (``docs/server.md``)."""

    takes_json = False
    form_fields = STAGING_FIELDS

    def admit(self) -> None:
        self.service.check_resources()  # no batch starts: running batches do not count

    @web.authenticated
    async def get(self) -> None:
        self.reply({"uploads": await self.blocking(self.service.uploads, self.user)})

    @web.authenticated
    async def post(self) -> None:
        intake = await self.received()
        assert isinstance(intake, MultipartIntake)
        files, _ = await self.blocking(intake.finish)
        record = await self.blocking(self.service.stage_uploads, self.user, files)
        record["links"] = self.upload_links(record["upload_id"])
        self.set_header("Location", record["links"]["self"])
        self.reply(record, 201)


class UploadHandler(ApiHandler):
    """``GET /uploads/{upload_id}``: one staged upload; ``DELETE``: remove it."""

    @web.authenticated
    async def get(self, upload_id: str) -> None:
        record = await self.blocking(self.service.upload, self.user, upload_id)
        record["links"] = self.upload_links(upload_id)
        self.reply(record)

    @web.authenticated
    async def delete(self, upload_id: str) -> None:
        await self.blocking(self.service.delete_upload, self.user, upload_id)
        self.set_status(204)
        self.finish()


class BatchHandler(ApiHandler):
    """``GET /batches/{job_id}``: state, counts, fraction done, ETA, per-file states -- the
    job's status document, from memory while it is current (no thread, no SQLite, no
    JSON encoding: :meth:`BatchService.cached_status`)."""

    @web.authenticated
    async def get(self, job_id: str) -> None:
        document = (self.service.cached_status(self.user, job_id)
                    or await self.blocking(self.service.status, self.user, job_id))
        self.set_header("Etag", document.etag)  # else tornado hashes the body on each poll
        if self.check_etag_header():  # tornado compares If-None-Match only for its own Etag
            self.set_status(304)
            self.finish()
            return
        self.finish(document.body)


class ResultsHandler(ApiHandler):
    """``GET /batches/{job_id}/results?format=json|csv|xlsx|parquet``: the results table
    (partial while the job runs: header ``X-CPET-NB-Partial: true``)."""

    @web.authenticated
    async def get(self, job_id: str) -> None:
        fmt = self.get_argument("format", "json")
        export = await self.blocking(self.service.results, self.user, job_id, fmt)
        self.set_header("X-CPET-NB-Partial", "true" if export.partial else "false")
        self.set_header("X-CPET-NB-Job-State", export.state)
        if fmt != "json":
            self.set_header("Content-Disposition", f'attachment; filename="{export.filename}"')
        self.finish(export.content, set_content_type=export.media_type)


class CancelHandler(ApiHandler):
    """``POST /batches/{job_id}/cancel``: stop a running job; its status afterwards."""

    @web.authenticated
    async def post(self, job_id: str) -> None:
        status = await self.blocking(self.service.cancel, self.user, job_id)
        status["links"] = self.links(job_id)
        self.reply(status)


class ReportHandler(ApiHandler):
    """``GET /batches/{job_id}/report``: the HTML report once made; ``POST`` makes it."""

    @property
    def content_security_policy(self) -> str:
        return REPORT_CSP

    @web.authenticated
    async def get(self, job_id: str) -> None:
        report = await self.blocking(self.service.report, self.user, job_id)
        if isinstance(report, dict):
            self.reply(report, 202)
        else:
            self.finish(report, set_content_type="text/html; charset=utf-8")

    @web.authenticated
    async def post(self, job_id: str) -> None:
        state = await self.blocking(self.service.make_report, self.user, job_id)
        self.set_header("Location", self.links(job_id)["report"])
        self.reply(state, 202)


class HealthHandler(ApiHandler):
    """``GET /health``: cluster, store, disk and memory; 503 while new batches would be
    refused."""

    @web.authenticated
    async def get(self) -> None:
        health = await self.blocking(self.service.health)
        self.reply(health, 503 if health["refusing"] else 200)


class OpenApiHandler(ApiHandler):
    """``GET /openapi.json``: the API's OpenAPI document (the file kept in the package)."""

    @web.authenticated
    async def get(self) -> None:
        self.finish(await self.blocking(OPENAPI_FILE.read_bytes))


class NotFoundHandler(ApiHandler):
    """Any other path under the API: a JSON ``not-found`` (after authentication)."""

    async def prepare(self) -> None:  # type: ignore[override]
        await super().prepare()
        raise ApiError("not-found", f"no endpoint {self.request.path}")


#: The API's routes, relative to ``<base_url>/cpet-nb/api/v1``; path parameters are named
#: groups (``openapi.json`` has one path per route, ``{job_id}`` for a group).
JOB = r"(?P<job_id>[^/]+)"
UPLOAD = r"(?P<upload_id>[^/]+)"
ROUTES: list[tuple[str, type[ApiHandler]]] = [
    ("/batches", BatchesHandler),
    ("/uploads", UploadsHandler),
    (f"/uploads/{UPLOAD}", UploadHandler),
    (f"/batches/{JOB}", BatchHandler),
    (f"/batches/{JOB}/results", ResultsHandler),
    (f"/batches/{JOB}/cancel", CancelHandler),
    (f"/batches/{JOB}/report", ReportHandler),
    ("/health", HealthHandler),
    ("/openapi.json", OpenApiHandler),
]


def handlers(base_url: str) -> list[tuple[str, type[ApiHandler]]]:
    """Tornado URL specs: :data:`ROUTES` under ``base_url``, then the JSON 404."""
    prefix = url_path_join(base_url, API_PREFIX)
    return [(prefix + route + "/?", handler) for route, handler in ROUTES] + \
        [(prefix + "(?:/.*)?", NotFoundHandler)]


def add_page_config(settings: dict[str, Any], service: BatchService) -> None:
    """Make the pages of JupyterLab and Notebook 7 (through the tornado setting
    ``page_config_hook`` that both call) carry :data:`PAGE_CONFIG_KEY`: the URL of
    ``/uploads`` and the upload limits. A widget in the page then knows, without a request,
    that the API is there and what it takes. An earlier hook (JupyterHub's) runs first."""
    previous = settings.get("page_config_hook")
    limits = service.limits
    entry = {"uploads": url_path_join(settings["base_url"], API_PREFIX, "uploads"),
             "max_body_bytes": limits.max_body_bytes, "max_file_bytes": limits.max_file_bytes,
             "max_files": limits.max_files}

    def hook(handler: Any, page_config: dict[str, Any]) -> dict[str, Any]:
        if previous is not None:
            page_config = previous(handler, page_config)
        page_config[PAGE_CONFIG_KEY] = entry
        return page_config

    settings["page_config_hook"] = hook


def _not_authenticated() -> ApiError:
    return ApiError("not-authenticated", "authenticate with the server's token (header "
                                         "'Authorization: token <token>') or a login cookie")


def _as_api_error(status: int, exc: BaseException | None) -> ApiError:
    """An ApiError for what tornado or jupyter_server raised (or an unexpected exception)."""
    if isinstance(exc, web.HTTPError) and not isinstance(exc, ApiError):
        by_status = {403: "forbidden", 404: "not-found", 405: "method-not-allowed"}
        if exc.status_code in by_status:
            return ApiError(by_status[exc.status_code], _message(exc))
        if exc.status_code == 400:  # e.g. tornado's MissingArgumentError
            return ApiError("malformed-request", _message(exc) or "bad request")
    return ApiError("internal-error", f"unexpected {type(exc).__name__}: {exc}"
                    if exc is not None else f"HTTP {status}")


def _message(exc: web.HTTPError) -> str:
    """The message of a tornado error (its ``log_message``, formatted as tornado does)."""
    if not exc.log_message:
        return exc.reason or responses.get(exc.status_code, "")
    return exc.log_message % exc.args if exc.args else exc.log_message
