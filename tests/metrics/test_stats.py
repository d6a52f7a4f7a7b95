"""Descriptive melody statistics."""

from __future__ import annotations

import math

import pytest

from melodiff.metrics.stats import melody_statistics
from melodiff.music.melody import Melody, Note


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


def test_statistics_without_notes_are_nan() -> None:
    s = melody_statistics([Melody([0] * 32)])
    assert s["num_notes"] == 0 and s["notes_per_bar"] == 0.0
    assert math.isnan(s["pitch_mean"]) and math.isnan(s["mean_duration"]) and math.isnan(s["pitch_range"])
    assert s["rest_fraction"] == 1.0
    assert math.isnan(melody_statistics([])["rest_fraction"])
