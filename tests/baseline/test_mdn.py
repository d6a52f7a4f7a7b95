"""TransformerMDN baseline: causality (gradient test), the mixture likelihood, the sampler."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import distributions as td

from melodiff.baseline.mdn import TransformerMDN, mdn_loss, mdn_sample, mixture_nll, preset
from melodiff.errors import MelodiffError

CONFIG = replace(preset("tiny")[0], latent_dim=4)
L = 6


@pytest.fixture(scope="module")
def model() -> TransformerMDN:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return TransformerMDN(CONFIG)


def latents(batch: int = 2, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, L, CONFIG.latent_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("position", range(L))
def test_output_depends_only_on_earlier_inputs(model: TransformerMDN, position: int) -> None:
    x = latents().requires_grad_(True)
    logits, mu, log_sigma = model(x)
    (logits[:, position].sum() + mu[:, position].sum() + log_sigma[:, position].sum()).backward()
    grad = x.grad.abs().sum((0, 2))
    assert (grad[position:] == 0).all(), f"position {position} sees the future: {grad.tolist()}"
    assert (grad[:position] > 0).all(), f"position {position} ignores the past: {grad.tolist()}"


def test_padding_mask_keeps_causality(model: TransformerMDN) -> None:
    x = latents().requires_grad_(True)
    padding = torch.zeros(2, L, dtype=torch.bool)
    padding[0, 3:] = True
    logits, mu, _ = model(x, padding)
    assert torch.isfinite(mu).all()
    (logits[0, 2].sum() + mu[0, 2].sum()).backward()
    grad = x.grad.abs().sum(-1)
    assert (grad[0, 2:] == 0).all() and (grad[0, :2] > 0).all() and (grad[1] == 0).all()


def test_prefix_outputs_match_in_eval_mode(model: TransformerMDN) -> None:
    """mdn_sample runs the model on prefixes (no grad, eval mode): the prefix sees what the full sequence sees."""
    x = latents()
    model.eval()
    try:
        with torch.no_grad():
            full, prefix = model(x), model(x[:, :3])
    finally:
        model.train()
    for a, b in zip(full, prefix, strict=True):
        assert torch.allclose(a[:, :3], b, atol=1e-5)


def test_mixture_nll_matches_a_diagonal_gaussian_for_one_component() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    mu = torch.randn(3, 5, 1, 4, generator=g, dtype=torch.float64)
    log_sigma = 0.5 * torch.randn(3, 5, 1, 4, generator=g, dtype=torch.float64)
    logits = torch.randn(3, 5, 1, generator=g, dtype=torch.float64)  # irrelevant with one component
    expected = -td.Independent(td.Normal(mu[:, :, 0], log_sigma[:, :, 0].exp()), 1).log_prob(x)
    assert torch.allclose(mixture_nll(logits, mu, log_sigma, x), expected, atol=1e-10)


def test_mixture_nll_matches_torch_distributions() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    mu = torch.randn(3, 5, 7, 4, generator=g, dtype=torch.float64)
    log_sigma = 0.5 * torch.randn(3, 5, 7, 4, generator=g, dtype=torch.float64)
    logits = torch.randn(3, 5, 7, generator=g, dtype=torch.float64)
    mixture = td.MixtureSameFamily(td.Categorical(logits=logits),
                                   td.Independent(td.Normal(mu, log_sigma.exp()), 1))
    assert torch.allclose(mixture_nll(logits, mu, log_sigma, x), -mixture.log_prob(x), atol=1e-10)


def test_mdn_loss_ignores_padded_positions(model: TransformerMDN) -> None:
    x = latents()
    padding = torch.zeros(2, L, dtype=torch.bool)
    padding[:, 4:] = True
    perturbed = x.clone()
    perturbed[:, 4:] = 50.0
    with torch.no_grad():
        assert torch.allclose(mdn_loss(model, x, padding), mdn_loss(model, perturbed, padding), atol=1e-5)
        assert not torch.allclose(mdn_loss(model, x, ~padding), mdn_loss(model, perturbed, ~padding), atol=1e-3)


def test_mdn_sample_shape_and_seed(model: TransformerMDN) -> None:
    model.eval()
    try:
        a = mdn_sample(model, 3, 5, torch.Generator().manual_seed(4))
        b = mdn_sample(model, 3, 5, torch.Generator().manual_seed(4))
        c = mdn_sample(model, 3, 5, torch.Generator().manual_seed(5))
    finally:
        model.train()
    assert a.shape == (3, 5, CONFIG.latent_dim) and torch.isfinite(a).all()
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unknown_preset_raises() -> None:
    with pytest.raises(MelodiffError, match="unknown MDN preset"):
        preset("huge")
