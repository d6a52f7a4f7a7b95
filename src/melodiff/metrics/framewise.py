"""Framewise self-similarity: overlapping area (OA) of adjacent frames, Consistency and Variance (docs/PAPER.md §7).

After Yang & Lerch (2020) as used by Mittal et al. (2021). The authors did not publish this code; these are our exact
choices:

- **Frames.** A window of ``FRAME_BARS`` = 4 bars slides with a hop of ``HOP_BARS`` = 2 bars over the evaluated region
  ``[start_step, end_step)`` of each melody, in bars of the melody's own meter (:func:`frame_steps`): frames of 64
  steps and a 32-step hop in 4/4 (16 steps a bar), 48 and 24 steps in 3/4 and 6/8 (12 steps a bar). Frames start at
  ``start_step`` (callers pass a bar line) and only *whole* frames are used: the frame starting at ``s`` exists iff
  ``s + frame <= end_step``; trailing steps that do not fill a frame are ignored. A region shorter than a frame has
  no frames. A set may mix meters: each melody's pairs are pooled as they are.
- **Note-to-frame assignment by onset.** A note belongs to every frame whose step range contains its onset
  (``Note.start``), so with a 2-bar hop each note lies in up to two frames. Notes starting before ``start_step`` are
  ignored even if they sound inside the region.
- **Units.** Pitch is the MIDI pitch in semitones; duration is ``end - start`` in steps (16th notes) — the note's
  whole duration as decoded, even where it sounds beyond its frame or the region.
- **Per-frame Gaussians.** Mean and *population* standard deviation (``ddof=0``) of the frame's pitches and,
  separately, of its durations.
- **Degenerate frames.** A standard deviation below ``SD_FLOOR`` = 1e-3 (a frame with one note, or with all notes of
  equal pitch / duration) is raised to ``SD_FLOOR``. Pitches and durations are integers, so any frame of at most
  64 notes that is not constant has a standard deviation above 0.12 (√63/64) and is never touched by the floor. Two
  constant frames with the same value then have OA = 1 and with different values OA ≈ 0 (they differ by ≥ 1 unit,
  i.e. ≥ 1000 floored standard deviations); a constant frame against a spread one has OA ≈ 0.
- **Empty frames.** A frame without any note onset has no Gaussian: every adjacent pair that involves it is skipped
  (for pitch and duration alike, so both attributes always have the same number of OA values).
- **OA** of two normals is computed in closed form from the (up to two) intersection points of the densities
  (Inman & Bradley 1989), see :func:`overlapping_area`.
- **Pooling.** All adjacent-frame OA values of all melodies are pooled into one sample; μ_OA and σ²_OA are its mean and
  population variance (``ddof=0``). (Plasser et al.'s later code instead takes the variance over per-melody mean OAs;
  we follow docs/PAPER.md §7, "over all pairs".)
- **Consistency / Variance** (docs/PAPER.md §7): C = max(0, 1 − |μ_OA − μ_GT| / μ_GT) and
  V = max(0, 1 − |σ²_OA − σ²_GT| / σ²_GT). Where the ground-truth value is 0 the relative error is undefined; we
  score 1 if the generated value is also exactly 0 and 0 otherwise.
- **Uncertainty** (beyond the paper): :func:`bootstrap_standard_errors` resamples the *melodies* (not the pairs, which
  are correlated within a melody) with replacement and reports the standard deviation of each score over the
  resamples, with the ground truth held fixed. Melodies that are not independent (several infillings of the same
  test window) are resampled together as one group. Two rows whose scores differ by less than about two such errors
  are not distinguishable with this many samples.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import erfc, ndtr

from melodiff.music.melody import Melody

FRAME_BARS = 4
HOP_BARS = 2
SD_FLOOR = 1e-3
ATTRIBUTES = ("pitch", "duration")

_SQRT2 = math.sqrt(2.0)


# ---- overlapping area of two normal densities ------------------------------------------------------------------------
def overlapping_areas(mu1: np.ndarray, sd1: np.ndarray, mu2: np.ndarray, sd2: np.ndarray) -> np.ndarray:
    """Vectorised :func:`overlapping_area`: broadcastable float arrays in, float64 array of OA ∈ [0, 1] out."""
    mu1, sd1, mu2, sd2 = np.broadcast_arrays(*(np.asarray(a, dtype=np.float64) for a in (mu1, sd1, mu2, sd2)))
    sd1 = np.maximum(sd1, SD_FLOOR)
    sd2 = np.maximum(sd2, SD_FLOOR)
    # Order each pair so that `a` is the narrower density; centre on its mean (OA is shift invariant).
    swap = sd1 > sd2
    s_a, s_b = np.where(swap, sd2, sd1), np.where(swap, sd1, sd2)
    d = np.where(swap, mu1 - mu2, mu2 - mu1)  # mean of `b` minus mean of `a`

    # Equal widths: one intersection at the midpoint, OA = 2 Φ(−|d| / 2s) = erfc(|d| / (2√2 s)).
    equal = (s_b - s_a) <= 1e-12 * s_b
    s_mean = 0.5 * (s_a + s_b)
    oa_equal = erfc(np.abs(d) / (2.0 * _SQRT2 * s_mean))

    # Unequal widths: N(x; 0, s_a) = N(x; d, s_b) ⇔ A x² + B x + C = 0 with
    #   A = s_b² − s_a² > 0,  B = 2 s_a² d,  C = −s_a² (d² + 2 s_b² ln(s_b / s_a)) < 0,
    # so there are two real roots of opposite sign. Solved in the cancellation-free form x = q / A, x = C / q.
    with np.errstate(divide="ignore", invalid="ignore"):
        a_coef = (s_b - s_a) * (s_b + s_a)
        b_coef = 2.0 * s_a**2 * d
        c_coef = -(s_a**2) * (d**2 + 2.0 * s_b**2 * (np.log(s_b) - np.log(s_a)))
        disc = np.maximum(b_coef**2 - 4.0 * a_coef * c_coef, 0.0)
        q = -0.5 * (b_coef + np.where(b_coef >= 0, 1.0, -1.0) * np.sqrt(disc))
        r1, r2 = q / a_coef, c_coef / q
        lo, hi = np.minimum(r1, r2), np.maximum(r1, r2)
        # The narrow density is the smaller one in both tails, the wide one between the intersections.
        oa_unequal = ndtr(lo / s_a) + (ndtr((hi - d) / s_b) - ndtr((lo - d) / s_b)) + ndtr(-hi / s_a)
    oa = np.where(equal, oa_equal, oa_unequal)
    return np.clip(oa, 0.0, 1.0)


def overlapping_area(mu1: float, sd1: float, mu2: float, sd2: float) -> float:
    """Overlapping area ∫ min(N(x; mu1, sd1²), N(x; mu2, sd2²)) dx of two normal densities, in closed form.

    Symmetric in its two Gaussians, 1 for identical ones, in [0, 1], decreasing in |mu1 − mu2|. Standard deviations
    below ``SD_FLOOR`` (including 0) are raised to ``SD_FLOOR`` (see the module docstring). Units are whatever the
    means and standard deviations share (semitones, steps).
    """
    return float(overlapping_areas(mu1, sd1, mu2, sd2))


# ---- frames --------------------------------------------------------------------------------------------------------
def frame_steps(melody: Melody) -> tuple[int, int]:
    """(frame length, hop) in steps for ``melody``: FRAME_BARS and HOP_BARS bars of its meter — (64, 32) in 4/4,
    (48, 24) in 3/4 and 6/8."""
    return FRAME_BARS * melody.steps_per_bar, HOP_BARS * melody.steps_per_bar


def frame_gaussians(melody: Melody, start_step: int = 0, end_step: int | None = None) -> np.ndarray:
    """Per-frame Gaussians of one melody over the region ``[start_step, end_step)`` (steps; ``end_step`` defaults to
    and is clipped at ``len(melody)``).

    Returns float64 (num_frames, 4): columns pitch mean, pitch sd (semitones), duration mean, duration sd (steps), with
    unfloored population sds; rows of empty frames are NaN.
    """
    end = len(melody) if end_step is None else min(end_step, len(melody))
    if start_step < 0:
        raise ValueError(f"start_step must be >= 0, got {start_step}")
    frame, hop = frame_steps(melody)
    frame_starts = np.arange(start_step, end - frame + 1, hop)
    out = np.full((frame_starts.size, 4), np.nan)
    if frame_starts.size == 0:
        return out
    notes = melody.to_notes()
    onsets = np.array([n.start for n in notes], dtype=np.int64)
    pitches = np.array([n.pitch for n in notes], dtype=np.float64)
    durations = np.array([n.end - n.start for n in notes], dtype=np.float64)
    for i, frame_start in enumerate(frame_starts.tolist()):
        in_frame = (onsets >= frame_start) & (onsets < frame_start + frame)
        if in_frame.any():
            p, dur = pitches[in_frame], durations[in_frame]
            out[i] = (p.mean(), p.std(), dur.mean(), dur.std())
    return out


def frame_overlaps_by_melody(
    melodies: Iterable[Melody], start_step: int = 0, end_step: int | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`frame_overlaps` and, beside it, how many of the pooled pairs each melody contributed (int64, one entry
    per melody, in order; 0 for a melody without a pair of non-empty frames)."""
    pairs, counts = [], []
    for melody in melodies:
        g = frame_gaussians(melody, start_step, end_step)
        both = ~np.isnan(g[:-1, 0]) & ~np.isnan(g[1:, 0]) if len(g) >= 2 else np.zeros(0, dtype=bool)
        pairs.append(np.concatenate([g[:-1][both], g[1:][both]], axis=1) if both.any() else np.empty((0, 8)))
        counts.append(int(both.sum()))
    stacked = np.concatenate(pairs) if pairs else np.empty((0, 8))
    prev, nxt = stacked[:, :4], stacked[:, 4:]
    overlaps = {
        "pitch": overlapping_areas(prev[:, 0], prev[:, 1], nxt[:, 0], nxt[:, 1]),
        "duration": overlapping_areas(prev[:, 2], prev[:, 3], nxt[:, 2], nxt[:, 3]),
    }
    return overlaps, np.asarray(counts, dtype=np.int64)


def frame_overlaps(
    melodies: Iterable[Melody], start_step: int = 0, end_step: int | None = None
) -> dict[str, np.ndarray]:
    """OA of every adjacent frame pair (frames i, i+1 of the same melody), pooled over ``melodies``.

    Returns {"pitch": (P,), "duration": (P,)} float64 arrays in [0, 1], P = number of pairs in which both frames hold
    at least one note onset. ``start_step`` / ``end_step`` restrict every melody to that step region (e.g. the infilled
    region); see the module docstring for all conventions.
    """
    return frame_overlaps_by_melody(melodies, start_step, end_step)[0]


# ---- statistics and scores -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OAStats:
    """Mean μ_OA and population variance σ²_OA of a pooled sample of adjacent-frame OA values."""

    mean: float
    variance: float


def _pooled_statistics(overlaps: dict[str, np.ndarray]) -> dict[str, OAStats]:
    if overlaps["pitch"].size == 0:
        raise ValueError("no adjacent pair of non-empty 4-bar frames: melodies/region too short or silent")
    return {name: OAStats(float(v.mean()), float(v.var())) for name, v in overlaps.items()}


def oa_statistics(
    melodies: Iterable[Melody], start_step: int = 0, end_step: int | None = None
) -> dict[str, OAStats]:
    """{"pitch": OAStats, "duration": OAStats} over all adjacent frame pairs of ``melodies`` (see
    :func:`frame_overlaps`). Raises ValueError when no pair of non-empty frames exists."""
    return _pooled_statistics(frame_overlaps(melodies, start_step, end_step))


def bootstrap_standard_errors(
    melodies: Iterable[Melody], ground_truth: dict[str, OAStats], start_step: int = 0, end_step: int | None = None,
    num_resamples: int = 500, seed: int = 0,
) -> dict[str, float]:
    """Bootstrap standard error of each :func:`consistency_variance` score: ``num_resamples`` resamples of the
    melodies with replacement (seeded), each scored against the fixed ``ground_truth``; returns
    {"pitch_consistency_se", ...}. Melodies without a pair of non-empty frames count (and weigh nothing)."""
    overlaps, counts = frame_overlaps_by_melody(melodies, start_step, end_step)
    return _bootstrap(overlaps, counts, ground_truth, num_resamples, seed)


def framewise_scores(
    melodies: Iterable[Melody], ground_truth: dict[str, OAStats], start_step: int = 0, end_step: int | None = None,
    num_resamples: int = 500, seed: int = 0, groups: Sequence[int] | None = None,
) -> tuple[dict[str, OAStats], dict[str, float]]:
    """:func:`oa_statistics` and :func:`consistency_variance` with :func:`bootstrap_standard_errors` (keys
    "…_se"), from one pass over the melodies' frames. Returns (statistics, scores).

    ``groups`` (one int per melody): melodies that are not independent, e.g. several infillings of one test
    window, share a group and the bootstrap resamples whole groups (default: every melody its own group)."""
    overlaps, counts = frame_overlaps_by_melody(melodies, start_step, end_step)
    stats = _pooled_statistics(overlaps)
    scores = consistency_variance(stats, ground_truth)
    scores.update(_bootstrap(overlaps, counts, ground_truth, num_resamples, seed, groups))
    return stats, scores


def _bootstrap(overlaps: dict[str, np.ndarray], counts: np.ndarray, ground_truth: dict[str, OAStats],
               num_resamples: int, seed: int, groups: Sequence[int] | None = None) -> dict[str, float]:
    if counts.sum() == 0:
        raise ValueError("no adjacent pair of non-empty 4-bar frames: melodies/region too short or silent")
    if groups is None:
        groups = np.arange(len(counts))
    elif len(groups) != len(counts):
        raise ValueError(f"{len(groups)} groups for {len(counts)} melodies")
    _, group = np.unique(np.asarray(groups), return_inverse=True)
    owner = np.repeat(group, counts)  # the group of each pooled pair
    size = int(group.max()) + 1
    per_group = np.stack([np.bincount(group, weights=counts, minlength=size), *(
        np.bincount(owner, weights=w, minlength=size)
        for name in ATTRIBUTES for w in (overlaps[name], overlaps[name] ** 2))], axis=1)
    # per group: [pairs, Σ pitch OA, Σ pitch OA², Σ duration OA, Σ duration OA²]
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(len(per_group), np.full(len(per_group), 1.0 / len(per_group)), size=num_resamples)
    totals = draws @ per_group  # (resamples, 5): pooled sums of each resample
    pairs = np.maximum(totals[:, 0], 1.0)
    scores: dict[str, list[float]] = {}
    for i, name in enumerate(ATTRIBUTES):
        mean = totals[:, 1 + 2 * i] / pairs
        var = np.maximum(totals[:, 2 + 2 * i] / pairs - mean**2, 0.0)
        gt = ground_truth[name]
        scores[f"{name}_consistency_se"] = [_relative_agreement(m, gt.mean) for m in mean]
        scores[f"{name}_variance_se"] = [_relative_agreement(v, gt.variance) for v in var]
    return {k: float(np.std(v)) for k, v in scores.items()}


def _relative_agreement(value: float, reference: float) -> float:
    """max(0, 1 − |value − reference| / reference); 1 or 0 when reference is 0 (exact match or not)."""
    if reference == 0:
        return 1.0 if value == 0 else 0.0
    return max(0.0, 1.0 - abs(value - reference) / abs(reference))


def consistency_variance(generated: dict[str, OAStats], ground_truth: dict[str, OAStats]) -> dict[str, float]:
    """Consistency and Variance scores (docs/PAPER.md §7), each in [0, 1], 1 = identical to the ground truth.

    Returns {"pitch_consistency", "pitch_variance", "duration_consistency", "duration_variance"}.
    """
    scores: dict[str, float] = {}
    for name in ATTRIBUTES:
        gen, gt = generated[name], ground_truth[name]
        scores[f"{name}_consistency"] = _relative_agreement(gen.mean, gt.mean)
        scores[f"{name}_variance"] = _relative_agreement(gen.variance, gt.variance)
    return scores

