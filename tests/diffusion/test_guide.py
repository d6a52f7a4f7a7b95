"""The guide of diffusion/guide.py: what it steers towards, and that steering moves the sampler's prediction."""

from __future__ import annotations

import math

import pytest
import torch

import melodiff.diffusion.guide as guide_module
import melodiff.pipeline as pipeline_module
from melodiff.diffusion.guide import (
    DEGREES,
    DENSITY_SPREAD,
    WEIGHTS,
    AttributeGuide,
    GuideConfig,
    GuideTargets,
    draw_keys,
    guided,
)
from melodiff.diffusion.schedule import predict_x0
from melodiff.errors import MelodiffError
from melodiff.music.controls import Controls
from melodiff.music.keys import melody_key
from melodiff.options import Sampler, SamplingOptions
from melodiff.pipeline import tune_endings
from tiny_model import guided_pipeline, untrained_pipeline

STYLES = ("music21:a", "music21:b", "music21:c")


def outputs(density: list[list[float]], minor: list[float], style: list[list[float]]) -> dict[str, torch.Tensor]:
    ending = torch.zeros(2, 2, DEGREES + 1)
    ending[0, 1, 0] = 5.0  # the first piece's second chunk ends on the tonic, surely
    tonic = torch.zeros(2, 12)
    tonic[1, 7] = 5.0  # the second piece is in G
    return {"density": torch.tensor(density), "minor": torch.tensor(minor), "style": torch.tensor(style),
            "ending": ending, "tonic": tonic}


def test_log_prob_is_highest_at_what_is_asked() -> None:
    at = math.log1p(4.0)
    out = outputs([[at, at], [at + 0.3, at - 0.3]], [2.0, -2.0], [[3.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    density = GuideTargets(density=4.0).log_prob(out)
    assert density[0] == 0 and density[1] == pytest.approx(-2 * 0.3**2 / (2 * DENSITY_SPREAD**2))  # both chunks off
    minor = GuideTargets(minor=torch.ones(2)).log_prob(out) / WEIGHTS["minor"]
    assert minor[0] > math.log(0.85) and minor[1] < math.log(0.15)
    major = GuideTargets(minor=torch.zeros(2)).log_prob(out) / WEIGHTS["minor"]
    assert (major.exp() + minor.exp()).allclose(torch.ones(2))
    style = GuideTargets(style=0).log_prob(out)
    assert style[0] > style[1]
    tonic = GuideTargets(tonic=torch.tensor([7, 7])).log_prob(out)
    assert tonic[1] > tonic[0]
    endings = torch.tensor([[False, True], [False, True]])
    ending = GuideTargets(endings=endings).log_prob(out)
    assert ending[0] > ending[1]
    first = {k: v[:, :1] if v.dim() == 3 else v for k, v in out.items()}
    assert GuideTargets(endings=endings).window(0, 1).log_prob(first).eq(0).all()  # no ending in the first chunk
    both = GuideTargets(density=4.0, minor=torch.ones(2), style=0).log_prob(out)
    assert torch.allclose(both, density + minor * WEIGHTS["minor"] + style)
    assert not GuideTargets() and GuideTargets(style=0)


class MeanDensity(torch.nn.Module):
    """A stand-in guide: each chunk's "density" is the mean of its clean latent as a denoiser that predicts no noise
    sees it (x / sqrt(abar)), the tune is minor when x is negative."""

    def forward(self, x: torch.Tensor, level: torch.Tensor) -> dict[str, torch.Tensor]:
        x0 = x / level.view(-1, 1, 1)
        return {"density": x0.mean(-1), "minor": -x0.mean((1, 2)), "style": torch.zeros(x.shape[0], 1),
                "ending": torch.zeros(*x.shape[:2], DEGREES + 1), "tonic": torch.zeros(x.shape[0], 12)}


def test_guidance_moves_the_predicted_data_towards_the_target() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 5)
    level = torch.full((4,), 0.6)
    model_fn = lambda x, level: torch.zeros_like(x)  # noqa: E731 — predicts no noise: x0 = x / 0.6
    target = math.log1p(3.0)
    alpha_bar = torch.tensor(0.36, dtype=torch.float64)
    plain = predict_x0(x, model_fn(x, level), alpha_bar).mean(-1)
    steered = predict_x0(x, guided(model_fn, MeanDensity(), GuideTargets(density=3.0), 0.01)(x, level),
                         alpha_bar).mean(-1)
    assert ((steered - target).abs() < (plain - target).abs()).all()
    low, alpha_low = torch.full((4,), 0.3), torch.tensor(0.09, dtype=torch.float64)  # a key is steered when noisy
    minor = predict_x0(x, guided(model_fn, MeanDensity(), GuideTargets(minor=torch.ones(4)), 1.0)(x, low), alpha_low)
    assert (minor.mean((1, 2)) < predict_x0(x, model_fn(x, low), alpha_low).mean((1, 2))).all()
    unsteered = guided(model_fn, MeanDensity(), GuideTargets(minor=torch.ones(4)), 1.0)(x, level)
    assert unsteered.equal(model_fn(x, level))  # ... and left alone when nearly clean (KEY_UNTIL)


def test_no_targets_or_no_scale_leaves_the_denoiser_alone() -> None:
    model_fn = lambda x, level: x  # noqa: E731
    assert guided(model_fn, MeanDensity(), GuideTargets(), 1.0) is model_fn
    assert guided(model_fn, MeanDensity(), GuideTargets(density=4.0), 0.0) is model_fn


def test_guidance_works_inside_no_grad_and_needs_no_gradient_of_the_denoiser() -> None:
    guide = AttributeGuide(GuideConfig(latent_dim=5, seq_len=6, width=16, layers=1, heads=2, mlp=16,
                                       noise_channels=8, styles=STYLES))
    denoiser = torch.nn.Linear(5, 5)
    targets = GuideTargets(density=4.0, style=2, tonic=torch.tensor([0, 2, 7]), minor=torch.tensor([0, 1, 0]),
                           endings=torch.zeros(3, 6, dtype=torch.bool).index_fill(1, torch.tensor([5]), True))
    model_fn = guided(lambda x, level: denoiser(x), guide, targets, 2.0)
    with torch.no_grad():
        eps = model_fn(torch.randn(3, 6, 5), torch.full((3,), 0.5))
    assert eps.shape == (3, 6, 5) and torch.isfinite(eps).all() and denoiser.weight.grad is None
    out = guide(torch.randn(2, 6, 5), torch.full((2,), 0.9), torch.tensor([[False] * 6, [False] * 3 + [True] * 3]))
    assert out["density"].shape == (2, 6) and out["minor"].shape == (2,) and out["style"].shape == (2, 3)
    assert out["tonic"].shape == (2, 12) and out["ending"].shape == (2, 6, DEGREES + 1)


def test_guide_config_is_checked() -> None:
    with pytest.raises(MelodiffError, match="noise_channels"):
        GuideConfig(noise_channels=7)
    with pytest.raises(MelodiffError, match="width"):
        GuideConfig(width=30, heads=4)
    assert GuideConfig(styles=["x", "y"]).styles == ("x", "y")


def test_keys_are_drawn_as_the_training_tunes_have_them() -> None:
    counts = [0] * 24
    counts[7], counts[12 + 9] = 300, 100  # G major three times as often as A minor
    config = GuideConfig(keys=counts)
    keys = draw_keys(config, 4000, seed=1)
    assert set(map(tuple, keys.tolist())) == {(7, 0), (9, 1)} and abs((keys[:, 1] == 1).float().mean() - 0.25) < 0.03
    assert keys.equal(draw_keys(config, 4000, seed=1))
    assert draw_keys(config, 3, seed=1, key=(2, True)).tolist() == [[2, 1]] * 3
    assert draw_keys(GuideConfig(), 3, seed=1) is None
    with pytest.raises(MelodiffError, match="key counts"):
        GuideConfig(keys=[1] * 12)


def test_a_guided_pipeline_steers_to_drawn_keys_and_endings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Free pieces are steered to keys drawn from the guide's table and a tonic at the end (of the last chunk and
    the chunk it repeats); guidance 0 is the unguided model's sampling, bit for bit."""
    pipeline, plain = guided_pipeline(), untrained_pipeline()
    tunes = pipeline.draw_tunes(200, seed=3)
    assert set(map(tuple, tunes[:, :2].tolist())) == {(2, 0), (11, 1)} and (tunes[:, 2:] == -1).all()
    assert pipeline.draw_tunes(2, seed=3, controls=Controls.parse(key="F#m"))[:, :2].tolist() == [[6, 1]] * 2
    assert plain.draw_tunes(2, seed=3) is None and pipeline.styles == ("music21:a", "music21:b")
    seen = []
    monkeypatch.setattr(guide_module, "guided", lambda fn, guide, targets, scale: seen.append(targets) or fn)
    monkeypatch.setattr(pipeline_module, "guided", guide_module.guided)
    fast = SamplingOptions(Sampler.DDIM, steps=2)
    pipeline.generate(8, 2, seed=1, options=fast, form="AABB", controls=Controls(density=3.0, style="b"))
    (targets,) = seen
    assert targets.density == 3.0 and targets.style == 1 and targets.tonic.tolist() == tunes_of(pipeline, 2, 1)
    assert targets.endings.tolist() == [[False, False, True, True]] * 2  # the last B and the B it repeats
    seen.clear()
    off = pipeline.generate(8, 2, seed=1, options=SamplingOptions(Sampler.DDIM, steps=2, guidance=0))
    assert not seen and off == plain.generate(8, 2, seed=1, options=SamplingOptions(Sampler.DDIM, steps=2))


def tunes_of(pipeline, num: int, seed: int) -> list[int]:
    return pipeline.draw_tunes(num, seed)[:, 0].tolist()


def test_infilling_is_steered_to_the_given_melody_s_key(make_melody, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = guided_pipeline()
    seen = []
    monkeypatch.setattr(pipeline_module, "guided", lambda fn, guide, targets, scale: seen.append(targets) or fn)
    melody = make_melody(4, 8)
    pipeline.infill(melody, 2, 4, num_samples=2, seed=0, options=SamplingOptions(Sampler.DDIM, steps=2))
    tonic, minor = melody_key(melody)
    assert seen[0].tonic.tolist() == [tonic] * 2 and seen[0].minor.tolist() == [int(minor)] * 2
    assert not seen[0].endings.any()  # the last bars are kept: nothing new ends the tune
    pipeline.continue_melody(melody, 4, seed=0, options=SamplingOptions(Sampler.DDIM, steps=2))
    assert seen[-1].endings[0, -1] and seen[-1].endings.sum() == 1


def test_tune_endings() -> None:
    free = torch.zeros(4)
    assert tune_endings(1, 4, free).tolist() == [[False, False, False, True]]
    assert not tune_endings(1, 4, torch.tensor([0.0, 0, 0, 1])).any()  # the last chunk is kept
    where = torch.tensor([[0, 4], [0, 9]])  # the first sequence is its whole tune, the second its start
    assert tune_endings(2, 4, free, where).tolist() == [[False, False, False, True], [False] * 4]
    sources = torch.tensor([[0, 1, 0, 1], [0, 1, 2, 3]])
    assert tune_endings(2, 4, free, None, sources).tolist() == [[False, True, False, True],
                                                               [False, False, False, True]]


def test_odd_lengths_leave_the_ending_to_cadence_and_kept_chunks_are_not_steered(
        make_melody, monkeypatch: pytest.MonkeyPatch) -> None:
    """A piece that ends mid-chunk is not steered to end the chunk on the tonic (the guide's ending is the chunk's
    last note, which is cut); a density asked around a given melody steers only the chunks made; the key and the
    ending are steered on the noisy steps only, the density and style on all."""
    pipeline = guided_pipeline()
    seen = []
    monkeypatch.setattr(pipeline_module, "guided", lambda fn, guide, targets, scale: seen.append(targets) or fn)
    fast = SamplingOptions(Sampler.DDIM, steps=2)
    pipeline.generate(7, 2, seed=1, options=fast)
    assert not seen[-1].endings.any()
    pipeline.generate(8, 2, seed=1, options=fast)
    assert seen[-1].endings[:, -1].all()
    pipeline.infill(make_melody(4, 8), 2, 4, seed=0, options=fast, controls=Controls(density=3.0))
    assert seen[-1].free.tolist() == [0.0, 1.0, 0.0, 0.0]  # bars 3-4: the second chunk is made
    targets = GuideTargets(density=3.0, style=1, tonic=torch.tensor([2]), minor=torch.tensor([0]),
                           endings=torch.ones(1, 4, dtype=torch.bool))
    assert targets.at(0.2) is targets
    late = targets.at(0.9)
    assert late.density == 3.0 and late.style == 1 and late.tonic is None and late.endings is None
    assert not GuideTargets(tonic=torch.tensor([2])).at(0.9)
