"""Does a melody have the form of a tune? Structure statistics with bootstrap errors, and a classifier two-sample
test on 8-bar phrases, for `melodiff evaluate` (what the paper's framewise metric does not see; docs/RESULTS.md).

Bars are bars of each melody's own meter (``melody.steps_per_bar``: 16 steps in 4/4, 12 in 3/4 and 6/8), so a
2-bar cell is 32 steps in 4/4 and 24 in 3/4 and 6/8, an 8-bar segment 128 or 96 steps. A set may mix meters; the
statistics then pool melodies of different meters, so a comparison per meter (the issue's target) scores each
meter's melodies apart (``by_meter``). The phrase classifier compares melodies of one meter only.

Structure statistics of a set of melodies (``structure_statistics``; counts pool the melodies):

- ``repeated_{2,4,8}bar``: of all aligned cells of 2, 4 or 8 bars with a note onset (cells start at bar 0, and a
  trailing partial cell is ignored), the share whose events equal those of an earlier cell of the same melody.
- ``key_stability``: the share of aligned 8-bar segments (with notes) whose own key is the key of the whole melody;
  keys by the Krumhansl-Kessler profiles (``find_key``: the best correlated of 24 major and minor keys with the
  duration-weighted pitch-class profile).
- ``pitch_range``: mean over melodies of max − min pitch (semitones).
- ``rest_fraction``: share of steps during which no note sounds. ``notes_per_bar``: note onsets per bar.
- ``interval_distance``: total variation distance between the histogram of melodic intervals (consecutive notes,
  clipped to ±12 semitones) of the set and of a reference set (the test melodies).
- ``tonic_ending``: share of melodies whose last note is the tonic of their key.
- ``onsets_downbeat``, ``onsets_beat``, ``onsets_offbeat``, ``onsets_sixteenth`` (the beat profile, ``ONSETS``):
  the share of all note onsets whose position in the bar (onset step mod ``steps_per_bar``) is of that class of
  the melody's meter (``beat_classes``): the downbeat (step 0); another beat of ``Meter.beats`` (4/4: steps 4, 8,
  12; 3/4: 4, 8; 6/8: 6); an off-beat eighth (any other even step: 4/4 2, 6, 10, 14; 3/4 2, 6, 10; 6/8 2, 4, 8,
  10); a sixteenth (an odd step). The four shares of a set with notes sum to 1.

Each comes with a bootstrap standard error (melodies resampled). ``phrase_classifier`` holds out real and generated
8-bar phrases and reports how well a fixed logistic-regression classifier on musical features (interval, duration,
pitch-class and onset-position histograms, range, rests, note count) tells them apart: held-out accuracy and AUC,
0.5 = indistinguishable."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from melodiff.music.keys import find_key
from melodiff.music.melody import Melody
from melodiff.music.meter import Meter

MAX_INTERVAL = 12  # intervals beyond an octave share the outermost bins
MAX_DURATION = 16  # steps: longer notes share the last bin of the phrase features' duration histogram
PHRASE_BARS = 8
BEAT_CLASSES = ("downbeat", "beat", "offbeat", "sixteenth")  # positions in a bar, see beat_classes
ONSETS = tuple(f"onsets_{c}" for c in BEAT_CLASSES)
STRUCTURE = ("repeated_2bar", "repeated_4bar", "repeated_8bar", "key_stability", "pitch_range", "rest_fraction",
             "notes_per_bar", "interval_distance", "tonic_ending", *ONSETS)


def by_meter(melodies: Iterable[Melody]) -> dict[str, list[Melody]]:
    """``melodies`` grouped by the name of their meter ("4/4", "3/4", "6/8"), in order of first appearance, each
    group in the given order: the sets a per-meter comparison scores apart."""
    groups: dict[str, list[Melody]] = {}
    for melody in melodies:
        groups.setdefault(melody.meter.name, []).append(melody)
    return groups


def one_meter(*sets: Iterable[Melody]) -> Meter | None:
    """The one meter of all melodies of ``sets`` (None without melodies); ValueError if they mix meters."""
    meters = {m.meter for melodies in sets for m in melodies}
    if len(meters) > 1:
        raise ValueError(f"melodies of meters {', '.join(sorted(m.name for m in meters))} compared together: "
                         "compare the melodies of one meter at a time (by_meter)")
    return meters.pop() if meters else None


def beat_classes(meter: Meter) -> np.ndarray:
    """(meter.steps_per_bar,) int64: the BEAT_CLASSES index of each step of a bar of ``meter`` — 0 the downbeat
    (``meter.beats[0]``), 1 its other beats, 2 the other even steps (off-beat eighths), 3 the odd steps
    (sixteenths)."""
    classes = np.where(np.arange(meter.steps_per_bar) % 2, 3, 2)
    classes[list(meter.beats[1:])] = 1
    classes[meter.beats[0]] = 0
    return classes


def onset_classes(melody: Melody) -> np.ndarray:
    """(len(BEAT_CLASSES),) int64: the melody's note onsets on each class of position in its meter's bar."""
    onsets = np.flatnonzero(melody.ids >= 2)
    return np.bincount(beat_classes(melody.meter)[onsets % melody.steps_per_bar], minlength=len(BEAT_CLASSES))


def beat_profile(melodies: Iterable[Melody]) -> dict[str, float]:
    """The beat profile of ``melodies``: BEAT_CLASSES name -> share of all their note onsets on that class of
    position, each melody's in its own meter (:func:`beat_classes`); the shares sum to 1, NaN without notes. The
    ``onsets_*`` entries of :func:`structure_statistics`; a per-meter profile takes one meter's melodies
    (:func:`by_meter`)."""
    counts = sum((onset_classes(m) for m in melodies), np.zeros(len(BEAT_CLASSES), dtype=np.int64))
    total = counts.sum()
    return {c: float(n / total) if total else float("nan") for c, n in zip(BEAT_CLASSES, counts, strict=True)}


def repeated_cells(melody: Melody, bars: int) -> tuple[int, int]:
    """(aligned cells of ``bars`` bars of the melody's meter with a note onset, how many of them repeat an earlier
    cell exactly)."""
    steps = bars * melody.steps_per_bar
    cells = melody.ids[:len(melody) // steps * steps].reshape(-1, steps)
    seen: set[bytes] = set()
    total = repeated = 0
    for cell in cells:
        if not (cell >= 2).any():
            continue
        total += 1
        key = cell.tobytes()
        repeated += key in seen
        seen.add(key)
    return total, repeated


def interval_histogram(pitches: np.ndarray) -> np.ndarray:
    """(2 MAX_INTERVAL + 1,) counts of the melodic intervals between consecutive notes, clipped to ±MAX_INTERVAL."""
    steps = np.clip(np.diff(np.asarray(pitches, dtype=np.int64)), -MAX_INTERVAL, MAX_INTERVAL) + MAX_INTERVAL
    return np.bincount(steps, minlength=2 * MAX_INTERVAL + 1).astype(np.float64)


@dataclass(frozen=True)
class _Parts:
    """Per-melody numerators and denominators, so that a bootstrap can pool any resample of melodies."""

    cells: np.ndarray  # (n, 3, 2): (cells, repeated) for 2, 4, 8 bars
    segments: np.ndarray  # (n, 2): (8-bar segments with notes, of them in the melody's key)
    pitch_range: np.ndarray  # (n,) NaN without notes
    steps: np.ndarray  # (n,)
    bars: np.ndarray  # (n,) steps / steps_per_bar of the melody's meter
    rest_steps: np.ndarray  # (n,)
    notes: np.ndarray  # (n,)
    intervals: np.ndarray  # (n, 25)
    tonic_ending: np.ndarray  # (n,) 1 / 0, NaN without notes
    onsets: np.ndarray  # (n, len(BEAT_CLASSES)) note onsets on each class of position in the bar


def _parts(melodies: Sequence[Melody]) -> _Parts:
    cells, segments, ranges, steps, bars, rests, notes, intervals, tonic, onsets = ([] for _ in range(10))
    for melody in melodies:
        segment_steps = PHRASE_BARS * melody.steps_per_bar
        melody_notes = melody.to_notes()
        pitches = np.array([n.pitch for n in melody_notes], dtype=np.int64)
        durations = np.array([n.end - n.start for n in melody_notes], dtype=np.int64)
        starts = np.array([n.start for n in melody_notes], dtype=np.int64)
        key = find_key(pitches, durations)
        in_key = total = 0
        for first in range(0, len(melody) // segment_steps * segment_steps, segment_steps):
            inside = (starts >= first) & (starts < first + segment_steps)
            if inside.any():
                total += 1
                in_key += find_key(pitches[inside], durations[inside]) == key
        cells.append([repeated_cells(melody, bars) for bars in (2, 4, 8)])
        segments.append((total, in_key))
        ranges.append(pitches.max() - pitches.min() if len(pitches) else np.nan)
        steps.append(len(melody))
        bars.append(melody.num_bars)
        rests.append(len(melody) - durations.sum())
        notes.append(len(pitches))
        intervals.append(interval_histogram(pitches))
        tonic.append(float(pitches[-1] % 12 == key[0]) if key is not None else np.nan)
        onsets.append(onset_classes(melody))

    def array(values: list, *shape: int) -> np.ndarray:
        return np.array(values, dtype=np.float64).reshape(-1, *shape)

    return _Parts(array(cells, 3, 2), array(segments, 2), array(ranges), array(steps), array(bars), array(rests),
                  array(notes), array(intervals, 2 * MAX_INTERVAL + 1), array(tonic),
                  array(onsets, len(BEAT_CLASSES)))


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def _nanmean(values: np.ndarray) -> np.ndarray:
    """Mean of each row over its non-NaN entries (NaN for a row without any)."""
    counts = (~np.isnan(values)).sum(-1)
    return _ratio(np.nansum(values, -1), counts)


def _tv(histograms: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Total variation distance of each row of (..., bins) histograms to ``reference`` (NaN where either is empty)."""
    totals = histograms.sum(-1, keepdims=True)
    if reference.sum() == 0:
        return np.full(histograms.shape[:-1], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals[..., 0] > 0, 0.5 * np.abs(histograms / totals - reference / reference.sum()).sum(-1),
                        np.nan)


def _statistics(parts: _Parts, index: np.ndarray, reference_intervals: np.ndarray) -> dict[str, np.ndarray]:
    """Every statistic for each row of ``index`` (resamples, melodies): name -> (resamples,)."""
    cells = parts.cells[index]  # (B, n, 3, 2)
    segments = parts.segments[index]
    out = {f"repeated_{bars}bar": _ratio(cells[..., k, 1].sum(1), cells[..., k, 0].sum(1))
           for k, bars in enumerate((2, 4, 8))}
    out["key_stability"] = _ratio(segments[..., 1].sum(1), segments[..., 0].sum(1))
    out["pitch_range"] = _nanmean(parts.pitch_range[index])
    out["tonic_ending"] = _nanmean(parts.tonic_ending[index])
    steps = parts.steps[index].sum(1)
    out["rest_fraction"] = _ratio(parts.rest_steps[index].sum(1), steps)
    notes = parts.notes[index].sum(1)
    out["notes_per_bar"] = _ratio(notes, parts.bars[index].sum(1))
    out["interval_distance"] = _tv(parts.intervals[index].sum(1), reference_intervals)
    onsets = parts.onsets[index].sum(1)  # (B, classes)
    out.update({name: _ratio(onsets[:, k], notes) for k, name in enumerate(ONSETS)})
    return out


def interval_reference(melodies: Sequence[Melody]) -> np.ndarray:
    """The pooled interval histogram of ``melodies``: a reference for :func:`structure_statistics`."""
    return _parts(melodies).intervals.sum(0)


def structure_statistics(melodies: Sequence[Melody], reference: Sequence[Melody] | np.ndarray | None = None,
                         resamples: int = 200, seed: int = 0) -> dict[str, tuple[float, float]]:
    """name -> (value, bootstrap standard error) for every name in STRUCTURE (NaN where there is no data);
    ``interval_distance`` is measured against ``reference``: melodies, or their :func:`interval_reference` (NaN
    without one)."""
    parts = _parts(melodies)
    if reference is None:
        reference_intervals = np.zeros(2 * MAX_INTERVAL + 1)
    elif isinstance(reference, np.ndarray):
        reference_intervals = reference
    else:
        reference_intervals = interval_reference(reference)
    n = len(melodies)
    whole = _statistics(parts, np.arange(n)[None], reference_intervals)
    rng = np.random.default_rng(seed)
    boot = _statistics(parts, rng.integers(0, max(n, 1), size=(resamples, n)), reference_intervals)
    return {name: (float(whole[name][0]), _std(boot[name]) if n > 1 else float("nan")) for name in STRUCTURE}


def _std(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.std()) if len(finite) > 1 else float("nan")


# ---- the classifier two-sample test ----------------------------------------------------------------------------------
def phrases(melodies: Sequence[Melody], bars: int = PHRASE_BARS) -> list[Melody]:
    """The aligned ``bars``-bar phrases (bars of each melody's meter; in that meter) of the melodies that have at
    least two notes."""
    out = []
    for melody in melodies:
        steps = bars * melody.steps_per_bar
        for first in range(0, len(melody) - steps + 1, steps):
            phrase = melody.with_ids(melody.ids[first:first + steps])
            if phrase.num_notes >= 2:
                out.append(phrase)
    return out


def phrase_features(phrase: Melody) -> np.ndarray:
    """The feature vector of one phrase, float64 (25 + MAX_DURATION + 12 + steps_per_bar + 3,): interval (±12
    semitones), duration (1..MAX_DURATION steps) and pitch-class histograms, the histogram of onset positions in the
    bar (one bin per step of a bar of the phrase's meter: 16 in 4/4, 12 in 3/4 and 6/8), each normalised; pitch
    range / 24, rest share, onsets per step (notes per bar / steps per bar). Phrases of one bar length have vectors
    of one length (72 in 4/4, 68 in 3/4 and 6/8)."""
    notes = phrase.to_notes()
    pitches = np.array([n.pitch for n in notes])
    durations = np.clip(np.array([n.end - n.start for n in notes]), 1, MAX_DURATION) - 1
    onsets = np.array([n.start % phrase.steps_per_bar for n in notes])

    def normalised(counts: np.ndarray) -> np.ndarray:
        return counts / max(counts.sum(), 1)

    sounding = sum(n.end - n.start for n in notes)
    return np.concatenate([
        normalised(interval_histogram(pitches)), normalised(np.bincount(durations, minlength=MAX_DURATION)),
        normalised(np.bincount(pitches % 12, minlength=12)),
        normalised(np.bincount(onsets, minlength=phrase.steps_per_bar)),
        [(pitches.max() - pitches.min()) / 24, 1 - sounding / len(phrase), len(notes) / len(phrase)]])


def _fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iterations: int = 300) -> np.ndarray:
    """Weights (features + 1,) of an L2-regularised logistic regression (Newton's method; x standardised)."""
    x1 = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x1.shape[1])
    penalty = l2 * len(x) * np.eye(len(w))
    penalty[-1, -1] = 0.0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(x1 @ w, -30, 30)))
        grad = x1.T @ (p - y) + penalty @ w
        hess = (x1 * (p * (1 - p))[:, None]).T @ x1 + penalty + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive scores above a random negative (ties count ½)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    positives = labels.sum()
    negatives = len(labels) - positives
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def phrase_classifier(real: Sequence[Melody], generated: Sequence[Melody], folds: int = 5, max_phrases: int = 2000,
                      seed: int = 0, bars: int = PHRASE_BARS) -> dict[str, float]:
    """Held-out accuracy and AUC (with standard errors over the folds) of telling ``generated`` phrases of ``bars``
    bars (8: the issue's phrases; 2: single VAE chunks) from ``real`` ones; equal numbers of each (at most
    ``max_phrases``), ``folds``-fold cross-validation. 0.5 = the classifier cannot tell them apart. NaN with fewer
    than ``folds`` phrases on either side. Both sets must be of one meter (ValueError otherwise): compare meter by
    meter (:func:`by_meter`)."""
    one_meter(real, generated)
    rng = np.random.default_rng(seed)
    a, b = phrases(real, bars), phrases(generated, bars)
    n = min(len(a), len(b), max_phrases)
    if n < folds:
        return {"accuracy": float("nan"), "accuracy_se": float("nan"), "auc": float("nan"), "auc_se": float("nan"),
                "phrases": float(n)}
    chosen = [a[i] for i in rng.choice(len(a), n, replace=False)] + [b[i] for i in rng.choice(len(b), n,
                                                                                                 replace=False)]
    x = np.stack([phrase_features(p) for p in chosen])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    fold = np.concatenate([rng.permutation(n) % folds] * 2)  # stratified: each fold holds both sides equally
    accuracies, aucs = [], []
    for k in range(folds):
        train, test = fold != k, fold == k
        mean, std = x[train].mean(0), x[train].std(0) + 1e-6
        w = _fit_logistic((x[train] - mean) / std, y[train])
        scores = np.hstack([(x[test] - mean) / std, np.ones((test.sum(), 1))]) @ w
        accuracies.append(float(((scores > 0) == (y[test] == 1)).mean()))
        aucs.append(auc(scores, y[test]))
    return {"accuracy": float(np.mean(accuracies)), "accuracy_se": float(np.std(accuracies) / np.sqrt(folds)),
            "auc": float(np.mean(aucs)), "auc_se": float(np.std(aucs) / np.sqrt(folds)), "phrases": float(n)}


def self_similarity(melody: Melody) -> np.ndarray:
    """(bars, bars) share of equal event ids between every two whole bars of the melody's meter (1 = identical
    bars)."""
    steps = melody.steps_per_bar
    bars = melody.ids[:len(melody) // steps * steps].reshape(-1, steps)
    return (bars[:, None, :] == bars[None, :, :]).mean(-1)
