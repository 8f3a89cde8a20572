"""The extension's settings, read from Jupyter's configuration (``c.CpetNb.<name>`` in
``jupyter_server_config.py``, or ``--CpetNb.<name>=...`` on the command line).

How each batch is analysed comes from :class:`cpet_nb.Settings` (``settings_file``, the
``CPET_NB_*`` environment of the server, then the analysis settings a request may give);
these traits say what the server accepts and how much it runs at once.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from traitlets import Float, Int, Unicode, default
from traitlets.config import Configurable

#: 1 MB, as in :attr:`cpet_nb.Settings.max_file_mb`.
MB = 1_000_000
#: Where the API lives, under the server's base URL.
API_PREFIX = "cpet-nb/api/v1"


class CpetNb(Configurable):
    """Limits and resources of the cpet_nb batch API inside a Jupyter server."""

    store = Unicode(
        help="The SQLite job store. Default: <Jupyter data dir>/cpet_nb/jobs.sqlite. Several "
             "servers (e.g. each user's on a JupyterHub) may share one store: each user "
             "sees only their own jobs.").tag(config=True)
    settings_file = Unicode(
        "", help="A cpet_nb settings file (TOML, [cpet_nb] table) for every batch this "
                 "server runs; requests may change only analysis settings.").tag(config=True)
    max_body_mb = Float(
        1024.0, help="Largest request body (MB, 10^6 bytes); larger ones are answered 413 "
                     "body-too-large.").tag(config=True)
    max_file_mb = Float(
        512.0, help="Largest uploaded file or archive (MB); larger ones are answered 413 "
                    "upload-too-large.").tag(config=True)
    max_files = Int(
        5000, help="Most uploaded files in one request (413 too-many-files).").tag(config=True)
    max_json_kb = Float(
        1024.0, help="Largest JSON body (kB) of a submission by server-side "
                     "paths.").tag(config=True)
    submissions_per_minute = Int(
        20, help="Submissions one user may make in 60 s (429 rate-limited).").tag(config=True)
    max_running_batches = Int(
        3, help="Batches one user may have running at once (429 "
                "too-many-batches).").tag(config=True)
    min_free_disk_mb = Float(
        1024.0, help="New batches are refused (503) when the store's disk has less free "
                     "space (MB).").tag(config=True)
    min_free_memory_mb = Float(
        512.0, help="New batches are refused (503) when the machine has less available "
                    "memory (MB).").tag(config=True)
    cluster_min_workers = Int(
        1, help="Workers the embedded dask cluster keeps when idle; it adapts up to "
                "cluster_max_workers under load.").tag(config=True)
    cluster_max_workers = Int(
        0, help="Most workers of the embedded dask cluster (0: one per CPU core). Ignored "
                "when DASK_SCHEDULER_ADDRESS names a scheduler.").tag(config=True)
    executor_threads = Int(
        4, help="Threads that run the API's blocking work (store queries, hashing, "
                "exports) off the server's event loop.").tag(config=True)
    upload_expiry_hours = Float(
        24.0, help="Upload folders of requests that never became a job are removed once "
                   "this old.").tag(config=True)
    single_user = Unicode(
        help="The user name that jobs get under Jupyter's default identity provider (one "
             "token or password: one person). Default: the account running the "
             "server.").tag(config=True)

    @default("store")
    def _default_store(self) -> str:
        return str(Path(jupyter_data_dir()) / "cpet_nb" / "jobs.sqlite")

    @default("single_user")
    def _default_single_user(self) -> str:
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (e.g. in a container)
            return f"uid-{os.getuid()}"
