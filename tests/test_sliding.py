"""The shared-convolution evaluation of the CNN-type models against their TFLite interpreter."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import cpet_nb
from cpet_nb.model import MODEL_NAMES, OxynetModel, get_model
from cpet_nb.model import sliding as sliding_module
from cpet_nb.model.oxynet import probe_rows, sliding_windows
from cpet_nb.model.pipeline import model_input
from cpet_nb.model.sliding import CHUNK_WINDOWS, PROBE_ATOL, SlidingCNN

#: The models with the CNN's graph (pyoxynet's regressor, AIS, NSWIS and TCN folders).
SLIDING = ("cnn", "ais", "nswis", "tcn")


def test_cnn_type_models_are_evaluated_with_shared_convolutions_and_the_others_are_not():
    assert {name for name in MODEL_NAMES if get_model(name).sliding is not None} == set(SLIDING)


@pytest.mark.parametrize("name", SLIDING)
def test_shared_convolutions_give_the_interpreter_s_scores_on_every_bundled_test(
        name, bundled_tests):
    model = get_model(name)
    tests = bundled_tests if name == "cnn" else bundled_tests[::5]  # the default model: all
    worst, windows = 0.0, 0
    for path in tests:
        prepared = model_input(cpet_nb.read(path))
        expected = model.predict(prepared.windows)
        got = model.predict_rows(prepared.rows)
        assert got.shape == expected.shape and got.dtype == np.float32
        worst = max(worst, float(np.abs(got - expected).max()))
        windows += len(got)
    assert windows > (90_000 if name == "cnn" else 15_000)
    assert worst < PROBE_ATOL


@pytest.mark.parametrize("n_rows", [0, 1, 39, 40, 41, 47, 64 + 39, 200, CHUNK_WINDOWS + 39,
                                    CHUNK_WINDOWS + 40, 2 * CHUNK_WINDOWS + 39,
                                    2 * CHUNK_WINDOWS + 40])
def test_any_number_of_rows_gives_one_score_per_window(n_rows):
    model = get_model()
    rows = probe_rows(600)[:n_rows]
    expected = model.predict(np.ascontiguousarray(sliding_windows(rows)))
    got = model.predict_rows(rows)
    assert got.shape == (max(n_rows - 39, 0), 3)
    np.testing.assert_allclose(got, expected, rtol=0, atol=PROBE_ATOL)


def test_each_window_depends_only_on_its_own_rows():
    """A change in one row changes exactly the windows that hold it."""
    model = get_model()
    rows = probe_rows(100)
    changed = rows.copy()
    changed[70] = 1 - changed[70]
    before, after = model.predict_rows(rows), model.predict_rows(changed)
    moved = np.flatnonzero(np.abs(after - before).max(axis=1) > 0)
    assert moved.min() >= 70 - 39 and moved.max() <= 70
    assert len(moved) > 30  # most of the 40 windows holding row 70 see it


def test_rows_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=r"shape \[m, 5\]"):
        get_model().predict_rows(np.zeros((50, 4)))


def test_an_evaluator_that_disagrees_with_the_interpreter_is_not_used(monkeypatch):
    real = SlidingCNN.scores
    monkeypatch.setattr(SlidingCNN, "scores",
                        lambda self, rows, **kwargs: real(self, rows, **kwargs) + 1e-3)
    model = OxynetModel("cnn")
    assert model.sliding is None
    rows = probe_rows(10)
    np.testing.assert_array_equal(model.predict_rows(rows),
                                  model.predict(np.ascontiguousarray(sliding_windows(rows))))


def test_a_graph_other_than_the_cnn_s_is_not_read(monkeypatch):
    monkeypatch.setattr(sliding_module, "CNN_OPS", sliding_module.CNN_OPS[:-1] + ("TANH",))
    assert OxynetModel("cnn").sliding is None


def test_threads_evaluating_at_once_keep_their_own_buffers():
    model = get_model()
    inputs = [probe_rows(300 + 97 * i, seed=i) for i in range(6)]
    expected = [model.predict_rows(rows) for rows in inputs]
    with ThreadPoolExecutor(3) as pool:
        for _ in range(3):
            got = list(pool.map(model.predict_rows, inputs))
            for a, b in zip(got, expected, strict=True):
                np.testing.assert_array_equal(a, b)


def test_blas_threads_are_bounded_while_scoring_and_restored_after():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads_now():
        return [lib["num_threads"] for lib in threadpoolctl.threadpool_info()
                if lib["user_api"] == "blas"]

    before = blas_threads_now()
    with sliding_module.blas_threads(1):
        assert set(blas_threads_now()) == {1}
    assert blas_threads_now() == before
    with sliding_module.blas_threads(10_000):  # never raised
        assert blas_threads_now() == before


class _UnreadableInterpreter:
    """An interpreter with the CNN's operators whose constants cannot be read."""

    def _get_ops_details(self):
        return [{"op_name": name, "inputs": [0, 1, 2]} for name in sliding_module.CNN_OPS]

    def get_tensor(self, index):
        raise ValueError("Tensor data is null. Run allocate_tensors() first")


def test_a_graph_whose_weights_cannot_be_read_is_left_to_the_interpreter():
    assert SlidingCNN.from_interpreter(_UnreadableInterpreter()) is None
    assert SlidingCNN.from_interpreter(object()) is None  # no operator details at all
