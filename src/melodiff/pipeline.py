"""Pipeline: the one-object facade — a VAE + a latent diffusion model -> melodies.

Units: bars (16 steps); the models work in 2-bar chunks, so bar spans are rounded outward to whole chunks.
Every method takes a ``seed``; the same seed gives the same music."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path

import torch

from melodiff.data.normalizer import LatentNormalizer
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.infill import known_projection, tie
from melodiff.diffusion.interpolation import ddim_invert, slerp
from melodiff.diffusion.sampling import ModelFn, denoiser_calls, sample
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.diffusion.windows import Window, plan_windows
from melodiff.errors import MelodiffError
from melodiff.loading import load_model
from melodiff.music.form import AUTO, chunk_sources, draw_forms, fit_form, written_length
from melodiff.music.limits import MAX_BARS
from melodiff.music.melody import BARS_PER_CHUNK, CHUNK_STEPS, STEPS_PER_BAR, Melody
from melodiff.options import MAX_SAMPLES, Sampler, SamplingOptions
from melodiff.vae.model import MelodyVAE

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).parent / "models" / "default"
__all__ = ["DEFAULT_MODEL", "Pipeline", "Progress", "Sampler", "SamplingOptions"]
Progress = Callable[[int, int], None]  # progress(denoiser calls made, calls planned), after every call


class Pipeline:
    def __init__(self, vae: MelodyVAE, denoiser: TransformerDenoiser, schedule: NoiseSchedule,
                 normalizer: LatentNormalizer, forms: dict[str, dict] | None = None) -> None:
        if normalizer.z_size != vae.config.z_size or normalizer.latent_dim != denoiser.config.latent_dim:
            raise MelodiffError("the VAE, normaliser and diffusion model do not belong together")
        self.vae, self.denoiser, self.schedule, self.normalizer = vae.eval(), denoiser.eval(), schedule, normalizer
        self.forms = forms or {}  # length in bars -> the training melodies' forms (loading.read_forms)

    # ---- loading -----------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path = "default") -> Pipeline:
        """A model folder holding ``vae/`` and ``diffusion/`` checkpoints; "default" is the model shipped inside
        the package."""
        return cls(*load_model(DEFAULT_MODEL if str(path) == "default" else Path(path)))

    @property
    def window_chunks(self) -> int:
        return self.denoiser.config.seq_len

    # ---- latents <-> melodies ------------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, melody: Melody, generator: torch.Generator | None = None) -> torch.Tensor:
        """melody -> normalised latents (chunks, D), one z per 2-bar chunk: sampled, or the encoder mean for a model
        trained on means (``normalizer.use_mean``)."""
        chunks = torch.as_tensor(melody.padded().chunks())
        z, mu, _ = self.vae.encode(chunks, generator)
        return self.normalizer.transform(mu if self.normalizer.use_mean else z)

    @torch.no_grad()
    def decode(self, x: torch.Tensor, options: SamplingOptions = SamplingOptions(),
               generator: torch.Generator | None = None) -> list[Melody]:
        """x (B, L, D) normalised latents -> B melodies of L chunks."""
        return self.decode_z(self.normalizer.inverse(x, generator), options.temperature, generator)

    @torch.no_grad()
    def decode_z(self, z: torch.Tensor, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> list[Melody]:
        """z (B, L, Z) full VAE latents -> B melodies of L chunks (greedy at temperature 0)."""
        tokens = self.vae.decode(z.flatten(0, 1), temperature, generator)
        return [Melody.from_chunks(t) for t in tokens.view(z.shape[0], z.shape[1], -1)]

    # ---- sampling --------------------------------------------------------------------------------------------------
    def _model_fn(self, x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, level)

    @torch.no_grad()
    def sample_latents(self, num_chunks: int, num_samples: int = 1, options: SamplingOptions = SamplingOptions(),
                       generator: torch.Generator | None = None, known: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None, progress: Progress | None = None) -> torch.Tensor:
        """(num_samples, num_chunks, D) latents. ``known``/``mask`` (1 = keep, see infill.py) constrain positions.
        Sequences longer than the model's window are made window by window (diffusion/windows.py).
        ``progress(calls made, calls planned)`` is called after every denoiser call."""
        if known is None:
            known = torch.zeros(num_samples, num_chunks, self.normalizer.latent_dim)
            mask = torch.zeros(num_chunks)
        mask = mask.to(torch.float32).reshape(-1)
        plan = plan_windows(num_chunks, self.window_chunks, mask)
        model_fn = self._model_fn if progress is None else _counting(self._model_fn, self._calls(plan, options),
                                                                      progress)
        out = known.expand(num_samples, -1, -1).clone()
        made = torch.zeros(num_chunks)
        for window in plan:
            sl = window.span
            kept = torch.maximum(mask[sl], made[sl])
            project = known_projection(out[:, sl], kept) if window.known else None
            x_T = torch.randn(out[:, sl].shape, generator=generator)
            out[:, sl] = sample(options.sampler, model_fn, self.schedule, x_T, generator, steps=options.steps,
                                clip=self.normalizer.bound, project=project,
                                resample=options.resample if window.known else 1)
            made[sl] = 1
        return out

    def planned_calls(self, num_chunks: int, options: SamplingOptions = SamplingOptions(),
                      mask: torch.Tensor | None = None) -> int:
        """Denoiser calls :meth:`sample_latents` makes for these arguments."""
        return self._calls(plan_windows(num_chunks, self.window_chunks, mask), options)

    def _calls(self, plan: list[Window], options: SamplingOptions) -> int:
        return sum(denoiser_calls(options.sampler, self.schedule.num_steps, options.steps,
                                  options.resample if w.known else 1) for w in plan)

    def generate(self, num_bars: int | None = None, num_samples: int = 1, seed: int = 0,
                 options: SamplingOptions = SamplingOptions(), progress: Progress | None = None,
                 form: str | None = None, section_bars: int | None = None) -> list[Melody]:
        """Unconditional melodies of ``num_bars`` bars (default: the form's length, else the model's window, 2 bars
        per latent). ``form`` (music/form.py): "AABB", "AA'BA", ... with sections of ``section_bars`` bars (default:
        the length divided among the sections, else 8): equal letters are equal music; "auto": every melody takes
        the form of a random training melody of that length (:meth:`form_sources`); None or "none": free sampling
        (the paper's)."""
        if num_bars is None:
            num_bars = written_length(form, section_bars) or self.window_chunks * BARS_PER_CHUNK
        _check_count("bars", num_bars, MAX_BARS)
        _check_count("samples", num_samples, MAX_SAMPLES)
        sources = self.form_sources(form, num_bars, section_bars, num_samples, seed)
        generator = torch.Generator().manual_seed(seed)
        _, melodies = self.sample_melodies(math.ceil(num_bars / BARS_PER_CHUNK), num_samples, options, generator,
                                           sources, progress)
        return [Melody(m.ids[:num_bars * STEPS_PER_BAR]) for m in melodies]

    def form_sources(self, form: str | None, num_bars: int, section_bars: int | None, num_samples: int,
                     seed: int = 0) -> torch.Tensor | None:
        """What :meth:`sample_latents` ties for ``num_samples`` pieces of ``num_bars`` bars in ``form``: (chunks,)
        for a written form (music.form.chunk_sources), (num_samples, chunks) for "auto" — each piece the form of a
        training melody drawn with ``seed`` from the model's forms for that length (``forms.json``, written by
        `melodiff bundle --data`) — and None for free sampling (no form, "none", or "auto" for a length the model
        has no forms for). MelodiffError when a written form does not fit the length."""
        if form is not None and form.strip().lower() == AUTO:
            if section_bars is not None:
                raise MelodiffError("section bars need a written form (e.g. AABB)")
            entry = self.forms.get(str(num_bars))
            if entry is None:
                return None
            return torch.tensor([chunk_sources(f, int(entry["section_bars"]))
                                 for f in draw_forms(entry, num_samples, seed)])
        form, section_bars = fit_form(form, num_bars, section_bars)
        return torch.tensor(chunk_sources(form, section_bars)) if form else None

    def sample_melodies(self, num_chunks: int, num_samples: int, options: SamplingOptions,
                        generator: torch.Generator | None, sources: torch.Tensor | None = None,
                        progress: Progress | None = None) -> tuple[torch.Tensor, list[Melody]]:
        """(latents (num_samples, num_chunks, D), their melodies): :meth:`sample_latents`, then every repeated
        position (``sources`` (num_chunks,) or (num_samples, num_chunks): the position each one repeats, itself when
        free; music.form.chunk_sources) takes its source's latent, then :meth:`decode`, with the repeated chunks
        copied from their sources so that they are equal at any temperature. Copying the finished latents measured
        better than tying them during sampling, at the same cost (docs/RESULTS.md, "Tune form")."""
        x = self.sample_latents(num_chunks, num_samples, options, generator, progress=progress)
        if sources is not None:
            x = tie(x, sources)
        melodies = self.decode(x, options, generator)
        if sources is not None:
            rows = sources.expand(num_samples, -1).numpy()
            melodies = [Melody.from_chunks(m.chunks()[row]) for m, row in zip(melodies, rows, strict=True)]
        return x, melodies

    def infill(self, melody: Melody, start_bar: int, end_bar: int, num_samples: int = 1, seed: int = 0,
               options: SamplingOptions = SamplingOptions(), progress: Progress | None = None) -> list[Melody]:
        """Regenerate bars [start_bar, end_bar) of ``melody`` (0-based, rounded outward to whole 2-bar chunks);
        everything else is kept exactly (the kept chunks are copied, not re-decoded)."""
        total = melody.padded_bars
        if not 0 <= start_bar < end_bar or end_bar > total:
            raise MelodiffError(f"bars to infill must satisfy 0 <= start < end <= {total}, got {start_bar}..{end_bar}")
        first, last = start_bar // BARS_PER_CHUNK * BARS_PER_CHUNK, math.ceil(end_bar / BARS_PER_CHUNK) * BARS_PER_CHUNK
        return self.infill_bars(melody, [(first, last)], num_samples, seed, options, progress)

    def infill_bars(self, melody: Melody, spans: list[tuple[int, int]], num_samples: int = 1, seed: int = 0,
                    options: SamplingOptions = SamplingOptions(), progress: Progress | None = None) -> list[Melody]:
        """Regenerate every bar span ``[start, end)`` in ``spans`` (0-based, each on 2-bar chunk boundaries:
        even start, even end, inside the melody padded to whole chunks); the rest is kept exactly."""
        total = melody.padded_bars
        mask = torch.ones(total // BARS_PER_CHUNK)
        if not spans:
            raise MelodiffError("no bars to infill were given")
        for start, end in spans:
            if not 0 <= start < end <= total:
                raise MelodiffError(f"bars {start + 1}-{end} are outside the melody's {total} bars")
            if start % BARS_PER_CHUNK or end % BARS_PER_CHUNK:
                raise MelodiffError(f"bars {start + 1}-{end} do not fall on 2-bar chunks: a range must start on an "
                                    "odd bar and end on an even bar (1-2, 3-8, 17-48, ...)")
            mask[start // BARS_PER_CHUNK:end // BARS_PER_CHUNK] = 0
        return self._fill(melody, len(mask), mask, num_samples, seed, options, progress)

    def continue_melody(self, melody: Melody, bars: int, num_samples: int = 1, seed: int = 0,
                        options: SamplingOptions = SamplingOptions(), progress: Progress | None = None) -> list[Melody]:
        """``melody`` followed by ``bars`` new bars (the prompt is padded to whole 2-bar chunks)."""
        _check_count("bars", bars, MAX_BARS)
        have = melody.num_chunks
        total = have + math.ceil(bars / BARS_PER_CHUNK)
        mask = torch.zeros(total)
        mask[:have] = 1
        return self._fill(melody, total, mask, num_samples, seed, options, progress)

    def bridge(self, first: Melody, second: Melody, bars: int, num_samples: int = 1, seed: int = 0,
               options: SamplingOptions = SamplingOptions(), progress: Progress | None = None) -> list[Melody]:
        """``first``, then ``bars`` new bars that lead into ``second``, then ``second`` (infilling the gap)."""
        _check_count("bars", bars, MAX_BARS)
        a, b = first.padded(), second.padded()
        gap = math.ceil(bars / BARS_PER_CHUNK)
        joined = Melody.from_chunks([*a.chunks(), *[[0] * CHUNK_STEPS] * gap, *b.chunks()])
        mask = torch.ones(len(joined) // CHUNK_STEPS)
        mask[len(a) // CHUNK_STEPS:len(a) // CHUNK_STEPS + gap] = 0
        return self._fill(joined, len(mask), mask, num_samples, seed, options, progress)

    @torch.no_grad()
    def interpolate(self, first: Melody, second: Melody, num: int = 5, seed: int = 0, steps: int = 50,
                    space: str = "diffusion", temperature: float = 0.0) -> list[Melody]:
        """``num`` melodies morphing from ``first`` to ``second`` at fractions i / (num + 1), i = 1..num (the inputs
        themselves are the ends). Both are cut to the shorter one's length in whole 2-bar chunks.

        space "diffusion": both are encoded (VAE mean) and mapped to the diffusion model's noise x_T by
        deterministic DDIM inversion (``steps`` steps, window by window), the noises are slerped and denoised back
        with DDIM (eta = 0, same steps). space "vae": slerp of the two VAE means chunk by chunk (MusicVAE's own
        interpolation), decoded directly — the comparison the paper draws."""
        _check_count("interpolation points", num, 256)
        if space not in ("diffusion", "vae"):
            raise MelodiffError(f"unknown interpolation space {space!r}: use diffusion or vae")
        length = min(len(first.padded()), len(second.padded())) // CHUNK_STEPS
        mus = [self.vae.encode(torch.as_tensor(m.padded().chunks()[:length]))[1] for m in (first, second)]
        generator = torch.Generator().manual_seed(seed)
        options = SamplingOptions(Sampler.DDIM, steps, temperature)
        fractions = [(i + 1) / (num + 1) for i in range(num)]
        if space == "vae":
            return self.decode_z(torch.stack([slerp(mus[0], mus[1], f) for f in fractions]), temperature, generator)
        noises = []
        for mu in mus:
            x0 = self.normalizer.transform(mu).unsqueeze(0)
            windows = x0.split(self.window_chunks, dim=1)
            noises.append(torch.cat([ddim_invert(self._model_fn, self.schedule, w, steps) for w in windows], 1))
        x_T = torch.cat([slerp(noises[0].flatten(1), noises[1].flatten(1), f) for f in fractions])
        x_T = x_T.view(num, length, -1)
        x = torch.cat([sample(Sampler.DDIM, self._model_fn, self.schedule, w, generator, steps=steps,
                              clip=self.normalizer.bound) for w in x_T.split(self.window_chunks, dim=1)], 1)
        return self.decode(x, options, generator)

    def _fill(self, melody: Melody, total: int, mask: torch.Tensor, num_samples: int, seed: int,
              options: SamplingOptions, progress: Progress | None) -> list[Melody]:
        _check_count("samples", num_samples, MAX_SAMPLES)
        generator = torch.Generator().manual_seed(seed)
        padded = melody.padded()
        have = len(padded) // CHUNK_STEPS
        known = torch.zeros(1, total, self.normalizer.latent_dim)
        known[0, :have] = self.encode(padded, generator)
        x = self.sample_latents(total, num_samples, options, generator, known=known, mask=mask, progress=progress)
        out = []
        source = torch.zeros(total, CHUNK_STEPS, dtype=torch.long)
        source[:have] = torch.as_tensor(padded.chunks())
        for m in self.decode(x, options, generator):
            chunks = torch.where(mask.bool().unsqueeze(1), source, torch.as_tensor(m.chunks()))
            out.append(Melody.from_chunks(chunks.numpy()))
        return out


def _counting(model_fn: ModelFn, planned: int, progress: Progress) -> ModelFn:
    calls = 0

    def counted(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        nonlocal calls
        eps = model_fn(x, level)
        calls += 1
        progress(calls, planned)
        return eps

    return counted


def _check_count(name: str, value: int, maximum: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= maximum:
        raise MelodiffError(f"number of {name} must be an integer in 1..{maximum}, got {value!r}")
