"""Where models run, in one place: ``--device auto|cpu|cuda|cuda:N|mps`` to a torch.device, mixed precision on GPUs
(off on CPU), the device of a ``torchrun`` rank, and the thread count of a CPU run.

Random draws stay on the CPU (every sampler, encoder and training step draws from a CPU ``torch.Generator`` and
moves the result to the device), so a seed gives the same noise on every device; results agree up to the device's
floating-point rounding."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from melodiff.errors import MelodiffError

DEVICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """``auto`` (CUDA if there is a GPU, else Apple's MPS, else the CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps`` ->
    a torch.device; a device this machine does not have is a MelodiffError naming what it has."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = (spec or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise MelodiffError(f"unknown device {spec!r}: use {DEVICES}") from None
    if device.type == "cpu":
        return torch.device("cpu")
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise MelodiffError(f"--device {spec}: this machine has no CUDA GPU (use cpu or auto)")
        if device.index is not None and device.index >= count:
            raise MelodiffError(f"--device {spec}: this machine has {count} CUDA GPU(s), cuda:0..cuda:{count - 1}")
        return device
    if device.type == "mps":
        if not _mps_available():
            raise MelodiffError(f"--device {spec}: this machine has no Apple MPS GPU (use cpu or auto)")
        return device
    raise MelodiffError(f"unknown device {spec!r}: use {DEVICES}")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def rank_device(device: torch.device) -> torch.device:
    """The device of this ``torchrun`` rank: on CUDA each rank takes GPU ``LOCAL_RANK`` (and makes it current, as
    NCCL needs); anything else is shared by the ranks as it is."""
    if device.type != "cuda" or "LOCAL_RANK" not in os.environ:
        return device
    local = int(os.environ["LOCAL_RANK"])
    if local >= torch.cuda.device_count():
        raise MelodiffError(f"rank with LOCAL_RANK {local} has no GPU: {torch.cuda.device_count()} on this machine")
    torch.cuda.set_device(local)
    return torch.device("cuda", local)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA GPUs that have it (Ampere and later); None (full precision) elsewhere: the CPU, MPS and older
    GPUs (fp16 would need loss scaling in training, which the loop does not do)."""
    if device.type != "cuda" or not torch.cuda.is_bf16_supported():
        return None
    return torch.bfloat16


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """Mixed precision for the matrix products on a GPU (autocast_dtype); nothing on the CPU."""
    dtype = autocast_dtype(device)
    if dtype is None:
        yield
        return
    with torch.autocast(device.type, dtype=dtype):
        yield


def to_device(tensors: dict[str, torch.Tensor] | torch.Tensor | None, device: torch.device):
    """A tensor, or a dict of them (a context), moved to ``device`` (None stays None)."""
    if tensors is None or isinstance(tensors, torch.Tensor):
        return None if tensors is None else tensors.to(device)
    return {k: v.to(device) for k, v in tensors.items()}


def randn(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise of ``shape`` drawn on the CPU with ``generator`` (a CPU generator; the same draws on
    every device), in ``like``'s dtype on ``like``'s device."""
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)


def rand(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) draws, as :func:`randn`."""
    return torch.rand(shape, generator=generator, dtype=like.dtype).to(like.device)


def multinomial(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One draw per row of ``probs`` (rows, classes) on the CPU with ``generator``, returned on ``probs``' device."""
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(probs.device)
