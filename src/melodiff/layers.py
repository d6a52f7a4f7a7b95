"""Network parts shared by the diffusion denoiser and the TransformerMDN baseline (docs/PAPER.md §4, §6)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sinusoidal_embedding(values: torch.Tensor, channels: int, max_period: float = 10_000.0) -> torch.Tensor:
    """values (...,) -> (..., channels): [sin(v * f_i), cos(v * f_i)] with f_i = max_period**(-i / (channels/2 - 1)),
    i = 0..channels/2 - 1 (the paper's 64 sin + 64 cos with frequencies 10000^(-i/63))."""
    half = channels // 2
    freqs = max_period ** (-torch.arange(half, dtype=torch.float32, device=values.device) / max(half - 1, 1))
    angles = values.float().unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class TransformerTrunk(nn.Module):
    """Dense(in -> width) + sinusoidal position encoding -> pre-LN transformer encoder blocks (GELU, no dropout)
    -> LayerNorm -> Dense(width -> dense_units). Input (B, L, in_dim) -> (B, L, dense_units)."""

    def __init__(self, in_dim: int, width: int, layers: int, heads: int, mlp: int, dense_units: int) -> None:
        super().__init__()
        self.width = width
        self.input = nn.Linear(in_dim, width)
        block = nn.TransformerEncoderLayer(width, heads, mlp, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(block, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.output = nn.Linear(width, dense_units)

    def forward(self, x: torch.Tensor, causal: bool = False, padding_mask: torch.Tensor | None = None,
                extra: torch.Tensor | None = None) -> torch.Tensor:
        """``padding_mask`` (B, L) bool, True = padding (ignored as a key); ``extra`` (B, L, width) is added to the
        embedded input (e.g. a conditioning embedding)."""
        positions = torch.arange(x.shape[1], device=x.device)
        h = self.input(x) + sinusoidal_embedding(positions, self.width).to(x.dtype)
        if extra is not None:
            h = h + extra
        n = x.shape[1]
        mask = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1) if causal else None  # True = masked
        h = self.blocks(h, mask=mask, is_causal=causal, src_key_padding_mask=padding_mask)
        return self.output(self.norm(h))


class DenseResBlock(nn.Module):
    """LN -> [FiLM] -> swish -> Dense -> LN -> [FiLM] -> swish -> Dense, plus the skip (docs/PAPER.md §4).
    With ``film_dim`` > 0 each LN output is modulated as gamma * h + xi, gamma and xi = Dense(noise embedding)."""

    def __init__(self, units: int, film_dim: int = 0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(units), nn.LayerNorm(units)
        self.dense1, self.dense2 = nn.Linear(units, units), nn.Linear(units, units)
        self.film = nn.ModuleList([nn.Linear(film_dim, 2 * units) for _ in range(2)]) if film_dim else None

    def _modulate(self, h: torch.Tensor, i: int, cond: torch.Tensor | None) -> torch.Tensor:
        if self.film is None:
            return h
        gamma, xi = self.film[i](cond).unsqueeze(1).chunk(2, dim=-1)
        return gamma * h + xi

    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dense1(F.silu(self._modulate(self.norm1(x), 0, cond)))
        h = self.dense2(F.silu(self._modulate(self.norm2(h), 1, cond)))
        return x + h
