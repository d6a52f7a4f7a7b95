"""What a musician asks of a piece — key, range, note density, style — parsed and checked once for the Python API,
the command line and the studio (torch-free), and the range applied to finished melodies.

How a model obeys them (docs/DEVIATIONS.md, "Controls"): a key-normalised context model is told the mode, style
and density (data/contexts.py) and its piece, made in C, is moved to the key's tonic (music/keys.py); the range is
applied after decoding by :func:`fit_range` (the octave that fits most notes, then every note left outside moved by
octaves into the range)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from melodiff.errors import MelodiffError
from melodiff.music.melody import MAX_PITCH, MIN_PITCH, Melody

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # how keys and pitches are written back
MIN_RANGE = 7  # semitones: a range narrower than a fifth cannot hold a tune
MAX_DENSITY = 16.0  # note onsets per bar: a 16th note on every step
_KEY = re.compile(r"^([a-g])([#b♯♭]?)\s*(m|min|minor|maj|major)?$", re.IGNORECASE)
_NOTE = re.compile(r"^([a-g])([#b♯♭]?)(-?\d)$", re.IGNORECASE)


_ALTER = {"#": 1, "♯": 1, "b": -1, "♭": -1}  # an accidental's semitones


def _pitch_class(letter: str, accidental: str) -> int:
    return (PITCH_CLASSES[letter.upper()] + _ALTER.get(accidental, 0)) % 12


def parse_key(text: str) -> tuple[int, bool]:
    """"C", "F#", "Bb", "Em", "F#m", "D minor", "Eb major" -> (tonic pitch class, minor)."""
    match = _KEY.match(text.strip())
    if not match:
        raise MelodiffError(f"unknown key {text!r}: write a tonic and a mode, e.g. C, F#, Bb, Em, F#m, D minor")
    letter, accidental, mode = match.groups()
    return _pitch_class(letter, accidental), (mode or "").lower() in ("m", "min", "minor")


def key_name(tonic: int, minor: bool) -> str:
    return f"{NAMES[tonic % 12]}{'m' if minor else ''}"


def parse_pitch(text: str) -> int:
    """"D4", "F#5", "Bb3" (C4 = 60) or a MIDI number "62" -> MIDI pitch."""
    text = text.strip()
    if re.fullmatch(r"\d{1,3}", text):
        pitch = int(text)
    else:
        match = _NOTE.match(text)
        if not match:
            raise MelodiffError(f"unknown pitch {text!r}: write a note name with its octave (D4, F#5, Bb3; C4 = 60) "
                                "or a MIDI number")
        letter, accidental, octave = match.groups()
        pitch = 12 * (int(octave) + 1) + PITCH_CLASSES[letter.upper()] + _ALTER.get(accidental, 0)
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise MelodiffError(f"pitch {text!r} is outside MIDI {MIN_PITCH}..{MAX_PITCH} (A0..C8)")
    return pitch


def parse_range(text: str) -> tuple[int, int]:
    """"D4-B5", "62-83", "D4..B5" -> (lowest, highest) MIDI pitch, at least a fifth apart."""
    parts = [p for p in re.split(r"\.\.|(?<=\d)-|\s+", text.strip()) if p]
    if len(parts) != 2:
        raise MelodiffError(f"range {text!r}: write LOW-HIGH, e.g. D4-B5 or 62-83")
    low, high = parse_pitch(parts[0]), parse_pitch(parts[1])
    check_range(low, high, repr(text))
    return low, high


def check_range(low: int, high: int, shown: str) -> None:
    """A range of MIDI pitches (written ``shown`` in the message) inside MIN_PITCH..MAX_PITCH, at least a fifth."""
    if low < MIN_PITCH or high > MAX_PITCH:
        raise MelodiffError(f"range {shown} is outside MIDI {MIN_PITCH}..{MAX_PITCH}")
    if high - low < MIN_RANGE:
        raise MelodiffError(f"range {shown} spans {high - low} semitones: it must span at least a fifth "
                            f"({MIN_RANGE})")


def check_density(value: float) -> float:
    if not 1.0 <= value <= MAX_DENSITY:
        raise MelodiffError(f"density {value:g}: give note onsets per bar from 1 to {MAX_DENSITY:g}")
    return float(value)


@dataclass(frozen=True)
class Controls:
    """``key`` (tonic pitch class, minor), ``pitch_range`` (lowest, highest MIDI pitch), ``density`` (note onsets per
    bar), ``style`` (a style the model knows, data/contexts.py), each None when not asked for. Checked on
    creation."""

    key: tuple[int, bool] | None = None
    pitch_range: tuple[int, int] | None = None
    density: float | None = None
    style: str | None = None

    def __post_init__(self) -> None:
        if self.density is not None:
            check_density(self.density)
        if self.pitch_range is not None:
            check_range(*self.pitch_range, "-".join(map(str, self.pitch_range)))
        if self.key is not None and not (0 <= self.key[0] < 12):
            raise MelodiffError(f"key tonic must be a pitch class 0..11, got {self.key[0]}")

    @classmethod
    def parse(cls, key: str | None = None, pitch_range: str | None = None, density: float | None = None,
              style: str | None = None) -> Controls:
        """From the words a user writes (``--key Em --range D4-B5 --density 4 --style oneills1850``)."""
        return cls(None if key is None else parse_key(key), None if pitch_range is None else parse_range(pitch_range),
                   density, style or None)

    def __bool__(self) -> bool:
        return any(v is not None for v in (self.key, self.pitch_range, self.density, self.style))


def fit_range(melody: Melody, low: int, high: int, steps: tuple[int, ...] = (0,)) -> Melody:
    """``melody`` moved by the one of ``steps`` (semitones, e.g. whole octaves, which keep its key) that leaves the
    fewest notes outside [low, high], then every note still outside moved by octaves to the nearest pitch inside
    (a range of less than an octave may not hold a pitch class: that note takes the nearest end of the range)."""
    ids = melody.ids.astype(np.int64)
    notes = ids >= 2
    pitches = ids[notes] + MIN_PITCH - 2
    if not len(pitches):
        return melody
    best = min(steps, key=lambda s: int((((pitches + s) < low) | ((pitches + s) > high)).sum()))
    pitches = pitches + best
    pitches = np.where(pitches < low, pitches + 12 * -(-(low - pitches) // 12), pitches)
    pitches = np.where(pitches > high, pitches - 12 * -(-(pitches - high) // 12), pitches)
    out = ids.copy()
    out[notes] = pitches.clip(low, high) - MIN_PITCH + 2
    return melody.with_ids(out)
