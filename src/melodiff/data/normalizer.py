"""Latent trimming and normalisation (docs/PAPER.md §3) as one explicit, invertible object saved with every model.

Trimming keeps the VAE dims whose mean encoder sigma over the training set is below ``threshold`` (the others are
posterior-collapsed: they carry no information). Scaling uses global scalars (never per split) fitted on the trimmed
*training* latents, one of two ways (``Scaling``):
- ``minmax`` (the paper): x = 2 (z - min) / (max - min) - 1, so the training data fill [-1, 1];
- ``standard`` (melodiff's default): x = (z - mean) / std, so the training data have unit variance. With min/max
  scaling our latents have a standard deviation of 0.16, which leaves most of the paper's noise schedule at a
  signal-to-noise ratio near zero (docs/DEVIATIONS.md); unit variance is what the schedule was designed for.
``bound`` is the largest |x| of the training data: samplers clip their x0 predictions to [-bound, bound].
``use_mean`` records how melodies become latents: a sampled z per chunk (the paper, default) or the encoder mean;
``in_c`` that they were moved to C first (music/keys.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch

from melodiff.device import randn
from melodiff.errors import MelodiffError


class Scaling(str, Enum):
    MINMAX = "minmax"
    STANDARD = "standard"


@dataclass(frozen=True)
class LatentNormalizer:
    z_size: int
    dims: tuple[int, ...]  # kept VAE dims, ascending
    low: float  # min and max of the kept training latents
    high: float
    scaling: Scaling = Scaling.MINMAX  # what a saved normaliser without the field meant (checkpoints before it)
    mean: float = 0.0  # mean and standard deviation of the kept training latents (used by Scaling.STANDARD)
    std: float = 1.0
    use_mean: bool = False  # latents are encoder means (True) or sampled z (False, the paper)
    in_c: bool = False  # melodies were moved to C before encoding (music/keys.py): key-normalised latents

    @classmethod
    def fit(cls, z: np.ndarray, sigma: np.ndarray, threshold: float = 1.0,
            scaling: Scaling | str = Scaling.STANDARD, use_mean: bool = False) -> LatentNormalizer:
        """z, sigma (N, Z) training latents (sampled, or the means if ``use_mean``) and encoder sigmas -> a fitted
        normaliser (standard scaling by default, as ``melodiff encode``; docs/DEVIATIONS.md)."""
        if len(z) == 0:
            raise MelodiffError("cannot fit the latent normaliser on no data")
        mean_sigma = sigma.mean(0)
        dims = tuple(int(d) for d in np.flatnonzero(mean_sigma < threshold))
        if not dims:
            raise MelodiffError(f"no VAE dimension has mean sigma < {threshold}: the VAE has collapsed entirely")
        kept = z[:, dims]
        return cls(z_size=z.shape[1], dims=dims, low=float(kept.min()), high=float(kept.max()),
                   scaling=Scaling(scaling), mean=float(kept.mean(dtype=np.float64)),
                   std=float(kept.std(dtype=np.float64)), use_mean=use_mean)

    @property
    def _shift_scale(self) -> tuple[float, float]:
        if self.scaling is Scaling.MINMAX:
            return (self.high + self.low) / 2.0, (self.high - self.low) / 2.0
        return self.mean, self.std

    @property
    def bound(self) -> float:
        """The largest |x| of the normalised training latents (1.0 for min/max scaling)."""
        shift, scale = self._shift_scale
        return max(abs(self.high - shift), abs(self.low - shift)) / scale

    @property
    def latent_dim(self) -> int:
        return len(self.dims)

    def transform(self, z: torch.Tensor | np.ndarray) -> torch.Tensor:
        """z (..., Z) full VAE latents -> (..., D) trimmed and scaled to [-1, 1] (training range)."""
        z = torch.as_tensor(z, dtype=torch.float32)
        shift, scale = self._shift_scale
        return (z[..., list(self.dims)] - shift) / scale

    def inverse(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """x (..., D) -> (..., Z): un-scale, scatter into Z dims, fill the dropped (collapsed) dims as the encoder
        would: fresh N(0, 1) draws for sampled latents, their mean 0 for ``use_mean`` latents."""
        shape = (*x.shape[:-1], self.z_size)
        z = (torch.zeros(shape, dtype=x.dtype, device=x.device) if self.use_mean
             else randn(shape, generator, x))
        shift, scale = self._shift_scale
        z[..., list(self.dims)] = x * scale + shift
        return z
