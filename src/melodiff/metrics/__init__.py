"""Evaluation metrics (docs/PAPER.md §7): framewise self-similarity, latent FD / MMD, melody statistics; each
melody's bars are those of its own meter (melody.meter)."""

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
from melodiff.metrics.structure import BEAT_CLASSES, beat_profile, by_meter

__all__ = [
    "BEAT_CLASSES",
    "DESCRIPTIVE",
    "OAStats",
    "beat_profile",
    "bootstrap_standard_errors",
    "by_meter",
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
