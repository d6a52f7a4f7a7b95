"""TransformerDenoiser: shapes, padding isolation, conditioning on the noise level."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from melodiff.diffusion.config import preset
from melodiff.diffusion.denoiser import TransformerDenoiser

CONFIG = replace(preset("tiny")[0], latent_dim=5)


@pytest.fixture(scope="module")
def model() -> TransformerDenoiser:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TransformerDenoiser(CONFIG)


def inputs(batch: int = 3, length: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(batch, length, CONFIG.latent_dim, generator=g), torch.rand(batch, generator=g)


@pytest.mark.parametrize("length", [1, 7, CONFIG.seq_len])
def test_output_shape(model: TransformerDenoiser, length: int) -> None:
    x, level = inputs(length=length)
    eps = model(x, level)
    assert eps.shape == x.shape and eps.dtype == torch.float32 and torch.isfinite(eps).all()


@pytest.mark.parametrize("train", [True, False])
def test_padding_does_not_influence_valid_positions(model: TransformerDenoiser, train: bool) -> None:
    x, level = inputs()
    padding = torch.zeros(3, 7, dtype=torch.bool)
    padding[0, 4:] = True
    padding[1, 1:] = True
    perturbed = x.clone()
    perturbed[padding] = 100 * torch.randn(int(padding.sum()), CONFIG.latent_dim)
    model.train(train)
    with torch.set_grad_enabled(train):
        a, b = model(x, level, padding), model(perturbed, level, padding)
    model.eval()
    assert torch.allclose(a[~padding], b[~padding], atol=1e-5)
    assert (a[padding] - b[padding]).abs().max() > 1e-3  # the perturbation was real
    unmasked = model(perturbed, level)  # without the mask the padded inputs do leak in
    assert (unmasked[~padding] - a[~padding]).abs().max() > 1e-3


def test_noise_level_changes_the_output(model: TransformerDenoiser) -> None:
    x, _ = inputs(batch=1)
    outs = [model(x, torch.tensor([level])) for level in (0.05, 0.5, 0.95)]
    assert (outs[0] - outs[1]).abs().max() > 1e-4 and (outs[1] - outs[2]).abs().max() > 1e-4


def test_examples_are_independent(model: TransformerDenoiser) -> None:
    x, level = inputs()
    whole = model(x, level)
    assert torch.allclose(model(x[1:2], level[1:2]), whole[1:2], atol=1e-5)


def test_noise_in_the_trunk_tells_attention_the_noise_level() -> None:
    config = replace(CONFIG, noise_in_trunk=True)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = TransformerDenoiser(config)
    assert model.noise_to_trunk is not None and TransformerDenoiser(CONFIG).noise_to_trunk is None
    x, _ = inputs(batch=1)
    seen = []
    model.trunk.blocks.register_forward_hook(lambda module, args, out: seen.append(out.clone()))
    for level in (0.1, 0.9):
        model(x, torch.tensor([level]))
    assert (seen[0] - seen[1]).abs().max() > 1e-4  # the transformer's own output now depends on the noise level
