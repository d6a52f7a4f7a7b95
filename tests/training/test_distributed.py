"""Data-parallel training: two gloo processes (as under torchrun) end with identical weights, which differ from a
single-process run (so the gradients really were averaged across ranks); a time limit reached, a signal received or a
non-finite loss met on one rank stops every rank at the same step."""

from __future__ import annotations

import math
import os
import signal
import socket
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from melodiff.errors import MelodiffError
from melodiff.training.loop import LoopConfig, train


def _loss_fn(model, step, generator):
    x = torch.randn(8, 4, generator=generator)
    y = x.sum(1, keepdim=True)
    loss = (model(x) - y).square().mean()
    return loss, {"loss": loss.item()}


def _nan_on_rank_1_at_step_1(model, step, generator):
    loss, metrics = _loss_fn(model, step, generator)
    return (loss * math.nan if step == 1 and os.environ["RANK"] == "1" else loss), metrics


def _sigterm_to_rank_1_at_step_1(model, step, generator):
    if step == 1 and os.environ["RANK"] == "1":
        os.kill(os.getpid(), signal.SIGTERM)
    return _loss_fn(model, step, generator)


LOSSES = {"plain": _loss_fn, "nan": _nan_on_rank_1_at_step_1, "sigterm": _sigterm_to_rank_1_at_step_1}


def _run(rank: int, world: int, port: int, out: str, max_seconds: tuple[float, ...] = (math.inf, math.inf),
         loss: str = "plain") -> None:
    """One rank's training; how it ended (an error's message, or "done") goes to ``out/rank{rank}.txt``."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Linear(4, 1)
    config = LoopConfig(steps=5, lr_at=lambda s: 0.1, log_every=1, checkpoint_every=5, max_seconds=max_seconds[rank])
    ending = "done"
    try:
        train(model, LOSSES[loss], config, os.path.join(out, "ckpt"), "toy", {}, progress=False)
    except (MelodiffError, KeyboardInterrupt) as exc:
        ending = f"{type(exc).__name__}: {exc}"
    with open(os.path.join(out, f"rank{rank}.txt"), "w") as f:
        f.write(ending)
    torch.save(model.state_dict(), os.path.join(out, f"rank{rank}.pt"))
    if world > 1:
        dist.destroy_process_group()
        # Leave without interpreter teardown: there, torch 2.13's gloo/store threads abort the process now and then
        # (SIGABRT, "terminate called without an active exception", about 1 run in 40 here) after all work is done.
        os._exit(0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_agree(tmp_path, monkeypatch):
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(key, "")  # restored after the test; _run sets them
    mp.spawn(_run, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    for key in a:
        assert torch.equal(a[key], b[key])
    single = tmp_path / "single"
    single.mkdir()
    _run(0, 1, 0, str(single))
    c = torch.load(single / "rank0.pt", weights_only=True)
    assert not torch.equal(a["weight"], c["weight"])
    assert (tmp_path / "ckpt" / "model.safetensors").exists()


def _logged_steps(folder) -> list[str]:
    return [row.split(",")[0] for row in (folder / "log.csv").read_text().splitlines()[1:]]


def _spawn_two(out, *args) -> list[str]:
    """Run two ranks of ``_run(..., *args)``; each one's ending. Fails instead of hanging if they do not finish."""
    context = mp.spawn(_run, args=(2, _free_port(), str(out), *args), nprocs=2, join=False)
    deadline = time.monotonic() + 120
    while not context.join(timeout=5):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            raise AssertionError("the ranks did not stop together")
    return [(out / f"rank{r}.txt").read_text() for r in (0, 1)]


def test_a_time_limit_on_one_rank_stops_all(tmp_path, monkeypatch):
    """Rank 1 runs out of time after its first step, rank 0 never does: both stop there (without agreeing, rank 0
    would wait for rank 1's gradients forever), and rank 0 checkpoints step 1."""
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(key, "")
    assert _spawn_two(tmp_path, (math.inf, 0.0)) == ["done", "done"]
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a[key], b[key]) for key in a)
    rows = (tmp_path / "ckpt" / "log.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,"), rows


def test_a_non_finite_loss_on_one_rank_stops_all(tmp_path, monkeypatch):
    """Rank 1's loss is NaN at step 1: both ranks raise the same error there, instead of rank 0 waiting forever for
    the gradients of a rank that has left."""
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(key, "")
    endings = _spawn_two(tmp_path, (math.inf, math.inf), "nan")
    assert endings == ["MelodiffError: non-finite loss at step 1; lower the learning rate"] * 2
    assert _logged_steps(tmp_path / "ckpt") == ["1"]  # step 1 went through; none went past the NaN


def test_a_signal_to_one_rank_stops_all_with_a_checkpoint(tmp_path, monkeypatch):
    """SIGTERM reaches rank 1 during step 1 (as torchrun passes on Ctrl-C): every rank stops after that step, rank 0
    checkpoints step 2, and both raise KeyboardInterrupt."""
    for key in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.setenv(key, "")
    assert _spawn_two(tmp_path, (math.inf, math.inf), "sigterm") == ["KeyboardInterrupt: "] * 2
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert all(torch.equal(a[key], b[key]) for key in a)
    assert torch.load(tmp_path / "ckpt" / "state.pt", weights_only=True)["step"] == 2
    assert _logged_steps(tmp_path / "ckpt") == ["1", "2"]
