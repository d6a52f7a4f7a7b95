"""A model folder for generation: ``vae/`` and ``diffusion/`` with weights and configs only (no optimiser state),
in float32."""

from __future__ import annotations

import shutil
from pathlib import Path

from melodiff.training.checkpoint import CONFIG, WEIGHTS, read_config, read_weights, save_weights


def bundle_model(vae_dir: str | Path, diffusion_dir: str | Path, out: str | Path) -> int:
    """Copy weights + configs of two checkpoints into ``out``; returns the folder size in bytes."""
    out = Path(out)
    for name, src, kind in (("vae", vae_dir, "vae"), ("diffusion", diffusion_dir, "diffusion")):
        read_config(src, kind)  # validates
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        save_weights(dest / WEIGHTS, read_weights(src))
        shutil.copyfile(Path(src) / CONFIG, dest / CONFIG)
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
