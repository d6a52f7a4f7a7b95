"""The VAE objective (docs/PAPER.md §2): reconstruction cross-entropy + beta * KL with annealing, free bits and
two-pass scheduled sampling."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from melodiff.device import multinomial, rand
from melodiff.vae.config import VAETrainConfig
from melodiff.vae.model import MelodyVAE


def beta_at(step: int, config: VAETrainConfig) -> float:
    """beta = max_beta * (1 - beta_rate**step) (Magenta's annealing)."""
    return config.max_beta * (1.0 - config.beta_rate**step)


def teacher_forcing_probability(step: int, config: VAETrainConfig) -> float:
    """Inverse-sigmoid schedule k / (k + exp(step / k)); 1.0 (always teacher forcing) when sampling_rate is 0."""
    k = config.sampling_rate
    if k <= 0:
        return 1.0
    return k / (k + math.exp(min(step / k, 700.0)))


def kl_divergence(mu: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per dimension, (B, Z), in nats."""
    return 0.5 * (mu.square() + sigma.square() - 1.0) - torch.log(sigma.clamp_min(1e-12))


def vae_loss(model: MelodyVAE, tokens: torch.Tensor, step: int, config: VAETrainConfig,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """tokens (B, 32) -> (loss, metrics). Scheduled sampling: a teacher-forced pass predicts every step, then a
    second pass reads, at each position independently with probability 1 - p_teacher, the model's own sample
    instead of the true previous token (a parallel approximation of Magenta's step-wise sampling;
    docs/DEVIATIONS.md)."""
    z, mu, sigma = model.encode(tokens, generator)
    p_teacher = teacher_forcing_probability(step, config)
    if p_teacher >= 1.0:
        logits = model.decoder_logits(z, tokens)
    else:
        with torch.no_grad():  # the first pass only draws the samples: no graph kept (less memory and time)
            logits = model.decoder_logits(z, tokens)
            sampled = multinomial(torch.softmax(logits.flatten(0, 1), -1), generator)
            sampled = sampled.view_as(tokens)
            use_sample = rand(tokens.shape, generator, logits) >= p_teacher
            inputs = torch.where(use_sample, sampled, tokens)
        logits = model.decoder_logits(z, inputs)
    ce = F.cross_entropy(logits.transpose(1, 2), tokens.long(), reduction="none").sum(1)  # (B,) nats per chunk
    kl = kl_divergence(mu, sigma).sum(1)
    free_nats = config.free_bits * math.log(2.0)
    beta = beta_at(step, config)
    loss = ce.mean() + beta * (kl - free_nats).clamp_min(0.0).mean()
    accuracy = (logits.argmax(-1) == tokens).float().mean()
    return loss, {"loss": loss.item(), "ce": ce.mean().item(), "kl": kl.mean().item(), "beta": beta,
                  "p_teacher": p_teacher, "accuracy": accuracy.item()}
