"""Sheet music: a melody as MusicXML 4 (music21), as ABC 2.1 (a small writer here: music21 reads ABC but cannot
write it) and engraved as SVG pages (Verovio, imported only when engraving). docs/NOTATION.md has the rules.

- **Key.** The key signature is the piece's Krumhansl-Kessler key (music/keys.py) unless a key is given. Every pitch
  is spelled from that key alone: scale notes by the scale, the other five pitch classes as the common chromatic
  degrees (major: ♯1 ♭3 ♯4 ♯5 ♭7; minor: ♭2 ♮3 ♯4 ♮6 ♮7, the leading note always raised). Spellings are worked out
  on the line of fifths (C = 0, G = 1, F = −1, …), where a pitch's letter and accidental are read off directly.
- **Rhythm.** The melody's meter (music/meter.py: 4/4, 3/4 or 6/8), a bar per ``melody.steps_per_bar`` steps; the
  last bar is filled with rest. A note that crosses a bar line is tied over it, and inside a bar a note or rest is
  split (notes tied) so that each piece is a plain or dotted value that starts off the beat only to reach the next
  beat (in 6/8: off the eighth only to reach the next eighth, off the beat only to reach the next beat) and never
  hides the middle of the bar (4/4: beat 3; 6/8: its second dotted-quarter beat; 3/4 has none) unless it starts the
  bar and ends on a beat. Rests are the whole bar, half of it (4/4: a half rest; 6/8: a dotted quarter rest) or lie
  inside one beat. Notes are beamed by the meter's beats.
- **Round trip.** Reading either file back with music21 and merging ties gives the melody's notes exactly (pitch,
  onset, duration in steps), and :func:`read_melody` the melody itself in its meter: tests/music/test_notation*.py,
  benchmarks/notation_round_trip.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from melodiff.errors import MelodiffError
from melodiff.music.keys import melody_key
from melodiff.music.limits import check_steps
from melodiff.music.melody import STEPS_PER_QUARTER, Melody, Note
from melodiff.music.meter import FILE_METERS, FOUR_FOUR, Meter

Key = tuple[int, bool]  # (tonic pitch class 0..11, minor)
MAX_SHEET_BARS = 512  # the longest melody engraved to SVG (its SVG is about 3 MB; a 4,096-bar one would be ~25 MB)
HIGHLIGHT = "#c0392b"  # the colour of highlighted bars (the CLI's infilled or added bars)
# the written values in steps, longest first: whole, dotted half, half, dotted quarter, quarter, dotted 8th, 8th, 16th
_WRITTEN_VALUES = (16, 12, 8, 6, 4, 3, 2, 1)
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
def _division(meter: Meter) -> int:
    """Steps of the unit a piece that starts off it runs at most to the next of: the beat in simple time (4/4, 3/4:
    a quarter), the eighth in compound time (6/8: a third of its dotted-quarter beat)."""
    beat = meter.steps_per_bar // len(meter.beats)
    return beat // 3 if beat % 3 == 0 else beat


def _middle(meter: Meter) -> int | None:
    """The step of the bar's middle where it is a beat (4/4: 8, beat 3; 6/8: 6, its second beat), else None (3/4)."""
    half = meter.steps_per_bar // 2
    return half if half in meter.beats else None


def _fits(start: int, stop: int, rest: bool, meter: Meter) -> bool:
    """Whether a piece from ``start`` (on the division: :func:`_division`) to ``stop`` of a bar of ``meter`` keeps the
    rules of :func:`split_in_bar` (its length a written value)."""
    bar, middle = meter.steps_per_bar, _middle(meter)
    next_beat = next((b for b in meter.beats if b > start), bar)
    if start not in meter.beats:  # on an eighth inside a 6/8 beat
        return stop <= next_beat
    if rest:
        return stop <= next_beat or (start, stop) == (0, bar) or (stop - start == middle and start in (0, middle))
    return middle is None or not start < middle < stop or (start == 0 and (stop in meter.beats or stop == bar))


def split_in_bar(start: int, end: int, rest: bool = False, meter: Meter = FOUR_FOUR) -> list[tuple[int, int]]:
    """[start, end) inside one bar of ``meter`` (0 <= start < end <= meter.steps_per_bar) as written pieces (start,
    length), each a plain or dotted value (16th to whole): a piece that starts off the beat runs at most to the next
    beat, and in compound time (6/8) one off the eighth at most to the next eighth; a note that crosses the middle of
    the bar (4/4: step 8; 6/8: step 6) starts the bar and ends on a beat or at the bar's end (a half note from beat 2
    of 4/4 is two tied quarters; one over the 6/8 beat a dotted quarter and what is left). A rest is the whole bar,
    a half of a bar that has a middle (4/4: a half rest; 6/8: a dotted quarter rest) or lies inside one beat (so 4/4
    and 3/4 take no dotted quarter rests, and a dotted half rest only as 3/4's whole-bar rest)."""
    if not 0 <= start < end <= meter.steps_per_bar:
        raise ValueError(f"[{start}, {end}) is not inside one bar of {meter}")
    unit, pieces, t = _division(meter), [], start
    while t < end:
        if t % unit:
            length = min(end, t - t % unit + unit) - t
        else:
            length = next(n for n in _WRITTEN_VALUES if t + n <= end and _fits(t, t + n, rest, meter))
        pieces.append((t, length))
        t += length
    return pieces


def bars(melody: Melody) -> list[list[Event]]:
    """The melody as written bars of events, a bar per ``melody.steps_per_bar`` steps, each split as
    :func:`split_in_bar` splits it in the melody's meter; a note over a bar line is tied across it, the last bar
    filled with rest. Raises NotationError for a melody without steps."""
    if not len(melody):
        raise NotationError("an empty melody has no bars to write")
    bar_steps = melody.steps_per_bar
    num_bars = -(-len(melody) // bar_steps)
    spans: list[tuple[int, int, int | None]] = []  # (start, end, pitch or None) covering every step
    t = 0
    for note in melody.to_notes():
        if note.start > t:
            spans.append((t, note.start, None))
        spans.append((note.start, note.end, note.pitch))
        t = note.end
    if t < num_bars * bar_steps:
        spans.append((t, num_bars * bar_steps, None))
    out: list[list[Event]] = [[] for _ in range(num_bars)]
    for start, end, pitch in spans:
        pieces = []
        for bar in range(start // bar_steps, -(-end // bar_steps)):
            first = bar * bar_steps
            a, b = max(start, first) - first, min(end, first + bar_steps) - first
            pieces += [(bar, s, n) for s, n in split_in_bar(a, b, pitch is None, melody.meter)]
        for i, (bar, s, n) in enumerate(pieces):
            tied = pitch is not None
            out[bar].append(Event(s, n, pitch, tied and i + 1 < len(pieces), tied and i > 0))
    return out


def _clean_title(title: str) -> str:
    return " ".join("".join(c if c.isprintable() else " " for c in title).split())[:200]


# ---- MusicXML ----------------------------------------------------------------------------------------------------
def to_musicxml(melody: Melody, title: str = "", key: Key | None = None, tempo_qpm: float = 120.0) -> str:
    """The melody as a MusicXML 4.0 partwise score (one part, treble clef, or bass clef for a melody mostly below
    G3): key signature of ``key`` (default: found from the notes), the melody's meter as its time signature,
    ``tempo_qpm`` quarter notes per minute, ``title``; notes spelled in the key, beamed by beats (music21's beaming
    for the time signature: 6/8 by dotted quarters), tied over bar lines."""
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
    time_signature = meter.TimeSignature(melody.meter.name)
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
                if event.length == melody.steps_per_bar:
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
    """The melody as an ABC 2.1 tune: headers X: (``number``), T:, C:, M: (the melody's meter: 4/4, 3/4, 6/8), L:1/8,
    Q:1/4=``tempo_qpm``, K: (``key``, default: found from the notes); four bars a line; notes of one beat beamed
    (written without spaces: 6/8's beat is a dotted quarter); ties ``-``
    over bar lines; rests ``z``. Every note off the key signature carries its accidental, and a note back on it after
    an accidental in the bar its natural (or signature) sign, so that readers that do and readers that do not carry
    accidentals through a bar (music21 does so only in part) read the same pitches; a tied note repeats the sign of
    the note it continues, so that it is written as that note is."""
    key = resolve_key(melody, key)
    signature = signature_alters(key)
    lines = [f"X:{number}", f"T:{_clean_title(title) or 'melodiff melody'}", "C:melodiff", f"M:{melody.meter}", "L:1/8",
             f"Q:1/4={max(1, round(tempo_qpm))}", f"K:{key_text(key)}"]  # ABC tempos are whole numbers
    body, line, tied_shown = [], [], False
    for events in bars(melody):
        current: dict[tuple[str, int], int] = {}  # (letter, octave) -> the alteration in force in this bar
        text = ""
        for event in events:
            if event.start and event.start in melody.meter.beats:
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
def _first_part(text: str, fmt: str):
    """The first part of a MusicXML (``fmt`` "musicxml") or ABC ("abc") text as music21 reads it (NotationError for
    text it cannot read)."""
    from music21 import converter

    try:
        score = converter.parse(text, format=fmt)
    except Exception as exc:  # music21's parsers raise many types for bad text
        raise NotationError(f"music21 could not read the {fmt}: {type(exc).__name__}: {exc}") from None
    return score.parts[0] if score.parts else score


def _grid_notes(part, scale: float = 1.0, pad: int = 0) -> list[Note]:
    """The notes of a music21 part on the step grid, its quarter notes times ``scale`` and ``pad`` steps later, tied
    notes merged (:func:`read_notes`); NotationError for a note off the grid."""
    notes: list[Note] = []
    tied = False  # the last note is tied to the next
    for n in part.flatten().notes:
        start = n.offset * scale * STEPS_PER_QUARTER + pad
        length = n.duration.quarterLength * scale * STEPS_PER_QUARTER
        if start != int(start) or length != int(length):
            raise NotationError(f"a note at quarter {n.offset} lasting {n.duration.quarterLength} is off the grid")
        start, end = int(start), int(start + length)
        if tied and notes[-1].end == start and notes[-1].pitch == n.pitch.midi:
            notes[-1] = Note(n.pitch.midi, notes[-1].start, end)
        else:
            notes.append(Note(n.pitch.midi, start, end))
        tied = n.tie is not None and n.tie.type in ("start", "continue")
    return notes


def read_notes(text: str, fmt: str) -> list[Note]:
    """The notes of a MusicXML (``fmt`` "musicxml") or ABC ("abc") text as music21 reads them, on the step grid (a
    step a 16th note, from the start of the first part), a note tied to the next one of the same sounding pitch
    merged with it (music21's own ``stripTies`` keeps apart a tied B♮ and B written with and without the sign);
    raises NotationError for text music21 cannot read or with a note off the grid."""
    return _grid_notes(_first_part(text, fmt))


def read_melody(text: str, fmt: str) -> Melody:
    """The melody of a MusicXML (``fmt`` "musicxml") or ABC ("abc") text in its meter: the inverse of
    :func:`to_musicxml` and :func:`to_abc` (``read_melody(to_abc(m), "abc") == m`` for a melody of whole bars whose
    ids are canonical, in 4/4, 3/4 or 6/8).

    The notes are read as :func:`read_notes` reads them. The text's time signature (4/4 where it has none) is one of
    music/meter.py's FILE_METERS throughout, and the melody is in its model meter (2/2, 2/4 and 4/2 in 4/4, 3/2 in
    3/4, 3/8, 12/8 and 6/4 in 6/8; 4/2, 3/2 and 6/4 with durations halved), its bars counted in that meter from the
    first full written bar (a pickup is padded with rest at its start, as extraction pads one) and lasting whole
    bars. Raises NotationError for text music21 cannot read, a change of meter, a meter outside FILE_METERS (the
    message names those melodiff reads), a note off the grid or outside MIDI 21..108, or notes that overlap;
    MelodiffError for a melody past limits.MAX_BARS."""
    from music21 import stream

    part = _first_part(text, fmt)
    written = list(dict.fromkeys(ts.ratioString for ts in part.recurse().getElementsByClass("TimeSignature")))
    if len(written) > 1:
        raise NotationError(f"the {fmt} changes meter ({', '.join(written)}); melodiff reads a melody in one meter")
    written = written or ["4/4"]
    if written[0] not in FILE_METERS:
        raise NotationError(f"the {fmt} is in {written[0]}; melodiff reads melodies in {', '.join(FILE_METERS)}")
    meter, scale = FILE_METERS[written[0]]
    first = next(iter(part.getElementsByClass(stream.Measure)), None)
    pickup = first.duration.quarterLength if first is not None and first.paddingLeft else 0
    pad = round(-pickup * scale * STEPS_PER_QUARTER) % meter.steps_per_bar
    end = pad + part.highestTime * scale * STEPS_PER_QUARTER
    check_steps(end, steps_per_bar=meter.steps_per_bar)
    notes = _grid_notes(part, scale, pad)
    try:
        return Melody.from_notes(notes, -(-round(end) // meter.steps_per_bar) * meter.steps_per_bar, meter)
    except ValueError as exc:
        raise NotationError(f"the {fmt} is not one melody melodiff reads: {exc}") from None


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
