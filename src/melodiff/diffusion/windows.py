"""The window plan, in one place: how a latent sequence longer than the denoiser's window is made, and which windows
of test melodies the evaluation infills.

A sequence of ``num_chunks`` latents is made window by window (docs/PAPER.md §4: the model sees ``window`` latents at
once): each next window starts ``hop = window // 2`` latents after the previous one, overlaps it by the rest and is
infilled from it; the last window ends where the sequence ends. A window has known latents when it overlaps one made
before or the caller's kept latents (``mask``, 1 = keep, diffusion/infill.py); only those are resampled (RePaint).
A window whose latents are all known already is not sampled at all."""

from __future__ import annotations

from dataclasses import dataclass

import torch


def hop(window: int) -> int:
    """Latents between the starts of consecutive windows: half a window (at least 1)."""
    return max(window // 2, 1)


def sliding_starts(length: int, window: int) -> range:
    """Starts of the windows that fit wholly inside ``length`` latents, ``hop(window)`` apart (none if too short)."""
    return range(0, length - window + 1, hop(window))


@dataclass(frozen=True)
class Window:
    start: int
    end: int
    known: bool  # has latents kept by the caller or made by an earlier window

    @property
    def span(self) -> slice:
        return slice(self.start, self.end)


def plan_windows(num_chunks: int, window: int, mask: torch.Tensor | None = None) -> list[Window]:
    """The windows that make a sequence of ``num_chunks`` latents, in order, leaving out those with nothing to make.
    ``mask`` (num_chunks,): 1 = kept."""
    starts = [0] if num_chunks <= window else [*range(0, num_chunks - window, hop(window)), num_chunks - window]
    kept = torch.zeros(num_chunks) if mask is None else mask.reshape(-1).to(torch.float32)
    made = torch.zeros(num_chunks)
    plan = []
    for start in starts:
        end = min(start + window, num_chunks)
        known = kept[start:end] + made[start:end]
        if (known > 0).all():
            continue  # nothing to make here: a long piece costs only the windows around its gaps
        plan.append(Window(start, end, bool(known.any())))
        made[start:end] = 1
    return plan
