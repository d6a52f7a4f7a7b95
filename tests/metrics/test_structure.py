"""Structure statistics and the phrase classifier (metrics/structure.py) on hand-made melodies with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from melodiff.errors import MelodiffError
from melodiff.metrics.controls import StyleClassifier
from melodiff.metrics.structure import (
    BEAT_CLASSES,
    ONSETS,
    STRUCTURE,
    auc,
    beat_classes,
    beat_profile,
    by_meter,
    one_meter,
    phrase_classifier,
    phrase_features,
    phrases,
    repeated_cells,
    self_similarity,
    structure_statistics,
)
from melodiff.music.keys import find_key
from melodiff.music.melody import STEPS_PER_BAR, Melody, Note
from melodiff.music.meter import FOUR_FOUR, SIX_EIGHT, THREE_FOUR, Meter

C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


def quarters(pitches: list[int], rest_after: int = 0, meter: Meter = FOUR_FOUR, steps: int = 4) -> Melody:
    """One note of ``steps`` steps (a quarter note) per pitch in ``meter``, the last one followed by ``rest_after``
    steps of rest."""
    notes = [Note(p, steps * i, steps * i + steps) for i, p in enumerate(pitches)]
    return Melody.from_notes(notes, steps * len(pitches) + rest_after, meter)


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
    two_bars = phrase_classifier(tunes(C_MAJOR, 150), tunes(C_MAJOR, 150), seed=0, bars=2)
    assert two_bars["phrases"] == 1200 and abs(two_bars["accuracy"] - 0.5) < 0.1  # 16 bars: eight 2-bar phrases


def test_auc_by_ranks() -> None:
    assert auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0
    assert auc(np.array([0.9, 0.8, 0.2, 0.1]), np.array([0, 0, 1, 1])) == 0.0
    assert auc(np.array([0.5, 0.5, 0.5, 0.5]), np.array([0, 1, 0, 1])) == 0.5


def test_self_similarity_marks_repeated_bars() -> None:
    bar = quarters([60, 62, 64, 65])
    other = quarters([67, 65, 64, 62])
    ssm = self_similarity(Melody(np.concatenate([bar.ids, other.ids, bar.ids])))
    assert ssm.shape == (3, 3) and ssm[0, 2] == 1.0 and ssm[0, 1] < 1.0 and np.all(np.diag(ssm) == 1.0)


# ---- meters ----------------------------------------------------------------------------------------------------------
def test_beat_classes_of_each_meter() -> None:
    assert BEAT_CLASSES == ("downbeat", "beat", "offbeat", "sixteenth")
    assert beat_classes(FOUR_FOUR).tolist() == [0, 3, 2, 3, 1, 3, 2, 3, 1, 3, 2, 3, 1, 3, 2, 3]
    assert beat_classes(THREE_FOUR).tolist() == [0, 3, 2, 3, 1, 3, 2, 3, 1, 3, 2, 3]
    assert beat_classes(SIX_EIGHT).tolist() == [0, 3, 2, 3, 2, 3, 1, 3, 2, 3, 2, 3]


def test_beat_profile_by_hand() -> None:
    waltz = quarters(C_MAJOR[:6] * 2, meter=THREE_FOUR)  # 12 quarter notes: 4 bars of 3/4, every onset on a beat
    assert beat_profile([waltz]) == pytest.approx({"downbeat": 1 / 3, "beat": 2 / 3, "offbeat": 0, "sixteenth": 0})
    jig = quarters(C_MAJOR[:6] * 2, meter=SIX_EIGHT, steps=2)  # 12 eighth notes: 2 bars of 6/8
    assert beat_profile([jig]) == pytest.approx({"downbeat": 1 / 6, "beat": 1 / 6, "offbeat": 4 / 6, "sixteenth": 0})
    reel = quarters(C_MAJOR * 4, steps=1)  # 32 sixteenth notes: 2 bars of 4/4
    assert beat_profile([reel]) == pytest.approx({"downbeat": 1 / 16, "beat": 3 / 16, "offbeat": 4 / 16,
                                                  "sixteenth": 8 / 16})
    # the same events in 3/4: the quarter notes of a 4/4 bar fall on 3/4's downbeats, beats and off-beats
    assert beat_profile([quarters(C_MAJOR[:6] * 2)]) == pytest.approx({"downbeat": 1 / 4, "beat": 3 / 4,
                                                                       "offbeat": 0, "sixteenth": 0})
    assert beat_profile([waltz, jig]) == pytest.approx({"downbeat": 6 / 24, "beat": 10 / 24, "offbeat": 8 / 24,
                                                        "sixteenth": 0})  # pooled, each in its own meter
    assert all(np.isnan(v) for v in beat_profile([Melody([0] * 24, THREE_FOUR)]).values())


def test_the_beat_profile_is_in_the_structure_statistics() -> None:
    rng = np.random.default_rng(2)
    waltzes = [quarters(list(rng.choice(C_MAJOR, 12)), meter=THREE_FOUR, steps=int(rng.choice([2, 4])))
               for _ in range(30)]
    stats = structure_statistics(waltzes, waltzes)
    assert set(ONSETS) <= set(STRUCTURE) == set(stats)
    profile = beat_profile(waltzes)
    for name, c in zip(ONSETS, BEAT_CLASSES, strict=True):
        assert stats[name][0] == pytest.approx(profile[c])
    assert sum(stats[name][0] for name in ONSETS) == pytest.approx(1.0)
    assert 0 < stats["onsets_offbeat"][1] < 0.2 and stats["onsets_sixteenth"] == (0.0, 0.0)  # bootstrap errors


def test_structure_in_bars_of_the_melodys_meter() -> None:
    cell = quarters([60, 62, 64, 65, 67, 69], meter=THREE_FOUR)  # one 2-bar cell of 3/4: 24 steps
    waltz = Melody(np.concatenate([cell.ids] * 4), THREE_FOUR)  # 8 bars: A A A A
    assert repeated_cells(waltz, 2) == (4, 3) and repeated_cells(waltz, 4) == (2, 1)
    assert repeated_cells(waltz, 8) == (1, 0)
    assert repeated_cells(Melody(waltz.ids), 2) == (3, 0)  # the same events cut into 32-step cells
    stats = structure_statistics([waltz])
    assert stats["repeated_2bar"][0] == 0.75 and stats["repeated_4bar"][0] == 0.5
    assert stats["notes_per_bar"][0] == 3.0 and stats["key_stability"][0] == 1.0  # one 96-step segment
    assert structure_statistics([Melody(waltz.ids)])["notes_per_bar"][0] == 4.0
    mixed = structure_statistics([waltz, quarters(C_MAJOR)])  # 24 notes in 8 bars of 3/4 and 2 bars of 4/4
    assert mixed["notes_per_bar"][0] == pytest.approx(32 / 10)
    ssm = self_similarity(waltz)
    assert ssm.shape == (8, 8) and ssm[0, 2] == 1.0 and ssm[0, 1] < 1.0


def test_phrases_are_eight_bars_of_one_meter() -> None:
    waltz = quarters(C_MAJOR * 3, meter=THREE_FOUR)  # 96 steps: 8 bars of 3/4, one phrase (6 bars of 4/4)
    (phrase,) = phrases([waltz])
    assert len(phrase) == 96 and phrase.meter == THREE_FOUR
    assert phrases([Melody(waltz.ids)]) == []  # 6 bars of 4/4
    features = phrase_features(phrase)
    assert features.shape == (68,) and phrase_features(quarters(C_MAJOR * 4)).shape == (72,)
    onsets = features[25 + 16 + 12:25 + 16 + 12 + 12]  # the onset-position histogram: quarter notes of 3/4
    assert onsets.tolist() == pytest.approx([1 / 3, 0, 0, 0, 1 / 3, 0, 0, 0, 1 / 3, 0, 0, 0])


def test_comparisons_of_mixed_meters_raise() -> None:
    rng = np.random.default_rng(3)
    waltzes = [quarters(list(rng.choice(C_MAJOR, 24)), meter=THREE_FOUR) for _ in range(10)]
    jigs = [quarters(list(rng.choice(C_MAJOR, 48)), meter=SIX_EIGHT, steps=2) for _ in range(10)]
    with pytest.raises(ValueError, match="3/4, 6/8"):
        phrase_classifier(waltzes, jigs)
    with pytest.raises(ValueError, match="one meter"):
        phrase_classifier(waltzes + jigs, waltzes)
    assert phrase_classifier(waltzes, waltzes[::-1])["phrases"] == 10  # one meter: fine
    assert one_meter(waltzes, []) == THREE_FOUR and one_meter([], []) is None
    groups = by_meter([jigs[0], waltzes[0], jigs[1]])
    assert list(groups) == ["6/8", "3/4"] and groups["6/8"] == jigs[:2]
    with pytest.raises(MelodiffError, match="share one bar length"):
        StyleClassifier([*waltzes, quarters(C_MAJOR * 4)], [0] * 10 + [1], 2)
