"""Sampling options and their limits, defined once for the Python API, the command line and the studio.

Torch-free, so that the command line can check options (and build its help) before loading a model."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from melodiff.errors import MelodiffError


class Sampler(str, Enum):
    DDPM = "ddpm"  # ancestral, all N steps (the paper)
    DDIM = "ddim"  # deterministic at eta = 0, any number of steps
    DPM_SOLVER = "dpm-solver"  # DPM-Solver++(2M), second order; the default, 50 steps (docs/RESULTS.md)


FAST_STEPS = 50  # what DDIM and DPM-Solver++ take when no steps are asked for
GIVEN_STEPS = 20  # what DPM-Solver++ takes around a given melody (infill, continue, bridge) when none are asked for
# (docs/RESULTS.md, "Infilling with 20 steps")
MAX_SAMPLING_STEPS = 1000  # DDIM / DPM-Solver++ steps (also capped by the model's schedule length)
MAX_TEMPERATURE = 2.0  # the VAE decoder's softmax temperature; past 2 the notes are noise
MAX_RESAMPLE = 10  # RePaint: each step taken at most this often
MAX_SAMPLES = 1024  # melodies per call
DEFAULT_GUIDANCE = 2.0  # the guide's scale (diffusion/guide.py), measured (docs/RESULTS.md, "Controls by guidance")
MAX_GUIDANCE = 20.0  # past this the guide's gradient swamps the denoiser
CADENCE = 64  # endings decoded again to find one on the tonic (docs/RESULTS.md, "Cadences, two bars deep")
MAX_CADENCE = 256


def check_resample(method: Sampler | str, resample: int) -> None:
    """Resampling redoes single steps, which DPM-Solver++'s multistep history does not allow."""
    if resample > 1 and method == Sampler.DPM_SOLVER:
        raise MelodiffError("resampling works with the ddim and ddpm samplers, not dpm-solver (a multistep solver, "
                            "the default): choose sampler ddim")


@dataclass(frozen=True)
class SamplingOptions:
    """How to sample: ``sampler``, its ``steps`` (None: FAST_STEPS; DDPM always takes all N), the VAE decoder's
    ``temperature`` (0 = greedy, the paper's 0.001), RePaint ``resample`` (1 = off; ddim and ddpm only) and the
    ``guidance`` scale with which a model's guide steers to a key, a tonic ending and the density and style asked for
    (0 = off), and the ``cadence`` candidates for the last bar (then the last two) of a generated piece that does
    not end on its tonic (vae/cadence.py; 0 = off; music made around a given melody is not re-decoded).
    Checked on creation: MelodiffError names the first value out of its range."""

    sampler: Sampler = Sampler.DPM_SOLVER
    steps: int | None = None
    temperature: float = 0.0
    resample: int = 1
    guidance: float = DEFAULT_GUIDANCE
    cadence: int = CADENCE

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "sampler", Sampler(self.sampler))
        except ValueError:
            raise MelodiffError(f"unknown sampler {self.sampler!r}: use one of "
                                f"{', '.join(s.value for s in Sampler)}") from None
        if self.steps is not None and not 1 <= self.steps <= MAX_SAMPLING_STEPS:
            raise MelodiffError(f"sampling steps must be in 1..{MAX_SAMPLING_STEPS}, got {self.steps}")
        if not 0.0 <= self.temperature <= MAX_TEMPERATURE:  # also refuses NaN
            raise MelodiffError(f"temperature must be in 0..{MAX_TEMPERATURE:g}, got {self.temperature}")
        if not 1 <= self.resample <= MAX_RESAMPLE:
            raise MelodiffError(f"resample must be in 1..{MAX_RESAMPLE}, got {self.resample}")
        if not 0 <= self.cadence <= MAX_CADENCE:
            raise MelodiffError(f"cadence must be in 0..{MAX_CADENCE}, got {self.cadence}")
        if not 0.0 <= self.guidance <= MAX_GUIDANCE:
            raise MelodiffError(f"guidance must be in 0..{MAX_GUIDANCE:g}, got {self.guidance}")
        check_resample(self.sampler, self.resample)

    def for_given_music(self) -> SamplingOptions:
        """These options for music made around a given melody: DPM-Solver++ with no steps asked for takes
        GIVEN_STEPS there (its infilling pitch variance 0.909 against 0.823 at FAST_STEPS); others unchanged."""
        if self.steps is None and self.sampler is Sampler.DPM_SOLVER:
            return replace(self, steps=GIVEN_STEPS)
        return self
