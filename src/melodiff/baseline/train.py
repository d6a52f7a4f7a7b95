"""Training the TransformerMDN baseline on a latent dataset, and loading it back."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import torch

from melodiff.baseline.mdn import TransformerMDN, mdn_loss, preset
from melodiff.config import build_checked, to_dict
from melodiff.data.latents import LatentDataset
from melodiff.diffusion.train import WindowSampler
from melodiff.loading import read_config
from melodiff.training.checkpoint import run_configs
from melodiff.training.loop import LoopConfig, train

KIND = "mdn"


def train_mdn(latents: str | Path, out: str | Path, preset_name: str = "cpu", steps: int | None = None,
              seed: int | None = None, max_seconds: float = math.inf, progress: bool = True,
              settings: Sequence[str] = (), device: str = "cpu") -> TransformerMDN:
    """Train (or resume) the TransformerMDN baseline on ``latents``; ``settings`` and ``device`` as for
    ``train_diffusion``."""
    data = LatentDataset.load(latents)
    out = Path(out)
    resuming = (out / "config.json").exists()  # resuming: the saved configs win
    model_config, train_config = preset(preset_name)
    configs = run_configs({"model": model_config, "train": train_config}, steps, seed, settings,
                          ["model.latent_dim"], read_config(out, KIND) if resuming else None, resuming)
    model_config = replace(configs["model"], latent_dim=data.normalizer.latent_dim)
    train_config = configs["train"]
    windows = WindowSampler(data.sequences("train"), model_config.seq_len)
    torch.manual_seed(train_config.seed)
    model = build_checked(lambda: TransformerMDN(model_config))

    def loss_fn(net, step, generator):
        x0, pad, _ = windows.sample(train_config.batch_size, generator)
        device = next(net.parameters()).device
        loss = mdn_loss(net, x0.to(device), pad.to(device))
        return loss, {"loss": loss.item()}

    tc = train_config
    loop = LoopConfig(steps=tc.steps, lr_at=lambda s: tc.lr * tc.lr_decay ** (s // tc.lr_decay_every),
                      grad_clip=tc.grad_clip, checkpoint_every=500, seed=tc.seed, max_seconds=max_seconds,
                      device=device)
    meta = {"model": to_dict(model_config), "train": to_dict(train_config), "normalizer": to_dict(data.normalizer),
            "latents": str(latents)}
    return train(model, loss_fn, loop, out, KIND, meta, progress=progress)
