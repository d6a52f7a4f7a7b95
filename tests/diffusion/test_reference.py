"""The schedule and the DDPM / DDIM samplers against an independent implementation: diffusers' DDPMScheduler and
DDIMScheduler (a test-only dependency).

Indexing: our t = 1..N is diffusers' t - 1 = 0..N-1, so our alpha_bar[t] == diffusers' alphas_cumprod[t - 1], and our
final alpha_bar[0] = 1 is diffusers' "previous alpha_cumprod is one" (DDPM's ``self.one``, DDIM's set_alpha_to_one).

diffusers keeps its schedule in float32. The schedule tests compare at float32 precision; the sampler tests give
diffusers our float64 alpha_bar (already checked to match its own) and run both chains in float64, so that the
update arithmetic itself is compared to ~1e-12."""

from __future__ import annotations

import pytest
import torch

from melodiff.diffusion.config import ScheduleConfig
from melodiff.diffusion.sampling import ddim_sample, ddpm_sample, timesteps
from melodiff.diffusion.schedule import NoiseSchedule

diffusers = pytest.importorskip("diffusers")

N = 1000
KINDS = {"linear": "linear", "cosine": "squaredcos_cap_v2"}  # our BetaSchedule -> diffusers' beta_schedule
CLIP = 1.5  # a bound other than the default 1.0, so that a dropped clip value shows
SHAPE = (2, 3, 4)  # (B, L, D)
SEED = 7


def eps_model(x: torch.Tensor, noise_level: torch.Tensor) -> torch.Tensor:
    """A fixed, nonlinear stand-in for the denoiser: (B, L, D), (B,) -> eps (B, L, D)."""
    return torch.tanh(1.3 * x + 2.0 * noise_level[:, None, None] - 0.4)


def ours_and_theirs(kind: str, scheduler: type) -> tuple[NoiseSchedule, object]:
    schedule = NoiseSchedule(ScheduleConfig(num_steps=N, kind=kind))
    ref = scheduler(num_train_timesteps=N, beta_start=1e-6, beta_end=0.01, beta_schedule=KINDS[kind],
                    prediction_type="epsilon", clip_sample=True, clip_sample_range=CLIP)
    return schedule, ref


def with_our_alpha_bar(ref: object, schedule: NoiseSchedule) -> object:
    ref.alphas_cumprod = schedule.alpha_bar[1:].clone()  # float64; the float32 original is compared below
    return ref


def x_T() -> torch.Tensor:
    return torch.randn(SHAPE, generator=torch.Generator().manual_seed(SEED), dtype=torch.float64)


def test_linear_schedule_matches_diffusers() -> None:
    schedule, ref = ours_and_theirs("linear", diffusers.DDPMScheduler)
    # diffusers' float32 linspace is within a float32 ulp of beta_end (~1e-9) of the exact betas
    torch.testing.assert_close(schedule.betas[1:], ref.betas.double(), rtol=0, atol=1e-9)
    torch.testing.assert_close(schedule.alpha_bar[1:], ref.alphas_cumprod.double(), rtol=1e-6, atol=0)
    assert schedule.alpha_bar[0] == 1


def test_cosine_schedule_matches_diffusers_squaredcos_cap_v2() -> None:
    schedule, ref = ours_and_theirs("cosine", diffusers.DDPMScheduler)
    # diffusers computes these betas in double and rounds them to float32: ours round to the same floats
    assert torch.equal(schedule.betas[1:].float(), ref.betas)
    assert schedule.betas[-1] == pytest.approx(0.999)  # the clipped last beta
    torch.testing.assert_close(schedule.alpha_bar[1:-1], ref.alphas_cumprod[:-1].double(), rtol=1e-6, atol=0)
    # 1 - 0.999 keeps only ~4 significant digits in float32, hence the looser last step
    torch.testing.assert_close(schedule.alpha_bar[-1:], ref.alphas_cumprod[-1:].double(), rtol=5e-5, atol=0)


@pytest.mark.parametrize("kind", KINDS)
def test_ddpm_chain_matches_diffusers(kind: str) -> None:
    """All N ancestral steps: posterior mean from the clipped x0 (Ho et al. 2020, eq. 7), sigma_t² = beta~_t
    (variance_type "fixed_small"), the same noise draws (same generator seed, shape, dtype and order)."""
    schedule, ref = ours_and_theirs(kind, diffusers.DDPMScheduler)
    ref = with_our_alpha_bar(ref, schedule)
    assert ref.config.variance_type == "fixed_small"
    clipped = []
    ours = ddpm_sample(eps_model, schedule, x_T(), torch.Generator().manual_seed(SEED + 1), clip=CLIP,
                       callback=lambda i, n, x0: clipped.append((x0.abs() == CLIP).float().mean().item()))

    x, g = x_T(), torch.Generator().manual_seed(SEED + 1)
    for t in ref.timesteps:  # N-1 .. 0
        level = ref.alphas_cumprod[t].sqrt().expand(SHAPE[0])
        x = ref.step(eps_model(x, level), int(t), x, generator=g).prev_sample
    assert len(clipped) == N and max(clipped) > 0.5 and min(clipped) == 0  # the clip was active, then not
    # 1 - alpha_bar[1] = beta_1 = 1e-6 differs in float64 by ~1e-10 relative between beta_t and 1 - abar_t / abar_t-1
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-9)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("eta", [0.0, 0.5])
def test_ddim_chain_matches_diffusers(kind: str, eta: float) -> None:
    """DDIM (Song et al. 2021, eq. 12) with eps recomputed from the clipped x0 (diffusers' use_clipped_model_output).
    diffusers steps t -> t - N // num_inference_steps, so we pick a step count for which our ``timesteps()``
    (linspace N..1, rounded) has that same uniform stride: 28 steps, stride 37, N = 1000 ... 1 (diffusers 999 ... 0)."""
    schedule, ref = ours_and_theirs(kind, diffusers.DDIMScheduler)
    ref = with_our_alpha_bar(ref, schedule)
    steps, stride = 28, 37
    ref.set_timesteps(steps - 1)
    ts = timesteps(N, steps)
    assert N // ref.num_inference_steps == stride and ts == list(range(N, 0, -stride))
    ours = ddim_sample(eps_model, schedule, x_T(), torch.Generator().manual_seed(SEED + 2), steps=steps, eta=eta,
                       clip=CLIP)

    x, g = x_T(), torch.Generator().manual_seed(SEED + 2)
    for t in ts:
        level = ref.alphas_cumprod[t - 1].sqrt().expand(SHAPE[0])
        x = ref.step(eps_model(x, level), t - 1, x, eta=eta, use_clipped_model_output=True, generator=g).prev_sample
    torch.testing.assert_close(ours, x, rtol=0, atol=1e-10)
