"""eps_theta(x_t, noise_level): the paper's transformer denoiser (docs/PAPER.md §4). Knows nothing of betas."""

from __future__ import annotations

import torch
from torch import nn

from melodiff.diffusion.config import DenoiserConfig
from melodiff.layers import DenseResBlock, TransformerTrunk, sinusoidal_embedding


class TransformerDenoiser(nn.Module):
    """x_t (B, L, D) normalised latents, noise_level (B,) = sqrt(alpha_bar) in [0, 1] -> eps (B, L, D).

    Dense(D -> width) + positions -> pre-LN transformer (non-causal) -> LN -> Dense(dense_units) -> residual dense
    blocks with FiLM from the noise embedding (sinusoid of 5000 * noise_level -> Dense -> swish -> Dense) -> LN ->
    Dense(D). ``padding_mask`` (B, L) True marks padded positions (shorter melodies in training)."""

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        c = config
        self.config = config
        self.trunk = TransformerTrunk(c.latent_dim, c.width, c.layers, c.heads, c.mlp, c.dense_units)
        self.noise_mlp = nn.Sequential(nn.Linear(c.noise_channels, c.noise_embedding), nn.SiLU(),
                                       nn.Linear(c.noise_embedding, c.noise_embedding))
        self.blocks = nn.ModuleList([DenseResBlock(c.dense_units, c.noise_embedding) for _ in range(c.dense_blocks)])
        self.norm = nn.LayerNorm(c.dense_units)
        self.output = nn.Linear(c.dense_units, c.latent_dim)

    def forward(self, x_t: torch.Tensor, noise_level: torch.Tensor,
                padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        cond = self.noise_mlp(sinusoidal_embedding(5000.0 * noise_level.to(x_t.dtype), self.config.noise_channels))
        h = self.trunk(x_t, padding_mask=padding_mask)
        for block in self.blocks:
            h = block(h, cond)
        return self.output(self.norm(h))
