"""The DDPM noise schedule and the conversions around it (docs/PAPER.md §4). No network in here.

Indexing: integer timestep t = 0..N; alpha_bar[0] = 1 (clean data), alpha_bar[t] = prod_{i<=t} (1 - beta_i).
The network is conditioned on the continuous noise level sqrt(alpha_bar), never on t (WaveGrad-style)."""

from __future__ import annotations

import math

import torch

from melodiff.diffusion.config import BetaSchedule, ScheduleConfig

COSINE_OFFSET = 0.008  # s in Nichol & Dhariwal 2021, eq. 17
MAX_BETA = 0.999  # their clipping of the cosine betas (§3.2), which keeps the last step finite


class NoiseSchedule:
    def __init__(self, config: ScheduleConfig) -> None:
        self.config = config
        n = config.num_steps
        if config.kind is BetaSchedule.COSINE:
            betas = cosine_betas(n)
        else:
            betas = torch.linspace(config.beta_start, config.beta_end, n, dtype=torch.float64)
        self.betas = torch.cat([torch.zeros(1, dtype=torch.float64), betas])  # betas[t], t = 1..N; betas[0] unused
        self.alpha_bar = torch.cumprod(1.0 - self.betas, dim=0)  # (N + 1,), alpha_bar[0] = 1

    @property
    def num_steps(self) -> int:
        return self.config.num_steps

    def sample_alpha_bar(self, batch: int, generator: torch.Generator) -> torch.Tensor:
        """Training noise levels (B,) float64: t ~ U{1..N}, then alpha_bar ~ U(alpha_bar[t], alpha_bar[t-1])."""
        t = torch.randint(1, self.num_steps + 1, (batch,), generator=generator)
        lo, hi = self.alpha_bar[t], self.alpha_bar[t - 1]
        return lo + (hi - lo) * torch.rand(batch, generator=generator, dtype=torch.float64)


def cosine_betas(num_steps: int) -> torch.Tensor:
    """(N,) float64 betas for t = 1..N with f(u) = cos²((u + s) / (1 + s) · π/2) and alpha_bar(t) = f(t/N) / f(0):
    beta_t = min(1 - f(t/N) / f((t-1)/N), 0.999) (Nichol & Dhariwal 2021, eq. 17 and §3.2)."""
    u = torch.arange(num_steps + 1, dtype=torch.float64) / num_steps
    f = torch.cos((u + COSINE_OFFSET) / (1 + COSINE_OFFSET) * (math.pi / 2)) ** 2
    return (1.0 - f[1:] / f[:-1]).clamp(max=MAX_BETA)


def q_sample(x0: torch.Tensor, alpha_bar: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps; alpha_bar (B,) broadcasts over x0 (B, ...)."""
    a = _expand(alpha_bar, x0)
    return a.sqrt() * x0 + (1.0 - a).sqrt() * eps


def predict_x0(x_t: torch.Tensor, eps: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    a = _expand(alpha_bar, x_t)
    return (x_t - (1.0 - a).sqrt() * eps) / a.sqrt()


def predict_eps(x_t: torch.Tensor, x0: torch.Tensor, alpha_bar: torch.Tensor) -> torch.Tensor:
    a = _expand(alpha_bar, x_t)
    return (x_t - a.sqrt() * x0) / (1.0 - a).sqrt().clamp_min(1e-12)


def _expand(alpha_bar: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(alpha_bar, dtype=like.dtype, device=like.device)
    return a.reshape(a.shape + (1,) * (like.dim() - a.dim()))
