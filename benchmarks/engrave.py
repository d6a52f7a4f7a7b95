"""Time to engrave one 64-bar melody as sheet music: MusicXML (music21) and SVG (Verovio), what `--sheet` adds to each
melody. Prints the first run (with importing music21 and Verovio) and the median of the runs after it.
usage: python benchmarks/engrave.py [--bars 64] [--runs 5]"""

from __future__ import annotations

import argparse
import statistics
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5, help="timed runs after the first (default 5)")
    args = parser.parse_args()
    from melodiff.pipeline import Pipeline

    melody = Pipeline.from_pretrained().generate(args.bars, 1, seed=0, form="none")[0]  # a melody of the shipped model
    loaded = "music21" in sys.modules or "verovio" in sys.modules
    from melodiff.music import notation

    def engrave() -> tuple[float, float, int]:
        start = time.perf_counter()
        musicxml = notation.to_musicxml(melody, f"engrave benchmark, {args.bars} bars")
        middle = time.perf_counter()
        pages = notation.engrave(musicxml)
        return middle - start, time.perf_counter() - middle, len(pages)

    first = engrave()
    runs = [engrave() for _ in range(args.runs)]
    total = statistics.median(a + b for a, b, _ in runs)
    print(f"{args.bars} bars, {melody.num_notes} notes, {first[2]} SVG page(s)")
    print(f"first run{' (music21 already imported)' if loaded else ', with imports'}: "
          f"{first[0] + first[1]:.2f} s (MusicXML {first[0]:.2f} s, SVG {first[1]:.2f} s)")
    print(f"median of {args.runs} runs: {total:.2f} s (MusicXML {statistics.median(a for a, _, _ in runs):.2f} s, "
          f"SVG {statistics.median(b for _, b, _ in runs):.2f} s)")


if __name__ == "__main__":
    main()
