"""Infilling as a sampler feature: mask 1 = known; the known latents come back exactly."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from melodiff.diffusion.config import preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.infill import known_projection
from melodiff.diffusion.sampling import Sampler, sample
from melodiff.diffusion.schedule import NoiseSchedule

DENOISER, SCHEDULE, _ = preset("tiny")
B, L, D = 3, 8, 4
SAMPLERS = [(Sampler.DDPM, None), (Sampler.DDIM, 6), (Sampler.DPM_SOLVER, 6)]


@pytest.fixture(scope="module")
def schedule() -> NoiseSchedule:
    return NoiseSchedule(SCHEDULE)


@pytest.fixture(scope="module")
def model() -> TransformerDenoiser:
    with torch.random.fork_rng():
        torch.manual_seed(1)
        return TransformerDenoiser(replace(DENOISER, latent_dim=D)).eval()


def known_latents() -> torch.Tensor:
    return torch.rand(B, L, D, generator=torch.Generator().manual_seed(0)) * 2 - 1


def masks() -> dict[str, torch.Tensor]:
    per_position = torch.tensor([1, 1, 0, 0, 0, 1, 0, 1])
    per_example = torch.stack([per_position, per_position.flip(0), torch.tensor([0, 1, 1, 1, 1, 1, 1, 0])])
    return {"(L,) int": per_position, "(L,) bool": per_position.bool(), "(B, L) float": per_example.float()}


@pytest.mark.parametrize(("sampler", "steps"), SAMPLERS)
@pytest.mark.parametrize("mask_name", list(masks()))
def test_infilling_keeps_known_latents_exactly(model, schedule, sampler: Sampler, steps: int | None,
                                               mask_name: str) -> None:
    known, mask = known_latents(), masks()[mask_name]
    x_T = torch.randn(B, L, D, generator=torch.Generator().manual_seed(2))
    out = sample(sampler, model, schedule, x_T, torch.Generator().manual_seed(3), steps=steps,
                 project=known_projection(known, mask))
    keep = mask.bool().expand(B, L)
    assert torch.equal(out[keep], known[keep])
    assert (out[~keep] - known[~keep]).abs().amax(-1).min() > 1e-3  # every generated latent is new
    assert out.abs().max() <= 1.0


def test_l_and_bl_masks_agree(model, schedule) -> None:
    known, mask = known_latents(), masks()["(L,) int"]
    x_T = torch.randn(B, L, D, generator=torch.Generator().manual_seed(2))
    a = sample(Sampler.DDIM, model, schedule, x_T, torch.Generator().manual_seed(3), steps=6,
               project=known_projection(known, mask))
    b = sample(Sampler.DDIM, model, schedule, x_T, torch.Generator().manual_seed(3), steps=6,
               project=known_projection(known, mask.expand(B, L)))
    assert torch.equal(a, b)


def test_unknown_positions_depend_on_the_known_ones(model, schedule) -> None:
    """The generated latents are conditioned on the context (the denoiser sees the projected known latents)."""
    mask = masks()["(L,) int"]
    x_T = torch.randn(B, L, D, generator=torch.Generator().manual_seed(2))
    outs = [sample(Sampler.DDIM, model, schedule, x_T, None, steps=6, project=known_projection(k, mask))
            for k in (known_latents(), -known_latents())]
    free = ~mask.bool()
    assert (outs[0][:, free] - outs[1][:, free]).abs().max() > 1e-4


def test_projection_noises_known_latents_to_the_current_level() -> None:
    known, mask = known_latents(), masks()["(L,) int"]
    project = known_projection(known, mask)
    x = torch.full((B, L, D), 7.0)
    keep = mask.bool()
    assert torch.equal(project(x, 1.0, None)[:, keep], known[:, keep])
    assert torch.equal(project(x, 0.3, None)[:, ~keep], x[:, ~keep])
    g = torch.Generator().manual_seed(4)
    noised = project(x, 0.3, g)[:, keep]
    eps = (noised - 0.3**0.5 * known[:, keep]) / 0.7**0.5
    assert torch.allclose(eps, torch.randn(known.shape, generator=torch.Generator().manual_seed(4))[:, keep],
                          atol=1e-5)
