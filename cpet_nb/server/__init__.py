"""The Jupyter server extension: the batch HTTP API (upload, status, results, cancel,
report, health, staged uploads) inside a running Jupyter server, under
``<base_url>/cpet-nb/api/v1/``. Imports jupyter_server; needs ``cpet-nb[jupyter]``.
Installing the package enables it (``jupyter_server_config.d/cpet_nb.json``); see
``docs/server.md``.

- :mod:`.handlers`: the tornado handlers and their routes, and the entry the API adds to
  JupyterLab's page config (how the panel's upload widget finds it);
- :mod:`.service`: what they do, off the event loop (the Python batch API underneath);
- :mod:`.uploads`: multipart bodies streamed to disk under limits;
- :mod:`.paths`: server-side inputs confined to the server's root;
- :mod:`.limits`: per-user rate limit and running-batch admission;
- :mod:`.config`: the ``c.CpetNb.*`` settings; :mod:`.errors`: the JSON error codes.
"""

from __future__ import annotations

from typing import Any

#: Cleanup of expired uploads and jobs runs this often (ms) while the server runs.
CLEANUP_EVERY_MS = 3600 * 1000


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    """jupyter_server's entry point: this module is the extension."""
    return [{"module": "cpet_nb.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the API's handlers and start its service (called by jupyter_server)."""
    from tornado.ioloop import PeriodicCallback

    from .config import API_PREFIX, CpetNb
    from .handlers import SERVICE_KEY, add_page_config, handlers
    from .service import BatchService, freeze_long_lived

    config = CpetNb(parent=serverapp)
    web_app = serverapp.web_app
    service = BatchService(config, serverapp.root_dir, web_app.settings["base_url"])
    web_app.settings[SERVICE_KEY] = service
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    add_page_config(web_app.settings, service)
    service.pool.submit(service.cleanup)
    PeriodicCallback(lambda: service.pool.submit(service.cleanup), CLEANUP_EVERY_MS).start()
    freeze_long_lived()  # the server's modules: kept out of full garbage collections
    serverapp.log.info("cpet_nb: batch API at %s%s/ (job store %s)",
                       web_app.settings["base_url"], API_PREFIX, config.store)
