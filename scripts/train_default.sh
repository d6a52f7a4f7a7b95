#!/usr/bin/env bash
# Train the default model from scratch on the music21 folk corpus, as shipped (docs/models/default.md).
# Every step resumes: rerun the script after a crash or a stop and it continues where it was.
# About 3 h on a 2-core CPU: 2 h 52 min of training (the guide: 6-9 min), 16 min of evaluation (times in
# docs/models/default.md). Usage:
#   scripts/train_default.sh [DATA_DIR] [RUNS_DIR] [MODEL_DIR]
# The 3/4 + 6/8 model (meters/triple) follows: its VAE starts from the 4/4 one; about 45 min more (docs/models/default.md).
set -euo pipefail
data=${1:-data/folk}
runs=${2:-runs}
model=${3:-models/default}
triple=${data}-triple

[ -f "$data/report.json" ] || melodiff prepare music21:folk --meters 4/4 --out "$data"
melodiff train-vae --data "$data" --out "$runs/vae" --preset cpu
melodiff evaluate-vae --vae "$runs/vae" --data "$data" --split test
[ -f "$runs/latents.npz" ] || melodiff encode --vae "$runs/vae" --data "$data" --out "$runs/latents.npz" \
  --sigma-threshold 0.9
melodiff train-diffusion --latents "$runs/latents.npz" --out "$runs/diffusion" --preset cpu
melodiff train-guide --latents "$runs/latents.npz" --data "$data" --diffusion "$runs/diffusion" --out "$runs/guide"
melodiff train-mdn --latents "$runs/latents.npz" --out "$runs/mdn" --preset cpu
melodiff bundle --vae "$runs/vae" --diffusion "$runs/diffusion" --guide "$runs/guide" --out "$model" --data "$data"
melodiff evaluate --model "$model" --data "$data" --mdn "$runs/mdn" --samples 1000 \
  --samplers dpm-solver:50 dpm-solver:20 dpm-solver:10 ddim:20 ddim:50 ddpm --out "$runs/evaluation"

# waltzes and jigs: one VAE for 3/4 and 6/8 (24-step chunks) fine-tuned from the 4/4 VAE (the shipped one was stopped
# at step 20,526 after its step-20,500 evaluation), one denoiser told the meter; stored in float16 (docs/DEVIATIONS.md)
[ -f "$triple/report.json" ] || melodiff prepare music21:folk --meters 3/4 6/8 --out "$triple"
melodiff train-vae --data "$triple" --out "$runs/triple/vae" --init "$runs/vae" --meters 3/4 6/8 --steps 20526
melodiff evaluate-vae --vae "$runs/triple/vae" --data "$triple" --split test
[ -f "$runs/triple/latents.npz" ] || melodiff encode --vae "$runs/triple/vae" --data "$triple" \
  --out "$runs/triple/latents.npz" --sigma-threshold 0.9
melodiff train-diffusion --latents "$runs/triple/latents.npz" --out "$runs/triple/diffusion" --preset cpu
melodiff bundle --vae "$runs/triple/vae" --diffusion "$runs/triple/diffusion" --out "$model/meters/triple" \
  --data "$triple" --half
for meter in 3/4 6/8; do
  melodiff evaluate --model "$model" --meter "$meter" --data "$triple" --samples 1000 --samplers dpm-solver:50 \
    --out "$runs/evaluation-${meter/\//-}"
done
