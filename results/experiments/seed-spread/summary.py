"""Print the DDIM 20 / DDIM 50 unconditional scores of every seed folder here and their means (README.md)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

HERE = Path(__file__).parent
CELLS = ("pitch_consistency", "pitch_variance", "duration_consistency", "duration_variance")
FOLDERS = {"two-stage": [HERE.parent / "vae-two-stage-model", *sorted(HERE.glob("two-stage-model-*"))],
           "one-stage": sorted(HERE.glob("one-stage-model-*"))}

for model, folders in FOLDERS.items():
    for label in ("Diffusion (ddim, 20 steps)", "Diffusion (ddim, 50 steps)"):
        table = []
        for folder in folders:
            results = json.loads((folder / "results.json").read_text())
            rows = [r for r in results["rows"] if r["task"] == "unconditional" and r["name"] == label]
            if rows:
                table.append([rows[0]["scores"][c] for c in CELLS])
                seed = results["settings"]["seed"]
                print(f"{model:9s} {label:28s} seed {seed}: " + " / ".join(f"{v:.3f}" for v in table[-1]))
        means = [statistics.mean(col) for col in zip(*table)]
        print(f"{model:9s} {label:28s} mean of {len(table)}: " + " / ".join(f"{v:.3f}" for v in means))
