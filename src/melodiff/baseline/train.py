"""Training the TransformerMDN baseline on a latent dataset, and loading it back."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import torch

from melodiff.baseline.mdn import MDNConfig, MDNTrainConfig, TransformerMDN, mdn_loss, preset
from melodiff.config import from_dict, to_dict
from melodiff.data.latents import LatentDataset
from melodiff.diffusion.train import WindowSampler
from melodiff.training.checkpoint import load_module, read_config, with_overrides
from melodiff.training.loop import LoopConfig, train

KIND = "mdn"


def train_mdn(latents: str | Path, out: str | Path, preset_name: str = "cpu", steps: int | None = None,
              seed: int | None = None, max_seconds: float = math.inf, progress: bool = True) -> TransformerMDN:
    model_config, train_config = preset(preset_name)
    train_config = with_overrides(train_config, steps, seed)
    data = LatentDataset.load(latents)
    model_config = replace(model_config, latent_dim=data.normalizer.latent_dim)
    out = Path(out)
    if (out / "config.json").exists():
        meta = read_config(out, KIND)
        model_config = from_dict(MDNConfig, meta["model"])
        train_config = replace(from_dict(MDNTrainConfig, meta["train"]), steps=train_config.steps)
    windows = WindowSampler(data.sequences("train"), model_config.seq_len)
    torch.manual_seed(train_config.seed)
    model = TransformerMDN(model_config)

    def loss_fn(net, step, generator):
        x0, pad = windows.sample(train_config.batch_size, generator)
        loss = mdn_loss(net, x0, pad)
        return loss, {"loss": loss.item()}

    tc = train_config
    loop = LoopConfig(steps=tc.steps, lr_at=lambda s: tc.lr * tc.lr_decay ** (s // tc.lr_decay_every),
                      grad_clip=tc.grad_clip, checkpoint_every=500, seed=tc.seed, max_seconds=max_seconds)
    meta = {"model": to_dict(model_config), "train": to_dict(train_config), "normalizer": to_dict(data.normalizer),
            "latents": str(latents)}
    return train(model, loss_fn, loop, out, KIND, meta, progress=progress)


def load_mdn(folder: str | Path) -> TransformerMDN:
    return load_module(folder, KIND, lambda meta: TransformerMDN(from_dict(MDNConfig, meta["model"])))[0]
