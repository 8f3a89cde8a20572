"""pyoxynet 0.1.12's threshold models on a TFLite interpreter.

Every model (:data:`MODEL_NAMES`) takes the same input: windows of 40 one-second samples of
min-max-scaled VO2, VCO2, VE, PetO2, PetCO2 (float32, shape ``[n, 40, 5]``); each gives three
scores per window, in the model's own order (which domain each one stands for is decided per
test, see :func:`cpet_nb.model.domains.map_outputs`): sigmoid scores for the CNN-type models
(``cnn``, ``ais``, ``nswis``, ``tcn``), softmax probabilities for the recurrent ones
(``lstmgru``, ``murias_lab``). Each model is loaded once per process (:func:`get_model`); the
windows of a test go through ``invoke`` in batches of :data:`WINDOWS_PER_INVOKE`, the last
one padded, so the interpreter's tensors keep one size for every test (it never resizes
between tests of different lengths) and its memory does not grow with the test's length.
The scores do not depend on the batching or the padding (each window is computed on its
own). The interpreter uses as many threads as the process may use CPUs
(:func:`model_threads`), unless :data:`~cpet_nb.model.runtime.THREADS_ENV` says otherwise
(the batch's analysis processes, one per core, use one each); the scores do not depend on
the thread count either. ``docs/model.md`` says where each model comes from and how it was
converted.

An interpreter whose allocation or invocation failed (e.g. at a memory limit) is
never used again: TFLite can leave it half-resized, and reusing it then fails or corrupts
memory on the next test. It is dropped and a new one is made for the next call.

The scores of a whole test (:meth:`OxynetModel.predict_rows`) of the CNN-type models
(``cnn``, ``ais``, ``nswis``, ``tcn``: one graph) come from
:class:`~cpet_nb.model.sliding.SlidingCNN`: the same weights, read from the interpreter, with
the convolutions computed once per second of the test instead of once per window (about a
quarter of the arithmetic; the scores agree with the interpreter's to about 1e-6, checked on
probe windows when the model is loaded). Models whose graph it does not know go through the
interpreter.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._checks import check_choice
from .runtime import THREADS_ENV, interpreter_class, without_delegate_notice
from .sliding import PROBE_ATOL, SlidingCNN
from .window import N_CHANNELS, N_PAST_POINTS

#: The shipped models, by the name used in settings and result columns (pyoxynet's
#: ``regressor``, ``AIS``, ``NSWIS``, ``TCN``, ``LSTMGRUModel`` and ``murias_lab``).
MODEL_NAMES: tuple[str, ...] = ("cnn", "ais", "nswis", "tcn", "lstmgru", "murias_lab")
#: The model used unless settings choose others: the classic Oxynet CNN.
DEFAULT_MODEL = "cnn"
#: Windows per ``invoke`` (the last batch of a test padded with zeros, their scores dropped).
#: The interpreter holds about 28 kB per window of the batch (under 2 MB at this size). Per
#: window, a batch of 64 is as fast as larger ones on one thread and on two, and with a
#: fixed size the interpreter never resizes (a resize and reallocation cost about as much as
#: an invoke of 256 windows; see docs/performance.md).
WINDOWS_PER_INVOKE = 64


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
    num_threads : int, optional
        Threads of the interpreter (default: :func:`model_threads`).

    Raises
    ------
    ValueError
        For a name that is not one of :data:`MODEL_NAMES`.
    RuntimeError
        When the shipped file's sha256 differs from its provenance record.
    """

    def __init__(self, name: str = DEFAULT_MODEL, runtime: str | None = None,
                 num_threads: int | None = None) -> None:
        check_choice(name, MODEL_NAMES, "model")
        provenance = read_provenance(name)
        model_bytes = resources.files(__package__).joinpath(model_file(name)).read_bytes()
        digest = hashlib.sha256(model_bytes).hexdigest()
        if digest != provenance["output_sha256"]:
            raise RuntimeError(f"{model_file(name)} is damaged: sha256 {digest} differs from "
                               "the provenance record")
        runtime_name, self._interpreter_class = interpreter_class(runtime)
        self._model_bytes = model_bytes
        self.num_threads = model_threads() if num_threads is None else num_threads
        self._lock = threading.Lock()  # an interpreter must not be invoked concurrently
        self._load()
        self.sliding: SlidingCNN | None = self._checked_sliding()
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
        n_windows = len(windows)
        if n_windows == 0:
            return np.empty((0, 3), dtype=np.float32)
        whole = n_windows - n_windows % WINDOWS_PER_INVOKE
        batches = [windows[start: start + WINDOWS_PER_INVOKE]
                   for start in range(0, whole, WINDOWS_PER_INVOKE)]
        if whole < n_windows:  # the last batch, padded with zeros
            last = np.zeros((WINDOWS_PER_INVOKE, N_PAST_POINTS, N_CHANNELS), dtype=np.float32)
            last[: n_windows - whole] = windows[whole:]
            batches.append(last)
        with self._lock:
            scores = [self._invoke(batch) for batch in batches]
        return np.concatenate(scores)[:n_windows]

    def predict_rows(self, rows: np.ndarray) -> np.ndarray:
        """Scores of every window of 40 consecutive rows of one test.

        Parameters
        ----------
        rows : numpy.ndarray
            Shape ``[m, 5]``, scaled to [0, 1] per test; window *s* holds rows ``s ... s+39``
            (:func:`~cpet_nb.model.preprocess.model_rows`).

        Returns
        -------
        numpy.ndarray
            Shape ``[max(m - 39, 0), 3]``, float32 scores in the model's output order: from
            :attr:`sliding` where the model has it, else as :meth:`predict` gives them.
        """
        rows = np.asarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != N_CHANNELS:
            raise ValueError(f"rows must have shape [m, {N_CHANNELS}], got {list(rows.shape)}")
        if self.sliding is not None:
            return self.sliding.scores(rows, threads=self.num_threads)
        return self.predict(sliding_windows(rows))

    def _load(self) -> None:
        """A fresh interpreter, its input sized for :data:`WINDOWS_PER_INVOKE` windows.

        Raises
        ------
        MemoryError
            When the tensors cannot be allocated (for this model, with its shape checked,
            that means memory ran out).
        """
        with without_delegate_notice():  # the first allocation applies XNNPACK and says so
            interpreter = self._interpreter_class(model_content=self._model_bytes,
                                                  num_threads=self.num_threads)
            self._input = interpreter.get_input_details()[0]["index"]
            self._output = interpreter.get_output_details()[0]["index"]
            interpreter.resize_tensor_input(self._input, [WINDOWS_PER_INVOKE, N_PAST_POINTS,
                                                          N_CHANNELS])
            try:
                interpreter.allocate_tensors()
            except RuntimeError as exc:
                raise MemoryError(f"the model's tensors for {WINDOWS_PER_INVOKE} windows "
                                  f"could not be allocated ({exc or 'no reason given'})"
                                  ) from exc
        self._interpreter = interpreter

    def _checked_sliding(self) -> SlidingCNN | None:
        """:class:`SlidingCNN` of this model when its graph is the CNN's and its scores on
        probe windows agree with the interpreter's within :data:`PROBE_ATOL`; else None."""
        sliding = SlidingCNN.from_interpreter(self._interpreter)
        if sliding is None:
            return None
        probe = probe_rows()
        expected = self.predict(sliding_windows(probe))
        try:
            got = sliding.scores(probe, threads=self.num_threads)
        except Exception:  # noqa: BLE001 - whatever fails here, the interpreter is the answer
            return None
        if got.shape != expected.shape or not np.allclose(got, expected, rtol=0,
                                                          atol=PROBE_ATOL):
            return None
        return sliding

    def _invoke(self, batch: np.ndarray) -> np.ndarray:
        """Scores of one batch of :data:`WINDOWS_PER_INVOKE` windows. On any failure the
        interpreter is dropped (a new one is loaded by the next call), then the exception is
        raised."""
        try:
            if self._interpreter is None:
                self._load()
            self._interpreter.set_tensor(self._input, batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()
        except BaseException:
            self._interpreter = None  # never reuse a half-allocated or failed one
            raise


def sliding_windows(rows: np.ndarray) -> np.ndarray:
    """The windows of 40 consecutive rows, ``[max(m - 39, 0), 40, 5]`` (a read-only view)."""
    if len(rows) < N_PAST_POINTS:
        return np.empty((0, N_PAST_POINTS, rows.shape[1]), dtype=rows.dtype)
    return sliding_window_view(rows, N_PAST_POINTS, axis=0).transpose(0, 2, 1)


def probe_rows(n_windows: int = 2 * WINDOWS_PER_INVOKE, seed: int = 20211) -> np.ndarray:
    """Rows for checking an evaluator against the interpreter: a smooth ramp in every
    channel with noise on it, in [0, 1] as scaled data are (``n_windows`` windows)."""
    rng = np.random.default_rng(seed)
    m = n_windows + N_PAST_POINTS - 1
    ramp = np.linspace(0, 1, m)[:, None] ** np.array([1.0, 1.5, 2.0, 0.5, 0.8])
    return np.clip(ramp + rng.normal(0, 0.05, (m, N_CHANNELS)), 0, 1).astype(np.float32)


#: Most threads an interpreter gets by default: a 64-window invoke ran 1.9x faster on two
#: threads than on one (docs/performance.md); more were not measured to help.
MAX_DEFAULT_THREADS = 2
#: The cgroup (v2) file that caps this process's CPU time, as ``"quota period"`` or ``"max"``.
CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def model_threads() -> int:
    """Threads for a new interpreter: :data:`~cpet_nb.model.runtime.THREADS_ENV` when set
    (and not empty), else the CPUs this process may use (``os.sched_getaffinity``, and a
    container's CPU quota, :func:`cgroup_cpus`), at most :data:`MAX_DEFAULT_THREADS`.

    Raises
    ------
    ValueError
        When the environment variable is not a whole number of at least 1.
    """
    value = os.environ.get(THREADS_ENV)
    if not value:
        cpus = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                else os.cpu_count() or 1)
        return max(1, min(cpus, cgroup_cpus() or cpus, MAX_DEFAULT_THREADS))
    if not value.strip().isdigit() or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a whole number of threads >= 1, "
                         f"got {value!r}")
    return int(value)


def cgroup_cpus(path: str = CGROUP_CPU_MAX) -> int | None:
    """CPUs' worth of time a cgroup v2 quota allows this process (``quota / period``, rounded
    up); None without a quota or where the file cannot be read (cgroup v1, not Linux)."""
    try:
        with open(path, encoding="ascii") as stream:
            quota, period = stream.read().split()[:2]
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):  # "max": no quota; absent or unreadable
        return None


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
