"""Encoding melodies with a trained VAE: chunks to latents, and a prepared dataset to the latent dataset of
``melodiff encode`` (data/latents.py holds its format)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from melodiff.data.chunks import melody_chunks
from melodiff.data.contexts import describe_tunes
from melodiff.data.latents import LatentDataset
from melodiff.data.normalizer import LatentNormalizer, Scaling
from melodiff.data.prepare import SPLITS, load_melodies
from melodiff.errors import MelodiffError
from melodiff.music.keys import shift_to_c, transposed_near
from melodiff.vae.model import MelodyVAE


@torch.no_grad()
def encode_chunks(model: MelodyVAE, chunks: np.ndarray, batch_size: int = 1024, sample: bool = True,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """chunks (N, 32) -> (z, mu, sigma), each (N, Z) float32. z is sampled (as the paper) with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    zs, mus, sigmas = [], [], []
    for i in range(0, len(chunks), batch_size):
        device = next(model.parameters()).device
        z, mu, sigma = (t.cpu() for t in model.encode(torch.as_tensor(chunks[i:i + batch_size]).to(device),
                                                       generator))
        zs.append(z if sample else mu)
        mus.append(mu)
        sigmas.append(sigma)
    z_size = model.config.z_size
    cat = (lambda xs: torch.cat(xs).numpy()) if zs else (lambda xs: np.zeros((0, z_size), np.float32))
    return cat(zs), cat(mus), cat(sigmas)


def encode_dataset(vae: MelodyVAE, data_dir: str | Path, seed: int = 0, threshold: float = 1.0,
                   dims: Sequence[int] | None = None, scaling: Scaling | str = Scaling.STANDARD,
                   use_mean: bool = False, in_c: bool = False) -> LatentDataset:
    """Encode every melody of ``data_dir`` in the VAE's meters chunk by chunk with a *sampled* z (as the paper), or
    the encoder mean if
    ``use_mean``; fit the normaliser on the train split (trimming by mean sigma < ``threshold``, or keeping ``dims``
    if given, e.g. the paper's 42); with ``in_c`` every melody is moved to C first (music/keys.py). Every melody's
    context (data/contexts.py) is kept with the latents."""
    meters = vae.config.meters
    melodies, index = load_melodies(data_dir, meters=meters)
    if not melodies:
        raise MelodiffError(f"{data_dir}: no melodies in {', '.join(meters)}, the VAE's meters")
    contexts = describe_tunes(melodies, [r.get("source", "") for r in index])
    if in_c:
        melodies = [transposed_near(m, shift_to_c(t)) for m, t in zip(melodies, contexts.tonic.tolist(), strict=True)]
    chunks = melody_chunks(melodies)
    lengths = np.array([len(c) for c in chunks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    split = np.array([SPLITS.index(r["split"]) for r in index], dtype=np.int8)
    with torch.no_grad():
        z, _, sigma = encode_chunks(vae, np.concatenate(chunks), seed=seed, sample=not use_mean)
    train_rows = np.repeat(split == 0, lengths)
    if dims is None:
        normalizer = LatentNormalizer.fit(z[train_rows], sigma[train_rows], threshold, scaling, use_mean)
    else:  # fixed dims (e.g. the paper's 42 of cat-mel_2bar_big, docs/MAGENTA.md): a sigma that selects exactly them
        keep = np.isin(np.arange(z.shape[1]), dims)
        normalizer = LatentNormalizer.fit(z[train_rows], np.where(keep, 0.0, np.inf)[None], 1.0, scaling, use_mean)
    normalizer = replace(normalizer, in_c=in_c)
    x = normalizer.transform(z).numpy().astype(np.float32)
    meter = np.array([meters.index(m.meter.name) for m in melodies], dtype=np.int8)
    return LatentDataset(x, offsets, split, normalizer, contexts, tuple(meters), meter)
