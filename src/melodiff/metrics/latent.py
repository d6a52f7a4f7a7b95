"""Latent-space metrics (docs/PAPER.md §7): Fréchet distance and RBF-kernel MMD between real and generated latents.

Inputs are numpy arrays of *normalised* latents, either (N, D) or sequences (N, L, D). Sequences are flattened to one
vector per latent, (N·L, D): both metrics compare the distribution of single 2-bar-chunk latents, not of whole
sequences. All arithmetic is float64.
"""

from __future__ import annotations

import numpy as np

MMD_BLOCK = 2048  # rows per kernel block: a block is at most MMD_BLOCK² float64 values (32 MiB)


def _as_vectors(x: np.ndarray, name: str) -> np.ndarray:
    """(N, D) or (N, L, D) -> float64 (N·L, D)."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{name} must be (N, D) or (N, L, D), got shape {arr.shape}")
    arr = arr.reshape(-1, arr.shape[-1])
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _check_pair(real: np.ndarray, generated: np.ndarray, min_rows: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = _as_vectors(real, "real"), _as_vectors(generated, "generated")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"latent sizes differ: real D={x.shape[1]}, generated D={y.shape[1]}")
    if len(x) < min_rows or len(y) < min_rows:
        raise ValueError(f"need at least {min_rows} latents per set, got {len(x)} and {len(y)}")
    return x, y


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (negative round-off eigenvalues -> 0)."""
    eigvals, eigvecs = np.linalg.eigh(matrix)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0.0, None))) @ eigvecs.T


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """Fréchet distance ‖μ_r − μ_g‖² + tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}) between Gaussians fitted to each set.

    real (N, D) or (N, L, D); generated (M, D) or (M, L, D); at least 2 latents each. Covariances are unbiased
    (``ddof=1``, as numpy's ``cov``). Units: squared latent units; ≥ 0, 0 for identical sets.

    tr (Σ_r Σ_g)^{1/2} is computed as tr (Σ_r^{1/2} Σ_g Σ_r^{1/2})^{1/2}: the same eigenvalues, but of a symmetric PSD
    matrix, so ``eigh`` gives real, clipped-at-zero eigenvalues and no complex ``sqrtm`` output (or its imaginary
    round-off) ever arises, even for singular covariances (D > N).
    """
    x, y = _check_pair(real, generated, min_rows=2)
    mu_x, mu_y = x.mean(axis=0), y.mean(axis=0)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    root_x = _sqrt_psd(cov_x)
    middle = root_x @ cov_y @ root_x
    middle = 0.5 * (middle + middle.T)
    tr_covmean = float(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None)).sum())
    diff = mu_x - mu_y
    fd = float(diff @ diff) + float(np.trace(cov_x) + np.trace(cov_y)) - 2.0 * tr_covmean
    return max(fd, 0.0)


def _kernel_mean(a: np.ndarray, b: np.ndarray, gamma: float, block: int) -> float:
    """Mean of exp(−γ ‖a_i − b_j‖²) over all (i, j), computed block by block (memory O(block²))."""
    sq_a = np.einsum("ij,ij->i", a, a)
    sq_b = np.einsum("ij,ij->i", b, b)
    total = 0.0
    for i in range(0, len(a), block):
        a_blk, sq_a_blk = a[i : i + block], sq_a[i : i + block]
        for j in range(0, len(b), block):
            dist = sq_a_blk[:, None] + sq_b[None, j : j + block] - 2.0 * (a_blk @ b[j : j + block].T)
            total += float(np.exp(-gamma * np.maximum(dist, 0.0)).sum())
    return total / (len(a) * len(b))


def mmd_rbf(real: np.ndarray, generated: np.ndarray, gamma: float = 1.0, block: int = MMD_BLOCK) -> float:
    """Biased estimate of the *squared* MMD with the RBF kernel k(x, y) = exp(−γ ‖x − y‖²) (Gretton et al. 2012):

        MMD²_b = mean_ij k(x_i, x_j) + mean_ij k(y_i, y_j) − 2 mean_ij k(x_i, y_j)   (diagonals included)

    as in Magenta's symbolic-music-diffusion ``mmd_rbf``. real (N, D) or (N, L, D); generated (M, D) or (M, L, D).
    Unitless, in [0, 2], 0 for identical sets. Memory stays O(block²) for any N, M (kernel matrices are never formed).
    """
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    x, y = _check_pair(real, generated, min_rows=1)
    mmd2 = _kernel_mean(x, x, gamma, block) + _kernel_mean(y, y, gamma, block) - 2.0 * _kernel_mean(x, y, gamma, block)
    return max(mmd2, 0.0)
