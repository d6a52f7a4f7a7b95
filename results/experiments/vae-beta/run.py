"""Short VAE runs of the `cpu` preset with another max beta / free bits, scored on 1,500 test chunks.

Run from the repository root after `melodiff prepare music21:folk --out data/folk`:
    python results/experiments/vae-beta/run.py b005 0.05 0 1000 >> results/experiments/vae-beta/results.jsonl
(name, max beta, free bits, steps); prints one JSON line: the name and `evaluate_vae`'s numbers."""
import json, sys, time
from dataclasses import replace
import numpy as np, torch
from melodiff.vae import config as C
from melodiff.vae.train import train_vae, load_vae, evaluate_vae
from melodiff.data.prepare import load_melodies
from melodiff.data.chunks import training_chunks

name, beta, free_bits, steps = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
m, t = C.PRESETS["cpu"]
C.PRESETS[name] = (m, replace(t, max_beta=beta, free_bits=free_bits))
t0 = time.time()
train_vae("data/folk", f"runs/vae-beta/{name}", name, steps=steps, progress=False)
elapsed = time.time() - t0
mel, _ = load_melodies("data/folk", "test")
chunks = training_chunks(mel)
rng = np.random.default_rng(0)
chunks = chunks[rng.choice(len(chunks), min(1500, len(chunks)), replace=False)]
r = evaluate_vae(load_vae(f"runs/vae-beta/{name}"), chunks)
r["train_seconds"] = elapsed
print(json.dumps({"name": name, "result": r}))
