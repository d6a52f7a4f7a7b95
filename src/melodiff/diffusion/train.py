"""Training the latent diffusion model on a latent dataset (data/latents.py), and loading it back."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from melodiff.config import build_checked, to_dict
from melodiff.data.contexts import context_table, position_classes
from melodiff.data.latents import LatentDataset
from melodiff.data.prepare import SPLITS
from melodiff.device import randn, to_device
from melodiff.diffusion.config import preset
from melodiff.diffusion.denoiser import TransformerDenoiser, context_classes
from melodiff.diffusion.schedule import NoiseSchedule, q_sample
from melodiff.errors import MelodiffError
from melodiff.loading import read_config
from melodiff.training.checkpoint import run_configs
from melodiff.training.loop import LoopConfig, train

log = logging.getLogger(__name__)
KIND = "diffusion"


class WindowSampler:
    """Random windows of ``seq_len`` consecutive latents (stride 1 over every melody of a split, docs/PAPER.md §1).
    A melody shorter than the window gives one window, padded; the padding mask marks the padded positions.
    With ``contexts`` ((melodies, 4) tonic, minor, style, density per sequence) each window also has its tune
    context (data/contexts.py); with ``meters`` ((melodies,) index of each melody's meter) each window's context has
    its ``meter``."""

    def __init__(self, sequences: list[np.ndarray], seq_len: int, contexts: np.ndarray | None = None,
                 meters: np.ndarray | None = None) -> None:
        if not sequences:
            raise MelodiffError("no latent sequences to train on")
        self.seq_len = seq_len
        self.meters = None if meters is None else torch.from_numpy(np.asarray(meters, dtype=np.int64))
        self.contexts = None if contexts is None else torch.from_numpy(np.asarray(contexts, dtype=np.int64))
        self.x = torch.from_numpy(np.concatenate([*sequences, np.zeros_like(sequences[0][:1])]))
        lengths = np.array([len(s) for s in sequences])
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        starts = [np.arange(max(n - seq_len + 1, 1)) for n in lengths]
        self.window_offset = torch.from_numpy(np.concatenate([o + s for o, s in zip(offsets, starts, strict=True)]))
        self.window_valid = torch.from_numpy(np.concatenate(
            [np.minimum(n - s, seq_len) for n, s in zip(lengths, starts, strict=True)]))
        self.window_melody = torch.from_numpy(np.repeat(np.arange(len(lengths)), [len(s) for s in starts]))
        self.window_start = torch.from_numpy(np.concatenate(starts))
        self.lengths = torch.from_numpy(lengths)

    def __len__(self) -> int:
        return len(self.window_offset)

    def sample(self, batch: int, generator: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor] | None]:
        """-> x0 (B, L, D) with zeros at padding, padding_mask (B, L) True = padding, the windows' contexts (class
        indices of every field of denoiser.context_classes and the tune's tonic; None without contexts)."""
        w = torch.randint(0, len(self), (batch,), generator=generator)
        pos = torch.arange(self.seq_len)
        pad = pos >= self.window_valid[w].unsqueeze(1)
        rows = torch.where(pad, len(self.x) - 1, self.window_offset[w].unsqueeze(1) + pos)
        melody = self.window_melody[w]
        meter = {} if self.meters is None else {"meter": self.meters[melody]}
        if self.contexts is None:
            return self.x[rows], pad, meter or None
        before = self.window_start[w].unsqueeze(1) + pos
        after = (self.lengths[melody].unsqueeze(1) - 1 - before).clamp(min=0)
        start, end = position_classes(before, after)
        tune = self.contexts[melody]
        context = {"start": start, "end": end, "tonic": tune[:, 0], "minor": tune[:, 1],
                   "style": tune[:, 2], "density": tune[:, 3], **meter}
        return self.x[rows], pad, context


def drop_context(context: dict[str, torch.Tensor] | None, classes: dict[str, int], p: float,
                 generator: torch.Generator) -> dict[str, torch.Tensor] | None:
    """Each field of ``classes`` of each window replaced by "not told" (its class count) with probability ``p``
    (the meter is always told; the other fields, e.g. the tonic a key-normalised denoiser is not told, are left
    out)."""
    if context is None or p <= 0:
        return context
    out = {"meter": context["meter"]} if "meter" in context else {}
    for name, index in context.items():
        if name not in classes:
            continue
        drop = torch.rand(index.shape[0], generator=generator) < p
        out[name] = torch.where(drop.view(-1, *[1] * (index.dim() - 1)), classes[name], index)
    return out


def diffusion_loss(model: torch.nn.Module, schedule: NoiseSchedule, x0: torch.Tensor, padding_mask: torch.Tensor,
                   generator: torch.Generator, context: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
    """MSE(eps, eps_theta(sqrt(abar) x0 + sqrt(1 - abar) eps, sqrt(abar))) over non-padded positions
    (docs/PAPER.md §4)."""
    alpha_bar = schedule.sample_alpha_bar(x0.shape[0], generator)
    eps = randn(x0.shape, generator, x0)
    x_t = q_sample(x0, alpha_bar.float().to(x0.device), eps)
    level = alpha_bar.sqrt().float().to(x0.device)
    pred = model(x_t, level, padding_mask) if context is None else model(x_t, level, padding_mask, context)
    valid = (~padding_mask).unsqueeze(-1).float()
    return ((pred - eps).square() * valid).sum() / (valid.sum() * x0.shape[-1])


def train_diffusion(latents: str | Path, out: str | Path, preset_name: str = "cpu", steps: int | None = None,
                    seed: int | None = None, max_seconds: float = math.inf, progress: bool = True,
                    vae_dir: str | None = None, settings: Sequence[str] = (), device: str = "cpu"
                    ) -> TransformerDenoiser:
    """Train (or resume) a denoiser on the latents of ``latents`` (``melodiff encode``); the checkpoint goes to
    ``out``. ``settings``: ``--set section.field=value`` changes to the preset (``model.layers=6``,
    ``schedule.kind=cosine``, ``train.lr=3e-4``); ``device``: where it trains (melodiff.device; under ``torchrun``
    each rank on its own GPU), with bf16 mixed precision on GPUs that have it."""
    data = LatentDataset.load(latents)
    out = Path(out)
    resuming = (out / "config.json").exists()  # resuming: the saved configs win
    model_config, schedule_config, train_config = preset(preset_name)
    configs = run_configs({"model": model_config, "schedule": schedule_config, "train": train_config}, steps, seed,
                          settings, ["model.latent_dim"], read_config(out, KIND) if resuming else None, resuming)
    schedule_config, train_config = configs["schedule"], configs["train"]
    model_config = replace(configs["model"], latent_dim=data.normalizer.latent_dim)
    table, contexts = None, None
    if model_config.context:
        if data.contexts is None:
            raise MelodiffError(f"{latents}: no tune contexts for a context model (encode it again)")
        train_rows = data.split == SPLITS.index("train")
        table = context_table(data.contexts, train_rows)
        contexts = np.stack(list(data.contexts.arrays().values()), 1)[train_rows]
        model_config = replace(model_config, styles=len(data.contexts.styles))
    model_config = replace(model_config, meters=data.meters)
    windows = WindowSampler(data.sequences("train"), model_config.seq_len, contexts,
                            data.meter_of("train") if len(data.meters) > 1 else None)
    log.info("diffusion training on %d windows of %d latents", len(windows), model_config.seq_len)
    schedule = NoiseSchedule(schedule_config)
    torch.manual_seed(train_config.seed)
    model = build_checked(lambda: TransformerDenoiser(model_config))

    def loss_fn(net, step, generator):
        x0, pad, context = windows.sample(train_config.batch_size, generator)
        context = drop_context(context, context_classes(model_config), train_config.context_dropout, generator)
        device = next(net.parameters()).device
        loss = diffusion_loss(net, schedule, x0.to(device), pad.to(device), generator, to_device(context, device))
        return loss, {"mse": loss.item()}

    tc = train_config
    loop = LoopConfig(steps=tc.steps, lr_at=lambda s: tc.lr * tc.lr_decay ** (s // tc.lr_decay_every),
                      grad_clip=tc.grad_clip, ema_decay=tc.ema_decay, checkpoint_every=500, seed=tc.seed,
                      max_seconds=max_seconds, device=device)
    meta = {"model": to_dict(model_config), "schedule": to_dict(schedule_config), "train": to_dict(train_config),
            "normalizer": to_dict(data.normalizer), "latents": str(latents), "vae": vae_dir}
    if table is not None:
        meta["contexts"] = table
    return train(model, loss_fn, loop, out, KIND, meta, progress=progress)
