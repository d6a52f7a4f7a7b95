"""Melody <-> notes <-> chunks invariants (hypothesis) and the Melody's argument checks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from melody_strategies import melodies, notes_and_length

from melodiff.music.melody import (
    CHUNK_STEPS,
    MAX_PITCH,
    MIN_PITCH,
    NO_EVENT,
    NOTE_OFF,
    NUM_CLASSES,
    Melody,
    Note,
    id_to_pitch,
    is_rest_chunk,
    pitch_to_id,
)


def canonical(m: Melody) -> Melody:
    return Melody.from_notes(m.to_notes(), len(m))


@given(notes_and_length())
def test_from_notes_to_notes_is_identity(case: tuple[list[Note], int]) -> None:
    notes, num_steps = case
    m = Melody.from_notes(notes, num_steps)
    assert len(m) == num_steps
    assert m.to_notes() == notes
    assert m.num_notes == len(notes)
    assert canonical(m) == m


@given(notes_and_length(), st.randoms(use_true_random=False))
def test_from_notes_ignores_input_order(case: tuple[list[Note], int], rng) -> None:
    notes, num_steps = case
    shuffled = list(notes)
    rng.shuffle(shuffled)
    assert Melody.from_notes(shuffled, num_steps) == Melody.from_notes(notes, num_steps)


def test_from_notes_hand_computed() -> None:
    m = Melody.from_notes([Note(60, 0, 2), Note(62, 2, 3), Note(21, 5, 6), Note(108, 6, 8)], 10)
    assert m.ids.tolist() == [41, 0, 43, 1, 0, 2, 89, 0, 1, 0]
    assert Melody.from_notes([Note(60, 0, 4)]).ids.tolist() == [41, 0, 0, 0]  # length defaults to the last end
    assert len(Melody.from_notes([])) == 0


@pytest.mark.parametrize("notes, num_steps", [
    ([Note(60, 0, 4), Note(62, 3, 6)], None),  # overlap
    ([Note(60, 2, 2)], 4),                     # no duration
    ([Note(60, 0, 5)], 4),                     # past the end
    ([Note(20, 0, 1)], 4),                     # pitch below 21
    ([Note(109, 0, 1)], 4),                    # pitch above 108
])
def test_from_notes_rejects_invalid_notes(notes: list[Note], num_steps: int | None) -> None:
    with pytest.raises(ValueError):
        Melody.from_notes(notes, num_steps)


def test_ids_are_validated_and_pitch_ids_convert() -> None:
    with pytest.raises(ValueError):
        Melody([0, NUM_CLASSES])
    with pytest.raises(ValueError):
        Melody([-1])
    with pytest.raises(ValueError):
        Melody(np.zeros((2, 3), dtype=int))
    assert [id_to_pitch(pitch_to_id(p)) for p in (MIN_PITCH, 60, MAX_PITCH)] == [MIN_PITCH, 60, MAX_PITCH]
    with pytest.raises(ValueError):
        id_to_pitch(NOTE_OFF)


@given(melodies())
def test_padded_keeps_notes_and_is_canonical(m: Melody) -> None:
    p = m.padded()
    assert len(p) % CHUNK_STEPS == 0 and len(m) <= len(p) < len(m) + CHUNK_STEPS
    assert np.array_equal(p.ids[:len(m)], m.ids)
    assert p.to_notes() == m.to_notes()
    assert p == canonical(p)
    assert p.padded() is p


@given(melodies())
def test_chunks_round_trip(m: Melody) -> None:
    p = m.padded()
    chunks = p.chunks()
    assert chunks.shape == (len(p) // CHUNK_STEPS, CHUNK_STEPS) and chunks.dtype == np.int64
    assert Melody.from_chunks(chunks) == p
    assert np.array_equal(is_rest_chunk(chunks), ~(chunks >= 2).any(axis=1))


def test_chunks_needs_whole_chunks_and_rest_chunks() -> None:
    with pytest.raises(ValueError, match="padded"):
        Melody([NO_EVENT] * 33).chunks()
    chunks = Melody.from_notes([Note(60, 0, 40)], 64).chunks()  # a note held through the second chunk
    assert is_rest_chunk(chunks).tolist() == [False, True]


@given(melodies(min_notes=1), st.integers(-24, 24))
def test_transposed_shifts_every_pitch(m: Melody, semitones: int) -> None:
    pitches = [n.pitch for n in m.to_notes()]
    if MIN_PITCH <= min(pitches) + semitones and max(pitches) + semitones <= MAX_PITCH:
        t = m.transposed(semitones)
        assert [n.pitch for n in t.to_notes()] == [p + semitones for p in pitches]
        assert [(n.start, n.end) for n in t.to_notes()] == [(n.start, n.end) for n in m.to_notes()]
        assert t.transposed(-semitones) == m
    else:
        with pytest.raises(ValueError, match="pitch range"):
            m.transposed(semitones)


def test_transposed_range_errors() -> None:
    m = Melody.from_notes([Note(MIN_PITCH, 0, 2), Note(MAX_PITCH, 2, 4)])
    assert m.transposed(0) == m
    with pytest.raises(ValueError):
        m.transposed(1)
    with pytest.raises(ValueError):
        m.transposed(-1)
    rest = Melody([NO_EVENT, NOTE_OFF, NO_EVENT])
    assert rest.transposed(100) == rest  # nothing to transpose


def test_equality_and_hash() -> None:
    a = Melody([41, 0, 1])
    assert a == Melody(np.array([41, 0, 1])) and hash(a) == hash(Melody([41, 0, 1]))
    assert a != Melody([41, 0, 0]) and a != [41, 0, 1]
    assert a.num_bars == 3 / 16
