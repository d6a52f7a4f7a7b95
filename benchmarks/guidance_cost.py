"""What the guide (diffusion/guide.py) and cadence decoding (Pipeline.cadence) cost: seconds per melody of
``Pipeline.generate`` with both off (the paper's sampling), with each alone, with the defaults (key and tonic ending
steered, endings decoded again) and with density and style asked for, for one melody and for a batch, default
sampler and form. Each setting is timed ``--repeats`` times in turn
(interleaved, so drift in the machine's load hits all of them alike); the median is printed, with its ratio to
the paper's sampling. Targets: controls at most 1.5x the sampling time (issue 22); no slower per melody than before
(issue 18).

usage: python benchmarks/guidance_cost.py [--model default] [--bars 32] [--batch 32] [--repeats 5]"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from melodiff.music.controls import Controls
from melodiff.options import CADENCE, DEFAULT_GUIDANCE
from melodiff.pipeline import Pipeline, SamplingOptions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    pipe = Pipeline.from_pretrained(args.model)
    if pipe.guide is None:
        raise SystemExit(f"{args.model}: no guide to measure")
    settings = {
        "unguided, no cadence (the paper's)": (SamplingOptions(guidance=0.0, cadence=0), None),
        f"guidance {DEFAULT_GUIDANCE:g} (key, ending), no cadence": (SamplingOptions(cadence=0), None),
        f"unguided, cadence {CADENCE}": (SamplingOptions(guidance=0.0), None),
        f"defaults: guidance {DEFAULT_GUIDANCE:g}, cadence {CADENCE}": (SamplingOptions(), None),
        "defaults + density, style": (SamplingOptions(), Controls(density=4.0, style=pipe.styles[0])),
    }
    print(f"{args.model}, {args.bars} bars, torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"| setting | 1 melody, s | batch of {args.batch}, s / melody | vs unguided |")
    print("|---|---|---|---|")
    pipe.generate(args.bars, 1, seed=0)  # warm-up
    times = {name: {1: [], args.batch: []} for name in settings}
    for r in range(args.repeats):
        for name, (options, controls) in settings.items():
            for n in (1, args.batch):
                t0 = time.perf_counter()
                pipe.generate(args.bars, n, seed=r, options=options, controls=controls, form="auto")
                times[name][n].append((time.perf_counter() - t0) / n)
    base = statistics.median(times["unguided, no cadence (the paper's)"][args.batch])
    for name in settings:
        one, many = (statistics.median(times[name][n]) for n in (1, args.batch))
        print(f"| {name} | {one:.3f} | {many:.4f} | {many / base:.2f}x |")


if __name__ == "__main__":
    main()
