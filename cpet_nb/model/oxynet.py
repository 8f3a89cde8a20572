"""pyoxynet 0.1.12's threshold models on a TFLite interpreter.

Every model (:data:`MODEL_NAMES`) takes the same input: windows of 40 one-second samples of
min-max-scaled VO2, VCO2, VE, PetO2, PetCO2 (float32, shape ``[n, 40, 5]``); each gives three
scores per window, in the model's own order (which domain each one stands for is decided per
test, see :func:`cpet_nb.model.domains.map_outputs`): sigmoid scores for the CNN-type models
(``cnn``, ``ais``, ``nswis``, ``tcn``), softmax probabilities for the recurrent ones
(``lstmgru``, ``murias_lab``). Each model is loaded once per process (:func:`get_model`); the
windows of a test go through ``invoke`` in batches of at most :data:`MAX_WINDOWS_PER_INVOKE`
(a 12-minute test is three batches), so the interpreter's memory does not grow with the
test's length. The scores do not depend on the batching (each window is computed on its
own). ``docs/model.md`` says where each model comes from and how it was converted.

An interpreter whose resizing, allocation or invocation failed (e.g. at a memory limit) is
never used again: TFLite can leave it half-resized, and reusing it then fails or corrupts
memory on the next test. It is dropped and a new one is made for the next call.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from .._checks import check_choice
from .runtime import interpreter_class, without_delegate_notice

#: The shipped models, by the name used in settings and result columns (pyoxynet's
#: ``regressor``, ``AIS``, ``NSWIS``, ``TCN``, ``LSTMGRUModel`` and ``murias_lab``).
MODEL_NAMES: tuple[str, ...] = ("cnn", "ais", "nswis", "tcn", "lstmgru", "murias_lab")
#: The model used unless settings choose others: the classic Oxynet CNN.
DEFAULT_MODEL = "cnn"
N_PAST_POINTS = 40
N_CHANNELS = 5
#: Most windows per ``invoke``. The interpreter holds about 28 kB per window of the batch
#: (7 MB at this size), so this bounds its memory for any length of test. Per window an
#: invoke of 256 takes as long as one of 2,048 (resizing costs ~0.03 ms), and a process that
#: analyses a 12-minute test peaks ~20 MiB lower than with one batch of all its windows.
MAX_WINDOWS_PER_INVOKE = 256


def model_file(name: str) -> str:
    """File name of model ``name``'s TFLite flatbuffer inside :mod:`cpet_nb.model`."""
    return f"oxynet_{name}.tflite"


def provenance_file(name: str) -> str:
    """File name of model ``name``'s provenance record (see ``tools/convert_pyoxynet_model.py``)."""
    return f"oxynet_{name}.provenance.json"


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
    """A loaded pyoxynet model. Use :func:`get_model` to share one per process.

    Parameters
    ----------
    name : str
        One of :data:`MODEL_NAMES`.
    runtime : str, optional
        ``"ai-edge-litert"`` or ``"tflite-runtime"`` (default: whichever imports).

    Raises
    ------
    ValueError
        For a name that is not one of :data:`MODEL_NAMES`.
    RuntimeError
        When the shipped file's sha256 differs from its provenance record.
    """

    def __init__(self, name: str = DEFAULT_MODEL, runtime: str | None = None) -> None:
        check_choice(name, MODEL_NAMES, "model")
        provenance = read_provenance(name)
        model_bytes = resources.files(__package__).joinpath(model_file(name)).read_bytes()
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != provenance["output_sha256"]:
            raise RuntimeError(f"{model_file(name)} is damaged: sha256 {digest} differs from "
                               "the provenance record")
        runtime_name, self._interpreter_class = interpreter_class(runtime)
        self._model_bytes = model_bytes
        self._load()
        self._lock = threading.Lock()  # an interpreter must not be invoked concurrently
        self.name = name
        self.provenance: dict[str, Any] = provenance
        self.info = ModelInfo(
            name=f"oxynet-{name}",
            sha256=digest,
            source=f"pyoxynet {provenance['source_version']} {provenance['source_folder']}",
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
            Shape ``[n, 3]``, float32 scores in the model's output order.

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


@cache
def read_provenance(name: str) -> dict[str, Any]:
    """Model ``name``'s provenance record (source, hashes, conversion check)."""
    check_choice(name, MODEL_NAMES, "model")
    return json.loads(resources.files(__package__).joinpath(provenance_file(name)).read_text())


def bundled_model_version(names: Sequence[str] = (DEFAULT_MODEL,)) -> str:
    """The :attr:`ModelInfo.version` of the models ``names``, joined by ``+``
    (``oxynet-cnn@5d9e0c62b9a3`` for the default), without loading an interpreter: from the
    provenance records, whose hashes :class:`OxynetModel` checks against the files."""
    return "+".join(f"oxynet-{name}@{read_provenance(name)['output_sha256'][:12]}"
                    for name in names)


@cache
def get_model(name: str = DEFAULT_MODEL, runtime: str | None = None) -> OxynetModel:
    """The process-wide model ``name`` for ``runtime`` (loaded on first use, then reused)."""
    return OxynetModel(name, runtime)
