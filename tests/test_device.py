"""Devices (melodiff/device.py): names resolved or refused with one line, draws made on the CPU whatever the device,
mixed precision only on GPUs, each torchrun rank on its own GPU, and the pipeline and trainers keeping tensors where
they belong. This machine has no GPU: CUDA's answers are simulated where the logic depends on them."""

from __future__ import annotations

import pytest
import torch

from melodiff import device as dev
from melodiff.device import autocast_dtype, multinomial, rand, randn, rank_device, resolve_device
from melodiff.errors import MelodiffError
from melodiff.options import SamplingOptions
from tiny_model import untrained_pipeline


def test_cpu_and_auto_without_a_gpu(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    assert resolve_device("cpu") == resolve_device("auto") == resolve_device(None) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.parametrize("spec, message", [("cuda", "no CUDA GPU"), ("cuda:1", "no CUDA GPU"), ("mps", "no Apple"),
                                           ("tpu", "unknown device"), ("gpu:x", "unknown device")])
def test_devices_this_machine_lacks_are_one_line_errors(monkeypatch, spec: str, message: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(dev, "_mps_available", lambda: False)
    with pytest.raises(MelodiffError, match=message) as info:
        resolve_device(spec)
    assert "\n" not in str(info.value)


def test_cuda_devices_are_checked_against_the_gpus_there_are(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(MelodiffError, match="2 CUDA GPU"):
        resolve_device("cuda:2")


def test_each_torchrun_rank_takes_its_local_gpu(monkeypatch) -> None:
    chosen = []
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert rank_device(torch.device("cuda")) == torch.device("cuda", 3) and chosen == [3]
    assert rank_device(torch.device("cpu")) == torch.device("cpu")  # gloo ranks share the CPU
    monkeypatch.setenv("LOCAL_RANK", "4")
    with pytest.raises(MelodiffError, match="LOCAL_RANK 4"):
        rank_device(torch.device("cuda"))


def test_mixed_precision_only_on_gpus_with_bf16(monkeypatch) -> None:
    assert autocast_dtype(torch.device("cpu")) is None and autocast_dtype(torch.device("mps")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert autocast_dtype(torch.device("cuda")) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert autocast_dtype(torch.device("cuda")) is None


def test_draws_come_from_the_cpu_generator_in_the_like_tensor_s_dtype() -> None:
    like = torch.zeros(1, dtype=torch.float64)
    a = randn((3, 4), torch.Generator().manual_seed(5), like)
    assert a.dtype == torch.float64 and torch.equal(a, torch.randn((3, 4), generator=torch.Generator().manual_seed(5),
                                                                   dtype=torch.float64))
    assert rand((2,), torch.Generator().manual_seed(1), like).device.type == "cpu"
    probs = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    assert multinomial(probs, torch.Generator().manual_seed(0)).squeeze(1).tolist() == [1, 0]


def test_the_pipeline_moves_its_models_and_returns_cpu_tensors() -> None:
    pipe = untrained_pipeline().to("cpu")
    assert pipe.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in [*pipe.vae.parameters(), *pipe.denoiser.parameters()])
    x = pipe.sample_latents(4, 2, SamplingOptions("ddim", 3), torch.Generator().manual_seed(0))
    assert x.device.type == "cpu" and x.shape == (2, 4, 8)
    with pytest.raises(MelodiffError):
        untrained_pipeline().to("tpu")


def test_the_pipeline_gives_the_same_music_after_a_move() -> None:
    options = SamplingOptions("ddim", 3, temperature=1.0)
    a = untrained_pipeline().generate(4, 2, seed=7, options=options)
    b = untrained_pipeline().to("cpu").generate(4, 2, seed=7, options=options)
    assert all((x.ids == y.ids).all() for x, y in zip(a, b, strict=True))
