"""One generic training loop for every model: AdamW/Adam, gradient clipping, a learning-rate schedule, optional EMA,
CSV logging, atomic checkpoints and exact resume; multi-process data parallel under ``torchrun``
(torch.distributed: every rank starts from rank 0's weights, draws its own batches, and gradients are averaged over
ranks before each step, as DDP does; the loss function may call any method of the model, not only ``forward``).

Randomness: the batch and noise of step ``s`` on rank ``r`` come from a generator seeded with (seed, r, s), so a run
resumed from a checkpoint continues exactly as if it had never stopped.

Stopping: a time limit, Ctrl-C or SIGTERM ends the run after the current step with a checkpoint; a non-finite loss
is an error. Under ``torchrun`` the ranks agree on all of these in the gradient all-reduce, so they stop at the same
step (a rank that stopped alone would leave the others waiting for its gradients forever)."""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from melodiff.device import autocast, rank_device, resolve_device
from melodiff.errors import MelodiffError
from melodiff.training.checkpoint import (
    CONFIG,
    STATE,
    WEIGHTS,
    read_train_state,
    remove_stale_temp_files,
    save_checkpoint,
)
from melodiff.utils.io import atomic_write_text

log = logging.getLogger(__name__)

LOG = "log.csv"  # one row per logged step

# loss_fn(model, step, generator) -> (scalar loss, metrics for the log)
LossFn = Callable[[nn.Module, int, torch.Generator], tuple[torch.Tensor, dict[str, float]]]


@dataclass(frozen=True)
class LoopConfig:
    steps: int
    lr_at: Callable[[int], float]
    grad_clip: float = 1.0
    ema_decay: float = 0.0  # 0 = no EMA; otherwise the checkpoint's weights are the EMA weights
    log_every: int = 50
    checkpoint_every: int = 1000
    seed: int = 0
    max_seconds: float = math.inf  # stop (with a checkpoint) after this much wall time; resume later
    device: str = "cpu"  # melodiff.device.resolve_device: auto, cpu, cuda, cuda:N, mps (under torchrun: LOCAL_RANK)


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """The generator of step ``step`` on rank ``rank``; taken modulo 2^63, which torch accepts, so that every seed of
    0..MAX_SEED works (below about 900,000 the modulo changes nothing: older runs resume exactly)."""
    g = torch.Generator()
    g.manual_seed(((seed * 1_000_003 + rank) * 10_000_019 + step) % 2**63)
    return g


def _dist_setup(device: torch.device) -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(model: nn.Module, loss_fn: LossFn, config: LoopConfig, out: str | Path, kind: str,
          meta: dict[str, Any], progress: bool = True, init_step: int = 0) -> nn.Module:
    """Train ``model`` in place for ``config.steps`` steps, resuming from ``out/state.pt`` if present, else from
    ``init_step`` (a run started from another checkpoint's weights). Writes ``out/`` (checkpoint, see checkpoint.py)
    and ``out/log.csv``. Returns the model (EMA weights if used).

    SIGINT (Ctrl-C) or SIGTERM stops the run at the end of the current step with a checkpoint, then raises
    KeyboardInterrupt; rerun to resume."""
    out = Path(out)
    device = rank_device(resolve_device(config.device))
    rank, world = _dist_setup(device)
    model.to(device)
    if rank == 0:  # what a killed writer left behind, before this run writes temp files of its own
        remove_stale_temp_files(out, (WEIGHTS, CONFIG, STATE, LOG))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr_at(0))
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if config.ema_decay > 0 else None
    start = init_step
    state = read_train_state(out)
    if state is not None:
        if state.get("kind") != kind:
            raise MelodiffError(f"{out}: holds a {state.get('kind')!r} run, not {kind!r}; use another --out")
        try:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            start = int(state["step"])
        except (RuntimeError, ValueError, KeyError, TypeError) as exc:
            raise MelodiffError(f"{out / STATE}: does not fit this run's model ({str(exc).strip().splitlines()[0]}); "
                                f"delete it to start over") from None
        ema = state.get("ema")
        if ema is not None:
            ema = {k: v.to(device) for k, v in ema.items()}
        log.info("resuming %s from step %d", out, start)
    if world > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / LOG
    if rank == 0 and start > 0:
        _trim_log(log_path, start)
    t0 = time.time()
    writer = None
    bar = None
    interrupted = False
    if rank == 0 and progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=f"train {kind}", unit="step", dynamic_ncols=True)
    stop = _StopRequest()  # from here on, SIGINT and SIGTERM stop the run at the end of a step
    try:
        for step in range(start, config.steps):
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
            with autocast(device):
                loss, metrics = loss_fn(model, step, step_generator(config.seed, rank, step))
            finite = bool(torch.isfinite(loss))
            optimizer.zero_grad(set_to_none=True)
            if finite:  # otherwise no gradients; with world > 1 this rank still joins the all-reduce below
                loss.backward()
            time_up = time.time() - t0 > config.max_seconds
            interrupted = stop.requested
            if world > 1:
                time_up, interrupted, non_finite = _average_gradients(model, world, time_up, interrupted,
                                                                      not finite)
                finite = not non_finite
            if not finite:
                raise MelodiffError(f"non-finite loss at step {step}; lower the learning rate")
            grad_norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            if ema is not None:
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        if v.dtype.is_floating_point:
                            ema[k].lerp_(v, 1.0 - config.ema_decay)
                        else:
                            ema[k].copy_(v)
            done = step + 1
            if rank == 0 and (done % config.log_every == 0 or done == config.steps):
                now = time.time()
                row = {"step": done, "lr": config.lr_at(step), "grad_norm": float(grad_norm), **metrics,
                       "seconds": round(now - t0, 2)}
                if writer is None:
                    new = not log_path.exists() or start == 0
                    f = log_path.open("w" if new else "a", newline="")
                    writer = csv.DictWriter(f, fieldnames=list(row), extrasaction="ignore")
                    if new:
                        writer.writeheader()
                    writer._file = f  # keep a handle to flush
                writer.writerow(row)
                writer._file.flush()
                if bar is not None:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in metrics.items() if k in ("loss", "ce", "kl", "mse")})
            if bar is not None:
                bar.update(1)
            saved = rank == 0 and (done % config.checkpoint_every == 0 or done == config.steps)
            if saved:
                _save(out, kind, model, optimizer, ema, done, meta)
            if time_up or interrupted:
                if rank == 0 and not saved:
                    _save(out, kind, model, optimizer, ema, done, meta)
                if interrupted:
                    log.info("interrupted at step %d (checkpoint saved); rerun to resume", done)
                else:
                    log.warning("stopping after %.0f s at step %d (time limit); rerun to resume",
                                time.time() - t0, done)
                break
    finally:
        stop.restore()
        if bar is not None:
            bar.close()
        if writer is not None:
            writer._file.close()
    if world > 1:
        dist.barrier()  # every rank leaves together, after rank 0 has written the last checkpoint
    if interrupted:
        raise KeyboardInterrupt
    if ema is not None:
        model.load_state_dict(ema)
    return model


class _StopRequest:
    """Until ``restore()``, SIGINT and SIGTERM only set ``requested``: the loop stops at the end of the step, with a
    checkpoint, instead of dying mid-step with up to ``checkpoint_every`` steps lost. More signals change nothing, so
    a second Ctrl-C (or torchrun's SIGTERM after the terminal's SIGINT) cannot cut the checkpoint short. Signal
    handlers can only be set in the main thread; elsewhere this does nothing and signals act as before."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set outside Python


def _trim_log(path: Path, step: int) -> None:
    """Drop the rows of ``path`` (log.csv) after ``step``, the step a run resumes from: they were logged after the
    last checkpoint of a run that then died, and will be logged again. Incomplete rows (a write cut short) go too."""
    if not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        rows = list(reader)
        fields = reader.fieldnames or []
    except csv.Error:
        fields = []
    if "step" not in fields:  # not a log this loop wrote (or its header was cut short): the run starts a new one
        path.unlink()
        return
    kept = [row for row in rows if _logged_step(row) <= step]
    if len(kept) == len(rows) and text.endswith("\n"):
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(kept)
    atomic_write_text(path, buf.getvalue())


def _logged_step(row: dict[str | None, Any]) -> float:
    """A row's step, or infinity for a row cut short (missing or extra fields, no step)."""
    if None in row or None in row.values():
        return math.inf
    try:
        return int(row.get("step", ""))
    except ValueError:
        return math.inf


def _average_gradients(model: nn.Module, world: int, *flags: bool) -> tuple[bool, ...]:
    """Average the gradients over the ranks; returns, for each flag (time up, a stop signal, a non-finite loss),
    whether any rank raised it. The flags ride in the same all-reduce: every rank must stop at the same step, or the
    others would wait for gradients that never come. A parameter without a gradient (on a rank that skipped
    backward) sends zeros, so every rank's message has the same layout; it gets no gradient back."""
    params = [p for p in model.parameters() if p.requires_grad]
    parts = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params]
    flat = torch.cat([*parts, torch.tensor([float(f) for f in flags], device=params[0].device,
                                           dtype=params[0].dtype)])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for p in params:
        if p.grad is not None:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p.grad))
        offset += p.numel()
    return tuple(bool(v > 0) for v in flat[offset:].tolist())


def _save(out: Path, kind: str, model: nn.Module, optimizer: torch.optim.Optimizer, ema: dict | None, step: int,
          meta: dict[str, Any]) -> None:
    weights = ema if ema is not None else model.state_dict()
    state = {"kind": kind, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema, "step": step}
    save_checkpoint(out, kind, weights, {**meta, "step": step}, state)
