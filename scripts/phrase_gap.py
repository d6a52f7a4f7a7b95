"""Where the phrase classifier's gap lies: within the 2-bar chunks the prior makes, or between them.

Tells phrases of 2 bars (one VAE chunk) and of 8 bars (four chunks) from the test melodies' (metrics/structure.py,
``phrase_classifier``) for: the test melodies through the VAE; the same latents shuffled across all test melodies
(each chunk real, their order and neighbours random: what a prior that knows single chunks perfectly but nothing of
the tune makes); and a model's pieces, sampled freely and unguided (the paper's protocol) and with the defaults.

    python scripts/phrase_gap.py --model default --data data/folk --num 400

prints one line per row: accuracy ± its standard error over the folds at 2 and 8 bars (0.5 = cannot tell).
docs/RESULTS.md, "Where the phrases go wrong", quotes it."""

from __future__ import annotations

import argparse

import torch

from melodiff.data.prepare import load_melodies
from melodiff.metrics.structure import phrase_classifier
from melodiff.music.melody import Melody
from melodiff.options import SamplingOptions
from melodiff.pipeline import Pipeline


def through_vae(pipe: Pipeline, melodies: list[Melody], generator: torch.Generator, shuffle: bool) -> list[Melody]:
    """The melodies encoded and decoded again, each in its own key (as evaluate's "Test data through the VAE" row;
    a key-normalised model's latents are in C); ``shuffle``: their chunk latents first permuted across all of them,
    each melody's place decoded in that melody's key."""
    latents = [pipe.encode(m, generator) for m in melodies]
    flat = torch.cat(latents)
    if shuffle:
        flat = flat[torch.randperm(len(flat), generator=generator)]
    parts = flat.split([len(x) for x in latents])
    return [pipe.decode(x[None], generator=generator, tonics=[int(pipe.tune(m)[0])])[0]
            for x, m in zip(parts, melodies, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--data", required=True, help="the prepared dataset (its test split is the reference)")
    parser.add_argument("--num", type=int, default=400, help="pieces per generated row (default 400)")
    parser.add_argument("--bars", type=int, default=32, help="bars per generated piece (default 32)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    pipe = Pipeline.from_pretrained(args.model)
    test, _ = load_melodies(args.data, "test", (pipe.meter.name,))
    generator = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        rows = {"test melodies through the VAE": through_vae(pipe, test, generator, shuffle=False),
                "their chunks shuffled across melodies": through_vae(pipe, test, generator, shuffle=True),
                "generated, free and unguided": pipe.generate(args.bars, args.num, args.seed, form="none",
                                                              options=SamplingOptions(guidance=0, cadence=0)),
                "generated, defaults": pipe.generate(args.bars, args.num, args.seed, form="auto")}
    for label, melodies in rows.items():
        cells = []
        for bars in (2, 8):
            c = phrase_classifier(test, melodies, seed=args.seed, bars=bars)
            cells.append(f"{bars} bars {c['accuracy']:.3f} ± {c['accuracy_se']:.3f}")
        print(f"{label:40s} {'   '.join(cells)}", flush=True)


if __name__ == "__main__":
    main()
