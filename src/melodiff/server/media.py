"""Melodies the studio holds, and their files: uploads and pasted ABC in (MIDI, MusicXML, ABC, kern); MIDI, WAV,
MusicXML, ABC and engraved SVG out.

Clients never name server paths: an upload's bytes are written to a fresh temporary folder under a fixed name (only
the suffix comes from the client's file name, and only from a fixed list), read, and deleted."""

from __future__ import annotations

import functools
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from melodiff.errors import MelodiffError
from melodiff.music import notation
from melodiff.music.extract import MIDI_SUFFIXES, SCORE_SUFFIXES, extract_file
from melodiff.music.melody import Melody
from melodiff.music.meter import FILE_METERS, METERS
from melodiff.music.midi_io import (
    fluidsynth_available,
    melody_to_score,
    read_midi_melody_cut,
    render_wav,
    synthesize_wav,
)
from melodiff.server.schemas import MelodyOut, NoteOut

MAX_UPLOADED_MELODIES = 16  # a score with many parts or an ABC book yields at most this many melodies
LONGEST_BAR = max(m.steps_per_bar for m in METERS.values())  # steps: 4/4's 16


class NotMusic(MelodiffError):
    """An upload that is not a file type melodiff reads (HTTP 415)."""


@dataclass
class StoredMelody:
    id: str
    melody: Melody
    label: str
    regenerated: tuple[int, int] | None = None  # steps
    parents: list[str] = field(default_factory=list)

    def out(self) -> MelodyOut:
        notes = [NoteOut(pitch=n.pitch, start=n.start, end=n.end) for n in self.melody.to_notes()]
        return MelodyOut(id=self.id, label=self.label, num_steps=len(self.melody),
                         num_bars=self.melody.num_bars, meter=self.melody.meter.name,
                         steps_per_bar=self.melody.steps_per_bar, notes=notes, regenerated=self.regenerated,
                         parents=self.parents)


class MelodyStore:
    """The last ``capacity`` melodies made or uploaded, by id (in memory; they go when the server stops)."""

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self._items: OrderedDict[str, StoredMelody] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, melody: Melody, label: str, regenerated: tuple[int, int] | None = None,
            parents: list[str] | None = None) -> StoredMelody:
        item = StoredMelody(uuid.uuid4().hex, melody, label, regenerated, parents or [])
        with self._lock:
            self._items[item.id] = item
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return item

    def get(self, melody_id: str) -> StoredMelody:
        with self._lock:
            item = self._items.get(melody_id)
        if item is None:
            raise KeyError(f"no melody {melody_id} on this server (it keeps the last {self.capacity} in memory, "
                           "until it stops): generate or upload it again")
        return item


# ---- uploads -----------------------------------------------------------------------------------------------------
def sniff_suffix(filename: str, data: bytes) -> str:
    """The file type of an upload, as a suffix extract.py reads: by content for MIDI and compressed MusicXML, else by
    the file name's suffix. Raises NotMusic for anything that is not a music file we read."""
    head = data[:512].lstrip()
    if data.startswith(b"MThd"):
        return ".mid"
    if data.startswith(b"PK\x03\x04"):
        return ".mxl"
    suffix = Path(filename or "").suffix.lower()
    if suffix in MIDI_SUFFIXES or suffix == ".mxl":
        raise NotMusic(f"{display_name(filename)} is not a {suffix[1:].upper()} file (wrong header)")
    if suffix in SCORE_SUFFIXES:
        return suffix
    if head.startswith(b"<?xml") or b"<score-partwise" in head or b"<score-timewise" in head:
        return ".musicxml"
    if head.startswith(b"X:") or b"\nK:" in data[:4096]:
        return ".abc"
    raise NotMusic(f"{display_name(filename)} is not a music file melodiff reads (MIDI, MusicXML, ABC or kern)")


def read_upload(filename: str, data: bytes, max_bars: int, suffix: str | None = None,
                name: str | None = None) -> tuple[list[tuple[Melody, str]], str]:
    """An uploaded file's melodies as [(melody, label)] and a message saying what was read and what was cut.

    MIDI: its first non-drum track, as ``melodiff infill tune.mid`` reads it. Scores: melodiff's extraction (the
    meters of music/meter.py's FILE_METERS, one melody per part, split at whole bars of rest; see docs/DATA.md). Each
    melody is in the model meter of its file's (4/4, 3/4 or 6/8), its bars counted in that meter. Melodies longer
    than ``max_bars`` bars are cut to that length; none found in those meters is a MelodiffError naming them.
    ``suffix`` (e.g. ".abc") overrides the file type found from the name and the bytes; ``name`` is what messages and
    labels call the file (default: the file name)."""
    name = name or display_name(filename)
    if not data:
        raise MelodiffError(f"{name} is empty")
    suffix = suffix or sniff_suffix(filename, data)
    with tempfile.TemporaryDirectory(prefix="melodiff-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        path.write_bytes(data)
        try:
            if suffix in MIDI_SUFFIXES:
                # never built whole (a far note costs nothing): read as far as the longest bars reach
                melody, cut = read_midi_melody_cut(path, max_bars * LONGEST_BAR)
                melody = melody.with_ids(melody.ids[:max_bars * melody.steps_per_bar])
                if not melody.num_notes:
                    raise MelodiffError(f"{name}: no notes in the first {max_bars} bars")
                found, dropped = [(melody, name)], {}
            else:
                found, dropped, cut = [], {}, False
                for piece, extraction in extract_file(path, min_bars=1):
                    tag = piece.partition("#")[2]
                    for m in extraction.melodies:
                        found.append((m.melody, f"{name}{' #' + tag if tag else ''} {m.part}".strip()))
                    for reason, count in extraction.dropped.items():
                        dropped[reason] = dropped.get(reason, 0) + count
        except MelodiffError as exc:
            raise MelodiffError(str(exc).replace(str(path), name)) from None
    if not found:
        why = ", ".join(f"{reason} ({count})" for reason, count in dropped.items()) or "no notes"
        raise MelodiffError(f"{name}: no monophonic melody found ({why}); melodiff reads melodies in "
                            f"{', '.join(FILE_METERS)}")
    notes = [f"read {len(found)} melod{'y' if len(found) == 1 else 'ies'} from {name}"]
    if len(found) > MAX_UPLOADED_MELODIES:
        notes.append(f"kept the first {MAX_UPLOADED_MELODIES}")
        found = found[:MAX_UPLOADED_MELODIES]
    if cut or any(len(m) > max_bars * m.steps_per_bar for m, _ in found):
        notes.append(f"cut to the first {max_bars} bars")
        found = [(m.with_ids(m.ids[:max_bars * m.steps_per_bar]), label) for m, label in found]
    return found, "; ".join(notes)


def read_abc_text(text: str, max_bars: int) -> tuple[list[tuple[Melody, str]], str]:
    """The melodies of ABC text pasted into the studio, read as an uploaded .abc file is (:func:`read_upload`); labelled
    with the tune's title (its first T: line), each in its meter. Text that is not ABC or has no melody in a meter
    melodiff reads (:func:`read_upload`): a one-line MelodiffError."""
    if "K:" not in text:
        raise MelodiffError("the pasted text is not an ABC tune: it has no K: (key) line")
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("T:") and line[2:].strip()), "")
    name = "pasted ABC" + (f" “{' '.join(title.split())[:60]}”" if title else "")
    try:
        return read_upload("pasted.abc", text.encode("utf-8"), max_bars, suffix=".abc", name=name)
    except MelodiffError as exc:
        message = " ".join(str(exc).split())  # music21's messages may span lines
        raise MelodiffError(message if len(message) <= 300 else message[:297] + "...") from None


def display_name(filename: str) -> str:
    """A client's file name, for messages only: its last component, printable, at most 80 characters."""
    name = Path((filename or "upload").replace("\\", "/")).name or "upload"
    return "".join(c if c.isprintable() else "?" for c in name)[:80]


# ---- downloads ---------------------------------------------------------------------------------------------------
def midi_bytes(melody: Melody, tempo_qpm: float, program: int) -> bytes:
    return melody_to_score(melody, tempo_qpm, program).dumps_midi()


@functools.lru_cache(maxsize=32)
def sheet(melody: Melody, title: str, tempo_qpm: float) -> tuple[str, str, str]:
    """(MusicXML, ABC, the first engraved SVG page) of a melody in its Krumhansl-Kessler key (music/notation.py);
    remembered for the last 32 melodies and tempos asked for. Raises NotationError (422) for what cannot be written."""
    key = notation.resolve_key(melody, None)  # found once for both files
    musicxml = notation.to_musicxml(melody, title, key, tempo_qpm)
    return musicxml, notation.to_abc(melody, title, key, tempo_qpm), notation.engrave(musicxml)[0]


def wav_bytes(melody: Melody, tempo_qpm: float, program: int) -> bytes:
    """The melody as WAV: FluidSynth with a General MIDI soundfont when installed, else the built-in synthesiser."""
    with tempfile.TemporaryDirectory(prefix="melodiff-wav-") as tmp:
        wav = Path(tmp) / "melody.wav"
        if melody.num_notes and fluidsynth_available():  # FluidSynth writes nothing for silence
            midi = Path(tmp) / "melody.mid"
            midi.write_bytes(midi_bytes(melody, tempo_qpm, program))
            render_wav(midi, wav)
        else:
            synthesize_wav(melody, wav, tempo_qpm)
        return wav.read_bytes()
