"""Keys of melodies: Krumhansl-Kessler key finding (one rule for the evaluation's key statistics, the key
normalisation of training data and the key a generated piece is written in) and transposition to and from C.

A *key-normalised* model (docs/DEVIATIONS.md, "Keys normalised for the prior") learns every training tune moved
to C (C major or C minor): the tune is transposed by :func:`shift_to_c` of its tonic, the smallest move (−6..+5
semitones) that makes the tonic C, so that registers stay near where the tune was. A generated piece is moved back
by minus the shift of the key it is given."""

from __future__ import annotations

import numpy as np

from melodiff.music.melody import MAX_PITCH, MIN_PITCH, Melody

# Krumhansl & Kessler (1982) key profiles, C = 0
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_PROFILES = np.stack([np.roll(MAJOR_PROFILE, k) for k in range(12)] + [np.roll(MINOR_PROFILE, k) for k in range(12)])
_PROFILES = (_PROFILES - _PROFILES.mean(1, keepdims=True)) / _PROFILES.std(1, keepdims=True)


def find_key(pitches: np.ndarray, durations: np.ndarray) -> tuple[int, bool] | None:
    """(tonic pitch class, minor) of the notes by Krumhansl-Kessler, or None without notes."""
    if not len(pitches):
        return None
    profile = np.bincount(np.asarray(pitches) % 12, weights=np.asarray(durations, dtype=np.float64), minlength=12)
    if profile.std() == 0:
        return int(pitches[0]) % 12, False  # one pitch class (or all equally): it is the tonic
    best = int(np.argmax(_PROFILES @ ((profile - profile.mean()) / profile.std())))
    return best % 12, best >= 12


def melody_key(melody: Melody) -> tuple[int, bool] | None:
    """:func:`find_key` of a melody's notes, weighted by their durations (None for a melody of rests)."""
    pitches, starts, ends = melody.note_arrays()
    return find_key(pitches, ends - starts)


def last_pitch_classes(ids: np.ndarray) -> np.ndarray:
    """Event ids (..., steps) -> the pitch class of the last note that starts in each row (..., ), -1 for none."""
    ids = np.asarray(ids, dtype=np.int64)
    onsets = ids >= 2
    last = ids.shape[-1] - 1 - np.argmax(onsets[..., ::-1], axis=-1)
    pitch = np.take_along_axis(ids, last[..., None], -1)[..., 0] - 2 + MIN_PITCH
    return np.where(onsets.any(-1), pitch % 12, -1)


def last_pitch_class(ids: np.ndarray) -> int:
    """The pitch class of a melody's (event ids') last note, -1 without notes."""
    return int(last_pitch_classes(np.asarray(ids)[None])[0])


def shift_to_c(tonic: int) -> int:
    """Semitones (−6..+5) that move a tonic pitch class to C by the shortest way (G: +5, D: −2, F#: −6)."""
    shift = -int(tonic) % 12
    return shift - 12 if shift > 5 else shift


def moved_to_tonic(melody: Melody, tonic: int) -> Melody:
    """``melody`` moved by the shortest way (−6..+5 semitones) that makes its Krumhansl-Kessler tonic ``tonic``
    (unchanged without notes)."""
    key = melody_key(melody)
    return melody if key is None else transposed_near(melody, shift_to_c((key[0] - tonic) % 12))


# scale degrees (semitones above the tonic) that differ between the parallel modes: major 3, 6, 7 <-> minor b3, b6, b7
TO_MINOR = {4: 3, 9: 8, 11: 10}
TO_HARMONIC_MINOR = {4: 3, 9: 8}  # the leading tone kept: the harmonic minor, heard as minor where b7 is not
TO_MAJOR = {v: k for k, v in TO_MINOR.items()}


def in_key(melody: Melody, tonic: int, minor: bool) -> Melody:
    """``melody`` in the key (tonic, minor): moved to the tonic (:func:`moved_to_tonic`), then, if its
    Krumhansl-Kessler mode is the other one, its third, sixth and seventh degrees changed to the parallel mode's
    (major 3 6 7 <-> natural minor b3 b6 b7; the harmonic minor, leading tone kept, where the natural one is not
    heard as the key), which keeps its contour and rhythm (unchanged without notes)."""
    melody = moved_to_tonic(melody, tonic)
    key = melody_key(melody)
    if key is None or key[1] == minor:
        return melody
    tried = [_degrees_changed(melody, key[0], change) for change in ((TO_MINOR, TO_HARMONIC_MINOR) if minor
                                                                      else (TO_MAJOR,))]
    return next((m for m in tried if melody_key(m) == (tonic, minor)), tried[0])


def _degrees_changed(melody: Melody, tonic: int, change: dict[int, int]) -> Melody:
    """``melody`` with every note on a scale degree of ``change`` (semitones above ``tonic``) moved to its value."""
    ids = melody.ids.astype(np.int64)
    notes = ids >= 2
    degree = (ids - 2 + MIN_PITCH - tonic) % 12
    shift = np.zeros_like(ids)
    for old, new in change.items():
        shift[notes & (degree == old)] = new - old
    out = ids + shift
    out = np.where(notes & (out < 2), out + 12, out)  # a degree moved out of MIDI 21..108 takes the octave inside
    return melody.with_ids(np.where(notes & (out > MAX_PITCH - MIN_PITCH + 2), out - 12, out))


def transposed_near(melody: Melody, semitones: int) -> Melody:
    """``melody`` moved by ``semitones``, or by an octave less or more where that leaves the pitch range
    (MIDI 21..108); unchanged if none fits (a melody spanning almost the whole range)."""
    for shift in (semitones, semitones - 12, semitones + 12):
        try:
            return melody.transposed(shift)
        except ValueError:
            continue
    return melody
