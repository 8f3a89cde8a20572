import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpet_nb.model.smoothing import optimal_filter


def dense_penalised_least_squares(t, y, lam):
    """The objective written out as dense normal equations (independent of the banded solve)."""
    n = len(t)
    dt = np.diff(t)
    h = 0.5 * np.concatenate(([dt[0]], t[2:] - t[:-2], [dt[-1]]))
    d = np.diff(np.eye(n), axis=0)
    return np.linalg.solve(np.diag(h) + lam * d.T @ np.diag(1 / dt) @ d, h * y)


def pyoxynet_style_loops(t, y, lam):
    """pyoxynet's algorithm (tridiagonal solve in the slopes) written from its description."""
    h = 0.5 * np.concatenate([[t[1] - t[0]], t[2:] - t[:-2], [t[-1] - t[-2]]])
    dg = lam / h
    a = -dg[1:]
    b = np.diff(t) + dg[:-1] + dg[1:]
    u = np.diff(y).astype(float)
    n = len(u)
    for j in range(n - 1):
        mu = a[j] / b[j]
        b[j + 1] -= mu * a[j]
        u[j + 1] -= mu * u[j]
    u[n - 1] /= b[n - 1]
    for j in range(n - 2, -1, -1):
        u[j] = (u[j] - a[j] * u[j + 1]) / b[j]
    x = np.empty(len(y))
    x[0] = y[0] + lam * u[0] / h[0]
    x[1:] = x[0] + np.cumsum(np.diff(t) * u)
    return x


@pytest.fixture()
def uneven():
    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.3, 3.0, 400))
    return t, np.sin(t / 25) + rng.normal(0, 0.3, len(t))


def test_minimises_the_stated_objective(uneven):
    t, y = uneven
    np.testing.assert_allclose(optimal_filter(t, y, 100), dense_penalised_least_squares(t, y, 100),
                               atol=1e-10)


def test_equals_pyoxynets_loop_algorithm(uneven):
    t, y = uneven
    np.testing.assert_allclose(optimal_filter(t, y, 100), pyoxynet_style_loops(t, y, 100),
                               atol=1e-9)


def test_smooths_noise(uneven):
    t, y = uneven
    smooth = optimal_filter(t, y, 100)
    assert np.std(np.diff(smooth)) < 0.2 * np.std(np.diff(y))


@settings(max_examples=50, deadline=None)
@given(level=st.floats(-1e4, 1e4), n=st.integers(2, 200), lam=st.floats(0.01, 1e4))
def test_constant_in_constant_out(level, n, lam):
    t = np.arange(n, dtype=float)
    np.testing.assert_allclose(optimal_filter(t, np.full(n, level), lam), level,
                               atol=1e-8 * max(1.0, abs(level)))


def test_no_smoothing_returns_the_data(uneven):
    t, y = uneven
    np.testing.assert_allclose(optimal_filter(t, y, 1e-9), y, atol=1e-6)


@pytest.mark.parametrize("t", [[0, 1, 1, 2], [0, 2, 1, 3], [0]])
def test_rejects_times_that_do_not_increase(t):
    with pytest.raises(ValueError):
        optimal_filter(np.array(t, float), np.zeros(len(t)), 100)


def test_several_series_at_once_are_each_smoothed_on_their_own(uneven):
    """Bitwise the numbers of one call per series (the model's scores and the values at a
    threshold are smoothed this way)."""
    t, y = uneven
    series = np.column_stack([y, 3 * y[::-1], np.full(len(y), 7.0)])
    together = optimal_filter(t, series, 100)
    assert together.shape == series.shape
    for j in range(series.shape[1]):
        np.testing.assert_array_equal(together[:, j], optimal_filter(t, series[:, j], 100))
    with pytest.raises(ValueError):
        optimal_filter(t, series[:-1], 100)
