"""The paper's evaluation (docs/PAPER.md §7) for our models: framewise self-similarity (Consistency / Variance of pitch
and duration, against the *training* melodies as ground truth) and latent FD / MMD (against the held-out *test*
latents), for unconditional generation and for infilling the middle half of test sequences; next to them descriptive
statistics of the melodies (metrics/stats.py) and the wall time per generated sample.

Rows, unconditional: Test data (real test melodies), Test data through the VAE (their latents decoded again: what
the VAE alone keeps of the music), Diffusion with each requested sampler, TransformerMDN (if given),
Prior (N(0, 1) VAE latents). Infilling (on the infilled region only): Test data (the real region), Diffusion,
Interpolation (slerp in the full VAE latent space between the latents either side of the gap), Prior.

:func:`write_results` puts ``results.json``, ``results.md``, ``pianorolls.png`` and ``statistics.png`` in a folder."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from melodiff.baseline.mdn import TransformerMDN, mdn_sample
from melodiff.diffusion.interpolation import slerp
from melodiff.diffusion.windows import sliding_starts
from melodiff.metrics.controls import StyleClassifier, density_obeyed, key_accuracy, range_share
from melodiff.metrics.framewise import framewise_scores, oa_statistics
from melodiff.metrics.latent import frechet_distance, mmd_rbf
from melodiff.metrics.stats import DESCRIPTIVE, melody_statistics, per_melody_statistics, pitch_class_histogram
from melodiff.metrics.structure import (
    STRUCTURE,
    interval_reference,
    phrase_classifier,
    self_similarity,
    structure_statistics,
)
from melodiff.music.controls import Controls
from melodiff.music.melody import BARS_PER_CHUNK, Melody
from melodiff.music.midi_io import draw_piano_roll_sheet
from melodiff.options import CADENCE, DEFAULT_GUIDANCE, FAST_STEPS, Sampler, SamplingOptions
from melodiff.pipeline import Pipeline
from melodiff.utils.io import atomic_save_png, atomic_write_text

log = logging.getLogger(__name__)
Task = Literal["unconditional", "infilling", "controls"]
# what `evaluate --tasks controls` asks for (each setting's samples spread over its values)
CONTROL_KEYS = ("G", "D", "C", "F", "A", "Bb", "Em", "Am", "Dm", "Bm")
CONTROL_RANGES = ("D4-B5", "D5-B6")  # a fiddle's first position, a tin whistle in D
CONTROL_DENSITIES = (2.0, 4.0, 6.0, 8.0)
COLUMNS = ("pitch_consistency", "pitch_variance", "duration_consistency", "duration_variance")
# Column headings and number formats of the descriptive statistics (metrics/stats.py DESCRIPTIVE).
STATISTICS_HEADINGS = {
    "notes_per_bar": ("notes / bar", "{:.2f}"),
    "pitch_range": ("pitch range (semitones)", "{:.1f}"),
    "pitch_class_distance": ("pitch-class distance to test", "{:.3f}"),
    "scale_consistency": ("scale consistency", "{:.3f}"),
    "rest_fraction": ("rest fraction", "{:.3f}"),
    "repeated_2bar_fraction": ("repeated 2-bar fraction", "{:.3f}"),
}
PIANO_ROLLS_PER_ROW = 4


@dataclass
class EvalRow:
    """One row of the tables. ``melodies``: what the descriptive statistics describe (the infilled region only when
    infilling; real test melodies cut to the generated length), kept for the plots and not written to JSON."""

    task: Task
    name: str
    scores: dict[str, float] = field(default_factory=dict)
    statistics: dict[str, float] = field(default_factory=dict)
    num_samples: int = 0  # melodies scored: generated sequences, or the real test melodies / windows
    seconds: float | None = None  # wall time (s) to sample and decode the row's melodies, no scoring; None: real
    real: bool = False
    structure: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> (value, standard error)
    classifier: dict[str, float] = field(default_factory=dict)  # metrics.structure.phrase_classifier
    melodies: list[Melody] = field(default_factory=list, repr=False)

    @property
    def seconds_per_sample(self) -> float | None:
        return self.seconds / self.num_samples if self.seconds is not None and self.num_samples else None

    def to_json(self) -> dict:
        """The row without its melodies; NaN (a statistic without data) becomes null."""
        def clean(d: dict[str, float]) -> dict[str, float | None]:
            return {k: None if math.isnan(v) else v for k, v in d.items()}

        return {"task": self.task, "name": self.name, "real": self.real, "num_samples": self.num_samples,
                "seconds": self.seconds, "seconds_per_sample": self.seconds_per_sample, "scores": clean(self.scores),
                "statistics": clean(self.statistics), "classifier": clean(self.classifier),
                "structure": {k: {"value": None if math.isnan(v) else v, "se": None if math.isnan(e) else e}
                              for k, (v, e) in self.structure.items()}}


def _crop(melodies: list[Melody], start_step: int, end_step: int | None) -> list[Melody]:
    return [m.with_ids(m.ids[start_step:end_step]) for m in melodies]


def _diffusion_label(sampler: Sampler, steps: int | None, resample: int = 1) -> str:
    """A table row's name: "Diffusion (ddim, 20 steps)", "Diffusion (ddpm)", "Diffusion (ddim, 20 steps,
    resample 2)"."""
    details = [sampler.value] + ([] if sampler is Sampler.DDPM else [f"{steps or FAST_STEPS} steps"])
    return f"Diffusion ({', '.join(details + ([f'resample {resample}'] if resample > 1 else []))})"


class Evaluator:
    """Collects :class:`EvalRow` s in ``rows``; every generator row draws from ``torch.Generator(seed + 1)``, so the
    same seed gives the same melodies and scores (all but the wall times)."""

    def __init__(self, pipeline: Pipeline, train: list[Melody], test: list[Melody], seed: int = 0,
                 guidance: float = DEFAULT_GUIDANCE, cadence: int = CADENCE) -> None:
        self.pipeline = pipeline
        self.guidance = guidance  # the scale of the model's guide (diffusion/guide.py) in every diffusion row
        self.cadence = cadence  # candidate endings of every generated piece (Pipeline.cadence)
        self.ground_truth = oa_statistics(train)
        self.train = train  # the classifier's "real" side for the test data's own row
        self.test = test
        self.test_pitch_classes = pitch_class_histogram(test)  # reference of the pitch-class distance
        self.test_intervals = interval_reference(test)  # ... and of the interval distance
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        self.test_latents = [pipeline.encode(m, generator) for m in test]
        self.test_tunes = torch.stack([pipeline.tune(m) for m in test]) if test else torch.zeros(0, 4, dtype=torch.long)
        self.test_flat = torch.cat(self.test_latents).numpy()
        self.rows: list[EvalRow] = []

    # ---- helpers ---------------------------------------------------------------------------------------------------
    def _score(self, task: Task, name: str, melodies: list[Melody], latents: np.ndarray | None,
               seconds: float | None, start_step: int = 0, end_step: int | None = None,
               kept: list[Melody] | None = None, groups: list[int] | None = None) -> EvalRow:
        """Score ``melodies`` on steps [start_step, end_step); ``kept`` (default: that region of each melody) are
        the melodies the descriptive statistics describe; ``groups``: see metrics.framewise.framewise_scores."""
        stats, scores = framewise_scores(melodies, self.ground_truth, start_step, end_step, seed=self.seed,
                                         groups=groups)
        kept = _crop(melodies, start_step, end_step) if kept is None else kept
        real = seconds is None
        row = EvalRow(task, name, scores=scores,
                      statistics=melody_statistics(kept, self.test_pitch_classes), num_samples=len(melodies),
                      seconds=seconds, real=real, melodies=kept,
                      structure=structure_statistics(kept, self.test_intervals, seed=self.seed),
                      classifier=phrase_classifier(self.train if real else self.test, kept, seed=self.seed))
        for name in ("pitch", "duration"):  # the raw μ_OA and σ²_OA behind C and V (ground truth: results.json)
            row.scores[f"{name}_oa_mean"] = stats[name].mean
            row.scores[f"{name}_oa_variance"] = stats[name].variance
        if latents is not None:
            flat = latents.reshape(-1, latents.shape[-1])
            row.scores["latent_fd"] = frechet_distance(self.test_flat, flat)
            row.scores["latent_mmd"] = mmd_rbf(self.test_flat, flat)
        self.rows.append(row)
        log.info("%s / %s: %s %s", task, name, row.scores, row.statistics)
        return row

    def _options(self, sampler: Sampler, steps: int | None, resample: int = 1) -> SamplingOptions:
        """The sampling options of a diffusion row, with the evaluation's guidance and cadence."""
        return SamplingOptions(sampler=sampler, steps=steps, resample=resample, guidance=self.guidance,
                               cadence=self.cadence)

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + 1)

    # ---- unconditional ---------------------------------------------------------------------------------------------
    def unconditional(self, num_samples: int, samplers: list[tuple[Sampler, int | None]],
                      mdn: TransformerMDN | None = None, length: int | None = None, form: str | None = None,
                      section_bars: int | None = None) -> None:
        """``num_samples`` sequences of ``length`` chunks (default the model's window) per row, the diffusion rows in
        ``form`` (Pipeline.form_sources: "auto", "none", "AABB", ...). The Test data row's statistics describe each
        test melody's first ``length`` chunks (its framewise scores, whole melodies)."""
        p = self.pipeline
        length = length or p.window_chunks
        chunk = p.meter.chunk_steps
        sources = p.form_sources(form, length * BARS_PER_CHUNK, section_bars, num_samples, self.seed)
        form_label = "" if sources is None else f", form {form}"
        self._score("unconditional", "Test data", self.test, None, None,
                    kept=_crop(self.test, 0, length * chunk))
        long = [m for m in self.test if len(m) >= length * chunk]
        if long and len(long) < len(self.test):  # like for like: real tunes as long as the generated ones
            self._score("unconditional", f"Test data of {length * BARS_PER_CHUNK}+ bars", long, None, None,
                        kept=_crop(long, 0, length * chunk))
        # The ceiling the VAE sets: the test melodies' own (trimmed, normalised) latents decoded back.
        t0 = time.perf_counter()
        g = self._generator()
        melodies = [p.decode(x.unsqueeze(0), SamplingOptions(), g, [int(t[0])])[0]
                    for x, t in zip(self.test_latents, self.test_tunes, strict=True)]
        self._score("unconditional", "Test data through the VAE", melodies, None, time.perf_counter() - t0,
                    kept=_crop(melodies, 0, length * chunk))
        for sampler, steps in samplers:
            t0 = time.perf_counter()
            options = self._options(sampler, steps)
            g = self._generator()
            x, melodies = p.sample_melodies(length, num_samples, options, g, sources,
                                            tunes=p.draw_tunes(num_samples, self.seed))
            self._score("unconditional", _diffusion_label(sampler, steps) + form_label, melodies, x.numpy(),
                        time.perf_counter() - t0)
        if mdn is not None:
            t0 = time.perf_counter()
            g = self._generator()
            bound = p.normalizer.bound
            x = mdn_sample(mdn, num_samples, length, g).clamp(-bound, bound)
            tunes = p.draw_tunes(num_samples, self.seed)
            melodies = p.decode(x, SamplingOptions(), g, None if tunes is None else tunes[:, 0].tolist())
            self._score("unconditional", "TransformerMDN", melodies, x.numpy(), time.perf_counter() - t0)
        t0 = time.perf_counter()
        g = self._generator()
        z = torch.randn(num_samples, length, p.normalizer.z_size, generator=g)
        melodies = p.decode_z(z)
        self._score("unconditional", "Prior (N(0,1) latents)", melodies, p.normalizer.transform(z).numpy(),
                    time.perf_counter() - t0)

    # ---- infilling -------------------------------------------------------------------------------------------------
    def test_windows(self, length: int) -> list[tuple[np.ndarray, torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Every window of ``length`` chunks of the test melodies, half a window apart (diffusion/windows.py):
        (chunks (length, 32) tokens, normalised latents (length, D), its tune's context (4,) (Pipeline.tune), where
        it lies (2,): chunks before it and the tune's length)."""
        windows = []
        for m, lat, tune in zip(self.test, self.test_latents, self.test_tunes, strict=True):
            chunks = m.padded().chunks()
            for s in sliding_starts(len(chunks), length):
                windows.append((chunks[s:s + length], lat[s:s + length], tune, torch.tensor([s, len(chunks)])))
        return windows

    def infilling(self, sampler: Sampler, steps: int | None, num_samples: int = 200, length: int | None = None,
                  resample: int = 1) -> None:
        """Windows of ``length`` chunks (half a window apart) from the test melodies, at most ``num_samples`` of them;
        keep the first and last quarter, regenerate the middle half (the paper: keep latents 0-7 and 24-31 of 32).
        When there are fewer windows than ``num_samples``, the random rows infill each window several times
        (ceil(num_samples / windows)) and their bootstrap errors resample whole windows (metrics/framewise.py)."""
        p = self.pipeline
        length = length or p.window_chunks
        q = length // 4
        windows = self.test_windows(length)[:num_samples]
        if not windows:
            log.warning("no test melody has %d chunks: infilling not evaluated", length)
            return
        real = [Melody.from_chunks(w[0], self.pipeline.meter) for w in windows]
        known = torch.stack([w[1] for w in windows])
        tunes, where = torch.stack([w[2] for w in windows]), torch.stack([w[3] for w in windows])
        repeats = -(-num_samples // len(windows))
        groups = torch.arange(len(windows)).repeat_interleave(repeats).tolist()
        known_repeated = known.repeat_interleave(repeats, 0)
        mask = torch.ones(length)
        mask[q:length - q] = 0
        region = (q * self.pipeline.meter.chunk_steps, (length - q) * self.pipeline.meter.chunk_steps)
        self._score("infilling", "Test data", real, None, None, *region)
        t0 = time.perf_counter()
        options = self._options(sampler, steps, resample).for_given_music()  # as Pipeline.infill
        g = self._generator()
        tunes_repeated = tunes.repeat_interleave(repeats, 0)
        x = p.sample_latents(length, len(known_repeated), options, g, known=known_repeated, mask=mask,
                             tunes=tunes_repeated, where=where.repeat_interleave(repeats, 0))
        melodies = p.decode(x, options, g, tunes_repeated[:, 0].tolist())
        self._score("infilling", _diffusion_label(sampler, options.steps, resample), melodies,
                    x[:, q:length - q].numpy(), time.perf_counter() - t0, *region, groups=groups)
        # Interpolation baseline (deterministic, once per window): slerp between the full-z latents either side of
        # the gap.
        t0 = time.perf_counter()
        g = self._generator()
        z = p.normalizer.inverse(known, g)
        gap = length - 2 * q
        middle = torch.stack([slerp(z[:, q - 1], z[:, length - q], (i + 1) / (gap + 1)) for i in range(gap)], 1)
        z_interp = torch.cat([z[:, :q], middle, z[:, length - q:]], 1)
        melodies = p.to_key(p.decode_z(z_interp), tunes[:, 0].tolist())
        self._score("infilling", "Interpolation (slerp)", melodies, p.normalizer.transform(middle).numpy(),
                    time.perf_counter() - t0, *region)
        t0 = time.perf_counter()
        z_prior = z.repeat_interleave(repeats, 0)
        z_prior[:, q:length - q] = torch.randn(z_prior[:, q:length - q].shape, generator=g)
        melodies = p.to_key(p.decode_z(z_prior), tunes.repeat_interleave(repeats, 0)[:, 0].tolist())
        self._score("infilling", "Prior (N(0,1) latents)", melodies,
                    p.normalizer.transform(z_prior[:, q:length - q]).numpy(), time.perf_counter() - t0, *region,
                    groups=groups)


    # ---- controls --------------------------------------------------------------------------------------------------
    def controls(self, num_samples: int, sampler: Sampler, steps: int | None, train_styles: Sequence[str],
                 test_styles: Sequence[str], length: int | None = None) -> None:
        """One row per control (music/controls.py) of ``num_samples`` pieces of ``length`` chunks, spread over the
        values asked for (CONTROL_KEYS, CONTROL_RANGES, CONTROL_DENSITIES, every style of the model), scored like
        the unconditional rows and for obedience (metrics/controls.py) in ``scores["obeyed"]``. ``train_styles`` /
        ``test_styles``: the collection of each training / test melody (the style classifier's data)."""
        p = self.pipeline
        length = length or p.window_chunks
        options = self._options(sampler, steps)
        bars = length * BARS_PER_CHUNK
        missing = [name for name in ("density", "style") if name not in p.controls]
        if missing:
            log.warning("the model takes no %s control: not evaluated", " or ".join(missing))

        def run(name: str, settings: list[Controls]) -> tuple[list[Melody], list[Controls], EvalRow]:
            per = max(num_samples // len(settings), 1)
            t0 = time.perf_counter()
            melodies, asked = [], []
            for i, controls in enumerate(settings):
                melodies += p.generate(bars, per, self.seed + i, options, controls=controls)
                asked += [controls] * per
            row = self._score("controls", name, melodies, None, time.perf_counter() - t0)
            return melodies, asked, row

        melodies, asked, row = run(f"key ({len(CONTROL_KEYS)} keys)", [Controls.parse(key=k) for k in CONTROL_KEYS])
        row.scores["obeyed"] = key_accuracy(melodies, [c.key for c in asked])
        row.scores["tonic_obeyed"] = key_accuracy(melodies, [c.key for c in asked], tonic_only=True)
        if "density" in p.controls:
            melodies, asked, row = run("density " + " / ".join(f"{d:g}" for d in CONTROL_DENSITIES),
                                       [Controls(density=d) for d in CONTROL_DENSITIES])
            row.scores["obeyed"], row.scores["density_error"] = density_obeyed(melodies, [c.density for c in asked])
        if "style" in p.controls:
            styles = list(p.styles)
            index = {s: i for i, s in enumerate(styles)}
            classifier = StyleClassifier(self.train, [index.get(s, -1) for s in train_styles], len(styles),
                                         seed=self.seed)
            melodies, asked, row = run(f"style ({len(styles)} collections)", [Controls(style=s) for s in styles])
            row.scores["obeyed"] = classifier.accuracy(melodies, [index[c.style] for c in asked])
            row.scores["chance"] = 1 / len(classifier.present)
            row.scores["reference"] = classifier.accuracy(self.test, [index.get(s, -1) for s in test_styles])
        for text in CONTROL_RANGES:
            melodies, asked, row = run(f"range {text}", [Controls.parse(pitch_range=text)])
            row.scores["obeyed"] = range_share(melodies, *asked[0].pitch_range)


# ---- reports -------------------------------------------------------------------------------------------------------
def _seconds(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _score_cell(scores: dict[str, float], column: str) -> str:
    """"0.932 ± 0.006" (bootstrap standard error, when known), "1.480" or "—"."""
    if column not in scores:
        return "—"
    se = scores.get(f"{column}_se")
    return f"{scores[column]:.3f}" + ("" if se is None else f" ± {se:.3f}")


def markdown_table(rows: list[EvalRow], task: Task) -> str:
    """The paper's metrics of ``task``'s rows (framewise scores ± their bootstrap standard error over melodies), with
    the number of samples and the wall time (total and per sample)."""
    cols = [*COLUMNS, "latent_fd", "latent_mmd"]
    head = ["row", *[c.replace("_", " ") for c in cols], "samples", "seconds", "s / sample"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.task == task:
            cells = [_score_cell(r.scores, c) for c in cols]
            lines.append("| " + " | ".join([r.name, *cells, str(r.num_samples), _seconds(r.seconds, "{:.1f}"),
                                            _seconds(r.seconds_per_sample, "{:.3g}")]) + " |")
    return "\n".join(lines)


def statistics_table(rows: list[EvalRow], task: Task) -> str:
    """The descriptive statistics (metrics/stats.py DESCRIPTIVE) of ``task``'s rows."""
    head = ["row", *(STATISTICS_HEADINGS[s][0] for s in DESCRIPTIVE)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if r.task == task:
            cells = ["—" if math.isnan(r.statistics[s]) else STATISTICS_HEADINGS[s][1].format(r.statistics[s])
                     for s in DESCRIPTIVE]
            lines.append("| " + " | ".join([r.name, *cells]) + " |")
    return "\n".join(lines)


STRUCTURE_NOTE = ("Classifier: held-out accuracy and AUC of a logistic regression telling the row's 8-bar phrases "
                  "from the test melodies' (for real rows: from the training melodies'); 0.5 = cannot tell them "
                  "apart. Structure statistics (metrics/structure.py) ± bootstrap standard error; in brackets the "
                  "gap to the first real row (all test melodies, those shorter than the sequences whole). A row "
                  "of the test melodies at least as long as the sequences, cut to their length, compares like "
                  "with like. Onsets: the share of note onsets on the downbeat, the meter's other beats, the other "
                  "eighths and the sixteenths (metrics/structure.py beat_profile).")
STRUCTURE_HEADINGS = {
    "repeated_2bar": ("2-bar repeats", "{:.3f}"), "repeated_4bar": ("4-bar repeats", "{:.3f}"),
    "repeated_8bar": ("8-bar repeats", "{:.3f}"), "key_stability": ("8-bar segments in key", "{:.3f}"),
    "pitch_range": ("pitch range", "{:.1f}"), "rest_fraction": ("rests", "{:.3f}"),
    "notes_per_bar": ("notes / bar", "{:.2f}"), "interval_distance": ("interval distance to test", "{:.3f}"),
    "tonic_ending": ("ends on the tonic", "{:.3f}"),
    "onsets_downbeat": ("onsets on downbeats", "{:.3f}"), "onsets_beat": ("onsets on other beats", "{:.3f}"),
    "onsets_offbeat": ("onsets on off-beat eighths", "{:.3f}"), "onsets_sixteenth": ("onsets on sixteenths", "{:.3f}"),
}


def structure_table(rows: list[EvalRow], task: Task) -> str:
    """The phrase classifier and the structure statistics of ``task``'s rows, each ± its standard error, with the
    gap to the real row of the task (relative, in per cent) below every generated value."""
    head = ["row", "classifier accuracy", "classifier AUC", *(STRUCTURE_HEADINGS[s][0] for s in STRUCTURE)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    real = next((r for r in rows if r.task == task and r.real), None)
    for r in rows:
        if r.task != task:
            continue
        c = r.classifier
        cells = [_score_cell(c, "accuracy") if c and not math.isnan(c["accuracy"]) else "—",
                 _score_cell(c, "auc") if c and not math.isnan(c["auc"]) else "—"]
        for name in STRUCTURE:
            value, se = r.structure.get(name, (math.nan, math.nan))
            fmt = STRUCTURE_HEADINGS[name][1]
            cell = "—" if math.isnan(value) else fmt.format(value) + ("" if math.isnan(se) else " ± " + fmt.format(se))
            reference = real.structure.get(name, (math.nan,))[0] if real is not None and r is not real else math.nan
            if not math.isnan(value) and not math.isnan(reference) and reference:
                cell += f" ({100 * (value - reference) / abs(reference):+.0f} %)"
            cells.append(cell)
        lines.append("| " + " | ".join([r.name, *cells]) + " |")
    return "\n".join(lines)


CONTROLS_NOTE = ("Obeyed (metrics/controls.py): key — share of pieces whose Krumhansl-Kessler key is the one asked "
                 "for (and whose tonic is); density — share within ±20 % of the note onsets per bar asked for (and "
                 "the mean relative error); style — share of 8-bar phrases a nearest-collection classifier fitted "
                 "on the training tunes assigns to the style asked for (chance, and its accuracy on the real test "
                 "tunes); range — share of notes inside. The framewise scores are against the training melodies, "
                 "as unconditional.")


def controls_table(rows: list[EvalRow]) -> str:
    """How often each control row was obeyed, with its reference and time per sample."""
    lines = ["| control | obeyed | reference | pitch C / V | duration C / V | s / sample |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r.task != "controls":
            continue
        s = r.scores
        reference = (f"chance {s['chance']:.2f}, test tunes {s['reference']:.2f}" if "chance" in s else
                     f"mean error {s['density_error']:.2f}" if "density_error" in s else
                     f"tonic {s['tonic_obeyed']:.3f}" if "tonic_obeyed" in s else "—")
        lines.append(f"| {r.name} | {s.get('obeyed', math.nan):.3f} | {reference} | "
                     f"{s['pitch_consistency']:.3f} / {s['pitch_variance']:.3f} | "
                     f"{s['duration_consistency']:.3f} / {s['duration_variance']:.3f} | "
                     f"{_seconds(r.seconds_per_sample, '{:.3g}')} |")
    return "\n".join(lines)


def results_markdown(rows: list[EvalRow], window_bars: int) -> str:
    text = ["Framewise scores: value ± bootstrap standard error (melodies resampled; the infillings of one test "
            "window together, metrics/framewise.py); rows closer than about two errors are not distinguishable with "
            "these sample sizes.\n"]
    for task, heading in (("unconditional", f"Unconditional ({window_bars}-bar sequences)"),
                          ("infilling", "Infilling (middle half of test windows regenerated)"),
                          ("controls", "Controls (key, density, style, range asked for)")):
        if task == "controls" and any(r.task == task for r in rows):
            text.append(f"## {heading}\n\n{CONTROLS_NOTE}\n\n{controls_table(rows)}\n\n"
                        f"{markdown_table(rows, task)}\n\n### Tune structure\n\n{structure_table(rows, task)}\n")
        elif any(r.task == task for r in rows):
            text.append(f"## {heading}\n\n{markdown_table(rows, task)}\n\n"
                        f"### Tune structure\n\n{STRUCTURE_NOTE}\n\n{structure_table(rows, task)}\n\n"
                        f"### Descriptive statistics\n\n{statistics_table(rows, task)}\n")
    return "\n".join(text)


def draw_statistics(rows: list[EvalRow], reference_pitch_classes: np.ndarray, png_path: str | Path) -> None:
    """Histograms (densities) of each melody's descriptive statistics: one grid row per generator row, real
    melodies of the same task (grey) against the generated ones, one column per statistic."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    real: dict[str, dict[str, np.ndarray]] = {}
    for r in rows:  # the first real row of each task: all its test melodies
        if r.real and r.task not in real:
            real[r.task] = per_melody_statistics(r.melodies, reference_pitch_classes)
    generated = [r for r in rows if not r.real]
    fig = Figure(figsize=(2.6 * len(DESCRIPTIVE), 0.6 + 2.0 * len(generated)), dpi=72)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(generated), len(DESCRIPTIVE), squeeze=False)
    for r, ax_row in zip(generated, axes):
        values = per_melody_statistics(r.melodies, reference_pitch_classes)
        for name, ax in zip(DESCRIPTIVE, ax_row):
            gen = values[name][np.isfinite(values[name])]
            ref = real[r.task][name] if r.task in real else np.zeros(0)
            ref = ref[np.isfinite(ref)]
            bins = np.histogram_bin_edges(np.concatenate([ref, gen]), bins=20)
            if ref.size:
                ax.stairs(np.histogram(ref, bins, density=True)[0], bins, fill=True, color="gray", alpha=0.5,
                          label="real")
            if gen.size:
                ax.stairs(np.histogram(gen, bins, density=True)[0], bins, lw=1.5, color="tab:blue", label="generated")
            ax.tick_params(labelsize="x-small")
            ax.set_yticks([])
        ax_row[0].set_ylabel(f"{r.task}:\n{r.name}", fontsize="small")
    for name, ax in zip(DESCRIPTIVE, axes[0]):
        ax.set_title(STATISTICS_HEADINGS[name][0], fontsize="small")
    axes[0][0].legend(fontsize="x-small")
    fig.tight_layout()
    atomic_save_png(fig, png_path)


def draw_self_similarity(rows: list[EvalRow], png_path: str | Path, per_row: int = PIANO_ROLLS_PER_ROW) -> None:
    """Bar-by-bar self-similarity matrices (metrics.structure.self_similarity: bright = equal bars) of the first
    melodies of each unconditional row, real test melodies first: repeated sections show as bright off-diagonals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [r for r in rows if r.task == "unconditional" and r.melodies]
    fig = Figure(figsize=(2.2 * per_row, 0.4 + 2.3 * len(shown)), dpi=72)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(shown), per_row, squeeze=False)
    for r, ax_row in zip(shown, axes):
        for melody, ax in zip(r.melodies[:per_row], ax_row):
            ax.imshow(self_similarity(melody), cmap="magma", vmin=0, vmax=1, interpolation="nearest")
        for ax in ax_row:
            ax.set_xticks([])
            ax.set_yticks([])
        ax_row[0].set_ylabel(r.name, fontsize="small")
    fig.suptitle("bar-by-bar self-similarity: real test melodies vs generated", fontsize="small")
    fig.tight_layout()
    atomic_save_png(fig, png_path)


def write_results(evaluator: Evaluator, out: str | Path, settings: dict | None = None) -> list[Path]:
    """Write into folder ``out`` (created): ``results.json`` ({"settings": {"window_bars", **settings},
    "ground_truth": {"pitch"|"duration": {"oa_mean", "oa_variance"}} (the training split's), "rows":
    [EvalRow.to_json()]}), ``results.md`` (the tables), ``pianorolls.png`` (the first melodies of each
    unconditional row: real test melodies, then each generator), ``structure.png`` (:func:`draw_self_similarity`)
    and ``statistics.png`` (:func:`draw_statistics`);
    a plot without rows to show is skipped. Every file is written atomically. Returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = evaluator.rows
    window_bars = evaluator.pipeline.window_chunks * BARS_PER_CHUNK
    paths = [out / "results.json", out / "results.md"]
    ground_truth = {name: {"oa_mean": s.mean, "oa_variance": s.variance} for name, s in evaluator.ground_truth.items()}
    atomic_write_text(paths[0], json.dumps({"settings": {"window_bars": window_bars, **(settings or {})},
                                            "ground_truth": ground_truth,
                                            "rows": [r.to_json() for r in rows]}, indent=2) + "\n")
    atomic_write_text(paths[1], results_markdown(rows, window_bars))
    sheet = [(r.name, r.melodies[:PIANO_ROLLS_PER_ROW]) for r in rows if r.task == "unconditional" and r.melodies]
    if sheet:
        paths.append(out / "pianorolls.png")
        draw_piano_roll_sheet(sheet, paths[-1], title="unconditional: real test melodies vs generated")
        paths.append(out / "structure.png")
        draw_self_similarity(rows, paths[-1])
    if any(not r.real for r in rows):
        paths.append(out / "statistics.png")
        draw_statistics(rows, evaluator.test_pitch_classes, paths[-1])
    return paths
