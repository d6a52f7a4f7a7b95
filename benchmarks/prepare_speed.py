"""Extraction throughput: `melodiff prepare` on a music21 source from scratch; prints work units/s and melodies/s.

usage: python benchmarks/prepare_speed.py [music21:folk] [--workers N] [--out DIR]

--out keeps the dataset (it must not exist yet: the run must start from scratch); by default a temporary folder."""

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
    parser.add_argument("--out", help="keep the dataset here (a new folder)")
    args = parser.parse_args()
    if args.out and os.path.exists(args.out):
        parser.error(f"{args.out} exists: the benchmark must prepare from scratch")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.time()
        report = prepare([args.source], args.out or tmp, workers=args.workers, quiet=True)
        seconds = time.time() - t0
    units = report["work_units"]
    print(f"{args.source}: {units} work units, {report['melodies']} melodies in {seconds:.1f} s with "
          f"{args.workers} workers ({units / seconds:.1f} units/s, {report['melodies'] / seconds:.1f} melodies/s)")


if __name__ == "__main__":
    main()
