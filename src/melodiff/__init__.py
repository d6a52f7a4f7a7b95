"""melodiff: symbolic music generation with diffusion models in the latent space of a melody VAE.

    from melodiff import Pipeline
    melodies = Pipeline.from_pretrained().generate(num_bars=32, num_samples=2, seed=1)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Melody", "Pipeline", "Sampler", "SamplingOptions", "__version__"]

_LAZY = {"Pipeline": "melodiff.pipeline", "SamplingOptions": "melodiff.pipeline", "Melody": "melodiff.music.melody",
         "Sampler": "melodiff.diffusion.sampling"}


def __getattr__(name: str) -> Any:  # imported on first use, so `melodiff --help` does not load torch
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'melodiff' has no attribute {name!r}")
