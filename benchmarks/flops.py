"""The compute of one training step of every model at every preset, counted by torch's FlopCounterMode on a real
step (forward, loss, backward) at the preset's batch size, and that step's time on this machine (after a warm-up step).

Counted: the matrix products (linear layers, LSTM gates, attention, batched products), which is what FlopCounterMode
counts; element-wise work (activations, LayerNorm, softmax, Adam's update) is left out, a few per cent. The LSTMs are
counted with oneDNN off (its fused LSTM kernel is invisible to the counter; the arithmetic is the same). The VAE's
step at step 0 includes scheduled sampling's first, gradient-free decoder pass (every preset but ``tiny``), as in
training. The latent sequences use the paper's 42 dims.

usage: python benchmarks/flops.py [--models vae diffusion mdn] [--presets paper cpu ...] [--no-time]"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from melodiff.baseline import mdn
from melodiff.diffusion import config as diffusion_config
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.diffusion.train import diffusion_loss
from melodiff.vae import config as vae_config
from melodiff.vae.loss import vae_loss
from melodiff.vae.model import MelodyVAE

PRESETS = {"vae": list(vae_config.PRESETS), "diffusion": list(diffusion_config.PRESETS), "mdn": list(mdn.PRESETS)}


def training_loss(kind: str, preset: str, device: torch.device, batch: int | None = None
                  ) -> tuple[torch.nn.Module, Callable[[], torch.Tensor], int, int]:
    """(model, loss() -> the scalar loss of a batch, batch size, the preset's training steps) for the real training
    loss of ``kind`` (vae, diffusion, mdn) at ``preset`` on ``device``, on random data of the right shapes (a fixed
    batch; the noise and scheduled sampling drawn as in training)."""
    g = torch.Generator().manual_seed(0)
    if kind == "vae":
        model_config, train_config = vae_config.preset(preset)
        model = MelodyVAE(model_config).to(device)
        batch = batch or train_config.batch_size
        tokens = torch.randint(0, model_config.num_classes, (batch, model_config.steps), generator=g).to(device)

        def loss() -> torch.Tensor:
            return vae_loss(model, tokens, 0, train_config, torch.Generator().manual_seed(1))[0]

        steps = train_config.steps
    elif kind == "diffusion":
        model_config, schedule_config, train_config = diffusion_config.preset(preset)
        model = TransformerDenoiser(model_config).to(device)
        schedule = NoiseSchedule(schedule_config)
        batch = batch or train_config.batch_size
        x0 = torch.randn(batch, model_config.seq_len, model_config.latent_dim, generator=g).to(device)
        pad = torch.zeros(batch, model_config.seq_len, dtype=torch.bool, device=device)

        def loss() -> torch.Tensor:
            return diffusion_loss(model, schedule, x0, pad, torch.Generator().manual_seed(1))

        steps = train_config.steps
    elif kind == "mdn":
        model_config, train_config = mdn.preset(preset)
        model = mdn.TransformerMDN(model_config).to(device)
        batch = batch or train_config.batch_size
        x0 = torch.randn(batch, model_config.seq_len, model_config.latent_dim, generator=g).to(device)
        pad = torch.zeros(batch, model_config.seq_len, dtype=torch.bool, device=device)

        def loss() -> torch.Tensor:
            return mdn.mdn_loss(model, x0, pad)

        steps = train_config.steps
    else:
        raise ValueError(kind)
    return model, loss, batch, steps


def backward_step(model: torch.nn.Module, loss: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One training step without the optimiser: zero the gradients, the loss, backward."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss().backward()

    return step


def count_flops(step: Callable[[], None]) -> int:
    """Matrix-product FLOPs of one call of ``step`` (LSTMs counted with oneDNN off)."""
    with torch.backends.mkldnn.flags(enabled=False), FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--presets", nargs="+", default=None, help="default: every preset of each model")
    parser.add_argument("--no-time", action="store_true", help="count only; do not time a second step")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")  # said on every flags() call
    cpu = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU float32")
    print("\n| model | preset | parameters | batch | GFLOP per step | GFLOP per example | preset steps | "
          "PFLOP for the preset's run | one step on this CPU |\n|---|---|---|---|---|---|---|---|---|")
    for kind in args.models:
        for preset in args.presets or PRESETS[kind]:
            if preset not in PRESETS[kind]:
                continue
            torch.manual_seed(0)
            model, loss, batch, steps = training_loss(kind, preset, cpu)
            step = backward_step(model, loss)
            flops = count_flops(step)
            seconds = "—"
            if not args.no_time:
                step()  # warm-up: oneDNN builds its kernels on the first call
                t0 = time.perf_counter()
                step()
                seconds = f"{time.perf_counter() - t0:.3g} s"
            params = sum(p.numel() for p in model.parameters())
            print(f"| {kind} | {preset} | {params / 1e6:.3g} M | {batch} | {flops / 1e9:,.4g} | "
                  f"{flops / batch / 1e9:.3g} | {steps:,} | {flops * steps / 1e15:,.3g} | {seconds} |", flush=True)
            del model, loss, step


if __name__ == "__main__":
    main()
