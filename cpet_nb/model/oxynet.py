"""The Oxynet CNN (from pyoxynet 0.1.12) on a TFLite interpreter.

Input: windows of 40 one-second samples of min-max-scaled VO2, VCO2, VE, PetO2, PetCO2
(float32, shape ``[n, 40, 5]``). Output: three sigmoid scores per window, in the model's
own order (which domain each one stands for is decided per test, see
:func:`cpet_nb.model.domains.map_outputs`). The model is loaded once per process; the windows
of a test go through ``invoke`` in batches of at most :data:`MAX_WINDOWS_PER_INVOKE` (one batch
for a test of up to 34 min), so the interpreter's memory does not grow with the test's length.
The scores do not depend on the batching (each window is computed on its own).

An interpreter whose resizing, allocation or invocation failed (e.g. at a memory limit) is
never used again: TFLite can leave it half-resized, and reusing it then fails or corrupts
memory on the next test. It is dropped and a new one is made for the next call.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from .runtime import interpreter_class, without_delegate_notice

MODEL_FILE = "oxynet_cnn.tflite"
PROVENANCE_FILE = "oxynet_cnn.provenance.json"
N_PAST_POINTS = 40
N_CHANNELS = 5
#: Most windows per ``invoke``. The interpreter holds about 28 kB per window of the batch
#: (57 MB at this size), so this bounds its memory for any length of test.
MAX_WINDOWS_PER_INVOKE = 2048


@dataclass(frozen=True)
class ModelInfo:
    """What model produced a result: enough to tell whether two results are comparable."""

    name: str
    sha256: str
    source: str
    runtime: str

    @property
    def version(self) -> str:
        """Short identifier, e.g. ``oxynet-cnn@5d9e0c62b9a3``."""
        return f"{self.name}@{self.sha256[:12]}"


class OxynetModel:
    """A loaded Oxynet CNN. Use :func:`get_model` to share one per process.

    Parameters
    ----------
    runtime : str, optional
        ``"ai-edge-litert"`` or ``"tflite-runtime"`` (default: whichever imports).
    """

    def __init__(self, runtime: str | None = None) -> None:
        package = resources.files(__package__)
        model_bytes = package.joinpath(MODEL_FILE).read_bytes()
        provenance = json.loads(package.joinpath(PROVENANCE_FILE).read_text())
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != provenance["output_sha256"]:
            raise RuntimeError(
                f"{MODEL_FILE} is damaged: sha256 {digest} differs from the provenance record"
            )
        runtime_name, self._interpreter_class = interpreter_class(runtime)
        self._model_bytes = model_bytes
        self._load()
        self._lock = threading.Lock()  # an interpreter must not be invoked concurrently
        self.provenance: dict[str, Any] = provenance
        self.info = ModelInfo(
            name="oxynet-cnn",
            sha256=digest,
            source=f"pyoxynet {provenance['source_version']} regressor",
            runtime=runtime_name,
        )

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """Scores for every window in one call.

        Parameters
        ----------
        windows : numpy.ndarray
            Shape ``[n, 40, 5]``, scaled to [0, 1] per test.

        Returns
        -------
        numpy.ndarray
            Shape ``[n, 3]``, float32 sigmoid scores in the model's output order.

        Raises
        ------
        MemoryError
            When the interpreter's tensors cannot be allocated; the model stays usable.
        """
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[1:] != (N_PAST_POINTS, N_CHANNELS):
            raise ValueError(f"windows must have shape [n, {N_PAST_POINTS}, {N_CHANNELS}], "
                             f"got {list(windows.shape)}")
        if len(windows) == 0:
            return np.empty((0, 3), dtype=np.float32)
        with self._lock:
            return np.concatenate([self._invoke(windows[start: start + MAX_WINDOWS_PER_INVOKE])
                                   for start in range(0, len(windows), MAX_WINDOWS_PER_INVOKE)])

    def _load(self) -> None:
        """A fresh interpreter (its tensors are allocated again for the first batch)."""
        with without_delegate_notice():  # the first allocation applies XNNPACK and says so
            self._interpreter = self._interpreter_class(model_content=self._model_bytes,
                                                        num_threads=1)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = -1

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        """Scores of one batch. On any failure the interpreter is dropped (a new one is loaded
        by the next call), then the exception is raised."""
        try:
            if self._interpreter is None:
                self._load()
            if len(batch) != self._batch:
                self._resize(len(batch))
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()
        except BaseException:
            self._interpreter = None  # never reuse a half-resized or half-allocated one
            raise

    def _resize(self, n_windows: int) -> None:
        """Resize the input to ``n_windows`` and allocate the tensors.

        Raises
        ------
        MemoryError
            When the tensors cannot be allocated (for this model, with its shape checked,
            that means memory ran out).
        """
        self._interpreter.resize_tensor_input(self._input, [n_windows, N_PAST_POINTS,
                                                            N_CHANNELS])
        try:
            self._interpreter.allocate_tensors()
        except RuntimeError as exc:
            raise MemoryError(f"the model's tensors for {n_windows} windows could not be "
                              f"allocated ({exc or 'no reason given'})") from exc
        self._batch = n_windows


def bundled_model_version() -> str:
    """The shipped model's :attr:`ModelInfo.version`, without loading an interpreter (from
    the provenance record, whose hash :class:`OxynetModel` checks against the file)."""
    provenance = json.loads(resources.files(__package__).joinpath(PROVENANCE_FILE).read_text())
    return f"oxynet-cnn@{provenance['output_sha256'][:12]}"


@cache
def get_model(runtime: str | None = None) -> OxynetModel:
    """The process-wide model for ``runtime`` (loaded on first use, then reused)."""
    return OxynetModel(runtime)
