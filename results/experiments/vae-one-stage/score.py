"""Score VAE checkpoints on 1,500 fixed chunks of the validation split (seed 0), one JSON line per folder; the
learning curve of the one-stage run is scored on validation, not test, so that the test split only gives the final
number.
    python results/experiments/vae-one-stage/score.py runs/onestage/snap/2000 ... \
        >> results/experiments/vae-one-stage/curve.jsonl"""
import json
import sys
from pathlib import Path

from melodiff.vae.train import evaluate_vae, load_vae

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "vae-continue"))
from score import fixed_chunks  # vae-continue's chunk choice: the same 1,500-of-a-split rule

if __name__ == "__main__":
    chunks = fixed_chunks("validation")
    for folder in sys.argv[1:]:
        meta = json.load(open(f"{folder}/config.json"))
        scores = evaluate_vae(load_vae(folder), chunks)
        print(json.dumps({"folder": folder, "step": meta["step"], "validation": scores}), flush=True)
