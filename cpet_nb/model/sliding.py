"""The CNN-type models on every window of a test at once, convolutions shared between windows.

pyoxynet's CNN (``regressor``) reads windows of 40 seconds that start one second apart, so two
neighbouring windows share 39 of their 40 rows. Its layers, and those of the AIS, NSWIS and
TCN models, which have the same graph with other weights (read off the flatbuffer by
:meth:`SlidingCNN.from_interpreter`), are::

    causal Conv1D(64, kernel 6, left padding 5) -> MaxPool1D(2) -> BatchNorm
    -> causal Conv1D(64, kernel 6, left padding 5) -> MaxPool1D(2) -> BatchNorm
    -> Flatten(10 x 64) -> Dense(64, ReLU) -> Dense(32, ReLU) -> Dense(16, ReLU) -> Dense(3)
    -> sigmoid

A causal convolution's output at a position depends on the window only through the zeros of
its padding, so every position far enough from the window's start (the ``valid`` part) is the
same number in every window that holds it. :meth:`SlidingCNN.scores` computes those once per
position of the test and each window's few padded positions on their own (the first 5 of 40
positions of the first convolution; the first 8 of 20 of the second, of which only the
first three pooled inputs differ between windows), then the dense layers per window. That is
about a quarter of the arithmetic of evaluating every window on its own (what the TFLite
interpreter does), with the same weights and the same float32 arithmetic, summed in another
order: scores agree with the interpreter's to about 1e-6 (checked at load on probe windows,
:data:`PROBE_ATOL`, and in ``tests/test_sliding.py`` on the bundled tests).

The windows go through in chunks of :data:`CHUNK_WINDOWS`, each in buffers kept per thread
(:class:`_Workspace`), so memory does not grow with the test's length and the arrays are not
allocated, and their pages faulted in, anew for every test (which cost as much as the
arithmetic). The matrix products run on numpy's BLAS; :meth:`SlidingCNN.scores` takes a
number of threads for them (the model's, :func:`~cpet_nb.model.oxynet.model_threads`), so
that a container's CPU quota or ``CPET_NB_MODEL_THREADS`` bounds them as it bounds the
interpreter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .window import N_CHANNELS, N_PAST_POINTS

if TYPE_CHECKING:
    import threadpoolctl

#: The operators of the CNN's flatbuffer, in order; any other graph is not evaluated here.
CNN_OPS: tuple[str, ...] = (
    "PAD", "EXPAND_DIMS", "CONV_2D", "RESHAPE", "EXPAND_DIMS", "MAX_POOL_2D", "MUL", "ADD",
    "RESHAPE", "PAD", "EXPAND_DIMS", "CONV_2D", "RESHAPE", "EXPAND_DIMS", "MAX_POOL_2D", "MUL",
    "ADD", "RESHAPE", "FULLY_CONNECTED", "FULLY_CONNECTED", "FULLY_CONNECTED",
    "FULLY_CONNECTED", "LOGISTIC")
#: Largest difference from the interpreter's scores accepted on the probe windows at load
#: (TFLite and TensorFlow differ by up to 3e-6; docs/model.md).
PROBE_ATOL = 1e-5
#: Windows evaluated together: their buffers take about 3 MiB.
CHUNK_WINDOWS = 256
KERNEL = 6
#: Positions of the first convolution's output (of 40) that see its zero padding: 0 ... 4.
EDGE_1 = KERNEL - 1
#: Pooled rows (of 20) that differ between windows (they hold an edge position): 0, 1, 2.
EDGE_POOLED = 3
#: Rows of the second convolution's output (of 20) that depend on an edge pooled row or on
#: the zero padding: 0 ... 7; their pooled outputs are 0 ... 3 (of 10).
EDGE_2 = EDGE_POOLED + KERNEL - 1
POOLED_2 = 10


@dataclass(frozen=True, eq=False)
class SlidingCNN:
    """A CNN-type model's weights, arranged for :meth:`scores`.

    Attributes
    ----------
    conv1 : numpy.ndarray
        Shape ``[6 * 5, 64]``: the first convolution on 6 consecutive rows (row block *k*:
        tap *k*, which multiplies input row ``p - 5 + k`` of output position *p*).
    conv1_edge : numpy.ndarray
        Shape ``[6 * 5, 6 * 64]``: positions 0 ... 5 of a window from its first 6 rows
        (block (*j*, *p*): tap ``j - p + 5`` where *j* <= *p*, else zero: the padding).
    conv2 : numpy.ndarray
        Shape ``[64, 6 * 64]``: column block *k* is tap *k* of the second convolution.
    conv2_edge : numpy.ndarray
        Shape ``[3 * 64, 8 * 64]``: output rows 0 ... 7 from a window's own pooled rows
        0 ... 2 (block (*q*, *r*): tap ``q - r + 5`` where it exists, else zero).
    bias1, bias2, scale1, shift1, scale2, shift2 : numpy.ndarray
        Shape ``[64]``: each convolution's bias, each batch normalisation's (folded) scale
        and shift.
    dense : tuple of (numpy.ndarray, numpy.ndarray)
        Each dense layer's weights ``[in, out]`` and bias ``[out]``; ReLU after all but the
        last.
    """

    conv1: np.ndarray
    conv1_edge: np.ndarray
    bias1: np.ndarray
    scale1: np.ndarray
    shift1: np.ndarray
    conv2: np.ndarray
    conv2_edge: np.ndarray
    bias2: np.ndarray
    scale2: np.ndarray
    shift2: np.ndarray
    dense: tuple[tuple[np.ndarray, np.ndarray], ...]
    _local: threading.local = field(default_factory=threading.local, init=False,
                                    repr=False, compare=False)

    @classmethod
    def from_interpreter(cls, interpreter: Any) -> SlidingCNN | None:
        """The weights of an allocated TFLite interpreter of a CNN-type model, or None when
        its graph is not :data:`CNN_OPS` with causal padding and the CNN's shapes, or cannot
        be read (the caller then keeps the interpreter).

        The operators' options (fused activations, strides, pool sizes) are not exposed by
        the interpreter's Python API; :class:`~cpet_nb.model.oxynet.OxynetModel` checks the
        result against the interpreter on probe windows before using it."""
        try:
            return cls._read(interpreter)
        except (AttributeError, KeyError, IndexError, TypeError, ValueError, RuntimeError):
            return None  # another runtime's API, or constants that are not where expected

    @classmethod
    def _read(cls, interpreter: Any) -> SlidingCNN | None:
        ops = interpreter._get_ops_details()  # both runtimes have it; not public API
        ops = [op for op in ops if op["op_name"] != "DELEGATE"]
        if tuple(op["op_name"] for op in ops) != CNN_OPS:
            return None

        def constant(op: int, position: int) -> np.ndarray:
            return np.array(interpreter.get_tensor(ops[op]["inputs"][position]),
                            dtype=np.float32)

        padding = [interpreter.get_tensor(ops[i]["inputs"][1]).tolist() for i in (0, 9)]
        if padding != [[[0, 0], [KERNEL - 1, 0], [0, 0]]] * 2:
            return None
        # TFLite's convolution weights are [out, 1, k, in]
        conv1, conv2 = constant(2, 1), constant(11, 1)
        channels = conv1.shape[0]
        dense = tuple((constant(i, 1).T, constant(i, 2)) for i in range(18, 22))
        widths = [POOLED_2 * channels] + [bias.shape[0] for _, bias in dense]
        if (conv1.shape != (channels, 1, KERNEL, N_CHANNELS)
                or conv2.shape != (channels, 1, KERNEL, channels)
                or any(constant(i, j).shape != (channels,)
                       for i, j in ((2, 2), (6, 1), (7, 1), (11, 2), (15, 1), (16, 1)))
                or [w.shape for w, _ in dense] != list(zip(widths[:-1], widths[1:],
                                                            strict=True))
                or widths[-1] != 3):
            return None
        conv1, conv2 = (w[:, 0].transpose(1, 2, 0) for w in (conv1, conv2))  # [k, in, out]
        return cls(conv1=np.ascontiguousarray(conv1.reshape(-1, channels)),
                   conv1_edge=_toeplitz(conv1, KERNEL, KERNEL),
                   bias1=constant(2, 2), scale1=constant(6, 1), shift1=constant(7, 1),
                   conv2=np.ascontiguousarray(conv2.transpose(1, 0, 2).reshape(channels, -1)),
                   conv2_edge=_toeplitz(conv2, EDGE_POOLED, EDGE_2),
                   bias2=constant(11, 2), scale2=constant(15, 1), shift2=constant(16, 1),
                   dense=tuple((np.ascontiguousarray(w), b) for w, b in dense))

    def scores(self, rows: np.ndarray, threads: int | None = None) -> np.ndarray:
        """The scores of every window of 40 consecutive rows.

        Parameters
        ----------
        rows : numpy.ndarray
            Shape ``[m, 5]``, the scaled 1 s grid; window *s* holds rows ``s ... s+39``.
        threads : int, optional
            At most this many BLAS threads for the matrix products (default: BLAS's own
            setting).

        Returns
        -------
        numpy.ndarray
            Shape ``[max(m - 39, 0), 3]``, float32, as the interpreter gives for those windows.
        """
        x = np.ascontiguousarray(rows, dtype=np.float32)
        n = max(len(x) - N_PAST_POINTS + 1, 0)
        scores = np.empty((n, len(self.dense[-1][1])), dtype=np.float32)
        workspace = getattr(self._local, "workspace", None)
        if workspace is None:
            workspace = self._local.workspace = _Workspace(self)
        with blas_threads(threads):
            for start in range(0, n, CHUNK_WINDOWS):
                stop = min(start + CHUNK_WINDOWS, n)
                scores[start: stop] = self._chunk(x[start: stop + N_PAST_POINTS - 1], workspace)
        return scores

    def _chunk(self, x: np.ndarray, ws: _Workspace) -> np.ndarray:
        """Scores of the ``len(x) - 39`` windows of ``x`` (at most :data:`CHUNK_WINDOWS`), in
        ``ws``'s buffers (the returned array is one of them)."""
        n = len(x) - N_PAST_POINTS + 1
        pooled, window_pooled = self._first_block(x, n, ws)
        z = self._second_block(pooled, window_pooled, n, ws)
        h = z.reshape(n, -1)
        for i, (weights, bias) in enumerate(self.dense):
            h = np.matmul(h, weights, out=ws.dense[i][:n])
            h += bias
            if i < len(self.dense) - 1:
                np.maximum(h, 0, out=h)
        np.negative(h, out=h)
        with np.errstate(over="ignore"):  # exp(-x) = inf for x < -88: the score is then 0
            np.exp(h, out=h)
        h += 1
        np.reciprocal(h, out=h)
        return h

    def _first_block(self, x: np.ndarray, n: int, ws: _Workspace
                     ) -> tuple[np.ndarray, np.ndarray]:
        """Convolution, pooling and normalisation of the first block.

        Returns the pooled rows shared by all windows, ``[m - 1, 64]`` (row *t* pools
        positions *t* and *t + 1*; rows before 5 are not defined), and each window's
        :data:`EDGE_POOLED` pooled rows that see the padding, ``[n, 3, 64]``.
        """
        m = len(x)
        channels = x.shape[1]
        # row t: rows t ... t + 5, the inputs of position t + 5
        stacked = ws.stacked1[: m - EDGE_1]
        np.copyto(stacked, as_strided(x, shape=(m - EDGE_1, KERNEL * channels),
                                      strides=x.strides))
        full = np.matmul(stacked, self.conv1, out=ws.full1[EDGE_1: m])  # positions 5 ... m-1
        edge = np.matmul(stacked[:n], self.conv1_edge, out=ws.edge1[:n]).reshape(
            n, KERNEL, -1)  # each window's positions 0 ... 5
        # the bias is the same for both positions of a pool, so it is added after it
        pooled = np.maximum(full[:-1], full[1:], out=ws.pooled[EDGE_1: m - 1])
        pooled += self.bias1
        pooled *= self.scale1
        pooled += self.shift1
        window_pooled = np.maximum(edge[:, 0::2], edge[:, 1::2], out=ws.window_pooled[:n])
        window_pooled += self.bias1
        window_pooled *= self.scale1
        window_pooled += self.shift1
        return ws.pooled[: m - 1], window_pooled

    def _second_block(self, pooled: np.ndarray, window_pooled: np.ndarray, n: int,
                      ws: _Workspace) -> np.ndarray:
        """The second block's pooled output of every window, ``[n, 10, 64]``.

        Window *s*'s pooled row *q* >= 3 is ``pooled[s + 2q]``; its output row *r* sums
        taps *k* over pooled rows ``r - 5 + k`` (zero before 0).
        """
        m, channels = pooled.shape
        low = 2 * EDGE_POOLED  # the first pooled row read (window 0's row 3)
        products = np.matmul(pooled[low:], self.conv2, out=ws.products2[: m - low])
        taps = ws.taps2[:, :m]  # [k, row, out]: each tap's products, contiguous per tap
        taps[:, low:] = products.reshape(m - low, KERNEL, channels).transpose(1, 0, 2)
        # rows r >= 8 read shared pooled rows only: full[t] is the output at pooled row
        # t + 10, so window s's row r is full[s + 2r - 10], and its pooled output u >= 4
        # (rows 2u, 2u + 1) is shared[s + 4u - 10]
        first = EDGE_2 // 2
        lowest = 4 * first - 2 * (KERNEL - 1)  # window 0's u = 4: full[6]
        span = m - 2 * (KERNEL - 1)
        full = ws.full2[:span]
        np.add(taps[0, lowest: span], self.bias2, out=full[lowest:])
        for k in range(1, KERNEL):
            full[lowest:] += taps[k, lowest + 2 * k: 2 * k + span]
        valid = np.maximum(full[lowest: -2], full[lowest + 2:], out=ws.shared[lowest: span - 2])
        valid *= self.scale2
        valid += self.shift2
        z = ws.z[:n]
        shared = ws.shared
        row = shared.strides[0]
        z[:, first:] = as_strided(shared[lowest:], shape=(n, POOLED_2 - first, channels),
                                  strides=(row, 4 * row, shared.strides[1]))
        # rows r < 8: the window's own pooled rows 0-2 (one product) and shared rows 3 ... r
        out = np.matmul(window_pooled.reshape(n, -1), self.conv2_edge,
                        out=ws.out[:n]).reshape(n, EDGE_2, channels)
        out += self.bias2
        # tap k adds shared pooled row q (window s's: taps[k, s + 2q]) to output row
        # r = q + 5 - k, for 3 <= q <= r < 8: rows 8 - k ... 7 from q = 3 ... k + 2, all in
        # one strided add per tap (in the order of q for every row, as one add per (q, r))
        tap_row, tap_column = taps.strides[1:]
        for k in range(1, KERNEL):
            out[:, EDGE_2 - k:] += as_strided(taps[k, 2 * EDGE_POOLED:],
                                              shape=(n, k, channels),
                                              strides=(tap_row, 2 * tap_row, tap_column))
        edge_z = np.maximum(out[:, 0::2], out[:, 1::2], out=z[:, :first])
        edge_z *= self.scale2
        edge_z += self.shift2
        return z


@contextmanager
def blas_threads(limit: int | None) -> Iterator[None]:
    """At most ``limit`` threads in numpy's BLAS while the block runs (never more than it
    has; ``None``: unchanged). BLAS's thread count is one per process: the limit holds for
    every thread's products meanwhile."""
    if limit is None:
        yield
        return
    controller = _blas_controller()
    current = min((lib.num_threads for lib in controller.select(user_api="blas").lib_controllers),
                  default=limit)
    if current <= limit:
        yield
        return
    with controller.limit(limits=limit, user_api="blas"):
        yield


@cache
def _blas_controller() -> threadpoolctl.ThreadpoolController:
    """The BLAS libraries loaded (found once: numpy's is loaded before any model)."""
    import threadpoolctl

    return threadpoolctl.ThreadpoolController()


def _toeplitz(taps: np.ndarray, n_in: int, n_out: int) -> np.ndarray:
    """The causal convolution of ``n_in`` input rows to ``n_out`` output positions as one
    matrix ``[n_in * c_in, n_out * out]``: block (*j*, *p*) is tap ``j - p + k - 1`` (for
    ``taps`` ``[k, c_in, out]``) where that is a tap, else zero."""
    k, c_in, c_out = taps.shape
    matrix = np.zeros((n_in, c_in, n_out, c_out), dtype=np.float32)
    for j in range(n_in):
        for p in range(n_out):
            tap = j - p + k - 1
            if 0 <= tap < k:
                matrix[j, :, p] = taps[tap]
    return matrix.reshape(n_in * c_in, n_out * c_out)


class _Workspace:
    """The buffers of one chunk of :data:`CHUNK_WINDOWS` windows (one per thread)."""

    def __init__(self, model: SlidingCNN) -> None:
        windows, rows = CHUNK_WINDOWS, CHUNK_WINDOWS + N_PAST_POINTS - 1
        channels = len(model.bias1)

        def empty(*shape: int) -> np.ndarray:
            return np.empty(shape, dtype=np.float32)

        self.stacked1 = empty(rows - EDGE_1, model.conv1.shape[0])
        self.full1 = empty(rows, channels)
        self.edge1 = empty(windows, KERNEL * channels)
        self.pooled = empty(rows - 1, channels)
        self.window_pooled = empty(windows, EDGE_POOLED, channels)
        self.products2 = empty(rows - 1, KERNEL * channels)
        self.taps2 = empty(KERNEL, rows - 1, channels)
        self.full2 = empty(rows - 1 - 2 * (KERNEL - 1), channels)
        self.shared = empty(rows - 1 - 2 * (KERNEL - 1), channels)
        self.out = empty(windows, EDGE_2 * channels)
        self.z = empty(windows, POOLED_2, channels)
        self.dense = [empty(windows, len(bias)) for _, bias in model.dense]
