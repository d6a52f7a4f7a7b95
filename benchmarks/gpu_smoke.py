"""GPU check, self-contained, about 5-10 minutes on one GPU (docs/SCALING.md). It prints only what it measures:

1. the GPU's bf16 dense matmul TFLOP/s (8192² matrices);
2. a small dataset made here: synthetic MIDI (benchmarks/synthetic_midi.py) through `melodiff prepare`;
3. the paper-preset VAE trained for ``--vae-steps`` steps, then the data encoded on the GPU (the paper's 42 dims);
4. the paper-preset denoiser trained for ``--diffusion-steps`` steps (melodiff's trainer: steps/s, samples/s, peak
   memory), and the denoiser's training step alone (forward, backward, Adam, bf16 autocast) with its FLOPs counted
   by FlopCounterMode: achieved TFLOP/s and share of the measured bf16 peak at the paper's batch of 64 (target
   >= 40 %), at larger batches, and with torch.compile (CUDA graphs) at 64;
5. with two or more GPUs, the same denoiser training under `torchrun --nproc_per_node 2` (DDP over NCCL);
6. generation and infilling on the GPU with the model just trained (bundled) and with the shipped model: seconds,
   samples/s, peak memory.

usage: python benchmarks/gpu_smoke.py [--device cuda] [--preset paper] [--files 1500] [--out DIR]
       python benchmarks/gpu_smoke.py --device cpu --preset tiny   # the script's own check on a CPU machine"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from flops import backward_step, count_flops, training_loss
from long_pieces import long_piece
from synthetic_midi import write_corpus

from melodiff import Pipeline
from melodiff.bundle import bundle_model
from melodiff.data.prepare import prepare
from melodiff.device import autocast
from melodiff.diffusion import config as diffusion_config
from melodiff.diffusion.train import train_diffusion
from melodiff.loading import load_vae
from melodiff.vae import config as vae_config
from melodiff.vae.encode import encode_dataset
from melodiff.vae.magenta import PAPER_DIMS
from melodiff.vae.train import train_vae


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_gib(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def matmul_tflops(device: torch.device) -> tuple[float, str]:
    """Dense matmul TFLOP/s: bf16 8192² on a GPU, float32 1024² on a CPU."""
    n, dtype, repeats = (8192, torch.bfloat16, 50) if device.type == "cuda" else (1024, torch.float32, 10)
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e12, f"{str(dtype).removeprefix('torch.')} {n}²"


def log_rate(run: Path) -> float:
    """Steps per second from a run's log.csv (between the first and the last logged step: no start-up)."""
    with (run / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    first, last = (rows[0] if len(rows) > 1 else {"step": 0, "seconds": 0}), rows[-1]
    return (int(last["step"]) - int(first["step"])) / (float(last["seconds"]) - float(first["seconds"]))


def denoiser_share(preset: str, device: torch.device, batch: int | None, peak: float, compiled: bool = False,
                   steps: int = 30) -> str:
    """One row: the denoiser's training step alone (forward, backward, Adam; bf16 autocast on a GPU)."""
    torch.manual_seed(0)
    model, loss, batch, _ = training_loss("diffusion", preset, device, batch)
    flops = count_flops(backward_step(model, loss))
    if compiled:
        model.compile(mode="reduce-overhead")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(device):
            value = loss()
        value.backward()
        optimizer.step()

    t_compile = time.perf_counter()
    for _ in range(5):  # warm-up (and compilation)
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    seconds = (time.perf_counter() - t0) / steps
    achieved = flops / seconds / 1e12
    label = f"{batch}{' compiled' if compiled else ''}"
    extra = f" (warm-up with compilation {t0 - t_compile:.0f} s)" if compiled else ""
    return (f"| {label} | {flops / 1e9:.4g} | {1 / seconds:.1f} | {batch / seconds:,.0f} | {achieved:.3g} | "
            f"{100 * achieved / peak:.1f} % |{extra}")


def generation(pipe: Pipeline, device: torch.device, label: str) -> None:
    pipe.to(device)
    pipe.generate(2, 1, seed=1)  # warm-up
    sizes = ((64, 1), (64, 256), (1024, 1)) if device.type == "cuda" else ((64, 1), (64, 4), (128, 1))
    for bars, n in sizes:
        reset_peak(device)
        sync(device)
        t0 = time.perf_counter()
        pipe.generate(bars, n, seed=0)
        sync(device)
        s = time.perf_counter() - t0
        print(f"| {label} | generate {n} x {bars} bars | {s:.2f} s | {n / s:.1f} | {peak_gib(device)} |")
    piece = long_piece(2048)
    reset_peak(device)
    t0 = time.perf_counter()
    pipe.infill_bars(piece, [(1024, 1026)], 1, 0)
    sync(device)
    s = time.perf_counter() - t0
    print(f"| {label} | infill 2 bars of 2,048 | {s:.2f} s | {1 / s:.2f} | {peak_gib(device)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", default="paper", choices=["paper", "cpu", "tiny"])
    parser.add_argument("--files", type=int, default=1500, help="synthetic MIDI files for the dataset")
    parser.add_argument("--vae-steps", type=int, default=300)
    parser.add_argument("--diffusion-steps", type=int, default=500)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here (default: a temporary folder)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
    device = torch.device(args.device)
    gpus = torch.cuda.device_count() if device.type == "cuda" else 0
    name = torch.cuda.get_device_name(device) if gpus else "CPU"
    print(f"torch {torch.__version__}; {name}; {gpus} GPU(s); {os.cpu_count()} CPU cores; preset {args.preset}")
    tmp = tempfile.TemporaryDirectory()
    root = args.out or Path(tmp.name)
    root.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    peak, what = matmul_tflops(device)
    print(f"\n1. dense matmul ({what}): {peak:.1f} TFLOP/s measured")

    t0 = time.perf_counter()
    write_corpus(root / "midi", args.files)
    report = prepare([str(root / "midi")], root / "data", workers=os.cpu_count(), quiet=True)
    print(f"2. dataset: {args.files} synthetic MIDI files -> {report['melodies']} melodies, "
          f"{report['two_bar_chunks']} chunks in {time.perf_counter() - t0:.0f} s")

    reset_peak(device)
    t0 = time.perf_counter()
    train_vae(root / "data", root / "vae", args.preset, steps=args.vae_steps, progress=False, device=args.device)
    sync(device)
    rate = log_rate(root / "vae")
    vae_batch = vae_config.preset(args.preset)[1].batch_size
    print(f"3. VAE ({args.preset}), {args.vae_steps} steps in {time.perf_counter() - t0:.0f} s: {rate:.2f} steps/s, "
          f"{rate * vae_batch:,.0f} chunks/s, peak memory {peak_gib(device)}")
    t0 = time.perf_counter()
    vae = load_vae(root / "vae")
    dims = PAPER_DIMS if vae.config.z_size == 512 else range(min(vae.config.z_size, 42))
    data = encode_dataset(vae.to(device), root / "data", dims=list(dims))
    data.save(root / "latents.npz")
    print(f"   encoded {len(data.x)} chunks on {device.type} in {time.perf_counter() - t0:.0f} s "
          f"({data.normalizer.latent_dim} dims)")

    reset_peak(device)
    t0 = time.perf_counter()
    train_diffusion(root / "latents.npz", root / "diffusion", args.preset, steps=args.diffusion_steps,
                    progress=False, device=args.device)
    sync(device)
    rate = log_rate(root / "diffusion")
    batch = diffusion_config.preset(args.preset)[2].batch_size
    print(f"4. diffusion ({args.preset}) with melodiff's trainer, {args.diffusion_steps} steps in "
          f"{time.perf_counter() - t0:.0f} s: {rate:.1f} steps/s, {rate * batch:,.0f} windows/s, "
          f"peak memory {peak_gib(device)}")
    print(f"\n   the denoiser's training step alone ({args.preset}), against the measured {peak:.1f} TFLOP/s:\n")
    print("| batch | GFLOP per step | steps/s | windows/s | achieved TFLOP/s | share of peak |")
    print("|---|---|---|---|---|---|")
    for b in (None, 256, 1024, 4096):
        print(denoiser_share(args.preset, device, b, peak), flush=True)
    if device.type == "cuda":
        try:
            print(denoiser_share(args.preset, device, None, peak, compiled=True), flush=True)
        except Exception as exc:  # a compiler failure is a finding, not the end of the check
            print(f"| compiled | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:200]} |")

    if gpus >= 2:
        t0 = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
                              "melodiff.cli", "-q", "train-diffusion", "--latents", str(root / "latents.npz"), "--out",
                              str(root / "ddp"), "--preset", args.preset, "--steps", str(args.diffusion_steps),
                              "--device", "cuda"], capture_output=True, text=True)
        if run.returncode:
            print(f"5. DDP on 2 GPUs failed (exit {run.returncode}):\n{run.stderr[-3000:]}")
        else:
            rate = log_rate(root / "ddp")
            print(f"\n5. DDP, 2 GPUs (torchrun, NCCL), {args.diffusion_steps} steps in "
                  f"{time.perf_counter() - t0:.0f} s with start-up: {rate:.1f} steps/s, {rate * batch * 2:,.0f} "
                  "windows/s over both")
    else:
        print("\n5. DDP: skipped (fewer than 2 GPUs)")

    bundle_model(root / "vae", root / "diffusion", root / "model")
    print("\n6. generation (DPM-Solver++ 50, one window of the model at a time; seconds after a warm-up):\n")
    print("| model | task | time | samples/s | peak memory |\n|---|---|---|---|---|")
    generation(Pipeline.from_pretrained(root / "model"), device, f"{args.preset} (just trained)")
    generation(Pipeline.from_pretrained(), device, "shipped default")
    print(f"\ntotal {time.perf_counter() - t_start:.0f} s")
    tmp.cleanup()


if __name__ == "__main__":
    main()
