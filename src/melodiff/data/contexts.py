"""Tune contexts: what a conditioned denoiser is told besides the noisy latents (docs/DEVIATIONS.md, "A prior that
knows where the tune is").

Per latent position: how many chunks lie before it in the tune (``start``) and after it (``end``), so that openings
open and endings cadence; per tune: its mode (major / minor, music/keys.py), its style (the corpus collection it
came from, e.g. ``music21:oneills1850``) and its density (note onsets per bar, rounded, 1..16). Each field is a
class index; the last class of each field ("null") means "not told", which training uses for a share of the windows
(so that any field can be left out when sampling).

A model's ``contexts`` table (``context_table``, kept in its diffusion checkpoint) counts the training tunes' joint
(tonic, mode, style, density): free generation draws each piece's context from it, so the pieces have the keys,
modes, styles and densities of the training tunes in their proportions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from melodiff.errors import MelodiffError
from melodiff.music.keys import melody_key
from melodiff.music.melody import Melody

POSITION_CLASSES = 8  # chunks before / after a position: 0..6 exactly, 7 = "7 or more"
MODES = ("major", "minor")
MAX_DENSITY = 16  # note onsets per bar, classes 1..16
TUNE_FIELDS = ("tonic", "minor", "style", "density")  # the columns of a tune context (and of a table row, + count)
ArrayLike = TypeVar("ArrayLike")  # numpy array or torch tensor


def position_classes(start: ArrayLike, end: ArrayLike) -> tuple[ArrayLike, ArrayLike]:
    """Chunks before and after each position (numpy arrays or torch tensors) -> their classes (clipped to
    POSITION_CLASSES - 1)."""
    top = POSITION_CLASSES - 1
    return start.clip(max=top), end.clip(max=top)


def density_class(notes_per_bar: float) -> int:
    """Note onsets per bar -> class 0..MAX_DENSITY - 1 (rounded, clipped to 1..MAX_DENSITY)."""
    return int(np.clip(round(notes_per_bar), 1, MAX_DENSITY)) - 1


@dataclass(frozen=True)
class TuneContexts:
    """Per melody: ``tonic`` pitch class (0 = C; 0 for a melody without notes), ``minor`` 0/1, ``style`` index into
    ``styles``, ``density`` class (density_class)."""

    tonic: np.ndarray
    minor: np.ndarray
    style: np.ndarray
    density: np.ndarray
    styles: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.tonic)

    def arrays(self) -> dict[str, np.ndarray]:
        return {"tonic": self.tonic, "minor": self.minor, "style": self.style, "density": self.density}


def describe_tunes(melodies: Sequence[Melody], sources: Sequence[str]) -> TuneContexts:
    """The contexts of ``melodies`` (each from the collection named in ``sources``)."""
    styles = tuple(sorted(set(sources)))
    known = np.array([melody_context(m) for m in melodies], dtype=np.int64).reshape(-1, 3)
    return TuneContexts(known[:, 0], known[:, 1], np.array([styles.index(s) for s in sources], np.int64),
                        known[:, 2], styles)


def melody_context(melody: Melody) -> tuple[int, int, int]:
    """What a melody itself says of its context: (tonic pitch class, minor 0/1, density class); a melody without
    notes counts as C major."""
    tonic, minor = melody_key(melody) or (0, False)
    return tonic, int(minor), density_class(melody.notes_per_bar)


def context_table(contexts: TuneContexts, rows: np.ndarray) -> dict:
    """{"styles": [...], "rows": [[tonic, minor, style, density, count], ...]} of the melodies selected by ``rows``
    (a bool mask, e.g. the train split): what a model's free generation draws from."""
    counts = Counter(zip(contexts.tonic[rows].tolist(), contexts.minor[rows].tolist(),
                         contexts.style[rows].tolist(), contexts.density[rows].tolist(), strict=True))
    return {"styles": list(contexts.styles), "rows": [[*key, n] for key, n in sorted(counts.items())]}


def check_table(table: dict) -> dict:
    """A context table read from a checkpoint, validated (MelodiffError if malformed)."""
    try:
        styles, rows = table["styles"], table["rows"]
        ok = (isinstance(styles, list) and all(isinstance(s, str) for s in styles) and isinstance(rows, list)
              and rows and all(len(r) == 5 and all(isinstance(v, int) for v in r) for r in rows)
              and all(0 <= r[0] < 12 and r[1] in (0, 1) and 0 <= r[2] < len(styles) and 0 <= r[3] < MAX_DENSITY
                      and r[4] > 0 for r in rows))
    except (KeyError, TypeError):
        ok = False
    if not ok:
        raise MelodiffError("the diffusion checkpoint's context table is malformed")
    return table


def draw_contexts(table: dict, num: int, seed: int, fixed: dict[str, int] | None = None) -> np.ndarray:
    """(num, 4) int64 rows (tonic, minor, style, density) drawn with ``seed`` in proportion to the table's counts.
    ``fixed`` (field -> value, fields as TUNE_FIELDS) draws from the training tunes that have those values (from all
    of them, if none has) and sets them."""
    rows = np.array(table["rows"], dtype=np.int64)
    fixed = fixed or {}
    match = np.ones(len(rows), dtype=bool)
    for name, value in fixed.items():
        match &= rows[:, TUNE_FIELDS.index(name)] == value
    if match.any():
        rows = rows[match]
    p = rows[:, 4] / rows[:, 4].sum()
    drawn = rows[np.random.default_rng(seed).choice(len(rows), size=num, p=p), :4]
    for name, value in fixed.items():
        drawn[:, TUNE_FIELDS.index(name)] = value
    return drawn


def style_index(styles: Sequence[str], name: str) -> int:
    """The index of the style called ``name`` (its collection, e.g. ``music21:oneills1850``, or the part after the
    colon, case-insensitively); MelodiffError listing the model's styles if it has none of that name."""
    wanted = name.strip().lower()
    for i, style in enumerate(styles):
        if wanted in (style.lower(), style.split(":", 1)[-1].lower()):
            return i
    known = ", ".join(s.split(":", 1)[-1] for s in styles)
    raise MelodiffError(f"unknown style {name!r}: this model knows {known}")
