"""Magenta's published MusicVAE melody checkpoints imported into MelodyVAE (docs/PAPER.md §8, docs/MAGENTA.md).

Two formats, read without TensorFlow:
- a TensorFlow checkpoint (cat-mel_2bar_big, cat-mel_2bar_small): tensor bundle ``*.index`` + ``*.data-*``, a folder
  holding one, or the published ``.tar`` (tf_bundle.py);
- a magenta.js checkpoint (mel_2bar_small): ``weights_manifest.json`` (groups of {paths, weights: [{name, shape,
  dtype, quantization?}]}), the shard files of each group concatenated in ``paths`` order, and ``config.json``.
  Quantised weights are v * scale + min (uint8, uint16) or float16 widened.

Mapping (Magenta's LSTMBlockCell: kernel [input + units, 4 units], gate columns i, j, f, o, forget bias 1.0 added at
run time) into torch.nn.LSTM (weight_ih [4 units, input], weight_hh [4 units, units], gates i, f, g, o):
W = kernel^T, weight_ih = W[:, :input], weight_hh = W[:, input:], gate blocks (i, j, f, o) -> (i, f, j, o),
bias_ih = bias with the forget bias added to the f block, bias_hh = 0. Dense layers: weight = kernel^T.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodiff.config import to_dict
from melodiff.errors import MelodiffError
from melodiff.music.melody import CHUNK_STEPS, NUM_CLASSES
from melodiff.training.checkpoint import STATE, save_checkpoint
from melodiff.vae.config import VAEConfig, VAETrainConfig
from melodiff.vae.model import MelodyVAE
from melodiff.vae.tf_bundle import read_bundle

log = logging.getLogger(__name__)

# The 42 dims of cat-mel_2bar_big whose mean encoder sigma is < 1 over the paper's training set (docs/PAPER.md §3, §8).
PAPER_DIMS = (12, 14, 24, 36, 41, 62, 73, 135, 154, 156, 167, 175, 177, 182, 187, 199, 202, 211, 216, 226, 245, 248,
              262, 266, 270, 283, 294, 298, 345, 367, 370, 371, 377, 384, 387, 458, 471, 473, 476, 480, 482, 483)
# cell variable scope -> forget bias its cell adds at run time (contrib's CudnnCompatibleLSTMCell is an LSTMBlockCell
# with forget_bias 0, for weights trained with cuDNN)
FORGET_BIAS = {"lstm_cell": 1.0, "cudnn_compatible_lstm_cell": 0.0}
ENCODER_CELL = "encoder/cell_0/bidirectional_rnn/{direction}/multi_rnn_cell/cell_0/"
DECODER_CELL = "decoder/multi_rnn_cell/cell_{layer}/"
# training state and cuDNN's opaque parameters: never needed
IGNORED = re.compile(r"(^|/)(global_step|beta[12]_power|opaque_kernel)$|Adam")
UNSUPPORTED = re.compile(r"hierarchical_level|core_decoder|nade/")
TFJS_DTYPES = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "uint8": np.dtype("u1"),
               "uint16": np.dtype("<u2"), "float16": np.dtype("<f2")}


# ---- readers --------------------------------------------------------------------------------------------------------
def read_magenta(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The variables (TF name -> float32 array) of a Magenta checkpoint, and facts about the source (format, spec)."""
    path = Path(path)
    manifest = path / "weights_manifest.json" if path.is_dir() else path
    if manifest.name == "weights_manifest.json" and manifest.is_file():
        return read_tfjs(manifest.parent)
    weights = read_bundle(path, want=lambda name: not IGNORED.search(name))
    return weights, {"format": "tensorflow"}


def read_tfjs(folder: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A magenta.js checkpoint folder -> (name -> float32 array, source facts incl. its config.json ``spec``)."""
    folder = Path(folder)
    manifest = _read_json(folder / "weights_manifest.json")
    spec = _read_json(folder / "config.json") if (folder / "config.json").is_file() else None
    if not isinstance(manifest, list):
        raise MelodiffError(f"{folder}/weights_manifest.json: expected a list of weight groups")
    weights: dict[str, np.ndarray] = {}
    for number, group in enumerate(manifest):
        try:
            paths, entries = group["paths"], group["weights"]
            buffer = b"".join(_read_shard(folder, p) for p in paths)
            pos = 0
            for entry in entries:
                value, pos = _tfjs_tensor(buffer, pos, entry)
                weights[entry["name"]] = value
        except (KeyError, TypeError, ValueError) as exc:
            raise MelodiffError(f"{folder}/weights_manifest.json: bad weight group {number} ({exc})") from None
        if pos != len(buffer):
            raise MelodiffError(f"{folder}: weight group {number} has {len(buffer)} bytes, its manifest {pos}")
    source: dict[str, Any] = {"format": "magenta.js"}
    if spec is not None:
        source.update(_check_spec(spec, folder))
    return weights, source


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise MelodiffError(f"{path}: not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MelodiffError(f"{path}: not valid JSON ({exc})") from None


def _read_shard(folder: Path, name: str) -> bytes:
    path = folder / name
    if not path.is_file():
        raise MelodiffError(f"{folder}: weight shard {name} missing")
    return path.read_bytes()


def _tfjs_tensor(buffer: bytes, pos: int, entry: dict) -> tuple[np.ndarray, int]:
    """One manifest entry's tensor at ``pos`` of its group's bytes -> (float32 or int32 array, next position)."""
    name, shape, dtype = entry["name"], tuple(int(d) for d in entry["shape"]), entry["dtype"]
    quant = entry.get("quantization")
    stored = quant["dtype"] if quant else dtype
    if dtype not in ("float32", "int32") or stored not in TFJS_DTYPES:
        raise ValueError(f"{name}: unsupported dtype {dtype}/{stored}")
    count = int(np.prod(shape, dtype=np.int64))
    size = count * TFJS_DTYPES[stored].itemsize
    if pos + size > len(buffer):
        raise MelodiffError(f"magenta.js weights truncated: {name} needs bytes {pos}..{pos + size} of {len(buffer)}")
    raw = np.frombuffer(buffer, TFJS_DTYPES[stored], count, pos)
    if stored in ("uint8", "uint16"):  # as tfjs: computed in double precision, then stored in the original dtype
        value = raw * float(quant["scale"]) + float(quant["min"])
        value = np.round(value) if dtype == "int32" else value
    else:
        value = raw
    return value.astype(TFJS_DTYPES[dtype]).reshape(shape), pos + size


def _check_spec(spec: Any, folder: Path) -> dict[str, Any]:
    """magenta.js's config.json: a MusicVAE over 2-bar (32-step) one-hot melodies of MIDI 21..108."""
    if not isinstance(spec, dict) or spec.get("type") != "MusicVAE":
        raise MelodiffError(f"{folder}/config.json: not a MusicVAE checkpoint (type {spec.get('type')!r})"
                            if isinstance(spec, dict) else f"{folder}/config.json: not a MusicVAE config")
    converter = spec.get("dataConverter") or {}
    args = converter.get("args") or {}
    if converter.get("type") != "MelodyConverter" or spec.get("chordEncoder"):
        raise MelodiffError(f"{folder}: a {converter.get('type')} model; melodiff imports melody models "
                            f"(MelodyConverter, no chord conditioning) only")
    if args.get("numSteps", CHUNK_STEPS) != CHUNK_STEPS or args.get("numSegments"):
        raise MelodiffError(f"{folder}: a {args.get('numSteps')}-step model; melodiff works in 2-bar chunks "
                            f"({CHUNK_STEPS} steps): use mel_2bar_small / cat-mel_2bar_big")
    if (args.get("minPitch", 21), args.get("maxPitch", 108)) != (21, 108):
        raise MelodiffError(f"{folder}: pitch range {args.get('minPitch')}..{args.get('maxPitch')}, melodiff's "
                            f"vocabulary is MIDI 21..108")
    return {"spec": spec}


# ---- mapping --------------------------------------------------------------------------------------------------------
def _cell(weights: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray, float] | None:
    """(kernel, bias, forget bias) of the LSTM cell under ``prefix``, or None if there is none."""
    for scope, forget_bias in FORGET_BIAS.items():
        if f"{prefix}{scope}/kernel" in weights:
            return weights[f"{prefix}{scope}/kernel"], _need(weights, f"{prefix}{scope}/bias"), forget_bias
    return None


def _need(weights: dict[str, np.ndarray], name: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if name not in weights:
        raise MelodiffError(f"the checkpoint has no variable {name}: not a MusicVAE 2-bar melody checkpoint")
    value = weights[name]
    if shape is not None and value.shape != shape:
        raise MelodiffError(f"{name} has shape {list(value.shape)}, expected {list(shape)}")
    return value


def lstm_to_torch(kernel: np.ndarray, bias: np.ndarray, forget_bias: float) -> tuple[np.ndarray, ...]:
    """LSTMBlockCell (kernel [I + H, 4H], bias [4H], gates i, j, f, o) -> (weight_ih, weight_hh, bias_ih, bias_hh)."""
    units = bias.shape[0] // 4
    if bias.shape != (4 * units,) or kernel.ndim != 2 or kernel.shape[1] != 4 * units or kernel.shape[0] <= units:
        raise MelodiffError(f"bad LSTM shapes: kernel {list(kernel.shape)}, bias {list(bias.shape)}")
    order = [0, 2, 1, 3]  # (i, j, f, o) -> (i, f, j, o): torch's (i, f, g, o)
    w = kernel.T.reshape(4, units, -1)[order].reshape(4 * units, -1)
    b = bias.reshape(4, units)[order].reshape(-1).astype(np.float32)
    b[units:2 * units] += np.float32(forget_bias)
    inputs = kernel.shape[0] - units
    return w[:, :inputs], w[:, inputs:], b, np.zeros_like(b)


def magenta_state_dict(weights: dict[str, np.ndarray], steps: int = CHUNK_STEPS
                       ) -> tuple[VAEConfig, dict[str, torch.Tensor], list[str]]:
    """Magenta's variables -> (the VAEConfig their shapes imply, a MelodyVAE state dict, notes for the user)."""
    unsupported = sorted(n for n in weights if UNSUPPORTED.search(n))
    if unsupported:
        raise MelodiffError(f"a hierarchical or NADE MusicVAE ({unsupported[0]}, ...): melodiff imports the flat "
                            f"2-bar melody models (cat-mel_2bar_*, mel_2bar_small) only")
    fw, bw = (_cell(weights, ENCODER_CELL.format(direction=d)) for d in ("fw", "bw"))
    if fw is None or bw is None:
        raise MelodiffError("the checkpoint has no bidirectional encoder cell "
                            f"({ENCODER_CELL.format(direction='fw')}lstm_cell/kernel): not a MusicVAE melody model")
    enc_units = fw[1].shape[0] // 4
    classes = fw[0].shape[0] - enc_units
    if classes != NUM_CLASSES:
        raise MelodiffError(f"the encoder reads {classes} classes per step; melodiff's melody vocabulary has "
                            f"{NUM_CLASSES} (mel_2bar models)")
    mu_bias = _need(weights, "encoder/mu/bias")
    z_size = mu_bias.shape[0]
    layers: list[tuple[np.ndarray, np.ndarray, float]] = []
    while (cell := _cell(weights, DECODER_CELL.format(layer=len(layers)))) is not None:
        layers.append(cell)
    if not layers:
        raise MelodiffError(f"the checkpoint has no decoder cell ({DECODER_CELL.format(layer=0)}lstm_cell/kernel)")
    dec_units = layers[0][1].shape[0] // 4
    config = VAEConfig(z_size=z_size, encoder_units=enc_units, decoder_layers=len(layers), decoder_units=dec_units,
                       num_classes=classes, steps=steps)

    state: dict[str, np.ndarray] = {}
    for (kernel, bias, forget_bias), suffix in ((fw, ""), (bw, "_reverse")):
        _expect(kernel, (classes + enc_units, 4 * enc_units), "encoder cell")
        for key, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                              lstm_to_torch(kernel, bias, forget_bias)):
            state[f"encoder.{key}_l0{suffix}"] = value
    for i, (kernel, bias, forget_bias) in enumerate(layers):
        inputs = classes + z_size if i == 0 else dec_units  # [previous one-hot, z], then the layer below's h
        _expect(kernel, (inputs + dec_units, 4 * dec_units), f"decoder cell_{i}")
        for key, value in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"),
                              lstm_to_torch(kernel, bias, forget_bias)):
            state[f"decoder.{key}_l{i}"] = value
    dense = {"mu": ("encoder/mu", 2 * enc_units, z_size),
             "z_to_initial_state": ("decoder/z_to_initial_state", z_size, 2 * len(layers) * dec_units),
             "output_projection": ("decoder/output_projection", dec_units, classes)}
    notes = []
    if "encoder/sigma/kernel" in weights:
        dense["sigma"] = ("encoder/sigma", 2 * enc_units, z_size)
    else:  # magenta.js encodes with mu alone, and its checkpoints may leave sigma out
        notes.append("no encoder/sigma in the checkpoint: sigma is set to ~0, so z = mu and no dims are trimmed by "
                     "sigma (use --paper-dims or choose dims yourself)")
        state["sigma.weight"] = np.zeros((z_size, 2 * enc_units), np.float32)
        state["sigma.bias"] = np.full(z_size, -30.0, np.float32)  # softplus(-30) ~ 1e-13
    for module, (scope, n_in, n_out) in dense.items():
        state[f"{module}.weight"] = _need(weights, f"{scope}/kernel", (n_in, n_out)).T
        state[f"{module}.bias"] = _need(weights, f"{scope}/bias", (n_out,))
    cells = [ENCODER_CELL.format(direction=d) for d in ("fw", "bw")]
    cells += [DECODER_CELL.format(layer=i) for i in range(len(layers))]
    used = {f"{cell}{scope}/{v}" for cell in cells for scope in FORGET_BIAS for v in ("kernel", "bias")}
    used |= {f"{scope}/{v}" for scope, _, _ in dense.values() for v in ("kernel", "bias")}
    unused = sorted(set(weights) - used - {n for n in weights if IGNORED.search(n)})
    if unused:
        notes.append(f"ignored {len(unused)} unknown variable(s): {', '.join(unused[:5])}")
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in state.items()}
    return config, tensors, notes


def _expect(value: np.ndarray, shape: tuple[int, int], what: str) -> None:
    if value.shape != shape:
        raise MelodiffError(f"{what}: kernel of shape {list(value.shape)}, expected {list(shape)} from the other "
                            f"variables' sizes")


def load_magenta(path: str | Path) -> tuple[MelodyVAE, dict[str, Any]]:
    """A Magenta checkpoint as a MelodyVAE in eval mode, and the source facts (format, notes)."""
    weights, source = read_magenta(path)
    config, state, notes = magenta_state_dict(weights)
    model = MelodyVAE(config)
    model.load_state_dict(state)  # strict: every parameter of MelodyVAE is set
    for note in notes:
        log.warning("%s: %s", path, note)
    return model.eval(), {**source, "notes": notes}


def import_magenta(path: str | Path, out: str | Path, paper_dims: bool = False) -> VAEConfig:
    """Write a melodiff VAE checkpoint (kind "vae") at ``out`` from a Magenta checkpoint at ``path``.

    ``paper_dims``: store the paper's 42 kept dims of cat-mel_2bar_big as ``trim_dims`` in config.json (used by
    ``melodiff encode`` instead of recomputing them from the encoder's sigma)."""
    out = Path(out)
    if (out / STATE).exists():
        raise MelodiffError(f"{out}: holds a training run; import into a new folder")
    model, source = load_magenta(path)
    meta: dict[str, Any] = {"model": to_dict(model.config), "train": to_dict(VAETrainConfig()),
                            "magenta": {"path": str(path), **source}}
    if paper_dims:
        if model.config.z_size != 512:
            raise MelodiffError(f"--paper-dims: the paper's dims belong to cat-mel_2bar_big (z 512), this checkpoint "
                                f"has z {model.config.z_size}")
        meta["trim_dims"] = list(PAPER_DIMS)
    save_checkpoint(out, "vae", model.state_dict(), meta)
    return model.config
