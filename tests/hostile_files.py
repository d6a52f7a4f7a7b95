"""Hostile input files made byte by byte (no MIDI library: these are files no library would write), shared by the
hostile-input tests and benchmarks/hostile_inputs.py. Each maker writes into ``folder`` and returns the path."""

from __future__ import annotations

import os
import random
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def vlq(value: int) -> bytes:
    """A MIDI variable-length quantity (up to 2^28 - 1)."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def midi_bytes(events: list[tuple[int, bytes]], ticks_per_quarter: int = 480) -> bytes:
    """A format-0 MIDI file of (delta ticks, raw event bytes), end-of-track appended."""
    track = b"".join(vlq(delta) + data for delta, data in events) + b"\x00\xff\x2f\x00"
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, ticks_per_quarter)
    return header + b"MTrk" + struct.pack(">I", len(track)) + track


def _note(pitch: int, length: int, delta: int = 0) -> list[tuple[int, bytes]]:
    return [(delta, bytes([0x90, pitch, 100])), (length, bytes([0x80, pitch, 0]))]


def _time_signature(numerator: int, denominator_power: int) -> tuple[int, bytes]:
    return 0, bytes([0xFF, 0x58, 4, numerator, denominator_power, 24, 8])


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def bomb(folder: Path) -> Path:
    """The 45-byte file of the hardening issue: 1 tick per quarter, the second note 134 million quarters later."""
    t = b"\x00\x90\x3c\x64\x01\x80\x3c\x00\xc0\x80\x80\x00\x90\x3e\x64\x01\x80\x3e\x00\x00\xff\x2f\x00"
    return _write(folder, "bomb.mid", b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1) + b"MTrk"
                  + struct.pack(">I", len(t)) + t)


def late_note(folder: Path) -> Path:
    """A note at tick 268,434,456 (the largest 4-byte delta) at 480 ticks per quarter: 139,810 bars in."""
    return _write(folder, "late_note.mid", midi_bytes(_note(60, 240) + _note(62, 240, delta=2**28 - 1 - 240)))


def late_event(folder: Path) -> Path:
    """Two notes, then an "all notes off" marker (CC 123) near tick 2^31 - 1, at 1 tick per quarter."""
    events = _note(60, 1) + [(2**28 - 1, bytes([0xB0, 123, 0]))] * 1 + [(2**28 - 1, bytes([0xB0, 7, 100]))] * 7
    events.append((7, bytes([0xB0, 123, 0])))
    return _write(folder, "late_event.mid", midi_bytes(events, ticks_per_quarter=1))


def long_note(folder: Path) -> Path:
    """One note held for 2^28 - 1 ticks at 24 ticks per quarter (699,050 bars)."""
    return _write(folder, "long_note.mid", midi_bytes(_note(60, 2**28 - 1), ticks_per_quarter=24))


def zero_division(folder: Path) -> Path:
    """Ticks per quarter 0 (no time unit at all)."""
    return _write(folder, "tpq0.mid", midi_bytes(_note(60, 4) + _note(62, 4), ticks_per_quarter=0))


def three_four(folder: Path) -> Path:
    """A waltz: 3/4, eight bars of quarter notes (a meter melodiff reads; not hostile, kept for the tests of meters)."""
    events = [_time_signature(3, 2)] + [e for i in range(24) for e in _note(60 + i % 12, 480)]
    return _write(folder, "waltz.mid", midi_bytes(events))


def five_eight(folder: Path) -> Path:
    """5/8, eight bars of eighth notes: a meter outside every model."""
    events = [_time_signature(5, 3)] + [e for i in range(40) for e in _note(60 + i % 12, 240)]
    return _write(folder, "five_eight.mid", midi_bytes(events))


def seven_eight(folder: Path) -> Path:
    """4/4 for two bars, then 7/8."""
    events = [_time_signature(4, 2)] + [e for i in range(8) for e in _note(60 + i, 480)]
    events += [_time_signature(7, 3)] + [e for i in range(14) for e in _note(60 + i % 12, 240)]
    return _write(folder, "seven_eight.mid", midi_bytes(events))


def many_notes(folder: Path) -> Path:
    """200,001 sixteenth notes (1.6 MB): one more than melodiff reads."""
    events = [e for i in range(200_001) for e in _note(60 + i % 12, 1)]
    return _write(folder, "many_notes.mid", midi_bytes(events, ticks_per_quarter=4))


def truncated(folder: Path) -> Path:
    return _write(folder, "truncated.mid", midi_bytes(_note(60, 480) * 8)[:30])


def random_bytes(folder: Path, suffix: str = ".mid") -> Path:
    return _write(folder, f"random{suffix}", random.Random(0).randbytes(2048))


def huge_file(folder: Path) -> Path:
    """17 MiB: a valid header then padding (sparse on disk)."""
    path = folder / "huge.mid"
    with path.open("wb") as f:
        f.write(midi_bytes(_note(60, 480)))
        f.truncate(17 * 2**20)
    return path


def abc_long_note(folder: Path) -> Path:
    """An ABC tune whose second note lasts 100 million eighth notes."""
    return _write(folder, "long.abc", b"X:1\nT:long\nM:4/4\nL:1/8\nK:C\nCDEF GABc|C100000000|]\n")


def musicxml_long_note(folder: Path) -> Path:
    """A MusicXML note lasting 2^31 - 1 divisions at 1 division per quarter."""
    xml = ("<?xml version='1.0' encoding='UTF-8'?><score-partwise version='3.1'><part-list><score-part id='P1'>"
           "<part-name>x</part-name></score-part></part-list><part id='P1'><measure number='1'><attributes>"
           "<divisions>1</divisions><time><beats>4</beats><beat-type>4</beat-type></time></attributes>"
           "<note><pitch><step>C</step><octave>4</octave></pitch><duration>2147483647</duration></note>"
           "</measure></part></score-partwise>")
    return _write(folder, "long.musicxml", xml.encode())


# name -> maker; every one must be refused with one line and exit 2 by infill, continue and interpolate
MIDI_INPUTS: dict[str, Callable[[Path], Path]] = {
    "bomb": bomb, "late_note": late_note, "late_event": late_event, "long_note": long_note,
    "zero_division": zero_division, "five_eight": five_eight, "seven_eight": seven_eight, "many_notes": many_notes,
    "truncated": truncated, "random": random_bytes, "huge": huge_file,
}
SCORE_INPUTS: dict[str, Callable[[Path], Path]] = {"abc_long_note": abc_long_note,
                                                    "musicxml_long_note": musicxml_long_note}


def run_measured(argv: list[str], cwd: str | Path) -> tuple[int, str, float, int]:
    """(exit code, stderr, seconds, peak RSS in bytes) of ``python -m melodiff.cli -q argv`` in a process of its own
    (the peak counts from the memory of the process it was forked from, so it is an upper bound)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "melodiff.cli", "-q", *argv], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    err = proc.stderr.read()
    proc.stderr.close()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, err, time.perf_counter() - start, usage.ru_maxrss * 1024
