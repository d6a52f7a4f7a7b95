"""Generation speed and memory of a model folder on this machine (issues 4 and 6), printed as a table:

- cold start: ``import melodiff`` + ``Pipeline.from_pretrained`` in a fresh process;
- the first 64-bar melody after loading, default sampler, written to a MIDI file; then 32 melodies in one batch;
- every sampler (DPM-Solver++ 10/20/50, DDIM 20/50, DDPM 1000) for one melody and for the batch;
- the denoiser's achieved GFLOP/s (FLOPs counted by torch's FlopCounterMode) against this machine's measured fp32
  matmul GFLOP/s;
- peak resident memory of the ``melodiff generate`` command (README command 1 without audio).

usage: python benchmarks/sampling_speed.py [--model default] [--bars 64] [--batch 32]"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from melodiff.diffusion.sampling import Sampler
from melodiff.music.midi_io import write_midi
from melodiff.pipeline import Pipeline, SamplingOptions

SAMPLERS = ((Sampler.DPM_SOLVER, 10), (Sampler.DPM_SOLVER, 20), (Sampler.DPM_SOLVER, 50), (Sampler.DDIM, 20),
            (Sampler.DDIM, 50), (Sampler.DDPM, None))


def cold_start(model: str) -> float:
    code = ("import time; t = time.perf_counter(); from melodiff import Pipeline; Pipeline.from_pretrained("
            f"{model!r}); print(time.perf_counter() - t)")
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def matmul_gflops(size: int = 1024, repeats: int = 20) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - t0) / 1e9


def denoiser_gflops(pipe: Pipeline, batch: int, chunks: int, calls: int = 20) -> float:
    x = torch.randn(batch, min(chunks, pipe.window_chunks), pipe.normalizer.latent_dim)
    level = torch.full((batch,), 0.5)
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            pipe.denoiser(x, level)
        pipe.denoiser(x, level)
        t0 = time.perf_counter()
        for _ in range(calls):
            pipe.denoiser(x, level)
    return counter.get_total_flops() * calls / (time.perf_counter() - t0) / 1e9


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def cli_peak_rss_mib(model: str, bars: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        subprocess.run([sys.executable, "-m", "melodiff.cli", "-q", "generate", "--model", model, "--bars", str(bars),
                        "-n", "4", "--png", "--seed", "0", "--out", out], check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="default")
    parser.add_argument("--bars", type=int, default=64)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; model {args.model}")
    print(f"cold start (import + load, fresh process): {cold_start(args.model):.2f} s")
    pipe = Pipeline.from_pretrained(args.model)
    with tempfile.TemporaryDirectory() as out:
        first = timed(lambda: write_midi(pipe.generate(args.bars, 1, seed=0)[0], Path(out) / "first.mid"))
    print(f"first {args.bars}-bar melody after load (default sampler, to MIDI): {first:.2f} s")
    print(f"\n| sampler | 1 × {args.bars} bars | {args.batch} × {args.bars} bars |\n|---|---|---|")
    for sampler, steps in SAMPLERS:
        options = SamplingOptions(sampler=sampler, steps=steps)
        one = timed(pipe.generate, args.bars, 1, seed=0, options=options)
        batch = timed(pipe.generate, args.bars, args.batch, seed=0, options=options)
        label = f"{sampler.value} {steps or pipe.schedule.num_steps}"
        print(f"| {label} | {one:.2f} s | {batch:.2f} s |")
    chunks = -(-args.bars // 2)
    peak = matmul_gflops()
    for batch in (1, args.batch):
        achieved = denoiser_gflops(pipe, batch, chunks)
        print(f"\ndenoiser, batch {batch}: {achieved:.1f} GFLOP/s = {100 * achieved / peak:.0f} % of this machine's "
              f"fp32 matmul ({peak:.1f} GFLOP/s, 1024² matrices)")
    rss = cli_peak_rss_mib(args.model, args.bars)
    print(f"peak RSS of `melodiff generate --bars {args.bars} -n 4 --png`: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
