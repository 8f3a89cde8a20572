"""Uploads bigger than the kernel's websocket allows, through the cpet_nb server extension.

``ipywidgets.FileUpload`` sends a whole selection in one websocket message, which Jupyter
caps at 10 MiB. :class:`BigUpload` is a file input whose selection the browser streams to
the extension's ``POST <base_url>cpet-nb/api/v1/uploads`` instead (``XMLHttpRequest``, with
the page's login cookie and XSRF header, showing bytes and files sent); the server keeps
the files in a folder of their own and answers with its record, which the browser sets as
:attr:`BigUpload.staged`. The kernel, on the server's machine, then reads that folder as any
input path. See ``docs/server.md`` (staged uploads) and ``docs/panel.md``.

The extension announces itself in the page config of JupyterLab and Notebook 7 pages (key
:attr:`BigUpload.config_key`, with its limits); where it is not there (Voila, a server
without it) the button is disabled and says so, and ``FileUpload`` or the path field remain.
The front end is an anywidget module (``_bigupload.js`` beside this file): no JupyterLab
extension to build.
"""

from __future__ import annotations

from pathlib import Path

import anywidget
from traitlets import Dict, Unicode


class BigUpload(anywidget.AnyWidget):
    """A button that streams the files chosen to the Jupyter server, with progress.

    Observe :attr:`staged` (``widget.observe(callback, "staged")``): it becomes the
    server's record of each new staged upload, a dict with ``upload_id``, ``folder`` (the
    absolute path of the files' folder on the server's machine), ``files`` (``name``,
    ``size_bytes``), ``total_bytes``, ``created_at`` and ``expires_at``
    (``GET /uploads/{upload_id}`` of ``docs/server.md``).
    """

    _esm = Path(__file__).with_name("_bigupload.js")
    #: The page-config key under which the server extension gives the uploads URL and the
    #: limits (``cpet_nb.server.handlers.PAGE_CONFIG_KEY``).
    config_key = Unicode("cpetNb").tag(sync=True)
    description = Unicode("Upload large selection").tag(sync=True)
    staged = Dict().tag(sync=True)
