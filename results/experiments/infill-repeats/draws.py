"""How much of an infilling score is the generator's chance? The shipped model infills the same 56 test windows
(32 bars, middle 16 regenerated, as `melodiff evaluate`) three times with different seeds, once per window each
time, and prints the raw μ_OA / σ²_OA of each draw against the training split's (the ground truth) and the real
middle halves'. Same windows, same model: every difference between the draws is sampling noise.
    python results/experiments/infill-repeats/draws.py [SAMPLER:STEPS ...]   (default ddim:20; about a minute)"""
import sys

import torch

from melodiff.data.prepare import load_melodies
from melodiff.diffusion.sampling import Sampler
from melodiff.evaluation import Evaluator
from melodiff.metrics.framewise import framewise_scores
from melodiff.music.melody import CHUNK_STEPS, Melody
from melodiff.pipeline import Pipeline, SamplingOptions


def show(name, melodies, ground_truth, region):
    stats, scores = framewise_scores(melodies, ground_truth, *region)
    print(f"{name:24s} pitch μ {stats['pitch'].mean:.4f} σ² {stats['pitch'].variance:.4f} | duration μ "
          f"{stats['duration'].mean:.4f} σ² {stats['duration'].variance:.4f} | C/V pitch "
          f"{scores['pitch_consistency']:.3f} {scores['pitch_variance']:.3f} duration "
          f"{scores['duration_consistency']:.3f} {scores['duration_variance']:.3f}", flush=True)


if __name__ == "__main__":
    pipe = Pipeline.from_pretrained("default")
    evaluator = Evaluator(pipe, load_melodies("data/folk", "train")[0], load_melodies("data/folk", "test")[0])
    gt = evaluator.ground_truth
    print(f"ground truth (train)     pitch μ {gt['pitch'].mean:.4f} σ² {gt['pitch'].variance:.4f} | duration μ "
          f"{gt['duration'].mean:.4f} σ² {gt['duration'].variance:.4f}")
    length = pipe.window_chunks
    q = length // 4
    windows = evaluator.test_windows(length)  # the windows `melodiff evaluate` infills
    region = (q * CHUNK_STEPS, (length - q) * CHUNK_STEPS)
    known = torch.stack([lat for _, lat in windows])
    mask = torch.ones(length)
    mask[q:length - q] = 0
    print(f"{len(windows)} windows")
    show("real middle halves", [Melody.from_chunks(c) for c, _ in windows], gt, region)
    for spec in sys.argv[1:] or ["ddim:20"]:
        sampler, steps = spec.split(":")
        options = SamplingOptions(sampler=Sampler(sampler), steps=int(steps))
        for seed in range(3):
            g = torch.Generator().manual_seed(seed + 1)
            x = pipe.sample_latents(length, len(known), options, g, known=known, mask=mask)
            show(f"{spec} draw {seed + 1}", pipe.decode(x, options, g), gt, region)
