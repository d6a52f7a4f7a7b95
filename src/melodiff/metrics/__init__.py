"""Evaluation metrics (docs/PAPER.md §7): framewise self-similarity, latent FD / MMD, melody statistics."""

from melodiff.metrics.framewise import (
    OAStats,
    bootstrap_standard_errors,
    consistency_variance,
    frame_overlaps,
    framewise_scores,
    oa_statistics,
    overlapping_area,
)
from melodiff.metrics.latent import frechet_distance, mmd_rbf
from melodiff.metrics.stats import (
    DESCRIPTIVE,
    histogram_distance,
    melody_statistics,
    per_melody_statistics,
    pitch_class_histogram,
    scale_consistency,
)

__all__ = [
    "DESCRIPTIVE",
    "OAStats",
    "bootstrap_standard_errors",
    "consistency_variance",
    "frame_overlaps",
    "framewise_scores",
    "frechet_distance",
    "histogram_distance",
    "melody_statistics",
    "mmd_rbf",
    "oa_statistics",
    "overlapping_area",
    "per_melody_statistics",
    "pitch_class_histogram",
    "scale_consistency",
]
