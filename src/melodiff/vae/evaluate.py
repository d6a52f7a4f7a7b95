"""Scores of a trained VAE: reconstruction of held-out chunks, and what its prior's samples look like."""

from __future__ import annotations

import math

import numpy as np
import torch

from melodiff.errors import MelodiffError
from melodiff.metrics.stats import melody_statistics, pitch_class_histogram
from melodiff.music.melody import Melody
from melodiff.music.meter import meter
from melodiff.vae.loss import kl_divergence
from melodiff.vae.model import MelodyVAE


@torch.no_grad()
def evaluate_vae(model: MelodyVAE, chunks: np.ndarray, batch_size: int = 512) -> dict[str, float]:
    """Reconstruction quality on held-out chunks (N, 32): greedy decode from mu; step accuracy, exact-chunk rate,
    note-onset F1 (pitch and step must match), teacher-forced cross-entropy and KL per chunk (nats), and how many
    dims have a mean encoder sigma below 0.5 / 0.9 / 1.0 (the trimming candidates, docs/PAPER.md §3)."""
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
    melody in the VAE's (first) meter, against the chunks (N, steps) of a split: notes per bar, pitch range
    (semitones), scale consistency, pitch-class distance to the data, rest fraction (metrics/stats.py)."""
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(num, model.config.z_size, generator=generator)
    bars = meter(model.config.meters[0])
    sampled = [Melody(c, bars) for c in model.decode(z).numpy()]
    data = [Melody(c, bars) for c in chunks]
    reference = pitch_class_histogram(data)
    return {name: {k: None if math.isnan(v) else round(v, 4)  # None (JSON null): no notes to measure
                   for k, v in melody_statistics(melodies, reference).items() if k in PRIOR_STATISTICS}
            for name, melodies in (("data", data), ("prior", sampled))}
