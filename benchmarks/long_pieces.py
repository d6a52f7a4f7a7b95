"""Long pieces with the shipped model (Pipeline.from_pretrained()), default sampler (DPM-Solver++ 50), one sample,
seed 0 (docs/SCALING.md):

- infill 2 bars (1025-1026) of a 2,048-bar piece: `melodiff infill` in a fresh process (wall time including import
  and loading, peak RSS; targets <= 5 s and <= 1 GB), and `Pipeline.infill_bars` in this process after loading;
- generate 64 and 1,024 bars with `Pipeline.generate` after loading (target: 1,024 bars <= 25 x the 64-bar time),
  and `melodiff generate --bars 1024` in a fresh process (wall time, peak RSS).

The 2,048-bar piece is a seeded random walk in C major (notes of 2-8 16ths, a rest now and then), written to MIDI.
The fresh processes are started before this one loads torch, so their peak RSS is their own (give or take the
~20 MB of this process at that time: see tests/hostile_files.run_measured).

usage: python benchmarks/long_pieces.py [--bars 2048]"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hostile_files import run_measured
from melodiff.music.melody import Melody, Note
from melodiff.music.midi_io import write_midi

SCALE = np.array([0, 2, 4, 5, 7, 9, 11])


def long_piece(bars: int, seed: int = 0) -> Melody:
    """A seeded random walk over C major, ``bars`` bars of 16 steps."""
    rng = np.random.default_rng(seed)
    notes, t, degree, end = [], 0, 14, bars * 16
    while t < end:
        length = int(rng.choice([2, 2, 4, 4, 4, 6, 8]))
        if rng.random() < 0.08:  # a rest
            t += length
            continue
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 7, 21))
        pitch = 48 + 12 * (degree // 7) + int(SCALE[degree % 7])
        notes.append(Note(pitch, t, min(t + length, end)))
        t += length
    return Melody.from_notes(notes)


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=2048)
    args = parser.parse_args()
    middle = args.bars // 2  # 0-based first bar of the two infilled, on a chunk boundary
    with tempfile.TemporaryDirectory() as tmp:
        piece = long_piece(args.bars)
        path = Path(tmp) / "piece.mid"
        write_midi(piece, path)
        print(f"piece: {args.bars} bars, {len(piece.to_notes())} notes ({path.stat().st_size / 1024:.0f} KiB MIDI)")
        print("\n| fresh process | exit | wall time | peak RSS |\n|---|---|---|---|")
        for label, argv in (
                (f"melodiff infill piece.mid --bars {middle + 1}-{middle + 2}",
                 ["infill", str(path), "--bars", f"{middle + 1}-{middle + 2}", "--seed", "0", "--out", "infill"]),
                ("melodiff generate --bars 64", ["generate", "--bars", "64", "--seed", "0", "--out", "gen64"]),
                ("melodiff generate --bars 1024", ["generate", "--bars", "1024", "--seed", "0", "--out", "gen1024"])):
            code, err, seconds, rss = run_measured(argv, tmp)
            print(f"| `{label}` | {code} | {seconds:.2f} s | {rss / 2**20:.0f} MiB |")
            if code:
                print(err)

        import torch

        from melodiff import Pipeline

        t0 = time.perf_counter()
        pipe = Pipeline.from_pretrained()
        load = time.perf_counter() - t0
        pipe.generate(2, 1, seed=1)  # warm-up
        infill = timed(pipe.infill_bars, piece, [(middle, middle + 2)], 1, 0)
        g64 = timed(pipe.generate, 64, 1, 0)
        g1024 = timed(pipe.generate, 1024, 1, 0)
    print(f"\nin this process (torch {torch.__version__}, {torch.get_num_threads()} threads; loading took "
          f"{load:.2f} s):")
    print(f"- Pipeline.infill_bars, 2 bars of {args.bars}: {infill:.2f} s")
    print(f"- Pipeline.generate 64 bars: {g64:.2f} s; 1,024 bars: {g1024:.2f} s = {g1024 / g64:.1f} x "
          f"({pipe.planned_calls(32)} vs {pipe.planned_calls(512)} denoiser calls)")


if __name__ == "__main__":
    main()
