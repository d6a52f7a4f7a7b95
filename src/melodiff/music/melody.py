"""Melodies as step events on a 16th-note grid, in a meter (music/meter.py; 4/4 unless told) (docs/PAPER.md §1).

Vocabulary (90 classes, as MusicVAE): 0 = NO_EVENT (hold the current note or rest), 1 = NOTE_OFF (a rest starts),
2..89 = note-on of MIDI pitch 21..108 (id = pitch - 19). A step is a 16th note; a bar is ``meter.steps_per_bar``
steps (16 in 4/4, 12 in 3/4 and 6/8) and a VAE chunk two bars.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from melodiff.music.meter import BARS_PER_CHUNK, FOUR_FOUR, STEPS_PER_QUARTER, Meter

NO_EVENT = 0
NOTE_OFF = 1
MIN_PITCH = 21
MAX_PITCH = 108
PITCH_OFFSET = MIN_PITCH - 2  # id = pitch - 19
NUM_CLASSES = 90
STEPS_PER_BAR = FOUR_FOUR.steps_per_bar  # 4/4's: the paper's grid, Magenta's and the duple models'
CHUNK_STEPS = FOUR_FOUR.chunk_steps  # 32 steps = one 4/4 VAE input
__all__ = ["BARS_PER_CHUNK", "CHUNK_STEPS", "FOUR_FOUR", "STEPS_PER_BAR", "STEPS_PER_QUARTER", "Melody", "Meter",
           "Note", "is_rest_chunk"]


@dataclass(frozen=True)
class Note:
    """A note on the step grid: ``pitch`` (MIDI), ``start`` and ``end`` in steps, ``end > start``."""

    pitch: int
    start: int
    end: int


def pitch_to_id(pitch: int) -> int:
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch {pitch} outside {MIN_PITCH}..{MAX_PITCH}")
    return pitch - PITCH_OFFSET


def id_to_pitch(event_id: int) -> int:
    if not 2 <= event_id < NUM_CLASSES:
        raise ValueError(f"event id {event_id} is not a note-on")
    return event_id + PITCH_OFFSET


class Melody:
    """A monophonic melody: a 1-D int array of event ids, one per 16th-note step, in a ``meter`` (4/4 unless told).

    The melody starts silent (leading NO_EVENTs are rest); a note lasts until the next note-on or NOTE_OFF or the end.
    """

    __slots__ = ("ids", "meter")

    def __init__(self, ids: Sequence[int] | np.ndarray, meter: Meter = FOUR_FOUR) -> None:
        arr = np.asarray(ids, dtype=np.int64)
        if arr.ndim != 1:
            raise ValueError(f"melody ids must be 1-D, got shape {arr.shape}")
        if arr.size and (arr.min() < 0 or arr.max() >= NUM_CLASSES):
            raise ValueError(f"event ids must lie in 0..{NUM_CLASSES - 1}")
        self.ids = arr.astype(np.int8)
        self.meter = meter

    def with_ids(self, ids: Sequence[int] | np.ndarray) -> Melody:
        """Other events in this melody's meter."""
        return Melody(ids, self.meter)

    # ---- conversions -------------------------------------------------------------------------------------------
    @classmethod
    def from_notes(cls, notes: Iterable[Note], num_steps: int | None = None, meter: Meter = FOUR_FOUR) -> Melody:
        """Build from non-overlapping notes (sorted or not). ``num_steps`` defaults to the last note's end."""
        ordered = sorted(notes, key=lambda n: n.start)
        if num_steps is None:
            num_steps = ordered[-1].end if ordered else 0
        ids = np.zeros(num_steps, dtype=np.int64)
        for i, note in enumerate(ordered):
            if note.end <= note.start:
                raise ValueError(f"note {note} has no duration")
            if i + 1 < len(ordered) and ordered[i + 1].start < note.end:
                raise ValueError(f"notes overlap: {note} and {ordered[i + 1]}")
            if note.start < 0 or note.end > num_steps:
                raise ValueError(f"note {note} outside 0..{num_steps}")
            ids[note.start] = pitch_to_id(note.pitch)
            if note.end < num_steps and ids[note.end] == NO_EVENT:
                ids[note.end] = NOTE_OFF
        return cls(ids, meter)

    def to_notes(self) -> list[Note]:
        return [Note(*note) for note in zip(*(a.tolist() for a in self.note_arrays()), strict=True)]

    def note_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The notes as arrays (pitches, starts, ends): a note lasts from its onset to the next event (an onset or a
        note-off) or the melody's end."""
        events = np.flatnonzero(self.ids != NO_EVENT)
        ends = np.append(events[1:], len(self.ids))[:len(events)]
        onset = self.ids[events] != NOTE_OFF
        return self.ids[events[onset]].astype(np.int64) + PITCH_OFFSET, events[onset], ends[onset]

    # ---- shape ---------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.ids.size)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Melody) and self.meter == other.meter and np.array_equal(self.ids, other.ids)

    def __hash__(self) -> int:
        return hash((self.ids.tobytes(), self.meter.name))

    def __repr__(self) -> str:
        return f"Melody({len(self)} steps, {self.num_notes} notes, {self.meter})"

    @property
    def steps_per_bar(self) -> int:
        return self.meter.steps_per_bar

    @property
    def chunk_steps(self) -> int:
        return self.meter.chunk_steps

    @property
    def num_bars(self) -> float:
        return len(self) / self.meter.steps_per_bar

    @property
    def num_notes(self) -> int:
        return int((self.ids >= 2).sum())

    @property
    def notes_per_bar(self) -> float:
        """Note onsets per bar (a melody shorter than a bar counts as one bar)."""
        return self.num_notes / max(self.num_bars, 1.0)

    @property
    def num_chunks(self) -> int:
        """2-bar chunks the melody takes once padded (the last one may be partly rest)."""
        return -(-len(self) // self.meter.chunk_steps)

    @property
    def padded_bars(self) -> int:
        """Bars the melody takes once padded to whole 2-bar chunks."""
        return self.num_chunks * BARS_PER_CHUNK

    def padded(self, multiple: int | None = None) -> Melody:
        """Pad with rest to a multiple of ``multiple`` steps (default: whole 2-bar chunks; a NOTE_OFF ends the last
        note)."""
        pad = (-len(self)) % (multiple or self.meter.chunk_steps)
        if pad == 0:
            return self
        tail = np.zeros(pad, dtype=np.int64)
        events = self.ids[self.ids != NO_EVENT]
        if events.size and events[-1] != NOTE_OFF:  # a note sounds to the end: stop it (no redundant NOTE_OFF)
            tail[0] = NOTE_OFF
        return self.with_ids(np.concatenate([self.ids.astype(np.int64), tail]))

    def chunks(self) -> np.ndarray:
        """The melody as 2-bar chunks: int64 array (num_chunks, chunk_steps), chunk_steps = 32 in 4/4, 24 in 3/4 and
        6/8. Length must be a multiple of chunk_steps."""
        if len(self) % self.chunk_steps:
            raise ValueError(f"melody of {len(self)} steps is not a whole number of 2-bar chunks; use padded()")
        return self.ids.astype(np.int64).reshape(-1, self.chunk_steps)

    @classmethod
    def from_chunks(cls, chunks: np.ndarray | Sequence[Sequence[int]], meter: Meter = FOUR_FOUR) -> Melody:
        return cls(np.asarray(chunks, dtype=np.int64).reshape(-1), meter)

    def transposed(self, semitones: int) -> Melody:
        ids = self.ids.astype(np.int64).copy()
        notes = ids >= 2
        ids[notes] += semitones
        if notes.any() and (ids[notes].min() < 2 or ids[notes].max() >= NUM_CLASSES):
            raise ValueError(f"transposing by {semitones} leaves the pitch range {MIN_PITCH}..{MAX_PITCH}")
        return self.with_ids(ids)


def is_rest_chunk(chunk: np.ndarray) -> np.ndarray:
    """True where a chunk (..., steps) has no note-on: a "rest chunk" in the paper's sense."""
    return ~(np.asarray(chunk) >= 2).any(axis=-1)
