"""Melodies to and from MIDI files (symusic), WAV rendering (the ``fluidsynth`` binary) and piano-roll PNGs.

MIDI layout written here: ``TICKS_PER_QUARTER`` = 480 ticks per quarter note, one step (a 16th note) = 120 ticks, one
tempo, the melodies' time signature (music/meter.py; all melodies of one file share it), one track per melody. Each
track ends with an "all notes off" control change (CC 123) at the melody's last step, so trailing rest survives a round
trip: ``read_midi_melody(write_midi(m))`` gives back ``m`` exactly (its meter too) for every melody with at least one
note whose ids are canonical (``Melody.from_notes(m.to_notes(), len(m), m.meter)`` == m; redundant NOTE_OFFs are
normalised away).
"""

from __future__ import annotations

import io
import math
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from melodiff.errors import MelodiffError
from melodiff.music.extract import Extraction, load_midi, naming, quantize_monophonic, track_notes
from melodiff.music.limits import check_steps
from melodiff.music.melody import MAX_PITCH, MIN_PITCH, STEPS_PER_BAR, STEPS_PER_QUARTER, Melody
from melodiff.music.meter import FILE_METERS, Meter
from melodiff.utils.io import FILE_MODE, atomic_save_png, atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from symusic import Score

TICKS_PER_QUARTER = 480
TICKS_PER_STEP = TICKS_PER_QUARTER // STEPS_PER_QUARTER
ALL_NOTES_OFF = 123  # MIDI CC number; marks the end of a melody's track
SOUNDFONT_ENV = "MELODIFF_SOUNDFONT"
SOUNDFONT_PATHS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
    "/usr/share/soundfonts/default.sf2",
)
INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"


def _as_list(melody_or_melodies: Melody | Sequence[Melody]) -> list[Melody]:
    melodies = [melody_or_melodies] if isinstance(melody_or_melodies, Melody) else list(melody_or_melodies)
    if not melodies:
        raise MelodiffError("no melodies given")
    if not all(isinstance(m, Melody) for m in melodies):
        raise MelodiffError("expected a Melody or a list of Melody objects")
    if len({m.meter for m in melodies}) > 1:
        raise MelodiffError("melodies written together must share one meter")
    return melodies


# ---- MIDI ------------------------------------------------------------------------------------------------------------
def melody_to_score(melody_or_melodies: Melody | Sequence[Melody], tempo_qpm: float = 120.0, program: int = 0,
                    velocity: int = 100) -> Score:
    """One Melody (or a list: one track each) -> a symusic Score at 480 ticks per quarter (see the module docstring)."""
    from symusic import ControlChange, Score, Tempo, TimeSignature, Track
    from symusic import Note as MidiNote

    melodies = _as_list(melody_or_melodies)
    if not (isinstance(tempo_qpm, int | float | np.integer | np.floating) and 0 < tempo_qpm <= 1000):
        raise MelodiffError(f"tempo must be in (0, 1000] quarter notes per minute, got {tempo_qpm}")
    if not (isinstance(program, int | np.integer) and 0 <= program <= 127):
        raise MelodiffError(f"MIDI program must be an integer in 0..127, got {program}")
    if not (isinstance(velocity, int | np.integer) and 1 <= velocity <= 127):
        raise MelodiffError(f"MIDI velocity must be an integer in 1..127, got {velocity}")
    score = Score(TICKS_PER_QUARTER)
    score.tempos.append(Tempo(0, qpm=float(tempo_qpm)))
    meter = melodies[0].meter
    score.time_signatures.append(TimeSignature(0, meter.numerator, meter.denominator))
    for i, melody in enumerate(melodies):
        name = "melody" if len(melodies) == 1 else f"melody {i}"
        track = Track(name=name, program=int(program), is_drum=False)
        for note in melody.to_notes():
            track.notes.append(MidiNote(note.start * TICKS_PER_STEP, (note.end - note.start) * TICKS_PER_STEP,
                                        note.pitch, int(velocity)))
        track.controls.append(ControlChange(len(melody) * TICKS_PER_STEP, ALL_NOTES_OFF, 0))
        score.tracks.append(track)
    return score


def write_midi(melody_or_melodies: Melody | Sequence[Melody], path: str | Path, tempo_qpm: float = 120.0,
               program: int = 0, velocity: int = 100) -> None:
    """Write one Melody (or a list: one track each) to a MIDI file, atomically.

    ``tempo_qpm`` in (0, 1000] quarter notes per minute, ``program`` the General MIDI program 0..127, ``velocity``
    1..127. Raises MelodiffError on bad arguments.
    """
    score = melody_to_score(melody_or_melodies, tempo_qpm, program, velocity)
    atomic_write_bytes(path, score.dumps_midi())


def read_midi_melody(path: str | Path, max_steps: int | None = None) -> Melody:
    """The first non-drum track of a MIDI file as a Melody (notes rounded to the nearest 16th-note step).

    Overlapping notes are made monophonic as in extraction (highest of simultaneous onsets kept, a note is cut where the
    next one starts); pitches outside MIDI 21..108 are dropped. The melody lasts to the track's "all notes off"
    marker (CC 123) when there is one after the last note, else to the last note's end. ``max_steps``: keep only
    the first so many steps (what follows is never read into the melody). Raises MelodiffError on a missing or
    unreadable file, one without a non-drum track with notes, a meter outside music/meter.py's FILE_METERS (the
    melody is in the model meter of the file's: 3/4, 6/8, or 4/4 also for 2/2, 2/4, 4/2 and files without one) or
    meters of two model meters, or one past the limits of melodiff.music.limits.
    """
    return read_midi_melody_cut(path, max_steps)[0]


def read_midi_melody_cut(path: str | Path, max_steps: int | None = None) -> tuple[Melody, bool]:
    """:func:`read_midi_melody`, and whether anything after ``max_steps`` was left out."""
    path = Path(path)
    if not path.is_file():
        raise MelodiffError(f"{path}: no such file")
    with naming(path):
        score = load_midi(path)
        track = next((t for t in score.tracks if not t.is_drum and len(t.notes)), None)
        if track is None:
            raise MelodiffError("the MIDI file has no non-drum track with notes")
        meter, scale = _file_meter(score)
        to_steps = scale * STEPS_PER_QUARTER / score.ticks_per_quarter  # steps per tick
        limit = math.inf if max_steps is None else max_steps
        cut = any((n.time + n.duration) * to_steps > limit for n in track.notes)
        notes = track_notes(track, score.ticks_per_quarter, limit / STEPS_PER_QUARTER / scale)
        melody = quantize_monophonic(notes, scale, 0, Extraction(), meter)
        end = max((c.time * to_steps for c in track.controls if c.number == ALL_NOTES_OFF), default=0)
        cut = cut or end > limit
        check_steps(min(end, limit), steps_per_bar=meter.steps_per_bar)
        return Melody.from_notes(melody.to_notes(), max(len(melody), round(min(end, limit))), meter), cut


def _file_meter(score: Score) -> tuple[Meter, float]:
    """The model meter of the file's time signatures (4/4 when it has none) and the factor from its quarter notes to
    melodiff's (meter.FILE_METERS); MelodiffError for other meters or a change between them."""
    meters = {f"{ts.numerator}/{ts.denominator}": ts.time for ts in reversed(score.time_signatures)} or {"4/4": 0}
    other = [(m, t) for m, t in meters.items() if m not in FILE_METERS]
    if other:
        meter, tick = min(other, key=lambda mt: mt[1])
        where = f" from quarter note {tick / score.ticks_per_quarter:g}" if tick else ""
        raise MelodiffError(f"the MIDI file is in {meter}{where}; melodiff reads melodies in "
                            f"{', '.join(FILE_METERS)} (try --track 0 to extract the parts in those meters)")
    found = {FILE_METERS[m] for m in meters}
    if len(found) > 1:
        raise MelodiffError(f"the MIDI file changes between {' and '.join(sorted(meters))}; "
                            "try --track 0 to extract the parts in one meter")
    return found.pop()


# ---- audio -----------------------------------------------------------------------------------------------------------
def find_soundfont(soundfont: str | Path | None = None) -> Path:
    """The soundfont to render with: the argument, else $MELODIFF_SOUNDFONT, else the first of SOUNDFONT_PATHS found."""
    if soundfont is not None:
        if not Path(soundfont).is_file():
            raise MelodiffError(f"{soundfont}: no such soundfont file")
        return Path(soundfont)
    env = os.environ.get(SOUNDFONT_ENV)
    if env:
        if not Path(env).is_file():
            raise MelodiffError(f"${SOUNDFONT_ENV}={env}: no such soundfont file")
        return Path(env)
    for candidate in SOUNDFONT_PATHS:
        if Path(candidate).is_file():
            return Path(candidate)
    raise MelodiffError(f"no soundfont found: install one ({INSTALL_HINT}) or set ${SOUNDFONT_ENV} to a .sf2 file")


def render_wav(midi_path: str | Path, wav_path: str | Path, soundfont: str | Path | None = None,
               sample_rate: int = 44100) -> None:
    """Render a MIDI file to a WAV file with the ``fluidsynth`` binary; the WAV appears only when complete."""
    midi_path, wav_path = Path(midi_path), Path(wav_path)
    if not midi_path.is_file():
        raise MelodiffError(f"{midi_path}: no such file")
    if not (isinstance(sample_rate, int | np.integer) and 8000 <= sample_rate <= 192000):
        raise MelodiffError(f"sample rate must be an integer in 8000..192000 Hz, got {sample_rate}")
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise MelodiffError(f"rendering audio needs the fluidsynth program: {INSTALL_HINT}")
    font = find_soundfont(soundfont)
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=wav_path.parent, prefix=f".{wav_path.stem}.", suffix=".tmp.wav")
    os.close(fd)
    try:
        cmd = [binary, "-ni", "-q", "-T", "wav", "-F", tmp, "-r", str(int(sample_rate)), str(font), str(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or Path(tmp).stat().st_size == 0:
            detail = (proc.stderr or proc.stdout).strip().splitlines()
            raise MelodiffError(f"fluidsynth could not render {midi_path}" + (f" ({detail[-1]})" if detail else ""))
        os.chmod(tmp, FILE_MODE)  # mkstemp made it 0600
        os.replace(tmp, wav_path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def fluidsynth_available() -> bool:
    try:
        find_soundfont()
    except MelodiffError:
        return False
    return shutil.which("fluidsynth") is not None


def synthesize_wav(melody: Melody, wav_path: str | Path, tempo_qpm: float = 120.0, sample_rate: int = 22050) -> None:
    """A plain built-in synthesiser (decaying harmonic tones, 16-bit mono), used when FluidSynth is not installed."""
    import wave

    step_seconds = 60.0 / tempo_qpm / STEPS_PER_QUARTER
    audio = np.zeros(int((len(melody) * step_seconds + 0.5) * sample_rate) + 1)
    for note in melody.to_notes():
        start = int(note.start * step_seconds * sample_rate)
        t = np.arange(int((note.end - note.start) * step_seconds * sample_rate)) / sample_rate
        freq = 440.0 * 2.0 ** ((note.pitch - 69) / 12.0)
        tone = sum(np.sin(2 * np.pi * k * freq * t) / k**2 for k in (1, 2, 3))
        envelope = np.exp(-3.0 * t) * np.minimum(1.0, t * 200.0) * np.minimum(1.0, (t[-1] - t) * 200.0 + 1e-9)
        audio[start:start + len(t)] += tone * envelope
    pcm = (np.clip(audio / max(np.abs(audio).max(), 1e-9), -1, 1) * 0.8 * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    atomic_write_bytes(wav_path, buf.getvalue())


# ---- piano roll ------------------------------------------------------------------------------------------------------
def draw_piano_roll(melody_or_melodies: Melody | Sequence[Melody], png_path: str | Path, title: str | None = None,
                    highlight: Sequence[tuple[int, int | None]] | tuple[int, int | None] | None = None) -> None:
    """Draw melodies as a piano roll PNG (x: bars, with bar lines, thicker every 2-bar chunk; y: MIDI pitch).

    ``highlight``: half-open spans (start_step, end_step) shaded in the plot (e.g. infilled bars); end None = to the
    end; one span may be given without the list.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    melodies = _as_list(melody_or_melodies)
    bar = melodies[0].steps_per_bar
    num_steps = max(max(len(m) for m in melodies), bar)
    spans = [] if highlight is None else [highlight] if isinstance(highlight[0], int) else list(highlight)
    spans = [(start, num_steps if end is None else end) for start, end in spans]
    for start, end in spans:
        if not 0 <= start < end:
            raise MelodiffError(f"highlight must be (start_step, end_step) with 0 <= start < end, got {(start, end)}")
    num_bars = -(-num_steps // bar)
    fig = Figure(figsize=(min(4 + num_bars * 0.6, 30), 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    plot_piano_roll(ax, melodies, num_bars, spans)
    ax.set_xlabel("bar")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title)
    if len(melodies) > 1:
        ax.legend(loc="upper right", fontsize="small")
    fig.tight_layout()
    atomic_save_png(fig, png_path)


def plot_piano_roll(ax: Axes, melodies: Sequence[Melody], num_bars: int,
                    spans: Sequence[tuple[int, int]] = ()) -> None:
    """Draw ``melodies`` on matplotlib Axes over ``num_bars`` bars (x: bars, with bar lines, thicker every 2-bar
    chunk; y: MIDI pitch), one colour per melody (labelled for a legend if more than one), ``spans`` of steps
    (start_step, end_step) shaded."""
    from matplotlib.collections import PatchCollection
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import MaxNLocator

    pitches = [n.pitch for m in melodies for n in m.to_notes()]
    lo, hi = (min(pitches) - 2, max(pitches) + 2) if pitches else (58, 74)
    lo, hi = max(lo, MIN_PITCH - 1), min(hi, MAX_PITCH + 1)
    steps_per_bar = melodies[0].steps_per_bar if melodies else STEPS_PER_BAR
    for span in spans:
        start, end = (s / steps_per_bar for s in span)
        ax.axvspan(start, end, color="gold", alpha=0.3, lw=0, zorder=0.5)
    colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for i, melody in enumerate(melodies):
        color = colors[i % len(colors)]
        rects = [Rectangle((n.start / steps_per_bar, n.pitch - 0.4), (n.end - n.start) / steps_per_bar, 0.8)
                 for n in melody.to_notes()]  # one collection per melody: fast to draw
        ax.add_collection(PatchCollection(rects, facecolor=color, edgecolor="black", lw=0.4, alpha=0.85, zorder=2))
        if len(melodies) > 1:
            ax.plot([], [], color=color, lw=6, label=f"melody {i}")
    for bar in range(num_bars + 1):
        ax.axvline(bar, color="gray", lw=1.2 if bar % 2 == 0 else 0.6, zorder=1)
    ax.set_xlim(0, num_bars)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(lo, hi)
    cs = [p for p in range(lo, hi + 1) if p % 12 == 0]
    ax.set_yticks(cs, [f"C{p // 12 - 1}" for p in cs])


def draw_piano_roll_sheet(rows: Sequence[tuple[str, Sequence[Melody]]], png_path: str | Path,
                          title: str | None = None) -> None:
    """A PNG grid of piano rolls: one grid row per (label, melodies), one melody per cell, every cell on the same
    bar scale (the longest melody's bars)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    num_cols = max((len(melodies) for _, melodies in rows), default=0)
    if not rows or not num_cols:
        raise MelodiffError("draw_piano_roll_sheet needs at least one melody")
    num_bars = max(1, *(-(-len(m) // m.steps_per_bar) for _, melodies in rows for m in melodies))
    fig = Figure(figsize=(num_cols * min(2 + num_bars * 0.2, 8), 0.4 + 1.8 * len(rows)), dpi=72)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(rows), num_cols, squeeze=False)
    for (label, melodies), ax_row in zip(rows, axes):
        for col, ax in enumerate(ax_row):
            if col < len(melodies):
                plot_piano_roll(ax, [melodies[col]], num_bars)
                ax.tick_params(labelsize="x-small")
            else:
                ax.set_axis_off()
        ax_row[0].set_ylabel(label, fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_save_png(fig, png_path)
