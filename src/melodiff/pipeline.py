"""Pipeline: the one-object facade — a VAE + a latent diffusion model -> melodies.

Units: bars of the pipeline's meter (16 steps in 4/4, 12 in 3/4 and 6/8; music/meter.py); the models work in 2-bar
chunks, so bar spans are rounded outward to whole chunks.
Every method takes a ``seed``; the same seed gives the same music."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import torch

from melodiff.data.contexts import (
    TUNE_FIELDS,
    density_class,
    draw_contexts,
    melody_context,
    position_classes,
    style_index,
)
from melodiff.data.normalizer import LatentNormalizer
from melodiff.device import autocast, randn, resolve_device, to_device
from melodiff.diffusion.denoiser import TransformerDenoiser, context_classes
from melodiff.diffusion.guide import AttributeGuide, GuideTargets, draw_keys, guided
from melodiff.diffusion.infill import known_projection, tie
from melodiff.diffusion.interpolation import ddim_invert, slerp
from melodiff.diffusion.sampling import ModelFn, denoiser_calls, sample
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.diffusion.windows import Window, plan_windows
from melodiff.errors import MelodiffError
from melodiff.loading import find_model, load_model
from melodiff.music.controls import Controls, fit_range
from melodiff.music.form import AUTO, auto_sources, chunk_sources, fit_form, written_length
from melodiff.music.keys import in_key, shift_to_c, transposed_near
from melodiff.music.limits import MAX_BARS
from melodiff.music.melody import BARS_PER_CHUNK, Melody
from melodiff.music.meter import Meter, meter
from melodiff.options import MAX_SAMPLES, Sampler, SamplingOptions
from melodiff.vae.cadence import cadenced
from melodiff.vae.model import MelodyVAE

log = logging.getLogger(__name__)
DEFAULT_MODEL = Path(__file__).parent / "models" / "default"
__all__ = ["DEFAULT_MODEL", "Pipeline", "Progress", "Sampler", "SamplingOptions"]
Progress = Callable[[int, int], None]  # progress(denoiser calls made, calls planned), after every call
CODING_BATCH = 4096  # chunks the VAE encodes or decodes at once: memory stays bounded for long pieces


class Pipeline:
    def __init__(self, vae: MelodyVAE, denoiser: TransformerDenoiser, schedule: NoiseSchedule,
                 normalizer: LatentNormalizer, forms: dict[str, dict] | None = None,
                 contexts: dict | None = None, guide: AttributeGuide | None = None,
                 meter_name: str | None = None) -> None:
        if normalizer.z_size != vae.config.z_size or normalizer.latent_dim != denoiser.config.latent_dim:
            raise MelodiffError("the VAE, normaliser and diffusion model do not belong together")
        if guide is not None and (guide.config.latent_dim, guide.config.seq_len) != (denoiser.config.latent_dim,
                                                                                      denoiser.config.seq_len):
            raise MelodiffError("the guide was trained for another diffusion model (latent size or window)")
        self.guide = None if guide is None else guide.eval().requires_grad_(False)  # steers to a key, a tonic ending,
        # a density and a style (diffusion/guide.py): only its input's gradient is taken
        self.vae, self.denoiser, self.schedule, self.normalizer = vae.eval(), denoiser.eval(), schedule, normalizer
        self.forms = forms or {}  # length in bars -> the training melodies' forms (loading.read_forms)
        self.contexts = contexts  # the training tunes' context table (data/contexts.py), or None
        if denoiser.config.context and (contexts is None or len(contexts["styles"]) != denoiser.config.styles):
            raise MelodiffError("a context model needs the context table of its training tunes")
        if (denoiser.config.meters or ("4/4",)) != vae.config.meters:  # a config from before meters: 4/4
            raise MelodiffError("the VAE and the diffusion model were trained on other meters")
        self.meters = vae.config.meters  # the model meters it makes (music/meter.py), one family
        self.meter: Meter = meter(meter_name or self.meters[0], self.meters)  # the one it makes now

    def use_meter(self, name: str | Meter) -> Pipeline:
        """Make music in ``name``, one of :attr:`meters` (MelodiffError naming them for any other)."""
        self.meter = meter(name, self.meters)
        return self

    # ---- loading -----------------------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path = "default", meter: str | None = None) -> Pipeline:
        """A model folder holding ``vae/`` and ``diffusion/`` checkpoints; "default" is the model shipped inside
        the package. ``meter``: the meter to make music in (default: the folder's first), found in the folder or in
        the model folders for other meters it holds (``meters/*/``, loading.find_model)."""
        return cls(*load_model(find_model(model_folder(path), meter)), meter_name=meter)

    @property
    def window_chunks(self) -> int:
        return self.denoiser.config.seq_len

    @property
    def device(self) -> torch.device:
        return next(self.denoiser.parameters()).device

    def to(self, device: str | torch.device = "auto") -> Pipeline:
        """Run the models on ``device`` (melodiff.device.resolve_device: auto, cpu, cuda, cuda:N, mps); tensors
        given to and returned by the methods stay on the CPU, random draws are made on the CPU (the same seed gives
        the same draws on every device)."""
        target = resolve_device(device)
        self.vae.to(target)
        self.denoiser.to(target)
        if self.guide is not None:
            self.guide.to(target)
        return self

    # ---- latents <-> melodies ------------------------------------------------------------------------------------
    def tune(self, melody: Melody) -> torch.Tensor:
        """The tune context (tonic, minor, style, density) of a given melody (data/contexts.py): its key and density;
        the style is not told (-1)."""
        tonic, minor, density = melody_context(melody)
        return torch.tensor([tonic, minor, -1, density])

    @torch.no_grad()
    def encode(self, melody: Melody, generator: torch.Generator | None = None) -> torch.Tensor:
        """melody -> normalised latents (chunks, D), one z per 2-bar chunk: sampled, or the encoder mean for a model
        trained on means (``normalizer.use_mean``); a key-normalised model (``normalizer.in_c``) encodes the melody
        moved to C (music/keys.py)."""
        if self.normalizer.in_c:
            melody = transposed_near(melody, shift_to_c(int(self.tune(melody)[0])))
        self._check_meter(melody)
        parts = [self.vae.encode(chunks.to(self.device), generator)[:2]
                 for chunks in torch.as_tensor(melody.padded().chunks()).split(CODING_BATCH)]
        z = torch.cat([mu if self.normalizer.use_mean else z for z, mu in parts]).cpu()
        return self.normalizer.transform(z)

    @torch.no_grad()
    def decode(self, x: torch.Tensor, options: SamplingOptions = SamplingOptions(),
               generator: torch.Generator | None = None, tonics: Sequence[int] | None = None) -> list[Melody]:
        """x (B, L, D) normalised latents -> B melodies of L chunks; a key-normalised model's melodies are moved from
        C to the ``tonics`` (B,) pitch classes (left in C without them)."""
        return self.to_key(self.decode_z(self.normalizer.inverse(x.cpu(), generator), options.temperature, generator),
                           tonics)

    def to_key(self, melodies: list[Melody], tonics: Sequence[int] | None) -> list[Melody]:
        """Melodies decoded from a key-normalised model's latents (in C) moved to the ``tonics`` (unchanged for a
        model that is not key-normalised, or without tonics)."""
        if not self.normalizer.in_c or tonics is None:
            return melodies
        return [transposed_near(m, -shift_to_c(int(t))) for m, t in zip(melodies, tonics, strict=True)]

    def draw_tunes(self, num_samples: int, seed: int, controls: Controls | None = None) -> torch.Tensor | None:
        """(num_samples, 4) tune contexts (tonic, minor, style, density) drawn with ``seed`` from the training tunes'
        (data/contexts.py) — those with the key, style and density of ``controls``; for a model with a guide and no
        context table, keys drawn from its training tunes' (the key of ``controls``; style and density -1, not
        drawn); None for a model with neither."""
        fixed = self._fixed_fields(controls)
        if self.contexts is not None:
            return torch.from_numpy(draw_contexts(self.contexts, num_samples, seed, fixed))
        keys = None if self.guide is None else draw_keys(self.guide.config, num_samples, seed,
                                                          controls.key if controls else None)
        return None if keys is None else torch.cat([keys, torch.full((num_samples, 2), -1)], 1)

    @property
    def controls(self) -> tuple[str, ...]:
        """The controls this model takes: key and range always (the finished piece moved to the key's tonic and, if
        its mode is the other one, its degrees changed to the mode's: music.keys.in_key; a guide or a context model
        also steers to the key while sampling); density and style when it is a key-normalised context model or has
        a guide (diffusion/guide.py)."""
        told = self.denoiser.config.context and self.normalizer.in_c and self.contexts is not None
        return ("key", "range", "density", "style") if told or self.guide is not None else ("key", "range")

    @property
    def styles(self) -> tuple[str, ...]:
        """The styles (corpus collections) this model knows: its guide's, else its context table's."""
        if self.guide is not None:
            return self.guide.config.styles
        return tuple(self.contexts["styles"]) if self.contexts is not None else ()

    def targets(self, tunes: torch.Tensor | None, controls: Controls | None = None,
                endings: torch.Tensor | None = None) -> GuideTargets | None:
        """What a model's guide steers pieces towards (None without a guide, or when there is nothing to steer): the
        key of ``tunes`` (B, 4) (:meth:`draw_tunes`, or a given melody's, :meth:`tune`), the density and style of
        ``controls``, and the chunks ``endings`` (B, L) whose last note should be the tonic (:func:`tune_endings`)."""
        if self.guide is None:
            return None
        tonic = minor = None
        if tunes is not None and bool((tunes[:, :2] >= 0).all()):  # a key-normalised model's pieces are in C
            tonic, minor = tunes[:, 0] * (not self.normalizer.in_c), tunes[:, 1]
        else:
            endings = None  # the tonic is not known
        density = controls.density if controls else None
        style = None
        if controls and controls.style is not None:
            style = style_index(self.styles, controls.style)
        return GuideTargets(density, style, tonic, minor, endings) or None

    def _fixed_fields(self, controls: Controls | None) -> dict[str, int]:
        """The tune-context fields ``controls`` fix; MelodiffError for a control this model does not take."""
        if not controls:
            return {}
        asked = [name for name, value in (("key", controls.key), ("density", controls.density),
                                          ("style", controls.style)) if value is not None]
        missing = [name for name in asked if name not in self.controls]
        if missing:
            raise MelodiffError(f"this model takes no {', '.join(missing)} control (it has neither a guide nor "
                                f"key-normalised tune contexts); its controls: {', '.join(self.controls)}")
        fixed = {}
        if self.contexts is None:
            return fixed
        if controls.key is not None:
            fixed["tonic"], fixed["minor"] = controls.key[0], int(controls.key[1])
        if controls.density is not None:
            fixed["density"] = density_class(controls.density)
        if controls.style is not None:
            fixed["style"] = style_index(self.contexts["styles"], controls.style)
        return fixed

    @torch.no_grad()
    def decode_z(self, z: torch.Tensor, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> list[Melody]:
        """z (B, L, Z) full VAE latents -> B melodies of L chunks (greedy at temperature 0), CODING_BATCH chunks at
        a time."""
        tokens = torch.cat([self.vae.decode(part.to(self.device), temperature, generator).cpu()
                            for part in z.flatten(0, 1).split(CODING_BATCH)])
        return [Melody.from_chunks(t, self.meter) for t in tokens.view(z.shape[0], z.shape[1], -1)]

    def _check_meter(self, melody: Melody) -> None:
        if melody.meter != self.meter:
            raise MelodiffError(f"the melody is in {melody.meter}; this model makes {self.meter} here (it knows "
                                f"{', '.join(self.meters)}: ask for the melody's meter)")

    # ---- sampling --------------------------------------------------------------------------------------------------
    def _model_fn(self, x: torch.Tensor, level: torch.Tensor,
                  context: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """The denoiser on x's device (mixed precision on a GPU, melodiff.device.autocast), in float32; a denoiser of
        several meters is told :attr:`meter`."""
        if self.denoiser.meter is not None:
            index = self.denoiser.config.meters.index(self.meter.name)
            context = {**(context or {}), "meter": torch.full((x.shape[0],), index, device=x.device)}
        with autocast(x.device):
            return self.denoiser(x, level, context=context).float()

    def _window_fn(self, window: Window, num_chunks: int, tunes: torch.Tensor | None,
                   where: torch.Tensor | None) -> ModelFn:
        """The denoiser told the context of ``window`` (a context model; else :meth:`_model_fn`): its positions in
        tunes of ``num_chunks`` chunks (``where`` (B, 2): chunks before the sequence and the tune's length, when the
        sequence is part of a longer tune) and the tunes' ``tunes`` (B, 4) fields (-1 = not told)."""
        if not self.denoiser.config.context:
            return self._model_fn
        position = torch.arange(window.start, window.end).unsqueeze(0)
        if where is None:
            before, after = position, num_chunks - 1 - position
        else:
            before = where[:, :1] + position
            after = (where[:, 1:] - 1 - before).clamp(min=0)
        start, end = position_classes(before, after)
        context = {"start": start, "end": end}
        if tunes is not None:
            classes = context_classes(self.denoiser.config)
            for i, name in enumerate(("minor", "style", "density"), start=1):
                context[name] = torch.where(tunes[:, i] < 0, classes[name], tunes[:, i])

        context = to_device(context, self.device)

        def model_fn(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
            return self._model_fn(x, level, {k: v.expand(x.shape[0], *v.shape[1:]) for k, v in context.items()})

        return model_fn

    @torch.no_grad()
    def sample_latents(self, num_chunks: int, num_samples: int = 1, options: SamplingOptions = SamplingOptions(),
                       generator: torch.Generator | None = None, known: torch.Tensor | None = None,
                       mask: torch.Tensor | None = None, progress: Progress | None = None,
                       tunes: torch.Tensor | None = None, where: torch.Tensor | None = None,
                       controls: Controls | None = None, endings: torch.Tensor | None = None) -> torch.Tensor:
        """(num_samples, num_chunks, D) latents. ``known``/``mask`` (1 = keep, see infill.py) constrain positions.
        Sequences longer than the model's window are made window by window (diffusion/windows.py).
        ``progress(calls made, calls planned)`` is called after every denoiser call. A context model is told the
        ``tunes`` (num_samples, 4) contexts (:meth:`draw_tunes`, :meth:`tune`; None: not told) and where each
        position lies in its tune: the sequence is the whole tune, or ``where`` (num_samples, 2) says how many
        chunks come before it and how long the tune is. A model with a guide is steered (:meth:`targets`) with
        ``options.guidance`` towards the tunes' keys, the density and style of ``controls`` and a tonic at the end
        of each tune (``endings``, default :func:`tune_endings`)."""
        if known is None:
            known = torch.zeros(num_samples, num_chunks, self.normalizer.latent_dim)
            mask = torch.zeros(num_chunks)
        mask = mask.to(torch.float32).reshape(-1)
        targets = None
        if self.guide is not None and options.guidance > 0:
            if endings is None:
                endings = tune_endings(num_samples, num_chunks, mask, where)
            targets = self.targets(tunes, controls, endings)
            if targets is not None and bool(mask.any()):
                targets = replace(targets, free=1 - mask)
        plan = plan_windows(num_chunks, self.window_chunks, mask)
        counter = None if progress is None else _Counter(self._calls(plan, options), progress)
        out = known.expand(num_samples, -1, -1).to(self.device, copy=True)
        made = torch.zeros(num_chunks)
        for window in plan:
            sl = window.span
            kept = torch.maximum(mask[sl], made[sl])
            project = known_projection(out[:, sl], kept.to(self.device)) if window.known else None
            x_T = randn(out[:, sl].shape, generator, out)
            model_fn = self._window_fn(window, num_chunks, tunes, where)
            if targets is not None:
                model_fn = guided(model_fn, self.guide, targets.window(window.start, window.end), options.guidance)
            if counter is not None:
                model_fn = counter.wrap(model_fn)
            out[:, sl] = sample(options.sampler, model_fn, self.schedule, x_T, generator, steps=options.steps,
                                clip=self.normalizer.bound, project=project,
                                resample=options.resample if window.known else 1)
            made[sl] = 1
        return out.cpu()

    def planned_calls(self, num_chunks: int, options: SamplingOptions = SamplingOptions(),
                      mask: torch.Tensor | None = None) -> int:
        """Denoiser calls :meth:`sample_latents` makes for these arguments."""
        return self._calls(plan_windows(num_chunks, self.window_chunks, mask), options)

    def _calls(self, plan: list[Window], options: SamplingOptions) -> int:
        return sum(denoiser_calls(options.sampler, self.schedule.num_steps, options.steps,
                                  options.resample if w.known else 1) for w in plan)

    def generate(self, num_bars: int | None = None, num_samples: int = 1, seed: int = 0,
                 options: SamplingOptions = SamplingOptions(), progress: Progress | None = None,
                 form: str | None = None, section_bars: int | None = None,
                 controls: Controls | None = None) -> list[Melody]:
        """Unconditional melodies of ``num_bars`` bars (default: the form's length, else the model's window, 2 bars
        per latent). ``form`` (music/form.py): "AABB", "AA'BA", ... with sections of ``section_bars`` bars (default:
        the length divided among the sections, else 8): equal letters are equal music; "auto": every melody takes
        the form of a random training melody of that length (:meth:`form_sources`); None or "none": free sampling
        (the paper's). ``controls`` (music/controls.py): the key, range, density and style asked for (:attr:`controls`
        says which this model takes)."""
        if num_bars is None:
            num_bars = written_length(form, section_bars) or self.window_chunks * BARS_PER_CHUNK
        _check_count("bars", num_bars, MAX_BARS)
        _check_count("samples", num_samples, MAX_SAMPLES)
        sources = self.form_sources(form, num_bars, section_bars, num_samples, seed)
        generator = torch.Generator().manual_seed(seed)
        tunes = self.draw_tunes(num_samples, seed, controls)
        num_chunks = math.ceil(num_bars / BARS_PER_CHUNK)
        bar, chunk = self.meter.steps_per_bar, self.meter.chunk_steps
        _, melodies = self.sample_melodies(num_chunks, num_samples, options, generator, sources, progress, tunes,
                                           controls, num_bars * bar - (num_chunks - 1) * chunk)
        melodies = [m.with_ids(m.ids[:num_bars * bar]) for m in melodies]
        if controls and controls.key is not None:  # the key asked for, whatever the model made (music/keys.py)
            melodies = [in_key(m, *controls.key) for m in melodies]
        return _in_range(melodies, controls)

    def form_sources(self, form: str | None, num_bars: int, section_bars: int | None, num_samples: int,
                     seed: int = 0) -> torch.Tensor | None:
        """What :meth:`sample_latents` ties for ``num_samples`` pieces of ``num_bars`` bars in ``form``: (chunks,)
        for a written form (music.form.chunk_sources), (num_samples, chunks) for "auto" — each piece the form of a
        training melody drawn with ``seed`` from the model's forms for that length (``forms.json``, written by
        `melodiff bundle --data`), for a length without forms of its own consecutive parts in such forms
        (music.form.auto_sources) — and None for free sampling (no form, "none", or "auto" for a piece shorter than
        every form the model has). MelodiffError when a written form does not fit the length."""
        if form is not None and form.strip().lower() == AUTO:
            if section_bars is not None:
                raise MelodiffError("section bars need a written form (e.g. AABB)")
            sources = auto_sources(self.forms, num_bars, num_samples, seed)
            return None if sources is None else torch.from_numpy(sources)
        form, section_bars = fit_form(form, num_bars, section_bars)
        return torch.tensor(chunk_sources(form, section_bars)) if form else None

    def sample_melodies(self, num_chunks: int, num_samples: int, options: SamplingOptions,
                        generator: torch.Generator | None, sources: torch.Tensor | None = None,
                        progress: Progress | None = None, tunes: torch.Tensor | None = None,
                        controls: Controls | None = None, end_steps: int | None = None
                        ) -> tuple[torch.Tensor, list[Melody]]:
        """(latents (num_samples, num_chunks, D), their melodies): :meth:`sample_latents`, then every repeated
        position (``sources`` (num_chunks,) or (num_samples, num_chunks): the position each one repeats, itself when
        free; music.form.chunk_sources) takes its source's latent, then :meth:`decode`, with the repeated chunks
        copied from their sources so that they are equal at any temperature. Copying the finished latents measured
        better than tying them during sampling, at the same cost (docs/RESULTS.md, "Tune form"). ``tunes``: the
        pieces' contexts (:meth:`draw_tunes`), told to a context model, giving a key-normalised model's keys and
        the keys a model's guide steers to (with the density and style of ``controls``, and a tonic ending). With
        ``options.cadence``, pieces that do not end on their tonic have their ending decoded again
        (vae/cadence.py; ``end_steps``: the steps of the last chunk the piece keeps). The guide steers the last
        chunk to a tonic ending only when the piece keeps it whole (its ending label is the chunk's last note)."""
        chunk = self.meter.chunk_steps
        end_steps = chunk if end_steps is None else end_steps
        endings = tune_endings(num_samples, num_chunks, torch.zeros(num_chunks), None, sources)
        if end_steps < chunk:
            endings[:] = False
        x = self.sample_latents(num_chunks, num_samples, options, generator, progress=progress, tunes=tunes,
                                controls=controls, endings=endings)
        if sources is not None:
            x = tie(x, sources)
        z = self.normalizer.inverse(x.cpu(), generator)
        melodies = self.decode_z(z, options.temperature, generator)
        rows = None
        if sources is not None:
            rows = sources.expand(num_samples, -1).numpy()
            melodies = [Melody.from_chunks(m.chunks()[row], m.meter) for m, row in zip(melodies, rows, strict=True)]
        if options.cadence:  # from the latent the last chunk was decoded from (its source's, when it repeats one)
            last = z[:, -1] if rows is None else z[torch.arange(num_samples), torch.from_numpy(rows[:, -1])]
            melodies = cadenced(self.vae, melodies, last, options.cadence, generator, end_steps, rows)
        return x, self.to_key(melodies, None if tunes is None else tunes[:, 0].tolist())

    def infill(self, melody: Melody, start_bar: int, end_bar: int, num_samples: int = 1, seed: int = 0,
               options: SamplingOptions = SamplingOptions(), progress: Progress | None = None,
               controls: Controls | None = None) -> list[Melody]:
        """Regenerate bars [start_bar, end_bar) of ``melody`` (0-based, rounded outward to whole 2-bar chunks);
        everything else is kept exactly (the kept chunks are copied, not re-decoded)."""
        total = melody.padded_bars
        if not 0 <= start_bar < end_bar or end_bar > total:
            raise MelodiffError(f"bars to infill must satisfy 0 <= start < end <= {total}, got {start_bar}..{end_bar}")
        first, last = start_bar // BARS_PER_CHUNK * BARS_PER_CHUNK, math.ceil(end_bar / BARS_PER_CHUNK) * BARS_PER_CHUNK
        return self.infill_bars(melody, [(first, last)], num_samples, seed, options, progress, controls)

    def infill_bars(self, melody: Melody, spans: list[tuple[int, int]], num_samples: int = 1, seed: int = 0,
                    options: SamplingOptions = SamplingOptions(), progress: Progress | None = None,
                    controls: Controls | None = None) -> list[Melody]:
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
        return self._fill(melody, len(mask), mask, num_samples, seed, options, progress, controls)

    def continue_melody(self, melody: Melody, bars: int, num_samples: int = 1, seed: int = 0,
                        options: SamplingOptions = SamplingOptions(), progress: Progress | None = None,
                        controls: Controls | None = None) -> list[Melody]:
        """``melody`` followed by ``bars`` new bars (the prompt is padded to whole 2-bar chunks)."""
        _check_count("bars", bars, MAX_BARS)
        have = melody.num_chunks
        total = have + math.ceil(bars / BARS_PER_CHUNK)
        mask = torch.zeros(total)
        mask[:have] = 1
        return self._fill(melody, total, mask, num_samples, seed, options, progress, controls)

    def bridge(self, first: Melody, second: Melody, bars: int, num_samples: int = 1, seed: int = 0,
               options: SamplingOptions = SamplingOptions(), progress: Progress | None = None,
               controls: Controls | None = None) -> list[Melody]:
        """``first``, then ``bars`` new bars that lead into ``second``, then ``second`` (infilling the gap)."""
        _check_count("bars", bars, MAX_BARS)
        self._check_meter(second)
        a, b = first.padded(), second.padded()
        gap = math.ceil(bars / BARS_PER_CHUNK)
        chunk = a.chunk_steps
        joined = Melody.from_chunks([*a.chunks(), *[[0] * chunk] * gap, *b.chunks()], a.meter)
        mask = torch.ones(len(joined) // chunk)
        mask[len(a) // chunk:len(a) // chunk + gap] = 0
        return self._fill(joined, len(mask), mask, num_samples, seed, options, progress, controls)

    @torch.no_grad()
    def interpolate(self, first: Melody, second: Melody, num: int = 5, seed: int = 0, steps: int = 50,
                    space: str = "diffusion", temperature: float = 0.0) -> list[Melody]:
        """``num`` melodies morphing from ``first`` to ``second`` at fractions i / (num + 1), i = 1..num (the inputs
        themselves are the ends). Both are cut to the shorter one's length in whole 2-bar chunks.

        space "diffusion": both are encoded (VAE mean) and mapped to the diffusion model's noise x_T by
        deterministic DDIM inversion (``steps`` steps, window by window), the noises are slerped and denoised back
        with DDIM (eta = 0, same steps). space "vae": slerp of the two VAE means chunk by chunk (MusicVAE's own
        interpolation), decoded directly — the comparison the paper draws. A key-normalised model interpolates
        both moved to C and writes the result in the first one's key."""
        _check_count("interpolation points", num, 256)
        if space not in ("diffusion", "vae"):
            raise MelodiffError(f"unknown interpolation space {space!r}: use diffusion or vae")
        tonics = None
        if space == "diffusion" and self.normalizer.in_c:  # a key-normalised model: both in C, out in the first's key
            first_tonic, second_tonic = (int(self.tune(m)[0]) for m in (first, second))
            tonics = [first_tonic] * num
            first = transposed_near(first, shift_to_c(first_tonic))
            second = transposed_near(second, shift_to_c(second_tonic))
        for m in (first, second):
            self._check_meter(m)
        length = min(len(first.padded()), len(second.padded())) // self.meter.chunk_steps
        mus = [self.vae.encode(torch.as_tensor(m.padded().chunks()[:length]).to(self.device))[1].cpu()
               for m in (first, second)]
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
        return self.decode(x, options, generator, tonics)

    def _fill(self, melody: Melody, total: int, mask: torch.Tensor, num_samples: int, seed: int,
              options: SamplingOptions, progress: Progress | None, controls: Controls | None = None) -> list[Melody]:
        """The new chunks (``mask`` 0) of ``melody`` made around the kept ones, which are copied. ``controls``: the
        new music's style, density (told to a context model or steered by its guide) and range (its notes moved by
        octaves into it); the key is the given melody's."""
        if controls and controls.key is not None:
            raise MelodiffError("the key of music made around a given melody is that melody's: transpose the input "
                                "instead of asking for a key")
        _check_count("samples", num_samples, MAX_SAMPLES)
        options = options.for_given_music()
        generator = torch.Generator().manual_seed(seed)
        padded = melody.padded()
        have = len(padded) // padded.chunk_steps
        known = torch.zeros(1, total, self.normalizer.latent_dim)
        known[0, :have] = self.encode(padded, generator)
        tunes = self.tune(melody).expand(num_samples, -1).clone()
        for name, value in self._fixed_fields(controls).items():
            tunes[:, TUNE_FIELDS.index(name)] = value
        x = self.sample_latents(total, num_samples, options, generator, known=known, mask=mask, progress=progress,
                                tunes=tunes, controls=controls)
        out = []
        source = torch.zeros(total, padded.chunk_steps, dtype=torch.long)
        source[:have] = torch.as_tensor(padded.chunks())
        free = ~mask.bool()  # only the new chunks are decoded: the kept ones are copied
        new = self.decode(x[:, free], options, generator, tunes[:, 0].tolist())
        if controls and controls.pitch_range is not None:  # in place: the new music must meet the kept music
            new = [fit_range(m, *controls.pitch_range) for m in new]
        for m in new:
            chunks = source.clone()
            chunks[free] = torch.as_tensor(m.chunks())
            out.append(Melody.from_chunks(chunks.numpy(), padded.meter))
        return out


class _Counter:
    """Counts denoiser calls across windows and reports them to ``progress``."""

    def __init__(self, planned: int, progress: Progress) -> None:
        self.calls, self.planned, self.progress = 0, planned, progress

    def wrap(self, model_fn: ModelFn) -> ModelFn:
        def counted(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
            eps = model_fn(x, level)
            self.calls += 1
            self.progress(self.calls, self.planned)
            return eps

        return counted


def model_folder(path: str | Path) -> Path:
    """The folder of a model named on the command line or in the API: "default" is the shipped one."""
    return DEFAULT_MODEL if str(path) == "default" else Path(path)


def tune_endings(num_samples: int, num_chunks: int, mask: torch.Tensor, where: torch.Tensor | None = None,
                 sources: torch.Tensor | None = None) -> torch.Tensor:
    """(num_samples, num_chunks) bool: the chunk that ends each tune, when it is to be made (``mask`` 0 there) and
    the sequence reaches the tune's end (always, unless ``where`` (B, 2) says otherwise: chunks before the sequence
    and the tune's length), and the chunk it repeats (``sources``, music.form.chunk_sources)."""
    ends = torch.zeros(num_samples, num_chunks, dtype=torch.bool)
    last = num_chunks - 1
    if mask[last] != 0:
        return ends
    at_end = torch.ones(num_samples, dtype=torch.bool) if where is None else where[:, 0] + num_chunks >= where[:, 1]
    ends[:, last] = at_end
    if sources is not None:
        ends[torch.arange(num_samples), sources.expand(num_samples, -1)[:, last]] |= at_end
    return ends


def _in_range(melodies: list[Melody], controls: Controls | None) -> list[Melody]:
    """Melodies fitted into the range of ``controls`` by whole octaves (music.controls.fit_range), if one is asked."""
    if not controls or controls.pitch_range is None:
        return melodies
    return [fit_range(m, *controls.pitch_range, steps=(-24, -12, 0, 12, 24)) for m in melodies]


def _check_count(name: str, value: int, maximum: int) -> None:
    if not isinstance(value, int) or not 1 <= value <= maximum:
        raise MelodiffError(f"number of {name} must be an integer in 1..{maximum}, got {value!r}")
