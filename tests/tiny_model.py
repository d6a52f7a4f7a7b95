"""An untrained, tiny Pipeline built in memory in a fraction of a second: for the studio's tests, its load benchmark
and trying the page without a trained model. Its melodies are noise (the decoder has learnt nothing)."""

from __future__ import annotations

from dataclasses import replace

import torch

from melodiff.data.normalizer import LatentNormalizer
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.guide import AttributeGuide, GuideConfig
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.pipeline import Pipeline
from melodiff.vae.config import preset as vae_preset
from melodiff.vae.model import MelodyVAE

LATENT_DIM = 8


def untrained_pipeline(seed: int = 0) -> Pipeline:
    """VAE and denoiser of the "tiny" presets with weights from ``seed``; 8 kept latent dims; 100-step schedule;
    a window of 8 chunks (16 bars)."""
    vae_config = vae_preset("tiny")[0]
    denoiser_config, schedule_config, _ = diffusion_preset("tiny")
    normalizer = LatentNormalizer(z_size=vae_config.z_size, dims=tuple(range(LATENT_DIM)), low=-3.0, high=3.0)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = MelodyVAE(vae_config)
        denoiser = TransformerDenoiser(replace(denoiser_config, latent_dim=LATENT_DIM))
    return Pipeline(vae, denoiser, NoiseSchedule(schedule_config), normalizer)


def guided_pipeline(seed: int = 0) -> Pipeline:
    """:func:`untrained_pipeline` with an untrained guide (diffusion/guide.py) that knows the styles "music21:a" and
    "music21:b" and draws its keys from D major and B minor."""
    p = untrained_pipeline(seed)
    keys = [0] * 24
    keys[2], keys[12 + 11] = 3, 1
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        guide = AttributeGuide(GuideConfig(latent_dim=LATENT_DIM, seq_len=p.window_chunks, width=16, layers=1, heads=2,
                                           mlp=32, noise_channels=8, styles=("music21:a", "music21:b"), keys=keys))
    return Pipeline(p.vae, p.denoiser, p.schedule, p.normalizer, guide=guide)


def triple_pipeline(seed: int = 0, meter: str = "3/4") -> Pipeline:
    """:func:`untrained_pipeline`'s sizes with 24-step chunks (3/4 and 6/8) and a denoiser told the meter, making
    ``meter``."""
    p = untrained_pipeline(seed)
    vae_config = replace(vae_preset("tiny")[0], steps=24, meters=("3/4", "6/8"))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        vae = MelodyVAE(vae_config)
        denoiser = TransformerDenoiser(replace(p.denoiser.config, meters=("3/4", "6/8")))
    return Pipeline(vae, denoiser, p.schedule, p.normalizer, meter_name=meter)
