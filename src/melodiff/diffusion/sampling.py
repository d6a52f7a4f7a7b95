"""Samplers: pure functions of (model_fn, schedule, x_T, generator, ...) (docs/PAPER.md §4; Song et al. 2021 for DDIM;
Lu et al. 2022 for DPM-Solver++(2M)).

``model_fn(x_t (B, L, D), noise_level (B,)) -> eps (B, L, D)`` with noise_level = sqrt(alpha_bar).
``project(x, alpha_bar, generator) -> x`` (optional) is applied after every step with the alpha_bar the sample is
now at; infill.py uses it to put the known latents back. Every x0 prediction is clipped to [-clip, clip] (the data
range after normalisation; ``clip=True`` means 1.0) unless ``clip`` is False/None. ``callback(i, total, x0_pred)``
reports progress.
``resample`` = U > 1 (DDPM and DDIM; RePaint, Lugmayr et al. 2022) takes every step U times, noising the result back
to the level it started from in between, so that the generated part can follow the projected known part; it costs
U times the network calls and is meant for windows with ``project`` (without it, it only spends them)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from melodiff.device import randn
from melodiff.diffusion.schedule import NoiseSchedule, predict_eps, predict_x0
from melodiff.errors import MelodiffError
from melodiff.options import FAST_STEPS, Sampler, check_resample

__all__ = ["FAST_STEPS", "Sampler", "check_resample", "ddim_sample", "ddpm_sample", "denoiser_calls",
           "dpm_solver_sample", "sample", "timesteps"]

ModelFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Project = Callable[[torch.Tensor, float, torch.Generator | None], torch.Tensor]
Callback = Callable[[int, int, torch.Tensor], None]

def _x0(model_fn: ModelFn, x: torch.Tensor, alpha_bar: float, clip: bool | float | None) -> torch.Tensor:
    level = torch.full((x.shape[0],), alpha_bar**0.5, dtype=x.dtype, device=x.device)
    x0 = predict_x0(x, model_fn(x, level), torch.tensor(alpha_bar, dtype=torch.float64))
    if clip is None or clip is False:
        return x0
    bound = 1.0 if clip is True else float(clip)
    return x0.clamp(-bound, bound)


def _noise(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return randn(like.shape, generator, like)


def _renoise(x: torch.Tensor, alpha_bar_from: float, alpha_bar_to: float,
             generator: torch.Generator | None) -> torch.Tensor:
    """Forward process from level alpha_bar_from back to the noisier alpha_bar_to: q(x_to | x_from)."""
    ratio = alpha_bar_to / alpha_bar_from
    return ratio**0.5 * x + (1 - ratio) ** 0.5 * _noise(x, generator)


def _resampled(step: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor, alpha_bar: float,
               alpha_bar_next: float, resample: int, generator: torch.Generator | None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``step`` (x_t -> (x_next, x0)) taken ``resample`` times, x_next noised back to alpha_bar in between (not at
    the last step, which lands on clean data)."""
    if resample < 1:
        raise MelodiffError(f"resample must be at least 1, got {resample}")
    for _ in range(resample - 1 if alpha_bar_next < 1.0 else 0):
        x = _renoise(step(x)[0], alpha_bar_next, alpha_bar, generator)
    return step(x)


def timesteps(num_steps: int, steps: int) -> list[int]:
    """``steps`` integer timesteps from N down to 1, evenly spaced (always including N and 1)."""
    if not 1 <= steps <= num_steps:
        raise MelodiffError(f"sampling steps must be in 1..{num_steps}, got {steps}")
    ts = torch.linspace(num_steps, 1, steps).round().long().tolist()
    return sorted(set(ts), reverse=True)


@torch.no_grad()
def ddpm_sample(model_fn: ModelFn, schedule: NoiseSchedule, x_T: torch.Tensor, generator: torch.Generator | None,
                clip: bool | float | None = True, project: Project | None = None,
                callback: Callback | None = None, resample: int = 1) -> torch.Tensor:
    """Ancestral sampling over all N steps: posterior mean from the clipped x0, sigma_t^2 = beta_t (1 - abar_{t-1}) /
    (1 - abar_t), no noise at the last step."""
    ab, betas = schedule.alpha_bar.tolist(), schedule.betas.tolist()
    x, n = x_T, schedule.num_steps
    for i, t in enumerate(range(n, 0, -1)):
        def step(x: torch.Tensor, t: int = t) -> tuple[torch.Tensor, torch.Tensor]:
            x0 = _x0(model_fn, x, ab[t], clip)
            coef_x0 = ab[t - 1] ** 0.5 * betas[t] / (1 - ab[t])
            coef_xt = (1 - betas[t]) ** 0.5 * (1 - ab[t - 1]) / (1 - ab[t])
            x = coef_x0 * x0 + coef_xt * x
            if t > 1:
                x = x + (betas[t] * (1 - ab[t - 1]) / (1 - ab[t])) ** 0.5 * _noise(x, generator)
            return (x if project is None else project(x, ab[t - 1], generator)), x0

        x, x0 = _resampled(step, x, ab[t], ab[t - 1], resample, generator)
        if callback is not None:
            callback(i + 1, n, x0)
    return x


@torch.no_grad()
def ddim_sample(model_fn: ModelFn, schedule: NoiseSchedule, x_T: torch.Tensor, generator: torch.Generator | None,
                steps: int = FAST_STEPS, eta: float = 0.0, clip: bool | float | None = True,
                project: Project | None = None, callback: Callback | None = None, resample: int = 1) -> torch.Tensor:
    """DDIM over ``steps`` timesteps; eta = 0 is deterministic given x_T, eta = 1 matches DDPM's variance."""
    ab = schedule.alpha_bar.tolist()
    ts = timesteps(schedule.num_steps, steps)
    x = x_T
    for i, t in enumerate(ts):
        t_next = ts[i + 1] if i + 1 < len(ts) else 0
        a, a_next = ab[t], ab[t_next]

        def step(x: torch.Tensor, a: float = a, a_next: float = a_next) -> tuple[torch.Tensor, torch.Tensor]:
            x0 = _x0(model_fn, x, a, clip)
            eps = predict_eps(x, x0, torch.tensor(a, dtype=torch.float64))
            sigma = eta * ((1 - a_next) / (1 - a) * (1 - a / a_next)) ** 0.5
            x = a_next**0.5 * x0 + max(1 - a_next - sigma**2, 0.0) ** 0.5 * eps
            if sigma > 0 and a_next < 1.0:
                x = x + sigma * _noise(x, generator)
            return (x if project is None else project(x, a_next, generator)), x0

        x, x0 = _resampled(step, x, a, a_next, resample, generator)
        if callback is not None:
            callback(i + 1, len(ts), x0)
    return x


@torch.no_grad()
def dpm_solver_sample(model_fn: ModelFn, schedule: NoiseSchedule, x_T: torch.Tensor,
                      generator: torch.Generator | None, steps: int = FAST_STEPS, clip: bool | float | None = True,
                      project: Project | None = None, callback: Callback | None = None) -> torch.Tensor:
    """DPM-Solver++(2M): multistep second-order solver of the probability-flow ODE in the data (x0) prediction,
    with lambda = log(sqrt(abar) / sqrt(1 - abar)). Deterministic given x_T (``generator`` only feeds ``project``)."""
    ab = schedule.alpha_bar.tolist()
    ts = timesteps(schedule.num_steps, steps)
    x, prev_x0, prev_h = x_T, None, None
    for i, t in enumerate(ts):
        t_next = ts[i + 1] if i + 1 < len(ts) else 0
        a, a_next = ab[t], ab[t_next]
        x0 = _x0(model_fn, x, a, clip)
        if t_next == 0:
            x = x0
        else:
            lam = 0.5 * torch.log(torch.tensor(a / (1 - a))).item()
            lam_next = 0.5 * torch.log(torch.tensor(a_next / (1 - a_next))).item()
            h = lam_next - lam
            d = x0
            if prev_x0 is not None and t_next > 0:
                r = prev_h / h
                d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * prev_x0
            sigma_ratio = ((1 - a_next) / (1 - a)) ** 0.5
            x = sigma_ratio * x - a_next**0.5 * torch.expm1(torch.tensor(-h)).item() * d
            prev_h = h
        prev_x0 = x0
        if project is not None:
            x = project(x, a_next, generator)
        if callback is not None:
            callback(i + 1, len(ts), x0)
    return x


def denoiser_calls(method: Sampler | str, num_steps: int, steps: int | None = None, resample: int = 1) -> int:
    """Network calls of one :func:`sample` run on a schedule of ``num_steps``: one per timestep, and with
    ``resample`` U, U per timestep but the last (its result is not noised back)."""
    count = num_steps if Sampler(method) is Sampler.DDPM else len(timesteps(num_steps, steps or FAST_STEPS))
    return count * resample - (resample - 1)


def sample(method: Sampler | str, model_fn: ModelFn, schedule: NoiseSchedule, x_T: torch.Tensor,
           generator: torch.Generator | None, steps: int | None = None, **kwargs) -> torch.Tensor:
    """Dispatch to a sampler; ``steps`` is ignored by DDPM (always N)."""
    try:
        method = Sampler(method)
    except ValueError:
        raise MelodiffError(f"unknown sampler {method!r}: use one of {', '.join(s.value for s in Sampler)}") from None
    check_resample(method, kwargs.get("resample", 1))
    if method is Sampler.DDPM:
        return ddpm_sample(model_fn, schedule, x_T, generator, **kwargs)
    steps = FAST_STEPS if steps is None else steps
    if method is Sampler.DDIM:
        return ddim_sample(model_fn, schedule, x_T, generator, steps=steps, **kwargs)
    kwargs.pop("resample", None)
    return dpm_solver_sample(model_fn, schedule, x_T, generator, steps=steps, **kwargs)
