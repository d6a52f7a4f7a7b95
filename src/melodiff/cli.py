"""The `melodiff` command line: thin subcommands over the library. Exit codes: 0 ok, 2 bad input/usage, 1 bug."""

from __future__ import annotations

import argparse
import logging
import sys

from melodiff.errors import MelodiffError

EPILOG = "Exit codes: 0 success, 2 bad input or arguments (one-line error), 1 unexpected failure."


def _cmd_prepare(args: argparse.Namespace) -> None:
    from melodiff.data.prepare import PrepareConfig, prepare

    config = PrepareConfig(min_bars=args.min_bars, validation_fraction=args.validation, test_fraction=args.test)
    report = prepare(args.sources, args.out, config, workers=args.workers, quiet=args.quiet)
    if not args.quiet:
        print(f"{report['melodies']} melodies ({report['bars_total']:.0f} bars) written to {args.out}; "
              f"see {args.out}/report.md")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="melodiff", description=__doc__, epilog=EPILOG)
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summaries")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("prepare", help="extract monophonic 4/4 melodies into a dataset", epilog=(
        "examples:\n  melodiff prepare music21:folk --out data/folk\n  melodiff prepare ~/midi music21:bach --out data/mine"
    ), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sources", nargs="+", help="music21:folk | music21:classical | music21:all | music21:<collection> "
                   "| a MIDI/MusicXML/ABC/kern file or folder")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--workers", type=int, default=None, help="parallel parsers (default: number of cores)")
    p.add_argument("--min-bars", type=int, default=4, help="drop melodies shorter than this (default 4)")
    p.add_argument("--validation", type=float, default=0.05, help="validation fraction (default 0.05)")
    p.add_argument("--test", type=float, default=0.05, help="test fraction (default 0.05)")
    p.set_defaults(func=_cmd_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        args.func(args)
    except MelodiffError as exc:
        print(f"melodiff: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("melodiff: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
