"""A synthetic Lakh-like MIDI corpus for `melodiff prepare` at scale (benchmarks/prepare_memory.py): multi-track
files written byte by byte (no MIDI library), deterministic per file, so the first N files of a larger set are the
same files as a set of N.

Each file: format 1, a conductor track (tempo, time signature) and 1-8 pitched tracks of 16-192 bars, 71 on average
(random-walk pitches, 16th-grid durations with some off-grid onsets, rests, chords in 5-60 % of onsets, velocity-0
note-offs), a drum track in half of them; 5 % in 3/4 or 6/8 (dropped by meter), 1 % corrupt, 1 % byte copies of
the previous file (duplicate melodies), 1 % a single bar (too short). Files go into folders of 1,000 (``000/``,
``001/``, ...). About 11 KB a file (Lakh MIDI's files are larger: more tracks and notes per file).

usage: python benchmarks/synthetic_midi.py OUT [--files 20000] [--seed 0]"""

from __future__ import annotations

import argparse
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # MIDI's variable-length numbers
from hostile_files import vlq

PER_FOLDER = 1000


def _track(events: list[tuple[int, bytes]]) -> bytes:
    """(absolute tick, event bytes), sorted here -> an MTrk chunk with end-of-track."""
    body, now = bytearray(), 0
    for tick, data in sorted(events, key=lambda e: e[0]):
        body += vlq(tick - now) + data
        now = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _pitched_track(rng: random.Random, channel: int, tpq: int, bars: int, bar_steps: int) -> bytes:
    step, chords = tpq // 4, rng.choice((0.05, 0.3, 0.6))
    events: list[tuple[int, bytes]] = [(0, bytes([0xC0 | channel, rng.randrange(128)]))]
    pitch, t, end = rng.randrange(48, 84), rng.choice((0, 0, 0, 4, 8)), bars * bar_steps
    while t < end:
        if rng.random() < 0.12:  # a rest
            t += rng.choice((2, 4, 8))
            continue
        steps = rng.choice((1, 2, 2, 2, 3, 4, 4, 6, 8, 12, 16))
        pitch = min(max(pitch + rng.choice((-7, -5, -3, -2, -1, 0, 1, 2, 3, 5, 7)), 30), 100)
        onset = t * step + (rng.randrange(-step // 3, step // 3 + 1) if rng.random() < 0.1 else 0)
        onset, offset = max(onset, 0), t * step + steps * step - 1
        chord = [pitch] + ([pitch - rng.choice((3, 4, 7))] if rng.random() < chords else [])
        for p in chord:
            events.append((onset, bytes([0x90 | channel, p, rng.randrange(40, 120)])))
            off = bytes([0x90 | channel, p, 0]) if rng.random() < 0.5 else bytes([0x80 | channel, p, 64])
            events.append((offset, off))
        t += steps
    return _track(events)


def _drum_track(rng: random.Random, tpq: int, bars: int, bar_steps: int) -> bytes:
    step, events = tpq // 4, []
    for t in range(0, bars * bar_steps, 2):
        note = (36, 38, 42)[t % 3]
        events += [(t * step, bytes([0x99, note, 100])), (t * step + step - 1, bytes([0x89, note, 0]))]
    return _track(events)


def synthetic_file(index: int, seed: int = 0) -> bytes:
    """The bytes of file ``index`` of the corpus made with ``seed``."""
    rng = random.Random(seed * 1_000_003 + index)
    kind = rng.random()
    if kind < 0.01:  # corrupt
        return b"MThd" + bytes(rng.randrange(256) for _ in range(rng.randrange(8, 200)))
    if kind < 0.02 and index > 0:  # a byte copy of the previous file
        return synthetic_file(index - 1, seed)
    tpq = rng.choice((96, 120, 192, 220, 384, 480))
    meter = (4, 2) if rng.random() < 0.95 else rng.choice(((3, 2), (6, 3)))
    bar_steps = 16 if meter == (4, 2) else 12
    bars = 1 if kind < 0.03 else int(16 * 12 ** rng.random())  # 16..192 bars, log-uniform
    qpm = rng.randrange(60, 180)
    conductor = _track([(0, b"\xff\x51\x03" + (60_000_000 // qpm).to_bytes(3, "big")),
                        (0, bytes([0xFF, 0x58, 4, meter[0], meter[1], 24, 8]))])
    tracks = [_pitched_track(rng, ch, tpq, max(1, bars - rng.randrange(0, 4)), bar_steps)
              for ch in range(rng.randint(1, 8))]
    if rng.random() < 0.5:
        tracks.append(_drum_track(rng, tpq, bars, bar_steps))
    return b"MThd" + struct.pack(">IHHH", 6, 1, 1 + len(tracks), tpq) + conductor + b"".join(tracks)


def write_corpus(out: Path, files: int, seed: int = 0) -> int:
    """Write files 0..files-1 under ``out``; returns the bytes written."""
    total = 0
    for i in range(files):
        folder = out / f"{i // PER_FOLDER:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        data = synthetic_file(i, seed)
        (folder / f"{i:06d}.mid").write_bytes(data)
        total += len(data)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    t0 = time.perf_counter()
    total = write_corpus(args.out, args.files, args.seed)
    print(f"{args.files} files, {total / 2**20:.1f} MiB, in {time.perf_counter() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
