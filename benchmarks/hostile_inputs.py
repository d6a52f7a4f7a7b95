"""Peak memory and time of melodiff on hostile input files (tests/hostile_files.py), each command in a process of its
own; prints one row per file and command: exit code, seconds, peak RSS, and the error line.

usage: python benchmarks/hostile_inputs.py [--commands infill prepare]

Before the hardening issue the 45-byte bomb took `infill` to 8-14 GB and `prepare` past 8 GB (docs/LIMITS.md)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the makers of the hostile files

from hostile_files import MIDI_INPUTS, SCORE_INPUTS, run_measured

COMMANDS = {
    "infill": lambda path: ["infill", str(path), "--bars", "1-2", "--seed", "0", "--out", "out"],
    "continue": lambda path: ["continue", str(path), "--seed", "0", "--out", "out"],
    "prepare": lambda path: ["prepare", str(path), "--workers", "1", "--out", "data"],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--commands", nargs="+", choices=sorted(COMMANDS), default=["infill", "prepare"])
    args = parser.parse_args()
    print(f"{'file':<20} {'command':<9} {'exit':>4} {'seconds':>8} {'peak RSS':>10}  error")
    with tempfile.TemporaryDirectory() as tmp:
        for make in {**MIDI_INPUTS, **SCORE_INPUTS}.values():
            path = make(Path(tmp))
            for command in args.commands:
                with tempfile.TemporaryDirectory() as cwd:
                    code, err, seconds, rss = run_measured(COMMANDS[command](path), cwd)
                line = (err.strip().splitlines() or [""])[-1]
                print(f"{path.name:<20} {command:<9} {code:>4} {seconds:>8.2f} {rss / 2**20:>7.0f} MiB  {line[:100]}")


if __name__ == "__main__":
    main()
