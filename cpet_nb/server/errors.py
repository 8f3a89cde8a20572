"""The errors of the batch HTTP API: an HTTP status, a stable code, a message, and the field,
file or limit concerned. Every error response is this JSON object::

    {"code": "upload-too-large", "message": "...", "field": "files", "file": "big.zip",
     "limit": {"name": "max_file_mb", "value": 512.0, "unit": "MB"}}
"""

from __future__ import annotations

from typing import Any

from tornado import web

#: Every error code the API answers with: its HTTP status and what it means. Codes are
#: stable (clients may branch on them); ``openapi.json`` and ``docs/server.md`` list them.
ERRORS: dict[str, tuple[int, str]] = {
    "malformed-request": (400, "the body is not valid JSON or not the expected object, or a "
                               "query parameter is not one of its values"),
    "malformed-multipart": (400, "the multipart body cannot be parsed (no boundary, broken "
                                 "part headers, or it ends before its closing boundary)"),
    "unknown-field": (400, "a multipart part or JSON member that the endpoint does not take"),
    "path-outside-root": (400, "a server-side path is absolute, climbs with '..', or it (or a "
                               "file it leads to) resolves outside the server's root"),
    "not-authenticated": (403, "no valid token or login cookie"),
    "xsrf-failed": (403, "a cookie-authenticated POST without a matching X-XSRFToken header"),
    "forbidden": (403, "the authorizer does not allow this action"),
    "unknown-job": (404, "no job with this id belongs to the caller"),
    "unknown-upload": (404, "no staged upload with this id belongs to the caller (or it "
                            "has expired)"),
    "not-found": (404, "no such endpoint"),
    "report-not-made": (404, "the job has no report yet (POST makes one)"),
    "method-not-allowed": (405, "the endpoint does not take this HTTP method"),
    "job-finished": (409, "the job has already ended (cancel)"),
    "job-not-run-here": (409, "the job is run by another process (cancel it there)"),
    "job-running": (409, "the job has not ended yet (report)"),
    "body-too-large": (413, "the request body is over the server's limit"),
    "upload-too-large": (413, "one uploaded file is over the server's limit"),
    "too-many-files": (413, "more uploaded files than the server takes in one request"),
    "unsupported-media-type": (415, "the body is neither multipart/form-data nor JSON"),
    "path-not-found": (422, "a server-side path names nothing (and is not a pattern)"),
    "no-analysable-file": (422, "no input is a file that cpet_nb can analyse"),
    "invalid-settings": (422, "a setting is unknown, not allowed through the server, or has "
                              "an invalid value"),
    "rate-limited": (429, "too many submissions by this user in the last minute"),
    "too-many-batches": (429, "this user already has the most running batches allowed"),
    "internal-error": (500, "an unexpected error (a bug: please report)"),
    "report-failed": (500, "making the report failed (the message says why)"),
    "format-unavailable": (501, "the results format needs a package this server lacks "
                                "(parquet: pyarrow)"),
    "report-unavailable": (501, "this cpet_nb has no batch report maker "
                                "(cpet_nb.report.batch_report)"),
    "insufficient-resources": (503, "free disk or memory is below the server's minimum, or "
                                    "the job store fails its integrity check"),
}


class ApiError(web.HTTPError):
    """An error answered as JSON (see :data:`ERRORS`).

    Parameters
    ----------
    code : str
        One of :data:`ERRORS` (it sets the HTTP status).
    message : str
        What was wrong and what was expected, for a person.
    field : str, optional
        The request field concerned (``files``, ``paths[2]``, ``settings.rer_criterion``).
    file : str, optional
        The uploaded file or server-side path concerned.
    **extra
        More members of the JSON object (``limit``, ``retry_after_s``, ``state``, ``files``).
    """

    def __init__(self, code: str, message: str, *, field: str | None = None,
                 file: str | None = None, **extra: Any) -> None:
        if code not in ERRORS:
            raise ValueError(f"unknown API error code {code!r}")
        # tornado %-formats log_message when it has args; it has none, so escape '%'
        super().__init__(ERRORS[code][0], log_message=message.replace("%", "%%"))
        self.code = code
        self.message = message
        self.field = field
        self.file = file
        self.extra = extra

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of the response."""
        return {"code": self.code, "message": self.message, "field": self.field,
                "file": self.file, **self.extra}


def limit(name: str, value: float, unit: str) -> dict[str, Any]:
    """The ``limit`` member of an error: which server setting was exceeded, and its value."""
    return {"name": name, "value": value, "unit": unit}
