"""Post-hoc infilling (docs/PAPER.md §5) as a sampler feature. Mask convention, the one used everywhere in melodiff:
``mask`` (B, L) or (L,) bool/float, **1 = known latent** (kept), 0 = generated.

After every reverse step the known positions are replaced by the real latents noised to the level the sample is at:
x <- x * (1 - m) + (sqrt(abar) s + sqrt(1 - abar) eps) * m, and by s itself at the end (abar = 1). Sampling starts
from Gaussian noise (the original code started from uniform noise and hard-wired the middle 16 latents)."""

from __future__ import annotations

import torch

from melodiff.device import randn
from melodiff.diffusion.sampling import Project


def known_projection(known: torch.Tensor, mask: torch.Tensor) -> Project:
    """known (B, L, D) clean normalised latents; mask (B, L) or (L,), 1 = keep -> a ``project`` for the samplers."""
    m = mask.to(known.dtype)
    m = m.unsqueeze(-1) if m.dim() == known.dim() - 1 else m.reshape(1, -1, 1)

    def project(x: torch.Tensor, alpha_bar: float, generator: torch.Generator | None) -> torch.Tensor:
        if alpha_bar >= 1.0:
            noised = known
        else:
            eps = randn(known.shape, generator, known)
            noised = alpha_bar**0.5 * known + (1.0 - alpha_bar) ** 0.5 * eps
        return x * (1 - m) + noised * m

    return project


def tie(x: torch.Tensor, sources: torch.Tensor) -> torch.Tensor:
    """x (B, L, D) with position j of every row replaced by position sources[b, j] (sources (B, L) or (L,)): the
    repeats of a form (music/form.py) made equal to what they repeat."""
    index = sources.expand(x.shape[0], -1).unsqueeze(-1).expand(-1, -1, x.shape[-1])
    return torch.gather(x, 1, index)
