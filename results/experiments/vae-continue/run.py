"""Continue the shipped VAE (at step 8,000 when these runs were made; the one shipped now is at 22,000) for more
steps with other training settings; score 1,500 test chunks and 1,500 training chunks (the same ones for every
run, `score.py`'s `fixed_chunks`).

Run from the repository root after `melodiff prepare music21:folk --out data/folk`:
    python results/experiments/vae-continue/run.py NAME STEPS [SECTION.FIELD=VALUE ...] >> results/experiments/vae-continue/results.jsonl
STEPS counts from 0 as `train-vae --steps` does (so > the shipped VAE's step); NAME "shipped" with STEPS 0 only scores the shipped VAE.
Prints one JSON line: the name, the settings and `evaluate_vae`'s numbers for both splits."""
import json, sys, time
from importlib.resources import files
from melodiff.vae.train import train_vae, load_vae, evaluate_vae
from score import fixed_chunks  # this folder's score.py: the same chunks

name, steps, settings = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
shipped = str(files("melodiff") / "models" / "default" / "vae")
t0 = time.time()
folder = shipped
if steps:
    folder = f"runs/vae-continue/{name}"
    train_vae("data/folk", folder, "cpu", steps=steps, init=shipped, settings=settings, progress=False)
elapsed = time.time() - t0
model = load_vae(folder)
result = {"name": name, "steps": steps, "settings": settings, "train_seconds": elapsed}
for split in ("test", "train"):
    result[split] = evaluate_vae(model, fixed_chunks(split))
print(json.dumps(result), flush=True)
