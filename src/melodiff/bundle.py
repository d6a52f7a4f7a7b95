"""A model folder for generation: ``vae/`` and ``diffusion/`` with weights and configs only (no optimiser state),
in float32, and ``checksums.json`` (SHA-256 of every file) that ``verify_model`` checks before loading."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from melodiff.errors import MelodiffError
from melodiff.training.checkpoint import CONFIG, WEIGHTS, read_config, read_weights, save_weights
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
    atomic_write_text(out / CHECKSUMS, json.dumps({f: _sha256(out / f) for f in files}, indent=2))
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


CHECKSUMS = "checksums.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_model(folder: str | Path) -> None:
    """Check the files of a model folder against its ``checksums.json`` (a folder without one is not checked)."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        return
    for name, expected in json.loads(path.read_text()).items():
        if not (folder / name).is_file() or _sha256(folder / name) != expected:
            raise MelodiffError(f"{folder / name}: missing or damaged (checksum mismatch); reinstall melodiff or "
                                "re-run `melodiff bundle`")
