"""Sheet music: a melody as MusicXML 4 (music21), as ABC 2.1 (a small writer here: music21 reads ABC but cannot
write it) and engraved as SVG pages (Verovio, imported only when engraving). docs/NOTATION.md has the rules.

- **Key.** The key signature is the piece's Krumhansl-Kessler key (music/keys.py) unless a key is given. Every pitch
  is spelled from that key alone: scale notes by the scale, the other five pitch classes as the common chromatic
  degrees (major: ♯1 ♭3 ♯4 ♯5 ♭7; minor: ♭2 ♮3 ♯4 ♮6 ♮7, the leading note always raised). Spellings are worked out
  on the line of fifths (C = 0, G = 1, F = −1, …), where a pitch's letter and accidental are read off directly.
- **Rhythm.** 4/4, a bar per 16 steps; the last bar is filled with rest. A note that crosses a bar line is tied over
  it, and inside a bar a note or rest is split (notes tied) so that each piece is a plain or dotted value that starts
  off the beat only to reach the next beat and never hides the middle of the bar unless it starts the bar.
- **Round trip.** Reading either file back with music21 and merging ties gives the melody's notes exactly (pitch,
  onset, duration in steps): tests/music/test_notation.py, benchmarks/notation_round_trip.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from melodiff.errors import MelodiffError
from melodiff.music.keys import melody_key
from melodiff.music.melody import STEPS_PER_BAR, STEPS_PER_QUARTER, Melody, Note

Key = tuple[int, bool]  # (tonic pitch class 0..11, minor)
MAX_SHEET_BARS = 512  # the longest melody engraved to SVG (its SVG is about 3 MB; a 4,096-bar one would be ~25 MB)
BEAT = STEPS_PER_QUARTER
HIGHLIGHT = "#c0392b"  # the colour of highlighted bars (the CLI's infilled or added bars)
HALF_BAR = STEPS_PER_BAR // 2
# Note values a piece may take, longest first, by where it starts in the bar (beat-aligned starts only; off the beat a
# piece runs to the next beat): the whole bar from its start, across the middle of the bar only from its start.
_NOTE_VALUES = {0: (16, 12, 8, 6, 4, 3, 2, 1), HALF_BAR: (8, 6, 4, 3, 2, 1)}
_REST_VALUES = {0: (16, 8, 4, 3, 2, 1), HALF_BAR: (8, 4, 3, 2, 1)}  # no dotted half or dotted quarter rests
_BEAT_VALUES = (4, 3, 2, 1)
_LETTERS = "FCGDAEB"  # the line of fifths, from F: letter of position p is _LETTERS[(p + 1) % 7]
_NATURAL_PC = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
# interval above the tonic (semitones) -> position on the line of fifths relative to the tonic
_MAJOR_DEGREES = {0: 0, 1: 7, 2: 2, 3: -3, 4: 4, 5: -1, 6: 6, 7: 1, 8: 8, 9: 3, 10: -2, 11: 5}
_MINOR_DEGREES = {0: 0, 1: -5, 2: 2, 3: -3, 4: 4, 5: -1, 6: 6, 7: 1, 8: -4, 9: 3, 10: -2, 11: 5}
# key signature (sharps > 0, flats < 0) of the major key on each tonic pitch class: at most 6 accidentals (F# not Gb)
_MAJOR_FIFTHS = {0: 0, 1: -5, 2: 2, 3: -3, 4: 4, 5: -1, 6: 6, 7: 1, 8: -4, 9: 3, 10: -2, 11: 5}


class NotationError(MelodiffError):
    """A melody that cannot be written as sheet music, or an engraver failure (one line)."""


@dataclass(frozen=True)
class Spelling:
    """A written pitch: ``letter`` A..G, ``alter`` in semitones (−2..2: 𝄫 ♭ ♮ ♯ 𝄪), ``octave`` (scientific: the
    octave of middle C, MIDI 60, is 4; B♯3 sounds as C4)."""

    letter: str
    alter: int
    octave: int


@dataclass(frozen=True)
class Event:
    """One written note or rest of a bar: ``start`` and ``length`` in steps from the bar's start; ``pitch`` MIDI, or
    None for a rest; ``tie_start``: tied to the next event (the same note goes on), ``tie_stop``: tied from the last."""

    start: int
    length: int
    pitch: int | None
    tie_start: bool = False
    tie_stop: bool = False


# ---- keys and spelling -------------------------------------------------------------------------------------------
def key_fifths(key: Key) -> int:
    """The key signature of ``key``: sharps (> 0) or flats (< 0), −5..6 (F♯ major / D♯ minor: 6 sharps)."""
    tonic, minor = key
    return _MAJOR_FIFTHS[(tonic + 3) % 12 if minor else tonic % 12]


def _from_fifths(position: int) -> tuple[str, int]:
    """(letter, alter) of a position on the line of fifths (C = 0, G = 1, F = −1, F♯ = 6, B♭ = −2)."""
    return _LETTERS[(position + 1) % 7], (position + 1) // 7


def tonic_name(key: Key) -> tuple[str, int]:
    """(letter, alter) of the key's tonic as its key signature spells it (D♭ major, C♯ minor, D♯ minor)."""
    return _from_fifths(key_fifths(key) + (3 if key[1] else 0))


def key_text(key: Key) -> str:
    """The key as ABC's K: field writes it: "D", "Bb", "F#m"."""
    letter, alter = tonic_name(key)
    return f"{letter}{'#' * alter}{'b' * -alter}{'m' if key[1] else ''}"


def spell(pitch: int, key: Key) -> Spelling:
    """MIDI ``pitch`` written in ``key`` (rules in the module docstring)."""
    tonic, minor = key
    position = key_fifths(key) + (3 if minor else 0)
    position += (_MINOR_DEGREES if minor else _MAJOR_DEGREES)[(pitch - tonic) % 12]
    letter, alter = _from_fifths(position)
    return Spelling(letter, alter, (pitch - alter - _NATURAL_PC[letter]) // 12 - 1)


def signature_alters(key: Key) -> dict[str, int]:
    """letter -> the alteration the key signature gives it (0, 1 or −1)."""
    fifths = key_fifths(key)
    alters = dict.fromkeys(_NATURAL_PC, 0)
    for i in range(abs(fifths)):
        alters[_LETTERS[6 - i] if fifths < 0 else _LETTERS[i]] = 1 if fifths > 0 else -1
    return alters


def resolve_key(melody: Melody, key: Key | None) -> Key:
    """``key``, else the melody's Krumhansl-Kessler key, else (a melody of rests) C major."""
    if key is not None:
        tonic, minor = key
        if not (isinstance(tonic, int) and 0 <= tonic < 12):
            raise NotationError(f"a key's tonic is a pitch class 0..11, got {tonic!r}")
        return tonic, bool(minor)
    return melody_key(melody) or (0, False)


# ---- rhythm ------------------------------------------------------------------------------------------------------
def split_in_bar(start: int, end: int, rest: bool = False) -> list[tuple[int, int]]:
    """[start, end) inside one bar (0 <= start < end <= 16) as written pieces (start, length): plain or dotted values;
    a piece that starts off the beat runs at most to the next beat; one that crosses the middle of the bar starts it.
    Rests take no dotted half or dotted quarter."""
    if not 0 <= start < end <= STEPS_PER_BAR:
        raise ValueError(f"[{start}, {end}) is not inside one bar")
    pieces, t = [], start
    while t < end:
        if t % BEAT:
            length = min(end, t - t % BEAT + BEAT) - t
        else:
            values = (_REST_VALUES if rest else _NOTE_VALUES).get(t, _BEAT_VALUES)
            length = next(v for v in values if t + v <= end)
        pieces.append((t, length))
        t += length
    return pieces


def bars(melody: Melody) -> list[list[Event]]:
    """The melody as written bars of events; a note over a bar line is tied across it, the last bar filled with
    rest. Raises NotationError for a melody without steps."""
    if not len(melody):
        raise NotationError("an empty melody has no bars to write")
    num_bars = -(-len(melody) // STEPS_PER_BAR)
    spans: list[tuple[int, int, int | None]] = []  # (start, end, pitch or None) covering every step
    t = 0
    for note in melody.to_notes():
        if note.start > t:
            spans.append((t, note.start, None))
        spans.append((note.start, note.end, note.pitch))
        t = note.end
    if t < num_bars * STEPS_PER_BAR:
        spans.append((t, num_bars * STEPS_PER_BAR, None))
    out: list[list[Event]] = [[] for _ in range(num_bars)]
    for start, end, pitch in spans:
        pieces = []
        for bar in range(start // STEPS_PER_BAR, -(-end // STEPS_PER_BAR)):
            first = bar * STEPS_PER_BAR
            a, b = max(start, first) - first, min(end, first + STEPS_PER_BAR) - first
            pieces += [(bar, s, n) for s, n in split_in_bar(a, b, rest=pitch is None)]
        for i, (bar, s, n) in enumerate(pieces):
            tied = pitch is not None
            out[bar].append(Event(s, n, pitch, tied and i + 1 < len(pieces), tied and i > 0))
    return out


def _clean_title(title: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in title).split())[:200]


# ---- MusicXML ----------------------------------------------------------------------------------------------------
def to_musicxml(melody: Melody, title: str = "", key: Key | None = None, tempo_qpm: float = 120.0) -> str:
    """The melody as a MusicXML 4.0 partwise score (one part, treble clef, or bass clef for a melody mostly below
    G3): key signature of ``key`` (default: found from the notes), 4/4, ``tempo_qpm`` quarter notes per minute,
    ``title``; notes spelled in the key, beamed by beats (music21's 4/4 beaming), tied over bar lines."""
    from music21 import clef, duration, instrument, metadata, meter, note, pitch, stream, tempo, tie
    from music21 import key as m21key
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    key = resolve_key(melody, key)
    written = bars(melody)
    letter, alter = tonic_name(key)
    notes = melody.to_notes()
    low = sum(n.pitch < 55 for n in notes) * 2 > len(notes)
    score = stream.Score()
    score.metadata = metadata.Metadata(title=_clean_title(title))
    score.metadata.composer = "melodiff"
    part = stream.Part(id="P1")
    melody_instrument = instrument.Instrument()
    melody_instrument.partId, melody_instrument.instrumentId = "P1", "P1-I1"  # fixed ids: the same melody, same file
    part.insert(0, melody_instrument)
    ties = {(True, False): "start", (True, True): "continue", (False, True): "stop"}
    time_signature = meter.TimeSignature("4/4")
    for number, events in enumerate(written, start=1):
        measure = stream.Measure(number=number)
        if number == 1:
            measure.append(clef.BassClef() if low else clef.TrebleClef())
            measure.append(m21key.Key(letter + "#" * alter + "-" * -alter, "minor" if key[1] else "major"))
            measure.append(time_signature)
            measure.append(tempo.MetronomeMark(number=round(tempo_qpm, 2), referent=duration.Duration(1.0)))
        for event in events:
            if event.pitch is None:
                element = note.Rest()
                if event.length == STEPS_PER_BAR:
                    element.fullMeasure = True
            else:
                s = spell(event.pitch, key)
                element = note.Note(pitch.Pitch(step=s.letter, accidental=s.alter or None, octave=s.octave))
                if (event.tie_start, event.tie_stop) in ties:
                    element.tie = tie.Tie(ties[event.tie_start, event.tie_stop])
            element.duration = duration.Duration(Fraction(event.length, STEPS_PER_QUARTER))
            measure.append(element)
        elements = list(measure.notesAndRests)
        for element, beams in zip(elements, time_signature.getBeams(elements), strict=True):
            if beams is not None:
                element.beams = beams
        part.append(measure)
    part.makeAccidentals(cautionaryNotImmediateRepeat=False, inPlace=True)
    score.append(part)
    exporter = GeneralObjectExporter(score)
    exporter.makeNotation = False  # the bars, ties, beams and accidentals are made above
    try:
        return exporter.parse().decode("utf-8")
    except Exception as exc:  # music21 raises many types; any of them means this melody has no MusicXML
        raise NotationError(f"music21 could not write MusicXML ({type(exc).__name__}: {exc})") from None


# ---- ABC ---------------------------------------------------------------------------------------------------------
_ABC_ALTER = {-2: "__", -1: "_", 0: "=", 1: "^", 2: "^^"}
_ABC_LENGTH = {1: "/", 2: "", 3: "3/2", 4: "2", 6: "3", 8: "4", 12: "6", 16: "8"}  # steps -> multiples of L:1/8


def abc_pitch(s: Spelling) -> str:
    """A written pitch's ABC letter and octave marks, without accidental (C = middle C, c an octave up, C, below)."""
    if s.octave >= 5:
        return s.letter.lower() + "'" * (s.octave - 5)
    return s.letter + "," * (4 - s.octave)


def to_abc(melody: Melody, title: str = "", key: Key | None = None, tempo_qpm: float = 120.0,
           number: int = 1) -> str:
    """The melody as an ABC 2.1 tune: headers X: (``number``), T:, C:, M:4/4, L:1/8, Q:1/4=``tempo_qpm``, K: (``key``,
    default: found from the notes); four bars a line; notes of one beat beamed (written without spaces); ties ``-``
    over bar lines; rests ``z``. Every note off the key signature carries its accidental, and a note back on it after
    an accidental in the bar its natural (or signature) sign, so that readers that do and readers that do not carry
    accidentals through a bar (music21 does so only in part) read the same pitches; a tied note repeats the sign of
    the note it continues, so that it is written as that note is."""
    key = resolve_key(melody, key)
    signature = signature_alters(key)
    lines = [f"X:{number}", f"T:{_clean_title(title) or 'melodiff melody'}", "C:melodiff", "M:4/4", "L:1/8",
             f"Q:1/4={max(1, round(tempo_qpm))}", f"K:{key_text(key)}"]  # ABC tempos are whole numbers
    body, line, tied_shown = [], [], False
    for events in bars(melody):
        current: dict[tuple[str, int], int] = {}  # (letter, octave) -> the alteration in force in this bar
        text = ""
        for event in events:
            if event.start and event.start % BEAT == 0:
                text += " "
            if event.pitch is None:
                token = "z"
            else:
                s = spell(event.pitch, key)
                in_force = current.get((s.letter, s.octave), signature[s.letter])
                shown = s.alter != signature[s.letter] or in_force != signature[s.letter]
                shown = tied_shown if event.tie_stop else shown  # a tied note repeats its first piece's sign
                tied_shown = shown
                token = (_ABC_ALTER[s.alter] if shown else "") + abc_pitch(s)
                current[(s.letter, s.octave)] = s.alter
            text += token + _ABC_LENGTH[event.length] + ("-" if event.tie_start else "")
        line.append(text)
        if len(line) == 4:
            body.append(" | ".join(line) + " |")
            line = []
    if line:
        body.append(" | ".join(line) + " |")
    body[-1] = body[-1][:-1] + "]"
    return "\n".join(lines + body) + "\n"


# ---- reading back ------------------------------------------------------------------------------------------------
def read_notes(text: str, fmt: str) -> list[Note]:
    """The notes of a MusicXML (``fmt`` "musicxml") or ABC ("abc") text as music21 reads them, on the step grid, a
    note tied to the next one of the same sounding pitch merged with it (music21's own ``stripTies`` keeps apart a
    tied B♮ and B written with and without the sign); raises NotationError for text music21 cannot read or with a
    note off the grid."""
    from music21 import converter

    try:
        score = converter.parse(text, format=fmt)
    except Exception as exc:  # music21's parsers raise many types for bad text
        raise NotationError(f"music21 could not read the {fmt}: {type(exc).__name__}: {exc}") from None
    part = score.parts[0] if score.parts else score
    notes: list[Note] = []
    tied = False  # the last note is tied to the next
    for n in part.flatten().notes:
        start, length = n.offset * STEPS_PER_QUARTER, n.duration.quarterLength * STEPS_PER_QUARTER
        if start != int(start) or length != int(length):
            raise NotationError(f"a note at quarter {n.offset} lasting {n.duration.quarterLength} is off the grid")
        start, end = int(start), int(start + length)
        if tied and notes[-1].end == start and notes[-1].pitch == n.pitch.midi:
            notes[-1] = Note(n.pitch.midi, notes[-1].start, end)
        else:
            notes.append(Note(n.pitch.midi, start, end))
        tied = n.tie is not None and n.tie.type in ("start", "continue")
    return notes


# ---- engraving ---------------------------------------------------------------------------------------------------
def engrave(musicxml: str, highlight: Sequence[tuple[int, int]] = (), page_width: int = 2100, scale: int = 45,
            one_page: bool = True) -> list[str]:
    """MusicXML (:func:`to_musicxml`) engraved by Verovio as SVG pages (strings). ``highlight``: half-open bar spans
    (0-based) whose notes and staff are drawn in red and whose ``<g class="measure">`` also has the class
    "highlight". ``page_width`` in Verovio units (tenths of a mm at scale 100: 2100 is A4), ``scale`` in percent;
    ``one_page``: all systems on one page as tall as they need (up to Verovio's tallest page), else A4-shaped pages.
    Ids are deterministic; every bar is one ``<g class="measure">``, in order. Raises NotationError when Verovio is
    missing, refuses the input or draws nothing, or for more than MAX_SHEET_BARS bars."""
    count = musicxml.count("<measure ")
    if count > MAX_SHEET_BARS:
        raise NotationError(f"{count} bars are too many to engrave (at most {MAX_SHEET_BARS})")
    try:
        import verovio
    except ImportError:
        raise NotationError("engraving needs Verovio: pip install verovio") from None
    verovio.enableLog(verovio.LOG_OFF)
    toolkit = verovio.toolkit(False)  # fonts named here: the default path holds only in the thread that imported it
    if not toolkit.setResourcePath(str(Path(verovio.__file__).parent / "data")):
        raise NotationError("Verovio's fonts could not be loaded")
    toolkit.setOptions({"pageWidth": page_width, "pageHeight": 60000 if one_page else round(page_width * 1.414),
                        "adjustPageHeight": True, "scale": scale, "footer": "none", "header": "auto",
                        "breaks": "auto", "xmlIdSeed": 1, "svgViewBox": True, "svgRemoveXlink": True})
    if not toolkit.loadData(musicxml):
        raise NotationError("Verovio could not read the MusicXML")
    pages = [toolkit.renderToSVG(page) for page in range(1, toolkit.getPageCount() + 1)]
    drawn = sum(page.count(' class="measure"') for page in pages)
    if drawn != count:
        raise NotationError(f"Verovio drew {drawn} of the {count} bars")
    marked = {bar for start, end in highlight for bar in range(start, end)}
    if not marked:
        return pages
    bar = -1

    def mark(match: re.Match) -> str:
        nonlocal bar
        bar += 1
        return f'{match.group(1)} class="measure highlight" fill="{HIGHLIGHT}" color="{HIGHLIGHT}"' \
            if bar in marked else match.group(0)

    return [re.sub(r'(<g id="[^"]*") class="measure"', mark, page) for page in pages]
