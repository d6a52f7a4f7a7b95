"""Structure statistics and the phrase classifier (metrics/structure.py) on hand-made melodies with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from melodiff.metrics.structure import (
    auc,
    phrase_classifier,
    phrases,
    repeated_cells,
    self_similarity,
    structure_statistics,
)
from melodiff.music.keys import find_key
from melodiff.music.melody import STEPS_PER_BAR, Melody, Note

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def quarters(pitches: list[int], rest_after: int = 0) -> Melody:
    """One quarter note (4 steps) per pitch, the last one followed by ``rest_after`` steps of rest."""
    notes = [Note(p, 4 * i, 4 * i + 4) for i, p in enumerate(pitches)]
    return Melody.from_notes(notes, 4 * len(pitches) + rest_after)


def test_keys_by_krumhansl_kessler() -> None:
    scale = np.array([*C_MAJOR, 67, 64, 60])
    assert find_key(scale, np.ones(len(scale))) == (0, False)
    a_minor = np.array([69, 71, 72, 74, 76, 77, 80, 81, 76, 72, 69])  # with the raised seventh G♯
    assert find_key(a_minor, np.ones(len(a_minor))) == (9, True)
    assert find_key(np.array([], dtype=np.int64), np.array([])) is None
    assert find_key(np.array([62, 62]), np.array([4, 4])) == (2, False)


def test_repeated_cells_count_exact_earlier_cells() -> None:
    cell = quarters(C_MAJOR)  # 2 bars
    melody = Melody(np.concatenate([cell.ids] * 4))  # 8 bars: A A A A
    assert repeated_cells(melody, 2) == (4, 3) and repeated_cells(melody, 4) == (2, 1)
    assert repeated_cells(melody, 8) == (1, 0) and repeated_cells(melody, 16) == (0, 0)
    other = quarters(C_MAJOR[::-1])
    assert repeated_cells(Melody(np.concatenate([cell.ids, other.ids, cell.ids])), 2) == (3, 1)


def test_structure_of_an_aabb_tune() -> None:
    a = quarters([60, 62, 64, 65, 67, 65, 64, 62, 60, 64, 67, 72, 67, 64, 62, 60])  # 4 bars in C major
    b = quarters([67, 69, 71, 72, 71, 69, 67, 65, 64, 62, 64, 65, 64, 62, 60], rest_after=4)  # ends on C, then rest
    tune = Melody(np.concatenate([a.ids, a.ids, b.ids, b.ids]))  # 16 bars
    stats = structure_statistics([tune], reference=[tune])
    assert stats["repeated_4bar"][0] == 0.5 and stats["repeated_8bar"][0] == 0.0
    assert stats["tonic_ending"][0] == 1.0 and stats["key_stability"][0] == 1.0
    assert stats["pitch_range"][0] == 72 - 60
    assert stats["rest_fraction"][0] == pytest.approx(2 * 4 / (16 * STEPS_PER_BAR))
    assert stats["notes_per_bar"][0] == pytest.approx((32 + 30) / 16)
    assert stats["interval_distance"][0] == 0.0
    assert np.isnan(stats["tonic_ending"][1])  # one melody: no bootstrap error


def test_bootstrap_errors_and_distances() -> None:
    rng = np.random.default_rng(0)
    tunes = [quarters(list(rng.choice(C_MAJOR, 16))) for _ in range(40)]
    leaps = [quarters(list(rng.choice([48, 60, 72, 84], 16))) for _ in range(40)]
    near, far = structure_statistics(tunes[:20], tunes[20:]), structure_statistics(leaps, tunes)
    assert near["interval_distance"][0] < 0.2 < 0.6 < far["interval_distance"][0]
    assert 0 < near["tonic_ending"][1] < 0.2  # a bootstrap standard error of a share of 20 melodies
    assert far["pitch_range"][0] > 2 * near["pitch_range"][0]


def test_classifier_tells_different_phrases_apart_and_not_equal_ones() -> None:
    rng = np.random.default_rng(1)

    def tunes(pitches: list[int], n: int) -> list[Melody]:
        return [quarters(list(rng.choice(pitches, 64))) for _ in range(n)]  # 16 bars: two phrases each

    same = phrase_classifier(tunes(C_MAJOR, 150), tunes(C_MAJOR, 150), seed=0)
    apart = phrase_classifier(tunes(C_MAJOR, 150), tunes([48, 60, 72, 84, 61, 66], 150), seed=0)
    assert same["phrases"] == 300 and abs(same["accuracy"] - 0.5) < 0.1 and abs(same["auc"] - 0.5) < 0.1
    assert apart["accuracy"] > 0.95 and apart["auc"] > 0.99
    assert np.isnan(phrase_classifier(tunes(C_MAJOR, 1), tunes(C_MAJOR, 1))["accuracy"])
    assert len(phrases([quarters(C_MAJOR * 4)])) == 1  # 8 bars: one phrase


def test_auc_by_ranks() -> None:
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5


def test_self_similarity_marks_repeated_bars() -> None:
    bar = quarters([60, 62, 64, 65])
    other = quarters([67, 65, 64, 62])
    ssm = self_similarity(Melody(np.concatenate([bar.ids, other.ids, bar.ids])))
    assert ssm.shape == (3, 3) and ssm[0, 2] == 1.0 and ssm[0, 1] < 1.0 and np.all(np.diag(ssm) == 1.0)
