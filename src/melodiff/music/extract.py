"""Monophonic melody extraction from MIDI (symusic) and scores (music21), after docs/PAPER.md §1.

Rules (each also listed in docs/DATA.md):
- one melody per part/track; drum tracks and unpitched parts are skipped;
- the grid is in beats, not seconds: a step is a 16th note (MIDI: ticks_per_quarter / 4 ticks), onsets and offsets are
  rounded to the nearest step; a note shorter than a step after rounding lasts one step;
- when notes start on the same step the highest is kept; a note is cut where the next one starts;
- pitches outside MIDI 21..108 are dropped;
- only meters that map onto a model meter (music/meter.py FILE_METERS) are kept: 4/4 and 2/2 (one bar = 16 steps),
  2/4 (two bars paired into one 16-step bar), 4/2 (durations halved); 3/4 (12 steps), 3/2 (halved); 6/8 (12 steps),
  3/8 (paired), 12/8 (split), 6/4 (halved). A part whose meter changes is cut into segments at each change, and only
  the segments in such meters are kept. The first full bar is put on a bar boundary of the model meter (pickups are
  padded);
- a melody is split wherever a whole aligned 2-bar chunk has no note onset (the paper drops windows with rest chunks),
  and pieces shorter than ``min_bars`` are dropped as "too short".
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from melodiff.errors import MelodiffError
from melodiff.music.limits import MAX_MIDI_BYTES, MAX_SCORE_BYTES, check_file_size, check_notes, check_steps
from melodiff.music.melody import MAX_PITCH, MIN_PITCH, STEPS_PER_QUARTER, Melody, Note, is_rest_chunk
from melodiff.music.meter import FILE_METERS, FOUR_FOUR, METERS, Meter, read_as
from melodiff.music.scores import expand_score_repeats, has_repeats, parse_score_file

ALL_METERS = tuple(METERS)  # the model meters extraction keeps unless told fewer
MIDI_SUFFIXES = {".mid", ".midi"}
SCORE_SUFFIXES = {".xml", ".mxl", ".musicxml", ".abc", ".krn"}


@dataclass
class RawNote:
    """A note in quarter notes, before quantisation."""

    pitch: int
    onset: float
    offset: float


@dataclass
class ExtractedMelody:
    melody: Melody
    part: str
    meter: str
    key: str = ""


@dataclass
class Extraction:
    """Melodies from one piece plus why anything was dropped (counts per reason) and grid statistics."""

    melodies: list[ExtractedMelody] = field(default_factory=list)
    dropped: Counter = field(default_factory=Counter)
    onsets: int = 0
    onsets_off_grid: int = 0


def quantize_monophonic(notes: list[RawNote], scale: float, pad_steps: int, stats: Extraction,
                        meter: Meter = FOUR_FOUR) -> Melody:
    """Quantise notes (quarter-note times, already relative to the segment start) into a monophonic Melody in
    ``meter``.

    Raises MelodiffError, before allocating the melody, when it would last longer than limits.MAX_BARS."""
    if notes:
        check_steps(max(n.offset for n in notes) * scale * STEPS_PER_QUARTER + pad_steps,
                    steps_per_bar=meter.steps_per_bar)
    by_onset: dict[int, tuple[int, int]] = {}
    for n in notes:
        if not MIN_PITCH <= n.pitch <= MAX_PITCH:
            stats.dropped["note out of pitch range"] += 1
            continue
        exact = n.onset * scale * STEPS_PER_QUARTER
        start = round(exact) + pad_steps
        stats.onsets += 1
        stats.onsets_off_grid += abs(exact - round(exact)) > 1e-6
        end = max(round(n.offset * scale * STEPS_PER_QUARTER) + pad_steps, start + 1)
        if start in by_onset:
            stats.dropped["note under a higher simultaneous note"] += 1
            if by_onset[start][0] >= n.pitch:
                continue
        by_onset[start] = (n.pitch, end)
    starts = sorted(by_onset)
    out = []
    for i, start in enumerate(starts):
        pitch, end = by_onset[start]
        if i + 1 < len(starts):
            end = min(end, starts[i + 1])
        out.append(Note(pitch, start, end))
    return Melody.from_notes(out, meter=meter)


def split_at_rest_chunks(melody: Melody, min_bars: int) -> tuple[list[Melody], int]:
    """Cut a melody at aligned 2-bar chunks with no onset; returns (pieces >= min_bars, number dropped as too short)."""
    if len(melody) == 0:
        return [], 0
    chunks = melody.padded().chunks()
    rest = is_rest_chunk(chunks)
    pieces, too_short, run = [], 0, []
    for chunk, is_rest in zip(chunks, rest, strict=True):
        if not is_rest:
            run.append(chunk)
            continue
        if run:
            pieces.append(run)
        run = []
    if run:
        pieces.append(run)
    kept = []
    for run in pieces:
        if len(run) * melody.chunk_steps < min_bars * melody.steps_per_bar:
            too_short += 1
            continue
        m = Melody.from_chunks(np.stack(run), melody.meter)
        # a note sounding into the dropped rest chunk is cut at the chunk boundary (no NOTE_OFF needed); a note held
        # through a rest chunk leaves a NOTE_OFF on the next piece's first step: rebuild from notes to drop it
        kept.append(Melody.from_notes(m.to_notes(), len(m), melody.meter))
    return kept, too_short


def _segment(notes: list[RawNote], start: float, end: float, downbeat: float, meter: str, part: str, key: str,
             min_bars: int, out: Extraction) -> None:
    model, scale = FILE_METERS[meter]
    inside = [RawNote(n.pitch, n.onset - start, min(n.offset, end) - start) for n in notes if start <= n.onset < end]
    if not inside:
        return
    pad = round(-(downbeat - start) * scale * STEPS_PER_QUARTER) % model.steps_per_bar
    melody = quantize_monophonic(inside, scale, pad, out, model)
    pieces, too_short = split_at_rest_chunks(melody, min_bars)
    if too_short:
        out.dropped["too short"] += too_short
    out.melodies.extend(ExtractedMelody(m, part, meter, key) for m in pieces)


def _bar_quarters(meter: str) -> float:
    num, _, den = meter.partition("/")
    try:
        return 4 * int(num) / int(den)
    except (ValueError, ZeroDivisionError):
        return 0.0


def _meter_segments(changes: list[tuple[float, str]], end: float) -> list[tuple[float, float, str]]:
    """[(offset, meter)] sorted -> [(start, end, meter)] with consecutive equal meters merged.

    Signatures whose bar is shorter than a quarter note (1/16, 1/8: music21 writes them for some partial ABC bars)
    are parser artefacts, not meter changes, and are ignored.
    """
    merged: list[tuple[float, str]] = []
    for offset, meter in sorted(changes):
        if _bar_quarters(meter) < 1:
            continue
        if merged and merged[-1][0] == offset:
            merged[-1] = (offset, meter)
        elif not merged or merged[-1][1] != meter:
            merged.append((offset, meter))
    if not merged or merged[0][0] > 0:
        merged.insert(0, (0.0, merged[0][1] if merged else "none"))
    bounds = [o for o, _ in merged[1:]] + [end]
    return [(o, b, m) for (o, m), b in zip(merged, bounds, strict=True) if b > o]


def extract_part(notes: list[RawNote], meters: list[tuple[float, str]], downbeats: list[float], part: str,
                 key: str, min_bars: int, out: Extraction, keep: tuple[str, ...] = ALL_METERS) -> None:
    """Shared core: cut a part's notes into meter segments and extract those written in a meter of the model
    meters ``keep`` (FILE_METERS)."""
    if not notes:
        out.dropped["empty part"] += 1
        return
    end = max(n.offset for n in notes)
    for start, stop, meter in _meter_segments(meters, end):
        if not read_as(meter, keep):
            out.dropped[f"meter {meter}"] += 1
            continue
        downbeat = next((d for d in downbeats if start <= d < stop), start)
        _segment(notes, start, stop, downbeat, meter, part, key, min_bars, out)


# ---- MIDI ------------------------------------------------------------------------------------------------------------
def load_midi(path: str | Path):
    """A MIDI file as a symusic Score (in ticks); MelodiffError if it cannot be read, is larger than
    limits.MAX_MIDI_BYTES, has no time unit (0 ticks per quarter) or more than limits.MAX_NOTES notes."""
    from symusic import Score

    check_file_size(path, MAX_MIDI_BYTES)
    try:
        score = Score(str(path))
    except Exception as exc:  # symusic raises ValueError/RuntimeError with its own wording
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise MelodiffError(f"{path}: not a readable MIDI file ({detail})") from None
    if score.ticks_per_quarter < 1:
        raise MelodiffError(f"{path}: not a readable MIDI file (0 ticks per quarter note)")
    check_notes(sum(len(t.notes) for t in score.tracks), str(path))
    return score


def track_notes(track, ticks_per_quarter: int, max_quarters: float = float("inf")) -> list[RawNote]:
    """A symusic track's sounding notes in quarter notes; notes starting at or after ``max_quarters`` are left out
    and the others end there at the latest (so a cut piece is never built whole)."""
    tpq = ticks_per_quarter
    return [RawNote(n.pitch, n.time / tpq, min((n.time + n.duration) / tpq, max_quarters))
            for n in track.notes if n.velocity > 0 and n.time / tpq < max_quarters]


def extract_midi(path: str | Path, min_bars: int = 4, keep: tuple[str, ...] = ALL_METERS) -> Extraction:
    """Extract melodies from every non-drum track of a MIDI file (read with symusic)."""
    score = load_midi(path)
    tpq = score.ticks_per_quarter
    meters = [(ts.time / tpq, f"{ts.numerator}/{ts.denominator}") for ts in score.time_signatures]
    if not meters:
        meters = [(0.0, "4/4")]  # the MIDI standard's default meter
    key = ""
    if len(score.key_signatures):
        ks = score.key_signatures[0]
        key = f"{ks.key:+d}{'m' if ks.tonality else ''}"
    out = Extraction()
    tracks = [t for t in score.tracks if len(t.notes)]
    if not tracks:
        raise MelodiffError(f"{path}: the MIDI file has no notes")
    for i, track in enumerate(tracks):
        name = track.name or f"track {i}"
        if track.is_drum:
            out.dropped["drum track"] += 1
            continue
        extract_part(track_notes(track, tpq), meters, [], name, key, min_bars, out, keep)
    return out


# ---- music21 scores --------------------------------------------------------------------------------------------------
def _part_notes(part) -> list[RawNote]:
    notes = []
    for el in part.flatten().notes:
        if el.duration.isGrace:
            continue
        pitches = [p.midi for p in getattr(el, "pitches", ()) if p is not None]
        if not pitches:
            continue
        onset = float(el.offset)
        notes.append(RawNote(max(pitches), onset, onset + float(el.duration.quarterLength)))
    return notes


def _key_name(ks) -> str:
    """'G major' for a music21 Key, '+2' (sharps) / '-3' (flats) for a bare KeySignature."""
    return ks.name if hasattr(ks, "tonic") else f"{ks.sharps:+d}"


def extract_score(score, min_bars: int = 4, expand_repeats: bool = True, meters: tuple[str, ...] = ALL_METERS
                  ) -> Extraction:
    """Extract melodies from a music21 Score (one per part) written in meters of the model ``meters``, expanding
    repeats where the score has them.

    The score is changed in place (ties merged): pass a copy to keep it. music21's repeat expansion and tie
    stripping deep-copy the whole score, which dominated extraction time, so both are done only where needed."""
    from music21 import instrument, stream

    out = Extraction()
    if expand_repeats and has_repeats(score):
        score, problem = expand_score_repeats(score)
        if problem:
            out.dropped[problem] += 1
    parts = list(score.parts) if isinstance(score, stream.Score) and score.parts else [score]
    num_notes = 0
    for i, part in enumerate(parts):
        name = part.partName or (part.id if isinstance(part.id, str) else f"part {i}")
        inst = part.getInstrument(returnDefault=False)
        if isinstance(inst, instrument.UnpitchedPercussion):
            out.dropped["drum track"] += 1
            continue
        part.stripTies(inPlace=True)
        flat = part.flatten()
        changes = [(float(ts.offset), ts.ratioString) for ts in flat.getElementsByClass("TimeSignature")]
        measures = list(part.getElementsByClass("Measure"))
        downbeats = [float(m.offset) for m in measures
                     if m.barDuration is not None and m.duration.quarterLength >= m.barDuration.quarterLength]
        keys = list(flat.getElementsByClass("KeySignature"))
        key = _key_name(keys[0]) if keys else ""
        notes = _part_notes(part)
        num_notes += len(notes)
        check_notes(num_notes, "the score")
        extract_part(notes, changes, downbeats, str(name), key, min_bars, out, meters)
    return out


def extract_file(path: str | Path, min_bars: int = 4, meters: tuple[str, ...] = ALL_METERS
                 ) -> list[tuple[str, Extraction]]:
    """Extract melodies written in meters of the model ``meters`` from a user file. Returns [(piece id,
    Extraction)] (an ABC file may hold many tunes)."""
    path = Path(path)
    if not path.is_file():
        raise MelodiffError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise MelodiffError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    with naming(path):
        if suffix in MIDI_SUFFIXES:
            return [(str(path), extract_midi(path, min_bars, meters))]
        if suffix not in SCORE_SUFFIXES:
            raise MelodiffError(f"unsupported file type {suffix or '(none)'} (use MIDI, MusicXML, ABC or kern)")
        from music21 import stream

        check_file_size(path, MAX_SCORE_BYTES)
        try:
            parsed = parse_score_file(path)
        except Exception as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MelodiffError(f"could not parse the score ({msg[:200]})") from None
        if isinstance(parsed, stream.Opus):
            return [(f"{path}#{i}", extract_score(s, min_bars, meters=meters)) for i, s in enumerate(parsed.scores)]
        return [(str(path), extract_score(parsed, min_bars, meters=meters))]


@contextlib.contextmanager
def naming(path: str | Path) -> Iterator[None]:
    """Start the message of a MelodiffError raised in the block with ``path``, unless it names the file already."""
    try:
        yield
    except MelodiffError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise MelodiffError(f"{path}: {exc}") from None
