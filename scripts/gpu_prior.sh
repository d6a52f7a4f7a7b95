#!/usr/bin/env bash
# A larger diffusion prior, trained in one GPU session on latents encoded here (issue 18: the phrase classifier's gap is
# the prior's; docs/RESULTS.md, "Where the phrases go wrong"). Three steps; the middle one runs on the device machine,
# whose files come back at most 16 MiB each, so the weights travel in pieces.
#
# 1. here:  mkdir -p carried && cp runs/latents.npz carried/ && echo /carried/ >> .git/info/exclude
# 2. there: bash scripts/gpu_prior.sh train carried/latents.npz MINUTES [--set section.field=value ...]
#           (the device tool's run, carry ["carried"], timeout_s at least MINUTES + 3 minutes); it checks the GPU,
#           trains `--preset paper` (29.5 M parameters; windows of 16 latents, as the shipped model, unless --set
#           says otherwise) for MINUTES, and leaves in $OUT: config.json, log.csv and model.part.NN (the EMA
#           weights in float16, cut into 15 MiB pieces).
# 3. here:  bash scripts/gpu_prior.sh join FILES_AT runs/gpu-diffusion
#           rebuilds the checkpoint folder (float16 weights: `melodiff bundle` takes it as any other), then
#           `melodiff bundle --vae ... --diffusion runs/gpu-diffusion --guide ...` and `melodiff evaluate` judge it.
# The script's own check without a GPU: DEVICE=cpu PRESET=tiny OUT=/tmp/o bash scripts/gpu_prior.sh train LATENTS 1
set -euo pipefail
case ${1:-} in
  train)
    latents=$2 minutes=$3
    shift 3
    export PYTHONPATH=$PWD/src PYTHONUNBUFFERED=1
    device=${DEVICE:-cuda}
    if [ "$device" = cuda ]; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
    python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
    run=$(mktemp -d)
    python3 -m melodiff.cli train-diffusion --latents "$latents" --out "$run" --preset "${PRESET:-paper}" \
      --set model.seq_len=16 --device "$device" --max-minutes "$minutes" "$@" 2>&1 | tr '\r' '\n' | grep -v '%|' || true
    python3 - "$run" <<'EOF'
import sys
from pathlib import Path

from safetensors.torch import load_file, save_file

run = Path(sys.argv[1])
weights = load_file(run / "model.safetensors")
save_file({k: v.half() if v.is_floating_point() else v for k, v in weights.items()}, run / "half.safetensors")
print(sum(v.numel() for v in weights.values()) / 1e6, "M parameters")
EOF
    cp "$run/config.json" "$run/log.csv" "$OUT/"
    split -b 15m -d "$run/half.safetensors" "$OUT/model.part."
    tail -n 3 "$run/log.csv"
    ls -l "$OUT"
    ;;
  join)
    mkdir -p "$3"
    cp "$2/config.json" "$2/log.csv" "$3/"
    cat "$2"/model.part.* > "$3/model.safetensors"
    echo "checkpoint in $3"
    ;;
  *)
    sed -n '2,16p' "$0"
    exit 2
    ;;
esac
