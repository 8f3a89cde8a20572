"""Pick a TFLite interpreter: ``ai-edge-litert`` (default) or ``tflite-runtime``.

Both expose the same ``Interpreter`` class. TensorFlow is never imported.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

#: Runtimes in order of preference: (name used in settings, pip distribution, module path).
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai-edge-litert", "ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite-runtime", "tflite_runtime.interpreter"),
)

#: Environment variable that forces one runtime (``ai-edge-litert`` or ``tflite-runtime``).
RUNTIME_ENV = "CPET_NB_TFLITE_RUNTIME"


class RuntimeMissing(ImportError):
    """No TFLite interpreter is installed (or the requested one is not)."""


def interpreter_class(preferred: str | None = None) -> tuple[str, Any]:
    """The ``Interpreter`` class of the first TFLite runtime that imports.

    Parameters
    ----------
    preferred : str, optional
        ``"ai-edge-litert"`` or ``"tflite-runtime"``: use only that one. Defaults to the
        ``CPET_NB_TFLITE_RUNTIME`` environment variable, then to trying both in order.

    Returns
    -------
    (str, type)
        The runtime's name and its ``Interpreter`` class.

    Raises
    ------
    RuntimeMissing
        Naming the package(s) to install.
    """
    preferred = preferred or os.environ.get(RUNTIME_ENV) or None
    candidates = [r for r in RUNTIMES if preferred in (None, r[0])]
    if not candidates:
        names = ", ".join(r[0] for r in RUNTIMES)
        raise ValueError(f"unknown TFLite runtime {preferred!r}; choose one of {names}")
    errors = []
    for name, dist, module in candidates:
        try:
            return name, importlib.import_module(module).Interpreter
        except ImportError as exc:
            errors.append(f"{dist} ({exc})")
    raise RuntimeMissing(
        "no TFLite runtime could be imported: tried " + "; ".join(errors)
        + ". Install one: pip install ai-edge-litert  (or pip install 'cpet-nb[tflite-runtime]')"
    )
