"""Interpolation in two spaces: spherical interpolation (slerp) of vectors, and the deterministic DDIM inversion
that maps clean latents x_0 to the diffusion model's noise x_T (Song et al. 2021, §4.3), so that two melodies can be
mixed in the model's own noise space and denoised back.

``model_fn`` and the schedule are those of sampling.py; the inversion runs the eta = 0 DDIM update forwards in time
over the same timesteps that ``ddim_sample`` runs backwards, so ``ddim_sample(ddim_invert(x_0))`` ≈ x_0 (exact in
the limit of many steps)."""

from __future__ import annotations

import itertools

import torch

from melodiff.diffusion.sampling import ModelFn, timesteps
from melodiff.diffusion.schedule import NoiseSchedule, predict_x0


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between a and b (..., Z) at fraction t along the last axis; linear where a ∥ b."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


@torch.no_grad()
def ddim_invert(model_fn: ModelFn, schedule: NoiseSchedule, x_0: torch.Tensor, steps: int = 50) -> torch.Tensor:
    """x_0 (B, L, D) clean latents -> x_T by the eta = 0 DDIM update run from t = 0 up to N. At each step the noise is
    predicted at the current level and carried to the next: x_next = sqrt(abar_next) x0_hat + sqrt(1 - abar_next)
    eps_hat. No clipping: the inverse must stay invertible."""
    ab = schedule.alpha_bar.tolist()
    ts = [0, *reversed(timesteps(schedule.num_steps, steps))]
    x = x_0
    for t, t_next in itertools.pairwise(ts):
        level = torch.full((x.shape[0],), ab[t] ** 0.5, dtype=x.dtype)
        eps = model_fn(x, level)
        x0 = predict_x0(x, eps, torch.tensor(ab[t], dtype=torch.float64)) if t > 0 else x
        x = ab[t_next] ** 0.5 * x0 + (1 - ab[t_next]) ** 0.5 * eps
    return x
