"""Training and evaluating the 2-bar melody VAE on a prepared dataset."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from melodiff.config import build_checked, from_dict, to_dict
from melodiff.data.chunks import training_chunks, transpose_batch
from melodiff.data.prepare import load_melodies
from melodiff.errors import MelodiffError
from melodiff.training.checkpoint import load_module, read_config, read_weights, run_configs
from melodiff.training.loop import LoopConfig, train
from melodiff.vae.config import VAEConfig, VAETrainConfig, preset
from melodiff.vae.loss import kl_divergence, vae_loss
from melodiff.vae.model import MelodyVAE

log = logging.getLogger(__name__)
KIND = "vae"


def vae_lr(config: VAETrainConfig):
    """Magenta's exponential decay: (lr - min_lr) * decay**step + min_lr."""
    return lambda step: (config.lr - config.min_lr) * config.lr_decay**step + config.min_lr


def train_vae(data_dir: str | Path, out: str | Path, preset_name: str = "cpu", steps: int | None = None,
              seed: int | None = None, max_seconds: float = math.inf, progress: bool = True,
              init: str | Path | None = None, settings: Sequence[str] = ()) -> MelodyVAE:
    """Train (or resume) a VAE on the train split of ``data_dir``; the checkpoint goes to ``out``.

    ``init``: a VAE checkpoint folder (e.g. the shipped model's ``vae/``) to start a new run from: its configs,
    weights and step, with a fresh optimiser, so its schedules (β, scheduled sampling, learning rate) go on where they
    were and ``steps`` counts from 0 as before. For training on across sessions or fine-tuning on new data.
    ``settings``: ``--set section.field=value`` changes to the preset's configs (``train.max_beta=0.05``,
    ``model.z_size=64``), or with ``init`` to its training config (``train.*`` only; ``seed`` replaces its seed)."""
    out = Path(out)
    resuming = (out / "config.json").exists()
    source = out if resuming else init  # resuming: the saved configs win, so a resumed run is the same run
    meta = read_config(source, KIND) if source is not None else None
    model_config, train_config = preset(preset_name)
    fixed = ["model.num_classes", "model.steps"]  # the data's
    if init is not None:  # the weights fix the model
        fixed += [f"model.{f.name}" for f in fields(VAEConfig)]
    configs = run_configs({"model": model_config, "train": train_config}, steps, seed, settings, fixed, meta,
                          resume=resuming)
    model_config, train_config = configs["model"], configs["train"]
    init_step, init_weights, origin = 0, None, meta.get("init") if meta else None
    if not resuming and init is not None:
        init_step, init_weights = int(meta.get("step", 0)), read_weights(init)
        origin = {"from": str(init), "step": init_step}
        if train_config.steps <= init_step:
            raise MelodiffError(f"--steps {train_config.steps}: {init} is already at step {init_step}; "
                                f"ask for more")
    melodies, _ = load_melodies(data_dir, "train")
    chunks = torch.from_numpy(training_chunks(melodies))
    if len(chunks) == 0:
        raise MelodiffError(f"{data_dir}: no training chunks in the train split")
    log.info("VAE training on %d chunks", len(chunks))
    torch.manual_seed(train_config.seed)
    model = build_checked(lambda: MelodyVAE(model_config))
    if init_weights is not None:
        model.load_state_dict(init_weights)

    def loss_fn(net, step, generator):
        idx = torch.randint(0, len(chunks), (train_config.batch_size,), generator=generator)
        batch = transpose_batch(chunks[idx], train_config.transpose, generator)
        return vae_loss(net, batch, step, train_config, generator)

    loop = LoopConfig(steps=train_config.steps, lr_at=vae_lr(train_config), grad_clip=train_config.grad_clip,
                      checkpoint_every=500, seed=train_config.seed, max_seconds=max_seconds)
    meta = {"model": to_dict(model_config), "train": to_dict(train_config), "data": str(data_dir),
            "train_chunks": len(chunks)}
    if origin is not None:
        meta["init"] = origin
    return train(model, loss_fn, loop, out, KIND, meta, progress=progress, init_step=init_step)


def load_vae(folder: str | Path) -> MelodyVAE:
    """A trained VAE from its checkpoint folder, in eval mode."""
    return load_module(folder, KIND, lambda meta: MelodyVAE(from_dict(VAEConfig, meta["model"])))[0]


@torch.no_grad()
def encode_chunks(model: MelodyVAE, chunks: np.ndarray, batch_size: int = 1024, sample: bool = True,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """chunks (N, 32) -> (z, mu, sigma), each (N, Z) float32. z is sampled (as the paper) with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    zs, mus, sigmas = [], [], []
    for i in range(0, len(chunks), batch_size):
        z, mu, sigma = model.encode(torch.as_tensor(chunks[i:i + batch_size]), generator)
        zs.append(z if sample else mu)
        mus.append(mu)
        sigmas.append(sigma)
    z_size = model.config.z_size
    cat = (lambda xs: torch.cat(xs).numpy()) if zs else (lambda xs: np.zeros((0, z_size), np.float32))
    return cat(zs), cat(mus), cat(sigmas)


@torch.no_grad()
def evaluate_vae(model: MelodyVAE, chunks: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Reconstruction quality on held-out chunks (N, 32): greedy decode from mu; step accuracy, exact-chunk rate,
    note-onset F1 (pitch and step must match), teacher-forced cross-entropy and KL per chunk (nats), and how many
    dims have a mean encoder sigma below 0.5 / 0.9 / 1.0 (the trimming candidates, PAPER.md §3)."""
    if len(chunks) == 0:
        raise MelodiffError("no chunks to evaluate")
    correct = exact = tp = n_true = n_pred = 0
    ce = kl = 0.0
    sigma_sum = torch.zeros(model.config.z_size)
    for i in range(0, len(chunks), batch_size):
        x = torch.as_tensor(chunks[i:i + batch_size])
        _, mu, sigma = model.encode(x)
        y = model.decode(mu)
        correct += (y == x).sum().item()
        exact += (y == x).all(1).sum().item()
        onset_true, onset_pred = x >= 2, y >= 2
        tp += (onset_true & onset_pred & (x == y)).sum().item()
        n_true += onset_true.sum().item()
        n_pred += onset_pred.sum().item()
        logits = model.decoder_logits(mu, x)
        ce += torch.nn.functional.cross_entropy(logits.transpose(1, 2), x, reduction="none").sum(1).sum().item()
        kl += kl_divergence(mu, sigma).sum(1).sum().item()
        sigma_sum += sigma.sum(0)
    n = len(chunks)
    precision, recall = tp / max(n_pred, 1), tp / max(n_true, 1)
    return {"chunks": n, "step_accuracy": correct / (n * chunks.shape[1]), "chunk_exact": exact / n,
            "onset_f1": 2 * precision * recall / max(precision + recall, 1e-12), "ce_nats": ce / n, "kl_nats": kl / n,
            "kl_nats_per_dim": kl / n / model.config.z_size,
            **{f"dims_mean_sigma_below_{t}": int((sigma_sum / n < t).sum()) for t in (0.5, 0.9, 1.0)}}


PRIOR_STATISTICS = ("notes_per_bar", "pitch_range", "scale_consistency", "pitch_class_distance", "rest_fraction")


@torch.no_grad()
def prior_statistics(model: MelodyVAE, chunks: np.ndarray, num: int = 1000, seed: int = 0) -> dict[str, dict]:
    """Do samples of the prior sound like melodies? ``num`` z ~ N(0, I) decoded greedily, each 2-bar chunk taken as a
    melody, against the chunks (N, 32) of a split: notes per bar, pitch range (semitones), scale consistency,
    pitch-class distance to the data, rest fraction (metrics/stats.py)."""
    from melodiff.metrics.stats import melody_statistics, pitch_class_histogram
    from melodiff.music.melody import Melody

    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(num, model.config.z_size, generator=generator)
    sampled = [Melody(c) for c in model.decode(z).numpy()]
    data = [Melody(c) for c in chunks]
    reference = pitch_class_histogram(data)
    return {name: {k: None if math.isnan(v) else round(v, 4)  # None (JSON null): no notes to measure
                   for k, v in melody_statistics(melodies, reference).items() if k in PRIOR_STATISTICS}
            for name, melodies in (("data", data), ("prior", sampled))}
