"""The DDPM schedule: betas, alpha_bar, q_sample and the eps <-> x0 conversions (no network)."""

from __future__ import annotations

import json
import math
from importlib import resources

import pytest
import torch

from melodiff.config import from_dict, to_dict
from melodiff.diffusion.config import BetaSchedule, ScheduleConfig
from melodiff.diffusion.schedule import NoiseSchedule, predict_eps, predict_x0, q_sample
from melodiff.errors import MelodiffError

CONFIG = ScheduleConfig(num_steps=100, beta_start=1e-4, beta_end=0.05)


@pytest.fixture
def schedule() -> NoiseSchedule:
    return NoiseSchedule(CONFIG)


def test_betas_are_linear_with_the_configured_endpoints(schedule: NoiseSchedule) -> None:
    betas = schedule.betas
    assert betas.shape == (CONFIG.num_steps + 1,) and betas[0] == 0
    assert betas[1].item() == pytest.approx(CONFIG.beta_start, rel=1e-12)
    assert betas[-1].item() == pytest.approx(CONFIG.beta_end, rel=1e-12)
    diffs = betas[2:] - betas[1:-1]
    assert torch.allclose(diffs, diffs.mean().expand_as(diffs), rtol=0, atol=1e-12)


def test_alpha_bar_starts_at_one_and_decreases(schedule: NoiseSchedule) -> None:
    ab = schedule.alpha_bar
    assert ab[0].item() == 1.0
    assert (ab[1:] < ab[:-1]).all()
    assert (ab > 0).all()
    assert torch.allclose(ab, torch.cumprod(1 - schedule.betas, 0))


def test_q_sample_at_alpha_bar_one_is_x0() -> None:
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(3, 5, 4, generator=g), torch.randn(3, 5, 4, generator=g)
    assert torch.equal(q_sample(x0, torch.ones(3), eps), x0)
    assert torch.equal(q_sample(x0, torch.zeros(3), eps), eps)


def test_predict_x0_and_eps_invert_q_sample(schedule: NoiseSchedule) -> None:
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(6, 5, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(6, 5, 4, generator=g, dtype=torch.float64)
    alpha_bar = schedule.alpha_bar[torch.tensor([1, 10, 30, 50, 80, 100])]
    x_t = q_sample(x0, alpha_bar, eps)
    assert torch.allclose(predict_x0(x_t, eps, alpha_bar), x0, atol=1e-9)
    assert torch.allclose(predict_eps(x_t, x0, alpha_bar), eps, atol=1e-9)


def test_per_example_alpha_bar_broadcasts() -> None:
    x0, eps = torch.ones(2, 3, 4), torch.zeros(2, 3, 4)
    out = q_sample(x0, torch.tensor([1.0, 0.25]), eps)
    assert torch.allclose(out[0], torch.ones(3, 4)) and torch.allclose(out[1], torch.full((3, 4), 0.5))


def test_sample_alpha_bar_range_and_reproducibility(schedule: NoiseSchedule) -> None:
    a = schedule.sample_alpha_bar(4096, torch.Generator().manual_seed(3))
    b = schedule.sample_alpha_bar(4096, torch.Generator().manual_seed(3))
    c = schedule.sample_alpha_bar(4096, torch.Generator().manual_seed(4))
    assert a.shape == (4096,) and torch.equal(a, b) and not torch.equal(a, c)
    assert (a > schedule.alpha_bar[-1]).all() and (a <= 1).all()
    assert a.min() < schedule.alpha_bar[90] and a.max() > schedule.alpha_bar[5]  # covers the range


@pytest.mark.parametrize("kwargs", [{"num_steps": 0}, {"beta_start": 0.0}, {"beta_start": 0.1, "beta_end": 0.05},
                                    {"beta_end": 1.0}])
def test_bad_schedule_config_raises(kwargs: dict) -> None:
    with pytest.raises(MelodiffError):
        ScheduleConfig(**kwargs)


def test_cosine_alpha_bar_follows_the_squared_cosine() -> None:
    schedule = NoiseSchedule(ScheduleConfig(num_steps=100, kind="cosine"))
    assert schedule.config.kind is BetaSchedule.COSINE
    ab = schedule.alpha_bar
    assert ab[0] == 1 and (ab[1:] < ab[:-1]).all() and (ab > 0).all()
    assert schedule.betas.max().item() == pytest.approx(0.999)  # only the last beta is clipped
    f = [math.cos((t / 100 + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(100)]
    assert ab[:100].tolist() == pytest.approx([v / f[0] for v in f], rel=1e-12)


def test_schedule_kind_round_trips_and_old_configs_are_linear() -> None:
    config = ScheduleConfig(num_steps=50, kind=BetaSchedule.COSINE)
    saved = json.loads(json.dumps(to_dict(config)))
    assert saved["kind"] == "cosine" and from_dict(ScheduleConfig, saved) == config
    old = {"num_steps": 1000, "beta_start": 1e-6, "beta_end": 0.01}  # written before ``kind`` existed
    assert from_dict(ScheduleConfig, old) == ScheduleConfig() and ScheduleConfig().kind is BetaSchedule.LINEAR
    shipped = resources.files("melodiff") / "models" / "default" / "diffusion" / "config.json"
    assert from_dict(ScheduleConfig, json.loads(shipped.read_text())["schedule"]).kind is BetaSchedule.LINEAR


def test_unknown_schedule_kind_raises() -> None:
    with pytest.raises(MelodiffError, match="unknown beta schedule 'sigmoid'"):
        ScheduleConfig(kind="sigmoid")
    with pytest.raises(MelodiffError, match="'sigmoid'"):
        from_dict(ScheduleConfig, {"kind": "sigmoid"})
