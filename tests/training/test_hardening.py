"""Bad inputs and interruptions of training: corrupt or unsafe resume states and latent datasets are one-line errors,
a run cleans up after a killed writer, a resumed run's log has one row per step, a signal stops a run with a
checkpoint, and a model too large to build is refused before anything is allocated."""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from melodiff.baseline.train import train_mdn
from melodiff.config import build_checked
from melodiff.data.latents import LatentDataset
from melodiff.data.normalizer import LatentNormalizer
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.train import train_diffusion
from melodiff.errors import MelodiffError
from melodiff.loading import read_config
from melodiff.training.loop import LoopConfig, train
from melodiff.vae.config import preset as vae_preset
from melodiff.vae.model import MelodyVAE


def make_net() -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))


def toy_loss(net: nn.Module, step: int, generator: torch.Generator):
    x = torch.randn(16, 3, generator=generator)
    loss = (net(x).squeeze(-1) - x.sum(-1)).square().mean()
    return loss, {"loss": loss.item()}


def toy_train(out: Path, steps: int, loss_fn=toy_loss, **config) -> nn.Module:
    return train(make_net(), loss_fn, LoopConfig(steps=steps, lr_at=lambda s: 0.01, **config), out, "toy", {},
                 progress=False)


def logged_steps(folder: Path) -> list[int]:
    """The steps of ``folder``'s log.csv, whose rows must all be complete."""
    with (folder / "log.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(None not in row and None not in row.values() for row in rows), rows
    return [int(row["step"]) for row in rows]


def synthetic_latents(path: Path, lengths: tuple[int, ...] = (3, 12, 7, 9, 5)) -> Path:
    """A latent dataset in `melodiff encode`'s format: 5 melodies of D = 3 latents; 3 train, 1 validation, 1 test."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(sum(lengths), 3)).astype(np.float32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    split = np.array([0, 0, 0, 1, 2], dtype=np.int8)
    LatentDataset(x, offsets, split, LatentNormalizer(z_size=16, dims=(1, 4, 9), low=-2.0, high=3.0)).save(path)
    return path


# 1. the resume state


class _RunsAShellCommand:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "pickle", "not a state"])
def test_corrupt_or_unsafe_train_state_is_a_one_line_error(tmp_path: Path, damage: str) -> None:
    out = tmp_path / "run"
    toy_train(out, 2)
    state = out / "state.pt"
    data = state.read_bytes()
    marker = tmp_path / "pwned"
    if damage == "pickle":  # unpickling it would run a shell command; weights_only refuses to
        torch.save({"kind": "toy", "model": _RunsAShellCommand(marker), "optimizer": {}, "step": 1}, state)
    elif damage == "not a state":
        torch.save([1, 2, 3], state)
    else:
        state.write_bytes({"truncated": data[:len(data) // 2], "garbage": os.urandom(len(data)),
                           "empty": b""}[damage])
    match = "not a melodiff training state" if damage == "not a state" else "corrupt or unsafe training state"
    with pytest.raises(MelodiffError, match=match) as info:
        toy_train(out, 4)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400 and str(state) in message and "delete it" in message
    assert not marker.exists()


def test_a_state_of_another_model_is_a_one_line_error(tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(nn.Linear(3, 1), toy_loss, LoopConfig(steps=2, lr_at=lambda s: 0.01), out, "toy", {}, progress=False)
    with pytest.raises(MelodiffError, match="does not fit this run's model") as info:
        toy_train(out, 4)
    assert "\n" not in str(info.value)


# 2. latent datasets


def _rewrite(path: Path, **changes) -> None:
    """Rewrite the .npz at ``path`` with arrays replaced (None: removed)."""
    with np.load(path) as f:
        arrays = {key: f[key] for key in f.files}
    arrays.update(changes)
    buf = io.BytesIO()
    np.savez(buf, **{k: v for k, v in arrays.items() if v is not None})
    path.write_bytes(buf.getvalue())


def _normalizer(**changes) -> np.ndarray:
    fields = {"z_size": 16, "dims": [1, 4, 9], "low": -2.0, "high": 3.0, **changes}
    return np.array(json.dumps(fields))


DAMAGES: dict[str, Callable[[Path], None]] = {
    "garbage": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2]),
    "truncated end": lambda p: p.write_bytes(p.read_bytes()[:-40]),
    "empty": lambda p: p.write_bytes(b""),
    "a zip of something else": lambda p: zipfile.ZipFile(p, "w").writestr("readme.txt", "hello"),
    "one array": lambda p: np.save(p.open("wb"), np.zeros(3)),
    "pickled objects": lambda p: _rewrite(p, x=np.array([{"a": 1}], dtype=object)),
    "no x": lambda p: _rewrite(p, x=None),
    "no normalizer": lambda p: _rewrite(p, normalizer=None),
    "normalizer not JSON": lambda p: _rewrite(p, normalizer=np.array("{not json")),
    "normalizer not text": lambda p: _rewrite(p, normalizer=np.zeros(3)),
    "normalizer unknown key": lambda p: _rewrite(p, normalizer=_normalizer(size=3)),
    "normalizer missing key": lambda p: _rewrite(p, normalizer=np.array(json.dumps({"z_size": 16}))),
    "normalizer dims out of range": lambda p: _rewrite(p, normalizer=_normalizer(dims=[1, 4, 16])),
    "normalizer dims unsorted": lambda p: _rewrite(p, normalizer=_normalizer(dims=[4, 1, 9])),
    "normalizer low not a number": lambda p: _rewrite(p, normalizer=_normalizer(low="x")),
    "normalizer scaling unknown": lambda p: _rewrite(p, normalizer=_normalizer(scaling="log")),
    "x 1-D": lambda p: _rewrite(p, x=np.zeros(36, np.float32)),
    "x integers": lambda p: _rewrite(p, x=np.zeros((36, 3), np.int32)),
    "x wrong width": lambda p: _rewrite(p, x=np.zeros((36, 4), np.float32)),
    "x NaN": lambda p: _rewrite(p, x=np.full((36, 3), np.nan, np.float32)),
    "offsets not monotone": lambda p: _rewrite(p, offsets=np.array([0, 12, 3, 22, 31, 36])),
    "offsets not ending at len(x)": lambda p: _rewrite(p, offsets=np.array([0, 3, 15, 22, 31, 40])),
    "offsets float": lambda p: _rewrite(p, offsets=np.array([0.0, 3, 15, 22, 31, 36])),
    "split too short": lambda p: _rewrite(p, split=np.array([0, 0, 0, 1], np.int8)),
    "split code 3": lambda p: _rewrite(p, split=np.array([0, 0, 3, 1, 2], np.int8)),
    "split negative": lambda p: _rewrite(p, split=np.array([0, 0, -1, 1, 2], np.int8)),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_bad_latent_dataset_is_a_one_line_error(tmp_path: Path, damage: str) -> None:
    path = synthetic_latents(tmp_path / "latents.npz")
    assert LatentDataset.load(path).x.shape == (36, 3)
    DAMAGES[damage](path)
    with pytest.raises(MelodiffError, match="not a latent dataset") as info:
        LatentDataset.load(path)
    assert "\n" not in str(info.value) and str(info.value).startswith(f"{path}: ")


def test_a_latent_dataset_round_trips(tmp_path: Path) -> None:
    path = synthetic_latents(tmp_path / "latents.npz", lengths=(3, 0, 7, 9, 5))  # a melody without chunks is fine
    data = LatentDataset.load(path)
    assert data.x.dtype == np.float32 and data.offsets.dtype == np.int64 and data.split.dtype == np.int8
    assert [len(s) for s in data.sequences("train")] == [3, 0, 7]


# 3. temporary files a killed writer left


def test_a_run_removes_stale_temporary_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    stale = [out / f".{name}.x1y2z3.tmp" for name in ("model.safetensors", "config.json", "state.pt", "log.csv")]
    others = [out / ".notes.txt.abc.tmp", out / "model.safetensors.tmp", out / "keep.txt"]
    for path in stale + others:
        path.write_bytes(b"left behind")
    toy_train(out, 2)
    assert not any(path.exists() for path in stale)
    assert all(path.exists() for path in others)  # only what a checkpoint writer makes
    assert sorted(p.name for p in out.iterdir() if p.name.endswith(".tmp")) == sorted(p.name for p in others[:2])


# 4. the log of a resumed run


def test_a_resumed_run_logs_each_step_once(tmp_path: Path) -> None:
    """A run dies at step 5, after logging steps 4 and 5 but checkpointing only step 3: the resumed run (from step
    3) logs 4 and 5 again, and the log keeps one row for each."""
    out = tmp_path / "run"

    def dies_at_5(net, step, generator):
        if step == 5:
            raise RuntimeError("killed")
        return toy_loss(net, step, generator)

    with pytest.raises(RuntimeError, match="killed"):
        toy_train(out, 8, dies_at_5, log_every=1, checkpoint_every=3)
    assert logged_steps(out) == [1, 2, 3, 4, 5]
    toy_train(out, 8, log_every=1, checkpoint_every=3)
    assert logged_steps(out) == list(range(1, 9))
    toy_train(tmp_path / "once", 8, log_every=1, checkpoint_every=3)
    with (out / "log.csv").open() as a, (tmp_path / "once" / "log.csv").open() as b:
        resumed, once = list(csv.DictReader(a)), list(csv.DictReader(b))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in once]  # the same rows as a run that never stopped


def test_a_row_cut_short_is_dropped_on_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    toy_train(out, 3, log_every=1)
    with (out / "log.csv").open("a") as f:
        f.write("4,0.01")  # the write of step 4's row cut short, after the checkpoint of step 3
    toy_train(out, 5, log_every=1)
    assert logged_steps(out) == [1, 2, 3, 4, 5]


# 5. signals


def test_sigterm_stops_at_the_end_of_a_step_with_a_checkpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"

    def terminated_at_2(net, step, generator):
        if step == 2:
            os.kill(os.getpid(), signal.SIGTERM)
        return toy_loss(net, step, generator)

    def not_for_the_test(signum, frame):
        raise AssertionError("SIGTERM reached the handler from before the run")

    before = signal.signal(signal.SIGTERM, not_for_the_test)  # not the default, which would end pytest
    try:
        with pytest.raises(KeyboardInterrupt):
            toy_train(out, 100, terminated_at_2, log_every=1, checkpoint_every=50)
        assert signal.getsignal(signal.SIGTERM) is not_for_the_test  # the run's handler is gone
    finally:
        signal.signal(signal.SIGTERM, before)
    assert read_config(out)["step"] == 3 and logged_steps(out) == [1, 2, 3]
    toy_train(out, 5, log_every=1, checkpoint_every=50)
    assert logged_steps(out) == [1, 2, 3, 4, 5]


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """`melodiff train-diffusion` interrupted after its first log row (step 50; checkpoints every 500 steps):
    exit code 130, one line on stderr, a checkpoint at the step it stopped at (not at 500), from which a rerun
    resumes."""
    latents, out = synthetic_latents(tmp_path / "latents.npz"), tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "melodiff.cli", "-q", "train-diffusion", "--latents", str(latents), "--out",
               str(out), "--preset", "tiny"]
    process = subprocess.Popen([*command, "--steps", "100000"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ((out / "log.csv").exists() and len((out / "log.csv").read_text().splitlines()) >= 2):
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "no log row within 60 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130 and stderr.splitlines() == ["melodiff: interrupted"], stderr
    step = read_config(out, "diffusion")["step"]
    assert 50 <= step < 500 and torch.load(out / "state.pt", weights_only=True)["step"] == step
    with caplog.at_level(logging.INFO, logger="melodiff.training.loop"):  # the same as rerunning the command
        train_diffusion(latents, out, "tiny", steps=step + 2, progress=False)
    assert f"from step {step}" in caplog.text and read_config(out, "diffusion")["step"] == step + 2
    steps = logged_steps(out)
    assert steps == sorted(set(steps)) and steps[-1] == step + 2


# 6. models too large to build


def test_a_model_too_large_is_refused_before_it_is_built() -> None:
    built = []

    def build() -> nn.Module:
        model = nn.Linear(1000, 1000)
        built.append(model.weight.device.type)
        return model

    with pytest.raises(MelodiffError, match=r"1e\+06 parameters, more than the 1e\+05 allowed"):
        build_checked(build, max_parameters=100_000)
    assert built == ["meta"]  # shapes only: nothing was allocated
    assert build_checked(build, max_parameters=2_000_000).weight.device.type == "cpu"


@pytest.mark.parametrize("kind", ["vae", "diffusion"])
def test_checking_the_size_changes_no_weights(kind: str) -> None:
    """The meta-device build draws no random numbers, so a checked build has the weights of a plain one."""
    build = {"vae": lambda: MelodyVAE(vae_preset("tiny")[0]),
             "diffusion": lambda: TransformerDenoiser(replace(diffusion_preset("tiny")[0], latent_dim=3))}[kind]
    torch.manual_seed(0)
    plain = build().state_dict()
    torch.manual_seed(0)
    checked = build_checked(build).state_dict()
    assert plain.keys() == checked.keys() and all(torch.equal(plain[k], checked[k]) for k in plain)


def test_huge_settings_are_refused_without_allocating(tmp_path: Path) -> None:
    latents = synthetic_latents(tmp_path / "latents.npz")
    with pytest.raises(MelodiffError, match="parameters, more than"):
        build_checked(lambda: MelodyVAE(replace(vae_preset("tiny")[0], encoder_units=100_000_000)))
    for train_fn in (train_diffusion, train_mdn):
        with pytest.raises(MelodiffError, match="parameters, more than"):
            train_fn(latents, tmp_path / "out", "tiny", steps=1, progress=False, settings=["model.width=100000000"])
    assert not (tmp_path / "out").exists()


def test_every_seed_makes_a_step_generator() -> None:
    """--seed takes 0..2^31 - 1; the step generator's mix of seed, rank and step overflowed torch above ~900,000."""
    from melodiff.music.limits import MAX_SEED
    from melodiff.training.loop import step_generator

    assert step_generator(3, 1, 7).initial_seed() == (3 * 1_000_003 + 1) * 10_000_019 + 7  # old runs resume exactly
    draws = {step_generator(MAX_SEED, rank, step).initial_seed() for rank in (0, 1) for step in (0, 1)}
    assert len(draws) == 4
