"""LatentNormalizer: trimming by mean sigma, scaling to [-1, 1], inverse, config round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from melodiff.config import from_dict, to_dict
from melodiff.data.normalizer import LatentNormalizer, Scaling
from melodiff.errors import MelodiffError

Z = 8
SIGMA = np.array([0.1, 1.2, 0.5, 0.98, 1.02, 3.0, 0.2, 1.05])  # mean encoder sigma per dim; kept: < 1
KEPT = (0, 2, 3, 6)


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(200, Z)) * np.arange(1, Z + 1)).astype(np.float32)
    sigma = SIGMA + rng.normal(scale=1e-3, size=(200, Z))  # per-chunk sigmas around the means
    return z, sigma


def test_fit_keeps_dims_below_the_threshold(data) -> None:
    z, sigma = data
    norm = LatentNormalizer.fit(z, sigma)
    assert norm.dims == KEPT and norm.z_size == Z and norm.latent_dim == len(KEPT)
    assert norm.low == z[:, KEPT].min() and norm.high == z[:, KEPT].max()
    assert LatentNormalizer.fit(z, sigma, threshold=0.3).dims == (0, 6)


def test_transform_maps_training_data_onto_minus_one_one(data) -> None:
    z, sigma = data
    norm = LatentNormalizer.fit(z, sigma, scaling=Scaling.MINMAX)  # the paper's scaling
    x = norm.transform(z)
    assert x.shape == (200, len(KEPT)) and x.dtype == torch.float32
    assert x.min().item() == pytest.approx(-1.0, abs=1e-6) and x.max().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.equal(norm.transform(torch.from_numpy(z)), x)
    dropped = z.copy()
    dropped[:, [1, 4, 5, 7]] = 1e6  # dropped dims do not matter
    assert torch.equal(norm.transform(dropped), x)


def test_inverse_restores_the_kept_dims(data) -> None:
    z, sigma = data
    norm = LatentNormalizer.fit(z, sigma)
    back = norm.inverse(norm.transform(z).reshape(20, 10, -1), torch.Generator().manual_seed(0))
    assert back.shape == (20, 10, Z)
    assert torch.allclose(back.reshape(200, Z)[:, KEPT], torch.from_numpy(z[:, KEPT]), atol=1e-5)
    again = norm.inverse(norm.transform(z).reshape(20, 10, -1), torch.Generator().manual_seed(0))
    assert torch.equal(back, again)  # the dropped dims are fresh N(0, 1) draws from the generator
    fill = back.reshape(200, Z)[:, [1, 4, 5, 7]]
    assert abs(fill.mean().item()) < 0.15 and abs(fill.std().item() - 1) < 0.1


def test_config_round_trip(data) -> None:
    norm = LatentNormalizer.fit(*data)
    restored = from_dict(LatentNormalizer, json.loads(json.dumps(to_dict(norm))))
    assert restored == norm and isinstance(restored.dims, tuple)
    with pytest.raises(MelodiffError, match="unknown config keys"):
        from_dict(LatentNormalizer, {**to_dict(norm), "offset": 0.0})


def test_all_collapsed_raises(data) -> None:
    z, sigma = data
    with pytest.raises(MelodiffError, match="collapsed"):
        LatentNormalizer.fit(z, np.ones_like(sigma))
    with pytest.raises(MelodiffError, match="no data"):
        LatentNormalizer.fit(z[:0], sigma[:0])


def test_standard_scaling_gives_unit_variance_and_inverts(data) -> None:
    z, sigma = data
    norm = LatentNormalizer.fit(z, sigma, scaling="standard")
    x = norm.transform(z)
    assert abs(x.mean().item()) < 1e-5 and abs(x.std(unbiased=False).item() - 1) < 1e-4
    assert abs(x.abs().max().item() - norm.bound) < 1e-4
    back = norm.inverse(x, torch.Generator().manual_seed(0))
    assert torch.allclose(back[:, list(norm.dims)], torch.as_tensor(z)[:, list(norm.dims)], atol=1e-4)
    assert from_dict(LatentNormalizer, json.loads(json.dumps(to_dict(norm)))) == norm


def test_mean_latents_fill_the_dropped_dims_with_zero_and_round_trip(data) -> None:
    z, sigma = data
    norm = LatentNormalizer.fit(z, sigma, use_mean=True)
    back = norm.inverse(norm.transform(z), torch.Generator().manual_seed(0))
    assert torch.allclose(back[:, KEPT], torch.from_numpy(z[:, KEPT]), atol=1e-5)
    assert torch.count_nonzero(back[:, [1, 4, 5, 7]]) == 0  # a collapsed dim's encoder mean
    assert from_dict(LatentNormalizer, json.loads(json.dumps(to_dict(norm)))) == norm
    old = to_dict(LatentNormalizer.fit(z, sigma))
    del old["use_mean"]  # configs written before the field existed load as sampled latents
    assert from_dict(LatentNormalizer, old).use_mean is False


def test_standard_scaling_by_default_and_min_max_for_old_configs(data) -> None:
    """fit() scales as `melodiff encode` does; a saved normaliser from before the field existed was min/max."""
    norm = LatentNormalizer.fit(*data)
    assert norm.scaling is Scaling.STANDARD
    old = to_dict(norm)
    del old["scaling"]
    assert from_dict(LatentNormalizer, old).scaling is Scaling.MINMAX
