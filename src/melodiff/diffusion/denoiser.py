"""eps_theta(x_t, noise_level [, context]): the paper's transformer denoiser (docs/PAPER.md §4), optionally told the
tune context (data/contexts.py). Knows nothing of betas."""

from __future__ import annotations

import torch
from torch import nn

from melodiff.data.contexts import MAX_DENSITY, MODES, POSITION_CLASSES
from melodiff.diffusion.config import DenoiserConfig
from melodiff.layers import DenseResBlock, TransformerTrunk, sinusoidal_embedding


def context_classes(config: DenoiserConfig) -> dict[str, int]:
    """Classes of each context field of a context model — positional (B, L): start, end; per tune (B,): minor,
    style, density; the index equal to the count means "not told"."""
    return {"start": POSITION_CLASSES, "end": POSITION_CLASSES, "minor": len(MODES), "style": config.styles,
            "density": MAX_DENSITY}


class TransformerDenoiser(nn.Module):
    """x_t (B, L, D) normalised latents, noise_level (B,) = sqrt(alpha_bar) in [0, 1] -> eps (B, L, D).

    Dense(D -> width) + positions [+ context embeddings] -> pre-LN transformer (non-causal) -> LN ->
    Dense(dense_units) -> residual dense blocks with FiLM from the noise embedding (sinusoid of 5000 * noise_level ->
    Dense -> swish -> Dense) -> LN -> Dense(D). ``padding_mask`` (B, L) True marks padded positions (shorter melodies
    in training). A context model (``config.context``) adds one learned embedding per context field (context_classes;
    a field missing from ``context``, or all of them when it is None, is "not told"); ``config.noise_in_trunk`` adds
    the noise embedding to the tokens too (not the paper: its attention does not know the noise level). A model of
    several meters (``config.meters``, e.g. 3/4 and 6/8, which share a VAE) adds a learned embedding of the meter
    (``context["meter"]`` (B,) index into config.meters, always told) to every token."""

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
        self.noise_to_trunk = nn.Linear(c.noise_embedding, c.width) if c.noise_in_trunk else None
        self.classes = context_classes(c) if c.context else {}
        self.context = nn.ModuleDict({name: nn.Embedding(n + 1, c.width) for name, n in self.classes.items()})
        self.meter = nn.Embedding(len(c.meters), c.width) if len(c.meters) > 1 else None
        for embedding in [*self.context.values(), *([self.meter] if self.meter is not None else [])]:
            nn.init.normal_(embedding.weight, std=0.02)

    def _context(self, x_t: torch.Tensor, context: dict[str, torch.Tensor] | None) -> torch.Tensor | None:
        meter = None
        if self.meter is not None:
            if context is None or context.get("meter") is None:
                raise ValueError(f"a denoiser of the meters {', '.join(self.config.meters)} must be told the meter")
            meter = self.meter(context["meter"].long()).unsqueeze(1)
        if not self.classes:
            return meter
        context = context or {}
        b, n = x_t.shape[:2]
        h = torch.zeros(b, n, self.config.width, dtype=x_t.dtype, device=x_t.device)
        for name, classes in self.classes.items():
            index = context.get(name)
            if index is None:
                index = torch.full((b,), classes, dtype=torch.long, device=x_t.device)
            e = self.context[name](index.long())
            h = h + (e if e.dim() == 3 else e.unsqueeze(1))
        return h if meter is None else h + meter

    def forward(self, x_t: torch.Tensor, noise_level: torch.Tensor, padding_mask: torch.Tensor | None = None,
                context: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        cond = self.noise_mlp(sinusoidal_embedding(5000.0 * noise_level.to(x_t.dtype), self.config.noise_channels))
        extra = self._context(x_t, context)
        if self.noise_to_trunk is not None:  # attention that knows how noisy its inputs are
            noise = self.noise_to_trunk(cond).unsqueeze(1)
            extra = noise if extra is None else extra + noise
        h = self.trunk(x_t, padding_mask=padding_mask, extra=extra)
        for block in self.blocks:
            h = block(h, cond)
        return self.output(self.norm(h))
