"""The input contract: the largest inputs melodiff reads or makes (docs/LIMITS.md), in one place.

Each limit is checked before anything proportional to it is allocated, so a small hostile file (a 45-byte MIDI whose
second note lies 134 million quarter notes after the first) is refused in milliseconds instead of taking gigabytes.
Every refusal is a MelodiffError: one line, exit 2 on the command line, 4xx in the studio."""

from __future__ import annotations

from pathlib import Path

from melodiff.errors import MelodiffError
from melodiff.music.melody import STEPS_PER_BAR

MAX_BARS = 4096  # the longest piece read or made: 2.3 hours at 120 quarter notes per minute, 65,536 steps
MAX_STEPS = MAX_BARS * STEPS_PER_BAR  # the most steps of any melody: 4/4's bars are the longest (music/meter.py)
MAX_NOTES = 200_000  # notes in one input file, all tracks or parts together (a dense 4,096-bar melody has ~65,000)
MAX_MIDI_BYTES = 16 * 2**20  # the largest MIDI file (Lakh MIDI's largest is about 4 MB)
MAX_SCORE_BYTES = 8 * 2**20  # the largest MusicXML/ABC/kern file: music21 takes about 100 bytes of memory per byte
MAX_SEED = 2**31 - 1  # seeds are 0..MAX_SEED everywhere (command line, API, studio)


def check_file_size(path: str | Path, limit: int) -> None:
    """Refuse a file larger than ``limit`` bytes (before reading it)."""
    size = Path(path).stat().st_size
    if size > limit:
        raise MelodiffError(f"{path}: the file is {_mib(size)}; melodiff reads files up to {_mib(limit)}")


def check_notes(count: int, where: str = "the file") -> None:
    if count > MAX_NOTES:
        raise MelodiffError(f"{where} has {count:,} notes; melodiff reads at most {MAX_NOTES:,}")


def check_steps(steps: float, where: str = "the melody", steps_per_bar: int = STEPS_PER_BAR) -> None:
    """Refuse a melody that would last more than MAX_BARS bars of ``steps_per_bar`` steps (``steps`` 16th-note
    steps; may be a float or huge)."""
    if not steps <= MAX_BARS * steps_per_bar:
        raise MelodiffError(f"{where} would last {_bars(steps, steps_per_bar)} bars; melodiff reads at most "
                            f"{MAX_BARS} bars")


def _bars(steps: float, steps_per_bar: int) -> str:
    return f"{steps / steps_per_bar:,.0f}" if steps < 1e15 else "more than 10^14"


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
