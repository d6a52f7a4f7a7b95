"""The TransformerMDN baseline (docs/PAPER.md §6): an autoregressive transformer over the same normalised latent
sequences, with a mixture of diagonal Gaussians as the output distribution."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from melodiff.config import check_transformer_sizes
from melodiff.device import multinomial, randn
from melodiff.errors import MelodiffError
from melodiff.layers import DenseResBlock, TransformerTrunk


@dataclass(frozen=True)
class MDNConfig:
    latent_dim: int = 42
    seq_len: int = 32
    width: int = 128
    layers: int = 6
    heads: int = 8
    mlp: int = 2048
    dense_units: int = 2048
    dense_blocks: int = 2
    components: int = 100

    def __post_init__(self) -> None:
        check_transformer_sizes(self)


@dataclass(frozen=True)
class MDNTrainConfig:
    batch_size: int = 128
    steps: int = 250_000
    lr: float = 3e-4
    lr_decay: float = 0.98
    lr_decay_every: int = 4000
    grad_clip: float = 1.0
    seed: int = 0


PRESETS: dict[str, tuple[MDNConfig, MDNTrainConfig]] = {
    "paper": (MDNConfig(), MDNTrainConfig()),
    "cpu": (MDNConfig(seq_len=16, layers=4, mlp=512, dense_units=512, components=20),
            MDNTrainConfig(batch_size=64, steps=4000, lr=1e-3, lr_decay=0.9, lr_decay_every=500)),
    "tiny": (MDNConfig(seq_len=8, width=32, layers=1, heads=2, mlp=64, dense_units=64, dense_blocks=1,
                       components=3), MDNTrainConfig(batch_size=16, steps=30)),
}


def preset(name: str) -> tuple[MDNConfig, MDNTrainConfig]:
    if name not in PRESETS:
        raise MelodiffError(f"unknown MDN preset {name!r}: use one of {', '.join(PRESETS)}")
    return PRESETS[name]


class TransformerMDN(nn.Module):
    """x (B, L, D) -> mixture parameters for every position, each conditioned only on x[:, :position]:
    logits (B, L, K), mu (B, L, K, D), log_sigma (B, L, K, D)."""

    def __init__(self, config: MDNConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.trunk = TransformerTrunk(c.latent_dim, c.width, c.layers, c.heads, c.mlp, c.dense_units)
        self.blocks = nn.ModuleList([DenseResBlock(c.dense_units) for _ in range(c.dense_blocks)])
        self.norm = nn.LayerNorm(c.dense_units)
        self.head = nn.Linear(c.dense_units, c.components * (1 + 2 * c.latent_dim))

    def forward(self, x: torch.Tensor, padding_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        shifted = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)  # position i sees x[:, :i]
        if padding_mask is not None:  # keys are shifted too: position i may attend to shifted[:, j <= i]
            padding_mask = torch.cat([torch.zeros_like(padding_mask[:, :1]), padding_mask[:, :-1]], dim=1)
        h = self.trunk(shifted, causal=True, padding_mask=padding_mask)
        for block in self.blocks:
            h = block(h)
        out = self.head(self.norm(h))
        k, d = self.config.components, self.config.latent_dim
        logits, mu, log_sigma = out.split([k, k * d, k * d], dim=-1)
        shape = (*out.shape[:-1], k, d)
        return logits, mu.reshape(shape), log_sigma.reshape(shape).clamp(-7.0, 5.0)


def mixture_nll(logits: torch.Tensor, mu: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Negative log-likelihood (B, L) of x (B, L, D) under the mixture (nats per latent)."""
    z = (x.unsqueeze(-2) - mu) * torch.exp(-log_sigma)
    log_normal = -0.5 * z.square().sum(-1) - log_sigma.sum(-1) - 0.5 * x.shape[-1] * math.log(2 * math.pi)
    return -torch.logsumexp(F.log_softmax(logits, -1) + log_normal, dim=-1)


def mdn_loss(model: nn.Module, x: torch.Tensor, padding_mask: torch.Tensor) -> torch.Tensor:
    nll = mixture_nll(*model(x, padding_mask), x)
    valid = (~padding_mask).float()
    return (nll * valid).sum() / valid.sum()


@torch.no_grad()
def mdn_sample(model: TransformerMDN, num_samples: int, length: int, generator: torch.Generator | None = None,
               temperature: float = 1.0) -> torch.Tensor:
    """Ancestral sampling, one latent at a time -> (num_samples, length, D). ``temperature`` scales sigma."""
    d = model.config.latent_dim
    x = torch.zeros(num_samples, length, d, device=next(model.parameters()).device)
    for i in range(length):
        logits, mu, log_sigma = (t[:, i].float() for t in model(x[:, :i + 1]))
        k = multinomial(torch.softmax(logits, -1), generator).squeeze(1)
        rows = torch.arange(num_samples, device=x.device)
        eps = randn((num_samples, d), generator, x)
        x[:, i] = mu[rows, k] + temperature * torch.exp(log_sigma[rows, k]) * eps
    return x.cpu()
