"""`--set section.field=value`: parsing, validation and the rule that a resumed run keeps its configs."""

from __future__ import annotations

import pytest

from melodiff.config import apply_settings, check_settings
from melodiff.diffusion.config import BetaSchedule
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.errors import MelodiffError
from melodiff.training.checkpoint import run_configs
from melodiff.vae.config import preset as vae_preset


def vae_sections() -> dict:
    model, train = vae_preset("tiny")
    return {"model": model, "train": train}


def test_values_take_the_field_types() -> None:
    model, schedule, train = diffusion_preset("tiny")
    sections = apply_settings({"model": model, "schedule": schedule, "train": train},
                              ["model.layers=3", "schedule.kind=cosine", "train.lr= 3e-4", "train.ema_decay=0"])
    assert sections["model"].layers == 3 and isinstance(sections["model"].layers, int)
    assert sections["schedule"].kind is BetaSchedule.COSINE
    assert sections["train"].lr == 3e-4 and sections["train"].ema_decay == 0.0
    assert sections["model"].width == model.width  # the rest stays the preset's


@pytest.mark.parametrize(("setting", "match"), [
    ("train.max_beta", "expected SECTION.FIELD=VALUE"),
    ("max_beta=0.1", "expected SECTION.FIELD=VALUE"),
    ("optimizer.lr=1", "expected SECTION.FIELD=VALUE"),
    ("train.beta=0.1", "unknown or fixed field"),
    ("model.steps=64", "unknown or fixed field"),
    ("model.z_size=1.5", "not a valid int"),
    ("train.lr=fast", "not a valid float"),
    ("train.lr=-1e-3", "out of range"),
    ("train.lr=nan", "out of range"),
    ("train.batch_size=0", "out of range"),
    ("model.decoder_layers=0", "out of range"),
    ("train.beta_rate=1.5", "out of range"),
    ("train.lr=0", "out of range"),
])
def test_bad_settings_are_one_line_errors(setting: str, match: str) -> None:
    with pytest.raises(MelodiffError, match=match) as info:
        apply_settings(vae_sections(), [setting], fixed=["model.steps"])
    assert "\n" not in str(info.value)


def test_a_resumed_run_must_agree_with_the_settings() -> None:
    sections = apply_settings(vae_sections(), ["train.max_beta=0.05"])
    check_settings(sections, ["train.max_beta=0.05"])
    with pytest.raises(MelodiffError, match=r"the run being resumed has 0\.05"):
        check_settings(sections, ["train.max_beta=0.1"])


def test_run_configs_steps_and_seed() -> None:
    sections = vae_sections()
    new = run_configs(sections, steps=7, seed=3, settings=["train.lr=0.01"])
    assert (new["train"].steps, new["train"].seed, new["train"].lr) == (7, 3, 0.01)
    with pytest.raises(MelodiffError, match="unknown or fixed field"):  # --steps / --seed set those
        run_configs(sections, settings=["train.steps=9"])
    saved = {"model": {"z_size": 8}, "train": {"lr": 0.01, "steps": 7, "seed": 9}}
    resumed = run_configs(sections, steps=None, seed=5, saved=saved, resume=True)
    assert resumed["model"].z_size == 8 and resumed["train"].lr == 0.01
    assert resumed["train"].seed == 9 and resumed["train"].steps == sections["train"].steps  # the saved seed
    started = run_configs(sections, seed=5, settings=["train.transpose=0"], saved=saved)  # e.g. from --init
    assert (started["train"].seed, started["train"].transpose, started["model"].z_size) == (5, 0, 8)


def test_settings_of_a_section_apply_together() -> None:
    model, schedule, _ = diffusion_preset("tiny")  # beta_end 0.05: beta_start 0.06 alone is invalid
    sections = apply_settings({"schedule": schedule}, ["schedule.beta_start=0.06", "schedule.beta_end=0.1"])
    assert (sections["schedule"].beta_start, sections["schedule"].beta_end) == (0.06, 0.1)
    with pytest.raises(MelodiffError, match="BetaSchedule: unknown value 'foo'"):
        apply_settings({"schedule": schedule}, ["schedule.kind=foo"])
    with pytest.raises(MelodiffError, match="must be even"):  # sinusoidal embeddings need sin and cos halves
        apply_settings({"model": model}, ["model.noise_channels=15"])
    with pytest.raises(MelodiffError, match="divisible by heads"):
        apply_settings({"model": model}, ["model.width=33", "model.heads=3"])
    with pytest.raises(MelodiffError, match="nothing in model can be set"):
        apply_settings({"model": model}, ["model.width=64"], fixed=[f"model.{f}" for f in model.__dataclass_fields__])


def test_a_model_that_cannot_be_built_is_a_one_line_error() -> None:
    from melodiff.config import build_checked

    def build() -> None:
        raise RuntimeError("Trying to create tensor with negative dimension -1\nmore lines")

    with pytest.raises(MelodiffError, match="do not make a valid model: Trying to create tensor") as info:
        build_checked(build)
    assert "\n" not in str(info.value)
    assert build_checked(lambda: 3) == 3
