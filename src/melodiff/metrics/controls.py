"""Are controls obeyed? (``melodiff evaluate --tasks controls``; music/controls.py holds the controls.)

- key: the share of pieces whose Krumhansl-Kessler key (music/keys.py) is the one asked for;
- range: the share of notes inside the range;
- density: the share of pieces whose note onsets per bar lie within ±20 % of the request, and the mean relative
  error;
- style: a nearest-collection classifier — one-vs-rest logistic regressions on the 8-bar phrase features of the
  structure statistics (metrics/structure.py), fitted on the training tunes of each collection, equal numbers per
  collection — and the share of a row's phrases it assigns to the style asked for (chance: 1 / styles). Its accuracy
  on the held-out test tunes is the ceiling it sets. Its melodies share one bar length (one model's family: 4/4, or
  3/4 and 6/8 together, whose phrase features have one length); a collection's meter is part of its style."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from melodiff.metrics.structure import _fit_logistic, phrase_features, phrases
from melodiff.music.keys import melody_key
from melodiff.music.melody import Melody
from melodiff.music.meter import family

DENSITY_TOLERANCE = 0.2


def key_accuracy(melodies: Sequence[Melody], keys: Sequence[tuple[int, bool]], tonic_only: bool = False) -> float:
    """Share of ``melodies`` whose found key (or only its tonic) is the corresponding one of ``keys``."""
    found = [melody_key(m) or (None, None) for m in melodies]
    return float(np.mean([f[0] == k[0] and (tonic_only or f[1] == bool(k[1]))
                          for f, k in zip(found, keys, strict=True)]))


def range_share(melodies: Sequence[Melody], low: int, high: int) -> float:
    """Share of all notes of ``melodies`` with a pitch in [low, high]."""
    pitches = np.array([n.pitch for m in melodies for n in m.to_notes()])
    return float(((pitches >= low) & (pitches <= high)).mean()) if len(pitches) else float("nan")


def density_obeyed(melodies: Sequence[Melody], targets: Sequence[float]) -> tuple[float, float]:
    """(share of pieces within ±DENSITY_TOLERANCE of their target, mean relative error)."""
    errors = np.array([abs(m.notes_per_bar - t) / t for m, t in zip(melodies, targets, strict=True)])
    return float((errors <= DENSITY_TOLERANCE).mean()), float(errors.mean())


def _bar_length(melodies: Sequence[Melody]) -> int:
    """The one bar length (steps) of the meters of ``melodies``; MelodiffError if they do not share one."""
    return family(sorted({m.meter.name for m in melodies}))


class StyleClassifier:
    """One-vs-rest logistic regressions telling the collections apart by their 8-bar phrases (bars of each melody's
    meter); ``melodies`` and those it predicts share one bar length (MelodiffError otherwise)."""

    def __init__(self, melodies: Sequence[Melody], styles: Sequence[int], num_styles: int, per_style: int = 600,
                 seed: int = 0) -> None:
        self.steps_per_bar = _bar_length(melodies)
        rng = np.random.default_rng(seed)
        x, y = [], []
        for s in range(num_styles):
            mine = phrases([m for m, t in zip(melodies, styles, strict=True) if t == s])
            for i in rng.permutation(len(mine))[:per_style]:
                x.append(phrase_features(mine[i]))
                y.append(s)
        x, self.labels = np.stack(x), np.array(y)
        self.mean, self.std = x.mean(0), x.std(0) + 1e-6
        z = (x - self.mean) / self.std
        self.present = sorted(set(y))
        self.weights = np.stack([_fit_logistic(z, (self.labels == s).astype(float)) for s in self.present])

    def predict(self, melodies: Sequence[Melody]) -> tuple[np.ndarray, np.ndarray]:
        """(the style of each 8-bar phrase of ``melodies``, the index of the melody it came from): int64 (phrases,)
        each."""
        if melodies and _bar_length([*melodies]) != self.steps_per_bar:
            raise ValueError(f"melodies of {_bar_length([*melodies])}-step bars for a style classifier of "
                             f"{self.steps_per_bar}-step bars")
        x, owner = [], []
        for i, m in enumerate(melodies):
            for p in phrases([m]):
                x.append(phrase_features(p))
                owner.append(i)
        if not x:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        z = np.hstack([(np.stack(x) - self.mean) / self.std, np.ones((len(x), 1))])
        return np.array(self.present)[np.argmax(z @ self.weights.T, axis=1)], np.array(owner)

    def accuracy(self, melodies: Sequence[Melody], styles: Sequence[int]) -> float:
        """Share of the phrases of ``melodies`` assigned to their melody's style in ``styles``."""
        predicted, owner = self.predict(melodies)
        return float((predicted == np.asarray(styles)[owner]).mean()) if len(owner) else float("nan")
