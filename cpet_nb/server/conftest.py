"""pytest: without ``cpet-nb[jupyter]`` the extension's modules (and so their doctests)
cannot be imported: they are then not collected."""

from __future__ import annotations

import importlib.util

if any(importlib.util.find_spec(name) is None for name in ("jupyter_server", "python_multipart")):
    collect_ignore_glob = ["*.py"]
