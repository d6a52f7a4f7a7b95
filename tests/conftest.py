"""Shared test settings and fixtures.

Tiny models run fastest on one thread, and a multi-threaded torch spins badly when the cores are busy (a training
job beside the tests makes a 100-step DDPM run take seconds instead of milliseconds)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch

from melodiff.music.melody import FOUR_FOUR, Melody, Meter, Note

torch.set_num_threads(1)


def random_melody(seed: int, bars: int, meter: Meter = FOUR_FOUR) -> Melody:
    """A melody of exactly ``bars`` bars of ``meter``: notes of 1..8 steps with gaps of 0..3 steps, pitches
    55..79."""
    rng = np.random.default_rng(seed)
    total = bars * meter.steps_per_bar
    notes, t = [], 0
    while True:
        t += int(rng.integers(0, 4))
        end = min(t + int(rng.integers(1, 9)), total)
        if t >= end:
            break
        notes.append(Note(int(rng.integers(55, 80)), t, end))
        t = end
    return Melody.from_notes(notes, total, meter)


@pytest.fixture(scope="session")
def make_melody() -> Callable[[int, int], Melody]:
    """``make_melody(seed, bars)`` -> a random Melody of exactly ``bars`` bars."""
    return random_melody
