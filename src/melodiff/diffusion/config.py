"""Configuration of the latent diffusion model (docs/PAPER.md §4) and its presets."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from melodiff.config import check_transformer_sizes
from melodiff.errors import MelodiffError


class BetaSchedule(str, Enum):
    LINEAR = "linear"  # betas linear from beta_start to beta_end (Ho et al. 2020; the paper)
    COSINE = "cosine"  # alpha_bar = cos² of the time (Nichol & Dhariwal 2021, eq. 17); diffusers' "squaredcos_cap_v2"


@dataclass(frozen=True)
class ScheduleConfig:
    """DDPM noise schedule of ``num_steps`` betas: ``linear`` from ``beta_start`` to ``beta_end`` (the paper), or
    ``cosine`` (which ignores ``beta_start`` / ``beta_end``). Configs saved before ``kind`` existed are linear."""

    num_steps: int = 1000
    beta_start: float = 1e-6
    beta_end: float = 0.01
    kind: BetaSchedule = BetaSchedule.LINEAR

    def __post_init__(self) -> None:
        if self.num_steps < 1 or not 0 < self.beta_start <= self.beta_end < 1:
            raise MelodiffError("schedule needs num_steps >= 1 and 0 < beta_start <= beta_end < 1")
        try:
            object.__setattr__(self, "kind", BetaSchedule(self.kind))  # accept "cosine" as well as the Enum
        except ValueError:
            raise MelodiffError(f"unknown beta schedule {self.kind!r}: use one of "
                                f"{', '.join(k.value for k in BetaSchedule)}") from None


@dataclass(frozen=True)
class DenoiserConfig:
    """TransformerDenoiser sizes. ``latent_dim`` is set from the normaliser when training starts."""

    latent_dim: int = 42
    seq_len: int = 32  # chunks (2 bars each) per training sequence; sampling may ask for any length up to this
    width: int = 128
    layers: int = 6
    heads: int = 8
    mlp: int = 2048
    dense_units: int = 2048
    dense_blocks: int = 2
    noise_channels: int = 128
    noise_embedding: int = 512
    context: bool = False  # told the tune context (data/contexts.py): positions in the tune, mode, style, density
    styles: int = 0  # styles of a context model, set from the latent dataset when training starts
    noise_in_trunk: bool = False  # the noise embedding also added to the transformer's input tokens (not the paper)
    meters: tuple[str, ...] = ()  # the model meters of its training melodies; with two or more it is told which

    def __post_init__(self) -> None:
        check_transformer_sizes(self)
        if self.styles < 0 or (self.styles and not self.context):
            raise MelodiffError(f"styles must be 0 without a context and >= 0 with one, got {self.styles}")
        if self.noise_channels % 2:
            raise MelodiffError(f"noise_channels must be even (sin and cos halves), got {self.noise_channels}")


@dataclass(frozen=True)
class DiffusionTrainConfig:
    batch_size: int = 64
    steps: int = 500_000
    lr: float = 1e-3
    lr_decay: float = 0.98  # multiplied in every ``lr_decay_every`` steps
    lr_decay_every: int = 4000
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # the paper uses no EMA
    context_dropout: float = 0.15  # share of windows whose each context field is "not told" (context models)
    seed: int = 0


PRESETS: dict[str, tuple[DenoiserConfig, ScheduleConfig, DiffusionTrainConfig]] = {
    "paper": (DenoiserConfig(), ScheduleConfig(), DiffusionTrainConfig()),
    # what ships: trains in about half an hour on 2 CPU cores (docs/models/default.md)
    "cpu": (DenoiserConfig(seq_len=16, width=128, layers=4, heads=8, mlp=512, dense_units=512, noise_embedding=256),
            ScheduleConfig(), DiffusionTrainConfig(batch_size=64, steps=10_000, lr=1e-3, lr_decay=0.9,
                                                   lr_decay_every=1000, ema_decay=0.999)),
    "tiny": (DenoiserConfig(seq_len=8, width=32, layers=1, heads=2, mlp=64, dense_units=64, dense_blocks=1,
                            noise_channels=16, noise_embedding=32),
             ScheduleConfig(num_steps=100, beta_end=0.05), DiffusionTrainConfig(batch_size=16, steps=30)),
}


def preset(name: str) -> tuple[DenoiserConfig, ScheduleConfig, DiffusionTrainConfig]:
    if name not in PRESETS:
        raise MelodiffError(f"unknown diffusion preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]
