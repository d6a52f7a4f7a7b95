"""Extraction throughput: `melodiff prepare` on a music21 source from scratch; prints work units/s and melodies/s.

usage: python benchmarks/prepare_speed.py [music21:folk] [--workers N]"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from melodiff.data.prepare import prepare


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("source", nargs="?", default="music21:folk")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        t0 = time.time()
        report = prepare([args.source], out, workers=args.workers, quiet=True)
        seconds = time.time() - t0
    units = report["work_units"]
    print(f"{args.source}: {units} work units, {report['melodies']} melodies in {seconds:.1f} s with "
          f"{args.workers} workers ({units / seconds:.1f} units/s, {report['melodies'] / seconds:.1f} melodies/s)")


if __name__ == "__main__":
    main()
