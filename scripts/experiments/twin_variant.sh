#!/usr/bin/env bash
# Ablation "twin contrast" (models/MODEL_CARD.md): the bundled recipe's table and settings,
# trained with `--twin-weight 1` (each synthetic twin shares its original's channel, crop
# and masks, and a ranking loss scores it above its original; forensics_scan/training.py).
# 14 epochs: with the originals added to every batch that is about as many forward passes
# as the bundled model's run. About 50 min on 2 idle CPU cores. Run
# scripts/train_bundled_model.sh first (it makes work/dataset/).
#
#   SEED=0 bash scripts/experiments/twin_variant.sh
set -euo pipefail
SHARED=${SHARED:-../shared/data}
WORK=${WORK:-work}
FSCAN=${FSCAN:-fscan}
SEED=${SEED:-0}
NAME=twin_s$SEED

$FSCAN train "$WORK/dataset/MANIFEST_notts.csv" --out "$WORK/models/$NAME.safetensors" \
    --epochs 14 --patience 5 --augment-copies 1 --twin-weight 1.0 --seed "$SEED" --jobs 2 \
    --cache-dir "$WORK/cache"
$FSCAN evaluate "$SHARED/eval_public/MANIFEST.csv" --model "$WORK/models/$NAME.safetensors" \
    --out-dir "$WORK/eval_$NAME" --jobs 2 --quiet
