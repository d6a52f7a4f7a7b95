"""Loading trained models for inference: a checkpoint folder (``model.safetensors`` + ``config.json``, see
training/checkpoint.py for how they are written) rebuilt into its model, and a model folder (``vae/`` +
``diffusion/``, checked against ``checksums.json``) into the parts of a Pipeline.

Inference code imports this module, never the training modules: generating with a model loads no optimiser, data
pipeline or ``torch.distributed`` code of melodiff's (tests/test_layers.py checks it)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from safetensors.torch import load_file

from melodiff.baseline.mdn import MDNConfig, TransformerMDN
from melodiff.config import build_checked, from_dict
from melodiff.data.contexts import check_table
from melodiff.data.normalizer import LatentNormalizer
from melodiff.diffusion.config import DenoiserConfig, ScheduleConfig
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.guide import AttributeGuide, GuideConfig
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.errors import MelodiffError
from melodiff.music.form import check_section_bars, fit_form
from melodiff.music.meter import meter as check_meter
from melodiff.vae.config import VAEConfig
from melodiff.vae.model import MelodyVAE

M = TypeVar("M", bound=torch.nn.Module)
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
CHECKSUMS = "checksums.json"
FORMS = "forms.json"  # a model folder's default forms (music/form.py choose_forms), optional
GUIDE = "guide"  # a model folder's guide checkpoint (diffusion/guide.py), optional
METERS = "meters"  # a model folder's model folders for other meter families (meters/<name>/), optional


# ---- checkpoint folders ----------------------------------------------------------------------------------------------
def read_config(folder: str | Path, kind: str | None = None) -> dict[str, Any]:
    """A checkpoint's ``config.json`` (its kind, configs, normaliser, versions); MelodiffError if missing, unreadable
    or of another ``kind``."""
    folder = Path(folder)
    path = folder / CONFIG
    if not path.is_file():
        raise MelodiffError(f"{folder}: not a melodiff checkpoint (no {CONFIG})")
    try:
        meta = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MelodiffError(f"{path}: unreadable checkpoint config ({exc})") from None
    if not isinstance(meta, dict):
        raise MelodiffError(f"{path}: unreadable checkpoint config (not a JSON object)")
    if kind is not None and meta.get("kind") != kind:
        raise MelodiffError(f"{folder}: a {meta.get('kind')!r} checkpoint, expected {kind!r}")
    return meta


def read_weights(folder: str | Path) -> dict[str, torch.Tensor]:
    path = Path(folder) / WEIGHTS
    if not path.is_file():
        raise MelodiffError(f"{folder}: checkpoint has no {WEIGHTS}")
    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises several types for truncated/corrupt files
        raise MelodiffError(f"{path}: corrupt weights ({exc})") from None


def load_module(folder: str | Path, kind: str, build: Callable[[dict[str, Any]], M]) -> tuple[M, dict[str, Any]]:
    """A model rebuilt by ``build(config.json contents)`` (its size checked first, config.build_checked) with the
    folder's weights, in eval mode, and its meta."""
    meta = read_config(folder, kind)
    try:
        model = build_checked(lambda: build(meta))
    except (KeyError, TypeError) as exc:
        raise MelodiffError(f"{folder}: {CONFIG} lacks a model config ({exc})") from None
    try:
        model.load_state_dict(read_weights(folder))
    except RuntimeError as exc:
        raise MelodiffError(f"{folder}: weights do not match the config ({str(exc).splitlines()[0]})") from None
    return model.eval(), meta


def load_vae(folder: str | Path) -> MelodyVAE:
    """A trained VAE from its checkpoint folder, in eval mode."""
    return load_module(folder, "vae", lambda meta: MelodyVAE(from_dict(VAEConfig, meta["model"])))[0]


def load_diffusion(folder: str | Path) -> tuple[TransformerDenoiser, NoiseSchedule, LatentNormalizer]:
    """A trained denoiser, its noise schedule and the latent normaliser it was trained with."""
    model, meta = load_module(folder, "diffusion",
                              lambda m: TransformerDenoiser(from_dict(DenoiserConfig, m["model"])))
    try:
        schedule = NoiseSchedule(from_dict(ScheduleConfig, meta["schedule"]))
        return model, schedule, from_dict(LatentNormalizer, meta["normalizer"])
    except (KeyError, TypeError) as exc:
        raise MelodiffError(f"{folder}: {CONFIG} lacks the schedule or the normaliser ({exc})") from None


def load_guide(folder: str | Path) -> AttributeGuide:
    """A trained guide (diffusion/guide.py), in eval mode."""
    return load_module(folder, "guide", lambda meta: AttributeGuide(from_dict(GuideConfig, meta["model"])))[0]


def load_mdn(folder: str | Path) -> TransformerMDN:
    """A trained TransformerMDN baseline, in eval mode."""
    return load_module(folder, "mdn", lambda meta: TransformerMDN(from_dict(MDNConfig, meta["model"])))[0]


# ---- model folders ---------------------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
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
    try:
        expected_sums = dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as exc:
        raise MelodiffError(f"{path}: damaged ({exc}); reinstall melodiff or re-run `melodiff bundle`") from None
    for name, expected in expected_sums.items():
        if not (folder / name).is_file() or sha256(folder / name) != expected:
            raise MelodiffError(f"{folder / name}: missing or damaged (checksum mismatch); reinstall melodiff or "
                                "re-run `melodiff bundle`")


def read_contexts(folder: str | Path) -> dict | None:
    """The training tunes' context table of a context model's diffusion checkpoint (data/contexts.py), else None."""
    table = read_config(folder, "diffusion").get("contexts")
    return None if table is None else check_table(table)


def load_model(folder: str | Path) -> tuple[MelodyVAE, TransformerDenoiser, NoiseSchedule, LatentNormalizer,
                                             dict[str, dict], dict | None, AttributeGuide | None]:
    """The parts of a Pipeline from a model folder holding ``vae/`` and ``diffusion/`` checkpoints (and, if it has
    them, ``forms.json``: the default form of each length, and ``guide/``: the guide of diffusion/guide.py), and
    the context table of a context model."""
    folder = Path(folder)
    if not (folder / "vae").is_dir() or not (folder / "diffusion").is_dir():
        raise MelodiffError(f"{folder}: not a melodiff model folder (needs vae/ and diffusion/)")
    verify_model(folder)
    denoiser, schedule, normalizer = load_diffusion(folder / "diffusion")
    contexts = read_contexts(folder / "diffusion")
    if denoiser.config.context and contexts is None:
        raise MelodiffError(f"{folder / 'diffusion'}: a context model without its context table")
    guide = load_guide(folder / GUIDE) if (folder / GUIDE).is_dir() else None
    return load_vae(folder / "vae"), denoiser, schedule, normalizer, read_forms(folder), contexts, guide


def model_meters(folder: str | Path) -> dict[str, Path]:
    """Every model meter (music/meter.py) a model folder makes -> the model folder that makes it: its own VAE's
    meters, then those of the model folders under ``meters/`` (in name order; the first to make a meter wins; a
    folder there without a VAE checkpoint is no model and is passed over)."""
    folder = Path(folder)
    found: dict[str, Path] = {}
    others = sorted(p for p in (folder / METERS).iterdir() if (p / "vae" / CONFIG).is_file()) \
        if (folder / METERS).is_dir() else []
    for candidate in (folder, *others):
        for name in vae_meters(candidate / "vae"):
            found.setdefault(name, candidate)
    return found


def vae_meters(folder: str | Path) -> tuple[str, ...]:
    """The model meters of a VAE checkpoint folder (VAEConfig.meters: 4/4 for a config from before meters)."""
    try:
        return from_dict(VAEConfig, read_config(folder, "vae")["model"]).meters
    except KeyError:
        raise MelodiffError(f"{folder}: {CONFIG} lacks a model config") from None


def find_model(folder: str | Path, meter: str | None = None) -> Path:
    """The model folder in ``folder`` that makes ``meter`` (a name or a music.meter.Meter; ``folder`` itself when
    None); MeterOutsideModel naming the meters it makes for any other (music.meter.meter)."""
    folder = Path(folder)
    if meter is None:
        return folder
    if not (folder / "vae").is_dir():
        raise MelodiffError(f"{folder}: not a melodiff model folder (needs vae/ and diffusion/)")
    found = model_meters(folder)
    return found[check_meter(meter, tuple(found)).name]


def read_forms(folder: Path) -> dict[str, dict]:
    """{"32": {"section_bars": 2, "melodies": 620, "forms": {"ABCB…": 28, …}}} from a model folder's
    ``forms.json`` (music.form.choose_forms; {} without one)."""
    path = folder / FORMS
    if not path.is_file():
        return {}
    try:
        forms = json.loads(path.read_text())["forms"]
        for bars, entry in forms.items():
            check_section_bars(int(entry["section_bars"]))
            for form, count in entry["forms"].items():
                if fit_form(form, int(bars), int(entry["section_bars"]))[0] is None or not int(count) > 0:
                    raise ValueError(f"form {form!r} of {bars} bars")
            if not entry["forms"]:
                raise ValueError(f"no forms for {bars} bars")
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError,
            MelodiffError) as exc:
        raise MelodiffError(f"{path}: not a forms file of `melodiff bundle --data` ({exc})") from None
    return forms
