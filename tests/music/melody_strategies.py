"""Hypothesis strategies for melodies on the step grid (shared by the music tests)."""

from __future__ import annotations

from hypothesis import strategies as st

from melodiff.music.melody import MAX_PITCH, MIN_PITCH, Melody, Note


@st.composite
def note_lists(draw: st.DrawFn, min_notes: int = 0, max_notes: int = 24) -> list[Note]:
    """Sorted, non-overlapping notes with pitches 21..108: gaps 0..8 steps (0 = legato), durations 1..16 steps."""
    specs = draw(st.lists(st.tuples(st.integers(0, 8), st.integers(1, 16), st.integers(MIN_PITCH, MAX_PITCH)),
                          min_size=min_notes, max_size=max_notes))
    notes, t = [], 0
    for gap, duration, pitch in specs:
        t += gap
        notes.append(Note(pitch, t, t + duration))
        t += duration
    return notes


@st.composite
def notes_and_length(draw: st.DrawFn, min_notes: int = 0) -> tuple[list[Note], int]:
    """Notes plus a melody length in steps that holds them, with 0..40 steps of trailing rest."""
    notes = draw(note_lists(min_notes=min_notes))
    end = notes[-1].end if notes else 0
    return notes, draw(st.integers(end, end + 40))


@st.composite
def melodies(draw: st.DrawFn, min_notes: int = 0) -> Melody:
    notes, num_steps = draw(notes_and_length(min_notes=min_notes))
    return Melody.from_notes(notes, num_steps)
