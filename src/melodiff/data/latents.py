"""Encode a prepared dataset with a trained VAE into a latent dataset for the diffusion model and the baseline.

On disk (one ``.npz``): ``x`` (chunks, D) float32 normalised sampled latents of every melody, all splits,
concatenated; ``offsets`` (melodies + 1,) into x; ``split`` (melodies,) 0/1/2 = train/validation/test;
``normalizer`` JSON (fitted on the train split)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from melodiff.config import from_dict, to_dict
from melodiff.data.chunks import melody_chunks
from melodiff.data.normalizer import LatentNormalizer, Scaling
from melodiff.data.prepare import SPLITS, load_melodies
from melodiff.errors import MelodiffError
from melodiff.utils.io import atomic_write_bytes
from melodiff.vae.model import MelodyVAE
from melodiff.vae.train import encode_chunks


@dataclass
class LatentDataset:
    x: np.ndarray  # (chunks, D) float32, normalised
    offsets: np.ndarray  # (melodies + 1,) int64
    split: np.ndarray  # (melodies,) int8 index into SPLITS
    normalizer: LatentNormalizer

    def sequences(self, split: str) -> list[np.ndarray]:
        """The latent sequences (chunks, D) of every melody in ``split``."""
        code = SPLITS.index(split)
        return [self.x[self.offsets[i]:self.offsets[i + 1]] for i in np.flatnonzero(self.split == code)]

    def save(self, path: str | Path) -> None:
        import io

        buf = io.BytesIO()
        np.savez(buf, x=self.x, offsets=self.offsets, split=self.split,
                 normalizer=np.array(json.dumps(to_dict(self.normalizer))))
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> LatentDataset:
        path = Path(path)
        if not path.is_file():
            raise MelodiffError(f"{path}: no latent dataset (run `melodiff encode` first)")
        with np.load(path) as f:
            normalizer = from_dict(LatentNormalizer, json.loads(str(f["normalizer"])))
            return cls(f["x"], f["offsets"], f["split"], normalizer)


def encode_dataset(vae: MelodyVAE, data_dir: str | Path, seed: int = 0, threshold: float = 1.0,
                   dims: Sequence[int] | None = None, scaling: Scaling | str = Scaling.MINMAX,
                   use_mean: bool = False) -> LatentDataset:
    """Encode every melody of ``data_dir`` chunk by chunk with a *sampled* z (as the paper), or the encoder mean if
    ``use_mean``; fit the normaliser on the train split (trimming by mean sigma < ``threshold``, or keeping ``dims``
    if given, e.g. the paper's 42)."""
    melodies, index = load_melodies(data_dir)
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
    x = normalizer.transform(z).numpy().astype(np.float32)
    return LatentDataset(x, offsets, split, normalizer)
