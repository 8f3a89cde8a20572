"""Request bodies taken in as they arrive: multipart uploads streamed to a private folder,
small JSON bodies kept in memory, each under its limits.

A body is never held whole in memory: :class:`MultipartIntake` feeds each chunk to
python-multipart's incremental parser (:class:`python_multipart.MultipartParser`), which
calls back with pieces of each part; a file part's pieces go straight to its own file in
the request's folder (made with mode 0700), named by its position only. The name the client
gave is kept, sanitised (:func:`safe_name`), for the job. Once a limit is crossed the intake
stops writing, removes what it wrote, and discards the rest of the body, so that the
client still gets the 413 answer (a server that closes a connection while the client is
sending risks that the client never reads it).
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from .config import MB
from .errors import ApiError, limit

#: Form fields (parts without a file name) that ``POST /batches`` takes, and their limit.
FORM_FIELDS = ("settings",)
#: ... and those that ``POST /uploads`` takes (files only).
STAGING_FIELDS: tuple[str, ...] = ()
MAX_FIELD_BYTES = 64 * 1024
#: Longest kept file name (characters; the ending is kept).
MAX_NAME_CHARS = 200
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:*?\"<>|]")


def safe_name(name: str, fallback: str) -> str:
    """A file name that is safe as one path component: the last component of what a client
    sent (either kind of slash), NFC-normalised, without control characters, path
    separators or characters Windows refuses, without leading dots or trailing dots and
    spaces, at most :data:`MAX_NAME_CHARS` characters with its ending kept; ``fallback``
    when nothing is left.

    >>> safe_name("../../etc/passwd", "f"), safe_name("C:\\\\data\\\\run 1.csv", "f")
    ('passwd', 'run 1.csv')
    >>> safe_name("..", "upload-0"), safe_name("a\\x00b<c>.txt", "f")
    ('upload-0', 'a_b_c_.txt')
    """
    last = re.split(r"[/\\]", unicodedata.normalize("NFC", name))[-1]
    cleaned = _UNSAFE.sub("_", last).lstrip(". ").rstrip(". ")
    if len(cleaned) > MAX_NAME_CHARS:
        stem, dot, ending = cleaned.rpartition(".")
        keep = dot + ending if dot and len(ending) <= 16 else ""
        cleaned = cleaned[:MAX_NAME_CHARS - len(keep)] + keep
    return cleaned or fallback


def unique_names(names: list[str]) -> list[str]:
    """``names`` made distinct (case-insensitively, for file systems that fold case) by a
    counter before the ending of the second and later ones.

    >>> unique_names(["a.csv", "b.csv", "A.csv", "a.csv", "a (2).csv"])
    ['a.csv', 'b.csv', 'A (2).csv', 'a (3).csv', 'a (2) (2).csv']
    """
    taken: set[str] = set()
    unique = []
    for name in names:
        stem, dot, ending = name.rpartition(".")
        if not dot or not stem:
            stem, dot, ending = name, "", ""
        candidate, n = name, 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem} ({n}){dot}{ending}"
        taken.add(candidate.casefold())
        unique.append(candidate)
    return unique


@dataclass(frozen=True)
class UploadLimits:
    """What one request may bring (bytes)."""

    max_body_bytes: int
    max_file_bytes: int
    max_files: int

    def body_too_large(self, size_bytes: int | None = None) -> ApiError:
        """The 413 error for a body over :attr:`max_body_bytes`."""
        got = "" if size_bytes is None else f" ({size_bytes} bytes)"
        return ApiError("body-too-large",
                        f"the request body{got} is over the limit of "
                        f"{self.max_body_bytes / MB:g} MB",
                        limit=limit("max_body_mb", self.max_body_bytes / MB, "MB"))


@dataclass
class ReceivedFile:
    """A file part as stored: the sanitised name, where its bytes are, how many."""

    name: str
    path: Path
    size_bytes: int = 0


@dataclass
class _Part:
    headers: dict[str, bytes] = field(default_factory=dict)
    name: str = ""
    file: ReceivedFile | None = None
    stream: BinaryIO | None = None
    text: bytearray = field(default_factory=bytearray)


class MultipartIntake:
    """A ``multipart/form-data`` body parsed chunk by chunk into ``folder``.

    Call :meth:`feed` with each chunk (blocking disk writes: off the event loop), then
    :meth:`finish`, or :meth:`discard` (from any thread: it waits for a running
    :meth:`feed`). Errors are :class:`~cpet_nb.server.errors.ApiError`; the first one is
    kept and raised by :meth:`finish`, after the whole body has been read.

    Parameters
    ----------
    content_type : str
        The request's ``Content-Type`` (it carries the boundary).
    folder : pathlib.Path
        An empty private folder for the files (removed again on error).
    limits : UploadLimits
    fields : tuple of str
        The form fields (parts without a file name) taken; any other is ``unknown-field``.
    """

    def __init__(self, content_type: str, folder: Path, limits: UploadLimits,
                 fields: tuple[str, ...] = FORM_FIELDS) -> None:
        _, options = parse_options_header(content_type)
        boundary = options.get(b"boundary")
        if not boundary:
            raise ApiError("malformed-multipart", "the multipart Content-Type has no boundary",
                           field="Content-Type")
        self.folder = folder
        self.limits = limits
        self.form_fields = fields
        self.files: list[ReceivedFile] = []
        self.fields: dict[str, str] = {}
        self.error: ApiError | None = None
        self._body_bytes = 0
        self._ended = False
        self._discarded = False
        self._lock = threading.Lock()
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._parser = MultipartParser(boundary, {
            "on_part_begin": self._on_part_begin,
            "on_header_field": lambda d, s, e: self._header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        })

    def feed(self, chunk: bytes) -> None:
        """Parse the next chunk of the body (discarded once an error was found)."""
        with self._lock:
            self._body_bytes += len(chunk)
            if self.error is not None or self._discarded:
                return
            try:
                if self._body_bytes > self.limits.max_body_bytes:
                    raise self.limits.body_too_large()
                self._parser.write(chunk)
            except ApiError as exc:
                self._fail(exc)
            except MultipartParseError as exc:
                self._fail(ApiError("malformed-multipart", "the multipart body cannot be "
                                                           f"parsed: {exc}", field="body"))

    def finish(self) -> tuple[list[ReceivedFile], dict[str, str]]:
        """The files and form fields received.

        Raises
        ------
        ApiError
            The first error met, or ``malformed-multipart`` when the body ended before its
            closing boundary.
        """
        with self._lock:
            if self.error is None and not self._ended:
                self._fail(ApiError("malformed-multipart", "the multipart body ends before "
                                                           "its closing boundary", field="body"))
        if self.error is not None:
            raise self.error
        return self.files, self.fields

    def discard(self) -> None:
        """Remove everything written (a request that ends without a job, or whose files
        joined one: the folder is then empty)."""
        with self._lock:
            self._discarded = True
            self._remove()

    def _fail(self, error: ApiError) -> None:
        self.error = error
        self._remove()

    def _remove(self) -> None:
        self._close_stream()
        shutil.rmtree(self.folder, ignore_errors=True)

    # -- parser callbacks ----------------------------------------------------------------

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_end(self) -> None:
        self._part.headers[self._header_field.decode("latin-1").strip().lower()] = \
            bytes(self._header_value).strip()
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        part = self._part
        kind, options = parse_options_header(part.headers.get("content-disposition", b""))
        if kind != b"form-data" or b"name" not in options:
            raise ApiError("malformed-multipart", "a part has no Content-Disposition: "
                                                  "form-data with a name", field="body")
        part.name = options[b"name"].decode("utf-8", "replace")
        if b"filename" not in options:
            if part.name not in self.form_fields:
                raise ApiError("unknown-field", f"unknown form field {part.name!r} (fields: "
                                                f"{', '.join(self.form_fields) or 'none'}; "
                                                "files in any part with a file name)",
                               field=part.name)
            return
        if len(self.files) >= self.limits.max_files:
            raise ApiError("too-many-files", f"more than {self.limits.max_files} files in "
                                             "one request", field=part.name,
                           limit=limit("max_files", self.limits.max_files, "files"))
        index = len(self.files)
        sent = options[b"filename"].decode("utf-8", "replace")
        part.file = ReceivedFile(safe_name(sent, f"upload-{index}"), self.folder / str(index))
        part.stream = part.file.path.open("xb")
        self.files.append(part.file)

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.file is None:
            part.text.extend(data[start:end])
            if len(part.text) > MAX_FIELD_BYTES:
                raise ApiError("body-too-large", f"form field {part.name!r} is over "
                                                 f"{MAX_FIELD_BYTES} bytes", field=part.name,
                               limit=limit("max_field_bytes", MAX_FIELD_BYTES, "bytes"))
            return
        part.file.size_bytes += end - start
        if part.file.size_bytes > self.limits.max_file_bytes:
            raise ApiError("upload-too-large",
                           f"{part.file.name} is over the limit of "
                           f"{self.limits.max_file_bytes / MB:g} MB per uploaded file",
                           field=part.name, file=part.file.name,
                           limit=limit("max_file_mb", self.limits.max_file_bytes / MB, "MB"))
        assert part.stream is not None
        part.stream.write(data[start:end])

    def _on_part_end(self) -> None:
        part = self._part
        if part.file is not None:
            self._close_stream()
        else:
            self.fields[part.name] = part.text.decode("utf-8", "replace")

    def _on_end(self) -> None:
        self._ended = True

    def _close_stream(self) -> None:
        if self._part.stream is not None:
            self._part.stream.close()
            self._part.stream = None


class JsonIntake:
    """A JSON body gathered in memory up to ``max_bytes`` (bigger ones are counted, not
    kept, and refused with 413)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._body = bytearray()
        self._size = 0

    def feed(self, chunk: bytes) -> None:
        """Keep the next chunk (while under the limit)."""
        self._size += len(chunk)
        if self._size <= self.max_bytes:
            self._body.extend(chunk)

    def finish(self) -> Any:
        """The decoded JSON value.

        Raises
        ------
        ApiError
            ``body-too-large`` over the limit, ``malformed-request`` for invalid JSON.
        """
        if self._size > self.max_bytes:
            raise ApiError("body-too-large", f"the JSON body ({self._size} bytes) is over the "
                                             f"limit of {self.max_bytes} bytes",
                           limit=limit("max_json_kb", self.max_bytes / 1000, "kB"))
        try:
            return json.loads(self._body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError("malformed-request", f"the body is not valid JSON: {exc}",
                           field="body") from None

    def discard(self) -> None:
        """Forget the body."""
        self._body.clear()
