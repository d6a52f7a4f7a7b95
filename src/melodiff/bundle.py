"""A model folder for generation: ``vae/`` and ``diffusion/`` (and optionally ``guide/``, diffusion/guide.py) with
weights and configs only (no optimiser state), in float32 (or float16 with ``half``: half the bytes; loading casts them
back to float32), optionally ``forms.json`` (the default form of each length, from the training melodies' forms), and
``checksums.json`` (SHA-256 of every file) that ``loading.verify_model`` checks before loading. A model folder may
hold the model folders of other meter families under ``meters/<name>/`` (loading.find_model), each bundled on its
own (with its own checksums)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from melodiff.data.prepare import load_melodies
from melodiff.errors import MelodiffError
from melodiff.loading import (
    CHECKSUMS,
    CONFIG,
    FORMS,
    GUIDE,
    METERS,
    WEIGHTS,
    read_config,
    read_weights,
    sha256,
    vae_meters,
)
from melodiff.music.form import choose_forms
from melodiff.training.checkpoint import save_weights
from melodiff.utils.io import atomic_write_text


def bundle_model(vae_dir: str | Path, diffusion_dir: str | Path, out: str | Path,
                 data_dir: str | Path | None = None, guide_dir: str | Path | None = None, half: bool = False) -> int:
    """Copy weights + configs of the checkpoints into ``out`` (the guide's when ``guide_dir`` is given), with
    ``forms.json`` when ``data_dir`` (the prepared dataset the model was trained on) is given; returns the folder size
    in bytes."""
    out = Path(out)
    parts = [("vae", vae_dir, "vae"), ("diffusion", diffusion_dir, "diffusion")]
    if guide_dir is not None:
        diffusion = read_config(diffusion_dir, "diffusion")
        dims, window = diffusion.get("normalizer", {}).get("dims"), diffusion.get("model", {}).get("seq_len")
        guide = read_config(guide_dir, "guide").get("model", {})
        if (guide.get("latent_dim"), guide.get("seq_len")) != (len(dims or ()), window):
            raise MelodiffError(f"{guide_dir}: a guide for another diffusion model (latent size or window)")
        parts.append((GUIDE, guide_dir, "guide"))
    elif (out / GUIDE).is_dir():  # a folder bundled into again must not keep another model's guide
        shutil.rmtree(out / GUIDE)
    for name, src, kind in parts:
        read_config(src, kind)  # validates
        dest = out / name
        dest.mkdir(parents=True, exist_ok=True)
        weights = read_weights(src)
        if half:
            weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
        save_weights(dest / WEIGHTS, weights)
        shutil.copyfile(Path(src) / CONFIG, dest / CONFIG)
    if data_dir is not None:
        write_forms(out, data_dir, vae_meters(vae_dir))
    else:  # a folder bundled into again must not keep another model's forms
        (out / FORMS).unlink(missing_ok=True)
    checksum(out)
    return sum(f.stat().st_size for f in out.rglob("*") if f.is_file())


def write_forms(folder: str | Path, data_dir: str | Path, meters: tuple[str, ...] = ("4/4",)) -> dict[str, dict]:
    """``forms.json`` in a model folder: the default forms chosen from the train split of ``data_dir`` (its
    melodies in the model's ``meters``)."""
    melodies, _ = load_melodies(data_dir, "train", meters)
    forms = choose_forms(melodies)
    atomic_write_text(Path(folder) / FORMS, json.dumps({"data": str(data_dir), "forms": forms}, indent=2) + "\n")
    return forms


def checksum(out: Path) -> None:
    """(Re)write ``checksums.json`` over every other file of the model folder ``out`` (but those of the model folders
    under ``meters/``, which have their own)."""
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*")
                   if f.is_file() and f.name != CHECKSUMS and f.relative_to(out).parts[0] != METERS)
    atomic_write_text(out / CHECKSUMS, json.dumps({f: sha256(out / f) for f in files}, indent=2))
