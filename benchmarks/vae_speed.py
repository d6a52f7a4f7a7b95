"""VAE training throughput (sequences/s) for each preset size on this machine (random tokens, 10 timed steps).
usage: python benchmarks/vae_speed.py [--presets cpu magenta-small] [--batch 128]"""

from __future__ import annotations

import argparse
import time

import torch

from melodiff.vae.config import preset
from melodiff.vae.loss import vae_loss
from melodiff.vae.model import MelodyVAE


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--presets", nargs="+", default=["cpu", "magenta-small"])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()
    torch.manual_seed(0)
    for name in args.presets:
        model_config, train_config = preset(name)
        model = MelodyVAE(model_config)
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        tokens = torch.randint(0, model_config.num_classes, (args.batch, model_config.steps))
        for i in range(args.steps + 2):
            if i == 2:
                t0 = time.perf_counter()
            loss, _ = vae_loss(model, tokens, 10_000, train_config)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        rate = args.steps * args.batch / (time.perf_counter() - t0)
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:>14}: {params / 1e6:.1f} M parameters, {rate:.0f} sequences/s (batch {args.batch})")


if __name__ == "__main__":
    main()
