"""A model folder for generation: ``vae/`` and ``diffusion/`` with weights and configs only (no optimiser state),
in float32, and ``checksums.json`` (SHA-256 of every file) that ``loading.verify_model`` checks before loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from melodiff.loading import CHECKSUMS, CONFIG, WEIGHTS, read_config, read_weights, sha256
from melodiff.training.checkpoint import save_weights
from melodiff.utils.io import atomic_write_text


def bundle_model(vae_dir: str | Path, diffusion_dir: str | Path, out: str | Path) -> int:
    """Copy weights + configs of two checkpoints into ``out``; returns the folder size in bytes."""
    out = Path(out)
    for name, src, kind in (("vae", vae_dir, "vae"), ("diffusion", diffusion_dir, "diffusion")):
        read_config(src, kind)  # validates
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        save_weights(dest / WEIGHTS, read_weights(src))
        shutil.copyfile(Path(src) / CONFIG, dest / CONFIG)
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file() and f.name != CHECKSUMS)
    atomic_write_text(out / CHECKSUMS, json.dumps({f: sha256(out / f) for f in files}, indent=2))
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
