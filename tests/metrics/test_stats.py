"""Descriptive melody statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from melodiff.metrics.stats import (
    DESCRIPTIVE,
    histogram_distance,
    melody_statistics,
    per_melody_statistics,
    pitch_class_histogram,
    scale_consistency,
)
from melodiff.music.melody import NOTE_OFF, Melody, Note, pitch_to_id
from melodiff.music.meter import SIX_EIGHT, THREE_FOUR


def test_statistics_by_hand() -> None:
    # bar 1: C4 for 4 steps, rest 4 steps, E4 for 8 steps; bar 2: G4 for 2 steps then rest to the end (14 steps)
    a = Melody.from_notes([Note(60, 0, 4), Note(64, 8, 16), Note(67, 16, 18)], 32)
    # one bar: A4 over the whole bar
    b = Melody.from_notes([Note(69, 0, 16)], 16)
    s = melody_statistics([a, b])
    assert s["num_melodies"] == 2 and s["num_notes"] == 4
    assert s["notes_per_bar"] == pytest.approx(4 / 3)  # 4 notes in 3 bars
    assert s["pitch_mean"] == pytest.approx(65.0)
    assert s["pitch_std"] == pytest.approx(math.sqrt((25 + 1 + 4 + 16) / 4))
    assert (s["pitch_min"], s["pitch_max"]) == (60.0, 69.0)
    assert s["pitch_range"] == pytest.approx((7 + 0) / 2)
    assert s["mean_duration"] == pytest.approx((4 + 8 + 2 + 16) / 4)
    assert s["rest_fraction"] == pytest.approx(18 / 48)  # 4 + 14 silent steps
    assert s["held_fraction"] == pytest.approx((30 - 4) / 48)  # 30 sounding steps, 4 of them onsets
    assert s["rest_fraction"] + s["held_fraction"] + 4 / 48 == pytest.approx(1.0)
    # NO_EVENT ids: a has 3 note-ons + 2 NOTE_OFFs (steps 4, 18) -> 27 holds; b has 1 note-on -> 15 holds
    assert s["no_event_fraction"] == pytest.approx((27 + 15) / 48)
    # C, E, G in a; A in b: each melody fits one major scale; a's one whole chunk has notes and no repeat
    assert s["scale_consistency"] == 1.0 and s["repeated_2bar_fraction"] == 0.0
    assert math.isnan(s["pitch_class_distance"])  # no reference given
    assert melody_statistics([a, b], pitch_class_histogram([a, b]))["pitch_class_distance"] == 0.0
    only_c = np.eye(12)[0]
    assert melody_statistics([a, b], only_c)["pitch_class_distance"] == pytest.approx(0.75)


def test_statistics_without_notes_are_nan() -> None:
    s = melody_statistics([Melody([0] * 32)])
    assert s["num_notes"] == 0 and s["notes_per_bar"] == 0.0
    assert math.isnan(s["pitch_mean"]) and math.isnan(s["mean_duration"]) and math.isnan(s["pitch_range"])
    assert s["rest_fraction"] == 1.0
    assert math.isnan(s["scale_consistency"]) and math.isnan(s["repeated_2bar_fraction"])
    assert math.isnan(s["pitch_class_distance"]) and math.isnan(melody_statistics([], np.eye(12)[0])["pitch_range"])
    assert math.isnan(melody_statistics([])["rest_fraction"])


def test_pitch_class_histogram_and_distance() -> None:
    melody = Melody.from_notes([Note(60, 0, 2), Note(72, 2, 4), Note(61, 4, 6), Note(62, 6, 8)])  # C C C# D
    assert pitch_class_histogram([melody]).tolist() == [0.5, 0.25, 0.25] + [0.0] * 9
    assert pitch_class_histogram([Melody([0] * 16)]).tolist() == [0.0] * 12
    p, q = np.eye(12)[0], np.eye(12)[1]
    assert histogram_distance(p, q) == 1.0 and histogram_distance(p, p) == 0.0
    assert histogram_distance(2 * p, p + q) == pytest.approx(0.5)  # normalised first
    assert math.isnan(histogram_distance(np.zeros(12), p))


def test_scale_consistency() -> None:
    assert scale_consistency(np.ones(12)) == pytest.approx(7 / 12)  # chromatic
    assert scale_consistency(np.eye(12)[[0, 2, 4, 6]].sum(0)) == 1.0  # C D E F#: all in G major
    assert scale_consistency(np.eye(12)[[0, 1, 2]].sum(0)) == pytest.approx(2 / 3)  # no scale has 3 semitones
    assert math.isnan(scale_consistency(np.zeros(12)))


def test_repeated_2bar_fraction() -> None:
    x = [pitch_to_id(60)] + [0] * 31  # a 2-bar chunk holding C4
    y = [pitch_to_id(62)] + [0] * 31
    rest = [NOTE_OFF] + [0] * 31  # no onset: not counted
    first = Melody(x + x + rest + rest + y + x + x[:16])  # chunks with notes X X Y X; the half chunk is ignored
    assert melody_statistics([first])["repeated_2bar_fraction"] == pytest.approx(2 / 4)
    # repeats are looked for within a melody only
    assert melody_statistics([first, Melody(x)])["repeated_2bar_fraction"] == pytest.approx(2 / 5)


def test_per_melody_statistics() -> None:
    a = Melody.from_notes([Note(60, 0, 4), Note(67, 8, 32)])
    b = Melody([0] * 32)
    reference = np.eye(12)[0]
    each = per_melody_statistics([a, b], reference)
    assert set(each) == set(DESCRIPTIVE) and all(v.shape == (2,) for v in each.values())
    for name in DESCRIPTIVE:
        assert each[name][0] == melody_statistics([a], reference)[name]
    assert each["notes_per_bar"].tolist() == [1.0, 0.0] and each["pitch_range"][0] == 7
    assert each["pitch_class_distance"][0] == pytest.approx(0.5) and math.isnan(each["pitch_class_distance"][1])


def test_bars_and_chunks_of_the_melodys_meter() -> None:
    quarters = [Note(60 + i % 5, 4 * i, 4 * i + 4) for i in range(9)]  # 9 quarter notes: 3 bars of 3/4
    waltz = Melody.from_notes(quarters, 36, THREE_FOUR)
    assert melody_statistics([waltz])["notes_per_bar"] == pytest.approx(3.0)
    assert melody_statistics([Melody.from_notes(quarters, 36)])["notes_per_bar"] == pytest.approx(4.0)  # 2.25 bars
    # a 4/4 bar and a 3/4 bar of quarter notes pooled: 7 notes in 2 bars
    bar_44 = Melody.from_notes([Note(60, 4 * i, 4 * i + 4) for i in range(4)], 16)
    assert melody_statistics([bar_44, waltz.with_ids(waltz.ids[:12])])["notes_per_bar"] == pytest.approx(3.5)
    # 2-bar chunks of 24 steps in 6/8: X X Y X
    x = [pitch_to_id(60)] + [0] * 23
    y = [pitch_to_id(62)] + [0] * 23
    jig = Melody(x + x + y + x, SIX_EIGHT)
    assert melody_statistics([jig])["repeated_2bar_fraction"] == pytest.approx(2 / 4)
    assert melody_statistics([Melody(x + x + y + x)])["repeated_2bar_fraction"] == 0.0  # three 32-step chunks
