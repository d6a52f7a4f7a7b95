"""Checkpoints as folders: ``model.safetensors`` (weights), ``config.json`` (everything needed to rebuild the model:
its kind, model config, training config, extra objects such as the latent normaliser, and the versions that made it)
and, for resuming only, ``state.pt`` (optimiser, step, EMA, RNG). Every file is written atomically."""

from __future__ import annotations

import glob
import io
import json
import pickle
import platform
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save

from melodiff.config import apply_settings, check_settings, from_dict
from melodiff.errors import MelodiffError
from melodiff.loading import CONFIG, WEIGHTS
from melodiff.utils.io import atomic_write_bytes, atomic_write_text

STATE = "state.pt"


def versions() -> dict[str, str]:
    import numpy

    import melodiff

    return {"melodiff": melodiff.__version__, "torch": torch.__version__, "numpy": numpy.__version__,
            "python": platform.python_version()}


def save_weights(path: str | Path, state_dict: dict[str, torch.Tensor]) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    atomic_write_bytes(path, save(tensors))


def save_checkpoint(folder: str | Path, kind: str, model_state: dict[str, torch.Tensor], meta: dict[str, Any],
                    train_state: dict[str, Any] | None = None) -> None:
    """Write a checkpoint folder. ``meta`` holds JSON-ready configs; ``train_state`` (optional) the resume state."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_weights(folder / WEIGHTS, model_state)
    atomic_write_text(folder / CONFIG, json.dumps({"kind": kind, **meta, "versions": versions()}, indent=2))
    if train_state is not None:
        buf = io.BytesIO()
        torch.save(train_state, buf)
        atomic_write_bytes(folder / STATE, buf.getvalue())


def read_train_state(folder: str | Path) -> dict[str, Any] | None:
    """The resume state in ``folder``, or None if it has none. ``weights_only`` refuses pickles that would run code;
    that, a truncated file (a disk that filled up before atomic writes) and garbage all end as one-line errors."""
    path = Path(folder) / STATE
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, KeyError,
            IndexError, UnicodeDecodeError) as exc:
        raise MelodiffError(f"{path}: corrupt or unsafe training state ({_gist(exc)}); delete it to start over") \
            from None
    if not isinstance(state, dict) or not {"kind", "model", "optimizer", "step"} <= set(state):
        raise MelodiffError(f"{path}: not a melodiff training state; delete it to start over")
    return state


def _gist(exc: BaseException, limit: int = 200) -> str:
    """What went wrong in torch.load, on one short line: the first sentence of its message, past torch's opening
    advice to retry with weights_only=False (which is what must not happen: that would run the file's code)."""
    text = str(exc).split("WeightsUnpickler error:")[-1]
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith("Weights only load failed")]
    gist = lines[0].split(". ")[0].rstrip(".") if lines else type(exc).__name__
    return gist if len(gist) <= limit else gist[:limit - 1] + "…"


def remove_stale_temp_files(folder: str | Path, names: Sequence[str] = (WEIGHTS, CONFIG, STATE)) -> list[Path]:
    """Delete the temporary files (``.<name>.<random>.tmp``, see utils/io.py) that a writer of ``names`` killed
    mid-write left in ``folder``: nothing renames them any more, and a weights file can be large. Only for a folder
    no other process is writing to. Returns what was removed."""
    folder = Path(folder)
    removed = []
    for name in names:
        for path in folder.glob(f".{glob.escape(name)}.*.tmp"):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def run_configs(sections: dict[str, Any], steps: int | None = None, seed: int | None = None,
                settings: Sequence[str] = (), fixed: Sequence[str] = (), saved: dict[str, Any] | None = None,
                resume: bool = False) -> dict[str, Any]:
    """The configs of a training run by section (``model``, ``train``, ...), from a preset's ``sections``.

    ``saved``: a checkpoint's meta whose sections replace the preset's (the run being resumed, or a checkpoint to start
    from). ``settings`` (``--set section.field=value``) apply to a new run and must agree with a resumed one, which
    keeps its configs; ``fixed`` names fields they may not touch. ``seed`` overrides the seed of a new run, ``steps``
    (default: the preset's) the step count of any run."""
    fixed = ("train.steps", "train.seed", *fixed)  # the command line sets those with --steps / --seed
    steps = sections["train"].steps if steps is None else steps
    if saved is not None:
        sections = {name: from_dict(type(config), saved[name]) for name, config in sections.items()}
    if resume:
        check_settings(sections, settings, fixed)
    else:
        sections = apply_settings(sections, settings, fixed)
        if seed is not None:
            sections["train"] = replace(sections["train"], seed=seed)
    sections["train"] = replace(sections["train"], steps=steps)
    return sections
