"""One generic training loop for every model: AdamW/Adam, gradient clipping, a learning-rate schedule, optional EMA,
CSV logging, atomic checkpoints and exact resume; multi-process data parallel under ``torchrun``
(torch.distributed: every rank starts from rank 0's weights, draws its own batches, and gradients are averaged over
ranks before each step, as DDP does; the loss function may call any method of the model, not only ``forward``).

Randomness: the batch and noise of step ``s`` on rank ``r`` come from a generator seeded with (seed, r, s), so a run
resumed from a checkpoint continues exactly as if it had never stopped."""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from melodiff.errors import MelodiffError
from melodiff.training.checkpoint import read_train_state, save_checkpoint

log = logging.getLogger(__name__)

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


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed((seed * 1_000_003 + rank) * 10_000_019 + step)
    return g


def _dist_setup() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def train(model: nn.Module, loss_fn: LossFn, config: LoopConfig, out: str | Path, kind: str,
          meta: dict[str, Any], progress: bool = True, init_step: int = 0) -> nn.Module:
    """Train ``model`` in place for ``config.steps`` steps, resuming from ``out/state.pt`` if present, else from
    ``init_step`` (a run started from another checkpoint's weights). Writes ``out/`` (checkpoint, see checkpoint.py)
    and ``out/log.csv``. Returns the model (EMA weights if used)."""
    out = Path(out)
    rank, world = _dist_setup()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr_at(0))
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if config.ema_decay > 0 else None
    start = init_step
    state = read_train_state(out)
    if state is not None:
        if state.get("kind") != kind:
            raise MelodiffError(f"{out}: holds a {state.get('kind')!r} run, not {kind!r}; use another --out")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        ema = state.get("ema")
        start = state["step"]
        log.info("resuming %s from step %d", out, start)
    if world > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, 0)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.csv"
    t0 = time.time()
    writer = None
    bar = None
    if rank == 0 and progress:
        from tqdm import tqdm

        bar = tqdm(total=config.steps, initial=start, desc=f"train {kind}", unit="step", dynamic_ncols=True)
    try:
        for step in range(start, config.steps):
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(step)
            loss, metrics = loss_fn(model, step, step_generator(config.seed, rank, step))
            if not torch.isfinite(loss):
                raise MelodiffError(f"non-finite loss at step {step}; lower the learning rate")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            time_up = time.time() - t0 > config.max_seconds
            if world > 1:
                time_up = _average_gradients(model, world, time_up)
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
            if rank == 0 and (done % config.checkpoint_every == 0 or done == config.steps):
                _save(out, kind, model, optimizer, ema, done, meta)
            if time_up:
                if rank == 0 and done % config.checkpoint_every:
                    _save(out, kind, model, optimizer, ema, done, meta)
                log.warning("stopping after %.0f s at step %d (time limit); rerun to resume", time.time() - t0, done)
                break
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer._file.close()
    if world > 1:
        dist.barrier()  # every rank leaves together, after rank 0 has written the last checkpoint
    if ema is not None:
        model.load_state_dict(ema)
    return model


def _average_gradients(model: nn.Module, world: int, time_up: bool) -> bool:
    """Average the gradients over the ranks; returns whether any rank's time is up. That flag rides in the same
    all-reduce: every rank must stop at the same step, or the others would wait for gradients that never come."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flag = torch.tensor([float(time_up)], device=grads[0].device, dtype=grads[0].dtype)
    flat = torch.cat([g.reshape(-1) for g in grads] + [flag])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()
    return bool(flat[-1].item() > 0)


def _save(out: Path, kind: str, model: nn.Module, optimizer: torch.optim.Optimizer, ema: dict | None, step: int,
          meta: dict[str, Any]) -> None:
    weights = ema if ema is not None else model.state_dict()
    state = {"kind": kind, "model": model.state_dict(), "optimizer": optimizer.state_dict(), "ema": ema, "step": step}
    save_checkpoint(out, kind, weights, {**meta, "step": step}, state)
