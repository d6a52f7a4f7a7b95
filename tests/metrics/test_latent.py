"""Latent-space metrics (docs/PAPER.md §7): Fréchet distance and biased RBF MMD²."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from melodiff.metrics.latent import frechet_distance, mmd_rbf


def gaussian_set(n: int = 400, d: int = 6, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing


def sqrtm_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm (Magenta's implementation)."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = scipy.linalg.sqrtm(cov_x @ cov_y).real
    return float((mu_x - mu_y) @ (mu_x - mu_y) + np.trace(cov_x + cov_y - 2 * covmean))


# ---- Fréchet distance ----------------------------------------------------------------------------------------------
def test_fd_of_a_set_with_itself_is_zero() -> None:
    x = gaussian_set()
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)


def test_fd_equals_squared_mean_shift_for_equal_covariances() -> None:
    x = gaussian_set()
    shift = np.array([0.5, -1.0, 0.0, 2.0, 0.1, 0.0])
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-9, abs=1e-9)


def test_fd_grows_with_mean_shift() -> None:
    x, y = gaussian_set(seed=0), gaussian_set(seed=1)
    values = [frechet_distance(x, y + s) for s in (0.0, 0.5, 1.0, 2.0)]
    assert np.all(np.diff(values) > 0)


def test_fd_matches_sqrtm_formula_and_is_symmetric() -> None:
    x, y = gaussian_set(seed=0), 1.5 * gaussian_set(seed=1) + 0.3
    fd = frechet_distance(x, y)
    assert fd == pytest.approx(sqrtm_reference(x, y), rel=1e-8)
    assert fd == pytest.approx(frechet_distance(y, x), rel=1e-9)


def test_fd_one_dimensional_closed_form() -> None:
    base = np.array([-1.0, 1.0] * 50)[:, None]  # mean 0, unbiased variance 100/99
    var = 100 / 99
    # N(0, v) vs N(3, 4v): FD = 9 + (√v − 2√v)² = 9 + v
    assert frechet_distance(base, 2 * base + 3) == pytest.approx(9 + var, rel=1e-12)


def test_fd_flattens_sequences_and_handles_singular_covariances() -> None:
    x, y = gaussian_set(n=60, d=8, seed=2), gaussian_set(n=60, d=8, seed=3)
    assert frechet_distance(x.reshape(10, 6, 8), y.reshape(20, 3, 8)) == pytest.approx(frechet_distance(x, y))
    few_x, few_y = gaussian_set(n=5, d=16, seed=4), gaussian_set(n=4, d=16, seed=5)  # rank-deficient covariances
    fd = frechet_distance(few_x, few_y)
    assert np.isfinite(fd) and fd >= 0
    assert frechet_distance(few_x, few_x) == pytest.approx(0.0, abs=1e-8)


def test_fd_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="latent sizes differ"):
        frechet_distance(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="at least 2"):
        frechet_distance(np.zeros((1, 3)), np.zeros((4, 3)))


# ---- MMD -----------------------------------------------------------------------------------------------------------
def test_mmd_of_a_set_with_itself_is_zero() -> None:
    x = gaussian_set(n=200)
    assert mmd_rbf(x, x) == pytest.approx(0.0, abs=1e-12)


def test_mmd_positive_and_growing_for_shifted_sets() -> None:
    x = gaussian_set(n=200, seed=0)
    values = [mmd_rbf(x, x + s) for s in (0.1, 0.5, 2.0)]
    assert values[0] > 0
    assert np.all(np.diff(values) > 0)


def test_mmd_two_points_closed_form() -> None:
    # single points 0 and d: 1 + 1 − 2 exp(−γ d²)
    assert mmd_rbf(np.zeros((1, 2)), np.array([[3.0, 4.0]]), gamma=0.1) == pytest.approx(2 - 2 * np.exp(-2.5))


def test_mmd_matches_dense_formula_and_blocking() -> None:
    x, y = gaussian_set(n=37, d=3, seed=6), gaussian_set(n=23, d=3, seed=7) + 0.4
    gamma = 0.5

    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-gamma * ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    dense = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    assert mmd_rbf(x, y, gamma=gamma) == pytest.approx(dense, rel=1e-10)
    assert mmd_rbf(x, y, gamma=gamma, block=5) == pytest.approx(dense, rel=1e-10)
    assert mmd_rbf(y, x, gamma=gamma) == pytest.approx(dense, rel=1e-10)


def test_mmd_flattens_sequences() -> None:
    x, y = gaussian_set(n=24, d=4, seed=8), gaussian_set(n=24, d=4, seed=9)
    assert mmd_rbf(x.reshape(6, 4, 4), y.reshape(8, 3, 4)) == pytest.approx(mmd_rbf(x, y))
