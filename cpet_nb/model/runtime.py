"""Pick a TFLite interpreter: ``ai-edge-litert`` (default) or ``tflite-runtime``.

Both expose the same ``Interpreter`` class. TensorFlow is never imported.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

#: Runtimes in order of preference: (name used in settings, pip distribution, module path).
RUNTIMES: tuple[tuple[str, str, str], ...] = (
    ("ai-edge-litert", "ai-edge-litert", "ai_edge_litert.interpreter"),
    ("tflite-runtime", "tflite-runtime", "tflite_runtime.interpreter"),
)

#: Environment variable that forces one runtime (``ai-edge-litert`` or ``tflite-runtime``).
RUNTIME_ENV = "CPET_NB_TFLITE_RUNTIME"
#: Environment variable that sets the threads of every interpreter a process makes (default:
#: the CPUs the process may use, at most 2; see :func:`cpet_nb.model.oxynet.model_threads`).
THREADS_ENV = "CPET_NB_MODEL_THREADS"


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


#: The line both runtimes' C++ code writes to stderr when the first ``allocate_tensors`` applies
#: the XNNPACK CPU delegate (its minimal logger honours no log level variable, not even
#: ``TF_CPP_MIN_LOG_LEVEL``). Printed mid-run, it breaks a progress bar.
DELEGATE_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."

_stderr_lock = threading.Lock()  # two captures at once would restore each other's fd 2


@contextmanager
def without_delegate_notice() -> Iterator[None]:
    """Run the body with the process's stderr (file descriptor 2) captured, then write what
    was captured back to it, less :data:`DELEGATE_NOTICE`.

    Native code writes to the descriptor, not to ``sys.stderr``, so the descriptor is
    redirected (``os.dup2``) to a temporary file and restored afterwards, also when the body
    raises. Nothing else is lost: other lines, from this thread or another, come out when the
    body ends, in order. Without a descriptor 2 the body runs as it is.
    """
    with _stderr_lock, tempfile.TemporaryFile() as captured:
        if sys.stderr is not None:
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = b"".join(line for line in captured.read().splitlines(keepends=True)
                            if line.rstrip(b"\r\n") != DELEGATE_NOTICE)
            if kept:
                with os.fdopen(os.dup(2), "wb") as stderr:
                    stderr.write(kept)
