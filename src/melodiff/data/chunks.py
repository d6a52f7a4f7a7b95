"""2-bar chunk arrays for VAE training and encoding, and random transposition (docs/PAPER.md §1-2)."""

from __future__ import annotations

import numpy as np
import torch

from melodiff.music.melody import NUM_CLASSES, Melody, is_rest_chunk


def melody_chunks(melodies: list[Melody]) -> list[np.ndarray]:
    """Each melody padded to whole 2-bar chunks of its meter: a list of int64 arrays (num_chunks, chunk_steps)."""
    return [m.padded().chunks() for m in melodies]


def training_chunks(melodies: list[Melody], steps: int = 32) -> np.ndarray:
    """All non-rest chunks of ``melodies`` (all in meters of chunks of ``steps``), (N, steps) int64 — the VAE's
    training examples."""
    parts = melody_chunks(melodies)
    if not parts:
        return np.zeros((0, steps), dtype=np.int64)
    chunks = np.concatenate(parts)
    return chunks[~is_rest_chunk(chunks)]


def transpose_batch(tokens: torch.Tensor, max_semitones: int, generator: torch.Generator) -> torch.Tensor:
    """tokens (B, T) -> each row shifted by a random -max..+max semitones; a row whose shift would leave the
    pitch range 21..108 is left untransposed."""
    if max_semitones <= 0:
        return tokens
    shifts = torch.randint(-max_semitones, max_semitones + 1, (tokens.shape[0], 1), generator=generator)
    notes = tokens >= 2
    moved = torch.where(notes, tokens + shifts, tokens)
    ok = ((moved >= 2) | ~notes).all(1, keepdim=True) & ((moved < NUM_CLASSES) | ~notes).all(1, keepdim=True)
    return torch.where(ok, moved, tokens)
