"""The latent dataset that the diffusion model and the baseline train on, as ``melodiff encode`` writes it
(vae/encode.py makes it from a prepared dataset and a trained VAE).

On disk (one ``.npz``): ``x`` (chunks, D) float32 normalised sampled latents of every melody, all splits,
concatenated; ``offsets`` (melodies + 1,) into x; ``split`` (melodies,) 0/1/2 = train/validation/test;
``normalizer`` JSON (fitted on the train split); optionally each melody's context (data/contexts.py): ``ctx_tonic``,
``ctx_minor``, ``ctx_style``, ``ctx_density`` (melodies,) and ``styles`` JSON; ``meter`` (melodies,) index into
``meters`` JSON, the model meters of the VAE (music/meter.py; a file without them is 4/4)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from melodiff.config import from_dict, to_dict
from melodiff.data.contexts import MAX_DENSITY, TuneContexts
from melodiff.data.normalizer import LatentNormalizer
from melodiff.data.prepare import SPLITS
from melodiff.errors import MelodiffError
from melodiff.music.meter import meter as check_meter
from melodiff.utils.io import atomic_write_bytes


@dataclass
class LatentDataset:
    x: np.ndarray  # (chunks, D) float32, normalised
    offsets: np.ndarray  # (melodies + 1,) int64
    split: np.ndarray  # (melodies,) int8 index into SPLITS
    normalizer: LatentNormalizer
    contexts: TuneContexts | None = None
    meters: tuple[str, ...] = ("4/4",)  # the VAE's model meters
    meter: np.ndarray | None = None  # (melodies,) int index into meters; None = all the first

    def sequences(self, split: str) -> list[np.ndarray]:
        """The latent sequences (chunks, D) of every melody in ``split``."""
        code = SPLITS.index(split)
        return [self.x[self.offsets[i]:self.offsets[i + 1]] for i in np.flatnonzero(self.split == code)]

    def meter_of(self, split: str) -> np.ndarray:
        """(melodies of ``split``,) int64 index into ``meters`` of each melody's meter."""
        meter = np.zeros(len(self.split), np.int64) if self.meter is None else self.meter.astype(np.int64)
        return meter[self.split == SPLITS.index(split)]

    def save(self, path: str | Path) -> None:
        import io

        buf = io.BytesIO()
        extra = {}
        if self.contexts is not None:
            extra = {f"ctx_{k}": v for k, v in self.contexts.arrays().items()}
            extra["styles"] = np.array(json.dumps(list(self.contexts.styles)))
        if self.meter is not None:
            extra["meter"] = self.meter
        extra["meters"] = np.array(json.dumps(list(self.meters)))
        np.savez(buf, x=self.x, offsets=self.offsets, split=self.split,
                 normalizer=np.array(json.dumps(to_dict(self.normalizer))), **extra)
        atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> LatentDataset:
        """The dataset ``save`` wrote. Anything else (garbage, a file cut short, missing or malformed arrays, a bad
        normaliser) is a one-line error naming the file, not a traceback from deep inside training. Never unpickles:
        an .npz can hold pickles, which run code when loaded."""
        path = Path(path)
        if not path.is_file():
            raise MelodiffError(f"{path}: no latent dataset (run `melodiff encode` first)")

        def bad(why: str) -> MelodiffError:
            return MelodiffError(f"{path}: not a latent dataset of `melodiff encode` ({why})")

        try:
            f = np.load(path, allow_pickle=False)
            if not isinstance(f, np.lib.npyio.NpzFile):
                raise bad("a single array, not an .npz")
            with f:
                missing = [key for key in ("x", "offsets", "split", "normalizer") if key not in f.files]
                if missing:
                    raise bad(f"no {', '.join(missing)}")
                x, offsets, split, text = f["x"], f["offsets"], f["split"], f["normalizer"]
                ctx = {k[4:]: f[k] for k in ("ctx_tonic", "ctx_minor", "ctx_style", "ctx_density") if k in f.files}
                styles = f["styles"] if "styles" in f.files else None
                meter = f["meter"] if "meter" in f.files else None
                meter_names = str(f["meters"]) if "meters" in f.files else '["4/4"]'
        except MelodiffError:
            raise
        except Exception as exc:  # numpy, zipfile and zlib raise many types for garbage and truncated files
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            if "allow_pickle" in why:  # numpy advises loading it unsafely: not for a file that may be anything
                why = "object arrays, which are never unpickled" if why.startswith("Object") else "not an .npz"
            raise bad(f"unreadable: {why}") from None
        if text.ndim != 0 or text.dtype.kind != "U":
            raise bad("normalizer is not a JSON string")
        try:
            normalizer = from_dict(LatentNormalizer, json.loads(str(text)))
        except (json.JSONDecodeError, TypeError, MelodiffError) as exc:
            raise bad(f"bad normalizer: {str(exc).splitlines()[0][:200]}") from None
        dims, scalars = normalizer.dims, (normalizer.low, normalizer.high, normalizer.mean, normalizer.std)
        if not (isinstance(normalizer.z_size, int) and isinstance(dims, tuple) and dims
                and all(isinstance(d, int) for d in dims) and list(dims) == sorted(set(dims))
                and 0 <= dims[0] and dims[-1] < normalizer.z_size):
            raise bad("bad normalizer: dims must be ascending VAE dims below z_size")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and -np.inf < v < np.inf for v in scalars):
            raise bad("bad normalizer: low, high, mean and std must be finite numbers")
        if x.ndim != 2 or x.dtype.kind != "f" or x.shape[1] != normalizer.latent_dim:
            raise bad(f"x must be (chunks, {normalizer.latent_dim}) float, got {x.shape} {x.dtype}")
        if not np.isfinite(x).all():
            raise bad("x holds NaN or infinity")
        if (offsets.ndim != 1 or offsets.dtype.kind not in "iu" or len(offsets) == 0 or offsets[0] != 0
                or offsets[-1] != len(x) or (np.diff(offsets) < 0).any()):
            raise bad(f"offsets must rise from 0 to len(x) = {len(x)}")
        if split.ndim != 1 or split.dtype.kind not in "iu" or len(split) != len(offsets) - 1:
            raise bad(f"split must hold one integer per melody ({len(offsets) - 1})")
        if ((split < 0) | (split >= len(SPLITS))).any():
            raise bad(f"split codes must be 0..{len(SPLITS) - 1} ({', '.join(SPLITS)})")
        try:
            meters = tuple(json.loads(meter_names))
            for name in meters:
                check_meter(name)
        except (json.JSONDecodeError, TypeError, MelodiffError):
            raise bad("meters must be a JSON list of model meters") from None
        if meter is not None and (meter.ndim != 1 or meter.dtype.kind not in "iu" or len(meter) != len(split)
                                  or ((meter < 0) | (meter >= len(meters))).any()):
            raise bad(f"meter must hold one index into {len(meters)} meters per melody")
        contexts = None
        if ctx or styles is not None:
            try:
                names = json.loads(str(styles))
                limits = {"tonic": 12, "minor": 2, "style": len(names), "density": MAX_DENSITY}
                ok = (set(ctx) == set(limits) and all(isinstance(n, str) for n in names)
                      and all(a.ndim == 1 and a.dtype.kind in "iu" and len(a) == len(split)
                              and ((0 <= a) & (a < limits[k])).all() for k, a in ctx.items()))
            except (json.JSONDecodeError, TypeError):
                ok = False
            if not ok:
                raise bad("malformed tune contexts (ctx_tonic, ctx_minor, ctx_style, ctx_density, styles)")
            contexts = TuneContexts(**{k: a.astype(np.int64) for k, a in ctx.items()}, styles=tuple(names))
        return cls(x.astype(np.float32, copy=False), offsets.astype(np.int64, copy=False),
                   split.astype(np.int8, copy=False), normalizer, contexts, meters,
                   None if meter is None else meter.astype(np.int8))
