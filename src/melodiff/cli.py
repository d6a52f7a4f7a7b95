"""The `melodiff` command line: thin subcommands over the library. Exit codes: 0 ok, 2 bad input/usage, 1 bug."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

from melodiff.errors import MelodiffError, MeterOutsideModel
from melodiff.music.form import AUTO, FREE, fit_form, written_length
from melodiff.music.limits import MAX_SEED
from melodiff.music.meter import METERS
from melodiff.options import (
    CADENCE,
    DEFAULT_GUIDANCE,
    FAST_STEPS,
    GIVEN_STEPS,
    MAX_CADENCE,
    MAX_GUIDANCE,
    MAX_RESAMPLE,
    MAX_SAMPLING_STEPS,
    MAX_TEMPERATURE,
    Sampler,
    SamplingOptions,
)
from melodiff.utils.threads import configure_threads

EPILOG = "Exit codes: 0 success, 2 bad input or arguments (one-line error), 1 unexpected failure."


class _Parser(argparse.ArgumentParser):
    """argparse with melodiff's one-line errors: ``melodiff: error: …`` and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        print(f"melodiff: error: {message} (see '{self.prog} --help')", file=sys.stderr)
        sys.exit(2)


def _max_seconds(args: argparse.Namespace) -> float:
    return args.max_minutes * 60 if args.max_minutes is not None else float("inf")


# ---- data and training ---------------------------------------------------------------------------------------------
def _cmd_prepare(args: argparse.Namespace) -> None:
    from melodiff.data.prepare import PrepareConfig, prepare

    config = PrepareConfig(min_bars=args.min_bars, validation_fraction=args.validation, test_fraction=args.test,
                           meters=tuple(args.meters))
    report = prepare(args.sources, args.out, config, workers=args.workers, quiet=args.quiet)
    if not args.quiet:
        print(f"{report['melodies']} melodies ({report['bars_total']:.0f} bars) written to {args.out}; "
              f"see {args.out}/report.md")


def _cmd_train_vae(args: argparse.Namespace) -> None:
    from melodiff.vae.train import train_vae

    init = args.init
    if init == "default":
        from melodiff.pipeline import DEFAULT_MODEL

        init = DEFAULT_MODEL / "vae"
    train_vae(args.data, args.out, args.preset, steps=args.steps, seed=args.seed, max_seconds=_max_seconds(args),
              progress=not args.quiet, init=init, settings=args.settings, device=args.device, meters=args.meters)
    if not args.quiet:
        print(f"VAE checkpoint in {args.out}")


def _cmd_evaluate_vae(args: argparse.Namespace) -> None:
    from melodiff.data.chunks import training_chunks
    from melodiff.data.prepare import load_melodies
    from melodiff.loading import load_vae
    from melodiff.music.meter import meter
    from melodiff.vae.evaluate import evaluate_vae, prior_statistics

    vae = load_vae(args.vae)
    meters = vae.config.meters if args.meter is None else (meter(args.meter, vae.config.meters).name,)
    melodies, _ = load_melodies(args.data, args.split, meters)
    chunks = training_chunks(melodies, vae.config.steps)
    scores = evaluate_vae(vae, chunks)
    scores["prior_samples_vs_data"] = prior_statistics(vae, chunks, seed=args.seed)
    print(json.dumps(scores, indent=2))


def _cmd_encode(args: argparse.Namespace) -> None:
    from melodiff.device import resolve_device
    from melodiff.loading import load_vae, read_config
    from melodiff.vae.encode import encode_dataset

    dims = read_config(args.vae, "vae").get("trim_dims")  # set by `import-magenta --paper-dims`
    vae = load_vae(args.vae).to(resolve_device(args.device))
    data = encode_dataset(vae, args.data, seed=args.seed, threshold=args.sigma_threshold, dims=dims,
                          scaling=args.scaling, use_mean=args.use_mean, in_c=args.in_c)
    data.save(args.out)
    if not args.quiet:
        print(f"{len(data.x)} latents of {data.normalizer.latent_dim} kept dims (of {data.normalizer.z_size}) "
              f"written to {args.out}")


def _cmd_import_magenta(args: argparse.Namespace) -> None:
    from melodiff.vae.magenta import import_magenta

    config = import_magenta(args.path, args.out, paper_dims=args.paper_dims)
    if not args.quiet:
        print(f"VAE checkpoint in {args.out} (z {config.z_size}, encoder {config.encoder_units}, decoder "
              f"{config.decoder_layers} x {config.decoder_units})")


def _cmd_train_diffusion(args: argparse.Namespace) -> None:
    from melodiff.diffusion.train import train_diffusion

    train_diffusion(args.latents, args.out, args.preset, steps=args.steps, seed=args.seed,
                    max_seconds=_max_seconds(args), progress=not args.quiet, settings=args.settings, device=args.device)
    if not args.quiet:
        print(f"diffusion checkpoint in {args.out}")


def _cmd_train_guide(args: argparse.Namespace) -> None:
    from melodiff.diffusion.guide_train import train_guide

    train_guide(args.latents, args.data, args.diffusion, args.out, steps=args.steps,
                seed=args.seed, max_seconds=_max_seconds(args), progress=not args.quiet, device=args.device)
    if not args.quiet:
        print(f"guide checkpoint in {args.out}")


def _cmd_train_mdn(args: argparse.Namespace) -> None:
    from melodiff.baseline.train import train_mdn

    train_mdn(args.latents, args.out, args.preset, steps=args.steps, seed=args.seed, max_seconds=_max_seconds(args),
              progress=not args.quiet, settings=args.settings, device=args.device)
    if not args.quiet:
        print(f"TransformerMDN checkpoint in {args.out}")


def _cmd_bundle(args: argparse.Namespace) -> None:
    from melodiff.bundle import bundle_model

    size = bundle_model(args.vae, args.diffusion, args.out, args.data, args.guide, args.half)
    if not args.quiet:
        print(f"model folder {args.out} ({size / 2**20:.1f} MiB)")


# ---- music ---------------------------------------------------------------------------------------------------------
def _pipeline(args: argparse.Namespace, meter: str | None = None, source: str | None = None):
    """The model of a music command for ``meter`` (loading.find_model; default the model's first) — the meter of the
    melody read from ``source``, whose name starts the error when the model does not make it; also fixes the seed
    (a random one, printed, when none is given)."""
    from melodiff.pipeline import Pipeline

    if args.seed is None:
        import secrets

        args.seed = secrets.randbelow(MAX_SEED + 1)
        if not args.quiet:
            print(f"seed {args.seed} (pass --seed {args.seed} to get the same result again)")
    try:
        return Pipeline.from_pretrained(args.model, meter).to(args.device)
    except MeterOutsideModel as exc:
        if source is None:
            raise
        raise MelodiffError(f"{source}: the melody is in {meter}; {exc}") from None


def _options(args: argparse.Namespace) -> SamplingOptions:
    return SamplingOptions(sampler=args.sampler, steps=args.steps, temperature=args.temperature,
                           resample=args.resample, guidance=args.guidance,
                           cadence=getattr(args, "cadence", CADENCE))  # generate's only: others keep their ends


@contextlib.contextmanager
def _progress(args: argparse.Namespace, what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar over the denoiser calls of one sampling run (none with -q)."""
    if args.quiet:
        yield None
        return
    from tqdm import tqdm

    with tqdm(desc=what, unit="step", dynamic_ncols=True, leave=False) as bar:
        def progress(done: int, planned: int) -> None:
            bar.total = planned
            bar.update(done - bar.n)

        yield progress


def _check_form(args: argparse.Namespace) -> None:
    """--form and --section-bars that cannot fit fail before a seed is drawn or a model loaded."""
    if args.form.strip().lower() != AUTO:
        fit_form(args.form, args.bars, args.section_bars)
    elif args.section_bars is not None:
        raise MelodiffError("--section-bars needs a written --form (e.g. AABB)")


def _read_melody(path: str, track: int | None = None, quiet: bool = False):
    """A MIDI file's first melody track (or track number ``track`` among its non-drum tracks with notes), or for
    MusicXML/ABC/kern the ``track``-th melody that extraction keeps (docs/DATA.md rules; default the first)."""
    from melodiff.music.extract import MIDI_SUFFIXES, extract_file
    from melodiff.music.meter import FILE_METERS
    from melodiff.music.midi_io import read_midi_melody

    if Path(path).suffix.lower() in MIDI_SUFFIXES and track is None:
        return read_midi_melody(path)
    melodies = [m for _, ex in extract_file(path, min_bars=1) for m in ex.melodies]
    if not melodies:
        raise MelodiffError(f"{path}: no melody in {', '.join(FILE_METERS)} could be extracted (see `melodiff "
                            "prepare` for the rules)")
    index = track or 0
    if not 0 <= index < len(melodies):
        raise MelodiffError(f"{path}: --track {index} out of range (0..{len(melodies) - 1})")
    if not quiet:
        print(f"{path}: using melody {index} of {len(melodies)} ({melodies[index].part}, {melodies[index].meter}, "
              f"{-(-len(melodies[index].melody) // melodies[index].melody.steps_per_bar)} bars; choose another with "
              "--track)")
    return melodies[index].melody


def _write_outputs(melodies: list, args: argparse.Namespace, stem: str, highlight=None) -> None:
    from melodiff.music.midi_io import draw_piano_roll, fluidsynth_available, render_wav, synthesize_wav, write_midi

    out = Path(args.out)
    use_fluidsynth = args.wav and fluidsynth_available()
    if args.wav and not use_fluidsynth:
        logging.warning("FluidSynth or a soundfont is missing (apt-get install fluidsynth fluid-soundfont-gm): "
                        "WAV files use melodiff's plain built-in synthesiser")
    written = []
    for i, melody in enumerate(melodies):
        base = out / f"{stem}_{i:03d}"
        midi = base.with_suffix(".mid")
        write_midi(melody, midi, tempo_qpm=args.tempo, program=args.program)
        written.append(midi)
        if args.png:
            draw_piano_roll(melody, base.with_suffix(".png"), title=f"{stem} {i} (seed {args.seed})",
                            highlight=highlight)
            written.append(base.with_suffix(".png"))
        if args.wav:
            if use_fluidsynth:
                render_wav(midi, base.with_suffix(".wav"))
            else:
                synthesize_wav(melody, base.with_suffix(".wav"), args.tempo)
            written.append(base.with_suffix(".wav"))
        if args.musicxml or args.abc or args.sheet:
            written += _write_notation(melody, args, base, f"{_title(args, stem)}, seed {args.seed}, #{i + 1}",
                                       highlight)
    if not args.quiet:
        for path in written:
            print(path)


def _title(args: argparse.Namespace, stem: str) -> str:
    """The title of a piece's sheet music: "melodiff generate", "melodiff interpolate (slerp)"."""
    return f"melodiff {args.command}" + ("" if stem in (args.command, "sample") else f" ({stem})")


def _asked_key(args: argparse.Namespace) -> tuple[int, bool] | None:
    """The key --key asked for (tonic pitch class, minor), if the command has the option and it was given."""
    if not getattr(args, "key", None):
        return None
    from melodiff.music.controls import parse_key

    return parse_key(args.key)


def _write_notation(melody, args: argparse.Namespace, base: Path, title: str, highlight=None) -> list[Path]:
    """The melody's ABC, MusicXML and engraved SVG (as asked) next to its MIDI: ``base``.abc, .musicxml, .svg (pages
    after the first: ``base``-2.svg, ...), in the key --key asked for, else the key found from its notes (key
    signature and spelling: music/notation.py). What cannot be written is skipped with one warning line that names
    it (the MIDI is written already). ``highlight``: spans of steps (end None: to the end) drawn in colour."""
    from melodiff.music import notation
    from melodiff.utils.io import atomic_write_text

    written, skipped, reason = [], [], ""
    wanted = [("ABC", args.abc), ("MusicXML", args.musicxml), ("sheet music", args.sheet)]
    try:
        key = notation.resolve_key(melody, _asked_key(args))
        if args.abc:
            atomic_write_text(base.with_suffix(".abc"), notation.to_abc(melody, title, key, args.tempo))
            written.append(base.with_suffix(".abc"))
        musicxml = notation.to_musicxml(melody, title, key, args.tempo) if args.musicxml or args.sheet else ""
        if args.musicxml:
            atomic_write_text(base.with_suffix(".musicxml"), musicxml)
            written.append(base.with_suffix(".musicxml"))
        if args.sheet:
            bar = melody.steps_per_bar
            bars = -(-len(melody) // bar)
            spans = [(start // bar, bars if end is None else -(-end // bar))
                     for start, end in highlight or []]
            for page, svg in enumerate(notation.engrave(musicxml, spans), start=1):
                path = base.with_suffix(".svg") if page == 1 else base.with_name(f"{base.name}-{page}.svg")
                atomic_write_text(path, svg)
                written.append(path)
    except notation.NotationError as exc:
        done = {path.suffix for path in written}
        skipped = [name for (name, asked), suffix in zip(wanted, (".abc", ".musicxml", ".svg"), strict=True)
                   if asked and suffix not in done]
        reason = str(exc)
    if skipped:
        print(f"melodiff: warning: {base.name}: {' and '.join(skipped)} skipped ({reason}); the MIDI is written",
              file=sys.stderr)
    return written


def _cmd_generate(args: argparse.Namespace) -> None:
    options = _options(args)  # bad options fail before a seed is drawn or a model loaded
    controls = _controls(args)
    _check_form(args)
    bars = args.bars or written_length(args.form, args.section_bars) or DEFAULT_BARS
    pipeline = _pipeline(args, args.meter)
    with _progress(args, "sampling") as progress:
        melodies = pipeline.generate(bars, args.num, args.seed, options, progress, args.form, args.section_bars,
                                     controls)
    _write_outputs(melodies, args, "sample")


def _cmd_infill(args: argparse.Namespace) -> None:
    options, controls = _options(args), _controls(args, key=False)
    melody = _read_melody(args.input, args.track, args.quiet)
    pipeline = _pipeline(args, melody.meter.name, args.input)
    with _progress(args, "infilling") as progress:
        melodies = pipeline.infill_bars(melody, args.bars, args.num, args.seed, options, progress, controls)
    spans = [(start * melody.steps_per_bar, end * melody.steps_per_bar) for start, end in args.bars]
    _write_outputs(melodies, args, "infill", highlight=spans)


def _cmd_continue(args: argparse.Namespace) -> None:
    options, controls = _options(args), _controls(args, key=False)
    melody = _read_melody(args.input, args.track, args.quiet)
    pipeline = _pipeline(args, melody.meter.name, args.input)
    with _progress(args, "continuing") as progress:
        melodies = pipeline.continue_melody(melody, args.bars, args.num, args.seed, options, progress, controls)
    _write_outputs(melodies, args, "continue", highlight=[(len(melody.padded()), None)])


def _cmd_interpolate(args: argparse.Namespace) -> None:
    options = _options(args) if args.bridge is not None else None  # interpolation itself always uses DDIM
    controls = _controls(args, key=False)
    if controls and args.bridge is None:
        raise MelodiffError("--range, --density and --style shape new music: use them with --bridge")
    first, second = _read_melody(args.first, args.track, args.quiet), _read_melody(args.second, args.track, args.quiet)
    if first.meter != second.meter:
        raise MelodiffError(f"{args.first} is in {first.meter}, {args.second} in {second.meter}: give two melodies "
                            "in one meter")
    pipeline = _pipeline(args, first.meter.name, args.first)
    if args.bridge is not None:
        with _progress(args, "bridging") as progress:
            melodies = pipeline.bridge(first, second, args.bridge, args.num or 1, args.seed, options, progress,
                                       controls)
        start = len(first.padded())
        _write_outputs(melodies, args, "bridge", highlight=[(start, start + -(-args.bridge // 2) * first.chunk_steps)])
        return
    steps = args.steps or FAST_STEPS
    for space, stem in (("diffusion", "interpolate"), ("vae", "slerp")):
        melodies = pipeline.interpolate(first, second, args.num or 5, args.seed, steps, space, args.temperature)
        _write_outputs(melodies, args, stem)


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from melodiff.data.prepare import load_melodies
    from melodiff.evaluation import Evaluator, write_results
    from melodiff.loading import load_mdn
    from melodiff.music.melody import BARS_PER_CHUNK

    if Path(args.out).suffix.lower() in (".json", ".md"):
        raise MelodiffError(f"--out {args.out}: give a folder (results.json, results.md and plots go inside)")
    _check_form(args)
    samplers = [(Sampler(name), steps) for name, steps in map(_sampler_row, args.samplers)]
    SamplingOptions(samplers[0][0], resample=args.resample, guidance=args.guidance, cadence=args.cadence)  # now
    pipeline = _pipeline(args, args.meter)
    bars = args.bars or written_length(args.form, args.section_bars)
    meters = (pipeline.meter.name,)  # the ground truth and the test data: melodies in the meter evaluated
    train, train_index = load_melodies(args.data, "train", meters)
    test, test_index = load_melodies(args.data, "test", meters)
    if not test:
        raise MelodiffError(f"{args.data}: the test split has no melodies in {pipeline.meter}")
    evaluator = Evaluator(pipeline, train, test, seed=args.seed, guidance=args.guidance, cadence=args.cadence)
    mdn = load_mdn(args.mdn).to(pipeline.device) if args.mdn else None
    length = -(-bars // BARS_PER_CHUNK) if bars else None  # chunks of the generated rows (None: the model's window)
    if "unconditional" in args.tasks:
        evaluator.unconditional(args.num, samplers, mdn, length, args.form, args.section_bars)
    if "infilling" in args.tasks:
        evaluator.infilling(samplers[0][0], samplers[0][1], args.num, resample=args.resample)
    if "controls" in args.tasks:
        evaluator.controls(args.num, samplers[0][0], samplers[0][1], [r.get("source", "") for r in train_index],
                           [r.get("source", "") for r in test_index], length)
    settings = {"model": str(args.model), "meter": pipeline.meter.name, "data": str(args.data), "mdn": args.mdn,
                "num_samples": args.num, "samplers": args.samplers, "tasks": args.tasks, "seed": args.seed,
                "resample": args.resample, "guidance": args.guidance, "cadence": args.cadence, "bars": args.bars,
                "form": args.form,
                "section_bars": args.section_bars}
    paths = write_results(evaluator, args.out, settings)
    if not args.quiet:
        print(paths[1].read_text())  # results.md
        for path in paths:
            print(path)


def _cmd_serve(args: argparse.Namespace) -> None:
    from melodiff.server import serve

    serve(args.model, host=args.host, port=args.port, device=args.device)


# ---- parser --------------------------------------------------------------------------------------------------------
def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _nonneg_int(text: str) -> int:
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {value}")
    return value


def _positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


def _bar_ranges(text: str) -> list[tuple[int, int]]:
    """"17-48,57-60" (1-based, inclusive) -> [(16, 48), (56, 60)] (0-based, half-open); "9" is bar 9 alone."""
    spans = []
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        try:
            start, end = int(first), int(last or first)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a bar range like 17-48") from None
        if not 1 <= start <= end:
            raise argparse.ArgumentTypeError(f"{part.strip()!r}: bars count from 1 and a range runs forwards")
        spans.append((start - 1, end))
    return spans


def _number(text: str) -> float:
    """A finite number (inf and nan are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number: {text}")
    return value


def _nonneg_float(text: str) -> float:
    value = _number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0: {text}")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0: {text}")
    return value


def _seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"a seed is an integer in 0..{MAX_SEED}, got {text}")
    return value


def _path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; name a file or folder")
    return text


def _sampler_row(text: str) -> tuple[str, int | None]:
    """"ddim:20" -> ("ddim", 20); "ddpm" -> ("ddpm", None)."""
    name, colon, steps = text.partition(":")
    if name not in SAMPLERS:
        raise argparse.ArgumentTypeError(f"unknown sampler {name!r} in {text!r}: use {', '.join(SAMPLERS)}")
    if not colon:
        return name, None
    return name, _positive_int(steps)


def _sampler_row_text(text: str) -> str:
    _sampler_row(text)
    return text


def _controls(args: argparse.Namespace, key: bool = True):
    """The --key, --range, --density and --style asked for (music/controls.py), checked before a model loads."""
    from melodiff.music.controls import Controls

    return Controls.parse(args.key if key else None, args.range, args.density, args.style)


def _add_control_args(p: argparse.ArgumentParser, key: bool = True) -> None:
    if key:
        p.add_argument("--key", default=None, help="the piece's key, e.g. C, F#, Bb, Em, F#m, 'D minor': a model "
                       "with a guide steers to it while sampling; the finished piece is moved to its tonic and, if "
                       "still in the other mode, its 3rd, 6th and 7th degrees changed to the mode asked for (default: "
                       "a key drawn from the training tunes')")
    p.add_argument("--range", default=None, metavar="LOW-HIGH", help="every new note inside this range: note names "
                   "or MIDI numbers, e.g. D5-B6 (a D whistle) or 62-83; at least a fifth")
    p.add_argument("--density", type=_positive_float, default=None, metavar="N",
                   help="average note onsets per bar, 1..16, for a model with a guide or tune contexts (default: "
                   "free)")
    p.add_argument("--style", default=None, help="a collection the model was trained on, e.g. oneills1850 (Irish), "
                   "airdsAirs (Scottish), essenFolksong (German and other European songs); the model lists its own")
    p.add_argument("--guidance", type=_nonneg_float, default=DEFAULT_GUIDANCE, metavar="SCALE",
                   help=f"how strongly the model's guide steers to a key (--key, or one drawn from the training "
                   f"tunes', or the given melody's), a tonic ending, --density and --style, 0..{MAX_GUIDANCE:g} "
                   f"(default {DEFAULT_GUIDANCE:g}; 0 = not at all)")


def _device(text: str) -> str:
    from melodiff.device import resolve_device

    try:
        resolve_device(text)
    except MelodiffError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--device {text}: ")) from None
    return text


def _add_cadence_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cadence", type=_nonneg_int, default=CADENCE, metavar="K", help="a new piece that does not end "
                   "on its tonic has its last bar (then, if none does, its last two) decoded again K times and takes "
                   f"the likeliest ending that does, 0..{MAX_CADENCE} (default {CADENCE}; 0: off, as the paper)")


def _add_device_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", type=_device, default="auto", help="where the models run: auto (a GPU if there is "
                   "one, default), cpu, cuda, cuda:N or mps; bf16 mixed precision on GPUs that have it")


def _add_run_args(p: argparse.ArgumentParser) -> None:
    _add_device_arg(p)
    p.add_argument("--steps", type=_positive_int, default=None, help="training steps (default: the preset's)")
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default: the preset's)")
    p.add_argument("--max-minutes", type=_positive_float, default=None,
                   help="stop with a checkpoint after this long; rerun the same command to resume")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                   help="change one field of the preset's configs for a new run, e.g. --set train.lr=3e-4 "
                   "(repeatable; a wrong name prints the fields there are; resuming a run needs the same values)")


SAMPLERS = tuple(s.value for s in Sampler)
DEFAULT_BARS = 64
GUIDE_STEPS = 10_000
RESAMPLE_HELP = ("RePaint resampling where music is kept (infill, continue, bridge, generate past 32 bars): take "
                 f"every sampling step this often, 1..{MAX_RESAMPLE} (default 1; needs --sampler ddim or ddpm; costs "
                 "that many times the time)")


def _add_music_args(p: argparse.ArgumentParser, num_help: str = "number of variations (default 1)") -> None:
    p.add_argument("--model", default="default", help="model folder (default: the model shipped with melodiff)")
    p.add_argument("--out", type=_path, default="melodiff-out", help="output folder (default melodiff-out)")
    p.add_argument("-n", "--num", type=_positive_int, default=1, help=num_help)
    p.add_argument("--seed", type=_seed, default=None, help="random seed (default: a random one, printed)")
    p.add_argument("--sampler", choices=SAMPLERS, default=SamplingOptions.sampler.value,
                   help=f"dpm-solver (default; {FAST_STEPS} steps, {GIVEN_STEPS} around a given melody) | ddim "
                   f"({FAST_STEPS} steps by default) | ddpm (the paper's, all "
                   "1000 steps)")
    p.add_argument("--steps", type=_positive_int, default=None,
                   help=f"sampling steps for ddim / dpm-solver, 1..{MAX_SAMPLING_STEPS}")
    p.add_argument("--temperature", type=_nonneg_float, default=0.0,
                   help=f"VAE decoder temperature, 0..{MAX_TEMPERATURE:g} (default 0: greedy)")
    p.add_argument("--resample", type=_positive_int, default=1, help=RESAMPLE_HELP)
    p.add_argument("--tempo", type=_number, default=120.0, help="MIDI tempo in quarter notes per minute")
    p.add_argument("--program", type=int, default=0, help="General MIDI program 0..127 (default 0, piano)")
    p.add_argument("--wav", action="store_true", help="also render WAV with FluidSynth")
    p.add_argument("--png", action="store_true", help="also draw a piano-roll PNG")
    p.add_argument("--musicxml", action="store_true", help="also write MusicXML 4 (.musicxml), spelled in the "
                   "piece's key (docs/NOTATION.md)")
    p.add_argument("--abc", action="store_true", help="also write an ABC 2.1 tune (.abc)")
    p.add_argument("--sheet", action="store_true", help="also engrave sheet music as SVG with Verovio (.svg)")
    p.add_argument("--track", type=int, default=None, help="which extracted melody of an input file to use "
                   "(default: a MIDI file's first melody track, else the first extracted melody)")


def build_parser() -> argparse.ArgumentParser:
    def flags(default):  # -q/-v accepted before or after the subcommand
        p = _Parser(add_help=False)
        p.add_argument("-q", "--quiet", action="store_true", default=default, help="no progress bars or summaries")
        p.add_argument("-v", "--verbose", action="store_true", default=default, help="log details")
        return p

    common = flags(argparse.SUPPRESS)
    parser = _Parser(prog="melodiff", description=__doc__, epilog=EPILOG, parents=[flags(False)])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func, help_text: str, epilog: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog, parents=[common],
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("generate", _cmd_generate, "generate melodies (MIDI, optionally WAV and PNG)",
            "examples:\n  melodiff generate --bars 32 -n 4 --wav --png --out out/\n"
            "  melodiff generate --form AABB --section-bars 8 --wav   # 32 bars: sections 1 and 2 alike, 3 and 4 alike")
    _add_music_args(p)
    _add_device_arg(p)
    _add_control_args(p)
    _add_cadence_arg(p)
    p.add_argument("--meter", choices=list(METERS), default=None,
                   help="the meter: 4/4, 3/4 (waltzes) or 6/8 (jigs), those the model makes (default: its first, "
                   "4/4 for the shipped model; bars are bars of this meter)")
    p.add_argument("--bars", type=_positive_int, default=None, help=f"length in bars (default {DEFAULT_BARS}, or "
                   "a written form's; beyond the model's window the piece is made window by window)")
    p.add_argument("--form", default=AUTO, help="sections as letters: AABB, ABAC, AA'BA (A' = A varied: its first "
                   f"half kept, a new end); equal letters are equal music. {AUTO} (default): each melody takes the "
                   "form of a random training melody of that length (a length without forms of its own: parts in such "
                   "forms, e.g. 64 bars = two 32-bar parts); "
                   f"{FREE}: free sampling, as the paper")
    p.add_argument("--section-bars", type=_positive_int, default=None, help="bars per section (default: the "
                   "length divided among the sections, else 8)")

    p = add("infill", _cmd_infill, "regenerate bars of a melody, keeping the rest exactly",
            "examples:\n  melodiff infill tune.mid --bars 17-48 -n 3 --png\n"
            "  melodiff infill tune.mid --bars 1-4,13-16 --wav\n\n"
            "Bars are numbered from 1 as in a score; the model works in 2-bar chunks, so every range must start\n"
            "on an odd bar and end on an even one.")
    p.add_argument("input", help="MIDI, MusicXML, ABC or kern file (see --track)")
    p.add_argument("--bars", required=True, type=_bar_ranges, metavar="RANGES",
                   help="bar ranges to regenerate, e.g. 17-48 or 1-4,13-16 (1-based, inclusive)")
    _add_music_args(p)
    _add_device_arg(p)
    _add_control_args(p, key=False)

    p = add("continue", _cmd_continue, "continue a melody: keep its bars and compose more after them",
            "example:\n  melodiff continue tune.mid --bars 16 -n 2 --wav   # 16 new bars\n\n"
            "The melody is first padded to whole 2-bar chunks; the new bars follow.")
    p.add_argument("input", help="MIDI, MusicXML, ABC or kern file (see --track)")
    p.add_argument("--bars", type=_positive_int, default=32, help="bars to add (default 32)")
    _add_music_args(p)
    _add_device_arg(p)
    _add_control_args(p, key=False)

    p = add("interpolate", _cmd_interpolate, "morph from one melody into another",
            "examples:\n  melodiff interpolate a.mid b.mid --num 5 --png\n"
            "  melodiff interpolate a.mid b.mid --bridge 8   # 8 new bars leading from a into b\n\n"
            "Writes interpolate_*.mid (mixed in the diffusion model's noise space, by DDIM inversion) and\n"
            "slerp_*.mid (MusicVAE-style slerp of the VAE latents) for comparison.")
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--bridge", type=_positive_int, default=None, metavar="BARS",
                   help="instead of morphing: compose BARS bars that lead from the first melody into the second")
    _add_music_args(p, num_help="melodies between the two (default 5; with --bridge: variations, default 1)")
    _add_device_arg(p)
    _add_control_args(p, key=False)
    p.set_defaults(num=None)

    p = add("prepare", _cmd_prepare, "extract monophonic 4/4 melodies into a dataset",
            "examples:\n  melodiff prepare music21:folk --out data/folk\n  melodiff prepare ~/midi --out data/mine")
    p.add_argument("sources", nargs="+", help="music21:folk | music21:classical | music21:all | music21:<collection> "
                   "| a MIDI/MusicXML/ABC/kern file or folder")
    p.add_argument("--out", type=_path, required=True, help="output folder")
    p.add_argument("--workers", type=_positive_int, default=None, help="parallel parsers (default: number of cores)")
    p.add_argument("--min-bars", type=_positive_int, default=4, help="drop melodies shorter than this (default 4)")
    p.add_argument("--meters", nargs="+", choices=list(METERS), default=list(METERS), metavar="METER",
                   help="keep melodies in these model meters (default all: 4/4, 3/4, 6/8; written 2/2, 2/4, 4/2 "
                   "count as 4/4, 3/2 as 3/4, 3/8, 12/8, 6/4 as 6/8)")
    p.add_argument("--validation", type=_number, default=0.05, help="validation fraction (default 0.05)")
    p.add_argument("--test", type=_number, default=0.05, help="test fraction (default 0.05)")

    p = add("train-vae", _cmd_train_vae, "train (or resume) the 2-bar melody VAE")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", type=_path, required=True, help="checkpoint folder (resumes if it holds a run)")
    p.add_argument("--preset", default="cpu", help="paper | magenta-small | cpu | tiny (default cpu)")
    p.add_argument("--init", help="start a new run from this VAE checkpoint (`default`: the shipped VAE): its "
                   "configs, weights and step, a fresh optimiser; --steps counts on from its step")
    p.add_argument("--meters", nargs="+", choices=list(METERS), metavar="METER",
                   help="train on the melodies in these meters, of one family: 4/4, or 3/4 and 6/8 (default: the "
                   "preset's or --init's, 4/4)")
    _add_run_args(p)

    p = add("evaluate-vae", _cmd_evaluate_vae, "reconstruction quality of a VAE on a split, and what its prior "
            "samples look like next to that split")
    p.add_argument("--vae", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--split", default="validation", choices=["train", "validation", "test"])
    p.add_argument("--meter", choices=list(METERS), default=None, help="only the split's melodies in this meter, "
                   "one of the VAE's (default: all its meters)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the prior samples (default 0)")

    p = add("encode", _cmd_encode, "encode a dataset into trimmed, normalised latents")
    p.add_argument("--vae", required=True, help="VAE checkpoint folder")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", type=_path, required=True, help="output .npz")
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--sigma-threshold", type=_positive_float, default=1.0,
                   help="keep dims with mean sigma below (default 1)")
    p.add_argument("--scaling", choices=["standard", "minmax"], default="standard",
                   help="standard: unit variance (default); minmax: [-1, 1] as the paper (docs/DEVIATIONS.md)")
    p.add_argument("--use-mean", action="store_true", help="encode each chunk as the encoder mean instead of a "
                   "sampled z (the paper's choice, default); the model remembers which")
    _add_device_arg(p)
    p.add_argument("--in-c", action="store_true", help="move every melody to C (its Krumhansl-Kessler tonic) before "
                   "encoding: a key-normalised prior; generated pieces are moved to a key of the training tunes "
                   "(docs/DEVIATIONS.md)")

    p = add("import-magenta", _cmd_import_magenta, "convert a Magenta MusicVAE 2-bar melody checkpoint into a VAE "
            "checkpoint", "examples:\n  melodiff import-magenta cat-mel_2bar_big.tar --out vae-paper --paper-dims\n"
            "  melodiff import-magenta mel_2bar_small/ --out vae-small\nsee docs/MAGENTA.md")
    p.add_argument("path", help="TF checkpoint (.index/.data-*, its folder or .tar) or magenta.js checkpoint folder")
    p.add_argument("--out", type=_path, required=True, help="VAE checkpoint folder to write")
    p.add_argument("--paper-dims", action="store_true", help="keep the paper's 42 dims of cat-mel_2bar_big when "
                   "encoding, instead of recomputing them from sigma")

    p = add("train-diffusion", _cmd_train_diffusion, "train (or resume) the latent diffusion model")
    p.add_argument("--latents", required=True, help=".npz from `melodiff encode`")
    p.add_argument("--out", type=_path, required=True)
    p.add_argument("--preset", default="cpu", help="paper | cpu | tiny (default cpu)")
    _add_run_args(p)

    p = add("train-guide", _cmd_train_guide, "train (or resume) the guide that steers a diffusion model to a density, "
            "mode and style (docs/DEVIATIONS.md, \"Controls by guidance\")")
    p.add_argument("--latents", required=True, help=".npz from `melodiff encode` (with tune contexts) that the "
                   "diffusion model was trained on")
    p.add_argument("--data", required=True, help="the prepared dataset the latents were encoded from")
    p.add_argument("--diffusion", required=True, help="the diffusion checkpoint to guide")
    p.add_argument("--out", type=_path, required=True)
    _add_device_arg(p)
    p.add_argument("--steps", type=_positive_int, default=GUIDE_STEPS, help=f"training steps (default {GUIDE_STEPS:,})")
    p.add_argument("--seed", type=_seed, default=0, help="random seed (default 0)")
    p.add_argument("--max-minutes", type=_positive_float, default=None,
                   help="stop with a checkpoint after this long; rerun the same command to resume")

    p = add("train-mdn", _cmd_train_mdn, "train (or resume) the TransformerMDN baseline")
    p.add_argument("--latents", required=True)
    p.add_argument("--out", type=_path, required=True)
    p.add_argument("--preset", default="cpu", help="paper | cpu | tiny (default cpu)")
    _add_run_args(p)

    p = add("bundle", _cmd_bundle, "assemble a model folder (vae/ + diffusion/, weights only) for generation")
    p.add_argument("--vae", required=True)
    p.add_argument("--diffusion", required=True)
    p.add_argument("--out", type=_path, required=True)
    p.add_argument("--data", default=None, help="the prepared dataset the model was trained on: its training "
                   "melodies' forms give the default form of each length (forms.json)")
    p.add_argument("--guide", default=None, help="a guide checkpoint of `melodiff train-guide`: the model then "
                   "takes --density and --style, and --key's mode")
    p.add_argument("--half", action="store_true", help="store the weights in float16 (half the bytes; they are "
                   "computed in float32)")

    p = add("evaluate", _cmd_evaluate, "the paper's tables (framewise consistency/variance, latent FD/MMD), time per "
            "sample, melody statistics and plots, real vs generated",
            "example:\n  melodiff evaluate --model models/mine --data data/folk --num 200 --out results/mine")
    p.add_argument("--model", default="default", help="model folder (default: the shipped model)")
    p.add_argument("--meter", choices=list(METERS), default=None, help="the meter evaluated (default the model's "
                   "first, 4/4): its generated rows against the data's melodies in that meter")
    p.add_argument("--data", required=True, help="prepared dataset (train = ground truth, test = real music)")
    p.add_argument("--mdn", default=None, help="TransformerMDN checkpoint to include as a row")
    p.add_argument("-n", "--num", "--samples", dest="num", type=_positive_int, default=200,
                   help="generated sequences per row (default 200); infilling uses at most this many test windows "
                   "and infills each several times when there are fewer")
    p.add_argument("--samplers", nargs="+", type=_sampler_row_text, default=["dpm-solver", "ddpm"],
                   help=f"sampler[:steps] rows (default dpm-solver ddpm); the first is used for infilling (dpm-solver "
                   f"without steps: {FAST_STEPS}, and {GIVEN_STEPS} for infilling, as generate and infill)")
    p.add_argument("--resample", type=_positive_int, default=1, help="RePaint resampling of the infilling row "
                   "(see melodiff infill --help; default 1 = off)")
    p.add_argument("--bars", type=_positive_int, default=None, help="length of the unconditional sequences in bars "
                   "(default: the model's window)")
    p.add_argument("--form", default=FREE, help=f"form of the unconditional diffusion rows, as generate --form "
                   f"(default {FREE}: free sampling, the paper's protocol; {AUTO}: forms of training melodies)")
    p.add_argument("--section-bars", type=_positive_int, default=None, help="bars per section of --form")
    p.add_argument("--tasks", nargs="+", choices=["unconditional", "infilling", "controls"],
                   default=["unconditional", "infilling"], help="which tables (default unconditional and "
                   "infilling; controls: how often --key, --density, --style and --range are obeyed)")
    p.add_argument("--guidance", type=_nonneg_float, default=DEFAULT_GUIDANCE, metavar="SCALE",
                   help=f"the scale of the model's guide in every diffusion row, 0..{MAX_GUIDANCE:g} (default "
                   f"{DEFAULT_GUIDANCE:g}; 0: the unguided model, the paper's sampling)")
    _add_cadence_arg(p)
    p.add_argument("--seed", type=_seed, default=0)
    _add_device_arg(p)
    p.add_argument("--out", type=_path, default="melodiff-eval", help="folder for results.json, results.md, "
                   "pianorolls.png and statistics.png (default melodiff-eval)")

    p = add("serve", _cmd_serve, "melodiff studio: a local web page and JSON API (needs melodiff[studio])",
            "example:\n  melodiff serve --port 8000   # then open http://127.0.0.1:8000/\nsee docs/STUDIO.md")
    p.add_argument("--model", default="default", help="model folder (default: the model shipped with melodiff)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    _add_device_arg(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    configure_threads()  # before torch loads: threads for the cores free now (utils/threads.py)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except MelodiffError as exc:
        print(f"melodiff: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the machine said no: disk full, permission denied, a file where a folder should be
        where = f": {exc.filename}" if exc.filename else ""
        print(f"melodiff: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("melodiff: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
