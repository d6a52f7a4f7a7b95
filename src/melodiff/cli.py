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


def _cmd_train_vae(args: argparse.Namespace) -> None:
    from melodiff.vae.train import train_vae

    train_vae(args.data, args.out, args.preset, steps=args.steps, seed=args.seed,
              max_seconds=args.max_minutes * 60 if args.max_minutes else float("inf"), progress=not args.quiet)
    if not args.quiet:
        print(f"VAE checkpoint in {args.out}")


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

    p = sub.add_parser("train-vae", help="train (or resume) the 2-bar melody VAE")
    p.add_argument("--data", required=True, help="prepared dataset folder")
    p.add_argument("--out", required=True, help="checkpoint folder (resumes if it holds a run)")
    p.add_argument("--preset", default="cpu", help="paper | magenta-small | cpu | tiny (default cpu)")
    _add_run_args(p)
    p.set_defaults(func=_cmd_train_vae)
    return parser


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=_positive_int, default=None, help="training steps (default: the preset's)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the preset's)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop with a checkpoint after this long; rerun "
                   "the same command to resume")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value}")
    return value


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
