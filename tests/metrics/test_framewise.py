"""Framewise self-similarity (docs/PAPER.md §7): closed-form OA, frames, Consistency / Variance."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.stats import norm

from melodiff.metrics.framewise import (
    SD_FLOOR,
    OAStats,
    bootstrap_standard_errors,
    consistency_variance,
    frame_gaussians,
    frame_overlaps,
    frame_steps,
    framewise_scores,
    oa_statistics,
    overlapping_area,
    overlapping_areas,
)
from melodiff.music.melody import Melody, Note
from melodiff.music.meter import SIX_EIGHT, THREE_FOUR

means = st.floats(-50, 50, allow_nan=False)
sds = st.floats(0.05, 20, allow_nan=False)


def normal_pdf(x: float, mu: float, sd: float) -> float:
    return math.exp(-0.5 * ((x - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))


def numerical_oa(mu1: float, sd1: float, mu2: float, sd2: float) -> float:
    lo = min(mu1, mu2) - 12 * max(sd1, sd2)
    hi = max(mu1, mu2) + 12 * max(sd1, sd2)

    def integrand(x: float) -> float:
        return min(normal_pdf(x, mu1, sd1), normal_pdf(x, mu2, sd2))

    value, _ = quad(integrand, lo, hi, points=[mu1, mu2], limit=400)
    return value


def notes_melody(notes: list[Note], num_steps: int) -> Melody:
    return Melody.from_notes(notes, num_steps)


def run(pitch: int, duration: int, start: int, count: int) -> list[Note]:
    """`count` consecutive notes of one pitch and duration from step `start`."""
    return [Note(pitch, start + i * duration, start + (i + 1) * duration) for i in range(count)]


# ---- overlapping area ------------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(means, sds, means, sds)
def test_oa_symmetric_and_bounded(mu1: float, sd1: float, mu2: float, sd2: float) -> None:
    oa = overlapping_area(mu1, sd1, mu2, sd2)
    assert 0.0 <= oa <= 1.0
    assert oa == overlapping_area(mu2, sd2, mu1, sd1)


@settings(max_examples=40, deadline=None)
@given(means, sds)
def test_oa_of_identical_gaussians_is_one(mu: float, sd: float) -> None:
    assert overlapping_area(mu, sd, mu, sd) == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(("sd1", "sd2"), [(1.0, 1.0), (1.0, 2.5), (3.0, 0.4)])
def test_oa_decreases_as_means_separate(sd1: float, sd2: float) -> None:
    gaps = np.linspace(0.0, 15.0, 61)
    oa = overlapping_areas(np.zeros_like(gaps), sd1, gaps, sd2)
    assert np.all(np.diff(oa) <= 1e-12)
    assert oa[-1] < 1e-3


def test_oa_matches_numerical_integration() -> None:
    rng = np.random.default_rng(0)
    cases = [(0.0, 1.0, 0.0, 2.0), (0.0, 1.0, 1.0, 1.0), (60.0, 0.3, 62.0, 4.0)]
    cases += [(*rng.normal(0, 3, 1), *rng.uniform(0.2, 3, 1), *rng.normal(0, 3, 1), *rng.uniform(0.2, 3, 1))
              for _ in range(3)]
    for mu1, sd1, mu2, sd2 in cases:
        assert overlapping_area(mu1, sd1, mu2, sd2) == pytest.approx(numerical_oa(mu1, sd1, mu2, sd2), abs=1e-7)


def test_oa_closed_forms() -> None:
    # equal widths: OA = erfc(|Δ| / (2√2 σ))
    assert overlapping_area(0.0, 2.0, 3.0, 2.0) == pytest.approx(math.erfc(3.0 / (2 * math.sqrt(2) * 2.0)))
    # N(0, 1) vs N(0, 4): intersections at ±√(8 ln 2 / 3)
    c = math.sqrt(8 * math.log(2) / 3)
    expected = 2 * norm.cdf(-c) + (norm.cdf(c / 2) - norm.cdf(-c / 2))
    assert overlapping_area(0.0, 1.0, 0.0, 2.0) == pytest.approx(expected, rel=1e-12)


def test_oa_nearly_equal_widths_is_continuous() -> None:
    base = overlapping_area(0.0, 1.0, 1.5, 1.0)
    for eps in (1e-14, 1e-10, 1e-7, 1e-5):
        assert overlapping_area(0.0, 1.0, 1.5, 1.0 + eps) == pytest.approx(base, abs=10 * eps + 1e-12)


def test_oa_degenerate_sd_is_floored() -> None:
    assert overlapping_area(60.0, 0.0, 60.0, 0.0) == 1.0
    assert overlapping_area(60.0, 0.0, 61.0, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert overlapping_area(2.0, 0.0, 2.0, SD_FLOOR) == 1.0
    assert overlapping_area(2.0, 0.0, 2.1, 0.5) < 0.01


# ---- frames ----------------------------------------------------------------------------------------------------------
def hand_melody() -> Melody:
    """6 bars: 4 × (C4, 8 steps) | 8 × (E4, 4 steps) | 4 × (G#4, 8 steps). Frames start at steps 0 and 32."""
    return notes_melody(run(60, 8, 0, 4) + run(64, 4, 32, 8) + run(68, 8, 64, 4), 96)


def test_frame_gaussians_by_hand() -> None:
    g = frame_gaussians(hand_melody())
    sd = 4 * math.sqrt(2) / 3  # two values 4 apart with weights 1/3, 2/3: σ = 4 √(2/9)
    assert g.shape == (2, 4)
    np.testing.assert_allclose(g[0], [(4 * 60 + 8 * 64) / 12, sd, 16 / 3, sd])
    np.testing.assert_allclose(g[1], [(8 * 64 + 4 * 68) / 12, sd, 16 / 3, sd])


def test_frame_overlaps_by_hand() -> None:
    oa = frame_overlaps([hand_melody()])
    # pitch means 62.667 and 65.333 (Δ = 8/3), equal σ = 4√2/3: OA = erfc(Δ / (2√2 σ)) = erfc(1/2)
    np.testing.assert_allclose(oa["pitch"], [math.erfc(0.5)])
    np.testing.assert_allclose(oa["duration"], [1.0])


def test_notes_are_assigned_by_onset_with_full_duration() -> None:
    # One 20-step note with onset at step 60 belongs to frames [0, 64) and [32, 96), not to [64, 128).
    melody = notes_melody([Note(60, 0, 4), Note(72, 60, 80)], 128)
    g = frame_gaussians(melody)
    assert g.shape == (3, 4)
    np.testing.assert_allclose(g[0], [66.0, 6.0, 12.0, 8.0])
    np.testing.assert_allclose(g[1], [72.0, 0.0, 20.0, 0.0])
    assert np.isnan(g[2]).all()


def test_frames_are_four_bars_of_the_melodys_meter() -> None:
    notes = [Note(60, 0, 4), Note(72, 44, 48), Note(67, 60, 64)]  # onsets 0, 44, 60 in 96 steps
    three = Melody.from_notes(notes, 96, THREE_FOUR)  # 8 bars of 12 steps: frames [0, 48), [24, 72), [48, 96)
    assert frame_steps(three) == frame_steps(three.with_ids(three.ids)) == (48, 24)
    assert frame_steps(Melody.from_notes(notes, 96, SIX_EIGHT)) == (48, 24)
    assert frame_steps(Melody.from_notes(notes, 96)) == (64, 32)
    g = frame_gaussians(three)
    assert g.shape == (3, 4)
    np.testing.assert_allclose(g[:, 0], [66.0, 69.5, 67.0])  # {60, 72}, {72, 67}, {67}
    four = frame_gaussians(Melody.from_notes(notes, 96))  # the same events in 4/4: frames [0, 64), [32, 96)
    assert four.shape == (2, 4)
    np.testing.assert_allclose(four[:, 0], [199 / 3, 69.5])
    assert frame_gaussians(Melody.from_notes(notes[:1], 47, THREE_FOUR)).shape == (0, 4)  # shorter than a frame
    # a set may mix meters: each melody's pairs are pooled as they are
    mixed = frame_overlaps([three, Melody.from_notes(notes, 96)])["pitch"]
    np.testing.assert_allclose(mixed, np.concatenate([frame_overlaps([three])["pitch"],
                                                      frame_overlaps([Melody.from_notes(notes, 96)])["pitch"]]))


def test_pairs_with_empty_frames_are_skipped() -> None:
    melody = notes_melody(run(60, 4, 0, 8), 128)  # notes only in bars 0-1; frames at 0, 32 (empty), 64 (empty)
    oa = frame_overlaps([melody])
    assert oa["pitch"].size == 0 and oa["duration"].size == 0
    with pytest.raises(ValueError, match="no adjacent pair"):
        oa_statistics([melody])


def test_region_restriction() -> None:
    melody = notes_melody(run(60, 8, 0, 4) + run(64, 4, 32, 8) + run(68, 8, 64, 4) + run(72, 2, 96, 16), 128)
    full = frame_overlaps([melody])
    assert full["pitch"].size == 2  # frames at 0, 32, 64
    region = frame_overlaps([melody], start_step=32, end_step=128)  # frames at 32, 64
    np.testing.assert_allclose(region["pitch"], full["pitch"][1:])
    np.testing.assert_allclose(region["duration"], full["duration"][1:])
    # a region shorter than two frames has no pair; end_step beyond the melody is clipped
    assert frame_overlaps([melody], start_step=64)["pitch"].size == 0
    np.testing.assert_allclose(frame_overlaps([melody], end_step=10_000)["pitch"], full["pitch"])


def test_overlaps_pool_over_melodies() -> None:
    a = hand_melody()
    b = notes_melody(run(60, 8, 0, 4) + run(62, 2, 32, 16) + run(67, 4, 64, 8), 96)
    pooled = frame_overlaps([a, b])
    for name in ("pitch", "duration"):
        np.testing.assert_array_equal(pooled[name], np.concatenate([frame_overlaps([a])[name],
                                                                    frame_overlaps([b])[name]]))
    stats = oa_statistics([a, b])
    assert stats["pitch"].mean == pytest.approx(pooled["pitch"].mean())
    assert stats["duration"].variance == pytest.approx(pooled["duration"].var())


# ---- consistency / variance --------------------------------------------------------------------------------------
def test_consistency_variance_is_one_for_identical_sets() -> None:
    melodies = [hand_melody(), notes_melody(run(60, 8, 0, 4) + run(62, 2, 32, 16) + run(67, 4, 64, 8), 96)]
    stats = oa_statistics(melodies)
    scores = consistency_variance(stats, stats)
    assert set(scores) == {"pitch_consistency", "pitch_variance", "duration_consistency", "duration_variance"}
    assert all(v == 1.0 for v in scores.values())


def test_consistency_variance_formula() -> None:
    gt = {"pitch": OAStats(0.8, 0.02), "duration": OAStats(0.5, 0.04)}
    gen = {"pitch": OAStats(0.6, 0.03), "duration": OAStats(1.5, 0.0)}
    scores = consistency_variance(gen, gt)
    assert scores["pitch_consistency"] == pytest.approx(0.75)
    assert scores["pitch_variance"] == pytest.approx(0.5)
    assert scores["duration_consistency"] == 0.0  # clipped at 0
    assert scores["duration_variance"] == pytest.approx(0.0)


def test_zero_ground_truth_rule() -> None:
    gt = {"pitch": OAStats(1.0, 0.0), "duration": OAStats(1.0, 0.0)}
    gen = {"pitch": OAStats(1.0, 0.0), "duration": OAStats(1.0, 1e-3)}
    scores = consistency_variance(gen, gt)
    assert scores["pitch_variance"] == 1.0
    assert scores["duration_variance"] == 0.0


# ---- bootstrap standard errors -----------------------------------------------------------------------------------
def varied_melodies(n: int) -> list[Melody]:
    rng = np.random.default_rng(7)
    out = []
    for _ in range(n):
        notes, step = [], 0
        while step < 160:
            length = int(rng.choice([1, 2, 4, 8]))
            notes.append(Note(int(rng.integers(55, 80)), step, step + length))
            step += length + int(rng.integers(0, 2))
        out.append(notes_melody(notes, 192))
    return out


def test_bootstrap_matches_explicit_resampling() -> None:
    melodies = varied_melodies(12)
    gt = oa_statistics(varied_melodies(30)[12:])
    se = bootstrap_standard_errors(melodies, gt, num_resamples=25, seed=3)
    # The same resamples, scored the slow way: melodies repeated as drawn, pooled and scored from scratch.
    counts = np.random.default_rng(3).multinomial(12, np.full(12, 1 / 12), size=25)
    scores = [consistency_variance(oa_statistics([m for m, c in zip(melodies, row) for _ in range(c)]), gt)
              for row in counts]
    for name in scores[0]:
        assert se[f"{name}_se"] == pytest.approx(np.std([s[name] for s in scores]), abs=1e-12)
    assert all(v > 0 for v in se.values())


def test_bootstrap_error_is_zero_for_identical_melodies_and_shrinks_with_more() -> None:
    gt = oa_statistics(varied_melodies(20))
    same = bootstrap_standard_errors([hand_melody()] * 10, gt)
    assert all(v == pytest.approx(0.0, abs=1e-12) for v in same.values())
    few = bootstrap_standard_errors(varied_melodies(10), gt, num_resamples=2000)
    many = bootstrap_standard_errors(varied_melodies(10) * 4, gt, num_resamples=2000)
    assert all(many[name] < few[name] for name in few)
    for name in ("pitch_consistency_se", "duration_consistency_se"):  # far from the |·| kink: the 1/√n law
        assert many[name] == pytest.approx(few[name] / 2, rel=0.25)


def test_framewise_scores_is_statistics_scores_and_errors_in_one_pass() -> None:
    melodies = [*varied_melodies(9), Melody.from_notes([], 192), hand_melody()]  # one without any note
    gt = oa_statistics(varied_melodies(30)[9:])
    stats, scores = framewise_scores(melodies, gt, 32, 192, seed=4)
    assert stats == oa_statistics(melodies, 32, 192)
    se = bootstrap_standard_errors(melodies, gt, 32, 192, seed=4)
    assert scores == {**consistency_variance(stats, gt), **se}
    with pytest.raises(ValueError, match="no adjacent pair"):
        framewise_scores([Melody.from_notes([], 192)], gt)


def test_bootstrap_resamples_groups_whole() -> None:
    melodies = varied_melodies(10)
    gt = oa_statistics(varied_melodies(30)[10:])
    alone = framewise_scores(melodies, gt, seed=5)
    # Each melody three times, its copies one group: every resample is the ungrouped resample with each melody
    # counted three times, so the pooled scores and their spread are the same.
    tripled = [m for m in melodies for _ in range(3)]
    grouped = framewise_scores(tripled, gt, seed=5, groups=[i for i in range(10) for _ in range(3)])
    for name, stats in alone[0].items():
        assert (grouped[0][name].mean, grouped[0][name].variance) == pytest.approx((stats.mean, stats.variance))
    assert grouped[1] == pytest.approx(alone[1], abs=1e-12)
    # Resampled as 30 independent melodies instead, the copies look like more data and the errors shrink.
    loose = framewise_scores(tripled, gt, seed=5)[1]
    assert all(loose[k] < alone[1][k] for k in loose if k.endswith("_se"))
    with pytest.raises(ValueError, match="3 groups for 10 melodies"):
        framewise_scores(melodies, gt, groups=[0, 1, 2])
