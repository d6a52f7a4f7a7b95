"""Classifier guidance for the controls a plain prior was not trained with (Dhariwal & Nichol 2021, §4): a small
noise-aware network reads the noisy latents x_t the sampler holds and predicts what the finished piece will have —
each chunk's note density and the scale degree its last note ends on, the tune's key (tonic and mode) and its style
(the corpus collection) — and every denoiser call is steered up the gradient of log p(asked | x_t):

    eps' = eps - scale * sqrt(1 - abar) * grad_x log p(asked | x_t)

so any sampler (DDPM, DDIM, DPM-Solver++) follows it, and the denoiser itself is unchanged (docs/DEVIATIONS.md,
"Controls by guidance"). The guide is trained by `melodiff train-guide` (diffusion/guide_train.py) on the same
latents as the denoiser and ships in a model folder's ``guide/``."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from melodiff.config import check_transformer_sizes
from melodiff.diffusion.sampling import ModelFn
from melodiff.errors import MelodiffError
from melodiff.layers import TransformerTrunk, sinusoidal_embedding

DENSITY_SPREAD = 0.14  # the width of the density target in log(1 + notes per bar): about ±14 % around it
# each term's log-probability counts this much (a sharpened classifier, Dhariwal & Nichol's scale per attribute):
# one term per tune, against one density term per chunk
WEIGHTS = {"minor": 4.0, "tonic": 4.0, "style": 4.0, "ending": 4.0}
KEY_UNTIL = 0.35  # a piece's key and ending alone are steered while sqrt(abar) is at most this: the noisy steps,
# where they are decided (a third of DPM-Solver++'s 50; docs/RESULTS.md, "Controls by guidance")
DEGREES = 12  # the ending head's classes: the last note's semitones above the tune's tonic, and one for "no note"


@dataclass(frozen=True)
class GuideConfig:
    """AttributeGuide sizes; ``latent_dim``, ``seq_len`` and ``styles`` (the style names, sorted) come from the
    latents it is trained on and the denoiser it guides."""

    latent_dim: int = 42
    seq_len: int = 16
    width: int = 96
    layers: int = 2
    heads: int = 4
    mlp: int = 256
    noise_channels: int = 64
    styles: tuple[str, ...] = ()
    keys: tuple[int, ...] = ()  # training tunes per key, 12 major (C..B) then 12 minor: what free pieces are steered to

    def __post_init__(self) -> None:
        check_transformer_sizes(self)
        object.__setattr__(self, "styles", tuple(self.styles))
        object.__setattr__(self, "keys", tuple(self.keys))
        if self.keys and (len(self.keys) != 24 or min(self.keys) < 0 or not sum(self.keys)):
            raise MelodiffError("a guide's key counts are 24 non-negative numbers, not all 0")
        if self.noise_channels % 2:
            raise MelodiffError(f"noise_channels must be even (sin and cos halves), got {self.noise_channels}")


class AttributeGuide(nn.Module):
    """x_t (B, L, D), noise_level (B,) = sqrt(abar) -> {"density": (B, L) log(1 + notes per bar) of each chunk,
    "ending": (B, L, DEGREES + 1) logits of the degree each chunk's last note ends on, "minor": (B,) logit of the
    tune being in minor, "tonic": (B, 12) logits of its tonic, "style": (B, styles) logits}. Dense + positions + the
    noise embedding -> a small pre-LN transformer -> per-chunk and mean-pooled heads."""

    def __init__(self, config: GuideConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.trunk = TransformerTrunk(c.latent_dim, c.width, c.layers, c.heads, c.mlp, c.width)
        self.noise = nn.Sequential(nn.Linear(c.noise_channels, c.width), nn.SiLU(), nn.Linear(c.width, c.width))
        self.density = nn.Linear(c.width, 1)
        self.ending = nn.Linear(c.width, DEGREES + 1)
        self.minor = nn.Linear(c.width, 1)
        self.tonic = nn.Linear(c.width, 12)
        self.style = nn.Linear(c.width, max(len(c.styles), 1))

    def forward(self, x_t: torch.Tensor, noise_level: torch.Tensor,
                padding_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        extra = self.noise(sinusoidal_embedding(1000.0 * noise_level.to(x_t.dtype), self.config.noise_channels))
        h = F.silu(self.trunk(x_t, padding_mask=padding_mask, extra=extra.unsqueeze(1)))
        if padding_mask is None:
            pooled = h.mean(1)
        else:
            keep = (~padding_mask).unsqueeze(-1).to(h.dtype)
            pooled = (h * keep).sum(1) / keep.sum(1).clamp(min=1)
        return {"density": self.density(h).squeeze(-1), "ending": self.ending(h),
                "minor": self.minor(pooled).squeeze(-1), "tonic": self.tonic(pooled), "style": self.style(pooled)}


@dataclass(frozen=True)
class GuideTargets:
    """What pieces are steered to, each None when not asked: ``density`` note onsets per bar, ``style`` an index
    into the guide's styles, ``tonic`` and ``minor`` (B,) each piece's key, ``endings`` (B, L) bool: the chunks
    whose last note should be the tonic (a piece's last chunk, and the chunk it repeats), ``free`` (L,) 1 where a
    chunk is made, 0 where it is kept (a given melody's): only made chunks are steered to the density."""

    density: float | None = None
    style: int | None = None
    tonic: torch.Tensor | None = None
    minor: torch.Tensor | None = None
    endings: torch.Tensor | None = None
    free: torch.Tensor | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.density, self.minor, self.style, self.tonic, self.endings))

    def at(self, level: float) -> GuideTargets:
        """The targets steered at noise level sqrt(abar) = ``level``: all of them on the noisy steps (level at most
        KEY_UNTIL), where a key and an ending are decided; the density and the style alone after, which the last
        steps still change."""
        return self if level <= KEY_UNTIL else replace(self, tonic=None, minor=None, endings=None)

    def window(self, start: int, end: int) -> GuideTargets:
        """The targets of the chunks start..end - 1 of the piece."""
        return replace(self, endings=None if self.endings is None else self.endings[:, start:end],
                       free=None if self.free is None else self.free[start:end])

    def log_prob(self, out: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B,) log p(targets | x_t) up to a constant, from the guide's outputs: a Gaussian of DENSITY_SPREAD around
        each chunk's density, Bernoulli for the mode, categorical for the tonic, style and ending degree, each
        weighted by WEIGHTS."""
        total = torch.zeros_like(out["minor"])
        if self.density is not None:
            target = math.log1p(self.density)
            off = (out["density"] - target) ** 2
            if self.free is not None:
                off = off * self.free.to(off)
            total = total - off.sum(1) / (2 * DENSITY_SPREAD**2)
        if self.minor is not None:
            minor = self.minor.to(out["minor"]).view(-1)
            mode = minor * F.logsigmoid(out["minor"]) + (1 - minor) * F.logsigmoid(-out["minor"])
            total = total + WEIGHTS["minor"] * mode
        if self.tonic is not None:
            tonic = self.tonic.to(out["tonic"].device).long().view(-1, 1)
            total = total + WEIGHTS["tonic"] * F.log_softmax(out["tonic"], -1).gather(1, tonic).squeeze(1)
        if self.style is not None:
            total = total + WEIGHTS["style"] * F.log_softmax(out["style"], -1)[:, self.style]
        if self.endings is not None and self.endings.any():
            on_tonic = F.log_softmax(out["ending"], -1)[..., 0]
            total = total + WEIGHTS["ending"] * (on_tonic * self.endings.to(on_tonic)).sum(1)
        return total


def draw_keys(config: GuideConfig, num: int, seed: int, key: tuple[int, bool] | None = None) -> torch.Tensor | None:
    """(num, 2) tonic and minor 0/1 of ``num`` pieces: ``key`` for all, else drawn with ``seed`` in proportion to
    the guide's training tunes (None for a guide without key counts)."""
    if key is not None:
        return torch.tensor([[key[0], int(key[1])]]).repeat(num, 1)
    if not config.keys:
        return None
    counts = np.array(config.keys, dtype=np.float64)
    rng = np.random.default_rng([seed, 24])  # a stream of its own: not the one the forms are drawn from
    drawn = torch.from_numpy(rng.choice(24, size=num, p=counts / counts.sum()))
    return torch.stack([drawn % 12, drawn // 12], 1)


def guided(model_fn: ModelFn, guide: AttributeGuide, targets: GuideTargets, scale: float) -> ModelFn:
    """``model_fn`` steered towards ``targets`` by ``guide`` with ``scale`` (0: unchanged), each target at the noise
    levels of :meth:`GuideTargets.at`."""
    if not targets or scale == 0:
        return model_fn

    def steered(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        eps = model_fn(x, level)
        now = targets.at(float(level.max()))
        if not now:
            return eps
        with torch.enable_grad():
            xg = x.detach().float().requires_grad_(True)
            (grad,) = torch.autograd.grad(now.log_prob(guide(xg, level.float())).sum(), xg)
        sigma = (1 - level.float() ** 2).clamp(min=0).sqrt().view(-1, *[1] * (x.dim() - 1))
        return eps - scale * sigma * grad.to(eps.dtype)

    return steered
