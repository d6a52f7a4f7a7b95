"""Configuration of the 2-bar melody VAE (docs/PAPER.md §2) and its presets."""

from __future__ import annotations

from dataclasses import dataclass

from melodiff.errors import MelodiffError
from melodiff.music.melody import NUM_CLASSES
from melodiff.music.meter import BARS_PER_CHUNK, family


@dataclass(frozen=True)
class VAEConfig:
    """MusicVAE-style model sizes. ``encoder_units`` per direction; one decoder layer per entry of ``decoder_units``
    (all equal, as Magenta's multi_rnn_cell). ``meters``: the model meters of its chunks (music/meter.py), one
    family: ("4/4",) with ``steps`` 32, or ("3/4", "6/8") with 24 (two bars)."""

    z_size: int = 512
    encoder_units: int = 2048
    decoder_layers: int = 3
    decoder_units: int = 2048
    num_classes: int = NUM_CLASSES
    steps: int = 32
    meters: tuple[str, ...] = ("4/4",)

    def __post_init__(self) -> None:
        if min(self.z_size, self.encoder_units, self.decoder_layers, self.decoder_units) < 1:
            raise MelodiffError("VAE sizes must be positive")
        if not self.meters or self.steps != family(self.meters) * BARS_PER_CHUNK:
            raise MelodiffError(f"VAE chunks of {self.steps} steps are not two bars of {', '.join(self.meters)}")


@dataclass(frozen=True)
class VAETrainConfig:
    """ELBO and optimisation settings (docs/PAPER.md §2): beta = max_beta * (1 - beta_rate**step), lr decays per
    step."""

    max_beta: float = 0.5
    beta_rate: float = 0.99999
    free_bits: float = 0.0
    sampling_rate: float = 1000.0  # inverse-sigmoid scheduled sampling; 0 = always teacher forcing
    transpose: int = 5  # random transposition of training chunks by -transpose..+transpose semitones
    batch_size: int = 512
    steps: int = 200_000
    lr: float = 1e-3
    lr_decay: float = 0.9999
    min_lr: float = 1e-5
    grad_clip: float = 1.0
    seed: int = 0


PRESETS: dict[str, tuple[VAEConfig, VAETrainConfig]] = {
    # cat-mel_2bar_big, as the paper
    "paper": (VAEConfig(), VAETrainConfig()),
    # cat-mel_2bar_small's shapes (magenta.js mel_2bar_small)
    "magenta-small": (VAEConfig(z_size=256, encoder_units=512, decoder_layers=2, decoder_units=256),
                      VAETrainConfig()),
    # what ships: sized so it trains in about 2 h 10 min on 2 CPU cores (docs/models/default.md)
    "cpu": (VAEConfig(z_size=128, encoder_units=256, decoder_layers=2, decoder_units=256),
            VAETrainConfig(max_beta=0.1, beta_rate=0.9995, sampling_rate=1000.0, batch_size=128, steps=18_000,
                           lr_decay=0.99993)),
    # for tests
    "tiny": (VAEConfig(z_size=16, encoder_units=32, decoder_layers=1, decoder_units=32),
             VAETrainConfig(max_beta=0.2, beta_rate=0.99, sampling_rate=0.0, batch_size=32, steps=50, lr_decay=1.0)),
}


def preset(name: str) -> tuple[VAEConfig, VAETrainConfig]:
    if name not in PRESETS:
        raise MelodiffError(f"unknown VAE preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]
