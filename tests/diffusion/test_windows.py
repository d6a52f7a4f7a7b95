"""Training windows over latent sequences, and the diffusion loss on padded windows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from melodiff.diffusion.config import preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.diffusion.train import WindowSampler, diffusion_loss
from melodiff.errors import MelodiffError


def sequences() -> list[np.ndarray]:
    """Melodies of 2, 6 and 4 latents (D = 3); latent k of melody m is (m, k, 1)."""
    return [np.array([[m, k, 1] for k in range(n)], dtype=np.float32) for m, n in enumerate((2, 6, 4))]


def test_windows_are_consecutive_latents_of_one_melody() -> None:
    windows = WindowSampler(sequences(), seq_len=4)
    assert len(windows) == 1 + 3 + 1  # a short melody gives one padded window; stride 1 otherwise
    x0, pad, context = windows.sample(500, torch.Generator().manual_seed(0))
    assert context is None
    assert x0.shape == (500, 4, 3) and pad.shape == (500, 4)
    seen = set()
    for window, padding in zip(x0, pad):
        valid = window[~padding]
        assert (window[padding] == 0).all() and (valid[:, 2] == 1).all()
        assert (valid[:, 0] == valid[0, 0]).all()  # one melody
        assert torch.equal(valid[:, 1], valid[0, 1] + torch.arange(len(valid)))  # consecutive
        assert not padding[:len(valid)].any()  # padding only at the end
        seen.add((int(valid[0, 0]), int(valid[0, 1]), len(valid)))
    assert seen == {(0, 0, 2), (1, 0, 4), (1, 1, 4), (1, 2, 4), (2, 0, 4)}


def test_no_sequences_raise() -> None:
    with pytest.raises(MelodiffError, match="no latent sequences"):
        WindowSampler([], seq_len=4)


def test_diffusion_loss_ignores_padding() -> None:
    config, schedule_config, _ = preset("tiny")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TransformerDenoiser(replace(config, latent_dim=3))
    schedule = NoiseSchedule(schedule_config)
    x0, pad, _ = WindowSampler(sequences(), seq_len=5).sample(8, torch.Generator().manual_seed(1))
    assert pad.any()
    changed = x0.clone()
    changed[pad] = 9.0
    a = diffusion_loss(model, schedule, x0, pad, torch.Generator().manual_seed(2))
    b = diffusion_loss(model, schedule, changed, pad, torch.Generator().manual_seed(2))
    assert torch.allclose(a, b, atol=1e-6) and a > 0
