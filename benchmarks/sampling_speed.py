"""Generation speed of a model folder on this machine: seconds per batch for each sampler, end to end (diffusion +
VAE decoding), and peak resident memory. usage: python benchmarks/sampling_speed.py [--model default] [--bars 32]"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from melodiff.diffusion.sampling import Sampler
from melodiff.pipeline import Pipeline, SamplingOptions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--bars", type=int, default=32)
    parser.add_argument("--num", type=int, default=4)
    args = parser.parse_args()
    pipe = Pipeline.from_pretrained(args.model)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {args.num} x {args.bars} bars")
    for sampler, steps in ((Sampler.DPM_SOLVER, 10), (Sampler.DPM_SOLVER, 20), (Sampler.DDIM, 50),
                           (Sampler.DDPM, None)):
        t0 = time.perf_counter()
        pipe.generate(args.bars, args.num, seed=0, options=SamplingOptions(sampler=sampler, steps=steps))
        seconds = time.perf_counter() - t0
        label = sampler.value + (f" {steps} steps" if steps else f" {pipe.schedule.num_steps} steps")
        print(f"{label:>22}: {seconds:6.2f} s per batch ({seconds / args.num:.2f} s per melody)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
