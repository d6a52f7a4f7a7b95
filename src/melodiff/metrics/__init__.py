"""Evaluation metrics (PAPER.md §7): framewise self-similarity, latent FD / MMD, melody statistics."""

from melodiff.metrics.framewise import (
    OAStats,
    consistency_variance,
    frame_overlaps,
    oa_statistics,
    overlapping_area,
)
from melodiff.metrics.latent import frechet_distance, mmd_rbf
from melodiff.metrics.stats import melody_statistics

__all__ = [
    "OAStats",
    "consistency_variance",
    "frame_overlaps",
    "frechet_distance",
    "melody_statistics",
    "mmd_rbf",
    "oa_statistics",
    "overlapping_area",
]
