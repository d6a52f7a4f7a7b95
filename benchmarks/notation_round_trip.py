"""Round trip of generated melodies through sheet music: each is written as MIDI, MusicXML and ABC, and the notes
music21 reads back from the MusicXML and from the ABC must equal the MIDI's exactly (pitch, onset, duration in
16th-note steps), and the melody read back from each (notation.read_melody) must be the MIDI's, meter and all.
Prints the count of mismatches (0 expected) and the keys the melodies were written in.
usage: python benchmarks/notation_round_trip.py [--num 200] [--bars 32] [--seed 0] [--meter 4/4|3/4|6/8]"""

from __future__ import annotations

import argparse
import collections
import tempfile
import time
from pathlib import Path

from melodiff.music import notation
from melodiff.music.midi_io import read_midi_melody, write_midi
from melodiff.pipeline import Pipeline, SamplingOptions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--num", type=int, default=200)
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--meter", default="4/4", help="the meter the shipped model writes them in")
    args = parser.parse_args()
    pipeline = Pipeline.from_pretrained(meter=args.meter)
    start = time.perf_counter()
    melodies = []
    for first in range(0, args.num, args.batch):
        count = min(args.batch, args.num - first)
        melodies += pipeline.generate(args.bars, count, args.seed + first, SamplingOptions())
    generated = time.perf_counter()
    failures, keys, notes = collections.Counter(), collections.Counter(), 0
    with tempfile.TemporaryDirectory() as tmp:
        for i, melody in enumerate(melodies):
            midi = Path(tmp) / f"{i}.mid"
            write_midi(melody, midi)
            whole = read_midi_melody(midi)
            whole = whole.with_ids(whole.padded(whole.steps_per_bar).ids)  # sheet music fills the last bar with rest
            expected = whole.to_notes()
            notes += len(expected)
            key = notation.resolve_key(melody, None)
            keys[notation.key_text(key)] += 1
            title = f"round trip, seed {args.seed}, #{i + 1}"
            for fmt, text in (("musicxml", notation.to_musicxml(melody, title, key)),
                              ("abc", notation.to_abc(melody, title, key))):
                if notation.read_notes(text, fmt) != expected or notation.read_melody(text, fmt) != whole:
                    failures[fmt] += 1
                    print(f"melody {i}: the melody read back from its {fmt} differs from the MIDI's")
    done = time.perf_counter()
    print(f"{len(melodies)} melodies of {args.bars} bars of {args.meter} ({notes} notes) in {len(keys)} keys: "
          + ", ".join(f"{k} {n}" for k, n in keys.most_common()))
    print(f"MusicXML mismatches: {failures['musicxml']}, ABC mismatches: {failures['abc']}")
    print(f"generating {generated - start:.1f} s, writing and reading back {done - generated:.1f} s")


if __name__ == "__main__":
    main()
