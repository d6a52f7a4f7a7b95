"""Training the 2-bar melody VAE on a prepared dataset (loading: loading.py; encoding: vae/encode.py; scores:
vae/evaluate.py)."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path

import torch

from melodiff.config import build_checked, to_dict
from melodiff.data.chunks import training_chunks, transpose_batch
from melodiff.data.prepare import load_melodies
from melodiff.errors import MelodiffError
from melodiff.loading import read_config, read_weights
from melodiff.music.meter import BARS_PER_CHUNK, family
from melodiff.training.checkpoint import run_configs
from melodiff.training.loop import LoopConfig, train
from melodiff.vae.config import VAEConfig, VAETrainConfig, preset
from melodiff.vae.loss import vae_loss
from melodiff.vae.model import MelodyVAE

log = logging.getLogger(__name__)
KIND = "vae"


def vae_lr(config: VAETrainConfig):
    """Magenta's exponential decay: (lr - min_lr) * decay**step + min_lr."""
    return lambda step: (config.lr - config.min_lr) * config.lr_decay**step + config.min_lr


def train_vae(data_dir: str | Path, out: str | Path, preset_name: str = "cpu", steps: int | None = None,
              seed: int | None = None, max_seconds: float = math.inf, progress: bool = True,
              init: str | Path | None = None, settings: Sequence[str] = (), device: str = "cpu",
              meters: Sequence[str] | None = None) -> MelodyVAE:
    """Train (or resume) a VAE on the train split of ``data_dir`` (its melodies in ``meters``: one family of model
    meters, music/meter.py; default those of the preset, or of ``init``, or of the run resumed); the checkpoint goes
    to ``out``.

    ``init``: a VAE checkpoint folder (e.g. the shipped model's ``vae/``) to start a new run from: its configs,
    weights and step, with a fresh optimiser, so its schedules (β, scheduled sampling, learning rate) go on where they
    were and ``steps`` counts from 0 as before. For training on across sessions or fine-tuning on new data — also in
    other meters: the LSTMs read and write chunks of any length, so a 4/4 VAE is a start for a 3/4 and 6/8 one.
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
    if meters is not None and tuple(meters) != model_config.meters:
        if resuming:
            raise MelodiffError(f"{out} trains a VAE for {', '.join(model_config.meters)}, not {', '.join(meters)}")
        model_config = replace(model_config, meters=tuple(meters), steps=family(meters) * BARS_PER_CHUNK)
    init_step, init_weights, origin = 0, None, meta.get("init") if meta else None
    if not resuming and init is not None:
        init_step, init_weights = int(meta.get("step", 0)), read_weights(init)
        origin = {"from": str(init), "step": init_step}
        if train_config.steps <= init_step:
            raise MelodiffError(f"--steps {train_config.steps}: {init} is already at step {init_step}; "
                                f"ask for more")
    melodies, _ = load_melodies(data_dir, "train", model_config.meters)
    chunks = torch.from_numpy(training_chunks(melodies, model_config.steps))
    if len(chunks) == 0:
        raise MelodiffError(f"{data_dir}: no training chunks in {', '.join(model_config.meters)} in the train split")
    log.info("VAE training on %d chunks", len(chunks))
    torch.manual_seed(train_config.seed)
    model = build_checked(lambda: MelodyVAE(model_config))
    if init_weights is not None:
        model.load_state_dict(init_weights)

    def loss_fn(net, step, generator):
        idx = torch.randint(0, len(chunks), (train_config.batch_size,), generator=generator)
        batch = transpose_batch(chunks[idx], train_config.transpose, generator)
        return vae_loss(net, batch.to(next(net.parameters()).device), step, train_config, generator)

    loop = LoopConfig(steps=train_config.steps, lr_at=vae_lr(train_config), grad_clip=train_config.grad_clip,
                      checkpoint_every=500, seed=train_config.seed, max_seconds=max_seconds, device=device)
    meta = {"model": to_dict(model_config), "train": to_dict(train_config), "data": str(data_dir),
            "train_chunks": len(chunks)}
    if origin is not None:
        meta["init"] = origin
    return train(model, loss_fn, loop, out, KIND, meta, progress=progress, init_step=init_step)
