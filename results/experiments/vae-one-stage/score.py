"""Score VAE checkpoints on 1,500 fixed chunks of the validation split (seed 0), one JSON line per folder; the
learning curve of the one-stage run is scored on validation, not test, so that the test split only gives the final
number.
    python results/experiments/vae-one-stage/score.py runs/onestage/snap/2000 ... \
        >> results/experiments/vae-one-stage/curve.jsonl"""
import json
import sys

import numpy as np

from melodiff.data.chunks import training_chunks
from melodiff.data.prepare import load_melodies
from melodiff.vae.train import evaluate_vae, load_vae

if __name__ == "__main__":
    chunks = training_chunks(load_melodies("data/folk", "validation")[0])
    chunks = chunks[np.random.default_rng(0).choice(len(chunks), min(1500, len(chunks)), replace=False)]
    for folder in sys.argv[1:]:
        meta = json.load(open(f"{folder}/config.json"))
        scores = evaluate_vae(load_vae(folder), chunks)
        print(json.dumps({"folder": folder, "step": meta["step"], "validation": scores}), flush=True)
