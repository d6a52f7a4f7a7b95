"""Samplers as pure functions: determinism, seeds, clipping, exactness with an oracle model, step schedules."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch

from melodiff.diffusion.config import preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.sampling import Sampler, ddim_sample, ddpm_sample, dpm_solver_sample, sample, timesteps
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.errors import MelodiffError

DENOISER, SCHEDULE, _ = preset("tiny")
D, L = 4, 6
SAMPLERS = [(Sampler.DDPM, None), (Sampler.DDIM, 7), (Sampler.DPM_SOLVER, 7)]


@pytest.fixture(scope="module")
def schedule() -> NoiseSchedule:
    return NoiseSchedule(SCHEDULE)


@pytest.fixture(scope="module")
def model() -> TransformerDenoiser:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TransformerDenoiser(replace(DENOISER, latent_dim=D)).eval()


def noise(seed: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(3, L, D, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def oracle(x0: torch.Tensor):
    """A model whose eps is exact for the fixed clean data x0: eps = (x_t - sqrt(abar) x0) / sqrt(1 - abar)."""

    def model_fn(x_t: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        ab = (level.to(torch.float64) ** 2).reshape(-1, 1, 1)
        return ((x_t - ab.sqrt() * x0) / (1 - ab).sqrt()).to(x_t.dtype)

    return model_fn


@pytest.mark.parametrize("sampler", [Sampler.DDIM, Sampler.DPM_SOLVER])
def test_deterministic_samplers_ignore_the_generator(model, schedule, sampler: Sampler) -> None:
    x_T = noise(0)
    a = sample(sampler, model, schedule, x_T, gen(1), steps=8)
    b = sample(sampler, model, schedule, x_T.clone(), gen(2), steps=8)
    c = sample(sampler, model, schedule, x_T.clone(), None, steps=8)
    assert torch.equal(a, b) and torch.equal(a, c)
    assert not torch.equal(a, sample(sampler, model, schedule, noise(5), gen(1), steps=8))


def test_ddpm_depends_on_the_seed_only(model, schedule) -> None:
    x_T = noise(0)
    a = ddpm_sample(model, schedule, x_T, gen(1))
    b = ddpm_sample(model, schedule, x_T.clone(), gen(1))
    c = ddpm_sample(model, schedule, x_T.clone(), gen(2))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3


def test_ddim_with_eta_is_stochastic(model, schedule) -> None:
    x_T = noise(0)
    a = ddim_sample(model, schedule, x_T, gen(1), steps=8, eta=1.0)
    assert torch.equal(a, ddim_sample(model, schedule, x_T, gen(1), steps=8, eta=1.0))
    assert (a - ddim_sample(model, schedule, x_T, gen(2), steps=8, eta=1.0)).abs().max() > 1e-3


@pytest.mark.parametrize(("sampler", "steps"), SAMPLERS)
def test_clipped_samples_lie_in_the_data_range(model, schedule, sampler: Sampler, steps: int | None) -> None:
    x = sample(sampler, model, schedule, 3 * noise(0), gen(0), steps=steps)
    assert x.abs().max() <= 1.0
    assert x.dtype == torch.float32 and x.shape == (3, L, D) and torch.isfinite(x).all()


@pytest.mark.parametrize(("sampler", "steps"), SAMPLERS)
def test_oracle_model_recovers_x0(schedule, sampler: Sampler, steps: int | None) -> None:
    x0 = 0.9 * torch.rand(3, L, D, generator=gen(3), dtype=torch.float64) * 2 - 0.9
    seen = []
    out = sample(sampler, oracle(x0), schedule, noise(4, torch.float64), gen(5), steps=steps,
                 callback=lambda i, n, x0_pred: seen.append((i, n, x0_pred)))
    assert torch.allclose(out, x0, atol=1e-6)
    n = schedule.num_steps if sampler is Sampler.DDPM else steps
    assert [(i, k) for i, k, _ in seen] == [(i, n) for i in range(1, n + 1)]
    assert all(torch.allclose(p, x0, atol=1e-6) for _, _, p in seen)


@pytest.mark.parametrize(("sampler", "steps"), SAMPLERS)
def test_clip_bounds_an_out_of_range_x0(schedule, sampler: Sampler, steps: int | None) -> None:
    x0 = torch.full((2, L, D), 1.5, dtype=torch.float64)
    clipped = sample(sampler, oracle(x0), schedule, noise(4, torch.float64)[:2], gen(5), steps=steps)
    free = sample(sampler, oracle(x0), schedule, noise(4, torch.float64)[:2], gen(5), steps=steps, clip=False)
    assert torch.allclose(clipped, torch.ones_like(x0), atol=1e-6)
    assert torch.allclose(free, x0, atol=1e-6)


@pytest.mark.parametrize("method", [ddim_sample, dpm_solver_sample])
def test_deterministic_trajectory_keeps_the_noise_for_an_oracle(schedule, method) -> None:
    """With exact x0 predictions DDIM (eta = 0) and DPM-Solver++ solve the probability-flow ODE exactly: every
    intermediate x equals sqrt(abar) x0 + sqrt(1 - abar) eps_T for the eps_T that x_T was made of."""
    x0 = 0.5 * torch.randn(2, L, D, generator=gen(6), dtype=torch.float64).clamp(-1.8, 1.8)
    eps = torch.randn(2, L, D, generator=gen(7), dtype=torch.float64)
    ab_T = schedule.alpha_bar[-1].item()
    x_T = ab_T**0.5 * x0 + (1 - ab_T) ** 0.5 * eps
    states = []

    def record(x: torch.Tensor, alpha_bar: float, generator: torch.Generator | None) -> torch.Tensor:
        states.append((x.clone(), alpha_bar))
        return x

    method(oracle(x0), schedule, x_T, None, steps=9, clip=False, project=record)
    assert len(states) == 9 and states[-1][1] == 1.0
    for x, ab in states[:-1]:
        assert 0 < ab < 1
        assert torch.allclose(x, ab**0.5 * x0 + (1 - ab) ** 0.5 * eps, atol=1e-9)


def test_ddpm_reaches_every_timestep(schedule) -> None:
    levels = []

    def record(x, alpha_bar, generator):
        levels.append(alpha_bar)
        return x

    ddpm_sample(oracle(torch.zeros(1, 2, D, dtype=torch.float64)), schedule, noise(0, torch.float64)[:1, :2], gen(0),
                project=record)
    assert levels == schedule.alpha_bar[:-1].flip(0).tolist()


@pytest.mark.parametrize("num_steps", [1, 2, 10, 100, 1000])
def test_timesteps_are_evenly_spaced_from_n_to_1(num_steps: int) -> None:
    for steps in sorted({s for s in (1, 2, 3, num_steps // 2, num_steps - 1, num_steps) if 1 <= s <= num_steps}):
        ts = timesteps(num_steps, steps)
        assert len(ts) == steps and ts[0] == num_steps
        assert all(a > b for a, b in itertools.pairwise(ts))
        if steps > 1:
            assert ts[-1] == 1
    assert timesteps(100, 100) == list(range(100, 0, -1))
    assert timesteps(100, 1) == [100]


@pytest.mark.parametrize("steps", [0, -1, 101])
def test_invalid_step_counts_raise(model, schedule, steps: int) -> None:
    with pytest.raises(MelodiffError, match="sampling steps"):
        timesteps(100, steps)
    for sampler in (Sampler.DDIM, Sampler.DPM_SOLVER):
        with pytest.raises(MelodiffError, match="sampling steps"):
            sample(sampler, model, schedule, noise(0), gen(0), steps=steps)


def test_unknown_sampler_raises(model, schedule) -> None:
    with pytest.raises(MelodiffError, match="unknown sampler 'euler'"):
        sample("euler", model, schedule, noise(0), gen(0))
    assert torch.equal(sample("ddim", model, schedule, noise(0), None, steps=3),
                       sample(Sampler.DDIM, model, schedule, noise(0), None, steps=3))
