"""The training loop and checkpoints: exact resume, what a checkpoint holds, clear errors on bad checkpoints."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from melodiff.baseline.train import train_mdn
from melodiff.config import from_dict, to_dict
from melodiff.data.latents import LatentDataset
from melodiff.data.normalizer import LatentNormalizer
from melodiff.data.prepare import PrepareConfig, prepare
from melodiff.diffusion.config import DenoiserConfig, ScheduleConfig
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.diffusion.train import train_diffusion
from melodiff.errors import MelodiffError
from melodiff.loading import load_diffusion, load_mdn, load_vae, read_config, read_weights
from melodiff.music.melody import Melody
from melodiff.music.midi_io import write_midi
from melodiff.training.loop import LoopConfig, train
from melodiff.vae.config import VAEConfig
from melodiff.vae.config import preset as vae_preset
from melodiff.vae.train import train_vae


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, make_melody: Callable[[int, int], Melody]) -> Path:
    """A prepared dataset of 4 generated MIDI tunes (8 bars each), all in the train split."""
    src = tmp_path_factory.mktemp("tunes")
    for i in range(4):
        write_midi(make_melody(i, 8), src / f"tune{i}.mid")
    out = tmp_path_factory.mktemp("prepared") / "data"
    prepare([str(src)], out, PrepareConfig(validation_fraction=0, test_fraction=0), workers=1, quiet=True)
    return out


@pytest.fixture(scope="module")
def latents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic latent dataset (5 melodies of 3..12 latents, D = 3) in `melodiff encode`'s format."""
    rng = np.random.default_rng(0)
    lengths = [3, 12, 7, 9, 5]
    x = rng.uniform(-1, 1, size=(sum(lengths), 3)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    split = np.array([0, 0, 0, 1, 2], dtype=np.int8)
    path = tmp_path_factory.mktemp("latents") / "latents.npz"
    LatentDataset(x, offsets, split, LatentNormalizer(z_size=16, dims=(1, 4, 9), low=-2.0, high=3.0)).save(path)
    return path


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = read_weights(a), read_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), f"{key} differs"


def last_log_row(folder: Path) -> dict[str, str]:
    with (folder / "log.csv").open() as f:
        return list(csv.DictReader(f))[-1]


def test_vae_resume_is_exact(dataset: Path, tmp_path: Path) -> None:
    once, twice = tmp_path / "once", tmp_path / "twice"
    model = train_vae(dataset, once, "tiny", steps=6, progress=False)
    train_vae(dataset, twice, "tiny", steps=3, progress=False)
    halfway = read_weights(twice)
    train_vae(dataset, twice, "tiny", steps=6, progress=False)
    assert_same_weights(once, twice)
    assert any(not torch.equal(halfway[k], v) for k, v in read_weights(twice).items())
    assert all(torch.equal(v, read_weights(once)[k]) for k, v in model.state_dict().items())
    with (twice / "log.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["step"] for r in rows] == ["3", "6"]
    assert rows[-1]["loss"] == last_log_row(once)["loss"]


def test_vae_checkpoint_holds_configs_and_versions(dataset: Path, tmp_path: Path) -> None:
    train_vae(dataset, tmp_path / "vae", "tiny", steps=2, seed=5, progress=False)
    meta = read_config(tmp_path / "vae", "vae")
    assert meta["kind"] == "vae" and meta["step"] == 2 and meta["train"]["seed"] == 5
    assert from_dict(VAEConfig, meta["model"]) == vae_preset("tiny")[0]
    assert {"melodiff", "torch", "numpy", "python"} <= set(meta["versions"])
    vae = load_vae(tmp_path / "vae")
    assert not vae.training and vae.config == vae_preset("tiny")[0]


def test_vae_init_starts_a_new_run_from_a_checkpoint(dataset: Path, tmp_path: Path) -> None:
    base, more = tmp_path / "base", tmp_path / "more"
    train_vae(dataset, base, "tiny", steps=4, seed=3, progress=False)
    with pytest.raises(MelodiffError, match="already at step 4"):
        train_vae(dataset, more, "tiny", steps=4, progress=False, init=base)
    assert not more.exists()
    train_vae(dataset, more, "tiny", steps=6, progress=False, init=base)
    meta = read_config(more, "vae")
    assert meta["step"] == 6 and meta["init"] == {"from": str(base), "step": 4}
    assert meta["train"]["seed"] == 3  # the init's configs, not the preset's
    with (more / "log.csv").open() as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["6"]
    changed = [k for k, v in read_weights(more).items() if not torch.equal(v, read_weights(base)[k])]
    assert changed  # trained on from the init's weights ...
    fresh = tmp_path / "fresh"
    train_vae(dataset, fresh, "tiny", steps=2, seed=3, progress=False)
    assert any(not torch.equal(v, read_weights(fresh)[k]) for k, v in read_weights(more).items())  # ... not anew
    train_vae(dataset, more, "tiny", steps=8, progress=False)  # resuming keeps the record of the origin
    assert read_config(more, "vae")["init"] == {"from": str(base), "step": 4}


def test_diffusion_resume_is_exact(latents: Path, tmp_path: Path) -> None:
    once, twice = tmp_path / "once", tmp_path / "twice"
    train_diffusion(latents, once, "tiny", steps=4, progress=False)
    train_diffusion(latents, twice, "tiny", steps=2, progress=False)
    train_diffusion(latents, twice, "tiny", steps=4, progress=False)
    assert_same_weights(once, twice)
    meta = read_config(once, "diffusion")
    data = LatentDataset.load(latents)
    assert from_dict(LatentNormalizer, meta["normalizer"]) == data.normalizer
    assert from_dict(DenoiserConfig, meta["model"]).latent_dim == 3
    assert from_dict(ScheduleConfig, meta["schedule"]) == diffusion_preset("tiny")[1]
    model, schedule, normalizer = load_diffusion(once)
    assert model.config.latent_dim == 3 and schedule.num_steps == 100 and normalizer == data.normalizer


def test_mdn_resume_is_exact(latents: Path, tmp_path: Path) -> None:
    once, twice = tmp_path / "once", tmp_path / "twice"
    train_mdn(latents, once, "tiny", steps=4, progress=False)
    train_mdn(latents, twice, "tiny", steps=2, progress=False)
    train_mdn(latents, twice, "tiny", steps=4, progress=False)
    assert_same_weights(once, twice)
    assert load_mdn(once).config.latent_dim == 3


def test_loop_resume_with_ema_is_exact(tmp_path: Path) -> None:
    def make() -> nn.Module:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))

    def loss_fn(net: nn.Module, step: int, generator: torch.Generator):
        x = torch.randn(16, 3, generator=generator)
        loss = (net(x).squeeze(-1) - x.sum(-1)).square().mean()
        return loss, {"loss": loss.item()}

    def config(steps: int) -> LoopConfig:
        return LoopConfig(steps=steps, lr_at=lambda s: 0.01 * 0.9**s, ema_decay=0.8, checkpoint_every=100)

    a = train(make(), loss_fn, config(10), tmp_path / "a", "toy", {}, progress=False)
    train(make(), loss_fn, config(5), tmp_path / "b", "toy", {}, progress=False)
    b = train(make(), loss_fn, config(10), tmp_path / "b", "toy", {}, progress=False)
    assert_same_weights(tmp_path / "a", tmp_path / "b")
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    state = torch.load(tmp_path / "a" / "state.pt", weights_only=True)
    raw, ema = state["model"], read_weights(tmp_path / "a")  # the checkpoint's weights are the EMA weights
    assert all(torch.equal(ema[k], state["ema"][k]) for k in ema)
    assert any(not torch.equal(ema[k], raw[k]) for k in ema)
    with pytest.raises(MelodiffError, match="holds a 'toy' run"):
        train(make(), loss_fn, config(12), tmp_path / "a", "other", {}, progress=False)


def test_non_finite_loss_raises(tmp_path: Path) -> None:
    def loss_fn(net, step, generator):
        return net(torch.ones(1, 1)).sum() * float("nan"), {}

    with pytest.raises(MelodiffError, match="non-finite loss"):
        train(nn.Linear(1, 1), loss_fn, LoopConfig(steps=3, lr_at=lambda s: 0.1), tmp_path / "x", "toy", {},
              progress=False)


@pytest.fixture
def vae_checkpoint(dataset: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "vae"
    train_vae(dataset, folder, "tiny", steps=1, progress=False)
    return folder


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_weights_raise(vae_checkpoint: Path, damage: str) -> None:
    weights = vae_checkpoint / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes({"garbage": b"\x13" * 64 + data[64:], "truncated": data[:len(data) // 2],
                         "empty": b""}[damage])
    with pytest.raises(MelodiffError, match="corrupt weights"):
        load_vae(vae_checkpoint)


def test_bad_checkpoints_raise(vae_checkpoint: Path, tmp_path: Path) -> None:
    with pytest.raises(MelodiffError, match="expected 'diffusion'"):
        load_diffusion(vae_checkpoint)
    with pytest.raises(MelodiffError, match="not a melodiff checkpoint"):
        load_vae(tmp_path / "missing")
    meta = json.loads((vae_checkpoint / "config.json").read_text())
    meta["model"]["z_size"] = 17
    (vae_checkpoint / "config.json").write_text(json.dumps(meta))
    with pytest.raises(MelodiffError, match="weights do not match the config"):
        load_vae(vae_checkpoint)
    meta["model"]["size"] = 1
    (vae_checkpoint / "config.json").write_text(json.dumps(meta))
    with pytest.raises(MelodiffError, match="unknown config keys"):
        load_vae(vae_checkpoint)
    (vae_checkpoint / "config.json").write_text("{not json")
    with pytest.raises(MelodiffError, match="unreadable checkpoint config"):
        load_vae(vae_checkpoint)
    (vae_checkpoint / "model.safetensors").unlink()
    (vae_checkpoint / "config.json").write_text(json.dumps({**meta, "model": to_dict(vae_preset("tiny")[0])}))
    with pytest.raises(MelodiffError, match=r"no model\.safetensors"):
        load_vae(vae_checkpoint)


def test_a_context_model_trains_on_key_normalised_latents_and_loads(dataset: Path, tmp_path: Path) -> None:
    from melodiff.bundle import bundle_model
    from melodiff.pipeline import Pipeline
    from melodiff.vae.encode import encode_dataset

    vae_dir = tmp_path / "vae"
    train_vae(dataset, vae_dir, "tiny", steps=2, progress=False)
    data = encode_dataset(load_vae(vae_dir), dataset, in_c=True)
    assert data.normalizer.in_c and data.contexts is not None and len(data.contexts) == 4
    data.save(tmp_path / "latents.npz")
    again = LatentDataset.load(tmp_path / "latents.npz")
    assert again.contexts.styles == data.contexts.styles
    assert all((a == b).all() for a, b in zip(again.contexts.arrays().values(), data.contexts.arrays().values(),
                                                strict=True))
    train_diffusion(tmp_path / "latents.npz", tmp_path / "diffusion", "tiny", steps=3, progress=False,
                    settings=["model.context=true"])
    meta = read_config(tmp_path / "diffusion", "diffusion")
    assert meta["model"]["context"] and meta["model"]["styles"] == 1
    assert sum(r[4] for r in meta["contexts"]["rows"]) == 4
    bundle_model(vae_dir, tmp_path / "diffusion", tmp_path / "model")
    pipe = Pipeline.from_pretrained(tmp_path / "model")
    assert pipe.contexts == meta["contexts"] and pipe.normalizer.in_c
    assert len(pipe.generate(4, num_samples=2, seed=1)) == 2
    old = LatentDataset(again.x, again.offsets, again.split, again.normalizer)  # latents without contexts
    old.save(tmp_path / "old.npz")
    with pytest.raises(MelodiffError, match="no tune contexts"):
        train_diffusion(tmp_path / "old.npz", tmp_path / "d2", "tiny", steps=1, progress=False,
                        settings=["model.context=true"])
