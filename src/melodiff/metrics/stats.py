"""Simple descriptive statistics of a set of melodies (sanity checks next to the PAPER.md §7 metrics).

All statistics pool the melodies: counts and fractions are totals over the set divided by totals over the set (so long
melodies weigh more), except ``pitch_range``, a mean over the melodies that have notes.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from melodiff.music.melody import NO_EVENT, STEPS_PER_BAR, Melody


def melody_statistics(melodies: Iterable[Melody]) -> dict[str, float]:
    """Statistics of ``melodies`` (steps are 16th notes, STEPS_PER_BAR = 16):

    - ``num_melodies``, ``num_notes``: counts.
    - ``notes_per_bar``: note onsets per bar (all notes / all bars).
    - ``pitch_mean``, ``pitch_std`` (population), MIDI pitch over all notes; ``pitch_min``, ``pitch_max``.
    - ``pitch_range``: mean over melodies with notes of max − min pitch, in semitones.
    - ``mean_duration``: mean note duration in steps.
    - ``rest_fraction``: fraction of steps during which no note sounds.
    - ``held_fraction``: fraction of steps on which a note is sustained past its onset step
      (rest_fraction + held_fraction + onset steps / all steps = 1).
    - ``no_event_fraction``: fraction of steps whose event id is NO_EVENT (held note or continued rest).

    Statistics without data (no notes, no steps) are NaN.
    """
    num_melodies = num_steps = num_no_event = 0
    pitches: list[int] = []
    durations: list[int] = []
    ranges: list[int] = []
    for melody in melodies:
        num_melodies += 1
        num_steps += len(melody)
        num_no_event += int((melody.ids == NO_EVENT).sum())
        notes = melody.to_notes()
        if notes:
            p = [n.pitch for n in notes]
            pitches.extend(p)
            durations.extend(n.end - n.start for n in notes)
            ranges.append(max(p) - min(p))

    nan = float("nan")
    pitch_arr = np.asarray(pitches, dtype=np.float64)
    sounding = float(sum(durations))

    def per_step(value: float) -> float:
        return value / num_steps if num_steps else nan

    has_notes = bool(pitches)
    return {
        "num_melodies": float(num_melodies),
        "num_notes": float(len(pitches)),
        "notes_per_bar": per_step(len(pitches) * STEPS_PER_BAR),
        "pitch_mean": float(pitch_arr.mean()) if has_notes else nan,
        "pitch_std": float(pitch_arr.std()) if has_notes else nan,
        "pitch_min": float(pitch_arr.min()) if has_notes else nan,
        "pitch_max": float(pitch_arr.max()) if has_notes else nan,
        "pitch_range": float(np.mean(ranges)) if has_notes else nan,
        "mean_duration": sounding / len(durations) if has_notes else nan,
        "rest_fraction": per_step(num_steps - sounding),
        "held_fraction": per_step(sounding - len(pitches)),
        "no_event_fraction": per_step(num_no_event),
    }
