"""Training the guide of diffusion/guide.py on a latent dataset with tune contexts (``melodiff encode``) and the
prepared melodies it was encoded from (for each chunk's note density and last note)."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from melodiff.config import build_checked, from_dict, to_dict
from melodiff.data.chunks import melody_chunks
from melodiff.data.latents import LatentDataset
from melodiff.data.prepare import SPLITS, load_melodies
from melodiff.device import randn
from melodiff.diffusion.config import ScheduleConfig
from melodiff.diffusion.guide import DEGREES, AttributeGuide, GuideConfig
from melodiff.diffusion.schedule import NoiseSchedule, q_sample
from melodiff.diffusion.train import WindowSampler
from melodiff.errors import MelodiffError
from melodiff.loading import read_config
from melodiff.music.keys import last_pitch_classes
from melodiff.music.melody import BARS_PER_CHUNK
from melodiff.training.loop import LoopConfig, train

log = logging.getLogger(__name__)
KIND = "guide"


def chunk_labels(data_dir: str | Path, offsets: np.ndarray, tonics: np.ndarray,
                 meters: tuple[str, ...] = ("4/4",)) -> np.ndarray:
    """(chunks, 2) float32 of every chunk of the prepared dataset, in the latents' order: log(1 + note onsets per
    bar), and the semitones its last note lies above its tune's tonic (``tonics``, per melody), DEGREES for a chunk
    without notes. MelodiffError when the melodies do not match the latents' chunk counts (another dataset)."""
    chunks = melody_chunks(load_melodies(data_dir, meters=meters)[0])
    counts = np.array([len(c) for c in chunks])
    if len(counts) != len(offsets) - 1 or not np.array_equal(counts, np.diff(offsets)):
        raise MelodiffError(f"{data_dir}: not the prepared dataset these latents were encoded from")
    ids = np.concatenate(chunks)
    onsets = ids >= 2
    last = last_pitch_classes(ids)
    ending = np.where(last >= 0, (last - np.repeat(tonics, counts)) % 12, DEGREES)
    return np.stack([np.log1p(onsets.sum(1) / BARS_PER_CHUNK), ending], 1).astype(np.float32)


def guide_loss(model: AttributeGuide, schedule: NoiseSchedule, batch: torch.Tensor, pad: torch.Tensor,
               tunes: dict[str, torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE of each chunk's density, cross-entropy of its ending degree, of the tune's mode, tonic and style, at a
    random noise level of ``schedule``;
    ``batch`` (B, L, D + 2): the clean latents, then each chunk's labels (chunk_labels)."""
    x0, density, ending = batch[..., :-2], batch[..., -2], batch[..., -1].long()
    alpha_bar = schedule.sample_alpha_bar(x0.shape[0], generator).float()
    x_t = q_sample(x0, alpha_bar, randn(x0.shape, generator, x0))
    out = model(x_t, alpha_bar.sqrt(), pad)
    valid = (~pad).float()
    mse = ((out["density"] - density) ** 2 * valid).sum() / valid.sum()
    ends = (F.cross_entropy(out["ending"].flatten(0, 1), ending.flatten(), reduction="none")
            * valid.flatten()).sum() / valid.sum()
    mode = F.binary_cross_entropy_with_logits(out["minor"], tunes["minor"].float())
    tonic = F.cross_entropy(out["tonic"], tunes["tonic"])
    style = F.cross_entropy(out["style"], tunes["style"]) if model.config.styles else torch.zeros(())
    return mse + ends + mode + tonic + style, {"density_mse": mse.item(), "ending_ce": ends.item(),
                                               "mode_ce": mode.item(), "tonic_ce": tonic.item(),
                                               "style_ce": style.item()}


def train_guide(latents: str | Path, data_dir: str | Path, diffusion: str | Path, out: str | Path,
                steps: int, seed: int = 0, batch_size: int = 128, lr: float = 1e-3,
                max_seconds: float = math.inf, progress: bool = True, device: str = "cpu") -> AttributeGuide:
    """Train (or resume) the guide for the denoiser of ``diffusion`` (its window and noise schedule) on the latents
    of ``latents`` (the ones that denoiser was trained on, with tune contexts) and the densities of ``data_dir``'s
    melodies; the checkpoint goes to ``out``."""
    data = LatentDataset.load(latents)
    if data.contexts is None:
        raise MelodiffError(f"{latents}: no tune contexts to train a guide on (encode it again)")
    meta = read_config(diffusion, "diffusion")
    if meta.get("normalizer", {}).get("dims") != list(data.normalizer.dims):
        raise MelodiffError(f"{latents}: not the latents the diffusion model in {diffusion} was trained on")
    try:
        schedule = NoiseSchedule(from_dict(ScheduleConfig, meta["schedule"]))
        seq_len = int(meta["model"]["seq_len"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MelodiffError(f"{diffusion}: config.json lacks the schedule or the window ({exc})") from None
    train_rows = np.flatnonzero(data.split == SPLITS.index("train"))
    c = data.contexts
    keys = np.bincount(c.tonic[train_rows] + 12 * c.minor[train_rows], minlength=24)
    config = GuideConfig(latent_dim=data.normalizer.latent_dim, seq_len=seq_len,
                         styles=c.styles, keys=tuple(int(k) for k in keys))
    out = Path(out)
    if (out / "config.json").exists():  # resuming: the saved sizes win
        config = from_dict(GuideConfig, read_config(out, KIND)["model"])
    labels = chunk_labels(data_dir, data.offsets, c.tonic, data.meters)
    sequences = [np.concatenate([data.x[data.offsets[i]:data.offsets[i + 1]],
                                 labels[data.offsets[i]:data.offsets[i + 1]]], 1) for i in train_rows]
    contexts = np.stack(list(c.arrays().values()), 1)[train_rows]
    if data.normalizer.in_c:  # key-normalised latents: every tune is in C (its ending degrees are the same)
        contexts[:, 0] = 0
    windows = WindowSampler(sequences, config.seq_len, contexts)
    log.info("guide training on %d windows of %d latents", len(windows), config.seq_len)
    torch.manual_seed(seed)
    model = build_checked(lambda: AttributeGuide(config))

    def loss_fn(net, step, generator):
        batch, pad, context = windows.sample(batch_size, generator)
        dev = next(net.parameters()).device
        return guide_loss(net, schedule, batch.to(dev), pad.to(dev), {k: v.to(dev) for k, v in context.items()},
                          generator)

    loop = LoopConfig(steps=steps, lr_at=lambda s: lr * 0.5 * (1 + math.cos(math.pi * s / steps)),
                      ema_decay=0.999, checkpoint_every=500, seed=seed, max_seconds=max_seconds, device=device)
    info = {"model": to_dict(config), "train": {"steps": steps, "seed": seed, "batch_size": batch_size, "lr": lr},
            "latents": str(latents), "data": str(data_dir), "diffusion": str(diffusion)}
    return train(model, loss_fn, loop, out, KIND, info, progress=progress)
