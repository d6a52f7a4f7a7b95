"""The paper's evaluation (PAPER.md §7) for our models: framewise self-similarity (Consistency / Variance of pitch
and duration, against the *training* melodies as ground truth) and latent FD / MMD (against the held-out *test*
latents), for unconditional generation and for infilling the middle half of test sequences.

Rows, unconditional: Test data (real test melodies), Diffusion with each requested sampler, TransformerMDN (if given),
Prior (N(0, 1) VAE latents). Infilling (on the infilled region only): Test data (the real region), Diffusion,
Interpolation (slerp in the full VAE latent space between the latents either side of the gap), Prior."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from melodiff.baseline.mdn import TransformerMDN, mdn_sample
from melodiff.diffusion.sampling import Sampler
from melodiff.metrics.framewise import consistency_variance, oa_statistics
from melodiff.metrics.latent import frechet_distance, mmd_rbf
from melodiff.music.melody import CHUNK_STEPS, Melody
from melodiff.pipeline import Pipeline, SamplingOptions

log = logging.getLogger(__name__)
COLUMNS = ("pitch_consistency", "pitch_variance", "duration_consistency", "duration_variance")


@dataclass
class EvalRow:
    task: str  # "unconditional" | "infilling"
    name: str
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between a and b (..., Z) at fraction t."""
    a_n, b_n = a / a.norm(dim=-1, keepdim=True), b / b.norm(dim=-1, keepdim=True)
    omega = torch.acos((a_n * b_n).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    return torch.sin((1 - t) * omega) / so * a + torch.sin(t * omega) / so * b


class Evaluator:
    def __init__(self, pipeline: Pipeline, train: list[Melody], test: list[Melody], seed: int = 0) -> None:
        self.pipeline = pipeline
        self.ground_truth = oa_statistics(train)
        self.test = test
        self.seed = seed
        generator = torch.Generator().manual_seed(seed)
        self.test_latents = [pipeline.encode(m, generator) for m in test]
        self.test_flat = torch.cat(self.test_latents).numpy()
        self.rows: list[EvalRow] = []

    # ---- helpers ---------------------------------------------------------------------------------------------------
    def _score(self, task: str, name: str, melodies: list[Melody], latents: np.ndarray | None,
               start: float, start_step: int = 0, end_step: int | None = None) -> EvalRow:
        stats = oa_statistics(melodies, start_step, end_step)
        row = EvalRow(task, name, consistency_variance(stats, self.ground_truth))
        row.scores["pitch_oa_mean"] = stats["pitch"].mean
        row.scores["duration_oa_mean"] = stats["duration"].mean
        if latents is not None:
            flat = latents.reshape(-1, latents.shape[-1])
            row.scores["latent_fd"] = frechet_distance(self.test_flat, flat)
            row.scores["latent_mmd"] = mmd_rbf(self.test_flat, flat)
        row.seconds = time.time() - start
        self.rows.append(row)
        log.info("%s / %s: %s", task, name, row.scores)
        return row

    def _generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed + 1)

    # ---- unconditional ---------------------------------------------------------------------------------------------
    def unconditional(self, num_samples: int, samplers: list[tuple[Sampler, int | None]],
                      mdn: TransformerMDN | None = None, length: int | None = None) -> None:
        p = self.pipeline
        length = length or p.window_chunks
        t0 = time.time()
        self._score("unconditional", "Test data", self.test, None, t0)
        for sampler, steps in samplers:
            t0 = time.time()
            options = SamplingOptions(sampler=sampler, steps=steps)
            g = self._generator()
            x = p.sample_latents(length, num_samples, options, g)
            label = f"Diffusion ({sampler.value}{'' if sampler is Sampler.DDPM else f', {steps} steps'})"
            self._score("unconditional", label, p.decode(x, options, g), x.numpy(), t0)
        if mdn is not None:
            t0 = time.time()
            g = self._generator()
            bound = p.normalizer.bound
            x = mdn_sample(mdn, num_samples, length, g).clamp(-bound, bound)
            self._score("unconditional", "TransformerMDN", p.decode(x, SamplingOptions(), g), x.numpy(), t0)
        t0 = time.time()
        g = self._generator()
        z = torch.randn(num_samples, length, p.normalizer.z_size, generator=g)
        self._score("unconditional", "Prior (N(0,1) latents)", self._decode_z(z), p.normalizer.transform(z).numpy(),
                    t0)

    def _decode_z(self, z: torch.Tensor) -> list[Melody]:
        tokens = self.pipeline.vae.decode(z.flatten(0, 1))
        return [Melody.from_chunks(t) for t in tokens.view(z.shape[0], z.shape[1], -1)]

    # ---- infilling -------------------------------------------------------------------------------------------------
    def infilling(self, sampler: Sampler, steps: int | None, length: int | None = None,
                  max_items: int = 200) -> None:
        """Windows of ``length`` chunks (hop length/2) from the test melodies; keep the first and last quarter,
        regenerate the middle half (the paper: keep latents 0-7 and 24-31 of 32)."""
        p = self.pipeline
        length = length or p.window_chunks
        q = length // 4
        windows = []
        for m, lat in zip(self.test, self.test_latents, strict=True):
            chunks = m.padded().chunks()
            for s in range(0, len(chunks) - length + 1, max(length // 2, 1)):
                windows.append((chunks[s:s + length], lat[s:s + length]))
        windows = windows[:max_items]
        if not windows:
            log.warning("no test melody has %d chunks: infilling not evaluated", length)
            return
        real = [Melody.from_chunks(c) for c, _ in windows]
        known = torch.stack([lat for _, lat in windows])
        mask = torch.ones(length)
        mask[q:length - q] = 0
        region = (q * CHUNK_STEPS, (length - q) * CHUNK_STEPS)
        t0 = time.time()
        self._score("infilling", "Test data", real, None, t0, *region)
        t0 = time.time()
        options = SamplingOptions(sampler=sampler, steps=steps)
        g = self._generator()
        x = p.sample_latents(length, len(known), options, g, known=known, mask=mask)
        label = f"Diffusion ({sampler.value}{'' if sampler is Sampler.DDPM else f', {steps} steps'})"
        self._score("infilling", label, p.decode(x, options, g), x[:, q:length - q].numpy(), t0, *region)
        # Interpolation baseline: slerp between the full-z latents either side of the gap.
        t0 = time.time()
        g = self._generator()
        z = p.normalizer.inverse(known, g)
        gap = length - 2 * q
        middle = torch.stack([slerp(z[:, q - 1], z[:, length - q], (i + 1) / (gap + 1)) for i in range(gap)], 1)
        z_interp = torch.cat([z[:, :q], middle, z[:, length - q:]], 1)
        self._score("infilling", "Interpolation (slerp)", self._decode_z(z_interp),
                    p.normalizer.transform(middle).numpy(), t0, *region)
        t0 = time.time()
        z_prior = z.clone()
        z_prior[:, q:length - q] = torch.randn(z[:, q:length - q].shape, generator=g)
        self._score("infilling", "Prior (N(0,1) latents)", self._decode_z(z_prior),
                    p.normalizer.transform(z_prior[:, q:length - q]).numpy(), t0, *region)


def markdown_table(rows: list[EvalRow], task: str) -> str:
    cols = [*COLUMNS, "latent_fd", "latent_mmd"]
    head = "| " + " | ".join(["row", *[c.replace("_", " ") for c in cols], "seconds"]) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for r in rows:
        if r.task != task:
            continue
        cells = [f"{r.scores[c]:.3f}" if c in r.scores else "—" for c in cols]
        lines.append("| " + " | ".join([r.name, *cells, f"{r.seconds:.0f}"]) + " |")
    return "\n".join(lines)
