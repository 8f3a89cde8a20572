"""The Oxynet CNN (from pyoxynet 0.1.12) on a TFLite interpreter.

Input: windows of 40 one-second samples of min-max-scaled VO2, VCO2, VE, PetO2, PetCO2
(float32, shape ``[n, 40, 5]``). Output: three sigmoid scores per window, in the model's
own order (which domain each one stands for is decided per test, see
:func:`cpet_nb.model.domains.map_outputs`). The model is loaded once per process and all windows
of a test go through one ``invoke``.
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
        runtime_name, interpreter = interpreter_class(runtime)
        with without_delegate_notice():  # the first allocation applies XNNPACK and says so
            self._interpreter = interpreter(model_content=model_bytes, num_threads=1)
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = -1
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
        """
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        if windows.ndim != 3 or windows.shape[1:] != (N_PAST_POINTS, N_CHANNELS):
            raise ValueError(f"windows must have shape [n, {N_PAST_POINTS}, {N_CHANNELS}], "
                             f"got {list(windows.shape)}")
        if len(windows) == 0:
            return np.empty((0, 3), dtype=np.float32)
        with self._lock:
            if len(windows) != self._batch:
                self._interpreter.resize_tensor_input(self._input, list(windows.shape))
                self._interpreter.allocate_tensors()
                self._batch = len(windows)
            self._interpreter.set_tensor(self._input, windows)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


def bundled_model_version() -> str:
    """The shipped model's :attr:`ModelInfo.version`, without loading an interpreter (from
    the provenance record, whose hash :class:`OxynetModel` checks against the file)."""
    provenance = json.loads(resources.files(__package__).joinpath(PROVENANCE_FILE).read_text())
    return f"oxynet-cnn@{provenance['output_sha256'][:12]}"


@cache
def get_model(runtime: str | None = None) -> OxynetModel:
    """The process-wide model for ``runtime`` (loaded on first use, then reused)."""
    return OxynetModel(runtime)
