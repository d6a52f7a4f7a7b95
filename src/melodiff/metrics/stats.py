"""Simple descriptive statistics of a set of melodies (sanity checks next to the docs/PAPER.md §7 metrics).

Counts and fractions pool the melodies: totals over the set divided by totals over the set (so long melodies weigh
more). Exceptions, averaged over the melodies that have notes (each melody has its own key and range):
``pitch_range`` and ``scale_consistency``.

Notes are counted by onset: a note is one pitch, whatever its duration. Steps are 16th notes; bars and 2-bar chunks
are those of each melody's own meter (``melody.steps_per_bar``: 16 steps in 4/4, 12 in 3/4 and 6/8;
``melody.chunk_steps``: 32 or 24), so a set may mix meters.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from melodiff.metrics.structure import repeated_cells
from melodiff.music.melody import BARS_PER_CHUNK, NO_EVENT, Melody

MAJOR_SCALE = np.array([0, 2, 4, 5, 7, 9, 11])  # pitch classes of C major (= A natural minor)
# The statistics `melodiff evaluate` tabulates and plots, in that order (see melody_statistics for their meaning).
DESCRIPTIVE = ("notes_per_bar", "pitch_range", "pitch_class_distance", "scale_consistency", "rest_fraction",
               "repeated_2bar_fraction")


@dataclass(frozen=True)
class _Summary:
    """What the statistics need of one melody."""

    num_steps: int
    num_bars: float  # num_steps / steps_per_bar of the melody's meter
    num_no_event: int
    pitches: np.ndarray  # (notes,) MIDI pitch of each note
    durations: np.ndarray  # (notes,) steps
    pitch_classes: np.ndarray  # (12,) note counts per pitch class, C = 0
    chunks: int  # whole 2-bar chunks with at least one note onset
    repeated_chunks: int  # ... of which repeat an earlier chunk of the melody exactly


def _summarise(melody: Melody) -> _Summary:
    notes = melody.to_notes()
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    num_chunks, repeated = repeated_cells(melody, BARS_PER_CHUNK)
    return _Summary(len(melody), melody.num_bars, int((melody.ids == NO_EVENT).sum()), pitches,
                    np.array([n.end - n.start for n in notes], dtype=np.int64),
                    np.bincount(pitches % 12, minlength=12), num_chunks, repeated)


def pitch_class_histogram(melodies: Iterable[Melody]) -> np.ndarray:
    """(12,) float64: the fraction of all notes of ``melodies`` on each pitch class (C = 0, C♯ = 1, …); all zeros
    if there are no notes."""
    counts = sum((_summarise(m).pitch_classes for m in melodies), np.zeros(12, dtype=np.int64))
    return counts / counts.sum() if counts.sum() else counts.astype(np.float64)


def histogram_distance(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance ½ Σ |p − q| ∈ [0, 1] of two normalised histograms (NaN if either is empty): the
    fraction of notes that would have to change pitch class to turn one distribution into the other."""
    if not p.sum() or not q.sum():
        return float("nan")
    return float(0.5 * np.abs(p / p.sum() - q / q.sum()).sum())


def scale_consistency(pitch_class_counts: np.ndarray) -> float:
    """max over the 12 major scales (which include the natural minor ones) of the fraction of notes in the scale,
    given (12,) note counts per pitch class; NaN without notes. 1 = every note fits one scale; pitch classes drawn
    uniformly at random give about 7/12 ≈ 0.58 for long melodies."""
    total = pitch_class_counts.sum()
    if not total:
        return float("nan")
    return max(float(pitch_class_counts[(MAJOR_SCALE + root) % 12].sum()) for root in range(12)) / float(total)


def melody_statistics(melodies: Iterable[Melody], reference_pitch_classes: np.ndarray | None = None
                      ) -> dict[str, float]:
    """Statistics of ``melodies``:

    - ``num_melodies``, ``num_notes``: counts.
    - ``notes_per_bar``: note onsets per bar (all notes / all bars, each melody's bars of its meter).
    - ``pitch_mean``, ``pitch_std`` (population), MIDI pitch over all notes; ``pitch_min``, ``pitch_max``.
    - ``pitch_range``: mean over melodies with notes of max − min pitch, in semitones.
    - ``pitch_class_distance``: :func:`histogram_distance` between the pitch-class histogram of all notes and
      ``reference_pitch_classes`` (e.g. :func:`pitch_class_histogram` of the test data); NaN without a reference.
    - ``scale_consistency``: mean over melodies with notes of :func:`scale_consistency` (each melody's best key).
    - ``mean_duration``: mean note duration in steps.
    - ``rest_fraction``: fraction of steps during which no note sounds.
    - ``held_fraction``: fraction of steps on which a note is sustained past its onset step
      (rest_fraction + held_fraction + onset steps / all steps = 1).
    - ``no_event_fraction``: fraction of steps whose event id is NO_EVENT (held note or continued rest).
    - ``repeated_2bar_fraction``: of all whole 2-bar chunks with a note onset (chunks of the melody's meter start at
      step 0, ``chunk_steps``, …: 0, 32, … in 4/4, 0, 24, … in 3/4 and 6/8; a trailing partial chunk is ignored),
      the fraction whose events equal those of an earlier chunk of the same melody (exact repeats: same pitches,
      same rhythm).

    Statistics without data (no notes, no steps, no chunks with notes) are NaN.
    """
    summaries = [_summarise(m) for m in melodies]
    nan = float("nan")
    num_steps = sum(s.num_steps for s in summaries)
    num_bars = sum(s.num_bars for s in summaries)
    pitch_arr = np.concatenate([s.pitches for s in summaries]) if summaries else np.zeros(0)
    sounding = float(sum(int(s.durations.sum()) for s in summaries))
    num_notes = pitch_arr.size
    with_notes = [s for s in summaries if s.pitches.size]
    chunks = sum(s.chunks for s in summaries)
    pitch_classes = sum((s.pitch_classes for s in summaries), np.zeros(12, dtype=np.int64))

    def per_step(value: float) -> float:
        return value / num_steps if num_steps else nan

    has_notes = bool(num_notes)
    return {
        "num_melodies": float(len(summaries)),
        "num_notes": float(num_notes),
        "notes_per_bar": num_notes / num_bars if num_steps else nan,
        "pitch_mean": float(pitch_arr.mean()) if has_notes else nan,
        "pitch_std": float(pitch_arr.std()) if has_notes else nan,
        "pitch_min": float(pitch_arr.min()) if has_notes else nan,
        "pitch_max": float(pitch_arr.max()) if has_notes else nan,
        "pitch_range": float(np.mean([s.pitches.max() - s.pitches.min() for s in with_notes])) if has_notes else nan,
        "pitch_class_distance": (histogram_distance(pitch_classes.astype(np.float64), reference_pitch_classes)
                                 if reference_pitch_classes is not None else nan),
        "scale_consistency": float(np.mean([scale_consistency(s.pitch_classes) for s in with_notes]))
        if has_notes else nan,
        "mean_duration": sounding / num_notes if has_notes else nan,
        "rest_fraction": per_step(num_steps - sounding),
        "held_fraction": per_step(sounding - num_notes),
        "no_event_fraction": per_step(sum(s.num_no_event for s in summaries)),
        "repeated_2bar_fraction": sum(s.repeated_chunks for s in summaries) / chunks if chunks else nan,
    }


def per_melody_statistics(melodies: Sequence[Melody], reference_pitch_classes: np.ndarray | None = None
                          ) -> dict[str, np.ndarray]:
    """The :data:`DESCRIPTIVE` statistics of each melody alone: name -> float64 array (melodies,), NaN where a
    melody has no data for it (see :func:`melody_statistics`; ``pitch_class_distance`` compares the melody's own
    pitch-class histogram with the reference). For histograms of real versus generated melodies."""
    each = [melody_statistics([m], reference_pitch_classes) for m in melodies]
    return {name: np.array([s[name] for s in each], dtype=np.float64) for name in DESCRIPTIVE}
