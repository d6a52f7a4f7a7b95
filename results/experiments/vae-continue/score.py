"""Score saved VAE checkpoints on the same 1,500 test chunks as run.py (seed 0); one JSON line per folder.
    python results/experiments/vae-continue/score.py runs/vae-long-snap/10000 ... >> results/experiments/vae-continue/curve.jsonl"""
import json, sys
import numpy as np
from melodiff.vae.train import load_vae, evaluate_vae
from melodiff.data.prepare import load_melodies
from melodiff.data.chunks import training_chunks


def fixed_chunks(split: str, num: int = 1500) -> np.ndarray:
    """The same ``num`` chunks of ``split`` for every run (seed 0)."""
    chunks = training_chunks(load_melodies("data/folk", split)[0])
    return chunks[np.random.default_rng(0).choice(len(chunks), min(num, len(chunks)), replace=False)]


if __name__ == "__main__":
    chunks = fixed_chunks("test")
    for folder in sys.argv[1:]:
        step = json.load(open(f"{folder}/config.json"))["step"]
        print(json.dumps({"folder": folder, "step": step, "test": evaluate_vae(load_vae(folder), chunks)}), flush=True)
